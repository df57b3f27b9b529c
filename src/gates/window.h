/*
 * window.h — deploy windows ("Fri 17:00-Mon 08:00") evaluated in a time zone
 * of the system tz database. The clock and RFC 3339 times: util/clock.h.
 *
 * Time zones are read from TZif files ($TZDIR, else /usr/share/zoneinfo) by
 * our own small reader (RFC 8536, including the POSIX TZ footer for dates
 * past the last transition), so that no process-wide TZ variable is ever
 * switched: the daemon has threads (webhook delivery, checks) and setenv()
 * beside a getenv() in another thread is undefined behaviour.
 *
 * Window grammar (case-insensitive day names Mon..Sun or Monday..Sunday):
 *   "Fri 17:00-Mon 08:00"    one weekly span, from a day and time to a later one
 *                            (wrapping over the week boundary when needed)
 *   "Mon-Fri 09:00-17:00"    the same hours on each listed day; an end at or
 *                            before the start runs into the next day
 *   "Sat,Sun" "Sat-Sun" "Fri" whole days
 *   "22:00-06:00"            every day
 * Several day items can be joined with ',' ("Mon,Wed-Thu 10:00-12:00").
 * Times are HH:MM, 00:00..24:00 (24:00 only as an end).
 */
#ifndef GANTRY_GATES_WINDOW_H
#define GANTRY_GATES_WINDOW_H
#include "common.h"
#include "util/clock.h" /* parse_rfc3339, format_rfc3339 */

#define WEEK_MINUTES (7 * 1440)

struct tz; /* opaque: a loaded zone */

/*
 * Loads zone NAME ("Europe/Berlin"; NULL, "" or "UTC" give UTC). NAME must be
 * a relative path without "..". *out is owned by the caller (tz_free).
 */
int tz_load(const char *name, struct tz **out, struct gerr *err);
void tz_free(struct tz *tz);
const char *tz_name(const struct tz *tz); /* borrowed */

struct local_time {
	int year, month, mday;  /* month 1..12 */
	int hour, min, sec;
	int wday;               /* 0 = Monday .. 6 = Sunday */
	int32_t utoff;          /* seconds east of UTC */
	char abbr[16];          /* "CEST", "+0530" */
};
/* the wall-clock time in tz (NULL = UTC) at unix time t */
void tz_local(const struct tz *tz, int64_t t, struct local_time *out);
/* "2024-05-10 17:00 CEST" */
void tz_format(const struct tz *tz, int64_t t, char *buf, size_t len);

/* a half-open span of minutes of the week, Monday 00:00 = 0; start < end <= WEEK_MINUTES */
struct window_span {
	int start, end;
};

struct window_set {
	struct window_span *spans; /* owned */
	size_t n;
};

/* parses one window string and appends its spans to set; err names the problem */
int window_parse(const char *text, struct window_set *set, struct gerr *err);
void window_set_release(struct window_set *set);
bool window_set_contains(const struct window_set *set, int week_minute);

struct windows {
	struct window_set allow, deny;
	bool has_allow;        /* an allow list was given: outside it is refused */
	struct tz *tz;         /* owned */
};

/* builds from string lists (borrowed); tz NULL/"" = UTC */
int windows_init(struct windows *w, const char *const *allow, size_t nallow,
		 const char *const *deny, size_t ndeny, const char *zone, struct gerr *err);
void windows_release(struct windows *w);

/*
 * 1 when a deploy is allowed at t, 0 when not: then why gets the reason
 * ("inside the deny window 'Fri 17:00-Mon 08:00'" is not known here, so
 * "inside a deny window" / "outside the allow windows") and *next the first
 * allowed minute after t (-1 if none within 8 days).
 */
int windows_check(const struct windows *w, int64_t t, int64_t *next, char *why, size_t whylen);

#endif
