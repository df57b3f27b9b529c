/*
 * Operator log: one key=value line per event with a subsystem tag
 * (log_info("rollout", "revision=%d step=%d", ...)). Levels are checked
 * before formatting. What a user sees (CLI/API errors) is kept apart.
 */
#ifndef GANTRY_UTIL_LOG_H
#define GANTRY_UTIL_LOG_H
#include "common.h"

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };
extern enum log_level log_max_level;

void log_set_file(FILE *f); /* borrowed; default stderr */
/* one line; a line identical to the last, within 10 s of it, is counted
 * instead (`... repeated N times in Ts`, printed before the next different
 * line or after the window: log.c) */
void log_write(enum log_level lvl, const char *sys, const char *fmt, ...) PRINTF_LIKE(3, 4);
/* prints a pending repeat count and flushes (at exit) */
void log_flush(void);
/* the clock of the repeat window, in ms (monotonic; tests set their own) */
extern int64_t (*log__clock)(void);
/* s as a logfmt value into buf: quoted, with \" \\ \n and \xNN escapes; cut to fit
 * (a value ends quoted whatever its length). Returns buf. */
const char *log_quote(const char *s, char *buf, size_t len);

#define log_error(sys, ...) do { if (log_max_level >= LOG_ERROR) log_write(LOG_ERROR, sys, __VA_ARGS__); } while (0)
#define log_warn(sys, ...)  do { if (log_max_level >= LOG_WARN)  log_write(LOG_WARN, sys, __VA_ARGS__); } while (0)
#define log_info(sys, ...)  do { if (log_max_level >= LOG_INFO)  log_write(LOG_INFO, sys, __VA_ARGS__); } while (0)
#define log_debug(sys, ...) do { if (log_max_level >= LOG_DEBUG) log_write(LOG_DEBUG, sys, __VA_ARGS__); } while (0)

#endif
