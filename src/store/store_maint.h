/*
 * store_maint.h — maintenance mode of a service environment
 * (daemon/maintenance.h): one row while it is on, none while it is off, so
 * that a restarted controller (and the proxy it starts or adopts, through
 * the routes file) keeps answering with the maintenance page.
 */
#ifndef GANTRY_STORE_MAINT_H
#define GANTRY_STORE_MAINT_H
#include "common.h"
#include "store/store.h"

struct maintenance_row {
	char service[64], environment[64];
	char message[1040];       /* "" = the proxy's default text */
	int retry_after_s;
	char allow_headers[4096]; /* JSON [{"header", "value"}]: the bypass secrets (never shown or audited) */
	char set_by[64];
	int64_t set_at_ms;        /* unix ms */
};

/* insert or replace the row of r's service environment */
int store_maintenance_put(struct store *s, const struct maintenance_row *r, struct gerr *err);
/* 1 deleted, 0 there was none, -1 error */
int store_maintenance_delete(struct store *s, const char *svc, const char *env, struct gerr *err);
/* every row (*out owned by caller, free it), by service and environment */
int store_maintenance_list(struct store *s, struct maintenance_row **out, size_t *n, struct gerr *err);

#endif
