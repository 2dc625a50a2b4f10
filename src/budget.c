/*
 * budget.c: what each uid may make wardd hold, counted in one place, next to
 * the authorization decision (cmd.c asks here; so do server.c at accept and
 * conn.c for buffers). One node per uid that holds anything, found by uid in
 * O(1) and freed when its counts are all back to zero:
 *
 *   conns      its open connections (admins too: 128 each)
 *   buffer     bytes allocated for its connections' input and output buffers
 *   fds        fds wardd holds for it: received with requests and not yet
 *              handled, and passed fds kept for instances not yet started
 *   ring       bytes of captured-output rings its instances reserved
 *   instances  its instances not yet removed
 *
 * Admins (root and wardd's own uid) are counted but not limited, except for
 * their connections; the daemon-wide caps (CONN_MAX, INSTANCE_MAX) and the
 * fd reserve apply to everyone. Each count is owned by whoever took it and
 * given back by the same owner: server.c/conn.c (conns), conn.c (buffer, and
 * fds until a request is handled), instance.c (fds kept for an instance,
 * instances), output.c (ring).
 *
 * The fd reserve: BUDGET_FD_RESERVE fds on /dev/null, held while wardd
 * serves non-admins and released while it serves an admin, so that when the
 * table is full an admin's connection is still accepted and its requests
 * still find fds (OpenSMTPD keeps such a reserve for accept). conn.c says
 * whom it serves before reading a client; server.c, at EMFILE, accepts a
 * newcomer on its own spare fd and releases the reserve to keep an admin.
 *
 * layer: base
 */
#include "config.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "ward.h"

#define container_of(p, type, member) \
	((type *)((char *)(p) - offsetof(type, member)))

struct budget {
	struct table_node	 node;
	uid_t			 uid;
	uint64_t		 used[BUDGET_NKINDS];
};

static struct table budgets;
static int budget_reserve[BUDGET_FD_RESERVE];
static int budget_nreserve;

/* For messages and ward.stats. */
static const char *const budget_names[BUDGET_NKINDS] = {
	[BUDGET_CONNS] = "conns",
	[BUDGET_BUFFER] = "buffer_bytes",
	[BUDGET_FDS] = "fds",
	[BUDGET_RING] = "ring_bytes",
	[BUDGET_INSTANCES] = "instances",
};

/*
 * The default limits, before options change them: what one non-admin uid
 * may make wardd hold, and what the dumps may keep (wardd.c, and the test
 * set-ups that stand in for it).
 */
void
budget_defaults(void)
{
	opts.max_user_conns = BUDGET_USER_CONNS;
	opts.max_user_buffer = BUDGET_USER_BUFFER;
	opts.max_user_fds = BUDGET_USER_FDS;
	opts.max_user_ring = BUDGET_USER_RING;
	opts.dumps_max_count = DUMPS_MAX_COUNT_DEFAULT;
	opts.dumps_max_bytes = DUMPS_MAX_BYTES_DEFAULT;
}

/*
 * The reserve is filled when wardd first serves a non-admin, not here: its
 * fds should not take the lowest numbers, below the listener and its spare.
 */
void
budget_init(void)
{
	table_init(&budgets);
}

/* At exit: every count should be back to zero; free what is left anyway. */
void
budget_shutdown(void)
{
	struct table_node *n;
	size_t k;

	budget_reserve_release();
	for (k = 0; k < budgets.nbuckets; k++) {
		while ((n = budgets.buckets[k]) != NULL) {
			table_remove(&budgets, n);
			free(container_of(n, struct budget, node));
		}
	}
	table_free(&budgets);
}

/* Root and wardd's own uid: exempt from the per-user budgets. */
int
budget_admin(uid_t uid)
{
	return uid == 0 || uid == opts.uid;
}

/* The most uid may hold of k; UINT64_MAX: no limit of its own. */
uint64_t
budget_limit(uid_t uid, enum budget_kind k)
{
	if (budget_admin(uid))
		return k == BUDGET_CONNS ? CONN_MAX_PER_UID : UINT64_MAX;
	switch (k) {
	case BUDGET_CONNS:
		return opts.max_user_conns;
	case BUDGET_BUFFER:
		return opts.max_user_buffer;
	case BUDGET_FDS:
		return opts.max_user_fds;
	case BUDGET_RING:
		return opts.max_user_ring;
	case BUDGET_INSTANCES:
		return INSTANCE_MAX_PER_USER;
	default:
		return 0;
	}
}

static struct budget *
budget_find(uid_t uid)
{
	struct table_node *n = table_find(&budgets, &uid, sizeof uid);

	return n == NULL ? NULL : container_of(n, struct budget, node);
}

uint64_t
budget_used(uid_t uid, enum budget_kind k)
{
	struct budget *b = budget_find(uid);

	return b == NULL ? 0 : b->used[k];
}

/*
 * Count n more of k for uid, without a check: what it holds already (memory
 * allocated, fds received). -1 only when a first count for uid finds no
 * memory for its node; every caller but the first taker of a uid holds a
 * count already (a conn, an instance), so its node exists.
 */
int
budget_charge(uid_t uid, enum budget_kind k, uint64_t n)
{
	struct budget *b;

	if (n == 0)
		return 0;
	if ((b = budget_find(uid)) == NULL) {
		if ((b = calloc(1, sizeof *b)) == NULL)
			return -1;
		b->uid = uid;
		if (table_insert(&budgets, &b->node, &b->uid, sizeof b->uid) == -1) {
			free(b);
			return -1;
		}
	}
	b->used[k] += n;
	return 0;
}

/* Give back n of k; the node goes once uid holds nothing at all. */
void
budget_give(uid_t uid, enum budget_kind k, uint64_t n)
{
	struct budget *b;
	int j;

	if (n == 0)
		return;
	if ((b = budget_find(uid)) == NULL || b->used[k] < n) {
		/* A bug: a count given back twice, or never taken. */
		log_warnx("budget: uid %u gives back %" PRIu64 " %s it does not "
		    "hold", (unsigned)uid, n, budget_names[k]);
		if (b == NULL)
			return;
		n = b->used[k];
	}
	b->used[k] -= n;
	for (j = 0; j < BUDGET_NKINDS; j++) {
		if (b->used[j] != 0)
			return;
	}
	table_remove(&budgets, &b->node);
	free(b);
}

/* uid holds more of k than it may (an admin never, but for conns). */
int
budget_over(uid_t uid, enum budget_kind k)
{
	return budget_used(uid, k) > budget_limit(uid, k);
}

/* Refuse uid, holding used of k, n more: -1 with e set. */
static int
budget_refusal(uid_t uid, enum budget_kind k, uint64_t used, uint64_t n,
    struct ward_err *e)
{
	uint64_t lim = budget_limit(uid, k);

	switch (k) {
	case BUDGET_CONNS:
		return ward_err_set(e, WARD_E_BUSY, "too many connections from "
		    "this user (uid %u has %" PRIu64 ", the most it may have%s)",
		    (unsigned)uid, used,
		    budget_admin(uid) ? "" : "; --max-user-conns");
	case BUDGET_INSTANCES:
		return ward_err_set(e, WARD_E_TOO_LARGE, "uid %u has %" PRIu64
		    " instances, the most a non-admin may have; remove some "
		    "first", (unsigned)uid, used);
	case BUDGET_FDS:
		return ward_err_set(e, WARD_E_RESOURCE_EXHAUSTED, "uid %u makes "
		    "wardd hold %" PRIu64 " file descriptors (passed with "
		    "requests, or kept for instances not yet started) and may "
		    "hold at most %" PRIu64 " (--max-user-fds); start or remove "
		    "such instances first", (unsigned)uid, used + n, lim);
	case BUDGET_RING:
		return ward_err_set(e, WARD_E_RESOURCE_EXHAUSTED, "uid %u's "
		    "instances hold %" PRIu64 " bytes of output rings and this "
		    "one needs %" PRIu64 " more; a non-admin may hold %" PRIu64
		    " (--max-user-ring): remove instances or ask for a smaller "
		    "log_ring_bytes", (unsigned)uid, used, n, lim);
	case BUDGET_BUFFER:
	default:
		return ward_err_set(e, WARD_E_RESOURCE_EXHAUSTED, "uid %u's "
		    "connections buffer %" PRIu64 " bytes, the most a non-admin "
		    "may (--max-user-buffer)", (unsigned)uid, used);
	}
}

/*
 * Would n more of k stay within uid's limit? 0 if so, else -1 with e set
 * (busy for conns, too_large for instances, else resource_exhausted).
 * With n 0: is uid within it now.
 */
int
budget_check(uid_t uid, enum budget_kind k, uint64_t n, struct ward_err *e)
{
	uint64_t used = budget_used(uid, k), lim = budget_limit(uid, k);

	if (n <= lim && used <= lim - n)
		return 0;
	return budget_refusal(uid, k, used, n, e);
}

/* budget_check, and count them if they fit. */
int
budget_take(uid_t uid, enum budget_kind k, uint64_t n, struct ward_err *e)
{
	if (budget_check(uid, k, n, e) == -1)
		return -1;
	if (budget_charge(uid, k, n) == -1)
		return ward_err_oom(e);
	return 0;
}

/* Close the reserve: its fds are free for what comes next. */
void
budget_reserve_release(void)
{
	while (budget_nreserve > 0)
		close(budget_reserve[--budget_nreserve]);
}

/* Fill the reserve again as far as free fds allow (cheap when full). */
void
budget_reserve_refill(void)
{
	int fd;

	if (budget_nreserve == BUDGET_FD_RESERVE)
		return;
	if (budget_nreserve == 0) {
		fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd == -1)
			return;
		budget_reserve[budget_nreserve++] = fd;
	}
	while (budget_nreserve < BUDGET_FD_RESERVE) {
		fd = fcntl(budget_reserve[0], F_DUPFD_CLOEXEC, 0);
		if (fd == -1)
			return;
		budget_reserve[budget_nreserve++] = fd;
	}
}

/*
 * About to serve a peer (read and run its requests, or accept it). For an
 * admin the reserve is released, so its fds are there for it; for anyone
 * else it is held (refilled as far as fds allow), so only admins ever eat
 * into it. Serving the same kind of peer again costs nothing; switching
 * costs BUDGET_FD_RESERVE cheap syscalls.
 */
void
budget_reserve_serve(int admin)
{
	if (admin)
		budget_reserve_release();
	else
		budget_reserve_refill();
}

/* One {uid, conns, buffer_bytes, fds, ring_bytes, instances} map. */
static void
budget_pack_one(msgpack_packer *pk, const struct budget *b)
{
	int k;

	msgpack_pack_map(pk, 1 + BUDGET_NKINDS);
	codec_pack_kv_uint(pk, "uid", b->uid);
	for (k = 0; k < BUDGET_NKINDS; k++)
		codec_pack_kv_uint(pk, budget_names[k], b->used[k]);
}

/*
 * ward.stats' "budgets": what each uid holds; an admin sees every uid that
 * holds anything, anyone else only itself.
 */
void
budget_pack(msgpack_packer *pk, const struct peer *peer)
{
	struct table_node *n;
	struct budget *b;
	size_t k;

	if (!peer->admin) {
		b = budget_find(peer->uid);
		msgpack_pack_array(pk, b != NULL);
		if (b != NULL)
			budget_pack_one(pk, b);
		return;
	}
	msgpack_pack_array(pk, budgets.count);
	for (k = 0; k < budgets.nbuckets; k++) {
		for (n = budgets.buckets[k]; n != NULL; n = n->next)
			budget_pack_one(pk, container_of(n, struct budget, node));
	}
}

/* ward.stats' "limits": the non-admin budgets and the fd reserve. */
void
budget_pack_limits(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 6);
	codec_pack_kv_uint(pk, "max_user_conns", opts.max_user_conns);
	codec_pack_kv_uint(pk, "max_user_buffer", opts.max_user_buffer);
	codec_pack_kv_uint(pk, "max_user_fds", opts.max_user_fds);
	codec_pack_kv_uint(pk, "max_user_ring", opts.max_user_ring);
	codec_pack_kv_uint(pk, "max_user_instances", INSTANCE_MAX_PER_USER);
	codec_pack_kv_uint(pk, "fd_reserve", budget_nreserve);
}

/* The fd reserve's /dev/null fds, while it is held. */
void
budget_fds(fd_visit_fn fn, void *arg)
{
	int k;

	for (k = 0; k < budget_nreserve; k++)
		fn(budget_reserve[k], "budget: fd reserve", arg);
}
