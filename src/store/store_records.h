/*
 * store_records.h — the gates' and records' tables (schema: migration 3 in
 * store_sqlite.c, the users' scope migration 7): users, incidents, deployments (one record per deploy
 * request, also the approval queue), approvals and the audit chain.
 * Each call is one statement (its own transaction unless the caller holds
 * one with store_begin). Times are unix seconds of the wall clock
 * (clock_now_s(), util/clock.h) unless named _ms.
 */
#ifndef GANTRY_STORE_RECORDS_H
#define GANTRY_STORE_RECORDS_H
#include "common.h"
#include "store/store.h"

#define AUDIT_HASH_HEX 65 /* 64 hex digits + NUL: a SHA-256 or HMAC-SHA256 */

/* room for a scope list: comma-separated names of at most 63 characters each */
#define USER_SCOPE_LEN 1024

struct user_row {
	char name[64];
	char role[16];            /* viewer | deployer | approver | admin */
	char token_hash[AUDIT_HASH_HEX]; /* hex SHA-256 of the API token; "" = none */
	int64_t created_at;
	char created_by[64];
	/* the role's scope (migration 7): comma-separated names, "" = all */
	char environments[USER_SCOPE_LEN];
	char services[USER_SCOPE_LEN];
};

int store_user_put(struct store *s, const struct user_row *u, struct gerr *err); /* insert or replace */
int store_user_get(struct store *s, const char *name, struct user_row *out, struct gerr *err); /* 1/0/-1 */
int store_user_by_token(struct store *s, const char *token_hash, struct user_row *out, struct gerr *err); /* 1/0/-1 */
int store_user_delete(struct store *s, const char *name, struct gerr *err); /* 1 deleted, 0 none, -1 */
/* *out owned by caller (free) */
int store_user_list(struct store *s, struct user_row **out, size_t *n, struct gerr *err);

struct incident_row {
	int64_t id;
	char severity[8];         /* P0..P3 */
	char title[256];
	char service[64];         /* "" = every service */
	char environment[64];     /* "" = every environment */
	char opened_by[64];
	int64_t opened_at;
	char closed_by[64];
	int64_t closed_at;        /* 0 = open */
	char resolution[256];
};

int store_incident_open(struct store *s, struct incident_row *r, struct gerr *err); /* assigns id */
/* 1 closed, 0 no such open incident, -1 error */
int store_incident_close(struct store *s, int64_t id, const char *by, int64_t at, const char *resolution,
			 struct gerr *err);
int store_incident_get(struct store *s, int64_t id, struct incident_row *out, struct gerr *err); /* 1/0/-1 */
/* newest first; *out owned by caller (free) */
int store_incident_list(struct store *s, bool open_only, struct incident_row **out, size_t *n, struct gerr *err);

struct deployment_row {
	int64_t id;
	char service[64], environment[64];
	char kind[16];            /* deploy | promote | rollback | restart */
	char requester[64];
	char state[24];           /* pending_approval | rejected | expired | started | succeeded | failed | rolled_back | refused */
	char *request;            /* JSON: the deploy request as received (token removed); owned */
	char *gates;              /* JSON: gate decisions {"window": "passed", ...}; owned */
	int approvals_needed;
	int64_t approval_ttl;     /* seconds */
	char version[128];
	char digest[80];
	bool emergency;
	char reason[512];
	int64_t commit_time;      /* commit time of the deployed git SHA (0 unknown) */
	int64_t created_at;
	int64_t rollout_id;       /* the controller's rollout, once started */
	int revision, from_revision;
	int64_t started_at, ended_at;
	char result[24];          /* "" while running; succeeded | failed | rolled_back | superseded */
	char result_reason[512];
	char *checks;             /* JSON array of check results; owned */
	char strategy[16];        /* rolling | recreate | canary | bluegreen, once started */
	/* what the deployment rolls out, resolved by the controller from its
	 * stored spec (migration 7): approvals bind to these */
	int64_t spec_version;     /* the stored spec version it was resolved from; 0 = none */
	char config_digest[72];   /* hex SHA-256 of the resolved config (JSON, sorted keys) */
	char *config;             /* the resolved config (svc_config_to_json); owned; NULL/"" = none */
};
void deployment_row_release(struct deployment_row *r);

int store_deployment_add(struct store *s, struct deployment_row *r, struct gerr *err); /* assigns id */
int store_deployment_update(struct store *s, const struct deployment_row *r, struct gerr *err);
int store_deployment_get(struct store *s, int64_t id, struct deployment_row *out, struct gerr *err); /* 1/0/-1 */
int store_deployment_by_rollout(struct store *s, int64_t rollout_id, struct deployment_row *out,
				struct gerr *err); /* 1/0/-1 */
/* newest first, created_at >= since; svc/env NULL = all; *out owned by caller
 * (deployment_row_release each, then free) */
int store_deployment_list(struct store *s, const char *svc, const char *env, int64_t since,
			  struct deployment_row **out, size_t *n, struct gerr *err);
/* the same for the deployments waiting for approval only (state pending_approval) */
int store_deployment_pending(struct store *s, const char *svc, const char *env, struct deployment_row **out,
			     size_t *n, struct gerr *err);

struct approval_row {
	int64_t deployment_id;
	char approver[64];
	char decision[12];        /* approve | reject */
	int64_t at;
	char comment[256];
	char binding[192];        /* what was approved: deployment_binding() of the deployment then */
};
int store_approval_put(struct store *s, const struct approval_row *a, struct gerr *err); /* replaces */
int store_approval_list(struct store *s, int64_t deployment_id, struct approval_row **out, size_t *n,
			struct gerr *err);

/*
 * A row of the audit chain. How an entry is encoded and sealed, and how the
 * chain is verified, is records/audit.h's: the store only keeps the rows.
 */
struct audit_entry {
	int64_t seq;             /* 1, 2, ... */
	int64_t time;            /* unix seconds */
	char actor[64];
	char action[64];         /* the API operation: deploy, approve, incident_open ... */
	char target[256];        /* "api@production", "rollout 7", "incident 3" */
	char *details;           /* JSON object text (owned; audit_entry_release) */
	/* who, from the kernel (v2 only): */
	int64_t uid;             /* the local caller's uid (SO_PEERCRED); -1: remote, or not known (v1) */
	int64_t pid;             /* its pid; 0: not known */
	char peer[80];           /* "unix" (local socket), "tcp:ADDR:PORT", "controller" (its own decision), "" (v1) */
	char prev[AUDIT_HASH_HEX];
	char hash[AUDIT_HASH_HEX]; /* v1: SHA-256; v2: HMAC-SHA256 */
};
void audit_entry_release(struct audit_entry *e);

/*
 * Appends e (actor, action, target, details, time, and uid, pid, peer set by
 * the caller): sets e->seq and e->prev, has seal(e, key) set e->hash, and
 * records the new head in the meta table, in one transaction (or inside the
 * caller's). seal is records/audit.h's audit_seal_key; -1 from it fails the
 * append (details not a JSON object). key (borrowed, AUDIT_KEY_BYTES): a v2
 * entry, MAC'd (peer "" becomes "controller"); NULL: a v1 entry, unkeyed
 * (only tests write those now).
 */
int store_audit_append(struct store *s, struct audit_entry *e,
		       int (*seal)(struct audit_entry *e, const unsigned char *key), const unsigned char *key,
		       struct gerr *err);
/* oldest first, at most 100000; *out owned by caller (audit_entry_release each, then free) */
int store_audit_list(struct store *s, struct audit_entry **out, size_t *n, struct gerr *err);
/* every entry oldest first, one row in memory at a time; e borrowed for the
 * call. fn returns 0 to go on, > 0 to stop (returned), < 0 on error */
int store_audit_each(struct store *s, int (*fn)(void *ctx, const struct audit_entry *e), void *ctx,
		     struct gerr *err);
/* entry seq into *e (owned by caller: audit_entry_release): 1, 0 none, -1 */
int store_audit_get(struct store *s, int64_t seq, struct audit_entry *e, struct gerr *err);
/* the seq of the entry whose prev is hash: 1, 0 none, -1 */
int store_audit_seq_after(struct store *s, const char *hash, int64_t *seq, struct gerr *err);
/* the head recorded apart (meta audit_head): 1, 0 when the row is absent (*seq 0), -1 */
int store_audit_head(struct store *s, int64_t *seq, char hash[AUDIT_HASH_HEX], struct gerr *err);
/* the first v2 (MAC'd) seq, meta audit_mac_from: 1, 0 when not recorded (*seq 0), -1 */
int store_audit_mac_from(struct store *s, int64_t *seq, struct gerr *err);
/* records the switch point when it is not yet: the next seq (1, 0 when it was already, -1) */
int store_audit_mac_start(struct store *s, int64_t *seq, struct gerr *err);

/* ---- webhook outbox (migration 5) ---- */

struct outbox_row {
	int64_t id;
	char event[64];
	char *url, *body, *msg_id; /* owned */
	char *signature;           /* owned; NULL: no webhook-* headers (slack); "" unsigned; else made
				    * before migration 7 (rows since then are signed when posted) */
	char *secret;              /* owned; NULL or the NAME of the secret to sign with (never its value) */
	bool allow_private;        /* the target may be on a loopback, link-local or private address */
	int64_t ts;                /* unix seconds, in the signature */
	int attempts;
	int64_t next_at_ms;
};
void outbox_row_release(struct outbox_row *r);
int store_outbox_add(struct store *s, struct outbox_row *r, struct gerr *err); /* assigns id */
/* at most max rows due at now_ms, oldest first; *out owned by caller (release each, then free) */
int store_outbox_due(struct store *s, int64_t now_ms, size_t max, struct outbox_row **out, size_t *n,
		     struct gerr *err);
int store_outbox_retry(struct store *s, int64_t id, int attempts, int64_t next_at_ms, const char *why,
		       struct gerr *err);
int store_outbox_delete(struct store *s, int64_t id, struct gerr *err);
/* rows left, and the earliest next_at_ms among them (INT64_MAX when none) */
int store_outbox_pending(struct store *s, int64_t *count, int64_t *next_at_ms, struct gerr *err);

#endif
