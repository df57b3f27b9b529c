/*
 * checks.h — running pre- and post-deployment checks (services.S.checks;
 * core/spec_gates.h validates them):
 *   {"run": "./scripts/smoke.sh", "timeout": "30s"}      passes when it exits 0
 *   {"http": "GET /health", "expect": 200, "timeout": "5s"} against 127.0.0.1:PORT
 * A run check gets $PORT and $GANTRY_URL (http://127.0.0.1:PORT) when a port
 * is known; its output (stdout + stderr) is kept, at most CHECK_OUTPUT_MAX
 * bytes (the end is kept: that is where the error is). A timeout kills the
 * check's whole process group.
 *
 * checks_run_list blocks: call it from a worker thread, never from the
 * event loop. checks_start/checks_poll run a list on a thread, at most
 * CHECKS_PARALLEL at once (the controller's check pool; the others queue).
 */
#ifndef GANTRY_GATES_CHECKS_H
#define GANTRY_GATES_CHECKS_H
#include "common.h"
#include "core/spec_gates.h"

struct json_t;

#define CHECK_OUTPUT_MAX 4096
#define CHECKS_PARALLEL 4          /* check lists running at once; the rest queue */

/*
 * Runs each check of list in order, stopping at the first failure (the rest
 * are reported "skipped"). cwd: where run checks start (NULL: current
 * directory); port 0: no HTTP checks possible (they fail). Returns a new
 * JSON array of {"check", "ok", "output", "duration_ms"} and sets *all_ok.
 */
struct json_t *checks_run_list(const struct json_t *list, const char *cwd, int port, bool *all_ok);

/* runs list (consumed) on a thread; the result comes back from checks_poll */
int checks_start(int64_t key, struct json_t *list, const char *cwd, int port);
/* 1 and the oldest finished job (results: new reference), or 0 */
int checks_poll(int64_t *key, struct json_t **results, bool *ok);

#endif
