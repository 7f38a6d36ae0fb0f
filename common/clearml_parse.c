/*
 * clearml_parse.c: the pure half of the ClearML client.  The envelope and
 * its classified error, the JWT claims, and the objects the engine reads
 * (queues, workers, tasks), each field type-checked: a response of the
 * wrong shape is an error that names the field, never a crash.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common.h"
#include "clearml.h"

#define CML_JWT_MAX		16384	/* bytes of a token we accept */
#define CML_EXCERPT_LEN		120	/* of a body that is not JSON */

/* 400 subcodes that mean "no such object" (apierrors/errors.conf). */
static const int notfound_subcodes[] = {
	101,	/* invalid task id */
	130,	/* task not found */
	201,	/* invalid model id */
	301,	/* invalid user id */
	401,	/* invalid project id */
	403,	/* project not found */
	701,	/* invalid queue id */
	1001,	/* invalid worker id */
	1004,	/* worker not registered */
};

static const char *const class_names[] = {
	"ok", "auth", "not found", "invalid", "server", "transient"
};

const char *
cml_err_class_name(enum cml_err_class cls)
{
	if ((size_t)cls >= QS_ARRAYLEN(class_names))
		return "unknown";
	return class_names[cls];
}

/*
 * Fills an error; the message is masked, so a secret that a server
 * echoes never leaves through it.
 */
void
cml_error_set(struct cml_error *err, enum cml_err_class cls,
    const char *endpoint, const char *fmt, ...)
{
	va_list	 ap;
	char	 text[sizeof(err->message)];
	int	 n;

	err->cls = cls;
	snprintf(err->endpoint, sizeof(err->endpoint), "%s",
	    endpoint != NULL ? endpoint : "");
	/* the arguments may point into err: format them apart first */
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	n = snprintf(err->message, sizeof(err->message), "%s: ",
	    err->endpoint[0] != '\0' ? err->endpoint : "clearml");
	snprintf(err->message + n, sizeof(err->message) - (size_t)n, "%s",
	    text);
	mask_buf(err->message, sizeof(err->message));
}

/* The class of a ClearML result code and subcode. */
enum cml_err_class
cml_classify(int code, int subcode)
{
	size_t	 i;

	if (code >= 200 && code < 300)
		return CML_OK;
	switch (code) {
	case 401:
	case 403:
		return CML_ERR_AUTH;
	case 404:
		return CML_ERR_NOT_FOUND;
	case 400:
		for (i = 0; i < QS_ARRAYLEN(notfound_subcodes); i++)
			if (subcode == notfound_subcodes[i])
				return CML_ERR_NOT_FOUND;
		return CML_ERR_INVALID;
	case 429:
	case 502:
	case 503:
	case 504:
	case 509:
		return CML_ERR_TRANSIENT;
	}
	if (code >= 400 && code < 500)
		return CML_ERR_INVALID;
	return CML_ERR_SERVER;
}

/* A short, printable, one-line excerpt of a body. */
static void
excerpt(const char *body, size_t len, char *out, size_t outlen)
{
	size_t	 i, j = 0;
	int	 space = 0;

	for (i = 0; i < len && j + 4 < outlen && j < CML_EXCERPT_LEN; i++) {
		unsigned char ch = (unsigned char)body[i];

		if (isspace(ch) || ch < 0x20 || ch >= 0x7f) {
			space = j > 0;
			continue;
		}
		if (space)
			out[j++] = ' ';
		space = 0;
		out[j++] = (char)ch;
	}
	if (i < len && j + 4 < outlen) {
		memcpy(out + j, "...", 3);
		j += 3;
	}
	out[j] = '\0';
}

static void
not_envelope(long status, const char *body, size_t len,
    const char *endpoint, struct cml_error *err)
{
	enum cml_err_class	 cls;
	char			 ex[CML_EXCERPT_LEN + 8];

	cls = cml_classify((int)status, 0);
	if (cls == CML_OK || cls == CML_ERR_NOT_FOUND ||
	    cls == CML_ERR_INVALID)
		cls = CML_ERR_SERVER;
	excerpt(body, len, ex, sizeof(ex));
	cml_error_set(err, cls, endpoint, "HTTP %ld, not a ClearML response%s%s",
	    status, ex[0] != '\0' ? ": " : " (empty body)", ex);
}

/*
 * Reads a response.  On success returns 0 and the envelope's data object
 * (detached: the caller deletes it); otherwise returns -1 with err set.
 */
int
cml_parse_envelope(long status, const char *body, size_t len,
    const char *endpoint, cJSON **data, struct cml_error *err)
{
	cJSON		*root, *meta, *rc, *sub, *msg, *d;
	int		 code, subcode = 0;

	*data = NULL;
	memset(err, 0, sizeof(*err));
	err->http_status = (int)status;
	if (status == 0) {
		cml_error_set(err, CML_ERR_TRANSIENT, endpoint, "no response");
		return -1;
	}
	root = cJSON_ParseWithLength(body != NULL ? body : "", len);
	meta = cJSON_GetObjectItemCaseSensitive(root, "meta");
	rc = cJSON_GetObjectItemCaseSensitive(meta, "result_code");
	if (!cJSON_IsObject(root) || !cJSON_IsObject(meta) ||
	    !cJSON_IsNumber(rc) || rc->valuedouble < 100 ||
	    rc->valuedouble > 599) {
		cJSON_Delete(root);
		not_envelope(status, body != NULL ? body : "", len, endpoint,
		    err);
		return -1;
	}
	code = rc->valueint;
	if ((sub = cJSON_GetObjectItemCaseSensitive(meta, "result_subcode")) !=
	    NULL && cJSON_IsNumber(sub))
		subcode = sub->valueint;
	msg = cJSON_GetObjectItemCaseSensitive(meta, "result_msg");
	if (code >= 200 && code < 300 && (status < 200 || status >= 300))
		code = (int)status;	/* the HTTP status wins a conflict */
	err->code = code;
	err->subcode = subcode;
	if (code >= 200 && code < 300) {
		d = cJSON_DetachItemFromObjectCaseSensitive(root, "data");
		cJSON_Delete(root);
		if (d == NULL || cJSON_IsNull(d)) {
			cJSON_Delete(d);
			d = cJSON_CreateObject();
		}
		if (!cJSON_IsObject(d)) {
			cJSON_Delete(d);
			cml_error_set(err, CML_ERR_SERVER, endpoint,
			    "the response's data is not an object");
			return -1;
		}
		*data = d;
		return 0;
	}
	cml_error_set(err, cml_classify(code, subcode), endpoint,
	    "%s (%d/%d)", cJSON_IsString(msg) && msg->valuestring[0] != '\0' ?
	    msg->valuestring : "no message", code, subcode);
	cJSON_Delete(root);
	return -1;
}

/* Field helpers: each names the field it found wrong. */

static const char *
type_name(const cJSON *o)
{
	if (cJSON_IsString(o))
		return "a string";
	if (cJSON_IsNumber(o))
		return "a number";
	if (cJSON_IsBool(o))
		return "a boolean";
	if (cJSON_IsArray(o))
		return "an array";
	if (cJSON_IsObject(o))
		return "an object";
	if (cJSON_IsNull(o))
		return "null";
	return "invalid";
}

static int
field_err(char *err, size_t errlen, const char *where, const char *key,
    const char *what, const cJSON *got)
{
	if (got == NULL)
		snprintf(err, errlen, "%s%s%s: missing", where,
		    key[0] != '\0' ? "." : "", key);
	else
		snprintf(err, errlen, "%s%s%s: expected %s, got %s", where,
		    key[0] != '\0' ? "." : "", key, what, type_name(got));
	return -1;
}

/* A string member; absent or null is NULL unless required. */
static int
get_str(const cJSON *o, const char *key, int required, const char **out,
    const char *where, char *err, size_t errlen)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(o, key);

	*out = NULL;
	if (v == NULL || cJSON_IsNull(v)) {
		if (required)
			return field_err(err, errlen, where, key, "a string",
			    NULL);
		return 0;
	}
	if (!cJSON_IsString(v))
		return field_err(err, errlen, where, key, "a string", v);
	*out = v->valuestring;
	return 0;
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static int
get_dup(const cJSON *o, const char *key, char **out, const char *where,
    char *err, size_t errlen)
{
	const char	*s;

	if (get_str(o, key, 0, &s, where, err, errlen) == -1)
		return -1;
	*out = dup_or_null(s);
	return 0;
}

/* An id into a fixed buffer: ClearML ids are 32 hex characters. */
static int
get_id(const cJSON *o, const char *key, int required, char *buf,
    size_t buflen, const char *where, char *err, size_t errlen)
{
	const char	*s;

	buf[0] = '\0';
	if (get_str(o, key, required, &s, where, err, errlen) == -1)
		return -1;
	if (s == NULL)
		return 0;
	if (strlen(s) >= buflen) {
		snprintf(err, errlen, "%s.%s: id longer than %zu characters",
		    where, key, buflen - 1);
		return -1;
	}
	memcpy(buf, s, strlen(s) + 1);
	return 0;
}

/* A timestamp member as epoch ms; absent or null is 0 unless required. */
static int
get_time(const cJSON *o, const char *key, int required, int64_t *out,
    const char *where, char *err, size_t errlen)
{
	const char	*s;

	*out = 0;
	if (get_str(o, key, required, &s, where, err, errlen) == -1)
		return -1;
	if (s != NULL && parse_iso8601(s, out) == -1) {
		snprintf(err, errlen, "%s.%s: not a timestamp: \"%.40s\"",
		    where, key, s);
		return -1;
	}
	return 0;
}

/* An array member; absent or null is NULL unless required. */
static int
get_array(const cJSON *o, const char *key, int required, const cJSON **out,
    const char *where, char *err, size_t errlen)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(o, key);

	*out = NULL;
	if (v == NULL || cJSON_IsNull(v)) {
		if (required)
			return field_err(err, errlen, where, key, "an array",
			    NULL);
		return 0;
	}
	if (!cJSON_IsArray(v))
		return field_err(err, errlen, where, key, "an array", v);
	*out = v;
	return 0;
}

static int
want_object(const cJSON *o, const char *where, char *err, size_t errlen)
{
	if (cJSON_IsObject(o))
		return 0;
	return field_err(err, errlen, where, "", "an object", o);
}

/* Queues */

void
cml_queue_clear(struct cml_queue *q)
{
	if (q == NULL)
		return;
	free(q->name);
	free(q->entries);
	memset(q, 0, sizeof(*q));
}

static int
parse_entries(const cJSON *arr, struct cml_queue *q, const char *where,
    char *err, size_t errlen)
{
	const cJSON	*e;
	char		 w[96];
	size_t		 n;

	n = (size_t)cJSON_GetArraySize(arr);
	q->entries = xcalloc(n, sizeof(*q->entries));
	cJSON_ArrayForEach(e, arr) {
		struct cml_entry *en = &q->entries[q->nentries];

		snprintf(w, sizeof(w), "%s.entries[%zu]", where, q->nentries);
		if (want_object(e, w, err, errlen) == -1 ||
		    get_id(e, "task", 1, en->task, sizeof(en->task), w, err,
		    errlen) == -1 ||
		    get_time(e, "added", 1, &en->added_ms, w, err,
		    errlen) == -1)
			return -1;
		q->nentries++;
	}
	return 0;
}

static int
parse_queue_at(const cJSON *o, struct cml_queue *q, const char *where,
    char *err, size_t errlen)
{
	const cJSON	*entries;

	memset(q, 0, sizeof(*q));
	if (want_object(o, where, err, errlen) == -1 ||
	    get_id(o, "id", 1, q->id, sizeof(q->id), where, err,
	    errlen) == -1 ||
	    get_dup(o, "name", &q->name, where, err, errlen) == -1 ||
	    get_array(o, "entries", 0, &entries, where, err, errlen) == -1)
		goto bad;
	if (entries != NULL && parse_entries(entries, q, where, err,
	    errlen) == -1)
		goto bad;
	return 0;
bad:
	cml_queue_clear(q);
	return -1;
}

/* One queue object, as in queues.get_all's list or get_by_id's queue. */
int
cml_parse_queue(const cJSON *o, struct cml_queue *q, char *err,
    size_t errlen)
{
	return parse_queue_at(o, q, "queue", err, errlen);
}

static int
queues_array(const cJSON *data, const cJSON **arr, char *err, size_t errlen)
{
	if (want_object(data, "data", err, errlen) == -1)
		return -1;
	return get_array(data, "queues", 1, arr, "data", err, errlen);
}

/*
 * The queue with this id in a queues.get_all response: 1 and *q filled
 * when found, 0 when not, -1 on a malformed response.
 */
int
cml_parse_queue_by_id(const cJSON *data, const char *qid,
    struct cml_queue *q, char *err, size_t errlen)
{
	const cJSON	*arr, *o;
	const char	*id;
	char		 w[48];
	size_t		 i = 0;

	memset(q, 0, sizeof(*q));
	if (queues_array(data, &arr, err, errlen) == -1)
		return -1;
	cJSON_ArrayForEach(o, arr) {
		snprintf(w, sizeof(w), "queues[%zu]", i++);
		if (want_object(o, w, err, errlen) == -1 ||
		    get_str(o, "id", 1, &id, w, err, errlen) == -1)
			return -1;
		if (strcmp(id, qid) == 0)
			return parse_queue_at(o, q, w, err, errlen) == 0 ? 1 :
			    -1;
	}
	return 0;
}

/*
 * The id of the queue named exactly name (the server's regex filter is
 * a search, so "gpu" also brings "gpu-big"): 1 when found, 0 when not,
 * -1 on a malformed response.
 */
int
cml_parse_queue_id_by_name(const cJSON *data, const char *name, char *id,
    size_t idlen, char *err, size_t errlen)
{
	const cJSON	*arr, *o;
	const char	*qname;
	char		 w[48];
	size_t		 i = 0;

	id[0] = '\0';
	if (queues_array(data, &arr, err, errlen) == -1)
		return -1;
	cJSON_ArrayForEach(o, arr) {
		snprintf(w, sizeof(w), "queues[%zu]", i++);
		if (want_object(o, w, err, errlen) == -1 ||
		    get_str(o, "name", 1, &qname, w, err, errlen) == -1)
			return -1;
		if (strcmp(qname, name) != 0)
			continue;
		if (get_id(o, "id", 1, id, idlen, w, err, errlen) == -1)
			return -1;
		return 1;
	}
	return 0;
}

/* Workers */

static void
worker_clear(struct cml_worker *w)
{
	size_t	 i;

	free(w->id);
	free(w->task);
	free(w->task_name);
	for (i = 0; i < w->nqueues; i++)
		free(w->queues[i]);
	free(w->queues);
	memset(w, 0, sizeof(*w));
}

void
cml_workers_free(struct cml_worker *w, size_t n)
{
	size_t	 i;

	if (w == NULL)
		return;
	for (i = 0; i < n; i++)
		worker_clear(&w[i]);
	free(w);
}

/* Busy while the worker has a task key; idle workers have none. */
static int
parse_worker_task(const cJSON *o, struct cml_worker *w, const char *where,
    char *err, size_t errlen)
{
	const cJSON	*t = cJSON_GetObjectItemCaseSensitive(o, "task");
	char		 tw[96];

	if (t == NULL || cJSON_IsNull(t))
		return 0;
	snprintf(tw, sizeof(tw), "%s.task", where);
	if (want_object(t, tw, err, errlen) == -1)
		return -1;
	{
		const char *id;

		if (get_str(t, "id", 1, &id, tw, err, errlen) == -1 ||
		    get_dup(t, "name", &w->task_name, tw, err, errlen) == -1)
			return -1;
		w->task = xstrdup(id);
	}
	return 0;
}

static int
parse_worker_queues(const cJSON *o, struct cml_worker *w, const char *where,
    char *err, size_t errlen)
{
	const cJSON	*arr, *q;
	const char	*id;
	char		 qw[96];

	if (get_array(o, "queues", 0, &arr, where, err, errlen) == -1)
		return -1;
	if (arr == NULL)
		return 0;
	w->queues = xcalloc((size_t)cJSON_GetArraySize(arr),
	    sizeof(*w->queues));
	cJSON_ArrayForEach(q, arr) {
		snprintf(qw, sizeof(qw), "%s.queues[%zu]", where, w->nqueues);
		if (want_object(q, qw, err, errlen) == -1 ||
		    get_str(q, "id", 1, &id, qw, err, errlen) == -1)
			return -1;
		w->queues[w->nqueues++] = xstrdup(id);
	}
	return 0;
}

static int
parse_worker(const cJSON *o, struct cml_worker *w, const char *where,
    char *err, size_t errlen)
{
	const char	*id;

	if (want_object(o, where, err, errlen) == -1 ||
	    get_str(o, "id", 1, &id, where, err, errlen) == -1)
		return -1;
	w->id = xstrdup(id);
	if (parse_worker_task(o, w, where, err, errlen) == -1 ||
	    get_time(o, "register_time", 0, &w->register_ms, where, err,
	    errlen) == -1 ||
	    get_time(o, "last_activity_time", 0, &w->last_activity_ms, where,
	    err, errlen) == -1 ||
	    get_time(o, "last_report_time", 0, &w->last_report_ms, where, err,
	    errlen) == -1 ||
	    parse_worker_queues(o, w, where, err, errlen) == -1)
		return -1;
	return 0;
}

/* workers.get_all's data: {"workers": [...]}. */
int
cml_parse_workers(const cJSON *data, struct cml_worker **out, size_t *nout,
    char *err, size_t errlen)
{
	const cJSON		*arr, *o;
	struct cml_worker	*w;
	size_t			 n = 0;
	char			 where[48];

	*out = NULL;
	*nout = 0;
	if (want_object(data, "data", err, errlen) == -1 ||
	    get_array(data, "workers", 1, &arr, "data", err, errlen) == -1)
		return -1;
	w = xcalloc((size_t)cJSON_GetArraySize(arr), sizeof(*w));
	cJSON_ArrayForEach(o, arr) {
		snprintf(where, sizeof(where), "workers[%zu]", n);
		if (parse_worker(o, &w[n], where, err, errlen) == -1) {
			cml_workers_free(w, n + 1);
			return -1;
		}
		n++;
	}
	*out = w;
	*nout = n;
	return 0;
}

/* Keeps the workers whose id matches the glob; NULL keeps all. */
void
cml_workers_filter(struct cml_worker *w, size_t *n, const char *pattern)
{
	size_t	 i, j = 0;

	if (pattern == NULL)
		return;
	for (i = 0; i < *n; i++) {
		if (cml_glob_match(pattern, w[i].id))
			w[j++] = w[i];
		else
			worker_clear(&w[i]);
	}
	*n = j;
}

/* Tasks */

static void
task_clear(struct cml_task *t)
{
	free(t->name);
	free(t->status);
	free(t->status_reason);
	free(t->comment);
	free(t->last_worker);
	memset(t, 0, sizeof(*t));
}

void
cml_tasks_free(struct cml_task *t, size_t n)
{
	size_t	 i;

	if (t == NULL)
		return;
	for (i = 0; i < n; i++)
		task_clear(&t[i]);
	free(t);
}

static int
parse_task(const cJSON *o, struct cml_task *t, const char *where, char *err,
    size_t errlen)
{
	const cJSON	*ex;
	char		 ew[64];

	if (want_object(o, where, err, errlen) == -1 ||
	    get_id(o, "id", 1, t->id, sizeof(t->id), where, err,
	    errlen) == -1 ||
	    get_dup(o, "name", &t->name, where, err, errlen) == -1 ||
	    get_dup(o, "status", &t->status, where, err, errlen) == -1 ||
	    get_dup(o, "status_reason", &t->status_reason, where, err,
	    errlen) == -1 ||
	    get_dup(o, "comment", &t->comment, where, err, errlen) == -1 ||
	    get_dup(o, "last_worker", &t->last_worker, where, err,
	    errlen) == -1 ||
	    get_time(o, "last_update", 0, &t->last_update_ms, where, err,
	    errlen) == -1 ||
	    get_time(o, "status_changed", 0, &t->status_changed_ms, where,
	    err, errlen) == -1)
		return -1;
	ex = cJSON_GetObjectItemCaseSensitive(o, "execution");
	if (ex == NULL || cJSON_IsNull(ex))
		return 0;
	snprintf(ew, sizeof(ew), "%s.execution", where);
	if (want_object(ex, ew, err, errlen) == -1 ||
	    get_id(ex, "queue", 0, t->queue, sizeof(t->queue), ew, err,
	    errlen) == -1)
		return -1;
	return 0;
}

/* tasks.get_all's {"tasks": [...]} or tasks.get_by_id's {"task": {}}. */
int
cml_parse_tasks(const cJSON *data, struct cml_task **out, size_t *nout,
    char *err, size_t errlen)
{
	const cJSON	*arr, *one, *o;
	struct cml_task	*t;
	size_t		 n = 0;
	char		 where[48];

	*out = NULL;
	*nout = 0;
	if (want_object(data, "data", err, errlen) == -1)
		return -1;
	one = cJSON_GetObjectItemCaseSensitive(data, "task");
	if (one != NULL && cJSON_GetObjectItemCaseSensitive(data,
	    "tasks") == NULL) {
		t = xcalloc(1, sizeof(*t));
		if (parse_task(one, t, "task", err, errlen) == -1) {
			cml_tasks_free(t, 1);
			return -1;
		}
		*out = t;
		*nout = 1;
		return 0;
	}
	if (get_array(data, "tasks", 1, &arr, "data", err, errlen) == -1)
		return -1;
	t = xcalloc((size_t)cJSON_GetArraySize(arr), sizeof(*t));
	cJSON_ArrayForEach(o, arr) {
		snprintf(where, sizeof(where), "tasks[%zu]", n);
		if (parse_task(o, &t[n], where, err, errlen) == -1) {
			cml_tasks_free(t, n + 1);
			return -1;
		}
		n++;
	}
	*out = t;
	*nout = n;
	return 0;
}

/*
 * One page of a list call: its items (data.<key>) go to the end of
 * pg->items.  Returns 1 when the next page must be asked for, 0 when the
 * list is whole, -1 when the page is malformed or repeats the last one
 * (a server that ignores paging would make the loop endless).  The list
 * is whole after an empty page, a page smaller than an earlier one (the
 * server's page size may be below the one asked for), a page larger
 * than asked for (a server that does not page), or once as many items
 * as can exist (pg->expected) have come.
 */
int
cml_page_take(struct cml_pages *pg, const cJSON *data, char *err,
    size_t errlen)
{
	const cJSON	*arr, *it;
	const char	*first = "";
	int		 n;

	if (want_object(data, "data", err, errlen) == -1 ||
	    get_array(data, pg->key, 1, &arr, "data", err, errlen) == -1)
		return -1;
	if (pg->items == NULL)
		pg->items = cJSON_CreateArray();
	n = cJSON_GetArraySize(arr);
	if (n > 0 && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(
	    arr->child, "id")))
		first = cJSON_GetObjectItemCaseSensitive(arr->child,
		    "id")->valuestring;
	if (pg->page > 0 && first[0] != '\0' && strcmp(first,
	    pg->first) == 0) {
		snprintf(err, errlen, "data.%s: page %d repeats page %d: the "
		    "server ignores paging", pg->key, pg->page, pg->page - 1);
		return -1;
	}
	snprintf(pg->first, sizeof(pg->first), "%s", first);
	cJSON_ArrayForEach(it, arr)
		cJSON_AddItemToArray(pg->items, cJSON_Duplicate(it, 1));
	pg->page++;
	if (n == 0 || n < pg->largest || n > CML_PAGE_SIZE ||
	    (pg->expected > 0 && (size_t)cJSON_GetArraySize(pg->items) >=
	    pg->expected))
		return 0;
	pg->largest = QS_MAX(pg->largest, n);
	if (pg->page >= CML_MAX_PAGES) {
		snprintf(err, errlen, "data.%s: more than %d pages of %d",
		    pg->key, CML_MAX_PAGES, CML_PAGE_SIZE);
		return -1;
	}
	return 1;
}

/* JWT */

/* Decodes base64url (no padding needed); returns a new string or NULL. */
static char *
b64url_decode(const char *s, size_t len, size_t *outlen)
{
	unsigned char	*in, *out;
	size_t		 i, padded;
	int		 n, pad;

	if (len % 4 == 1)
		return NULL;
	padded = (len + 3) / 4 * 4;
	in = xmalloc(padded + 1);
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '-')
			ch = '+';
		else if (ch == '_')
			ch = '/';
		else if (!isalnum(ch)) {
			free(in);
			return NULL;	/* '+', '/', '=' are not base64url */
		}
		in[i] = ch;
	}
	pad = (int)(padded - len);
	for (; i < padded; i++)
		in[i] = '=';
	in[padded] = '\0';
	out = xmalloc(padded / 4 * 3 + 1);
	n = EVP_DecodeBlock(out, in, (int)padded);
	free(in);
	if (n < 0 || n < pad) {
		free(out);
		return NULL;
	}
	n -= pad;	/* EVP_DecodeBlock counts the padding as zeros */
	out[n] = '\0';
	*outlen = (size_t)n;
	return (char *)out;
}

static int
jwt_str_claim(const cJSON *o, const char *key, char *buf, size_t buflen,
    char *err, size_t errlen)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(o, key);

	buf[0] = '\0';
	if (v == NULL || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v))
		return field_err(err, errlen, "token", key, "a string", v);
	snprintf(buf, buflen, "%s", v->valuestring);
	return 0;
}

static int
jwt_claims_from(const cJSON *o, struct cml_jwt *jwt, char *err,
    size_t errlen)
{
	const cJSON	*exp, *iat;

	if (!cJSON_IsObject(o)) {
		snprintf(err, errlen, "token payload is not a JSON object");
		return -1;
	}
	exp = cJSON_GetObjectItemCaseSensitive(o, "exp");
	if (!cJSON_IsNumber(exp))
		return field_err(err, errlen, "token", "exp", "a number", exp);
	if (exp->valuedouble < 1 || exp->valuedouble > 1e11) {
		snprintf(err, errlen, "token.exp: out of range");
		return -1;
	}
	jwt->exp = (int64_t)exp->valuedouble;
	iat = cJSON_GetObjectItemCaseSensitive(o, "iat");
	if (iat != NULL && !cJSON_IsNumber(iat))
		return field_err(err, errlen, "token", "iat", "a number", iat);
	if (iat != NULL && iat->valuedouble > 0 && iat->valuedouble < 1e11)
		jwt->iat = (int64_t)iat->valuedouble;
	if (jwt_str_claim(o, "api_version", jwt->api_version,
	    sizeof(jwt->api_version), err, errlen) == -1 ||
	    jwt_str_claim(o, "server_version", jwt->server_version,
	    sizeof(jwt->server_version), err, errlen) == -1)
		return -1;
	return 0;
}

/*
 * Reads a JWT's claims without verifying it, as ClearML's own clients
 * do: the server checks the signature, we only need to know when to log
 * in again and what we talk to.
 */
int
cml_jwt_parse(const char *token, struct cml_jwt *jwt, char *err,
    size_t errlen)
{
	const char	*p1, *p2;
	char		*json;
	size_t		 len;
	cJSON		*o;
	int		 rc;

	memset(jwt, 0, sizeof(*jwt));
	if (token == NULL || strlen(token) > CML_JWT_MAX ||
	    (p1 = strchr(token, '.')) == NULL ||
	    (p2 = strchr(p1 + 1, '.')) == NULL || strchr(p2 + 1, '.') != NULL ||
	    p1 == token) {
		snprintf(err, errlen, "token is not a JWT (three parts "
		    "separated by dots)");
		return -1;
	}
	if ((json = b64url_decode(p1 + 1, (size_t)(p2 - p1 - 1), &len)) ==
	    NULL) {
		snprintf(err, errlen, "token payload is not base64url");
		return -1;
	}
	o = cJSON_ParseWithLength(json, len);
	free(json);
	if (o == NULL) {
		snprintf(err, errlen, "token payload is not JSON");
		return -1;
	}
	rc = jwt_claims_from(o, jwt, err, errlen);
	cJSON_Delete(o);
	return rc;
}

int
cml_jwt_claims(const char *token, int64_t *exp, char *api, size_t apilen,
    char *server, size_t serverlen)
{
	struct cml_jwt	 jwt;
	char		 err[128];

	if (cml_jwt_parse(token, &jwt, err, sizeof(err)) == -1)
		return -1;
	*exp = jwt.exp;
	snprintf(api, apilen, "%s", jwt.api_version);
	snprintf(server, serverlen, "%s", jwt.server_version);
	return 0;
}

/* Small helpers */

/* The server's worker_pattern glob: '*' any run, '?' one character. */
int
cml_glob_match(const char *pat, const char *s)
{
	const char	*star = NULL, *resume = NULL;

	if (pat == NULL || s == NULL)
		return 0;
	while (*s != '\0') {
		if (*pat == '*') {
			star = pat++;
			resume = s;
		} else if (*pat == '?' || *pat == *s) {
			pat++;
			s++;
		} else if (star != NULL) {
			pat = star + 1;
			s = ++resume;
		} else
			return 0;
	}
	while (*pat == '*')
		pat++;
	return *pat == '\0';
}

/*
 * Escapes a string for a Python regex, as re.escape does: everything
 * but ASCII letters, digits and '_' gets a backslash (bytes of UTF-8
 * sequences are left as they are).
 */
char *
cml_regex_escape(const char *s)
{
	size_t	 i, j = 0, n = strlen(s);
	char	*out = xmalloc(n * 2 + 1);

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (!isalnum(ch) && ch != '_' && ch < 0x80)
			out[j++] = '\\';
		out[j++] = (char)ch;
	}
	out[j] = '\0';
	return out;
}

/* Is "MAJOR.MINOR" at least major.minor?  -1 when it does not parse. */
int
cml_api_at_least(const char *v, int major, int minor)
{
	long	 ma, mi;
	char	*end;

	if (v == NULL || !isdigit((unsigned char)*v))
		return -1;
	ma = strtol(v, &end, 10);
	if (*end != '.' || !isdigit((unsigned char)end[1]))
		return -1;
	mi = strtol(end + 1, &end, 10);
	if (*end != '\0' && *end != '.')
		return -1;
	return ma > major || (ma == major && mi >= minor);
}
