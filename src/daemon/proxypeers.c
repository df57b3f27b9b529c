/*
 * proxypeers.c — the remote proxies (proxypeers.h). Every request is a
 * libcurl call in libuv's thread pool (never on the loop), bounded in time
 * (2 s for a push, 1 s for a read); the peers are driven in parallel, each
 * with at most one push, one /status and one /windows in flight.
 *
 * A peer is behind when the generation it acknowledged is older than the
 * table's: it is pushed at once; a push that fails (no answer, not 200,
 * 409: it runs a newer generation than ours) is retried 100 ms later,
 * doubling to 5 s. Its /status is read every 200 ms: a peer that says
 * awaiting_routes or an older generation than it acknowledged (it came
 * back: a restart, a new container) is pushed at once, backoff cleared.
 */
#include "common.h"
#include "daemon/daemon.h"
#include "daemon/proxypeers.h"
#include "daemon/proxyfleet.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"
#include <curl/curl.h>

#define PUSH_TIMEOUT_MS 2000L
#define READ_TIMEOUT_MS 1000L
#define STATUS_EVERY_MS 200
#define STALE_MS 1000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

struct peer {
	char addr[128];
	char token[160];         /* its bearer token ("": none) */
	char group[96];          /* discovered with this group (nodeproxy.c), "": a --proxy-peer */
	bool overlay;            /* gets the table with the tasks' overlay addresses */
	bool gone;               /* out of the list, freed once its last request is back */
	/* the push */
	bool push_busy;
	bool acked_valid;
	uint64_t acked;          /* the generation it answered 200 with */
	int64_t acked_ms;        /* when */
	int64_t retry_at, backoff_ms;
	int fails;               /* pushes failed in a row */
	char error[160];         /* the last push's fault; "": none */
	/* its /status */
	bool status_busy;
	int64_t status_sent_ms, status_ok_ms;
	bool awaiting;
	int64_t gen_seen;        /* -1: not read yet */
	/* requests to it in the thread pool; one that gave no answer (refused,
	 * timed out) makes it unresponsive: then one at a time, so that hung
	 * peers cannot take libuv's 4 threads from the rest of the controller */
	int inflight;
	bool unresponsive;
	/* its /windows, as the last sum said */
	bool reported, have_report;
	int64_t report_ok_ms;
};

static struct peer **peers;
static size_t npeers;
static bool inited;
static char *table;           /* the routes file's text, generation table_gen */
static char *table_overlay;   /* the same for node proxies (overlay_of); NULL: not made yet */
static char *(*overlay_of)(const char *text); /* given with the groups (nodeproxy_table) */
static uint64_t table_gen;
static struct fleet_sum *sum;
static size_t last_reporting, last_total; /* the last sum's */
static bool local_reported;
static int64_t local_ok_ms;

/* one HTTP request in the thread pool */
struct req {
	uv_work_t w;
	char url[200];
	char auth[160];
	char *body;      /* PUT: the table (owned) */
	uint64_t gen;    /* PUT: its generation */
	struct hbuf out;
	long code;
	char cerr[CURL_ERROR_SIZE];
	int64_t sent_ms;
	void *owner;     /* struct peer, or a windows round */
	struct peer *peer; /* the peer asked; NULL: the local proxy */
	size_t slot;     /* windows: which read */
};

static struct peer *peer_add(const char *addr, const char *token, const char *group)
{
	struct peer *p = xcalloc(1, sizeof(*p));
	strlcpy_g(p->addr, addr, sizeof(p->addr));
	strlcpy_g(p->token, token ? token : "", sizeof(p->token));
	strlcpy_g(p->group, group ? group : "", sizeof(p->group));
	p->overlay = group && *group;
	p->gen_seen = -1;
	peers = xrealloc(peers, (npeers + 1) * sizeof(*peers));
	peers[npeers++] = p;
	return p;
}

/* a peer out of the list is freed when nothing in the pool holds it */
static void peer_release(struct peer *p)
{
	if (p && p->gone && p->inflight == 0) {
		explicit_bzero(p->token, sizeof(p->token));
		free(p);
	}
}

static void init(void)
{
	if (inited)
		return;
	inited = true;
	for (size_t i = 0; i < gd->nproxy_peers; i++)
		peer_add(gd->proxy_peers[i], gd->proxy_peer_token, NULL);
	sum = fleet_sum_new();
}

size_t proxypeers_count(void)
{
	return inited ? npeers : gd->nproxy_peers;
}

void proxypeers_set_group(const char *group, const char *const *addrs, size_t n, const char *token,
			  char *(*table_of)(const char *text))
{
	init();
	overlay_of = table_of;
	/* gone: the group's peers not named any more */
	for (size_t i = 0; i < npeers;) {
		struct peer *p = peers[i];
		bool keep = strcmp(p->group, group) != 0;
		for (size_t k = 0; !keep && k < n; k++)
			keep = !strcmp(addrs[k], p->addr) && !strcmp(p->token, token ? token : "");
		if (keep) {
			i++;
			continue;
		}
		log_info("proxy", "peer=%s (%s) leaves the fleet's proxies", p->addr, p->group);
		peers[i] = peers[--npeers];
		p->gone = true;
		peer_release(p);
	}
	for (size_t k = 0; k < n; k++) {
		bool have = false;
		for (size_t i = 0; i < npeers && !have; i++)
			have = !strcmp(peers[i]->addr, addrs[k]);
		if (!have) {
			peer_add(addrs[k], token, group);
			log_info("proxy", "peer=%s (%s) joins the fleet's proxies", addrs[k], group);
			daemon_kick();
		}
	}
}

static size_t on_body(char *p, size_t size, size_t n, void *data)
{
	struct req *r = data;
	return hbuf_append(&r->out, p, size * n) < 0 ? 0 : size * n;
}

static void req_work(uv_work_t *w)
{
	struct req *r = w->data;
	struct curl_slist *hdrs = NULL;
	CURL *c = curl_easy_init();
	if (!c) {
		snprintf(r->cerr, sizeof(r->cerr), "curl_easy_init failed");
		return;
	}
	curl_easy_setopt(c, CURLOPT_URL, r->url);
	if (r->auth[0])
		hdrs = curl_slist_append(hdrs, r->auth);
	if (r->body) {
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		hdrs = curl_slist_append(hdrs, "Expect:");
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(r->body));
	}
	if (hdrs)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, r->body ? PUSH_TIMEOUT_MS : READ_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->cerr);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->code);
	else if (!r->cerr[0])
		snprintf(r->cerr, sizeof(r->cerr), "no answer");
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
}

static struct req *req_new(const char *addr, const char *path, const char *token, void *owner)
{
	struct req *r = xcalloc(1, sizeof(*r));
	snprintf(r->url, sizeof(r->url), "http://%s%s", addr, path);
	if (token)
		snprintf(r->auth, sizeof(r->auth), "Authorization: Bearer %s", token);
	hbuf_init(&r->out, 16 * 1024 * 1024);
	r->owner = owner;
	r->w.data = r;
	r->sent_ms = clock_mono_ms();
	return r;
}

/* whether another request may go to p now */
static bool may_send(const struct peer *p)
{
	return !p->unresponsive || p->inflight == 0;
}

/* queues r to p (or the local proxy: p NULL) in the pool; 0, or -1 (r freed) */
static int req_queue(struct req *r, struct peer *p, uv_after_work_cb done)
{
	r->peer = p;
	if (uv_queue_work(gd->loop, &r->w, req_work, done) < 0) {
		hbuf_release(&r->out);
		free(r->body);
		free(r);
		return -1;
	}
	if (p)
		p->inflight++;
	return 0;
}

/* a request came back: p's count and whether it answers */
static void req_back(struct req *r)
{
	if (r->peer) {
		r->peer->inflight--;
		r->peer->unresponsive = !r->code;
	}
}

static void req_free(struct req *r)
{
	explicit_bzero(r->auth, sizeof(r->auth));
	hbuf_release(&r->out);
	free(r->body);
	free(r);
}

/* the answer's body as a string (NUL-terminated in place, or "") */
static const char *req_text(struct req *r)
{
	if (!r->out.len || hbuf_append(&r->out, "", 1) < 0)
		return "";
	return r->out.data;
}

static int64_t json_gen(const char *text)
{
	json_t *j = json_loads(text, 0, NULL);
	json_t *g = j ? json_object_get(j, "generation") : NULL;
	int64_t v = json_is_integer(g) ? (int64_t)json_integer_value(g) : -1;
	json_decref(j);
	return v;
}

/* ---- the push ---- */

static void push_done(uv_work_t *w, int status)
{
	struct req *r = w->data;
	struct peer *p = r->owner;
	int64_t now = clock_mono_ms();
	(void)status;
	req_back(r);
	p->push_busy = false;
	if (p->gone) {
		req_free(r);
		peer_release(p);
		return;
	}
	if (r->code == 200) {
		int64_t g = json_gen(req_text(r));
		if (p->fails)
			log_info("proxy", "peer=%s generation=%llu pushed (after %d failed pushes)", p->addr,
				 (unsigned long long)r->gen, p->fails);
		else
			log_debug("proxy", "peer=%s generation=%llu pushed in %lldms", p->addr,
				  (unsigned long long)r->gen, (long long)(now - r->sent_ms));
		p->acked_valid = true;
		p->acked = g >= 0 ? (uint64_t)g : r->gen;
		p->acked_ms = now;
		p->awaiting = false;
		p->fails = 0;
		p->backoff_ms = 0;
		p->retry_at = 0;
		p->error[0] = 0;
	} else {
		char why[160];
		if (r->code == 409)
			snprintf(why, sizeof(why), "409: it runs generation %lld, newer than ours (%llu)",
				 (long long)json_gen(req_text(r)), (unsigned long long)r->gen);
		else if (r->code)
			snprintf(why, sizeof(why), "HTTP %ld", r->code);
		else
			snprintf(why, sizeof(why), "%.150s", r->cerr);
		p->backoff_ms = p->backoff_ms ? MIN(p->backoff_ms * 2, BACKOFF_MAX_MS) : BACKOFF_MIN_MS;
		p->retry_at = now + p->backoff_ms;
		if (!p->fails || strcmp(why, p->error))
			log_warn("proxy", "peer=%s push of generation %llu failed: %s (retrying in %lldms)", p->addr,
				 (unsigned long long)r->gen, why, (long long)p->backoff_ms);
		p->fails++;
		strlcpy_g(p->error, why, sizeof(p->error));
	}
	req_free(r);
	daemon_kick();
}

static void push(struct peer *p)
{
	struct req *r = req_new(p->addr, "/routes", p->token[0] ? p->token : NULL, p);
	if (p->overlay && !table_overlay)
		table_overlay = overlay_of ? overlay_of(table) : xstrdup(table);
	r->body = xstrdup(p->overlay ? table_overlay : table);
	r->gen = table_gen;
	if (req_queue(r, p, push_done) == 0)
		p->push_busy = true;
}

void proxypeers_table(const char *text, uint64_t gen)
{
	init();
	free(table);
	table = xstrdup(text);
	free(table_overlay);
	table_overlay = NULL; /* made at the first push to a node proxy */
	table_gen = gen;
	/* a new table goes out at once, whatever the backoff of the last */
	for (size_t i = 0; i < npeers; i++)
		peers[i]->retry_at = 0;
}

/* ---- /status ---- */

static void status_done(uv_work_t *w, int status)
{
	struct req *r = w->data;
	struct peer *p = r->owner;
	json_t *j;
	(void)status;
	req_back(r);
	p->status_busy = false;
	if (p->gone) {
		req_free(r);
		peer_release(p);
		return;
	}
	if (r->code == 200 && (j = json_loads(req_text(r), 0, NULL))) {
		json_t *g = json_object_get(j, "generation");
		p->awaiting = json_is_true(json_object_get(j, "awaiting_routes"));
		p->gen_seen = json_is_integer(g) ? (int64_t)json_integer_value(g) : -1;
		p->status_ok_ms = clock_mono_ms();
		/* it came back (restarted, replaced) since it acknowledged: what
		 * it serves is not what we pushed; read after the push answered,
		 * so not a push its workers are still installing */
		if (p->acked_valid && r->sent_ms > p->acked_ms + 100 &&
		    (p->awaiting || p->gen_seen < (int64_t)p->acked)) {
			log_warn("proxy", "peer=%s %s: pushing generation %llu now", p->addr,
				 p->awaiting ? "awaits its routes (it restarted)" : "runs an older generation",
				 (unsigned long long)table_gen);
			p->acked_valid = false;
			p->retry_at = 0;
			p->backoff_ms = 0;
			daemon_kick();
		}
		json_decref(j);
	}
	req_free(r);
}

void proxypeers_tick(int64_t now)
{
	if (!proxypeers_count())
		return;
	init();
	for (size_t i = 0; i < npeers; i++) {
		struct peer *p = peers[i];
		/* an unresponsive peer: its /status first (it says when it is back) */
		if (!p->status_busy && now - p->status_sent_ms >= STATUS_EVERY_MS && may_send(p)) {
			struct req *r = req_new(p->addr, "/status", p->token[0] ? p->token : NULL, p);
			p->status_sent_ms = now;
			if (req_queue(r, p, status_done) == 0)
				p->status_busy = true;
		}
		if (table && !p->push_busy && (!p->acked_valid || p->acked < table_gen) && now >= p->retry_at &&
		    may_send(p))
			push(p);
	}
}

/* ---- /windows ---- */

struct round {
	size_t n, pending;
	char (*names)[128]; /* who each read asked (slot 0: the local proxy) */
	char **docs;
	int64_t *read_ms;
	void (*done)(const char *doc, void *data);
	void *data;
};

static void round_finish(struct round *rd)
{
	struct fleet_read *reads = xcalloc(rd->n, sizeof(*reads));
	struct fleet_proxy *rep = xcalloc(rd->n, sizeof(*rep));
	struct hbuf out;
	int64_t now = clock_mono_ms();
	int got;

	for (size_t i = 0; i < rd->n; i++) {
		reads[i].proxy = rd->names[i];
		reads[i].doc = rd->docs[i];
		reads[i].read_ms = rd->read_ms[i];
	}
	hbuf_init(&out, 64 * 1024 * 1024);
	got = fleet_sum_windows(sum, reads, rd->n, now, STALE_MS, &out, rep);
	last_total = rd->n;
	last_reporting = got < 0 ? 0 : (size_t)got;
	for (size_t i = 0; i < rd->n; i++) {
		struct peer *p = NULL;
		bool was;
		for (size_t k = 0; i && k < npeers && !p; k++)
			if (!strcmp(peers[k]->addr, rd->names[i]))
				p = peers[k];
		if (i && !p)
			continue; /* it left the list meanwhile */
		was = p ? p->reported : local_reported;
		if (was && !rep[i].reporting && (p ? p->have_report : true))
			log_warn("proxy", "proxy=%s stopped reporting: its windows are left out (%zu of %zu report)",
				 reads[i].proxy, last_reporting, rd->n);
		else if (!was && rep[i].reporting && (p ? p->have_report : local_ok_ms))
			log_info("proxy", "proxy=%s reports again (%zu of %zu report)", reads[i].proxy,
				 last_reporting, rd->n);
		if (p) {
			p->reported = rep[i].reporting;
			p->have_report = true;
			p->report_ok_ms = rep[i].last_ok_ms;
		} else {
			local_reported = rep[i].reporting;
			local_ok_ms = rep[i].last_ok_ms;
		}
	}
	if (got >= 0) {
		char *doc = hbuf_detach(&out, NULL);
		rd->done(doc, rd->data);
		free(doc);
	} else {
		rd->done(NULL, rd->data);
	}
	hbuf_release(&out);
	for (size_t i = 0; i < rd->n; i++)
		free(rd->docs[i]);
	free(rd->docs);
	free(rd->names);
	free(rd->read_ms);
	free(reads);
	free(rep);
	free(rd);
}

static void windows_done(uv_work_t *w, int status)
{
	struct req *r = w->data;
	struct round *rd = r->owner;
	struct peer *p = r->peer;
	(void)status;
	req_back(r);
	if (r->code == 200) {
		rd->docs[r->slot] = xstrdup(req_text(r));
		rd->read_ms[r->slot] = clock_mono_ms();
	}
	req_free(r);
	peer_release(p);
	if (--rd->pending == 0)
		round_finish(rd);
}

int proxypeers_windows(void (*done)(const char *doc, void *data), void *data)
{
	struct round *rd;
	init();
	rd = xcalloc(1, sizeof(*rd));
	rd->n = npeers + 1;
	rd->docs = xcalloc(rd->n, sizeof(*rd->docs));
	rd->names = xcalloc(rd->n, sizeof(*rd->names));
	rd->read_ms = xcalloc(rd->n, sizeof(*rd->read_ms));
	rd->done = done;
	rd->data = data;
	rd->pending = rd->n;
	for (size_t i = 0; i < rd->n; i++) {
		struct peer *p = i ? peers[i - 1] : NULL;
		struct req *r;
		strlcpy_g(rd->names[i], p ? p->addr : gd->admin, sizeof(rd->names[i]));
		if (p && !may_send(p)) { /* a failed read: it is left out once stale */
			rd->pending--;
			continue;
		}
		r = p ? req_new(p->addr, "/windows", p->token[0] ? p->token : NULL, rd)
		      : req_new(gd->admin, "/windows", gd->admin_token, rd);
		r->slot = i;
		if (req_queue(r, p, windows_done) < 0)
			rd->pending--;
	}
	if (rd->pending == 0) { /* nothing queued */
		free(rd->docs);
		free(rd->names);
		free(rd->read_ms);
		free(rd);
		return -1;
	}
	return 0;
}

bool proxypeers_quorum(void)
{
	if (!proxypeers_count() || !last_total)
		return true;
	return last_reporting >= fleet_quorum(last_total);
}

size_t proxypeers_reporting(size_t *total)
{
	*total = last_total;
	return last_reporting;
}

json_t *proxypeers_status_json(int64_t now)
{
	json_t *a = json_array();
	if (!proxypeers_count())
		return a;
	init();
	json_array_append_new(a, json_pack("{s:s, s:b, s:I, s:I, s:b, s:b}", "address", gd->admin, "local", 1,
					   "generation", (json_int_t)gd->proxy_gen_seen, "report_age_ms",
					   (json_int_t)(local_ok_ms ? now - local_ok_ms : -1), "stale",
					   !local_reported, "awaiting_routes", 0));
	for (size_t i = 0; i < npeers; i++) {
		struct peer *p = peers[i];
		json_t *o = json_pack("{s:s, s:b, s:I, s:I, s:I, s:b, s:b}", "address", p->addr, "local", 0,
				      "generation", (json_int_t)p->gen_seen, "pushed",
				      (json_int_t)(p->acked_valid ? (int64_t)p->acked : -1), "report_age_ms",
				      (json_int_t)(p->report_ok_ms ? now - p->report_ok_ms : -1), "stale", !p->reported,
				      "awaiting_routes", p->awaiting);
		if (p->error[0])
			json_object_set_new(o, "error", json_string(p->error));
		if (p->group[0])
			json_object_set_new(o, "node_proxy", json_string(p->group));
		json_array_append_new(a, o);
	}
	return a;
}

void proxypeers_free(void)
{
	/* requests still in the pool hold their peer: the loop is gone by now */
	for (size_t i = 0; i < npeers; i++) {
		explicit_bzero(peers[i]->token, sizeof(peers[i]->token));
		free(peers[i]);
	}
	free(peers);
	peers = NULL;
	npeers = 0;
	free(table);
	table = NULL;
	free(table_overlay);
	table_overlay = NULL;
	fleet_sum_free(sum);
	sum = NULL;
	inited = false;
}
