/*
 * test_instance.c: the instance state machine, driven through the sys
 * seam (fake_sys.c) without real processes: every transition of
 * NOT_STARTED -> RUNNING -> DEAD / FAILED and back, what each announces,
 * the death reasons wardd decides itself (hangup, watchdog, stop
 * escalation), and that a removed instance is gone.
 */
#include "config.h"

#include <signal.h>
#include <string.h>

#include "fake_sys.h"
#include "unit.h"

static int
start(struct instance *i)
{
	struct ward_err err = WARD_ERR_INIT;
	int rc = instance_start(i, &err);

	if (rc == -1)
		ck_assert_msg(err.msg[0] != '\0', "a failed start says why");
	return rc;
}

START_TEST(test_run_and_exit)
{
	struct instance *i;

	fake_sys_setup();
	i = fake_sys_instance("web", 0);
	ck_assert_int_eq(i->state, INSTANCE_NOT_STARTED);
	ck_assert(fake_sys_saw(INSTANCE_EV_CREATED, i->id));
	ck_assert_ptr_eq(instance_find_name("web"), i);
	ck_assert_ptr_eq(instance_find_id(i->id), i);

	ck_assert_int_eq(start(i), 0);
	ck_assert_int_eq(i->state, INSTANCE_RUNNING);
	ck_assert_int_eq(i->pid, 4000);
	ck_assert(fake_sys_saw(INSTANCE_EV_STARTED, i->id));
	ck_assert_uint_eq(instances_running_count, 1);

	fake_sys_exit(i, 3, 0);
	ck_assert_int_eq(i->state, INSTANCE_DEAD);
	ck_assert_ptr_nonnull(i->exit);
	ck_assert(i->exit->exited);
	ck_assert_int_eq(i->exit->exit_code, 3);
	ck_assert_str_eq(i->exit->death_reason, "UNKNOWN");	/* no map for 3 */
	ck_assert(fake_sys_saw(INSTANCE_EV_EXITING, i->id));
	ck_assert(fake_sys_saw(INSTANCE_EV_STOPPED, i->id));
	ck_assert(fake_sys_saw(INSTANCE_EV_DIED, i->id));
	ck_assert_uint_eq(instances_running_count, 0);
	fake_sys_teardown();
}
END_TEST

/* The order of a life's announcements, as observers rely on it. */
START_TEST(test_announcement_order)
{
	static const enum instance_event want[] = {
		INSTANCE_EV_CREATED, INSTANCE_EV_STARTED, INSTANCE_EV_PAYLOAD,
		INSTANCE_EV_EXITING, INSTANCE_EV_STOPPED, INSTANCE_EV_DIED,
		INSTANCE_EV_REMOVED
	};
	struct instance *i;
	struct ward_err err = WARD_ERR_INIT;
	uint64_t id;
	size_t k;

	fake_sys_setup();
	i = fake_sys_instance(NULL, 0);
	id = i->id;
	ck_assert_int_eq(start(i), 0);
	ck_assert_int_eq(instance_set_payload(i, PAYLOAD_READY, &err), 0);
	fake_sys_exit(i, 0, SIGKILL);
	instance_remove(i);
	ck_assert_ptr_null(instance_find_id(id));
	ck_assert_int_eq(fake.nevents, (int)(sizeof want / sizeof want[0]));
	for (k = 0; k < sizeof want / sizeof want[0]; k++)
		ck_assert_int_eq(fake.events[k], want[k]);
	fake_sys_teardown();
}
END_TEST

START_TEST(test_spawn_failure_is_failed)
{
	struct instance *i;

	fake_sys_setup();
	i = fake_sys_instance("broken", 0);
	fake.spawn_fails = 1;
	ck_assert_int_eq(start(i), -1);
	ck_assert_int_eq(i->state, INSTANCE_FAILED);
	ck_assert_str_eq(i->exit->death_reason, "SPAWN_FAILED");
	ck_assert_ptr_nonnull(i->exit->failure_reason);
	ck_assert(strstr(i->exit->failure_reason, "refused by the fake") != NULL);
	/* It never ran: no STARTED, no STOPPED; but a DIED, with a record. */
	ck_assert(!fake_sys_saw(INSTANCE_EV_STARTED, i->id));
	ck_assert(!fake_sys_saw(INSTANCE_EV_STOPPED, i->id));
	ck_assert(fake_sys_saw(INSTANCE_EV_DIED, i->id));
	/* FAILED -> RUNNING: it may be started again. */
	ck_assert_int_eq(start(i), 0);
	ck_assert_int_eq(i->state, INSTANCE_RUNNING);
	ck_assert_ptr_null(i->exit);
	fake_sys_teardown();
}
END_TEST

START_TEST(test_restart_keeps_the_id)
{
	struct instance *i;
	uint64_t id;
	struct ward_err err = WARD_ERR_INIT;

	fake_sys_setup();
	i = fake_sys_instance("again", 0);
	id = i->id;
	ck_assert_int_eq(start(i), 0);
	ck_assert_int_eq(instance_can_start(i, &err), -1);
	ck_assert_int_eq(start(i), -1);		/* already running */
	ck_assert_int_eq(i->state, INSTANCE_RUNNING);
	fake_sys_exit(i, 0, 0);
	ck_assert_int_eq(start(i), 0);
	ck_assert_uint_eq(i->id, id);
	ck_assert_int_eq(i->pid, 4001);
	ck_assert_int_eq(i->payload, PAYLOAD_STARTING);
	fake_sys_teardown();
}
END_TEST

/* instance.stop: the stop signal to the group, SIGKILL when time is up. */
START_TEST(test_stop_escalates_to_sigkill)
{
	struct instance *i;

	fake_sys_setup();
	i = fake_sys_instance("slow", 0);
	ck_assert_int_eq(start(i), 0);
	i->stop_signal = SIGINT;
	ck_assert_int_eq(instance_stop(i, 1000), 0);
	ck_assert_int_eq(fake_sys_last_signal(), SIGINT);
	ck_assert(i->stop_requested);
	fake_sys_fire(&i->stop_t);
	ck_assert_int_eq(fake_sys_last_signal(), SIGKILL);
	fake_sys_exit(i, 0, SIGKILL);
	ck_assert_int_eq(i->state, INSTANCE_DEAD);
	ck_assert_int_eq(i->exit->exit_signal, SIGKILL);
	ck_assert_str_eq(i->exit->death_reason, "KILLED");
	ck_assert_int_eq(i->exit->killed_by, KILLED_BY_STOP);
	fake_sys_teardown();
}
END_TEST

/*
 * Issue 13: who killed it. The OOM killer is told by memory.events'
 * oom_kill rising between the start and the death (read through the sys
 * seam, so no memory controller is needed here); it makes the death
 * OUT_OF_MEMORY unless fd 3 named a reason.
 */
START_TEST(test_killed_by_oom)
{
	struct instance *i;

	fake_sys_setup();
	i = fake_sys_instance("hog", 0);
	fake.memory_events = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\n";
	ck_assert_int_eq(start(i), 0);
	ck_assert_uint_eq(i->cgroup.oom_kills, 2);
	fake.memory_events = "low 0\nhigh 0\nmax 40\noom 3\noom_kill 3\n"
	    "oom_group_kill 0\n";
	fake_sys_exit(i, 0, SIGKILL);
	ck_assert_int_eq(i->exit->killed_by, KILLED_BY_OOM);
	ck_assert_str_eq(i->exit->death_reason, "OUT_OF_MEMORY");

	/* fd 3's own NAME stays the reason; killed_by still says oom. */
	fake.memory_events = "oom_kill 3\n";
	ck_assert_int_eq(start(i), 0);
	exit_failure_add(i, "CRASH|mine", 10, 0);
	fake.memory_events = "oom_kill 4\n";
	fake_sys_exit(i, 0, SIGKILL);
	ck_assert_int_eq(i->exit->killed_by, KILLED_BY_OOM);
	ck_assert_str_eq(i->exit->death_reason, "CRASH");

	/* A count that did not rise: a SIGKILL from someone else. */
	ck_assert_int_eq(start(i), 0);
	fake_sys_exit(i, 0, SIGKILL);
	ck_assert_int_eq(i->exit->killed_by, KILLED_BY_EXTERNAL);
	ck_assert_str_eq(i->exit->death_reason, "KILLED");

	/* A rise in a run that exited 0 is no OOM death (a child's, say). */
	fake.memory_events = "oom_kill 4\n";
	ck_assert_int_eq(start(i), 0);
	fake.memory_events = "oom_kill 5\n";
	fake_sys_exit(i, 0, 0);
	ck_assert_int_eq(i->exit->killed_by, KILLED_BY_NONE);
	ck_assert_str_eq(i->exit->death_reason, "SHUTDOWN");
	ck_assert_uint_eq(i->exit->run, 4);
	fake_sys_teardown();
}
END_TEST

/* Without memory.events (no memory controller) nothing is an OOM kill. */
START_TEST(test_killed_by_without_memory_events)
{
	struct instance *i;

	fake_sys_setup();
	i = fake_sys_instance("plain", 0);
	ck_assert_int_eq(start(i), 0);
	ck_assert_uint_eq(i->cgroup.oom_kills, 0);
	fake_sys_exit(i, 0, SIGTERM);
	ck_assert_int_eq(i->exit->killed_by, KILLED_BY_EXTERNAL);
	ck_assert_uint_eq(i->exit->run, 1);
	/* instance.kill's signal, sent in this run, is the client's. */
	ck_assert_int_eq(start(i), 0);
	i->kill_signal = SIGUSR1;
	i->kill_uid = 4321;
	i->kill_run = i->runs;
	fake_sys_exit(i, 0, SIGUSR1);
	ck_assert_int_eq(i->exit->killed_by, KILLED_BY_KILL);
	ck_assert_uint_eq(i->exit->killed_by_uid, 4321);
	ck_assert_uint_eq(i->exit->run, 2);
	/* ...not in the next run's. */
	ck_assert_int_eq(start(i), 0);
	fake_sys_exit(i, 0, SIGUSR1);
	ck_assert_int_eq(i->exit->killed_by, KILLED_BY_EXTERNAL);
	fake_sys_teardown();
}
END_TEST

/* The seed's hangup: no "started" by the deadline is a HANGUP death. */
START_TEST(test_hangup_kills_and_names_it)
{
	struct instance *i;

	fake_sys_setup();
	i = fake_sys_instance("vm", 1);
	ck_assert_int_eq(start(i), 0);
	ck_assert(ev_is_active(&i->hangup_t));
	fake_sys_fire(&i->hangup_t);
	ck_assert_int_eq(i->payload, PAYLOAD_HANGUP);
	ck_assert_int_eq(fake_sys_last_signal(), SIGKILL);
	fake_sys_exit(i, 0, SIGKILL);
	ck_assert_str_eq(i->exit->death_reason, "HANGUP");
	ck_assert_int_eq(i->exit->killed_by, KILLED_BY_HANGUP);
	fake_sys_teardown();
}
END_TEST

/* A payload that says it started in time stops the hangup timer. */
START_TEST(test_started_payload_is_no_hangup)
{
	struct instance *i;
	struct ward_err err = WARD_ERR_INIT;

	fake_sys_setup();
	i = fake_sys_instance("vm", 1);
	ck_assert_int_eq(start(i), 0);
	instance_notify_line(i, "STATE=started", 13);
	ck_assert_int_eq(i->payload, PAYLOAD_STARTED);
	ck_assert(!ev_is_active(&i->hangup_t));
	/* Payload states only move forward. */
	ck_assert_int_eq(instance_set_payload(i, PAYLOAD_STARTING, &err), -1);
	ck_assert_int_eq(i->payload, PAYLOAD_STARTED);
	fake_sys_exit(i, 0, 0);
	ck_assert_str_eq(i->exit->death_reason, "SHUTDOWN");	/* exit 0 */
	fake_sys_teardown();
}
END_TEST

/* The instance watchdog: no WATCHDOG=1 in time is a WATCHDOG death. */
START_TEST(test_watchdog)
{
	struct instance *i;

	fake_sys_setup();
	i = fake_sys_instance("dog", 0);
	i->spec.watchdog_ms = 500;
	ck_assert_int_eq(start(i), 0);
	ck_assert(ev_is_active(&i->watchdog_t));
	instance_notify_line(i, "WATCHDOG=1", 10);
	ck_assert(ev_is_active(&i->watchdog_t));
	ck_assert_int_eq(fake.nsignals, 0);
	fake_sys_fire(&i->watchdog_t);
	ck_assert_int_eq(fake_sys_last_signal(), SIGKILL);
	fake_sys_exit(i, 0, SIGKILL);
	ck_assert_str_eq(i->exit->death_reason, "WATCHDOG");
	ck_assert_int_eq(i->exit->killed_by, KILLED_BY_WATCHDOG);
	fake_sys_teardown();
}
END_TEST

/* A spurious pidfd wakeup (nothing to reap yet) changes nothing. */
START_TEST(test_spurious_wakeup)
{
	struct instance *i;

	fake_sys_setup();
	i = fake_sys_instance("up", 0);
	ck_assert_int_eq(start(i), 0);
	ev_invoke(ward_loop, &i->pidfd_w, EV_READ);
	ck_assert_int_eq(i->state, INSTANCE_RUNNING);
	ck_assert(!fake_sys_saw(INSTANCE_EV_DIED, i->id));
	fake_sys_teardown();
}
END_TEST

int
main(void)
{
	TCase *tc;
	Suite *s = unit_suite("instance", &tc);

	tcase_add_test(tc, test_run_and_exit);
	tcase_add_test(tc, test_announcement_order);
	tcase_add_test(tc, test_spawn_failure_is_failed);
	tcase_add_test(tc, test_restart_keeps_the_id);
	tcase_add_test(tc, test_stop_escalates_to_sigkill);
	tcase_add_test(tc, test_hangup_kills_and_names_it);
	tcase_add_test(tc, test_started_payload_is_no_hangup);
	tcase_add_test(tc, test_watchdog);
	tcase_add_test(tc, test_spurious_wakeup);
	tcase_add_test(tc, test_killed_by_oom);
	tcase_add_test(tc, test_killed_by_without_memory_events);
	return UNIT_RUN(s);
}
