/*
 * libward.c: the client library's connection (see ward.h): connecting,
 * framing, a blocking call and its reply, the notifications that arrive
 * meanwhile, and the non-blocking mode. One struct ward per connection, no
 * globals; only this file sees inside it. Blocking calls send a request
 * and read until its response, queueing any event that arrives first for
 * ward_event_next; the non-blocking mode buffers output and hands replies
 * and events to callbacks from ward_dispatch. The typed calls are in
 * libward-calls.c, the decoding in libward-decode.c; libward-int.h is what
 * they share, none of it exported.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ward.h"
#include "ward-proto.h"
#include "libward-int.h"

/* An event read while waiting for a response: kept for ward_event_next. */
struct ward_pending {
	msgpack_unpacked	 msg;
	struct ward_pending	*next;
};

struct ward {
	int			 fd;
	char			*path;
	uint32_t		 msgid;
	msgpack_unpacker	 unpacker;
	struct ward_error	 err;
	struct ward_pending	*events;	/* FIFO */
	struct ward_pending	**events_tail;
	int			 lost;
	int			 plain_list;	/* wardd knows no compact list */
	int			 rfds[WARD_MAX_FDS];	/* came with answers, untaken */
	int			 nrfds;

	/* Non-blocking mode. */
	int			 nonblocking;
	char			*out;
	size_t			 outlen, outcap;
	ward_reply_cb		 reply_cb;
	ward_event_cb		 event_cb;
	void			*cb_arg;
};

static int64_t
ward_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds until deadline, never negative (for poll). */
static int
ward_left_ms(int64_t deadline)
{
	int64_t left = deadline - ward_now_ms();

	return left > 0 ? (int)left : 0;
}

/* Set w's error; -1, for "return ward_fail(...)". */
int
ward_fail(struct ward *w, const char *code, const char *fmt, ...)
{
	va_list ap;

	snprintf(w->err.code, sizeof w->err.code, "%s", code);
	va_start(ap, fmt);
	vsnprintf(w->err.message, sizeof w->err.message, fmt, ap);
	va_end(ap);
	return -1;
}

WARD_EXPORT const char *
ward_default_socket(char *buf, size_t len)
{
	const char *env = getenv("WARD_SOCKET"), *xdg = getenv("XDG_RUNTIME_DIR");

	if (env != NULL && env[0] != '\0')
		snprintf(buf, len, "%s", env);
	else if (geteuid() != 0 && xdg != NULL && xdg[0] == '/')
		snprintf(buf, len, "%s/ward.sock", xdg);
	else
		snprintf(buf, len, "/run/ward/ward.sock");
	return buf;
}

WARD_EXPORT struct ward *
ward_connect(const char *path, struct ward_error *err)
{
	struct sockaddr_un sun;
	char def[sizeof sun.sun_path];
	struct ward *w;
	int fd, e;

	if (path == NULL)
		path = ward_default_socket(def, sizeof def);
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path) {
		if (err != NULL) {
			snprintf(err->code, sizeof err->code, "invalid_argument");
			snprintf(err->message, sizeof err->message,
			    "socket path too long: %s", path);
		}
		return NULL;
	}
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		e = errno;
		if (fd != -1)
			close(fd);
		if (err != NULL) {
			snprintf(err->code, sizeof err->code, "disconnected");
			snprintf(err->message, sizeof err->message,
			    "cannot connect to wardd at %s: %s%s", path, strerror(e),
			    e == ENOENT || e == ECONNREFUSED ? " (is wardd running?)" :
			    e == EACCES ? " (check the socket's permissions)" : "");
		}
		return NULL;
	}
	if ((w = calloc(1, sizeof *w)) == NULL || (w->path = strdup(path)) == NULL ||
	    !msgpack_unpacker_init(&w->unpacker, 65536)) {
		close(fd);
		if (w != NULL)
			free(w->path);
		free(w);
		if (err != NULL) {
			snprintf(err->code, sizeof err->code, "internal");
			snprintf(err->message, sizeof err->message, "out of memory");
		}
		return NULL;
	}
	w->fd = fd;
	w->events_tail = &w->events;
	return w;
}

WARD_EXPORT void
ward_close(struct ward *w)
{
	struct ward_pending *p;

	if (w == NULL)
		return;
	while ((p = w->events) != NULL) {
		w->events = p->next;
		msgpack_unpacked_destroy(&p->msg);
		free(p);
	}
	ward_drop_fds(w);
	msgpack_unpacker_destroy(&w->unpacker);
	close(w->fd);
	free(w->out);
	free(w->path);
	free(w);
}

/* Whether instance.list must be asked in its plain form; set: from now on. */
int
ward_plain_list(struct ward *w, int set)
{
	if (set)
		w->plain_list = 1;
	return w->plain_list;
}

WARD_EXPORT const struct ward_error *
ward_error(const struct ward *w)
{
	return &w->err;
}

WARD_EXPORT const char *
ward_socket_path(const struct ward *w)
{
	return w->path;
}

WARD_EXPORT int
ward_fd(const struct ward *w)
{
	return w->fd;
}

WARD_EXPORT void
ward_params_init(struct ward_params *p)
{
	msgpack_sbuffer_init(&p->sbuf);
	msgpack_packer_init(&p->pk, &p->sbuf, msgpack_sbuffer_write);
}

WARD_EXPORT void
ward_params_free(struct ward_params *p)
{
	msgpack_sbuffer_destroy(&p->sbuf);
}

/* [0, msgid, method, [params]] into sb. */
static void
ward_pack_request(msgpack_sbuffer *sb, uint32_t msgid, const char *method,
    const char *params, size_t plen)
{
	msgpack_packer pk;
	size_t n = strlen(method);

	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 4);
	msgpack_pack_int(&pk, WARD_MSG_REQUEST);
	msgpack_pack_uint32(&pk, msgid);
	msgpack_pack_str(&pk, n);
	msgpack_pack_str_body(&pk, method, n);
	if (params == NULL || plen == 0)
		msgpack_pack_array(&pk, 0);
	else {
		msgpack_pack_array(&pk, 1);
		msgpack_sbuffer_write(sb, params, plen);
	}
}

/* Write all of buf, the fds riding on the first byte. Blocking mode. */
static int
ward_write_all(struct ward *w, const char *buf, size_t len, const int *fds,
    size_t nfds)
{
	char cbuf[CMSG_SPACE(sizeof(int) * WARD_MAX_FDS)];
	struct msghdr mh;
	struct iovec iov;
	ssize_t n;

	if (nfds > WARD_MAX_FDS)
		return ward_fail(w, "invalid_argument", "at most %d fds", WARD_MAX_FDS);
	while (len > 0) {
		memset(&mh, 0, sizeof mh);
		iov.iov_base = (void *)(uintptr_t)buf;
		iov.iov_len = len;
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		if (nfds > 0) {
			struct cmsghdr *cm;

			memset(cbuf, 0, sizeof cbuf);
			mh.msg_control = cbuf;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
			cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
			memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
		}
		n = sendmsg(w->fd, &mh, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			w->lost = 1;
			return ward_fail(w, "disconnected", "lost the connection to "
			    "wardd at %s: %s", w->path, strerror(errno));
		}
		buf += n;
		len -= n;
		nfds = 0;
	}
	return 0;
}

/*
 * recv that keeps the fds an answer carries (instance.pidfd's), close on
 * exec, for ward_take_fd; past WARD_MAX_FDS untaken ones they are closed.
 */
static ssize_t
ward_recv(struct ward *w, char *buf, size_t len)
{
	union {
		char		buf[CMSG_SPACE(sizeof(int) * WARD_MAX_FDS)];
		struct cmsghdr	align;
	} cbuf;
	struct cmsghdr *cm;
	struct msghdr mh;
	struct iovec iov;
	ssize_t n;
	int k, nf, fd;

	memset(&mh, 0, sizeof mh);
	iov.iov_base = buf;
	iov.iov_len = len;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf.buf;
	mh.msg_controllen = sizeof cbuf.buf;
	if ((n = recvmsg(w->fd, &mh, MSG_CMSG_CLOEXEC)) <= 0)
		return n;
	for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		nf = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (k = 0; k < nf; k++) {
			memcpy(&fd, CMSG_DATA(cm) + k * sizeof(int), sizeof fd);
			if (w->nrfds < WARD_MAX_FDS)
				w->rfds[w->nrfds++] = fd;
			else
				close(fd);
		}
	}
	return n;
}

/* The first fd an answer carried (the caller's now), or -1. */
int
ward_take_fd(struct ward *w)
{
	int fd;

	if (w->nrfds == 0)
		return -1;
	fd = w->rfds[0];
	memmove(w->rfds, w->rfds + 1, --w->nrfds * sizeof(int));
	return fd;
}

/* Close the fds answers carried that nobody took. */
void
ward_drop_fds(struct ward *w)
{
	while (w->nrfds > 0)
		close(w->rfds[--w->nrfds]);
}

/*
 * Read until the unpacker yields a message (into msg). timeout_ms -1 waits
 * forever; returns 1, 0 on timeout, -1 on error or EOF.
 */
static int
ward_read_msg(struct ward *w, msgpack_unpacked *msg, int timeout_ms)
{
	struct pollfd pfd = { .fd = w->fd, .events = POLLIN };
	int64_t deadline = timeout_ms > 0 ? ward_now_ms() + timeout_ms : 0;
	msgpack_unpack_return r;
	ssize_t n;
	int pr;

	for (;;) {
		r = msgpack_unpacker_next(&w->unpacker, msg);
		if (r == MSGPACK_UNPACK_SUCCESS)
			return 1;
		if (r == MSGPACK_UNPACK_PARSE_ERROR || r == MSGPACK_UNPACK_NOMEM_ERROR) {
			w->lost = 1;
			return ward_fail(w, "protocol_error", "wardd sent something "
			    "that is not msgpack");
		}
		if (w->lost)
			return ward_fail(w, "disconnected", "the connection to wardd "
			    "is lost");
		if (timeout_ms >= 0) {
			/* A deadline, not a timeout per read: partial messages
			 * must not stretch the caller's wait. */
			do
				pr = poll(&pfd, 1, timeout_ms == 0 ? 0 :
				    ward_left_ms(deadline));
			while (pr == -1 && errno == EINTR);
			if (pr == 0)
				return 0;
		}
		if (!msgpack_unpacker_reserve_buffer(&w->unpacker, 65536))
			return ward_fail(w, "internal", "out of memory");
		n = ward_recv(w, msgpack_unpacker_buffer(&w->unpacker), 65536);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
		    timeout_ms >= 0)
			continue;
		if (n <= 0) {
			w->lost = 1;
			return ward_fail(w, "disconnected", "wardd closed the "
			    "connection%s%s", n == -1 ? ": " : "",
			    n == -1 ? strerror(errno) : "");
		}
		msgpack_unpacker_buffer_consumed(&w->unpacker, n);
	}
}


/* An error map from wardd into w->err. */
static int
ward_fail_obj(struct ward *w, const msgpack_object *e)
{
	ward_copy_str(w->err.code, sizeof w->err.code, ward_map_get(e, "code"));
	ward_copy_str(w->err.message, sizeof w->err.message,
	    ward_map_get(e, "message"));
	if (w->err.code[0] == '\0')
		snprintf(w->err.code, sizeof w->err.code, "internal");
	return -1;
}

static void
ward_queue_event(struct ward *w, msgpack_unpacked *msg)
{
	struct ward_pending *p;

	if ((p = calloc(1, sizeof *p)) == NULL) {
		msgpack_unpacked_destroy(msg);
		return;
	}
	p->msg = *msg;
	*w->events_tail = p;
	w->events_tail = &p->next;
	msgpack_unpacked_init(msg);
}

/* A ward.error notification: the daemon is closing this connection. */
static int
ward_is_error_notice(const msgpack_object *o, const msgpack_object **e)
{
	const msgpack_object *a;

	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 3)
		return 0;
	a = o->via.array.ptr;
	if (a[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || a[0].via.u64 != 2 ||
	    a[1].type != MSGPACK_OBJECT_STR ||
	    a[1].via.str.size != strlen(WARD_N_ERROR) ||
	    memcmp(a[1].via.str.ptr, WARD_N_ERROR, a[1].via.str.size) != 0)
		return 0;
	*e = a[2].type == MSGPACK_OBJECT_ARRAY && a[2].via.array.size > 0 ?
	    &a[2].via.array.ptr[0] : NULL;
	return 1;
}

WARD_EXPORT int
ward_call_fds(struct ward *w, const char *method, const char *params,
    size_t plen, const int *fds, size_t nfds, struct ward_reply *reply)
{
	msgpack_sbuffer sb;
	msgpack_object *a;
	const msgpack_object *e;
	uint32_t id;
	int rc;

	memset(reply, 0, sizeof *reply);
	msgpack_unpacked_init(&reply->unpacked);
	if (w->nonblocking)
		return ward_fail(w, "invalid_argument", "blocking call on a "
		    "non-blocking connection");
	if (w->lost)
		return ward_fail(w, "disconnected", "the connection to wardd is lost");
	id = ++w->msgid;
	msgpack_sbuffer_init(&sb);
	ward_pack_request(&sb, id, method, params, plen);
	rc = ward_write_all(w, sb.data, sb.size, fds, nfds);
	msgpack_sbuffer_destroy(&sb);
	if (rc == -1)
		return -1;
	for (;;) {
		if (ward_read_msg(w, &reply->unpacked, -1) != 1)
			return -1;
		if (reply->unpacked.data.type != MSGPACK_OBJECT_ARRAY)
			continue;
		a = reply->unpacked.data.via.array.ptr;
		if (ward_is_error_notice(&reply->unpacked.data, &e)) {
			w->lost = 1;
			return ward_fail_obj(w, e);
		}
		if (reply->unpacked.data.via.array.size == 3) {
			ward_queue_event(w, &reply->unpacked);
			continue;
		}
		if (reply->unpacked.data.via.array.size != 4 ||
		    a[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER || a[1].via.u64 != id)
			continue;
		if (a[2].type != MSGPACK_OBJECT_NIL)
			return ward_fail_obj(w, &a[2]);
		reply->result = a[3];
		return 0;
	}
}

WARD_EXPORT int
ward_call(struct ward *w, const char *method, const char *params, size_t plen,
    struct ward_reply *reply)
{
	return ward_call_fds(w, method, params, plen, NULL, 0, reply);
}

WARD_EXPORT void
ward_reply_free(struct ward_reply *r)
{
	msgpack_unpacked_destroy(&r->unpacked);
	memset(r, 0, sizeof *r);
}

/* ---- notifications: events, output, what wardd sends unasked */

/*
 * The next event, undecoded: those queued while waiting for a response
 * first (other notifications queued are dropped). 1, 0 on timeout, -1.
 */
WARD_EXPORT int
ward_event_next_raw(struct ward *w, msgpack_unpacked *msg, int timeout_ms)
{
	struct ward_pending *p;
	const msgpack_object *e;
	int64_t deadline;
	int rc;

	while ((p = w->events) != NULL) {
		w->events = p->next;
		if (w->events == NULL)
			w->events_tail = &w->events;
		if (ward_is_event(&p->msg.data)) {
			msgpack_unpacked_destroy(msg);
			*msg = p->msg;
			free(p);
			return 1;
		}
		msgpack_unpacked_destroy(&p->msg);
		free(p);
	}
	deadline = timeout_ms > 0 ? ward_now_ms() + timeout_ms : 0;
	for (;;) {
		if ((rc = ward_read_msg(w, msg, timeout_ms <= 0 ? timeout_ms :
		    ward_left_ms(deadline))) != 1)
			return rc;
		if (ward_is_error_notice(&msg->data, &e)) {
			w->lost = 1;
			return ward_fail_obj(w, e);
		}
		if (ward_is_event(&msg->data))
			return 1;
	}
}

/*
 * Any notification (ward.event, ward.log, ...), undecoded, those queued
 * while waiting for a response first. ward.error means the connection is
 * lost: -1. 1, or 0 on timeout.
 */
WARD_EXPORT int
ward_notification_next_raw(struct ward *w, msgpack_unpacked *msg,
    int timeout_ms)
{
	struct ward_pending *p;
	const msgpack_object *e;
	int rc;

	if ((p = w->events) != NULL) {
		w->events = p->next;
		if (w->events == NULL)
			w->events_tail = &w->events;
		msgpack_unpacked_destroy(msg);
		*msg = p->msg;
		free(p);
		return 1;
	}
	for (;;) {
		if ((rc = ward_read_msg(w, msg, timeout_ms)) != 1)
			return rc;
		if (ward_is_error_notice(&msg->data, &e)) {
			w->lost = 1;
			return ward_fail_obj(w, e);
		}
		if (msg->data.type == MSGPACK_OBJECT_ARRAY &&
		    msg->data.via.array.size == 3)
			return 1;
	}
}

WARD_EXPORT int
ward_event_next(struct ward *w, struct ward_event *ev, int timeout_ms)
{
	msgpack_unpacked msg;
	int rc;

	memset(ev, 0, sizeof *ev);
	msgpack_unpacked_init(&msg);
	if ((rc = ward_event_next_raw(w, &msg, timeout_ms)) == 1)
		ward_event_decode(&msg.data, ev);
	msgpack_unpacked_destroy(&msg);
	return rc;
}

/* ---- non-blocking mode */

WARD_EXPORT int
ward_set_nonblocking(struct ward *w, ward_reply_cb rcb, ward_event_cb ecb,
    void *arg)
{
	int fl = fcntl(w->fd, F_GETFL);

	if (fl == -1 || fcntl(w->fd, F_SETFL, fl | O_NONBLOCK) == -1)
		return ward_fail(w, "io", "fcntl: %s", strerror(errno));
	w->nonblocking = 1;
	w->reply_cb = rcb;
	w->event_cb = ecb;
	w->cb_arg = arg;
	return 0;
}

WARD_EXPORT int
ward_send(struct ward *w, const char *method, const char *params, size_t plen,
    uint32_t *msgid)
{
	msgpack_sbuffer sb;
	char *o;

	if (w->lost)
		return ward_fail(w, "disconnected", "the connection to wardd is lost");
	msgpack_sbuffer_init(&sb);
	ward_pack_request(&sb, ++w->msgid, method, params, plen);
	if (w->outlen + sb.size > w->outcap) {
		size_t cap = w->outcap ? w->outcap : 4096;

		while (cap < w->outlen + sb.size)
			cap *= 2;
		if ((o = realloc(w->out, cap)) == NULL) {
			msgpack_sbuffer_destroy(&sb);
			return ward_fail(w, "internal", "out of memory");
		}
		w->out = o;
		w->outcap = cap;
	}
	memcpy(w->out + w->outlen, sb.data, sb.size);
	w->outlen += sb.size;
	msgpack_sbuffer_destroy(&sb);
	if (msgid != NULL)
		*msgid = w->msgid;
	return 0;
}

WARD_EXPORT int
ward_want_write(const struct ward *w)
{
	return w->outlen > 0;
}

WARD_EXPORT int
ward_dispatch(struct ward *w)
{
	const msgpack_object *a, *e;
	struct ward_error err;
	struct ward_event ev;
	msgpack_unpacked msg;
	ssize_t n;
	int rc;

	while (w->outlen > 0) {
		n = send(w->fd, w->out, w->outlen, MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n == -1) {
			w->lost = 1;
			return ward_fail(w, "disconnected", "lost the connection to "
			    "wardd: %s", strerror(errno));
		}
		memmove(w->out, w->out + n, w->outlen - n);
		w->outlen -= n;
	}
	msgpack_unpacked_init(&msg);
	for (;;) {
		rc = ward_read_msg(w, &msg, 0);
		if (rc == 0)
			break;
		if (rc == -1) {
			msgpack_unpacked_destroy(&msg);
			return -1;
		}
		if (msg.data.type != MSGPACK_OBJECT_ARRAY)
			continue;
		a = msg.data.via.array.ptr;
		if (ward_is_error_notice(&msg.data, &e)) {
			w->lost = 1;
			ward_fail_obj(w, e);
			msgpack_unpacked_destroy(&msg);
			return -1;
		}
		if (msg.data.via.array.size == 4 && w->reply_cb != NULL &&
		    a[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
			if (a[2].type != MSGPACK_OBJECT_NIL) {
				memset(&err, 0, sizeof err);
				ward_copy_str(err.code, sizeof err.code,
				    ward_map_get(&a[2], "code"));
				ward_copy_str(err.message, sizeof err.message,
				    ward_map_get(&a[2], "message"));
				w->reply_cb(w, a[1].via.u64, &err, NULL, w->cb_arg);
			} else
				w->reply_cb(w, a[1].via.u64, NULL, &a[3], w->cb_arg);
		} else if (msg.data.via.array.size == 3 && w->event_cb != NULL &&
		    ward_event_decode(&msg.data, &ev) == 0) {
			w->event_cb(w, &ev, w->cb_arg);
			ward_event_free(&ev);
		}
	}
	msgpack_unpacked_destroy(&msg);
	return 0;
}
