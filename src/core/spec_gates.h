/*
 * spec_gates.h — the gate keys of the spec, checked with FILE:LINE:COL
 * diagnostics when a spec is loaded (gates/gspec.h reads them into the
 * JSON the CLI sends with a deploy):
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
 *
 * And the words of those keys that gates/ shares: roles, severities, and
 * what a check object may be (the same rules when the controller reads a
 * policy: gates/gates.h, gates/checks.h).
 */
#ifndef GANTRY_CORE_SPEC_GATES_H
#define GANTRY_CORE_SPEC_GATES_H
#include "common.h"
#include "core/diag.h"

struct spec;
struct json_t;

/* adds a diagnostic for each problem in the gate keys; returns how many (spec_load runs it) */
int spec_gates_check(const struct spec *spec, const char *file, const char *src, size_t srclen,
		     struct diags *diags);

enum role { ROLE_VIEWER = 0, ROLE_DEPLOYER, ROLE_APPROVER, ROLE_ADMIN };

int role_parse(const char *s);   /* -1 when unknown */
const char *role_name(int role);

/* severities P0 (worst) .. P3 */
bool severity_valid(const char *s);

/*
 * A pre- or post-deployment check (services.S.checks):
 *   {"run": "./scripts/smoke.sh", "timeout": "30s"}      passes when it exits 0
 *   {"http": "GET /health", "expect": 200, "timeout": "5s"} against 127.0.0.1:PORT
 * (gates/checks.h runs them.)
 */
#define CHECK_DEFAULT_TIMEOUT_MS 30000
#define CHECK_MAX_TIMEOUT_MS (30 * 60000)

/* validates one check object (borrowed); err names the problem */
int check_validate(const struct json_t *check, struct gerr *err);
/* the check's timeout into *ms (the default when it has none); -1 with err when invalid */
int check_timeout(const struct json_t *check, int64_t *ms, struct gerr *err);

#endif
