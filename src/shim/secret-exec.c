/*
 * secret-exec.c — gantry-secret-exec, the entrypoint of a container that
 * has secrets (docs/security.md, "Secrets"; src/daemon/dockrt.c).
 *
 *   gantry-secret-exec DIR -- PROGRAM [ARG...]
 *
 * Adds every DIR/.env/NAME (the file's bytes are the value; NAME a valid
 * variable name) to its environment, then execs PROGRAM (searched in PATH
 * when it has no '/') with its arguments: the image's entrypoint and
 * command, or the spec's. The controller bind-mounts DIR (the replica's
 * in-memory secrets directory) and this program read-only into the
 * container, so no secret value is in the container's configuration
 * (docker inspect, the Engine's config.v2.json).
 *
 * Built -static (no library of the image is needed: FROM scratch works),
 * without the project's headers: it is not part of libgantry. Exit 127
 * when it cannot start PROGRAM, with one line on stderr (never a value).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VALUE_MAX (64 * 1024)

static int name_ok(const char *s)
{
	if (!*s || (*s >= '0' && *s <= '9'))
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return 0;
	return 1;
}

/* DIR/.env/NAME into the environment; 0, or -1 after a message */
static int load_env(const char *dir)
{
	static char val[VALUE_MAX + 1];
	char path[4096];
	struct dirent *de;
	DIR *d;
	int ret = 0;

	snprintf(path, sizeof(path), "%s/.env", dir);
	if (!(d = opendir(path)))
		return errno == ENOENT ? 0 : (fprintf(stderr, "gantry-secret-exec: %s: %s\n", path, strerror(errno)), -1);
	while ((de = readdir(d)) && !ret) {
		ssize_t n, got = 0;
		int fd;
		if (!name_ok(de->d_name))
			continue;
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			fprintf(stderr, "gantry-secret-exec: %s/%s: %s\n", path, de->d_name, strerror(errno));
			ret = -1;
			break;
		}
		while (got < VALUE_MAX && (n = read(fd, val + got, (size_t)(VALUE_MAX - got))) > 0)
			got += n;
		close(fd);
		val[got] = 0;
		if (memchr(val, 0, (size_t)got) || setenv(de->d_name, val, 1) < 0) {
			fprintf(stderr, "gantry-secret-exec: %s: cannot be an environment variable\n", de->d_name);
			ret = -1;
		}
		memset(val, 0, (size_t)got);
	}
	closedir(d);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc < 4 || strcmp(argv[2], "--")) {
		fprintf(stderr, "usage: gantry-secret-exec DIR -- PROGRAM [ARG...]\n");
		return 127;
	}
	if (load_env(argv[1]) < 0)
		return 127;
	execvp(argv[3], argv + 3);
	fprintf(stderr, "gantry-secret-exec: %s: %s\n", argv[3], strerror(errno));
	return 127;
}
