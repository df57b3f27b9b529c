/*
 * tunnel.c — after a 101 Switching Protocols both connections of the
 * exchange become a byte tunnel: copies both ways with the same
 * backpressure as bodies, a FIN passed on as a shutdown.
 */
#include "common.h"
#include "proxy/proxy-int.h"

void proxy__tunnel_start(struct client *c, struct upconn *u)
{
	u->state = U_TUNNEL;
	c->state = C_TUNNEL;
	c->resp_done = true;
	u->deadline = 0;
	/* bytes after the 101 head belong to the new protocol */
	if (u->rpos < u->rlen)
		hbuf_append(&c->out.q, u->rbuf + u->rpos, u->rlen - u->rpos);
	u->rlen = u->rpos = 0;
	proxy__tunnel_pump(c);
}

static void tunnel_shutdown_cb(uv_shutdown_t *req, int status)
{
}

/* Copies what each side sent to the other; FIN travels as a shutdown. */
void proxy__tunnel_pump(struct client *c)
{
	struct upconn *u = c->up;

	if (c->state != C_TUNNEL || !u || u->state != U_TUNNEL)
		return;
	if (c->rpos < c->rlen && hbuf_append(&u->out.q, c->rbuf + c->rpos, c->rlen - c->rpos) < 0)
		goto fail;
	c->rlen = c->rpos = 0;
	if (u->rpos < u->rlen && hbuf_append(&c->out.q, u->rbuf + u->rpos, u->rlen - u->rpos) < 0)
		goto fail;
	u->rlen = u->rpos = 0;
	if (proxy__out_flush(&u->out) < 0 || proxy__out_flush(&c->out) < 0)
		goto fail;
	if (c->eof && !u->shut_sent && !out_pending(&u->out)) {
		u->shut_sent = true;
		if (uv_shutdown(&u->shut, (uv_stream_t *)&u->tcp, tunnel_shutdown_cb) < 0)
			goto fail;
	}
	if (u->eof && !c->shut_sent && !out_pending(&c->out)) {
		c->shut_sent = true;
		if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, tunnel_shutdown_cb) < 0)
			goto fail;
	}
	if (c->eof && u->eof && !out_pending(&u->out) && !out_pending(&c->out)) {
		proxy__client_close(c); /* closes u too */
		return;
	}
	c->deadline = uv_now(&c->wk->loop) + c->wk->cfg->tunnel_timeout_ms;
	proxy__client_update_read(c);
	proxy__upconn_update_read(u);
	return;
fail:
	proxy__client_close(c);
}
