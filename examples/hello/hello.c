/*
 * hello - the example service that gantry deploys in its tests and demo.
 *
 * A small HTTP/1.1 server in plain C (libc + pthread, nothing else), one
 * thread per connection, keep-alive and pipelining. Its behaviour is steered
 * by the environment so that tests can make a release good, slow, flaky,
 * unhealthy or crashing without another program:
 *
 *   PORT               required; listens on $HOST:$PORT
 *   HOST               the IPv4 address to listen on; default 127.0.0.1 (in a
 *                      container: 0.0.0.0, so that the published port reaches it)
 *   GANTRY_VERSION     reported by GET / and X-Version (else APP_VERSION, else "dev")
 *   GANTRY_REVISION    reported by GET / and X-Revision (else "-")
 *   FAIL_RATE          0..1: share of GET / answered 500 (counter based, exact:
 *                      request n fails when floor(n*rate) steps up)
 *   LATENCY_MS         added to every GET /: "50" or a uniform jitter "50-150"
 *   READY_DELAY_MS     GET /ready is 503 until this many ms after start
 *   READY_FILE         GET /ready is 503 while this file does not exist (a
 *                      test holds a replica unready as long as it needs); a
 *                      path ending in '/' is a directory, and the file is
 *                      DIR/$GANTRY_REPLICA (one file per replica)
 *   UNHEALTHY_AFTER_S  GET /health turns 500 this many seconds after start
 *   CRASH_AFTER_S      the process exits with status 1 this many seconds after start
 *   STARTUP_DELAY_MS   sleep before listening
 *   ACCESS_LOG=1       one stderr line per request
 *   HOLD_MB            allocates and touches this many MiB before listening,
 *                      and keeps them (usage per replica: t1320)
 *   BUSY=1             one thread spins on the CPU for the process's life
 *   FAIL_WHEN_FLAG     a feature flag's name: every GET / is answered 500 while
 *                      the flag evaluates to true, asked every 50 ms over OFREP
 *                      at $GANTRY_FLAGS_URL (http://IPv4:PORT/...) with
 *                      $GANTRY_FLAGS_TOKEN (gantry sets both); unanswered: false
 *
 * Endpoints: GET / , /health, /ready, /slow?ms=N (N <= 60000),
 * /alloc?mb=N (allocates and touches N MiB, N <= 16384), anything else 404.
 *
 * SIGTERM/SIGINT: stop accepting, let in-flight requests finish (at most
 * 10 s), close idle keep-alive connections, exit 0.
 *
 * It is a demo app, but it must survive any bytes a client sends: the request
 * head is bounded (16 KiB), bodies with Content-Length are read and discarded
 * (bounded), chunked request bodies are refused with 411, anything else
 * malformed gets 400 and the connection is closed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX (16 * 1024)
#define BODY_MAX (64LL * 1024 * 1024)   /* larger request bodies: 413 */
#define MAX_CONNS 4096                  /* beyond this, new connections are closed */
#define IDLE_TIMEOUT_MS 75000           /* idle keep-alive connection */
#define HEAD_TIMEOUT_MS 30000           /* a started request head must complete */
#define DRAIN_TIMEOUT_MS 10000
#define NEW_CONN_GRACE_MS 1000          /* see serve() */
#define TICK_MS 100
#define SLOW_MAX_MS 60000
#define ALLOC_MAX_MB 16384

/* Configuration, read once in main() before any thread starts, then read-only. */
static const char *cfg_version = "dev";
static const char *cfg_revision = "-";
static double cfg_fail_rate;
static long cfg_latency_min_ms, cfg_latency_max_ms;
static long cfg_ready_delay_ms;
static const char *cfg_ready_file;
static double cfg_unhealthy_after_s = -1;
static double cfg_crash_after_s = -1;
static int cfg_access_log;
static long cfg_hold_mb;
static int cfg_busy;

static struct timespec start_ts;
static volatile sig_atomic_t got_signal;
static int sig_pipe[2] = { -1, -1 };

/* Shared mutable state, protected by mu. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t conns_cv = PTHREAD_COND_INITIALIZER;
static int nconns;          /* open connection threads */
static int ninflight;       /* requests being processed right now */
static int stopping;        /* SIGTERM received: finish and close */
static long stopping_since_ms;
static const char *cfg_fail_flag;          /* FAIL_WHEN_FLAG */
static volatile int flag_on;               /* the flag's last value */
static unsigned long long root_requests;  /* GET / counter, for FAIL_RATE */

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	/* one write per line so that lines from threads do not interleave */
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* nowhere left to report it */
	}
}

static long elapsed_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)((now.tv_sec - start_ts.tv_sec) * 1000 +
		      (now.tv_nsec - start_ts.tv_nsec) / 1000000);
}

static long now_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(now.tv_sec * 1000 + now.tv_nsec / 1000000);
}

static void sleep_ms(long ms)
{
	struct timespec ts, rem;

	if (ms <= 0)
		return;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &rem) < 0 && errno == EINTR)
		ts = rem;
}

static int is_stopping(void)
{
	int s;

	pthread_mutex_lock(&mu);
	s = stopping;
	pthread_mutex_unlock(&mu);
	return s;
}

/* How long we have been stopping, in ms; -1 when we are not. */
static long stopping_for_ms(void)
{
	long since;
	int s;

	pthread_mutex_lock(&mu);
	s = stopping;
	since = stopping_since_ms;
	pthread_mutex_unlock(&mu);
	return s ? now_ms() - since : -1;
}

/* ---- configuration parsing: a bad knob is a startup error (exit 2) ---- */

static int parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_double(const char *s, double min, double max, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end != '\0' || !(v >= min && v <= max))
		return -1;
	*out = v;
	return 0;
}

static void die_config(const char *name, const char *value, const char *expected)
{
	logmsg("hello: invalid %s '%s' (expected %s)", name, value, expected);
	exit(2);
}

static void read_config(void)
{
	const char *v;

	if ((v = getenv("GANTRY_VERSION")) && *v)
		cfg_version = v;
	else if ((v = getenv("APP_VERSION")) && *v)
		cfg_version = v;
	if ((v = getenv("GANTRY_REVISION")) && *v)
		cfg_revision = v;
	/* the values go into response headers: refuse anything that could split them */
	if (strpbrk(cfg_version, "\r\n") || strpbrk(cfg_revision, "\r\n")) {
		logmsg("hello: GANTRY_VERSION/GANTRY_REVISION must not contain line breaks");
		exit(2);
	}
	if ((v = getenv("FAIL_RATE")) && *v &&
	    parse_double(v, 0.0, 1.0, &cfg_fail_rate) < 0)
		die_config("FAIL_RATE", v, "a number from 0 to 1");
	if ((v = getenv("LATENCY_MS")) && *v) {
		char lo[32];
		const char *dash = strchr(v, '-');

		if (dash) {
			size_t n = (size_t)(dash - v);

			if (n == 0 || n >= sizeof(lo))
				die_config("LATENCY_MS", v, "MS or MIN-MAX");
			memcpy(lo, v, n);
			lo[n] = '\0';
			if (parse_long(lo, 0, SLOW_MAX_MS, &cfg_latency_min_ms) < 0 ||
			    parse_long(dash + 1, 0, SLOW_MAX_MS, &cfg_latency_max_ms) < 0 ||
			    cfg_latency_max_ms < cfg_latency_min_ms)
				die_config("LATENCY_MS", v, "MS or MIN-MAX, at most 60000");
		} else {
			if (parse_long(v, 0, SLOW_MAX_MS, &cfg_latency_min_ms) < 0)
				die_config("LATENCY_MS", v, "MS or MIN-MAX, at most 60000");
			cfg_latency_max_ms = cfg_latency_min_ms;
		}
	}
	if ((v = getenv("READY_DELAY_MS")) && *v &&
	    parse_long(v, 0, 86400000L, &cfg_ready_delay_ms) < 0)
		die_config("READY_DELAY_MS", v, "milliseconds");
	if ((v = getenv("READY_FILE")) && *v) {
		const char *rid = getenv("GANTRY_REPLICA");
		size_t n = strlen(v);
		if (v[n - 1] == '/' && rid && *rid && !strchr(rid, '/')) {
			char *p = malloc(n + strlen(rid) + 1);
			if (!p)
				die_config("READY_FILE", v, "a path (out of memory)");
			memcpy(p, v, n);
			strcpy(p + n, rid);
			cfg_ready_file = p;
		} else {
			cfg_ready_file = v;
		}
	}
	if ((v = getenv("UNHEALTHY_AFTER_S")) && *v &&
	    parse_double(v, 0.0, 86400.0 * 365, &cfg_unhealthy_after_s) < 0)
		die_config("UNHEALTHY_AFTER_S", v, "seconds");
	if ((v = getenv("CRASH_AFTER_S")) && *v &&
	    parse_double(v, 0.0, 86400.0 * 365, &cfg_crash_after_s) < 0)
		die_config("CRASH_AFTER_S", v, "seconds");
	if ((v = getenv("ACCESS_LOG")) && strcmp(v, "1") == 0)
		cfg_access_log = 1;
	if ((v = getenv("HOLD_MB")) && *v && parse_long(v, 0, ALLOC_MAX_MB, &cfg_hold_mb) < 0)
		die_config("HOLD_MB", v, "MiB from 0 to 16384");
	if ((v = getenv("BUSY")) && strcmp(v, "1") == 0)
		cfg_busy = 1;
	if ((v = getenv("FAIL_WHEN_FLAG")) && *v) {
		if (strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") != strlen(v) ||
		    strlen(v) > 63)
			die_config("FAIL_WHEN_FLAG", v, "a flag name");
		cfg_fail_flag = v;
	}
}

/* FAIL_WHEN_FLAG: asks the flag's value over OFREP every 50 ms (one
 * connection per request, as gantry's API closes each) */
static void *flag_poller(void *arg)
{
	const char *url = getenv("GANTRY_FLAGS_URL"), *tok = getenv("GANTRY_FLAGS_TOKEN");
	char host[64], path[256], req[1024], resp[2048];
	const char *hp, *slash, *colon;
	struct sockaddr_in sa;
	long port;

	(void)arg;
	if (!url || !tok || strncmp(url, "http://", 7) || strpbrk(tok, "\r\n"))
		return NULL;
	hp = url + 7;
	slash = strchr(hp, '/');
	colon = strchr(hp, ':');
	if (!slash || !colon || colon > slash || (size_t)(colon - hp) >= sizeof(host) ||
	    strlen(slash) + 64 >= sizeof(path))
		return NULL;
	memcpy(host, hp, (size_t)(colon - hp));
	host[colon - hp] = 0;
	port = strtol(colon + 1, NULL, 10);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return NULL;
	snprintf(path, sizeof(path), "%s/ofrep/v1/evaluate/flags/%s", slash, cfg_fail_flag);
	snprintf(req, sizeof(req),
		 "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"
		 "Content-Length: 32\r\nConnection: close\r\n\r\n{\"context\":{\"targetingKey\":\"h\"}}",
		 path, host, tok);
	for (;;) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		size_t got = 0;
		ssize_t n;
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
		    write(fd, req, strlen(req)) == (ssize_t)strlen(req)) {
			while (got + 1 < sizeof(resp) && (n = read(fd, resp + got, sizeof(resp) - 1 - got)) > 0)
				got += (size_t)n;
			resp[got] = 0;
			/* {"key":...,"value":true,...}: the reply is gantry's compact JSON */
			flag_on = !strncmp(resp, "HTTP/1.1 200", 12) && strstr(resp, "\"value\":true") != NULL;
		}
		if (fd >= 0)
			close(fd);
		sleep_ms(50);
	}
	return NULL;
}

/* HOLD_MB: kept (never freed) and every page touched, so that it is
 * charged to our cgroup for as long as we run */
static volatile char *held;

static int hold_memory(long mb)
{
	size_t size = (size_t)mb << 20;

	if (!size)
		return 0;
	held = malloc(size);
	if (!held)
		return -1;
	for (size_t i = 0; i < size; i += 4096)
		held[i] = (char)(i >> 12 | 1);
	return 0;
}

/* BUSY=1: burns one core until the process exits */
static void *spin(void *arg)
{
	volatile unsigned long n = 0;

	(void)arg;
	for (;;)
		n++;
	return NULL;
}

/* ---- I/O helpers ---- */

/* Writes all of buf; 0 or -1 (peer gone). */
static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				struct pollfd p = { .fd = fd, .events = POLLOUT };

				if (poll(&p, 1, IDLE_TIMEOUT_MS) <= 0)
					return -1;
				continue;
			}
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Waits until fd is readable. Returns 1 readable, 0 timed out (timeout_ms
 * elapsed, or we have been stopping for more than stop_grace_ms and nothing
 * arrived; stop_grace_ms < 0: never give up because of stopping), -1 error.
 * Bytes that are already there always win over stopping: a request the
 * client has sent is answered.
 */
static int wait_readable(int fd, long timeout_ms, long stop_grace_ms)
{
	long deadline = now_ms() + timeout_ms;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long left = deadline - now_ms();
		long stopped;
		int r;

		r = poll(&p, 1, 0);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return -1;
		if (left <= 0)
			return 0;
		stopped = stop_grace_ms >= 0 ? stopping_for_ms() : -1;
		if (stopped >= 0 && stopped >= stop_grace_ms)
			return 0;
		r = poll(&p, 1, left < TICK_MS ? (int)left : TICK_MS);
		if (r < 0 && errno != EINTR)
			return -1;
		if (r > 0)
			return 1;
	}
}

/* ---- requests ---- */

struct request {
	char method[16];
	char path[2048];        /* without the query */
	char query[2048];
	int minor;              /* HTTP/1.minor */
	int want_close;
	int keep_alive_10;      /* HTTP/1.0 with Connection: keep-alive */
	long long content_length;
	int chunked;
};

struct response {
	int status;
	const char *reason;
	char body[256];
	int close;              /* send Connection: close and close afterwards */
};

static const char *reason_of(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 411: return "Length Required";
	case 413: return "Payload Too Large";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

/* Does the comma-separated header value contain token (case-insensitive)? */
static int has_token(const char *value, const char *token)
{
	size_t tl = strlen(token);
	const char *p = value;

	while (*p) {
		const char *end;
		size_t n;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		end = p;
		while (*end && *end != ',')
			end++;
		n = (size_t)(end - p);
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == tl && strncasecmp(p, token, tl) == 0)
			return 1;
		p = end;
	}
	return 0;
}

static int is_tchar(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/*
 * Parses the request head in head[0..len) (NUL-terminated by the caller, the
 * final blank line included). Returns 0, or an HTTP status to answer with
 * before closing the connection.
 */
static int parse_head(char *head, struct request *rq)
{
	char *line, *next, *sp1, *sp2, *q;
	size_t n;
	int have_cl = 0;

	memset(rq, 0, sizeof(*rq));
	line = head;
	next = strstr(line, "\r\n");
	if (!next)
		return 400;
	*next = '\0';
	next += 2;

	/* request line: METHOD SP TARGET SP HTTP/1.x */
	sp1 = strchr(line, ' ');
	if (!sp1)
		return 400;
	sp2 = strchr(sp1 + 1, ' ');
	if (!sp2 || strchr(sp2 + 1, ' '))
		return 400;
	n = (size_t)(sp1 - line);
	if (n == 0 || n >= sizeof(rq->method))
		return 400;
	for (size_t i = 0; i < n; i++)
		if (!is_tchar((unsigned char)line[i]))
			return 400;
	memcpy(rq->method, line, n);
	rq->method[n] = '\0';
	if (strncmp(sp2 + 1, "HTTP/1.", 7) != 0 || !sp2[8] || sp2[9] ||
	    sp2[8] < '0' || sp2[8] > '9')
		return strncmp(sp2 + 1, "HTTP/", 5) == 0 ? 505 : 400;
	rq->minor = sp2[8] - '0';
	*sp2 = '\0';
	{
		char *target = sp1 + 1;

		if (*target != '/')
			return 400;
		for (char *c = target; *c; c++)
			if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
				return 400;
		q = strchr(target, '?');
		if (q) {
			*q++ = '\0';
			if (strlen(q) >= sizeof(rq->query))
				return 431;
			memcpy(rq->query, q, strlen(q) + 1);
		}
		if (strlen(target) >= sizeof(rq->path))
			return 431;
		memcpy(rq->path, target, strlen(target) + 1);
	}

	/* header fields */
	for (line = next; *line; line = next) {
		char *colon, *value, *end;

		next = strstr(line, "\r\n");
		if (!next)
			return 400;
		*next = '\0';
		next += 2;
		if (*line == '\0')
			break;          /* the blank line */
		if (*line == ' ' || *line == '\t')
			return 400;     /* obsolete line folding */
		colon = strchr(line, ':');
		if (!colon || colon == line)
			return 400;
		for (char *c = line; c < colon; c++)
			if (!is_tchar((unsigned char)*c))
				return 400;     /* also rejects "Name : value" */
		*colon = '\0';
		value = colon + 1;
		while (*value == ' ' || *value == '\t')
			value++;
		end = value + strlen(value);
		while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		for (char *c = value; *c; c++)
			if ((unsigned char)*c < 0x20 && *c != '\t')
				return 400;
		if (strcasecmp(line, "Content-Length") == 0) {
			long long v = 0;

			if (!*value)
				return 400;
			for (char *c = value; *c; c++) {
				if (*c < '0' || *c > '9')
					return 400;
				if (v > BODY_MAX)
					return 413;
				v = v * 10 + (*c - '0');
			}
			if (have_cl && v != rq->content_length)
				return 400;
			if (v > BODY_MAX)
				return 413;
			have_cl = 1;
			rq->content_length = v;
		} else if (strcasecmp(line, "Transfer-Encoding") == 0) {
			rq->chunked = 1;        /* any transfer coding: we refuse bodies we cannot size */
		} else if (strcasecmp(line, "Connection") == 0) {
			if (has_token(value, "close"))
				rq->want_close = 1;
			if (has_token(value, "keep-alive"))
				rq->keep_alive_10 = 1;
		}
	}
	if (rq->chunked)
		return have_cl ? 400 : 411;
	return 0;
}

/* Value of key in a query string "a=1&b=2" into out; 0 found, -1 not. */
static int query_get(const char *query, const char *key, char *out, size_t outsz)
{
	size_t kl = strlen(key);
	const char *p = query;

	while (p && *p) {
		const char *amp = strchr(p, '&');
		size_t seg = amp ? (size_t)(amp - p) : strlen(p);

		if (seg > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
			size_t vl = seg - kl - 1;

			if (vl >= outsz)
				return -1;
			memcpy(out, p + kl + 1, vl);
			out[vl] = '\0';
			return 0;
		}
		p = amp ? amp + 1 : NULL;
	}
	return -1;
}

/* Thread-safe small PRNG for latency jitter (splitmix64 over a counter). */
static uint64_t rand_next(void)
{
	static uint64_t state;
	uint64_t z = __atomic_add_fetch(&state, 0x9e3779b97f4a7c15ULL, __ATOMIC_RELAXED);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void handle_root(struct response *rs)
{
	unsigned long long n;
	int fail = 0;

	if (cfg_latency_max_ms > 0) {
		long span = cfg_latency_max_ms - cfg_latency_min_ms;

		sleep_ms(cfg_latency_min_ms +
			 (span > 0 ? (long)(rand_next() % (uint64_t)(span + 1)) : 0));
	}
	if (cfg_fail_rate > 0) {
		pthread_mutex_lock(&mu);
		n = root_requests++;
		pthread_mutex_unlock(&mu);
		/* exact share over any window: request n fails when floor(n*rate) steps */
		fail = (unsigned long long)((double)(n + 1) * cfg_fail_rate) >
		       (unsigned long long)((double)n * cfg_fail_rate);
	}
	if (flag_on)
		fail = 1;
	if (fail) {
		rs->status = 500;
		snprintf(rs->body, sizeof(rs->body), "injected failure from %s\n", cfg_version);
	} else {
		rs->status = 200;
		snprintf(rs->body, sizeof(rs->body), "hello from %s (revision %s)\n",
			 cfg_version, cfg_revision);
	}
}

static void handle_slow(const struct request *rq, struct response *rs)
{
	char v[32];
	long ms = 0;

	if (query_get(rq->query, "ms", v, sizeof(v)) == 0 &&
	    parse_long(v, 0, 1L << 30, &ms) < 0) {
		rs->status = 400;
		snprintf(rs->body, sizeof(rs->body), "bad ms\n");
		return;
	}
	if (ms > SLOW_MAX_MS)
		ms = SLOW_MAX_MS;
	if (cfg_access_log) /* a test can wait for the request to be in flight */
		logmsg("hello: /slow %ld ms started", ms);
	sleep_ms(ms);
	rs->status = 200;
	snprintf(rs->body, sizeof(rs->body), "slept %ld ms\n", ms);
}

static void handle_alloc(const struct request *rq, struct response *rs)
{
	char v[32];
	long mb = 0;
	size_t size;
	char *p;

	if (query_get(rq->query, "mb", v, sizeof(v)) < 0 ||
	    parse_long(v, 0, ALLOC_MAX_MB, &mb) < 0) {
		rs->status = 400;
		snprintf(rs->body, sizeof(rs->body), "expected ?mb=N with N from 0 to %d\n",
			 ALLOC_MAX_MB);
		return;
	}
	size = (size_t)mb << 20;
	p = size ? malloc(size) : NULL;
	if (size && !p) {
		rs->status = 500;
		snprintf(rs->body, sizeof(rs->body), "could not allocate %ld MiB\n", mb);
		return;
	}
	/* touch every page so that the memory is really charged to us */
	for (size_t i = 0; i < size; i += 4096)
		((volatile char *)p)[i] = (char)i;
	free(p);
	rs->status = 200;
	snprintf(rs->body, sizeof(rs->body), "allocated %ld MiB\n", mb);
}

static void route(const struct request *rq, struct response *rs)
{
	long up = elapsed_ms();

	if (strcmp(rq->method, "GET") != 0 && strcmp(rq->method, "HEAD") != 0) {
		rs->status = 405;
		snprintf(rs->body, sizeof(rs->body), "method not allowed\n");
		return;
	}
	if (strcmp(rq->path, "/") == 0) {
		handle_root(rs);
	} else if (strcmp(rq->path, "/health") == 0) {
		if (cfg_unhealthy_after_s >= 0 && up >= (long)(cfg_unhealthy_after_s * 1000)) {
			rs->status = 500;
			snprintf(rs->body, sizeof(rs->body), "unhealthy\n");
		} else {
			rs->status = 200;
			snprintf(rs->body, sizeof(rs->body), "ok\n");
		}
	} else if (strcmp(rq->path, "/ready") == 0) {
		if (up < cfg_ready_delay_ms || is_stopping() ||
		    (cfg_ready_file && access(cfg_ready_file, F_OK) != 0)) {
			rs->status = 503;
			snprintf(rs->body, sizeof(rs->body), "not ready\n");
		} else {
			rs->status = 200;
			snprintf(rs->body, sizeof(rs->body), "ready\n");
		}
	} else if (strcmp(rq->path, "/slow") == 0) {
		handle_slow(rq, rs);
	} else if (strcmp(rq->path, "/alloc") == 0) {
		handle_alloc(rq, rs);
	} else {
		rs->status = 404;
		snprintf(rs->body, sizeof(rs->body), "not found\n");
	}
}

static int send_response(int fd, const struct response *rs, int head_only)
{
	char hdr[1024];
	size_t blen = strlen(rs->body);
	int n;

	n = snprintf(hdr, sizeof(hdr),
		     "HTTP/1.1 %d %s\r\n"
		     "Content-Type: text/plain; charset=utf-8\r\n"
		     "Content-Length: %zu\r\n"
		     "X-Version: %s\r\n"
		     "X-Revision: %s\r\n"
		     "%s%s"
		     "\r\n",
		     rs->status, rs->reason ? rs->reason : reason_of(rs->status), blen,
		     cfg_version, cfg_revision,
		     rs->status == 405 ? "Allow: GET, HEAD\r\n" : "",
		     rs->close ? "Connection: close\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(hdr))
		return -1;
	if (write_all(fd, hdr, (size_t)n) < 0)
		return -1;
	if (!head_only && write_all(fd, rs->body, blen) < 0)
		return -1;
	return 0;
}

static void send_error(int fd, int status)
{
	struct response rs;

	memset(&rs, 0, sizeof(rs));
	rs.status = status;
	rs.close = 1;
	snprintf(rs.body, sizeof(rs.body), "%s\n", reason_of(status));
	if (send_response(fd, &rs, 0) < 0)
		return;
	/*
	 * Lingering close: closing with unread request bytes makes the kernel
	 * send a RST, which can destroy our response before the client reads
	 * it. Half-close, then swallow what the client still sends (bounded).
	 */
	shutdown(fd, SHUT_WR);
	for (int i = 0; i < 64; i++) {
		char sink[4096];

		if (wait_readable(fd, 1000, -1) <= 0 || recv(fd, sink, sizeof(sink), 0) <= 0)
			break;
	}
}

/* Reads and discards len more body bytes from fd. */
static int discard_body(int fd, long long len)
{
	char sink[16384];

	while (len > 0) {
		ssize_t n;

		if (wait_readable(fd, HEAD_TIMEOUT_MS, -1) <= 0)
			return -1;
		n = recv(fd, sink, len < (long long)sizeof(sink) ? (size_t)len : sizeof(sink), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		len -= n;
	}
	return 0;
}

struct conn {
	int fd;
	char buf[HEAD_MAX + 1];
	size_t len;
};

/* Finds the end of the head ("\r\n\r\n") in c->buf; offset after it, or 0. */
static size_t head_end(const struct conn *c)
{
	for (size_t i = 3; i < c->len; i++)
		if (c->buf[i] == '\n' && c->buf[i - 1] == '\r' &&
		    c->buf[i - 2] == '\n' && c->buf[i - 3] == '\r')
			return i + 1;
	return 0;
}

/* Serves one connection until it closes; takes ownership of c. */
static void serve(struct conn *c)
{
	unsigned long served = 0;

	for (;;) {
		struct request rq;
		struct response rs;
		size_t hend;
		int status, head_only;

		/* read until a complete head is buffered */
		while ((hend = head_end(c)) == 0) {
			ssize_t n;
			int r;

			if (c->len >= HEAD_MAX) {
				send_error(c->fd, 431);
				return;
			}
			/*
			 * Stopping: an idle kept-alive connection closes at once
			 * (its client retries elsewhere); one that has not sent
			 * its first request yet gets NEW_CONN_GRACE_MS to send
			 * it, as its client connected while we were accepting
			 * (Go's http.Server.Shutdown treats new connections the
			 * same way); a half-received request is completed.
			 */
			r = wait_readable(c->fd, c->len ? HEAD_TIMEOUT_MS : IDLE_TIMEOUT_MS,
					  c->len ? -1 : served ? 0 : NEW_CONN_GRACE_MS);
			if (r <= 0)
				return;
			n = recv(c->fd, c->buf + c->len, HEAD_MAX - c->len, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return;
			c->len += (size_t)n;
		}

		pthread_mutex_lock(&mu);
		ninflight++;
		pthread_mutex_unlock(&mu);

		{
			char save = c->buf[hend];

			c->buf[hend] = '\0';
			status = parse_head(c->buf, &rq);
			c->buf[hend] = save;
		}
		if (status) {
			send_error(c->fd, status);
			goto done_close;
		}
		/* leave the pipelined rest (and maybe part of the body) in the buffer */
		memmove(c->buf, c->buf + hend, c->len - hend);
		c->len -= hend;
		if (rq.content_length > 0) {
			long long have = (long long)c->len < rq.content_length ?
					 (long long)c->len : rq.content_length;

			memmove(c->buf, c->buf + have, c->len - (size_t)have);
			c->len -= (size_t)have;
			if (discard_body(c->fd, rq.content_length - have) < 0)
				goto done_close;
		}

		memset(&rs, 0, sizeof(rs));
		route(&rq, &rs);
		rs.close = rq.want_close || (rq.minor == 0 && !rq.keep_alive_10) || is_stopping();
		head_only = strcmp(rq.method, "HEAD") == 0;
		if (cfg_access_log)
			logmsg("hello: %s %s%s%s %d", rq.method, rq.path, rq.query[0] ? "?" : "",
			       rq.query, rs.status);
		if (send_response(c->fd, &rs, head_only) < 0 || rs.close)
			goto done_close;

		pthread_mutex_lock(&mu);
		ninflight--;
		pthread_mutex_unlock(&mu);
		served++;
		continue;
done_close:
		pthread_mutex_lock(&mu);
		ninflight--;
		pthread_mutex_unlock(&mu);
		return;
	}
}

static void *conn_thread(void *arg)
{
	struct conn *c = arg;

	serve(c);
	close(c->fd);
	free(c);
	pthread_mutex_lock(&mu);
	nconns--;
	pthread_cond_broadcast(&conns_cv);
	pthread_mutex_unlock(&mu);
	return NULL;
}

static void on_signal(int sig)
{
	int saved = errno;
	char b = (char)sig;

	got_signal = sig;
	if (write(sig_pipe[1], &b, 1) < 0) {
		/* the pipe is full: a wakeup is already pending */
	}
	errno = saved;
}

static int listen_on(struct in_addr host, long port)
{
	struct sockaddr_in sa;
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr = host;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1024) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int main(void)
{
	const char *port_s = getenv("PORT");
	const char *host_s = "127.0.0.1";
	struct in_addr host;
	const char *v;
	struct sigaction sa;
	pthread_attr_t attr;
	long port, startup_delay = 0;
	int lfd, drained, left;
	long stop_at;

	clock_gettime(CLOCK_MONOTONIC, &start_ts);
	if (!port_s || !*port_s) {
		logmsg("hello: PORT is not set (the port to listen on, 127.0.0.1:$PORT)");
		return 2;
	}
	if (parse_long(port_s, 1, 65535, &port) < 0)
		die_config("PORT", port_s, "a port number from 1 to 65535");
	read_config();
	if ((v = getenv("STARTUP_DELAY_MS")) && *v &&
	    parse_long(v, 0, 3600000L, &startup_delay) < 0)
		die_config("STARTUP_DELAY_MS", v, "milliseconds");
	if ((v = getenv("HOST")) && *v)
		host_s = v;
	if (inet_pton(AF_INET, host_s, &host) != 1)
		die_config("HOST", host_s, "an IPv4 address (0.0.0.0 in a container)");

	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		logmsg("hello: pipe: %s", strerror(errno));
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* a signal during the startup delay still stops us promptly */
	if (startup_delay > 0) {
		struct pollfd p = { .fd = sig_pipe[0], .events = POLLIN };

		while (poll(&p, 1, (int)startup_delay) < 0 && errno == EINTR)
			;
		if (got_signal) {
			logmsg("hello: stopped by signal %d during startup delay", (int)got_signal);
			return 0;
		}
	}

	if (hold_memory(cfg_hold_mb) < 0) {
		logmsg("hello: HOLD_MB=%ld: cannot allocate", cfg_hold_mb);
		return 1;
	}
	if (cfg_busy) {
		pthread_t th;

		if (pthread_create(&th, NULL, spin, NULL) != 0) {
			logmsg("hello: BUSY=1: cannot start a thread");
			return 1;
		}
		pthread_detach(th);
	}
	lfd = listen_on(host, port);
	if (lfd < 0) {
		logmsg("hello: cannot listen on %s:%ld: %s", host_s, port, strerror(errno));
		return 1;
	}
	logmsg("hello: listening on %s:%ld version=%s revision=%s pid=%ld",
	       host_s, port, cfg_version, cfg_revision, (long)getpid());

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	if (cfg_fail_flag) {
		pthread_t fth;
		if (pthread_create(&fth, &attr, flag_poller, NULL) != 0) {
			logmsg("hello: cannot start the FAIL_WHEN_FLAG poller");
			return 1;
		}
	}

	while (!got_signal) {
		struct pollfd p[2] = {
			{ .fd = lfd, .events = POLLIN },
			{ .fd = sig_pipe[0], .events = POLLIN },
		};
		struct conn *c;
		pthread_t th;
		int fd, r, one = 1;

		if (cfg_crash_after_s >= 0 && elapsed_ms() >= (long)(cfg_crash_after_s * 1000)) {
			logmsg("hello: crashing on purpose (CRASH_AFTER_S=%g)", cfg_crash_after_s);
			_exit(1);
		}
		r = poll(p, 2, TICK_MS);
		if (r <= 0 || !(p[0].revents & POLLIN))
			continue;
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				sleep_ms(10);   /* let connections close instead of spinning */
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		pthread_mutex_lock(&mu);
		if (nconns >= MAX_CONNS) {
			pthread_mutex_unlock(&mu);
			close(fd);
			continue;
		}
		nconns++;
		pthread_mutex_unlock(&mu);
		c = malloc(sizeof(*c));
		if (c) {
			c->fd = fd;
			c->len = 0;
		}
		if (!c || pthread_create(&th, &attr, conn_thread, c) != 0) {
			free(c);
			close(fd);
			pthread_mutex_lock(&mu);
			nconns--;
			pthread_mutex_unlock(&mu);
		}
	}

	/* drain: no new connections, in-flight requests finish, idle ones close */
	close(lfd);
	pthread_mutex_lock(&mu);
	stopping = 1;
	stopping_since_ms = now_ms();
	left = ninflight;
	stop_at = now_ms() + DRAIN_TIMEOUT_MS;
	while (nconns > 0 && now_ms() < stop_at) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&conns_cv, &mu, &ts);
	}
	drained = nconns == 0;
	pthread_mutex_unlock(&mu);
	logmsg("hello: stopped by signal %d after %ld ms (in-flight at signal=%d, %s)",
	       (int)got_signal, elapsed_ms(), left,
	       drained ? "drained" : "drain timeout, abandoning remaining requests");
	return 0;
}
