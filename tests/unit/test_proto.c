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
	};

	log_init("test", LOG_LVL_ERROR, 0);
	return cmocka_run_group_tests_name("proto", tests, NULL, NULL);
}
