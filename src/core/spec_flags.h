/*
 * spec_flags.h — the spec's top-level `flags:` (feature flags, flags/flags.h
 * has the grammar): checked with FILE:LINE:COL diagnostics when a spec is
 * loaded, and handed to flags/ as typed JSON.
 */
#ifndef GANTRY_CORE_SPEC_FLAGS_H
#define GANTRY_CORE_SPEC_FLAGS_H
#include "common.h"
#include "core/diag.h"
#include <jansson.h>

struct spec;

/* adds a diagnostic for each problem in `flags:` (one per flag), in the
 * overrides environments.E.flags, and in the flag_off actions of
 * rollback_on and analyses; returns how many (spec_load runs it) */
int spec_flags_check(const struct spec *spec, const char *file, const char *src, size_t srclen,
		     struct diags *diags);

/*
 * The spec's flags as JSON for flag_defs_parse (new reference; NULL when
 * the spec has none). Variant values are typed as YAML reads them: plain
 * true/false are booleans, plain numbers numbers, the rest strings;
 * mappings and lists inside a variant are objects and arrays.
 */
json_t *spec_flags_json(const struct spec *spec);
/*
 * The same for environment env: each flag with the keys its
 * environments.ENV.flags.NAME sets (default, variants, rules) replaced by
 * those (new reference; NULL when the spec has no flags). env NULL: the
 * top-level definitions.
 */
json_t *spec_flags_json_env(const struct spec *spec, const char *env);

#endif
