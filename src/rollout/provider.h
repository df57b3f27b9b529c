/*
 * provider.h — measurements from outside gantry's proxy, for analyses, as
 * data: what to run and how to read its answer. Nothing here does I/O;
 * runtime/measure.h runs the request (off the controller's loop).
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
 * Each request is bounded: timeout_ms (default 10s when <= 0) and at most
 * PROVIDER_MAX_BODY bytes of answer.
 */
#ifndef GANTRY_ROLLOUT_PROVIDER_H
#define GANTRY_ROLLOUT_PROVIDER_H
#include "common.h"
#include "core/spec.h"

struct json_t;

#define PROVIDER_MAX_BODY (256 * 1024)
#define PROVIDER_DEFAULT_TIMEOUT_MS 10000
/* a query, URL or command after expansion: the kernel's bound on one argument (MAX_ARG_STRLEN) */
#define PROVIDER_MAX_TEXT (128 * 1024)

struct provider_vars {
	const char *service;     /* borrowed */
	const char *environment; /* borrowed */
	int revision;
};

/* how a measurement is taken */
enum provider_io {
	PROVIDER_IO_GET,   /* GET target (http or https, no redirect); the body of a 2xx is the answer */
	PROVIDER_IO_SHELL, /* sh -c target as a workload with the GANTRY_* variables of vars; its stdout
	                    * and exit status are the answer */
};

struct provider_req {
	enum provider_io io;
	const char *what;          /* "prometheus", "http" or "command": the start of every error (static) */
	char *target;              /* the URL or the command line, templates filled in (owned) */
	int64_t timeout_ms;        /* > 0 */
	size_t max_answer;         /* a longer body or stdout is an error */
	struct provider_vars vars; /* borrowed strings */
};

/* what measuring m (not builtin: that is the controller's, from the proxy windows) takes; 0, or -1 with err */
int provider_request(const struct analysis_metric *m, const struct provider_vars *v, struct provider_req *out,
		     struct gerr *err);
void provider_req_release(struct provider_req *q);

/* the answer to a request: the body of a 2xx, or the stdout of a command that exited */
struct provider_reply {
	const char *data;  /* NUL-terminated (borrowed) */
	size_t len;
	int exit_status;   /* PROVIDER_IO_SHELL */
};
/* m's value read from its answer: 0 with *out set (NAN = no data: inconclusive), or -1 with err */
int provider_read(const struct analysis_metric *m, const struct provider_reply *r, double *out, struct gerr *err);

/* tmpl with {{revision}}, {{service}}, {{environment}} replaced (url_encode: for URLs); owned by
 * the caller; NULL when longer than PROVIDER_MAX_TEXT */
char *provider_expand(const char *tmpl, const struct provider_vars *v, bool url_encode);
/* the number at path in root ("a.b[0]", "$.a.b", "" or "$": root); null: NAN. -1 with err when absent or not a number */
int json_path_number(const struct json_t *root, const char *path, double *out, struct gerr *err);

#endif
