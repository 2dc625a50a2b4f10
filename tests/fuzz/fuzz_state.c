/*
 * fuzz_state.c: a state read back by reexec_restore_state (reexec.c), as
 * the fd store's memfd (fdstore.c) or a re-exec's --state-fd memfd would
 * give it, or by snapshot_recover from STATE_DIR/state: instances
 * (instance-state.c, spec-state.c, output-state.c), programs
 * (program-state.c), connections, subscriptions and the fd store's part.
 * The input is a flags byte, then the state's bytes. Flags:
 * - bit 0: read it as a re-exec's state (by_list = 1: its "fds" list is
 *   handed over, state_fds_handed) instead of a crash's (by_list = 0:
 *   nothing handed, running instances adopted by pid and start time).
 *   No real fd is passed: an input whose "fds" list names an fd the
 *   harness has open is skipped, for after a real re-exec every listed
 *   fd is one the old image kept (a forged list is no threat wardd
 *   faces: only wardd writes that memfd). What is exercised is what a
 *   re-exec reads besides the fds: the list itself, the fd store's table,
 *   the counters, and every owner's read with its fds missing;
 * - bit 2 (over bit 0): write it to STATE_DIR/state and read it back as
 *   a start after a crash without an fd store does (snapshot_recover,
 *   snapshot.c: its own unpack, then the same owners' reads);
 * - bit 1: then run wardd's loop a few turns without blocking, so that
 *   timers read back as due fire (a crash's state only: a re-exec's
 *   running instances are wardd's children by its word, and a stop
 *   timer would signal a pid the input chose).
 *
 * Invariants: the read returns 0 or -1 and never crashes or hangs; no fd
 * is taken that was not handed over (the harness's fds stay open: the
 * count is the same after); once every instance and program is removed,
 * nothing is left: no fd, no memory (LeakSanitizer), no connection, no
 * runtime dir in STATE_DIR/instances (the journal's socket, once a
 * restored capture sent a line, is wardd's for its life: not a leak).
 * Nothing is spawned (harness.c's sandbox): a program whose backoff is
 * due restarts its instance into a refused exec.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define FUZZ_STATE_TURNS	8	/* loop turns after the read (bit 1) */

static int fuzz_state_fds0;
static char *fuzz_state_instances;

static const char *const fuzz_state_files[] = {
	"history", "history.rejected", "history.tmp", "state", "state.bad",
	"state.tmp",
};

/*
 * Whether the input's "fds" list (as state_fds_handed reads it) names an
 * fd open here: such an input is not run with by_list (see the top).
 */
static int
fuzz_state_names_open_fd(const uint8_t *data, size_t size)
{
	struct ward_err e = WARD_ERR_INIT;
	msgpack_unpacked u;
	const msgpack_object *a;
	const msgpack_object_kv *o;
	size_t off = 0, n, j;
	uint32_t k;
	int named = 0;

	/* As reexec_restore_state does: a count is checked against the
	 * bytes before msgpack-c allocates for it (it would read nothing). */
	if (codec_scan_within((const char *)data, size, &n, &e, SIZE_MAX,
	    SIZE_MAX) != SCAN_COMPLETE)
		return 0;
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, (const char *)data, size, &off) ==
	    MSGPACK_UNPACK_SUCCESS && u.data.type == MSGPACK_OBJECT_MAP) {
		/* Every "fds" key: with two, which state_get finds depends
		 * on where its last search in a map at that address ended. */
		for (k = 0; k < u.data.via.map.size && !named; k++) {
			o = &u.data.via.map.ptr[k];
			if (!codec_is_str(&o->key) || o->key.via.str.size != 3 ||
			    memcmp(o->key.via.str.ptr, "fds", 3) != 0 ||
			    o->val.type != MSGPACK_OBJECT_ARRAY)
				continue;
			a = o->val.via.array.ptr;
			n = o->val.via.array.size;
			for (j = 0; j < n && !named; j++)
				named = a[j].type ==
				    MSGPACK_OBJECT_POSITIVE_INTEGER &&
				    a[j].via.u64 <= INT32_MAX &&
				    fcntl((int)a[j].via.u64, F_GETFD) != -1;
		}
	}
	msgpack_unpacked_destroy(&u);
	return named;
}

/*
 * Forget everything the read made. There is no program teardown in
 * program.c (wardd leaves them at exit): instance_free_all's removals
 * clear each program's instance (program_instance_cb), and a program
 * marked removing is freed by its APPLY.
 */
static void
fuzz_state_teardown(void)
{
	struct program *p;

	instance_free_all();
	instance_init();
	while ((p = TAILQ_FIRST(&programs)) != NULL) {
		harness_assert(p->inst == NULL, "program %s keeps a removed "
		    "instance", p->conf->name);
		p->removing = 1;
		program_step(p, PROGRAM_EV_APPLY);
		harness_assert(TAILQ_FIRST(&programs) != p, "program %s is not "
		    "freed", p->conf->name);
	}
	conn_close_all();
	history_free();
	state_fds_reset();
	/* As before a read: wardd binds STATE_DIR's shared sockets only
	 * after (channel_open), where the state did not bring them. */
	channel_close();
	channel_init();
}

static void
fuzz_state_journal_cb(int fd, const char *what, void *arg)
{
	*(int *)arg = 1;
}

/*
 * The journal's socket (output-journal.c) is opened at the first line a
 * restored instance's capture sends there, and kept for wardd's life:
 * from then on it is in the baseline, not a leak.
 */
static void
fuzz_state_journal_baseline(void)
{
	static int counted;
	int open = 0;

	output_journal_fds(fuzz_state_journal_cb, &open);
	if (open && !counted) {
		counted = 1;
		fuzz_state_fds0++;
	}
}

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	harness_init();
	/* Each read starts as wardd's does, without the shared sockets. */
	channel_close();
	channel_init();
	fuzz_state_instances = str_printf("%s/instances", harness_sandbox());
	fuzz_state_fds0 = harness_count_fds();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[4096];
	size_t k;
	int snapshot, by_list, loop, rc, turns;

	if (size < 1)
		return 0;
	snapshot = data[0] & 4;
	by_list = !snapshot && (data[0] & 1);
	loop = !by_list && (data[0] & 2);
	data++;
	size--;
	if (by_list && fuzz_state_names_open_fd(data, size))
		return 0;
	state_fds_reset();	/* by_list = 0: nothing handed over */
	if (snapshot) {
		snprintf(path, sizeof path, "%s/state", harness_sandbox());
		if (harness_write_file(path, data, size) == -1)
			return 0;
		rc = snapshot_recover();
	} else
		rc = reexec_restore_state((const char *)data, size, by_list);
	harness_assert(rc == 0 || rc == -1, "the read gave %d", rc);
	channel_open();		/* as wardd's start does after the read */
	for (turns = 0; loop && turns < FUZZ_STATE_TURNS; turns++)
		ev_run(ward_loop, EVRUN_NOWAIT);
	/* An fd the read took that was not handed over, or closed, is
	 * one more or one less than the harness had. */
	fuzz_state_teardown();
	harness_assert(TAILQ_EMPTY(&instances), "instances left");
	harness_assert(conn_count == 0, "%u connections left", conn_count);
	fuzz_state_journal_baseline();
	harness_check_fds(fuzz_state_fds0);
	harness_assert(harness_dir_empty(fuzz_state_instances),
	    "a runtime dir is left in %s", fuzz_state_instances);
	for (k = 0; k < sizeof fuzz_state_files / sizeof fuzz_state_files[0];
	    k++) {
		snprintf(path, sizeof path, "%s/%s", harness_sandbox(),
		    fuzz_state_files[k]);
		unlink(path);
	}
	return 0;
}
