/*
 * test_clearml.c: the ClearML client.  The pure half on canned JSON
 * (envelopes and every error shape, JWT claims, queues, workers, tasks,
 * timestamps, type errors, the glob and the exact name compare), then
 * the client itself against canned replies from an in-process HTTP
 * server: one login for many calls, the 401 re-login, retries.
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

static const char ok_meta[] = "\"meta\":{\"id\":\"x\",\"result_code\":200,"
    "\"result_subcode\":0,\"result_msg\":\"OK\"}";

static char *
envelope(const char *data)
{
	char	*s;

	xasprintf(&s, "{%s,\"data\":%s}", ok_meta, data);
	return s;
}

static char *
err_envelope(int code, int subcode, const char *msg)
{
	char	*s;

	xasprintf(&s, "{\"meta\":{\"id\":\"x\",\"result_code\":%d,"
	    "\"result_subcode\":%d,\"result_msg\":\"%s\",\"error_stack\":null,"
	    "\"error_data\":{}},\"data\":{}}", code, subcode, msg);
	return s;
}

static cJSON *
json(const char *s)
{
	cJSON	*o = cJSON_Parse(s);

	assert_non_null(o);
	return o;
}

/* Envelope */

static void
test_envelope_ok(void **state)
{
	struct cml_error	 err;
	cJSON			*data;
	char			*body;

	(void)state;
	body = envelope("{\"queues\":[]}");
	assert_int_equal(cml_parse_envelope(200, body, strlen(body),
	    "queues.get_all", &data, &err), 0);
	assert_true(cJSON_IsArray(cJSON_GetObjectItem(data, "queues")));
	cJSON_Delete(data);
	free(body);

	/* no data at all: an empty object */
	body = xstrdup("{\"meta\":{\"result_code\":200}}");
	assert_int_equal(cml_parse_envelope(200, body, strlen(body),
	    "workers.unregister", &data, &err), 0);
	assert_true(cJSON_IsObject(data));
	cJSON_Delete(data);
	free(body);

	/* data of the wrong type */
	body = envelope("[1,2]");
	assert_int_equal(cml_parse_envelope(200, body, strlen(body),
	    "queues.get_all", &data, &err), -1);
	assert_null(data);
	assert_int_equal(err.cls, CML_ERR_SERVER);
	assert_non_null(strstr(err.message, "queues.get_all"));
	free(body);
}

static void
test_envelope_errors(void **state)
{
	static const struct {
		int			 code, subcode;
		const char		*msg;
		enum cml_err_class	 cls;
	} cases[] = {
		{ 401, 20, "Unauthorized (missing credentials)", CML_ERR_AUTH },
		{ 401, 22, "Unauthorized (invalid credentials)", CML_ERR_AUTH },
		{ 401, 30, "Invalid token (invalid jwt token)", CML_ERR_AUTH },
		{ 403, 20, "Forbidden (not allowed for role)", CML_ERR_AUTH },
		{ 404, 0, "Unable to find endpoint for name x.y",
		  CML_ERR_NOT_FOUND },
		{ 400, 101, "Invalid task id: id=abc", CML_ERR_NOT_FOUND },
		{ 400, 701, "Invalid queue id: id=abc", CML_ERR_NOT_FOUND },
		{ 400, 12, "Validation error (field required)", CML_ERR_INVALID },
		{ 400, 11, "Missing required fields", CML_ERR_INVALID },
		{ 400, 110, "Invalid task status", CML_ERR_INVALID },
		{ 400, 706, "Task already queued", CML_ERR_INVALID },
		{ 415, 0, "Unsupported", CML_ERR_INVALID },
		{ 500, 0, "General server error", CML_ERR_SERVER },
		{ 500, 102, "Database unavailable", CML_ERR_SERVER },
		{ 502, 0, "Bad gateway", CML_ERR_TRANSIENT },
		{ 503, 0, "Unavailable", CML_ERR_TRANSIENT },
		{ 504, 0, "Gateway timeout", CML_ERR_TRANSIENT },
		{ 429, 0, "Too many requests", CML_ERR_TRANSIENT },
	};
	struct cml_error	 err;
	cJSON			*data;
	char			*body, want[64];
	size_t			 i;

	(void)state;
	for (i = 0; i < QS_ARRAYLEN(cases); i++) {
		body = err_envelope(cases[i].code, cases[i].subcode,
		    cases[i].msg);
		assert_int_equal(cml_parse_envelope(cases[i].code, body,
		    strlen(body), "tasks.enqueue", &data, &err), -1);
		assert_null(data);
		assert_int_equal(err.cls, cases[i].cls);
		assert_int_equal(err.http_status, cases[i].code);
		assert_int_equal(err.code, cases[i].code);
		assert_int_equal(err.subcode, cases[i].subcode);
		assert_string_equal(err.endpoint, "tasks.enqueue");
		assert_non_null(strstr(err.message, "tasks.enqueue: "));
		assert_non_null(strstr(err.message, cases[i].msg));
		snprintf(want, sizeof(want), "(%d/%d)", cases[i].code,
		    cases[i].subcode);
		assert_non_null(strstr(err.message, want));
		free(body);
	}
}

static void
test_envelope_not_json(void **state)
{
	static const struct {
		long			 status;
		const char		*body;
		enum cml_err_class	 cls;
	} cases[] = {
		{ 500, "Failed processing request http://127.0.0.1/x.y",
		  CML_ERR_SERVER },
		{ 500, "<html><head><title>500 Internal Server Error</title>"
		  "</head><body><h1>Internal Server Error</h1></body></html>",
		  CML_ERR_SERVER },
		{ 200, "<html>a web page</html>", CML_ERR_SERVER },
		{ 200, "", CML_ERR_SERVER },
		{ 200, "{\"data\":{}}", CML_ERR_SERVER },
		{ 200, "{\"meta\":{\"result_code\":\"200\"}}", CML_ERR_SERVER },
		{ 200, "{\"meta\":[],\"data\":{}}", CML_ERR_SERVER },
		{ 200, "[{\"meta\":{}}]", CML_ERR_SERVER },
		{ 200, "{\"meta\":{\"result_code\":1e300}}", CML_ERR_SERVER },
		{ 404, "<html>Not Found</html>", CML_ERR_SERVER },
		{ 415, "Content encoding is not supported", CML_ERR_SERVER },
		{ 502, "<html>502 Bad Gateway (nginx)</html>",
		  CML_ERR_TRANSIENT },
		{ 503, "", CML_ERR_TRANSIENT },
		{ 429, "slow down", CML_ERR_TRANSIENT },
		{ 401, "no", CML_ERR_AUTH },
		{ 0, "", CML_ERR_TRANSIENT },
	};
	struct cml_error	 err;
	cJSON			*data;
	size_t			 i;

	(void)state;
	for (i = 0; i < QS_ARRAYLEN(cases); i++) {
		assert_int_equal(cml_parse_envelope(cases[i].status,
		    cases[i].body, strlen(cases[i].body), "queues.get_all",
		    &data, &err), -1);
		assert_null(data);
		assert_int_equal(err.cls, cases[i].cls);
		assert_non_null(strstr(err.message, "queues.get_all"));
		assert_null(strchr(err.message, '\n'));
	}
	/* a long HTML page is cut to an excerpt */
	{
		char	 big[4096];

		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		memcpy(big, "<html>", 6);
		assert_int_equal(cml_parse_envelope(500, big, strlen(big),
		    "queues.get_all", &data, &err), -1);
		assert_true(strlen(err.message) < 300);
		assert_non_null(strstr(err.message, "HTTP 500"));
		assert_non_null(strstr(err.message, "..."));
	}
	/* a body with a NUL in it, and one cut short */
	assert_int_equal(cml_parse_envelope(200, "{\"me\0ta\":1}", 11,
	    "x.y", &data, &err), -1);
	assert_int_equal(err.cls, CML_ERR_SERVER);
	assert_int_equal(cml_parse_envelope(200, "{\"meta\":{\"result_co",
	    19, "x.y", &data, &err), -1);
	assert_int_equal(err.cls, CML_ERR_SERVER);
}

static void
test_error_masked(void **state)
{
	struct cml_error	 err;
	cJSON			*data;
	char			*body;

	(void)state;
	mask_register("s3cr3t-value-xyz");
	body = err_envelope(401, 22, "bad key s3cr3t-value-xyz given");
	assert_int_equal(cml_parse_envelope(401, body, strlen(body),
	    "auth.login", &data, &err), -1);
	assert_null(strstr(err.message, "s3cr3t-value-xyz"));
	assert_non_null(strstr(err.message, MASK_TEXT));
	free(body);

	/* a replaced token is forgotten, the others stay */
	mask_register("old-token-value-1");
	mask_register("old-token-value-12");
	mask_unregister("old-token-value-1");
	mask_unregister("never-registered");
	body = mask_dup("old-token-value-1 old-token-value-12 s3cr3t-value-xyz");
	assert_string_equal(body, "old-token-value-1 " MASK_TEXT " " MASK_TEXT);
	free(body);
	mask_clear();
}

/* JWT */

static char *
b64url(const char *s)
{
	size_t		 n = strlen(s), i, j;
	unsigned char	*out = xmalloc((n + 2) / 3 * 4 + 1);

	EVP_EncodeBlock(out, (const unsigned char *)s, (int)n);
	for (i = j = 0; out[i] != '\0'; i++) {
		if (out[i] == '=')
			continue;
		out[j++] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	}
	out[j] = '\0';
	return (char *)out;
}

static char *
make_jwt(const char *payload)
{
	char	*h, *p, *t;

	h = b64url("{\"alg\":\"HS256\",\"typ\":\"JWT\"}");
	p = b64url(payload);
	xasprintf(&t, "%s.%s.c2lnbmF0dXJl", h, p);
	free(h);
	free(p);
	return t;
}

static void
test_jwt_claims(void **state)
{
	struct cml_jwt	 jwt;
	char		*t, err[128], api[16], srv[32];
	int64_t		 exp;

	(void)state;
	/* a payload whose base64 has both '-' and '_' and no padding */
	t = make_jwt("{\"identity\":{\"user\":\"u>>?\",\"company\":\"c\"},"
	    "\"auth_type\":\"Bearer\",\"iat\":1736790000,\"exp\":1739382000,"
	    "\"api_version\":\"2.31\",\"server_version\":\"2.0.0\","
	    "\"server_build\":\"1\",\"feature_set\":\"basic\",\"x\":\"??~~\"}");
	assert_int_equal(cml_jwt_parse(t, &jwt, err, sizeof(err)), 0);
	assert_int_equal(jwt.exp, 1739382000);
	assert_int_equal(jwt.iat, 1736790000);
	assert_string_equal(jwt.api_version, "2.31");
	assert_string_equal(jwt.server_version, "2.0.0");
	assert_int_equal(cml_jwt_claims(t, &exp, api, sizeof(api), srv,
	    sizeof(srv)), 0);
	assert_int_equal(exp, 1739382000);
	assert_string_equal(api, "2.31");
	assert_string_equal(srv, "2.0.0");
	free(t);

	/* only exp: versions empty, iat 0 */
	t = make_jwt("{\"exp\":1739382000}");
	assert_int_equal(cml_jwt_parse(t, &jwt, err, sizeof(err)), 0);
	assert_int_equal(jwt.iat, 0);
	assert_string_equal(jwt.api_version, "");
	free(t);
}

static void
test_jwt_malformed(void **state)
{
	static const char *const payloads[] = {
		"{\"iat\":1}",				/* no exp */
		"{\"exp\":\"1739382000\"}",		/* exp a string */
		"{\"exp\":-5}",
		"{\"exp\":1739382000,\"api_version\":2.31}",
		"{\"exp\":1739382000,\"server_version\":[]}",
		"{\"exp\":1739382000,\"iat\":\"x\"}",
		"[1739382000]",
		"\"exp\"",
		"{\"exp\":17393",			/* cut short */
	};
	static const char *const tokens[] = {
		"", "abc", "a.b", "a.b.c.d", ".e30.x", "a.!!!.c",
		"a.e30=.c", "a.e.c", "a.bm90IGpzb24.c",	/* "not json" */
	};
	struct cml_jwt	 jwt;
	char		*t, err[128];
	size_t		 i;

	(void)state;
	for (i = 0; i < QS_ARRAYLEN(payloads); i++) {
		t = make_jwt(payloads[i]);
		err[0] = '\0';
		assert_int_equal(cml_jwt_parse(t, &jwt, err, sizeof(err)), -1);
		assert_true(err[0] != '\0');
		free(t);
	}
	for (i = 0; i < QS_ARRAYLEN(tokens); i++) {
		err[0] = '\0';
		assert_int_equal(cml_jwt_parse(tokens[i], &jwt, err,
		    sizeof(err)), -1);
		assert_true(err[0] != '\0');
	}
	assert_int_equal(cml_jwt_parse(NULL, &jwt, err, sizeof(err)), -1);
}

/* Timestamps, as ClearML writes them */

static void
test_timestamps(void **state)
{
	static const struct {
		const char	*in;
		int64_t		 ms;
	} good[] = {
		{ "2025-01-13T18:32:13.123000+00:00", 1736793133123LL },
		{ "2025-01-13T18:32:13+00:00", 1736793133000LL },
		{ "2025-01-13T18:32:13Z", 1736793133000LL },
		{ "2025-01-13T18:32:13.5Z", 1736793133500LL },
		{ "2025-01-13T18:32:13", 1736793133000LL },
		{ "2025-01-13T20:32:13+02:00", 1736793133000LL },
	};
	static const char *const bad[] = {
		"", "2025-01-13", "2025-01-13T18:32", "2025-13-13T18:32:13Z",
		"2025-01-13T18:32:13.Z", "2025-01-13T18:32:13+0", "yesterday",
		"2025-01-13T18:32:13Zjunk",
	};
	int64_t		 v;
	size_t		 i;

	(void)state;
	for (i = 0; i < QS_ARRAYLEN(good); i++) {
		assert_int_equal(parse_iso8601(good[i].in, &v), 0);
		assert_int_equal(v, good[i].ms);
	}
	for (i = 0; i < QS_ARRAYLEN(bad); i++)
		assert_int_equal(parse_iso8601(bad[i], &v), -1);
}

/* Queues */

static const char queues_data[] = "{\"queues\":["
    "{\"id\":\"q1\",\"name\":\"gpu-big\",\"entries\":[]},"
    "{\"id\":\"q2\",\"name\":\"gpu\",\"entries\":["
    "{\"task\":\"t1\",\"added\":\"2025-01-13T18:32:13.123000+00:00\"},"
    "{\"task\":\"t2\",\"added\":\"2025-01-13T18:32:14+00:00\"},"
    "{\"task\":\"t3\",\"added\":\"2025-01-13T18:32:15Z\",\"extra\":1}],"
    "\"created\":\"2025-01-01T00:00:00+00:00\",\"tags\":[]},"
    "{\"id\":\"q3\",\"name\":\"GPU\"}]}";

static void
test_queue_entries(void **state)
{
	struct cml_queue	 q;
	cJSON			*d = json(queues_data);
	char			 err[256];

	(void)state;
	assert_int_equal(cml_parse_queue_by_id(d, "q2", &q, err, sizeof(err)),
	    1);
	assert_string_equal(q.id, "q2");
	assert_string_equal(q.name, "gpu");
	assert_int_equal(q.nentries, 3);
	assert_string_equal(q.entries[0].task, "t1");
	assert_int_equal(q.entries[0].added_ms, 1736793133123LL);
	assert_string_equal(q.entries[1].task, "t2");
	assert_int_equal(q.entries[1].added_ms, 1736793134000LL);
	assert_string_equal(q.entries[2].task, "t3");
	assert_int_equal(q.entries[2].added_ms, 1736793135000LL);
	cml_queue_clear(&q);

	/* no entries key: an empty queue */
	assert_int_equal(cml_parse_queue_by_id(d, "q3", &q, err, sizeof(err)),
	    1);
	assert_int_equal(q.nentries, 0);
	cml_queue_clear(&q);

	assert_int_equal(cml_parse_queue_by_id(d, "nope", &q, err,
	    sizeof(err)), 0);
	cJSON_Delete(d);

	d = json("{\"id\":\"q9\",\"entries\":[]}");
	assert_int_equal(cml_parse_queue(d, &q, err, sizeof(err)), 0);
	assert_null(q.name);
	cml_queue_clear(&q);
	cJSON_Delete(d);
}

static void
test_queue_type_errors(void **state)
{
	static const struct {
		const char	*data;
		const char	*field;
	} cases[] = {
		{ "{}", "data.queues: missing" },
		{ "{\"queues\":{}}", "data.queues: expected an array" },
		{ "{\"queues\":[\"q1\"]}", "queues[0]: expected an object" },
		{ "{\"queues\":[{\"id\":7}]}", "queues[0].id: expected a string" },
		{ "{\"queues\":[{\"id\":\"q1\",\"entries\":{}}]}",
		  "queues[0].entries: expected an array" },
		{ "{\"queues\":[{\"id\":\"q1\",\"entries\":[5]}]}",
		  "queues[0].entries[0]: expected an object" },
		{ "{\"queues\":[{\"id\":\"q1\",\"entries\":[{\"task\":5,"
		  "\"added\":\"2025-01-13T18:32:13Z\"}]}]}",
		  "queues[0].entries[0].task: expected a string, got a number" },
		{ "{\"queues\":[{\"id\":\"q1\",\"entries\":[{\"task\":\"t\","
		  "\"added\":\"soon\"}]}]}",
		  "queues[0].entries[0].added: not a timestamp" },
		{ "{\"queues\":[{\"id\":\"q1\",\"entries\":[{\"task\":\"t\"}]}]}",
		  "queues[0].entries[0].added: missing" },
		{ "{\"queues\":[{\"id\":\"q1\",\"name\":false}]}",
		  "queues[0].name: expected a string, got a boolean" },
		{ "{\"queues\":[{\"id\":\"q1\",\"entries\":[{\"task\":"
		  "\"0123456789012345678901234567890123456789012\","
		  "\"added\":\"2025-01-13T18:32:13Z\"}]}]}",
		  "queues[0].entries[0].task: id longer" },
	};
	struct cml_queue	 q;
	cJSON			*d;
	char			 err[256];
	size_t			 i;

	(void)state;
	for (i = 0; i < QS_ARRAYLEN(cases); i++) {
		d = json(cases[i].data);
		err[0] = '\0';
		assert_int_equal(cml_parse_queue_by_id(d, "q1", &q, err,
		    sizeof(err)), -1);
		if (strstr(err, cases[i].field) == NULL)
			fail_msg("%s: got \"%s\", want \"%s\"", cases[i].data,
			    err, cases[i].field);
		assert_null(q.entries);
		assert_null(q.name);
		cJSON_Delete(d);
	}
	d = json("[]");
	assert_int_equal(cml_parse_queue_by_id(d, "q1", &q, err, sizeof(err)),
	    -1);
	assert_int_equal(cml_parse_queue(d, &q, err, sizeof(err)), -1);
	cJSON_Delete(d);
}

static void
test_queue_exact_name(void **state)
{
	cJSON	*d = json(queues_data);
	char	 id[40], err[256];

	(void)state;
	/* "gpu" comes second, after "gpu-big" that the regex also hit */
	assert_int_equal(cml_parse_queue_id_by_name(d, "gpu", id, sizeof(id),
	    err, sizeof(err)), 1);
	assert_string_equal(id, "q2");
	assert_int_equal(cml_parse_queue_id_by_name(d, "gpu-big", id,
	    sizeof(id), err, sizeof(err)), 1);
	assert_string_equal(id, "q1");
	assert_int_equal(cml_parse_queue_id_by_name(d, "GPU", id, sizeof(id),
	    err, sizeof(err)), 1);
	assert_string_equal(id, "q3");
	assert_int_equal(cml_parse_queue_id_by_name(d, "gp", id, sizeof(id),
	    err, sizeof(err)), 0);
	assert_int_equal(cml_parse_queue_id_by_name(d, "gpu-bi", id,
	    sizeof(id), err, sizeof(err)), 0);
	assert_int_equal(cml_parse_queue_id_by_name(d, "Gpu", id, sizeof(id),
	    err, sizeof(err)), 0);
	cJSON_Delete(d);

	d = json("{\"queues\":[{\"id\":\"q1\",\"name\":[]}]}");
	assert_int_equal(cml_parse_queue_id_by_name(d, "gpu", id, sizeof(id),
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "queues[0].name"));
	cJSON_Delete(d);
	d = json("{\"queues\":[{\"name\":\"gpu\"}]}");
	assert_int_equal(cml_parse_queue_id_by_name(d, "gpu", id, sizeof(id),
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "queues[0].id: missing"));
	cJSON_Delete(d);
}

static void
test_regex_escape(void **state)
{
	static const struct {
		const char	*in, *out;
	} cases[] = {
		{ "gpu", "gpu" },
		{ "gpu-big", "gpu\\-big" },
		{ "a.b*c", "a\\.b\\*c" },
		{ "q_1 (x)", "q_1\\ \\(x\\)" },
		{ "^$|[]{}?+\\", "\\^\\$\\|\\[\\]\\{\\}\\?\\+\\\\" },
		{ "caf\xc3\xa9", "caf\xc3\xa9" },
	};
	char	*s;
	size_t	 i;

	(void)state;
	for (i = 0; i < QS_ARRAYLEN(cases); i++) {
		s = cml_regex_escape(cases[i].in);
		assert_string_equal(s, cases[i].out);
		free(s);
	}
}

/* Workers */

static const char workers_data[] = "{\"workers\":["
    "{\"key\":\"worker_c_u_qs:gpu:g4dn:i-1\",\"id\":\"qs:gpu:g4dn:i-1\","
    "\"user\":{\"id\":\"u\",\"name\":\"n\"},\"ip\":\"10.0.0.1\","
    "\"register_time\":\"2025-01-13T18:00:00+00:00\","
    "\"last_activity_time\":\"2025-01-13T18:30:00.250000+00:00\","
    "\"last_report_time\":\"2025-01-13T18:30:00.250000+00:00\","
    "\"register_timeout\":600,\"tags\":[],"
    "\"queues\":[{\"id\":\"q2\",\"name\":\"gpu\",\"num_tasks\":3,"
    "\"next_task\":{\"id\":\"t9\",\"name\":\"next\"}}],"
    "\"task\":{\"id\":\"t1\",\"name\":\"train\",\"running_time\":5000,"
    "\"last_iteration\":3},\"project\":{\"id\":\"p\",\"name\":\"pn\"}},"
    "{\"id\":\"qs:gpu:g4dn:i-2\","
    "\"register_time\":\"2025-01-13T18:10:00Z\","
    "\"last_activity_time\":\"2025-01-13T18:10:00Z\","
    "\"queues\":[{\"id\":\"q2\"},{\"id\":\"q7\"}]},"
    "{\"id\":\"other:cpu:t3:i-3\","
    "\"register_time\":\"2025-01-13T18:10:00Z\","
    "\"last_activity_time\":\"2025-01-13T18:10:00Z\"}]}";

static void
test_workers_busy_idle(void **state)
{
	struct cml_worker	*w;
	size_t			 n;
	cJSON			*d = json(workers_data);
	char			 err[256];

	(void)state;
	assert_int_equal(cml_parse_workers(d, &w, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 3);
	assert_string_equal(w[0].id, "qs:gpu:g4dn:i-1");
	assert_string_equal(w[0].task, "t1");
	assert_string_equal(w[0].task_name, "train");
	assert_int_equal(w[0].register_ms, 1736791200000LL);
	assert_int_equal(w[0].last_activity_ms, 1736793000250LL);
	assert_int_equal(w[0].last_report_ms, 1736793000250LL);
	assert_int_equal(w[0].nqueues, 1);
	assert_string_equal(w[0].queues[0], "q2");
	/* idle: no task key; never reported */
	assert_null(w[1].task);
	assert_null(w[1].task_name);
	assert_int_equal(w[1].last_report_ms, 0);
	assert_int_equal(w[1].nqueues, 2);
	assert_string_equal(w[1].queues[1], "q7");
	assert_int_equal(w[2].nqueues, 0);
	assert_null(w[2].queues);
	cml_workers_free(w, n);
	cJSON_Delete(d);

	/* "task": null is idle too; an empty list is fine */
	d = json("{\"workers\":[{\"id\":\"a\",\"task\":null}]}");
	assert_int_equal(cml_parse_workers(d, &w, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_null(w[0].task);
	cml_workers_free(w, n);
	cJSON_Delete(d);
	d = json("{\"workers\":[]}");
	assert_int_equal(cml_parse_workers(d, &w, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	cml_workers_free(w, n);
	cJSON_Delete(d);
}

static void
test_workers_type_errors(void **state)
{
	static const struct {
		const char	*data;
		const char	*field;
	} cases[] = {
		{ "{}", "data.workers: missing" },
		{ "{\"workers\":null}", "data.workers: missing" },
		{ "{\"workers\":\"x\"}", "data.workers: expected an array" },
		{ "{\"workers\":[1]}", "workers[0]: expected an object" },
		{ "{\"workers\":[{\"id\":\"a\"},{}]}", "workers[1].id: missing" },
		{ "{\"workers\":[{\"id\":\"a\",\"task\":\"t1\"}]}",
		  "workers[0].task: expected an object, got a string" },
		{ "{\"workers\":[{\"id\":\"a\",\"task\":{\"name\":\"n\"}}]}",
		  "workers[0].task.id: missing" },
		{ "{\"workers\":[{\"id\":\"a\",\"task\":{\"id\":1}}]}",
		  "workers[0].task.id: expected a string" },
		{ "{\"workers\":[{\"id\":\"a\",\"task\":{\"id\":\"t\","
		  "\"name\":{}}}]}", "workers[0].task.name: expected a string" },
		{ "{\"workers\":[{\"id\":\"a\",\"last_activity_time\":12}]}",
		  "workers[0].last_activity_time: expected a string" },
		{ "{\"workers\":[{\"id\":\"a\",\"register_time\":\"x\"}]}",
		  "workers[0].register_time: not a timestamp" },
		{ "{\"workers\":[{\"id\":\"a\",\"queues\":{}}]}",
		  "workers[0].queues: expected an array" },
		{ "{\"workers\":[{\"id\":\"a\",\"queues\":[{\"id\":\"q\"},"
		  "{\"name\":\"x\"}]}]}", "workers[0].queues[1].id: missing" },
		{ "{\"workers\":[{\"id\":\"a\",\"queues\":[\"q\"]}]}",
		  "workers[0].queues[0]: expected an object" },
	};
	struct cml_worker	*w;
	size_t			 n, i;
	cJSON			*d;
	char			 err[256];

	(void)state;
	for (i = 0; i < QS_ARRAYLEN(cases); i++) {
		d = json(cases[i].data);
		err[0] = '\0';
		assert_int_equal(cml_parse_workers(d, &w, &n, err,
		    sizeof(err)), -1);
		assert_null(w);
		assert_int_equal(n, 0);
		if (strstr(err, cases[i].field) == NULL)
			fail_msg("%s: got \"%s\", want \"%s\"", cases[i].data,
			    err, cases[i].field);
		cJSON_Delete(d);
	}
}

static void
test_glob(void **state)
{
	static const struct {
		const char	*pat, *s;
		int		 match;
	} cases[] = {
		{ "qs:gpu:*", "qs:gpu:g4dn:i-1", 1 },
		{ "qs:gpu:*", "qs:gpu-big:g4dn:i-1", 0 },
		{ "qs:gpu:*", "qs:gpu:", 1 },
		{ "qs:gpu:*", "qs:gpu", 0 },
		{ "qs:gpu:*", "xqs:gpu:a", 0 },
		{ "*", "", 1 },
		{ "*", "anything", 1 },
		{ "", "", 1 },
		{ "", "a", 0 },
		{ "a?c", "abc", 1 },
		{ "a?c", "ac", 0 },
		{ "a*b*c", "axxbyyc", 1 },
		{ "a*b*c", "axxbyy", 0 },
		{ "*:i-?", "qs:gpu:t:i-1", 1 },
		{ "*:i-?", "qs:gpu:t:i-12", 0 },
		{ "**x", "aax", 1 },
		{ "a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0 },
	};
	size_t	 i;

	(void)state;
	for (i = 0; i < QS_ARRAYLEN(cases); i++)
		if (cml_glob_match(cases[i].pat, cases[i].s) !=
		    cases[i].match)
			fail_msg("glob \"%s\" on \"%s\": want %d", cases[i].pat,
			    cases[i].s, cases[i].match);
	assert_int_equal(cml_glob_match(NULL, "a"), 0);
}

static void
test_workers_filter(void **state)
{
	struct cml_worker	*w;
	size_t			 n;
	cJSON			*d = json(workers_data);
	char			 err[256];

	(void)state;
	assert_int_equal(cml_parse_workers(d, &w, &n, err, sizeof(err)), 0);
	cml_workers_filter(w, &n, NULL);
	assert_int_equal(n, 3);
	cml_workers_filter(w, &n, "qs:gpu:*");
	assert_int_equal(n, 2);
	assert_string_equal(w[0].id, "qs:gpu:g4dn:i-1");
	assert_string_equal(w[1].id, "qs:gpu:g4dn:i-2");
	cml_workers_filter(w, &n, "*:i-2");
	assert_int_equal(n, 1);
	assert_string_equal(w[0].id, "qs:gpu:g4dn:i-2");
	assert_int_equal(w[0].nqueues, 2);
	cml_workers_filter(w, &n, "none:*");
	assert_int_equal(n, 0);
	cml_workers_free(w, n);
	cJSON_Delete(d);
}

static void
test_api_version(void **state)
{
	(void)state;
	assert_int_equal(cml_api_at_least("2.31", 2, 30), 1);
	assert_int_equal(cml_api_at_least("2.30", 2, 30), 1);
	assert_int_equal(cml_api_at_least("2.29", 2, 30), 0);
	assert_int_equal(cml_api_at_least("2.4", 2, 30), 0);
	assert_int_equal(cml_api_at_least("3.0", 2, 30), 1);
	assert_int_equal(cml_api_at_least("1.99", 2, 30), 0);
	assert_int_equal(cml_api_at_least("", 2, 30), -1);
	assert_int_equal(cml_api_at_least("2", 2, 30), -1);
	assert_int_equal(cml_api_at_least("v2.3", 2, 30), -1);
	assert_int_equal(cml_api_at_least("2.x", 2, 30), -1);
	assert_int_equal(cml_api_at_least(NULL, 2, 30), -1);
}

/* Tasks */

static void
test_tasks(void **state)
{
	struct cml_task	*t;
	size_t		 n;
	cJSON		*d;
	char		 err[256];

	(void)state;
	d = json("{\"tasks\":[{\"id\":\"t1\",\"name\":\"train\","
	    "\"status\":\"in_progress\",\"status_reason\":\"\","
	    "\"last_worker\":\"qs:gpu:g4dn:i-1\",\"execution\":{\"queue\":"
	    "\"q2\",\"parameters\":{}},\"last_update\":"
	    "\"2025-01-13T18:32:13.123000+00:00\",\"unknown\":[1]},"
	    "{\"id\":\"t2\",\"execution\":{\"queue\":null}},{\"id\":\"t3\","
	    "\"execution\":null,\"comment\":\"c\"}]}");
	assert_int_equal(cml_parse_tasks(d, &t, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 3);
	assert_string_equal(t[0].id, "t1");
	assert_string_equal(t[0].name, "train");
	assert_string_equal(t[0].status, "in_progress");
	assert_string_equal(t[0].status_reason, "");
	assert_string_equal(t[0].last_worker, "qs:gpu:g4dn:i-1");
	assert_string_equal(t[0].queue, "q2");
	assert_int_equal(t[0].last_update_ms, 1736793133123LL);
	assert_null(t[0].comment);
	assert_string_equal(t[1].queue, "");
	assert_null(t[1].status);
	assert_string_equal(t[2].comment, "c");
	cml_tasks_free(t, n);
	cJSON_Delete(d);

	/* tasks.get_by_id */
	d = json("{\"task\":{\"id\":\"t5\",\"status\":\"queued\"}}");
	assert_int_equal(cml_parse_tasks(d, &t, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_string_equal(t[0].id, "t5");
	assert_string_equal(t[0].status, "queued");
	cml_tasks_free(t, n);
	cJSON_Delete(d);
}

static void
test_tasks_type_errors(void **state)
{
	static const struct {
		const char	*data;
		const char	*field;
	} cases[] = {
		{ "{}", "data.tasks: missing" },
		{ "{\"tasks\":5}", "data.tasks: expected an array" },
		{ "{\"tasks\":[{\"name\":\"x\"}]}", "tasks[0].id: missing" },
		{ "{\"tasks\":[{\"id\":\"t\",\"status\":3}]}",
		  "tasks[0].status: expected a string, got a number" },
		{ "{\"tasks\":[{\"id\":\"t\",\"execution\":\"q\"}]}",
		  "tasks[0].execution: expected an object" },
		{ "{\"tasks\":[{\"id\":\"t\",\"execution\":{\"queue\":[]}}]}",
		  "tasks[0].execution.queue: expected a string" },
		{ "{\"tasks\":[{\"id\":\"t\",\"last_update\":\"never\"}]}",
		  "tasks[0].last_update: not a timestamp" },
		{ "{\"task\":[]}", "task: expected an object" },
		{ "{\"task\":{\"id\":true}}", "task.id: expected a string" },
	};
	struct cml_task	*t;
	size_t		 n, i;
	cJSON		*d;
	char		 err[256];

	(void)state;
	for (i = 0; i < QS_ARRAYLEN(cases); i++) {
		d = json(cases[i].data);
		err[0] = '\0';
		assert_int_equal(cml_parse_tasks(d, &t, &n, err, sizeof(err)),
		    -1);
		assert_null(t);
		if (strstr(err, cases[i].field) == NULL)
			fail_msg("%s: got \"%s\", want \"%s\"", cases[i].data,
			    err, cases[i].field);
		cJSON_Delete(d);
	}
}

static void
test_class_names(void **state)
{
	(void)state;
	assert_string_equal(cml_err_class_name(CML_OK), "ok");
	assert_string_equal(cml_err_class_name(CML_ERR_AUTH), "auth");
	assert_string_equal(cml_err_class_name(CML_ERR_NOT_FOUND),
	    "not found");
	assert_string_equal(cml_err_class_name(CML_ERR_INVALID), "invalid");
	assert_string_equal(cml_err_class_name(CML_ERR_SERVER), "server");
	assert_string_equal(cml_err_class_name(CML_ERR_TRANSIENT),
	    "transient");
	assert_string_equal(cml_err_class_name((enum cml_err_class)42),
	    "unknown");
}

/* Paging: canned pages of a list the server cuts at 500 items. */
static cJSON *
page_of(int from, int n)
{
	cJSON	*d = cJSON_CreateObject(), *a, *t;
	char	 id[40];
	int	 i;

	a = cJSON_AddArrayToObject(d, "tasks");
	for (i = from; i < from + n; i++) {
		t = cJSON_CreateObject();
		snprintf(id, sizeof(id), "%032x", i);
		cJSON_AddStringToObject(t, "id", id);
		cJSON_AddItemToArray(a, t);
	}
	return d;
}

static int
take(struct cml_pages *pg, int from, int n)
{
	cJSON	*d = page_of(from, n);
	char	 err[256];
	int	 rc = cml_page_take(pg, d, err, sizeof(err));

	cJSON_Delete(d);
	return rc;
}

static void
test_pages(void **state)
{
	struct cml_pages	 pg;
	cJSON			*d;
	char			 err[256];

	(void)state;
	/* 1,200 tasks: 500, 500, then a short page ends the list */
	memset(&pg, 0, sizeof(pg));
	pg.key = "tasks";
	assert_int_equal(take(&pg, 0, 500), 1);
	assert_int_equal(take(&pg, 500, 500), 1);
	assert_int_equal(take(&pg, 1000, 200), 0);
	assert_int_equal(cJSON_GetArraySize(pg.items), 1200);
	assert_string_equal(cJSON_GetArrayItem(cJSON_GetArrayItem(pg.items,
	    1199), 0)->valuestring, "000000000000000000000000000004af");
	cJSON_Delete(pg.items);

	/* 1,000: two full pages, and an empty one to be sure */
	memset(&pg, 0, sizeof(pg));
	pg.key = "tasks";
	assert_int_equal(take(&pg, 0, 500), 1);
	assert_int_equal(take(&pg, 500, 500), 1);
	assert_int_equal(take(&pg, 1000, 0), 0);
	assert_int_equal(cJSON_GetArraySize(pg.items), 1000);
	cJSON_Delete(pg.items);

	/* as many as asked for by id: no empty page needed */
	memset(&pg, 0, sizeof(pg));
	pg.key = "tasks";
	pg.expected = 1000;
	assert_int_equal(take(&pg, 0, 500), 1);
	assert_int_equal(take(&pg, 500, 500), 0);
	cJSON_Delete(pg.items);

	/* a server whose page size is under ours: a smaller page ends it */
	memset(&pg, 0, sizeof(pg));
	pg.key = "tasks";
	assert_int_equal(take(&pg, 0, 100), 1);
	assert_int_equal(take(&pg, 100, 100), 1);
	assert_int_equal(take(&pg, 200, 37), 0);
	assert_int_equal(cJSON_GetArraySize(pg.items), 237);
	cJSON_Delete(pg.items);

	/* a server that does not page: everything at once */
	memset(&pg, 0, sizeof(pg));
	pg.key = "tasks";
	assert_int_equal(take(&pg, 0, 700), 0);
	cJSON_Delete(pg.items);

	/* one that ignores the page asked for: an error, not a loop */
	memset(&pg, 0, sizeof(pg));
	pg.key = "tasks";
	assert_int_equal(take(&pg, 0, 500), 1);
	d = page_of(0, 500);
	assert_int_equal(cml_page_take(&pg, d, err, sizeof(err)), -1);
	assert_string_equal(err, "data.tasks: page 1 repeats page 0: the "
	    "server ignores paging");
	cJSON_Delete(d);
	cJSON_Delete(pg.items);

	/* a malformed page names what is wrong */
	memset(&pg, 0, sizeof(pg));
	pg.key = "queues";
	d = json("{\"queues\": {}}");
	assert_int_equal(cml_page_take(&pg, d, err, sizeof(err)), -1);
	assert_string_equal(err, "data.queues: expected an array, got an "
	    "object");
	cJSON_Delete(d);
	cJSON_Delete(pg.items);
}

/*
 * The client against canned replies.  The server below is a few lines
 * of evhttp answering from a script: it only counts requests and plays
 * back the statuses a test asks for, so the client's own logic (one
 * login for many calls, the 401 re-login, retries) can be checked
 * without the simulated cloud.
 */

struct canned {
	struct event_base	*base;
	struct evhttp		*http;
	int			 port;
	int			 logins;
	int			 calls;		/* other than auth.login */
	int			 fail_next;	/* answer so many calls with: */
	int			 fail_status;	/* 401, 503, 500 (HTML) */
	int			 token_ttl;	/* seconds */
	int			 bad_auth;	/* every call gets 401 */
	const char		*api_version;	/* in the token */
	int			 ntasks;	/* tasks.get_all serves so many */
	int			 nentries;	/* the queue's entries */
	int			 pages;		/* list calls answered */
	char			 last_auth[512];
	char			 last_body[512];
	int			 pending;	/* client calls not done */
	struct cml_error	 errs[16];
	int			 nerrs;
	int			 noks;
};

static void
canned_reply(struct evhttp_request *r, int status, const char *body,
    const char *ctype)
{
	struct evbuffer	*b = evbuffer_new();

	evbuffer_add(b, body, strlen(body));
	evhttp_add_header(evhttp_request_get_output_headers(r),
	    "Content-Type", ctype);
	evhttp_send_reply(r, status, "X", b);
	evbuffer_free(b);
}

/*
 * As the real server pages: at most 500 items, page_size honoured up to
 * that, page from 0.  tasks.get_all lists s->ntasks tasks; queues.get_all
 * one queue with s->nentries entries (entries are never cut).
 */
static void
canned_list(struct canned *s, struct evhttp_request *r, const char *uri)
{
	struct evbuffer	*in = evhttp_request_get_input_buffer(r);
	size_t		 len = evbuffer_get_length(in);
	char		*req = xmalloc(len + 1), *body, id[40];
	cJSON		*p, *d, *a, *o, *e;
	int		 page = 0, size = 500, i, n, queues;

	evbuffer_copyout(in, req, len);
	req[len] = '\0';
	assert_non_null(p = cJSON_Parse(req));
	free(req);
	if (cJSON_IsNumber(cJSON_GetObjectItem(p, "page")))
		page = cJSON_GetObjectItem(p, "page")->valueint;
	if (cJSON_IsNumber(cJSON_GetObjectItem(p, "page_size")))
		size = QS_MIN(cJSON_GetObjectItem(p, "page_size")->valueint,
		    500);
	cJSON_Delete(p);
	s->pages++;
	queues = strcmp(uri, "/queues.get_all") == 0;
	n = queues ? 1 : s->ntasks;
	d = cJSON_CreateObject();
	a = cJSON_AddArrayToObject(d, queues ? "queues" : "tasks");
	for (i = page * size; i < n && i < (page + 1) * size; i++) {
		o = cJSON_CreateObject();
		snprintf(id, sizeof(id), "%032x", queues ? 0xabc : i);
		cJSON_AddStringToObject(o, "id", id);
		cJSON_AddStringToObject(o, "status", "stopped");
		if (queues) {
			cJSON_AddStringToObject(o, "name", "q");
			e = cJSON_AddArrayToObject(o, "entries");
			for (int j = 0; j < s->nentries; j++) {
				cJSON *en = cJSON_CreateObject();

				snprintf(id, sizeof(id), "%032x", j);
				cJSON_AddStringToObject(en, "task", id);
				cJSON_AddStringToObject(en, "added",
				    "2025-01-13T18:32:13.123+00:00");
				cJSON_AddItemToArray(e, en);
			}
		}
		cJSON_AddItemToArray(a, o);
	}
	body = cJSON_PrintUnformatted(d);
	cJSON_Delete(d);
	{
		char *env = envelope(body);

		canned_reply(r, 200, env, "application/json");
		free(env);
	}
	free(body);
}

static void
canned_cb(struct evhttp_request *r, void *arg)
{
	struct canned	*s = arg;
	const char	*uri = evhttp_request_get_uri(r), *auth;
	char		*body, *tok, payload[128];
	int64_t		 now = now_ms() / 1000;

	auth = evhttp_find_header(evhttp_request_get_input_headers(r),
	    "Authorization");
	snprintf(s->last_auth, sizeof(s->last_auth), "%s",
	    auth != NULL ? auth : "");
	{
		struct evbuffer	*in = evhttp_request_get_input_buffer(r);
		size_t		 n = evbuffer_get_length(in);

		n = QS_MIN(n, sizeof(s->last_body) - 1);
		evbuffer_copyout(in, s->last_body, n);
		s->last_body[n] = '\0';
	}
	if (strcmp(uri, "/auth.login") == 0) {
		s->logins++;
		assert_non_null(auth);
		assert_int_equal(strncmp(auth, "Basic ", 6), 0);
		snprintf(payload, sizeof(payload), "{\"iat\":%lld,\"exp\":%lld,"
		    "\"api_version\":\"%s\",\"server_version\":\"2.0.0\"}",
		    (long long)now, (long long)(now + s->token_ttl),
		    s->api_version != NULL ? s->api_version : "2.31");
		tok = make_jwt(payload);
		xasprintf(&body, "{%s,\"data\":{\"token\":\"%s\"}}", ok_meta,
		    tok);
		free(tok);
		canned_reply(r, 200, body, "application/json");
		free(body);
		return;
	}
	s->calls++;
	if (s->bad_auth || (s->fail_next > 0 && s->fail_status == 401)) {
		s->fail_next--;
		body = err_envelope(401, 30, "Invalid token");
		canned_reply(r, 401, body, "application/json");
		free(body);
		return;
	}
	if (auth == NULL || strncmp(auth, "Bearer ", 7) != 0) {
		body = err_envelope(401, 20, "Unauthorized");
		canned_reply(r, 401, body, "application/json");
		free(body);
		return;
	}
	if (s->fail_next > 0) {
		s->fail_next--;
		canned_reply(r, s->fail_status, "<html>down</html>",
		    "text/html");
		return;
	}
	if (strcmp(uri, "/tasks.get_all") == 0 ||
	    strcmp(uri, "/queues.get_all") == 0) {
		canned_list(s, r, uri);
		return;
	}
	/* as an old server would, whatever the pattern asked */
	body = envelope("{\"workers\":[{\"id\":\"w1\"},{\"id\":\"x9\"}]}");
	canned_reply(r, 200, body, "application/json");
	free(body);
}

static int
canned_setup(void **state)
{
	struct canned		*s = xcalloc(1, sizeof(*s));
	struct evhttp_bound_socket *bs;
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);

	s->base = event_base_new();
	s->http = evhttp_new(s->base);
	evhttp_set_gencb(s->http, canned_cb, s);
	bs = evhttp_bind_socket_with_handle(s->http, "127.0.0.1", 0);
	assert_non_null(bs);
	getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss,
	    &len);
	s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	s->token_ttl = 30 * 86400;
	*state = s;
	return 0;
}

static int
canned_teardown(void **state)
{
	struct canned	*s = *state;

	evhttp_free(s->http);
	event_base_free(s->base);
	free(s);
	mask_clear();
	return 0;
}

static struct cml_client *
canned_client(struct canned *s, struct http_client **hc)
{
	struct cml_client	*c;
	char			 url[64];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s->port);
	*hc = http_client_new(s->base);
	c = cml_client_new(s->base, *hc, url, "AKEY", "the-secret-key");
	assert_non_null(c);
	cml_client_set_retry(c, 2, 20, 2000);
	return c;
}

static void
canned_workers_cb(const struct cml_error *err, const struct cml_worker *w,
    size_t n, void *arg)
{
	struct canned	*s = arg;

	if (err != NULL) {
		if (s->nerrs < (int)QS_ARRAYLEN(s->errs))
			s->errs[s->nerrs++] = *err;
	} else {
		assert_int_equal(n, 1);
		assert_string_equal(w[0].id, "w1");
		s->noks++;
	}
	if (--s->pending == 0)
		event_base_loopbreak(s->base);
}

static void
canned_run(struct canned *s, struct cml_client *c, int ncalls)
{
	int	 i;

	s->nerrs = s->noks = 0;
	for (i = 0; i < ncalls; i++) {
		s->pending++;
		assert_int_equal(cml_workers_get_all(c, "w*", 60,
		    canned_workers_cb, s), 0);
	}
	/* nothing completes from inside the call */
	assert_int_equal(s->noks + s->nerrs, 0);
	event_base_dispatch(s->base);
	assert_int_equal(s->pending, 0);
}

static uint64_t
stat_of(struct cml_client *c, const char *endpoint, int which)
{
	const struct cml_call_stats	*st;
	size_t				 n, i;

	st = cml_client_stats(c, &n);
	for (i = 0; i < n; i++)
		if (strcmp(st[i].endpoint, endpoint) == 0)
			return which == 0 ? st[i].calls : which == 1 ?
			    st[i].errors : st[i].retries;
	return 0;
}

static void
test_client_one_login(void **state)
{
	struct canned		*s = *state;
	struct http_client	*hc;
	struct cml_client	*c = canned_client(s, &hc);

	canned_run(s, c, 5);
	assert_int_equal(s->noks, 5);
	assert_int_equal(s->logins, 1);	/* five calls, one login */
	assert_int_equal(s->calls, 5);
	assert_string_equal(cml_api_version(c), "2.31");
	assert_string_equal(cml_server_version(c), "2.0.0");
	assert_int_equal(strncmp(s->last_auth, "Bearer ", 7), 0);
	assert_int_equal(stat_of(c, "workers.get_all", 0), 5);
	assert_int_equal(stat_of(c, "auth.login", 0), 1);
	/* the token is masked as soon as it is known */
	{
		char *m = mask_dup(s->last_auth);

		assert_string_equal(m, "Bearer " MASK_TEXT);
		free(m);
	}
	canned_run(s, c, 2);
	assert_int_equal(s->logins, 1);	/* still fresh */
	cml_client_free(c);
	http_client_free(hc);
}

static void
test_client_short_token(void **state)
{
	struct canned		*s = *state;
	struct http_client	*hc;
	struct cml_client	*c = canned_client(s, &hc);
	char			*old, *m;

	s->token_ttl = 2;	/* renewed when under 1 s remains */
	canned_run(s, c, 1);
	assert_int_equal(s->logins, 1);
	canned_run(s, c, 1);
	assert_int_equal(s->logins, 1);
	old = xstrdup(s->last_auth + 7);
	usleep(1200 * 1000);
	canned_run(s, c, 3);
	assert_int_equal(s->noks, 3);
	assert_int_equal(s->logins, 2);
	/* the replaced token is no longer on the mask list, the new one is */
	m = mask_dup(old);
	assert_string_equal(m, old);
	free(m);
	m = mask_dup(s->last_auth + 7);
	assert_string_equal(m, MASK_TEXT);
	free(m);
	free(old);
	cml_client_free(c);
	http_client_free(hc);
}

static void
test_client_401_relogin(void **state)
{
	struct canned		*s = *state;
	struct http_client	*hc;
	struct cml_client	*c = canned_client(s, &hc);

	canned_run(s, c, 1);
	assert_int_equal(s->logins, 1);
	/* the server forgot the token: one login, every call retried */
	s->fail_next = 3;
	s->fail_status = 401;
	canned_run(s, c, 3);
	assert_int_equal(s->noks, 3);
	assert_int_equal(s->logins, 2);
	/* a token refused even after a fresh login: auth, once */
	s->bad_auth = 1;
	s->calls = 0;
	canned_run(s, c, 1);
	assert_int_equal(s->nerrs, 1);
	assert_int_equal(s->errs[0].cls, CML_ERR_AUTH);
	assert_int_equal(s->errs[0].http_status, 401);
	assert_int_equal(s->logins, 3);
	assert_int_equal(s->calls, 2);
	assert_null(strstr(s->errs[0].message, "the-secret-key"));
	cml_client_free(c);
	http_client_free(hc);
}

static void
test_client_retries(void **state)
{
	struct canned		*s = *state;
	struct http_client	*hc;
	struct cml_client	*c = canned_client(s, &hc);

	/* two 503s, then an answer: retried within the budget */
	s->fail_next = 2;
	s->fail_status = 503;
	canned_run(s, c, 1);
	assert_int_equal(s->noks, 1);
	assert_int_equal(s->calls, 3);
	assert_int_equal(stat_of(c, "workers.get_all", 2), 2);
	assert_int_equal(stat_of(c, "workers.get_all", 1), 2);
	/* more than the budget: transient */
	s->calls = 0;
	s->fail_next = 10;
	canned_run(s, c, 1);
	assert_int_equal(s->nerrs, 1);
	assert_int_equal(s->errs[0].cls, CML_ERR_TRANSIENT);
	assert_int_equal(s->calls, 3);
	/* an HTML 500 is a server error, not retried */
	s->calls = 0;
	s->fail_next = 1;
	s->fail_status = 500;
	canned_run(s, c, 1);
	assert_int_equal(s->nerrs, 1);
	assert_int_equal(s->errs[0].cls, CML_ERR_SERVER);
	assert_non_null(strstr(s->errs[0].message, "workers.get_all"));
	assert_int_equal(s->calls, 1);
	cml_client_free(c);
	http_client_free(hc);
}

static void
test_client_down(void **state)
{
	struct canned		*s = *state;
	struct http_client	*hc;
	struct cml_client	*c;
	int			 port = s->port;

	/* nobody listens there: the login fails, and so does the call */
	s->port = 9;
	c = canned_client(s, &hc);
	s->port = port;
	canned_run(s, c, 2);
	assert_int_equal(s->nerrs, 2);
	assert_int_equal(s->errs[0].cls, CML_ERR_TRANSIENT);
	assert_int_equal(s->errs[0].http_status, 0);
	assert_string_equal(s->errs[0].endpoint, "workers.get_all");
	assert_non_null(strstr(s->errs[0].message, "auth.login"));
	/* one login (with its retries) for both calls */
	assert_int_equal(stat_of(c, "auth.login", 0), 3);
	assert_int_equal(stat_of(c, "workers.get_all", 0), 0);
	cml_client_free(c);
	http_client_free(hc);
}

static void
test_client_old_api(void **state)
{
	struct canned		*s = *state;
	struct http_client	*hc;
	struct cml_client	*c = canned_client(s, &hc);

	/* 2.31: the server filters, and the client checks again */
	canned_run(s, c, 1);
	canned_run(s, c, 1);
	assert_int_equal(s->noks, 1);
	assert_non_null(strstr(s->last_body, "\"worker_pattern\":\"w*\""));
	assert_non_null(strstr(s->last_body, "\"last_seen\":60"));
	cml_client_free(c);
	http_client_free(hc);

	/* before 2.30 there is no worker_pattern: the client filters */
	s->api_version = "2.29";
	c = canned_client(s, &hc);
	canned_run(s, c, 1);
	canned_run(s, c, 1);
	assert_int_equal(s->noks, 1);
	assert_string_equal(cml_api_version(c), "2.29");
	assert_null(strstr(s->last_body, "worker_pattern"));
	assert_non_null(strstr(s->last_body, "\"last_seen\":60"));
	cml_client_free(c);
	http_client_free(hc);
}

static void
canned_tasks_cb(const struct cml_error *err, const struct cml_task *t,
    size_t n, void *arg)
{
	struct canned	*s = arg;

	assert_null(err);
	s->noks = (int)n;
	if (n > 0)
		assert_string_equal(t[n - 1].status, "stopped");
	event_base_loopbreak(s->base);
}

static void
canned_queue_cb(const struct cml_error *err, const struct cml_queue *q,
    void *arg)
{
	struct canned	*s = arg;

	assert_null(err);
	s->noks = (int)q->nentries;
	event_base_loopbreak(s->base);
}

/* A server that answers at most 500 items a call: every list pages. */
static void
test_client_pages(void **state)
{
	struct canned		*s = *state;
	struct http_client	*hc;
	struct cml_client	*c = canned_client(s, &hc);
	const char		**ids;
	cJSON			*f;
	char			 (*buf)[40];
	int			 i;

	/* a re-queue check over 1,000 tasks by id: two pages */
	s->ntasks = 1000;
	ids = xcalloc(1000, sizeof(*ids));
	buf = xcalloc(1000, sizeof(*buf));
	for (i = 0; i < 1000; i++) {
		snprintf(buf[i], sizeof(buf[i]), "%032x", i);
		ids[i] = buf[i];
	}
	assert_int_equal(cml_tasks_get_all(c, ids, 1000, canned_tasks_cb, s),
	    0);
	event_base_dispatch(s->base);
	assert_int_equal(s->noks, 1000);
	assert_int_equal(s->pages, 2);
	/* 1,200 found by a filter: three pages */
	s->ntasks = 1200;
	s->pages = 0;
	f = json("{\"status\": [\"stopped\"]}");
	assert_int_equal(cml_tasks_query(c, f, canned_tasks_cb, s), 0);
	event_base_dispatch(s->base);
	assert_int_equal(s->noks, 1200);
	assert_int_equal(s->pages, 3);
	/* a queue of 5,000 entries: one queue, all its entries */
	s->nentries = 5000;
	s->pages = 0;
	assert_int_equal(cml_queue_get(c, "00000000000000000000000000000abc",
	    canned_queue_cb, s), 0);
	event_base_dispatch(s->base);
	assert_int_equal(s->noks, 5000);
	assert_int_equal(s->pages, 1);
	cJSON_Delete(f);
	free(ids);
	free(buf);
	cml_client_free(c);
	http_client_free(hc);
}

static void
test_client_args(void **state)
{
	struct canned		*s = *state;
	struct http_client	*hc = http_client_new(s->base);
	struct cml_client	*c;

	assert_null(cml_client_new(s->base, hc, "", "a", "b"));
	assert_null(cml_client_new(s->base, hc, NULL, "a", "b"));
	assert_null(cml_client_new(s->base, hc, "http://x", NULL, "b"));
	c = cml_client_new(s->base, hc, "http://127.0.0.1:9", "a", "bbbb");
	assert_int_equal(cml_queue_resolve(c, "", NULL, NULL), -1);
	assert_int_equal(cml_queue_get(c, NULL, NULL, NULL), -1);
	assert_int_equal(cml_call(c, "x.y", NULL, NULL, NULL), -1);
	assert_int_equal(cml_task_enqueue(c, "t", "", "r", NULL, NULL), -1);
	/* a client freed with calls queued runs no callback */
	assert_int_equal(cml_workers_get_all(c, NULL, 0, canned_workers_cb,
	    s), 0);
	cml_client_free(c);
	http_client_free(hc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_envelope_ok),
		cmocka_unit_test(test_envelope_errors),
		cmocka_unit_test(test_envelope_not_json),
		cmocka_unit_test(test_error_masked),
		cmocka_unit_test(test_jwt_claims),
		cmocka_unit_test(test_jwt_malformed),
		cmocka_unit_test(test_timestamps),
		cmocka_unit_test(test_queue_entries),
		cmocka_unit_test(test_queue_type_errors),
		cmocka_unit_test(test_queue_exact_name),
		cmocka_unit_test(test_regex_escape),
		cmocka_unit_test(test_workers_busy_idle),
		cmocka_unit_test(test_workers_type_errors),
		cmocka_unit_test(test_glob),
		cmocka_unit_test(test_workers_filter),
		cmocka_unit_test(test_api_version),
		cmocka_unit_test(test_tasks),
		cmocka_unit_test(test_tasks_type_errors),
		cmocka_unit_test(test_class_names),
		cmocka_unit_test(test_pages),
		cmocka_unit_test_setup_teardown(test_client_one_login,
		    canned_setup, canned_teardown),
		cmocka_unit_test_setup_teardown(test_client_short_token,
		    canned_setup, canned_teardown),
		cmocka_unit_test_setup_teardown(test_client_401_relogin,
		    canned_setup, canned_teardown),
		cmocka_unit_test_setup_teardown(test_client_retries,
		    canned_setup, canned_teardown),
		cmocka_unit_test_setup_teardown(test_client_down,
		    canned_setup, canned_teardown),
		cmocka_unit_test_setup_teardown(test_client_old_api,
		    canned_setup, canned_teardown),
		cmocka_unit_test_setup_teardown(test_client_pages,
		    canned_setup, canned_teardown),
		cmocka_unit_test_setup_teardown(test_client_args,
		    canned_setup, canned_teardown),
	};

	log_init("test", LOG_LVL_ERROR, 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
