/*
 * ops_release.c — the release operations (docs/api.md "release"): create a
 * release, read one, list an environment's. The driver is the controller's
 * (src/daemon/releases.c).
 */
#include "common.h"
#include "api/api.h"
#include "daemon/daemon.h"
#include "daemon/gates_flow.h"
#include "daemon/releases.h"
#include "daemon/reply.h"
#include "store/store_release.h"
#include "util/log.h"

/*
 * The services of the release that run an image: their digest becomes the
 * image id the controller pins, as a deploy's (api_docker_pin); an image:
 * tag whose id is not known yet cannot be released (a release compares and
 * approves ids). NULL, or the refusal.
 */
static json_t *pin_images(struct daemon *ctl, json_t *req, const char *env)
{
	json_t *it, *reply;
	size_t i;
	json_array_foreach(json_object_get(req, "services"), i, it) {
		const char *svc = json_string_value(json_object_get(it, "service"));
		const char *digest = json_string_value(json_object_get(it, "digest"));
		const char *version = json_string_value(json_object_get(it, "version"));
		const char *ref = json_string_value(json_object_get(it, "image_ref"));
		char id[80];
		bool docker;
		if (!svc || !ctl->spec || !spec_find_service(ctl->spec, svc))
			continue; /* named by releases_create */
		if ((reply = api_docker_pin(ctl, svc, env, version && *version ? version : NULL, digest, ref, &docker, id,
					    sizeof(id)))) {
			json_t *e = json_object_get(reply, "error");
			if (json_is_string(e)) {
				char *m = xasprintf("/services: %s: %s", svc, json_string_value(e));
				json_object_set_new(reply, "error", json_string(m));
				free(m);
			}
			return reply;
		}
		if (!docker)
			continue;
		if (!id[0])
			return reply_error(2, "/services: %s: image %s has no id known to the Docker Engine yet: deploy it "
					   "once (gantry deploy pulls it), then release", svc, version ? version : "");
		json_object_set_new(it, "digest", json_string(id));
	}
	return NULL;
}

json_t *op_release(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	json_t *err = NULL, *reply = NULL;
	const char *env = api_str(req, "environment", true, &err);
	struct spec_proposal prop = { 0 };
	struct gerr gerr;

	if (err)
		return err;
	if (!json_is_array(json_object_get(req, "services")))
		return reply_error(2, "/services: expected an array of {service, digest, version}");
	if (json_object_get(req, "only") && !json_is_array(json_object_get(req, "only")))
		return reply_error(2, "/only: expected an array of service names");
	if (json_object_get(req, "spec")) {
		/* as a deploy's: decides the release under the apply's rules, stored if it goes ahead */
		const char *name, *text;
		size_t len;
		if (api_spec_arg(json_object_get(req, "spec"), "/spec", &name, &text, &len, &err) < 0)
			return err;
		if ((reply = daemon_spec_propose(name, text, len, &c->who, -1, true, "deploy", &prop)))
			return reply;
		if (json_array_size(prop.diff))
			daemon_spec_swap(&prop);
	}
	reply = pin_images(ctl, req, env);
	if (!reply)
		reply = releases_create(req, &c->who, env);
	if (prop.swapped) {
		daemon_spec_swap(&prop);
		/* a release waiting for approval keeps the spec it was resolved with, as a deploy
		 * does: its approval binds to that spec version (gates_rebind) */
		if (json_is_true(json_object_get(reply, "ok")) || json_object_get(reply, "pending_approval")) {
			json_t *diff = json_incref(prop.diff);
			if (daemon_spec_commit(&prop, &c->who, "deploy", &gerr) < 0)
				log_error("spec", "the spec of a release could not be stored: %s", gerr.msg);
			else
				json_object_set_new(reply, "spec_applied", json_pack("{s:I, s:o}", "version",
						    (json_int_t)ctl->spec_version, "diff", diff));
		}
	}
	spec_proposal_release(&prop);
	return reply;
}

json_t *op_release_status(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	json_t *err = NULL, *reply;
	const char *env = api_str(req, "environment", true, &err);
	int id = api_int(req, "id", 0, &err);
	struct release_row r = { 0 }, *rows = NULL;
	struct gerr gerr;
	size_t n = 0;
	int found;

	if (err)
		return err;
	if (!id) {
		/* the newest of env */
		if (store_release_list(ctl->store, env, false, &rows, &n, &gerr) < 0)
			return reply_error(1, "%s", gerr.msg);
		if (!n) {
			free(rows);
			return reply_error(2, "no release in %s yet", env);
		}
		id = (int)rows[0].id;
		for (size_t i = 0; i < n; i++)
			release_row_release(&rows[i]);
		free(rows);
	}
	found = store_release_get(ctl->store, id, &r, &gerr);
	if (found < 0)
		return reply_error(1, "%s", gerr.msg);
	if (!found || strcmp(r.environment, env)) {
		release_row_release(&r);
		return reply_error(2, "no release %d in %s", id, env);
	}
	reply = json_pack("{s:b, s:o}", "ok", 1, "release", releases_json(&r));
	release_row_release(&r);
	return reply;
}

json_t *op_releases(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	json_t *err = NULL, *list;
	const char *env = api_str(req, "environment", true, &err);
	struct release_row *rows = NULL;
	struct gerr gerr;
	size_t n = 0;

	if (err)
		return err;
	if (store_release_list(ctl->store, env, false, &rows, &n, &gerr) < 0)
		return reply_error(1, "%s", gerr.msg);
	list = json_array();
	for (size_t i = 0; i < n; i++) {
		json_array_append_new(list, releases_json(&rows[i]));
		release_row_release(&rows[i]);
	}
	free(rows);
	return json_pack("{s:b, s:o}", "ok", 1, "releases", list);
}

/* release_resume, release_abort: the driver's (releases_command) */
json_t *op_release_command(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	json_t *err = NULL;
	const char *op = json_string_value(json_object_get(req, "op"));
	const char *env = api_str(req, "environment", true, &err);
	const char *reason = api_str(req, "reason", false, &err);
	int id = api_int(req, "id", 0, &err);
	(void)ctl;
	if (err)
		return err;
	if (!id)
		return reply_error(2, "/id: the release's id is required");
	return releases_command(!strcmp(op, "release_resume") ? "resume" : "abort", id, env, &c->who, reason);
}

/* release_promote: release id of environment to environment "to", as a new release (releases_promote) */
json_t *op_release_promote(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	json_t *err = NULL;
	const char *env = api_str(req, "environment", true, &err);
	const char *to = api_str(req, "to", true, &err);
	int id = api_int(req, "id", 0, &err);
	if (err)
		return err;
	if (!id)
		return reply_error(2, "/id: the release's id is required");
	if (!ctl->spec || !spec_find_env(ctl->spec, to))
		return reply_error(2, "/to: no environment '%s' in the spec", to);
	return releases_promote(id, env, to, &c->who);
}
