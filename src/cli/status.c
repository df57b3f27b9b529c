#include "common.h"
#include "cli/client.h"
#include "daemon/disk.h"
#include "util/clock.h"
#include "util/parse.h"
#include <signal.h>

/* 850ms, 7.9s, 8s, 2m3s: a figure for a human, not a spec duration */
static const char *human_ms(json_int_t ms, char *buf, size_t len)
{
	if (ms < 1000)
		snprintf(buf, len, "%lldms", (long long)ms);
	else if (ms < 60000 && ms % 1000 == 0)
		snprintf(buf, len, "%llds", (long long)ms / 1000);
	else if (ms < 60000)
		snprintf(buf, len, "%.1fs", (double)ms / 1000);
	else
		format_duration(ms - ms % 1000, buf, len);
	return buf;
}

/* 712Ki, 57.3Mi, 1.50Gi, 64Mi: binary units, as the spec's memory limits */
static const char *human_bytes(json_int_t n, char *buf, size_t len)
{
	static const char *const units[] = { "Ki", "Mi", "Gi", "Ti" };
	double v = (double)n;
	int u = -1;

	while (v >= 1024 && u < 3) {
		v /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%lld", (long long)n);
	else if (v == (double)(int64_t)v)
		snprintf(buf, len, "%.0f%s", v, units[u]);
	else if (v < 10)
		snprintf(buf, len, "%.2f%s", v, units[u]);
	else if (v < 100)
		snprintf(buf, len, "%.1f%s", v, units[u]);
	else
		snprintf(buf, len, "%.0f%s", v, units[u]);
	return buf;
}

/* a replica's MEM ("57.3Mi/128Mi", "57.3Mi" without a limit) and CPU
 * ("12.5%") columns; "-" when unknown */
static void usage_columns(json_t *r, char *mem, size_t memlen, char *cpu, size_t cpulen)
{
	json_t *m = json_object_get(r, "memory_bytes"), *l = json_object_get(r, "memory_limit"),
	       *c = json_object_get(r, "cpu_percent");
	char a[24], b[24];

	if (json_is_integer(m) && json_is_integer(l))
		snprintf(mem, memlen, "%s/%s", human_bytes(json_integer_value(m), a, sizeof(a)),
			 human_bytes(json_integer_value(l), b, sizeof(b)));
	else if (json_is_integer(m))
		snprintf(mem, memlen, "%s", human_bytes(json_integer_value(m), a, sizeof(a)));
	else
		snprintf(mem, memlen, "-");
	if (json_is_number(c))
		snprintf(cpu, cpulen, "%.1f%%", json_number_value(c));
	else
		snprintf(cpu, cpulen, "-");
}

/*
 * With `serve --proxy-peer`: one line per proxy of the fleet ("proxies"):
 *   proxies: 2 of 3 reporting
 *     127.0.0.1:9091 (local)  generation 7  reported 0.1s ago
 *     127.0.0.1:9201          generation 7  reported 0.1s ago
 *     127.0.0.1:9202          generation -  STALE (last report 12.0s ago)  AWAITING ROUTES  push: no answer
 */
static void print_proxies(json_t *ps)
{
	size_t i, reporting = 0;
	json_t *p;
	char a[32];

	if (!json_is_array(ps) || !json_array_size(ps))
		return;
	json_array_foreach(ps, i, p)
		reporting += !json_is_true(json_object_get(p, "stale"));
	printf("proxies: %zu of %zu reporting\n", reporting, json_array_size(ps));
	json_array_foreach(ps, i, p) {
		json_int_t gen = json_integer_value(json_object_get(p, "generation"));
		json_int_t age = json_integer_value(json_object_get(p, "report_age_ms"));
		const char *err = json_string_value(json_object_get(p, "error"));
		printf("  %-22s%s  generation ", json_string_value(json_object_get(p, "address")),
		       json_is_true(json_object_get(p, "local")) ? " (local)" : "        ");
		if (gen >= 0)
			printf("%lld", (long long)gen);
		else
			printf("-");
		if (json_is_true(json_object_get(p, "stale")) && age >= 0)
			printf("  STALE (last report %s ago)", human_ms(age, a, sizeof(a)));
		else if (json_is_true(json_object_get(p, "stale")))
			printf("  STALE (never reported)");
		else if (age >= 0)
			printf("  reported %s ago", human_ms(age, a, sizeof(a)));
		if (json_is_true(json_object_get(p, "awaiting_routes")))
			printf("  AWAITING ROUTES");
		if (err)
			printf("  push: %s", err);
		printf("\n");
	}
}

/*
 * One line per cluster environment whose lease this controller wants
 * ("leases", daemon/swarmlease.h):
 *   cluster production: driven by this controller (lease gantry-lease-production)
 *   cluster production: held by HOST:PID:START until 2026-12-07T20:31:05Z: not driven by this controller
 */
static void print_leases(json_t *ls)
{
	size_t i;
	json_t *l;
	json_array_foreach(ls, i, l) {
		const char *env = json_string_value(json_object_get(l, "environment"));
		const char *holder = json_string_value(json_object_get(l, "holder"));
		const char *e = json_string_value(json_object_get(l, "error"));
		char ts[32];
		if (json_is_true(json_object_get(l, "held"))) {
			printf("cluster %s: driven by this controller (lease %s)\n", env,
			       json_string_value(json_object_get(l, "name")));
			continue;
		}
		format_rfc3339(json_integer_value(json_object_get(l, "expires_ms")) / 1000, ts, sizeof(ts));
		if (holder && *holder)
			printf("cluster %s: held by %s until %s: not driven by this controller%s%s\n", env, holder, ts,
			       e ? "; " : "", e ? e : "");
		else
			printf("cluster %s: lease %s not held yet%s%s\n", env, json_string_value(json_object_get(l, "name")),
			       e ? ": " : "", e ? e : "");
	}
}

/*
 * One line for the proxy process (the "proxy" object of the reply, docs/api.md):
 *   proxy: pid 1234 up 12.0s, 10 restarts (crash loop: next start in 7.9s), last exit: ...
 */
static void print_proxy(json_t *p)
{
	json_t *pid = json_object_get(p, "pid"), *up = json_object_get(p, "up_ms");
	json_int_t restarts = json_integer_value(json_object_get(p, "restarts"));
	json_t *next = json_object_get(p, "next_start_ms");
	const char *last = json_string_value(json_object_get(p, "last_exit"));
	bool loop = json_is_true(json_object_get(p, "crash_loop"));
	char a[32], b[32];

	if (!json_is_object(p))
		return;
	if (json_is_integer(pid)) {
		printf("proxy: pid %lld", (long long)json_integer_value(pid));
		if (json_is_integer(up))
			printf(" up %s", human_ms(json_integer_value(up), a, sizeof(a)));
		else if (json_is_true(json_object_get(p, "adopted")))
			printf(" (adopted)");
	} else {
		printf("proxy: not running");
	}
	if (restarts)
		printf(", %lld restart%s", (long long)restarts, restarts == 1 ? "" : "s");
	if (loop && json_is_integer(next))
		printf(" (crash loop: next start in %s, backoff %s)", human_ms(json_integer_value(next), a, sizeof(a)),
		       human_ms(json_integer_value(json_object_get(p, "backoff_ms")), b, sizeof(b)));
	else if (loop)
		printf(" (crash loop: backoff %s)",
		       human_ms(json_integer_value(json_object_get(p, "backoff_ms")), b, sizeof(b)));
	else if (json_is_integer(next))
		printf(" (next start in %s)", human_ms(json_integer_value(next), a, sizeof(a)));
	if (last)
		printf(", last exit: %s after %s", last,
		       human_ms(json_integer_value(json_object_get(p, "last_exit_after_ms")), b, sizeof(b)));
	printf("\n");
	print_proxies(json_object_get(p, "proxies"));
}

/*
 * One line when the state store cannot write (the "store" object):
 *   store: cannot write (database or disk is full) for 12.3s: every rollout holds, changes are refused
 */
static void print_store(json_t *st)
{
	char a[32];
	if (!json_is_object(st) || json_is_true(json_object_get(st, "ok")))
		return;
	printf("store: cannot write (%s) for %s: every rollout holds, changes are refused\n",
	       json_string_value(json_object_get(st, "error")),
	       human_ms(json_integer_value(json_object_get(st, "for_ms")), a, sizeof(a)));
}

/*
 * HOME's filesystem (the "disk" object, docs/api.md): nothing while there is
 * room, one line when it runs low or cannot be measured:
 *   warning: HOME (/var/lib/gantry) has 2.1% free (412 MiB of 19.6 GiB), below the 5% threshold: ...
 */
static void print_disk(json_t *d)
{
	const char *path = json_string_value(json_object_get(d, "path"));
	const char *error = json_string_value(json_object_get(d, "error"));
	const char *threshold = json_string_value(json_object_get(d, "threshold"));
	char msg[PATH_MAX + 256];

	if (!json_is_object(d) || !path)
		return;
	if (json_is_true(json_object_get(d, "low")) && json_is_integer(json_object_get(d, "free_bytes")))
		printf("warning: %s\n", disk_describe(path, (uint64_t)json_integer_value(json_object_get(d, "free_bytes")),
						    (uint64_t)json_integer_value(json_object_get(d, "total_bytes")),
						    threshold ? threshold : "", true, msg, sizeof(msg)));
	if (error)
		printf("warning: HOME (%s): cannot measure its free space: %s\n", path, error);
}

static void print_table(json_t *list)
{
	size_t i, j;
	json_t *st, *r;
	if (!json_array_size(list)) {
		printf("nothing deployed yet (gantry deploy SERVICE --env ENV)\n");
		return;
	}
	json_array_foreach(list, i, st) {
		json_t *ro = json_object_get(st, "rollout"), *traffic = json_object_get(st, "traffic");
		const char *msg = json_string_value(json_object_get(st, "message"));
		char stable[24] = "none";
		if (json_integer_value(json_object_get(st, "stable_revision")) > 0)
			snprintf(stable, sizeof(stable), "#%lld",
				 (long long)json_integer_value(json_object_get(st, "stable_revision")));
		printf("%s@%s  %s  stable=%s  ready=%lld/%lld", json_string_value(json_object_get(st, "service")),
		       json_string_value(json_object_get(st, "environment")),
		       json_string_value(json_object_get(st, "phase")), stable,
		       (long long)json_integer_value(json_object_get(st, "ready_replicas")),
		       (long long)json_integer_value(json_object_get(st, "desired_replicas")));
		if (json_object_get(st, "version"))
			printf("  version=%s", json_string_value(json_object_get(st, "version")));
		printf("\n  traffic:");
		json_array_foreach(traffic, j, r)
			printf(" #%lld=%lld%%", (long long)json_integer_value(json_object_get(r, "revision")),
			       (long long)json_integer_value(json_object_get(r, "weight")));
		if (!json_array_size(traffic))
			printf(" none%s", json_integer_value(json_object_get(st, "target_revision")) > 0 ? " (no ready replica)" : "");
		printf("\n");
		if (msg && *msg)
			printf("  message: %s\n", msg);
		if (json_is_object(json_object_get(st, "pending"))) {
			json_t *p = json_object_get(st, "pending");
			printf("  deployment %lld (version %s): pending_approval until %s: %s\n",
			       (long long)json_integer_value(json_object_get(p, "deployment")),
			       json_string_value(json_object_get(p, "version")),
			       json_string_value(json_object_get(p, "expires_at")),
			       json_string_value(json_object_get(p, "message")));
		}
		if (json_is_object(ro))
			printf("  rollout %lld: revision #%lld from #%lld, %s, %s: %s\n",
			       (long long)json_integer_value(json_object_get(ro, "id")),
			       (long long)json_integer_value(json_object_get(ro, "revision")),
			       (long long)json_integer_value(json_object_get(ro, "from_revision")),
			       json_string_value(json_object_get(ro, "strategy")),
			       json_string_value(json_object_get(ro, "phase")),
			       json_string_value(json_object_get(ro, "message")));
		{
			json_t *can = json_object_get(st, "canary"), *steps = json_object_get(can, "steps"), *m;
			json_int_t cur = json_integer_value(json_object_get(can, "step"));
			json_array_foreach(steps, j, r)
				printf("  %s %zu. %s\n", (json_int_t)j == cur ? "->" : "  ", j + 1, json_string_value(r));
			json_array_foreach(json_object_get(can, "analyses"), j, r)
				printf("  analysis %s: %s%s%s\n", json_string_value(json_object_get(r, "analysis")),
				       json_string_value(json_object_get(r, "phase")),
				       *json_string_value(json_object_get(r, "reason")) ? ": " : "",
				       json_string_value(json_object_get(r, "reason")));
			json_array_foreach(json_object_get(can, "rollback_on"), j, r) {
				json_t *since = json_object_get(r, "holding_since_ms");
				printf("  rollback_on %s: %s", json_string_value(json_object_get(r, "condition")),
				       json_string_value(json_object_get(r, "verdict")));
				if (json_is_integer(since))
					printf(" for %llds", (long long)((clock_now_ms() - json_integer_value(since)) / 1000));
				printf("\n");
			}
			json_array_foreach(json_object_get(st, "metrics"), j, m) {
				json_t *er = json_object_get(m, "error_rate"), *p99 = json_object_get(m, "latency_p99_ms");
				printf("  #%lld (last 10s): %.1f req/s", (long long)json_integer_value(json_object_get(m, "revision")),
				       json_real_value(json_object_get(m, "request_rate")));
				if (json_is_number(er))
					printf(", errors %.2f%%", json_number_value(er) * 100);
				if (json_is_number(p99))
					printf(", p99 %.1fms", json_number_value(p99));
				printf("\n");
			}
		}
		{
			/* a cluster's replicas: the node their task runs on instead of a pid and port of this host */
			bool nodes = false;
			json_array_foreach(json_object_get(st, "replicas"), j, r)
				nodes |= json_is_string(json_object_get(r, "node"));
			if (json_array_size(json_object_get(st, "replicas")) && nodes)
				printf("  %-40s %4s %-16s %-9s %8s %15s %7s  %s\n", "REPLICA", "REV", "NODE", "STATE",
				       "RESTARTS", "MEM", "CPU", "LAST EXIT");
			else if (json_array_size(json_object_get(st, "replicas")))
				printf("  %-40s %4s %8s %6s %-9s %8s %15s %7s  %s\n", "REPLICA", "REV", "PID", "PORT", "STATE",
				       "RESTARTS", "MEM", "CPU", "LAST EXIT");
			json_array_foreach(json_object_get(st, "replicas"), j, r) {
				char mem[48], cpu[24], where[64];
				const char *node = json_string_value(json_object_get(r, "node"));
				usage_columns(r, mem, sizeof(mem), cpu, sizeof(cpu));
				if (nodes)
					snprintf(where, sizeof(where), "%-16s", node ? node : "-");
				else
					snprintf(where, sizeof(where), "%8lld %6lld", (long long)json_integer_value(json_object_get(r, "pid")),
						 (long long)json_integer_value(json_object_get(r, "port")));
				printf("  %-40s %4lld %s %-9s %8lld %15s %7s  %s\n", json_string_value(json_object_get(r, "id")),
				       (long long)json_integer_value(json_object_get(r, "revision")), where,
				       json_string_value(json_object_get(r, "state")),
				       (long long)json_integer_value(json_object_get(r, "restarts")), mem, cpu,
				       json_string_value(json_object_get(r, "last_exit")) ? json_string_value(json_object_get(r, "last_exit")) : "");
			}
		}
	}
}

struct status_opts {
	const char *env;
	bool watch;
};

/*
 * One line per environment with feature flags (the "flags" array of the
 * reply, daemon/flags.h): "flags staging: new_checkout=on banner=spec".
 */
static void print_flags(json_t *flags)
{
	const char *cur = NULL;
	json_t *f;
	size_t i;
	json_array_foreach(flags, i, f) {
		const char *env = json_string_value(json_object_get(f, "environment"));
		if (!env)
			continue;
		if (!cur || strcmp(cur, env))
			printf("%sflags %s:", cur ? "\n" : "", env);
		cur = env;
		printf(" %s=%s", json_string_value(json_object_get(f, "name")),
		       json_string_value(json_object_get(f, "state")));
	}
	if (cur)
		printf("\n");
}

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	struct status_opts o = { 0 };
	const char *env;
	bool watch;
	int npos, ret = EXIT_OK;

	if ((npos = cli_parse_opts(ctx->cmd, argc, argv, ctx, &o)) < 0)
		return EXIT_USAGE;
	if (npos > 1)
		return cli_error("gantry status: unexpected argument '%s'", argv[1]);
	env = o.env;
	watch = o.watch;
	client_catch_stop();
	do {
		json_t *req = json_pack("{s:s}", "op", "status"), *resp, *list;
		client_req_str(req, "service", npos ? argv[0] : NULL);
		client_req_str(req, "environment", env);
		if ((ret = client_call(ctx, req, &resp)))
			break;
		list = json_object_get(resp, "status");
		if (npos && env && !json_array_size(list)) {
			fprintf(stderr, "error: %s@%s has never been deployed\n", argv[0], env);
			json_decref(resp);
			ret = EXIT_USAGE;
			break;
		}
		/* on a terminal, redraw in place; otherwise (a pipe, a log) plain
		 * successive snapshots separated by a timestamp line */
		if (watch && !ctx->json) {
			if (isatty(STDOUT_FILENO)) {
				printf("\033[H\033[2J");
			} else {
				char ts[32];
				format_rfc3339(clock_now_s(), ts, sizeof(ts));
				printf("--- %s\n", ts);
			}
		}
		if (ctx->json) {
			/* one object for SVC --env E (the contract), an array otherwise */
			json_t *out = npos && env ? json_array_get(list, 0) : list;
			char *s = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
			printf("%s\n", s);
			free(s);
		} else {
			print_disk(json_object_get(resp, "disk"));
			print_proxy(json_object_get(resp, "proxy"));
			print_leases(json_object_get(resp, "leases"));
			print_store(json_object_get(resp, "store"));
			print_table(list);
			print_flags(json_object_get(resp, "flags"));
		}
		fflush(stdout);
		json_decref(resp);
		if (watch)
			client_pause_ms(1000);
	} while (watch && !client_stop);
	return ret;
}

static const struct cli_option status_options[] = {
	CLI_STRING('e', "env", struct status_opts, env, "ENV", "only this environment"),
	CLI_BOOL('w', "watch", struct status_opts, watch, "print it again every second until interrupted"),
	CLI_END,
};

const struct cli_cmd cli_cmd_status = {
	.name = "status",
	.usage = "gantry status [SERVICE] [--env ENV] [--watch] [-o json]",
	.summary = "show service environments: phase, traffic, replicas, rollout",
	.options = status_options,
	.run = run,
};
