/*
 * table.c — every operation of the API, with the least role that may run
 * it and how a scoped role limits it (api.h). The dispatcher decides from
 * these rows alone; a handler checks only what depends on the data (an
 * approval's deployment, the environments an incident freezes, policy
 * keys in a spec). docs/security.md lists the same table for people.
 */
#include "common.h"
#include "api/api.h"

const struct api_op api_ops[] = {
	/* reads */
	{ "ping", op_ping, false, ROLE_VIEWER, API_SCOPE_NONE, false },
	{ "whoami", op_whoami, false, ROLE_VIEWER, API_SCOPE_NONE, false },
	{ "status", op_status, false, ROLE_VIEWER, API_SCOPE_NONE, false },
	{ "history", op_history, false, ROLE_VIEWER, API_SCOPE_NONE, false },
	{ "events", op_events, false, ROLE_VIEWER, API_SCOPE_NONE, false },
	{ "deployments", op_deployments, false, ROLE_VIEWER, API_SCOPE_NONE, false },
	{ "incident_list", op_incident_list, false, ROLE_VIEWER, API_SCOPE_NONE, false },
	{ "audit", op_audit, false, ROLE_VIEWER, API_SCOPE_NONE, false },
	{ "audit_verify", op_audit_verify, false, ROLE_VIEWER, API_SCOPE_NONE, false },
	{ "promotion_source", op_promotion_source, false, ROLE_VIEWER, API_SCOPE_NONE, false },
	{ "gates_check", op_gates_check, false, ROLE_VIEWER, API_SCOPE_NONE, false },
	{ "dora", op_dora, false, ROLE_VIEWER, API_SCOPE_NONE, false },
	{ "spec_show", op_spec_show, false, ROLE_VIEWER, API_SCOPE_NONE, false },
	{ "spec_history", op_spec_history, false, ROLE_VIEWER, API_SCOPE_NONE, false },
	{ "spec_diff", op_spec_diff, false, ROLE_VIEWER, API_SCOPE_NONE, false },
	/* changes to a service in an environment */
	{ "deploy", op_deploy, true, ROLE_DEPLOYER, API_SCOPE_TARGET, false },
	{ "rollback", op_rollback, true, ROLE_DEPLOYER, API_SCOPE_TARGET, false },
	{ "restart", op_restart, true, ROLE_DEPLOYER, API_SCOPE_TARGET, false },
	{ "scale", op_scale, true, ROLE_DEPLOYER, API_SCOPE_TARGET, false },
	{ "traffic", op_traffic, true, ROLE_DEPLOYER, API_SCOPE_TARGET, false },
	{ "pause", op_rollout_command, true, ROLE_DEPLOYER, API_SCOPE_TARGET, false },
	{ "resume", op_rollout_command, true, ROLE_DEPLOYER, API_SCOPE_TARGET, false },
	{ "abort", op_rollout_command, true, ROLE_DEPLOYER, API_SCOPE_TARGET, false },
	{ "promote_canary", op_rollout_command, true, ROLE_DEPLOYER, API_SCOPE_TARGET, false },
	/* the spec: config keys by a deployer, policy keys by an admin (spec_owner.c) */
	{ "apply", op_apply, true, ROLE_DEPLOYER, API_SCOPE_NONE, true },
	/* incidents: the scope of the incident's service/environment (an
	 * incident naming none covers every one); closing one that freezes an
	 * environment needs the approver role (ops_records.c) */
	{ "incident_open", op_incident_open, true, ROLE_DEPLOYER, API_SCOPE_NONE, true },
	{ "incident_close", op_incident_close, true, ROLE_DEPLOYER, API_SCOPE_NONE, true },
	/* approvals: the scope of the deployment they decide (ops_records.c) */
	{ "approve", op_approve, true, ROLE_APPROVER, API_SCOPE_NONE, true },
	{ "reject", op_reject, true, ROLE_APPROVER, API_SCOPE_NONE, true },
	/* the artifact store over TCP (tcp.c streams them: no handler here) */
	{ "artifact_upload", NULL, true, ROLE_DEPLOYER, API_SCOPE_NONE, false },
	{ "artifact_exists", NULL, false, ROLE_VIEWER, API_SCOPE_NONE, false },
	/* users: an admin of every service and environment */
	{ "user_add", op_user_add, true, ROLE_ADMIN, API_SCOPE_ALL, true },
	{ "user_remove", op_user_remove, true, ROLE_ADMIN, API_SCOPE_ALL, true },
	{ "user_list", op_user_list, false, ROLE_ADMIN, API_SCOPE_NONE, false },
	{ NULL, NULL, false, 0, API_SCOPE_NONE, false },
};
