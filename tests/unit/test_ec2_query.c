/*
 * test_ec2_query.c: the Query parameters of RunInstances (every field,
 * spot, the custom launch spec merge, user data that needs escaping),
 * the body encoding against the recorded request bodies, base64.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "common.h"
#include "ec2.h"
#include "samples.h"

static const char *const groups[] = { "sg-0123", "sg-0456" };
static const struct ec2_tag tags[] = {
	{ "Name", "qtest:gpu" },
	{ "qscale:autoscaler", "prod" },
	{ "qscale:resource", "gpu" },
	{ "team", "a b&c=d" },
};

static void
full_launch(struct ec2_launch *l)
{
	memset(l, 0, sizeof(*l));
	l->image_id = "ami-0123456789abcdef0";
	l->instance_type = "g4dn.xlarge";
	l->min_count = 1;
	l->max_count = 3;
	l->subnet_id = "subnet-0aaa";
	l->availability_zone = "us-east-1b";
	l->security_groups = groups;
	l->nsecurity_groups = 2;
	l->key_name = "ops key";
	l->user_data = "#!/bin/bash\necho hi\n";
	l->iam_profile_arn = "arn:aws:iam::123456789012:instance-profile/w";
	l->iam_profile_name = "w";
	l->ebs_device = "/dev/sda1";
	l->ebs_size_gb = 100;
	l->ebs_type = "gp3";
	l->tags = tags;
	l->ntags = QS_ARRAYLEN(tags);
	l->spot = 1;
	l->client_token = "qscale-tok-1";
	l->dry_run = 1;
}

static void
want(const struct ec2_params *p, const char *key, const char *value)
{
	const char	*v = ec2_params_get(p, key);

	if (v == NULL)
		fail_msg("parameter %s missing", key);
	if (strcmp(v, value) != 0)
		fail_msg("%s=%s, want %s", key, v, value);
}

static void
absent(const struct ec2_params *p, const char *key)
{
	if (ec2_params_get(p, key) != NULL)
		fail_msg("parameter %s should not be there (%s)", key,
		    ec2_params_get(p, key));
}

static void
test_run_instances_every_field(void **state)
{
	struct ec2_launch	 l;
	struct ec2_params	 p = { NULL, NULL, 0 };
	char			 err[256], key[64], *ud;
	size_t			 i;

	(void)state;
	full_launch(&l);
	assert_int_equal(ec2_build_run_instances(&l, &p, err, sizeof(err)), 0);
	want(&p, "ImageId", "ami-0123456789abcdef0");
	want(&p, "InstanceType", "g4dn.xlarge");
	want(&p, "MinCount", "1");
	want(&p, "MaxCount", "3");
	want(&p, "SubnetId", "subnet-0aaa");
	absent(&p, "Placement.AvailabilityZone");	/* the subnet says */
	want(&p, "SecurityGroupId.1", "sg-0123");
	want(&p, "SecurityGroupId.2", "sg-0456");
	want(&p, "KeyName", "ops key");
	ud = ec2_base64_decode(ec2_params_get(&p, "UserData"), NULL);
	assert_string_equal(ud, "#!/bin/bash\necho hi\n");
	free(ud);
	want(&p, "IamInstanceProfile.Arn",
	    "arn:aws:iam::123456789012:instance-profile/w");
	absent(&p, "IamInstanceProfile.Name");		/* the arn wins */
	want(&p, "BlockDeviceMapping.1.DeviceName", "/dev/sda1");
	want(&p, "BlockDeviceMapping.1.Ebs.VolumeSize", "100");
	want(&p, "BlockDeviceMapping.1.Ebs.VolumeType", "gp3");
	want(&p, "BlockDeviceMapping.1.Ebs.DeleteOnTermination", "true");
	want(&p, "TagSpecification.1.ResourceType", "instance");
	want(&p, "TagSpecification.2.ResourceType", "volume");
	for (i = 0; i < QS_ARRAYLEN(tags); i++) {
		snprintf(key, sizeof(key), "TagSpecification.1.Tag.%zu.Key",
		    i + 1);
		want(&p, key, tags[i].key);
		snprintf(key, sizeof(key), "TagSpecification.2.Tag.%zu.Value",
		    i + 1);
		want(&p, key, tags[i].value);
	}
	absent(&p, "TagSpecification.1.Tag.5.Key");
	want(&p, "InstanceMarketOptions.MarketType", "spot");
	want(&p, "InstanceMarketOptions.SpotOptions.SpotInstanceType",
	    "one-time");
	want(&p, "InstanceMarketOptions.SpotOptions."
	    "InstanceInterruptionBehavior", "terminate");
	want(&p, "InstanceInitiatedShutdownBehavior", "terminate");
	want(&p, "MetadataOptions.HttpTokens", "required");
	want(&p, "MetadataOptions.HttpEndpoint", "enabled");
	want(&p, "ClientToken", "qscale-tok-1");
	want(&p, "DryRun", "true");
	ec2_params_clear(&p);
}

static void
test_run_instances_variants(void **state)
{
	static const char *const mixed[] = { "sg-1", "default", "web" };
	struct ec2_launch	 l;
	struct ec2_params	 p = { NULL, NULL, 0 };
	char			 err[256];

	(void)state;
	full_launch(&l);
	l.spot = 0;
	l.dry_run = 0;
	l.subnet_id = NULL;
	l.iam_profile_arn = NULL;
	l.security_groups = mixed;
	l.nsecurity_groups = 3;
	l.ebs_size_gb = 0;
	l.ebs_type = NULL;
	l.key_name = "";
	l.ntags = 0;
	l.user_data = NULL;
	assert_int_equal(ec2_build_run_instances(&l, &p, err, sizeof(err)), 0);
	absent(&p, "InstanceMarketOptions.MarketType");
	absent(&p, "DryRun");
	absent(&p, "SubnetId");
	want(&p, "Placement.AvailabilityZone", "us-east-1b");
	want(&p, "IamInstanceProfile.Name", "w");
	want(&p, "SecurityGroupId.1", "sg-1");
	want(&p, "SecurityGroup.1", "default");
	want(&p, "SecurityGroup.2", "web");
	absent(&p, "BlockDeviceMapping.1.DeviceName");
	absent(&p, "KeyName");
	absent(&p, "UserData");
	absent(&p, "TagSpecification.1.ResourceType");
	/* the safety settings are there whatever else is */
	want(&p, "InstanceInitiatedShutdownBehavior", "terminate");
	want(&p, "MetadataOptions.HttpTokens", "required");
	ec2_params_clear(&p);

	/* a volume type without a size maps nothing (the AMI's volume) */
	full_launch(&l);
	l.ebs_size_gb = 0;
	assert_int_equal(ec2_build_run_instances(&l, &p, err, sizeof(err)), 0);
	absent(&p, "BlockDeviceMapping.1.DeviceName");
	absent(&p, "BlockDeviceMapping.1.Ebs.VolumeType");
	ec2_params_clear(&p);
	/* a size without a device: /dev/xvda */
	full_launch(&l);
	l.ebs_device = NULL;
	l.ebs_type = NULL;
	assert_int_equal(ec2_build_run_instances(&l, &p, err, sizeof(err)), 0);
	want(&p, "BlockDeviceMapping.1.DeviceName", "/dev/xvda");
	want(&p, "BlockDeviceMapping.1.Ebs.VolumeSize", "100");
	absent(&p, "BlockDeviceMapping.1.Ebs.VolumeType");
	ec2_params_clear(&p);
}

static void
test_run_instances_refused(void **state)
{
	struct ec2_launch	 l;
	struct ec2_params	 p = { NULL, NULL, 0 };
	char			 err[256], *big;

	(void)state;
	full_launch(&l);
	l.image_id = NULL;
	assert_int_equal(ec2_build_run_instances(&l, &p, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "image"));
	full_launch(&l);
	l.instance_type = "";
	assert_int_equal(ec2_build_run_instances(&l, &p, err, sizeof(err)),
	    -1);
	full_launch(&l);
	l.max_count = 0;
	assert_int_equal(ec2_build_run_instances(&l, &p, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "MaxCount 0"));
	full_launch(&l);
	big = xmalloc(20000);
	memset(big, 'x', 19999);
	big[19999] = '\0';
	l.user_data = big;
	assert_int_equal(ec2_build_run_instances(&l, &p, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "19999 bytes"));
	free(big);
	assert_int_equal(p.n, 0);
}

/* The recorded botocore request: every one of its fields, ours too. */
static void
test_run_instances_like_recorded(void **state)
{
	static const char *const sg[] = { "sg-948e3e4e5861f9559" };
	static const struct ec2_tag rtags[] = { { "asg", "pool-a" },
	    { "Name", "worker" } };
	struct ec2_launch	 l;
	struct ec2_params	 p = { NULL, NULL, 0 };
	char			*body, *pair, *save, *eq, err[256];
	int			 n = 0;

	(void)state;
	memset(&l, 0, sizeof(l));
	l.image_id = "ami-1e749f67";
	l.instance_type = "t3.micro";
	l.min_count = l.max_count = 1;
	l.subnet_id = "subnet-6bcc8b359c436f3fc";
	l.security_groups = sg;
	l.nsecurity_groups = 1;
	l.key_name = "asg-key";
	l.user_data = "#!/bin/sh\necho hello-from-userdata > /tmp/ud\n";
	l.iam_profile_name = "worker-profile";
	l.ebs_device = "/dev/xvda";
	l.ebs_size_gb = 30;
	l.ebs_type = "gp3";
	l.tags = rtags;
	l.ntags = 2;
	l.spot = 1;
	l.client_token = "asgd-0001";
	assert_int_equal(ec2_build_run_instances(&l, &p, err, sizeof(err)), 0);
	body = sample_read("RunInstances_full.request_body.txt", NULL);
	assert_non_null(body);
	body[strcspn(body, "\r\n")] = '\0';
	for (pair = strtok_r(body, "&", &save); pair != NULL;
	    pair = strtok_r(NULL, "&", &save)) {
		struct ec2_params one = { NULL, NULL, 0 };
		char *enc;

		assert_non_null(eq = strchr(pair, '='));
		*eq = '\0';
		if (strcmp(pair, "Action") == 0 ||
		    strcmp(pair, "Version") == 0 ||
		    strstr(pair, "MaxPrice") != NULL)	/* no price cap */
			continue;
		/* same value once encoded as we encode it */
		assert_non_null(ec2_params_get(&p, pair));
		ec2_params_add(&one, pair, ec2_params_get(&p, pair));
		enc = ec2_params_encode(&one);
		assert_string_equal(strchr(enc, '=') + 1, eq + 1);
		free(enc);
		ec2_params_clear(&one);
		n++;
	}
	assert_int_equal(n, 21);
	free(body);
	ec2_params_clear(&p);
}

static void
test_user_data_escaping(void **state)
{
	static const char ud[] = "#!/bin/bash\n"
	    "echo '+/=&%' \"$HOME\" \\ `date` ~\n"
	    "printf 'caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x80\\n'\n"
	    "x=\x01\x7f\n"
	    "# ?\?>>\n";		/* so that the base64 has + / and = */
	struct ec2_launch	 l;
	struct ec2_params	 p = { NULL, NULL, 0 };
	char			 err[256], *body, *b64, *dec, *s;
	size_t			 n;

	(void)state;
	full_launch(&l);
	l.user_data = ud;
	assert_int_equal(ec2_build_run_instances(&l, &p, err, sizeof(err)), 0);
	b64 = xstrdup(ec2_params_get(&p, "UserData"));
	dec = ec2_base64_decode(b64, &n);
	assert_int_equal(n, strlen(ud));
	assert_memory_equal(dec, ud, n);
	free(dec);
	/* in the body, base64's + / = are percent-encoded */
	body = ec2_params_encode(&p);
	s = strstr(body, "&UserData=");
	assert_non_null(s);
	s += 10;
	s[strcspn(s, "&")] = '\0';
	assert_null(strpbrk(s, "+/="));
	assert_true(strchr(b64, '+') != NULL && strchr(b64, '/') != NULL &&
	    strchr(b64, '=') != NULL);
	free(b64);
	free(body);
	ec2_params_clear(&p);
}

static void
merged(const char *json, struct ec2_params *p, int expect)
{
	struct ec2_launch	 l;
	cJSON			*spec = cJSON_Parse(json);
	char			 err[256] = "";

	assert_non_null(spec);
	full_launch(&l);
	l.custom_launch_spec = spec;
	if (ec2_build_run_instances(&l, p, err, sizeof(err)) != expect)
		fail_msg("%s: %s", json, err);
	if (expect == -1)
		assert_true(strncmp(err, "custom_launch_spec", 18) == 0);
	cJSON_Delete(spec);
}

static void
test_custom_launch_spec(void **state)
{
	struct ec2_params	 p = { NULL, NULL, 0 };

	(void)state;
	merged("{\"EbsOptimized\": true, \"Monitoring\": {\"Enabled\": true},"
	    "\"CpuOptions\": {\"CoreCount\": 2, \"ThreadsPerCore\": 1},"
	    "\"MetadataOptions\": {\"HttpPutResponseHopLimit\": 2},"
	    "\"InstanceType\": \"g5.xlarge\", \"KeyName\": null,"
	    "\"SecurityGroupIds\": [\"sg-9\"],"
	    "\"IamInstanceProfile\": {\"Name\": \"other\"},"
	    "\"BlockDeviceMappings\": [{\"DeviceName\": \"/dev/xvdb\","
	    "  \"Ebs\": {\"VolumeSize\": 500, \"Iops\": 3000.5}}],"
	    "\"TagSpecifications\": [{\"ResourceType\": \"network-interface\","
	    "  \"Tags\": [{\"Key\": \"k\", \"Value\": \"v\"}]}],"
	    "\"NetworkInterfaces\": [{\"DeviceIndex\": 0,"
	    "  \"Groups\": [\"sg-x\"], \"AssociatePublicIpAddress\": false}]}",
	    &p, 0);
	want(&p, "EbsOptimized", "true");
	want(&p, "Monitoring.Enabled", "true");
	want(&p, "CpuOptions.CoreCount", "2");
	want(&p, "CpuOptions.ThreadsPerCore", "1");
	/* objects merge: the generated keys stay beside the new one */
	want(&p, "MetadataOptions.HttpPutResponseHopLimit", "2");
	want(&p, "MetadataOptions.HttpTokens", "required");
	want(&p, "InstanceType", "g5.xlarge");
	absent(&p, "KeyName");
	/* lists replace whole */
	want(&p, "SecurityGroupId.1", "sg-9");
	absent(&p, "SecurityGroupId.2");
	want(&p, "BlockDeviceMapping.1.DeviceName", "/dev/xvdb");
	want(&p, "BlockDeviceMapping.1.Ebs.VolumeSize", "500");
	want(&p, "BlockDeviceMapping.1.Ebs.Iops", "3000.5");
	absent(&p, "BlockDeviceMapping.1.Ebs.VolumeType");
	absent(&p, "BlockDeviceMapping.1.Ebs.DeleteOnTermination");
	/* the profile's alternatives: the spec's replaces qscale's */
	want(&p, "IamInstanceProfile.Name", "other");
	absent(&p, "IamInstanceProfile.Arn");
	/* tag specifications come after qscale's, which stay */
	want(&p, "TagSpecification.1.ResourceType", "instance");
	want(&p, "TagSpecification.1.Tag.2.Key", "qscale:autoscaler");
	want(&p, "TagSpecification.3.ResourceType", "network-interface");
	want(&p, "TagSpecification.3.Tag.1.Key", "k");
	want(&p, "NetworkInterface.1.DeviceIndex", "0");
	want(&p, "NetworkInterface.1.SecurityGroupId.1", "sg-x");
	want(&p, "NetworkInterface.1.AssociatePublicIpAddress", "false");
	want(&p, "ClientToken", "qscale-tok-1");
	ec2_params_clear(&p);

	/* wire names work as well as the SDK's */
	merged("{\"SecurityGroupId\": [\"sg-a\", \"sg-b\", \"sg-c\"],"
	    "\"Placement\": {\"Tenancy\": \"dedicated\"}}", &p, 0);
	want(&p, "SecurityGroupId.3", "sg-c");
	want(&p, "Placement.Tenancy", "dedicated");
	ec2_params_clear(&p);

	merged("{}", &p, 0);
	want(&p, "SecurityGroupId.2", "sg-0456");
	ec2_params_clear(&p);

	/* what qscale must own, and what is no parameter */
	merged("{\"ClientToken\": \"x\"}", &p, -1);
	merged("{\"MaxCount\": 10}", &p, -1);
	merged("{\"UserData\": \"IyEK\"}", &p, -1);
	merged("{\"DryRun\": false}", &p, -1);
	merged("{\"Bad Name\": 1}", &p, -1);
	merged("{\"A\": {\"b=c\": 1}}", &p, -1);
	merged("[1, 2]", &p, -1);
	merged("{\"A\": [[[[[[[[[[[[[[1]]]]]]]]]]]]]]}", &p, -1);
	assert_int_equal(p.n, 0);
}

static void
test_encode_like_recorded(void **state)
{
	static const char *const files[] = {
	    "CreateTags.request_body.txt",
	    "DescribeInstances_tagfilter_MaxResults1_nextToken."
	    "request_body.txt",
	    "DescribeSpotInstanceRequests.request_body.txt",
	    "RequestSpotInstances.request_body.txt",
	    "RunInstances_full.request_body.txt",
	    "TerminateInstances_2ids.request_body.txt",
	    "error_InvalidInstanceID.NotFound.request_body.txt",
	};
	struct ec2_params	 p;
	char			*body, *copy, *pair, *save, *eq, *out, *k, *v;
	char			*text;
	size_t			 i, nv = 0;
	int			 klen, vlen;
	cJSON			*vecs, *vec, *b;

	(void)state;
	/* the request bodies, and the bodies of botocore's signed vectors */
	assert_non_null(text = sample_read("sigv4_vectors.json", NULL));
	assert_non_null(vecs = cJSON_Parse(text));
	free(text);
	for (i = 0; i < QS_ARRAYLEN(files) + (size_t)cJSON_GetArraySize(vecs);
	    i++) {
		memset(&p, 0, sizeof(p));
		if (i < QS_ARRAYLEN(files)) {
			assert_non_null(body = sample_read(files[i], NULL));
			body[strcspn(body, "\r\n")] = '\0';
		} else {
			vec = cJSON_GetArrayItem(vecs, (int)(i -
			    QS_ARRAYLEN(files)));
			b = cJSON_GetObjectItem(vec, "body");
			if (!cJSON_IsString(b) || *b->valuestring == '\0')
				continue;
			body = xstrdup(b->valuestring);
			nv++;
		}
		copy = xstrdup(body);
		for (k = copy; *k != '\0'; k++)
			if (*k == '+')
				*k = ' ';
		for (pair = strtok_r(copy, "&", &save); pair != NULL;
		    pair = strtok_r(NULL, "&", &save)) {
			assert_non_null(eq = strchr(pair, '='));
			*eq = '\0';
			k = curl_easy_unescape(NULL, pair, 0, &klen);
			v = curl_easy_unescape(NULL, eq + 1, 0, &vlen);
			ec2_params_add(&p, k, v);
			curl_free(k);
			curl_free(v);
		}
		out = ec2_params_encode(&p);
		assert_string_equal(out, body);
		free(out);
		free(copy);
		free(body);
		ec2_params_clear(&p);
	}
	assert_true(nv >= 5);
	cJSON_Delete(vecs);
}

static void
test_params(void **state)
{
	struct ec2_params	 p = { NULL, NULL, 0 };
	char			*s;

	(void)state;
	ec2_params_add(&p, "A", "1");
	ec2_params_add(&p, "A.B", "2");
	ec2_params_add(&p, "AB", "3");
	ec2_params_addf(&p, "A.C.D", "%d", 4);
	ec2_params_add(&p, "Z", "a b~c*é");
	ec2_params_remove_prefix(&p, "A");
	assert_int_equal(p.n, 2);
	want(&p, "AB", "3");
	s = ec2_params_encode(&p);
	assert_string_equal(s, "AB=3&Z=a+b~c%2A%C3%A9");
	free(s);
	ec2_params_clear(&p);
	s = ec2_params_encode(&p);
	assert_string_equal(s, "");
	free(s);
}

static void
test_base64(void **state)
{
	static const struct {
		const char	*plain;
		const char	*b64;
	} t[] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" },
		{ "foo", "Zm9v" }, { "foob", "Zm9vYg==" },
		{ "\xfb\xff", "+/8=" },
	};
	static const char *const bad[] = { "Zg=x", "Z", "Zm9v!", "Zg===" };
	size_t	 i, n;
	char	*s;

	(void)state;
	for (i = 0; i < QS_ARRAYLEN(t); i++) {
		s = ec2_base64_encode(t[i].plain, strlen(t[i].plain));
		assert_string_equal(s, t[i].b64);
		free(s);
		s = ec2_base64_decode(t[i].b64, &n);
		assert_int_equal(n, strlen(t[i].plain));
		assert_string_equal(s, t[i].plain);
		free(s);
	}
	s = ec2_base64_decode("Zm9v\nYmFy\r\n", &n);
	assert_string_equal(s, "foobar");
	free(s);
	for (i = 0; i < QS_ARRAYLEN(bad); i++)
		assert_null(ec2_base64_decode(bad[i], &n));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run_instances_every_field),
		cmocka_unit_test(test_run_instances_variants),
		cmocka_unit_test(test_run_instances_refused),
		cmocka_unit_test(test_run_instances_like_recorded),
		cmocka_unit_test(test_user_data_escaping),
		cmocka_unit_test(test_custom_launch_spec),
		cmocka_unit_test(test_encode_like_recorded),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_base64),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
