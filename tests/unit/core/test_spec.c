#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <jansson.h>
#include "core/spec.h"

/* run from the repository root (make unit does) */
#define FIXTURES "tests/unit/core/fixtures"
#define KEYS_DOC "docs/gantry.yaml.5.md"

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (!f)
		fail_msg("cannot open %s (run the test from the repository root)", path);
	buf = xmalloc(1 << 20);
	n = fread(buf, 1, (1 << 20) - 1, f);
	fclose(f);
	buf[n] = 0;
	if (len)
		*len = n;
	return buf;
}

/* loads fixture NAME (shown as NAME in diagnostics, so expected files do not depend on paths) */
static int load_fixture(const char *name, struct spec **out, struct diags *d)
{
	char path[512];
	size_t len;
	char *buf;
	int ret;

	snprintf(path, sizeof(path), "%s/%s", FIXTURES, name);
	buf = read_file(path, &len);
	ret = spec_load_buf(name, buf, len, out, d);
	free(buf);
	return ret;
}

static const char *env_get(const struct svc_config *c, const char *key)
{
	for (size_t i = 0; i < c->nenv; i++)
		if (!strcmp(c->env[i].key, key))
			return c->env[i].value;
	return NULL;
}

static struct spec *must_load(const char *name)
{
	struct spec *spec = NULL;
	struct diags d = { 0 };
	if (load_fixture(name, &spec, &d) < 0) {
		diags_print(&d, stderr);
		fail_msg("%s does not load", name);
	}
	assert_int_equal(d.n, 0);
	diags_release(&d);
	return spec;
}

static void resolve(const struct spec *spec, const char *svc, const char *env, struct svc_config *c)
{
	struct gerr err = { { 0 } };
	if (spec_resolve(spec, svc, env, c, &err) < 0)
		fail_msg("resolve %s/%s: %s", svc, env, err.msg);
}

static void test_good_full(void **state)
{
	struct spec *spec = must_load("good-full.yaml");
	struct svc_config c;
	(void)state;

	assert_string_equal(spec->project, "shop");
	assert_int_equal(spec->nenvs, 2);
	assert_int_equal(spec->nservices, 2);
	assert_string_equal(spec->services[0].name, "web");
	assert_int_equal(spec->services[0].line, 7);
	assert_int_equal(spec_find_env(spec, "production")->replicas, 3);
	assert_int_equal(spec_find_env(spec, "production")->nhosts, 2);
	assert_null(spec_find_env(spec, "prod"));

	/* web in staging: the service's own keys */
	resolve(spec, "web", "staging", &c);
	assert_string_equal(c.service, "web");
	assert_string_equal(c.environment, "staging");
	assert_string_equal(c.run, "./hello");
	assert_string_equal(c.build, "make hello");
	assert_string_equal(c.artifact, ".");
	assert_int_equal(c.replicas, 2);
	assert_string_equal(env_get(&c, "GREETING"), "hi");
	assert_string_equal(env_get(&c, "FAIL_RATE"), "0");
	assert_string_equal(env_get(&c, "DEBUG"), "false"); /* scalars are kept as written */
	assert_string_equal(env_get(&c, "RATIO"), "1.50");
	assert_int_equal(c.nhosts, 1);
	assert_string_equal(c.hosts[0], "web.staging.localhost");
	assert_int_equal(c.readiness.kind, PROBE_HTTP);
	assert_string_equal(c.readiness.target, "/ready");
	assert_int_equal(c.readiness.period_ms, 1000);
	assert_int_equal(c.readiness.timeout_ms, 1000);
	assert_int_equal(c.readiness.failure_threshold, 3);
	assert_int_equal(c.readiness.initial_delay_ms, 0);
	assert_int_equal(c.liveness.kind, PROBE_HTTP);
	assert_string_equal(c.liveness.target, "/health");
	assert_int_equal(c.liveness.period_ms, 5000);
	assert_int_equal(c.resources.cpu_millis, 500);
	assert_int_equal(c.resources.memory_bytes, 256LL << 20);
	assert_int_equal(c.resources.pids, 100);
	assert_int_equal(c.stop_grace_ms, 10000);
	assert_int_equal(c.drain_timeout_ms, 30000);
	assert_int_equal(c.progress_deadline_ms, 600000);
	assert_int_equal(c.keep_revisions, 10);
	assert_int_equal(c.strategy.kind, STRATEGY_ROLLING);
	assert_true(c.strategy.max_surge.is_pct && c.strategy.max_surge.value == 25);
	assert_true(!c.strategy.max_unavailable.is_pct && c.strategy.max_unavailable.value == 0);
	assert_int_equal(c.nrollback_on, 1);
	assert_string_equal(c.rollback_on[0], "error_rate > 5% for 2m");
	svc_config_release(&c);

	/* web in production: overrides merge */
	resolve(spec, "web", "production", &c);
	assert_int_equal(c.replicas, 4);                           /* override wins */
	assert_string_equal(env_get(&c, "GREETING"), "hello");     /* env merges key by key */
	assert_string_equal(env_get(&c, "FAIL_RATE"), "0");
	assert_int_equal(c.resources.memory_bytes, 512LL << 20);  /* resources per sub-key */
	assert_int_equal(c.resources.cpu_millis, 500);
	assert_int_equal(c.readiness.kind, PROBE_HTTP);            /* probes per sub-key */
	assert_string_equal(c.readiness.target, "/ready");
	assert_int_equal(c.readiness.period_ms, 2000);
	assert_int_equal(c.strategy.kind, STRATEGY_RECREATE);
	assert_int_equal(c.nhosts, 3); /* environment hosts, plus the default */
	assert_string_equal(c.hosts[0], "shop.example.com");
	assert_string_equal(c.hosts[1], "*.shop.example.com");
	assert_string_equal(c.hosts[2], "web.production.localhost");
	svc_config_release(&c);

	/* worker: defaults and environment replicas */
	resolve(spec, "worker", "staging", &c);
	assert_int_equal(c.replicas, 2); /* environments.staging.replicas */
	assert_null(c.build);
	assert_int_equal(c.readiness.kind, PROBE_EXEC);
	assert_string_equal(c.readiness.target, "test -f /tmp/ready");
	assert_int_equal(c.liveness.kind, PROBE_TCP);
	assert_null(c.liveness.target);
	assert_int_equal(c.liveness.period_ms, 5000);
	assert_int_equal(c.strategy.kind, STRATEGY_CANARY);
	assert_int_equal(c.nhosts, 2); /* the service's hosts replace the environment's */
	assert_string_equal(c.hosts[0], "worker.internal");
	assert_string_equal(c.hosts[1], "worker.staging.localhost");
	assert_int_equal(c.nenv, 0);
	assert_int_equal(c.nrollback_on, 0);
	assert_int_equal(c.resources.memory_bytes, 0);
	svc_config_release(&c);

	resolve(spec, "worker", "production", &c);
	assert_int_equal(c.replicas, 3);
	assert_int_equal(c.nhosts, 2); /* its own, not the environment's (they are web's) */
	assert_string_equal(c.hosts[0], "jobs.shop.example.com");
	svc_config_release(&c);
	spec_free(spec);
}

static void test_good_minimal_defaults(void **state)
{
	struct spec *spec = must_load("good-minimal.yaml");
	struct svc_config c;
	(void)state;

	assert_string_equal(spec->project, "default");
	resolve(spec, "app", "production", &c);
	assert_int_equal(c.replicas, 1);
	assert_int_equal(c.readiness.kind, PROBE_NONE);
	assert_int_equal(c.liveness.kind, PROBE_NONE);
	assert_int_equal(c.readiness.period_ms, 1000);
	assert_int_equal(c.liveness.period_ms, 5000);
	assert_int_equal(c.strategy.kind, STRATEGY_ROLLING);
	assert_true(c.strategy.max_surge.is_pct && c.strategy.max_surge.value == 25);
	assert_string_equal(c.artifact, ".");
	assert_int_equal(c.nhosts, 1);
	assert_string_equal(c.hosts[0], "app.production.localhost");
	svc_config_release(&c);
	spec_free(spec);
}

static void test_resolve_unknown(void **state)
{
	struct spec *spec = must_load("good-minimal.yaml");
	struct svc_config c;
	struct gerr err = { { 0 } };
	(void)state;

	assert_int_equal(spec_resolve(spec, "nope", "production", &c, &err), -1);
	assert_non_null(strstr(err.msg, "no service 'nope'"));
	assert_int_equal(spec_resolve(spec, "app", "staging", &c, &err), -1);
	assert_non_null(strstr(err.msg, "no environment 'staging'"));
	spec_free(spec);
}

/* every bad-X.yaml has bad-X.expected: the first line of each diagnostic, in order */
static void test_bad_fixtures(void **state)
{
	DIR *dir = opendir(FIXTURES);
	struct dirent *de;
	int nfiles = 0;
	(void)state;

	assert_non_null(dir);
	while ((de = readdir(dir))) {
		size_t l = strlen(de->d_name);
		char exp_path[512], *expected, *got = NULL, *line;
		size_t got_len = 0;
		struct spec *spec = (struct spec *)1;
		struct diags d = { 0 };
		FILE *f;

		if (strncmp(de->d_name, "bad-", 4) || l < 5 || strcmp(de->d_name + l - 5, ".yaml"))
			continue;
		nfiles++;
		assert_int_equal(load_fixture(de->d_name, &spec, &d), -1);
		assert_null(spec);
		assert_true(d.n > 0);
		f = open_memstream(&got, &got_len);
		diags_print(&d, f);
		fclose(f);
		snprintf(exp_path, sizeof(exp_path), "%s/%.*s.expected", FIXTURES, (int)(l - 5), de->d_name);
		expected = read_file(exp_path, NULL);
		/* keep only the diagnostic lines (the excerpts start with a space) */
		{
			char *only = xcalloc(1, got_len + 1);
			size_t off = 0;
			for (line = got; line && *line;) {
				char *nl = strchr(line, '\n');
				size_t n = nl ? (size_t)(nl - line) + 1 : strlen(line);
				if (line[0] != ' ') {
					memcpy(only + off, line, n);
					off += n;
				}
				line += n;
			}
			if (strcmp(only, expected))
				fail_msg("%s: diagnostics differ\n--- expected\n%s--- got\n%s", de->d_name, expected, only);
			free(only);
		}
		free(expected);
		free(got);
		diags_release(&d);
	}
	closedir(dir);
	assert_true(nfiles >= 5);
}

/* all problems at once, each with its excerpt and caret */
static void test_all_errors_at_once(void **state)
{
	struct spec *spec = NULL;
	struct diags d = { 0 };
	char *out = NULL;
	size_t len = 0;
	FILE *f;
	(void)state;

	assert_int_equal(load_fixture("bad-values.yaml", &spec, &d), -1);
	assert_true(d.n >= 15);
	for (size_t i = 1; i < d.n; i++)
		assert_true(d.items[i - 1].line <= d.items[i].line); /* in file order */
	f = open_memstream(&out, &len);
	diags_print(&d, f);
	fclose(f);
	assert_non_null(strstr(out, "bad-values.yaml:7:17: error: services.api.stop_grace: invalid duration '10'"
				    " (expected e.g. 500ms, 10s, 1m30s)\n"
				    " 7 |     stop_grace: 10\n"
				    "   |                 ^\n"));
	free(out);
	diags_release(&d);
}

static void test_small_cases(void **state)
{
	static const struct {
		const char *yaml;
		const char *diag; /* expected substring of the first diagnostic */
	} cases[] = {
		{ "environments: {}\nservices: { a: { run: x } }\n", "needs at least one environment" },
		{ "environments: { p: {} }\nservices: {}\n", "needs at least one service" },
		{ "environments: { p: {} }\n", "missing required key 'services'" },
		{ "a: 1\n---\nb: 2\n", "more than one YAML document" },
		{ "x: &a 1\ny: *a\n", "unknown key 'x'" },
		{ "environments: { p: {} }\nservices: { a: { run: *x } }\n", "services.a.run: YAML aliases are not supported" },
		{ "environments: { p: {} }\nservices: { a: &r { run: x }, b: *r }\n", "services.b: YAML aliases are not supported" },
		{ "environments: { p: {} }\nservices: { a: { run: x, strategy: { rolling: {}, recreate: {} } } }\n",
		  "give exactly one strategy" },
		{ "environments: { p: {} }\nservices: { a: { run: x, strategy: { recreate: { x: 1 } } } }\n",
		  "services.a.strategy.recreate: unknown key 'x'" },
		{ "environments: { p: {} }\nservices: { a: { run: x, strategy: { canary: [1] } } }\n",
		  "services.a.strategy.canary: expected a mapping, got a list" },
		{ "environments: { p: {} }\nservices: { a: { run: \"\" } }\n", "services.a.run: must not be empty" },
		{ "environments: { p: {} }\nservices: { a: { run: x, probes: { readiness: { tcp: false } } } }\n",
		  "expected 'true'" },
		{ "environments: { p: {} }\nservices: { a: { run: x, hosts: [a.b, a.b] } }\n", "listed twice" },
		{ "environments: { p: {} }\nservices: { a: { run: x, env: { A: { b: 1 } } } }\n",
		  "services.a.env.A.b: unknown key 'b'" },
		{ "environments: { a-very-long-name-that-is-longer-than-sixty-three-characters-abcdefghijk: {} }\n"
		  "services: { a: { run: x } }\n",
		  "invalid environment name" },
		{ "environments: { p: {} }\nservices: { a: { run: x, strategy: { rolling: { max_surge: 101% } } } }\n",
		  "must be between 0% and 100%" },
		{ "environments: { p: {} }\nservices: { a: { run: x, environments: { p: [1] } } }\n",
		  "services.a.environments.p: expected a mapping, got a list" },
		{ "environments: { p: {} }\nservices: { a: { run: x, 7: y } }\n", "unknown key '7'" },
		{ "environments: { p: {} }\nservices: { a: { run: x, [1]: y } }\n", "mapping keys must be strings" },
		{ "~\n", "the file is empty" },
		{ "# only a comment\n", "the file is empty" },
		{ "\"just a string\"\n", "the top level must be a mapping" },
		/* libfyaml 0.7.12 hangs on some malformed directives: they are refused first */
		{ "%YAML 1.2\n---\nenvironments: {}\n", "t.yaml:1:1: error: YAML directives" },
		{ "\r%\xc1\xfe?", "t.yaml:2:1: error: YAML directives" },
		{ "a: \xc1\xfe\n", "t.yaml:1:4: error: the file is not valid UTF-8" },
		{ "a: \xed\xa0\x80\n", "not valid UTF-8" }, /* a surrogate */
		{ "a: 1\r%TAG x\n", "t.yaml:2:1: error: YAML directives" },
		{ "a: b\0c\n", "t.yaml:1:5: error: the file contains a NUL byte" },
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct spec *spec = NULL;
		struct diags d = { 0 };
		char *all = NULL;
		size_t all_len = 0;
		FILE *f;
		/* (the NUL case: the length runs to the end of the literal) */
		size_t len = strlen(cases[i].yaml);
		if (strstr(cases[i].diag, "NUL"))
			len += 1 + strlen(cases[i].yaml + len + 1);
		int ret = spec_load_buf("t.yaml", cases[i].yaml, len, &spec, &d);
		f = open_memstream(&all, &all_len);
		diags_print(&d, f);
		fclose(f);
		if (ret != -1 || !strstr(all, cases[i].diag))
			fail_msg("case %zu: expected '%s', got:\n%s", i, cases[i].diag, all);
		assert_null(spec);
		free(all);
		diags_release(&d);
	}
}

/* the shape is bounded: huge mappings and lists are refused, not ground through */
static void test_limits(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	struct spec *spec = NULL;
	struct diags d = { 0 };
	(void)state;

	f = open_memstream(&buf, &len);
	fputs("environments: { p: {} }\nservices:\n  a:\n    run: x\n    env:\n", f);
	for (int i = 0; i < 600; i++)
		fprintf(f, "      K%d: v\n", i);
	fclose(f);
	assert_int_equal(spec_load_buf("t.yaml", buf, len, &spec, &d), -1);
	assert_string_equal(d.items[0].message, "too many entries (at most 512)");
	assert_int_equal(d.items[0].line, 6);
	diags_release(&d);
	free(buf);

	f = open_memstream(&buf, &len);
	fputs("services: { a: { run: x } }\nenvironments:\n", f);
	for (int i = 0; i < 65; i++)
		fprintf(f, "  e%d: {}\n", i);
	fclose(f);
	assert_int_equal(spec_load_buf("t.yaml", buf, len, &spec, &d), -1);
	assert_string_equal(d.items[0].message, "too many environments (at most 64)");
	diags_release(&d);
	free(buf);

	buf = xcalloc(1, (2 << 20) + 1);
	memset(buf, ' ', 2 << 20);
	assert_int_equal(spec_load_buf("t.yaml", buf, 2 << 20, &spec, &d), -1);
	assert_non_null(strstr(d.items[0].message, "file too large"));
	diags_release(&d);
	free(buf);
}

/* single-quoted scalars are unescaped and folded by spec.c (libfyaml 0.7.12 gets '''' wrong) */
static void test_single_quoted(void **state)
{
	static const struct {
		const char *yaml_value;
		const char *want;
	} cases[] = {
		{ "'it''s'", "it's" },
		{ "'a''''b'", "a''b" },
		{ "'''''a'", "''a" },
		{ "''''''''''''", "'''''" },
		{ "'a'''''''''''", "a'''''" },
		{ "''", "" },
		{ "'multi\n        line  \n\n        end  '", "multi line\nend  " },
		{ "'a\n\n\n        b'", "a\n\nb" },
		{ "'x\n        '", "x " },
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *yaml = xasprintf("environments: { p: {} }\nservices:\n  a:\n    run: x\n    env:\n      V: %s\n",
				       cases[i].yaml_value);
		struct spec *spec = NULL;
		struct diags d = { 0 };
		struct svc_config c;
		if (spec_load_buf("t.yaml", yaml, strlen(yaml), &spec, &d) < 0) {
			diags_print(&d, stderr);
			fail_msg("case %zu does not load", i);
		}
		resolve(spec, "a", "p", &c);
		if (strcmp(env_get(&c, "V"), cases[i].want))
			fail_msg("case %zu: got [%s], want [%s]", i, env_get(&c, "V"), cases[i].want);
		svc_config_release(&c);
		spec_free(spec);
		free(yaml);
	}
}

static void test_missing_file(void **state)
{
	struct spec *spec = NULL;
	struct diags d = { 0 };
	(void)state;
	assert_int_equal(spec_load(FIXTURES "/does-not-exist.yaml", &spec, &d), -1);
	assert_int_equal(d.n, 1);
	assert_non_null(strstr(d.items[0].message, "cannot open"));
	diags_release(&d);
}

static void test_starter_validates(void **state)
{
	struct spec *spec = NULL;
	struct diags d = { 0 };
	struct svc_config c;
	(void)state;
	if (spec_load_buf("starter", spec_starter, strlen(spec_starter), &spec, &d) < 0) {
		diags_print(&d, stderr);
		fail_msg("the starter spec does not validate");
	}
	resolve(spec, "web", "staging", &c);
	assert_int_equal(c.readiness.kind, PROBE_TCP);
	assert_non_null(strstr(c.run, "$PORT"));
	svc_config_release(&c);
	spec_free(spec);
}

static char *dump(const struct svc_config *c)
{
	json_t *j = svc_config_to_json(c);
	char *s;
	assert_non_null(j);
	s = json_dumps(j, JSON_SORT_KEYS);
	json_decref(j);
	return s;
}

/* c survives to_json -> text -> from_json with every field intact */
static void round_trip(const struct svc_config *c)
{
	char *s1 = dump(c), *s2;
	json_error_t jerr;
	json_t *j = json_loads(s1, 0, &jerr);
	struct svc_config back;
	struct gerr err = { { 0 } };

	assert_non_null(j);
	if (svc_config_from_json(j, &back, &err) < 0)
		fail_msg("from_json: %s\n%s", err.msg, s1);
	json_decref(j);
	s2 = dump(&back);
	assert_string_equal(s1, s2);
	/* and field by field, for what JSON text equality could hide */
	assert_string_equal(back.service, c->service);
	assert_string_equal(back.run, c->run);
	assert_true((!back.build && !c->build) || !strcmp(back.build, c->build));
	assert_int_equal(back.replicas, c->replicas);
	assert_int_equal(back.nenv, c->nenv);
	for (size_t i = 0; i < c->nenv; i++) {
		assert_string_equal(back.env[i].key, c->env[i].key);
		assert_string_equal(back.env[i].value, c->env[i].value);
	}
	assert_int_equal(back.nhosts, c->nhosts);
	for (size_t i = 0; i < c->nhosts; i++)
		assert_string_equal(back.hosts[i], c->hosts[i]);
	assert_int_equal(back.readiness.kind, c->readiness.kind);
	assert_int_equal(back.readiness.period_ms, c->readiness.period_ms);
	assert_int_equal(back.liveness.timeout_ms, c->liveness.timeout_ms);
	assert_int_equal(back.liveness.initial_delay_ms, c->liveness.initial_delay_ms);
	assert_int_equal(back.liveness.failure_threshold, c->liveness.failure_threshold);
	assert_int_equal(back.resources.memory_bytes, c->resources.memory_bytes);
	assert_int_equal(back.resources.cpu_millis, c->resources.cpu_millis);
	assert_int_equal(back.resources.pids, c->resources.pids);
	assert_int_equal(back.stop_grace_ms, c->stop_grace_ms);
	assert_int_equal(back.drain_timeout_ms, c->drain_timeout_ms);
	assert_int_equal(back.progress_deadline_ms, c->progress_deadline_ms);
	assert_int_equal(back.strategy.kind, c->strategy.kind);
	assert_true(back.strategy.max_surge.value == c->strategy.max_surge.value);
	assert_int_equal(back.strategy.max_surge.is_pct, c->strategy.max_surge.is_pct);
	assert_true(back.strategy.max_unavailable.value == c->strategy.max_unavailable.value);
	assert_int_equal(back.nrollback_on, c->nrollback_on);
	assert_int_equal(back.keep_revisions, c->keep_revisions);
	svc_config_release(&back);
	free(s1);
	free(s2);
}

static void test_json_round_trip(void **state)
{
	static const char *const files[] = { "good-full.yaml", "good-minimal.yaml" };
	struct svc_config c;
	(void)state;

	for (size_t f = 0; f < ARRAY_SIZE(files); f++) {
		struct spec *spec = must_load(files[f]);
		for (size_t i = 0; i < spec->nservices; i++)
			for (size_t j = 0; j < spec->nenvs; j++) {
				resolve(spec, spec->services[i].name, spec->envs[j].name, &c);
				round_trip(&c);
				svc_config_release(&c);
			}
		spec_free(spec);
	}

	/* odd but legal values: fractions, unicode, empty env value, large numbers */
	{
		struct spec *spec = must_load("good-minimal.yaml");
		resolve(spec, "app", "production", &c);
		svc_config_set_env(&c, "EMPTY", "");
		svc_config_set_env(&c, "UNICODE", "h\xc3\xa9llo \"quoted\"\n");
		c.strategy.max_surge.is_pct = true;
		c.strategy.max_surge.value = 0.1;
		c.resources.memory_bytes = 1LL << 40;
		c.progress_deadline_ms = 7 * 86400000LL;
		round_trip(&c);
		svc_config_release(&c);
		spec_free(spec);
	}
}

static void test_set_env(void **state)
{
	struct svc_config c = { 0 };
	(void)state;
	svc_config_set_env(&c, "B", "1");
	svc_config_set_env(&c, "A", "2");
	svc_config_set_env(&c, "C", "3");
	svc_config_set_env(&c, "B", "replaced");
	assert_int_equal(c.nenv, 3);
	assert_string_equal(c.env[0].key, "A");
	assert_string_equal(c.env[1].key, "B");
	assert_string_equal(c.env[1].value, "replaced");
	assert_string_equal(c.env[2].key, "C");
	svc_config_release(&c);
}

static void test_json_bad(void **state)
{
	static const struct {
		const char *json;
		const char *key; /* the error names it */
	} cases[] = {
		{ "[]", "object" },
		{ "{}", "service" },
		{ "{\"service\": \"a\", \"environment\": \"p\"}", "run" },
		{ "{\"service\": 1, \"environment\": \"p\", \"run\": \"x\"}", "service" },
		{ "{\"service\": \"a\", \"environment\": \"p\", \"run\": \"\"}", "run" },
		{ "{\"service\": \"a\", \"environment\": \"p\", \"run\": \"x\", \"replicas\": -1}", "replicas" },
		{ "{\"service\": \"a\", \"environment\": \"p\", \"run\": \"x\", \"replicas\": 1.5}", "replicas" },
		{ "{\"service\": \"a\", \"environment\": \"p\", \"run\": \"x\", \"env\": []}", "env" },
		{ "{\"service\": \"a\", \"environment\": \"p\", \"run\": \"x\", \"env\": {\"A\": 1}}", "env.A" },
		{ "{\"service\": \"a\", \"environment\": \"p\", \"run\": \"x\", \"hosts\": [1]}", "hosts[0]" },
		{ "{\"service\": \"a\", \"environment\": \"p\", \"run\": \"x\", \"readiness\": 3}", "readiness" },
		{ "{\"service\": \"a\", \"environment\": \"p\", \"run\": \"x\", \"readiness\": {\"kind\": \"grpc\"}}",
		  "readiness.kind" },
		{ "{\"service\": \"a\", \"environment\": \"p\", \"run\": \"x\", \"readiness\": {\"kind\": \"http\"}}",
		  "readiness.target" },
		{ "{\"service\": \"a\", \"environment\": \"p\", \"run\": \"x\", \"liveness\": {\"period_ms\": \"1s\"}}",
		  "liveness.period_ms" },
		{ "{\"service\": \"a\", \"environment\": \"p\", \"run\": \"x\", \"stop_grace_ms\": -5}", "stop_grace_ms" },
		{ "{\"service\": \"a\", \"environment\": \"p\", \"run\": \"x\", \"resources\": {\"pids\": -1}}",
		  "resources.pids" },
		{ "{\"service\": \"a\", \"environment\": \"p\", \"run\": \"x\", \"strategy\": {\"kind\": 7}}", "strategy.kind" },
		{ "{\"service\": \"a\", \"environment\": \"p\", \"run\": \"x\", \"strategy\": {\"max_surge\": 3}}",
		  "strategy.max_surge" },
		{ "{\"service\": \"a\", \"environment\": \"p\", \"run\": \"x\", \"strategy\": {\"max_surge\": {\"percent\": true, \"value\": 101}}}",
		  "strategy.max_surge" },
		{ "{\"service\": \"a\", \"environment\": \"p\", \"run\": \"x\", \"rollback_on\": \"x\"}", "rollback_on" },
		{ "{\"service\": \"a\", \"environment\": \"p\", \"run\": \"x\", \"build\": 5}", "build" },
		{ "{\"service\": \"a\", \"environment\": \"p\", \"run\": \"x\", \"sticky\": true}", "sticky" },
		{ "{\"service\": \"a\", \"environment\": \"p\", \"run\": \"x\", \"sticky\": {\"max_age_ms\": 1}}", "sticky.cookie" },
		{ "{\"service\": \"a\", \"environment\": \"p\", \"run\": \"x\", \"sticky\": {\"cookie\": \"s\", \"max_age_ms\": -1}}", "sticky.max_age_ms" },
		{ "{\"service\": \"a\\u0000b\", \"environment\": \"p\", \"run\": \"x\"}", "service" },
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		json_error_t jerr;
		json_t *j = json_loads(cases[i].json, JSON_ALLOW_NUL, &jerr);
		struct svc_config c;
		struct gerr err = { { 0 } };
		if (!j)
			fail_msg("case %zu: bad test JSON: %s", i, jerr.text);
		if (svc_config_from_json(j, &c, &err) != -1)
			fail_msg("case %zu accepted: %s", i, cases[i].json);
		if (!strstr(err.msg, cases[i].key))
			fail_msg("case %zu: error '%s' does not name '%s'", i, err.msg, cases[i].key);
		assert_null(c.service); /* out is left empty */
		json_decref(j);
	}
}

/*
 * services.S.sticky: true is the session cookie gantry_rev, a map names
 * the cookie and its Max-Age, an override turns it off; the stored form
 * has it only when on (configs stored before it digest the same).
 */
static void test_sticky(void **state)
{
	static const char text[] =
		"environments: { staging: {}, production: {} }\n"
		"services:\n"
		"  a: { run: ./a, sticky: true }\n"
		"  b:\n"
		"    run: ./b\n"
		"    sticky: { cookie: shop.rev, max_age: 24h }\n"
		"    environments: { production: { sticky: false } }\n"
		"  c: { run: ./c }\n";
	struct spec *spec = NULL;
	struct diags d = { 0 };
	struct svc_config c;
	json_t *j;
	(void)state;

	if (spec_load_buf("sticky.yaml", text, strlen(text), &spec, &d) < 0) {
		diags_print(&d, stderr);
		fail_msg("the sticky spec does not validate");
	}
	resolve(spec, "a", "staging", &c);
	assert_string_equal(c.sticky.cookie, "gantry_rev");
	assert_int_equal(c.sticky.max_age_ms, 0);
	round_trip(&c);
	svc_config_release(&c);
	resolve(spec, "b", "staging", &c);
	assert_string_equal(c.sticky.cookie, "shop.rev");
	assert_int_equal(c.sticky.max_age_ms, 86400000);
	round_trip(&c);
	j = svc_config_to_json(&c);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "sticky"), "max_age_ms")), 86400000);
	json_decref(j);
	svc_config_release(&c);
	resolve(spec, "b", "production", &c);
	assert_null(c.sticky.cookie);
	j = svc_config_to_json(&c);
	assert_null(json_object_get(j, "sticky"));
	json_decref(j);
	svc_config_release(&c);
	resolve(spec, "c", "staging", &c);
	assert_null(c.sticky.cookie);
	svc_config_release(&c);
	spec_free(spec);
}

/* a config missing required strings still serializes; reading it back names what is missing */
static void test_json_of_empty_config(void **state)
{
	struct svc_config c = { 0 }, back;
	struct gerr err = { { 0 } };
	json_t *j = svc_config_to_json(&c);
	(void)state;
	assert_non_null(j);
	assert_int_equal(svc_config_from_json(j, &back, &err), -1);
	assert_non_null(strstr(err.msg, "'service'"));
	json_decref(j);
}

/* old revisions lack newer keys: they load with defaults */
static void test_json_missing_keys_default(void **state)
{
	json_t *j = json_loads("{\"service\": \"a\", \"environment\": \"p\", \"run\": \"x\", \"future_key\": 1}", 0, NULL);
	struct svc_config c;
	struct gerr err = { { 0 } };
	(void)state;
	assert_int_equal(svc_config_from_json(j, &c, &err), 0);
	assert_int_equal(c.stop_grace_ms, 10000);
	assert_int_equal(c.keep_revisions, 10);
	assert_int_equal(c.readiness.period_ms, 1000);
	assert_int_equal(c.liveness.period_ms, 5000);
	assert_string_equal(c.artifact, ".");
	svc_config_release(&c);
	json_decref(j);
}

/* env: {K: {secret: NAME}}, files:, an override per environment, the JSON round trip */
static void test_secret_refs(void **state)
{
	static const char yaml[] =
		"environments:\n"
		"  staging: {}\n"
		"  prod: { secrets: { recipients: [age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p] } }\n"
		"services:\n"
		"  a:\n"
		"    run: x\n"
		"    env: { PLAIN: v, DB: { secret: db_password } }\n"
		"    files: { tls.key: { secret: tls, version: 2 } }\n"
		"    environments:\n"
		"      prod: { env: { PLAIN: { secret: plain_prod, version: 7 }, DB: literal } }\n";
	struct spec *spec = NULL;
	struct diags d = { 0 };
	struct svc_config c;
	struct gerr err;
	(void)state;

	assert_int_equal(spec_load_buf("t.yaml", yaml, strlen(yaml), &spec, &d), 0);
	assert_int_equal(spec_find_env(spec, "prod")->nrecipients, 1);
	assert_int_equal(spec_resolve(spec, "a", "staging", &c, &err), 0);
	assert_int_equal(c.nenv, 1);
	assert_string_equal(c.env[0].key, "PLAIN");
	assert_int_equal(c.nsecrets, 2);
	/* env references first, then files */
	assert_false(c.secrets[0].file);
	assert_string_equal(c.secrets[0].target, "DB");
	assert_string_equal(c.secrets[0].secret, "db_password");
	assert_int_equal(c.secrets[0].version, 0);
	assert_int_equal(c.secrets[0].line, 7);
	assert_int_equal(c.secrets[0].col, 26);
	assert_true(c.secrets[1].file);
	assert_string_equal(c.secrets[1].target, "tls.key");
	assert_int_equal(c.secrets[1].version, 2);
	round_trip(&c);
	/* --set env.DB=x replaces the reference */
	svc_config_set_env(&c, "DB", "x");
	assert_int_equal(c.nsecrets, 1);
	assert_int_equal(c.nenv, 2);
	svc_config_release(&c);
	/* the override: a plain value replaces a secret and the other way round */
	assert_int_equal(spec_resolve(spec, "a", "prod", &c, &err), 0);
	assert_int_equal(c.nenv, 1);
	assert_string_equal(c.env[0].key, "DB");
	assert_string_equal(c.env[0].value, "literal");
	assert_int_equal(c.nsecrets, 2);
	assert_string_equal(c.secrets[0].target, "PLAIN");
	assert_int_equal(c.secrets[0].version, 7);
	round_trip(&c);
	svc_config_release(&c);
	spec_free(spec);
	diags_release(&d);
}

/* migrations.maintenance_allow: references to the secret store, kept through JSON; a literal value refused */
static void test_maint_allow(void **state)
{
	static const char yaml[] =
		"environments:\n"
		"  staging: {}\n"
		"services:\n"
		"  a:\n"
		"    run: x\n"
		"    migrations:\n"
		"      dir: m\n"
		"      mode: maintenance\n"
		"      maintenance_allow:\n"
		"        - { header: X-Ops, value: { secret: ops_bypass } }\n"
		"        - { header: x-team, value: { secret: team, version: 3 } }\n";
	static const char bad[] =
		"environments: { staging: {} }\n"
		"services:\n"
		"  a:\n"
		"    run: x\n"
		"    migrations:\n"
		"      dir: m\n"
		"      maintenance_allow:\n"
		"        - { header: X-Ops, value: s3cret-s3cret }\n"
		"        - { header: X-Ops, value: { secret: a } }\n"
		"        - { header: x-ops, value: { secret: b } }\n";
	struct spec *spec = NULL;
	struct diags d = { 0 };
	struct svc_config c;
	struct gerr err;
	char *text;
	json_t *j;
	(void)state;

	assert_int_equal(spec_load_buf("t.yaml", yaml, strlen(yaml), &spec, &d), 0);
	assert_int_equal(spec_resolve(spec, "a", "staging", &c, &err), 0);
	assert_int_equal(c.migrations.nallow, 2);
	assert_string_equal(c.migrations.allow[0].header, "X-Ops");
	assert_string_equal(c.migrations.allow[0].secret, "ops_bypass");
	assert_int_equal(c.migrations.allow[0].version, 0);
	assert_int_equal(c.migrations.allow[1].version, 3);
	assert_int_equal(c.nsecrets, 0); /* not the replicas' env */
	round_trip(&c);
	j = svc_config_to_json(&c);
	text = json_dumps(j, JSON_COMPACT);
	assert_non_null(strstr(text, "\"maintenance_allow\":[{\"header\":\"X-Ops\",\"secret\":\"ops_bypass\"}"));
	free(text);
	json_decref(j);
	svc_config_release(&c);
	spec_free(spec);
	diags_release(&d);

	spec = NULL;
	assert_int_equal(spec_load_buf("b.yaml", bad, strlen(bad), &spec, &d), -1);
	assert_int_equal(d.n, 2);
	assert_int_equal(d.items[0].line, 8);
	assert_non_null(strstr(d.items[0].message, "the value is a secret"));
	assert_null(strstr(d.items[0].message, "s3cret"));
	assert_int_equal(d.items[1].line, 10);
	assert_non_null(strstr(d.items[1].message, "given twice"));
	spec_free(spec);
	diags_release(&d);
}

/* environments.E.secrets.file and {sops: PATH}: pinned to no version until the controller stores the file */
static void test_secret_sops_refs(void **state)
{
	static const char yaml[] =
		"environments:\n"
		"  prod: { secrets: { file: secrets/prod.sops.yaml } }\n"
		"services:\n"
		"  a:\n"
		"    run: x\n"
		"    env: { DB: { sops: db.password } }\n"
		"    files: { tls.key: { sops: tls.0.key } }\n";
	struct spec *spec = NULL;
	struct diags d = { 0 };
	struct svc_config c;
	struct gerr err;
	json_t *j;
	char *text;
	(void)state;

	assert_int_equal(spec_load_buf("t.yaml", yaml, strlen(yaml), &spec, &d), 0);
	assert_string_equal(spec_find_env(spec, "prod")->secrets_file, "secrets/prod.sops.yaml");
	assert_int_equal(spec_resolve(spec, "a", "prod", &c, &err), 0);
	assert_int_equal(c.nsecrets, 2);
	assert_string_equal(c.secrets[0].secret, SECRET_SOPS);
	assert_string_equal(c.secrets[0].sops, "db.password");
	assert_int_equal(c.secrets[0].line, 6);
	assert_string_equal(c.secrets[1].sops, "tls.0.key");
	c.secrets[0].version = c.secrets[1].version = 3;
	j = svc_config_to_json(&c);
	text = json_dumps(json_object_get(json_object_get(j, "env"), "DB"), JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(text, "{\"sops\":\"db.password\",\"version\":3}");
	free(text);
	json_decref(j);
	round_trip(&c);
	svc_config_release(&c);
	spec_free(spec);
	diags_release(&d);
}

static void test_secret_refs_bad(void **state)
{
	static const struct { const char *yaml, *diag; } cases[] = {
		{ "services: { a: { run: x, env: { A: { secret: \"bad name\" } } } }\n", "services.a.env.A.secret: invalid secret name 'bad name'" },
		{ "services: { a: { run: x, env: { A: { version: 2 } } } }\n", "services.a.env.A: missing required key 'secret'" },
		{ "services: { a: { run: x, env: { A: { secret: s, version: 0 } } } }\n", "expected a version number >= 1, got '0'" },
		{ "services: { a: { run: x, files: { ../x: { secret: s } } } }\n", "invalid file name '../x'" },
		{ "services: { a: { run: x, files: { f: s } } }\n", "services.a.files.f: expected a mapping" },
		{ "services: { a: { run: x, env: { A: { sops: db.password, version: 2 } } } }\n", "it takes no 'secret' nor 'version'" },
		{ "services: { a: { run: x, env: { A: { sops: db..password } } } }\n", "invalid SOPS path 'db..password'" },
		{ "services: { a: { run: x, env: { A: { sops: db.pw, secret: s } } } }\n", "it takes no 'secret' nor 'version'" },
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char buf[512];
		struct spec *spec = NULL;
		struct diags d = { 0 };
		char *all = NULL;
		size_t all_len = 0;
		FILE *f;
		snprintf(buf, sizeof(buf), "environments: { p: { secrets: { recipients: [nope] } } }\n%s", cases[i].yaml);
		assert_int_equal(spec_load_buf("t.yaml", buf, strlen(buf), &spec, &d), -1);
		f = open_memstream(&all, &all_len);
		diags_print(&d, f);
		fclose(f);
		if (!strstr(all, cases[i].diag) || !strstr(all, "'nope' is not an age recipient"))
			fail_msg("case %zu: expected '%s', got:\n%s", i, cases[i].diag, all);
		free(all);
		diags_release(&d);
	}
}

/* docs/gantry.yaml.5.md lists every key of the validator's tables */
static void test_docs_list_every_key(void **state)
{
	char *doc = read_file(KEYS_DOC, NULL), *keys = NULL, *line;
	size_t len = 0;
	FILE *f = open_memstream(&keys, &len);
	int n = 0;
	(void)state;

	spec_print_keys(f);
	fclose(f);
	for (line = keys; *line;) {
		char *tab = strchr(line, '\t'), *nl = strchr(line, '\n'), want[300];
		assert_non_null(tab);
		snprintf(want, sizeof(want), "`%.*s`", (int)(tab - line), line);
		if (!strstr(doc, want))
			fail_msg("%s does not document %s", KEYS_DOC, want);
		n++;
		line = nl ? nl + 1 : line + strlen(line);
	}
	assert_true(n > 30);
	free(keys);
	free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_full),
		cmocka_unit_test(test_secret_refs),
		cmocka_unit_test(test_secret_refs_bad),
		cmocka_unit_test(test_secret_sops_refs),
		cmocka_unit_test(test_good_minimal_defaults),
		cmocka_unit_test(test_resolve_unknown),
		cmocka_unit_test(test_bad_fixtures),
		cmocka_unit_test(test_all_errors_at_once),
		cmocka_unit_test(test_small_cases),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_single_quoted),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_starter_validates),
		cmocka_unit_test(test_json_round_trip),
		cmocka_unit_test(test_set_env),
		cmocka_unit_test(test_json_bad),
		cmocka_unit_test(test_json_missing_keys_default),
		cmocka_unit_test(test_sticky),
		cmocka_unit_test(test_json_of_empty_config),
		cmocka_unit_test(test_maint_allow),
		cmocka_unit_test(test_docs_list_every_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
