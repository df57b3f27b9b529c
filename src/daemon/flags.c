/*
 * flags.c — feature flags, the controller's side (flags.h).
 */
#include "common.h"
#include "daemon/daemon.h"
#include "daemon/flags.h"
#include "daemon/gates_flow.h"
#include "daemon/metrics.h"
#include "daemon/usage.h"
#include "core/condition.h"
#include "rollout/analysis.h"
#include "core/spec_flags.h"
#include "flags/flags.h"
#include "store/store_flags.h"
#include "store/store_records.h"
#include "util/clock.h"
#include "util/log.h"
#include <math.h>
#include <sodium.h>

struct fstate {
	char env[64], flag[64];
	int version;
	char state[72], actor[64], reason[512];
	int64_t at_ms;
	struct fstate *next;
};

static struct fstate *states;
static bool loaded;
static struct flag_defs defs;
static int64_t defs_version = -1;
static uint64_t changes; /* bumped with every change: part of the bulk ETag */

static void load(struct daemon *d)
{
	struct flag_change_row *rows = NULL;
	struct gerr err;
	size_t n = 0;

	if (loaded)
		return;
	if (store_flag_states(d->store, &rows, &n, &err) < 0) {
		log_error("flags", "cannot read the flag state: %s (retrying at the next use)", err.msg);
		return;
	}
	loaded = true;
	for (size_t i = 0; i < n; i++) {
		struct fstate *s = xcalloc(1, sizeof(*s));
		strlcpy_g(s->env, rows[i].environment, sizeof(s->env));
		strlcpy_g(s->flag, rows[i].flag, sizeof(s->flag));
		s->version = rows[i].version;
		strlcpy_g(s->state, rows[i].to_state, sizeof(s->state));
		strlcpy_g(s->actor, rows[i].actor, sizeof(s->actor));
		strlcpy_g(s->reason, rows[i].reason, sizeof(s->reason));
		s->at_ms = rows[i].at_ms;
		s->next = states;
		states = s;
	}
	free(rows);
}

/* one environment's definitions (environments.E.flags over flags:), made at the first use */
struct envdefs {
	char env[64];
	struct flag_defs defs;
	struct envdefs *next;
};
static struct envdefs *envdefs;

static void envdefs_free(void)
{
	while (envdefs) {
		struct envdefs *e = envdefs;
		envdefs = e->next;
		flag_defs_release(&e->defs);
		free(e);
	}
}

/* the stored spec's definitions, re-read when its version changes */
static const struct flag_defs *current_defs(struct daemon *d)
{
	json_t *j;
	struct gerr err;
	if (defs_version == d->spec_version)
		return &defs;
	flag_defs_release(&defs);
	envdefs_free();
	defs_version = d->spec_version;
	changes++;
	if (!d->spec)
		return &defs;
	j = spec_flags_json(d->spec);
	if (flag_defs_parse(j, &defs, &err) < 0)
		log_error("flags", "the stored spec's flags: %s", err.msg);
	json_decref(j);
	return &defs;
}

/* the definitions in env: the top-level ones with env's overrides (the same set of flags) */
static const struct flag_defs *env_defs(struct daemon *d, const char *env)
{
	const struct flag_defs *top = current_defs(d);
	struct envdefs *e;
	json_t *j;
	struct gerr err;
	if (!d->spec || !top->n || !env || strlen(env) >= sizeof(e->env))
		return top;
	for (e = envdefs; e; e = e->next)
		if (!strcmp(e->env, env))
			return &e->defs;
	e = xcalloc(1, sizeof(*e));
	strlcpy_g(e->env, env, sizeof(e->env));
	j = spec_flags_json_env(d->spec, env);
	if (flag_defs_parse(j, &e->defs, &err) < 0) {
		/* validated when stored: only a bug gets here; the top-level ones serve */
		log_error("flags", "environment=%s: the stored spec's flags: %s", env, err.msg);
		json_decref(j);
		free(e);
		return top;
	}
	json_decref(j);
	e->next = envdefs;
	envdefs = e;
	return &e->defs;
}

static struct fstate *find(const char *env, const char *flag)
{
	for (struct fstate *s = states; s; s = s->next)
		if (!strcmp(s->env, env) && !strcmp(s->flag, flag))
			return s;
	return NULL;
}

const char *daemon_flag_state(struct daemon *d, const char *env, const char *name)
{
	struct fstate *s;
	load(d);
	s = find(env, name);
	return s ? s->state : "spec";
}

int daemon_flag_set(struct daemon *d, const char *env, const char *name, const char *state, const char *actor,
		    const char *reason, const struct caller *caller, bool *changed, struct gerr *err)
{
	const struct flag_def *def;
	struct flag_serve sv;
	struct flag_change_row row;
	struct fstate *s;
	char target[140];
	json_t *data;

	if (changed)
		*changed = false;
	if (!actor || !*actor)
		actor = "gantry";
	if (!d->spec || !spec_find_env(d->spec, env))
		return gerr_set(err, "no environment '%s' in the stored spec", env);
	def = flag_defs_find(env_defs(d, env), name);
	if (!def)
		return gerr_set(err, "no flag '%s' in the stored spec (flags: in gantry.yaml, then gantry apply)", name);
	if (strcmp(state, "spec") && flag_serve_parse(def, state, &sv, err) < 0)
		return -1;
	load(d);
	if (!loaded)
		return gerr_set(err, "state store: cannot read the flag state; nothing changed");
	s = find(env, name);
	if (!strcmp(s ? s->state : "spec", state))
		return 0;
	if (daemon_store_refusal(err) < 0)
		return -1;
	memset(&row, 0, sizeof(row));
	strlcpy_g(row.environment, env, sizeof(row.environment));
	strlcpy_g(row.flag, name, sizeof(row.flag));
	row.version = s ? s->version + 1 : 1;
	strlcpy_g(row.from_state, s ? s->state : "spec", sizeof(row.from_state));
	strlcpy_g(row.to_state, state, sizeof(row.to_state));
	strlcpy_g(row.actor, actor, sizeof(row.actor));
	strlcpy_g(row.reason, reason ? reason : "", sizeof(row.reason));
	row.at_ms = clock_now_ms();
	if (store_flag_change_add(d->store, &row, err) < 0)
		return -1;
	if (!s) {
		s = xcalloc(1, sizeof(*s));
		strlcpy_g(s->env, env, sizeof(s->env));
		strlcpy_g(s->flag, name, sizeof(s->flag));
		s->next = states;
		states = s;
	}
	s->version = row.version;
	strlcpy_g(s->state, state, sizeof(s->state));
	strlcpy_g(s->actor, actor, sizeof(s->actor));
	strlcpy_g(s->reason, row.reason, sizeof(s->reason));
	s->at_ms = row.at_ms;
	changes++;
	if (changed)
		*changed = true;

	for (struct svcenv *se = d->svcenvs; se; se = se->next)
		if (!strcmp(se->row.environment, env) && (se->row.target_revision || se->row.stable_revision))
			daemon_event(se, se->row.target_revision ? se->row.target_revision : se->row.stable_revision,
				     "flag_changed", "flag %s in %s: %s -> %s by %s%s%s", name, env, row.from_state, state,
				     actor, row.reason[0] ? ": " : "", row.reason);
	data = json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:s}", "environment", env, "flag", name, "from", row.from_state,
			 "to", state, "version", row.version, "by", actor, "reason", row.reason);
	snprintf(target, sizeof(target), "flag %s@%s", name, env);
	gates_audit_as(caller, actor, "flag_set", target, json_deep_copy(data));
	gates_emit("flag_changed", data);
	log_info("flags", "environment=%s flag=%s from=%s to=%s version=%d by=%s", env, name, row.from_state, state,
		 row.version, actor);
	return 0;
}

static json_t *state_json(struct daemon *d, const struct flag_def *def, const char *env)
{
	struct fstate *s = find(env, def->name);
	char at[40] = "", buf[32];
	json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:s, s:O}", "name", def->name, "environment", env, "state",
			      s ? s->state : "spec", "version", s ? s->version : 0, "default",
			      flag_serve_text(&def->def, buf, sizeof(buf)), "variants", def->variants);
	if (s) {
		format_rfc3339(s->at_ms / 1000, at, sizeof(at));
		json_object_set_new(o, "set_by", json_string(s->actor));
		json_object_set_new(o, "set_at", json_string(at));
		json_object_set_new(o, "reason", json_string(s->reason));
	}
	return o;
}

json_t *daemon_flags_json(struct daemon *d, const char *env)
{
	json_t *a = json_array();
	load(d);
	for (size_t e = 0; d->spec && e < d->spec->nenvs; e++) {
		const char *en = d->spec->envs[e].name;
		const struct flag_defs *fd;
		if (env && strcmp(env, en))
			continue;
		fd = env_defs(d, en);
		for (size_t i = 0; i < fd->n; i++)
			json_array_append_new(a, state_json(d, &fd->defs[i], en));
	}
	return a;
}

json_t *daemon_flag_history_json(struct daemon *d, const char *env, const char *name, struct gerr *err)
{
	struct flag_change_row *rows = NULL;
	size_t n = 0;
	json_t *a;
	if (store_flag_history(d->store, env, name, &rows, &n, err) < 0)
		return NULL;
	a = json_array();
	for (size_t i = 0; i < n; i++) {
		char at[40];
		format_rfc3339(rows[i].at_ms / 1000, at, sizeof(at));
		json_array_append_new(a, json_pack("{s:i, s:s, s:s, s:s, s:s, s:s}", "version", rows[i].version, "from",
						   rows[i].from_state, "to", rows[i].to_state, "by", rows[i].actor,
						   "at", at, "reason", rows[i].reason));
	}
	free(rows);
	return a;
}

/*
 * The tokens read or made so far, by environment: a token never changes
 * once made, so every OFREP request after the first is checked without
 * the store (a flood of SDK polls reads no SQLite page).
 */
struct ftoken {
	char env[64], tok[80];
	struct ftoken *next;
};
static struct ftoken *tokens;

/* tok "": none made yet (only daemon_flags_token makes one, and says so here) */
static void token_remember(const char *env, const char *tok)
{
	struct ftoken *t;
	for (t = tokens; t && strcmp(t->env, env); t = t->next)
		;
	if (!t) {
		t = xcalloc(1, sizeof(*t));
		strlcpy_g(t->env, env, sizeof(t->env));
		t->next = tokens;
		tokens = t;
	}
	strlcpy_g(t->tok, tok, sizeof(t->tok));
}

/* env's token: 1 with tok, 0 none made yet, -1 error; the store is read once per environment */
static int token_get(struct daemon *d, const char *env, char *tok, size_t len, struct gerr *err)
{
	int r;
	for (struct ftoken *t = tokens; t; t = t->next)
		if (!strcmp(t->env, env)) {
			strlcpy_g(tok, t->tok, len);
			return t->tok[0] ? 1 : 0;
		}
	r = store_flag_token_get(d->store, env, tok, len, err);
	if (r >= 0 && strlen(env) < sizeof(tokens->env))
		token_remember(env, r == 1 ? tok : "");
	return r;
}

int daemon_flags_token(struct daemon *d, const char *env, char *tok, size_t len, struct gerr *err)
{
	uint8_t raw[24];
	char hex[49];
	int r = token_get(d, env, tok, len, err);
	if (r != 0)
		return r < 0 ? -1 : 0;
	if (sodium_init() < 0)
		return gerr_set(err, "libsodium cannot start");
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(hex, sizeof(hex), raw, sizeof(raw));
	snprintf(tok, len, "gff_%s", hex);
	if (store_flag_token_put(d->store, env, tok, clock_now_ms(), err) < 0)
		return -1;
	if (strlen(env) < sizeof(tokens->env))
		token_remember(env, tok);
	return 0;
}

static bool same(const char *a, const char *b)
{
	return strlen(a) == strlen(b) && !sodium_memcmp(a, b, strlen(b));
}

int daemon_flags_auth(struct daemon *d, const char *env, const char *tok)
{
	char want[80];
	struct gerr err;
	if (d->spec && spec_find_env(d->spec, env) && daemon_flags_token(d, env, want, sizeof(want), &err) == 0 &&
	    same(want, tok))
		return 0;
	/* whose token is it? another environment's: 403; nobody's: 401 */
	for (size_t e = 0; d->spec && e < d->spec->nenvs; e++) {
		char other[80];
		if (token_get(d, d->spec->envs[e].name, other, sizeof(other), &err) == 1 && same(other, tok))
			return 403;
	}
	return 401;
}

struct ofrep_ctx {
	struct daemon *d;
	const char *env;
};

static const char *state_of(void *arg, const char *flag)
{
	struct ofrep_ctx *c = arg;
	return daemon_flag_state(c->d, c->env, flag);
}

void daemon_flags_ofrep(struct daemon *d, const char *env, const char *tok, const char *key, const char *body,
			size_t len, const char *if_none_match, struct ofrep_answer *out)
{
	struct ofrep_ctx c = { d, env };
	int st = daemon_flags_auth(d, env, tok);

	memset(out, 0, sizeof(*out));
	if (!st) {
		ofrep_evaluate(env_defs(d, env), state_of, &c, changes, key, body, len, if_none_match, out);
		return;
	}
	out->status = st;
	out->body = daemon_flags_auth_body(st);
}

json_t *daemon_flags_auth_body(int status)
{
	return json_pack("{s:s, s:s}", "errorCode", "GENERAL", "errorDetails",
			 status == 403 ? "this token evaluates the flags of another environment"
				       : "unknown token (GANTRY_FLAGS_TOKEN of a replica)");
}

/* the deployment record that rolled out rev of se: 1 with *out, 0 none, -1 error */
static int record_of(struct svcenv *se, int rev, struct deployment_row *out, struct gerr *err)
{
	struct deployment_row *d = NULL;
	size_t n = 0;
	int found = 0;
	if (se->rollout.id) {
		int r = store_deployment_by_rollout(gd->store, se->rollout.id, out, err);
		if (r < 0)
			return -1;
		if (r == 1 && out->revision == rev)
			return 1;
		if (r == 1)
			deployment_row_release(out);
	}
	/* newest first: the record that rolled rev out (as gantry history joins them) */
	if (store_deployment_list(gd->store, se->row.service, se->row.environment, 0, &d, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!found && d[i].revision == rev && d[i].rollout_id) {
			*out = d[i];
			memset(&d[i], 0, sizeof(d[i]));
			found = 1;
		}
		deployment_row_release(&d[i]);
	}
	free(d);
	return found;
}

int daemon_flags_lever(struct svcenv *se, int rev, const char *flag, const char *source, const char *why,
		       struct gerr *err)
{
	const char *env = se->row.environment;
	struct deployment_row d;
	struct deployment_flag_off_row off;
	struct gerr e2;
	bool changed = false;
	int r;

	daemon_event(se, rev, "flag_off", "%s: turning flag %s off in %s (the revision stays)", why, flag, env);
	if (daemon_flag_set(gd, env, flag, "off", "gantry", why, NULL, &changed, err) < 0) {
		log_error("flags", "service=%s environment=%s flag=%s: cannot turn it off: %s", se->row.service, env,
			  flag, err->msg);
		return -1;
	}
	gates_emit("flag_off", json_pack("{s:s, s:s, s:s, s:i, s:s, s:s}", "service", se->row.service, "environment",
					 env, "flag", flag, "revision", rev, "source", source, "reason", why));
	log_info("flags", "service=%s environment=%s revision=%d flag=%s turned off by %s: %s", se->row.service, env,
		 rev, flag, source, why);
	/* the deployment record says it too (gantry deployments, history) */
	memset(&d, 0, sizeof(d));
	r = record_of(se, rev, &d, &e2);
	if (r < 0)
		log_error("flags", "service=%s environment=%s flag=%s: the deployment record: %s", se->row.service, env,
			  flag, e2.msg);
	if (r != 1)
		return 0;
	memset(&off, 0, sizeof(off));
	off.deployment_id = d.id;
	strlcpy_g(off.environment, env, sizeof(off.environment));
	strlcpy_g(off.flag, flag, sizeof(off.flag));
	off.revision = rev;
	strlcpy_g(off.source, source, sizeof(off.source));
	strlcpy_g(off.reason, why, sizeof(off.reason));
	off.flag_version = find(env, flag) ? find(env, flag)->version : 0;
	off.at_ms = clock_now_ms();
	if (store_deployment_flag_off_add(gd->store, &off, &e2) < 0)
		log_error("flags", "deployment=%lld flag=%s: cannot note the flag-off: %s", (long long)d.id, flag,
			  e2.msg);
	deployment_row_release(&d);
	return 0;
}

json_t *daemon_flags_record_json(struct daemon *d, int64_t deployment_id)
{
	struct deployment_flag_off_row *rows = NULL;
	size_t n = 0;
	struct gerr err;
	json_t *a = json_array();
	if (store_deployment_flag_offs(d->store, deployment_id, &rows, &n, &err) < 0) {
		log_error("flags", "deployment=%lld: %s", (long long)deployment_id, err.msg);
		return a;
	}
	for (size_t i = 0; i < n; i++) {
		char at[40];
		format_rfc3339(rows[i].at_ms / 1000, at, sizeof(at));
		json_array_append_new(a, json_pack("{s:s, s:s, s:i, s:s, s:s, s:i, s:s}", "flag", rows[i].flag,
						   "environment", rows[i].environment, "revision", rows[i].revision,
						   "source", rows[i].source, "reason", rows[i].reason, "flag_version",
						   rows[i].flag_version, "at", at));
	}
	free(rows);
	return a;
}

/* the evaluators of one service environment's flag_off entries */
struct fwatch {
	char service[64], env[64];
	int revision;                 /* the target revision they were armed for */
	size_t n;
	struct cond_eval *ev;
	char (*flag)[FLAG_NAME_MAX + 1];
	int64_t last_ms;
	struct fwatch *next;
};

static struct fwatch *watches;

static struct fwatch *watch_of(struct svcenv *se, const struct revcfg *rc)
{
	struct fwatch *w;
	for (w = watches; w; w = w->next)
		if (!strcmp(w->service, se->row.service) && !strcmp(w->env, se->row.environment))
			break;
	if (w && w->revision == rc->number)
		return w;
	if (!w) {
		w = xcalloc(1, sizeof(*w));
		strlcpy_g(w->service, se->row.service, sizeof(w->service));
		strlcpy_g(w->env, se->row.environment, sizeof(w->env));
		w->next = watches;
		watches = w;
	}
	free(w->ev);
	free(w->flag);
	w->ev = xcalloc(rc->cfg.nrollback_on + 1, sizeof(*w->ev));
	w->flag = xcalloc(rc->cfg.nrollback_on + 1, sizeof(*w->flag));
	w->n = 0;
	w->revision = rc->number;
	for (size_t i = 0; i < rc->cfg.nrollback_on; i++) {
		char cond[CONDITION_MAX_LEN * 2 + 1];
		struct condition c;
		struct gerr err;
		if (flag_action_split(rc->cfg.rollback_on[i], cond, sizeof(cond), w->flag[w->n], sizeof(w->flag[0]),
				      &err) != 1 ||
		    condition_parse(cond, &c, &err) < 0)
			continue;
		cond_eval_init(&w->ev[w->n], &c);
		w->ev[w->n].min_requests = 5;
		w->ev[w->n].max_gap_ms = 2000;
		w->n++;
	}
	return w;
}

void daemon_flags_watch(struct svcenv *se)
{
	int64_t now = clock_mono_ms();
	struct revcfg *rc;
	struct fwatch *w;
	struct gerr err;
	int rev = se->row.target_revision;

	if (!rev || !gd->spec)
		return;
	rc = daemon_revcfg(se, rev, &err);
	if (!rc)
		return;
	w = watch_of(se, rc);
	if (!w->n || now - w->last_ms < 100 || metrics_age_ms(now) < 0 || metrics_age_ms(now) > 2000)
		return;
	w->last_ms = now;
	for (size_t i = 0; i < w->n; i++) {
		struct cond_sample smp;
		enum cond_metric m = w->ev[i].cond.metric;
		char desc[256], why[400];
		if (!strcmp(daemon_flag_state(gd, w->env, w->flag[i]), "off")) {
			/* disarmed while off: a new run starts when it is turned on again
			 * (cond_eval_init clears the evaluator: copy its condition first) */
			struct condition c = w->ev[i].cond;
			cond_eval_init(&w->ev[i], &c);
			w->ev[i].min_requests = 5;
			w->ev[i].max_gap_ms = 2000;
			continue;
		}
		daemon_watch_sample(se, rc, rev, m, now, &smp);
		if (cond_eval_feed(&w->ev[i], &smp) != COND_BREACHED)
			continue;
		cond_eval_describe(&w->ev[i], "serving", rev, desc, sizeof(desc));
		snprintf(why, sizeof(why), "rollback_on: %s", desc);
		daemon_flags_lever(se, rev, w->flag[i], "rollback_on", why, &err);
	}
}

static char *api_addr, *flags_addr;

void daemon_flags_set_api(const char *api, const char *flags_listen)
{
	free(api_addr);
	free(flags_addr);
	api_addr = api ? xstrdup(api) : NULL;
	flags_addr = flags_listen ? xstrdup(flags_listen) : NULL;
}

/* "http://HOST:PORT" of addr into url, a wildcard address as loopback */
static void base_url(const char *addr, char *url, size_t len)
{
	const char *port = strrchr(addr, ':');
	if (!strncmp(addr, "0.0.0.0:", 8))
		snprintf(url, len, "http://127.0.0.1%s", port);
	else if (!strncmp(addr, "[::]:", 5))
		snprintf(url, len, "http://[::1]%s", port);
	else
		snprintf(url, len, "http://%s", addr);
}

bool daemon_flags_replica_env(struct daemon *d, const char *env, char *url, size_t urllen, char *tok, size_t toklen)
{
	/* the flags listener when there is one: polls stay off the API's connections */
	const char *addr = flags_addr ? flags_addr : api_addr;
	char base[160];
	struct gerr err;
	if (!addr || !d->spec || !current_defs(d)->n || !strrchr(addr, ':'))
		return false;
	base_url(addr, base, sizeof(base));
	snprintf(url, urllen, "%s/flags/%s", base, env);
	if (daemon_flags_token(d, env, tok, toklen, &err) < 0) {
		log_error("flags", "environment=%s: no OFREP token for its replicas: %s", env, err.msg);
		return false;
	}
	return true;
}

/* the flags listeners opened on the address containers reach the controller at */
struct gwlisten {
	char addr[80];
	bool ok;
	struct gwlisten *next;
};
static struct gwlisten *gwlistens;
static bool said_no_listener;

/* "GATEWAY:PORT" (PORT --flags-listen's) into addr; false without --flags-listen (said once) */
static bool gateway_addr(const char *gateway, char *addr, size_t len)
{
	const char *port = flags_addr ? strrchr(flags_addr, ':') : NULL;
	if (!port) {
		if (!said_no_listener)
			log_warn("flags", "docker replicas get no GANTRY_FLAGS_URL: they reach the controller only "
				 "through serve --flags-listen (the API's --api is not opened to containers)");
		said_no_listener = true;
		return false;
	}
	snprintf(addr, len, "%s%s", gateway, port);
	return true;
}

bool daemon_flags_gateway_listen(struct daemon *d, const char *gateway)
{
	char addr[80];
	struct gwlisten *g;
	struct gerr err;

	if (!d->spec || !current_defs(d)->n || !gateway_addr(gateway, addr, sizeof(addr)))
		return false;
	/* a wildcard listener, or one on the gateway itself, is reached already */
	if (!strncmp(flags_addr, "0.0.0.0:", 8) || !strncmp(flags_addr, "[::]:", 5) || !strcmp(flags_addr, addr))
		return true;
	for (g = gwlistens; g && strcmp(g->addr, addr); g = g->next)
		;
	if (g)
		return g->ok;
	g = xcalloc(1, sizeof(*g));
	strlcpy_g(g->addr, addr, sizeof(g->addr));
	g->next = gwlistens;
	gwlistens = g;
	g->ok = d->api_hooks && d->api_hooks->flags_listen && d->api_hooks->flags_listen(addr, false, &err) == 0;
	if (g->ok)
		log_info("flags", "listen=%s: the docker bridge's gateway, for the containers' OFREP", addr);
	else
		log_error("flags", "docker replicas get no GANTRY_FLAGS_URL: %s",
			  d->api_hooks && d->api_hooks->flags_listen ? err.msg : "no flags listener");
	return g->ok;
}

bool daemon_flags_container_env(struct daemon *d, const char *env, const char *gateway, char *url, size_t urllen,
				char *tok, size_t toklen)
{
	char addr[80];
	struct gerr err;

	if (!daemon_flags_gateway_listen(d, gateway) || !gateway_addr(gateway, addr, sizeof(addr)))
		return false;
	snprintf(url, urllen, "http://%s/flags/%s", addr, env);
	if (daemon_flags_token(d, env, tok, toklen, &err) < 0) {
		log_error("flags", "environment=%s: no OFREP token for its containers: %s", env, err.msg);
		return false;
	}
	return true;
}

void daemon_flags_free(void)
{
	while (gwlistens) {
		struct gwlisten *g = gwlistens;
		gwlistens = g->next;
		free(g);
	}
	said_no_listener = false;
	daemon_flags_set_api(NULL, NULL);
	while (watches) {
		struct fwatch *w = watches;
		watches = w->next;
		free(w->ev);
		free(w->flag);
		free(w);
	}
	while (tokens) {
		struct ftoken *t = tokens;
		tokens = t->next;
		free(t);
	}
	while (states) {
		struct fstate *s = states;
		states = s->next;
		free(s);
	}
	loaded = false;
	envdefs_free();
	flag_defs_release(&defs);
	defs_version = -1;
}
