#include "common.h"
#include "cli/client.h"
#include <signal.h>


static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *env = NULL, **pos;
	bool follow = false;
	struct cli_opt opts[] = {
		{ "env", 'e', OPT_STRING, &env },
		{ "follow", 'f', OPT_FLAG, &follow },
		{ 0 },
	};
	json_int_t after = -1;
	int npos, ret = EXIT_OK;

	/* -f is the global spec flag elsewhere; for events it means follow */
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-f")) {
			follow = true;
			argv[i] = (char *)"--follow";
		}
	if (cli_parse(argc, argv, opts, ctx, &pos, &npos) < 0)
		return EXIT_USAGE;
	if (npos > 1)
		return cli_error("gantry events: unexpected argument '%s'", pos[1]);
	client_catch_stop();
	do {
		json_t *req = json_pack("{s:s, s:i}", "op", "events", "limit", after < 0 ? 50 : 1000), *resp, *list, *e;
		size_t i;
		if (npos)
			json_object_set_new(req, "service", json_string(pos[0]));
		if (env)
			json_object_set_new(req, "environment", json_string(env));
		if (after >= 0)
			json_object_set_new(req, "after", json_integer(after));
		if ((ret = client_call(ctx, req, &resp)))
			break;
		list = json_object_get(resp, "events");
		json_array_foreach(list, i, e) {
			if (ctx->json) {
				char *s = json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER);
				printf("%s\n", s);
				free(s);
			} else {
				printf("%s  %s@%s #%lld  %-20s %s\n", json_string_value(json_object_get(e, "time")),
				       json_string_value(json_object_get(e, "service")),
				       json_string_value(json_object_get(e, "environment")),
				       (long long)json_integer_value(json_object_get(e, "revision")),
				       json_string_value(json_object_get(e, "kind")),
				       json_string_value(json_object_get(e, "message")));
			}
			after = json_integer_value(json_object_get(e, "id"));
		}
		if (after < 0)
			after = 0;
		fflush(stdout);
		json_decref(resp);
		for (int k = 0; follow && !client_stop && k < 5; k++)
			usleep(100000);
	} while (follow && !client_stop);
	if (npos)
		free(pos);
	return ret;
}

const struct cli_cmd cli_cmd_events = {
	.name = "events",
	.usage = "gantry events [SERVICE] [--env ENV] [-f] [-o json]",
	.summary = "show what the controller did and why (-f to follow)",
	.run = run,
};
