/*
 * The fleet keys (src/core/spec_cluster.c): environments.E.cluster and
 * services.S.placement resolved into a docker service's config (and not
 * into a process service's), each fault at its line:column, the JSON round
 * trip of a revision's config, and the class of each key (cluster: policy).
 */
#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include "core/spec.h"
#include "core/spec_class.h"

static const char good[] =
	"project: t\n"
	"environments:\n"
	"  staging: {}\n"
	"  production:\n"
	"    cluster:\n"
	"      engine: swarm\n"
	"      manager: unix:///run/m.sock\n"
	"      network: app-net\n"
	"      nodes: {n1: unix:///run/m.sock, n2: \"tcp://10.0.0.2:2375\"}\n"
	"      proxy: {port: 8088, admin_port: 9188, registry: \"reg:5000\"}\n"
	"services:\n"
	"  web:\n"
	"    image: reg:5000/web:1\n"
	"    placement: {constraints: [node.role==worker, node.labels.disk!=hdd], spread: node.labels.zone}\n"
	"  batch:\n"
	"    run: ./batch\n";

static struct spec *load(const char *yaml, struct diags *d)
{
	struct spec *spec = NULL;
	spec_load_buf("t.yaml", yaml, strlen(yaml), &spec, d);
	return spec;
}

static void test_resolved(void **state)
{
	struct diags d = { 0 };
	struct spec *spec = load(good, &d);
	struct svc_config c;
	struct gerr err = { { 0 } };
	(void)state;

	if (!spec)
		diags_print(&d, stderr);
	assert_non_null(spec);
	assert_int_equal(spec_resolve(spec, "web", "production", &c, &err), 0);
	assert_string_equal(c.cluster.engine, "swarm");
	assert_string_equal(c.cluster.manager, "unix:///run/m.sock");
	assert_string_equal(c.cluster.network, "app-net");
	assert_int_equal(c.cluster.nnodes, 2);
	assert_string_equal(cluster_node_engine(&c.cluster, "n2"), "tcp://10.0.0.2:2375");
	assert_null(cluster_node_engine(&c.cluster, "n3"));
	assert_int_equal(c.cluster.proxy_port, 8088);
	assert_int_equal(c.cluster.proxy_admin_port, 9188);
	assert_string_equal(c.cluster.proxy_registry, "reg:5000");
	assert_int_equal(c.placement.nconstraints, 2);
	assert_string_equal(c.placement.constraints[1], "node.labels.disk!=hdd");
	assert_string_equal(c.placement.spread, "node.labels.zone");
	svc_config_release(&c);
	/* the same service without a cluster: one host, no placement */
	assert_int_equal(spec_resolve(spec, "web", "staging", &c, &err), 0);
	assert_null(c.cluster.engine);
	assert_null(c.placement.spread);
	assert_int_equal(c.placement.nconstraints, 0);
	svc_config_release(&c);
	/* a process service stays on the controller's host */
	assert_int_equal(spec_resolve(spec, "batch", "production", &c, &err), 0);
	assert_null(c.cluster.engine);
	svc_config_release(&c);
	spec_free(spec);
	diags_release(&d);
}

static void test_json_round_trip(void **state)
{
	struct diags d = { 0 };
	struct spec *spec = load(good, &d);
	struct svc_config c, back;
	struct gerr err = { { 0 } };
	json_t *j, *j2;
	(void)state;

	assert_int_equal(spec_resolve(spec, "web", "production", &c, &err), 0);
	j = svc_config_to_json(&c);
	assert_non_null(json_object_get(j, "cluster"));
	assert_int_equal(svc_config_from_json(j, &back, &err), 0);
	assert_string_equal(back.cluster.manager, "unix:///run/m.sock");
	assert_string_equal(cluster_node_engine(&back.cluster, "n1"), "unix:///run/m.sock");
	assert_string_equal(back.placement.spread, "node.labels.zone");
	assert_int_equal(back.placement.nconstraints, 2);
	assert_int_equal(back.cluster.proxy_admin_port, 9188);
	assert_string_equal(back.cluster.proxy_registry, "reg:5000");
	j2 = svc_config_to_json(&back);
	assert_true(json_equal(j, j2));
	json_decref(j2);
	svc_config_release(&back);
	json_decref(j);
	svc_config_release(&c);
	/* a config without the keys (stored before they existed, or one host) has none */
	assert_int_equal(spec_resolve(spec, "web", "staging", &c, &err), 0);
	j = svc_config_to_json(&c);
	assert_null(json_object_get(j, "cluster"));
	assert_null(json_object_get(j, "placement"));
	json_decref(j);
	svc_config_release(&c);
	/* a bad stored cluster is refused, naming the key */
	j = json_pack("{s:i, s:s, s:s, s:s, s:s, s:{s:s}}", "format", 1, "service", "web", "environment", "p",
		      "runtime", "docker", "image", "web:1", "cluster", "engine", "swarm");
	assert_int_equal(svc_config_from_json(j, &back, &err), -1);
	assert_non_null(strstr(err.msg, "cluster"));
	json_decref(j);
	spec_free(spec);
	diags_release(&d);
}

/* the spec with line 5..9 replaced by body; the first diagnostic must be at line:col and say what */
static void bad(const char *body, int line, int col, const char *what)
{
	char yaml[2048];
	struct diags d = { 0 };
	struct spec *spec;
	snprintf(yaml, sizeof(yaml),
		 "project: t\nenvironments:\n  production:\n    cluster:\n%s"
		 "services:\n  web:\n    image: reg:5000/web:1\n", body);
	spec = load(yaml, &d);
	assert_null(spec);
	assert_true(d.n > 0);
	if (d.items[0].line != line || d.items[0].col != col || !strstr(d.items[0].message, what)) {
		diags_print(&d, stderr);
		fail_msg("expected %d:%d %s", line, col, what);
	}
	diags_release(&d);
}

static void test_faults(void **state)
{
	(void)state;
	bad("      engine: k8s\n      manager: unix:///x\n", 5, 15, "unknown cluster engine 'k8s'");
	bad("      engine: swarm\n      manager: http://x\n", 6, 16, "unix:///PATH or tcp://HOST:PORT");
	bad("      engine: swarm\n      manager: tcp://h\n", 6, 16, "tcp://HOST:PORT");
	bad("      engine: swarm\n", 5, 7, "needs engine (swarm) and manager");
	bad("      engine: swarm\n      manager: unix:///x\n      nodes: {n1: nope}\n", 7, 19, "the node's Engine");
	bad("      engine: swarm\n      manager: unix:///x\n      netwrk: a\n", 7, 7, "netwrk");
	bad("      engine: swarm\n      manager: unix:///x\n      network: \"a b\"\n", 7, 16, "invalid network name");
	/* cluster.proxy */
	bad("      engine: swarm\n      manager: unix:///x\n      network: n\n      proxy: {port: 80, admin_port: 0, registry: \"r:5000\"}\n",
	    8, 37, "expected a port");
	bad("      engine: swarm\n      manager: unix:///x\n      network: n\n      proxy: {port: 80, admin_port: 81}\n", 8, 14,
	    "needs port, admin_port and registry");
	bad("      engine: swarm\n      manager: unix:///x\n      network: n\n      proxy: {port: 80, admin_port: 80, registry: \"r:5000\"}\n",
	    8, 14, "must differ");
	bad("      engine: swarm\n      manager: unix:///x\n      network: n\n      proxy: {port: 80, admin_port: 81, registry: \"r:x\"}\n",
	    8, 51, "HOST:PORT");
	bad("      engine: swarm\n      manager: unix:///x\n      network: n\n      proxy: {prot: 80}\n", 8, 15, "prot");
	bad("      engine: swarm\n      manager: unix:///x\n      proxy: {port: 80, admin_port: 81, registry: \"r:5000\"}\n", 7, 14,
	    "needs cluster.network");
}

static void test_placement_faults(void **state)
{
	struct diags d = { 0 };
	const char *y = "project: t\nenvironments:\n  p: {}\nservices:\n  web:\n    image: reg:5000/web:1\n"
			"    placement: {constraints: [\"node.role\"], spread: zone}\n";
	struct spec *spec = load(y, &d);
	(void)state;
	assert_null(spec);
	assert_int_equal(d.n, 2);
	assert_int_equal(d.items[0].line, 7);
	assert_non_null(strstr(d.items[0].message, "ATTRIBUTE==VALUE"));
	assert_non_null(strstr(d.items[1].message, "node attribute"));
	diags_release(&d);
}

static void test_class(void **state)
{
	(void)state;
	assert_int_equal(spec_key_class("environments.production.cluster"), SPEC_CLASS_POLICY);
	assert_int_equal(spec_key_class("environments.production.cluster.nodes.n1"), SPEC_CLASS_POLICY);
	assert_int_equal(spec_key_class("environments.production.cluster.proxy.registry"), SPEC_CLASS_POLICY);
	assert_int_equal(spec_key_class("services.web.placement"), SPEC_CLASS_CONFIG);
	assert_int_equal(spec_key_class("services.web.environments.production.placement"), SPEC_CLASS_CONFIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resolved),
		cmocka_unit_test(test_json_round_trip),
		cmocka_unit_test(test_faults),
		cmocka_unit_test(test_placement_faults),
		cmocka_unit_test(test_class),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
