/*
 * window.h — deploy windows ("Fri 17:00-Mon 08:00") as sets of minutes of
 * the week; gates/window.h evaluates them at a time in a time zone.
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
#ifndef GANTRY_CORE_WINDOW_H
#define GANTRY_CORE_WINDOW_H
#include "common.h"

#define WEEK_MINUTES (7 * 1440)

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

#endif
