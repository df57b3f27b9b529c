/*
 * test_swarm.c — the Swarm client (runtime/swarm.c) against the fake Engine
 * (fake_engine.h): the bodies it sends, the answers it reads, its errors.
 * The real 3-node swarm is exercised by tests/e2e/t6100-fleet-swarm.sh.
 */
#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include "runtime/docker.h"
#include "runtime/swarm.h"
#include "util/buf.h"
#include "fake_engine.h"

#define S(lit) ((char *)(lit))

/* the last request's body as JSON (owned) */
static json_t *last_body(void)
{
	json_t *j;

	pthread_mutex_lock(&F.mu);
	j = json_loads(F.body ? F.body : "", 0, NULL);
	pthread_mutex_unlock(&F.mu);
	assert_non_null(j);
	return j;
}

static const char *jpath(json_t *j, const char *a, const char *b, const char *c)
{
	json_t *x = json_object_get(j, a);
	if (b)
		x = json_object_get(x, b);
	if (c)
		x = json_object_get(x, c);
	return json_string_value(x);
}

static void test_create_body(void **state)
{
	struct gerr err = { { 0 } };
	struct docker *d;
	struct kv labels[] = { { S("gantry.service"), S("web") }, { S("gantry.revision"), S("7") } };
	char *env[] = { S("PORT=8080"), S("A=b c"), NULL };
	char *cons[] = { S("node.role==worker"), NULL };
	char *nets[] = { S("fleet"), NULL };
	char *args[] = { S("--serve"), NULL };
	struct resources res = { .cpu_millis = 500, .memory_bytes = 64 << 20, .pids = 64 };
	struct swarm_service_spec s = {
		.name = "web-7", .image = "reg:5000/web:1@sha256:abc", .labels = labels, .nlabels = 2,
		.env = env, .user = "1000:1000", .args = args, .replicas = 3, .constraints = cons,
		.spread = "node.id", .res = &res, .networks = nets, .dnsrr = true, .stop_grace_ms = 5000,
	};
	char id[64];
	json_t *b, *tt, *cs, *x;

	(void)state;
	fake_route("POST", "/v1.41/services/create", JSON_REPLY("201 Created", "{\"ID\":\"svc123\",\"Warnings\":null}"),
		   false);
	d = open_141();
	assert_int_equal(swarm_service_create(d, &s, id, sizeof(id), &err), 0);
	assert_string_equal(id, "svc123");
	assert_string_equal(F.method, "POST");
	assert_string_equal(F.target, "/v1.41/services/create");
	b = last_body();
	assert_string_equal(jpath(b, "Name", NULL, NULL), "web-7");
	assert_string_equal(jpath(b, "Labels", "gantry.service", NULL), "web");
	tt = json_object_get(b, "TaskTemplate");
	cs = json_object_get(tt, "ContainerSpec");
	assert_string_equal(jpath(cs, "Image", NULL, NULL), "reg:5000/web:1@sha256:abc");
	/* the containers carry the labels too: a node's Engine finds them */
	assert_string_equal(jpath(cs, "Labels", "gantry.revision", NULL), "7");
	assert_string_equal(json_string_value(json_array_get(json_object_get(cs, "Env"), 1)), "A=b c");
	assert_string_equal(jpath(cs, "User", NULL, NULL), "1000:1000");
	assert_null(json_object_get(cs, "Command"));
	assert_string_equal(json_string_value(json_array_get(json_object_get(cs, "Args"), 0)), "--serve");
	assert_int_equal(json_integer_value(json_object_get(cs, "StopGracePeriod")), 5000LL * 1000000);
	/* gantry supervises: never restarted by the Engine */
	assert_string_equal(jpath(tt, "RestartPolicy", "Condition", NULL), "none");
	x = json_object_get(json_object_get(tt, "Resources"), "Limits");
	assert_int_equal(json_integer_value(json_object_get(x, "NanoCPUs")), 500000000);
	assert_int_equal(json_integer_value(json_object_get(x, "MemoryBytes")), 64 << 20);
	assert_int_equal(json_integer_value(json_object_get(x, "Pids")), 64);
	x = json_object_get(tt, "Placement");
	assert_string_equal(json_string_value(json_array_get(json_object_get(x, "Constraints"), 0)),
			    "node.role==worker");
	assert_string_equal(jpath(json_array_get(json_object_get(x, "Preferences"), 0), "Spread", "SpreadDescriptor",
				  NULL),
			    "node.id");
	assert_string_equal(jpath(json_array_get(json_object_get(tt, "Networks"), 0), "Target", NULL, NULL), "fleet");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(json_object_get(b, "Mode"), "Replicated"),
							    "Replicas")),
			 3);
	assert_string_equal(jpath(b, "EndpointSpec", "Mode", NULL), "dnsrr");
	/* no update or rollback config: a revision's service is never updated but for its count */
	assert_null(json_object_get(b, "UpdateConfig"));
	json_decref(b);
	docker_close(d);
}

static void test_create_minimal_and_errors(void **state)
{
	struct gerr err = { { 0 } };
	struct docker *d;
	struct swarm_service_spec s = { .name = "web", .image = "web:1", .replicas = 0 };
	char id[64];
	json_t *b;

	(void)state;
	fake_route("POST", "/v1.41/services/create",
		   JSON_REPLY("409 Conflict", "{\"message\":\"rpc error: code = AlreadyExists desc = name conflicts "
					      "with an existing object: service web already exists\"}"),
		   false);
	d = open_141();
	assert_int_equal(swarm_service_create(d, &s, id, sizeof(id), &err), -1);
	assert_string_equal(err.msg, "create service web: rpc error: code = AlreadyExists desc = name conflicts with "
				     "an existing object: service web already exists");
	assert_string_equal(id, "");
	b = last_body();
	/* nothing asked for, nothing sent: the image's env, user, command; no placement, no limits */
	assert_null(json_object_get(json_object_get(json_object_get(b, "TaskTemplate"), "ContainerSpec"), "Env"));
	assert_null(json_object_get(json_object_get(b, "TaskTemplate"), "Placement"));
	assert_null(json_object_get(json_object_get(b, "TaskTemplate"), "Resources"));
	assert_null(json_object_get(json_object_get(b, "TaskTemplate"), "Networks"));
	assert_null(json_object_get(b, "EndpointSpec"));
	json_decref(b);
	/* refused before any request */
	s.image = "";
	assert_int_equal(swarm_service_create(d, &s, id, sizeof(id), &err), -1);
	assert_string_equal(err.msg, "create service web: a service needs a name and an image");
	docker_close(d);
}

/* the node proxies' service (daemon/nodeproxy.c): global, restarted by
 * Swarm, ports published in host mode, the token a secret file */
static void test_create_global_body(void **state)
{
	struct gerr err = { { 0 } };
	struct docker *d;
	int ports[] = { 8088, 9188 };
	struct swarm_service_spec s = {
		.name = "gantry-proxy-prod", .image = "reg:5000/gantry-proxy@sha256:abc", .user = "65534",
		.dnsrr = true, .global = true, .restart_any = true, .host_ports = ports, .nhost_ports = 2,
		.secret_id = "sec1", .secret_name = "gantry-proxy-prod-0a1b", .secret_file = "gantry-proxy-token",
		.secret_uid = "65534",
	};
	char id[64];
	json_t *b, *tt, *sec, *p;

	(void)state;
	fake_route("POST", "/v1.41/services/create", JSON_REPLY("201 Created", "{\"ID\":\"svc9\"}"), false);
	d = open_141();
	assert_int_equal(swarm_service_create(d, &s, id, sizeof(id), &err), 0);
	b = last_body();
	assert_non_null(json_object_get(json_object_get(b, "Mode"), "Global"));
	assert_null(json_object_get(json_object_get(b, "Mode"), "Replicated"));
	tt = json_object_get(b, "TaskTemplate");
	assert_string_equal(jpath(tt, "RestartPolicy", "Condition", NULL), "any");
	sec = json_array_get(json_object_get(json_object_get(tt, "ContainerSpec"), "Secrets"), 0);
	assert_string_equal(jpath(sec, "SecretID", NULL, NULL), "sec1");
	assert_string_equal(jpath(sec, "SecretName", NULL, NULL), "gantry-proxy-prod-0a1b");
	assert_string_equal(jpath(sec, "File", "Name", NULL), "gantry-proxy-token");
	assert_string_equal(jpath(sec, "File", "UID", NULL), "65534");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(sec, "File"), "Mode")), 0400);
	assert_string_equal(jpath(b, "EndpointSpec", "Mode", NULL), "dnsrr");
	assert_int_equal(json_array_size(json_object_get(json_object_get(b, "EndpointSpec"), "Ports")), 2);
	p = json_array_get(json_object_get(json_object_get(b, "EndpointSpec"), "Ports"), 1);
	assert_string_equal(jpath(p, "PublishMode", NULL, NULL), "host");
	assert_int_equal(json_integer_value(json_object_get(p, "PublishedPort")), 9188);
	assert_int_equal(json_integer_value(json_object_get(p, "TargetPort")), 9188);
	json_decref(b);
	docker_close(d);
}

/* a secret found by its exact name is kept (the filter matches prefixes); else made */
static void test_secret_ensure(void **state)
{
	struct gerr err = { { 0 } };
	struct docker *d;
	char id[64];
	json_t *b;

	(void)state;
	fake_route("GET", "/v1.41/secrets",
		   JSON_REPLY("200 OK", "[{\"ID\":\"s-long\",\"Spec\":{\"Name\":\"tok-1-more\"}},"
					"{\"ID\":\"s-1\",\"Spec\":{\"Name\":\"tok-1\"}}]"),
		   false);
	fake_route("POST", "/v1.41/secrets/create", JSON_REPLY("201 Created", "{\"ID\":\"s-new\"}"), false);
	d = open_141();
	assert_int_equal(swarm_secret_ensure(d, "tok-1", "abc", "gantry.proxy", id, sizeof(id), &err), 0);
	assert_string_equal(id, "s-1");
	assert_string_equal(F.method, "GET");
	assert_int_equal(swarm_secret_ensure(d, "tok-2", "abc", "gantry.proxy", id, sizeof(id), &err), 0);
	assert_string_equal(id, "s-new");
	assert_string_equal(F.method, "POST");
	b = last_body();
	assert_string_equal(jpath(b, "Name", NULL, NULL), "tok-2");
	assert_string_equal(jpath(b, "Data", NULL, NULL), "YWJj"); /* base64 of abc */
	assert_non_null(json_object_get(json_object_get(b, "Labels"), "gantry.proxy"));
	json_decref(b);
	docker_close(d);
}

static void test_info(void **state)
{
	struct gerr err = { { 0 } };
	struct docker *d;
	struct swarm_info si;

	(void)state;
	fake_route("GET", "/v1.41/info",
		   JSON_REPLY("200 OK", "{\"ID\":\"x\",\"Swarm\":{\"NodeID\":\"n1\",\"NodeAddr\":\"10.1.2.11\","
					"\"LocalNodeState\":\"active\",\"ControlAvailable\":true,\"Error\":\"\","
					"\"Nodes\":3,\"Managers\":1,\"Cluster\":{\"ID\":\"c1\"}}}"),
		   false);
	d = open_141();
	assert_int_equal(swarm_info(d, &si, &err), 0);
	assert_string_equal(si.state, "active");
	assert_true(si.manager);
	assert_string_equal(si.node_id, "n1");
	assert_string_equal(si.node_addr, "10.1.2.11");
	assert_string_equal(si.cluster_id, "c1");
	assert_int_equal(si.nodes, 3);
	assert_int_equal(si.managers, 1);
	docker_close(d);
}

static void test_info_outside_a_swarm(void **state)
{
	struct gerr err = { { 0 } };
	struct docker *d;
	struct swarm_info si;

	(void)state;
	fake_route("GET", "/v1.41/info", JSON_REPLY("200 OK", "{\"ID\":\"x\"}"), false);
	d = open_141();
	assert_int_equal(swarm_info(d, &si, &err), 0);
	assert_string_equal(si.state, "inactive");
	assert_false(si.manager);
	assert_string_equal(si.node_id, "");
	docker_close(d);
}

static void test_nodes(void **state)
{
	struct gerr err = { { 0 } };
	struct docker *d;
	struct swarm_node *v;
	size_t n;

	(void)state;
	fake_route("GET", "/v1.41/nodes",
		   JSON_REPLY("200 OK",
			      "[{\"ID\":\"n1\",\"Spec\":{\"Role\":\"manager\",\"Availability\":\"active\",\"Labels\":{}},"
			      "\"Description\":{\"Hostname\":\"h1\"},\"Status\":{\"State\":\"ready\",\"Addr\":\"10.1.2.11\"},"
			      "\"ManagerStatus\":{\"Leader\":true,\"Reachability\":\"reachable\"}},"
			      "{\"ID\":\"n3\",\"Spec\":{\"Role\":\"worker\",\"Availability\":\"drain\","
			      "\"Labels\":{\"zone\":\"b\"}},\"Description\":{\"Hostname\":\"h3\"},"
			      "\"Status\":{\"State\":\"down\",\"Message\":\"heartbeat failure\",\"Addr\":\"10.1.2.13\"}}]"),
		   false);
	d = open_141();
	assert_int_equal(swarm_node_list(d, &v, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].id, "n1");
	assert_string_equal(v[0].hostname, "h1");
	assert_string_equal(v[0].role, "manager");
	assert_string_equal(v[0].state, "ready");
	assert_true(v[0].leader);
	assert_int_equal(v[0].nlabels, 0);
	assert_string_equal(v[1].availability, "drain");
	assert_string_equal(v[1].state, "down");
	assert_string_equal(v[1].message, "heartbeat failure");
	assert_string_equal(v[1].addr, "10.1.2.13");
	assert_false(v[1].leader);
	assert_int_equal(v[1].nlabels, 1);
	assert_string_equal(v[1].labels[0].key, "zone");
	assert_string_equal(v[1].labels[0].value, "b");
	swarm_nodes_free(v, n);
	docker_close(d);
}

static void test_worker_refuses(void **state)
{
	struct gerr err = { { 0 } };
	struct docker *d;
	struct swarm_node *v;
	size_t n;

	(void)state;
	fake_route("GET", "/v1.41/nodes",
		   JSON_REPLY("503 Service Unavailable",
			      "{\"message\":\"This node is not a swarm manager. Worker nodes can't be used to view or "
			      "modify cluster state.\"}"),
		   false);
	d = open_141();
	assert_int_equal(swarm_node_list(d, &v, &n, &err), -1);
	assert_null(v);
	assert_int_equal(n, 0);
	assert_string_equal(err.msg, "list nodes: This node is not a swarm manager. Worker nodes can't be used to view "
				     "or modify cluster state.");
	docker_close(d);
}

#define SERVICE_JSON                                                                                            \
	"{\"ID\":\"svc123\",\"Version\":{\"Index\":41},\"CreatedAt\":\"2026-12-07T10:00:00Z\","                   \
	"\"Spec\":{\"Name\":\"web\",\"Labels\":{\"gantry.service\":\"web\"},"                                     \
	"\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":\"web:1@sha256:abc\"},\"ForceUpdate\":0},"                 \
	"\"Mode\":{\"Replicated\":{\"Replicas\":3}},\"EndpointSpec\":{\"Mode\":\"dnsrr\"}}}"

static void test_inspect_and_scale(void **state)
{
	struct gerr err = { { 0 } };
	struct docker *d;
	struct swarm_service s;
	json_t *b;

	(void)state;
	fake_route("GET", "/v1.41/services/svc123", JSON_REPLY("200 OK", SERVICE_JSON), false);
	fake_route("POST", "/v1.41/services/svc123/update", JSON_REPLY("200 OK", "{\"Warnings\":null}"), false);
	d = open_141();
	assert_int_equal(swarm_service_inspect(d, "svc123", &s, &err), 1);
	assert_string_equal(s.id, "svc123");
	assert_string_equal(s.name, "web");
	assert_int_equal(s.version, 41);
	assert_int_equal(s.replicas, 3);
	assert_false(s.global);
	assert_string_equal(s.image, "web:1@sha256:abc");
	assert_int_equal(s.nlabels, 1);
	assert_int_equal(s.created_ms, 1796637600000LL);
	swarm_service_release(&s);

	assert_int_equal(swarm_service_scale(d, "svc123", 1, &err), 0);
	assert_string_equal(F.target, "/v1.41/services/svc123/update?version=41");
	b = last_body();
	/* the spec as read, with only the count changed */
	assert_int_equal(json_integer_value(json_object_get(json_object_get(json_object_get(b, "Mode"), "Replicated"),
							    "Replicas")),
			 1);
	assert_string_equal(jpath(b, "EndpointSpec", "Mode", NULL), "dnsrr");
	assert_string_equal(jpath(b, "TaskTemplate", "ContainerSpec", "Image"), "web:1@sha256:abc");
	assert_null(json_object_get(b, "ID"));
	json_decref(b);
	docker_close(d);
}

static void test_scale_out_of_sequence(void **state)
{
	struct gerr err = { { 0 } };
	struct docker *d;

	(void)state;
	fake_route("GET", "/v1.41/services/svc123", JSON_REPLY("200 OK", SERVICE_JSON), false);
	fake_route("POST", "/v1.41/services/svc123/update",
		   JSON_REPLY("500 Internal Server Error",
			      "{\"message\":\"rpc error: code = Unknown desc = update out of sequence\"}"),
		   false);
	d = open_141();
	F.requests = 0;
	assert_int_equal(swarm_service_scale(d, "svc123", 2, &err), -1);
	/* read and write again, three times in all, then the Engine's word */
	assert_int_equal(F.requests, 6);
	assert_string_equal(err.msg, "scale service svc123 to 2: rpc error: code = Unknown desc = update out of sequence");
	docker_close(d);
}

static void test_scale_missing_and_global(void **state)
{
	struct gerr err = { { 0 } };
	struct docker *d;

	(void)state;
	fake_route("GET", "/v1.41/services/nosuch",
		   JSON_REPLY("404 Not Found", "{\"message\":\"service nosuch not found\"}"), false);
	fake_route("GET", "/v1.41/services/g",
		   JSON_REPLY("200 OK", "{\"ID\":\"g\",\"Version\":{\"Index\":2},\"Spec\":{\"Name\":\"g\","
					"\"Mode\":{\"Global\":{}}}}"),
		   false);
	d = open_141();
	assert_int_equal(swarm_service_scale(d, "nosuch", 2, &err), -1);
	assert_string_equal(err.msg, "scale service nosuch to 2: no such service");
	assert_int_equal(swarm_service_scale(d, "g", 2, &err), -1);
	assert_string_equal(err.msg, "scale service g to 2: not a replicated service");
	{
		struct swarm_service s;
		assert_int_equal(swarm_service_inspect(d, "nosuch", &s, &err), 0);
		assert_int_equal(swarm_service_inspect(d, "g", &s, &err), 1);
		assert_true(s.global);
		assert_int_equal(s.replicas, 0);
		swarm_service_release(&s);
	}
	docker_close(d);
}

/* the node proxies of another build: the image and its label, a rolling update config */
static void test_set_image(void **state)
{
	struct gerr err = { { 0 } };
	struct docker *d;
	json_t *b, *u;
	char *args[] = { (char *)"--grace", (char *)"2s", NULL };

	(void)state;
	fake_route("GET", "/v1.41/services/svc123", JSON_REPLY("200 OK", SERVICE_JSON), false);
	fake_route("POST", "/v1.41/services/svc123/update", JSON_REPLY("200 OK", "{\"Warnings\":null}"), false);
	fake_route("GET", "/v1.41/services/nosuch",
		   JSON_REPLY("404 Not Found", "{\"message\":\"service nosuch not found\"}"), false);
	d = open_141();
	assert_int_equal(swarm_service_set_image(d, "svc123", "reg:5000/p@sha256:def", "gantry.proxy-image", args,
						 10000, &err),
			 0);
	assert_string_equal(F.target, "/v1.41/services/svc123/update?version=41");
	b = last_body();
	assert_string_equal(jpath(b, "TaskTemplate", "ContainerSpec", "Image"), "reg:5000/p@sha256:def");
	assert_string_equal(jpath(b, "Labels", "gantry.proxy-image", NULL), "reg:5000/p@sha256:def");
	/* the rest as read */
	assert_string_equal(jpath(b, "Labels", "gantry.service", NULL), "web");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(json_object_get(b, "Mode"), "Replicated"),
							    "Replicas")),
			 3);
	u = json_object_get(b, "UpdateConfig");
	assert_int_equal(json_integer_value(json_object_get(u, "Parallelism")), 1);
	assert_string_equal(json_string_value(json_object_get(u, "Order")), "stop-first");
	assert_string_equal(json_string_value(json_object_get(u, "FailureAction")), "rollback");
	assert_true(json_integer_value(json_object_get(u, "Monitor")) > 0);
	assert_string_equal(json_string_value(json_array_get(
				    json_object_get(json_object_get(json_object_get(b, "TaskTemplate"), "ContainerSpec"), "Args"),
				    1)),
			    "2s");
	assert_int_equal(json_integer_value(json_object_get(
				 json_object_get(json_object_get(b, "TaskTemplate"), "ContainerSpec"), "StopGracePeriod")),
			 10000000000LL);
	json_decref(b);
	assert_int_equal(swarm_service_set_image(d, "nosuch", "x@sha256:1", NULL, NULL, 0, &err), -1);
	assert_string_equal(err.msg, "update service nosuch to image x@sha256:1: no such service");
	docker_close(d);
}

static void test_list_by_label(void **state)
{
	struct gerr err = { { 0 } };
	struct docker *d;
	struct swarm_service *v;
	size_t n;

	(void)state;
	fake_route("GET", "/v1.41/services", JSON_REPLY("200 OK", "[" SERVICE_JSON "]"), false);
	d = open_141();
	assert_int_equal(swarm_service_list(d, "gantry.home=abc", &v, &n, &err), 0);
	assert_string_equal(F.target, "/v1.41/services?filters=%7B%22label%22%3A%5B%22gantry.home%3Dabc%22%5D%7D");
	assert_int_equal(n, 1);
	assert_string_equal(v[0].name, "web");
	assert_string_equal(v[0].labels[0].value, "web");
	swarm_services_free(v, n);
	docker_close(d);
}

static void test_remove(void **state)
{
	struct gerr err = { { 0 } };
	struct docker *d;

	(void)state;
	fake_route("DELETE", "/v1.41/services/svc123", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		   false);
	fake_route("DELETE", "/v1.41/services/gone",
		   JSON_REPLY("404 Not Found", "{\"message\":\"service gone not found\"}"), false);
	fake_route("DELETE", "/v1.41/services/bad", JSON_REPLY("500 Internal Server Error", "{\"message\":\"boom\"}"),
		   false);
	d = open_141();
	assert_int_equal(swarm_service_remove(d, "svc123", &err), 1);
	assert_int_equal(swarm_service_remove(d, "gone", &err), 0);
	assert_int_equal(swarm_service_remove(d, "bad", &err), -1);
	assert_string_equal(err.msg, "remove service bad: boom");
	docker_close(d);
}

static void test_tasks(void **state)
{
	struct gerr err = { { 0 } };
	struct docker *d;
	struct swarm_task *t;
	size_t n;

	(void)state;
	fake_route("GET", "/v1.41/tasks",
		   JSON_REPLY("200 OK",
			      "[{\"ID\":\"t1\",\"ServiceID\":\"svc123\",\"NodeID\":\"n2\",\"Slot\":1,"
			      "\"DesiredState\":\"running\",\"Status\":{\"Timestamp\":\"2026-12-07T10:00:01.5Z\","
			      "\"State\":\"running\",\"Message\":\"started\",\"ContainerStatus\":{\"ContainerID\":\"c1\","
			      "\"PID\":42,\"ExitCode\":0}},\"NetworksAttachments\":["
			      "{\"Network\":{\"ID\":\"ing\",\"Spec\":{\"Name\":\"ingress\"}},\"Addresses\":[\"10.0.0.5/24\"]},"
			      "{\"Network\":{\"ID\":\"ov1\",\"Spec\":{\"Name\":\"fleet\"}},\"Addresses\":[\"10.9.9.130/25\"]}]},"
			      "{\"ID\":\"t2\",\"ServiceID\":\"svc123\",\"NodeID\":\"\",\"Slot\":2,"
			      "\"DesiredState\":\"running\",\"Status\":{\"State\":\"pending\","
			      "\"Message\":\"pending task scheduling\",\"Err\":\"no suitable node (scheduling constraints "
			      "not satisfied on 3 nodes)\"}},"
			      "{\"ID\":\"t3\",\"ServiceID\":\"svc123\",\"NodeID\":\"n3\",\"Slot\":3,"
			      "\"DesiredState\":\"shutdown\",\"Status\":{\"State\":\"failed\",\"Err\":\"task: non-zero exit (1)\","
			      "\"ContainerStatus\":{\"ContainerID\":\"c3\",\"ExitCode\":1}}}]"),
		   false);
	d = open_141();
	assert_int_equal(swarm_task_list(d, "svc123", "fleet", &t, &n, &err), 0);
	assert_string_equal(F.target, "/v1.41/tasks?filters=%7B%22service%22%3A%5B%22svc123%22%5D%7D");
	assert_int_equal(n, 3);
	assert_string_equal(t[0].id, "t1");
	assert_string_equal(t[0].node_id, "n2");
	assert_int_equal(t[0].slot, 1);
	assert_string_equal(t[0].state, "running");
	assert_string_equal(t[0].desired_state, "running");
	assert_string_equal(t[0].container_id, "c1");
	/* the address on the network asked for, without its prefix length */
	assert_string_equal(t[0].addr, "10.9.9.130");
	assert_int_equal(t[0].updated_ms, 1796637601500LL);
	assert_false(swarm_task_state_final(t[0].state));
	assert_string_equal(t[1].state, "pending");
	assert_string_equal(t[1].node_id, "");
	assert_string_equal(t[1].addr, "");
	assert_string_equal(t[1].error, "no suitable node (scheduling constraints not satisfied on 3 nodes)");
	assert_string_equal(t[2].state, "failed");
	assert_int_equal(t[2].exit_code, 1);
	assert_true(swarm_task_state_final(t[2].state));
	free(t);
	/* by id; no network: the first attachment */
	assert_int_equal(swarm_task_list(d, "svc123", "ov1", &t, &n, &err), 0);
	assert_string_equal(t[0].addr, "10.9.9.130");
	free(t);
	assert_int_equal(swarm_task_list(d, "svc123", NULL, &t, &n, &err), 0);
	assert_string_equal(t[0].addr, "10.0.0.5");
	free(t);
	docker_close(d);
}

static void test_gateway(void **state)
{
	struct gerr err = { { 0 } };
	struct docker *d;
	char a[64];

	(void)state;
	fake_route("GET", "/v1.41/networks/docker_gwbridge",
		   JSON_REPLY("200 OK", "{\"Name\":\"docker_gwbridge\",\"Containers\":{\"c1full\":{\"Name\":"
					"\"gateway_x\",\"IPv4Address\":\"10.9.8.66/26\"}}}"),
		   false);
	d = open_141();
	assert_int_equal(swarm_gateway_addr(d, "c1full", a, sizeof(a), &err), 1);
	assert_string_equal(a, "10.9.8.66");
	assert_int_equal(swarm_gateway_addr(d, "c1", a, sizeof(a), &err), 1);
	assert_int_equal(swarm_gateway_addr(d, "c2", a, sizeof(a), &err), 0);
	assert_string_equal(a, "");
	docker_close(d);
}

static void test_unreachable(void **state)
{
	struct gerr err = { { 0 } };
	struct docker *d;
	struct swarm_info si;

	(void)state;
	d = open_141();
	/* the Engine goes away after the client opened it */
	F.stop = 1;
	pthread_join(F.th, NULL);
	close(F.fd);
	unlink(F.sock);
	assert_int_equal(swarm_info(d, &si, &err), -1);
	assert_non_null(strstr(err.msg, "docker: cannot reach unix://"));
	docker_close(d);
	/* fake_teardown joins and closes again: give it a fresh server */
	assert_int_equal(fake_setup(NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_body, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_create_minimal_and_errors, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_create_global_body, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_secret_ensure, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_info, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_info_outside_a_swarm, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_nodes, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_worker_refuses, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_inspect_and_scale, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_scale_out_of_sequence, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_scale_missing_and_global, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_set_image, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_list_by_label, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_remove, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_tasks, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_gateway, fake_setup, fake_teardown),
		cmocka_unit_test_setup_teardown(test_unreachable, fake_setup, fake_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
