/*
 * conn.h — private to src/api/: the connection layer the two TCP
 * listeners share, the API's (tcp.c, `--api`) and the flags listener
 * (flags_tcp.c, `--flags-listen`). One request per connection
 * (Connection: close) on the daemon's loop.
 *
 * The layer owns what does not depend on the protocol: accepting (and
 * closing a flood past ops->flood unanswered), the peer's name, the list
 * and count of open connections, the read buffer, the request parser's
 * state (api/tcp.h), the timer, writing, "100 Continue", a client that
 * half-closed after a partial request (400 through ops->fail), and the
 * end of a connection: after the reply the write side is shut down and
 * request bytes are read and discarded until the client closes (at most
 * ops->linger_max_bytes, within ops->linger_ms), so that an early error
 * reply is not lost in a TCP reset caused by unread request bytes.
 * The listener keeps its protocol: what it makes of the bytes (ops->read:
 * api_http__feed, routing, the token checked from the head, body limits),
 * what its timer means before the reply (ops->timeout), its bounds and
 * its answers (ops->fail for the layer's).
 *
 * Lifetime: a connection holds a reference per open libuv handle (the
 * socket and its timer) plus any the listener takes (api_conn__ref, e.g.
 * a step on the thread pool); at 0, ops->release frees the listener's
 * state and the layer frees the connection, never earlier.
 * api_conn__close unlinks it at once (ops->closing) and closes both
 * handles; it is idempotent.
 */
#ifndef GANTRY_API_CONN_H
#define GANTRY_API_CONN_H
#include "common.h"
#include "api/tcp.h"
#include <uv.h>

struct api_conn;

/* one listener's protocol and bounds (static storage) */
struct api_conn_ops {
	size_t size;             /* the listener's connection struct, a struct api_conn its first member */
	size_t rbuf_size;        /* bytes read at most per read */
	int flood;               /* connections at once past which a new one is closed without an answer */
	uint64_t linger_ms;      /* after the reply: written and the client gone within, else closed */
	size_t linger_max_bytes; /* after the reply: request bytes discarded, past it closed */
	/* optional: a new connection, before it is accepted (it may be closed at once) */
	void (*init)(struct api_conn *c);
	/* optional: the connection leaves the list (api_conn__close), its handles close */
	void (*closing)(struct api_conn *c);
	/* optional: the last reference is gone: release the listener's state (the layer frees c) */
	void (*release)(struct api_conn *c);
	/* bytes read before the reply (data borrowed) */
	void (*read)(struct api_conn *c, const char *data, size_t len);
	/* the timer (api_conn__timer) ran out before the reply */
	void (*timeout)(struct api_conn *c);
	/* the listener's error answer (a client gone before its request ended: 400) */
	void (*fail)(struct api_conn *c, int status, const char *msg);
};

/* one listener's open connections */
struct api_conn_set {
	const struct api_conn_ops *ops;
	struct api_conn *conns;  /* newest first */
	int nconns;
};

struct api_conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_shutdown_t shutdown;
	int handles;             /* references: open uv handles + the listener's; freed at 0 */
	bool replied, closing;
	bool continued;          /* "100 Continue" written */
	size_t discarded;        /* bytes read after the reply */
	struct api_http http;    /* the request (api_http__feed is the listener's) */
	struct api_conn_set *set;
	struct api_conn *prev, *next;
	char *rbuf;              /* ops->rbuf_size bytes, allocated with the connection */
	char peer[64];           /* "tcp:127.0.0.1:53122", "tcp:[::1]:53122" ("tcp:unknown") */
};

/*
 * Accepts a connection of server into set: allocates ops->size bytes
 * (zeroed), readies the parser, calls ops->init, links it. NULL when it was closed at once
 * (the accept failed, or more than ops->flood connections are open), else
 * the connection, with its peer's name, not yet reading (api_conn__start).
 */
struct api_conn *api_conn__accept(struct api_conn_set *set, uv_stream_t *server);
/* starts reading and the timer (ms); closes the connection when it cannot read */
void api_conn__start(struct api_conn *c, uint64_t ms);
/* starts (again) reading; < 0 from libuv */
int api_conn__read_start(struct api_conn *c);
/* (re)starts the timer: ops->timeout after ms unless replied */
void api_conn__timer(struct api_conn *c, uint64_t ms);
/* a reference the listener holds (a step on the thread pool), dropped with api_conn__unref */
void api_conn__ref(struct api_conn *c);
void api_conn__unref(struct api_conn *c);
void api_conn__close(struct api_conn *c);
/* closes every connection of set (shutdown) */
void api_conn__close_all(struct api_conn_set *set);
/* writes len bytes of text: owned (consumed) when own, else static; a failed write closes */
void api_conn__write(struct api_conn *c, char *text, size_t len, bool own);
/* writes "100 Continue" once the head is in, if it asked for it, once */
void api_conn__continue(struct api_conn *c);
/* true once, and marks c replied: the one reply may be written; false when replied or closing */
bool api_conn__replying(struct api_conn *c);
/*
 * The reply (after api_conn__replying): the status line, Content-Type
 * ctype, Content-Length, Cache-Control: no-store, Connection: close, extra
 * (header lines each ending in \r\n, or ""), then body (borrowed) and a
 * "\n" when newline, both left out when head_only (Content-Length counts
 * them still). Then shuts the write side down and lingers (ops).
 */
void api_conn__reply(struct api_conn *c, int status, const char *ctype, const char *extra, const char *body,
		     bool newline, bool head_only);

#endif
