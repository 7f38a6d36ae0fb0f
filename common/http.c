/*
 * http.c: HTTP calls on the libevent loop through curl's multi socket
 * interface.  curl tells us which sockets to watch and when to wake it;
 * libevent does the waiting.  Connections stay in the multi handle's
 * cache, so calls to the same host reuse them.  TLS is verified (curl's
 * default) and the proxy variables of the environment are honoured
 * (curl reads http_proxy, https_proxy and no_proxy itself).
 */
#include <sys/queue.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "common.h"
#include "http.h"

struct http_sock {
	struct http_client	*client;
	curl_socket_t		 fd;
	struct event		*ev;
};

struct http_call {
	TAILQ_ENTRY(http_call)	 entry;
	struct http_client	*client;
	CURL			*easy;
	struct curl_slist	*headers;
	curl_mime		*mime;		/* of an upload, or NULL */
	http_done_fn		 done;
	void			*arg;
	struct http_resp	 resp;
	size_t			 body_cap;
	size_t			 max_body;
	char			 errbuf[CURL_ERROR_SIZE];
	int			 in_callback;
};
TAILQ_HEAD(http_calls, http_call);

struct http_client {
	struct event_base	*base;
	CURLM			*multi;
	struct event		*timer;
	struct http_calls	 calls;
	size_t			 ncalls;
};

static void	http_check_done(struct http_client *);

static void
http_resp_clear(struct http_resp *r)
{
	size_t	 i;

	free(r->body);
	for (i = 0; i < r->nheaders; i++)
		free(r->headers[i]);
	free(r->headers);
	memset(r, 0, sizeof(*r));
}

static void
http_call_free(struct http_call *call)
{
	struct http_client	*c = call->client;

	TAILQ_REMOVE(&c->calls, call, entry);
	c->ncalls--;
	curl_multi_remove_handle(c->multi, call->easy);
	curl_easy_cleanup(call->easy);
	curl_mime_free(call->mime);
	curl_slist_free_all(call->headers);
	http_resp_clear(&call->resp);
	free(call);
}

static void
http_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_sock	*s = arg;
	struct http_client	*c = s->client;
	int			 flags = 0, running;

	if (what & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(c->multi, fd, flags, &running);
	http_check_done(c);
}

static void
http_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_client	*c = arg;
	int			 running;

	(void)fd;
	(void)what;
	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	http_check_done(c);
}

/* curl says what to watch on a socket. */
static int
http_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp,
    void *socketp)
{
	struct http_client	*c = userp;
	struct http_sock	*s = socketp;
	short			 events = EV_PERSIST;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			event_free(s->ev);
			free(s);
		}
		curl_multi_assign(c->multi, fd, NULL);
		return 0;
	}
	if (what & CURL_POLL_IN)
		events |= EV_READ;
	if (what & CURL_POLL_OUT)
		events |= EV_WRITE;
	if (s == NULL) {
		s = xcalloc(1, sizeof(*s));
		s->client = c;
		s->fd = fd;
		curl_multi_assign(c->multi, fd, s);
	} else
		event_free(s->ev);
	s->ev = event_new(c->base, fd, events, http_event_cb, s);
	event_add(s->ev, NULL);
	return 0;
}

/* curl says when to wake it up. */
static int
http_timer_set_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct http_client	*c = userp;

	(void)multi;
	if (timeout_ms < 0)
		evtimer_del(c->timer);
	else
		timer_add_ms(c->timer, timeout_ms);
	return 0;
}

struct http_client *
http_client_new(struct event_base *base)
{
	static int		 global_done;
	struct http_client	*c;

	if (!global_done) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return NULL;
		global_done = 1;
	}
	c = xcalloc(1, sizeof(*c));
	c->base = base;
	TAILQ_INIT(&c->calls);
	if ((c->multi = curl_multi_init()) == NULL) {
		free(c);
		return NULL;
	}
	c->timer = evtimer_new(base, http_timer_cb, c);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, http_socket_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, http_timer_set_cb);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	return c;
}

/* Every call still in flight is dropped; no callback runs. */
void
http_client_free(struct http_client *c)
{
	struct http_call	*call;

	if (c == NULL)
		return;
	while ((call = TAILQ_FIRST(&c->calls)) != NULL)
		http_call_free(call);
	curl_multi_cleanup(c->multi);
	event_free(c->timer);
	free(c);
}

size_t
http_inflight(const struct http_client *c)
{
	return c->ncalls;
}

static size_t
http_write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct http_call	*call = arg;
	struct http_resp	*r = &call->resp;
	size_t			 n = size * nmemb;

	if (r->body_len + n > call->max_body) {
		r->too_large = 1;
		return 0;	/* curl stops with CURLE_WRITE_ERROR */
	}
	if (r->body_len + n + 1 > call->body_cap)
		r->body = xrealloc_grow(r->body, &call->body_cap,
		    r->body_len + n + 1);
	memcpy(r->body + r->body_len, data, n);
	r->body_len += n;
	r->body[r->body_len] = '\0';
	return n;
}

static size_t
http_header_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct http_call	*call = arg;
	struct http_resp	*r = &call->resp;
	size_t			 n = size * nmemb, len = n, i;
	char			*line;

	while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		len--;
	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		/* a new response (after a 100 or a redirect) starts over */
		for (i = 0; i < r->nheaders; i++)
			free(r->headers[i]);
		r->nheaders = 0;
		return n;
	}
	if (len == 0 || memchr(data, ':', len) == NULL || r->nheaders >= 200)
		return n;
	line = xstrndup(data, len);
	for (i = 0; line[i] != ':'; i++)
		line[i] = (char)tolower((unsigned char)line[i]);
	r->headers = xreallocarray(r->headers, r->nheaders + 1,
	    sizeof(*r->headers));
	r->headers[r->nheaders++] = line;
	return n;
}

/* The server's certificate was refused: asking again cannot help. */
int
http_tls_refused(const struct http_resp *r)
{
	return r->curl_code == CURLE_PEER_FAILED_VERIFICATION ||
	    r->curl_code == CURLE_SSL_CACERT_BADFILE ||
	    r->curl_code == CURLE_SSL_CERTPROBLEM ||
	    r->curl_code == CURLE_SSL_ISSUER_ERROR ||
	    r->curl_code == CURLE_SSL_PINNEDPUBKEYNOTMATCH;
}

/* Value of a response header (name in any case), or NULL. */
const char *
http_resp_header(const struct http_resp *r, const char *name)
{
	size_t		 i, n = strlen(name);
	const char	*p;

	for (i = 0; i < r->nheaders; i++) {
		if (strncasecmp(r->headers[i], name, n) != 0 ||
		    r->headers[i][n] != ':')
			continue;
		for (p = r->headers[i] + n + 1; *p == ' ' || *p == '\t'; p++)
			;
		return p;
	}
	return NULL;
}

/* The one part of a multipart/form-data POST; curl keeps a copy. */
static int
http_setup_file(struct http_call *call, const struct http_file *f)
{
	curl_mimepart	*part;

	if ((call->mime = curl_mime_init(call->easy)) == NULL ||
	    (part = curl_mime_addpart(call->mime)) == NULL ||
	    curl_mime_name(part, f->field) != CURLE_OK ||
	    curl_mime_filename(part, f->filename) != CURLE_OK ||
	    curl_mime_type(part, f->type) != CURLE_OK ||
	    curl_mime_data(part, f->data, f->len) != CURLE_OK)
		return -1;
	return curl_easy_setopt(call->easy, CURLOPT_MIMEPOST, call->mime) ==
	    CURLE_OK ? 0 : -1;
}

static int
http_setup(struct http_call *call, const struct http_req *req)
{
	CURL		*e = call->easy;
	int64_t		 timeout;
	size_t		 i;

	timeout = req->timeout_ms > 0 ? req->timeout_ms :
	    HTTP_DEFAULT_TIMEOUT_MS;
	curl_easy_setopt(e, CURLOPT_URL, req->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, call);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	    (long)QS_MIN(timeout, 10000));
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call->errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, call);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, http_header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, call);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "qscale/" QSCALE_VERSION);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	/* the instance metadata service is link-local: no proxy reaches it */
	if (req->no_proxy)
		curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	if (req->file != NULL) {
		if (http_setup_file(call, req->file) == -1)
			return -1;
	} else if (req->body != NULL || strcmp(req->method, "GET") != 0) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)(req->body != NULL ? req->body_len : 0));
		curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS,
		    req->body != NULL ? req->body : "");
	}
	if (strcmp(req->method, "GET") != 0 &&
	    strcmp(req->method, "POST") != 0)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
	else if (strcmp(req->method, "GET") == 0 && req->body != NULL)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "GET");
	/* No "Expect: 100-continue" round trip for larger bodies. */
	call->headers = curl_slist_append(NULL, "Expect:");
	for (i = 0; req->headers != NULL && req->headers[i] != NULL; i++)
		call->headers = curl_slist_append(call->headers,
		    req->headers[i]);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, call->headers);
	return 0;
}

/*
 * Starts a call.  Returns NULL only when curl cannot take it; otherwise
 * done() runs exactly once, later, from the loop (never from here).
 */
struct http_call *
http_request(struct http_client *c, const struct http_req *req,
    http_done_fn done, void *arg)
{
	struct http_call	*call;

	call = xcalloc(1, sizeof(*call));
	call->client = c;
	call->done = done;
	call->arg = arg;
	call->max_body = req->max_body > 0 ? req->max_body :
	    HTTP_DEFAULT_MAX_BODY;
	call->resp.body = xstrdup("");
	call->body_cap = 1;
	if ((call->easy = curl_easy_init()) == NULL) {
		http_resp_clear(&call->resp);
		free(call);
		return NULL;
	}
	if (http_setup(call, req) == -1) {
		curl_easy_cleanup(call->easy);
		curl_mime_free(call->mime);
		curl_slist_free_all(call->headers);
		http_resp_clear(&call->resp);
		free(call);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&c->calls, call, entry);
	c->ncalls++;
	if (curl_multi_add_handle(c->multi, call->easy) != CURLM_OK) {
		http_call_free(call);
		return NULL;
	}
	return call;
}

/* The callback of a cancelled call never runs. */
void
http_call_cancel(struct http_call *call)
{
	if (call == NULL)
		return;
	if (call->in_callback)	/* freed once the callback returns */
		return;
	http_call_free(call);
}

static void
http_finish(struct http_call *call, CURLcode code)
{
	struct http_resp	*r = &call->resp;
	curl_off_t		 us = 0;

	r->curl_code = code;
	curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(call->easy, CURLINFO_TOTAL_TIME_T, &us);
	r->elapsed_ms = (int64_t)(us / 1000);
	if (r->too_large)
		snprintf(r->error, sizeof(r->error), "response larger than "
		    "%zu bytes", call->max_body);
	else if (code != CURLE_OK)
		snprintf(r->error, sizeof(r->error), "%s",
		    call->errbuf[0] != '\0' ? call->errbuf :
		    curl_easy_strerror(code));
	call->in_callback = 1;
	call->done(r, call->arg);
	call->in_callback = 0;
	http_call_free(call);
}

static void
http_check_done(struct http_client *c)
{
	CURLMsg			*msg;
	struct http_call	*call;
	int			 left;

	while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
		    (char **)&call);
		http_finish(call, msg->data.result);
	}
}
