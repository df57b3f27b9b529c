/*
 * checks.c — run and HTTP checks with timeouts and bounded output (checks.h).
 * A run check is a one-off shell command (runtime/shell.h): the default
 * workload user, a clean environment, its process group killed at the
 * timeout.
 */
#include "common.h"
#include "gates/checks.h"
#include "runtime/shell.h"
#include "util/clock.h"
#include "util/parse.h"
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>

static bool run_cmd(const char *cmd, const char *cwd, int port, int64_t timeout_ms, char **out)
{
	/* a workload like a replica: the default workload user, a scratch
	 * HOME, nothing of the controller's environment */
	struct workload_env we = { .port = port, .url = true };
	struct shell_opts o = { .cmd = cmd, .cwd = cwd, .env = &we, .timeout_ms = timeout_ms,
				.max_output = CHECK_OUTPUT_MAX, .with_stderr = true, .keep_tail = true };
	struct shell_result r;
	struct gerr err = { { 0 } };
	const char *cut;
	bool ok = false;

	if (shell_run(&o, &r, &err) < 0) {
		*out = xasprintf("cannot run the check: %s", err.msg);
		return false;
	}
	cut = r.cut ? "[...]\n" : "";
	if (r.end == SHELL_TIMED_OUT)
		*out = xasprintf("%s%stimed out after %lldms", cut, r.out, (long long)timeout_ms);
	else if (r.end == SHELL_EXITED && r.code == 0)
		*out = xasprintf("%s%s", cut, r.out), ok = true;
	else if (r.end == SHELL_EXITED)
		*out = xasprintf("%s%sexit status %d", cut, r.out, r.code);
	else
		*out = xasprintf("%s%skilled by signal %d", cut, r.out, r.code);
	shell_result_release(&r);
	return ok;
}

static bool run_http(const char *spec, int expect, int port, int64_t timeout_ms, char **out)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	const char *sp = strchr(spec, ' ');
	char *req = NULL, buf[1024];
	size_t len = 0;
	int fd = -1, code = 0;
	int64_t deadline = clock_mono_ms() + timeout_ms;
	bool ok = false;

	if (port <= 0) {
		*out = xstrdup("no port to check: the revision has no ready replica");
		return false;
	}
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)) {
		*out = xasprintf("connect 127.0.0.1:%d: %s", port, strerror(errno));
		goto out;
	}
	req = xasprintf("%.*s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: gantry-check\r\nConnection: close\r\n\r\n",
			(int)(sp - spec), spec, sp + 1, port);
	{
		size_t off = 0, n = strlen(req);
		while (off < n) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			ssize_t w;
			int64_t left = deadline - clock_mono_ms();
			if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
				*out = xasprintf("%s on 127.0.0.1:%d: timed out connecting", spec, port);
				goto out;
			}
			w = write(fd, req + off, n - off);
			if (w < 0 && errno != EAGAIN && errno != EINTR) {
				*out = xasprintf("%s on 127.0.0.1:%d: %s", spec, port, strerror(errno));
				goto out;
			}
			if (w > 0)
				off += (size_t)w;
		}
	}
	while (len < sizeof(buf) - 1 && !memchr(buf, '\n', len)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;
		int64_t left = deadline - clock_mono_ms();
		if (left <= 0 || poll(&p, 1, (int)left) <= 0) {
			*out = xasprintf("%s on 127.0.0.1:%d: no answer within %lldms", spec, port, (long long)timeout_ms);
			goto out;
		}
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = 0;
	if (sscanf(buf, "HTTP/1.%*d %d", &code) != 1) {
		*out = xasprintf("%s on 127.0.0.1:%d: not an HTTP response", spec, port);
		goto out;
	}
	ok = code == expect;
	*out = xasprintf("%s -> %d (expected %d)", spec, code, expect);
out:
	if (fd >= 0)
		close(fd);
	free(req);
	return ok;
}

json_t *checks_run_list(const json_t *list, const char *cwd, int port, bool *all_ok)
{
	json_t *res = json_array();
	const json_t *c;
	size_t i;
	*all_ok = true;
	json_array_foreach((json_t *)list, i, c) {
		const json_t *run = json_object_get(c, "run"), *http = json_object_get(c, "http");
		const char *name = json_string_value(run ? run : http);
		struct gerr err;
		int64_t t0 = clock_mono_ms(), timeout;
		char *output = NULL;
		bool ok = false;
		if (!*all_ok) {
			json_array_append_new(res, json_pack("{s:s, s:b, s:s, s:I, s:b}", "check", name ? name : "?",
							     "ok", 0, "output", "skipped: an earlier check failed",
							     "duration_ms", (json_int_t)0, "skipped", 1));
			continue;
		}
		if (check_validate(c, &err) < 0) {
			output = xasprintf("invalid check: %s", err.msg);
		} else {
			check_timeout(c, &timeout, &err);
			if (run)
				ok = run_cmd(json_string_value(run), cwd, port, timeout, &output);
			else
				ok = run_http(json_string_value(http),
					      json_object_get(c, "expect") ? (int)json_integer_value(json_object_get(c, "expect")) : 200,
					      port, timeout, &output);
		}
		*all_ok = *all_ok && ok;
		json_array_append_new(res, json_pack("{s:s, s:b, s:s, s:I}", "check", name ? name : "?", "ok", ok,
						     "output", output, "duration_ms", (json_int_t)(clock_mono_ms() - t0)));
		free(output);
	}
	return res;
}

/* ---- on a thread ---- */

struct check_job {
	int64_t key;
	json_t *list;
	char *cwd;
	int port;
	json_t *results;
	bool ok;
	struct check_job *next;
};

static pthread_mutex_t jobs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct check_job *done_jobs;

/* at most CHECKS_PARALLEL lists run at once; the others wait their turn
 * (a burst of deploys never forks an unbounded number of checks) */
static pthread_cond_t slot_free = PTHREAD_COND_INITIALIZER;
static int running;

static void *job_main(void *arg)
{
	struct check_job *j = arg, **tail;
	pthread_mutex_lock(&jobs_lock);
	while (running >= CHECKS_PARALLEL)
		pthread_cond_wait(&slot_free, &jobs_lock);
	running++;
	pthread_mutex_unlock(&jobs_lock);
	j->results = checks_run_list(j->list, j->cwd, j->port, &j->ok);
	pthread_mutex_lock(&jobs_lock);
	running--;
	pthread_cond_signal(&slot_free);
	for (tail = &done_jobs; *tail; tail = &(*tail)->next)
		;
	*tail = j;
	pthread_mutex_unlock(&jobs_lock);
	return NULL;
}

int checks_start(int64_t key, json_t *list, const char *cwd, int port)
{
	struct check_job *j = xcalloc(1, sizeof(*j));
	pthread_t t;
	pthread_attr_t attr;
	int r;
	j->key = key;
	j->list = list;
	j->cwd = cwd ? xstrdup(cwd) : NULL;
	j->port = port;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	r = pthread_create(&t, &attr, job_main, j);
	pthread_attr_destroy(&attr);
	if (r) {
		json_decref(list);
		free(j->cwd);
		free(j);
		return -1;
	}
	return 0;
}

int checks_poll(int64_t *key, json_t **results, bool *ok)
{
	struct check_job *j;
	pthread_mutex_lock(&jobs_lock);
	j = done_jobs;
	if (j)
		done_jobs = j->next;
	pthread_mutex_unlock(&jobs_lock);
	if (!j)
		return 0;
	*key = j->key;
	*results = j->results;
	*ok = j->ok;
	json_decref(j->list);
	free(j->cwd);
	free(j);
	return 1;
}
