/*
 * gantry logs SVC --env E [--revision N] [-f] [--tail N]: reads the replica
 * log files directly (HOME/logs/SVC.ENV/REV-REPLICA.log), so it works when
 * the daemon is down too.
 */
#include "common.h"
#include "cli/client.h"
#include "runtime/runtime.h"
#include <dirent.h>

struct logs_opts {
	const char *env;
	long revision, tail;
	bool follow;
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	struct logs_opts o = { .tail = 100 };
	const char *svc, *env;
	char *home = NULL, *dir = NULL, **paths = NULL;
	size_t n = 0;
	int ret;
	DIR *d;
	struct dirent *de;

	if ((ret = client_parse_target(ctx, argc, argv, &o, &o.env)))
		return ret;
	/* the files are on the daemon's host; the API does not carry them */
	if (client_api_url())
		return cli_error("gantry logs reads HOME/logs on the daemon's host: not available over GANTRY_API "
				 "(unset it and run gantry logs there)");
	svc = argv[0];
	env = o.env;
	home = cli_home(ctx);
	dir = xasprintf("%s/logs/%s.%s", home, svc, env);
	d = opendir(dir);
	if (!d) {
		fprintf(stderr, "error: no logs for %s@%s in %s\n", svc, env, home);
		ret = EXIT_FAILED;
		goto out;
	}
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (len < 5 || strcmp(de->d_name + len - 4, ".log"))
			continue;
		if (o.revision && strtol(de->d_name, NULL, 10) != o.revision)
			continue;
		paths = xrealloc(paths, (n + 1) * sizeof(*paths));
		paths[n++] = xasprintf("%s/%s", dir, de->d_name);
	}
	closedir(d);
	if (n) /* (qsort of a NULL array is undefined) */
		qsort(paths, n, sizeof(*paths), cmp_str);
	if (!n && !o.follow) {
		char rev[32] = "";
		if (o.revision)
			snprintf(rev, sizeof(rev), " revision %ld", o.revision);
		fprintf(stderr, "error: no logs for %s@%s%s\n", svc, env, rev);
		ret = EXIT_FAILED;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (n > 1)
			printf("==> %s <==\n", strrchr(paths[i], '/') + 1);
		fflush(stdout);
		logfile_tail(paths[i], (int)MIN(o.tail, (long)INT_MAX), stdout);
	}
	fflush(stdout);
	if (o.follow) {
		client_catch_stop();
		logfile_follow((const char **)paths, n, stdout, &client_stop);
	}
out:
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
	free(dir);
	free(home);
	return ret;
}

/* -f is the global spec flag elsewhere; here it means follow (--file names the spec) */
static const struct cli_option logs_options[] = {
	CLI_STRING('e', "env", struct logs_opts, env, "ENV", "the environment"),
	CLI_INT(0, "revision", struct logs_opts, revision, "N", 1, 0, "only revision N's replicas"),
	CLI_BOOL('f', "follow", struct logs_opts, follow, "keep printing what they write until interrupted"),
	CLI_INT('n', "tail", struct logs_opts, tail, "N", 0, 0, "start with the last N lines of each (default 100)"),
	CLI_END,
};

const struct cli_cmd cli_cmd_logs = {
	.name = "logs",
	.usage = "gantry logs SERVICE --env ENV [--revision N] [-f] [--tail N]",
	.summary = "print (and follow) the replicas' stdout and stderr",
	.options = logs_options,
	.run = run,
};
