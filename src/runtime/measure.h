/*
 * measure.h — takes the measurements rollout/provider.h describes: a GET
 * (libcurl) or a shell command (runtime/shell.h), and has the provider read
 * the answer.
 *
 * measure_metric BLOCKS (network, child processes): the controller runs it
 * off its event loop (uv_queue_work). It is bounded by the request's
 * timeout and answer size, and always returns: 0 with *out set (NAN = no
 * data: inconclusive) or -1 with err set (a measurement error, starting
 * with the provider's name). Thread-safe given curl_global_init was called
 * once.
 */
#ifndef GANTRY_RUNTIME_MEASURE_H
#define GANTRY_RUNTIME_MEASURE_H
#include "common.h"
#include "rollout/provider.h"

/* runs m's provider (not builtin: that is the controller's, from the proxy windows) */
int measure_metric(const struct analysis_metric *m, const struct provider_vars *v, double *out, struct gerr *err);

#endif
