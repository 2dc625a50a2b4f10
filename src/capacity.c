/*
 * capacity.c: how many instances wardd's open-files limit lets run, and
 * the refusal past it (issue 12). A running instance holds
 * CAPACITY_PER_INSTANCE fds (its pidfd and its fd 4 stream: channel.c
 * made fd 3 and NOTIFY_SOCKET shared), plus its capture's (a pipe per
 * captured stream, a log file and its directory, a memfd ring under an fd
 * store: output.c's). wardd counts what each running instance holds when
 * it starts (capacity_started) and refuses a start that would leave fewer
 * than CAPACITY_RESERVE fds for everything else (clients, log files,
 * STATE_DIR's files, the next spawn's temporary ends) with
 * resource_exhausted naming RLIMIT_NOFILE, instead of failing half-way
 * with EMFILE. An eighth of the limit is kept for admins: a user who is
 * not one cannot take the last of it and lock root out (issue 12's
 * review, C3); users' own shares are their budgets (instances, fds). wardd
 * raised its soft limit to the hard one at start; a
 * wardd without CAP_SYS_RESOURCE cannot go past that, so this is the
 * ceiling (20,000 fds: 9,900 instances).
 *
 * layer: engine (below instance.c)
 */
#include "config.h"

#include <sys/resource.h>

#include <inttypes.h>

#include "ward.h"

/* Fds kept free for all but instances: listener, clients' passed fds in
 * flight, logs, STATE_DIR's files, a spawn's temporary ends. Clients
 * themselves are counted on top (conn_count). */
#define CAPACITY_RESERVE	64

static uint64_t capacity_limit;		/* RLIMIT_NOFILE, as raised at start */
static uint64_t capacity_held;		/* fds the running instances hold */

void
capacity_init(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		capacity_limit = rl.rlim_cur;
}

static void
capacity_count_cb(int fd, const char *what, void *arg)
{
	(*(unsigned *)arg)++;
}

/* The fds i holds now, bar a forked child's status pipe (gone at exec). */
static unsigned
capacity_count(const struct instance *i)
{
	unsigned n = (i->pidfd != -1) + (i->notify_fd != -1) +
	    (i->failure_fd != -1) + (i->sd_fd != -1) +
	    (i->spec.control != 0);	/* control.c's connection, once made */

	output_fds(i, capacity_count_cb, &n);
	return n;
}

/*
 * May i start without leaving wardd short of fds? 0 if so, else -1 with
 * e set (resource_exhausted). Its capture's fds are counted as they are
 * now (rings, log files), plus a pipe per stream.
 */
int
capacity_check(const struct instance *i, struct ward_err *e)
{
	uint64_t need = CAPACITY_PER_INSTANCE + capacity_count(i);
	/* run_as_owner: a non-admin's (wardd runs it as them). */
	uint64_t admins = i->run_as_owner ? capacity_limit / 8 : 0;

	if (i->output != NULL)
		need += OUTPUT_NSTREAMS;
	if (capacity_limit == 0 || capacity_held + need + conn_count +
	    CAPACITY_RESERVE + admins <= capacity_limit)
		return 0;
	return ward_err_set(e, WARD_E_RESOURCE_EXHAUSTED, "wardd's open files "
	    "limit (RLIMIT_NOFILE %" PRIu64 ") is reached%s: %u running "
	    "instances hold %" PRIu64 " fds (%d each, more with captured "
	    "output); stop some, or raise wardd's limit (LimitNOFILE=)",
	    capacity_limit, admins ? " for all but admins" : "",
	    instances_running_count, capacity_held, CAPACITY_PER_INSTANCE);
}

/* i runs (started, or read back running): count what it holds. */
void
capacity_started(struct instance *i)
{
	i->fds_counted = capacity_count(i);
	capacity_held += i->fds_counted;
}

/* i's run is over: what it held is free. */
void
capacity_stopped(struct instance *i)
{
	capacity_held -= i->fds_counted;
	i->fds_counted = 0;
}

/* Fds held beside runs (hooks.c's side processes): n more, or -n fewer. */
void
capacity_hold(int n)
{
	capacity_held += n;
}

/*
 * ward.stats capacity: in_use is every fd wardd holds (ward.fds's walk),
 * so what is not the instances' is known and the rest is room.
 */
void
capacity_pack(msgpack_packer *pk, uint64_t in_use)
{
	uint64_t other = in_use > capacity_held ? in_use - capacity_held : 0;
	uint64_t room = capacity_limit > other + CAPACITY_RESERVE ?
	    capacity_limit - other - CAPACITY_RESERVE : 0;

	msgpack_pack_map(pk, 6);
	codec_pack_kv_uint(pk, "rlimit_nofile", capacity_limit);
	codec_pack_kv_uint(pk, "fds_in_use", in_use);
	codec_pack_kv_uint(pk, "fds_per_instance", CAPACITY_PER_INSTANCE);
	codec_pack_kv_uint(pk, "fds_instances", capacity_held);
	codec_pack_kv_uint(pk, "reserve", CAPACITY_RESERVE);
	/* Running ones included: how many plain ones (no capture) fit. */
	codec_pack_kv_uint(pk, "instances", capacity_limit == 0 ? 0 :
	    room / CAPACITY_PER_INSTANCE);
}
