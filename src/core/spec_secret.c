/*
 * spec_secret.c — references to the secret store in a service's config
 * (issue 17): `env: {KEY: {secret: NAME, version: N}}` and
 * `files: {FILE: {secret: NAME, version: N}}`. Only the reference is
 * parsed and kept here; values live encrypted in the controller's store
 * (src/daemon/secrets.c) and are decrypted when a replica starts.
 */
#include "common.h"
#include "core/spec-int.h"
#include <ctype.h>

#define report(w, node, ...) spec__report_at((w), (node) ? (node)->line : 0, (node) ? (node)->col : 0, __VA_ARGS__)

bool secret_name_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (!n || n > SECRET_NAME_MAX || !isalnum((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
			return false;
	return true;
}

static int ref_cmp(const struct secret_ref *a, bool file, const char *target)
{
	if (a->file != file)
		return a->file ? 1 : -1;
	return strcmp(a->target, target);
}

void spec__secret_drop(struct svc_config *c, const char *target, bool file)
{
	for (size_t i = 0; i < c->nsecrets; i++) {
		if (ref_cmp(&c->secrets[i], file, target))
			continue;
		free(c->secrets[i].target);
		free(c->secrets[i].secret);
		free(c->secrets[i].sops);
		memmove(&c->secrets[i], &c->secrets[i + 1], (c->nsecrets - i - 1) * sizeof(*c->secrets));
		c->nsecrets--;
		return;
	}
}

void svc_config_set_secret(struct svc_config *c, const struct secret_ref *ref)
{
	size_t i;
	if (!ref->file) {
		/* a plain env KEY of the same name is replaced */
		for (i = 0; i < c->nenv; i++) {
			if (strcmp(c->env[i].key, ref->target))
				continue;
			free(c->env[i].key);
			free(c->env[i].value);
			memmove(&c->env[i], &c->env[i + 1], (c->nenv - i - 1) * sizeof(*c->env));
			c->nenv--;
			break;
		}
	}
	for (i = 0; i < c->nsecrets; i++) {
		int cmp = ref_cmp(&c->secrets[i], ref->file, ref->target);
		if (!cmp) {
			free(c->secrets[i].secret);
			free(c->secrets[i].sops);
			c->secrets[i].secret = xstrdup(ref->secret);
			c->secrets[i].sops = ref->sops ? xstrdup(ref->sops) : NULL;
			c->secrets[i].version = ref->version;
			c->secrets[i].line = ref->line;
			c->secrets[i].col = ref->col;
			return;
		}
		if (cmp > 0)
			break;
	}
	c->secrets = xrealloc(c->secrets, (c->nsecrets + 1) * sizeof(*c->secrets));
	memmove(&c->secrets[i + 1], &c->secrets[i], (c->nsecrets - i) * sizeof(*c->secrets));
	c->secrets[i] = *ref;
	c->secrets[i].target = xstrdup(ref->target);
	c->secrets[i].secret = xstrdup(ref->secret);
	c->secrets[i].sops = ref->sops ? xstrdup(ref->sops) : NULL;
	c->nsecrets++;
}

void spec__secrets_release(struct svc_config *c)
{
	for (size_t i = 0; i < c->nsecrets; i++) {
		free(c->secrets[i].target);
		free(c->secrets[i].secret);
		free(c->secrets[i].sops);
	}
	free(c->secrets);
	c->secrets = NULL;
	c->nsecrets = 0;
}

/* a file's name in the secrets directory: [A-Za-z0-9_.-], not starting with '.' */
static bool file_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > 128 || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
			return false;
	return true;
}

bool secret_sops_path_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (!n || n > 256 || s[0] == '.' || s[n - 1] == '.' || strstr(s, ".."))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
			return false;
	return true;
}

/* {secret: NAME, version: N} or {sops: PATH} at v (key k) for target: applied to c when valid */
void spec__apply_secret_ref(struct walker *w, const struct ynode *k, const struct ynode *v, struct svc_config *c,
			    bool file)
{
	struct secret_ref ref = { .target = k->text, .file = file, .line = v->line, .col = v->col };
	int before = w->nerr;

	if (!spec__want_map(w, v, k, false))
		return;
	for (size_t i = 0; i + 1 < v->nkids; i += 2) {
		const struct ynode *sk = v->kids[i], *sv = v->kids[i + 1];
		const char *s;
		size_t old;
		if (!spec__key_ok(w, v, i))
			continue;
		old = spec__path_key(w, sk->text);
		if (!strcmp(sk->text, "secret")) {
			if ((s = spec__want_scalar(w, sv, sk))) {
				if (!secret_name_valid(s))
					report(w, sv, "invalid secret name '%s' (letters, digits, '_', '-' and '.', "
						      "at most %d, starting with a letter or digit)", s, SECRET_NAME_MAX);
				else
					ref.secret = sv->text;
			}
		} else if (!strcmp(sk->text, "sops")) {
			if ((s = spec__want_scalar(w, sv, sk))) {
				if (!secret_sops_path_valid(s))
					report(w, sv, "invalid SOPS path '%s' (map keys joined with '.', list items by "
						      "number: db.password, hosts.0.key)", s);
				else
					ref.sops = sv->text;
			}
		} else if (!strcmp(sk->text, "version")) {
			if ((s = spec__want_scalar(w, sv, sk))) {
				char *end;
				long n = strtol(s, &end, 10);
				if (*end || end == s || n < 1 || n > 1000000000)
					report(w, sv, "expected a version number >= 1, got '%s'", s);
				else
					ref.version = (int)n;
			}
		} else {
			static const char *const cands[] = { "secret", "version", "sops" };
			spec__report_unknown(w, sk, "key", cands, ARRAY_SIZE(cands));
		}
		spec__path_pop(w, old);
	}
	if (w->nerr != before)
		return;
	if (ref.sops && (ref.secret || ref.version)) {
		report(w, v, "'sops' names a value of environments.E.secrets.file: it takes no 'secret' nor 'version' "
			     "(the file the deploy carries is pinned)");
		return;
	}
	if (ref.sops) {
		ref.secret = (char *)SECRET_SOPS;
	} else if (!ref.secret) {
		report(w, v, "missing required key 'secret' (the name of a secret: gantry secret set NAME --env ENV) "
			     "or 'sops' (a path in environments.E.secrets.file)");
		return;
	}
	svc_config_set_secret(c, &ref);
}

/* files: {FILE: {secret: NAME, version: N}} */
void spec__apply_secret_files(struct walker *w, const struct ynode *k, const struct ynode *v, struct svc_config *c)
{
	if (!spec__want_map(w, v, k, false))
		return;
	for (size_t i = 0; i + 1 < v->nkids; i += 2) {
		const struct ynode *fk = v->kids[i], *fv = v->kids[i + 1];
		size_t old;
		if (!spec__key_ok(w, v, i))
			continue;
		old = spec__path_key(w, fk->text);
		if (!file_name_ok(fk->text))
			report(w, fk, "invalid file name '%s' (letters, digits, '_', '-' and '.', not starting with '.')",
			       fk->text);
		else
			spec__apply_secret_ref(w, fk, fv, c, true);
		spec__path_pop(w, old);
	}
}

/* environments.E.secrets.recipients: age1... strings */
void spec__apply_recipients(struct walker *w, const struct ynode *k, const struct ynode *v, void *base)
{
	struct spec_env *e = base;
	char **list = NULL;
	size_t n = 0;
	int before = w->nerr;

	spec__set_strlist(w, v, k, false, &list, &n);
	if (w->nerr != before)
		return;
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(list[i]);
		bool ok = len > 4 && len < 200 && !strncmp(list[i], "age1", 4);
		for (size_t j = 4; ok && j < len; j++)
			ok = (list[i][j] >= 'a' && list[i][j] <= 'z') || (list[i][j] >= '0' && list[i][j] <= '9');
		if (!ok)
			report(w, v->type == Y_SEQ && i < v->nkids ? v->kids[i] : v,
			       "'%.80s' is not an age recipient (age1... as age-keygen prints it)", list[i]);
	}
	if (w->nerr != before) {
		spec__free_strv(list, n);
		return;
	}
	spec__free_strv(e->recipients, e->nrecipients);
	e->recipients = list;
	e->nrecipients = n;
}
