/*
 * fuzz_flags.c — feature flags: the input is DEFS NUL BODY NUL STATE (the
 * flags object as JSON, an OFREP request body, a state string). Any bytes
 * either parse or are refused with a message; a parsed flag evaluates for
 * the context to one of its variants or to an error with a code, the same
 * twice (a key never flips); the OFREP answers have a known status and,
 * for the bulk, an ETag that answers 304 when sent back.
 */
#include "common.h"
#include "flags/flags.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *state_fn(void *arg, const char *flag)
{
	(void)flag;
	return arg;
}

static void check_status(int st)
{
	if (st != 200 && st != 304 && st != 400 && st != 404 && st != 500)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *end = data + size, *n1 = memchr(data, 0, size), *n2;
	const char *body;
	size_t blen;
	char *defs_text, *state = NULL;
	json_t *dj;
	struct flag_defs defs;
	struct gerr err;
	struct ofrep_answer a, b;

	if (size > 64 * 1024)
		return 0;
	defs_text = xstrndup((const char *)data, n1 ? (size_t)(n1 - data) : size);
	body = n1 ? (const char *)n1 + 1 : "";
	n2 = n1 ? memchr(n1 + 1, 0, (size_t)(end - n1 - 1)) : NULL;
	blen = n1 ? (size_t)((n2 ? n2 : end) - (n1 + 1)) : 0;
	if (n2)
		state = xstrndup((const char *)n2 + 1, (size_t)(end - n2 - 1));
	dj = json_loads(defs_text, JSON_DECODE_ANY, NULL);
	if (flag_defs_parse(dj, &defs, &err) < 0) {
		if (!err.msg[0])
			__builtin_trap();
		goto out;
	}
	for (size_t i = 0; i < defs.n; i++) {
		json_t *req = json_loadb(body, blen, 0, NULL), *ctx = json_object_get(req, "context");
		struct flag_result r1, r2;
		int e1 = flag_evaluate(&defs.defs[i], state, json_is_object(ctx) ? ctx : NULL, &r1);
		int e2 = flag_evaluate(&defs.defs[i], state, json_is_object(ctx) ? ctx : NULL, &r2);
		if (e1 != e2 || (e1 == 0 && (!r1.variant || strcmp(r1.variant, r2.variant) ||
					     !json_object_get(defs.defs[i].variants, r1.variant) || !r1.value)) ||
		    (e1 < 0 && (!r1.error || strcmp(r1.details, r2.details))))
			__builtin_trap();
		json_decref(req);
	}
	ofrep_evaluate(&defs, state_fn, state, 1, defs.n ? defs.defs[0].name : "x", body, blen, NULL, &a);
	check_status(a.status);
	json_decref(a.body);
	ofrep_evaluate(&defs, state_fn, state, 1, NULL, body, blen, NULL, &a);
	check_status(a.status);
	if (a.status == 200) {
		ofrep_evaluate(&defs, state_fn, state, 1, NULL, body, blen, a.etag, &b);
		if (b.status != 304 || b.body)
			__builtin_trap();
	}
	json_decref(a.body);
	flag_defs_release(&defs);
	{
		struct semver_range r;
		struct semver v;
		if (semver_range_parse(state ? state : "", &r, &err) == 0 && semver_parse(body[0] ? "1.2.3" : "0", &v) == 0)
			(void)semver_range_match(&r, &v);
	}
out:
	json_decref(dj);
	free(defs_text);
	free(state);
	return 0;
}
