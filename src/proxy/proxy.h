/*
 * proxy.h — the built-in HTTP/1.1 reverse proxy (`gantry proxy`).
 * Invariants and the connection state machines: docs/internals/proxy.md.
 */
#ifndef GANTRY_PROXY_PROXY_H
#define GANTRY_PROXY_PROXY_H
#include "common.h"

struct proxy_config {
	const char *listen;      /* "127.0.0.1:8080", "[::1]:8080" or ":8080" */
	const char *admin;       /* same forms, or NULL */
	const char *routes_path; /* JSON route table, reloaded on SIGHUP */
	const char *access_log;  /* JSON lines appended here, or NULL */
	int workers;             /* event loops (threads), 1..64; default: the cores */
	uint64_t header_timeout_ms;   /* request head must arrive within; 408 */
	uint64_t idle_timeout_ms;     /* idle client keep-alive; stalled client writes */
	uint64_t body_timeout_ms;     /* no request body byte for this long: 408 */
	uint64_t upstream_timeout_ms; /* no upstream byte for this long: 504 */
	uint64_t connect_timeout_ms;
	uint64_t drain_timeout_ms;    /* graceful stop deadline */
	uint64_t tunnel_timeout_ms;   /* idle Upgrade tunnel */
	uint64_t max_body;            /* request body bytes, else 413; 0 = no limit */
};

void proxy_config_defaults(struct proxy_config *cfg);

/*
 * Runs the proxy until SIGTERM/SIGINT and a graceful drain. Returns 0 after
 * a clean stop, -2 if the routes file or an address is invalid (the CLI
 * exits 2), -1 for other failures (err set). All strings borrowed.
 */
int proxy_run(const struct proxy_config *cfg, struct gerr *err);

#endif
