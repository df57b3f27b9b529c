/*
 * sops.c — SOPS files with age recipients (see sops.h for the format).
 *
 * Interoperability notes, from getsops/sops (sops.go, aes/cipher.go):
 *  - a value's bytes (encrypted, and hashed for the MAC) are Go's: an int
 *    in decimal, a float as strconv.FormatFloat(f, 'f', -1, 64), a bool as
 *    "True"/"False"; an empty string is left as "" (not encrypted); null
 *    is neither encrypted nor hashed. So scalars are kept canonical here.
 *  - the additional data is the map keys of the path joined with ':' plus
 *    ':'; a list does not add to the path.
 *  - the MAC is SHA-512 over every value (or only the encrypted ones with
 *    mac_only_encrypted, after a fixed 32-byte prefix), in upper-case hex,
 *    encrypted like a value with lastmodified as the additional data.
 * AES-256-GCM with SOPS's 32-byte IV is nettle's gcm_aes256 (libsodium's
 * AES-GCM takes 12-byte nonces only and needs AES-NI).
 */
#include "common.h"

#include <ctype.h>
#include <math.h>
#include <regex.h>
#include <time.h>

#include <jansson.h>
#include <libfyaml.h>
#include <nettle/gcm.h>
#include <nettle/memops.h>
#include <sodium.h>

#include "secrets/sops.h"
#include "util/buf.h"
#include "util/parse.h"

#define SOPS_IV_LEN 32
#define SOPS_TAG_LEN 16
#define SOPS_KEY_LEN 32
#define SOPS_MAX_NODES 1000000
#define SOPS_OUT_MAX (64u << 20)

static const uint8_t mac_only_encrypted_init[32] = {
	0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
	0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
};


static bool utf8_valid(const char *str)
{
	const unsigned char *u = (const unsigned char *)str;
	size_t n = strlen(str);
	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq_len(u + i, n - i);
		if (!k)
			return false;
		i += k;
	}
	return true;
}

enum sops_format sops_format_from_path(const char *path)
{
	size_t n = strlen(path);
	return n >= 5 && strcasecmp(path + n - 5, ".json") == 0 ? SOPS_JSON : SOPS_YAML;
}

/* ---- nodes ---- */

struct sops_node *sops_node_new(enum sops_kind kind, const char *key, const char *text)
{
	struct sops_node *n = xcalloc(1, sizeof(*n));
	n->kind = kind;
	n->key = key ? xstrdup(key) : NULL;
	n->text = text ? xstrdup(text) : NULL;
	return n;
}

void sops_node_free(struct sops_node *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++)
		sops_node_free(n->items[i]);
	free(n->items);
	if (n->text)
		sodium_memzero(n->text, strlen(n->text));
	free(n->text);
	free(n->key);
	free(n);
}

int sops_node_append(struct sops_node *parent, struct sops_node *child)
{
	if (!parent || (parent->kind != SOPS_MAP && parent->kind != SOPS_LIST) || !child ||
	    (parent->kind == SOPS_MAP && !child->key)) {
		sops_node_free(child);
		return -1;
	}
	if (parent->n == parent->cap) {
		parent->cap = parent->cap ? parent->cap * 2 : 4;
		parent->items = xrealloc(parent->items, parent->cap * sizeof(*parent->items));
	}
	parent->items[parent->n++] = child;
	return 0;
}

struct sops_node *sops_map_get(const struct sops_node *map, const char *key)
{
	if (!map || map->kind != SOPS_MAP)
		return NULL;
	for (size_t i = 0; i < map->n; i++)
		if (map->items[i]->key && strcmp(map->items[i]->key, key) == 0)
			return map->items[i];
	return NULL;
}

int sops_map_set_str(struct sops_node *map, const char *key, const char *value)
{
	if (!map || map->kind != SOPS_MAP)
		return -1;
	for (size_t i = 0; i < map->n; i++)
		if (strcmp(map->items[i]->key, key) == 0) {
			sops_node_free(map->items[i]);
			map->items[i] = sops_node_new(SOPS_STR, key, value);
			return 0;
		}
	return sops_node_append(map, sops_node_new(SOPS_STR, key, value));
}

int sops_map_remove(struct sops_node *map, const char *key)
{
	if (!map || map->kind != SOPS_MAP)
		return -1;
	for (size_t i = 0; i < map->n; i++)
		if (strcmp(map->items[i]->key, key) == 0) {
			sops_node_free(map->items[i]);
			memmove(map->items + i, map->items + i + 1, (map->n - i - 1) * sizeof(*map->items));
			map->n--;
			return 0;
		}
	return -1;
}

/* detaches the entry key from map (NULL if none); owned by the caller */
static struct sops_node *map_detach(struct sops_node *map, const char *key)
{
	for (size_t i = 0; map && map->kind == SOPS_MAP && i < map->n; i++)
		if (strcmp(map->items[i]->key, key) == 0) {
			struct sops_node *n = map->items[i];
			memmove(map->items + i, map->items + i + 1, (map->n - i - 1) * sizeof(*map->items));
			map->n--;
			return n;
		}
	return NULL;
}

static struct sops_node *node_copy(const struct sops_node *n)
{
	struct sops_node *c = sops_node_new(n->kind, n->key, n->text);
	for (size_t i = 0; i < n->n; i++)
		sops_node_append(c, node_copy(n->items[i]));
	return c;
}

const struct sops_node *sops_tree_get(const struct sops_node *root, const char *path)
{
	const struct sops_node *n = root;
	const char *p = path;
	if (!root || !path || !*path)
		return NULL;
	while (n && *p) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		const struct sops_node *next = NULL;
		if (n->kind == SOPS_MAP) {
			for (size_t i = 0; i < n->n; i++)
				if (strlen(n->items[i]->key) == len && memcmp(n->items[i]->key, p, len) == 0) {
					next = n->items[i];
					break;
				}
		} else if (n->kind == SOPS_LIST && len > 0 && len < 10) {
			size_t idx = 0;
			bool ok = true;
			for (size_t i = 0; i < len; i++) {
				if (!isdigit((unsigned char)p[i]))
					ok = false;
				idx = idx * 10 + (size_t)(p[i] - '0');
			}
			if (ok && idx < n->n)
				next = n->items[idx];
		}
		n = next;
		p += len;
		if (*p == '.')
			p++;
		else
			break;
	}
	return *p ? NULL : n;
}

int sops_tree_get_string(const struct sops_node *root, const char *path, char **out, struct gerr *err)
{
	const struct sops_node *n = sops_tree_get(root, path);
	*out = NULL;
	if (!n)
		return gerr_set(err, "sops: %s: no such key", path);
	if (n->kind == SOPS_MAP || n->kind == SOPS_LIST)
		return gerr_set(err, "sops: %s: is a %s, not a value", path, n->kind == SOPS_MAP ? "map" : "list");
	*out = xstrdup(n->kind == SOPS_NULL ? "" : n->text);
	return 0;
}

/* ---- scalars: Go's canonical text ---- */

/* strconv.FormatFloat(v, 'f', -1, 64) into out; -1 for inf and nan */
static int format_float(double v, char *out, size_t cap)
{
	char buf[64], digits[32];
	int p, exp10 = 0;
	size_t nd = 0, k = 0;
	if (!isfinite(v) || cap < 400)
		return -1;
	for (p = 1; p <= 17; p++) {
		snprintf(buf, sizeof(buf), "%.*e", p - 1, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	const char *s = buf;
	if (*s == '-') {
		out[k++] = '-';
		s++;
	}
	for (; *s && *s != 'e'; s++)
		if (isdigit((unsigned char)*s))
			digits[nd++] = *s;
	if (*s == 'e')
		exp10 = atoi(s + 1);
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	if (nd == 1 && digits[0] == '0')
		exp10 = 0;
	if (exp10 >= 0) {
		for (int i = 0; i <= exp10; i++)
			out[k++] = (size_t)i < nd ? digits[i] : '0';
		if ((size_t)exp10 + 1 < nd) {
			out[k++] = '.';
			for (size_t i = (size_t)exp10 + 1; i < nd; i++)
				out[k++] = digits[i];
		}
	} else {
		out[k++] = '0';
		out[k++] = '.';
		for (int i = 0; i < -exp10 - 1; i++)
			out[k++] = '0';
		for (size_t i = 0; i < nd; i++)
			out[k++] = digits[i];
	}
	out[k] = '\0';
	return 0;
}

static bool match_float(const char *s)
{
	const char *p = s;
	bool digits = false, dot = false;
	if (*p == '-' || *p == '+')
		p++;
	while (isdigit((unsigned char)*p) || (*p == '.' && !dot)) {
		if (*p == '.')
			dot = true;
		else
			digits = true;
		p++;
	}
	if (!digits)
		return false;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '-' || *p == '+')
			p++;
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	} else if (!dot) {
		return false;
	}
	return *p == '\0';
}

/*
 * The kind of a plain YAML scalar (YAML 1.2 core schema, as go-yaml v3
 * resolves the common forms) and its canonical text into canon (cap >= 400).
 * Forms not handled (".inf", "0b101", "1_000") stay strings.
 */
static enum sops_kind resolve_plain(const char *s, char *canon, size_t cap)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };
	static const char *const trues[] = { "true", "True", "TRUE" };
	static const char *const falses[] = { "false", "False", "FALSE" };
	for (size_t i = 0; i < ARRAY_SIZE(nulls); i++)
		if (!strcmp(s, nulls[i]))
			return SOPS_NULL;
	for (size_t i = 0; i < ARRAY_SIZE(trues); i++)
		if (!strcmp(s, trues[i])) {
			strlcpy_g(canon, "true", cap);
			return SOPS_BOOL;
		}
	for (size_t i = 0; i < ARRAY_SIZE(falses); i++)
		if (!strcmp(s, falses[i])) {
			strlcpy_g(canon, "false", cap);
			return SOPS_BOOL;
		}
	const char *p = s + (*s == '-' || *s == '+');
	int base = 10;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'o')) {
		base = p[1] == 'x' ? 16 : 8;
		p += 2;
	}
	size_t nd = 0;
	while (isxdigit((unsigned char)p[nd]) && (base == 16 || isdigit((unsigned char)p[nd])) &&
	       (base != 8 || p[nd] < '8'))
		nd++;
	if (nd && !p[nd] && (base != 10 || nd == 1 || p[0] != '0')) {
		errno = 0;
		long long v = strtoll(p, NULL, base);
		if (errno == 0) {
			snprintf(canon, cap, "%lld", *s == '-' ? -v : v);
			return SOPS_INT;
		}
		/* out of range: go-yaml gives a float */
	}
	if (match_float(s) || (nd && !p[nd] && base == 10)) {
		double d = strtod(s, NULL);
		if (format_float(d, canon, cap) == 0)
			return SOPS_FLOAT;
	}
	return SOPS_STR;
}

/* the bytes of a scalar as SOPS hashes and encrypts them (Go's ToBytes) */
static const char *scalar_bytes(const struct sops_node *n)
{
	if (n->kind == SOPS_BOOL)
		return strcmp(n->text, "true") == 0 ? "True" : "False";
	return n->text ? n->text : "";
}

static const char *kind_type(enum sops_kind k)
{
	switch (k) {
	case SOPS_INT: return "int";
	case SOPS_FLOAT: return "float";
	case SOPS_BOOL: return "bool";
	default: return "str";
	}
}

/* ---- YAML in ---- */

static void fy_quiet_output(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
	(void)diag, (void)user, (void)buf, (void)len;
}


/* a scalar's text into a new node (key NULL) */
static struct sops_node *scalar_node(const char *text, bool plain)
{
	char canon[400];
	if (!plain)
		return sops_node_new(SOPS_STR, NULL, text);
	enum sops_kind k = resolve_plain(text, canon, sizeof(canon));
	if (k == SOPS_NULL)
		return sops_node_new(SOPS_NULL, NULL, NULL);
	return sops_node_new(k, NULL, k == SOPS_STR ? text : canon);
}

/* attaches n under the top of the stack; in a map, alternately as a key and a value */
struct yctx {
	struct sops_node *stack[SOPS_MAX_DEPTH + 1];
	char *pending_key[SOPS_MAX_DEPTH + 1];
	int depth;
	size_t nodes;
	struct sops_node *root;
};

static int yadd(struct yctx *y, struct sops_node *n, struct gerr *err)
{
	if (++y->nodes > SOPS_MAX_NODES) {
		sops_node_free(n);
		return gerr_set(err, "sops: document too large (more than %d values)", SOPS_MAX_NODES);
	}
	if (y->depth == 0) {
		if (y->root) {
			sops_node_free(n);
			return gerr_set(err, "sops: more than one YAML document");
		}
		y->root = n;
	} else {
		struct sops_node *p = y->stack[y->depth - 1];
		if (p->kind == SOPS_MAP && !y->pending_key[y->depth - 1]) {
			sops_node_free(n);
			return gerr_set(err, "sops: a map key must be a string");
		}
		if (p->kind == SOPS_MAP) {
			char *key = y->pending_key[y->depth - 1];
			y->pending_key[y->depth - 1] = NULL;
			if (sops_map_get(p, key)) {
				int rc = gerr_set(err, "sops: duplicate key '%.100s'", key);
				free(key);
				sops_node_free(n);
				return rc;
			}
			n->key = key;
		}
		sops_node_append(p, n);
	}
	return 0;
}

static int parse_yaml(const char *text, size_t len, struct sops_node **out, struct gerr *err)
{
	struct fy_diag_cfg dcfg;
	struct fy_diag *diag = NULL;
	struct fy_parse_cfg pcfg = { 0 };
	struct fy_parser *fyp = NULL;
	struct fy_event *ev;
	struct yctx *y = xcalloc(1, sizeof(*y));
	bool failed = false;
	int ret = -1;

	fy_diag_cfg_default(&dcfg);
	dcfg.fp = NULL;
	dcfg.output_fn = fy_quiet_output;
	dcfg.level = FYET_ERROR;
	dcfg.colorize = false;
	diag = fy_diag_create(&dcfg);
	if (!diag) {
		gerr_set(err, "sops: cannot create the YAML parser");
		goto out;
	}
	fy_diag_set_collect_errors(diag, true);
	pcfg.flags = FYPCF_QUIET;
	pcfg.diag = diag;
	fyp = fy_parser_create(&pcfg);
	if (!fyp || fy_parser_set_string(fyp, text, len)) {
		gerr_set(err, "sops: cannot create the YAML parser");
		goto out;
	}
	while (!failed && (ev = fy_parser_parse(fyp))) {
		const struct fy_mark *m = fy_event_start_mark(ev);
		struct sops_node *n = NULL;
		size_t tl = 0;
		const char *t;
		switch (ev->type) {
		case FYET_SCALAR: {
			enum fy_scalar_style style = ev->scalar.value ? fy_token_scalar_style(ev->scalar.value) : FYSS_PLAIN;
			char *s;
			if (style == FYSS_SINGLE_QUOTED) {
				const struct fy_mark *ts = fy_token_start_mark(ev->scalar.value);
				const struct fy_mark *te = fy_token_end_mark(ev->scalar.value);
				if (ts && te && ts->input_pos <= te->input_pos && te->input_pos <= len)
					s = yaml_single_quoted(text + ts->input_pos, te->input_pos - ts->input_pos);
				else
					s = xstrdup("");
			} else {
				t = ev->scalar.value ? fy_token_get_text(ev->scalar.value, &tl) : NULL;
				s = xstrndup(t ? t : "", t ? tl : 0);
				/* escapes ("\0", "\xff", a lone surrogate) can make what is no text */
				if (strlen(s) != (t ? tl : 0) || !utf8_valid(s)) {
					gerr_set(err, "sops: line %d: a value is not UTF-8 text (a NUL or an invalid escape)",
						 m ? m->line + 1 : 0);
					age_secret_free(s, 0);
					failed = true;
					break;
				}
			}
			if (y->depth > 0 && y->stack[y->depth - 1]->kind == SOPS_MAP && !y->pending_key[y->depth - 1]) {
				/* a key: its text as written (go-yaml keeps "1.50" a string key) */
				y->pending_key[y->depth - 1] = s;
				break;
			}
			n = scalar_node(s, style == FYSS_PLAIN && !ev->scalar.tag);
			sodium_memzero(s, strlen(s));
			free(s);
			if (yadd(y, n, err) < 0)
				failed = true;
			break;
		}
		case FYET_ALIAS:
			gerr_set(err, "sops: line %d: YAML aliases are not supported", m ? m->line + 1 : 0);
			failed = true;
			break;
		case FYET_MAPPING_START:
		case FYET_SEQUENCE_START:
			if (ev->type == FYET_MAPPING_START ? ev->mapping_start.anchor != NULL
							   : ev->sequence_start.anchor != NULL) {
				gerr_set(err, "sops: line %d: YAML anchors are not supported", m ? m->line + 1 : 0);
				failed = true;
				break;
			}
			if (y->depth >= SOPS_MAX_DEPTH) {
				gerr_set(err, "sops: nesting deeper than %d levels", SOPS_MAX_DEPTH);
				failed = true;
				break;
			}
			n = sops_node_new(ev->type == FYET_MAPPING_START ? SOPS_MAP : SOPS_LIST, NULL, NULL);
			if (yadd(y, n, err) < 0) {
				failed = true;
				break;
			}
			y->stack[y->depth++] = n;
			break;
		case FYET_MAPPING_END:
		case FYET_SEQUENCE_END:
			if (y->depth > 0) {
				y->depth--;
				free(y->pending_key[y->depth]);
				y->pending_key[y->depth] = NULL;
			}
			break;
		default:
			break;
		}
		fy_parser_event_free(fyp, ev);
	}
	if (!failed && fy_parser_get_stream_error(fyp)) {
		void *it = NULL;
		struct fy_diag_error *e = fy_diag_errors_iterate(diag, &it);
		if (e)
			gerr_set(err, "sops: invalid YAML: %d:%d: %s", e->line, e->column,
				 e->msg ? e->msg : "syntax error");
		else
			gerr_set(err, "sops: invalid YAML");
		failed = true;
	}
	if (failed)
		goto out;
	if (!y->root || y->root->kind != SOPS_MAP) {
		gerr_set(err, "sops: the document is not a map");
		goto out;
	}
	*out = y->root;
	y->root = NULL;
	ret = 0;
out:
	for (int i = 0; i <= SOPS_MAX_DEPTH; i++)
		free(y->pending_key[i]);
	sops_node_free(y->root);
	free(y);
	if (fyp)
		fy_parser_destroy(fyp);
	if (diag)
		fy_diag_destroy(diag);
	return ret;
}

/* ---- JSON in ---- */

static struct sops_node *from_json(const json_t *j, const char *key, int depth, size_t *count, struct gerr *err)
{
	char canon[400];
	struct sops_node *n = NULL;
	if (depth > SOPS_MAX_DEPTH) {
		gerr_set(err, "sops: nesting deeper than %d levels", SOPS_MAX_DEPTH);
		return NULL;
	}
	if (++*count > SOPS_MAX_NODES) {
		gerr_set(err, "sops: document too large (more than %d values)", SOPS_MAX_NODES);
		return NULL;
	}
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *v;
		n = sops_node_new(SOPS_MAP, key, NULL);
		json_object_foreach((json_t *)j, k, v) {
			struct sops_node *c = from_json(v, k, depth + 1, count, err);
			if (!c) {
				sops_node_free(n);
				return NULL;
			}
			sops_node_append(n, c);
		}
		return n;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *v;
		n = sops_node_new(SOPS_LIST, key, NULL);
		json_array_foreach(j, i, v) {
			struct sops_node *c = from_json(v, NULL, depth + 1, count, err);
			if (!c) {
				sops_node_free(n);
				return NULL;
			}
			sops_node_append(n, c);
		}
		return n;
	}
	case JSON_STRING:
		return sops_node_new(SOPS_STR, key, json_string_value(j));
	case JSON_INTEGER:
		snprintf(canon, sizeof(canon), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
		return sops_node_new(SOPS_INT, key, canon);
	case JSON_REAL:
		if (format_float(json_real_value(j), canon, sizeof(canon)) < 0) {
			gerr_set(err, "sops: a number out of range");
			return NULL;
		}
		return sops_node_new(SOPS_FLOAT, key, canon);
	case JSON_TRUE:
	case JSON_FALSE:
		return sops_node_new(SOPS_BOOL, key, json_is_true(j) ? "true" : "false");
	default:
		return sops_node_new(SOPS_NULL, key, NULL);
	}
}

static int parse_json(const char *text, size_t len, struct sops_node **out, struct gerr *err)
{
	json_error_t je;
	size_t count = 0;
	json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		return gerr_set(err, "sops: invalid JSON: %d:%d: %s", je.line, je.column, je.text);
	if (!json_is_object(j)) {
		json_decref(j);
		return gerr_set(err, "sops: the document is not an object");
	}
	*out = from_json(j, NULL, 0, &count, err);
	json_decref(j);
	return *out ? 0 : -1;
}

/*
 * A document is UTF-8 text without NUL; in YAML, no directive line ('%'):
 * libfyaml 0.7.12 can loop forever scanning a malformed one (found by
 * fuzz_spec, then fuzz_sops). Every YAML line break counts.
 */
static int check_text(const char *buf, size_t len, enum sops_format fmt, struct gerr *err)
{
	const unsigned char *s = (const unsigned char *)buf;
	size_t i = 0;
	bool bol = true;
	if (len >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3))
		i = 3;
	while (i < len) {
		size_t n = utf8_seq_len(s + i, len - i);
		if (!s[i])
			return gerr_set(err, "sops: the file contains a NUL byte");
		if (!n)
			return gerr_set(err, "sops: the file is not valid UTF-8 text");
		if (bol && s[i] == '%' && fmt == SOPS_YAML)
			return gerr_set(err, "sops: YAML directives ('%%...') are not supported");
		bol = s[i] == '\n' || s[i] == '\r' || (n == 2 && s[i] == 0xC2 && s[i + 1] == 0x85) ||
		      (n == 3 && s[i] == 0xE2 && s[i + 1] == 0x80 && (s[i + 2] == 0xA8 || s[i + 2] == 0xA9));
		i += n;
	}
	return 0;
}

static int parse_doc(const char *text, size_t len, enum sops_format fmt, struct sops_node **out, struct gerr *err)
{
	*out = NULL;
	if (len > SOPS_MAX_INPUT)
		return gerr_set(err, "sops: file larger than %u bytes", SOPS_MAX_INPUT);
	if (check_text(text, len, fmt, err) < 0)
		return -1;
	return fmt == SOPS_JSON ? parse_json(text, len, out, err) : parse_yaml(text, len, out, err);
}

int sops_tree_parse(const char *text, size_t len, enum sops_format fmt, struct sops_node **out, struct gerr *err)
{
	if (parse_doc(text, len, fmt, out, err) < 0)
		return -1;
	if (sops_map_get(*out, "sops")) {
		sops_node_free(*out);
		*out = NULL;
		return gerr_set(err, "sops: the document has a top-level 'sops' key: it is encrypted already");
	}
	return 0;
}

/* ---- out: YAML and JSON ---- */

static void quote_json(struct hbuf *b, const char *s)
{
	hbuf_addstr(b, "\"");
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': hbuf_addstr(b, "\\\""); break;
		case '\\': hbuf_addstr(b, "\\\\"); break;
		case '\n': hbuf_addstr(b, "\\n"); break;
		case '\r': hbuf_addstr(b, "\\r"); break;
		case '\t': hbuf_addstr(b, "\\t"); break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				hbuf_printf(b, "\\u%04x", *p);
			else if (p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf) {
				/* U+FEFF escaped: a reader may take the raw bytes for a byte order mark */
				hbuf_addstr(b, "\\ufeff");
				p += 2;
			} else {
				hbuf_append(b, p, 1);
			}
		}
	}
	hbuf_addstr(b, "\"");
}

/* a string YAML reads back as the same string when written plain */
static bool yaml_plain_ok(const char *s)
{
	char canon[400];
	size_t n = strlen(s);
	if (!n || n > 4096 || isspace((unsigned char)s[0]) || isspace((unsigned char)s[n - 1]))
		return false;
	if (strchr("-?:,[]{}#&*!|>'\"%@`", s[0]) || s[n - 1] == ':')
		return false;
	/* dates and times ("2026-12-07T13:00:00Z") are quoted: some readers resolve them as timestamps */
	if (isdigit((unsigned char)s[0]) && strpbrk(s, "-:"))
		return false;
	/* a byte order mark (U+FEFF) in a plain scalar may be dropped by a reader */
	if (strstr(s, "\xef\xbb\xbf"))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			return false;
		if (c == ':' && s[i + 1] == ' ')
			return false;
		if (c == ' ' && s[i + 1] == '#')
			return false;
	}
	return resolve_plain(s, canon, sizeof(canon)) == SOPS_STR;
}

/* a multi-line string that a literal block scalar ("|") keeps exactly */
static bool yaml_literal_ok(const char *s)
{
	size_t n = strlen(s);
	if (n < 2 || s[n - 1] != '\n' || s[n - 2] == '\n' || s[0] == ' ' || s[0] == '\n')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\n') || c == 0x7f)
			return false;
		if (c == '\n' && s[i + 1] == ' ' && i + 1 < n - 1)
			return false; /* a later line starting with a space would change the indentation */
	}
	return true;
}

static void yaml_string(struct hbuf *b, const char *s)
{
	if (yaml_plain_ok(s))
		hbuf_addstr(b, s);
	else
		quote_json(b, s); /* a JSON string is a YAML double-quoted scalar */
}

static void indent_to(struct hbuf *b, int n)
{
	for (int i = 0; i < n; i++)
		hbuf_addstr(b, " ");
}

static void yaml_scalar(struct hbuf *b, const struct sops_node *n)
{
	switch (n->kind) {
	case SOPS_NULL:
		hbuf_addstr(b, "null");
		break;
	case SOPS_STR:
		yaml_string(b, n->text);
		break;
	case SOPS_FLOAT:
		hbuf_addstr(b, n->text);
		if (!strpbrk(n->text, ".eE"))
			hbuf_addstr(b, ".0"); /* stays a float when read back */
		break;
	default:
		hbuf_addstr(b, n->text);
	}
}

static void yaml_map(struct hbuf *b, const struct sops_node *m, int indent, bool first_inline);
static void yaml_list(struct hbuf *b, const struct sops_node *l, int indent);

/* the value of an entry whose "key:" (or "-") is written, at indent of the entry */
static void yaml_value(struct hbuf *b, const struct sops_node *v, int indent)
{
	if (v->kind == SOPS_MAP && v->n) {
		hbuf_addstr(b, "\n");
		yaml_map(b, v, indent + 4, false);
	} else if (v->kind == SOPS_LIST && v->n) {
		hbuf_addstr(b, "\n");
		yaml_list(b, v, indent + 4);
	} else if (v->kind == SOPS_MAP || v->kind == SOPS_LIST) {
		hbuf_addstr(b, v->kind == SOPS_MAP ? " {}\n" : " []\n");
	} else if (v->kind == SOPS_STR && strchr(v->text, '\n') && yaml_literal_ok(v->text)) {
		hbuf_addstr(b, " |\n");
		for (const char *p = v->text; *p;) {
			const char *nl = strchr(p, '\n');
			if (nl != p)
				indent_to(b, indent + 4);
			hbuf_append(b, p, (size_t)(nl - p) + 1);
			p = nl + 1;
		}
	} else {
		hbuf_addstr(b, " ");
		yaml_scalar(b, v);
		hbuf_addstr(b, "\n");
	}
}

static void yaml_map(struct hbuf *b, const struct sops_node *m, int indent, bool first_inline)
{
	for (size_t i = 0; i < m->n; i++) {
		if (i || !first_inline)
			indent_to(b, indent);
		yaml_string(b, m->items[i]->key);
		hbuf_addstr(b, ":");
		yaml_value(b, m->items[i], indent);
	}
}

static void yaml_list(struct hbuf *b, const struct sops_node *l, int indent)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct sops_node *v = l->items[i];
		indent_to(b, indent);
		if (v->kind == SOPS_MAP && v->n) {
			hbuf_addstr(b, "- ");
			yaml_map(b, v, indent + 2, true);
		} else {
			hbuf_addstr(b, "-");
			yaml_value(b, v, indent);
		}
	}
}

static void json_value(struct hbuf *b, const struct sops_node *v, int indent)
{
	switch (v->kind) {
	case SOPS_MAP:
	case SOPS_LIST:
		if (!v->n) {
			hbuf_addstr(b, v->kind == SOPS_MAP ? "{}" : "[]");
			break;
		}
		hbuf_addstr(b, v->kind == SOPS_MAP ? "{\n" : "[\n");
		for (size_t i = 0; i < v->n; i++) {
			indent_to(b, indent + 2);
			if (v->kind == SOPS_MAP) {
				quote_json(b, v->items[i]->key);
				hbuf_addstr(b, ": ");
			}
			json_value(b, v->items[i], indent + 2);
			hbuf_addstr(b, i + 1 < v->n ? ",\n" : "\n");
		}
		indent_to(b, indent);
		hbuf_addstr(b, v->kind == SOPS_MAP ? "}" : "]");
		break;
	case SOPS_STR:
		quote_json(b, v->text);
		break;
	case SOPS_NULL:
		hbuf_addstr(b, "null");
		break;
	case SOPS_FLOAT:
		hbuf_addstr(b, v->text);
		if (!strpbrk(v->text, ".eE"))
			hbuf_addstr(b, ".0");
		break;
	default:
		hbuf_addstr(b, v->text);
	}
}

int sops_tree_emit(const struct sops_node *root, enum sops_format fmt, char **out, size_t *out_len,
		   struct gerr *err)
{
	struct hbuf b;
	*out = NULL;
	if (!root || root->kind != SOPS_MAP)
		return gerr_set(err, "sops: the tree is not a map");
	hbuf_init(&b, SOPS_OUT_MAX);
	if (fmt == SOPS_JSON) {
		json_value(&b, root, 0);
		hbuf_addstr(&b, "\n");
	} else if (!root->n) {
		hbuf_addstr(&b, "{}\n");
	} else {
		yaml_map(&b, root, 0, false);
	}
	if (b.len >= SOPS_OUT_MAX - 1) {
		sodium_memzero(b.data, b.len);
		hbuf_release(&b);
		return gerr_set(err, "sops: output larger than %u bytes", SOPS_OUT_MAX);
	}
	*out = hbuf_detach(&b, out_len);
	return 0;
}

/* ---- AES-256-GCM values ---- */

static int b64_decode_std(const char *s, size_t n, uint8_t *out, size_t cap, size_t *len)
{
	const char *end = NULL;
	if (sodium_base642bin(out, cap, s, n, NULL, len, &end, sodium_base64_VARIANT_ORIGINAL) != 0 || end != s + n)
		return -1;
	return 0;
}

int sops__parse_enc(const char *s, struct sops__enc *out, struct gerr *err)
{
	static const char pre[] = "ENC[AES256_GCM,data:";
	memset(out, 0, sizeof(*out));
	size_t n = strlen(s);
	if (n < sizeof(pre) || memcmp(s, pre, sizeof(pre) - 1) != 0 || s[n - 1] != ']')
		return gerr_set(err, "not an ENC[AES256_GCM,…] value");
	const char *data = s + sizeof(pre) - 1;
	const char *iv = strstr(data, ",iv:");
	const char *tag = iv ? strstr(iv, ",tag:") : NULL;
	const char *type = tag ? strstr(tag, ",type:") : NULL;
	if (!iv || !tag || !type)
		return gerr_set(err, "malformed ENC[] value (data, iv, tag, type)");
	size_t dl = (size_t)(iv - data), il = (size_t)(tag - iv - 4), tl = (size_t)(type - tag - 5);
	size_t yl = (size_t)(s + n - 1 - (type + 6));
	if (yl == 0 || yl >= sizeof(out->type))
		return gerr_set(err, "malformed ENC[] value (type)");
	memcpy(out->type, type + 6, yl);
	out->type[yl] = '\0';
	out->data = xmalloc(dl / 4 * 3 + 3);
	size_t len = 0;
	if (b64_decode_std(data, dl, out->data, dl / 4 * 3 + 3, &out->data_len) < 0 ||
	    b64_decode_std(iv + 4, il, out->iv, sizeof(out->iv), &out->iv_len) < 0 || out->iv_len == 0 ||
	    b64_decode_std(tag + 5, tl, out->tag, sizeof(out->tag), &len) < 0 || len != SOPS_TAG_LEN) {
		free(out->data);
		out->data = NULL;
		return gerr_set(err, "malformed ENC[] value (base64)");
	}
	return 0;
}

/* decrypts v with key and aad: *plain owned (NUL-terminated; age_secret_free), -1 on failure */
static int gcm_open(const struct sops__enc *v, const uint8_t *key, const char *aad, char **plain)
{
	struct gcm_aes256_ctx ctx;
	uint8_t tag[SOPS_TAG_LEN];
	char *p = xmalloc(v->data_len + 1);
	gcm_aes256_set_key(&ctx, key);
	gcm_aes256_set_iv(&ctx, v->iv_len, v->iv);
	gcm_aes256_update(&ctx, strlen(aad), (const uint8_t *)aad);
	gcm_aes256_decrypt(&ctx, v->data_len, (uint8_t *)p, v->data);
	gcm_aes256_digest(&ctx, sizeof(tag), tag);
	sodium_memzero(&ctx, sizeof(ctx));
	if (!memeql_sec(tag, v->tag, sizeof(tag))) {
		age_secret_free(p, v->data_len + 1);
		*plain = NULL;
		return -1;
	}
	p[v->data_len] = '\0';
	*plain = p;
	return 0;
}

/* "ENC[AES256_GCM,…,type:TYPE]" of plain, owned */
static char *gcm_seal(const char *plain, const char *type, const uint8_t *key, const char *aad)
{
	struct gcm_aes256_ctx ctx;
	uint8_t iv[SOPS_IV_LEN], tag[SOPS_TAG_LEN];
	size_t n = strlen(plain);
	uint8_t *c = xmalloc(n + 1);
	randombytes_buf(iv, sizeof(iv));
	gcm_aes256_set_key(&ctx, key);
	gcm_aes256_set_iv(&ctx, sizeof(iv), iv);
	gcm_aes256_update(&ctx, strlen(aad), (const uint8_t *)aad);
	gcm_aes256_encrypt(&ctx, n, c, (const uint8_t *)plain);
	gcm_aes256_digest(&ctx, sizeof(tag), tag);
	sodium_memzero(&ctx, sizeof(ctx));
	size_t dl = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
	char *d64 = xmalloc(dl), i64[64], t64[32];
	sodium_bin2base64(d64, dl, c, n, sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(i64, sizeof(i64), iv, sizeof(iv), sodium_base64_VARIANT_ORIGINAL);
	sodium_bin2base64(t64, sizeof(t64), tag, sizeof(tag), sodium_base64_VARIANT_ORIGINAL);
	char *s = xasprintf("ENC[AES256_GCM,data:%s,iv:%s,tag:%s,type:%s]", d64, i64, t64, type);
	free(d64);
	free(c);
	return s;
}

/* ---- files ---- */

struct sops_file {
	struct sops_node *tree;
	uint8_t *key;               /* SOPS_KEY_LEN, sodium_malloc'd */
	char **recipients;
	size_t nrec;
	char *rule[4];              /* unencrypted_suffix, encrypted_suffix, encrypted_regex, unencrypted_regex */
	regex_t re[2];              /* compiled rule[2], rule[3] */
	bool mac_only_encrypted;
};

static const char *const rule_names[4] = { "unencrypted_suffix", "encrypted_suffix", "encrypted_regex",
					   "unencrypted_regex" };

static struct sops_file *file_alloc(void)
{
	struct sops_file *f = xcalloc(1, sizeof(*f));
	f->key = sodium_malloc(SOPS_KEY_LEN);
	BUG_ON(!f->key);
	return f;
}

void sops_file_free(struct sops_file *f)
{
	if (!f)
		return;
	sops_node_free(f->tree);
	sodium_free(f->key);
	for (size_t i = 0; i < f->nrec; i++)
		free(f->recipients[i]);
	free(f->recipients);
	for (int i = 0; i < 4; i++) {
		if (i >= 2 && f->rule[i])
			regfree(&f->re[i - 2]);
		free(f->rule[i]);
	}
	free(f);
}

/* sets the rules (copied) and compiles the regexes */
static int file_set_rules(struct sops_file *f, const char *const rules[4], struct gerr *err)
{
	int set = 0;
	for (int i = 0; i < 4; i++)
		if (rules[i] && *rules[i])
			set++;
	if (set > 1)
		return gerr_set(err, "sops: at most one of unencrypted_suffix, encrypted_suffix, encrypted_regex and "
				     "unencrypted_regex may be set");
	for (int i = 0; i < 4; i++) {
		if (!rules[i] || !*rules[i])
			continue;
		if (i >= 2 && regcomp(&f->re[i - 2], rules[i], REG_EXTENDED | REG_NOSUB) != 0)
			return gerr_set(err, "sops: %s: invalid regular expression '%.100s'", rule_names[i], rules[i]);
		f->rule[i] = xstrdup(rules[i]);
	}
	return 0;
}

static bool has_suffix(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && memcmp(s + a - b, suf, b) == 0;
}

/* sops.go shouldBeEncrypted, without the comment rules */
static bool should_encrypt(const struct sops_file *f, const char *const *path, int depth)
{
	bool enc = true;
	if (f->rule[0])
		for (int i = 0; i < depth; i++)
			if (has_suffix(path[i], f->rule[0]))
				enc = false;
	if (f->rule[1]) {
		enc = false;
		for (int i = 0; i < depth; i++)
			if (has_suffix(path[i], f->rule[1]))
				enc = true;
	}
	if (f->rule[3])
		for (int i = 0; i < depth; i++)
			if (regexec(&f->re[1], path[i], 0, NULL, 0) == 0)
				enc = false;
	if (f->rule[2]) {
		enc = false;
		for (int i = 0; i < depth; i++)
			if (regexec(&f->re[0], path[i], 0, NULL, 0) == 0)
				enc = true;
	}
	return enc;
}

struct walk {
	const struct sops_file *f;
	const char *path[SOPS_MAX_DEPTH + 2];
	int depth;
	crypto_hash_sha512_state mac;
	bool decrypt;
	struct gerr *err;
};

/* the additional data ("a:b:") and the dotted path ("a.b") of the value at w's path; -1 if too long */
static int path_strings(const struct walk *w, char *aad, size_t acap, char *dotted, size_t dcap)
{
	size_t a = 0, d = 0;
	aad[0] = dotted[0] = '\0';
	for (int i = 0; i < w->depth; i++) {
		int k = snprintf(aad + a, acap - a, "%s:", w->path[i]);
		if (k < 0 || (size_t)k >= acap - a)
			return -1;
		a += (size_t)k;
		k = snprintf(dotted + d, dcap - d, "%s%s", i ? "." : "", w->path[i]);
		if (k < 0 || (size_t)k >= dcap - d)
			return -1;
		d += (size_t)k;
	}
	if (!w->depth)
		snprintf(aad, acap, ":");
	return 0;
}

/* decrypts one ENC[] value into n (its kind and canonical text) */
static int decrypt_value(struct walk *w, struct sops_node *n, const char *aad, const char *where)
{
	struct sops__enc v;
	struct gerr e;
	char *plain = NULL, canon[400];
	if (sops__parse_enc(n->text, &v, &e) < 0)
		return gerr_set(w->err, "sops: %s: %s", where, e.msg);
	int rc = gcm_open(&v, w->f->key, aad, &plain);
	free(v.data);
	if (rc < 0)
		return gerr_set(w->err, "sops: %s: value corrupted (authentication failed)", where);
	enum sops_kind k = SOPS_STR;
	const char *text = plain;
	if (!strcmp(v.type, "int")) {
		char *end;
		errno = 0;
		long long x = strtoll(plain, &end, 10);
		if (errno || *end || end == plain)
			goto bad;
		snprintf(canon, sizeof(canon), "%lld", x);
		k = SOPS_INT;
		text = canon;
	} else if (!strcmp(v.type, "float")) {
		char *end;
		double d = strtod(plain, &end);
		if (*end || end == plain || format_float(d, canon, sizeof(canon)) < 0)
			goto bad;
		k = SOPS_FLOAT;
		text = canon;
	} else if (!strcmp(v.type, "bool")) {
		static const char *const t[] = { "1", "t", "T", "TRUE", "true", "True" };
		static const char *const fl[] = { "0", "f", "F", "FALSE", "false", "False" };
		text = NULL;
		for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
			if (!strcmp(plain, t[i]))
				text = "true";
			if (!strcmp(plain, fl[i]))
				text = "false";
		}
		if (!text)
			goto bad;
		k = SOPS_BOOL;
	} else if (strcmp(v.type, "str") && strcmp(v.type, "bytes") && strcmp(v.type, "time")) {
		age_secret_free(plain, 0);
		return gerr_set(w->err, "sops: %s: unknown value type '%s'", where, v.type);
	}
	char *nt = xstrdup(text);
	age_secret_free(n->text, 0);
	n->text = nt;
	n->kind = k;
	age_secret_free(plain, 0);
	sodium_memzero(canon, sizeof(canon));
	return 0;
bad:
	age_secret_free(plain, 0);
	return gerr_set(w->err, "sops: %s: not a valid %s", where, v.type);
}

static int walk_node(struct walk *w, struct sops_node *n)
{
	if (n->kind == SOPS_MAP || n->kind == SOPS_LIST) {
		if (w->depth > SOPS_MAX_DEPTH)
			return gerr_set(w->err, "sops: nesting deeper than %d levels", SOPS_MAX_DEPTH);
		for (size_t i = 0; i < n->n; i++) {
			if (n->kind == SOPS_MAP)
				w->path[w->depth++] = n->items[i]->key;
			int rc = walk_node(w, n->items[i]);
			if (n->kind == SOPS_MAP)
				w->depth--;
			if (rc < 0)
				return rc;
		}
		return 0;
	}
	if (n->kind == SOPS_NULL)
		return 0;
	bool enc = should_encrypt(w->f, w->path, w->depth);
	char aad[4096], where[4096];
	if (path_strings(w, aad, sizeof(aad), where, sizeof(where)) < 0)
		return gerr_set(w->err, "sops: a path of keys longer than %zu bytes", sizeof(aad) - 1);
	if (w->decrypt && enc) {
		if (n->kind != SOPS_STR)
			return gerr_set(w->err, "sops: %s: the value is not encrypted", where);
		if (*n->text && decrypt_value(w, n, aad, where) < 0)
			return -1;
	}
	if (!w->f->mac_only_encrypted || enc) {
		const char *bytes = scalar_bytes(n);
		crypto_hash_sha512_update(&w->mac, (const uint8_t *)bytes, strlen(bytes));
	}
	if (!w->decrypt && enc && *n->text) {
		char *s = gcm_seal(scalar_bytes(n), kind_type(n->kind), w->f->key, aad);
		age_secret_free(n->text, 0);
		n->text = s;
		n->kind = SOPS_STR;
	}
	return 0;
}

/* walks root (decrypting or encrypting in place) and gives the MAC in upper-case hex */
static int walk_tree(const struct sops_file *f, struct sops_node *root, bool decrypt, char mac_hex[129],
		     struct gerr *err)
{
	struct walk *w = xcalloc(1, sizeof(*w));
	uint8_t mac[crypto_hash_sha512_BYTES];
	int rc;
	w->f = f;
	w->decrypt = decrypt;
	w->err = err;
	crypto_hash_sha512_init(&w->mac);
	if (f->mac_only_encrypted)
		crypto_hash_sha512_update(&w->mac, mac_only_encrypted_init, sizeof(mac_only_encrypted_init));
	rc = walk_node(w, root);
	crypto_hash_sha512_final(&w->mac, mac);
	sodium_bin2hex(mac_hex, 129, mac, sizeof(mac));
	for (char *p = mac_hex; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	free(w);
	return rc;
}

/* the text of the scalar entry key of map, NULL if absent or not a scalar */
static const char *meta_str(const struct sops_node *map, const char *key)
{
	const struct sops_node *n = sops_map_get(map, key);
	return n && n->text && n->kind != SOPS_MAP && n->kind != SOPS_LIST ? n->text : NULL;
}

static void add_age_list(const struct sops_node *list, const struct sops_node ***entries, size_t *n)
{
	if (!list || list->kind != SOPS_LIST)
		return;
	for (size_t i = 0; i < list->n; i++) {
		*entries = xrealloc(*entries, (*n + 1) * sizeof(**entries));
		(*entries)[(*n)++] = list->items[i];
	}
}

int sops_decrypt(const char *text, size_t len, enum sops_format fmt, const struct age_identities *ids,
		 struct sops_file **out, struct gerr *err)
{
	struct sops_node *root = NULL, *meta = NULL;
	struct sops_file *f = NULL;
	const struct sops_node **ages = NULL;
	size_t nages = 0;
	char mac_hex[129];
	int rc = -1;
	*out = NULL;
	if (sodium_init() < 0)
		return gerr_set(err, "sops: libsodium could not be initialised");
	if (parse_doc(text, len, fmt, &root, err) < 0)
		return -1;
	meta = map_detach(root, "sops");
	if (!meta || meta->kind != SOPS_MAP) {
		gerr_set(err, "sops: not a SOPS file (no 'sops' metadata)");
		goto out;
	}
	f = file_alloc();
	const char *rules[4];
	for (int i = 0; i < 4; i++)
		rules[i] = meta_str(meta, rule_names[i]);
	if (file_set_rules(f, rules, err) < 0)
		goto out;
	if (meta_str(meta, "encrypted_comment_regex") || meta_str(meta, "unencrypted_comment_regex")) {
		gerr_set(err, "sops: encrypted_comment_regex and unencrypted_comment_regex are not supported");
		goto out;
	}
	const char *moe = meta_str(meta, "mac_only_encrypted");
	f->mac_only_encrypted = moe && !strcmp(moe, "true");
	add_age_list(sops_map_get(meta, "age"), &ages, &nages);
	const struct sops_node *groups = sops_map_get(meta, "key_groups");
	if (groups && groups->kind == SOPS_LIST) {
		const char *shamir = meta_str(meta, "shamir_threshold");
		if (groups->n > 1 && shamir && strcmp(shamir, "1") != 0) {
			gerr_set(err, "sops: key groups with a Shamir threshold are not supported");
			goto out;
		}
		for (size_t i = 0; i < groups->n; i++)
			add_age_list(sops_map_get(groups->items[i], "age"), &ages, &nages);
	}
	if (!nages) {
		gerr_set(err, "sops: the file has no age recipient (other key types are not supported)");
		goto out;
	}
	bool have_key = false;
	struct gerr last = { "" };
	for (size_t i = 0; i < nages; i++) {
		const char *rcp = meta_str(ages[i], "recipient"), *enc = meta_str(ages[i], "enc");
		if (!rcp || !enc) {
			gerr_set(err, "sops: sops.age[%zu]: no recipient or enc", i);
			goto out;
		}
		f->recipients = xrealloc(f->recipients, (f->nrec + 1) * sizeof(*f->recipients));
		f->recipients[f->nrec++] = xstrdup(rcp);
		if (have_key)
			continue;
		uint8_t *dk = NULL;
		size_t dkl = 0;
		struct gerr e;
		if (age_decrypt(enc, strlen(enc), ids, &dk, &dkl, &e) == 0) {
			if (dkl == SOPS_KEY_LEN) {
				memcpy(f->key, dk, SOPS_KEY_LEN);
				have_key = true;
			} else {
				gerr_set(&last, "sops: the data key for %s is not 32 bytes", rcp);
			}
			age_secret_free(dk, dkl);
		} else if (!strstr(e.msg, "no identity matches")) {
			gerr_set(&last, "sops: the data key for %s: %s", rcp, e.msg);
		}
	}
	if (!have_key) {
		if (last.msg[0])
			gerr_set(err, "%s", last.msg);
		else
			gerr_set(err, "sops: no age recipient of the file matches the identity");
		goto out;
	}
	const char *lm = meta_str(meta, "lastmodified"), *mac = meta_str(meta, "mac");
	if (!lm || !mac) {
		gerr_set(err, "sops: no %s in the metadata: the file cannot be checked", lm ? "mac" : "lastmodified");
		goto out;
	}
	f->tree = root;
	root = NULL;
	if (walk_tree(f, f->tree, true, mac_hex, err) < 0)
		goto out;
	struct sops__enc v;
	struct gerr e;
	char *file_mac = NULL;
	if (sops__parse_enc(mac, &v, &e) < 0) {
		gerr_set(err, "sops: sops.mac: %s", e.msg);
		goto out;
	}
	int ok = gcm_open(&v, f->key, lm, &file_mac);
	free(v.data);
	if (ok < 0) {
		gerr_set(err, "sops: MAC mismatch: the MAC or lastmodified was changed after the file was encrypted");
		goto out;
	}
	ok = strcmp(file_mac, mac_hex) == 0;
	free(file_mac);
	if (!ok) {
		gerr_set(err, "sops: MAC mismatch: the file was changed after it was encrypted");
		goto out;
	}
	*out = f;
	f = NULL;
	rc = 0;
out:
	free(ages);
	sops_node_free(meta);
	sops_node_free(root);
	sops_file_free(f);
	return rc;
}

static int set_recipients(struct sops_file *f, const char *const *recipients, size_t n, struct gerr *err)
{
	uint8_t pub[AGE_KEY_LEN];
	if (!n)
		return gerr_set(err, "sops: no age recipient");
	for (size_t i = 0; i < n; i++)
		if (age_recipient_parse(recipients[i], pub, err) < 0)
			return -1;
	for (size_t i = 0; i < f->nrec; i++)
		free(f->recipients[i]);
	f->recipients = xrealloc(f->recipients, n * sizeof(*f->recipients));
	for (size_t i = 0; i < n; i++)
		f->recipients[i] = xstrdup(recipients[i]);
	f->nrec = n;
	return 0;
}

int sops_file_new(struct sops_node *tree, const char *const *recipients, size_t n, const struct sops_rules *rules,
		  struct sops_file **out, struct gerr *err)
{
	struct sops_file *f;
	const char *r[4] = { "_unencrypted", NULL, NULL, NULL };
	*out = NULL;
	if (sodium_init() < 0) {
		sops_node_free(tree);
		return gerr_set(err, "sops: libsodium could not be initialised");
	}
	if (!tree || tree->kind != SOPS_MAP) {
		sops_node_free(tree);
		return gerr_set(err, "sops: the tree is not a map");
	}
	f = file_alloc();
	f->tree = tree;
	if (rules && (rules->unencrypted_suffix || rules->encrypted_suffix || rules->encrypted_regex ||
		      rules->unencrypted_regex)) {
		r[0] = rules->unencrypted_suffix;
		r[1] = rules->encrypted_suffix;
		r[2] = rules->encrypted_regex;
		r[3] = rules->unencrypted_regex;
	}
	if (file_set_rules(f, r, err) < 0 || set_recipients(f, recipients, n, err) < 0) {
		sops_file_free(f);
		return -1;
	}
	randombytes_buf(f->key, SOPS_KEY_LEN);
	*out = f;
	return 0;
}

struct sops_node *sops_file_tree(struct sops_file *f)
{
	return f->tree;
}

void sops_file_set_tree(struct sops_file *f, struct sops_node *tree)
{
	sops_node_free(f->tree);
	f->tree = tree;
}

const char *const *sops_file_recipients(const struct sops_file *f, size_t *n)
{
	*n = f->nrec;
	return (const char *const *)f->recipients;
}

int sops_file_set_recipients(struct sops_file *f, const char *const *recipients, size_t n, struct gerr *err)
{
	return set_recipients(f, recipients, n, err);
}

void sops_file_rotate_key(struct sops_file *f)
{
	randombytes_buf(f->key, SOPS_KEY_LEN);
}

int sops_encrypt(const struct sops_file *f, enum sops_format fmt, int64_t now_unix, char **out, size_t *out_len,
		 struct gerr *err)
{
	struct sops_node *root = NULL, *meta, *age;
	char mac_hex[129], lm[32];
	struct tm tm;
	time_t t = now_unix ? (time_t)now_unix : time(NULL);
	int rc = -1;
	*out = NULL;
	if (!f->tree || f->tree->kind != SOPS_MAP)
		return gerr_set(err, "sops: the tree is not a map");
	if (sops_map_get(f->tree, "sops"))
		return gerr_set(err, "sops: the tree has a top-level 'sops' key (reserved for the metadata)");
	if (!gmtime_r(&t, &tm) || !strftime(lm, sizeof(lm), "%Y-%m-%dT%H:%M:%SZ", &tm))
		return gerr_set(err, "sops: the time cannot be formatted");
	root = node_copy(f->tree);
	if (walk_tree(f, root, false, mac_hex, err) < 0)
		goto out;
	meta = sops_node_new(SOPS_MAP, "sops", NULL);
	age = sops_node_new(SOPS_LIST, "age", NULL);
	sops_node_append(meta, age);
	for (size_t i = 0; i < f->nrec; i++) {
		uint8_t *enc = NULL;
		size_t elen = 0;
		const char *r = f->recipients[i];
		if (age_encrypt(f->key, SOPS_KEY_LEN, &r, 1, true, &enc, &elen, err) < 0) {
			sops_node_free(meta);
			goto out;
		}
		struct sops_node *e = sops_node_new(SOPS_MAP, NULL, NULL);
		sops_map_set_str(e, "recipient", r);
		sops_map_set_str(e, "enc", (const char *)enc);
		free(enc);
		sops_node_append(age, e);
	}
	sops_map_set_str(meta, "lastmodified", lm);
	char *mac = gcm_seal(mac_hex, "str", f->key, lm);
	sops_map_set_str(meta, "mac", mac);
	free(mac);
	for (int i = 0; i < 4; i++)
		if (f->rule[i])
			sops_map_set_str(meta, rule_names[i], f->rule[i]);
	if (f->mac_only_encrypted)
		sops_node_append(meta, sops_node_new(SOPS_BOOL, "mac_only_encrypted", "true"));
	sops_map_set_str(meta, "version", SOPS_VERSION);
	sops_node_append(root, meta);
	rc = sops_tree_emit(root, fmt, out, out_len, err);
out:
	sops_node_free(root);
	return rc;
}
