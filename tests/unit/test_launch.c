/*
 * test_launch.c: launch_spec_build() from a configuration: every field
 * of a resource, the profile and custom launch spec layering, the tags
 * (Name, ownership tags no user tag can replace), and the parameters
 * that come out of it.
 */
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
#include "worker.h"

static char *subnets[] = { "subnet-1", "subnet-2" };
static char *groups[] = { "sg-1", "sg-2" };
static struct conf_kv tags[] = {
	{ "team", "ml" },
	{ "qscale:resource", "forged" },
	{ "qscale:autoscaler", "forged" },
};
static struct conf_kv named[] = { { "Name", "my-box" } };

static void
make_conf(struct qscale_conf *c, struct conf_resource *r)
{
	memset(c, 0, sizeof(*c));
	memset(r, 0, sizeof(*r));
	c->name = "prod";
	c->workers_prefix = "qs";
	c->iam_instance_profile.arn = "arn:aws:iam::1:instance-profile/global";
	c->iam_instance_profile.name = "global";
	c->custom_launch_spec = cJSON_Parse("{\"EbsOptimized\": true,"
	    "\"Monitoring\": {\"Enabled\": false}, \"KeyName\": \"k0\"}");
	r->name = "gpu";
	r->ami = "ami-9";
	r->instance_type = "g4dn.xlarge";
	r->availability_zone = "us-east-1c";
	r->subnets = subnets;
	r->nsubnets = 2;
	r->security_groups = groups;
	r->nsecurity_groups = 2;
	r->key_pair = "ops";
	r->tags = tags;
	r->ntags = QS_ARRAYLEN(tags);
	r->ebs.device = "/dev/sda1";
	r->ebs.size_gb = 200;
	r->ebs.type = "gp3";
	c->resources = r;
	c->nresources = 1;
}

static const char *
tag(const struct ec2_launch *l, const char *key)
{
	size_t	 i;

	for (i = 0; i < l->ntags; i++)
		if (strcmp(l->tags[i].key, key) == 0)
			return l->tags[i].value;
	return NULL;
}

static void
test_every_field(void **state)
{
	struct qscale_conf	 c;
	struct conf_resource	 r;
	struct ec2_launch	 l;

	(void)state;
	make_conf(&c, &r);
	assert_int_equal(launch_spec_build(&l, &c, 0, "subnet-2", 1, 4,
	    "tok-1", "#!/bin/bash\n", 1), 0);
	assert_string_equal(l.image_id, "ami-9");
	assert_string_equal(l.instance_type, "g4dn.xlarge");
	assert_int_equal(l.min_count, 1);
	assert_int_equal(l.max_count, 4);
	assert_string_equal(l.subnet_id, "subnet-2");
	assert_null(l.availability_zone);
	assert_int_equal(l.nsecurity_groups, 2);
	assert_string_equal(l.security_groups[1], "sg-2");
	assert_string_equal(l.key_name, "ops");
	assert_string_equal(l.user_data, "#!/bin/bash\n");
	assert_string_equal(l.iam_profile_arn,
	    "arn:aws:iam::1:instance-profile/global");
	assert_string_equal(l.ebs_device, "/dev/sda1");
	assert_int_equal(l.ebs_size_gb, 200);
	assert_string_equal(l.ebs_type, "gp3");
	assert_true(l.spot);
	assert_true(l.dry_run);
	assert_string_equal(l.client_token, "tok-1");
	/* tags: the user's, Name, and ownership that cannot be forged */
	assert_int_equal(l.ntags, 4);
	assert_string_equal(tag(&l, "team"), "ml");
	assert_string_equal(tag(&l, "Name"), "qs:gpu");
	assert_string_equal(tag(&l, "qscale:autoscaler"), "prod");
	assert_string_equal(tag(&l, "qscale:resource"), "gpu");
	launch_spec_clear(&l);
	assert_null(l.tags);

	/* no subnet: the zone; a user Name stays */
	r.tags = named;
	r.ntags = 1;
	assert_int_equal(launch_spec_build(&l, &c, 0, NULL, 0, 1, NULL, NULL,
	    0), 0);
	assert_null(l.subnet_id);
	assert_string_equal(l.availability_zone, "us-east-1c");
	assert_string_equal(tag(&l, "Name"), "my-box");
	assert_int_equal(l.ntags, 3);
	assert_false(l.spot);
	launch_spec_clear(&l);
	cJSON_Delete(c.custom_launch_spec);
}

static void
test_profile_and_spec_layers(void **state)
{
	struct qscale_conf	 c;
	struct conf_resource	 r;
	struct ec2_launch	 l;
	struct ec2_params	 p = { NULL, NULL, 0 };
	char			 err[256];

	(void)state;
	make_conf(&c, &r);
	/* the resource's profile overrides the global one, even a name
	   over an arn */
	r.iam_instance_profile.name = "res-profile";
	r.custom_launch_spec = cJSON_Parse("{\"Monitoring\": {\"Enabled\": "
	    "true}, \"CpuOptions\": {\"CoreCount\": 4}}");
	assert_int_equal(launch_spec_build(&l, &c, 0, "subnet-1", 0, 2,
	    "tok", "echo", 0), 0);
	assert_null(l.iam_profile_arn);
	assert_string_equal(l.iam_profile_name, "res-profile");
	assert_int_equal(ec2_build_run_instances(&l, &p, err, sizeof(err)), 0);
	assert_string_equal(ec2_params_get(&p, "EbsOptimized"), "true");
	assert_string_equal(ec2_params_get(&p, "Monitoring.Enabled"), "true");
	assert_string_equal(ec2_params_get(&p, "CpuOptions.CoreCount"), "4");
	/* the spec is the basis: the configured key pair is applied over */
	assert_string_equal(ec2_params_get(&p, "KeyName"), "ops");
	assert_string_equal(ec2_params_get(&p, "IamInstanceProfile.Name"),
	    "res-profile");
	assert_string_equal(ec2_params_get(&p,
	    "TagSpecification.2.ResourceType"), "volume");
	assert_string_equal(ec2_params_get(&p,
	    "TagSpecification.2.Tag.3.Key"), "qscale:autoscaler");
	assert_string_equal(ec2_params_get(&p,
	    "TagSpecification.2.Tag.4.Value"), "gpu");
	assert_string_equal(ec2_params_get(&p, "ClientToken"), "tok");
	/* the configuration's objects are untouched by the merge */
	assert_false(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(
	    c.custom_launch_spec, "Monitoring"), "Enabled")));
	ec2_params_clear(&p);
	launch_spec_clear(&l);

	/* what a loaded configuration resolved is what goes out */
	r.eff_launch_spec = cJSON_Parse("{\"EbsOptimized\": false}");
	r.eff_iam_instance_profile = &c.iam_instance_profile;
	assert_int_equal(launch_spec_build(&l, &c, 0, NULL, 0, 1, NULL, NULL,
	    0), 0);
	assert_string_equal(l.iam_profile_arn,
	    "arn:aws:iam::1:instance-profile/global");
	assert_false(cJSON_IsTrue(cJSON_GetObjectItem(l.custom_launch_spec,
	    "EbsOptimized")));
	assert_null(cJSON_GetObjectItem(l.custom_launch_spec, "CpuOptions"));
	launch_spec_clear(&l);
	cJSON_Delete(r.eff_launch_spec);
	r.eff_launch_spec = NULL;
	r.eff_iam_instance_profile = NULL;

	/* no spec anywhere: none */
	cJSON_Delete(c.custom_launch_spec);
	c.custom_launch_spec = NULL;
	cJSON_Delete(r.custom_launch_spec);
	r.custom_launch_spec = NULL;
	assert_int_equal(launch_spec_build(&l, &c, 0, NULL, 0, 1, NULL, NULL,
	    0), 0);
	assert_null(l.custom_launch_spec);
	launch_spec_clear(&l);

	/* bad index or count */
	assert_int_equal(launch_spec_build(&l, &c, 1, NULL, 0, 1, NULL, NULL,
	    0), -1);
	assert_int_equal(launch_spec_build(&l, &c, 0, NULL, 0, 0, NULL, NULL,
	    0), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_field),
		cmocka_unit_test(test_profile_and_spec_layers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
