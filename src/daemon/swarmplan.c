/*
 * swarmplan.c — the pure part of the swarm runtime (swarmrt.h): a
 * revision's service name and what to ask Swarm for, given what a poll saw.
 *
 * Why the plan is shaped so (measured on the test cluster, t6100 and
 * docs/internals/fleet.md): with restart condition none a task that ends
 * leaves its slot empty, and Swarm does not fill it again, not even on an
 * update that keeps the count (it counts only the slots whose task should
 * run); scaling to the count of live tasks drops the empty slots without
 * touching a running task, and scaling up from there adds new ones. A task
 * on a node that is down keeps state running with desired state shutdown,
 * and Swarm counts it: a scale to the live count then removed a serving
 * task on another node (seen in t6120's first runs): the count asked
 * includes those zombies. A scale below the count lets Swarm choose the
 * victims: never done while a replica serves from one of them.
 */
#include "common.h"
#include "daemon/swarmrt.h"

static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

void swarmrt_service_name(const char *tag, const char *service, const char *env, int revision, char *out,
			  size_t len)
{
	char full[512];
	size_t n;

	snprintf(full, sizeof(full), "g%.6s-%s-%s-r%d", tag, service, env, revision);
	for (char *p = full; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
			*p = (*p >= 'A' && *p <= 'Z') ? (char)(*p - 'A' + 'a') : '-';
	n = strlen(full);
	if (n > 63) {
		char tail[16];
		snprintf(tail, sizeof(tail), "-%08x", fnv1a(full));
		memcpy(full + 63 - strlen(tail), tail, strlen(tail) + 1);
	}
	snprintf(out, len, "%s", full);
}

struct swarmrt_plan swarmrt_plan(const struct swarmrt_counts *c)
{
	struct swarmrt_plan p = { SWARMRT_NOTHING, -1, 0 };
	int64_t counted = (int64_t)c->alive + c->zombies, target = (int64_t)c->want + c->zombies;

	if (!c->exists) {
		if (c->want > 0) {
			p.act = SWARMRT_CREATE;
			p.to = c->want;
		}
		return p;
	}
	if (c->rows == 0) {
		/* no replica of the revision left: its tasks were stopped by
		 * their replicas (or are orphans): the service goes */
		p.act = SWARMRT_REMOVE;
		return p;
	}
	if (c->unsettled > 0 || c->unsure > 0)
		return p;
	if (c->want > c->alive) {
		/* the ended slots Swarm would drop go first (it does not fill
		 * them), then new ones on top of what is left */
		int64_t base = counted > c->floor ? counted : c->floor;
		p.act = SWARMRT_SCALE;
		p.from = c->replicas > (uint64_t)base ? base : -1;
		p.to = base + c->want - c->alive;
		return p;
	}
	if (c->want < c->alive) {
		if (c->orphans > 0) {
			p.act = SWARMRT_KILL_ORPHANS;
			return p;
		}
		/* the surplus has no container yet (pending): not to keep */
		target = target > c->floor ? target : c->floor;
		if (c->replicas != (uint64_t)target) {
			p.act = SWARMRT_SCALE;
			p.to = target;
		}
		return p;
	}
	target = target > c->floor ? target : c->floor;
	if (c->replicas != (uint64_t)target) {
		/* the slots of ended tasks dropped, or a zombie's slot once it
		 * ended: those Swarm would choose, no serving one */
		p.act = SWARMRT_SCALE;
		p.to = target;
	}
	return p;
}

enum swarmrt_node swarmrt_node_class(const char *state)
{
	if (!strcmp(state, "ready"))
		return SWARMRT_NODE_READY;
	if (!strcmp(state, "down") || !strcmp(state, "disconnected"))
		return SWARMRT_NODE_LOST;
	return SWARMRT_NODE_UNSURE;
}

const char *swarmrt_node_event(const char *last_definite, const char *now)
{
	enum swarmrt_node was = last_definite[0] ? swarmrt_node_class(last_definite) : SWARMRT_NODE_UNSURE;
	enum swarmrt_node is = swarmrt_node_class(now);
	if (was == SWARMRT_NODE_READY && is == SWARMRT_NODE_LOST)
		return "node_down";
	if (was == SWARMRT_NODE_LOST && is == SWARMRT_NODE_READY)
		return "node_ready";
	return NULL;
}

/* a slot's rank key: (copy index on its node, 0 running / 1 not); no node: index INT_MAX */
struct rank {
	int idx, notrun;
};

static bool rank_le(struct rank a, struct rank b)
{
	return a.idx < b.idx || (a.idx == b.idx && a.notrun <= b.notrun);
}

int64_t swarmrt_scale_floor(const struct swarmrt_slot_view *v, size_t n)
{
	struct sl {
		int slot, ntasks;
		const char *node;
		bool running, keep;
		struct rank lo, hi;
	} *s = xcalloc(n + 1, sizeof(*s));
	size_t ns = 0;
	int64_t floor = 0;

	/* one entry per slot: several tasks, or none assigned, rank last */
	for (size_t i = 0; i < n; i++) {
		size_t k;
		for (k = 0; k < ns; k++)
			if (s[k].slot == v[i].slot)
				break;
		if (k == ns) {
			s[ns].slot = v[i].slot;
			s[ns++].node = v[i].node;
		}
		s[k].ntasks++;
		s[k].running |= v[i].running;
		s[k].keep |= v[i].keep;
	}
	for (size_t k = 0; k < ns; k++) {
		int run_here = 0, all_here = 0;
		if (s[k].ntasks != 1 || !s[k].node || !s[k].node[0]) {
			s[k].lo.idx = s[k].hi.idx = INT_MAX;
		} else {
			for (size_t j = 0; j < ns; j++)
				if (s[j].ntasks == 1 && s[j].node && !strcmp(s[j].node, s[k].node)) {
					all_here++;
					run_here += s[j].running;
				}
			/* running copies first on a node, in any order among them */
			s[k].lo.idx = s[k].running ? 1 : run_here + 1;
			s[k].hi.idx = s[k].running ? run_here : all_here;
		}
		s[k].lo.notrun = s[k].hi.notrun = !s[k].running;
	}
	for (size_t k = 0; k < ns; k++) {
		int64_t before = 0;
		if (!s[k].keep)
			continue;
		for (size_t j = 0; j < ns; j++)
			before += rank_le(s[j].lo, s[k].hi);
		if (before > floor)
			floor = before;
	}
	free(s);
	return floor;
}
