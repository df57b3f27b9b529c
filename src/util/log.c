#include "common.h"
#include "util/log.h"
#include <sys/time.h>
#include <time.h>

enum log_level log_max_level = LOG_INFO;
static FILE *log_file;

void log_set_file(FILE *f)
{
	log_file = f;
}

void log_write(enum log_level lvl, const char *sys, const char *fmt, ...)
{
	static const char *names[] = { "error", "warn", "info", "debug" };
	FILE *f = log_file ? log_file : stderr;
	struct timeval tv;
	struct tm tm;
	char ts[32];
	char line[4096];
	va_list ap;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* one event, one line, whatever a value held: a control character
	 * (a newline in a check's command, a name from a file) becomes '?' and
	 * can never start a forged line (values quoted with log_quote show it
	 * escaped instead) */
	for (char *p = line; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	/* one fprintf per line so concurrent writers do not interleave */
	fprintf(f, "%s.%03dZ level=%s sys=%s %s\n", ts, (int)(tv.tv_usec / 1000),
		names[lvl], sys, line);
	fflush(f);
}

const char *log_quote(const char *s, char *buf, size_t len)
{
	size_t o = 0;
	if (len < 3) {
		if (len)
			*buf = 0;
		return buf;
	}
	buf[o++] = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p && o + 6 < len; p++) {
		if (*p == '"' || *p == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)*p;
		} else if (*p == '\n') {
			buf[o++] = '\\';
			buf[o++] = 'n';
		} else if (*p < 0x20 || *p == 0x7f) {
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", *p);
		} else {
			buf[o++] = (char)*p;
		}
	}
	buf[o++] = '"';
	buf[o] = 0;
	return buf;
}
