/*
 * logfile.c — replica log files: copy-truncate rotation, tail, follow.
 *
 * Replicas hold their log open with O_APPEND and we have no way (and no
 * wish: they outlive us) to make them reopen it, so rotation copies the
 * file aside and truncates it in place; appends then continue at the new
 * end (offset 0). Readers must therefore expect a file to shrink.
 */
#include "common.h"
#include "runtime/runtime.h"
#include "util/log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#define BLOCK 65536
#define FOLLOW_POLL_MS 200
/* a partial line (no '\n' yet) is printed after this many idle polls */
#define FOLLOW_PARTIAL_POLLS 5
#define FOLLOW_MARK 64

/* Copies src to dst (created or truncated, 0644). 0 or -1 with errno. */
static int copy_file(const char *src, const char *dst)
{
	char *buf = xmalloc(BLOCK);
	int in = -1, out = -1, ret = -1, e = 0;
	ssize_t n;

	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		goto out;
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0)
		goto out;
	for (;;) {
		ssize_t w, off = 0;
		n = read(in, buf, BLOCK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto out;
		if (n == 0)
			break;
		while (off < n) {
			w = write(out, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				goto out;
			off += w;
		}
	}
	ret = 0;
out:
	e = errno;
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) < 0 && ret == 0) {
		e = errno;
		ret = -1;
	}
	free(buf);
	errno = e;
	return ret;
}

int logfile_rotate(const char *path, int64_t max_bytes, int keep)
{
	struct stat st;
	char *from = NULL, *to = NULL, *tmp = NULL;
	int i, ret = -1;

	if (stat(path, &st) < 0) {
		ret = errno == ENOENT ? 0 : -1;
		if (ret < 0)
			log_warn("runtime", "log=%s rotate: %s", path, strerror(errno));
		goto out;
	}
	if (st.st_size <= max_bytes) {
		ret = 0;
		goto out;
	}
	if (keep > 0) {
		/* path.(keep-1) -> path.keep, ..., path.1 -> path.2 (the
		 * oldest, path.keep, is replaced) */
		for (i = keep - 1; i >= 1; i--) {
			free(from);
			free(to);
			from = xasprintf("%s.%d", path, i);
			to = xasprintf("%s.%d", path, i + 1);
			if (rename(from, to) < 0 && errno != ENOENT) {
				log_warn("runtime", "log=%s rotate: rename %s: %s", path, from,
					 strerror(errno));
				goto out;
			}
		}
		/* copy to a temporary name first: path.1 is either the old
		 * or the complete new copy, never half of one */
		free(to);
		to = xasprintf("%s.1", path);
		tmp = xasprintf("%s.1.tmp", path);
		if (copy_file(path, tmp) < 0 || rename(tmp, to) < 0) {
			/* a full disk: the cap wins over this generation's lines
			 * (older copies stay); a log must never fill the disk */
			log_warn("runtime", "log=%s rotate: copy to %s: %s; truncated without a copy", path, to,
				 strerror(errno));
			(void)unlink(tmp);
		}
	}
	if (truncate(path, 0) < 0) {
		log_warn("runtime", "log=%s rotate: truncate: %s", path, strerror(errno));
		goto out;
	}
	ret = 1;
out:
	free(from);
	free(to);
	free(tmp);
	return ret;
}

/* writes all of buf to out; 0 or -1 */
static int put(FILE *out, const char *buf, size_t n)
{
	return n == 0 || fwrite(buf, 1, n, out) == n ? 0 : -1;
}

/* Copies fd [from, to) to out in blocks. 0 or -1. */
static int copy_range(int fd, off_t from, off_t to, FILE *out, char *buf)
{
	while (from < to) {
		size_t want = (size_t)MIN((off_t)BLOCK, to - from);
		ssize_t n = pread(fd, buf, want, from);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -1 : 0; /* shrank under us: stop there */
		if (put(out, buf, (size_t)n) < 0)
			return -1;
		from += n;
	}
	return 0;
}

int logfile_tail(const char *path, int nlines, FILE *out)
{
	struct stat st;
	char *buf = NULL;
	int fd, ret = -1, e = 0;
	off_t end, pos, start = 0;
	int seen = 0;
	bool found = false;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0)
		goto out;
	buf = xmalloc(BLOCK);
	end = st.st_size;
	if (nlines <= 0 || end == 0) {
		ret = 0;
		goto out;
	}
	/* Walk back from the end counting '\n'. The file's final newline ends
	 * the last line rather than starting a new one, so it is not counted;
	 * the start of the last N lines is just after the (N+1)th '\n' from
	 * the end (counting that final one). */
	pos = end;
	while (pos > 0 && !found) {
		size_t want = (size_t)MIN((off_t)BLOCK, pos);
		ssize_t n, i;
		pos -= (off_t)want;
		n = pread(fd, buf, want, pos);
		if (n < 0 && errno == EINTR) {
			pos += (off_t)want;
			continue;
		}
		if (n < (ssize_t)want)
			goto out; /* short read: the file shrank (rotated) */
		for (i = n - 1; i >= 0; i--) {
			if (buf[i] != '\n' || pos + i == end - 1)
				continue;
			if (++seen == nlines) {
				start = pos + i + 1;
				found = true;
				break;
			}
		}
	}
	if (copy_range(fd, start, end, out, buf) < 0)
		goto out;
	ret = fflush(out) == 0 ? 0 : -1;
out:
	e = errno;
	close(fd);
	free(buf);
	errno = e;
	return ret;
}

struct follow {
	const char *path; /* borrowed */
	dev_t dev;
	ino_t ino;
	off_t off;        /* next byte to print */
	bool exists;
	int idle;         /* polls with only a partial line pending */
	/* the last bytes printed, up to off: if they are no longer there, the
	 * file was truncated and has grown past off again between two polls */
	char mark[FOLLOW_MARK];
	size_t marklen;
};

/* remembers the bytes of fd just before f->off */
static void set_mark(struct follow *f, int fd)
{
	size_t want = (size_t)MIN((off_t)FOLLOW_MARK, f->off);
	ssize_t n = want ? pread(fd, f->mark, want, f->off - (off_t)want) : 0;

	f->marklen = n == (ssize_t)want ? want : 0;
}

static bool mark_moved(const struct follow *f, int fd)
{
	char buf[FOLLOW_MARK];
	ssize_t n;

	if (!f->marklen)
		return false;
	n = pread(fd, buf, f->marklen, f->off - (off_t)f->marklen);
	return n != (ssize_t)f->marklen || memcmp(buf, f->mark, f->marklen);
}

/* Prints what was appended to f since the last poll. */
static void follow_poll(struct follow *f, FILE *out, char *buf, bool headers,
			const struct follow **last)
{
	struct stat st;
	off_t end, pos, upto;
	int fd;

	fd = open(f->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		f->exists = false;
		return;
	}
	if (fstat(fd, &st) < 0)
		goto out;
	if (!f->exists || st.st_dev != f->dev || st.st_ino != f->ino) {
		/* appeared or replaced: a new file, read it from the start */
		f->off = 0;
		f->exists = true;
		f->dev = st.st_dev;
		f->ino = st.st_ino;
	}
	if (st.st_size < f->off || mark_moved(f, fd)) { /* copy-truncate rotation */
		f->off = 0;
		f->marklen = 0;
	}
	end = st.st_size;
	if (end == f->off)
		goto out;
	/* print whole lines only, so that lines of several files are not
	 * cut into each other; a partial line goes out when it stays alone
	 * for a while or fills a whole block */
	upto = f->off;
	pos = f->off;
	while (pos < end) {
		size_t want = (size_t)MIN((off_t)BLOCK, end - pos);
		ssize_t n = pread(fd, buf, want, pos), i;
		if (n <= 0)
			break;
		for (i = n - 1; i >= 0 && buf[i] != '\n'; i--)
			;
		if (i >= 0)
			upto = pos + i + 1;
		else if (n == BLOCK)
			upto = pos + n;
		pos += n;
	}
	if (upto == f->off) {
		if (++f->idle < FOLLOW_PARTIAL_POLLS)
			goto out;
		upto = end;
	}
	f->idle = 0;
	if (headers && *last != f)
		fprintf(out, "%s==> %s <==\n", *last ? "\n" : "", f->path);
	*last = f;
	(void)copy_range(fd, f->off, upto, out, buf);
	f->off = upto;
	set_mark(f, fd);
	fflush(out);
out:
	close(fd);
}

int logfile_follow(const char **paths, size_t n, FILE *out, volatile sig_atomic_t *stop)
{
	struct follow *fs = xcalloc(n ? n : 1, sizeof(*fs));
	const struct follow *last = NULL;
	char *buf = xmalloc(BLOCK);
	struct stat st;
	size_t i;
	int fd;

	/* start at the current end, as tail -F does after its -n lines */
	for (i = 0; i < n; i++) {
		fs[i].path = paths[i];
		if (stat(paths[i], &st) == 0) {
			fs[i].exists = true;
			fs[i].dev = st.st_dev;
			fs[i].ino = st.st_ino;
			fs[i].off = st.st_size;
			fd = open(paths[i], O_RDONLY | O_CLOEXEC);
			if (fd >= 0) {
				set_mark(&fs[i], fd);
				close(fd);
			}
		}
	}
	while (!*stop) {
		struct timespec ts = { 0, FOLLOW_POLL_MS * 1000000L };
		for (i = 0; i < n && !*stop; i++)
			follow_poll(&fs[i], out, buf, n > 1, &last);
		/* a signal interrupts the sleep: *stop is then seen at once */
		if (!*stop)
			(void)nanosleep(&ts, NULL);
	}
	free(buf);
	free(fs);
	return 0;
}
