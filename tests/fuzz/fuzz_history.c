/*
 * fuzz_history.c: STATE_DIR/history as a crash, a bad disk or a hand left
 * it, read back at start (history_init, history-file.c, and
 * exit_record_unpack). The input is the file's bytes. Invariants:
 * - the read never fails and keeps within history's limits;
 * - every record history then returns reads back as itself
 *   (exit_record_unpack, then exit_record_pack, gives the same bytes),
 *   with every string valid UTF-8;
 * - the file it leaves is whole: a second start reads the same history,
 *   and a record added after it is read back last;
 * - no fd is left open once history is freed.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static const char *const fuzz_history_files[] = {
	"history", "history.rejected", "history.tmp",
};

static int
fuzz_history_utf8(const msgpack_object *o)
{
	uint32_t i;

	switch (o->type) {
	case MSGPACK_OBJECT_STR:
		return utf8_valid(o->via.str.ptr, o->via.str.size);
	case MSGPACK_OBJECT_MAP:
		for (i = 0; i < o->via.map.size; i++)
			if (!fuzz_history_utf8(&o->via.map.ptr[i].key) ||
			    !fuzz_history_utf8(&o->via.map.ptr[i].val))
				return 0;
		return 1;
	default:
		return 1;
	}
}

/* history as an admin's instance.history returns it, packed into b. */
static void
fuzz_history_pack(struct buf *b)
{
	struct peer admin = { .fd = -1, .admin = 1 };
	msgpack_packer pk;

	b->off = b->len = 0;
	msgpack_packer_init(&pk, b, codec_sbuffer_write);
	history_pack(&pk, &admin, NULL, 0, HISTORY_TOTAL_MAX);
}

/* Each record of the packed history b reads back as itself. */
static void
fuzz_history_check(const struct buf *b)
{
	struct buf again = { NULL, 0, 0, 0 }, orig = { NULL, 0, 0, 0 };
	struct exit_record *r;
	msgpack_unpacked u;
	msgpack_packer pk;
	const msgpack_object *o;
	size_t off = 0;
	uint32_t i;

	msgpack_unpacked_init(&u);
	harness_assert(msgpack_unpack_next(&u, b->data, b->len, &off) ==
	    MSGPACK_UNPACK_SUCCESS && u.data.type == MSGPACK_OBJECT_ARRAY,
	    "history does not pack as an array");
	harness_assert(u.data.via.array.size == history_count(HISTORY_ALL),
	    "%u records packed, %zu kept", u.data.via.array.size,
	    history_count(HISTORY_ALL));
	for (i = 0; i < u.data.via.array.size; i++) {
		o = &u.data.via.array.ptr[i];
		harness_assert(fuzz_history_utf8(o), "record %u: not UTF-8", i);
		r = exit_record_unpack(o);
		harness_assert(r != NULL, "record %u does not read back", i);
		again.off = again.len = orig.off = orig.len = 0;
		msgpack_packer_init(&pk, &again, codec_sbuffer_write);
		exit_record_pack(r, &pk, 1);
		msgpack_packer_init(&pk, &orig, codec_sbuffer_write);
		msgpack_pack_object(&pk, *o);
		harness_assert(again.len == orig.len &&
		    memcmp(again.data, orig.data, orig.len) == 0,
		    "record %u does not read back as itself", i);
		exit_record_unref(r);
	}
	msgpack_unpacked_destroy(&u);
	buf_free(&again);
	buf_free(&orig);
}

int LLVMFuzzerInitialize(int *, char ***);
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	harness_init();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf first = { NULL, 0, 0, 0 }, second = { NULL, 0, 0, 0 };
	struct exit_record *r;
	char path[4096];
	size_t n, k;
	int fds;

	snprintf(path, sizeof path, "%s/history", harness_sandbox());
	if (harness_write_file(path, data, size) == -1)
		return 0;
	fds = harness_count_fds();
	history_init();
	n = history_count(HISTORY_ALL);
	harness_assert(n <= HISTORY_TOTAL_MAX, "%zu records kept", n);
	fuzz_history_pack(&first);
	fuzz_history_check(&first);
	history_free();

	/* What the first start left reads the same. */
	history_init();
	fuzz_history_pack(&second);
	harness_assert(second.len == first.len &&
	    memcmp(second.data, first.data, first.len) == 0,
	    "a second start reads another history (%zu records, then %zu)", n,
	    history_count(HISTORY_ALL));

	/* A death after it is appended whole, and read back last. */
	if ((r = calloc(1, sizeof *r)) != NULL) {
		r->refs = 1;
		r->id = 1 + size;
		r->owner_uid = size % 3;
		r->name = strdup("fuzz");
		strcpy(r->death_reason, "CRASH");
		r->exited = 1;
		history_add(r);
		exit_record_unref(r);
		n = history_count(HISTORY_ALL);
		fuzz_history_pack(&first);
		history_free();
		history_init();
		fuzz_history_pack(&second);
		harness_assert(history_count(HISTORY_ALL) == n &&
		    second.len == first.len &&
		    memcmp(second.data, first.data, first.len) == 0,
		    "the added record does not read back");
	}
	history_free();
	harness_check_fds(fds);
	buf_free(&first);
	buf_free(&second);
	for (k = 0; k < sizeof fuzz_history_files / sizeof fuzz_history_files[0];
	    k++) {
		snprintf(path, sizeof path, "%s/%s", harness_sandbox(),
		    fuzz_history_files[k]);
		unlink(path);
		rmdir(path);
	}
	return 0;
}
