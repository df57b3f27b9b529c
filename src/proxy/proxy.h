/*
 * proxy.h — the built-in HTTP/1.1 reverse proxy (`gantry proxy`).
 * Invariants and the connection state machines: docs/internals/proxy.md.
 */
#ifndef GANTRY_PROXY_PROXY_H
#define GANTRY_PROXY_PROXY_H
#include "common.h"

struct proxy_config {
	const char *listen;      /* "127.0.0.1:8080", "[::1]:8080" or ":8080" */
	const char *admin;       /* same forms, or NULL */
	const char *routes_path; /* JSON route table, reloaded on SIGHUP */
	const char *access_log;  /* JSON lines appended here, or NULL */
	int workers;             /* event loops (threads), 1..64; default: the cores */
	uint64_t header_timeout_ms;   /* request head must arrive within; 408 */
	uint64_t idle_timeout_ms;     /* idle client keep-alive; stalled client writes */
	uint64_t body_timeout_ms;     /* no request body byte for this long: 408 */
	uint64_t upstream_timeout_ms; /* no upstream byte for this long: 504 */
	uint64_t connect_timeout_ms;
	uint64_t drain_timeout_ms;    /* graceful stop deadline */
	uint64_t grace_ms;            /* at SIGTERM, serve on this long with /healthz 503 first; 0: none */
	uint64_t tunnel_timeout_ms;   /* idle Upgrade tunnel */
	uint64_t max_body;            /* request body bytes, else 413; 0 = no limit */
	unsigned forward_headers;     /* PROXY_FWD_* the proxy sets upstream */
	const char *trusted_proxies;  /* "CIDR,..." whose X-Forwarded-* are kept; NULL: none */
	const char *admin_token_file; /* bearer token of the admin listener; required off loopback */
	int listen_fds;               /* > 0: the listening sockets are inherited on fds 3 to
	                               * 3 + listen_fds - 1, one per worker (workers must be
	                               * listen_fds); the proxy does not bind. 0: it binds listen */
	int admin_fd;                 /* > 0: the admin listener is this inherited listening
	                               * socket (admin still names its address); it is closed
	                               * at the start of a graceful stop, so that the holder's
	                               * next proxy answers the admin requests from then on */
	const char *counters_from;    /* a previous proxy's /windows document: the counters start
	                               * from it (proxy/metrics.h); unusable: logged, from 0. NULL: 0 */
	bool await_routes;            /* start without a table: routes_path is not read, the
	                               * listeners are bound but do not listen (connections are
	                               * refused) and /healthz is 503 until PUT /routes */
};

/*
 * Request headers the proxy sets on the way upstream (all by default). One
 * that is off is neither added nor stripped: the client's own passes through
 * unchanged, as HAProxy without `option forwardfor` and nginx without
 * proxy_set_header do.
 */
enum {
	PROXY_FWD_FOR = 1u << 0,   /* X-Forwarded-For: replaced; appended to from a trusted proxy */
	PROXY_FWD_PROTO = 1u << 1, /* X-Forwarded-Proto: replaced; a trusted proxy's kept */
	PROXY_FWD_HOST = 1u << 2,  /* X-Forwarded-Host: replaced; a trusted proxy's kept */
	PROXY_FWD_REQID = 1u << 3, /* X-Request-Id: kept, or one generated */
	PROXY_FWD_VIA = 1u << 4,   /* Via: appended to */
	PROXY_FWD_ALL = (1u << 5) - 1,
};

/*
 * "all", "none" or a comma-separated list of x-forwarded-for,
 * x-forwarded-proto, x-forwarded-host, x-request-id, via (any case) ->
 * PROXY_FWD_* bits; -1 and the offending word in *bad if not.
 */
int proxy_parse_forward_headers(const char *s, unsigned *out, char *bad, size_t badsz);
/* the error after "'WORD' " */
#define PROXY_FWD_EXPECTED \
	"is not all, none or a list of x-forwarded-for, x-forwarded-proto, x-forwarded-host, x-request-id, via"

void proxy_config_defaults(struct proxy_config *cfg);

/* the first inherited listening socket of --listen-fds (systemd's SD_LISTEN_FDS_START) */
#define PROXY_LISTEN_FDS_START 3

/*
 * Opens n listening sockets on listen ("IP:PORT", ":PORT"), CLOEXEC, into
 * fds[0..n-1] (owned by the caller): a probe bound WITHOUT SO_REUSEPORT
 * first makes sure nobody else listens there; with n == 1 the probe is the
 * listener, with more each socket has SO_REUSEPORT (the kernel spreads
 * connections over them). Backlog 4096, TCP_NODELAY, TCP_QUICKACK off. The
 * proxy's own listeners, and the ones the controller holds for the proxy
 * processes it starts (docs/internals/proxy.md, "Who holds the listeners").
 * 0, or -1 with err naming --listen and nothing left open.
 */
int proxy_listeners_open(const char *listen, int n, int *fds, struct gerr *err);
/*
 * The same sockets bound but not listening (--await-routes): a connection
 * to the port is refused until the proxy that gets them listens on them
 * (listen() on one descriptor makes the socket listen for every holder).
 */
int proxy_listeners_bind(const char *listen, int n, int *fds, struct gerr *err);

/*
 * Runs the proxy until SIGTERM/SIGINT and a graceful drain. Returns 0 after
 * a clean stop, -2 if the routes file or an address is invalid (the CLI
 * exits 2), -1 for other failures (err set). All strings borrowed.
 */
int proxy_run(const struct proxy_config *cfg, struct gerr *err);

#endif
