/*
 * notify.h — webhooks on events (top-level `notify:` in the spec):
 *   [{"url": "https://hooks.slack.com/...", "format": "slack"},
 *    {"url": "https://hooks.example.com/gantry", "format": "standard", "secret": "HOOK",
 *     "events": ["rollout_failed", "emergency_deploy"]},
 *    {"url": "http://127.0.0.1:9000/hook", "allow_private": true}]
 *
 * Formats: "slack" posts {"text": "..."} (Slack incoming webhook); "standard"
 * posts {"type": EVENT, "timestamp": RFC3339, "data": {...}} signed as in the
 * Standard Webhooks spec: headers webhook-id, webhook-timestamp (unix
 * seconds) and webhook-signature "v1,BASE64(HMAC-SHA256(key, id.timestamp.body))"
 * where key is the base64-decoded part of a "whsec_..." secret, or the raw
 * secret otherwise.
 *
 * Notifications are policy, so they cannot be turned against the controller:
 *  - Secrets: `secret: NAME` names a line NAME=VALUE (# comments) of the
 *    controller's own file HOME/webhook-secrets (HOME = the directory of the
 *    state database), never the spec nor the environment (`secret_env` is
 *    refused). The file is read when a delivery is posted (a rotation needs
 *    no restart) and must be a regular file owned by the controller's euid
 *    with no group/other permission; otherwise, or when NAME is missing, the
 *    delivery fails (recorded, without retries). A value is never logged,
 *    recorded or stored: the outbox holds the secret's name.
 *  - Private targets need `allow_private: true` (core/notify_target.h):
 *    checked in the spec and on each address actually connected, whatever
 *    the name resolved to (notify.c, open_checked); a refused delivery is
 *    recorded as notify_failed.
 *  - Responses: only the status is used; the body is discarded, at most
 *    16 KiB of it read. A recorded failure is "HTTP CODE" or libcurl's
 *    error, never text from the receiver.
 *
 * Delivery is durable: notify_send() writes an outbox row per target into
 * the state database (with the caller's connection: inside its transaction,
 * if any), and one worker thread (never the event loop) posts them: 3
 * attempts, rescheduled 1 s then 4 s later (other deliveries go on
 * meanwhile), 5 s timeout each; outcomes are recorded as events
 * (notify_sent / notify_failed). Rows left by a crash or a stop are
 * delivered when the daemon starts again (notify_start): at least once,
 * the same webhook-id each time.
 */
#ifndef GANTRY_RECORDS_NOTIFY_H
#define GANTRY_RECORDS_NOTIFY_H
#include "common.h"
#include "core/notify_target.h"

struct json_t;
struct sockaddr;
struct store;

/*
 * The value of secret name (borrowed) from the text of a secrets file
 * (lines NAME=VALUE, blanks around both ignored, # comments) into out
 * (caller's, outlen bytes); -1 with err when missing, empty or too long.
 * err never holds a value.
 */
int notify_secret_parse(const char *text, size_t len, const char *name, char *out, size_t outlen,
			struct gerr *err);
/*
 * The same from the file at path, which must be a regular file (not a
 * link) owned by the euid, with (mode & 077) == 0, at most 64 KiB.
 * The caller wipes out after use.
 */
int notify_secret_read(const char *path, const char *name, char *out, size_t outlen, struct gerr *err);
/* does target t want event? (no "events" list: every event) */
bool notify_wants(const struct json_t *target, const char *event);

/* the bodies (owned by caller) */
char *notify_slack_body(const char *event, const struct json_t *data);
char *notify_standard_body(const char *event, int64_t ts, const struct json_t *data);
/* "v1,BASE64" into out; -1 on a bad secret */
int notify_sign(const char *secret, const char *msg_id, int64_t ts, const char *body, char *out, size_t len);

/*
 * Queues event for every target of cfg (borrowed) that wants it; data is
 * borrowed. st: the caller's connection to the state database (or NULL:
 * one is opened on db_path); db_path: the same database, HOME/state.db,
 * for the worker (which reads HOME/webhook-secrets beside it). Returns the
 * number queued.
 */
int notify_send(struct store *st, const char *db_path, const struct json_t *cfg, const char *event,
		const struct json_t *data);
/* starts the worker on db_path (idempotent; the first db_path stays): rows left by an earlier run are delivered */
int notify_start(const char *db_path);
/* the worker has run and nothing is left to deliver (tests wait for it) */
bool notify_idle(void);
#endif
