/* fanout_order: the `fanout` client's re-ordering of per-request lines
 * into input order.  Lines arrive in completion order, each tagged with its
 * request's index; a line is handed out as soon as every index before it
 * has been handed out.  Pure (no I/O): it owns the lines it holds until
 * they are taken. */
#ifndef FANOUT_ORDER_H
#define FANOUT_ORDER_H

#include <stdbool.h>
#include <stddef.h>

struct fanout_order;

/* An orderer for indices 0 .. total-1; NULL when out of memory. */
struct fanout_order *fanout_order_create(size_t total);
/* Frees it and every line it still holds. */
void fanout_order_destroy(struct fanout_order *o);

/* Hands the line (len bytes, not NUL-terminated; copied) for index in.
 * 0 on success; -1 when index is out of range or was put before (the line
 * is then ignored), -2 when out of memory. */
int fanout_order_put(struct fanout_order *o, size_t index, const char *line,
                     size_t len) __attribute__((warn_unused_result));

/* The next line in input order if it is in: its text (owned by the
 * orderer until the next call or destroy) and length; NULL when the next
 * index has not been put yet or every index was taken. */
const char *fanout_order_next(struct fanout_order *o, size_t *len);

/* Whether index was put (taken or not). */
bool fanout_order_has(const struct fanout_order *o, size_t index);
/* How many lines are held, put but not taken yet. */
size_t fanout_order_held(const struct fanout_order *o);
/* The index fanout_order_next() waits for (total when all were taken). */
size_t fanout_order_position(const struct fanout_order *o);

#endif
