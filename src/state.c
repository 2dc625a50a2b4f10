/*
 * state.c: the toolkit each owner uses to write its part of wardd's state
 * (its *_save, packing msgpack) and to read it back (its *_restore), for a
 * re-exec (reexec.c). The state is a versioned msgpack map whose parts are
 * maps by key, so a newer wardd reads an older state: a key it does not
 * find takes its default. It is wardd's own, handed from one image of
 * wardd to the next, but read like any input: a missing or mistyped value
 * is its default, never a crash.
 *
 * Fds: a saved fd is packed as its number and kept open across the exec
 * (state_pack_fd lists it; reexec.c clears its close-on-exec flag). On
 * restore, state_fd takes each back once, checks it is open and sets
 * close-on-exec again; reexec.c closes whatever was kept and not taken.
 *
 * layer: base
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"

/*
 * Fds listed by the save under way, or handed over to the restore. Each
 * saved fd has a tag: who packed it (state_fd_context: an instance's id
 * and run), its place among what that owner packed, and a salt (a log
 * file's open count). The same fd number with the same tag in two saves
 * is the same open file (fdstore.c stores it once, with no syscall to
 * find that out); a number reused for another file comes with another tag.
 */
static int	*state_fds;
static uint64_t	*state_tags;
static uint64_t	 state_ctx, state_salt;
static int	 state_snapshot;	/* a snapshot, not a re-exec's state */
static unsigned	 state_seq;
static size_t	 state_nfds;
static size_t	 state_fds_cap;
static size_t	 state_taken_len;	/* restore: state_taken's size */
/* Restore, by the saving wardd's fd number: 1 handed over, 2 taken
 * back (0: neither), and the fd it is now. */
static unsigned char *state_taken;
static int	*state_newfd;
#define STATE_FD_LIMIT	(1 << 24)	/* fd numbers a state may name */

static uint64_t
state_mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdULL;
}

/* The fds packed from now on are owner a's (its run b). */
void
state_fd_context(uint64_t a, uint64_t b)
{
	state_ctx = state_mix(state_mix(0, a), b);
	state_seq = 0;
}

/*
 * What is being saved: a re-exec's whole state (0), or a crash snapshot
 * (1: snapshot.c, fdstore.c), written a few times a second, which leaves
 * out what is too big to rewrite that often (the output rings).
 */
void
state_set_snapshot(int on)
{
	state_snapshot = on;
}

int
state_is_snapshot(void)
{
	return state_snapshot;
}

/* Mixed into the next fd's tag only (a file reopened: another file). */
void
state_fd_salt(uint64_t v)
{
	state_salt = v;
}

/* Pack fd (or nil for -1) and list it to be kept across the exec. */
void
state_pack_fd(msgpack_packer *pk, int fd)
{
	uint64_t tag = state_mix(state_mix(state_ctx, ++state_seq), state_salt);
	uint64_t *t;
	int *n;

	state_salt = 0;
	if (fd < 0) {
		msgpack_pack_nil(pk);
		return;
	}
	if (state_nfds == state_fds_cap) {
		size_t cap = state_fds_cap ? state_fds_cap * 2 : 256;

		if ((n = reallocarray(state_fds, cap, sizeof *n)) == NULL) {
			/* Not kept: the restore sees it closed, as after a crash. */
			msgpack_pack_nil(pk);
			return;
		}
		state_fds = n;
		if ((t = reallocarray(state_tags, cap, sizeof *t)) == NULL) {
			msgpack_pack_nil(pk);
			return;
		}
		state_tags = t;
		state_fds_cap = cap;
	}
	state_tags[state_nfds] = tag ? tag : 1;	/* 0: unknown (fdstore.c) */
	state_fds[state_nfds++] = fd;
	msgpack_pack_int(pk, fd);
}

void
state_pack_kv_fd(msgpack_packer *pk, const char *k, int fd)
{
	codec_pack_key(pk, k);
	state_pack_fd(pk, fd);
}

/* A timer's remaining time (nil: not running). */
void
state_pack_kv_timer(msgpack_packer *pk, const char *k, ev_timer *t)
{
	codec_pack_key(pk, k);
	if (ev_is_active(t) || ev_is_pending(t))
		msgpack_pack_double(pk, ev_timer_remaining(ward_loop, t));
	else
		msgpack_pack_nil(pk);
}

void
state_pack_kv_double(msgpack_packer *pk, const char *k, double v)
{
	codec_pack_key(pk, k);
	msgpack_pack_double(pk, v);
}

/* Bytes that need not be text (buffers, rings); nil for none. */
void
state_pack_kv_bin(msgpack_packer *pk, const char *k, const void *p, size_t n)
{
	codec_pack_key(pk, k);
	if (p == NULL) {
		msgpack_pack_nil(pk);
		return;
	}
	msgpack_pack_bin(pk, n);
	msgpack_pack_bin_body(pk, p, n);
}

/* A NULL-terminated string vector; nil for NULL. */
void
state_pack_kv_strv(msgpack_packer *pk, const char *k, char *const *v)
{
	size_t n = 0;

	codec_pack_key(pk, k);
	if (v == NULL) {
		msgpack_pack_nil(pk);
		return;
	}
	while (v[n] != NULL)
		n++;
	msgpack_pack_array(pk, n);
	for (n = 0; v[n] != NULL; n++)
		codec_pack_str(pk, v[n]);
}

/* The fds the save listed, for reexec.c; reset with state_fds_reset. */
const int *
state_saved_fds(size_t *n)
{
	*n = state_nfds;
	return state_fds;
}

/* Their tags, in the same order (fdstore.c). */
const uint64_t *
state_saved_tags(void)
{
	return state_tags;
}

void
state_fds_reset(void)
{
	free(state_fds);
	free(state_tags);
	free(state_taken);
	free(state_newfd);
	state_fds = NULL;
	state_tags = NULL;
	state_ctx = state_salt = 0;
	state_seq = 0;
	state_taken = NULL;
	state_newfd = NULL;
	state_nfds = state_fds_cap = state_taken_len = 0;
}

/* ---- reading back */

/*
 * map[k], or NULL when map is not a map or has no such key. Owners read
 * their keys in the order they wrote them: the search starts after the
 * key found last in the same map, so a whole read is linear, not
 * quadratic, in the keys (a re-exec reads tens of keys per instance).
 */
const msgpack_object *
state_get(const msgpack_object *map, const char *k)
{
	static const msgpack_object *last_map;
	static uint32_t last;
	size_t n = strlen(k);
	uint32_t j, size, at;

	if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	size = map->via.map.size;
	at = map == last_map && last + 1 < size ? last + 1 : 0;
	for (j = 0; j < size; j++, at = at + 1 < size ? at + 1 : 0) {
		const msgpack_object *key = &map->via.map.ptr[at].key;

		if (key->type == MSGPACK_OBJECT_STR && key->via.str.size == n &&
		    memcmp(key->via.str.ptr, k, n) == 0) {
			last_map = map;
			last = at;
			return &map->via.map.ptr[at].val;
		}
	}
	return NULL;
}

uint64_t
state_u64(const msgpack_object *map, const char *k, uint64_t def)
{
	const msgpack_object *o = state_get(map, k);

	if (o != NULL && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		return o->via.u64;
	return def;
}

int64_t
state_i64(const msgpack_object *map, const char *k, int64_t def)
{
	const msgpack_object *o = state_get(map, k);

	if (o == NULL)
		return def;
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX)
		return (int64_t)o->via.u64;
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		return o->via.i64;
	return def;
}

double
state_double(const msgpack_object *map, const char *k, double def)
{
	const msgpack_object *o = state_get(map, k);

	if (o != NULL && (o->type == MSGPACK_OBJECT_FLOAT64 ||
	    o->type == MSGPACK_OBJECT_FLOAT32))
		return o->via.f64;
	return def;
}

int
state_bool(const msgpack_object *map, const char *k)
{
	const msgpack_object *o = state_get(map, k);

	return o != NULL && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean;
}

/* A copy of map[k] (a string without NULs), or NULL. */
char *
state_str(const msgpack_object *map, const char *k)
{
	const msgpack_object *o = state_get(map, k);

	if (o == NULL || !codec_is_str(o))
		return NULL;
	return codec_strdup(o);
}

/* Copy a string into a fixed buffer of size n; "" if absent or too long. */
void
state_str_into(const msgpack_object *map, const char *k, char *buf, size_t n)
{
	const msgpack_object *o = state_get(map, k);

	buf[0] = '\0';
	if (o != NULL && codec_is_str(o) && o->via.str.size < n) {
		memcpy(buf, o->via.str.ptr, o->via.str.size);
		buf[o->via.str.size] = '\0';
	}
}

/* map[k] as bytes (bin or str): its pointer and size, or NULL. */
const char *
state_bin(const msgpack_object *map, const char *k, size_t *n)
{
	const msgpack_object *o = state_get(map, k);

	if (o != NULL && o->type == MSGPACK_OBJECT_BIN) {
		*n = o->via.bin.size;
		return o->via.bin.ptr;
	}
	if (o != NULL && o->type == MSGPACK_OBJECT_STR) {
		*n = o->via.str.size;
		return o->via.str.ptr;
	}
	*n = 0;
	return NULL;
}

/* map[k] as an array: its size (0 if it is none) and elements. */
const msgpack_object *
state_array(const msgpack_object *map, const char *k, size_t *n)
{
	const msgpack_object *o = state_get(map, k);

	if (o == NULL || o->type != MSGPACK_OBJECT_ARRAY) {
		*n = 0;
		return NULL;
	}
	*n = o->via.array.size;
	return o->via.array.ptr;
}

/* A NULL-terminated copy of a string array, or NULL (absent or bad). */
char **
state_strv(const msgpack_object *map, const char *k)
{
	const msgpack_object *a;
	size_t n, j;
	char **v;

	if ((a = state_array(map, k, &n)) == NULL ||
	    (v = calloc(n + 1, sizeof *v)) == NULL)
		return NULL;
	for (j = 0; j < n; j++) {
		if (!codec_is_str(&a[j]) || (v[j] = codec_strdup(&a[j])) == NULL) {
			while (j-- > 0)
				free(v[j]);
			free(v);
			return NULL;
		}
	}
	return v;
}

/*
 * Start t with what was left of it (nil: leave it stopped). A timer due
 * during the exec fires on the first loop turn.
 */
void
state_timer(const msgpack_object *map, const char *k, ev_timer *t)
{
	double left = state_double(map, k, -1.);

	if (left < 0.)
		return;
	ev_timer_set(t, left > 0. ? left : 0., t->repeat);
	ev_timer_start(ward_loop, t);
}

/*
 * Restore: the fds handed over, by the number the state knows them by
 * (the saving wardd's). After a re-exec that is the number they still
 * have; from systemd's fd store, each comes back under another number
 * and its name says which it was (fdstore.c). Tables by old number, so
 * state_fd_obj's lookups are O(1): a state may name tens of thousands.
 */
int
state_fds_begin(size_t max_old)
{
	state_fds_reset();
	if (max_old >= STATE_FD_LIMIT)
		return -1;
	if ((state_taken = calloc(max_old + 1, 1)) == NULL ||
	    (state_newfd = calloc(max_old + 1, sizeof *state_newfd)) == NULL) {
		state_fds_reset();
		return -1;
	}
	state_taken_len = max_old + 1;
	return 0;
}

/* fd `now` stands for the saving wardd's fd `old`. */
void
state_fd_hand(int old, int now)
{
	if (old < 0 || (size_t)old >= state_taken_len || state_taken[old]) {
		close(now);	/* two for one name: keep the first */
		return;
	}
	state_taken[old] = 1;
	state_newfd[old] = now;
}

/*
 * After a re-exec: the state's own list, each fd at its own number. Only
 * fds that are open are handed over: a number the old image listed but
 * did not keep is no fd (an owner would get EBADF, and a listener's
 * fcntl is fatal). A number listed twice is handed once: state_fd_hand
 * would close the second, which is the first. Which are open, one poll
 * says for all (POLLNVAL: not open), not a syscall per fd: a re-exec
 * hands over thousands.
 */
void
state_fds_handed(const msgpack_object *root)
{
	const msgpack_object *a;
	struct pollfd *p;
	size_t n, j, np = 0;
	uint64_t max = 0;

	a = state_array(root, "fds", &n);
	if (n == 0 || (p = calloc(n, sizeof *p)) == NULL)
		return;
	for (j = 0; j < n; j++) {
		if (a[j].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
		    a[j].via.u64 < STATE_FD_LIMIT) {
			p[np].fd = (int)a[j].via.u64;
			p[np++].events = 0;
		}
	}
	if (poll(p, np, 0) == -1) {
		free(p);
		return;
	}
	for (j = 0; j < np; j++) {
		if (!(p[j].revents & POLLNVAL) && (uint64_t)p[j].fd > max)
			max = p[j].fd;
	}
	if (state_fds_begin(max) == 0) {
		for (j = 0; j < np; j++) {
			if (!(p[j].revents & POLLNVAL) && !state_taken[p[j].fd])
				state_fd_hand(p[j].fd, p[j].fd);
		}
	}
	free(p);
}

/*
 * Take back the fd packed as o: -1 if there is none, it was not handed
 * over, or it was taken already. wardd.c made every inherited fd
 * close-on-exec at start (close_range): only the next re-exec keeps it.
 */
int
state_fd_obj(const msgpack_object *o)
{
	uint64_t old;

	if (o == NULL || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return -1;
	old = o->via.u64;
	if (old >= state_taken_len || state_taken[old] != 1) {
		log_warnx("state: fd %llu was not handed over, or taken twice",
		    (unsigned long long)old);
		return -1;
	}
	state_taken[old] = 2;
	return state_newfd[old];
}

/* The fd packed at map[k] (state_fd_obj). */
int
state_fd(const msgpack_object *map, const char *k)
{
	return state_fd_obj(state_get(map, k));
}

/* Close every fd handed over that no owner took back; how many. */
unsigned
state_fds_close_untaken(void)
{
	unsigned closed = 0;
	size_t old;

	for (old = 0; old < state_taken_len; old++) {
		if (state_taken[old] == 1) {
			close(state_newfd[old]);
			closed++;
		}
	}
	state_fds_reset();
	return closed;
}
