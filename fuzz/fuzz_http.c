/*
 * fuzz_http — the proxy's request-head parser and validator (src/http),
 * fed the way the proxy feeds it: one buffer, arbitrary read boundaries,
 * pipelined messages. The first input byte picks the read size. Checks that
 * every span a valid head reports lies inside the bytes fed, that Host
 * normalization and list parsing hold up on whatever the head held, and
 * runs the proxy's routing of a valid head (tag hosts, header rules,
 * X-Gantry-Tag, the sticky cookie) against a fixed version-2 table.
 */
#include "common.h"
#include "http/http.h"
#include "proxy/route.h"

static struct route_table *table(void)
{
	static struct route_table *t;
	static const char json[] =
		"{\"generation\": 1, \"routes\": [{\"hosts\": [\"web.prod.localhost\", \"*.example.com\", \"*\"],"
		" \"service\": \"web\", \"environment\": \"prod\", \"revisions\": ["
		"  {\"revision\": \"41\", \"weight\": 90, \"tags\": [\"stable\"], \"backends\": [{\"address\": \"127.0.0.1:1\"}]},"
		"  {\"revision\": \"42\", \"weight\": 10, \"tags\": [\"canary\"], \"backends\": [{\"address\": \"127.0.0.1:2\"}]}],"
		" \"header_rules\": [{\"header\": \"canary\", \"value\": \"true\", \"revision\": \"42\"},"
		"   {\"header\": \"x-user\", \"value\": \"b\", \"prefix\": true, \"revision\": \"41\"}],"
		" \"sticky\": {\"cookie\": \"gantry_rev\"}, \"shield\": {\"canary\": \"42\", \"stable\": \"41\"}}]}";
	struct gerr err;
	if (!t)
		t = route_table_parse(json, sizeof(json) - 1, "fuzz", &err);
	BUG_ON(!t);
	return t;
}

/* routing a valid head never fails except for an unknown tag (404) */
static void check_route(const struct http_msg *m)
{
	struct route_table *t = table();
	struct route_choice ch;
	struct route *r;
	char host[256];
	int tag_rev = -1;

	if (m->host_idx < 0 || http_host_normalize(http_span_ptr(m, m->hdr[m->host_idx].value),
						   m->hdr[m->host_idx].value.len, host, sizeof(host)) < 0)
		return;
	r = route_lookup(t, host, &tag_rev);
	BUG_ON(!r);
	route_choose(t, r, 0, m, tag_rev, 0, &ch);
	BUG_ON(ch.rev >= (int)r->nrevs);
	BUG_ON(ch.rev < 0 && ch.status != 404);
	if (ch.rev >= 0)
		BUG_ON(!route_pick_backend(t, &r->revs[ch.rev], 0, 0, NULL));
}

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
		if (ev & HTTP_EV_HEAD) {
			check_head(&m, pos);
			check_route(&m);
		}
		if (ev & HTTP_EV_DONE) {
			/* next message starts where this one ended, as in the proxy */
			msgs++;
			http_msg_next(&m, buf);
			continue;
		}
		if (!ev && !used && avail == size)
			break;
	}
	http_msg_release(&m);
	free(buf);
	return 0;
}
