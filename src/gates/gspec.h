/*
 * gspec.h — the spec keys of the gates and records, checked with
 * FILE:LINE:COL diagnostics (called by spec_load) and turned into the JSON
 * the CLI sends with a deploy (the daemon never reads the spec):
 *
 *   environments.E.protection:
 *     approvals: 1                  # distinct approvers other than the requester
 *     approval_ttl: 24h
 *     windows: { allow: [...], deny: ["Fri 17:00-Mon 08:00"], timezone: Europe/Berlin }
 *     freeze_on_incident: [P0, P1]
 *     checklist: ["announce in #deploys"]   # manual items of `gantry checklist`
 *   environments.E.promote_from: staging
 *   environments.E.min_soak: 30m
 *   services.S.checks: { pre: [{run: CMD, timeout: 30s}], post: [{http: "GET /health", expect: 200}] }
 *   notify: [{ url: ..., format: slack|standard, secret: NAME, allow_private: false, events: [...] }]
 *   roles: { alice: approver,       # OS users; see `gantry user sync`
 *            ana: { role: deployer, environments: [staging], services: [web] } }
 */
#ifndef GANTRY_GATES_GSPEC_H
#define GANTRY_GATES_GSPEC_H
#include "common.h"
#include "core/diag.h"

struct spec;
struct json_t;

/* adds a diagnostic for each problem in the gate keys; returns how many */
int gspec_check(const struct spec *spec, const char *file, const char *src, size_t srclen, struct diags *diags);

/*
 * The "gates" object for a deploy of svc to env (gates.h, gate_policy_from_json),
 * with the service's checks; a new reference, never NULL (maybe empty).
 */
struct json_t *gspec_gates(const struct spec *spec, const char *svc, const char *env);
/* the notify list (new reference) or NULL */
struct json_t *gspec_notify(const struct spec *spec);
/*
 * roles: {"alice": "approver", "ana": {"role": "deployer", "environments":
 * ["staging"], "services": ["web"]}}, each user as written (a role, or an
 * object whose lists are there only when the spec has them); a new
 * reference, or NULL without roles
 */
struct json_t *gspec_roles(const struct spec *spec);
/* the manual checklist items of env (new reference, an array) */
struct json_t *gspec_checklist(const struct spec *spec, const char *env);

#endif
