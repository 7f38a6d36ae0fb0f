/*
 * proto.c: framing of the messages described in proto.h.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "common.h"
#include "proto.h"

static const struct {
	uint32_t	 type;
	const char	*name;
} proto_names[] = {
	{ MSG_HELLO, "hello" },
	{ MSG_LOG, "log" },
	{ MSG_STATE, "state" },
	{ MSG_EVENT, "event" },
	{ MSG_LAUNCH_REQ, "launch-request" },
	{ MSG_WELCOME, "welcome" },
	{ MSG_LAUNCH_GRANT, "launch-grant" },
	{ MSG_BLACKOUT, "blackout" },
	{ MSG_LOG_LEVEL, "log-level" },
	{ MSG_STOP, "stop" },
	{ MSG_DUPLICATE, "duplicate" },
};

const char *
proto_type_name(uint32_t type)
{
	size_t	 i;

	for (i = 0; i < QS_ARRAYLEN(proto_names); i++)
		if (proto_names[i].type == type)
			return proto_names[i].name;
	return "unknown";
}

int
proto_type_valid(uint32_t type)
{
	size_t	 i;

	for (i = 0; i < QS_ARRAYLEN(proto_names); i++)
		if (proto_names[i].type == type)
			return 1;
	return 0;
}

/* One framed message, header and payload, in *out.  A NULL body is {}. */
static int
proto_frame(uint32_t type, uint32_t resource, const cJSON *body, char **out,
    size_t *outlen)
{
	struct proto_hdr	 hdr;
	char			*text, *f;
	size_t			 len;

	if (body != NULL)
		text = cJSON_PrintUnformatted(body);
	else
		text = strdup("{}");
	if (text == NULL)
		return -1;
	len = strlen(text);
	if (len > PROTO_MAX_PAYLOAD || (f = malloc(sizeof(hdr) + len)) ==
	    NULL) {
		free(text);
		return -1;
	}
	hdr.type = type;
	hdr.len = (uint32_t)len;
	hdr.resource = resource;
	hdr.pid = (uint32_t)getpid();
	memcpy(f, &hdr, sizeof(hdr));
	memcpy(f + sizeof(hdr), text, len);
	free(text);
	*out = f;
	*outlen = sizeof(hdr) + len;
	return 0;
}

/* Appends one framed message to buf.  A NULL body sends {}. */
int
proto_pack(struct evbuffer *buf, uint32_t type, uint32_t resource,
    const cJSON *body)
{
	char	*f;
	size_t	 len;
	int	 rc;

	if (proto_frame(type, resource, body, &f, &len) == -1)
		return -1;
	rc = evbuffer_add(buf, f, len);
	free(f);
	return rc;
}

/* ---- the outgoing queue of a worker process ---- */

struct proto_outq_msg {
	struct proto_outq_msg	*prev, *next;
	enum proto_outq_class	 cls;
	size_t			 len;
	char			*data;
};

void
proto_outq_init(struct proto_outq *q, size_t max)
{
	memset(q, 0, sizeof(*q));
	q->max = max;
}

static void
proto_outq_remove(struct proto_outq *q, struct proto_outq_msg *m)
{
	if (m->prev != NULL)
		m->prev->next = m->next;
	else
		q->head = m->next;
	if (m->next != NULL)
		m->next->prev = m->prev;
	else
		q->tail = m->prev;
	q->n--;
	q->bytes -= m->len;
	free(m->data);
	free(m);
}

static void
proto_outq_drop(struct proto_outq *q, struct proto_outq_msg *m)
{
	if (m->cls == OUTQ_SNAPSHOT)
		q->dropped_snapshots++;
	else
		q->dropped_logs++;
	proto_outq_remove(q, m);
}

/* The oldest message of a class, or NULL. */
static struct proto_outq_msg *
proto_outq_oldest(const struct proto_outq *q, enum proto_outq_class cls)
{
	struct proto_outq_msg	*m;

	for (m = q->head; m != NULL; m = m->next)
		if (m->cls == cls)
			return m;
	return NULL;
}

/*
 * Queues a message.  A snapshot replaces the one waiting; past max
 * bytes, debug lines and then other droppable log lines go, oldest
 * first.  -1 when the message cannot be framed (too large).
 */
int
proto_outq_push(struct proto_outq *q, uint32_t type, uint32_t resource,
    enum proto_outq_class cls, const cJSON *body)
{
	struct proto_outq_msg	*m, *old;

	m = xcalloc(1, sizeof(*m));
	if (proto_frame(type, resource, body, &m->data, &m->len) == -1) {
		free(m);
		return -1;
	}
	m->cls = cls;
	if (cls == OUTQ_SNAPSHOT &&
	    (old = proto_outq_oldest(q, OUTQ_SNAPSHOT)) != NULL)
		proto_outq_drop(q, old);
	m->prev = q->tail;
	if (q->tail != NULL)
		q->tail->next = m;
	else
		q->head = m;
	q->tail = m;
	q->n++;
	q->bytes += m->len;
	while (q->bytes > q->max) {
		if ((old = proto_outq_oldest(q, OUTQ_DEBUG)) == NULL &&
		    (old = proto_outq_oldest(q, OUTQ_LOG)) == NULL)
			break;	/* what is left is never dropped */
		proto_outq_drop(q, old);
	}
	return 0;
}

/*
 * Moves whole messages, oldest first, to out while it holds less than
 * inflight bytes.  Returns how many are still waiting.
 */
size_t
proto_outq_flush(struct proto_outq *q, struct evbuffer *out, size_t inflight)
{
	while (q->head != NULL && evbuffer_get_length(out) < inflight) {
		if (evbuffer_add(out, q->head->data, q->head->len) == -1)
			break;
		proto_outq_remove(q, q->head);
	}
	return q->n;
}

void
proto_outq_clear(struct proto_outq *q)
{
	while (q->head != NULL)
		proto_outq_remove(q, q->head);
}

/*
 * Takes one message off buf.  Returns 1 with *msg filled, 0 when the
 * message is not complete yet, -1 with a reason in err when the stream
 * is malformed (the peer must then be dropped).
 */
int
proto_unpack(struct evbuffer *buf, struct proto_msg *msg, char *err,
    size_t errlen)
{
	struct proto_hdr	 hdr;
	char			*text;
	cJSON			*body;

	memset(msg, 0, sizeof(*msg));
	if (evbuffer_get_length(buf) < sizeof(hdr))
		return 0;
	evbuffer_copyout(buf, &hdr, sizeof(hdr));
	if (!proto_type_valid(hdr.type)) {
		snprintf(err, errlen, "unknown message type %u", hdr.type);
		return -1;
	}
	if (hdr.len > PROTO_MAX_PAYLOAD) {
		snprintf(err, errlen, "%s message of %u bytes exceeds the "
		    "limit of %d", proto_type_name(hdr.type), hdr.len,
		    PROTO_MAX_PAYLOAD);
		return -1;
	}
	if (evbuffer_get_length(buf) < sizeof(hdr) + hdr.len)
		return 0;
	evbuffer_drain(buf, sizeof(hdr));
	text = xmalloc((size_t)hdr.len + 1);
	evbuffer_remove(buf, text, hdr.len);
	text[hdr.len] = '\0';
	if (strlen(text) != hdr.len) {
		snprintf(err, errlen, "%s message holds a NUL byte",
		    proto_type_name(hdr.type));
		free(text);
		return -1;
	}
	body = cJSON_ParseWithLength(text, hdr.len);
	free(text);
	if (body == NULL || !cJSON_IsObject(body)) {
		snprintf(err, errlen, "%s message payload is not a JSON "
		    "object", proto_type_name(hdr.type));
		cJSON_Delete(body);
		return -1;
	}
	msg->hdr = hdr;
	msg->body = body;
	return 1;
}

void
proto_msg_clear(struct proto_msg *msg)
{
	cJSON_Delete(msg->body);
	msg->body = NULL;
}

/* A required integer field within [min, max]; -1 when absent or bad. */
int
proto_get_int(const cJSON *obj, const char *key, int64_t min, int64_t max,
    int64_t *out)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(obj, key);
	double		 d;

	if (!cJSON_IsNumber(v))
		return -1;
	d = v->valuedouble;
	if (d != d || d < (double)min || d > (double)max ||
	    d != (double)(int64_t)d)
		return -1;
	*out = (int64_t)d;
	return 0;
}

/* A string field, or NULL when absent or not a string. */
const char *
proto_get_str(const cJSON *obj, const char *key)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The hello of either side: same protocol version or nothing. */
int
proto_hello_check(const cJSON *body, char *err, size_t errlen)
{
	int64_t	 v;

	if (proto_get_int(body, "version", 0, UINT32_MAX, &v) == -1) {
		snprintf(err, errlen, "hello without a protocol version");
		return -1;
	}
	if (v != PROTO_VERSION) {
		snprintf(err, errlen, "protocol version %lld, expected %d",
		    (long long)v, PROTO_VERSION);
		return -1;
	}
	return 0;
}
