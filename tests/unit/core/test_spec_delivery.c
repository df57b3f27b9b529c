/* the progressive-delivery keys of gantry.yaml: validation, resolution, JSON round trip */
#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include "core/spec.h"
#include "rollout/canary.h"

static const char good[] =
	"project: shop\n"
	"environments:\n"
	"  staging: {}\n"
	"  production: { replicas: 4 }\n"
	"analysis_templates:\n"
	"  slo:\n"
	"    interval: 10s\n"
	"    metrics:\n"
	"      - { query: error_rate, fail_if: \"> 0.1%\", for: 2m, min_requests: 50 }\n"
	"      - { name: p99, fail_if: \"latency_p99 > 500ms\" }\n"
	"  shared: { metrics: [ { fail_if: \"error_rate > 1%\" } ] }\n"
	"services:\n"
	"  api:\n"
	"    run: ./api --port $PORT\n"
	"    strategy:\n"
	"      canary:\n"
	"        steps:\n"
	"          - weight: 5\n"
	"          - pause: 10m\n"
	"          - analysis: slo\n"
	"          - match: { header: { X-Canary: \"true\", x-user: \"beta-*\" } }\n"
	"          - replicas: 2\n"
	"          - weight: 50\n"
	"          - pause: {}\n"
	"        match: { header: { x-force-canary: \"1\" } }\n"
	"        analysis: { name: background, starting_step: 1 }\n"
	"    analysis:\n"
	"      background:\n"
	"        interval: 30s\n"
	"        count: 0\n"
	"        failure_limit: 2\n"
	"        inconclusive_limit: 3\n"
	"        metrics:\n"
	"          - { query: latency_p95, compare: baseline, method: mann-whitney, confidence: 99%, fail_if: \"> 1.10x\" }\n"
	"          - { name: prom, provider: prometheus, address: \"http://127.0.0.1:9090\", query: \"sum(rate(x{rev='{{revision}}'}[1m]))\", fail_if: \"value > 3\", timeout: 5s }\n"
	"          - { name: web, provider: http, url: \"http://127.0.0.1:1/m\", json_path: data.value, fail_if: \"> 0.5\" }\n"
	"          - { name: cmd, provider: command, command: \"echo 0\", fail_if: \"value >= 1\" }\n"
	"      slo:\n"
	"        metrics: [ { query: error_rate, fail_if: \"> 5%\" } ]\n"
	"    rollback_on:\n"
	"      - \"error_rate > 5% for 2m\"\n"
	"      - \"latency_p95 > 1000ms for 5m\"\n"
	"      - \"restarts > 5 in 5m\"\n"
	"      - \"ready_ratio < 50% for 30s\"\n"
	"    watch: 15m\n"
	"    shield: true\n"
	"    on_error: rollback\n"
	"    environments:\n"
	"      staging:\n"
	"        strategy: { bluegreen: { auto_promote: false, pre_promotion_analysis: slo, keep_previous: 5m } }\n"
	"  web:\n"
	"    run: ./web\n"
	"    strategy: bluegreen\n";

static struct spec *load_ok(const char *text)
{
	struct spec *spec = NULL;
	struct diags d = { 0 };
	if (spec_load_buf("gantry.yaml", text, strlen(text), &spec, &d) < 0) {
		diags_print(&d, stderr);
		fail_msg("spec did not load");
	}
	diags_release(&d);
	return spec;
}

static void test_resolve(void **state)
{
	(void)state;
	struct spec *spec = load_ok(good);
	struct svc_config c;
	struct gerr err;
	const struct analysis_def *a;

	assert_int_equal(spec_resolve(spec, "api", "production", &c, &err), 0);
	assert_int_equal(c.strategy.kind, STRATEGY_CANARY);
	assert_int_equal(c.canary.nsteps, 7);
	assert_int_equal(c.canary.steps[0].kind, CSTEP_WEIGHT);
	assert_int_equal(c.canary.steps[0].weight, 5);
	assert_int_equal(c.canary.steps[1].pause_ms, 600000);
	assert_string_equal(c.canary.steps[2].analysis, "slo");
	assert_int_equal(c.canary.steps[3].nheaders, 2);
	assert_string_equal(c.canary.steps[3].headers[0].name, "x-canary");
	assert_string_equal(c.canary.steps[3].headers[0].value, "true");
	assert_false(c.canary.steps[3].headers[0].prefix);
	assert_string_equal(c.canary.steps[3].headers[1].value, "beta-");
	assert_true(c.canary.steps[3].headers[1].prefix);
	assert_int_equal(c.canary.steps[4].replicas, 2);
	assert_int_equal(c.canary.steps[6].pause_ms, -1);
	assert_int_equal(c.canary.nmatch, 1);
	assert_string_equal(c.canary.analysis, "background");
	assert_int_equal(c.canary.analysis_starting_step, 1);
	assert_int_equal(c.nrollback_on, 4);
	assert_int_equal(c.watch_ms, 15 * 60000);
	assert_true(c.shield);
	assert_int_equal(c.on_error, ON_ERROR_ROLLBACK);
	/* the service's slo wins over the template; other templates join */
	assert_int_equal(c.nanalyses, 3);
	a = rollout_find_analysis(&c, "slo");
	assert_non_null(a);
	assert_int_equal(a->nmetrics, 1);
	assert_string_equal(a->metrics[0].fail_if, "> 5%");
	assert_non_null(rollout_find_analysis(&c, "shared"));
	a = rollout_find_analysis(&c, "background");
	assert_int_equal(a->interval_ms, 30000);
	assert_int_equal(a->failure_limit, 2);
	assert_int_equal(a->inconclusive_limit, 3);
	assert_int_equal(a->error_limit, 4);
	assert_int_equal(a->nmetrics, 4);
	assert_true(a->metrics[0].compare_baseline);
	assert_true(a->metrics[0].mann_whitney);
	assert_true(a->metrics[0].confidence > 0.989 && a->metrics[0].confidence < 0.991);
	assert_string_equal(a->metrics[0].name, "latency_p95");
	assert_int_equal(a->metrics[1].provider, PROVIDER_PROMETHEUS);
	assert_int_equal(a->metrics[1].timeout_ms, 5000);
	assert_int_equal(a->metrics[2].provider, PROVIDER_HTTP);
	assert_string_equal(a->metrics[2].json_path, "data.value");
	assert_int_equal(a->metrics[3].provider, PROVIDER_COMMAND);
	svc_config_release(&c);

	/* the staging override switches to blue-green */
	assert_int_equal(spec_resolve(spec, "api", "staging", &c, &err), 0);
	assert_int_equal(c.strategy.kind, STRATEGY_BLUEGREEN);
	assert_false(c.bluegreen.auto_promote);
	assert_string_equal(c.bluegreen.preview_tag, "preview");
	assert_string_equal(c.bluegreen.pre_promotion_analysis, "slo");
	assert_int_equal(c.bluegreen.keep_previous_ms, 300000);
	svc_config_release(&c);

	/* the templates: `for:` joins the condition; defaults */
	assert_int_equal(spec_resolve(spec, "web", "production", &c, &err), 0);
	assert_int_equal(c.strategy.kind, STRATEGY_BLUEGREEN);
	assert_true(c.bluegreen.auto_promote);
	assert_int_equal(c.bluegreen.keep_previous_ms, 600000);
	assert_int_equal(c.watch_ms, 30 * 60000);
	assert_false(c.shield);
	assert_int_equal(c.on_error, ON_ERROR_PAUSE);
	a = rollout_find_analysis(&c, "slo");
	assert_non_null(a);
	assert_string_equal(a->metrics[0].fail_if, "> 0.1% for 2m");
	assert_string_equal(a->metrics[0].name, "error_rate");
	assert_int_equal(a->metrics[0].min_requests, 50);
	assert_string_equal(a->metrics[1].name, "p99");
	svc_config_release(&c);
	spec_free(spec);
}

static char *dumps(const struct svc_config *c)
{
	json_t *j = svc_config_to_json(c);
	char *s;
	assert_non_null(j);
	s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(j);
	return s;
}

static void test_json_round_trip(void **state)
{
	(void)state;
	struct spec *spec = load_ok(good);
	const char *envs[] = { "production", "staging" }, *svcs[] = { "api", "web" };

	for (size_t i = 0; i < 2; i++)
		for (size_t k = 0; k < 2; k++) {
			struct svc_config c, back;
			struct gerr err;
			json_t *j;
			char *a, *b;
			assert_int_equal(spec_resolve(spec, svcs[i], envs[k], &c, &err), 0);
			a = dumps(&c);
			j = json_loads(a, 0, NULL);
			if (svc_config_from_json(j, &back, &err) < 0)
				fail_msg("%s", err.msg);
			b = dumps(&back);
			assert_string_equal(a, b);
			json_decref(j);
			free(a);
			free(b);
			svc_config_release(&c);
			svc_config_release(&back);
		}
	spec_free(spec);
}

static void test_state_machine_runs_on_resolved_config(void **state)
{
	(void)state;
	struct spec *spec = load_ok(good);
	struct svc_config c;
	struct gerr err;
	struct canary_state st;
	struct canary_actions a;
	struct analysis_run run;

	assert_int_equal(spec_resolve(spec, "api", "production", &c, &err), 0);
	assert_int_equal(canary_start(&st, &c, 1, 2, c.replicas, 0, &a, &err), 0);
	/* every analysis resolves into a runnable analysis */
	for (size_t i = 0; i < c.nanalyses; i++) {
		if (analysis_run_init(&run, &c.analyses[i], 2, 0, &err) < 0)
			fail_msg("%s: %s", c.analyses[i].name, err.msg);
		analysis_run_release(&run);
	}
	svc_config_release(&c);
	spec_free(spec);
}

/* loads text and expects a diagnostic at line:col containing want */
static int nbad;

static void expect_error(const char *text, int line, int col, const char *want)
{
	struct spec *spec = NULL;
	struct diags d = { 0 };
	bool found = false;

	assert_int_equal(spec_load_buf("gantry.yaml", text, strlen(text), &spec, &d), -1);
	for (size_t i = 0; i < d.n; i++)
		if (strstr(d.items[i].message, want) && d.items[i].line == line && (col == 0 || d.items[i].col == col))
			found = true;
	if (!found) {
		diags_print(&d, stderr);
		fprintf(stderr, "MISMATCH: no diagnostic %d:%d '%s'\n", line, col, want);
		nbad++;
	}
	diags_release(&d);
}

#define HEAD "environments: { prod: {} }\nservices:\n  api:\n    run: x\n"

static void test_errors(void **state)
{
	(void)state;
	/* the column points into the string: col 5 + quote + 19 */
	expect_error(HEAD "    rollback_on: [ \"error_rate > 5% for\" ]\n", 5, 40,
		     "invalid condition \"error_rate > 5% for\": expected a duration after 'for'");
	expect_error(HEAD "    rollback_on: [ \"eror_rate > 5%\" ]\n", 5, 21, "did you mean 'error_rate'?");
	expect_error(HEAD "    strategy: { canary: { steps: [ { wieght: 5 } ] } }\n", 5, 38,
		     "unknown step 'wieght' (did you mean 'weight'?)");
	expect_error(HEAD "    strategy: { canary: { steps: [ { weight: 150 } ] } }\n", 5, 46, "must be between 0 and 100");
	expect_error(HEAD "    strategy: { canary: { steps: [ { weight: 5, pause: 1m } ] } }\n", 5, 36,
		     "a step has exactly one key");
	expect_error(HEAD "    strategy: { canary: { steps: [ { analysis: nope } ] } }\n", 3, 3, "no analysis 'nope' in environment 'prod'");
	/* found by fuzz_spec: a reference broken only in the second environment */
	expect_error("environments: { a: {}, b: {} }\nservices:\n  api:\n    run: x\n"
		     "    strategy: { canary: { steps: [ { analysis: nope } ] } }\n"
		     "    environments: { a: { strategy: bluegreen } }\n", 3, 3, "no analysis 'nope' in environment 'b'");
	expect_error(HEAD "    strategy: { canary: { stpes: [] } }\n", 5, 27, "unknown key 'stpes' (did you mean 'steps'?)");
	expect_error(HEAD "    strategy: { canary: { steps: [ { pause: forever } ] } }\n", 5, 45, "invalid pause 'forever'");
	expect_error(HEAD "    strategy: { canary: { match: { header: { \"bad header\": x } } } }\n", 5, 46,
		     "invalid header name");
	expect_error(HEAD "    strategy: { bluegreen: { keep_previus: 5m } }\n", 5, 30, "did you mean 'keep_previous'?");
	expect_error(HEAD "    shield: yes\n", 5, 13, "expected true or false");
	expect_error(HEAD "    on_error: ignore\n", 5, 15, "unknown value 'ignore' (expected pause or rollback)");
	expect_error(HEAD "    analysis: { a: { metrics: [ { provider: prom, fail_if: \"> 1\" } ] } }\n", 5, 45,
		     "did you mean 'prometheus'?");
	expect_error(HEAD "    analysis: { a: { metrics: [ { provider: prometheus, fail_if: \"> 1\" } ] } }\n", 5, 33,
		     "a prometheus metric needs address and query");
	expect_error(HEAD "    analysis: { a: { metrics: [ { query: error_rate, fail_if: \"> 5\" } ] } }\n", 5, 66,
		     "error_rate needs a percentage");
	expect_error(HEAD "    analysis: { a: { metrics: [ { query: error_rate, compare: baseline, method: mann-whitney, fail_if: \"> 1.1x\" } ] } }\n",
		     5, 33, "mann-whitney compares latencies");
	expect_error(HEAD "    analysis: { a: { interval: 10s } }\n", 5, 20, "missing required key 'metrics'");
	expect_error(HEAD "    analysis: { a: { metrics: [ { query: error_rate } ] } }\n", 5, 33, "missing required key 'fail_if'");
	expect_error("analysis_templates: { t: { count: -1, metrics: [ { fail_if: \"error_rate > 1%\" } ] } }\n" HEAD, 1, 35,
		     "must be between 0 and 100000");
	assert_int_equal(nbad, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resolve),
		cmocka_unit_test(test_json_round_trip),
		cmocka_unit_test(test_state_machine_runs_on_resolved_config),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
