/*
 * reply.c — the controller's error answer (reply.h).
 */
#include "common.h"
#include "daemon/reply.h"

json_t *reply_error(int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:b, s:s, s:i}", "ok", 0, "error", msg, "code", code);
}
