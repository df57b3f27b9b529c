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
	{ "ping", op_ping, false, ROLE_VIEWER, API_SCOPE_NONE, false, "" },
	{ "whoami", op_whoami, false, ROLE_VIEWER, API_SCOPE_NONE, false, "" },
	{ "status", op_status, false, ROLE_VIEWER, API_SCOPE_NONE, false, "service environment" },
	{ "release_status", op_release_status, false, ROLE_VIEWER, API_SCOPE_NONE, false, "environment id" },
	{ "releases", op_releases, false, ROLE_VIEWER, API_SCOPE_NONE, false, "environment" },
	{ "history", op_history, false, ROLE_VIEWER, API_SCOPE_NONE, false, "service environment" },
	{ "nodes", op_nodes, false, ROLE_VIEWER, API_SCOPE_NONE, false, "environment" },
	{ "events", op_events, false, ROLE_VIEWER, API_SCOPE_NONE, false, "service environment after limit" },
	{ "deployments", op_deployments, false, ROLE_VIEWER, API_SCOPE_NONE, false, "service environment state limit" },
	{ "incident_list", op_incident_list, false, ROLE_VIEWER, API_SCOPE_NONE, false, "all" },
	{ "audit", op_audit, false, ROLE_VIEWER, API_SCOPE_NONE, false, "" },
	{ "audit_verify", op_audit_verify, false, ROLE_VIEWER, API_SCOPE_NONE, false, "" },
	{ "promotion_source", op_promotion_source, false, ROLE_VIEWER, API_SCOPE_NONE, false, "service from revision" },
	{ "gates_check", op_gates_check, false, ROLE_VIEWER, API_SCOPE_NONE, false, "service environment kind promotion digest emergency reason" },
	{ "dora", op_dora, false, ROLE_VIEWER, API_SCOPE_NONE, false, "service environment since releases" },
	{ "spec_show", op_spec_show, false, ROLE_VIEWER, API_SCOPE_NONE, false, "version" },
	{ "spec_history", op_spec_history, false, ROLE_VIEWER, API_SCOPE_NONE, false, "" },
	{ "spec_diff", op_spec_diff, false, ROLE_VIEWER, API_SCOPE_NONE, false, "from to spec" },
	{ "maintenance_status", op_maintenance_status, false, ROLE_VIEWER, API_SCOPE_NONE, false, "service environment" },
	/* changes to a service in an environment */
	{ "release", op_release, true, ROLE_DEPLOYER, API_SCOPE_NONE, false, "environment services only spec sops commit_time" },
	{ "release_resume", op_release_command, true, ROLE_DEPLOYER, API_SCOPE_NONE, false, "environment id reason" },
	{ "release_abort", op_release_command, true, ROLE_DEPLOYER, API_SCOPE_NONE, false, "environment id reason" },
	{ "release_promote", op_release_promote, true, ROLE_DEPLOYER, API_SCOPE_NONE, false, "environment id to" },
	{ "deploy", op_deploy, true, ROLE_DEPLOYER, API_SCOPE_TARGET, false, "service environment version digest image_ref spec sops set strategy emergency reason commit_time promotion" },
	{ "rollback", op_rollback, true, ROLE_DEPLOYER, API_SCOPE_TARGET, false, "service environment to_revision reason emergency schema" },
	{ "restart", op_restart, true, ROLE_DEPLOYER, API_SCOPE_TARGET, false, "service environment reason emergency" },
	{ "scale", op_scale, true, ROLE_DEPLOYER, API_SCOPE_TARGET, false, "service environment replicas reason emergency" },
	{ "traffic", op_traffic, true, ROLE_DEPLOYER, API_SCOPE_TARGET, false, "service environment weights reason emergency" },
	{ "pause", op_rollout_command, true, ROLE_DEPLOYER, API_SCOPE_TARGET, false, "service environment reason full" },
	{ "resume", op_rollout_command, true, ROLE_DEPLOYER, API_SCOPE_TARGET, false, "service environment reason full" },
	{ "abort", op_rollout_command, true, ROLE_DEPLOYER, API_SCOPE_TARGET, false, "service environment reason full" },
	{ "promote_canary", op_rollout_command, true, ROLE_DEPLOYER, API_SCOPE_TARGET, false, "service environment reason full" },
	/* maintenance mode: audited by the controller (daemon/maintenance.c) without the bypass secrets */
	{ "maintenance", op_maintenance, true, ROLE_DEPLOYER, API_SCOPE_TARGET, true, "service environment on message retry_after_s allow_headers" },
	/* the spec: config keys by a deployer, policy keys by an admin (spec_owner.c) */
	{ "apply", op_apply, true, ROLE_DEPLOYER, API_SCOPE_NONE, true, "spec expect_version dry_run" },
	/* incidents: the scope of the incident's service/environment (an
	 * incident naming none covers every one); closing one that freezes an
	 * environment needs the approver role (ops_records.c) */
	{ "incident_open", op_incident_open, true, ROLE_DEPLOYER, API_SCOPE_NONE, true, "severity title service environment" },
	{ "incident_close", op_incident_close, true, ROLE_DEPLOYER, API_SCOPE_NONE, true, "id resolution" },
	/* approvals: the scope of the deployment they decide (ops_records.c) */
	{ "approve", op_approve, true, ROLE_APPROVER, API_SCOPE_NONE, true, "deployment comment" },
	{ "reject", op_reject, true, ROLE_APPROVER, API_SCOPE_NONE, true, "deployment comment" },
	/* the artifact store over TCP (tcp.c streams them: no handler here) */
	{ "artifact_upload", NULL, true, ROLE_DEPLOYER, API_SCOPE_NONE, false, "digest" },
	{ "artifact_exists", NULL, false, ROLE_VIEWER, API_SCOPE_NONE, false, "digest" },
	/* users: an admin of every service and environment */
	{ "user_add", op_user_add, true, ROLE_ADMIN, API_SCOPE_ALL, true, "name role no_token environments services" },
	{ "user_remove", op_user_remove, true, ROLE_ADMIN, API_SCOPE_ALL, true, "name" },
	{ "user_list", op_user_list, false, ROLE_ADMIN, API_SCOPE_NONE, false, "" },
	/* the secret store (ops_secret.c): values never in a reply but get's, never audited;
	 * scoped by the request's environment in the handler */
	{ "secret_recipient", op_secret_recipient, false, ROLE_VIEWER, API_SCOPE_NONE, false, "" },
	{ "secret_list", op_secret_list, false, ROLE_VIEWER, API_SCOPE_NONE, false, "environment" },
	{ "secret_set", op_secret_set, true, ROLE_DEPLOYER, API_SCOPE_NONE, true, "environment name value generate rotate restart" },
	{ "secret_rm", op_secret_rm, true, ROLE_DEPLOYER, API_SCOPE_NONE, true, "environment name" },
	{ "secret_get", op_secret_get, false, ROLE_ADMIN, API_SCOPE_NONE, true, "environment name version" },
	/* feature flags (ops_flags.c): scoped by the request's environment in the handler;
	 * flag_set is audited by the controller (daemon/flags.c) */
	{ "flag_list", op_flag_list, false, ROLE_VIEWER, API_SCOPE_NONE, false, "environment" },
	{ "flag_history", op_flag_history, false, ROLE_VIEWER, API_SCOPE_NONE, false, "environment name" },
	{ "flag_set", op_flag_set, true, ROLE_DEPLOYER, API_SCOPE_NONE, true, "environment name state reason" },
	{ "flag_token", op_flag_token, false, ROLE_DEPLOYER, API_SCOPE_NONE, false, "environment" },
	/* the controller itself: replaced by the gantry binary on disk (daemon/upgrade.c) */
	{ "upgrade", op_upgrade, true, ROLE_ADMIN, API_SCOPE_ALL, false, "" },
	/* database migrations (ops_db.c): reads by a viewer, running them by an
	 * admin of the service environment (a deploy runs them as a deployer) */
	{ "db_status", op_db_status, false, ROLE_VIEWER, API_SCOPE_NONE, false, "service environment" },
	{ "db_history", op_db_history, false, ROLE_VIEWER, API_SCOPE_NONE, false, "service environment" },
	{ "db_job", op_db_job, false, ROLE_VIEWER, API_SCOPE_NONE, false, "job" },
	{ "db_up", op_db_up, true, ROLE_ADMIN, API_SCOPE_TARGET, false, "service environment to reason" },
	{ "db_down", op_db_down, true, ROLE_ADMIN, API_SCOPE_TARGET, false, "service environment to reason" },
	{ "db_restore", op_db_restore, true, ROLE_ADMIN, API_SCOPE_TARGET, false, "service environment revision reason" },
	{ NULL, NULL, false, 0, API_SCOPE_NONE, false, NULL },
};
