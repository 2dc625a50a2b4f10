/*
 * sdnotify.c: the supervised side of sd_notify. An instance created with
 * notify = "systemd" gets a datagram socket of its own in its runtime dir,
 * named by NOTIFY_SOCKET, so unmodified programs that call sd_notify() or
 * run systemd-notify report to wardd. Only datagrams whose sender (by
 * SCM_CREDENTIALS) is in the instance's session are believed; empty,
 * oversized, NUL-laden and foreign ones are dropped and counted (systemd's
 * CVE-2016-7795 was a zero-length datagram).
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

static void	sdnotify_cb(struct ev_loop *, ev_io *, int);

char *
sdnotify_path(const struct instance *i)
{
	return str_printf("%s/notify", i->runtime_dir);
}

/*
 * Whether pid speaks for the instance: its main process or anything in the
 * session that process leads (every child starts its own session). A
 * sender that has already exited cannot be placed and is not believed.
 */
int
sdnotify_sender_ok(const struct instance *i, pid_t pid)
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
sdnotify_open(struct instance *i, int dirfd, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	char *path;
	uid_t uid;
	gid_t gid;
	int fd, one = 1;

	if ((path = sdnotify_path(i)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path) {
		snprintf(err, errlen, "notify socket path %s is too long (use a "
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
		snprintf(err, errlen, "notify socket %s: %s", path, strerror(errno));
		if (fd != -1)
			close(fd);
		free(path);
		return -1;
	}
	free(path);
	i->sd_fd = fd;
	ev_io_init(&i->sd_w, sdnotify_cb, fd, EV_READ);
	ev_io_start(ward_loop, &i->sd_w);
	return 0;
}

void
sdnotify_close(struct instance *i)
{
	if (i->sd_fd == -1)
		return;
	ev_io_stop(ward_loop, &i->sd_w);
	close(i->sd_fd);
	i->sd_fd = -1;
}

/* One sd_notify assignment, as the notify pipe's lines plus a few more. */
static void
sdnotify_assignment(struct instance *i, const char *p, size_t n)
{
	enum payload_state s;
	const char *text;
	size_t tlen;
	char msg[128];

	switch (notify_parse_sd(p, n, &s, &text, &tlen)) {
	case NOTIFY_STOPPING:
		if (i->payload < s)
			instance_set_payload(i, s, msg, sizeof msg);
		break;
	case NOTIFY_FAILURE:
		free(i->failure_note);
		i->failure_note = notify_failure_note(text, tlen);
		break;
	case NOTIFY_IGNORED:
		/* MAINPID=, RELOADING=1, FDSTORE=1 ...: nothing ward acts on. */
		break;
	default:
		/* READY=1, STATUS=, WATCHDOG= mean what they mean on fd 4. */
		instance_notify_line(i, p, n);
		break;
	}
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
 * for i (sdnotify_sender_ok).
 */
static int
sdnotify_control(const struct instance *i, struct msghdr *mh)
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
	ok = cred != NULL && sdnotify_sender_ok(i, cred->pid);
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
sdnotify_drain(struct instance *i)
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
				log_warn("notify socket of instance %s", i->cfg.name);
			return;
		}
		/* First, before the datagram is read: passed fds are closed. */
		believed = sdnotify_control(i, &mh);
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
				sdnotify_assignment(i, p, nl - p);
		}
		if (i->state != INSTANCE_RUNNING || i->sd_fd == -1)
			return;	/* a WATCHDOG=trigger may have ended it */
	}
}

static void
sdnotify_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	sdnotify_drain(container_of(w, struct instance, sd_w));
}
