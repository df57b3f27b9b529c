/*
 * secrets.c — the controller's secret store (secrets.h).
 *
 * Where a value is, and for how long:
 *   - at rest: the `secrets` table holds age files only (store_secret.c),
 *     encrypted to the controller's identity and the environment's
 *     recipients; the identity is HOME/secrets/identity (0600, in a 0700
 *     directory of the controller's; workloads run as another user);
 *   - in a request: `secret set`/`rotate` carry it (base64) to the API,
 *     which encrypts it at once; it is never logged, audited or echoed;
 *   - in a revision: {secret, version} (secrets_pin), never the value;
 *   - in a replica: decrypted when it starts, into its environment (r->senv,
 *     zeroed when freed) or a file of SECRETS_RUN_DIR/gantry-TAG/REPLICA
 *     (tmpfs, 0700, owned by the replica's user), removed with the replica.
 */
#include "common.h"
#include "daemon/daemon.h"
#include "daemon/reply.h"
#include "daemon/secrets.h"
#include "secrets/age.h"
#include "secrets/sops.h"
#include "store/store_records.h"
#include "store/store_secret.h"
#include "util/clock.h"
#include "util/log.h"
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

static struct age_identities *ids;      /* the controller's, loaded once */
static char my_recipient[AGE_RECIPIENT_MAX];

/* HOME/secrets/identity: loaded, or made 0600 (O_EXCL) at first use */
static int load_identity(struct gerr *err)
{
	char dir[1024], path[1100];
	char *identity = NULL, *recipient = NULL;
	int fd, ret = -1;
	struct stat st;

	if (ids)
		return 0;
	snprintf(dir, sizeof(dir), "%s/secrets", gd->home);
	snprintf(path, sizeof(path), "%s/identity", dir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return gerr_set(err, "secrets: mkdir %s: %s", dir, strerror(errno));
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
		return gerr_set(err, "secrets: %s is not a directory of ours", dir);
	chmod(dir, 0700);
	if (lstat(path, &st) < 0 && errno == ENOENT) {
		if (age_keygen(&identity, &recipient, err) < 0)
			return -1;
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0) {
			gerr_set(err, "secrets: create %s: %s", path, strerror(errno));
			goto out;
		}
		{
			char head[256];
			int n = snprintf(head, sizeof(head), "# the gantry controller's identity (age); public key: %s\n",
					 recipient);
			bool ok = write(fd, head, (size_t)n) == n &&
				  write(fd, identity, strlen(identity)) == (ssize_t)strlen(identity) &&
				  write(fd, "\n", 1) == 1 && fsync(fd) == 0;
			close(fd);
			if (!ok) {
				unlink(path);
				gerr_set(err, "secrets: write %s: %s", path, strerror(errno));
				goto out;
			}
		}
		log_info("secrets", "identity made recipient=%s", recipient);
	} else if (lstat(path, &st) == 0 && (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077))) {
		return gerr_set(err, "secrets: %s must be a file of ours, mode 0600 (it is %o)", path,
				(unsigned)(st.st_mode & 07777));
	}
	if (age_identities_load(path, &ids, err) < 0)
		goto out;
	if (age_identities_count(ids) < 1) {
		age_identities_free(ids);
		ids = NULL;
		gerr_set(err, "secrets: %s holds no identity", path);
		goto out;
	}
	age_identities_recipient(ids, 0, my_recipient);
	ret = 0;
out:
	age_secret_free(identity, 0);
	free(recipient);
	return ret;
}

int secrets_recipient(char out[128], struct gerr *err)
{
	if (load_identity(err) < 0)
		return -1;
	strlcpy_g(out, my_recipient, 128);
	return 0;
}

int secrets_put(const char *env, const char *name, const void *val, size_t len, const char *by, int *version,
		struct gerr *err)
{
	const struct spec_env *e = gd->spec ? spec_find_env(gd->spec, env) : NULL;
	const char **rcpt;
	size_t n = 0;
	struct secret_row row = { 0 };
	int ret = -1;

	if (!e)
		return gerr_set(err, "no environment '%s' in the stored spec", env);
	if (load_identity(err) < 0)
		return -1;
	rcpt = xcalloc(e->nrecipients + 1, sizeof(*rcpt));
	rcpt[n++] = my_recipient;
	for (size_t i = 0; i < e->nrecipients; i++)
		rcpt[n++] = e->recipients[i];
	if (age_encrypt(val, len, rcpt, n, false, &row.ciphertext, &row.ciphertext_len, err) < 0)
		goto out;
	strlcpy_g(row.environment, env, sizeof(row.environment));
	strlcpy_g(row.name, name, sizeof(row.name));
	strlcpy_g(row.created_by, by, sizeof(row.created_by));
	row.created_at = clock_now_s();
	if (store_secret_add(gd->store, &row, err) < 0)
		goto out;
	*version = row.version;
	log_info("secrets", "environment=%s secret=%s version=%d by=%s stored", env, name, row.version, by);
	ret = 0;
out:
	secret_row_release(&row);
	free(rcpt);
	return ret;
}

int secrets_read(const char *env, const char *name, int version, uint8_t **val, size_t *len, struct gerr *err)
{
	struct secret_row row;
	int found;
	*val = NULL;
	*len = 0;
	if (load_identity(err) < 0)
		return -1;
	found = store_secret_get(gd->store, env, name, version, &row, err);
	if (found <= 0)
		return found;
	found = age_decrypt(row.ciphertext, row.ciphertext_len, ids, val, len, err) < 0 ? -1 : 1;
	if (found < 0) {
		char msg[sizeof(err->msg)];
		strlcpy_g(msg, err->msg, sizeof(msg));
		gerr_set(err, "secret %s version %d of %s: %s", name, row.version, env, msg);
	}
	secret_row_release(&row);
	return found;
}

json_t *secrets_pin(struct svc_config *cfg, const char *spec_name)
{
	json_t *reply = NULL;
	for (size_t i = 0; i < cfg->nsecrets && !reply; i++) {
		struct secret_ref *ref = &cfg->secrets[i];
		struct secret_row row;
		struct gerr err;
		char where[400], what[200];
		int found = store_secret_get(gd->store, cfg->environment, ref->secret, ref->version, &row, &err);
		if (found < 0) {
			reply = reply_error(1, "%s", err.msg);
			break;
		}
		if (found) {
			ref->version = row.version;
			secret_row_release(&row);
			continue;
		}
		if (ref->line)
			snprintf(where, sizeof(where), "%s:%d:%d: error: ", spec_name ? spec_name : "gantry.yaml", ref->line,
				 ref->col);
		else
			where[0] = 0;
		snprintf(what, sizeof(what), "services.%s.%s.%s", cfg->service, ref->file ? "files" : "env", ref->target);
		if (ref->sops)
			reply = reply_error(2, "%s%s: version %d of the SOPS file of environment '%s' is gone", where, what,
					    ref->version, cfg->environment);
		else if (ref->version)
			reply = reply_error(2, "%s%s: secret '%s' has no version %d in environment '%s' (gantry secret list --env %s)",
					    where, what, ref->secret, ref->version, cfg->environment, cfg->environment);
		else
			reply = reply_error(2, "%s%s: secret '%s' does not exist in environment '%s' "
					    "(gantry secret set %s --env %s): nothing was deployed",
					    where, what, ref->secret, cfg->environment, ref->secret, cfg->environment);
	}
	return reply;
}

/* "FILE:LINE:COL: error: " of ref, or "" */
static void ref_where(const struct secret_ref *ref, const char *spec_name, char *out, size_t len)
{
	if (ref && ref->line)
		snprintf(out, len, "%s:%d:%d: error: ", spec_name ? spec_name : "gantry.yaml", ref->line, ref->col);
	else
		snprintf(out, len, "error: ");
}

/* a stored SOPS file is JSON when it starts with '{' */
static enum sops_format sops_text_format(const uint8_t *t, size_t len)
{
	size_t i = 0;
	while (i < len && (t[i] == ' ' || t[i] == '\n' || t[i] == '\r' || t[i] == '\t'))
		i++;
	return i < len && t[i] == '{' ? SOPS_JSON : SOPS_YAML;
}

json_t *secrets_sops_pin(struct svc_config *cfg, const json_t *sops, const char *spec_name)
{
	const struct spec_env *e = gd->spec ? spec_find_env(gd->spec, cfg->environment) : NULL;
	const struct secret_ref *first = NULL;
	const char *file = e ? e->secrets_file : NULL, *text = json_string_value(json_object_get(sops, "text"));
	size_t text_len = json_string_length(json_object_get(sops, "text"));
	struct sops_file *sf = NULL;
	struct secret_row row = { 0 }, newest;
	struct gerr err;
	char where[400], what[300];
	json_t *reply = NULL;
	int version = 0, found;

	for (size_t i = 0; i < cfg->nsecrets && !first; i++)
		if (cfg->secrets[i].sops && !cfg->secrets[i].version)
			first = &cfg->secrets[i];
	if (!first)
		return NULL;
	ref_where(first, spec_name, where, sizeof(where));
	snprintf(what, sizeof(what), "services.%s.%s.%s: {sops: %s}", cfg->service, first->file ? "files" : "env",
		 first->target, first->sops);
	if (!file)
		return reply_error(2, "%s%s: environment '%s' has no SOPS file (environments.%s.secrets.file): "
				   "nothing was deployed", where, what, cfg->environment, cfg->environment);
	if (!text)
		return reply_error(2, "%s%s: the deploy did not carry environments.%s.secrets.file (%s); gantry deploy "
				   "sends it from beside the spec: nothing was deployed", where, what, cfg->environment, file);
	if (text_len > SOPS_MAX_INPUT)
		return reply_error(2, "%s: larger than %u bytes: nothing was deployed", file, SOPS_MAX_INPUT);
	if (load_identity(&err) < 0)
		return reply_error(1, "%s", err.msg);
	if (sops_decrypt(text, text_len, sops_format_from_path(file), ids, &sf, &err) < 0) {
		bool norcpt = strstr(err.msg, "recipient") != NULL;
		return reply_error(2, "%s%s: %s (environments.%s.secrets.file): %s%s%s: nothing was deployed", where, what,
				   file, cfg->environment, err.msg,
				   norcpt ? "; add the controller's recipient to the file (gantry secret recipient): " : "",
				   norcpt ? my_recipient : "");
	}
	for (size_t i = 0; i < cfg->nsecrets && !reply; i++) {
		const struct secret_ref *ref = &cfg->secrets[i];
		char *val = NULL;
		if (!ref->sops || ref->version)
			continue;
		if (sops_tree_get_string(sops_file_tree(sf), ref->sops, &val, &err) < 0) {
			ref_where(ref, spec_name, where, sizeof(where));
			reply = reply_error(2, "%sservices.%s.%s.%s: %s (environments.%s.secrets.file) has no value at '%s' "
					    "(%s): nothing was deployed", where, cfg->service, ref->file ? "files" : "env",
					    ref->target, file, cfg->environment, ref->sops, err.msg);
		}
		age_secret_free(val, 0);
	}
	sops_file_free(sf);
	if (reply)
		return reply;
	/* the ciphertext as it came, so a rollback decrypts the very same file */
	found = store_secret_get(gd->store, cfg->environment, SECRET_SOPS, 0, &newest, &err);
	if (found < 0)
		return reply_error(1, "%s", err.msg);
	if (found) {
		if (newest.ciphertext_len == text_len && !memcmp(newest.ciphertext, text, text_len))
			version = newest.version;
		secret_row_release(&newest);
	}
	if (!version) {
		strlcpy_g(row.environment, cfg->environment, sizeof(row.environment));
		strlcpy_g(row.name, SECRET_SOPS, sizeof(row.name));
		strlcpy_g(row.created_by, "deploy", sizeof(row.created_by));
		row.created_at = clock_now_s();
		row.ciphertext = xmalloc(text_len ? text_len : 1);
		memcpy(row.ciphertext, text, text_len);
		row.ciphertext_len = text_len;
		if (store_secret_add(gd->store, &row, &err) < 0) {
			secret_row_release(&row);
			return reply_error(1, "%s", err.msg);
		}
		version = row.version;
		secret_row_release(&row);
		log_info("secrets", "environment=%s sops file=%s version=%d stored (ciphertext)", cfg->environment, file,
			 version);
		secrets_prune(cfg->environment, SECRET_SOPS);
	}
	for (size_t i = 0; i < cfg->nsecrets; i++)
		if (cfg->secrets[i].sops && !cfg->secrets[i].version)
			cfg->secrets[i].version = version;
	return NULL;
}

/* the plain value at ref->sops of version ref->version of env's SOPS file; *sf caches the
 * decrypted file (*sf_version its version) across calls. 1, 0 gone, -1 err */
static int sops_read(const char *env, const struct secret_ref *ref, struct sops_file **sf, int *sf_version,
		     uint8_t **val, size_t *len, struct gerr *err)
{
	char *s = NULL;
	if (!*sf || *sf_version != ref->version) {
		struct secret_row row;
		int found;
		sops_file_free(*sf);
		*sf = NULL;
		if (load_identity(err) < 0)
			return -1;
		found = store_secret_get(gd->store, env, SECRET_SOPS, ref->version, &row, err);
		if (found <= 0)
			return found;
		found = sops_decrypt((const char *)row.ciphertext, row.ciphertext_len,
				     sops_text_format(row.ciphertext, row.ciphertext_len), ids, sf, err);
		secret_row_release(&row);
		if (found < 0) {
			char msg[sizeof(err->msg)];
			strlcpy_g(msg, err->msg, sizeof(msg));
			return gerr_set(err, "SOPS file version %d of %s: %s", ref->version, env, msg);
		}
		*sf_version = ref->version;
	}
	if (sops_tree_get_string(sops_file_tree(*sf), ref->sops, &s, err) < 0)
		return -1;
	*val = (uint8_t *)s;
	*len = strlen(s);
	return 1;
}

void secrets_pin_like(struct svc_config *cfg, const char *config)
{
	struct svc_config old;
	struct gerr err;
	json_t *j = json_loads(config ? config : "", 0, NULL);
	if (!j || svc_config_from_json(j, &old, &err) < 0) {
		json_decref(j);
		return;
	}
	for (size_t i = 0; i < cfg->nsecrets; i++)
		for (size_t k = 0; k < old.nsecrets && !cfg->secrets[i].version; k++)
			if (!strcmp(old.secrets[k].secret, cfg->secrets[i].secret))
				cfg->secrets[i].version = old.secrets[k].version;
	svc_config_release(&old);
	json_decref(j);
}

/* whether config (JSON) references (name, version); version 0: any */
static bool config_uses(const char *config, const char *name, int version)
{
	struct svc_config c;
	struct gerr err;
	bool used = false;
	json_t *j = json_loads(config ? config : "", 0, NULL);
	if (!j || svc_config_from_json(j, &c, &err) < 0) {
		json_decref(j);
		return false;
	}
	for (size_t i = 0; i < c.nsecrets && !used; i++)
		used = !strcmp(c.secrets[i].secret, name) && (!version || c.secrets[i].version == version);
	svc_config_release(&c);
	json_decref(j);
	return used;
}

bool secrets_in_use(const char *env, const char *name, int version)
{
	struct deployment_row *pend;
	size_t np;
	struct gerr perr;
	bool pinned = false;
	/* a deployment waiting for approval keeps what it pinned at request time */
	if (store_deployment_pending(gd->store, "", env, &pend, &np, &perr) < 0)
		return true; /* cannot tell: keep it */
	for (size_t i = 0; i < np; i++) {
		if (!pinned)
			pinned = config_uses(pend[i].config, name, version);
		deployment_row_release(&pend[i]);
	}
	free(pend);
	if (pinned)
		return true;
	for (struct svcenv *se = gd->svcenvs; se; se = se->next) {
		struct revision_row *revs;
		size_t n;
		struct gerr err;
		bool used = false;
		if (strcmp(se->row.environment, env))
			continue;
		if (store_revision_list(gd->store, se->row.service, env, &revs, &n, &err) < 0)
			return true; /* cannot tell: keep it */
		for (size_t i = 0; i < n; i++) {
			if (!used && !revs[i].artifact_pruned)
				used = config_uses(revs[i].config_json, name, version);
			revision_row_release(&revs[i]);
		}
		free(revs);
		if (used)
			return true;
	}
	return false;
}

void secrets_prune(const char *env, const char *name)
{
	struct secret_row *rows;
	size_t n;
	struct gerr err;
	int newest = 0;
	if (store_secret_list(gd->store, env, &rows, &n, &err) < 0) {
		log_warn("secrets", "prune: %s", err.msg);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (!strcmp(rows[i].name, name) && !rows[i].removed && rows[i].version > newest)
			newest = rows[i].version;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(rows[i].name, name) || rows[i].version == newest || secrets_in_use(env, name, rows[i].version))
			continue;
		if (store_secret_delete(gd->store, env, name, rows[i].version, &err) < 0)
			log_warn("secrets", "prune: %s", err.msg);
		else
			log_info("secrets", "environment=%s secret=%s version=%d pruned (no kept revision uses it)", env, name,
				 rows[i].version);
	}
	free(rows);
}

void secrets_prune_revision(const char *svc, const char *env, int number)
{
	struct revision_row rev;
	struct svc_config c;
	struct gerr err;
	json_t *j;
	if (store_revision_get(gd->store, svc, env, number, &rev, &err) <= 0)
		return;
	j = json_loads(rev.config_json ? rev.config_json : "", 0, NULL);
	if (j && svc_config_from_json(j, &c, &err) == 0) {
		for (size_t i = 0; i < c.nsecrets; i++) {
			bool seen = false;
			for (size_t k = 0; k < i && !seen; k++)
				seen = !strcmp(c.secrets[k].secret, c.secrets[i].secret);
			if (!seen)
				secrets_prune(env, c.secrets[i].secret);
		}
		svc_config_release(&c);
	}
	json_decref(j);
	revision_row_release(&rev);
}

void secrets_kv_free(struct kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(kv[i].key);
		age_secret_free(kv[i].value, 0);
	}
	free(kv);
}

static void run_dir(char *out, size_t len)
{
	snprintf(out, len, "%s/gantry-%s", SECRETS_RUN_DIR, gd->tag);
}

/* SECRETS_RUN_DIR/gantry-TAG: ours, 0711, not a link; 0 or -1 */
static int make_run_dir(char *out, size_t len, struct gerr *err)
{
	struct stat st;
	run_dir(out, len);
	if (mkdir(out, 0711) < 0 && errno != EEXIST)
		return gerr_set(err, "secrets: mkdir %s: %s", out, strerror(errno));
	if (lstat(out, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid())
		return gerr_set(err, "secrets: %s is not a directory of ours", out);
	chmod(out, 0711);
	return 0;
}

static void remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	if (d) {
		while ((de = readdir(d))) {
			char sub[1100];
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			/* one level of directories: .env of a container's */
			if (unlinkat(dirfd(d), de->d_name, 0) < 0 && (errno == EISDIR || errno == EPERM) &&
			    !strcmp(de->d_name, ".env")) {
				snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
				remove_tree(sub);
			}
		}
		closedir(d);
	}
	rmdir(dir);
}

/* writes val into dir/name, 0400, owned by uid:gid */
static int write_file(const char *dir, const char *name, const uint8_t *val, size_t len, uid_t uid, gid_t gid,
		      struct gerr *err)
{
	char path[1024], tmp[1100];
	int fd;
	bool ok;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0400);
	if (fd < 0)
		return gerr_set(err, "secrets: create %s: %s", tmp, strerror(errno));
	ok = write(fd, val, len) == (ssize_t)len;
	if (ok && geteuid() == 0)
		ok = fchown(fd, uid, gid) == 0;
	close(fd);
	/* replaced in one step: a running replica never sees a missing or half file */
	if (!ok || rename(tmp, path) < 0) {
		unlink(tmp);
		return gerr_set(err, "secrets: write %s: %s", path, strerror(errno));
	}
	return 0;
}

static void env_add(struct kv **kv, size_t *n, const char *key, char *value /* consumed */)
{
	*kv = xrealloc(*kv, (*n + 1) * sizeof(**kv));
	(*kv)[*n].key = xstrdup(key);
	(*kv)[*n].value = value;
	(*n)++;
}

int secrets_replica_prepare(struct replica *r, struct gerr *err)
{
	const struct svc_config *c = &r->rc->cfg;
	char dir[512], rdir[768];
	struct kv *kv = NULL;
	size_t n = 0;
	bool files = false;
	struct sops_file *sf = NULL; /* the SOPS file, decrypted once */
	int sf_version = 0;
	uid_t uid = r->user.drop ? r->user.uid : geteuid();
	gid_t gid = r->user.drop ? r->user.gid : getegid();
	/* a container gets env secrets as files of rdir/.env, read by gantry-secret-exec inside it
	 * (dockrt.c): never in its configuration */
	bool docker = replica_is_docker(r);
	char edir[800];

	if (!c->nsecrets)
		return 0;
	if (docker && dockrt_secret_owner(r, &uid, &gid, err) < 0)
		return -1;
	if (r->senv)
		secrets_kv_free(r->senv, r->nsenv);
	r->senv = NULL;
	r->nsenv = 0;
	for (size_t i = 0; i < c->nenv; i++)
		env_add(&kv, &n, c->env[i].key, xstrdup(c->env[i].value));
	for (size_t i = 0; i < c->nsecrets; i++)
		files |= c->secrets[i].file || docker;
	if (files) {
		struct stat st;
		if (make_run_dir(dir, sizeof(dir), err) < 0)
			goto fail;
		snprintf(rdir, sizeof(rdir), "%s/%s", dir, r->row.id);
		/* an adopted replica's is kept (its files are replaced atomically) */
		if (lstat(rdir, &st) == 0 && (!S_ISDIR(st.st_mode) || (st.st_uid != uid && st.st_uid != geteuid())))
			remove_tree(rdir);
		if (mkdir(rdir, 0700) < 0 && errno != EEXIST) {
			gerr_set(err, "secrets: mkdir %s: %s", rdir, strerror(errno));
			goto fail;
		}
		free(r->secrets_dir);
		r->secrets_dir = xstrdup(rdir);
		if (geteuid() == 0 && chown(rdir, uid, gid) < 0) {
			gerr_set(err, "secrets: chown %s: %s", rdir, strerror(errno));
			goto fail;
		}
		snprintf(edir, sizeof(edir), "%s/.env", rdir);
		if (docker && ((mkdir(edir, 0700) < 0 && errno != EEXIST) ||
			       (geteuid() == 0 && chown(edir, uid, gid) < 0))) {
			gerr_set(err, "secrets: %s: %s", edir, strerror(errno));
			goto fail;
		}
	}
	for (size_t i = 0; i < c->nsecrets; i++) {
		const struct secret_ref *ref = &c->secrets[i];
		uint8_t *val;
		size_t len;
		int found = ref->sops ? sops_read(c->environment, ref, &sf, &sf_version, &val, &len, err)
				      : secrets_read(c->environment, ref->secret, ref->version, &val, &len, err);
		if (found == 0)
			gerr_set(err, "%s %s version %d of environment %s is gone", ref->sops ? "SOPS file of" : "secret",
				 ref->secret, ref->version, c->environment);
		if (found <= 0)
			goto fail;
		if (ref->file || docker) {
			int rc = write_file(ref->file ? rdir : edir, ref->target, val, len, uid, gid, err);
			age_secret_free(val, len);
			if (rc < 0)
				goto fail;
		} else if (memchr(val, 0, len)) {
			age_secret_free(val, len);
			gerr_set(err, "secret %s version %d holds a NUL byte: it cannot be an environment variable "
				 "(give it as a file: files:)", ref->secret, ref->version);
			goto fail;
		} else {
			env_add(&kv, &n, ref->target, (char *)val); /* NUL-terminated by age_decrypt */
		}
	}
	sops_file_free(sf);
	r->senv = kv;
	r->nsenv = n;
	return 0;
fail:
	sops_file_free(sf);
	secrets_kv_free(kv, n);
	secrets_replica_release(r);
	return -1;
}

void secrets_replica_release(struct replica *r)
{
	if (r->senv)
		secrets_kv_free(r->senv, r->nsenv);
	r->senv = NULL;
	r->nsenv = 0;
	if (r->secrets_dir) {
		char dir[512];
		remove_tree(r->secrets_dir);
		free(r->secrets_dir);
		r->secrets_dir = NULL;
		/* the last one out removes SECRETS_RUN_DIR/gantry-TAG (rmdir fails while others are in it) */
		run_dir(dir, sizeof(dir));
		rmdir(dir);
	} else if (r->rc) {
		/* adopted after a restart of ours: its directory is where we made it */
		for (size_t i = 0; i < r->rc->cfg.nsecrets; i++) {
			if (r->rc->cfg.secrets[i].file || replica_is_docker(r)) {
				char dir[512], rdir[768];
				run_dir(dir, sizeof(dir));
				snprintf(rdir, sizeof(rdir), "%s/%s", dir, r->row.id);
				remove_tree(rdir);
				break;
			}
		}
	}
}

json_t *secrets_restart_users(const char *env, const char *name, const char *by)
{
	json_t *out = json_array();
	for (struct svcenv *se = gd->svcenvs; se; se = se->next) {
		struct revision_row rev;
		struct svc_config c;
		struct gerr err;
		json_t *j, *reply, *pin;
		char *config, why[160];
		bool uses = false;
		if (strcmp(se->row.environment, env) || se->row.target_revision <= 0)
			continue;
		if (store_revision_get(gd->store, se->row.service, env, se->row.target_revision, &rev, &err) <= 0)
			continue;
		j = json_loads(rev.config_json ? rev.config_json : "", 0, NULL);
		if (!j || svc_config_from_json(j, &c, &err) < 0) {
			json_decref(j);
			revision_row_release(&rev);
			continue;
		}
		json_decref(j);
		for (size_t i = 0; i < c.nsecrets; i++)
			if (!strcmp(c.secrets[i].secret, name)) {
				c.secrets[i].version = 0; /* the newest */
				uses = true;
			}
		if (!uses) {
			svc_config_release(&c);
			revision_row_release(&rev);
			continue;
		}
		if ((pin = secrets_pin(&c, NULL))) {
			json_array_append_new(out, json_pack("{s:s, s:O}", "service", se->row.service, "error",
							     json_object_get(pin, "error")));
			json_decref(pin);
			svc_config_release(&c);
			revision_row_release(&rev);
			continue;
		}
		j = svc_config_to_json(&c);
		config = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(j);
		snprintf(why, sizeof(why), "secret %s rotated", name);
		reply = daemon_copy_revision_with(se, rev.number, "restart", by, why, config);
		if (json_is_true(json_object_get(reply, "ok")))
			json_array_append_new(out, json_pack("{s:s, s:O}", "service", se->row.service, "revision",
							     json_object_get(reply, "revision")));
		else
			json_array_append_new(out, json_pack("{s:s, s:O}", "service", se->row.service, "error",
							     json_object_get(reply, "error")));
		json_decref(reply);
		free(config);
		svc_config_release(&c);
		revision_row_release(&rev);
	}
	return out;
}
