/*
 * fuzz_apply.c — the apply path's decision input: two specs (the stored one
 * and the proposed one, split at a line "---8<---"; without it the stored
 * one is a fixed valid spec), each validated; their YAML trees diffed and
 * every changed path classed config or policy (core/spec_class.h). The
 * controller refuses a non-admin's apply exactly when spec_diff_has_policy
 * is true, so the invariants checked here are the ones that rule rests on:
 * a spec never differs from itself; a diff and its reverse name the same
 * paths; has_policy is true exactly when a row is not config; a row's class
 * is never config when its path classes as policy. Never crashes or leaks.
 */
#include "common.h"
#include "core/spec.h"
#include "core/spec_class.h"
#include <jansson.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char base[] =
	"project: shop\n"
	"environments:\n"
	"  staging: { replicas: 1 }\n"
	"  production:\n"
	"    replicas: 2\n"
	"    protection: { approvals: 2, freeze_on_incident: [P0] }\n"
	"services:\n"
	"  web:\n"
	"    run: ./web\n"
	"    checks: { pre: [{ run: ./check.sh }] }\n";

static json_t *tree_of(const char *buf, size_t len)
{
	struct spec *spec = NULL;
	struct diags d = { 0 };
	json_t *t = NULL;
	if (spec_load_buf("fuzz.yaml", buf, len, &spec, &d) == 0)
		t = spec_tree_json(spec);
	spec_free(spec);
	diags_release(&d);
	return t;
}

static void check(const json_t *a, const json_t *b)
{
	json_t *d = spec_diff(a, b), *r = spec_diff(b, a), *row;
	bool nonconfig = false;
	size_t i;
	char *text;
	BUG_ON(!json_is_array(d) || !json_is_array(r));
	BUG_ON(json_array_size(d) != json_array_size(r));
	json_array_foreach(d, i, row) {
		const char *path = json_string_value(json_object_get(row, "path"));
		const char *cls = json_string_value(json_object_get(row, "class"));
		BUG_ON(!path || !cls);
		BUG_ON(strcmp(path, json_string_value(json_object_get(json_array_get(r, i), "path"))));
		if (strcmp(cls, "config"))
			nonconfig = true;
		else if (!strchr(path, '\\'))
			BUG_ON(spec_key_class(path) == SPEC_CLASS_POLICY);
	}
	BUG_ON(spec_diff_has_policy(d) != nonconfig);
	text = spec_diff_text(d);
	BUG_ON(!text || (json_array_size(d) && !*text));
	free(text);
	json_decref(d);
	json_decref(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data, *sep = NULL;
	json_t *a, *b, *self;
	for (size_t i = 0; i + 9 <= size && !sep; i++)
		if (!memcmp(buf + i, "---8<---\n", 9) && (i == 0 || buf[i - 1] == '\n'))
			sep = buf + i;
	a = sep ? tree_of(buf, (size_t)(sep - buf)) : tree_of(base, sizeof(base) - 1);
	b = sep ? tree_of(sep + 9, size - (size_t)(sep + 9 - buf)) : tree_of(buf, size);
	if (b) {
		self = spec_diff(b, b);
		BUG_ON(json_array_size(self) != 0);
		json_decref(self);
		check(NULL, b);
	}
	if (a && b)
		check(a, b);
	json_decref(a);
	json_decref(b);
	return 0;
}
