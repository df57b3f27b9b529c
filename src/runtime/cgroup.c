/*
 * cgroup.c — resource limits for replicas, cgroup v2 or v1, found once from
 * /proc/self/mountinfo. Without usable cgroups (none mounted, read-only,
 * not root, controllers not delegable) everything is a harmless no-op and
 * replicas run without limits: that is logged once, not an error.
 */
#include "common.h"
#include "runtime/runtime.h"
#include "util/log.h"
#include "util/clock.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#define CG_PARENT "gantry"
#define CG_NAME_MAX 128
#define CPU_PERIOD_US 100000
/* cgroup_sweep leaves cgroups younger than this alone */
#define SWEEP_MIN_AGE_S 60

/* v1 hierarchies we use; memory is required, cpu, pids and cpuacct
 * optional (cpuacct only measures: runtime/usage.c reads CPU time there;
 * it is often mounted together with cpu, then both name one directory) */
enum { H_MEM, H_CPU, H_PIDS, H_ACCT, H_N };
static const char *const h_names[H_N] = { "memory", "cpu", "pids", "cpuacct" };

static struct {
	enum cgroup_mode mode;
	char v2[PATH_MAX];      /* v2 mount point */
	char v1[H_N][PATH_MAX]; /* v1 mount points ("" = not mounted) */
	char reason[256];       /* why NONE */
} cg;
static pthread_once_t cg_once = PTHREAD_ONCE_INIT;

/* snprintf for paths and messages: the buffers are sized so that nothing
 * real is cut (mount points and names are bounded), and a cut message is
 * still better than none; vsnprintf keeps gcc's truncation analysis, which
 * cannot know that, quiet */
static void fmt(char *buf, size_t size, const char *f, ...) PRINTF_LIKE(3, 4);
static void fmt(char *buf, size_t size, const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	vsnprintf(buf, size, f, ap);
	va_end(ap);
}

/* mountinfo escapes space, tab, newline and backslash as \ooo */
static void unescape_mount(char *s)
{
	char *w = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 4;
		} else {
			*w++ = *s++;
		}
	}
	*w = '\0';
}

/* true if comma-separated list has word */
static bool has_opt(const char *list, const char *word)
{
	size_t wl = strlen(word);
	const char *p = list;

	while (p && *p) {
		const char *c = strchr(p, ',');
		size_t l = c ? (size_t)(c - p) : strlen(p);
		if (l == wl && !strncmp(p, word, wl))
			return true;
		p = c ? c + 1 : NULL;
	}
	return false;
}

/* true if whitespace-separated list has word */
static bool has_word(const char *list, const char *word)
{
	size_t wl = strlen(word);
	const char *p = list;

	while (*p) {
		size_t l;
		while (*p == ' ' || *p == '\n' || *p == '\t')
			p++;
		l = strcspn(p, " \n\t");
		if (l == wl && !strncmp(p, word, wl))
			return true;
		p += l;
	}
	return false;
}

/* Reads a small control file into buf (NUL-terminated). 0 or -1. */
static int read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

/* Writes val to a control file in one write(2), as the kernel expects.
 * 0, or -1 with errno set. */
static int write_ctl(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = -1, e;
	size_t len = strlen(val);

	if (fd < 0)
		return -1;
	if (write(fd, val, len) == (ssize_t)len)
		ret = 0;
	e = errno;
	close(fd);
	errno = e;
	return ret;
}

static int mkdir_ok(const char *path)
{
	return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

static void parse_mountinfo(void)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS */
		char *sep = strstr(line, " - "), *save = NULL, *mnt, *fstype, *superopts;
		int i;

		if (!sep)
			continue;
		*sep = '\0';
		mnt = strtok_r(line, " ", &save);
		for (i = 0; i < 4 && mnt; i++)
			mnt = strtok_r(NULL, " ", &save);
		save = NULL;
		fstype = strtok_r(sep + 3, " \n", &save);
		(void)strtok_r(NULL, " \n", &save); /* source */
		superopts = strtok_r(NULL, " \n", &save);
		if (!mnt || !fstype)
			continue;
		unescape_mount(mnt);
		if (!strcmp(fstype, "cgroup2")) {
			/* prefer the canonical place when there are several */
			if (!cg.v2[0] || !strcmp(mnt, "/sys/fs/cgroup"))
				strlcpy_g(cg.v2, mnt, sizeof(cg.v2));
		} else if (!strcmp(fstype, "cgroup") && superopts) {
			for (i = 0; i < H_N; i++)
				if (has_opt(superopts, h_names[i]) && !cg.v1[i][0])
					strlcpy_g(cg.v1[i], mnt, sizeof(cg.v1[i]));
		}
	}
	fclose(f);
}

/* Enables the controllers we use in dir/cgroup.subtree_control (those that
 * dir offers). Memory is required. 0 or -1 with cg.reason set. */
static int v2_enable(const char *dir)
{
	static const char *const ctl[] = { "memory", "cpu", "pids" };
	char path[PATH_MAX + 64], have[512], on[512];
	size_t i;

	fmt(path, sizeof(path), "%s/cgroup.controllers", dir);
	if (read_small(path, have, sizeof(have)) < 0) {
		fmt(cg.reason, sizeof(cg.reason), "%s: %s", path, strerror(errno));
		return -1;
	}
	fmt(path, sizeof(path), "%s/cgroup.subtree_control", dir);
	if (read_small(path, on, sizeof(on)) < 0)
		on[0] = '\0';
	for (i = 0; i < ARRAY_SIZE(ctl); i++) {
		char val[32];
		if (!has_word(have, ctl[i]) || has_word(on, ctl[i]))
			continue;
		fmt(val, sizeof(val), "+%s", ctl[i]);
		if (write_ctl(path, val) < 0 && i == 0) {
			/* EBUSY: dir holds processes (the "no internal
			 * processes" rule), e.g. a container's namespace root */
			fmt(cg.reason, sizeof(cg.reason), "cannot enable memory in %s: %s", path,
				 strerror(errno));
			return -1;
		}
	}
	if (read_small(path, on, sizeof(on)) < 0 || !has_word(on, "memory")) {
		fmt(cg.reason, sizeof(cg.reason), "memory controller not enabled in %s", path);
		return -1;
	}
	return 0;
}

static void detect(void)
{
	char path[PATH_MAX + 64], buf[512];
	int i;

	cg.mode = CGROUP_NONE;
	parse_mountinfo();

	/* v2 only counts when it carries the memory controller: on a v1
	 * "hybrid" system /sys/fs/cgroup/unified is v2 without controllers */
	fmt(path, sizeof(path), "%s/cgroup.controllers", cg.v2);
	if (cg.v2[0] && read_small(path, buf, sizeof(buf)) == 0 && has_word(buf, "memory")) {
		fmt(path, sizeof(path), "%s/%s", cg.v2, CG_PARENT);
		if (v2_enable(cg.v2) < 0)
			goto out;
		if (mkdir_ok(path) < 0) {
			fmt(cg.reason, sizeof(cg.reason), "mkdir %s: %s", path, strerror(errno));
			goto out;
		}
		if (v2_enable(path) < 0)
			goto out;
		cg.mode = CGROUP_V2;
		goto out;
	}
	if (!cg.v1[H_MEM][0]) {
		fmt(cg.reason, sizeof(cg.reason),
			 "no cgroup2 with memory controller and no v1 memory hierarchy mounted");
		goto out;
	}
	for (i = 0; i < H_N; i++) {
		if (!cg.v1[i][0])
			continue;
		fmt(path, sizeof(path), "%s/%s", cg.v1[i], CG_PARENT);
		if (mkdir_ok(path) == 0)
			continue;
		if (i == H_MEM) {
			fmt(cg.reason, sizeof(cg.reason), "mkdir %s: %s", path, strerror(errno));
			goto out;
		}
		log_warn("runtime", "cgroup v1 %s hierarchy unusable (mkdir %s: %s): no %s limits",
			 h_names[i], path, strerror(errno), h_names[i]);
		cg.v1[i][0] = '\0';
	}
	cg.mode = CGROUP_V1;
out:
	if (cg.mode == CGROUP_NONE)
		log_warn("runtime", "cgroups unavailable (%s): running replicas without resource limits",
			 cg.reason);
	else if (cg.mode == CGROUP_V2)
		log_info("runtime", "cgroups=v2 root=%s/%s", cg.v2, CG_PARENT);
	else
		log_info("runtime", "cgroups=v1 memory=%s cpu=%s pids=%s cpuacct=%s", cg.v1[H_MEM],
			 cg.v1[H_CPU][0] ? cg.v1[H_CPU] : "-", cg.v1[H_PIDS][0] ? cg.v1[H_PIDS] : "-",
			 cg.v1[H_ACCT][0] ? cg.v1[H_ACCT] : "-");
}

enum cgroup_mode cgroup_mode(void)
{
	pthread_once(&cg_once, detect);
	return cg.mode;
}

static bool valid_name(const char *name)
{
	size_t i, n = name ? strlen(name) : 0;

	if (n == 0 || n > CG_NAME_MAX || name[0] == '.')
		return false;
	for (i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.'))
			return false;
	}
	return true;
}

/* Directory of NAME in hierarchy h (v2: h is ignored), into buf; "" when
 * there is none. */
static void cg_dir(const char *name, int h, char *buf, size_t size)
{
	const char *mnt = cg.mode == CGROUP_V2 ? cg.v2 : cg.mode == CGROUP_V1 ? cg.v1[h] : "";

	if (!mnt[0] || !valid_name(name))
		buf[0] = '\0';
	else
		fmt(buf, size, "%s/%s/%s", mnt, CG_PARENT, name);
}

/* writes dir/file; 0 or -1 with err set */
static int set_ctl(const char *dir, const char *file, const char *val, struct gerr *err)
{
	char path[PATH_MAX + 64];

	fmt(path, sizeof(path), "%s/%s", dir, file);
	if (write_ctl(path, val) < 0)
		return gerr_set(err, "cgroup: write '%s' to %s: %s", val, path, strerror(errno));
	return 0;
}

static bool ctl_exists(const char *dir, const char *file)
{
	char path[PATH_MAX + 64];

	fmt(path, sizeof(path), "%s/%s", dir, file);
	return access(path, F_OK) == 0;
}

static int64_t cpu_quota_us(int64_t millis)
{
	/* 1000m = one CPU = PERIOD us per PERIOD; the kernel wants >= 1 ms */
	int64_t q = millis * (CPU_PERIOD_US / 1000);
	return q < 1000 ? 1000 : q;
}

static int create_v2(const char *dir, const struct resources *res, struct gerr *err)
{
	char val[64];

	if (res->memory_bytes > 0)
		fmt(val, sizeof(val), "%lld", (long long)res->memory_bytes);
	else
		strlcpy_g(val, "max", sizeof(val));
	if (set_ctl(dir, "memory.max", val, err) < 0)
		return -1;
	/* no swap: the limit must mean what it says (absent without swap
	 * accounting, so best effort) */
	if (ctl_exists(dir, "memory.swap.max"))
		(void)set_ctl(dir, "memory.swap.max", res->memory_bytes > 0 ? "0" : "max", NULL);
	if (res->cpu_millis > 0)
		fmt(val, sizeof(val), "%lld %d", (long long)cpu_quota_us(res->cpu_millis),
			 CPU_PERIOD_US);
	else
		fmt(val, sizeof(val), "max %d", CPU_PERIOD_US);
	if (ctl_exists(dir, "cpu.max")) {
		if (set_ctl(dir, "cpu.max", val, err) < 0)
			return -1;
	} else if (res->cpu_millis > 0) {
		log_warn("runtime", "cgroup=%s cpu controller unavailable: no cpu limit", dir);
	}
	if (res->pids > 0)
		fmt(val, sizeof(val), "%lld", (long long)res->pids);
	else
		strlcpy_g(val, "max", sizeof(val));
	if (ctl_exists(dir, "pids.max")) {
		if (set_ctl(dir, "pids.max", val, err) < 0)
			return -1;
	} else if (res->pids > 0) {
		log_warn("runtime", "cgroup=%s pids controller unavailable: no pids limit", dir);
	}
	return 0;
}

static int create_v1(const char *name, const struct resources *res, struct gerr *err)
{
	char dir[PATH_MAX + 64], val[64];
	bool memsw;

	/* memory */
	cg_dir(name, H_MEM, dir, sizeof(dir));
	if (mkdir_ok(dir) < 0)
		return gerr_set(err, "cgroup: mkdir %s: %s", dir, strerror(errno));
	memsw = ctl_exists(dir, "memory.memsw.limit_in_bytes");
	/* memsw must stay >= limit_in_bytes: lift it first, then set both */
	if (memsw)
		(void)set_ctl(dir, "memory.memsw.limit_in_bytes", "-1", NULL);
	if (res->memory_bytes > 0)
		fmt(val, sizeof(val), "%lld", (long long)res->memory_bytes);
	else
		strlcpy_g(val, "-1", sizeof(val));
	if (set_ctl(dir, "memory.limit_in_bytes", val, err) < 0)
		return -1;
	if (memsw && res->memory_bytes > 0 &&
	    set_ctl(dir, "memory.memsw.limit_in_bytes", val, NULL) < 0)
		log_warn("runtime", "cgroup=%s cannot disable swap: %s", name, strerror(errno));

	/* cpu */
	cg_dir(name, H_CPU, dir, sizeof(dir));
	if (dir[0]) {
		if (mkdir_ok(dir) < 0)
			return gerr_set(err, "cgroup: mkdir %s: %s", dir, strerror(errno));
		fmt(val, sizeof(val), "%d", CPU_PERIOD_US);
		if (set_ctl(dir, "cpu.cfs_period_us", val, err) < 0)
			return -1;
		if (res->cpu_millis > 0)
			fmt(val, sizeof(val), "%lld", (long long)cpu_quota_us(res->cpu_millis));
		else
			strlcpy_g(val, "-1", sizeof(val));
		if (set_ctl(dir, "cpu.cfs_quota_us", val, err) < 0)
			return -1;
	} else if (res->cpu_millis > 0) {
		log_warn("runtime", "cgroup=%s no cpu hierarchy: no cpu limit", name);
	}

	/* pids */
	cg_dir(name, H_PIDS, dir, sizeof(dir));
	if (dir[0]) {
		if (mkdir_ok(dir) < 0)
			return gerr_set(err, "cgroup: mkdir %s: %s", dir, strerror(errno));
		if (res->pids > 0)
			fmt(val, sizeof(val), "%lld", (long long)res->pids);
		else
			strlcpy_g(val, "max", sizeof(val));
		if (set_ctl(dir, "pids.max", val, err) < 0)
			return -1;
	} else if (res->pids > 0) {
		log_warn("runtime", "cgroup=%s no pids hierarchy: no pids limit", name);
	}

	/* cpuacct: no limit, only its CPU time (the same directory as cpu's
	 * when the two are mounted together) */
	cg_dir(name, H_ACCT, dir, sizeof(dir));
	if (dir[0] && mkdir_ok(dir) < 0)
		log_warn("runtime", "cgroup=%s mkdir %s: %s: no cpu usage", name, dir, strerror(errno));
	return 0;
}

int cgroup_create(const char *name, const struct resources *res, struct gerr *err)
{
	char dir[PATH_MAX + 64];
	static const struct resources none = { 0 };
	int ret = -1;

	if (!res)
		res = &none;
	if (cgroup_mode() == CGROUP_NONE) {
		ret = gerr_set(err, "cgroups unavailable (%s)", cg.reason);
		goto out;
	}
	if (!valid_name(name)) {
		ret = gerr_set(err, "cgroup: invalid name '%s' (use letters, digits, '_', '-', '.')",
			       name ? name : "");
		goto out;
	}
	if (cg.mode == CGROUP_V2) {
		cg_dir(name, 0, dir, sizeof(dir));
		if (mkdir_ok(dir) < 0) {
			ret = gerr_set(err, "cgroup: mkdir %s: %s", dir, strerror(errno));
			goto out;
		}
		ret = create_v2(dir, res, err);
	} else {
		ret = create_v1(name, res, err);
	}
	if (ret == 0)
		log_info("runtime", "cgroup=%s memory=%lld cpu_millis=%lld pids=%lld", name,
			 (long long)res->memory_bytes, (long long)res->cpu_millis,
			 (long long)res->pids);
out:
	return ret;
}

int cgroup_join(const char *name, pid_t pid, struct gerr *err)
{
	char dir[PATH_MAX + 64], val[32];
	int h, ret = 0;

	if (cgroup_mode() == CGROUP_NONE)
		return gerr_set(err, "cgroups unavailable (%s)", cg.reason);
	if (!valid_name(name))
		return gerr_set(err, "cgroup: invalid name '%s'", name ? name : "");
	fmt(val, sizeof(val), "%d", (int)pid);
	for (h = 0; h < (cg.mode == CGROUP_V2 ? 1 : H_N); h++) {
		cg_dir(name, h, dir, sizeof(dir));
		if (!dir[0])
			continue;
		/* cpuacct only measures: not being there is no failure */
		if (h == H_ACCT) {
			(void)set_ctl(dir, "cgroup.procs", val, NULL);
			continue;
		}
		/* keep going: being in the memory cgroup without the pids one
		 * is better than in neither */
		if (set_ctl(dir, "cgroup.procs", val, ret < 0 ? NULL : err) < 0)
			ret = -1;
	}
	return ret;
}

/* Calls fn for each pid in NAME's cgroup.procs (v1: the memory hierarchy,
 * which every replica process joins). Returns the number of pids. */
static int for_each_proc(const char *name, void (*fn)(pid_t, void *), void *data)
{
	char dir[PATH_MAX + 64], path[PATH_MAX + 80], line[64];
	FILE *f;
	int n = 0;

	if (cgroup_mode() == CGROUP_NONE)
		return 0;
	cg_dir(name, H_MEM, dir, sizeof(dir));
	if (!dir[0])
		return 0;
	fmt(path, sizeof(path), "%s/cgroup.procs", dir);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		long v = strtol(line, NULL, 10);
		if (v <= 0 || v > INT_MAX)
			continue;
		n++;
		if (fn)
			fn((pid_t)v, data);
	}
	fclose(f);
	return n;
}

static void kill_one(pid_t pid, void *data)
{
	int sig = *(int *)data;

	/* a cgroup of ours never holds us, unless a caller got a name wrong */
	if (pid > 1 && pid != getpid())
		(void)kill(pid, sig);
}

int cgroup_kill(const char *name, int sig)
{
	return for_each_proc(name, kill_one, &sig);
}

int cgroup_nprocs(const char *name)
{
	return for_each_proc(name, NULL, NULL);
}

/* value of "key N" in a flat-keyed control file; -1 if absent */
static long keyed_value(const char *path, const char *key)
{
	char buf[1024];
	const char *p;
	size_t kl = strlen(key);

	if (read_small(path, buf, sizeof(buf)) < 0)
		return -1;
	for (p = buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, kl) && p[kl] == ' ')
			return strtol(p + kl + 1, NULL, 10);
	return -1;
}

long cgroup_oom_kills(const char *name)
{
	char dir[PATH_MAX + 64], path[PATH_MAX + 96], buf[64];
	long v;

	if (cgroup_mode() == CGROUP_NONE)
		return 0;
	cg_dir(name, H_MEM, dir, sizeof(dir));
	if (!dir[0])
		return 0;
	if (cg.mode == CGROUP_V2) {
		fmt(path, sizeof(path), "%s/memory.events", dir);
		v = keyed_value(path, "oom_kill");
		return v < 0 ? 0 : v;
	}
	fmt(path, sizeof(path), "%s/memory.oom_control", dir);
	v = keyed_value(path, "oom_kill");
	if (v >= 0)
		return v;
	/* old v1 kernels count no kills: the limit being hit is the best
	 * signal there is */
	fmt(path, sizeof(path), "%s/memory.failcnt", dir);
	if (read_small(path, buf, sizeof(buf)) < 0)
		return 0;
	return strtol(buf, NULL, 10) > 0 ? 1 : 0;
}

void cgroup_destroy(const char *name)
{
	char dir[PATH_MAX + 64];
	int h;

	if (cgroup_mode() == CGROUP_NONE || !valid_name(name))
		return;
	for (h = 0; h < (cg.mode == CGROUP_V2 ? 1 : H_N); h++) {
		cg_dir(name, h, dir, sizeof(dir));
		if (dir[0] && rmdir(dir) < 0 && errno != ENOENT)
			log_warn("runtime", "cgroup=%s rmdir %s: %s", name, dir, strerror(errno));
	}
}

int cgroup_path(const char *name, char *buf, size_t size)
{
	if (size)
		buf[0] = '\0';
	if (cgroup_mode() == CGROUP_NONE || !size)
		return -1;
	cg_dir(name, H_MEM, buf, size);
	return buf[0] && access(buf, F_OK) == 0 ? 0 : -1;
}

int cgroup_mount_of(const char *controller, char *buf, size_t size)
{
	int h = -1;

	if (size)
		buf[0] = '\0';
	if (cgroup_mode() == CGROUP_NONE || !size)
		return -1;
	if (cg.mode == CGROUP_V2) {
		strlcpy_g(buf, cg.v2, size);
		return 0;
	}
	for (int i = 0; i < H_N; i++)
		if (!strcmp(controller, h_names[i]))
			h = i;
	if (h < 0 || !cg.v1[h][0])
		return -1;
	strlcpy_g(buf, cg.v1[h], size);
	return 0;
}

int cgroup_path_in(const char *name, const char *controller, char *buf, size_t size)
{
	int h = -1;

	if (size)
		buf[0] = '\0';
	if (cgroup_mode() == CGROUP_NONE || !size)
		return -1;
	for (int i = 0; i < H_N; i++)
		if (!strcmp(controller, h_names[i]))
			h = i;
	if (cg.mode == CGROUP_V1 && h < 0)
		return -1;
	cg_dir(name, h < 0 ? 0 : h, buf, size);
	return buf[0] && access(buf, F_OK) == 0 ? 0 : -1;
}

int cgroup_sweep(bool (*keep)(const char *name, void *data), void *data)
{
	char parent[PATH_MAX + 64], dir[PATH_MAX + 64];
	struct dirent *de;
	struct stat st;
	DIR *d;
	int n = 0, h;

	if (cgroup_mode() == CGROUP_NONE)
		return 0;
	/* v1: a name may be left in the cpu or pids hierarchy only */
	for (h = 0; h < (cg.mode == CGROUP_V2 ? 1 : H_N); h++) {
		const char *mnt = cg.mode == CGROUP_V2 ? cg.v2 : cg.v1[h];
		if (!mnt[0])
			continue;
		fmt(parent, sizeof(parent), "%s/%s", mnt, CG_PARENT);
		d = opendir(parent);
		if (!d)
			continue;
		while ((de = readdir(d))) {
			if (!valid_name(de->d_name) || (keep && keep(de->d_name, data)))
				continue;
			fmt(dir, sizeof(dir), "%s/%s", parent, de->d_name);
			/* a young cgroup may be another controller's (same
			 * machine, other home) between create and spawn */
			if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode) ||
			    clock_file_age_s(st.st_mtime) < SWEEP_MIN_AGE_S)
				continue;
			/* rmdir refuses cgroups that still hold processes */
			if (rmdir(dir) == 0)
				n++;
		}
		closedir(d);
	}
	if (n)
		log_info("runtime", "cgroups_swept=%d", n);
	return n;
}
