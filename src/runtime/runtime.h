/*
 * runtime.h — process supervisor primitives (no policy: the controller in
 * src/daemon/ decides when to start, probe, drain and stop).
 *
 * Replicas are started with uv_spawn(UV_PROCESS_DETACHED) so each runs in its
 * own session (setsid) and process group; the controller gets their exit
 * status while it lives. Replicas outlive the controller: a restarted
 * controller re-adopts them by (pid, start time) and polls them.
 * Every replica carries GANTRY_HOME and GANTRY_REPLICA in its environment, so
 * a process started just before a crash (not yet recorded) can still be found
 * by runtime_scan_tagged() and stopped: nothing is ever orphaned.
 */
#ifndef GANTRY_RUNTIME_H
#define GANTRY_RUNTIME_H
#include "common.h"
#include "core/spec.h"
#include <uv.h>

/* ---- processes ---- */

/* start time of pid in clock ticks since boot (/proc/PID/stat field 22);
 * 0 if the process does not exist or is a zombie */
uint64_t proc_start_time(pid_t pid);
/* true if pid is alive and still the same process (start time matches) */
bool proc_alive(pid_t pid, uint64_t start_time);
/* signal the process group of pid (replicas are group leaders) and, when
 * cgroup is not NULL, every process in that cgroup */
void proc_kill_tree(pid_t pid, const char *cgroup, int sig);

/* calls cb for every live process whose environment holds GANTRY_HOME=home
 * and a GANTRY_REPLICA=ID; returns the number found */
typedef void (*scan_cb)(pid_t pid, const char *replica_id, void *data);
int runtime_scan_tagged(const char *home, scan_cb cb, void *data);

struct spawn_opts {
	const char *cmd;          /* shell command line, run with sh -c */
	const char *cwd;          /* working directory (the revision snapshot) */
	char **env;               /* extra KEY=VALUE strings (PORT, config env, tags), NULL-terminated */
	const char *log_path;     /* stdout and stderr are appended here */
	const char *cgroup;       /* cgroup name to place the replica in, or NULL */
};

/*
 * Starts a replica. proc is caller's storage (uv handle, freed only after its
 * close callback); exit_cb is called when it exits while we live.
 * Returns 0 and fills *pid and *start_time, or -1 with err set.
 */
int runtime_spawn(uv_loop_t *loop, uv_process_t *proc, const struct spawn_opts *o,
		  uv_exit_cb exit_cb, pid_t *pid, uint64_t *start_time, struct gerr *err);

/* The hidden subcommand `gantry __exec CGROUP -- sh -c CMD` that
 * runtime_spawn runs: joins the cgroup, then execs. */
int runtime_exec_main(int argc, char **argv);

/* ---- cgroups ---- */

enum cgroup_mode { CGROUP_NONE, CGROUP_V1, CGROUP_V2 };
/* detects once; logs "cgroups unavailable: running without limits" once */
enum cgroup_mode cgroup_mode(void);
/* creates (or reuses) cgroup NAME with the limits; 0 or -1 with err */
int cgroup_create(const char *name, const struct resources *res, struct gerr *err);
/* number of OOM kills recorded in NAME (memory.events oom_kill / v1 oom_control) */
long cgroup_oom_kills(const char *name);
/* kill every process in NAME with sig; returns number signalled */
int cgroup_kill(const char *name, int sig);
/* number of processes still in NAME */
int cgroup_nprocs(const char *name);
/* removes NAME (must be empty) */
void cgroup_destroy(const char *name);

/* ---- probes ---- */

struct probe_run;
/* result: ok, and a short human detail ("GET /ready -> 503", "connect refused", "exit 1") */
typedef void (*probe_cb)(void *data, bool ok, const char *detail);
/* runs one probe attempt against 127.0.0.1:port (http/tcp) or as a command
 * (exec, with PORT set) within probe->timeout_ms; calls cb exactly once,
 * unless cancelled first. Returns NULL if the probe could not start (cb not called). */
struct probe_run *probe_start(uv_loop_t *loop, const struct probe *probe, int port,
			      probe_cb cb, void *data);
void probe_cancel(struct probe_run *r); /* cb will not be called */

/* ---- logs ---- */

/* copy-truncate rotation: when path exceeds max_bytes, path.N-1 -> path.N ...,
 * path -> path.1 (copy), then truncate path (writers use O_APPEND). */
int logfile_rotate(const char *path, int64_t max_bytes, int keep);

/* ---- ports ---- */
/* a free TCP port on 127.0.0.1 (bind to 0, read it, close) */
int runtime_free_port(void);

#endif
