#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include "gates/gates.h"
#include "gates/window.h"

static int64_t ts(const char *s)
{
	int64_t t = 0;
	assert_int_equal(parse_rfc3339(s, &t), 0);
	return t;
}

static struct gate_policy policy(const char *json)
{
	struct gate_policy p;
	struct gerr err;
	json_t *j = json_loads(json, 0, NULL);
	assert_non_null(j);
	if (gate_policy_from_json(j, &p, &err) < 0)
		fail_msg("%s", err.msg);
	json_decref(j);
	return p;
}

static const char *gate(const struct gate_verdict *v, const char *name)
{
	return json_string_value(json_object_get(v->gates, name));
}

static const char *PROD = "{\"approvals\": 2, \"approval_ttl\": \"1h\", \"windows\": {\"deny\": [\"Fri 17:00-Mon 08:00\"],"
			  " \"timezone\": \"Europe/Berlin\"}, \"freeze_on_incident\": [\"P0\", \"P1\"],"
			  " \"promote_from\": \"staging\", \"min_soak\": \"30m\"}";

static void test_policy_parse(void **state)
{
	static const char *const bad[] = {
		"[]", "{\"approvals\": -1}", "{\"approvals\": \"2\"}", "{\"approval_ttl\": \"soon\"}",
		"{\"windows\": {\"deny\": [\"Fri 17:00-Mon\"]}}", "{\"windows\": {\"timezone\": \"Mars/Base\"}}",
		"{\"freeze_on_incident\": [\"P9\"]}", "{\"promote_from\": \"\"}", "{\"aprovals\": 1}",
		"{\"windows\": [\"Fri\"]}", "{\"checks\": []}",
	};
	struct gate_policy p = policy(PROD);
	(void)state;
	assert_int_equal(p.approvals, 2);
	assert_int_equal(p.approval_ttl, 3600);
	assert_int_equal(p.min_soak, 1800);
	assert_int_equal(p.ndeny, 1);
	assert_string_equal(p.timezone, "Europe/Berlin");
	assert_int_equal(p.nfreeze, 2);
	assert_string_equal(p.promote_from, "staging");
	gate_policy_release(&p);
	p = policy("{}");
	assert_int_equal(p.approval_ttl, 86400);
	gate_policy_release(&p);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct gerr err;
		json_t *j = json_loads(bad[i], 0, NULL);
		assert_non_null(j);
		if (gate_policy_from_json(j, &p, &err) == 0)
			fail_msg("accepted %s", bad[i]);
		assert_non_null(strstr(err.msg, "/gates"));
		json_decref(j);
	}
}

struct fixture {
	struct gate_policy p;
	struct identity alice;
	struct incident_row inc[2];
	struct promotion_fact promo;
	struct gate_input in;
	struct gate_verdict v;
};

static void setup_fx(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	f->p = policy(PROD);
	strlcpy_g(f->alice.name, "alice", sizeof(f->alice.name));
	f->alice.role = ROLE_DEPLOYER;
	f->promo = (struct promotion_fact){ true, 4, "serving", ts("2024-05-08T09:00:00Z") };
	f->in.policy = &f->p;
	f->in.service = "api";
	f->in.environment = "production";
	f->in.kind = "deploy";
	f->in.who = &f->alice;
	f->in.now = ts("2024-05-08T12:00:00Z"); /* a Wednesday */
	f->in.promotion = &f->promo;
}

static void eval(struct fixture *f)
{
	gate_verdict_release(&f->v);
	gates_evaluate(&f->in, &f->v);
}

static void test_evaluate(void **state)
{
	struct fixture f;
	(void)state;
	setup_fx(&f);
	eval(&f);
	assert_int_equal(f.v.result, GATE_PENDING_APPROVAL);
	assert_non_null(strstr(f.v.reason, "2 approvals by approvers other than alice"));
	assert_string_equal(gate(&f.v, "window"), "passed");
	assert_string_equal(gate(&f.v, "freeze"), "passed");
	assert_string_equal(gate(&f.v, "promotion"), "passed");
	f.in.approved = true;
	eval(&f);
	assert_int_equal(f.v.result, GATE_ALLOW);
	assert_string_equal(gate(&f.v, "approvals"), "passed");

	/* a viewer cannot deploy at all */
	f.alice.role = ROLE_VIEWER;
	eval(&f);
	assert_int_equal(f.v.result, GATE_REFUSE);
	assert_int_equal(f.v.code, 3);
	assert_non_null(strstr(f.v.reason, "permission denied"));
	f.alice.role = ROLE_DEPLOYER;

	/* Friday 18:00 in Berlin: refused with the next allowed time, Monday 08:00 CEST */
	f.in.now = ts("2024-05-10T16:00:00Z");
	eval(&f);
	assert_int_equal(f.v.result, GATE_REFUSE);
	assert_int_equal(f.v.code, 3);
	assert_int_equal(f.v.next_allowed, ts("2024-05-13T06:00:00Z"));
	assert_non_null(strstr(f.v.reason, "Mon 2024-05-13 08:00 CEST"));
	assert_string_equal(gate(&f.v, "window"), "refused");
	/* a dry run evaluates every gate; the first refusal stays the reason */
	f.in.all = true;
	f.in.approved = false;
	f.inc[0] = (struct incident_row){ .id = 3, .severity = "P0", .title = "all down" };
	f.in.incidents = f.inc;
	f.in.nincidents = 1;
	eval(&f);
	assert_int_equal(f.v.result, GATE_REFUSE);
	assert_non_null(strstr(f.v.reason, "not allowed now"));
	assert_string_equal(gate(&f.v, "freeze"), "refused");
	assert_string_equal(gate(&f.v, "approvals"), "pending");
	f.in.all = false;
	f.in.nincidents = 0;
	/* a rollback is never blocked by a window */
	f.in.kind = "rollback";
	eval(&f);
	assert_int_equal(f.v.result, GATE_ALLOW);
	f.in.kind = "deploy";
	f.in.approved = false;
	/* an emergency needs approver or admin, and a reason */
	f.in.emergency = true;
	eval(&f);
	assert_int_equal(f.v.result, GATE_REFUSE);
	assert_non_null(strstr(f.v.reason, "approver or admin"));
	f.alice.role = ROLE_APPROVER;
	eval(&f);
	assert_int_equal(f.v.result, GATE_REFUSE);
	assert_int_equal(f.v.code, 2);
	f.in.reason = "payment outage, hotfix";
	eval(&f);
	assert_int_equal(f.v.result, GATE_ALLOW);
	assert_string_equal(gate(&f.v, "window"), "overridden");
	assert_string_equal(gate(&f.v, "approvals"), "overridden");
	assert_string_equal(gate(&f.v, "emergency"), "yes");
	gate_verdict_release(&f.v);
	gate_policy_release(&f.p);
}

static void test_freeze(void **state)
{
	struct fixture f;
	(void)state;
	setup_fx(&f);
	f.in.approved = true;
	f.in.incidents = f.inc;
	f.in.nincidents = 2;
	f.inc[0] = (struct incident_row){ .id = 7, .severity = "P2", .title = "slow search" };
	f.inc[1] = (struct incident_row){ .id = 8, .severity = "P1", .title = "checkout down", .service = "checkout" };
	eval(&f);
	assert_int_equal(f.v.result, GATE_ALLOW); /* P2 does not freeze; the P1 is another service's */
	strlcpy_g(f.inc[1].service, "api", sizeof(f.inc[1].service));
	eval(&f);
	assert_int_equal(f.v.result, GATE_REFUSE);
	assert_non_null(strstr(f.v.reason, "incident 8 (P1: checkout down)"));
	f.inc[1].service[0] = 0;
	strlcpy_g(f.inc[1].environment, "staging", sizeof(f.inc[1].environment));
	eval(&f);
	assert_int_equal(f.v.result, GATE_ALLOW);
	f.inc[1].environment[0] = 0;
	eval(&f);
	assert_int_equal(f.v.result, GATE_REFUSE);
	f.in.kind = "rollback";
	eval(&f);
	assert_int_equal(f.v.result, GATE_ALLOW);
	assert_string_equal(gate(&f.v, "freeze"), "skipped (rollback)");
	f.in.kind = "deploy";
	f.inc[1].closed_at = f.in.now;
	eval(&f);
	assert_int_equal(f.v.result, GATE_ALLOW);
	gate_verdict_release(&f.v);
	gate_policy_release(&f.p);
}

static void test_promotion(void **state)
{
	struct fixture f;
	(void)state;
	setup_fx(&f);
	f.in.approved = true;
	f.promo.found = false;
	eval(&f);
	assert_int_equal(f.v.result, GATE_REFUSE);
	assert_non_null(strstr(f.v.reason, "never deployed to staging"));
	f.promo.found = true;
	strlcpy_g(f.promo.status, "rolled_back", sizeof(f.promo.status));
	eval(&f);
	assert_int_equal(f.v.result, GATE_REFUSE);
	assert_non_null(strstr(f.v.reason, "revision 4 there is rolled_back"));
	strlcpy_g(f.promo.status, "serving", sizeof(f.promo.status));
	f.promo.serving_since = f.in.now - 600;
	eval(&f);
	assert_int_equal(f.v.result, GATE_REFUSE);
	assert_non_null(strstr(f.v.reason, "served in staging for 10m"));
	assert_non_null(strstr(f.v.reason, "try again in 20m"));
	f.promo.serving_since = f.in.now - 1800;
	eval(&f);
	assert_int_equal(f.v.result, GATE_ALLOW);
	/* a clock behind the rollout's: served for 0s; fine without min_soak */
	f.promo.serving_since = f.in.now + 3600;
	eval(&f);
	assert_int_equal(f.v.result, GATE_REFUSE);
	assert_non_null(strstr(f.v.reason, "served in staging for 0s"));
	f.p.min_soak = 0;
	eval(&f);
	assert_int_equal(f.v.result, GATE_ALLOW);
	f.p.min_soak = 1800;
	f.promo.serving_since = f.in.now - 1800;
	/* an emergency does not skip the promotion rule */
	f.in.emergency = true;
	f.in.reason = "hotfix";
	f.alice.role = ROLE_ADMIN;
	f.promo.found = false;
	eval(&f);
	assert_int_equal(f.v.result, GATE_REFUSE);
	gate_verdict_release(&f.v);
	gate_policy_release(&f.p);
}

static void test_no_policy(void **state)
{
	struct fixture f;
	(void)state;
	setup_fx(&f);
	f.in.policy = NULL;
	eval(&f);
	assert_int_equal(f.v.result, GATE_ALLOW);
	gate_verdict_release(&f.v);
	gate_policy_release(&f.p);
}

static void test_approvals_count(void **state)
{
	int64_t now = 100000;
	char by[64] = "";
	struct approval_row a[] = {
		{ 1, "alice", "approve", now - 10, "", "" },   /* the requester: never counts */
		{ 1, "bob", "approve", now - 10, "", "" },
		{ 1, "carol", "approve", now - 4000, "", "" }, /* older than the ttl */
		{ 1, "dave", "approve", now - 100, "", "" },
	};
	struct approval_row r[] = {
		{ 1, "bob", "approve", now - 10, "", "" },
		{ 1, "erin", "reject", now - 5, "", "" },
	};
	struct approval_row self_reject[] = { { 1, "alice", "reject", now, "", "" } };
	(void)state;
	assert_int_equal(approvals_count(a, 4, "alice", now, 3600, by, sizeof(by)), 2);
	assert_int_equal(approvals_count(a, 1, "alice", now, 3600, by, sizeof(by)), 0);
	assert_int_equal(approvals_count(a, 4, "bob", now, 3600, by, sizeof(by)), 2);
	assert_int_equal(approvals_count(a, 4, "alice", now, 60, by, sizeof(by)), 1);
	assert_int_equal(approvals_count(r, 2, "alice", now, 3600, by, sizeof(by)), -1);
	assert_string_equal(by, "erin");
	assert_int_equal(approvals_count(self_reject, 1, "alice", now, 3600, by, sizeof(by)), 0);
}

static void test_roles(void **state)
{
	(void)state;
	assert_int_equal(role_parse("approver"), ROLE_APPROVER);
	assert_int_equal(role_parse("root"), -1);
	assert_string_equal(role_name(ROLE_ADMIN), "admin");
	assert_true(severity_valid("P0") && severity_valid("P3"));
	assert_false(severity_valid("P4") || severity_valid("p1") || severity_valid("P10"));
}

static struct identity scoped(int role, const char *envs, const char *svcs)
{
	struct identity id = { .role = role };
	strlcpy_g(id.name, "ana", sizeof(id.name));
	strlcpy_g(id.environments, envs, sizeof(id.environments));
	strlcpy_g(id.services, svcs, sizeof(id.services));
	return id;
}

static void test_identity_covers(void **state)
{
	struct identity all = scoped(ROLE_ADMIN, "", ""), env = scoped(ROLE_DEPLOYER, "staging,dev", ""),
			svc = scoped(ROLE_DEPLOYER, "", "web,api"), both = scoped(ROLE_APPROVER, "staging", "web"),
			admin = scoped(ROLE_ADMIN, "staging", "");
	char buf[256];
	(void)state;
	/* unscoped: everything, including "every" */
	assert_true(identity_covers(&all, "web", "production"));
	assert_true(identity_covers(&all, "", ""));
	assert_true(identity_covers(&all, NULL, NULL));
	/* scoped to environments: each listed one, any service; not production, not "every" */
	assert_true(identity_covers(&env, "web", "staging"));
	assert_true(identity_covers(&env, "anything", "dev"));
	assert_false(identity_covers(&env, "web", "production"));
	assert_false(identity_covers(&env, "web", ""));
	assert_true(identity_covers(&env, "", "staging")); /* services unscoped: every service is covered */
	assert_true(identity_covers(&env, "web", NULL));    /* not restricted by environment */
	/* a name is matched whole, never as a prefix or a substring of the list */
	assert_false(identity_covers(&env, "web", "stag"));
	assert_false(identity_covers(&env, "web", "staging,dev"));
	assert_false(identity_covers(&env, "web", "ev"));
	/* scoped to services */
	assert_true(identity_covers(&svc, "api", "production"));
	assert_false(identity_covers(&svc, "db", "production"));
	assert_false(identity_covers(&svc, "", "production"));
	/* both axes must cover */
	assert_true(identity_covers(&both, "web", "staging"));
	assert_false(identity_covers(&both, "api", "staging"));
	assert_false(identity_covers(&both, "web", "dev"));
	assert_true(identity_covers(&both, NULL, "staging"));
	/* the scope applies to admins too */
	assert_false(identity_covers(&admin, "web", "production"));
	assert_false(identity_covers(&admin, "", ""));
	assert_false(identity_covers(NULL, NULL, NULL));

	assert_string_equal(identity_role_text(&all, buf, sizeof(buf)), "admin");
	assert_string_equal(identity_role_text(&env, buf, sizeof(buf)), "deployer for staging,dev");
	assert_string_equal(identity_role_text(&svc, buf, sizeof(buf)), "deployer for services web,api");
	assert_string_equal(identity_role_text(&both, buf, sizeof(buf)), "approver for staging and services web");
}

static void test_scope_json(void **state)
{
	static const struct {
		const char *json, *want;
	} good[] = {
		{ "null", "" }, { "[]", "" }, { "[\"staging\"]", "staging" }, { "[\"staging\", \"dev-2\"]", "staging,dev-2" },
	};
	static const struct {
		const char *json, *ptr;
	} bad[] = {
		{ "\"staging\"", "/environments: must be a list" },
		{ "[\"staging\", \"Prod\"]", "/environments/1: 'Prod' is not a valid environment name" },
		{ "[\"a,b\"]", "/environments/0: 'a,b'" },
		{ "[\"\"]", "/environments/0: '' is not" },
		{ "[\"-x\"]", "/environments/0:" },
		{ "[1]", "/environments/0: not a string" },
	};
	char out[USER_SCOPE_LEN], small[11]; /* "staging,dev" needs 12 */
	struct gerr err;
	json_t *j;
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		j = json_loads(good[i].json, JSON_DECODE_ANY, NULL);
		if (scope_from_json(j, "/environments", "environment", out, sizeof(out), &err) < 0)
			fail_msg("%s: %s", good[i].json, err.msg);
		assert_string_equal(out, good[i].want);
		json_decref(j);
	}
	assert_int_equal(scope_from_json(NULL, "/environments", "environment", out, sizeof(out), &err), 0);
	assert_string_equal(out, "");
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		j = json_loads(bad[i].json, JSON_DECODE_ANY, NULL);
		assert_non_null(j);
		if (scope_from_json(j, "/environments", "environment", out, sizeof(out), &err) == 0)
			fail_msg("accepted %s", bad[i].json);
		if (!strstr(err.msg, bad[i].ptr))
			fail_msg("%s: got '%s', want '%s'", bad[i].json, err.msg, bad[i].ptr);
		json_decref(j);
	}
	/* bounded: a list longer than the room is refused, never cut */
	j = json_loads("[\"staging\", \"dev\"]", 0, NULL);
	assert_int_equal(scope_from_json(j, "/services", "service", small, sizeof(small), &err), -1);
	assert_non_null(strstr(err.msg, "/services: too many service names"));
	json_decref(j);
	/* and back */
	j = scope_to_json("staging,dev");
	assert_int_equal(json_array_size(j), 2);
	assert_string_equal(json_string_value(json_array_get(j, 1)), "dev");
	json_decref(j);
	j = scope_to_json("");
	assert_int_equal(json_array_size(j), 0);
	json_decref(j);
}

/* gates_evaluate's permission gate (the dry run, gates_check) refuses outside the scope */
static void test_evaluate_scope(void **state)
{
	struct fixture f;
	(void)state;
	setup_fx(&f);
	f.in.approved = true;
	strlcpy_g(f.alice.environments, "staging", sizeof(f.alice.environments));
	eval(&f);
	assert_int_equal(f.v.result, GATE_REFUSE);
	assert_int_equal(f.v.code, 3);
	assert_string_equal(f.v.reason, "permission denied: alice (role deployer for staging) cannot deploy api@production");
	assert_string_equal(gate(&f.v, "permission"), "refused");
	strlcpy_g(f.alice.environments, "staging,production", sizeof(f.alice.environments));
	eval(&f);
	assert_int_equal(f.v.result, GATE_ALLOW);
	strlcpy_g(f.alice.services, "web", sizeof(f.alice.services));
	eval(&f);
	assert_int_equal(f.v.result, GATE_REFUSE);
	gate_verdict_release(&f.v);
	gate_policy_release(&f.p);
}

/* the actor recorded for a caller: the name it acts under once identified, else its OS user */
static void test_caller_actor(void **state)
{
	struct caller c = { .uid = 1000, .user = "alice" };
	(void)state;
	assert_string_equal(caller_actor(&c), "alice");
	strlcpy_g(c.claimed, "deployer-bot", sizeof(c.claimed));
	assert_string_equal(caller_actor(&c), "deployer-bot");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy_parse), cmocka_unit_test(test_evaluate),
		cmocka_unit_test(test_freeze),       cmocka_unit_test(test_promotion),
		cmocka_unit_test(test_no_policy),    cmocka_unit_test(test_approvals_count),
		cmocka_unit_test(test_roles),        cmocka_unit_test(test_identity_covers),
		cmocka_unit_test(test_scope_json),   cmocka_unit_test(test_evaluate_scope),
		cmocka_unit_test(test_caller_actor),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
