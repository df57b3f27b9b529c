/*
 * ops_maint.c — maintenance mode (daemon/maintenance.h): "maintenance"
 * turns it on or off for one service environment (a deployer in scope,
 * like deploy; audited by the controller without the bypass secrets),
 * "maintenance_status" lists it (no secret either).
 */
#include "common.h"
#include "api/api.h"
#include "daemon/daemon.h"
#include "daemon/maintenance.h"

/* req's message, retry_after_s and allow_headers into *m: NULL, or the refusal naming the JSON pointer */
static json_t *maintenance_from_request(json_t *req, struct maintenance *m)
{
	json_t *msg = json_object_get(req, "message"), *ra = json_object_get(req, "retry_after_s");
	json_t *ah = json_object_get(req, "allow_headers"), *h;
	struct gerr err;
	size_t i;

	memset(m, 0, sizeof(*m));
	if (msg && !json_is_null(msg)) {
		if (!json_is_string(msg))
			return reply_error(2, "/message: must be a string");
		if (maint_check_message(json_string_value(msg), &err) < 0)
			return reply_error(2, "/message: %s", err.msg);
		strlcpy_g(m->message, json_string_value(msg), sizeof(m->message));
	}
	if (ra && !json_is_null(ra)) {
		if (!json_is_integer(ra) || maint_check_retry_after(json_integer_value(ra), &err) < 0)
			return reply_error(2, "/retry_after_s: must be an integer from 1 to %d (seconds)",
					   MAINT_RETRY_AFTER_MAX);
		m->retry_after_s = (int)json_integer_value(ra);
	}
	if (ah && !json_is_null(ah)) {
		if (!json_is_array(ah))
			return reply_error(2, "/allow_headers: must be an array of {\"header\", \"value\"}");
		if (json_array_size(ah) > MAINT_HEADERS_MAX)
			return reply_error(2, "/allow_headers: at most %d headers", MAINT_HEADERS_MAX);
		json_array_foreach(ah, i, h) {
			const char *n = json_string_value(json_object_get(h, "header"));
			const char *v = json_string_value(json_object_get(h, "value"));
			if (!n)
				return reply_error(2, "/allow_headers/%zu/header: must be a string", i);
			if (!v)
				return reply_error(2, "/allow_headers/%zu/value: must be a string", i);
			if (maint_check_header_name(n, &err) < 0)
				return reply_error(2, "/allow_headers/%zu/header: %s", i, err.msg);
			if (maint_check_header_value(v, &err) < 0)
				return reply_error(2, "/allow_headers/%zu/value: %s", i, err.msg);
			strlcpy_g(m->allow[i].name, n, sizeof(m->allow[i].name));
			for (char *p = m->allow[i].name; *p; p++)
				if (*p >= 'A' && *p <= 'Z')
					*p = (char)(*p - 'A' + 'a');
			strlcpy_g(m->allow[i].value, v, sizeof(m->allow[i].value));
			m->nallow++;
		}
	}
	if (maintenance_check(m, &err) < 0)
		return reply_error(2, "%s", err.msg);
	return NULL;
}

json_t *op_maintenance(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	json_t *err = NULL, *on = json_object_get(req, "on"), *bad, *reply, *list;
	const char *svc = api_str(req, "service", true, &err);
	const char *env = api_str(req, "environment", true, &err);
	struct maintenance m;
	struct gerr gerr;
	bool changed = false;

	if (err)
		return err;
	if (!json_is_boolean(on))
		return reply_error(2, "/on: must be true or false");
	if (json_is_true(on)) {
		if ((bad = maintenance_from_request(req, &m)))
			return bad;
	} else if (json_object_get(req, "message") || json_object_get(req, "allow_headers") ||
		   json_object_get(req, "retry_after_s")) {
		return reply_error(2, "/on: false takes no message, retry_after_s or allow_headers");
	}
	if (daemon_maintenance_set_by(ctl, svc, env, json_is_true(on) ? &m : NULL, caller_actor(c->caller), c->caller,
				      &changed, &gerr) < 0) {
		explicit_bzero(&m, sizeof(m));
		return reply_error(2, "%s", gerr.msg);
	}
	explicit_bzero(&m, sizeof(m));
	list = daemon_maintenance_json(ctl, svc, env);
	reply = json_pack("{s:b, s:b, s:O}", "ok", 1, "changed", changed, "maintenance", json_array_get(list, 0));
	json_decref(list);
	return reply;
}

json_t *op_maintenance_status(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	json_t *err = NULL;
	const char *svc = api_str(req, "service", false, &err);
	const char *env = api_str(req, "environment", false, &err);
	if (err)
		return err;
	return json_pack("{s:b, s:o}", "ok", 1, "maintenance", daemon_maintenance_json(ctl, svc, env));
}
