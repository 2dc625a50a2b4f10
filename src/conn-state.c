/*
 * conn-state.c: a client connection across a re-exec (reexec.c): the
 * socket stays open, and so does all that was in flight on it (unparsed
 * requests, the fds that came with them, unsent answers and the fds
 * riding on them). Read back as hostile input, like all of wardd's state.
 *
 * layer: transport (calls conn.c, budget.c, peer.c, state.c and base)
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

/* The conn whose socket is fd, or NULL (restores only: a scan). */
struct conn *
conn_find_fd(int fd)
{
	struct conn *c;

	TAILQ_FOREACH(c, &conns, entry) {
		if (c->fd == fd)
			return c;
	}
	return NULL;
}

/* A list of fds, [[at - base, [fd...]]...], in stream order. */
static void
conn_state_pack_fds(msgpack_packer *pk, const struct conn_fds *list,
    uint64_t base)
{
	const struct conn_fds *f;
	size_t n = 0;
	int k;

	for (f = list; f != NULL; f = f->next)
		n++;
	msgpack_pack_array(pk, n);
	for (f = list; f != NULL; f = f->next) {
		msgpack_pack_array(pk, 2);
		msgpack_pack_uint64(pk, f->at - base);
		msgpack_pack_array(pk, f->n);
		for (k = 0; k < f->n; k++)
			state_pack_fd(pk, f->fds[k]);
	}
}

/*
 * c as a map: its socket, who it is, the unread part of its input (with
 * the fds that came with it, by stream offset) and its queued answers.
 * A BROKEN conn is not saved: it was to be torn down anyway.
 */
void
conn_save(msgpack_packer *pk, const struct conn *c)
{
	int k;

	msgpack_pack_map(pk, 14);
	state_pack_kv_fd(pk, "fd", c->fd);
	codec_pack_kv_bool(pk, "closing", c->state == CONN_CLOSING);
	codec_pack_kv_uint(pk, "uid", c->peer.uid);
	codec_pack_kv_uint(pk, "gid", c->peer.gid);
	codec_pack_kv_int(pk, "pid", c->peer.pid);
	codec_pack_kv_bool(pk, "admin", c->peer.admin);
	codec_pack_key(pk, "groups");
	msgpack_pack_array(pk, c->peer.ngroups);
	for (k = 0; k < c->peer.ngroups; k++)
		msgpack_pack_uint32(pk, c->peer.groups[k]);
	state_pack_kv_bin(pk, "in", c->in.data ? c->in.data + c->in.off : "",
	    buf_used(&c->in));
	codec_pack_kv_uint(pk, "in_base", c->in_base);
	codec_pack_key(pk, "fds");
	conn_state_pack_fds(pk, c->fds, 0);
	/* Answers' fds, at offsets from the first unsent byte of "out". */
	codec_pack_key(pk, "out_fds");
	conn_state_pack_fds(pk, c->out_fds, c->out_sent);
	codec_pack_kv_bool(pk, "fds_lost", c->fds_lost);
	codec_pack_kv_bool(pk, "fds_over", c->fds_over);
	state_pack_kv_bin(pk, "out", c->out.data ? c->out.data + c->out.off : "",
	    buf_used(&c->out));
}

void
conn_save_all(msgpack_packer *pk)
{
	struct conn *c;
	size_t n = 0;

	TAILQ_FOREACH(c, &conns, entry) {
		if (c->state == CONN_OPEN || c->state == CONN_CLOSING)
			n++;
	}
	msgpack_pack_array(pk, n);
	TAILQ_FOREACH(c, &conns, entry) {
		if (c->state == CONN_OPEN || c->state == CONN_CLOSING)
			conn_save(pk, c);
	}
}

/*
 * Fds of a restored conn, [at, [fd...]] each in stream order, into *fp:
 * "fds" (received with requests) or "out_fds" (riding on answers).
 */
static void
conn_restore_fds(struct conn *c, const msgpack_object *m, const char *key,
    struct conn_fds **fp)
{
	const msgpack_object *a, *e;
	struct conn_fds *f;
	size_t n, j, k;

	a = state_array(m, key, &n);
	for (j = 0; j < n; j++) {
		e = &a[j];
		if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 2 ||
		    e->via.array.ptr[1].type != MSGPACK_OBJECT_ARRAY ||
		    e->via.array.ptr[1].via.array.size > REQUEST_MAX_FDS ||
		    (f = calloc(1, sizeof *f)) == NULL) {
			c->fds_lost = 1;	/* its request is refused */
			continue;
		}
		f->at = e->via.array.ptr[0].via.u64;
		for (k = 0; k < e->via.array.ptr[1].via.array.size; k++) {
			int fd = state_fd_obj(&e->via.array.ptr[1].via.array.ptr[k]);

			if (fd == -1)
				c->fds_lost = 1;
			else
				f->fds[f->n++] = fd;
		}
		(void)budget_charge(c->peer.uid, BUDGET_FDS, f->n);
		*fp = f;
		fp = &f->next;
	}
}

/*
 * A conn read back after a re-exec, with dispatch and lost as conn_new
 * takes them; its uid's budget is charged again. NULL if it cannot be
 * (its socket is then closed with the untaken fds).
 */
struct conn *
conn_restore(const msgpack_object *m, conn_dispatch_fn dispatch,
    void (*lost)(void))
{
	const msgpack_object *a;
	struct peer peer;
	struct conn *c;
	const char *p;
	gid_t *groups = NULL;
	size_t n, k;
	int fd;

	if ((fd = state_fd(m, "fd")) == -1 || fd_set_flags(fd, 1, 1) == -1)
		return NULL;
	a = state_array(m, "groups", &n);
	if (n > 0 && n <= 65536 && (groups = calloc(n, sizeof *groups)) != NULL) {
		for (k = 0; k < n; k++)
			groups[k] = a[k].via.u64;
	} else
		n = 0;
	peer_init(&peer, fd, state_u64(m, "uid", (uint64_t)-1),
	    state_u64(m, "gid", (uint64_t)-1), state_i64(m, "pid", 0), groups, n);
	(void)budget_charge(peer.uid, BUDGET_CONNS, 1);
	if ((c = conn_new(fd, &peer, dispatch, lost)) == NULL)
		return NULL;
	c->in_base = state_u64(m, "in_base", 0);
	if ((p = state_bin(m, "in", &n)) != NULL && n > 0 &&
	    (n > CONN_IN_MAX || buf_append(&c->in, p, n) == -1))
		c->fds_lost = 1;
	if ((p = state_bin(m, "out", &n)) != NULL && n > 0 &&
	    buf_append(&c->out, p, n) == -1)
		conn_set_state(c, CONN_BROKEN);
	conn_restore_fds(c, m, "fds", &c->fds);
	conn_restore_fds(c, m, "out_fds", &c->out_fds);
	c->fds_lost |= state_bool(m, "fds_lost");
	c->fds_over |= state_bool(m, "fds_over");
	conn_charge(c);
	if (state_bool(m, "closing") && c->state == CONN_OPEN)
		conn_set_state(c, CONN_CLOSING);
	if (buf_used(&c->out) > 0)
		ev_io_start(ward_loop, &c->ww);
	conn_update(c);
	return c;
}
