#include "common.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "daemon/daemon.h"
#include "daemon/disk.h"
#include "api/api.h"
#include "api/tcp.h"
#include "proxy/proxy.h"
#include "util/cidr.h"
#include <sys/stat.h>

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	struct daemon_opts o = { .restart_backoff_ms = 10000, .api_hooks = &api_daemon_hooks };
	struct gerr err;
	char *home, real[PATH_MAX], *spec_path = NULL, *spec_text = NULL, *aexp_abs = NULL, *takeover = NULL;
	int npos, ret;

	if ((npos = cli_parse_opts(ctx->cmd, argc, argv, ctx, &o)) < 0)
		return EXIT_USAGE;
	if (npos)
		return cli_error("gantry serve: unexpected argument '%s'", argv[0]);
	if (o.api && api_tcp_check_addr(o.api, &err) < 0)
		return cli_error("%s", err.msg);
	if (o.flags_listen && api_tcp_check_addr(o.flags_listen, &err) < 0)
		return cli_error("--flags-listen: invalid address '%s' (want HOST:PORT with an IPv4 address, or [IPv6]:PORT)",
				 o.flags_listen);
	if (o.low_disk) {
		struct disk_threshold t;
		if (disk_threshold_parse(o.low_disk, &t, &err) < 0)
			return cli_error("%s", err.msg);
	}
	if (o.forward_headers) {
		unsigned bits;
		char bad[80];
		if (proxy_parse_forward_headers(o.forward_headers, &bits, bad, sizeof(bad)) < 0)
			return cli_error("--forward-headers: '%s' " PROXY_FWD_EXPECTED, bad);
	}
	if (o.trusted_proxies) {
		struct cidr_set set = { 0 };
		char bad[80];
		int bad_list = cidr_set_add_list(&set, o.trusted_proxies, bad, sizeof(bad));
		cidr_set_release(&set);
		if (bad_list < 0)
			return cli_error("--trusted-proxies: '%s' " CIDR_EXPECTED, bad);
	}
	/* the spec beside serve: applied when the controller stores none yet */
	spec_path = cli_spec_path(ctx);
	if (ctx->spec_path || access(spec_path, F_OK) == 0) {
		FILE *f = fopen(spec_path, "rb");
		size_t cap = 4 << 20;
		if (!f) {
			fprintf(stderr, "error: -f %s: %s\n", spec_path, strerror(errno));
			free(spec_path);
			return EXIT_USAGE;
		}
		spec_text = xmalloc(cap + 2);
		o.spec_len = fread(spec_text, 1, cap + 1, f);
		fclose(f);
		if (o.spec_len > cap) {
			fprintf(stderr, "error: -f %s: larger than %zu bytes\n", spec_path, cap);
			ret = EXIT_USAGE;
			goto out;
		}
		spec_text[o.spec_len] = 0;
		o.spec_name = spec_path;
		o.spec_text = spec_text;
		o.spec_actor = client_user();
	}
	home = cli_home(ctx);
	if (mkdir(home, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "error: --home: cannot create %s: %s\n", home, strerror(errno));
		free(home);
		ret = EXIT_FAILED;
		goto out;
	}
	/* the daemon works with an absolute home: replicas and the proxy get it */
	if (!realpath(home, real)) {
		fprintf(stderr, "error: --home: %s: %s\n", home, strerror(errno));
		free(home);
		ret = EXIT_FAILED;
		goto out;
	}
	free(home);
	o.home = real;
	/* set by a controller upgrading to us (daemon/upgrade.c); nothing we
	 * start may inherit it */
	if (getenv("GANTRY_TAKEOVER")) {
		takeover = xstrdup(getenv("GANTRY_TAKEOVER"));
		unsetenv("GANTRY_TAKEOVER");
		o.takeover = takeover;
	}
	/* the daemon keeps it for its whole life: absolute, whatever the cwd later */
	if (o.audit_export && *o.audit_export != '/') {
		char cwd[PATH_MAX];
		if (!getcwd(cwd, sizeof(cwd))) {
			fprintf(stderr, "error: --audit-export: %s\n", strerror(errno));
			ret = EXIT_FAILED;
			goto out;
		}
		aexp_abs = xasprintf("%s/%s", cwd, o.audit_export);
		o.audit_export = aexp_abs;
	}
	ret = daemon_run(&o);
out:
	free(takeover);
	free(aexp_abs);
	free(spec_path);
	free(spec_text);
	return ret;
}

/* the flags are daemon_opts' own fields */
static const struct cli_option serve_options[] = {
	CLI_STRING(0, "listen", struct daemon_opts, listen, "ADDR", "the proxy's address (default 127.0.0.1:8080)"),
	CLI_STRING(0, "admin", struct daemon_opts, admin, "ADDR", "the proxy's admin listener (default 127.0.0.1:9090)"),
	CLI_STRING(0, "api", struct daemon_opts, api, "HOST:PORT", "the API over TCP too (HTTP, an API token on every request)"),
	CLI_STRING(0, "flags-listen", struct daemon_opts, flags_listen, "HOST:PORT",
		   "serve feature flags (OFREP) there, apart from the API; replicas are told it"),
	CLI_DURATION(0, "restart-backoff", struct daemon_opts, restart_backoff_ms, "DUR", 1, 0,
		     "the first restart delay of a crashed replica (default 10s, doubling to 5m)"),
	CLI_STRING(0, "forward-headers", struct daemon_opts, forward_headers, "all|none|LIST",
		   "the X-Forwarded-* headers, X-Request-Id and Via the proxy sets (default all)"),
	CLI_STRING(0, "audit-export", struct daemon_opts, audit_export, "FILE", "append every audit entry to FILE too"),
	CLI_STRING(0, "trusted-proxies", struct daemon_opts, trusted_proxies, "CIDR,...",
		   "clients whose X-Forwarded-* headers the proxy keeps (default none)"),
	CLI_STRING(0, "low-disk", struct daemon_opts, low_disk, "PCT|SIZE",
		   "warn below this much free space on HOME's filesystem (default 5%; 500Mi; 0% off)"),
	CLI_END,
};

const struct cli_cmd cli_cmd_serve = {
	.name = "serve",
	.usage = "gantry serve [-f FILE] [--listen 127.0.0.1:8080] [--admin 127.0.0.1:9090] [--restart-backoff 10s] [--api HOST:PORT]\n"
		 "       [--flags-listen HOST:PORT] [--forward-headers all|none|LIST] [--trusted-proxies CIDR,...] [--audit-export FILE] [--low-disk 5%] [--home DIR]",
	.summary = "run the controller, the proxy and the replicas",
	.options = serve_options,
	.run = run,
};
