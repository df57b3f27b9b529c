/*
 * diag.c — collected diagnostics, printed once, compiler style:
 *
 *   FILE:LINE:COL: error: PATH: MESSAGE
 *     12 |       max_surge: 25 %
 *        |                  ^
 */
#include "common.h"
#include "core/diag.h"

/* past this many, more diagnostics only add noise (and memory, under a fuzzer) */
#define DIAGS_MAX 200
/* a source line longer than this is cut in the excerpt */
#define SOURCE_MAX 200

void diags_add(struct diags *d, const char *file, int line, int col, const char *path,
	       const char *source_line, const char *fmt, ...)
{
	struct diag *g;
	va_list ap;
	char *msg = NULL;

	if (!d || d->n >= DIAGS_MAX)
		return;
	if (d->n == DIAGS_MAX - 1) {
		/* the last slot says that the list was cut */
		msg = xstrdup("too many errors, stopping here");
		path = NULL;
		source_line = NULL;
		line = col = 0;
	} else {
		va_start(ap, fmt);
		if (vasprintf(&msg, fmt, ap) < 0)
			msg = NULL;
		va_end(ap);
		if (!msg)
			msg = xstrdup("(out of memory formatting a diagnostic)");
	}
	d->items = xrealloc(d->items, (d->n + 1) * sizeof(*d->items));
	g = &d->items[d->n++];
	g->file = xstrdup(file ? file : "-");
	g->line = line > 0 ? line : 0;
	g->col = col > 0 ? col : 0;
	g->path = path && *path ? xstrdup(path) : NULL;
	g->message = msg;
	g->source = source_line ? xstrndup(source_line, SOURCE_MAX) : NULL;
}

const char *diag_source_line(const char *src, size_t len, int line, char *buf, size_t bufsz)
{
	const char *s = src, *end, *e;

	if (!src || line <= 0 || !bufsz)
		return NULL;
	end = src + len; /* not before the check: NULL + 0 is undefined */
	for (int l = 1; l < line; l++) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		if (!nl)
			return NULL;
		s = nl + 1;
	}
	if (s >= end)
		return NULL;
	e = memchr(s, '\n', (size_t)(end - s));
	if (!e)
		e = end;
	if ((size_t)(e - s) >= bufsz)
		e = s + bufsz - 1;
	memcpy(buf, s, (size_t)(e - s));
	buf[e - s] = 0;
	return buf;
}

/* the caret line keeps the source's tabs so the caret lands under the column */
static void print_caret(FILE *f, const char *src, int col)
{
	int c = 1;
	const unsigned char *s = (const unsigned char *)src;

	while (c < col && *s) {
		fputc(*s == '\t' ? '\t' : ' ', f);
		s++;
		/* a column counts characters: skip UTF-8 continuation bytes */
		while ((*s & 0xC0) == 0x80)
			s++;
		c++;
	}
	fputs("^\n", f);
}

void diags_print(const struct diags *d, FILE *f)
{
	for (size_t i = 0; i < d->n; i++) {
		const struct diag *g = &d->items[i];

		if (g->line > 0)
			fprintf(f, "%s:%d:%d: error: ", g->file, g->line, g->col ? g->col : 1);
		else
			fprintf(f, "%s: error: ", g->file);
		if (g->path)
			fprintf(f, "%s: ", g->path);
		fprintf(f, "%s\n", g->message);
		if (g->source && g->line > 0) {
			char num[16];
			int w = snprintf(num, sizeof(num), "%d", g->line);
			fprintf(f, " %s | ", num);
			for (const char *s = g->source; *s && *s != '\n' && *s != '\r'; s++)
				fputc(*s, f);
			fputc('\n', f);
			if (g->col > 0) {
				fprintf(f, " %*s | ", w, "");
				print_caret(f, g->source, g->col);
			}
		}
	}
}

void diags_release(struct diags *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->items[i].file);
		free(d->items[i].path);
		free(d->items[i].message);
		free(d->items[i].source);
	}
	free(d->items);
	d->items = NULL;
	d->n = 0;
}

/* Levenshtein distance, capped: anything above limit is returned as limit + 1 */
static size_t edit_distance(const char *a, const char *b, size_t limit)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t row[65], i, j;

	if (la > 64 || lb > 64)
		return limit + 1;
	if ((la > lb ? la - lb : lb - la) > limit)
		return limit + 1;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
			size_t best = diag + cost;
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

const char *diag_suggest(const char *word, const char *const *candidates, size_t n)
{
	const char *best = NULL;
	size_t best_d;

	if (!word || !*word)
		return NULL;
	/* two edits turn any short word into any other: be stricter there */
	best_d = strlen(word) <= 3 ? 2 : 3;
	for (size_t i = 0; i < n; i++) {
		size_t dist;
		if (!candidates[i])
			continue;
		dist = edit_distance(word, candidates[i], best_d - 1);
		/* a one-letter word is "close" to every short key: demand a real match */
		if (dist < best_d && dist < strlen(candidates[i])) {
			best_d = dist;
			best = candidates[i];
		}
	}
	if (!best && strlen(word) >= 3) {
		/* "prod" for "production": a unique prefix is a good guess too */
		size_t hits = 0, wl = strlen(word);
		for (size_t i = 0; i < n; i++)
			if (candidates[i] && !strncmp(candidates[i], word, wl)) {
				best = candidates[i];
				hits++;
			}
		if (hits != 1)
			best = NULL;
	}
	return best;
}
