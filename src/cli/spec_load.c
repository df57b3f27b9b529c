#include "common.h"
#include "cli/spec_load.h"
#include "secrets/sops.h"

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

int cli_spec_attach(struct cli_ctx *ctx, json_t *req)
{
	char *path = cli_spec_path(ctx), *text = NULL;
	FILE *f;
	size_t len;
	int ret = EXIT_OK;
	if (!(f = fopen(path, "rb"))) {
		fprintf(stderr, "error: %s: %s\n", path, strerror(errno));
		ret = EXIT_USAGE;
		goto out;
	}
	text = xmalloc(CLI_SPEC_MAX + 1);
	len = fread(text, 1, CLI_SPEC_MAX + 1, f);
	fclose(f);
	if (len > CLI_SPEC_MAX) {
		fprintf(stderr, "error: %s: larger than %d bytes\n", path, CLI_SPEC_MAX);
		ret = EXIT_USAGE;
		goto out;
	}
	json_object_set_new(req, "spec", json_pack("{s:s, s:s%}", "name", path, "text", text, len));
out:
	free(text);
	free(path);
	return ret;
}

int cli_sops_attach(const struct spec *spec, const char *env, json_t *req)
{
	const struct spec_env *e = spec_find_env(spec, env);
	struct sops_node *plain = NULL;
	struct gerr err;
	char *path, *text = NULL;
	FILE *f;
	size_t len;
	int ret = EXIT_OK;

	if (!e || !e->secrets_file)
		return EXIT_OK;
	path = e->secrets_file[0] == '/' ? xstrdup(e->secrets_file) : xasprintf("%s/%s", spec->dir, e->secrets_file);
	if (!(f = fopen(path, "rb"))) {
		ret = cli_error("environments.%s.secrets.file: %s: %s", env, path, strerror(errno));
		goto out;
	}
	text = xmalloc(SOPS_MAX_INPUT + 1);
	len = fread(text, 1, SOPS_MAX_INPUT + 1, f);
	fclose(f);
	if (len > SOPS_MAX_INPUT) {
		ret = cli_error("environments.%s.secrets.file: %s: larger than %u bytes", env, path, SOPS_MAX_INPUT);
		goto out;
	}
	/* a document that parses as plain YAML/JSON has no sops metadata: it is not encrypted */
	if (sops_tree_parse(text, len, sops_format_from_path(path), &plain, &err) == 0) {
		sops_node_free(plain);
		ret = cli_error("environments.%s.secrets.file: %s is not encrypted (no sops metadata): encrypt it "
				"(sops -e, or gantry secret sops-encrypt) to the controller's recipient (gantry secret "
				"recipient); nothing was sent", env, path);
		goto out;
	}
	json_object_set_new(req, "sops", json_pack("{s:s, s:s%}", "name", e->secrets_file, "text", text, len));
out:
	free(text);
	free(path);
	return ret;
}

bool cli_spec_present(const struct cli_ctx *ctx)
{
	char *path;
	bool present;
	if (ctx->spec_path)
		return true;
	path = cli_spec_path(ctx);
	present = access(path, F_OK) == 0;
	free(path);
	return present;
}

void cli_print_spec_diff(FILE *f, const json_t *diff)
{
	size_t i;
	json_t *r;
	json_array_foreach(diff, i, r) {
		const char *op = json_string_value(json_object_get(r, "op"));
		const char *cls = json_string_value(json_object_get(r, "class"));
		char *o = json_dumps(json_object_get(r, "old"), JSON_ENCODE_ANY | JSON_COMPACT);
		char *n = json_dumps(json_object_get(r, "new"), JSON_ENCODE_ANY | JSON_COMPACT);
		const char *path = json_string_value(json_object_get(r, "path"));
		if (op && !strcmp(op, "add"))
			fprintf(f, "  + %s: %s", path, n);
		else if (op && !strcmp(op, "remove"))
			fprintf(f, "  - %s: %s", path, o);
		else
			fprintf(f, "  ~ %s: %s -> %s", path, o, n);
		fprintf(f, "%s\n", cls && strcmp(cls, "config") ? " (policy)" : "");
		free(o);
		free(n);
	}
}
