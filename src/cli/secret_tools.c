/*
 * gantry secret keygen [-o FILE]
 * gantry secret encrypt -r RECIPIENT... [-a] [-o OUT] [IN]
 * gantry secret decrypt -i IDENTITY_FILE [-o OUT] [IN]
 * gantry secret sops-encrypt -r RECIPIENT... [--encrypted-regex RE | --unencrypted-suffix S] [-o OUT] FILE
 * gantry secret sops-decrypt -i IDENTITY_FILE [--extract PATH] [-o OUT] FILE
 *
 * age-compatible plumbing (the `age` and `age-keygen` CLIs read and write
 * the same files) and SOPS files with age recipients. IN/FILE "-" or
 * absent: stdin; OUT absent: stdout. Files written get mode 0600.
 */
#include "common.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/secret_tools.h"
#include "secrets/age.h"
#include "secrets/sops.h"

struct tools_opts {
	struct cli_multi recipients;
	const char *identity;
	const char *output;
	const char *extract;
	const char *encrypted_regex;
	const char *unencrypted_suffix;
	bool armor;
};

#define O_RECIPIENT CLI_MULTI('r', "recipient", struct tools_opts, recipients, "RECIPIENT", \
			      "encrypt to this age recipient (age1…); repeat for more")
#define O_IDENTITY CLI_STRING('i', "identity", struct tools_opts, identity, "FILE", \
			      "the identity file (AGE-SECRET-KEY-1… lines, '#' comments)")
#define O_OUTPUT CLI_STRING('o', "output", struct tools_opts, output, "FILE", \
			    "write to FILE (mode 0600) instead of stdout")
#define O_ARMOR CLI_BOOL('a', "armor", struct tools_opts, armor, "the ASCII-armored (PEM) form")
#define O_EXTRACT CLI_STRING(0, "extract", struct tools_opts, extract, "PATH", \
			     "print only the value at PATH (a.b.c; a number indexes a list)")
#define O_ENC_REGEX CLI_STRING(0, "encrypted-regex", struct tools_opts, encrypted_regex, "RE", \
			       "encrypt only the values under keys matching RE")
#define O_UNENC_SUFFIX CLI_STRING(0, "unencrypted-suffix", struct tools_opts, unencrypted_suffix, "S", \
				  "leave the values under keys ending in S in clear (default _unencrypted)")

/*
 * Not -o/--output: in a command's own table that is the global -o
 * table|json (tests/unit/cli/test_opts.c). The subcommands take -o OUT as
 * age does (their tables shadow the global flag; these file tools print no
 * tables); `gantry secret SUBCOMMAND -h` lists it.
 */
const struct cli_option secret_tools_options[] = {
	O_RECIPIENT, O_IDENTITY, O_ARMOR, O_EXTRACT, O_ENC_REGEX, O_UNENC_SUFFIX, CLI_END,
};

#define U_KEYGEN "gantry secret keygen [-o FILE]"
#define U_ENCRYPT "gantry secret encrypt -r RECIPIENT... [-a] [-o OUT] [IN]"
#define U_DECRYPT "gantry secret decrypt -i IDENTITY_FILE [-o OUT] [IN]"
#define U_SOPS_ENCRYPT "gantry secret sops-encrypt -r RECIPIENT... [--encrypted-regex RE | --unencrypted-suffix S] " \
		       "[-o OUT] FILE"
#define U_SOPS_DECRYPT "gantry secret sops-decrypt -i IDENTITY_FILE [--extract PATH] [-o OUT] FILE"

const char secret_tools_usage[] = U_KEYGEN "\n" U_ENCRYPT "\n" U_DECRYPT "\n" U_SOPS_ENCRYPT "\n" U_SOPS_DECRYPT "\n";

#define TOOLS_MAX_INPUT AGE_MAX_INPUT

/* reads path ("-" or NULL: stdin) whole; *out owned (NUL-terminated), -1 after printing the error */
static int read_input(const char *path, size_t max, char **out, size_t *len)
{
	bool in = !path || !strcmp(path, "-");
	FILE *f = in ? stdin : fopen(path, "rb");
	size_t cap = 65536, n = 0;
	char *buf;
	if (!f)
		return cli_error("%s: %s", path, strerror(errno)), -1;
	buf = xmalloc(cap + 1);
	for (;;) {
		if (n == cap) {
			if (cap >= max) {
				age_secret_free(buf, cap);
				if (!in)
					fclose(f);
				return cli_error("%s: larger than %zu bytes", in ? "stdin" : path, max), -1;
			}
			size_t ncap = MIN(cap * 2, max);
			char *nb = xmalloc(ncap + 1);
			memcpy(nb, buf, n);
			age_secret_free(buf, cap);
			buf = nb;
			cap = ncap;
		}
		size_t k = fread(buf + n, 1, cap - n, f);
		n += k;
		if (k == 0)
			break;
	}
	bool bad = ferror(f);
	if (!in)
		fclose(f);
	if (bad) {
		age_secret_free(buf, cap);
		return cli_error("%s: read error", in ? "stdin" : path), -1;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

/* writes p to path (NULL: stdout; created 0600, excl: refuse an existing file); -1 after printing */
static int write_output(const char *path, const void *p, size_t len, bool excl)
{
	int fd = 1;
	if (path && strcmp(path, "-") != 0) {
		fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (excl ? O_EXCL : O_TRUNC), 0600);
		if (fd < 0)
			return cli_error("-o: %s: %s", path, strerror(errno)), -1;
	}
	const char *c = p;
	while (len) {
		ssize_t w = write(fd, c, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = errno;
			if (fd != 1)
				close(fd);
			return cli_error("%s: write: %s", path ? path : "stdout", strerror(e)), -1;
		}
		c += w;
		len -= (size_t)w;
	}
	if (fd != 1 && close(fd) < 0)
		return cli_error("%s: %s", path, strerror(errno)), -1;
	return 0;
}

static int keygen(const struct tools_opts *o)
{
	char *id = NULL, *rcp = NULL, created[32];
	struct gerr err;
	time_t now = time(NULL);
	struct tm tm;
	int rc = EXIT_FAILED;
	if (age_keygen(&id, &rcp, &err) < 0) {
		fprintf(stderr, "error: %s\n", err.msg);
		return EXIT_FAILED;
	}
	gmtime_r(&now, &tm);
	strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", &tm);
	char *text = xasprintf("# created: %s\n# public key: %s\n%s\n", created, rcp, id);
	if (write_output(o->output, text, strlen(text), true) == 0) {
		if (o->output)
			fprintf(stderr, "Public key: %s\n", rcp);
		rc = EXIT_OK;
	}
	age_secret_free(text, 0);
	age_secret_free(id, 0);
	free(rcp);
	return rc;
}

static int encrypt(const struct tools_opts *o, const char *in)
{
	char *plain = NULL;
	size_t len = 0, olen = 0;
	uint8_t *out = NULL;
	struct gerr err;
	int rc = EXIT_FAILED;
	if (!o->recipients.n)
		return cli_error("encrypt: at least one -r RECIPIENT is needed");
	if (!o->armor && !o->output && isatty(1))
		return cli_error("encrypt: refusing to write binary to a terminal (use -a or -o FILE)");
	if (read_input(in, TOOLS_MAX_INPUT, &plain, &len) < 0)
		return EXIT_USAGE;
	if (age_encrypt(plain, len, o->recipients.items, o->recipients.n, o->armor, &out, &olen, &err) < 0) {
		fprintf(stderr, "error: %s\n", err.msg);
		rc = strstr(err.msg, "recipient") ? EXIT_USAGE : EXIT_FAILED;
	} else if (write_output(o->output, out, olen, false) == 0) {
		rc = EXIT_OK;
	}
	age_secret_free(plain, len + 1);
	free(out);
	return rc;
}

static int load_identities(const struct tools_opts *o, const char *what, struct age_identities **ids)
{
	struct gerr err;
	if (!o->identity)
		return cli_error("%s: -i IDENTITY_FILE is needed", what), -1;
	if (age_identities_load(o->identity, ids, &err) < 0)
		return cli_error("-i: %s", err.msg), -1;
	return 0;
}

static int decrypt(const struct tools_opts *o, const char *in)
{
	struct age_identities *ids = NULL;
	char *data = NULL;
	size_t len = 0, olen = 0;
	uint8_t *out = NULL;
	struct gerr err;
	int rc = EXIT_FAILED;
	if (load_identities(o, "decrypt", &ids) < 0)
		return EXIT_USAGE;
	if (read_input(in, TOOLS_MAX_INPUT, &data, &len) < 0) {
		age_identities_free(ids);
		return EXIT_USAGE;
	}
	if (age_decrypt(data, len, ids, &out, &olen, &err) < 0)
		fprintf(stderr, "error: %s\n", err.msg);
	else if (write_output(o->output, out, olen, false) == 0)
		rc = EXIT_OK;
	age_secret_free(out, olen);
	free(data);
	age_identities_free(ids);
	return rc;
}

static int sops_enc(const struct tools_opts *o, const char *in)
{
	char *text = NULL, *out = NULL;
	size_t len = 0, olen = 0;
	struct sops_node *tree = NULL;
	struct sops_file *f = NULL;
	struct sops_rules rules = { .encrypted_regex = o->encrypted_regex, .unencrypted_suffix = o->unencrypted_suffix };
	struct gerr err;
	int rc = EXIT_USAGE;
	if (!o->recipients.n)
		return cli_error("sops-encrypt: at least one -r RECIPIENT is needed");
	if (o->encrypted_regex && o->unencrypted_suffix)
		return cli_error("sops-encrypt: --encrypted-regex and --unencrypted-suffix exclude each other");
	if (!in || !strcmp(in, "-"))
		return cli_error("sops-encrypt: FILE is needed (its extension says YAML or JSON)");
	enum sops_format fmt = sops_format_from_path(in);
	if (read_input(in, SOPS_MAX_INPUT, &text, &len) < 0)
		return EXIT_USAGE;
	if (sops_tree_parse(text, len, fmt, &tree, &err) < 0 ||
	    sops_file_new(tree, o->recipients.items, o->recipients.n, &rules, &f, &err) < 0) {
		fprintf(stderr, "error: %s: %s\n", in, err.msg);
		goto out;
	}
	rc = EXIT_FAILED;
	if (sops_encrypt(f, fmt, 0, &out, &olen, &err) < 0)
		fprintf(stderr, "error: %s: %s\n", in, err.msg);
	else if (write_output(o->output, out, olen, false) == 0)
		rc = EXIT_OK;
out:
	age_secret_free(text, len + 1);
	free(out);
	sops_file_free(f);
	return rc;
}

static int sops_dec(const struct tools_opts *o, const char *in)
{
	struct age_identities *ids = NULL;
	struct sops_file *f = NULL;
	char *text = NULL, *out = NULL;
	size_t len = 0, olen = 0;
	struct gerr err;
	int rc = EXIT_FAILED;
	if (!in || !strcmp(in, "-"))
		return cli_error("sops-decrypt: FILE is needed (its extension says YAML or JSON)");
	if (load_identities(o, "sops-decrypt", &ids) < 0)
		return EXIT_USAGE;
	enum sops_format fmt = sops_format_from_path(in);
	if (read_input(in, SOPS_MAX_INPUT, &text, &len) < 0) {
		rc = EXIT_USAGE;
		goto out;
	}
	if (sops_decrypt(text, len, fmt, ids, &f, &err) < 0) {
		fprintf(stderr, "error: %s: %s\n", in, err.msg);
		goto out;
	}
	if (o->extract) {
		if (sops_tree_get_string(sops_file_tree(f), o->extract, &out, &err) < 0) {
			fprintf(stderr, "error: --extract: %s\n", err.msg);
			goto out;
		}
		olen = strlen(out);
	} else if (sops_tree_emit(sops_file_tree(f), fmt, &out, &olen, &err) < 0) {
		fprintf(stderr, "error: %s: %s\n", in, err.msg);
		goto out;
	}
	if (write_output(o->output, out, olen, false) == 0)
		rc = EXIT_OK;
out:
	age_secret_free(out, olen);
	free(text);
	sops_file_free(f);
	age_identities_free(ids);
	return rc;
}

struct tool {
	struct cli_cmd cmd;
	int npos_max;
	int (*run)(const struct tools_opts *o, const char *in);
};

static int keygen_run(const struct tools_opts *o, const char *in)
{
	(void)in;
	return keygen(o);
}

static const struct cli_option keygen_options[] = { O_OUTPUT, CLI_END };
static const struct cli_option encrypt_options[] = { O_RECIPIENT, O_ARMOR, O_OUTPUT, CLI_END };
static const struct cli_option decrypt_options[] = { O_IDENTITY, O_OUTPUT, CLI_END };
static const struct cli_option sops_encrypt_options[] = { O_RECIPIENT, O_ENC_REGEX, O_UNENC_SUFFIX, O_OUTPUT,
							  CLI_END };
static const struct cli_option sops_decrypt_options[] = { O_IDENTITY, O_EXTRACT, O_OUTPUT, CLI_END };

static const struct tool tools[] = {
	{ { "keygen", U_KEYGEN, "a new age X25519 identity (the file age-keygen writes); its recipient on stderr",
	    keygen_options, NULL }, 0, keygen_run },
	{ { "encrypt", U_ENCRYPT, "encrypt to age recipients (the file `age -e` writes)", encrypt_options, NULL }, 1,
	  encrypt },
	{ { "decrypt", U_DECRYPT, "decrypt an age file, binary or armored", decrypt_options, NULL }, 1, decrypt },
	{ { "sops-encrypt", U_SOPS_ENCRYPT, "encrypt a plain YAML or JSON file to a SOPS file for age recipients",
	    sops_encrypt_options, NULL }, 1, sops_enc },
	{ { "sops-decrypt", U_SOPS_DECRYPT, "decrypt a SOPS file (checking its MAC) to plain YAML or JSON",
	    sops_decrypt_options, NULL }, 1, sops_dec },
};

int cmd_secret_tools(int argc, char **argv)
{
	const struct tool *t = NULL;
	struct tools_opts o = { 0 };
	struct cli_ctx ctx = { 0 };
	int npos, rc;
	if (argc < 1)
		return -2;
	for (size_t i = 0; i < ARRAY_SIZE(tools); i++)
		if (!strcmp(argv[0], tools[i].cmd.name))
			t = &tools[i];
	if (!t)
		return -2;
	ctx.cmd = &t->cmd;
	if ((npos = cli_parse_opts(&t->cmd, argc, argv, &ctx, &o)) < 0) {
		free(o.recipients.items);
		return EXIT_USAGE;
	}
	if (npos > t->npos_max) {
		free(o.recipients.items);
		return cli_error("%s: unexpected argument '%s' (usage: %s)", t->cmd.name, argv[t->npos_max],
				 t->cmd.usage);
	}
	rc = t->run(&o, npos ? argv[0] : NULL);
	free(o.recipients.items);
	return rc;
}

static int tmp_run(int argc, char **argv, struct cli_ctx *ctx)
{
	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		cli_print_help(ctx->cmd, stdout);
		return EXIT_OK;
	}
	if (argc < 2)
		return cli_error("secret: a subcommand is needed:\n%s", secret_tools_usage);
	int rc = cmd_secret_tools(argc - 1, argv + 1);
	if (rc == -2)
		return cli_error("secret: unknown subcommand '%s':\n%s", argv[1], secret_tools_usage);
	return rc;
}

/* temporary: src/cli/secret.c (branch h-secret) owns `gantry secret` and calls cmd_secret_tools */
const struct cli_cmd cli_cmd_secret_tools_tmp = {
	.name = "secret",
	.usage = "gantry secret keygen|encrypt|decrypt|sops-encrypt|sops-decrypt [OPTIONS] [FILE]",
	.summary = "age and SOPS files: keys, encrypt, decrypt (see gantry secret SUBCOMMAND -h)",
	.options = secret_tools_options,
	.run = tmp_run,
};
