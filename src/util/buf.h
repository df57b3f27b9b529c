/*
 * buf.h — the bounded growable buffer (struct hbuf) and a bounded body sink
 * for libcurl over it. Every growable buffer has a bound (CONVENTIONS.md,
 * "Memory"): an append past max fails and changes nothing.
 */
#ifndef GANTRY_UTIL_BUF_H
#define GANTRY_UTIL_BUF_H
#include "common.h"

/*
 * A growable buffer with a bound: appends past max fail and change nothing.
 * cap never exceeds max, so an append that fits in cap is within the bound.
 * data is not NUL-terminated (hbuf_detach gives a string).
 */
struct hbuf {
	char *data;
	size_t len, cap, max;
};
void hbuf_init(struct hbuf *b, size_t max);
void hbuf_release(struct hbuf *b);
int hbuf__append_grow(struct hbuf *b, const void *p, size_t n);
/* inline: the proxy writes every head with many small appends */
static inline int hbuf_append(struct hbuf *b, const void *p, size_t n)
{
	if (n > b->cap - b->len)
		return hbuf__append_grow(b, p, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}
static inline int hbuf_addstr(struct hbuf *b, const char *s)
{
	return hbuf_append(b, s, strlen(s));
}
int hbuf_printf(struct hbuf *b, const char *fmt, ...) PRINTF_LIKE(2, 3);
/*
 * The contents as a NUL-terminated string (the NUL is not content: it may
 * lie past max), owned by the caller; *len (may be NULL) gets b->len. b is
 * left empty, with its bound. Never NULL: an empty buffer gives "".
 */
char *hbuf_detach(struct hbuf *b, size_t *len);

/*
 * A bounded body sink for libcurl (CURLOPT_WRITEFUNCTION hbuf_sink_write,
 * CURLOPT_WRITEDATA a struct hbuf_sink *; no curl type is needed here).
 * A body larger than buf.max ends the transfer (curl_easy_perform returns
 * CURLE_WRITE_ERROR) and sets over: the caller reports it (or, when only
 * the status matters, says why it may ignore it); a cut body is never
 * passed on as if it were whole.
 */
struct hbuf_sink {
	struct hbuf buf;
	bool over;
};
void hbuf_sink_init(struct hbuf_sink *s, size_t max);
size_t hbuf_sink_write(char *p, size_t size, size_t n, void *sink);

#endif
