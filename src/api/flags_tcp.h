/*
 * flags_tcp.h — the flags listener (`gantry serve --flags-listen HOST:PORT`):
 * the OpenFeature Remote Evaluation Protocol endpoints only,
 * `POST /flags/ENV/ofrep/v1/evaluate/flags[/KEY]` with
 * `Authorization: Bearer GANTRY_FLAGS_TOKEN`, apart from the API (--api).
 *
 * Why apart: every replica's SDK polls its flags, so the traffic here is
 * many small requests from many clients. It has its own connection bound
 * (FLAGS_TCP_MAX_CONNS): a flood of polls never takes the API's 64
 * connections, and OFREP needs no --api (whose tokens are the users').
 * The bearer token is checked from the head, before any body byte is read:
 * a wrong one is answered 401 (another environment's: 403) at once.
 * Anything but the OFREP paths is 404. One request per connection
 * (Connection: close), as the API. docs/api.md, "Feature flags".
 */
#ifndef GANTRY_API_FLAGS_TCP_H
#define GANTRY_API_FLAGS_TCP_H
#include "common.h"

#define FLAGS_TCP_MAX_CONNS 256          /* connections at once (per controller), else 503 */
#define FLAGS_TCP_MAX_BODY (64 * 1024)   /* an evaluation context, else 413 */
#define FLAGS_TCP_REQUEST_MS 5000        /* the whole request must arrive within, else 408 */
#define FLAGS_TCP_MAX_LISTENERS 4        /* --flags-listen and the addresses containers reach */

/*
 * Listens on addr (borrowed: "IPv4:PORT" or "[IPv6]:PORT") on the daemon's
 * loop, as one more flags listener. 0, or -1 with err ("--flags-listen
 * ADDR: cannot listen: ..."). retry (a controller taking over from
 * `gantry upgrade`, whose predecessor holds the port until it exits): an
 * address in use is tried again every 100 ms for a minute, and 0 returned.
 */
int flags_tcp_listen(const char *addr, bool retry, struct gerr *err);
/* stops every flags listener and closes their connections; idempotent */
void flags_tcp_close(void);

#endif
