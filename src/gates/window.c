/*
 * window.c — local time in a zone (core/tz.h reads it), deploy windows at
 * a time (core/window.h parses them).
 */
#include "common.h"
#include "gates/window.h"
#include "util/clock.h"
#include <ctype.h>

/* ---- calendar arithmetic: util/clock.h ---- */

/* 0 = Sunday, as POSIX rules count */
static int sunday_wday(int64_t days)
{
	return (int)(((days % 7) + 7 + 4) % 7);
}

/* ---- local time in a zone ---- */

/* local seconds since the epoch (at offset 0) of a rule date in year y */
static int64_t rule_local(int64_t y, const struct tz_rule_date *d)
{
	int64_t days;
	if (d->kind == 'J') {
		days = days_from_civil(y, 1, 1) + d->d - 1 + (is_leap(y) && d->d >= 60);
	} else if (d->kind == 'D') {
		days = days_from_civil(y, 1, 1) + d->d;
	} else {
		int64_t first = days_from_civil(y, d->m, 1);
		int day = 1 + (d->d - sunday_wday(first) + 7) % 7 + (d->w - 1) * 7;
		if (day > month_days(y, d->m))
			day -= 7;
		days = first + day - 1;
	}
	return days * 86400 + d->secs;
}

static void rule_type(const struct tz_rule *r, int64_t t, struct tz_type *out)
{
	bool dst = false;
	if (r->has_dst) {
		int y, m, d;
		int64_t start, end;
		civil_from_days(floor_div(t + r->std_off, 86400), &y, &m, &d);
		start = rule_local(y, &r->start) - r->std_off; /* the start is given in standard time */
		end = rule_local(y, &r->end) - r->dst_off;     /* the end in daylight time */
		dst = start < end ? (t >= start && t < end) : !(t >= end && t < start);
	}
	out->utoff = dst ? r->dst_off : r->std_off;
	out->isdst = dst;
	strlcpy_g(out->abbr, dst ? r->dst_abbr : r->std_abbr, sizeof(out->abbr));
}

static void tz_type_at(const struct tz *tz, int64_t t, struct tz_type *out)
{
	size_t lo = 0, hi;
	if (!tz) {
		*out = (struct tz_type){ 0, false, "UTC" };
		return;
	}
	if (tz->ntrans && t >= tz->trans[tz->ntrans - 1] && tz->rule.present) {
		rule_type(&tz->rule, t, out);
		return;
	}
	if (!tz->ntrans || t < tz->trans[0]) {
		if (!tz->ntrans && tz->rule.present)
			rule_type(&tz->rule, t, out);
		else
			*out = tz->types[0];
		return;
	}
	hi = tz->ntrans; /* the last transition <= t */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (tz->trans[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	*out = tz->types[tz->idx[lo]];
}

void tz_local(const struct tz *tz, int64_t t, struct local_time *out)
{
	struct tz_type ty;
	int64_t local, days, secs;
	tz_type_at(tz, t, &ty);
	local = t + ty.utoff;
	days = floor_div(local, 86400);
	secs = local - days * 86400;
	civil_from_days(days, &out->year, &out->month, &out->mday);
	out->hour = (int)(secs / 3600);
	out->min = (int)(secs / 60 % 60);
	out->sec = (int)(secs % 60);
	out->wday = (sunday_wday(days) + 6) % 7;
	out->utoff = ty.utoff;
	strlcpy_g(out->abbr, ty.abbr, sizeof(out->abbr));
}

void tz_format(const struct tz *tz, int64_t t, char *buf, size_t len)
{
	static const char *const days[] = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun" };
	struct local_time lt;
	tz_local(tz, t, &lt);
	snprintf(buf, len, "%s %04d-%02d-%02d %02d:%02d %s", days[lt.wday], lt.year, lt.month, lt.mday,
		 lt.hour, lt.min, lt.abbr);
}

/* ---- deploy windows at a time ---- */

int windows_init(struct windows *w, const char *const *allow, size_t nallow,
		 const char *const *deny, size_t ndeny, const char *zone, struct gerr *err)
{
	memset(w, 0, sizeof(*w));
	for (size_t i = 0; i < nallow; i++)
		if (window_parse(allow[i], &w->allow, err) < 0)
			goto fail;
	for (size_t i = 0; i < ndeny; i++)
		if (window_parse(deny[i], &w->deny, err) < 0)
			goto fail;
	w->has_allow = nallow > 0;
	if (tz_load(zone, &w->tz, err) < 0)
		goto fail;
	return 0;
fail:
	windows_release(w);
	return -1;
}

void windows_release(struct windows *w)
{
	window_set_release(&w->allow);
	window_set_release(&w->deny);
	tz_free(w->tz);
	w->tz = NULL;
}

static int allowed_at(const struct windows *w, int64_t t, const char **why)
{
	struct local_time lt;
	int m;
	tz_local(w->tz, t, &lt);
	m = lt.wday * 1440 + lt.hour * 60 + lt.min;
	if (window_set_contains(&w->deny, m)) {
		*why = "inside a deny window";
		return 0;
	}
	if (w->has_allow && !window_set_contains(&w->allow, m)) {
		*why = "outside the allow windows";
		return 0;
	}
	return 1;
}

int windows_check(const struct windows *w, int64_t t, int64_t *next, char *why, size_t whylen)
{
	const char *reason = NULL;
	int64_t c;
	*next = -1;
	if (allowed_at(w, t, &reason))
		return 1;
	snprintf(why, whylen, "%s", reason);
	/* walk minute by minute in UTC, so DST changes need no special case */
	c = floor_div(t, 60) * 60 + 60;
	for (int i = 0; i < 8 * 1440; i++, c += 60) {
		const char *r2;
		if (allowed_at(w, c, &r2)) {
			*next = c;
			break;
		}
	}
	return 0;
}
