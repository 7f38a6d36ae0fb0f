/*
 * clearml.c: the ClearML REST API client on the libevent loop.
 *
 * Every call is a struct cml_req that lives until its callback has run.
 * A call needs a fresh token: without one it waits in the login queue
 * while a single auth.login (Basic) is under way, so a burst of calls
 * or of 401s never turns into a burst of logins.  A 401 on a Bearer call
 * sends it through one more login, once; transient errors (no response,
 * 429, 502/503/504) are retried on an event timer with exponential
 * backoff and jitter.  Nothing here blocks.
 */
#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/evp.h>

#include "common.h"
#include "clearml.h"
#include "ec2.h"
#include "http.h"

enum cml_req_state {
	REQ_NEW,
	REQ_WAIT_LOGIN,		/* in c->waiting until a login ends */
	REQ_INFLIGHT,
	REQ_WAIT_RETRY,		/* the timer resends it */
	REQ_DEFERRED		/* the timer completes it with req->err */
};

struct cml_req;
typedef void	(*cml_req_fn)(struct cml_req *, const struct cml_error *,
		    const cJSON *);

struct cml_req {
	TAILQ_ENTRY(cml_req)	 entry;		/* c->reqs: every live one */
	TAILQ_ENTRY(cml_req)	 wentry;	/* c->waiting */
	struct cml_client	*c;
	enum cml_req_state	 state;
	char			 endpoint[64];
	char			*body;
	int			 is_login;	/* the auth.login request */
	int			 lines;		/* body is JSON lines */
	int			 login_waiter;	/* a cml_login() caller */
	int			 retries;
	int			 relogged;	/* its one 401 retry is used */
	unsigned		 token_gen;	/* of the token it was sent with */
	struct http_call	*http;
	struct event		*timer;
	struct cml_error	 err;		/* for REQ_DEFERRED */
	cJSON			*deferred_data;	/* or this, without error */
	cml_req_fn		 fn;		/* internal callback, or */
	cml_json_fn		 done;		/* cml_call()'s, or */
	cml_done_fn		 done_login;	/* cml_login()'s */
	void			*arg;
	void			(*drop)(void *);	/* frees arg when the
						   callback never runs */
};
TAILQ_HEAD(cml_reqs, cml_req);

struct cml_client {
	struct event_base	*base;
	struct http_client	*http;
	char			*url;		/* api_server, no trailing / */
	char			*basic_hdr;	/* secret */
	char			*bearer_hdr;	/* secret */
	char			*token;		/* secret */
	unsigned		 token_gen;
	int64_t			 token_expires_mono;
	int64_t			 token_margin_ms;
	struct cml_jwt		 jwt;
	struct cml_req		*login;		/* the login under way */
	struct cml_reqs		 reqs;
	struct cml_reqs		 waiting;
	int			 max_retries;
	int64_t			 backoff_ms;
	int64_t			 timeout_ms;
	struct cml_call_stats	*stats;
	size_t			 nstats;
};

static void	req_dispatch(struct cml_req *);
static void	login_start(struct cml_client *);
static void	token_forget(struct cml_client *);

static char *
basic_header(const char *key, const char *secret)
{
	char		*pair, *hdr;
	unsigned char	*b64;
	size_t		 n;

	xasprintf(&pair, "%s:%s", key, secret);
	n = strlen(pair);
	b64 = xmalloc((n + 2) / 3 * 4 + 1);
	EVP_EncodeBlock(b64, (unsigned char *)pair, (int)n);
	mask_register((char *)b64);
	xasprintf(&hdr, "Authorization: Basic %s", (char *)b64);
	freezero_str(pair);
	freezero_str((char *)b64);
	return hdr;
}

/*
 * A client for one ClearML API server (URL, access key, secret key).
 * NULL when an argument is missing.
 */
struct cml_client *
cml_client_new(struct event_base *base, struct http_client *http,
    const char *api_server, const char *access_key, const char *secret_key)
{
	struct cml_client	*c;
	size_t			 n;

	if (base == NULL || http == NULL || api_server == NULL ||
	    api_server[0] == '\0' || access_key == NULL || secret_key == NULL)
		return NULL;
	mask_register(secret_key);
	c = xcalloc(1, sizeof(*c));
	c->base = base;
	c->http = http;
	c->url = xstrdup(api_server);
	for (n = strlen(c->url); n > 0 && c->url[n - 1] == '/'; n--)
		c->url[n - 1] = '\0';
	c->basic_hdr = basic_header(access_key, secret_key);
	TAILQ_INIT(&c->reqs);
	TAILQ_INIT(&c->waiting);
	c->max_retries = CML_DEFAULT_RETRIES;
	c->backoff_ms = CML_DEFAULT_BACKOFF_MS;
	c->timeout_ms = CML_DEFAULT_TIMEOUT_MS;
	return c;
}

static void
req_free(struct cml_req *req)
{
	struct cml_client	*c = req->c;

	if (req->state == REQ_WAIT_LOGIN)
		TAILQ_REMOVE(&c->waiting, req, wentry);
	TAILQ_REMOVE(&c->reqs, req, entry);
	if (req->http != NULL)
		http_call_cancel(req->http);
	if (req->timer != NULL)
		event_free(req->timer);
	if (c->login == req)
		c->login = NULL;
	if (req->drop != NULL)
		req->drop(req->arg);
	cJSON_Delete(req->deferred_data);
	free(req->body);
	free(req);
}

/* Calls still under way are dropped; their callbacks never run. */
void
cml_client_free(struct cml_client *c)
{
	struct cml_req	*req;

	if (c == NULL)
		return;
	while ((req = TAILQ_FIRST(&c->reqs)) != NULL)
		req_free(req);
	free(c->url);
	freezero_str(c->basic_hdr);
	token_forget(c);
	free(c->stats);
	free(c);
}

/*
 * Retries after a transient error (0: none), the first backoff and the
 * timeout of one HTTP request; 0 or less keeps the current value, but
 * for the retries.
 */
void
cml_client_set_retry(struct cml_client *c, int retries, int64_t backoff_ms,
    int64_t timeout_ms)
{
	if (retries >= 0)
		c->max_retries = retries;
	if (backoff_ms > 0)
		c->backoff_ms = backoff_ms;
	if (timeout_ms > 0)
		c->timeout_ms = timeout_ms;
}

const char *
cml_server_version(const struct cml_client *c)
{
	return c->jwt.server_version;
}

const char *
cml_api_version(const struct cml_client *c)
{
	return c->jwt.api_version;
}

/* Valid until the next call is made. */
const struct cml_call_stats *
cml_client_stats(const struct cml_client *c, size_t *n)
{
	*n = c->nstats;
	return c->stats;
}

static struct cml_call_stats *
stats_for(struct cml_client *c, const char *endpoint)
{
	struct cml_call_stats	*s;
	size_t			 i;

	for (i = 0; i < c->nstats; i++)
		if (strcmp(c->stats[i].endpoint, endpoint) == 0)
			return &c->stats[i];
	c->stats = xreallocarray(c->stats, c->nstats + 1, sizeof(*c->stats));
	s = &c->stats[c->nstats++];
	memset(s, 0, sizeof(*s));
	snprintf(s->endpoint, sizeof(s->endpoint), "%s", endpoint);
	return s;
}

static void
stats_count(struct cml_client *c, const char *endpoint, int64_t ms,
    int failed)
{
	static const int64_t	 bounds[] = EC2_LATENCY_BOUNDS_MS;
	struct cml_call_stats	*s = stats_for(c, endpoint);
	size_t			 i;

	s->calls++;
	if (failed)
		s->errors++;
	if (ms < 0)
		ms = 0;
	s->latency_ms_sum += (uint64_t)ms;
	for (i = 0; i < QS_ARRAYLEN(bounds) && ms > bounds[i]; i++)
		;
	s->latency_hist[i]++;
}

/* Token */

static int
token_fresh(const struct cml_client *c)
{
	return c->token != NULL &&
	    mono_ms() < c->token_expires_mono - c->token_margin_ms;
}

/*
 * "Authorization: Bearer TOKEN" while the token is fresh, else NULL: for
 * calls to the files server, which takes the API server's tokens.
 */
const char *
cml_auth_header(const struct cml_client *c)
{
	return token_fresh(c) ? c->bearer_hdr : NULL;
}

static void
token_forget(struct cml_client *c)
{
	mask_unregister(c->token);
	freezero_str(c->token);
	freezero_str(c->bearer_hdr);
	c->token = NULL;
	c->bearer_hdr = NULL;
}

/*
 * Keeps a new token.  Its lifetime is counted on our monotonic clock
 * from exp - iat, so a server clock that is off does not matter.  The
 * margin is 12 h, or half the lifetime of a token shorter than a day,
 * so a short-lived token is not renewed before every call.
 */
static int
token_set(struct cml_client *c, const char *token, struct cml_error *err)
{
	struct cml_jwt	 jwt;
	char		 why[160];
	int64_t		 life;

	mask_register(token);
	if (cml_jwt_parse(token, &jwt, why, sizeof(why)) == -1) {
		cml_error_set(err, CML_ERR_SERVER, "auth.login", "%s", why);
		return -1;
	}
	if (jwt.iat > 0 && jwt.exp > jwt.iat)
		life = (jwt.exp - jwt.iat) * 1000;
	else
		life = jwt.exp * 1000 - now_ms();
	if (life <= 0) {
		cml_error_set(err, CML_ERR_SERVER, "auth.login",
		    "the server gave a token that has already expired");
		return -1;
	}
	token_forget(c);
	mask_register(token);	/* again, were it the same as the old one */
	c->token = xstrdup(token);
	xasprintf(&c->bearer_hdr, "Authorization: Bearer %s", token);
	c->token_gen++;
	c->token_expires_mono = mono_ms() + life;
	c->token_margin_ms = QS_MIN(CML_LOGIN_MARGIN_MS, life / 2);
	c->jwt = jwt;
	return 0;
}

/* Requests */

static struct cml_req *
req_new(struct cml_client *c, const char *endpoint, const cJSON *params,
    cml_req_fn fn, cml_json_fn done, void *arg)
{
	struct cml_req	*req;

	req = xcalloc(1, sizeof(*req));
	req->c = c;
	snprintf(req->endpoint, sizeof(req->endpoint), "%s", endpoint);
	req->body = params != NULL ? cJSON_PrintUnformatted(params) :
	    xstrdup("{}");
	if (req->body == NULL)
		fatalx("%s: cannot print the request", endpoint);
	req->fn = fn;
	req->done = done;
	req->arg = arg;
	TAILQ_INSERT_TAIL(&c->reqs, req, entry);
	return req;
}

/* Runs the request's callback once, then frees it. */
static void
req_complete(struct cml_req *req, const struct cml_error *err,
    const cJSON *data)
{
	if (err != NULL)
		log_debug("clearml: %s", err->message);
	req->drop = NULL;	/* the callback owns its argument now */
	if (req->fn != NULL)
		req->fn(req, err, data);
	else if (req->done != NULL)
		req->done(err, data, req->arg);
	else if (req->done_login != NULL)
		req->done_login(err, req->arg);
	req_free(req);
}

static void
req_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct cml_req	*req = arg;

	(void)fd;
	(void)what;
	if (req->state == REQ_DEFERRED && req->deferred_data != NULL)
		req_complete(req, NULL, req->deferred_data);
	else if (req->state == REQ_DEFERRED)
		req_complete(req, &req->err, NULL);
	else
		req_dispatch(req);
}

static void
req_timer(struct cml_req *req, enum cml_req_state state, int64_t ms)
{
	if (req->timer == NULL)
		req->timer = evtimer_new(req->c->base, req_timer_cb, req);
	req->state = state;
	timer_add_ms(req->timer, ms);
}

/* Completes a request from the loop, never from inside the caller. */
static void
req_defer(struct cml_req *req, const struct cml_error *err)
{
	req->err = *err;
	req_timer(req, REQ_DEFERRED, 0);
}

/* Exponential, capped, with jitter over its upper half. */
static int64_t
backoff_ms(const struct cml_client *c, int retry)
{
	int64_t	 d = c->backoff_ms;
	int	 i;

	for (i = 0; i < retry && d < CML_MAX_BACKOFF_MS; i++)
		d *= 2;
	d = QS_MIN(d, CML_MAX_BACKOFF_MS);
	return d / 2 + (int64_t)arc4random_uniform((uint32_t)(d / 2 + 1));
}

static void	req_http_done(const struct http_resp *, void *);

static void
req_send(struct cml_req *req)
{
	struct cml_client	*c = req->c;
	const char		*hdrs[4];
	struct http_req		 hr;
	struct cml_error	 err;
	char			*url;

	hdrs[0] = req->lines ? "Content-Type: application/json-lines" :
	    "Content-Type: application/json";
	hdrs[1] = "Accept: application/json";
	hdrs[2] = req->is_login ? c->basic_hdr : c->bearer_hdr;
	hdrs[3] = NULL;
	xasprintf(&url, "%s/%s", c->url, req->endpoint);
	memset(&hr, 0, sizeof(hr));
	hr.method = "POST";
	hr.url = url;
	hr.headers = hdrs;
	hr.body = req->body;
	hr.body_len = strlen(req->body);
	hr.timeout_ms = c->timeout_ms;
	req->token_gen = c->token_gen;
	req->state = REQ_INFLIGHT;
	req->http = http_request(c->http, &hr, req_http_done, req);
	free(url);
	if (req->http == NULL) {
		memset(&err, 0, sizeof(err));
		cml_error_set(&err, CML_ERR_TRANSIENT, req->endpoint,
		    "cannot start an HTTP request");
		req_defer(req, &err);
	}
}

/* A call needs a fresh token; without one it waits for the login. */
static void
req_dispatch(struct cml_req *req)
{
	struct cml_client	*c = req->c;

	if (!req->is_login && !token_fresh(c)) {
		req->state = REQ_WAIT_LOGIN;
		TAILQ_INSERT_TAIL(&c->waiting, req, wentry);
		login_start(c);
		return;
	}
	req_send(req);
}

static void
req_retry(struct cml_req *req, const struct cml_error *err)
{
	int64_t	 ms = backoff_ms(req->c, req->retries);

	req->retries++;
	stats_for(req->c, req->endpoint)->retries++;
	log_info("clearml: %s; retry %d of %d in %lld ms", err->message,
	    req->retries, req->c->max_retries, (long long)ms);
	req_timer(req, REQ_WAIT_RETRY, ms);
}

/*
 * A 401 on a Bearer call: if the token changed since it was sent, send
 * it again with the new one; else drop the token and log in again.
 */
static void
req_relogin(struct cml_req *req)
{
	struct cml_client	*c = req->c;

	req->relogged = 1;
	if (req->token_gen != c->token_gen && token_fresh(c)) {
		req_send(req);
		return;
	}
	if (req->token_gen == c->token_gen && c->token != NULL) {
		log_info("clearml: %s: token refused; logging in again",
		    req->endpoint);
		token_forget(c);
	}
	req_dispatch(req);
}

static void
req_http_done(const struct http_resp *resp, void *arg)
{
	struct cml_req		*req = arg;
	struct cml_error	 err;
	cJSON			*data = NULL;
	int			 rc;

	req->http = NULL;	/* http.c frees it after we return */
	if (http_tls_refused(resp)) {
		/* a certificate that does not verify will not on a retry */
		rc = -1;
		memset(&err, 0, sizeof(err));
		cml_error_set(&err, CML_ERR_SERVER, req->endpoint, "TLS: %s",
		    resp->error);
	} else if (resp->too_large || resp->curl_code != 0) {
		/* cut off: a reset or a timeout mid-body is transient */
		rc = -1;
		memset(&err, 0, sizeof(err));
		err.http_status = (int)resp->status;
		cml_error_set(&err, resp->too_large ? CML_ERR_SERVER :
		    CML_ERR_TRANSIENT, req->endpoint, "%s",
		    resp->error[0] != '\0' ? resp->error : "no response");
	} else
		rc = cml_parse_envelope(resp->status, resp->body,
		    resp->body_len, req->endpoint, &data, &err);
	stats_count(req->c, req->endpoint, resp->elapsed_ms, rc == -1);
	log_debug("clearml: %s: HTTP %ld in %lld ms", req->endpoint,
	    resp->status, (long long)resp->elapsed_ms);
	if (rc == -1 && err.cls == CML_ERR_AUTH && err.http_status == 401 &&
	    !req->is_login && !req->relogged) {
		req_relogin(req);
		return;
	}
	if (rc == -1 && err.cls == CML_ERR_TRANSIENT &&
	    req->retries < req->c->max_retries) {
		req_retry(req, &err);
		return;
	}
	req_complete(req, rc == -1 ? &err : NULL, data);
	cJSON_Delete(data);
}

/* Login */

/* Wakes the calls that waited for a login, in order. */
static void
login_release(struct cml_client *c, const struct cml_error *lerr)
{
	struct cml_reqs		 list;
	struct cml_req		*req;
	struct cml_error	 err;

	/* Callbacks may queue new calls: those wait for the next login. */
	TAILQ_INIT(&list);
	TAILQ_CONCAT(&list, &c->waiting, wentry);
	while ((req = TAILQ_FIRST(&list)) != NULL) {
		TAILQ_REMOVE(&list, req, wentry);
		req->state = REQ_NEW;
		if (lerr == NULL && req->login_waiter)
			req_complete(req, NULL, NULL);
		else if (lerr == NULL)
			req_send(req);
		else if (req->login_waiter)
			req_complete(req, lerr, NULL);
		else {
			err = *lerr;
			cml_error_set(&err, lerr->cls, req->endpoint,
			    "not sent: %s", lerr->message);
			req_complete(req, &err, NULL);
		}
	}
}

static void
login_done(struct cml_req *req, const struct cml_error *err,
    const cJSON *data)
{
	struct cml_client	*c = req->c;
	struct cml_error	 e;
	const cJSON		*tok;

	c->login = NULL;
	if (err != NULL) {
		login_release(c, err);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.http_status = 200;
	e.code = 200;
	tok = cJSON_GetObjectItemCaseSensitive(data, "token");
	if (!cJSON_IsString(tok) || tok->valuestring[0] == '\0') {
		cml_error_set(&e, CML_ERR_SERVER, "auth.login",
		    "data.token: expected a string");
		login_release(c, &e);
		return;
	}
	if (token_set(c, tok->valuestring, &e) == -1) {
		login_release(c, &e);
		return;
	}
	log_debug("clearml: logged in to %s (server %s, API %s)", c->url,
	    c->jwt.server_version[0] != '\0' ? c->jwt.server_version : "?",
	    c->jwt.api_version[0] != '\0' ? c->jwt.api_version : "?");
	login_release(c, NULL);
}

/* One login at a time: later callers wait in c->waiting. */
static void
login_start(struct cml_client *c)
{
	struct cml_req	*req;

	if (c->login != NULL)
		return;
	req = req_new(c, "auth.login", NULL, login_done, NULL, NULL);
	req->is_login = 1;
	c->login = req;
	req_send(req);
}

/*
 * Logs in now (the token is renewed even if it is still fresh);
 * done(NULL) once a token is held.
 */
int
cml_login(struct cml_client *c, cml_done_fn done, void *arg)
{
	struct cml_req	*req;

	if (c == NULL || done == NULL)
		return -1;
	req = req_new(c, "auth.login", NULL, NULL, NULL, arg);
	req->login_waiter = 1;
	req->done_login = done;
	req->state = REQ_WAIT_LOGIN;
	TAILQ_INSERT_TAIL(&c->waiting, req, wentry);
	if (c->login == NULL)
		token_forget(c);
	login_start(c);
	return 0;
}

/* Calls */

/*
 * POSTs params (NULL: {}) to <api_server>/<endpoint>; done gets the
 * envelope's data object.
 */
static struct cml_req *
call_start(struct cml_client *c, const char *endpoint, const cJSON *params,
    cml_json_fn done, void *arg, void (*drop)(void *))
{
	struct cml_req	*req;

	if (c == NULL || endpoint == NULL || done == NULL ||
	    strlen(endpoint) >= sizeof(req->endpoint))
		return NULL;
	req = req_new(c, endpoint, params, NULL, done, arg);
	req->drop = drop;
	req_dispatch(req);
	return req;
}

int
cml_call(struct cml_client *c, const char *endpoint, const cJSON *params,
    cml_json_fn done, void *arg)
{
	return call_start(c, endpoint, params, done, arg, NULL) != NULL ? 0 :
	    -1;
}

/*
 * POSTs body as it is, as application/json-lines: one JSON object a
 * line, the form the batch endpoints (events.add_batch) read.
 */
int
cml_call_lines(struct cml_client *c, const char *endpoint, const char *body,
    cml_json_fn done, void *arg)
{
	struct cml_req	*req;

	if (c == NULL || endpoint == NULL || body == NULL || done == NULL ||
	    strlen(endpoint) >= sizeof(req->endpoint))
		return -1;
	req = req_new(c, endpoint, NULL, NULL, done, arg);
	free(req->body);
	req->body = xstrdup(body);
	req->lines = 1;
	req_dispatch(req);
	return 0;
}

/*
 * A list call page by page: page and page_size are added to params for
 * each request, and done runs once, with {<key>: every page's items} or
 * the first error.
 */
struct cml_pager {
	struct cml_client	*c;
	char			 endpoint[64];
	cJSON			*params;
	struct cml_pages	 pg;
	char			 key[16];
	cml_json_fn		 done;
	void			*arg;
	void			(*drop)(void *);	/* of arg */
};

static void
pager_free(struct cml_pager *pg)
{
	cJSON_Delete(pg->params);
	cJSON_Delete(pg->pg.items);
	free(pg);
}

static void
pager_drop(void *arg)
{
	struct cml_pager	*pg = arg;

	if (pg->drop != NULL)
		pg->drop(pg->arg);
	pager_free(pg);
}

static void	pager_cb(const struct cml_error *, const cJSON *, void *);

static struct cml_req *
pager_next(struct cml_pager *pg)
{
	cJSON_DeleteItemFromObjectCaseSensitive(pg->params, "page");
	cJSON_DeleteItemFromObjectCaseSensitive(pg->params, "page_size");
	cJSON_AddNumberToObject(pg->params, "page", pg->pg.page);
	cJSON_AddNumberToObject(pg->params, "page_size", CML_PAGE_SIZE);
	return call_start(pg->c, pg->endpoint, pg->params, pager_cb, pg,
	    pager_drop);
}

static void
pager_cb(const struct cml_error *err, const cJSON *data, void *arg)
{
	struct cml_pager	*pg = arg;
	struct cml_error	 e;
	cJSON			*all;
	char			 why[256];
	int			 rc;

	if (err != NULL) {
		pg->done(err, NULL, pg->arg);
		pager_free(pg);
		return;
	}
	if ((rc = cml_page_take(&pg->pg, data, why, sizeof(why))) == 1 &&
	    pager_next(pg) != NULL)
		return;
	memset(&e, 0, sizeof(e));
	if (rc == 1)
		cml_error_set(&e, CML_ERR_TRANSIENT, pg->endpoint, "page %d "
		    "could not be asked for", pg->pg.page);
	else if (rc == -1) {
		e.http_status = e.code = 200;
		cml_error_set(&e, CML_ERR_SERVER, pg->endpoint, "malformed "
		    "response: %s", why);
	}
	if (rc != 0) {
		pg->done(&e, NULL, pg->arg);
		pager_free(pg);
		return;
	}
	all = cJSON_CreateObject();
	cJSON_AddItemToObject(all, pg->key, pg->pg.items);
	pg->pg.items = NULL;
	pg->done(NULL, all, pg->arg);
	cJSON_Delete(all);
	pager_free(pg);
}

static struct cml_req *
pages_start(struct cml_client *c, const char *endpoint, const cJSON *params,
    const char *key, size_t expected, cml_json_fn done, void *arg,
    void (*drop)(void *))
{
	struct cml_pager	*pg;
	struct cml_req		*req;

	if (c == NULL || endpoint == NULL || key == NULL || done == NULL ||
	    strlen(endpoint) >= sizeof(pg->endpoint) ||
	    strlen(key) >= sizeof(pg->key))
		return NULL;
	pg = xcalloc(1, sizeof(*pg));
	pg->c = c;
	snprintf(pg->endpoint, sizeof(pg->endpoint), "%s", endpoint);
	snprintf(pg->key, sizeof(pg->key), "%s", key);
	pg->params = params != NULL ? cJSON_Duplicate(params, 1) :
	    cJSON_CreateObject();
	pg->pg.key = pg->key;
	pg->pg.expected = expected;
	pg->done = done;
	pg->arg = arg;
	pg->drop = drop;
	if ((req = pager_next(pg)) == NULL) {
		pg->drop = NULL;
		pager_free(pg);
	}
	return req;
}

/*
 * A list call (tasks.get_all, queues.get_all, projects.get_all) read to
 * its end: done gets {key: [every item]}.  expected (0: unknown) is how
 * many items there can be at most, which spares asking for an empty
 * last page.
 */
int
cml_call_pages(struct cml_client *c, const char *endpoint,
    const cJSON *params, const char *key, size_t expected, cml_json_fn done,
    void *arg)
{
	return pages_start(c, endpoint, params, key, expected, done, arg,
	    NULL) != NULL ? 0 : -1;
}

/* The typed calls: a context carries the caller's callback. */

struct cml_ctx {
	struct cml_client	*c;
	char			 endpoint[48];
	cml_done_fn		 done_fn;
	cml_id_fn		 id_fn;
	cml_queue_fn		 queue_fn;
	cml_workers_fn		 workers_fn;
	cml_tasks_fn		 tasks_fn;
	void			*arg;
	char			*key;		/* queue id or name, pattern */
	char			*task;		/* requeue */
	char			*queue;
	char			*reason;
	void			(*drop_arg)(void *);	/* of arg */
};

static struct cml_ctx *
ctx_new(struct cml_client *c, const char *endpoint, void *arg)
{
	struct cml_ctx	*x = xcalloc(1, sizeof(*x));

	x->c = c;
	snprintf(x->endpoint, sizeof(x->endpoint), "%s", endpoint);
	x->arg = arg;
	return x;
}

static void
ctx_free(struct cml_ctx *x)
{
	free(x->key);
	free(x->task);
	free(x->queue);
	free(x->reason);
	free(x);
}

/* When the client goes with the call, what the call held goes too. */
static void
ctx_drop(void *arg)
{
	struct cml_ctx	*x = arg;

	if (x->drop_arg != NULL)
		x->drop_arg(x->arg);
	ctx_free(x);
}

/* Starts the call and gives params up; -1 frees the context. */
static int
ctx_call(struct cml_ctx *x, cJSON *params, cml_json_fn fn)
{
	struct cml_req	*req;

	req = call_start(x->c, x->endpoint, params, fn, x, ctx_drop);
	cJSON_Delete(params);
	if (req == NULL) {
		ctx_free(x);
		return -1;
	}
	return 0;
}

/* ctx_call for a list call, read page by page. */
static int
ctx_call_pages(struct cml_ctx *x, cJSON *params, const char *key,
    size_t expected, cml_json_fn fn)
{
	struct cml_req	*req;

	req = pages_start(x->c, x->endpoint, params, key, expected, fn, x,
	    ctx_drop);
	cJSON_Delete(params);
	if (req == NULL) {
		ctx_free(x);
		return -1;
	}
	return 0;
}

/* A well-formed envelope around data we cannot read. */
static void
bad_data(struct cml_error *err, const char *endpoint, const char *why)
{
	memset(err, 0, sizeof(*err));
	err->http_status = 200;
	err->code = 200;
	cml_error_set(err, CML_ERR_SERVER, endpoint, "malformed response: %s",
	    why);
}

static void
done_cb(const struct cml_error *err, const cJSON *data, void *arg)
{
	struct cml_ctx	*x = arg;

	(void)data;
	x->done_fn(err, x->arg);
	ctx_free(x);
}

static void
resolve_cb(const struct cml_error *err, const cJSON *data, void *arg)
{
	struct cml_ctx		*x = arg;
	struct cml_error	 e;
	char			 id[64], why[256];
	int			 rc;

	if (err != NULL) {
		x->id_fn(err, NULL, x->arg);
		ctx_free(x);
		return;
	}
	rc = cml_parse_queue_id_by_name(data, x->key, id, sizeof(id), why,
	    sizeof(why));
	if (rc == 1)
		x->id_fn(NULL, id, x->arg);
	else {
		if (rc == 0) {
			bad_data(&e, x->endpoint, "");
			cml_error_set(&e, CML_ERR_NOT_FOUND, x->endpoint,
			    "no queue named \"%s\"", x->key);
		} else
			bad_data(&e, x->endpoint, why);
		x->id_fn(&e, NULL, x->arg);
	}
	ctx_free(x);
}

/* The id of the queue named exactly name. */
int
cml_queue_resolve(struct cml_client *c, const char *name, cml_id_fn fn,
    void *arg)
{
	struct cml_ctx	*x;
	cJSON		*p, *f;
	char		*esc, *re;

	if (c == NULL || name == NULL || name[0] == '\0' || fn == NULL)
		return -1;
	x = ctx_new(c, "queues.get_all", arg);
	x->id_fn = fn;
	x->key = xstrdup(name);
	esc = cml_regex_escape(name);
	xasprintf(&re, "^%s$", esc);
	p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "name", re);
	f = cJSON_AddArrayToObject(p, "only_fields");
	cJSON_AddItemToArray(f, cJSON_CreateString("id"));
	cJSON_AddItemToArray(f, cJSON_CreateString("name"));
	cJSON_AddBoolToObject(p, "search_hidden", 1);
	free(esc);
	free(re);
	/* queue names are unique: one match at most */
	return ctx_call_pages(x, p, "queues", 1, resolve_cb);
}

static void
queue_cb(const struct cml_error *err, const cJSON *data, void *arg)
{
	struct cml_ctx		*x = arg;
	struct cml_error	 e;
	struct cml_queue	 q;
	char			 why[256];
	int			 rc;

	if (err != NULL) {
		x->queue_fn(err, NULL, x->arg);
		ctx_free(x);
		return;
	}
	rc = cml_parse_queue_by_id(data, x->key, &q, why, sizeof(why));
	if (rc == 1) {
		x->queue_fn(NULL, &q, x->arg);
		cml_queue_clear(&q);
	} else {
		bad_data(&e, x->endpoint, why);
		if (rc == 0)
			cml_error_set(&e, CML_ERR_NOT_FOUND, x->endpoint,
			    "no queue with id %s", x->key);
		x->queue_fn(&e, NULL, x->arg);
	}
	ctx_free(x);
}

/* A queue's entries, FIFO, by its id. */
int
cml_queue_get(struct cml_client *c, const char *qid, cml_queue_fn fn,
    void *arg)
{
	struct cml_ctx	*x;
	cJSON		*p, *a;

	if (c == NULL || qid == NULL || qid[0] == '\0' || fn == NULL)
		return -1;
	x = ctx_new(c, "queues.get_all", arg);
	x->queue_fn = fn;
	x->key = xstrdup(qid);
	p = cJSON_CreateObject();
	a = cJSON_AddArrayToObject(p, "id");
	cJSON_AddItemToArray(a, cJSON_CreateString(qid));
	a = cJSON_AddArrayToObject(p, "only_fields");
	cJSON_AddItemToArray(a, cJSON_CreateString("id"));
	cJSON_AddItemToArray(a, cJSON_CreateString("name"));
	cJSON_AddItemToArray(a, cJSON_CreateString("entries"));
	return ctx_call_pages(x, p, "queues", 1, queue_cb);
}

static void
workers_cb(const struct cml_error *err, const cJSON *data, void *arg)
{
	struct cml_ctx		*x = arg;
	struct cml_error	 e;
	struct cml_worker	*w;
	size_t			 n;
	char			 why[256];

	if (err != NULL)
		x->workers_fn(err, NULL, 0, x->arg);
	else if (cml_parse_workers(data, &w, &n, why, sizeof(why)) == -1) {
		bad_data(&e, x->endpoint, why);
		x->workers_fn(&e, NULL, 0, x->arg);
	} else {
		cml_workers_filter(w, &n, x->key);
		x->workers_fn(NULL, w, n, x->arg);
		cml_workers_free(w, n);
	}
	ctx_free(x);
}

/*
 * The workers whose id matches pattern (a glob; NULL: all) seen in the
 * last last_seen seconds (0: any time, negative: the server's default).
 * Servers before API 2.30 have no worker_pattern; the client filters
 * with the same glob in any case, so every server gives the same list.
 */
int
cml_workers_get_all(struct cml_client *c, const char *pattern, int last_seen,
    cml_workers_fn fn, void *arg)
{
	struct cml_ctx	*x;
	cJSON		*p;

	if (c == NULL || fn == NULL)
		return -1;
	x = ctx_new(c, "workers.get_all", arg);
	x->workers_fn = fn;
	x->key = pattern != NULL ? xstrdup(pattern) : NULL;
	p = cJSON_CreateObject();
	if (last_seen >= 0)
		cJSON_AddNumberToObject(p, "last_seen", last_seen);
	if (pattern != NULL &&
	    cml_api_at_least(c->jwt.api_version, 2, 30) == 1)
		cJSON_AddStringToObject(p, "worker_pattern", pattern);
	return ctx_call(x, p, workers_cb);
}

/* Removes a worker at once (after its instance was terminated). */
int
cml_workers_unregister(struct cml_client *c, const char *worker,
    cml_done_fn fn, void *arg)
{
	struct cml_ctx	*x;
	cJSON		*p;

	if (c == NULL || worker == NULL || worker[0] == '\0' || fn == NULL)
		return -1;
	x = ctx_new(c, "workers.unregister", arg);
	x->done_fn = fn;
	p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "worker", worker);
	return ctx_call(x, p, done_cb);
}

static void
tasks_cb(const struct cml_error *err, const cJSON *data, void *arg)
{
	struct cml_ctx		*x = arg;
	struct cml_error	 e;
	struct cml_task		*t;
	size_t			 n;
	char			 why[256];

	if (err != NULL)
		x->tasks_fn(err, NULL, 0, x->arg);
	else if (cml_parse_tasks(data, &t, &n, why, sizeof(why)) == -1) {
		bad_data(&e, x->endpoint, why);
		x->tasks_fn(&e, NULL, 0, x->arg);
	} else {
		x->tasks_fn(NULL, t, n, x->arg);
		cml_tasks_free(t, n);
	}
	ctx_free(x);
}

static const char *const task_fields[] = {
	"id", "name", "status", "status_reason", "comment", "last_worker",
	"execution.queue", "last_update", "status_changed"
};

/* The tasks with these ids (those that exist), with what the engine uses. */
int
cml_tasks_get_all(struct cml_client *c, const char *const *ids, size_t n,
    cml_tasks_fn fn, void *arg)
{
	struct cml_ctx	*x;
	struct cml_req	*req;
	cJSON		*p, *a;
	size_t		 i;

	if (c == NULL || fn == NULL || (n > 0 && ids == NULL))
		return -1;
	for (i = 0; i < n; i++)
		if (ids[i] == NULL || ids[i][0] == '\0')
			return -1;
	x = ctx_new(c, "tasks.get_all", arg);
	x->tasks_fn = fn;
	if (n == 0) {
		/* no ids would mean every task to the server */
		req = req_new(c, x->endpoint, NULL, NULL, tasks_cb, x);
		req->drop = ctx_drop;
		req->deferred_data = cJSON_Parse("{\"tasks\":[]}");
		req_timer(req, REQ_DEFERRED, 0);
		return 0;
	}
	p = cJSON_CreateObject();
	a = cJSON_AddArrayToObject(p, "id");
	for (i = 0; i < n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(ids[i]));
	a = cJSON_AddArrayToObject(p, "only_fields");
	for (i = 0; i < QS_ARRAYLEN(task_fields); i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(task_fields[i]));
	cJSON_AddBoolToObject(p, "search_hidden", 1);
	return ctx_call_pages(x, p, "tasks", n, tasks_cb);
}

/*
 * The tasks that match filter (tasks.get_all's fields: status,
 * status_changed, ...), every page of them, with what the engine uses.
 */
int
cml_tasks_query(struct cml_client *c, const cJSON *filter, cml_tasks_fn fn,
    void *arg)
{
	struct cml_ctx	*x;
	cJSON		*p, *a;
	size_t		 i;

	if (c == NULL || fn == NULL || !cJSON_IsObject(filter))
		return -1;
	x = ctx_new(c, "tasks.get_all", arg);
	x->tasks_fn = fn;
	p = cJSON_Duplicate(filter, 1);
	cJSON_DeleteItemFromObjectCaseSensitive(p, "only_fields");
	a = cJSON_AddArrayToObject(p, "only_fields");
	for (i = 0; i < QS_ARRAYLEN(task_fields); i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(task_fields[i]));
	if (cJSON_GetObjectItemCaseSensitive(p, "search_hidden") == NULL)
		cJSON_AddBoolToObject(p, "search_hidden", 1);
	return ctx_call_pages(x, p, "tasks", 0, tasks_cb);
}

/* One task by id; an unknown id is a "not found" error. */
int
cml_task_get(struct cml_client *c, const char *task, cml_tasks_fn fn,
    void *arg)
{
	struct cml_ctx	*x;
	cJSON		*p;

	if (c == NULL || task == NULL || task[0] == '\0' || fn == NULL)
		return -1;
	x = ctx_new(c, "tasks.get_by_id", arg);
	x->tasks_fn = fn;
	p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "task", task);
	return ctx_call(x, p, tasks_cb);
}

static int
task_stopped(struct cml_client *c, const char *task, const char *reason,
    cml_done_fn fn, void *arg, void (*drop_arg)(void *))
{
	struct cml_ctx	*x;
	cJSON		*p;

	if (c == NULL || task == NULL || task[0] == '\0' || fn == NULL)
		return -1;
	x = ctx_new(c, "tasks.stopped", arg);
	x->done_fn = fn;
	x->drop_arg = drop_arg;
	p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "task", task);
	cJSON_AddBoolToObject(p, "force", 1);
	cJSON_AddStringToObject(p, "status_reason", reason != NULL ? reason :
	    "");
	return ctx_call(x, p, done_cb);
}

/* Marks a task stopped whatever its status (force). */
int
cml_task_stopped(struct cml_client *c, const char *task, const char *reason,
    cml_done_fn fn, void *arg)
{
	return task_stopped(c, task, reason, fn, arg, NULL);
}

/* Puts a task in a queue (by id); its status becomes queued. */
int
cml_task_enqueue(struct cml_client *c, const char *task, const char *queue,
    const char *reason, cml_done_fn fn, void *arg)
{
	struct cml_ctx	*x;
	cJSON		*p;

	if (c == NULL || task == NULL || task[0] == '\0' || queue == NULL ||
	    queue[0] == '\0' || fn == NULL)
		return -1;
	x = ctx_new(c, "tasks.enqueue", arg);
	x->done_fn = fn;
	p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "task", task);
	cJSON_AddStringToObject(p, "queue", queue);
	cJSON_AddStringToObject(p, "status_reason", reason != NULL ? reason :
	    "");
	return ctx_call(x, p, done_cb);
}

static void
requeue_stopped_cb(const struct cml_error *err, void *arg)
{
	struct cml_ctx	*x = arg;

	if (err != NULL || cml_task_enqueue(x->c, x->task, x->queue,
	    x->reason, x->done_fn, x->arg) == -1) {
		if (err == NULL)
			fatalx("%s: cannot enqueue", __func__);
		x->done_fn(err, x->arg);
	}
	ctx_free(x);
}

/*
 * Puts back a task whose instance went away under it: tasks.stopped
 * (force) then tasks.enqueue.  done runs once, after both or the first
 * that failed (whose endpoint its error names).
 */
int
cml_task_requeue(struct cml_client *c, const char *task, const char *queue,
    const char *reason, cml_done_fn fn, void *arg)
{
	struct cml_ctx	*x;

	if (c == NULL || task == NULL || task[0] == '\0' || queue == NULL ||
	    queue[0] == '\0' || fn == NULL)
		return -1;
	x = ctx_new(c, "tasks.stopped", arg);
	x->done_fn = fn;
	x->task = xstrdup(task);
	x->queue = xstrdup(queue);
	x->reason = xstrdup(reason != NULL ? reason : "");
	if (task_stopped(c, task, reason, requeue_stopped_cb, x,
	    ctx_drop) == -1) {
		ctx_free(x);
		return -1;
	}
	return 0;
}
