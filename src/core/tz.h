/*
 * tz.h — time zones read from the system tz database: TZif files ($TZDIR,
 * else /usr/share/zoneinfo) by our own small reader (RFC 8536, including the
 * POSIX TZ footer for dates past the last transition), so that no
 * process-wide TZ variable is ever switched: the daemon has threads (webhook
 * delivery, checks) and setenv() beside a getenv() in another thread is
 * undefined behaviour.
 *
 * Here the zone is read (tz_load checks a spec's windows.timezone); local
 * times are computed from it by tz_local in gates/window.h. Reading the zone
 * file is the only I/O of core/ besides spec_load's reading the spec.
 */
#ifndef GANTRY_CORE_TZ_H
#define GANTRY_CORE_TZ_H
#include "common.h"

#define TZ_MAX_TRANS 4096
#define TZ_MAX_TYPES 256

struct tz_type {
	int32_t utoff;
	bool isdst;
	char abbr[16];
};

/* a POSIX TZ string: "CET-1CEST,M3.5.0,M10.5.0/3" */
struct tz_rule_date {
	char kind;     /* 'M', 'J' (1..365, no Feb 29), 'D' (0..365) */
	int m, w, d;   /* M: month, week, weekday (0 = Sunday); J/D: day in d */
	int32_t secs;  /* local time of day of the change */
};

struct tz_rule {
	bool present;
	char std_abbr[16], dst_abbr[16];
	int32_t std_off, dst_off; /* seconds east of UTC */
	bool has_dst;
	struct tz_rule_date start, end;
};

/* a loaded zone (tz_load); read by tz_local (gates/window.c) */
struct tz {
	char name[128];
	int64_t *trans;   /* transition times, ascending */
	uint8_t *idx;     /* type of each transition */
	size_t ntrans;
	struct tz_type types[TZ_MAX_TYPES];
	size_t ntypes;
	struct tz_rule rule;
};

/*
 * Loads zone NAME ("Europe/Berlin"; NULL, "" or "UTC" give UTC). NAME must be
 * a relative path without "..". *out is owned by the caller (tz_free).
 */
int tz_load(const char *name, struct tz **out, struct gerr *err);
void tz_free(struct tz *tz);
const char *tz_name(const struct tz *tz); /* borrowed */

#endif
