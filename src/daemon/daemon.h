/*
 * daemon.h — the controller (`gantry serve`): private to src/daemon/.
 *
 * One libuv loop. Desired state lives in the store (svcenvs.target_revision
 * and .replicas); every 100 ms the reconcile tick compares it with the
 * replicas that exist and acts (start, drain, stop), so a restarted
 * controller simply resumes: see docs/internals/controller.md.
 */
#ifndef GANTRY_DAEMON_H
#define GANTRY_DAEMON_H
#include "common.h"
#include "core/spec.h"
#include "store/store.h"
#include "runtime/runtime.h" /* struct workload_user */
#include "runtime/pull_progress.h" /* struct dockrt_pull_state */
#include "daemon/usage.h"     /* struct replica_usage */
#include <uv.h>

/*
 * The API's entry points (src/api/), given to daemon_run by whoever starts
 * the controller (cli/serve.c passes &api_daemon_hooks), so that the daemon,
 * which the API drives, never includes the API's headers. Each runs on the
 * loop thread.
 */
struct daemon_api_hooks {
	/* listens on --api HOST:PORT: 0, or -1 with err naming --api; called
	 * before the proxy starts, so that a bad address leaves nothing running */
	int (*tcp_listen)(const char *addr, struct gerr *err);
	/* listens on a flags listener (--flags-listen, or an address containers reach:
	 * api/flags_tcp.h); retry: taking over from `gantry upgrade`. 0, or -1 with err */
	int (*flags_listen)(const char *addr, bool retry, struct gerr *err);
	/* listens on HOME/api.sock once the proxy runs: 0, or -1 (said on stderr) */
	int (*listen)(void);
	/* shutdown: stops both listeners and closes their connections; idempotent */
	void (*close)(void);
	/* `gantry upgrade` (upgrade.c): the listening sockets' descriptors (-1:
	 * none) to hand to the next controller; pause stops accepting on them
	 * (connections wait in the backlog; api.sock stays); listen_fds listens
	 * on descriptors handed over (the next controller, or this one taking
	 * back its own after a failed upgrade): 0, or -1 with err */
	void (*fds)(int *unix_fd, int *tcp_fd);
	void (*pause)(void);
	int (*listen_fds)(int unix_fd, int tcp_fd, struct gerr *err);
	/* runs req (borrowed) as the controller itself, named actor, through the
	 * same dispatcher as a request over the socket; reply: new reference */
	struct json_t *(*dispatch_as)(struct json_t *req, const char *actor);
};

struct daemon_opts {
	const struct daemon_api_hooks *api_hooks; /* required; borrowed for daemon_run's length */
	const char *home;
	const char *listen;   /* proxy listener, default 127.0.0.1:8080 */
	const char *admin;    /* proxy admin listener, default 127.0.0.1:9090 */
	const char *api;      /* the API over TCP (HTTP), HOST:PORT; NULL: only HOME/api.sock */
	const char *flags_listen; /* --flags-listen HOST:PORT: OFREP only (api/flags_tcp.h); NULL: none */
	const char *forward_headers; /* the proxy's, written into its routes file; NULL: all */
	const char *trusted_proxies; /* "CIDR,...", written into the routes file; NULL: none */
	int64_t restart_backoff_ms; /* first restart delay, doubling to 5m (Kubernetes: 10s) */
	/* the spec beside serve (-f): applied as the daemon's OS user (admin) when
	 * the store holds none yet; NULL: none */
	const char *spec_name, *spec_text;
	size_t spec_len;
	const char *spec_actor;
	const char *audit_export; /* --audit-export: every audit entry appended there too; NULL: none */
	/* GANTRY_TAKEOVER, set by a controller upgrading to this one (upgrade.c):
	 * the descriptors it hands over; NULL: an ordinary start */
	const char *takeover;
	const char *low_disk; /* --low-disk: "5%" or "500Mi" (disk.h); NULL: the default */
	/* --proxy-peer: the admin addresses of remote proxies (proxypeers.h), and
	 * the token they all take (--proxy-peer-token-file's content; NULL: none) */
	const char *const *proxy_peers;
	size_t nproxy_peers;
	const char *proxy_peer_token;
};

int daemon_run(const struct daemon_opts *opts);

/* ---- internals shared by the files in src/daemon ---- */

struct revcfg {                  /* cached config of one revision */
	int number;
	char version[128];
	char digest[80];
	char *dir;                   /* artifact snapshot directory (process runtime) */
	char image_id[88];           /* docker runtime: "sha256:" + digest, the image it runs */
	struct svc_config cfg;
	struct revcfg *next;
};

struct svcenv;

struct replica {
	struct replica_row row;
	struct svcenv *se;
	struct revcfg *rc;
	uv_process_t proc;
	bool proc_active;            /* proc is a live uv handle (we are the parent) */
	bool freeing;
	bool left;                   /* serve stops and leaves it to the cluster lease's holder (replica_leave) */
	bool recorded;               /* its row was written once (a new one's first save failed: never started) */
	char cgroup[192];
	char log_path[512];
	char *scratch;               /* HOME/scratch/ID: its HOME and TMPDIR (owned) */
	struct workload_user user;   /* who it runs as (resolved at spawn and adoption) */
	bool have_user;
	struct probe_run *rprobe, *lprobe;
	struct dockrt_probe *drprobe, *dlprobe; /* exec probes of a container (dockrt.c); at most one of each pair runs */
	int ready_fails, live_fails;
	int64_t next_rprobe, next_lprobe; /* ms */
	int64_t started_ms;
	int64_t backoff_until;
	int64_t drain_deadline;
	uint64_t drain_gen;
	int64_t kill_at;             /* SIGKILL after stop_grace */
	long oom_base;
	pid_t pgid;                  /* the replica's process group (its first pid) */
	int consecutive_crashes;
	bool restart_after_stop;     /* liveness failure: stop, then restart */
	struct replica_usage usage;  /* CPU and memory (usage.c) */
	struct kv *senv;             /* its env with its secrets' values (secrets.c); NULL: the config's */
	size_t nsenv;
	char *secrets_dir;           /* its secret files' directory (secrets.c; owned), NULL: none */
	/* docker runtime (dockrt.c) */
	struct dockrt_job *djob;     /* its container being made; NULL: none */
	struct dockrt_follower *dlog; /* the thread copying its log stream */
	uint64_t dseq;               /* the poll count when its container was recorded */
	bool d_oom;                  /* its container's end: OOMKilled */
	bool d_probe_told;           /* its container's exec probe could not run (no /bin/sh): the event was sent */
	char d_detail[96];           /* an exit without a status, described (the Engine's State.Error, a failed start) */
	/* swarm runtime (swarmrt.c): row.container is its task's container, row.pid -1 once it runs */
	char sw_task[64];            /* the Swarm task it is bound to ("": waiting for one) */
	char sw_node[256];           /* that task's node (hostname) */
	char sw_lost[256];           /* the node its previous task was lost with (for task_rescheduled) */
	uint64_t sw_seq;             /* the poll that bound it */
	struct replica *next;
};

struct svcenv {
	struct svcenv_row row;
	struct rollout_row rollout;  /* latest rollout (rollout.id 0 = none) */
	struct revcfg *revs;
	struct replica *replicas;
	int64_t crash_times[16];     /* restart times of the target revision (ring; steady clock) */
	int ncrash;
	struct { int revision, weight; } traffic[8]; /* parsed row.traffic */
	int ntraffic;
	struct prog *prog;           /* a canary/blue-green rollout being driven (progressive.c) */
	struct cond_eval *watch;     /* rollback_on of a rolling rollout, armed until watch ends */
	size_t nwatch;
	int64_t watch_rollout;       /* the rollout the evaluators belong to */
	int64_t watch_last_ms;
	bool converged;              /* last reconcile found nothing to do */
	uint64_t route_clash;        /* proxyctl: the host collision last reported as an event (a hash), 0: none */
	char tampered[80];           /* the last digest an artifact_tampered event was given for */
	struct svcenv *next;
};

struct daemon {
	uv_loop_t *loop;
	struct store *store;
	char *home;
	char tag[40];                 /* HOME/instance-id: replicas' GANTRY_TAG */
	char *listen, *admin;
	char *forward_headers; /* NULL: the proxy's default (all) */
	char *trusted_proxies; /* NULL: none */
	char *admin_token;     /* the proxy admin's bearer token (HOME/proxy-admin.token); NULL: none */
	char **proxy_peers;    /* remote proxies' admin addresses (proxypeers.c) */
	size_t nproxy_peers;
	char *proxy_peer_token; /* their bearer token; NULL: none */
	struct svcenv *svcenvs;
	uv_timer_t tick, kick;
	uv_signal_t sigterm, sigint, sigchld_dummy;
	uv_pipe_t api;                /* HOME/api.sock's listener, src/api/dispatch.c's */
	const struct daemon_api_hooks *api_hooks; /* daemon_opts' */
	bool shutting_down;
	bool restoring;               /* start-up: bringing back the desired state, refusing changes */
	int64_t started_ms;
	int64_t shutdown_started;
	/* proxy */
	pid_t proxy_pid;
	uint64_t proxy_start;
	bool proxy_proc_active;
	int64_t proxy_respawn_at;
	int64_t proxy_spawned_ms;     /* clock_mono_ms() of the last spawn */
	int64_t proxy_backoff_ms;     /* 0, or the crash loop's delay (1 s doubling to 8 s) */
	int proxy_lfds[64];           /* the listening sockets held for the proxy (proxyctl.c) */
	int proxy_nlfds;
	bool proxy_confirmed;         /* answered /status since it started */
	/* what `gantry status` says of the proxy (set by on_proxy_exit) */
	int proxy_restarts;           /* proxies that exited and were (to be) replaced since serve started */
	char proxy_last_exit[64];     /* the last one's end, as a replica's last_exit ("killed by signal 9 (Killed)"); "": none */
	int64_t proxy_last_lived_ms;  /* how long it had run */
	int64_t last_hup_ms;
	uint64_t route_gen;
	char *routes_json;           /* last written table without generation, for change detection */
	bool routes_dirty;
	/* proxy status poll */
	bool status_busy;
	uint64_t proxy_gen_seen;
	char *proxy_status;          /* last /status JSON body */
	int64_t last_status_ms;
	int64_t last_rotate_ms;
	int64_t last_sweep_ms;
	int64_t last_poll_ms;
	int64_t backoff_base_ms;
	/* the stored spec (spec_owner.c): the desired state and the rules */
	struct spec *spec;            /* newest stored version, parsed; NULL: none applied yet */
	struct json_t *spec_tree;     /* its YAML tree as JSON (spec_tree_json), for diffs */
	struct json_t *notify;        /* its webhooks (gspec_notify) or NULL */
	int64_t spec_version;         /* 0: none */
	char spec_digest[72];
	/* the audit log's anchors (audit_anchor.h) */
	unsigned char audit_key[32]; /* HOME/audit.key, AUDIT_KEY_BYTES */
	char *audit_export;           /* NULL: none */
	/* `gantry upgrade` (upgrade.c) */
	int lock_fd;                  /* HOME/serve.lock, flocked */
	int proxy_admin_fd;           /* the proxy's admin listener, held like proxy_lfds; -1: none */
	bool upgrading;               /* a next controller is starting: act on nothing */
	bool handed_over;             /* it took over: exit, leaving replicas and proxy running */
	struct upgrade *upgrade;      /* the upgrade in progress (old side) */
	struct takeover *takeover;    /* what the previous controller handed over (new side) */
	char upgrade_state[16];       /* "", "upgrading", "failed" */
	char upgrade_error[256];
	pid_t old_proxy_pid;          /* the previous binary's proxy, draining after an upgrade */
	int64_t routes_retry_at;      /* a failed routes write is retried from then (clock_mono_ms) */
	int64_t routes_backoff_ms;
	uint64_t old_proxy_start;
};

extern struct daemon *gd;

/* upgrade.c: `gantry upgrade`, the old controller's side: checks the binary
 * on disk (/proc/self/exe's path), stops acting, starts it with every
 * listener, and exits once it says it runs; a next controller that fails
 * to start leaves this one running as before. 0 (*new_pid set), or -1
 * with err and nothing changed */
int daemon_upgrade_start(pid_t *new_pid, char *binary, size_t binsz, struct gerr *err);
/* the new controller's side: parse opts->takeover (0, or -1 with err) */
int daemon_takeover_parse(const char *spec, struct gerr *err);
/* the lock, API and proxy descriptors handed over (-1: none) */
int daemon_takeover_fd(const char *name);
int daemon_takeover_proxy_fds(int *fds, int max);
/* tells the previous controller that this one runs (it then exits) */
void daemon_takeover_ready(void);
void daemon_upgrade_free(void);

/* daemon.c */
struct svcenv *daemon_svcenv(const char *svc, const char *env, bool create);
struct revcfg *daemon_revcfg(struct svcenv *se, int number, struct gerr *err);
void daemon_event(struct svcenv *se, int revision, const char *kind, const char *fmt, ...) PRINTF_LIKE(4, 5);
int daemon_save_svcenv(struct svcenv *se);
int daemon_save_rollout(struct svcenv *se);
void daemon_reconcile(struct svcenv *se);
void daemon_kick(void);
/* a revision's weight in the traffic override (0..100), or -1 when traffic
 * follows the replicas (no override) */
int daemon_traffic_weight(const struct svcenv *se, int revision);
/* sets the override from JSON [{revision, weight}] ("" clears); weights must add to 100 */
int daemon_set_traffic(struct svcenv *se, const char *json, struct gerr *err);
/* more than 5 restarts of the target revision within 5 minutes */
bool daemon_crashlooping(const struct svcenv *se, int64_t now);
/* replicas the target should have: scale override, else its config */
int daemon_desired(const struct svcenv *se, const struct revcfg *rc);
/* one sample of a rollback_on condition's metric on revision rev now (daemon.c) */
struct cond_sample;
void daemon_watch_sample(struct svcenv *se, struct revcfg *rc, int rev, enum cond_metric m, int64_t now,
			 struct cond_sample *smp);

/*
 * Whether a replica may start from rc's artifact now (artifact_check.c):
 * true once its digest was verified in this controller's life. False while
 * the check runs (ask again: a kick follows its answer) or when the
 * snapshot does not match its digest; then an artifact_tampered event (once
 * per service, environment and digest) and, when rc is what the active
 * rollout rolls out, the rollout fails naming the digest.
 */
bool daemon_artifact_ok(struct svcenv *se, struct revcfg *rc);

/* artifact_check.c */
enum { ARTIFACT_CHECK_NONE, ARTIFACT_CHECK_PENDING, ARTIFACT_CHECK_OK, ARTIFACT_CHECK_TAMPERED,
       ARTIFACT_CHECK_ERROR };
/*
 * The verdict on HOME/artifacts/digest (borrowed): _OK, _PENDING (a check
 * was queued on the thread pool, or is running), _TAMPERED or _ERROR with
 * *why (borrowed, valid until the next call) naming the digest.
 */
int artifact_check(const char *digest, const char **why);
void artifact_check_release(void);

/* spec_owner.c */
struct identity;
/* loads the newest stored spec version into gd->spec: 1 loaded, 0 none stored, -1 unreadable (err) */
int daemon_spec_restore(struct gerr *err);
void daemon_spec_release(void);
/* start-up: restores the stored spec, else applies opts' spec as the daemon's
 * own user (admin); prints which version runs. -1 (and *exit_code) when
 * the stored spec is unreadable or the given one invalid: serve stops. */
int daemon_spec_start(const struct daemon_opts *opts, int *exit_code);
/* a proposed spec, validated and diffed against the stored one (spec_owner.c) */
struct spec_proposal {
	char name[256];
	char digest[72];
	char *text;
	struct spec *spec;
	struct json_t *tree, *diff;
	bool policy;                 /* the diff changes a policy key */
	bool swapped;                /* daemon_spec_swap: installed in gd for now */
	int64_t saved_version;
};
void spec_proposal_release(struct spec_proposal *p);
/*
 * Validates text (len bytes, shown as name) and diffs it against the stored
 * spec into *p: NULL when who may apply it, else the refusal (new
 * reference; p released): code 2 with every diagnostic, code 3 naming each
 * policy key a non-admin would change, code 1 when expect >= 0 is not the
 * stored version. audit_refusal: the refusal is an audit entry.
 */
struct json_t *daemon_spec_propose(const char *name, const char *text, size_t len, const struct identity *who,
				   int64_t expect, bool audit_refusal, const char *via, struct spec_proposal *p);
/* stores p as the next version (unless its diff is empty), audits it and
 * makes it current; p released. 1 stored, 0 unchanged, -1 (err) */
int daemon_spec_commit(struct spec_proposal *p, const struct identity *who, const char *via, struct gerr *err);
/*
 * Installs p's spec in gd as if it were stored (version + 1), or, called
 * again, puts the stored one back: a deploy decides with the spec it
 * carries and stores it only when the deploy goes ahead.
 */
void daemon_spec_swap(struct spec_proposal *p);
/* propose + commit in one (dry: only the diff, nothing stored or audited); reply: new reference */
struct json_t *daemon_spec_apply(const char *name, const char *text, size_t len, const struct identity *who,
				 int64_t expect, bool dry, const char *via);

/*
 * The config of svc in env resolved from the stored spec, with req's "set"
 * (["env.KEY=VALUE"]) and "strategy" (rolling | recreate) applied:
 * *config (owned, JSON with sorted keys) and its hex SHA-256. -1 with
 * *reply (code 2) when there is no spec, no such service/environment, or
 * a bad set/strategy. pinned (borrowed; NULL: none): a config resolved
 * before (a deployment waiting for approval) whose secret versions a
 * reference without a version keeps (secrets_pin_like), so the approver
 * approves the versions pinned at request time.
 */
int daemon_resolve(const char *svc, const char *env, struct json_t *req, const char *pinned, char **config,
		   char digest[72], struct json_t **reply);

/* rollouts.c: revisions and their rollouts, one transaction each */
/* the artifact snapshot of digest is in HOME (a pruned revision's may still be) */
bool daemon_artifact_present(const char *digest);
/* the revision a rollback returns to: newest one before `from` that served (0 none, -1 err) */
int daemon_previous_served(struct svcenv *se, int from, struct gerr *err);
/* a new revision that copies revision `source`'s artifact and config exactly, rolled out; reply: new ref */
struct json_t *daemon_copy_revision(struct svcenv *se, int source, const char *kind, const char *by, const char *why);
/* the same with another config (borrowed; NULL: the source's): `secret rotate --restart` pins a new version */
struct json_t *daemon_copy_revision_with(struct svcenv *se, int source, const char *kind, const char *by,
					 const char *why, const char *config);
/* the controller's own rollback (rollback_on after a rolling deploy): a new revision copying `to` */
int daemon_auto_rollback(struct svcenv *se, int to, const char *why);

/* replica.c */
struct replica *replica_create(struct svcenv *se, struct revcfg *rc);
int replica_spawn(struct replica *r);
void replica_tick(struct replica *r, int64_t now);
void replica_drain(struct replica *r, const char *why);
void replica_stop(struct replica *r, const char *why);
/* serve stops and r is left as it is (another controller drives its
 * cluster, daemon/swarmlease.h): its probes end, nothing more is done to it */
void replica_leave(struct replica *r);
int replica_save(struct replica *r); /* 0, or -1 (logged): the store cannot write */
void replica_adopt_all(void);
bool replica_is_ready(const struct replica *r);
bool replica_is_leaving(const struct replica *r);
void replica_sweep_cgroups(void);
/* for a runtime that starts asynchronously (dockrt.c): it could not start
 * (why: borrowed; counts as an exit for the backoff), it runs (row.pid
 * set: probes begin), it ended (exit_code -1: unknown) */
void replica_spawn_failed(struct replica *r, const char *why);
void replica_running(struct replica *r);
void replica_exited(struct replica *r, int exit_code, bool oom, const char *detail);
/* where the proxy and the probes reach r: "IP:PORT" into buf (row.host, else
 * 127.0.0.1 and its port); *ip and *port split (ip: 64 bytes) */
const char *replica_addr(const struct replica *r, char *buf, size_t len);
void replica_target(const struct replica *r, char *ip, int *port);
/* r could not start because its runtime cannot be reached (the Docker Engine
 * is down): not a crash; it waits (backoff state, no restart counted) and
 * tries again in a second */
void replica_spawn_deferred(struct replica *r, const char *why);
/* SIGTERM/SIGKILL to the whole replica, whatever its runtime */
void replica_signal(struct replica *r, int sig);

/* dockrt.c: replicas as containers of the Docker Engine */
bool replica_is_docker(const struct replica *r);
/* after r's row is recorded "starting": makes and starts its container
 * (thread pool); replica_running or replica_spawn_failed follows. 0/-1 */
int dockrt_spawn(struct replica *r);
/* where a container with secrets has them: the replica's secrets directory (read-only) and
 * gantry-secret-exec, its entrypoint (src/shim/secret-exec.c) */
#define DOCKRT_SECRETS_MOUNT "/run/secrets"
#define DOCKRT_LAUNCHER "/.gantry/secret-exec"
/* the numeric uid:gid r's container runs as (its secrets directory's owner): 0, or -1 with err */
int dockrt_secret_owner(struct replica *r, uid_t *uid, gid_t *gid, struct gerr *err);
void dockrt_signal(struct replica *r, int sig);
/* the user r's container runs as: the spec's (never root), else the default workload user's uid:gid */
int dockrt_container_user(struct replica *r, char *out, size_t len, struct gerr *err);
/* its container ended: removed (in the background), row.container cleared */
void dockrt_reap(struct replica *r);
/* r is being freed: its container is removed, a start in flight too */
void dockrt_forget(struct replica *r);
/* every DOCKRT_POLL_MS: one list of our containers; ends are reported */
void dockrt_tick(int64_t now);
/* Engine calls in flight (serve waits for them before it exits) */
bool dockrt_busy(void);
/* start-up: alive[i] for each row whose container runs (rows' container
 * filled in when found by label only); labelled containers no row owns
 * are removed. -1 if the Engine cannot be reached (alive: as recorded) */
int dockrt_adopt_scan(struct replica_row *rows, size_t n, bool *alive);
void dockrt_follow_logs(struct replica *r, int64_t since);
/* the same from the Engine at url (a cluster task's node; NULL: this host's) */
void dockrt_follow_logs_at(struct replica *r, const char *url, int64_t since);
void dockrt_stop_logs(struct replica *r);
/* an exec probe of r's container: `/bin/sh -c TARGET` inside it, as its
 * user (thread pool, bounded by p's timeout). cb(r, ok, detail) exactly once
 * on the loop, unless dockrt_probe_cancel came first (the answer is then
 * dropped; the job frees itself either way). NULL (cb not called): not
 * started (no container yet, the Engine down, a user refused, or
 * DOCKRT_PROBES_MAX exec probes already hold threads of the pool) */
struct dockrt_probe *dockrt_probe_start(struct replica *r, const struct probe *p, probe_cb cb);
/* p (may be NULL) will not call back; it must not have called back yet */
void dockrt_probe_cancel(struct dockrt_probe *p);
/* the image id (hex, without "sha256:") ref names now in the Engine: what a
 * revision pins; 0. When the Engine lacks it and pull is not NULL: a ref
 * "sha256:…" is not pulled here: 1, hex = its id (the caller pulls it with
 * dockrt_pull_start, off the op handler, and checks the id); another ref
 * (an image: tag, no id known) is not pulled here either: 2, hex "" (the
 * caller pulls pull with dockrt_pull_start and takes the pulled image's
 * id). Never blocks beyond an image inspect. -1 with err */
int dockrt_pin_image(const char *ref, const char *pull, char *hex, size_t len, struct gerr *err);
/* the image sha256:hex is in the Engine: 1, 0 (absent), -1 (err) */
int dockrt_image_present(const char *hex, struct gerr *err);
/* the Engine's address, for messages */
const char *dockrt_engine_host(void);
/*
 * An asynchronous pull of ref (a thread; one per reference, shared by every
 * holder). NULL with err when the Engine cannot be reached. The handle is
 * the caller's until dockrt_pull_release; dockrt_pull_get copies its state.
 */
struct dockrt_pull_state {
	bool done;
	int rc;                       /* 0, -1 (error) once done */
	char error[512];
	char id[80];                  /* the pulled image's id, "sha256:…", once done */
	int64_t started_ms, ended_ms; /* clock_mono_ms */
	struct pull_progress progress;
};
struct dockrt_pull;
struct dockrt_pull *dockrt_pull_start(const char *ref, struct gerr *err);
void dockrt_pull_get(const struct dockrt_pull *p, struct dockrt_pull_state *out);
void dockrt_pull_release(struct dockrt_pull *p);
/* pruning: removes the image of id hex from the Engine in the thread pool
 * (not forced), its tags first (each only while it still names that id);
 * done(arg, rc, why) follows on the loop with rc 1 (removed, or it was
 * absent), 0 (it stays: a container uses it, or another name the Engine
 * will not drop unforced) or -1 (why: the Engine's error). -1 with err if
 * the Engine cannot be reached (done is not called) */
typedef void (*dockrt_image_done)(void *arg, int rc, const char *why);
int dockrt_remove_image(const char *hex, const char *const *tags, size_t ntags, dockrt_image_done done, void *arg,
			struct gerr *err);

/*
 * storefault.c: the store cannot write (docs/internals/controller.md,
 * "Record, then act"). daemon_store_ok: writes reach the disk; while not,
 * nothing that would need a write is acted on.
 */
bool daemon_store_ok(void);
/* every tick: notices the fault (a log line), retries a probe write 100 ms
 * doubling to 5 s, and on recovery resyncs the replica rows and sends one
 * store_recovered event and webhook per service environment (now: mono ms) */
void daemon_store_tick(int64_t now);
/* 0 when the store writes; else -1 with err "state store cannot write (...):
 * nothing changed; free space in HOME and retry" */
int daemon_store_refusal(struct gerr *err);
/* {"ok": true} or {"ok": false, "error", "since_ms", "for_ms"}: new reference */
struct json_t *daemon_store_json(void);
/* times the store stopped accepting writes since the controller started (/metrics) */
long long daemon_store_failures(void);
/* a write for se failed: its desired state, rollout and strategy state go
 * back to what the store recorded (as a restarted controller would see) */
void daemon_store_reload(struct svcenv *se);

/* proxyctl.c */
int proxyctl_start(void);
void proxyctl_tick(int64_t now);
void proxyctl_write_routes(void);
/* inflight for address in the proxy's last status, -1 unknown */
int proxyctl_inflight(const char *address);
void proxyctl_stop(void);
/* gantry upgrade: 0 when this controller holds the proxy's listeners (taking
 * copies from an adopted proxy if need be), else -1 with err */
int proxyctl_hold(struct gerr *err);
/* after a failed upgrade: the proxy the store names (the failed controller
 * may have started one), or a new one at the next tick */
void proxyctl_resume(void);
/* the proxy runs the table we last wrote */
bool proxyctl_caught_up(void);
void proxyctl_free(void);
/* GET path on the proxy's admin listener off the loop; done(code, body, data)
 * runs on the loop (code 0: no answer). -1 if it could not be queued */
int proxyctl_admin_get(const char *path, void (*done)(long code, const char *body, void *data), void *data);

/* progressive.c: canary and blue-green */
struct json_t;
bool progressive_strategy(const struct revcfg *rc);
/*
 * now, below: the steady clock (clock_steady_ms, util/clock.h), the clock of
 * the rollout's persisted deadlines (pauses, progress deadlines, `for`
 * windows, analysis rounds): a wall-clock step does not move them in a
 * running controller; a restarted one reads them against the wall clock.
 */
int progressive_start(struct svcenv *se, struct revcfg *rc, int stable, int64_t now, struct gerr *err);
/* a controller start: the rollout's saved state (se->rollout.state) back in
 * memory, at now */
void progressive_restore(struct svcenv *se, int64_t now);
/* drives the rollout; false when there is none (any more): use the rolling planner.
 * now: the steady clock (above); mono: the monotonic clock (clock_mono_ms) of
 * the proxy's metric windows (metrics.h) */
bool progressive_reconcile(struct svcenv *se, int64_t now, int64_t mono);
/* pause/resume/abort/promote (enum canary_event_kind values from rollout/canary.h) */
int progressive_command(struct svcenv *se, int kind, const char *who, const char *why, bool full,
			struct gerr *err);
struct json_t *progressive_status(const struct svcenv *se);
void progressive_free(struct svcenv *se);
/* rollback within keep_previous: traffic back onto the still-warm previous
 * revision at once. 0 done, 1 not applicable (deploy a copy instead), -1 err */
int progressive_rollback_warm(struct svcenv *se, int to, const char *who, struct gerr *err);
/* adds header_rules and shield of the rollout to a routes-file route */
void progressive_route(const struct svcenv *se, struct json_t *route, const char *(*tag_of)(int, void *),
		       void *data);
/* the canary revision while a rollout is live, else 0; its blue-green preview tag or NULL */
int progressive_canary_revision(const struct svcenv *se);
const char *progressive_preview_tag(const struct svcenv *se);


#endif
