/*
 * workload.c — what a workload (replica, exec probe, run check, metric
 * command) runs as and with: an unprivileged user, a clean environment, a
 * scratch directory, and the tag that lets a restarted controller find its
 * replicas without telling them where the controller's HOME is.
 *
 * See docs/internals/runtime.md ("Workloads") and docs/security.md.
 */
#include "common.h"
#include "runtime/runtime.h"
#include "util/log.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

/* set once by workload_setup (serve, before the loop and before any thread) */
static char *scratch_root;
static struct workload_user default_user;
static bool have_default;

static bool parse_uid(const char *s, uid_t *out)
{
	char *end;
	unsigned long v;

	if (!*s || strspn(s, "0123456789") != strlen(s))
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v >= (unsigned long)(uid_t)-1)
		return false;
	*out = (uid_t)v;
	return true;
}

/* getpwnam_r / getpwuid_r (thread-safe: checks resolve from a worker thread) */
static int lookup(const char *name, uid_t uid, bool by_name, struct passwd *pw, char *buf, size_t len)
{
	struct passwd *res = NULL;
	int e = by_name ? getpwnam_r(name, pw, buf, len, &res) : getpwuid_r(uid, pw, buf, len, &res);
	return !e && res ? 0 : -1;
}

int workload_user_resolve(const char *name, struct workload_user *out, struct gerr *err)
{
	struct passwd pw;
	char buf[4096];
	uid_t uid;

	memset(out, 0, sizeof(*out));
	if (geteuid() != 0 || (!scratch_root && (!name || !*name))) {
		/* not root, or no serve set us up (unit tests, tools): ourselves */
		out->uid = geteuid();
		out->gid = getegid();
		return 0;
	}
	if (!name || !*name) {
		if (!have_default)
			return gerr_set(err, "no workload user: gantry serve could not create '%s'",
					WORKLOAD_DEFAULT_USER);
		*out = default_user;
		return 0;
	}
	if (parse_uid(name, &uid)) {
		out->uid = uid;
		/* a bare uid: its passwd group if it has an entry, else gid = uid */
		out->gid = lookup(NULL, uid, false, &pw, buf, sizeof(buf)) == 0 ? pw.pw_gid : (gid_t)uid;
	} else {
		if (lookup(name, 0, true, &pw, buf, sizeof(buf)) < 0)
			return gerr_set(err, "user '%.64s' does not exist", name);
		out->uid = pw.pw_uid;
		out->gid = pw.pw_gid;
	}
	/* never the controller's own user */
	if (out->uid == 0 || out->uid == geteuid())
		return gerr_set(err, "user '%.64s' is the controller's (uid %u): workloads run unprivileged", name,
				(unsigned)out->uid);
	out->drop = true;
	return 0;
}

/* useradd --system --no-create-home --shell /usr/sbin/nologin NAME */
static int create_user(const char *name, struct gerr *err)
{
	int status = 0;
	pid_t pid = fork();

	if (pid < 0)
		return gerr_set(err, "fork: %s", strerror(errno));
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);
		if (devnull >= 0) {
			dup2(devnull, 0);
			dup2(devnull, 1);
		}
		execl("/usr/sbin/useradd", "useradd", "--system", "--no-create-home", "--shell",
		      "/usr/sbin/nologin", "--user-group", "--home-dir", "/nonexistent", name, (char *)NULL);
		execlp("useradd", "useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
		       "--user-group", "--home-dir", "/nonexistent", name, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		return gerr_set(err, "useradd %s failed (status %d)", name, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return 0;
}

int workload_setup(const char *home, struct gerr *err)
{
	struct passwd pw;
	char buf[4096];

	free(scratch_root);
	scratch_root = xasprintf("%s/scratch", home);
	if (mkdir(scratch_root, 0711) < 0 && errno != EEXIST)
		return gerr_set(err, "%s: %s", scratch_root, strerror(errno));
	/* root-owned, traversable but not listable: a workload reaches its own
	 * scratch by name and cannot see the others' ids */
	if (chmod(scratch_root, 0711) < 0)
		return gerr_set(err, "%s: %s", scratch_root, strerror(errno));
	have_default = false;
	if (geteuid() != 0) {
		log_warn("workload",
			 "gantry serve is not root (uid %u): replicas, probes and checks run as uid %u, "
			 "with the controller's rights (no user switch); run serve as root to isolate them",
			 (unsigned)geteuid(), (unsigned)geteuid());
		return 0;
	}
	if (lookup(WORKLOAD_DEFAULT_USER, 0, true, &pw, buf, sizeof(buf)) < 0) {
		struct gerr e2 = { { 0 } };
		if (create_user(WORKLOAD_DEFAULT_USER, &e2) < 0 ||
		    lookup(WORKLOAD_DEFAULT_USER, 0, true, &pw, buf, sizeof(buf)) < 0) {
			log_warn("workload", "cannot create user %s (%s): services without user: cannot start",
				 WORKLOAD_DEFAULT_USER, e2.msg[0] ? e2.msg : "not found after useradd");
			return 0;
		}
		log_info("workload", "created user %s uid=%u gid=%u", WORKLOAD_DEFAULT_USER, (unsigned)pw.pw_uid,
			 (unsigned)pw.pw_gid);
	}
	if (pw.pw_uid == 0) {
		log_warn("workload", "user %s has uid 0: refusing it as the workload user", WORKLOAD_DEFAULT_USER);
		return 0;
	}
	default_user.drop = true;
	default_user.uid = pw.pw_uid;
	default_user.gid = pw.pw_gid;
	have_default = true;
	return 0;
}

int workload_drop(const struct workload_user *u)
{
	/* raw system calls: async-signal-safe, and in a child forked from a
	 * threaded process they change the only thread there is (glibc's
	 * wrappers would try to reach threads that no longer exist) */
	if (!u || !u->drop)
		return 0;
	if (syscall(SYS_setgroups, 0, NULL) < 0)
		return -1;
	if (syscall(SYS_setgid, u->gid) < 0)
		return -1;
	if (syscall(SYS_setuid, u->uid) < 0)
		return -1;
	/* no way back */
	if (u->uid != 0 && syscall(SYS_setuid, 0) == 0)
		return -1;
	return 0;
}

/* ---- environment ---- */

static bool is_reserved(const char *key, size_t klen)
{
	return (klen == 4 && !strncmp(key, "PORT", 4)) || (klen >= 7 && !strncmp(key, "GANTRY_", 7));
}

static bool list_has(char **list, size_t n, const char *key, size_t klen)
{
	for (size_t i = 0; i < n; i++)
		if (!strncmp(list[i], key, klen) && list[i][klen] == '=')
			return true;
	return false;
}

char **workload_env_build(const struct workload_env *w)
{
	size_t cap = w->ndecl + 20, n = 0;
	char **out = xcalloc(cap + 1, sizeof(*out));
	char **fixed;
	size_t nfixed;

	/* the tags first: runtime_scan_tagged finds them at the start of
	 * /proc/PID/environ */
	if (w->tag)
		out[n++] = xasprintf("GANTRY_TAG=%s", w->tag);
	if (w->replica)
		out[n++] = xasprintf("GANTRY_REPLICA=%s", w->replica);
	if (w->service)
		out[n++] = xasprintf("GANTRY_SERVICE=%s", w->service);
	if (w->environment)
		out[n++] = xasprintf("GANTRY_ENVIRONMENT=%s", w->environment);
	if (w->revision > 0)
		out[n++] = xasprintf("GANTRY_REVISION=%d", w->revision);
	if (w->version)
		out[n++] = xasprintf("GANTRY_VERSION=%s", w->version);
	if (w->scratch)
		out[n++] = xasprintf("GANTRY_SCRATCH=%s", w->scratch);
	if (w->secrets_dir)
		out[n++] = xasprintf("GANTRY_SECRETS_DIR=%s", w->secrets_dir);
	if (w->flags_url && w->flags_token) {
		out[n++] = xasprintf("GANTRY_FLAGS_URL=%s", w->flags_url);
		out[n++] = xasprintf("GANTRY_FLAGS_TOKEN=%s", w->flags_token);
	}
	if (w->port > 0) {
		out[n++] = xasprintf("PORT=%d", w->port);
		if (w->url)
			out[n++] = xasprintf("GANTRY_URL=http://127.0.0.1:%d", w->port);
	}
	/* the declared environment: it may set PATH, HOME, TMPDIR, LANG (the
	 * defaults below then step aside), never PORT or GANTRY_* */
	fixed = out + n;
	nfixed = 0;
	for (size_t i = 0; i < w->ndecl; i++) {
		const char *k = w->decl[i].key;
		if (!k || !*k || strchr(k, '=') || is_reserved(k, strlen(k)) || list_has(fixed, nfixed, k, strlen(k)))
			continue;
		fixed[nfixed++] = xasprintf("%s=%s", k, w->decl[i].value ? w->decl[i].value : "");
	}
	n += nfixed;
	if (!list_has(fixed, nfixed, "PATH", 4))
		out[n++] = xstrdup("PATH=" WORKLOAD_PATH);
	if (!list_has(fixed, nfixed, "LANG", 4))
		out[n++] = xstrdup("LANG=C.UTF-8");
	if (w->scratch && !list_has(fixed, nfixed, "HOME", 4))
		out[n++] = xasprintf("HOME=%s", w->scratch);
	if (w->scratch && !list_has(fixed, nfixed, "TMPDIR", 6))
		out[n++] = xasprintf("TMPDIR=%s", w->scratch);
	BUG_ON(n > cap);
	out[n] = NULL;
	return out;
}

void workload_env_free(char **env)
{
	for (size_t i = 0; env && env[i]; i++) {
		explicit_bzero(env[i], strlen(env[i]));
		free(env[i]);
	}
	free(env);
}

/* ---- scratch directories ---- */

static bool valid_name(const char *name)
{
	return name && *name && name[0] != '.' && strlen(name) < 200 &&
	       strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == strlen(name);
}

char *workload_scratch_make(const char *name, const struct workload_user *u, struct gerr *err)
{
	char *path;
	int fd;
	struct stat st;

	if (!scratch_root) {
		gerr_set(err, "scratch: not set up");
		return NULL;
	}
	if (!valid_name(name)) {
		gerr_set(err, "scratch: bad name '%.64s'", name ? name : "");
		return NULL;
	}
	path = xasprintf("%s/%s", scratch_root, name);
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		goto fail;
	/* it may exist from a previous run of the replica: never follow a link
	 * its owner put in its place */
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		goto fail;
	if (fstat(fd, &st) < 0 || (u && u->drop && fchown(fd, u->uid, u->gid) < 0) || fchmod(fd, 0700) < 0) {
		close(fd);
		goto fail;
	}
	close(fd);
	return path;
fail:
	gerr_set(err, "scratch %s: %s", path, strerror(errno));
	free(path);
	return NULL;
}

/* removes everything below the directory fd (closed), without following
 * symbolic links: the owner of a scratch directory may have planted some */
static void rm_below(int dfd, int depth)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;

	if (!d) {
		close(dfd);
		return;
	}
	while ((de = readdir(d))) {
		int sub;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			continue;
		if (depth < 64 &&
		    (sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0) {
			fchmod(sub, 0700);
			rm_below(sub, depth + 1);
		}
		unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
	}
	closedir(d);
}

void workload_scratch_remove(const char *name)
{
	int root, fd;

	if (!scratch_root || !valid_name(name))
		return;
	root = open(scratch_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return;
	fd = openat(root, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0)
		rm_below(fd, 0);
	if (unlinkat(root, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		unlinkat(root, name, 0);
	close(root);
}

int workload_scratch_sweep(bool (*keep)(const char *name, void *data), void *data)
{
	DIR *d;
	struct dirent *de;
	int n = 0;
	char **names = NULL;
	size_t nn = 0;

	if (!scratch_root || !(d = opendir(scratch_root)))
		return 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || (keep && keep(de->d_name, data)))
			continue;
		names = xrealloc(names, (nn + 1) * sizeof(*names));
		names[nn++] = xstrdup(de->d_name);
	}
	closedir(d);
	for (size_t i = 0; i < nn; i++) {
		workload_scratch_remove(names[i]);
		free(names[i]);
		n++;
	}
	free(names);
	return n;
}

/* ---- the tag ---- */

int workload_instance_id(const char *home, char *out, size_t size, struct gerr *err)
{
	char *path = xasprintf("%s/instance-id", home);
	unsigned char rnd[16];
	char hex[33];
	ssize_t n;
	int fd, ret = -1;

	BUG_ON(size < sizeof(hex));
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, hex, 32);
		close(fd);
		if (n == 32) {
			hex[32] = 0;
			if (strspn(hex, "0123456789abcdef") == 32) {
				strlcpy_g(out, hex, size);
				ret = 0;
				goto out;
			}
		}
	}
	/* a random id, not derived from the path: a workload that reads its
	 * tag learns nothing about where HOME is */
	fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, rnd, sizeof(rnd)) != (ssize_t)sizeof(rnd)) {
		if (fd >= 0)
			close(fd);
		gerr_set(err, "/dev/urandom: %s", strerror(errno));
		goto out;
	}
	close(fd);
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, hex, 32) != 32 || write(fd, "\n", 1) != 1) {
		gerr_set(err, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	close(fd);
	strlcpy_g(out, hex, size);
	ret = 0;
out:
	free(path);
	return ret;
}

/* ---- one-off commands (run checks, metric commands) ---- */

int workload_cmd_prepare(struct workload_cmd *w, const struct workload_env *e, struct gerr *err)
{
	static unsigned long counter;
	struct workload_env env = *e;
	char name[64];

	memset(w, 0, sizeof(*w));
	if (workload_user_resolve(NULL, &w->user, err) < 0)
		return -1;
	if (scratch_root) {
		snprintf(name, sizeof(name), "cmd-%d-%lu", (int)getpid(), __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
		if (!(w->scratch = workload_scratch_make(name, &w->user, err)))
			return -1;
		strlcpy_g(w->scratch_name, name, sizeof(w->scratch_name));
	}
	env.scratch = w->scratch;
	w->env = workload_env_build(&env);
	return 0;
}

void workload_cmd_release(struct workload_cmd *w)
{
	if (w->scratch_name[0])
		workload_scratch_remove(w->scratch_name);
	free(w->scratch);
	workload_env_free(w->env);
	memset(w, 0, sizeof(*w));
}
