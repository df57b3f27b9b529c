/*
 * files.c — a migrations directory: golang-migrate's file names, each
 * file's SHA-256 and markers. No database here (the parser is fuzzed:
 * fuzz/fuzz_migrate_names.c).
 */
#include "common.h"
#include "migrate/migrate.h"
#include <inttypes.h>
#include <dirent.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>

int mig_parse_name(const char *name, int64_t *version, enum mig_dir *dir,
		   char **desc, struct gerr *err)
{
	const char *p = name, *us, *dot_ext, *dot_dir;
	int64_t v = 0;
	size_t dlen;

	if (!*p || *p < '0' || *p > '9')
		return gerr_set(err, "%s: not a migration file name (NNN_name.up.sql)", name);
	while (*p >= '0' && *p <= '9') {
		if (v > (INT64_MAX - (*p - '0')) / 10)
			return gerr_set(err, "%s: version too large (at most %" PRId64 ")", name, INT64_MAX);
		v = v * 10 + (*p - '0');
		p++;
	}
	if (*p != '_')
		return gerr_set(err, "%s: no '_' after the version (NNN_name.up.sql)", name);
	us = p;
	/*
	 * golang-migrate: `(.*)\.(down|up)\.(.*)$` is greedy: the direction is
	 * the last ".up." or ".down." whose extension follows; scan from the end.
	 */
	dot_dir = NULL;
	for (dot_ext = name + strlen(name); dot_ext > us; dot_ext--) {
		if (*dot_ext != '.')
			continue;
		if (dot_ext - us >= 3 && !strncmp(dot_ext - 3, ".up", 3)) {
			dot_dir = dot_ext - 3;
			*dir = MIG_UP;
			break;
		}
		if (dot_ext - us >= 5 && !strncmp(dot_ext - 5, ".down", 5)) {
			dot_dir = dot_ext - 5;
			*dir = MIG_DOWN;
			break;
		}
	}
	/* us is '_', so a match starts at us + 1 or later */
	if (!dot_dir || dot_dir <= us)
		return gerr_set(err, "%s: no .up. or .down. in the name (NNN_name.up.sql)", name);
	dlen = (size_t)(dot_dir - (us + 1));
	*version = v;
	if (desc)
		*desc = xstrndup(us + 1, dlen);
	return 0;
}

/* the file name looks like a migration's (so a bad one is an error, not skipped) */
static bool looks_like_migration(const char *name)
{
	size_t n = strlen(name);
	if (!n || name[0] < '0' || name[0] > '9')
		return false;
	return strstr(name, ".up.") || strstr(name, ".down.") ||
	       (n > 3 && !strcmp(name + n - 3, ".up")) ||
	       (n > 5 && !strcmp(name + n - 5, ".down"));
}

unsigned mig_markers(const char *text, size_t len)
{
	unsigned m = 0;
	size_t i = 0;

	while (i < len) {
		size_t e = i, s;
		while (e < len && text[e] != '\n')
			e++;
		s = i;
		while (s < e && (text[s] == ' ' || text[s] == '\t' || text[s] == '\r'))
			s++;
		if (s == e) { /* blank line: still the leading block */
			i = e + 1;
			continue;
		}
		if (e - s < 2 || text[s] != '-' || text[s + 1] != '-')
			break;
		s += 2;
		while (s < e && (text[s] == ' ' || text[s] == '\t'))
			s++;
#define MARK(str, bit) \
	if ((size_t)(e - s) >= sizeof(str) - 1 && !strncmp(text + s, str, sizeof(str) - 1)) \
		m |= bit;
		MARK("gantry:contract", MIG_MARK_CONTRACT)
		MARK("gantry:irreversible", MIG_MARK_IRREVERSIBLE)
		MARK("gantry:no-transaction", MIG_MARK_NO_TX)
#undef MARK
		i = e + 1;
	}
	return m;
}

void mig_sha256_hex(const void *p, size_t n, char out[65])
{
	unsigned char h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(h, p, n);
	sodium_bin2hex(out, 65, h, sizeof(h));
}

static int read_file(const char *dir, const char *name, char **text,
		     size_t *len, struct gerr *err)
{
	char *path = xasprintf("%s/%s", dir, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = -1;
	struct stat st;
	char *buf = NULL;
	size_t got = 0;

	if (fd < 0) {
		gerr_set(err, "%s: cannot open: %s", name, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		gerr_set(err, "%s: not a regular file", name);
		goto out;
	}
	if ((uint64_t)st.st_size > MIG_MAX_FILE_BYTES) {
		gerr_set(err, "%s: too large (%lld bytes, at most %u)", name,
			 (long long)st.st_size, MIG_MAX_FILE_BYTES);
		goto out;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	if (got != (size_t)st.st_size) {
		gerr_set(err, "%s: short read", name);
		goto out;
	}
	buf[got] = 0;
	*text = buf;
	*len = got;
	buf = NULL;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(path);
	return rc;
}

int mig_set_read(const struct mig_set *set, const char *name, char **text,
		 size_t *len, struct gerr *err)
{
	return read_file(set->dir, name, text, len, err);
}

static int cmp_file(const void *a, const void *b)
{
	const struct mig_file *x = a, *y = b;
	return x->version < y->version ? -1 : x->version > y->version;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int mig_set_load(const char *dir, struct mig_set *set, struct gerr *err)
{
	DIR *d;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0, i;
	int rc = -1;

	memset(set, 0, sizeof(*set));
	set->dir = xstrdup(dir);
	d = opendir(dir);
	if (!d)
		return gerr_set(err, "migrations dir %s: %s", dir, strerror(errno));
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !looks_like_migration(de->d_name))
			continue;
		if (n == MIG_MAX_FILES) {
			closedir(d);
			gerr_set(err, "migrations dir %s: more than %d files", dir, MIG_MAX_FILES);
			goto out;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			names = xrealloc(names, cap * sizeof(*names));
		}
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	/* sorted, so which of two duplicates is named first does not depend on readdir */
	if (n) /* (qsort of a NULL array is undefined, even of 0 elements) */
		qsort(names, n, sizeof(*names), cmp_str);
	/* ups first, then downs attach to them */
	for (int pass = 0; pass < 2; pass++) {
		for (i = 0; i < n; i++) {
			int64_t v;
			enum mig_dir dr;
			char *desc = NULL, *text = NULL;
			size_t len;
			ssize_t at;
			struct mig_file *f;

			if (mig_parse_name(names[i], &v, &dr, &desc, err) < 0)
				goto out;
			if ((pass == 0) != (dr == MIG_UP)) {
				free(desc);
				continue;
			}
			at = mig_set_find(set, v);
			if (dr == MIG_UP && at >= 0) {
				gerr_set(err, "%s: duplicate version %" PRId64 " (also %s)",
					 names[i], v, set->v[at].up_name);
				free(desc);
				goto out;
			}
			if (dr == MIG_DOWN && at < 0) {
				gerr_set(err, "%s: no up file for version %" PRId64, names[i], v);
				free(desc);
				goto out;
			}
			if (dr == MIG_DOWN && set->v[at].down_name) {
				gerr_set(err, "%s: duplicate version %" PRId64 " (also %s)",
					 names[i], v, set->v[at].down_name);
				free(desc);
				goto out;
			}
			if (read_file(dir, names[i], &text, &len, err) < 0) {
				free(desc);
				goto out;
			}
			if (dr == MIG_UP) {
				set->v = xrealloc(set->v, (set->n + 1) * sizeof(*set->v));
				f = &set->v[set->n++];
				memset(f, 0, sizeof(*f));
				f->version = v;
				f->desc = desc;
				f->up_name = xstrdup(names[i]);
				mig_sha256_hex(text, len, f->up_sum);
				f->up_marks = mig_markers(text, len);
				/* keep sorted for mig_set_find's binary search */
				qsort(set->v, set->n, sizeof(*set->v), cmp_file);
			} else {
				f = &set->v[at];
				free(desc);
				f->down_name = xstrdup(names[i]);
				mig_sha256_hex(text, len, f->down_sum);
				f->down_marks = mig_markers(text, len);
			}
			free(text);
		}
	}
	rc = 0;
out:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

void mig_set_release(struct mig_set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		free(set->v[i].desc);
		free(set->v[i].up_name);
		free(set->v[i].down_name);
	}
	free(set->v);
	free(set->dir);
	memset(set, 0, sizeof(*set));
}

ssize_t mig_set_find(const struct mig_set *set, int64_t version)
{
	size_t lo = 0, hi = set->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (set->v[mid].version == version)
			return (ssize_t)mid;
		if (set->v[mid].version < version)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

int64_t mig_set_latest(const struct mig_set *set)
{
	return set->n ? set->v[set->n - 1].version : MIG_NIL_VERSION;
}

int64_t mig_set_expand_target(const struct mig_set *set, int64_t current)
{
	int64_t to = current;
	for (size_t i = 0; i < set->n; i++) {
		if (set->v[i].version <= current)
			continue;
		if (set->v[i].up_marks & MIG_MARK_CONTRACT)
			break;
		to = set->v[i].version;
	}
	return to;
}

int mig_down_check(const struct mig_set *set, int64_t from, int64_t to,
		   struct gerr *err)
{
	for (size_t i = set->n; i-- > 0;) {
		const struct mig_file *f = &set->v[i];
		if (f->version > from || f->version <= to)
			continue;
		if (!f->down_name)
			return gerr_set(err, "version %" PRId64 " (%s) has no down file: irreversible",
					f->version, f->up_name);
		if (f->down_marks & MIG_MARK_IRREVERSIBLE)
			return gerr_set(err, "%s is marked gantry:irreversible", f->down_name);
	}
	/* a version applied whose file this set lacks cannot be undone from it */
	if (from != MIG_NIL_VERSION && from > to && mig_set_find(set, from) < 0)
		return gerr_set(err, "version %" PRId64 " is applied but has no file in %s",
				from, set->dir);
	return 0;
}
