/*
 * ec2_xml.c: EC2's XML responses and errors, read with libxml2, and the
 * one table that classifies error codes.
 *
 * Elements are matched by local name, so the namespace (present on EC2
 * responses, absent on the auth errors) does not matter.  Errors come in
 * four shapes: Response/Errors/Error, ErrorResponse/Errors/Error, an HTML
 * page from a failing front end, and an empty body; all become one
 * struct ec2_error.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "common.h"
#include "ec2.h"

#define XML_OPTS	(XML_PARSE_NONET | XML_PARSE_NOERROR | \
			 XML_PARSE_NOWARNING | XML_PARSE_NOCDATA)

static int
is_elem(const xmlNode *n, const char *name)
{
	return n != NULL && n->type == XML_ELEMENT_NODE &&
	    strcmp((const char *)n->name, name) == 0;
}

/* The first child element called name. */
static xmlNode *
child(const xmlNode *n, const char *name)
{
	xmlNode	*c;

	if (n == NULL)
		return NULL;
	for (c = n->children; c != NULL; c = c->next)
		if (is_elem(c, name))
			return c;
	return NULL;
}

/* The first element called name at or below n, depth first. */
static xmlNode *
descendant(xmlNode *n, const char *name, int depth)
{
	xmlNode	*c, *r;

	if (n == NULL || depth > 16)
		return NULL;
	if (is_elem(n, name))
		return n;
	for (c = n->children; c != NULL; c = c->next)
		if (c->type == XML_ELEMENT_NODE &&
		    (r = descendant(c, name, depth + 1)) != NULL)
			return r;
	return NULL;
}

/*
 * Copies the text of element n to buf, trimmed, control characters made
 * spaces.  Returns -1 when n is NULL, 1 when the text did not fit.
 */
static int
text_of(const xmlNode *n, char *buf, size_t len)
{
	xmlChar		*t;
	const char	*s;
	size_t		 i, j = 0, end;
	int		 rc = 0;

	buf[0] = '\0';
	if (n == NULL)
		return -1;
	if ((t = xmlNodeGetContent(n)) == NULL)
		return 0;
	s = (const char *)t;
	while (isspace((unsigned char)*s))
		s++;
	end = strlen(s);
	while (end > 0 && isspace((unsigned char)s[end - 1]))
		end--;
	for (i = 0; i < end; i++) {
		if (j + 1 >= len) {
			rc = 1;
			break;
		}
		buf[j++] = iscntrl((unsigned char)s[i]) ? ' ' : s[i];
	}
	buf[j] = '\0';
	xmlFree(t);
	return rc;
}

static int
child_text(const xmlNode *n, const char *name, char *buf, size_t len)
{
	return text_of(child(n, name), buf, len);
}

/* A newly allocated copy of the text of element n, or NULL. */
static char *
text_dup(const xmlNode *n)
{
	xmlChar	*t;
	char	*s;

	if (n == NULL || (t = xmlNodeGetContent(n)) == NULL)
		return NULL;
	s = xstrdup((const char *)t);
	xmlFree(t);
	return s;
}

static xmlDoc *
parse(const char *body, size_t len)
{
	while (body != NULL && len > 0 && isspace((unsigned char)*body)) {
		body++;
		len--;
	}
	if (body == NULL || len == 0 || len > INT32_MAX)
		return NULL;
	return xmlReadMemory(body, (int)len, "ec2.xml", NULL, XML_OPTS);
}

/* The root of a successful response, or NULL with the reason. */
static xmlNode *
response_root(xmlDoc *doc, char *err, size_t errlen)
{
	xmlNode	*root;

	if (doc == NULL) {
		snprintf(err, errlen, "the response is not XML");
		return NULL;
	}
	root = xmlDocGetRootElement(doc);
	if (root == NULL || is_elem(root, "Response") ||
	    is_elem(root, "ErrorResponse") || child(root, "Errors") != NULL) {
		snprintf(err, errlen, "the response is an error, not a result");
		return NULL;
	}
	return root;
}

static void
parse_tags(const xmlNode *set, struct ec2_instance *in)
{
	xmlNode	*it;
	size_t	 n = 0;

	for (it = set != NULL ? set->children : NULL; it != NULL; it = it->next)
		if (is_elem(it, "item"))
			n++;
	if (n == 0)
		return;
	in->tags = xcalloc(n, sizeof(*in->tags));
	for (it = set->children; it != NULL; it = it->next) {
		if (!is_elem(it, "item") || child(it, "key") == NULL)
			continue;
		in->tags[in->ntags].key = text_dup(child(it, "key"));
		in->tags[in->ntags].value = text_dup(child(it, "value"));
		if (in->tags[in->ntags].value == NULL)
			in->tags[in->ntags].value = xstrdup("");
		in->ntags++;
	}
}

static int
parse_instance(const xmlNode *it, struct ec2_instance *in, char *err,
    size_t errlen)
{
	xmlNode	*st = child(it, "instanceState");
	char	 buf[64];

	memset(in, 0, sizeof(*in));
	if (child_text(it, "instanceId", in->id, sizeof(in->id)) != 0 ||
	    in->id[0] == '\0') {
		snprintf(err, errlen, "an instance without a valid "
		    "instanceId");
		return -1;
	}
	child_text(st, "name", in->state, sizeof(in->state));
	if (child_text(st, "code", buf, sizeof(buf)) == 0)
		in->state_code = atoi(buf);
	else
		in->state_code = -1;
	child_text(it, "instanceType", in->type, sizeof(in->type));
	child_text(child(it, "placement"), "availabilityZone", in->az,
	    sizeof(in->az));
	child_text(it, "subnetId", in->subnet, sizeof(in->subnet));
	child_text(it, "imageId", in->image, sizeof(in->image));
	child_text(it, "privateIpAddress", in->private_ip,
	    sizeof(in->private_ip));
	child_text(child(it, "stateReason"), "code", in->state_reason,
	    sizeof(in->state_reason));
	child_text(it, "clientToken", in->client_token,
	    sizeof(in->client_token));
	if (child_text(it, "instanceLifecycle", buf, sizeof(buf)) == 0)
		in->spot = strcmp(buf, "spot") == 0;
	if (child_text(it, "launchTime", buf, sizeof(buf)) == 0 &&
	    parse_iso8601(buf, &in->launch_ms) == -1) {
		snprintf(err, errlen, "instance %s: bad launchTime '%s'",
		    in->id, buf);
		return -1;
	}
	parse_tags(child(it, "tagSet"), in);
	return 0;
}

static int
add_instances(const xmlNode *set, struct ec2_instance **v, size_t *n,
    size_t *cap, char *err, size_t errlen)
{
	xmlNode	*it;

	for (it = set != NULL ? set->children : NULL; it != NULL;
	    it = it->next) {
		if (!is_elem(it, "item"))
			continue;
		if (*n == *cap) {
			*cap = *cap > 0 ? *cap * 2 : 8;
			*v = xreallocarray(*v, *cap, sizeof(**v));
		}
		if (parse_instance(it, &(*v)[*n], err, errlen) == -1)
			return -1;
		(*n)++;
	}
	return 0;
}

/*
 * DescribeInstances (reservationSet/item/instancesSet/item) or
 * RunInstances (instancesSet/item).  *next gets nextToken, or NULL.
 */
int
ec2_parse_instances(const char *body, size_t len, struct ec2_instance **out,
    size_t *nout, char **next, char *err, size_t errlen)
{
	xmlDoc			*doc = parse(body, len);
	xmlNode			*root, *rs, *it, *tok;
	struct ec2_instance	*v = NULL;
	size_t			 n = 0, cap = 0;
	int			 rc = 0;

	*out = NULL;
	*nout = 0;
	if (next != NULL)
		*next = NULL;
	if ((root = response_root(doc, err, errlen)) == NULL) {
		xmlFreeDoc(doc);
		return -1;
	}
	if ((rs = child(root, "reservationSet")) != NULL) {
		for (it = rs->children; it != NULL && rc == 0; it = it->next)
			if (is_elem(it, "item"))
				rc = add_instances(child(it, "instancesSet"),
				    &v, &n, &cap, err, errlen);
	} else if (child(root, "instancesSet") != NULL)
		rc = add_instances(child(root, "instancesSet"), &v, &n, &cap,
		    err, errlen);
	else {
		snprintf(err, errlen, "%s has neither reservationSet nor "
		    "instancesSet", (const char *)root->name);
		rc = -1;
	}
	if (rc == 0 && next != NULL && (tok = child(root, "nextToken")) !=
	    NULL) {
		*next = text_dup(tok);
		if (*next != NULL && **next == '\0') {
			free(*next);
			*next = NULL;
		}
	}
	xmlFreeDoc(doc);
	if (rc == -1) {
		ec2_instances_free(v, n);
		return -1;
	}
	*out = v;
	*nout = n;
	return 0;
}

void
ec2_instances_free(struct ec2_instance *v, size_t n)
{
	size_t	 i, j;

	for (i = 0; v != NULL && i < n; i++) {
		for (j = 0; j < v[i].ntags; j++) {
			free(v[i].tags[j].key);
			free(v[i].tags[j].value);
		}
		free(v[i].tags);
	}
	free(v);
}

int
ec2_parse_terminate(const char *body, size_t len, struct ec2_term_result **out,
    size_t *nout, char *err, size_t errlen)
{
	xmlDoc			*doc = parse(body, len);
	xmlNode			*root, *set, *it;
	struct ec2_term_result	*v = NULL;
	size_t			 n = 0;

	*out = NULL;
	*nout = 0;
	if ((root = response_root(doc, err, errlen)) == NULL ||
	    (set = child(root, "instancesSet")) == NULL) {
		if (root != NULL)
			snprintf(err, errlen, "no instancesSet in %s",
			    (const char *)root->name);
		xmlFreeDoc(doc);
		return -1;
	}
	for (it = set->children; it != NULL; it = it->next) {
		if (!is_elem(it, "item"))
			continue;
		v = xreallocarray(v, n + 1, sizeof(*v));
		memset(&v[n], 0, sizeof(v[n]));
		if (child_text(it, "instanceId", v[n].id, sizeof(v[n].id)) !=
		    0 || v[n].id[0] == '\0') {
			snprintf(err, errlen, "a result without a valid "
			    "instanceId");
			free(v);
			xmlFreeDoc(doc);
			return -1;
		}
		child_text(child(it, "previousState"), "name",
		    v[n].previous_state, sizeof(v[n].previous_state));
		child_text(child(it, "currentState"), "name",
		    v[n].current_state, sizeof(v[n].current_state));
		n++;
	}
	xmlFreeDoc(doc);
	*out = v;
	*nout = n;
	return 0;
}

/* GetConsoleOutput: the output, decoded from base64 ("" when none yet). */
int
ec2_parse_console(const char *body, size_t len, char **out, char *err,
    size_t errlen)
{
	xmlDoc	*doc = parse(body, len);
	xmlNode	*root;
	char	*b64, *text;
	size_t	 i, n;

	*out = NULL;
	if ((root = response_root(doc, err, errlen)) == NULL) {
		xmlFreeDoc(doc);
		return -1;
	}
	if ((b64 = text_dup(child(root, "output"))) == NULL) {
		xmlFreeDoc(doc);
		*out = xstrdup("");
		return 0;
	}
	xmlFreeDoc(doc);
	text = ec2_base64_decode(b64, &n);
	free(b64);
	if (text == NULL) {
		snprintf(err, errlen, "the console output is not base64");
		return -1;
	}
	for (i = 0; i < n; i++)	/* a NUL would end the text early */
		if (text[i] == '\0')
			text[i] = ' ';
	*out = text;
	return 0;
}

/* "<title>...</title>" of an HTML page, for the message. */
static void
html_title(const char *body, size_t len, char *buf, size_t buflen)
{
	const char	*a, *b;
	char		*copy = xstrndup(body, len);

	buf[0] = '\0';
	if ((a = strcasestr(copy, "<title>")) != NULL &&
	    (b = strcasestr(a, "</title>")) != NULL)
		snprintf(buf, buflen, "%.*s", (int)(b - a - 7), a + 7);
	free(copy);
}

static void
error_without_code(long status, const char *body, size_t len,
    struct ec2_error *e)
{
	char	 title[128];

	while (len > 0 && isspace((unsigned char)*body)) {
		body++;
		len--;
	}
	if (len == 0)
		snprintf(e->message, sizeof(e->message), "HTTP %ld with an "
		    "empty body", status);
	else if (*body == '<' && ((len >= 14 &&
	    strncasecmp(body, "<!doctype html", 14) == 0) ||
	    (len >= 5 && strncasecmp(body, "<html", 5) == 0))) {
		html_title(body, len, title, sizeof(title));
		snprintf(e->message, sizeof(e->message), "HTTP %ld with an "
		    "HTML page%s%s%s", status, *title != '\0' ? " (\"" : "",
		    title, *title != '\0' ? "\")" : "");
	} else
		snprintf(e->message, sizeof(e->message), "HTTP %ld with a "
		    "body that is not an EC2 error", status);
}

/*
 * Fills e from an error response.  Returns 0 when an EC2 error code was
 * found, -1 otherwise (e is filled all the same: code "", a message that
 * says what came back).  The class is set from ec2_classify().
 */
int
ec2_parse_error(long status, const char *body, size_t len,
    struct ec2_error *e)
{
	xmlDoc	*doc = parse(body, len);
	xmlNode	*root, *er = NULL, *rid;
	int	 rc = -1;

	memset(e, 0, sizeof(*e));
	e->http_status = (int)status;
	root = doc != NULL ? xmlDocGetRootElement(doc) : NULL;
	if (root != NULL && (er = child(descendant(root, "Errors", 0),
	    "Error")) == NULL && is_elem(root, "Error"))
		er = root;
	if (er != NULL && child_text(er, "Code", e->code, sizeof(e->code)) !=
	    -1 && e->code[0] != '\0') {
		child_text(er, "Message", e->message, sizeof(e->message));
		rc = 0;
	} else
		error_without_code(status, body, len, e);
	if (root != NULL && ((rid = descendant(root, "RequestID", 0)) !=
	    NULL || (rid = descendant(root, "RequestId", 0)) != NULL ||
	    (rid = descendant(root, "requestId", 0)) != NULL))
		text_of(rid, e->request_id, sizeof(e->request_id));
	xmlFreeDoc(doc);
	e->cls = ec2_classify(e->code, (int)status);
	return rc;
}

/*
 * The one table of error codes.  Codes not in it are classified by their
 * shape (*.NotFound, *.Malformed, Invalid*) and then by HTTP status.
 * spot: a capacity code that means spot capacity when the launch was spot.
 */
static const struct {
	const char		*code;
	enum ec2_err_class	 cls;
	int			 spot;
} ec2_codes[] = {
	{ "DryRunOperation", EC2_OK, 0 },
	/* capacity: try the next subnet or zone */
	{ "InsufficientInstanceCapacity", EC2_ERR_CAPACITY, 1 },
	{ "InsufficientCapacity", EC2_ERR_CAPACITY, 1 },
	{ "InsufficientHostCapacity", EC2_ERR_CAPACITY, 1 },
	{ "InsufficientReservedInstanceCapacity", EC2_ERR_CAPACITY, 0 },
	{ "InsufficientFreeAddressesInSubnet", EC2_ERR_CAPACITY, 0 },
	{ "InsufficientAddressCapacity", EC2_ERR_CAPACITY, 0 },
	{ "Unsupported", EC2_ERR_CAPACITY, 1 },
	/* spot capacity: blackout, then on-demand */
	{ "SpotMaxPriceTooLow", EC2_ERR_SPOT_CAPACITY, 1 },
	{ "MaxSpotInstanceCountExceeded", EC2_ERR_SPOT_CAPACITY, 1 },
	{ "InsufficientSpotInstanceCapacity", EC2_ERR_SPOT_CAPACITY, 1 },
	{ "SpotCapacityNotAvailable", EC2_ERR_SPOT_CAPACITY, 1 },
	/* quota */
	{ "InstanceLimitExceeded", EC2_ERR_QUOTA, 0 },
	{ "VcpuLimitExceeded", EC2_ERR_QUOTA, 0 },
	{ "MaxSpotFleetRequestCountExceeded", EC2_ERR_QUOTA, 0 },
	{ "ResourceLimitExceeded", EC2_ERR_QUOTA, 0 },
	{ "VolumeLimitExceeded", EC2_ERR_QUOTA, 0 },
	{ "MaxIOPSLimitExceeded", EC2_ERR_QUOTA, 0 },
	{ "AddressLimitExceeded", EC2_ERR_QUOTA, 0 },
	{ "TagLimitExceeded", EC2_ERR_QUOTA, 0 },
	{ "PendingVerification", EC2_ERR_QUOTA, 0 },
	/* throttling: back off with jitter, retry */
	{ "RequestLimitExceeded", EC2_ERR_THROTTLE, 0 },
	{ "Throttling", EC2_ERR_THROTTLE, 0 },
	{ "ThrottlingException", EC2_ERR_THROTTLE, 0 },
	{ "ThrottledException", EC2_ERR_THROTTLE, 0 },
	{ "RequestThrottled", EC2_ERR_THROTTLE, 0 },
	{ "RequestThrottledException", EC2_ERR_THROTTLE, 0 },
	{ "TooManyRequestsException", EC2_ERR_THROTTLE, 0 },
	{ "EC2ThrottledException", EC2_ERR_THROTTLE, 0 },
	{ "BandwidthLimitExceeded", EC2_ERR_THROTTLE, 0 },
	{ "LimitExceededException", EC2_ERR_THROTTLE, 0 },
	{ "SlowDown", EC2_ERR_THROTTLE, 0 },
	/* transient: retry */
	{ "RequestTimeout", EC2_ERR_TRANSIENT, 0 },
	{ "RequestTimeoutException", EC2_ERR_TRANSIENT, 0 },
	{ "PriorRequestNotComplete", EC2_ERR_TRANSIENT, 0 },
	{ "InternalError", EC2_ERR_TRANSIENT, 0 },
	{ "InternalFailure", EC2_ERR_TRANSIENT, 0 },
	{ "ServiceUnavailable", EC2_ERR_TRANSIENT, 0 },
	{ "Unavailable", EC2_ERR_TRANSIENT, 0 },
	/* auth: no retry storm */
	{ "AuthFailure", EC2_ERR_AUTH, 0 },
	{ "UnauthorizedOperation", EC2_ERR_AUTH, 0 },
	{ "AccessDenied", EC2_ERR_AUTH, 0 },
	{ "AccessDeniedException", EC2_ERR_AUTH, 0 },
	{ "InvalidClientTokenId", EC2_ERR_AUTH, 0 },
	{ "InvalidAccessKeyId", EC2_ERR_AUTH, 0 },
	{ "SignatureDoesNotMatch", EC2_ERR_AUTH, 0 },
	{ "IncompleteSignature", EC2_ERR_AUTH, 0 },
	{ "MissingAuthenticationToken", EC2_ERR_AUTH, 0 },
	{ "AuthMissingFailure", EC2_ERR_AUTH, 0 },
	{ "ExpiredToken", EC2_ERR_AUTH, 0 },
	{ "ExpiredTokenException", EC2_ERR_AUTH, 0 },
	{ "RequestExpired", EC2_ERR_AUTH, 0 },
	{ "InvalidSecurity", EC2_ERR_AUTH, 0 },
	{ "UnrecognizedClientException", EC2_ERR_AUTH, 0 },
	{ "OptInRequired", EC2_ERR_AUTH, 0 },
	{ "Blocked", EC2_ERR_AUTH, 0 },
	/* invalid parameter: log the field, back off the resource */
	{ "InvalidParameterValue", EC2_ERR_INVALID, 0 },
	{ "InvalidParameterCombination", EC2_ERR_INVALID, 0 },
	{ "InvalidParameter", EC2_ERR_INVALID, 0 },
	{ "MissingParameter", EC2_ERR_INVALID, 0 },
	{ "UnknownParameter", EC2_ERR_INVALID, 0 },
	{ "InvalidQueryParameter", EC2_ERR_INVALID, 0 },
	{ "MalformedQueryString", EC2_ERR_INVALID, 0 },
	{ "ValidationError", EC2_ERR_INVALID, 0 },
	{ "InvalidAction", EC2_ERR_INVALID, 0 },
	{ "IdempotentParameterMismatch", EC2_ERR_INVALID, 0 },
	{ "InvalidAMIID.Unavailable", EC2_ERR_INVALID, 0 },
	{ "InvalidBlockDeviceMapping", EC2_ERR_INVALID, 0 },
	/* not found */
	{ "NoSuchEntity", EC2_ERR_NOT_FOUND, 0 },
};

static int
has_suffix(const char *s, const char *suffix)
{
	size_t	 n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* "Server.InsufficientInstanceCapacity" is the same code. */
static const char *
bare_code(const char *code)
{
	if (strncmp(code, "Server.", 7) == 0)
		return code + 7;
	if (strncmp(code, "Client.", 7) == 0)
		return code + 7;
	return code;
}

enum ec2_err_class
ec2_classify(const char *code, int status)
{
	size_t	 i;

	if (code != NULL && *code != '\0') {
		code = bare_code(code);
		for (i = 0; i < QS_ARRAYLEN(ec2_codes); i++)
			if (strcmp(ec2_codes[i].code, code) == 0)
				return ec2_codes[i].cls;
		if (has_suffix(code, ".NotFound"))
			return EC2_ERR_NOT_FOUND;
		if (has_suffix(code, ".Malformed") ||
		    strncmp(code, "Invalid", 7) == 0)
			return EC2_ERR_INVALID;
	}
	if (status == 429)
		return EC2_ERR_THROTTLE;
	if (status == 0 || status >= 500)
		return EC2_ERR_TRANSIENT;
	if (code == NULL || *code == '\0') {
		if (status == 401 || status == 403)
			return EC2_ERR_AUTH;
		if (status == 404)
			return EC2_ERR_NOT_FOUND;
	}
	return EC2_ERR_UNKNOWN;
}

/* Whether a capacity code means spot capacity in a spot launch. */
int
ec2_code_spot_sensitive(const char *code)
{
	size_t	 i;

	if (code == NULL)
		return 0;
	code = bare_code(code);
	for (i = 0; i < QS_ARRAYLEN(ec2_codes); i++)
		if (strcmp(ec2_codes[i].code, code) == 0)
			return ec2_codes[i].spot;
	return 0;
}

const char *
ec2_err_class_name(enum ec2_err_class cls)
{
	switch (cls) {
	case EC2_OK:
		return "ok";
	case EC2_ERR_CAPACITY:
		return "capacity";
	case EC2_ERR_SPOT_CAPACITY:
		return "spot capacity";
	case EC2_ERR_QUOTA:
		return "quota";
	case EC2_ERR_THROTTLE:
		return "throttling";
	case EC2_ERR_TRANSIENT:
		return "transient";
	case EC2_ERR_AUTH:
		return "auth";
	case EC2_ERR_INVALID:
		return "invalid parameter";
	case EC2_ERR_NOT_FOUND:
		return "not found";
	case EC2_ERR_UNKNOWN:
		break;
	}
	return "unknown";
}
