/*
 * dockerc — the Docker Engine client (src/runtime/docker.c) driven from the
 * shell, for tests/e2e/t6000-docker-engine.sh. Test-only: gantry itself
 * calls the functions, never this program. The Engine is $DOCKER_HOST.
 *
 *   dockerc ping                          prints "api VERSION"
 *   dockerc inspect REF                   "id=… size=… repo_digest=…"; exit 3 if absent
 *   dockerc create NAME IMAGE [opts]      prints the container id; opts:
 *       -l K=V (label) -e K=V (env) -p IP:HOSTPORT:PORT -m BYTES --cpus MILLI
 *       --pids N -u USER --entrypoint PATH --network NAME --stop-signal N
 *   dockerc start|rm ID                   rm prints "removed" or "absent"
 *   dockerc kill ID SIGNAL
 *   dockerc inspect-container ID          key=value lines; exit 3 if absent
 *   dockerc list LABEL                    "id name status K=V…" a line
 *   dockerc logs ID [--follow-ms N]       the output; a follow stops after N ms
 *   dockerc stats ID                      key=value lines
 *   dockerc build DIR TAG [-f FILE] [--arg K=V]  prints the image id; progress on stderr
 *   dockerc push|pull REF                 progress on stderr
 *   dockerc tag REF REPO TAG | rmi REF
 * Errors: the client's one-line message on stderr, exit 1 (2: usage).
 */
#include "common.h"
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include "runtime/docker.h"

static int usage(void)
{
	fprintf(stderr, "usage: dockerc ping|inspect|create|start|kill|rm|inspect-container|list|logs|stats|"
			"build|push|pull|tag|rmi ARGS (see the source)\n");
	return 2;
}

static void on_progress(void *data, const char *line)
{
	(void)data;
	fprintf(stderr, "%s\n", line);
}

static void on_log(void *data, const char *buf, size_t len)
{
	(void)data;
	fwrite(buf, 1, len, stdout);
	fflush(stdout);
}

struct kvs {
	struct kv v[32];
	size_t n;
};

static int add_kv(struct kvs *k, char *s)
{
	char *eq = strchr(s, '=');
	if (!eq || k->n >= ARRAY_SIZE(k->v))
		return -1;
	*eq = 0;
	k->v[k->n].key = s;
	k->v[k->n].value = eq + 1;
	k->n++;
	return 0;
}

static volatile int stop_flag;
static void *stopper(void *arg)
{
	long ms = *(long *)arg;
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
	stop_flag = 1;
	return NULL;
}

static int cmd_create(struct docker *d, int argc, char **argv)
{
	struct gerr err = { { 0 } };
	struct kvs labels = { .n = 0 };
	char *env[64] = { NULL };
	size_t nenv = 0;
	char *ep[2] = { NULL, NULL };
	struct resources res = { 0 };
	struct docker_create c = { .name = argv[0], .image = argv[1] };
	char id[128];

	for (int i = 2; i < argc; i++) {
		const char *o = argv[i];
		char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			return usage();
		i++;
		if (strcmp(o, "-l") == 0) {
			if (add_kv(&labels, v) < 0)
				return usage();
		} else if (strcmp(o, "-e") == 0) {
			if (nenv + 1 >= ARRAY_SIZE(env))
				return usage();
			env[nenv++] = v;
		} else if (strcmp(o, "-p") == 0) {
			char *a = strchr(v, ':'), *b = a ? strchr(a + 1, ':') : NULL;
			if (!a || !b)
				return usage();
			*a = *b = 0;
			c.host_ip = v;
			c.host_port = atoi(a + 1);
			c.container_port = atoi(b + 1);
		} else if (strcmp(o, "-m") == 0) {
			res.memory_bytes = atoll(v);
		} else if (strcmp(o, "--cpus") == 0) {
			res.cpu_millis = atoll(v);
		} else if (strcmp(o, "--pids") == 0) {
			res.pids = atoll(v);
		} else if (strcmp(o, "-u") == 0) {
			c.user = v;
		} else if (strcmp(o, "--entrypoint") == 0) {
			ep[0] = v;
			c.entrypoint = ep;
		} else if (strcmp(o, "--network") == 0) {
			c.network = v;
		} else if (strcmp(o, "--stop-signal") == 0) {
			c.stop_signal = atoi(v);
		} else {
			return usage();
		}
	}
	c.env = env;
	c.labels = labels.v;
	c.nlabels = labels.n;
	c.res = &res;
	if (docker_container_create(d, &c, id, sizeof(id), &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	printf("%s\n", id);
	return 0;
}

static int run(struct docker *d, int argc, char **argv)
{
	struct gerr err = { { 0 } };
	const char *cmd = argv[0];
	int k;

	argc--;
	argv++;
	if (strcmp(cmd, "ping") == 0) {
		if (docker_ping(d, &err) < 0)
			goto fail;
		printf("api %s\n", docker_api_version(d));
	} else if (strcmp(cmd, "inspect") == 0 && argc == 1) {
		struct docker_image im;
		if ((k = docker_image_inspect(d, argv[0], &im, &err)) < 0)
			goto fail;
		if (k == 0) {
			fprintf(stderr, "no such image: %s\n", argv[0]);
			return 3;
		}
		printf("id=%s size=%lld repo_digest=%s\n", im.id, (long long)im.size, im.repo_digest);
	} else if (strcmp(cmd, "create") == 0 && argc >= 2) {
		return cmd_create(d, argc, argv);
	} else if (strcmp(cmd, "start") == 0 && argc == 1) {
		if (docker_container_start(d, argv[0], &err) < 0)
			goto fail;
	} else if (strcmp(cmd, "kill") == 0 && argc == 2) {
		if (docker_container_kill(d, argv[0], atoi(argv[1]), &err) < 0)
			goto fail;
	} else if (strcmp(cmd, "rm") == 0 && argc == 1) {
		if ((k = docker_container_remove(d, argv[0], &err)) < 0)
			goto fail;
		printf("%s\n", k ? "removed" : "absent");
	} else if (strcmp(cmd, "inspect-container") == 0 && argc == 1) {
		struct docker_state s;
		if ((k = docker_container_inspect(d, argv[0], &s, &err)) < 0)
			goto fail;
		if (k == 0) {
			fprintf(stderr, "no such container: %s\n", argv[0]);
			return 3;
		}
		printf("id=%s\nname=%s\nimage=%s\nimage_ref=%s\nstatus=%s\nrunning=%d\npid=%d\nexit_code=%d\n"
		       "oom_killed=%d\nstarted_at_ms=%lld\nfinished_at_ms=%lld\nerror=%s\nhost_port=%d\nip=%s\n",
		       s.id, s.name, s.image, s.image_ref, s.status, s.running, s.pid, s.exit_code, s.oom_killed,
		       (long long)s.started_at_ms, (long long)s.finished_at_ms, s.error, s.host_port, s.ip);
	} else if (strcmp(cmd, "list") == 0 && argc == 1) {
		struct docker_container *c;
		size_t n;
		if (docker_container_list(d, argv[0], &c, &n, &err) < 0)
			goto fail;
		for (size_t i = 0; i < n; i++) {
			printf("%s %s %s", c[i].id, c[i].name, c[i].status);
			for (size_t j = 0; j < c[i].nlabels; j++)
				printf(" %s=%s", c[i].labels[j].key, c[i].labels[j].value);
			printf("\n");
		}
		docker_containers_free(c, n);
	} else if (strcmp(cmd, "logs") == 0 && (argc == 1 || (argc == 3 && strcmp(argv[1], "--follow-ms") == 0))) {
		long ms = argc == 3 ? atol(argv[2]) : 0;
		pthread_t th;
		if (ms > 0)
			pthread_create(&th, NULL, stopper, &ms);
		k = docker_container_logs(d, argv[0], ms > 0, 0, on_log, NULL, &stop_flag, &err);
		if (ms > 0)
			pthread_join(th, NULL);
		if (k < 0)
			goto fail;
	} else if (strcmp(cmd, "stats") == 0 && argc == 1) {
		struct docker_stats s;
		if (docker_container_stats(d, argv[0], &s, &err) < 0)
			goto fail;
		printf("memory_bytes=%lld\nmemory_limit=%lld\ncpu_percent=%.1f\n", (long long)s.memory_bytes,
		       (long long)s.memory_limit, s.cpu_percent);
	} else if (strcmp(cmd, "build") == 0 && argc >= 2) {
		struct kvs args = { .n = 0 };
		const char *file = NULL;
		struct docker_image im;
		for (int i = 2; i < argc; i++) {
			if (strcmp(argv[i], "-f") == 0 && i + 1 < argc)
				file = argv[++i];
			else if (strcmp(argv[i], "--arg") == 0 && i + 1 < argc && add_kv(&args, argv[i + 1]) == 0)
				i++;
			else
				return usage();
		}
		if (docker_image_build(d, argv[0], file, args.v, args.n, argv[1], on_progress, NULL, &im, &err) < 0)
			goto fail;
		printf("%s\n", im.id);
	} else if (strcmp(cmd, "push") == 0 && argc == 1) {
		if (docker_image_push(d, argv[0], on_progress, NULL, &err) < 0)
			goto fail;
	} else if (strcmp(cmd, "pull") == 0 && argc == 1) {
		if (docker_image_pull(d, argv[0], on_progress, NULL, &err) < 0)
			goto fail;
	} else if (strcmp(cmd, "tag") == 0 && argc == 3) {
		if (docker_image_tag(d, argv[0], argv[1], argv[2], &err) < 0)
			goto fail;
	} else if (strcmp(cmd, "rmi") == 0 && argc == 1) {
		if ((k = docker_image_remove(d, argv[0], &err)) < 0)
			goto fail;
		printf("%s\n", k ? "removed" : "kept");
	} else {
		return usage();
	}
	return 0;
fail:
	fprintf(stderr, "%s\n", err.msg);
	return 1;
}

int main(int argc, char **argv)
{
	struct gerr err = { { 0 } };
	struct docker *d;
	int rc;

	if (argc < 2)
		return usage();
	d = docker_open(NULL, &err);
	if (!d) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	rc = run(d, argc - 1, argv + 1);
	docker_close(d);
	return rc;
}
