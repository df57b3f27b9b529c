/*
 * notify_target.c — what a webhook target of the spec's notify: list may
 * be (notify_target.h): its keys, and the rule on private addresses, which
 * the spec check applies to a literal host and records/notify.c again to
 * every address it connects.
 */
#include "common.h"
#include "core/notify_target.h"
#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <strings.h>
#include <sys/socket.h>

/* ---- private addresses ---- */

/* the range of the IPv4 address a (host order), NULL: public */
static const char *v4_range(uint32_t a)
{
	if ((a >> 24) == 0)
		return "unspecified"; /* 0.0.0.0/8: "this host" (Linux connects 0.0.0.0 to itself) */
	if ((a >> 24) == 127)
		return "loopback";
	if ((a >> 16) == 0xa9fe)
		return "link-local"; /* 169.254/16, where clouds answer metadata requests */
	if ((a >> 24) == 10 || (a >> 20) == 0xac1 || (a >> 16) == 0xc0a8)
		return "private";
	if ((a >> 22) == (100u << 2 | 1)) /* 100.64/10: carrier-grade NAT, overlay VPNs */
		return "private";
	return NULL;
}

static const char *v6_range(const unsigned char *b)
{
	static const unsigned char zero[10] = { 0 }, nat64[12] = { 0, 0x64, 0xff, 0x9b };
	uint32_t v4 = (uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 | b[15];
	if (!memcmp(b, zero, 10) && b[10] == 0xff && b[11] == 0xff)
		return v4_range(v4); /* ::ffff:a.b.c.d, IPv4-mapped: the IPv4 address is the one reached */
	if (!memcmp(b, zero, 10) && !b[10] && !b[11]) {
		if (v4 == 0)
			return "unspecified";
		if (v4 == 1)
			return "loopback";
		return v4_range(v4); /* ::a.b.c.d, the deprecated IPv4-compatible form */
	}
	if (!memcmp(b, nat64, 12))
		return v4_range(v4); /* 64:ff9b::/96: a NAT64 gateway reaches the IPv4 address */
	if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
		return "link-local"; /* fe80::/10 */
	if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)
		return "private"; /* fec0::/10, the deprecated site-local */
	if ((b[0] & 0xfe) == 0xfc)
		return "private"; /* fc00::/7, unique local */
	return NULL;
}

const char *notify_addr_private(const struct sockaddr *sa)
{
	if (!sa)
		return "not an IP address";
	if (sa->sa_family == AF_INET)
		return v4_range(ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr));
	if (sa->sa_family == AF_INET6)
		return v6_range(((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr);
	return "not an IP address";
}

static bool is_localhost(const char *h, size_t n)
{
	static const char lh[] = "localhost";
	size_t l = sizeof(lh) - 1;
	/* "localhost" and NAME.localhost (RFC 6761: both resolve to loopback) */
	return n >= l && !strncasecmp(h + n - l, lh, l) && (n == l || h[n - l - 1] == '.');
}

const char *notify_host_private(const char *host)
{
	char h[256];
	size_t n = host ? strlen(host) : 0;
	struct in_addr a4;
	struct in6_addr a6;
	char *pct;
	if (n && host[0] == '[' && host[n - 1] == ']') {
		host++;
		n -= 2;
	}
	if (n && host[n - 1] == '.')
		n--; /* "localhost." and "127.0.0.1." are the same hosts */
	if (!n || n >= sizeof(h))
		return NULL;
	memcpy(h, host, n);
	h[n] = 0;
	if (is_localhost(h, n))
		return "loopback";
	if ((pct = strchr(h, '%')))
		*pct = 0; /* fe80::1%eth0: the zone does not change the range */
	if (inet_pton(AF_INET6, h, &a6) == 1)
		return v6_range(a6.s6_addr);
	/* inet_aton, not inet_pton: it takes what resolvers take, 127.1, 0x7f000001, 2130706433 */
	if (inet_aton(h, &a4))
		return v4_range(ntohl(a4.s_addr));
	return NULL;
}

/* ---- configuration ---- */

/* a YAML boolean: true/false, which the spec reaches here as strings (spec_node_to_json) */
int notify_flag_value(const json_t *v, bool *out)
{
	const char *t = json_string_value(v);
	*out = false;
	if (!v || json_is_false(v))
		return 0;
	if (json_is_true(v) || (t && (!strcmp(t, "true") || !strcmp(t, "True") || !strcmp(t, "TRUE")))) {
		*out = true;
		return 0;
	}
	if (t && (!strcmp(t, "false") || !strcmp(t, "False") || !strcmp(t, "FALSE")))
		return 0;
	return -1;
}

static bool secret_name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (!n || n > 64)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
			return false;
	return true;
}

/* the host of url into out (brackets kept off an IPv6 literal); -1 if url does not parse */
static int url_host(const char *url, char *out, size_t len)
{
	CURLU *u = curl_url();
	char *host = NULL;
	int r = -1;
	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host && *host) {
		strlcpy_g(out, host, len);
		r = 0;
	}
	curl_free(host);
	curl_url_cleanup(u);
	return r;
}

#define NOTIFY_KEYS "url, format, secret, allow_private, events"

int notify_target_check(const json_t *t, size_t i, struct gerr *err)
{
	const char *url = json_string_value(json_object_get(t, "url"));
	const char *fmt = json_string_value(json_object_get(t, "format"));
	const json_t *ev = json_object_get(t, "events"), *sec = json_object_get(t, "secret");
	const char *key, *range;
	const json_t *v;
	char host[256];
	bool allow;
	if (!json_is_object(t))
		return gerr_set(err, "notify[%zu]: must be a mapping (" NOTIFY_KEYS ")", i);
	if (json_object_get(t, "secret_env"))
		return gerr_set(err, "notify[%zu].secret_env: secrets no longer come from the environment: "
			        "use secret: NAME; the value goes in HOME/webhook-secrets (NAME=VALUE, mode 0600)", i);
	json_object_foreach((json_t *)t, key, v)
		if (strcmp(key, "url") && strcmp(key, "format") && strcmp(key, "secret") && strcmp(key, "allow_private") &&
		    strcmp(key, "events"))
			return gerr_set(err, "notify[%zu]: unknown key '%s' (" NOTIFY_KEYS ")", i, key);
	if (!url || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) || strlen(url) > 2000 ||
	    url_host(url, host, sizeof(host)) < 0)
		return gerr_set(err, "notify[%zu].url: must be an http:// or https:// URL", i);
	if (fmt && strcmp(fmt, "slack") && strcmp(fmt, "standard"))
		return gerr_set(err, "notify[%zu].format: must be slack or standard, got '%s'", i, fmt);
	if (notify_flag_value(json_object_get(t, "allow_private"), &allow) < 0)
		return gerr_set(err, "notify[%zu].allow_private: must be true or false", i);
	if (!allow && (range = notify_host_private(host)))
		return gerr_set(err, "notify[%zu].url: %s is a %s address: " NOTIFY_PRIVATE_RULE " on this webhook", i, host,
				range);
	if (sec && !secret_name_ok(json_string_value(sec)))
		return gerr_set(err, "notify[%zu].secret: must be the NAME of a line NAME=VALUE in HOME/webhook-secrets "
				"(letters, digits, _ . -, at most 64)", i);
	if (sec && fmt && !strcmp(fmt, "slack"))
		return gerr_set(err, "notify[%zu].secret: slack messages are not signed (format: standard is)", i);
	if (ev && !json_is_array(ev))
		return gerr_set(err, "notify[%zu].events: must be a list of event names", i);
	return 0;
}

int notify_config_check(const json_t *cfg, struct gerr *err)
{
	size_t i;
	const json_t *t;
	if (!cfg || json_is_null(cfg))
		return 0;
	if (!json_is_array(cfg) || json_array_size(cfg) > 32)
		return gerr_set(err, "notify: must be a list of at most 32 webhooks");
	json_array_foreach((json_t *)cfg, i, t)
		if (notify_target_check(t, i, err) < 0)
			return -1;
	return 0;
}
