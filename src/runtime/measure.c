/*
 * measure.c — the I/O of analysis measurements (measure.h): what
 * rollout/provider.c asks for, run here.
 */
#include "common.h"
#include "runtime/measure.h"
#include "runtime/shell.h"
#include "util/buf.h"
#include <curl/curl.h>
#include <inttypes.h>

/* GETs q->target and requires a 2xx; *body (owned by the caller) is its body */
static int get(const struct provider_req *q, char **body, size_t *len, struct gerr *err)
{
	CURL *c = curl_easy_init();
	char cerr[CURL_ERROR_SIZE] = "";
	struct hbuf_sink sink;
	long status = 0;
	CURLcode rc;
	int ret = -1;

	hbuf_sink_init(&sink, q->max_answer);
	if (!c)
		return gerr_set(err, "%s: cannot start an HTTP client", q->what);
	curl_easy_setopt(c, CURLOPT_URL, q->target);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)q->timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)q->timeout_ms);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, hbuf_sink_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "gantry/" GANTRY_VERSION);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	rc = curl_easy_perform(c);
	if (sink.over) {
		gerr_set(err, "%s: response larger than %zu bytes", q->what, q->max_answer);
		goto out;
	}
	if (rc != CURLE_OK) {
		gerr_set(err, "%s: %s", q->what, *cerr ? cerr : curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status < 200 || status > 299) {
		gerr_set(err, "%s: HTTP status %ld", q->what, status);
		goto out;
	}
	*body = hbuf_detach(&sink.buf, len);
	ret = 0;
out:
	curl_easy_cleanup(c);
	hbuf_release(&sink.buf);
	return ret;
}

/* runs q->target as a workload; *r (owned by the caller) when it exited */
static int shell(const struct provider_req *q, struct shell_result *r, struct gerr *err)
{
	struct workload_env we = { .service = q->vars.service ? q->vars.service : "",
				   .environment = q->vars.environment ? q->vars.environment : "",
				   .revision = q->vars.revision };
	struct shell_opts o = { .cmd = q->target, .env = &we, .timeout_ms = q->timeout_ms,
				.max_output = q->max_answer };
	struct gerr e2;

	if (shell_run(&o, r, &e2) < 0)
		return gerr_set(err, "%s: %s", q->what, e2.msg);
	switch (r->end) {
	case SHELL_EXITED:
		return 0;
	case SHELL_TIMED_OUT:
		gerr_set(err, "%s: timed out after %" PRId64 "ms", q->what, q->timeout_ms);
		break;
	case SHELL_TOO_MUCH:
		gerr_set(err, "%s: more than %zu bytes on stdout", q->what, q->max_answer);
		break;
	case SHELL_SIGNALED:
		gerr_set(err, "%s: killed by signal %d", q->what, r->code);
		break;
	}
	shell_result_release(r);
	return -1;
}

int measure_metric(const struct analysis_metric *m, const struct provider_vars *v, double *out, struct gerr *err)
{
	struct provider_req q;
	struct provider_reply reply = { 0 };
	struct shell_result sr = { 0 };
	char *body = NULL;
	int ret = -1;

	if (provider_request(m, v, &q, err) < 0)
		return -1;
	if (q.io == PROVIDER_IO_GET) {
		if (get(&q, &body, &reply.len, err) < 0)
			goto out;
		reply.data = body;
	} else {
		if (shell(&q, &sr, err) < 0)
			goto out;
		reply.data = sr.out;
		reply.len = sr.len;
		reply.exit_status = sr.code;
	}
	ret = provider_read(m, &reply, out, err);
out:
	free(body);
	shell_result_release(&sr);
	provider_req_release(&q);
	return ret;
}
