/*
 * poll.c: one poll of the worker process.  The ClearML and EC2 clients
 * are not wired in yet, so a poll only reports that honestly: nothing is
 * observed, nothing is launched or terminated.
 */
#include <stdlib.h>

#include "common.h"
#include "proto.h"
#include "worker.h"

struct wpoll {
	int	 unused;
};

struct wpoll *
poll_new(struct wproc *w)
{
	(void)w;
	return xcalloc(1, sizeof(struct wpoll));
}

void
poll_free(struct wpoll *p)
{
	free(p);
}

void
poll_message(struct wproc *w, uint32_t type, cJSON *body)
{
	(void)w;
	(void)type;
	(void)body;
}

void
poll_start(struct wproc *w)
{
	cJSON	*o, *counts;

	log_debug("poll %llu: no ClearML/EC2 client yet; nothing observed",
	    (unsigned long long)w->polls);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "state", "not scaling");
	cJSON_AddStringToObject(o, "note", "no ClearML/EC2 client yet");
	cJSON_AddNumberToObject(o, "polls", (double)w->polls);
	cJSON_AddNumberToObject(o, "last_poll", (double)now_ms());
	counts = cJSON_AddObjectToObject(o, "counts");
	cJSON_AddNumberToObject(counts, "live", 0);
	cJSON_AddArrayToObject(o, "workers");
	worker_send(w, MSG_STATE, o);
	cJSON_Delete(o);
	worker_poll_done(w);
}
