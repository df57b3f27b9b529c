/*
 * The spec's container keys (src/core/spec_docker.c): every field resolved,
 * the image reference and registry syntax with the column of the fault, the
 * rules between container and process keys (reported once, at the key), the
 * JSON round trip of a revision's config, and old JSON without the fields.
 * bad-docker.yaml/.expected is checked with the other bad fixtures
 * (test_spec.c), line:col of every diagnostic.
 */
#include "common.h"
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>
#include "core/spec.h"

/* run from the repository root (make unit does) */
#define FIXTURES "tests/unit/core/fixtures"
#define EXAMPLE "examples/hello/gantry-docker.yaml"

static struct spec *load_text(const char *yaml, struct diags *d)
{
	struct spec *spec = NULL;
	spec_load_buf("t.yaml", yaml, strlen(yaml), &spec, d);
	return spec;
}

static struct spec *must_load_file(const char *path)
{
	struct spec *spec = NULL;
	struct diags d = { 0 };
	if (spec_load(path, &spec, &d) < 0) {
		diags_print(&d, stderr);
		fail_msg("%s does not load", path);
	}
	diags_release(&d);
	return spec;
}

static void resolve(const struct spec *spec, const char *svc, const char *env, struct svc_config *c)
{
	struct gerr err = { { 0 } };
	if (spec_resolve(spec, svc, env, c, &err) < 0)
		fail_msg("resolve %s/%s: %s", svc, env, err.msg);
}

static const char *kv_get(const struct kv *v, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].key, key))
			return v[i].value;
	return NULL;
}

static void test_good_docker(void **state)
{
	struct spec *spec = must_load_file(FIXTURES "/good-docker.yaml");
	struct svc_config c;
	(void)state;

	resolve(spec, "web", "staging", &c);
	assert_int_equal(c.runtime, RUNTIME_DOCKER);
	assert_string_equal(c.image, "hello:dev");
	assert_null(c.image_build);
	assert_null(c.run);
	assert_null(c.build);
	assert_int_equal(c.port, 8080);
	assert_int_equal(c.ncommand, 3);
	assert_string_equal(c.command[0], "/hello");
	assert_string_equal(c.command[2], "hi");
	assert_int_equal(c.nentrypoint, 2);
	assert_string_equal(c.entrypoint[0], "/bin/tini");
	assert_string_equal(c.entrypoint[1], "--");
	assert_string_equal(c.user, "1000:1000");
	assert_string_equal(c.registry, "127.0.0.1:5000"); /* the top-level one */
	assert_string_equal(kv_get(c.env, c.nenv, "HOST"), "0.0.0.0");
	assert_int_equal(c.replicas, 2);
	assert_int_equal(c.resources.pids, 100);
	svc_config_release(&c);

	/* production's overrides: a scalar and a list replace, the rest stays */
	resolve(spec, "web", "production", &c);
	assert_string_equal(c.image, "registry.example.com:443/shop/hello-web@sha256:"
				     "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	assert_int_equal(c.ncommand, 1);
	assert_string_equal(c.command[0], "/hello");
	assert_int_equal(c.nentrypoint, 2);
	assert_int_equal(c.port, 9090);
	assert_int_equal(c.replicas, 3);
	svc_config_release(&c);

	resolve(spec, "api", "staging", &c);
	assert_int_equal(c.runtime, RUNTIME_DOCKER);
	assert_null(c.image);
	assert_non_null(c.image_build);
	assert_string_equal(c.image_build->dockerfile, "docker/api.Dockerfile");
	assert_string_equal(c.image_build->context, "./api");
	assert_int_equal(c.image_build->nargs, 2);
	/* kept sorted by name, values as written */
	assert_string_equal(c.image_build->args[0].key, "DEBUG");
	assert_string_equal(c.image_build->args[0].value, "false");
	assert_string_equal(c.image_build->args[1].key, "VERSION");
	assert_string_equal(c.image_build->args[1].value, "1.2");
	assert_string_equal(c.registry, "localhost:5001"); /* the service's wins */
	assert_null(c.user);                               /* the image's USER */
	assert_int_equal(c.port, 0);
	assert_null(c.command);
	assert_null(c.entrypoint);
	/* exec probes of a container: accepted (they run inside it) */
	assert_int_equal(c.readiness.kind, PROBE_EXEC);
	assert_string_equal(c.readiness.target, "wget -q -O- http://127.0.0.1:$PORT/ready");
	assert_int_equal(c.liveness.kind, PROBE_EXEC);
	assert_string_equal(c.liveness.target, "test -f /tmp/alive");
	assert_int_equal(c.liveness.timeout_ms, 2000);
	svc_config_release(&c);

	/* build: {...} in an override merges per sub-key, args key by key */
	resolve(spec, "api", "production", &c);
	assert_string_equal(c.image_build->dockerfile, "docker/api.Dockerfile");
	assert_int_equal(c.image_build->nargs, 3);
	assert_string_equal(kv_get(c.image_build->args, c.image_build->nargs, "DEBUG"), "no");
	assert_string_equal(kv_get(c.image_build->args, c.image_build->nargs, "EXTRA"), "x");
	assert_string_equal(kv_get(c.image_build->args, c.image_build->nargs, "VERSION"), "1.2");
	svc_config_release(&c);

	/* build: {} takes the defaults and implies docker */
	resolve(spec, "worker", "staging", &c);
	assert_int_equal(c.runtime, RUNTIME_DOCKER);
	assert_string_equal(c.image_build->dockerfile, "Dockerfile");
	assert_string_equal(c.image_build->context, ".");
	assert_int_equal(c.image_build->nargs, 0);
	svc_config_release(&c);

	/* a process service: unchanged, and no registry even with a top-level one */
	resolve(spec, "legacy", "production", &c);
	assert_int_equal(c.runtime, RUNTIME_PROCESS);
	assert_string_equal(c.run, "./legacy");
	assert_string_equal(c.build, "make legacy");
	assert_null(c.image_build);
	assert_null(c.image);
	assert_null(c.registry);
	assert_string_equal(c.user, "gantry-run");
	assert_string_equal(c.artifact, "out");
	svc_config_release(&c);
	spec_free(spec);
}

/* the first diagnostic of yaml, as "LINE:COL: PATH: MESSAGE" */
static char *first_diag(const char *yaml, size_t *n)
{
	struct diags d = { 0 };
	struct spec *spec = load_text(yaml, &d);
	char *s;

	if (spec) {
		spec_free(spec);
		fail_msg("accepted:\n%s", yaml);
	}
	assert_true(d.n > 0);
	s = xasprintf("%d:%d: %s: %s", d.items[0].line, d.items[0].col, d.items[0].path ? d.items[0].path : "",
		      d.items[0].message);
	if (n)
		*n = d.n;
	diags_release(&d);
	return s;
}

#define HEAD "environments: { p: {} }\nservices:\n  s:\n    image: "

static void test_image_refs(void **state)
{
	static const char *const good[] = {
		"web",
		"web:1",
		"hello:dev",
		"library/hello-world:latest",
		"a/b__c-d---e/f.g_h:Tag_1.2-x",
		"localhost/web",
		"localhost:5000/web:1",
		"127.0.0.1:5000/a/b/c:v",
		"Registry.Example.com/web",
		"web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"r.io:443/web:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"\"web:1\"",
		"'web:1'",
	};
	static const struct {
		const char *ref;
		const char *want; /* "LINE:COL: PATH: MESSAGE" prefix */
	} bad[] = {
		{ "Web:1", "4:12: services.s.image: invalid image reference 'Web:1': an image name must be lowercase, got 'W'" },
		{ "web/Api", "4:16: services.s.image: invalid image reference 'web/Api': an image name must be lowercase" },
		{ "\"we b\"", "4:15: services.s.image: invalid image reference 'we b': a space in an image name" },
		{ "\"web:\"", "4:16: services.s.image: invalid image reference 'web:': empty tag after ':'" },
		{ "web:-1", "4:16: services.s.image: invalid image reference 'web:-1': a tag must start" },
		{ "web:a+b", "4:17: services.s.image: invalid image reference 'web:a+b': invalid character '+' in a tag" },
		{ "a//b", "4:14: services.s.image: invalid image reference 'a//b': empty name component" },
		{ "/web", "4:12: services.s.image: invalid image reference '/web': empty name component" },
		{ "web/", "4:16: services.s.image: invalid image reference 'web/': empty name component" },
		{ "-web", "4:12: services.s.image: invalid image reference '-web': a name component must start" },
		{ "web-", "4:15: services.s.image: invalid image reference 'web-': a name component must end" },
		{ "a..b", "4:13: services.s.image: invalid image reference 'a..b': invalid separator '..'" },
		{ "a___b", "4:13: services.s.image: invalid image reference 'a___b': invalid separator '___'" },
		{ "r.io:0/web", "4:17: services.s.image: invalid image reference 'r.io:0/web': the port must be between 1 and 65535" },
		{ "r.io:x/web", "4:17: services.s.image: invalid image reference 'r.io:x/web': the port must be a number" },
		{ "r_x.io/web", "4:13: services.s.image: invalid image reference 'r_x.io/web': invalid character '_' in a registry host" },
		{ "web@sha512:00", "4:16: services.s.image: invalid image reference 'web@sha512:00': a digest must be sha256" },
		{ "web@sha256:abc", "4:26: services.s.image: invalid image reference 'web@sha256:abc': a sha256 digest has 64 hex digits, got 3" },
		{ "\"@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"",
		  "4:13: services.s.image: invalid image reference '@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef': missing the image name" },
		{ "", "4:5: services.s.image: expected a value, got nothing" },
		{ "[web]", "4:12: services.s.image: expected a scalar value, got a list" },
	};
	(void)state;

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		char *yaml = xasprintf(HEAD "%s\n", good[i]);
		struct diags d = { 0 };
		struct spec *spec = load_text(yaml, &d);
		if (!spec) {
			diags_print(&d, stderr);
			fail_msg("refused: %s", good[i]);
		}
		spec_free(spec);
		diags_release(&d);
		free(yaml);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char *yaml = xasprintf(HEAD "%s\n", bad[i].ref), *got = first_diag(yaml, NULL);
		if (strncmp(got, bad[i].want, strlen(bad[i].want)))
			fail_msg("image %s:\n want %s\n got  %s", bad[i].ref, bad[i].want, got);
		free(got);
		free(yaml);
	}
	/* the name is at most 255 characters, a tag 128 */
	{
		char name[300], *yaml, *got;
		memset(name, 'a', 256);
		name[256] = 0;
		yaml = xasprintf(HEAD "%s\n", name);
		got = first_diag(yaml, NULL);
		assert_non_null(strstr(got, "longer than 255 characters"));
		free(got);
		free(yaml);
		name[255] = 0;
		yaml = xasprintf(HEAD "%s:%.*s\n", name, 129, name);
		got = first_diag(yaml, NULL);
		assert_non_null(strstr(got, "a tag is at most 128 characters, got 129"));
		free(got);
		free(yaml);
	}
}

static void test_registry(void **state)
{
	static const char *const good[] = { "127.0.0.1:5000", "localhost", "localhost:5000", "reg.example.com",
					     "Reg.Example.com:443" };
	static const struct {
		const char *reg;
		const char *want;
	} bad[] = {
		{ "myreg", "1:11: registry: invalid registry 'myreg': 'myreg' would name a Docker Hub namespace" },
		{ "http://r.io", "1:11: registry: invalid registry 'http://r.io': write HOST:PORT, without a scheme" },
		{ "r.io/x", "1:15: registry: invalid registry 'r.io/x': write HOST:PORT, without a path" },
		{ "\"r.io:\"", "1:17: registry: invalid registry 'r.io:': the port must be between 1 and 65535" },
		{ "r.io:65536", "1:16: registry: invalid registry 'r.io:65536': the port must be between 1 and 65535" },
		{ "-r.io", "1:11: registry: invalid registry '-r.io': invalid character '-' in a registry host" },
		{ "r-.io", "1:12: registry: invalid registry 'r-.io': a registry host label must not end with '-'" },
		{ "{ a: b }", "1:11: registry: expected a scalar value, got a mapping" },
	};
	(void)state;

	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		char *yaml = xasprintf("registry: %s\nenvironments: { p: {} }\nservices: { s: { image: web } }\n", good[i]);
		struct diags d = { 0 };
		struct spec *spec = load_text(yaml, &d);
		struct svc_config c;
		if (!spec) {
			diags_print(&d, stderr);
			fail_msg("refused: %s", good[i]);
		}
		resolve(spec, "s", "p", &c);
		assert_string_equal(c.registry, good[i]);
		svc_config_release(&c);
		spec_free(spec);
		diags_release(&d);
		free(yaml);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char *yaml = xasprintf("registry: %s\nenvironments: { p: {} }\nservices: { s: { image: web } }\n", bad[i].reg);
		char *got = first_diag(yaml, NULL);
		if (strncmp(got, bad[i].want, strlen(bad[i].want)))
			fail_msg("registry %s:\n want %s\n got  %s", bad[i].reg, bad[i].want, got);
		free(got);
		free(yaml);
	}
}

/*
 * A problem of the service's own keys is reported once whatever the number
 * of environments; one an override causes, once per environment causing it,
 * at the key, naming the environment.
 */
static void test_rules_reported_once(void **state)
{
	size_t n;
	char *got;
	(void)state;

	got = first_diag("environments: { a: {}, b: {}, c: {} }\n"
			 "services:\n  s:\n    image: web\n    run: ./web\n", &n);
	assert_string_equal(got, "5:5: services.s.run: a docker service runs its image's command: use command: [...]");
	assert_int_equal(n, 1);
	free(got);

	got = first_diag("environments: { a: {}, b: {}, c: {} }\n"
			 "services:\n  s:\n    run: ./web\n    environments:\n      b: { image: web }\n", &n);
	assert_string_equal(got, "4:5: services.s.run: a docker service runs its image's command: use command: [...]"
				 " (in environment 'b', with its overrides)");
	assert_int_equal(n, 1);
	free(got);

	/* a key the override adds is reported at the override */
	got = first_diag("environments: { a: {}, b: {} }\n"
			 "services:\n  s:\n    run: ./web\n    environments:\n      b: { port: 80 }\n", &n);
	assert_string_equal(got, "6:12: services.s.environments.b.port: only a docker service takes port: this one "
				 "runs a process (give image: REF or build: {dockerfile, ...} to run a container)");
	assert_int_equal(n, 1);
	free(got);

	/* runtime per environment: process in a, docker in b, each with its own keys */
	{
		static const char yaml[] = "environments: { a: {}, b: {} }\n"
					   "services:\n  s:\n    environments:\n"
					   "      a: { run: ./web }\n"
					   "      b: { image: web:1, command: [/web] }\n";
		struct diags d = { 0 };
		struct spec *spec = load_text(yaml, &d);
		struct svc_config c;
		if (!spec) {
			diags_print(&d, stderr);
			fail_msg("per-environment runtime refused");
		}
		resolve(spec, "s", "a", &c);
		assert_int_equal(c.runtime, RUNTIME_PROCESS);
		svc_config_release(&c);
		resolve(spec, "s", "b", &c);
		assert_int_equal(c.runtime, RUNTIME_DOCKER);
		assert_null(c.run);
		svc_config_release(&c);
		spec_free(spec);
		diags_release(&d);
	}

	/* a build: string in an override replaces the service's build map (a scalar replaces) */
	got = first_diag("environments: { a: {} }\n"
			 "services:\n  s:\n    build: { context: . }\n    environments:\n      a: { build: make }\n", &n);
	assert_string_equal(got, "3:3: services.s: missing required key 'run'");
	free(got);

	/* missing run and no image: the old message */
	got = first_diag("environments: { a: {} }\nservices:\n  s:\n    env: { A: b }\n", &n);
	assert_string_equal(got, "3:3: services.s: missing required key 'run'");
	assert_int_equal(n, 1);
	free(got);
}

/* user: allowed for both runtimes; a docker service without it runs as the image's USER */
static void test_user(void **state)
{
	struct diags d = { 0 };
	struct spec *spec = load_text("environments: { p: {} }\nservices:\n"
				      "  a: { image: web, user: nobody }\n  b: { image: web }\n", &d);
	struct svc_config c;
	(void)state;

	assert_non_null(spec);
	resolve(spec, "a", "p", &c);
	assert_string_equal(c.user, "nobody");
	svc_config_release(&c);
	resolve(spec, "b", "p", &c);
	assert_null(c.user);
	svc_config_release(&c);
	spec_free(spec);
	diags_release(&d);
}

static char *dump(const struct svc_config *c)
{
	json_t *j = svc_config_to_json(c);
	char *s;
	assert_non_null(j);
	s = json_dumps(j, JSON_SORT_KEYS | JSON_INDENT(1));
	json_decref(j);
	return s;
}

static void same_strv(char *const *a, size_t na, char *const *b, size_t nb)
{
	assert_int_equal(na, nb);
	assert_true((a == NULL) == (b == NULL));
	for (size_t i = 0; i < na; i++)
		assert_string_equal(a[i], b[i]);
}

static void test_json_round_trip(void **state)
{
	struct spec *spec = must_load_file(FIXTURES "/good-docker.yaml");
	(void)state;

	for (size_t i = 0; i < spec->nservices; i++)
		for (size_t e = 0; e < spec->nenvs; e++) {
			struct svc_config c, back;
			struct gerr err = { { 0 } };
			char *s1, *s2;
			json_t *j;

			resolve(spec, spec->services[i].name, spec->envs[e].name, &c);
			s1 = dump(&c);
			j = json_loads(s1, 0, NULL);
			assert_non_null(j);
			if (svc_config_from_json(j, &back, &err) < 0)
				fail_msg("from_json: %s\n%s", err.msg, s1);
			json_decref(j);
			s2 = dump(&back);
			if (strcmp(s1, s2)) {
				fprintf(stderr, "%s\n---\n%s\n", s1, s2);
				fail_msg("%s/%s: the round trip differs", spec->services[i].name, spec->envs[e].name);
			}
			assert_int_equal(back.runtime, c.runtime);
			assert_true((!back.image && !c.image) || !strcmp(back.image, c.image));
			assert_true((!back.run && !c.run) || !strcmp(back.run, c.run));
			assert_true((!back.registry && !c.registry) || !strcmp(back.registry, c.registry));
			assert_true((!back.user && !c.user) || !strcmp(back.user, c.user));
			assert_int_equal(back.port, c.port);
			same_strv(back.command, back.ncommand, c.command, c.ncommand);
			same_strv(back.entrypoint, back.nentrypoint, c.entrypoint, c.nentrypoint);
			assert_true((back.image_build == NULL) == (c.image_build == NULL));
			if (c.image_build) {
				assert_string_equal(back.image_build->dockerfile, c.image_build->dockerfile);
				assert_string_equal(back.image_build->context, c.image_build->context);
				assert_int_equal(back.image_build->nargs, c.image_build->nargs);
				for (size_t k = 0; k < c.image_build->nargs; k++) {
					assert_string_equal(back.image_build->args[k].key, c.image_build->args[k].key);
					assert_string_equal(back.image_build->args[k].value, c.image_build->args[k].value);
				}
			}
			/* a process config has none of the new keys: its digest is what it was */
			if (c.runtime == RUNTIME_PROCESS) {
				static const char *const keys[] = { "runtime", "image", "image_build", "command",
								    "entrypoint", "port", "registry" };
				json_t *jc = svc_config_to_json(&c);
				for (size_t k = 0; k < ARRAY_SIZE(keys); k++)
					if (json_object_get(jc, keys[k]))
						fail_msg("a process config has '%s'", keys[k]);
				json_decref(jc);
			}
			svc_config_release(&back);
			svc_config_release(&c);
			free(s1);
			free(s2);
		}
	spec_free(spec);
}

/* a revision stored before the container fields existed */
static void test_json_old_revision(void **state)
{
	json_t *j = json_loads("{\"format\": 1, \"service\": \"a\", \"environment\": \"p\", \"run\": \"./a\","
			       " \"build\": \"make\", \"artifact\": \".\", \"replicas\": 2}", 0, NULL);
	struct svc_config c;
	struct gerr err = { { 0 } };
	(void)state;

	assert_non_null(j);
	if (svc_config_from_json(j, &c, &err) < 0)
		fail_msg("%s", err.msg);
	assert_int_equal(c.runtime, RUNTIME_PROCESS);
	assert_string_equal(c.run, "./a");
	assert_string_equal(c.build, "make");
	assert_null(c.image);
	assert_null(c.image_build);
	assert_null(c.command);
	assert_null(c.entrypoint);
	assert_int_equal(c.port, 0);
	assert_null(c.registry);
	svc_config_release(&c);
	json_decref(j);
}

static void test_json_bad(void **state)
{
#define D "{\"service\": \"a\", \"environment\": \"p\", \"runtime\": \"docker\""
	static const struct {
		const char *json;
		const char *key; /* the error names it */
	} cases[] = {
		{ "{\"service\": \"a\", \"environment\": \"p\", \"runtime\": \"podman\", \"run\": \"x\"}", "runtime" },
		{ "{\"service\": \"a\", \"environment\": \"p\", \"runtime\": \"process\"}", "run" },
		{ D "}", "image" },
		{ D ", \"image\": \"Web\"}", "image" },
		{ D ", \"image\": \"\"}", "image" },
		{ D ", \"image\": 5}", "image" },
		{ D ", \"image\": \"web\", \"port\": 0}", "port" },
		{ D ", \"image\": \"web\", \"port\": 65536}", "port" },
		{ D ", \"image\": \"web\", \"command\": []}", "command" },
		{ D ", \"image\": \"web\", \"command\": [\"\"]}", "command[0]" },
		{ D ", \"image\": \"web\", \"entrypoint\": \"/x\"}", "entrypoint" },
		{ D ", \"image\": \"web\", \"registry\": \"myreg\"}", "registry" },
		{ D ", \"image_build\": []}", "image_build" },
		{ D ", \"image_build\": {\"dockerfile\": \"\"}}", "image_build.dockerfile" },
		{ D ", \"image_build\": {\"context\": 1}}", "image_build.context" },
		{ D ", \"image_build\": {\"args\": [1]}}", "image_build.args" },
		{ D ", \"image_build\": {\"args\": {\"1A\": \"x\"}}}", "image_build.args.1A" },
		{ D ", \"image_build\": {\"args\": {\"A\": 1}}}", "image_build.args.A" },
	};
#undef D
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		json_error_t jerr;
		json_t *j = json_loads(cases[i].json, 0, &jerr);
		struct svc_config c;
		struct gerr err = { { 0 } };
		if (!j)
			fail_msg("case %zu: bad test JSON: %s", i, jerr.text);
		if (svc_config_from_json(j, &c, &err) != -1)
			fail_msg("case %zu accepted: %s", i, cases[i].json);
		if (!strstr(err.msg, cases[i].key))
			fail_msg("case %zu: error '%s' does not name '%s'", i, err.msg, cases[i].key);
		assert_null(c.service);
		json_decref(j);
	}
}

/* the docker variant of the hello example validates, and runs hello:dev with a canary in production */
static void test_example(void **state)
{
	struct spec *spec = must_load_file(EXAMPLE);
	struct svc_config c;
	(void)state;

	resolve(spec, "hello", "production", &c);
	assert_int_equal(c.runtime, RUNTIME_DOCKER);
	assert_string_equal(c.image, "hello:dev");
	assert_null(c.run);
	assert_string_equal(kv_get(c.env, c.nenv, "HOST"), "0.0.0.0");
	assert_int_equal(c.strategy.kind, STRATEGY_CANARY);
	assert_true(c.canary.nsteps > 0);
	assert_true(c.nrollback_on > 0);
	svc_config_release(&c);
	resolve(spec, "hello", "staging", &c);
	assert_int_equal(c.runtime, RUNTIME_DOCKER);
	svc_config_release(&c);
	spec_free(spec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_docker),
		cmocka_unit_test(test_image_refs),
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_rules_reported_once),
		cmocka_unit_test(test_user),
		cmocka_unit_test(test_json_round_trip),
		cmocka_unit_test(test_json_old_revision),
		cmocka_unit_test(test_json_bad),
		cmocka_unit_test(test_example),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
