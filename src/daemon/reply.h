/*
 * reply.h — the controller's answer to a request: {"ok": true, ...} built
 * by whoever decided, or reply_error(). The daemon's decisions (a spec
 * applied, a revision rolled out, a gate refusing) and the API's handlers
 * (src/api/) answer in the same shape; the API only carries the answer.
 */
#ifndef GANTRY_DAEMON_REPLY_H
#define GANTRY_DAEMON_REPLY_H
#include "common.h"
#include <jansson.h>

/* {"ok": false, "error": MESSAGE, "code": CODE} (new reference); CODE is the
 * CLI's exit code (enum gantry_exit: 1 failed, 2 bad input, 3 refused);
 * MESSAGE is cut at 1023 bytes */
json_t *reply_error(int code, const char *fmt, ...) PRINTF_LIKE(2, 3);

#endif
