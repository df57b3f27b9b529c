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
sqlite3_stmt *store__prep(struct store *s, const char *sql, struct gerr *err);
void store__bind_text(sqlite3_stmt *st, int i, const char *v);      /* NULL binds "" */
void store__col_text(sqlite3_stmt *st, int i, char *dst, size_t len);
/* steps a statement that returns no rows and finalizes it */
int store__step_done(struct store *s, sqlite3_stmt *st, struct gerr *err);

#endif
