/*
 * gantry proxy — run the built-in HTTP/1.1 reverse proxy in the foreground.
 */
#include "common.h"
#include "cli/cli.h"
#include "proxy/proxy.h"
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

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	struct proxy_config cfg;
	const char *workers = NULL, *ht = NULL, *it = NULL, *ut = NULL, *dt = NULL;
	const char *bt = NULL, *tt = NULL, *ct = NULL, *maxbody = NULL, *fwd = NULL;
	const char **pos;
	int npos, r;
	struct gerr err;
	struct {
		const char *flag, *val;
		uint64_t *dst;
	} durs[7];
	const struct cli_opt opts[] = {
		{ "listen", 'l', OPT_STRING, &cfg.listen },
		{ "routes", 'r', OPT_STRING, &cfg.routes_path },
		{ "admin", 0, OPT_STRING, &cfg.admin },
		{ "workers", 0, OPT_STRING, &workers },
		{ "header-timeout", 0, OPT_STRING, &ht },
		{ "idle-timeout", 0, OPT_STRING, &it },
		{ "upstream-timeout", 0, OPT_STRING, &ut },
		{ "drain-timeout", 0, OPT_STRING, &dt },
		{ "body-timeout", 0, OPT_STRING, &bt },
		{ "tunnel-timeout", 0, OPT_STRING, &tt },
		{ "connect-timeout", 0, OPT_STRING, &ct },
		{ "max-body", 0, OPT_STRING, &maxbody },
		{ "access-log", 0, OPT_STRING, &cfg.access_log },
		{ "forward-headers", 0, OPT_STRING, &fwd },
		{ "trusted-proxies", 0, OPT_STRING, &cfg.trusted_proxies },
		{ "admin-token-file", 0, OPT_STRING, &cfg.admin_token_file },
		{ 0 },
	};

	proxy_config_defaults(&cfg);
	if (cli_parse(argc, argv, opts, ctx, &pos, &npos) < 0)
		return EXIT_USAGE;
	if (npos)
		return cli_error("proxy: unexpected argument '%s'", pos[0]);
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
	durs[0].flag = "--header-timeout", durs[0].val = ht, durs[0].dst = &cfg.header_timeout_ms;
	durs[1].flag = "--idle-timeout", durs[1].val = it, durs[1].dst = &cfg.idle_timeout_ms;
	durs[2].flag = "--upstream-timeout", durs[2].val = ut, durs[2].dst = &cfg.upstream_timeout_ms;
	durs[3].flag = "--drain-timeout", durs[3].val = dt, durs[3].dst = &cfg.drain_timeout_ms;
	durs[4].flag = "--body-timeout", durs[4].val = bt, durs[4].dst = &cfg.body_timeout_ms;
	durs[5].flag = "--tunnel-timeout", durs[5].val = tt, durs[5].dst = &cfg.tunnel_timeout_ms;
	durs[6].flag = "--connect-timeout", durs[6].val = ct, durs[6].dst = &cfg.connect_timeout_ms;
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

	r = proxy_run(&cfg, &err);
	if (r == -2)
		return cli_error("%s", err.msg);
	if (r < 0) {
		fprintf(stderr, "error: %s\n", err.msg);
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

const struct cli_cmd cli_cmd_proxy = {
	.name = "proxy",
	.usage = "gantry proxy --listen ADDR --routes FILE [--admin ADDR] [--workers N]\n"
		 "       [--access-log FILE] [--max-body SIZE] [--header-timeout DUR]\n"
		 "       [--idle-timeout DUR] [--body-timeout DUR] [--upstream-timeout DUR]\n"
		 "       [--connect-timeout DUR] [--tunnel-timeout DUR] [--drain-timeout DUR]\n"
		 "       [--forward-headers all|none|LIST] [--trusted-proxies CIDR,...]\n"
		 "       [--admin-token-file FILE]",
	.summary = "run the HTTP reverse proxy (SIGHUP reloads FILE, SIGTERM drains and stops)",
	.run = run,
};
