/*
 * launch.c: the RunInstances request of one resource.  Everything comes
 * from the configuration; what the request does not borrow from it (the
 * tags, the merged custom launch spec) is allocated here and freed by
 * launch_spec_clear().  ec2_run_instances() copies what it needs before
 * it returns, so the request may be cleared right after the call.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common.h"
#include "ec2.h"
#include "worker.h"

#define TAG_AUTOSCALER	"qscale:autoscaler"
#define TAG_RESOURCE	"qscale:resource"

static int
set(const char *s)
{
	return s != NULL && *s != '\0';
}

/*
 * The resource's profile when it names one, else the global one: what
 * the configuration resolved when it was loaded, or the same rule for
 * one put together by hand.
 */
static const struct conf_iam_profile *
launch_profile(const struct qscale_conf *c, const struct conf_resource *r)
{
	if (r->eff_iam_instance_profile != NULL)
		return r->eff_iam_instance_profile;
	if (set(r->iam_instance_profile.arn) ||
	    set(r->iam_instance_profile.name))
		return &r->iam_instance_profile;
	return &c->iam_instance_profile;
}

/*
 * The global custom_launch_spec with the resource's merged over it (the
 * configuration's resolved copy when it has one); the caller owns it.
 */
static cJSON *
launch_custom_spec(const struct qscale_conf *c, const struct conf_resource *r)
{
	cJSON	*spec;

	if (r->eff_launch_spec != NULL)
		return cJSON_Duplicate(r->eff_launch_spec, 1);
	if (!cJSON_IsObject(c->custom_launch_spec) &&
	    !cJSON_IsObject(r->custom_launch_spec))
		return NULL;
	if (cJSON_IsObject(c->custom_launch_spec))
		spec = cJSON_Duplicate(c->custom_launch_spec, 1);
	else
		spec = cJSON_CreateObject();
	if (cJSON_IsObject(r->custom_launch_spec))
		conf_json_merge(spec, r->custom_launch_spec);
	return spec;
}

static void
tag_add(struct ec2_tag *t, size_t *n, const char *key, const char *value)
{
	t[*n].key = xstrdup(key);
	t[*n].value = xstrdup(value != NULL ? value : "");
	(*n)++;
}

/*
 * The user's tags, Name = <workers_prefix>:<resource> unless the user
 * set one, and the ownership tags, which no user tag may replace: they
 * are how qscale finds its instances.
 */
static void
launch_tags(struct ec2_launch *l, const struct qscale_conf *c,
    const struct conf_resource *r)
{
	struct ec2_tag	*t = xcalloc(r->ntags + 3, sizeof(*t));
	const char	*prefix = set(c->workers_prefix) ? c->workers_prefix :
			    c->name;
	size_t		 i, n = 0;
	int		 named = 0;
	char		*name;

	for (i = 0; i < r->ntags; i++) {
		if (str_eq(r->tags[i].key, TAG_AUTOSCALER) ||
		    str_eq(r->tags[i].key, TAG_RESOURCE) ||
		    !set(r->tags[i].key))
			continue;
		named |= strcmp(r->tags[i].key, "Name") == 0;
		tag_add(t, &n, r->tags[i].key, r->tags[i].value);
	}
	if (!named) {
		xasprintf(&name, "%s:%s", prefix != NULL ? prefix : "qscale",
		    r->name);
		tag_add(t, &n, "Name", name);
		free(name);
	}
	tag_add(t, &n, TAG_AUTOSCALER, c->name != NULL ? c->name : "");
	tag_add(t, &n, TAG_RESOURCE, r->name);
	l->tags = t;
	l->ntags = n;
}

/*
 * Fills l for resource index of c: in subnet (NULL: the resource's
 * availability zone, or wherever EC2 chooses), spot or not, up to
 * max_count instances, with the client token, user data and dry run
 * given.  Returns -1 on an index or count that makes no request.
 */
int
launch_spec_build(struct ec2_launch *l, const struct qscale_conf *c,
    size_t index, const char *subnet, int spot, int max_count,
    const char *client_token, const char *user_data, int dry_run)
{
	const struct conf_resource	*r;
	const struct conf_iam_profile	*prof;

	memset(l, 0, sizeof(*l));
	if (c == NULL || index >= c->nresources || max_count < 1)
		return -1;
	r = &c->resources[index];
	l->image_id = r->ami;
	l->instance_type = r->instance_type;
	l->min_count = 1;
	l->max_count = max_count;
	if (set(subnet))
		l->subnet_id = subnet;
	else
		l->availability_zone = r->availability_zone;
	l->security_groups = (const char *const *)r->security_groups;
	l->nsecurity_groups = r->nsecurity_groups;
	l->key_name = r->key_pair;
	l->user_data = user_data;
	prof = launch_profile(c, r);
	if (set(prof->arn))
		l->iam_profile_arn = prof->arn;
	else
		l->iam_profile_name = prof->name;
	l->ebs_device = r->ebs.device;
	l->ebs_size_gb = r->ebs.size_gb;
	l->ebs_type = r->ebs.type;
	l->ebs_iops = r->ebs.iops;
	l->ebs_throughput = r->ebs.throughput;
	launch_tags(l, c, r);
	l->spot = spot;
	l->client_token = client_token;
	l->dry_run = dry_run;
	l->custom_launch_spec = launch_custom_spec(c, r);
	return 0;
}

void
launch_spec_clear(struct ec2_launch *l)
{
	struct ec2_tag	*t = (struct ec2_tag *)l->tags;
	size_t		 i;

	for (i = 0; t != NULL && i < l->ntags; i++) {
		free(t[i].key);
		free(t[i].value);
	}
	free(t);
	cJSON_Delete((cJSON *)l->custom_launch_spec);
	memset(l, 0, sizeof(*l));
}
