/* client_batch: the batches running for clients of the local endpoint,
 * each tied to the client request waiting for it, from the pause to the
 * last byte of the answer.  It keeps watching the client while the batch
 * runs (a disconnect cancels the batch), streams a big answer paced by the
 * client's reading, counts and logs each batch, and lets go of everything
 * in one place.  Borrows the registry, the fetch environment and the
 * config; owns the batches and the trim of idle memory. */
#ifndef FANOUTD_CLIENT_BATCH_H
#define FANOUTD_CLIENT_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <evhtp/evhtp.h>

#include "config.h"
#include "env.h"
#include "request.h"
#include "upstream.h"

struct client_batches;

/* finished(arg) runs each time a batch request is over for evhtp (its
 * client answered or gone); client_batches_unanswered() then counts one
 * less. */
struct client_batches *client_batches_new(struct event_base *base,
                                          struct upstream_registry *reg,
                                          const struct fetch_env *env,
                                          void (*finished)(void *), void *arg);

/* The config for batches that start from now on (reload). */
void client_batches_configure(struct client_batches *l, const struct config *cfg);

/* Pause req and run the batch br (taken over) for it; the answer goes out
 * when the batch is done, or (streamed) as NDJSON lines while it runs. */
void client_batch_run(struct client_batches *l, evhtp_request_t *req,
                      struct batch_request *br, bool streamed);

/* Batch requests not finished yet: answered in full, or their client gone. */
size_t client_batches_unanswered(const struct client_batches *l);

/* Shutdown timeout: every running batch gets its error group now. */
void client_batches_cancel_all(struct client_batches *l);

/* Exit: abandon what still runs and free everything. */
void client_batches_free(struct client_batches *l);

#endif
