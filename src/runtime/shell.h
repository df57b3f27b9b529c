/*
 * shell.h — a one-off shell command of the controller's (a run check, a
 * metric command), run one way: `sh -c CMD` as a workload (runtime.h,
 * workload_cmd: the default workload user, a fresh scratch HOME, only the
 * environment given, umask 022), stdin /dev/null, in its own process group,
 * its output captured within a bound, and a timeout that SIGKILLs the whole
 * group (what the command left running in its group is killed too when it
 * ends).
 *
 * shell_run BLOCKS until the command ends or its timeout: call it from a
 * worker thread, never from the event loop. It forks from whatever thread
 * calls it, so the child only makes async-signal-safe calls (setpgid, dup2,
 * chdir, setuid, execve) with an environment built before the fork.
 */
#ifndef GANTRY_RUNTIME_SHELL_H
#define GANTRY_RUNTIME_SHELL_H
#include "common.h"
#include "runtime/runtime.h" /* struct workload_env */

struct shell_opts {
	const char *cmd;                /* the command line for sh -c (borrowed) */
	const char *cwd;                /* where it starts (borrowed); NULL: ours; cannot enter it: exit 126 */
	const struct workload_env *env; /* its environment (borrowed) */
	int64_t timeout_ms;             /* > 0 */
	size_t max_output;              /* > 0: the capture's bound */
	bool with_stderr;               /* stderr into the capture too; else to /dev/null */
	bool keep_tail;                 /* more than max_output: keep the last max_output bytes (cut);
	                                 * else the group is killed and the end is SHELL_TOO_MUCH */
};

enum shell_end {
	SHELL_EXITED,    /* code: its exit status */
	SHELL_SIGNALED,  /* code: the signal */
	SHELL_TIMED_OUT, /* killed at the timeout */
	SHELL_TOO_MUCH,  /* killed: more than max_output bytes of output (not keep_tail) */
};

struct shell_result {
	enum shell_end end;
	int code;
	char *out;       /* the capture, NUL-terminated (owned: shell_result_release) */
	size_t len;
	bool cut;        /* keep_tail: its beginning was dropped */
};

/*
 * Runs o->cmd. 0 when it ran, however it ended (*r says how), or -1 with
 * err when it could not be started (the workload's user or scratch
 * directory, pipe, fork) or its exit was lost; err does not name the
 * command, the caller does.
 */
int shell_run(const struct shell_opts *o, struct shell_result *r, struct gerr *err);
void shell_result_release(struct shell_result *r);

#endif
