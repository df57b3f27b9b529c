/*
 * error.h — errors travel as a message beside the int return code (curl's
 * failf, haproxy's char **err): a function returns 0 or a negative number
 * and, on failure, says why in the caller's struct gerr. The message names
 * where and what, lowercase, no final period (CONVENTIONS.md, "Errors").
 * Included by common.h: every file has it.
 */
#ifndef GANTRY_UTIL_ERROR_H
#define GANTRY_UTIL_ERROR_H
#include "common.h"

struct gerr {
	char msg[1024];
};
/* formats into err->msg (err may be NULL: nothing kept); returns -1, so `return gerr_set(err, ...)` fails */
int gerr_set(struct gerr *err, const char *fmt, ...) PRINTF_LIKE(2, 3);

#endif
