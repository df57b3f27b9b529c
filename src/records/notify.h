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

struct json_t;

struct store;

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
 * borrowed. st: the caller's connection to the state database (or NULL:
 * one is opened on db_path); db_path: the same database, for the worker.
 * Returns the number queued.
 */
int notify_send(struct store *st, const char *db_path, const struct json_t *cfg, const char *event,
		const struct json_t *data);
/* starts the worker on db_path (idempotent): rows left by an earlier run are delivered */
int notify_start(const char *db_path);
/* the worker has run and nothing is left to deliver (tests wait for it) */
bool notify_idle(void);
#endif
