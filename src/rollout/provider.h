/*
 * provider.h — measurements from outside gantry's proxy, for analyses:
 *
 *   prometheus  GET {address}/api/v1/query?query=QUERY (an instant query);
 *               the result must be one sample (a scalar, or a vector of one
 *               series: aggregate with sum/max); an empty vector is no data
 *   http        GET url; the number at json_path in the JSON body ("data.value",
 *               "$.items[0].v"); without json_path the whole body is a number
 *   command     sh -c COMMAND; a number printed on stdout, else the exit code
 *               (stdin and stderr are /dev/null; 127 "not found" is an error)
 *
 * {{revision}}, {{service}} and {{environment}} in the query, url and command
 * are replaced by the revision under analysis (URL-encoded in a URL). The
 * command also gets them as GANTRY_REVISION, GANTRY_SERVICE, GANTRY_ENVIRONMENT.
 *
 * These functions BLOCK (network, child processes): the controller runs them
 * off its event loop (uv_queue_work). Each is bounded: timeout_ms (default
 * 10s when <= 0), at most PROVIDER_MAX_BODY bytes read, and always returns:
 * 0 with *out set (NAN = no data: inconclusive) or -1 with err set (a
 * measurement error). Thread-safe given curl_global_init was called once.
 */
#ifndef GANTRY_ROLLOUT_PROVIDER_H
#define GANTRY_ROLLOUT_PROVIDER_H
#include "common.h"
#include "core/spec.h"

struct json_t;

#define PROVIDER_MAX_BODY (256 * 1024)
#define PROVIDER_DEFAULT_TIMEOUT_MS 10000

struct provider_vars {
	const char *service;     /* borrowed */
	const char *environment; /* borrowed */
	int revision;
};

/* runs m's provider (not builtin: that is the controller's, from the proxy windows) */
int provider_measure(const struct analysis_metric *m, const struct provider_vars *v, double *out, struct gerr *err);

int provider_prometheus(const char *address, const char *query, const struct provider_vars *v, int64_t timeout_ms,
			double *out, struct gerr *err);
int provider_http(const char *url, const char *json_path, const struct provider_vars *v, int64_t timeout_ms,
		  double *out, struct gerr *err);
int provider_command(const char *command, const struct provider_vars *v, int64_t timeout_ms, double *out,
		     struct gerr *err);

/* tmpl with {{revision}}, {{service}}, {{environment}} replaced (url_encode: for URLs); owned by the caller */
char *provider_expand(const char *tmpl, const struct provider_vars *v, bool url_encode);
/* the number at path in root ("a.b[0]", "$.a.b", "" or "$": root); null: NAN. -1 with err when absent or not a number */
int json_path_number(const struct json_t *root, const char *path, double *out, struct gerr *err);

#endif
