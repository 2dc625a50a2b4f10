/*
 * conn.c: one client connection: its buffers, msgpack framing and the one
 * teardown path. Input is scanned (codec_scan) before it is unpacked; each
 * complete message goes to cmd_dispatch. Output is queued and written when
 * the socket is writable; write interest is on only while output is queued.
 * A conn is freed only by conn_lost, and conn_lost runs only at the end of
 * the conn's own callbacks, so no one else ever holds a freed conn.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"

#define CONN_READ_CHUNK		65536
#define CONN_LINGER_S		5.0	/* closing: how long to wait on a peer */

struct conn_list conns = TAILQ_HEAD_INITIALIZER(conns);
unsigned conn_count;

static void	conn_read_cb(struct ev_loop *, ev_io *, int);
static void	conn_write_cb(struct ev_loop *, ev_io *, int);
static void	conn_linger_cb(struct ev_loop *, ev_timer *, int);

#define container_of(p, type, member) \
	((type *)((char *)(p) - offsetof(type, member)))

/* Takes ownership of fd and groups. */
struct conn *
conn_new(int fd, uid_t uid, gid_t gid, pid_t pid, gid_t *groups, int ngroups)
{
	struct conn *c;

	if ((c = calloc(1, sizeof *c)) == NULL) {
		close(fd);
		free(groups);
		return NULL;
	}
	c->fd = fd;
	c->uid = uid;
	c->gid = gid;
	c->pid = pid;
	c->groups = groups;
	c->ngroups = ngroups;
	c->admin = uid == 0 || uid == opts.uid;
	ev_io_init(&c->rw, conn_read_cb, fd, EV_READ);
	ev_io_init(&c->ww, conn_write_cb, fd, EV_WRITE);
	ev_timer_init(&c->linger, conn_linger_cb, CONN_LINGER_S, 0.);
	ev_io_start(ward_loop, &c->rw);
	TAILQ_INSERT_TAIL(&conns, c, entry);
	conn_count++;
	log_debug("client connected: fd %d uid %u pid %d", fd, (unsigned)uid,
	    (int)pid);
	return c;
}

int
conn_count_uid(uid_t uid)
{
	struct conn *c;
	int n = 0;

	TAILQ_FOREACH(c, &conns, entry) {
		if (c->uid == uid)
			n++;
	}
	return n;
}

/* Close received fds that arrived before offset end (all, with UINT64_MAX). */
static void
conn_fds_drop(struct conn *c, uint64_t end)
{
	struct conn_fds *f;
	int k;

	while ((f = c->fds) != NULL && f->at < end) {
		c->fds = f->next;
		for (k = 0; k < f->n; k++)
			close(f->fds[k]);
		free(f);
	}
}

/* The one teardown path. c is freed: do not touch it after this returns. */
static void
conn_lost(struct conn *c)
{
	log_debug("client gone: fd %d uid %u", c->fd, (unsigned)c->uid);
	event_unsubscribe(c);
	output_unfollow_conn(c);
	ev_io_stop(ward_loop, &c->rw);
	ev_io_stop(ward_loop, &c->ww);
	ev_timer_stop(ward_loop, &c->linger);
	close(c->fd);
	TAILQ_REMOVE(&conns, c, entry);
	conn_count--;
	conn_fds_drop(c, UINT64_MAX);
	buf_free(&c->in);
	buf_free(&c->out);
	free(c->groups);
	free(c);
	server_conn_closed();
}

/* msgpack_packer callback: append to c's output, remembering a failure. */
static int
conn_pack_write(void *data, const char *p, size_t n)
{
	struct conn *c = data;

	/* Closing: the last message (error or overflow) is already queued. */
	if (c->broken || c->closing)
		return -1;
	if (buf_append(&c->out, p, n) == -1) {
		/* A half-packed message would corrupt the stream: give up on c. */
		c->broken = 1;
		return -1;
	}
	return 0;
}

msgpack_packer *
conn_packer(struct conn *c, msgpack_packer *pk)
{
	msgpack_packer_init(pk, c, conn_pack_write);
	return pk;
}

void
conn_queue(struct conn *c, const void *p, size_t n)
{
	conn_pack_write(c, p, n);
}

/*
 * Write what can be written now without blocking; leave the rest to the
 * write watcher. Never frees c: failures are left for c's callbacks.
 */
void
conn_flush(struct conn *c)
{
	ssize_t n;

	while (!c->broken && buf_used(&c->out) > 0) {
		n = send(c->fd, c->out.data + c->out.off, buf_used(&c->out),
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			buf_consume(&c->out, n);
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK)
			c->broken = 1;
		break;
	}
	/* Broken or not done: the write callback finishes the job. */
	if (c->broken || buf_used(&c->out) > 0 || c->closing)
		ev_io_start(ward_loop, &c->ww);
	/* Reading resumes once a backed-up peer has drained half its output. */
	if (!c->closing && !c->broken && !ev_is_active(&c->rw) &&
	    buf_used(&c->out) < CONN_OUT_CAP / 2) {
		ev_io_start(ward_loop, &c->rw);
		/* Requests already buffered would otherwise wait for new input. */
		if (buf_used(&c->in) > 0)
			ev_feed_event(ward_loop, &c->rw, EV_READ);
	}
}

/* Stop reading; close once the output is written (or the linger expires). */
void
conn_close_after_flush(struct conn *c)
{
	c->closing = 1;
	ev_io_stop(ward_loop, &c->rw);
	ev_timer_start(ward_loop, &c->linger);
	ev_io_start(ward_loop, &c->ww);
}

/* [2, "ward.error", [{code, message}]] and close: the stream is unusable. */
void
conn_protocol_error(struct conn *c, const char *code, const char *fmt, ...)
{
	msgpack_packer pk;
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_info("client uid %u pid %d: %s: closing", (unsigned)c->uid,
	    (int)c->pid, msg);
	conn_packer(c, &pk);
	msgpack_pack_array(&pk, 3);
	msgpack_pack_int(&pk, WARD_MSG_NOTIFY);
	codec_pack_str(&pk, WARD_N_ERROR);
	msgpack_pack_array(&pk, 1);
	msgpack_pack_map(&pk, 2);
	codec_pack_kv_str(&pk, "code", code);
	codec_pack_kv_str(&pk, "message", msg);
	conn_close_after_flush(c);
}

/* Handle every complete message in c->in. */
static void
conn_process(struct conn *c)
{
	struct scan_error err;
	msgpack_unpacked msg;
	struct conn_fds *f;
	size_t len, off;

	while (!c->closing && !c->broken && buf_used(&c->in) > 0) {
		switch (codec_scan(c->in.data + c->in.off, buf_used(&c->in), &len,
		    &err)) {
		case SCAN_MORE:
			if (buf_used(&c->in) >= WARD_MAX_REQUEST)
				conn_protocol_error(c, WARD_E_TOO_LARGE,
				    "request is over %d bytes", WARD_MAX_REQUEST);
			return;
		case SCAN_ERROR:
			conn_protocol_error(c, err.code, "%s", err.message);
			return;
		case SCAN_COMPLETE:
			break;
		}
		msgpack_unpacked_init(&msg);
		off = 0;
		if (msgpack_unpack_next(&msg, c->in.data + c->in.off, len, &off) !=
		    MSGPACK_UNPACK_SUCCESS || off != len) {
			msgpack_unpacked_destroy(&msg);
			conn_protocol_error(c, WARD_E_PROTOCOL,
			    "cannot unpack msgpack message");
			return;
		}
		/* This message's fds: those received with one of its bytes. */
		f = c->fds != NULL && c->fds->at < c->in_base + len ? c->fds : NULL;
		cmd_dispatch(c, &msg.data, f ? f->fds : NULL, f ? f->n : 0);
		msgpack_unpacked_destroy(&msg);
		buf_consume(&c->in, len);
		c->in_base += len;
		conn_fds_drop(c, c->in_base);	/* untaken or stray: closed */
		/* A peer that does not read its replies is not read either. */
		if (buf_used(&c->out) >= CONN_OUT_CAP) {
			ev_io_stop(ward_loop, &c->rw);
			break;
		}
	}
}

/*
 * recv with room for passed fds. A read that returns fds ends inside the
 * sendmsg that carried them (the kernel stops a stream read right after
 * the skb holding fds), so they are queued at the stream offset of the
 * chunk's last byte: they belong to the message holding that byte.
 * libward sends each request with its fds in one sendmsg. A truncated set
 * (MSG_CTRUNC: too many, or wardd is out of fds) is refused.
 */
static ssize_t
conn_recv(struct conn *c, char *chunk, size_t len)
{
	char cbuf[CMSG_SPACE(sizeof(int) * REQUEST_MAX_FDS)];
	struct conn_fds *f, **fp;
	struct cmsghdr *cm;
	struct msghdr mh;
	struct iovec iov;
	ssize_t n;
	int k, nf;

	memset(&mh, 0, sizeof mh);
	iov.iov_base = chunk;
	iov.iov_len = len;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof cbuf;
	n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n == -1)
		return -1;
	for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		nf = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if ((f = calloc(1, sizeof *f)) == NULL) {
			for (k = 0; k < nf; k++)
				close(((int *)CMSG_DATA(cm))[k]);
			c->fds_lost = 1;
			continue;
		}
		f->at = c->in_base + buf_used(&c->in) + (n > 0 ? n - 1 : 0);
		f->n = nf;
		memcpy(f->fds, CMSG_DATA(cm), nf * sizeof(int));
		for (fp = &c->fds; *fp != NULL; fp = &(*fp)->next)
			;
		*fp = f;
	}
	if (mh.msg_flags & MSG_CTRUNC)
		c->fds_lost = 1;
	return n;
}

static void
conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = container_of(w, struct conn, rw);
	char chunk[CONN_READ_CHUNK];
	ssize_t n;
	int reads, eof = 0;

	for (reads = 0; reads < 4; reads++) {
		n = conn_recv(c, chunk, sizeof chunk);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n == -1) {
			conn_lost(c);
			return;
		}
		if (n == 0) {
			/* Half-closed: answer what was sent, then close. */
			eof = 1;
			break;
		}
		if (buf_append(&c->in, chunk, n) == -1) {
			conn_protocol_error(c, WARD_E_INTERNAL, "out of memory");
			break;
		}
		if (c->fds_lost) {
			conn_protocol_error(c, WARD_E_TOO_LARGE, "file descriptors "
			    "passed with a request were truncated (at most %d per "
			    "request, and wardd must have fds to spare)",
			    REQUEST_MAX_FDS);
			break;
		}
		if ((size_t)n < sizeof chunk)
			break;
	}
	conn_process(c);
	if (eof && !c->closing)
		conn_close_after_flush(c);
	conn_flush(c);
	if (c->broken || (c->closing && buf_used(&c->out) == 0))
		conn_lost(c);
}

static void
conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = container_of(w, struct conn, ww);

	conn_flush(c);
	if (c->broken || (c->closing && buf_used(&c->out) == 0)) {
		conn_lost(c);
		return;
	}
	if (buf_used(&c->out) == 0)
		ev_io_stop(loop, &c->ww);
}

static void
conn_linger_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	conn_lost(container_of(t, struct conn, linger));
}

/* At exit: one last non-blocking write to each client, then close. */
void
conn_close_all(void)
{
	struct conn *c;

	while ((c = TAILQ_FIRST(&conns)) != NULL) {
		conn_flush(c);
		conn_lost(c);
	}
}
