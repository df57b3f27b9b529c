/*
 * spec_owner.c — the controller owns the spec (docs/security.md).
 *
 * The desired state and the rules are the newest stored spec version
 * (store_spec.h), parsed once into gd->spec. A client proposes a spec
 * (`gantry apply`, or the spec a `gantry deploy` carries); the controller
 * validates it with the same FILE:LINE:COL diagnostics as `gantry
 * validate`, diffs it against what it stores and decides from the diff and
 * the caller's role: a change to a policy key (core/spec_class.h) needs an
 * admin, anything else a deployer. Every decision, accepted or refused, is
 * an audit entry carrying the diff. A refused or invalid spec changes
 * nothing; an unchanged spec makes no new version.
 */
#include "common.h"
#include "core/spec_class.h"
#include "daemon/daemon.h"
#include "daemon/secrets.h"
#include "daemon/reply.h"
#include "gates/gates.h"
#include "gates/gspec.h"
#include "daemon/gates_flow.h"
#include "util/clock.h"
#include "store/store_spec.h"
#include "util/log.h"
#include <jansson.h>
#include <ctype.h>
#include <sodium.h>

static void digest_hex(const char *text, size_t len, char out[72])
{
	unsigned char h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(h, (const unsigned char *)text, len);
	sodium_bin2hex(out, 72, h, sizeof(h));
}

/* installs spec (consumed) as the current one */
static void set_current(struct spec *spec, int64_t version, const char *digest)
{
	spec_free(gd->spec);
	json_decref(gd->spec_tree);
	gd->spec = spec;
	gd->spec_tree = spec ? spec_tree_json(spec) : NULL;
	json_decref(gd->notify);
	gd->notify = spec ? gspec_notify(spec) : NULL; /* read once per version, not per event */
	gd->spec_version = version;
	strlcpy_g(gd->spec_digest, digest ? digest : "", sizeof(gd->spec_digest));
}

static char *diags_text(const struct diags *d)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return xstrdup("invalid spec");
	diags_print(d, f);
	fclose(f);
	while (len && buf[len - 1] == '\n')
		buf[--len] = 0;
	return buf;
}

int daemon_spec_restore(struct gerr *err)
{
	struct spec_version_row r;
	struct diags d = { 0 };
	struct spec *spec = NULL;
	int found = store_spec_get(gd->store, 0, &r, err);
	if (found <= 0)
		return found;
	if (spec_load_stored(r.name, r.text, strlen(r.text), &spec, &d) < 0) {
		char *t = diags_text(&d);
		gerr_set(err, "the stored spec (version %lld, applied by %s) cannot be read by this build of gantry:\n%s\n"
			 "nothing was changed: run the gantry that applied it, or apply a spec this one reads",
			 (long long)r.version, r.actor, t);
		free(t);
		diags_release(&d);
		spec_version_row_release(&r);
		return -1;
	}
	set_current(spec, r.version, r.digest);
	spec_version_row_release(&r);
	return 1;
}

void daemon_spec_release(void)
{
	set_current(NULL, 0, NULL);
}

/* the policy rows of diff, as "PATH: OLD -> NEW" lines (for the refusal) */
static char *policy_lines(const json_t *diff)
{
	json_t *only = json_array(), *row;
	size_t i;
	char *t;
	json_array_foreach(diff, i, row)
		if (strcmp(json_string_value(json_object_get(row, "class")), "config"))
			json_array_append(only, row);
	t = spec_diff_text(only);
	json_decref(only);
	if (*t && t[strlen(t) - 1] == '\n')
		t[strlen(t) - 1] = 0; /* the message ends where its last line does */
	return t;
}

void spec_proposal_release(struct spec_proposal *p)
{
	spec_free(p->spec);
	json_decref(p->tree);
	json_decref(p->diff);
	free(p->text);
	memset(p, 0, sizeof(*p));
}

json_t *daemon_spec_propose(const char *name, const char *text, size_t len, const struct identity *who,
			    int64_t expect, bool audit_refusal, const char *via, struct spec_proposal *p)
{
	struct diags d = { 0 };
	json_t *reply = NULL;

	memset(p, 0, sizeof(*p));
	if (!name || !*name)
		name = "gantry.yaml";
	strlcpy_g(p->name, name, sizeof(p->name));
	if (expect >= 0 && expect != gd->spec_version) {
		reply = reply_error(1, "the stored spec is version %lld, not %lld: someone applied since; "
				  "look at 'gantry diff' and apply again", (long long)gd->spec_version, (long long)expect);
		json_object_set_new(reply, "current_version", json_integer(gd->spec_version));
		goto refused;
	}
	if (spec_load_buf(name, text, len, &p->spec, &d) < 0) {
		char *t = diags_text(&d);
		reply = reply_error(2, "%s", t);
		json_object_set_new(reply, "diagnostics", json_integer((json_int_t)d.n));
		free(t);
		goto refused;
	}
	digest_hex(text, len, p->digest);
	p->text = xstrndup(text, len);
	p->tree = spec_tree_json(p->spec);
	p->diff = spec_diff(gd->spec_tree, p->tree);
	p->policy = spec_diff_has_policy(p->diff);
	if (p->policy && who->role < ROLE_ADMIN) {
		char *lines = policy_lines(p->diff);
		reply = reply_error(3, "permission denied: %s (role %s) cannot change policy keys (only an admin can):\n%s",
				  who->name, role_name(who->role), lines);
		free(lines);
		json_object_set(reply, "diff", p->diff);
		json_object_set_new(reply, "current_version", json_integer(gd->spec_version));
		goto refused;
	}
	diags_release(&d);
	return NULL;

refused:
	if (audit_refusal)
		gates_audit_as(who->caller, who->name, "apply_refused", "spec",
			       json_pack("{s:s, s:s, s:I, s:O*}", "via", via, "error",
			    json_string_value(json_object_get(reply, "error")), "version", (json_int_t)gd->spec_version,
			    "diff", p->diff));
	diags_release(&d);
	spec_proposal_release(p);
	return reply;
}

int daemon_spec_commit(struct spec_proposal *p, const struct identity *who, const char *via, struct gerr *err)
{
	struct spec_version_row row = { 0 };
	int64_t previous = gd->spec_version;
	size_t n = json_array_size(p->diff);
	if (!n) {
		/* nothing to store; an apply by hand is still a decision on record */
		if (!strcmp(via, "apply"))
			gates_audit_as(who->caller, who->name, "apply", "spec", json_pack("{s:I, s:s, s:b, s:[]}", "version",
				    (json_int_t)gd->spec_version, "via", via, "changed", 0, "diff"));
		spec_proposal_release(p);
		return 0;
	}
	strlcpy_g(row.digest, p->digest, sizeof(row.digest));
	strlcpy_g(row.name, p->name, sizeof(row.name));
	strlcpy_g(row.actor, who->name, sizeof(row.actor));
	row.text = p->text;
	row.created_at = clock_now_s();
	row.diff = json_dumps(p->diff, JSON_COMPACT);
	if (store_spec_add(gd->store, &row, err) < 0) {
		free(row.diff);
		spec_proposal_release(p);
		return -1;
	}
	free(row.diff);
	gates_audit_as(who->caller, who->name, "apply", "spec", json_pack("{s:I, s:I, s:s, s:s, s:b, s:O}", "version",
		    (json_int_t)row.version, "previous", (json_int_t)previous, "digest", p->digest, "via", via,
		    "changed", 1, "diff", p->diff));
	store_event_add(gd->store, "", "", 0, "spec_applied", err, "spec version %lld applied by %s (%s): %zu change%s%s",
			(long long)row.version, who->name, via, n, n == 1 ? "" : "s", p->policy ? ", policy included" : "");
	log_info("spec", "version=%lld actor=%s via=%s changes=%zu policy=%d", (long long)row.version, who->name, via,
		 n, p->policy);
	set_current(p->spec, row.version, p->digest);
	p->spec = NULL;
	spec_proposal_release(p);
	return 1;
}

json_t *daemon_spec_apply(const char *name, const char *text, size_t len, const struct identity *who,
			  int64_t expect, bool dry, const char *via)
{
	struct spec_proposal p;
	struct gerr gerr;
	json_t *reply = daemon_spec_propose(name, text, len, who, expect, !dry, via, &p), *diff;
	int64_t previous = gd->spec_version;
	bool policy;
	int r;
	if (reply)
		return reply;
	diff = json_incref(p.diff);
	policy = p.policy;
	if (dry) {
		reply = json_pack("{s:b, s:I, s:b, s:O, s:b, s:b, s:b}", "ok", 1, "version", (json_int_t)gd->spec_version,
				  "changed", 0, "diff", diff, "policy", policy, "dry_run", 1, "allowed",
				  who->role >= ROLE_DEPLOYER);
		spec_proposal_release(&p);
	} else if ((r = daemon_spec_commit(&p, who, via, &gerr)) < 0) {
		reply = reply_error(1, "%s", gerr.msg);
	} else {
		reply = json_pack("{s:b, s:I, s:I, s:b, s:O, s:b, s:s}", "ok", 1, "version", (json_int_t)gd->spec_version,
				  "previous", (json_int_t)previous, "changed", r == 1, "diff", diff, "policy", policy,
				  "digest", gd->spec_digest);
	}
	json_decref(diff);
	return reply;
}

void daemon_spec_swap(struct spec_proposal *p)
{
	struct spec *spec = gd->spec;
	json_t *tree = gd->spec_tree;
	int64_t version = gd->spec_version;
	gd->spec = p->spec;
	gd->spec_tree = p->tree;
	gd->spec_version = p->swapped ? p->saved_version : version + 1;
	p->spec = spec;
	p->tree = tree;
	p->saved_version = version;
	p->swapped = !p->swapped;
}

int daemon_spec_start(const struct daemon_opts *opts, int *exit_code)
{
	struct gerr err;
	int r = daemon_spec_restore(&err);
	*exit_code = 1;
	if (r < 0) {
		fprintf(stderr, "error: %s\n", err.msg);
		return -1;
	}
	if (r == 0 && opts->spec_text) {
		struct identity who = { .role = ROLE_ADMIN };
		json_t *reply;
		strlcpy_g(who.name, opts->spec_actor ? opts->spec_actor : "gantry", sizeof(who.name));
		reply = daemon_spec_apply(opts->spec_name, opts->spec_text, opts->spec_len, &who, -1, false, "serve");
		if (!json_is_true(json_object_get(reply, "ok"))) {
			fprintf(stderr, "%s\nerror: gantry serve: the spec is not valid: nothing was started\n",
				json_string_value(json_object_get(reply, "error")));
			*exit_code = (int)json_integer_value(json_object_get(reply, "code"));
			json_decref(reply);
			return -1;
		}
		json_decref(reply);
	}
	if (gd->spec_version) {
		log_info("serve", "spec version=%lld digest=%.12s", (long long)gd->spec_version, gd->spec_digest);
		printf("gantry serve: spec version %lld (%s)\n", (long long)gd->spec_version,
		       r == 0 ? "applied from the spec beside it" : "stored");
	} else {
		printf("gantry serve: no spec stored yet: run 'gantry apply'\n");
	}
	fflush(stdout);
	return 0;
}

static bool env_name_ok(const char *k, size_t len)
{
	if (!len || (*k >= '0' && *k <= '9'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!(isalnum((unsigned char)k[i]) || k[i] == '_'))
			return false;
	return true;
}

int daemon_resolve(const char *svc, const char *env, json_t *req, const char *pinned, char **config, char digest[72],
		   json_t **reply)
{
	struct svc_config cfg = { 0 };
	struct gerr gerr;
	json_t *sets = json_object_get(req, "set"), *s, *j;
	const char *strategy = json_string_value(json_object_get(req, "strategy"));
	size_t i;
	int ret = -1;

	*config = NULL;
	if (!gd->spec) {
		*reply = reply_error(2, "the controller stores no spec yet: apply one first (gantry apply -f gantry.yaml)");
		return -1;
	}
	if (sets && !json_is_array(sets)) {
		*reply = reply_error(2, "/set: must be an array of \"env.KEY=VALUE\" strings");
		return -1;
	}
	if (json_object_get(req, "strategy") && (!strategy || (strcmp(strategy, "rolling") && strcmp(strategy, "recreate")))) {
		*reply = reply_error(2, "/strategy: must be \"rolling\" or \"recreate\"");
		return -1;
	}
	if (spec_resolve(gd->spec, svc, env, &cfg, &gerr) < 0) {
		*reply = reply_error(2, "%s (spec version %lld)", gerr.msg, (long long)gd->spec_version);
		return -1;
	}
	json_array_foreach(sets, i, s) {
		const char *t = json_string_value(s), *eq = t ? strchr(t, '=') : NULL;
		char *key;
		if (!t || strncmp(t, "env.", 4) || !eq || !env_name_ok(t + 4, (size_t)(eq - t - 4))) {
			*reply = reply_error(2, "/set/%zu: expected env.KEY=VALUE with KEY a valid environment variable name", i);
			goto out;
		}
		key = xstrndup(t + 4, (size_t)(eq - t - 4));
		svc_config_set_env(&cfg, key, eq + 1);
		free(key);
	}
	if (strategy)
		cfg.strategy.kind = !strcmp(strategy, "recreate") ? STRATEGY_RECREATE : STRATEGY_ROLLING;
	/* every secret named exists; the revision records the version, never the value */
	if (pinned)
		secrets_pin_like(&cfg, pinned);
	if ((*reply = secrets_sops_pin(&cfg, json_object_get(req, "sops"), gd->spec->path)))
		goto out;
	if ((*reply = secrets_pin(&cfg, gd->spec->path)))
		goto out;
	j = svc_config_to_json(&cfg);
	*config = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	digest_hex(*config, strlen(*config), digest);
	ret = 0;
out:
	svc_config_release(&cfg);
	return ret;
}
