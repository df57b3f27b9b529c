/*
 * disk.h — the low-disk warning on HOME's filesystem (src/daemon/disk.c;
 * docs/internals/controller.md, "Low disk").
 *
 * Every 10 s (and at start) the controller measures the filesystem that
 * holds HOME (statvfs, off the loop): free bytes are f_bavail's, what a
 * non-root user may still write, over f_blocks. Below the threshold
 * (`serve --low-disk`, default 5%) it is "low": `gantry status` says so,
 * and one crossing gives one log line, one controller-wide event
 * (`disk_low`) and one webhook. It is "ok" again only at threshold + 1
 * point of the filesystem (hysteresis: a disk hovering at the threshold
 * does not flap), with a `disk_ok` event and webhook.
 *
 * Apart from daemon.h so that the CLI (serve's flag, status's line) can use
 * the parser and the wording, and the daemon's header is left alone.
 */
#ifndef GANTRY_DAEMON_DISK_H
#define GANTRY_DAEMON_DISK_H
#include "common.h"

struct json_t;

#define DISK_DEFAULT_THRESHOLD "5%"
#define DISK_INTERVAL_MS 10000
#define DISK_CLEAR_MARGIN_PCT 1.0 /* back to ok at threshold + 1 point */

/* --low-disk: a percentage of the filesystem ("5%", "0.5%") or a size
 * with a unit ("500Mi", "2G"); "0%" or "0Mi" turns the warning off */
struct disk_threshold {
	bool is_size;
	double pct;         /* !is_size: 0..100 */
	int64_t bytes;      /* is_size */
	char text[32];      /* as given: "5%", "500Mi" */
};

/* s (borrowed) into *t: 0, or -1 with err naming --low-disk. A bare number
 * ("5") is refused: is it a percentage or bytes? */
int disk_threshold_parse(const char *s, struct disk_threshold *t, struct gerr *err);
/* the threshold as a percentage of a filesystem of total_bytes (a size
 * larger than the filesystem is over 100: always low) */
double disk_threshold_pct(const struct disk_threshold *t, uint64_t total_bytes);
/*
 * The hysteresis, pure: whether the disk is low after a measurement of
 * free_pct, given whether it was. Low below threshold_pct; once low, it
 * stays low until free_pct >= threshold_pct + DISK_CLEAR_MARGIN_PCT.
 * threshold_pct <= 0: never low.
 */
bool disk_low_next(bool was_low, double free_pct, double threshold_pct);
/* 412 MiB, 19.6 GiB, 800 KiB, 12 B into buf */
const char *disk_format_bytes(uint64_t bytes, char *buf, size_t len);
/*
 * The one wording of a measurement (log line, event, webhook, `gantry
 * status`), into buf: low: "HOME (/path) has 2.1% free (412 MiB of 19.6
 * GiB), below the 5% threshold: free space before the state store fills";
 * else "HOME (/path) has 9.0% free (1.8 GiB of 19.6 GiB), above the 5%
 * threshold again".
 */
const char *disk_describe(const char *path, uint64_t free_bytes, uint64_t total_bytes, const char *threshold,
			  bool low, char *buf, size_t len);

/* ---- the controller's side (gd's loop thread) ---- */

/* at start-up: parses threshold (NULL: the default) and measures home
 * (borrowed) once, at once; 0, or -1 with err (a bad threshold). A
 * filesystem that cannot be measured is reported in status, not fatal. */
int disk_start(const char *home, const char *threshold, struct gerr *err);
/* from the tick: measures every DISK_INTERVAL_MS on the thread pool, and
 * announces a crossing (log line, event, webhook) once */
void disk_tick(int64_t now);
/* the status reply's "disk" object (docs/api.md): a new reference */
struct json_t *disk_status(void);

#endif
