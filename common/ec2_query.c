/*
 * ec2_query.c: EC2 Query parameters.  Lists and structures flatten the
 * way the EC2 protocol wants them (Name.N from 1, Parent.Child), values
 * are form-encoded when the body is built, UserData is base64 first.
 * Nothing here does I/O: the whole RunInstances request, custom launch
 * spec included, is checked by unit tests on its parameters.
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common.h"
#include "ec2.h"

#define EC2_USERDATA_MAX	16384	/* bytes, before base64 */
#define SPEC_MAX_DEPTH		12

void
ec2_params_add(struct ec2_params *p, const char *key, const char *value)
{
	p->key = xreallocarray(p->key, p->n + 1, sizeof(*p->key));
	p->value = xreallocarray(p->value, p->n + 1, sizeof(*p->value));
	p->key[p->n] = xstrdup(key);
	p->value[p->n] = xstrdup(value);
	p->n++;
}

void
ec2_params_addf(struct ec2_params *p, const char *key, const char *fmt, ...)
{
	va_list	 ap;
	char	*v;

	va_start(ap, fmt);
	if (vasprintf(&v, fmt, ap) == -1)
		fatal("vasprintf");
	va_end(ap);
	ec2_params_add(p, key, v);
	free(v);
}

const char *
ec2_params_get(const struct ec2_params *p, const char *key)
{
	size_t	 i;

	for (i = 0; i < p->n; i++)
		if (strcmp(p->key[i], key) == 0)
			return p->value[i];
	return NULL;
}

/* Removes KEY and everything under it (KEY.*). */
void
ec2_params_remove_prefix(struct ec2_params *p, const char *prefix)
{
	size_t	 i, j = 0, n = strlen(prefix);

	for (i = 0; i < p->n; i++) {
		if (strncmp(p->key[i], prefix, n) == 0 &&
		    (p->key[i][n] == '\0' || p->key[i][n] == '.')) {
			free(p->key[i]);
			freezero_str(p->value[i]);
			continue;
		}
		p->key[j] = p->key[i];
		p->value[j] = p->value[i];
		j++;
	}
	p->n = j;
}

void
ec2_params_clear(struct ec2_params *p)
{
	size_t	 i;

	for (i = 0; i < p->n; i++) {
		free(p->key[i]);
		freezero_str(p->value[i]);
	}
	free(p->key);
	free(p->value);
	memset(p, 0, sizeof(*p));
}

/*
 * Form encoding as the SDKs write it: unreserved characters as they
 * are, a space as '+', everything else %XX.  Servers that check the
 * signature over the form they decoded and encoded again (moto does)
 * only agree with this form.
 */
static char *
form_encode(const char *s)
{
	static const char	 hex[] = "0123456789ABCDEF";
	size_t			 j = 0;
	char			*out = xmalloc(strlen(s) * 3 + 1);
	unsigned char		 ch;

	for (; *s != '\0'; s++) {
		ch = (unsigned char)*s;
		if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' ||
		    ch == '~')
			out[j++] = (char)ch;
		else if (ch == ' ')
			out[j++] = '+';
		else {
			out[j++] = '%';
			out[j++] = hex[ch >> 4];
			out[j++] = hex[ch & 15];
		}
	}
	out[j] = '\0';
	return out;
}

/* "k1=v1&k2=v2", both sides form-encoded. */
char *
ec2_params_encode(const struct ec2_params *p)
{
	size_t	 i, len = 0, cap = 256;
	char	*out = xmalloc(cap), *k, *v;

	out[0] = '\0';
	for (i = 0; i < p->n; i++) {
		k = form_encode(p->key[i]);
		v = form_encode(p->value[i]);
		if (len + strlen(k) + strlen(v) + 3 > cap)
			out = xrealloc_grow(out, &cap,
			    len + strlen(k) + strlen(v) + 3);
		len += (size_t)snprintf(out + len, cap - len, "%s%s=%s",
		    i > 0 ? "&" : "", k, v);
		free(k);
		free(v);
	}
	return out;
}

char *
ec2_base64_encode(const void *data, size_t n)
{
	char	*out = xmalloc(4 * ((n + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)out, data, (int)n);
	return out;
}

static int
b64_value(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Decodes base64, ignoring white space.  Returns a NUL-terminated buffer
 * (its length in *lenp), or NULL when the text is not base64.
 */
char *
ec2_base64_decode(const char *s, size_t *lenp)
{
	size_t		 n = strlen(s), len = 0;
	unsigned char	*out = xmalloc(n / 4 * 3 + 4);
	uint32_t	 acc = 0;
	int		 bits = 0, pad = 0, v;

	for (; *s != '\0'; s++) {
		if (isspace((unsigned char)*s))
			continue;
		if (*s == '=') {
			pad++;
			continue;
		}
		if (pad > 0 || (v = b64_value((unsigned char)*s)) == -1)
			goto bad;
		acc = (acc << 6) | (uint32_t)v;
		if ((bits += 6) >= 8) {
			bits -= 8;
			out[len++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (pad > 2 || bits >= 6 || (pad > 0 && (bits / 2) != pad))
		goto bad;
	out[len] = '\0';
	if (lenp != NULL)
		*lenp = len;
	return (char *)out;
bad:
	free(out);
	return NULL;
}

static void
add_tags(struct ec2_params *p, int spec, const char *type,
    const struct ec2_tag *tags, size_t ntags)
{
	char	 key[64];
	size_t	 i;

	snprintf(key, sizeof(key), "TagSpecification.%d.ResourceType", spec);
	ec2_params_add(p, key, type);
	for (i = 0; i < ntags; i++) {
		snprintf(key, sizeof(key), "TagSpecification.%d.Tag.%zu.Key",
		    spec, i + 1);
		ec2_params_add(p, key, tags[i].key);
		snprintf(key, sizeof(key), "TagSpecification.%d.Tag.%zu.Value",
		    spec, i + 1);
		ec2_params_add(p, key, tags[i].value != NULL ?
		    tags[i].value : "");
	}
}

/* Security groups by id (sg-...) or, in a default VPC, by name. */
static void
add_groups(struct ec2_params *p, const struct ec2_launch *l)
{
	size_t	 i, nid = 0, nname = 0;
	char	 key[48];

	for (i = 0; i < l->nsecurity_groups; i++) {
		if (strncmp(l->security_groups[i], "sg-", 3) == 0)
			snprintf(key, sizeof(key), "SecurityGroupId.%zu",
			    ++nid);
		else
			snprintf(key, sizeof(key), "SecurityGroup.%zu",
			    ++nname);
		ec2_params_add(p, key, l->security_groups[i]);
	}
}

/*
 * The root volume, when a size is set.  A type alone maps nothing: a
 * mapping without a size is refused unless the device is the AMI's
 * root device, which qscale cannot know.
 */
static void
add_ebs(struct ec2_params *p, const struct ec2_launch *l)
{
	if (l->ebs_size_gb <= 0)
		return;
	ec2_params_add(p, "BlockDeviceMapping.1.DeviceName",
	    l->ebs_device != NULL && *l->ebs_device != '\0' ? l->ebs_device :
	    "/dev/xvda");
	ec2_params_addf(p, "BlockDeviceMapping.1.Ebs.VolumeSize", "%d",
	    l->ebs_size_gb);
	if (l->ebs_type != NULL && *l->ebs_type != '\0')
		ec2_params_add(p, "BlockDeviceMapping.1.Ebs.VolumeType",
		    l->ebs_type);
	if (l->ebs_iops > 0)
		ec2_params_addf(p, "BlockDeviceMapping.1.Ebs.Iops", "%d",
		    l->ebs_iops);
	if (l->ebs_throughput > 0)
		ec2_params_addf(p, "BlockDeviceMapping.1.Ebs.Throughput", "%d",
		    l->ebs_throughput);
	ec2_params_add(p, "BlockDeviceMapping.1.Ebs.DeleteOnTermination",
	    "true");
}

static int
set(const char *s)
{
	return s != NULL && *s != '\0';
}

static int
launch_check(const struct ec2_launch *l, char *err, size_t errlen)
{
	if (!set(l->image_id))
		snprintf(err, errlen, "no image id (ami)");
	else if (!set(l->instance_type))
		snprintf(err, errlen, "no instance type");
	else if (l->min_count < 1 || l->max_count < l->min_count)
		snprintf(err, errlen, "bad instance count: MinCount %d, "
		    "MaxCount %d", l->min_count, l->max_count);
	else if (l->user_data != NULL &&
	    strlen(l->user_data) > EC2_USERDATA_MAX)
		snprintf(err, errlen, "the user data is %zu bytes; EC2 takes "
		    "at most %d", strlen(l->user_data), EC2_USERDATA_MAX);
	else if (l->ntags > 0 && l->tags == NULL)
		snprintf(err, errlen, "tags missing");
	else
		return 0;
	return -1;
}

static void
add_basics(struct ec2_params *p, const struct ec2_launch *l)
{
	char	*b64;

	ec2_params_add(p, "ImageId", l->image_id);
	ec2_params_add(p, "InstanceType", l->instance_type);
	ec2_params_addf(p, "MinCount", "%d", l->min_count);
	ec2_params_addf(p, "MaxCount", "%d", l->max_count);
	if (set(l->subnet_id))
		ec2_params_add(p, "SubnetId", l->subnet_id);
	else if (set(l->availability_zone))
		ec2_params_add(p, "Placement.AvailabilityZone",
		    l->availability_zone);
	add_groups(p, l);
	if (set(l->key_name))
		ec2_params_add(p, "KeyName", l->key_name);
	if (l->user_data != NULL) {
		b64 = ec2_base64_encode(l->user_data, strlen(l->user_data));
		ec2_params_add(p, "UserData", b64);
		freezero_str(b64);
	}
	if (set(l->iam_profile_arn))
		ec2_params_add(p, "IamInstanceProfile.Arn", l->iam_profile_arn);
	else if (set(l->iam_profile_name))
		ec2_params_add(p, "IamInstanceProfile.Name",
		    l->iam_profile_name);
}

/*
 * The parameters of one RunInstances call.  custom_launch_spec is the
 * basis the configured fields are applied over; see ec2_flatten_spec().
 * Returns -1 with the reason in err.
 */
int
ec2_build_run_instances(const struct ec2_launch *l, struct ec2_params *p,
    char *err, size_t errlen)
{
	if (launch_check(l, err, errlen) == -1)
		return -1;
	add_basics(p, l);
	add_ebs(p, l);
	if (l->ntags > 0) {
		add_tags(p, 1, "instance", l->tags, l->ntags);
		add_tags(p, 2, "volume", l->tags, l->ntags);
	}
	if (l->spot) {
		ec2_params_add(p, "InstanceMarketOptions.MarketType", "spot");
		ec2_params_add(p, "InstanceMarketOptions.SpotOptions."
		    "SpotInstanceType", "one-time");
		ec2_params_add(p, "InstanceMarketOptions.SpotOptions."
		    "InstanceInterruptionBehavior", "terminate");
	}
	ec2_params_add(p, "InstanceInitiatedShutdownBehavior", "terminate");
	ec2_params_add(p, "MetadataOptions.HttpTokens", "required");
	ec2_params_add(p, "MetadataOptions.HttpEndpoint", "enabled");
	if (set(l->client_token))
		ec2_params_add(p, "ClientToken", l->client_token);
	if (l->dry_run)
		ec2_params_add(p, "DryRun", "true");
	if (l->custom_launch_spec != NULL &&
	    ec2_flatten_spec(l->custom_launch_spec, p, err, errlen) == -1) {
		ec2_params_clear(p);
		return -1;
	}
	/* an on-demand launch (a rollback, a blackout) stays on-demand */
	if (!l->spot)
		ec2_params_remove_prefix(p, "InstanceMarketOptions");
	return 0;
}

/*
 * The SDK (boto3) names of RunInstances members whose Query names differ:
 * custom_launch_spec may use either.  Parent NULL: at the top level.
 */
static const struct {
	const char	*parent;
	const char	*sdk;
	const char	*wire;
} spec_names[] = {
	{ NULL, "BlockDeviceMappings", "BlockDeviceMapping" },
	{ NULL, "ElasticInferenceAccelerators", "ElasticInferenceAccelerator" },
	{ NULL, "Ipv6Addresses", "Ipv6Address" },
	{ NULL, "LicenseSpecifications", "LicenseSpecification" },
	{ NULL, "NetworkInterfaces", "NetworkInterface" },
	{ NULL, "SecondaryInterfaces", "SecondaryInterface" },
	{ NULL, "SecurityGroupIds", "SecurityGroupId" },
	{ NULL, "SecurityGroups", "SecurityGroup" },
	{ NULL, "TagSpecifications", "TagSpecification" },
	{ "NetworkInterface", "Groups", "SecurityGroupId" },
	{ "NetworkInterface", "Ipv4Prefixes", "Ipv4Prefix" },
	{ "NetworkInterface", "Ipv6Prefixes", "Ipv6Prefix" },
	{ "SecondaryInterface", "PrivateIpAddresses", "PrivateIpAddress" },
	{ "TagSpecification", "Tags", "Tag" },
};

/* What qscale must set itself: the spec may not touch these. */
static const char *const spec_reserved[] = {
	"Action", "Version", "MinCount", "MaxCount", "ClientToken", "DryRun",
	"UserData",
};

/*
 * Parameters that are one setting however many keys they take: a
 * generated key under one of them keeps every key of the spec's under
 * any of its group (the profile's Arn and Name are alternatives, and so
 * are the two ways to name security groups).
 */
static const struct {
	const char	*name;
	int		 group;
} spec_whole[] = {
	{ "IamInstanceProfile", 1 },
	{ "SecurityGroupId", 2 }, { "SecurityGroup", 2 },
};

static const char *
spec_wire_name(const char *parent, const char *name)
{
	size_t	 i;

	for (i = 0; i < QS_ARRAYLEN(spec_names); i++)
		if (str_eq(spec_names[i].parent, parent) &&
		    strcmp(spec_names[i].sdk, name) == 0)
			return spec_names[i].wire;
	return name;
}

struct spec_ctx {
	struct ec2_params	 out;	/* the spec's parameters */
	char			*err;
	size_t			 errlen;
};

static int	spec_walk(struct spec_ctx *, const cJSON *, const char *,
		    const char *, int);

static int
spec_leaf(struct spec_ctx *s, const cJSON *v, const char *path)
{
	double	 d;

	if (cJSON_IsNull(v))
		return 0;	/* no value: qscale's, if it sets one */
	if (cJSON_IsBool(v))
		ec2_params_add(&s->out, path, cJSON_IsTrue(v) ? "true" :
		    "false");
	else if (cJSON_IsString(v))
		ec2_params_add(&s->out, path, v->valuestring);
	else if (cJSON_IsNumber(v)) {
		d = v->valuedouble;
		if (!isfinite(d)) {
			snprintf(s->err, s->errlen, "custom_launch_spec: %s: "
			    "not a finite number", path);
			return -1;
		}
		if (d == floor(d) && fabs(d) < 9007199254740992.0)
			ec2_params_addf(&s->out, path, "%.0f", d);
		else
			ec2_params_addf(&s->out, path, "%.15g", d);
	} else {
		snprintf(s->err, s->errlen, "custom_launch_spec: %s: "
		    "unsupported value", path);
		return -1;
	}
	return 0;
}

static int
spec_name_ok(struct spec_ctx *s, const char *path, const char *name,
    int depth)
{
	const char	*p;
	size_t		 i;

	for (p = name; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
			break;
	if (*name == '\0' || *p != '\0') {
		snprintf(s->err, s->errlen, "custom_launch_spec: %s%s\"%s\": "
		    "not a parameter name", path, *path != '\0' ? "." : "",
		    name);
		return -1;
	}
	for (i = 0; depth == 0 && i < QS_ARRAYLEN(spec_reserved); i++)
		if (strcmp(name, spec_reserved[i]) == 0) {
			snprintf(s->err, s->errlen, "custom_launch_spec: %s "
			    "is set by qscale and cannot be overridden", name);
			return -1;
		}
	return 0;
}

static int
spec_object(struct spec_ctx *s, const cJSON *o, const char *path,
    const char *parent, int depth)
{
	const cJSON	*it;
	const char	*wire;
	char		*sub;
	int		 rc = 0;

	cJSON_ArrayForEach(it, o) {
		if (spec_name_ok(s, path, it->string, depth) == -1)
			return -1;
		wire = spec_wire_name(parent, it->string);
		if (*path != '\0')
			xasprintf(&sub, "%s.%s", path, wire);
		else
			sub = xstrdup(wire);
		rc = spec_walk(s, it, sub, wire, depth + 1);
		free(sub);
		if (rc == -1)
			return -1;
	}
	return 0;
}

static int
spec_walk(struct spec_ctx *s, const cJSON *v, const char *path,
    const char *parent, int depth)
{
	const cJSON	*it;
	char		*sub;
	int		 i = 0, rc;

	if (depth > SPEC_MAX_DEPTH) {
		snprintf(s->err, s->errlen, "custom_launch_spec: %s: nested "
		    "too deep", path);
		return -1;
	}
	if (cJSON_IsObject(v))
		return spec_object(s, v, path, parent, depth);
	if (!cJSON_IsArray(v))
		return spec_leaf(s, v, path);
	cJSON_ArrayForEach(it, v) {
		xasprintf(&sub, "%s.%d", path, ++i);
		rc = spec_walk(s, it, sub, parent, depth + 1);
		free(sub);
		if (rc == -1)
			return -1;
	}
	return 0;
}

/* The number of TagSpecification.N entries already in p. */
static int
tag_specs(const struct ec2_params *p)
{
	size_t	 i;
	int	 n, max = 0;

	for (i = 0; i < p->n; i++)
		if (sscanf(p->key[i], "TagSpecification.%d.", &n) == 1 &&
		    n > max)
			max = n;
	return max;
}

/* The group of spec_whole a top-level name belongs to; 0: none. */
static int
spec_whole_group(const char *key, size_t len)
{
	size_t	 i;

	for (i = 0; i < QS_ARRAYLEN(spec_whole); i++)
		if (strlen(spec_whole[i].name) == len &&
		    strncmp(spec_whole[i].name, key, len) == 0)
			return spec_whole[i].group;
	return 0;
}

/*
 * The setting a generated key stands for: itself, or the list it is an
 * element of ("BlockDeviceMapping.1.Ebs.VolumeSize": the mapping list,
 * which the configuration gives whole).  Its length in key.
 */
static size_t
spec_unit(const char *key)
{
	const char	*p = key, *dot;

	while ((dot = strchr(p, '.')) != NULL) {
		if (isdigit((unsigned char)dot[1]))
			return (size_t)(dot - key);
		p = dot + 1;
	}
	return strlen(key);
}

/* Whether the configured parameters in p already set what key sets. */
static int
spec_configured(const struct ec2_params *p, const char *key)
{
	size_t		 i, u, top, ktop;
	int		 g;

	ktop = strcspn(key, ".");
	for (i = 0; i < p->n; i++) {
		if (strncmp(p->key[i], "TagSpecification.", 17) == 0)
			continue;	/* both kept: see below */
		u = spec_unit(p->key[i]);
		if (strncmp(key, p->key[i], u) == 0 &&
		    (key[u] == '\0' || key[u] == '.'))
			return 1;
		top = strcspn(p->key[i], ".");
		if ((g = spec_whole_group(p->key[i], top)) != 0 &&
		    g == spec_whole_group(key, ktop))
			return 1;
	}
	return 0;
}

/*
 * Applies a custom launch spec (a JSON object in the SDK's shape, the
 * ClearML app's "Custom Launch Spec") under the configured parameters in
 * p: the spec is the basis, and what the configuration sets wins.  A
 * spec key is left out when p sets the same parameter, or any element
 * of a list p gives (lists are given whole), or the other alternative of
 * the instance profile or the security groups.  Tag specifications are
 * added after qscale's, so the ownership tags stay.  Arrays flatten as
 * Name.N, booleans as true/false, null is no value.
 */
int
ec2_flatten_spec(const cJSON *spec, struct ec2_params *p, char *err,
    size_t errlen)
{
	struct spec_ctx	 s;
	size_t		 i, ngen = p->n;
	int		 base, n;
	char		 key[512];
	const char	*rest;

	if (!cJSON_IsObject(spec)) {
		snprintf(err, errlen, "custom_launch_spec: not a JSON object");
		return -1;
	}
	memset(&s, 0, sizeof(s));
	s.err = err;
	s.errlen = errlen;
	if (spec_walk(&s, spec, "", NULL, 0) == -1) {
		ec2_params_clear(&s.out);
		return -1;
	}
	base = tag_specs(p);
	for (i = 0; i < s.out.n; i++) {
		if (sscanf(s.out.key[i], "TagSpecification.%d.", &n) == 1 &&
		    (rest = strchr(s.out.key[i] + 17, '.')) != NULL) {
			snprintf(key, sizeof(key), "TagSpecification.%d%s",
			    base + n, rest);
			ec2_params_add(p, key, s.out.value[i]);
		} else {
			struct ec2_params gen = { p->key, p->value, ngen };

			if (!spec_configured(&gen, s.out.key[i]))
				ec2_params_add(p, s.out.key[i],
				    s.out.value[i]);
		}
	}
	ec2_params_clear(&s.out);
	return 0;
}
