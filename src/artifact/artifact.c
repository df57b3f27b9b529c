/*
 * artifact.c — snapshots of artifact directories into HOME/artifacts/DIGEST
 * (see artifact.h), and the walk and hash that pack.c shares.
 */
#include "common.h"
#include "artifact/artifact.h"
#include "artifact/artifact-int.h"
#include <dirent.h>
#include <signal.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>

struct walk {
	struct artifact__list *l;
	const char *skip_real;  /* realpath of the state dir, skipped */
	int64_t bytes;
	struct gerr *err;
};

bool artifact__skipped_name(const char *name, size_t len)
{
	return (len == 4 && !memcmp(name, ".git", 4)) || (len == 7 && !memcmp(name, ".gantry", 7));
}

char artifact__type(mode_t mode)
{
	return S_ISDIR(mode) ? 'd' : S_ISLNK(mode) ? 'l' : (mode & 0111) ? 'x' : 'f';
}

void artifact__hash_head(crypto_generichash_state *h, char type, const char *rel, const char *target)
{
	crypto_generichash_update(h, (const unsigned char *)&type, 1);
	crypto_generichash_update(h, (const unsigned char *)rel, strlen(rel) + 1);
	if (target)
		crypto_generichash_update(h, (const unsigned char *)target, strlen(target) + 1);
}

void artifact__hex(const unsigned char sum[32], char hex[65])
{
	sodium_bin2hex(hex, ARTIFACT_DIGEST_HEX + 1, sum, 32);
}

/*
 * Why a resolver of our own and not openat2(RESOLVE_BENEATH) on each link:
 * the kernel answers ENOENT for a dangling link and stops there, and a
 * link must be judged against what the tree could hold, not only what it
 * holds now; a resolver in user space is also the same on every kernel and
 * can be fuzzed. Creation goes through artifact__parent_at (no symlink
 * followed), so the links are only ever read, by replicas, never written
 * through.
 */
#define LINK_CHECK_MAX 8192
#define LINK_CHECK_HOPS 40 /* the kernel's MAXSYMLINKS */

int artifact__link_check(int rootfd, const char *rel, const char *target, const char **why)
{
	char *cur = xmalloc(LINK_CHECK_MAX), *pend = xmalloc(LINK_CHECK_MAX), *buf = xmalloc(LINK_CHECK_MAX);
	const char *slash = strrchr(rel, '/');
	size_t clen = slash ? (size_t)(slash - rel) : 0, off = 0, tlen = strlen(target);
	int hops = 0;

	*why = NULL;
	/* cur: where resolution stands, relative to the root ("" is the root),
	 * never holding a symlink; pend: what is left to resolve */
	memcpy(cur, rel, clen);
	cur[clen] = 0;
	if (target[0] == '/')
		*why = "absolute symlink target (an artifact may only link inside itself)";
	else if (tlen >= LINK_CHECK_MAX)
		*why = "symlink target too long";
	else
		memcpy(pend, target, tlen + 1);
	while (!*why && pend[off]) {
		const char *c = pend + off;
		size_t n = strcspn(c, "/");
		struct stat st;
		ssize_t k;

		off += n + (c[n] == '/');
		if (!n || (n == 1 && c[0] == '.'))
			continue;
		if (n == 2 && c[0] == '.' && c[1] == '.') {
			char *s;
			if (!clen) {
				*why = "symlink target resolves above the artifact's root (through the links it passes)";
				break;
			}
			s = memrchr(cur, '/', clen);
			clen = s ? (size_t)(s - cur) : 0;
			cur[clen] = 0;
			continue;
		}
		if (clen + 1 + n >= LINK_CHECK_MAX) {
			*why = "symlink target resolves to a path too long";
			break;
		}
		if (clen)
			cur[clen++] = '/';
		memcpy(cur + clen, c, n);
		clen += n;
		cur[clen] = 0;
		/* missing, or not a link: go on as if it were a directory */
		if (fstatat(rootfd, cur, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISLNK(st.st_mode))
			continue;
		if (++hops > LINK_CHECK_HOPS) {
			*why = "symlink target passes through more than 40 links";
			break;
		}
		k = readlinkat(rootfd, cur, buf, LINK_CHECK_MAX - 1);
		if (k <= 0) {
			*why = "symlink target passes through a link that cannot be read";
			break;
		}
		buf[k] = 0;
		if (buf[0] == '/') {
			*why = "symlink target passes through an absolute link";
			break;
		}
		/* the link's own directory, then its target, then what was left */
		{
			char *s = memrchr(cur, '/', clen), *t;
			size_t rest = strlen(pend + off);
			clen = s ? (size_t)(s - cur) : 0;
			cur[clen] = 0;
			if ((size_t)k + 1 + rest >= LINK_CHECK_MAX) {
				*why = "symlink target resolves to a path too long";
				break;
			}
			buf[k] = '/';
			memcpy(buf + k + 1, pend + off, rest + 1);
			t = pend;
			pend = buf;
			buf = t;
			off = 0;
		}
	}
	free(cur);
	free(pend);
	free(buf);
	return *why ? -1 : 0;
}

static int openat2_dir(int dirfd, const char *path)
{
	struct open_how how = {
		.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
	};
	return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

int artifact__parent_at(int rootfd, const char *rel, const char **base)
{
	const char *slash = strrchr(rel, '/');
	char *parent;
	int fd;

	*base = slash ? slash + 1 : rel;
	if (!slash)
		return rootfd;
	parent = xstrndup(rel, (size_t)(slash - rel));
	fd = openat2_dir(rootfd, parent);
	if (fd < 0 && (errno == ENOSYS || errno == EPERM)) {
		/* no openat2 (Linux < 5.6, or a seccomp filter): one component at
		 * a time, none of them a symlink; the paths are checked already
		 * (no "..", no empty component) */
		char *save = NULL, *c;
		fd = rootfd;
		for (c = strtok_r(parent, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
			int next = openat(fd, c, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			int e = errno;
			if (fd != rootfd)
				close(fd);
			fd = next;
			if (fd < 0) {
				errno = e;
				break;
			}
		}
		if (fd == rootfd) { /* cannot be: there was a slash */
			errno = EINVAL;
			fd = -1;
		}
	}
	free(parent);
	return fd;
}

static int walk_dir(struct walk *w, const char *root, const char *rel)
{
	char *path = *rel ? xasprintf("%s/%s", root, rel) : xstrdup(root);
	DIR *d = opendir(path);
	struct dirent *de;
	int ret = 0;

	if (!d) {
		ret = gerr_set(w->err, "artifact: cannot read %s: %s", path, strerror(errno));
		free(path);
		return ret;
	}
	while (!ret && (de = readdir(d))) {
		char *crel, *cpath, real[PATH_MAX];
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    artifact__skipped_name(de->d_name, strlen(de->d_name)))
			continue;
		crel = *rel ? xasprintf("%s/%s", rel, de->d_name) : xstrdup(de->d_name);
		cpath = xasprintf("%s/%s", root, crel);
		if (lstat(cpath, &st) < 0) {
			ret = gerr_set(w->err, "artifact: %s: %s", cpath, strerror(errno));
		} else if (S_ISDIR(st.st_mode) && w->skip_real && realpath(cpath, real) &&
			   !strcmp(real, w->skip_real)) {
			/* the state directory itself */
		} else if (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) {
			struct artifact__list *l = w->l;
			if (l->n >= ARTIFACT_MAX_ENTRIES) {
				ret = gerr_set(w->err, "artifact: more than %d files in %s", ARTIFACT_MAX_ENTRIES, root);
			} else {
				if (l->n == l->cap) {
					l->cap = l->cap ? l->cap * 2 : 256;
					l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
				}
				l->v[l->n].rel = xstrdup(crel);
				l->v[l->n].mode = st.st_mode;
				l->n++;
				if (S_ISREG(st.st_mode))
					w->bytes += st.st_size;
				if (w->bytes > ARTIFACT_MAX_TOTAL_BYTES)
					ret = gerr_set(w->err, "artifact: %s is larger than 4 GiB", root);
				else if (S_ISDIR(st.st_mode))
					ret = walk_dir(w, root, crel);
			}
		}
		free(crel);
		free(cpath);
	}
	closedir(d);
	free(path);
	return ret;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct artifact__entry *)a)->rel, ((const struct artifact__entry *)b)->rel);
}

int artifact__list(const char *dir, const char *home, struct artifact__list *l, struct gerr *err)
{
	struct walk w = { .l = l, .err = err };
	char real_home[PATH_MAX];
	struct stat st;

	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return gerr_set(err, "artifact: %s is not a directory", dir);
	if (home && realpath(home, real_home))
		w.skip_real = real_home;
	if (walk_dir(&w, dir, "") < 0)
		return -1;
	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), cmp_entry);
	return 0;
}

void artifact__list_release(struct artifact__list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].rel);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* dst: the copy's path for messages, made as base in dfd (-1: hash only) */
static int copy_file(const char *src, int dfd, const char *base, const char *dst, mode_t mode,
		     crypto_generichash_state *h, struct gerr *err)
{
	char buf[65536];
	int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, ret = -1;
	ssize_t n;
	if (in < 0)
		return gerr_set(err, "artifact: %s: %s", src, strerror(errno));
	if (dfd >= 0) {
		out = openat(dfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode & 0111) ? 0755 : 0644);
		if (out < 0) {
			gerr_set(err, "artifact: %s: %s", dst, strerror(errno));
			goto out;
		}
	}
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		crypto_generichash_update(h, (const unsigned char *)buf, (unsigned long long)n);
		if (out >= 0) {
			ssize_t off = 0;
			while (off < n) {
				ssize_t w = write(out, buf + off, (size_t)(n - off));
				if (w < 0) {
					gerr_set(err, "artifact: %s: %s", dst, strerror(errno));
					goto out;
				}
				off += w;
			}
		}
	}
	if (n < 0) {
		gerr_set(err, "artifact: %s: %s", src, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	close(in);
	if (out >= 0 && close(out) < 0 && !ret)
		ret = gerr_set(err, "artifact: %s: %s", dst, strerror(errno));
	return ret;
}

/* each symlink of l, resolved beneath the artifact at dirfd (see artifact__link_check) */
static int check_links(const struct artifact__list *l, int dirfd, const char *root, struct gerr *err)
{
	char target[PATH_MAX];
	const char *why;
	for (size_t i = 0; i < l->n; i++) {
		ssize_t k;
		if (!S_ISLNK(l->v[i].mode))
			continue;
		k = readlinkat(dirfd, l->v[i].rel, target, sizeof(target) - 1);
		if (k < 0)
			return gerr_set(err, "artifact: %s/%s: %s", root, l->v[i].rel, strerror(errno));
		target[k] = 0;
		if (artifact__link_check(dirfd, l->v[i].rel, target, &why) < 0)
			return gerr_set(err, "artifact: %s/%s -> %s: %s", root, l->v[i].rel, target, why);
	}
	return 0;
}

/*
 * Hashes (and, when tmp is not NULL, copies) every entry. The copy is made
 * beneath a descriptor of tmp, never through a symlink (artifact__parent_at),
 * and its links are checked against the copy once it is whole: what
 * replicas will run from.
 */
static int hash_and_copy(const struct artifact__list *l, const char *root, const char *tmp, unsigned char *out,
			 struct gerr *err)
{
	crypto_generichash_state h;
	int ret = 0, tfd = -1;
	crypto_generichash_init(&h, NULL, 0, 32);
	if (tmp && (tfd = open(tmp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		ret = gerr_set(err, "artifact: %s: %s", tmp, strerror(errno));
	for (size_t i = 0; i < l->n && !ret; i++) {
		const struct artifact__entry *e = &l->v[i];
		char *src = xasprintf("%s/%s", root, e->rel);
		char *dst = tmp ? xasprintf("%s/%s", tmp, e->rel) : NULL;
		char type = artifact__type(e->mode);
		const char *base = NULL;
		int pfd = -1;
		if (tfd >= 0 && (pfd = artifact__parent_at(tfd, e->rel, &base)) < 0) {
			ret = gerr_set(err, "artifact: %s: %s", dst, strerror(errno));
			free(src);
			free(dst);
			break;
		}
		if (type != 'l')
			artifact__hash_head(&h, type, e->rel, NULL);
		if (type == 'd') {
			if (pfd >= 0 && mkdirat(pfd, base, 0755) < 0)
				ret = gerr_set(err, "artifact: %s: %s", dst, strerror(errno));
		} else if (type == 'l') {
			char target[PATH_MAX];
			ssize_t k = readlink(src, target, sizeof(target) - 1);
			if (k < 0) {
				ret = gerr_set(err, "artifact: %s: %s", src, strerror(errno));
			} else {
				target[k] = 0;
				artifact__hash_head(&h, type, e->rel, target);
				if (pfd >= 0 && symlinkat(target, pfd, base) < 0)
					ret = gerr_set(err, "artifact: %s: %s", dst, strerror(errno));
			}
		} else {
			ret = copy_file(src, pfd, base, dst, e->mode, &h, err);
		}
		if (pfd >= 0 && pfd != tfd)
			close(pfd);
		free(src);
		free(dst);
	}
	if (!ret && tfd >= 0)
		ret = check_links(l, tfd, tmp, err);
	if (tfd >= 0)
		close(tfd);
	crypto_generichash_final(&h, out, 32);
	return ret;
}

void artifact__rm_rf(const char *path)
{
	struct stat st;
	struct dirent *de;
	DIR *d;

	if (lstat(path, &st) < 0)
		return;
	/* a sealed snapshot's directories are 0555: without root's override
	 * their entries cannot be removed until they are writable again */
	if (S_ISDIR(st.st_mode) && !(st.st_mode & S_IWUSR))
		chmod(path, 0700);
	if (!S_ISDIR(st.st_mode) || !(d = opendir(path))) {
		unlink(path);
		return;
	}
	while ((de = readdir(d))) {
		char *p;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		p = xasprintf("%s/%s", path, de->d_name);
		artifact__rm_rf(p);
		free(p);
	}
	closedir(d);
	rmdir(path);
}

char *artifact__dir(const char *home)
{
	char *adir = xasprintf("%s/artifacts", home);
	mkdir(home, 0700);
	/* traversable, not listable: workloads reach their snapshot by name */
	mkdir(adir, 0711);
	return adir;
}

/* no write bit anywhere, read (and execute where there was one) for all:
 * dirs 0555, files 0444 or 0555; links are left alone (never followed) */
void artifact__seal(const char *path)
{
	struct stat st;
	struct dirent *de;
	DIR *d;

	if (lstat(path, &st) < 0 || S_ISLNK(st.st_mode))
		return;
	if (!S_ISDIR(st.st_mode)) {
		if (S_ISREG(st.st_mode))
			chmod(path, (st.st_mode & 0111) ? 0555 : 0444);
		return;
	}
	if ((d = opendir(path))) {
		while ((de = readdir(d))) {
			char *p;
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			p = xasprintf("%s/%s", path, de->d_name);
			artifact__seal(p);
			free(p);
		}
		closedir(d);
	}
	chmod(path, 0555);
}

void artifact_seal_all(const char *home)
{
	char *adir = xasprintf("%s/artifacts", home);
	struct dirent *de;
	DIR *d = opendir(adir);

	chmod(adir, 0711);
	while (d && (de = readdir(d))) {
		char *p;
		if (de->d_name[0] == '.')
			continue;
		p = xasprintf("%s/%s", adir, de->d_name);
		artifact__seal(p);
		free(p);
	}
	if (d)
		closedir(d);
	free(adir);
}

int artifact_snapshot(const char *dir, const char *home, char *digest_out, struct gerr *err)
{
	struct artifact__list l = { 0 };
	unsigned char sum[32];
	char *tmp = NULL, *final = NULL, *adir;
	struct stat st;
	int ret = -1;

	if (sodium_init() < 0)
		return gerr_set(err, "artifact: libsodium failed to initialise");
	if (artifact__list(dir, home, &l, err) < 0)
		goto out;
	/* links that lead out of the artifact are refused here already, naming
	 * the working tree's path (checked again on the copy) */
	{
		int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		int r = dfd < 0 ? gerr_set(err, "artifact: %s: %s", dir, strerror(errno)) : check_links(&l, dfd, dir, err);
		if (dfd >= 0)
			close(dfd);
		if (r < 0)
			goto out;
	}
	/* hash first: an artifact that is already stored is not copied again */
	if (hash_and_copy(&l, dir, NULL, sum, err) < 0)
		goto out;
	artifact__hex(sum, digest_out);
	adir = artifact__dir(home);
	final = xasprintf("%s/%s", adir, digest_out);
	if (stat(final, &st) == 0) {
		free(adir);
		ret = 0;
		goto out;
	}
	tmp = xasprintf("%s/.tmp-%d-%s", adir, (int)getpid(), digest_out);
	free(adir);
	artifact__rm_rf(tmp);
	if (mkdir(tmp, 0755) < 0) {
		gerr_set(err, "artifact: %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (hash_and_copy(&l, dir, tmp, sum, err) < 0)
		goto out;
	{
		char check[ARTIFACT_DIGEST_HEX + 1];
		artifact__hex(sum, check);
		if (strcmp(check, digest_out)) {
			gerr_set(err, "artifact: %s changed while it was being copied; try again", dir);
			goto out;
		}
	}
	artifact__seal(tmp);
	if (rename(tmp, final) < 0 && errno != ENOTEMPTY && errno != EEXIST) {
		gerr_set(err, "artifact: %s: %s", final, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	if (tmp)
		artifact__rm_rf(tmp);
	artifact__list_release(&l);
	free(tmp);
	free(final);
	return ret;
}

int artifact_verify(const char *home, const char *digest, char *actual_out, struct gerr *err)
{
	struct artifact__list l = { 0 };
	unsigned char sum[32];
	char *dir;
	int ret = -1;

	actual_out[0] = 0;
	if (strlen(digest) != ARTIFACT_DIGEST_HEX || strspn(digest, "0123456789abcdef") != ARTIFACT_DIGEST_HEX)
		return gerr_set(err, "artifact: bad digest '%.80s'", digest);
	if (sodium_init() < 0)
		return gerr_set(err, "artifact: libsodium failed to initialise");
	dir = xasprintf("%s/artifacts/%s", home, digest);
	if (artifact__list(dir, NULL, &l, err) == 0 && hash_and_copy(&l, dir, NULL, sum, err) == 0) {
		artifact__hex(sum, actual_out);
		ret = strcmp(actual_out, digest) ? 1 : 0;
	}
	artifact__list_release(&l);
	free(dir);
	return ret;
}

int artifact_remove(const char *home, const char *digest, struct gerr *err)
{
	char *p;
	if (strspn(digest, "0123456789abcdef") != strlen(digest) || !*digest)
		return gerr_set(err, "artifact: bad digest '%s'", digest);
	p = xasprintf("%s/artifacts/%s", home, digest);
	artifact__rm_rf(p);
	free(p);
	return 0;
}

int artifact_clean_temp(const char *home)
{
	char *adir = xasprintf("%s/artifacts", home);
	DIR *d = opendir(adir);
	struct dirent *de;
	int n = 0;

	while (d && (de = readdir(d))) {
		long pid = 0;
		bool stale = !strncmp(de->d_name, ".tmp-up-", 8);
		if (!stale && !strncmp(de->d_name, ".tmp-", 5) && sscanf(de->d_name + 5, "%ld-", &pid) == 1 && pid > 0)
			stale = kill((pid_t)pid, 0) < 0 && errno == ESRCH;
		if (stale) {
			char *p = xasprintf("%s/%s", adir, de->d_name);
			artifact__rm_rf(p);
			free(p);
			n++;
		}
	}
	if (d)
		closedir(d);
	free(adir);
	return n;
}
