/*
 * docker-stream.c — the Docker Engine's stream formats as pure functions
 * (no curl, no I/O): the multiplexed log stream of a non-TTY container and
 * the JSON progress stream of pull, push and build. docker.c feeds them
 * from its curl write callbacks; tests/unit/runtime/test_docker.c and
 * fuzz/fuzz_docker_stream.c feed them bytes cut anywhere.
 */
#include "common.h"
#include <jansson.h>
#include "runtime/docker.h"

/* ---- log frames ---- */

void docker_demux_init(struct docker_demux *m)
{
	memset(m, 0, sizeof(*m));
}

bool docker_demux_clean(const struct docker_demux *m)
{
	return m->hlen == 0 && m->left == 0;
}

int docker_demux_feed(struct docker_demux *m, const char *p, size_t n, docker_demux_cb cb, void *data,
		      struct gerr *err)
{
	while (n) {
		if (m->left) {
			size_t k = MIN(n, (size_t)m->left);
			if (cb)
				cb(data, m->stream, p, k);
			m->left -= (uint32_t)k;
			p += k;
			n -= k;
			continue;
		}
		while (n && m->hlen < sizeof(m->hdr)) {
			m->hdr[m->hlen++] = (unsigned char)*p++;
			n--;
		}
		if (m->hlen < sizeof(m->hdr))
			break;
		/* stream 0 (stdin), 1, 2; then three zero bytes */
		if (m->hdr[0] > 2 || m->hdr[1] || m->hdr[2] || m->hdr[3])
			return gerr_set(err, "malformed log frame header %02x %02x %02x %02x "
				       "(a TTY container's logs are not multiplexed)",
				       m->hdr[0], m->hdr[1], m->hdr[2], m->hdr[3]);
		m->stream = m->hdr[0];
		m->left = (uint32_t)m->hdr[4] << 24 | (uint32_t)m->hdr[5] << 16 | (uint32_t)m->hdr[6] << 8 |
			  (uint32_t)m->hdr[7];
		m->hlen = 0;
	}
	return 0;
}

/* ---- the JSON progress stream ---- */

void docker_progress_init(struct docker_progress *p, const char *what, docker_progress_cb cb, void *data)
{
	memset(p, 0, sizeof(*p));
	p->what = what ? what : "docker";
	p->cb = cb;
	p->data = data;
}

void docker_progress_release(struct docker_progress *p)
{
	free(p->line);
	free(p->text);
	p->line = p->text = NULL;
	p->len = p->cap = p->tlen = 0;
}

/* one output line: kept for an error message, and passed on */
static void emit(struct docker_progress *p, const char *s, size_t n)
{
	char line[256];

	while (n && (s[n - 1] == '\r' || s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (!n)
		return;
	if (n >= sizeof(line))
		n = sizeof(line) - 1;
	memcpy(line, s, n);
	line[n] = 0;
	/* one line each: a control byte would let a build forge lines */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20)
			line[i] = ' ';
	strlcpy_g(p->keep[p->nkeep % DOCKER_PROGRESS_KEEP], line, sizeof(p->keep[0]));
	p->nkeep++;
	if (p->cb) {
		char *h = xasprintf("%s: %s", p->what, line);
		p->cb(p->data, h);
		free(h);
	}
}

/* "stream" text of a build comes in pieces that need not end a line */
static void stream_text(struct docker_progress *p, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\n') {
			emit(p, p->text ? p->text : "", p->tlen);
			p->tlen = 0;
			continue;
		}
		if (p->tlen < 255) {
			if (!p->text)
				p->text = xmalloc(256);
			p->text[p->tlen++] = s[i];
		}
	}
}

static void human_size(char *out, size_t len, json_int_t b)
{
	if (b >= 1000 * 1000)
		snprintf(out, len, "%.1f MB", (double)b / 1e6);
	else if (b >= 1000)
		snprintf(out, len, "%.1f kB", (double)b / 1e3);
	else
		snprintf(out, len, "%lld B", (long long)b);
}

static void set_error(struct docker_progress *p, const char *msg)
{
	if (!p->error[0] && msg && *msg) {
		strlcpy_g(p->error, msg, sizeof(p->error));
		/* one line */
		for (char *c = p->error; *c; c++)
			if ((unsigned char)*c < 0x20)
				*c = ' ';
		for (size_t n = strlen(p->error); n && p->error[n - 1] == ' ';)
			p->error[--n] = 0;
	}
}

static void progress_line(struct docker_progress *p, const char *s, size_t n)
{
	json_error_t je;
	json_t *j, *v, *aux, *det;

	while (n && (s[n - 1] == '\r' || s[n - 1] == ' '))
		n--;
	if (!n)
		return;
	j = json_loadb(s, n, JSON_DECODE_ANY, &je);
	if (!j || !json_is_object(j)) {
		/* not JSON: pass it on as text, it may say what went wrong */
		emit(p, s, n);
		json_decref(j);
		return;
	}
	if ((v = json_object_get(j, "stream")) && json_is_string(v))
		stream_text(p, json_string_value(v), json_string_length(v));
	if ((aux = json_object_get(j, "aux")) && json_is_object(aux)) {
		if ((v = json_object_get(aux, "ID")) && json_is_string(v))
			strlcpy_g(p->id, json_string_value(v), sizeof(p->id));
		if ((v = json_object_get(aux, "Digest")) && json_is_string(v))
			strlcpy_g(p->digest, json_string_value(v), sizeof(p->digest));
	}
	if ((v = json_object_get(j, "status")) && json_is_string(v)) {
		char line[256], cur[32], tot[32];
		const char *id = json_string_value(json_object_get(j, "id"));
		json_int_t c = 0, t = 0;
		if ((det = json_object_get(j, "progressDetail")) && json_is_object(det)) {
			c = json_integer_value(json_object_get(det, "current"));
			t = json_integer_value(json_object_get(det, "total"));
		}
		if (p->lcb)
			p->lcb(p->ldata, id ? id : "", json_string_value(v), (int64_t)c, (int64_t)t);
		if (t > 0) {
			human_size(cur, sizeof(cur), c);
			human_size(tot, sizeof(tot), t);
			snprintf(line, sizeof(line), "%s%s%s %s/%s", id ? id : "", id ? ": " : "",
				 json_string_value(v), cur, tot);
		} else {
			snprintf(line, sizeof(line), "%s%s%s", id ? id : "", id ? ": " : "", json_string_value(v));
		}
		emit(p, line, strlen(line));
	}
	if ((det = json_object_get(j, "errorDetail")) && json_is_object(det))
		set_error(p, json_string_value(json_object_get(det, "message")));
	if ((v = json_object_get(j, "error")) && json_is_string(v))
		set_error(p, json_string_value(v));
	if ((v = json_object_get(j, "message")) && json_is_string(v) && !json_object_get(j, "status") &&
	    !json_object_get(j, "stream"))
		set_error(p, json_string_value(v));
	json_decref(j);
}

void docker_progress_feed(struct docker_progress *p, const char *buf, size_t n)
{
	while (n) {
		const char *nl = memchr(buf, '\n', n);
		size_t k = nl ? (size_t)(nl - buf) : n;
		if (!p->overlong && p->len + k > DOCKER_PROGRESS_LINE_MAX) {
			/* the rest of this line is dropped, up to its newline */
			p->overlong = true;
			p->len = 0;
			emit(p, "(a progress line longer than 1 MiB was dropped)", 47);
		}
		if (!p->overlong && k) {
			if (p->len + k > p->cap) {
				size_t c = p->cap ? p->cap : 256;
				while (c < p->len + k)
					c *= 2;
				p->line = xrealloc(p->line, c);
				p->cap = c;
			}
			memcpy(p->line + p->len, buf, k);
			p->len += k;
		}
		if (!nl)
			return;
		if (!p->overlong && p->len)
			progress_line(p, p->line, p->len);
		p->overlong = false;
		p->len = 0;
		buf += k + 1;
		n -= k + 1;
	}
}

void docker_progress_finish(struct docker_progress *p)
{
	if (p->len && !p->overlong)
		progress_line(p, p->line, p->len);
	p->len = 0;
	p->overlong = false;
	if (p->tlen)
		emit(p, p->text, p->tlen);
	p->tlen = 0;
}

void docker_progress_tail(const struct docker_progress *p, char *out, size_t outlen)
{
	unsigned n = MIN(p->nkeep, (unsigned)DOCKER_PROGRESS_KEEP);
	size_t o = 0;

	if (!outlen)
		return;
	out[0] = 0;
	for (unsigned i = p->nkeep - n; i < p->nkeep && o + 1 < outlen; i++) {
		int w = snprintf(out + o, outlen - o, "%s%s", o ? " | " : "", p->keep[i % DOCKER_PROGRESS_KEEP]);
		if (w < 0)
			break;
		o += (size_t)w;
	}
}
