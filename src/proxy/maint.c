/*
 * maint.c — maintenance mode's answers and checks (maint.h): the page and
 * the JSON built once per table load, the Accept preference, the bypass
 * header's constant-time compare, and the input checks shared by the CLI,
 * the API, the controller and the routes file.
 */
#include "common.h"
#include "proxy/maint.h"
#include <jansson.h>

/* ---------------------------------------------------------------- checks */

/* well-formed UTF-8 (no overlongs, no surrogates, at most U+10FFFF) */
static bool utf8_ok(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i], need;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			need = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			need = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			need = 3, cp = c & 0x07;
		else
			return false;
		if (n - i - 1 < need)
			return false;
		for (unsigned k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((need == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (need == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
		i += need + 1;
	}
	return true;
}

int maint_check_message(const char *s, struct gerr *err)
{
	size_t n = strlen(s);
	if (!n)
		return gerr_set(err, "must not be empty");
	if (n > MAINT_MESSAGE_MAX)
		return gerr_set(err, "is %zu bytes long (at most %d)", n, MAINT_MESSAGE_MAX);
	if (strpbrk(s, "\r\n"))
		return gerr_set(err, "must not contain CR or LF");
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return gerr_set(err, "must not contain control characters (byte %zu is 0x%02x)", i,
					(unsigned char)s[i]);
	if (!utf8_ok((const unsigned char *)s, n))
		return gerr_set(err, "is not UTF-8");
	return 0;
}

static bool tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

int maint_check_header_name(const char *s, struct gerr *err)
{
	size_t n = strlen(s);
	if (!n)
		return gerr_set(err, "header name must not be empty");
	if (n > MAINT_HEADER_NAME_MAX)
		return gerr_set(err, "header name is %zu bytes long (at most %d)", n, MAINT_HEADER_NAME_MAX);
	for (size_t i = 0; i < n; i++)
		if (!tchar((unsigned char)s[i]))
			return gerr_set(err, "'%.*s' is not a header name (letters, digits and !#$%%&'*+-.^_`|~; "
					     "no space, ':', CR or LF)",
					MAINT_HEADER_NAME_MAX, s);
	return 0;
}

int maint_check_header_value(const char *s, struct gerr *err)
{
	size_t n = strlen(s);
	if (strpbrk(s, "\r\n"))
		return gerr_set(err, "header value must not contain CR or LF");
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return gerr_set(err, "header value must be visible ASCII (no space or control character)");
	if (n < MAINT_HEADER_VALUE_MIN)
		return gerr_set(err, "header value is %zu bytes long: a bypass secret needs at least %d", n,
				MAINT_HEADER_VALUE_MIN);
	if (n > MAINT_HEADER_VALUE_MAX)
		return gerr_set(err, "header value is %zu bytes long (at most %d)", n, MAINT_HEADER_VALUE_MAX);
	return 0;
}

int maint_check_retry_after(long long s, struct gerr *err)
{
	if (s < 1 || s > MAINT_RETRY_AFTER_MAX)
		return gerr_set(err, "%lld is out of range 1..%d (seconds)", s, MAINT_RETRY_AFTER_MAX);
	return 0;
}

int maint_split_header(const char *arg, char *name, size_t nl, char *value, size_t vl, struct gerr *err)
{
	const char *eq = strchr(arg, '=');
	size_t n;
	if (!eq)
		return gerr_set(err, "expected HEADER=VALUE");
	n = (size_t)(eq - arg);
	if (n >= nl || strlen(eq + 1) >= vl) {
		/* too long for the buffers: the checks below say by how much */
		char *tmp = xstrndup(arg, n);
		int rc = maint_check_header_name(tmp, err);
		free(tmp);
		if (rc == 0)
			maint_check_header_value(eq + 1, err);
		return -1;
	}
	memcpy(name, arg, n);
	name[n] = 0;
	if (maint_check_header_name(name, err) < 0)
		return -1;
	for (char *p = name; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	if (maint_check_header_value(eq + 1, err) < 0)
		return -1;
	memcpy(value, eq + 1, strlen(eq + 1) + 1);
	return 0;
}

/* ---------------------------------------------------------------- the answers */

char *maint_html_escape(const char *s)
{
	size_t n = 1;
	char *out, *p;
	for (const char *q = s; *q; q++)
		n += *q == '&' ? 5 : *q == '<' || *q == '>' ? 4 : *q == '"' || *q == '\'' ? 6 : 1;
	out = p = xmalloc(n);
	for (; *s; s++) {
		const char *e = NULL;
		switch (*s) {
		case '&': e = "&amp;"; break;
		case '<': e = "&lt;"; break;
		case '>': e = "&gt;"; break;
		case '"': e = "&quot;"; break;
		case '\'': e = "&#39;"; break;
		}
		if (e) {
			size_t l = strlen(e);
			memcpy(p, e, l);
			p += l;
		} else {
			*p++ = *s;
		}
	}
	*p = 0;
	return out;
}

static char *head_for(const char *type, size_t body_len, int retry_after, size_t *len)
{
	char *h = xasprintf("HTTP/1.1 503 Service Unavailable\r\nServer: gantry\r\nContent-Type: %s\r\n"
			    "Content-Length: %zu\r\nRetry-After: %d\r\nCache-Control: no-store\r\nVary: Accept\r\n",
			    type, body_len, retry_after);
	*len = strlen(h);
	return h;
}

void maint_build(struct route_maint *m)
{
	const char *msg = m->message && *m->message ? m->message : MAINT_DEFAULT_MESSAGE;
	char *esc = maint_html_escape(msg);
	json_t *j;

	if (!m->retry_after_s)
		m->retry_after_s = MAINT_RETRY_AFTER_DEFAULT;
	m->html_body = xasprintf("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
				 "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
				 "<title>Down for maintenance</title></head>\n"
				 "<body style=\"font-family:sans-serif;max-width:40em;margin:4em auto;padding:0 1em\">\n"
				 "<h1>Down for maintenance</h1>\n<p>%s</p>\n</body></html>\n",
				 esc);
	m->html_body_len = strlen(m->html_body);
	free(esc);
	j = json_pack("{s:s, s:s, s:i}", "error", "maintenance", "message", msg, "retry_after", m->retry_after_s);
	m->json_body = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(j);
	if (!m->json_body) /* not UTF-8: the checks refuse such a message before it gets here */
		m->json_body = xstrdup("{\"error\":\"maintenance\"}");
	m->json_body_len = strlen(m->json_body);
	m->html_head = head_for("text/html; charset=utf-8", m->html_body_len, m->retry_after_s, &m->html_head_len);
	m->json_head = head_for("application/json", m->json_body_len, m->retry_after_s, &m->json_head_len);
}

void maint_release(struct route_maint *m)
{
	for (size_t i = 0; i < m->nallow; i++) {
		free(m->allow[i].name);
		if (m->allow[i].value)
			explicit_bzero(m->allow[i].value, m->allow[i].vlen);
		free(m->allow[i].value);
	}
	free(m->allow);
	free(m->message);
	free(m->html_head);
	free(m->html_body);
	free(m->json_head);
	free(m->json_body);
	memset(m, 0, sizeof(*m));
}

/* ---------------------------------------------------------------- Accept */

struct accept_pref {
	int spec_json, spec_html; /* 0: no range matched; 1 any/any, 2 type/any, 3 type/subtype */
	int q_json, q_html;       /* thousandths */
};

static bool ows(char c)
{
	return c == ' ' || c == '\t';
}

/* "q=0.5" (already trimmed): 0..1000, or -1 when malformed */
static int parse_q(const char *p, size_t n)
{
	int q = 0, digits = 0;
	if (!n || n > 5)
		return -1;
	if (p[0] == '1') {
		for (size_t i = 1; i < n; i++)
			if ((i == 1 && p[i] != '.') || (i > 1 && p[i] != '0'))
				return -1;
		return 1000;
	}
	if (p[0] != '0')
		return -1;
	if (n == 1)
		return 0;
	if (p[1] != '.')
		return -1;
	for (size_t i = 2; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		q = q * 10 + (p[i] - '0');
		digits++;
	}
	while (digits++ < 3)
		q *= 10;
	return q;
}

static bool span_is(const char *p, size_t n, const char *lit)
{
	return strlen(lit) == n && !strncasecmp(p, lit, n);
}

/* one media-range "type/subtype;params" (trimmed) */
static void accept_one(struct accept_pref *a, const char *p, size_t n)
{
	const char *semi = memchr(p, ';', n), *slash;
	size_t rl = semi ? (size_t)(semi - p) : n, tl, sl;
	int q = 1000, sj = 0, sh = 0;

	while (rl && ows(p[rl - 1]))
		rl--;
	slash = memchr(p, '/', rl);
	if (!slash)
		return; /* malformed: ignored */
	tl = (size_t)(slash - p);
	sl = rl - tl - 1;
	/* parameters: only q matters */
	while (semi) {
		const char *s = semi + 1, *end = p + n, *next = memchr(s, ';', (size_t)(end - s));
		const char *pe = next ? next : end;
		while (s < pe && ows(*s))
			s++;
		while (pe > s && ows(pe[-1]))
			pe--;
		if (pe - s >= 2 && (s[0] == 'q' || s[0] == 'Q') && s[1] == '=') {
			q = parse_q(s + 2, (size_t)(pe - s - 2));
			if (q < 0)
				return;
		}
		semi = next;
	}
	if (span_is(p, tl, "*") && span_is(slash + 1, sl, "*")) {
		sj = sh = 1;
	} else {
		if (span_is(p, tl, "application"))
			sj = span_is(slash + 1, sl, "*") ? 2 : span_is(slash + 1, sl, "json") ? 3 : 0;
		if (span_is(p, tl, "text"))
			sh = span_is(slash + 1, sl, "*") ? 2 : span_is(slash + 1, sl, "html") ? 3 : 0;
	}
	if (sj && (sj > a->spec_json || (sj == a->spec_json && q > a->q_json))) {
		a->spec_json = sj;
		a->q_json = q;
	}
	if (sh && (sh > a->spec_html || (sh == a->spec_html && q > a->q_html))) {
		a->spec_html = sh;
		a->q_html = q;
	}
}

static void accept_list(struct accept_pref *a, const char *p, size_t len)
{
	const char *end = p + len;
	while (p < end) {
		const char *comma = memchr(p, ',', (size_t)(end - p)), *e = comma ? comma : end;
		while (p < e && ows(*p))
			p++;
		if (p < e)
			accept_one(a, p, (size_t)(e - p));
		p = comma ? comma + 1 : end;
	}
}

static bool json_wins(const struct accept_pref *a)
{
	int qj = a->spec_json ? a->q_json : 0, qh = a->spec_html ? a->q_html : 0;
	/* a tie goes to the type named more exactly ("application/json, any/any"
	 * from an API client), else to HTML (a browser) */
	return qj > qh || (qj == qh && qj > 0 && a->spec_json > a->spec_html);
}

bool maint_accept_prefers_json(const char *accept, size_t len)
{
	struct accept_pref a = { 0 };
	accept_list(&a, accept, len);
	return json_wins(&a);
}

bool maint_prefers_json(const struct http_msg *m)
{
	struct accept_pref a = { 0 };
	bool any = false;
	for (int i = -1; (i = http_find_header(m, "accept", i + 1)) >= 0;) {
		accept_list(&a, http_span_ptr(m, m->hdr[i].value), m->hdr[i].value.len);
		any = true;
	}
	return any && json_wins(&a);
}

/* ---------------------------------------------------------------- the bypass */

bool maint_ct_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	volatile unsigned char diff = (unsigned char)(alen != blen);
	for (size_t i = 0; i < blen; i++) {
		unsigned char ca = i < alen ? (unsigned char)a[i] : 0;
		diff |= (unsigned char)(ca ^ (unsigned char)b[i]);
	}
	return diff == 0;
}

bool maint_allowed(const struct route_maint *m, const struct http_msg *msg)
{
	bool ok = false;
	for (size_t k = 0; k < m->nallow; k++)
		for (int i = -1; (i = http_find_header(msg, m->allow[k].name, i + 1)) >= 0;)
			ok |= maint_ct_equal(http_span_ptr(msg, msg->hdr[i].value), msg->hdr[i].value.len,
					     m->allow[k].value, m->allow[k].vlen);
	return ok;
}
