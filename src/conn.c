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

/* The one teardown path. c is freed: do not touch it after this returns. */
static void
conn_lost(struct conn *c)
{
	log_debug("client gone: fd %d uid %u", c->fd, (unsigned)c->uid);
	event_unsubscribe(c);
	ev_io_stop(ward_loop, &c->rw);
	ev_io_stop(ward_loop, &c->ww);
	ev_timer_stop(ward_loop, &c->linger);
	close(c->fd);
	TAILQ_REMOVE(&conns, c, entry);
	conn_count--;
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

	if (c->broken)
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
		cmd_dispatch(c, &msg.data);
		msgpack_unpacked_destroy(&msg);
		buf_consume(&c->in, len);
		/* A peer that does not read its replies is not read either. */
		if (buf_used(&c->out) >= CONN_OUT_CAP) {
			ev_io_stop(ward_loop, &c->rw);
			break;
		}
	}
}

static void
conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = container_of(w, struct conn, rw);
	char chunk[CONN_READ_CHUNK];
	ssize_t n;
	int reads, eof = 0;

	for (reads = 0; reads < 4; reads++) {
		n = recv(c->fd, chunk, sizeof chunk, MSG_DONTWAIT);
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
