/*
 * event.c: notifications to subscribed connections. An event is packed once
 * and copied into each interested subscriber's output buffer. Nobody is
 * waited for: a subscriber whose buffer passes the cap gets a last
 * "overflow" event and is dropped. Each event costs O(subscribers), and a
 * subscriber with an id list O(log n) more (kept sorted).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ward.h"

struct conn_list subscribers = TAILQ_HEAD_INITIALIZER(subscribers);
unsigned event_metrics_subscribers;

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
		event_pack_head(&pk, event_names[t], 5);
		codec_pack_kv_str(&pk, "payload_state",
		    payload_state_name(i->payload));
		codec_pack_kv_str(&pk, "status_text", i->status_text);
		break;
	case EVENT_METRICS:
		event_pack_head(&pk, event_names[t], 4);
		codec_pack_key(&pk, "metrics");
		metrics_pack(&i->metrics, &pk);
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
	codec_pack_kv_str(&pk, "name", i->cfg.name);
	codec_pack_kv_str(&pk, "state", instance_state_name(i->state));
}

/* Is id in c's subscription list (sorted, no duplicates)? O(log n). */
static int
event_has_id(const struct conn *c, uint64_t id)
{
	size_t lo = 0, hi = c->sub_nids, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (c->sub_ids[mid] == id)
			return 1;
		if (c->sub_ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static int
event_wanted(const struct conn *c, enum event_type t, const struct instance *i)
{
	if (!(c->sub_types & (1U << t)) || !cmd_may_see(c, i))
		return 0;
	return c->sub_ids == NULL || event_has_id(c, i->id);
}

/* The subscriber fell a whole buffer behind: tell it, then let it go. */
static void
event_overflow(struct conn *c)
{
	struct buf b = { 0 };
	msgpack_packer pk;

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
	struct conn *c, *next;
	struct buf b = { 0 };

	if (TAILQ_EMPTY(&subscribers))
		return;
	TAILQ_FOREACH_SAFE(c, &subscribers, sub_entry, next) {
		if (!event_wanted(c, t, i))
			continue;
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

static int
event_id_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Replace c's subscription; ids (owned from now on) NULL means all. The
 * caller has bounded the list (cmd-events.c keeps only ids the peer may
 * see); here it is sorted and made unique, for event_has_id.
 */
void
event_subscribe(struct conn *c, uint32_t types, uint64_t *ids, size_t nids)
{
	size_t k, n = 0;

	if (nids > 1) {
		qsort(ids, nids, sizeof *ids, event_id_cmp);
		for (k = 0; k < nids; k++) {
			if (n == 0 || ids[k] != ids[n - 1])
				ids[n++] = ids[k];
		}
		nids = n;
	}
	event_unsubscribe(c);
	c->subscribed = 1;
	c->sub_types = types;
	c->sub_ids = ids;
	c->sub_nids = nids;
	if (types & (1U << EVENT_METRICS))
		event_metrics_subscribers++;
	TAILQ_INSERT_TAIL(&subscribers, c, sub_entry);
}

void
event_unsubscribe(struct conn *c)
{
	if (!c->subscribed)
		return;
	if (c->sub_types & (1U << EVENT_METRICS))
		event_metrics_subscribers--;
	TAILQ_REMOVE(&subscribers, c, sub_entry);
	free(c->sub_ids);
	c->sub_ids = NULL;
	c->sub_nids = 0;
	c->subscribed = 0;
}
