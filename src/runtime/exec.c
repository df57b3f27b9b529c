/*
 * exec.c — `gantry __exec CGROUP -- PROG ARGS...`, the first thing a replica
 * runs (see runtime_spawn). It joins the replica's cgroup from inside, so
 * the replica and everything it forks are limited from their first
 * instruction (no window between fork and a move done by the controller),
 * then execs in place: its pid stays the replica's pid.
 */
#include "common.h"
#include "runtime/runtime.h"
#include "util/log.h"

int runtime_exec_main(int argc, char **argv)
{
	struct gerr err = { { 0 } };
	const char *cgroup;

	/* argv: __exec CGROUP -- PROG [ARGS...] */
	if (argc < 4 || strcmp(argv[2], "--")) {
		fprintf(stderr, "gantry: usage: gantry __exec CGROUP -- PROG [ARGS...]\n");
		return 127;
	}
	cgroup = argv[1];
	if (strcmp(cgroup, "-")) {
		/* stderr is the replica log: one line on failure, nothing else */
		log_max_level = LOG_ERROR;
		if (cgroup_join(cgroup, getpid(), &err) < 0)
			fprintf(stderr, "gantry: replica running without resource limits: %s\n",
				err.msg);
	}
	execvp(argv[3], argv + 3);
	fprintf(stderr, "gantry: exec %s: %s\n", argv[3], strerror(errno));
	return 127;
}
