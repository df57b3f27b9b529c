#include "common.h"
#include "cli/spec_load.h"

int cli_load_spec(struct cli_ctx *ctx, struct spec **out)
{
	char *path = cli_spec_path(ctx);
	struct diags d = { 0 };
	int ret = EXIT_OK;

	*out = NULL;
	if (spec_load(path, out, &d) < 0) {
		diags_print(&d, stderr);
		ret = EXIT_USAGE;
	}
	diags_release(&d);
	free(path);
	return ret;
}
