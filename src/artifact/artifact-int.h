/*
 * artifact-int.h — what the snapshot (artifact.c) and the pack format
 * (pack.c) share, so that both walk, order and hash an artifact
 * the same way and a pack's digest is the one a snapshot would give.
 * Private to src/artifact/.
 */
#ifndef GANTRY_ARTIFACT_ARTIFACT_INT_H
#define GANTRY_ARTIFACT_ARTIFACT_INT_H
#include "common.h"
#include <sodium.h>
#include <sys/stat.h>

#define ARTIFACT_MAX_ENTRIES 200000
#define ARTIFACT_MAX_TOTAL_BYTES (4LL << 30) /* file contents */

struct artifact__entry {
	char *rel;   /* owned: the path relative to the artifact root */
	mode_t mode; /* from lstat */
};

/* the entries of an artifact in digest order (strcmp of rel) */
struct artifact__list {
	struct artifact__entry *v;
	size_t n, cap;
};

/*
 * Walks dir into l (caller's storage, zeroed; release it with
 * artifact__list_release even on failure): directories, regular files and
 * symlinks, skipping .git, .gantry and the state directory home (borrowed,
 * may be NULL or missing) when it lies inside; sorted. Bounded by
 * ARTIFACT_MAX_ENTRIES and ARTIFACT_MAX_TOTAL_BYTES.
 */
int artifact__list(const char *dir, const char *home, struct artifact__list *l, struct gerr *err);
void artifact__list_release(struct artifact__list *l);

/* 'd', 'l', 'x' (a regular file with an execute bit) or 'f' */
char artifact__type(mode_t mode);
/* true for a file name the walk skips (".git", ".gantry") */
bool artifact__skipped_name(const char *name, size_t len);

/*
 * The digest's part for one entry before its contents: the type byte, rel
 * and its NUL, and for a symlink its target and NUL (target NULL
 * otherwise). A file's contents follow as they are, nothing else.
 */
void artifact__hash_head(crypto_generichash_state *h, char type, const char *rel, const char *target);
/* the digest as 64 lowercase hex digits and a NUL */
void artifact__hex(const unsigned char sum[32], char hex[65]);

/*
 * Whether the symlink at rel (relative to the artifact whose root
 * directory rootfd is) with this target stays beneath the root when it is
 * resolved *through the tree as it is*: links met on the way (the chain,
 * e.g. a/up -> .. and b -> a/up/a/up/../..) are followed, a component that
 * does not exist (or is not a directory) counts as a directory, so the
 * answer holds for anything a later entry could add. 0, or -1 and *why
 * (static text): absolute, climbs above the root, more than 40 links, a
 * path longer than 8191 bytes. Call it once every entry exists: an entry
 * made later can change what an earlier link means (a -> z/../x, z -> .).
 */
int artifact__link_check(int rootfd, const char *rel, const char *target, const char **why);
/*
 * A directory descriptor (O_PATH) for the parent of rel beneath rootfd,
 * with no symlink followed on the way (openat2 RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS; an O_NOFOLLOW walk with openat where openat2 is
 * missing); *base points into rel at its last component. Returns rootfd
 * itself for a top-level rel (do not close it: compare first), a new
 * descriptor the caller closes, or -1 with errno.
 */
int artifact__parent_at(int rootfd, const char *rel, const char **base);

/* removes path and everything below it, never following a symlink */
void artifact__rm_rf(const char *path);
/* chmod -R a-w (dirs 0555, files 0444/0555), links untouched */
void artifact__seal(const char *path);
/* makes home and home/artifacts (0700) if missing; returns home/artifacts (owned by caller) */
char *artifact__dir(const char *home);

#endif
