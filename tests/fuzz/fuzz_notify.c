/*
 * fuzz_notify.c: what a payload says about itself, through the notify
 * stream (fd 4, lines), through NOTIFY_SOCKET (notify = systemd,
 * datagrams) and through fd 3 (failure text, datagrams), all read by
 * wardd's real code: instance.c's drain of fd 4 (through the instance's
 * own watcher) and channel.c's reads of the two shared sockets it binds
 * in STATE_DIR (channel_drain), which place each datagram with its
 * instance.
 *
 * Input: one flags byte, then fd 4's bytes, then (after a 0x1f byte, if
 * any) the datagrams, separated by 0x1e bytes. Flags: bit 0 gives the
 * instance a watchdog while fd 4 is read, bit 1 passes an fd with the
 * first datagram (it must be closed at once), bit 2 makes the datagrams
 * come from a stranger (they must all be dropped), bit 3 sends them to
 * fd 3 instead of NOTIFY_SOCKET.
 *
 * The instance is a real one (instance_new), never spawned. While fd 4 is
 * read it is not_started, so WATCHDOG=trigger finds nothing to kill;
 * while datagrams are read it is marked running, with no watchdog, and
 * channel.c indexes it (channel_adopt): nothing can send it a signal
 * (harness.c's spawn_pidfd_signal aborts if anything tries).
 * NOTIFY_SOCKET: its pid is this process, so channel.c believes what
 * this process sends (with bit 2, a pid that is not this process nor its
 * session's leader: nothing is believed). fd 3: channel_spawn makes its
 * sockets as for a child, and the datagrams are written to the child's
 * fd 3 (with bit 2, by another socket connected there, of another
 * address). Invariants: the payload state only moves forward; the status
 * text and the failure note are valid UTF-8 within their bounds; drops
 * are counted, where they belong (the instance's for a believed sender,
 * ward.stats' channel for a stranger), never more than what was sent; a
 * stranger changes nothing of the instance; fd 3 keeps the first
 * FAILURE_MAX bytes written, in order, and counts every other byte as
 * discarded; every fd sent is closed; no fd is left.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static int fuzz_notify_fds0;

/* A payload's instance, as instance_new makes it for an admin. */
static struct instance *
fuzz_notify_instance(int watchdog)
{
	struct instance_spec cfg;
	struct peer c;
	struct instance *i;
	struct ward_err err = WARD_ERR_INIT;

	memset(&c, 0, sizeof c);
	c.admin = 1;
	c.pid = getpid();
	memset(&cfg, 0, sizeof cfg);
	if ((cfg.argv = calloc(2, sizeof *cfg.argv)) == NULL ||
	    (cfg.argv[0] = strdup("payload")) == NULL) {
		spec_free(&cfg);
		return NULL;
	}
	cfg.watchdog_ms = watchdog ? 1000 : 0;
	cfg.notify_systemd = 1;
	if ((i = instance_new(&cfg, &c, &err)) == NULL)
		spec_free(&cfg);
	return i;
}

static void
fuzz_notify_check(const struct instance *i, enum payload_state before)
{
	size_t n = strlen(INSTANCE_STATUS_TEXT(i));

	harness_assert(i->payload >= before, "payload state went back from %s "
	    "to %s", payload_state_name(before), payload_state_name(i->payload));
	harness_assert(n <= STATUS_MAX && utf8_valid(INSTANCE_STATUS_TEXT(i), n),
	    "status text of %zu bytes, or not UTF-8", n);
	harness_assert(i->failure_note == NULL ||
	    utf8_valid(i->failure_note, strlen(i->failure_note)),
	    "failure note is not UTF-8");
}

/* fd 4: the bytes through a pipe, read by the instance's own watcher. */
static void
fuzz_notify_pipe(struct instance *i, const uint8_t *p, size_t n)
{
	enum payload_state before = i->payload;
	size_t lines = 1, k, off = 0;
	ssize_t w;
	int fds[2], rounds;

	for (k = 0; k < n; k++)
		lines += p[k] == '\n';
	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) == -1)
		return;
	i->notify_fd = fds[0];
	ev_io_set(&i->notify_w, fds[0], EV_READ);
	ev_io_start(ward_loop, &i->notify_w);
	/* As much as the pipe holds at a time; wardd reads it in between. */
	for (rounds = 0; i->notify_fd != -1 && rounds < 1000; rounds++) {
		if (off < n && (w = write(fds[1], p + off, n - off)) > 0)
			off += w;
		if (off == n && fds[1] != -1) {
			close(fds[1]);
			fds[1] = -1;
		}
		ev_run(ward_loop, EVRUN_NOWAIT);
	}
	if (fds[1] != -1)
		close(fds[1]);
	harness_assert(i->notify_fd == -1, "fd 4 still open at its EOF");
	harness_assert(i->notify_dropped <= lines, "%ju drops in %zu lines",
	    (uintmax_t)i->notify_dropped, lines);
	fuzz_notify_check(i, before);
}

/* A pid that is neither this process nor its session's leader. */
#define FUZZ_NOTIFY_STRANGER	((pid_t)0x7ffffffe)

static void
fuzz_notify_fd_cb(int fd, const char *what, void *arg)
{
	int *want = arg;

	if (strstr(what, want[0] ? "STATE_DIR/failure" : "STATE_DIR/notify"))
		want[1] = fd;
}

/* The shared socket channel.c reads, for fd 3 or for NOTIFY_SOCKET. */
static int
fuzz_notify_channel_fd(int failure)
{
	int want[2] = { failure, -1 };

	channel_fds(fuzz_notify_fd_cb, want);
	harness_assert(want[1] != -1, "no STATE_DIR/%s socket",
	    failure ? "failure" : "notify");
	return want[1];
}

/* What channel.c holds is read, as its watcher would, until it is empty. */
static void
fuzz_notify_drain(struct instance *i, int failure)
{
	int fd = fuzz_notify_channel_fd(failure);
	char c;

	do
		channel_drain(i);	/* 64 datagrams a call at most */
	while (recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) != -1);
}

/* A socket of an address of its own (autobound), connected to fd 3's. */
static int
fuzz_notify_stranger(void)
{
	struct sockaddr_un sun;
	sa_family_t af = AF_UNIX;
	int s;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s/failure",
	    harness_sandbox());
	if ((s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (bind(s, (struct sockaddr *)&af, sizeof af) == -1 ||
	    connect(s, (struct sockaddr *)&sun, sizeof sun) == -1) {
		close(s);
		return -1;
	}
	return s;
}

/*
 * The datagrams, each as a payload's sd_notify() or a write to fd 3
 * sends it. fd 3: channel_spawn makes the sockets as for a child; the
 * child's end of fd 4 is closed here, its fd 3 goes to *fd3_r (-1: none).
 */
static void
fuzz_notify_datagrams(struct instance *i, const uint8_t *p, size_t n,
    int pass_fd, int foreign, int failure, int *fd3_r)
{
	static char kept[FAILURE_MAX];	/* the first bytes written to fd 3 */
	enum payload_state before = i->payload;
	struct ward_err err = WARD_ERR_INIT;
	struct channel_stats stats0 = channel_stats;
	char status[STATUS_MAX + 1];
	struct sockaddr_un sun, *to = NULL;
	const uint8_t *end, *sep;
	uint64_t sent = 0, bytes = 0, dropped;
	size_t take;
	int s = -1, fd3 = -1, fd4 = -1, devnull = -1;

	strcpy(status, INSTANCE_STATUS_TEXT(i));	/* at most STATUS_MAX */
	i->spec.watchdog_ms = 0;
	i->state = INSTANCE_RUNNING;	/* by hand: not on the running list */
	/* Believed: sent by its pid. Foreign: by no one in its session. */
	i->pid = foreign && !failure ? FUZZ_NOTIFY_STRANGER : getpid();
	if (failure) {
		harness_assert(channel_spawn(i, &fd3, &fd4, &err) == 0, "%s",
		    err.msg);
		harness_assert(i->chan_indexed && i->notify_fd != -1,
		    "fd 3 is not placed");
		s = foreign ? fuzz_notify_stranger() : fd3;
	} else {
		channel_adopt(i);	/* as instance_start, once it has a pid */
		harness_assert(i->pid_indexed, "NOTIFY_SOCKET does not know it");
		memset(&sun, 0, sizeof sun);
		sun.sun_family = AF_UNIX;
		harness_assert(channel_notify_path() != NULL, "no NOTIFY_SOCKET");
		snprintf(sun.sun_path, sizeof sun.sun_path, "%s",
		    channel_notify_path());
		to = &sun;
		s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	}
	if (s == -1)
		goto out;
	if (pass_fd)
		devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	while (n > 0) {
		sep = memchr(p, 0x1e, n);
		end = sep != NULL ? sep : p + n;
		if (harness_send(s, to, p, end - p, devnull) == -1)
			break;	/* over the socket's size, or its queue is full */
		sent++;
		if (bytes < FAILURE_MAX) {
			take = FAILURE_MAX - bytes;
			take = (size_t)(end - p) < take ? (size_t)(end - p) : take;
			memcpy(kept + bytes, p, take);
		}
		bytes += end - p;
		if (devnull != -1) {
			close(devnull);
			devnull = -1;
		}
		if (sep == NULL)
			break;
		n -= sep + 1 - p;
		p = sep + 1;
		/* Never more than the queue holds: wardd reads in between. */
		if (sent % 8 == 0)
			fuzz_notify_drain(i, failure);
	}
	fuzz_notify_drain(i, failure);
	if (failure && foreign) {
		dropped = channel_stats.failure_dropped - stats0.failure_dropped;
		harness_assert(dropped == sent && i->failure_len == 0 &&
		    i->failure_discarded == 0, "a stranger wrote to fd 3 (%ju "
		    "of %ju dropped)", (uintmax_t)dropped, (uintmax_t)sent);
	} else if (failure) {
		harness_assert(channel_stats.failure_dropped ==
		    stats0.failure_dropped, "fd 3's own datagrams dropped");
		harness_assert(i->failure_len <= FAILURE_MAX &&
		    i->failure_len == (bytes < FAILURE_MAX ? bytes : FAILURE_MAX) &&
		    i->failure_len + i->failure_discarded == bytes,
		    "fd 3: %zu bytes kept and %zu discarded of %ju written",
		    i->failure_len, i->failure_discarded, (uintmax_t)bytes);
		harness_assert(i->failure_len == 0 ||
		    memcmp(i->failure, kept, i->failure_len) == 0,
		    "fd 3 keeps other bytes than were written");
	} else if (foreign) {
		dropped = channel_stats.notify_dropped - stats0.notify_dropped;
		harness_assert(dropped == sent && i->sd_dropped == 0 &&
		    i->payload == before && strcmp(status, INSTANCE_STATUS_TEXT(i)) == 0 &&
		    i->failure_note == NULL, "a stranger's datagrams were "
		    "believed (%ju of %ju dropped)", (uintmax_t)dropped,
		    (uintmax_t)sent);
	} else
		harness_assert(i->sd_dropped <= sent &&
		    channel_stats.notify_dropped == stats0.notify_dropped,
		    "%ju datagrams dropped of %ju (%ju as a stranger's)",
		    (uintmax_t)i->sd_dropped, (uintmax_t)sent,
		    (uintmax_t)(channel_stats.notify_dropped -
		    stats0.notify_dropped));
	fuzz_notify_check(i, before);
out:
	if (devnull != -1)
		close(devnull);
	if (s != -1 && s != fd3)
		close(s);
	/* fd 3 stays open, as a grandchild may hold it: fuzz_notify_after. */
	*fd3_r = fd3;
	if (fd4 != -1)
		close(fd4);
	/* Not running, so it may be removed; still indexed until then:
	 * instance_remove's release must take it out of channel.c. */
	i->state = INSTANCE_NOT_STARTED;
}

/*
 * The instance is removed: what its fd 3 (if it has one: closed here) and
 * this process send now is nobody's, dropped and counted by channel.c's
 * own watchers (a removal that left it indexed is a use after free).
 */
static void
fuzz_notify_after(int fd3)
{
	struct channel_stats stats0 = channel_stats;
	struct sockaddr_un sun;
	int s, rounds, want = 0;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s",
	    channel_notify_path());
	if ((s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) != -1) {
		want |= harness_send(s, &sun, "READY=1", 7, -1) == 7;
		close(s);
	}
	if (fd3 != -1) {
		want |= (harness_send(fd3, NULL, "after", 5, -1) == 5) << 1;
		close(fd3);
	}
	for (rounds = 0; rounds < 100; rounds++) {
		if (channel_stats.notify_dropped - stats0.notify_dropped ==
		    (uint64_t)(want & 1) &&
		    channel_stats.failure_dropped - stats0.failure_dropped ==
		    (uint64_t)(want >> 1))
			return;
		ev_run(ward_loop, EVRUN_NOWAIT);
	}
	harness_fail(__FILE__, __LINE__, "a removed instance's datagrams are "
	    "dropped", "%ju of %d to NOTIFY_SOCKET, %ju of %d to fd 3",
	    (uintmax_t)(channel_stats.notify_dropped - stats0.notify_dropped),
	    want & 1, (uintmax_t)(channel_stats.failure_dropped -
	    stats0.failure_dropped), want >> 1);
}

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	harness_init();
	fuzz_notify_fds0 = harness_count_fds();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *sep;
	struct instance *i;
	enum payload_state s;
	const char *text;
	size_t tlen, npipe;
	int fd3 = -1;

	if (size < 1 || size > 65536)
		return 0;
	/* notify_parse alone, over the whole input as one line. */
	text = NULL;
	if (notify_parse((const char *)data + 1, size - 1, &s, &text, &tlen) ==
	    NOTIFY_STATUS || text != NULL)
		harness_assert(text >= (const char *)data + 1 &&
		    text + tlen <= (const char *)data + size,
		    "notify_parse's text is outside its line");
	if ((i = fuzz_notify_instance(data[0] & 1)) == NULL)
		return 0;
	sep = memchr(data + 1, 0x1f, size - 1);
	npipe = (sep != NULL ? sep : data + size) - (data + 1);
	fuzz_notify_pipe(i, data + 1, npipe);
	if (sep != NULL)
		fuzz_notify_datagrams(i, sep + 1, data + size - (sep + 1),
		    data[0] & 2, data[0] & 4, data[0] & 8, &fd3);
	instance_remove(i);
	if (sep != NULL)
		fuzz_notify_after(fd3);
	harness_check_fds(fuzz_notify_fds0);
	return 0;
}
