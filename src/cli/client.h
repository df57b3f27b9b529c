/*
 * client.h — the CLI side of the daemon API (docs/api.md): one JSON request
 * line to HOME/api.sock, one JSON response line back; or, when GANTRY_API
 * is set, POST GANTRY_API/v1/OP with Authorization: Bearer $GANTRY_TOKEN.
 */
#ifndef GANTRY_CLI_CLIENT_H
#define GANTRY_CLI_CLIENT_H
#include "common.h"
#include "cli/cli.h"
#include <jansson.h>

/*
 * Sends req (consumed). On success *resp is the reply (owned by caller) and
 * EXIT_OK is returned. Otherwise the error is printed (daemon not running,
 * or the daemon's {"ok":false,"error"}) and the exit code returned.
 */
int client_call(const struct cli_ctx *ctx, json_t *req, json_t **resp);

/* GANTRY_API without a trailing '/' (static storage), NULL when unset:
 * commands that read HOME directly refuse to run then */
const char *client_api_url(void);

/*
 * Over GANTRY_API: makes sure the daemon has the artifact of dir (borrowed;
 * home, borrowed, may be NULL: the state directory a local snapshot would
 * skip). Computes its digest with the pack writer, asks GET
 * /v1/artifacts/DIGEST and uploads the pack with PUT when it is missing,
 * with a line on stderr either way. digest_out: 65 bytes. EXIT_OK, or the
 * error printed and its exit code.
 */
int client_push_artifact(const char *dir, const char *home, char *digest_out);

/* polls status until rollout `id` of svc@env leaves "progressing";
 * prints progress lines; returns EXIT_OK (complete) or EXIT_FAILED */
int client_wait_rollout(const struct cli_ctx *ctx, const char *svc, const char *env,
			json_int_t id, int64_t timeout_ms);

/* who is acting: $GANTRY_USER, $USER, or the passwd name */
const char *client_user(void);

/* a required "SVC" positional and --env flag, with a clear error */
int client_need_svc_env(const char *cmd, const char **pos, int npos, const char *env);

/* gantry pause | resume [--full] | abort SERVICE --env ENV [--reason TEXT] */
int client_rollout_command(const char *op, int argc, char **argv, struct cli_ctx *ctx);

/* set by SIGINT/SIGTERM once client_catch_stop() ran: ends -f/--watch loops */
#include <signal.h>
extern volatile sig_atomic_t client_stop;
void client_catch_stop(void);

#endif
