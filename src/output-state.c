/*
 * output-state.c: an instance's captured output across a re-exec. The
 * pipes and log files stay open (their fds are handed over), so no writer
 * ever sees EPIPE and no byte is read twice or lost: what wardd had read
 * is in the rings, saved here byte for byte, and the rest is still in the
 * pipes. Followers are saved as their connections' fds and attached again
 * to the restored connections (conn_find_fd).
 *
 * layer: engine (output.c's own part; calls the output sinks, conn.c's
 * lookup and state.c)
 */
#include "config.h"

#include <sys/stat.h>

#include <stdlib.h>
#include <string.h>

#include "ward.h"
#include "output.h"

static void
output_state_save_stream(msgpack_packer *pk, const struct output_stream *st)
{
	size_t first;
	char *lin = NULL;

	msgpack_pack_map(pk, 13);	/* followers, holders: output_follow_save */
	state_pack_kv_fd(pk, "fd", st->fd);
	/* A memfd ring carries itself (output-ring.c). */
	state_pack_kv_fd(pk, "ring_fd", st->ring_fd);
	/* Else the ring, oldest byte first; not in a crash snapshot (too big
	 * to rewrite at each change: what it held is in the log files). */
	if (st->ring_len > 0 && st->ring_fd == -1 && !state_is_snapshot() &&
	    (lin = malloc(st->ring_len)) != NULL) {
		first = st->ring_cap - st->ring_start < st->ring_len ?
		    st->ring_cap - st->ring_start : st->ring_len;
		memcpy(lin, st->ring + st->ring_start, first);
		memcpy(lin + first, st->ring, st->ring_len - first);
	}
	state_pack_kv_bin(pk, "ring", lin, lin != NULL ? st->ring_len : 0);
	free(lin);
	codec_pack_kv_bool(pk, "mid_line", st->mid_line);
	codec_pack_kv_bool(pk, "dropping", st->dropping);
	state_pack_kv_double(pk, "window", st->window);
	codec_pack_kv_uint(pk, "window_lines", st->window_lines);
	codec_pack_kv_uint(pk, "dropped", st->dropped);
	state_pack_kv_bin(pk, "jline", st->jline, st->jlen);
	state_pack_kv_bin(pk, "carry", st->carry, st->ncarry);
	output_follow_save(pk, st);
	codec_pack_kv_bool(pk, "has_file", st->file != NULL);
}

static void
output_state_save_file(msgpack_packer *pk, const struct output_file *f)
{
	msgpack_pack_map(pk, 6);
	state_fd_salt(f->opens);	/* a rotation's file is another file */
	state_pack_kv_fd(pk, "fd", f->fd);
	state_fd_salt(f->opens);
	state_pack_kv_fd(pk, "dirfd", f->dirfd);
	codec_pack_kv_uint(pk, "opens", f->opens);
	codec_pack_kv_bool(pk, "as_user", f->as_user);
	codec_pack_kv_uint(pk, "size", f->size);
	codec_pack_kv_bool(pk, "failed", f->failed);
}

/* i's capture as a map (nil: nothing captured yet). */
void
output_state_save(msgpack_packer *pk, const struct instance *i)
{
	const struct output *o = i->output;
	int k;

	if (o == NULL) {
		msgpack_pack_nil(pk);
		return;
	}
	msgpack_pack_map(pk, 4);
	codec_pack_kv_bool(pk, "reserved", o->reserved);
	codec_pack_kv_uint(pk, "ring_reserved", o->ring_reserved);
	codec_pack_key(pk, "streams");
	msgpack_pack_array(pk, OUTPUT_NSTREAMS);
	for (k = 0; k < OUTPUT_NSTREAMS; k++)
		output_state_save_stream(pk, &o->s[k]);
	codec_pack_key(pk, "files");
	msgpack_pack_array(pk, OUTPUT_NSTREAMS);
	for (k = 0; k < OUTPUT_NSTREAMS; k++)
		output_state_save_file(pk, &o->files[k]);
}

static void
output_state_restore_stream(const msgpack_object *m, struct output_stream *st)
{
	const char *p;
	size_t n;
	int fd;

	st->fd = state_fd(m, "fd");
	output_pipe_adopt(st);	/* grown by the last image, or not */
	if ((fd = state_fd(m, "ring_fd")) != -1 &&
	    output_ring_adopt(st, fd) == 0)
		;	/* the memfd: what was read, to the last chunk */
	else if ((p = state_bin(m, "ring", &n)) != NULL && n > 0 &&
	    (st->ring = malloc(n)) != NULL) {
		memcpy(st->ring, p, n);
		st->ring_cap = st->ring_len = n;
		st->ring_start = 0;	/* grows on from here (output.c) */
	}
	st->mid_line = state_bool(m, "mid_line");
	st->dropping = state_bool(m, "dropping");
	st->window = state_double(m, "window", 0.);
	st->window_lines = state_u64(m, "window_lines", 0);
	st->dropped = state_u64(m, "dropped", 0);
	if ((p = state_bin(m, "jline", &n)) != NULL && n > 0 &&
	    n <= OUTPUT_LINE_MAX && (st->jline = malloc(OUTPUT_LINE_MAX)) != NULL) {
		memcpy(st->jline, p, n);
		st->jlen = n;
	}
	output_follow_restore(m, st);	/* a first follower clears carry */
	if ((p = state_bin(m, "carry", &n)) != NULL && n <= sizeof st->carry) {
		memcpy(st->carry, p, n);
		st->ncarry = n;
	}
	if (st->fd != -1) {
		ev_io_set(&st->rw, st->fd, EV_READ);
		ev_io_start(ward_loop, &st->rw);
	}
}

/*
 * Read i's capture back (i->spec is restored). Its ring reservation is
 * charged to its owner again. 0, or -1 if out of memory.
 */
int
output_state_restore(const msgpack_object *m, struct instance *i)
{
	const msgpack_object *a;
	struct output *o;
	struct stat sb;
	size_t n;
	int k;

	if (m == NULL || m->type != MSGPACK_OBJECT_MAP || i->spec.output == NULL)
		return 0;
	if ((o = output_get(i)) == NULL)
		return -1;
	o->reserved = state_bool(m, "reserved");
	o->ring_reserved = state_u64(m, "ring_reserved", 0);
	(void)budget_charge(i->owner_uid, BUDGET_RING, o->ring_reserved);
	a = state_array(m, "files", &n);
	for (k = 0; k < OUTPUT_NSTREAMS && (size_t)k < n; k++) {
		struct output_file *f = &o->files[k];

		f->fd = state_fd(&a[k], "fd");
		f->dirfd = state_fd(&a[k], "dirfd");
		f->as_user = state_bool(&a[k], "as_user");
		f->size = state_u64(&a[k], "size", 0);
		f->failed = state_bool(&a[k], "failed");
		f->opens = state_u64(&a[k], "opens", 0);
		/* Not saved: what the fd is tells (only wardd's own stdout,
		 * output-file.c's, can be a socket). */
		f->sock = f->fd != -1 && fstat(f->fd, &sb) == 0 &&
		    S_ISSOCK(sb.st_mode);
	}
	a = state_array(m, "streams", &n);
	for (k = 0; k < OUTPUT_NSTREAMS && (size_t)k < n; k++)
		output_state_restore_stream(&a[k], &o->s[k]);
	return 0;
}
