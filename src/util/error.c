/*
 * error.c — struct gerr (error.h).
 */
#include "common.h"
#include "util/error.h"

int gerr_set(struct gerr *err, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return -1;
}
