/*
 * buf.c — the bounded buffer and the libcurl body sink (buf.h).
 */
#include "common.h"
#include "util/buf.h"

void hbuf_init(struct hbuf *b, size_t max)
{
	b->data = NULL;
	b->len = b->cap = 0;
	b->max = max;
}

void hbuf_release(struct hbuf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

static int hbuf_reserve(struct hbuf *b, size_t n)
{
	size_t want, cap;
	if (n > b->max || b->len > b->max - n)
		return -1;
	want = b->len + n;
	if (want <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < want)
		cap *= 2;
	cap = MIN(cap, b->max); /* >= want: hbuf_append relies on cap <= max */
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
	return 0;
}

int hbuf__append_grow(struct hbuf *b, const void *p, size_t n)
{
	if (hbuf_reserve(b, n) < 0)
		return -1;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int hbuf_printf(struct hbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;
	char small[256];

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof(small))
		return hbuf_append(b, small, (size_t)n);
	if (hbuf_reserve(b, (size_t)n + 1) < 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

char *hbuf_detach(struct hbuf *b, size_t *len)
{
	char *s = xrealloc(b->data, b->len + 1);
	s[b->len] = 0;
	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return s;
}

void hbuf_sink_init(struct hbuf_sink *s, size_t max)
{
	hbuf_init(&s->buf, max);
	s->over = false;
}

size_t hbuf_sink_write(char *p, size_t size, size_t n, void *sink)
{
	struct hbuf_sink *s = sink;
	size_t k = size * n;
	if (hbuf_append(&s->buf, p, k) < 0) {
		s->over = true;
		return 0; /* not k: libcurl ends the transfer */
	}
	return k;
}
