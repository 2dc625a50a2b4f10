/*
 * unit.h: what the Check unit tests share. A test binary builds one Suite
 * and returns UNIT_RUN(suite); tests that need msgpack input describe it
 * with unit_pack's small format language instead of hand-written bytes.
 */
#ifndef UNIT_H
#define UNIT_H

#include <check.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Run every test of the suite; the binary's exit status. */
static inline int
unit_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
#define UNIT_RUN(suite)	unit_run(suite)

/* A suite holding one test case of the same name; tests are added to it. */
static inline Suite *
unit_suite(const char *name, TCase **tc)
{
	Suite *s = suite_create(name);

	*tc = tcase_create(name);
	suite_add_tcase(s, *tc);
	return s;
}

/*
 * Pack values described by fmt (spaces ignored), arguments taken in order:
 *   M n	map of n pairs (int n)		A n	array of n (int n)
 *   s	str (const char *)		B	bin (const char *, size_t)
 *   S	str with length (const char *, size_t)
 *   u	unsigned int			U	uint64_t
 *   i	int				I	int64_t
 *   n	nil	t	true	f	false
 * The counts of M and A are taken from the arguments, not from fmt.
 */
static inline void
unit_vpack(msgpack_packer *pk, const char *fmt, va_list ap)
{
	const char *p, *s;
	size_t n;

	for (p = fmt; *p != '\0'; p++) {
		switch (*p) {
		case ' ':
			break;
		case 'M':
			msgpack_pack_map(pk, (size_t)va_arg(ap, int));
			break;
		case 'A':
			msgpack_pack_array(pk, (size_t)va_arg(ap, int));
			break;
		case 's':
			s = va_arg(ap, const char *);
			n = strlen(s);
			msgpack_pack_str(pk, n);
			msgpack_pack_str_body(pk, s, n);
			break;
		case 'S':
			s = va_arg(ap, const char *);
			n = va_arg(ap, size_t);
			msgpack_pack_str(pk, n);
			msgpack_pack_str_body(pk, s, n);
			break;
		case 'B':
			s = va_arg(ap, const char *);
			n = va_arg(ap, size_t);
			msgpack_pack_bin(pk, n);
			msgpack_pack_bin_body(pk, s, n);
			break;
		case 'u':
			msgpack_pack_uint64(pk, va_arg(ap, unsigned int));
			break;
		case 'U':
			msgpack_pack_uint64(pk, va_arg(ap, uint64_t));
			break;
		case 'i':
			msgpack_pack_int64(pk, va_arg(ap, int));
			break;
		case 'I':
			msgpack_pack_int64(pk, va_arg(ap, int64_t));
			break;
		case 'n':
			msgpack_pack_nil(pk);
			break;
		case 't':
			msgpack_pack_true(pk);
			break;
		case 'f':
			msgpack_pack_false(pk);
			break;
		default:
			ck_abort_msg("unit_pack: bad format character '%c'", *p);
		}
	}
}

/* A packed message and, once unpacked, the object it holds. */
struct unit_msg {
	msgpack_sbuffer		 sb;
	msgpack_unpacked	 up;
	const msgpack_object	*obj;
};

/* Pack fmt into m->sb (raw bytes in m->sb.data, m->sb.size). */
static inline void
unit_msg_vpack(struct unit_msg *m, const char *fmt, va_list ap)
{
	msgpack_packer pk;

	memset(m, 0, sizeof *m);
	msgpack_sbuffer_init(&m->sb);
	msgpack_unpacked_init(&m->up);
	msgpack_packer_init(&pk, &m->sb, msgpack_sbuffer_write);
	unit_vpack(&pk, fmt, ap);
}

static inline void
unit_msg_pack(struct unit_msg *m, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	unit_msg_vpack(m, fmt, ap);
	va_end(ap);
}

/* Unpack what m->sb holds: one whole object, which m->obj then points to. */
static inline const msgpack_object *
unit_msg_unpack(struct unit_msg *m)
{
	size_t off = 0;

	ck_assert_int_eq(msgpack_unpack_next(&m->up, m->sb.data, m->sb.size,
	    &off), MSGPACK_UNPACK_SUCCESS);
	ck_assert_uint_eq(off, m->sb.size);
	m->obj = &m->up.data;
	return m->obj;
}

/* Pack fmt and unpack it again: m->obj is the object (valid until free). */
static inline const msgpack_object *
unit_msg_vobj(struct unit_msg *m, const char *fmt, va_list ap)
{
	unit_msg_vpack(m, fmt, ap);
	return unit_msg_unpack(m);
}

static inline const msgpack_object *
unit_msg_obj(struct unit_msg *m, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	unit_msg_vpack(m, fmt, ap);
	va_end(ap);
	return unit_msg_unpack(m);
}

/* A msgpack_packer writing into m->sb, for what fmt cannot say. */
static inline void
unit_msg_packer(struct unit_msg *m, msgpack_packer *pk)
{
	memset(m, 0, sizeof *m);
	msgpack_sbuffer_init(&m->sb);
	msgpack_unpacked_init(&m->up);
	msgpack_packer_init(pk, &m->sb, msgpack_sbuffer_write);
}

static inline void
unit_msg_free(struct unit_msg *m)
{
	msgpack_unpacked_destroy(&m->up);
	msgpack_sbuffer_destroy(&m->sb);
	memset(m, 0, sizeof *m);
}

/* A string of n copies of c, in a static buffer (n < 1024). */
static inline const char *
unit_repeat(char c, size_t n)
{
	static char buf[1024];

	ck_assert_uint_lt(n, sizeof buf);
	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

#endif
