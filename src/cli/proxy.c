/*
 * gantry proxy — run the built-in HTTP/1.1 reverse proxy in the foreground.
 */
#include "common.h"
#include "cli/cli.h"
#include "proxy/proxy.h"
#include "proxy/master.h"
#include "util/parse.h"

/* "10" (seconds), "0.5", "250ms", "2m", "1m30s" -> ms > 0; -1 if malformed */
static int parse_ms(const char *s, uint64_t *out)
{
	char buf[64];
	int64_t ms;
	if (*s && strspn(s, "0123456789.") == strlen(s)) {
		snprintf(buf, sizeof(buf), "%.40ss", s); /* a bare number is seconds */
		s = buf;
	}
	if (parse_duration_ms(s, &ms) < 0 || ms <= 0)
		return -1;
	*out = (uint64_t)ms;
	return 0;
}

struct proxy_opts {
	bool no_master, await_routes;
	const char *listen, *routes, *admin, *workers, *header_timeout, *idle_timeout, *upstream_timeout;
	const char *grace;
	const char *drain_timeout, *body_timeout, *tunnel_timeout, *connect_timeout, *max_body, *access_log;
	const char *forward_headers, *trusted_proxies, *admin_token_file, *listen_fds, *admin_fd;
	const char *counters_from;
};

#define DUR_HELP(what) what " (DUR: 10 = seconds, 0.5, 250ms, 2m)"
static const struct cli_option proxy_options[] = {
	CLI_STRING('l', "listen", struct proxy_opts, listen, "ADDR", "where clients connect (IP:PORT; required)"),
	CLI_STRING('r', "routes", struct proxy_opts, routes, "FILE", "the JSON route table (required; SIGHUP reloads it, PUT /routes writes it)"),
	CLI_STRING(0, "admin", struct proxy_opts, admin, "ADDR", "the admin listener: /healthz, /status, /windows, /metrics"),
	CLI_STRING(0, "admin-token-file", struct proxy_opts, admin_token_file, "FILE", "the admin listener's bearer token"),
	CLI_STRING(0, "listen-fds", struct proxy_opts, listen_fds, "N", "use the N listening sockets inherited on fds 3.. (one per worker) instead of binding ADDR"),
	CLI_STRING(0, "admin-fd", struct proxy_opts, admin_fd, "FD", "use the inherited listening socket FD as the admin listener (--admin names its address)"),
	CLI_STRING(0, "counters-from", struct proxy_opts, counters_from, "FILE", "start the counters from a previous proxy's /windows document (unusable: logged, from 0)"),
	CLI_STRING(0, "workers", struct proxy_opts, workers, "N", "worker threads, 1 to 64 (default: one per core)"),
	CLI_STRING(0, "access-log", struct proxy_opts, access_log, "FILE", "one JSON line per request"),
	CLI_STRING(0, "max-body", struct proxy_opts, max_body, "SIZE", "the largest request body (10Mi; 0 = no limit)"),
	CLI_STRING(0, "header-timeout", struct proxy_opts, header_timeout, "DUR", DUR_HELP("a request head must arrive within")),
	CLI_STRING(0, "idle-timeout", struct proxy_opts, idle_timeout, "DUR", DUR_HELP("a keep-alive connection may idle for")),
	CLI_STRING(0, "body-timeout", struct proxy_opts, body_timeout, "DUR", DUR_HELP("the longest pause inside a request body")),
	CLI_STRING(0, "upstream-timeout", struct proxy_opts, upstream_timeout, "DUR", DUR_HELP("an upstream must answer within")),
	CLI_STRING(0, "connect-timeout", struct proxy_opts, connect_timeout, "DUR", DUR_HELP("an upstream connect must succeed within")),
	CLI_STRING(0, "tunnel-timeout", struct proxy_opts, tunnel_timeout, "DUR", DUR_HELP("an idle upgraded connection lasts")),
	CLI_STRING(0, "drain-timeout", struct proxy_opts, drain_timeout, "DUR", DUR_HELP("at SIGTERM, requests in flight may finish within")),
	CLI_STRING(0, "grace", struct proxy_opts, grace, "DUR", "at SIGTERM, go on serving this long with /healthz answering 503, so that a load balancer takes this proxy out before it stops listening (default 0)"),
	CLI_STRING(0, "forward-headers", struct proxy_opts, forward_headers, "all|none|LIST", "the X-Forwarded-* and Via headers the proxy sets"),
	CLI_STRING(0, "trusted-proxies", struct proxy_opts, trusted_proxies, "CIDR,...", "peers whose X-Forwarded-* are kept"),
	CLI_BOOL(0, "await-routes", struct proxy_opts, await_routes, "start without a table: ADDR refuses connections and /healthz is 503 until one is pushed by PUT /routes (FILE is written, not read)"),
	CLI_BOOL(0, "no-master", struct proxy_opts, no_master, "one process that binds ADDR itself, no master holding the listeners (debugging)"),
	CLI_END,
};

/*
 * The serving child's command line: ours (as given, before the parser
 * reorders argv) with `--listen-fds N --workers N` after it, which win over
 * a --workers given before. NULL-terminated; the caller frees the array
 * and the two numbers (the last entries before NULL).
 */
static char **child_argv(int argc, char **argv, int n)
{
	char **v = xcalloc((size_t)argc + 6, sizeof(*v));
	int k = 0;

	v[k++] = program_invocation_name;
	for (int i = 0; i < argc; i++)
		v[k++] = argv[i]; /* argv[0] is "proxy" */
	v[k++] = (char *)"--listen-fds";
	v[k++] = xasprintf("%d", n);
	v[k++] = (char *)"--workers";
	v[k++] = xasprintf("%d", n);
	return v;
}

static void child_argv_free(char **v, int argc)
{
	free(v[argc + 2]);
	free(v[argc + 4]);
	free(v);
}

/* the master (src/proxy/master.c): holds the listeners, runs the proxy as its child */
static int run_master(const struct proxy_config *cfg, int argc, char **given)
{
	struct gerr err;
	char **args = child_argv(argc, given, cfg->workers);
	int r = proxy_master_run(cfg, "/proc/self/exe", args, &err);

	child_argv_free(args, argc);
	if (r == -2)
		return cli_error("%s", err.msg);
	if (r < 0) {
		fprintf(stderr, "error: %s\n", err.msg);
		return EXIT_FAILED;
	}
	return r;
}

static int run_proxy(int argc, char **argv, struct cli_ctx *ctx, char **given)
{
	struct proxy_config cfg;
	struct proxy_opts o = { 0 };
	const char *workers, *ht, *it, *ut, *dt, *bt, *tt, *ct, *maxbody, *fwd;
	int npos, r;
	struct gerr err;
	struct {
		const char *flag, *val;
		uint64_t *dst;
	} durs[8];

	proxy_config_defaults(&cfg);
	if ((npos = cli_parse_opts(ctx->cmd, argc, argv, ctx, &o)) < 0)
		return EXIT_USAGE;
	if (npos)
		return cli_error("proxy: unexpected argument '%s'", argv[0]);
	if (o.listen)
		cfg.listen = o.listen;
	if (o.routes)
		cfg.routes_path = o.routes;
	if (o.admin)
		cfg.admin = o.admin;
	if (o.access_log)
		cfg.access_log = o.access_log;
	if (o.trusted_proxies)
		cfg.trusted_proxies = o.trusted_proxies;
	if (o.admin_token_file)
		cfg.admin_token_file = o.admin_token_file;
	cfg.counters_from = o.counters_from;
	cfg.await_routes = o.await_routes;
	workers = o.workers, ht = o.header_timeout, it = o.idle_timeout, ut = o.upstream_timeout;
	dt = o.drain_timeout, bt = o.body_timeout, tt = o.tunnel_timeout, ct = o.connect_timeout;
	maxbody = o.max_body, fwd = o.forward_headers;
	if (!cfg.listen)
		return cli_error("--listen: required (e.g. --listen 127.0.0.1:8080)");
	if (!cfg.routes_path)
		return cli_error("--routes: required (a JSON route table)");
	if (workers) {
		char *end;
		long n = strtol(workers, &end, 10);
		if (*end || n < 1 || n > 64)
			return cli_error("--workers: '%s' is not a number from 1 to 64", workers);
		cfg.workers = (int)n;
	}
	if (o.listen_fds) {
		char *end;
		long n = strtol(o.listen_fds, &end, 10);
		if (*end || n < 1 || n > 64)
			return cli_error("--listen-fds: '%s' is not a number from 1 to 64", o.listen_fds);
		if (workers && n != cfg.workers)
			return cli_error("--listen-fds: %ld sockets for --workers %d (one socket per worker)", n, cfg.workers);
		cfg.listen_fds = cfg.workers = (int)n;
	}
	if (o.admin_fd) {
		char *end;
		long n = strtol(o.admin_fd, &end, 10);
		if (*end || n < 3 || n > 1024)
			return cli_error("--admin-fd: '%s' is not a file descriptor from 3 to 1024", o.admin_fd);
		if (!cfg.admin)
			return cli_error("--admin-fd: needs --admin (the address of the socket)");
		cfg.admin_fd = (int)n;
	}
	durs[0].flag = "--header-timeout", durs[0].val = ht, durs[0].dst = &cfg.header_timeout_ms;
	durs[1].flag = "--idle-timeout", durs[1].val = it, durs[1].dst = &cfg.idle_timeout_ms;
	durs[2].flag = "--upstream-timeout", durs[2].val = ut, durs[2].dst = &cfg.upstream_timeout_ms;
	durs[3].flag = "--drain-timeout", durs[3].val = dt, durs[3].dst = &cfg.drain_timeout_ms;
	durs[4].flag = "--body-timeout", durs[4].val = bt, durs[4].dst = &cfg.body_timeout_ms;
	durs[5].flag = "--tunnel-timeout", durs[5].val = tt, durs[5].dst = &cfg.tunnel_timeout_ms;
	durs[6].flag = "--connect-timeout", durs[6].val = ct, durs[6].dst = &cfg.connect_timeout_ms;
	durs[7].flag = "--grace", durs[7].val = o.grace, durs[7].dst = &cfg.grace_ms;
	if (maxbody) {
		int64_t n;
		if (parse_size(maxbody, &n) < 0 || n < 0)
			return cli_error("--max-body: '%s' is not a size (e.g. 10Mi, 1048576; 0 = no limit)", maxbody);
		cfg.max_body = (uint64_t)n;
	}
	if (fwd) {
		char bad[80];
		int bad_list = proxy_parse_forward_headers(fwd, &cfg.forward_headers, bad, sizeof(bad));
		if (bad_list && !strcasecmp(bad, "none"))
			return cli_error("--forward-headers: 'none' cannot be combined with header names");
		if (bad_list)
			return cli_error("--forward-headers: '%s' " PROXY_FWD_EXPECTED, bad);
	}
	for (size_t i = 0; i < ARRAY_SIZE(durs); i++)
		if (durs[i].val && parse_ms(durs[i].val, durs[i].dst) < 0)
			return cli_error("%s: '%s' is not a duration (e.g. 10, 0.5, 250ms, 2m)",
					 durs[i].flag, durs[i].val);

	if (!cfg.listen_fds && !o.no_master)
		return run_master(&cfg, argc, given);
	r = proxy_run(&cfg, &err);
	if (r == -2)
		return cli_error("%s", err.msg);
	if (r < 0) {
		fprintf(stderr, "error: %s\n", err.msg);
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	/* argv as given, for the master's child: cli_parse_opts reorders it */
	char **given = xcalloc((size_t)argc + 1, sizeof(*given));
	int r;

	memcpy(given, argv, (size_t)argc * sizeof(*given));
	r = run_proxy(argc, argv, ctx, given);
	free(given);
	return r;
}

const struct cli_cmd cli_cmd_proxy = {
	.name = "proxy",
	.usage = "gantry proxy --listen ADDR --routes FILE [--admin ADDR] [--workers N] [--listen-fds N]\n"
		 "       [--no-master] [--access-log FILE] [--max-body SIZE] [--header-timeout DUR]\n"
		 "       [--idle-timeout DUR] [--body-timeout DUR] [--upstream-timeout DUR]\n"
		 "       [--connect-timeout DUR] [--tunnel-timeout DUR] [--drain-timeout DUR] [--grace DUR]\n"
		 "       [--forward-headers all|none|LIST] [--trusted-proxies CIDR,...]\n"
		 "       [--admin-token-file FILE] [--counters-from FILE] [--await-routes]",
	.summary = "run the HTTP reverse proxy (SIGHUP reloads FILE, SIGTERM drains and stops)",
	.options = proxy_options,
	.run = run,
};
