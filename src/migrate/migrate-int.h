/*
 * migrate-int.h — the driver interface under migrate.h (private to
 * src/migrate/). A driver speaks SQL to one database; the engine
 * (engine.c) decides what runs, in which transaction, with what records.
 */
#ifndef GANTRY_MIGRATE_INT_H
#define GANTRY_MIGRATE_INT_H
#include "migrate/migrate.h"
#include "util/buf.h"

/* one row of a query: n columns as strings (NULL for SQL NULL), borrowed */
typedef int (*mig__row_fn)(void *arg, int n, const char *const *cols);

struct mig_driver {
	const char *name;
	/* waits for the lock up to timeout_ms; for SQLite it sets the busy timeout */
	int (*lock)(struct mig_db *db, int timeout_ms, struct gerr *err);
	void (*unlock)(struct mig_db *db);
	/* schema_migrations (golang-migrate's DDL for the driver) and gantry's tables */
	int (*ensure)(struct mig_db *db, struct gerr *err);
	/* BEGIN (SQLite: BEGIN EXCLUSIVE, waiting up to the busy timeout) */
	int (*begin)(struct mig_db *db, struct gerr *err);
	int (*commit)(struct mig_db *db, struct gerr *err);
	void (*rollback)(struct mig_db *db);
	/* schema_migrations := one row (version, dirty), or none for MIG_NIL_VERSION */
	int (*set_version)(struct mig_db *db, int64_t version, bool dirty,
			   struct gerr *err);
	/*
	 * A statement with $1..$n text parameters (each used once, in order),
	 * rows to fn (may be NULL).
	 */
	int (*query)(struct mig_db *db, const char *sql, int n,
		     const char *const *params, mig__row_fn fn, void *arg,
		     struct gerr *err);
	/* a file's text, as many statements as it has; notices/output to out */
	int (*run)(struct mig_db *db, const char *name, const char *text,
		   struct hbuf *out, struct gerr *err);
	int (*snapshot)(struct mig_db *db, const char *url, const char *path,
			struct gerr *err);
	int (*restore)(struct mig_db *db, const char *url, const char *path,
		       struct gerr *err);
	void (*close)(struct mig_db *db);
};

struct mig_db {
	const struct mig_driver *drv;
	void *conn; /* sqlite3 * or PGconn * */
	int timeout_ms;
	bool locked;
	struct hbuf *notices; /* where the PG notice processor writes, or NULL */
};

extern const struct mig_driver mig__sqlite;
extern const struct mig_driver mig__postgres;
int mig__sqlite_open(const char *path, struct mig_db *db, struct gerr *err);
int mig__pg_open(const char *url, struct mig_db *db, struct gerr *err);
/* the URL with any password replaced by "xxx" (owned by the caller) */
char *mig__redact(const char *url);
/* 1-based line of byte offset off in text */
int mig__line_of(const char *text, size_t off);

#endif
