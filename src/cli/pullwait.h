/*
 * pullwait.h — the CLI follows a deployment waiting for its image
 * (state "pulling" in the reply of deploy, promote, rollback, restart).
 */
#ifndef GANTRY_CLI_PULLWAIT_H
#define GANTRY_CLI_PULLWAIT_H
#include "common.h"
#include "cli/cli.h"
#include <jansson.h>

/*
 * resp's state is "pulling": waits until the pull ends, showing its
 * progress on stderr (a tty: one line rewritten with \r; else each
 * image_pull event on a line of its own). Then resp gets the deployment's
 * state, revision and rollout, as if the controller had answered after
 * the pull. EXIT_OK (also when there was nothing to wait for), or the
 * error printed and EXIT_FAILED (the pull failed: nothing changed).
 */
int cli_pull_follow(const struct cli_ctx *ctx, const char *svc, const char *env, json_t *resp);

#endif
