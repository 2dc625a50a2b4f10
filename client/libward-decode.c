/*
 * libward-decode.c: wardd's results and events (msgpack maps) into the
 * structs of ward.h, and the functions that free those structs. A
 * missing or mistyped key reads as zero or NULL, never as an error. Calls
 * nothing of libward's other files; they call its helpers (libward-int.h).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
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
	x->run = ward_get_u64(m, "run");
	x->killed_by = ward_dup_str(ward_map_get(m, "killed_by"));
	o = ward_map_get(m, "killed_by_uid");
	if (o != NULL && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		x->has_killed_by_uid = 1;
		x->killed_by_uid = o->via.u64;
	}
	o = ward_map_get(m, "post_death");
	x->post_death = ward_dup_str(ward_map_get(o, "result"));
	x->post_death_code = ward_get_i64(o, "exit_code");
	x->post_death_signal = ward_get_u64(o, "exit_signal");
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

/* instance.status's limits map as "KEY=VALUE" strings; NULL if none. */
static char **
ward_decode_limits(const msgpack_object *m)
{
	const msgpack_object_kv *kv;
	char **v, num[24];
	uint32_t i, n = 0;

	if (m == NULL || m->type != MSGPACK_OBJECT_MAP || m->via.map.size == 0 ||
	    (v = calloc(m->via.map.size + 1, sizeof *v)) == NULL)
		return NULL;
	for (i = 0; i < m->via.map.size; i++) {
		kv = &m->via.map.ptr[i];
		if (kv->key.type != MSGPACK_OBJECT_STR)
			continue;
		if (kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
			snprintf(num, sizeof num, "%llu",
			    (unsigned long long)kv->val.via.u64);
		else if (kv->val.type != MSGPACK_OBJECT_STR)
			continue;
		if ((v[n] = malloc(kv->key.via.str.size + 1 + sizeof num +
		    (kv->val.type == MSGPACK_OBJECT_STR ?
		    kv->val.via.str.size : 0))) == NULL)
			break;
		if (kv->val.type == MSGPACK_OBJECT_STR)
			sprintf(v[n], "%.*s=%.*s", (int)kv->key.via.str.size,
			    kv->key.via.str.ptr, (int)kv->val.via.str.size,
			    kv->val.via.str.ptr);
		else
			sprintf(v[n], "%.*s=%s", (int)kv->key.via.str.size,
			    kv->key.via.str.ptr, num);
		n++;
	}
	return v;
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
	s->limits = ward_decode_limits(ward_map_get(m, "limits"));
	if (ward_map_get(m, "death_reason") != NULL) {
		s->has_exit = 1;
		ward_exit_decode(m, &s->exit);
		s->exit.started_at_ms = s->started_at_ms;
	}
}

/*
 * instance.list's compact form ({fields, rows}) read back one row at a
 * time as the status map it stands for, so ward_status_decode reads both
 * forms: a column "p.k" becomes key k of a nested map p (columns of one
 * map are adjacent), and a nil value is left out, as the plain form
 * leaves out the exit record of a live instance and the program of an
 * instance that runs none. The map points into the reply and the scratch
 * arrays of struct ward_rows; it lives until the next row.
 */
struct ward_rows {
	const msgpack_object	*fields;	/* the names, all strings */
	msgpack_object_kv	*top, *inner;	/* a row's map, its nested maps */
	msgpack_object		*keys;		/* each column's key */
};

static int
ward_rows_init(struct ward_rows *r, const msgpack_object *fields)
{
	uint32_t k, n = fields->via.array.size;
	const char *dot;

	memset(r, 0, sizeof *r);
	r->fields = fields;
	r->top = calloc(n + 1, sizeof *r->top);
	r->inner = calloc(n + 1, sizeof *r->inner);
	r->keys = calloc(n + 1, sizeof *r->keys);
	if (r->top == NULL || r->inner == NULL || r->keys == NULL)
		return -1;
	for (k = 0; k < n; k++) {
		const msgpack_object *f = &fields->via.array.ptr[k];

		if (f->type != MSGPACK_OBJECT_STR)
			return -1;
		/* The key: what follows the dot, if any. */
		r->keys[k] = *f;
		dot = memchr(f->via.str.ptr, '.', f->via.str.size);
		if (dot != NULL) {
			r->keys[k].via.str.ptr = dot + 1;
			r->keys[k].via.str.size -= dot + 1 - f->via.str.ptr;
		}
	}
	return 0;
}

static void
ward_rows_free(struct ward_rows *r)
{
	free(r->top);
	free(r->inner);
	free(r->keys);
}

/* The length of the prefix of field k ("metrics" of "metrics.rss_kb"), or 0. */
static size_t
ward_rows_prefix(const struct ward_rows *r, uint32_t k)
{
	const char *name = r->fields->via.array.ptr[k].via.str.ptr;

	return r->keys[k].via.str.ptr == name ? 0 :
	    (size_t)(r->keys[k].via.str.ptr - 1 - name);
}

/* Row v as a status map into m. */
static void
ward_rows_map(struct ward_rows *r, const msgpack_object *v, msgpack_object *m)
{
	const msgpack_object *f = r->fields->via.array.ptr;
	uint32_t k, j, n = r->fields->via.array.size, ntop = 0, ninner = 0;
	size_t plen;

	if (v->via.array.size < n)
		n = v->via.array.size;
	for (k = 0; k < n; k = j) {
		plen = ward_rows_prefix(r, k);
		if (plen == 0) {
			j = k + 1;
			if (v->via.array.ptr[k].type == MSGPACK_OBJECT_NIL)
				continue;
			r->top[ntop].key = r->keys[k];
			r->top[ntop++].val = v->via.array.ptr[k];
			continue;
		}
		/* A nested map: the adjacent columns of the same prefix. */
		r->top[ntop].key = f[k];
		r->top[ntop].key.via.str.size = plen;
		r->top[ntop].val.type = MSGPACK_OBJECT_MAP;
		r->top[ntop].val.via.map.ptr = r->inner + ninner;
		r->top[ntop].val.via.map.size = 0;
		for (j = k; j < n && ward_rows_prefix(r, j) == plen &&
		    memcmp(f[j].via.str.ptr, f[k].via.str.ptr, plen) == 0; j++) {
			if (v->via.array.ptr[j].type == MSGPACK_OBJECT_NIL)
				continue;
			r->inner[ninner].key = r->keys[j];
			r->inner[ninner++].val = v->via.array.ptr[j];
			r->top[ntop].val.via.map.size++;
		}
		if (r->top[ntop].val.via.map.size > 0)
			ntop++;
	}
	m->type = MSGPACK_OBJECT_MAP;
	m->via.map.ptr = r->top;
	m->via.map.size = ntop;
}

/*
 * An instance.list result, either form (an array of status maps, or the
 * compact {fields, rows}), into a new array of n statuses (NULL when none);
 * free it with ward_status_list_free. -1: out of memory.
 */
WARD_EXPORT int
ward_status_list_decode(const msgpack_object *res, struct ward_status **out,
    size_t *n)
{
	const msgpack_object *fields = ward_map_get(res, "fields");
	const msgpack_object *rows = ward_map_get(res, "rows");
	struct ward_rows r;
	msgpack_object m;
	uint32_t i;

	memset(&r, 0, sizeof r);
	*out = NULL;
	*n = 0;
	if (res == NULL)
		return 0;
	if (res->type == MSGPACK_OBJECT_ARRAY)
		rows = res;
	else if (rows == NULL || rows->type != MSGPACK_OBJECT_ARRAY ||
	    fields == NULL || fields->type != MSGPACK_OBJECT_ARRAY)
		return 0;
	if (rows->via.array.size == 0)
		return 0;
	if ((*out = calloc(rows->via.array.size, sizeof **out)) == NULL)
		return -1;
	if (rows != res && ward_rows_init(&r, fields) == -1) {
		ward_rows_free(&r);
		free(*out);
		*out = NULL;
		return -1;
	}
	for (i = 0; i < rows->via.array.size; i++) {
		const msgpack_object *v = &rows->via.array.ptr[i];

		if (rows == res)
			ward_status_decode(v, &(*out)[i]);
		else if (v->type == MSGPACK_OBJECT_ARRAY) {
			ward_rows_map(&r, v, &m);
			ward_status_decode(&m, &(*out)[i]);
		}
	}
	*n = rows->via.array.size;
	if (rows != res)
		ward_rows_free(&r);
	return 0;
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
	free(x->killed_by);
	free(x->post_death);
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
	ward_strv_free(s->limits);
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
	ev->suspended = ward_get_bool(m, "suspended");
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
