/*
 * swarm.c — Docker Swarm's part of the Engine API (contract: swarm.h; the
 * design: docs/internals/fleet.md). Requests go through docker.c's
 * docker__request (docker-int.h): same transport, bounds and error shape.
 */
#include "common.h"
#include <jansson.h>
#include "runtime/docker-int.h"
#include "runtime/swarm.h"
#include <sodium.h>

static void jstr(json_t *o, const char *key, char *out, size_t len)
{
	const char *s = json_string_value(json_object_get(o, key));
	strlcpy_g(out, s ? s : "", len);
}

/* "10.0.1.5/24" -> "10.0.1.5" */
static void addr_no_prefix(const char *s, char *out, size_t len)
{
	const char *sl;

	if (!s) {
		strlcpy_g(out, "", len);
		return;
	}
	sl = strchr(s, '/');
	snprintf(out, len, "%.*s", sl ? (int)(sl - s) : (int)strlen(s), s);
}

static json_t *strv(char *const *v)
{
	json_t *a = json_array();
	for (; v && *v; v++)
		json_array_append_new(a, json_string(*v));
	return a;
}

/* an object's string members as kv pairs (owned) */
static struct kv *labels_of(json_t *o, size_t *n)
{
	struct kv *v = NULL;
	const char *k;
	json_t *x;

	*n = 0;
	if (!json_is_object(o) || !json_object_size(o))
		return NULL;
	v = xcalloc(json_object_size(o), sizeof(*v));
	json_object_foreach(o, k, x) {
		v[*n].key = xstrdup(k);
		v[*n].value = xstrdup(json_string_value(x) ? json_string_value(x) : "");
		(*n)++;
	}
	return v;
}

static void labels_free(struct kv *v, size_t n)
{
	for (size_t i = 0; i < n && v; i++) {
		free(v[i].key);
		free(v[i].value);
	}
	free(v);
}

/* GET path as JSON: 1 (*out owned), 0 on 404 when missing_ok, -1 */
static int get_json(struct docker *d, const char *op, const char *path, bool missing_ok, json_t **out,
		    struct gerr *err)
{
	long st = docker__request(d, op, "GET", path, NULL, 0, out, err);

	if (st == 404 && missing_ok)
		return 0;
	if (st < 200 || st >= 300)
		return -1;
	if (!*out) {
		gerr_set(err, "%s: the Engine's answer is empty", op);
		return -1;
	}
	return 1;
}

/* path?filters={"KEY":["VALUE"]} (owned) */
static char *with_filter(const char *path, const char *key, const char *value)
{
	json_t *f;
	char *s, *e, *r;

	if (!value || !*value)
		return xstrdup(path);
	f = json_pack("{s:[s]}", key, value);
	s = json_dumps(f, JSON_COMPACT);
	e = docker__esc(s);
	r = xasprintf("%s?filters=%s", path, e);
	json_decref(f);
	free(s);
	free(e);
	return r;
}

/* ---- the swarm ---- */

int swarm_info(struct docker *d, struct swarm_info *out, struct gerr *err)
{
	json_t *j = NULL, *s;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	if (get_json(d, "swarm info", "/info", false, &j, err) < 0)
		goto out;
	s = json_object_get(j, "Swarm");
	jstr(s, "LocalNodeState", out->state, sizeof(out->state));
	jstr(s, "NodeID", out->node_id, sizeof(out->node_id));
	jstr(s, "NodeAddr", out->node_addr, sizeof(out->node_addr));
	jstr(s, "Error", out->error, sizeof(out->error));
	out->manager = json_is_true(json_object_get(s, "ControlAvailable"));
	jstr(json_object_get(s, "Cluster"), "ID", out->cluster_id, sizeof(out->cluster_id));
	out->nodes = (int)json_integer_value(json_object_get(s, "Nodes"));
	out->managers = (int)json_integer_value(json_object_get(s, "Managers"));
	if (!out->state[0])
		strlcpy_g(out->state, "inactive", sizeof(out->state));
	ret = 0;
out:
	json_decref(j);
	return ret;
}

void swarm_nodes_free(struct swarm_node *v, size_t n)
{
	for (size_t i = 0; i < n && v; i++)
		labels_free(v[i].labels, v[i].nlabels);
	free(v);
}

int swarm_node_list(struct docker *d, struct swarm_node **out, size_t *n, struct gerr *err)
{
	json_t *j = NULL;
	int ret = -1;

	*out = NULL;
	*n = 0;
	if (get_json(d, "list nodes", "/nodes", false, &j, err) < 0)
		goto out;
	if (!json_is_array(j)) {
		gerr_set(err, "list nodes: the Engine's answer is not a list");
		goto out;
	}
	*out = xcalloc(json_array_size(j) + 1, sizeof(**out));
	for (size_t i = 0; i < json_array_size(j); i++) {
		json_t *e = json_array_get(j, i), *spec = json_object_get(e, "Spec"), *st = json_object_get(e, "Status");
		json_t *ms = json_object_get(e, "ManagerStatus");
		struct swarm_node *nd = &(*out)[i];
		jstr(e, "ID", nd->id, sizeof(nd->id));
		jstr(json_object_get(e, "Description"), "Hostname", nd->hostname, sizeof(nd->hostname));
		jstr(st, "Addr", nd->addr, sizeof(nd->addr));
		jstr(st, "State", nd->state, sizeof(nd->state));
		jstr(st, "Message", nd->message, sizeof(nd->message));
		jstr(spec, "Role", nd->role, sizeof(nd->role));
		jstr(spec, "Availability", nd->availability, sizeof(nd->availability));
		nd->leader = json_is_true(json_object_get(ms, "Leader"));
		nd->labels = labels_of(json_object_get(spec, "Labels"), &nd->nlabels);
		(*n)++;
	}
	ret = 0;
out:
	if (ret < 0) {
		swarm_nodes_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	json_decref(j);
	return ret;
}

/* ---- services ---- */

static json_t *service_body(const struct swarm_service_spec *s)
{
	json_t *spec = json_object(), *tt = json_object(), *cs = json_object(), *labels = json_object();
	json_t *place = json_object(), *nets = json_array();

	for (size_t i = 0; i < s->nlabels; i++)
		json_object_set_new(labels, s->labels[i].key, json_string(s->labels[i].value));
	json_object_set_new(spec, "Name", json_string(s->name ? s->name : ""));
	json_object_set(spec, "Labels", labels);

	json_object_set_new(cs, "Image", json_string(s->image ? s->image : ""));
	/* the containers carry them too: found by label on a node's Engine */
	json_object_set(cs, "Labels", labels);
	if (s->env)
		json_object_set_new(cs, "Env", strv(s->env));
	if (s->user && *s->user)
		json_object_set_new(cs, "User", json_string(s->user));
	if (s->command)
		json_object_set_new(cs, "Command", strv(s->command));
	if (s->args)
		json_object_set_new(cs, "Args", strv(s->args));
	if (s->stop_grace_ms > 0)
		json_object_set_new(cs, "StopGracePeriod", json_integer((json_int_t)s->stop_grace_ms * 1000000));
	if (s->secret_id && s->secret_name && s->secret_file)
		json_object_set_new(cs, "Secrets",
				    json_pack("[{s:s, s:s, s:{s:s, s:s, s:s, s:i}}]", "SecretID", s->secret_id,
					      "SecretName", s->secret_name, "File", "Name", s->secret_file, "UID",
					      s->secret_uid ? s->secret_uid : "0", "GID",
					      s->secret_uid ? s->secret_uid : "0", "Mode", 0400));
	json_object_set_new(tt, "ContainerSpec", cs);

	if (s->res && (s->res->cpu_millis || s->res->memory_bytes || s->res->pids)) {
		json_t *lim = json_object();
		if (s->res->cpu_millis)
			json_object_set_new(lim, "NanoCPUs", json_integer((json_int_t)s->res->cpu_millis * 1000000));
		if (s->res->memory_bytes)
			json_object_set_new(lim, "MemoryBytes", json_integer((json_int_t)s->res->memory_bytes));
		if (s->res->pids)
			json_object_set_new(lim, "Pids", json_integer((json_int_t)s->res->pids));
		json_object_set_new(tt, "Resources", json_pack("{s:o}", "Limits", lim));
	}
	/* gantry supervises: the Engine never restarts a revision's task */
	json_object_set_new(tt, "RestartPolicy", json_pack("{s:s}", "Condition", s->restart_any ? "any" : "none"));
	if (s->constraints)
		json_object_set_new(place, "Constraints", strv(s->constraints));
	if (s->spread && *s->spread)
		json_object_set_new(place, "Preferences",
				    json_pack("[{s:{s:s}}]", "Spread", "SpreadDescriptor", s->spread));
	if (json_object_size(place))
		json_object_set(tt, "Placement", place);
	for (char *const *n = s->networks; n && *n; n++)
		json_array_append_new(nets, json_pack("{s:s}", "Target", *n));
	if (json_array_size(nets))
		json_object_set(tt, "Networks", nets);
	json_object_set_new(spec, "TaskTemplate", tt);
	if (s->global)
		json_object_set_new(spec, "Mode", json_pack("{s:{}}", "Global"));
	else
		json_object_set_new(spec, "Mode",
				    json_pack("{s:{s:I}}", "Replicated", "Replicas", (json_int_t)s->replicas));
	if (s->dnsrr || s->nhost_ports) {
		json_t *es = json_object(), *ports = json_array();
		if (s->dnsrr)
			json_object_set_new(es, "Mode", json_string("dnsrr"));
		for (size_t i = 0; i < s->nhost_ports; i++)
			json_array_append_new(ports, json_pack("{s:s, s:i, s:i, s:s}", "Protocol", "tcp", "TargetPort",
							       s->host_ports[i], "PublishedPort", s->host_ports[i],
							       "PublishMode", "host"));
		if (json_array_size(ports))
			json_object_set(es, "Ports", ports);
		json_decref(ports);
		json_object_set_new(spec, "EndpointSpec", es);
	}
	json_decref(labels);
	json_decref(place);
	json_decref(nets);
	return spec;
}

int swarm_service_create(struct docker *d, const struct swarm_service_spec *s, char *id, size_t idlen,
			 struct gerr *err)
{
	char *op = xasprintf("create service %s", s->name ? s->name : "");
	json_t *spec = service_body(s), *reply = NULL;
	char *body = json_dumps(spec, JSON_COMPACT);
	const char *rid;
	long st;
	int ret = -1;

	if (idlen)
		id[0] = 0;
	if (!s->name || !*s->name || !s->image || !*s->image) {
		gerr_set(err, "%s: a service needs a name and an image", op);
		goto out;
	}
	st = docker__request(d, op, "POST", "/services/create", body, 0, &reply, err);
	if (st < 200 || st >= 300)
		goto out;
	rid = json_string_value(json_object_get(reply, "ID"));
	if (!rid || strlen(rid) >= idlen) {
		gerr_set(err, "%s: the Engine's answer has no service id", op);
		goto out;
	}
	strlcpy_g(id, rid, idlen);
	ret = 0;
out:
	json_decref(spec);
	json_decref(reply);
	free(body);
	free(op);
	return ret;
}

void swarm_service_release(struct swarm_service *s)
{
	labels_free(s->labels, s->nlabels);
	s->labels = NULL;
	s->nlabels = 0;
}

static void service_of(json_t *j, struct swarm_service *out)
{
	json_t *spec = json_object_get(j, "Spec"), *mode = json_object_get(spec, "Mode");

	memset(out, 0, sizeof(*out));
	jstr(j, "ID", out->id, sizeof(out->id));
	jstr(spec, "Name", out->name, sizeof(out->name));
	out->version = (uint64_t)json_integer_value(json_object_get(json_object_get(j, "Version"), "Index"));
	out->global = json_object_get(mode, "Global") != NULL;
	out->replicas = (uint64_t)json_integer_value(json_object_get(json_object_get(mode, "Replicated"), "Replicas"));
	jstr(json_object_get(json_object_get(spec, "TaskTemplate"), "ContainerSpec"), "Image", out->image,
	     sizeof(out->image));
	out->labels = labels_of(json_object_get(spec, "Labels"), &out->nlabels);
	out->created_ms = docker__rfc3339_ms(json_string_value(json_object_get(j, "CreatedAt")));
	out->updated_ms = docker__rfc3339_ms(json_string_value(json_object_get(j, "UpdatedAt")));
}

/* GET /services/ID: 1 (*out owned), 0 absent, -1 */
static int service_get(struct docker *d, const char *op, const char *id, json_t **out, struct gerr *err)
{
	char *e = docker__esc(id), *path = xasprintf("/services/%s", e);
	int k = get_json(d, op, path, true, out, err);

	free(e);
	free(path);
	return k;
}

int swarm_service_inspect(struct docker *d, const char *id, struct swarm_service *out, struct gerr *err)
{
	char *op = xasprintf("inspect service %s", id);
	json_t *j = NULL;
	int k;

	memset(out, 0, sizeof(*out));
	if ((k = service_get(d, op, id, &j, err)) > 0)
		service_of(j, out);
	json_decref(j);
	free(op);
	return k;
}

void swarm_services_free(struct swarm_service *v, size_t n)
{
	for (size_t i = 0; i < n && v; i++)
		swarm_service_release(&v[i]);
	free(v);
}

int swarm_service_list(struct docker *d, const char *label, struct swarm_service **out, size_t *n,
		       struct gerr *err)
{
	char *op = xasprintf("list services labelled %s", label && *label ? label : "(any)");
	char *path = with_filter("/services", "label", label);
	json_t *j = NULL;
	int ret = -1;

	*out = NULL;
	*n = 0;
	if (get_json(d, op, path, false, &j, err) < 0)
		goto out;
	if (!json_is_array(j)) {
		gerr_set(err, "%s: the Engine's answer is not a list", op);
		goto out;
	}
	*out = xcalloc(json_array_size(j) + 1, sizeof(**out));
	for (size_t i = 0; i < json_array_size(j); i++)
		service_of(json_array_get(j, i), &(*out)[(*n)++]);
	ret = 0;
out:
	json_decref(j);
	free(op);
	free(path);
	return ret;
}

/*
 * Read, change, write back: reads the service (its spec and version), lets
 * mutate change the spec (0, or -1 with err set: nothing written), posts
 * it to /services/ID/update?version=V. If another writer got in between
 * ("update out of sequence"), it reads and tries again, up to 3 times.
 */
static int service_update(struct docker *d, const char *op, const char *id,
			  int (*mutate)(json_t *spec, const void *arg, const char *op, struct gerr *err), const void *arg,
			  struct gerr *err)
{
	int ret = -1;

	for (int attempt = 0; attempt < 3; attempt++) {
		json_t *j = NULL, *reply = NULL;
		char *body = NULL, *e = NULL, *path = NULL;
		json_int_t version;
		long st;
		int k = service_get(d, op, id, &j, err);
		if (k <= 0) {
			if (k == 0)
				gerr_set(err, "%s: no such service", op);
			json_decref(j);
			break;
		}
		version = json_integer_value(json_object_get(json_object_get(j, "Version"), "Index"));
		if (mutate(json_object_get(j, "Spec"), arg, op, err) < 0) {
			json_decref(j);
			break;
		}
		body = json_dumps(json_object_get(j, "Spec"), JSON_COMPACT);
		e = docker__esc(id);
		path = xasprintf("/services/%s/update?version=%lld", e, (long long)version);
		st = docker__request(d, op, "POST", path, body, 0, &reply, err);
		json_decref(j);
		json_decref(reply);
		free(body);
		free(e);
		free(path);
		if (st >= 200 && st < 300) {
			ret = 0;
			break;
		}
		/* another writer bumped the version between our read and our write */
		if (st < 0 || !strstr(err->msg, "out of sequence"))
			break;
	}
	return ret;
}

static int set_replicas(json_t *spec, const void *arg, const char *op, struct gerr *err)
{
	json_t *rep = json_object_get(json_object_get(spec, "Mode"), "Replicated");
	if (!json_is_object(rep))
		return gerr_set(err, "%s: not a replicated service", op);
	json_object_set_new(rep, "Replicas", json_integer((json_int_t) * (const uint64_t *)arg));
	return 0;
}

int swarm_service_scale(struct docker *d, const char *id, uint64_t replicas, struct gerr *err)
{
	char *op = xasprintf("scale service %s to %llu", id, (unsigned long long)replicas);
	int ret = service_update(d, op, id, set_replicas, &replicas, err);
	free(op);
	return ret;
}

struct image_change {
	const char *image, *label;
	char *const *args;
	int64_t stop_grace_ms;
};

static int set_image(json_t *spec, const void *arg, const char *op, struct gerr *err)
{
	const struct image_change *c = arg;
	json_t *cs = json_object_get(json_object_get(spec, "TaskTemplate"), "ContainerSpec"), *labels;
	if (!json_is_object(cs))
		return gerr_set(err, "%s: the service has no container spec", op);
	json_object_set_new(cs, "Image", json_string(c->image));
	if (c->args) {
		json_t *a = json_array();
		for (size_t i = 0; c->args[i]; i++)
			json_array_append_new(a, json_string(c->args[i]));
		json_object_set_new(cs, "Args", a);
	}
	if (c->stop_grace_ms > 0)
		json_object_set_new(cs, "StopGracePeriod", json_integer((json_int_t)c->stop_grace_ms * 1000000));
	if (c->label) {
		if (!json_is_object(labels = json_object_get(spec, "Labels")))
			json_object_set_new(spec, "Labels", labels = json_object());
		json_object_set_new(labels, c->label, json_string(c->image));
	}
	/* one task at a time, each given 5 s to prove itself; Swarm rolls back
	 * a failed update; stop-first, as host-mode ports require */
	json_object_set_new(spec, "UpdateConfig",
			    json_pack("{s:i, s:I, s:s, s:I, s:s, s:f}", "Parallelism", 1, "Delay",
				      (json_int_t)1000000000, "FailureAction", "rollback", "Monitor",
				      (json_int_t)5000000000LL, "Order", "stop-first", "MaxFailureRatio", 0.0));
	return 0;
}

int swarm_service_set_image(struct docker *d, const char *id, const char *image, const char *label,
			    char *const *args, int64_t stop_grace_ms, struct gerr *err)
{
	struct image_change c = { image, label, args, stop_grace_ms };
	char *op = xasprintf("update service %s to image %s", id, image);
	int ret = service_update(d, op, id, set_image, &c, err);
	free(op);
	return ret;
}

int swarm_service_set_labels(struct docker *d, const char *id, uint64_t version, const struct kv *labels, size_t n,
			     struct gerr *err)
{
	char *op = xasprintf("update the labels of service %s", id);
	json_t *j = NULL, *spec, *l, *reply = NULL;
	char *body = NULL, *e = NULL, *path = NULL;
	long st;
	int ret = -1, k = service_get(d, op, id, &j, err);

	if (k <= 0) {
		if (k == 0)
			gerr_set(err, "%s: no such service", op);
		goto out;
	}
	if ((uint64_t)json_integer_value(json_object_get(json_object_get(j, "Version"), "Index")) != version) {
		gerr_set(err, "%s: its version moved past %llu", op, (unsigned long long)version);
		ret = 1;
		goto out;
	}
	spec = json_object_get(j, "Spec");
	l = json_object();
	for (size_t i = 0; i < n; i++)
		json_object_set_new(l, labels[i].key, json_string(labels[i].value));
	json_object_set_new(spec, "Labels", l);
	body = json_dumps(spec, JSON_COMPACT);
	e = docker__esc(id);
	path = xasprintf("/services/%s/update?version=%llu", e, (unsigned long long)version);
	st = docker__request(d, op, "POST", path, body, 0, &reply, err);
	if (st >= 200 && st < 300)
		ret = 0;
	else if (st > 0 && strstr(err->msg, "out of sequence"))
		ret = 1;
out:
	json_decref(j);
	json_decref(reply);
	free(body);
	free(e);
	free(path);
	free(op);
	return ret;
}

int swarm_service_remove(struct docker *d, const char *id, struct gerr *err)
{
	char *op = xasprintf("remove service %s", id);
	char *e = docker__esc(id), *path = xasprintf("/services/%s", e);
	long st = docker__request(d, op, "DELETE", path, NULL, 0, NULL, err);
	int ret = st == 404 ? 0 : st >= 200 && st < 300 ? 1 : -1;

	free(op);
	free(e);
	free(path);
	return ret;
}

/* ---- secrets ---- */

int swarm_secret_ensure(struct docker *d, const char *name, const char *data, const char *label, char *id,
			size_t idlen, struct gerr *err)
{
	char *op = xasprintf("secret %s", name);
	char *path = with_filter("/secrets", "name", name), *body = NULL, *b64;
	size_t dl = strlen(data), bl = sodium_base64_encoded_len(dl, sodium_base64_VARIANT_ORIGINAL);
	json_t *j = NULL, *reply = NULL, *req;
	long st;
	int ret = -1;

	id[0] = 0;
	if (get_json(d, op, path, false, &j, err) < 0)
		goto out;
	for (size_t i = 0; json_is_array(j) && i < json_array_size(j); i++) {
		json_t *e = json_array_get(j, i);
		const char *n = json_string_value(json_object_get(json_object_get(e, "Spec"), "Name"));
		if (n && !strcmp(n, name)) { /* the filter matches prefixes */
			jstr(e, "ID", id, idlen);
			ret = id[0] ? 0 : -1;
			goto out;
		}
	}
	b64 = xcalloc(1, bl);
	sodium_bin2base64(b64, bl, (const unsigned char *)data, dl, sodium_base64_VARIANT_ORIGINAL);
	req = json_pack("{s:s, s:s, s:{s:s}}", "Name", name, "Data", b64, "Labels", label ? label : "gantry", "");
	sodium_memzero(b64, bl);
	free(b64);
	body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	st = docker__request(d, op, "POST", "/secrets/create", body, 0, &reply, err);
	if (st < 200 || st >= 300)
		goto out;
	jstr(reply, "ID", id, idlen);
	if (!id[0]) {
		gerr_set(err, "%s: the Engine's answer has no secret id", op);
		goto out;
	}
	ret = 0;
out:
	if (body) {
		sodium_memzero(body, strlen(body));
		free(body);
	}
	json_decref(j);
	json_decref(reply);
	free(path);
	free(op);
	return ret;
}

/* ---- tasks ---- */

bool swarm_task_state_final(const char *s)
{
	static const char *const fin[] = { "complete", "shutdown", "failed", "rejected", "remove", "orphaned" };

	for (size_t i = 0; i < ARRAY_SIZE(fin); i++)
		if (strcmp(s, fin[i]) == 0)
			return true;
	return false;
}

/* the address of the attachment to network (a name or an id; NULL: the first) */
static void task_addr(json_t *atts, const char *network, char *out, size_t len)
{
	strlcpy_g(out, "", len);
	for (size_t i = 0; i < json_array_size(atts); i++) {
		json_t *a = json_array_get(atts, i), *net = json_object_get(a, "Network");
		const char *nid = json_string_value(json_object_get(net, "ID"));
		const char *nname = json_string_value(json_object_get(json_object_get(net, "Spec"), "Name"));
		if (network && *network && !(nid && strcmp(nid, network) == 0) &&
		    !(nname && strcmp(nname, network) == 0))
			continue;
		addr_no_prefix(json_string_value(json_array_get(json_object_get(a, "Addresses"), 0)), out, len);
		return;
	}
}

int swarm_task_list(struct docker *d, const char *service, const char *network, struct swarm_task **out,
		    size_t *n, struct gerr *err)
{
	char *op = xasprintf("list tasks of service %s", service);
	char *path = with_filter("/tasks", "service", service);
	json_t *j = NULL;
	int ret = -1;

	*out = NULL;
	*n = 0;
	if (get_json(d, op, path, false, &j, err) < 0)
		goto out;
	if (!json_is_array(j)) {
		gerr_set(err, "%s: the Engine's answer is not a list", op);
		goto out;
	}
	*out = xcalloc(json_array_size(j) + 1, sizeof(**out));
	for (size_t i = 0; i < json_array_size(j); i++) {
		json_t *e = json_array_get(j, i), *st = json_object_get(e, "Status");
		json_t *cst = json_object_get(st, "ContainerStatus");
		struct swarm_task *t = &(*out)[(*n)++];
		jstr(e, "ID", t->id, sizeof(t->id));
		jstr(e, "ServiceID", t->service_id, sizeof(t->service_id));
		jstr(e, "NodeID", t->node_id, sizeof(t->node_id));
		t->slot = (int)json_integer_value(json_object_get(e, "Slot"));
		jstr(st, "State", t->state, sizeof(t->state));
		jstr(e, "DesiredState", t->desired_state, sizeof(t->desired_state));
		jstr(cst, "ContainerID", t->container_id, sizeof(t->container_id));
		jstr(st, "Message", t->message, sizeof(t->message));
		jstr(st, "Err", t->error, sizeof(t->error));
		t->exit_code = (int)json_integer_value(json_object_get(cst, "ExitCode"));
		t->updated_ms = docker__rfc3339_ms(json_string_value(json_object_get(st, "Timestamp")));
		task_addr(json_object_get(e, "NetworksAttachments"), network, t->addr, sizeof(t->addr));
	}
	ret = 0;
out:
	if (ret < 0) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	json_decref(j);
	free(op);
	free(path);
	return ret;
}

int swarm_gateway_addr(struct docker *node_engine, const char *container_id, char *addr, size_t addrlen,
		       struct gerr *err)
{
	json_t *j = NULL, *cs;
	int k;

	strlcpy_g(addr, "", addrlen);
	k = get_json(node_engine, "inspect network docker_gwbridge", "/networks/docker_gwbridge", true, &j, err);
	if (k <= 0)
		goto out;
	k = 0;
	cs = json_object_get(j, "Containers");
	if (json_is_object(cs) && container_id && *container_id) {
		const char *key;
		json_t *v;
		json_object_foreach(cs, key, v) {
			/* keyed by the full container id; a short id matches its prefix */
			if (strncmp(key, container_id, strlen(container_id)) != 0)
				continue;
			addr_no_prefix(json_string_value(json_object_get(v, "IPv4Address")), addr, addrlen);
			k = addr[0] ? 1 : 0;
			break;
		}
	}
out:
	json_decref(j);
	return k;
}
