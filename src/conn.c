/*
 * conn.c: one client connection: its buffers, msgpack framing and the one
 * teardown path. Input is scanned (codec_scan) before it is unpacked; each
 * complete message goes to the dispatch function the listener gave it
 * (cmd.c's, wired by wardd.c). Features that keep state per connection
 * attach it (conn_attach) and are told when the connection goes, so this
 * file names no feature. Output is queued and written when
 * the socket is writable; write interest is on only while output is queued.
 * A conn is freed only by conn_lost, and conn_lost runs only at the end of
 * the conn's own callbacks, so no one else ever holds a freed conn.
 *
 * Its lifecycle is enum conn_state (ward.h): OPEN, then CLOSING (flush the
 * last answers) or BROKEN (send nothing more), then LOST; every move goes
 * through conn_set_state, which refuses the others. Other modules ask
 * conn_is_open, never the state's details.
 *
 * Memory is bounded (conn_update decides when a client is read): unparsed
 * input holds at most one maximal request (CONN_IN_MAX); a client with
 * CONN_OUT_CAP of answers unsent is not read until it drains half of them,
 * nor is any client whose uid's connections hold their whole buffer budget
 * (budget.c, --max-user-buffer). A client left unread that way and making
 * no progress for CONN_STALL_S is closed.
 *
 * layer: transport (calls budget.c, codec.c, peer.c and base; nothing above:
 * requests leave through c->dispatch)
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"

#define CONN_READ_CHUNK		65536

static void	conn_out_fds_drop(struct conn *);
#define CONN_LINGER_S		5.0	/* past OPEN: how long to wait on a peer */

struct conn_list conns = TAILQ_HEAD_INITIALIZER(conns);
unsigned conn_count;

static void	conn_read_cb(struct ev_loop *, ev_io *, int);
static void	conn_write_cb(struct ev_loop *, ev_io *, int);
static void	conn_linger_cb(struct ev_loop *, ev_timer *, int);
static void	conn_stall_cb(struct ev_loop *, ev_timer *, int);

/* Conns not read because their uid's buffers are full: woken when not. */
static TAILQ_HEAD(, conn) conns_starved = TAILQ_HEAD_INITIALIZER(conns_starved);

#define container_of(p, type, member) \
	((type *)((char *)(p) - offsetof(type, member)))

/*
 * Takes ownership of fd and of peer's groups, and of the BUDGET_CONNS count
 * the caller (server.c) took for the peer's uid: conn_lost gives it back,
 * or this on failure. Each complete request goes to dispatch; lost is
 * called once the conn is gone.
 */
struct conn *
conn_new(int fd, const struct peer *peer, conn_dispatch_fn dispatch,
    void (*lost)(void))
{
	struct conn *c;

	if ((c = calloc(1, sizeof *c)) == NULL) {
		close(fd);
		free(peer->groups);
		budget_give(peer->uid, BUDGET_CONNS, 1);
		return NULL;
	}
	c->fd = fd;
	c->peer = *peer;
	c->dispatch = dispatch;
	c->lost = lost;
	LIST_INIT(&c->attachments);
	ev_io_init(&c->rw, conn_read_cb, fd, EV_READ);
	ev_io_init(&c->ww, conn_write_cb, fd, EV_WRITE);
	ev_timer_init(&c->linger, conn_linger_cb, CONN_LINGER_S, 0.);
	ev_init(&c->stall, conn_stall_cb);
	c->stall.repeat = CONN_STALL_S;
	ev_io_start(ward_loop, &c->rw);
	TAILQ_INSERT_TAIL(&conns, c, entry);
	conn_count++;
	log_debug("client connected: fd %d uid %u pid %d", fd,
	    (unsigned)peer->uid, (int)peer->pid);
	return c;
}

/* Hang a feature's state a on c; detach is called when c goes. */
void
conn_attach(struct conn *c, struct conn_attachment *a,
    void (*detach)(struct conn *, struct conn_attachment *))
{
	a->detach = detach;
	LIST_INSERT_HEAD(&c->attachments, a, entry);
}

/* Take a off c, the feature having let go of it itself (no callback). */
void
conn_detach(struct conn *c, struct conn_attachment *a)
{
	LIST_REMOVE(a, entry);
}

/*
 * The attachments of one feature (those with this detach), after prev
 * (NULL: from the first). The list must not change while it is walked.
 */
struct conn_attachment *
conn_attachment_next(struct conn *c, struct conn_attachment *prev,
    void (*detach)(struct conn *, struct conn_attachment *))
{
	struct conn_attachment *a;

	a = prev == NULL ? LIST_FIRST(&c->attachments) : LIST_NEXT(prev, entry);
	while (a != NULL && a->detach != detach)
		a = LIST_NEXT(a, entry);
	return a;
}

/*
 * Close received fds that arrived before offset end (all, with UINT64_MAX),
 * and give them back to the uid's fd budget.
 */
static void
conn_fds_drop(struct conn *c, uint64_t end)
{
	struct conn_fds *f;
	int k;

	while ((f = c->fds) != NULL && f->at < end) {
		c->fds = f->next;
		for (k = 0; k < f->n; k++)
			closer_dispose(f->fds[k]);	/* never waits */
		budget_give(c->peer.uid, BUDGET_FDS, f->n);
		free(f);
	}
}

/* Whether c's uid's connections hold their whole buffer budget. */
static int
conn_uid_full(const struct conn *c)
{
	return !c->peer.admin && budget_used(c->peer.uid, BUDGET_BUFFER) >=
	    budget_limit(c->peer.uid, BUDGET_BUFFER);
}

/* Resume the starved conns of uid, if its buffers are under budget again. */
static void
conn_wake_starved(uid_t uid)
{
	struct conn *c, *next;

	if (TAILQ_EMPTY(&conns_starved) || budget_used(uid, BUDGET_BUFFER) >=
	    budget_limit(uid, BUDGET_BUFFER))
		return;
	TAILQ_FOREACH_SAFE(c, &conns_starved, starved_entry, next) {
		if (c->peer.uid == uid)
			conn_update(c);
	}
}

/*
 * Keep c's uid's buffer count equal to what c's buffers have allocated
 * (their capacity: that is the memory). Never frees c.
 */
void
conn_charge(struct conn *c)
{
	size_t now = c->in.cap + c->out.cap;

	if (now == c->charged)
		return;
	/* c holds a BUDGET_CONNS count: its uid's node exists. */
	if (now > c->charged) {
		(void)budget_charge(c->peer.uid, BUDGET_BUFFER, now - c->charged);
		c->charged = now;
		return;
	}
	budget_give(c->peer.uid, BUDGET_BUFFER, c->charged - now);
	c->charged = now;
	conn_wake_starved(c->peer.uid);
}

/*
 * Whether c's requests must wait: its answers are over its output budget
 * (until they drain to half), or its uid's connections hold their whole
 * buffer budget.
 */
static int
conn_must_wait(struct conn *c)
{
	if (buf_used(&c->out) >= CONN_OUT_CAP)
		c->backed_up = 1;
	else if (buf_used(&c->out) < CONN_OUT_CAP / 2)
		c->backed_up = 0;
	return c->backed_up || conn_uid_full(c);
}

/*
 * The one place that decides whether c is read. Not read: while its
 * requests must wait (conn_must_wait) or it holds a whole request unparsed;
 * then the stall timer runs (conn_flush restarts it on progress). Read
 * again: at once, with what is already buffered handled first. Never
 * frees c.
 */
void
conn_update(struct conn *c)
{
	int starved = 0, wait;

	if (c->state != CONN_OPEN) {
		ev_io_stop(ward_loop, &c->rw);
		ev_timer_stop(ward_loop, &c->stall);
	} else {
		wait = conn_must_wait(c);
		starved = wait && !c->backed_up;
		if (wait || buf_used(&c->in) >= CONN_IN_MAX) {
			ev_io_stop(ward_loop, &c->rw);
			if (!ev_is_active(&c->stall))
				ev_timer_again(ward_loop, &c->stall);
		} else {
			ev_timer_stop(ward_loop, &c->stall);
			if (!ev_is_active(&c->rw)) {
				ev_io_start(ward_loop, &c->rw);
				/* Buffered requests would otherwise wait for input. */
				if (buf_used(&c->in) > 0)
					ev_feed_event(ward_loop, &c->rw, EV_READ);
			}
		}
	}
	if (starved && !c->starved)
		TAILQ_INSERT_TAIL(&conns_starved, c, starved_entry);
	else if (!starved && c->starved)
		TAILQ_REMOVE(&conns_starved, c, starved_entry);
	c->starved = starved;
}

static const char *const conn_state_names[] = {
	[CONN_OPEN] = "open",
	[CONN_CLOSING] = "closing",
	[CONN_BROKEN] = "broken",
	[CONN_LOST] = "lost",
};

/* Where each state may go (a bit per state); no state goes back to OPEN. */
static const unsigned conn_state_next[] = {
	[CONN_OPEN] = 1U << CONN_CLOSING | 1U << CONN_BROKEN | 1U << CONN_LOST,
	[CONN_CLOSING] = 1U << CONN_BROKEN | 1U << CONN_LOST,
	[CONN_BROKEN] = 1U << CONN_LOST,
	[CONN_LOST] = 0,
};

/*
 * The one place c's state changes; a move enum conn_state does not allow
 * is a bug. Leaving OPEN stops reading for good and starts what ends the
 * conn: the write watcher (flush, or find the failure) and the linger
 * timer, so no state but OPEN lasts unbounded. LOST is conn_lost's to
 * finish. Never frees c.
 */
void
conn_set_state(struct conn *c, enum conn_state s)
{
	enum conn_state old = c->state;

	if (!(conn_state_next[old] & 1U << s))
		fatalx("conn fd %d: %s -> %s is not a move it can make", c->fd,
		    conn_state_names[old], conn_state_names[s]);
	c->state = s;
	log_debug("client fd %d uid %u: %s -> %s", c->fd, (unsigned)c->peer.uid,
	    conn_state_names[old], conn_state_names[s]);
	if (s == CONN_LOST)
		return;
	conn_update(c);		/* not read any more, not stalled */
	ev_timer_start(ward_loop, &c->linger);
	ev_io_start(ward_loop, &c->ww);
}

/* Whether c still takes answers and requests: not closing, broken or lost. */
int
conn_is_open(const struct conn *c)
{
	return c->state == CONN_OPEN;
}

/* Whether c's own callback must tear it down now. */
static int
conn_done(const struct conn *c)
{
	return c->state == CONN_BROKEN ||
	    (c->state == CONN_CLOSING && buf_used(&c->out) == 0);
}

/*
 * The one teardown path, from any state but LOST: detach callbacks see c
 * LOST. c is freed: do not touch it after this returns.
 */
static void
conn_lost(struct conn *c)
{
	struct conn_attachment *a;
	void (*lost)(void) = c->lost;
	uid_t uid;

	log_debug("client gone: fd %d uid %u", c->fd, (unsigned)c->peer.uid);
	conn_set_state(c, CONN_LOST);
	while ((a = LIST_FIRST(&c->attachments)) != NULL) {
		LIST_REMOVE(a, entry);
		a->detach(c, a);	/* frees a */
	}
	ev_io_stop(ward_loop, &c->rw);
	ev_io_stop(ward_loop, &c->ww);
	ev_timer_stop(ward_loop, &c->linger);
	ev_timer_stop(ward_loop, &c->stall);
	if (c->starved)
		TAILQ_REMOVE(&conns_starved, c, starved_entry);
	close(c->fd);
	TAILQ_REMOVE(&conns, c, entry);
	conn_count--;
	conn_fds_drop(c, UINT64_MAX);
	conn_out_fds_drop(c);
	buf_free(&c->in);
	buf_free(&c->out);
	conn_charge(c);
	uid = c->peer.uid;
	budget_give(uid, BUDGET_CONNS, 1);
	peer_clear(&c->peer);
	free(c);
	conn_wake_starved(uid);
	if (lost != NULL)
		lost();
}

/* msgpack_packer callback: append to c's output, remembering a failure. */
static int
conn_pack_write(void *data, const char *p, size_t n)
{
	struct conn *c = data;

	/* Closing: the last message (error or overflow) is already queued. */
	if (c->state != CONN_OPEN)
		return -1;
	if (buf_append(&c->out, p, n) == -1) {
		/* A half-packed message would corrupt the stream: give up on c. */
		conn_set_state(c, CONN_BROKEN);
		return -1;
	}
	conn_charge(c);
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
 * Queue n pieces as one message. With nothing queued before them they are
 * sent at once, and only what the socket does not take is copied (a
 * follower's output is sent from the ring it was read into). The caller
 * then calls conn_flush, which deals with any failure.
 */
void
conn_queuev(struct conn *c, struct iovec *iov, int n)
{
	struct msghdr mh = { 0 };
	ssize_t sent = 0;
	int k;

	if (c->state == CONN_OPEN && buf_used(&c->out) == 0 &&
	    c->out_fds == NULL) {
		mh.msg_iov = iov;
		mh.msg_iovlen = n;
		sent = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (sent < 0)
			sent = 0;	/* conn_flush hears the error, if any */
		c->out_sent += sent;
		if (sent > 0 && ev_is_active(&c->stall))
			ev_timer_again(ward_loop, &c->stall);
	}
	for (k = 0; k < n; k++) {
		if ((size_t)sent >= iov[k].iov_len) {
			sent -= iov[k].iov_len;
			continue;
		}
		conn_pack_write(c, (const char *)iov[k].iov_base + sent,
		    iov[k].iov_len - sent);
		sent = 0;
	}
}

/*
 * fd rides on the next byte queued on c: the answer about to be packed
 * (instance.pidfd's). c owns fd from now on: it is closed once sent, or
 * with c. Counted in the uid's fd budget while c holds it.
 */
int
conn_queue_fd(struct conn *c, int fd)
{
	struct conn_fds *f, **fp;

	if ((f = calloc(1, sizeof *f)) == NULL) {
		close(fd);
		return -1;
	}
	f->at = c->out_sent + buf_used(&c->out);
	f->n = 1;
	f->fds[0] = fd;
	for (fp = &c->out_fds; *fp != NULL; fp = &(*fp)->next)
		;
	*fp = f;
	(void)budget_charge(c->peer.uid, BUDGET_FDS, 1);
	return 0;
}

/* The first queued answer fds: closed (sent, or c is going). */
static void
conn_out_fds_pop(struct conn *c)
{
	struct conn_fds *f = c->out_fds;
	int k;

	c->out_fds = f->next;
	for (k = 0; k < f->n; k++)
		close(f->fds[k]);	/* wardd's own (a pidfd): never a peer's */
	budget_give(c->peer.uid, BUDGET_FDS, f->n);
	free(f);
}

static void
conn_out_fds_drop(struct conn *c)
{
	while (c->out_fds != NULL)
		conn_out_fds_pop(c);
}

/*
 * Send at most len bytes of c's output. Queued fds go with the byte they
 * ride on (SCM_RIGHTS on a sendmsg starting there), so the bytes before it
 * are sent alone: the peer's recvmsg of that byte is the one that gets them.
 */
static ssize_t
conn_send(struct conn *c, size_t len)
{
	union {
		char		buf[CMSG_SPACE(sizeof(int) * REQUEST_MAX_FDS)];
		struct cmsghdr	align;
	} cbuf;
	struct conn_fds *f = c->out_fds;
	struct cmsghdr *cm;
	struct msghdr mh;
	struct iovec iov;
	ssize_t n;

	if (f != NULL && f->at > c->out_sent && f->at - c->out_sent < len)
		len = f->at - c->out_sent;
	if (f == NULL || f->at > c->out_sent)
		return send(c->fd, c->out.data + c->out.off, len,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
	/* Up to the next answer's fds: they ride on a sendmsg of their own. */
	if (f->next != NULL && f->next->at - c->out_sent < len)
		len = f->next->at - c->out_sent;
	memset(&mh, 0, sizeof mh);
	memset(&cbuf, 0, sizeof cbuf);
	iov.iov_base = c->out.data + c->out.off;
	iov.iov_len = len;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf.buf;
	mh.msg_controllen = CMSG_SPACE(sizeof(int) * f->n);
	cm = &cbuf.align;	/* the first header: the buffer is one */
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * f->n);
	memcpy(CMSG_DATA(cm), f->fds, sizeof(int) * f->n);
	if ((n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT)) > 0)
		conn_out_fds_pop(c);
	return n;
}

/*
 * Write what can be written now without blocking; leave the rest to the
 * write watcher. Never frees c: failures are left for c's callbacks.
 */
void
conn_flush(struct conn *c)
{
	ssize_t n;

	while (c->state != CONN_BROKEN && buf_used(&c->out) > 0) {
		n = conn_send(c, buf_used(&c->out));
		if (n > 0) {
			buf_consume(&c->out, n);
			c->out_sent += n;
			/* Progress: a slow reader is not a stalled one. */
			if (ev_is_active(&c->stall))
				ev_timer_again(ward_loop, &c->stall);
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK)
			conn_set_state(c, CONN_BROKEN);
		break;
	}
	/* Not done: the write callback finishes the job (past OPEN, it is on). */
	if (buf_used(&c->out) > 0)
		ev_io_start(ward_loop, &c->ww);
	conn_charge(c);
	/* Reading resumes once a backed-up peer has drained half its output. */
	conn_update(c);
}

/*
 * Stop reading; close once the output is written (or the linger expires).
 * A conn already past OPEN is on its way out already: nothing changes.
 */
void
conn_close_after_flush(struct conn *c)
{
	if (c->state == CONN_OPEN)
		conn_set_state(c, CONN_CLOSING);
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
	log_info("client uid %u pid %d: %s: closing", (unsigned)c->peer.uid,
	    (int)c->peer.pid, msg);
	conn_packer(c, &pk);
	msgpack_pack_array(&pk, 3);
	msgpack_pack_int(&pk, WARD_MSG_NOTIFY);
	codec_pack_str(&pk, WARD_N_ERROR);
	msgpack_pack_array(&pk, 1);
	msgpack_pack_map(&pk, 2);
	codec_pack_kv_str(&pk, "code", code);
	codec_pack_kv_text(&pk, "message", msg);
	conn_close_after_flush(c);
}

/* Handle every complete message in c->in. */
static void
conn_process(struct conn *c)
{
	struct ward_err err = WARD_ERR_INIT;
	msgpack_unpacked msg;
	struct conn_fds *f;
	size_t len, off;

	while (c->state == CONN_OPEN && buf_used(&c->in) > 0) {
		switch (codec_scan(c->in.data + c->in.off, buf_used(&c->in), &len,
		    &err)) {
		case SCAN_MORE:
			/* What is buffered is all one request may be. */
			if (buf_used(&c->in) >= CONN_IN_MAX)
				conn_protocol_error(c, WARD_E_TOO_LARGE,
				    "request is over %d bytes", WARD_MAX_REQUEST);
			return;
		case SCAN_ERROR:
			conn_protocol_error(c, err.code, "%s", err.msg);
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
		c->dispatch(c, &msg.data, f ? f->fds : NULL, f ? f->n : 0);
		msgpack_unpacked_destroy(&msg);
		buf_consume(&c->in, len);
		c->in_base += len;
		conn_fds_drop(c, c->in_base);	/* untaken or stray: closed */
		conn_charge(c);
		/*
		 * A peer that does not read its replies is not read either.
		 * Requests left in c->in: conn_update feeds them to the read
		 * callback when it starts the watcher again.
		 */
		if (conn_must_wait(c)) {
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
	int k, nf, over;

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
		/*
		 * Over the uid's fd budget by more than one request's worth:
		 * the request would be refused anyway (cmd.c checks the budget),
		 * and queueing more would let a client pile fds up in wardd.
		 */
		over = budget_used(c->peer.uid, BUDGET_FDS) + nf >
		    budget_limit(c->peer.uid, BUDGET_FDS) + REQUEST_MAX_FDS;
		if (over || (f = calloc(1, sizeof *f)) == NULL) {
			for (k = 0; k < nf; k++)
				closer_dispose(((int *)CMSG_DATA(cm))[k]);
			if (over)
				c->fds_over = 1;
			else
				c->fds_lost = 1;
			continue;
		}
		(void)budget_charge(c->peer.uid, BUDGET_FDS, nf);	/* c holds a conn */
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
	char chunk[CONN_READ_CHUNK], why[256];
	size_t room;
	ssize_t n;
	int reads, eof = 0;

	budget_reserve_serve(c->peer.admin);
	/* Fed to handle what is buffered: read only if still allowed to. */
	for (reads = 0; reads < 4 && ev_is_active(&c->rw); reads++) {
		/* Never more unparsed input than one request may be. */
		room = CONN_IN_MAX - buf_used(&c->in);
		if (room > sizeof chunk)
			room = sizeof chunk;
		if (room == 0 || conn_uid_full(c))
			break;
		n = conn_recv(c, chunk, room);
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
		conn_charge(c);
		if (c->fds_lost) {
			conn_protocol_error(c, WARD_E_TOO_LARGE, "file descriptors "
			    "passed with a request were truncated (at most %d per "
			    "request, and wardd must have fds to spare)",
			    REQUEST_MAX_FDS);
			break;
		}
		if (c->fds_over) {
			snprintf(why, sizeof why, "file descriptors passed with "
			    "requests are far over uid %u's budget of %" PRIu64
			    " (--max-user-fds); closing", (unsigned)c->peer.uid,
			    budget_limit(c->peer.uid, BUDGET_FDS));
			conn_protocol_error(c, WARD_E_RESOURCE_EXHAUSTED, "%s", why);
			break;
		}
		if ((size_t)n < room)
			break;
	}
	conn_process(c);
	if (eof)
		conn_close_after_flush(c);
	conn_flush(c);
	if (conn_done(c))
		conn_lost(c);
}

static void
conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = container_of(w, struct conn, ww);

	conn_flush(c);
	if (conn_done(c)) {
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

/* Not read for CONN_STALL_S, and nothing of its output taken meanwhile. */
static void
conn_stall_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct conn *c = container_of(t, struct conn, stall);

	log_info("client uid %u pid %d: %s for %.0f s: closing",
	    (unsigned)c->peer.uid, (int)c->peer.pid, c->backed_up ? "does not read its "
	    "answers" : "its uid's connections hold their whole buffer budget",
	    CONN_STALL_S);
	conn_lost(c);
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

/* c's socket, the fds that came with requests not yet handled and those
 * waiting to go with answers. */
void
conn_fds(const struct conn *c, fd_visit_fn fn, void *arg)
{
	const struct conn_fds *f;
	int k;

	fn(c->fd, "conn", arg);
	for (f = c->fds; f != NULL; f = f->next) {
		for (k = 0; k < f->n; k++)
			fn(f->fds[k], "conn: received", arg);
	}
	for (f = c->out_fds; f != NULL; f = f->next) {
		for (k = 0; k < f->n; k++)
			fn(f->fds[k], "conn: answer's", arg);
	}
}
