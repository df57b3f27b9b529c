/*
 * ops_db.c — `gantry db status|history|up|down` (docs/api.md, "db_*").
 * The database is the one of the service environment's target revision:
 * its URL comes from that revision's resolved config (migrations.
 * database_env), never from the request, and its files from that
 * revision's artifact. The work runs on a thread (daemon/migrations.c):
 * these answer {"job": N} at once, and db_job gives the result.
 */
#include "common.h"
#include "api/api.h"
#include "daemon/daemon.h"
#include "daemon/migrations.h"
#include "daemon/reply.h"
#include "gates/gates.h"
#include "migrate/migrate.h"
#include <jansson.h>

static json_t *db_op(const char *action, json_t *req, const struct api_ctx *c)
{
	json_t *err = NULL, *to_j;
	const char *svc = api_str(req, "service", true, &err);
	const char *env = api_str(req, "environment", true, &err);
	struct svcenv *se;
	struct revcfg *rc;
	struct gerr gerr;
	int64_t to = !strcmp(action, "down") ? -2 : INT64_MAX;

	if (err)
		return err;
	if ((to_j = json_object_get(req, "to"))) {
		if (!json_is_integer(to_j) || json_integer_value(to_j) < -1)
			return reply_error(2, "/to: a version (an integer), or -1 for none applied");
		to = json_integer_value(to_j);
	}
	se = daemon_svcenv(svc, env, false);
	if (!se || !se->row.target_revision)
		return reply_error(2, "%s@%s has never been deployed", svc, env);
	rc = daemon_revcfg(se, se->row.target_revision, &gerr);
	if (!rc)
		return reply_error(1, "%s", gerr.msg);
	if (!rc->dir)
		return reply_error(2, "%s@%s: migrations need a process service's artifact", svc, env);
	return mig_flow_cli(action, svc, env, &rc->cfg, rc->dir, rc->number, to, caller_actor(c->caller));
}

json_t *op_db_status(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	return db_op("status", req, c);
}

json_t *op_db_history(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	return db_op("history", req, c);
}

json_t *op_db_up(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	return db_op("up", req, c);
}

json_t *op_db_down(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	return db_op("down", req, c);
}

json_t *op_db_restore(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	json_t *r = json_object_get(req, "revision");
	if (!json_is_integer(r) || json_integer_value(r) <= 0)
		return reply_error(2, "/revision: the revision whose snapshot to restore (a positive integer)");
	json_object_set(req, "to", r);
	return db_op("restore", req, c);
}

json_t *op_db_job(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	json_t *j = json_object_get(req, "job");
	if (!json_is_integer(j) || json_integer_value(j) <= 0)
		return reply_error(2, "/job: a positive integer is required");
	return mig_flow_job(json_integer_value(j));
}
