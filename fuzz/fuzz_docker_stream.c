/*
 * fuzz_docker_stream.c — the Docker Engine's two stream formats
 * (src/runtime/docker-stream.c) over any bytes, cut at positions the input
 * chooses: the log demuxer passes on exactly the payload bytes of whole
 * frames and never more than it got, or refuses with a message; the
 * progress-stream parser gives one-line output and a one-line error and
 * parses the same stream the same way however it is cut.
 *
 * Input: byte 0 chooses the cut stride (1..256), the rest is the stream.
 */
#include "common.h"
#include "runtime/docker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct count {
	size_t bytes;
};

static void on_piece(void *d, int stream, const char *buf, size_t len)
{
	struct count *c = d;
	BUG_ON(stream < 0 || stream > 2);
	BUG_ON(len == 0);
	(void)buf;
	c->bytes += len;
}

static void on_line(void *d, const char *line)
{
	size_t *n = d;
	BUG_ON(strchr(line, '\n') || strchr(line, '\r'));
	(*n)++;
}

static void demux(const char *p, size_t n, size_t stride, size_t *out, int *rc)
{
	struct docker_demux m;
	struct count c = { 0 };
	struct gerr err = { { 0 } };

	docker_demux_init(&m);
	*rc = 0;
	for (size_t o = 0; o < n && *rc == 0; o += stride) {
		*rc = docker_demux_feed(&m, p + o, MIN(stride, n - o), on_piece, &c, &err);
		if (*rc < 0)
			BUG_ON(!err.msg[0]);
	}
	BUG_ON(c.bytes > n);
	*out = c.bytes;
}

static void progress(const char *p, size_t n, size_t stride, struct docker_progress *pg, size_t *lines)
{
	docker_progress_init(pg, "pull x", on_line, lines);
	for (size_t o = 0; o < n; o += stride)
		docker_progress_feed(pg, p + o, MIN(stride, n - o));
	docker_progress_finish(pg);
	BUG_ON(strchr(pg->error, '\n'));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data + 1;
	size_t n, stride, a = 0, b = 0, la = 0, lb = 0;
	int ra, rb;
	struct docker_progress pa, pb;
	char ta[1024], tb[1024];

	if (size < 1 || size > 1 << 16)
		return 0;
	stride = (size_t)data[0] + 1;
	n = size - 1;

	/* the demuxer: cut or whole, the same bytes out, the same verdict */
	demux(p, n, stride, &a, &ra);
	demux(p, n, n ? n : 1, &b, &rb);
	BUG_ON(ra != rb);
	if (ra == 0)
		BUG_ON(a != b);

	/* the progress stream: cut or whole, the same lines, error and ids */
	progress(p, n, stride, &pa, &la);
	progress(p, n, n ? n : 1, &pb, &lb);
	BUG_ON(la != lb);
	BUG_ON(strcmp(pa.error, pb.error) || strcmp(pa.id, pb.id) || strcmp(pa.digest, pb.digest));
	docker_progress_tail(&pa, ta, sizeof(ta));
	docker_progress_tail(&pb, tb, sizeof(tb));
	BUG_ON(strcmp(ta, tb));
	BUG_ON(strchr(ta, '\n'));
	docker_progress_release(&pa);
	docker_progress_release(&pb);
	return 0;
}
