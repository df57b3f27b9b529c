/*
 * pull_progress.h — what a pull of an image has done so far, made from the
 * Engine's progress stream (one call per status line), and when it is worth
 * telling. Pure: no I/O, no clock (time is an argument), no allocation.
 *
 * A layer is a status line whose id is not the reference being pulled
 * ("Pulling fs layer", "Waiting", "Downloading", "Download complete",
 * "Extracting", "Pull complete", "Already exists"). It is done at "Pull
 * complete" or "Already exists". Bytes are the download's: a layer's total
 * is the largest "Downloading" total it announced, its current the
 * download's current (the total once downloaded). Past PULL_LAYERS_MAX
 * layers the rest are counted but not tracked by bytes.
 */
#ifndef GANTRY_RUNTIME_PULL_PROGRESS_H
#define GANTRY_RUNTIME_PULL_PROGRESS_H
#include "common.h"

#define PULL_LAYERS_MAX 64

struct pull_layer {
	char id[72];
	int64_t current, total;
	bool done;
};

struct pull_progress {
	struct pull_layer layer[PULL_LAYERS_MAX];
	int nlayers;                  /* tracked in layer[] */
	int untracked, untracked_done; /* layers past PULL_LAYERS_MAX */
};

/* one status line of the stream: id (NULL or "" for the image's own
 * lines: "Pulling from", "Digest:", "Status:"), status, progressDetail's
 * current and total (0 when absent) */
void pull_progress_update(struct pull_progress *p, const char *id, const char *status, int64_t current,
			  int64_t total);

struct pull_summary {
	int layers_done, layers_total;
	int64_t bytes_done, bytes_total; /* of the layers whose size is known */
	int percent;                  /* 0..100: bytes when every layer's size is known, else layers */
};
void pull_progress_summary(const struct pull_progress *p, struct pull_summary *out);

/* "layers 2/5, 12.1 MB/40.0 MB (30%)" into out */
void pull_summary_format(const struct pull_summary *s, char *out, size_t len);

/*
 * An event is due: at each further 10% since the last one told (last_pct),
 * or after 5 s (last_ms, now: any clock in ms) when something moved since
 * (last_bytes, last_layers). The first and the last events are the
 * caller's (start, end).
 */
bool pull_progress_due(const struct pull_summary *s, int last_pct, int64_t last_bytes, int last_layers,
		       int64_t last_ms, int64_t now);

#endif
