/*
 * test_ec2_xml.c: every recorded response and error of the samples
 * directory (read at test time) through the parsers, the four error
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

/* Every file of the samples directory, and the test that reads it. */
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
test_every_sample_covered(void **state)
{
	const char	*dir = samples_dir();
	struct dirent	*de;
	DIR		*d;
	size_t		 i, seen = 0;

	(void)state;
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
check_run_instance(const struct ec2_instance *in)
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
test_run_instances_response(void **state)
{
	static const char *const files[] = { "RunInstances_full.response.xml",
	    "RunInstances_full.response.pretty.xml" };
	struct ec2_instance	*v;
	size_t			 n, i, len;
	char			*body, *next, err[256], *whole;
	const char		*b;
	long			 status;

	(void)state;
	for (i = 0; i < QS_ARRAYLEN(files); i++) {
		assert_non_null(body = sample_read(files[i], &len));
		assert_int_equal(ec2_parse_instances(body, len, &v, &n, &next,
		    err, sizeof(err)), 0);
		assert_int_equal(n, 1);
		assert_null(next);
		check_run_instance(&v[0]);
		ec2_instances_free(v, n);
		free(body);
	}
	b = sample_http_response("RunInstances_full.http", &status, &whole);
	assert_non_null(b);
	assert_int_equal(status, 200);
	assert_int_equal(ec2_parse_instances(b, strlen(b), &v, &n, NULL, err,
	    sizeof(err)), 0);
	check_run_instance(&v[0]);
	ec2_instances_free(v, n);
	/* a success is no error */
	assert_int_equal(ec2_parse_error(status, b, strlen(b),
	    &(struct ec2_error){ 0 }), -1);
	free(whole);
}

static void
test_describe_instances_page(void **state)
{
	static const char *const files[] = {
	    "DescribeInstances_tagfilter_MaxResults1_nextToken.response.xml",
	    "DescribeInstances_tagfilter_MaxResults1_nextToken."
	    "response.pretty.xml" };
	struct ec2_instance	*v;
	size_t			 n, i, len;
	char			*body, *next, err[256];

	(void)state;
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
test_terminate_response(void **state)
{
	static const char *const files[] = {
	    "TerminateInstances_2ids.response.xml",
	    "TerminateInstances_2ids.response.pretty.xml" };
	struct ec2_term_result	*v;
	size_t			 n, i, len;
	char			*body, err[256], *whole;
	const char		*b;
	long			 status;

	(void)state;
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
test_console_output(void **state)
{
	char		*whole, *text, err[256];
	const char	*b;
	long		 status;

	(void)state;
	b = sample_http_response("GetConsoleOutput.http", &status, &whole);
	assert_non_null(b);
	assert_int_equal(ec2_parse_console(b, strlen(b), &text, err,
	    sizeof(err)), 0);
	assert_true(strncmp(text, "Linux version 2.6.16-xenU", 25) == 0);
	assert_non_null(strstr(text, "Enabling fast FPU save and restore..."
	    " done.\n"));
	free(text);
	free(whole);

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

/* Responses of calls qscale does not make parse as "not instances". */
static void
test_other_responses(void **state)
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

	(void)state;
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
test_error_samples(void **state)
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

	(void)state;
	for (i = 0; i < QS_ARRAYLEN(cases); i++)
		check_error_http(&cases[i]);
}

static void
test_error_xml_samples(void **state)
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

	(void)state;
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
test_error_bad_ami_and_type(void **state)
{
	struct ec2_error	 e;
	char			*text, *p, *q, *doc;
	long			 status;
	int			 n = 0;

	(void)state;
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
