/*
 * ops_spec.c — the stored spec over the API: apply, spec_show,
 * spec_history, spec_diff (docs/api.md). The decisions are
 * src/daemon/spec_owner.c's.
 */
#include "common.h"
#include "api/api.h"
#include "core/spec_class.h"
#include "daemon/daemon.h"
#include "daemon/gates_flow.h"
#include "gates/gates.h"
#include "util/clock.h"
#include "store/store_spec.h"
#include <jansson.h>

/* {"name": FILE, "text": YAML} of req[key]; *err set on bad input */
int api_spec_arg(json_t *obj, const char *ptr, const char **name, const char **text, size_t *len, json_t **err)
{
	json_t *n = json_object_get(obj, "name"), *t = json_object_get(obj, "text");
	if (!json_is_object(obj)) {
		*err = reply_error(2, "%s: must be an object {\"name\": FILE, \"text\": YAML}", ptr);
		return -1;
	}
	if (n && !json_is_string(n)) {
		*err = reply_error(2, "%s/name: must be a string", ptr);
		return -1;
	}
	if (!json_is_string(t)) {
		*err = reply_error(2, "%s/text: missing or not a string", ptr);
		return -1;
	}
	*name = n ? json_string_value(n) : "gantry.yaml";
	*text = json_string_value(t);
	*len = json_string_length(t);
	return 0;
}

json_t *api_spec_from_request(json_t *req, const struct identity *who, int64_t expect, bool dry, const char *via)
{
	const char *name, *text;
	size_t len;
	json_t *err = NULL;
	if (api_spec_arg(json_object_get(req, "spec"), "/spec", &name, &text, &len, &err) < 0)
		return err;
	return daemon_spec_apply(name, text, len, who, expect, dry, via);
}

static int64_t expect_arg(json_t *req, json_t **err)
{
	json_t *e = json_object_get(req, "expect_version");
	if (!e || json_is_null(e))
		return -1;
	if (!json_is_integer(e) || json_integer_value(e) < 0) {
		*err = reply_error(2, "/expect_version: must be a non-negative integer");
		return -1;
	}
	return json_integer_value(e);
}

json_t *op_apply(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	json_t *err = NULL;
	int64_t expect = expect_arg(req, &err);
	(void)ctl;
	if (err)
		return err;
	return api_spec_from_request(req, &c->who, expect, json_is_true(json_object_get(req, "dry_run")), "apply");
}

static json_t *version_json(const struct spec_version_row *r, bool with_text)
{
	char ts[40];
	json_t *o, *diff = json_loads(r->diff ? r->diff : "[]", 0, NULL);
	format_rfc3339(r->created_at, ts, sizeof(ts));
	o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:o}", "version", (json_int_t)r->version, "digest", r->digest,
		      "name", r->name, "applied_by", r->actor, "applied_at", ts, "diff", diff ? diff : json_array());
	if (with_text)
		json_object_set_new(o, "text", json_string(r->text ? r->text : ""));
	return o;
}

json_t *op_spec_show(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	json_t *err = NULL, *reply;
	int v = api_int(req, "version", 0, &err);
	struct spec_version_row r;
	struct gerr gerr;
	int found;
	(void)c;
	if (err)
		return err;
	found = store_spec_get(ctl->store, v, &r, &gerr);
	if (found < 0)
		return reply_error(1, "%s", gerr.msg);
	if (!found)
		return v ? reply_error(2, "/version: no spec version %d (see 'gantry spec history')", v)
			 : reply_error(2, "the controller stores no spec yet: run 'gantry apply'");
	reply = version_json(&r, true);
	json_object_set_new(reply, "ok", json_true());
	json_object_set_new(reply, "current", json_boolean(r.version == ctl->spec_version));
	spec_version_row_release(&r);
	return reply;
}

json_t *op_spec_history(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	struct spec_version_row *rows;
	struct gerr gerr;
	size_t n;
	json_t *list;
	(void)req;
	(void)c;
	if (store_spec_list(ctl->store, &rows, &n, &gerr) < 0)
		return reply_error(1, "%s", gerr.msg);
	list = json_array();
	for (size_t i = 0; i < n; i++) {
		json_array_append_new(list, version_json(&rows[i], false));
		spec_version_row_release(&rows[i]);
	}
	free(rows);
	return json_pack("{s:b, s:I, s:o}", "ok", 1, "current", (json_int_t)ctl->spec_version, "versions", list);
}

/* a stored version's YAML tree (new reference), NULL with *err set */
static json_t *version_tree(struct daemon *ctl, int v, json_t **err)
{
	struct spec_version_row r;
	struct gerr gerr;
	struct spec *spec = NULL;
	struct diags d = { 0 };
	json_t *tree = NULL;
	int found;
	if (v == 0)
		return json_object();
	found = store_spec_get(ctl->store, v, &r, &gerr);
	if (found <= 0) {
		*err = found < 0 ? reply_error(1, "%s", gerr.msg) : reply_error(2, "no spec version %d", v);
		return NULL;
	}
	if (spec_load_buf(r.name, r.text, strlen(r.text), &spec, &d) == 0)
		tree = spec_tree_json(spec);
	else
		*err = reply_error(1, "spec version %d cannot be read by this build", v);
	spec_free(spec);
	diags_release(&d);
	spec_version_row_release(&r);
	return tree;
}

/*
 * Two stored versions ({"from": N, "to": M}; M default the current one, N
 * default the one before M), or the current one against a proposed spec
 * ({"spec": {...}}: what an apply would change, and whether the caller may).
 */
json_t *op_spec_diff(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	json_t *err = NULL, *a, *b, *diff;
	int to, from;
	if (json_object_get(req, "spec"))
		return api_spec_from_request(req, &c->who, -1, true, "diff");
	to = api_int(req, "to", (int)ctl->spec_version, &err);
	from = api_int(req, "from", to > 0 ? to - 1 : 0, &err);
	if (err)
		return err;
	if (!(a = version_tree(ctl, from, &err)))
		return err;
	if (!(b = version_tree(ctl, to, &err))) {
		json_decref(a);
		return err;
	}
	diff = spec_diff(a, b);
	json_decref(a);
	json_decref(b);
	return json_pack("{s:b, s:i, s:i, s:o}", "ok", 1, "from", from, "to", to, "diff", diff);
}
