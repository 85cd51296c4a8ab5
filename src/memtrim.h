/* memtrim: hands memory that malloc keeps in its free lists back to the
 * kernel once the daemon goes idle.  A big batch leaves tens of MiB there;
 * an idle sidecar should look idle. */
#ifndef FANOUTD_MEMTRIM_H
#define FANOUTD_MEMTRIM_H

struct event_base;
struct memtrim;

struct memtrim *memtrim_new(struct event_base *base);
void memtrim_free(struct memtrim *t);

/* Idle now: trim in a second, unless memtrim_busy() comes first. */
void memtrim_idle(struct memtrim *t);

/* Work came in: no trim until the next memtrim_idle(). */
void memtrim_busy(struct memtrim *t);

#endif
