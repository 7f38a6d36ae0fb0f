/*
 * status.c: the supervisor's HTTP status server (libevent's evhttp, on
 * status.listen, loopback by default).  /status is what "qscalectl status
 * -j" prints, /metrics the Prometheus text, / the dashboard, and
 * /api/series and /api/log feed its plots and its console.
 *
 * It runs in the supervisor's loop, so it must never stall or break it:
 * every answer is built from memory, requests are small and bounded in
 * size and time, and the connections are bounded in number, in all and
 * per address, a new one taking the place of the oldest (see below).
 * Every answer goes through the masking that logs use.
 */
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <netinet/in.h>

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "common.h"
#include "supervisor.h"
#include "dashboard_assets.h"

#define ST_MAX_CONNS		64	/* open at once */
#define ST_MAX_PER_PEER		16	/* from one address */
#define ST_MAX_TRACKED		(2 * ST_MAX_CONNS) /* and closing */
#define ST_REQUEST_MS		5000	/* first byte in to last out */
#define ST_SHED_REPORT_MS	60000
#define ST_MAX_HEADERS		(16 * 1024)
#define ST_MAX_BODY		1024
#define ST_TIMEOUT_S		10
#define ST_BACKLOG		128
#define ST_READ_HIWAT		(64 * 1024)
#define ST_SWEEP_MS		250
#define ST_LOG_LINES		1000	/* kept for /api/log */
#define ST_LOG_REPLY		500	/* most lines in one answer */
#define ST_RANGE_DEFAULT_S	3600
#define ST_RANGE_MAX_S		(24 * 3600)

#define ST_CSP	"default-src 'none'; script-src 'self'; style-src 'self'; " \
		"connect-src 'self'; img-src 'self' data:; base-uri 'none'; " \
		"form-action 'none'; frame-ancestors 'none'"

struct st_conn;

struct st_asset {
	const char		*path;
	const char		*type;
	const unsigned char	*data;
	size_t			 len;
};

static const struct st_asset st_assets[] = {
	{ "/", "text/html; charset=utf-8", dashboard_html,
	    sizeof(dashboard_html) },
	{ "/index.html", "text/html; charset=utf-8", dashboard_html,
	    sizeof(dashboard_html) },
	{ "/dashboard.js", "text/javascript; charset=utf-8", dashboard_js,
	    sizeof(dashboard_js) },
	{ "/dashboard.css", "text/css; charset=utf-8", dashboard_css,
	    sizeof(dashboard_css) },
};

static struct {
	struct sup		*sup;
	struct evhttp		*http;
	struct evconnlistener	*listener;
	struct event		*ev_sample;
	struct event		*ev_sweep;
	void			*log_sub;
	struct event		*ev_admit;
	struct st_conn		*conns[ST_MAX_TRACKED];
	size_t			 nconns;	/* with those closing */
	size_t			 nlive;	/* admitted, not closing */
	int			 shedding;	/* closing, reported */
	uint64_t		 nshed;	/* closed since, unreported */
	int64_t			 shed_since_ms;
	int			 paused;	/* listener off: too many */
	int			 closing;
	int			 loopback;
	char			 addr[300];	/* as configured */
	char			*lines[ST_LOG_LINES];
	uint64_t		 next_seq;	/* of the next log line */
} st;

/* ---- connections ---- */

/*
 * evhttp (2.1) neither caps nor reports its connections, so each one's
 * bufferevent is made here and held by one more reference: once evhttp
 * has freed it (its callbacks are cleared then) the sweep drops that
 * reference, which closes the socket, and counts it gone.  A read high
 * watermark bounds what a connection can buffer meanwhile.
 *
 * evhttp's timeout only bounds the time between two reads, so a client
 * sending a byte now and then would hold its connection for ever.  Here
 * the bytes coming in and going out are watched: a request is under way
 * from its first byte (a new connection's first request: from its
 * opening) until the last byte of its answer has gone, and one under way
 * longer than ST_REQUEST_MS is closed.  A new connection always gets
 * in: past ST_MAX_PER_PEER from its address, or past ST_MAX_CONNS in
 * all, the oldest idle one (of that address, or of all) is closed, or
 * when none is idle the one whose request has taken the longest.
 * Closing is a shutdown(2) of the socket, which evhttp takes as the peer
 * hanging up.
 */
struct st_conn {
	struct bufferevent		*bev;
	struct evbuffer_cb_entry	*in_cb;
	struct evbuffer_cb_entry	*out_cb;
	struct sockaddr_storage		 peer;
	int				 admitted;	/* peer known */
	int				 closing;	/* shut down */
	int				 reading;	/* a request came */
	int64_t				 since_ms;	/* its clock */
	int64_t				 idle_ms;	/* idle since */
};

static void
st_in_cb(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
	struct st_conn	*c = arg;

	(void)b;
	if (info->n_added == 0 || c->reading)
		return;
	c->reading = 1;
	if (c->since_ms == 0)
		c->since_ms = mono_ms();
}

/* The answer is out: idle, unless the next request has begun. */
static void
st_out_cb(struct evbuffer *b, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct st_conn	*c = arg;

	if (info->n_deleted == 0 || evbuffer_get_length(b) > 0)
		return;
	c->idle_ms = mono_ms();
	c->reading = evbuffer_get_length(bufferevent_get_input(c->bev)) > 0;
	c->since_ms = c->reading ? c->idle_ms : 0;
}

static void
st_conn_close(struct st_conn *c, const char *why)
{
	evutil_socket_t	 fd = bufferevent_getfd(c->bev);
	char		 host[NI_MAXHOST] = "?";

	if (c->closing)
		return;
	c->closing = 1;
	if (c->admitted)
		st.nlive--;
	if (fd != -1)
		shutdown(fd, SHUT_RDWR);
	if (c->admitted)
		getnameinfo((struct sockaddr *)&c->peer, sizeof(c->peer),
		    host, sizeof(host), NULL, 0, NI_NUMERICHOST);
	if (st.shedding) {
		st.nshed++;
		log_debug("status server: closed a connection from %s: %s",
		    host, why);
		return;
	}
	log_warnx("status server: closed a connection from %s: %s; more "
	    "such are counted and reported each minute", host, why);
	st.shedding = 1;
	st.shed_since_ms = mono_ms();
}

static void
st_conn_free(struct st_conn *c)
{
	evbuffer_remove_cb_entry(bufferevent_get_input(c->bev), c->in_cb);
	evbuffer_remove_cb_entry(bufferevent_get_output(c->bev), c->out_cb);
	bufferevent_decref(c->bev);
	free(c);
}

/* The address part of two peers, v4-mapped v6 taken as v4. */
static int
st_peer_key(const struct sockaddr_storage *ss, unsigned char key[16])
{
	const struct sockaddr_in	*in4 = (const void *)ss;
	const struct sockaddr_in6	*in6 = (const void *)ss;

	memset(key, 0, 16);
	if (ss->ss_family == AF_INET) {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &in4->sin_addr, 4);
	} else if (ss->ss_family == AF_INET6)
		memcpy(key, &in6->sin6_addr, 16);
	else
		return -1;
	return 0;
}

static int
st_peer_same(const struct st_conn *a, const struct st_conn *b)
{
	unsigned char	 ka[16], kb[16];

	if (st_peer_key(&a->peer, ka) == -1 || st_peer_key(&b->peer, kb) == -1)
		return 0;
	return memcmp(ka, kb, sizeof(ka)) == 0;
}

/*
 * Idle, unless its request is waiting in the kernel, not read yet: a
 * client that sent its request at once is not taken for a silent one.
 */
static int
st_conn_idle(struct st_conn *c)
{
	evutil_socket_t	 fd;
	int		 n = 0;

	if (c->reading)
		return 0;
	if ((fd = bufferevent_getfd(c->bev)) != -1 &&
	    ioctl(fd, FIONREAD, &n) == 0 && n > 0) {
		c->reading = 1;
		if (c->since_ms == 0)
			c->since_ms = mono_ms();
		return 0;
	}
	return 1;
}

/*
 * The connection to close for room: the oldest idle one, else the one
 * busy the longest; only among those like "like" when it is set.
 */
static struct st_conn *
st_victim(const struct st_conn *like, const struct st_conn *spare)
{
	struct st_conn	*c, *idle = NULL, *busy = NULL;
	size_t		 i;

	for (i = 0; i < st.nconns; i++) {
		c = st.conns[i];
		if (c == spare || c->closing || !c->admitted ||
		    (like != NULL && !st_peer_same(c, like)))
			continue;
		if (st_conn_idle(c)) {
			if (idle == NULL || c->idle_ms < idle->idle_ms)
				idle = c;
		} else if (busy == NULL || c->since_ms < busy->since_ms)
			busy = c;
	}
	return idle != NULL ? idle : busy;
}

static void
st_admit_one(struct st_conn *c)
{
	struct st_conn	*v;
	socklen_t	 len = sizeof(c->peer);
	size_t		 i, same = 0;
	evutil_socket_t	 fd = bufferevent_getfd(c->bev);

	c->admitted = 1;
	st.nlive++;
	if (fd == -1 || getpeername(fd, (struct sockaddr *)&c->peer,
	    &len) == -1) {
		memset(&c->peer, 0, sizeof(c->peer));
		return;
	}
	for (i = 0; i < st.nconns; i++)
		if (st.conns[i] != c && !st.conns[i]->closing &&
		    st.conns[i]->admitted && st_peer_same(st.conns[i], c))
			same++;
	if (same >= ST_MAX_PER_PEER && (v = st_victim(c, c)) != NULL)
		st_conn_close(v, "too many connections from one address");
	if (st.nlive > ST_MAX_CONNS && (v = st_victim(NULL, c)) != NULL)
		st_conn_close(v, "too many connections");
}

static void	st_sweep(void);

/* Once evhttp has given them their sockets: who they are from. */
static void
st_admit_cb(evutil_socket_t fd, short ev, void *arg)
{
	size_t	 i;

	(void)fd;
	(void)ev;
	(void)arg;
	st_sweep();
	for (i = 0; i < st.nconns; i++)
		if (!st.conns[i]->admitted)
			st_admit_one(st.conns[i]);
}

static void
st_sweep(void)
{
	bufferevent_data_cb	 rd, wr;
	bufferevent_event_cb	 ev;
	void			*arg;
	struct st_conn		*c;
	int64_t			 now = mono_ms();
	size_t			 i, j = 0;

	for (i = 0; i < st.nconns; i++) {
		c = st.conns[i];
		bufferevent_getcb(c->bev, &rd, &wr, &ev, &arg);
		if (rd == NULL && wr == NULL && ev == NULL) {
			if (!c->closing && c->admitted)
				st.nlive--;
			st_conn_free(c);
			continue;
		}
		if (c->admitted && c->since_ms != 0 &&
		    now - c->since_ms > ST_REQUEST_MS)
			st_conn_close(c, "request not complete in time");
		st.conns[j++] = c;
	}
	st.nconns = j;
	if (st.paused && !st.closing && st.nconns < ST_MAX_TRACKED) {
		st.paused = 0;
		evconnlistener_enable(st.listener);
	}
}

static struct bufferevent *
st_bev_cb(struct event_base *base, void *arg)
{
	struct bufferevent	*bev;
	struct st_conn		*c;

	(void)arg;
	if ((bev = bufferevent_socket_new(base, -1,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL)
		return NULL;
	bufferevent_setwatermark(bev, EV_READ, 0, ST_READ_HIWAT);
	if (st.nconns >= ST_MAX_TRACKED)	/* accepted while pausing */
		return bev;
	c = xcalloc(1, sizeof(*c));
	c->bev = bev;
	c->since_ms = c->idle_ms = mono_ms();	/* the first request's */
	c->in_cb = evbuffer_add_cb(bufferevent_get_input(bev), st_in_cb, c);
	c->out_cb = evbuffer_add_cb(bufferevent_get_output(bev), st_out_cb,
	    c);
	bufferevent_incref(bev);
	st.conns[st.nconns++] = c;
	event_active(st.ev_admit, EV_TIMEOUT, 0);
	if (st.nconns >= ST_MAX_TRACKED && !st.paused) {
		/* the kernel's backlog holds the next ones */
		st.paused = 1;
		evconnlistener_disable(st.listener);
	}
	return bev;
}

/*
 * Connections closed for being slow or too many: the first is logged,
 * the next ones counted and said once a minute while it goes on.
 */
static void
st_shed_report(void)
{
	int64_t	 now = mono_ms();

	if (!st.shedding || now - st.shed_since_ms < ST_SHED_REPORT_MS)
		return;
	if (st.nshed == 0) {
		st.shedding = 0;
		return;
	}
	log_warnx("status server: closed %llu more connection%s in the "
	    "last minute, too slow or too many",
	    (unsigned long long)st.nshed, st.nshed == 1 ? "" : "s");
	st.nshed = 0;
	st.shed_since_ms = now;
}

static void
st_sweep_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	st_sweep();
	st_shed_report();
}

/* ---- the console log's last lines, numbered ---- */

static void
st_log_line(const char *line, void *arg)
{
	size_t	 slot = st.next_seq % ST_LOG_LINES;

	(void)arg;
	free(st.lines[slot]);
	st.lines[slot] = xstrdup(line);
	st.next_seq++;
}

static uint64_t
st_log_first(void)
{
	return st.next_seq > ST_LOG_LINES ? st.next_seq - ST_LOG_LINES : 0;
}

/* ---- answers ---- */

static void
st_mask_tree(cJSON *o)
{
	cJSON	*e;
	char	*m;

	if (cJSON_IsString(o) && o->valuestring != NULL) {
		m = mask_dup(o->valuestring);
		if (strcmp(m, o->valuestring) != 0)
			cJSON_SetValuestring(o, m);
		free(m);
	}
	cJSON_ArrayForEach(e, o)
		st_mask_tree(e);
}

static void
st_headers(struct evhttp_request *req, const char *type)
{
	struct evkeyvalq	*h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Type", type);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(h, "Referrer-Policy", "no-referrer");
}

static void
st_reply(struct evhttp_request *req, int code, const char *reason,
    const char *type, const void *body, size_t len)
{
	struct evbuffer	*b = evbuffer_new();

	st_headers(req, type);
	if (b != NULL && len > 0)
		evbuffer_add(b, body, len);
	evhttp_send_reply(req, code, reason, b);
	if (b != NULL)
		evbuffer_free(b);
}

/* Text that may hold a secret passes the masking on its way out. */
static void
st_reply_text(struct evhttp_request *req, int code, const char *reason,
    const char *type, const char *text)
{
	char	*m = mask_dup(text != NULL ? text : "");

	st_reply(req, code, reason, type, m, strlen(m));
	free(m);
}

/* Consumes o. */
static void
st_reply_json(struct evhttp_request *req, cJSON *o)
{
	char	*text;

	st_mask_tree(o);
	text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (text == NULL) {
		st_reply_text(req, 500, "Internal Server Error",
		    "text/plain; charset=utf-8", "out of memory\n");
		return;
	}
	st_reply_text(req, 200, "OK", "application/json", text);
	free(text);
}

static void
st_not_found(struct evhttp_request *req, const char *path)
{
	char	*text;

	xasprintf(&text, "%.200s: not found; try /, /status or /metrics\n",
	    path);
	st_reply_text(req, 404, "Not Found", "text/plain; charset=utf-8",
	    text);
	free(text);
}

/* A number from the query string, within bounds, or the default. */
static int64_t
st_query_int(struct evkeyvalq *q, const char *key, int64_t lo, int64_t hi,
    int64_t dflt)
{
	const char	*v = evhttp_find_header(q, key);
	char		*end;
	long long	 n;

	if (v == NULL || *v == '\0')
		return dflt;
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno != 0 || *end != '\0')
		return dflt;
	return QS_MAX(lo, QS_MIN(hi, n));
}

static void
st_series(struct evhttp_request *req, struct evkeyvalq *q)
{
	int64_t	 range = st_query_int(q, "range", 60, ST_RANGE_MAX_S,
		    ST_RANGE_DEFAULT_S);

	st_reply_json(req, metrics_series_json(st.sup, now_ms(),
	    range * 1000));
}

/*
 * Lines numbered from 0 since the start; "after" is the number of the
 * last line the page has.  Without it, the last "limit" lines.
 */
static void
st_log(struct evhttp_request *req, struct evkeyvalq *q)
{
	int64_t		 limit = st_query_int(q, "limit", 1, ST_LOG_REPLY,
			    200);
	int64_t		 after = st_query_int(q, "after", -1, INT64_MAX - 1,
			    -2);
	uint64_t	 from, seq, first = st_log_first();
	cJSON		*o = cJSON_CreateObject(), *arr;

	if (after == -2)
		from = st.next_seq > (uint64_t)limit ?
		    st.next_seq - (uint64_t)limit : 0;
	else
		from = (uint64_t)(after + 1);
	cJSON_AddBoolToObject(o, "truncated", from < first);
	if (from < first)
		from = first;
	if (from > st.next_seq)	/* from before a restart */
		from = st.next_seq > (uint64_t)limit ?
		    st.next_seq - (uint64_t)limit : 0;
	if (st.next_seq - from > (uint64_t)limit)
		from = st.next_seq - (uint64_t)limit;
	cJSON_AddNumberToObject(o, "started", (double)st.sup->started_ms);
	cJSON_AddNumberToObject(o, "first", (double)from);
	cJSON_AddNumberToObject(o, "last", (double)st.next_seq - 1);
	arr = cJSON_AddArrayToObject(o, "lines");
	for (seq = from; seq < st.next_seq; seq++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(
		    st.lines[seq % ST_LOG_LINES]));
	st_reply_json(req, o);
}

static void
st_metrics(struct evhttp_request *req)
{
	char	*text = metrics_render(st.sup);

	if (text == NULL) {
		st_reply_text(req, 500, "Internal Server Error",
		    "text/plain; charset=utf-8", "out of memory\n");
		return;
	}
	st_reply_text(req, 200, "OK", "text/plain; version=0.0.4; "
	    "charset=utf-8", text);
	free(text);
}

static int
st_asset(struct evhttp_request *req, const char *path)
{
	const struct st_asset	*a;
	size_t			 i;

	for (i = 0; i < QS_ARRAYLEN(st_assets); i++) {
		a = &st_assets[i];
		if (strcmp(path, a->path) != 0)
			continue;
		if (strncmp(a->type, "text/html", 9) == 0) {
			struct evkeyvalq *h =
			    evhttp_request_get_output_headers(req);

			evhttp_add_header(h, "Content-Security-Policy",
			    ST_CSP);
			evhttp_add_header(h, "X-Frame-Options", "DENY");
		}
		st_reply(req, 200, "OK", a->type, a->data, a->len);
		return 1;
	}
	return 0;
}

static void
st_request_cb(struct evhttp_request *req, void *arg)
{
	const struct evhttp_uri	*uri = evhttp_request_get_evhttp_uri(req);
	const char		*path = uri != NULL ?
				    evhttp_uri_get_path(uri) : NULL;
	const char		*query = uri != NULL ?
				    evhttp_uri_get_query(uri) : NULL;
	struct evkeyvalq	 q;

	(void)arg;
	if (path == NULL || *path == '\0')
		path = "/";
	TAILQ_INIT(&q);
	if (query != NULL && evhttp_parse_query_str(query, &q) == -1) {
		st_reply_text(req, 400, "Bad Request",
		    "text/plain; charset=utf-8", "malformed query string\n");
		return;
	}
	if (strcmp(path, "/status") == 0)
		st_reply_json(req, sup_status_json(st.sup));
	else if (strcmp(path, "/metrics") == 0)
		st_metrics(req);
	else if (strcmp(path, "/api/series") == 0)
		st_series(req, &q);
	else if (strcmp(path, "/api/log") == 0)
		st_log(req, &q);
	else if (!st_asset(req, path))
		st_not_found(req, path);
	evhttp_clear_headers(&q);
}

/* ---- start and stop ---- */

static void
st_sample_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	metrics_sample(arg, now_ms());
}

static int
st_loopback(const struct sockaddr *sa)
{
	const struct sockaddr_in	*in4 = (const void *)sa;
	const struct sockaddr_in6	*in6 = (const void *)sa;

	if (sa->sa_family == AF_INET)
		return (ntohl(in4->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
		    (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) &&
		    in6->sin6_addr.s6_addr[12] == 127);
	return 0;
}

/* "host:port" or "[v6]:port" into its parts. */
static int
st_split(const char *listen, char *host, size_t hlen, char *port,
    size_t plen)
{
	const char	*colon, *h = listen;
	size_t		 n;

	if (*listen == '[') {
		if ((colon = strchr(listen, ']')) == NULL || colon[1] != ':')
			return -1;
		h = listen + 1;
		n = (size_t)(colon - h);
		colon++;
	} else {
		if ((colon = strrchr(listen, ':')) == NULL)
			return -1;
		n = (size_t)(colon - listen);
	}
	if (n == 0 || n >= hlen || strlen(colon + 1) == 0 ||
	    strlen(colon + 1) >= plen ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return -1;
	memcpy(host, h, n);
	host[n] = '\0';
	snprintf(port, plen, "%s", colon + 1);
	return 0;
}

static struct evconnlistener *
st_bind(struct event_base *base, const char *listen, char *err,
    size_t errlen)
{
	struct addrinfo		 hints, *res = NULL, *ai;
	struct evconnlistener	*l = NULL;
	char			 host[256], port[16];
	int			 rc, saved = 0;

	if (st_split(listen, host, sizeof(host), port, sizeof(port)) == -1) {
		snprintf(err, errlen, "status.listen \"%s\": expected "
		    "host:port, as in 127.0.0.1:9800", listen);
		return NULL;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		snprintf(err, errlen, "status.listen %s: %s", listen,
		    gai_strerror(rc));
		return NULL;
	}
	for (ai = res; ai != NULL && l == NULL; ai = ai->ai_next) {
		l = evconnlistener_new_bind(base, NULL, NULL,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC |
		    LEV_OPT_REUSEABLE, ST_BACKLOG, ai->ai_addr,
		    (int)ai->ai_addrlen);
		if (l == NULL)
			saved = errno;
		else
			st.loopback = st_loopback(ai->ai_addr);
	}
	freeaddrinfo(res);
	if (l == NULL)
		snprintf(err, errlen, "status.listen %s: cannot listen "
		    "there: %s", listen, strerror(saved));
	return l;
}

/*
 * Binds the status server; NULL or "" turns it off.  On error err says
 * why, naming the address, and nothing is left open.
 */
int
status_listen(struct sup *sup, const char *listen, char *err, size_t errlen)
{
	memset(&st, 0, sizeof(st));
	st.sup = sup;
	if (listen == NULL || *listen == '\0')
		return 0;
	snprintf(st.addr, sizeof(st.addr), "%s", listen);
	if ((st.listener = st_bind(sup->base, listen, err, errlen)) == NULL)
		return -1;
	if ((st.http = evhttp_new(sup->base)) == NULL ||
	    evhttp_bind_listener(st.http, st.listener) == NULL) {
		snprintf(err, errlen, "status.listen %s: cannot set up the "
		    "HTTP server", listen);
		if (st.http != NULL)
			evhttp_free(st.http);
		else
			evconnlistener_free(st.listener);
		st.http = NULL;
		st.listener = NULL;
		return -1;
	}
	evhttp_set_max_headers_size(st.http, ST_MAX_HEADERS);
	evhttp_set_max_body_size(st.http, ST_MAX_BODY);
	evhttp_set_timeout(st.http, ST_TIMEOUT_S);
	evhttp_set_allowed_methods(st.http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_bevcb(st.http, st_bev_cb, NULL);
	evhttp_set_gencb(st.http, st_request_cb, NULL);
	st.log_sub = logsink_subscribe("*", st_log_line, NULL);
	st.ev_sample = event_new(sup->base, -1, EV_PERSIST, st_sample_cb,
	    sup);
	timer_add_ms(st.ev_sample, METRICS_FINE_STEP_MS);
	st.ev_sweep = event_new(sup->base, -1, EV_PERSIST, st_sweep_cb, NULL);
	timer_add_ms(st.ev_sweep, ST_SWEEP_MS);
	st.ev_admit = event_new(sup->base, -1, 0, st_admit_cb, NULL);
	metrics_sample(sup, now_ms());
	return 0;
}

/* Once the log files are set up: say where, and warn when exposed. */
void
status_announce(void)
{
	if (st.http == NULL) {
		log_info("status server disabled (status.listen is empty)");
		return;
	}
	if (st.loopback)
		log_info("status server on http://%s/", st.addr);
	else
		log_warnx("status server on http://%s/, which is not a "
		    "loopback address: whoever can reach it can read the "
		    "status, the metrics and the log", st.addr);
}

void
status_close(void)
{
	size_t	 i;

	st.closing = 1;
	if (st.log_sub != NULL)
		logsink_unsubscribe(st.log_sub);
	if (st.ev_sample != NULL)
		event_free(st.ev_sample);
	if (st.ev_sweep != NULL)
		event_free(st.ev_sweep);
	if (st.ev_admit != NULL)
		event_free(st.ev_admit);
	if (st.http != NULL)
		evhttp_free(st.http);	/* frees the listener too */
	st_sweep();		/* evhttp has freed every connection */
	for (i = 0; i < ST_LOG_LINES; i++)
		free(st.lines[i]);
	memset(&st, 0, sizeof(st));
}
