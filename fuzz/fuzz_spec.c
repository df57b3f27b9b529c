/*
 * fuzz_spec.c — the spec surface: YAML in, diagnostics or a spec out; every
 * service resolved in every environment, through JSON and back. Must never
 * crash, leak or hang, whatever the bytes.
 */
#include "common.h"
#include "core/spec.h"
#include <jansson.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spec *spec = NULL;
	struct diags d = { 0 };
	FILE *devnull;

	if (spec_load_buf("fuzz.yaml", (const char *)data, size, &spec, &d) < 0) {
		BUG_ON(spec);
		BUG_ON(!d.n); /* a failure always says why */
		devnull = fopen("/dev/null", "w");
		if (devnull) {
			diags_print(&d, devnull);
			fclose(devnull);
		}
		diags_release(&d);
		return 0;
	}
	BUG_ON(d.n);
	for (size_t i = 0; i < spec->nservices; i++) {
		for (size_t j = 0; j < spec->nenvs; j++) {
			struct svc_config c, back;
			struct gerr err;
			json_t *j1, *j2;
			char *s1, *s2;

			/* a validated spec always resolves */
			BUG_ON(spec_resolve(spec, spec->services[i].name, spec->envs[j].name, &c, &err) < 0);
			j1 = svc_config_to_json(&c);
			BUG_ON(!j1);
			BUG_ON(svc_config_from_json(j1, &back, &err) < 0);
			j2 = svc_config_to_json(&back);
			s1 = json_dumps(j1, JSON_SORT_KEYS);
			s2 = json_dumps(j2, JSON_SORT_KEYS);
			BUG_ON(!s1 || !s2 || strcmp(s1, s2));
			free(s1);
			free(s2);
			json_decref(j1);
			json_decref(j2);
			svc_config_release(&back);
			svc_config_release(&c);
		}
	}
	spec_free(spec);
	return 0;
}
