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
/* from the controller's tick: every running release takes its next step */
void releases_tick(void);
/* the record as the API shows it (new reference) */
json_t *releases_json(const struct release_row *r);

#endif
