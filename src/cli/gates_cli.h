/*
 * gates_cli.h — the CLI's helpers for the gates and records: the commit
 * time of the deployed git SHA (DORA lead time), following a deployment
 * while the controller runs its pre-deployment checks, ids.
 * The gates, checks and webhooks themselves live in the controller.
 */
#ifndef GANTRY_CLI_GATES_CLI_H
#define GANTRY_CLI_GATES_CLI_H
#include "common.h"
#include "cli/cli.h"
#include <jansson.h>

/*
 * Follows deployment id of svc@env while the controller runs its
 * pre-deployment checks; prints their results. *row: the deployment's
 * record then (owned by caller). EXIT_OK when it started, EXIT_REFUSED
 * when a check failed (nothing deployed), else the error's exit code.
 */
int gates_cli_wait_deployment(const struct cli_ctx *ctx, const char *svc, const char *env, json_int_t id,
			      json_t **row);

/*
 * After a deploy's reply resp (deploy, promote): when the controller runs
 * the pre-deployment checks first, follows them (as above) and puts the
 * record's "revision" and "rollout" into resp. EXIT_OK when it started.
 */
int gates_cli_deploy_started(const struct cli_ctx *ctx, const char *svc, const char *env, json_t *resp);

/* commit time (unix seconds) of HEAD in dir, 0 when not a git work tree */
int64_t gates_cli_commit_time(const char *dir);

/* the positive integer in s, or -1 */
long gates_cli_id(const char *s);

#endif
