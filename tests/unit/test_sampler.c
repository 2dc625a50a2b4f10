/*
 * test_sampler.c: metrics.c's sampling timer, through the sys seam
 * (fake_sys.c: no processes, /proc reads counted, the timer fired by the
 * test instead of the clock). A pass over N running instances is cut into
 * ceil(N / METRICS_PER_TICK) ticks spread over the interval; each tick
 * reads at most METRICS_PER_TICK instances' /proc files, and each instance
 * is sampled exactly once per pass (once per interval), whether others
 * start or stop meanwhile (issue 12: no loop stall that grows with N).
 */
#include "config.h"

#include <math.h>
#include <signal.h>
#include <string.h>

#include "fake_sys.h"
#include "unit.h"

#define INTERVAL_MS	1000

static struct instance *running[1000];

static void
setup(int n)
{
	int k;
	struct ward_err e = WARD_ERR_INIT;

	fake_sys_setup();
	opts.metrics_interval_ms = INTERVAL_MS;
	metrics_init();
	instance_observe(metrics_instance_cb);
	for (k = 0; k < n; k++) {
		running[k] = fake_sys_instance(NULL, 0);
		ck_assert_msg(instance_start(running[k], &e) == 0, "%s", e.msg);
	}
	ck_assert_uint_eq(instances_running_count, n);
}

static unsigned
stat_reads(const struct instance *i)
{
	return fake.stat_reads[i->pid - FAKE_SYS_FIRST_PID];
}

/* Fire the timer once; the /proc/PID/stat reads that tick made. */
static unsigned
tick(void)
{
	unsigned before = 0, after = 0, k;

	for (k = 0; k < FAKE_SYS_MAX_PIDS; k++)
		before += fake.stat_reads[k];
	fake_sys_fire(metrics_timer());
	for (k = 0; k < FAKE_SYS_MAX_PIDS; k++)
		after += fake.stat_reads[k];
	return after - before;
}

/* 10 instances: one tick a pass, one interval apart, everyone sampled. */
START_TEST(test_few_one_tick_per_interval)
{
	unsigned reads;
	int k;

	setup(10);
	ck_assert(fabs(metrics_timer()->repeat - INTERVAL_MS / 1000.) < 1e-9);
	ck_assert_uint_eq(tick(), 10);
	for (k = 0; k < 10; k++)
		ck_assert_uint_eq(stat_reads(running[k]), 1);
	ck_assert_uint_eq(tick(), 10);
	for (k = 0; k < 10; k++)
		ck_assert_uint_eq(stat_reads(running[k]), 2);
	ck_assert_uint_eq(running[0]->metrics.cpu_user_ms, 70);	/* 7 ticks */
	/* RSS from stat's field 24 (50 pages), no second file read. */
	ck_assert_uint_eq(running[0]->metrics.rss_kb,
	    50 * (sysconf(_SC_PAGESIZE) / 1024));
	reads = fake.proc_reads;
	ck_assert_uint_eq(tick(), 10);
	ck_assert_uint_eq(fake.proc_reads - reads, 10);	/* one file each */
	fake_sys_teardown();
}
END_TEST

/*
 * 1,000 instances: 32 ticks a pass, interval / 32 apart, none reading more
 * than METRICS_PER_TICK instances, and each instance once a pass.
 */
START_TEST(test_many_sliced)
{
	unsigned slices = (1000 + METRICS_PER_TICK - 1) / METRICS_PER_TICK;
	unsigned pass, s, n, total;
	int k;

	setup(1000);
	for (pass = 1; pass <= 3; pass++) {
		total = 0;
		for (s = 0; s < slices; s++) {
			n = tick();
			ck_assert_uint_le(n, METRICS_PER_TICK);
			total += n;
		}
		ck_assert_uint_eq(total, 1000);
		for (k = 0; k < 1000; k++)
			ck_assert_uint_eq(stat_reads(running[k]), pass);
		/* From the first pass on, ticks are interval / slices apart. */
		ck_assert(fabs(metrics_timer()->repeat -
		    INTERVAL_MS / 1000. / slices) < 1e-9);
	}
	fake_sys_teardown();
}
END_TEST

/*
 * Instances stopping mid-pass (the one the cursor is on among them, and
 * both sampled and unsampled ones) and starting mid-pass: nobody is
 * sampled twice in a pass, everyone still running is sampled in it, and a
 * newcomer is sampled by the end of the next pass.
 */
START_TEST(test_stops_and_starts_mid_pass)
{
	unsigned slices = (200 + METRICS_PER_TICK - 1) / METRICS_PER_TICK;
	struct ward_err e = WARD_ERR_INIT;
	struct instance *late;
	unsigned s;
	int k;

	setup(200);
	ck_assert_uint_eq(tick(), METRICS_PER_TICK);	/* the first slice */
	for (k = 20; k < 60; k++)	/* sampled and unsampled ones stop */
		fake_sys_exit(running[k], 0, SIGKILL);
	late = fake_sys_instance("late", 0);
	ck_assert_int_eq(instance_start(late, &e), 0);
	/* A burst of starts: no tick reads more than its share for it. */
	for (k = 0; k < 100; k++)
		ck_assert_int_eq(instance_start(fake_sys_instance(NULL, 0), &e), 0);
	for (s = 1; s < slices; s++)
		ck_assert_uint_le(tick(), METRICS_PER_TICK);
	for (k = 0; k < 200; k++) {
		if (k >= 20 && k < 60)
			continue;
		ck_assert_msg(stat_reads(running[k]) == 1, "instance %d: %u",
		    k, stat_reads(running[k]));
	}
	/* The next pass samples everyone running, the newcomer too. */
	for (s = 0; s < (instances_running_count + METRICS_PER_TICK - 1) /
	    METRICS_PER_TICK; s++)
		(void)tick();
	ck_assert_uint_ge(stat_reads(late), 1);
	for (k = 0; k < 200; k++) {
		if (k < 20 || k >= 60)
			ck_assert_uint_eq(stat_reads(running[k]), 2);
	}
	fake_sys_teardown();
}
END_TEST

int
main(void)
{
	TCase *tc;
	Suite *s = unit_suite("sampler", &tc);

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_few_one_tick_per_interval);
	tcase_add_test(tc, test_many_sliced);
	tcase_add_test(tc, test_stops_and_starts_mid_pass);
	return UNIT_RUN(s);
}
