/*
 * loadgen - a bounded HTTP/1.1 load generator for gantry's tests and demo.
 *
 *   loadgen --url http://127.0.0.1:PORT/PATH [--host HOST] [--concurrency N]
 *           [--duration 10s | --requests N] [--max-duration 60s]
 *           [--stop-file PATH] [--keepalive | --no-keepalive] [--rate RPS]
 *           [--timeout 5s] [--header 'Name: value']...
 *
 * N threads send GET requests, each over its own connection (kept alive by
 * default). The run always ends: after --requests in total, after --duration,
 * when --stop-file appears (checked every 20 ms), on SIGTERM/SIGINT, and in
 * any case after --max-duration (default 60s). Without --duration and
 * --requests it runs until the stop file, a signal or --max-duration.
 * "Soft" ends (requests, duration, stop file) let requests in flight finish;
 * "hard" ends (signal, max-duration) abandon them, counted as "aborted".
 *
 * On exit it prints one JSON line to stdout:
 *   {"requests": N, "ok": N, "non2xx": N, "errors": N, "codes": {"200": N},
 *    "versions": {"v1": N}, "p50_ms": x, "p90_ms": x, "p99_ms": x, "max_ms": x,
 *    "duration_s": x, "rps": x, "retries": N, "aborted": N,
 *    "error_kinds": {"connect": N, "timeout": N, "closed": N, "protocol": N},
 *    "stopped_by": "requests|duration|stop-file|signal|max-duration|all-done"}
 * requests = ok + non2xx + errors. "versions" counts the X-Version response
 * header ("-" when absent). Latency percentiles are over responses (not
 * errors), measured from the start of the request (connect included when a
 * new connection was needed) to the last byte; null when there was none;
 * resolution about 3%.
 *
 * Only loopback targets are allowed (127.0.0.1, localhost, [::1]): this is a
 * test tool, never pointed at anything else.
 *
 * Plain C + pthread + sockets, no other dependency. Exit status 0 when the run
 * completed (whatever the responses were), 2 on a usage error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONCURRENCY 1024
#define MAX_HEADERS 16
#define HEAD_MAX (16 * 1024)
#define RBUF_SIZE (64 * 1024)
#define MAX_VERSIONS 32            /* distinct X-Version values per thread and in total */
#define VERSION_MAX 64
#define HIST_SIZE 1920
#define SLICE_MS 50                /* how often blocked calls look at the stop flags */
#define ERROR_BACKOFF_MS 10        /* pause after a transport error: no busy loop on a dead port */

enum err_kind { ERR_CONNECT, ERR_TIMEOUT, ERR_CLOSED, ERR_PROTOCOL, ERR_KINDS };
static const char *const err_names[ERR_KINDS] = { "connect", "timeout", "closed", "protocol" };

/* Options: set in main() before the threads start, read-only afterwards. */
static struct sockaddr_storage opt_addr;
static socklen_t opt_addrlen;
static char opt_path[2048] = "/";
static char opt_host[256];
static int opt_concurrency = 1;
static long opt_duration_ms = -1;
static long long opt_requests = -1;
static long opt_max_duration_ms = 60000;
static long opt_timeout_ms = 5000;
static const char *opt_stop_file;
static int opt_keepalive = 1;
static double opt_rate;
static char *req_buf;              /* the request bytes, identical for every request */
static size_t req_len;

/* Run state shared by the threads. */
static volatile sig_atomic_t got_signal;
static int soft_stop;              /* __atomic: start no new request */
static int hard_stop;              /* __atomic: abandon requests in flight */
static long long next_ticket;      /* __atomic: requests handed out */
static int workers_done;           /* __atomic */
static struct timespec start_ts;

struct vcount {
	char name[VERSION_MAX];
	unsigned long long n;
};

struct stats {
	unsigned long long requests, ok, non2xx, errors, retries, aborted;
	unsigned long long kinds[ERR_KINDS];
	unsigned long long codes[600];
	unsigned long long hist[HIST_SIZE];
	unsigned long long max_us;
	struct vcount versions[MAX_VERSIONS];
	int nversions;
	unsigned long long other_versions;
};

struct worker {
	pthread_t th;
	int fd;
	int used;                  /* the connection already carried a response */
	char rbuf[RBUF_SIZE];
	size_t rpos, rlen;         /* unread bytes: rbuf[rpos .. rpos+rlen) */
	struct stats st;
};

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die_usage(const char *fmt, ...)
{
	va_list ap;

	fputs("loadgen: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n(see loadgen --help)\n", stderr);
	exit(2);
}

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static long long elapsed_us(void)
{
	return now_us() - ((long long)start_ts.tv_sec * 1000000 + start_ts.tv_nsec / 1000);
}

static int load_flag(int *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void set_flag(int *p)
{
	__atomic_store_n(p, 1, __ATOMIC_RELEASE);
}

static void sleep_us(long long us)
{
	struct timespec ts, rem;

	if (us <= 0)
		return;
	ts.tv_sec = (time_t)(us / 1000000);
	ts.tv_nsec = (long)(us % 1000000) * 1000;
	while (nanosleep(&ts, &rem) < 0 && errno == EINTR)
		ts = rem;
}

/* ---- latency histogram: log-linear, 32 sub-buckets per power of two ---- */

static int hist_index(unsigned long long v)
{
	int msb;

	if (v < 32)
		return (int)v;
	msb = 63 - __builtin_clzll(v);
	return 32 + (msb - 5) * 32 + (int)((v >> (msb - 5)) - 32);
}

/* Midpoint of bucket i, in microseconds. */
static double hist_value(int i)
{
	int msb;
	unsigned long long top;

	if (i < 32)
		return i;
	msb = (i - 32) / 32 + 5;
	top = (unsigned long long)((i - 32) % 32 + 32);
	return (double)(top << (msb - 5)) + (double)(1ULL << (msb - 5)) / 2.0;
}

/* ---- parsing of options ---- */

/* "250ms", "10s", "2m", "1h", or plain seconds; -1 when invalid. */
static long parse_duration_ms(const char *s)
{
	char *end;
	double v;
	double mult = 1000;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || !(v >= 0))
		return -1;
	if (strcmp(end, "ms") == 0)
		mult = 1;
	else if (strcmp(end, "s") == 0 || *end == '\0')
		mult = 1000;
	else if (strcmp(end, "m") == 0)
		mult = 60000;
	else if (strcmp(end, "h") == 0)
		mult = 3600000;
	else
		return -1;
	v *= mult;
	if (v > 86400000.0)
		return -1;
	return (long)v;
}

static long long parse_count(const char *s, long long min, long long max, const char *what)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		die_usage("%s: invalid value '%s' (expected %lld..%lld)", what, s, min, max);
	return v;
}

/* Accepts only http://{127.0.0.1|localhost|[::1]}[:PORT][/path]. */
static void parse_url(const char *url)
{
	const char *p, *hend, *path;
	char host[64];
	long port = 80;
	size_t hl;

	if (strncmp(url, "http://", 7) != 0)
		die_usage("--url: '%s' is not an http:// URL", url);
	p = url + 7;
	path = strchr(p, '/');
	if (!path)
		path = p + strlen(p);
	if (*p == '[') {
		hend = strchr(p, ']');
		if (!hend || hend > path)
			die_usage("--url: bad IPv6 address in '%s'", url);
		hl = (size_t)(hend - p - 1);
		if (hl >= sizeof(host))
			die_usage("--url: bad host in '%s'", url);
		memcpy(host, p + 1, hl);
		host[hl] = '\0';
		hend++;
	} else {
		hend = p;
		while (hend < path && *hend != ':')
			hend++;
		hl = (size_t)(hend - p);
		if (hl == 0 || hl >= sizeof(host))
			die_usage("--url: bad host in '%s'", url);
		memcpy(host, p, hl);
		host[hl] = '\0';
	}
	if (hend < path) {
		char pbuf[8];
		size_t pl;

		if (*hend != ':')
			die_usage("--url: bad authority in '%s'", url);
		pl = (size_t)(path - hend - 1);
		if (pl == 0 || pl >= sizeof(pbuf))
			die_usage("--url: bad port in '%s'", url);
		memcpy(pbuf, hend + 1, pl);
		pbuf[pl] = '\0';
		port = (long)parse_count(pbuf, 1, 65535, "--url port");
	}
	if (strlen(path) >= sizeof(opt_path))
		die_usage("--url: path too long");
	if (*path)
		memcpy(opt_path, path, strlen(path) + 1);
	for (const char *c = opt_path; *c; c++)
		if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
			die_usage("--url: the path must be percent-encoded (no spaces or control bytes)");
	if ((size_t)(path - p) >= sizeof(opt_host))
		die_usage("--url: authority too long");
	memcpy(opt_host, p, (size_t)(path - p));
	opt_host[path - p] = '\0';

	memset(&opt_addr, 0, sizeof(opt_addr));
	if (strcmp(host, "127.0.0.1") == 0 || strcmp(host, "localhost") == 0) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&opt_addr;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		opt_addrlen = sizeof(*sin);
	} else if (strcmp(host, "::1") == 0) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&opt_addr;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		sin6->sin6_addr = in6addr_loopback;
		opt_addrlen = sizeof(*sin6);
	} else {
		die_usage("--url: refusing host '%s': only 127.0.0.1, localhost and [::1] are allowed",
			  host);
	}
}

static void usage(void)
{
	fputs("usage: loadgen --url http://127.0.0.1:PORT/PATH [options]\n"
	      "  --host HOST          Host header (default: the URL's host:port)\n"
	      "  -c, --concurrency N  threads, one connection each (1..1024, default 1)\n"
	      "  -d, --duration D     stop starting requests after D (e.g. 500ms, 10s, 2m)\n"
	      "  -n, --requests N     stop after N requests in total\n"
	      "  --max-duration D     hard bound on the whole run (default 60s, at most 24h)\n"
	      "  --stop-file PATH     stop when PATH exists\n"
	      "  --keepalive          reuse connections (the default)\n"
	      "  --no-keepalive       one connection per request (Connection: close)\n"
	      "  --rate R             at most R requests per second in total\n"
	      "  --timeout D          per request (default 5s)\n"
	      "  -H, --header 'N: v'  extra request header (repeatable, at most 16)\n"
	      "Prints one JSON line with the counts when it stops (also on SIGTERM/SIGINT).\n",
	      stdout);
}

static void build_request(char *const *headers, int nheaders)
{
	size_t cap = 4096;
	int n;

	for (int i = 0; i < nheaders; i++)
		cap += strlen(headers[i]) + 2;
	req_buf = malloc(cap);
	if (!req_buf)
		die_usage("out of memory");
	n = snprintf(req_buf, cap, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: gantry-loadgen\r\n%s",
		     opt_path, opt_host, opt_keepalive ? "" : "Connection: close\r\n");
	if (n < 0 || (size_t)n >= cap)
		die_usage("request too long");
	req_len = (size_t)n;
	for (int i = 0; i < nheaders; i++) {
		n = snprintf(req_buf + req_len, cap - req_len, "%s\r\n", headers[i]);
		if (n < 0 || (size_t)n >= cap - req_len)
			die_usage("request too long");
		req_len += (size_t)n;
	}
	memcpy(req_buf + req_len, "\r\n", 3);
	req_len += 2;
}

/* ---- one connection ---- */

static void conn_close(struct worker *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	w->used = 0;
	w->rpos = w->rlen = 0;
}

/*
 * Waits for events on fd until deadline_us. Returns 1 ready, 0 deadline
 * passed, -2 hard stop, -1 error.
 */
static int wait_fd(int fd, short events, long long deadline_us)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		long long left = deadline_us - now_us();
		int r, ms;

		if (load_flag(&hard_stop))
			return -2;
		if (left <= 0)
			return 0;
		ms = left / 1000 + 1 > SLICE_MS ? SLICE_MS : (int)(left / 1000 + 1);
		r = poll(&p, 1, ms);
		if (r < 0 && errno != EINTR)
			return -1;
		if (r > 0)
			return 1;
	}
}

/* Result of one attempt. */
enum { RES_OK = 0, RES_ERR = -1, RES_ABORT = -2 };

static int do_connect(struct worker *w, long long deadline_us, int *kind)
{
	int fd, one = 1, r, soerr = 0;
	socklen_t sl = sizeof(soerr);

	fd = socket(opt_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*kind = ERR_CONNECT;
		return RES_ERR;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&opt_addr, opt_addrlen) < 0) {
		if (errno != EINPROGRESS) {
			close(fd);
			*kind = ERR_CONNECT;
			return RES_ERR;
		}
		r = wait_fd(fd, POLLOUT, deadline_us);
		if (r <= 0) {
			close(fd);
			*kind = ERR_TIMEOUT;
			return r == -2 ? RES_ABORT : RES_ERR;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
			close(fd);
			*kind = ERR_CONNECT;
			return RES_ERR;
		}
	}
	w->fd = fd;
	w->used = 0;
	w->rpos = w->rlen = 0;
	return RES_OK;
}

/* An idle kept-alive connection the server has closed (or sent junk on). */
static int idle_conn_dead(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };

	return poll(&p, 1, 0) != 0;
}

static int send_all(struct worker *w, long long deadline_us, int *kind)
{
	size_t off = 0;

	while (off < req_len) {
		ssize_t n = send(w->fd, req_buf + off, req_len - off, MSG_NOSIGNAL);

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int r = wait_fd(w->fd, POLLOUT, deadline_us);

			if (r == -2)
				return RES_ABORT;
			if (r <= 0) {
				*kind = ERR_TIMEOUT;
				return RES_ERR;
			}
			continue;
		}
		*kind = ERR_CLOSED;
		return RES_ERR;
	}
	return RES_OK;
}

/* Reads more bytes into the buffer (compacting it). 1 got bytes, 0 EOF, <0 see R_*. */
static int fill(struct worker *w, long long deadline_us, int *kind)
{
	ssize_t n;

	if (w->rpos > 0) {
		memmove(w->rbuf, w->rbuf + w->rpos, w->rlen);
		w->rpos = 0;
	}
	if (w->rlen >= sizeof(w->rbuf)) {
		*kind = ERR_PROTOCOL;
		return RES_ERR;
	}
	for (;;) {
		int r;

		n = recv(w->fd, w->rbuf + w->rlen, sizeof(w->rbuf) - w->rlen, 0);
		if (n > 0) {
			w->rlen += (size_t)n;
			return 1;
		}
		if (n == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			*kind = ERR_CLOSED;     /* reset by the server */
			return RES_ERR;
		}
		r = wait_fd(w->fd, POLLIN, deadline_us);
		if (r == -2)
			return RES_ABORT;
		if (r <= 0) {
			*kind = ERR_TIMEOUT;
			return RES_ERR;
		}
	}
}

/* Finds "\r\n" at or after the read position; its offset from rpos, or -1. */
static long find_crlf(const struct worker *w, size_t from)
{
	for (size_t i = from; i + 1 < w->rlen; i++)
		if (w->rbuf[w->rpos + i] == '\r' && w->rbuf[w->rpos + i + 1] == '\n')
			return (long)i;
	return -1;
}

/* Ensures a whole line is buffered; returns its length (without CRLF) or <0. */
static long read_line(struct worker *w, long long deadline_us, int *kind, size_t max)
{
	long at;

	while ((at = find_crlf(w, 0)) < 0) {
		int r;

		if (w->rlen > max) {
			*kind = ERR_PROTOCOL;
			return RES_ERR;
		}
		r = fill(w, deadline_us, kind);
		if (r == 0) {
			*kind = ERR_CLOSED;
			return RES_ERR;
		}
		if (r < 0)
			return r;
	}
	return at;
}

static int skip_bytes(struct worker *w, unsigned long long n, long long deadline_us, int *kind)
{
	while (n > 0) {
		size_t take;

		if (w->rlen == 0) {
			int r = fill(w, deadline_us, kind);

			if (r == 0) {
				*kind = ERR_CLOSED;
				return RES_ERR;
			}
			if (r < 0)
				return r;
		}
		take = w->rlen < n ? w->rlen : (size_t)n;
		w->rpos += take;
		w->rlen -= take;
		n -= take;
	}
	return RES_OK;
}

static int skip_chunked(struct worker *w, long long deadline_us, int *kind)
{
	for (;;) {
		long len = read_line(w, deadline_us, kind, 1024);
		unsigned long long size = 0;
		char *line;
		int digits = 0;

		if (len < 0)
			return (int)len;
		line = w->rbuf + w->rpos;
		for (long i = 0; i < len && line[i] != ';'; i++) {
			int c = line[i], d;

			if (c >= '0' && c <= '9')
				d = c - '0';
			else if (c >= 'a' && c <= 'f')
				d = c - 'a' + 10;
			else if (c >= 'A' && c <= 'F')
				d = c - 'A' + 10;
			else if (c == ' ' || c == '\t')
				continue;
			else
				goto bad;
			if (++digits > 15)
				goto bad;
			size = size * 16 + (unsigned long long)d;
		}
		if (!digits)
			goto bad;
		w->rpos += (size_t)len + 2;
		w->rlen -= (size_t)len + 2;
		if (size == 0) {
			/* trailer section up to the empty line */
			for (;;) {
				len = read_line(w, deadline_us, kind, HEAD_MAX);
				if (len < 0)
					return (int)len;
				w->rpos += (size_t)len + 2;
				w->rlen -= (size_t)len + 2;
				if (len == 0)
					return RES_OK;
			}
		}
		{
			int r = skip_bytes(w, size + 2, deadline_us, kind);

			if (r < 0)
				return r;
		}
	}
bad:
	*kind = ERR_PROTOCOL;
	return RES_ERR;
}

struct resp {
	int status;
	int close;
	char version[VERSION_MAX];
};

/*
 * Reads one response. *got_bytes tells whether any byte of it arrived (to
 * tell an idle keep-alive close from a server failing this request).
 */
static int read_response(struct worker *w, long long deadline_us, struct resp *rs,
			 int *got_bytes, int *kind)
{
	long long clen;
	int chunked;
	size_t had = w->rlen;

again:
	clen = -1;
	chunked = 0;
	rs->close = !opt_keepalive;
	snprintf(rs->version, sizeof(rs->version), "-");
	{
		long len;
		char *line;

		/* the status line */
		len = read_line(w, deadline_us, kind, HEAD_MAX);
		if (w->rlen > had)
			*got_bytes = 1;
		if (len < 0)
			return (int)len;
		line = w->rbuf + w->rpos;
		if (len < 12 || strncmp(line, "HTTP/1.", 7) != 0 || line[8] != ' ' ||
		    line[9] < '1' || line[9] > '5' || line[10] < '0' || line[10] > '9' ||
		    line[11] < '0' || line[11] > '9') {
			*kind = ERR_PROTOCOL;
			return RES_ERR;
		}
		rs->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
		if (line[7] == '0')
			rs->close = 1;
		w->rpos += (size_t)len + 2;
		w->rlen -= (size_t)len + 2;

		/* header fields */
		for (;;) {
			char *colon, *value, *end;

			len = read_line(w, deadline_us, kind, HEAD_MAX);
			if (len < 0)
				return (int)len;
			line = w->rbuf + w->rpos;
			w->rpos += (size_t)len + 2;
			w->rlen -= (size_t)len + 2;
			if (len == 0)
				break;
			line[len] = '\0';       /* overwrites the '\r', already consumed */
			colon = strchr(line, ':');
			if (!colon) {
				*kind = ERR_PROTOCOL;
				return RES_ERR;
			}
			*colon = '\0';
			value = colon + 1;
			while (*value == ' ' || *value == '\t')
				value++;
			end = value + strlen(value);
			while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
				*--end = '\0';
			if (strcasecmp(line, "Content-Length") == 0) {
				char *e;

				errno = 0;
				clen = strtoll(value, &e, 10);
				if (errno || e == value || *e || clen < 0) {
					*kind = ERR_PROTOCOL;
					return RES_ERR;
				}
			} else if (strcasecmp(line, "Transfer-Encoding") == 0) {
				if (strcasestr(value, "chunked"))
					chunked = 1;
			} else if (strcasecmp(line, "Connection") == 0) {
				if (strcasestr(value, "close"))
					rs->close = 1;
			} else if (strcasecmp(line, "X-Version") == 0) {
				snprintf(rs->version, sizeof(rs->version), "%s", value);
			}
		}
	}
	/* interim responses (100 Continue, 103 Early Hints) precede the real one */
	if (rs->status >= 100 && rs->status < 200 && rs->status != 101)
		goto again;
	if (rs->status == 204 || rs->status == 304 || (rs->status >= 100 && rs->status < 200))
		return RES_OK;
	if (chunked)
		return skip_chunked(w, deadline_us, kind);
	if (clen >= 0)
		return skip_bytes(w, (unsigned long long)clen, deadline_us, kind);
	/* no length: the body runs to the end of the connection */
	rs->close = 1;
	for (;;) {
		int r;

		w->rpos = w->rlen = 0;
		r = fill(w, deadline_us, kind);
		if (r == 0)
			return RES_OK;
		if (r < 0)
			return r;
	}
}

/* Adds n responses of version v; past MAX_VERSIONS distinct values they go to "(other)". */
static void count_version(struct stats *st, const char *v, unsigned long long n)
{
	for (int i = 0; i < st->nversions; i++) {
		if (strcmp(st->versions[i].name, v) == 0) {
			st->versions[i].n += n;
			return;
		}
	}
	if (st->nversions < MAX_VERSIONS) {
		snprintf(st->versions[st->nversions].name, VERSION_MAX, "%s", v);
		st->versions[st->nversions++].n = n;
		return;
	}
	st->other_versions += n;
}

/*
 * One request, with at most one silent retry.
 *
 * Keep-alive race: a server may close an idle kept-alive connection at the
 * moment we send on it (idle timeout, a replica draining, a proxy reload). A
 * real client library (curl, Go's net/http, browsers) then retries an
 * idempotent request once on a new connection, and the user never sees it.
 * We do the same: if the connection had already carried a response and dies
 * before the first byte of the next response, the GET is retried once on a
 * fresh connection and counted in "retries", not in "errors". A connection
 * that the server closes or resets before answering on a FRESH connection,
 * or in the middle of a response, is an error.
 */
static int one_request(struct worker *w, struct resp *rs, int *kind)
{
	long long deadline = now_us() + (long long)opt_timeout_ms * 1000;

	for (int attempt = 0; attempt < 2; attempt++) {
		int got_bytes = 0, reused, r;

		if (w->fd >= 0 && idle_conn_dead(w->fd))
			conn_close(w);  /* closed while idle: reconnect, no retry needed */
		if (w->fd < 0) {
			r = do_connect(w, deadline, kind);
			if (r != RES_OK)
				return r;
		}
		reused = w->used;
		r = send_all(w, deadline, kind);
		if (r == RES_OK)
			r = read_response(w, deadline, rs, &got_bytes, kind);
		if (r == RES_OK) {
			w->used = 1;
			if (rs->close)
				conn_close(w);
			return RES_OK;
		}
		conn_close(w);
		if (r == RES_ABORT)
			return r;
		if (reused && !got_bytes && *kind == ERR_CLOSED && attempt == 0) {
			w->st.retries++;
			continue;
		}
		return r;
	}
	return RES_ERR;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	for (;;) {
		struct resp rs;
		long long ticket, t0, us;
		int kind = ERR_PROTOCOL, r;

		if (load_flag(&soft_stop) || load_flag(&hard_stop))
			break;
		ticket = __atomic_fetch_add(&next_ticket, 1, __ATOMIC_RELAXED);
		if (opt_requests >= 0 && ticket >= opt_requests)
			break;
		if (opt_rate > 0) {
			/* ticket k is due k/rate seconds after the start */
			long long due = (long long)((double)ticket * 1e6 / opt_rate);
			int stop = 0;

			while (!stop && elapsed_us() < due) {
				long long left = due - elapsed_us();

				sleep_us(left > SLICE_MS * 1000 ? SLICE_MS * 1000 : left);
				stop = load_flag(&soft_stop) || load_flag(&hard_stop);
			}
			if (stop)
				break;
		}
		t0 = now_us();
		r = one_request(w, &rs, &kind);
		if (r == RES_ABORT) {
			w->st.aborted++;
			break;
		}
		w->st.requests++;
		if (r != RES_OK) {
			w->st.errors++;
			w->st.kinds[kind]++;
			sleep_us(ERROR_BACKOFF_MS * 1000);
			continue;
		}
		us = now_us() - t0;
		if (us < 0)
			us = 0;
		{
			int h = hist_index((unsigned long long)us);

			w->st.hist[h < HIST_SIZE ? h : HIST_SIZE - 1]++;
		}
		if ((unsigned long long)us > w->st.max_us)
			w->st.max_us = (unsigned long long)us;
		if (rs.status >= 200 && rs.status < 300)
			w->st.ok++;
		else
			w->st.non2xx++;
		if (rs.status >= 100 && rs.status < 600)
			w->st.codes[rs.status]++;
		count_version(&w->st, rs.version, 1);
	}
	conn_close(w);
	__atomic_add_fetch(&workers_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* ---- output ---- */

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c);   /* non-ASCII bytes too: output stays valid JSON */
		else
			putchar(c);
	}
	putchar('"');
}

/* Prints the q-quantile (bucket midpoint, capped at the largest sample seen). */
static void print_percentile(const char *name, const unsigned long long *hist,
			     unsigned long long total, unsigned long long max_us, double q)
{
	unsigned long long want, seen = 0;

	printf(", \"%s\": ", name);
	if (total == 0) {
		fputs("null", stdout);
		return;
	}
	want = (unsigned long long)(q * (double)total + 0.999999);
	if (want < 1)
		want = 1;
	for (int i = 0; i < HIST_SIZE; i++) {
		seen += hist[i];
		if (seen >= want) {
			double v = hist_value(i);

			if (v > (double)max_us)
				v = (double)max_us;
			printf("%.3f", v / 1000.0);
			return;
		}
	}
	fputs("null", stdout);
}

static void report(struct worker *ws, const char *stopped_by)
{
	static struct stats t;
	unsigned long long total = 0;
	double secs = (double)elapsed_us() / 1e6;

	memset(&t, 0, sizeof(t));
	for (int i = 0; i < opt_concurrency; i++) {
		struct stats *s = &ws[i].st;

		t.requests += s->requests;
		t.ok += s->ok;
		t.non2xx += s->non2xx;
		t.errors += s->errors;
		t.retries += s->retries;
		t.aborted += s->aborted;
		for (int k = 0; k < ERR_KINDS; k++)
			t.kinds[k] += s->kinds[k];
		for (int c = 0; c < 600; c++)
			t.codes[c] += s->codes[c];
		for (int h = 0; h < HIST_SIZE; h++)
			t.hist[h] += s->hist[h];
		if (s->max_us > t.max_us)
			t.max_us = s->max_us;
		for (int v = 0; v < s->nversions; v++)
			count_version(&t, s->versions[v].name, s->versions[v].n);
		t.other_versions += s->other_versions;
	}
	for (int h = 0; h < HIST_SIZE; h++)
		total += t.hist[h];

	printf("{\"requests\": %llu, \"ok\": %llu, \"non2xx\": %llu, \"errors\": %llu",
	       t.requests, t.ok, t.non2xx, t.errors);
	fputs(", \"codes\": {", stdout);
	for (int c = 0, first = 1; c < 600; c++) {
		if (!t.codes[c])
			continue;
		printf("%s\"%d\": %llu", first ? "" : ", ", c, t.codes[c]);
		first = 0;
	}
	fputs("}, \"versions\": {", stdout);
	for (int v = 0; v < t.nversions; v++) {
		if (v)
			fputs(", ", stdout);
		json_string(t.versions[v].name);
		printf(": %llu", t.versions[v].n);
	}
	if (t.other_versions)
		printf("%s\"(other)\": %llu", t.nversions ? ", " : "", t.other_versions);
	putchar('}');
	print_percentile("p50_ms", t.hist, total, t.max_us, 0.50);
	print_percentile("p90_ms", t.hist, total, t.max_us, 0.90);
	print_percentile("p99_ms", t.hist, total, t.max_us, 0.99);
	if (total)
		printf(", \"max_ms\": %.3f", (double)t.max_us / 1000.0);
	else
		fputs(", \"max_ms\": null", stdout);
	printf(", \"duration_s\": %.3f, \"rps\": %.1f, \"retries\": %llu, \"aborted\": %llu",
	       secs, secs > 0 ? (double)t.requests / secs : 0.0, t.retries, t.aborted);
	fputs(", \"error_kinds\": {", stdout);
	for (int k = 0; k < ERR_KINDS; k++)
		printf("%s\"%s\": %llu", k ? ", " : "", err_names[k], t.kinds[k]);
	printf("}, \"stopped_by\": \"%s\"}\n", stopped_by);
	fflush(stdout);
}

static void on_signal(int sig)
{
	got_signal = sig;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "host", required_argument, NULL, 'h' },
		{ "concurrency", required_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 'd' },
		{ "requests", required_argument, NULL, 'n' },
		{ "max-duration", required_argument, NULL, 'm' },
		{ "stop-file", required_argument, NULL, 's' },
		{ "keepalive", no_argument, NULL, 'k' },
		{ "no-keepalive", no_argument, NULL, 'K' },
		{ "rate", required_argument, NULL, 'r' },
		{ "timeout", required_argument, NULL, 't' },
		{ "header", required_argument, NULL, 'H' },
		{ "help", no_argument, NULL, '?' + 256 },
		{ NULL, 0, NULL, 0 },
	};
	char *headers[MAX_HEADERS];
	int nheaders = 0, opt, have_url = 0;
	const char *host_override = NULL, *stopped_by = "all-done";
	struct worker *ws;
	struct sigaction sa;
	long long hard_deadline;

	while ((opt = getopt_long(argc, argv, "c:d:n:H:", longopts, NULL)) != -1) {
		switch (opt) {
		case 'u':
			parse_url(optarg);
			have_url = 1;
			break;
		case 'h':
			host_override = optarg;
			break;
		case 'c':
			opt_concurrency = (int)parse_count(optarg, 1, MAX_CONCURRENCY, "--concurrency");
			break;
		case 'd':
			if ((opt_duration_ms = parse_duration_ms(optarg)) < 0)
				die_usage("--duration: invalid duration '%s' (e.g. 500ms, 10s, 2m)", optarg);
			break;
		case 'n':
			opt_requests = parse_count(optarg, 0, 1000000000LL, "--requests");
			break;
		case 'm':
			if ((opt_max_duration_ms = parse_duration_ms(optarg)) <= 0)
				die_usage("--max-duration: invalid duration '%s' (e.g. 60s, at most 24h)",
					  optarg);
			break;
		case 's':
			opt_stop_file = optarg;
			break;
		case 'k':
			opt_keepalive = 1;
			break;
		case 'K':
			opt_keepalive = 0;
			break;
		case 'r': {
			char *e;

			errno = 0;
			opt_rate = strtod(optarg, &e);
			if (errno || e == optarg || *e || !(opt_rate > 0 && opt_rate <= 1e7))
				die_usage("--rate: invalid value '%s'", optarg);
			break;
		}
		case 't':
			if ((opt_timeout_ms = parse_duration_ms(optarg)) <= 0)
				die_usage("--timeout: invalid duration '%s'", optarg);
			break;
		case 'H':
			if (nheaders >= MAX_HEADERS)
				die_usage("--header: at most %d", MAX_HEADERS);
			if (!strchr(optarg, ':') || strpbrk(optarg, "\r\n"))
				die_usage("--header: expected 'Name: value', got '%s'", optarg);
			headers[nheaders++] = optarg;
			break;
		case '?' + 256:
			usage();
			return 0;
		default:
			die_usage("unknown option");
		}
	}
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	if (!have_url)
		die_usage("--url is required");
	if (host_override) {
		if (strlen(host_override) >= sizeof(opt_host) || strpbrk(host_override, "\r\n "))
			die_usage("--host: invalid host '%s'", host_override);
		snprintf(opt_host, sizeof(opt_host), "%s", host_override);
	}
	build_request(headers, nheaders);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	ws = calloc((size_t)opt_concurrency, sizeof(*ws));
	if (!ws)
		die_usage("out of memory");
	clock_gettime(CLOCK_MONOTONIC, &start_ts);
	hard_deadline = (long long)opt_max_duration_ms * 1000;
	for (int i = 0; i < opt_concurrency; i++) {
		ws[i].fd = -1;
		if (pthread_create(&ws[i].th, NULL, worker_main, &ws[i]) != 0) {
			fprintf(stderr, "loadgen: cannot start thread %d\n", i);
			/* run with the threads we have; the others count as done */
			__atomic_add_fetch(&workers_done, opt_concurrency - i, __ATOMIC_RELEASE);
			opt_concurrency = i;
			break;
		}
	}

	/* supervise: stop flags are raised here, threads only read them */
	while (__atomic_load_n(&workers_done, __ATOMIC_ACQUIRE) < opt_concurrency ||
	       opt_concurrency == 0) {
		long long el = elapsed_us();
		struct stat sb;

		if (got_signal && !load_flag(&hard_stop)) {
			stopped_by = "signal";
			set_flag(&hard_stop);
		} else if (el >= hard_deadline && !load_flag(&hard_stop)) {
			if (!load_flag(&soft_stop))
				stopped_by = "max-duration";
			set_flag(&hard_stop);
		} else if (!load_flag(&soft_stop)) {
			if (opt_duration_ms >= 0 && el >= (long long)opt_duration_ms * 1000) {
				stopped_by = "duration";
				set_flag(&soft_stop);
			} else if (opt_stop_file && stat(opt_stop_file, &sb) == 0) {
				stopped_by = "stop-file";
				set_flag(&soft_stop);
			}
		}
		if (opt_concurrency == 0)
			break;
		sleep_us(20000);
	}
	for (int i = 0; i < opt_concurrency; i++)
		pthread_join(ws[i].th, NULL);
	if (!strcmp(stopped_by, "all-done") && opt_requests >= 0)
		stopped_by = "requests";
	report(ws, stopped_by);
	free(ws);
	free(req_buf);
	return 0;
}
