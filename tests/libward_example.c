/*
 * libward_example.c: a client of wardd that uses only libward's public API
 * (<ward.h>), built by tests/integration/test_libward.py against the
 * installed library and header (pkg-config ward).
 *
 * usage: libward_example PAYLOAD [REPORT]
 *
 * Connects where $WARD_SOCKET says, runs PAYLOAD with its stdout on a pipe
 * of ours and prints what came through the pipe and how it died; then says
 * hello on a second connection in non-blocking mode, driven by poll. With
 * REPORT, it also passes a pipe as fd 7 to `PAYLOAD report REPORT`.
 * Each result is one line "key: value" on stdout; any failure is a line on
 * stderr and exit status 1.
 */
#include <ward.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void __attribute__((noreturn))
fail(const char *what, const struct ward_error *e)
{
	fprintf(stderr, "libward_example: %s: %s: %s\n", what,
	    e != NULL ? e->code : "-", e != NULL ? e->message : strerror(errno));
	exit(1);
}

/* Wait for the died event of instance id; print its death reason. */
static void
wait_died(struct ward *w, uint64_t id, const char *label)
{
	struct ward_event ev;
	int rc;

	for (;;) {
		if ((rc = ward_event_next(w, &ev, 15000)) == -1)
			fail("ward_event_next", ward_error(w));
		if (rc == 0) {
			fprintf(stderr, "libward_example: no died event for %llu\n",
			    (unsigned long long)id);
			exit(1);
		}
		if (strcmp(ev.type, "died") == 0 && ev.id == id) {
			printf("%s: %s", label, ev.has_exit && ev.exit.death_reason ?
			    ev.exit.death_reason : "(none)");
			if (ev.has_exit && ev.exit.has_exit_code)
				printf(" exit %d", ev.exit.exit_code);
			putchar('\n');
			ward_event_free(&ev);
			return;
		}
		ward_event_free(&ev);
	}
}

/* The non-blocking hello: what the reply callback saw. */
struct hello_wait {
	uint32_t	 msgid;
	int		 done;
	long long	 pid;
	char		 error[32];
};

static void
on_reply(struct ward *w, uint32_t msgid, const struct ward_error *err,
    const msgpack_object *result, void *arg)
{
	struct hello_wait *hw = arg;
	uint32_t i;

	(void)w;

	if (msgid != hw->msgid)
		return;
	hw->done = 1;
	if (err != NULL) {
		snprintf(hw->error, sizeof hw->error, "%s", err->code);
		return;
	}
	if (result == NULL || result->type != MSGPACK_OBJECT_MAP)
		return;
	for (i = 0; i < result->via.map.size; i++) {
		const msgpack_object *k = &result->via.map.ptr[i].key;
		const msgpack_object *v = &result->via.map.ptr[i].val;

		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == 3 &&
		    memcmp(k->via.str.ptr, "pid", 3) == 0 &&
		    v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
			hw->pid = (long long)v->via.u64;
	}
}

static void
on_event(struct ward *w, const struct ward_event *ev, void *arg)
{
	(void)w;
	(void)ev;
	(void)arg;
}

int
main(int argc, char **argv)
{
	struct ward_error err;
	struct ward_hello h;
	struct ward_spec spec;
	struct ward_status st;
	struct hello_wait hw;
	struct ward *w, *w2;
	const char *died_only[] = { "died", NULL };
	char buf[4096], out[4096];
	size_t outlen = 0;
	uint64_t id;
	ssize_t n;
	int p[2];

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: libward_example PAYLOAD [REPORT]\n");
		return 2;
	}

	/* A socket nobody listens on: an error, not a crash. */
	if ((w = ward_connect("/nonexistent/ward.sock", &err)) != NULL) {
		fprintf(stderr, "libward_example: connected to nothing\n");
		return 1;
	}
	printf("badconnect: %s\n", err.code);

	if ((w = ward_connect(NULL, &err)) == NULL)
		fail("ward_connect", &err);
	printf("socket: %s\n", ward_socket_path(w));
	if (ward_hello(w, &h) == -1)
		fail("ward_hello", ward_error(w));
	printf("hello: %s protocol %u pid %lld admin %d\n", h.server, h.protocol,
	    (long long)h.pid, h.admin);

	/* Subscribe first, so the death cannot come before we listen. */
	if (ward_events_subscribe(w, NULL, 0, died_only) == -1)
		fail("ward_events_subscribe", ward_error(w));

	if (pipe(p) == -1)
		fail("pipe", NULL);
	ward_spec_init(&spec);
	spec.name = "example-echo";
	spec.argv = (const char *const[]){ argv[1], "echo", "hello-from-payload",
	    "exit", "0", NULL };
	spec.stdout_fd = p[1];
	if (ward_instance_run(w, &spec, &id) == -1)
		fail("ward_instance_run", ward_error(w));
	close(p[1]);
	printf("run: id %llu\n", (unsigned long long)id);
	while ((n = read(p[0], buf, sizeof buf)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			fail("read", NULL);
		if (outlen + n >= sizeof out)
			n = sizeof out - 1 - outlen;
		memcpy(out + outlen, buf, n);
		outlen += n;
	}
	close(p[0]);
	while (outlen > 0 && out[outlen - 1] == '\n')
		outlen--;
	out[outlen] = '\0';
	printf("stdout: %s\n", out);
	wait_died(w, id, "died");

	/* The error of a missing instance. */
	if (ward_instance_status(w, "no-such-instance", &st) != -1) {
		fprintf(stderr, "libward_example: status of a missing instance "
		    "succeeded\n");
		return 1;
	}
	printf("missing: -1 %s\n", ward_error(w)->code);

	/* Passing an fd: our pipe becomes the payload's fd 7. */
	if (argc == 3) {
		struct ward_fd_map map;

		if (pipe(p) == -1)
			fail("pipe", NULL);
		ward_spec_init(&spec);
		spec.name = "example-fds";
		spec.argv = (const char *const[]){ argv[1], "report", argv[2], NULL };
		map.fd = p[0];
		map.target = 7;
		spec.fds = &map;
		spec.nfds = 1;
		if (ward_instance_run(w, &spec, &id) == -1)
			fail("ward_instance_run (fds)", ward_error(w));
		close(p[0]);
		close(p[1]);
		wait_died(w, id, "fds died");
	}

	/* A second connection, driven without blocking. */
	if ((w2 = ward_connect(NULL, &err)) == NULL)
		fail("ward_connect (2)", &err);
	memset(&hw, 0, sizeof hw);
	hw.pid = -1;
	if (ward_set_nonblocking(w2, on_reply, on_event, &hw) == -1)
		fail("ward_set_nonblocking", ward_error(w2));
	if (ward_send(w2, "ward.hello", NULL, 0, &hw.msgid) == -1)
		fail("ward_send", ward_error(w2));
	if (!ward_want_write(w2)) {
		fprintf(stderr, "libward_example: a queued request but no "
		    "ward_want_write\n");
		return 1;
	}
	while (!hw.done) {
		struct pollfd pfd = { .fd = ward_fd(w2), .events = POLLIN };
		int pr;

		if (ward_want_write(w2))
			pfd.events |= POLLOUT;
		if ((pr = poll(&pfd, 1, 15000)) == -1 && errno != EINTR)
			fail("poll", NULL);
		if (pr == 0) {
			fprintf(stderr, "libward_example: no reply in 15 s\n");
			return 1;
		}
		if (pr > 0 && ward_dispatch(w2) == -1)
			fail("ward_dispatch", ward_error(w2));
	}
	if (hw.error[0] != '\0') {
		fprintf(stderr, "libward_example: ward.hello: %s\n", hw.error);
		return 1;
	}
	printf("nonblocking: pid %lld msgid %u\n", hw.pid, hw.msgid);

	ward_close(w2);
	ward_close(w);
	printf("done\n");
	return 0;
}
