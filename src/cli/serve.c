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

/* daemon_opts, and the flags the CLI turns into its fields */
struct serve_opts {
	struct daemon_opts d;
	struct cli_multi proxy_peer;
	const char *proxy_peer_token_file;
};

/* the token file's first line (16 to 100 printable characters), or NULL after an error */
static char *read_token_file(const char *path)
{
	char buf[256];
	size_t n;
	FILE *f = fopen(path, "re");
	if (!f) {
		cli_error("--proxy-peer-token-file: %s: %s", path, strerror(errno));
		return NULL;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	n = strcspn(buf, "\r\n");
	buf[n] = 0;
	if (n < 16 || n > 100 || strcspn(buf, " \t") != n) {
		explicit_bzero(buf, sizeof(buf));
		cli_error("--proxy-peer-token-file: %s: not a token (16 to 100 printable characters)", path);
		return NULL;
	}
	{
		char *t = xstrdup(buf);
		explicit_bzero(buf, sizeof(buf));
		return t;
	}
}

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	struct serve_opts so = { .d = { .restart_backoff_ms = 10000, .api_hooks = &api_daemon_hooks } };
	struct daemon_opts o;
	char *peer_token = NULL;
	struct gerr err;
	char *home, real[PATH_MAX], *spec_path = NULL, *spec_text = NULL, *aexp_abs = NULL, *takeover = NULL;
	int npos, ret;

	if ((npos = cli_parse_opts(ctx->cmd, argc, argv, ctx, &so)) < 0)
		return EXIT_USAGE;
	o = so.d;
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
	if (so.proxy_peer_token_file && !so.proxy_peer.n) {
		free(so.proxy_peer.items);
		return cli_error("--proxy-peer-token-file: no --proxy-peer to use it with");
	}
	for (size_t i = 0; i < so.proxy_peer.n; i++) {
		const char *a = so.proxy_peer.items[i], *colon = strrchr(a, ':');
		if (!colon || colon == a || !colon[1] || strlen(a) > 120 || strcspn(a, "/ ") != strlen(a)) {
			free(so.proxy_peer.items);
			return cli_error("--proxy-peer: '%s' is not HOST:PORT (a proxy's admin listener)", a);
		}
	}
	if (so.proxy_peer_token_file && !(peer_token = read_token_file(so.proxy_peer_token_file))) {
		free(so.proxy_peer.items);
		return EXIT_USAGE;
	}
	o.proxy_peers = so.proxy_peer.items;
	o.nproxy_peers = so.proxy_peer.n;
	o.proxy_peer_token = peer_token;
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
	free(so.proxy_peer.items);
	if (peer_token)
		explicit_bzero(peer_token, strlen(peer_token));
	free(peer_token);
	free(spec_path);
	free(spec_text);
	return ret;
}

/* the flags are daemon_opts' own fields */
static const struct cli_option serve_options[] = {
	CLI_STRING(0, "listen", struct serve_opts, d.listen, "ADDR", "the proxy's address (default 127.0.0.1:8080)"),
	CLI_STRING(0, "admin", struct serve_opts, d.admin, "ADDR", "the proxy's admin listener (default 127.0.0.1:9090)"),
	CLI_STRING(0, "api", struct serve_opts, d.api, "HOST:PORT", "the API over TCP too (HTTP, an API token on every request)"),
	CLI_STRING(0, "flags-listen", struct serve_opts, d.flags_listen, "HOST:PORT",
		   "serve feature flags (OFREP) there, apart from the API; replicas are told it"),
	CLI_DURATION(0, "restart-backoff", struct serve_opts, d.restart_backoff_ms, "DUR", 1, 0,
		     "the first restart delay of a crashed replica (default 10s, doubling to 5m)"),
	CLI_STRING(0, "forward-headers", struct serve_opts, d.forward_headers, "all|none|LIST",
		   "the X-Forwarded-* headers, X-Request-Id and Via the proxy sets (default all)"),
	CLI_STRING(0, "audit-export", struct serve_opts, d.audit_export, "FILE", "append every audit entry to FILE too"),
	CLI_STRING(0, "trusted-proxies", struct serve_opts, d.trusted_proxies, "CIDR,...",
		   "clients whose X-Forwarded-* headers the proxy keeps (default none)"),
	CLI_STRING(0, "low-disk", struct serve_opts, d.low_disk, "PCT|SIZE",
		   "warn below this much free space on HOME's filesystem (default 5%; 500Mi; 0% off)"),
	CLI_MULTI(0, "proxy-peer", struct serve_opts, proxy_peer, "ADDR",
		  "a remote proxy's admin listener: every table is pushed to it, its windows summed (repeatable)"),
	CLI_STRING(0, "proxy-peer-token-file", struct serve_opts, proxy_peer_token_file, "FILE",
		   "the bearer token of the --proxy-peer admin listeners"),
	CLI_END,
};

const struct cli_cmd cli_cmd_serve = {
	.name = "serve",
	.usage = "gantry serve [-f FILE] [--listen 127.0.0.1:8080] [--admin 127.0.0.1:9090] [--restart-backoff 10s] [--api HOST:PORT]\n"
		 "       [--flags-listen HOST:PORT] [--forward-headers all|none|LIST] [--trusted-proxies CIDR,...] [--audit-export FILE] [--low-disk 5%] [--home DIR]\n"
		 "       [--proxy-peer ADDR]... [--proxy-peer-token-file FILE]",
	.summary = "run the controller, the proxy and the replicas",
	.options = serve_options,
	.run = run,
};
