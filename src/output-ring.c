/*
 * output-ring.c: a captured stream's ring, the last log_ring_bytes it
 * wrote, for instance.log. In memory it grows to that size as output
 * comes, then wraps. When wardd keeps its fds in systemd's fd store
 * (opts.memfd_rings, set by fdstore.c), the ring is a memfd instead,
 * mapped shared, whose first page is a header saying where the data
 * starts and how much there is; the memfd goes to the store with the
 * stream's other fds, so what wardd had read when it was killed is still
 * there after the recovery (output_ring_adopt), without a state write per
 * chunk. The header is moved before the bytes it stops covering are
 * overwritten and after the bytes it starts covering are written: killed
 * anywhere in between, it describes bytes that are whole.
 *
 * layer: engine (output.c's ring; base modules only)
 */
#include "config.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ward.h"
#include "output.h"

#define OUTPUT_RING_MIN		4096		/* the ring grows from here */
#define OUTPUT_RING_HDR		4096		/* the memfd's first page */
#define OUTPUT_RING_MAGIC	UINT64_C(0x676e697264726177)	/* "wardring" */

/* The memfd's first page: what a recovering wardd reads. */
struct output_ring_hdr {
	uint64_t	 magic;
	uint64_t	 cap;		/* data bytes after the header */
	uint64_t	 start;		/* oldest byte, from the data's start */
	uint64_t	 len;		/* bytes held */
};

/* A memfd ring of max bytes for st; -1 (st unchanged) if it cannot be. */
static int
output_ring_map(struct output_stream *st, size_t max)
{
	char *p;
	int fd;

	if ((fd = memfd_create("ward-ring", MFD_CLOEXEC)) == -1)
		return -1;
	if (ftruncate(fd, OUTPUT_RING_HDR + max) == -1 ||
	    (p = mmap(NULL, OUTPUT_RING_HDR + max, PROT_READ | PROT_WRITE,
	    MAP_SHARED, fd, 0)) == MAP_FAILED) {
		close(fd);
		return -1;
	}
	st->ring_fd = fd;
	st->ring_hdr = (struct output_ring_hdr *)p;
	st->ring_hdr->magic = OUTPUT_RING_MAGIC;
	st->ring_hdr->cap = max;
	st->ring = p + OUTPUT_RING_HDR;
	st->ring_cap = max;
	st->ring_start = st->ring_len = 0;
	return 0;
}

/* The header says start and len: stores the compiler keeps in this order. */
static void
output_ring_publish_as(struct output_stream *st, size_t start, size_t len)
{
	if (st->ring_hdr == NULL)
		return;
	__atomic_store_n(&st->ring_hdr->start, start, __ATOMIC_RELEASE);
	__atomic_store_n(&st->ring_hdr->len, len, __ATOMIC_RELEASE);
}

/* The header follows st. */
static void
output_ring_publish(struct output_stream *st)
{
	output_ring_publish_as(st, st->ring_start, st->ring_len);
}

/* Keep the last ring_bytes: grow to that size as needed, then wrap. */
void
output_ring_append(struct output_stream *st, const char *p, size_t n)
{
	size_t max = st->out->inst->spec.output->ring_bytes, at, k;
	char *r;

	if (max == 0)
		return;
	if (st->ring == NULL && opts.memfd_rings)
		(void)output_ring_map(st, max);	/* else in memory, as below */
	if (n >= max) {
		p += n - max;
		n = max;
		st->ring_start = st->ring_len = 0;
		output_ring_publish(st);
	}
	/*
	 * Grow (up to max) only while the data is linear from 0: it is until
	 * the ring first wraps, which happens at max unless realloc failed.
	 */
	if (st->ring_fd == -1 && st->ring_cap < max && st->ring_start == 0 &&
	    st->ring_len + n > st->ring_cap) {
		size_t cap = st->ring_cap ? st->ring_cap : OUTPUT_RING_MIN;

		while (cap < st->ring_len + n)
			cap *= 2;
		if (cap > max)
			cap = max;
		if ((r = realloc(st->ring, cap)) != NULL) {
			st->ring = r;
			st->ring_cap = cap;
		}
		/* Out of memory: wrap within what there is. */
	}
	if (st->ring_cap == 0)
		return;
	if (n > st->ring_cap) {
		p += n - st->ring_cap;
		n = st->ring_cap;
	}
	if (st->ring_len + n > st->ring_cap) {
		k = st->ring_len + n - st->ring_cap;	/* oldest bytes to lose */
		st->ring_start = (st->ring_start + k) % st->ring_cap;
		st->ring_len -= k;
		output_ring_publish(st);	/* before they are overwritten */
	}
	at = (st->ring_start + st->ring_len) % st->ring_cap;
	k = st->ring_cap - at < n ? st->ring_cap - at : n;
	memcpy(st->ring + at, p, k);
	memcpy(st->ring, p + k, n - k);
	st->ring_len += n;
	output_ring_publish(st);		/* after they are written */
}

/*
 * Where a read may put up to *n bytes straight into the ring (one copy, not
 * two): the free room, or the oldest bytes, from the write position to the
 * ring's end; *n is cut to that. NULL when the ring is not at its full size
 * yet (it grows by output_ring_append) or smaller than min. The header stops
 * covering that room before the read overwrites it; output_ring_commit
 * says how much the read brought, and must follow (with 0 if nothing).
 */
char *
output_ring_room(struct output_stream *st, size_t *n, size_t min)
{
	size_t max = st->out->inst->spec.output->ring_bytes, at, room, lose;

	if (max < min)
		return NULL;
	if (st->ring == NULL && opts.memfd_rings)
		(void)output_ring_map(st, max);
	if (st->ring == NULL || st->ring_cap != max)
		return NULL;
	at = (st->ring_start + st->ring_len) % st->ring_cap;
	room = st->ring_cap - at;
	if (*n > room)
		*n = room;
	if (st->ring_len + *n > st->ring_cap) {
		lose = st->ring_len + *n - st->ring_cap;
		output_ring_publish_as(st, (st->ring_start + lose) %
		    st->ring_cap, st->ring_len - lose);
	}
	return st->ring + at;
}

/* n bytes were read into output_ring_room's room. */
void
output_ring_commit(struct output_stream *st, size_t n)
{
	size_t lose;

	if (st->ring_len + n > st->ring_cap) {
		lose = st->ring_len + n - st->ring_cap;
		st->ring_start = (st->ring_start + lose) % st->ring_cap;
		st->ring_len -= lose;
	}
	st->ring_len += n;
	output_ring_publish(st);
}

void
output_ring_free(struct output_stream *st)
{
	if (st->ring_fd != -1) {
		munmap(st->ring_hdr, OUTPUT_RING_HDR + st->ring_cap);
		close(st->ring_fd);
		st->ring_fd = -1;
		st->ring_hdr = NULL;
	} else
		free(st->ring);
	st->ring = NULL;
	st->ring_cap = st->ring_start = st->ring_len = 0;
}

/*
 * After a recovery: st's ring is the memfd fd (taken over: closed if it
 * is not a ring of this size). What its header says it holds is the ring.
 * 0, or -1 (st's ring unchanged).
 */
int
output_ring_adopt(struct output_stream *st, int fd)
{
	size_t max = st->out->inst->spec.output->ring_bytes;
	struct output_ring_hdr *h;
	struct stat sb;
	char *p;

	if (fstat(fd, &sb) == -1 || max == 0 ||
	    (uint64_t)sb.st_size != OUTPUT_RING_HDR + (uint64_t)max ||
	    (p = mmap(NULL, sb.st_size, PROT_READ | PROT_WRITE, MAP_SHARED,
	    fd, 0)) == MAP_FAILED) {
		close(fd);
		return -1;
	}
	h = (struct output_ring_hdr *)p;
	if (h->magic != OUTPUT_RING_MAGIC || h->cap != max || h->start >= max ||
	    h->len > max) {
		munmap(p, sb.st_size);
		close(fd);
		return -1;
	}
	output_ring_free(st);
	st->ring_fd = fd;
	st->ring_hdr = h;
	st->ring = p + OUTPUT_RING_HDR;
	st->ring_cap = max;
	st->ring_start = h->start;
	st->ring_len = h->len;
	return 0;
}
