/*
 * event.c: notifications to subscribed connections. An event is packed once
 * and copied into each interested subscriber's output buffer. Nobody is
 * waited for: a subscriber whose buffer passes the cap gets a last
 * "overflow" event and is dropped. Each event costs O(subscribers), and a
 * subscriber with an id list O(log n) more (kept sorted).
 *
 * A subscription is an event_sub attached to its conn (conn_attach): it is
 * freed when the conn goes, through event_sub_detach_cb.
 *
 * layer: engine (observes instances; writes to conns below it)
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ward.h"

/* One connection's subscription, attached to it. */
struct event_sub {
	struct conn_attachment	 att;		/* on c; first member */
	struct conn		*c;
	uint32_t		 types;		/* bit per enum event_type */
	uint64_t		*ids;		/* NULL: every instance it may see */
	size_t			 nids;
	TAILQ_ENTRY(event_sub)	 entry;
};

static TAILQ_HEAD(, event_sub) event_subs = TAILQ_HEAD_INITIALIZER(event_subs);
unsigned event_metrics_subscribers;
unsigned event_subscribers;

static void	event_sub_detach_cb(struct conn *, struct conn_attachment *);

static const char *const event_names[] = {
	[EVENT_CREATED] = WARD_EV_CREATED,
	[EVENT_STARTED] = WARD_EV_STARTED,
	[EVENT_PAYLOAD] = WARD_EV_PAYLOAD,
	[EVENT_METRICS] = WARD_EV_METRICS,
	[EVENT_DIED] = WARD_EV_DIED,
	[EVENT_REMOVED] = WARD_EV_REMOVED,
	[EVENT_RESTARTING] = WARD_EV_RESTARTING,
	[EVENT_FATAL] = WARD_EV_FATAL,
};

int
event_type_parse(const char *s)
{
	int t;

	for (t = 0; t < EVENT_COUNT; t++) {
		if (strcmp(s, event_names[t]) == 0)
			return t;
	}
	return -1;
}

static void
event_pack_head(msgpack_packer *pk, const char *type, size_t fields)
{
	msgpack_pack_array(pk, 3);
	msgpack_pack_int(pk, WARD_MSG_NOTIFY);
	codec_pack_str(pk, WARD_N_EVENT);
	msgpack_pack_array(pk, 1);
	msgpack_pack_map(pk, fields + 2);
	codec_pack_kv_str(pk, "type", type);
	codec_pack_kv_int(pk, "time_ms", now_wall_ms());
}

/* Pack the event for instance i into b: [2, "ward.event", [{...}]]. */
static void
event_pack(struct buf *b, enum event_type t, const struct instance *i)
{
	msgpack_packer pk;

	msgpack_packer_init(&pk, b, codec_sbuffer_write);
	switch (t) {
	case EVENT_STARTED:
		event_pack_head(&pk, event_names[t], 4);
		codec_pack_kv_int(&pk, "pid", i->pid);
		break;
	case EVENT_PAYLOAD:
		event_pack_head(&pk, event_names[t], 6);
		codec_pack_kv_str(&pk, "payload_state",
		    payload_state_name(i->payload));
		codec_pack_kv_str(&pk, "status_text", INSTANCE_STATUS_TEXT(i));
		codec_pack_kv_bool(&pk, "suspended", i->suspended);
		break;
	case EVENT_METRICS:
		event_pack_head(&pk, event_names[t], 5);
		codec_pack_key(&pk, "metrics");
		metrics_pack(&i->metrics, &pk);
		codec_pack_kv_bool(&pk, "suspended", i->suspended);
		break;
	case EVENT_DIED:
		event_pack_head(&pk, event_names[t], 4);
		codec_pack_key(&pk, "exit");
		exit_record_pack(i->exit, &pk, 1);
		break;
	case EVENT_RESTARTING:
		event_pack_head(&pk, event_names[t], 5);
		codec_pack_kv_uint(&pk, "attempt", i->program->attempt);
		codec_pack_kv_uint(&pk, "delay_ms", (uint64_t)(ev_timer_remaining(
		    ward_loop, &i->program->backoff_t) * 1000 + 0.5));
		break;
	case EVENT_FATAL:
		event_pack_head(&pk, event_names[t], 4);
		codec_pack_kv_str(&pk, "reason", i->program->fatal_reason);
		break;
	default:
		event_pack_head(&pk, event_names[t], 3);
		break;
	}
	codec_pack_kv_uint(&pk, "id", i->id);
	codec_pack_kv_str(&pk, "name", i->spec.name);
	codec_pack_kv_str(&pk, "state", instance_state_name(i->state));
}

/* Is id in the subscription's list (sorted, no duplicates)? O(log n). */
static int
event_has_id(const struct event_sub *es, uint64_t id)
{
	size_t lo = 0, hi = es->nids, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (es->ids[mid] == id)
			return 1;
		if (es->ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static int
event_wanted(const struct event_sub *es, enum event_type t,
    const struct instance *i)
{
	if (!(es->types & (1U << t)) ||
	    !peer_may(&es->c->peer, PEER_SEE, i->owner_uid))
		return 0;
	return es->ids == NULL || event_has_id(es, i->id);
}

uint64_t event_overflows;	/* subscribers dropped (openmetrics.c) */

/* The subscriber fell a whole buffer behind: tell it, then let it go. */
static void
event_overflow(struct conn *c)
{
	struct buf b = { 0 };
	msgpack_packer pk;

	event_overflows++;
	msgpack_packer_init(&pk, &b, codec_sbuffer_write);
	event_pack_head(&pk, WARD_EV_OVERFLOW, 1);
	codec_pack_kv_str(&pk, "message", "this subscriber did not read its "
	    "events and fell more than the output cap behind; it is dropped");
	event_unsubscribe(c);
	conn_queue(c, b.data, b.len);
	buf_free(&b);
	conn_close_after_flush(c);
}

void
event_emit(enum event_type t, const struct instance *i)
{
	struct event_sub *es, *next;
	struct buf b = { 0 };
	struct conn *c;

	if (TAILQ_EMPTY(&event_subs))
		return;
	TAILQ_FOREACH_SAFE(es, &event_subs, entry, next) {
		if (!event_wanted(es, t, i))
			continue;
		c = es->c;	/* es may be freed below (event_overflow) */
		if (b.data == NULL) {
			event_pack(&b, t, i);
			if (b.data == NULL)
				return;	/* out of memory: the event is lost */
		}
		if (buf_used(&c->out) + b.len > CONN_OUT_CAP) {
			event_overflow(c);
			continue;
		}
		conn_queue(c, b.data, b.len);
		conn_flush(c);
	}
	buf_free(&b);
}

/* instance.c's observer: the instance events subscribers can ask for. */
void
event_instance_cb(struct instance *i, enum instance_event ev)
{
	static const int types[] = {
		[INSTANCE_EV_CREATED] = EVENT_CREATED,
		[INSTANCE_EV_STARTED] = EVENT_STARTED,
		[INSTANCE_EV_PAYLOAD] = EVENT_PAYLOAD,
		[INSTANCE_EV_STATUS] = EVENT_PAYLOAD,
		[INSTANCE_EV_METRICS] = EVENT_METRICS,
		[INSTANCE_EV_EXITING] = -1,
		[INSTANCE_EV_STOPPED] = -1,
		[INSTANCE_EV_DIED] = EVENT_DIED,
		[INSTANCE_EV_REMOVED] = EVENT_REMOVED,
		[INSTANCE_EV_RESTORED] = -1,	/* nothing happened to it */
		[INSTANCE_EV_SUSPEND] = EVENT_PAYLOAD,	/* with suspended */
	};

	if (types[ev] != -1)
		event_emit(types[ev], i);
}

static int
event_id_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The subscription c holds, or NULL. */
static struct event_sub *
event_sub_of(struct conn *c)
{
	return (struct event_sub *)conn_attachment_next(c, NULL,
	    event_sub_detach_cb);
}

static void
event_sub_free(struct event_sub *es)
{
	if (es->types & (1U << EVENT_METRICS))
		event_metrics_subscribers--;
	event_subscribers--;
	TAILQ_REMOVE(&event_subs, es, entry);
	free(es->ids);
	free(es);
}

/* c is going away (conn_lost took es off it already). */
static void
event_sub_detach_cb(struct conn *c, struct conn_attachment *a)
{
	event_sub_free((struct event_sub *)a);
}

/*
 * Replace c's subscription; ids (owned from now on) NULL means all. The
 * caller has bounded the list (cmd-events.c keeps only ids the peer may
 * see); here it is sorted and made unique, for event_has_id. -1 with
 * errno ENOMEM (ids freed, the old subscription kept).
 */
int
event_subscribe(struct conn *c, uint32_t types, uint64_t *ids, size_t nids)
{
	struct event_sub *es;
	size_t k, n = 0;

	if ((es = calloc(1, sizeof *es)) == NULL) {
		free(ids);
		errno = ENOMEM;
		return -1;
	}
	if (nids > 1) {
		qsort(ids, nids, sizeof *ids, event_id_cmp);
		for (k = 0; k < nids; k++) {
			if (n == 0 || ids[k] != ids[n - 1])
				ids[n++] = ids[k];
		}
		nids = n;
	}
	event_unsubscribe(c);
	es->c = c;
	es->types = types;
	es->ids = ids;
	es->nids = nids;
	if (types & (1U << EVENT_METRICS))
		event_metrics_subscribers++;
	event_subscribers++;
	TAILQ_INSERT_TAIL(&event_subs, es, entry);
	conn_attach(c, &es->att, event_sub_detach_cb);
	return 0;
}

void
event_unsubscribe(struct conn *c)
{
	struct event_sub *es;

	if ((es = event_sub_of(c)) == NULL)
		return;
	conn_detach(c, &es->att);
	event_sub_free(es);
}

/* ---- across a re-exec (reexec.c) */

/* Every subscription: its conn's fd, its types and its ids (nil: all). */
void
event_save(msgpack_packer *pk)
{
	struct event_sub *es;
	size_t k;

	msgpack_pack_array(pk, event_subscribers);
	TAILQ_FOREACH(es, &event_subs, entry) {
		msgpack_pack_map(pk, 3);
		codec_pack_kv_int(pk, "fd", es->c->fd);
		codec_pack_kv_uint(pk, "types", es->types);
		codec_pack_key(pk, "ids");
		if (es->ids == NULL) {
			msgpack_pack_nil(pk);
			continue;
		}
		msgpack_pack_array(pk, es->nids);
		for (k = 0; k < es->nids; k++)
			msgpack_pack_uint64(pk, es->ids[k]);
	}
}

/* Subscribe the restored conns again, as they were (a[0..n)). */
void
event_restore(const msgpack_object *a, size_t n)
{
	const msgpack_object *ids;
	uint64_t *v;
	struct conn *c;
	size_t j, k, nids;

	for (j = 0; j < n; j++) {
		if ((c = conn_find_fd(state_i64(&a[j], "fd", -1))) == NULL)
			continue;
		v = NULL;
		ids = state_array(&a[j], "ids", &nids);
		/* An empty list is not "all": it is a list. */
		if (state_get(&a[j], "ids") != NULL &&
		    state_get(&a[j], "ids")->type == MSGPACK_OBJECT_ARRAY &&
		    nids <= EVENT_IDS_MAX &&
		    (v = calloc(nids + 1, sizeof *v)) != NULL) {
			for (k = 0; k < nids; k++)
				v[k] = ids[k].via.u64;
		} else
			nids = 0;
		if (event_subscribe(c, state_u64(&a[j], "types",
		    EVENT_DEFAULT_MASK) & ((1U << EVENT_COUNT) - 1), v, nids) == -1)
			log_warnx("state: fd %d's subscription is lost", c->fd);
	}
}
