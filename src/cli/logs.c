/*
 * gantry logs SVC --env E [--revision N] [-f] [--tail N]: reads the replica
 * log files directly (HOME/logs/SVC.ENV/REV-REPLICA.log), so it works when
 * the daemon is down too.
 */
#include "common.h"
#include "cli/client.h"
#include "runtime/runtime.h"
#include <dirent.h>
#include <signal.h>


static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	const char *env = NULL, *rev = NULL, *tail = NULL, **pos;
	bool follow = false;
	struct cli_opt opts[] = {
		{ "env", 'e', OPT_STRING, &env },
		{ "revision", 0, OPT_STRING, &rev },
		{ "follow", 0, OPT_FLAG, &follow },
		{ "tail", 'n', OPT_STRING, &tail },
		{ 0 },
	};
	char *home = NULL, *dir = NULL, **paths = NULL, *end;
	size_t n = 0;
	long ntail = 100, nrev = 0;
	int npos = 0, ret;
	DIR *d;
	struct dirent *de;

	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-f"))
			argv[i] = (char *)"--follow";
	if (cli_parse(argc, argv, opts, ctx, &pos, &npos) < 0)
		return EXIT_USAGE;
	if ((ret = client_need_svc_env("logs", pos, npos, env)))
		goto out;
	if (client_api_url()) {
		/* the files are on the daemon's host; the API does not carry them */
		ret = cli_error("gantry logs reads HOME/logs on the daemon's host: not available over GANTRY_API "
				"(unset it and run gantry logs there)");
		goto out;
	}
	if (tail && ((ntail = strtol(tail, &end, 10)) < 0 || *end || !*tail)) {
		ret = cli_error("--tail: '%s' is not a number of lines", tail);
		goto out;
	}
	if (rev && ((nrev = strtol(rev, &end, 10)) <= 0 || *end)) {
		ret = cli_error("--revision: '%s' is not a revision number", rev);
		goto out;
	}
	home = cli_home(ctx);
	dir = xasprintf("%s/logs/%s.%s", home, pos[0], env);
	d = opendir(dir);
	if (!d) {
		fprintf(stderr, "error: no logs for %s@%s in %s\n", pos[0], env, home);
		ret = EXIT_FAILED;
		goto out;
	}
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (len < 5 || strcmp(de->d_name + len - 4, ".log"))
			continue;
		if (nrev && strtol(de->d_name, NULL, 10) != nrev)
			continue;
		paths = xrealloc(paths, (n + 1) * sizeof(*paths));
		paths[n++] = xasprintf("%s/%s", dir, de->d_name);
	}
	closedir(d);
	qsort(paths, n, sizeof(*paths), cmp_str);
	if (!n && !follow) {
		fprintf(stderr, "error: no logs for %s@%s%s%s\n", pos[0], env, rev ? " revision " : "", rev ? rev : "");
		ret = EXIT_FAILED;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (n > 1)
			printf("==> %s <==\n", strrchr(paths[i], '/') + 1);
		fflush(stdout);
		logfile_tail(paths[i], (int)ntail, stdout);
	}
	fflush(stdout);
	if (follow) {
		client_catch_stop();
		logfile_follow((const char **)paths, n, stdout, &client_stop);
	}
out:
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
	free(dir);
	free(home);
	if (npos)
		free(pos);
	return ret;
}

const struct cli_cmd cli_cmd_logs = {
	.name = "logs",
	.usage = "gantry logs SERVICE --env ENV [--revision N] [-f] [--tail N]",
	.summary = "print (and follow) the replicas' stdout and stderr",
	.run = run,
};
