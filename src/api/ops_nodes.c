/*
 * ops_nodes.c — `nodes`: the nodes of the clusters the controller runs
 * revisions on (environments.E.cluster), as its last poll saw them
 * (daemon/swarmrt.h): hostname, role, state, availability, and how many
 * of our replicas each one runs. A cluster that does not answer is one
 * entry with its error.
 */
#include "common.h"
#include "api/api.h"
#include "daemon/daemon.h"
#include "daemon/swarmrt.h"

json_t *op_nodes(struct daemon *ctl, json_t *req, const struct api_ctx *c)
{
	json_t *err = NULL;
	const char *env = api_str(req, "environment", false, &err);
	(void)ctl;
	(void)c;
	if (err)
		return err;
	return json_pack("{s:b, s:o}", "ok", 1, "nodes", swarmrt_nodes_json(env));
}
