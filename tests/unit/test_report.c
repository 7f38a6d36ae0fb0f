/*
 * test_report.c: the ClearML reporting.  First the batch body built
 * from a status and log lines: newline-delimited JSON, the fields of a
 * scalar and of a log event, iterations, masking, the bounded backlog
 * and its note, the caps of one batch, what a batch in flight leaves.
 * Then the reporter itself against a small in-process ClearML server:
 * an outage at start, the project and task created, the first batch
 * as JSON lines, the task stopped on a graceful stop and reused, with
 * its iterations continued, after a restart.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>

#include "common.h"
#include "clearml.h"
#include "http.h"
#include "supervisor.h"

#define TASK	"0123456789abcdef0123456789abcdef"

static const char status_json[] =
    "{\"ok\":true,\"name\":\"test\","
    "\"global\":{\"instances_in_use\":5,\"max_instances_total\":8},"
    "\"resources\":["
    "{\"name\":\"gpu\",\"state\":\"running\",\"max_instances\":4,"
    " \"worker\":{\"counts\":{\"pending\":3,\"live\":2,\"idle\":1,"
    "  \"busy\":1,\"booting\":1}}},"
    "{\"name\":\"cpu\",\"state\":\"running\",\"max_instances\":6,"
    " \"worker\":{\"counts\":{\"pending\":0,\"live\":3,\"idle\":2,"
    "  \"busy\":1,\"booting\":0}}},"
    "{\"name\":\"down\",\"state\":\"backoff\",\"max_instances\":2}]}";

static cJSON *
json(const char *s)
{
	cJSON	*o = cJSON_Parse(s);

	assert_non_null(o);
	return o;
}

/* The events of a batch body, each line parsed; checks the framing. */
static cJSON *
lines_of(const char *body)
{
	cJSON		*arr = cJSON_CreateArray();
	const char	*p = body, *nl;
	char		*line;

	assert_non_null(body);
	assert_true(strlen(body) > 0);
	assert_int_equal(body[strlen(body) - 1], '\n');
	while (*p != '\0') {
		nl = strchr(p, '\n');
		assert_non_null(nl);
		assert_true(nl > p);	/* no empty line */
		line = xstrndup(p, (size_t)(nl - p));
		cJSON_AddItemToArray(arr, json(line));
		free(line);
		p = nl + 1;
	}
	return arr;
}

static const char *
str(const cJSON *o, const char *k)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(o, k);

	assert_true(cJSON_IsString(v));
	return v->valuestring;
}

static double
num(const cJSON *o, const char *k)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(o, k);

	assert_true(cJSON_IsNumber(v));
	return v->valuedouble;
}

/* The value of metric/variant among the events, or -1. */
static double
scalar(const cJSON *evs, const char *metric, const char *variant)
{
	const cJSON	*e;

	cJSON_ArrayForEach(e, evs)
		if (strcmp(str(e, "type"), "training_stats_scalar") == 0 &&
		    strcmp(str(e, "metric"), metric) == 0 &&
		    strcmp(str(e, "variant"), variant) == 0)
			return num(e, "value");
	return -1;
}

static char *
line_at(int64_t ts, int level, const char *who, const char *text)
{
	char	 buf[1024];

	log_format_line(buf, sizeof(buf), ts, level, who, text);
	return xstrdup(buf);
}

static void
add_line(struct report_backlog *bl, int64_t ts, int level, const char *who,
    const char *text)
{
	char	*l = line_at(ts, level, who, text);

	report_backlog_line(bl, l);
	free(l);
}

/* Scalars */

static void
test_scalars_from_status(void **state)
{
	struct report_backlog	 bl;
	struct report_sent	 sent;
	cJSON			*st = json(status_json), *evs, *e;
	char			*body;
	size_t			 n;

	(void)state;
	report_backlog_init(&bl, 100, 100, 1 << 20);
	n = report_backlog_status(&bl, st, 7, 1700000000123LL);
	/* 6 for each resource that polled, in use and the cap */
	assert_int_equal(n, 14);
	body = report_batch(&bl, TASK, 0, 500, 1 << 20, &sent);
	evs = lines_of(body);
	assert_int_equal(cJSON_GetArraySize(evs), 14);
	assert_int_equal(sent.nevents, 14);
	cJSON_ArrayForEach(e, evs) {
		/* what the SDK's ScalarEvent carries */
		assert_string_equal(str(e, "type"), "training_stats_scalar");
		assert_string_equal(str(e, "task"), TASK);
		assert_true(num(e, "iter") == 7);
		assert_true(num(e, "timestamp") == 1700000000123.0);
		assert_true(strlen(str(e, "metric")) > 0);
		assert_true(strlen(str(e, "variant")) > 0);
		(void)num(e, "value");
	}
	assert_true(scalar(evs, "queue length", "gpu") == 3);
	assert_true(scalar(evs, "queue length", "cpu") == 0);
	assert_true(scalar(evs, "idle workers", "gpu") == 1);
	assert_true(scalar(evs, "idle workers", "cpu") == 2);
	assert_true(scalar(evs, "busy workers", "cpu") == 1);
	assert_true(scalar(evs, "booting", "gpu") == 1);
	assert_true(scalar(evs, "instances", "gpu") == 2);
	assert_true(scalar(evs, "instances", "gpu allowed") == 4);
	assert_true(scalar(evs, "instances", "cpu allowed") == 6);
	assert_true(scalar(evs, "instances total", "in use") == 5);
	assert_true(scalar(evs, "instances total", "cap") == 8);
	/* a resource without a snapshot has no values at all */
	assert_true(scalar(evs, "queue length", "down") == -1);
	assert_true(scalar(evs, "instances", "down allowed") == -1);
	cJSON_Delete(evs);
	free(body);
	report_backlog_clear(&bl);
	cJSON_Delete(st);
}

static void
test_scalars_edge_cases(void **state)
{
	struct report_backlog	 bl;
	struct report_sent	 sent;
	cJSON			*st, *evs;
	char			*body;

	(void)state;
	report_backlog_init(&bl, 100, 100, 1 << 20);
	/* nobody polled yet: nothing, not even the totals */
	st = json("{\"global\":{\"instances_in_use\":0},\"resources\":"
	    "[{\"name\":\"gpu\",\"state\":\"starting\"}]}");
	assert_int_equal(report_backlog_status(&bl, st, 1, 1), 0);
	assert_null(report_batch(&bl, TASK, 0, 500, 1 << 20, &sent));
	assert_int_equal(sent.nevents, 0);
	cJSON_Delete(st);
	/* no cap: no cap series; a field of the wrong type is skipped */
	st = json("{\"global\":{\"instances_in_use\":1,"
	    "\"max_instances_total\":0},\"resources\":[{\"name\":\"gpu\","
	    "\"max_instances\":2,\"worker\":{\"counts\":{\"pending\":\"x\","
	    "\"live\":1,\"idle\":0,\"busy\":1,\"booting\":0}}}]}");
	assert_int_equal(report_backlog_status(&bl, st, 1, 1), 6);
	body = report_batch(&bl, TASK, 0, 500, 1 << 20, &sent);
	evs = lines_of(body);
	assert_true(scalar(evs, "queue length", "gpu") == -1);
	assert_true(scalar(evs, "instances total", "cap") == -1);
	assert_true(scalar(evs, "instances total", "in use") == 1);
	cJSON_Delete(evs);
	free(body);
	cJSON_Delete(st);
	/* garbage in: nothing, no crash */
	st = json("{\"resources\":{\"name\":1},\"global\":[]}");
	assert_int_equal(report_backlog_status(&bl, st, 2, 1), 0);
	cJSON_Delete(st);
	st = json("[1,2]");
	assert_int_equal(report_backlog_status(&bl, st, 2, 1), 0);
	cJSON_Delete(st);
	report_backlog_clear(&bl);
}

/* Intervals recorded while the server is away go out in order. */
static void
test_iterations_increase(void **state)
{
	struct report_backlog	 bl;
	struct report_sent	 sent;
	cJSON			*st = json(status_json), *evs, *e;
	char			*body;
	double			 last = 0;
	int			 i;

	(void)state;
	report_backlog_init(&bl, 1000, 100, 1 << 20);
	for (i = 1; i <= 5; i++)
		report_backlog_status(&bl, st, 40 + i, 1000 * i);
	/* a small batch: the oldest intervals first */
	body = report_batch(&bl, TASK, 0, 30, 1 << 20, &sent);
	evs = lines_of(body);
	assert_int_equal(cJSON_GetArraySize(evs), 30);
	cJSON_ArrayForEach(e, evs) {
		assert_true(num(e, "iter") >= last);
		last = num(e, "iter");
	}
	assert_true(num(cJSON_GetArrayItem(evs, 0), "iter") == 41);
	assert_true(last == 43);
	cJSON_Delete(evs);
	free(body);
	report_backlog_sent(&bl, &sent);
	assert_int_equal(bl.nscalars, 70 - 30);
	body = report_batch(&bl, TASK, 0, 500, 1 << 20, &sent);
	evs = lines_of(body);
	assert_int_equal(cJSON_GetArraySize(evs), 40);
	assert_true(num(cJSON_GetArrayItem(evs, 0), "iter") >= 43);
	assert_true(num(cJSON_GetArrayItem(evs, 39), "iter") == 45);
	cJSON_Delete(evs);
	free(body);
	report_backlog_sent(&bl, &sent);
	assert_int_equal(bl.nscalars, 0);
	assert_null(report_batch(&bl, TASK, 0, 500, 1 << 20, &sent));
	report_backlog_clear(&bl);
	cJSON_Delete(st);
}

/* Log lines */

static void
test_log_events(void **state)
{
	struct report_backlog	 bl;
	struct report_sent	 sent;
	cJSON			*evs, *e;
	char			*body;
	int64_t			 before = now_ms();

	(void)state;
	report_backlog_init(&bl, 100, 100, 1 << 20);
	add_line(&bl, 1700000000001LL, LOG_LVL_INFO, "qscaled", "started");
	add_line(&bl, 1700000000002LL, LOG_LVL_WARN, "gpu", "launch failed");
	add_line(&bl, 1700000000003LL, LOG_LVL_ERROR, "cpu", "auth: \"x\"\t");
	add_line(&bl, 1700000000004LL, LOG_LVL_DEBUG, "gpu", "poll 3");
	report_backlog_line(&bl, "not a line of ours");
	report_backlog_line(&bl, "");
	body = report_batch(&bl, TASK, 0, 500, 1 << 20, &sent);
	evs = lines_of(body);
	assert_int_equal(cJSON_GetArraySize(evs), 6);
	cJSON_ArrayForEach(e, evs) {
		/* what the SDK's TaskLogEvent carries */
		assert_string_equal(str(e, "type"), "log");
		assert_string_equal(str(e, "task"), TASK);
		(void)num(e, "timestamp");
		(void)str(e, "level");
		(void)str(e, "msg");
		assert_null(cJSON_GetObjectItem(e, "iter"));
	}
	e = cJSON_GetArrayItem(evs, 0);
	assert_true(num(e, "timestamp") == 1700000000001.0);
	assert_string_equal(str(e, "level"), "info");
	assert_string_equal(str(e, "msg"), "INFO qscaled: started");
	e = cJSON_GetArrayItem(evs, 1);
	assert_string_equal(str(e, "level"), "warning");
	assert_string_equal(str(e, "msg"), "WARN gpu: launch failed");
	e = cJSON_GetArrayItem(evs, 2);
	assert_string_equal(str(e, "level"), "error");
	assert_string_equal(str(e, "msg"), "ERROR cpu: auth: \"x\"\t");
	assert_string_equal(str(cJSON_GetArrayItem(evs, 3), "level"),
	    "debug");
	/* a line not in our format: all of it, now, info */
	e = cJSON_GetArrayItem(evs, 4);
	assert_string_equal(str(e, "msg"), "not a line of ours");
	assert_string_equal(str(e, "level"), "info");
	assert_true(num(e, "timestamp") >= (double)before);
	cJSON_Delete(evs);
	free(body);
	report_backlog_clear(&bl);
}

static void
test_masking(void **state)
{
	struct report_backlog	 bl;
	struct report_sent	 sent;
	char			*body, *l;

	(void)state;
	report_backlog_init(&bl, 100, 100, 1 << 20);
	/* written before the secret was known: masked on the way out */
	l = line_at(now_ms(), LOG_LVL_INFO, "gpu", "key=sEcReT-TOKEN-42 ok");
	mask_register("sEcReT-TOKEN-42");
	report_backlog_line(&bl, l);
	free(l);
	add_line(&bl, now_ms(), LOG_LVL_INFO, "gpu", "again sEcReT-TOKEN-42");
	body = report_batch(&bl, TASK, 0, 500, 1 << 20, &sent);
	assert_null(strstr(body, "sEcReT-TOKEN-42"));
	assert_non_null(strstr(body, "key=" MASK_TEXT " ok"));
	assert_non_null(strstr(body, "again " MASK_TEXT));
	free(body);
	report_backlog_clear(&bl);
	mask_clear();
}

/* The backlog */

static void
test_bounded_logs(void **state)
{
	struct report_backlog	 bl;
	struct report_sent	 sent;
	cJSON			*evs, *e;
	char			*body, text[32];
	int			 i;

	(void)state;
	report_backlog_init(&bl, 100, 100, 1 << 20);
	for (i = 1; i <= 250; i++) {
		snprintf(text, sizeof(text), "line %d", i);
		add_line(&bl, 1000 + i, LOG_LVL_INFO, "gpu", text);
	}
	assert_int_equal(bl.nlogs, 100);
	assert_int_equal(bl.dropped_logs, 150);
	body = report_batch(&bl, TASK, 5, 500, 1 << 20, &sent);
	evs = lines_of(body);
	assert_int_equal(cJSON_GetArraySize(evs), 101);
	/* the note first, in its place in time, then the newest 100 */
	e = cJSON_GetArrayItem(evs, 0);
	assert_string_equal(str(e, "type"), "log");
	assert_string_equal(str(e, "level"), "warning");
	assert_non_null(strstr(str(e, "msg"), "150 log lines"));
	assert_non_null(strstr(str(e, "msg"), "dropped"));
	assert_true(num(e, "timestamp") == 1151);
	assert_string_equal(str(cJSON_GetArrayItem(evs, 1), "msg"),
	    "INFO gpu: line 151");
	assert_string_equal(str(cJSON_GetArrayItem(evs, 100), "msg"),
	    "INFO gpu: line 250");
	cJSON_Delete(evs);
	free(body);
	/* sent: no note the next time */
	report_backlog_sent(&bl, &sent);
	assert_int_equal(bl.nlogs, 0);
	assert_int_equal(bl.dropped_logs, 0);
	add_line(&bl, 2000, LOG_LVL_INFO, "gpu", "after");
	body = report_batch(&bl, TASK, 5, 500, 1 << 20, &sent);
	evs = lines_of(body);
	assert_int_equal(cJSON_GetArraySize(evs), 1);
	assert_null(strstr(body, "dropped"));
	cJSON_Delete(evs);
	free(body);
	report_backlog_clear(&bl);
}

/* Long lines: the byte cap holds whatever the count. */
static void
test_bounded_bytes(void **state)
{
	struct report_backlog	 bl;
	char			 text[1001];
	int			 i;

	(void)state;
	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	report_backlog_init(&bl, 100, 100000, 10000);
	for (i = 0; i < 1000; i++)
		add_line(&bl, 1000 + i, LOG_LVL_INFO, "gpu", text);
	assert_true(bl.log_bytes <= 10000);
	assert_true(bl.nlogs >= 9 && bl.nlogs <= 10);
	assert_int_equal(bl.nlogs + bl.dropped_logs, 1000);
	report_backlog_clear(&bl);
}

static void
test_bounded_scalars(void **state)
{
	struct report_backlog	 bl;
	struct report_sent	 sent;
	cJSON			*st = json(status_json), *evs;
	char			*body;
	int			 i;

	(void)state;
	report_backlog_init(&bl, 28, 100, 1 << 20);
	for (i = 1; i <= 10; i++)
		report_backlog_status(&bl, st, i, i);
	/* the last two intervals are what is left */
	assert_int_equal(bl.nscalars, 28);
	assert_int_equal(bl.dropped_scalars, 140 - 28);
	body = report_batch(&bl, TASK, 0, 500, 1 << 20, &sent);
	evs = lines_of(body);
	assert_non_null(strstr(str(cJSON_GetArrayItem(evs, 0), "msg"),
	    "112 scalar values"));
	assert_null(strstr(str(cJSON_GetArrayItem(evs, 0), "msg"),
	    "log line"));
	assert_true(num(cJSON_GetArrayItem(evs, 1), "iter") == 9);
	assert_true(num(cJSON_GetArrayItem(evs, 28), "iter") == 10);
	cJSON_Delete(evs);
	free(body);
	report_backlog_clear(&bl);
	cJSON_Delete(st);
}

/* One batch is capped by events and by bytes; the first always fits. */
static void
test_batch_caps(void **state)
{
	struct report_backlog	 bl;
	struct report_sent	 sent;
	cJSON			*evs;
	char			*body, text[32];
	int			 i;

	(void)state;
	report_backlog_init(&bl, 100, 100, 1 << 20);
	for (i = 1; i <= 25; i++) {
		snprintf(text, sizeof(text), "line %d", i);
		add_line(&bl, 1000 + i, LOG_LVL_INFO, "gpu", text);
	}
	body = report_batch(&bl, TASK, 0, 10, 1 << 20, &sent);
	assert_true(sent.full);
	evs = lines_of(body);
	assert_int_equal(cJSON_GetArraySize(evs), 10);
	cJSON_Delete(evs);
	free(body);
	report_backlog_sent(&bl, &sent);
	assert_int_equal(bl.nlogs, 15);
	body = report_batch(&bl, TASK, 0, 500, 300, &sent);
	assert_true(strlen(body) <= 300);
	evs = lines_of(body);
	assert_true(cJSON_GetArraySize(evs) >= 1 &&
	    cJSON_GetArraySize(evs) < 15);
	assert_string_equal(str(cJSON_GetArrayItem(evs, 0), "msg"),
	    "INFO gpu: line 11");
	cJSON_Delete(evs);
	free(body);
	body = report_batch(&bl, TASK, 0, 500, 10, &sent);
	evs = lines_of(body);
	assert_int_equal(cJSON_GetArraySize(evs), 1);
	cJSON_Delete(evs);
	free(body);
	body = report_batch(&bl, TASK, 0, 500, 1 << 20, &sent);
	assert_false(sent.full);
	assert_int_equal(sent.nevents, 15);
	free(body);
	report_backlog_clear(&bl);
}

/*
 * While a batch is in flight, lines arrive and the oldest are dropped:
 * its success forgets only what it carried.
 */
static void
test_sent_while_in_flight(void **state)
{
	struct report_backlog	 bl;
	struct report_sent	 sent;
	cJSON			*evs;
	char			*body, text[32];
	int			 i;

	(void)state;
	report_backlog_init(&bl, 100, 10, 1 << 20);
	for (i = 1; i <= 8; i++) {
		snprintf(text, sizeof(text), "line %d", i);
		add_line(&bl, 1000 + i, LOG_LVL_INFO, "gpu", text);
	}
	body = report_batch(&bl, TASK, 0, 5, 1 << 20, &sent);
	free(body);
	for (i = 9; i <= 14; i++) {	/* drops lines 1 to 4 */
		snprintf(text, sizeof(text), "line %d", i);
		add_line(&bl, 1000 + i, LOG_LVL_INFO, "gpu", text);
	}
	assert_int_equal(bl.dropped_logs, 4);
	report_backlog_sent(&bl, &sent);	/* lines 1 to 5 */
	assert_int_equal(bl.nlogs, 9);
	/* the drops happened after the batch was made: still to tell */
	assert_int_equal(bl.dropped_logs, 4);
	body = report_batch(&bl, TASK, 0, 500, 1 << 20, &sent);
	evs = lines_of(body);
	assert_int_equal(cJSON_GetArraySize(evs), 10);
	assert_string_equal(str(cJSON_GetArrayItem(evs, 1), "msg"),
	    "INFO gpu: line 6");
	cJSON_Delete(evs);
	free(body);
	report_backlog_clear(&bl);
}

/* A reporter started again keeps the old backlog, older first. */
static void
test_backlog_move(void **state)
{
	struct report_backlog	 a, b;
	struct report_sent	 sent;
	cJSON			*st = json(status_json), *evs;
	char			*body;

	(void)state;
	report_backlog_init(&a, 100, 100, 1 << 20);
	report_backlog_init(&b, 100, 3, 1 << 20);
	add_line(&a, 1, LOG_LVL_INFO, "gpu", "old 1");
	add_line(&a, 2, LOG_LVL_INFO, "gpu", "old 2");
	add_line(&a, 3, LOG_LVL_INFO, "gpu", "old 3");
	report_backlog_status(&a, st, 3, 3);
	add_line(&b, 4, LOG_LVL_INFO, "gpu", "new 1");
	add_line(&b, 5, LOG_LVL_INFO, "gpu", "new 2");
	report_backlog_move(&b, &a);
	assert_int_equal(a.nlogs + a.nscalars, 0);
	assert_int_equal(b.nlogs, 3);		/* b's own cap */
	assert_int_equal(b.dropped_logs, 2);
	assert_int_equal(b.nscalars, 14);
	body = report_batch(&b, TASK, 0, 500, 1 << 20, &sent);
	evs = lines_of(body);
	assert_int_equal(cJSON_GetArraySize(evs), 1 + 14 + 3);
	assert_string_equal(str(cJSON_GetArrayItem(evs, 15), "msg"),
	    "INFO gpu: old 3");
	assert_string_equal(str(cJSON_GetArrayItem(evs, 17), "msg"),
	    "INFO gpu: new 2");
	cJSON_Delete(evs);
	free(body);
	report_backlog_sent(&b, &sent);
	assert_int_equal(b.nlogs + b.nscalars, 0);
	report_backlog_clear(&a);
	report_backlog_clear(&b);
	cJSON_Delete(st);
}

/*
 * The reporter against a small ClearML server of its own: it speaks the
 * envelope and what the reporter calls, keeps one project and one task
 * as the real server would (last_iteration the highest scalar iter),
 * and can be "down" (503 to everything).
 */

static const char ok_meta[] = "\"meta\":{\"id\":\"x\",\"result_code\":200,"
    "\"result_subcode\":0,\"result_msg\":\"OK\"}";

struct fake {
	struct event_base	*base;
	struct evhttp		*http;
	int			 port;
	int			 down;
	int			 logins;
	int			 nprojects;
	char			 project_name[64];
	int			 ntasks;
	char			 task_name[64];
	char			 task_type[32];
	char			 status[32];
	char			 comment[512];
	int64_t			 last_iter;
	int			 started;
	int			 stopped;
	int			 edits;
	int			 batches;
	int			 bad_batches;	/* not application/json-lines */
	int			 batch_scalars;	/* in the last batch */
	int64_t			 batch_min_iter;
	int			 nlogs;
	char			*events;	/* every event line */
	size_t			 events_len;
	size_t			 events_cap;
	cJSON			*props;		/* the task's hyperparams */
	int			 prop_edits;
	int			 prop_gets;
	char			 set_res[32];	/* the last set_level call */
	int			 set_level;
	int			 set_calls;
};

static char *
b64url(const char *s)
{
	size_t		 n = strlen(s), i, j;
	unsigned char	*b = xmalloc((n + 2) / 3 * 4 + 1);

	EVP_EncodeBlock(b, (const unsigned char *)s, (int)n);
	for (i = j = 0; b[i] != '\0'; i++) {
		if (b[i] == '=')
			continue;
		b[j++] = b[i] == '+' ? '-' : b[i] == '/' ? '_' : b[i];
	}
	b[j] = '\0';
	return (char *)b;
}

static char *
fake_jwt(void)
{
	char	 payload[160], *h, *p, *tok;
	int64_t	 now = now_ms() / 1000;

	snprintf(payload, sizeof(payload), "{\"iat\":%lld,\"exp\":%lld,"
	    "\"api_version\":\"2.31\",\"server_version\":\"2.0.0\"}",
	    (long long)now, (long long)(now + 86400));
	h = b64url("{\"alg\":\"HS256\",\"typ\":\"JWT\"}");
	p = b64url(payload);
	xasprintf(&tok, "%s.%s.c2ln", h, p);
	free(h);
	free(p);
	return tok;
}

static void
fake_reply(struct evhttp_request *req, int status, const char *data)
{
	struct evbuffer	*b = evbuffer_new();
	char		*body;

	if (status == 200)
		xasprintf(&body, "{%s,\"data\":%s}", ok_meta, data);
	else
		xasprintf(&body, "{\"meta\":{\"id\":\"x\",\"result_code\":%d,"
		    "\"result_subcode\":0,\"result_msg\":\"%s\"},\"data\":{}}",
		    status, data);
	evbuffer_add(b, body, strlen(body));
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "application/json");
	evhttp_send_reply(req, status, "X", b);
	evbuffer_free(b);
	free(body);
}

static const char *
jstr(const cJSON *o, const char *k)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : "";
}

static void
fake_batch(struct fake *f, struct evhttp_request *req, const char *body)
{
	const char	*ct, *p, *nl;
	cJSON		*e;
	char		*line, data[64];
	int		 added = 0;

	ct = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Content-Type");
	if (ct == NULL || strcmp(ct, "application/json-lines") != 0) {
		f->bad_batches++;
		fake_reply(req, 400, "Batch request contains no items");
		return;
	}
	f->batches++;
	f->batch_scalars = 0;
	f->batch_min_iter = -1;
	for (p = body; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
		line = xstrndup(p, (size_t)(nl - p));
		e = cJSON_Parse(line);
		assert_non_null(e);
		assert_string_equal(jstr(e, "task"), TASK);
		if (strcmp(jstr(e, "type"), "training_stats_scalar") == 0) {
			int64_t it = (int64_t)cJSON_GetObjectItem(e,
			    "iter")->valuedouble;

			f->batch_scalars++;
			f->last_iter = QS_MAX(f->last_iter, it);
			if (f->batch_min_iter < 0 || it < f->batch_min_iter)
				f->batch_min_iter = it;
		} else
			f->nlogs++;
		f->events = xrealloc_grow(f->events, &f->events_cap,
		    f->events_len + strlen(line) + 2);
		f->events_len += (size_t)sprintf(f->events + f->events_len,
		    "%s\n", line);
		added++;
		cJSON_Delete(e);
		free(line);
	}
	snprintf(data, sizeof(data), "{\"added\":%d,\"errors\":0}", added);
	fake_reply(req, 200, data);
}

/* Sets a user property of the task, as the web UI would. */
static void
fake_prop_set(struct fake *f, const char *name, const char *value)
{
	cJSON	*h;
	int	 i = 0;

	if (f->props == NULL)
		f->props = cJSON_CreateArray();
	cJSON_ArrayForEach(h, f->props) {
		if (strcmp(jstr(h, "name"), name) == 0) {
			cJSON_DeleteItemFromArray(f->props, i);
			break;
		}
		i++;
	}
	h = cJSON_CreateObject();
	cJSON_AddStringToObject(h, "section", "properties");
	cJSON_AddStringToObject(h, "name", name);
	cJSON_AddStringToObject(h, "value", value);
	cJSON_AddItemToArray(f->props, h);
}

static const char *
fake_prop(struct fake *f, const char *name)
{
	cJSON	*h;

	cJSON_ArrayForEach(h, f->props)
		if (strcmp(jstr(h, "name"), name) == 0)
			return jstr(h, "value");
	return NULL;
}

static void
fake_task_out(struct fake *f, char *buf, size_t len)
{
	if (f->ntasks == 0)
		snprintf(buf, len, "{\"tasks\":[]}");
	else
		snprintf(buf, len, "{\"tasks\":[{\"id\":\"%s\",\"name\":"
		    "\"%s\",\"status\":\"%s\",\"last_iteration\":%lld}]}",
		    TASK, f->task_name, f->status, (long long)f->last_iter);
}

/* The task's user properties, as the server keeps hyperparams. */
static void
fake_hyper_params(struct fake *f, struct evhttp_request *req, const char *ep,
    cJSON *p)
{
	cJSON	*h, *o, *old;
	char	*text, *data;

	if (f->props == NULL)
		f->props = cJSON_CreateArray();
	if (strcmp(ep, "tasks.get_hyper_params") == 0) {
		f->prop_gets++;
		assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(p,
		    "tasks"), 0)->valuestring, TASK);
		o = cJSON_CreateObject();
		h = cJSON_AddArrayToObject(o, "params");
		old = cJSON_CreateObject();
		cJSON_AddStringToObject(old, "task", TASK);
		cJSON_AddItemToObject(old, "hyperparams",
		    cJSON_Duplicate(f->props, 1));
		cJSON_AddItemToArray(h, old);
		text = cJSON_PrintUnformatted(o);
		cJSON_Delete(o);
		fake_reply(req, 200, text);
		free(text);
		return;
	}
	f->prop_edits++;
	assert_string_equal(jstr(p, "task"), TASK);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(p, "force")));
	cJSON_ArrayForEach(h, cJSON_GetObjectItem(p, "hyperparams")) {
		fake_prop_set(f, jstr(h, "name"), jstr(h, "value"));
		assert_string_equal(jstr(h, "section"), "properties");
	}
	xasprintf(&data, "{\"updated\":1}");
	fake_reply(req, 200, data);
	free(data);
}

static void
fake_call(struct fake *f, struct evhttp_request *req, const char *ep,
    cJSON *p)
{
	char	 buf[512], *esc, *re;
	cJSON	*pg = cJSON_GetObjectItem(p, "page");

	if (cJSON_IsNumber(pg) && pg->valueint > 0 &&
	    strstr(ep, ".get_all") != NULL) {
		/* as the server pages: nothing after the first page here */
		snprintf(buf, sizeof(buf), "{\"%s\":[]}", strncmp(ep,
		    "projects", 8) == 0 ? "projects" : "tasks");
	} else if (strcmp(ep, "projects.get_all") == 0) {
		assert_string_equal(jstr(p, "name"), "^DevOps$");
		snprintf(buf, sizeof(buf), f->nprojects ? "{\"projects\":"
		    "[{\"id\":\"p1\",\"name\":\"DevOps\"}]}" :
		    "{\"projects\":[]}");
	} else if (strcmp(ep, "projects.create") == 0) {
		f->nprojects++;
		snprintf(f->project_name, sizeof(f->project_name), "%s",
		    jstr(p, "name"));
		snprintf(buf, sizeof(buf), "{\"id\":\"p1\"}");
	} else if (strcmp(ep, "tasks.get_all") == 0) {
		/* the one task, when the exact-name regex is its own */
		esc = cml_regex_escape(f->task_name);
		xasprintf(&re, "^%s$", esc);
		if (strcmp(jstr(p, "name"), re) == 0)
			fake_task_out(f, buf, sizeof(buf));
		else
			snprintf(buf, sizeof(buf), "{\"tasks\":[]}");
		free(esc);
		free(re);
	} else if (strcmp(ep, "tasks.create") == 0) {
		assert_string_equal(jstr(p, "project"), "p1");
		f->ntasks++;
		snprintf(f->task_name, sizeof(f->task_name), "%s",
		    jstr(p, "name"));
		snprintf(f->task_type, sizeof(f->task_type), "%s",
		    jstr(p, "type"));
		snprintf(f->comment, sizeof(f->comment), "%s",
		    jstr(p, "comment"));
		snprintf(f->status, sizeof(f->status), "created");
		snprintf(buf, sizeof(buf), "{\"id\":\"%s\"}", TASK);
	} else if (strcmp(ep, "tasks.edit") == 0) {
		f->edits++;
		snprintf(f->comment, sizeof(f->comment), "%s",
		    jstr(p, "comment"));
		snprintf(buf, sizeof(buf), "{\"updated\":1}");
	} else if (strcmp(ep, "tasks.started") == 0 ||
	    strcmp(ep, "tasks.stopped") == 0) {
		int started = strcmp(ep, "tasks.started") == 0;

		assert_string_equal(jstr(p, "task"), TASK);
		if (started)
			f->started++;
		else
			f->stopped++;
		snprintf(f->status, sizeof(f->status), "%s",
		    started ? "in_progress" : "stopped");
		snprintf(buf, sizeof(buf), "{\"updated\":1}");
	} else if (strcmp(ep, "tasks.get_hyper_params") == 0 ||
	    strcmp(ep, "tasks.edit_hyper_params") == 0) {
		fake_hyper_params(f, req, ep, p);
		return;
	} else {
		fake_reply(req, 404, "no such endpoint");
		return;
	}
	fake_reply(req, 200, buf);
}

static void
fake_cb(struct evhttp_request *req, void *arg)
{
	struct fake	*f = arg;
	struct evbuffer	*in = evhttp_request_get_input_buffer(req);
	const char	*uri = evhttp_request_get_uri(req);
	char		*body, *tok, data[1024];
	size_t		 n = evbuffer_get_length(in);
	cJSON		*p;

	body = xmalloc(n + 1);
	evbuffer_copyout(in, body, n);
	body[n] = '\0';
	if (f->down)
		fake_reply(req, 503, "down");
	else if (strcmp(uri, "/auth.login") == 0) {
		f->logins++;
		tok = fake_jwt();
		snprintf(data, sizeof(data), "{\"token\":\"%s\"}", tok);
		free(tok);
		fake_reply(req, 200, data);
	} else if (strcmp(uri, "/events.add_batch") == 0)
		fake_batch(f, req, body);
	else {
		p = cJSON_Parse(body);
		assert_non_null(p);
		fake_call(f, req, uri + 1, p);
		cJSON_Delete(p);
	}
	free(body);
}

static int
fake_setup(void **state)
{
	struct fake		*f = xcalloc(1, sizeof(*f));
	struct evhttp_bound_socket *bs;
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);

	f->base = event_base_new();
	f->http = evhttp_new(f->base);
	evhttp_set_gencb(f->http, fake_cb, f);
	bs = evhttp_bind_socket_with_handle(f->http, "127.0.0.1", 0);
	assert_non_null(bs);
	getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss,
	    &len);
	f->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	f->events = xstrdup("");
	f->events_cap = 1;
	log_set_sink(logsink_sink, NULL);
	*state = f;
	return 0;
}

static int
fake_teardown(void **state)
{
	struct fake	*f = *state;

	log_set_sink(NULL, NULL);
	logsink_close();
	evhttp_free(f->http);
	event_base_free(f->base);
	free(f->events);
	cJSON_Delete(f->props);
	free(f);
	mask_clear();
	return 0;
}

static cJSON *
fake_status(void *arg)
{
	(void)arg;
	return json(status_json);
}

/* Runs the loop until cond holds or ms pass; cond's last value. */
static int
run_until(struct fake *f, int (*cond)(struct fake *), int64_t ms)
{
	int64_t	 end = mono_ms() + ms;

	while (!cond(f) && mono_ms() < end) {
		event_base_loop(f->base, EVLOOP_NONBLOCK);
		usleep(2000);
	}
	return cond(f);
}

static int
has_batch(struct fake *f)
{
	return f->batches > 0;
}

static int
never(struct fake *f)
{
	(void)f;
	return 0;
}

static void
make_conf(struct qscale_conf *conf, struct fake *f, char *url, size_t len)
{
	memset(conf, 0, sizeof(*conf));
	snprintf(url, len, "http://127.0.0.1:%d", f->port);
	conf->name = "test";
	conf->polling_interval = 1000;
	conf->clearml.api_server = url;
	conf->clearml.access_key = "REPORTKEY";
	conf->clearml.secret_key = "report-SECRET-key-9";
	conf->clearml.request_timeout = 2000;
	conf->clearml.report = 1;
	conf->clearml.report_project = "DevOps";
	conf->clearml.report_name = "qscale test";
}

/* The levels in force, as the supervisor tells them: gpu and cpu. */
static cJSON *
fake_levels(void *arg)
{
	struct fake	*f = arg;
	cJSON		*o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "", "info");
	cJSON_AddStringToObject(o, "gpu", f->set_calls > 0 &&
	    strcmp(f->set_res, "gpu") == 0 ? log_level_name(f->set_level) :
	    "info");
	cJSON_AddStringToObject(o, "cpu", "warn");
	return o;
}

static int
fake_set_level(void *arg, const char *res, int level)
{
	struct fake	*f = arg;

	if (res != NULL && strcmp(res, "gpu") != 0 && strcmp(res, "cpu") != 0)
		return -1;
	f->set_calls++;
	snprintf(f->set_res, sizeof(f->set_res), "%s", res ? res : "*");
	f->set_level = level;
	return 0;
}

static int
props_quiet(struct fake *f)
{
	(void)f;
	return 0;
}

/* One reporting interval of the property check, run to its end. */
static void
props_interval(struct fake *f, struct report_props *p, int calls)
{
	int	 before = f->prop_gets + f->prop_edits;

	report_props_tick(p, TASK);
	while (f->prop_gets + f->prop_edits < before + calls)
		event_base_loop(f->base, EVLOOP_ONCE);
	run_until(f, props_quiet, 100);
}

/* log_level as a user property of the report task, both ways. */
static void
test_props(void **state)
{
	struct fake		*f = *state;
	struct report_env	 env = { f->base, NULL, fake_status,
				    fake_levels, fake_set_level, f };
	struct http_client	*http = http_client_new(f->base);
	struct cml_client	*cml;
	struct report_props	*p;
	char			 url[64];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", f->port);
	cml = cml_client_new(f->base, http, url, "REPORTKEY", "s3cret-9");
	p = report_props_new(&env, cml);

	/* first: the levels in force are published, nothing applied */
	fake_prop_set(f, "log_level", "debug");		/* a past run's */
	props_interval(f, p, 2);
	assert_int_equal(f->set_calls, 0);
	assert_string_equal(fake_prop(f, "log_level"), "info");
	assert_string_equal(fake_prop(f, "log_level.gpu"), "info");
	assert_string_equal(fake_prop(f, "log_level.cpu"), "warn");

	/* nothing changed: one reading, no edit */
	props_interval(f, p, 1);
	assert_int_equal(f->prop_edits, 1);

	/* the web UI sets DEBUG for gpu: applied to gpu alone */
	fake_prop_set(f, "log_level.gpu", "DEBUG");
	props_interval(f, p, 1);
	assert_int_equal(f->set_calls, 1);
	assert_string_equal(f->set_res, "gpu");
	assert_int_equal(f->set_level, LOG_LVL_DEBUG);
	assert_int_equal(f->prop_edits, 1);	/* it shows what runs */

	/* log_level: everything */
	fake_prop_set(f, "log_level", "Warning");
	props_interval(f, p, 1);
	assert_int_equal(f->set_calls, 2);
	assert_string_equal(f->set_res, "*");
	assert_int_equal(f->set_level, LOG_LVL_WARN);

	/* not a level: said, not applied; a resource nobody has: said */
	fake_prop_set(f, "log_level", "loud");
	fake_prop_set(f, "log_level.tpu", "debug");
	props_interval(f, p, 1);
	assert_int_equal(f->set_calls, 2);

	/* a level set elsewhere (qscalectl) is shown in the task */
	f->set_calls = 3;
	snprintf(f->set_res, sizeof(f->set_res), "gpu");
	f->set_level = LOG_LVL_ERROR;
	props_interval(f, p, 2);
	assert_string_equal(fake_prop(f, "log_level.gpu"), "error");

	report_props_free(p);
	cml_client_free(cml);
	http_client_free(http);
}

static void
test_reporter(void **state)
{
	struct fake		*f = *state;
	struct qscale_conf	 conf;
	struct report_env	 env = { f->base, "/etc/qscale/test.conf",
				    fake_status, fake_levels, fake_set_level, f };
	struct report		*r, *r2;
	cJSON			*st;
	char			 url[64];
	const char		*before;

	make_conf(&conf, f, url, sizeof(url));
	conf.clearml.report = 0;
	assert_null(report_start(&env, &conf));
	conf.clearml.report = 1;

	/* down at start: nothing blocks, the error is logged once */
	f->down = 1;
	logsink_line(LOG_LVL_INFO, now_ms(), "qscaled", "before the start");
	r = report_start(&env, &conf);
	assert_non_null(r);
	run_until(f, never, 300);
	assert_int_equal(f->batches + f->logins, 0);
	st = report_status_json(r);
	assert_string_equal(str(st, "state"), "waiting");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(st, "failing")));
	cJSON_Delete(st);

	/* back: project and task created, the first batch at once */
	log_set_level(LOG_LVL_DEBUG);
	f->down = 0;
	assert_true(run_until(f, has_batch, 5000));
	assert_int_equal(f->bad_batches, 0);
	assert_int_equal(f->nprojects, 1);
	assert_string_equal(f->project_name, "DevOps");
	assert_int_equal(f->ntasks, 1);
	assert_string_equal(f->task_name, "qscale test");
	assert_string_equal(f->task_type, "application");
	assert_non_null(strstr(f->comment, QSCALE_VERSION));
	assert_non_null(strstr(f->comment, "/etc/qscale/test.conf"));
	assert_string_equal(f->status, "in_progress");
	assert_int_equal(f->batch_scalars, 14);
	assert_int_equal(f->batch_min_iter, 1);
	assert_int_equal(f->last_iter, 1);
	/* the line from before the start, and the outage, once */
	assert_non_null(strstr(f->events, "INFO qscaled: before the start"));
	assert_non_null(strstr(f->events, "auth.login failed"));
	assert_null(strstr(strstr(f->events, "auth.login failed") + 1,
	    "auth.login failed"));
	assert_non_null(strstr(f->events, "reporting to ClearML task " TASK));
	assert_null(strstr(f->events, "report-SECRET-key-9"));
	st = report_status_json(r);
	assert_string_equal(str(st, "state"), "reporting");
	assert_string_equal(str(st, "task"), TASK);
	assert_false(cJSON_IsTrue(cJSON_GetObjectItem(st, "failing")));
	cJSON_Delete(st);

	/*
	 * At debug level every call logs a line: those wait for the next
	 * interval, a batch does not call for the next one.
	 */
	run_until(f, never, 600);
	log_set_level(LOG_LVL_INFO);
	assert_int_equal(f->batches, 1);

	/* a reload that changes nothing of ClearML keeps the reporter */
	conf.polling_interval = 20000;
	assert_ptr_equal(report_reload(r, &env, &conf), r);

	/* a graceful stop: the last lines, then the task stopped */
	logsink_line(LOG_LVL_INFO, now_ms(), "qscaled", "stopping: SIGTERM");
	report_finish(r);
	assert_int_equal(f->stopped, 1);
	assert_string_equal(f->status, "stopped");
	assert_non_null(strstr(f->events, "stopping: SIGTERM"));

	/* a restart: the same task, started again, iterations go on */
	f->batches = 0;
	r = report_start(&env, &conf);
	assert_true(run_until(f, has_batch, 5000));
	assert_int_equal(f->ntasks, 1);
	assert_int_equal(f->nprojects, 1);
	assert_int_equal(f->edits, 1);
	assert_int_equal(f->started, 2);
	assert_string_equal(f->status, "in_progress");
	assert_int_equal(f->batch_min_iter, 2);
	assert_int_equal(f->last_iter, 2);
	assert_int_equal(f->bad_batches, 0);

	/*
	 * A reload with another task name: a new reporter, a new task, and
	 * what the old one had not sent yet goes to it, in order.
	 */
	logsink_line(LOG_LVL_INFO, now_ms(), "gpu", "just before the reload");
	f->batches = 0;
	conf.clearml.report_name = "qscale other";
	r2 = report_reload(r, &env, &conf);
	assert_non_null(r2);
	assert_ptr_not_equal(r2, r);
	assert_true(run_until(f, has_batch, 5000));
	assert_int_equal(f->ntasks, 2);
	assert_string_equal(f->task_name, "qscale other");
	assert_int_equal(f->batch_min_iter, 3);
	before = strstr(f->events, "just before the reload");
	assert_non_null(before);
	assert_non_null(strstr(before, "starting again"));

	/* reporting turned off by a reload */
	conf.clearml.report = 0;
	assert_null(report_reload(r2, &env, &conf));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scalars_from_status),
		cmocka_unit_test(test_scalars_edge_cases),
		cmocka_unit_test(test_iterations_increase),
		cmocka_unit_test(test_log_events),
		cmocka_unit_test(test_masking),
		cmocka_unit_test(test_bounded_logs),
		cmocka_unit_test(test_bounded_bytes),
		cmocka_unit_test(test_bounded_scalars),
		cmocka_unit_test(test_batch_caps),
		cmocka_unit_test(test_sent_while_in_flight),
		cmocka_unit_test(test_backlog_move),
		cmocka_unit_test_setup_teardown(test_props, fake_setup,
		    fake_teardown),
		cmocka_unit_test_setup_teardown(test_reporter, fake_setup,
		    fake_teardown),
	};

	log_init("test", LOG_LVL_INFO, 0);
	return cmocka_run_group_tests_name("report", tests, NULL, NULL);
}
