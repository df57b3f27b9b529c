/*
 * notify.c — webhook bodies, Standard Webhooks signatures and the delivery
 * worker (notify.h).
 */
#include "common.h"
#include "records/notify.h"
#include "util/buf.h"
#include "util/clock.h"
#include "store/store.h"
#include "store/store_records.h"
#include "util/log.h"
#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- secrets ---- */

#define SECRET_FILE_MAX (64 * 1024)

int notify_secret_parse(const char *text, size_t len, const char *name, char *out, size_t outlen, struct gerr *err)
{
	const char *p = text, *end = text + len;
	size_t nlen = strlen(name);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *e = nl ? nl : end, *eq, *k, *ke, *val;
		const char *next = nl ? nl + 1 : end;
		while (p < e && (*p == ' ' || *p == '\t'))
			p++;
		while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
			e--;
		if (p == e || *p == '#' || !(eq = memchr(p, '=', (size_t)(e - p)))) {
			p = next;
			continue;
		}
		k = p;
		ke = eq;
		while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t'))
			ke--;
		if ((size_t)(ke - k) == nlen && !memcmp(k, name, nlen)) {
			val = eq + 1;
			while (val < e && (*val == ' ' || *val == '\t'))
				val++;
			if (val == e)
				return gerr_set(err, "secret %s is empty", name);
			if ((size_t)(e - val) >= outlen)
				return gerr_set(err, "secret %s is longer than %zu bytes", name, outlen - 1);
			memcpy(out, val, (size_t)(e - val));
			out[e - val] = 0;
			return 0;
		}
		p = next;
	}
	return gerr_set(err, "secret %s is not in the file (add a line %s=VALUE)", name, name);
}

int notify_secret_read(const char *path, const char *name, char *out, size_t outlen, struct gerr *err)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int fd = -1, ret = -1;
	struct gerr e;
	/* O_NOFOLLOW: the file itself is checked, not what a link points at; O_NONBLOCK: a FIFO never blocks */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP)
			gerr_set(err, "%s: must be a regular file, not a symbolic link", path);
		else
			gerr_set(err, "%s: %s (secret %s is read from it)", path, strerror(errno), name);
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		gerr_set(err, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		gerr_set(err, "%s: must be a regular file", path);
		goto out;
	}
	if (st.st_uid != geteuid()) {
		gerr_set(err, "%s: must be owned by the controller's user (uid %ld), not uid %ld", path, (long)geteuid(),
			 (long)st.st_uid);
		goto out;
	}
	if (st.st_mode & 077) {
		gerr_set(err, "%s: group or others may access it (mode %03o): chmod 600 it", path,
			 (unsigned)(st.st_mode & 0777));
		goto out;
	}
	if (st.st_size > SECRET_FILE_MAX) {
		gerr_set(err, "%s: larger than %d KiB", path, SECRET_FILE_MAX / 1024);
		goto out;
	}
	buf = xmalloc(SECRET_FILE_MAX + 1);
	for (;;) {
		ssize_t n = read(fd, buf + len, SECRET_FILE_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			gerr_set(err, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > SECRET_FILE_MAX) {
			gerr_set(err, "%s: larger than %d KiB", path, SECRET_FILE_MAX / 1024);
			goto out;
		}
	}
	if (notify_secret_parse(buf, len, name, out, outlen, &e) < 0) {
		gerr_set(err, "%s: %s", path, e.msg);
		goto out;
	}
	ret = 0;
out:
	if (buf) {
		sodium_memzero(buf, SECRET_FILE_MAX + 1);
		free(buf);
	}
	if (fd >= 0)
		close(fd);
	return ret;
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
static char *worker_secrets;      /* HOME/webhook-secrets beside it (owned; NULL if db has no directory) */
static uint64_t kicks, kicks_seen; /* notify_send -> worker wake-ups */
static int64_t worker_pending = -1; /* rows left after the worker's last pass; -1 unknown */
static bool worker_started, worker_busy;

/*
 * What a response may make us read: its status is all we use, so a body
 * goes to a bounded sink and is dropped, and the transfer is cut past
 * NOTIFY_BODY_MAX bytes (the status is known by then: a cut body is no
 * failure here); headers are bounded by libcurl itself. Nothing a receiver
 * sends is ever recorded: a failure is its HTTP status or libcurl's error
 * text.
 */
#define NOTIFY_BODY_MAX (16 * 1024)

struct post_ctx {
	bool allow_private;
	struct hbuf_sink body; /* the response body, dropped */
	char refused[200];     /* why the connection was refused ("" if it was not) */
};

/*
 * The address check at delivery. A hostname can resolve to anything (and
 * resolve differently at each attempt), so the address checked is the one
 * about to be connected: CURLOPT_OPENSOCKETFUNCTION is called with it for
 * every address libcurl tries (both families, each fallback) before the
 * socket exists, so a refused address never even sees a SYN. (The other
 * way, CURLOPT_PREREQFUNCTION or CURLINFO_PRIMARY_IP, looks only after
 * the connection, and TLS handshake, to the private address was made.)
 * The proxy environment variables are ignored (CURLOPT_PROXY ""): through a
 * proxy the connected address would be the proxy's and the check would
 * judge the wrong host. Redirects are not followed.
 */
static curl_socket_t open_checked(void *u, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct post_ctx *x = u;
	const char *range;
	(void)purpose;
	if (!x->allow_private && (range = notify_addr_private(&a->addr))) {
		char ip[INET6_ADDRSTRLEN] = "?";
		if (a->family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)&a->addr)->sin_addr, ip, sizeof(ip));
		else if (a->family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)&a->addr)->sin6_addr, ip, sizeof(ip));
		snprintf(x->refused, sizeof(x->refused), "refused: %s is a %s address (" NOTIFY_PRIVATE_RULE " on the webhook)", ip, range);
		return CURL_SOCKET_BAD;
	}
	/* SOCK_CLOEXEC: replicas the controller spawns meanwhile do not inherit it */
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* one POST; 0 on a 2xx, -1 on a failure worth retrying, -2 on a refusal (final) */
static int post_once(const struct outbox_row *d, const char *signature, char *why, size_t len)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	struct post_ctx x = { .allow_private = d->allow_private };
	char hdr[512];
	long code = 0;
	CURLcode rc;
	int ret = -1;
	if (!c) {
		snprintf(why, len, "curl_easy_init failed");
		return -1;
	}
	hbuf_sink_init(&x.body, NOTIFY_BODY_MAX);
	h = curl_slist_append(h, "Content-Type: application/json");
	if (signature) {
		snprintf(hdr, sizeof(hdr), "webhook-id: %s", d->msg_id);
		h = curl_slist_append(h, hdr);
		snprintf(hdr, sizeof(hdr), "webhook-timestamp: %lld", (long long)d->ts);
		h = curl_slist_append(h, hdr);
		snprintf(hdr, sizeof(hdr), "webhook-signature: %s", signature);
		h = curl_slist_append(h, hdr);
	}
	curl_easy_setopt(c, CURLOPT_URL, d->url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, d->body);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, open_checked);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &x);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "gantry/" GANTRY_VERSION);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, hbuf_sink_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &x.body);
	rc = curl_easy_perform(c);
	if (rc != CURLE_OK && x.refused[0]) {
		/* only when no other address of the name worked */
		snprintf(why, len, "%s", x.refused);
		ret = -2;
	} else if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && x.body.over)) {
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
	hbuf_release(&x.body.buf);
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

/*
 * The signature of row d into sig, made now with the secret its target
 * names, read now from HOME/webhook-secrets (secrets_path), so that a
 * rotated secret needs no restart. A row without a secret keeps the
 * signature it was queued with ("" unsigned; rows queued before migration
 * 7 were signed then). 0 done, -1 with why (never the secret's value).
 */
static int sign_row(const struct outbox_row *d, const char *secrets_path, char *sig, size_t len, char *why,
		    size_t wlen)
{
	char secret[1024];
	struct gerr err;
	int r;
	if (!d->secret) {
		snprintf(sig, len, "%s", d->signature ? d->signature : "");
		return 0;
	}
	if (!secrets_path) {
		snprintf(why, wlen, "refused: secret %s: the controller's state directory is unknown", d->secret);
		return -1;
	}
	if (notify_secret_read(secrets_path, d->secret, secret, sizeof(secret), &err) < 0) {
		snprintf(why, wlen, "refused: %.400s", err.msg);
		return -1;
	}
	r = notify_sign(secret, d->msg_id, d->ts, d->body, sig, len);
	sodium_memzero(secret, sizeof(secret));
	if (r < 0) {
		snprintf(why, wlen, "refused: secret %s in %s is not a valid key (whsec_BASE64, or at most 256 bytes)",
			 d->secret, secrets_path);
		return -1;
	}
	return 0;
}

/* one delivery attempt of row d; the row is deleted or rescheduled */
static void deliver(struct store *s, struct outbox_row *d, const char *secrets_path)
{
	char why[512] = "", sig[128] = "";
	struct gerr err;
	int attempt = d->attempts + 1, r;
	bool headers = d->signature || d->secret; /* standard format: webhook-* headers, signed or not */
	if (sign_row(d, secrets_path, sig, sizeof(sig), why, sizeof(why)) < 0)
		r = -2;
	else
		r = post_once(d, headers ? sig : NULL, why, sizeof(why));
	sodium_memzero(sig, sizeof(sig));
	if (r == 0) {
		record(s, "notify_sent", "%s to %s (attempt %d)", d->event, d->url, attempt);
		if (store_outbox_delete(s, d->id, &err) < 0)
			log_error("notify", "%s", err.msg);
	} else if (r == -2) {
		/* a refusal is the same at every attempt: recorded once, not retried */
		record(s, "notify_failed", "%s to %s %s", d->event, d->url, why);
		if (store_outbox_delete(s, d->id, &err) < 0)
			log_error("notify", "%s", err.msg);
	} else if (attempt >= NOTIFY_ATTEMPTS) {
		record(s, "notify_failed", "%s to %s failed after %d attempts: %s", d->event, d->url, attempt, why);
		if (store_outbox_delete(s, d->id, &err) < 0)
			log_error("notify", "%s", err.msg);
	} else if (store_outbox_retry(s, d->id, attempt, clock_now_ms() + (attempt == 1 ? 1000 : 4000), why, &err) < 0) {
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
		now = clock_now_ms();
		pthread_mutex_lock(&q_lock);
		worker_pending = s ? count : -1;
		worker_busy = false;
		if (kicks == kicks_seen && (!s || next > now)) {
			/* sleep until the next due row, a new one, or 5 s (a lost wake-up costs no more);
			 * the wait is elapsed time: on the monotonic clock (a fixed GANTRY_NOW or a
			 * clock step does not stretch or cut it) */
			int64_t wait = MIN(s && count ? next - now : 5000, 5000);
			struct timespec until = clock_mono_deadline(wait);
			pthread_cond_clockwait(&q_cond, &q_lock, CLOCK_MONOTONIC, &until);
		}
		kicks_seen = kicks;
		worker_busy = true;
		pthread_mutex_unlock(&q_lock);
		if (!s || store_outbox_due(s, clock_now_ms(), NOTIFY_BATCH, &due, &n, &err) < 0)
			continue;
		for (size_t i = 0; i < n; i++) {
			deliver(s, &due[i], worker_secrets);
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
	free(worker_secrets);
	worker_db = xstrdup(db_path);
	/* the controller's state directory is the database's (HOME/state.db) */
	worker_secrets = strrchr(db_path, '/') ? xasprintf("%.*s/webhook-secrets",
							     (int)(strrchr(db_path, '/') - db_path), db_path)
					       : xstrdup("webhook-secrets");
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
		const char *secret = json_string_value(json_object_get(t, "secret"));
		struct outbox_row d = { 0 };
		unsigned char idb[12];
		char idhex[25];
		if (!url || !notify_wants(t, event))
			continue;
		strlcpy_g(d.event, event, sizeof(d.event));
		d.url = xstrdup(url);
		d.ts = clock_now_s();
		if (notify_flag_value(json_object_get(t, "allow_private"), &d.allow_private) < 0)
			d.allow_private = false;
		randombytes_buf(idb, sizeof(idb));
		sodium_bin2hex(idhex, sizeof(idhex), idb, sizeof(idb));
		d.msg_id = xasprintf("msg_%s", idhex);
		if (fmt && !strcmp(fmt, "slack")) {
			d.body = notify_slack_body(event, data);
		} else {
			/* signed when posted (deliver): only the secret's name is stored */
			d.body = notify_standard_body(event, d.ts, data);
			if (secret)
				d.secret = xstrdup(secret);
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
