/*
 * notify.c — webhook bodies, Standard Webhooks signatures and the delivery
 * worker (notify.h).
 */
#include "common.h"
#include "records/notify.h"
#include "gates/window.h"
#include "store/store.h"
#include "util/log.h"
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>

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

struct delivery {
	char *db_path;
	char *url;
	char *event;
	char *body;
	char *msg_id;
	char *signature;   /* NULL: unsigned (slack) */
	int64_t ts;
	struct delivery *next;
};

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cond = PTHREAD_COND_INITIALIZER;
static struct delivery *q_head, *q_tail;
static size_t q_len;
static bool worker_started, worker_busy;

static void delivery_free(struct delivery *d)
{
	free(d->db_path);
	free(d->url);
	free(d->event);
	free(d->body);
	free(d->msg_id);
	free(d->signature);
	free(d);
}

static size_t discard(char *p, size_t size, size_t n, void *u)
{
	(void)p;
	(void)u;
	return size * n;
}

/* one POST; 0 on a 2xx */
static int post_once(const struct delivery *d, char *why, size_t len)
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

static void record(const char *db_path, const char *kind, const char *fmt, ...) PRINTF_LIKE(3, 4);
static void record(const char *db_path, const char *kind, const char *fmt, ...)
{
	struct store *s;
	struct gerr err;
	char msg[900];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_info("notify", "%s %s", kind, msg);
	/* our own connection: the loop's may be inside a transaction */
	if (!db_path || store_open(db_path, &s, &err) < 0)
		return;
	store_event_add(s, "", "", 0, kind, &err, "%s", msg);
	store_close(s);
}

static void *worker(void *arg)
{
	(void)arg;
	for (;;) {
		struct delivery *d;
		char why[256] = "";
		int attempt;
		pthread_mutex_lock(&q_lock);
		while (!q_head)
			pthread_cond_wait(&q_cond, &q_lock);
		d = q_head;
		worker_busy = true;
		q_head = d->next;
		if (!q_head)
			q_tail = NULL;
		q_len--;
		pthread_mutex_unlock(&q_lock);
		for (attempt = 1; attempt <= 3; attempt++) {
			if (post_once(d, why, sizeof(why)) == 0)
				break;
			if (attempt < 3)
				sleep(attempt == 1 ? 1 : 4);
		}
		if (attempt <= 3)
			record(d->db_path, "notify_sent", "%s to %s (attempt %d)", d->event, d->url, attempt);
		else
			record(d->db_path, "notify_failed", "%s to %s failed after 3 attempts: %s", d->event, d->url, why);
		delivery_free(d);
		pthread_mutex_lock(&q_lock);
		worker_busy = false;
		pthread_mutex_unlock(&q_lock);
	}
	return NULL;
}

static int ensure_worker(void)
{
	pthread_t t;
	pthread_attr_t attr;
	int r;
	if (worker_started)
		return 0;
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

bool notify_idle(void)
{
	bool idle;
	pthread_mutex_lock(&q_lock);
	idle = !q_head && !worker_busy;
	pthread_mutex_unlock(&q_lock);
	return idle;
}

int notify_send(const char *db_path, const json_t *cfg, const char *event, const json_t *data)
{
	size_t i;
	const json_t *t;
	int queued = 0;
	if (!json_is_array(cfg) || !json_array_size(cfg))
		return 0;
	json_array_foreach((json_t *)cfg, i, t) {
		const char *fmt = json_string_value(json_object_get(t, "format"));
		const char *url = json_string_value(json_object_get(t, "url"));
		const char *senv = json_string_value(json_object_get(t, "secret_env"));
		struct delivery *d;
		unsigned char idb[12];
		char idhex[25];
		if (!url || !notify_wants(t, event))
			continue;
		d = xcalloc(1, sizeof(*d));
		d->db_path = db_path ? xstrdup(db_path) : NULL;
		d->url = xstrdup(url);
		d->event = xstrdup(event);
		d->ts = gates_now();
		randombytes_buf(idb, sizeof(idb));
		sodium_bin2hex(idhex, sizeof(idhex), idb, sizeof(idb));
		d->msg_id = xasprintf("msg_%s", idhex);
		if (fmt && !strcmp(fmt, "slack")) {
			d->body = notify_slack_body(event, data);
		} else {
			char sig[128];
			const char *secret = senv ? getenv(senv) : NULL;
			d->body = notify_standard_body(event, d->ts, data);
			if (secret && notify_sign(secret, d->msg_id, d->ts, d->body, sig, sizeof(sig)) == 0)
				d->signature = xstrdup(sig);
			else
				d->signature = xstrdup(""); /* headers still sent; an empty signature never verifies */
		}
		pthread_mutex_lock(&q_lock);
		if (q_len >= NOTIFY_QUEUE_MAX || ensure_worker() < 0) {
			pthread_mutex_unlock(&q_lock);
			log_warn("notify", "queue full or no worker: dropped %s to %s", event, url);
			delivery_free(d);
			continue;
		}
		if (q_tail)
			q_tail->next = d;
		else
			q_head = d;
		q_tail = d;
		q_len++;
		pthread_cond_signal(&q_cond);
		pthread_mutex_unlock(&q_lock);
		queued++;
	}
	return queued;
}
