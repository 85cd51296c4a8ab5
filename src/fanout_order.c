/* fanout_order: lines put by index in any order, taken in index order.
 * A slot per index (a NULL text: not in yet) and a cursor; a bit per
 * index remembers which were put, so a duplicate is refused after its
 * line was taken and freed. */
#include "fanout_order.h"

#include <stdlib.h>
#include <string.h>

struct slot {
	char *text;              /* the line, NULL when absent or taken */
	size_t len;
};

struct fanout_order {
	size_t total;
	size_t next;             /* the index taken next */
	size_t held;             /* slots holding a line */
	struct slot *slots;
	unsigned char *put;      /* a bit per index: put already */
	char *taken;             /* the last line taken, freed on the next call */
};

struct fanout_order *fanout_order_create(size_t total)
{
	struct fanout_order *o = calloc(1, sizeof *o);

	if (o == NULL)
		return NULL;
	o->total = total;
	o->slots = calloc(total ? total : 1, sizeof *o->slots);
	o->put = calloc(total / 8 + 1, 1);
	if (o->slots == NULL || o->put == NULL) {
		fanout_order_destroy(o);
		return NULL;
	}
	return o;
}

void fanout_order_destroy(struct fanout_order *o)
{
	size_t i;

	if (o == NULL)
		return;
	if (o->slots != NULL)
		for (i = o->next; i < o->total; i++)
			free(o->slots[i].text);
	free(o->slots);
	free(o->put);
	free(o->taken);
	free(o);
}

bool fanout_order_has(const struct fanout_order *o, size_t index)
{
	return index < o->total && (o->put[index / 8] & (1u << (index % 8))) != 0;
}

int fanout_order_put(struct fanout_order *o, size_t index, const char *line, size_t len)
{
	char *copy;

	if (index >= o->total || fanout_order_has(o, index))
		return -1;
	copy = malloc(len + 1);
	if (copy == NULL)
		return -2;
	memcpy(copy, line, len);
	copy[len] = '\0';
	o->slots[index].text = copy;
	o->slots[index].len = len;
	o->put[index / 8] |= (unsigned char)(1u << (index % 8));
	o->held++;
	return 0;
}

const char *fanout_order_next(struct fanout_order *o, size_t *len)
{
	struct slot *s;

	free(o->taken);
	o->taken = NULL;
	if (o->next >= o->total || o->slots[o->next].text == NULL)
		return NULL;
	s = &o->slots[o->next++];
	o->taken = s->text;
	*len = s->len;
	s->text = NULL;
	o->held--;
	return o->taken;
}

size_t fanout_order_held(const struct fanout_order *o)
{
	return o->held;
}

size_t fanout_order_position(const struct fanout_order *o)
{
	return o->next;
}
