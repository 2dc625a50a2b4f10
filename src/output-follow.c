/*
 * output-follow.c: the connections that follow a captured stream
 * (instance.log with follow: true). Each new chunk of kept output is
 * packed once as a ward.log notification and queued to every follower,
 * held back at an incomplete UTF-8 sequence so each notification is valid
 * UTF-8. A follower that falls a whole output buffer behind is told so and
 * dropped, never waited for. A follow is a conn attachment (conn_attach),
 * so it goes with its conn; it goes with its stream in
 * output_follow_free_all.
 *
 * layer: engine (queues to conn.c, packs with codec.c, names the stream
 * with output-spec.c)
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ward.h"
#include "output.h"

#define OUTPUT_FOLLOW_MAX	1024		/* follows per connection */

/* One connection following one stream (instance.log with follow). */
struct output_follow {
	struct conn_attachment		 att;		/* on c; first member */
	struct conn			*c;
	struct output_stream		*st;
	LIST_ENTRY(output_follow)	 stream_entry;	/* st->followers */
};

/* c is going away; conn_lost took f off it already. */
static void
output_follow_detach_cb(struct conn *c, struct conn_attachment *a)
{
	struct output_follow *f = (struct output_follow *)a;

	LIST_REMOVE(f, stream_entry);
	free(f);
}

static void
output_follow_free(struct output_follow *f)
{
	conn_detach(f->c, &f->att);
	output_follow_detach_cb(f->c, &f->att);
}

/* c's follows, one by one (conn_attachment_next). */
#define OUTPUT_FOLLOWS(f, c)						\
	for ((f) = (struct output_follow *)conn_attachment_next((c), NULL, \
	    output_follow_detach_cb); (f) != NULL;			\
	    (f) = (struct output_follow *)conn_attachment_next((c),	\
	    &(f)->att, output_follow_detach_cb))

/*
 * From now on c receives [2, "ward.log", [{id, name, stream, data}]] for
 * new output of st. Following twice is following once. -1 with e set:
 * too_large (too many follows on c), or out of memory.
 */
int
output_follow_add(struct conn *c, struct output_stream *st, struct ward_err *e)
{
	struct output_follow *f;
	int n = 0;

	OUTPUT_FOLLOWS(f, c) {
		if (f->st == st)
			return 0;
		n++;
	}
	if (n >= OUTPUT_FOLLOW_MAX)
		return ward_err_set(e, WARD_E_TOO_LARGE, "this connection "
		    "follows too many streams already");
	if ((f = calloc(1, sizeof *f)) == NULL)
		return ward_err_oom(e);
	f->c = c;
	f->st = st;
	if (LIST_EMPTY(&st->followers))
		st->ncarry = 0;
	conn_attach(c, &f->att, output_follow_detach_cb);
	LIST_INSERT_HEAD(&st->followers, f, stream_entry);
	return 0;
}

/* c no longer follows st (if it did). */
void
output_follow_remove(struct conn *c, struct output_stream *st)
{
	struct output_follow *f;

	OUTPUT_FOLLOWS(f, c) {
		if (f->st == st) {
			output_follow_free(f);
			return;
		}
	}
}

/* st goes away (its instance is removed): so do its follows. */
void
output_follow_free_all(struct output_stream *st)
{
	while (!LIST_EMPTY(&st->followers))
		output_follow_free(LIST_FIRST(&st->followers));
}

/* c is dropped (it fell behind): it follows nothing any more. */
static void
output_follow_drop_conn(struct conn *c)
{
	struct output_follow *f;

	while ((f = (struct output_follow *)conn_attachment_next(c, NULL,
	    output_follow_detach_cb)) != NULL)
		output_follow_free(f);
}

static void
output_follow_pack_head(msgpack_packer *pk, const struct output_stream *st,
    size_t fields)
{
	const struct instance *i = st->out->inst;

	msgpack_pack_array(pk, 3);
	msgpack_pack_int(pk, WARD_MSG_NOTIFY);
	codec_pack_str(pk, WARD_N_LOG);
	msgpack_pack_array(pk, 1);
	msgpack_pack_map(pk, fields + 3);
	codec_pack_kv_uint(pk, "id", i->id);
	codec_pack_kv_str(pk, "name", i->spec.name);
	codec_pack_kv_str(pk, "stream", output_stream_name(st->which));
}

/* The follower fell a whole output buffer behind: tell it, then let it go. */
static void
output_follow_overflow(struct output_follow *f)
{
	struct conn *c = f->c;
	struct buf b = { 0 };
	msgpack_packer pk;

	msgpack_packer_init(&pk, &b, codec_sbuffer_write);
	output_follow_pack_head(&pk, f->st, 2);
	codec_pack_kv_bool(&pk, "overflow", 1);
	codec_pack_kv_str(&pk, "message", "this follower did not read its log "
	    "notifications and fell more than the output cap behind; it is "
	    "dropped");
	output_follow_drop_conn(c);	/* f is freed */
	conn_queue(c, b.data, b.len);
	buf_free(&b);
	conn_close_after_flush(c);
}

/*
 * Length of data[0..n) that ends on a whole UTF-8 sequence: an incomplete
 * one at the end (at most 3 bytes) waits for the next chunk.
 */
static size_t
output_follow_utf8_whole(const char *data, size_t n)
{
	const unsigned char *p = (const unsigned char *)data;
	size_t k, need;

	for (k = 1; k <= 3 && k <= n; k++) {
		unsigned char b = p[n - k];

		if ((b & 0xc0) == 0x80)
			continue;		/* a continuation byte */
		need = b >= 0xf5 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 :
		    b >= 0xc2 ? 2 : 1;
		return need > k && need <= 4 ? n - k : n;
	}
	return n;
}

/* Send a kept chunk to the stream's followers, packed once. */
void
output_follow_notify(struct output_stream *st, const char *p, size_t n)
{
	struct output_follow *f, *next;
	struct buf b = { 0 };
	msgpack_packer pk;
	char *joined, *clean;
	size_t whole;

	if (LIST_EMPTY(&st->followers))
		return;
	if ((joined = malloc(st->ncarry + n)) == NULL)
		return;
	memcpy(joined, st->carry, st->ncarry);
	memcpy(joined + st->ncarry, p, n);
	n += st->ncarry;
	whole = output_follow_utf8_whole(joined, n);
	st->ncarry = n - whole;
	memcpy(st->carry, joined + whole, st->ncarry);
	clean = whole > 0 ? utf8_clean(joined, whole) : NULL;
	free(joined);
	if (clean == NULL)
		return;
	msgpack_packer_init(&pk, &b, codec_sbuffer_write);
	output_follow_pack_head(&pk, st, 1);
	codec_pack_kv_str(&pk, "data", clean);
	free(clean);
	if (b.data == NULL)
		return;
	/* An overflow frees only its own conn's follows, never next. */
	for (f = LIST_FIRST(&st->followers); f != NULL; f = next) {
		next = LIST_NEXT(f, stream_entry);
		if (!conn_is_open(f->c))
			continue;	/* on its way out; conn_lost unfollows */
		if (buf_used(&f->c->out) + b.len > CONN_OUT_CAP) {
			output_follow_overflow(f);
			continue;
		}
		conn_queue(f->c, b.data, b.len);
		conn_flush(f->c);
	}
	buf_free(&b);
}

/* ---- across a re-exec (output-state.c) */

/* "followers": the fds of the conns that follow st. */
void
output_follow_save(msgpack_packer *pk, const struct output_stream *st)
{
	struct output_follow *f;
	size_t n = 0;

	LIST_FOREACH(f, &st->followers, stream_entry)
		n++;
	codec_pack_key(pk, "followers");
	msgpack_pack_array(pk, n);
	LIST_FOREACH(f, &st->followers, stream_entry)
		msgpack_pack_int(pk, f->c->fd);
}

/* Follow st again from each restored conn that followed it. */
void
output_follow_restore(const msgpack_object *m, struct output_stream *st)
{
	struct ward_err e = WARD_ERR_INIT;
	const msgpack_object *a;
	struct conn *c;
	size_t n, j;

	a = state_array(m, "followers", &n);
	for (j = 0; j < n; j++) {
		if (a[j].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
		    (c = conn_find_fd((int)a[j].via.u64)) == NULL)
			continue;
		if (output_follow_add(c, st, &e) == -1)
			log_warnx("state: a follow of fd %d is lost: %s",
			    c->fd, e.msg);
	}
}
