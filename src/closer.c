/*
 * closer.c: where fds from outside are closed, so that closing one never
 * holds wardd's loop. A close can wait as long as the sender likes: the
 * last close of a TCP socket with SO_LINGER and unsent data waits out the
 * linger, a FUSE file waits for its daemon's FLUSH. Any local user can
 * pass wardd such an fd (sd_notify's NOTIFY_SOCKET is everyone's, and a
 * request may carry fds), and wardd must let go of it (issue 12's review,
 * C4). So the last reference is never wardd's: closer_dispose sends the
 * fd to a small process of wardd's own, the closer, which closes what it
 * is sent and may wait as long as it takes; wardd's own close is then not
 * the last. Only once wardd has closed its copy may the closer close its
 * own: a closer quicker than wardd's close would leave wardd the last
 * (a flake test_c4 caught). So wardd sends each fd, closes it, then sends
 * an empty message, the release; the closer holds what it is sent until a
 * release (or wardd's end closing) says wardd's copies are gone.
 *
 * The closer is made at start with a double fork (so neither a re-exec nor
 * its death leaves a zombie of wardd's), holds nothing but its end of a
 * SOCK_SEQPACKET pair, and exits when wardd's end closes (wardd's exit or
 * re-exec: the new image makes its own). One stuck on an fd stops taking
 * more once its socket's buffer is full (EAGAIN): then a new one is made,
 * at most CLOSER_MAX in wardd's life; past that fds are closed here, as
 * before, and it is said once. Pipes (BARRIER=1's, most passed fds)
 * cannot wait on close: closed here, no message.
 *
 * layer: base
 */
#include "config.h"

#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"

#define CLOSER_MAX	32	/* closers made in wardd's life, at most */
#define CLOSER_BATCH	253	/* SCM_MAX_FD: fds one message carries */

static int closer_fd = -1;	/* wardd's end; -1: none (yet, or no more) */
static unsigned closer_made;
static int closer_said;		/* "closing here" logged */
uint64_t closer_sent;		/* ward.stats: fds the closer closed */

/* mh for one byte at *byte and control room [ctl, ctl + len): what both
 * ends of the closer's socket send and receive. */
static void
closer_msg(struct msghdr *mh, struct iovec *iov, char *byte, void *ctl,
    size_t len)
{
	memset(mh, 0, sizeof *mh);
	iov->iov_base = byte;
	iov->iov_len = 1;
	mh->msg_iov = iov;
	mh->msg_iovlen = 1;
	mh->msg_control = ctl;
	mh->msg_controllen = len;
}

#define CLOSER_HELD	1024	/* fds held for a release, at most */

/* The closer's life: close what comes once released, until wardd's end is
 * gone. */
static void
closer_main(int sock)
{
	union {
		struct cmsghdr	 hdr;
		char		 space[CMSG_SPACE(sizeof(int) * CLOSER_BATCH)];
	} cbuf;
	static int held[CLOSER_HELD];
	struct cmsghdr *cm;
	struct msghdr mh;
	struct iovec iov;
	size_t k, n, nheld = 0;
	char byte;
	ssize_t r;
	int fd, got;

	for (;;) {
		closer_msg(&mh, &iov, &byte, cbuf.space, sizeof cbuf.space);
		r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
		if (r == -1 && errno == EINTR)
			continue;
		got = 0;
		for (cm = r > 0 ? CMSG_FIRSTHDR(&mh) : NULL; cm != NULL;
		    cm = CMSG_NXTHDR(&mh, cm)) {
			if (cm->cmsg_level != SOL_SOCKET ||
			    cm->cmsg_type != SCM_RIGHTS)
				continue;
			n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (k = 0; k < n; k++) {
				memcpy(&fd, CMSG_DATA(cm) + k * sizeof(int),
				    sizeof fd);
				/* Full (releases lost to a full buffer): the
				 * oldest were long since closed by wardd. */
				if (nheld == CLOSER_HELD)
					close(held[--nheld]);
				held[nheld++] = fd;
				got = 1;
			}
		}
		if (got)
			continue;
		/* A release, or wardd's end closed: its copies are gone. */
		while (nheld > 0)
			close(held[--nheld]);	/* may wait: only this process */
		if (r <= 0)
			_exit(0);
	}
}

/*
 * A new closer; the old one, if any, is let go (it exits once it is done
 * with what it holds and sees its peer gone). Before the loop runs, and
 * rarely after (a closer stuck): the fork in between is waited for, and
 * exits at once.
 */
static void
closer_start(void)
{
	sigset_t all, old;
	pid_t pid;
	int sp[2], st;

	if (closer_fd != -1) {
		close(closer_fd);
		closer_fd = -1;
	}
	if (closer_made >= CLOSER_MAX)
		return;
	closer_made++;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == -1) {
		log_warn("closer: socketpair");
		return;
	}
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);	/* no handler of wardd's */
	if ((pid = fork()) == -1) {
		log_warn("closer: fork");
		sigprocmask(SIG_SETMASK, &old, NULL);
		close(sp[0]);
		close(sp[1]);
		return;
	}
	if (pid == 0) {
		if (fork() != 0)
			_exit(0);	/* the closer is the grandchild */
		if (dup2(sp[1], 3) == -1)
			_exit(1);
		syscall(SYS_close_range, 4, ~0U, 0);
		close(0);
		close(1);
		close(2);
		(void)prctl(PR_SET_NAME, "wardd-closer");
		/* Default dispositions, then no mask: a service manager's
		 * SIGTERM ends it, no handler of wardd's runs in it. */
		for (st = 1; st < NSIG; st++)
			(void)signal(st, SIG_DFL);
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		closer_main(3);
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(sp[1]);
	while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
		;
	if (fd_set_flags(sp[0], 1, 1) == -1) {
		close(sp[0]);
		return;
	}
	closer_fd = sp[0];
}

void
closer_init(void)
{
	closer_start();
}

/* Send fd to the closer; 0 if it has it. */
static int
closer_send(int fd)
{
	union {
		struct cmsghdr	 hdr;
		char		 space[CMSG_SPACE(sizeof(int))];
	} cbuf;
	struct cmsghdr *cm;
	struct msghdr mh;
	struct iovec iov;
	char byte = 0;

	memset(&cbuf, 0, sizeof cbuf);
	closer_msg(&mh, &iov, &byte, cbuf.space, sizeof cbuf.space);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof fd);
	return sendmsg(closer_fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) == 1 ? 0 : -1;
}

/*
 * wardd's copy of what it sent is closed: the closer may close its own.
 * Lost if the closer's buffer is full; it then closes at the next release
 * (or when its buffer of held fds is full).
 */
static void
closer_release(void)
{
	struct msghdr mh;
	struct iovec iov;
	char byte = 0;

	closer_msg(&mh, &iov, &byte, NULL, 0);
	(void)sendmsg(closer_fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/*
 * Let go of fd, which came from outside (passed with a request or a
 * datagram): closed, without wardd ever waiting on it (see the top).
 */
void
closer_dispose(int fd)
{
	struct stat st;

	if (fd < 0)
		return;
	/* A pipe's close never waits: the common case costs one fstat. */
	if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode)) {
		close(fd);
		return;
	}
	if (closer_fd != -1 && closer_send(fd) == 0) {
		closer_sent++;
		close(fd);	/* not the last reference: the closer has one */
		closer_release();
		return;
	}
	if (closer_fd != -1 && (errno == EAGAIN || errno == EPIPE ||
	    errno == ECONNREFUSED)) {
		/* Stuck on an fd that waits, or gone: a new one. */
		log_warnx("closer: the closer is stuck or gone; starting "
		    "another (%u of %d)", closer_made + 1, CLOSER_MAX);
		closer_start();
		if (closer_fd != -1 && closer_send(fd) == 0) {
			closer_sent++;
			close(fd);
			closer_release();
			return;
		}
	}
	if (!closer_said) {
		log_warnx("closer: none left; fds from outside are closed by "
		    "wardd itself, which may wait on one");
		closer_said = 1;
	}
	close(fd);
}

void
closer_fds(fd_visit_fn fn, void *arg)
{
	if (closer_fd != -1)
		fn(closer_fd, "closer: its socket", arg);
}
