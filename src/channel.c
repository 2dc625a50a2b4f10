/*
 * channel.c: the two sockets every payload shares with wardd, so that a
 * running instance costs wardd two fds, its pidfd and its fd 4 stream, and
 * 10,000 of them fit under a 20,000-file limit wardd cannot raise (issue
 * 12; it was five: pidfd, failure pipe, notify pipe, NOTIFY_SOCKET and a
 * spawn status pipe).
 *
 *  - fd 4, the notify stream, stays the instance's own: one end of a
 *    SOCK_STREAM socketpair (instance.notify_fd, read by notify.c).
 *  - fd 3, the failure channel: each child gets a datagram socket of its
 *    own, autobound (an abstract name the kernel picks and keeps unique
 *    while the socket exists) and connected to STATE_DIR/failure, wardd's
 *    and mode 0600, so nothing but root can send there except through a
 *    socket wardd connected. A datagram's sender address names its
 *    instance (channel_by_addr); the text goes to exit.c as the pipe's did.
 *  - NOTIFY_SOCKET: one datagram socket, STATE_DIR/notify, mode 0666, for
 *    every notify=systemd instance, as systemd's own is: anyone may send,
 *    and a datagram is believed only from an instance's main process or a
 *    process in the session it leads (SCM_CREDENTIALS, checked by the
 *    kernel); what it says goes to notify.c.
 *
 * Both are read at most CHANNEL_TURN datagrams per loop turn, and again
 * before an instance's death is recorded (channel_drain): what a payload
 * wrote before it exited is queued before its pidfd turns readable, and a
 * queue holds at most net.unix.max_dgram_qlen (+1) datagrams, so that
 * many reads reach it (channel_qlen). The price of sharing: one payload
 * writing fd 3 or NOTIFY_SOCKET in a loop makes others' writes there
 * wait while wardd drains (never lost: the sockets block). fd 4, the
 * busy one, is not shared. Fds passed with a datagram are let go of
 * through closer.c (their close may wait).
 *
 * Both sockets are wardd's own, kept across a re-exec and in the fd store
 * (channel_save): children's fd 3 sockets stay connected to the same one.
 *
 * layer: engine (below instance.c; hands what it reads to exit.c, notify.c)
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

#define CHANNEL_TURN	256	/* datagrams read per socket per loop turn */
#define CHANNEL_DEATH	64	/* ... before a death, at least (see */
#define CHANNEL_DEATH_MAX 65536	/* channel_qlen), at most */
#define CHANNEL_MAX_FDS	253	/* SCM_MAX_FD: fds one message can carry */
/* Bytes of one datagram kept: more than FAILURE_MAX, so one write of it
 * all is kept whole; beyond, counted as discarded. */
#define CHANNEL_DGRAM_MAX	(64 * 1024)
#if !defined(SO_PASSRIGHTS) && (defined(__x86_64__) || defined(__i386__) || \
    defined(__aarch64__) || defined(__arm__) || defined(__riscv))
#define SO_PASSRIGHTS	83	/* asm-generic's, Linux 6.16; older headers lack it */
#endif

struct channel_sock {
	const char	*name;		/* STATE_DIR/name */
	mode_t		 mode;
	int		 fd;
	ev_io		 w;
};

static struct channel_sock channel_failure = { "failure", 0600, -1, { 0 } };
static struct channel_sock channel_notify = { "notify", 0666, -1, { 0 } };
static char *channel_failure_path;	/* what fd 3 sockets connect to */
static unsigned channel_death_reads = CHANNEL_DEATH;
static struct table channel_by_addr;	/* fd 3 sender address -> instance */
static struct table channel_by_pid;	/* notify=systemd main pid -> instance */
struct channel_stats channel_stats;

static void	channel_failure_cb(struct ev_loop *, ev_io *, int);
static void	channel_notify_cb(struct ev_loop *, ev_io *, int);
static void	channel_legacy_cb(struct ev_loop *, ev_io *, int);

void
channel_init(void)
{
	table_init(&channel_by_addr);
	table_init(&channel_by_pid);
	ev_init(&channel_failure.w, channel_failure_cb);
	ev_init(&channel_notify.w, channel_notify_cb);
}

/* The path a socket of STATE_DIR is bound at (NULL if it is too long). */
static char *
channel_path(const char *name)
{
	char *p = str_printf("%s/%s", opts.state_dir, name);

	if (p != NULL && strlen(p) >= sizeof ((struct sockaddr_un *)0)->sun_path) {
		free(p);
		return NULL;
	}
	return p;
}

/* The socket of STATE_DIR that NOTIFY_SOCKET names (NULL: none). */
const char *
channel_notify_path(void)
{
	static char *path;

	if (path == NULL)
		path = channel_path(channel_notify.name);
	return channel_notify.fd == -1 ? NULL : path;
}

/* s is bound or handed over (a re-exec, the fd store): watch it. */
static void
channel_watch(struct channel_sock *s)
{
	int zero = 0;

	/*
	 * fd 3 has no use for passed fds, and closing one may block the loop
	 * for as long as its sender likes (a TCP socket with SO_LINGER and a
	 * full send queue; a FUSE file whose daemon never answers FLUSH):
	 * the kernel refuses them, where it can (review of issue 12, C4).
	 * NOTIFY_SOCKET still takes them: BARRIER=1 passes a pipe.
	 */
#ifdef SO_PASSRIGHTS
	if (s == &channel_failure)
		(void)setsockopt(s->fd, SOL_SOCKET, SO_PASSRIGHTS, &zero,
		    sizeof zero);
#endif
	ev_io_set(&s->w, s->fd, EV_READ);
	ev_io_start(ward_loop, &s->w);
}

/*
 * Bind s afresh at STATE_DIR/name: what a previous wardd left there is
 * replaced (STATE_DIR is root's: no other user can have put it there). The
 * socket is made with the umask's mode (no write for others, so nobody can
 * connect yet), then given its own through the directory fd.
 */
static int
channel_bind(struct channel_sock *s)
{
	struct sockaddr_un sun;
	char *path;
	int one = 1;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if ((path = channel_path(s->name)) == NULL) {
		log_warnx("%s/%s: the path is too long for a socket (use a "
		    "shorter --state-dir)", opts.state_dir, s->name);
		return -1;
	}
	strcpy(sun.sun_path, path);
	free(path);
	(void)unlinkat(statedir_dirfd(), s->name, 0);
	s->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd == -1 ||
	    setsockopt(s->fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) == -1 ||
	    bind(s->fd, (struct sockaddr *)&sun, sizeof sun) == -1 ||
	    fchmodat(statedir_dirfd(), s->name, s->mode, 0) == -1) {
		log_warn("%s", sun.sun_path);
		if (s->fd != -1)
			close(s->fd);
		s->fd = -1;
		return -1;
	}
	channel_watch(s);
	return 0;
}

/*
 * How many datagrams a socket's queue can hold: net.unix.max_dgram_qlen
 * (+1), which systemd raises to 512 at boot, so a payload flooding fd 3
 * keeps more than CHANNEL_DEATH ahead of another's last words (review of
 * issue 12, C1). Read at start: the sockets take it when they are made.
 */
static void
channel_qlen(void)
{
	char buf[32];
	unsigned long q;
	ssize_t n;
	int fd;

	if ((fd = open("/proc/sys/net/unix/max_dgram_qlen", O_RDONLY |
	    O_CLOEXEC)) == -1)
		return;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	q = strtoul(buf, NULL, 10);
	if (q + 1 > channel_death_reads)
		channel_death_reads = q + 1 < CHANNEL_DEATH_MAX ? q + 1 :
		    CHANNEL_DEATH_MAX;
}

/*
 * At start, after a restore: bind what the state did not bring. Without
 * the failure socket fd 3 is /dev/null (spawn.c); without the notify one,
 * notify=systemd instances cannot start.
 */
void
channel_open(void)
{
	channel_qlen();
	if (channel_failure.fd == -1)
		(void)channel_bind(&channel_failure);
	if (channel_notify.fd == -1)
		(void)channel_bind(&channel_notify);
	free(channel_failure_path);
	channel_failure_path = channel_path(channel_failure.name);
}

/* At exit: the paths stay (a new wardd replaces them), the fds go. */
void
channel_close(void)
{
	struct channel_sock *s[] = { &channel_failure, &channel_notify };
	size_t k;

	for (k = 0; k < 2; k++) {
		if (s[k]->fd == -1)
			continue;
		ev_io_stop(ward_loop, &s[k]->w);
		fd_close_watched(s[k]->fd);
		s[k]->fd = -1;
	}
	table_free(&channel_by_addr);
	table_free(&channel_by_pid);
}

/* ---- an instance's part */

/*
 * The sockets of i's next run: *fd4 the child's end of its notify stream
 * (wardd's end, non-blocking, is i->notify_fd), *fd3 its failure socket,
 * connected and named in channel_by_addr. The caller closes the child's
 * ends once the child has them. -1 with e set (EMFILE and ENFILE are
 * resource_exhausted).
 */
int
channel_spawn(struct instance *i, int *fd3, int *fd4, struct ward_err *e)
{
	struct sockaddr_un sun;
	socklen_t len = sizeof sun;
	sa_family_t af = AF_UNIX;
	int sp[2], fd = -1;

	*fd3 = *fd4 = -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == -1)
		goto fail;
	i->notify_fd = sp[0];
	*fd4 = sp[1];
	if (fcntl(sp[0], F_SETFL, O_NONBLOCK) == -1)
		goto fail;
	if (channel_failure.fd == -1 || channel_failure_path == NULL) {
		/* No socket (logged at start): fd 3 is /dev/null. */
		if ((*fd3 = open("/dev/null", O_WRONLY | O_CLOEXEC)) == -1)
			goto fail;
		return 0;
	}
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, channel_failure_path);
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&af, sizeof af) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sun, &len) == -1)
		goto fail;
	len -= offsetof(struct sockaddr_un, sun_path);
	if (len < 2 || len > sizeof i->chan_addr) {
		errno = EPROTO;	/* not an autobound name */
		goto fail;
	}
	memcpy(i->chan_addr, sun.sun_path, len);
	i->chan_addr_len = len;
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, channel_failure_path);
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1)
		goto fail;
	channel_adopt(i);	/* indexed by its address */
	*fd3 = fd;
	return 0;

fail:
	ward_err_errno(e, NULL, "cannot make the fd 3 and 4 sockets of '%s'",
	    i->spec.name);
	if (errno == EMFILE || errno == ENFILE)
		e->code = WARD_E_RESOURCE_EXHAUSTED;
	if (fd != -1)
		close(fd);
	i->chan_addr_len = 0;
	if (*fd4 != -1) {
		close(*fd4);
		*fd4 = -1;
		close(i->notify_fd);
		i->notify_fd = -1;
	}
	return -1;
}

/* i runs (or came back running from a state): index it for its
 * datagrams, and watch the socket of its own an older wardd made. */
void
channel_adopt(struct instance *i)
{
	if (i->sd_fd != -1 && !ev_is_active(&i->sd_w)) {
		ev_io_init(&i->sd_w, channel_legacy_cb, i->sd_fd, EV_READ);
		ev_io_start(ward_loop, &i->sd_w);
	}
	if (i->chan_addr_len > 0 && !i->chan_indexed)
		i->chan_indexed = table_insert(&channel_by_addr, &i->by_chan,
		    i->chan_addr, i->chan_addr_len) == 0;
	if (i->spec.notify_systemd && i->pid > 0 && !i->pid_indexed)
		i->pid_indexed = table_insert(&channel_by_pid, &i->by_pid,
		    &i->pid, sizeof i->pid) == 0;
}

/* i's run is over: its datagrams from now on are nobody's. */
void
channel_release(struct instance *i)
{
	if (i->sd_fd != -1) {
		ev_io_stop(ward_loop, &i->sd_w);
		fd_close_watched(i->sd_fd);	/* it may be in the fd store too */
		i->sd_fd = -1;
	}
	if (i->chan_indexed)
		table_remove(&channel_by_addr, &i->by_chan);
	if (i->pid_indexed)
		table_remove(&channel_by_pid, &i->by_pid);
	i->chan_indexed = i->pid_indexed = 0;
	i->chan_addr_len = 0;
}

/* ---- reading */

/* Close every fd a datagram brought, whoever sent it (issue 9, finding
 * 14: wardd keeps none; systemd-notify's BARRIER=1 waits for the close). */
static const struct ucred *
channel_control(struct msghdr *mh)
{
	const struct ucred *cred = NULL;
	struct cmsghdr *cm;
	size_t k, nfds;
	int fd;

	for (cm = CMSG_FIRSTHDR(mh); cm != NULL; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET)
			continue;
		if (cm->cmsg_type == SCM_CREDENTIALS &&
		    cm->cmsg_len == CMSG_LEN(sizeof *cred))
			cred = (const struct ucred *)CMSG_DATA(cm);
		else if (cm->cmsg_type == SCM_RIGHTS) {
			nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (k = 0; k < nfds; k++) {
				memcpy(&fd, CMSG_DATA(cm) + k * sizeof(int),
				    sizeof fd);
				closer_dispose(fd);	/* never waits */
			}
		}
	}
	return cred;
}

/* The running notify=systemd instance pid speaks for: its main process,
 * or a process of the session it leads (every child starts its own). */
static struct instance *
channel_sender(pid_t pid)
{
	struct table_node *n;
	pid_t sid;

	if (pid <= 0)
		return NULL;
	if ((n = table_find(&channel_by_pid, &pid, sizeof pid)) == NULL) {
		if ((sid = getsid(pid)) == -1 || sid == pid ||
		    (n = table_find(&channel_by_pid, &sid, sizeof sid)) == NULL)
			return NULL;
	}
	return (struct instance *)((char *)n - offsetof(struct instance, by_pid));
}

/*
 * Read up to max datagrams from s. A datagram's instance: by its sender's
 * address (fd 3), by its sender's credentials (NOTIFY_SOCKET), or the
 * instance a legacy per-instance socket belongs to (fixed). Returns the
 * datagrams read.
 */
static unsigned
channel_read(int fd, int failure, struct instance *fixed, unsigned max)
{
	static char buf[CHANNEL_DGRAM_MAX];	/* one loop: one reader */
	union {		/* aligned for struct cmsghdr */
		struct cmsghdr	 hdr;
		char		 space[CMSG_SPACE(sizeof(struct ucred)) +
				    CMSG_SPACE(sizeof(int) * CHANNEL_MAX_FDS)];
	} cbuf;
	const struct ucred *cred;
	struct sockaddr_un from;
	struct table_node *tn;
	struct instance *i;
	struct msghdr mh;
	struct iovec iov;
	unsigned reads;
	ssize_t n;

	for (reads = 0; reads < max; reads++) {
		memset(&mh, 0, sizeof mh);
		iov.iov_base = buf;
		iov.iov_len = failure ? sizeof buf : SDNOTIFY_MAX + 1;
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_name = &from;
		mh.msg_namelen = sizeof from;
		mh.msg_control = cbuf.space;
		mh.msg_controllen = sizeof cbuf.space;
		n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_TRUNC |
		    MSG_CMSG_CLOEXEC);
		if (n == -1) {
			if (errno != EAGAIN && errno != EINTR)
				log_warn("channel socket");
			break;
		}
		/* First, before the datagram is read: passed fds are closed. */
		cred = channel_control(&mh);
		if (failure) {
			i = NULL;
			/* A sender without an address (only root can connect
			 * one here) has a msg_namelen of 0, not of 2. */
			if (mh.msg_namelen > offsetof(struct sockaddr_un,
			    sun_path) && (tn = table_find(&channel_by_addr,
			    from.sun_path, mh.msg_namelen -
			    offsetof(struct sockaddr_un, sun_path))) != NULL)
				i = (struct instance *)((char *)tn -
				    offsetof(struct instance, by_chan));
			if (i == NULL) {
				channel_stats.failure_dropped++;
				continue;
			}
			exit_failure_add(i, buf, (size_t)n > sizeof buf ?
			    sizeof buf : (size_t)n, (size_t)n > sizeof buf ?
			    (size_t)n - sizeof buf : 0);
			continue;
		}
		if (fixed != NULL)
			i = cred != NULL && notify_sd_sender_ok(fixed, cred->pid) ?
			    fixed : NULL;
		else
			i = cred != NULL ? channel_sender(cred->pid) : NULL;
		if (i == NULL) {
			if (fixed != NULL)
				fixed->sd_dropped++;
			else
				channel_stats.notify_dropped++;
			continue;
		}
		notify_sd_message(i, buf, n, mh.msg_flags);
		if (fixed != NULL && (fixed->state != INSTANCE_RUNNING ||
		    fixed->sd_fd == -1))
			break;	/* a WATCHDOG=trigger may have ended it */
	}
	return reads;
}

static void
channel_failure_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)channel_read(channel_failure.fd, 1, NULL, CHANNEL_TURN);
}

static void
channel_notify_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)channel_read(channel_notify.fd, 0, NULL, CHANNEL_TURN);
}

/* A NOTIFY_SOCKET of i's own, an older wardd's (it made one per
 * instance), read back from its state: read until the run ends. */
static void
channel_read_legacy(struct instance *i)
{
	if (i->sd_fd != -1)
		(void)channel_read(i->sd_fd, 0, i, CHANNEL_DEATH);
}

static void
channel_legacy_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	channel_read_legacy((struct instance *)((char *)w -
	    offsetof(struct instance, sd_w)));
}

/*
 * i has died: what it wrote before it exited is queued (see the top), so
 * read it now, before the death is recorded: a payload that writes its
 * failure or sends EXIT_STATUS= and exits must not lose the race with its
 * own pidfd.
 */
void
channel_drain(struct instance *i)
{
	if (i->chan_indexed && channel_failure.fd != -1)
		(void)channel_read(channel_failure.fd, 1, NULL,
		    channel_death_reads);
	if (i->pid_indexed && channel_notify.fd != -1)
		(void)channel_read(channel_notify.fd, 0, NULL,
		    channel_death_reads);
	channel_read_legacy(i);
}

/* ---- across a re-exec and in the fd store */

void
channel_save(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 2);
	state_pack_kv_fd(pk, "failure_fd", channel_failure.fd);
	state_pack_kv_fd(pk, "notify_fd", channel_notify.fd);
}

/* The sockets handed over (NULL: an older state; channel_open binds). */
void
channel_restore(const msgpack_object *m)
{
	if (m == NULL)
		return;
	if ((channel_failure.fd = state_fd(m, "failure_fd")) != -1)
		channel_watch(&channel_failure);
	if ((channel_notify.fd = state_fd(m, "notify_fd")) != -1)
		channel_watch(&channel_notify);
}

void
channel_fds(fd_visit_fn fn, void *arg)
{
	if (channel_failure.fd != -1)
		fn(channel_failure.fd, "channel: STATE_DIR/failure (fd 3)", arg);
	if (channel_notify.fd != -1)
		fn(channel_notify.fd, "channel: STATE_DIR/notify", arg);
}
