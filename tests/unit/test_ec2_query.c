/*
 * test_ec2_query.c: the Query parameters of RunInstances (every field,
 * spot, the custom launch spec merge, user data that needs escaping),
 * the body encoding against the request bodies botocore sent (the tree's,
 * see data/ec2/record.py, and the reference samples' when they are
 * there), base64.
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

/*
 * User data that trips base64 and form encoding both (its base64 has +
 * / and =); data/ec2/record.py launched with the same script.
 */
static const char escaping_ud[] = "#!/bin/bash\n"
    "echo '+/=&%' \"$HOME\" \\ `date` ~\n"
    "printf 'caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x80\\n'\n"
    "x=\x01\x7f\n"
    "# ?\?>>\n";

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

/*
 * Our parameters are exactly the pairs of a request body botocore sent
 * (Action and Version aside, which the client adds): the same names,
 * the same values once encoded as we encode them, nothing more.
 */
static void
same_as_recorded(const struct ec2_params *p, const char *body,
    const char *what)
{
	struct ec2_params	 one;
	char			*copy, *pair, *save, *eq, *enc, *hay, *needle;
	size_t			 n = 0, i;

	copy = xstrdup(body);
	copy[strcspn(copy, "\r\n")] = '\0';
	xasprintf(&hay, "&%s&", copy);
	for (pair = strtok_r(copy, "&", &save); pair != NULL;
	    pair = strtok_r(NULL, "&", &save)) {
		assert_non_null(eq = strchr(pair, '='));
		*eq = '\0';
		if (strcmp(pair, "Action") == 0 || strcmp(pair, "Version") == 0)
			continue;
		if (ec2_params_get(p, pair) == NULL)
			fail_msg("%s: %s=%s is not in our request", what, pair,
			    eq + 1);
		memset(&one, 0, sizeof(one));
		ec2_params_add(&one, pair, ec2_params_get(p, pair));
		enc = ec2_params_encode(&one);
		if (strcmp(strchr(enc, '=') + 1, eq + 1) != 0)
			fail_msg("%s: %s, botocore sent %s=%s", what, enc,
			    pair, eq + 1);
		free(enc);
		ec2_params_clear(&one);
		n++;
	}
	for (i = 0; i < p->n; i++) {
		xasprintf(&needle, "&%s=", p->key[i]);
		if (strstr(hay, needle) == NULL)
			fail_msg("%s: our %s=%s was not sent by botocore", what,
			    p->key[i], p->value[i]);
		free(needle);
	}
	assert_int_equal(n, p->n);
	free(hay);
	free(copy);
}

/* The full RunInstances data/ec2/record.py made, as qscale makes it. */
static void
tree_run_instances_like_recorded(void)
{
	static const char *const vnames[] = { "run-instances-full" };
	struct ec2_launch	 l;
	struct ec2_params	 p = { NULL, NULL, 0 };
	const cJSON		*launch, *sgs, *vec;
	const char		*groups2[2];
	cJSON			*index, *spec, *vecs;
	char			*body, *text, err[256];
	size_t			 i;

	assert_non_null(index = fixture_index());
	launch = cJSON_GetObjectItemCaseSensitive(index, "launch");
	sgs = cJSON_GetObjectItemCaseSensitive(launch, "security_group_ids");
	assert_int_equal(cJSON_GetArraySize(sgs), 2);
	for (i = 0; i < 2; i++)
		assert_non_null(groups2[i] = cJSON_GetStringValue(
		    cJSON_GetArrayItem(sgs, (int)i)));
	/* the extras a custom_launch_spec brings, merged as qscale merges */
	spec = cJSON_Parse("{\"EbsOptimized\": true, \"Monitoring\": "
	    "{\"Enabled\": true}, \"CpuOptions\": {\"CoreCount\": 2, "
	    "\"ThreadsPerCore\": 1}, \"MetadataOptions\": "
	    "{\"HttpPutResponseHopLimit\": 2}}");
	assert_non_null(spec);
	memset(&l, 0, sizeof(l));
	l.image_id = "ami-1e749f67";
	l.instance_type = "g4dn.xlarge";
	l.min_count = 2;
	l.max_count = 3;
	l.subnet_id = fx_str(launch, "subnet_id");
	l.availability_zone = "us-east-1b";	/* the subnet's: not sent */
	l.security_groups = groups2;
	l.nsecurity_groups = 2;
	l.key_name = "ops key";
	l.user_data = escaping_ud;
	l.iam_profile_arn = fx_str(launch, "iam_profile_arn");
	l.iam_profile_name = "worker-profile";	/* the arn wins */
	l.ebs_device = "/dev/sda1";
	l.ebs_size_gb = 100;
	l.ebs_type = "gp3";
	l.tags = tags;
	l.ntags = QS_ARRAYLEN(tags);
	l.spot = 1;
	l.client_token = "qscale-rec-0001";
	l.custom_launch_spec = spec;
	assert_non_null(l.subnet_id);
	assert_non_null(l.iam_profile_arn);
	assert_int_equal(ec2_build_run_instances(&l, &p, err, sizeof(err)), 0);
	assert_non_null(body = fixture_read("RunInstances_full.request.txt",
	    NULL));
	same_as_recorded(&p, body, "RunInstances_full.request.txt");
	/* 44 of them: nothing of the launch went missing on either side */
	assert_int_equal(p.n, 44);
	free(body);
	ec2_params_clear(&p);
	cJSON_Delete(spec);
	cJSON_Delete(index);

	/* full_launch() with that user data is the run-instances vector */
	assert_non_null(text = fixture_read("sigv4_vectors.json", NULL));
	assert_non_null(vecs = cJSON_Parse(text));
	free(text);
	for (i = 0; i < QS_ARRAYLEN(vnames); i++) {
		cJSON_ArrayForEach(vec, vecs)
			if (strcmp(fx_str(vec, "name"), vnames[i]) == 0)
				break;
		assert_non_null(vec);
		full_launch(&l);
		l.user_data = escaping_ud;
		assert_int_equal(ec2_build_run_instances(&l, &p, err,
		    sizeof(err)), 0);
		same_as_recorded(&p, fx_str(vec, "body"), vnames[i]);
		ec2_params_clear(&p);
	}
	cJSON_Delete(vecs);
}

/* The reference set's botocore request: every one of its fields, ours too. */
static void
ref_run_instances_like_recorded(void)
{
	static const char *const sg[] = { "sg-948e3e4e5861f9559" };
	static const struct ec2_tag rtags[] = { { "asg", "pool-a" },
	    { "Name", "worker" } };
	struct ec2_launch	 l;
	struct ec2_params	 p = { NULL, NULL, 0 };
	char			*body, *pair, *save, *eq, err[256];
	int			 n = 0;

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
test_run_instances_like_recorded(void **state)
{
	int	 ref = samples_dir() != NULL;

	(void)state;
	tree_run_instances_like_recorded();
	if (ref)
		ref_run_instances_like_recorded();
	sets_checked("test_run_instances_like_recorded", ref);
}

static void
test_user_data_escaping(void **state)
{
	const char		*ud = escaping_ud;
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

/* A launch that configures only what it must, over spec json. */
static void
bare_merged(const char *json, int spot, struct ec2_params *p)
{
	struct ec2_launch	 l;
	cJSON			*spec = cJSON_Parse(json);
	char			 err[256] = "";

	assert_non_null(spec);
	memset(&l, 0, sizeof(l));
	l.image_id = "ami-1";
	l.instance_type = "t3.micro";
	l.min_count = l.max_count = 1;
	l.spot = spot;
	l.custom_launch_spec = spec;
	if (ec2_build_run_instances(&l, p, err, sizeof(err)) != 0)
		fail_msg("%s: %s", json, err);
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
	/* the spec is the basis: what is configured is applied over it */
	want(&p, "InstanceType", "g4dn.xlarge");
	want(&p, "KeyName", "ops key");
	/* a configured list is given whole: no element of the spec's */
	want(&p, "SecurityGroupId.1", groups[0]);
	want(&p, "SecurityGroupId.2", groups[1]);
	absent(&p, "SecurityGroupId.3");
	want(&p, "BlockDeviceMapping.1.DeviceName", "/dev/sda1");
	want(&p, "BlockDeviceMapping.1.Ebs.VolumeSize", "100");
	want(&p, "BlockDeviceMapping.1.Ebs.VolumeType", "gp3");
	absent(&p, "BlockDeviceMapping.1.Ebs.Iops");
	/* the profile's alternatives: the configured one, not both */
	want(&p, "IamInstanceProfile.Arn",
	    "arn:aws:iam::123456789012:instance-profile/w");
	absent(&p, "IamInstanceProfile.Name");
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
	bare_merged("{\"SecurityGroupId\": [\"sg-a\", \"sg-b\", \"sg-c\"],"
	    "\"Placement\": {\"Tenancy\": \"dedicated\"}}", 1, &p);
	want(&p, "SecurityGroupId.3", "sg-c");
	want(&p, "Placement.Tenancy", "dedicated");
	ec2_params_clear(&p);
	/* objects merge: the configured zone beside the spec's tenancy */
	merged("{\"SecurityGroupId\": [\"sg-a\", \"sg-b\", \"sg-c\"],"
	    "\"Placement\": {\"Tenancy\": \"dedicated\"}}", &p, 0);
	want(&p, "SecurityGroupId.1", "sg-0123");
	absent(&p, "SecurityGroupId.3");
	want(&p, "Placement.Tenancy", "dedicated");
	ec2_params_clear(&p);

	merged("{}", &p, 0);
	want(&p, "SecurityGroupId.2", "sg-0456");
	ec2_params_clear(&p);

	/* what the configuration leaves unset, the spec gives */
	bare_merged("{\"KeyName\": \"spec key\", \"SecurityGroups\": "
	    "[\"default\"], \"IamInstanceProfile\": {\"Name\": \"p\"},"
	    "\"BlockDeviceMappings\": [{\"DeviceName\": \"/dev/xvdb\","
	    "  \"Ebs\": {\"VolumeSize\": 500, \"Iops\": 3000.5}}],"
	    "\"InstanceMarketOptions\": {\"SpotOptions\": "
	    "{\"MaxPrice\": \"0.5\"}}, \"MetadataOptions\": "
	    "{\"HttpTokens\": \"optional\"}}", 1, &p);
	want(&p, "KeyName", "spec key");
	want(&p, "SecurityGroup.1", "default");
	want(&p, "IamInstanceProfile.Name", "p");
	want(&p, "BlockDeviceMapping.1.DeviceName", "/dev/xvdb");
	want(&p, "BlockDeviceMapping.1.Ebs.Iops", "3000.5");
	/* spot: qscale's market options, the spec's price beside them */
	want(&p, "InstanceMarketOptions.MarketType", "spot");
	want(&p, "InstanceMarketOptions.SpotOptions.MaxPrice", "0.5");
	/* what qscale gives every instance stays */
	want(&p, "MetadataOptions.HttpTokens", "required");
	ec2_params_clear(&p);
	/* an on-demand launch (rollback, blackout) stays on-demand */
	bare_merged("{\"InstanceMarketOptions\": {\"MarketType\": \"spot\","
	    "\"SpotOptions\": {\"MaxPrice\": \"0.5\"}}}", 0, &p);
	absent(&p, "InstanceMarketOptions.MarketType");
	absent(&p, "InstanceMarketOptions.SpotOptions.MaxPrice");
	ec2_params_clear(&p);

	/* the volume's IOPS and throughput, when set */
	{
		struct ec2_launch	 l;
		char			 err[256];

		full_launch(&l);
		l.ebs_iops = 6000;
		l.ebs_throughput = 250;
		assert_int_equal(ec2_build_run_instances(&l, &p, err,
		    sizeof(err)), 0);
		want(&p, "BlockDeviceMapping.1.Ebs.Iops", "6000");
		want(&p, "BlockDeviceMapping.1.Ebs.Throughput", "250");
		ec2_params_clear(&p);
		full_launch(&l);
		assert_int_equal(ec2_build_run_instances(&l, &p, err,
		    sizeof(err)), 0);
		absent(&p, "BlockDeviceMapping.1.Ebs.Iops");
		absent(&p, "BlockDeviceMapping.1.Ebs.Throughput");
		ec2_params_clear(&p);
	}

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

/* A recorded body, decoded into parameters, encodes back to itself. */
static void
reencode(const char *body, const char *what)
{
	struct ec2_params	 p;
	char			*copy, *pair, *save, *eq, *out, *k, *v;
	size_t			 i, n;
	int			 klen, vlen;

	memset(&p, 0, sizeof(p));
	copy = xstrdup(body);
	copy[strcspn(copy, "\r\n")] = '\0';
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
	n = strcspn(body, "\r\n");
	for (i = 0; i < n && out[i] == body[i]; i++)
		;
	if (i < n || out[i] != '\0')
		fail_msg("%s: encodes differently from byte %zu on: ours "
		    "\"%.48s\", recorded \"%.*s\"", what, i, out + i,
		    (int)(n - i < 48 ? n - i : 48), body + i);
	free(out);
	free(copy);
	ec2_params_clear(&p);
}

/* The non-empty bodies of a file of vectors; how many. */
static size_t
reencode_vectors(const char *text)
{
	const cJSON	*vec;
	cJSON		*vecs;
	const char	*b;
	size_t		 n = 0;

	assert_non_null(text);
	assert_non_null(vecs = cJSON_Parse(text));
	cJSON_ArrayForEach(vec, vecs) {
		if ((b = fx_str(vec, "body")) == NULL || *b == '\0')
			continue;
		reencode(b, fx_str(vec, "name"));
		n++;
	}
	cJSON_Delete(vecs);
	return n;
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
	const cJSON	*e;
	const char	*name;
	cJSON		*index;
	char		*body;
	size_t		 i, n = 0;
	int		 ref = samples_dir() != NULL;

	(void)state;
	/* the tree's request bodies, and its vectors' */
	assert_non_null(index = fixture_index());
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(index,
	    "responses")) {
		if ((name = fx_str(e, "request")) == NULL)
			continue;
		assert_non_null(body = fixture_read(name, NULL));
		reencode(body, name);
		free(body);
		n++;
	}
	cJSON_Delete(index);
	assert_true(n >= 9);
	body = fixture_read("sigv4_vectors.json", NULL);
	assert_int_equal(reencode_vectors(body), 6);
	free(body);

	if (ref) {
		/* the reference request bodies, and its vectors' */
		for (i = 0; i < QS_ARRAYLEN(files); i++) {
			assert_non_null(body = sample_read(files[i], NULL));
			reencode(body, files[i]);
			free(body);
		}
		body = sample_read("sigv4_vectors.json", NULL);
		assert_true(reencode_vectors(body) >= 5);
		free(body);
	}
	sets_checked("test_encode_like_recorded", ref);
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
