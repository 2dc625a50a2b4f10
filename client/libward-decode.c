/*
 * libward-decode.c: wardd's results and events (msgpack maps) into the
 * structs of ward.h, and the functions that free those structs. A
 * missing or mistyped key reads as zero or NULL, never as an error. Calls
 * nothing of libward's other files; they call its helpers (libward-int.h).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ward.h"
#include "ward-proto.h"
#include "libward-int.h"

WARD_EXPORT const msgpack_object *
ward_map_get(const msgpack_object *map, const char *key)
{
	size_t n = strlen(key);
	uint32_t i;

	if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (i = 0; i < map->via.map.size; i++) {
		const msgpack_object *k = &map->via.map.ptr[i].key;

		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
		    memcmp(k->via.str.ptr, key, n) == 0)
			return &map->via.map.ptr[i].val;
	}
	return NULL;
}

/* A string into a fixed buffer, cut to fit; "" if o is not a string. */
void
ward_copy_str(char *dst, size_t len, const msgpack_object *o)
{
	size_t n;

	dst[0] = '\0';
	if (o == NULL || o->type != MSGPACK_OBJECT_STR)
		return;
	n = o->via.str.size < len - 1 ? o->via.str.size : len - 1;
	memcpy(dst, o->via.str.ptr, n);
	dst[n] = '\0';
}

/* A copy of a string (or bin) to free; NULL if o is none or no memory. */
char *
ward_dup_str(const msgpack_object *o)
{
	char *s;

	if (o == NULL || (o->type != MSGPACK_OBJECT_STR &&
	    o->type != MSGPACK_OBJECT_BIN))
		return NULL;
	if ((s = malloc(o->via.str.size + 1)) == NULL)
		return NULL;
	memcpy(s, o->via.str.ptr, o->via.str.size);
	s[o->via.str.size] = '\0';
	return s;
}

/* m[key] as a number of that type, or 0 (ward_get_bool: false). */
uint64_t
ward_get_u64(const msgpack_object *m, const char *key)
{
	const msgpack_object *o = ward_map_get(m, key);

	if (o != NULL && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		return o->via.u64;
	return 0;
}

int64_t
ward_get_i64(const msgpack_object *m, const char *key)
{
	const msgpack_object *o = ward_map_get(m, key);

	if (o != NULL && (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER))
		return o->via.i64;
	return 0;
}

int
ward_get_bool(const msgpack_object *m, const char *key)
{
	const msgpack_object *o = ward_map_get(m, key);

	return o != NULL && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean;
}

static void
ward_decode_metrics(const msgpack_object *m, struct ward_metrics *out)
{
	const msgpack_object *p = ward_map_get(m, "cpu_percent");

	memset(out, 0, sizeof *out);
	out->cpu_user_ms = ward_get_u64(m, "cpu_user_ms");
	out->cpu_system_ms = ward_get_u64(m, "cpu_system_ms");
	out->cpu_guest_ms = ward_get_u64(m, "cpu_guest_ms");
	if (p != NULL && (p->type == MSGPACK_OBJECT_FLOAT64 ||
	    p->type == MSGPACK_OBJECT_FLOAT32))
		out->cpu_percent = p->via.f64;
	out->rss_kb = ward_get_u64(m, "rss_kb");
	out->rss_max_kb = ward_get_u64(m, "rss_max_kb");
	out->pss_kb = ward_get_u64(m, "pss_kb");
	out->rss_mapping_kb = ward_get_u64(m, "rss_mapping_kb");
	out->rss_mapping_max_kb = ward_get_u64(m, "rss_mapping_max_kb");
}

WARD_EXPORT void
ward_exit_decode(const msgpack_object *m, struct ward_exit *x)
{
	const msgpack_object *o;

	memset(x, 0, sizeof *x);
	x->id = ward_get_u64(m, "id");
	x->name = ward_dup_str(ward_map_get(m, "name"));
	x->owner_uid = ward_get_u64(m, "owner_uid");
	x->state = ward_dup_str(ward_map_get(m, "state"));
	x->death_reason = ward_dup_str(ward_map_get(m, "death_reason"));
	o = ward_map_get(m, "exit_code");
	if (o != NULL && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		x->has_exit_code = 1;
		x->exit_code = o->via.u64;
	}
	x->exit_signal = ward_get_u64(m, "exit_signal");
	x->signal_name = ward_dup_str(ward_map_get(m, "signal_name"));
	x->core_dumped = ward_get_bool(m, "core_dumped");
	x->failure_reason = ward_dup_str(ward_map_get(m, "failure_reason"));
	x->failure_info = ward_dup_str(ward_map_get(m, "failure_info"));
	x->failure_discarded = ward_get_u64(m, "failure_discarded");
	x->dump_dir = ward_dup_str(ward_map_get(m, "dump_dir"));
	x->started_at_ms = ward_get_i64(m, "started_at_ms");
	x->died_at_ms = ward_get_i64(m, "died_at_ms");
	x->uptime_ms = ward_get_u64(m, "uptime_ms");
	ward_decode_metrics(ward_map_get(m, "metrics"), &x->metrics);
}

/* An array of strings as a NULL-terminated copy; NULL if not an array. */
static char **
ward_dup_strv(const msgpack_object *o)
{
	char **v;
	uint32_t i;

	if (o == NULL || o->type != MSGPACK_OBJECT_ARRAY ||
	    (v = calloc(o->via.array.size + 1, sizeof *v)) == NULL)
		return NULL;
	for (i = 0; i < o->via.array.size; i++)
		v[i] = ward_dup_str(&o->via.array.ptr[i]);
	return v;
}

static void
ward_strv_free(char **v)
{
	char **p;

	for (p = v; p != NULL && *p != NULL; p++)
		free(*p);
	free(v);
}

WARD_EXPORT void
ward_status_decode(const msgpack_object *m, struct ward_status *s)
{
	memset(s, 0, sizeof *s);
	s->id = ward_get_u64(m, "id");
	s->name = ward_dup_str(ward_map_get(m, "name"));
	s->state = ward_dup_str(ward_map_get(m, "state"));
	s->payload_state = ward_dup_str(ward_map_get(m, "payload_state"));
	s->status_text = ward_dup_str(ward_map_get(m, "status_text"));
	s->pid = ward_get_i64(m, "pid");
	s->argv = ward_dup_strv(ward_map_get(m, "argv"));
	s->owner_uid = ward_get_u64(m, "owner_uid");
	s->requester_pid = ward_get_i64(m, "requester_pid");
	s->created_at_ms = ward_get_i64(m, "created_at_ms");
	s->started_at_ms = ward_get_i64(m, "started_at_ms");
	s->uptime_ms = ward_get_u64(m, "uptime_ms");
	s->suspended = ward_get_bool(m, "suspended");
	ward_decode_metrics(ward_map_get(m, "metrics"), &s->metrics);
	s->program_state = ward_dup_str(ward_map_get(ward_map_get(m, "program"),
	    "state"));
	if (ward_map_get(m, "death_reason") != NULL) {
		s->has_exit = 1;
		ward_exit_decode(m, &s->exit);
		s->exit.started_at_ms = s->started_at_ms;
	}
}

WARD_EXPORT void
ward_exit_free(struct ward_exit *x)
{
	if (x == NULL)
		return;
	free(x->name);
	free(x->state);
	free(x->death_reason);
	free(x->signal_name);
	free(x->failure_reason);
	free(x->failure_info);
	free(x->dump_dir);
	memset(x, 0, sizeof *x);
}

WARD_EXPORT void
ward_status_free(struct ward_status *s)
{
	if (s == NULL)
		return;
	free(s->name);
	free(s->state);
	free(s->payload_state);
	free(s->status_text);
	free(s->program_state);
	ward_strv_free(s->argv);
	ward_exit_free(&s->exit);
	memset(s, 0, sizeof *s);
}

WARD_EXPORT void
ward_status_list_free(struct ward_status *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		ward_status_free(&v[i]);
	free(v);
}

WARD_EXPORT void
ward_exit_list_free(struct ward_exit *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		ward_exit_free(&v[i]);
	free(v);
}

/* [2, "ward.event", [EVENT]] into ev; 0, or -1 when it is not an event. */
WARD_EXPORT int
ward_event_decode(const msgpack_object *o, struct ward_event *ev)
{
	const msgpack_object *a, *m, *x;

	memset(ev, 0, sizeof *ev);
	if (!ward_is_event(o))
		return -1;
	a = o->via.array.ptr;
	m = &a[2].via.array.ptr[0];
	ward_copy_str(ev->type, sizeof ev->type, ward_map_get(m, "type"));
	ev->time_ms = ward_get_i64(m, "time_ms");
	ev->id = ward_get_u64(m, "id");
	ev->name = ward_dup_str(ward_map_get(m, "name"));
	ev->state = ward_dup_str(ward_map_get(m, "state"));
	ev->pid = ward_get_i64(m, "pid");
	ev->payload_state = ward_dup_str(ward_map_get(m, "payload_state"));
	ev->status_text = ward_dup_str(ward_map_get(m, "status_text"));
	ev->message = ward_dup_str(ward_map_get(m, "message"));
	ward_decode_metrics(ward_map_get(m, "metrics"), &ev->metrics);
	if ((x = ward_map_get(m, "exit")) != NULL && x->type == MSGPACK_OBJECT_MAP) {
		ev->has_exit = 1;
		ward_exit_decode(x, &ev->exit);
	}
	return 0;
}

WARD_EXPORT void
ward_event_free(struct ward_event *ev)
{
	free(ev->name);
	free(ev->state);
	free(ev->payload_state);
	free(ev->status_text);
	free(ev->message);
	ward_exit_free(&ev->exit);
	memset(ev, 0, sizeof *ev);
}

/* [2, "ward.event", [MAP]]: an event, rather than another notification. */
int
ward_is_event(const msgpack_object *o)
{
	const msgpack_object *a = o->via.array.ptr;

	return o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 3 &&
	    a[1].type == MSGPACK_OBJECT_STR &&
	    a[1].via.str.size == strlen(WARD_N_EVENT) &&
	    memcmp(a[1].via.str.ptr, WARD_N_EVENT, a[1].via.str.size) == 0 &&
	    a[2].type == MSGPACK_OBJECT_ARRAY && a[2].via.array.size == 1 &&
	    a[2].via.array.ptr[0].type == MSGPACK_OBJECT_MAP;
}

/*
 * {added, changed, removed, errors, warnings} into ch, each list there: an
 * absent one (an older wardd's warnings) is an empty one. -1 only when out
 * of memory, ch then empty.
 */
int
ward_changes_decode(const msgpack_object *m, struct ward_changes *ch)
{
	static const char *const keys[] = { "added", "changed", "removed",
	    "errors", "warnings" };
	char ***lists[] = { &ch->added, &ch->changed, &ch->removed,
	    &ch->errors, &ch->warnings };
	size_t k;

	memset(ch, 0, sizeof *ch);
	for (k = 0; k < sizeof keys / sizeof keys[0]; k++) {
		char **v = ward_dup_strv(ward_map_get(m, keys[k]));

		if (v == NULL)
			v = calloc(1, sizeof *v);
		*lists[k] = v;
	}
	if (ch->added == NULL || ch->changed == NULL || ch->removed == NULL ||
	    ch->errors == NULL || ch->warnings == NULL) {
		ward_changes_free(ch);
		return -1;
	}
	return 0;
}

WARD_EXPORT void
ward_changes_free(struct ward_changes *ch)
{
	if (ch == NULL)
		return;
	ward_strv_free(ch->added);
	ward_strv_free(ch->changed);
	ward_strv_free(ch->removed);
	ward_strv_free(ch->errors);
	ward_strv_free(ch->warnings);
	memset(ch, 0, sizeof *ch);
}

WARD_EXPORT void
ward_log_free(struct ward_log *log)
{
	if (log == NULL)
		return;
	free(log->data);
	memset(log, 0, sizeof *log);
}
