/*
 * cmd-events.c: events.subscribe and events.unsubscribe. The delivery
 * itself is event.c's.
 *
 * layer: commands
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ward.h"

static const struct arg_spec cmd_subscribe_args[] = {
	{ "ids", ARG_ARRAY },
	{ "types", ARG_ARRAY },
	{ NULL, 0 }
};

/*
 * Replaces any earlier subscription of the connection. Of 'ids' only those
 * of instances that exist now and that the peer may see are kept: ids are
 * never reused, so an id that does not exist now is either removed for
 * good or not yet given out (and then no one can say it will be the
 * caller's). Dropping them bounds the list by what the peer may see (1000
 * instances for a non-admin), not by what it sends, and answers the same
 * for another user's instance as for a missing one. event.c keeps the list
 * sorted, so each event costs a subscriber O(log n).
 */
static void
cmd_subscribe_exec(struct request *req)
{
	const msgpack_object *ids = req->args[0], *types = req->args[1];
	uint32_t mask = EVENT_DEFAULT_MASK, k;
	const struct instance *i;
	uint64_t *idv = NULL, *small;
	size_t nids = 0;
	char *s;
	int t;

	if (types != NULL) {
		mask = 0;
		for (k = 0; k < types->via.array.size; k++) {
			s = NULL;
			t = -1;
			if (codec_is_str(&types->via.array.ptr[k]) &&
			    (s = codec_strdup(&types->via.array.ptr[k])) != NULL)
				t = event_type_parse(s);
			free(s);
			if (t == -1) {
				cmd_error(req, WARD_E_INVALID_ARGUMENT, "'types' "
				    "holds created, started, payload, metrics, "
				    "died or removed");
				return;
			}
			mask |= 1U << t;
		}
	}
	if (ids != NULL) {
		if (ids->via.array.size > EVENT_IDS_MAX) {
			cmd_error(req, WARD_E_TOO_LARGE, "'ids' holds more than %d "
			    "ids", EVENT_IDS_MAX);
			return;
		}
		for (k = 0; k < ids->via.array.size; k++) {
			if (ids->via.array.ptr[k].type !=
			    MSGPACK_OBJECT_POSITIVE_INTEGER) {
				cmd_error(req, WARD_E_INVALID_ARGUMENT,
				    "'ids' must be an array of instance ids");
				return;
			}
		}
		/* One more than needed: an empty list is not NULL (all). */
		if ((idv = calloc(ids->via.array.size + 1, sizeof *idv)) == NULL) {
			cmd_error(req, WARD_E_INTERNAL, "out of memory");
			return;
		}
		for (k = 0; k < ids->via.array.size; k++) {
			i = instance_find_id(ids->via.array.ptr[k].via.u64);
			if (i != NULL && peer_may(&req->c->peer, PEER_SEE, i->owner_uid))
				idv[nids++] = i->id;
		}
		/* Hold only what is kept (a shrinking realloc may still fail). */
		if ((small = realloc(idv, (nids + 1) * sizeof *idv)) != NULL)
			idv = small;
	}
	if (event_subscribe(req->c, mask, idv, nids) == -1) {
		cmd_error(req, WARD_E_INTERNAL, "out of memory");
		return;
	}
	cmd_ok(req);
}

const struct cmd_entry cmd_subscribe_entry = {
	.name = WARD_M_SUBSCRIBE,
	.args = cmd_subscribe_args,
	.flags = 0,
	.exec = cmd_subscribe_exec,
};

static const struct arg_spec cmd_unsubscribe_args[] = { { NULL, 0 } };

static void
cmd_unsubscribe_exec(struct request *req)
{
	event_unsubscribe(req->c);
	cmd_ok(req);
}

const struct cmd_entry cmd_unsubscribe_entry = {
	.name = WARD_M_UNSUBSCRIBE,
	.args = cmd_unsubscribe_args,
	.flags = 0,
	.exec = cmd_unsubscribe_exec,
};
