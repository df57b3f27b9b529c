/*
 * storefault.c — the store cannot write (a full disk, I/O errors, a
 * read-only file): hold, report, refuse, retry. The rule, "record, then
 * act", and every write site: docs/internals/controller.md.
 *
 * The store notes the fault itself (store_fault: set by a write that failed
 * so, cleared by one that reached the disk). Here the controller follows it:
 * while it lasts, the reconcile, progressive and gates ticks act on nothing
 * (daemon_reconcile and on_tick ask daemon_store_ok), mutating requests are
 * refused (daemon_store_refusal), a probe write is retried 100 ms doubling
 * to 5 s, and once one succeeds the store is brought back in line with what
 * runs and every service environment gets a store_recovered event and
 * webhook.
 */
#include "common.h"
#include "daemon/daemon.h"
#include "daemon/gates_flow.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/parse.h"
#include <jansson.h>

#define PROBE_FIRST_MS 100
#define PROBE_MAX_MS 5000

static struct {
	bool held;                     /* the controller saw the fault and holds */
	struct store_fault_info first; /* the fault as the store first reported it */
	int64_t next_probe_ms;         /* clock_mono_ms */
	int64_t backoff_ms;
	int probes;                    /* failed probes since the fault began */
	long long failures;            /* faults seen since start (/metrics' gantry_store_failures_total) */
} sf;

bool daemon_store_ok(void)
{
	return !gd->store || !store_fault(gd->store, NULL);
}

/* "database or disk is full since 12s" */
static void describe(char *buf, size_t len)
{
	struct store_fault_info f;
	char d[32];
	int64_t since;
	if (!store_fault(gd->store, &f)) {
		snprintf(buf, len, "ok");
		return;
	}
	since = clock_now_ms() - f.since_ms;
	format_duration(since > 0 ? since : 0, d, sizeof(d));
	snprintf(buf, len, "%s since %s", f.msg, d);
}

int daemon_store_refusal(struct gerr *err)
{
	char what[320];
	if (daemon_store_ok())
		return 0;
	describe(what, sizeof(what));
	return gerr_set(err, "state store cannot write (%s): nothing changed; free space in HOME and retry", what);
}

json_t *daemon_store_json(void)
{
	struct store_fault_info f;
	if (!store_fault(gd->store, &f))
		return json_pack("{s:b}", "ok", 1);
	return json_pack("{s:b, s:s, s:I, s:I}", "ok", 0, "error", f.msg, "since_ms", (json_int_t)f.since_ms,
			 "for_ms", (json_int_t)(clock_now_ms() - f.since_ms));
}

long long daemon_store_failures(void)
{
	/* a fault the tick has not seen yet counts already */
	return sf.failures + (!sf.held && !daemon_store_ok());
}

void daemon_store_reload(struct svcenv *se)
{
	struct svcenv_row row;
	struct gerr err;
	struct revision_row *list = NULL;
	size_t n = 0;
	int found, newest = 0;

	found = store_svcenv_get(gd->store, se->row.service, se->row.environment, &row, &err);
	if (found < 0) {
		log_error("store", "%s", err.msg);
		return;
	}
	progressive_free(se);
	if (found) {
		se->row = row;
	} else {
		/* a first deploy that was never recorded */
		char svc[64], env[64];
		strlcpy_g(svc, se->row.service, sizeof(svc));
		strlcpy_g(env, se->row.environment, sizeof(env));
		memset(&se->row, 0, sizeof(se->row));
		strlcpy_g(se->row.service, svc, sizeof(se->row.service));
		strlcpy_g(se->row.environment, env, sizeof(se->row.environment));
		strlcpy_g(se->row.phase, "healthy", sizeof(se->row.phase));
	}
	if (daemon_set_traffic(se, se->row.traffic, &err) < 0)
		daemon_set_traffic(se, "", &err);
	memset(&se->rollout, 0, sizeof(se->rollout));
	if (store_rollout_latest(gd->store, se->row.service, se->row.environment, &se->rollout, &err) < 0)
		log_error("store", "%s", err.msg);
	/* a revision that was created in memory but never committed must not
	 * stay cached: the next one recorded takes its number */
	if (store_revision_list(gd->store, se->row.service, se->row.environment, &list, &n, &err) == 0) {
		newest = n ? list[0].number : 0;
		for (size_t i = 0; i < n; i++)
			revision_row_release(&list[i]);
		free(list);
		for (struct revcfg **pp = &se->revs; *pp;) {
			struct revcfg *rc = *pp;
			bool used = false;
			for (struct replica *r = se->replicas; r; r = r->next)
				used |= r->rc == rc;
			if (rc->number > newest && !used) {
				*pp = rc->next;
				svc_config_release(&rc->cfg);
				free(rc->dir);
				free(rc);
			} else {
				pp = &rc->next;
			}
		}
	}
	if (se->rollout.id && (!strcmp(se->rollout.phase, "progressing") || !strcmp(se->rollout.phase, "paused") ||
			       !strcmp(se->rollout.phase, "complete")))
		progressive_restore(se, clock_now_ms());
	se->converged = false;
	log_info("store", "service=%s environment=%s: back to what the store recorded (target=%d stable=%d rollout=%lld)",
		 se->row.service, se->row.environment, se->row.target_revision, se->row.stable_revision,
		 (long long)se->rollout.id);
	proxyctl_write_routes();
}

/* the store writes again: its replica rows follow what runs (a replica that
 * exited or was removed while it could not write) */
static void resync_replicas(void)
{
	struct replica_row *rows;
	size_t n;
	struct gerr err;

	for (struct svcenv *se = gd->svcenvs; se; se = se->next)
		for (struct replica *r = se->replicas; r; r = r->next)
			if (!r->freeing)
				replica_save(r);
	if (store_replica_list(gd->store, NULL, NULL, &rows, &n, &err) < 0) {
		log_error("store", "%s", err.msg);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		bool known = false;
		for (struct svcenv *se = gd->svcenvs; se && !known; se = se->next)
			for (struct replica *r = se->replicas; r && !known; r = r->next)
				known = !r->freeing && !strcmp(r->row.id, rows[i].id);
		if (!known && store_replica_delete(gd->store, rows[i].id, &err) < 0)
			log_error("store", "%s", err.msg);
	}
	free(rows);
}

static void recovered(void)
{
	char d[32], msg[400];
	int64_t lasted = clock_now_ms() - sf.first.since_ms;

	format_duration(lasted > 0 ? lasted : 0, d, sizeof(d));
	snprintf(msg, sizeof(msg), "store_recovered: writes failed for %s: %s", d, sf.first.msg);
	log_info("store", "the state store writes again after %s (%d probes): resuming from what it recorded", d,
		 sf.probes);
	sf.held = false;
	resync_replicas();
	for (struct svcenv *se = gd->svcenvs; se; se = se->next) {
		daemon_event(se, se->row.target_revision, "store_recovered", "%s", msg);
		gates_notify("store_recovered", se->row.service, se->row.environment, se->row.target_revision, msg);
	}
	daemon_kick();
}

void daemon_store_tick(int64_t now)
{
	struct store_fault_info f;
	struct gerr err;

	if (!store_fault(gd->store, &f)) {
		if (sf.held)
			recovered();
		return;
	}
	if (!sf.held) {
		sf.held = true;
		sf.failures++;
		sf.first = f;
		sf.probes = 0;
		sf.backoff_ms = PROBE_FIRST_MS;
		sf.next_probe_ms = now + sf.backoff_ms;
		log_error("store", "state store cannot write (%s): holding every rollout where it is and refusing "
			  "changes until it can; retrying", f.msg);
		return;
	}
	if (now < sf.next_probe_ms)
		return;
	if (store_probe(gd->store, &err) == 0) {
		recovered();
		return;
	}
	sf.probes++;
	sf.backoff_ms = MIN(sf.backoff_ms * 2, PROBE_MAX_MS);
	sf.next_probe_ms = now + sf.backoff_ms;
	log_debug("store", "probe write failed (%s): next in %lldms", err.msg, (long long)sf.backoff_ms);
}
