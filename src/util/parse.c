/*
 * parse.c — typed value parsers (durations, sizes, CPU, percentages).
 *
 * All parsers are strict: no whitespace, no sign, no exponent, no hex, and
 * they do exact integer arithmetic so "1.5m" is 90000 ms with no rounding
 * surprises. A fraction that does not land on a whole unit of the result
 * (a duration finer than 1ms, a CPU finer than 1m) is rejected rather than
 * silently rounded.
 */
#include "common.h"
#include "util/parse.h"
#include <inttypes.h>

/* fractional digits accepted after the '.'; 10^9 * unit still fits int64 */
#define MAX_FRAC_DIGITS 9

/*
 * Reads "DIGITS[.DIGITS]" at *sp: integer part into *ip, fraction as
 * *frac / 10^*fdigits. Advances *sp. Returns -1 when there is no digit or
 * the integer part overflows.
 */
static int read_decimal(const char **sp, int64_t *ip, int64_t *frac, int *fdigits)
{
	const char *s = *sp;
	int64_t v = 0, f = 0;
	int nd = 0, fd = 0;

	while (*s >= '0' && *s <= '9') {
		if (v > (INT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (*s - '0');
		s++;
		nd++;
	}
	if (*s == '.') {
		s++;
		while (*s >= '0' && *s <= '9') {
			if (fd >= MAX_FRAC_DIGITS)
				return -1;
			f = f * 10 + (*s - '0');
			s++;
			fd++;
		}
		if (!fd)
			return -1; /* "1." */
	}
	if (!nd)
		return -1; /* ".5" or no number at all */
	*sp = s;
	*ip = v;
	*frac = f;
	*fdigits = fd;
	return 0;
}

static int64_t pow10_i(int n)
{
	int64_t p = 1;
	while (n-- > 0)
		p *= 10;
	return p;
}

/*
 * ip.frac * unit, exactly (128-bit intermediate: 10^9 * 2^40 overflows
 * int64). Returns -1 on overflow, or when exact is set and the result is not
 * a whole number.
 */
static int scale(int64_t ip, int64_t frac, int fdigits, int64_t unit, bool exact, int64_t *out)
{
	__int128 p = pow10_i(fdigits);
	__int128 v = (__int128)ip * unit;
	__int128 f = (__int128)frac * unit;

	if (exact && f % p)
		return -1;
	v += f / p;
	if (v > INT64_MAX)
		return -1;
	*out = (int64_t)v;
	return 0;
}

static const struct {
	const char *name;
	int64_t ms;
} duration_units[] = {
	/* "ms" before "m" so the longest suffix wins */
	{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 },
};

int parse_duration_ms(const char *s, int64_t *out_ms)
{
	int64_t total = 0;
	unsigned seen = 0;

	if (!s || !*s)
		return -1;
	if (!strcmp(s, "0")) {
		*out_ms = 0;
		return 0;
	}
	while (*s) {
		int64_t ip, frac, v;
		int fd;
		size_t i, ulen = 0;

		if (read_decimal(&s, &ip, &frac, &fd) < 0)
			return -1;
		for (i = 0; i < ARRAY_SIZE(duration_units); i++) {
			ulen = strlen(duration_units[i].name);
			if (!strncmp(s, duration_units[i].name, ulen))
				break;
		}
		if (i == ARRAY_SIZE(duration_units))
			return -1; /* missing or unknown unit: "10", "10x" */
		if (seen & (1u << i))
			return -1; /* "1s2s" */
		seen |= 1u << i;
		s += ulen;
		if (scale(ip, frac, fd, duration_units[i].ms, true, &v) < 0)
			return -1;
		if (total > INT64_MAX - v)
			return -1;
		total += v;
	}
	*out_ms = total;
	return 0;
}

static const struct {
	const char *name;
	int64_t mult;
} size_units[] = {
	{ "Ki", 1LL << 10 }, { "Mi", 1LL << 20 }, { "Gi", 1LL << 30 }, { "Ti", 1LL << 40 },
	{ "k", 1000LL }, { "K", 1000LL }, { "M", 1000000LL }, { "G", 1000000000LL },
	{ "T", 1000000000000LL }, { "", 1 },
};

int parse_size(const char *s, int64_t *out_bytes)
{
	int64_t ip, frac, v;
	int fd;

	if (!s || read_decimal(&s, &ip, &frac, &fd) < 0)
		return -1;
	for (size_t i = 0; i < ARRAY_SIZE(size_units); i++) {
		if (strcmp(s, size_units[i].name))
			continue;
		if (fd && !*s)
			return -1; /* "1.5" bytes */
		/* sizes round down to a whole byte: "1.5K" is 1500, "0.3" is 0 (rejected below) */
		if (scale(ip, frac, fd, size_units[i].mult, false, &v) < 0)
			return -1;
		if (frac && !v)
			return -1;
		*out_bytes = v;
		return 0;
	}
	return -1;
}

int parse_cpu_millis(const char *s, int64_t *out_millis)
{
	int64_t ip, frac, v;
	int fd;

	if (!s || read_decimal(&s, &ip, &frac, &fd) < 0)
		return -1;
	if (!strcmp(s, "m")) {
		if (fd)
			return -1; /* "0.5m": below the 1m precision */
		*out_millis = ip;
		return 0;
	}
	if (*s || scale(ip, frac, fd, 1000, true, &v) < 0)
		return -1;
	*out_millis = v;
	return 0;
}

int parse_percent(const char *s, double *out)
{
	int64_t ip, frac;
	int fd;

	if (!s || read_decimal(&s, &ip, &frac, &fd) < 0 || strcmp(s, "%"))
		return -1;
	if (ip > 1000000000)
		return -1;
	*out = (double)ip + (double)frac / (double)pow10_i(fd);
	return 0;
}

const char *format_duration(int64_t ms, char *buf, size_t len)
{
	static const struct {
		char unit[3];
		int64_t ms;
	} parts[] = { { "d", 86400000 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 }, { "ms", 1 } };
	size_t off = 0;

	if (!len)
		return buf;
	buf[0] = 0;
	if (ms <= 0) {
		/* negative durations do not exist in the spec; show them plainly */
		snprintf(buf, len, ms ? "%" PRId64 "ms" : "0s", ms);
		return buf;
	}
	for (size_t i = 0; i < ARRAY_SIZE(parts) && ms; i++) {
		int64_t n = ms / parts[i].ms;
		int w;
		if (!n)
			continue;
		ms -= n * parts[i].ms;
		w = snprintf(buf + off, len - off, "%" PRId64 "%s", n, parts[i].unit);
		if (w < 0 || (size_t)w >= len - off)
			break; /* truncated; buf stays NUL-terminated */
		off += (size_t)w;
	}
	return buf;
}

/*
 * The value of a YAML single-quoted scalar whose content (between the
 * quotes) is raw[0..len): '' is a quote, a line break folds to a space, n
 * empty lines to n newlines, whitespace around line breaks is dropped. Done
 * here because libfyaml 0.7.12 gets runs of '' wrong ('a''''b' gives a''' )
 * and leaks memory on some (found by fuzz_spec). The spec (core/yaml.c) and
 * SOPS files (secrets/sops.c) read them alike. Returns an owned string.
 */
char *yaml_single_quoted(const char *raw, size_t len)
{
	char *out = xmalloc(len + 1);
	size_t o = 0, i = 0, empties = 0;
	bool first = true;

	while (i <= len) {
		const char *nl = memchr(raw + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - raw) : len, b = i, e = end;
		bool last = !nl;

		if (e > b && raw[e - 1] == '\r')
			e--;
		if (!first)
			while (b < e && (raw[b] == ' ' || raw[b] == '\t'))
				b++;
		if (!last)
			while (e > b && (raw[e - 1] == ' ' || raw[e - 1] == '\t'))
				e--;
		if (!first && !last && b == e) {
			empties++;
		} else {
			if (!first) {
				if (!empties)
					out[o++] = ' ';
				for (; empties; empties--)
					out[o++] = '\n';
			}
			for (size_t k = b; k < e; k++) {
				out[o++] = raw[k];
				if (raw[k] == '\'' && k + 1 < e && raw[k + 1] == '\'')
					k++;
			}
		}
		first = false;
		i = end + 1;
	}
	out[o] = 0;
	return out;
}

/* length of the UTF-8 sequence at s (at most n bytes), or 0 when invalid */
size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xC2 && s[0] <= 0xDF)
		len = 2, cp = s[0] & 0x1F;
	else if (s[0] >= 0xE0 && s[0] <= 0xEF)
		len = 3, cp = s[0] & 0x0F;
	else if (s[0] >= 0xF0 && s[0] <= 0xF4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}
