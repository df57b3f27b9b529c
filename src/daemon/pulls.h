/*
 * pulls.h — a deployment whose image the Docker Engine lacks waits in the
 * state "pulling" while a thread pulls it (src/daemon/pulls.c), then goes
 * on exactly as if the image had been there: pre-checks, then the rollout
 * (a deploy or promotion), or the copy of the old revision (a rollback or
 * restart). Everything here runs on the loop and never blocks it beyond an
 * image inspect on the Engine's socket.
 *
 * The record is the truth: a controller killed during a pull finds the
 * deployment in "pulling" at start-up (gates_resume_checks →
 * pulls_resume) and pulls again; the rollout is created once, when the
 * pull is done.
 */
#ifndef GANTRY_DAEMON_PULLS_H
#define GANTRY_DAEMON_PULLS_H
#include "common.h"
#include "store/store_records.h"
#include <jansson.h>

/*
 * Where the image of a deploy is pulled from: REPO@sha256:MANIFEST of
 * image_ref ("REPO[:TAG]@sha256:<64 hex>", what deploy pushed), else
 * REGISTRY/SERVICE:VERSION when the config has a registry, else its image:
 * reference when it names a registry. 1 (out set), 0 (none), -1 (image_ref
 * is not such a reference)
 */
int pulls_source(const char *image_ref, const char *registry, const char *image, const char *svc,
		 const char *version, char *out, size_t len);
/* ref names a registry: its first component is a host ("HOST:PORT", "a.b", "localhost") */
bool pulls_ref_has_registry(const char *ref);

/*
 * A deploy or promotion d whose gates passed: 1 when its image must be
 * pulled first (d is now "pulling", stored; the pull runs; *reply is the
 * answer to give), 0 when nothing is to pull (a process service, or the
 * image is there), -1 with *reply the refusal (d recorded failed).
 */
int pulls_begin_deploy(struct deployment_row *d, json_t **reply);
/*
 * A rollback or restart recorded as deployment `ticket` (gates passed) of
 * revision `source` of svc@env, whose image id (hex) the Engine lacks:
 * pulled from ref, then the revision is copied (kind, why). The reply to
 * give (a new reference).
 */
json_t *pulls_begin_copy(int64_t ticket, const char *svc, const char *env, int source, const char *kind,
			 const char *why, const char *ref, const char *hex, const char *version);
/*
 * Revision `number` of svc@env: 1 when the Engine lacks its image (a docker
 * revision) and ref (where to pull it from: the image_ref its deployment
 * record carried, else REGISTRY/SERVICE:VERSION of its config, else its
 * image:) and hex (its id) are set; 0 when nothing is to pull; -1 with err
 * (naming the image and where it looked) when it cannot be had.
 */
int pulls_revision_source(const char *svc, const char *env, int number, char *ref, size_t rlen, char *hex,
			  size_t hlen, char *version, size_t vlen, struct gerr *err);
/* a deployment found in "pulling" at start-up: pulled again */
void pulls_resume(const struct deployment_row *d);
/* from gates_tick: progress events, and the pulls that ended go on */
void pulls_tick(void);
/* a rollout of svc@env starts: deployments of it still pulling are superseded */
void pulls_supersede(const char *svc, const char *env);
/* status's "pull" object of svc@env (its newest pending pull), or NULL */
json_t *pulls_json(const char *svc, const char *env);
/* the pending pulls' svc@env not in list (status objects): appended, phase "pulling" */
void pulls_status_first(json_t *list, const char *svc, const char *env);

#endif
