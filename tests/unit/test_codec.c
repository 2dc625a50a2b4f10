/*
 * test_codec.c: codec_scan, the gate every byte from a client passes before
 * msgpack-c sees it, and codec_args, which checks a params map against a
 * command's argument spec. Where codec_scan says COMPLETE or MORE, msgpack-c
 * must agree with it, so a scan bug cannot hide behind an unpacker bug.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ward.h"
#include "unit.h"

struct wardd_opts opts;

/* What msgpack-c makes of buf[0..n): SUCCESS with *off, CONTINUE, or error. */
static msgpack_unpack_return
ref_unpack(const char *buf, size_t n, size_t *off)
{
	msgpack_unpacked up;
	msgpack_unpack_return r;

	*off = 0;
	msgpack_unpacked_init(&up);
	r = msgpack_unpack_next(&up, buf, n, off);
	msgpack_unpacked_destroy(&up);
	return r;
}

/* Every strict prefix is MORE, the whole is COMPLETE, msgpack-c agrees. */
static void
check_prefixes(const char *buf, size_t n)
{
	struct ward_err err = WARD_ERR_INIT;
	size_t cut, len, off;

	ck_assert_int_eq(ref_unpack(buf, n, &off), MSGPACK_UNPACK_SUCCESS);
	ck_assert_uint_eq(off, n);
	for (cut = 0; cut < n; cut++) {
		len = 12345;
		ck_assert_msg(codec_scan(buf, cut, &len, &err) == SCAN_MORE,
		    "prefix of %zu of %zu bytes is not SCAN_MORE", cut, n);
		ck_assert_uint_eq(len, 12345);	/* untouched unless complete */
	}
	ck_assert_int_eq(codec_scan(buf, n, &len, &err), SCAN_COMPLETE);
	ck_assert_uint_eq(len, n);
}

START_TEST(scan_complete_request)
{
	struct unit_msg m;
	struct ward_err err = WARD_ERR_INIT;
	size_t len = 0;

	unit_msg_pack(&m, "A u u s A M s A s", 4, 0, 7, "instance.create",
	    1, 1, "argv", 1, "true");
	ck_assert_int_eq(codec_scan(m.sb.data, m.sb.size, &len, &err),
	    SCAN_COMPLETE);
	ck_assert_uint_eq(len, m.sb.size);
	unit_msg_free(&m);
}
END_TEST

START_TEST(scan_prefixes_of_packed_request)
{
	struct unit_msg m;

	unit_msg_pack(&m, "A u u s A M s s s A s s s M s s s t s u s n s U s I "
	    "s B", 4, 0, 4294967295U, "instance.create", 1, 9,
	    "name", "vm-1",
	    "argv", 2, "crosvm", "run",
	    "env", 1, "A", "B",
	    "detect_hangup",
	    "hangup_timeout_ms", 30000,
	    "x",
	    "big", UINT64_MAX,
	    "neg", (int64_t)-5000000000LL,
	    "blob", "\0\1\2", (size_t)3);
	check_prefixes(m.sb.data, m.sb.size);
	unit_msg_free(&m);
}
END_TEST

/* One array of 32 elements, one per msgpack format that has a header. */
static const unsigned char every_format[] = {
	0xdc, 0x00, 0x20,
	0xc4, 0x03, 'a', 'b', 'c',			/* bin8 */
	0xc5, 0x00, 0x02, 'x', 'y',			/* bin16 */
	0xc6, 0x00, 0x00, 0x00, 0x01, 'z',		/* bin32 */
	0xda, 0x00, 0x01, 'q',				/* str16 */
	0xdb, 0x00, 0x00, 0x00, 0x02, 'h', 'i',		/* str32 */
	0xd9, 0x02, 'o', 'k',				/* str8 */
	0xca, 0x3f, 0x80, 0x00, 0x00,			/* float32 */
	0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0,		/* float64 */
	0xc7, 0x02, 0x05, 'a', 'b',			/* ext8 */
	0xc8, 0x00, 0x01, 0x05, 'a',			/* ext16 */
	0xc9, 0x00, 0x00, 0x00, 0x00, 0x05,		/* ext32, empty */
	0xd4, 0x01, 0xaa,				/* fixext1 */
	0xd5, 0x01, 0xaa, 0xbb,				/* fixext2 */
	0xd6, 0x01, 1, 2, 3, 4,				/* fixext4 */
	0xd7, 0x01, 1, 2, 3, 4, 5, 6, 7, 8,		/* fixext8 */
	0xd8, 0x01, 1, 2, 3, 4, 5, 6, 7, 8,		/* fixext16 */
	    9, 10, 11, 12, 13, 14, 15, 16,
	0xcc, 0xff,					/* uint8 */
	0xcd, 0xff, 0xff,				/* uint16 */
	0xce, 0xff, 0xff, 0xff, 0xff,			/* uint32 */
	0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,	/* uint64 */
	0xd0, 0x80,					/* int8 */
	0xd1, 0x80, 0x00,				/* int16 */
	0xd2, 0x80, 0x00, 0x00, 0x00,			/* int32 */
	0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0,		/* int64 */
	0xc0, 0xc2, 0xc3,				/* nil false true */
	0xe0, 0x7f,					/* fixints */
	0xde, 0x00, 0x01, 0xa1, 'k', 0x90,		/* map16 {"k": []} */
	0xdf, 0x00, 0x00, 0x00, 0x01, 0x01, 0x80,	/* map32 {1: {}} */
	0xdd, 0x00, 0x00, 0x00, 0x02,			/* array32 */
	    0x91, 0x01, 0xdc, 0x00, 0x00,		/* [[1], []] */
};

START_TEST(scan_prefixes_of_every_format)
{
	check_prefixes((const char *)every_format, sizeof every_format);
}
END_TEST

START_TEST(scan_array32_huge_count)
{
	static const char five[] = "\xdd\xff\xff\xff\xff";
	struct ward_err err = WARD_ERR_INIT;
	size_t len;

	/* Four bytes are an incomplete header; the fifth settles it. */
	ck_assert_int_eq(codec_scan(five, 4, &len, &err), SCAN_MORE);
	memset(&err, 0, sizeof err);
	ck_assert_int_eq(codec_scan(five, 5, &len, &err), SCAN_ERROR);
	ck_assert_ptr_nonnull(err.code);
	ck_assert_str_eq(err.code, WARD_E_TOO_LARGE);
	ck_assert_msg(err.msg[0] != '\0', "no error message");
}
END_TEST

START_TEST(scan_huge_lengths)
{
	static const struct {
		const char	*bytes;
		size_t		 len;
	} cases[] = {
		{ "\xdb\xff\xff\xff\xff", 5 },		/* str32 */
		{ "\xc6\xff\xff\xff\xff", 5 },		/* bin32 */
		{ "\xdf\xff\xff\xff\xff", 5 },		/* map32 */
		{ "\xc9\xff\xff\xff\xff", 5 },		/* ext32 */
		{ "\xdb\x00\x10\x00\x01", 5 },		/* str32, 1 MiB + 1 */
		{ "\xdf\x00\x08\x00\x01", 5 },		/* map32, 2 * (512 Ki + 1) */
		/* Inside a request, after other objects. */
		{ "\x94\x00\x01\xa1x\xdd\xff\xff\xff\xff", 10 },
		{ "\x94\x00\x01\xa1x\x91\x81\xa1k\xdf\xff\xff\xff\xff", 14 },
	};
	struct ward_err err = WARD_ERR_INIT;
	size_t i, len;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		memset(&err, 0, sizeof err);
		ck_assert_msg(codec_scan(cases[i].bytes, cases[i].len, &len,
		    &err) == SCAN_ERROR, "case %zu not refused", i);
		ck_assert_ptr_nonnull(err.code);
		ck_assert_str_eq(err.code, WARD_E_TOO_LARGE);
	}
}
END_TEST

/* A str32 message of exactly total bytes. */
static char *
big_str(size_t total)
{
	char *buf = malloc(total);
	size_t body = total - 5;

	ck_assert_ptr_nonnull(buf);
	buf[0] = (char)0xdb;
	buf[1] = (char)(body >> 24);
	buf[2] = (char)(body >> 16);
	buf[3] = (char)(body >> 8);
	buf[4] = (char)body;
	memset(buf + 5, 'a', body);
	return buf;
}

START_TEST(scan_request_size_limit)
{
	struct ward_err err = WARD_ERR_INIT;
	size_t len = 0;
	char *buf;

	buf = big_str(WARD_MAX_REQUEST);
	ck_assert_int_eq(codec_scan(buf, WARD_MAX_REQUEST, &len, &err),
	    SCAN_COMPLETE);
	ck_assert_uint_eq(len, WARD_MAX_REQUEST);
	ck_assert_int_eq(codec_scan(buf, WARD_MAX_REQUEST - 1, &len, &err),
	    SCAN_MORE);
	free(buf);

	buf = big_str(WARD_MAX_REQUEST + 1);
	memset(&err, 0, sizeof err);
	ck_assert_int_eq(codec_scan(buf, WARD_MAX_REQUEST + 1, &len, &err),
	    SCAN_ERROR);
	ck_assert_str_eq(err.code, WARD_E_TOO_LARGE);
	free(buf);
}
END_TEST

/* depth nested containers of the given one-byte header around a 1. */
static size_t
nest(unsigned char *buf, int depth, int map)
{
	size_t n = 0;
	int i;

	for (i = 0; i < depth; i++) {
		if (map) {
			buf[n++] = 0x81;
			buf[n++] = 0xa1;
			buf[n++] = 'k';
		} else
			buf[n++] = 0x91;
	}
	buf[n++] = 0x01;
	return n;
}

START_TEST(scan_nesting_limit)
{
	unsigned char buf[128];
	struct ward_err err = WARD_ERR_INIT;
	size_t n, len;
	int map;

	for (map = 0; map <= 1; map++) {
		n = nest(buf, WARD_MAX_DEPTH, map);
		ck_assert_int_eq(codec_scan((char *)buf, n, &len, &err),
		    SCAN_COMPLETE);
		ck_assert_uint_eq(len, n);

		n = nest(buf, WARD_MAX_DEPTH + 1, map);
		memset(&err, 0, sizeof err);
		ck_assert_int_eq(codec_scan((char *)buf, n, &len, &err),
		    SCAN_ERROR);
		ck_assert_ptr_nonnull(err.code);
		/* Refused as soon as the 17th header is seen. */
		memset(&err, 0, sizeof err);
		ck_assert_int_eq(codec_scan((char *)buf, n - 1, &len, &err),
		    SCAN_ERROR);
		ck_assert_ptr_nonnull(err.code);
	}
}
END_TEST

START_TEST(scan_nesting_wide_then_deep)
{
	unsigned char buf[256];
	struct ward_err err = WARD_ERR_INIT;
	size_t n = 0, len;
	int i;

	/* Depth is per path: a long sibling list does not add to it. */
	buf[n++] = 0x9f;
	for (i = 0; i < 14; i++)
		buf[n++] = 0x90;
	n += nest(buf + n, WARD_MAX_DEPTH - 1, 0);
	ck_assert_int_eq(codec_scan((char *)buf, n, &len, &err),
	    SCAN_COMPLETE);
	ck_assert_uint_eq(len, n);
}
END_TEST

START_TEST(scan_c1_refused)
{
	static const char alone[] = "\xc1";
	static const char inside[] = "\x93\x01\xc1\x02";
	struct ward_err err = WARD_ERR_INIT;
	size_t len;

	memset(&err, 0, sizeof err);
	ck_assert_int_eq(codec_scan(alone, 1, &len, &err), SCAN_ERROR);
	ck_assert_str_eq(err.code, WARD_E_PROTOCOL);
	memset(&err, 0, sizeof err);
	ck_assert_int_eq(codec_scan(inside, 3, &len, &err), SCAN_ERROR);
	ck_assert_str_eq(err.code, WARD_E_PROTOCOL);
	ck_assert_msg(strstr(err.msg, "c1") != NULL,
	    "message does not name the byte: %s", err.msg);
}
END_TEST

/* An array32 of count nils. */
static char *
nil_array(size_t count, size_t *n)
{
	char *buf;

	*n = 5 + count;
	buf = malloc(*n);
	ck_assert_ptr_nonnull(buf);
	buf[0] = (char)0xdd;
	buf[1] = (char)(count >> 24);
	buf[2] = (char)(count >> 16);
	buf[3] = (char)(count >> 8);
	buf[4] = (char)count;
	memset(buf + 5, 0xc0, count);
	return buf;
}

START_TEST(scan_element_limit)
{
	struct ward_err err = WARD_ERR_INIT;
	size_t n, len = 0;
	char *buf;

	/* The array and its 65535 nils: 65536 objects. */
	buf = nil_array(WARD_MAX_ELEMENTS - 1, &n);
	ck_assert_int_eq(codec_scan(buf, n, &len, &err), SCAN_COMPLETE);
	ck_assert_uint_eq(len, n);
	free(buf);

	buf = nil_array(WARD_MAX_ELEMENTS, &n);
	memset(&err, 0, sizeof err);
	ck_assert_int_eq(codec_scan(buf, n, &len, &err), SCAN_ERROR);
	ck_assert_str_eq(err.code, WARD_E_TOO_LARGE);
	free(buf);
}
END_TEST

START_TEST(scan_element_limit_whole_message)
{
	struct ward_err err = WARD_ERR_INIT;
	size_t n, len, i;
	char *buf;

	/* [[40000 nils], [30000 nils]]: each small, together over. */
	n = 1 + 5 + 40000 + 5 + 30000;
	buf = malloc(n);
	ck_assert_ptr_nonnull(buf);
	i = 0;
	buf[i++] = (char)0x92;
	memcpy(buf + i, "\xdd\x00\x00\x9c\x40", 5);
	i += 5;
	memset(buf + i, 0xc0, 40000);
	i += 40000;
	memcpy(buf + i, "\xdd\x00\x00\x75\x30", 5);
	i += 5;
	memset(buf + i, 0xc0, 30000);
	memset(&err, 0, sizeof err);
	ck_assert_int_eq(codec_scan(buf, n, &len, &err), SCAN_ERROR);
	ck_assert_str_eq(err.code, WARD_E_TOO_LARGE);
	free(buf);
}
END_TEST

START_TEST(scan_two_messages)
{
	struct unit_msg a, b;
	struct ward_err err = WARD_ERR_INIT;
	size_t len = 0;
	char *both;

	unit_msg_pack(&a, "A u u s A", 4, 0, 1, "ward.hello", 0);
	unit_msg_pack(&b, "A u u s A M s u", 4, 0, 2, "instance.status", 1,
	    1, "id", 3);
	both = malloc(a.sb.size + b.sb.size);
	ck_assert_ptr_nonnull(both);
	memcpy(both, a.sb.data, a.sb.size);
	memcpy(both + a.sb.size, b.sb.data, b.sb.size);
	ck_assert_int_eq(codec_scan(both, a.sb.size + b.sb.size, &len, &err),
	    SCAN_COMPLETE);
	ck_assert_uint_eq(len, a.sb.size);
	ck_assert_int_eq(codec_scan(both + len, b.sb.size, &len, &err),
	    SCAN_COMPLETE);
	ck_assert_uint_eq(len, b.sb.size);
	/* Garbage after the first message is the next message's problem. */
	memset(both + a.sb.size, 0xc1, b.sb.size);
	ck_assert_int_eq(codec_scan(both, a.sb.size + b.sb.size, &len, &err),
	    SCAN_COMPLETE);
	ck_assert_uint_eq(len, a.sb.size);
	free(both);
	unit_msg_free(&a);
	unit_msg_free(&b);
}
END_TEST

/* Check one scan result against msgpack-c on the same bytes. */
static void
agree(const char *buf, size_t n, const char *what, unsigned v)
{
	struct ward_err err = WARD_ERR_INIT;
	enum scan_result r;
	size_t len = 0, off;
	msgpack_unpack_return u;

	memset(&err, 0, sizeof err);
	r = codec_scan(buf, n, &len, &err);
	switch (r) {
	case SCAN_COMPLETE:
		ck_assert_msg(len >= 1 && len <= n, "%s 0x%x: len %zu", what,
		    v, len);
		u = ref_unpack(buf, n, &off);
		ck_assert_msg(u == MSGPACK_UNPACK_SUCCESS ||
		    u == MSGPACK_UNPACK_EXTRA_BYTES,
		    "%s 0x%x: scan complete, msgpack %d", what, v, (int)u);
		ck_assert_msg(off == len, "%s 0x%x: scan %zu, msgpack %zu",
		    what, v, len, off);
		break;
	case SCAN_MORE:
		u = ref_unpack(buf, n, &off);
		ck_assert_msg(u == MSGPACK_UNPACK_CONTINUE,
		    "%s 0x%x: scan more, msgpack %d", what, v, (int)u);
		break;
	case SCAN_ERROR:
		ck_assert_msg(err.code != NULL &&
		    (strcmp(err.code, WARD_E_TOO_LARGE) == 0 ||
		    strcmp(err.code, WARD_E_PROTOCOL) == 0),
		    "%s 0x%x: error without a known code", what, v);
		ck_assert_msg(err.msg[0] != '\0', "%s 0x%x: no message",
		    what, v);
		if (strcmp(err.code, WARD_E_PROTOCOL) == 0) {
			u = ref_unpack(buf, n, &off);
			ck_assert_msg(u == MSGPACK_UNPACK_PARSE_ERROR,
			    "%s 0x%x: protocol error, msgpack %d", what, v,
			    (int)u);
		}
		break;
	default:
		ck_abort_msg("%s 0x%x: scan returned %d", what, v, (int)r);
	}
}

START_TEST(scan_every_type_byte)
{
	struct ward_err err = WARD_ERR_INIT;
	char buf[48];
	size_t len;
	unsigned b;

	for (b = 0; b <= 0xff; b++) {
		/* Followed by zeros: every length is 0, every count small. */
		memset(buf, 0, sizeof buf);
		buf[0] = (char)0x91;
		buf[1] = (char)b;
		memset(&err, 0, sizeof err);
		if (b == 0xc1) {
			ck_assert_int_eq(codec_scan(buf, sizeof buf, &len, &err),
			    SCAN_ERROR);
			ck_assert_str_eq(err.code, WARD_E_PROTOCOL);
		} else
			ck_assert_msg(codec_scan(buf, sizeof buf, &len, &err) ==
			    SCAN_COMPLETE, "type byte 0x%02x followed by zeros "
			    "is not complete", b);
		agree(buf, sizeof buf, "zeros", b);

		/* Followed by 0xff: the largest lengths and counts. */
		memset(buf, 0xff, sizeof buf);
		buf[0] = (char)0x91;
		buf[1] = (char)b;
		agree(buf, sizeof buf, "0xff", b);
		/* Cut short right after the type byte. */
		agree(buf, 2, "cut", b);
	}
}
END_TEST

/* Random bytes, biased toward headers: scan and msgpack-c must agree. */
START_TEST(scan_random_agrees_with_msgpack)
{
	static const unsigned char pick[] = {
		0x00, 0x7f, 0xe0, 0x80, 0x81, 0x8f, 0x90, 0x91, 0x9f, 0xa0,
		0xa3, 0xbf, 0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7,
		0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd3,
		0xd4, 0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0x01,
		0x02, 0x00, 0x00, 0x00,
	};
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	char buf[64];
	size_t n, i;
	int iter;

	for (iter = 0; iter < 50000; iter++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		n = 1 + x % sizeof buf;
		for (i = 0; i < n; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[i] = (x >> 32) % 4 == 0 ? (char)(x >> 40) :
			    (char)pick[(x >> 40) % sizeof pick];
		}
		agree(buf, n, "random", (unsigned)iter);
	}
}
END_TEST

/* ---- codec_args */

static const struct arg_spec spec[] = {
	{ "name", ARG_STR },
	{ "count", ARG_UINT },
	{ "delta", ARG_INT },
	{ "flag", ARG_BOOL },
	{ "opts", ARG_MAP },
	{ "list", ARG_ARRAY },
	{ "sig", ARG_SIGNAL },
	{ "any", ARG_ANY },
	{ NULL, 0 }
};
enum { S_NAME, S_COUNT, S_DELTA, S_FLAG, S_OPTS, S_LIST, S_SIG, S_ANY, S_N };

START_TEST(args_all_types)
{
	const msgpack_object *out[ARG_MAX];
	struct unit_msg m;
	struct ward_err err = WARD_ERR_INIT;

	unit_msg_obj(&m, "M s s s u s i s t s M s A s s s n", 8,
	    "name", "vm", "count", 5, "delta", -3, "flag", "opts", 0,
	    "list", 0, "sig", "TERM", "any");
	ck_assert_int_eq(codec_args(m.obj, spec, out, &err), 0);
	ck_assert(codec_streq(out[S_NAME], "vm"));
	ck_assert_uint_eq(out[S_COUNT]->via.u64, 5);
	ck_assert_int_eq(out[S_DELTA]->via.i64, -3);
	ck_assert(out[S_FLAG]->via.boolean);
	ck_assert_int_eq(out[S_OPTS]->type, MSGPACK_OBJECT_MAP);
	ck_assert_int_eq(out[S_LIST]->type, MSGPACK_OBJECT_ARRAY);
	ck_assert(codec_streq(out[S_SIG], "TERM"));
	ck_assert_ptr_null(out[S_ANY]);		/* nil: absent */
	unit_msg_free(&m);

	/* Keys in any order; the positions follow the spec. */
	unit_msg_obj(&m, "M s u s u s u", 3, "sig", 9, "delta", 4,
	    "any", 1);
	ck_assert_int_eq(codec_args(m.obj, spec, out, &err), 0);
	ck_assert_uint_eq(out[S_SIG]->via.u64, 9);
	ck_assert_int_eq(out[S_DELTA]->via.i64, 4);	/* positive is an int */
	ck_assert_uint_eq(out[S_ANY]->via.u64, 1);
	ck_assert_ptr_null(out[S_NAME]);
	ck_assert_ptr_null(out[S_COUNT]);
	unit_msg_free(&m);
}
END_TEST

START_TEST(args_unknown_key)
{
	const msgpack_object *out[ARG_MAX];
	struct unit_msg m;
	struct ward_err err = WARD_ERR_INIT;

	unit_msg_obj(&m, "M s s s u", 2, "name", "vm", "nmae", 1);
	ck_assert_int_eq(codec_args(m.obj, spec, out, &err), -1);
	ck_assert_msg(strstr(err.msg, "nmae") != NULL, "error: %s", err.msg);
	unit_msg_free(&m);

	/* A bin key is a string too, and is named the same way. */
	unit_msg_obj(&m, "M B u", 1, "bogus", (size_t)5, 1);
	ck_assert_int_eq(codec_args(m.obj, spec, out, &err), -1);
	ck_assert_msg(strstr(err.msg, "bogus") != NULL, "error: %s", err.msg);
	unit_msg_free(&m);

	/* Keys that are not strings at all. */
	unit_msg_obj(&m, "M u u", 1, 1, 1);
	err.msg[0] = '\0';
	ck_assert_int_eq(codec_args(m.obj, spec, out, &err), -1);
	ck_assert_msg(err.msg[0] != '\0', "no error message");
	unit_msg_free(&m);
}
END_TEST

START_TEST(args_wrong_type)
{
	static const struct {
		const char	*key;
		const char	*fmt;	/* the value */
	} bad[] = {
		{ "name", "u" }, { "name", "t" },
		{ "count", "i" }, { "count", "s" }, { "count", "t" },
		{ "delta", "s" }, { "delta", "n" /* replaced below */ },
		{ "flag", "u" }, { "flag", "s" },
		{ "opts", "A" }, { "opts", "s" },
		{ "list", "M" }, { "list", "s" },
		{ "sig", "i" }, { "sig", "t" },
	};
	const msgpack_object *out[ARG_MAX];
	struct unit_msg m;
	struct ward_err err = WARD_ERR_INIT;
	char fmt[16];
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (strcmp(bad[i].fmt, "n") == 0) {
			/* A float is not an integer. */
			msgpack_packer pk;

			unit_msg_packer(&m, &pk);
			msgpack_pack_map(&pk, 1);
			codec_pack_str(&pk, bad[i].key);
			msgpack_pack_double(&pk, 1.5);
			unit_msg_unpack(&m);
		} else {
			snprintf(fmt, sizeof fmt, "M s %s", bad[i].fmt);
			if (strcmp(bad[i].fmt, "s") == 0)
				unit_msg_obj(&m, fmt, 1, bad[i].key, "x");
			else if (strcmp(bad[i].fmt, "u") == 0)
				unit_msg_obj(&m, fmt, 1, bad[i].key, 7);
			else if (strcmp(bad[i].fmt, "i") == 0)
				unit_msg_obj(&m, fmt, 1, bad[i].key, -1);
			else if (strcmp(bad[i].fmt, "t") == 0)
				unit_msg_obj(&m, fmt, 1, bad[i].key);
			else
				unit_msg_obj(&m, fmt, 1, bad[i].key, 0);
		}
		err.msg[0] = '\0';
		ck_assert_msg(codec_args(m.obj, spec, out, &err) == -1,
		    "'%s' accepted a value of type %d", bad[i].key,
		    (int)m.obj->via.map.ptr[0].val.type);
		ck_assert_msg(strstr(err.msg, bad[i].key) != NULL,
		    "error does not name '%s': %s", bad[i].key, err.msg);
		unit_msg_free(&m);
	}
}
END_TEST

START_TEST(args_duplicate_key)
{
	const msgpack_object *out[ARG_MAX];
	struct unit_msg m;
	struct ward_err err = WARD_ERR_INIT;

	unit_msg_obj(&m, "M s u s u", 2, "count", 1, "count", 2);
	ck_assert_int_eq(codec_args(m.obj, spec, out, &err), -1);
	ck_assert_msg(strstr(err.msg, "count") != NULL, "error: %s", err.msg);
	unit_msg_free(&m);

	/* str and bin spellings of one key are the same key. */
	unit_msg_obj(&m, "M s s B s", 2, "name", "a", "name", (size_t)4, "b");
	ck_assert_int_eq(codec_args(m.obj, spec, out, &err), -1);
	unit_msg_free(&m);
}
END_TEST

START_TEST(args_duplicate_key_after_nil)
{
	const msgpack_object *out[ARG_MAX];
	struct unit_msg m;
	struct ward_err err = WARD_ERR_INIT;

	/* A nil value is absent, but the key was still given twice. */
	unit_msg_obj(&m, "M s n s u", 2, "count", "count", 2);
	ck_assert_msg(codec_args(m.obj, spec, out, &err) == -1,
	    "{count: nil, count: 2} accepted");
	unit_msg_free(&m);
}
END_TEST

START_TEST(args_nil_is_absent)
{
	const msgpack_object *out[ARG_MAX];
	struct unit_msg m;
	struct ward_err err = WARD_ERR_INIT;
	int j;

	/* nil passes whatever the type; out is reset first. */
	for (j = 0; j < S_N; j++)
		out[j] = (const msgpack_object *)&spec[0];
	unit_msg_obj(&m, "M s n s n s n s n s n s n s n s n", 8,
	    "name", "count", "delta", "flag", "opts", "list", "sig", "any");
	ck_assert_int_eq(codec_args(m.obj, spec, out, &err), 0);
	for (j = 0; j < S_N; j++)
		ck_assert_ptr_null(out[j]);
	unit_msg_free(&m);
}
END_TEST

START_TEST(args_str_and_bin)
{
	const msgpack_object *out[ARG_MAX];
	struct unit_msg m;
	struct ward_err err = WARD_ERR_INIT;
	char *s;

	unit_msg_obj(&m, "M s B s B", 2, "name", "vm-1", (size_t)4,
	    "sig", "KILL", (size_t)4);
	ck_assert_int_eq(codec_args(m.obj, spec, out, &err), 0);
	ck_assert_int_eq(out[S_NAME]->type, MSGPACK_OBJECT_BIN);
	ck_assert(codec_is_str(out[S_NAME]));
	ck_assert(codec_streq(out[S_NAME], "vm-1"));
	ck_assert(!codec_streq(out[S_NAME], "vm-"));
	ck_assert(!codec_streq(out[S_NAME], "vm-12"));
	s = codec_strdup(out[S_NAME]);
	ck_assert_str_eq(s, "vm-1");
	free(s);
	ck_assert(codec_streq(out[S_SIG], "KILL"));
	unit_msg_free(&m);

	unit_msg_obj(&m, "M s s", 1, "name", "vm-2");
	ck_assert_int_eq(codec_args(m.obj, spec, out, &err), 0);
	ck_assert_int_eq(out[S_NAME]->type, MSGPACK_OBJECT_STR);
	ck_assert(codec_streq(out[S_NAME], "vm-2"));
	unit_msg_free(&m);

	/* A string with a NUL byte has no C copy. */
	unit_msg_obj(&m, "S", "a\0b", (size_t)3);
	ck_assert_ptr_null(codec_strdup(m.obj));
	ck_assert(!codec_streq(m.obj, "a"));
	unit_msg_free(&m);
}
END_TEST

START_TEST(args_params_null_or_not_a_map)
{
	const msgpack_object *out[ARG_MAX];
	struct unit_msg m;
	struct ward_err err = WARD_ERR_INIT;
	int j;

	for (j = 0; j < S_N; j++)
		out[j] = (const msgpack_object *)&spec[0];
	ck_assert_int_eq(codec_args(NULL, spec, out, &err), 0);
	for (j = 0; j < S_N; j++)
		ck_assert_ptr_null(out[j]);

	unit_msg_obj(&m, "n");
	ck_assert_int_eq(codec_args(m.obj, spec, out, &err), 0);
	unit_msg_free(&m);

	unit_msg_obj(&m, "M", 0);
	ck_assert_int_eq(codec_args(m.obj, spec, out, &err), 0);
	unit_msg_free(&m);

	unit_msg_obj(&m, "A s", 1, "name");
	err.msg[0] = '\0';
	ck_assert_int_eq(codec_args(m.obj, spec, out, &err), -1);
	ck_assert_msg(err.msg[0] != '\0', "no error message");
	unit_msg_free(&m);
}
END_TEST

int
main(void)
{
	TCase *tc;
	Suite *s = unit_suite("codec", &tc);

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, scan_complete_request);
	tcase_add_test(tc, scan_prefixes_of_packed_request);
	tcase_add_test(tc, scan_prefixes_of_every_format);
	tcase_add_test(tc, scan_array32_huge_count);
	tcase_add_test(tc, scan_huge_lengths);
	tcase_add_test(tc, scan_request_size_limit);
	tcase_add_test(tc, scan_nesting_limit);
	tcase_add_test(tc, scan_nesting_wide_then_deep);
	tcase_add_test(tc, scan_c1_refused);
	tcase_add_test(tc, scan_element_limit);
	tcase_add_test(tc, scan_element_limit_whole_message);
	tcase_add_test(tc, scan_two_messages);
	tcase_add_test(tc, scan_every_type_byte);
	tcase_add_test(tc, scan_random_agrees_with_msgpack);
	tcase_add_test(tc, args_all_types);
	tcase_add_test(tc, args_unknown_key);
	tcase_add_test(tc, args_wrong_type);
	tcase_add_test(tc, args_duplicate_key);
	tcase_add_test(tc, args_duplicate_key_after_nil);
	tcase_add_test(tc, args_nil_is_absent);
	tcase_add_test(tc, args_str_and_bin);
	tcase_add_test(tc, args_params_null_or_not_a_map);
	return UNIT_RUN(s);
}
