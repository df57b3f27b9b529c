/*
 * releases.h — gantry release, driven by the controller (src/daemon/releases.c).
 */
#ifndef GANTRY_DAEMON_RELEASES_H
#define GANTRY_DAEMON_RELEASES_H
#include "common.h"
#include "gates/gates.h"
#include "store/store_release.h"
#include <jansson.h>

/*
 * A new release of env from req ("services": [{"service", "digest",
 * "version"}], "only": [names] or absent for every service) against the
 * stored spec: recorded, announced, and its first level started. Reply
 * (new reference): {"ok", "release": ID, "record"} or the refusal.
 */
json_t *releases_create(json_t *req, const struct identity *who, const char *env);
/*
 * Release id of from (succeeded) promoted to env to: the artifacts its
 * services rolled out (each still serving in from) as a new release of to,
 * each service's deploy a promotion ({"from", "revision"}), under to's
 * gates (promote_from, min_soak, windows, approvals: decided once). The
 * reply as releases_create's.
 */
json_t *releases_promote(int64_t id, const char *from, const char *to, const struct identity *who);
/*
 * The DORA figures of releases (gantry dora --releases), per environment
 * (env NULL: each one with releases), of the releases created in [since,
 * until] (unix s): a release is one deployment (kind promote when
 * promoted); one that ended rolled_back, failed or paused is a failed
 * change, detected when its service failed, restored when its rollback
 * ended (rolled_back) or by the next release that succeeded; refused,
 * rejected, expired and aborted ones deployed nothing and do not count;
 * incidents of the environment count as for a deploy, except those gantry
 * opened for an automatic rollback (a release's failed deploy: its own
 * failure, counted once). Lead time: from the oldest commit time among its services. A new JSON
 * array (as op dora's "dora", each with "environment" and "releases":
 * true), or an error reply ({"ok": false}).
 */
json_t *releases_dora(const char *env, int64_t since, int64_t until);
/* from the controller's tick: every running release takes its next step */
void releases_tick(void);
/*
 * The gates of release id cover the deploy of svc@env with digest by who:
 * the stored release is running, was made by who, its gates passed (or were
 * approved) when it started, and it deploys that artifact of svc now. Its
 * deploys then pass windows, freezes, promotion and approvals on the
 * release's decision (gates_evaluate_request).
 */
bool releases_covers(int64_t id, const struct identity *who, const char *svc, const char *env, const char *digest);
/*
 * The approval of a release (deployment d of kind "release") is complete:
 * the release starts (d updated). From gates_deployment_go; the reply as
 * approve's: {"ok", "deployment", "state": "release_started", "release"}.
 */
struct deployment_row;
json_t *releases_approved(struct deployment_row *d);
/*
 * op "resume" or "abort" of release id of env by who (in scope for each of
 * its services): resume a paused release (its failed services are tried
 * again, the skipped ones wait again, and it goes on); abort a pending,
 * running or paused one (what it changed is rolled back, highest level
 * first, once what runs has finished; a pending one ends "aborted").
 * Recorded, announced (release_resumed, release_aborted). Reply: {"ok",
 * "release", "state", "record"} or the refusal.
 */
json_t *releases_command(const char *op, int64_t id, const char *env, const struct identity *who, const char *reason);
/* the record as the API shows it (new reference) */
json_t *releases_json(const struct release_row *r);

#endif
