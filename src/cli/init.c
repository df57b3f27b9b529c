/*
 * gantry init — write a commented starter spec that validates as is.
 */
#include "common.h"
#include "cli/cli.h"
#include "core/spec.h"
#include <fcntl.h>

struct init_opts {
	bool force;
};

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	struct init_opts o = { 0 };
	int npos, fd = -1, ret = EXIT_USAGE;
	char *path = NULL;
	size_t len = strlen(spec_starter), off = 0;

	if ((npos = cli_parse_opts(ctx->cmd, argc, argv, ctx, &o)) < 0)
		return EXIT_USAGE;
	if (npos)
		return cli_error("init: unexpected argument '%s' (the file is given with -f FILE)", argv[0]);
	path = cli_spec_path(ctx);
	/* O_EXCL: refuse to overwrite, without a window between check and create */
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (o.force ? O_TRUNC : O_EXCL), 0644);
	if (fd < 0) {
		if (errno == EEXIST)
			cli_error("%s already exists (use --force to overwrite it)", path);
		else
			cli_error("%s: cannot create: %s", path, strerror(errno));
		goto out;
	}
	while (off < len) {
		ssize_t n = write(fd, spec_starter + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			cli_error("%s: cannot write: %s", path, strerror(errno));
			goto out;
		}
		off += (size_t)n;
	}
	if (close(fd) < 0) {
		fd = -1;
		cli_error("%s: cannot write: %s", path, strerror(errno));
		goto out;
	}
	fd = -1;
	printf("wrote %s (check it with 'gantry validate', deploy with 'gantry deploy web --env staging')\n", path);
	ret = EXIT_OK;
out:
	if (fd >= 0)
		close(fd);
	free(path);
	return ret;
}

static const struct cli_option init_options[] = {
	CLI_BOOL(0, "force", struct init_opts, force, "overwrite the file if it exists"),
	CLI_END,
};

const struct cli_cmd cli_cmd_init = {
	.name = "init",
	.usage = "gantry init [-f FILE] [--force]",
	.summary = "write a starter gantry.yaml (refuses to overwrite without --force)",
	.options = init_options,
	.run = run,
};
