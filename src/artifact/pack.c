/*
 * pack.c — the pack stream of an artifact (format in pack.h): a pull
 * writer over artifact__list, and a push reader that unpacks into a temp
 * directory while hashing, checks the digest and renames the result into
 * HOME/artifacts/DIGEST.
 *
 * The reader trusts nothing: every path is checked (relative, no "..",
 * sorted, its parent a directory it made itself), everything is created
 * beneath a descriptor of the temp directory with no symlink followed on
 * the way (artifact__parent_at: openat2 RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS), files with O_EXCL | O_NOFOLLOW; symlinks are
 * created, never followed, and once the whole tree is there each is
 * resolved through the links it passes (artifact__link_check) and refused
 * if it leaves the root. Any failure removes the temp directory. So bad
 * input never writes outside the temp directory, never leaves anything
 * behind, and never stores a link that a replica could follow out.
 */
#include "common.h"
#include "artifact/pack.h"
#include <fcntl.h>

/* ---- the rules ---- */

int artifact_pack_check_path(const char *rel, size_t len, const char **why)
{
	const char *p = rel, *end = rel + len;

	*why = NULL;
	if (!len)
		*why = "empty path";
	else if (len > ARTIFACT_PACK_MAX_NAME)
		*why = "path longer than 4095 bytes";
	else if (memchr(rel, 0, len))
		*why = "NUL byte in the path";
	else if (rel[0] == '/')
		*why = "absolute path";
	while (!*why && p <= end) {
		const char *slash = memchr(p, '/', (size_t)(end - p));
		size_t n = (size_t)((slash ? slash : end) - p);
		if (!n)
			*why = "empty path component ('//' or a trailing '/')";
		else if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			*why = "'.' or '..' component";
		else if (artifact__skipped_name(p, n))
			*why = "'.git' or '.gantry' component (never part of an artifact)";
		if (!slash)
			break;
		p = slash + 1;
	}
	return *why ? -1 : 0;
}

int artifact_pack_check_target(const char *rel, const char *target, const char **why)
{
	size_t depth = 0, tlen = strlen(target);
	const char *p = target, *end = target + tlen;

	*why = NULL;
	for (const char *s = rel; *s; s++)
		depth += *s == '/';
	if (!tlen)
		*why = "empty symlink target";
	else if (tlen > ARTIFACT_PACK_MAX_NAME)
		*why = "symlink target longer than 4095 bytes";
	else if (target[0] == '/')
		*why = "absolute symlink target (an uploaded artifact may only link inside itself)";
	while (!*why && p < end) {
		const char *slash = memchr(p, '/', (size_t)(end - p));
		size_t n = (size_t)((slash ? slash : end) - p);
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (!depth)
				*why = "symlink target climbs above the artifact's root";
			else
				depth--;
		} else if (n && !(n == 1 && p[0] == '.')) {
			depth++;
		}
		if (!slash)
			break;
		p = slash + 1;
	}
	return *why ? -1 : 0;
}

/* printable ASCII of s (at most 200 bytes) into out[256], for messages (which go into JSON) */
static const char *shown(const char *s, size_t len, char *out)
{
	size_t n = MIN(len, 200), i;
	for (i = 0; i < n; i++)
		out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	if (len > n) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = 0;
	return out;
}

static void put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)(v & 0xff);
}

static uint64_t get_be64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* ---- writing ---- */

int artifact_pack_open(struct artifact_pack *p, const char *dir, const char *home, struct gerr *err)
{
	memset(p, 0, sizeof(*p));
	p->fd = -1;
	p->rootfd = -1;
	if (sodium_init() < 0)
		return gerr_set(err, "artifact: libsodium failed to initialise");
	p->root = xstrdup(dir);
	p->rootfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (p->rootfd < 0)
		return gerr_set(err, "artifact: %s: %s", dir, strerror(errno));
	crypto_generichash_init(&p->h, NULL, 0, 32);
	memcpy(p->head, ARTIFACT_PACK_MAGIC, ARTIFACT_PACK_MAGIC_LEN);
	p->head_len = ARTIFACT_PACK_MAGIC_LEN;
	return artifact__list(dir, home, &p->list, err);
}

/* the head of entry p->next into p->head (opening a file's contents), or the end marker */
static int next_head(struct artifact_pack *p, struct gerr *err)
{
	const struct artifact__entry *e;
	char type, *path, target[ARTIFACT_PACK_MAX_NAME + 2];
	const char *why;
	size_t rlen, n = 0;
	int ret = -1;

	p->head_off = p->head_len = 0;
	if (p->next == p->list.n) {
		crypto_generichash_final(&p->h, p->sum, sizeof(p->sum));
		p->head[0] = 'e';
		memcpy(p->head + 1, p->sum, sizeof(p->sum));
		p->head_len = 1 + sizeof(p->sum);
		p->ended = true;
		return 0;
	}
	e = &p->list.v[p->next++];
	p->cur = e->rel;
	type = artifact__type(e->mode);
	rlen = strlen(e->rel);
	path = xasprintf("%s/%s", p->root, e->rel);
	if (artifact_pack_check_path(e->rel, rlen, &why) < 0) {
		gerr_set(err, "artifact: %s: %s", path, why);
		goto out;
	}
	p->head[n++] = (unsigned char)type;
	memcpy(p->head + n, e->rel, rlen + 1);
	n += rlen + 1;
	if (type == 'l') {
		ssize_t k = readlink(path, target, sizeof(target) - 1);
		if (k < 0) {
			gerr_set(err, "artifact: %s: %s", path, strerror(errno));
			goto out;
		}
		target[k] = 0;
		if (artifact_pack_check_target(e->rel, target, &why) < 0 ||
		    artifact__link_check(p->rootfd, e->rel, target, &why) < 0) {
			gerr_set(err, "artifact: %s -> %s: %s", path, target, why);
			goto out;
		}
		memcpy(p->head + n, target, (size_t)k + 1);
		n += (size_t)k + 1;
		artifact__hash_head(&p->h, type, e->rel, target);
	} else if (type == 'd') {
		artifact__hash_head(&p->h, type, e->rel, NULL);
	} else {
		struct stat st;
		p->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (p->fd < 0 || fstat(p->fd, &st) < 0) {
			gerr_set(err, "artifact: %s: %s", path, strerror(errno));
			goto out;
		}
		if (!S_ISREG(st.st_mode)) {
			gerr_set(err, "artifact: %s changed while it was being read; try again", path);
			goto out;
		}
		p->left = (uint64_t)st.st_size;
		p->content_bytes += p->left;
		if (p->content_bytes > (uint64_t)ARTIFACT_MAX_TOTAL_BYTES) {
			gerr_set(err, "artifact: %s is larger than 4 GiB", p->root);
			goto out;
		}
		put_be64(p->head + n, p->left);
		n += 8;
		artifact__hash_head(&p->h, type, e->rel, NULL);
	}
	p->head_len = n;
	ret = 0;
out:
	free(path);
	return ret;
}

/* reads contents of the open file into buf; 0 with *got = 0 once it is closed */
static int read_contents(struct artifact_pack *p, unsigned char *buf, size_t len, size_t *got, struct gerr *err)
{
	ssize_t r;
	*got = 0;
	if (!p->left) {
		unsigned char extra;
		do
			r = read(p->fd, &extra, 1);
		while (r < 0 && errno == EINTR);
		close(p->fd);
		p->fd = -1;
		if (r != 0)
			return gerr_set(err, "artifact: %s/%s changed while it was being read; try again", p->root,
					p->cur);
		return 0;
	}
	do
		r = read(p->fd, buf, (size_t)MIN((uint64_t)len, p->left));
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return gerr_set(err, "artifact: %s/%s: %s", p->root, p->cur,
				r < 0 ? strerror(errno) : "changed while it was being read; try again");
	crypto_generichash_update(&p->h, buf, (unsigned long long)r);
	p->left -= (uint64_t)r;
	*got = (size_t)r;
	return 0;
}

int artifact_pack_read(struct artifact_pack *p, void *buf, size_t len, size_t *got, struct gerr *err)
{
	unsigned char *out = buf;
	size_t n = 0;
	int ret = 0;

	while (n < len && !ret) {
		if (p->head_off < p->head_len) {
			size_t k = MIN(len - n, p->head_len - p->head_off);
			memcpy(out + n, p->head + p->head_off, k);
			p->head_off += k;
			n += k;
		} else if (p->fd >= 0) {
			size_t k;
			ret = read_contents(p, out + n, len - n, &k, err);
			n += k;
		} else if (p->ended) {
			break;
		} else {
			ret = next_head(p, err);
		}
	}
	p->produced += n;
	*got = n;
	return ret;
}

void artifact_pack_digest(const struct artifact_pack *p, char *digest_out)
{
	artifact__hex(p->sum, digest_out);
}

void artifact_pack_close(struct artifact_pack *p)
{
	if (p->fd >= 0)
		close(p->fd);
	if (p->rootfd >= 0)
		close(p->rootfd);
	artifact__list_release(&p->list);
	free(p->root);
	memset(p, 0, sizeof(*p));
	p->fd = -1;
	p->rootfd = -1;
}

int artifact_pack_write(const char *dir, const char *home, int fd, char *digest_out, uint64_t *size,
			struct gerr *err)
{
	struct artifact_pack p;
	char buf[65536];
	size_t got;
	int ret = -1;

	if (artifact_pack_open(&p, dir, home, err) < 0)
		goto out;
	for (;;) {
		if (artifact_pack_read(&p, buf, sizeof(buf), &got, err) < 0)
			goto out;
		if (!got)
			break;
		for (size_t off = 0; fd >= 0 && off < got;) {
			ssize_t w = write(fd, buf + off, got - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				gerr_set(err, "artifact: writing the pack: %s", strerror(errno));
				goto out;
			}
			off += (size_t)w;
		}
	}
	artifact_pack_digest(&p, digest_out);
	if (size)
		*size = p.produced;
	ret = 0;
out:
	artifact_pack_close(&p);
	return ret;
}

/* ---- reading ---- */

enum { S_MAGIC, S_TYPE, S_NAME, S_TARGET, S_SIZE, S_DATA, S_SUM, S_END };

static int ufail(struct artifact_unpack *u, int code, struct gerr *err, const char *fmt, ...) PRINTF_LIKE(4, 5);
/* records the failure, removes everything written; returns code */
static int ufail(struct artifact_unpack *u, int code, struct gerr *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	u->failed = code;
	if (u->fd >= 0)
		close(u->fd);
	u->fd = -1;
	if (u->tmp)
		artifact__rm_rf(u->tmp);
	free(u->tmp);
	u->tmp = NULL;
	return code;
}

/* an I/O error on the receiving side; ENAMETOOLONG is the pack's fault */
static int uio(struct artifact_unpack *u, struct gerr *err, const char *what)
{
	char s[256];
	int e = errno;
	return ufail(u, e == ENAMETOOLONG ? ARTIFACT_UNPACK_BAD : ARTIFACT_UNPACK_IO, err,
		     "artifact upload: %s '%s': %s", what, shown(u->name, u->name_len, s), strerror(e));
}

int artifact_unpack_init(struct artifact_unpack *u, const char *home, const char *digest, struct gerr *err)
{
	memset(u, 0, sizeof(*u));
	u->fd = -1;
	u->rootfd = -1;
	if (strlen(digest) != ARTIFACT_DIGEST_HEX || strspn(digest, "0123456789abcdef") != ARTIFACT_DIGEST_HEX)
		return ufail(u, ARTIFACT_UNPACK_BAD, err, "artifact upload: bad digest (want 64 lowercase hex digits)");
	if (sodium_init() < 0)
		return ufail(u, ARTIFACT_UNPACK_IO, err, "artifact upload: libsodium failed to initialise");
	strlcpy_g(u->expect, digest, sizeof(u->expect));
	u->adir = artifact__dir(home);
	u->final = xasprintf("%s/%s", u->adir, digest);
	u->tmp = xasprintf("%s/.tmp-up-XXXXXX", u->adir);
	if (!mkdtemp(u->tmp)) {
		int e = errno;
		free(u->tmp);
		u->tmp = NULL;
		return ufail(u, ARTIFACT_UNPACK_IO, err, "artifact upload: cannot make a directory in %s: %s", u->adir,
			     strerror(e));
	}
	u->rootfd = open(u->tmp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (u->rootfd < 0)
		return ufail(u, ARTIFACT_UNPACK_IO, err, "artifact upload: %s: %s", u->tmp, strerror(errno));
	crypto_generichash_init(&u->h, NULL, 0, 32);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* u->name is complete: is it allowed here (checks, order, parent)? */
static int check_name(struct artifact_unpack *u, uint64_t at, struct gerr *err)
{
	char s[256];
	const char *why, *slash;

	if (artifact_pack_check_path(u->name, u->name_len, &why) < 0)
		return ufail(u, ARTIFACT_UNPACK_BAD, err, "bad pack: entry %zu '%s' at offset %llu: %s", u->entries,
			     shown(u->name, u->name_len, s), (unsigned long long)at, why);
	if (u->entries > 1 && strcmp(u->name, u->prev) <= 0)
		return ufail(u, ARTIFACT_UNPACK_BAD, err,
			     "bad pack: entry %zu '%s' at offset %llu: out of order (not after the previous entry; "
			     "paths must be sorted and unique)", u->entries, shown(u->name, u->name_len, s),
			     (unsigned long long)at);
	slash = strrchr(u->name, '/');
	if (slash) {
		char *parent = xstrndup(u->name, (size_t)(slash - u->name));
		bool found = u->ndirs && bsearch(&parent, u->dirs, u->ndirs, sizeof(*u->dirs), cmp_str);
		free(parent);
		if (!found)
			return ufail(u, ARTIFACT_UNPACK_BAD, err,
				     "bad pack: entry %zu '%s' at offset %llu: its parent directory is not an earlier "
				     "directory entry", u->entries, shown(u->name, u->name_len, s), (unsigned long long)at);
	}
	memcpy(u->prev, u->name, u->name_len + 1);
	return 0;
}

/* a descriptor for u->name's parent (u->rootfd or one to close_parent); -1 after ufail */
static int parent_of(struct artifact_unpack *u, const char **base, struct gerr *err)
{
	int fd = artifact__parent_at(u->rootfd, u->name, base);
	return fd < 0 ? (uio(u, err, "cannot reach the directory of"), -1) : fd;
}

static void close_parent(struct artifact_unpack *u, int fd)
{
	if (fd >= 0 && fd != u->rootfd)
		close(fd);
}

/* a directory or symlink entry is complete: make it */
static int make_entry(struct artifact_unpack *u, struct gerr *err)
{
	char s[256];
	const char *why, *base;
	int ret = 0, pfd;

	if (u->type != 'd' && artifact_pack_check_target(u->name, u->target, &why) < 0) {
		char t[256];
		return ufail(u, ARTIFACT_UNPACK_BAD, err, "bad pack: symlink %zu '%s' -> '%s': %s", u->entries,
			     shown(u->name, u->name_len, s), shown(u->target, u->target_len, t), why);
	}
	if ((pfd = parent_of(u, &base, err)) < 0)
		return u->failed;
	if (u->type == 'd') {
		if (mkdirat(pfd, base, 0755) < 0) {
			ret = uio(u, err, "cannot make directory");
		} else {
			if (u->ndirs == u->dircap) {
				u->dircap = u->dircap ? u->dircap * 2 : 64;
				u->dirs = xrealloc(u->dirs, u->dircap * sizeof(*u->dirs));
			}
			u->dirs[u->ndirs++] = xstrdup(u->name);
			artifact__hash_head(&u->h, 'd', u->name, NULL);
		}
	} else if (symlinkat(u->target, pfd, base) < 0) {
		ret = uio(u, err, "cannot make symlink");
	} else {
		/* name NUL target NUL, checked by finish once the tree is whole */
		char *pair = xmalloc(u->name_len + u->target_len + 2);
		memcpy(pair, u->name, u->name_len + 1);
		memcpy(pair + u->name_len + 1, u->target, u->target_len + 1);
		if (u->nlinks == u->linkcap) {
			u->linkcap = u->linkcap ? u->linkcap * 2 : 64;
			u->links = xrealloc(u->links, u->linkcap * sizeof(*u->links));
		}
		u->links[u->nlinks++] = pair;
		artifact__hash_head(&u->h, 'l', u->name, u->target);
	}
	close_parent(u, pfd);
	return ret;
}

/* the size of a file entry is read: create it */
static int open_file(struct artifact_unpack *u, struct gerr *err)
{
	char s[256];
	const char *base;
	int pfd;
	u->left = get_be64(u->num);
	if (u->left > (uint64_t)ARTIFACT_MAX_TOTAL_BYTES ||
	    u->content_bytes + u->left > (uint64_t)ARTIFACT_MAX_TOTAL_BYTES)
		return ufail(u, ARTIFACT_UNPACK_BAD, err,
			     "bad pack: file %zu '%s': %llu bytes would make the artifact larger than 4 GiB", u->entries,
			     shown(u->name, u->name_len, s), (unsigned long long)u->left);
	u->content_bytes += u->left;
	if ((pfd = parent_of(u, &base, err)) < 0)
		return u->failed;
	u->fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, u->type == 'x' ? 0755 : 0644);
	close_parent(u, pfd);
	if (u->fd < 0)
		return uio(u, err, "cannot create file");
	artifact__hash_head(&u->h, u->type, u->name, NULL);
	return 0;
}

static int close_file(struct artifact_unpack *u, struct gerr *err)
{
	int r = close(u->fd);
	u->fd = -1;
	return r < 0 ? uio(u, err, "cannot write file") : 0;
}

/* collects a NUL-terminated name into buf; *done once its NUL was taken */
static int take_name(struct artifact_unpack *u, char *buf, size_t *blen, const unsigned char **p, size_t *len,
		     bool *done, struct gerr *err)
{
	const unsigned char *z = memchr(*p, 0, *len);
	size_t take = z ? (size_t)(z - *p) : *len;
	char s[256];

	*done = false;
	if (*blen + take > ARTIFACT_PACK_MAX_NAME)
		return ufail(u, ARTIFACT_UNPACK_BAD, err, "bad pack: entry %zu '%s' at offset %llu: %s longer than "
			     "4095 bytes", u->entries, shown(u->name, u->name_len, s), (unsigned long long)u->off,
			     buf == u->name ? "path" : "symlink target");
	memcpy(buf + *blen, *p, take);
	*blen += take;
	if (z) {
		take++;
		buf[*blen] = 0;
		*done = true;
	}
	*p += take;
	*len -= take;
	u->off += take;
	u->head_bytes += take;
	if (u->head_bytes > (uint64_t)ARTIFACT_PACK_MAX_HEADS)
		return ufail(u, ARTIFACT_UNPACK_BAD, err, "bad pack: more than %lld bytes of paths",
			     (long long)ARTIFACT_PACK_MAX_HEADS);
	return 0;
}

/* collects want bytes into u->num; true once complete */
static bool take_num(struct artifact_unpack *u, size_t want, const unsigned char **p, size_t *len)
{
	size_t k = MIN(want - u->fill, *len);
	memcpy(u->num + u->fill, *p, k);
	u->fill += k;
	*p += k;
	*len -= k;
	u->off += k;
	return u->fill == want;
}

/* one step of the state machine over the bytes at *p */
static int step(struct artifact_unpack *u, const unsigned char **p, size_t *len, struct gerr *err)
{
	uint64_t at = u->off;
	bool done;
	int r;

	switch (u->state) {
	case S_MAGIC:
		if (!take_num(u, ARTIFACT_PACK_MAGIC_LEN, p, len))
			return 0;
		if (memcmp(u->num, ARTIFACT_PACK_MAGIC, ARTIFACT_PACK_MAGIC_LEN))
			return ufail(u, ARTIFACT_UNPACK_BAD, err, "bad pack: offset 0: not a gantry artifact pack "
				     "(bad magic; want \"%s\")", ARTIFACT_PACK_MAGIC);
		u->state = S_TYPE;
		return 0;
	case S_TYPE:
		u->type = (char)**p;
		(*p)++;
		(*len)--;
		u->off++;
		u->fill = u->name_len = u->target_len = 0;
		if (u->type == 'e') {
			unsigned char sum[32];
			crypto_generichash_final(&u->h, sum, sizeof(sum));
			artifact__hex(sum, u->digest);
			u->state = S_SUM;
			return 0;
		}
		if (!strchr("dfxl", u->type) || !u->type)
			return ufail(u, ARTIFACT_UNPACK_BAD, err, "bad pack: offset %llu: unknown entry type 0x%02x "
				     "(after entry %zu)", (unsigned long long)at, (unsigned char)u->type, u->entries);
		if (u->entries >= ARTIFACT_MAX_ENTRIES)
			return ufail(u, ARTIFACT_UNPACK_BAD, err, "bad pack: offset %llu: more than %d entries",
				     (unsigned long long)at, ARTIFACT_MAX_ENTRIES);
		u->entries++;
		u->state = S_NAME;
		return 0;
	case S_NAME:
		at = u->off - u->name_len - 1;
		if ((r = take_name(u, u->name, &u->name_len, p, len, &done, err)) || !done)
			return r;
		if ((r = check_name(u, at, err)))
			return r;
		if (u->type == 'l') {
			u->state = S_TARGET;
			return 0;
		}
		if (u->type == 'd') {
			u->state = S_TYPE;
			return make_entry(u, err);
		}
		u->state = S_SIZE;
		return 0;
	case S_TARGET:
		if ((r = take_name(u, u->target, &u->target_len, p, len, &done, err)) || !done)
			return r;
		u->state = S_TYPE;
		return make_entry(u, err);
	case S_SIZE:
		if (!take_num(u, 8, p, len))
			return 0;
		if ((r = open_file(u, err)))
			return r;
		u->state = u->left ? S_DATA : S_TYPE;
		return u->left ? 0 : close_file(u, err);
	case S_DATA: {
		size_t k = (size_t)MIN((uint64_t)*len, u->left), off = 0;
		while (off < k) {
			ssize_t w = write(u->fd, *p + off, k - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				return uio(u, err, "cannot write file");
			off += (size_t)w;
		}
		crypto_generichash_update(&u->h, *p, k);
		*p += k;
		*len -= k;
		u->off += k;
		u->left -= k;
		if (u->left)
			return 0;
		u->state = S_TYPE;
		return close_file(u, err);
	}
	case S_SUM:
		if (take_num(u, 32, p, len))
			u->state = S_END;
		return 0;
	default:
		return ufail(u, ARTIFACT_UNPACK_BAD, err, "bad pack: offset %llu: bytes after the end marker",
			     (unsigned long long)at);
	}
}

int artifact_unpack_feed(struct artifact_unpack *u, const void *data, size_t len, struct gerr *err)
{
	const unsigned char *p = data;
	int r = 0;
	if (u->failed)
		return gerr_set(err, "artifact upload: already failed"), u->failed;
	while (len && !r)
		r = step(u, &p, &len, err);
	return r;
}

int artifact_unpack_finish(struct artifact_unpack *u, bool *created, struct gerr *err)
{
	unsigned char sum[32];
	char s[256];
	struct stat st;

	*created = false;
	if (u->failed)
		return gerr_set(err, "artifact upload: already failed"), u->failed;
	if (u->state != S_END)
		return ufail(u, ARTIFACT_UNPACK_BAD, err, "bad pack: truncated: the stream ended at offset %llu %s%s%s",
			     (unsigned long long)u->off, u->entries ? "in or after entry '" : "before any entry",
			     u->entries ? shown(u->name, u->name_len, s) : "", u->entries ? "'" : "");
	if (strcmp(u->digest, u->expect))
		return ufail(u, ARTIFACT_UNPACK_MISMATCH, err,
			     "digest mismatch: the pack's contents hash to %s, not %s", u->digest, u->expect);
	if (sodium_hex2bin(sum, sizeof(sum), u->digest, ARTIFACT_DIGEST_HEX, NULL, NULL, NULL) < 0 ||
	    memcmp(sum, u->num, sizeof(sum)))
		return ufail(u, ARTIFACT_UNPACK_BAD, err, "bad pack: the end marker's digest is not the contents' (%s)",
			     u->digest);
	/* every link against the whole tree: a later entry can change what an
	 * earlier link resolves to */
	for (size_t i = 0; i < u->nlinks; i++) {
		const char *name = u->links[i], *target = name + strlen(name) + 1, *why;
		if (artifact__link_check(u->rootfd, name, target, &why) < 0) {
			char t[256];
			return ufail(u, ARTIFACT_UNPACK_BAD, err, "bad pack: symlink '%s' -> '%s': %s",
				     shown(name, strlen(name), s), shown(target, strlen(target), t), why);
		}
	}
	/* read-only to everyone (workloads run from it; a later deploy of the
	 * same digest must run what was verified) */
	artifact__seal(u->tmp);
	/* an existing copy stays (replicas may run from it): rename() would
	 * replace an empty directory, so look first; ENOTEMPTY covers a race */
	if (lstat(u->final, &st) == 0) {
		artifact__rm_rf(u->tmp);
	} else if (rename(u->tmp, u->final) == 0) {
		*created = true;
	} else if (errno == ENOTEMPTY || errno == EEXIST) {
		artifact__rm_rf(u->tmp);
	} else {
		return ufail(u, ARTIFACT_UNPACK_IO, err, "artifact upload: %s: %s", u->final, strerror(errno));
	}
	free(u->tmp);
	u->tmp = NULL;
	return 0;
}

void artifact_unpack_release(struct artifact_unpack *u)
{
	if (u->fd >= 0)
		close(u->fd);
	if (u->tmp)
		artifact__rm_rf(u->tmp);
	for (size_t i = 0; i < u->ndirs; i++)
		free(u->dirs[i]);
	free(u->dirs);
	for (size_t i = 0; i < u->nlinks; i++)
		free(u->links[i]);
	free(u->links);
	if (u->rootfd >= 0)
		close(u->rootfd);
	free(u->tmp);
	free(u->adir);
	free(u->final);
	memset(u, 0, sizeof(*u));
	u->fd = -1;
	u->rootfd = -1;
}
