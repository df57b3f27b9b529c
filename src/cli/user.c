/*
 * gantry user add NAME --role viewer|deployer|approver|admin [--env E,...] [--service S,...] [--no-token]
 *   prints the new API token once (the daemon keeps only its SHA-256);
 *   the CLI sends $GANTRY_TOKEN with every request. --env/--service scope
 *   the role to those environments/services (default: all).
 * gantry user list | remove NAME | whoami | sync
 *   sync: applies the `roles:` of the spec the controller stores (OS users, no token).
 */
#include "common.h"
#include "cli/client.h"
#include "core/spec.h"
#include "gates/gates.h"
#include "gates/gspec.h"

#define USAGE "gantry user add NAME --role viewer|deployer|approver|admin [--env E,...] [--service S,...] " \
	      "[--no-token] | list | remove NAME | whoami | sync"

/*
 * "staging,dev" (--env/--service) as a JSON array of names (a new
 * reference), or NULL after printing the error naming the flag.
 */
static json_t *names_arg(const char *flag, const char *what, const char *list)
{
	json_t *a = json_array();
	const char *p = list;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		char name[64] = "";
		if (n < sizeof(name))
			memcpy(name, p, n);
		if (n >= sizeof(name) || !spec_name_valid(name)) {
			cli_error("--%s: '%.*s' is not a valid %s name (lowercase letters, digits and '-', at most 63 "
				  "characters)", flag, (int)MIN(n, (size_t)200), p, what);
			json_decref(a);
			return NULL;
		}
		json_array_append_new(a, json_string(name));
		if (!comma)
			break;
		p = comma + 1;
	}
	return a;
}

/* a JSON array of names joined with commas into buf */
static void join_names(const json_t *a, char *buf, size_t len)
{
	size_t i, used = 0;
	const json_t *v;
	buf[0] = 0;
	json_array_foreach(a, i, v) {
		int w = snprintf(buf + used, len - used, "%s%s", used ? "," : "", json_string_value(v) ?
				 json_string_value(v) : "");
		if (w < 0 || (size_t)w >= len - used)
			break;
		used += (size_t)w;
	}
}

/* "deployer for staging,dev" from a role and an object with environments/services arrays */
static const char *role_text(const char *role, const json_t *o, char *buf, size_t len)
{
	struct identity id = { 0 };
	id.role = role_parse(role);
	join_names(json_object_get(o, "environments"), id.environments, sizeof(id.environments));
	join_names(json_object_get(o, "services"), id.services, sizeof(id.services));
	if (id.role < 0)
		snprintf(buf, len, "%s", role ? role : "?");
	else
		identity_role_text(&id, buf, len);
	return buf;
}

static int sync_roles(struct cli_ctx *ctx)
{
	/* roles are policy: the ones of the spec the controller stores (gantry
	 * apply), never of a file the caller could have edited */
	struct spec *spec = NULL;
	struct diags d = { 0 };
	json_t *roles = NULL, *v, *resp = NULL;
	const char *name, *text;
	int ret = client_call(ctx, json_pack("{s:s}", "op", "spec_show"), &resp);
	if (ret)
		return ret;
	text = json_string_value(json_object_get(resp, "text"));
	if (!text || spec_load_stored(json_string_value(json_object_get(resp, "name")), text, strlen(text), &spec, &d) < 0) {
		diags_release(&d);
		json_decref(resp);
		return cli_error("gantry user sync: the stored spec cannot be read by this gantry");
	}
	json_decref(resp);
	roles = gspec_roles(spec);
	json_object_foreach(roles, name, v) {
		/* "alice": "approver", or "ana": {"role": "deployer", "environments": [...], "services": [...]} */
		json_t *req = json_pack("{s:s, s:s, s:b}", "op", "user_add", "name", name, "no_token", 1);
		char rt[2 * USER_SCOPE_LEN + 64];
		int r;
		if (json_is_object(v)) {
			json_object_set(req, "role", json_object_get(v, "role"));
			if (json_object_get(v, "environments"))
				json_object_set(req, "environments", json_object_get(v, "environments"));
			if (json_object_get(v, "services"))
				json_object_set(req, "services", json_object_get(v, "services"));
		} else {
			json_object_set(req, "role", v);
		}
		r = client_call(ctx, req, &resp);
		if (r) {
			ret = r;
			break;
		}
		printf("%s: %s\n", name, role_text(json_string_value(json_object_get(resp, "role")), resp, rt, sizeof(rt)));
		json_decref(resp);
	}
	json_decref(roles);
	spec_free(spec);
	return ret;
}

struct user_opts {
	const char *role, *envs, *services;
	bool no_token;
};

static int add_user(struct cli_ctx *ctx, const struct user_opts *o, const char *name)
{
	json_t *req, *resp, *e = NULL, *sv = NULL;
	char rt[2 * USER_SCOPE_LEN + 64];
	int ret;

	if ((o->envs && !(e = names_arg("env", "environment", o->envs))) ||
	    (o->services && !(sv = names_arg("service", "service", o->services)))) {
		json_decref(e);
		return EXIT_USAGE;
	}
	req = json_pack("{s:s, s:s, s:s, s:b}", "op", "user_add", "name", name, "role", o->role, "no_token", o->no_token);
	if (e)
		json_object_set_new(req, "environments", e);
	if (sv)
		json_object_set_new(req, "services", sv);
	if ((ret = client_call(ctx, req, &resp)))
		return ret;
	role_text(o->role, resp, rt, sizeof(rt));
	if (ctx->json) {
		client_print_reply(resp);
	} else if (!o->no_token) {
		fprintf(stderr, "user %s (%s) added; its API token, shown only now:\n", name, rt);
		printf("%s\n", json_string_value(json_object_get(resp, "token")));
	} else {
		printf("user %s (%s) added\n", name, rt);
	}
	json_decref(resp);
	return EXIT_OK;
}

static int list_users(struct cli_ctx *ctx)
{
	/* a scope column says "*" for every environment (service) */
	char es[USER_SCOPE_LEN], ss[USER_SCOPE_LEN];
	json_t *resp, *v;
	size_t i;
	int ret;

	if ((ret = client_call(ctx, json_pack("{s:s}", "op", "user_list"), &resp)))
		return ret;
	if (ctx->json) {
		client_print_json(json_object_get(resp, "users"));
		goto out;
	}
	printf("%-20s %-9s %-6s %-16s %-16s %-20s %s\n", "NAME", "ROLE", "TOKEN", "ENVIRONMENTS", "SERVICES", "CREATED",
	       "BY");
	json_array_foreach(json_object_get(resp, "users"), i, v) {
		join_names(json_object_get(v, "environments"), es, sizeof(es));
		join_names(json_object_get(v, "services"), ss, sizeof(ss));
		printf("%-20s %-9s %-6s %-16s %-16s %-20s %s\n", json_string_value(json_object_get(v, "name")),
		       json_string_value(json_object_get(v, "role")),
		       json_is_true(json_object_get(v, "token")) ? "yes" : "no", es[0] ? es : "*",
		       ss[0] ? ss : "*", json_string_value(json_object_get(v, "created_at")),
		       json_string_value(json_object_get(v, "created_by")));
	}
out:
	json_decref(resp);
	return EXIT_OK;
}

static int whoami(struct cli_ctx *ctx)
{
	char rt[2 * USER_SCOPE_LEN + 64];
	json_t *resp;
	int ret;

	if ((ret = client_call(ctx, json_pack("{s:s}", "op", "whoami"), &resp)))
		return ret;
	if (ctx->json)
		client_print_reply(resp);
	else
		printf("%s (%s%s)\n", json_string_value(json_object_get(resp, "name")),
		       role_text(json_string_value(json_object_get(resp, "role")), resp, rt, sizeof(rt)),
		       json_is_true(json_object_get(resp, "token")) ? ", by API token" : ", by OS user");
	json_decref(resp);
	return EXIT_OK;
}

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	struct user_opts o = { 0 };
	json_t *resp = NULL;
	int npos, ret;
	const char *sub;

	if ((npos = cli_parse_opts(ctx->cmd, argc, argv, ctx, &o)) < 0)
		return EXIT_USAGE;
	if (npos < 1)
		return cli_error("usage: %s", USAGE);
	sub = argv[0];
	if (!strcmp(sub, "add")) {
		if (npos != 2 || !o.role)
			return cli_error("usage: gantry user add NAME --role viewer|deployer|approver|admin [--env E,...] "
					 "[--service S,...] [--no-token]");
		return add_user(ctx, &o, argv[1]);
	}
	if (!strcmp(sub, "remove") && npos == 2) {
		if ((ret = client_call(ctx, json_pack("{s:s, s:s}", "op", "user_remove", "name", argv[1]), &resp)))
			return ret;
		printf("user %s removed\n", argv[1]);
		json_decref(resp);
		return EXIT_OK;
	}
	if (!strcmp(sub, "list") && npos == 1)
		return list_users(ctx);
	if (!strcmp(sub, "whoami") && npos == 1)
		return whoami(ctx);
	if (!strcmp(sub, "sync") && npos == 1)
		return sync_roles(ctx);
	return cli_error("usage: %s", USAGE);
}

static const struct cli_option user_options[] = {
	CLI_STRING('r', "role", struct user_opts, role, "ROLE", "add: viewer, deployer, approver or admin"),
	CLI_STRING('e', "env", struct user_opts, envs, "E,...", "add: only these environments (default every one)"),
	CLI_STRING('s', "service", struct user_opts, services, "S,...", "add: only these services (default every one)"),
	CLI_BOOL(0, "no-token", struct user_opts, no_token, "add: no API token (an OS user over the local socket)"),
	CLI_END,
};

const struct cli_cmd cli_cmd_user = {
	.name = "user",
	.usage = USAGE,
	.summary = "users, roles and API tokens",
	.options = user_options,
	.run = run,
};
