/*
 * tz.c — reading a zone of the tz database: the TZif file and its POSIX TZ
 * footer (tz.h).
 */
#include "common.h"
#include "core/tz.h"
#include <ctype.h>

#define TZ_MAX_FILE (512 * 1024)

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
