/*
 * libward.c: the client library (see ward.h). One struct ward per
 * connection, no globals. Blocking calls send a request and read until its
 * response, queueing any event that arrives first for ward_event_next; the
 * non-blocking mode buffers output and hands replies and events to
 * callbacks from ward_dispatch.
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

#define WARD_EXPORT	__attribute__((visibility("default")))
#define WARD_MAX_FDS	64

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

	/* Non-blocking mode. */
	int			 nonblocking;
	char			*out;
	size_t			 outlen, outcap;
	ward_reply_cb		 reply_cb;
	ward_event_cb		 event_cb;
	void			*cb_arg;
};

static int	ward_is_event(const msgpack_object *);

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

static int
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
	msgpack_unpacker_destroy(&w->unpacker);
	close(w->fd);
	free(w->out);
	free(w->path);
	free(w);
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
		n = recv(w->fd, msgpack_unpacker_buffer(&w->unpacker), 65536, 0);
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

WARD_EXPORT const msgpack_object *
ward_map_get(const msgpack_object *map, const char *key)
{
	size_t n = strlen(key);
	uint32_t i;

	if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (i = 0; i < map->via.map.size; i++) {
		const msgpack_object *k = &map->via.map.ptr[i].key;

		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
		    memcmp(k->via.str.ptr, key, n) == 0)
			return &map->via.map.ptr[i].val;
	}
	return NULL;
}

static void
ward_copy_str(char *dst, size_t len, const msgpack_object *o)
{
	size_t n;

	dst[0] = '\0';
	if (o == NULL || o->type != MSGPACK_OBJECT_STR)
		return;
	n = o->via.str.size < len - 1 ? o->via.str.size : len - 1;
	memcpy(dst, o->via.str.ptr, n);
	dst[n] = '\0';
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

/* ---- decoding results */

static char *
ward_dup_str(const msgpack_object *o)
{
	char *s;

	if (o == NULL || (o->type != MSGPACK_OBJECT_STR &&
	    o->type != MSGPACK_OBJECT_BIN))
		return NULL;
	if ((s = malloc(o->via.str.size + 1)) == NULL)
		return NULL;
	memcpy(s, o->via.str.ptr, o->via.str.size);
	s[o->via.str.size] = '\0';
	return s;
}

static uint64_t
ward_get_u64(const msgpack_object *m, const char *key)
{
	const msgpack_object *o = ward_map_get(m, key);

	if (o != NULL && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		return o->via.u64;
	return 0;
}

static int64_t
ward_get_i64(const msgpack_object *m, const char *key)
{
	const msgpack_object *o = ward_map_get(m, key);

	if (o != NULL && (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER))
		return o->via.i64;
	return 0;
}

static int
ward_get_bool(const msgpack_object *m, const char *key)
{
	const msgpack_object *o = ward_map_get(m, key);

	return o != NULL && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean;
}

static void
ward_decode_metrics(const msgpack_object *m, struct ward_metrics *out)
{
	const msgpack_object *p = ward_map_get(m, "cpu_percent");

	memset(out, 0, sizeof *out);
	out->cpu_user_ms = ward_get_u64(m, "cpu_user_ms");
	out->cpu_system_ms = ward_get_u64(m, "cpu_system_ms");
	out->cpu_guest_ms = ward_get_u64(m, "cpu_guest_ms");
	if (p != NULL && (p->type == MSGPACK_OBJECT_FLOAT64 ||
	    p->type == MSGPACK_OBJECT_FLOAT32))
		out->cpu_percent = p->via.f64;
	out->rss_kb = ward_get_u64(m, "rss_kb");
	out->rss_max_kb = ward_get_u64(m, "rss_max_kb");
	out->pss_kb = ward_get_u64(m, "pss_kb");
	out->rss_mapping_kb = ward_get_u64(m, "rss_mapping_kb");
	out->rss_mapping_max_kb = ward_get_u64(m, "rss_mapping_max_kb");
}

WARD_EXPORT void
ward_exit_decode(const msgpack_object *m, struct ward_exit *x)
{
	const msgpack_object *o;

	memset(x, 0, sizeof *x);
	x->id = ward_get_u64(m, "id");
	x->name = ward_dup_str(ward_map_get(m, "name"));
	x->owner_uid = ward_get_u64(m, "owner_uid");
	x->state = ward_dup_str(ward_map_get(m, "state"));
	x->death_reason = ward_dup_str(ward_map_get(m, "death_reason"));
	o = ward_map_get(m, "exit_code");
	if (o != NULL && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		x->has_exit_code = 1;
		x->exit_code = o->via.u64;
	}
	x->exit_signal = ward_get_u64(m, "exit_signal");
	x->signal_name = ward_dup_str(ward_map_get(m, "signal_name"));
	x->core_dumped = ward_get_bool(m, "core_dumped");
	x->failure_reason = ward_dup_str(ward_map_get(m, "failure_reason"));
	x->failure_info = ward_dup_str(ward_map_get(m, "failure_info"));
	x->failure_discarded = ward_get_u64(m, "failure_discarded");
	x->dump_dir = ward_dup_str(ward_map_get(m, "dump_dir"));
	x->started_at_ms = ward_get_i64(m, "started_at_ms");
	x->died_at_ms = ward_get_i64(m, "died_at_ms");
	x->uptime_ms = ward_get_u64(m, "uptime_ms");
	ward_decode_metrics(ward_map_get(m, "metrics"), &x->metrics);
}

/* An array of strings as a NULL-terminated copy; NULL if not an array. */
static char **
ward_dup_strv(const msgpack_object *o)
{
	char **v;
	uint32_t i;

	if (o == NULL || o->type != MSGPACK_OBJECT_ARRAY ||
	    (v = calloc(o->via.array.size + 1, sizeof *v)) == NULL)
		return NULL;
	for (i = 0; i < o->via.array.size; i++)
		v[i] = ward_dup_str(&o->via.array.ptr[i]);
	return v;
}

static void
ward_strv_free(char **v)
{
	char **p;

	for (p = v; p != NULL && *p != NULL; p++)
		free(*p);
	free(v);
}

WARD_EXPORT void
ward_status_decode(const msgpack_object *m, struct ward_status *s)
{
	memset(s, 0, sizeof *s);
	s->id = ward_get_u64(m, "id");
	s->name = ward_dup_str(ward_map_get(m, "name"));
	s->state = ward_dup_str(ward_map_get(m, "state"));
	s->payload_state = ward_dup_str(ward_map_get(m, "payload_state"));
	s->status_text = ward_dup_str(ward_map_get(m, "status_text"));
	s->pid = ward_get_i64(m, "pid");
	s->argv = ward_dup_strv(ward_map_get(m, "argv"));
	s->owner_uid = ward_get_u64(m, "owner_uid");
	s->requester_pid = ward_get_i64(m, "requester_pid");
	s->created_at_ms = ward_get_i64(m, "created_at_ms");
	s->started_at_ms = ward_get_i64(m, "started_at_ms");
	s->uptime_ms = ward_get_u64(m, "uptime_ms");
	s->suspended = ward_get_bool(m, "suspended");
	ward_decode_metrics(ward_map_get(m, "metrics"), &s->metrics);
	s->program_state = ward_dup_str(ward_map_get(ward_map_get(m, "program"),
	    "state"));
	if (ward_map_get(m, "death_reason") != NULL) {
		s->has_exit = 1;
		ward_exit_decode(m, &s->exit);
		s->exit.started_at_ms = s->started_at_ms;
	}
}

WARD_EXPORT void
ward_exit_free(struct ward_exit *x)
{
	if (x == NULL)
		return;
	free(x->name);
	free(x->state);
	free(x->death_reason);
	free(x->signal_name);
	free(x->failure_reason);
	free(x->failure_info);
	free(x->dump_dir);
	memset(x, 0, sizeof *x);
}

WARD_EXPORT void
ward_status_free(struct ward_status *s)
{
	if (s == NULL)
		return;
	free(s->name);
	free(s->state);
	free(s->payload_state);
	free(s->status_text);
	free(s->program_state);
	ward_strv_free(s->argv);
	ward_exit_free(&s->exit);
	memset(s, 0, sizeof *s);
}

WARD_EXPORT void
ward_status_list_free(struct ward_status *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		ward_status_free(&v[i]);
	free(v);
}

WARD_EXPORT void
ward_exit_list_free(struct ward_exit *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		ward_exit_free(&v[i]);
	free(v);
}

/* ---- typed calls */

static void
ward_pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);

	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

/* {id: N} or {name: S}, plus extra pairs the caller packs after. */
static void
ward_pack_ident(msgpack_packer *pk, const char *ident, size_t extra)
{
	const char *p;

	for (p = ident; *p >= '0' && *p <= '9'; p++)
		;
	msgpack_pack_map(pk, 1 + extra);
	if (*ident != '\0' && *p == '\0') {
		ward_pack_str(pk, "id");
		msgpack_pack_uint64(pk, strtoull(ident, NULL, 10));
	} else {
		ward_pack_str(pk, "name");
		ward_pack_str(pk, ident);
	}
}

/* Call with params p; the reply is freed unless the caller keeps it. */
static int
ward_call_params(struct ward *w, const char *method, struct ward_params *p,
    struct ward_reply *r)
{
	int rc;

	rc = ward_call(w, method, p ? p->sbuf.data : NULL, p ? p->sbuf.size : 0, r);
	if (p != NULL)
		ward_params_free(p);
	return rc;
}

/* A call whose result is only {ok: true}. */
static int
ward_call_simple(struct ward *w, const char *method, struct ward_params *p)
{
	struct ward_reply r;
	int rc = ward_call_params(w, method, p, &r);

	ward_reply_free(&r);
	return rc;
}

WARD_EXPORT int
ward_hello(struct ward *w, struct ward_hello *h)
{
	struct ward_reply r;

	memset(h, 0, sizeof *h);
	if (ward_call(w, WARD_M_HELLO, NULL, 0, &r) == -1) {
		ward_reply_free(&r);
		return -1;
	}
	ward_copy_str(h->server, sizeof h->server, ward_map_get(&r.result, "server"));
	ward_copy_str(h->version, sizeof h->version, ward_map_get(&r.result, "version"));
	h->protocol = ward_get_u64(&r.result, "protocol");
	h->pid = ward_get_i64(&r.result, "pid");
	h->uid = ward_get_u64(&r.result, "uid");
	h->admin = ward_get_bool(&r.result, "admin");
	ward_reply_free(&r);
	return 0;
}

WARD_EXPORT int
ward_stats(struct ward *w, struct ward_stats *s)
{
	struct ward_reply r;

	memset(s, 0, sizeof *s);
	if (ward_call(w, WARD_M_STATS, NULL, 0, &r) == -1) {
		ward_reply_free(&r);
		return -1;
	}
#define F(k) s->k = ward_get_u64(&r.result, #k)
	F(instances); F(running); F(clients); F(subscribers); F(created);
	F(started); F(died); F(spawn_failed); F(removed); F(metrics_ticks);
	F(rss_kb);
#undef F
	ward_reply_free(&r);
	return 0;
}

WARD_EXPORT int
ward_shutdown(struct ward *w, int kill_instances)
{
	struct ward_params p;

	ward_params_init(&p);
	msgpack_pack_map(&p.pk, 1);
	ward_pack_str(&p.pk, "kill_instances");
	if (kill_instances)
		msgpack_pack_true(&p.pk);
	else
		msgpack_pack_false(&p.pk);
	return ward_call_simple(w, WARD_M_SHUTDOWN, &p);
}

WARD_EXPORT void
ward_spec_init(struct ward_spec *s)
{
	memset(s, 0, sizeof *s);
	s->stdin_fd = s->stdout_fd = s->stderr_fd = -1;
}

extern char **environ;

WARD_EXPORT size_t
ward_caller_env(const char *const *env, const char **out)
{
	static const char *const names[WARD_CALLER_ENV_MAX] = {
		"HOME", "USER", "LOGNAME", "LANG", "TERM"
	};
	const char *const *e;
	size_t k, n = 0, kl;
	char **v;

	for (k = 0; k < WARD_CALLER_ENV_MAX; k++) {
		kl = strlen(names[k]);
		for (e = env; e != NULL && *e != NULL; e++) {
			if (strncmp(*e, names[k], kl) == 0 && (*e)[kl] == '=')
				break;
		}
		if (e != NULL && *e != NULL)
			continue;	/* the caller set it */
		for (v = environ; *v != NULL; v++) {
			if (strncmp(*v, names[k], kl) == 0 && (*v)[kl] == '=') {
				out[n++] = *v;
				break;
			}
		}
	}
	return n;
}

static void
ward_pack_env_entry(msgpack_packer *pk, const char *e)
{
	const char *eq = strchr(e, '=');
	size_t kl = eq ? (size_t)(eq - e) : strlen(e);

	msgpack_pack_str(pk, kl);
	msgpack_pack_str_body(pk, e, kl);
	ward_pack_str(pk, eq ? eq + 1 : "");
}

/*
 * Pack a spec; the fds to pass go into fds[] and the params refer to them
 * by their index there. The caller's HOME and the like join env
 * (ward_caller_env).
 */
static int
ward_pack_spec(struct ward *w, const struct ward_spec *s, struct ward_params *p,
    int *fds, size_t *nfds)
{
	const char *caller[WARD_CALLER_ENV_MAX];
	size_t n = 1, k, ncaller;
	const char *const *e;

	*nfds = 0;
	ncaller = ward_caller_env(s->env, caller);
	if (s->argv == NULL || s->argv[0] == NULL)
		return ward_fail(w, "invalid_argument", "argv is required");
	if (s->nfds + 3 > WARD_MAX_FDS)
		return ward_fail(w, "invalid_argument", "too many fds");
	n += !!s->name + (s->env != NULL || ncaller > 0) + !!s->cwd +
	    !!s->detect_hangup + !!s->clean_env +
	    !!s->hangup_timeout_ms + !!s->nexit_codes + !!s->profile +
	    !!s->rss_mapping + !!s->user + (s->stdin_fd >= 0) +
	    (s->stdout_fd >= 0) + (s->stderr_fd >= 0) + !!s->nfds +
	    !!s->notify + !!s->watchdog_ms + !!s->capture_output;
	ward_params_init(p);
	msgpack_pack_map(&p->pk, n);
	ward_pack_str(&p->pk, "argv");
	for (k = 0; s->argv[k] != NULL; k++)
		;
	msgpack_pack_array(&p->pk, k);
	for (k = 0; s->argv[k] != NULL; k++)
		ward_pack_str(&p->pk, s->argv[k]);
#define KV_STR(key, v) if (v) { ward_pack_str(&p->pk, key); ward_pack_str(&p->pk, v); }
	KV_STR("name", s->name);
	KV_STR("cwd", s->cwd);
	KV_STR("profile", s->profile);
	KV_STR("rss_mapping", s->rss_mapping);
	KV_STR("user", s->user);
	KV_STR("notify", s->notify);
#undef KV_STR
	if (s->watchdog_ms) {
		ward_pack_str(&p->pk, "watchdog_ms");
		msgpack_pack_uint32(&p->pk, s->watchdog_ms);
	}
	if (s->env != NULL || ncaller > 0) {
		for (k = 0, e = s->env; e != NULL && *e != NULL; e++)
			k++;
		ward_pack_str(&p->pk, "env");
		msgpack_pack_map(&p->pk, k + ncaller);
		for (e = s->env; e != NULL && *e != NULL; e++)
			ward_pack_env_entry(&p->pk, *e);
		for (k = 0; k < ncaller; k++)
			ward_pack_env_entry(&p->pk, caller[k]);
	}
	if (s->clean_env) {
		ward_pack_str(&p->pk, "clean_env");
		msgpack_pack_true(&p->pk);
	}
	if (s->detect_hangup) {
		ward_pack_str(&p->pk, "detect_hangup");
		msgpack_pack_true(&p->pk);
	}
	if (s->capture_output) {
		ward_pack_str(&p->pk, "capture_output");
		msgpack_pack_true(&p->pk);
	}
	if (s->hangup_timeout_ms) {
		ward_pack_str(&p->pk, "hangup_timeout_ms");
		msgpack_pack_uint32(&p->pk, s->hangup_timeout_ms);
	}
	if (s->nexit_codes) {
		ward_pack_str(&p->pk, "exit_codes");
		msgpack_pack_map(&p->pk, s->nexit_codes);
		for (k = 0; k < s->nexit_codes; k++) {
			msgpack_pack_int(&p->pk, s->exit_codes[k].code);
			ward_pack_str(&p->pk, s->exit_codes[k].reason);
		}
	}
#define KV_FD(key, fd) if ((fd) >= 0) {					\
	ward_pack_str(&p->pk, key);					\
	msgpack_pack_uint64(&p->pk, *nfds);				\
	fds[(*nfds)++] = (fd);						\
}
	KV_FD("stdin", s->stdin_fd);
	KV_FD("stdout", s->stdout_fd);
	KV_FD("stderr", s->stderr_fd);
#undef KV_FD
	if (s->nfds) {
		ward_pack_str(&p->pk, "fds");
		msgpack_pack_array(&p->pk, s->nfds);
		for (k = 0; k < s->nfds; k++) {
			msgpack_pack_map(&p->pk, 2);
			ward_pack_str(&p->pk, "fd");
			msgpack_pack_uint64(&p->pk, *nfds);
			ward_pack_str(&p->pk, "target");
			msgpack_pack_int(&p->pk, s->fds[k].target);
			fds[(*nfds)++] = s->fds[k].fd;
		}
	}
	return 0;
}

static int
ward_create_or_run(struct ward *w, const char *method, const struct ward_spec *s,
    uint64_t *id)
{
	struct ward_params p;
	struct ward_reply r;
	int fds[WARD_MAX_FDS];
	size_t nfds;
	int rc;

	if (ward_pack_spec(w, s, &p, fds, &nfds) == -1)
		return -1;
	rc = ward_call_fds(w, method, p.sbuf.data, p.sbuf.size, fds, nfds, &r);
	ward_params_free(&p);
	if (rc == 0 && id != NULL)
		*id = ward_get_u64(&r.result, "id");
	ward_reply_free(&r);
	return rc;
}

WARD_EXPORT int
ward_instance_create(struct ward *w, const struct ward_spec *s, uint64_t *id)
{
	return ward_create_or_run(w, WARD_M_CREATE, s, id);
}

WARD_EXPORT int
ward_instance_run(struct ward *w, const struct ward_spec *s, uint64_t *id)
{
	return ward_create_or_run(w, WARD_M_RUN, s, id);
}

static int
ward_ident_call(struct ward *w, const char *method, const char *ident)
{
	struct ward_params p;

	ward_params_init(&p);
	ward_pack_ident(&p.pk, ident, 0);
	return ward_call_simple(w, method, &p);
}

WARD_EXPORT int
ward_instance_start(struct ward *w, const char *ident)
{
	return ward_ident_call(w, WARD_M_START, ident);
}

WARD_EXPORT int
ward_instance_suspend(struct ward *w, const char *ident)
{
	return ward_ident_call(w, WARD_M_SUSPEND, ident);
}

WARD_EXPORT int
ward_instance_resume(struct ward *w, const char *ident)
{
	return ward_ident_call(w, WARD_M_RESUME, ident);
}

WARD_EXPORT int
ward_instance_remove(struct ward *w, const char *ident)
{
	return ward_ident_call(w, WARD_M_REMOVE, ident);
}

WARD_EXPORT int
ward_instance_status(struct ward *w, const char *ident, struct ward_status *s)
{
	struct ward_params p;
	struct ward_reply r;

	memset(s, 0, sizeof *s);
	ward_params_init(&p);
	ward_pack_ident(&p.pk, ident, 0);
	if (ward_call_params(w, WARD_M_STATUS, &p, &r) == -1) {
		ward_reply_free(&r);
		return -1;
	}
	ward_status_decode(&r.result, s);
	ward_reply_free(&r);
	return 0;
}

WARD_EXPORT int
ward_instance_list(struct ward *w, const char *state, struct ward_status **out,
    size_t *n)
{
	struct ward_params p, *pp = NULL;
	struct ward_reply r;
	uint32_t i;

	*out = NULL;
	*n = 0;
	if (state != NULL) {
		ward_params_init(&p);
		msgpack_pack_map(&p.pk, 1);
		ward_pack_str(&p.pk, "state");
		ward_pack_str(&p.pk, state);
		pp = &p;
	}
	if (ward_call_params(w, WARD_M_LIST, pp, &r) == -1) {
		ward_reply_free(&r);
		return -1;
	}
	if (r.result.type == MSGPACK_OBJECT_ARRAY && r.result.via.array.size > 0) {
		*out = calloc(r.result.via.array.size, sizeof **out);
		if (*out == NULL) {
			ward_reply_free(&r);
			return ward_fail(w, "internal", "out of memory");
		}
		for (i = 0; i < r.result.via.array.size; i++)
			ward_status_decode(&r.result.via.array.ptr[i], &(*out)[i]);
		*n = r.result.via.array.size;
	}
	ward_reply_free(&r);
	return 0;
}

WARD_EXPORT int
ward_instance_kill(struct ward *w, const char *ident, int sig)
{
	struct ward_params p;

	ward_params_init(&p);
	ward_pack_ident(&p.pk, ident, 1);
	ward_pack_str(&p.pk, "signal");
	msgpack_pack_int(&p.pk, sig);
	return ward_call_simple(w, WARD_M_KILL, &p);
}

WARD_EXPORT int
ward_instance_stop(struct ward *w, const char *ident, int timeout_ms)
{
	struct ward_params p;

	ward_params_init(&p);
	ward_pack_ident(&p.pk, ident, timeout_ms >= 0);
	if (timeout_ms >= 0) {
		ward_pack_str(&p.pk, "timeout_ms");
		msgpack_pack_int(&p.pk, timeout_ms);
	}
	return ward_call_simple(w, WARD_M_STOP, &p);
}

WARD_EXPORT int
ward_instance_payload(struct ward *w, const char *ident, const char *state)
{
	struct ward_params p;

	ward_params_init(&p);
	ward_pack_ident(&p.pk, ident, 1);
	ward_pack_str(&p.pk, "state");
	ward_pack_str(&p.pk, state);
	return ward_call_simple(w, WARD_M_PAYLOAD, &p);
}

WARD_EXPORT int
ward_instance_history(struct ward *w, const char *ident, size_t limit,
    struct ward_exit **out, size_t *n)
{
	struct ward_params p;
	struct ward_reply r;
	uint32_t i;

	*out = NULL;
	*n = 0;
	ward_params_init(&p);
	if (ident != NULL)
		ward_pack_ident(&p.pk, ident, limit > 0);
	else
		msgpack_pack_map(&p.pk, limit > 0);
	if (limit > 0) {
		ward_pack_str(&p.pk, "limit");
		msgpack_pack_uint64(&p.pk, limit);
	}
	if (ward_call_params(w, WARD_M_HISTORY, &p, &r) == -1) {
		ward_reply_free(&r);
		return -1;
	}
	if (r.result.type == MSGPACK_OBJECT_ARRAY && r.result.via.array.size > 0) {
		if ((*out = calloc(r.result.via.array.size, sizeof **out)) == NULL) {
			ward_reply_free(&r);
			return ward_fail(w, "internal", "out of memory");
		}
		for (i = 0; i < r.result.via.array.size; i++)
			ward_exit_decode(&r.result.via.array.ptr[i], &(*out)[i]);
		*n = r.result.via.array.size;
	}
	ward_reply_free(&r);
	return 0;
}

/* ---- declared programs, captured output */

static int
ward_changes_call(struct ward *w, const char *method, struct ward_changes *ch)
{
	static const char *const keys[] = { "added", "changed", "removed",
	    "errors", "warnings" };
	char ***lists[] = { &ch->added, &ch->changed, &ch->removed,
	    &ch->errors, &ch->warnings };
	struct ward_reply r;
	size_t k;

	memset(ch, 0, sizeof *ch);
	if (ward_call(w, method, NULL, 0, &r) == -1) {
		ward_reply_free(&r);
		return -1;
	}
	for (k = 0; k < sizeof keys / sizeof keys[0]; k++) {
		char **v = ward_dup_strv(ward_map_get(&r.result, keys[k]));

		/* An absent list (an older wardd's warnings) is an empty one. */
		if (v == NULL)
			v = calloc(1, sizeof *v);
		*lists[k] = v;
	}
	ward_reply_free(&r);
	if (ch->added == NULL || ch->changed == NULL || ch->removed == NULL ||
	    ch->errors == NULL || ch->warnings == NULL) {
		ward_changes_free(ch);
		return ward_fail(w, "internal", "out of memory");
	}
	return 0;
}

WARD_EXPORT int
ward_reread(struct ward *w, struct ward_changes *ch)
{
	return ward_changes_call(w, WARD_M_REREAD, ch);
}

WARD_EXPORT int
ward_update(struct ward *w, struct ward_changes *ch)
{
	return ward_changes_call(w, WARD_M_UPDATE, ch);
}

WARD_EXPORT int
ward_reload(struct ward *w, struct ward_changes *ch)
{
	return ward_changes_call(w, WARD_M_RELOAD, ch);
}

WARD_EXPORT void
ward_changes_free(struct ward_changes *ch)
{
	if (ch == NULL)
		return;
	ward_strv_free(ch->added);
	ward_strv_free(ch->changed);
	ward_strv_free(ch->removed);
	ward_strv_free(ch->errors);
	ward_strv_free(ch->warnings);
	memset(ch, 0, sizeof *ch);
}

WARD_EXPORT int
ward_logrotate(struct ward *w, struct ward_logrotate_result *lr)
{
	struct ward_reply r;

	memset(lr, 0, sizeof *lr);
	if (ward_call(w, WARD_M_LOGROTATE, NULL, 0, &r) == -1) {
		ward_reply_free(&r);
		return -1;
	}
	lr->reopened = ward_get_u64(&r.result, "reopened");
	lr->failed = ward_get_u64(&r.result, "failed");
	ward_reply_free(&r);
	return 0;
}

WARD_EXPORT int
ward_instance_log(struct ward *w, const char *ident, const char *stream,
    size_t bytes, int follow, struct ward_log *log)
{
	const msgpack_object *data;
	struct ward_params p;
	struct ward_reply r;

	memset(log, 0, sizeof *log);
	ward_params_init(&p);
	ward_pack_ident(&p.pk, ident, (stream != NULL) + (bytes > 0) +
	    (follow >= 0));
	if (stream != NULL) {
		ward_pack_str(&p.pk, "stream");
		ward_pack_str(&p.pk, stream);
	}
	if (bytes > 0) {
		ward_pack_str(&p.pk, "bytes");
		msgpack_pack_uint64(&p.pk, bytes);
	}
	if (follow >= 0) {
		ward_pack_str(&p.pk, "follow");
		if (follow)
			msgpack_pack_true(&p.pk);
		else
			msgpack_pack_false(&p.pk);
	}
	if (ward_call_params(w, WARD_M_LOG, &p, &r) == -1) {
		ward_reply_free(&r);
		return -1;
	}
	data = ward_map_get(&r.result, "data");
	log->data = ward_dup_str(data);
	log->len = log->data != NULL ? data->via.str.size : 0;
	log->dropped = ward_get_u64(&r.result, "dropped");
	ward_copy_str(log->stream, sizeof log->stream,
	    ward_map_get(&r.result, "stream"));
	ward_reply_free(&r);
	if (log->data == NULL && (log->data = strdup("")) == NULL)
		return ward_fail(w, "internal", "out of memory");
	return 0;
}

WARD_EXPORT void
ward_log_free(struct ward_log *log)
{
	if (log == NULL)
		return;
	free(log->data);
	memset(log, 0, sizeof *log);
}

/* ---- events */

WARD_EXPORT int
ward_events_subscribe(struct ward *w, const uint64_t *ids, size_t nids,
    const char *const *types)
{
	struct ward_params p;
	size_t k, nt = 0;

	if (types != NULL)
		while (types[nt] != NULL)
			nt++;
	ward_params_init(&p);
	msgpack_pack_map(&p.pk, (ids != NULL) + (types != NULL));
	if (ids != NULL) {
		ward_pack_str(&p.pk, "ids");
		msgpack_pack_array(&p.pk, nids);
		for (k = 0; k < nids; k++)
			msgpack_pack_uint64(&p.pk, ids[k]);
	}
	if (types != NULL) {
		ward_pack_str(&p.pk, "types");
		msgpack_pack_array(&p.pk, nt);
		for (k = 0; k < nt; k++)
			ward_pack_str(&p.pk, types[k]);
	}
	return ward_call_simple(w, WARD_M_SUBSCRIBE, &p);
}

WARD_EXPORT int
ward_events_unsubscribe(struct ward *w)
{
	return ward_call_simple(w, WARD_M_UNSUBSCRIBE, NULL);
}

/* [2, "ward.event", [EVENT]] into ev; 0, or -1 when it is not an event. */
WARD_EXPORT int
ward_event_decode(const msgpack_object *o, struct ward_event *ev)
{
	const msgpack_object *a, *m, *x;

	memset(ev, 0, sizeof *ev);
	if (!ward_is_event(o))
		return -1;
	a = o->via.array.ptr;
	m = &a[2].via.array.ptr[0];
	ward_copy_str(ev->type, sizeof ev->type, ward_map_get(m, "type"));
	ev->time_ms = ward_get_i64(m, "time_ms");
	ev->id = ward_get_u64(m, "id");
	ev->name = ward_dup_str(ward_map_get(m, "name"));
	ev->state = ward_dup_str(ward_map_get(m, "state"));
	ev->pid = ward_get_i64(m, "pid");
	ev->payload_state = ward_dup_str(ward_map_get(m, "payload_state"));
	ev->status_text = ward_dup_str(ward_map_get(m, "status_text"));
	ev->message = ward_dup_str(ward_map_get(m, "message"));
	ward_decode_metrics(ward_map_get(m, "metrics"), &ev->metrics);
	if ((x = ward_map_get(m, "exit")) != NULL && x->type == MSGPACK_OBJECT_MAP) {
		ev->has_exit = 1;
		ward_exit_decode(x, &ev->exit);
	}
	return 0;
}

WARD_EXPORT void
ward_event_free(struct ward_event *ev)
{
	free(ev->name);
	free(ev->state);
	free(ev->payload_state);
	free(ev->status_text);
	free(ev->message);
	ward_exit_free(&ev->exit);
	memset(ev, 0, sizeof *ev);
}

static int
ward_is_event(const msgpack_object *o)
{
	const msgpack_object *a = o->via.array.ptr;

	return o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 3 &&
	    a[1].type == MSGPACK_OBJECT_STR &&
	    a[1].via.str.size == strlen(WARD_N_EVENT) &&
	    memcmp(a[1].via.str.ptr, WARD_N_EVENT, a[1].via.str.size) == 0 &&
	    a[2].type == MSGPACK_OBJECT_ARRAY && a[2].via.array.size == 1 &&
	    a[2].via.array.ptr[0].type == MSGPACK_OBJECT_MAP;
}

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
