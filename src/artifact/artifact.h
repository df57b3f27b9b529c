/*
 * artifact.h — the content-addressed artifact store (HOME/artifacts/DIGEST).
 *
 * A deploy snapshots the artifact directory: its digest is BLAKE2b-256 over
 * every entry's type, relative path, executable bit and content, in sorted
 * order. Replicas run from the snapshot, so a rollback runs exactly the old
 * code even after the working tree changed. .git and .gantry are skipped,
 * and so is the state directory when it lies inside the artifact.
 */
#ifndef GANTRY_ARTIFACT_ARTIFACT_H
#define GANTRY_ARTIFACT_ARTIFACT_H
#include "common.h"

#define ARTIFACT_DIGEST_HEX 64

/* snapshots dir into home/artifacts/<digest>; digest_out gets 65 bytes */
int artifact_snapshot(const char *dir, const char *home, char *digest_out, struct gerr *err);
/* makes every snapshot in home/artifacts read-only (dirs 0555, files
 * 0444/0555) and home/artifacts 0711: for snapshots an older gantry left
 * writable. Snapshots are sealed when they are made. */
void artifact_seal_all(const char *home);
/*
 * Recomputes the digest of home/artifacts/<digest> as artifact_snapshot
 * computed it (the same walk and hash) into actual_out (65 bytes). 0 when
 * it matches, 1 when it does not (tampered), -1 when it cannot be read
 * (err). Reads every byte: call it off the event loop.
 */
int artifact_verify(const char *home, const char *digest, char *actual_out, struct gerr *err);
/* removes home/artifacts/<digest> */
int artifact_remove(const char *home, const char *digest, struct gerr *err);
/*
 * Removes what interrupted writers left in home/artifacts: every upload's
 * .tmp-up-* (only the daemon writes those: call it at its start, under
 * serve.lock) and the .tmp-PID-* of a snapshot whose process is gone.
 * Returns how many it removed.
 */
int artifact_clean_temp(const char *home);

#endif
