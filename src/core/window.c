/*
 * window.c — the window grammar (window.h): window strings into sets of
 * minutes of the week.
 */
#include "common.h"
#include "core/window.h"
#include <ctype.h>

static const char *const day_names[] = { "monday", "tuesday", "wednesday", "thursday",
					 "friday", "saturday", "sunday" };

static void skip_ws(const char **sp)
{
	while (**sp == ' ' || **sp == '\t')
		(*sp)++;
}

/* a day name at *sp (3 letters or the full name); its index or -1 */
static int read_day(const char **sp)
{
	const char *s = *sp;
	size_t n = 0;
	while (isalpha((unsigned char)s[n]))
		n++;
	if (n < 3)
		return -1;
	for (int i = 0; i < 7; i++) {
		if ((n == 3 || n == strlen(day_names[i])) && !strncasecmp(s, day_names[i], n)) {
			*sp = s + n;
			return i;
		}
	}
	return -1;
}

/* HH:MM at *sp; minutes of the day (0..1440) or -1 */
static int read_time(const char **sp)
{
	const char *s = *sp;
	int h, m;
	if (!isdigit((unsigned char)s[0]))
		return -1;
	h = s[0] - '0';
	s++;
	if (isdigit((unsigned char)*s))
		h = h * 10 + (*s++ - '0');
	if (*s != ':' || !isdigit((unsigned char)s[1]) || !isdigit((unsigned char)s[2]))
		return -1;
	m = (s[1] - '0') * 10 + (s[2] - '0');
	s += 3;
	if (h > 24 || m > 59 || (h == 24 && m))
		return -1;
	*sp = s;
	return h * 60 + m;
}

/* adds [start, end) (minutes of the week, end may pass the week's end) */
static void add_span(struct window_set *set, int start, int end)
{
	int len = end - start;
	start %= WEEK_MINUTES;
	end = start + len;
	if (end > WEEK_MINUTES) {
		add_span(set, start, WEEK_MINUTES);
		add_span(set, 0, end - WEEK_MINUTES);
		return;
	}
	if (end <= start)
		return;
	set->spans = xrealloc(set->spans, (set->n + 1) * sizeof(*set->spans));
	set->spans[set->n++] = (struct window_span){ start, end };
}

int window_parse(const char *text, struct window_set *set, struct gerr *err)
{
	const char *s = text;
	bool days[7] = { false };
	bool any_day = false;
	int t1, t2;

	skip_ws(&s);
	if (isalpha((unsigned char)*s)) {
		const char *save;
		int d1 = read_day(&s);
		if (d1 < 0)
			return gerr_set(err, "'%s': expected a day (Mon..Sun) or a time (HH:MM)", text);
		skip_ws(&s);
		if (isdigit((unsigned char)*s)) {
			/* "Fri 17:00-Mon 08:00" or "Fri 09:00-17:00" */
			if ((t1 = read_time(&s)) < 0 || t1 == 1440)
				return gerr_set(err, "'%s': invalid time (expected HH:MM, 00:00..23:59)", text);
			skip_ws(&s);
			if (*s++ != '-')
				return gerr_set(err, "'%s': expected '-' after the start time", text);
			skip_ws(&s);
			save = s;
			if (isalpha((unsigned char)*s)) {
				int d2 = read_day(&s), start = d1 * 1440 + t1, end;
				skip_ws(&s);
				if (d2 < 0 || (t2 = read_time(&s)) < 0)
					return gerr_set(err, "'%s': expected 'DAY HH:MM' after '-'", text);
				skip_ws(&s);
				if (*s)
					return gerr_set(err, "'%s': unexpected '%s'", text, s);
				end = d2 * 1440 + t2;
				if (end == start)
					return gerr_set(err, "'%s': the window is empty", text);
				add_span(set, start, end > start ? end : end + WEEK_MINUTES);
				return 0;
			}
			s = save;
			days[d1] = true;
			any_day = true;
			goto times_known_start;
		}
		days[d1] = true;
		any_day = true;
		for (;;) {
			if (*s == '-') {
				int d2;
				s++;
				skip_ws(&s);
				if ((d2 = read_day(&s)) < 0)
					return gerr_set(err, "'%s': expected a day after '-'", text);
				for (int d = d1; d != d2; d = (d + 1) % 7)
					days[d] = true;
				days[d2] = true;
				skip_ws(&s);
			}
			if (*s != ',')
				break;
			s++;
			skip_ws(&s);
			if ((d1 = read_day(&s)) < 0)
				return gerr_set(err, "'%s': expected a day after ','", text);
			days[d1] = true;
			skip_ws(&s);
		}
		if (!*s) {
			for (int d = 0; d < 7; d++)
				if (days[d])
					add_span(set, d * 1440, d * 1440 + 1440);
			return 0;
		}
	}
	if ((t1 = read_time(&s)) < 0 || t1 == 1440)
		return gerr_set(err, "'%s': expected a time HH:MM (00:00..23:59)", text);
	skip_ws(&s);
	if (*s++ != '-')
		return gerr_set(err, "'%s': expected '-' after the start time", text);
	skip_ws(&s);
times_known_start:
	if ((t2 = read_time(&s)) < 0)
		return gerr_set(err, "'%s': expected an end time HH:MM (00:00..24:00)", text);
	skip_ws(&s);
	if (*s)
		return gerr_set(err, "'%s': unexpected '%s'", text, s);
	if (t1 == t2)
		return gerr_set(err, "'%s': the window is empty", text);
	for (int d = 0; d < 7; d++)
		if (days[d] || !any_day)
			add_span(set, d * 1440 + t1, d * 1440 + (t2 > t1 ? t2 : t2 + 1440));
	return 0;
}

void window_set_release(struct window_set *set)
{
	free(set->spans);
	set->spans = NULL;
	set->n = 0;
}

bool window_set_contains(const struct window_set *set, int m)
{
	for (size_t i = 0; i < set->n; i++)
		if (m >= set->spans[i].start && m < set->spans[i].end)
			return true;
	return false;
}
