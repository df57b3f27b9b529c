/*
 * master.h — the master process of the standalone `gantry proxy`: it holds
 * the listening sockets and runs the serving proxy as its child, so that a
 * dead proxy costs only the requests it had in flight (nginx's master,
 * HAProxy's master-worker). docs/internals/proxy.md, "Who holds the
 * listeners".
 */
#ifndef GANTRY_PROXY_MASTER_H
#define GANTRY_PROXY_MASTER_H
#include "common.h"
#include "proxy/proxy.h"

/* a serving process that lived less than this is a crash loop */
#define PROXY_RESTART_QUICK_MS 1000
/* the first delay of a crash loop, doubling up to the last */
#define PROXY_RESTART_FIRST_MS 1000
#define PROXY_RESTART_MAX_MS 8000

/*
 * The restart rule, as a pure function: how long to wait before starting
 * the next serving process after one that lived lived_ms, given the delay
 * chosen after the previous exit (prev_ms; 0 at first). One that lived
 * PROXY_RESTART_QUICK_MS or more is replaced at once (0), which also resets
 * the backoff; one that died sooner waits 1 s, then 2, 4, 8 s (at most).
 * The controller's proxy restarts (on_proxy_exit in src/daemon/proxyctl.c)
 * use it too.
 */
int64_t proxy_restart_delay(int64_t prev_ms, int64_t lived_ms);

/*
 * Runs the master until SIGTERM/SIGINT: binds cfg->listen (one socket per
 * cfg->workers, proxy_listeners_open), then runs exe with argv
 * (NULL-terminated; borrowed) as its child, the listening sockets on fds 3
 * to 3 + workers - 1: argv is the proxy's own command line plus
 * `--listen-fds N --workers N`. SIGHUP is passed on to the child;
 * SIGTERM/SIGINT are passed on, the master closes its copies of the
 * sockets and waits for the child to drain (killing it drain_timeout_ms +
 * 5 s after the signal if it has not exited). A child that dies otherwise
 * is replaced after proxy_restart_delay(). The child gets SIGTERM if the
 * master dies (PR_SET_PDEATHSIG).
 *
 * Returns the status to exit with: the stopped child's (0 after a clean
 * drain, or when it was killed by the stop signal itself before it could
 * catch it; 128 + signal if another signal ended it), or the first child's
 * nonzero exit status when that child exited by itself (it could not start:
 * a bad routes file, an admin address in use; it said why on stderr).
 * -2 when cfg->listen is not an address or cfg->admin_fd is one of the
 * fds the listeners go to, -1 when they cannot be bound (err set). An
 * inherited cfg->admin_fd stays open in the master and passes to every
 * child. The signal mask and the SIGCHLD/SIGPIPE dispositions are restored
 * before it returns.
 */
int proxy_master_run(const struct proxy_config *cfg, const char *exe, char *const *argv, struct gerr *err);

#endif
