/*
 * fuzz_notify.c: what a payload says about itself, through the notify
 * pipe (fd 4, lines) and through its own NOTIFY_SOCKET (notify = systemd,
 * datagrams), both read by wardd's real code: instance.c's drain of fd 4
 * (through the instance's own watcher) and notify_sd_drain.
 *
 * Input: one flags byte, then the pipe's bytes, then (after a 0x1f byte,
 * if any) the datagrams, separated by 0x1e bytes. Flags: bit 0 gives the
 * instance a watchdog while the pipe is read, bit 1 passes an fd with the
 * first datagram (it must be closed at once), bit 2 makes the datagrams
 * come from no process of the payload's (they must all be dropped).
 *
 * The instance is a real one (instance_new), never spawned. While the
 * pipe is read it is not_started, so WATCHDOG=trigger finds nothing to
 * kill; while datagrams are read it is marked running with this process
 * as its pid (so notify_sd_drain believes them; with bit 2, a pid that
 * is not this process nor its session's leader) and no watchdog: nothing
 * can send it a signal (harness.c's spawn_pidfd_signal aborts if
 * anything tries). Invariants: the payload state only moves forward; the
 * status text and the failure note are valid UTF-8 within their bounds;
 * drops are counted, never more than what was sent; every fd sent is
 * closed; the runtime dir holds nothing but the notify socket.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
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

/* NOTIFY_SOCKET: each datagram as a payload's sd_notify() sends it. */
static void
fuzz_notify_datagrams(struct instance *i, const uint8_t *p, size_t n,
    int pass_fd, int foreign)
{
	enum payload_state before = i->payload;
	struct ward_err err = WARD_ERR_INIT;
	char status[STATUS_MAX + 1], c;
	struct sockaddr_un sun;
	const uint8_t *end, *sep;
	uint64_t sent = 0;
	int s, dirfd, devnull = -1;

	strcpy(status, INSTANCE_STATUS_TEXT(i));	/* at most STATUS_MAX */
	i->spec.watchdog_ms = 0;
	i->state = INSTANCE_RUNNING;	/* by hand: not on the running list */
	/* Believed: sent by its pid. Foreign: by no one in its session. */
	i->pid = foreign ? FUZZ_NOTIFY_STRANGER : getpid();
	dirfd = statedir_runtime_open(i->id);
	harness_assert(dirfd != -1, "runtime dir of %ju", (uintmax_t)i->id);
	harness_assert(notify_sd_open(i, dirfd, &err) == 0, "%s", err.msg);
	close(dirfd);
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s/notify", i->runtime_dir);
	if ((s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		goto out;
	if (pass_fd)
		devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	while (n > 0) {
		sep = memchr(p, 0x1e, n);
		end = sep != NULL ? sep : p + n;
		if (harness_send(s, &sun, p, end - p, devnull) == -1)
			break;	/* over the socket's size, or its queue is full */
		sent++;
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
			notify_sd_drain(i);
	}
	/* Until the socket is empty (64 datagrams a call at most). */
	do
		notify_sd_drain(i);
	while (i->sd_fd != -1 && recv(i->sd_fd, &c, 1, MSG_PEEK |
	    MSG_DONTWAIT) != -1);
	if (foreign) {
		harness_assert(i->sd_dropped == sent && i->payload == before &&
		    strcmp(status, INSTANCE_STATUS_TEXT(i)) == 0 &&
		    i->failure_note == NULL, "a stranger's datagrams were "
		    "believed (%ju of %ju dropped)", (uintmax_t)i->sd_dropped,
		    (uintmax_t)sent);
	} else
		harness_assert(i->sd_dropped <= sent, "%ju datagrams dropped "
		    "of %ju", (uintmax_t)i->sd_dropped, (uintmax_t)sent);
	fuzz_notify_check(i, before);
out:
	if (devnull != -1)
		close(devnull);
	if (s != -1)
		close(s);
	i->state = INSTANCE_NOT_STARTED;
	i->pid = 0;
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
	char *dir, *sock;

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
	if (sep == NULL) {
		instance_remove(i);
		harness_check_fds(fuzz_notify_fds0);
		return 0;
	}
	/* The runtime dir its NOTIFY_SOCKET goes in, as instance_start has it. */
	dir = i->runtime_dir = str_printf("%s/instances/%ju", harness_sandbox(),
	    (uintmax_t)i->id);
	if (dir == NULL || mkdir(dir, 0700) == -1) {
		instance_remove(i);
		return 0;
	}
	fuzz_notify_datagrams(i, sep + 1, data + size - (sep + 1), data[0] & 2,
	    data[0] & 4);
	dir = strdup(dir);
	sock = notify_sd_path(i);
	instance_remove(i);
	if (sock != NULL)
		unlink(sock);
	if (dir != NULL)
		harness_assert(rmdir(dir) == 0, "runtime dir %s: %s", dir,
		    strerror(errno));
	free(sock);
	free(dir);
	harness_check_fds(fuzz_notify_fds0);
	return 0;
}
