/*
 * libward-control.c: the control channel's two ends (instance.call). A
 * client's ward_instance_call asks wardd to relay one request to an
 * instance's payload; the payload's ward_control_serve listens at
 * $WARD_CONTROL_SOCKET and answers them (msgpack-RPC: [0, msgid, method,
 * params] in, [1, msgid, error, result] out) with a callback of its own.
 * The payload's side blocks: it is a loop of its own, meant for a thread
 * or a simple program; ward_control_listen gives the fd to anyone who
 * drives their own loop instead.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"
#include "ward-proto.h"
#include "libward-int.h"

#define WARD_CONTROL_CONNS	16		/* served at once */
#define WARD_CONTROL_MSG_MAX	WARD_MAX_REQUEST /* a request, as wardd's */

WARD_EXPORT int
ward_instance_call(struct ward *w, const char *ident, const char *method,
    const char *params, size_t params_len, unsigned timeout_ms,
    struct ward_reply *r)
{
	struct ward_params p;
	int rc;

	ward_params_init(&p);
	ward_pack_ident(&p.pk, ident, 1 + (params != NULL) + (timeout_ms > 0));
	ward_pack_str(&p.pk, "method");
	ward_pack_str(&p.pk, method);
	if (params != NULL) {
		ward_pack_str(&p.pk, "params");
		msgpack_sbuffer_write(&p.sbuf, params, params_len);
	}
	if (timeout_ms > 0) {
		ward_pack_str(&p.pk, "timeout_ms");
		msgpack_pack_uint32(&p.pk, timeout_ms);
	}
	rc = ward_call(w, WARD_M_CALL, p.sbuf.data, p.sbuf.size, r);
	ward_params_free(&p);
	return rc;
}

WARD_EXPORT int
ward_control_listen(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *path = getenv(WARD_ENV_CONTROL_SOCKET);
	int fd;

	if (path == NULL || strlen(path) >= sizeof sa.sun_path) {
		errno = path == NULL ? ENOENT : ENAMETOOLONG;
		return -1;
	}
	strcpy(sa.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	/* A socket left by an earlier try of ours in the same run. */
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == -1 &&
	    (errno != EADDRINUSE || unlink(path) == -1 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof sa) == -1)) {
		close(fd);
		return -1;
	}
	if (listen(fd, 16) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
ward_control_write(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= w;
	}
	return 0;
}

/* One request o on fd: fn's answer, or -1 when o is not a request. */
static int
ward_control_answer(int fd, const msgpack_object *o, ward_control_fn fn,
    void *arg)
{
	const msgpack_object *a = o->via.array.ptr;
	msgpack_sbuffer val, out;
	msgpack_packer pk;
	char *method;
	int rc;

	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 4 ||
	    a[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    a[0].via.u64 != WARD_MSG_REQUEST ||
	    a[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    a[2].type != MSGPACK_OBJECT_STR)
		return -1;
	if ((method = ward_dup_str(&a[2])) == NULL)
		return -1;
	msgpack_sbuffer_init(&val);
	msgpack_packer_init(&pk, &val, msgpack_sbuffer_write);
	rc = fn(method, &a[3], &pk, arg);
	free(method);
	msgpack_sbuffer_init(&out);
	msgpack_packer_init(&pk, &out, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 4);
	msgpack_pack_int(&pk, WARD_MSG_RESPONSE);
	msgpack_pack_uint64(&pk, a[1].via.u64);
	/* [1, msgid, error, result]: fn's object is one of the two. */
	if (rc == 0)
		msgpack_pack_nil(&pk);
	if (val.size > 0)
		msgpack_sbuffer_write(&out, val.data, val.size);
	else		/* fn packed nothing: nil */
		msgpack_pack_nil(&pk);
	if (rc != 0)
		msgpack_pack_nil(&pk);
	rc = ward_control_write(fd, out.data, out.size);
	msgpack_sbuffer_destroy(&val);
	msgpack_sbuffer_destroy(&out);
	return rc;
}

/* What came on a connection: each whole request answered; -1: close it. */
static int
ward_control_read(int fd, msgpack_unpacker *up, ward_control_fn fn, void *arg)
{
	msgpack_unpacked msg;
	msgpack_unpack_return r;
	ssize_t n;
	int rc = 0;

	if (!msgpack_unpacker_reserve_buffer(up, 65536))
		return -1;
	n = recv(fd, msgpack_unpacker_buffer(up), 65536, 0);
	if (n == -1 && errno == EINTR)
		return 0;
	if (n <= 0)
		return -1;
	msgpack_unpacker_buffer_consumed(up, n);
	msgpack_unpacked_init(&msg);
	while (rc == 0 && (r = msgpack_unpacker_next(up, &msg)) ==
	    MSGPACK_UNPACK_SUCCESS)
		rc = ward_control_answer(fd, &msg.data, fn, arg);
	msgpack_unpacked_destroy(&msg);
	if (rc == 0 && (r == MSGPACK_UNPACK_PARSE_ERROR ||
	    r == MSGPACK_UNPACK_NOMEM_ERROR ||
	    msgpack_unpacker_message_size(up) > WARD_CONTROL_MSG_MAX))
		rc = -1;
	return rc;
}

WARD_EXPORT int
ward_control_serve_fd(int lfd, ward_control_fn fn, void *arg)
{
	struct pollfd pfd[WARD_CONTROL_CONNS + 1];
	msgpack_unpacker up[WARD_CONTROL_CONNS + 1];
	nfds_t n = 1, k;
	int fd;

	pfd[0].fd = lfd;
	pfd[0].events = POLLIN;
	for (;;) {
		if (poll(pfd, n, -1) == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (k = n - 1; k >= 1; k--) {
			if (pfd[k].revents == 0 ||
			    ward_control_read(pfd[k].fd, &up[k], fn, arg) == 0)
				continue;
			close(pfd[k].fd);
			msgpack_unpacker_destroy(&up[k]);
			pfd[k] = pfd[--n];
			up[k] = up[n];
		}
		if (!(pfd[0].revents & POLLIN))
			continue;
		if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			break;
		}
		if (n > WARD_CONTROL_CONNS ||
		    !msgpack_unpacker_init(&up[n], 65536)) {
			close(fd);
			continue;
		}
		pfd[n].fd = fd;
		pfd[n].events = POLLIN;
		pfd[n].revents = 0;
		n++;
	}
	for (k = 1; k < n; k++) {
		close(pfd[k].fd);
		msgpack_unpacker_destroy(&up[k]);
	}
	return -1;
}

WARD_EXPORT int
ward_control_serve(ward_control_fn fn, void *arg)
{
	int fd, rc, err;

	if ((fd = ward_control_listen()) == -1)
		return -1;
	rc = ward_control_serve_fd(fd, fn, arg);
	err = errno;
	close(fd);
	errno = err;
	return rc;
}
