/*
 * clock.h — gantry's two clocks, and the calendar under RFC 3339.
 *
 * Three clocks, three meanings; every other file asks one of them (only
 * util/log.c reads the system clock itself, for log timestamps):
 *
 *   clock_now_ms(), clock_now_s()
 *       The wall clock of records and policy: instants that are stored,
 *       shown to people as when something happened, or compared with the
 *       calendar (events, audit entries, deployments, incidents, deploy
 *       windows and freezes, approval expiry, soak, DORA figures). It may
 *       step (an operator, NTP at boot, a VM resumed): what follows the
 *       calendar follows the step.
 *
 *   clock_mono_ms()
 *       Elapsed time in this process: timers, deadlines and timeouts that
 *       live in memory (probes, drain and kill deadlines, restart backoff,
 *       metric windows, command and HTTP timeouts, throttles). Its zero is
 *       arbitrary: never store it or show it as a time of day. It starts
 *       over a year from zero, so a zero-initialised "last time we did X"
 *       reads as long ago, as it does on the wall clock.
 *
 *   clock_steady_ms()
 *       Durations that are persisted as instants: a canary's pause and
 *       progress deadlines, its `for` windows and analysis rounds, a
 *       rollout's progress deadline, the crash-loop window. It is the wall
 *       clock read once (at its first call in this process) and advanced by
 *       the monotonic clock since: in a running controller a wall-clock
 *       step does not move it (a 20 s pause lasts 20 s), and what it stores
 *       reads as a wall-clock instant. A restarted controller anchors it to
 *       the wall clock again, so a stored deadline has
 *       "stored - wall now" left: a restart across a step is as if the
 *       step's time had passed (docs/internals/controller.md, "Clocks").
 *
 * GANTRY_NOW (for tests only; never set it in production): an RFC 3339
 * instant ("2024-05-10T16:00:00Z") in the environment replaces the wall
 * clock. The wall clock then stands still at that instant: what is
 * recorded carries it, windows and freezes are judged at it, and stored
 * wall deadlines (approval expiry, a webhook's retry) do not pass while it
 * holds. The monotonic and steady clocks run on (the steady one from
 * GANTRY_NOW at its first call): a fixed GANTRY_NOW does not freeze a
 * probe, a drain, a timeout or a canary's pause. A malformed or empty
 * GANTRY_NOW is ignored (the real clock is used). It is read at each call.
 *
 * GANTRY_NOW_FILE (for tests only): names a file holding a signed number
 * of seconds added to the wall clock (GANTRY_NOW's or the real one), read
 * at each call, so a test steps the wall clock of a running controller by
 * writing the file ("3600": an hour forward). Missing, empty or malformed:
 * no step.
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
/* the steady clock: unix milliseconds that do not step (see above) */
int64_t clock_steady_ms(void);
/*
 * The steady clock's arithmetic, for tests: the first read anchors a to
 * wall_ms; every read returns mono_ms moved by that anchor (wall_ms is then
 * ignored: a step of the wall clock does not move it).
 */
struct clock_anchor {
	bool set;
	int64_t offset_ms;
};
int64_t clock_anchor_read(struct clock_anchor *a, int64_t wall_ms, int64_t mono_ms);
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
