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
#include "cli/gates_cli.h"
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

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *role = NULL, *envs = NULL, *svcs = NULL, **pos;
	bool no_token = false;
	struct cli_opt opts[] = { { "role", 'r', OPT_STRING, &role },     { "env", 'e', OPT_STRING, &envs },
				  { "service", 's', OPT_STRING, &svcs }, { "no-token", 0, OPT_FLAG, &no_token },
				  { 0 } };
	json_t *resp = NULL, *req, *v;
	int npos, ret = EXIT_OK;
	size_t i;
	char rt[2 * USER_SCOPE_LEN + 64];

	if (cli_parse(argc, argv, opts, ctx, &pos, &npos) < 0)
		return EXIT_USAGE;
	if (npos < 1) {
		ret = cli_error("usage: %s", USAGE);
		goto out;
	}
	if (!strcmp(pos[0], "add")) {
		json_t *e = NULL, *sv = NULL;
		if (npos != 2 || !role) {
			ret = cli_error("usage: gantry user add NAME --role viewer|deployer|approver|admin [--env E,...] "
					"[--service S,...] [--no-token]");
			goto out;
		}
		if ((envs && !(e = names_arg("env", "environment", envs))) ||
		    (svcs && !(sv = names_arg("service", "service", svcs)))) {
			json_decref(e);
			ret = EXIT_USAGE;
			goto out;
		}
		req = json_pack("{s:s, s:s, s:s, s:b}", "op", "user_add", "name", pos[1], "role", role, "no_token",
				no_token);
		if (e)
			json_object_set_new(req, "environments", e);
		if (sv)
			json_object_set_new(req, "services", sv);
		ret = client_call(ctx, req, &resp);
		if (ret)
			goto out;
		role_text(role, resp, rt, sizeof(rt));
		if (ctx->json) {
			json_object_del(resp, "ok");
			gates_cli_print_json(resp);
		} else if (!no_token) {
			fprintf(stderr, "user %s (%s) added; its API token, shown only now:\n", pos[1], rt);
			printf("%s\n", json_string_value(json_object_get(resp, "token")));
		} else {
			printf("user %s (%s) added\n", pos[1], rt);
		}
	} else if (!strcmp(pos[0], "remove") && npos == 2) {
		ret = client_call(ctx, json_pack("{s:s, s:s}", "op", "user_remove", "name", pos[1]), &resp);
		if (!ret)
			printf("user %s removed\n", pos[1]);
	} else if (!strcmp(pos[0], "list") && npos == 1) {
		ret = client_call(ctx, json_pack("{s:s}", "op", "user_list"), &resp);
		if (ret)
			goto out;
		if (ctx->json) {
			gates_cli_print_json(json_object_get(resp, "users"));
		} else {
			/* a scope column says "*" for every environment (service) */
			char es[USER_SCOPE_LEN], ss[USER_SCOPE_LEN];
			printf("%-20s %-9s %-6s %-16s %-16s %-20s %s\n", "NAME", "ROLE", "TOKEN", "ENVIRONMENTS", "SERVICES",
			       "CREATED", "BY");
			json_array_foreach(json_object_get(resp, "users"), i, v) {
				join_names(json_object_get(v, "environments"), es, sizeof(es));
				join_names(json_object_get(v, "services"), ss, sizeof(ss));
				printf("%-20s %-9s %-6s %-16s %-16s %-20s %s\n", json_string_value(json_object_get(v, "name")),
				       json_string_value(json_object_get(v, "role")),
				       json_is_true(json_object_get(v, "token")) ? "yes" : "no", es[0] ? es : "*",
				       ss[0] ? ss : "*", json_string_value(json_object_get(v, "created_at")),
				       json_string_value(json_object_get(v, "created_by")));
			}
		}
	} else if (!strcmp(pos[0], "whoami") && npos == 1) {
		ret = client_call(ctx, json_pack("{s:s}", "op", "whoami"), &resp);
		if (ret)
			goto out;
		if (ctx->json) {
			json_object_del(resp, "ok");
			gates_cli_print_json(resp);
		} else {
			printf("%s (%s%s)\n", json_string_value(json_object_get(resp, "name")),
			       role_text(json_string_value(json_object_get(resp, "role")), resp, rt, sizeof(rt)),
			       json_is_true(json_object_get(resp, "token")) ? ", by API token" : ", by OS user");
		}
	} else if (!strcmp(pos[0], "sync") && npos == 1) {
		ret = sync_roles(ctx);
	} else {
		ret = cli_error("usage: %s", USAGE);
	}
out:
	json_decref(resp);
	if (npos)
		free(pos);
	return ret;
}

const struct cli_cmd cli_cmd_user = {
	.name = "user",
	.usage = USAGE,
	.summary = "users, roles and API tokens",
	.run = run,
};
