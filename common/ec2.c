/*
 * ec2.c: the EC2 Query API client on the libevent loop.
 *
 * A call builds its parameters once, then for each attempt asks the
 * credentials provider for keys, signs the body with the time of that
 * attempt and posts it.  Throttling and transient errors are retried on
 * a timer with capped exponential backoff and full jitter, at most
 * aws.max_attempts times and only while the client-wide retry budget
 * (a token bucket) lasts; everything else goes back to the caller at
 * once.  A retried RunInstances sends the same parameters, ClientToken
 * included, so EC2 launches its instances once.
 *
 * DescribeInstances follows every page; TerminateInstances goes out in
 * batches and takes the ids EC2 does not know out of a batch instead of
 * failing the others with them.
 */
#include <sys/queue.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "common.h"
#include "ec2.h"
#include "http.h"

#define EC2_CONTENT_TYPE \
	"application/x-www-form-urlencoded; charset=utf-8"
#define EC2_MAX_BODY		(32 * 1024 * 1024)
#define EC2_MAX_PAGES		10000

enum ec2_act {
	ACT_DESCRIBE,
	ACT_RUN,
	ACT_TERMINATE,
	ACT_TAGS,
	ACT_CONSOLE,
	ACT_OTHER,		/* ec2_call(): the action is in the body */
	ACT_N
};

static const char *const act_names[ACT_N] = {
	"DescribeInstances", "RunInstances", "TerminateInstances",
	"CreateTags", "GetConsoleOutput", "Other",
};

static const int64_t latency_bounds[] = EC2_LATENCY_BOUNDS_MS;

struct ec2_req;
typedef void	(*req_done_fn)(struct ec2_req *, const struct ec2_error *,
		    const struct http_resp *);

/* One API call: its attempts, retries included. */
struct ec2_req {
	TAILQ_ENTRY(ec2_req)	 entry;
	struct ec2_client	*c;
	enum ec2_act		 act;
	char			*body;		/* user data in it: wiped */
	int			 attempts;
	int			 dry_run;
	int			 spot;
	struct http_call	*http;
	struct aws_creds_wait	*wait;
	struct event		*ev;		/* retry, deferred error */
	struct ec2_error	 deferred;	/* what ev delivers */
	int			 failed;
	int			 retry_wait;	/* ev is a backoff timer */
	int64_t			 sent_mono;
	req_done_fn		 done;
	void			*ctx;
	void			(*ctx_free)(void *);
};
TAILQ_HEAD(ec2_reqs, ec2_req);

struct ec2_client {
	struct event_base		*base;
	struct http_client		*http;
	struct aws_creds_provider	*creds;
	char				*region;
	char				*endpoint;
	char				*host;
	char				*path;
	int				 max_attempts;
	int64_t				 base_delay;
	int64_t				 max_delay;
	int64_t				 timeout;
	int				 page_size;
	size_t				 max_body;
	int				 budget;
	int				 budget_max;
	struct ec2_call_stats		 stats[ACT_N];
	struct ec2_reqs			 reqs;
};

static void	req_send(struct ec2_req *);

/* Host header and path of the endpoint URL; -1 when it is not one. */
static int
endpoint_parse(struct ec2_client *c, char *err, size_t errlen)
{
	CURLU	*u = curl_url();
	char	*scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
	int	 rc = -1;

	if (u == NULL || curl_url_set(u, CURLUPART_URL, c->endpoint, 0) !=
	    CURLUE_OK || curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) !=
	    CURLUE_OK || curl_url_get(u, CURLUPART_HOST, &host, 0) !=
	    CURLUE_OK)
		snprintf(err, errlen, "aws.endpoint '%s' is not a URL",
		    c->endpoint);
	else if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
		snprintf(err, errlen, "aws.endpoint '%s': not http or https",
		    c->endpoint);
	else {
		if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK &&
		    !(strcmp(scheme, "http") == 0 && strcmp(port, "80") ==
		    0) && !(strcmp(scheme, "https") == 0 &&
		    strcmp(port, "443") == 0))
			xasprintf(&c->host, "%s:%s", host, port);
		else
			c->host = xstrdup(host);
		if (curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK)
			c->path = xstrdup(path);
		else
			c->path = xstrdup("/");
		rc = 0;
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
	return rc;
}

static void
client_limits(struct ec2_client *c, const struct conf_aws *aws)
{
	size_t	 i;

	c->max_attempts = aws->max_attempts > 0 ? aws->max_attempts :
	    EC2_DEFAULT_ATTEMPTS;
	c->base_delay = aws->retry_base_delay > 0 ? aws->retry_base_delay :
	    EC2_DEFAULT_BASE_DELAY;
	c->max_delay = aws->retry_max_delay > 0 ? aws->retry_max_delay :
	    EC2_DEFAULT_MAX_DELAY;
	c->timeout = aws->request_timeout > 0 ? aws->request_timeout :
	    HTTP_DEFAULT_TIMEOUT_MS;
	c->page_size = EC2_PAGE_SIZE;
	c->max_body = EC2_MAX_BODY;
	c->budget = c->budget_max = EC2_RETRY_BUDGET;
	for (i = 0; i < ACT_N; i++)
		snprintf(c->stats[i].action, sizeof(c->stats[i].action), "%s",
		    act_names[i]);
}

/*
 * A client for the configuration's region and endpoint (default
 * https://ec2.REGION.amazonaws.com/), with its own credentials provider.
 * Returns NULL with the reason in err.
 */
struct ec2_client *
ec2_client_new(struct event_base *base, struct http_client *http,
    const struct qscale_conf *conf, char *err, size_t errlen)
{
	struct ec2_client	*c;
	const char		*region = conf->aws.region;

	if (region == NULL || *region == '\0') {
		snprintf(err, errlen, "aws.region is not set (nor AWS_REGION)");
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->base = base;
	c->http = http;
	TAILQ_INIT(&c->reqs);
	c->region = xstrdup(region);
	if (conf->aws.endpoint != NULL && *conf->aws.endpoint != '\0')
		c->endpoint = xstrdup(conf->aws.endpoint);
	else
		xasprintf(&c->endpoint, "https://ec2.%s.amazonaws.com/",
		    region);
	if (endpoint_parse(c, err, errlen) == -1) {
		free(c->region);
		free(c->endpoint);
		free(c);
		return NULL;
	}
	client_limits(c, &conf->aws);
	c->creds = aws_creds_provider_new(base, http, conf);
	return c;
}

static void
req_free(struct ec2_req *r)
{
	TAILQ_REMOVE(&r->c->reqs, r, entry);
	http_call_cancel(r->http);
	aws_creds_cancel(r->wait);
	if (r->ev != NULL)
		event_free(r->ev);
	freezero_str(r->body);
	if (r->ctx != NULL && r->ctx_free != NULL)
		r->ctx_free(r->ctx);
	free(r);
}

/* Calls in flight are dropped; their callbacks never run. */
void
ec2_client_free(struct ec2_client *c)
{
	struct ec2_req	*r;

	if (c == NULL)
		return;
	while ((r = TAILQ_FIRST(&c->reqs)) != NULL)
		req_free(r);
	aws_creds_provider_free(c->creds);
	free(c->region);
	free(c->endpoint);
	free(c->host);
	free(c->path);
	free(c);
}

const char *
ec2_client_region(const struct ec2_client *c)
{
	return c->region;
}

const char *
ec2_client_endpoint(const struct ec2_client *c)
{
	return c->endpoint;
}

struct aws_creds_provider *
ec2_client_creds(struct ec2_client *c)
{
	return c->creds;
}

/* DescribeInstances MaxResults (EC2 takes 5 to 1000). */
void
ec2_client_set_page_size(struct ec2_client *c, int n)
{
	if (n > 0)
		c->page_size = n;
}

/*
 * The retry budget, in tokens.  0 stops every retry, including those
 * waiting for their backoff: they end now with their last error (a
 * worker process that is stopping does this).
 */
void
ec2_client_set_retry_budget(struct ec2_client *c, int tokens)
{
	struct ec2_req	*r;

	if (tokens < 0)
		return;
	c->budget = c->budget_max = tokens;
	if (tokens > 0)
		return;
	TAILQ_FOREACH(r, &c->reqs, entry) {
		if (!r->retry_wait)
			continue;
		r->retry_wait = 0;
		r->failed = 1;
		timer_add_ms(r->ev, 0);
	}
}

void
ec2_client_set_max_body(struct ec2_client *c, size_t n)
{
	if (n > 0)
		c->max_body = n;
}

int
ec2_client_retry_budget(const struct ec2_client *c)
{
	return c->budget;
}

const struct ec2_call_stats *
ec2_client_stats(const struct ec2_client *c, size_t *n)
{
	*n = ACT_N;
	return c->stats;
}

const char *
ec2_instance_tag(const struct ec2_instance *in, const char *key)
{
	size_t	 i;

	for (i = 0; i < in->ntags; i++)
		if (str_eq(in->tags[i].key, key))
			return in->tags[i].value;
	return NULL;
}

/*
 * Full jitter: a delay in [0, min(max, base * 2^retry)], retry counting
 * from 0; rnd is a uniformly random number.
 */
int64_t
ec2_retry_delay_ms(int retry, int64_t base, int64_t max, uint32_t rnd)
{
	int64_t	 cap = base;
	int	 i;

	for (i = 0; i < retry && cap < max; i++)
		cap *= 2;
	if (cap > max)
		cap = max;
	if (cap <= 0)
		return 0;
	return (int64_t)(rnd % (uint64_t)(cap + 1));
}

static void
stats_attempt(struct ec2_req *r, int failed)
{
	struct ec2_call_stats	*s = &r->c->stats[r->act];
	int64_t			 ms = mono_ms() - r->sent_mono;
	size_t			 i;

	s->calls++;
	if (failed)
		s->errors++;
	s->latency_ms_sum += (uint64_t)ms;
	for (i = 0; i < QS_ARRAYLEN(latency_bounds); i++)
		if (ms <= latency_bounds[i])
			break;
	s->latency_hist[i]++;
}

static void
req_deferred_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ec2_req		*r = arg;
	struct ec2_error	 e;

	(void)fd;
	(void)what;
	r->retry_wait = 0;
	if (r->failed) {
		/* the handler frees r: hand it a copy */
		e = r->deferred;
		r->failed = 0;
		r->done(r, &e, NULL);
	} else
		req_send(r);
}

/* Starts a call; params are consumed. */
static struct ec2_req *
req_new(struct ec2_client *c, enum ec2_act act, struct ec2_params *params,
    req_done_fn done, void *ctx, void (*ctx_free)(void *))
{
	struct ec2_params	 all = { NULL, NULL, 0 };
	struct ec2_req		*r;
	size_t			 i;

	r = xcalloc(1, sizeof(*r));
	r->c = c;
	r->act = act;
	r->done = done;
	r->ctx = ctx;
	r->ctx_free = ctx_free;
	r->ev = evtimer_new(c->base, req_deferred_cb, r);
	if (act != ACT_OTHER)
		ec2_params_add(&all, "Action", act_names[act]);
	ec2_params_add(&all, "Version", EC2_API_VERSION);
	for (i = 0; params != NULL && i < params->n; i++)
		ec2_params_add(&all, params->key[i], params->value[i]);
	r->body = ec2_params_encode(&all);
	ec2_params_clear(&all);
	if (params != NULL)
		ec2_params_clear(params);
	TAILQ_INSERT_TAIL(&c->reqs, r, entry);
	return r;
}

static void
req_start(struct ec2_req *r)
{
	req_send(r);
}

/* An error found before anything was sent, delivered from the loop. */
static void
req_fail_later(struct ec2_req *r, enum ec2_err_class cls, const char *msg)
{
	memset(&r->deferred, 0, sizeof(r->deferred));
	r->deferred.cls = cls;
	snprintf(r->deferred.message, sizeof(r->deferred.message), "%s",
	    msg);
	mask_buf(r->deferred.message, sizeof(r->deferred.message));
	r->failed = 1;
	timer_add_ms(r->ev, 0);
}

static int
req_retry(struct ec2_req *r, const struct ec2_error *e, int timed_out)
{
	struct ec2_client	*c = r->c;
	int			 cost = timed_out ? EC2_RETRY_COST_TIMEOUT :
				    EC2_RETRY_COST;
	int64_t			 delay;

	if (e->cls != EC2_ERR_THROTTLE && e->cls != EC2_ERR_TRANSIENT)
		return 0;
	if (r->attempts >= c->max_attempts)
		return 0;
	if (c->budget < cost) {
		log_warnx("ec2: %s: %s (%s): not retried, the retry budget "
		    "is exhausted", act_names[r->act], *e->code != '\0' ?
		    e->code : e->message, ec2_err_class_name(e->cls));
		return 0;
	}
	c->budget -= cost;
	delay = ec2_retry_delay_ms(r->attempts - 1, c->base_delay,
	    c->max_delay, arc4random());
	c->stats[r->act].retries++;
	r->deferred = *e;	/* what ends it if retries are stopped */
	r->retry_wait = 1;
	log_debug("ec2: %s: %s (%s) on attempt %d of %d, retrying in "
	    "%lld ms", act_names[r->act], *e->code != '\0' ? e->code :
	    e->message, ec2_err_class_name(e->cls), r->attempts,
	    c->max_attempts, (long long)delay);
	timer_add_ms(r->ev, delay);
	return 1;
}

static void
req_error(struct ec2_req *r, const struct http_resp *resp,
    struct ec2_error *e)
{
	const char	*rid;

	if (resp->too_large) {
		memset(e, 0, sizeof(*e));
		e->cls = EC2_ERR_UNKNOWN;
		e->http_status = (int)resp->status;
		snprintf(e->message, sizeof(e->message), "the response was "
		    "cut off: larger than %zu bytes", r->c->max_body);
	} else if (http_tls_refused(resp)) {
		memset(e, 0, sizeof(*e));
		e->cls = EC2_ERR_UNKNOWN;
		snprintf(e->message, sizeof(e->message), "TLS: %s",
		    resp->error);
	} else if (resp->curl_code != CURLE_OK || resp->status == 0) {
		memset(e, 0, sizeof(*e));
		e->cls = EC2_ERR_TRANSIENT;
		e->http_status = (int)resp->status;
		snprintf(e->message, sizeof(e->message), "%s: %s",
		    resp->curl_code == CURLE_OPERATION_TIMEDOUT ? "timeout" :
		    "network error", resp->error);
	} else
		ec2_parse_error(resp->status, resp->body, resp->body_len, e);
	if ((rid = http_resp_header(resp, "x-amzn-requestid")) != NULL ||
	    (rid = http_resp_header(resp, "x-amz-request-id")) != NULL)
		snprintf(e->request_id, sizeof(e->request_id), "%s", rid);
	if (r->act == ACT_RUN && r->spot && e->cls == EC2_ERR_CAPACITY &&
	    ec2_code_spot_sensitive(e->code))
		e->cls = EC2_ERR_SPOT_CAPACITY;
	mask_buf(e->message, sizeof(e->message));
	e->attempts = r->attempts;
}

static void
req_http_cb(const struct http_resp *resp, void *arg)
{
	struct ec2_req		*r = arg;
	struct ec2_client	*c = r->c;
	struct ec2_error	 e;
	const char		*rid;
	int			 ok;

	r->http = NULL;
	ok = resp->curl_code == CURLE_OK && resp->status >= 200 &&
	    resp->status < 300;
	if (!ok)
		req_error(r, resp, &e);
	if (!ok && r->dry_run && e.cls == EC2_OK)
		ok = 1;	/* DryRunOperation: it would have worked */
	stats_attempt(r, !ok);
	rid = http_resp_header(resp, "x-amzn-requestid");
	log_debug("ec2: %s: HTTP %ld in %lld ms, attempt %d%s%s",
	    act_names[r->act], resp->status, (long long)resp->elapsed_ms,
	    r->attempts, rid != NULL ? ", request id " : "",
	    rid != NULL ? rid : "");
	if (ok) {
		if (c->budget < c->budget_max)
			c->budget++;
		r->done(r, NULL, resp);
		return;
	}
	if (req_retry(r, &e, resp->curl_code == CURLE_OPERATION_TIMEDOUT))
		return;
	r->done(r, &e, resp);
}

static void
req_post(struct ec2_req *r, const struct aws_creds *cr)
{
	struct ec2_client	*c = r->c;
	struct sigv4_req	 sr;
	struct sigv4_sig	 sig;
	struct http_req		 hr;
	char			 date[32], *h[6] = { NULL };
	const char		*hdrs[7];
	size_t			 i, n = 0;

	sigv4_amz_date(now_ms(), date, sizeof(date));
	memset(&sr, 0, sizeof(sr));
	sr.method = "POST";
	sr.host = c->host;
	sr.path = c->path;
	sr.query = "";
	sr.content_type = EC2_CONTENT_TYPE;
	sr.amz_date = date;
	sr.region = c->region;
	sr.service = "ec2";
	sr.body = r->body;
	sr.body_len = strlen(r->body);
	if (sigv4_sign(cr, &sr, &sig) == -1) {
		req_fail_later(r, EC2_ERR_AUTH, "cannot sign the request");
		return;
	}
	xasprintf(&h[n++], "Host: %s", c->host);
	xasprintf(&h[n++], "Content-Type: %s", EC2_CONTENT_TYPE);
	xasprintf(&h[n++], "X-Amz-Date: %s", date);
	if (cr->session_token != NULL && *cr->session_token != '\0')
		xasprintf(&h[n++], "X-Amz-Security-Token: %s",
		    cr->session_token);
	xasprintf(&h[n++], "Authorization: %s", sig.authorization);
	for (i = 0; i < n; i++)
		hdrs[i] = h[i];
	hdrs[n] = NULL;
	memset(&hr, 0, sizeof(hr));
	hr.method = "POST";
	hr.url = c->endpoint;
	hr.headers = hdrs;
	hr.body = r->body;
	hr.body_len = sr.body_len;
	hr.timeout_ms = c->timeout;
	hr.max_body = c->max_body;
	r->attempts++;
	r->sent_mono = mono_ms();
	r->http = http_request(c->http, &hr, req_http_cb, r);
	for (i = 0; i < n; i++)
		freezero_str(h[i]);
	sigv4_sig_clear(&sig);
	if (r->http == NULL)
		req_fail_later(r, EC2_ERR_TRANSIENT, "cannot start the HTTP "
		    "request");
}

static void
req_creds_cb(const char *err, void *arg)
{
	struct ec2_req		*r = arg;
	const struct aws_creds	*cr;
	struct ec2_error	 e;

	r->wait = NULL;
	if (err != NULL || (cr = aws_creds_current(r->c->creds)) == NULL) {
		memset(&e, 0, sizeof(e));
		e.cls = EC2_ERR_AUTH;
		snprintf(e.message, sizeof(e.message), "credentials: %s",
		    err != NULL ? err : "none usable");
		mask_buf(e.message, sizeof(e.message));
		e.attempts = r->attempts;
		r->done(r, &e, NULL);
		return;
	}
	req_post(r, cr);
}

static void
req_send(struct ec2_req *r)
{
	r->wait = aws_creds_get(r->c->creds, req_creds_cb, r);
}

/* Takes the context out of a finished call and frees the call. */
static void *
req_finish(struct ec2_req *r)
{
	void	*ctx = r->ctx;

	r->ctx = NULL;
	req_free(r);
	return ctx;
}

static void
parse_failed(struct ec2_error *e, enum ec2_act act, const char *why)
{
	memset(e, 0, sizeof(*e));
	e->cls = EC2_ERR_UNKNOWN;
	e->http_status = 200;
	e->attempts = 1;
	snprintf(e->message, sizeof(e->message), "%s: bad response: %s",
	    act_names[act], why);
}

/* DescribeInstances */

struct desc_ctx {
	struct ec2_client	*c;
	struct ec2_params	 filters;
	struct ec2_instance	*v;
	size_t			 n;
	char			*next;
	int			 pages;
	ec2_instances_fn	 cb;
	void			*arg;
};

static void
desc_free(void *arg)
{
	struct desc_ctx	*d = arg;

	ec2_params_clear(&d->filters);
	ec2_instances_free(d->v, d->n);
	free(d->next);
	free(d);
}

static void	desc_done(struct ec2_req *, const struct ec2_error *,
		    const struct http_resp *);

static void
desc_page(struct desc_ctx *d)
{
	struct ec2_params	 p = { NULL, NULL, 0 };
	size_t			 i;

	for (i = 0; i < d->filters.n; i++)
		ec2_params_add(&p, d->filters.key[i], d->filters.value[i]);
	ec2_params_addf(&p, "MaxResults", "%d", d->c->page_size);
	if (d->next != NULL)
		ec2_params_add(&p, "NextToken", d->next);
	d->pages++;
	req_start(req_new(d->c, ACT_DESCRIBE, &p, desc_done, d, desc_free));
}

static void
desc_finish(struct desc_ctx *d, const struct ec2_error *e)
{
	if (e != NULL)
		d->cb(e, NULL, 0, d->arg);
	else
		d->cb(NULL, d->v, d->n, d->arg);
	desc_free(d);
}

static void
desc_done(struct ec2_req *r, const struct ec2_error *err,
    const struct http_resp *resp)
{
	struct desc_ctx		*d = req_finish(r);
	struct ec2_instance	*v;
	struct ec2_error	 e;
	size_t			 n;
	char			*next, why[256];

	if (err != NULL) {
		desc_finish(d, err);
		return;
	}
	if (ec2_parse_instances(resp->body, resp->body_len, &v, &n, &next,
	    why, sizeof(why)) == -1) {
		parse_failed(&e, ACT_DESCRIBE, why);
		desc_finish(d, &e);
		return;
	}
	if (n > 0) {		/* an empty page has no array at all */
		d->v = xreallocarray(d->v, d->n + n, sizeof(*d->v));
		memcpy(d->v + d->n, v, n * sizeof(*v));
		d->n += n;
	}
	free(v);
	if (next != NULL && (str_eq(next, d->next) ||
	    d->pages >= EC2_MAX_PAGES)) {
		free(next);
		parse_failed(&e, ACT_DESCRIBE, "the pages do not end");
		desc_finish(d, &e);
		return;
	}
	free(d->next);
	d->next = next;
	if (next != NULL)
		desc_page(d);
	else
		desc_finish(d, NULL);
}

/*
 * Every instance matching the filters, all pages.  The instances are
 * valid during the callback only.
 */
int
ec2_describe_instances(struct ec2_client *c, const struct ec2_filter *f,
    size_t nf, ec2_instances_fn cb, void *arg)
{
	struct desc_ctx	*d;
	char		 key[64];
	size_t		 i, j;

	if (c == NULL || cb == NULL || (nf > 0 && f == NULL))
		return -1;
	d = xcalloc(1, sizeof(*d));
	d->c = c;
	d->cb = cb;
	d->arg = arg;
	for (i = 0; i < nf; i++) {
		snprintf(key, sizeof(key), "Filter.%zu.Name", i + 1);
		ec2_params_add(&d->filters, key, f[i].name);
		for (j = 0; j < f[i].nvalues; j++) {
			snprintf(key, sizeof(key), "Filter.%zu.Value.%zu",
			    i + 1, j + 1);
			ec2_params_add(&d->filters, key, f[i].values[j]);
		}
	}
	desc_page(d);
	return 0;
}

/* RunInstances */

struct run_ctx {
	ec2_instances_fn	 cb;
	void			*arg;
	int			 dry_run;
};

static void
run_done(struct ec2_req *r, const struct ec2_error *err,
    const struct http_resp *resp)
{
	struct run_ctx		*x;
	struct ec2_instance	*v = NULL;
	struct ec2_error	 e;
	size_t			 n = 0;
	char			 why[256];
	int			 ok2xx;

	ok2xx = resp != NULL && resp->status >= 200 && resp->status < 300;
	x = req_finish(r);
	if (err != NULL)
		x->cb(err, NULL, 0, x->arg);
	else if (x->dry_run && !ok2xx)
		x->cb(NULL, NULL, 0, x->arg);
	else if (ec2_parse_instances(resp->body, resp->body_len, &v, &n,
	    NULL, why, sizeof(why)) == -1) {
		parse_failed(&e, ACT_RUN, why);
		x->cb(&e, NULL, 0, x->arg);
	} else
		x->cb(NULL, v, n, x->arg);
	ec2_instances_free(v, n);
	free(x);
}

static void
client_token(char *buf, size_t len)
{
	unsigned char	 rnd[16];

	arc4random_buf(rnd, sizeof(rnd));
	snprintf(buf, len, "qscale-");
	sigv4_hex(rnd, sizeof(rnd), buf + 7);
}

/*
 * Launches.  Without a ClientToken in l, one is made, so that retries
 * cannot launch twice.  A spot launch that fails for capacity fails with
 * EC2_ERR_SPOT_CAPACITY.  The instances are valid during the callback.
 */
int
ec2_run_instances(struct ec2_client *c, const struct ec2_launch *l,
    ec2_instances_fn cb, void *arg)
{
	struct ec2_params	 p = { NULL, NULL, 0 };
	struct ec2_launch	 copy;
	struct run_ctx		*x;
	struct ec2_req		*r;
	char			 err[512], token[48];

	if (c == NULL || l == NULL || cb == NULL)
		return -1;
	copy = *l;
	if (copy.client_token == NULL || *copy.client_token == '\0') {
		client_token(token, sizeof(token));
		copy.client_token = token;
	}
	x = xcalloc(1, sizeof(*x));
	x->cb = cb;
	x->arg = arg;
	x->dry_run = l->dry_run;
	if (ec2_build_run_instances(&copy, &p, err, sizeof(err)) == -1) {
		r = req_new(c, ACT_RUN, NULL, run_done, x, free);
		req_fail_later(r, EC2_ERR_INVALID, err);
		return 0;
	}
	r = req_new(c, ACT_RUN, &p, run_done, x, free);
	r->dry_run = l->dry_run;
	r->spot = l->spot;
	req_start(r);
	return 0;
}

/* TerminateInstances */

struct term_ctx {
	struct ec2_client	*c;
	char			**ids;
	size_t			  nids;
	size_t			  next;		/* first id of the next one */
	char			**batch;	/* the batch in flight */
	size_t			  nbatch;
	struct ec2_term_result	 *res;
	size_t			  nres;
	ec2_terminate_fn	  cb;
	void			 *arg;
};

static void
term_free(void *arg)
{
	struct term_ctx	*t = arg;
	size_t		 i;

	for (i = 0; i < t->nids; i++)
		free(t->ids[i]);
	free(t->ids);
	free(t->batch);
	free(t->res);
	free(t);
}

static void	term_done(struct ec2_req *, const struct ec2_error *,
		    const struct http_resp *);

static void
term_send(struct term_ctx *t)
{
	struct ec2_params	 p = { NULL, NULL, 0 };
	char			 key[32];
	size_t			 i;

	for (i = 0; i < t->nbatch; i++) {
		snprintf(key, sizeof(key), "InstanceId.%zu", i + 1);
		ec2_params_add(&p, key, t->batch[i]);
	}
	req_start(req_new(t->c, ACT_TERMINATE, &p, term_done, t, term_free));
}

/* The next batch, or 0 when every id has been sent. */
static int
term_next_batch(struct term_ctx *t)
{
	size_t	 i;

	if (t->next >= t->nids)
		return 0;
	t->nbatch = QS_MIN(t->nids - t->next, (size_t)EC2_TERMINATE_BATCH);
	for (i = 0; i < t->nbatch; i++)
		t->batch[i] = t->ids[t->next + i];
	t->next += t->nbatch;
	return 1;
}

static void
term_add_result(struct term_ctx *t, const char *id, int not_found)
{
	struct ec2_term_result	*res;

	t->res = xreallocarray(t->res, t->nres + 1, sizeof(*t->res));
	res = &t->res[t->nres++];
	memset(res, 0, sizeof(*res));
	snprintf(res->id, sizeof(res->id), "%s", id);
	res->not_found = not_found;
}

/* Whether id appears in s as a whole word. */
static int
mentions(const char *s, const char *id)
{
	size_t		 n = strlen(id);
	const char	*p;

	for (p = s; (p = strstr(p, id)) != NULL; p += n) {
		if ((p == s || !isalnum((unsigned char)p[-1])) &&
		    !isalnum((unsigned char)p[n]) && p[n] != '-')
			return 1;
	}
	return 0;
}

/*
 * InvalidInstanceID.NotFound (or .Malformed) names the ids EC2 does not
 * know: mark them and keep the rest of the batch.  Returns the number
 * taken out.
 */
static size_t
term_drop_unknown(struct term_ctx *t, const struct ec2_error *e)
{
	size_t	 i, j = 0, dropped = 0;

	if (strcmp(e->code, "InvalidInstanceID.NotFound") != 0 &&
	    strcmp(e->code, "InvalidInstanceID.Malformed") != 0)
		return 0;
	for (i = 0; i < t->nbatch; i++) {
		if (mentions(e->message, t->batch[i])) {
			term_add_result(t, t->batch[i], 1);
			dropped++;
		} else
			t->batch[j++] = t->batch[i];
	}
	t->nbatch = j;
	if (dropped > 0)
		log_info("ec2: TerminateInstances: %zu id%s unknown to EC2, "
		    "%zu left in the batch", dropped, dropped == 1 ? "" : "s",
		    j);
	return dropped;
}

static void
term_finish(struct term_ctx *t, const struct ec2_error *e)
{
	t->cb(e, t->res, t->nres, t->arg);
	term_free(t);
}

static void
term_done(struct ec2_req *r, const struct ec2_error *err,
    const struct http_resp *resp)
{
	struct term_ctx		*t = req_finish(r);
	struct ec2_term_result	*v;
	struct ec2_error	 e;
	size_t			 n, i;
	char			 why[256];

	if (err != NULL) {
		if (term_drop_unknown(t, err) == 0) {
			term_finish(t, err);
			return;
		}
	} else if (ec2_parse_terminate(resp->body, resp->body_len, &v, &n,
	    why, sizeof(why)) == -1) {
		parse_failed(&e, ACT_TERMINATE, why);
		term_finish(t, &e);
		return;
	} else {
		for (i = 0; i < n; i++) {
			term_add_result(t, v[i].id, 0);
			t->res[t->nres - 1] = v[i];
		}
		free(v);
		t->nbatch = 0;
	}
	if (t->nbatch > 0 || term_next_batch(t))
		term_send(t);
	else
		term_finish(t, NULL);
}

/*
 * Terminates, up to EC2_TERMINATE_BATCH ids per call.  The results name
 * every id with a known outcome (not_found for the ones EC2 did not
 * know); on an error, the ids of the failed batch and after are not in
 * them.  Valid during the callback only.
 */
int
ec2_terminate_instances(struct ec2_client *c, const char *const *ids,
    size_t n, ec2_terminate_fn cb, void *arg)
{
	struct term_ctx	*t;
	size_t		 i;

	if (c == NULL || cb == NULL || n == 0 || ids == NULL)
		return -1;
	t = xcalloc(1, sizeof(*t));
	t->c = c;
	t->cb = cb;
	t->arg = arg;
	t->ids = xcalloc(n, sizeof(*t->ids));
	for (i = 0; i < n; i++)
		t->ids[i] = xstrdup(ids[i]);
	t->nids = n;
	t->batch = xcalloc(QS_MIN(n, (size_t)EC2_TERMINATE_BATCH),
	    sizeof(*t->batch));
	term_next_batch(t);
	term_send(t);
	return 0;
}

/* CreateTags */

struct tags_ctx {
	ec2_done_fn	 cb;
	void		*arg;
};

static void
tags_done(struct ec2_req *r, const struct ec2_error *err,
    const struct http_resp *resp)
{
	struct tags_ctx	*x = req_finish(r);

	(void)resp;
	x->cb(err, x->arg);
	free(x);
}

int
ec2_create_tags(struct ec2_client *c, const char *const *ids, size_t nids,
    const struct ec2_tag *tags, size_t ntags, ec2_done_fn cb, void *arg)
{
	struct ec2_params	 p = { NULL, NULL, 0 };
	struct tags_ctx		*x;
	char			 key[64];
	size_t			 i;

	if (c == NULL || cb == NULL || nids == 0 || ntags == 0 ||
	    ids == NULL || tags == NULL)
		return -1;
	for (i = 0; i < nids; i++) {
		snprintf(key, sizeof(key), "ResourceId.%zu", i + 1);
		ec2_params_add(&p, key, ids[i]);
	}
	for (i = 0; i < ntags; i++) {
		snprintf(key, sizeof(key), "Tag.%zu.Key", i + 1);
		ec2_params_add(&p, key, tags[i].key);
		snprintf(key, sizeof(key), "Tag.%zu.Value", i + 1);
		ec2_params_add(&p, key, tags[i].value != NULL ?
		    tags[i].value : "");
	}
	x = xcalloc(1, sizeof(*x));
	x->cb = cb;
	x->arg = arg;
	req_start(req_new(c, ACT_TAGS, &p, tags_done, x, free));
	return 0;
}

/* GetConsoleOutput */

struct console_ctx {
	struct ec2_client	*c;
	char			 id[32];
	int			 latest;
	ec2_console_fn		 cb;
	void			*arg;
};

static void	console_send(struct console_ctx *);

static void
console_done(struct ec2_req *r, const struct ec2_error *err,
    const struct http_resp *resp)
{
	struct console_ctx	*x = req_finish(r);
	struct ec2_error	 e;
	char			*text = NULL, why[256];

	if (err != NULL && x->latest && (err->cls == EC2_ERR_INVALID ||
	    strcmp(err->code, "UnsupportedOperation") == 0)) {
		/* Latest is for Nitro instances: ask again without it */
		x->latest = 0;
		console_send(x);
		return;
	}
	if (err != NULL)
		x->cb(err, NULL, x->arg);
	else if (ec2_parse_console(resp->body, resp->body_len, &text, why,
	    sizeof(why)) == -1) {
		parse_failed(&e, ACT_CONSOLE, why);
		x->cb(&e, NULL, x->arg);
	} else
		x->cb(NULL, text, x->arg);
	free(text);
	free(x);
}

static void
console_send(struct console_ctx *x)
{
	struct ec2_params	 p = { NULL, NULL, 0 };

	ec2_params_add(&p, "InstanceId", x->id);
	if (x->latest)
		ec2_params_add(&p, "Latest", "true");
	req_start(req_new(x->c, ACT_CONSOLE, &p, console_done, x, free));
}

/* The latest console output, decoded; valid during the callback. */
int
ec2_get_console_output(struct ec2_client *c, const char *id,
    ec2_console_fn cb, void *arg)
{
	struct console_ctx	*x;

	if (c == NULL || cb == NULL || id == NULL || *id == '\0' ||
	    strlen(id) >= sizeof(x->id))
		return -1;
	x = xcalloc(1, sizeof(*x));
	x->c = c;
	snprintf(x->id, sizeof(x->id), "%s", id);
	x->latest = 1;
	x->cb = cb;
	x->arg = arg;
	console_send(x);
	return 0;
}

/* Any other action */

struct raw_ctx {
	ec2_raw_fn	 cb;
	void		*arg;
};

static void
raw_done(struct ec2_req *r, const struct ec2_error *err,
    const struct http_resp *resp)
{
	struct raw_ctx	*x = req_finish(r);

	if (err != NULL)
		x->cb(err, NULL, 0, x->arg);
	else
		x->cb(NULL, resp->body, resp->body_len, x->arg);
	free(x);
}

/*
 * Any action, with the client's signing, retries and error handling;
 * the callback gets the response body (valid during the callback).
 * Counted in the stats as "Other".
 */
int
ec2_call(struct ec2_client *c, const char *action,
    const struct ec2_params *params, int dry_run, ec2_raw_fn cb, void *arg)
{
	struct ec2_params	 p = { NULL, NULL, 0 };
	struct raw_ctx		*x;
	struct ec2_req		*r;
	size_t			 i;

	if (c == NULL || action == NULL || *action == '\0' || cb == NULL)
		return -1;
	ec2_params_add(&p, "Action", action);
	for (i = 0; params != NULL && i < params->n; i++)
		ec2_params_add(&p, params->key[i], params->value[i]);
	if (dry_run)
		ec2_params_add(&p, "DryRun", "true");
	x = xcalloc(1, sizeof(*x));
	x->cb = cb;
	x->arg = arg;
	r = req_new(c, ACT_OTHER, &p, raw_done, x, free);
	r->dry_run = dry_run;
	req_start(r);
	return 0;
}
