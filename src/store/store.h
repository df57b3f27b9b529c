/*
 * store.h — gantry's state, behind one interface (SQLite now, PostgreSQL
 * later). No sqlite3 type leaks out of src/store/.
 *
 * Every state transition the controller makes is one call here, and each
 * call is one transaction (or runs inside an explicit store_begin/commit
 * when several rows must change together). The schema carries its own
 * versioned migrations (store_sqlite.c, `migrations[]`).
 */
#ifndef GANTRY_STORE_H
#define GANTRY_STORE_H
#include "common.h"

struct store;

struct revision_row {
	int64_t id;
	char service[64], environment[64];
	int number;               /* per service+environment: 1, 2, ... */
	char version[128];
	char digest[80];          /* artifact digest (hex) */
	char *config_json;        /* resolved svc_config (owned; revision_row_release) */
	char kind[16];            /* deploy | rollback | restart | scale */
	int source;               /* rollback: the revision whose artifact+config it copies */
	char status[24];          /* pending | progressing | serving | superseded | failed | rolled_back */
	char reason[512];
	char deployed_by[64];
	int64_t created_at;       /* unix seconds */
	bool artifact_pruned;
};
void revision_row_release(struct revision_row *r);

struct replica_row {
	char id[160];             /* stable across restarts of the process */
	char service[64], environment[64];
	int revision;
	int port;
	pid_t pid;                /* 0 = not running */
	uint64_t start_time;      /* /proc start time of pid */
	char state[16];           /* starting | ready | unready | draining | stopping | backoff | stopped */
	int restarts;
	int64_t created_at;
	int64_t ready_since;      /* unix ms, 0 when not ready */
	char last_exit[128];      /* "exit 1", "signal 9 (OOM killed)", ... */
	char container[72];       /* docker runtime: the container's id ("" = a process, or not created yet) */
	char host[80];            /* the address the proxy and probes reach it at, "IP:PORT"; "" = 127.0.0.1:port */
};

/* per service environment: what the controller must converge to */
struct svcenv_row {
	char service[64], environment[64];
	int target_revision;      /* what replicas should run; 0 = nothing */
	int stable_revision;      /* last revision that completed a rollout; 0 = none */
	int replicas;             /* desired count of the target (scale overrides config) */
	char phase[24];           /* healthy | progressing | degraded | rolled_back | failed */
	char message[512];
	char traffic[2048];       /* JSON [{revision, weight}] set by `gantry traffic` or a strategy; "" = by replicas */
};

struct rollout_row {
	int64_t id;
	char service[64], environment[64];
	int revision, from_revision;
	char strategy[16];
	char phase[24];           /* progressing | complete | failed | rolled_back | superseded */
	int step, steps;
	char message[512];
	int64_t started_at, updated_at, deadline_at; /* unix ms */
	char state[8192];         /* the strategy's persisted state (JSON), "" for rolling/recreate */
};

struct measurement_row {
	int64_t id, rollout_id, ts_ms;
	char analysis[64], metric[64];
	int revision;
	bool has_value;
	double value;
	char verdict[16];         /* pass | fail | inconclusive | error */
	char message[512];
};

struct event_row {
	int64_t id;
	int64_t ts_ms;
	char service[64], environment[64];
	int revision;
	char kind[32];
	char message[1024];
};

/* opens (creating) DIR/state.db in WAL mode and migrates it.
 * Errors (corrupt, locked, unwritable) are reported in err, never a crash. */
int store_open(const char *path, struct store **out, struct gerr *err);
void store_close(struct store *s);

/*
 * store_begin .. store_commit is all or nothing: once a write inside fails,
 * the later ones are refused and store_commit rolls back and fails (also
 * when COMMIT itself fails, e.g. SQLITE_FULL).
 */
int store_begin(struct store *s, struct gerr *err);
int store_commit(struct store *s, struct gerr *err);
void store_rollback(struct store *s);

/* revisions */
int store_revision_create(struct store *s, struct revision_row *r, struct gerr *err); /* assigns id, number */
int store_revision_get(struct store *s, const char *svc, const char *env, int number,
		       struct revision_row *out, struct gerr *err); /* 1 found, 0 not, -1 error */
int store_revision_set_status(struct store *s, const char *svc, const char *env, int number,
			      const char *status, const char *reason, struct gerr *err);
int store_revision_set_pruned(struct store *s, const char *svc, const char *env, int number,
			      struct gerr *err);
/* newest first; *out owned by caller (free each with revision_row_release, then free) */
int store_revision_list(struct store *s, const char *svc, const char *env,
			struct revision_row **out, size_t *n, struct gerr *err);
/* 1 if any unpruned revision still references digest */
int store_digest_in_use(struct store *s, const char *digest, struct gerr *err);

/* replicas */
int store_replica_put(struct store *s, const struct replica_row *r, struct gerr *err);
int store_replica_delete(struct store *s, const char *id, struct gerr *err);
int store_replica_list(struct store *s, const char *svc, const char *env,
		       struct replica_row **out, size_t *n, struct gerr *err); /* NULL svc = all */

/* service environments */
int store_svcenv_get(struct store *s, const char *svc, const char *env, struct svcenv_row *out,
		     struct gerr *err); /* 1 found, 0 not, -1 */
int store_svcenv_put(struct store *s, const struct svcenv_row *r, struct gerr *err);
int store_svcenv_list(struct store *s, struct svcenv_row **out, size_t *n, struct gerr *err);

/* rollouts */
int store_rollout_put(struct store *s, struct rollout_row *r, struct gerr *err); /* id 0 = insert */
int store_rollout_latest(struct store *s, const char *svc, const char *env,
			 struct rollout_row *out, struct gerr *err); /* 1 found, 0 not, -1 */
/* for promotion and DORA: when revision N of svc@env completed a rollout (unix ms), 1/0/-1 */
int store_rollout_completed_at(struct store *s, const char *svc, const char *env, int revision,
			       int64_t *at_ms, struct gerr *err);
/* rollouts started at or after since_ms, oldest first; svc/env NULL = all; *out owned by caller */
int store_rollout_list(struct store *s, const char *svc, const char *env, int64_t since_ms,
		       struct rollout_row **out, size_t *n, struct gerr *err);

/* events */
int store_event_add(struct store *s, const char *svc, const char *env, int revision,
		    const char *kind, struct gerr *err, const char *fmt, ...) PRINTF_LIKE(7, 8);
/* events with id > after_id, oldest first, at most limit (newest limit when after_id < 0) */
int store_event_list(struct store *s, const char *svc, const char *env, int64_t after_id,
		     int limit, struct event_row **out, size_t *n, struct gerr *err);

/* analysis measurements of a rollout */
int store_measurement_add(struct store *s, const struct measurement_row *m, struct gerr *err);
/* the newest limit, oldest first */
int store_measurement_list(struct store *s, int64_t rollout_id, int limit, struct measurement_row **out,
			   size_t *n, struct gerr *err);

/*
 * The store cannot write: a write failed with a full disk (SQLITE_FULL), an
 * I/O error (SQLITE_IOERR*), a read-only file (SQLITE_READONLY*) or a file
 * it cannot open (SQLITE_CANTOPEN). SQLITE_BUSY and a constraint are not
 * faults. Set by the first such failure (its text and time are kept),
 * cleared by the next write that reaches the disk (an autocommit statement
 * or a COMMIT). Reads are not affected.
 */
struct store_fault_info {
	int code;                 /* the SQLite extended result code */
	int64_t since_ms;         /* unix ms of the first failure */
	char msg[256];            /* "database or disk is full" */
};
/* true while faulted (and *out filled; out may be NULL) */
bool store_fault(const struct store *s, struct store_fault_info *out);
/* whether an SQLite result code is such a fault (for tests and callers of store__) */
bool store_code_is_fault(int code);
/* a small write (the meta row store.probe) to learn whether the store writes again: 0 or -1 */
int store_probe(struct store *s, struct gerr *err);

/* small key/value table for daemon metadata (proxy pid, route generation) */
int store_meta_get(struct store *s, const char *key, char *buf, size_t len, struct gerr *err); /* 1/0/-1 */
int store_meta_set(struct store *s, const char *key, const char *value, struct gerr *err);

#endif
