/*
 * disk.c — the low-disk warning on HOME's filesystem (disk.h).
 *
 * The state is this file's (one HOME per controller): the last measurement,
 * whether it is low, and whether that was announced. Measuring runs on the
 * thread pool (statvfs on a hung network filesystem must not stop the
 * loop); the answer is applied on the loop, where the crossing is
 * announced. The event is the controller's, not a service's (service and
 * environment "", as spec_applied and notify_sent): the disk is shared by
 * every service environment, and one event per crossing is what an
 * operator acts on.
 */
#include "common.h"
#include "daemon/daemon.h"
#include "daemon/disk.h"
#include "daemon/gates_flow.h"
#include "util/log.h"
#include "util/parse.h"
#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <sys/statvfs.h>

struct disk_sample {
	int err;                     /* 0, or the errno of statvfs */
	uint64_t free_bytes, total_bytes;
};

static struct {
	bool started;
	char path[PATH_MAX];
	struct disk_threshold threshold;
	struct disk_sample last;     /* the last measurement applied */
	bool measured;               /* last holds one that succeeded (now or before an error) */
	bool low, announced_low;
	int logged_err;              /* the errno last logged (logged once while it lasts) */
	int64_t last_ms;             /* clock_mono_ms of the last measurement queued */
	bool busy;
	uv_work_t req;
	struct disk_sample result;   /* written by the worker, read in done */
} disk;

int disk_threshold_parse(const char *s, struct disk_threshold *t, struct gerr *err)
{
	struct disk_threshold out = { 0 };
	size_t n = s ? strlen(s) : 0;

	if (!n || n >= sizeof(out.text))
		goto bad;
	strlcpy_g(out.text, s, sizeof(out.text));
	if (s[n - 1] == '%') {
		if (parse_percent(s, &out.pct) < 0 || out.pct >= 100)
			goto bad;
	} else {
		/* a unit is required: "5" could mean 5% or 5 bytes */
		if (isdigit((unsigned char)s[n - 1]) || parse_size(s, &out.bytes) < 0)
			goto bad;
		out.is_size = true;
	}
	*t = out;
	return 0;
bad:
	return gerr_set(err, "--low-disk: '%s': expected a percentage of HOME's filesystem (5%%) or a size "
			"with its unit (500Mi, 2G)", s ? s : "");
}

double disk_threshold_pct(const struct disk_threshold *t, uint64_t total_bytes)
{
	if (!t->is_size)
		return t->pct;
	if (!t->bytes)
		return 0;
	if (!total_bytes)
		return 100;
	return (double)t->bytes * 100.0 / (double)total_bytes;
}

bool disk_low_next(bool was_low, double free_pct, double threshold_pct)
{
	if (threshold_pct <= 0)
		return false;
	if (was_low)
		return free_pct < threshold_pct + DISK_CLEAR_MARGIN_PCT;
	return free_pct < threshold_pct;
}

const char *disk_format_bytes(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)bytes;
	size_t u = 0;

	if (bytes < 1024) {
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
		return buf;
	}
	v /= 1024;
	while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	/* three figures: 412 MiB, 19.6 GiB, 2.1 GiB (rounded down: never more than there is) */
	if (v >= 100)
		snprintf(buf, len, "%.0f %s", floor(v), units[u]);
	else
		snprintf(buf, len, "%.1f %s", floor(v * 10) / 10, units[u]);
	return buf;
}

static double free_pct_of(uint64_t free_bytes, uint64_t total_bytes)
{
	return total_bytes ? (double)free_bytes * 100.0 / (double)total_bytes : 0;
}

const char *disk_describe(const char *path, uint64_t free_bytes, uint64_t total_bytes, const char *threshold,
			  bool low, char *buf, size_t len)
{
	char f[32], t[32];
	/* rounded down, so that 4.96% never reads "5.0% free, below the 5% threshold" */
	double pct = floor(free_pct_of(free_bytes, total_bytes) * 10) / 10;

	disk_format_bytes(free_bytes, f, sizeof(f));
	disk_format_bytes(total_bytes, t, sizeof(t));
	if (low)
		snprintf(buf, len, "HOME (%s) has %.1f%% free (%s of %s), below the %s threshold: free space "
			 "before the state store fills", path, pct, f, t, threshold);
	else
		snprintf(buf, len, "HOME (%s) has %.1f%% free (%s of %s), above the %s threshold again", path, pct, f,
			 t, threshold);
	return buf;
}

static void measure(const char *path, struct disk_sample *out)
{
	struct statvfs sv;
	memset(out, 0, sizeof(*out));
	if (statvfs(path, &sv) < 0) {
		out->err = errno ? errno : EIO;
		return;
	}
	/* a filesystem that tells no size (some FUSE ones) is not "0% free" */
	if (!sv.f_blocks || !sv.f_frsize) {
		out->err = ENODATA;
		return;
	}
	/* f_bavail: what an unprivileged writer gets (root's reserve excluded) */
	out->free_bytes = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
	out->total_bytes = (uint64_t)sv.f_blocks * (uint64_t)sv.f_frsize;
}

static json_t *disk_data(const char *message)
{
	double pct = free_pct_of(disk.last.free_bytes, disk.last.total_bytes);
	return json_pack("{s:s, s:I, s:I, s:f, s:f, s:s, s:s}", "path", disk.path,
			 "free_bytes", (json_int_t)disk.last.free_bytes, "total_bytes", (json_int_t)disk.last.total_bytes,
			 "free_pct", round(pct * 100) / 100,
			 "threshold_pct", round(disk_threshold_pct(&disk.threshold, disk.last.total_bytes) * 100) / 100,
			 "threshold", disk.threshold.text, "message", message);
}

/* a crossing not yet told: one log line, one event, one webhook */
static void announce(void)
{
	char msg[PATH_MAX + 256];
	const char *kind = disk.low ? "disk_low" : "disk_ok";

	if (disk.low == disk.announced_low)
		return;
	disk.announced_low = disk.low;
	disk_describe(disk.path, disk.last.free_bytes, disk.last.total_bytes, disk.threshold.text, disk.low, msg,
		      sizeof(msg));
	if (disk.low)
		log_warn("disk", "path=%s free_bytes=%llu total_bytes=%llu threshold=%s: %s", disk.path,
			 (unsigned long long)disk.last.free_bytes, (unsigned long long)disk.last.total_bytes,
			 disk.threshold.text, msg);
	else
		log_info("disk", "path=%s free_bytes=%llu total_bytes=%llu threshold=%s: %s", disk.path,
			 (unsigned long long)disk.last.free_bytes, (unsigned long long)disk.last.total_bytes,
			 disk.threshold.text, msg);
	gates_event(NULL, NULL, 0, kind, msg);
	gates_emit(kind, disk_data(msg));
}

static void apply(const struct disk_sample *s)
{
	if (s->err) {
		/* the last good figures stay; said once while the error lasts */
		if (s->err != disk.logged_err)
			log_warn("disk", "path=%s: cannot measure free space: %s", disk.path, strerror(s->err));
		disk.logged_err = s->err;
		disk.last.err = s->err;
		return;
	}
	if (disk.logged_err)
		log_info("disk", "path=%s: measured again", disk.path);
	disk.logged_err = 0;
	disk.last = *s;
	disk.measured = true;
	disk.low = disk_low_next(disk.low, free_pct_of(s->free_bytes, s->total_bytes),
				 disk_threshold_pct(&disk.threshold, s->total_bytes));
}

int disk_start(const char *home, const char *threshold, struct gerr *err)
{
	struct disk_sample s;

	memset(&disk, 0, sizeof(disk));
	if (disk_threshold_parse(threshold ? threshold : DISK_DEFAULT_THRESHOLD, &disk.threshold, err) < 0)
		return -1;
	strlcpy_g(disk.path, home, sizeof(disk.path));
	/* once at start, on the loop: status has figures from its first answer;
	 * a low disk is announced at the first tick */
	measure(disk.path, &s);
	apply(&s);
	disk.started = true;
	return 0;
}

static void measure_work(uv_work_t *req)
{
	(void)req;
	measure(disk.path, &disk.result);
}

static void measure_done(uv_work_t *req, int status)
{
	(void)req;
	disk.busy = false;
	if (status < 0)
		return; /* cancelled: the loop is closing */
	apply(&disk.result);
	announce();
}

void disk_tick(int64_t now)
{
	if (!disk.started)
		return;
	announce();
	if (disk.busy || (disk.last_ms && now - disk.last_ms < DISK_INTERVAL_MS))
		return;
	disk.last_ms = now ? now : 1;
	if (uv_queue_work(gd->loop, &disk.req, measure_work, measure_done) == 0)
		disk.busy = true;
}

json_t *disk_status(void)
{
	json_t *o = json_object();
	bool have = disk.measured;
	double pct = free_pct_of(disk.last.free_bytes, disk.last.total_bytes);

	json_object_set_new(o, "path", json_string(disk.path));
	json_object_set_new(o, "free_bytes", have ? json_integer((json_int_t)disk.last.free_bytes) : json_null());
	json_object_set_new(o, "total_bytes", have ? json_integer((json_int_t)disk.last.total_bytes) : json_null());
	json_object_set_new(o, "free_pct", have ? json_real(round(pct * 100) / 100) : json_null());
	json_object_set_new(o, "threshold", json_string(disk.threshold.text));
	json_object_set_new(o, "threshold_pct",
			    have ? json_real(round(disk_threshold_pct(&disk.threshold, disk.last.total_bytes) * 100) / 100)
				 : json_null());
	json_object_set_new(o, "low", json_boolean(disk.low));
	json_object_set_new(o, "error", disk.last.err ? json_string(strerror(disk.last.err)) : json_null());
	return o;
}
