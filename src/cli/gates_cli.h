/*
 * gates_cli.h — what the CLI adds to requests for the gates and records:
 * the environment's gates from the spec, the notify list, the commit time
 * of the deployed git SHA (DORA lead time), and the results of pre-checks.
 * deploy.c calls gates_cli_decorate and gates_cli_pre_checks before it sends
 * a deploy; promote.c does the same.
 */
#ifndef GANTRY_CLI_GATES_CLI_H
#define GANTRY_CLI_GATES_CLI_H
#include "common.h"
#include "cli/cli.h"
#include <jansson.h>

struct spec;

/* the spec when it loads, silently NULL otherwise (owned by caller, spec_free) */
struct spec *gates_cli_spec(const struct cli_ctx *ctx);

/*
 * Adds to a deploy request (borrowed): "gates" (the environment's protection,
 * promote_from, min_soak and the service's checks), "notify" and
 * "commit_time" (of HEAD in the spec's directory, when it is a git work tree).
 */
void gates_cli_decorate(const struct spec *spec, const char *svc, const char *env, json_t *req);
/* adds only "notify" (incident commands): the spec is optional there */
void gates_cli_add_notify(const struct cli_ctx *ctx, json_t *req);

/*
 * Runs services.SVC.checks.pre in the spec's directory (printing each one
 * unless quiet) and stores the results in req["checks"]. EXIT_OK when all
 * pass or none is defined; EXIT_REFUSED when one failed (nothing is sent).
 */
int gates_cli_pre_checks(const struct spec *spec, const char *svc, json_t *req, bool quiet);

/* commit time (unix seconds) of HEAD in dir, 0 when not a git work tree */
int64_t gates_cli_commit_time(const char *dir);

/* pretty JSON on stdout */
void gates_cli_print_json(const json_t *v);
/* the positive integer in s, or -1 */
long gates_cli_id(const char *s);

#endif
