/*
 * http.h — bounded HTTP/1.1 message parsing on top of llhttp (strict build).
 *
 * One struct http_msg follows one connection's stream of requests (or
 * responses). The bytes stay in the caller's buffer: the parser records
 * {offset, length} spans relative to `base`, so the caller must not move the
 * bytes of a head until it has consumed the head (HTTP_EV_HEAD), except
 * that it may move the whole buffer (realloc) and set base to the new place
 * between two calls. Body bytes
 * are handed to on_body as they are parsed and may be dropped afterwards.
 *
 * Request heads are validated beyond what llhttp 8.1.0 checks (obs-fold,
 * empty names, Host count, TE on HTTP/1.0, TE other than "chunked", limits);
 * see docs/internals/proxy.md for the full list and the status codes.
 */
#ifndef GANTRY_HTTP_HTTP_H
#define GANTRY_HTTP_HTTP_H
#include "common.h"
#include "util/buf.h" /* struct hbuf */
#include <llhttp.h>

#define HTTP_MAX_HEAD (64 * 1024)  /* request head bytes, else 431 */
#define HTTP_MAX_HEADERS 100       /* header lines, else 431 */
#define HTTP_MAX_URL (8 * 1024)    /* request target bytes, else 414 */

#define HTTP_BODY_TOO_LARGE (-2)

struct http_span {
	uint32_t off, len;
};

#define HTTP_HDR_FIRST 16   /* entries of a new header index */
#define HTTP_HDR_POOL 256   /* indexes a pool keeps */

/*
 * Header indexes of HTTP_HDR_FIRST entries kept for reuse by one thread (a
 * proxy worker), so that a keep-alive connection that gives its index back
 * between requests costs no malloc/free per request. Owns what it holds.
 */
struct http_hdr_pool {
	struct http_header *v[HTTP_HDR_POOL];
	unsigned n;
};
void http_hdr_pool_release(struct http_hdr_pool *p);

struct http_header {
	struct http_span name, value; /* value without surrounding whitespace */
};

enum http_kind { HTTP_KIND_REQUEST, HTTP_KIND_RESPONSE };

/* events returned by http_msg_feed (a bit set) */
enum {
	HTTP_EV_HEAD = 1,  /* the head is complete and valid: read it now */
	HTTP_EV_DONE = 2,  /* the message is complete (parser paused after it) */
	HTTP_EV_ERROR = 4, /* err_status and err are set; close the connection */
};

struct http_msg {
	llhttp_t llp;
	enum http_kind kind;
	const char *base; /* borrowed: the buffer spans are relative to */

	/*
	 * body sink: called with body data only (chunk framing removed); returns
	 * 0, HTTP_BODY_TOO_LARGE (the message fails with 413) or -1 (400/502)
	 */
	int (*on_body)(void *ctx, const char *at, size_t len);
	void *ctx;
	struct http_hdr_pool *pool; /* borrowed, may be NULL: where indexes come from and go */
	bool skip_body; /* response to HEAD: no body whatever the headers say */

	/* the current head */
	struct http_span url, reason;
	struct http_header *hdr; /* owned; grown on demand up to HTTP_MAX_HEADERS */
	unsigned nhdr, hdr_cap;
	uint32_t head_bytes;
	int last;          /* which span the previous callback extended */
	uint32_t last_end; /* offset from base where it ended (base may move) */
	bool head_done, done, paused;

	/* filled by validation on HEAD */
	int host_idx;      /* index into hdr or -1 */
	bool chunked;      /* body framed by Transfer-Encoding: chunked */
	bool has_cl;
	uint64_t content_length;
	bool upgrade;      /* request: Upgrade with Connection: upgrade (a tunnel follows) */

	int err_status;    /* 400, 408, 414, 431, 501; 502 for responses */
	char err[160];     /* "header 'host': repeated" */
};

void http_msg_init(struct http_msg *m, enum http_kind kind, const char *base);
/*
 * Frees the header index (an idle connection keeps none); the message must
 * be between heads (http_msg_next) or finished with. init or next after it
 * are fine; a later head allocates again.
 */
void http_msg_release(struct http_msg *m);
/* Forget the current message; the next bytes fed start a new one. */
void http_msg_next(struct http_msg *m, const char *base);
/*
 * Parses up to len bytes at data (which must lie inside base's buffer, right
 * after the bytes fed before). *used is how many were consumed; the parser
 * stops right after a head and right after a message, so call again with the
 * rest. Returns a set of HTTP_EV_* (0 = need more bytes).
 */
int http_msg_feed(struct http_msg *m, const char *data, size_t len, size_t *used);
/* End of stream: completes a close-delimited response. Returns events. */
int http_msg_finish(struct http_msg *m);

static inline const char *http_span_ptr(const struct http_msg *m, struct http_span s)
{
	return m->base + s.off;
}

/*
 * true if the span is lit, ASCII case-insensitively; lit must be lowercase.
 * Inline so that strlen of a literal is a constant and most calls end at
 * the length test.
 */
static inline bool http_span_eq(const struct http_msg *m, struct http_span s, const char *lit)
{
	size_t n = strlen(lit);
	const char *p = m->base + s.off;
	if (s.len != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c + ('a' - 'A'));
		if (c != lit[i])
			return false;
	}
	return true;
}
/* first header named name (case-insensitive) at or after index from, or -1 */
int http_find_header(const struct http_msg *m, const char *name, int from);
/* true if the comma-separated list in span s contains token (case-insensitive) */
bool http_list_has(const char *s, size_t len, const char *token);

/*
 * Lowercases a Host value into out and strips the port ("[::1]:80" gives
 * "[::1]"). Returns 0, or -1 if it is empty after stripping, too long, or
 * has bytes a host cannot have.
 */
int http_host_normalize(const char *in, size_t len, char *out, size_t outsz);

const char *http_reason(int status);

#endif
