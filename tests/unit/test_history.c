/*
 * test_history.c: exit history kept per owner uid. One uid's deaths never
 * push out another's; past the daemon-wide cap the uid that holds the most
 * loses its oldest; queries see what they saw before: a non-admin its own
 * records, an admin everyone's, oldest first, the newest `limit`.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ward.h"
#include "unit.h"

struct wardd_opts opts;

static uint64_t next_id;

/* One death of uid's instance, as instance_finish hands it over. */
static void
died(uid_t uid, const char *name)
{
	struct exit_record *r = calloc(1, sizeof *r);

	ck_assert_ptr_nonnull(r);
	r->refs = 1;			/* the instance's */
	r->id = ++next_id;
	r->owner_uid = uid;
	r->name = strdup(name);
	ck_assert_ptr_nonnull(r->name);
	history_add(r);
	exit_record_unref(r);		/* the instance is removed */
}

static void
died_n(uid_t uid, const char *name, int n)
{
	while (n-- > 0)
		died(uid, name);
}

/* What history_pack gives a peer: the ids, oldest first, into ids. */
static size_t
query(uid_t uid, int admin, const char *name, uint64_t id, size_t limit,
    uint64_t *ids, size_t max)
{
	struct peer c;
	struct unit_msg m;
	msgpack_packer pk;
	const msgpack_object *o, *rec;
	size_t k, n;
	uint32_t j;

	memset(&c, 0, sizeof c);
	c.uid = uid;
	c.admin = admin;
	memset(&m, 0, sizeof m);
	msgpack_sbuffer_init(&m.sb);
	msgpack_unpacked_init(&m.up);
	msgpack_packer_init(&pk, &m.sb, msgpack_sbuffer_write);
	history_pack(&pk, &c, name, id, limit);
	o = unit_msg_unpack(&m);
	ck_assert_int_eq(o->type, MSGPACK_OBJECT_ARRAY);
	n = o->via.array.size;
	ck_assert_uint_le(n, max);
	for (k = 0; k < n; k++) {
		rec = &o->via.array.ptr[k];
		ids[k] = 0;
		for (j = 0; j < rec->via.map.size; j++) {
			if (codec_streq(&rec->via.map.ptr[j].key, "id"))
				ids[k] = rec->via.map.ptr[j].val.via.u64;
		}
		ck_assert_uint_ne(ids[k], 0);
	}
	msgpack_unpacked_destroy(&m.up);
	msgpack_sbuffer_destroy(&m.sb);
	return n;
}

static void
setup(void)
{
	next_id = 0;
}

static void
teardown(void)
{
	history_free();
	ck_assert_uint_eq(history_count(HISTORY_ALL), 0);
}

START_TEST(test_own_records_survive_anothers_flood)
{
	static uint64_t ids[HISTORY_TOTAL_MAX];
	uint64_t roots;
	size_t n;

	died(0, "db-backup");
	roots = next_id;
	died_n(65534, "flood", HISTORY_MAX + 500);
	/* nobody keeps its own last HISTORY_MAX; root's one is still there. */
	ck_assert_uint_eq(history_count(65534), HISTORY_MAX);
	ck_assert_uint_eq(history_count(0), 1);
	ck_assert_uint_eq(history_count(HISTORY_ALL), HISTORY_MAX + 1);
	n = query(0, 1, "db-backup", 0, HISTORY_MAX, ids, HISTORY_TOTAL_MAX);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(ids[0], roots);
	/* nobody sees its newest HISTORY_MAX, oldest first, and no root's. */
	n = query(65534, 0, NULL, 0, HISTORY_MAX, ids, HISTORY_TOTAL_MAX);
	ck_assert_uint_eq(n, HISTORY_MAX);
	ck_assert_uint_eq(ids[0], next_id - HISTORY_MAX + 1);
	ck_assert_uint_eq(ids[n - 1], next_id);
	ck_assert_uint_eq(query(65534, 0, "db-backup", 0, HISTORY_MAX, ids,
	    HISTORY_TOTAL_MAX), 0);
	ck_assert_uint_eq(query(65534, 0, NULL, roots, HISTORY_MAX, ids,
	    HISTORY_TOTAL_MAX), 0);
	ck_assert_uint_eq(query(1000, 0, NULL, 0, HISTORY_MAX, ids,
	    HISTORY_TOTAL_MAX), 0);
}
END_TEST

START_TEST(test_total_cap_takes_from_the_most)
{
	static uint64_t ids[HISTORY_TOTAL_MAX];
	uid_t u;
	size_t n;

	died_n(0, "root-job", 10);
	died_n(1000, "small", 50);
	/* Six uids of HISTORY_MAX each: far past the cap in all. */
	for (u = 2000; u < 2006; u++)
		died_n(u, "big", HISTORY_MAX);
	ck_assert_uint_eq(history_count(HISTORY_ALL), HISTORY_TOTAL_MAX);
	ck_assert_uint_eq(history_count(0), 10);
	ck_assert_uint_eq(history_count(1000), 50);
	/* The big ones lost records, evened out: each holds its share. */
	for (u = 2000; u < 2006; u++) {
		ck_assert_uint_ge(history_count(u),
		    (HISTORY_TOTAL_MAX - 60) / 6 - 1);
		ck_assert_uint_le(history_count(u),
		    (HISTORY_TOTAL_MAX - 60) / 6 + 1);
	}
	/* An admin's query: the newest limit of all, oldest first. */
	n = query(0, 1, NULL, 0, HISTORY_TOTAL_MAX, ids, HISTORY_TOTAL_MAX);
	ck_assert_uint_eq(n, HISTORY_TOTAL_MAX);
	for (size_t k = 1; k < n; k++)
		ck_assert_uint_lt(ids[k - 1], ids[k]);
	ck_assert_uint_eq(ids[0], 1);		/* root's first is kept */
	n = query(0, 1, NULL, 0, 5, ids, HISTORY_TOTAL_MAX);
	ck_assert_uint_eq(n, 5);
	ck_assert_uint_eq(ids[4], next_id);
	n = query(0, 1, "root-job", 0, HISTORY_MAX, ids, HISTORY_TOTAL_MAX);
	ck_assert_uint_eq(n, 10);
}
END_TEST

START_TEST(test_ties_drop_the_adders_own)
{
	static uint64_t ids[HISTORY_TOTAL_MAX];
	uid_t u;

	/* Four uids exactly at the cap together, then one more death each. */
	for (u = 3000; u < 3004; u++)
		died_n(u, "tie", HISTORY_MAX);
	ck_assert_uint_eq(history_count(HISTORY_ALL), HISTORY_TOTAL_MAX);
	died(3001, "tie");
	/* 3001 was at its own cap: it lost its own oldest, nobody else's. */
	for (u = 3000; u < 3004; u++)
		ck_assert_uint_eq(history_count(u), HISTORY_MAX);
	/* A fifth uid's death: taken from one of the biggest, not from 0. */
	died(0, "late");
	ck_assert_uint_eq(history_count(0), 1);
	ck_assert_uint_eq(history_count(HISTORY_ALL), HISTORY_TOTAL_MAX);
	ck_assert_uint_eq(query(0, 1, "late", 0, 10, ids, HISTORY_TOTAL_MAX), 1);
}
END_TEST

int
main(void)
{
	TCase *tc;
	Suite *s = unit_suite("history", &tc);

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_own_records_survive_anothers_flood);
	tcase_add_test(tc, test_total_cap_takes_from_the_most);
	tcase_add_test(tc, test_ties_drop_the_adders_own);
	return UNIT_RUN(s);
}
