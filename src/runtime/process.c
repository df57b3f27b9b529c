/*
 * process.c — replica processes: spawn (detached, no pipes), identity by
 * (pid, start time), killing a replica's whole tree, finding tagged
 * processes after a controller crash, free ports.
 *
 * See docs/internals/runtime.md for why each of these is the way it is.
 */
#include "common.h"
#include "runtime/runtime.h"
#include "util/log.h"

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

extern char **environ;

/* /proc/PID/environ is read up to this many bytes: the tags are put first
 * in a replica's environment by runtime_spawn, so they are always inside */
#define ENVIRON_MAX (1024 * 1024)

/* the fields of /proc/PID/stat we use */
struct pstat {
	char state;          /* field 3: R, S, D, Z (zombie), X (dead), ... */
	pid_t session;       /* field 6 */
	uint64_t start_time; /* field 22, clock ticks since boot */
};

/*
 * Reads /proc/PID/stat. The comm field (2) may hold spaces and parentheses,
 * so the fixed fields are parsed from after the LAST ')'.
 * Returns 0 or -1 (no such process or unparsable).
 */
static int proc_stat(pid_t pid, struct pstat *ps)
{
	char path[64], buf[2048];
	const char *p;
	char *end;
	ssize_t n;
	int fd, field, ret = -1;
	unsigned long long v;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		goto out;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		goto out;
	p += 2;
	ps->state = *p;
	/* p is at field 3; walk to each field we want */
	for (field = 3; field < 22; field++) {
		if (field == 6) {
			errno = 0;
			v = strtoull(p, &end, 10);
			if (errno || end == p)
				goto out;
			ps->session = (pid_t)v;
		}
		p = strchr(p, ' ');
		if (!p)
			goto out;
		p++;
	}
	errno = 0;
	v = strtoull(p, &end, 10);
	if (errno || end == p)
		goto out;
	ps->start_time = (uint64_t)v;
	ret = 0;
out:
	return ret;
}

uint64_t proc_start_time(pid_t pid)
{
	struct pstat ps;

	if (proc_stat(pid, &ps) < 0)
		return 0;
	/* a zombie has exited: it is no longer the replica, whatever its pid
	 * (X = dead, being reaped) */
	if (ps.state == 'Z' || ps.state == 'X')
		return 0;
	return ps.start_time;
}

bool proc_session_alive(pid_t sid)
{
	DIR *d;
	struct dirent *de;
	bool found = false;

	if (sid <= 1)
		return false;
	d = opendir("/proc");
	if (!d)
		return kill(-sid, 0) == 0; /* no /proc: the process group is the best we have */
	while (!found && (de = readdir(d))) {
		struct pstat ps;
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		if (proc_stat((pid_t)pid, &ps) == 0 && ps.session == sid && ps.state != 'Z' && ps.state != 'X')
			found = true;
	}
	closedir(d);
	return found;
}

bool proc_alive(pid_t pid, uint64_t start_time)
{
	return pid > 0 && start_time != 0 && proc_start_time(pid) == start_time;
}

void proc_kill_tree(pid_t pid, const char *cgroup, int sig)
{
	/* never signal init, ourselves or our own process group: pid comes
	 * from the state store and must not be able to take the controller
	 * down with it */
	if (pid > 1 && pid != getpid() && pid != getpgrp()) {
		if (kill(-pid, sig) < 0 && errno == ESRCH)
			/* not a group leader (should not happen for replicas we
			 * spawned, but an adopted pid may be anything) */
			(void)kill(pid, sig);
	}
	/* grandchildren that called setsid() left the group, not the cgroup */
	if (cgroup)
		(void)cgroup_kill(cgroup, sig);
}

/* Reads at most max bytes of a file into a new NUL-terminated buffer
 * (owned by caller). Returns -1 if it cannot be opened or read. */
static int read_bounded(const char *path, size_t max, char **out, size_t *len)
{
	int fd, ret = -1;
	size_t cap = 4096, n = 0;
	char *buf = NULL;
	ssize_t r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		goto out;
	buf = xmalloc(cap + 1);
	for (;;) {
		if (n == cap) {
			if (cap >= max)
				break;
			cap = MIN(cap * 2, max);
			buf = xrealloc(buf, cap + 1);
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	buf = NULL;
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return ret;
}

int runtime_scan_tagged(const char *tag, scan_cb cb, void *data)
{
	DIR *d;
	struct dirent *de;
	pid_t self = getpid();
	int found = 0;

	d = opendir("/proc");
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char path[64], *env = NULL, *end;
		const char *replica = NULL;
		struct pstat ps;
		bool tag_match = false;
		size_t len = 0, off;
		long v;
		pid_t pid;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		v = strtol(de->d_name, &end, 10);
		if (*end || v <= 0 || v > INT_MAX)
			continue;
		pid = (pid_t)v;
		/* replicas lead their session (setsid at spawn); their
		 * children inherit the tags but not the leadership, and go
		 * with them (proc_kill_tree): report only the leaders */
		if (pid == self || proc_stat(pid, &ps) < 0 || ps.state == 'Z' ||
		    ps.state == 'X' || ps.session != pid)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
		if (read_bounded(path, ENVIRON_MAX, &env, &len) < 0)
			continue;
		/* NUL-separated KEY=VALUE entries */
		for (off = 0; off < len; off += strlen(env + off) + 1) {
			const char *e = env + off;
			if (!strncmp(e, "GANTRY_TAG=", 11) && !strcmp(e + 11, tag))
				tag_match = true;
			else if (!strncmp(e, "GANTRY_REPLICA=", 15) && e[15])
				replica = e + 15;
		}
		if (tag_match && replica) {
			found++;
			if (cb)
				cb(pid, replica, data);
		}
		free(env);
	}
	closedir(d);
	return found;
}

/* true if entry "KEY=..." has its key set in the NULL-terminated list */
static bool env_has_key(char **list, const char *entry)
{
	const char *eq = strchr(entry, '=');
	size_t klen = eq ? (size_t)(eq - entry) : strlen(entry);

	for (; list && *list; list++)
		if (!strncmp(*list, entry, klen) && (*list)[klen] == '=')
			return true;
	return false;
}

/*
 * A child's environment: the given entries, and with inherit (the proxy)
 * ours after them minus what they override and minus any GANTRY_REPLICA
 * and GANTRY_TAG of our own. Returns a new array of borrowed strings (free
 * only the array).
 */
static char **build_env(char **extra, bool inherit)
{
	size_t n = 0, i = 0;
	char **e, **out;

	for (e = extra; e && *e; e++)
		n++;
	for (e = environ; inherit && e && *e; e++)
		n++;
	out = xcalloc(n + 1, sizeof(*out));
	for (e = extra; e && *e; e++)
		out[i++] = *e;
	for (e = environ; inherit && e && *e; e++) {
		if (env_has_key(extra, *e) || !strncmp(*e, "GANTRY_REPLICA=", 15) ||
		    !strncmp(*e, "GANTRY_TAG=", 11))
			continue;
		out[i++] = *e;
	}
	out[i] = NULL;
	return out;
}

int runtime_spawn(uv_loop_t *loop, uv_process_t *proc, const struct spawn_opts *o,
		  uv_exit_cb exit_cb, pid_t *pid, uint64_t *start_time, struct gerr *err)
{
	uv_process_options_t opts;
	uv_stdio_container_t stdio[3 + SPAWN_MAX_PASS_FDS];
	char *args[12], ids[64];
	char **env = NULL;
	int logfd = -1, nullfd = -1, r, ret = -1;
	struct pstat ps;

	if (!o->cmd || !*o->cmd) {
		ret = gerr_set(err, "spawn: empty command");
		goto out;
	}
	if (!o->log_path) {
		ret = gerr_set(err, "spawn: no log file");
		goto out;
	}
	if (o->npass_fds < 0 || o->npass_fds > SPAWN_MAX_PASS_FDS) {
		ret = gerr_set(err, "spawn: %d descriptors to pass (at most %d)", o->npass_fds, SPAWN_MAX_PASS_FDS);
		goto out;
	}
	/* the controller's: the workload writes through the fd it inherits */
	logfd = open(o->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (logfd < 0) {
		ret = gerr_set(err, "spawn: %s: %s", o->log_path, strerror(errno));
		goto out;
	}
	/* the usual reason for uv_spawn to fail, checked first: a failed
	 * uv_spawn leaves a handle that must be closed (see below) */
	if (o->cwd && access(o->cwd, X_OK) < 0) {
		ret = gerr_set(err, "spawn: cwd %s: %s", o->cwd, strerror(errno));
		goto out;
	}
	nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (nullfd < 0) {
		ret = gerr_set(err, "spawn: /dev/null: %s", strerror(errno));
		goto out;
	}
	env = build_env(o->env, o->inherit_env);

	/* the replica's pid is that of the __exec helper, which joins the
	 * cgroup (as us: it needs our rights), drops to the workload's user
	 * and then execs sh in place */
	{
		int k = 0;
		args[k++] = (char *)"gantry";
		args[k++] = (char *)"__exec";
		args[k++] = (char *)(o->cgroup ? o->cgroup : "-");
		if (o->user && o->user->drop) {
			snprintf(ids, sizeof(ids), "%u:%u", (unsigned)o->user->uid, (unsigned)o->user->gid);
			args[k++] = (char *)"-u";
			args[k++] = ids;
		}
		args[k++] = (char *)"--";
		args[k++] = (char *)"sh";
		args[k++] = (char *)"-c";
		args[k++] = (char *)o->cmd;
		args[k] = NULL;
	}

	memset(stdio, 0, sizeof(stdio));
	stdio[0].flags = UV_INHERIT_FD;
	stdio[0].data.fd = nullfd;
	stdio[1].flags = UV_INHERIT_FD;
	stdio[1].data.fd = logfd;
	stdio[2].flags = UV_INHERIT_FD;
	stdio[2].data.fd = logfd;
	/* libuv dup2()s each to its index in the child, without CLOEXEC */
	for (int i = 0; i < o->npass_fds; i++) {
		stdio[3 + i].flags = UV_INHERIT_FD;
		stdio[3 + i].data.fd = o->pass_fds[i];
	}

	memset(&opts, 0, sizeof(opts));
	opts.exit_cb = exit_cb;
	opts.file = "/proc/self/exe";
	opts.args = args;
	opts.env = env;
	opts.cwd = o->cwd;
	/* own session and process group, no pipes: the replica must survive
	 * our death (kill -9) and be signalled as a group */
	opts.flags = UV_PROCESS_DETACHED;
	opts.stdio_count = 3 + o->npass_fds;
	opts.stdio = stdio;

	r = uv_spawn(loop, proc, &opts);
	if (r < 0) {
		/* libuv initialised the handle anyway: close it here, so that
		 * a failed spawn never leaves a live handle behind */
		uv_close((uv_handle_t *)proc, NULL);
		if (o->cwd)
			ret = gerr_set(err, "spawn: %s (cwd %s)", uv_strerror(r), o->cwd);
		else
			ret = gerr_set(err, "spawn: %s", uv_strerror(r));
		goto out;
	}
	/* the child may already have exited (a zombie until the loop reaps
	 * it): its start time is still what identifies it */
	if (proc_stat(proc->pid, &ps) < 0)
		ps.start_time = 0;
	*pid = proc->pid;
	*start_time = ps.start_time;
	log_debug("runtime", "spawned pid=%d cgroup=%s cwd=%s log=%s", (int)proc->pid,
		 o->cgroup ? o->cgroup : "-", o->cwd ? o->cwd : ".", o->log_path);
	ret = 0;
out:
	if (logfd >= 0)
		close(logfd);
	if (nullfd >= 0)
		close(nullfd);
	free(env);
	return ret;
}

int runtime_free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd, port = -1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = 0;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto out;
	if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		goto out;
	port = ntohs(sa.sin_port);
out:
	close(fd);
	return port;
}
