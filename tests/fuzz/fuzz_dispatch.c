/*
 * fuzz_dispatch.c: a hostile client on wardd's socket. The input is a
 * flags byte and then the bytes a client writes; they go through the
 * real read path (conn_new on one end of a socketpair, the harness
 * writing to the other, wardd's loop run without blocking in between),
 * so framing, dispatch, authorization, every command's arguments and the
 * replies are wardd's own code. Flags: bit 0 makes the client an admin
 * (uid 0) instead of nobody (65534); bit 1 passes an fd (/dev/null) with
 * the first write; bits 2-7 cut the bytes into two writes at a point.
 *
 * No real spawns: harness.c's sandbox makes spawn_child fail as a refused
 * exec would (after instance_start's real preparation in a private
 * STATE_DIR), refuses log files, ignores ward.shutdown (wardd keeps
 * serving the next input) and aborts on any signal. The config dir is
 * empty, so ward.update and ward.reread read nothing. Every method is
 * allowed.
 *
 * Invariants: the replies are well-formed msgpack-RPC, at most one
 * response per message; the connection ends when the client closes its
 * side; after the input every instance is removed and then nothing is
 * left: no fd (all passed fds closed), no memory (LeakSanitizer), no
 * runtime dir in STATE_DIR/instances; and every reply string is valid
 * UTF-8, the protocol's promise (WARD_FUZZ_UTF8=0 turns that check off).
 */
#include "config.h"

#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define FUZZ_DISPATCH_ROUNDS	10000	/* loop turns before calling it hung */

static int fuzz_dispatch_fds0;
static int fuzz_dispatch_utf8;
static char *fuzz_dispatch_instances;

/* Take what wardd wrote so far; EOF once it closed its end. */
static int
fuzz_dispatch_read(int fd, struct buf *replies)
{
	char chunk[65536];
	ssize_t n;

	for (;;) {
		n = read(fd, chunk, sizeof chunk);
		if (n > 0) {
			harness_assert(buf_append(replies, chunk, n) == 0,
			    "out of memory");
			continue;
		}
		if (n == 0)
			return 1;
		harness_assert(errno == EAGAIN || errno == EINTR ||
		    errno == ECONNRESET, "read: %s", strerror(errno));
		return errno == ECONNRESET;
	}
}

/* How many whole messages the client's bytes hold: each may have a reply. */
static int
fuzz_dispatch_messages(const uint8_t *p, size_t n)
{
	struct ward_err err = WARD_ERR_INIT;
	size_t off = 0, len;
	int messages = 0;

	while (off < n && codec_scan((const char *)p + off, n - off, &len,
	    &err) == SCAN_COMPLETE) {
		messages++;
		off += len;
	}
	return messages;
}

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *u = getenv("WARD_FUZZ_UTF8");

	harness_init();
	fuzz_dispatch_utf8 = u == NULL || strcmp(u, "0") != 0;
	fuzz_dispatch_instances = str_printf("%s/instances", harness_sandbox());
	fuzz_dispatch_fds0 = harness_count_fds();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf replies = { 0 };
	size_t off = 0, cut;
	struct conn *c;
	struct peer peer;
	gid_t *groups;
	ssize_t n;
	int sv[2], admin, fd = -1, eof = 0, rounds, responses;

	if (size < 1 || size > WARD_MAX_REQUEST)
		return 0;
	admin = data[0] & 1;
	cut = (size - 1) * (data[0] >> 2) / 64;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) == -1)
		return 0;
	if ((groups = calloc(1, sizeof *groups)) == NULL) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	groups[0] = admin ? 0 : 65534;
	peer_init(&peer, sv[0], admin ? 0 : 65534, admin ? 0 : 65534, getpid(),
	    groups, 1);
	c = conn_new(sv[0], &peer, cmd_dispatch, NULL);
	harness_assert(c != NULL, "conn_new failed");
	if (data[0] & 2)
		fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	data++;
	size--;
	/* The client writes (in two parts) while wardd reads and answers. */
	for (rounds = 0; off < size && rounds < FUZZ_DISPATCH_ROUNDS; rounds++) {
		n = harness_send(sv[1], NULL, data + off,
		    (off < cut ? cut : size) - off, fd);
		if (n > 0) {
			off += n;
			if (fd != -1) {
				close(fd);
				fd = -1;
			}
		} else if (n == -1 && errno != EAGAIN && errno != EINTR)
			break;		/* wardd closed: a protocol error */
		ev_run(ward_loop, EVRUN_NOWAIT);
		if (fuzz_dispatch_read(sv[1], &replies))
			break;
	}
	if (fd != -1)
		close(fd);
	/* Then closes its side and reads until wardd closes the connection. */
	shutdown(sv[1], SHUT_WR);
	for (rounds = 0; rounds < FUZZ_DISPATCH_ROUNDS && !eof; rounds++) {
		ev_run(ward_loop, EVRUN_NOWAIT);
		eof = fuzz_dispatch_read(sv[1], &replies);
	}
	harness_assert(eof, "wardd never closed a connection the client closed");
	harness_assert(conn_count == 0, "%u connections left", conn_count);
	close(sv[1]);

	responses = harness_reply_check(replies.data, replies.len,
	    fuzz_dispatch_utf8);
	harness_assert(responses <= fuzz_dispatch_messages(data, size),
	    "%d responses to %d messages", responses,
	    fuzz_dispatch_messages(data, size));
	buf_free(&replies);

	/* Forget everything the input made; nothing may be left over. */
	instance_free_all();
	instance_init();
	history_free();
	harness_check_fds(fuzz_dispatch_fds0);
	harness_assert(harness_dir_empty(fuzz_dispatch_instances),
	    "a runtime dir is left in %s", fuzz_dispatch_instances);
	return 0;
}
