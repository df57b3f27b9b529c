/*
 * audit_anchor.h — what keeps the audit chain honest from outside the
 * database (docs/internals/records.md, "Audit log"):
 *
 *   HOME/audit.key     the 32-byte MAC key, mode 0600, the controller's own
 *   HOME/audit.head    "SEQ HEXMAC TIME\n", the newest entry, replaced
 *                      atomically (tmp + fsync + rename) on every append
 *   --audit-export F   one line per entry appended (entry JSON with its MAC),
 *                      meant for another disk or an append-only file
 */
#ifndef GANTRY_DAEMON_AUDIT_ANCHOR_H
#define GANTRY_DAEMON_AUDIT_ANCHOR_H
#include "common.h"
#include "records/audit.h"

struct store;
struct json_t;

/*
 * At start, before anything is audited: reads HOME/audit.key into key, or
 * creates it when the store has no entry sealed with a key yet; refuses a
 * key others can read, not owned by us, or not a regular file; records the
 * switch point (meta audit_mac_from) on the first start of this build;
 * seeds an empty export file with the newest entry. -1 with err naming
 * the file.
 */
int audit_anchor_start(struct store *s, const char *home, const char *export_path,
		       unsigned char key[AUDIT_KEY_BYTES], struct gerr *err);

/* after e was appended: HOME/audit.head, then the export (failures logged) */
void audit_anchor_publish(const char *home, const char *export_path, const struct audit_entry *e);

/*
 * The whole chain checked against the anchors, streaming the rows:
 * {"intact", "entries", "first_bad" (seq or null), "message", "anchors"}
 * (new reference), or NULL with err.
 */
struct json_t *audit_anchor_verify(struct store *s, const char *home, const char *export_path,
				   const unsigned char key[AUDIT_KEY_BYTES], struct gerr *err);

#endif
