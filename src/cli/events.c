#include "common.h"
#include "cli/client.h"

struct events_opts {
	const char *env;
	bool follow;
};

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	struct events_opts o = { 0 };
	json_int_t after = -1;
	int npos, ret = EXIT_OK;

	if ((npos = cli_parse_opts(ctx->cmd, argc, argv, ctx, &o)) < 0)
		return EXIT_USAGE;
	if (npos > 1)
		return cli_error("gantry events: unexpected argument '%s'", argv[1]);
	client_catch_stop();
	do {
		json_t *req = json_pack("{s:s, s:i}", "op", "events", "limit", after < 0 ? 50 : 1000), *resp, *list, *e;
		size_t i;
		client_req_str(req, "service", npos ? argv[0] : NULL);
		client_req_str(req, "environment", o.env);
		if (after >= 0)
			json_object_set_new(req, "after", json_integer(after));
		if ((ret = client_call(ctx, req, &resp)))
			break;
		list = json_object_get(resp, "events");
		json_array_foreach(list, i, e) {
			if (ctx->json)
				client_print_line(e);
			else
				printf("%s  %s@%s #%lld  %-20s %s\n", json_string_value(json_object_get(e, "time")),
				       json_string_value(json_object_get(e, "service")),
				       json_string_value(json_object_get(e, "environment")),
				       (long long)json_integer_value(json_object_get(e, "revision")),
				       json_string_value(json_object_get(e, "kind")),
				       json_string_value(json_object_get(e, "message")));
			after = json_integer_value(json_object_get(e, "id"));
		}
		if (after < 0)
			after = 0;
		fflush(stdout);
		json_decref(resp);
		if (o.follow)
			client_pause_ms(500);
	} while (o.follow && !client_stop);
	return ret;
}

/* -f is the global spec flag elsewhere; here it means follow (--file names the spec) */
static const struct cli_option events_options[] = {
	CLI_STRING('e', "env", struct events_opts, env, "ENV", "only this environment's"),
	CLI_BOOL('f', "follow", struct events_opts, follow, "keep printing new events until interrupted"),
	CLI_END,
};

const struct cli_cmd cli_cmd_events = {
	.name = "events",
	.usage = "gantry events [SERVICE] [--env ENV] [-f] [-o json]",
	.summary = "show what the controller did and why (-f to follow)",
	.options = events_options,
	.run = run,
};
