/*
 * fuzz_artifact_unpack — the receiver of artifact uploads
 * (src/artifact/pack.c), fed as PUT /v1/artifacts/DIGEST feeds it:
 * arbitrary read boundaries (the first input byte picks them), into a
 * private temp home. The expected digest is the one the input's last 32
 * bytes claim, so that valid packs (the corpus) get through.
 *
 * Checks, after every input: the result is one of the documented codes
 * and never an I/O error (bad input must be named as such); its message
 * can go into a JSON string; a refused pack leaves HOME/artifacts empty;
 * an accepted one is exactly HOME/artifacts/DIGEST, and snapshotting that
 * tree gives DIGEST again (what was written is what was hashed), and
 * every symlink in it that resolves at all (realpath(3), the kernel's
 * answer, not the unpacker's own resolver) resolves inside it; and
 * nothing at all appears beside HOME (no write escaped the temp dir).
 * Seeds link-chain and link-later are the chains of issue 12.
 */
#include "common.h"
#include "artifact/artifact.h"
#include "artifact/pack.h"
#include <dirent.h>
#include <jansson.h>
#include <sys/stat.h>

static char root[256], *home, *home2, *adir;

/* names in path, "." and ".." aside; -1 if it cannot be read */
static int count(const char *path, char *only, size_t len)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (only)
			strlcpy_g(only, de->d_name, len);
		n++;
	}
	closedir(d);
	return n;
}

/* every symlink under path (rel from the artifact top) that resolves, resolves under top */
static void links_inside(const char *top, const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	size_t tl = strlen(top);
	BUG_ON(!d);
	while ((de = readdir(d))) {
		char *p, real[PATH_MAX];
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		p = xasprintf("%s/%s", path, de->d_name);
		BUG_ON(lstat(p, &st) < 0);
		if (S_ISDIR(st.st_mode))
			links_inside(top, p);
		else if (S_ISLNK(st.st_mode) && realpath(p, real))
			BUG_ON(strncmp(real, top, tl) || (real[tl] && real[tl] != '/'));
		free(p);
	}
	closedir(d);
}

static void cleanup(void)
{
	artifact__rm_rf(root);
}

static void init_once(void)
{
	if (home)
		return;
	snprintf(root, sizeof(root), "%s/gantry-fuzz-unpack-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	BUG_ON(!mkdtemp(root));
	atexit(cleanup);
	home = xasprintf("%s/home", root);
	home2 = xasprintf("%s/home2", root);
	adir = xasprintf("%s/artifacts", home);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct artifact_unpack *u;
	char digest[ARTIFACT_DIGEST_HEX + 1], name[300] = "", again[ARTIFACT_DIGEST_HEX + 1];
	struct gerr err = { "" };
	size_t step, pos = 0;
	bool created = false;
	json_t *s;
	int r;

	if (size < 1)
		return 0;
	init_once();
	step = (size_t)data[0] % 97 + 1;
	data++;
	size--;
	if (size >= 32)
		sodium_bin2hex(digest, sizeof(digest), data + size - 32, 32);
	else
		snprintf(digest, sizeof(digest), "%064d", 0);

	u = xcalloc(1, sizeof(*u));
	r = artifact_unpack_init(u, home, digest, &err);
	BUG_ON(r);
	while (!r && pos < size) {
		size_t n = MIN(step, size - pos);
		char *chunk = xmalloc(n); /* a private copy per read, as the listener's buffer */
		memcpy(chunk, data + pos, n);
		r = artifact_unpack_feed(u, chunk, n, &err);
		free(chunk);
		pos += n;
		step = step * 7 % 97 + 1;
	}
	if (!r)
		r = artifact_unpack_finish(u, &created, &err);
	artifact_unpack_release(u);
	free(u);

	BUG_ON(r != 0 && r != ARTIFACT_UNPACK_BAD && r != ARTIFACT_UNPACK_MISMATCH);
	if (r) {
		BUG_ON(!err.msg[0]);
		s = json_string(err.msg);
		BUG_ON(!s);
		json_decref(s);
		BUG_ON(count(adir, NULL, 0) != 0);
	} else {
		char *dir = xasprintf("%s/%s", adir, digest);
		char top[PATH_MAX];
		BUG_ON(!created);
		BUG_ON(!realpath(dir, top));
		links_inside(top, dir);
		BUG_ON(count(adir, name, sizeof(name)) != 1 || strcmp(name, digest));
		BUG_ON(artifact_snapshot(dir, home2, again, &err) < 0);
		BUG_ON(strcmp(again, digest));
		free(dir);
		artifact__rm_rf(adir);
		artifact__rm_rf(home2);
	}
	/* only HOME (and HOME2 for a moment) ever appear in the root */
	BUG_ON(count(root, name, sizeof(name)) != 1 || strcmp(name, "home"));
	return 0;
}
