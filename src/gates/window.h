/*
 * window.h — deploy windows evaluated at a time in a time zone. The window
 * grammar is in core/window.h, reading a zone of the tz database in
 * core/tz.h, the clock and RFC 3339 times in util/clock.h.
 */
#ifndef GANTRY_GATES_WINDOW_H
#define GANTRY_GATES_WINDOW_H
#include "common.h"
#include "core/tz.h"
#include "core/window.h"
#include "util/clock.h" /* parse_rfc3339, format_rfc3339 */

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
