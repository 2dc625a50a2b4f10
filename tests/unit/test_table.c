/*
 * test_table.c: the intrusive hash table behind lookups by id and by name,
 * through many growths, with integer and string keys.
 */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ward.h"
#include "unit.h"

struct wardd_opts opts;

#define NITEMS	20000

/* Like an instance: one node per key, the keys inside the object. */
struct item {
	uint64_t		 id;
	char			 name[32];
	struct table_node	 by_id;
	struct table_node	 by_name;
};

#define item_of(n, field) \
	((struct item *)((char *)(n) - offsetof(struct item, field)))

static struct item *
items_new(void)
{
	struct item *items = calloc(NITEMS, sizeof *items);
	int i;

	ck_assert_ptr_nonnull(items);
	for (i = 0; i < NITEMS; i++) {
		/* Spread out, as ids would not be if they were only 0..N. */
		items[i].id = (uint64_t)i * 0x9e3779b97f4a7c15ULL + 1;
		snprintf(items[i].name, sizeof items[i].name, "vm-%d", i);
	}
	return items;
}

static struct table_node *
find_id(const struct table *t, uint64_t id)
{
	return table_find(t, &id, sizeof id);
}

static struct table_node *
find_name(const struct table *t, const char *name)
{
	char copy[64];

	/* By content, not by pointer: look up through another buffer. */
	snprintf(copy, sizeof copy, "%s", name);
	return table_find(t, copy, strlen(copy));
}

START_TEST(empty)
{
	struct table t;
	struct table_node n;
	uint64_t id = 1;

	table_init(&t);
	ck_assert_uint_eq(t.count, 0);
	ck_assert_ptr_null(table_find(&t, &id, sizeof id));
	ck_assert_ptr_null(table_find(&t, "x", 1));
	memset(&n, 0, sizeof n);
	table_remove(&t, &n);		/* harmless */
	ck_assert_uint_eq(t.count, 0);
	table_free(&t);
	table_free(&t);
}
END_TEST

START_TEST(int_keys)
{
	struct item *items = items_new();
	struct table t;
	struct table_node *n;
	int i;

	table_init(&t);
	for (i = 0; i < NITEMS; i++) {
		ck_assert_int_eq(table_insert(&t, &items[i].by_id, &items[i].id,
		    sizeof items[i].id), 0);
		ck_assert_uint_eq(t.count, (size_t)i + 1);
	}
	/* It grew: chains stay short. */
	ck_assert_uint_ge(t.nbuckets, NITEMS);
	for (i = 0; i < NITEMS; i++) {
		n = find_id(&t, items[i].id);
		ck_assert_ptr_eq(n, &items[i].by_id);
		ck_assert_ptr_eq(item_of(n, by_id), &items[i]);
	}
	ck_assert_ptr_null(find_id(&t, 0));
	ck_assert_ptr_null(find_id(&t, items[NITEMS - 1].id + 1));
	/* A shorter key with the same leading bytes is another key. */
	ck_assert_ptr_null(table_find(&t, &items[5].id, 4));

	/* Remove the odd ones. */
	for (i = 1; i < NITEMS; i += 2)
		table_remove(&t, &items[i].by_id);
	ck_assert_uint_eq(t.count, NITEMS / 2);
	for (i = 0; i < NITEMS; i++) {
		n = find_id(&t, items[i].id);
		if (i % 2)
			ck_assert_msg(n == NULL, "item %d found after remove", i);
		else
			ck_assert_ptr_eq(n, &items[i].by_id);
	}
	/* Removing again changes nothing. */
	table_remove(&t, &items[1].by_id);
	ck_assert_uint_eq(t.count, NITEMS / 2);

	/* Put some back: found again. */
	for (i = 1; i < NITEMS; i += 4)
		ck_assert_int_eq(table_insert(&t, &items[i].by_id, &items[i].id,
		    sizeof items[i].id), 0);
	for (i = 1; i < NITEMS; i += 2) {
		n = find_id(&t, items[i].id);
		if (i % 4 == 1)
			ck_assert_ptr_eq(n, &items[i].by_id);
		else
			ck_assert_ptr_null(n);
	}

	/* Remove everything. */
	for (i = 0; i < NITEMS; i++) {
		if (i % 2 == 0 || i % 4 == 1)
			table_remove(&t, &items[i].by_id);
	}
	ck_assert_uint_eq(t.count, 0);
	for (i = 0; i < NITEMS; i++)
		ck_assert_ptr_null(find_id(&t, items[i].id));
	table_free(&t);
	free(items);
}
END_TEST

START_TEST(string_keys)
{
	struct item *items = items_new();
	struct table t;
	struct table_node *n;
	int i;

	table_init(&t);
	for (i = 0; i < NITEMS; i++)
		ck_assert_int_eq(table_insert(&t, &items[i].by_name,
		    items[i].name, strlen(items[i].name)), 0);
	ck_assert_uint_eq(t.count, NITEMS);
	for (i = 0; i < NITEMS; i++) {
		n = find_name(&t, items[i].name);
		ck_assert_ptr_eq(n, &items[i].by_name);
		ck_assert_str_eq(item_of(n, by_name)->name, items[i].name);
	}
	/* Prefixes and extensions of names are other names. */
	ck_assert_ptr_null(find_name(&t, "vm-"));
	ck_assert_ptr_null(find_name(&t, "vm-19999x"));
	ck_assert_ptr_null(find_name(&t, "vm-20000"));
	ck_assert_ptr_null(find_name(&t, "VM-1"));
	/* The length given is the key: "vm-12" cut at 4 is "vm-1". */
	ck_assert_ptr_eq(table_find(&t, "vm-12", 4), &items[1].by_name);
	ck_assert_ptr_eq(table_find(&t, "vm-12", 5), &items[12].by_name);

	for (i = 0; i < NITEMS; i += 3)
		table_remove(&t, &items[i].by_name);
	for (i = 0; i < NITEMS; i++) {
		n = find_name(&t, items[i].name);
		if (i % 3 == 0)
			ck_assert_msg(n == NULL, "%s found after remove",
			    items[i].name);
		else
			ck_assert_ptr_eq(n, &items[i].by_name);
	}
	for (i = 0; i < NITEMS; i++) {
		if (i % 3 != 0)
			table_remove(&t, &items[i].by_name);
	}
	ck_assert_uint_eq(t.count, 0);
	ck_assert_ptr_null(find_name(&t, "vm-1"));
	table_free(&t);
	free(items);
}
END_TEST

START_TEST(two_tables_one_object)
{
	struct item *items = items_new();
	struct table ids, names;
	int i;

	/* As instances: indexed by id and by name at once. */
	table_init(&ids);
	table_init(&names);
	for (i = 0; i < 1000; i++) {
		ck_assert_int_eq(table_insert(&ids, &items[i].by_id,
		    &items[i].id, sizeof items[i].id), 0);
		ck_assert_int_eq(table_insert(&names, &items[i].by_name,
		    items[i].name, strlen(items[i].name)), 0);
	}
	ck_assert_ptr_eq(item_of(find_name(&names, "vm-500"), by_name),
	    item_of(find_id(&ids, items[500].id), by_id));
	table_remove(&ids, &items[500].by_id);
	ck_assert_ptr_null(find_id(&ids, items[500].id));
	ck_assert_ptr_eq(find_name(&names, "vm-500"), &items[500].by_name);
	table_free(&ids);
	table_free(&names);
	free(items);
}
END_TEST

START_TEST(empty_key)
{
	struct table t;
	struct table_node a, b;

	table_init(&t);
	ck_assert_int_eq(table_insert(&t, &a, "", 0), 0);
	ck_assert_int_eq(table_insert(&t, &b, "b", 1), 0);
	ck_assert_ptr_eq(table_find(&t, "zzz", 0), &a);
	ck_assert_ptr_eq(table_find(&t, "b", 1), &b);
	table_remove(&t, &a);
	ck_assert_ptr_null(table_find(&t, "", 0));
	ck_assert_ptr_eq(table_find(&t, "b", 1), &b);
	table_free(&t);
}
END_TEST

int
main(void)
{
	TCase *tc;
	Suite *s = unit_suite("table", &tc);

	tcase_add_test(tc, empty);
	tcase_add_test(tc, int_keys);
	tcase_add_test(tc, string_keys);
	tcase_add_test(tc, two_tables_one_object);
	tcase_add_test(tc, empty_key);
	return UNIT_RUN(s);
}
