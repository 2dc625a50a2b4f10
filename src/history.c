/*
 * history.c: the last HISTORY_MAX exit records, oldest first, in a ring.
 * Each record is shared with its instance until that is removed.
 */
#include "config.h"

#include <string.h>

#include "ward.h"

static struct exit_record *history[HISTORY_MAX];
static size_t history_head;	/* next slot to write */
static size_t history_count;

void
history_add(struct exit_record *r)
{
	exit_record_unref(history[history_head]);
	r->refs++;
	history[history_head] = r;
	history_head = (history_head + 1) % HISTORY_MAX;
	if (history_count < HISTORY_MAX)
		history_count++;
}

static int
history_match(const struct exit_record *r, const struct conn *c,
    const char *name, uint64_t id)
{
	if (!c->admin && r->owner_uid != c->uid)
		return 0;
	if (name != NULL && strcmp(r->name, name) != 0)
		return 0;
	if (id != 0 && r->id != id)
		return 0;
	return 1;
}

/* The newest limit records the peer may see, oldest first. */
void
history_pack(msgpack_packer *pk, const struct conn *c, const char *name,
    uint64_t id, size_t limit)
{
	size_t start = (history_head + HISTORY_MAX - history_count) % HISTORY_MAX;
	size_t k, n = 0, skip;

	for (k = 0; k < history_count; k++) {
		if (history_match(history[(start + k) % HISTORY_MAX], c, name, id))
			n++;
	}
	skip = n > limit ? n - limit : 0;
	msgpack_pack_array(pk, n - skip);
	for (k = 0; k < history_count; k++) {
		struct exit_record *r = history[(start + k) % HISTORY_MAX];

		if (!history_match(r, c, name, id))
			continue;
		if (skip > 0) {
			skip--;
			continue;
		}
		exit_record_pack(r, pk, 1);
	}
}

void
history_free(void)
{
	size_t k;

	for (k = 0; k < HISTORY_MAX; k++) {
		exit_record_unref(history[k]);
		history[k] = NULL;
	}
	history_count = history_head = 0;
}
