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

#include <sys/uio.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "ward.h"
#include "output.h"

#define OUTPUT_FOLLOW_MAX	1024		/* follows per connection */

/* One connection following one stream (instance.log with follow). */
struct output_follow {
	struct conn_attachment		 att;		/* on c; first member */
	struct conn			*c;
	struct output_stream		*st;
	int				 hold;		/* block mode waits for it */
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
 * new output of st. Following twice is following once (with the last
 * hold). hold: a block-mode stream waits for this follower rather than
 * drop it (output_hold); others that fall behind are dropped, so a
 * viewer never slows the payload unless it asked to. -1 with e set:
 * too_large (too many follows on c), or out of memory.
 */
int
output_follow_add(struct conn *c, struct output_stream *st, int hold,
    struct ward_err *e)
{
	struct output_follow *f;
	int n = 0;

	OUTPUT_FOLLOWS(f, c) {
		if (f->st == st) {
			f->hold = hold;
			return 0;
		}
		n++;
	}
	if (n >= OUTPUT_FOLLOW_MAX)
		return ward_err_set(e, WARD_E_TOO_LARGE, "this connection "
		    "follows too many streams already");
	if ((f = calloc(1, sizeof *f)) == NULL)
		return ward_err_oom(e);
	f->c = c;
	f->st = st;
	f->hold = hold;
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

/* The first byte from p that is >= 0x80 or 0 (end if none), 32 at a time. */
static const unsigned char *
output_follow_ascii(const unsigned char *p, const unsigned char *end)
{
#ifdef __SSE2__
	const __m128i zero = _mm_setzero_si128();

	while (end - p >= 32) {
		__m128i a = _mm_loadu_si128((const __m128i *)(const void *)p);
		__m128i b = _mm_loadu_si128((const __m128i *)(const void *)
		    (p + 16));
		__m128i z = _mm_or_si128(_mm_cmpeq_epi8(a, zero),
		    _mm_cmpeq_epi8(b, zero));

		/* movemask: the high bits, of the bytes or of their == 0. */
		if (_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(a, b), z)) != 0)
			break;
		p += 32;
	}
#else
	const uint64_t ones = UINT64_C(0x0101010101010101);
	const uint64_t highs = UINT64_C(0x8080808080808080);
	uint64_t v[4], any;

	while (end - p >= 32) {
		memcpy(v, p, 32);
		any = v[0] | v[1] | v[2] | v[3] |
		    ((v[0] - ones) & ~v[0]) | ((v[1] - ones) & ~v[1]) |
		    ((v[2] - ones) & ~v[2]) | ((v[3] - ones) & ~v[3]);
		if ((any & highs) != 0)
			break;
		p += 32;
	}
#endif
	return p;
}

/*
 * Is data[0..n) valid UTF-8 without NUL, so it can be sent as it is
 * (utf8_clean would copy it unchanged)? ASCII, the usual output, is looked
 * at a word at a time; a multi-byte sequence is checked by utf8_valid.
 */
static int
output_follow_plain(const char *data, size_t n)
{
	const uint64_t ones = UINT64_C(0x0101010101010101);
	const uint64_t highs = UINT64_C(0x8080808080808080);
	const unsigned char *p = (const unsigned char *)data;
	const unsigned char *end = p + n;
	uint64_t w;
	size_t need;

	while (p < end) {
		p = output_follow_ascii(p, end);
		if (p == end)
			break;
		if (end - p >= 8) {
			memcpy(&w, p, 8);
			/* No byte >= 0x80 and no byte 0: skip the word. */
			if (((w | ((w - ones) & ~w)) & highs) == 0) {
				p += 8;
				continue;
			}
		}
		if (*p == 0)
			return 0;
		if (*p < 0x80) {
			p++;
			continue;
		}
		need = *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : 2;
		if (need > (size_t)(end - p) || !utf8_valid((const char *)p, need))
			return 0;
		p += need;
	}
	return 1;
}

/* Queue one packed notification (head, then body) to each follower. */
static void
output_follow_send(struct output_stream *st, const struct buf *head,
    const char *body, size_t n)
{
	struct iovec iov[2] = {
		{ .iov_base = head->data, .iov_len = head->len },
		{ .iov_base = (void *)(uintptr_t)body, .iov_len = n }	/* only read */
	};
	struct output_follow *f, *next;

	/* An overflow frees only its own conn's follows, never next. */
	for (f = LIST_FIRST(&st->followers); f != NULL; f = next) {
		next = LIST_NEXT(f, stream_entry);
		if (!conn_is_open(f->c))
			continue;	/* on its way out; conn_lost unfollows */
		if (buf_used(&f->c->out) + head->len + n > CONN_OUT_CAP) {
			output_follow_overflow(f);
			continue;
		}
		conn_queuev(f->c, iov, 2);
		conn_flush(f->c);
	}
}

/*
 * Send a kept chunk to the stream's followers, packed once. Valid UTF-8
 * (most output) goes from p as it is; anything else through utf8_clean.
 */
void
output_follow_notify(struct output_stream *st, const char *p, size_t n)
{
	struct buf b = { 0 };
	msgpack_packer pk;
	char *joined = NULL, *clean = NULL;
	const char *body;
	size_t whole, len;

	if (LIST_EMPTY(&st->followers))
		return;
	if (st->ncarry > 0) {
		/* The rest of a sequence cut at the last chunk's end. */
		if ((joined = malloc(st->ncarry + n)) == NULL)
			return;
		memcpy(joined, st->carry, st->ncarry);
		memcpy(joined + st->ncarry, p, n);
		n += st->ncarry;
		p = joined;
	}
	whole = output_follow_utf8_whole(p, n);
	st->ncarry = n - whole;
	memcpy(st->carry, p + whole, st->ncarry);
	if (whole > 0 && output_follow_plain(p, whole)) {
		body = p;
		len = whole;
	} else if (whole > 0 && (clean = utf8_clean(p, whole)) != NULL) {
		body = clean;
		len = strlen(clean);
	} else {
		free(joined);
		return;
	}
	msgpack_packer_init(&pk, &b, codec_sbuffer_write);
	output_follow_pack_head(&pk, st, 1);
	codec_pack_key(&pk, "data");
	msgpack_pack_str(&pk, len);
	if (b.data != NULL)
		output_follow_send(st, &b, body, len);
	buf_free(&b);
	free(clean);
	free(joined);
}

/* The most output any follower of st has queued and not sent yet. */
size_t
output_follow_backlog(const struct output_stream *st)
{
	const struct output_follow *f;
	size_t most = 0;

	LIST_FOREACH(f, &st->followers, stream_entry) {
		if (f->hold && conn_is_open(f->c) && buf_used(&f->c->out) > most)
			most = buf_used(&f->c->out);
	}
	return most;
}

/* Waiting for them is over: followers with more than max queued go. */
void
output_follow_shed(struct output_stream *st, size_t max)
{
	struct output_follow *f, *next;

	for (f = LIST_FIRST(&st->followers); f != NULL; f = next) {
		next = LIST_NEXT(f, stream_entry);
		if (conn_is_open(f->c) && buf_used(&f->c->out) > max)
			output_follow_overflow(f);
	}
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
	n = 0;
	LIST_FOREACH(f, &st->followers, stream_entry)
		n += f->hold;
	codec_pack_key(pk, "holders");		/* those of them with hold */
	msgpack_pack_array(pk, n);
	LIST_FOREACH(f, &st->followers, stream_entry) {
		if (f->hold)
			msgpack_pack_int(pk, f->c->fd);
	}
}

/* Is fd among the array a's integers? */
static int
output_follow_listed(const msgpack_object *a, size_t n, int fd)
{
	size_t j;

	for (j = 0; j < n; j++) {
		if (a[j].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
		    a[j].via.u64 == (uint64_t)fd)
			return 1;
	}
	return 0;
}

/* Follow st again from each restored conn that followed it. */
void
output_follow_restore(const msgpack_object *m, struct output_stream *st)
{
	struct ward_err e = WARD_ERR_INIT;
	const msgpack_object *a, *h;
	struct conn *c;
	size_t n, nh, j;

	h = state_array(m, "holders", &nh);
	a = state_array(m, "followers", &n);
	for (j = 0; j < n; j++) {
		if (a[j].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
		    (c = conn_find_fd((int)a[j].via.u64)) == NULL)
			continue;
		if (output_follow_add(c, st, output_follow_listed(h, nh,
		    c->fd), &e) == -1)
			log_warnx("state: a follow of fd %d is lost: %s",
			    c->fd, e.msg);
	}
}
