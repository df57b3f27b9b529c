/*
 * exec.c — `gantry __exec CGROUP [-u UID:GID] -- PROG ARGS...`, the first
 * thing a replica (and an exec probe) runs (see runtime_spawn). It joins
 * the replica's cgroup from inside, so the replica and everything it forks
 * are limited from their first instruction (no window between fork and a
 * move done by the controller), drops to the workload's user (joining needs
 * the controller's rights, so it comes first), then execs in place: its
 * pid stays the replica's pid.
 */
#include "common.h"
#include "runtime/runtime.h"
#include "util/log.h"

#include <sys/stat.h>

static int parse_ids(const char *s, struct workload_user *u)
{
	char *end;
	unsigned long uid, gid;

	errno = 0;
	uid = strtoul(s, &end, 10);
	if (errno || end == s || *end != ':')
		return -1;
	s = end + 1;
	gid = strtoul(s, &end, 10);
	if (errno || end == s || *end)
		return -1;
	u->drop = true;
	u->uid = (uid_t)uid;
	u->gid = (gid_t)gid;
	return 0;
}

int runtime_exec_main(int argc, char **argv)
{
	struct gerr err = { { 0 } };
	struct workload_user u = { 0 };
	const char *cgroup;
	int i = 2;

	/* argv: __exec CGROUP [-u UID:GID] -- PROG [ARGS...] */
	if (argc >= 5 && !strcmp(argv[2], "-u")) {
		if (parse_ids(argv[3], &u) < 0) {
			fprintf(stderr, "gantry: __exec: bad -u '%s'\n", argv[3]);
			return 127;
		}
		i = 4;
	}
	if (argc < i + 2 || strcmp(argv[i], "--")) {
		fprintf(stderr, "gantry: usage: gantry __exec CGROUP [-u UID:GID] -- PROG [ARGS...]\n");
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
	/* the controller runs with umask 077 (its state is its own); a
	 * workload gets the usual one */
	umask(022);
	if (workload_drop(&u) < 0) {
		fprintf(stderr, "gantry: cannot switch to uid %u gid %u: %s\n", (unsigned)u.uid, (unsigned)u.gid,
			strerror(errno));
		return 127;
	}
	execvp(argv[i + 1], argv + i + 1);
	fprintf(stderr, "gantry: exec %s: %s\n", argv[i + 1], strerror(errno));
	return 127;
}
