/*
 * test_proto.c: framing of the supervisor <-> worker messages.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "common.h"
#include "proto.h"

static cJSON *
obj(const char *json)
{
	cJSON	*o = cJSON_Parse(json);

	assert_non_null(o);
	return o;
}

static void
test_roundtrip(void **state)
{
	struct evbuffer		*b = evbuffer_new();
	struct proto_msg	 m;
	cJSON			*o = obj("{\"level\":\"INFO\",\"text\":\"hi\"}");
	char			 err[128];

	(void)state;
	assert_int_equal(proto_pack(b, MSG_LOG, 3, o), 0);
	assert_int_equal(proto_unpack(b, &m, err, sizeof(err)), 1);
	assert_int_equal(m.hdr.type, MSG_LOG);
	assert_int_equal(m.hdr.resource, 3);
	assert_int_equal(m.hdr.pid, (uint32_t)getpid());
	assert_string_equal(proto_get_str(m.body, "text"), "hi");
	assert_int_equal(evbuffer_get_length(b), 0);
	proto_msg_clear(&m);
	assert_int_equal(proto_unpack(b, &m, err, sizeof(err)), 0);
	proto_msg_clear(&m);
	cJSON_Delete(o);
	evbuffer_free(b);
}

/* Bytes arriving one at a time yield the message only when complete. */
static void
test_split_reads(void **state)
{
	struct evbuffer		*src = evbuffer_new(), *dst = evbuffer_new();
	struct proto_msg	 m;
	cJSON			*o = obj("{\"a\":1}");
	char			 err[128], byte;
	size_t			 total, i;
	int			 got = 0;

	(void)state;
	proto_pack(src, MSG_STATE, 0, o);
	proto_pack(src, MSG_EVENT, 0, o);
	total = evbuffer_get_length(src);
	for (i = 0; i < total; i++) {
		evbuffer_remove(src, &byte, 1);
		evbuffer_add(dst, &byte, 1);
		int rc = proto_unpack(dst, &m, err, sizeof(err));
		assert_true(rc == 0 || rc == 1);
		if (rc == 1) {
			got++;
			assert_int_equal(m.hdr.type, got == 1 ? MSG_STATE :
			    MSG_EVENT);
			proto_msg_clear(&m);
		}
	}
	assert_int_equal(got, 2);
	cJSON_Delete(o);
	evbuffer_free(src);
	evbuffer_free(dst);
}

static void
add_raw(struct evbuffer *b, uint32_t type, uint32_t len, const char *body)
{
	struct proto_hdr	 h = { type, len, 0, 1 };

	evbuffer_add(b, &h, sizeof(h));
	if (body != NULL)
		evbuffer_add(b, body, strlen(body));
}

static void
expect_error(uint32_t type, uint32_t len, const char *body, const char *what)
{
	struct evbuffer		*b = evbuffer_new();
	struct proto_msg	 m;
	char			 err[160];

	add_raw(b, type, len, body);
	assert_int_equal(proto_unpack(b, &m, err, sizeof(err)), -1);
	assert_non_null(strstr(err, what));
	assert_null(m.body);
	evbuffer_free(b);
}

static void
test_oversized(void **state)
{
	(void)state;
	/* Refused from the header alone, before any payload arrives. */
	expect_error(MSG_STATE, PROTO_MAX_PAYLOAD + 1, NULL, "exceeds");
	expect_error(MSG_STATE, UINT32_MAX, NULL, "exceeds");
}

static void
test_bad_json(void **state)
{
	(void)state;
	expect_error(MSG_LOG, 5, "{bad}", "not a JSON object");
	expect_error(MSG_LOG, 2, "[]", "not a JSON object");
	expect_error(MSG_LOG, 3, "\"x\"", "not a JSON object");
	expect_error(MSG_LOG, 0, "", "not a JSON object");
}

static void
test_nul_in_payload(void **state)
{
	struct evbuffer		*b = evbuffer_new();
	struct proto_hdr	 h = { MSG_LOG, 4, 0, 1 };
	struct proto_msg	 m;
	char			 err[160];

	(void)state;
	evbuffer_add(b, &h, sizeof(h));
	evbuffer_add(b, "{}\0}", 4);
	assert_int_equal(proto_unpack(b, &m, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "NUL"));
	evbuffer_free(b);
}

static void
test_unknown_type(void **state)
{
	(void)state;
	expect_error(0, 2, "{}", "unknown message type 0");
	expect_error(999, 2, "{}", "unknown message type 999");
}

static void
test_hello_version(void **state)
{
	char	 err[128];
	cJSON	*good, *bad, *none, *str;

	(void)state;
	good = cJSON_CreateObject();
	cJSON_AddNumberToObject(good, "version", PROTO_VERSION);
	bad = cJSON_CreateObject();
	cJSON_AddNumberToObject(bad, "version", PROTO_VERSION + 1);
	none = cJSON_CreateObject();
	str = obj("{\"version\":\"1\"}");
	assert_int_equal(proto_hello_check(good, err, sizeof(err)), 0);
	assert_int_equal(proto_hello_check(bad, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "protocol version"));
	assert_int_equal(proto_hello_check(none, err, sizeof(err)), -1);
	assert_int_equal(proto_hello_check(str, err, sizeof(err)), -1);
	cJSON_Delete(good);
	cJSON_Delete(bad);
	cJSON_Delete(none);
	cJSON_Delete(str);
}

static void
test_get_int(void **state)
{
	cJSON	*o = obj("{\"a\":5,\"b\":1.5,\"c\":\"5\",\"d\":-1,"
		    "\"e\":1e300}");
	int64_t	 v;

	(void)state;
	assert_int_equal(proto_get_int(o, "a", 0, 10, &v), 0);
	assert_int_equal(v, 5);
	assert_int_equal(proto_get_int(o, "a", 6, 10, &v), -1);
	assert_int_equal(proto_get_int(o, "b", 0, 10, &v), -1);
	assert_int_equal(proto_get_int(o, "c", 0, 10, &v), -1);
	assert_int_equal(proto_get_int(o, "d", 0, 10, &v), -1);
	assert_int_equal(proto_get_int(o, "e", 0, INT64_MAX, &v), -1);
	assert_int_equal(proto_get_int(o, "zz", 0, 10, &v), -1);
	assert_null(proto_get_str(o, "a"));
	assert_string_equal(proto_get_str(o, "c"), "5");
	cJSON_Delete(o);
}

/* Every type name is known; unknown ones are refused. */
static void
test_type_names(void **state)
{
	(void)state;
	assert_string_equal(proto_type_name(MSG_HELLO), "hello");
	assert_string_equal(proto_type_name(MSG_STOP), "stop");
	assert_string_equal(proto_type_name(12345), "unknown");
	assert_true(proto_type_valid(MSG_LAUNCH_GRANT));
	assert_false(proto_type_valid(MSG_LAUNCH_REQ + 1));
}

/* ---- the outgoing queue of a worker process ---- */

/* Pushes a message whose body is {"n": n} (and some padding). */
static void
outq_push(struct proto_outq *q, uint32_t type, enum proto_outq_class cls,
    int n)
{
	cJSON	*o = cJSON_CreateObject();

	cJSON_AddNumberToObject(o, "n", n);
	cJSON_AddStringToObject(o, "pad", "0123456789012345678901234567890123"
	    "456789012345678901234567890123456789");
	assert_int_equal(proto_outq_push(q, type, 1, cls, o), 0);
	cJSON_Delete(o);
}

/* What the supervisor would read: "type:n" for each message, in order. */
static char *
outq_drain(struct proto_outq *q)
{
	struct evbuffer		*b = evbuffer_new();
	struct proto_msg	 m;
	char			 err[128], *out = xstrdup(""), *more;
	int64_t			 n;

	assert_int_equal(proto_outq_flush(q, b, SIZE_MAX), 0);
	assert_int_equal(q->bytes, 0);
	while (proto_unpack(b, &m, err, sizeof(err)) == 1) {
		assert_int_equal(proto_get_int(m.body, "n", 0, 1000000, &n), 0);
		xasprintf(&more, "%s%s%s:%lld", out, *out ? " " : "",
		    proto_type_name(m.hdr.type), (long long)n);
		free(out);
		out = more;
		proto_msg_clear(&m);
	}
	assert_int_equal(evbuffer_get_length(b), 0);
	evbuffer_free(b);
	return out;
}

/* A newer snapshot replaces the one waiting; nothing else moves. */
static void
test_outq_snapshots(void **state)
{
	struct proto_outq	 q;
	char			*got;

	(void)state;
	proto_outq_init(&q, 1 << 20);
	outq_push(&q, MSG_STATE, OUTQ_SNAPSHOT, 1);
	outq_push(&q, MSG_LOG, OUTQ_LOG, 2);
	outq_push(&q, MSG_STATE, OUTQ_SNAPSHOT, 3);
	outq_push(&q, MSG_LAUNCH_REQ, OUTQ_KEEP, 4);
	outq_push(&q, MSG_STATE, OUTQ_SNAPSHOT, 5);
	assert_int_equal(q.n, 3);
	assert_int_equal(q.dropped_snapshots, 2);
	assert_int_equal(q.dropped_logs, 0);
	got = outq_drain(&q);
	assert_string_equal(got, "log:2 launch-request:4 state:5");
	free(got);
	/* sent, then a new one: nothing to replace */
	outq_push(&q, MSG_STATE, OUTQ_SNAPSHOT, 6);
	assert_int_equal(q.dropped_snapshots, 2);
	proto_outq_clear(&q);
	assert_int_equal(q.n, 0);
}

/*
 * Past the cap, debug lines go first, then other droppable lines, oldest
 * first; launch requests, events and action lines never, whatever the
 * size; the bytes waiting stay within the cap while droppable lines
 * remain.
 */
static void
test_outq_cap(void **state)
{
	struct proto_outq	 q;
	char			*got, *want, *more;
	size_t			 one;
	int			 i;

	(void)state;
	proto_outq_init(&q, 1 << 20);
	outq_push(&q, MSG_LOG, OUTQ_LOG, 0);
	one = q.bytes;
	proto_outq_clear(&q);
	proto_outq_init(&q, 6 * one);
	outq_push(&q, MSG_LOG, OUTQ_LOG, 1);
	outq_push(&q, MSG_LOG, OUTQ_DEBUG, 2);
	outq_push(&q, MSG_LAUNCH_REQ, OUTQ_KEEP, 3);
	outq_push(&q, MSG_LOG, OUTQ_DEBUG, 4);
	outq_push(&q, MSG_EVENT, OUTQ_KEEP, 5);
	outq_push(&q, MSG_LOG, OUTQ_KEEP, 6);
	assert_int_equal(q.dropped_logs, 0);
	outq_push(&q, MSG_LOG, OUTQ_LOG, 7);	/* one over: debug 2 goes */
	assert_int_equal(q.dropped_logs, 1);
	assert_true(q.bytes <= q.max);
	outq_push(&q, MSG_STATE, OUTQ_SNAPSHOT, 8);	/* then debug 4 */
	assert_int_equal(q.dropped_logs, 2);
	outq_push(&q, MSG_LOG, OUTQ_LOG, 9);	/* then line 1, oldest */
	assert_int_equal(q.dropped_logs, 3);
	assert_true(q.bytes <= q.max);
	outq_push(&q, MSG_LOG, OUTQ_DEBUG, 10);	/* the newest debug goes */
	assert_int_equal(q.dropped_logs, 4);
	assert_int_equal(q.dropped_snapshots, 0);
	got = outq_drain(&q);
	assert_string_equal(got, "launch-request:3 event:5 log:6 log:7 "
	    "state:8 log:9");
	free(got);

	/* only what must go through: it all waits, beyond the cap */
	q.dropped_logs = 0;
	want = xstrdup("");
	for (i = 0; i < 50; i++) {
		outq_push(&q, i % 2 ? MSG_LAUNCH_REQ : MSG_LOG, OUTQ_KEEP, i);
		xasprintf(&more, "%s%s%s:%d", want, i ? " " : "",
		    i % 2 ? "launch-request" : "log", i);
		free(want);
		want = more;
	}
	assert_int_equal(q.n, 50);
	assert_true(q.bytes > q.max);
	outq_push(&q, MSG_LOG, OUTQ_LOG, 50);	/* droppable: goes at once */
	assert_int_equal(q.n, 50);
	assert_int_equal(q.dropped_logs, 1);
	got = outq_drain(&q);
	assert_string_equal(got, want);
	free(got);
	free(want);
	proto_outq_clear(&q);
}

/* Flushing moves whole messages while the output holds less than asked. */
static void
test_outq_flush(void **state)
{
	struct proto_outq	 q;
	struct evbuffer		*b = evbuffer_new();
	size_t			 one;
	int			 i;

	(void)state;
	proto_outq_init(&q, 1 << 20);
	for (i = 0; i < 10; i++)
		outq_push(&q, MSG_LOG, OUTQ_LOG, i);
	one = q.bytes / 10;
	assert_int_equal(proto_outq_flush(&q, b, 3 * one), 7);
	assert_int_equal(evbuffer_get_length(b), 3 * one);
	assert_int_equal(proto_outq_flush(&q, b, 3 * one), 7);
	assert_int_equal(proto_outq_flush(&q, b, 3 * one + 1), 6);
	assert_int_equal(evbuffer_get_length(b), 4 * one);
	evbuffer_drain(b, evbuffer_get_length(b));
	assert_int_equal(proto_outq_flush(&q, b, SIZE_MAX), 0);
	assert_int_equal(evbuffer_get_length(b), 6 * one);
	assert_int_equal(q.bytes, 0);
	assert_null(q.head);
	assert_null(q.tail);
	evbuffer_free(b);
	proto_outq_clear(&q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_split_reads),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_bad_json),
		cmocka_unit_test(test_nul_in_payload),
		cmocka_unit_test(test_unknown_type),
		cmocka_unit_test(test_hello_version),
		cmocka_unit_test(test_get_int),
		cmocka_unit_test(test_type_names),
		cmocka_unit_test(test_outq_snapshots),
		cmocka_unit_test(test_outq_cap),
		cmocka_unit_test(test_outq_flush),
	};

	log_init("test", LOG_LVL_ERROR, 0);
	return cmocka_run_group_tests_name("proto", tests, NULL, NULL);
}
