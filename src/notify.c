/*
 * notify.c: what a payload says about itself, on its two channels. The
 * notify pipe (the child's fd 4) is split into lines, each at most
 * NOTIFY_LINE_MAX (longer ones are dropped and counted). And the
 * supervised side of sd_notify: an instance created with
 * notify = "systemd" gets a datagram socket of its own in its runtime dir,
 * named by NOTIFY_SOCKET, so unmodified programs that call sd_notify() or
 * run systemd-notify report to wardd. Only datagrams whose sender (by
 * SCM_CREDENTIALS) is in the instance's session are believed; empty,
 * oversized, NUL-laden and foreign ones are dropped and counted (systemd's
 * CVE-2016-7795 was a zero-length datagram). What a believed datagram
 * says is handed, one assignment at a time, to the function instance.c
 * gave notify_init: this file knows the channels, not what READY=1 means.
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

static void	notify_sd_cb(struct ev_loop *, ev_io *, int);

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

char *
notify_sd_path(const struct instance *i)
{
	return str_printf("%s/notify", i->runtime_dir);
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
 * Bind the instance's socket; called at spawn, before the child exists,
 * while its runtime dir (dirfd) is still wardd's own 0700: nobody else can
 * put anything at the path between the bind and the hand-over, which goes
 * through the directory fd and never follows a link.
 */
int
notify_sd_open(struct instance *i, int dirfd, struct ward_err *e)
{
	struct sockaddr_un sun;
	char *path;
	uid_t uid;
	gid_t gid;
	int fd, one = 1;

	if ((path = notify_sd_path(i)) == NULL)
		return ward_err_oom(e);
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path) {
		ward_err_set(e, WARD_E_INTERNAL,
		    "notify socket path %s is too long (use a "
		    "shorter --state-dir)", path);
		free(path);
		return -1;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) == -1 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof sun) == -1 ||
	    /* The payload may run as another user: it must be able to send. */
	    (spawn_ids(i, &uid, &gid) && fchownat(dirfd, "notify", uid, gid,
	    AT_SYMLINK_NOFOLLOW) == -1)) {
		ward_err_errno(e, WARD_E_INTERNAL,
		    "notify socket %s", path);
		if (fd != -1)
			close(fd);
		free(path);
		return -1;
	}
	free(path);
	i->sd_fd = fd;
	ev_io_init(&i->sd_w, notify_sd_cb, fd, EV_READ);
	ev_io_start(ward_loop, &i->sd_w);
	return 0;
}

/* i came back from wardd's state with its socket: watch it again. */
void
notify_sd_adopt(struct instance *i)
{
	if (i->sd_fd == -1)
		return;
	ev_io_init(&i->sd_w, notify_sd_cb, i->sd_fd, EV_READ);
	ev_io_start(ward_loop, &i->sd_w);
}

void
notify_sd_close(struct instance *i)
{
	if (i->sd_fd == -1)
		return;
	ev_io_stop(ward_loop, &i->sd_w);
	fd_close_watched(i->sd_fd);	/* it may be in the fd store too */
	i->sd_fd = -1;
}

/* Linux's SCM_MAX_FD: the most fds one message can carry. */
#define SDNOTIFY_MAX_FDS	253

/*
 * Walk a received datagram's control messages: place its sender (by
 * SCM_CREDENTIALS, while the sender still waits on the fds it passed),
 * then close every fd it brought (SCM_RIGHTS), whoever sent it, before the
 * datagram is read (issue 9, finding 14). wardd keeps none (no FDSTORE=1),
 * systemd-notify's BARRIER=1 waits for exactly this close (and may exit
 * right after it: hence the sender is placed first), and an fd held any
 * longer would count against wardd's table. Returns 1 if the sender speaks
 * for i (notify_sd_sender_ok).
 */
static int
notify_sd_control(const struct instance *i, struct msghdr *mh)
{
	const struct ucred *cred = NULL;
	struct cmsghdr *cm;
	size_t k, nfds;
	int fd, ok;

	for (cm = CMSG_FIRSTHDR(mh); cm != NULL; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level == SOL_SOCKET &&
		    cm->cmsg_type == SCM_CREDENTIALS &&
		    cm->cmsg_len == CMSG_LEN(sizeof *cred))
			cred = (const struct ucred *)CMSG_DATA(cm);
	}
	ok = cred != NULL && notify_sd_sender_ok(i, cred->pid);
	for (cm = CMSG_FIRSTHDR(mh); cm != NULL; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (k = 0; k < nfds; k++) {
			memcpy(&fd, CMSG_DATA(cm) + k * sizeof(int), sizeof fd);
			close(fd);
		}
	}
	return ok;
}

/*
 * Read what the socket holds now. Also called when the child has died,
 * before its death is recorded: a payload that sends EXIT_STATUS= and exits
 * must not lose the race with its own pidfd.
 */
void
notify_sd_drain(struct instance *i)
{
	char buf[SDNOTIFY_MAX + 1];
	union {		/* aligned for struct cmsghdr */
		struct cmsghdr	 hdr;
		char		 space[CMSG_SPACE(sizeof(struct ucred)) +
				    CMSG_SPACE(sizeof(int) * SDNOTIFY_MAX_FDS)];
	} cbuf;
	struct msghdr mh;
	struct iovec iov;
	const char *p, *nl;
	ssize_t n;
	int reads, believed;

	for (reads = 0; reads < 64 && i->sd_fd != -1; reads++) {
		memset(&mh, 0, sizeof mh);
		iov.iov_base = buf;
		iov.iov_len = sizeof buf;
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cbuf.space;
		mh.msg_controllen = sizeof cbuf.space;
		n = recvmsg(i->sd_fd, &mh, MSG_DONTWAIT | MSG_TRUNC |
		    MSG_CMSG_CLOEXEC);
		if (n == -1) {
			if (errno != EAGAIN && errno != EINTR)
				log_warn("notify socket of instance %s", i->spec.name);
			return;
		}
		/* First, before the datagram is read: passed fds are closed. */
		believed = notify_sd_control(i, &mh);
		if (n == 0 || n > SDNOTIFY_MAX || (mh.msg_flags & MSG_TRUNC) ||
		    (mh.msg_flags & MSG_CTRUNC) ||
		    memchr(buf, '\0', n) != NULL || !believed) {
			i->sd_dropped++;
			continue;
		}
		for (p = buf; p < buf + n; p = nl + 1) {
			if ((nl = memchr(p, '\n', buf + n - p)) == NULL)
				nl = buf + n;
			if (nl > p)
				notify_sd_deliver(i, p, nl - p);
		}
		if (i->state != INSTANCE_RUNNING || i->sd_fd == -1)
			return;	/* a WATCHDOG=trigger may have ended it */
	}
}

static void
notify_sd_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	notify_sd_drain(container_of(w, struct instance, sd_w));
}
