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
/* how long --wait waits for a new revision's rollout: --timeout (timeout_ms), else
 * the service's progress deadline (0: 10 minutes) and a minute */
static inline int64_t client_wait_ms(int64_t timeout_ms, int64_t progress_deadline_ms)
{
	return timeout_ms ? timeout_ms : (progress_deadline_ms ? progress_deadline_ms : 600000) + 60000;
}

/* who is acting: $GANTRY_USER, $USER, or the passwd name */
const char *client_user(void);

/*
 * cli_parse_opts for a command on one service environment ("SERVICE --env
 * ENV"): env points at the --env field of opts, read once they are
 * parsed. EXIT_OK with argv[0] the service, else the error printed (a
 * missing SERVICE or --env, an extra argument) and its exit code.
 */
int client_parse_target(struct cli_ctx *ctx, int argc, char **argv, void *opts, const char *const *env);

/* --wait and --timeout, for an options struct ST with `bool wait` and `int64_t timeout_ms` */
#define CLIENT_WAIT_OPTIONS(st, timeout_help)                                                              \
	CLI_BOOL('w', "wait", st, wait, "follow the rollout: exit 0 when it completes, 1 when it fails"), \
	CLI_DURATION(0, "timeout", st, timeout_ms, "DUR", 0, 0, timeout_help)
/* --emergency and --reason, for ST with `bool emergency` and `const char *reason`; what: what it skips */
#define CLIENT_EMERGENCY_OPTIONS(st, what)                                           \
	CLI_BOOL(0, "emergency", st, emergency, what " (approver or admin; audited)"), \
	CLI_STRING(0, "reason", st, reason, "TEXT", "why: required with --emergency")

/* req[key] = value, when value is not NULL (an option given) */
void client_req_str(json_t *req, const char *key, const char *value);
/* --emergency and its --reason into req */
void client_req_override(json_t *req, bool emergency, const char *reason);

/* v as one line of JSON on stdout (-o json of the commands that change something) */
void client_print_line(const json_t *v);
/* v as pretty JSON on stdout (-o json of the commands that read) */
void client_print_json(const json_t *v);
/* a reply as client_print_json, without its "ok" */
void client_print_reply(json_t *resp);

/* sleeps ms in 100 ms steps, returning early once client_stop is set (-f, --watch) */
void client_pause_ms(int ms);

/* set by SIGINT/SIGTERM once client_catch_stop() ran: ends -f/--watch loops */
#include <signal.h>
extern volatile sig_atomic_t client_stop;
void client_catch_stop(void);

#endif
