/*
 * pull_progress.c — the progress of an image pull, aggregated (pull_progress.h).
 */
#include "common.h"
#include "runtime/pull_progress.h"

static struct pull_layer *layer_of(struct pull_progress *p, const char *id, bool *tracked)
{
	*tracked = true;
	for (int i = 0; i < p->nlayers; i++)
		if (!strcmp(p->layer[i].id, id))
			return &p->layer[i];
	if (p->nlayers < PULL_LAYERS_MAX && strlen(id) < sizeof(p->layer[0].id)) {
		struct pull_layer *l = &p->layer[p->nlayers++];
		memset(l, 0, sizeof(*l));
		strlcpy_g(l->id, id, sizeof(l->id));
		return l;
	}
	*tracked = false;
	return NULL;
}

void pull_progress_update(struct pull_progress *p, const char *id, const char *status, int64_t current,
			  int64_t total)
{
	struct pull_layer *l;
	bool tracked, done;

	if (!id || !*id || !status || !strncmp(status, "Pulling from", 12) || !strncmp(status, "Digest:", 7) ||
	    !strncmp(status, "Status:", 7))
		return;
	done = !strcmp(status, "Pull complete") || !strcmp(status, "Already exists");
	l = layer_of(p, id, &tracked);
	if (!tracked) {
		/* past the table: counted once each by their first and last lines */
		if (!strcmp(status, "Pulling fs layer") || !strcmp(status, "Already exists"))
			p->untracked++;
		if (done)
			p->untracked_done++;
		return;
	}
	if (!strcmp(status, "Downloading")) {
		if (total > l->total)
			l->total = total;
		if (current > l->current)
			l->current = current;
	} else if (!strcmp(status, "Download complete") || !strcmp(status, "Verifying Checksum") ||
		   !strcmp(status, "Extracting") || done) {
		l->current = l->total;
	}
	if (done)
		l->done = true;
}

void pull_progress_summary(const struct pull_progress *p, struct pull_summary *s)
{
	bool sized = p->nlayers > 0 && !p->untracked;

	memset(s, 0, sizeof(*s));
	s->layers_total = p->nlayers + p->untracked;
	s->layers_done = p->untracked_done;
	for (int i = 0; i < p->nlayers; i++) {
		const struct pull_layer *l = &p->layer[i];
		s->layers_done += l->done;
		s->bytes_done += MIN(l->current, l->total);
		s->bytes_total += l->total;
		/* a layer that exists already has no size, and needs none */
		if (!l->total && !l->done)
			sized = false;
	}
	if (!s->layers_total)
		s->percent = 0;
	else if (s->layers_done == s->layers_total)
		s->percent = 100;
	else if (sized && s->bytes_total > 0)
		s->percent = (int)MIN(99, s->bytes_done * 100 / s->bytes_total);
	else
		s->percent = s->layers_done * 100 / s->layers_total;
}

static void human(char *out, size_t len, int64_t b)
{
	if (b >= 1000 * 1000)
		snprintf(out, len, "%.1f MB", (double)b / 1e6);
	else if (b >= 1000)
		snprintf(out, len, "%.1f kB", (double)b / 1e3);
	else
		snprintf(out, len, "%lld B", (long long)b);
}

void pull_summary_format(const struct pull_summary *s, char *out, size_t len)
{
	char d[32], t[32];

	human(d, sizeof(d), s->bytes_done);
	human(t, sizeof(t), s->bytes_total);
	if (s->bytes_total > 0)
		snprintf(out, len, "layers %d/%d, %s/%s (%d%%)", s->layers_done, s->layers_total, d, t, s->percent);
	else
		snprintf(out, len, "layers %d/%d (%d%%)", s->layers_done, s->layers_total, s->percent);
}

bool pull_progress_due(const struct pull_summary *s, int last_pct, int64_t last_bytes, int last_layers,
		       int64_t last_ms, int64_t now)
{
	if (s->percent >= last_pct + 10)
		return true;
	return now - last_ms >= 5000 && (s->bytes_done != last_bytes || s->layers_done != last_layers);
}
