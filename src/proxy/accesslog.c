/*
 * accesslog.c — --access-log: a worker appends one JSON line per finished
 * exchange to its own buffer (wk->alog, under wk->mtx); the control thread
 * swaps the buffers out and writes them every ALOG_FLUSH_MS and at stop.
 */
#include "common.h"
#include "proxy/proxy-int.h"
#include "util/log.h"
#include <fcntl.h>
#include <time.h>

/* a JSON string into the access log line, cut at max bytes */
static void alog_str(struct hbuf *b, const char *s, size_t n, size_t max)
{
	hbuf_append(b, "\"", 1);
	for (size_t i = 0; i < n && i < max; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\')
			hbuf_printf(b, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			hbuf_printf(b, "\\u%04x", ch);
		else
			hbuf_append(b, &s[i], 1);
	}
	hbuf_append(b, "\"", 1);
}

/* one JSON line into the worker's buffer; the control thread writes it out */
void proxy__access_log(struct client *c, uint64_t dur_us, uint64_t bytes_out)
{
	struct worker *wk = c->wk;
	const struct http_msg *m = &c->msg;
	struct hbuf b;
	struct timespec ts;
	struct tm tm;
	char when[40];
	const char *method = m->head_done ? llhttp_method_name((llhttp_method_t)m->llp.method) : "";

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	hbuf_init(&b, 8192);
	hbuf_printf(&b, "{\"ts\":\"%s.%03ldZ\",\"worker\":%d,\"client\":\"%s\",\"method\":\"%s\",\"host\":",
		    when, ts.tv_nsec / 1000000, wk->id, c->ip, method);
	alog_str(&b, c->host, strlen(c->host), 255);
	hbuf_addstr(&b, ",\"path\":");
	if (m->head_done)
		alog_str(&b, http_span_ptr(m, m->url), m->url.len, 1024);
	else
		hbuf_addstr(&b, "\"\"");
	hbuf_printf(&b, ",\"status\":%d,\"service\":", c->status);
	alog_str(&b, c->ms->service, strlen(c->ms->service), 256);
	hbuf_addstr(&b, ",\"environment\":");
	alog_str(&b, c->ms->environment, strlen(c->ms->environment), 256);
	hbuf_addstr(&b, ",\"revision\":");
	alog_str(&b, c->ms->revision, strlen(c->ms->revision), 256);
	hbuf_printf(&b, ",\"duration_us\":%llu,\"bytes_in\":%llu,\"bytes_out\":%llu,\"tries\":%d,\"shielded\":%s,\"request_id\":",
		    (unsigned long long)dur_us, (unsigned long long)c->bytes_in,
		    (unsigned long long)bytes_out, c->tries + 1, c->shielded ? "true" : "false");
	alog_str(&b, c->reqid, strlen(c->reqid), 64);
	hbuf_addstr(&b, "}\n");
	pthread_mutex_lock(&wk->mtx);
	if (hbuf_append(&wk->alog, b.data, b.len) < 0)
		wk->alog_dropped++;
	pthread_mutex_unlock(&wk->mtx);
	hbuf_release(&b);
}

void proxy__alog_flush(struct proxy *px)
{
	for (int i = 0; i < px->nworkers; i++) {
		struct worker *wk = &px->workers[i];
		struct hbuf b;
		uint64_t dropped;
		size_t off = 0;

		hbuf_init(&b, ALOG_MAX);
		pthread_mutex_lock(&wk->mtx);
		b = wk->alog;
		hbuf_init(&wk->alog, ALOG_MAX);
		dropped = wk->alog_dropped;
		wk->alog_dropped = 0;
		pthread_mutex_unlock(&wk->mtx);
		while (off < b.len) {
			ssize_t n = write(px->alog_fd, b.data + off, b.len - off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			off += (size_t)n;
		}
		if (dropped)
			log_warn("proxy", "access_log=dropped lines=%llu worker=%d", (unsigned long long)dropped, i);
		hbuf_release(&b);
	}
}

static void on_alog_timer(uv_timer_t *t)
{
	proxy__alog_flush(t->data);
}

int proxy__alog_open(struct proxy *px, struct gerr *err)
{
	const char *path = px->cfg.access_log;

	if (!path)
		return 0;
	px->alog_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (px->alog_fd < 0)
		return gerr_set(err, "--access-log %s: %s", path, strerror(errno));
	return 0;
}

void proxy__alog_start(struct proxy *px)
{
	if (px->alog_fd >= 0)
		uv_timer_start(&px->alog_timer, on_alog_timer, ALOG_FLUSH_MS, ALOG_FLUSH_MS);
}
