/*
 * diag.h — collected diagnostics, printed once:
 *
 *   gantry.yaml:12:7: error: services.api.strategy.canary.steps[2]: unknown key 'wieght' (did you mean 'weight'?)
 *         - { wieght: 25 }
 *             ^
 */
#ifndef GANTRY_CORE_DIAG_H
#define GANTRY_CORE_DIAG_H
#include "common.h"

struct diag {
	char *file;
	int line, col;   /* 1-based; 0 when unknown */
	char *path;      /* spec path (services.api.replicas), may be NULL */
	char *message;
	char *source;    /* the source line, may be NULL */
};

struct diags {
	struct diag *items;
	size_t n;
};

void diags_add(struct diags *d, const char *file, int line, int col, const char *path,
	       const char *source_line, const char *fmt, ...) PRINTF_LIKE(7, 8);
/* prints every diagnostic, with source line and caret */
void diags_print(const struct diags *d, FILE *f);
void diags_release(struct diags *d);
/* line LINE (1-based) of src[0..len) copied into buf (cut to bufsz), or NULL */
const char *diag_source_line(const char *src, size_t len, int line, char *buf, size_t bufsz);

/* edit distance, for "did you mean" (returns the best candidate within 2, or
 * NULL; borrowed from candidates). diags_add keeps at most 200 diagnostics. */
const char *diag_suggest(const char *word, const char *const *candidates, size_t n);

#endif
