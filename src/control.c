/*
 * control.c: the control channel to a payload (instance.call): one
 * connection per running instance created with control: true, to the
 * socket the payload listens on at $WARD_CONTROL_SOCKET (its runtime dir's
 * "control"), and the calls relayed over it, each one msgpack-RPC request
 * with wardd's own msgid, matched with its response.
 *
 * The connection is made on the first call, not at spawn: the payload
 * binds when it is ready, so ENOENT, ECONNREFUSED and EAGAIN (a full
 * backlog) are retried on a timer within the calls' timeouts. Nothing
 * waits on the loop: a Unix stream connect never blocks, writes queue in
 * a buffer behind a write watcher, replies are read as they come.
 *
 * The runtime dir is the payload user's, so the path is never resolved by
 * connect(2): the dir is opened from STATE_DIR/instances/ (root's) with
 * O_NOFOLLOW, "control" in it with O_PATH|O_NOFOLLOW, which pins that
 * inode (a symlink is refused, not followed); it must be a socket owned by
 * the payload's uid, and wardd connects to it through its own
 * /proc/self/fd/N, which reaches that inode and nothing else. The
 * listener's SO_PEERCRED must then name the payload's uid too: a payload
 * cannot make wardd talk to a socket its own user does not own (wardd's,
 * another user's payload's, a hard link to either).
 *
 * The payload's replies are hostile input: scanned by codec_scan_within
 * (CONTROL_MSG_MAX bytes, WARD_MAX_DEPTH) before they are unpacked;
 * garbage or an oversized reply drops the connection and answers every
 * call on it bad_response. Calls are bounded per instance
 * (CONTROL_CALLS_MAX) and their requests are counted in the caller's
 * BUDGET_BUFFER while they are pending; a non-admin's answer that finds
 * that budget full of unread answers is resource_exhausted, not queued
 * (its replies are not bounded by the calls' count alone). A call is a
 * conn attachment, so a client that goes away takes its calls with it (a
 * late reply is then dropped by its unknown msgid). An instance's death
 * (STOPPED, DIED, REMOVED) closes its connection and answers its calls
 * unavailable.
 *
 * Not carried across ward.reexec: control_shutdown answers every pending
 * call unavailable and closes the connections before the exec (a
 * half-relayed call cannot be handed over); the next call reconnects.
 *
 * layer: engine (above conn.c and spawn.c; names no instance.c function:
 * loop.c registers control_instance_cb as an observer)
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"

#define container_of(p, type, member) \
	((type *)((char *)(p) - offsetof(type, member)))

#define CONTROL_READ_CHUNK	65536
#define CONTROL_RETRY_MIN_S	0.01	/* first retry of a connect */
#define CONTROL_RETRY_MAX_S	0.25	/* retries back off to this */
/* Requests written to no one yet: past this, a payload that does not read
 * gets busy (a timed-out call's bytes stay queued, its budget given back). */
#define CONTROL_OUT_MAX		(4 * CONTROL_MSG_MAX)

/* A control connection's lifecycle, moved only by control_set_state. */
enum control_state {
	CONTROL_IDLE,		/* no connection, no retry: the next call connects */
	CONTROL_CONNECTING,	/* the payload is not listening yet: retry_t */
	CONTROL_CONNECTED	/* fd is connected; calls go out as they come */
};

struct control_call;

/* One running instance's control channel. */
struct control {
	uint64_t		 id;		/* the instance's */
	enum control_state	 state;
	int			 fd;		/* -1 unless CONNECTED */
	ev_io			 rw;
	ev_io			 ww;		/* only while out holds bytes */
	ev_timer		 retry_t;	/* CONNECTING: the next attempt */
	double			 retry_s;
	uid_t			 uid;		/* the payload's: socket and peer */
	struct buf		 out;		/* requests not yet written */
	struct buf		 in;		/* a reply not yet whole */
	uint32_t		 next_msgid;
	unsigned		 ncalls;
	TAILQ_HEAD(, control_call) calls;	/* pending, oldest first */
	struct table_node	 node;		/* by id */
};

/* One instance.call waiting for its answer. */
struct control_call {
	struct conn_attachment	 att;		/* on c; first member */
	struct conn		*c;
	uint32_t		 client_msgid;
	uint32_t		 msgid;		/* wardd's, on the control socket */
	struct control		*ctl;
	uid_t			 uid;		/* the caller's: its budget */
	char			*req;		/* packed, until written to out */
	size_t			 reqlen;	/* counted in uid's BUDGET_BUFFER */
	ev_timer		 timeout_t;
	control_reply_fn	 reply;
	TAILQ_ENTRY(control_call) entry;
};

static struct table controls;		/* struct control, by id (zeroed: empty) */

static void control_read_cb(struct ev_loop *, ev_io *, int);
static void control_write_cb(struct ev_loop *, ev_io *, int);
static void control_retry_cb(struct ev_loop *, ev_timer *, int);
static void control_timeout_cb(struct ev_loop *, ev_timer *, int);
static void control_detach_cb(struct conn *, struct conn_attachment *);

static struct control *
control_find(uint64_t id)
{
	struct table_node *n = table_find(&controls, &id, sizeof id);

	return n == NULL ? NULL : container_of(n, struct control, node);
}

static void
control_set_state(struct control *ctl, enum control_state to)
{
	if (to != CONTROL_CONNECTING)
		ev_timer_stop(ward_loop, &ctl->retry_t);
	if (to != CONTROL_CONNECTED && ctl->fd != -1) {
		ev_io_stop(ward_loop, &ctl->rw);
		ev_io_stop(ward_loop, &ctl->ww);
		close(ctl->fd);
		ctl->fd = -1;
		buf_free(&ctl->out);
		buf_free(&ctl->in);
	}
	ctl->state = to;
}

/* The call is over: off its instance, its conn and the caller's budget. */
static void
control_call_free(struct control_call *call)
{
	ev_timer_stop(ward_loop, &call->timeout_t);
	TAILQ_REMOVE(&call->ctl->calls, call, entry);
	call->ctl->ncalls--;
	budget_give(call->uid, BUDGET_BUFFER, call->reqlen);
	free(call->req);
	free(call);
}

/*
 * Answer call (code NULL: obj is the payload's result; else an error,
 * with obj the payload's own error object or NULL) and free it. The
 * client's conn is flushed, never freed here.
 */
static void
control_call_end(struct control_call *call, const char *code,
    const char *msg, const msgpack_object *obj)
{
	struct conn *c = call->c;

	conn_detach(c, &call->att);
	/* Not queued for a caller whose unread answers hold its whole buffer
	 * budget: calls pipelined before any answer came would else let its
	 * payloads make wardd hold up to a reply per pending call. */
	if (code == NULL && !c->peer.admin && budget_used(c->peer.uid,
	    BUDGET_BUFFER) >= budget_limit(c->peer.uid, BUDGET_BUFFER)) {
		code = WARD_E_RESOURCE_EXHAUSTED;
		msg = "the caller's connections hold their whole buffer budget "
		    "of answers not yet read: the payload's reply was dropped";
		obj = NULL;
	}
	call->reply(c, call->client_msgid, code, msg, obj);
	control_call_free(call);
	conn_flush(c);
}

/* Answer every pending call with code and go back to IDLE (no fd). */
static void
control_drop(struct control *ctl, const char *code, const char *fmt, ...)
{
	struct control_call *call;
	char msg[WARD_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	control_set_state(ctl, CONTROL_IDLE);
	while ((call = TAILQ_FIRST(&ctl->calls)) != NULL)
		control_call_end(call, code, msg, NULL);
}

static void
control_free(struct control *ctl, const char *why)
{
	if (ctl == NULL)
		return;
	control_drop(ctl, WARD_E_UNAVAILABLE, "%s", why);
	table_remove(&controls, &ctl->node);
	free(ctl);
}

/* Queue what calls have not yet sent; CONNECTED only. */
static void
control_send_pending(struct control *ctl)
{
	struct control_call *call;

	TAILQ_FOREACH(call, &ctl->calls, entry) {
		if (call->req == NULL)
			continue;
		if (buf_append(&ctl->out, call->req, call->reqlen) == -1) {
			control_drop(ctl, WARD_E_UNAVAILABLE,
			    "out of memory queueing a call");
			return;
		}
		free(call->req);
		call->req = NULL;
	}
	if (buf_used(&ctl->out) > 0)
		ev_io_start(ward_loop, &ctl->ww);
}

/*
 * Open "control" in the runtime dir without following it, as the
 * opening comment says. Returns an O_PATH fd of a socket owned by
 * ctl->uid; -1 with errno ENOENT (not there yet), or -1 with e set (it
 * is there and is not what it must be: not to be retried).
 */
static int
control_open_socket(struct control *ctl, struct ward_err *e)
{
	struct stat st;
	int dfd, fd;

	if ((dfd = statedir_runtime_open(ctl->id)) == -1)
		return ward_err_errno(e, WARD_E_UNAVAILABLE, "cannot open the "
		    "instance's runtime dir");
	fd = openat(dfd, WARD_CONTROL_NAME, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	close(dfd);
	if (fd == -1) {
		if (errno == ENOENT)
			return -1;
		return ward_err_errno(e, WARD_E_UNAVAILABLE, "cannot open the "
		    "control socket");
	}
	if (fstat(fd, &st) == -1 || !S_ISSOCK(st.st_mode) ||
	    st.st_uid != ctl->uid) {
		close(fd);
		return ward_err_set(e, WARD_E_UNAVAILABLE, "the instance's "
		    "runtime dir holds a '%s' that is not a socket of its uid "
		    "%u (a symlink, another file, another user's): not used",
		    WARD_CONTROL_NAME, (unsigned)ctl->uid);
	}
	return fd;
}

/*
 * Try to connect: 1 connected, 0 not yet (retry), -1 with e set (give up:
 * the socket is not the payload's). Never blocks: a Unix stream connect
 * completes at once or fails (EAGAIN: the backlog is full).
 */
static int
control_connect(struct control *ctl, struct ward_err *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ucred cred;
	socklen_t len = sizeof cred;
	int pfd, fd;

	if ((pfd = control_open_socket(ctl, e)) == -1)
		return e->code != NULL ? -1 : 0;
	snprintf(sa.sun_path, sizeof sa.sun_path, "/proc/self/fd/%d", pfd);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		close(pfd);
		return ward_err_errno(e, WARD_E_UNAVAILABLE, "socket");
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == -1) {
		int err = errno;

		close(fd);
		close(pfd);
		if (err == ECONNREFUSED || err == EAGAIN || err == ENOENT)
			return 0;
		errno = err;
		return ward_err_errno(e, WARD_E_UNAVAILABLE, "cannot connect "
		    "to the control socket");
	}
	close(pfd);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1 ||
	    cred.uid != ctl->uid) {
		close(fd);
		return ward_err_set(e, WARD_E_UNAVAILABLE, "the control socket's "
		    "listener is not the payload's uid %u: not used",
		    (unsigned)ctl->uid);
	}
	ctl->fd = fd;
	ev_io_set(&ctl->rw, fd, EV_READ);
	ev_io_set(&ctl->ww, fd, EV_WRITE);
	ev_io_start(ward_loop, &ctl->rw);
	control_set_state(ctl, CONTROL_CONNECTED);
	log_debug("control: connected to instance %" PRIu64, ctl->id);
	return 1;
}

/* One connect attempt from IDLE or CONNECTING; -1 with e: given up. */
static int
control_attempt(struct control *ctl, struct ward_err *e)
{
	switch (control_connect(ctl, e)) {
	case 1:
		control_send_pending(ctl);
		return 0;
	case 0:
		if (ctl->state != CONTROL_CONNECTING)
			ctl->retry_s = CONTROL_RETRY_MIN_S;
		else if ((ctl->retry_s *= 2) > CONTROL_RETRY_MAX_S)
			ctl->retry_s = CONTROL_RETRY_MAX_S;
		control_set_state(ctl, CONTROL_CONNECTING);
		ev_timer_set(&ctl->retry_t, ctl->retry_s, 0.);
		ev_timer_start(ward_loop, &ctl->retry_t);
		return 0;
	default:
		return -1;
	}
}

static void
control_retry_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct control *ctl = container_of(t, struct control, retry_t);
	struct ward_err e = WARD_ERR_INIT;

	/* Every call timed out meanwhile: no one waits, stop trying. */
	if (TAILQ_EMPTY(&ctl->calls)) {
		control_set_state(ctl, CONTROL_IDLE);
		return;
	}
	if (control_attempt(ctl, &e) == -1)
		control_drop(ctl, e.code, "%s", e.msg);
}

static struct control *
control_get(const struct instance *i, struct ward_err *e)
{
	struct control *ctl;
	gid_t gid;

	if ((ctl = control_find(i->id)) != NULL)
		return ctl;
	if ((ctl = calloc(1, sizeof *ctl)) == NULL) {
		ward_err_oom(e);
		return NULL;
	}
	ctl->id = i->id;
	ctl->fd = -1;
	if (!spawn_ids(i, &ctl->uid, &gid))
		ctl->uid = geteuid();
	TAILQ_INIT(&ctl->calls);
	ev_init(&ctl->rw, control_read_cb);
	ev_init(&ctl->ww, control_write_cb);
	ev_init(&ctl->retry_t, control_retry_cb);
	if (table_insert(&controls, &ctl->node, &ctl->id, sizeof ctl->id) == -1) {
		free(ctl);
		ward_err_oom(e);
		return NULL;
	}
	return ctl;
}

/* [0, msgid, method, params]: params as given if an array, else [params]. */
static int
control_pack_request(msgpack_sbuffer *sb, uint32_t msgid,
    const msgpack_object *method, const msgpack_object *params)
{
	msgpack_packer pk;

	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 4);
	msgpack_pack_int(&pk, WARD_MSG_REQUEST);
	msgpack_pack_uint32(&pk, msgid);
	msgpack_pack_object(&pk, *method);
	if (params == NULL)
		return msgpack_pack_array(&pk, 0);
	if (params->type != MSGPACK_OBJECT_ARRAY && msgpack_pack_array(&pk, 1))
		return -1;
	return msgpack_pack_object(&pk, *params);
}

/*
 * Relay method(params) to i's payload for the client on c (request
 * client_msgid, made by uid), answered through reply within timeout_ms.
 * 0: pending, reply will be called (unless c goes first); -1 with e set:
 * refused now (unavailable, busy, too_large, resource_exhausted), reply
 * not called.
 */
int
control_call(struct instance *i, struct conn *c, uint32_t client_msgid,
    uid_t uid, const msgpack_object *method, const msgpack_object *params,
    uint32_t timeout_ms, control_reply_fn reply, struct ward_err *e)
{
	struct control_call *call;
	struct control *ctl;
	msgpack_sbuffer sb;

	if (!i->spec.control)
		return ward_err_set(e, WARD_E_UNAVAILABLE, "instance '%s' has "
		    "no control channel (create it with control: true)",
		    i->spec.name);
	if (i->state != INSTANCE_RUNNING)
		return ward_err_set(e, WARD_E_UNAVAILABLE, "instance '%s' is "
		    "%s, not running", i->spec.name, instance_state_name(i->state));
	if ((ctl = control_get(i, e)) == NULL)
		return -1;
	if (ctl->ncalls >= CONTROL_CALLS_MAX)
		return ward_err_set(e, WARD_E_BUSY, "instance '%s' has %d calls "
		    "pending, the most it may", i->spec.name, CONTROL_CALLS_MAX);
	if (buf_used(&ctl->out) >= CONTROL_OUT_MAX)
		return ward_err_set(e, WARD_E_BUSY, "instance '%s' does not read "
		    "its control socket: %zu bytes of calls wait to be written",
		    i->spec.name, buf_used(&ctl->out));
	if ((call = calloc(1, sizeof *call)) == NULL)
		return ward_err_oom(e);
	msgpack_sbuffer_init(&sb);
	call->msgid = ctl->next_msgid++;
	if (control_pack_request(&sb, call->msgid, method, params) != 0 ||
	    sb.data == NULL) {
		msgpack_sbuffer_destroy(&sb);
		free(call);
		return ward_err_oom(e);
	}
	if (sb.size > CONTROL_MSG_MAX || budget_take(uid, BUDGET_BUFFER,
	    sb.size, e) == -1) {
		if (e->code == NULL)
			ward_err_set(e, WARD_E_TOO_LARGE, "the request is over "
			    "%d bytes", CONTROL_MSG_MAX);
		msgpack_sbuffer_destroy(&sb);
		free(call);
		return -1;
	}
	call->reqlen = sb.size;		/* release zeroes it */
	call->req = msgpack_sbuffer_release(&sb);
	call->c = c;
	call->client_msgid = client_msgid;
	call->ctl = ctl;
	call->uid = uid;
	call->reply = reply;
	ev_timer_init(&call->timeout_t, control_timeout_cb,
	    timeout_ms / 1000.0, 0.);
	TAILQ_INSERT_TAIL(&ctl->calls, call, entry);
	ctl->ncalls++;
	conn_attach(c, &call->att, control_detach_cb);
	ev_timer_start(ward_loop, &call->timeout_t);
	/* From here on call may be answered (and freed) by what follows. */
	if (ctl->state == CONTROL_IDLE) {
		if (control_attempt(ctl, e) == -1) {
			conn_detach(c, &call->att);
			control_call_free(call);
			return -1;
		}
	} else if (ctl->state == CONTROL_CONNECTED)
		control_send_pending(ctl);
	return 0;
}

/* The client went away: its call goes, unanswered (conn_lost took att off). */
static void
control_detach_cb(struct conn *c, struct conn_attachment *a)
{
	control_call_free((struct control_call *)a);
}

static void
control_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct control_call *call = container_of(t, struct control_call,
	    timeout_t);
	const char *why = call->ctl->state == CONTROL_CONNECTED ?
	    "the payload did not answer" : "the payload's control socket "
	    "was not listening";

	control_call_end(call, WARD_E_TIMEOUT, why, NULL);
}

static void
control_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct control *ctl = container_of(w, struct control, ww);
	ssize_t n;

	while (buf_used(&ctl->out) > 0) {
		n = send(ctl->fd, ctl->out.data + ctl->out.off,
		    buf_used(&ctl->out), MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			buf_consume(&ctl->out, n);
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		control_drop(ctl, WARD_E_UNAVAILABLE, "the control connection "
		    "was lost: %s", strerror(errno));
		return;
	}
	ev_io_stop(ward_loop, &ctl->ww);
}

/*
 * One whole message from the payload: [1, msgid, error, result] answers
 * the call of that msgid (none: it timed out or its client left, dropped);
 * notifications ([2, ...]) are ignored. -1: not msgpack-RPC at all.
 */
static int
control_message(struct control *ctl, const msgpack_object *o)
{
	const msgpack_object *a = o->via.array.ptr, *err, *text;
	struct control_call *call;
	char msg[WARD_ERR_MAX];

	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 3 ||
	    a[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return -1;
	if (a[0].via.u64 == WARD_MSG_NOTIFY)
		return 0;
	if (a[0].via.u64 != WARD_MSG_RESPONSE || o->via.array.size != 4 ||
	    a[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return -1;
	TAILQ_FOREACH(call, &ctl->calls, entry) {
		if (call->req == NULL && call->msgid == a[1].via.u64)
			break;
	}
	if (call == NULL)
		return 0;
	err = &a[2];
	if (err->type == MSGPACK_OBJECT_NIL) {
		control_call_end(call, NULL, NULL, &a[3]);
		return 0;
	}
	/* The payload's own error: its text if it has one, and itself. */
	text = err->type == MSGPACK_OBJECT_MAP ? state_get(err, "message") : err;
	if (text != NULL && text->type == MSGPACK_OBJECT_STR)
		snprintf(msg, sizeof msg, "%.*s", (int)(text->via.str.size >
		    400 ? 400 : text->via.str.size), text->via.str.ptr);
	else
		snprintf(msg, sizeof msg, "the payload answered an error");
	control_call_end(call, WARD_E_CALL_FAILED, msg, err);
	return 0;
}

/* Whole messages in ctl->in, one by one; -1: ctl was dropped. */
static int
control_process(struct control *ctl)
{
	struct ward_err e = WARD_ERR_INIT;
	msgpack_unpacked msg;
	size_t len, off;
	int rc;

	while (ctl->state == CONTROL_CONNECTED && buf_used(&ctl->in) > 0) {
		switch (codec_scan_within(ctl->in.data + ctl->in.off,
		    buf_used(&ctl->in), &len, &e, CONTROL_MSG_MAX,
		    WARD_MAX_ELEMENTS)) {
		case SCAN_MORE:
			if (buf_used(&ctl->in) <= CONTROL_MSG_MAX)
				return 0;
			ward_err_set(&e, WARD_E_TOO_LARGE, "over %d bytes",
			    CONTROL_MSG_MAX);
			/* FALLTHROUGH */
		case SCAN_ERROR:
			control_drop(ctl, WARD_E_BAD_RESPONSE, "the payload's "
			    "reply was dropped, and its connection: %s", e.msg);
			return -1;
		case SCAN_COMPLETE:
			break;
		}
		msgpack_unpacked_init(&msg);
		off = 0;
		rc = msgpack_unpack_next(&msg, ctl->in.data + ctl->in.off, len,
		    &off) == MSGPACK_UNPACK_SUCCESS && off == len ?
		    control_message(ctl, &msg.data) : -1;
		msgpack_unpacked_destroy(&msg);
		if (rc == -1) {
			control_drop(ctl, WARD_E_BAD_RESPONSE, "the payload sent "
			    "something not a msgpack-RPC response: its "
			    "connection was dropped");
			return -1;
		}
		buf_consume(&ctl->in, len);
	}
	return 0;
}

static void
control_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct control *ctl = container_of(w, struct control, rw);
	char chunk[CONTROL_READ_CHUNK];
	ssize_t n;

	n = recv(ctl->fd, chunk, sizeof chunk, MSG_DONTWAIT);
	if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		return;
	if (n <= 0) {
		control_drop(ctl, WARD_E_UNAVAILABLE, "the payload closed its "
		    "control connection%s%s", n == 0 ? "" : ": ",
		    n == 0 ? "" : strerror(errno));
		return;
	}
	if (buf_append(&ctl->in, chunk, n) == -1) {
		control_drop(ctl, WARD_E_UNAVAILABLE, "out of memory");
		return;
	}
	control_process(ctl);
}

/* Its run is over: the connection goes, its calls are answered unavailable. */
void
control_instance_cb(struct instance *i, enum instance_event ev)
{
	if (ev != INSTANCE_EV_STOPPED && ev != INSTANCE_EV_DIED &&
	    ev != INSTANCE_EV_REMOVED)
		return;
	if (controls.count == 0)
		return;
	control_free(control_find(i->id), "the instance is no longer running");
}

/* Before a re-exec (or at exit): every connection closed, calls answered. */
void
control_shutdown(const char *why)
{
	struct control *ctl;
	struct instance *i;

	if (controls.count == 0)
		return;
	TAILQ_FOREACH(i, &instances, entry) {
		if ((ctl = control_find(i->id)) != NULL)
			control_free(ctl, why);
	}
}

/* i's control connection, if it has one now (ward.fds). */
void
control_fds(const struct instance *i, fd_visit_fn fn, void *arg)
{
	struct control *ctl;

	if (controls.count > 0 && (ctl = control_find(i->id)) != NULL &&
	    ctl->fd != -1)
		fn(ctl->fd, "control", arg);
}
