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
	/* one fprintf per line so concurrent writers do not interleave */
	fprintf(f, "%s.%03dZ level=%s sys=%s %s\n", ts, (int)(tv.tv_usec / 1000),
		names[lvl], sys, line);
	fflush(f);
}
