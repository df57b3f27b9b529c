/*
 * nodeproxy.c — a gantry proxy on every node of a Swarm (nodeproxy.h).
 *
 * Per environment whose cluster says proxy: {port, admin_port, registry},
 * three phases, each a blocking job in libuv's thread pool (never on the
 * loop), retried 2 s, doubling to 30 s, after a failure (logged once per
 * new error):
 *
 *  1. the image: the files this process runs from (the executable, every
 *     shared object the loader mapped, the loader itself: dl_iterate_phdr
 *     names them as the loader found them, /proc/self/maps says what else
 *     is mapped from an ELF file), copied at their paths into a build
 *     context HOME/nodeproxy/ctx-DIGEST, FROM scratch, ENTRYPOINT
 *     [EXE, "proxy"], a directory for the routes file owned by the user it
 *     runs as; tagged REGISTRY/gantry-proxy:VERSION-DIGEST (DIGEST: sha256
 *     of the files' paths and contents, 12 hex), built and pushed through
 *     the manager's Engine, pinned by the registry's digest. An Engine
 *     that already holds the tag with a digest of that registry is not
 *     asked again (a restarted controller).
 *  2. the service gantry-proxy-ENV: global, restart any, the overlay
 *     cluster.network, host-mode ports port and admin_port, user 65534,
 *     the admin token (HOME/nodeproxy/ENV.token, made once) a Swarm secret
 *     gantry-proxy-ENV-TOKENDIGEST mounted at /run/secrets/gantry-proxy-token,
 *     `proxy --await-routes`. A service of that name is adopted (the name
 *     is the idempotence, as for revisions); one that runs another image
 *     (made by another build of gantry) is updated to this one's, a node
 *     at a time (swarm_service_set_image).
 *  3. discovery every second: the service's tasks that should run, on
 *     nodes that are ready: NODE_ADDR:admin_port each, handed to
 *     proxypeers_set_group (which pushes a new one the table at once).
 */
#include "common.h"
#include "daemon/daemon.h"
#include "daemon/nodeproxy.h"
#include "daemon/swarmlease.h"
#include "daemon/proxypeers.h"
#include "daemon/swarmrt.h"
#include "runtime/docker.h"
#include "runtime/swarm.h"
#include "util/clock.h"
#include "util/log.h"
#include <dirent.h>
#include <elf.h>
#include <ftw.h>
#include <jansson.h>
#include <link.h>
#include <sodium.h>
#include <sys/random.h>
#include <sys/stat.h>

#define NP_DISCOVER_MS 1000
#define NP_RETRY_MIN_MS 2000
#define NP_RETRY_MAX_MS 30000
#define NP_USER "65534"
#define NP_STATE_DIR "/var/lib/gantry-proxy"
#define NP_SECRET_FILE "gantry-proxy-token"
/* a node proxy stopped (Swarm replacing it, a node drained): 2 s of /healthz
 * 503 while it still serves, so that a load balancer takes the node out,
 * then at most 5 s for the requests in flight, within Swarm's 10 s */
#define NP_GRACE "2s"
#define NP_DRAIN "5s"
#define NP_STOP_GRACE_MS 10000

enum np_phase { NP_IMAGE, NP_SERVICE, NP_UP };

struct np {
	struct np *next;
	char env[64];
	struct cluster_config cfg;   /* a copy (jobs read it) */
	char name[128];              /* gantry-proxy-ENV */
	char token[65];
	char secret[160];
	enum np_phase phase;
	bool busy;
	int64_t next_at, backoff_ms;
	char error[256];
	char image[600];             /* pinned: REPO@sha256:… */
	char service_id[64];
	int64_t started_ms;          /* figures: when the phase began */
	size_t npeers;
	bool seen;                   /* a replica of the environment still wants it */
};

static struct np *nps;
static int inflight;

/* ---- the image's files (job thread) ---- */

struct files {
	char **path;                 /* where the loader found each (in the image: the same) */
	char **real;                 /* what to copy */
	size_t n;
	char exe[PATH_MAX];
};

static void files_add(struct files *f, const char *path, const char *real)
{
	for (size_t i = 0; i < f->n; i++)
		if (!strcmp(f->path[i], path))
			return;
	f->path = xrealloc(f->path, (f->n + 1) * sizeof(*f->path));
	f->real = xrealloc(f->real, (f->n + 1) * sizeof(*f->real));
	f->path[f->n] = xstrdup(path);
	f->real[f->n++] = xstrdup(real);
}

static void files_release(struct files *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->path[i]);
		free(f->real[i]);
	}
	free(f->path);
	free(f->real);
	memset(f, 0, sizeof(*f));
}

static int phdr_cb(struct dl_phdr_info *info, size_t size, void *data)
{
	struct files *f = data;
	char real[PATH_MAX];
	(void)size;
	if (!info->dlpi_name || !info->dlpi_name[0]) {
		/* the executable: its PT_INTERP is the loader's path */
		for (int i = 0; i < info->dlpi_phnum; i++)
			if (info->dlpi_phdr[i].p_type == PT_INTERP) {
				const char *interp = (const char *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
				if (realpath(interp, real))
					files_add(f, interp, real);
			}
		return 0;
	}
	if (info->dlpi_name[0] == '/' && realpath(info->dlpi_name, real))
		files_add(f, info->dlpi_name, real);
	return 0; /* linux-vdso.so.1: the kernel's */
}

static bool is_elf(const char *path)
{
	unsigned char m[4] = { 0 };
	FILE *fp = fopen(path, "re");
	bool ok = fp && fread(m, 1, 4, fp) == 4 && !memcmp(m, ELFMAG, SELFMAG);
	if (fp)
		fclose(fp);
	return ok;
}

static int files_collect(struct files *f, struct gerr *err)
{
	char line[PATH_MAX + 128];
	FILE *maps;
	ssize_t k = readlink("/proc/self/exe", f->exe, sizeof(f->exe) - 1);

	if (k <= 0)
		return gerr_set(err, "/proc/self/exe: %s", strerror(errno));
	f->exe[k] = 0;
	files_add(f, f->exe, f->exe);
	dl_iterate_phdr(phdr_cb, f);
	/* anything else mapped from an ELF file (dlopen'ed by a library) */
	if ((maps = fopen("/proc/self/maps", "re"))) {
		while (fgets(line, sizeof(line), maps)) {
			char *p = strchr(line, '/');
			bool have = false;
			if (!p)
				continue;
			p[strcspn(p, "\n")] = 0;
			if (strstr(p, " (deleted)"))
				continue;
			for (size_t i = 0; i < f->n && !have; i++)
				have = !strcmp(f->real[i], p) || !strcmp(f->path[i], p);
			if (!have && is_elf(p))
				files_add(f, p, p);
		}
		fclose(maps);
	}
	return 0;
}

static int hash_file(crypto_hash_sha256_state *h, const char *path, struct gerr *err)
{
	unsigned char buf[65536];
	size_t n;
	FILE *fp = fopen(path, "re");
	if (!fp)
		return gerr_set(err, "%s: %s", path, strerror(errno));
	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
		crypto_hash_sha256_update(h, buf, n);
	fclose(fp);
	return 0;
}

/* the directories it makes get mode whatever the umask (serve's is 077:
 * the image's directories must be searchable by the proxy's user) */
static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	strlcpy_g(tmp, path, sizeof(tmp));
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			if (mkdir(tmp, mode) == 0)
				chmod(tmp, mode);
			else if (errno != EEXIST)
				return -1;
			*p = '/';
		}
	if (mkdir(tmp, mode) == 0)
		return chmod(tmp, mode);
	return errno == EEXIST ? 0 : -1;
}

static int copy_file(const char *from, const char *to, struct gerr *err)
{
	char buf[65536];
	size_t n;
	FILE *in = fopen(from, "re"), *out = NULL;
	int ret = -1;
	if (!in) {
		gerr_set(err, "%s: %s", from, strerror(errno));
		goto out;
	}
	if (!(out = fopen(to, "we"))) {
		gerr_set(err, "%s: %s", to, strerror(errno));
		goto out;
	}
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n) {
			gerr_set(err, "%s: %s", to, strerror(errno));
			goto out;
		}
	ret = 0;
out:
	if (in)
		fclose(in);
	if (out && fclose(out) != 0 && ret == 0)
		ret = gerr_set(err, "%s: %s", to, strerror(errno));
	if (ret == 0)
		chmod(to, 0755);
	return ret;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* ---- jobs ---- */

enum job_kind { JOB_IMAGE, JOB_SERVICE, JOB_DISCOVER };

struct job {
	uv_work_t req;
	struct np *np;
	enum job_kind kind;
	struct cluster_config cfg;
	char env[64], name[128], token[65], secret[160], home[PATH_MAX], image[600], service_id[64];
	bool adopted, gone;
	char **addrs;
	size_t naddrs;
	int rc;
	struct gerr err;
};

static int job_image(struct job *j, struct docker *m)
{
	struct files f = { 0 };
	crypto_hash_sha256_state h;
	unsigned char dg[crypto_hash_sha256_BYTES];
	char hex[crypto_hash_sha256_BYTES * 2 + 1], tag[300], ctx[PATH_MAX + 32], p[PATH_MAX * 2 + 128];
	struct docker_image img;
	FILE *df;
	int ret = -1, k;

	ctx[0] = 0;
	if (files_collect(&f, &j->err) < 0)
		goto out;
	crypto_hash_sha256_init(&h);
	for (size_t i = 0; i < f.n; i++) {
		crypto_hash_sha256_update(&h, (const unsigned char *)f.path[i], strlen(f.path[i]) + 1);
		if (hash_file(&h, f.real[i], &j->err) < 0)
			goto out;
	}
	crypto_hash_sha256_final(&h, dg);
	sodium_bin2hex(hex, sizeof(hex), dg, sizeof(dg));
	hex[12] = 0;
	snprintf(tag, sizeof(tag), "%s/gantry-proxy:%s-%s", j->cfg.proxy_registry, GANTRY_VERSION, hex);
	/* made before (a restarted controller): the Engine has it, pushed to that registry */
	k = docker_image_inspect(m, tag, &img, &j->err);
	if (k > 0 && !strncmp(img.repo_digest, j->cfg.proxy_registry, strlen(j->cfg.proxy_registry)) &&
	    img.repo_digest[strlen(j->cfg.proxy_registry)] == '/') {
		strlcpy_g(j->image, img.repo_digest, sizeof(j->image));
		log_info("nodeproxy", "image %s is there already (%s)", tag, img.repo_digest);
		ret = 0;
		goto out;
	}
	snprintf(ctx, sizeof(ctx), "%s/nodeproxy/ctx-%.12s", j->home, hex);
	nftw(ctx, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	snprintf(p, sizeof(p), "%s/state", ctx);
	if (mkdir_p(p, 0755) < 0) {
		gerr_set(&j->err, "%s: %s", p, strerror(errno));
		goto out;
	}
	snprintf(p, sizeof(p), "%s/state/.keep", ctx);
	if ((df = fopen(p, "we")))
		fclose(df);
	for (size_t i = 0; i < f.n; i++) {
		char dir[PATH_MAX * 2];
		snprintf(p, sizeof(p), "%s/rootfs%s", ctx, f.path[i]);
		strlcpy_g(dir, p, sizeof(dir));
		*strrchr(dir, '/') = 0;
		if (mkdir_p(dir, 0755) < 0) {
			gerr_set(&j->err, "%s: %s", dir, strerror(errno));
			goto out;
		}
		if (copy_file(f.real[i], p, &j->err) < 0)
			goto out;
	}
	snprintf(p, sizeof(p), "%s/Dockerfile", ctx);
	if (!(df = fopen(p, "we"))) {
		gerr_set(&j->err, "%s: %s", p, strerror(errno));
		goto out;
	}
	fprintf(df,
		"# gantry's node proxy: the files of the running controller (%zu), nothing else\n"
		"FROM scratch\n"
		"COPY rootfs/ /\n"
		"COPY --chown=" NP_USER ":" NP_USER " state/ " NP_STATE_DIR "/\n"
		"USER " NP_USER "\n"
		"ENTRYPOINT [\"%s\", \"proxy\"]\n",
		f.n, f.exe);
	if (fclose(df) != 0) {
		gerr_set(&j->err, "%s: %s", p, strerror(errno));
		goto out;
	}
	if (docker_image_build(m, ctx, NULL, NULL, 0, tag, NULL, NULL, &img, &j->err) < 0 ||
	    docker_image_push(m, tag, NULL, NULL, &j->err) < 0)
		goto out;
	k = docker_image_inspect(m, tag, &img, &j->err);
	if (k <= 0 || !img.repo_digest[0]) {
		if (k >= 0)
			gerr_set(&j->err, "image %s: no registry digest after its push", tag);
		goto out;
	}
	strlcpy_g(j->image, img.repo_digest, sizeof(j->image));
	log_info("nodeproxy", "image %s built from %zu files and pushed (%s)", tag, f.n, img.repo_digest);
	ret = 0;
out:
	if (ctx[0] && ret == 0)
		nftw(ctx, rm_cb, 16, FTW_DEPTH | FTW_PHYS); /* the image has it */
	files_release(&f);
	return ret;
}

static int job_service(struct job *j, struct docker *m)
{
	struct swarm_service found;
	char sid[64], listen[40], admin[40];
	int ports[2] = { j->cfg.proxy_port, j->cfg.proxy_admin_port };
	int k;
	static char k0[] = "gantry.tag", k1[] = "gantry.proxy", k2[] = "gantry.proxy-image", k3[] = "gantry.proxy-secret";
	struct kv labels[4] = { { k0, gd->tag }, { k1, j->env }, { k2, j->image }, { k3, j->secret } };
	char *args[] = { (char *)"--listen", listen, (char *)"--admin", admin, (char *)"--admin-token-file",
			 (char *)"/run/secrets/" NP_SECRET_FILE, (char *)"--routes",
			 (char *)NP_STATE_DIR "/routes.json", (char *)"--await-routes", (char *)"--grace",
			 (char *)NP_GRACE, (char *)"--drain-timeout", (char *)NP_DRAIN, NULL };
	char *nets[2] = { j->cfg.network, NULL };
	struct swarm_service_spec s = {
		.name = j->name, .image = j->image, .labels = labels, .nlabels = 4, .user = NP_USER, .args = args,
		.networks = nets, .dnsrr = true, .global = true, .restart_any = true, .host_ports = ports,
		.nhost_ports = 2, .secret_name = j->secret, .secret_file = NP_SECRET_FILE, .secret_uid = NP_USER,
		.stop_grace_ms = NP_STOP_GRACE_MS,
	};

	snprintf(listen, sizeof(listen), "0.0.0.0:%d", j->cfg.proxy_port);
	snprintf(admin, sizeof(admin), "0.0.0.0:%d", j->cfg.proxy_admin_port);
	/* one per environment, whoever made it: the name says it is there */
	if ((k = swarm_service_inspect(m, j->name, &found, &j->err)) < 0)
		return -1;
	if (k > 0) {
		const char *img = NULL, *sec = NULL;
		for (size_t i = 0; i < found.nlabels; i++)
			if (!strcmp(found.labels[i].key, "gantry.proxy-image"))
				img = found.labels[i].value;
			else if (!strcmp(found.labels[i].key, "gantry.proxy-secret"))
				sec = found.labels[i].value;
		strlcpy_g(j->service_id, found.id, sizeof(j->service_id));
		/* another build of gantry made it: its proxies get this one's
		 * code, one node at a time (each refuses connections from its
		 * stop until the controller has pushed the new one a table) */
		if (img && strcmp(img, j->image)) {
			if (swarm_service_set_image(m, found.id, j->image, "gantry.proxy-image", args, NP_STOP_GRACE_MS,
						    &j->err) < 0) {
				swarm_service_release(&found);
				return -1;
			}
			log_info("nodeproxy", "service %s: its image %s replaced by this controller's %s, one node at a time",
				 j->name, img, j->image);
		}
		/* HOME/nodeproxy/ENV.token lost or replaced: our pushes would get 401 */
		if (sec && strcmp(sec, j->secret))
			log_error("nodeproxy", "service %s mounts the secret %s, not %s (this controller's token): its "
				  "proxies will refuse our pushes; remove the service (docker service rm %s) to have it "
				  "made again", j->name, sec, j->secret, j->name);
		swarm_service_release(&found);
		j->adopted = true;
		return 0;
	}
	if (swarm_secret_ensure(m, j->secret, j->token, "gantry.proxy", sid, sizeof(sid), &j->err) < 0)
		return -1;
	s.secret_id = sid;
	if (swarm_service_create(m, &s, j->service_id, sizeof(j->service_id), &j->err) == 0)
		return 0;
	if ((strstr(j->err.msg, "AlreadyExists") || strstr(j->err.msg, "already exists")) &&
	    swarm_service_inspect(m, j->name, &found, &j->err) == 1) {
		strlcpy_g(j->service_id, found.id, sizeof(j->service_id));
		swarm_service_release(&found);
		j->adopted = true;
		return 0;
	}
	return -1;
}

static int job_discover(struct job *j, struct docker *m)
{
	struct swarm_node *nodes = NULL;
	struct swarm_task *t = NULL;
	size_t nn = 0, nt = 0;
	int ret = -1;

	struct swarm_service sv;
	int found = swarm_service_inspect(m, j->service_id, &sv, &j->err);

	if (found < 0)
		goto out;
	if (found == 0) { /* removed outside gantry: made again */
		j->gone = true;
		ret = 0;
		goto out;
	}
	swarm_service_release(&sv);
	if (swarm_node_list(m, &nodes, &nn, &j->err) < 0 ||
	    swarm_task_list(m, j->service_id, NULL, &t, &nt, &j->err) < 0)
		goto out;
	j->addrs = xcalloc(nn + 1, sizeof(*j->addrs));
	for (size_t i = 0; i < nn; i++) {
		bool runs = false;
		if (strcmp(nodes[i].state, "ready") || !nodes[i].addr[0])
			continue;
		/* a task that should run there: its proxy is one of the fleet's
		 * (while Swarm restarts it, it is a peer that does not report) */
		for (size_t k = 0; k < nt && !runs; k++)
			runs = !strcmp(t[k].node_id, nodes[i].id) && !strcmp(t[k].desired_state, "running");
		if (runs)
			j->addrs[j->naddrs++] = xasprintf("%s:%d", nodes[i].addr, j->cfg.proxy_admin_port);
	}
	ret = 0;
out:
	swarm_nodes_free(nodes, nn);
	free(t);
	return ret;
}

static void job_work(uv_work_t *req)
{
	struct job *j = req->data;
	struct docker *m = docker_open(j->cfg.manager, &j->err);
	j->rc = -1;
	if (!m)
		return;
	switch (j->kind) {
	case JOB_IMAGE:
		j->rc = job_image(j, m);
		break;
	case JOB_SERVICE:
		j->rc = job_service(j, m);
		break;
	case JOB_DISCOVER:
		j->rc = job_discover(j, m);
		break;
	}
	docker_close(m);
}

static void job_done(uv_work_t *req, int status)
{
	struct job *j = req->data;
	struct np *np = j->np;
	int64_t now = clock_mono_ms();
	(void)status;
	inflight--;
	np->busy = false;
	if (j->rc < 0) {
		np->backoff_ms = np->backoff_ms ? MIN(np->backoff_ms * 2, NP_RETRY_MAX_MS) : NP_RETRY_MIN_MS;
		np->next_at = now + np->backoff_ms;
		if (strcmp(np->error, j->err.msg))
			log_warn("nodeproxy", "environment=%s %s: %s (again in %llds)", np->env,
				 j->kind == JOB_IMAGE ? "the proxy image" : j->kind == JOB_SERVICE ? np->name : "discovery",
				 j->err.msg, (long long)(np->backoff_ms / 1000));
		strlcpy_g(np->error, j->err.msg, sizeof(np->error));
		goto out;
	}
	np->error[0] = 0;
	np->backoff_ms = 0;
	switch (j->kind) {
	case JOB_IMAGE:
		strlcpy_g(np->image, j->image, sizeof(np->image));
		log_info("nodeproxy", "environment=%s image=%s ready in %lldms", np->env, np->image,
			 (long long)(now - np->started_ms));
		np->phase = NP_SERVICE;
		np->started_ms = now;
		np->next_at = 0;
		break;
	case JOB_SERVICE:
		strlcpy_g(np->service_id, j->service_id, sizeof(np->service_id));
		log_info("nodeproxy", "environment=%s service %s %s (%.12s) in %lldms", np->env, np->name,
			 j->adopted ? "adopted" : "created", np->service_id, (long long)(now - np->started_ms));
		{
			struct svcenv *se;
			for (se = gd->svcenvs; se; se = se->next)
				if (!strcmp(se->row.environment, np->env))
					break;
			if (se && !j->adopted)
				daemon_event(se, se->row.target_revision, "node_proxies_created",
					     "global service %s: a gantry proxy on every node, port %d (admin %d)",
					     np->name, np->cfg.proxy_port, np->cfg.proxy_admin_port);
		}
		np->phase = NP_UP;
		np->next_at = 0;
		break;
	case JOB_DISCOVER:
		if (j->gone) {
			log_warn("nodeproxy", "environment=%s service %s is gone (removed outside gantry): making it again",
				 np->env, np->name);
			np->service_id[0] = 0;
			np->phase = NP_SERVICE;
			np->started_ms = now;
			np->next_at = 0;
			break;
		}
		if (j->naddrs != np->npeers)
			log_info("nodeproxy", "environment=%s %zu node proxies", np->env, j->naddrs);
		np->npeers = j->naddrs;
		proxypeers_set_group(np->name, (const char *const *)j->addrs, j->naddrs, np->token, nodeproxy_table);
		np->next_at = now + NP_DISCOVER_MS;
		break;
	}
out:
	for (size_t i = 0; i < j->naddrs; i++)
		free(j->addrs[i]);
	free(j->addrs);
	cluster_config_release(&j->cfg);
	sodium_memzero(j->token, sizeof(j->token));
	free(j);
}

static void job_queue(struct np *np, enum job_kind kind)
{
	struct job *j = xcalloc(1, sizeof(*j));
	j->np = np;
	j->kind = kind;
	j->req.data = j;
	cluster_config_copy(&j->cfg, &np->cfg);
	strlcpy_g(j->env, np->env, sizeof(j->env));
	strlcpy_g(j->name, np->name, sizeof(j->name));
	strlcpy_g(j->token, np->token, sizeof(j->token));
	strlcpy_g(j->secret, np->secret, sizeof(j->secret));
	strlcpy_g(j->home, gd->home, sizeof(j->home));
	strlcpy_g(j->image, np->image, sizeof(j->image));
	strlcpy_g(j->service_id, np->service_id, sizeof(j->service_id));
	np->busy = true;
	inflight++;
	if (uv_queue_work(gd->loop, &j->req, job_work, job_done) < 0) {
		inflight--;
		np->busy = false;
		cluster_config_release(&j->cfg);
		free(j);
	}
}

/* HOME/nodeproxy/ENV.token: made once (64 hex), read back after a restart */
static int token_load(struct np *np, struct gerr *err)
{
	char dir[PATH_MAX], path[PATH_MAX + 80];
	unsigned char raw[32], dg[crypto_hash_sha256_BYTES];
	char hex[17];
	FILE *fp;
	size_t n = 0;

	snprintf(dir, sizeof(dir), "%s/nodeproxy", gd->home);
	snprintf(path, sizeof(path), "%s/%s.token", dir, np->env);
	if ((fp = fopen(path, "re"))) {
		n = fread(np->token, 1, 64, fp);
		fclose(fp);
		np->token[n] = 0;
	}
	if (n != 64) {
		if (mkdir_p(dir, 0700) < 0)
			return gerr_set(err, "%s: %s", dir, strerror(errno));
		if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
			return gerr_set(err, "getrandom: %s", strerror(errno));
		sodium_bin2hex(np->token, sizeof(np->token), raw, sizeof(raw));
		sodium_memzero(raw, sizeof(raw));
		if (!(fp = fopen(path, "wxe")) || fputs(np->token, fp) < 0 || fclose(fp) != 0)
			return gerr_set(err, "%s: %s", path, strerror(errno));
		chmod(path, 0600);
	}
	/* a new token is a new secret (secrets are immutable) */
	crypto_hash_sha256(dg, (const unsigned char *)np->token, 64);
	sodium_bin2hex(hex, sizeof(hex), dg, 8);
	snprintf(np->secret, sizeof(np->secret), "%s-%s", np->name, hex);
	return 0;
}

static struct np *np_of(const char *env, const struct cluster_config *cfg)
{
	struct np *np;
	struct gerr err;
	for (np = nps; np; np = np->next)
		if (!strcmp(np->env, env))
			return np;
	np = xcalloc(1, sizeof(*np));
	strlcpy_g(np->env, env, sizeof(np->env));
	cluster_config_copy(&np->cfg, cfg);
	snprintf(np->name, sizeof(np->name), "gantry-proxy-%s", env);
	np->started_ms = clock_mono_ms();
	if (token_load(np, &err) < 0) {
		log_error("nodeproxy", "environment=%s: %s", env, err.msg);
		np->next_at = INT64_MAX; /* never: no token, no proxies */
	}
	np->next = nps;
	nps = np;
	log_info("nodeproxy", "environment=%s: a proxy on every node (port %d, admin %d, registry %s)", env,
		 cfg->proxy_port, cfg->proxy_admin_port, cfg->proxy_registry);
	return np;
}

void nodeproxy_tick(int64_t now)
{
	/* an environment gets its node proxies when its first cluster replica runs */
	for (struct svcenv *se = gd->svcenvs; se; se = se->next)
		for (struct replica *r = se->replicas; r; r = r->next)
			if (!r->freeing && replica_is_swarm(r) && r->rc->cfg.cluster.proxy_port && r->rc->cfg.cluster.network) {
				np_of(se->row.environment, &r->rc->cfg.cluster);
				break;
			}
	if (gd->shutting_down)
		return;
	for (struct np *np = nps; np; np = np->next) {
		if (np->busy || now < np->next_at)
			continue;
		/* a standby (another controller holds the environment's lease,
		 * swarmlease.h) neither builds, nor creates, nor feeds peers */
		if (!swarmlease_held(np->cfg.manager, np->env))
			continue;
		if (np->phase == NP_IMAGE && !np->image[0])
			job_queue(np, JOB_IMAGE);
		else if (np->phase == NP_SERVICE)
			job_queue(np, JOB_SERVICE);
		else if (np->phase == NP_UP)
			job_queue(np, JOB_DISCOVER);
	}
}

bool nodeproxy_busy(void)
{
	return inflight > 0;
}

char *nodeproxy_table(const char *text)
{
	json_t *doc = json_loads(text, 0, NULL), *routes = json_object_get(doc, "routes"), *route, *rev;
	size_t i, k;
	char *out;

	if (!json_is_array(routes)) {
		json_decref(doc);
		return xstrdup(text);
	}
	json_array_foreach(routes, i, route) {
		json_array_foreach(json_object_get(route, "revisions"), k, rev) {
			json_t *be = json_object_get(rev, "backends");
			for (size_t b = 0; json_is_array(be) && b < json_array_size(be);) {
				json_t *x = json_array_get(be, b);
				const char *a = json_string_value(json_object_get(x, "address"));
				char ov[96];
				if (a && swarmrt_overlay_addr(a, ov, sizeof(ov)) == 0) {
					json_object_set_new(x, "address", json_string(ov));
					b++;
				} else {
					json_array_remove(be, b); /* not a task: out of a node proxy's reach */
				}
			}
		}
	}
	out = json_dumps(doc, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(doc);
	return out ? out : xstrdup(text);
}

void nodeproxy_free(void)
{
	while (nps) {
		struct np *n = nps->next;
		cluster_config_release(&nps->cfg);
		sodium_memzero(nps->token, sizeof(nps->token));
		free(nps);
		nps = n;
	}
}
