/*
 * The pure part of the swarm runtime (src/daemon/swarmplan.c): a
 * revision's service name, and what the controller asks Swarm for from
 * what a poll saw — never a scale below the live tasks while a replica
 * may serve from one, nothing while Swarm has not caught up.
 */
#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include "daemon/swarmrt.h"

static void test_name(void **state)
{
	char n[128], m[128];
	(void)state;
	swarmrt_service_name("5507e7aa-1234", "web", "production", 12, n, sizeof(n));
	assert_string_equal(n, "g5507e7-web-production-r12");
	/* the same inputs, the same name: a create after a crash meets it */
	swarmrt_service_name("5507e7aa-1234", "web", "production", 12, m, sizeof(m));
	assert_string_equal(n, m);
	/* a DNS label: lowercase, at most 63, a hash keeps long names apart */
	swarmrt_service_name("ABCDEF", "a-very-long-service-name-of-forty-chars-x", "environment-name-long", 7, n,
			     sizeof(n));
	assert_int_equal(strlen(n), 63);
	assert_int_equal(strncmp(n, "gabcdef-a-very-long", 19), 0);
	swarmrt_service_name("ABCDEF", "a-very-long-service-name-of-forty-chars-x", "environment-name-long", 8, m,
			     sizeof(m));
	assert_int_equal(strlen(m), 63);
	assert_string_not_equal(n, m);
	for (const char *p = n; *p; p++)
		assert_true((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-');
}

/* want alive zombies unsettled orphans rows replicas exists */
static struct swarmrt_plan plan(int want, int alive, int zombies, int unsettled, int orphans, int rows,
				uint64_t replicas, bool exists)
{
	struct swarmrt_counts c = { .want = want, .alive = alive, .zombies = zombies, .unsettled = unsettled,
				    .orphans = orphans, .rows = rows, .replicas = replicas, .exists = exists };
	return swarmrt_plan(&c);
}

static void test_plan(void **state)
{
	struct swarmrt_plan p;
	(void)state;
	/* no service: made with what the replicas want; nothing if none wants */
	p = plan(3, 0, 0, 0, 0, 3, 0, false);
	assert_int_equal(p.act, SWARMRT_CREATE);
	assert_int_equal(p.to, 3);
	assert_int_equal(plan(0, 0, 0, 0, 0, 2, 0, false).act, SWARMRT_NOTHING);
	/* steady */
	assert_int_equal(plan(3, 3, 0, 0, 0, 3, 3, true).act, SWARMRT_NOTHING);
	/* a replica waits for a task (its own ended): the ended slot dropped first, then one more */
	p = plan(3, 2, 0, 0, 0, 3, 3, true);
	assert_int_equal(p.act, SWARMRT_SCALE);
	assert_int_equal(p.from, 2);
	assert_int_equal(p.to, 3);
	/* scale up from a clean count: one step */
	p = plan(5, 3, 0, 0, 0, 5, 3, true);
	assert_int_equal(p.act, SWARMRT_SCALE);
	assert_int_equal(p.from, -1);
	assert_int_equal(p.to, 5);
	/* a task ended, its desired state still running: Swarm has not caught up, wait */
	assert_int_equal(plan(3, 2, 0, 1, 0, 3, 3, true).act, SWARMRT_NOTHING);
	/* a node died with one task: Swarm still counts it (a zombie). Its
	 * replica backs off: nothing to do, never a scale to 2 (Swarm would
	 * remove a task that serves) */
	assert_int_equal(plan(2, 2, 1, 0, 0, 3, 3, true).act, SWARMRT_NOTHING);
	/* ... then it waits for a task: one more on top of the zombie */
	p = plan(3, 2, 1, 0, 0, 3, 3, true);
	assert_int_equal(p.act, SWARMRT_SCALE);
	assert_int_equal(p.from, -1);
	assert_int_equal(p.to, 4);
	/* the node is back, the zombie ended: its slot dropped, nothing else */
	p = plan(3, 3, 0, 0, 0, 3, 4, true);
	assert_int_equal(p.act, SWARMRT_SCALE);
	assert_int_equal(p.to, 3);
	/* a replica stopped its task: the ended slot scaled away, nobody else touched */
	p = plan(2, 2, 0, 0, 0, 2, 3, true);
	assert_int_equal(p.act, SWARMRT_SCALE);
	assert_int_equal(p.to, 2);
	/* a live task nobody owns, with a container: stopped, never "scale down and let Swarm pick" */
	assert_int_equal(plan(2, 3, 0, 0, 1, 2, 3, true).act, SWARMRT_KILL_ORPHANS);
	/* surplus still pending (no container): scaled down (Swarm drops tasks that do not run first) */
	p = plan(2, 3, 0, 0, 0, 2, 3, true);
	assert_int_equal(p.act, SWARMRT_SCALE);
	assert_int_equal(p.to, 2);
	/* no replica of the revision left: the service goes */
	assert_int_equal(plan(0, 0, 0, 0, 0, 0, 3, true).act, SWARMRT_REMOVE);
	assert_int_equal(plan(0, 2, 1, 1, 2, 0, 3, true).act, SWARMRT_REMOVE);
	/* every replica backing off: their slots wait */
	p = plan(0, 0, 0, 0, 0, 3, 3, true);
	assert_int_equal(p.act, SWARMRT_SCALE);
	assert_int_equal(p.to, 0);
}

/* a manager that has just started says "unknown" of every node: the
 * tasks there are neither alive (for binding, for the counts) nor lost */
static void test_unsure_nodes(void **state)
{
	struct swarmrt_counts c = { .want = 2, .rows = 2, .replicas = 2, .exists = true, .unsure = 2 };
	(void)state;
	assert_int_equal(swarmrt_node_class("ready"), SWARMRT_NODE_READY);
	assert_int_equal(swarmrt_node_class("down"), SWARMRT_NODE_LOST);
	assert_int_equal(swarmrt_node_class("disconnected"), SWARMRT_NODE_LOST);
	assert_int_equal(swarmrt_node_class("unknown"), SWARMRT_NODE_UNSURE);
	assert_int_equal(swarmrt_node_class(""), SWARMRT_NODE_UNSURE);
	/* both tasks on unknown nodes, so alive 0: never a scale to 4 (Swarm
	 * would add two tasks beside the two that serve), nothing at all */
	assert_int_equal(swarmrt_plan(&c).act, SWARMRT_NOTHING);
	c.want = 3;
	assert_int_equal(swarmrt_plan(&c).act, SWARMRT_NOTHING);
	/* no replica left: the service still goes */
	c.rows = c.want = 0;
	assert_int_equal(swarmrt_plan(&c).act, SWARMRT_REMOVE);
	/* events: ready -> lost, lost -> ready; none across unknown */
	assert_string_equal(swarmrt_node_event("ready", "down"), "node_down");
	assert_string_equal(swarmrt_node_event("ready", "disconnected"), "node_down");
	assert_string_equal(swarmrt_node_event("down", "ready"), "node_ready");
	assert_null(swarmrt_node_event("ready", "unknown"));
	assert_null(swarmrt_node_event("ready", "ready"));
	assert_null(swarmrt_node_event("down", "unknown"));
	assert_null(swarmrt_node_event("down", "disconnected"));
	assert_null(swarmrt_node_event("", "ready"));
	assert_null(swarmrt_node_event("", "down"));
}

/* which count a scale down may ask, as Swarm ranks slots (measured, t6130) */
static void test_scale_floor(void **state)
{
	struct swarmrt_slot_view back[] = {
		/* node 3 came back: its zombie ended; node 2 holds both tasks that serve */
		{ 1, "n3", false, false }, { 2, "n2", true, true }, { 3, "n2", true, true },
	};
	struct swarmrt_slot_view one[] = { { 1, "n3", false, false }, { 2, "n2", true, true } };
	struct swarmrt_slot_view spread[] = {
		/* 5 -> 3: gantry stopped the second copies on nodes 1 and 2 */
		{ 1, "n1", true, true }, { 2, "n1", false, false }, { 3, "n2", true, true },
		{ 4, "n2", false, false }, { 5, "n3", true, true },
	};
	struct swarmrt_slot_view lone[] = {
		/* ... or the only copy on node 3 and one on node 1: node 3's ended slot outranks
		 * node 2's second running copy */
		{ 1, "n1", true, true }, { 2, "n1", false, false }, { 3, "n2", true, true },
		{ 4, "n2", true, true }, { 5, "n3", false, false },
	};
	struct swarmrt_slot_view pending[] = {
		/* a surplus not assigned yet, and a slot of two tasks: ranked last */
		{ 1, "n1", true, true }, { 2, "", false, false }, { 3, "n2", false, false }, { 3, "n2", true, true },
	};
	struct swarmrt_slot_view hidden[] = {
		/* a task rejected before it had a container: its slot counts */
		{ 1, "n1", false, false }, { 2, "n1", true, true },
	};
	struct swarmrt_counts c = { .want = 2, .alive = 2, .rows = 2, .replicas = 3, .exists = true };
	(void)state;
	/* Swarm would keep slot 1 and stop slot 3 for a scale to 2: 3 stays */
	assert_int_equal(swarmrt_scale_floor(back, 3), 3);
	c.floor = 3;
	assert_int_equal(swarmrt_plan(&c).act, SWARMRT_NOTHING);
	/* the same ended slot beside a lone running copy: ranked after it, dropped */
	assert_int_equal(swarmrt_scale_floor(one, 2), 1);
	assert_int_equal(swarmrt_scale_floor(spread, 5), 3);
	assert_int_equal(swarmrt_scale_floor(lone, 5), 4);
	c.want = c.alive = 3;
	c.rows = 3;
	c.replicas = 5;
	c.floor = 4;
	assert_int_equal(swarmrt_plan(&c).act, SWARMRT_SCALE);
	assert_int_equal(swarmrt_plan(&c).to, 4);
	assert_int_equal(swarmrt_scale_floor(pending, 4), 2); /* slot 3 (two tasks, one serving) ranks after slot 1 only */
	assert_int_equal(swarmrt_scale_floor(hidden, 2), 1);
	assert_int_equal(swarmrt_scale_floor(NULL, 0), 0);
	/* a replica waits: new tasks on top of the slots Swarm would not drop */
	{
		struct swarmrt_counts w = { .want = 2, .alive = 1, .rows = 2, .replicas = 3, .exists = true,
					    .floor = 2 };
		struct swarmrt_plan p = swarmrt_plan(&w);
		assert_int_equal(p.act, SWARMRT_SCALE);
		assert_int_equal(p.from, 2);
		assert_int_equal(p.to, 3);
		w.floor = 3;
		p = swarmrt_plan(&w);
		assert_int_equal(p.from, -1);
		assert_int_equal(p.to, 4);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name),
		cmocka_unit_test(test_plan),
		cmocka_unit_test(test_unsure_nodes),
		cmocka_unit_test(test_scale_floor),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
