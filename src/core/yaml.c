/*
 * yaml.c — the YAML tree of a spec: built from libfyaml's events (keeping
 * line:column of every node, for diagnostics), freed, and read by the rest
 * of gantry through the read-only view of spec.h (struct spec_node). The
 * tree's type and its lifetime rule are in core/spec-int.h.
 */
#include "common.h"
#include "core/spec.h"
#include "core/spec-int.h"
#include "util/parse.h"
#include <ctype.h>
#include <jansson.h>
#include <libfyaml.h>

/* ------------------------------------------------------------------------ */
/* the YAML tree                                                            */

void spec__ynode_free(struct ynode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->nkids; i++)
		spec__ynode_free(n->kids[i]);
	free(n->kids);
	free(n->text);
	free(n);
}

static void ynode_add(struct ynode *parent, struct ynode *kid)
{
	/* grow by doubling: a long flow sequence must not cost O(n^2) */
	if (!(parent->nkids & (parent->nkids - 1)))
		parent->kids = xrealloc(parent->kids,
					(parent->nkids ? parent->nkids * 2 : 1) * sizeof(*parent->kids));
	parent->kids[parent->nkids++] = kid;
}

/* ------------------------------------------------------------------------ */
/* parsing YAML into the tree                                               */

static void fy_quiet_output(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
	(void)diag, (void)user, (void)buf, (void)len;
}

static struct ynode *ynode_new(enum ytype t, const struct fy_mark *m)
{
	struct ynode *n = xcalloc(1, sizeof(*n));
	n->type = t;
	if (m) {
		n->line = m->line + 1;
		n->col = m->column + 1;
	}
	return n;
}



/*
 * A spec is UTF-8 text: refuse NUL bytes and invalid UTF-8. And refuse YAML
 * directives (a line starting with '%'): gantry has no use for %YAML/%TAG,
 * and libfyaml 0.7.12 can loop forever scanning a malformed one (found by
 * fuzz_spec). Every YAML line break counts (\n, \r, NEL, LS, PS).
 */
static int check_text(struct walker *w, const char *buf, size_t len)
{
	const unsigned char *s = (const unsigned char *)buf;
	size_t i = 0;
	int line = 1, col = 1;
	bool bol = true;

	if (len >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3))
		i = 3; /* a byte order mark */
	while (i < len) {
		size_t n = utf8_seq_len(s + i, len - i);
		if (!s[i] || !n) {
			spec__report_at(w, line, col, s[i] ? "the file is not valid UTF-8 text" :
						     "the file contains a NUL byte (a spec is text)");
			return -1;
		}
		if (bol && s[i] == '%') {
			spec__report_at(w, line, 1, "YAML directives ('%%...') are not supported");
			return -1;
		}
		bol = s[i] == '\n' || s[i] == '\r' || (n == 2 && s[i] == 0xC2 && s[i + 1] == 0x85) ||
		      (n == 3 && s[i] == 0xE2 && s[i + 1] == 0x80 && (s[i + 2] == 0xA8 || s[i + 2] == 0xA9));
		col++;
		if (s[i] == '\n' || (s[i] == '\r' && (i + 1 >= len || s[i + 1] != '\n'))) {
			line++;
			col = 1;
		}
		i += n;
	}
	return 0;
}

/*
 * Builds the tree of buf. Returns the root (owned by the caller; NULL for an
 * empty document) and 0, or -1 after reporting libfyaml's errors.
 */
int spec__yaml_parse(struct walker *w, const char *buf, size_t len, struct ynode **rootp)
{
	struct fy_diag_cfg dcfg;
	struct fy_diag *diag = NULL;
	struct fy_parse_cfg pcfg = { 0 };
	struct fy_parser *fyp = NULL;
	struct fy_event *ev;
	struct ynode *stack[SPEC_MAX_DEPTH + 1], *root = NULL;
	int depth = 0, ndocs = 0, ret = -1;
	bool failed = false;

	*rootp = NULL;
	if (check_text(w, buf, len) < 0)
		goto out;
	fy_diag_cfg_default(&dcfg);
	dcfg.fp = NULL;
	dcfg.output_fn = fy_quiet_output;
	dcfg.level = FYET_ERROR;
	dcfg.colorize = false;
	diag = fy_diag_create(&dcfg);
	if (!diag) {
		spec__report_at(w, 0, 0, "cannot create the YAML parser");
		goto out;
	}
	fy_diag_set_collect_errors(diag, true);
	pcfg.flags = FYPCF_QUIET;
	pcfg.diag = diag;
	fyp = fy_parser_create(&pcfg);
	if (!fyp || fy_parser_set_string(fyp, buf, len)) {
		spec__report_at(w, 0, 0, "cannot create the YAML parser");
		goto out;
	}
	while (!failed && (ev = fy_parser_parse(fyp))) {
		const struct fy_mark *m = fy_event_start_mark(ev);
		struct ynode *n = NULL;
		size_t tl = 0;
		const char *t;

		switch (ev->type) {
		case FYET_DOCUMENT_START:
			if (++ndocs > 1) {
				spec__report_at(w, m ? m->line + 1 : 0, m ? m->column + 1 : 0,
					  "more than one YAML document (remove the '---')");
				failed = true;
			}
			break;
		case FYET_SCALAR: {
			enum fy_scalar_style style = ev->scalar.value ? fy_token_scalar_style(ev->scalar.value) : FYSS_PLAIN;
			n = ynode_new(Y_SCALAR, m);
			if (style == FYSS_SINGLE_QUOTED) {
				const struct fy_mark *ts = fy_token_start_mark(ev->scalar.value);
				const struct fy_mark *te = fy_token_end_mark(ev->scalar.value);
				if (ts && te && ts->input_pos <= te->input_pos && te->input_pos <= len)
					n->text = yaml_single_quoted(buf + ts->input_pos, te->input_pos - ts->input_pos);
				else
					n->text = xstrdup("");
			} else {
				t = ev->scalar.value ? fy_token_get_text(ev->scalar.value, &tl) : NULL;
				n->text = xstrndup(t ? t : "", t ? tl : 0);
			}
			/* "!!str 1" is a string: never a null */
			n->plain = style == FYSS_PLAIN && !ev->scalar.tag;
			/* libfyaml marks a quoted scalar at its first character: point at the quote */
			if (n->col > 1 && (style == FYSS_SINGLE_QUOTED || style == FYSS_DOUBLE_QUOTED))
				n->col--;
			break;
		}
		case FYET_ALIAS:
			n = ynode_new(Y_ALIAS, m);
			t = ev->alias.anchor ? fy_token_get_text(ev->alias.anchor, &tl) : NULL;
			n->text = xstrndup(t ? t : "", t ? tl : 0);
			break;
		case FYET_MAPPING_START:
		case FYET_SEQUENCE_START:
			n = ynode_new(ev->type == FYET_MAPPING_START ? Y_MAP : Y_SEQ, m);
			break;
		case FYET_MAPPING_END:
		case FYET_SEQUENCE_END:
			if (depth > 0)
				depth--;
			break;
		default:
			break;
		}
		if (n && depth > 0) {
			struct ynode *p = stack[depth - 1];
			if (p->type == Y_MAP ? p->nkids >= 2 * SPEC_MAX_KEYS : p->nkids >= SPEC_MAX_ITEMS) {
				spec__report_at(w, p->line, p->col, "too many entries (at most %d)",
					  p->type == Y_MAP ? SPEC_MAX_KEYS : SPEC_MAX_ITEMS);
				failed = true;
			}
		}
		if (n) {
			if (depth > 0)
				ynode_add(stack[depth - 1], n);
			else if (!root)
				root = n;
			else
				spec__ynode_free(n); /* cannot happen: one root per document */
			if (n->type == Y_MAP || n->type == Y_SEQ) {
				if (depth >= SPEC_MAX_DEPTH) {
					spec__report_at(w, n->line, n->col, "nesting deeper than %d levels", SPEC_MAX_DEPTH);
					failed = true;
				} else {
					stack[depth++] = n;
				}
			}
		}
		fy_parser_event_free(fyp, ev);
	}
	if (!failed && fy_parser_get_stream_error(fyp)) {
		void *it = NULL;
		struct fy_diag_error *e;
		int n = 0;
		while ((e = fy_diag_errors_iterate(diag, &it))) {
			char src[256];
			/* libfyaml's marks are 1-based here */
			if (w->diags)
				diags_add(w->diags, w->file, e->line, e->column, NULL,
					  diag_source_line(w->src, w->srclen, e->line, src, sizeof(src)), "invalid YAML: %s",
					  e->msg ? e->msg : "syntax error");
			w->nerr++;
			n++;
		}
		if (!n)
			spec__report_at(w, 0, 0, "invalid YAML");
		failed = true;
	}
	if (failed)
		goto out;
	*rootp = root;
	root = NULL;
	ret = 0;
out:
	spec__ynode_free(root);
	if (fyp)
		fy_parser_destroy(fyp);
	if (diag)
		fy_diag_destroy(diag);
	return ret;
}

/* ------------------------------------------------------------------------ */
/* the read-only view (spec.h)                                              */

static const struct ynode *node_y(const struct spec_node *n)
{
	return (const struct ynode *)(const void *)n;
}

const struct spec_node *spec_root(const struct spec *spec)
{
	return spec ? (const struct spec_node *)spec->doc : NULL;
}

enum spec_node_kind spec_node_kind(const struct spec_node *n)
{
	const struct ynode *y = node_y(n);
	if (!y || y_is_null(y))
		return SPEC_NODE_NULL;
	return y->type == Y_SCALAR ? SPEC_NODE_SCALAR : y->type == Y_MAP ? SPEC_NODE_MAP
		: y->type == Y_SEQ ? SPEC_NODE_SEQ : SPEC_NODE_OTHER;
}

const char *spec_node_text(const struct spec_node *n)
{
	return node_y(n) && node_y(n)->type == Y_SCALAR ? node_y(n)->text : NULL;
}

bool spec_node_quoted(const struct spec_node *n)
{
	return node_y(n) && node_y(n)->type == Y_SCALAR && !node_y(n)->plain;
}

size_t spec_node_count(const struct spec_node *n)
{
	const struct ynode *y = node_y(n);
	return !y ? 0 : y->type == Y_MAP ? y->nkids / 2 : y->type == Y_SEQ ? y->nkids : 0;
}

const struct spec_node *spec_node_key(const struct spec_node *n, size_t i)
{
	const struct ynode *y = node_y(n);
	return y && y->type == Y_MAP && 2 * i + 1 < y->nkids ? (const struct spec_node *)y->kids[2 * i] : NULL;
}

const struct spec_node *spec_node_item(const struct spec_node *n, size_t i)
{
	const struct ynode *y = node_y(n);
	if (y && y->type == Y_MAP && 2 * i + 1 < y->nkids)
		return (const struct spec_node *)y->kids[2 * i + 1];
	return y && y->type == Y_SEQ && i < y->nkids ? (const struct spec_node *)y->kids[i] : NULL;
}

const struct spec_node *spec_node_get(const struct spec_node *map, const char *key)
{
	return (const struct spec_node *)y_lookup(node_y(map), key, NULL);
}

void spec_node_pos(const struct spec_node *n, int *line, int *col)
{
	*line = node_y(n) ? node_y(n)->line : 0;
	*col = node_y(n) ? node_y(n)->col : 0;
}


/* the YAML node as JSON: plain integers become numbers, other scalars strings */
json_t *spec_node_to_json(const struct spec_node *n)
{
	json_t *o;
	switch (spec_node_kind(n)) {
	case SPEC_NODE_SCALAR: {
		const char *t = spec_node_text(n);
		char *end;
		long long v;
		if (!spec_node_quoted(n) && *t && (isdigit((unsigned char)*t) || *t == '-')) {
			errno = 0;
			v = strtoll(t, &end, 10);
			if (!*end && !errno)
				return json_integer(v);
		}
		return json_string(t);
	}
	case SPEC_NODE_MAP:
		o = json_object();
		for (size_t i = 0; i < spec_node_count(n); i++)
			if (spec_node_text(spec_node_key(n, i)))
				json_object_set_new(o, spec_node_text(spec_node_key(n, i)),
						    spec_node_to_json(spec_node_item(n, i)));
		return o;
	case SPEC_NODE_SEQ:
		o = json_array();
		for (size_t i = 0; i < spec_node_count(n); i++)
			json_array_append_new(o, spec_node_to_json(spec_node_item(n, i)));
		return o;
	default:
		return json_null();
	}
}
