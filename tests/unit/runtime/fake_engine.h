/*
 * fake_engine.h — a fake Docker Engine for the runtime's unit tests: a
 * small HTTP/1.1 server on a Unix socket in a thread of the test,
 * answering canned responses by method and path prefix, recording the
 * last request (method, target, body). Include it in one test file only
 * (it defines static functions and a static state F).
 * Used by test_docker.c and test_swarm.c.
 */
#ifndef GANTRY_TEST_FAKE_ENGINE_H
#define GANTRY_TEST_FAKE_ENGINE_H
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>


struct route {
	const char *method;
	const char *prefix;   /* the request target starts with it ("/v1.41/_ping") */
	const char *response; /* the whole HTTP response; the connection closes after it */
	size_t len;           /* its length (0: strlen: a response with NULs gives it) */
	bool hold;            /* keep the connection open after the response until the client closes */
};

#define MAX_ROUTES 16
#define BODY_MAX (1 << 20)

struct fake {
	int fd;
	char dir[64];
	char sock[128];
	char host[160];
	struct route routes[MAX_ROUTES];
	size_t nroutes;
	pthread_mutex_t mu;
	char target[2048];  /* the last request's target */
	char method[16];
	char *body;         /* the last request body (BODY_MAX at most): requests without one keep it */
	size_t bodylen;
	int requests;
	volatile int stop;
	pthread_t th;
};

static struct fake F;

static void fake_route(const char *method, const char *prefix, const char *response, bool hold)
{
	BUG_ON(F.nroutes >= MAX_ROUTES);
	F.routes[F.nroutes++] = (struct route){ method, prefix, response, 0, hold };
}

UNUSED static void fake_route_bytes(const char *method, const char *prefix, const char *response, size_t len, bool hold)
{
	BUG_ON(F.nroutes >= MAX_ROUTES);
	F.routes[F.nroutes++] = (struct route){ method, prefix, response, len, hold };
}

/* reads until the head and its Content-Length body are in (5 s at most) */
static size_t read_request(int c, char *buf, size_t cap, size_t *head_end, size_t *clen)
{
	size_t got = 0;

	*head_end = 0;
	*clen = 0;
	for (int i = 0; i < 500 && got < cap - 1; i++) {
		struct pollfd q = { .fd = c, .events = POLLIN };
		ssize_t r;
		if (poll(&q, 1, 10) <= 0)
			continue;
		r = read(c, buf + got, cap - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
		buf[got] = 0;
		if (!*head_end) {
			char *e = strstr(buf, "\r\n\r\n");
			if (e) {
				char *cl = strcasestr(buf, "\r\nContent-Length:");
				*head_end = (size_t)(e - buf) + 4;
				if (cl && cl < e)
					*clen = strtoul(cl + 17, NULL, 10);
			}
		}
		if (*head_end && got >= *head_end + *clen)
			break;
	}
	buf[got] = 0;
	return got;
}

static void *fake_serve(void *arg)
{
	char *buf = xmalloc(BODY_MAX + 8192);

	(void)arg;
	while (!F.stop) {
		struct pollfd p = { .fd = F.fd, .events = POLLIN };
		size_t got, he, cl;
		const struct route *rt = NULL;
		char method[16] = "", target[2048] = "";
		int c;
		if (poll(&p, 1, 20) <= 0)
			continue;
		c = accept(F.fd, NULL, NULL);
		if (c < 0)
			continue;
		got = read_request(c, buf, BODY_MAX + 8192, &he, &cl);
		if (sscanf(buf, "%15s %2047s", method, target) == 2) {
			pthread_mutex_lock(&F.mu);
			strlcpy_g(F.method, method, sizeof(F.method));
			strlcpy_g(F.target, target, sizeof(F.target));
			if (he && got > he) {
				free(F.body);
				F.bodylen = got - he;
				F.body = xmalloc(F.bodylen + 1);
				memcpy(F.body, buf + he, F.bodylen);
				F.body[F.bodylen] = 0;
			}
			F.requests++;
			pthread_mutex_unlock(&F.mu);
			for (size_t i = 0; i < F.nroutes && !rt; i++)
				if (strcmp(F.routes[i].method, method) == 0 &&
				    strncmp(target, F.routes[i].prefix, strlen(F.routes[i].prefix)) == 0)
					rt = &F.routes[i];
		}
		{
			const char *resp = rt ? rt->response
					      : "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
						"Connection: close\r\n\r\n{\"message\":\"page not found\"}\n";
			size_t n = rt && rt->len ? rt->len : strlen(resp), off = 0;
			while (off < n) {
				ssize_t w = write(c, resp + off, n - off);
				if (w <= 0)
					break;
				off += (size_t)w;
			}
		}
		while (rt && rt->hold && !F.stop) {
			/* until the client goes away */
			struct pollfd q = { .fd = c, .events = POLLIN };
			char junk[256];
			if (poll(&q, 1, 20) > 0 && read(c, junk, sizeof(junk)) <= 0)
				break;
		}
		close(c);
	}
	free(buf);
	return NULL;
}

#define PING(v) "HTTP/1.1 200 OK\r\nApi-Version: " v "\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK"

static int fake_setup(void **state)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };

	(void)state;
	memset(&F, 0, sizeof(F));
	pthread_mutex_init(&F.mu, NULL);
	strlcpy_g(F.dir, "/tmp/gt-dk-XXXXXX", sizeof(F.dir));
	if (!mkdtemp(F.dir))
		return -1;
	snprintf(F.sock, sizeof(F.sock), "%s/d.sock", F.dir);
	snprintf(F.host, sizeof(F.host), "unix://%s", F.sock);
	strlcpy_g(a.sun_path, F.sock, sizeof(a.sun_path));
	F.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (F.fd < 0 || bind(F.fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(F.fd, 16) < 0)
		return -1;
	if (pthread_create(&F.th, NULL, fake_serve, NULL))
		return -1;
	return 0;
}

static int fake_teardown(void **state)
{
	(void)state;
	F.stop = 1;
	pthread_join(F.th, NULL);
	close(F.fd);
	{
		/* whatever a failed test left behind */
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", F.dir);
		if (system(cmd) != 0)
			fprintf(stderr, "# could not remove %s\n", F.dir);
	}
	free(F.body);
	F.body = NULL;
	pthread_mutex_destroy(&F.mu);
	return 0;
}

/* a client against the fake Engine speaking 1.41 (routes added first) */
static struct docker *open_141(void)
{
	struct gerr err = { { 0 } };
	struct docker *d;

	fake_route("GET", "/_ping", PING("1.41"), false);
	d = docker_open(F.host, &err);
	if (!d)
		fail_msg("docker_open: %s", err.msg);
	return d;
}

#define JSON_REPLY(status, body)                                                                     \
	"HTTP/1.1 " status "\r\nContent-Type: application/json\r\nApi-Version: 1.41\r\nConnection: close\r\n\r\n" body

#endif
