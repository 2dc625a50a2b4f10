/*
 * test_suspend.c: suspend.c through the sys seam (fake_sys.c), without
 * cgroups (the freezer itself is test_suspend.py's): the clocks a
 * suspension pauses and gives back with the time they had left, a
 * WATCHDOG=1 while suspended, resume's refusal, a stop of a suspended
 * instance, and the state's part read back, hostile values too.
 */
#include "config.h"

#include <math.h>
#include <signal.h>
#include <string.h>

#include "fake_sys.h"
#include "unit.h"

static struct instance *
running(const char *name, int hangup, unsigned watchdog_ms)
{
	struct ward_err err = WARD_ERR_INIT;
	struct instance *i = fake_sys_instance(name, hangup);

	i->spec.watchdog_ms = watchdog_ms;
	ck_assert_int_eq(instance_start(i, &err), 0);
	return i;
}

/* Both clocks stop with their time left, and start again with it. */
START_TEST(test_clocks_pause_and_resume)
{
	struct ward_err err = WARD_ERR_INIT;
	struct instance *i;
	double h, w;

	fake_sys_setup();
	i = running("vm", 1, 500);
	h = ev_timer_remaining(ward_loop, &i->hangup_t);
	w = ev_timer_remaining(ward_loop, &i->watchdog_t);
	ck_assert_int_eq(suspend_start(i, &err), 0);	/* no cgroup: SIGSTOP */
	ck_assert_int_eq(fake_sys_last_signal(), SIGSTOP);
	ck_assert(i->suspended);
	ck_assert(!ev_is_active(&i->hangup_t) && !ev_is_active(&i->watchdog_t));
	ck_assert(fabs(i->suspend.left[0] - h) < 0.01);
	ck_assert(fabs(i->suspend.left[1] - w) < 0.01);
	ck_assert_int_eq(suspend_start(i, &err), -1);	/* already */
	ck_assert_str_eq(err.code, WARD_E_INVALID_STATE);
	ck_assert_int_eq(suspend_end(i, &err), 0);
	ck_assert_int_eq(fake_sys_last_signal(), SIGCONT);
	ck_assert(!i->suspended);
	ck_assert(ev_is_active(&i->hangup_t) && ev_is_active(&i->watchdog_t));
	ck_assert(fabs(ev_timer_remaining(ward_loop, &i->hangup_t) - h) < 0.01);
	ck_assert(fabs(ev_timer_remaining(ward_loop, &i->watchdog_t) - w) < 0.01);
	fake_sys_teardown();
}
END_TEST

/* A WATCHDOG=1 while suspended rearms the paused time, not the timer. */
START_TEST(test_watchdog_kick_while_suspended)
{
	struct ward_err err = WARD_ERR_INIT;
	struct instance *i;

	fake_sys_setup();
	i = running("dog", 0, 500);
	ck_assert_int_eq(suspend_start(i, &err), 0);
	i->suspend.left[1] = 0.1;
	instance_notify_line(i, "WATCHDOG=1", 10);
	ck_assert(!ev_is_active(&i->watchdog_t));
	ck_assert(fabs(i->suspend.left[1] - 0.5) < 1e-9);
	ck_assert(i->suspend.left[0] < 0.);		/* no hangup: none */
	ck_assert_int_eq(suspend_end(i, &err), 0);
	ck_assert(ev_is_active(&i->watchdog_t));
	ck_assert(!ev_is_active(&i->hangup_t));
	fake_sys_teardown();
}
END_TEST

/* Resume refuses what is not suspended, running or not. */
START_TEST(test_resume_refuses)
{
	struct ward_err err = WARD_ERR_INIT;
	struct instance *i;

	fake_sys_setup();
	i = running("up", 0, 0);
	ck_assert_int_eq(suspend_end(i, &err), -1);
	ck_assert_str_eq(err.code, WARD_E_INVALID_STATE);
	ck_assert(strstr(err.msg, "not suspended") != NULL);
	ck_assert_int_eq(fake.nsignals, 0);
	fake_sys_exit(i, 0, SIGKILL);
	ck_assert_int_eq(suspend_end(i, &err), -1);
	ck_assert_int_eq(suspend_start(i, &err), -1);
	fake_sys_teardown();
}
END_TEST

/* A stop resumes a suspended instance (after its stop signal) and leaves
 * the watchdog stopped; a stopping one cannot be suspended. */
START_TEST(test_stop_resumes)
{
	struct ward_err err = WARD_ERR_INIT;
	struct instance *i;

	fake_sys_setup();
	i = running("stop", 1, 500);
	ck_assert_int_eq(suspend_start(i, &err), 0);
	ck_assert_int_eq(instance_stop(i, 1000), 0);
	ck_assert_int_eq(fake_sys_last_signal(), SIGCONT);
	ck_assert_int_eq(fake.signals[fake.nsignals - 2], SIGTERM);
	ck_assert(!i->suspended);
	ck_assert(!ev_is_active(&i->watchdog_t));
	ck_assert(ev_is_active(&i->hangup_t));
	ck_assert_int_eq(suspend_start(i, &err), -1);
	ck_assert(strstr(err.msg, "stopped") != NULL);
	fake_sys_exit(i, 0, SIGTERM);
	ck_assert(!i->suspended);
	fake_sys_teardown();
}
END_TEST

/* Its part of the state, packed and read back; then hostile values. */
START_TEST(test_state_read_back)
{
	static const char nan_neg[] = "\x82\xa6" "cgroup\xa0\xa4" "left\x92"
	    "\xcb\x7f\xf8\0\0\0\0\0\0" "\xcb\xbf\xf0\0\0\0\0\0\0";
	static const char huge_nil[] = "\x82\xa6" "cgroup\xa3../\xa4" "left\x92"
	    "\xcb\x41\xcd\xcd\x65" "\0\0\0\0" "\xc0";	/* 1e9, nil */
	static const char not_array[] = "\x81\xa4" "left\xa1x";
	static const struct { const char *p; size_t n; } bad[] = {
		{ nan_neg, sizeof nan_neg - 1 },
		{ huge_nil, sizeof huge_nil - 1 },
		{ not_array, sizeof not_array - 1 },
	};
	struct ward_err err = WARD_ERR_INIT;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_unpacked u;
	struct instance *i, *j;
	size_t k;

	fake_sys_setup();
	i = running("a", 1, 500);
	j = running("b", 0, 500);	/* no hangup: its time is dropped */
	ck_assert_int_eq(suspend_start(i, &err), 0);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	suspend_state_save(&pk, i);
	msgpack_unpacked_init(&u);
	ck_assert(msgpack_unpack_next(&u, sb.data, sb.size, NULL) ==
	    MSGPACK_UNPACK_SUCCESS);
	j->suspended = 1;
	suspend_state_restore(&u.data, j);
	ck_assert(j->suspended);
	ck_assert_str_eq(j->suspend.cgroup, "");
	ck_assert(j->suspend.left[0] < 0.);
	ck_assert(fabs(j->suspend.left[1] - i->suspend.left[1]) < 1e-9);
	msgpack_unpacked_destroy(&u);
	msgpack_sbuffer_destroy(&sb);
	for (k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		msgpack_unpacked_init(&u);
		ck_assert(msgpack_unpack_next(&u, bad[k].p, bad[k].n, NULL) ==
		    MSGPACK_UNPACK_SUCCESS);
		i->suspended = 1;
		suspend_state_restore(&u.data, i);
		ck_assert(i->suspend.left[0] < 0. ||
		    i->suspend.left[0] <= HANGUP_TIMEOUT_MS / 1000.0);
		ck_assert(i->suspend.left[1] < 0. || i->suspend.left[1] <= 0.5);
		msgpack_unpacked_destroy(&u);
	}
	ck_assert_int_eq(suspend_end(i, &err), 0);
	fake_sys_teardown();
}
END_TEST

int
main(void)
{
	TCase *tc;
	Suite *s = unit_suite("suspend", &tc);

	tcase_add_test(tc, test_clocks_pause_and_resume);
	tcase_add_test(tc, test_watchdog_kick_while_suspended);
	tcase_add_test(tc, test_resume_refuses);
	tcase_add_test(tc, test_stop_resumes);
	tcase_add_test(tc, test_state_read_back);
	return UNIT_RUN(s);
}
