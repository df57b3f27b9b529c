/*
 * notify.h — webhooks on events (top-level `notify:` in the spec):
 *   [{"url": "https://hooks.slack.com/...", "format": "slack"},
 *    {"url": "http://127.0.0.1:9000/hook", "format": "standard", "secret_env": "HOOK_SECRET",
 *     "events": ["rollout_failed", "emergency_deploy"]}]
 *
 * Formats: "slack" posts {"text": "..."} (Slack incoming webhook); "standard"
 * posts {"type": EVENT, "timestamp": RFC3339, "data": {...}} signed as in the
 * Standard Webhooks spec: headers webhook-id, webhook-timestamp (unix
 * seconds) and webhook-signature "v1,BASE64(HMAC-SHA256(key, id.timestamp.body))"
 * where key is the base64-decoded part of a "whsec_..." secret, or the raw
 * secret otherwise. The secret comes from the environment variable named by
 * secret_env in the environment of `gantry serve` (never from the spec).
 *
 * Delivery runs on one worker thread with a bounded queue (never on the
 * event loop): 3 attempts with backoff (1s, 4s), 5s timeout each; outcomes
 * are recorded as events (notify_failed / notify_sent) through the worker's
 * own connection to the state database.
 */
#ifndef GANTRY_RECORDS_NOTIFY_H
#define GANTRY_RECORDS_NOTIFY_H
#include "common.h"

struct json_t;

#define NOTIFY_QUEUE_MAX 256

/* validates the notify list (from the spec, sent by the CLI) */
int notify_config_check(const struct json_t *cfg, struct gerr *err);
/* does target t want event? (no "events" list: every event) */
bool notify_wants(const struct json_t *target, const char *event);

/* the bodies (owned by caller) */
char *notify_slack_body(const char *event, const struct json_t *data);
char *notify_standard_body(const char *event, int64_t ts, const struct json_t *data);
/* "v1,BASE64" into out; -1 on a bad secret */
int notify_sign(const char *secret, const char *msg_id, int64_t ts, const char *body, char *out, size_t len);

/*
 * Queues event for every target of cfg (borrowed) that wants it; data is
 * borrowed. db_path: the state database, for recording the outcome. Returns
 * the number queued (a full queue drops, and says so in the log).
 */
int notify_send(const char *db_path, const struct json_t *cfg, const char *event, const struct json_t *data);
/* nothing queued or being delivered (tests wait for it) */
bool notify_idle(void);

#endif
