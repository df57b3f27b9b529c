/*
 * pullwait.c — following a deployment while the controller pulls its image.
 */
#include "common.h"
#include "cli/client.h"
#include "cli/pullwait.h"

/* the deployment id of svc@env, a new reference, or NULL (gone) */
static json_t *deployment_row(const struct cli_ctx *ctx, const char *svc, const char *env, json_int_t id, int *rc)
{
	json_t *resp = NULL, *e, *d = NULL;
	size_t i;
	*rc = client_call(ctx, json_pack("{s:s, s:s, s:s, s:i}", "op", "deployments", "service", svc, "environment",
					 env, "limit", 200), &resp);
	if (*rc)
		return NULL;
	json_array_foreach(json_object_get(resp, "deployments"), i, e)
		if (json_integer_value(json_object_get(e, "id")) == id)
			d = json_incref(e);
	json_decref(resp);
	return d;
}

/* image_pull events of svc@env after *after, each on a line (not a tty) */
static void print_events(const struct cli_ctx *ctx, const char *svc, const char *env, json_int_t *after)
{
	json_t *resp = NULL, *e;
	size_t i;
	json_t *req = json_pack("{s:s, s:s, s:s, s:i}", "op", "events", "service", svc, "environment", env, "limit", 200);
	if (*after >= 0)
		json_object_set_new(req, "after", json_integer(*after));
	if (client_call(ctx, req, &resp))
		return;
	json_array_foreach(json_object_get(resp, "events"), i, e) {
		json_int_t id = json_integer_value(json_object_get(e, "id"));
		if (id > *after)
			*after = id;
		if (!strcmp(json_string_value(json_object_get(e, "kind")) ?: "", "image_pull"))
			fprintf(stderr, "  %s\n", json_string_value(json_object_get(e, "message")));
	}
	json_decref(resp);
}

/* the newest event id of svc@env (-1 if none): lines are printed from there */
static json_int_t last_event(const struct cli_ctx *ctx, const char *svc, const char *env)
{
	json_t *resp = NULL, *e;
	size_t i;
	json_int_t last = -1;
	if (client_call(ctx, json_pack("{s:s, s:s, s:s, s:i}", "op", "events", "service", svc, "environment", env,
				       "limit", 1000), &resp))
		return -1;
	json_array_foreach(json_object_get(resp, "events"), i, e)
		if (json_integer_value(json_object_get(e, "id")) > last)
			last = json_integer_value(json_object_get(e, "id"));
	json_decref(resp);
	return last;
}

/* the status' pull progress line of svc@env for deployment id, "" if none */
static void progress_line(const struct cli_ctx *ctx, const char *svc, const char *env, json_int_t id, char *out,
			  size_t len)
{
	json_t *resp = NULL, *st, *p;
	size_t i;
	out[0] = 0;
	if (client_call(ctx, json_pack("{s:s, s:s, s:s}", "op", "status", "service", svc, "environment", env), &resp))
		return;
	json_array_foreach(json_object_get(resp, "status"), i, st) {
		p = json_object_get(st, "pull");
		if (json_integer_value(json_object_get(p, "deployment")) == id)
			snprintf(out, len, "pull %s: %s", json_string_value(json_object_get(p, "image")),
				 json_string_value(json_object_get(p, "progress")));
	}
	json_decref(resp);
}

int cli_pull_follow(const struct cli_ctx *ctx, const char *svc, const char *env, json_t *resp)
{
	json_int_t id = json_integer_value(json_object_get(resp, "deployment"));
	bool tty = isatty(STDERR_FILENO) && !ctx->json;
	json_int_t after;
	json_t *d = NULL;
	const char *state;
	int rc = 0;
	size_t shown = 0;

	if (strcmp(json_string_value(json_object_get(resp, "state")) ?: "", "pulling"))
		return EXIT_OK;
	after = tty || ctx->json ? 0 : last_event(ctx, svc, env);
	if (!ctx->json)
		fprintf(stderr, "deployment %lld: pulling %s in the controller...\n", (long long)id,
			json_string_value(json_object_get(resp, "image")));
	/* the messages so far of this pull (its start) were before `after`: the start line is above */
	for (;;) {
		json_decref(d);
		d = deployment_row(ctx, svc, env, id, &rc);
		if (rc)
			return rc;
		if (!d) {
			if (tty && shown)
				fputc('\n', stderr);
			return cli_error("deployment %lld of %s@%s vanished", (long long)id, svc, env);
		}
		if (tty) {
			char line[600];
			progress_line(ctx, svc, env, id, line, sizeof(line));
			if (line[0]) {
				/* one line, rewritten; padded over a longer previous one */
				fprintf(stderr, "\r  %s%*s", line, (int)(shown > strlen(line) + 2 ? shown - strlen(line) - 2 : 0),
					"");
				shown = strlen(line) + 2;
			}
		} else if (!ctx->json) {
			print_events(ctx, svc, env, &after);
		}
		if (strcmp(json_string_value(json_object_get(d, "state")) ?: "", "pulling") || client_stop)
			break;
		usleep(200000);
	}
	if (tty && shown)
		fputc('\n', stderr);
	state = json_string_value(json_object_get(d, "state")) ?: "";
	if (!strcmp(state, "failed") || !strcmp(state, "superseded")) {
		fprintf(stderr, "error: %s\n", json_string_value(json_object_get(d, "result_reason")) ?: state);
		json_decref(d);
		return EXIT_FAILED;
	}
	json_object_set_new(resp, "state", json_string(state));
	json_object_set(resp, "revision", json_object_get(d, "revision"));
	json_object_set(resp, "rollout", json_object_get(d, "rollout"));
	json_decref(d);
	return EXIT_OK;
}
