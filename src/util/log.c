#include "common.h"
#include "util/log.h"
#include <pthread.h>
#include <sys/time.h>
#include <time.h>

enum log_level log_max_level = LOG_INFO;
static FILE *log_file;

void log_set_file(FILE *f)
{
	log_file = f;
}

/*
 * Repeated lines are collapsed (a retry loop that fails the same way must
 * not fill the disk it may be failing on): a line identical to the last one
 * printed (level, subsystem and text), within LOG_REPEAT_WINDOW_MS of it,
 * is counted, not printed. The count is printed as `... repeated N times in
 * Ts` before the next different line, or when the window ends and the same
 * line comes again (then the line itself is printed once more and a new
 * window starts): at most two lines per window for a flood of one message.
 */
#define LOG_REPEAT_WINDOW_MS 10000

static int64_t mono_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int64_t (*log__clock)(void) = mono_ms;

static pthread_mutex_t log_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct {
	enum log_level lvl;
	char sys[32];
	char line[4096];
	int64_t since_ms;         /* when it was printed */
	unsigned long repeats;    /* counted since, not printed */
	int64_t last_ms;
} last;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

static void emit(FILE *f, enum log_level lvl, const char *sys, const char *line)
{
	struct timeval tv;
	struct tm tm;
	char ts[32];

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	/* one fprintf per line so concurrent writers do not interleave */
	fprintf(f, "%s.%03dZ level=%s sys=%s %s\n", ts, (int)(tv.tv_usec / 1000), level_names[lvl], sys, line);
}

/* the count of the last line, if any (log_mtx held) */
static void flush_repeats(FILE *f)
{
	char msg[160];
	if (!last.repeats)
		return;
	snprintf(msg, sizeof(msg), "... repeated %lu times in %.1fs", last.repeats,
		 (double)(last.last_ms - last.since_ms) / 1000.0);
	emit(f, last.lvl, last.sys, msg);
	last.repeats = 0;
}

void log_flush(void)
{
	FILE *f = log_file ? log_file : stderr;
	pthread_mutex_lock(&log_mtx);
	flush_repeats(f);
	fflush(f);
	pthread_mutex_unlock(&log_mtx);
}

void log_write(enum log_level lvl, const char *sys, const char *fmt, ...)
{
	FILE *f = log_file ? log_file : stderr;
	char line[4096];
	va_list ap;
	int64_t now = log__clock();

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
	pthread_mutex_lock(&log_mtx);
	if (last.since_ms && lvl == last.lvl && !strcmp(sys, last.sys) && !strcmp(line, last.line) &&
	    now - last.since_ms < LOG_REPEAT_WINDOW_MS) {
		last.repeats++;
		last.last_ms = now;
		pthread_mutex_unlock(&log_mtx);
		return;
	}
	flush_repeats(f);
	emit(f, lvl, sys, line);
	fflush(f);
	last.lvl = lvl;
	strlcpy_g(last.sys, sys, sizeof(last.sys));
	strlcpy_g(last.line, line, sizeof(last.line));
	last.since_ms = last.last_ms = now ? now : 1;
	pthread_mutex_unlock(&log_mtx);
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
