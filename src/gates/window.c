/*
 * window.c — time zones (TZif reader + POSIX TZ rules) and deploy windows.
 * See window.h for the grammar and why no TZ variable is switched.
 */
#include "common.h"
#include "gates/window.h"
#include "util/clock.h"
#include <ctype.h>

#define TZ_MAX_FILE (512 * 1024)
#define TZ_MAX_TRANS 4096
#define TZ_MAX_TYPES 256

struct tz_type {
	int32_t utoff;
	bool isdst;
	char abbr[16];
};

/* a POSIX TZ string: "CET-1CEST,M3.5.0,M10.5.0/3" */
struct tz_rule_date {
	char kind;     /* 'M', 'J' (1..365, no Feb 29), 'D' (0..365) */
	int m, w, d;   /* M: month, week, weekday (0 = Sunday); J/D: day in d */
	int32_t secs;  /* local time of day of the change */
};

struct tz_rule {
	bool present;
	char std_abbr[16], dst_abbr[16];
	int32_t std_off, dst_off; /* seconds east of UTC */
	bool has_dst;
	struct tz_rule_date start, end;
};

struct tz {
	char name[128];
	int64_t *trans;   /* transition times, ascending */
	uint8_t *idx;     /* type of each transition */
	size_t ntrans;
	struct tz_type types[TZ_MAX_TYPES];
	size_t ntypes;
	struct tz_rule rule;
};

/* ---- calendar arithmetic: util/clock.h ---- */

/* 0 = Sunday, as POSIX rules count */
static int sunday_wday(int64_t days)
{
	return (int)(((days % 7) + 7 + 4) % 7);
}

/* ---- POSIX TZ strings ---- */

static int rule_abbr(const char **sp, char *out, size_t len)
{
	const char *s = *sp;
	size_t n = 0;
	if (*s == '<') {
		s++;
		while (*s && *s != '>') {
			if (n + 1 < len)
				out[n++] = *s;
			s++;
		}
		if (*s != '>')
			return -1;
		s++;
	} else {
		while (isalpha((unsigned char)*s)) {
			if (n + 1 < len)
				out[n++] = *s;
			s++;
		}
	}
	out[n] = 0;
	if (n < 1)
		return -1;
	*sp = s;
	return 0;
}

/* [+-]hh[:mm[:ss]], hours up to 167 (RFC 8536 extension) */
static int rule_hms(const char **sp, int32_t *out)
{
	const char *s = *sp;
	int sign = 1;
	long h = 0, m = 0, sec = 0;
	char *end;
	if (*s == '+' || *s == '-')
		sign = *s++ == '-' ? -1 : 1;
	if (!isdigit((unsigned char)*s))
		return -1;
	h = strtol(s, &end, 10);
	s = end;
	if (*s == ':') {
		m = strtol(s + 1, &end, 10);
		s = end;
		if (*s == ':') {
			sec = strtol(s + 1, &end, 10);
			s = end;
		}
	}
	if (h > 167 || m > 59 || sec > 59 || m < 0 || sec < 0)
		return -1;
	*out = (int32_t)(sign * (h * 3600 + m * 60 + sec));
	*sp = s;
	return 0;
}

static int rule_date(const char **sp, struct tz_rule_date *d)
{
	const char *s = *sp;
	char *end;
	d->secs = 7200;
	if (*s == 'M') {
		d->kind = 'M';
		d->m = (int)strtol(s + 1, &end, 10);
		if (*end != '.')
			return -1;
		d->w = (int)strtol(end + 1, &end, 10);
		if (*end != '.')
			return -1;
		d->d = (int)strtol(end + 1, &end, 10);
		if (d->m < 1 || d->m > 12 || d->w < 1 || d->w > 5 || d->d < 0 || d->d > 6)
			return -1;
	} else if (*s == 'J') {
		d->kind = 'J';
		d->d = (int)strtol(s + 1, &end, 10);
		if (d->d < 1 || d->d > 365)
			return -1;
	} else if (isdigit((unsigned char)*s)) {
		d->kind = 'D';
		d->d = (int)strtol(s, &end, 10);
		if (d->d > 365)
			return -1;
	} else {
		return -1;
	}
	s = end;
	if (*s == '/') {
		s++;
		if (rule_hms(&s, &d->secs) < 0)
			return -1;
	}
	*sp = s;
	return 0;
}

static int parse_rule(const char *s, struct tz_rule *r)
{
	int32_t off;
	memset(r, 0, sizeof(*r));
	if (rule_abbr(&s, r->std_abbr, sizeof(r->std_abbr)) < 0 || rule_hms(&s, &off) < 0)
		return -1;
	r->std_off = -off; /* POSIX counts west */
	r->present = true;
	if (!*s)
		return 0;
	if (rule_abbr(&s, r->dst_abbr, sizeof(r->dst_abbr)) < 0)
		return -1;
	r->has_dst = true;
	r->dst_off = r->std_off + 3600;
	if (*s && *s != ',') {
		if (rule_hms(&s, &off) < 0)
			return -1;
		r->dst_off = -off;
	}
	if (!*s) {
		/* POSIX default rules (US) */
		r->start = (struct tz_rule_date){ 'M', 3, 2, 0, 7200 };
		r->end = (struct tz_rule_date){ 'M', 11, 1, 0, 7200 };
		return 0;
	}
	if (*s != ',')
		return -1;
	s++;
	if (rule_date(&s, &r->start) < 0 || *s != ',')
		return -1;
	s++;
	if (rule_date(&s, &r->end) < 0 || *s)
		return -1;
	return 0;
}

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

/* ---- TZif ---- */

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

struct tzif_counts {
	uint32_t isut, isstd, leap, time, type, chars;
};

static int tzif_header(const unsigned char *p, size_t len, struct tzif_counts *c, char *version)
{
	if (len < 44 || memcmp(p, "TZif", 4))
		return -1;
	*version = (char)p[4];
	c->isut = be32(p + 20);
	c->isstd = be32(p + 24);
	c->leap = be32(p + 28);
	c->time = be32(p + 32);
	c->type = be32(p + 36);
	c->chars = be32(p + 40);
	if (c->time > TZ_MAX_TRANS || c->type < 1 || c->type > TZ_MAX_TYPES || c->chars > 4096 ||
	    c->leap > 1000 || c->isut > TZ_MAX_TYPES || c->isstd > TZ_MAX_TYPES)
		return -1;
	return 0;
}

static size_t tzif_block_len(const struct tzif_counts *c, size_t tsize)
{
	return c->time * tsize + c->time + c->type * 6 + c->chars + c->leap * (tsize + 4) + c->isstd + c->isut;
}

/* parses the data block at p (after its header) with tsize-byte times */
static int tzif_block(struct tz *tz, const unsigned char *p, const struct tzif_counts *c, size_t tsize)
{
	const unsigned char *ti = p + c->time * tsize, *types = ti + c->time, *chars = types + c->type * 6;
	tz->trans = xcalloc(c->time ? c->time : 1, sizeof(*tz->trans));
	tz->idx = xcalloc(c->time ? c->time : 1, 1);
	tz->ntrans = c->time;
	for (uint32_t i = 0; i < c->time; i++) {
		tz->trans[i] = tsize == 8 ? be64(p + i * 8) : (int64_t)(int32_t)be32(p + i * 4);
		tz->idx[i] = ti[i];
		if (ti[i] >= c->type || (i && tz->trans[i] <= tz->trans[i - 1]))
			return -1;
	}
	tz->ntypes = c->type;
	for (uint32_t i = 0; i < c->type; i++) {
		const unsigned char *t = types + i * 6;
		uint8_t ai = t[5];
		tz->types[i].utoff = (int32_t)be32(t);
		tz->types[i].isdst = t[4] != 0;
		if (ai >= c->chars)
			return -1;
		snprintf(tz->types[i].abbr, sizeof(tz->types[i].abbr), "%.*s",
			 (int)strnlen((const char *)chars + ai, c->chars - ai), (const char *)chars + ai);
	}
	return 0;
}

static int tzif_parse(struct tz *tz, const unsigned char *buf, size_t len)
{
	struct tzif_counts c;
	char version;
	size_t off;
	if (tzif_header(buf, len, &c, &version) < 0)
		return -1;
	off = 44 + tzif_block_len(&c, 4);
	if (off > len)
		return -1;
	if (version < '2')
		return tzif_block(tz, buf + 44, &c, 4);
	{
		const unsigned char *h2 = buf + off;
		size_t blen;
		if (tzif_header(h2, len - off, &c, &version) < 0)
			return -1;
		blen = tzif_block_len(&c, 8);
		if (off + 44 + blen > len)
			return -1;
		if (tzif_block(tz, h2 + 44, &c, 8) < 0)
			return -1;
		off += 44 + blen;
		/* footer: "\nTZSTRING\n" */
		if (off < len && buf[off] == '\n') {
			const char *s = (const char *)buf + off + 1;
			const char *nl = memchr(s, '\n', len - off - 1);
			if (nl && nl > s) {
				char *rule = xstrndup(s, (size_t)(nl - s));
				int r = parse_rule(rule, &tz->rule);
				free(rule);
				if (r < 0)
					return -1;
			}
		}
	}
	return 0;
}

static bool valid_zone_name(const char *n)
{
	if (!*n || *n == '/' || strlen(n) > 100 || strstr(n, ".."))
		return false;
	for (const char *p = n; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("/_-+", *p))
			return false;
	return true;
}

int tz_load(const char *name, struct tz **out, struct gerr *err)
{
	struct tz *tz = xcalloc(1, sizeof(*tz));
	const char *dir = getenv("TZDIR");
	char *path = NULL;
	unsigned char *buf = NULL;
	FILE *f = NULL;
	size_t len;
	int ret = -1;

	*out = NULL;
	if (!name || !*name || !strcmp(name, "UTC") || !strcmp(name, "Etc/UTC")) {
		strlcpy_g(tz->name, "UTC", sizeof(tz->name));
		parse_rule("UTC0", &tz->rule);
		*out = tz;
		return 0;
	}
	strlcpy_g(tz->name, name, sizeof(tz->name));
	if (!valid_zone_name(name)) {
		gerr_set(err, "invalid time zone name '%s' (expected e.g. Europe/Berlin)", name);
		goto out;
	}
	path = xasprintf("%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
	f = fopen(path, "rb");
	if (!f) {
		gerr_set(err, "unknown time zone '%s' (not in the tz database: %s)", name, strerror(errno));
		goto out;
	}
	buf = xmalloc(TZ_MAX_FILE);
	len = fread(buf, 1, TZ_MAX_FILE, f);
	if (len >= TZ_MAX_FILE || tzif_parse(tz, buf, len) < 0) {
		gerr_set(err, "time zone '%s': %s is not a valid TZif file", name, path);
		goto out;
	}
	*out = tz;
	tz = NULL;
	ret = 0;
out:
	if (f)
		fclose(f);
	free(buf);
	free(path);
	tz_free(tz);
	return ret;
}

void tz_free(struct tz *tz)
{
	if (!tz)
		return;
	free(tz->trans);
	free(tz->idx);
	free(tz);
}

const char *tz_name(const struct tz *tz)
{
	return tz ? tz->name : "UTC";
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

/* ---- window strings ---- */

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
