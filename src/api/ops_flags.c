/*
 * ops_flags.c — feature flags over the API (docs/api.md, "Feature flags";
 * the state: daemon/flags.h). flag_set is a deployer's in the
 * environment's scope (like deploy) and audited by daemon_flag_set;
 * flag_list and flag_history are reads; flag_token gives an environment's
 * read-only OFREP token to a deployer of it.
 */
#include "common.h"
#include "api/api.h"
#include "daemon/daemon.h"
#include "daemon/flags.h"
#include "daemon/gates_flow.h"
#include "flags/flags.h"

static const char *want_env(struct daemon *ctl, json_t *req, const struct api_ctx *c, const char *what, json_t **err)
{
	const char *env = api_str(req, "environment", true, err);
	if (!env)
		return NULL;
	if (what && (*err = gates_need_scope(&c->who, what, NULL, env)))
		return NULL;
	if (!ctl->spec || !spec_find_env(ctl->spec, env)) {
		*err = reply_error(2, "/environment: no environment '%s' in the stored spec", env);
		return NULL;
	}
	return env;
}

json_t *op_flag_set(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	json_t *err = NULL, *list, *one = NULL, *reply;
	const char *env = want_env(ctl, req, c, "set the flags of", &err);
	const char *name = env ? api_str(req, "name", true, &err) : NULL;
	const char *state = name ? api_str(req, "state", true, &err) : NULL;
	const char *reason = api_str(req, "reason", false, &err);
	struct gerr gerr;
	bool changed = false;
	size_t i;

	if (err)
		return err;
	if (daemon_flag_set(ctl, env, name, state, caller_actor(c->caller), reason, c->caller, &changed, &gerr) < 0)
		return reply_error(2, "%s", gerr.msg);
	list = daemon_flags_json(ctl, env);
	json_array_foreach(list, i, one)
		if (!strcmp(json_string_value(json_object_get(one, "name")), name))
			break;
	reply = json_pack("{s:b, s:b, s:O}", "ok", 1, "changed", changed, "flag", one ? one : json_null());
	json_decref(list);
	return reply;
}

json_t *op_flag_list(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	json_t *err = NULL;
	const char *env = api_str(req, "environment", false, &err);
	if (err)
		return err;
	if (env && (!ctl->spec || !spec_find_env(ctl->spec, env)))
		return reply_error(2, "/environment: no environment '%s' in the stored spec", env);
	return json_pack("{s:b, s:o}", "ok", 1, "flags", daemon_flags_json(ctl, env));
}

json_t *op_flag_history(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	json_t *err = NULL, *h;
	const char *env = want_env(ctl, req, c, NULL, &err);
	const char *name = env ? api_str(req, "name", true, &err) : NULL;
	struct gerr gerr;
	if (err)
		return err;
	if (!(h = daemon_flag_history_json(ctl, env, name, &gerr)))
		return reply_error(1, "%s", gerr.msg);
	return json_pack("{s:b, s:s, s:s, s:o}", "ok", 1, "environment", env, "name", name, "history", h);
}

json_t *op_flag_token(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	json_t *err = NULL;
	const char *env = want_env(ctl, req, c, "read the flag token of", &err);
	char tok[80];
	struct gerr gerr;
	if (err)
		return err;
	if (daemon_flags_token(ctl, env, tok, sizeof(tok), &gerr) < 0)
		return reply_error(1, "%s", gerr.msg);
	return json_pack("{s:b, s:s, s:s}", "ok", 1, "environment", env, "token", tok);
}
