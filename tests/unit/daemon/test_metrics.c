#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include "daemon/metrics.h"
#include <sys/stat.h>

/* a /windows document with one revision's cumulative counters */
static char *doc(int rev, unsigned long long requests, unsigned long long s5xx, unsigned long long fast,
		 unsigned long long slow)
{
	char status[128], lat[512];
	size_t off = 0;
	snprintf(status, sizeof(status), "[0,0,%llu,0,0,%llu]", requests - s5xx, s5xx);
	off += (size_t)snprintf(lat + off, sizeof(lat) - off, "[%llu", fast);
	for (int i = 1; i < METRIC_LATENCY_BUCKETS; i++)
		off += (size_t)snprintf(lat + off, sizeof(lat) - off, ",%llu", i == 20 ? slow : 0ULL);
	snprintf(lat + off, sizeof(lat) - off, "]");
	return xasprintf("{\"now_ms\": 1, \"generation\": 3, \"revisions\": [{\"service\": \"web\", "
			 "\"environment\": \"prod\", \"revision\": \"%d\", \"requests\": %llu, \"status\": %s, "
			 "\"latency\": %s, \"bytes_in\": 0, \"bytes_out\": 0, \"inflight\": 0}]}",
			 rev, requests, status, lat);
}

static void feed(int64_t t, int rev, unsigned long long req, unsigned long long s5xx)
{
	char *d = doc(rev, req, s5xx, req - s5xx, s5xx);
	assert_int_equal(metrics__ingest(d, t), 1);
	free(d);
}

static void test_windows_by_subtraction(void **state)
{
	(void)state;
	struct rev_window w;
	/* 100 requests per 100 ms; errors only from t=2000 on, 50 per poll */
	unsigned long long req = 0, err = 0;
	for (int64_t t = 0; t <= 5000; t += 100) {
		req += 100;
		if (t >= 2000)
			err += 50;
		feed(t, 7, req, err);
	}
	assert_int_equal(metrics_window("web", "prod", 7, 1000, 5000, &w), 0);
	assert_int_equal(w.end_ms - w.start_ms, 1000);
	assert_int_equal(w.requests, 1000);
	assert_int_equal(w.status[5], 500);
	assert_int_equal(w.status[2], 500);
	/* a window reaching back before the errors began */
	assert_int_equal(metrics_window("web", "prod", 7, 4000, 5000, &w), 0);
	assert_int_equal(w.requests, 4000);
	assert_int_equal(w.status[5], 50 * 31);
	/* longer than history: everything since the first snapshot */
	assert_int_equal(metrics_window("web", "prod", 7, 60000, 5000, &w), 0);
	assert_int_equal(w.start_ms, 0);
	assert_int_equal(metrics_window("web", "prod", 8, 1000, 5000, &w), -1);
	metrics_free();
}

/* a proxy too old to report an epoch: a restart shows as its requests going down */
static void test_old_proxy_restart_continues(void **state)
{
	(void)state;
	struct rev_window w;
	feed(0, 3, 1000, 0);
	feed(100, 3, 2000, 0);
	feed(200, 3, 10, 5); /* counters started again */
	feed(300, 3, 20, 10);
	assert_int_equal(metrics_window("web", "prod", 3, 100, 300, &w), 0);
	assert_int_equal(w.requests, 10);
	assert_int_equal(w.status[5], 5);
	/* the history goes on across the restart: 1000 + 20 requests since t=0 */
	assert_int_equal(metrics_window("web", "prod", 3, 300, 300, &w), 0);
	assert_int_equal(w.start_ms, 0);
	assert_int_equal(w.requests, 1020);
	assert_int_equal(w.status[5], 10);
	assert_int_equal(w.status[2], 1010);
	metrics_free();
}

/*
 * A /windows document from the proxy of epoch `epoch` (0: a proxy too old
 * to say) with one revision: `ok` 2xx and `bad` 5xx requests (2xx in the
 * first latency bucket, 5xx in bucket 20), and the base it was started
 * from (`base_ok`, `base_bad`; none when both are 0).
 */
static char *doc_epoch(int rev, unsigned long long epoch, unsigned long long ok, unsigned long long bad,
		       unsigned long long base_ok, unsigned long long base_bad)
{
	char lat[512], blat[512], ep[64] = "", base[1024] = "";
	size_t off = 0, boff = 0;
	off += (size_t)snprintf(lat + off, sizeof(lat) - off, "[%llu", ok);
	boff += (size_t)snprintf(blat + boff, sizeof(blat) - boff, "[%llu", base_ok);
	for (int i = 1; i < METRIC_LATENCY_BUCKETS; i++) {
		off += (size_t)snprintf(lat + off, sizeof(lat) - off, ",%llu", i == 20 ? bad : 0ULL);
		boff += (size_t)snprintf(blat + boff, sizeof(blat) - boff, ",%llu", i == 20 ? base_bad : 0ULL);
	}
	snprintf(lat + off, sizeof(lat) - off, "]");
	snprintf(blat + boff, sizeof(blat) - boff, "]");
	if (epoch)
		snprintf(ep, sizeof(ep), "\"epoch\": \"%016llx\", \"started_ms\": 5, ", epoch);
	if (base_ok || base_bad)
		snprintf(base, sizeof(base), ", \"base\": {\"requests\": %llu, \"status\": [0,0,%llu,0,0,%llu], "
			 "\"latency\": %s, \"bytes_in\": %llu, \"bytes_out\": 0}",
			 base_ok + base_bad, base_ok, base_bad, blat, base_ok + base_bad);
	return xasprintf("{\"now_ms\": 1, %s\"generation\": 3, \"revisions\": [{\"service\": \"web\", "
			 "\"environment\": \"prod\", \"revision\": \"%d\", \"requests\": %llu, "
			 "\"status\": [0,0,%llu,0,0,%llu], \"latency\": %s, \"bytes_in\": %llu, \"bytes_out\": 0, "
			 "\"inflight\": 0%s}]}",
			 ep, rev, ok + bad, ok, bad, lat, ok + bad, base);
}

static void feed_epoch(int64_t t, int rev, unsigned long long epoch, unsigned long long ok,
		       unsigned long long bad, unsigned long long base_ok, unsigned long long base_bad)
{
	char *d = doc_epoch(rev, epoch, ok, bad, base_ok, base_bad);
	assert_int_equal(metrics__ingest(d, t), 1);
	free(d);
}

/* a window's figures: requests, 2xx, 5xx, and the latency buckets agree */
static void assert_window(int rev, int64_t dur, int64_t now, unsigned long long req, unsigned long long ok,
			  unsigned long long bad)
{
	struct rev_window w;
	assert_int_equal(metrics_window("web", "prod", rev, dur, now, &w), 0);
	if (w.requests != req || w.status[2] != ok || w.status[5] != bad || w.latency[0] != ok ||
	    w.latency[20] != bad || w.bytes_in != req)
		fail_msg("window of %lld ms at %lld: requests %llu 2xx %llu 5xx %llu lat0 %llu lat20 %llu bytes %llu, "
			 "want %llu %llu %llu", (long long)dur, (long long)now, (unsigned long long)w.requests,
			 (unsigned long long)w.status[2], (unsigned long long)w.status[5],
			 (unsigned long long)w.latency[0], (unsigned long long)w.latency[20],
			 (unsigned long long)w.bytes_in, req, ok, bad);
}

/*
 * The old proxy counted few requests (20, half of them 5xx); the new one,
 * started without a carry, has counted more than that (30, all 2xx) by the
 * controller's first poll of it. Its requests did not go down, so a
 * controller that only watches them for a restart takes 30 - 20 = 10 new
 * requests and 0 - 10 5xx, which wraps around to 4294967286: a surge of
 * errors that never happened. The epoch tells the two proxies apart.
 */
static void test_replacement_small_old_total(void **state)
{
	(void)state;
	feed_epoch(0, 5, 0xa1, 0, 0, 0, 0);
	feed_epoch(100, 5, 0xa1, 10, 10, 0, 0);
	feed_epoch(200, 5, 0xb2, 30, 0, 0, 0); /* replaced between the two polls */
	assert_window(5, 100, 200, 30, 30, 0);
	/* across the replacement: the old proxy's (to its last poll) plus the new one's */
	assert_window(5, 200, 200, 50, 40, 10);
	metrics_free();
}

/* the same, the new proxy's 5xx outnumbering the old proxy's requests */
static void test_replacement_larger_new_total(void **state)
{
	(void)state;
	feed_epoch(0, 5, 0xa1, 5, 0, 0, 0);
	feed_epoch(100, 5, 0xa1, 8, 2, 0, 0);
	feed_epoch(200, 5, 0xb2, 1, 40, 0, 0);
	feed_epoch(300, 5, 0xb2, 2, 60, 0, 0);
	assert_window(5, 100, 300, 21, 1, 20);
	assert_window(5, 200, 300, 62, 2, 60);
	assert_window(5, 300, 300, 67, 5, 62);
	metrics_free();
}

static char carry_path[128];

static void carry_tmp(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(carry_path, sizeof(carry_path), "%s/gantry-carry-%ld.json", tmp && *tmp ? tmp : "/tmp",
		 (long)getpid());
	unlink(carry_path);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = xcalloc(1, 1 << 16);
	size_t n;
	assert_non_null(f);
	n = fread(buf, 1, (1 << 16) - 1, f);
	buf[n] = 0;
	fclose(f);
	return buf;
}

/*
 * With a carry: the controller writes the last document it read, the new
 * proxy starts its counters from it and says so ("base"). Its counters
 * are then higher than the old proxy's at once; the stitch counts only
 * what it added.
 */
static void test_replacement_with_carry(void **state)
{
	struct gerr err = { { 0 } };
	struct stat st;
	char *want, *got;
	(void)state;
	carry_tmp();
	assert_int_equal(metrics_carry_save(carry_path, &err), 0); /* nothing read yet: no file */
	assert_int_equal(stat(carry_path, &st), -1);
	for (int64_t t = 0; t <= 1000; t += 100)
		feed_epoch(t, 6, 0xa1, (unsigned long long)t, (unsigned long long)t / 100, 0, 0);
	assert_int_equal(metrics_carry_save(carry_path, &err), 1);
	want = doc_epoch(6, 0xa1, 1000, 10, 0, 0);
	got = slurp(carry_path);
	assert_string_equal(got, want); /* the proxy's own text */
	assert_int_equal(stat(carry_path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	free(got);
	free(want);
	/* the new proxy, seeded from that file, has counted 30 + 3 by our first poll */
	feed_epoch(1100, 6, 0xb2, 1030, 13, 1000, 10);
	feed_epoch(1200, 6, 0xb2, 1060, 16, 1000, 10);
	assert_window(6, 100, 1200, 33, 30, 3);
	assert_window(6, 200, 1200, 66, 60, 6);
	/* a window reaching back into the old proxy: its requests (to t=1000) and the new one's */
	assert_window(6, 500, 1200, 300 + 3 + 60 + 6, 300 + 60, 3 + 6);
	assert_window(6, 1200, 1200, 1076, 1060, 16);
	/* and the next carry is the new proxy's document */
	assert_int_equal(metrics_carry_save(carry_path, &err), 1);
	want = doc_epoch(6, 0xb2, 1060, 16, 1000, 10);
	got = slurp(carry_path);
	assert_string_equal(got, want);
	free(got);
	free(want);
	unlink(carry_path);
	metrics_free();
}

/*
 * The base counts, not our last snapshot: a proxy started from an older
 * document (here 900 + 9, while we had read 1000 + 10) added what it has
 * above its base. A base above the counters (a proxy that lies) counts
 * as the counters: never a wrap-around.
 */
static void test_replacement_base_is_what_counts(void **state)
{
	(void)state;
	feed_epoch(0, 7, 0xa1, 0, 0, 0, 0);
	feed_epoch(100, 7, 0xa1, 1000, 10, 0, 0);
	feed_epoch(200, 7, 0xb2, 950, 9, 900, 9);
	assert_window(7, 100, 200, 50, 50, 0);
	feed_epoch(300, 7, 0xc3, 20, 1, 5000, 5000);
	assert_window(7, 100, 300, 0, 0, 0);
	feed_epoch(400, 7, 0xc3, 30, 2, 5000, 5000);
	assert_window(7, 100, 400, 11, 10, 1);
	assert_window(7, 400, 400, 1071, 1060, 11);
	metrics_free();
}

/*
 * Several replacements, with and without carries, a revision missing from
 * one proxy's first documents: the controller's cumulative counters never
 * go down, and each window is what the proxies counted in it (but the
 * requests finished after a proxy's last poll: the gap).
 */
static void test_several_replacements(void **state)
{
	struct rev_window w;
	unsigned long long ok = 0, bad = 0, raw_ok = 0, raw_bad = 0, base_ok = 0, base_bad = 0;
	uint32_t last = 0;
	int64_t t = 0;
	(void)state;
	for (int e = 0; e < 6; e++) {
		bool carried = e % 2 == 1;
		/* the next proxy: a carry starts it from the last document, else 0 */
		base_ok = carried ? raw_ok : 0;
		base_bad = carried ? raw_bad : 0;
		raw_ok = base_ok;
		raw_bad = base_bad;
		for (int k = 0; k < 8; k++, t += 100) {
			raw_ok += 7 + (unsigned long long)e;
			raw_bad += (unsigned long long)(k % 3 == 0);
			ok += 7 + (unsigned long long)e;
			bad += (unsigned long long)(k % 3 == 0);
			feed_epoch(t, 8, 0x1000 + (unsigned long long)e, raw_ok, raw_bad, base_ok, base_bad);
			assert_int_equal(metrics_window("web", "prod", 8, 60000, t, &w), 0);
			assert_true(w.requests >= last);
			last = (uint32_t)w.requests;
			/* everything since the first poll (which counted itself) */
			assert_int_equal(w.requests, ok + bad - 7 - 1);
			assert_int_equal(w.status[5], bad - 1);
			assert_int_equal(w.latency[20], bad - 1);
			assert_true(w.status[5] <= w.requests);
		}
		/* a revision the new proxy does not list at first: stitched when it appears */
		if (e == 3) {
			char *d = xasprintf("{\"epoch\": \"%x\", \"revisions\": []}", 0x1000 + e + 1);
			assert_int_equal(metrics__ingest(d, t), 0);
			free(d);
			t += 100;
		}
	}
	assert_window(8, 800, t - 100, 8 * 12 + 3, 8 * 12, 3);
	metrics_free();
}

/* the history keeps 32-bit counters: windows across 2^32 are still exact */
static void test_counters_past_32_bits(void **state)
{
	(void)state;
	struct rev_window w;
	unsigned long long base = 0xFFFFFF00ULL, req = base, err = 0;
	for (int64_t t = 0; t <= 3000; t += 100) {
		req += 100;
		err += 10;
		feed(t, 9, req, err);
	}
	/* the last second crosses 4294967296 */
	assert_true(req > 0x100000000ULL);
	assert_int_equal(metrics_window("web", "prod", 9, 1000, 3000, &w), 0);
	assert_int_equal(w.requests, 1000);
	assert_int_equal(w.status[5], 100);
	assert_int_equal(w.status[2], 900);
	assert_int_equal(w.latency[0], 900);
	assert_int_equal(w.latency[20], 100);
	/* and it is not mistaken for a proxy restart */
	assert_int_equal(metrics_window("web", "prod", 9, 60000, 3000, &w), 0);
	assert_int_equal(w.start_ms, 0);
	assert_int_equal(w.requests, 3000);
	metrics_free();
}

static void test_garbage_is_ignored(void **state)
{
	(void)state;
	assert_int_equal(metrics__ingest("not json", 0), -1);
	assert_int_equal(metrics__ingest("{\"revisions\": [{\"service\": \"a\"}, 5, null]}", 0), 0);
	assert_int_equal(metrics__ingest("{\"revisions\": [{\"service\": \"a\", \"environment\": \"b\", "
					 "\"revision\": \"x1\", \"requests\": 5, \"status\": [1], \"latency\": []}]}", 0), 0);
	metrics_free();
}

/* how fresh and how long: what a round and a rollback_on sample check first */
static void test_age_and_history(void **state)
{
	(void)state;
	assert_int_equal(metrics_age_ms(1000), -1);
	assert_int_equal(metrics_history_ms(1000), -1);
	assert_int_equal(metrics__ingest("not json", 1000), -1);
	assert_int_equal(metrics_age_ms(1000), -1); /* garbage is not a poll */
	feed(2000, 4, 10, 0);
	feed(2500, 4, 20, 0);
	assert_int_equal(metrics_age_ms(3000), 500);
	assert_int_equal(metrics_history_ms(3000), 1000);
	metrics_free();
	assert_int_equal(metrics_age_ms(3000), -1);
	assert_int_equal(metrics_history_ms(3000), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_windows_by_subtraction),
		cmocka_unit_test(test_old_proxy_restart_continues),
		cmocka_unit_test(test_replacement_small_old_total),
		cmocka_unit_test(test_replacement_larger_new_total),
		cmocka_unit_test(test_replacement_with_carry),
		cmocka_unit_test(test_replacement_base_is_what_counts),
		cmocka_unit_test(test_several_replacements),
		cmocka_unit_test(test_counters_past_32_bits),
		cmocka_unit_test(test_garbage_is_ignored),
		cmocka_unit_test(test_age_and_history),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
