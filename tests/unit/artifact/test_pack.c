/*
 * test_pack — the pack stream (src/artifact/pack.c): a
 * directory packed and unpacked (fed at random split points) is the same
 * tree with the digest artifact_snapshot gives; every malformed pack is
 * refused with a message naming why, and leaves nothing in HOME/artifacts.
 */
#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include "artifact/artifact.h"
#include "artifact/pack.h"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "%s/gantry-pack-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char *cmd = xasprintf("chmod -R u+rwx '%s'; rm -rf '%s'", dir, dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	return 0;
}

static void write_file(const char *rel, const char *text, mode_t mode)
{
	char *p = xasprintf("%s/%s", dir, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	chmod(p, mode);
	free(p);
}

static void make_dir(const char *rel)
{
	char *p = xasprintf("%s/%s", dir, rel);
	assert_int_equal(mkdir(p, 0755), 0);
	free(p);
}

static void make_link(const char *rel, const char *target)
{
	char *p = xasprintf("%s/%s", dir, rel);
	assert_int_equal(symlink(target, p), 0);
	free(p);
}

/* a sample artifact in dir/app: dirs, plain and executable files, an empty file, links */
static char *sample_app(void)
{
	char big[70000];
	make_dir("app");
	make_dir("app/bin");
	make_dir("app/lib");
	make_dir("app/lib/deep");
	make_dir("app/.git");
	write_file("app/.git/HEAD", "ref\n", 0644);
	write_file("app/bin/run", "#!/bin/sh\necho hi\n", 0755);
	write_file("app/README", "hello\n", 0644);
	write_file("app/empty", "", 0600);
	write_file("app/lib/deep/x.txt", "x\n", 0644);
	make_link("app/lib/deep/up", "../../README");
	make_link("app/cur", "lib/deep");
	make_link("app/dangling", "nothere");
	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	write_file("app/a-big", big, 0644);
	return xasprintf("%s/app", dir);
}

/* the pack of path as bytes (owned by caller) */
static unsigned char *pack_of(const char *path, size_t *len, char *digest)
{
	struct gerr err;
	char *file = xasprintf("%s/pack.bin", dir);
	int fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0600);
	uint64_t size = 0;
	unsigned char *buf;
	struct stat st;

	assert_true(fd >= 0);
	if (artifact_pack_write(path, NULL, fd, digest, &size, &err) < 0)
		fail_msg("pack: %s", err.msg);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal((uint64_t)st.st_size, size);
	buf = xmalloc(size + 1);
	assert_int_equal(pread(fd, buf, size, 0), (ssize_t)size);
	close(fd);
	unlink(file);
	free(file);
	*len = size;
	return buf;
}

/* feeds data at pseudo-random split points (seeded); returns feed's or finish's code */
static int unpack(const char *home, const char *digest, const unsigned char *data, size_t len, unsigned seed,
		  bool *created, struct gerr *err)
{
	struct artifact_unpack *u = xcalloc(1, sizeof(*u));
	size_t off = 0;
	int r = artifact_unpack_init(u, home, digest, err);
	*created = false;
	srand(seed);
	while (!r && off < len) {
		size_t n = seed ? (size_t)rand() % 300 + 1 : len;
		if (seed % 3 == 0)
			n = (size_t)rand() % 7 + 1;
		n = MIN(n, len - off);
		r = artifact_unpack_feed(u, data + off, n, err);
		off += n;
	}
	if (!r)
		r = artifact_unpack_finish(u, created, err);
	artifact_unpack_release(u);
	free(u);
	return r;
}

/* number of names in path (-1 if it cannot be read) */
static int count_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;
	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* the two trees are the same: entries, types, exec bits, contents, targets */
static void assert_same_tree(const char *a, const char *b)
{
	char *cmd = xasprintf("cd '%s' && find . -path ./.git -prune -o -printf '%%y %%p %%l\\n' | sort >'%s/ta' && "
			      "cd '%s' && find . -printf '%%y %%p %%l\\n' | sort >'%s/tb' && cmp -s '%s/ta' '%s/tb' && "
			      "diff -r --no-dereference -x .git '%s' '%s' >/dev/null && "
			      "test -x '%s/bin/run' && ! test -x '%s/README'",
			      a, dir, b, dir, dir, dir, a, b, b, b);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

static void test_round_trip_same_digest_and_tree(void **state)
{
	(void)state;
	char *app = sample_app(), *home1 = xasprintf("%s/home1", dir), *home2 = xasprintf("%s/home2", dir);
	char snap[ARTIFACT_DIGEST_HEX + 1], pdig[ARTIFACT_DIGEST_HEX + 1], again[ARTIFACT_DIGEST_HEX + 1];
	char *dst, *adir;
	struct gerr err;
	unsigned char *pack;
	size_t len;
	bool created = false;

	assert_int_equal(artifact_snapshot(app, home1, snap, &err), 0);
	pack = pack_of(app, &len, pdig);
	assert_string_equal(pdig, snap);
	assert_memory_equal(pack, ARTIFACT_PACK_MAGIC, ARTIFACT_PACK_MAGIC_LEN);
	for (unsigned seed = 0; seed < 8; seed++) {
		int r = unpack(home2, pdig, pack, len, seed, &created, &err);
		if (r)
			fail_msg("seed %u: %s", seed, err.msg);
		/* the first makes it, the others find it there and drop their copy */
		assert_int_equal(created, seed == 0);
	}
	dst = xasprintf("%s/artifacts/%s", home2, pdig);
	assert_same_tree(app, dst);
	adir = xasprintf("%s/artifacts", home2);
	assert_int_equal(count_entries(adir), 1); /* no temp dir left */
	/* snapshotting the unpacked tree gives the same digest again */
	assert_int_equal(artifact_snapshot(dst, home1, again, &err), 0);
	assert_string_equal(again, snap);
	free(pack);
	free(app);
	free(home1);
	free(home2);
	free(dst);
	free(adir);
}

static void test_empty_artifact(void **state)
{
	(void)state;
	char *home = xasprintf("%s/home", dir), snap[ARTIFACT_DIGEST_HEX + 1], pdig[ARTIFACT_DIGEST_HEX + 1];
	struct gerr err;
	unsigned char *pack;
	size_t len;
	bool created;

	make_dir("empty");
	{
		char *e = xasprintf("%s/empty", dir);
		assert_int_equal(artifact_snapshot(e, home, snap, &err), 0);
		pack = pack_of(e, &len, pdig);
		free(e);
	}
	assert_string_equal(snap, pdig);
	assert_int_equal(len, ARTIFACT_PACK_MAGIC_LEN + 33);
	assert_int_equal(unpack(home, pdig, pack, len, 1, &created, &err), 0);
	assert_false(created); /* the snapshot made it */
	free(pack);
	free(home);
}

static void test_writer_refuses_links_out(void **state)
{
	(void)state;
	char d[ARTIFACT_DIGEST_HEX + 1], *app, *home = xasprintf("%s/home", dir);
	struct gerr err;

	make_dir("abs");
	make_link("abs/etc", "/etc/passwd");
	app = xasprintf("%s/abs", dir);
	assert_int_equal(artifact_pack_write(app, NULL, -1, d, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "abs/etc -> /etc/passwd: absolute symlink target"));
	/* a local snapshot refuses it too: replicas would follow it out */
	assert_int_equal(artifact_snapshot(app, home, d, &err), -1);
	assert_non_null(strstr(err.msg, "abs/etc -> /etc/passwd: absolute symlink target"));
	free(app);

	make_dir("esc");
	make_dir("esc/sub");
	make_link("esc/sub/l", "../../x");
	app = xasprintf("%s/esc", dir);
	assert_int_equal(artifact_pack_write(app, NULL, -1, d, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "climbs above the artifact's root"));
	free(app);
	free(home);
}

static void test_check_path_and_target(void **state)
{
	(void)state;
	const char *why;
	assert_int_equal(artifact_pack_check_path("a/b.c", 5, &why), 0);
	assert_int_equal(artifact_pack_check_path("a\0b", 3, &why), -1);
	assert_non_null(strstr(why, "NUL"));
	assert_int_equal(artifact_pack_check_path("/a", 2, &why), -1);
	assert_int_equal(artifact_pack_check_path("a/../b", 6, &why), -1);
	assert_int_equal(artifact_pack_check_path("./a", 3, &why), -1);
	assert_int_equal(artifact_pack_check_path("a//b", 4, &why), -1);
	assert_int_equal(artifact_pack_check_path("a/", 2, &why), -1);
	assert_int_equal(artifact_pack_check_path("", 0, &why), -1);
	assert_int_equal(artifact_pack_check_path("x/.git/config", 13, &why), -1);
	assert_int_equal(artifact_pack_check_path("..a", 3, &why), 0);
	assert_int_equal(artifact_pack_check_target("a/b/l", "../../x", &why), 0);
	assert_int_equal(artifact_pack_check_target("a/b/l", "../../../x", &why), -1);
	assert_int_equal(artifact_pack_check_target("l", "./x/../y", &why), 0);
	assert_int_equal(artifact_pack_check_target("l", "x/../../y", &why), -1);
	assert_int_equal(artifact_pack_check_target("l", "/x", &why), -1);
	assert_int_equal(artifact_pack_check_target("l", "", &why), -1);
}

/* ---- hand-made packs ---- */

struct pk {
	unsigned char b[8192];
	size_t n;
	crypto_generichash_state h;
};

static void pk_init(struct pk *p, const char *magic)
{
	memset(p, 0, sizeof(*p));
	memcpy(p->b, magic, 8);
	p->n = 8;
	crypto_generichash_init(&p->h, NULL, 0, 32);
}

static void pk_bytes(struct pk *p, const void *d, size_t n)
{
	assert_true(p->n + n <= sizeof(p->b));
	memcpy(p->b + p->n, d, n);
	p->n += n;
}

/* an entry: type, path, then the target (l) or the size and text (f, x) */
static void pk_entry(struct pk *p, char type, const char *path, const char *arg)
{
	pk_bytes(p, &type, 1);
	pk_bytes(p, path, strlen(path) + 1);
	if (type == 'l') {
		pk_bytes(p, arg, strlen(arg) + 1);
		artifact__hash_head(&p->h, type, path, arg);
	} else if (type == 'f' || type == 'x') {
		unsigned char sz[8] = { 0 };
		size_t n = strlen(arg);
		sz[6] = (unsigned char)(n >> 8);
		sz[7] = (unsigned char)n;
		pk_bytes(p, sz, 8);
		pk_bytes(p, arg, n);
		artifact__hash_head(&p->h, type, path, NULL);
		crypto_generichash_update(&p->h, (const unsigned char *)arg, n);
	} else {
		artifact__hash_head(&p->h, type, path, NULL);
	}
}

/* the end marker; digest: its hex (65 bytes) */
static void pk_end(struct pk *p, char *digest)
{
	unsigned char sum[32];
	crypto_generichash_final(&p->h, sum, 32);
	artifact__hex(sum, digest);
	pk_bytes(p, "e", 1);
	pk_bytes(p, sum, 32);
}

/* the pack is refused with code and a message holding want; nothing stays in HOME/artifacts */
static void refused(struct pk *p, const char *digest, int code, const char *want)
{
	char *home = xasprintf("%s/home", dir), *adir = xasprintf("%s/home/artifacts", dir);
	struct gerr err = { "" };
	bool created = true;
	for (unsigned seed = 0; seed < 4; seed++) {
		int r = unpack(home, digest, p->b, p->n, seed, &created, &err);
		if (r != code || !strstr(err.msg, want))
			fail_msg("seed %u: got %d '%s', want %d '%s'", seed, r, err.msg, code, want);
		assert_false(created);
		assert_int_equal(count_entries(adir), 0);
	}
	free(home);
	free(adir);
}

static const char zero[] = "0000000000000000000000000000000000000000000000000000000000000000";

/*
 * issue 12: a chain of links whose texts each stay inside, a/up -> .. and
 * b -> a/up/a/up/../.., resolves to the artifact's parent. The writer, the
 * local snapshot and the unpacker all refuse it; so do a link made before
 * the link that makes it climb (c -> z/../x, then z -> .) and a loop.
 */
static void test_link_chain_refused(void **state)
{
	(void)state;
	char d[ARTIFACT_DIGEST_HEX + 1], *app = xasprintf("%s/chain", dir), *home = xasprintf("%s/home", dir);
	char *adir = xasprintf("%s/home/artifacts", dir);
	struct gerr err = { "" };
	struct pk p;
	const char *why;
	int fd;

	make_dir("chain");
	make_dir("chain/a");
	make_link("chain/a/up", "..");
	make_link("chain/b", "a/up/a/up/../..");
	/* each text alone passes the first filter */
	assert_int_equal(artifact_pack_check_target("a/up", "..", &why), 0);
	assert_int_equal(artifact_pack_check_target("b", "a/up/a/up/../..", &why), 0);
	fd = open(app, O_PATH | O_DIRECTORY);
	assert_true(fd >= 0);
	assert_int_equal(artifact__link_check(fd, "a/up", "..", &why), 0);
	assert_int_equal(artifact__link_check(fd, "b", "a/up/a/up/../..", &why), -1);
	assert_non_null(strstr(why, "above the artifact's root"));
	assert_int_equal(artifact__link_check(fd, "b", "a/up/a/up/a", &why), 0);
	assert_int_equal(artifact__link_check(fd, "b", "nothere/../a/up/..", &why), -1);
	assert_int_equal(artifact__link_check(fd, "b", "/etc", &why), -1);
	close(fd);

	assert_int_equal(artifact_pack_write(app, NULL, -1, d, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "chain/b -> a/up/a/up/../..: symlink target resolves above the artifact's root"));
	assert_int_equal(artifact_snapshot(app, home, d, &err), -1);
	assert_non_null(strstr(err.msg, "chain/b -> a/up/a/up/../..: symlink target resolves above"));
	assert_true(count_entries(adir) <= 0); /* not even made */

	/* the same chain as a hand-made pack, as an upload would bring it */
	pk_init(&p, ARTIFACT_PACK_MAGIC);
	pk_entry(&p, 'd', "a", NULL);
	pk_entry(&p, 'l', "a/up", "..");
	pk_entry(&p, 'l', "b", "a/up/a/up/../..");
	pk_end(&p, d);
	refused(&p, d, ARTIFACT_UNPACK_BAD,
		"bad pack: symlink 'b' -> 'a/up/a/up/../..': symlink target resolves above the artifact's root");

	/* c was harmless when it was made; z makes it climb */
	pk_init(&p, ARTIFACT_PACK_MAGIC);
	pk_entry(&p, 'l', "c", "z/../x");
	pk_entry(&p, 'l', "z", ".");
	pk_end(&p, d);
	refused(&p, d, ARTIFACT_UNPACK_BAD, "symlink 'c' -> 'z/../x': symlink target resolves above");

	/* a loop */
	pk_init(&p, ARTIFACT_PACK_MAGIC);
	pk_entry(&p, 'l', "l", "m/x");
	pk_entry(&p, 'l', "m", "l/y");
	pk_end(&p, d);
	refused(&p, d, ARTIFACT_UNPACK_BAD, "more than 40 links");

	/* nothing was written beside the artifacts */
	assert_int_equal(count_entries(home), 1);
	free(app);
	free(home);
	free(adir);
}

static void test_valid_hand_made_pack(void **state)
{
	(void)state;
	struct pk p;
	char d[65], *home = xasprintf("%s/home", dir), *f;
	struct gerr err;
	bool created;
	char buf[16] = "";
	int fd;

	pk_init(&p, ARTIFACT_PACK_MAGIC);
	pk_entry(&p, 'd', "a", NULL);
	pk_entry(&p, 'f', "a-b", "one");
	pk_entry(&p, 'x', "a/run", "#!");
	pk_entry(&p, 'l', "a/up", "../a-b");
	pk_end(&p, d);
	assert_int_equal(unpack(home, d, p.b, p.n, 2, &created, &err), 0);
	assert_true(created);
	f = xasprintf("%s/artifacts/%s/a/up", home, d);
	fd = open(f, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), 3);
	assert_string_equal(buf, "one");
	close(fd);
	free(f);
	free(home);
}

static void test_rejects_bad_magic(void **state)
{
	(void)state;
	struct pk p;
	char d[65];
	pk_init(&p, "GNTPACK9");
	pk_end(&p, d);
	refused(&p, d, ARTIFACT_UNPACK_BAD, "bad magic");
}

static void test_rejects_bad_paths(void **state)
{
	(void)state;
	static const struct {
		char type;
		const char *path, *want;
	} cases[] = {
		{ 'f', "/etc/passwd", "absolute path" },
		{ 'f', "../x", "'..' component" },
		{ 'd', "a/..", "'..' component" },
		{ 'f', "a//b", "empty path component" },
		{ 'd', "a/", "empty path component" },
		{ 'f', "", "empty path" },
		{ 'd', ".git", "'.git'" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct pk p;
		char d[65];
		pk_init(&p, ARTIFACT_PACK_MAGIC);
		pk_entry(&p, 'd', "a", NULL);
		pk_entry(&p, cases[i].type, cases[i].path, "x");
		pk_end(&p, d);
		refused(&p, d, ARTIFACT_UNPACK_BAD, cases[i].want);
	}
}

static void test_rejects_order_and_parents(void **state)
{
	(void)state;
	struct pk p;
	char d[65];

	pk_init(&p, ARTIFACT_PACK_MAGIC);
	pk_entry(&p, 'f', "b", "1");
	pk_entry(&p, 'f', "a", "2");
	pk_end(&p, d);
	refused(&p, d, ARTIFACT_UNPACK_BAD, "entry 2 'a' at offset 20: out of order");

	pk_init(&p, ARTIFACT_PACK_MAGIC);
	pk_entry(&p, 'f', "a", "1");
	pk_entry(&p, 'f', "a", "2");
	pk_end(&p, d);
	refused(&p, d, ARTIFACT_UNPACK_BAD, "out of order");

	pk_init(&p, ARTIFACT_PACK_MAGIC);
	pk_entry(&p, 'f', "a/b", "1");
	pk_end(&p, d);
	refused(&p, d, ARTIFACT_UNPACK_BAD, "'a/b' at offset 8: its parent directory is not an earlier directory");

	/* a parent that is a file, or a symlink to a directory, is not a directory entry */
	pk_init(&p, ARTIFACT_PACK_MAGIC);
	pk_entry(&p, 'f', "a", "1");
	pk_entry(&p, 'f', "a/b", "1");
	pk_end(&p, d);
	refused(&p, d, ARTIFACT_UNPACK_BAD, "its parent directory");

	pk_init(&p, ARTIFACT_PACK_MAGIC);
	pk_entry(&p, 'd', "d", NULL);
	pk_entry(&p, 'l', "l", "d");
	pk_entry(&p, 'f', "l/x", "1");
	pk_end(&p, d);
	refused(&p, d, ARTIFACT_UNPACK_BAD, "'l/x' at offset 16: its parent directory");
}

static void test_rejects_symlinks_out(void **state)
{
	(void)state;
	struct pk p;
	char d[65];

	pk_init(&p, ARTIFACT_PACK_MAGIC);
	pk_entry(&p, 'l', "l", "/etc/passwd");
	pk_end(&p, d);
	refused(&p, d, ARTIFACT_UNPACK_BAD, "symlink 1 'l' -> '/etc/passwd': absolute symlink target");

	pk_init(&p, ARTIFACT_PACK_MAGIC);
	pk_entry(&p, 'd', "a", NULL);
	pk_entry(&p, 'l', "a/l", "x/../../..");
	pk_end(&p, d);
	refused(&p, d, ARTIFACT_UNPACK_BAD, "climbs above the artifact's root");
}

static void test_rejects_sizes_and_garbage(void **state)
{
	(void)state;
	struct pk p;
	char d[65];
	unsigned char huge[8] = { 0, 0, 0, 1, 0, 0, 0, 1 }; /* 4 GiB + 1 */

	pk_init(&p, ARTIFACT_PACK_MAGIC);
	pk_bytes(&p, "fbig", 5);
	pk_bytes(&p, huge, 8);
	refused(&p, zero, ARTIFACT_UNPACK_BAD, "file 1 'big': 4294967297 bytes would make the artifact larger than 4 GiB");

	pk_init(&p, ARTIFACT_PACK_MAGIC);
	pk_entry(&p, 'f', "a", "1");
	pk_bytes(&p, "q", 1);
	refused(&p, zero, ARTIFACT_UNPACK_BAD, "offset 20: unknown entry type 0x71");

	pk_init(&p, ARTIFACT_PACK_MAGIC);
	pk_end(&p, d);
	pk_bytes(&p, "x", 1);
	refused(&p, d, ARTIFACT_UNPACK_BAD, "offset 41: bytes after the end marker");

	{
		char name[5000];
		memset(name, 'n', sizeof(name) - 1);
		name[sizeof(name) - 1] = 0;
		pk_init(&p, ARTIFACT_PACK_MAGIC);
		pk_bytes(&p, "f", 1);
		pk_bytes(&p, name, sizeof(name));
		refused(&p, zero, ARTIFACT_UNPACK_BAD, "path longer than 4095 bytes");
	}
}

static void test_rejects_truncated(void **state)
{
	(void)state;
	struct pk p;
	char d[65];
	size_t full;

	pk_init(&p, ARTIFACT_PACK_MAGIC);
	pk_entry(&p, 'd', "a", NULL);
	pk_entry(&p, 'f', "a/f", "contents");
	pk_entry(&p, 'l', "a/l", "f");
	pk_end(&p, d);
	full = p.n;
	/* every cut, including those at an entry's boundary, is refused */
	for (size_t cut = 0; cut < full; cut++) {
		p.n = cut;
		refused(&p, d, ARTIFACT_UNPACK_BAD, cut < 8 ? "truncated" : "truncated: the stream ended at offset");
	}
}

static void test_rejects_digest_mismatch(void **state)
{
	(void)state;
	struct pk p;
	char d[65];

	pk_init(&p, ARTIFACT_PACK_MAGIC);
	pk_entry(&p, 'f', "a", "good");
	pk_end(&p, d);
	/* a valid pack, but not of the digest asked for: 409 */
	refused(&p, zero, ARTIFACT_UNPACK_MISMATCH, "digest mismatch: the pack's contents hash to");
	/* tampered contents: hashes to neither */
	p.b[8 + 3 + 8] = 'G';
	refused(&p, d, ARTIFACT_UNPACK_MISMATCH, "digest mismatch");
	/* contents intact, end marker tampered */
	p.b[8 + 3 + 8] = 'g';
	p.b[p.n - 1] ^= 1;
	refused(&p, d, ARTIFACT_UNPACK_BAD, "end marker's digest");
}

static void test_init_rejects_bad_digest(void **state)
{
	(void)state;
	struct artifact_unpack u;
	struct gerr err;
	char *home = xasprintf("%s/home", dir);
	assert_int_equal(artifact_unpack_init(&u, home, "../../etc", &err), ARTIFACT_UNPACK_BAD);
	artifact_unpack_release(&u);
	assert_int_equal(artifact_unpack_init(&u, home, "ABCDEF", &err), ARTIFACT_UNPACK_BAD);
	artifact_unpack_release(&u);
	free(home);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip_same_digest_and_tree, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_artifact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writer_refuses_links_out, setup, teardown),
		cmocka_unit_test(test_check_path_and_target),
		cmocka_unit_test_setup_teardown(test_valid_hand_made_pack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rejects_bad_magic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rejects_bad_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rejects_order_and_parents, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rejects_symlinks_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_chain_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rejects_sizes_and_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rejects_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rejects_digest_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_rejects_bad_digest, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
