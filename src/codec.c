/*
 * codec.c: msgpack in and out. Input from a socket is hostile: codec_scan
 * walks the raw bytes of one message and checks every count and length
 * against the limits and against the bytes actually present, before
 * msgpack-c is allowed to allocate anything for it (msgpack-c issue 1013:
 * "dd ff ff ff ff" alone asks its unpacker for ~96 GB). codec_args then
 * checks a params map against a command's argument spec. Out: the pack
 * helpers, and the row packer (codec_row_init), through which the same
 * code that packs a record as a map packs its values alone as a row of a
 * table (instance.list's compact form).
 *
 * layer: base
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ward.h"

static uint64_t
codec_be(const unsigned char *p, int n)
{
	uint64_t v = 0;

	while (n-- > 0)
		v = (v << 8) | *p++;
	return v;
}

#define codec_scan_fail(err, ecode, ...) \
	(ward_err_set((err), (ecode), __VA_ARGS__), SCAN_ERROR)

/*
 * Find the end of the first msgpack object in buf[0..avail). SCAN_MORE means
 * what is there is a valid prefix within the limits: a request's.
 */
enum scan_result
codec_scan(const char *buf, size_t avail, size_t *len, struct ward_err *err)
{
	return codec_scan_within(buf, avail, len, err, WARD_MAX_REQUEST,
	    WARD_MAX_ELEMENTS);
}

/*
 * codec_scan with other limits: at most max bytes and max_elements
 * objects (reexec.c: a state is bigger than any request). What it calls
 * complete, msgpack-c unpacks without believing a count the bytes cannot
 * hold (it allocates each container's objects from its header).
 */
enum scan_result
codec_scan_within(const char *buf, size_t avail, size_t *len,
    struct ward_err *err, uint64_t max, uint64_t max_elements)
{
	const unsigned char *p = (const unsigned char *)buf;
	uint64_t stack[WARD_MAX_DEPTH + 1];
	uint64_t n, skip, elements = 0;
	size_t pos = 0;
	int sp = 0, hdr, container;
	unsigned char b;

	stack[0] = 1;
	while (sp >= 0) {
		if (stack[sp] == 0) {
			sp--;
			continue;
		}
		stack[sp]--;
		if (pos >= avail)
			return SCAN_MORE;
		if (++elements > max_elements)
			return codec_scan_fail(err, WARD_E_TOO_LARGE,
			    "message has more than %" PRIu64 " objects",
			    max_elements);
		b = p[pos];
		n = 0;		/* children of a container */
		container = (b >= 0x80 && b <= 0x9f) || (b >= 0xdc && b <= 0xdf);
		skip = 0;	/* payload bytes after the header */
		hdr = 1;	/* header bytes, type byte included */
		if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
			;
		else if (b >= 0x80 && b <= 0x8f)
			n = 2 * (b & 0x0f);
		else if (b >= 0x90 && b <= 0x9f)
			n = b & 0x0f;
		else if (b >= 0xa0 && b <= 0xbf)
			skip = b & 0x1f;
		else {
			/* Types whose header carries a length or fixed size. */
			static const struct {
				unsigned char	 lenbytes;	/* length field size */
				unsigned char	 fixed;		/* fixed payload size */
				unsigned char	 ext;		/* one type byte */
				unsigned char	 kind;		/* 1 array, 2 map */
			} t[0x20] = {
				[0x04] = { 1, 0, 0, 0 }, [0x05] = { 2, 0, 0, 0 },
				[0x06] = { 4, 0, 0, 0 }, [0x07] = { 1, 0, 1, 0 },
				[0x08] = { 2, 0, 1, 0 }, [0x09] = { 4, 0, 1, 0 },
				[0x0a] = { 0, 4, 0, 0 }, [0x0b] = { 0, 8, 0, 0 },
				[0x0c] = { 0, 1, 0, 0 }, [0x0d] = { 0, 2, 0, 0 },
				[0x0e] = { 0, 4, 0, 0 }, [0x0f] = { 0, 8, 0, 0 },
				[0x10] = { 0, 1, 0, 0 }, [0x11] = { 0, 2, 0, 0 },
				[0x12] = { 0, 4, 0, 0 }, [0x13] = { 0, 8, 0, 0 },
				[0x14] = { 0, 1, 1, 0 }, [0x15] = { 0, 2, 1, 0 },
				[0x16] = { 0, 4, 1, 0 }, [0x17] = { 0, 8, 1, 0 },
				[0x18] = { 0, 16, 1, 0 }, [0x19] = { 1, 0, 0, 0 },
				[0x1a] = { 2, 0, 0, 0 }, [0x1b] = { 4, 0, 0, 0 },
				[0x1c] = { 2, 0, 0, 1 }, [0x1d] = { 4, 0, 0, 1 },
				[0x1e] = { 2, 0, 0, 2 }, [0x1f] = { 4, 0, 0, 2 },
			};
			unsigned i = b - 0xc0;

			if (b == 0xc1 || (t[i].lenbytes == 0 && t[i].fixed == 0))
				return codec_scan_fail(err, WARD_E_PROTOCOL,
				    "invalid msgpack type byte 0x%02" PRIx64,
				    (uint64_t)b);
			hdr = 1 + t[i].lenbytes;
			if (pos + hdr > avail)
				return SCAN_MORE;
			if (t[i].lenbytes > 0) {
				uint64_t v = codec_be(p + pos + 1, t[i].lenbytes);

				if (t[i].kind == 1)
					n = v;
				else if (t[i].kind == 2)
					n = 2 * v;
				else
					skip = v;
			} else
				skip = t[i].fixed;
			skip += t[i].ext;
		}
		/* Every child takes at least one byte: a count is a length. */
		if (n > max || skip > max)
			return codec_scan_fail(err, WARD_E_TOO_LARGE,
			    "message declares %" PRIu64 " elements or bytes, "
			    "over the %" PRIu64 "-byte limit", n > skip ? n : skip,
			    max);
		pos += hdr;
		if (pos + skip > avail)
			return SCAN_MORE;
		pos += skip;
		if (pos > max)
			return codec_scan_fail(err, WARD_E_TOO_LARGE,
			    "message is over %" PRIu64 " bytes", max);
		/* Empty containers count too: depth is what is written. */
		if (container && sp + 1 > WARD_MAX_DEPTH)
			return codec_scan_fail(err, WARD_E_TOO_LARGE,
			    "message nests deeper than %" PRIu64,
			    (uint64_t)WARD_MAX_DEPTH);
		if (n > 0)
			stack[++sp] = n;
	}
	*len = pos;
	return SCAN_COMPLETE;
}

/* Strings may arrive as str or bin: many clients send bin for raw bytes. */
int
codec_is_str(const msgpack_object *o)
{
	return o->type == MSGPACK_OBJECT_STR || o->type == MSGPACK_OBJECT_BIN;
}

static void
codec_str_view(const msgpack_object *o, const char **p, size_t *n)
{
	if (o->type == MSGPACK_OBJECT_STR) {
		*p = o->via.str.ptr;
		*n = o->via.str.size;
	} else {
		*p = o->via.bin.ptr;
		*n = o->via.bin.size;
	}
}

int
codec_streq(const msgpack_object *o, const char *s)
{
	const char *p;
	size_t n;

	if (!codec_is_str(o))
		return 0;
	codec_str_view(o, &p, &n);
	return n == strlen(s) && memcmp(p, s, n) == 0;
}

/* A NUL-terminated copy; NULL if it holds a NUL byte or memory is out. */
char *
codec_strdup(const msgpack_object *o)
{
	const char *p;
	char *s;
	size_t n;

	codec_str_view(o, &p, &n);
	if (memchr(p, '\0', n) != NULL)
		return NULL;
	if ((s = malloc(n + 1)) == NULL)
		return NULL;
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

static const char *
codec_type_name(enum arg_type t)
{
	switch (t) {
	case ARG_STR:
		return "a string";
	case ARG_UINT:
		return "a non-negative integer";
	case ARG_INT:
		return "an integer";
	case ARG_BOOL:
		return "a boolean";
	case ARG_MAP:
		return "a map";
	case ARG_ARRAY:
		return "an array";
	case ARG_SIGNAL:
		return "a signal number or name";
	case ARG_ANY:
		break;
	}
	return "a value";
}

static int
codec_type_ok(const msgpack_object *o, enum arg_type t)
{
	switch (t) {
	case ARG_STR:
		return codec_is_str(o);
	case ARG_UINT:
		return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER;
	case ARG_INT:
		return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
		    o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER;
	case ARG_BOOL:
		return o->type == MSGPACK_OBJECT_BOOLEAN;
	case ARG_MAP:
		return o->type == MSGPACK_OBJECT_MAP;
	case ARG_ARRAY:
		return o->type == MSGPACK_OBJECT_ARRAY;
	case ARG_SIGNAL:
		return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
		    codec_is_str(o);
	case ARG_ANY:
		return 1;
	}
	return 0;
}

/*
 * Match a params map against spec: out[i] is the value of spec[i] or NULL.
 * Unknown keys, repeated keys and wrong types are errors (a typo must not be
 * silently ignored): -1 with e set, code invalid_argument. A nil value
 * counts as absent. params may be NULL.
 */
int
codec_args(const msgpack_object *params, const struct arg_spec *spec,
    const msgpack_object **out, struct ward_err *e)
{
	const msgpack_object_kv *kv;
	uint32_t i;
	uint64_t seen = 0;	/* bit per spec entry: nil values count */
	int j;

	for (j = 0; spec[j].name != NULL; j++)
		out[j] = NULL;
	if (params == NULL || params->type == MSGPACK_OBJECT_NIL)
		return 0;
	if (params->type != MSGPACK_OBJECT_MAP)
		return ward_err_set(e, WARD_E_INVALID_ARGUMENT, "params must be "
		    "an array holding one map");
	for (i = 0; i < params->via.map.size; i++) {
		kv = &params->via.map.ptr[i];
		if (!codec_is_str(&kv->key))
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "map keys must be strings");
		for (j = 0; spec[j].name != NULL; j++) {
			if (codec_streq(&kv->key, spec[j].name))
				break;
		}
		if (spec[j].name == NULL) {
			const char *p;
			size_t n;

			codec_str_view(&kv->key, &p, &n);
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "unknown key '%.*s'", (int)(n > 64 ? 64 : n), p);
		}
		if (seen & (1ULL << j))
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "key '%s' given twice", spec[j].name);
		seen |= 1ULL << j;
		if (kv->val.type == MSGPACK_OBJECT_NIL)
			continue;
		if (!codec_type_ok(&kv->val, spec[j].type))
			return ward_err_set(e, WARD_E_INVALID_ARGUMENT,
			    "'%s' must be %s", spec[j].name,
			    codec_type_name(spec[j].type));
		out[j] = &kv->val;
	}
	return 0;
}

void
codec_pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);

	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

/*
 * A row packer's key, once it is known to name a value (the next key or
 * the row's end comes, not a nested record): in the names pass its name,
 * with nils a nil for its value.
 */
static void
codec_row_flush(struct codec_row *r)
{
	const char *k = r->last;

	if (!r->pending)
		return;
	r->pending = 0;
	if (r->names != NULL && r->last_prefix != NULL) {
		msgpack_pack_str(r->names, strlen(r->last_prefix) + 1 + strlen(k));
		msgpack_pack_str_body(r->names, r->last_prefix,
		    strlen(r->last_prefix));
		msgpack_pack_str_body(r->names, ".", 1);
		msgpack_pack_str_body(r->names, k, strlen(k));
	} else if (r->names != NULL)
		codec_pack_str(r->names, k);
	else if (r->nils && buf_append(r->out, "\xc0", 1) == -1)	/* nil */
		r->failed = 1;
}

/*
 * A record's key: packed as it is, or by a row packer counted, and named
 * in its names pass with its record's prefix ("metrics.rss_kb").
 */
void
codec_pack_key(msgpack_packer *pk, const char *k)
{
	struct codec_row *r;

	if (pk->callback != codec_row_write) {
		codec_pack_str(pk, k);
		return;
	}
	r = pk->data;
	if (r->pending && (r->names != NULL || r->nils))
		codec_row_flush(r);
	r->pending = 0;
	r->nkeys++;
	r->last = k;
	r->last_prefix = NULL;
	if (r->nested > 0) {
		r->nested--;
		r->last_prefix = r->prefix;
	}
	r->pending = 1;
}

/*
 * The header of a record: a map with fixed keys (a status, its metrics,
 * its program). A row packer writes nothing: the record's values join the
 * row, and a record nested (one level deep) under a key takes that key's
 * place, its keys named "key.inner".
 */
void
codec_pack_record(msgpack_packer *pk, size_t n)
{
	struct codec_row *r;

	if (pk->callback != codec_row_write) {
		msgpack_pack_map(pk, n);
		return;
	}
	r = pk->data;
	if (r->pending) {
		r->pending = 0;
		r->nkeys--;
		r->prefix = r->last;
		r->nested = n;
	}
}

/*
 * A row packer's output: what is not a key is appended to its buffer (not
 * a conn's: a list packs some 100 small writes per row).
 */
int
codec_row_write(void *data, const char *p, size_t n)
{
	struct codec_row *r = data;

	if (r->names != NULL || r->nils)
		return 0;	/* no values: the names pass, or nils instead */
	if (r->out->off == 0 && r->out->len + n <= r->out->cap) {
		memcpy(r->out->data + r->out->len, p, n);
		r->out->len += n;
		return 0;
	}
	if (buf_append(r->out, p, n) == -1) {
		r->failed = 1;
		return -1;
	}
	return 0;
}

/*
 * Make pk a row packer into out: records packed through it give their
 * values alone, in order, as one row of a table; r->failed tells of a
 * failed append. With names, nothing goes to out; the keys are packed
 * into names instead (once, for the header).
 */
void
codec_row_init(msgpack_packer *pk, struct codec_row *r, struct buf *out,
    msgpack_packer *names)
{
	memset(r, 0, sizeof *r);
	r->out = out;
	r->names = names;
	msgpack_packer_init(pk, r, codec_row_write);
}

/*
 * With on, the records packed next give nil for each value (the part of a
 * row an instance lacks, packed from a stand-in); off ends that.
 */
void
codec_row_nils(msgpack_packer *pk, int on)
{
	struct codec_row *r = pk->data;

	codec_row_flush(r);
	r->nils = on;
}

/* The end of a row: its width (the values packed), reset for the next. */
size_t
codec_row_end(msgpack_packer *pk)
{
	struct codec_row *r = pk->data;
	size_t n;

	codec_row_flush(r);
	n = r->nkeys;
	r->nkeys = 0;
	r->nested = 0;
	return n;
}

/* Whether pk packs rows (see codec_row_init). */
int
codec_row_mode(const msgpack_packer *pk)
{
	return pk->callback == codec_row_write;
}

/* A NULL value packs as nil, so optional fields keep one shape. */
void
codec_pack_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
	codec_pack_key(pk, k);
	if (v == NULL)
		msgpack_pack_nil(pk);
	else
		codec_pack_str(pk, v);
}

void
codec_pack_kv_uint(msgpack_packer *pk, const char *k, uint64_t v)
{
	codec_pack_key(pk, k);
	msgpack_pack_uint64(pk, v);
}

void
codec_pack_kv_int(msgpack_packer *pk, const char *k, int64_t v)
{
	codec_pack_key(pk, k);
	msgpack_pack_int64(pk, v);
}

void
codec_pack_kv_bool(msgpack_packer *pk, const char *k, int v)
{
	codec_pack_key(pk, k);
	if (v)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
}

/* msgpack_packer callback appending to a struct buf. */
int
codec_sbuffer_write(void *data, const char *p, size_t n)
{
	return buf_append(data, p, n);
}

/*
 * k: v as valid UTF-8, whatever v holds: for messages that may quote a
 * client's bytes (a method or key name) or be cut by snprintf inside a
 * sequence. Bad bytes become U+FFFD (utf8_clean); without memory for that,
 * only the ASCII bytes are kept.
 */
void
codec_pack_kv_text(msgpack_packer *pk, const char *k, const char *v)
{
	size_t n = strlen(v), j, o;
	char *clean;

	if (utf8_valid(v, n)) {
		codec_pack_kv_str(pk, k, v);
		return;
	}
	if ((clean = utf8_clean(v, n)) != NULL) {
		codec_pack_kv_str(pk, k, clean);
		free(clean);
		return;
	}
	codec_pack_key(pk, k);
	for (j = o = 0; j < n; j++)
		o += (unsigned char)v[j] < 0x80;
	msgpack_pack_str(pk, o);
	for (j = 0; j < n; j++) {
		if ((unsigned char)v[j] < 0x80)
			msgpack_pack_str_body(pk, v + j, 1);
	}
}
