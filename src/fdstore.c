/*
 * fdstore.c: wardd's fds and its state kept in systemd's fd store, so that
 * a wardd killed outright (SIGKILL, a crash, the OOM killer) comes back
 * under Restart= with every instance as it was: the same pidfds, the same
 * failure, notify and output pipes (no writer ever sees EPIPE), the same
 * NOTIFY_SOCKETs and log files. Only when NOTIFY_SOCKET is set (wardd runs
 * as a systemd service); the unit's FileDescriptorStoreMax= must be large
 * enough (contrib/ward.service.in says how to size it).
 *
 * Each fd the state names is stored once, under a name of its own,
 * "ward-fd-G" (G counts up, never reused), with FDPOLL=0: systemd must not
 * drop a pipe because its other end closed. The state itself is written,
 * each time the snapshot writer (snapshot.c) has a new one, into one of
 * two memfds ("ward-state-a" and "-b", alternately), after a header that
 * holds a sequence number and the length, written last: a wardd killed in
 * the middle of a write leaves the other one whole. The state carries the
 * table from each stored name to the fd number it had, so the fds systemd
 * hands back (newest first, in no order that matters: only names do) are
 * matched by name to what the state calls them (state.c's
 * state_fd_hand). An fd is stored before a state that names it is
 * written, and removed (FDSTOREREMOVE=1) only after a state that no longer
 * names it is: whichever state is read back, its fds are there.
 *
 * layer: commands (called by snapshot.c, reexec.c and wardd.c, which
 * restores the state it recovers; calls systemd.c and state.c)
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"

#define FDSTORE_STATE_MAX	(1024ULL * 1024 * 1024)	/* read back, at most */
#define FDSTORE_HEADER		16	/* sequence, length: little endian u64 */

/* What is stored for fd number k (fdstore_tab[k]). */
struct fdstore_entry {
	uint64_t	 gen;		/* its name's G; 0: nothing stored */
	uint64_t	 tag;		/* state.c's tag when stored; 0: unknown
					   (recovered): then dev and ino tell */
	dev_t		 dev;
	ino_t		 ino;
	uint64_t	 seen;		/* the last sync that found it named */
};

static int		 fdstore_on;
static int		 fdstore_state[2] = { -1, -1 };	/* "ward-state-a", "-b" */
static uint64_t		 fdstore_seq;		/* states written */
static uint64_t		 fdstore_gen;		/* names given */
static uint64_t		 fdstore_sync_gen;
static struct fdstore_entry *fdstore_tab;	/* by fd number */
static size_t		 fdstore_tab_len;
static uint64_t		*fdstore_doomed;	/* names to remove after the write */
static size_t		 fdstore_ndoomed, fdstore_doomed_cap;
uint64_t		 fdstore_stores, fdstore_removes, fdstore_writes;

static const char *const fdstore_state_names[2] = {
	FDSTORE_PREFIX "state-a", FDSTORE_PREFIX "state-b"
};

int
fdstore_enabled(void)
{
	return fdstore_on;
}

static int	 fdstore_sock = -1;	/* to NOTIFY_SOCKET, non-blocking */
static int	 fdstore_stalled;	/* a send timed out: no more this sync */

#define FDSTORE_SEND_WAIT_MS	100	/* the service manager is that slow */

/* The socket to the service manager, made once (libsystemd makes one per
 * message): connected to $NOTIFY_SOCKET, an abstract name if it starts
 * with '@'. */
static int
fdstore_connect(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	socklen_t len;

	if (fdstore_sock != -1)
		return 0;
	if (path == NULL || (path[0] != '/' && path[0] != '@') ||
	    strlen(path) >= sizeof sun.sun_path)
		return -1;
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	if (path[0] == '@')
		sun.sun_path[0] = '\0';
	len = offsetof(struct sockaddr_un, sun_path) + strlen(path);
	if ((fdstore_sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC |
	    SOCK_NONBLOCK, 0)) == -1)
		return -1;
	if (connect(fdstore_sock, (struct sockaddr *)&sun, len) == -1) {
		close(fdstore_sock);
		fdstore_sock = -1;
		return -1;
	}
	return 0;
}

static int fdstore_send(int, const char *, ...) printflike(2, 3);

/*
 * One message to the service manager, with fd (-1: none). Never blocks
 * for long: a manager that does not read within FDSTORE_SEND_WAIT_MS
 * stalls the sync (what was not sent is sent at the next one).
 */
static int
fdstore_send(int fd, const char *fmt, ...)
{
	char msg[128], cbuf[CMSG_SPACE(sizeof(int))];
	struct pollfd pfd;
	struct msghdr mh;
	struct iovec iov;
	struct cmsghdr *cm;
	va_list ap;
	int tries;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (fdstore_stalled || fdstore_connect() == -1)
		return -1;
	memset(&mh, 0, sizeof mh);
	iov.iov_base = msg;
	iov.iov_len = strlen(msg);
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (fd != -1) {
		memset(cbuf, 0, sizeof cbuf);
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof cbuf;
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	for (tries = 0; tries < 2; tries++) {
		if (sendmsg(fdstore_sock, &mh, MSG_NOSIGNAL) >= 0)
			return 0;
		if (errno != EAGAIN && errno != EINTR)
			break;
		pfd.fd = fdstore_sock;
		pfd.events = POLLOUT;
		(void)poll(&pfd, 1, FDSTORE_SEND_WAIT_MS);
	}
	log_warn("fd store: %s", msg);
	fdstore_stalled = 1;
	return -1;
}

static int
fdstore_store_state_fd(int k)
{
	return fdstore_send(fdstore_state[k], "FDSTORE=1\nFDNAME=%s\nFDPOLL=0",
	    fdstore_state_names[k]);
}

/*
 * Start-up: keep the store when wardd is a systemd service. recovered[k]:
 * the state memfds systemd handed back (-1: make one).
 */
static void
fdstore_open(const int recovered[2])
{
	int k;

	if (getenv("NOTIFY_SOCKET") == NULL)
		return;
	for (k = 0; k < 2; k++) {
		if ((fdstore_state[k] = recovered[k]) != -1)
			continue;
		if ((fdstore_state[k] = memfd_create(fdstore_state_names[k],
		    MFD_CLOEXEC)) == -1 || fdstore_store_state_fd(k) == -1) {
			log_warn("fd store: cannot keep the state there; a "
			    "crash of wardd will lose its instances' pipes");
			return;
		}
	}
	fdstore_on = 1;
	opts.memfd_rings = 1;	/* output-ring.c: rings go to the store too */
	log_info("fd store: wardd's fds and state are kept by the service "
	    "manager");
}

/* The table grows to fd k. */
static struct fdstore_entry *
fdstore_entry(int k)
{
	struct fdstore_entry *t;
	size_t len;

	if ((size_t)k < fdstore_tab_len)
		return &fdstore_tab[k];
	len = fdstore_tab_len ? fdstore_tab_len : 1024;
	while (len <= (size_t)k)
		len *= 2;
	if ((t = reallocarray(fdstore_tab, len, sizeof *t)) == NULL)
		return NULL;
	memset(t + fdstore_tab_len, 0, (len - fdstore_tab_len) * sizeof *t);
	fdstore_tab = t;
	fdstore_tab_len = len;
	return &fdstore_tab[k];
}

static void
fdstore_doom(uint64_t gen)
{
	uint64_t *d;
	size_t cap;

	if (fdstore_ndoomed == fdstore_doomed_cap) {
		cap = fdstore_doomed_cap ? fdstore_doomed_cap * 2 : 64;
		if ((d = reallocarray(fdstore_doomed, cap, sizeof *d)) == NULL)
			return;		/* stays stored: a leak in the store only */
		fdstore_doomed = d;
		fdstore_doomed_cap = cap;
	}
	fdstore_doomed[fdstore_ndoomed++] = gen;
}

/*
 * Before a state naming fds[0..n) is written: each is stored, unless the
 * same file is stored under its number already: the same tag (state.c),
 * so an unchanged fd costs no syscall; an fd number reused for another
 * file comes with another tag, and the old entry is doomed.
 */
static void
fdstore_sync(const int *fds, const uint64_t *tags, size_t n)
{
	struct fdstore_entry *e;
	struct stat st;
	size_t j;

	fdstore_sync_gen++;
	fdstore_stalled = 0;
	for (j = 0; j < n; j++) {
		if ((e = fdstore_entry(fds[j])) == NULL)
			continue;
		/* Recovered from the store: known by what it is, once. */
		if (e->gen != 0 && e->tag == 0 && fstat(fds[j], &st) == 0 &&
		    e->dev == st.st_dev && e->ino == st.st_ino)
			e->tag = tags[j];
		if (e->gen != 0 && e->tag != tags[j]) {
			fdstore_doom(e->gen);
			e->gen = 0;
		}
		if (e->gen == 0) {
			if (fdstore_send(fds[j], "FDSTORE=1\nFDNAME="
			    FDSTORE_PREFIX "fd-%" PRIu64 "\nFDPOLL=0",
			    fdstore_gen + 1) == -1)
				continue;
			e->gen = ++fdstore_gen;
			e->tag = tags[j];
			fdstore_stores++;
		}
		e->seen = fdstore_sync_gen;
	}
	/* What no longer is named goes, after the write. */
	for (j = 0; j < fdstore_tab_len; j++) {
		e = &fdstore_tab[j];
		if (e->gen != 0 && e->seen != fdstore_sync_gen) {
			fdstore_doom(e->gen);
			e->gen = 0;
		}
	}
}

/* The name table, packed: [[fd number, G], ...] of every stored fd. */
static void
fdstore_pack_names(msgpack_sbuffer *sb)
{
	msgpack_packer pk;
	size_t j, n = 0;

	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	for (j = 0; j < fdstore_tab_len; j++)
		n += fdstore_tab[j].gen != 0;
	msgpack_pack_array(&pk, n);
	for (j = 0; j < fdstore_tab_len; j++) {
		if (fdstore_tab[j].gen == 0)
			continue;
		msgpack_pack_array(&pk, 2);
		msgpack_pack_uint64(&pk, j);
		msgpack_pack_uint64(&pk, fdstore_tab[j].gen);
	}
}

static void
fdstore_put_u64(unsigned char *p, uint64_t v)
{
	int k;

	for (k = 0; k < 8; k++)
		p[k] = v >> (8 * k);
}

static uint64_t
fdstore_get_u64(const unsigned char *p)
{
	uint64_t v = 0;
	int k;

	for (k = 7; k >= 0; k--)
		v = v << 8 | p[k];
	return v;
}

static int
fdstore_pwrite(int fd, const void *p, size_t n, off_t at)
{
	ssize_t w;

	while (n > 0) {
		if ((w = pwrite(fd, p, n, at)) <= 0) {
			if (w == -1 && errno == EINTR)
				continue;
			return -1;
		}
		p = (const char *)p + w;
		n -= w;
		at += w;
	}
	return 0;
}

/*
 * A new state (snapshot.c's: the whole of it, fds listed as state.c's
 * state_saved_fds gives them): its fds into the store, then the state and
 * the name table into the older memfd, header last, then what is no
 * longer named out of the store.
 */
void
fdstore_save(const char *state, size_t len, const int *fds,
    const uint64_t *tags, size_t n)
{
	unsigned char head[FDSTORE_HEADER];
	msgpack_sbuffer names;
	int fd;
	size_t k;

	if (!fdstore_on)
		return;
	fdstore_sync(fds, tags, n);
	msgpack_sbuffer_init(&names);
	fdstore_pack_names(&names);
	fd = fdstore_state[(fdstore_seq + 1) % 2];
	/* A torn write is a state of length 0 until its header is whole. */
	memset(head, 0, sizeof head);
	if (fdstore_pwrite(fd, head, sizeof head, 0) == -1 ||
	    fdstore_pwrite(fd, state, len, FDSTORE_HEADER) == -1 ||
	    fdstore_pwrite(fd, names.data, names.size,
	    FDSTORE_HEADER + len) == -1 ||
	    ftruncate(fd, FDSTORE_HEADER + len + names.size) == -1) {
		log_warn("fd store: cannot write the state");
		msgpack_sbuffer_destroy(&names);
		return;
	}
	fdstore_put_u64(head, fdstore_seq + 1);
	fdstore_put_u64(head + 8, len);
	if (fdstore_pwrite(fd, head, sizeof head, 0) == -1) {
		msgpack_sbuffer_destroy(&names);
		return;
	}
	fdstore_seq++;
	fdstore_writes++;
	msgpack_sbuffer_destroy(&names);
	for (k = 0; k < fdstore_ndoomed; k++) {
		if (fdstore_send(-1, "FDSTOREREMOVE=1\nFDNAME=" FDSTORE_PREFIX
		    "fd-%" PRIu64, fdstore_doomed[k]) == 0)
			fdstore_removes++;
	}
	fdstore_ndoomed = 0;
}

/* The state memfds and the socket to the service manager. */
void
fdstore_fds(fd_visit_fn fn, void *arg)
{
	if (fdstore_state[0] != -1)
		fn(fdstore_state[0], "fdstore: state a", arg);
	if (fdstore_state[1] != -1)
		fn(fdstore_state[1], "fdstore: state b", arg);
	if (fdstore_sock != -1)
		fn(fdstore_sock, "fdstore: NOTIFY_SOCKET", arg);
}

/* ---- across a re-exec (reexec.c): the store stays as it is */

void
fdstore_pack(msgpack_packer *pk)
{
	size_t j, n = 0;

	if (!fdstore_on) {
		msgpack_pack_nil(pk);
		return;
	}
	for (j = 0; j < fdstore_tab_len; j++)
		n += fdstore_tab[j].gen != 0;
	msgpack_pack_map(pk, 5);
	state_pack_kv_fd(pk, "state_a", fdstore_state[0]);
	state_pack_kv_fd(pk, "state_b", fdstore_state[1]);
	codec_pack_kv_uint(pk, "seq", fdstore_seq);
	codec_pack_kv_uint(pk, "gen", fdstore_gen);
	codec_pack_key(pk, "stored");
	msgpack_pack_array(pk, n);
	for (j = 0; j < fdstore_tab_len; j++) {
		if (fdstore_tab[j].gen == 0)
			continue;
		msgpack_pack_array(pk, 5);
		msgpack_pack_uint64(pk, j);
		msgpack_pack_uint64(pk, fdstore_tab[j].gen);
		msgpack_pack_uint64(pk, fdstore_tab[j].dev);
		msgpack_pack_uint64(pk, fdstore_tab[j].ino);
		msgpack_pack_uint64(pk, fdstore_tab[j].tag);
	}
}

/* After a re-exec: the same memfds, names and numbers (nil: no store). */
void
fdstore_unpack(const msgpack_object *m)
{
	const msgpack_object *a, *e;
	struct fdstore_entry *t;
	struct rlimit rl;
	uint64_t lim = INT32_MAX;
	size_t n, j;

	if (m == NULL || m->type != MSGPACK_OBJECT_MAP)
		return;
	/* The table is by fd number: none at or over the fd limit exists
	 * (a wardd only raises it), and a bigger index would size it. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < INT32_MAX)
		lim = rl.rlim_cur;
	fdstore_state[0] = state_fd(m, "state_a");
	fdstore_state[1] = state_fd(m, "state_b");
	fdstore_seq = state_u64(m, "seq", 0);
	fdstore_gen = state_u64(m, "gen", 0);
	a = state_array(m, "stored", &n);
	for (j = 0; j < n; j++) {
		e = &a[j];
		if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 5 ||
		    e->via.array.ptr[0].via.u64 >= lim ||
		    (t = fdstore_entry(e->via.array.ptr[0].via.u64)) == NULL)
			continue;
		t->gen = e->via.array.ptr[1].via.u64;
		t->dev = e->via.array.ptr[2].via.u64;
		t->ino = e->via.array.ptr[3].via.u64;
		t->tag = e->via.array.ptr[4].via.u64;
	}
	fdstore_on = fdstore_state[0] != -1 && fdstore_state[1] != -1;
	opts.memfd_rings = fdstore_on;
}

/* ---- recovery */

/* The whole of a memfd, or NULL. */
static char *
fdstore_read(int fd, size_t *len)
{
	struct stat st;
	char *p;
	size_t n;
	ssize_t r;

	if (fd == -1 || fstat(fd, &st) == -1 || st.st_size < FDSTORE_HEADER ||
	    (uint64_t)st.st_size > FDSTORE_STATE_MAX ||
	    (p = malloc(st.st_size)) == NULL)
		return NULL;
	for (n = 0; n < (size_t)st.st_size; n += r) {
		if ((r = pread(fd, p + n, st.st_size - n, n)) <= 0) {
			free(p);
			return NULL;
		}
	}
	*len = n;
	return p;
}

/* "ward-fd-G": G, or 0. */
static uint64_t
fdstore_name_gen(const char *name)
{
	const char *p = name + strlen(FDSTORE_PREFIX "fd-");

	if (strncmp(name, FDSTORE_PREFIX "fd-", strlen(FDSTORE_PREFIX "fd-")) != 0)
		return 0;
	return id_parse(p);
}

/* A stored fd handed to the restore: what it was, to know it again after. */
struct fdstore_handed {
	int		 fd;
	uint64_t	 gen;
	dev_t		 dev;
	ino_t		 ino;
};

/* Stored fds are named "ward-fd-G": which fd number G was, from the table. */
static int
fdstore_name_old(const msgpack_object *names, uint64_t gen)
{
	const msgpack_object *e;
	uint32_t i;

	for (i = 0; i < names->via.array.size; i++) {
		e = &names->via.array.ptr[i];
		if (e->type == MSGPACK_OBJECT_ARRAY && e->via.array.size == 2 &&
		    e->via.array.ptr[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
		    e->via.array.ptr[0].via.u64 < INT32_MAX &&
		    e->via.array.ptr[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
		    e->via.array.ptr[1].via.u64 == gen)
			return (int)e->via.array.ptr[0].via.u64;
	}
	return -1;
}

/*
 * Hand the stored fds to state.c by the numbers the state knows them by;
 * remember each (h), to know after the restore which were taken.
 */
static size_t
fdstore_hand(struct systemd_stored *st, size_t n, const msgpack_object *names,
    struct fdstore_handed *h)
{
	struct stat sb;
	size_t j, nh = 0;
	int old, max = 0;
	uint64_t gen;

	for (j = 0; j < n; j++) {
		if (st[j].fd != -1 && (gen = fdstore_name_gen(st[j].name)) != 0 &&
		    (old = fdstore_name_old(names, gen)) > max)
			max = old;
	}
	if (state_fds_begin(max) == -1)
		return 0;
	for (j = 0; j < n; j++) {
		if (st[j].fd == -1 || (gen = fdstore_name_gen(st[j].name)) == 0 ||
		    (old = fdstore_name_old(names, gen)) == -1 ||
		    fstat(st[j].fd, &sb) == -1)
			continue;
		h[nh].fd = st[j].fd;
		h[nh].gen = gen;
		h[nh].dev = sb.st_dev;
		h[nh++].ino = sb.st_ino;
		state_fd_hand(old, st[j].fd);
		st[j].fd = -1;
		if (gen > fdstore_gen)
			fdstore_gen = gen;
	}
	return nh;
}

/* The newest whole state of the two memfds: its index, or -1. */
static int
fdstore_newest(char *data[2], size_t len[2], uint64_t seq[2])
{
	const unsigned char *h;
	int k, best = -1;

	for (k = 0; k < 2; k++) {
		if (data[k] == NULL)
			continue;
		h = (const unsigned char *)data[k];
		seq[k] = fdstore_get_u64(h);
		if (seq[k] != 0 &&
		    fdstore_get_u64(h + 8) <= len[k] - FDSTORE_HEADER &&
		    (best == -1 || seq[k] > seq[best]))
			best = k;
	}
	return best;
}

/* Between fdstore_recover_begin and _end: what was handed to the restore. */
static struct {
	struct fdstore_handed	*h;
	size_t			 nh;
	int			 recovered[2];
	char			*data[2];
} fdstore_rec = { NULL, 0, { -1, -1 }, { NULL, NULL } };

/*
 * Start-up, when systemd handed back what wardd kept: the newest whole
 * state (returned, *len bytes; NULL if there is none), its fds handed to
 * state.c by the numbers it knows them by. wardd.c restores it
 * (reexec_restore_state) and then calls fdstore_recover_end.
 */
const char *
fdstore_recover_begin(size_t *len)
{
	struct systemd_stored *st;
	msgpack_zone *zone;
	msgpack_object names;
	size_t n, j, dlen[2] = { 0, 0 }, slen, off = 0;
	uint64_t seq[2] = { 0, 0 };
	int best, k;

	st = systemd_stored_fds(&n);
	for (j = 0; j < n; j++) {
		for (k = 0; k < 2; k++) {
			if (strcmp(st[j].name, fdstore_state_names[k]) == 0 &&
			    fdstore_rec.recovered[k] == -1) {
				fdstore_rec.recovered[k] = st[j].fd;
				st[j].fd = -1;
			}
		}
	}
	for (k = 0; k < 2; k++)
		fdstore_rec.data[k] = fdstore_read(fdstore_rec.recovered[k],
		    &dlen[k]);
	if ((best = fdstore_newest(fdstore_rec.data, dlen, seq)) == -1)
		return NULL;
	fdstore_seq = seq[best];
	if ((fdstore_rec.h = calloc(n + 1, sizeof *fdstore_rec.h)) == NULL ||
	    (zone = msgpack_zone_new(65536)) == NULL)
		return NULL;
	slen = fdstore_get_u64((const unsigned char *)fdstore_rec.data[best] + 8);
	/* The name table, after the state: which fd number each name was. */
	if (msgpack_unpack(fdstore_rec.data[best] + FDSTORE_HEADER + slen,
	    dlen[best] - FDSTORE_HEADER - slen, &off, zone, &names) !=
	    MSGPACK_UNPACK_SUCCESS || names.type != MSGPACK_OBJECT_ARRAY) {
		msgpack_zone_free(zone);
		return NULL;
	}
	fdstore_rec.nh = fdstore_hand(st, n, &names, fdstore_rec.h);
	msgpack_zone_free(zone);
	*len = slen;
	return fdstore_rec.data[best] + FDSTORE_HEADER;
}

/*
 * After the restore (restored: it read the state): the store is wardd's
 * again. The fds taken back stay stored under their names (at other
 * numbers now); the rest are closed and removed from it. Then new states
 * go to the same two memfds (or new ones, when there were none).
 */
void
fdstore_recover_end(int restored)
{
	struct systemd_stored *st;
	struct fdstore_handed *h = fdstore_rec.h;
	struct fdstore_entry *e;
	struct stat sb;
	size_t n, j;
	uint64_t gen;

	for (j = 0; j < fdstore_rec.nh; j++) {
		if (restored && fstat(h[j].fd, &sb) == 0 &&
		    sb.st_dev == h[j].dev && sb.st_ino == h[j].ino &&
		    (e = fdstore_entry(h[j].fd)) != NULL && e->gen == 0) {
			e->gen = h[j].gen;
			e->tag = 0;	/* the next sync knows it by dev, ino */
			e->dev = sb.st_dev;
			e->ino = sb.st_ino;
		} else
			fdstore_send(-1, "FDSTOREREMOVE=1\nFDNAME=" FDSTORE_PREFIX
			    "fd-%" PRIu64, h[j].gen);
	}
	st = systemd_stored_fds(&n);
	for (j = 0; j < n; j++) {
		if (st[j].fd == -1)
			continue;
		close(st[j].fd);
		st[j].fd = -1;
		if ((gen = fdstore_name_gen(st[j].name)) != 0)
			fdstore_send(-1, "FDSTOREREMOVE=1\nFDNAME=" FDSTORE_PREFIX
			    "fd-%" PRIu64, gen);
	}
	if (!restored)
		fdstore_seq = 0;
	free(fdstore_rec.h);
	free(fdstore_rec.data[0]);
	free(fdstore_rec.data[1]);
	fdstore_rec.h = NULL;
	fdstore_rec.nh = 0;
	fdstore_open(fdstore_rec.recovered);
}
