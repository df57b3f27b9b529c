/*
 * gantry init — write a commented starter spec that validates as is.
 */
#include "common.h"
#include "cli/cli.h"
#include "core/spec.h"
#include <fcntl.h>

static int run(int argc, char **argv, struct cli_ctx *ctx)
{
	bool force = false;
	const struct cli_opt opts[] = {
		{ "force", 0, OPT_FLAG, &force },
		{ NULL, 0, OPT_FLAG, NULL },
	};
	const char **pos;
	int npos, fd = -1, ret = EXIT_USAGE;
	char *path = NULL;
	size_t len = strlen(spec_starter), off = 0;

	if (cli_parse(argc, argv, opts, ctx, &pos, &npos) < 0)
		return EXIT_USAGE;
	if (npos) {
		cli_error("init: unexpected argument '%s' (the file is given with -f FILE)", pos[0]);
		goto out;
	}
	path = cli_spec_path(ctx);
	/* O_EXCL: refuse to overwrite, without a window between check and create */
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL), 0644);
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
	if (npos)
		free(pos);
	free(path);
	return ret;
}

const struct cli_cmd cli_cmd_init = {
	.name = "init",
	.usage = "gantry init [-f FILE] [--force]",
	.summary = "write a starter gantry.yaml (refuses to overwrite without --force)",
	.run = run,
};
