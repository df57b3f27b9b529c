/*
 * test_out.c — the write queue (src/proxy/out.c): a flush sends what the
 * socket takes at once and queues the rest with uv_write; the done
 * callback runs once that is written; bytes arrive whole and in order.
 */
#include "common.h"
#include "proxy/proxy-int.h"
#include <pthread.h>
#include <setjmp.h>
#include <sys/socket.h>
#include <cmocka.h>

#define BIG (4u << 20)

struct sink {
	int fd;
	size_t got;
	bool in_order;
};

/* reads the other end until EOF, checking the byte pattern */
static void *sink_main(void *arg)
{
	struct sink *s = arg;
	static char buf[65536];
	ssize_t n;

	s->in_order = true;
	while ((n = read(s->fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++)
			if ((unsigned char)buf[i] != (unsigned char)((s->got + (size_t)i) % 251))
				s->in_order = false;
		s->got += (size_t)n;
	}
	return NULL;
}

static int done_calls, done_status;

static void on_done(struct out *o, int status)
{
	done_calls++;
	done_status = status;
}

static void test_flush_queue_and_done(void **state)
{
	uv_loop_t loop;
	uv_pipe_t pipe;
	struct out o;
	struct sink s = { 0 };
	pthread_t th;
	int sv[2];
	(void)state;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	uv_loop_init(&loop);
	uv_pipe_init(&loop, &pipe, 0);
	assert_int_equal(uv_pipe_open(&pipe, sv[0]), 0);
	out_init(&o, (uv_stream_t *)&pipe, on_done);
	o.ready = true;

	/* small: all of it goes out at once, nothing is queued, no callback */
	assert_int_equal(hbuf_append(&o.q, "hello", 5), 0);
	assert_int_equal(proxy__out_flush(&o), 0);
	assert_false(o.writing);
	assert_int_equal(out_pending(&o), 0);
	assert_int_equal(out_total(&o), 5);
	{
		char b[5];
		assert_int_equal(read(sv[1], b, 5), 5);
		assert_memory_equal(b, "hello", 5);
	}

	/* more than the socket takes: the rest is queued, then written while the peer reads */
	o.flushed = 0;
	for (size_t i = 0; i < BIG; i++) {
		char ch = (char)(i % 251);
		assert_int_equal(hbuf_append(&o.q, &ch, 1), 0);
	}
	assert_int_equal(proxy__out_flush(&o), 0);
	assert_true(o.writing);
	assert_true(out_pending(&o) > 0);
	assert_int_equal(o.q.len, 0);
	assert_int_equal(proxy__out_flush(&o), 0); /* while writing: nothing to do */
	s.fd = sv[1];
	assert_int_equal(pthread_create(&th, NULL, sink_main, &s), 0);
	while (!done_calls)
		uv_run(&loop, UV_RUN_ONCE);
	assert_int_equal(done_calls, 1);
	assert_int_equal(done_status, 0);
	assert_false(o.writing);
	assert_int_equal(out_pending(&o), 0);
	assert_int_equal(out_total(&o), BIG);
	uv_close((uv_handle_t *)&pipe, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	pthread_join(th, NULL);
	assert_int_equal(s.got, BIG);
	assert_true(s.in_order);
	out_release(&o);
	uv_loop_close(&loop);
	close(sv[1]);
}

/* a peer that is gone: the flush reports the error */
static void test_flush_error(void **state)
{
	uv_loop_t loop;
	uv_pipe_t pipe;
	struct out o;
	int sv[2];
	(void)state;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	uv_loop_init(&loop);
	uv_pipe_init(&loop, &pipe, 0);
	assert_int_equal(uv_pipe_open(&pipe, sv[0]), 0);
	out_init(&o, (uv_stream_t *)&pipe, on_done);
	o.ready = true;
	close(sv[1]);
	assert_int_equal(hbuf_append(&o.q, "x", 1), 0);
	assert_int_equal(proxy__out_flush(&o), UV_EPIPE);
	/* not connected yet (o.ready false): nothing is sent */
	o.ready = false;
	assert_int_equal(proxy__out_flush(&o), 0);
	uv_close((uv_handle_t *)&pipe, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	out_release(&o);
	uv_loop_close(&loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flush_queue_and_done),
		cmocka_unit_test(test_flush_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
