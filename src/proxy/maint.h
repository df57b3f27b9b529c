/*
 * maint.h — maintenance mode of a route: what the proxy answers instead of
 * forwarding (503, Retry-After, Cache-Control: no-store, a small HTML page
 * or JSON), who still goes through (an allowed header with its exact
 * value: a bypass secret), and the checks of its inputs.
 *
 * The checks are shared by every layer that takes a maintenance setting
 * (the CLI names the flag, the API the JSON pointer, the proxy the routes
 * file's path): each says what is wrong in err without a location, and the
 * caller prefixes it. They are pure, as are the builders, so the unit tests
 * drive them directly (tests/unit/proxy/test_maint.c).
 *
 * In the routes file (route.c):
 *   "maintenance": {"message": TEXT, "retry_after_s": 120,
 *                   "allow_headers": [{"header": NAME, "value": SECRET}]}
 * The answers are built once per table load (maint_build), never per
 * request; a request pays one header scan per allowed header and, when in
 * maintenance, one Accept parse.
 */
#ifndef GANTRY_PROXY_MAINT_H
#define GANTRY_PROXY_MAINT_H
#include "common.h"
#include "http/http.h"

#define MAINT_MESSAGE_MAX 1024       /* bytes of the message */
#define MAINT_HEADER_NAME_MAX 64     /* bytes of an allowed header's name */
#define MAINT_HEADER_VALUE_MIN 8     /* a bypass secret shorter than this is guessable */
#define MAINT_HEADER_VALUE_MAX 256
#define MAINT_HEADERS_MAX 8          /* allowed headers per route */
#define MAINT_RETRY_AFTER_DEFAULT 120
#define MAINT_RETRY_AFTER_MAX 86400
#define MAINT_DEFAULT_MESSAGE "This service is down for maintenance. Please try again later."

/* message: 1..MAINT_MESSAGE_MAX bytes of UTF-8, no CR, LF or other control character */
int maint_check_message(const char *s, struct gerr *err);
/* an allowed header's name: an HTTP token (RFC 9110 tchar), 1..MAINT_HEADER_NAME_MAX bytes */
int maint_check_header_name(const char *s, struct gerr *err);
/* its value: MAINT_HEADER_VALUE_MIN..MAX visible ASCII bytes (no space, CR, LF) */
int maint_check_header_value(const char *s, struct gerr *err);
/* 1..MAINT_RETRY_AFTER_MAX */
int maint_check_retry_after(long long s, struct gerr *err);
/*
 * "NAME=VALUE" (the CLI's --allow-header) split at the first '=' and
 * checked: 0 with *name (lowercased, nl bytes at most) and *value copied
 * into the caller's buffers, or -1 with err.
 */
int maint_split_header(const char *arg, char *name, size_t nl, char *value, size_t vl, struct gerr *err);

struct maint_allow {
	char *name;  /* owned, lowercase */
	char *value; /* owned: compared in constant time */
	size_t vlen;
};

/*
 * A route's maintenance, as the routes file says, and the two answers
 * built from it at load: each is a complete response head up to (not
 * including) the blank line, then the body, so that a request appends
 * "Connection: close\r\n" when it must and then "\r\n" and the body.
 */
struct route_maint {
	bool on;
	char *message;           /* owned */
	int retry_after_s;
	struct maint_allow *allow; /* owned, nallow of them */
	size_t nallow;
	char *html_head, *html_body; /* owned */
	size_t html_head_len, html_body_len;
	char *json_head, *json_body; /* owned */
	size_t json_head_len, json_body_len;
};

/* builds the page and the JSON from m->message and m->retry_after_s */
void maint_build(struct route_maint *m);
void maint_release(struct route_maint *m);

/* s HTML-escaped (& < > " ') into a new string (owned by caller) */
char *maint_html_escape(const char *s);

/*
 * Whether the request prefers application/json to text/html: the q of
 * each (the most specific range that matches it: type/subtype, then
 * type/any, then any/any; over every Accept line) and JSON when its q is
 * higher, or equal and named more exactly ("application/json, text/plain,
 * any/any" from an API client). No Accept, an equal preference
 * ("text/html, application/json", any/any) or a malformed one: HTML.
 */
bool maint_prefers_json(const struct http_msg *m);
/* the same on one Accept value (len bytes) */
bool maint_accept_prefers_json(const char *accept, size_t len);

/* a request carrying one of the allowed headers with its exact value (constant-time compare) */
bool maint_allowed(const struct route_maint *m, const struct http_msg *msg);
/* a and b equal, in time that depends on blen only (b: the secret) */
bool maint_ct_equal(const char *a, size_t alen, const char *b, size_t blen);

#endif
