/*
 * pack.h — an artifact as one byte stream, to upload it to a
 * daemon on another machine (PUT /v1/artifacts/DIGEST, docs/api.md).
 *
 * The format ("pack"), version 1:
 *
 *   "GNTPACK1"                                   magic and version, 8 bytes
 *   then per entry, in the artifact's digest order (strcmp of the path):
 *     TYPE PATH NUL                               TYPE: one byte d f x l
 *     l:   TARGET NUL
 *     f/x: SIZE (8 bytes, big-endian) and SIZE bytes of contents
 *   'e' and the 32-byte BLAKE2b-256 digest        end marker
 *
 * The digest is the one artifact_snapshot gives for the same directory
 * (artifact-int.h: type, path, NUL, target, NUL | contents), so a deploy
 * names the same artifact whether it was snapshotted locally or uploaded.
 * Modes other than the execute bit, owners and times are not carried.
 *
 * A pack never holds what the receiver refuses (artifact_pack_check_path,
 * artifact_pack_check_target): the writer fails early, on the client,
 * naming the entry, rather than after an upload.
 */
#ifndef GANTRY_ARTIFACT_PACK_H
#define GANTRY_ARTIFACT_PACK_H
#include "common.h"
#include "artifact/artifact.h"
#include "artifact/artifact-int.h"

#define ARTIFACT_PACK_MAGIC "GNTPACK1"
#define ARTIFACT_PACK_MAGIC_LEN 8
#define ARTIFACT_PACK_MAX_NAME 4095 /* bytes of a path or a symlink target */
/* a pack's bytes at most: contents + per entry head (type, path, NUL, size or target, NUL) */
#define ARTIFACT_PACK_MAX_BYTES (ARTIFACT_MAX_TOTAL_BYTES + 512LL * 1024 * 1024)
#define ARTIFACT_PACK_MAX_HEADS (512LL * 1024 * 1024) /* sum of the entry heads' bytes */

/* ---- rules both sides apply ---- */

/*
 * 0 if rel (len bytes, no NUL inside) is a path a pack may hold: relative,
 * no empty, ".", ".." , ".git" or ".gantry" component, at most
 * ARTIFACT_PACK_MAX_NAME bytes. Else -1 and *why (static text).
 */
int artifact_pack_check_path(const char *rel, size_t len, const char **why);
/*
 * 0 if a symlink at rel may point at target: relative, non-empty, and
 * never above the artifact's root when its ".." are applied to rel's
 * directory as text. Else -1 and *why (static text). Only the first
 * filter: a chain of links can climb with text that passes it, so both
 * sides also resolve every link through the tree (artifact__link_check)
 * once all entries exist.
 */
int artifact_pack_check_target(const char *rel, const char *target, const char **why);

/* ---- writing: a pull stream, for libcurl's read callback ---- */

struct artifact_pack {
	struct artifact__list list;
	char *root;                    /* owned */
	int rootfd;                    /* root, O_PATH: links are resolved beneath it */
	size_t next;                   /* index of the next entry */
	int fd;                        /* the file whose contents are being read, or -1 */
	const char *cur;               /* borrowed from list: its path, for messages */
	uint64_t left;                 /* its bytes still to read */
	unsigned char head[1 + 2 * (ARTIFACT_PACK_MAX_NAME + 1) + 8];
	size_t head_len, head_off;     /* bytes of head still to hand out */
	crypto_generichash_state h;
	unsigned char sum[32];
	bool ended;                    /* the end marker is in head */
	uint64_t produced;             /* bytes handed out */
	uint64_t content_bytes;        /* sum of the file sizes (known after open) */
};

/*
 * Lists dir (borrowed) as artifact_snapshot does (skipping home, borrowed,
 * may be NULL) into p (caller's storage). Release with artifact_pack_close,
 * also after a failure.
 */
int artifact_pack_open(struct artifact_pack *p, const char *dir, const char *home, struct gerr *err);
/*
 * Fills buf with up to len (>= 1) bytes of the stream; *got = 0 at its end.
 * -1 with err naming the entry when a file cannot be read, changed size
 * while being read, or holds what a pack may not (an absolute symlink...).
 */
int artifact_pack_read(struct artifact_pack *p, void *buf, size_t len, size_t *got, struct gerr *err);
/* after the end: the digest (65 bytes with the NUL) */
void artifact_pack_digest(const struct artifact_pack *p, char *digest_out);
void artifact_pack_close(struct artifact_pack *p);

/*
 * The whole stream of dir to fd (-1: nowhere, only the digest and the
 * size). digest_out: 65 bytes; *size (may be NULL): the pack's bytes.
 */
int artifact_pack_write(const char *dir, const char *home, int fd, char *digest_out, uint64_t *size,
			struct gerr *err);

/* ---- reading: a push stream, fed as bytes arrive ---- */

enum {
	ARTIFACT_UNPACK_BAD = -1,      /* not a valid pack: 400 */
	ARTIFACT_UNPACK_MISMATCH = -2, /* valid, but its digest is not the expected one: 409 */
	ARTIFACT_UNPACK_IO = -3,       /* the receiver could not write (disk full...): 500 */
};

struct artifact_unpack {
	char *adir, *tmp, *final;      /* owned: HOME/artifacts, its .tmp-up-XXXXXX, HOME/artifacts/DIGEST */
	char expect[ARTIFACT_DIGEST_HEX + 1];
	crypto_generichash_state h;
	int state;
	int failed;                    /* 0 or the ARTIFACT_UNPACK_* of the failure */
	uint64_t off;                  /* stream offset of the next byte */
	char type;
	char name[ARTIFACT_PACK_MAX_NAME + 1], target[ARTIFACT_PACK_MAX_NAME + 1];
	char prev[ARTIFACT_PACK_MAX_NAME + 1];
	size_t name_len, target_len, fill;
	unsigned char num[32];         /* the size or the end marker's digest, being read */
	uint64_t left;                 /* contents of the current file still to come */
	int fd;
	size_t entries;
	uint64_t content_bytes, head_bytes;
	char **dirs;                   /* owned: directories made, in order (so sorted) */
	size_t ndirs, dircap;
	char **links;                  /* owned: symlinks made, checked at the end */
	size_t nlinks, linkcap;
	int rootfd;                    /* tmp, O_PATH: everything is made beneath it */
	char digest[ARTIFACT_DIGEST_HEX + 1]; /* after finish: the computed digest */
};

/*
 * Starts receiving the pack of digest (64 lowercase hex digits, borrowed)
 * into home/artifacts/.tmp-up-XXXXXX. u is the caller's storage; release
 * it with artifact_unpack_release whatever happens. -1 (ARTIFACT_UNPACK_BAD
 * for a malformed digest, _IO when the temp directory cannot be made).
 */
int artifact_unpack_init(struct artifact_unpack *u, const char *home, const char *digest, struct gerr *err);
/*
 * Takes the next len bytes (borrowed), split anywhere. 0, or one of the
 * ARTIFACT_UNPACK_* codes with err naming the offset and the entry; after
 * a failure the temp directory is gone and every later call fails.
 */
int artifact_unpack_feed(struct artifact_unpack *u, const void *data, size_t len, struct gerr *err);
/*
 * The stream ended: checks it was complete and its digest the expected
 * one, then moves it to home/artifacts/DIGEST. *created is false when that
 * was there already (kept; this copy dropped). 0 or ARTIFACT_UNPACK_*.
 */
int artifact_unpack_finish(struct artifact_unpack *u, bool *created, struct gerr *err);
/* removes the temp directory if it is still there; frees */
void artifact_unpack_release(struct artifact_unpack *u);

#endif
