/*
 * upstream — a tiny keep-alive HTTP/1.1 server for the proxy's e2e tests.
 *
 *   upstream NAME PORTFILE [STATUS]
 *
 * Listens on 127.0.0.1 on a free port, writes the port to PORTFILE (temp file
 * + rename, so a reader never sees half of it), and serves, one thread per
 * connection:
 *   /sleep/MS     waits MS milliseconds, then answers like /
 *   /hold         waits while a file PORTFILE.hold exists (at most 120 s),
 *                 then answers like /: a request kept in flight as long as
 *                 the test needs, however slow the machine
 *   /echo         answers the request body (Content-Length or chunked)
 *   /chunked/N    answers N bytes of a fixed pattern, chunked
 *   /eof/N        answers N bytes without length, then closes
 *   /headers      answers the request head it received
 *   /status/CODE  answers CODE with an empty body
 *   /count        answers "requests=N connections=M"
 *   /stale        answers like /, and the connection's next answer comes
 *                 after a few stray bytes ("stale\n"), as from a server
 *                 that wrote a body after a HEAD once the proxy had pooled
 *                 the connection
 *   /health       answers 200 "ok", or 503 while a file PORTFILE.down
 *                 exists (a test makes a replica fail its health checks
 *                 while it still serves everything else)
 *   /stall        answers 200 "ok"; when a file PORTFILE.stall holds "PID MS",
 *                 first removes the file and stops PID (SIGSTOP), then
 *                 answers, and MS ms later continues it (SIGCONT): a health
 *                 checker whose loop is stopped while the answer arrives
 *                 (a stalled process, a busy machine)
 *   /ws           with Upgrade: websocket, answers 101 and then echoes
 *                 raw bytes until EOF (a stand-in for a WebSocket server)
 *   anything else answers "NAME\n"
 * Every answer has X-Upstream: NAME and X-Version: NAME. With STATUS (e.g.
 * 500), the catch-all answer (and /sleep/MS) has that status: a broken
 * release.
 * Test tool only: loopback, no limits beyond sanity caps; exits on SIGTERM.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *name;
static char downfile[4096];
static char holdfile[4096];
static char stallfile[4096];
static int forced_status = 200;
static atomic_long nreq, nconn;

struct conn {
	int fd;
	char buf[1 << 16];
	size_t len, pos;
};

static int fill(struct conn *c)
{
	ssize_t n;
	if (c->pos == c->len)
		c->pos = c->len = 0;
	if (c->len == sizeof(c->buf)) {
		if (!c->pos)
			return -1;
		memmove(c->buf, c->buf + c->pos, c->len - c->pos);
		c->len -= c->pos;
		c->pos = 0;
	}
	n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
	if (n <= 0)
		return -1;
	c->len += (size_t)n;
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* reads a CRLF-terminated line into out (without CRLF) */
static int read_line(struct conn *c, char *out, size_t max)
{
	for (;;) {
		char *nl = memchr(c->buf + c->pos, '\n', c->len - c->pos);
		if (nl) {
			size_t n = (size_t)(nl - (c->buf + c->pos));
			if (n && nl[-1] == '\r')
				n--;
			if (n >= max)
				return -1;
			memcpy(out, c->buf + c->pos, n);
			out[n] = 0;
			c->pos = (size_t)(nl - c->buf) + 1;
			return 0;
		}
		if (fill(c) < 0)
			return -1;
	}
}

static int read_n(struct conn *c, char *dst, size_t n)
{
	while (n) {
		size_t have;
		if (c->pos == c->len && fill(c) < 0)
			return -1;
		have = c->len - c->pos;
		if (have > n)
			have = n;
		memcpy(dst, c->buf + c->pos, have);
		c->pos += have;
		dst += have;
		n -= have;
	}
	return 0;
}

static void reply(int fd, int code, const char *extra, const char *body, size_t blen, int close_conn)
{
	char head[512];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d X\r\nX-Upstream: %s\r\nX-Version: %s\r\n%sContent-Length: %zu\r\n%s\r\n",
			 code, name, name, extra, blen, close_conn ? "Connection: close\r\n" : "");
	write_all(fd, head, (size_t)n);
	if (blen)
		write_all(fd, body, blen);
}

static void *serve(void *arg)
{
	struct conn *c = arg;
	char line[8192], path[4096], method[16], headbuf[32768];
	int stale = 0;
	atomic_fetch_add(&nconn, 1);
	for (;;) {
		size_t cl = 0, hlen = 0;
		int chunked = 0, close_conn = 0, upgrade = 0;
		char *body = NULL;
		size_t blen = 0;

		if (read_line(c, line, sizeof(line)) < 0 || sscanf(line, "%15s %4095s", method, path) != 2)
			break;
		hlen = (size_t)snprintf(headbuf, sizeof(headbuf), "%s\n", line);
		for (;;) {
			if (read_line(c, line, sizeof(line)) < 0)
				goto out;
			if (!line[0])
				break;
			if (hlen + strlen(line) + 2 < sizeof(headbuf))
				hlen += (size_t)snprintf(headbuf + hlen, sizeof(headbuf) - hlen, "%s\n", line);
			if (!strncasecmp(line, "content-length:", 15))
				cl = strtoul(line + 15, NULL, 10);
			else if (!strncasecmp(line, "transfer-encoding:", 18) && strcasestr(line, "chunked"))
				chunked = 1;
			else if (!strncasecmp(line, "connection:", 11) && strcasestr(line, "close"))
				close_conn = 1;
			else if (!strncasecmp(line, "upgrade:", 8) && strcasestr(line, "websocket"))
				upgrade = 1;
		}
		if (chunked) {
			for (;;) {
				size_t n;
				if (read_line(c, line, sizeof(line)) < 0)
					goto out;
				n = strtoul(line, NULL, 16);
				if (!n)
					break;
				body = realloc(body, blen + n);
				if (!body || read_n(c, body + blen, n) < 0 || read_line(c, line, sizeof(line)) < 0)
					goto out;
				blen += n;
			}
			do {
				if (read_line(c, line, sizeof(line)) < 0)
					goto out;
			} while (line[0]);
		} else if (cl) {
			body = malloc(cl);
			if (!body || read_n(c, body, cl) < 0)
				goto out;
			blen = cl;
		}
		atomic_fetch_add(&nreq, 1);
		if (stale) {
			write_all(c->fd, "stale\n", 6);
			stale = 0;
		}

		if (!strcmp(path, "/ws") && upgrade) {
			static const char sw[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
						 "Connection: Upgrade\r\nX-Upstream: ";
			write_all(c->fd, sw, sizeof(sw) - 1);
			write_all(c->fd, name, strlen(name));
			write_all(c->fd, "\r\n\r\n", 4);
			/* echo: first what is buffered, then until EOF */
			if (c->pos < c->len)
				write_all(c->fd, c->buf + c->pos, c->len - c->pos);
			for (;;) {
				ssize_t n = read(c->fd, c->buf, sizeof(c->buf));
				if (n <= 0 || write_all(c->fd, c->buf, (size_t)n) < 0)
					break;
			}
			goto out;
		} else if (!strncmp(path, "/sleep/", 7)) {
			long ms = atol(path + 7);
			struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
			nanosleep(&ts, NULL);
			snprintf(line, sizeof(line), "%s\n", name);
			reply(c->fd, forced_status, "", line, strlen(line), close_conn);
		} else if (!strcmp(path, "/hold")) {
			struct timespec ts = { 0, 10 * 1000000L };
			for (int i = 0; i < 12000 && access(holdfile, F_OK) == 0; i++)
				nanosleep(&ts, NULL);
			snprintf(line, sizeof(line), "%s\n", name);
			reply(c->fd, forced_status, "", line, strlen(line), close_conn);
		} else if (!strcmp(path, "/echo")) {
			reply(c->fd, 200, "", body, blen, close_conn);
		} else if (!strncmp(path, "/chunked/", 9) || !strncmp(path, "/eof/", 5)) {
			int eof = path[1] == 'e';
			size_t n = strtoul(path + (eof ? 5 : 9), NULL, 10), sent = 0;
			char chunk[8192];
			int hn = snprintf(line, sizeof(line), "HTTP/1.1 200 OK\r\nX-Upstream: %s\r\n%s\r\n", name,
					  eof ? "Connection: close\r\n" : "Transfer-Encoding: chunked\r\n");
			write_all(c->fd, line, (size_t)hn);
			while (sent < n) {
				size_t k = n - sent < sizeof(chunk) ? n - sent : sizeof(chunk);
				for (size_t i = 0; i < k; i++)
					chunk[i] = (char)('a' + (sent + i) % 26);
				if (!eof) {
					hn = snprintf(line, sizeof(line), "%zx\r\n", k);
					write_all(c->fd, line, (size_t)hn);
				}
				write_all(c->fd, chunk, k);
				if (!eof)
					write_all(c->fd, "\r\n", 2);
				sent += k;
			}
			if (eof)
				goto out;
			write_all(c->fd, "0\r\n\r\n", 5);
		} else if (!strcmp(path, "/headers")) {
			reply(c->fd, 200, "", headbuf, hlen, close_conn);
		} else if (!strncmp(path, "/status/", 8)) {
			int code = atoi(path + 8);
			if (code == 204 || code == 304) {
				int hn = snprintf(line, sizeof(line), "HTTP/1.1 %d X\r\nX-Upstream: %s\r\n\r\n", code, name);
				write_all(c->fd, line, (size_t)hn);
			} else {
				reply(c->fd, code, "", "", 0, close_conn);
			}
		} else if (!strcmp(path, "/stale")) {
			snprintf(line, sizeof(line), "%s\n", name);
			reply(c->fd, 200, "", line, strlen(line), close_conn);
			stale = 1;
		} else if (!strcmp(path, "/health")) {
			int down = access(downfile, F_OK) == 0;
			reply(c->fd, down ? 503 : 200, "", down ? "down\n" : "ok\n", down ? 5 : 3, close_conn);
		} else if (!strcmp(path, "/stall")) {
			FILE *f = fopen(stallfile, "r");
			long pid = 0, ms = 0;
			if (f) {
				if (fscanf(f, "%ld %ld", &pid, &ms) != 2 || ms < 0 || ms > 10000)
					pid = 0;
				fclose(f);
				unlink(stallfile);
			}
			if (pid > 1)
				kill((pid_t)pid, SIGSTOP);
			reply(c->fd, 200, "", "ok\n", 3, close_conn);
			if (pid > 1) {
				struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
				nanosleep(&ts, NULL);
				kill((pid_t)pid, SIGCONT);
			}
		} else if (!strcmp(path, "/count")) {
			snprintf(line, sizeof(line), "requests=%ld connections=%ld\n", atomic_load(&nreq),
				 atomic_load(&nconn));
			reply(c->fd, 200, "", line, strlen(line), close_conn);
		} else {
			snprintf(line, sizeof(line), "%s\n", name);
			reply(c->fd, forced_status, "", line, strlen(line), close_conn);
		}
		free(body);
		if (close_conn)
			break;
	}
out:
	close(c->fd);
	free(c);
	return NULL;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	char tmp[4096];
	FILE *f;
	int one = 1, lfd;

	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: upstream NAME PORTFILE [STATUS]\n");
		return 2;
	}
	name = argv[1];
	if (argc == 4)
		forced_status = atoi(argv[3]);
	signal(SIGPIPE, SIG_IGN);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 512) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl) < 0) {
		perror("upstream: listen");
		return 1;
	}
	snprintf(downfile, sizeof(downfile), "%s.down", argv[2]);
	snprintf(holdfile, sizeof(holdfile), "%s.hold", argv[2]);
	snprintf(stallfile, sizeof(stallfile), "%s.stall", argv[2]);
	snprintf(tmp, sizeof(tmp), "%s.tmp", argv[2]);
	f = fopen(tmp, "w");
	if (!f || fprintf(f, "%d\n", ntohs(sa.sin_port)) < 0 || fclose(f) || rename(tmp, argv[2])) {
		perror("upstream: port file");
		return 1;
	}
	for (;;) {
		pthread_t t;
		struct conn *c;
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			continue;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		if (pthread_create(&t, NULL, serve, c)) {
			close(fd);
			free(c);
			continue;
		}
		pthread_detach(t);
	}
}
