/*
 * fuzz_canary.c — the rollout state machine over random configurations and
 * event sequences, checked against its invariants after every event:
 *  - every traffic split sums to 100, each weight in 0..100;
 *  - only the canary revision is ever scaled, and nothing retires the
 *    previous (stable) revision before promotion;
 *  - a rolled-back or aborted rollout emits nothing and never changes;
 *  - a paused rollout does not progress on a tick;
 *  - the state round-trips through JSON (and the run continues from the
 *    restored copy, as after a kill -9 of the controller).
 */
#include "common.h"
#include "rollout/canary.h"
#include <jansson.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *dump(const struct canary_state *st)
{
	json_t *j = canary_state_to_json(st);
	char *s;
	BUG_ON(!j);
	s = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
	json_decref(j);
	BUG_ON(!s);
	return s;
}

static void restore(struct canary_state *st)
{
	json_t *j = canary_state_to_json(st);
	struct canary_state back;
	struct gerr err;
	char *a, *b;

	BUG_ON(!j);
	if (canary_state_from_json(&back, j, &err) < 0) {
		fprintf(stderr, "from_json: %s\n", err.msg);
		BUG_ON(1);
	}
	json_decref(j);
	a = dump(st);
	b = dump(&back);
	BUG_ON(strcmp(a, b));
	free(a);
	free(b);
	*st = back;
}

static void check_actions(const struct canary_state *before, const struct canary_state *st,
			  const struct canary_actions *a)
{
	for (size_t i = 0; i < a->n; i++) {
		const struct canary_action *x = &a->a[i];
		if (x->kind == CA_SET_TRAFFIC) {
			int sum = 0;
			BUG_ON(!x->ntraffic || x->ntraffic > 2);
			for (size_t k = 0; k < x->ntraffic; k++) {
				BUG_ON(x->traffic[k].weight < 0 || x->traffic[k].weight > 100);
				BUG_ON(x->traffic[k].revision != st->stable_revision &&
				       x->traffic[k].revision != st->canary_revision);
				sum += x->traffic[k].weight;
			}
			BUG_ON(sum != 100);
		}
		if (x->kind == CA_SCALE_CANARY)
			BUG_ON(x->revision != st->canary_revision || x->replicas < 0);
		if (x->kind == CA_RETIRE_PREVIOUS)
			BUG_ON(!st->promoted || x->revision != st->previous_revision || x->revision <= 0);
		if (x->kind == CA_PROMOTE)
			BUG_ON(!st->promoted);
	}
	BUG_ON(st->replicas != before->replicas);
	BUG_ON(st->stable_revision != before->stable_revision || st->canary_revision != before->canary_revision);
	BUG_ON(before->promoted && !st->promoted);
	BUG_ON(st->weight < 0 || st->weight > 100);
	/* traffic to the canary before promotion only with a ready replica behind it */
	if (!st->promoted && st->weight > before->weight)
		BUG_ON(st->canary_ready < 1 || st->canary_replicas < 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct analysis_metric metric = { .name = (char *)"m", .fail_if = (char *)"error_rate > 1%" };
	struct analysis_def analyses[1] = { { .name = (char *)"a", .interval_ms = 1000, .metrics = &metric, .nmetrics = 1 } };
	struct header_match hdr = { .name = (char *)"x-canary", .value = (char *)"1" };
	struct canary_step steps[12];
	char *rb[1] = { (char *)"error_rate > 5%" };
	struct svc_config cfg = { 0 };
	struct canary_state st;
	struct canary_actions a;
	struct gerr err;
	size_t p = 0, nsteps;
	int64_t now = 1000;
	int stable;

	if (size < 4)
		return 0;
	cfg.strategy.kind = data[0] & 1 ? STRATEGY_BLUEGREEN : STRATEGY_CANARY;
	cfg.progress_deadline_ms = data[0] & 2 ? 60000 : 0;
	cfg.on_error = data[0] & 4 ? ON_ERROR_ROLLBACK : ON_ERROR_PAUSE;
	cfg.watch_ms = data[0] & 8 ? 300000 : 0;
	cfg.rollback_on = rb;
	cfg.nrollback_on = data[0] & 16 ? 1 : 0;
	cfg.analyses = analyses;
	cfg.nanalyses = 1;
	cfg.bluegreen.auto_promote = data[0] & 32;
	cfg.bluegreen.auto_promote_after_ms = data[0] & 64 ? 5000 : 0;
	cfg.bluegreen.pre_promotion_analysis = data[1] & 1 ? (char *)"a" : NULL;
	cfg.bluegreen.post_promotion_analysis = data[1] & 2 ? (char *)"a" : NULL;
	cfg.bluegreen.keep_previous_ms = (data[1] >> 2) * 1000;
	cfg.canary.analysis = data[1] & 128 ? (char *)"a" : NULL;
	cfg.canary.analysis_starting_step = data[1] & 64 ? 1 : 0;
	cfg.canary.match = data[0] & 128 ? &hdr : NULL;
	cfg.canary.nmatch = data[0] & 128 ? 1 : 0;
	cfg.replicas = data[2] % 6;
	stable = data[2] & 0x80 ? 0 : 1;
	nsteps = data[3] % (ARRAY_SIZE(steps) + 1);
	p = 4;
	memset(steps, 0, sizeof(steps));
	for (size_t i = 0; i < nsteps; i++) {
		uint8_t b = p < size ? data[p++] : 0, v = p < size ? data[p++] : 0;
		steps[i].kind = (enum canary_step_kind)(b % 5);
		steps[i].weight = v % 101;
		steps[i].pause_ms = v & 1 ? -1 : (int64_t)(v % 20) * 1000;
		steps[i].analysis = (char *)"a";
		steps[i].headers = &hdr;
		steps[i].nheaders = 1;
		steps[i].replicas = v % 5 + 1;
	}
	cfg.canary.steps = steps;
	cfg.canary.nsteps = nsteps;
	if (canary_start(&st, &cfg, stable, 2, cfg.replicas, now, &a, &err) < 0)
		return 0;
	{
		struct canary_state zero = st;
		check_actions(&zero, &st, &a);
	}
	restore(&st);
	while (p + 1 < size) {
		uint8_t k = data[p++], v = data[p++];
		struct canary_event ev = { 0 };
		struct canary_state before = st;
		bool was_terminal = st.phase == RP_ROLLED_BACK || st.phase == RP_ABORTED;
		char *s0 = was_terminal || st.phase == RP_PAUSED ? dump(&st) : NULL;

		now += (int64_t)(k >> 4) * (v & 0x80 ? 60000 : 700);
		switch (k % 9) {
		case 0: ev.kind = CE_TICK; break;
		case 1: ev.kind = CE_CANARY_READY; ev.ready = v % 7; break;
		case 2:
			ev.kind = CE_ANALYSIS_VERDICT;
			ev.slot = (int)(v % 16) - 3;
			ev.verdict = (enum analysis_phase)((v >> 4) % 5);
			ev.why = "r";
			break;
		case 3: ev.kind = CE_PAUSE; ev.who = "fuzz"; break;
		case 4: ev.kind = CE_RESUME; ev.full = v & 1; ev.who = "fuzz"; break;
		case 5: ev.kind = CE_ABORT; ev.who = "fuzz"; break;
		case 6: ev.kind = CE_BREACHED; ev.why = "error_rate 9% > 5%"; break;
		case 7:
			if (v & 2) { /* the fleet below or back at a quorum of proxies */
				ev.kind = CE_QUORUM;
				ev.why = v & 1 ? "1 of 3 proxies reporting" : NULL;
			} else {
				ev.kind = CE_GATE;
				ev.why = v & 1 ? "frozen" : NULL;
			}
			break;
		default:
			/* jump to the next deadline, as the controller's timer does */
			if (canary_next_deadline(&st) != INT64_MAX && canary_next_deadline(&st) > now)
				now = canary_next_deadline(&st);
			ev.kind = CE_TICK;
			break;
		}
		canary_step(&st, &cfg, &ev, now, &a);
		check_actions(&before, &st, &a);
		if (was_terminal) {
			char *s1 = dump(&st);
			BUG_ON(a.n != 0);
			BUG_ON(strcmp(s0, s1));
			free(s1);
		} else if (before.gate_closed && st.gate_closed && before.stable_revision > 0) {
			/* a closed gate holds every traffic increase */
			BUG_ON(st.weight > before.weight);
			BUG_ON(st.promoted && !before.promoted);
			BUG_ON(st.match_step >= 0 && st.match_step != before.match_step);
		}
		if (!was_terminal && before.phase == RP_PAUSED && ev.kind == CE_TICK) {
			/* paused: time alone moves nothing but the post-completion timers */
			BUG_ON(st.step != before.step || st.weight != before.weight || st.wait != before.wait ||
			       st.phase != RP_PAUSED);
		}
		free(s0);
		restore(&st);
	}
	return 0;
}
