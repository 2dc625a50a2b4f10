/*
 * server.c: the listening socket. Created carefully (connect first: refuse
 * to steal a live wardd's socket, replace a stale one), accepted with peer
 * credentials, and protected by connection caps (CONN_MAX in all, per uid
 * in budget.c) and a spare fd so that accept at EMFILE drops the newcomer
 * instead of spinning; an admin newcomer is kept if budget.c's fd reserve
 * can make room for it.
 *
 * layer: transport (makes conns; what they carry goes to the dispatch
 * function wardd.c gives server_init)
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"

static ev_io server_w;
static ev_timer server_retry_t;		/* paused at EMFILE: try again later */
static int server_fd = -1;
static int server_spare = -1;		/* closed to accept-and-drop at EMFILE */
static char *server_path;
static int server_unlink_at_exit;
static conn_dispatch_fn server_dispatch;
uint64_t server_accepted;	/* conns accepted (openmetrics.c) */

static void	server_accept_cb(struct ev_loop *, ev_io *, int);
static void	server_retry_cb(struct ev_loop *, ev_timer *, int);

static int
server_addr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof *sun);
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun->sun_path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sun->sun_path, path);
	return 0;
}

/* Listen on path; fatal when it cannot (start-up only). */
int
server_open(const char *path)
{
	struct sockaddr_un sun;
	char *dir;
	mode_t old;
	int fd;

	if (server_addr(path, &sun) == -1)
		fatal("socket path %s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		fatal("socket");
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0)
		fatalx("another wardd is already listening on %s; stop it first "
		    "or pass --socket", path);
	close(fd);
	if (unlink(path) == 0)
		log_info("removed stale socket %s", path);
	dir = xstrdup(path);
	if (mkdir_p(dirname(dir), 0755) == -1)
		fatal("cannot create %s", dir);
	free(dir);

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1)
		fatal("socket");
	/*
	 * Anyone may connect; what each peer may do is decided per uid. The
	 * mode comes from the umask at bind (0666 exactly), never from a
	 * change by path afterwards (statedir.c's rule).
	 */
	old = umask(0111);
	if (bind(fd, (struct sockaddr *)&sun, sizeof sun) == -1)
		fatal("bind %s", path);
	umask(old);
	/* Hundreds of clients may connect at once (a boot, a fleet of
	 * wardctls): the kernel's whole backlog, as systemd's sockets have. */
	if (listen(fd, SOMAXCONN) == -1)
		fatal("listen");
	server_path = xstrdup(path);
	server_unlink_at_exit = 1;
	return server_listen_fd(fd);
}

/* Start accepting on an already listening socket (ours, or systemd's). */
int
server_listen_fd(int fd)
{
	if (fd_set_flags(fd, 1, 1) == -1)
		fatal("fcntl");
	server_fd = fd;
	server_spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ev_io_init(&server_w, server_accept_cb, fd, EV_READ);
	ev_timer_init(&server_retry_t, server_retry_cb, 1., 0.);
	ev_io_start(ward_loop, &server_w);
	return 0;
}

void
server_close(void)
{
	if (server_fd == -1)
		return;
	ev_io_stop(ward_loop, &server_w);
	ev_timer_stop(ward_loop, &server_retry_t);
	close(server_fd);
	server_fd = -1;
	if (server_unlink_at_exit && server_path != NULL)
		unlink(server_path);
	if (server_spare != -1)
		close(server_spare);
	server_spare = -1;
	free(server_path);
	server_path = NULL;
}

/* Where every connection's requests go (cmd.c's dispatch, in wardd.c). */
void
server_init(conn_dispatch_fn dispatch)
{
	server_dispatch = dispatch;
}

/* A conn went away: there is room again (and the spare fd can come back). */
static void
server_conn_closed(void)
{
	if (server_fd == -1)
		return;
	if (server_spare == -1)
		server_spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (!ev_is_active(&server_w)) {
		ev_timer_stop(ward_loop, &server_retry_t);
		ev_io_start(ward_loop, &server_w);
	}
}

static void
server_retry_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	server_conn_closed();
}

/* Refuse a peer politely: one ward.error notification, then close. */
static void
server_refuse(int fd, const char *code, const char *message)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 3);
	msgpack_pack_int(&pk, WARD_MSG_NOTIFY);
	codec_pack_str(&pk, WARD_N_ERROR);
	msgpack_pack_array(&pk, 1);
	msgpack_pack_map(&pk, 2);
	codec_pack_kv_str(&pk, "code", code);
	codec_pack_kv_str(&pk, "message", message);
	(void)!send(fd, sb.data, sb.size, MSG_NOSIGNAL | MSG_DONTWAIT);
	msgpack_sbuffer_destroy(&sb);
	close(fd);
}

static gid_t *
server_peer_groups(int fd, int *ngroups)
{
	socklen_t len = 64 * sizeof(gid_t);
	gid_t *g;

	*ngroups = 0;
	for (;;) {
		if ((g = malloc(len)) == NULL)
			return NULL;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) == 0) {
			*ngroups = len / sizeof(gid_t);
			return g;
		}
		free(g);
		if (errno != ERANGE)
			return NULL;
	}
}

/*
 * At EMFILE: take the spare's place to accept the newcomer. An admin is
 * kept if the fd reserve (budget.c) gives the spare room to come back;
 * anyone else, or an admin with no reserve left, is refused. Returns the
 * kept fd (cred filled in) or -1; -1 with errno EMFILE when there is no
 * spare either: the caller pauses.
 */
static int
server_accept_at_emfile(struct ucred *cred)
{
	socklen_t len = sizeof *cred;
	int fd, admin;

	if (server_spare == -1) {
		errno = EMFILE;
		return -1;
	}
	close(server_spare);
	server_spare = -1;
	if ((fd = accept4(server_fd, NULL, NULL, SOCK_NONBLOCK |
	    SOCK_CLOEXEC)) == -1) {
		server_spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
		errno = EAGAIN;
		return -1;
	}
	admin = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) == 0 &&
	    budget_admin(cred->uid);
	if (admin)
		budget_reserve_serve(1);
	if ((server_spare = open("/dev/null", O_RDONLY | O_CLOEXEC)) != -1 &&
	    admin) {
		log_warnx("out of file descriptors: an admin (uid %u) is let in "
		    "on the reserve", (unsigned)cred->uid);
		return fd;
	}
	log_warnx("out of file descriptors: dropping a client");
	server_refuse(fd, WARD_E_BUSY, "wardd is out of file descriptors; try "
	    "again later");
	if (server_spare == -1)
		server_spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
	errno = EAGAIN;		/* go on: the next may be an admin */
	return -1;
}

static void
server_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ucred cred;
	struct peer peer;
	socklen_t len;
	gid_t *groups;
	struct ward_err e = WARD_ERR_INIT;
	int fd, n, ngroups;

	for (n = 0; n < 64; n++) {
		fd = accept4(server_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1 && (errno == EMFILE || errno == ENFILE)) {
			if ((fd = server_accept_at_emfile(&cred)) == -1 &&
			    errno == EAGAIN)
				continue;
		} else if (fd != -1) {
			len = sizeof cred;
			if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred,
			    &len) == -1) {
				log_warn("SO_PEERCRED");
				close(fd);
				continue;
			}
		}
		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE) {
				/* No spare: pause rather than spin on a full table. */
				log_warnx("out of file descriptors: pausing accept");
				ev_io_stop(loop, &server_w);
				/* Set again: a timer that fired keeps no interval. */
				ev_timer_set(&server_retry_t, 1., 0.);
				ev_timer_start(loop, &server_retry_t);
			}
			return;
		}
		if (conn_count >= CONN_MAX) {
			server_refuse(fd, WARD_E_BUSY, "wardd has too many clients; "
			    "try again later");
			continue;
		}
		if (budget_take(cred.uid, BUDGET_CONNS, 1, &e) == -1) {
			server_refuse(fd, e.code, e.msg);
			continue;
		}
		groups = server_peer_groups(fd, &ngroups);
		peer_init(&peer, fd, cred.uid, cred.gid, cred.pid, groups, ngroups);
		conn_new(fd, &peer, server_dispatch, server_conn_closed);
		server_accepted++;
	}
}

/* The listening socket and the spare fd kept for accept at EMFILE. */
void
server_fds(fd_visit_fn fn, void *arg)
{
	if (server_fd != -1)
		fn(server_fd, "server: listener", arg);
	if (server_spare != -1)
		fn(server_spare, "server: spare", arg);
}

int
server_listening(void)
{
	return server_fd != -1;
}

/* ---- across a re-exec (reexec.c): the listener, and every conn with it */

void
server_save(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 4);
	state_pack_kv_fd(pk, "fd", server_fd);
	codec_pack_kv_str(pk, "path", server_path);
	codec_pack_kv_bool(pk, "unlink_at_exit", server_unlink_at_exit);
	codec_pack_key(pk, "conns");
	conn_save_all(pk);
}

/*
 * Listen on the socket handed over, and take its conns back. -1 if there
 * is no listener in the state (the caller opens one).
 */
int
server_restore(const msgpack_object *m)
{
	const msgpack_object *a;
	size_t n, j;
	int fd;

	if ((fd = state_fd(m, "fd")) == -1)
		return -1;
	server_listen_fd(fd);
	server_path = state_str(m, "path");
	server_unlink_at_exit = state_bool(m, "unlink_at_exit");
	a = state_array(m, "conns", &n);
	for (j = 0; j < n; j++) {
		if (conn_restore(&a[j], server_dispatch, server_conn_closed) == NULL)
			log_warnx("state: a connection could not be restored");
	}
	return 0;
}
