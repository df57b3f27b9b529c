/*
 * metrics.h — live per-revision traffic windows, from the proxy's /windows
 * (see metrics.c for how snapshots are kept).
 */
#ifndef GANTRY_DAEMON_METRICS_H
#define GANTRY_DAEMON_METRICS_H
#include "common.h"
#include "http/window.h"

/* polls the proxy every 100 ms (call from the tick) */
void metrics_tick(int64_t now);
/* the traffic of one revision over the last duration_ms (as far as history
 * goes: out->start_ms says where it begins); -1 when nothing is known yet */
int metrics_window(const char *svc, const char *env, int revision, int64_t duration_ms, int64_t now,
		   struct rev_window *out);
/* how old the newest data is, -1 when none */
int64_t metrics_age_ms(int64_t now);
/* how long this controller has read the proxy's windows (-1: not yet): a
 * window longer than that is not measured yet after a start, it would
 * read as "no data" */
int64_t metrics_history_ms(int64_t now);
void metrics_free(void);
/*
 * Writes the last /windows document read (the proxy's own text) to path,
 * atomically (path.tmp, then rename), mode 0600: the --counters-from file
 * of the next proxy, so that its counters go on from ours. 1 written, 0
 * nothing read yet (no file: the new proxy starts from 0), -1 with err
 * set. path borrowed.
 */
int metrics_carry_save(const char *path, struct gerr *err);
/* one /windows document read at now (the poll's, or a test's): the number
 * of revisions in it, -1 when it is not JSON (then nothing changes) */
int metrics__ingest(const char *body, int64_t now);

#endif
