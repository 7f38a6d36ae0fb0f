/*
 * worker.h: the worker process, one per resource: its poll cycle, the
 * pure decision function plan(), and the startup script it gives every
 * instance.
 */
#ifndef QSCALE_WORKER_H
#define QSCALE_WORKER_H

#include <stddef.h>
#include <stdint.h>

struct qscale_conf;

/* worker.c */
int		 worker_main(struct qscale_conf *, size_t, int);

/* plan.c */

/* userdata.c */

#endif /* QSCALE_WORKER_H */
