/*
 * test_budget.c: budget.c's counting per uid: limits for admins and
 * others, what a refusal says, and that a uid's node goes once it holds
 * nothing.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ward.h"
#include "unit.h"

struct wardd_opts opts;

#define USER	65534
#define OWN	4242	/* wardd's own uid in these tests: an admin */

static void
setup(void)
{
	memset(&opts, 0, sizeof opts);
	opts.uid = OWN;
	opts.max_user_conns = 3;
	opts.max_user_buffer = 1000;
	opts.max_user_fds = 4;
	opts.max_user_ring = 100;
	budget_init();
}

static void
teardown(void)
{
	budget_shutdown();
}

/* Take n of k for u: it must fit. */
static void
take(uid_t u, enum budget_kind k, uint64_t n)
{
	struct ward_err e = WARD_ERR_INIT;

	ck_assert_msg(budget_take(u, k, n, &e) == 0, "%s", e.msg);
}

/* ward.stats' budgets array for c, as the number of uids it lists. */
static uint32_t
packed_uids(const struct peer *c)
{
	struct unit_msg m;
	msgpack_packer pk;
	uint32_t n;

	unit_msg_packer(&m, &pk);
	budget_pack(&pk, c);
	unit_msg_unpack(&m);
	ck_assert_int_eq(m.obj->type, MSGPACK_OBJECT_ARRAY);
	n = m.obj->via.array.size;
	unit_msg_free(&m);
	return n;
}

START_TEST(admins_are_exempt_but_for_conns)
{
	ck_assert(budget_admin(0));
	ck_assert(budget_admin(OWN));
	ck_assert(!budget_admin(USER));
	ck_assert_uint_eq(budget_limit(0, BUDGET_CONNS), CONN_MAX_PER_UID);
	ck_assert_uint_eq(budget_limit(OWN, BUDGET_FDS), UINT64_MAX);
	ck_assert_uint_eq(budget_limit(0, BUDGET_RING), UINT64_MAX);
	ck_assert_uint_eq(budget_limit(USER, BUDGET_CONNS), 3);
	ck_assert_uint_eq(budget_limit(USER, BUDGET_BUFFER), 1000);
	ck_assert_uint_eq(budget_limit(USER, BUDGET_FDS), 4);
	ck_assert_uint_eq(budget_limit(USER, BUDGET_RING), 100);
	ck_assert_uint_eq(budget_limit(USER, BUDGET_INSTANCES),
	    INSTANCE_MAX_PER_USER);
}
END_TEST

START_TEST(take_up_to_the_limit)
{
	struct ward_err e = WARD_ERR_INIT;

	take(USER, BUDGET_FDS, 3);
	take(USER, BUDGET_FDS, 1);
	ck_assert_uint_eq(budget_used(USER, BUDGET_FDS), 4);
	ck_assert_int_eq(budget_take(USER, BUDGET_FDS, 1, &e), -1);
	ck_assert_str_eq(e.code, WARD_E_RESOURCE_EXHAUSTED);
	ck_assert_ptr_nonnull(strstr(e.msg, "uid 65534"));
	ck_assert_ptr_nonnull(strstr(e.msg, "hold 5 file descriptors"));
	ck_assert_ptr_nonnull(strstr(e.msg, "at most 4"));
	ck_assert_ptr_nonnull(strstr(e.msg, "--max-user-fds"));
	ck_assert_uint_eq(budget_used(USER, BUDGET_FDS), 4);	/* unchanged */
	/* Within it now; not with one more. */
	ck_assert_int_eq(budget_check(USER, BUDGET_FDS, 0, &e), 0);
	ck_assert_int_eq(budget_check(USER, BUDGET_FDS, 1, &e), -1);
	/* More than the whole limit at once, and near UINT64_MAX. */
	budget_give(USER, BUDGET_FDS, 4);
	ck_assert_int_eq(budget_take(USER, BUDGET_RING, 101, &e), -1);
	ck_assert_int_eq(budget_take(USER, BUDGET_RING, UINT64_MAX, &e), -1);
	ck_assert_uint_eq(budget_used(USER, BUDGET_RING), 0);
}
END_TEST

START_TEST(codes_by_kind)
{
	struct ward_err e = WARD_ERR_INIT;
	int k;

	for (k = 0; k < 3; k++)
		take(USER, BUDGET_CONNS, 1);
	ck_assert_int_eq(budget_take(USER, BUDGET_CONNS, 1, &e), -1);
	ck_assert_str_eq(e.code, WARD_E_BUSY);
	ck_assert_ptr_nonnull(strstr(e.msg, "too many connections"));
	ck_assert_ptr_nonnull(strstr(e.msg, "--max-user-conns"));
	ck_assert_int_eq(budget_charge(USER, BUDGET_INSTANCES,
	    INSTANCE_MAX_PER_USER), 0);
	ck_assert_int_eq(budget_take(USER, BUDGET_INSTANCES, 1, &e), -1);
	ck_assert_str_eq(e.code, WARD_E_TOO_LARGE);
	ck_assert_ptr_nonnull(strstr(e.msg, "uid 65534 has 1000 instances, the "
	    "most a non-admin may have"));
	ck_assert_int_eq(budget_take(USER, BUDGET_RING, 200, &e), -1);
	ck_assert_str_eq(e.code, WARD_E_RESOURCE_EXHAUSTED);
	ck_assert_ptr_nonnull(strstr(e.msg, "--max-user-ring"));
	budget_give(USER, BUDGET_CONNS, 3);
	budget_give(USER, BUDGET_INSTANCES, INSTANCE_MAX_PER_USER);
}
END_TEST

START_TEST(charge_goes_over_and_over_says_so)
{
	struct ward_err e = WARD_ERR_INIT;

	/* Memory that is there already: counted, never refused. */
	ck_assert_int_eq(budget_charge(USER, BUDGET_BUFFER, 1500), 0);
	ck_assert(budget_over(USER, BUDGET_BUFFER));
	ck_assert_int_eq(budget_check(USER, BUDGET_BUFFER, 0, &e), -1);
	budget_give(USER, BUDGET_BUFFER, 600);
	ck_assert(!budget_over(USER, BUDGET_BUFFER));
	budget_give(USER, BUDGET_BUFFER, 900);
}
END_TEST

START_TEST(admins_are_counted_not_limited)
{
	take(0, BUDGET_FDS, 100000);
	take(OWN, BUDGET_RING, 1ULL << 40);
	ck_assert(!budget_over(0, BUDGET_FDS));
	ck_assert_uint_eq(budget_used(0, BUDGET_FDS), 100000);
	budget_give(0, BUDGET_FDS, 100000);
	budget_give(OWN, BUDGET_RING, 1ULL << 40);
}
END_TEST

START_TEST(node_goes_when_empty)
{
	struct peer admin, user;

	memset(&admin, 0, sizeof admin);
	memset(&user, 0, sizeof user);
	admin.admin = 1;
	user.uid = USER;
	ck_assert_uint_eq(packed_uids(&admin), 0);
	take(USER, BUDGET_CONNS, 1);
	take(USER, BUDGET_FDS, 2);
	take(1000, BUDGET_CONNS, 1);
	ck_assert_uint_eq(packed_uids(&admin), 2);
	ck_assert_uint_eq(packed_uids(&user), 1);	/* only its own */
	budget_give(USER, BUDGET_CONNS, 1);
	ck_assert_uint_eq(packed_uids(&admin), 2);	/* still holds fds */
	budget_give(USER, BUDGET_FDS, 2);
	ck_assert_uint_eq(packed_uids(&admin), 1);
	ck_assert_uint_eq(packed_uids(&user), 0);
	/* Giving back what is not held is a bug: it changes nothing. */
	budget_give(USER, BUDGET_FDS, 1);
	ck_assert_uint_eq(budget_used(USER, BUDGET_FDS), 0);
	budget_give(1000, BUDGET_CONNS, 5);
	ck_assert_uint_eq(packed_uids(&admin), 0);
}
END_TEST

START_TEST(many_uids)
{
	uid_t u;

	for (u = 1000; u < 6000; u++)
		take(u, BUDGET_CONNS, 1);
	for (u = 1000; u < 6000; u++)
		ck_assert_uint_eq(budget_used(u, BUDGET_CONNS), 1);
	for (u = 1000; u < 6000; u += 2)
		budget_give(u, BUDGET_CONNS, 1);
	for (u = 1000; u < 6000; u++)
		ck_assert_uint_eq(budget_used(u, BUDGET_CONNS), u % 2);
	/* The rest is left for budget_shutdown to free. */
}
END_TEST

int
main(void)
{
	TCase *tc;
	Suite *s = unit_suite("budget", &tc);

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, admins_are_exempt_but_for_conns);
	tcase_add_test(tc, take_up_to_the_limit);
	tcase_add_test(tc, codes_by_kind);
	tcase_add_test(tc, charge_goes_over_and_over_says_so);
	tcase_add_test(tc, admins_are_counted_not_limited);
	tcase_add_test(tc, node_goes_when_empty);
	tcase_add_test(tc, many_uids);
	return UNIT_RUN(s);
}
