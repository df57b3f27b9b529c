/*
 * usage.c — a cgroup's memory and CPU usage and limits (usage.h).
 */
#include "common.h"
#include "runtime/usage.h"
#include "runtime/runtime.h"

#include <fcntl.h>
#include <inttypes.h>

/* v1's "unlimited" is PAGE_COUNTER_MAX pages, just under 2^63 */
#define V1_UNLIMITED (INT64_C(1) << 62)

/* dir/file into buf (NUL-terminated); 0, or -1 when missing or unreadable */
static int read_file(const char *dir, const char *file, char *buf, size_t size)
{
	char path[PATH_MAX + 64];
	size_t have = 0;
	int fd;

	if (!dir || !dir[0])
		return -1;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	/* memory.stat is a few KB: read until EOF or the buffer is full */
	while (have < size - 1) {
		ssize_t n = read(fd, buf + have, size - 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0) {
				close(fd);
				return -1;
			}
			break;
		}
		have += (size_t)n;
	}
	close(fd);
	buf[have] = '\0';
	return 0;
}

/* a non-negative decimal at s (leading blanks skipped), up to a blank or
 * the end; -1 when there is none */
static int64_t number(const char *s)
{
	int64_t v = 0;
	bool any = false;

	while (*s == ' ' || *s == '\t')
		s++;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (INT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (*s - '0');
		any = true;
	}
	if (!any || (*s && *s != ' ' && *s != '\t' && *s != '\n'))
		return -1;
	return v;
}

/* a file holding one number; -1 when missing or not one */
static int64_t read_number(const char *dir, const char *file)
{
	char buf[64];

	if (read_file(dir, file, buf, sizeof(buf)) < 0)
		return -1;
	return number(buf);
}

int64_t cgroup_usage_keyed(const char *text, const char *key)
{
	size_t kl = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, kl) && p[kl] == ' ')
			return number(p + kl + 1);
	return -1;
}

static int64_t in_use(int64_t charged, int64_t inactive_file)
{
	if (charged < 0)
		return -1;
	if (inactive_file <= 0)
		return charged;
	return inactive_file >= charged ? 0 : charged - inactive_file;
}

/* quota and period (both in µs) as thousandths of a CPU; 0: none */
static int64_t cpu_millis(int64_t quota, int64_t period)
{
	if (quota <= 0 || period <= 0)
		return 0;
	return quota * 1000 / period;
}

static void usage_clear(struct cgroup_usage *out)
{
	out->memory_bytes = -1;
	out->memory_limit = 0;
	out->cpu_usec = -1;
	out->cpu_limit_millis = 0;
}

int cgroup_usage_read_v2(const char *dir, struct cgroup_usage *out)
{
	char stat[8192], line[128];
	int64_t current = read_number(dir, "memory.current");

	usage_clear(out);
	if (current < 0)
		return -1;
	out->memory_bytes =
		in_use(current, read_file(dir, "memory.stat", stat, sizeof(stat)) == 0 ? cgroup_usage_keyed(stat, "inactive_file") : -1);
	if (read_file(dir, "memory.max", line, sizeof(line)) == 0 && strncmp(line, "max", 3)) {
		int64_t v = number(line);
		out->memory_limit = v > 0 ? v : 0;
	}
	if (read_file(dir, "cpu.stat", stat, sizeof(stat)) == 0)
		out->cpu_usec = cgroup_usage_keyed(stat, "usage_usec");
	/* "QUOTA PERIOD" or "max PERIOD" */
	if (read_file(dir, "cpu.max", line, sizeof(line)) == 0 && strncmp(line, "max", 3)) {
		char *sp = strchr(line, ' ');
		if (sp) {
			*sp = '\0';
			out->cpu_limit_millis = cpu_millis(number(line), number(sp + 1));
		}
	}
	return 0;
}

int cgroup_usage_read_v1(const char *memdir, const char *cpudir, const char *acctdir, struct cgroup_usage *out)
{
	char stat[8192];
	int64_t charged = read_number(memdir, "memory.usage_in_bytes"), v;

	usage_clear(out);
	if (charged < 0)
		return -1;
	v = -1;
	if (read_file(memdir, "memory.stat", stat, sizeof(stat)) == 0) {
		v = cgroup_usage_keyed(stat, "total_inactive_file");
		if (v < 0)
			v = cgroup_usage_keyed(stat, "inactive_file");
	}
	out->memory_bytes = in_use(charged, v);
	v = read_number(memdir, "memory.limit_in_bytes");
	out->memory_limit = v > 0 && v < V1_UNLIMITED ? v : 0;
	if (acctdir && (v = read_number(acctdir, "cpuacct.usage")) >= 0)
		out->cpu_usec = v / 1000;
	/* cfs_quota_us is -1 without a limit: number() says -1, so none */
	if (cpudir)
		out->cpu_limit_millis = cpu_millis(read_number(cpudir, "cpu.cfs_quota_us"),
						   read_number(cpudir, "cpu.cfs_period_us"));
	return 0;
}

int cgroup_usage_read_pid(pid_t pid, struct cgroup_usage *out)
{
	char path[64], line[1024], mnt[PATH_MAX], mem[PATH_MAX + 1024] = "", cpu[PATH_MAX + 1024] = "",
		acct[PATH_MAX + 1024] = "", v2[PATH_MAX + 1024] = "";
	FILE *f;

	usage_clear(out);
	if (pid <= 0 || cgroup_mode() == CGROUP_NONE)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	if (!(f = fopen(path, "re")))
		return -1;
	/* ID:CONTROLLERS:PATH; v2 is "0::PATH" */
	while (fgets(line, sizeof(line), f)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL, *rel;
		if (!c2)
			continue;
		*c2 = 0;
		rel = c2 + 1;
		rel[strcspn(rel, "\n")] = 0;
		if (!strcmp(c1 + 1, "")) {
			if (cgroup_mount_of("memory", mnt, sizeof(mnt)) == 0)
				snprintf(v2, sizeof(v2), "%s%s", mnt, rel);
			continue;
		}
		{
			char ctl[256], *save = NULL, *w;
			strlcpy_g(ctl, c1 + 1, sizeof(ctl));
			for (w = strtok_r(ctl, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
				char *dst = !strcmp(w, "memory") ? mem : !strcmp(w, "cpu") ? cpu : !strcmp(w, "cpuacct") ? acct : NULL;
				if (dst && cgroup_mount_of(w, mnt, sizeof(mnt)) == 0)
					snprintf(dst, PATH_MAX + 1024, "%s%s", mnt, rel);
			}
		}
	}
	fclose(f);
	if (cgroup_mode() == CGROUP_V2)
		return v2[0] ? cgroup_usage_read_v2(v2, out) : -1;
	if (!mem[0])
		return -1;
	return cgroup_usage_read_v1(mem, cpu[0] ? cpu : NULL, acct[0] ? acct : NULL, out);
}

int cgroup_usage_read(const char *name, struct cgroup_usage *out)
{
	char mem[PATH_MAX + 64], cpu[PATH_MAX + 64], acct[PATH_MAX + 64];

	usage_clear(out);
	switch (cgroup_mode()) {
	case CGROUP_V2:
		if (cgroup_path(name, mem, sizeof(mem)) < 0)
			return -1;
		return cgroup_usage_read_v2(mem, out);
	case CGROUP_V1:
		if (cgroup_path(name, mem, sizeof(mem)) < 0)
			return -1;
		return cgroup_usage_read_v1(mem, cgroup_path_in(name, "cpu", cpu, sizeof(cpu)) == 0 ? cpu : NULL,
					    cgroup_path_in(name, "cpuacct", acct, sizeof(acct)) == 0 ? acct : NULL, out);
	case CGROUP_NONE:
		break;
	}
	return -1;
}
