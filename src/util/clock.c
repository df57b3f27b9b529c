/*
 * clock.c — the wall and monotonic clocks, GANTRY_NOW, the calendar and
 * RFC 3339 (clock.h). Apart from util/log.c's timestamps, this is the only
 * place that reads the system clock.
 */
#include "common.h"
#include "util/clock.h"
#include <ctype.h>
#include <pthread.h>

static int64_t ts_ms(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* GANTRY_NOW in unix seconds into *t; false when unset, empty or malformed */
static bool fixed_now(int64_t *t)
{
	const char *s = getenv("GANTRY_NOW");
	return s && *s && parse_rfc3339(s, t) == 0;
}

/*
 * GANTRY_NOW_FILE (tests only): a file holding a signed number of seconds
 * ("3600", "-3600") added to the wall clock, read again at each call, so a
 * test can step the clock of a running controller. 0 when unset, missing
 * or malformed.
 */
static int64_t step_ms(void)
{
	const char *path = getenv("GANTRY_NOW_FILE");
	char buf[32], *end;
	long long v;
	FILE *f;
	size_t n;
	if (!path || !*path || !(f = fopen(path, "re")))
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	errno = 0;
	v = strtoll(buf, &end, 10);
	while (isspace((unsigned char)*end))
		end++;
	if (end == buf || *end || errno || v < -100LL * 365 * 86400 || v > 100LL * 365 * 86400)
		return 0;
	return (int64_t)v * 1000;
}

int64_t clock_now_ms(void)
{
	int64_t t;
	if (fixed_now(&t))
		return t * 1000 + step_ms();
	return ts_ms(CLOCK_REALTIME) + step_ms();
}

int64_t clock_now_s(void)
{
	return floor_div(clock_now_ms(), 1000);
}

/* a year: zero-initialised "last time" fields read as long ago, as they did on the wall clock */
#define MONO_OFFSET_MS (365LL * 86400 * 1000)

int64_t clock_mono_ms(void)
{
	return ts_ms(CLOCK_MONOTONIC) + MONO_OFFSET_MS;
}

int64_t clock_anchor_read(struct clock_anchor *a, int64_t wall_ms, int64_t mono_ms)
{
	if (!a->set) {
		a->offset_ms = wall_ms - mono_ms;
		a->set = true;
	}
	return mono_ms + a->offset_ms;
}

static struct clock_anchor steady_anchor;
static pthread_once_t steady_once = PTHREAD_ONCE_INIT;

static void steady_init(void)
{
	clock_anchor_read(&steady_anchor, clock_now_ms(), clock_mono_ms());
}

int64_t clock_steady_ms(void)
{
	pthread_once(&steady_once, steady_init);
	return clock_anchor_read(&steady_anchor, 0, clock_mono_ms());
}

struct timespec clock_mono_deadline(int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (ms > 0) {
		ts.tv_sec += (time_t)(ms / 1000);
		ts.tv_nsec += (long)(ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
	}
	return ts;
}

int64_t clock_file_age_s(time_t mtime)
{
	return floor_div(ts_ms(CLOCK_REALTIME), 1000) - (int64_t)mtime;
}

/* ---- calendar arithmetic (proleptic Gregorian, days since 1970-01-01) ---- */

int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

bool is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int month_days(int64_t y, int m)
{
	static const int md[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return m == 2 && is_leap(y) ? 29 : md[m - 1];
}

int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era;
	unsigned yoe, doy, doe;
	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (unsigned)((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

void civil_from_days(int64_t z, int *y, int *m, int *d)
{
	int64_t era, yy;
	unsigned doe, yoe, doy, mp;
	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned)(z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	yy = (int64_t)yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yy + (*m <= 2));
}

/* ---- RFC 3339 ---- */

static int digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int parse_rfc3339(const char *s, int64_t *out)
{
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	const char *p;
	if (strlen(s) < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
	    digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
	    digits(s + 17, 2, &sec))
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || d > month_days(y, mo) || h > 23 || mi > 59 || sec > 60)
		return -1;
	p = s + 19;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -1;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if ((*p == 'Z' || *p == 'z') && !p[1]) {
		sign = 0;
	} else if ((*p == '+' || *p == '-') && strlen(p) == 6 && !digits(p + 1, 2, &oh) && p[3] == ':' &&
		   !digits(p + 4, 2, &om) && oh <= 23 && om <= 59) {
		sign = *p == '-' ? -1 : 1;
	} else {
		return -1;
	}
	*out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - sign * (oh * 3600 + om * 60);
	return 0;
}

void format_rfc3339(int64_t t, char *buf, size_t len)
{
	int64_t days = floor_div(t, 86400), secs = t - days * 86400;
	int y, m, d;
	civil_from_days(days, &y, &m, &d);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d, (int)(secs / 3600), (int)(secs / 60 % 60),
		 (int)(secs % 60));
}
