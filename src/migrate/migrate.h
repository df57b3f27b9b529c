/*
 * migrate.h — database migrations: golang-migrate's file layout and its
 * `schema_migrations(version, dirty)` table, kept exactly, so a team can
 * switch to or from golang-migrate unchanged; gantry's own data (each
 * file's SHA-256, who/when/which revision, the contract flag, the output)
 * lives beside it in the target database (`gantry_migrations`, the files
 * applied now, and `gantry_migrations_log`, every run), so checksums
 * travel with the database. Two drivers: SQLite and PostgreSQL (libpq).
 * docs/internals/migrate.md has the rules; this is the contract.
 *
 * Everything here blocks (file reads, SQL, lock waits): the controller
 * calls it on a thread, never on the loop.
 */
#ifndef GANTRY_MIGRATE_MIGRATE_H
#define GANTRY_MIGRATE_MIGRATE_H
#include "common.h"
#include "util/error.h"
#include <inttypes.h>

#define MIG_MAX_FILES 10000
#define MIG_MAX_FILE_BYTES (4u << 20)
#define MIG_NIL_VERSION ((int64_t)-1) /* golang-migrate's: no row in schema_migrations */

/* ---- the directory ----------------------------------------------------- */

enum mig_dir { MIG_UP, MIG_DOWN };

/*
 * One file name, golang-migrate's rule `^([0-9]+)_(.*)\.(down|up)\.(.*)$`
 * (the description and the extension may be empty, the version fits a
 * signed 64-bit integer: PostgreSQL's bigint). Returns 0 and fills
 * version, dir, and *desc (owned by the caller; desc may be NULL), or -1
 * with why in err when the name is not a migration's.
 */
int mig_parse_name(const char *name, int64_t *version, enum mig_dir *dir,
		   char **desc, struct gerr *err);

/* The markers a file's leading `--` comment lines may carry. */
#define MIG_MARK_CONTRACT 0x1       /* "-- gantry:contract" (up): runs after promotion */
#define MIG_MARK_IRREVERSIBLE 0x2   /* "-- gantry:irreversible" (down): never run */
#define MIG_MARK_NO_TX 0x4          /* "-- gantry:no-transaction": runs outside a transaction */
/* the markers of a file's text (the leading comment lines only) */
unsigned mig_markers(const char *text, size_t len);

struct mig_file {
	int64_t version;
	char *desc;      /* "create_users" */
	char *up_name;   /* "001_create_users.up.sql" */
	char *down_name; /* NULL: no down file (irreversible) */
	char up_sum[65]; /* SHA-256 of the up file, hex */
	char down_sum[65];
	unsigned up_marks, down_marks;
};

struct mig_set {
	char *dir;
	struct mig_file *v; /* sorted by version, no duplicates */
	size_t n;
};

/*
 * Reads a migrations directory: every file whose name follows the rule
 * (others are ignored, as golang-migrate does; a name that starts with a
 * digit and ends .up.X/.down.X but does not parse is an error), each one's
 * SHA-256 and markers. Errors name the file: a duplicate version in one
 * direction, a down file without its up, a file too large or unreadable.
 * set is the caller's; mig_set_release frees it (also after a failure).
 */
int mig_set_load(const char *dir, struct mig_set *set, struct gerr *err);
void mig_set_release(struct mig_set *set);
/* index of version in set, or -1 */
ssize_t mig_set_find(const struct mig_set *set, int64_t version);
/* the highest version of the set (MIG_NIL_VERSION when empty) */
int64_t mig_set_latest(const struct mig_set *set);
/*
 * The version a deploy runs up to before traffic: the highest version
 * below the first pending contract migration (pending = above `current`).
 * A later expand migration waits behind a pending contract one: versions
 * are one ordered line.
 */
int64_t mig_set_expand_target(const struct mig_set *set, int64_t current);
/* reads the text of set's file `name` (owned by the caller, NUL-terminated) */
int mig_set_read(const struct mig_set *set, const char *name, char **text,
		 size_t *len, struct gerr *err);
/* "sha256 of p[0..n)" as 64 hex digits into out[65] */
void mig_sha256_hex(const void *p, size_t n, char out[65]);

/* ---- the database ------------------------------------------------------ */

struct mig_db;

/*
 * Opens url: `postgres://` or `postgresql://` (libpq, including its
 * ?host=/socket/dir&port=N parameters) or `sqlite3://PATH`, `sqlite://PATH`
 * (golang-migrate's scheme; PATH relative to the current directory). The
 * error never contains the URL's password.
 */
int mig_open(const char *url, struct mig_db **db, struct gerr *err);
void mig_close(struct mig_db *db);
/* "postgres" or "sqlite" */
const char *mig_driver_name(const struct mig_db *db);

/*
 * The migration lock, waited for up to timeout_ms (polled: PostgreSQL's
 * pg_try_advisory_lock with golang-migrate's key, so gantry and
 * golang-migrate exclude each other; SQLite's lock is each file's
 * BEGIN EXCLUSIVE, and this only checks the database can be locked).
 * A lock held past the timeout fails with who holds it where known.
 * Taken already, it returns 0 (mig_up and mig_down then run under the
 * caller's lock and leave it to the caller's mig_unlock).
 */
int mig_lock(struct mig_db *db, int timeout_ms, struct gerr *err);
void mig_unlock(struct mig_db *db);

struct mig_applied {
	int64_t version;
	char *name;
	char sum[65];
	bool contract;
	char *applied_at, *applied_by;
	int revision;
};

struct mig_state {
	int64_t version; /* MIG_NIL_VERSION: none applied */
	bool dirty;
	struct mig_applied *applied; /* gantry_migrations, by version */
	size_t n_applied;
};
/* reads schema_migrations and gantry_migrations (both may be absent) */
int mig_state_read(struct mig_db *db, struct mig_state *st, struct gerr *err);
void mig_state_release(struct mig_state *st);

/*
 * Checks the files the database has applied against the set: a file whose
 * checksum differs from the recorded one is refused ("001_a.up.sql changed
 * after it was applied (sha256 ab12… recorded, cd34… now)"). Versions
 * applied without a record (golang-migrate applied them) are accepted
 * and recorded at the next run.
 */
int mig_verify(const struct mig_set *set, const struct mig_state *st,
	       struct gerr *err);

struct mig_who {
	const char *by;  /* "alice", "gantry" */
	int revision;    /* 0: none (the CLI's db up) */
};

/* one line per file run: "up 2 002_add_email.up.sql ok 12ms" */
typedef void (*mig_report_fn)(void *arg, const char *line);

/*
 * Runs the up files above the database's version up to `to` (inclusive;
 * INT64_MAX: all), or the down files from the database's version down to
 * `to` (exclusive: the database ends at `to`; MIG_NIL_VERSION: all), newest
 * first. Takes the lock (timeout_ms), verifies checksums, refuses a dirty
 * database, and for downs refuses before running anything when a file on
 * the way is missing or irreversible. Each file runs in its own
 * transaction with its version and its gantry_migrations row, so a failure
 * leaves the database at the last good version (a no-transaction file that
 * fails leaves it dirty, said in err). *ran counts the files run.
 */
int mig_up(struct mig_db *db, const struct mig_set *set, int64_t to,
	   const struct mig_who *who, int timeout_ms, mig_report_fn report,
	   void *arg, int *ran, struct gerr *err);
int mig_down(struct mig_db *db, const struct mig_set *set, int64_t to,
	     const struct mig_who *who, int timeout_ms, mig_report_fn report,
	     void *arg, int *ran, struct gerr *err);
/*
 * Checks a down to `to` can run (every file there, none irreversible)
 * without touching the database beyond reading its version.
 */
int mig_down_check(const struct mig_set *set, int64_t from, int64_t to,
		   struct gerr *err);

struct mig_log_row {
	int64_t id, version;
	char *direction, *name, *sum, *at, *by, *result, *output;
	int revision;
};
/* gantry_migrations_log, newest first, at most limit rows */
int mig_history(struct mig_db *db, int limit, struct mig_log_row **rows,
		size_t *n, struct gerr *err);
void mig_history_release(struct mig_log_row *rows, size_t n);

/*
 * A copy of the database into path: SQLite's online backup API, or
 * pg_dump -Fc (PATH's pg_dump); mig_restore puts it back (pg_restore
 * --clean --if-exists --single-transaction, or the backup API the other
 * way).
 */
int mig_snapshot(struct mig_db *db, const char *url, const char *path,
		 struct gerr *err);
int mig_restore(struct mig_db *db, const char *url, const char *path,
		struct gerr *err);

#endif
