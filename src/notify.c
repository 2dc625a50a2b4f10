/*
 * notify.c: what a payload says about itself, on its two channels. The
 * notify stream (the child's fd 4, one end of a socketpair of its own) is
 * split into lines, each at most NOTIFY_LINE_MAX (longer ones are dropped
 * and counted). And the supervised side of sd_notify: an instance created
 * with notify = "systemd" is told NOTIFY_SOCKET, the one socket channel.c
 * keeps for all of them, so unmodified programs that call sd_notify() or
 * run systemd-notify report to wardd; channel.c places each datagram with
 * its instance by the sender's credentials and hands it here, where
 * empty, oversized, NUL-laden ones are dropped and counted. What a
 * believed datagram says is handed, one assignment at a time, to the
 * function instance.c gave notify_init: this file knows the channels, not
 * what READY=1 means.
 *
 * layer: engine (below instance.c)
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"

#define container_of(p, type, member) \
	((type *)((char *)(p) - offsetof(type, member)))


/* Where each believed assignment goes (instance.c's, set at its init). */
static void	(*notify_pipe_deliver)(struct instance *, const char *, size_t);
static void	(*notify_sd_deliver)(struct instance *, const char *, size_t);

/*
 * Where what is said goes: each line of the pipe to line, each believed
 * sd_notify assignment to assignment (both instance.c's, set at its init).
 */
void
notify_init(void (*line)(struct instance *, const char *, size_t),
    void (*assignment)(struct instance *, const char *, size_t))
{
	notify_pipe_deliver = line;
	notify_sd_deliver = assignment;
}

/* Split fd 4 into lines; lines over NOTIFY_LINE_MAX are dropped and counted. */
void
notify_pipe_drain(struct instance *i)
{
	char chunk[4096], *p, *nl;
	ssize_t n;
	size_t left, take;

	while (i->notify_fd != -1) {
		n = read(i->notify_fd, chunk, sizeof chunk);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0 || errno != EAGAIN) {
				ev_io_stop(ward_loop, &i->notify_w);
				fd_close_watched(i->notify_fd);
				i->notify_fd = -1;
			}
			return;
		}
		for (p = chunk, left = n; left > 0; ) {
			nl = memchr(p, '\n', left);
			take = nl != NULL ? (size_t)(nl - p) : left;
			if (!i->notify_skipping &&
			    i->notify_len + take > NOTIFY_LINE_MAX) {
				i->notify_skipping = 1;
				i->notify_dropped++;
			}
			if (!i->notify_skipping) {
				if (i->notify_line == NULL &&
				    (i->notify_line = malloc(NOTIFY_LINE_MAX)) == NULL)
					return;
				memcpy(i->notify_line + i->notify_len, p, take);
				i->notify_len += take;
			}
			if (nl == NULL)
				break;
			if (!i->notify_skipping)
				notify_pipe_deliver(i, i->notify_line, i->notify_len);
			i->notify_len = 0;
			i->notify_skipping = 0;
			p = nl + 1;
			left -= take + 1;
		}
	}
}

/* i->notify_w's callback (instance.c sets it up with the pipe). */
void
notify_pipe_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	notify_pipe_drain(container_of(w, struct instance, notify_w));
}

/*
 * Whether pid speaks for the instance: its main process or anything in the
 * session that process leads (every child starts its own session). A
 * sender that has already exited cannot be placed and is not believed.
 */
int
notify_sd_sender_ok(const struct instance *i, pid_t pid)
{
	pid_t sid;

	if (i->state != INSTANCE_RUNNING || pid <= 0)
		return 0;
	if (pid == i->pid)
		return 1;
	sid = getsid(pid);
	return sid != -1 && sid == i->pid;
}

/*
 * One datagram of NOTIFY_SOCKET that channel.c placed with i (flags: its
 * recvmsg flags). Empty, oversized, cut, NUL-laden ones are dropped and
 * counted (systemd's CVE-2016-7795 was a zero-length datagram); each line
 * of the rest is one assignment for instance.c.
 */
void
notify_sd_message(struct instance *i, const char *buf, ssize_t n, int flags)
{
	const char *p, *nl;

	if (n <= 0 || n > SDNOTIFY_MAX || (flags & (MSG_TRUNC | MSG_CTRUNC)) ||
	    memchr(buf, '\0', n) != NULL) {
		i->sd_dropped++;
		return;
	}
	for (p = buf; p < buf + n && i->state == INSTANCE_RUNNING; p = nl + 1) {
		if ((nl = memchr(p, '\n', buf + n - p)) == NULL)
			nl = buf + n;
		if (nl > p)
			notify_sd_deliver(i, p, nl - p);
	}
}
