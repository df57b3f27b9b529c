/*
 * http.c — llhttp glue: spans instead of copies, limits, and the request
 * checks llhttp 8.1.0 does not make even in strict mode (see
 * shared reference A2.4 and docs/internals/proxy.md).
 */
#include "common.h"
#include "http/http.h"

enum { L_NONE, L_URL, L_REASON, L_FIELD, L_VALUE };

static struct http_msg *msg_of(llhttp_t *p)
{
	return p->data;
}

static int fail(struct http_msg *m, int status, const char *fmt, ...) PRINTF_LIKE(3, 4);
static int fail(struct http_msg *m, int status, const char *fmt, ...)
{
	va_list ap;
	if (!m->err_status) {
		m->err_status = status;
		va_start(ap, fmt);
		vsnprintf(m->err, sizeof(m->err), fmt, ap);
		va_end(ap);
	}
	return -1;
}

/*
 * Extends the span `which` if at continues the previous piece, else starts
 * it. A non-adjacent piece of the same span is how llhttp 8.1.0 reports an
 * obs-fold continuation line.
 */
static int extend(struct http_msg *m, struct http_span *s, int which, const char *at, size_t len)
{
	uint32_t off = (uint32_t)(at - m->base);
	if (m->last == which) {
		if (off != m->last_end)
			return -1;
		s->len += (uint32_t)len;
	} else {
		s->off = off;
		s->len = (uint32_t)len;
	}
	m->last = which;
	m->last_end = off + (uint32_t)len;
	return 0;
}

static int on_message_begin(llhttp_t *p)
{
	struct http_msg *m = msg_of(p);
	m->nhdr = 0;
	m->url.off = m->url.len = 0;
	m->reason.off = m->reason.len = 0;
	m->last = L_NONE;
	m->last_end = 0;
	return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
	struct http_msg *m = msg_of(p);
	if (extend(m, &m->url, L_URL, at, len) < 0)
		return fail(m, 400, "malformed request target");
	if (m->url.len > HTTP_MAX_URL)
		return fail(m, 414, "request target longer than %d bytes", HTTP_MAX_URL);
	return 0;
}

static int on_status(llhttp_t *p, const char *at, size_t len)
{
	struct http_msg *m = msg_of(p);
	if (extend(m, &m->reason, L_REASON, at, len) < 0)
		return fail(m, 502, "malformed status line");
	return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
	struct http_msg *m = msg_of(p);
	if (m->last != L_FIELD) {
		if (m->nhdr >= HTTP_MAX_HEADERS)
			return fail(m, m->kind == HTTP_KIND_REQUEST ? 431 : 502,
				    "more than %d header lines", HTTP_MAX_HEADERS);
		if (m->nhdr == m->hdr_cap) {
			if (!m->hdr_cap && m->pool && m->pool->n) {
				m->hdr = m->pool->v[--m->pool->n];
				m->hdr_cap = HTTP_HDR_FIRST;
			} else {
				m->hdr_cap = m->hdr_cap ? MIN(m->hdr_cap * 2, (unsigned)HTTP_MAX_HEADERS)
							: HTTP_HDR_FIRST;
				m->hdr = xrealloc(m->hdr, m->hdr_cap * sizeof(*m->hdr));
			}
		}
		memset(&m->hdr[m->nhdr++], 0, sizeof(m->hdr[0]));
	}
	if (extend(m, &m->hdr[m->nhdr - 1].name, L_FIELD, at, len) < 0)
		return fail(m, 400, "malformed header name");
	return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
	struct http_msg *m = msg_of(p);
	struct http_header *h;
	if (!m->nhdr)
		return fail(m, 400, "header value without a name");
	h = &m->hdr[m->nhdr - 1];
	if (extend(m, &h->value, L_VALUE, at, len) < 0)
		return fail(m, m->kind == HTTP_KIND_REQUEST ? 400 : 502,
			    "header '%.*s': obs-fold line folding is not allowed",
			    (int)MIN(h->name.len, 64u), m->base + h->name.off);
	return 0;
}

static int on_headers_complete(llhttp_t *p)
{
	struct http_msg *m = msg_of(p);
	m->head_done = true;
	m->last = L_NONE;
	if (m->kind == HTTP_KIND_RESPONSE && m->skip_body)
		return 1; /* no body; llhttp goes on to on_message_complete */
	return HPE_PAUSED;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
	struct http_msg *m = msg_of(p);
	int r = m->on_body ? m->on_body(m->ctx, at, len) : 0;
	if (r == HTTP_BODY_TOO_LARGE)
		return fail(m, 413, "request body larger than the limit");
	if (r < 0)
		return fail(m, m->kind == HTTP_KIND_REQUEST ? 400 : 502, "body rejected");
	return 0;
}

static int on_message_complete(llhttp_t *p)
{
	struct http_msg *m = msg_of(p);
	m->done = true;
	return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_status = on_status,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

void http_msg_init(struct http_msg *m, enum http_kind kind, const char *base)
{
	memset(m, 0, sizeof(*m));
	llhttp_init(&m->llp, kind == HTTP_KIND_REQUEST ? HTTP_REQUEST : HTTP_RESPONSE, &settings);
	m->llp.data = m;
	m->kind = kind;
	m->base = base;
	m->host_idx = -1;
}

void http_msg_release(struct http_msg *m)
{
	if (m->hdr && m->hdr_cap == HTTP_HDR_FIRST && m->pool && m->pool->n < HTTP_HDR_POOL)
		m->pool->v[m->pool->n++] = m->hdr;
	else
		free(m->hdr);
	m->hdr = NULL;
	m->hdr_cap = 0;
	m->nhdr = 0;
	m->host_idx = -1;
}

void http_hdr_pool_release(struct http_hdr_pool *p)
{
	while (p->n)
		free(p->v[--p->n]);
}

void http_msg_next(struct http_msg *m, const char *base)
{
	m->base = base;
	m->nhdr = 0;
	m->url.off = m->url.len = 0;
	m->reason.off = m->reason.len = 0;
	m->head_bytes = 0;
	m->last = L_NONE;
	m->last_end = 0;
	m->head_done = m->done = false;
	m->upgrade = false;
	m->host_idx = -1;
	m->chunked = m->has_cl = false;
	m->content_length = 0;
	m->skip_body = false;
}

int http_find_header(const struct http_msg *m, const char *name, int from)
{
	for (unsigned i = (unsigned)MAX(from, 0); i < m->nhdr; i++)
		if (http_span_eq(m, m->hdr[i].name, name))
			return (int)i;
	return -1;
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

bool http_list_has(const char *s, size_t len, const char *token)
{
	size_t tl = strlen(token), i = 0;
	while (i < len) {
		size_t start, end;
		while (i < len && (is_ows(s[i]) || s[i] == ','))
			i++;
		start = i;
		while (i < len && s[i] != ',')
			i++;
		end = i;
		while (end > start && is_ows(s[end - 1]))
			end--;
		if (end - start == tl && !strncasecmp(s + start, token, tl))
			return true;
	}
	return false;
}

/* the last comma-separated element of a list, trimmed */
static void list_last(const char *s, size_t len, const char **out, size_t *outlen)
{
	size_t end = len, start;
	while (end > 0 && (is_ows(s[end - 1]) || s[end - 1] == ','))
		end--;
	start = end;
	while (start > 0 && s[start - 1] != ',')
		start--;
	while (start < end && is_ows(s[start]))
		start++;
	*out = s + start;
	*outlen = end - start;
}

int http_host_normalize(const char *in, size_t len, char *out, size_t outsz)
{
	size_t n = len, i;
	if (len && in[0] == '[') {
		const char *rb = memchr(in, ']', len);
		if (!rb)
			return -1;
		n = (size_t)(rb - in) + 1;
		if (n < len && in[n] != ':')
			return -1;
	} else {
		const char *colon = memchr(in, ':', len);
		if (colon)
			n = (size_t)(colon - in);
	}
	/* the port, if any, must be digits */
	for (i = n + 1; i < len; i++)
		if (in[i] < '0' || in[i] > '9')
			return -1;
	if (!n || n >= outsz)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
			   c == '.' || c == '_' || c == '[' || c == ']' || c == ':'))
			return -1;
		out[i] = (char)c;
	}
	out[n] = 0;
	return 0;
}

static void trim_values(struct http_msg *m)
{
	for (unsigned i = 0; i < m->nhdr; i++) {
		struct http_span *v = &m->hdr[i].value;
		while (v->len && is_ows(m->base[v->off + v->len - 1]))
			v->len--;
	}
}

/* a CRLF followed by SP/HTAB anywhere after the start line is obs-fold */
static bool has_fold(const struct http_msg *m, uint32_t head_end)
{
	uint32_t from = m->nhdr ? m->hdr[0].name.off : head_end;
	const char *p = m->base + from, *end = m->base + head_end;
	while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		p++;
		if (p < end && is_ows(*p))
			return true;
	}
	return false;
}

static int validate_common(struct http_msg *m, uint32_t head_end, int bad)
{
	uint16_t f = m->llp.flags;
	trim_values(m);
	if (has_fold(m, head_end))
		return fail(m, bad, "obs-fold line folding is not allowed");
	for (unsigned i = 0; i < m->nhdr; i++)
		if (!m->hdr[i].name.len)
			return fail(m, bad, "empty header name");
	m->chunked = (f & F_CHUNKED) != 0;
	m->has_cl = (f & F_CONTENT_LENGTH) != 0;
	m->content_length = m->has_cl ? m->llp.content_length : 0;
	if (m->has_cl && (f & F_TRANSFER_ENCODING))
		return fail(m, bad, "both content-length and transfer-encoding");
	return 0;
}

static int validate_request(struct http_msg *m, uint32_t head_end)
{
	int te = -1, nte = 0, host = -1;
	const char *u = m->base + m->url.off;

	if (validate_common(m, head_end, 400) < 0)
		return -1;
	if (m->llp.http_major != 1)
		return fail(m, 505, "HTTP/%d.%d is not spoken here (HTTP/1.0 and HTTP/1.1 only)",
			    m->llp.http_major, m->llp.http_minor);
	for (unsigned i = 0; i < m->nhdr; i++) {
		if (http_span_eq(m, m->hdr[i].name, "host")) {
			if (host >= 0)
				return fail(m, 400, "header 'host': repeated");
			host = (int)i;
		} else if (http_span_eq(m, m->hdr[i].name, "transfer-encoding")) {
			te = (int)i;
			nte++;
		}
	}
	if (host < 0 && m->llp.http_major == 1 && m->llp.http_minor >= 1)
		return fail(m, 400, "header 'host': missing");
	m->host_idx = host;
	if (nte) {
		const struct http_span v = m->hdr[te].value;
		const char *last;
		size_t lastlen;
		if (m->llp.http_major == 1 && m->llp.http_minor == 0)
			return fail(m, 400, "header 'transfer-encoding': not allowed in HTTP/1.0");
		list_last(m->base + v.off, v.len, &last, &lastlen);
		if (lastlen != 7 || strncasecmp(last, "chunked", 7))
			return fail(m, 400, "header 'transfer-encoding': chunked must be the final coding");
		if (nte > 1 || !http_span_eq(m, v, "chunked"))
			return fail(m, 501, "header 'transfer-encoding': only 'chunked' is supported");
	}
	/* exactly one SP on each side of the target (llhttp 8.1.0 skips runs) */
	if (m->url.off < 2 || u[-1] != ' ' || u[-2] == ' ' || u[m->url.len] != ' ' ||
	    u[m->url.len + 1] != 'H')
		return fail(m, 400, "malformed request line");
	if (m->llp.method == HTTP_CONNECT)
		return fail(m, 501, "method CONNECT is not supported");
	if (!(m->url.len && u[0] == '/') &&
	    !(m->llp.method == HTTP_OPTIONS && m->url.len == 1 && u[0] == '*'))
		return fail(m, 400, "request target must be a path (origin-form)");
	if (m->llp.upgrade) {
		int up = http_find_header(m, "upgrade", 0);
		/* h2c is only an offer: drop it and answer in HTTP/1.1 */
		if (up >= 0 && http_span_eq(m, m->hdr[up].value, "h2c")) {
			m->llp.upgrade = 0;
		} else if (up < 0 || !m->hdr[up].value.len || http_find_header(m, "upgrade", up + 1) >= 0) {
			return fail(m, 400, "header 'upgrade': missing, empty or repeated");
		} else if (m->chunked || m->content_length) {
			/* the tunnel starts right after the head: a body has no place */
			return fail(m, 400, "header 'upgrade': a request asking for an upgrade has no body");
		} else {
			m->upgrade = true;
		}
	}
	return 0;
}

int http_msg_feed(struct http_msg *m, const char *data, size_t len, size_t *used)
{
	bool had_head = m->head_done;
	llhttp_errno_t e;
	int ev = 0;

	*used = 0;
	if (m->err_status)
		return HTTP_EV_ERROR;
	if (m->paused) {
		llhttp_resume(&m->llp);
		m->paused = false;
	}
	e = llhttp_execute(&m->llp, data, len);
	if (e == HPE_OK) {
		*used = len;
	} else if (e == HPE_PAUSED) {
		*used = (size_t)(llhttp_get_error_pos(&m->llp) - data);
		m->paused = true;
	} else {
		const char *pos = llhttp_get_error_pos(&m->llp);
		*used = pos && pos >= data && pos <= data + len ? (size_t)(pos - data) : len;
		if (e == HPE_PAUSED_UPGRADE)
			fail(m, m->kind == HTTP_KIND_REQUEST ? 501 : 502, "protocol upgrades are not supported");
		else if (m->kind == HTTP_KIND_REQUEST)
			fail(m, 400, "malformed request: %s", llhttp_get_error_reason(&m->llp));
		else
			fail(m, 502, "malformed response: %s", llhttp_get_error_reason(&m->llp));
		return HTTP_EV_ERROR;
	}
	if (!had_head) {
		m->head_bytes += (uint32_t)MIN(*used, (size_t)UINT32_MAX / 2);
		if (m->head_bytes > HTTP_MAX_HEAD) {
			fail(m, m->kind == HTTP_KIND_REQUEST ? 431 : 502,
			     "head larger than %d bytes", HTTP_MAX_HEAD);
			return HTTP_EV_ERROR;
		}
		if (m->head_done) {
			uint32_t head_end = (uint32_t)(data + *used - m->base);
			int r = m->kind == HTTP_KIND_REQUEST ? validate_request(m, head_end)
							     : validate_common(m, head_end, 502);
			if (r < 0)
				return HTTP_EV_ERROR;
			ev |= HTTP_EV_HEAD;
		}
	}
	if (m->done)
		ev |= HTTP_EV_DONE;
	return ev;
}

int http_msg_finish(struct http_msg *m)
{
	if (m->done)
		return HTTP_EV_DONE;
	if (m->head_done && !m->err_status) {
		if (m->paused) {
			llhttp_resume(&m->llp);
			m->paused = false;
		}
		llhttp_finish(&m->llp); /* HPE_PAUSED from on_message_complete is fine */
		if (m->done) {
			m->paused = true;
			return HTTP_EV_DONE;
		}
	}
	fail(m, m->kind == HTTP_KIND_REQUEST ? 400 : 502, "connection closed before the message ended");
	return HTTP_EV_ERROR;
}

const char *http_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
	}
}
