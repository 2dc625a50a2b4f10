/*
 * libward_example.c: a client of wardd that uses only libward's public API
 * (<ward.h>), built by tests/integration/test_libward.py against the
 * installed library and header (pkg-config ward).
 *
 * usage: libward_example PAYLOAD [REPORT]
 *        libward_example --typed PAYLOAD DIR
 *
 * Connects where $WARD_SOCKET says, runs PAYLOAD with its stdin, stdout
 * and stderr on pipes of ours and prints what came through them and how it
 * died; then, on a second connection in non-blocking mode driven by poll,
 * says hello, subscribes and sees a died event come to its event callback.
 * With REPORT, it also passes a pipe as fd 7 to `PAYLOAD report REPORT`.
 * With --typed, it makes the typed calls of declared programs (reread,
 * update, reload) and captured output (instance.log, following it, and
 * logrotate); DIR is where the payload waits for a file "go".
 * Each result is one line "key: value" on stdout; any failure is a line on
 * stderr and exit status 1.
 */
#include <ward.h>

#include <errno.h>
#include <fcntl.h>
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

/* Everything from a pipe until EOF, trailing newlines cut, into out. */
static void
read_pipe(int fd, char *out, size_t len)
{
	size_t outlen = 0;
	ssize_t n;

	while ((n = read(fd, out + outlen, len - 1 - outlen)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			fail("read", NULL);
		outlen += n;
		if (outlen == len - 1)
			break;
	}
	close(fd);
	while (outlen > 0 && out[outlen - 1] == '\n')
		outlen--;
	out[outlen] = '\0';
}

/* The non-blocking connection: what its callbacks saw. */
struct nb_state {
	uint32_t	 msgid;		/* the request whose reply we wait for */
	int		 done;
	long long	 pid;
	char		 error[32];
	uint64_t	 died_id;	/* the instance whose death we wait for */
	int		 died_seen;
	char		 died[64];	/* "REASON exit N" */
};

static void
on_reply(struct ward *w, uint32_t msgid, const struct ward_error *err,
    const msgpack_object *result, void *arg)
{
	struct nb_state *nb = arg;
	const msgpack_object *pid;

	(void)w;

	if (msgid != nb->msgid)
		return;
	nb->done = 1;
	if (err != NULL) {
		snprintf(nb->error, sizeof nb->error, "%s", err->code);
		return;
	}
	if ((pid = ward_map_get(result, "pid")) != NULL &&
	    pid->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		nb->pid = (long long)pid->via.u64;
}

static void
on_event(struct ward *w, const struct ward_event *ev, void *arg)
{
	struct nb_state *nb = arg;

	(void)w;

	if (strcmp(ev->type, "died") != 0 || ev->id != nb->died_id ||
	    !ev->has_exit || ev->exit.death_reason == NULL)
		return;
	snprintf(nb->died, sizeof nb->died, "%s exit %d", ev->exit.death_reason,
	    ev->exit.has_exit_code ? ev->exit.exit_code : -1);
	nb->died_seen = 1;
}

/* Drive w with poll and ward_dispatch until *flag is set. */
static void
poll_until(struct ward *w, const int *flag, const char *what)
{
	while (!*flag) {
		struct pollfd pfd = { .fd = ward_fd(w), .events = POLLIN };
		int pr;

		if (ward_want_write(w))
			pfd.events |= POLLOUT;
		if ((pr = poll(&pfd, 1, 15000)) == -1 && errno != EINTR)
			fail("poll", NULL);
		if (pr == 0) {
			fprintf(stderr, "libward_example: no %s in 15 s\n", what);
			exit(1);
		}
		if (pr > 0 && ward_dispatch(w) == -1)
			fail("ward_dispatch", ward_error(w));
	}
}

static void
print_list(const char *label, char **v)
{
	printf(" %s", label);
	if (*v == NULL)
		printf(" -");
	for (; *v != NULL; v++)
		printf(" %s", *v);
	putchar(';');
}

static void
print_changes(const char *label, struct ward_changes *ch)
{
	printf("%s:", label);
	print_list("added", ch->added);
	print_list("changed", ch->changed);
	print_list("removed", ch->removed);
	print_list("errors", ch->errors);
	putchar('\n');
	ward_changes_free(ch);
}

/* Append the data of [2, "ward.log", [{..., data}]] to out. */
static void
append_log_data(const msgpack_object *o, char *out, size_t len)
{
	const msgpack_object *a, *data;
	size_t have = strlen(out), n;

	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 3)
		return;
	a = o->via.array.ptr;
	if (a[1].type != MSGPACK_OBJECT_STR || a[1].via.str.size != 8 ||
	    memcmp(a[1].via.str.ptr, "ward.log", 8) != 0 ||
	    a[2].type != MSGPACK_OBJECT_ARRAY || a[2].via.array.size != 1 ||
	    (data = ward_map_get(&a[2].via.array.ptr[0], "data")) == NULL ||
	    data->type != MSGPACK_OBJECT_STR)
		return;
	n = data->via.str.size < len - 1 - have ? data->via.str.size :
	    len - 1 - have;
	memcpy(out + have, data->via.str.ptr, n);
	out[have + n] = '\0';
}

/* The typed calls beyond instances: programs, captured output. */
static int
typed(const char *payload, const char *dir)
{
	const char *died_only[] = { "died", NULL };
	struct ward_logrotate_result lr;
	struct ward_changes ch;
	struct ward_error err;
	struct ward_spec spec;
	struct ward_log log;
	msgpack_unpacked msg;
	struct ward *w;
	char go[4096], seen[4096];
	uint64_t id;
	int fd;

	if ((w = ward_connect(NULL, &err)) == NULL)
		fail("ward_connect", &err);
	if (ward_reread(w, &ch) == -1)
		fail("ward_reread", ward_error(w));
	print_changes("reread", &ch);
	if (ward_update(w, &ch) == -1)
		fail("ward_update", ward_error(w));
	print_changes("update", &ch);
	if (ward_reload(w, &ch) == -1)
		fail("ward_reload", ward_error(w));
	print_changes("reload", &ch);

	/* Output the payload writes before and after we follow it. */
	snprintf(go, sizeof go, "%s/go", dir);
	ward_spec_init(&spec);
	spec.name = "example-log";
	spec.argv = (const char *const[]){ payload, "echo", "before", "wait-file",
	    go, "echo", "after", "exit", "0", NULL };
	spec.capture_output = 1;
	if (ward_events_subscribe(w, NULL, 0, died_only) == -1)
		fail("ward_events_subscribe", ward_error(w));
	if (ward_instance_run(w, &spec, &id) == -1)
		fail("ward_instance_run", ward_error(w));
	if (ward_instance_log(w, "example-log", NULL, 0, 1, &log) == -1)
		fail("ward_instance_log (follow)", ward_error(w));
	snprintf(seen, sizeof seen, "%s", log.data);
	ward_log_free(&log);
	if ((fd = open(go, O_WRONLY | O_CREAT, 0644)) == -1)
		fail(go, NULL);
	close(fd);
	msgpack_unpacked_init(&msg);
	while (strstr(seen, "after\n") == NULL) {
		int rc = ward_notification_next_raw(w, &msg, 15000);

		if (rc == -1)
			fail("ward_notification_next_raw", ward_error(w));
		if (rc == 0) {
			fprintf(stderr, "libward_example: followed only %s\n", seen);
			exit(1);
		}
		append_log_data(&msg.data, seen, sizeof seen);
	}
	msgpack_unpacked_destroy(&msg);
	printf("followed: %s", seen);
	wait_died(w, id, "log died");
	if (ward_instance_log(w, "example-log", NULL, 0, 0, &log) == -1)
		fail("ward_instance_log", ward_error(w));
	printf("log: %zu bytes, dropped %llu, %s\n", log.len,
	    (unsigned long long)log.dropped, log.stream);
	ward_log_free(&log);
	if (ward_instance_log(w, "example-log", "stdout", 6, -1, &log) == -1)
		fail("ward_instance_log (bytes)", ward_error(w));
	printf("log tail: %s", log.data);
	ward_log_free(&log);
	if (ward_logrotate(w, &lr) == -1)
		fail("ward_logrotate", ward_error(w));
	printf("logrotate: reopened %llu failed %llu\n",
	    (unsigned long long)lr.reopened, (unsigned long long)lr.failed);
	if (ward_instance_log(w, "no-such-instance", NULL, 0, -1, &log) != -1) {
		fprintf(stderr, "libward_example: log of a missing instance\n");
		exit(1);
	}
	printf("log missing: %s\n", ward_error(w)->code);
	ward_close(w);
	return 0;
}

/* Once post_death of ident's last death has ended: how (bounded wait). */
static void
print_post_death(struct ward *w, const char *ident)
{
	struct ward_status st;
	int k;

	for (k = 0; k < 1500; k++) {
		if (ward_instance_status(w, ident, &st) == -1)
			fail("ward_instance_status (hooks)", ward_error(w));
		if (st.has_exit && st.exit.post_death != NULL &&
		    strcmp(st.exit.post_death, "running") != 0) {
			printf("post_death: %s %d\n", st.exit.post_death,
			    st.exit.post_death_code);
			ward_status_free(&st);
			return;
		}
		ward_status_free(&st);
		usleep(10000);
	}
	fprintf(stderr, "libward_example: post_death did not end\n");
	exit(1);
}

int
main(int argc, char **argv)
{
	struct ward_error err;
	struct ward_hello h;
	struct ward_spec spec;
	struct ward_status st;
	struct nb_state nb;
	struct ward_params sub;
	struct ward *w, *w2;
	const char *died_only[] = { "died", NULL };
	char out[4096];
	uint64_t id;
	int p[2], pin[2], perr[2];

	if (argc == 4 && strcmp(argv[1], "--typed") == 0)
		return typed(argv[2], argv[3]);
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: libward_example PAYLOAD [REPORT]\n"
		    "       libward_example --typed PAYLOAD DIR\n");
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

	/* stdin holds a line (and then EOF) that the payload copies to stderr. */
	if (pipe(p) == -1 || pipe(pin) == -1 || pipe(perr) == -1)
		fail("pipe", NULL);
	if (write(pin[1], "hello-from-stdin\n", 17) != 17)
		fail("write", NULL);
	close(pin[1]);
	ward_spec_init(&spec);
	spec.name = "example-echo";
	spec.argv = (const char *const[]){ argv[1], "echo", "hello-from-payload",
	    "cat", "2", "exit", "0", NULL };
	spec.stdin_fd = pin[0];
	spec.stdout_fd = p[1];
	spec.stderr_fd = perr[1];
	spec.limits = (const char *const[]){ "cpus=0", NULL };
	if (ward_instance_run(w, &spec, &id) == -1)
		fail("ward_instance_run", ward_error(w));
	close(pin[0]);
	close(p[1]);
	close(perr[1]);
	printf("run: id %llu\n", (unsigned long long)id);
	/* EOF on both: nobody but the payload held the write ends. */
	read_pipe(p[0], out, sizeof out);
	printf("stdout: %s\n", out);
	read_pipe(perr[0], out, sizeof out);
	printf("stderr: %s\n", out);
	wait_died(w, id, "died");
	/* Its resource limits, as status shows them. */
	if (ward_instance_status(w, "example-echo", &st) == -1)
		fail("ward_instance_status", ward_error(w));
	printf("limits: %s\n", st.limits != NULL && st.limits[0] != NULL ?
	    st.limits[0] : "none");
	ward_status_free(&st);

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
	memset(&nb, 0, sizeof nb);
	nb.pid = -1;
	if (ward_set_nonblocking(w2, on_reply, on_event, &nb) == -1)
		fail("ward_set_nonblocking", ward_error(w2));
	if (ward_send(w2, "ward.hello", NULL, 0, &nb.msgid) == -1)
		fail("ward_send", ward_error(w2));
	if (!ward_want_write(w2)) {
		fprintf(stderr, "libward_example: a queued request but no "
		    "ward_want_write\n");
		return 1;
	}
	poll_until(w2, &nb.done, "reply to ward.hello");
	if (nb.error[0] != '\0') {
		fprintf(stderr, "libward_example: ward.hello: %s\n", nb.error);
		return 1;
	}
	printf("nonblocking: pid %lld msgid %u\n", nb.pid, nb.msgid);

	/* Events on it: subscribe (and wait for the answer), then a death. */
	ward_params_init(&sub);
	msgpack_pack_map(&sub.pk, 1);
	msgpack_pack_str(&sub.pk, 5);
	msgpack_pack_str_body(&sub.pk, "types", 5);
	msgpack_pack_array(&sub.pk, 1);
	msgpack_pack_str(&sub.pk, 4);
	msgpack_pack_str_body(&sub.pk, "died", 4);
	nb.done = 0;
	if (ward_send(w2, "events.subscribe", sub.sbuf.data, sub.sbuf.size,
	    &nb.msgid) == -1)
		fail("ward_send (subscribe)", ward_error(w2));
	ward_params_free(&sub);
	poll_until(w2, &nb.done, "reply to events.subscribe");
	if (nb.error[0] != '\0') {
		fprintf(stderr, "libward_example: events.subscribe: %s\n", nb.error);
		return 1;
	}
	ward_spec_init(&spec);
	spec.name = "example-nb";
	spec.argv = (const char *const[]){ argv[1], "exit", "3", NULL };
	if (ward_instance_run(w, &spec, &nb.died_id) == -1)
		fail("ward_instance_run (nb)", ward_error(w));
	poll_until(w2, &nb.died_seen, "died event");
	printf("nonblocking died: %s\n", nb.died);

	/* Hooks: post_death's result lands in the exit record. */
	ward_spec_init(&spec);
	spec.name = "example-hooks";
	spec.argv = (const char *const[]){ argv[1], "exit", "0", NULL };
	spec.pre_start = (const char *const[]){ argv[1], "exit", "0", NULL };
	spec.post_death = (const char *const[]){ argv[1], "exit", "4", NULL };
	if (ward_instance_run(w, &spec, &id) == -1)
		fail("ward_instance_run (hooks)", ward_error(w));
	wait_died(w, id, "hooks died");
	print_post_death(w, "example-hooks");

	ward_close(w2);
	ward_close(w);
	printf("done\n");
	return 0;
}
