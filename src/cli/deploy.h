/*
 * deploy.h — what gantry release shares with gantry deploy (src/cli/deploy.c).
 */
#ifndef GANTRY_CLI_DEPLOY_H
#define GANTRY_CLI_DEPLOY_H
#include "common.h"
#include "cli/cli.h"
#include "core/spec.h"
#include "artifact/artifact.h"
#include <jansson.h>

/*
 * The artifact of svc in env, as a deploy sends it: a docker service's
 * image ("digest", "image_ref" set in req), else build, snapshot or upload
 * ("digest" set in req). cfg: caller's storage, resolved here (the caller
 * releases it, also on error); ver: the version (version, else the git
 * short SHA, else the digest's first 12). 0, or the exit code after
 * printing the error.
 */
int cli_deploy_artifact(struct cli_ctx *ctx, const struct spec *spec, const char *svc, const char *env,
			const char *version, json_t *req, struct svc_config *cfg, char *ver, size_t verlen,
			char digest[ARTIFACT_DIGEST_HEX + 1]);

#endif
