/*
 * tcp.h — the daemon API over TCP (`gantry serve --api HOST:PORT`):
 * HTTP/1.1, `POST /v1/OP` with the request object as the body,
 * `Authorization: Bearer TOKEN` on every request; and the artifact store,
 * `PUT /v1/artifacts/DIGEST` (a pack, src/artifact/pack.h, streamed
 * to the unpacker as it arrives) and `HEAD|GET /v1/artifacts/DIGEST`. See docs/api.md
 * ("Over TCP") for the contract; this file is its implementation's
 * interface: the listener (daemon side) and the request parser, which has
 * no I/O so that fuzz/fuzz_api_http.c can drive it.
 */
#ifndef GANTRY_API_TCP_H
#define GANTRY_API_TCP_H
#include "common.h"
#include "http/http.h"
#include <jansson.h>

#define API_TCP_MAX_BODY (4 * 1024 * 1024) /* request body bytes, else 413 (as the socket's 4 MiB) */
#define API_TCP_MAX_CONNS 64               /* authenticated connections at once, else 503 */
#define API_TCP_MAX_UNAUTH 16              /* connections whose head has not authenticated yet: past it, the oldest is dropped */
#define API_TCP_HEAD_MS 3000               /* an unauthenticated connection's head must arrive within, else closed */
#define API_TCP_REQUEST_MS 10000           /* the whole request must arrive within, else 408 */
#define API_TCP_UPLOAD_IDLE_MS 30000       /* an upload's body: at most this between two reads, else 408 */

/* ---- daemon side (tcp.c, on the controller's loop) ---- */

/* 0 if addr is "IPv4:PORT" or "[IPv6]:PORT", else -1 with err naming --api */
int api_tcp_check_addr(const char *addr, struct gerr *err);
/*
 * Listens on addr (borrowed) on the daemon's loop. Prints a warning to
 * stderr when addr is not a loopback address (plain HTTP). -1 with err
 * ("--api ADDR: cannot listen: address already in use") on failure.
 */
int api_tcp_listen(const char *addr, struct gerr *err);
/* stops listening and closes every connection (shutdown); idempotent */
void api_tcp_close(void);
/* `gantry upgrade` (daemon_api_hooks): the listener's fd (-1: none), stop
 * accepting, listen on a handed-over fd */
int api_tcp_fd(void);
void api_tcp_pause(void);
int api_tcp_listen_fd(int fd, struct gerr *err);

/* ---- the request parser (pure) ---- */

enum { API_HTTP_MORE = 0, API_HTTP_DONE = 1, API_HTTP_ERROR = 2 };

/* what a request is, from its path and method */
enum {
	API_REQ_OP = 0,        /* POST /v1/OP (or GET /v1/ping) */
	API_REQ_ARTIFACT_PUT,  /* PUT /v1/artifacts/DIGEST: op "artifact_upload" */
	API_REQ_ARTIFACT_GET,  /* HEAD or GET /v1/artifacts/DIGEST: op "artifact_exists" */
	API_REQ_OFREP,         /* POST /flags/ENV/ofrep/v1/evaluate/flags[/KEY]: feature flags (daemon/flags.h) */
};

struct api_http {
	struct http_msg msg;
	char *head;            /* owned: the bytes fed until the head was complete */
	size_t head_len;
	struct hbuf body;      /* the body without chunk framing, at most API_TCP_MAX_BODY */
	/*
	 * Set by the owner once the head is read (an upload): body bytes go
	 * there instead of into body, which keeps only those parsed before.
	 * A negative return fails the request (400); the sink knows why.
	 */
	int (*sink)(void *ctx, const char *data, size_t len);
	void *sink_ctx;
	int kind;              /* API_REQ_* */
	char digest[72];       /* DIGEST of /v1/artifacts/DIGEST: 64 lowercase hex digits */
	bool head_done, done;
	bool expect_continue;  /* the head asked for "100 Continue" (answer before the body) */
	/* from the head */
	bool health;           /* GET /v1/ping: the unauthenticated health check */
	bool metrics;          /* GET /metrics: op "status", answered as Prometheus text */
	char op[64];           /* OP of /v1/OP; artifact_upload or artifact_exists */
	char token[256];       /* the Bearer token */
	char flags_env[64];    /* OFREP: ENV of /flags/ENV/... */
	char flag_key[128];    /* OFREP: KEY of .../evaluate/flags/KEY; "" for the bulk evaluation */
	char if_none_match[80];/* OFREP bulk: the If-None-Match header ("" when none) */
	/* set with API_HTTP_ERROR: the answer */
	int status;            /* 400, 401, 404, 405, 408, 413, 414, 417, 431, 501, 505 */
	char err[240];
};

void api_http__init(struct api_http *h);
void api_http__release(struct api_http *h);
/*
 * Feeds len bytes (borrowed; copied while the head is incomplete).
 * Returns API_HTTP_MORE, API_HTTP_DONE (a complete, authorized-looking
 * request: call api_http__request) or API_HTTP_ERROR (h->status, h->err).
 * After DONE or ERROR further bytes are ignored.
 */
int api_http__feed(struct api_http *h, const char *data, size_t len);
/*
 * The API request of a DONE message: the body object with "op" from the
 * path and "token" from Authorization, "deployed_by" removed (the token's
 * user is the actor). NULL with h->status/h->err set (400) when the body is
 * not a JSON object or its "op" differs from the path. Owned by the caller.
 */
json_t *api_http__request(struct api_http *h);
/*
 * The HTTP status for a reply of the API: 200 ok; by "code": 2 -> 400,
 * 3 -> 403, 1 -> 409, or 503 when the reply asks to retry (start-up).
 */
int api_http__status(json_t *reply);

#endif
