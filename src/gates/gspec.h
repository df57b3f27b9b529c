/*
 * gspec.h — the gate keys of the spec (core/spec_gates.h lists them and
 * checks them when the spec is loaded) turned into the JSON the CLI sends
 * with a deploy (the daemon never reads the spec).
 */
#ifndef GANTRY_GATES_GSPEC_H
#define GANTRY_GATES_GSPEC_H
#include "common.h"

struct spec;
struct json_t;

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
