/*
 * clock.h — gantry's two clocks, and the calendar under RFC 3339.
 *
 * Two clocks, two meanings; every other file asks one of them (only
 * util/log.c reads the system clock itself, for log timestamps):
 *
 *   clock_now_ms(), clock_now_s()
 *       The wall clock of records and policy: instants that are stored,
 *       shown to people, compared with stored instants or with deploy
 *       windows (events, audit entries, deployments, rollouts and their
 *       persisted deadlines, approvals, incidents, soak, DORA figures).
 *
 *   clock_mono_ms()
 *       Elapsed time in this process: timers, deadlines and timeouts that
 *       live in memory (probes, drain and kill deadlines, restart backoff,
 *       metric windows, command and HTTP timeouts, throttles). Its zero is
 *       arbitrary: never store it or show it as a time of day. It starts
 *       over a year from zero, so a zero-initialised "last time we did X"
 *       reads as long ago, as it does on the wall clock.
 *
 * GANTRY_NOW (for tests only; never set it in production): an RFC 3339
 * instant ("2024-05-10T16:00:00Z") in the environment replaces the wall
 * clock. The wall clock then stands still at that instant: what is
 * recorded carries it, windows and freezes are judged at it, and stored
 * deadlines (approval expiry, a rollout's progress deadline, a canary's
 * timed pause, a webhook's retry) do not pass while it holds. The
 * monotonic clock is never affected: a fixed GANTRY_NOW does not freeze a
 * probe, a drain, a kill deadline or a timeout. A malformed or empty
 * GANTRY_NOW is ignored (the real clock is used). It is read at each call.
 */
#ifndef GANTRY_UTIL_CLOCK_H
#define GANTRY_UTIL_CLOCK_H
#include "common.h"
#include <time.h>

/* the wall clock (GANTRY_NOW when set): unix milliseconds, unix seconds */
int64_t clock_now_ms(void);
int64_t clock_now_s(void);
/* the monotonic clock (CLOCK_MONOTONIC) in milliseconds; GANTRY_NOW never applies */
int64_t clock_mono_ms(void);
/* the CLOCK_MONOTONIC instant ms (<= 0: now) from now, for a wait that takes one (pthread_cond_clockwait) */
struct timespec clock_mono_deadline(int64_t ms);
/*
 * Seconds since mtime, a file time (struct stat's st_mtime). The kernel
 * stamps files with the real clock, so this reads the real clock whatever
 * GANTRY_NOW says (comparing a file's age with a test's fixed "now" would
 * judge the wrong file old).
 */
int64_t clock_file_age_s(time_t mtime);

/* ---- the calendar (proleptic Gregorian, UTC) ---- */

/* floor(a / b) for b > 0, also for a negative a (days before 1970) */
int64_t floor_div(int64_t a, int64_t b);
bool is_leap(int64_t y);
/* days in month m (1..12) of year y */
int month_days(int64_t y, int m);
/* days since 1970-01-01 of y-m-d, and back */
int64_t days_from_civil(int64_t y, int m, int d);
void civil_from_days(int64_t days, int *y, int *m, int *d);

/* RFC 3339 ("2024-05-10T17:00:00Z", "...+02:00", fractions ignored) to unix seconds; -1 if malformed */
int parse_rfc3339(const char *s, int64_t *out);
/* unix seconds as "2024-05-10T15:00:00Z" */
void format_rfc3339(int64_t t, char *buf, size_t len);

#endif
