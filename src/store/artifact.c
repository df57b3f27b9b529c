#include "common.h"
#include "store/artifact.h"
#include <dirent.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>

#define MAX_ENTRIES 200000
#define MAX_TOTAL_BYTES (4LL << 30)

struct entry {
	char *rel;
	mode_t mode;
};

struct walk {
	struct entry *v;
	size_t n, cap;
	const char *skip_real;  /* realpath of the state dir, skipped */
	int64_t bytes;
	struct gerr *err;
};

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
		    !strcmp(de->d_name, ".git") || !strcmp(de->d_name, ".gantry"))
			continue;
		crel = *rel ? xasprintf("%s/%s", rel, de->d_name) : xstrdup(de->d_name);
		cpath = xasprintf("%s/%s", root, crel);
		if (lstat(cpath, &st) < 0) {
			ret = gerr_set(w->err, "artifact: %s: %s", cpath, strerror(errno));
		} else if (S_ISDIR(st.st_mode) && w->skip_real && realpath(cpath, real) &&
			   !strcmp(real, w->skip_real)) {
			/* the state directory itself */
		} else if (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) {
			if (w->n >= MAX_ENTRIES) {
				ret = gerr_set(w->err, "artifact: more than %d files in %s", MAX_ENTRIES, root);
			} else {
				if (w->n == w->cap) {
					w->cap = w->cap ? w->cap * 2 : 256;
					w->v = xrealloc(w->v, w->cap * sizeof(*w->v));
				}
				w->v[w->n].rel = xstrdup(crel);
				w->v[w->n].mode = st.st_mode;
				w->n++;
				if (S_ISREG(st.st_mode))
					w->bytes += st.st_size;
				if (w->bytes > MAX_TOTAL_BYTES)
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
	return strcmp(((const struct entry *)a)->rel, ((const struct entry *)b)->rel);
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
static int hash_and_copy(struct walk *w, const char *root, const char *tmp, unsigned char *out,
			 struct gerr *err)
{
	crypto_generichash_state h;
	int ret = 0;
	crypto_generichash_init(&h, NULL, 0, 32);
	for (size_t i = 0; i < w->n && !ret; i++) {
		struct entry *e = &w->v[i];
		char *src = xasprintf("%s/%s", root, e->rel);
		char *dst = tmp ? xasprintf("%s/%s", tmp, e->rel) : NULL;
		char type = S_ISDIR(e->mode) ? 'd' : S_ISLNK(e->mode) ? 'l' : (e->mode & 0111) ? 'x' : 'f';
		crypto_generichash_update(&h, (const unsigned char *)&type, 1);
		crypto_generichash_update(&h, (const unsigned char *)e->rel, strlen(e->rel) + 1);
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
				crypto_generichash_update(&h, (const unsigned char *)target, (size_t)k + 1);
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

static void rm_rf(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	if (!d) {
		unlink(path);
		return;
	}
	while ((de = readdir(d))) {
		char *p;
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		p = xasprintf("%s/%s", path, de->d_name);
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			rm_rf(p);
		else
			unlink(p);
		free(p);
	}
	closedir(d);
	rmdir(path);
}

int artifact_snapshot(const char *dir, const char *home, char *digest_out, struct gerr *err)
{
	struct walk w = { .err = err };
	unsigned char sum[32];
	char real_home[PATH_MAX], *tmp = NULL, *final = NULL, *adir;
	struct stat st;
	int ret = -1;

	if (sodium_init() < 0)
		return gerr_set(err, "artifact: libsodium failed to initialise");
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return gerr_set(err, "artifact: %s is not a directory", dir);
	if (realpath(home, real_home))
		w.skip_real = real_home;
	if (walk_dir(&w, dir, "") < 0)
		goto out;
	qsort(w.v, w.n, sizeof(*w.v), cmp_entry);
	/* hash first: an artifact that is already stored is not copied again */
	if (hash_and_copy(&w, dir, NULL, sum, err) < 0)
		goto out;
	sodium_bin2hex(digest_out, ARTIFACT_DIGEST_HEX + 1, sum, sizeof(sum));
	adir = xasprintf("%s/artifacts", home);
	mkdir(home, 0700);
	mkdir(adir, 0700);
	final = xasprintf("%s/%s", adir, digest_out);
	if (stat(final, &st) == 0) {
		free(adir);
		ret = 0;
		goto out;
	}
	tmp = xasprintf("%s/.tmp-%d-%s", adir, (int)getpid(), digest_out);
	free(adir);
	rm_rf(tmp);
	if (mkdir(tmp, 0755) < 0) {
		gerr_set(err, "artifact: %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (hash_and_copy(&w, dir, tmp, sum, err) < 0)
		goto out;
	{
		char check[ARTIFACT_DIGEST_HEX + 1];
		sodium_bin2hex(check, sizeof(check), sum, sizeof(sum));
		if (strcmp(check, digest_out)) {
			gerr_set(err, "artifact: %s changed while it was being copied; try again", dir);
			goto out;
		}
	}
	if (rename(tmp, final) < 0 && errno != ENOTEMPTY && errno != EEXIST) {
		gerr_set(err, "artifact: %s: %s", final, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	if (tmp)
		rm_rf(tmp);
	for (size_t i = 0; i < w.n; i++)
		free(w.v[i].rel);
	free(w.v);
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
	rm_rf(p);
	free(p);
	return 0;
}
