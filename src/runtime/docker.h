/*
 * docker.h — a client of the Docker Engine HTTP API (no policy: the
 * controller in src/daemon/ decides what to create, start and stop).
 *
 * It speaks the Engine API with libcurl over the daemon's Unix socket
 * (DOCKER_HOST=unix:///PATH, or tcp://127.0.0.1:PORT for tests; default
 * unix:///var/run/docker.sock), never through the docker CLI. The API version
 * is negotiated once at docker_open: GET /_ping gives the server's
 * API-Version header; the client uses min(server, DOCKER_API_MAX) and
 * refuses a server below DOCKER_API_MIN.
 *
 * Every call is blocking and bounded (DOCKER_TIMEOUT_MS unless said
 * otherwise): the controller calls them from libuv's thread pool or a
 * thread of its own, never on its loop. A struct docker is read-only after
 * docker_open, so calls may run on several threads at once (each uses its
 * own curl handle).
 *
 * Errors: -1 with err set to one line that names the operation and what
 * the Engine said ("create container gantry-web-1: No such image: sha256:…"),
 * or "docker: cannot reach unix:///…/docker.sock: …" when the daemon is
 * down. A missing object is not an error where a function says so (1/0).
 */
#ifndef GANTRY_DOCKER_H
#define GANTRY_DOCKER_H
#include "common.h"
#include "core/spec.h"

#define DOCKER_API_MIN "1.40"
#define DOCKER_API_MAX "1.43"
#define DOCKER_TIMEOUT_MS 30000
/* pull, push and build move layers: bounded by this instead */
#define DOCKER_LONG_TIMEOUT_MS (30 * 60 * 1000)
/* the largest build context docker_image_build sends (the tar is made in memory) */
#define DOCKER_CONTEXT_MAX (256 << 20)

struct docker;

/* host: NULL = $DOCKER_HOST, else unix:///var/run/docker.sock; unix:///PATH
 * or tcp://HOST:PORT (plain HTTP: no TLS). Pings the daemon and negotiates
 * the version. NULL with err if it cannot be reached or speaks an API below
 * DOCKER_API_MIN. Calls curl_global_init: call it before other threads run
 * (once is enough; docker_close undoes it). Owned by the caller: docker_close */
struct docker *docker_open(const char *host, struct gerr *err);
void docker_close(struct docker *d);
/* "1.41": the negotiated version (borrowed) */
const char *docker_api_version(const struct docker *d);
/* the host string it talks to (borrowed) */
const char *docker_host(const struct docker *d);
/* GET /_ping: 0 if the daemon answers, -1 with err */
int docker_ping(struct docker *d, struct gerr *err);

/* ---- images ---- */

struct docker_image {
	char id[80];              /* "sha256:<64 hex>": the image's content id */
	char repo_digest[256];    /* "REPO@sha256:…" if the image came from a registry, else "" */
	int64_t size;
};
/* GET /images/REF/json. 1 (found, *out filled), 0 (no such image), -1 */
int docker_image_inspect(struct docker *d, const char *ref, struct docker_image *out, struct gerr *err);

/* the image's Config.Entrypoint and Config.Cmd: *entrypoint and *cmd
 * NULL-terminated (owned: free each string and the array; NULL when the
 * image has none). 1, 0
 * no such image, -1 */
int docker_image_command(struct docker *d, const char *ref, char ***entrypoint, char ***cmd, struct gerr *err);

/* progress of a pull, push or build: one line of the Engine's JSON stream
 * made human ("pull web:1: layer 3/5 12.1 MB/40.0 MB", "Step 2/4 : COPY …"),
 * borrowed for the call */
typedef void (*docker_progress_cb)(void *data, const char *line);

/* REF split for the pull and push endpoints: NAME, and TAG ("latest" if
 * none) or DIGEST ("sha256:…" after '@'). -1 if ref is empty or a part does
 * not fit */
int docker_ref_split(const char *ref, char *name, size_t namelen, char *tag, size_t taglen);

/* POST /images/create?fromImage=REF: 0 when the image is present, -1 with
 * the Engine's error ("pull 127.0.0.1:5000/web:1: manifest unknown") */
int docker_image_pull(struct docker *d, const char *ref, docker_progress_cb cb, void *data, struct gerr *err);
/* the same, each status line also given structured (layer id, "" for the
 * image's own lines; status; progressDetail current/total, 0 if absent):
 * what pull_progress_update aggregates. lcb runs on the caller's thread */
typedef void (*docker_layer_cb)(void *data, const char *id, const char *status, int64_t current, int64_t total);
int docker_image_pull_layers(struct docker *d, const char *ref, docker_layer_cb lcb, void *data, struct gerr *err);
/* POST /images/NAME/push?tag=TAG (NAME:TAG in ref): 0 or -1 with err */
int docker_image_push(struct docker *d, const char *ref, docker_progress_cb cb, void *data, struct gerr *err);
/* POST /build with a tar of context_dir (made in memory, at most
 * DOCKER_CONTEXT_MAX: regular files, directories and symlinks, uid/gid 0;
 * .dockerignore lines are fnmatch patterns against the relative path or
 * any of its parent directories, '#' comments; '!' exceptions are not
 * supported and refused) (dockerfile relative to it; NULL =
 * "Dockerfile"), build args, tagged tag. out gets the image. A failed build:
 * -1, err holds the Engine's error and the build's last lines */
int docker_image_build(struct docker *d, const char *context_dir, const char *dockerfile,
		       const struct kv *args, size_t nargs, const char *tag, docker_progress_cb cb, void *data,
		       struct docker_image *out, struct gerr *err);
/* POST /images/REF/tag?repo=&tag= : 0 or -1 */
int docker_image_tag(struct docker *d, const char *ref, const char *repo, const char *tag, struct gerr *err);
/* DELETE /images/REF (not forced: an image a container uses stays). 1
 * removed, 0 absent or in use, -1 */
int docker_image_remove(struct docker *d, const char *ref, struct gerr *err);

/* ---- networks ---- */

/* GET /networks/NAME: the IPv4 gateway of its IPAM config (the host's address on
 * it, e.g. the default bridge's 172.17.0.1) into ip. 1 found, 0 none (or no such
 * network), -1 with err */
int docker_network_gateway(struct docker *d, const char *name, char *ip, size_t len, struct gerr *err);

/* ---- containers ---- */

struct docker_create {
	const char *name;         /* container name (unique), e.g. gantry-<replica id> */
	const char *image;        /* image id ("sha256:…") or reference */
	char *const *env;         /* NULL-terminated KEY=VALUE: the whole environment */
	const char *user;         /* "UID:GID" or a name; NULL: the image's */
	char *const *entrypoint;  /* NULL-terminated; NULL: the image's */
	char *const *cmd;         /* NULL-terminated; NULL: the image's */
	const struct kv *labels;  /* gantry.* labels (home tag, service, environment, revision, replica) */
	size_t nlabels;
	int container_port;       /* > 0: publish host_ip:host_port -> container_port/tcp */
	int host_port;
	const char *host_ip;      /* NULL: "127.0.0.1" */
	const struct resources *res; /* NULL or limits: memory, cpus (NanoCpus), pids */
	const char *network;      /* NULL: the Engine's default */
	int stop_signal;          /* 0: SIGTERM */
	char *const *binds;       /* NULL-terminated "HOST_PATH:CONTAINER_PATH:ro" (HostConfig.Binds); NULL: none */
};
/* POST /containers/create?name=NAME with RestartPolicy "no" (the controller
 * supervises), then nothing else: it is not started. id gets the full id */
int docker_container_create(struct docker *d, const struct docker_create *c, char *id, size_t idlen,
			    struct gerr *err);
/* POST /containers/ID/start (an already running one is not an error) */
int docker_container_start(struct docker *d, const char *id, struct gerr *err);
/* POST /containers/ID/kill?signal=N. A container that is not running: 0 */
int docker_container_kill(struct docker *d, const char *id, int sig, struct gerr *err);
/* DELETE /containers/ID?force=1&v=1. 1 removed, 0 no such container, -1 */
int docker_container_remove(struct docker *d, const char *id, struct gerr *err);

struct docker_state {
	char id[72];
	char name[160];
	char image[80];           /* the image id it runs */
	char image_ref[256];      /* Config.Image: the reference it was created from */
	char status[16];          /* created | running | paused | restarting | removing | exited | dead */
	bool running;
	int pid;                  /* the container's init process on the host, 0 if not running */
	int exit_code;
	bool oom_killed;
	int64_t started_at_ms;    /* unix ms, 0 if never */
	int64_t finished_at_ms;
	char error[256];          /* State.Error */
	int host_port;            /* the published port of container_port, 0 if none */
	char ip[64];              /* its address on its network ("" if none) */
};
/* GET /containers/ID/json. 1 found, 0 no such container, -1 */
int docker_container_inspect(struct docker *d, const char *id, struct docker_state *out, struct gerr *err);

struct docker_container {
	char id[72];
	char name[160];           /* without the leading '/' */
	char image[80];           /* ImageID: the image id it runs */
	char status[16];          /* State: created | running | exited | … */
	struct kv *labels;        /* every label (owned) */
	size_t nlabels;
};
/* GET /containers/json?all=1&filters={"label":[label]}: every container
 * (running or not) that carries label ("KEY" or "KEY=VALUE"). *out owned:
 * docker_containers_free */
int docker_container_list(struct docker *d, const char *label, struct docker_container **out, size_t *n,
			  struct gerr *err);
void docker_containers_free(struct docker_container *c, size_t n);
/* a label's value in c, or NULL */
const char *docker_label(const struct docker_container *c, const char *key);

/* GET /containers/ID/logs?stdout=1&stderr=1&follow=F&since=S: the output,
 * demultiplexed (non-TTY frames), passed to cb as it comes. follow: until
 * the container stops or *stop becomes nonzero (checked at least every
 * 200 ms); no timeout. since: unix seconds, 0 = from the start. */
typedef void (*docker_log_cb)(void *data, const char *buf, size_t len);
int docker_container_logs(struct docker *d, const char *id, bool follow, int64_t since, docker_log_cb cb,
			  void *data, volatile int *stop, struct gerr *err);

/* runs argv in the running container id as user (NULL: the container's),
 * as `docker exec` does: POST /containers/ID/exec, POST /exec/EID/start
 * (attached, its output demultiplexed), GET /exec/EID/json. All of it
 * within timeout_ms (<= 0: 1000). 0 when the command ran: *exit_code is
 * its status (126/127 and the Engine's message in out when argv[0] could
 * not be run, e.g. no such file in the image); out gets the first
 * non-empty line of its stdout and stderr, cut to outlen - 1 bytes. -1
 * with err: the Engine refused (no such container, not running) or
 * cannot be reached, or "timeout after Nms" (the command is then left
 * running in the container: the Engine cannot kill an exec) */
int docker_exec(struct docker *d, const char *id, char *const *argv, const char *user, int64_t timeout_ms,
		int *exit_code, char *out, size_t outlen, struct gerr *err);

struct docker_stats {
	int64_t memory_bytes;     /* usage minus page cache */
	int64_t memory_limit;     /* 0 = none */
	double cpu_percent;       /* of one core: 100 = one core busy */
	int64_t cpu_total_ns;     /* the container's cumulative CPU time */
};
/* GET /containers/ID/stats?stream=false: 0 or -1. The Engine samples twice
 * (about a second apart) for a non-streamed answer, so cpu_percent comes
 * from cpu_stats against precpu_stats of the same reply; the call takes
 * about a second. memory_bytes is usage minus "cache" (cgroup v1) or
 * "inactive_file" (v2); memory_limit is 0 when the Engine reports the
 * host's memory (no limit) */
int docker_container_stats(struct docker *d, const char *id, struct docker_stats *out, struct gerr *err);

/* ---- the Engine's stream formats, as pure functions (unit tests, fuzz) ---- */

/*
 * The log stream of a container without a TTY: frames of an 8-byte header
 * (stream 0/1/2, three zero bytes, a big-endian 32-bit length) and the
 * payload. Bytes may arrive cut anywhere: the state carries over between
 * calls. cb gets each payload piece with its stream (1 stdout, 2 stderr).
 */
struct docker_demux {
	unsigned char hdr[8];
	size_t hlen;               /* header bytes held */
	uint32_t left;             /* payload bytes still to come in this frame */
	int stream;
};
typedef void (*docker_demux_cb)(void *data, int stream, const char *buf, size_t len);
void docker_demux_init(struct docker_demux *m);
/* 0, or -1 with err on a header that is not one (the stream is then unusable) */
int docker_demux_feed(struct docker_demux *m, const char *p, size_t n, docker_demux_cb cb, void *data,
		      struct gerr *err);
/* true when the stream ended between frames (not in a header or a payload) */
bool docker_demux_clean(const struct docker_demux *m);

/*
 * The JSON progress stream of pull, push and build: one JSON object a line
 * ("stream", "status"/"progressDetail"/"id", "error"/"errorDetail",
 * "aux":{"ID"} or {"Digest"}). Lines (at most DOCKER_PROGRESS_LINE_MAX) are
 * made human and passed to cb (may be NULL) prefixed with what; the last
 * DOCKER_PROGRESS_KEEP output lines are kept for an error message.
 */
#define DOCKER_PROGRESS_LINE_MAX (1 << 20)
#define DOCKER_PROGRESS_KEEP 10
struct docker_progress {
	const char *what;          /* "pull web:1", borrowed */
	docker_progress_cb cb;
	void *data;
	char *line;                /* a partial JSON line (owned) */
	size_t len, cap;
	char *text;                /* a partial "stream" text line (owned) */
	size_t tlen;
	char keep[DOCKER_PROGRESS_KEEP][256]; /* ring of the last output lines */
	unsigned nkeep;            /* lines ever kept: the ring's next slot is nkeep % KEEP */
	char error[512];           /* the first error the stream reported, "" if none */
	char id[80];               /* aux.ID (build) */
	char digest[80];           /* aux.Digest (push) */
	bool overlong;             /* a line past DOCKER_PROGRESS_LINE_MAX was dropped */
	docker_layer_cb lcb;       /* NULL, or each status line structured */
	void *ldata;
};
void docker_progress_init(struct docker_progress *p, const char *what, docker_progress_cb cb, void *data);
void docker_progress_feed(struct docker_progress *p, const char *buf, size_t n);
/* the stream ended: a last line without its newline is taken */
void docker_progress_finish(struct docker_progress *p);
/* the kept lines, oldest first, joined by "; " into out */
void docker_progress_tail(const struct docker_progress *p, char *out, size_t outlen);
void docker_progress_release(struct docker_progress *p);

#endif
