/*
 * fuzz_migrate_names.c — migration file names and a directory of them.
 * The input is newline-separated file names (each may be followed by
 * "\t" and the file's text). Invariants: a name parses or says why naming
 * itself; a parsed name's version is >= 0 and its description is a
 * substring of the name; a directory of those files loads or fails naming
 * a file, and a loaded set is sorted with unique versions, every down
 * attached to its up; the markers never read past a file's text.
 */
#include "common.h"
#include "migrate/migrate.h"
#include <dirent.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = xstrndup((const char *)data, size), *save = NULL, *line;
	struct mig_set set;
	struct gerr err;
	int files = 0;

	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/fuzz-migrate-%d", (int)getpid());
		mkdir(dir, 0700);
	}
	/* empty the directory */
	{
		DIR *d = opendir(dir);
		struct dirent *de;
		while (d && (de = readdir(d)))
			if (de->d_name[0] != '.' || (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))) {
				char *p = xasprintf("%s/%s", dir, de->d_name);
				unlink(p);
				free(p);
			}
		if (d)
			closedir(d);
	}
	for (line = strtok_r(in, "\n", &save); line && files < 32;
	     line = strtok_r(NULL, "\n", &save)) {
		char *tab = strchr(line, '\t'), *desc = NULL, *path;
		const char *text = "";
		int64_t v;
		enum mig_dir d;
		FILE *f;

		if (tab) {
			*tab = 0;
			text = tab + 1;
		}
		mig_markers(text, strlen(text));
		if (mig_parse_name(line, &v, &d, &desc, &err) == 0) {
			BUG_ON(v < 0);
			BUG_ON(!strstr(line, desc));
			BUG_ON(d != MIG_UP && d != MIG_DOWN);
			free(desc);
		} else
			BUG_ON(strlen(line) < 200 && !strstr(err.msg, line));
		if (!*line || strchr(line, '/') || !strcmp(line, ".") || !strcmp(line, "..") ||
		    strlen(line) > 200)
			continue;
		path = xasprintf("%s/%s", dir, line);
		f = fopen(path, "w");
		if (f) {
			fputs(text, f);
			fclose(f);
			files++;
		}
		free(path);
	}
	if (mig_set_load(dir, &set, &err) == 0) {
		for (size_t i = 0; i < set.n; i++) {
			BUG_ON(i && set.v[i - 1].version >= set.v[i].version);
			BUG_ON(mig_set_find(&set, set.v[i].version) != (ssize_t)i);
			BUG_ON(strlen(set.v[i].up_sum) != 64);
		}
		(void)mig_set_expand_target(&set, MIG_NIL_VERSION);
		(void)mig_down_check(&set, mig_set_latest(&set), MIG_NIL_VERSION, &err);
	} else
		BUG_ON(!err.msg[0]);
	mig_set_release(&set);
	free(in);
	return 0;
}
