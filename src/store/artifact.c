/*
 * artifact.c — snapshots of artifact directories into HOME/artifacts/DIGEST
 * (see artifact.h), and the walk and hash that artifact_pack.c shares.
 */
#include "common.h"
#include "store/artifact.h"
#include "store/artifact-int.h"
#include <dirent.h>
#include <signal.h>
#include <fcntl.h>

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

static int copy_file(const char *src, const char *dst, mode_t mode, crypto_generichash_state *h,
		     struct gerr *err)
{
	char buf[65536];
	int in = open(src, O_RDONLY | O_CLOEXEC), out = -1, ret = -1;
	ssize_t n;
	if (in < 0)
		return gerr_set(err, "artifact: %s: %s", src, strerror(errno));
	if (dst) {
		out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode & 0111) ? 0755 : 0644);
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

/* hashes (and, when tmp is not NULL, copies) every entry */
static int hash_and_copy(const struct artifact__list *l, const char *root, const char *tmp, unsigned char *out,
			 struct gerr *err)
{
	crypto_generichash_state h;
	int ret = 0;
	crypto_generichash_init(&h, NULL, 0, 32);
	for (size_t i = 0; i < l->n && !ret; i++) {
		const struct artifact__entry *e = &l->v[i];
		char *src = xasprintf("%s/%s", root, e->rel);
		char *dst = tmp ? xasprintf("%s/%s", tmp, e->rel) : NULL;
		char type = artifact__type(e->mode);
		if (type != 'l')
			artifact__hash_head(&h, type, e->rel, NULL);
		if (type == 'd') {
			if (dst && mkdir(dst, 0755) < 0)
				ret = gerr_set(err, "artifact: %s: %s", dst, strerror(errno));
		} else if (type == 'l') {
			char target[PATH_MAX];
			ssize_t k = readlink(src, target, sizeof(target) - 1);
			if (k < 0) {
				ret = gerr_set(err, "artifact: %s: %s", src, strerror(errno));
			} else {
				target[k] = 0;
				artifact__hash_head(&h, type, e->rel, target);
				if (dst && symlink(target, dst) < 0)
					ret = gerr_set(err, "artifact: %s: %s", dst, strerror(errno));
			}
		} else {
			ret = copy_file(src, dst, e->mode, &h, err);
		}
		free(src);
		free(dst);
	}
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
