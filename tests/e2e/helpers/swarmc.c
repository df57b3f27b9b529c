/*
 * swarmc — the Swarm client (src/runtime/swarm.c) driven from the shell, for
 * tests/e2e/t6100-fleet-swarm.sh. Test-only: gantry itself calls the
 * functions, never this program. The Engine is $DOCKER_HOST (a manager's,
 * except for `gateway`, which asks the Engine of the task's node).
 *
 *   swarmc info                       "state=… manager=0|1 node=… addr=… nodes=N managers=N"
 *   swarmc nodes                      "ID HOSTNAME ADDR ROLE STATE AVAILABILITY leader|-" a line
 *   swarmc create NAME IMAGE [opts]   prints the service id; opts:
 *       -r N (replicas) -l K=V (label) -e K=V (env) -n NETWORK -c CONSTRAINT
 *       --spread DESCRIPTOR --dnsrr -u USER -m BYTES --cpus MILLI --pids N
 *   swarmc inspect ID                 key=value lines; exit 3 if absent
 *   swarmc list [LABEL]               "ID NAME REPLICAS" a line
 *   swarmc scale ID N
 *   swarmc rm ID                      "removed" or "absent"
 *   swarmc tasks SERVICE [NETWORK]    "ID SLOT NODE-HOSTNAME STATE DESIRED CONTAINER ADDR ERROR" a line
 *                                     (ERROR "-" when none; CONTAINER, ADDR "-" when none)
 *   swarmc wait SERVICE N SECONDS     until exactly N tasks that should run are running and every
 *                                     other task has stopped: prints the ms it took; exit 1 past SECONDS
 *   swarmc wait SERVICE N SECONDS --running   the same without waiting for the others to stop
 *                                     (a task on a node that is down never reports that it stopped)
 *   swarmc gateway CONTAINER          its docker_gwbridge address; exit 3 if not attached
 * Errors: the client's one-line message on stderr, exit 1 (2: usage).
 */
#include "common.h"
#include <time.h>
#include "runtime/docker.h"
#include "runtime/swarm.h"

static int usage(void)
{
	fprintf(stderr, "usage: swarmc info|nodes|create|inspect|list|scale|rm|tasks|wait|gateway ARGS (see the source)\n");
	return 2;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define MAXV 32

static int cmd_create(struct docker *d, int argc, char **argv, struct gerr *err)
{
	struct kv labels[MAXV];
	char *env[MAXV + 1] = { 0 }, *nets[MAXV + 1] = { 0 }, *cons[MAXV + 1] = { 0 };
	size_t nl = 0, ne = 0, nn = 0, nc = 0;
	struct resources res = { 0 };
	struct swarm_service_spec s = { .name = argv[0], .image = argv[1], .replicas = 1 };
	char id[64];

	for (int i = 2; i < argc; i++) {
		const char *o = argv[i];
		char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(o, "--dnsrr") == 0) {
			s.dnsrr = true;
			continue;
		}
		if (!v)
			return usage();
		i++;
		if (strcmp(o, "-r") == 0) {
			s.replicas = strtoull(v, NULL, 10);
		} else if (strcmp(o, "-l") == 0 && nl < MAXV && strchr(v, '=')) {
			*strchr(v, '=') = 0;
			labels[nl].key = v;
			labels[nl].value = v + strlen(v) + 1;
			nl++;
		} else if (strcmp(o, "-e") == 0 && ne < MAXV) {
			env[ne++] = v;
		} else if (strcmp(o, "-n") == 0 && nn < MAXV) {
			nets[nn++] = v;
		} else if (strcmp(o, "-c") == 0 && nc < MAXV) {
			cons[nc++] = v;
		} else if (strcmp(o, "--spread") == 0) {
			s.spread = v;
		} else if (strcmp(o, "-u") == 0) {
			s.user = v;
		} else if (strcmp(o, "-m") == 0) {
			res.memory_bytes = strtoll(v, NULL, 10);
		} else if (strcmp(o, "--cpus") == 0) {
			res.cpu_millis = strtoll(v, NULL, 10);
		} else if (strcmp(o, "--pids") == 0) {
			res.pids = strtoll(v, NULL, 10);
		} else {
			return usage();
		}
	}
	s.labels = labels;
	s.nlabels = nl;
	s.env = ne ? env : NULL;
	s.networks = nn ? nets : NULL;
	s.constraints = nc ? cons : NULL;
	s.res = &res;
	if (swarm_service_create(d, &s, id, sizeof(id), err) < 0)
		return 1;
	printf("%s\n", id);
	return 0;
}

static const char *node_name(const struct swarm_node *nodes, size_t nn, const char *id)
{
	for (size_t i = 0; i < nn; i++)
		if (strcmp(nodes[i].id, id) == 0)
			return nodes[i].hostname;
	return *id ? id : "-";
}

static const char *dash(const char *s)
{
	return s && *s ? s : "-";
}

static int cmd_tasks(struct docker *d, const char *svc, const char *net, struct gerr *err)
{
	struct swarm_task *t = NULL;
	struct swarm_node *nodes = NULL;
	size_t n = 0, nn = 0;
	int ret = 1;

	if (swarm_task_list(d, svc, net, &t, &n, err) < 0 || swarm_node_list(d, &nodes, &nn, err) < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		printf("%s %d %s %s %s %.12s %s %s\n", t[i].id, t[i].slot, node_name(nodes, nn, t[i].node_id),
		       t[i].state, t[i].desired_state, dash(t[i].container_id), dash(t[i].addr), dash(t[i].error));
	ret = 0;
out:
	free(t);
	swarm_nodes_free(nodes, nn);
	return ret;
}

/* 1 when exactly want tasks should run, all of them do, and every other
 * task has stopped (a scale down is done when the extra tasks are gone) */
static int converged(struct docker *d, const char *svc, size_t want, bool others_stopped, struct gerr *err)
{
	struct swarm_task *t = NULL;
	size_t n = 0, should = 0, running = 0;
	bool stopping = false;

	if (swarm_task_list(d, svc, NULL, &t, &n, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(t[i].desired_state, "running") != 0) {
			stopping |= !swarm_task_state_final(t[i].state);
			continue;
		}
		should++;
		running += strcmp(t[i].state, "running") == 0;
	}
	free(t);
	return should == want && running == want && (!others_stopped || !stopping);
}

int main(int argc, char **argv)
{
	struct gerr err = { { 0 } };
	struct docker *d;
	int ret = 1;

	if (argc < 2)
		return usage();
	if (!(d = docker_open(NULL, &err))) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	if (strcmp(argv[1], "info") == 0) {
		struct swarm_info si;
		if (swarm_info(d, &si, &err) == 0) {
			printf("state=%s manager=%d node=%s addr=%s nodes=%d managers=%d\n", si.state, si.manager,
			       si.node_id, si.node_addr, si.nodes, si.managers);
			ret = 0;
		}
	} else if (strcmp(argv[1], "nodes") == 0) {
		struct swarm_node *v;
		size_t n;
		if (swarm_node_list(d, &v, &n, &err) == 0) {
			for (size_t i = 0; i < n; i++)
				printf("%s %s %s %s %s %s %s\n", v[i].id, v[i].hostname, dash(v[i].addr), v[i].role,
				       v[i].state, v[i].availability, v[i].leader ? "leader" : "-");
			swarm_nodes_free(v, n);
			ret = 0;
		}
	} else if (strcmp(argv[1], "create") == 0 && argc >= 4) {
		ret = cmd_create(d, argc - 2, argv + 2, &err);
	} else if (strcmp(argv[1], "inspect") == 0 && argc == 3) {
		struct swarm_service s;
		int k = swarm_service_inspect(d, argv[2], &s, &err);
		if (k > 0) {
			printf("id=%s\nname=%s\nversion=%llu\nreplicas=%llu\nimage=%s\n", s.id, s.name,
			       (unsigned long long)s.version, (unsigned long long)s.replicas, s.image);
			for (size_t i = 0; i < s.nlabels; i++)
				printf("label.%s=%s\n", s.labels[i].key, s.labels[i].value);
			swarm_service_release(&s);
		}
		ret = k > 0 ? 0 : k == 0 ? 3 : 1;
	} else if (strcmp(argv[1], "list") == 0 && argc <= 3) {
		struct swarm_service *v;
		size_t n;
		if (swarm_service_list(d, argc == 3 ? argv[2] : NULL, &v, &n, &err) == 0) {
			for (size_t i = 0; i < n; i++)
				printf("%s %s %llu\n", v[i].id, v[i].name, (unsigned long long)v[i].replicas);
			swarm_services_free(v, n);
			ret = 0;
		}
	} else if (strcmp(argv[1], "scale") == 0 && argc == 4) {
		ret = swarm_service_scale(d, argv[2], strtoull(argv[3], NULL, 10), &err) < 0;
	} else if (strcmp(argv[1], "rm") == 0 && argc == 3) {
		int k = swarm_service_remove(d, argv[2], &err);
		if (k >= 0)
			printf("%s\n", k ? "removed" : "absent");
		ret = k < 0;
	} else if (strcmp(argv[1], "tasks") == 0 && (argc == 3 || argc == 4)) {
		ret = cmd_tasks(d, argv[2], argc == 4 ? argv[3] : NULL, &err);
	} else if (strcmp(argv[1], "wait") == 0 && (argc == 5 || (argc == 6 && strcmp(argv[5], "--running") == 0))) {
		int64_t t0 = now_ms(), limit = strtoll(argv[4], NULL, 10) * 1000;
		int k;
		while ((k = converged(d, argv[2], strtoull(argv[3], NULL, 10), argc == 5, &err)) == 0 && now_ms() - t0 < limit) {
			struct timespec nap = { 0, 100 * 1000000 };
			nanosleep(&nap, NULL);
		}
		if (k > 0) {
			printf("%lld\n", (long long)(now_ms() - t0));
			ret = 0;
		} else if (k == 0) {
			gerr_set(&err, "service %s: not %s running tasks after %s s", argv[2], argv[3], argv[4]);
		}
	} else if (strcmp(argv[1], "gateway") == 0 && argc == 3) {
		char a[64];
		int k = swarm_gateway_addr(d, argv[2], a, sizeof(a), &err);
		if (k > 0)
			printf("%s\n", a);
		ret = k > 0 ? 0 : k == 0 ? 3 : 1;
	} else {
		docker_close(d);
		return usage();
	}
	if (ret == 1 && err.msg[0])
		fprintf(stderr, "%s\n", err.msg);
	docker_close(d);
	return ret;
}
