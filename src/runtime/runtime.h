/*
 * runtime.h — process supervisor primitives (no policy: the controller in
 * src/daemon/ decides when to start, probe, drain and stop).
 *
 * Replicas are started with uv_spawn(UV_PROCESS_DETACHED) so each runs in its
 * own session (setsid) and process group; the controller gets their exit
 * status while it lives. Replicas outlive the controller: a restarted
 * controller re-adopts them by (pid, start time) and polls them.
 * Every replica carries GANTRY_TAG (HOME's random instance id, which says
 * nothing about where HOME is) and GANTRY_REPLICA in its environment, so a
 * process started just before a crash (not yet recorded) can still be found
 * by runtime_scan_tagged() and stopped: nothing is ever orphaned.
 * Workloads (replicas, exec probes, checks, metric commands) run as an
 * unprivileged user with a clean environment (workload_*, below).
 */
#ifndef GANTRY_RUNTIME_H
#define GANTRY_RUNTIME_H
#include "common.h"
#include "core/spec.h"
#include <signal.h>
#include <uv.h>

/* ---- processes ---- */

/* start time of pid in clock ticks since boot (/proc/PID/stat field 22);
 * 0 if the process does not exist or is a zombie */
uint64_t proc_start_time(pid_t pid);
/* true if pid is alive and still the same process (start time matches) */
bool proc_alive(pid_t pid, uint64_t start_time);
/* true if any process of session sid (a replica is its session's leader)
 * is alive; zombies do not count (an orphan's zombie waits for whoever
 * reaps for init, which can take a while) */
bool proc_session_alive(pid_t sid);
/* signal the process group of pid (replicas are group leaders) and, when
 * cgroup is not NULL, every process in that cgroup. pid is trusted: check
 * proc_alive(pid, start_time) first, pids are recycled. Refuses pid <= 1,
 * our own pid and our own process group. */
void proc_kill_tree(pid_t pid, const char *cgroup, int sig);

/* calls cb for every live session leader whose environment holds
 * GANTRY_TAG=tag (exact string match) and a GANTRY_REPLICA=ID; returns
 * the number found. Replicas lead their own session: their children
 * inherit the tags but stay in the replica's session and group, so they
 * are not reported (proc_kill_tree of the replica reaches them); a child
 * that called setsid() itself is reported, with its replica's id.
 * Skips ourselves and zombies. replica_id is borrowed for the call only. */
typedef void (*scan_cb)(pid_t pid, const char *replica_id, void *data);
int runtime_scan_tagged(const char *tag, scan_cb cb, void *data);

/* ---- workloads ---- */

#define WORKLOAD_DEFAULT_USER "gantry-run"
#define WORKLOAD_PATH "/usr/local/bin:/usr/bin:/bin"

/* who a workload runs as; drop false: as ourselves (serve is not root) */
struct workload_user {
	bool drop;
	uid_t uid;
	gid_t gid;
};

/* serve, once, before the loop and any thread: HOME/scratch (0711); as root
 * the default user WORKLOAD_DEFAULT_USER, created with useradd --system if
 * missing; not root: logs once that workloads run as ourselves. 0 or -1 */
int workload_setup(const char *home, struct gerr *err);
/* a spec's services.S.user (a name or a numeric uid; NULL/"" = the default
 * user) -> uid/gid. Refuses uid 0 and our own uid. Not root, or NULL
 * before workload_setup ran (unit tests, tools): *out is ourselves with
 * drop false, and 0. Thread-safe. 0, or -1 with err */
int workload_user_resolve(const char *name, struct workload_user *out, struct gerr *err);
/* in a child before exec: setgroups(0), setgid, setuid (raw system calls:
 * async-signal-safe, fine after fork in a threaded process). 0 or -1 */
int workload_drop(const struct workload_user *u);

/* what a workload's environment holds; nothing comes from ours */
struct workload_env {
	const struct kv *decl;    /* the spec's env (borrowed); may set PATH, HOME, TMPDIR, LANG, not PORT or GANTRY_* */
	size_t ndecl;
	int port;                 /* > 0: PORT (and GANTRY_URL if url) */
	bool url;
	const char *scratch;      /* HOME, TMPDIR and GANTRY_SCRATCH */
	const char *secrets_dir;  /* GANTRY_SECRETS_DIR: the replica's secret files (daemon/secrets.c) */
	const char *tag;          /* GANTRY_TAG (replicas) */
	const char *replica, *service, *environment, *version; /* GANTRY_* when not NULL */
	int revision;             /* > 0: GANTRY_REVISION */
	const char *flags_url;    /* GANTRY_FLAGS_URL: the OFREP base URL of its environment (daemon/flags.h) */
	const char *flags_token;  /* GANTRY_FLAGS_TOKEN: the environment's read-only evaluation token */
};
/* NULL-terminated KEY=VALUE array, tags first, plus PATH=WORKLOAD_PATH and
 * LANG=C.UTF-8 unless declared. Owned by the caller: workload_env_free */
char **workload_env_build(const struct workload_env *w);
/* zeroes every string (an environment may hold secrets) and frees it */
void workload_env_free(char **env);

/* a one-off command of the controller's (run check, metric command): the
 * default workload user (gantry-run), a fresh scratch directory (when serve
 * set one up) and e's environment with it. Thread-safe. In the child:
 * workload_drop(&w->user), then execve with w->env */
struct workload_cmd {
	struct workload_user user;
	char **env;
	char *scratch;
	char scratch_name[64];
};
int workload_cmd_prepare(struct workload_cmd *w, const struct workload_env *e, struct gerr *err);
/* removes the scratch directory, frees the environment */
void workload_cmd_release(struct workload_cmd *w);

/* HOME/scratch/NAME: created (or reused) 0700, owned by u; returns its path
 * (owned by the caller) or NULL with err. NAME is [A-Za-z0-9_.-], no leading '.' */
char *workload_scratch_make(const char *name, const struct workload_user *u, struct gerr *err);
/* removes HOME/scratch/NAME and all in it, never following links */
void workload_scratch_remove(const char *name);
/* removes every scratch directory keep (may be NULL) does not claim; returns how many */
int workload_scratch_sweep(bool (*keep)(const char *name, void *data), void *data);
/* HOME/instance-id: 32 random hex digits, made 0600 on first use; out gets
 * them (size >= 33). The replicas' GANTRY_TAG. 0 or -1 with err */
int workload_instance_id(const char *home, char *out, size_t size, struct gerr *err);

/* a proxy's listeners (one per worker, at most 64) and its admin listener */
#define SPAWN_MAX_PASS_FDS 65

struct spawn_opts {
	const char *cmd;          /* shell command line, run with sh -c */
	const char *cwd;          /* working directory (the revision snapshot) */
	char **env;               /* KEY=VALUE strings, NULL-terminated: the whole environment
	                           * (workload_env_build), or extra entries when inherit_env */
	bool inherit_env;         /* env first, then ours minus what env sets (the proxy: ours) */
	const struct workload_user *user; /* NULL or !drop: run as ourselves */
	const char *log_path;     /* stdout and stderr are appended here */
	const char *cgroup;       /* cgroup name to place the replica in, or NULL */
	const int *pass_fds;      /* borrowed: inherited as fds 3, 4, ... in the child (the
	                           * proxy's listening sockets); the caller's stay open */
	int npass_fds;            /* 0..SPAWN_MAX_PASS_FDS */
};

/*
 * Starts a replica. proc is caller's storage (uv handle, freed only after its
 * close callback); exit_cb is called when it exits while we live.
 * Returns 0 and fills *pid and *start_time, or -1 with err set.
 * The environment is o->env only; with inherit_env, o->env first, then ours
 * (minus the keys o->env sets).
 * The command runs as `/proc/self/exe __exec CGROUP [-u UID:GID] -- sh -c CMD`
 * (joins the cgroup as root, then drops to the user), so the
 * running binary must dispatch "__exec" to runtime_exec_main (main.c does;
 * a test binary must too). stdin is /dev/null; stdout and stderr are
 * appended to o->log_path (created 0600 if missing; its directory must
 * exist). uv_unref(proc) if the loop should not wait for replicas.
 * On failure no live handle is left: if uv_spawn itself failed (rare: the
 * cwd is checked first), runtime_spawn has started closing proc (no close
 * callback), so its storage must outlive the next loop iteration.
 */
int runtime_spawn(uv_loop_t *loop, uv_process_t *proc, const struct spawn_opts *o,
		  uv_exit_cb exit_cb, pid_t *pid, uint64_t *start_time, struct gerr *err);

/* The hidden subcommand `gantry __exec CGROUP [-u UID:GID] -- sh -c CMD`
 * that runtime_spawn runs: joins the cgroup ("-" = none), drops to UID:GID
 * (setgroups(0), setgid, setuid), resets the umask to 022, then execs.
 * argv[0] is "__exec". If joining fails it prints one line to stderr (the
 * replica log) and execs anyway; if dropping fails it does not exec.
 * Returns only on failure (127). */
int runtime_exec_main(int argc, char **argv);

/* ---- cgroups ---- */

/*
 * Cgroups live under a parent named "gantry" at the root of each hierarchy
 * (v2: <mnt>/gantry/NAME; v1: <memory mnt>/gantry/NAME and the same under
 * the cpu, pids and cpuacct hierarchies), found from /proc/self/mountinfo.
 * NAME is [A-Za-z0-9_.-]{1,128}, not starting with '.'.
 * Without usable cgroups every function below is a no-op that returns
 * -1 (create, join) or 0.
 */
enum cgroup_mode { CGROUP_NONE, CGROUP_V1, CGROUP_V2 };
/* detects once; logs "cgroups unavailable (REASON): running replicas
 * without resource limits" once */
enum cgroup_mode cgroup_mode(void);
/* creates (or reuses, resetting its limits) cgroup NAME with the limits
 * (0 = unlimited); 0 or -1 with err */
int cgroup_create(const char *name, const struct resources *res, struct gerr *err);
/* moves pid into NAME (every hierarchy); 0 or -1 with err (used by __exec) */
int cgroup_join(const char *name, pid_t pid, struct gerr *err);
/* number of OOM kills recorded in NAME: v2 memory.events oom_kill; v1
 * memory.oom_control oom_kill (kernels >= 4.13), else 1 if memory.failcnt > 0
 * (a heuristic: the limit was hit, a kill is likely) */
long cgroup_oom_kills(const char *name);
/* kill every process in NAME with sig (one pass over cgroup.procs: a
 * process forked during the pass may be missed, call again); returns
 * number signalled */
int cgroup_kill(const char *name, int sig);
/* number of processes still in NAME */
int cgroup_nprocs(const char *name);
/* removes NAME (must be empty) */
void cgroup_destroy(const char *name);
/* removes every empty cgroup under gantry/ older than a minute (younger
 * ones may be another controller's, between create and spawn) for which
 * keep (may be NULL) returns false: leftovers of replicas whose removal raced with their
 * last processes exiting (EBUSY), or of a controller killed with -9. Call
 * at start-up (after adoption) and now and then. Returns how many
 * directories were removed. */
int cgroup_sweep(bool (*keep)(const char *name, void *data), void *data);
/* the directory of NAME (v1: in the memory hierarchy) into buf; 0 if it
 * exists, -1 if not (or no cgroups) */
int cgroup_path(const char *name, char *buf, size_t size);
/* the same in the hierarchy of controller ("memory", "cpu", "pids",
 * "cpuacct"; v2 has one directory for all) */
int cgroup_path_in(const char *name, const char *controller, char *buf, size_t size);
/* where the hierarchy of controller ("memory", "cpu", "cpuacct") is
 * mounted (v2: the unified mount, whatever controller); 0 or -1 */
int cgroup_mount_of(const char *controller, char *buf, size_t size);

/* ---- probes ---- */

struct probe_run;
/* result: ok, and a short human detail ("GET /ready: 503", "connect:
 * connection refused", "timeout after 1000ms", "exit status 1"); detail is
 * borrowed for the call only */
typedef void (*probe_cb)(void *data, bool ok, const char *detail);
/* runs one probe attempt against 127.0.0.1:port (http/tcp) or as a command
 * (exec: sh -c TARGET, with PORT set, in its own process group, stdio to
 * /dev/null) within probe->timeout_ms (<= 0: 1000); calls cb exactly once
 * (never from inside probe_start), unless cancelled first. Returns NULL if
 * the probe could not start (cb not called). The run is owned by the probe
 * machinery: it is invalid once cb has been called or probe_cancel
 * returned (it frees itself after its handles close, so keep the loop
 * running). http: GET TARGET (default "/"), ok iff status 200..399. */
struct probe_run *probe_start(uv_loop_t *loop, const struct probe *probe, int port,
			      probe_cb cb, void *data);
/* same, exec probes run in cwd (borrowed; NULL = ours) */
struct probe_run *probe_start_in(uv_loop_t *loop, const struct probe *probe, int port,
				 const char *cwd, probe_cb cb, void *data);
/* how an exec probe runs (everything borrowed for the call) */
struct probe_exec {
	const char *cwd;          /* NULL: ours */
	char **env;               /* the whole environment (workload_env_build); NULL: PORT and PATH only */
	const struct workload_user *user; /* NULL: ourselves */
	const char *cgroup;       /* NULL: none */
	const char *host;         /* http/tcp: the IPv4 address probed; NULL: 127.0.0.1 */
};
/* same, exec probes run as x says: with a user or a cgroup, through
 * `/proc/self/exe __exec` (the binary must dispatch it, as for runtime_spawn) */
struct probe_run *probe_start_exec(uv_loop_t *loop, const struct probe *probe, int port,
				   const struct probe_exec *x, probe_cb cb, void *data);
/* cb will not be called; an exec probe's process group is killed */
void probe_cancel(struct probe_run *r);

/* ---- logs ---- */

/* copy-truncate rotation: when path exceeds max_bytes, path.N-1 -> path.N ...,
 * path -> path.1 (copy), then truncate path (writers use O_APPEND).
 * keep <= 0: truncate only. Returns 1 if rotated, 0 if not needed (or no
 * file), -1 on error (logged). Lines written between the copy and the
 * truncate are lost (as with logrotate's copytruncate). */
int logfile_rotate(const char *path, int64_t max_bytes, int keep);
/* prints the last nlines lines of path to out (reads backwards in blocks:
 * memory is bounded whatever the file size). 0, or -1 with errno set if
 * path cannot be read. */
int logfile_tail(const char *path, int nlines, FILE *out);
/* like tail -F from the current end of each of paths[0..n): prints what is
 * appended, whole lines at a time (with "==> PATH <==" headers when n > 1),
 * starts over at 0 when a file is truncated (copy-truncate rotation) or
 * replaced, waits for missing files; polls every 200 ms until *stop is set
 * (e.g. by a SIGINT handler). Returns 0. */
int logfile_follow(const char **paths, size_t n, FILE *out, volatile sig_atomic_t *stop);

/* ---- ports ---- */
/* a free TCP port on 127.0.0.1 (bind to 0, read it, close) */
int runtime_free_port(void);

#endif
