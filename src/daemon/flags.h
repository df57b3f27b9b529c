/*
 * flags.h — feature flags, the controller's side (flags.c): the state of
 * each flag in each environment (store/store_flags.h, read once at the
 * first use and kept in memory; every change writes the store first), the
 * definitions from the stored spec (re-read when the spec version
 * changes), each environment's OFREP token, and the announcements of a
 * change (an event on every service of the environment, a webhook
 * "flag_changed", an audit entry).
 *
 * Evaluation reads this state directly (no cache in between): a change is
 * seen by the next OFREP request.
 */
#ifndef GANTRY_DAEMON_FLAGS_H
#define GANTRY_DAEMON_FLAGS_H
#include "common.h"
#include <jansson.h>

struct daemon;
struct caller;
struct ofrep_answer;

/*
 * Sets flag NAME in env to state ("on", "off", VARIANT, "N%", "spec") as
 * actor (borrowed), with reason (may be NULL). caller NULL: the controller's
 * own decision (a flag_off rollback lever). Setting the current state
 * changes nothing (*changed false). 0, or -1 with err and nothing changed.
 */
int daemon_flag_set(struct daemon *d, const char *env, const char *name, const char *state, const char *actor,
		    const char *reason, const struct caller *caller, bool *changed, struct gerr *err);
/* the state of NAME in env ("spec" when never set); borrowed until the next change */
const char *daemon_flag_state(struct daemon *d, const char *env, const char *name);
/* [{"name", "environment", "state", "version", "set_by", "set_at", "reason", "default", "variants"}]
 * for env (NULL: every environment of the spec): new reference */
json_t *daemon_flags_json(struct daemon *d, const char *env);
/* every change of NAME in env, oldest first: new reference, NULL with err */
json_t *daemon_flag_history_json(struct daemon *d, const char *env, const char *name, struct gerr *err);

/* env's OFREP token (created at the first use): 0, or -1 with err; tok >= 80 bytes */
int daemon_flags_token(struct daemon *d, const char *env, char *tok, size_t len, struct gerr *err);
/*
 * The bearer token tok for env's OFREP endpoints, from the request's head
 * (before any body byte is read): 0 env's token, 403 another environment's,
 * 401 nobody's (or env is not in the spec). Tokens are kept in memory once
 * read: no store access after the first.
 */
int daemon_flags_auth(struct daemon *d, const char *env, const char *tok);
/* the OFREP error body of a 401 or 403 (new reference) */
json_t *daemon_flags_auth_body(int status);
/*
 * The OFREP request of /flags/ENV/ofrep/v1/evaluate/flags[/KEY] with bearer
 * token tok: 401 for a token of no environment, 403 for another
 * environment's, else ofrep_evaluate's answer (out->body: new reference).
 */
void daemon_flags_ofrep(struct daemon *d, const char *env, const char *tok, const char *key, const char *body,
			size_t len, const char *if_none_match, struct ofrep_answer *out);

struct svcenv;
/*
 * The rollback lever: the rollback_on entries of se's target revision that
 * end in "then flag_off NAME" (flags/flags.h). Each is armed while its flag
 * is not off in se's environment, sampled every 100 ms on the revision's
 * trailing second like rollback_on; a breach turns the flag off (actor
 * gantry, the condition as reason), says so in an event ("flag_off") and a
 * webhook, and leaves the revision serving. Called by daemon_reconcile.
 */
void daemon_flags_watch(struct svcenv *se);

/*
 * Pulls the lever: turns flag off in se's environment instead of rolling
 * rev back, because of source ("rollback_on", "analysis NAME") with why
 * (the condition or the analysis' verdict). Says so in an event
 * ("flag_off"), a webhook (flag_off), the flag's history and audit
 * (daemon_flag_set), and on the deployment record that rolled rev out
 * (daemon_flags_record_json). 0, or -1 with err (the flag could not be
 * set; logged).
 */
int daemon_flags_lever(struct svcenv *se, int rev, const char *flag, const char *source, const char *why,
		       struct gerr *err);
/* [{"flag", "environment", "revision", "source", "reason", "flag_version", "at"}]: the levers pulled
 * for deployment id, oldest first (new reference; empty on a store error, logged) */
json_t *daemon_flags_record_json(struct daemon *d, int64_t deployment_id);

/* serve's --api and --flags-listen addresses (NULL: none): where OFREP is served */
void daemon_flags_set_api(const char *api, const char *flags_listen);
/*
 * A replica's GANTRY_FLAGS_URL (http://HOST:PORT/flags/ENV: an OFREP
 * provider's base URL, on --flags-listen when given, else on --api; a
 * wildcard address becomes loopback) and GANTRY_FLAGS_TOKEN: true when
 * the controller serves OFREP and the spec has flags, else false (the
 * variables are left out).
 */
bool daemon_flags_replica_env(struct daemon *d, const char *env, char *url, size_t urllen, char *tok, size_t toklen);

/*
 * The same for a container on a Docker network whose gateway (the host's
 * address on it, IPv4) is gateway: a container cannot reach the host's
 * 127.0.0.1. With --flags-listen on a wildcard address or on gateway
 * itself, url is http://GATEWAY:PORT/flags/ENV; on another address (as
 * 127.0.0.1) a flags listener is opened on GATEWAY:PORT too, at the first
 * need (the same port). false (the variables left out, said in the log
 * once) without --flags-listen (the API is never opened to containers),
 * without flags, or when that listener cannot be opened.
 */
bool daemon_flags_container_env(struct daemon *d, const char *env, const char *gateway, char *url, size_t urllen,
				char *tok, size_t toklen);
/*
 * Its listener part alone: true once containers reach a flags listener at
 * gateway (opened now if needed, at most once), false without flags or
 * --flags-listen or when it cannot be opened. dockrt.c calls it while
 * docker replicas run, so that containers adopted after a restart of the
 * controller find it again.
 */
bool daemon_flags_gateway_listen(struct daemon *d, const char *gateway);

void daemon_flags_free(void);

#endif
