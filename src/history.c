/*
 * history.c: exit records for instance.history, kept per owner uid. Each
 * uid keeps its own last HISTORY_MAX records, so no user's deaths push out
 * another's, an admin's included; past HISTORY_TOTAL_MAX records in all,
 * the oldest record of the uid that holds the most goes (the adding uid's
 * own when it ties for most). Adding and dropping are O(1): owners are
 * found by uid in a table and kept in buckets by record count, and the
 * count changes by one at a time. Each record is on its owner's list and
 * on one list of all, both oldest first; a record is shared with its
 * instance until that is removed.
 *
 * Every record added is also appended to STATE_DIR/history
 * (history-file.c) and read back at start through the same in-memory
 * path, so the eviction above replays to what memory held; when the file
 * holds too many records memory has dropped, it is rewritten from memory.
 *
 * layer: engine
 */
#include "config.h"

#include <sys/queue.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ward.h"

#define container_of(p, type, member) \
	((type *)((char *)(p) - offsetof(type, member)))

/* One record's place in history: its owner's list and the list of all. */
struct history_entry {
	struct exit_record		*r;		/* one reference */
	struct history_owner		*owner;
	TAILQ_ENTRY(history_entry)	 all_entry;
	TAILQ_ENTRY(history_entry)	 owner_entry;
};
TAILQ_HEAD(history_list, history_entry);

/* A uid with records; freed with its last one. */
struct history_owner {
	struct table_node		 node;		/* history_owners, by uid */
	uid_t				 uid;
	size_t				 n;		/* 1 to HISTORY_MAX */
	struct history_list		 records;	/* oldest first */
	LIST_ENTRY(history_owner)	 count_entry;	/* history_by_count[n] */
};
LIST_HEAD(history_owner_list, history_owner);

static struct history_list history_all = TAILQ_HEAD_INITIALIZER(history_all);
static size_t history_total;
static struct table history_owners;
/* Owners by how many records they hold; history_most: the highest held. */
static struct history_owner_list history_by_count[HISTORY_MAX + 1];
static size_t history_most;

static struct history_owner *
history_owner_find(uid_t uid)
{
	struct table_node *n = table_find(&history_owners, &uid, sizeof uid);

	return n == NULL ? NULL : container_of(n, struct history_owner, node);
}

/* o's count goes up or down by one; the buckets and history_most follow. */
static void
history_owner_count(struct history_owner *o, int up)
{
	if (o->n > 0)
		LIST_REMOVE(o, count_entry);
	o->n = up ? o->n + 1 : o->n - 1;
	if (o->n > 0)
		LIST_INSERT_HEAD(&history_by_count[o->n], o, count_entry);
	if (o->n > history_most)
		history_most = o->n;
	/* Down by one: at most one bucket to step over. */
	while (history_most > 0 && LIST_EMPTY(&history_by_count[history_most]))
		history_most--;
}

/* Drop o's oldest record; o is freed with its last one. */
static void
history_drop_oldest(struct history_owner *o)
{
	struct history_entry *e = TAILQ_FIRST(&o->records);

	TAILQ_REMOVE(&o->records, e, owner_entry);
	TAILQ_REMOVE(&history_all, e, all_entry);
	exit_record_unref(e->r);
	free(e);
	history_total--;
	history_owner_count(o, 0);
	if (o->n == 0) {
		table_remove(&history_owners, &o->node);
		free(o);
	}
}

/* Keep r in memory (takes a reference). -1: out of memory, logged. */
static int
history_keep(struct exit_record *r)
{
	struct history_owner *o, *most;
	struct history_entry *e;

	if ((o = history_owner_find(r->owner_uid)) == NULL) {
		if ((o = calloc(1, sizeof *o)) != NULL) {
			o->uid = r->owner_uid;	/* the key: set before hashing */
			TAILQ_INIT(&o->records);
		}
		if (o == NULL || table_insert(&history_owners, &o->node,
		    &o->uid, sizeof o->uid) == -1) {
			free(o);
			log_warnx("out of memory: the exit record of instance %"
			    PRIu64 " is not kept in history", r->id);
			return -1;
		}
	}
	if ((e = calloc(1, sizeof *e)) == NULL) {
		if (o->n == 0) {
			table_remove(&history_owners, &o->node);
			free(o);
		}
		log_warnx("out of memory: the exit record of instance %" PRIu64
		    " is not kept in history", r->id);
		return -1;
	}
	/* Its own last HISTORY_MAX first: no one else's record goes for it. */
	if (o->n == HISTORY_MAX)
		history_drop_oldest(o);
	r->refs++;
	e->r = r;
	e->owner = o;
	TAILQ_INSERT_TAIL(&o->records, e, owner_entry);
	TAILQ_INSERT_TAIL(&history_all, e, all_entry);
	history_total++;
	history_owner_count(o, 1);
	if (history_total > HISTORY_TOTAL_MAX) {
		most = o->n == history_most ? o :
		    LIST_FIRST(&history_by_count[history_most]);
		history_drop_oldest(most);
	}
	return 0;
}

/* The file holds every record memory does, oldest first, and no more. */
static void
history_rewrite(void)
{
	struct history_entry *e;

	if (history_file_rewrite_begin() == -1)
		return;
	TAILQ_FOREACH(e, &history_all, all_entry)
		history_file_rewrite_add(e->r);
	history_file_rewrite_end();
}

/*
 * Keep r (takes a reference) and append it to the file, which a restart
 * reads back. Out of memory, r is not kept (nor written); logged.
 */
void
history_add(struct exit_record *r)
{
	if (r->in_history)	/* history_run_ended's copy: it is there */
		return;
	if (history_keep(r) == -1)
		return;
	history_file_append(r);
	if (history_file_due(history_total))
		history_rewrite();
}

/*
 * A crash recovery found instance id (of this run, started at started):
 * did that run end before wardd died, its record written to history but
 * not yet to the state snapshot? A copy of its record (marked in_history,
 * so history_add does not add it again), or NULL.
 */
struct exit_record *
history_run_ended(uint64_t id, int64_t started)
{
	struct history_entry *e;
	struct exit_record *c;

	TAILQ_FOREACH_REVERSE(e, &history_all, history_list, all_entry) {
		if (e->r->id != id || e->r->started_at_ms != started)
			continue;
		if ((c = calloc(1, sizeof *c)) == NULL)
			return NULL;
		*c = *e->r;
		c->refs = 1;
		c->in_history = 1;
		c->name = e->r->name ? strdup(e->r->name) : NULL;
		c->failure_reason = e->r->failure_reason ?
		    strdup(e->r->failure_reason) : NULL;
		c->failure_info = e->r->failure_info ?
		    strdup(e->r->failure_info) : NULL;
		c->dump_dir = e->r->dump_dir ? strdup(e->r->dump_dir) : NULL;
		return c;
	}
	return NULL;
}

/* history_file_load's: a record read back (its reference is dropped). */
static void
history_load_cb(struct exit_record *r)
{
	history_keep(r);
	exit_record_unref(r);
}

/* Start-up, after statedir_init: what the last wardd kept, back in memory. */
void
history_init(void)
{
	history_file_load(history_load_cb);
}

static int
history_match(const struct exit_record *r, const char *name, uint64_t id)
{
	/* r->name is NULL when its copy found no memory (instance_finish). */
	if (name != NULL && (r->name == NULL || strcmp(r->name, name) != 0))
		return 0;
	if (id != 0 && r->id != id)
		return 0;
	return 1;
}

/*
 * The newest limit records the peer may see, oldest first: an admin's from
 * the list of all, anyone else's from its own list (so it costs them only
 * their own records).
 */
void
history_pack(msgpack_packer *pk, const struct peer *peer, const char *name,
    uint64_t id, size_t limit)
{
	struct history_owner *o = NULL;
	struct history_entry *e;
	size_t n = 0, skip;

#define HISTORY_FOREACH(e)						\
	for ((e) = peer->admin ? TAILQ_FIRST(&history_all) :		\
	    o != NULL ? TAILQ_FIRST(&o->records) : NULL; (e) != NULL;	\
	    (e) = peer->admin ? TAILQ_NEXT(e, all_entry) :			\
	    TAILQ_NEXT(e, owner_entry))
	if (!peer->admin)
		o = history_owner_find(peer->uid);
	HISTORY_FOREACH(e) {
		if (history_match(e->r, name, id))
			n++;
	}
	skip = n > limit ? n - limit : 0;
	msgpack_pack_array(pk, n - skip);
	HISTORY_FOREACH(e) {
		if (!history_match(e->r, name, id))
			continue;
		if (skip > 0) {
			skip--;
			continue;
		}
		exit_record_pack(e->r, pk, 1);
	}
#undef HISTORY_FOREACH
}

/* How many records uid holds (HISTORY_ALL: all uids together). */
size_t
history_count(uid_t uid)
{
	struct history_owner *o;

	if (uid == HISTORY_ALL)
		return history_total;
	return (o = history_owner_find(uid)) == NULL ? 0 : o->n;
}

void
history_free(void)
{
	struct history_entry *e;

	history_file_close();
	while ((e = TAILQ_FIRST(&history_all)) != NULL)
		history_drop_oldest(e->owner);
	table_free(&history_owners);
	history_most = 0;
}

/* instance.c's observer: every run's exit record is kept. */
void
history_instance_cb(struct instance *i, enum instance_event ev)
{
	if (ev == INSTANCE_EV_DIED && i->exit != NULL)
		history_add(i->exit);
}
