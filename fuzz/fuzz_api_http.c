/*
 * fuzz_api_http — the TCP API's request parser (src/daemon/api_tcp.c):
 * HTTP head checks (path, method, Bearer credentials, size), body
 * collection and the JSON request built from it, fed the way the listener
 * feeds it: arbitrary read boundaries (the first input byte picks the read
 * size). Checks that every outcome is one the listener can answer: an
 * error has a 4xx/5xx status and a message that is a valid JSON string, and
 * a request is an object whose "op" is the path's and that carries no
 * client-claimed "deployed_by".
 */
#include "common.h"
#include "api/tcp.h"

static void check_error(const struct api_http *h)
{
	json_t *s;
	BUG_ON(h->status < 400 || h->status > 599);
	BUG_ON(!h->err[0]);
	/* reply_error puts it in a JSON string: it must be UTF-8 */
	s = json_string(h->err);
	BUG_ON(!s);
	json_decref(s);
}

static void check_request(struct api_http *h)
{
	json_t *req = api_http__request(h);
	const char *op;
	if (!req) {
		BUG_ON(h->status != 400);
		check_error(h);
		return;
	}
	BUG_ON(!json_is_object(req));
	op = json_string_value(json_object_get(req, "op"));
	BUG_ON(!op || strcmp(op, h->op) || !*op);
	BUG_ON(strspn(op, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(op));
	BUG_ON(json_object_get(req, "deployed_by"));
	if (h->health)
		BUG_ON(strcmp(op, "ping"));
	else
		BUG_ON(!h->token[0] || strcmp(json_string_value(json_object_get(req, "token")), h->token));
	json_decref(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_http h;
	size_t step, pos = 0;
	int r = API_HTTP_MORE;

	if (size < 1)
		return 0;
	step = (size_t)data[0] % 64 + 1;
	data++;
	size--;
	api_http__init(&h);
	while (pos < size && r == API_HTTP_MORE) {
		size_t n = MIN(step, size - pos);
		/* a private copy per read, as the listener's reused read buffer */
		char *chunk = xmalloc(n);
		memcpy(chunk, data + pos, n);
		r = api_http__feed(&h, chunk, n);
		free(chunk);
		pos += n;
		BUG_ON(r != API_HTTP_MORE && r != API_HTTP_DONE && r != API_HTTP_ERROR);
		BUG_ON(h.body.len > API_TCP_MAX_BODY);
	}
	if (r == API_HTTP_ERROR)
		check_error(&h);
	else if (r == API_HTTP_DONE)
		check_request(&h);
	api_http__release(&h);
	return 0;
}
