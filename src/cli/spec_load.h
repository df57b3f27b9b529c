/*
 * spec_load.h — the one way a command reads the spec: resolve -f, load,
 * print every diagnostic, or hand the spec back.
 */
#ifndef GANTRY_CLI_SPEC_LOAD_H
#define GANTRY_CLI_SPEC_LOAD_H
#include "common.h"
#include "cli/cli.h"
#include "core/spec.h"

/*
 * Loads the spec named by ctx (-f, default ./gantry.yaml). On success
 * returns EXIT_OK and *out is owned by the caller (spec_free). Otherwise
 * prints every diagnostic to stderr and returns EXIT_USAGE with *out NULL.
 */
int cli_load_spec(struct cli_ctx *ctx, struct spec **out);

#include <jansson.h>

#define CLI_SPEC_MAX (4 << 20)
/*
 * Puts the spec file (-f, default ./gantry.yaml) into req as "spec":
 * {"name": PATH, "text": YAML}: the controller validates and applies it.
 * EXIT_OK, or the error printed and EXIT_USAGE.
 */
int cli_spec_attach(struct cli_ctx *ctx, json_t *req);
/*
 * When environment env of spec has a SOPS file (environments.E.secrets.file,
 * relative to the spec's directory), puts it into req as "sops": {"name":
 * PATH, "text": CIPHERTEXT}: the controller decrypts it. A file that is not
 * SOPS-encrypted (a plain YAML/JSON document) is never sent. EXIT_OK, or
 * the error printed and EXIT_USAGE.
 */
int cli_sops_attach(const struct spec *spec, const char *env, json_t *req);
/* a spec diff (core/spec_class.h rows), one "  ~ path: old -> new" line each */
void cli_print_spec_diff(FILE *f, const json_t *diff);
/* -f was given, or ./gantry.yaml exists */
bool cli_spec_present(const struct cli_ctx *ctx);

#endif
