/*
 * fuzz_http — the proxy's request-head parser and validator (src/http),
 * fed the way the proxy feeds it: one buffer, arbitrary read boundaries,
 * pipelined messages. The first input byte picks the read size. Checks that
 * every span a valid head reports lies inside the bytes fed, and that
 * Host normalization and list parsing hold up on whatever the head held.
 */
#include "common.h"
#include "http/http.h"

static int on_body(void *ctx, const char *at, size_t len)
{
	size_t *total = ctx;
	*total += len;
	return 0;
}

static void check_head(const struct http_msg *m, size_t fed)
{
	char host[256];
	BUG_ON(m->url.off + m->url.len > fed);
	BUG_ON(m->nhdr > HTTP_MAX_HEADERS);
	for (unsigned i = 0; i < m->nhdr; i++) {
		BUG_ON(m->hdr[i].name.off + m->hdr[i].name.len > fed);
		BUG_ON(m->hdr[i].value.off + m->hdr[i].value.len > fed);
		BUG_ON(!m->hdr[i].name.len);
		(void)http_list_has(http_span_ptr(m, m->hdr[i].value), m->hdr[i].value.len, "close");
	}
	if (m->host_idx >= 0)
		(void)http_host_normalize(http_span_ptr(m, m->hdr[m->host_idx].value),
					  m->hdr[m->host_idx].value.len, host, sizeof(host));
	BUG_ON(m->chunked && m->has_cl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_msg m;
	size_t step, pos = 0, avail = 0, body = 0;
	char *buf;
	int msgs = 0;

	if (size < 1)
		return 0;
	step = (size_t)data[0] % 64 + 1;
	data++;
	size--;
	/* a private copy: the parser must only read what it was given */
	buf = xmalloc(size ? size : 1);
	memcpy(buf, data, size);
	http_msg_init(&m, HTTP_KIND_REQUEST, buf);
	m.on_body = on_body;
	m.ctx = &body;
	while (msgs < 64 && (pos < size || (m.paused && m.head_done && !m.done))) {
		size_t used;
		int ev;
		avail = MIN(size, MAX(avail, pos) + step);
		ev = http_msg_feed(&m, buf + pos, avail - pos, &used);
		BUG_ON(used > avail - pos);
		pos += used;
		if (ev & HTTP_EV_ERROR) {
			BUG_ON(m.err_status < 400 || m.err_status > 599 || !m.err[0]);
			break;
		}
		if (ev & HTTP_EV_HEAD)
			check_head(&m, pos);
		if (ev & HTTP_EV_DONE) {
			/* next message starts where this one ended, as in the proxy */
			msgs++;
			http_msg_next(&m, buf);
			continue;
		}
		if (!ev && !used && avail == size)
			break;
	}
	free(buf);
	return 0;
}
