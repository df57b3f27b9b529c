/*
 * gspec.c — reading the gate keys of the spec (gspec.h) through the
 * read-only view of the YAML tree; core/spec_gates.c checks them.
 */
#include "common.h"
#include "gates/gspec.h"
#include "core/spec.h"
#include <jansson.h>

static const struct spec_node *env_node(const struct spec *spec, const char *env)
{
	return spec_node_get(spec_node_get(spec_root(spec), "environments"), env);
}

json_t *gspec_gates(const struct spec *spec, const char *svc, const char *env)
{
	const struct spec_node *e = env_node(spec, env), *pr = spec_node_get(e, "protection"), *n;
	json_t *g = json_object();
	if (spec_node_kind(pr) == SPEC_NODE_MAP) {
		static const char *const keys[] = { "approvals", "approval_ttl", "windows", "freeze_on_incident",
						    "rollback_incident" };
		for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
			if ((n = spec_node_get(pr, keys[i])))
				json_object_set_new(g, keys[i], spec_node_to_json(n));
	}
	if ((n = spec_node_get(e, "promote_from")))
		json_object_set_new(g, "promote_from", spec_node_to_json(n));
	if ((n = spec_node_get(e, "min_soak")))
		json_object_set_new(g, "min_soak", spec_node_to_json(n));
	n = spec_node_get(spec_node_get(spec_node_get(spec_root(spec), "services"), svc), "checks");
	if (spec_node_kind(n) == SPEC_NODE_MAP)
		json_object_set_new(g, "checks", spec_node_to_json(n));
	return g;
}

json_t *gspec_notify(const struct spec *spec)
{
	const struct spec_node *n = spec_node_get(spec_root(spec), "notify");
	return n ? spec_node_to_json(n) : NULL;
}

/* a list of names as strings (spec_node_to_json would turn a name of digits into a number) */
static json_t *names_json(const struct spec_node *l)
{
	json_t *a = json_array();
	for (size_t i = 0; i < spec_node_count(l) && spec_node_kind(l) == SPEC_NODE_SEQ; i++)
		if (spec_node_text(spec_node_item(l, i)))
			json_array_append_new(a, json_string(spec_node_text(spec_node_item(l, i))));
	return a;
}

json_t *gspec_roles(const struct spec *spec)
{
	const struct spec_node *n = spec_node_get(spec_root(spec), "roles");
	json_t *o;
	if (!n)
		return NULL;
	o = json_object();
	for (size_t i = 0; i < spec_node_count(n) && spec_node_kind(n) == SPEC_NODE_MAP; i++) {
		const char *user = spec_node_text(spec_node_key(n, i));
		const struct spec_node *v = spec_node_item(n, i);
		json_t *r;
		if (!user)
			continue;
		if (spec_node_kind(v) != SPEC_NODE_MAP) {
			json_object_set_new(o, user, json_string(spec_node_text(v) ? spec_node_text(v) : ""));
			continue;
		}
		r = json_pack("{s:s}", "role", spec_node_text(spec_node_get(v, "role")) ?
			      spec_node_text(spec_node_get(v, "role")) : "");
		if (spec_node_get(v, "environments"))
			json_object_set_new(r, "environments", names_json(spec_node_get(v, "environments")));
		if (spec_node_get(v, "services"))
			json_object_set_new(r, "services", names_json(spec_node_get(v, "services")));
		json_object_set_new(o, user, r);
	}
	return o;
}

json_t *gspec_checklist(const struct spec *spec, const char *env)
{
	const struct spec_node *n = spec_node_get(spec_node_get(env_node(spec, env), "protection"), "checklist");
	json_t *j = n ? spec_node_to_json(n) : NULL;
	if (!json_is_array(j)) {
		json_decref(j);
		j = json_array();
	}
	return j;
}
