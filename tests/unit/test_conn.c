/*
 * test_conn.c: conn.c's lifecycle (enum conn_state) driven over a
 * socketpair, with no wardd and no processes: requests reach the dispatch
 * function whole; garbage, a hang-up, a failed write and
 * conn_close_after_flush each end the conn the way ward.h says; a peer that
 * does not read its answers is not read until it drains half, nor is one
 * whose uid's buffers are full until they have room; attachments are
 * detached exactly once. The loop runs non-blocking, a bounded number
 * of turns, never sleeping: each step waits on a condition, not on time.
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"
#include "unit.h"

struct wardd_opts opts;

#define USER		65534	/* the peer: not an admin, so budgets count */
#define TURNS		2000	/* loop turns any one step may take */

/* Run the loop until cond holds; fail if it does not within TURNS. */
#define RUN_UNTIL(cond) do {						\
	int turn_;							\
	for (turn_ = 0; turn_ < TURNS && !(cond); turn_++)		\
		ev_run(ward_loop, EVRUN_NOWAIT);			\
	ck_assert_msg((cond), "never came true: %s", #cond);		\
} while (0)

static int	 dispatched;	/* requests test_dispatch saw */
static int64_t	 last_msgid;	/* the last one's msgid */
static size_t	 reply_size;	/* each answer carries this many bytes */
static int	 nlost;		/* conn_new's lost callback */
static char	 blob[CONN_OUT_CAP];	/* zeros, for big answers */

/* cmd_dispatch's stand-in: count, and answer reply_size bytes. */
static void
test_dispatch(struct conn *c, const msgpack_object *o, int *fds, int nfds)
{
	msgpack_packer pk;

	dispatched++;
	if (o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size > 1)
		last_msgid = o->via.array.ptr[1].via.i64;
	if (reply_size == 0)
		return;
	conn_packer(c, &pk);
	msgpack_pack_array(&pk, 4);
	msgpack_pack_int(&pk, WARD_MSG_RESPONSE);
	msgpack_pack_int64(&pk, last_msgid);
	msgpack_pack_nil(&pk);
	msgpack_pack_bin(&pk, reply_size);
	msgpack_pack_bin_body(&pk, blob, reply_size);
}

static void
test_lost(void)
{
	nlost++;
}

static void
setup(void)
{
	memset(&opts, 0, sizeof opts);
	opts.uid = geteuid() == USER ? USER + 1 : geteuid();
	opts.max_user_conns = BUDGET_USER_CONNS;
	opts.max_user_buffer = BUDGET_USER_BUFFER;
	opts.max_user_fds = BUDGET_USER_FDS;
	opts.max_user_ring = BUDGET_USER_RING;
	log_init(LOG_LVL_ERR);
	ward_loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
	ck_assert_ptr_nonnull(ward_loop);
	budget_init();
	dispatched = nlost = 0;
	last_msgid = -1;
	reply_size = 0;
}

static void
teardown(void)
{
	conn_close_all();
	budget_shutdown();
	ev_loop_destroy(ward_loop);
}

/* A conn for USER, as server.c makes one; *client is the peer's end. */
static struct conn *
open_conn(int *client)
{
	struct peer p;
	struct conn *c;
	struct ward_err e = WARD_ERR_INIT;
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0, sv), 0);
	memset(&p, 0, sizeof p);
	p.fd = sv[0];
	p.uid = p.gid = USER;
	p.pid = getpid();
	ck_assert_msg(budget_take(USER, BUDGET_CONNS, 1, &e) == 0, "%s",
	    e.msg);
	c = conn_new(sv[0], &p, test_dispatch, test_lost);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(c->state, CONN_OPEN);
	*client = sv[1];
	return c;
}

/* Write [0, msgid, "ward.hello", {}] from the client; 0 if it would block. */
static int
send_request(int client, int64_t msgid)
{
	struct unit_msg m;
	ssize_t n;

	unit_msg_pack(&m, "A I I s M", 4, (int64_t)0, msgid, "ward.hello", 0);
	n = write(client, m.sb.data, m.sb.size);
	if (n == -1)
		ck_assert_msg(errno == EAGAIN, "write: %s", strerror(errno));
	else
		ck_assert_int_eq(n, m.sb.size);	/* small: never split */
	unit_msg_free(&m);
	return n > 0;
}

/*
 * Read what the client has been sent, turning the loop in between, until
 * EOF; all of it into sb. The conn must be on its way out.
 */
static void
read_to_eof(int client, msgpack_sbuffer *sb)
{
	char chunk[65536];
	ssize_t n;
	int turn;

	for (turn = 0; turn < TURNS; turn++) {
		n = read(client, chunk, sizeof chunk);
		if (n == 0)
			return;
		if (n > 0)
			msgpack_sbuffer_write(sb, chunk, n);
		else
			ck_assert_msg(errno == EAGAIN, "read: %s", strerror(errno));
		ev_run(ward_loop, EVRUN_NOWAIT);
	}
	ck_abort_msg("the conn never closed");
}

/* The last of the messages in sb, unpacked into up. */
static const msgpack_object *
last_message(msgpack_sbuffer *sb, msgpack_unpacked *up)
{
	size_t off = 0;
	int n = 0;

	while (off < sb->size) {
		ck_assert_int_eq(msgpack_unpack_next(up, sb->data, sb->size, &off),
		    MSGPACK_UNPACK_SUCCESS);
		n++;
	}
	ck_assert_int_gt(n, 0);
	return &up->data;
}

/* Nothing of the conn is left: its budget counts are back to zero. */
static void
assert_all_gone(void)
{
	ck_assert_uint_eq(conn_count, 0);
	ck_assert_uint_eq(budget_used(USER, BUDGET_CONNS), 0);
	ck_assert_uint_eq(budget_used(USER, BUDGET_BUFFER), 0);
	ck_assert_int_eq(nlost, 1);
}

START_TEST(whole_requests_reach_dispatch)
{
	struct unit_msg m;
	struct conn *c;
	int client;

	c = open_conn(&client);
	unit_msg_pack(&m, "A i i s M", 4, 0, 7, "ward.hello", 0);
	/* Half a request is held, not dispatched. */
	ck_assert_int_eq(write(client, m.sb.data, 5), 5);
	ev_run(ward_loop, EVRUN_NOWAIT);
	ev_run(ward_loop, EVRUN_NOWAIT);
	ck_assert_int_eq(dispatched, 0);
	ck_assert_int_eq(write(client, m.sb.data + 5, m.sb.size - 5),
	    m.sb.size - 5);
	RUN_UNTIL(dispatched == 1);
	ck_assert_int_eq(last_msgid, 7);
	/* Two in one write: both. */
	send_request(client, 8);
	send_request(client, 9);
	RUN_UNTIL(dispatched == 3);
	ck_assert_int_eq(last_msgid, 9);
	ck_assert_int_eq(c->state, CONN_OPEN);
	ck_assert(conn_is_open(c));
	ck_assert_uint_eq(conn_count, 1);
	unit_msg_free(&m);

	/* The peer goes: so does the conn. */
	close(client);
	RUN_UNTIL(conn_count == 0);
	assert_all_gone();
}
END_TEST

/* A half-closed peer gets the answers to what it sent, then EOF. */
START_TEST(hangup_answers_then_closes)
{
	msgpack_sbuffer sb;
	msgpack_unpacked up;
	const msgpack_object *o;
	int client;

	open_conn(&client);
	reply_size = 10;
	send_request(client, 1);
	send_request(client, 2);
	ck_assert_int_eq(shutdown(client, SHUT_WR), 0);
	msgpack_sbuffer_init(&sb);
	msgpack_unpacked_init(&up);
	read_to_eof(client, &sb);
	ck_assert_int_eq(dispatched, 2);
	o = last_message(&sb, &up);
	ck_assert_int_eq(o->via.array.ptr[0].via.i64, WARD_MSG_RESPONSE);
	ck_assert_int_eq(o->via.array.ptr[1].via.i64, 2);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
	close(client);
	assert_all_gone();
}
END_TEST

/*
 * Queue answers until the client's socket is full and some are left in
 * c->out (under CONN_OUT_CAP, so c is still read).
 */
static void
fill_socket(struct conn *c, int client)
{
	int64_t id = 100;

	reply_size = 64 * 1024;
	while (buf_used(&c->out) == 0) {
		ck_assert_int_lt(id, 150);
		ck_assert(send_request(client, id));
		RUN_UNTIL(last_msgid == id);
		id++;
	}
	ck_assert_uint_lt(buf_used(&c->out), CONN_OUT_CAP);
}

START_TEST(garbage_closes_after_the_error)
{
	static const char garbage[] = "\xc1\x94\x00\x01\xaaward.hello\x80";
	msgpack_sbuffer sb;
	msgpack_unpacked up;
	const msgpack_object *o, *err;
	struct conn *c;
	int client, before;

	c = open_conn(&client);
	fill_socket(c, client);
	ck_assert(ev_is_active(&c->rw));	/* still read */
	before = dispatched;
	/* Garbage, then a valid request: that one is never dispatched. */
	ck_assert_int_eq(write(client, garbage, sizeof garbage - 1),
	    sizeof garbage - 1);
	RUN_UNTIL(c->state != CONN_OPEN);
	ck_assert_int_eq(c->state, CONN_CLOSING);
	ck_assert(!conn_is_open(c));
	ck_assert(!ev_is_active(&c->rw));
	ck_assert(ev_is_active(&c->ww));
	ck_assert(ev_is_active(&c->linger));
	ck_assert(!ev_is_active(&c->stall));
	/* Nothing more is queued on a closing conn. */
	conn_queue(c, "x", 1);
	ck_assert_int_eq(dispatched, before);
	ck_assert_uint_eq(conn_count, 1);

	msgpack_sbuffer_init(&sb);
	msgpack_unpacked_init(&up);
	read_to_eof(client, &sb);
	ck_assert_int_eq(dispatched, before);
	/* [2, "ward.error", [{code, message}]] is the last thing sent. */
	o = last_message(&sb, &up);
	ck_assert_int_eq(o->type, MSGPACK_OBJECT_ARRAY);
	ck_assert_int_eq(o->via.array.size, 3);
	ck_assert_int_eq(o->via.array.ptr[0].via.i64, WARD_MSG_NOTIFY);
	ck_assert_int_eq(o->via.array.ptr[1].via.str.size, strlen(WARD_N_ERROR));
	ck_assert(memcmp(o->via.array.ptr[1].via.str.ptr, WARD_N_ERROR,
	    strlen(WARD_N_ERROR)) == 0);
	err = &o->via.array.ptr[2].via.array.ptr[0];
	ck_assert_int_eq(err->type, MSGPACK_OBJECT_MAP);
	ck_assert_int_eq(err->via.map.ptr[0].val.via.str.size,
	    strlen(WARD_E_PROTOCOL));
	ck_assert(memcmp(err->via.map.ptr[0].val.via.str.ptr, WARD_E_PROTOCOL,
	    strlen(WARD_E_PROTOCOL)) == 0);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sb);
	close(client);
	assert_all_gone();
}
END_TEST

START_TEST(backed_up_until_half_drained)
{
	char chunk[16384];
	struct conn *c;
	int client, before, turn;
	int64_t id = 1;

	c = open_conn(&client);
	reply_size = 64 * 1024;
	/* Ask and never read: the answers pile up past CONN_OUT_CAP. */
	for (turn = 0; turn < TURNS && !c->backed_up; turn++) {
		if (send_request(client, id))
			id++;
		ev_run(ward_loop, EVRUN_NOWAIT);
	}
	ck_assert(c->backed_up);
	ck_assert_uint_ge(buf_used(&c->out), CONN_OUT_CAP);
	ck_assert_int_eq(c->state, CONN_OPEN);
	ck_assert(!ev_is_active(&c->rw));
	ck_assert(ev_is_active(&c->stall));
	ck_assert(!c->starved);	/* held back by its own answers */

	/* More requests are not read, however long the loop runs. */
	before = dispatched;
	for (turn = 0; turn < 3; turn++)
		if (send_request(client, id))
			id++;
	for (turn = 0; turn < 50; turn++)
		ev_run(ward_loop, EVRUN_NOWAIT);
	ck_assert_int_eq(dispatched, before);

	/* Drain: still not read while over half, read again under it. */
	for (turn = 0; turn < TURNS && !ev_is_active(&c->rw); turn++) {
		ck_assert_uint_ge(buf_used(&c->out), CONN_OUT_CAP / 2);
		ck_assert_int_eq(dispatched, before);
		if (read(client, chunk, sizeof chunk) == -1)
			ck_assert_int_eq(errno, EAGAIN);
		ev_run(ward_loop, EVRUN_NOWAIT);
	}
	ck_assert(ev_is_active(&c->rw) || dispatched > before);
	RUN_UNTIL(dispatched > before);
	ck_assert_int_eq(c->state, CONN_OPEN);

	close(client);
	RUN_UNTIL(conn_count == 0);
	assert_all_gone();
}
END_TEST

/*
 * One conn's answers fill its uid's buffer budget: another conn of the uid
 * is not read (starved) until the first one's buffers are given back.
 */
START_TEST(starved_until_the_uid_has_room)
{
	char chunk[65536];
	struct conn *a, *b;
	int ca, cb, before, turn;

	opts.max_user_buffer = 128 * 1024;
	a = open_conn(&ca);
	b = open_conn(&cb);
	fill_socket(a, ca);
	ck_assert_uint_ge(budget_used(USER, BUDGET_BUFFER),
	    budget_limit(USER, BUDGET_BUFFER));
	before = dispatched;
	send_request(cb, 1);
	for (turn = 0; turn < 50; turn++)
		ev_run(ward_loop, EVRUN_NOWAIT);
	ck_assert_int_eq(dispatched, before);
	ck_assert(b->starved);
	ck_assert(!b->backed_up);
	ck_assert(!ev_is_active(&b->rw));
	ck_assert(ev_is_active(&b->stall));
	ck_assert_int_eq(b->state, CONN_OPEN);

	/* a's peer reads it all: a's buffers go, and b is read again. */
	reply_size = 0;
	for (turn = 0; turn < TURNS && buf_used(&a->out) > 0; turn++) {
		if (read(ca, chunk, sizeof chunk) == -1)
			ck_assert_int_eq(errno, EAGAIN);
		ev_run(ward_loop, EVRUN_NOWAIT);
	}
	RUN_UNTIL(dispatched == before + 1);
	ck_assert_int_eq(last_msgid, 1);
	ck_assert(!b->starved);
	ck_assert(!ev_is_active(&b->stall));

	close(ca);
	close(cb);
	RUN_UNTIL(conn_count == 0);
	ck_assert_int_eq(nlost, 2);
	ck_assert_uint_eq(budget_used(USER, BUDGET_BUFFER), 0);
	ck_assert_uint_eq(budget_used(USER, BUDGET_CONNS), 0);
}
END_TEST

START_TEST(close_after_flush_closes_once_flushed)
{
	static const char last[] = "\x93\x02\xa1x\x90";	/* [2, "x", []] */
	char got[64];
	struct conn *c;
	ssize_t n;
	int client;

	c = open_conn(&client);
	conn_queue(c, last, sizeof last - 1);
	conn_close_after_flush(c);
	ck_assert_int_eq(c->state, CONN_CLOSING);
	conn_close_after_flush(c);		/* again: nothing changes */
	ck_assert_int_eq(c->state, CONN_CLOSING);
	ck_assert(!ev_is_active(&c->rw));
	ck_assert(ev_is_active(&c->linger));
	send_request(client, 1);		/* too late: not read */
	RUN_UNTIL(conn_count == 0);
	ck_assert_int_eq(dispatched, 0);
	ck_assert_int_eq(read(client, got, sizeof got), sizeof last - 1);
	ck_assert(memcmp(got, last, sizeof last - 1) == 0);
	/* Then the end; reset, as the request it sent was never read. */
	n = read(client, got, sizeof got);
	ck_assert(n == 0 || (n == -1 && errno == ECONNRESET));
	close(client);
	assert_all_gone();
}
END_TEST

/* A peer that never reads what is left: the linger timer gives up on it. */
START_TEST(linger_bounds_closing)
{
	struct conn *c;
	int client, turn;

	c = open_conn(&client);
	conn_queue(c, blob, sizeof blob);
	conn_flush(c);
	conn_close_after_flush(c);
	for (turn = 0; turn < 50; turn++)
		ev_run(ward_loop, EVRUN_NOWAIT);
	ck_assert_int_eq(c->state, CONN_CLOSING);
	ck_assert_uint_gt(buf_used(&c->out), 0);
	/* Its time has come: the callback runs now, as the loop would. */
	ck_assert(ev_is_active(&c->linger));
	ev_timer_stop(ward_loop, &c->linger);
	ev_invoke(ward_loop, &c->linger, EV_TIMER);
	close(client);
	assert_all_gone();
}
END_TEST

/* A write that fails (the peer shut its reading side): BROKEN, then lost. */
START_TEST(failed_write_breaks)
{
	struct conn *c;
	int client;

	c = open_conn(&client);
	ck_assert_int_eq(shutdown(client, SHUT_RD), 0);
	conn_queue(c, "x", 1);
	conn_flush(c);
	ck_assert_int_eq(c->state, CONN_BROKEN);
	ck_assert(!conn_is_open(c));
	ck_assert(!ev_is_active(&c->rw));
	ck_assert(ev_is_active(&c->ww));	/* its own callback ends it */
	conn_close_after_flush(c);		/* broken stays broken */
	ck_assert_int_eq(c->state, CONN_BROKEN);
	RUN_UNTIL(conn_count == 0);
	close(client);
	assert_all_gone();
}
END_TEST

struct test_att {
	struct conn_attachment	 att;
	int			 detached;
	enum conn_state		 state_seen;
};

static void
test_att_detach_cb(struct conn *c, struct conn_attachment *a)
{
	struct test_att *t = (struct test_att *)a;

	t->detached++;
	t->state_seen = c->state;
}

START_TEST(attachments_detached_once)
{
	struct test_att t[3];
	struct conn *c;
	int client, k;

	memset(t, 0, sizeof t);
	c = open_conn(&client);
	for (k = 0; k < 3; k++)
		conn_attach(c, &t[k].att, test_att_detach_cb);
	ck_assert_ptr_eq(conn_attachment_next(c, NULL, test_att_detach_cb),
	    &t[2].att);
	conn_detach(c, &t[1].att);	/* let go of by its feature: no call */
	close(client);
	RUN_UNTIL(conn_count == 0);
	ck_assert_int_eq(t[0].detached, 1);
	ck_assert_int_eq(t[1].detached, 0);
	ck_assert_int_eq(t[2].detached, 1);
	ck_assert_int_eq(t[0].state_seen, CONN_LOST);
	ck_assert_int_eq(t[2].state_seen, CONN_LOST);
	assert_all_gone();
}
END_TEST

int
main(void)
{
	TCase *tc;
	Suite *s = unit_suite("conn", &tc);

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, whole_requests_reach_dispatch);
	tcase_add_test(tc, hangup_answers_then_closes);
	tcase_add_test(tc, garbage_closes_after_the_error);
	tcase_add_test(tc, backed_up_until_half_drained);
	tcase_add_test(tc, starved_until_the_uid_has_room);
	tcase_add_test(tc, close_after_flush_closes_once_flushed);
	tcase_add_test(tc, linger_bounds_closing);
	tcase_add_test(tc, failed_write_breaks);
	tcase_add_test(tc, attachments_detached_once);
	return UNIT_RUN(s);
}
