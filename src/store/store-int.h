/*
 * store-int.h — private to src/store/: the SQLite helpers every store_*.c
 * file uses (one prepare/bind/step path, one error message with hints).
 */
#ifndef GANTRY_STORE_INT_H
#define GANTRY_STORE_INT_H
#include "common.h"
#include "store/store.h"
#include <sqlite3.h>

sqlite3 *store__db(struct store *s);
/* err gets "state store: WHAT: sqlite's message (hint)"; returns -1 */
int store__err(struct store *s, struct gerr *err, const char *what);
/* inside store_begin .. store_commit (or an SQLite transaction) */
bool store__in_tx(struct store *s);
sqlite3_stmt *store__prep(struct store *s, const char *sql, struct gerr *err);
void store__bind_text(sqlite3_stmt *st, int i, const char *v);      /* NULL binds "" */
void store__col_text(sqlite3_stmt *st, int i, char *dst, size_t len);
char *store__col_dup(sqlite3_stmt *st, int i);                     /* owned by caller; NULL reads "" */

/*
 * Stepping a prepared, bound statement. Each finalizes st; an error fills
 * err with "state store: WHAT: ..." (store__err) and returns -1.
 */
/* a statement that returns no rows */
int store__step_done(struct store *s, sqlite3_stmt *st, struct gerr *err);
/* an INSERT: *id is the new row's id */
int store__step_insert(struct store *s, sqlite3_stmt *st, int64_t *id, struct gerr *err);
/* an UPDATE or DELETE: 1 when it changed a row, 0 when none matched */
int store__step_changed(struct store *s, sqlite3_stmt *st, struct gerr *err);

/*
 * Reading rows. A table's row decoder (one per row type, beside its
 * X_COLS list) fills row, the caller's struct of that type, from st's
 * current row; it zeroes it first. st NULL (the prepare failed, err is
 * set): -1.
 */
typedef void store__decode_fn(sqlite3_stmt *st, void *row);
/* the decoder of a one-column query: the column as an int64_t */
store__decode_fn store__decode_int64;
/* the first row into *row: 1, 0 when there is none (row untouched), -1 */
int store__one(struct store *s, sqlite3_stmt *st, store__decode_fn *decode, void *row, const char *what,
	       struct gerr *err);
/*
 * Every row, at most STORE_MAX_ROWS, into *out: an array of elements of size
 * sz (owned by caller; NULL when there is none) and *n of them. On an error
 * the rows read so far are released (release: NULL when a row owns
 * nothing), *out is NULL and *n 0.
 */
#define STORE_MAX_ROWS 100000 /* a list never grows without bound */
int store__rows(struct store *s, sqlite3_stmt *st, store__decode_fn *decode, void (*release)(void *row), size_t sz,
		void **out, size_t *n, const char *what, struct gerr *err);

#endif
