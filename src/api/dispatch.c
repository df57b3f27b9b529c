/*
 * dispatch.c — the daemon's API: one table (src/api/table.c), one place
 * where every request is identified, authorised (role and scope) and its
 * decision audited, and the Unix socket (HOME/api.sock, mode 0600): one
 * JSON request line in, one JSON response line out, then close. See
 * docs/api.md for the operations and docs/security.md for who may do what.
 * Bad input gets {"ok":false,"error":...} naming the JSON pointer; it never
 * changes anything.
 */
#include "common.h"
#include "api/api.h"
#include "api/tcp.h"
#include "api/flags_tcp.h"
#include "daemon/daemon.h"
#include "daemon/gates_flow.h"
#include "core/spec.h"
#include "gates/gates.h"
#include "util/log.h"
#include <jansson.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#define API_MAX_REQUEST (4 * 1024 * 1024)
#define API_TEXT_MAX 1024 /* reason, title, comment, resolution */

struct api_conn {
	uv_pipe_t pipe;
	struct caller caller;
	char *buf;
	size_t len;
	bool done;
};

struct api_write {
	uv_write_t req;
	char *data;
};

const char *api_str(json_t *req, const char *key, bool required, json_t **err)
{
	json_t *v = json_object_get(req, key);
	if (!v) {
		if (required && !*err)
			*err = reply_error(2, "/%s: missing", key);
		return NULL;
	}
	if (!json_is_string(v)) {
		if (!*err)
			*err = reply_error(2, "/%s: must be a string", key);
		return NULL;
	}
	return json_string_value(v);
}

int api_int(json_t *req, const char *key, int def, json_t **err)
{
	json_t *v = json_object_get(req, key);
	if (!v || json_is_null(v))
		return def;
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000000) {
		if (!*err)
			*err = reply_error(2, "/%s: must be a non-negative integer", key);
		return def;
	}
	return (int)json_integer_value(v);
}

/*
 * Fields a client once sent and the controller now owns: the resolved
 * config, the gate policy, check results, the webhook list, a claim of an
 * approval. A request carrying one is refused (400 over TCP), naming it.
 */
static const char *const client_only[] = { "gates", "config", "notify", "checks", "approved_deployment", NULL };

json_t *api_client_only_fields(json_t *req)
{
	for (const char *const *f = client_only; *f; f++)
		if (json_object_get(req, *f))
			return reply_error(2, "/%s: not accepted from a client: the controller resolves the config, the gates, "
					 "the checks and the notifications from its stored spec (gantry apply)", *f);
	return NULL;
}

static const struct api_op *lookup(const char *op)
{
	for (const struct api_op *t = api_ops; t->name; t++)
		if (!strcmp(t->name, op))
			return t;
	return NULL;
}

/* the one place where a request is identified and authorised: NULL, or the refusal */
static json_t *authorize(const struct api_op *o, json_t *req, struct caller *caller, struct identity *who)
{
	json_t *deny = NULL;
	char what[96];
	if (gates_identify(req, caller, who, &deny) < 0)
		return deny;
	if (who->by_token || caller->uid != geteuid())
		strlcpy_g(caller->claimed, who->name, sizeof(caller->claimed));
	if (who->role < o->role)
		return reply_error(EXIT_REFUSED, "permission denied: %s (role %s) cannot run '%s' (needs role %s)", who->name,
				 role_name(who->role), o->name, role_name(o->role));
	switch (o->scope) {
	case API_SCOPE_TARGET:
		/* a scoped role changes only what its scope covers */
		snprintf(what, sizeof(what), "run '%s' on", o->name);
		return gates_need_scope(who, what, json_string_value(json_object_get(req, "service")),
					json_string_value(json_object_get(req, "environment")));
	case API_SCOPE_ALL:
		if (!identity_covers(who, "", "")) {
			char rt[2 * USER_SCOPE_LEN + 64];
			return reply_error(EXIT_REFUSED, "permission denied: %s (role %s) cannot run '%s' (needs an admin of "
					 "every service and environment)", who->name, identity_role_text(who, rt, sizeof(rt)),
					 o->name);
		}
		return NULL;
	case API_SCOPE_NONE:
		break;
	}
	return NULL;
}

json_t *api_authorize(const char *op, json_t *req, struct caller *caller, struct identity *who)
{
	const struct api_op *o = lookup(op);
	if (!o)
		return reply_error(EXIT_USAGE, "/op: unknown operation '%s'", op);
	return authorize(o, req, caller, who);
}

/*
 * Names and free text, for every operation: a service or environment name
 * is what the spec allows (it becomes a path, a log field, a host), free
 * text is bounded and has no control character (a newline would forge a
 * line in the operator log and in `gantry events`).
 */
static json_t *bad_text(json_t *req)
{
	static const char *const names[] = { "service", "environment", "from" };
	static const char *const texts[] = { "reason", "title", "comment", "resolution" };
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		const char *v = json_string_value(json_object_get(req, names[i]));
		if (v && !spec_name_valid(v))
			return reply_error(EXIT_USAGE, "/%s: not a valid %s name (lowercase letters, digits and '-', "
					 "at most 63 characters)", names[i], i == 0 ? "service" : "environment");
	}
	for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
		json_t *j = json_object_get(req, texts[i]);
		const char *v = json_string_value(j);
		if (!v)
			continue;
		if (json_string_length(j) > API_TEXT_MAX)
			return reply_error(EXIT_USAGE, "/%s: longer than %d bytes", texts[i], API_TEXT_MAX);
		for (const unsigned char *p = (const unsigned char *)v; *p; p++)
			if (*p < 0x20 || *p == 0x7f)
				return reply_error(EXIT_USAGE, "/%s: control character 0x%02x at byte %zu (one line of "
						 "text)", texts[i], *p, (size_t)(p - (const unsigned char *)v));
		if (strlen(v) != json_string_length(j))
			return reply_error(EXIT_USAGE, "/%s: NUL byte in the text", texts[i]);
	}
	return NULL;
}

/* a member the operation does not take: refused, named (a typo never passes silently) */
static json_t *unknown_fields(const struct api_op *o, json_t *req)
{
	const char *k;
	json_t *v;
	json_object_foreach(req, k, v) {
		size_t n = strlen(k);
		const char *f = o->fields;
		bool ok = !strcmp(k, "op") || !strcmp(k, "token") || !strcmp(k, "deployed_by");
		while (!ok && f && *f) {
			const char *end = strchr(f, ' ');
			size_t len = end ? (size_t)(end - f) : strlen(f);
			ok = len == n && !memcmp(f, k, n);
			f = end ? end + 1 : f + len;
		}
		if (!ok)
			return reply_error(EXIT_USAGE, "/%s: '%s' takes no such field (it takes: %s)", k, o->name,
					 *o->fields ? o->fields : "none but op, token and deployed_by");
	}
	return NULL;
}

static json_t *dispatch(json_t *req, struct caller *caller)
{
	const struct api_op *o;
	const char *op, *claimed;
	struct api_ctx ctx = { .caller = caller };
	json_t *reply;
	if (!json_is_object(req))
		return reply_error(EXIT_USAGE, "request must be a JSON object");
	op = json_string_value(json_object_get(req, "op"));
	if (!op)
		return reply_error(EXIT_USAGE, "/op: missing or not a string");
	if (!(o = lookup(op)) || !o->fn)
		return reply_error(EXIT_USAGE, "/op: unknown operation '%s'%s", op,
				 o ? " (the artifact store is PUT/HEAD /v1/artifacts/DIGEST over serve --api)" : "");
	if ((reply = api_client_only_fields(req)) || (reply = unknown_fields(o, req)) || (reply = bad_text(req)))
		return reply;
	claimed = json_string_value(json_object_get(req, "deployed_by"));
	if (claimed)
		strlcpy_g(caller->claimed, claimed, sizeof(caller->claimed));
	if (o->mutating && gd->shutting_down)
		return reply_error(EXIT_FAILED, "gantry serve is shutting down");
	if (o->mutating && gd->restoring) {
		reply = reply_error(EXIT_FAILED, "gantry serve is starting: restoring the desired state first");
		json_object_set_new(reply, "retry", json_true());
		return reply;
	}
	/* the store cannot write: a change would be neither recorded nor made
	 * (docs/internals/controller.md, "Record, then act") */
	if (o->mutating) {
		struct gerr serr;
		if (daemon_store_refusal(&serr) < 0) {
			reply = reply_error(EXIT_FAILED, "%s", serr.msg);
			json_object_set_new(reply, "store", daemon_store_json());
			return reply;
		}
	}
	reply = authorize(o, req, caller, &ctx.who);
	if (!reply)
		reply = o->fn(gd, req, &ctx);
	if (o->mutating && !daemon_store_ok()) {
		/* the store failed during this change: memory goes back to what
		 * it recorded, and the caller is not told it succeeded */
		struct gerr serr;
		for (struct svcenv *se = gd->svcenvs; se; se = se->next)
			daemon_store_reload(se);
		if (json_is_true(json_object_get(reply, "ok"))) {
			daemon_store_refusal(&serr);
			json_decref(reply);
			reply = reply_error(EXIT_FAILED, "%s (a part of it may have been recorded: see gantry status)",
					    serr.msg);
		}
	}
	if (o->mutating && json_is_true(json_object_get(reply, "ok"))) {
		if (!o->audited)
			gates_audit_op(o->name, req, caller, reply);
	}
	else if (o->mutating)
		gates_audit_refusal(o->name, req, caller, reply);
	return reply;
}

json_t *api_dispatch(json_t *req, struct caller *caller)
{
	return dispatch(req, caller);
}

bool api_op_known(const char *op)
{
	return lookup(op) != NULL;
}

json_t *api_dispatch_as(json_t *req, const char *actor)
{
	struct caller c = { 0 };
	c.uid = geteuid();
	c.pid = getpid();
	strlcpy_g(c.user, actor, sizeof(c.user));
	json_object_set_new(req, "deployed_by", json_string(actor));
	return dispatch(req, &c);
}

/* ---- socket plumbing ---- */

static void on_conn_closed(uv_handle_t *h)
{
	struct api_conn *c = h->data;
	free(c->buf);
	free(c);
}

static void on_written(uv_write_t *w, int status)
{
	struct api_write *aw = (struct api_write *)w;
	(void)status;
	uv_close((uv_handle_t *)w->handle, on_conn_closed);
	free(aw->data);
	free(aw);
}

static void reply(struct api_conn *c, json_t *resp)
{
	struct api_write *w = xcalloc(1, sizeof(*w));
	char *text = json_dumps(resp, JSON_COMPACT);
	uv_buf_t b;
	json_decref(resp);
	w->data = xasprintf("%s\n", text);
	free(text);
	b = uv_buf_init(w->data, (unsigned)strlen(w->data));
	c->done = true;
	uv_read_stop((uv_stream_t *)&c->pipe);
	if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, on_written) < 0) {
		free(w->data);
		free(w);
		uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
	}
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct api_conn *c = h->data;
	(void)suggested;
	c->buf = xrealloc(c->buf, c->len + 65536 + 1);
	*buf = uv_buf_init(c->buf + c->len, 65536);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct api_conn *c = s->data;
	char *nl;
	(void)buf;
	if (c->done)
		return;
	if (n < 0) {
		uv_close((uv_handle_t *)s, on_conn_closed);
		return;
	}
	c->len += (size_t)n;
	c->buf[c->len] = 0;
	if (c->len > API_MAX_REQUEST) {
		reply(c, reply_error(2, "request larger than %d bytes", API_MAX_REQUEST));
		return;
	}
	nl = memchr(c->buf, '\n', c->len);
	if (nl) {
		json_error_t jerr;
		json_t *req = json_loadb(c->buf, (size_t)(nl - c->buf), 0, &jerr);
		if (!req) {
			reply(c, reply_error(2, "request is not JSON: %s at column %d", jerr.text, jerr.column));
			return;
		}
		reply(c, dispatch(req, &c->caller));
		json_decref(req);
	}
}

/* the kernel says who connected: nothing the client claims */
static void peer_credentials(struct api_conn *c)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	uv_os_fd_t fd;
	struct passwd pw, *res = NULL;
	char buf[1024];

	c->caller.uid = (uid_t)-1;
	strlcpy_g(c->caller.user, "unknown", sizeof(c->caller.user));
	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return;
	c->caller.uid = cred.uid;
	c->caller.pid = cred.pid;
	if (getpwuid_r(cred.uid, &pw, buf, sizeof(buf), &res) == 0 && res)
		strlcpy_g(c->caller.user, res->pw_name, sizeof(c->caller.user));
	else
		snprintf(c->caller.user, sizeof(c->caller.user), "uid%u", (unsigned)cred.uid);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct api_conn *c;
	if (status < 0)
		return;
	c = xcalloc(1, sizeof(*c));
	uv_pipe_init(gd->loop, &c->pipe, 0);
	c->pipe.data = c;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0) {
		uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
		return;
	}
	peer_credentials(c);
	if (uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) < 0)
		uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
}

static bool unix_listening; /* gd->api is a live listener */

/*
 * The socket is made here, not by uv_pipe_bind: libuv unlinks a path it
 * bound when the handle closes, and a controller handing over to the next
 * (`gantry upgrade`) closes its listener while the socket must stay.
 */
int api_listen(void)
{
	char *path = xasprintf("%s/api.sock", gd->home);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = -1, r = 0;

	unlink(path); /* we hold serve.lock: a leftover socket is stale */
	if (strlen(path) >= sizeof(sa.sun_path))
		r = UV_ENAMETOOLONG;
	else if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		r = uv_translate_sys_error(errno);
	if (!r) {
		strlcpy_g(sa.sun_path, path, sizeof(sa.sun_path));
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0)
			r = uv_translate_sys_error(errno);
	}
	if (!r) {
		uv_pipe_init(gd->loop, &gd->api, 0);
		r = uv_pipe_open(&gd->api, fd);
		if (!r) {
			fd = -1; /* the handle's */
			r = uv_listen((uv_stream_t *)&gd->api, 64, on_connection);
			if (r < 0)
				uv_close((uv_handle_t *)&gd->api, NULL);
		}
	}
	if (fd >= 0)
		close(fd);
	if (r < 0) {
		fprintf(stderr, "error: cannot listen on %s: %s\n", path, uv_strerror(r));
		free(path);
		return -1;
	}
	free(path);
	unix_listening = true;
	return 0;
}

void api_close(void)
{
	char *path = xasprintf("%s/api.sock", gd->home);
	if (unix_listening && !uv_is_closing((uv_handle_t *)&gd->api))
		uv_close((uv_handle_t *)&gd->api, NULL);
	unix_listening = false;
	/* a controller that handed over leaves it to the next one */
	if (!gd->handed_over)
		unlink(path);
	free(path);
}

static void fds(int *unix_fd, int *tcp_fd)
{
	uv_os_fd_t fd;
	*unix_fd = unix_listening && uv_fileno((uv_handle_t *)&gd->api, &fd) == 0 ? fd : -1;
	*tcp_fd = api_tcp_fd();
}

/* stop accepting; HOME/api.sock stays, its backlog for the next listener */
static void pause_listening(void)
{
	if (unix_listening && !uv_is_closing((uv_handle_t *)&gd->api))
		uv_close((uv_handle_t *)&gd->api, NULL);
	unix_listening = false;
	api_tcp_pause();
}

static int listen_fds(int unix_fd, int tcp_fd, struct gerr *err)
{
	int r;
	if (tcp_fd >= 0 && api_tcp_listen_fd(tcp_fd, err) < 0)
		return -1;
	if (unix_fd < 0)
		return 0;
	uv_pipe_init(gd->loop, &gd->api, 0);
	r = uv_pipe_open(&gd->api, unix_fd);
	if (!r)
		r = uv_listen((uv_stream_t *)&gd->api, 64, on_connection);
	if (r < 0) {
		uv_close((uv_handle_t *)&gd->api, NULL);
		return gerr_set(err, "api.sock: the listener handed over (fd %d): %s", unix_fd, uv_strerror(r));
	}
	unix_listening = true;
	return 0;
}

static void close_all(void)
{
	api_close();
	api_tcp_close();
	flags_tcp_close();
}

const struct daemon_api_hooks api_daemon_hooks = {
	.tcp_listen = api_tcp_listen,
	.flags_listen = flags_tcp_listen,
	.listen = api_listen,
	.close = close_all,
	.fds = fds,
	.pause = pause_listening,
	.listen_fds = listen_fds,
	.dispatch_as = api_dispatch_as,
};
