/*
 * notify.c — webhook bodies, Standard Webhooks signatures and the delivery
 * worker (notify.h).
 */
#include "common.h"
#include "records/notify.h"
#include "gates/window.h"
#include "store/store.h"
#include "store/store_records.h"
#include "util/log.h"
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <time.h>

int notify_config_check(const json_t *cfg, struct gerr *err)
{
	size_t i;
	const json_t *t;
	if (!cfg || json_is_null(cfg))
		return 0;
	if (!json_is_array(cfg) || json_array_size(cfg) > 32)
		return gerr_set(err, "notify: must be a list of at most 32 webhooks");
	json_array_foreach((json_t *)cfg, i, t) {
		const char *url = json_string_value(json_object_get(t, "url"));
		const char *fmt = json_string_value(json_object_get(t, "format"));
		const json_t *ev = json_object_get(t, "events"), *se = json_object_get(t, "secret_env");
		const char *key;
		const json_t *v;
		if (!json_is_object(t))
			return gerr_set(err, "notify[%zu]: must be a mapping (url, format, secret_env, events)", i);
		json_object_foreach((json_t *)t, key, v)
			if (strcmp(key, "url") && strcmp(key, "format") && strcmp(key, "secret_env") && strcmp(key, "events"))
				return gerr_set(err, "notify[%zu]: unknown key '%s' (url, format, secret_env, events)", i, key);
		if (!url || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) || strlen(url) > 2000)
			return gerr_set(err, "notify[%zu].url: must be an http:// or https:// URL", i);
		if (fmt && strcmp(fmt, "slack") && strcmp(fmt, "standard"))
			return gerr_set(err, "notify[%zu].format: must be slack or standard, got '%s'", i, fmt);
		if (se && (!json_is_string(se) || !*json_string_value(se)))
			return gerr_set(err, "notify[%zu].secret_env: must be an environment variable name", i);
		if (ev && !json_is_array(ev))
			return gerr_set(err, "notify[%zu].events: must be a list of event names", i);
	}
	return 0;
}

bool notify_wants(const json_t *t, const char *event)
{
	const json_t *ev = json_object_get(t, "events"), *e;
	size_t i;
	if (!json_is_array(ev) || !json_array_size(ev))
		return true;
	json_array_foreach((json_t *)ev, i, e)
		if (json_is_string(e) && (!strcmp(json_string_value(e), event) || !strcmp(json_string_value(e), "*")))
			return true;
	return false;
}

char *notify_slack_body(const char *event, const json_t *data)
{
	const char *svc = json_string_value(json_object_get(data, "service"));
	const char *env = json_string_value(json_object_get(data, "environment"));
	const char *msg = json_string_value(json_object_get(data, "message"));
	char *text = xasprintf("%s%s%s%s%s: %s", event, svc ? " " : "", svc ? svc : "", env ? "@" : "", env ? env : "",
			       msg ? msg : "");
	json_t *o = json_pack("{s:s}", "text", text);
	char *out = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	free(text);
	return out;
}

char *notify_standard_body(const char *event, int64_t ts, const json_t *data)
{
	char iso[40];
	json_t *o;
	char *out;
	format_rfc3339(ts, iso, sizeof(iso));
	o = json_pack("{s:s, s:s, s:o}", "type", event, "timestamp", iso, "data",
		      data ? json_deep_copy(data) : json_object());
	out = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return out;
}

int notify_sign(const char *secret, const char *msg_id, int64_t ts, const char *body, char *out, size_t len)
{
	unsigned char key[256], mac[crypto_auth_hmacsha256_BYTES];
	size_t keylen = 0;
	crypto_auth_hmacsha256_state st;
	char tsbuf[32], b64[sodium_base64_ENCODED_LEN(crypto_auth_hmacsha256_BYTES, sodium_base64_VARIANT_ORIGINAL)];

	if (sodium_init() < 0 || !secret || !*secret)
		return -1;
	if (!strncmp(secret, "whsec_", 6)) {
		if (sodium_base642bin(key, sizeof(key), secret + 6, strlen(secret + 6), NULL, &keylen, NULL,
				      sodium_base64_VARIANT_ORIGINAL) != 0)
			return -1;
	} else {
		keylen = strlen(secret);
		if (keylen > sizeof(key))
			return -1;
		memcpy(key, secret, keylen);
	}
	snprintf(tsbuf, sizeof(tsbuf), "%lld", (long long)ts);
	crypto_auth_hmacsha256_init(&st, key, keylen);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg_id, strlen(msg_id));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)tsbuf, strlen(tsbuf));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, strlen(body));
	crypto_auth_hmacsha256_final(&st, mac);
	sodium_memzero(key, sizeof(key));
	sodium_bin2base64(b64, sizeof(b64), mac, sizeof(mac), sodium_base64_VARIANT_ORIGINAL);
	snprintf(out, len, "v1,%s", b64);
	return 0;
}

/* ---- delivery ---- */

/*
 * Delivery: notify_send() writes one outbox row per target (migration 5),
 * on the caller's connection, so a delivery is decided with the state
 * change that caused it and survives a crash or a restart; the worker
 * thread, on its own connection, posts due rows oldest first, deletes them
 * once delivered (or failed 3 times), and reschedules a failure (1 s, then
 * 4 s) so that a dead endpoint does not hold the others. At least once: a
 * delivery made just before a crash is made again after it, with the same
 * webhook-id, which is what the Standard Webhooks spec tells receivers to
 * deduplicate on.
 */
#define NOTIFY_ATTEMPTS 3
#define NOTIFY_BATCH 8

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER;
static char *worker_db;           /* the state database the worker reads (owned) */
static uint64_t kicks, kicks_seen; /* notify_send -> worker wake-ups */
static int64_t worker_pending = -1; /* rows left after the worker's last pass; -1 unknown */
static bool worker_started, worker_busy;

static size_t discard(char *p, size_t size, size_t n, void *u)
{
	(void)p;
	(void)u;
	return size * n;
}

/* one POST; 0 on a 2xx */
static int post_once(const struct outbox_row *d, char *why, size_t len)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	char hdr[512];
	long code = 0;
	CURLcode rc;
	int ret = -1;
	if (!c) {
		snprintf(why, len, "curl_easy_init failed");
		return -1;
	}
	h = curl_slist_append(h, "Content-Type: application/json");
	if (d->signature) {
		snprintf(hdr, sizeof(hdr), "webhook-id: %s", d->msg_id);
		h = curl_slist_append(h, hdr);
		snprintf(hdr, sizeof(hdr), "webhook-timestamp: %lld", (long long)d->ts);
		h = curl_slist_append(h, hdr);
		snprintf(hdr, sizeof(hdr), "webhook-signature: %s", d->signature);
		h = curl_slist_append(h, hdr);
	}
	curl_easy_setopt(c, CURLOPT_URL, d->url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, d->body);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "gantry/" GANTRY_VERSION);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		snprintf(why, len, "%s", curl_easy_strerror(rc));
	} else {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
		if (code >= 200 && code < 300)
			ret = 0;
		else
			snprintf(why, len, "HTTP %ld", code);
	}
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return ret;
}

static void record(struct store *s, const char *kind, const char *fmt, ...) PRINTF_LIKE(3, 4);
static void record(struct store *s, const char *kind, const char *fmt, ...)
{
	struct gerr err;
	char msg[900];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_info("notify", "%s %s", kind, msg);
	if (store_event_add(s, "", "", 0, kind, &err, "%s", msg) < 0)
		log_error("notify", "%s", err.msg);
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* one delivery attempt of row d; the row is deleted or rescheduled */
static void deliver(struct store *s, struct outbox_row *d)
{
	char why[256] = "";
	struct gerr err;
	int attempt = d->attempts + 1;
	if (post_once(d, why, sizeof(why)) == 0) {
		record(s, "notify_sent", "%s to %s (attempt %d)", d->event, d->url, attempt);
		if (store_outbox_delete(s, d->id, &err) < 0)
			log_error("notify", "%s", err.msg);
	} else if (attempt >= NOTIFY_ATTEMPTS) {
		record(s, "notify_failed", "%s to %s failed after %d attempts: %s", d->event, d->url, attempt, why);
		if (store_outbox_delete(s, d->id, &err) < 0)
			log_error("notify", "%s", err.msg);
	} else if (store_outbox_retry(s, d->id, attempt, wall_ms() + (attempt == 1 ? 1000 : 4000), why, &err) < 0) {
		log_error("notify", "%s", err.msg);
	}
}

static void *worker(void *arg)
{
	struct store *s = NULL;
	struct gerr err;
	(void)arg;
	for (;;) {
		struct outbox_row *due = NULL;
		size_t n = 0;
		int64_t count = 0, next = INT64_MAX, now;

		if (!s && store_open(worker_db, &s, &err) < 0) {
			log_error("notify", "%s", err.msg);
			s = NULL;
		}
		if (s && store_outbox_pending(s, &count, &next, &err) < 0)
			log_error("notify", "%s", err.msg);
		now = wall_ms();
		pthread_mutex_lock(&q_lock);
		worker_pending = s ? count : -1;
		worker_busy = false;
		if (kicks == kicks_seen && (!s || next > now)) {
			/* sleep until the next due row, a new one, or 5 s (a lost wake-up costs no more) */
			struct timespec until;
			int64_t wait = MIN(s && count ? next - now : 5000, 5000);
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += (time_t)(wait / 1000);
			until.tv_nsec += (long)(wait % 1000) * 1000000;
			if (until.tv_nsec >= 1000000000) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&q_cond, &q_lock, &until);
		}
		kicks_seen = kicks;
		worker_busy = true;
		pthread_mutex_unlock(&q_lock);
		if (!s || store_outbox_due(s, wall_ms(), NOTIFY_BATCH, &due, &n, &err) < 0)
			continue;
		for (size_t i = 0; i < n; i++) {
			deliver(s, &due[i]);
			outbox_row_release(&due[i]);
		}
		free(due);
	}
	return NULL;
}

/* under q_lock */
static int ensure_worker(const char *db_path)
{
	pthread_t t;
	pthread_attr_t attr;
	int r;
	if (worker_started)
		return 0;
	if (!db_path)
		return -1;
	free(worker_db);
	worker_db = xstrdup(db_path);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	r = pthread_create(&t, &attr, worker, NULL);
	pthread_attr_destroy(&attr);
	if (r)
		return -1;
	worker_started = true;
	return 0;
}

int notify_start(const char *db_path)
{
	int r;
	pthread_mutex_lock(&q_lock);
	r = ensure_worker(db_path);
	kicks++;
	pthread_cond_signal(&q_cond);
	pthread_mutex_unlock(&q_lock);
	return r;
}

bool notify_idle(void)
{
	bool idle;
	pthread_mutex_lock(&q_lock);
	idle = worker_started && kicks == kicks_seen && !worker_busy && worker_pending == 0;
	pthread_mutex_unlock(&q_lock);
	return idle;
}

int notify_send(struct store *st, const char *db_path, const json_t *cfg, const char *event, const json_t *data)
{
	size_t i;
	const json_t *t;
	struct store *own = NULL;
	struct gerr err;
	int queued = 0;
	if (!json_is_array(cfg) || !json_array_size(cfg))
		return 0;
	if (!st && (!db_path || store_open(db_path, &own, &err) < 0)) {
		log_warn("notify", "no state database: dropped %s", event);
		return 0;
	}
	json_array_foreach((json_t *)cfg, i, t) {
		const char *fmt = json_string_value(json_object_get(t, "format"));
		const char *url = json_string_value(json_object_get(t, "url"));
		const char *senv = json_string_value(json_object_get(t, "secret_env"));
		struct outbox_row d = { 0 };
		unsigned char idb[12];
		char idhex[25];
		if (!url || !notify_wants(t, event))
			continue;
		strlcpy_g(d.event, event, sizeof(d.event));
		d.url = xstrdup(url);
		d.ts = gates_now();
		randombytes_buf(idb, sizeof(idb));
		sodium_bin2hex(idhex, sizeof(idhex), idb, sizeof(idb));
		d.msg_id = xasprintf("msg_%s", idhex);
		if (fmt && !strcmp(fmt, "slack")) {
			d.body = notify_slack_body(event, data);
		} else {
			char sig[128];
			const char *secret = senv ? getenv(senv) : NULL;
			d.body = notify_standard_body(event, d.ts, data);
			if (secret && notify_sign(secret, d.msg_id, d.ts, d.body, sig, sizeof(sig)) == 0)
				d.signature = xstrdup(sig);
			else
				d.signature = xstrdup(""); /* headers still sent; an empty signature never verifies */
		}
		if (store_outbox_add(st ? st : own, &d, &err) < 0)
			log_warn("notify", "dropped %s to %s: %s", event, url, err.msg);
		else
			queued++;
		outbox_row_release(&d);
	}
	if (own)
		store_close(own);
	if (queued)
		notify_start(db_path);
	return queued;
}
