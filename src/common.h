/*
 * common.h — the first include of every gantry source file.
 * Feature macros, attributes, small helpers and banned calls (as git's
 * git-compat-util.h and banned.h).
 */
#ifndef GANTRY_COMMON_H
#define GANTRY_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <unistd.h>

#define GANTRY_VERSION "0.1.0"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define UNUSED __attribute__((unused))
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define NORETURN __attribute__((noreturn))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* Internal bugs only: never for bad input (see CONVENTIONS.md "Errors"). */
#define BUG_ON(cond)                                                          \
	do {                                                                  \
		if (cond) {                                                   \
			fprintf(stderr, "BUG: %s:%d: %s\n", __FILE__, __LINE__, \
				#cond);                                       \
			abort();                                              \
		}                                                             \
	} while (0)

/* Allocation failure is not recoverable in a sane way: die loudly. */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) PRINTF_LIKE(1, 2);

/* Bounded copy: always NUL-terminates, returns strlen(src). */
size_t strlcpy_g(char *dst, const char *src, size_t size);

/*
 * Exit codes of the interface contract; the API's error "code" is the same
 * number, so a CLI exits with what the controller said.
 */
enum gantry_exit {
	EXIT_OK = 0,
	EXIT_FAILED = 1,   /* the operation failed (rollout failed or rolled back, check failed) */
	EXIT_USAGE = 2,    /* usage error or invalid input */
	EXIT_REFUSED = 3,  /* refused by a gate or a permission */
};

/* errors travel as a message beside the int return code: struct gerr */
#include "util/error.h"

/* banned calls (git banned.h) */
#define BANNED(func) sorry_##func##_is_a_banned_function
#undef strcpy
#define strcpy(x, y) BANNED(strcpy)
#undef strcat
#define strcat(x, y) BANNED(strcat)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef strtok
#define strtok(x, y) BANNED(strtok)
#undef gmtime
#define gmtime(x) BANNED(gmtime)
#undef localtime
#define localtime(x) BANNED(localtime)

#endif
