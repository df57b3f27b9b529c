#include "common.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "daemon/daemon.h"
#include "api/api.h"
#include "api/tcp.h"
#include "proxy/proxy.h"
#include "util/parse.h"
#include "util/cidr.h"
#include <sys/stat.h>

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *listen = NULL, *admin = NULL, *backoff = NULL, *api = NULL, *fwd = NULL, *aexp = NULL, **pos;
	const char *trusted = NULL;
	struct cli_opt opts[] = {
		{ "listen", 0, OPT_STRING, &listen },
		{ "admin", 0, OPT_STRING, &admin },
		{ "api", 0, OPT_STRING, &api },
		{ "restart-backoff", 0, OPT_STRING, &backoff },
		{ "forward-headers", 0, OPT_STRING, &fwd },
		{ "audit-export", 0, OPT_STRING, &aexp },
		{ "trusted-proxies", 0, OPT_STRING, &trusted },
		{ 0 },
	};
	struct daemon_opts o = { .api_hooks = &api_daemon_hooks };
	struct gerr err;
	char *home, real[PATH_MAX], *spec_path = NULL, *spec_text = NULL, *aexp_abs = NULL;
	int npos, ret;

	if (cli_parse(argc, argv, opts, ctx, &pos, &npos) < 0)
		return EXIT_USAGE;
	if (npos)
		return cli_error("gantry serve: unexpected argument '%s'", pos[0]);
	o.restart_backoff_ms = 10000;
	if (backoff && (parse_duration_ms(backoff, &o.restart_backoff_ms) < 0 || o.restart_backoff_ms <= 0))
		return cli_error("--restart-backoff: invalid duration '%s' (e.g. 10s, 500ms)", backoff);
	if (api && api_tcp_check_addr(api, &err) < 0)
		return cli_error("%s", err.msg);
	if (fwd) {
		unsigned bits;
		char bad[80];
		if (proxy_parse_forward_headers(fwd, &bits, bad, sizeof(bad)) < 0)
			return cli_error("--forward-headers: '%s' " PROXY_FWD_EXPECTED, bad);
	}
	if (trusted) {
		struct cidr_set set = { 0 };
		char bad[80];
		int bad_list = cidr_set_add_list(&set, trusted, bad, sizeof(bad));
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
	o.listen = listen;
	o.admin = admin;
	o.api = api;
	o.forward_headers = fwd;
	/* the daemon keeps it for its whole life: absolute, whatever the cwd later */
	if (aexp && *aexp != '/') {
		char cwd[PATH_MAX];
		if (!getcwd(cwd, sizeof(cwd))) {
			fprintf(stderr, "error: --audit-export: %s\n", strerror(errno));
			ret = EXIT_FAILED;
			goto out;
		}
		aexp_abs = xasprintf("%s/%s", cwd, aexp);
		aexp = aexp_abs;
	}
	o.audit_export = aexp;
	o.trusted_proxies = trusted;
	ret = daemon_run(&o);
out:
	free(aexp_abs);
	free(spec_path);
	free(spec_text);
	return ret;
}

const struct cli_cmd cli_cmd_serve = {
	.name = "serve",
	.usage = "gantry serve [-f FILE] [--listen 127.0.0.1:8080] [--admin 127.0.0.1:9090] [--restart-backoff 10s] [--api HOST:PORT]\n"
		 "       [--forward-headers all|none|LIST] [--trusted-proxies CIDR,...] [--audit-export FILE] [--home DIR]",
	.summary = "run the controller, the proxy and the replicas",
	.run = run,
};
