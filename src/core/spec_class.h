/*
 * spec_class.h — which spec keys are policy, and what changed between two specs.
 *
 * `gantry apply` stores the whole spec as numbered versions. Every spec key
 * is classified:
 *
 *   POLICY  decides whether a change may happen (roles, users, environments'
 *           protection, promote_from, min_soak, services' checks, notify):
 *           only an admin may change it;
 *   CONFIG  what is deployed and how (run, env, replicas, probes, resources,
 *           strategy, analyses...): a deployer may change it.
 *
 * An apply diffs the stored spec against the proposed one (spec_tree_json,
 * spec_diff) and refuses a non-admin's apply when spec_diff_has_policy().
 *
 * SPEC_CLASS_UNKNOWN means "no row of the class table covers this path". The
 * caller must treat it as POLICY (fail safe): a key nobody classified is
 * never changeable by a deployer. The unit test fails when a key printed by
 * spec_print_keys() has no row, so a new spec key must be given a class.
 *
 * Pure: no I/O.
 */
#ifndef GANTRY_CORE_SPEC_CLASS_H
#define GANTRY_CORE_SPEC_CLASS_H
#include "common.h"

struct json_t;
struct spec;

enum spec_class { SPEC_CLASS_UNKNOWN = 0, SPEC_CLASS_CONFIG, SPEC_CLASS_POLICY };

/* "config", "policy", "unknown" (static strings) */
const char *spec_class_name(enum spec_class c);

/*
 * The class of a CONCRETE dotted key path (borrowed), as spec_diff() writes
 * it: "environments.production.protection.approvals",
 * "services.web.environments.production.env.GREETING" (an override is the
 * same key as services.S.env), "services.web.strategy.canary.steps[2]",
 * "analysis_templates.slo.interval", "roles.alice".
 *
 * Name levels (environments.E, services.S, analysis.NAME) are matched by
 * position; "[N]" list indexes match "[]" (so the patterns spec_print_keys()
 * prints classify as well). A malformed path ("a..b", "a[x]") is UNKNOWN.
 * Then: the exact row's class; else
 * the class of the longest enclosing subtree row (protection, checks,
 * roles...); else, below a row whose value is a map or list of values (env,
 * hosts, steps, metrics, match...), that row's class; else
 * SPEC_CLASS_UNKNOWN, which the caller treats as policy. NULL: UNKNOWN.
 *
 * Keys are split at '.', so a key that itself contains a dot shifts the
 * levels and (below a validated prefix) classifies as UNKNOWN, never as a
 * wrong class; spec_diff() classifies from the keys themselves.
 */
enum spec_class spec_key_class(const char *path);

/*
 * The spec's YAML tree as JSON (new reference; NULL only when spec is NULL):
 * mappings -> objects (keys in document order), sequences -> arrays, scalars
 * -> strings as written ("3" stays "3", "true" stays "true"), null or empty
 * values (~, null, nothing) -> JSON null. This is what apply stores and diffs.
 */
struct json_t *spec_tree_json(const struct spec *spec);

/*
 * What changed from old_tree to new_tree (both borrowed, as spec_tree_json
 * makes them; old_tree NULL = nothing, the first apply). A new reference: an
 * array, sorted by path (strcmp), of one object per changed leaf:
 *
 *   {"path": "services.web.replicas", "op": "change"|"add"|"remove",
 *    "old": V|null, "new": V|null, "class": "config"|"policy"|"unknown"}
 *
 * Objects present on both sides are compared key by key. An object on one
 * side only (the other absent, null or not an object) is walked so that
 * every leaf below it gets its own row (removing an environment reports each
 * of its protection keys, as policy); an empty object is a leaf. Arrays and
 * scalars are compared as whole values (json_equal) at their path. "old" or
 * "new" is null when that side is absent (op says which); a null value
 * present on one side only (an environment written as "qa:") is an add or a
 * remove with that null as its value.
 *
 * Paths join keys with '.' (no escaping: they are for people); "class" comes
 * from the keys themselves (see spec_key_class).
 */
struct json_t *spec_diff(const struct json_t *old_tree, const struct json_t *new_tree);

/*
 * True when any row of diff (borrowed) is policy or unknown, or has no
 * class, or diff is not an array (fail safe): only an admin may apply it.
 */
bool spec_diff_has_policy(const struct json_t *diff);

/*
 * diff (borrowed) for people, one line per row (owned by the caller, free()):
 *   "  ~ services.hello.replicas: 2 -> 3\n"
 *   "  + environments.qa.replicas: 1\n"
 *   "  - environments.production.protection.approvals: 2 (policy)\n"
 * Values are compact JSON, strings left unquoted when they are plain words
 * (no spaces, quotes, brackets, commas or "->"). Unknown rows end with
 * " (unknown: treated as policy)". An empty diff gives "".
 */
char *spec_diff_text(const struct json_t *diff);

#endif
