/*
 * audit_anchor.c — the audit log's key, its exported head and the export
 * file; verifying the chain against them. See audit_anchor.h.
 *
 * Why these live outside the database: whoever can write state.db (a
 * restored or copied file, a tool with SQL access, a later remote store)
 * can rewrite rows and the head row in it. Without the key they cannot
 * seal a v2 entry; a head kept apart shows entries removed from the end;
 * an export on another disk keeps both even against someone who can also
 * write HOME.
 */
#include "common.h"
#include "daemon/audit_anchor.h"
#include "util/clock.h"
#include "store/store_records.h"
#include "util/log.h"
#include <ctype.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <sys/stat.h>

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r;
	if (fd < 0)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t k = write(fd, p, len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		len -= (size_t)k;
	}
	return 0;
}

static int key_create(const char *home, const char *path, unsigned char key[AUDIT_KEY_BYTES], struct gerr *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return gerr_set(err, "%s: cannot create the audit key: %s", path, strerror(errno));
	randombytes_buf(key, AUDIT_KEY_BYTES);
	if (fchmod(fd, 0600) < 0 || write_all(fd, key, AUDIT_KEY_BYTES) < 0 || fsync(fd) < 0) {
		gerr_set(err, "%s: cannot write the audit key: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	fsync_dir(home);
	log_info("audit", "created the audit MAC key %s", path);
	return 0;
}

static int key_read(const char *path, unsigned char key[AUDIT_KEY_BYTES], struct gerr *err)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	ssize_t k;
	int ret = -1;
	if (fd < 0)
		return gerr_set(err, "%s: cannot read the audit key: %s%s", path, strerror(errno),
				errno == ELOOP ? " (a symbolic link: the key must be a plain file)" : "");
	if (fstat(fd, &st) < 0) {
		gerr_set(err, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		gerr_set(err, "%s: the audit key is not a regular file", path);
		goto out;
	}
	if (st.st_uid != geteuid()) {
		gerr_set(err, "%s: the audit key is owned by uid %u, not by the controller's user (uid %u): "
			 "chown it, or remove it only if no entry was sealed with it", path, (unsigned)st.st_uid,
			 (unsigned)geteuid());
		goto out;
	}
	if (st.st_mode & 077) {
		gerr_set(err, "%s: mode %04o lets group or others read or change the audit key: chmod 600 %s "
			 "(and consider it leaked if others could read it)", path, (unsigned)(st.st_mode & 07777), path);
		goto out;
	}
	k = read(fd, key, AUDIT_KEY_BYTES);
	if (k != AUDIT_KEY_BYTES || st.st_size != AUDIT_KEY_BYTES) {
		gerr_set(err, "%s: the audit key must be exactly %d bytes (it has %lld)", path, AUDIT_KEY_BYTES,
			 (long long)st.st_size);
		goto out;
	}
	ret = 0;
out:
	close(fd);
	return ret;
}

static int export_line(const char *path, const struct audit_entry *e, struct gerr *err)
{
	json_t *j = audit_entry_json(e);
	char *line = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	int fd = -1, ret = -1;
	json_decref(j);
	if (!line)
		return gerr_set(err, "audit export: cannot encode entry %lld", (long long)e->seq);
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || write_all(fd, line, strlen(line)) < 0 || write_all(fd, "\n", 1) < 0 || fsync(fd) < 0) {
		gerr_set(err, "--audit-export %s: %s", path, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	free(line);
	return ret;
}

int audit_anchor_start(struct store *s, const char *home, const char *export_path,
		       unsigned char key[AUDIT_KEY_BYTES], struct gerr *err)
{
	char *path = xasprintf("%s/audit.key", home), *hpath = xasprintf("%s/audit.head", home);
	int64_t mac_from = 0, head = 0;
	char hh[AUDIT_HASH_HEX];
	int ret = -1;
	struct stat st;

	if (sodium_init() < 0) {
		gerr_set(err, "libsodium cannot start");
		goto out;
	}
	if (store_audit_mac_from(s, &mac_from, err) < 0 || store_audit_head(s, &head, hh, err) < 0)
		goto out;
	if (lstat(path, &st) < 0 && errno == ENOENT) {
		if (mac_from > 0 && head >= mac_from) {
			gerr_set(err, "%s is missing, but audit entries %lld..%lld are sealed with it: restore it from "
				 "a backup (a new key would make `gantry audit verify` fail on each of them)", path,
				 (long long)mac_from, (long long)head);
			goto out;
		}
		if (key_create(home, path, key, err) < 0)
			goto out;
	} else if (key_read(path, key, err) < 0) {
		goto out;
	}
	if (!mac_from) {
		if (lstat(hpath, &st) == 0) {
			/* a build that seals entries ran here: the switch point was deleted */
			log_error("audit", "meta audit_mac_from is missing while %s exists: `gantry audit verify` "
				  "reports it", hpath);
		} else if (store_audit_mac_start(s, &mac_from, err) < 0) {
			goto out;
		} else {
			log_info("audit", "entries from seq=%lld on are sealed with the key (%s)", (long long)mac_from, path);
		}
	}
	/* an empty export starts with the newest entry, so that verify has its end from now on */
	if (export_path && (stat(export_path, &st) < 0 || st.st_size == 0) && head > 0) {
		struct audit_entry e;
		int r = store_audit_get(s, head, &e, err);
		if (r < 0)
			goto out;
		if (r && export_line(export_path, &e, err) < 0) {
			audit_entry_release(&e);
			goto out;
		}
		if (r)
			audit_entry_release(&e);
	}
	ret = 0;
out:
	free(path);
	free(hpath);
	return ret;
}

void audit_anchor_publish(const char *home, const char *export_path, const struct audit_entry *e)
{
	char *path = xasprintf("%s/audit.head", home), *tmp = xasprintf("%s/audit.head.tmp", home);
	char line[160], ts[40];
	struct gerr err;
	int fd, n;

	format_rfc3339(e->time, ts, sizeof(ts));
	n = snprintf(line, sizeof(line), "%lld %s %s\n", (long long)e->seq, e->hash, ts);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0) {
		bool ok = write_all(fd, line, (size_t)n) == 0 && fsync(fd) == 0;
		ok = close(fd) == 0 && ok;
		if (ok && rename(tmp, path) == 0)
			fsync_dir(home);
		else
			fd = -1;
	}
	if (fd < 0) {
		log_error("audit", "seq=%lld cannot write %s: %s", (long long)e->seq, path, strerror(errno));
		unlink(tmp);
	}
	if (export_path && export_line(export_path, e, &err) < 0)
		log_error("audit", "seq=%lld %s", (long long)e->seq, err.msg);
	free(path);
	free(tmp);
}

/* ---- verify ---- */

static bool hex64(const char *h)
{
	size_t i;
	for (i = 0; h[i]; i++)
		if (!isxdigit((unsigned char)h[i]))
			return false;
	return i == 64;
}

/* HOME/audit.head into a: absent, or present with its seq and MAC */
static void read_head_file(const char *path, struct audit_anchor *a)
{
	FILE *f = fopen(path, "re");
	char line[256], hash[80] = "";
	long long seq = 0;
	a->present = false;
	if (!f)
		return;
	a->present = true;
	if (!fgets(line, sizeof(line), f) || sscanf(line, "%lld %79s", &seq, hash) != 2 || seq <= 0 || !hex64(hash)) {
		/* unreadable: it cannot vouch for anything, and nothing may end before the log */
		seq = INT64_MAX / 2;
		strlcpy_g(hash, "unreadable", sizeof(hash));
	}
	fclose(f);
	a->seq = seq;
	strlcpy_g(a->hash, hash, sizeof(a->hash));
}

/* the export's last line into a (the file is read once, one line in memory) */
static void read_export(const char *path, struct audit_anchor *a)
{
	FILE *f = fopen(path, "re");
	char *line = NULL, *last = NULL;
	size_t cap = 0;
	ssize_t k;
	json_t *j;
	a->present = false;
	if (!f)
		return;
	while ((k = getline(&line, &cap, f)) > 0) {
		if (k > 1) {
			free(last);
			last = xstrdup(line);
		}
	}
	fclose(f);
	free(line);
	if (!last)
		return;
	a->present = true;
	j = json_loads(last, 0, NULL);
	a->seq = json_integer_value(json_object_get(j, "seq"));
	strlcpy_g(a->hash, json_string_value(json_object_get(j, "hash")) ? json_string_value(json_object_get(j, "hash")) : "",
		  sizeof(a->hash));
	if (a->seq <= 0 || !hex64(a->hash)) {
		a->seq = INT64_MAX / 2;
		strlcpy_g(a->hash, "unreadable", sizeof(a->hash));
	}
	json_decref(j);
	free(last);
}

struct vctx {
	struct audit_verifier v;
	int64_t rows;
	struct audit_entry bad; /* the first bad entry, when it was edited (or moved) */
	bool have_bad;
};

static int feed(void *ctx, const struct audit_entry *e)
{
	struct vctx *c = ctx;
	/* past the first bad entry the rows are only counted */
	c->rows++;
	if (c->v.bad_seq || audit_verifier_feed(&c->v, e))
		return 0;
	if (c->v.edited) {
		c->bad = *e;
		c->bad.details = xstrdup(e->details ? e->details : "{}");
		c->have_bad = true;
	}
	return 0;
}

json_t *audit_anchor_verify(struct store *s, const char *home, const char *export_path,
			    const unsigned char key[AUDIT_KEY_BYTES], struct gerr *err)
{
	struct audit_anchor an[3];
	struct vctx c;
	int64_t mac_from = 0;
	char *hpath = xasprintf("%s/audit.head", home), *ename = NULL;
	size_t nan = 2;
	json_t *reply = NULL, *list;
	int r;

	memset(an, 0, sizeof(an));
	memset(&c, 0, sizeof(c));
	an[0].name = "the recorded head (meta audit_head)";
	an[0].required = true;
	r = store_audit_head(s, &an[0].seq, an[0].hash, err);
	if (r < 0 || store_audit_mac_from(s, &mac_from, err) < 0)
		goto out;
	an[0].present = r > 0;
	an[1].name = hpath;
	an[1].required = an[1].once_v2 = an[1].vouches_v2 = true;
	read_head_file(hpath, &an[1]);
	if (export_path) {
		ename = xasprintf("the export file %s", export_path);
		an[2].name = ename;
		an[2].required = an[2].once_v2 = true;
		read_export(export_path, &an[2]);
		nan = 3;
	}
	audit_verifier_init(&c.v, key, mac_from, an, nan);
	if (store_audit_each(s, feed, &c, err) < 0)
		goto out;
	if (!c.v.bad_seq)
		audit_verifier_end(&c.v);
	if (c.have_bad) {
		/* moved: the row that followed it still names its hash as prev */
		int64_t after = 0;
		if (store_audit_seq_after(s, c.bad.hash, &after, err) < 0)
			goto out;
		if (after > 1 && after - 1 != c.bad.seq && audit_verifier_sealed_at(&c.v, &c.bad, after - 1))
			audit_verifier_moved(&c.v, after - 1);
		else if (!after && an[0].present && an[0].seq != c.bad.seq && !strcmp(an[0].hash, c.bad.hash) &&
			 audit_verifier_sealed_at(&c.v, &c.bad, an[0].seq))
			audit_verifier_moved(&c.v, an[0].seq);
	}
	list = json_array();
	for (size_t i = 0; i < nan; i++)
		json_array_append_new(list, json_pack("{s:s, s:b, s:o, s:o}", "name", an[i].name, "present",
						      an[i].present, "seq",
						      an[i].present && an[i].seq < INT64_MAX / 2 ? json_integer(an[i].seq) : json_null(),
						      "hash", an[i].present ? json_string(an[i].hash) : json_null()));
	reply = json_pack("{s:b, s:I, s:o, s:s, s:I, s:o}", "intact", !c.v.bad_seq, "entries", (json_int_t)c.rows,
			  "first_bad", c.v.bad_seq ? json_integer(c.v.bad_seq) : json_null(), "message",
			  c.v.bad_seq ? c.v.why : "the audit chain is intact", "mac_from", (json_int_t)mac_from, "anchors", list);
out:
	if (c.have_bad)
		audit_entry_release(&c.bad);
	free(hpath);
	free(ename);
	return reply;
}
