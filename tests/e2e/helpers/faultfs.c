/*
 * faultfs.c — test-only LD_PRELOAD shim: the state store's files cannot be
 * written while a trigger file exists (a full disk, on demand).
 *
 *   GANTRY_FAULTFS=/path/to/trigger LD_PRELOAD=.../faultfs.so gantry serve ...
 *   touch /path/to/trigger    # from now on: ENOSPC
 *   rm /path/to/trigger       # writes work again
 *
 * write, pwrite(64), writev, fsync, fdatasync and ftruncate(64) on a file
 * whose path ends in state.db, state.db-wal or state.db-journal fail with
 * ENOSPC (SQLite: SQLITE_FULL) while the file named by GANTRY_FAULTFS
 * exists. Everything else goes to libc. An ASan build of gantry needs
 * ASAN_OPTIONS=verify_asan_link_order=0 with it. Built by `make examples`;
 * never part of gantry.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

/* 1: this write must fail (errno set to ENOSPC) */
static int faulted(int fd)
{
	const char *trigger = getenv("GANTRY_FAULTFS");
	char link[64], path[4096];
	ssize_t n;
	int saved = errno;

	if (!trigger || !*trigger || fd < 0 || access(trigger, F_OK) != 0) {
		errno = saved;
		return 0;
	}
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	errno = saved;
	if (n <= 0)
		return 0;
	path[n] = 0;
	if (ends_with(path, "/state.db") || ends_with(path, "/state.db-wal") || ends_with(path, "/state.db-journal")) {
		errno = ENOSPC;
		return 1;
	}
	return 0;
}

#define REAL(name) static __typeof__(name) *real_##name; if (!real_##name) real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

ssize_t write(int fd, const void *buf, size_t len)
{
	REAL(write);
	return faulted(fd) ? -1 : real_write(fd, buf, len);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
	REAL(pwrite);
	return faulted(fd) ? -1 : real_pwrite(fd, buf, len, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off64_t off)
{
	REAL(pwrite64);
	return faulted(fd) ? -1 : real_pwrite64(fd, buf, len, off);
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
	REAL(writev);
	return faulted(fd) ? -1 : real_writev(fd, iov, n);
}

int fsync(int fd)
{
	REAL(fsync);
	return faulted(fd) ? -1 : real_fsync(fd);
}

int fdatasync(int fd)
{
	REAL(fdatasync);
	return faulted(fd) ? -1 : real_fdatasync(fd);
}

int ftruncate(int fd, off_t len)
{
	REAL(ftruncate);
	return faulted(fd) ? -1 : real_ftruncate(fd, len);
}

int ftruncate64(int fd, off64_t len)
{
	REAL(ftruncate64);
	return faulted(fd) ? -1 : real_ftruncate64(fd, len);
}
