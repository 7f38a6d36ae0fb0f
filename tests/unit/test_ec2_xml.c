/*
 * test_ec2_xml.c: every recorded response and error through the parsers:
 * the tree's own (data/ec2, recorded from moto by data/ec2/record.py;
 * each result is held to what botocore's parser read in the same bytes)
 * and, when they are there, the reference samples'.  Then the four error
 * shapes, hostile input, and the table that classifies error codes.
 */
#include <sys/types.h>

#include <dirent.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common.h"
#include "ec2.h"
#include "samples.h"

/* --- the tree's fixtures ------------------------------------------- */

/* What a test does with one response of the index. */
typedef void	 entry_check(const cJSON *, const char *, size_t,
		    const cJSON *);

/* Runs CHECK on every response of KIND (and ACTION, if set): how many. */
static int
each_entry(const cJSON *index, const char *kind, const char *action,
    entry_check *check)
{
	const cJSON	*e;
	const char	*file;
	char		*body;
	size_t		 len;
	int		 n = 0;

	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(index,
	    "responses")) {
		assert_non_null(fx_str(e, "kind"));
		assert_non_null(fx_str(e, "action"));
		if (strcmp(fx_str(e, "kind"), kind) != 0 || (action != NULL &&
		    strcmp(fx_str(e, "action"), action) != 0))
			continue;
		assert_non_null(file = fx_str(e, "file"));
		assert_non_null(body = fixture_read(file, &len));
		check(e, body, len, index);
		free(body);
		n++;
	}
	return n;
}

/* GOT is what botocore read, WANT; long texts from where they differ. */
static void
want_str(const char *file, const char *field, const char *got,
    const char *want)
{
	size_t	 i;

	if (want == NULL)
		fail_msg("%s: %s \"%.64s\", botocore read none", file, field,
		    got);
	if (strcmp(got, want) == 0)
		return;
	for (i = 0; got[i] == want[i]; i++)
		;
	if (i < 32)
		i = 0;
	fail_msg("%s: %s \"%.64s\", botocore read \"%.64s\" (from byte %zu)",
	    file, field, got + i, want + i, i);
}

#define want_int(file, field, got, want) do {				\
	if ((long long)(got) != (long long)(want))			\
		fail_msg("%s: %s %lld, botocore read %lld", (file),	\
		    (field), (long long)(got), (long long)(want));	\
} while (0)

/* One parsed instance against botocore's reading of it. */
static void
check_instance(const char *file, const struct ec2_instance *in,
    const cJSON *w)
{
	const cJSON	*tags = cJSON_GetObjectItemCaseSensitive(w, "tags"), *t;

	want_str(file, "id", in->id, fx_str(w, "id"));
	want_str(file, "state", in->state, fx_str(w, "state"));
	want_int(file, "state code", in->state_code, fx_int(w, "state_code"));
	want_str(file, "type", in->type, fx_str(w, "type"));
	want_str(file, "zone", in->az, fx_str(w, "az"));
	want_str(file, "subnet", in->subnet, fx_str(w, "subnet"));
	want_str(file, "image", in->image, fx_str(w, "image"));
	want_str(file, "private ip", in->private_ip, fx_str(w, "private_ip"));
	want_str(file, "state reason", in->state_reason,
	    fx_str(w, "state_reason"));
	want_str(file, "client token", in->client_token,
	    fx_str(w, "client_token"));
	want_int(file, "spot", in->spot, cJSON_IsTrue(
	    cJSON_GetObjectItemCaseSensitive(w, "spot")));
	want_int(file, "launch time", in->launch_ms,
	    cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(w,
	    "launch_ms")));
	want_int(file, "tags", in->ntags, cJSON_GetArraySize(tags));
	cJSON_ArrayForEach(t, tags) {
		const char *k = cJSON_GetStringValue(cJSON_GetArrayItem(t, 0));
		const char *v = cJSON_GetStringValue(cJSON_GetArrayItem(t, 1));
		const char *got = ec2_instance_tag(in, k);

		want_str(file, k, got != NULL ? got : "(missing)", v);
	}
}

/* A RunInstances or DescribeInstances response, as botocore read it. */
static void
check_instances_entry(const cJSON *e, const char *body, size_t len,
    const cJSON *index)
{
	const cJSON		*w = cJSON_GetObjectItemCaseSensitive(e,
				    "expect"), *wis, *wi;
	const char		*file = fx_str(e, "file"), *tok;
	struct ec2_instance	*v;
	struct ec2_error	 er;
	size_t			 n, i = 0;
	char			*next, err[256];

	(void)index;
	if (ec2_parse_instances(body, len, &v, &n, &next, err,
	    sizeof(err)) != 0)
		fail_msg("%s: %s", file, err);
	wis = cJSON_GetObjectItemCaseSensitive(w, "instances");
	want_int(file, "instances", n, cJSON_GetArraySize(wis));
	cJSON_ArrayForEach(wi, wis)
		check_instance(file, &v[i++], wi);
	if ((tok = fx_str(w, "next_token")) != NULL)
		want_str(file, "next token", next != NULL ? next : "(none)",
		    tok);
	else if (next != NULL)
		fail_msg("%s: next token %s, botocore read none", file, next);
	/* a success is no error */
	assert_int_equal(ec2_parse_error(200, body, len, &er), -1);
	assert_string_equal(er.code, "");
	ec2_instances_free(v, n);
	free(next);
}

/* The tree's response FILE, parsed: *np instances (and *next). */
static struct ec2_instance *
tree_instances(const char *file, size_t *np, char **next)
{
	struct ec2_instance	*v;
	char			*body, err[256];
	size_t			 len;

	assert_non_null(body = fixture_read(file, &len));
	if (ec2_parse_instances(body, len, &v, np, next, err,
	    sizeof(err)) != 0)
		fail_msg("%s: %s", file, err);
	free(body);
	return v;
}

static void
tree_run_instances_response(void)
{
	const cJSON		*launch, *ids;
	struct ec2_instance	*v;
	cJSON			*index;
	size_t			 n, i;
	char			*next;

	assert_non_null(index = fixture_index());
	assert_int_equal(each_entry(index, "instances", "RunInstances",
	    check_instances_entry), 1);
	/* what record.py launched: two spot instances, every field */
	launch = cJSON_GetObjectItemCaseSensitive(index, "launch");
	ids = cJSON_GetObjectItemCaseSensitive(launch, "instance_ids");
	v = tree_instances("RunInstances_full.xml", &n, &next);
	assert_int_equal(n, 2);
	assert_null(next);
	for (i = 0; i < n; i++) {
		assert_string_equal(v[i].id, cJSON_GetStringValue(
		    cJSON_GetArrayItem(ids, (int)i)));
		assert_true(strncmp(v[i].id, "i-", 2) == 0);
		assert_string_equal(v[i].state, "pending");
		assert_int_equal(v[i].state_code, 0);
		assert_string_equal(v[i].type, "g4dn.xlarge");
		assert_string_equal(v[i].image, "ami-1e749f67");
		assert_string_equal(v[i].az, "us-east-1b");
		assert_string_equal(v[i].subnet, fx_str(launch, "subnet_id"));
		assert_string_equal(v[i].client_token, "qscale-rec-0001");
		assert_string_equal(v[i].state_reason, "");
		assert_true(v[i].spot);
		assert_true(v[i].launch_ms > 1700000000000LL);
		assert_int_equal(v[i].ntags, 4);
		assert_string_equal(ec2_instance_tag(&v[i], "Name"),
		    "qtest:gpu");
		assert_string_equal(ec2_instance_tag(&v[i], "team"),
		    "a b&c=d");
		assert_string_equal(ec2_instance_tag(&v[i],
		    "qscale:resource"), "gpu");
		assert_null(ec2_instance_tag(&v[i], "nope"));
	}
	ec2_instances_free(v, n);
	cJSON_Delete(index);
}

static void
tree_describe_instances_page(void)
{
	const cJSON		*ids;
	struct ec2_instance	*v, *p1;
	cJSON			*index;
	size_t			 n, n1, i, total = 0;
	char			 name[64], *next, *next1, *req, *tok;
	int			 page;

	assert_non_null(index = fixture_index());
	/* three pages, the first indented too, and the terminated two */
	assert_int_equal(each_entry(index, "instances", "DescribeInstances",
	    check_instances_entry), 5);

	/* page after page: each nextToken is the next request's NextToken */
	for (page = 1; ; page++) {
		snprintf(name, sizeof(name), "DescribeInstances_page%d.xml",
		    page);
		v = tree_instances(name, &n, &next);
		total += n;
		for (i = 0; i < n; i++) {
			assert_string_equal(v[i].state, "running");
			assert_int_equal(v[i].state_code, 16);
			assert_string_equal(ec2_instance_tag(&v[i],
			    "qscale:resource"), "gpu");
			/* the instance's own address, not an interface's */
			assert_true(strncmp(v[i].private_ip, "172.31.",
			    7) == 0);
		}
		ec2_instances_free(v, n);
		snprintf(name, sizeof(name),
		    "DescribeInstances_page%d.request.txt", page);
		assert_non_null(req = fixture_read(name, NULL));
		tok = form_value(req, "NextToken");
		if (page == 1)
			assert_null(tok);
		free(tok);
		free(req);
		if (next == NULL)
			break;
		snprintf(name, sizeof(name),
		    "DescribeInstances_page%d.request.txt", page + 1);
		assert_non_null(req = fixture_read(name, NULL));
		assert_non_null(tok = form_value(req, "NextToken"));
		assert_string_equal(tok, next);
		assert_true(strncmp(next, "r-", 2) == 0);
		free(tok);
		free(req);
		free(next);
	}
	assert_int_equal(page, 3);
	/* the gpu ones: two in the first reservation, one in each other */
	assert_int_equal(total, 4);

	/* the first page, and the same indented */
	p1 = tree_instances("DescribeInstances_page1.xml", &n1, &next1);
	v = tree_instances("DescribeInstances_page1.pretty.xml", &n, &next);
	ids = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(
	    index, "launch"), "instance_ids");
	assert_int_equal(n, 2);
	assert_int_equal(n1, 2);
	assert_string_equal(next, next1);
	for (i = 0; i < n; i++) {
		assert_string_equal(v[i].id, p1[i].id);
		assert_string_equal(v[i].id, cJSON_GetStringValue(
		    cJSON_GetArrayItem(ids, (int)i)));
		assert_string_equal(v[i].private_ip, p1[i].private_ip);
		assert_int_equal(v[i].launch_ms, p1[i].launch_ms);
		assert_int_equal(v[i].ntags, p1[i].ntags);
		assert_true(v[i].spot);
	}
	ec2_instances_free(v, n);
	ec2_instances_free(p1, n1);
	free(next);
	free(next1);

	/* terminated, with the reason */
	v = tree_instances("DescribeInstances_terminated.xml", &n, &next);
	assert_int_equal(n, 2);
	assert_non_null(req = fixture_read(
	    "DescribeInstances_terminated.request.txt", NULL));
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "InstanceId.%zu", i + 1);
		assert_non_null(tok = form_value(req, name));
		assert_string_equal(v[i].id, tok);
		free(tok);
		assert_string_equal(v[i].state, "terminated");
		assert_int_equal(v[i].state_code, 48);
		assert_string_equal(v[i].state_reason,
		    "Client.UserInitiatedShutdown");
		assert_false(v[i].spot);
	}
	free(req);
	ec2_instances_free(v, n);
	cJSON_Delete(index);
}

static void
check_terminate_entry(const cJSON *e, const char *body, size_t len,
    const cJSON *index)
{
	const cJSON		*w = cJSON_GetObjectItemCaseSensitive(
				    cJSON_GetObjectItemCaseSensitive(e,
				    "expect"), "results"), *r;
	const char		*file = fx_str(e, "file");
	struct ec2_term_result	*v;
	size_t			 n, i = 0;
	char			 err[256], *req, *id, key[32];

	(void)index;
	if (ec2_parse_terminate(body, len, &v, &n, err, sizeof(err)) != 0)
		fail_msg("%s: %s", file, err);
	want_int(file, "results", n, cJSON_GetArraySize(w));
	assert_non_null(fx_str(e, "request"));
	assert_non_null(req = fixture_read(fx_str(e, "request"), NULL));
	cJSON_ArrayForEach(r, w) {
		want_str(file, "id", v[i].id, fx_str(r, "id"));
		want_str(file, "previous state", v[i].previous_state,
		    fx_str(r, "previous_state"));
		want_str(file, "current state", v[i].current_state,
		    fx_str(r, "current_state"));
		assert_false(v[i].not_found);
		/* the ids asked for, in order */
		snprintf(key, sizeof(key), "InstanceId.%zu", i + 1);
		assert_non_null(id = form_value(req, key));
		assert_string_equal(v[i].id, id);
		free(id);
		i++;
	}
	free(req);
	free(v);
}

static void
tree_terminate_response(void)
{
	struct ec2_term_result	*v;
	cJSON			*index;
	char			*body, err[256];
	size_t			 n, len, i;

	assert_non_null(index = fixture_index());
	assert_int_equal(each_entry(index, "terminate", NULL,
	    check_terminate_entry), 1);
	assert_non_null(body = fixture_read("TerminateInstances_2ids.xml",
	    &len));
	assert_int_equal(ec2_parse_terminate(body, len, &v, &n, err,
	    sizeof(err)), 0);
	assert_int_equal(n, 2);
	for (i = 0; i < n; i++) {
		assert_string_equal(v[i].previous_state, "running");
		assert_string_equal(v[i].current_state, "shutting-down");
	}
	assert_string_not_equal(v[0].id, v[1].id);
	free(v);
	free(body);
	cJSON_Delete(index);
}

static void
check_console_entry(const cJSON *e, const char *body, size_t len,
    const cJSON *index)
{
	const char	*file = fx_str(e, "file"), *want;
	char		*text, err[256];

	(void)index;
	want = fx_str(cJSON_GetObjectItemCaseSensitive(e, "expect"),
	    "output");
	if (ec2_parse_console(body, len, &text, err, sizeof(err)) != 0)
		fail_msg("%s: %s", file, err);
	want_str(file, "output", text, want);
	assert_true(strncmp(text, "Linux version 2.6.16-xenU", 25) == 0);
	assert_non_null(strstr(text, "Enabling fast FPU save and restore..."
	    " done.\n"));
	free(text);
}

static void
tree_console_output(void)
{
	cJSON	*index;

	assert_non_null(index = fixture_index());
	assert_int_equal(each_entry(index, "console", NULL,
	    check_console_entry), 1);
	cJSON_Delete(index);
}

/* Responses of calls qscale does not make parse as "not instances". */
static void
check_other_entry(const cJSON *e, const char *body, size_t len,
    const cJSON *index)
{
	struct ec2_instance	*v;
	struct ec2_error	 er;
	size_t			 n;
	char			 err[256];

	(void)index;
	assert_int_equal(fx_int(e, "status"), 200);
	assert_int_equal(ec2_parse_error(200, body, len, &er), -1);
	assert_string_equal(er.code, "");
	assert_int_equal(ec2_parse_instances(body, len, &v, &n, NULL, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "neither"));
}

static void
tree_other_responses(void)
{
	cJSON		*index;
	char		*body, *req, *sent, *a, *b, *stored, *d1, *d2;
	const char	*want;
	size_t		 n1, n2;

	assert_non_null(index = fixture_index());
	assert_int_equal(each_entry(index, "other", NULL, check_other_entry),
	    2);
	/* the user data moto keeps is the user data botocore sent */
	assert_non_null(body = fixture_read(
	    "DescribeInstanceAttribute_userData.xml", NULL));
	assert_non_null(a = strstr(body, "<value>"));
	assert_non_null(b = strstr(a, "</value>"));
	stored = xstrndup(a + 7, (size_t)(b - a - 7));
	want = fx_str(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(fixture_entry(index,
	    "DescribeInstanceAttribute_userData.xml"), "expect"),
	    "UserData"), "Value");
	want_str("DescribeInstanceAttribute_userData.xml", "user data",
	    stored, want);
	assert_non_null(req = fixture_read("RunInstances_full.request.txt",
	    NULL));
	assert_non_null(sent = form_value(req, "UserData"));
	assert_non_null(d1 = ec2_base64_decode(stored, &n1));
	assert_non_null(d2 = ec2_base64_decode(sent, &n2));
	assert_int_equal(n1, n2);
	assert_memory_equal(d1, d2, n1);
	assert_true(strncmp(d1, "#!/bin/bash\necho '+/=&%'", 24) == 0);
	free(d1);
	free(d2);
	free(sent);
	free(req);
	free(stored);
	free(body);
	cJSON_Delete(index);
}

/* qscale's class of each error code of the tree's fixtures. */
static const struct {
	const char		*code;
	enum ec2_err_class	 cls;
} tree_classes[] = {
	{ "InvalidInstanceID.NotFound", EC2_ERR_NOT_FOUND },
	{ "InvalidSubnetID.NotFound", EC2_ERR_NOT_FOUND },
	{ "InvalidAMIID.NotFound", EC2_ERR_NOT_FOUND },
	{ "InvalidInstanceType.NotFound", EC2_ERR_NOT_FOUND },
	{ "NoSuchEntity", EC2_ERR_NOT_FOUND },
	{ "DryRunOperation", EC2_OK },
	{ "AuthFailure", EC2_ERR_AUTH },
	{ "AccessDenied", EC2_ERR_AUTH },
	{ "InsufficientInstanceCapacity", EC2_ERR_CAPACITY },
	{ "RequestLimitExceeded", EC2_ERR_THROTTLE },
	{ "", EC2_ERR_TRANSIENT },	/* an HTML page, an empty 500 */
};

/* The shapes seen, so that a test can insist on every one. */
static int	 seen_xml, seen_no_rid, seen_html, seen_empty;

static void
check_error_entry(const cJSON *e, const char *body, size_t len,
    const cJSON *index)
{
	const cJSON		*w = cJSON_GetObjectItemCaseSensitive(e,
				    "expect");
	const char		*file = fx_str(e, "file");
	const char		*code = fx_str(w, "code"), *shape;
	struct ec2_instance	*v;
	struct ec2_error	 er;
	long			 status = fx_int(e, "status");
	size_t			 i, n;
	char			 msg[512], err[256];

	(void)index;
	assert_non_null(code);
	assert_non_null(shape = fx_str(w, "shape"));
	assert_true(status >= 400 && status <= 599);
	want_int(file, "return", ec2_parse_error(status, body, len, &er),
	    *code != '\0' ? 0 : -1);
	want_int(file, "status", er.http_status, status);
	want_str(file, "code", er.code, code);
	for (i = 0; i < QS_ARRAYLEN(tree_classes); i++)
		if (strcmp(tree_classes[i].code, code) == 0)
			break;
	if (i == QS_ARRAYLEN(tree_classes))
		fail_msg("%s: no class is expected of code %s", file, code);
	if (er.cls != tree_classes[i].cls)
		fail_msg("%s: class %s, want %s", file,
		    ec2_err_class_name(er.cls),
		    ec2_err_class_name(tree_classes[i].cls));
	if (strcmp(shape, "xml") == 0) {
		want_str(file, "message", er.message, fx_str(w, "message"));
		want_str(file, "request id", er.request_id,
		    fx_str(w, "request_id"));
		seen_xml++;
		seen_no_rid += er.request_id[0] == '\0';
	} else if (strcmp(shape, "html") == 0) {
		snprintf(msg, sizeof(msg), "HTTP %ld with an HTML page "
		    "(\"%s\")", status, fx_str(w, "title"));
		want_str(file, "message", er.message, msg);
		seen_html++;
	} else {
		assert_string_equal(shape, "empty");
		assert_int_equal(len, 0);
		snprintf(msg, sizeof(msg), "HTTP %ld with an empty body",
		    status);
		want_str(file, "message", er.message, msg);
		seen_empty++;
	}
	/* and none of them is a page of instances */
	assert_int_equal(ec2_parse_instances(body, len, &v, &n, NULL, err,
	    sizeof(err)), -1);
}

/* One error fixture: its code, class and a part of its message. */
static void
tree_error(const char *file, long status, const char *code,
    enum ec2_err_class cls, const char *in_message)
{
	struct ec2_error	 er;
	cJSON			*index;
	char			*body;
	size_t			 len;

	assert_non_null(index = fixture_index());
	assert_non_null(fixture_entry(index, file));
	assert_int_equal(fx_int(fixture_entry(index, file), "status"), status);
	cJSON_Delete(index);
	assert_non_null(body = fixture_read(file, &len));
	ec2_parse_error(status, body, len, &er);
	if (strcmp(er.code, code) != 0 || er.cls != cls ||
	    strstr(er.message, in_message) == NULL)
		fail_msg("%s: %s (%s) \"%s\", want %s (%s) with \"%s\"", file,
		    er.code, ec2_err_class_name(er.cls), er.message, code,
		    ec2_err_class_name(cls), in_message);
	free(body);
}

static void
tree_error_samples(void)
{
	cJSON	*index;

	seen_xml = seen_no_rid = seen_html = seen_empty = 0;
	assert_non_null(index = fixture_index());
	assert_int_equal(each_entry(index, "error", NULL, check_error_entry),
	    13);
	cJSON_Delete(index);
	/* the four shapes: with a RequestID, without, HTML, nothing */
	assert_true(seen_xml - seen_no_rid >= 1);
	assert_true(seen_no_rid >= 1);
	assert_true(seen_html >= 1);
	assert_true(seen_empty >= 1);

	tree_error("error_DryRunOperation_412.xml", 412, "DryRunOperation",
	    EC2_OK, "Request would have succeeded");
	tree_error("error_InvalidInstanceID.NotFound.xml", 400,
	    "InvalidInstanceID.NotFound", EC2_ERR_NOT_FOUND,
	    "'i-0123456789abcdef0' does not exist");
	tree_error("error_InvalidInstanceID.NotFound_2ids.xml", 400,
	    "InvalidInstanceID.NotFound", EC2_ERR_NOT_FOUND,
	    "'i-0123456789abcdef0, i-0fedcba9876543210' do not exist");
	tree_error("error_InvalidSubnetID.NotFound.xml", 400,
	    "InvalidSubnetID.NotFound", EC2_ERR_NOT_FOUND,
	    "subnet-doesnotexist");
	tree_error("error_NoSuchEntity_instance_profile_404.xml", 404,
	    "NoSuchEntity", EC2_ERR_NOT_FOUND,
	    "Instance profile nope not found");
	tree_error("error_500_html_bogus_NextToken.xml", 500, "",
	    EC2_ERR_TRANSIENT, "HTTP 500 with an HTML page "
	    "(\"500 Internal Server Error\")");
	tree_error("error_500_empty.xml", 500, "", EC2_ERR_TRANSIENT,
	    "HTTP 500 with an empty body");
	tree_error("error_InsufficientInstanceCapacity_500.xml", 500,
	    "InsufficientInstanceCapacity", EC2_ERR_CAPACITY,
	    "do not have sufficient g4dn.xlarge capacity");
	tree_error("error_RequestLimitExceeded_503.xml", 503,
	    "RequestLimitExceeded", EC2_ERR_THROTTLE,
	    "Request limit exceeded.");
}

static void
tree_error_xml_samples(void)
{
	static const char *const files[] = {
	    "error_AuthFailure_wrong_secret_401.xml",
	    "error_AccessDenied_nopolicy_403.xml" };
	struct ec2_error	 er;
	size_t			 i, len;
	char			*body;

	tree_error(files[0], 401, "AuthFailure", EC2_ERR_AUTH,
	    "not able to validate");
	tree_error(files[1], 403, "AccessDenied", EC2_ERR_AUTH,
	    "not authorized to perform: ec2:DescribeInstances");
	/* ErrorResponse has no RequestID: none is made up */
	for (i = 0; i < QS_ARRAYLEN(files); i++) {
		assert_non_null(body = fixture_read(files[i], &len));
		assert_non_null(strstr(body, "<ErrorResponse>"));
		assert_int_equal(ec2_parse_error(401, body, len, &er), 0);
		assert_string_equal(er.request_id, "");
		free(body);
	}
	tree_error("error_InvalidInstanceID.NotFound.xml", 400,
	    "InvalidInstanceID.NotFound", EC2_ERR_NOT_FOUND, "does not exist");
}

static void
tree_error_bad_ami_and_type(void)
{
	tree_error("error_InvalidAMIID.NotFound.xml", 400,
	    "InvalidAMIID.NotFound", EC2_ERR_NOT_FOUND,
	    "ami-00000000deadbeef0");
	tree_error("error_InvalidInstanceType.NotFound.xml", 400,
	    "InvalidInstanceType.NotFound", EC2_ERR_NOT_FOUND, "zz9.mega");
}

/* Files of the fixture directory that are not responses. */
static const char *const tree_others[] = {
	"index.json", "sigv4_vectors.json", "record.py",
};

static int
is_file(const char *dir, const char *name)
{
	struct stat	 st;
	char		 path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Every file is indexed or known, every entry read by some test. */
static void
tree_every_sample_covered(void)
{
	static const char *const kinds[] = { "instances", "terminate",
	    "console", "other", "error" };
	const cJSON	*e;
	const char	*dir = fixture_dir(), *kind, *f, *r;
	struct dirent	*de;
	cJSON		*index;
	size_t		 i, files = 0, entries = 0, requests = 0;
	char		*body;
	DIR		*d;

	assert_non_null(dir);
	assert_non_null(index = fixture_index());
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(index,
	    "responses")) {
		assert_non_null(f = fx_str(e, "file"));
		assert_non_null(kind = fx_str(e, "kind"));
		assert_non_null(fx_str(e, "action"));
		for (i = 0; i < QS_ARRAYLEN(kinds); i++)
			if (strcmp(kind, kinds[i]) == 0)
				break;
		if (i == QS_ARRAYLEN(kinds))
			fail_msg("%s: kind %s is read by no test", f, kind);
		if (strcmp(kind, "instances") == 0 &&
		    strcmp(fx_str(e, "action"), "RunInstances") != 0 &&
		    strcmp(fx_str(e, "action"), "DescribeInstances") != 0)
			fail_msg("%s: instances of %s are read by no test", f,
			    fx_str(e, "action"));
		/* the fuzzer's corpus takes the responses by .xml */
		assert_true(strlen(f) > 4 && strcmp(f + strlen(f) - 4,
		    ".xml") == 0);
		assert_true(fx_int(e, "status") >= 200);
		assert_non_null(body = fixture_read(f, NULL));
		free(body);
		if ((r = fx_str(e, "request")) != NULL) {
			assert_non_null(body = fixture_read(r, NULL));
			free(body);
			requests++;
		}
		entries++;
	}
	assert_int_equal(entries, 23);
	assert_non_null(d = opendir(dir));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || !is_file(dir, de->d_name))
			continue;
		files++;
		for (i = 0; i < QS_ARRAYLEN(tree_others); i++)
			if (strcmp(tree_others[i], de->d_name) == 0)
				break;
		if (i < QS_ARRAYLEN(tree_others))
			continue;
		cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(index,
		    "responses"))
			if (strcmp(fx_str(e, "file"), de->d_name) == 0 ||
			    ((r = fx_str(e, "request")) != NULL &&
			    strcmp(r, de->d_name) == 0))
				break;
		if (e == NULL)
			fail_msg("fixture %s is in no entry of index.json",
			    de->d_name);
	}
	closedir(d);
	assert_int_equal(files, entries + requests + QS_ARRAYLEN(tree_others));
	cJSON_Delete(index);
}

/* --- the reference samples, when they are there -------------------- */

/* Every file of the reference samples, and the test that reads it. */
static const char *const covered[] = {
	"CreateTags.http", "CreateTags.request_body.txt",
	"DescribeInstanceAttribute_userData.http",
	"DescribeInstances_tagfilter_MaxResults1_nextToken.http",
	"DescribeInstances_tagfilter_MaxResults1_nextToken.request_body.txt",
	"DescribeInstances_tagfilter_MaxResults1_nextToken.response.pretty.xml",
	"DescribeInstances_tagfilter_MaxResults1_nextToken.response.xml",
	"DescribeSpotInstanceRequests.http",
	"DescribeSpotInstanceRequests.request_body.txt",
	"GetConsoleOutput.http",
	"RequestSpotInstances.http", "RequestSpotInstances.request_body.txt",
	"RunInstances_full.http", "RunInstances_full.request_body.txt",
	"RunInstances_full.response.pretty.xml",
	"RunInstances_full.response.xml",
	"TerminateInstances_2ids.http",
	"TerminateInstances_2ids.request_body.txt",
	"TerminateInstances_2ids.response.pretty.xml",
	"TerminateInstances_2ids.response.xml",
	"error_500_html_bogus_NextToken.http",
	"error_AccessDenied_nopolicy.xml",
	"error_AuthFailure_wrong_secret.xml",
	"error_DryRunOperation_412.http",
	"error_InvalidInstanceID.NotFound.http",
	"error_InvalidInstanceID.NotFound.request_body.txt",
	"error_InvalidInstanceID.NotFound.response.xml",
	"error_InvalidSubnetID.NotFound.http",
	"error_NoSuchEntity_instance_profile_404.http",
	"error_bad_ami_and_type.txt",
	"sigv4_vectors.json",
};

static void
ref_every_sample_covered(void)
{
	const char	*dir = samples_dir();
	struct dirent	*de;
	DIR		*d;
	size_t		 i, seen = 0;

	assert_non_null(dir);
	assert_non_null(d = opendir(dir));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		for (i = 0; i < QS_ARRAYLEN(covered); i++)
			if (strcmp(covered[i], de->d_name) == 0)
				break;
		if (i == QS_ARRAYLEN(covered))
			fail_msg("sample %s is read by no test", de->d_name);
		seen++;
	}
	closedir(d);
	assert_int_equal(seen, QS_ARRAYLEN(covered));
}

static void
ref_check_run_instance(const struct ec2_instance *in)
{
	int64_t	 t;

	assert_string_equal(in->id, "i-986542f2ebcd3b308");
	assert_string_equal(in->state, "pending");
	assert_int_equal(in->state_code, 0);
	assert_string_equal(in->type, "t3.micro");
	assert_string_equal(in->az, "us-east-1a");
	assert_string_equal(in->subnet, "subnet-6bcc8b359c436f3fc");
	assert_string_equal(in->image, "ami-1e749f67");
	assert_string_equal(in->private_ip, "172.31.0.8");
	assert_string_equal(in->client_token, "asgd-0001");
	assert_string_equal(in->state_reason, "");
	assert_true(in->spot);
	assert_int_equal(parse_iso8601("2026-11-22T08:55:18Z", &t), 0);
	assert_int_equal(in->launch_ms, t);
	assert_int_equal(in->ntags, 2);
	assert_string_equal(ec2_instance_tag(in, "asg"), "pool-a");
	assert_string_equal(ec2_instance_tag(in, "Name"), "worker");
	assert_null(ec2_instance_tag(in, "nope"));
}

static void
ref_run_instances_response(void)
{
	static const char *const files[] = { "RunInstances_full.response.xml",
	    "RunInstances_full.response.pretty.xml" };
	struct ec2_instance	*v;
	size_t			 n, i, len;
	char			*body, *next, err[256], *whole;
	const char		*b;
	long			 status;

	for (i = 0; i < QS_ARRAYLEN(files); i++) {
		assert_non_null(body = sample_read(files[i], &len));
		assert_int_equal(ec2_parse_instances(body, len, &v, &n, &next,
		    err, sizeof(err)), 0);
		assert_int_equal(n, 1);
		assert_null(next);
		ref_check_run_instance(&v[0]);
		ec2_instances_free(v, n);
		free(body);
	}
	b = sample_http_response("RunInstances_full.http", &status, &whole);
	assert_non_null(b);
	assert_int_equal(status, 200);
	assert_int_equal(ec2_parse_instances(b, strlen(b), &v, &n, NULL, err,
	    sizeof(err)), 0);
	ref_check_run_instance(&v[0]);
	ec2_instances_free(v, n);
	/* a success is no error */
	assert_int_equal(ec2_parse_error(status, b, strlen(b),
	    &(struct ec2_error){ 0 }), -1);
	free(whole);
}

static void
ref_describe_instances_page(void)
{
	static const char *const files[] = {
	    "DescribeInstances_tagfilter_MaxResults1_nextToken.response.xml",
	    "DescribeInstances_tagfilter_MaxResults1_nextToken."
	    "response.pretty.xml" };
	struct ec2_instance	*v;
	size_t			 n, i, len;
	char			*body, *next, err[256];

	for (i = 0; i < QS_ARRAYLEN(files); i++) {
		assert_non_null(body = sample_read(files[i], &len));
		assert_int_equal(ec2_parse_instances(body, len, &v, &n, &next,
		    err, sizeof(err)), 0);
		assert_int_equal(n, 2);
		assert_non_null(next);
		assert_string_equal(next, "r-f76601ec8d8188cd3");
		assert_string_equal(v[0].id, "i-a69d25c4c9bf34d11");
		assert_string_equal(v[1].id, "i-9a113fa1fa22f83ca");
		assert_string_equal(v[0].state, "running");
		assert_int_equal(v[1].state_code, 16);
		/* the instance's own subnet and ip, not the interface's */
		assert_string_equal(v[1].private_ip, "172.31.0.5");
		assert_string_equal(v[1].subnet, "subnet-6bcc8b359c436f3fc");
		assert_string_equal(v[0].client_token,
		    "6c37c638-5b64-4b62-a320-7b858a7d0d98");
		assert_true(v[0].spot && v[1].spot);
		assert_string_equal(ec2_instance_tag(&v[1], "asg"), "pool-a");
		ec2_instances_free(v, n);
		free(next);
		free(body);
	}
}

static void
ref_terminate_response(void)
{
	static const char *const files[] = {
	    "TerminateInstances_2ids.response.xml",
	    "TerminateInstances_2ids.response.pretty.xml" };
	struct ec2_term_result	*v;
	size_t			 n, i, len;
	char			*body, err[256], *whole;
	const char		*b;
	long			 status;

	for (i = 0; i < QS_ARRAYLEN(files); i++) {
		assert_non_null(body = sample_read(files[i], &len));
		assert_int_equal(ec2_parse_terminate(body, len, &v, &n, err,
		    sizeof(err)), 0);
		assert_int_equal(n, 2);
		assert_string_equal(v[0].id, "i-986542f2ebcd3b308");
		assert_string_equal(v[1].id, "i-dc84125057a6be812");
		assert_string_equal(v[1].previous_state, "running");
		assert_string_equal(v[1].current_state, "shutting-down");
		assert_false(v[0].not_found);
		free(v);
		free(body);
	}
	b = sample_http_response("TerminateInstances_2ids.http", &status,
	    &whole);
	assert_non_null(b);
	assert_int_equal(ec2_parse_terminate(b, strlen(b), &v, &n, err,
	    sizeof(err)), 0);
	assert_int_equal(n, 2);
	free(v);
	free(whole);
}

static void
ref_console_output(void)
{
	char		*whole, *text, err[256];
	const char	*b;
	long		 status;

	b = sample_http_response("GetConsoleOutput.http", &status, &whole);
	assert_non_null(b);
	assert_int_equal(ec2_parse_console(b, strlen(b), &text, err,
	    sizeof(err)), 0);
	assert_true(strncmp(text, "Linux version 2.6.16-xenU", 25) == 0);
	assert_non_null(strstr(text, "Enabling fast FPU save and restore..."
	    " done.\n"));
	free(text);
	free(whole);
}

static void
ref_other_responses(void)
{
	static const char *const files[] = { "CreateTags.http",
	    "DescribeInstanceAttribute_userData.http",
	    "DescribeSpotInstanceRequests.http", "RequestSpotInstances.http" };
	struct ec2_instance	*v;
	struct ec2_error	 e;
	size_t			 n, i;
	char			*whole, err[256], rid[96];
	const char		*b;
	long			 status;

	for (i = 0; i < QS_ARRAYLEN(files); i++) {
		b = sample_http_response(files[i], &status, &whole);
		assert_non_null(b);
		assert_int_equal(status, 200);
		assert_int_equal(ec2_parse_error(status, b, strlen(b), &e), -1);
		assert_string_equal(e.code, "");
		assert_int_equal(sample_http_header(whole, "x-amzn-requestid",
		    rid, sizeof(rid)), 0);
		if (strcmp(files[i], "RequestSpotInstances.http") != 0) {
			assert_int_equal(ec2_parse_instances(b, strlen(b), &v,
			    &n, NULL, err, sizeof(err)), -1);
			assert_non_null(strstr(err, "neither"));
		} else {
			/* its instancesSet is spot requests: not instances */
			if (ec2_parse_instances(b, strlen(b), &v, &n, NULL,
			    err, sizeof(err)) == 0)
				ec2_instances_free(v, n);
		}
		free(whole);
	}
}

struct err_case {
	const char		*file;
	const char		*code;
	enum ec2_err_class	 cls;
	const char		*in_message;
};

static void
check_error_http(const struct err_case *c)
{
	struct ec2_error	 e;
	char			*whole;
	const char		*b;
	long			 status;

	b = sample_http_response(c->file, &status, &whole);
	assert_non_null(b);
	assert_int_equal(ec2_parse_error(status, b, strlen(b), &e),
	    *c->code != '\0' ? 0 : -1);
	assert_int_equal(e.http_status, status);
	assert_string_equal(e.code, c->code);
	if (e.cls != c->cls)
		fail_msg("%s: class %s, want %s", c->file,
		    ec2_err_class_name(e.cls), ec2_err_class_name(c->cls));
	assert_non_null(strstr(e.message, c->in_message));
	if (*c->code != '\0')
		assert_string_equal(e.request_id, "request-id");
	free(whole);
}

static void
ref_error_samples(void)
{
	static const struct err_case cases[] = {
		{ "error_DryRunOperation_412.http", "DryRunOperation", EC2_OK,
		    "Request would have succeeded" },
		{ "error_InvalidInstanceID.NotFound.http",
		    "InvalidInstanceID.NotFound", EC2_ERR_NOT_FOUND,
		    "'i-0123456789abcdef0' does not exist" },
		{ "error_InvalidSubnetID.NotFound.http",
		    "InvalidSubnetID.NotFound", EC2_ERR_NOT_FOUND,
		    "subnet-doesnotexist" },
		{ "error_NoSuchEntity_instance_profile_404.http",
		    "NoSuchEntity", EC2_ERR_NOT_FOUND,
		    "Instance profile nope not found" },
		{ "error_500_html_bogus_NextToken.http", "",
		    EC2_ERR_TRANSIENT,
		    "HTTP 500 with an HTML page "
		    "(\"500 Internal Server Error\")" },
	};
	size_t	 i;

	for (i = 0; i < QS_ARRAYLEN(cases); i++)
		check_error_http(&cases[i]);
}

static void
ref_error_xml_samples(void)
{
	static const struct {
		const char		*file;
		long			 status;
		const char		*code;
		enum ec2_err_class	 cls;
		const char		*in_message;
	} cases[] = {
		{ "error_AuthFailure_wrong_secret.xml", 401, "AuthFailure",
		    EC2_ERR_AUTH, "not able to validate" },
		{ "error_AccessDenied_nopolicy.xml", 403, "AccessDenied",
		    EC2_ERR_AUTH, "not authorized to perform: "
		    "ec2:DescribeInstances" },
		{ "error_InvalidInstanceID.NotFound.response.xml", 400,
		    "InvalidInstanceID.NotFound", EC2_ERR_NOT_FOUND,
		    "does not exist" },
	};
	struct ec2_error	 e;
	size_t			 i, len;
	char			*body;

	for (i = 0; i < QS_ARRAYLEN(cases); i++) {
		assert_non_null(body = sample_read(cases[i].file, &len));
		assert_int_equal(ec2_parse_error(cases[i].status, body, len,
		    &e), 0);
		assert_string_equal(e.code, cases[i].code);
		assert_int_equal(e.cls, cases[i].cls);
		assert_non_null(strstr(e.message, cases[i].in_message));
		free(body);
	}
	/* ErrorResponse has no RequestID: none is made up */
	body = sample_read("error_AuthFailure_wrong_secret.xml", &len);
	ec2_parse_error(401, body, len, &e);
	assert_string_equal(e.request_id, "");
	free(body);
}

/* error_bad_ami_and_type.txt: two responses, each followed by its status. */
static void
ref_error_bad_ami_and_type(void)
{
	struct ec2_error	 e;
	char			*text, *p, *q, *doc;
	long			 status;
	int			 n = 0;

	assert_non_null(text = sample_read("error_bad_ami_and_type.txt", NULL));
	for (p = text; (q = strstr(p, "\nHTTP ")) != NULL; p = q) {
		doc = xstrndup(p, (size_t)(q - p));
		status = strtol(q + 6, &q, 10);
		assert_int_equal(status, 400);
		assert_int_equal(ec2_parse_error(status, doc, strlen(doc), &e),
		    0);
		assert_int_equal(e.cls, EC2_ERR_NOT_FOUND);
		if (n == 0)
			assert_string_equal(e.code, "InvalidAMIID.NotFound");
		else
			assert_string_equal(e.code,
			    "InvalidInstanceType.NotFound");
		free(doc);
		n++;
	}
	assert_int_equal(n, 2);
	free(text);
}


/* --- the tests: the tree's set always, the reference set when found - */

static void
test_every_sample_covered(void **state)
{
	int	 ref = samples_dir() != NULL;

	(void)state;
	tree_every_sample_covered();
	if (ref)
		ref_every_sample_covered();
	sets_checked("test_every_sample_covered", ref);
}

static void
test_run_instances_response(void **state)
{
	int	 ref = samples_dir() != NULL;

	(void)state;
	tree_run_instances_response();
	if (ref)
		ref_run_instances_response();
	sets_checked("test_run_instances_response", ref);
}

static void
test_describe_instances_page(void **state)
{
	int	 ref = samples_dir() != NULL;

	(void)state;
	tree_describe_instances_page();
	if (ref)
		ref_describe_instances_page();
	sets_checked("test_describe_instances_page", ref);
}

static void
test_terminate_response(void **state)
{
	int	 ref = samples_dir() != NULL;

	(void)state;
	tree_terminate_response();
	if (ref)
		ref_terminate_response();
	sets_checked("test_terminate_response", ref);
}

static void
test_console_output(void **state)
{
	const char	*b;
	char		*text, err[256];
	int		 ref = samples_dir() != NULL;

	(void)state;
	tree_console_output();
	if (ref)
		ref_console_output();
	sets_checked("test_console_output", ref);

	/* no output yet, and output that is not base64 */
	b = "<GetConsoleOutputResponse><instanceId>i-1</instanceId>"
	    "</GetConsoleOutputResponse>";
	assert_int_equal(ec2_parse_console(b, strlen(b), &text, err,
	    sizeof(err)), 0);
	assert_string_equal(text, "");
	free(text);
	b = "<GetConsoleOutputResponse><output>@@not base64@@</output>"
	    "</GetConsoleOutputResponse>";
	assert_int_equal(ec2_parse_console(b, strlen(b), &text, err,
	    sizeof(err)), -1);
	assert_null(text);
}

static void
test_other_responses(void **state)
{
	int	 ref = samples_dir() != NULL;

	(void)state;
	tree_other_responses();
	if (ref)
		ref_other_responses();
	sets_checked("test_other_responses", ref);
}

static void
test_error_samples(void **state)
{
	int	 ref = samples_dir() != NULL;

	(void)state;
	tree_error_samples();
	if (ref)
		ref_error_samples();
	sets_checked("test_error_samples", ref);
}

static void
test_error_xml_samples(void **state)
{
	int	 ref = samples_dir() != NULL;

	(void)state;
	tree_error_xml_samples();
	if (ref)
		ref_error_xml_samples();
	sets_checked("test_error_xml_samples", ref);
}

static void
test_error_bad_ami_and_type(void **state)
{
	int	 ref = samples_dir() != NULL;

	(void)state;
	tree_error_bad_ami_and_type();
	if (ref)
		ref_error_bad_ami_and_type();
	sets_checked("test_error_bad_ami_and_type", ref);
}

static void
test_error_shapes(void **state)
{
	struct ec2_error	 e;
	const char		*b;

	(void)state;
	/* empty bodies */
	assert_int_equal(ec2_parse_error(503, "", 0, &e), -1);
	assert_int_equal(e.cls, EC2_ERR_TRANSIENT);
	assert_string_equal(e.message, "HTTP 503 with an empty body");
	assert_int_equal(ec2_parse_error(400, "  \n", 3, &e), -1);
	assert_int_equal(e.cls, EC2_ERR_UNKNOWN);
	assert_int_equal(ec2_parse_error(429, NULL, 0, &e), -1);
	assert_int_equal(e.cls, EC2_ERR_THROTTLE);
	/* throttling as EC2 sends it: 503 with a code */
	b = "<Response><Errors><Error><Code>RequestLimitExceeded</Code>"
	    "<Message>Request limit exceeded.</Message></Error></Errors>"
	    "<RequestID>abc-123</RequestID></Response>";
	assert_int_equal(ec2_parse_error(503, b, strlen(b), &e), 0);
	assert_int_equal(e.cls, EC2_ERR_THROTTLE);
	assert_string_equal(e.request_id, "abc-123");
	/* a known code wins over the status */
	b = "<Response><Errors><Error><Code>InsufficientInstanceCapacity"
	    "</Code><Message>We currently do not have sufficient capacity"
	    "</Message></Error></Errors></Response>";
	assert_int_equal(ec2_parse_error(500, b, strlen(b), &e), 0);
	assert_int_equal(e.cls, EC2_ERR_CAPACITY);
	/* a body that is not XML, truncated XML, XML of another kind */
	assert_int_equal(ec2_parse_error(502, "Bad Gateway", 11, &e), -1);
	assert_int_equal(e.cls, EC2_ERR_TRANSIENT);
	assert_non_null(strstr(e.message, "not an EC2 error"));
	b = "<Response><Errors><Error><Code>Auth";
	assert_int_equal(ec2_parse_error(400, b, strlen(b), &e), -1);
	b = "<Error><Code>SlowDown</Code><Message>x</Message></Error>";
	assert_int_equal(ec2_parse_error(503, b, strlen(b), &e), 0);
	assert_int_equal(e.cls, EC2_ERR_THROTTLE);
	/* control characters never reach a log line */
	b = "<Response><Errors><Error><Code>X</Code><Message>a\nb\tc"
	    "</Message></Error></Errors></Response>";
	ec2_parse_error(400, b, strlen(b), &e);
	assert_string_equal(e.message, "a b c");
}

static void
test_hostile_xml(void **state)
{
	static const char *const bad[] = {
		"",
		"<",
		"<DescribeInstancesResponse>",
		"<DescribeInstancesResponse><reservationSet><item>"
		    "<instancesSet><item><instanceState/></item></instancesSet>"
		    "</item></reservationSet></DescribeInstancesResponse>",
		"<DescribeInstancesResponse><reservationSet><item>"
		    "<instancesSet><item><instanceId>i-1</instanceId>"
		    "<launchTime>yesterday</launchTime></item></instancesSet>"
		    "</item></reservationSet></DescribeInstancesResponse>",
		"<DescribeInstancesResponse><reservationSet><item>"
		    "<instancesSet><item><instanceId>i-00000000000000000000000"
		    "0000000000000</instanceId></item></instancesSet></item>"
		    "</reservationSet></DescribeInstancesResponse>",
		"<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\">"
		    "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">"
		    "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">]>"
		    "<r>&c;&c;&c;</r>",
		"<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM "
		    "\"file:///etc/passwd\">]><r>&x;</r>",
		"<Response><Errors><Error><Code>AuthFailure</Code></Error>"
		    "</Errors></Response>",
	};
	struct ec2_instance	*v;
	struct ec2_term_result	*t;
	size_t			 i, n;
	char			 err[256], *next, *text;

	(void)state;
	for (i = 0; i < QS_ARRAYLEN(bad); i++) {
		err[0] = '\0';
		assert_int_equal(ec2_parse_instances(bad[i], strlen(bad[i]),
		    &v, &n, &next, err, sizeof(err)), -1);
		assert_null(v);
		assert_null(next);
		assert_true(err[0] != '\0');
		assert_int_equal(ec2_parse_terminate(bad[i], strlen(bad[i]),
		    &t, &n, err, sizeof(err)), -1);
		/* a document without output is no output, or no document */
		if (ec2_parse_console(bad[i], strlen(bad[i]), &text, err,
		    sizeof(err)) == 0) {
			assert_string_equal(text, "");
			free(text);
		} else
			assert_null(text);
	}
	/* an empty page is a page */
	text = "<DescribeInstancesResponse><reservationSet/><nextToken>"
	    "</nextToken></DescribeInstancesResponse>";
	assert_int_equal(ec2_parse_instances(text, strlen(text), &v, &n,
	    &next, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	assert_null(next);
	free(v);
}

static void
test_classify_table(void **state)
{
	static const struct {
		const char		*code;
		int			 status;
		enum ec2_err_class	 cls;
	} t[] = {
		{ "InsufficientInstanceCapacity", 500, EC2_ERR_CAPACITY },
		{ "Server.InsufficientInstanceCapacity", 0, EC2_ERR_CAPACITY },
		{ "InsufficientCapacity", 400, EC2_ERR_CAPACITY },
		{ "Unsupported", 400, EC2_ERR_CAPACITY },
		{ "SpotMaxPriceTooLow", 400, EC2_ERR_SPOT_CAPACITY },
		{ "MaxSpotInstanceCountExceeded", 400, EC2_ERR_SPOT_CAPACITY },
		{ "InstanceLimitExceeded", 400, EC2_ERR_QUOTA },
		{ "VcpuLimitExceeded", 400, EC2_ERR_QUOTA },
		{ "RequestLimitExceeded", 503, EC2_ERR_THROTTLE },
		{ "Throttling", 400, EC2_ERR_THROTTLE },
		{ "ThrottlingException", 400, EC2_ERR_THROTTLE },
		{ "EC2ThrottledException", 503, EC2_ERR_THROTTLE },
		{ "", 429, EC2_ERR_THROTTLE },
		{ "", 500, EC2_ERR_TRANSIENT },
		{ "", 503, EC2_ERR_TRANSIENT },
		{ "", 0, EC2_ERR_TRANSIENT },
		{ NULL, 502, EC2_ERR_TRANSIENT },
		{ "RequestTimeout", 400, EC2_ERR_TRANSIENT },
		{ "InternalError", 500, EC2_ERR_TRANSIENT },
		{ "SomethingNew", 500, EC2_ERR_TRANSIENT },
		{ "AuthFailure", 401, EC2_ERR_AUTH },
		{ "UnauthorizedOperation", 403, EC2_ERR_AUTH },
		{ "AccessDenied", 403, EC2_ERR_AUTH },
		{ "InvalidClientTokenId", 403, EC2_ERR_AUTH },
		{ "SignatureDoesNotMatch", 403, EC2_ERR_AUTH },
		{ "", 403, EC2_ERR_AUTH },
		{ "InvalidParameterValue", 400, EC2_ERR_INVALID },
		{ "InvalidParameterCombination", 400, EC2_ERR_INVALID },
		{ "InvalidAMIID.Malformed", 400, EC2_ERR_INVALID },
		{ "InvalidUserData.Malformed", 400, EC2_ERR_INVALID },
		{ "InvalidGroupId.Malformed", 400, EC2_ERR_INVALID },
		{ "InvalidSubnetID.NotFound", 400, EC2_ERR_NOT_FOUND },
		{ "InvalidAMIID.NotFound", 400, EC2_ERR_NOT_FOUND },
		{ "InvalidKeyPair.NotFound", 400, EC2_ERR_NOT_FOUND },
		{ "NoSuchEntity", 404, EC2_ERR_NOT_FOUND },
		{ "DryRunOperation", 412, EC2_OK },
		{ "SomethingNew", 400, EC2_ERR_UNKNOWN },
	};
	size_t	 i;

	(void)state;
	for (i = 0; i < QS_ARRAYLEN(t); i++)
		if (ec2_classify(t[i].code, t[i].status) != t[i].cls)
			fail_msg("%s/%d: %s, want %s", t[i].code, t[i].status,
			    ec2_err_class_name(ec2_classify(t[i].code,
			    t[i].status)), ec2_err_class_name(t[i].cls));
	assert_true(ec2_code_spot_sensitive("InsufficientInstanceCapacity"));
	assert_false(ec2_code_spot_sensitive(
	    "InsufficientFreeAddressesInSubnet"));
	assert_false(ec2_code_spot_sensitive(NULL));
	assert_string_equal(ec2_err_class_name(EC2_ERR_SPOT_CAPACITY),
	    "spot capacity");
	assert_string_equal(ec2_err_class_name(EC2_ERR_NOT_FOUND),
	    "not found");
	assert_string_equal(ec2_err_class_name((enum ec2_err_class)99),
	    "unknown");
}

static void
test_retry_delay(void **state)
{
	uint32_t	 rnd = 12345;
	int64_t		 d, cap;
	int		 retry, i, hit_top;

	(void)state;
	for (retry = 0; retry < 40; retry++) {
		cap = retry < 20 ? 200LL << retry : 20000;
		if (cap > 20000)
			cap = 20000;
		hit_top = 0;
		for (i = 0; i < 2000; i++) {
			rnd = rnd * 1103515245u + 12345u;
			d = ec2_retry_delay_ms(retry, 200, 20000, rnd);
			assert_true(d >= 0 && d <= cap);
			hit_top |= d > cap / 2;
		}
		/* full jitter spreads over the whole range */
		assert_true(hit_top);
	}
	assert_int_equal(ec2_retry_delay_ms(0, 200, 20000, 200), 200);
	assert_int_equal(ec2_retry_delay_ms(3, 200, 20000, 1600), 1600);
	assert_int_equal(ec2_retry_delay_ms(3, 200, 20000, 1601), 0);
	assert_int_equal(ec2_retry_delay_ms(60, 200, 20000, 20000), 20000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_sample_covered),
		cmocka_unit_test(test_run_instances_response),
		cmocka_unit_test(test_describe_instances_page),
		cmocka_unit_test(test_terminate_response),
		cmocka_unit_test(test_console_output),
		cmocka_unit_test(test_other_responses),
		cmocka_unit_test(test_error_samples),
		cmocka_unit_test(test_error_xml_samples),
		cmocka_unit_test(test_error_bad_ami_and_type),
		cmocka_unit_test(test_error_shapes),
		cmocka_unit_test(test_hostile_xml),
		cmocka_unit_test(test_classify_table),
		cmocka_unit_test(test_retry_delay),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
