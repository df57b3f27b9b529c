/*
 * fuzz_routes.c — the routes file (src/proxy/route.c): any bytes either
 * give a table or an error naming where (a JSON path, or NAME:LINE:COL);
 * a table answers host lookups, revision and backend picks without
 * crashing, picks only revisions with weight and backends of the chosen
 * revision, and gives back every backend when its last reference goes.
 * Input: the routes file, then optionally a NUL and a host to look up.
 * Metric series are never freed by design (a few hundred bytes per name
 * the input invents), so long runs grow slowly.
 */
#include "common.h"
#include "proxy/route.h"
#include "proxy/backend.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t len = nul ? (size_t)(nul - data) : size;
	char host[256] = "a";
	struct gerr err = { { 0 } };
	struct route_table *t;
	int tag_rev;

	if (len > 1 << 16)
		return 0;
	if (nul) {
		size_t hl = MIN(size - len - 1, sizeof(host) - 1);
		memcpy(host, nul + 1, hl);
		host[hl] = 0;
	}
	t = route_table_parse((const char *)data, len, "routes.json", &err);
	if (!t) {
		BUG_ON(!err.msg[0]);
		BUG_ON(backend_first()); /* a refused file leaves no backend behind */
		return 0;
	}
	for (size_t i = 0; i < t->nroutes; i++) {
		struct route *r = &t->routes[i];
		for (int k = 0; k < 8; k++) {
			int rev = route_pick_rev(t, r, 0, 0);
			struct backend *b;
			if (rev < 0)
				continue;
			BUG_ON((size_t)rev >= r->nrevs || r->revs[rev].weight <= 0);
			b = route_pick_backend(t, &r->revs[rev], 0, 0, NULL);
			if (b)
				BUG_ON(strcmp(b->revision, r->revs[rev].revision) != 0);
		}
	}
	if (route_lookup(t, host, &tag_rev))
		BUG_ON(tag_rev < -1);
	route_table_unref(t);
	BUG_ON(backend_first());
	return 0;
}
