/*
 * ops_secret.c — the secret store over the API (docs/api.md, "Secrets";
 * the store itself: src/daemon/secrets.c). A value arrives base64 in
 * secret_set and leaves base64 in secret_get (admin only); it is in no
 * other reply, no log line and no audit entry (these handlers write their
 * own entries: name, environment, version, never the value).
 */
#include "common.h"
#include "api/api.h"
#include "daemon/daemon.h"
#include "daemon/gates_flow.h"
#include "daemon/secrets.h"
#include "gates/gates.h"
#include "secrets/age.h"
#include "store/store_secret.h"
#include "util/clock.h"
#include <jansson.h>
#include <sodium.h>

#define GENERATE_MAX 4096

/* the request's environment (required, in the caller's scope and the spec) */
static const char *want_env(struct daemon *ctl, json_t *req, const struct api_ctx *c, const char *what, json_t **err)
{
	const char *env = api_str(req, "environment", true, err);
	if (!env)
		return NULL;
	if ((*err = gates_need_scope(&c->who, what, NULL, env)))
		return NULL;
	if (!ctl->spec || !spec_find_env(ctl->spec, env)) {
		*err = reply_error(2, "/environment: no environment '%s' in the stored spec", env);
		return NULL;
	}
	return env;
}

static const char *want_name(json_t *req, json_t **err)
{
	const char *name = api_str(req, "name", true, err);
	if (name && !secret_name_valid(name)) {
		*err = reply_error(2, "/name: invalid secret name (letters, digits, '_', '-' and '.', at most %d, "
				   "starting with a letter or digit)", SECRET_NAME_MAX);
		return NULL;
	}
	return name;
}

json_t *op_secret_set(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	json_t *err = NULL, *restarted = NULL, *details;
	const char *env = want_env(ctl, req, c, "set the secrets of", &err), *name = env ? want_name(req, &err) : NULL;
	const char *b64 = json_string_value(json_object_get(req, "value"));
	int generate = api_int(req, "generate", 0, &err), version;
	bool rotate = json_is_true(json_object_get(req, "rotate")), restart = json_is_true(json_object_get(req, "restart"));
	uint8_t *val = NULL;
	size_t len = 0;
	struct secret_row old;
	struct gerr gerr;
	int exists;

	if (err)
		return err;
	if (sodium_init() < 0)
		return reply_error(1, "libsodium cannot start");
	if (!!b64 == !!generate)
		return reply_error(2, "/value: give a value (base64) or generate (a number of random bytes), one of them");
	if (generate > GENERATE_MAX)
		return reply_error(2, "/generate: at most %d bytes", GENERATE_MAX);
	exists = store_secret_get(ctl->store, env, name, 0, &old, &gerr);
	if (exists < 0)
		return reply_error(1, "%s", gerr.msg);
	if (exists)
		secret_row_release(&old);
	if (rotate && !exists)
		return reply_error(2, "secret '%s' does not exist in environment '%s' (gantry secret set %s --env %s)", name,
				   env, name, env);
	if (restart && !rotate)
		return reply_error(2, "/restart: only with rotate");
	if (b64) {
		size_t cap = strlen(b64) / 4 * 3 + 3;
		if (cap > SECRET_VALUE_MAX + 3)
			return reply_error(2, "/value: at most %d bytes", SECRET_VALUE_MAX);
		val = sodium_malloc(cap + 1);
		if (!val || sodium_base642bin(val, cap, b64, strlen(b64), NULL, &len, NULL,
					      sodium_base64_VARIANT_ORIGINAL) != 0) {
			if (val)
				sodium_free(val);
			return reply_error(2, "/value: not base64");
		}
	} else {
		/* --generate N: N random bytes, stored as their base64 text (usable as env) */
		uint8_t raw[GENERATE_MAX];
		size_t cap = sodium_base64_ENCODED_LEN(GENERATE_MAX, sodium_base64_VARIANT_ORIGINAL);
		randombytes_buf(raw, (size_t)generate);
		val = sodium_malloc(cap);
		sodium_bin2base64((char *)val, cap, raw, (size_t)generate, sodium_base64_VARIANT_ORIGINAL);
		sodium_memzero(raw, sizeof(raw));
		len = strlen((char *)val);
	}
	if (secrets_put(env, name, val, len, c->who.name, &version, &gerr) < 0) {
		sodium_free(val);
		return reply_error(1, "%s", gerr.msg);
	}
	sodium_free(val);
	secrets_prune(env, name);
	if (restart)
		restarted = secrets_restart_users(env, name, c->who.name);
	details = json_pack("{s:s, s:i, s:b, s:b}", "name", name, "version", version, "generated", generate > 0,
			    "rotate", rotate);
	gates_audit_as(c->caller, c->who.name, rotate ? "secret_rotate" : "secret_set", env, details);
	return json_pack("{s:b, s:s, s:s, s:i, s:o*}", "ok", 1, "environment", env, "name", name, "version", version,
			 "restarted", restarted);
}

json_t *op_secret_list(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	const char *env = json_string_value(json_object_get(req, "environment"));
	struct secret_row *rows;
	size_t n;
	struct gerr gerr;
	json_t *list = json_array(), *cur = NULL;
	const char *cur_env = "", *cur_name = "";

	if (store_secret_list(ctl->store, env, &rows, &n, &gerr) < 0) {
		json_decref(list);
		return reply_error(1, "%s", gerr.msg);
	}
	for (size_t i = 0; i < n; i++) {
		const struct secret_row *r = &rows[i];
		char ts[40];
		if (!identity_covers(&c->who, NULL, r->environment))
			continue;
		if (strcmp(cur_env, r->environment) || strcmp(cur_name, r->name)) {
			cur = json_pack("{s:s, s:s, s:i, s:b, s:o}", "environment", r->environment, "name", r->name,
					"version", 0, "removed", r->removed, "versions", json_array());
			json_array_append_new(list, cur);
			cur_env = r->environment;
			cur_name = r->name;
		}
		format_rfc3339(r->created_at, ts, sizeof(ts));
		json_array_append_new(json_object_get(cur, "versions"),
				      json_pack("{s:i, s:s, s:s, s:b}", "version", r->version, "created_by", r->created_by,
						"created_at", ts, "in_use", secrets_in_use(r->environment, r->name, r->version)));
		json_object_set_new(cur, "version", json_integer(r->version));
		json_object_set_new(cur, "updated_by", json_string(r->created_by));
		json_object_set_new(cur, "updated_at", json_string(ts));
	}
	free(rows);
	return json_pack("{s:b, s:o}", "ok", 1, "secrets", list);
}

json_t *op_secret_rm(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	json_t *err = NULL;
	const char *env = want_env(ctl, req, c, "remove the secrets of", &err), *name = env ? want_name(req, &err) : NULL;
	struct gerr gerr;
	int r;
	if (err)
		return err;
	r = store_secret_mark_removed(ctl->store, env, name, &gerr);
	if (r < 0)
		return reply_error(1, "%s", gerr.msg);
	if (!r)
		return reply_error(2, "secret '%s' does not exist in environment '%s'", name, env);
	secrets_prune(env, name);
	gates_audit_as(c->caller, c->who.name, "secret_rm", env, json_pack("{s:s}", "name", name));
	return json_pack("{s:b, s:s, s:s, s:b}", "ok", 1, "environment", env, "name", name, "kept_for_revisions",
			 secrets_in_use(env, name, 0));
}

json_t *op_secret_get(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	json_t *err = NULL, *reply;
	const char *env = want_env(ctl, req, c, "read the secrets of", &err), *name = env ? want_name(req, &err) : NULL;
	int version = api_int(req, "version", 0, &err);
	uint8_t *val;
	size_t len, cap;
	char *b64;
	struct gerr gerr;
	int found;
	if (err)
		return err;
	found = secrets_read(env, name, version, &val, &len, &gerr);
	if (found < 0)
		return reply_error(1, "%s", gerr.msg);
	if (!found)
		return version ? reply_error(2, "secret '%s' has no version %d in environment '%s'", name, version, env)
			       : reply_error(2, "secret '%s' does not exist in environment '%s'", name, env);
	cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	b64 = xmalloc(cap);
	sodium_bin2base64(b64, cap, val, len, sodium_base64_VARIANT_ORIGINAL);
	age_secret_free(val, len);
	/* who read which version: the entry holds no value */
	gates_audit_as(c->caller, c->who.name, "secret_get", env,
		       json_pack("{s:s, s:i}", "name", name, "version", version));
	reply = json_pack("{s:b, s:s, s:s, s:s}", "ok", 1, "environment", env, "name", name, "value", b64);
	sodium_memzero(b64, strlen(b64));
	free(b64);
	return reply;
}

/* the controller's age recipient: what a team adds to .sops.yaml (or environments.E.secrets.recipients
 * of another controller) so that the controller can decrypt; public, not audited */
json_t *op_secret_recipient(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	char r[128];
	struct gerr gerr;
	(void)ctl;
	(void)req;
	(void)c;
	if (secrets_recipient(r, &gerr) < 0)
		return reply_error(1, "%s", gerr.msg);
	return json_pack("{s:b, s:s}", "ok", 1, "recipient", r);
}
