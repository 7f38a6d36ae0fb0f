/*
 * creds.c: where the AWS keys come from, in this order:
 *
 *   1. the configuration's aws.access_key_id and aws.secret_access_key
 *      (the config module fills them from AWS_ACCESS_KEY_ID and friends
 *      when the file does not set them), with aws.session_token;
 *   2. the shared credentials file (AWS_SHARED_CREDENTIALS_FILE or
 *      ~/.aws/credentials), profile aws.profile, AWS_PROFILE or default;
 *   3. with aws.use_iam_role, the instance role through IMDSv2: a token
 *      (PUT), the role name, then its keys, fetched on the loop and
 *      fetched again before they expire.
 *
 * Whoever needs keys asks with aws_creds_get() and is called back from
 * the loop; the keys are then aws_creds_current().  The source is kept
 * for logs and qscaled --check.
 */
#include <sys/queue.h>

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <event2/event.h>

#include "common.h"
#include "ec2.h"
#include "http.h"

#define IMDS_DEFAULT		"http://169.254.169.254/"
#define IMDS_TOKEN_TTL		21600	/* s */
#define IMDS_TIMEOUT_MS		2000
#define IMDS_MAX_BODY		(64 * 1024)
#define CREDS_REFRESH_BEFORE	(5 * 60 * 1000)	/* ms before the end */
#define CREDS_USABLE_MARGIN	1000	/* ms: not used after that */
#define CREDS_RETRY_MS		10000	/* after a failed refresh */
#define CREDS_FAIL_HOLD_MS	1000	/* a failure holds so long */
#define CREDS_REFRESH_MIN	500	/* ms between two refreshes */

enum creds_kind { CREDS_NONE, CREDS_STATIC, CREDS_ROLE };
enum imds_step { IMDS_TOKEN, IMDS_ROLE, IMDS_CREDS };

struct aws_creds_wait {
	TAILQ_ENTRY(aws_creds_wait)	 entry;
	struct aws_creds_provider	*p;
	aws_creds_fn			 fn;
	void				*arg;
};
TAILQ_HEAD(creds_waiters, aws_creds_wait);

struct aws_creds_provider {
	struct event_base	*base;
	struct http_client	*http;
	enum creds_kind		 kind;
	struct aws_creds	 creds;
	int			 have;
	int64_t			 stale_ms;	/* refresh from then */
	char			 error[512];	/* why there are none */
	struct creds_waiters	 waiters;
	struct event		*ev_notify;
	struct event		*ev_refresh;
	/* IMDSv2 */
	char			*imds;		/* ends with '/' */
	char			*token;		/* secret */
	int64_t			 token_until;	/* mono ms */
	char			 role[128];
	enum imds_step		 step;
	int			 retried;	/* after a 401 */
	int			 fetching;
	struct http_call	*call;
	int64_t			 failed_mono;
};

static void	imds_fetch(struct aws_creds_provider *);

void
aws_creds_clear(struct aws_creds *c)
{
	free(c->access_key_id);
	freezero_str(c->secret_access_key);
	freezero_str(c->session_token);
	memset(c, 0, sizeof(*c));
}

static int
creds_usable(const struct aws_creds_provider *p)
{
	return p->have && (p->creds.expires_ms == 0 ||
	    now_ms() < p->creds.expires_ms - CREDS_USABLE_MARGIN);
}

static void
creds_set(struct aws_creds *c, const char *id, const char *secret,
    const char *token, const char *source)
{
	aws_creds_clear(c);
	c->access_key_id = xstrdup(id);
	c->secret_access_key = xstrdup(secret);
	if (token != NULL && *token != '\0')
		c->session_token = xstrdup(token);
	snprintf(c->source, sizeof(c->source), "%s", source);
	mask_register(c->secret_access_key);
	mask_register(c->session_token);
}

static char *
trim(char *s)
{
	char	*e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

struct ini_state {
	const char	*profile;
	int		 in;		/* in the profile's section */
	int		 found;
	char		*id, *secret, *token;
};

static int
ini_line(struct ini_state *st, char *line, const char *path, int lineno,
    char *err, size_t errlen)
{
	char	*s = trim(line), *eq, *k, *v, *e;

	if (*s == '\0' || *s == '#' || *s == ';')
		return 0;
	if (*s == '[') {
		if ((e = strchr(s, ']')) == NULL) {
			snprintf(err, errlen, "%s:%d: unterminated section",
			    path, lineno);
			return -1;
		}
		*e = '\0';
		st->in = strcmp(trim(s + 1), st->profile) == 0;
		st->found |= st->in;
		return 0;
	}
	if (!st->in)
		return 0;
	if ((eq = strchr(s, '=')) == NULL) {
		snprintf(err, errlen, "%s:%d: expected key = value", path,
		    lineno);
		return -1;
	}
	*eq = '\0';
	k = trim(s);
	v = trim(eq + 1);
	if (strcasecmp(k, "aws_access_key_id") == 0) {
		free(st->id);
		st->id = xstrdup(v);
	} else if (strcasecmp(k, "aws_secret_access_key") == 0) {
		freezero_str(st->secret);
		st->secret = xstrdup(v);
	} else if (strcasecmp(k, "aws_session_token") == 0 ||
	    strcasecmp(k, "aws_security_token") == 0) {
		freezero_str(st->token);
		st->token = xstrdup(v);
	}
	return 0;
}

/*
 * Reads one profile of a shared credentials file.  Returns 1 with the
 * keys in c, 0 when the file or the profile is not there, -1 on an
 * unreadable file, a syntax error or an incomplete profile.
 */
int
aws_shared_file_read(const char *path, const char *profile,
    struct aws_creds *c, char *err, size_t errlen)
{
	struct ini_state	 st;
	FILE			*f;
	char			*line = NULL, src[96];
	size_t			 cap = 0;
	int			 lineno = 0, rc = 0;

	if ((f = fopen_regular(path, err, errlen)) == NULL)
		return errno == ENOENT ? 0 : -1;
	memset(&st, 0, sizeof(st));
	st.profile = profile;
	while (rc == 0 && getline(&line, &cap, f) != -1)
		rc = ini_line(&st, line, path, ++lineno, err, errlen);
	if (line != NULL)
		explicit_bzero(line, cap);
	free(line);
	fclose(f);
	if (rc == 0 && st.found && (st.id == NULL || st.secret == NULL ||
	    *st.id == '\0' || *st.secret == '\0')) {
		snprintf(err, errlen, "%s: profile [%s] lacks %s", path,
		    profile, st.id == NULL || *st.id == '\0' ?
		    "aws_access_key_id" : "aws_secret_access_key");
		rc = -1;
	}
	if (rc == 0 && st.found) {
		snprintf(src, sizeof(src), "shared file %s [%s]", path,
		    profile);
		creds_set(c, st.id, st.secret, st.token, src);
		rc = 1;
	}
	free(st.id);
	freezero_str(st.secret);
	freezero_str(st.token);
	return rc;
}

/* The shared file's keys: 1 found, 0 none there, -1 error. */
static int
creds_from_shared(struct aws_creds_provider *p, const struct conf_aws *aws)
{
	const char	*path = getenv("AWS_SHARED_CREDENTIALS_FILE");
	const char	*profile = aws->profile, *home;
	struct passwd	*pw;
	char		 buf[1024];
	int		 explicit_profile, rc;

	if (profile == NULL || *profile == '\0')
		profile = getenv("AWS_PROFILE");
	explicit_profile = profile != NULL && *profile != '\0';
	if (!explicit_profile)
		profile = "default";
	if (path == NULL || *path == '\0') {
		if ((home = getenv("HOME")) == NULL &&
		    (pw = getpwuid(getuid())) != NULL)
			home = pw->pw_dir;
		if (home == NULL)
			return 0;
		if (snprintf(buf, sizeof(buf), "%s/.aws/credentials", home) >=
		    (int)sizeof(buf))
			return 0;
		path = buf;
	}
	rc = aws_shared_file_read(path, profile, &p->creds, p->error,
	    sizeof(p->error));
	if (rc == 0 && explicit_profile) {
		snprintf(p->error, sizeof(p->error), "AWS profile [%.64s] "
		    "not found in %.300s", profile, path);
		return -1;
	}
	return rc;
}

static void
creds_resolve(struct aws_creds_provider *p, const struct conf_aws *aws)
{
	const char	*id = aws->access_key_id;
	const char	*sk = aws->secret_access_key;
	int		 rc;

	if ((id != NULL && *id != '\0') || (sk != NULL && *sk != '\0')) {
		if (id == NULL || *id == '\0' || sk == NULL || *sk == '\0') {
			snprintf(p->error, sizeof(p->error), "aws.%s is set "
			    "but aws.%s is not", id != NULL && *id != '\0' ?
			    "access_key_id" : "secret_access_key",
			    id != NULL && *id != '\0' ? "secret_access_key" :
			    "access_key_id");
			return;
		}
		creds_set(&p->creds, id, sk, aws->session_token, "config");
		/* the config module says "FILE:LINE" or "environment VAR" */
		if (aws->access_key_source != NULL &&
		    strncmp(aws->access_key_source, "environment", 11) == 0)
			snprintf(p->creds.source, sizeof(p->creds.source), "%s",
			    aws->access_key_source);
		else if (aws->access_key_source != NULL)
			snprintf(p->creds.source, sizeof(p->creds.source),
			    "config %s", aws->access_key_source);
		p->kind = CREDS_STATIC;
		p->have = 1;
		return;
	}
	if ((rc = creds_from_shared(p, aws)) != 0) {
		if (rc == 1) {
			p->kind = CREDS_STATIC;
			p->have = 1;
		}
		return;
	}
	if (aws->use_iam_role) {
		p->kind = CREDS_ROLE;
		return;
	}
	snprintf(p->error, sizeof(p->error), "no AWS credentials: set "
	    "aws.access_key_id and aws.secret_access_key (or "
	    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), write a shared "
	    "credentials file, or set aws.use_iam_role");
}

/*
 * Hands the outcome to one waiter per turn of the loop: a callback may
 * free the provider, so nothing here touches it after the call.
 */
static void
creds_notify_cb(evutil_socket_t fd, short what, void *arg)
{
	struct aws_creds_provider	*p = arg;
	struct aws_creds_wait		*w;
	aws_creds_fn			 fn;
	void				*warg;
	const char			*err;

	(void)fd;
	(void)what;
	if ((w = TAILQ_FIRST(&p->waiters)) == NULL)
		return;
	if (creds_usable(p))
		err = NULL;
	else if (p->fetching)
		return;		/* the fetch notifies when it ends */
	else
		err = p->error[0] != '\0' ? p->error : "no AWS credentials";
	TAILQ_REMOVE(&p->waiters, w, entry);
	if (TAILQ_FIRST(&p->waiters) != NULL)
		timer_add_ms(p->ev_notify, 0);
	fn = w->fn;
	warg = w->arg;
	free(w);
	fn(err, warg);
}

static void
creds_refresh_cb(evutil_socket_t fd, short what, void *arg)
{
	struct aws_creds_provider	*p = arg;

	(void)fd;
	(void)what;
	if (!p->fetching)
		imds_fetch(p);
}

struct aws_creds_provider *
aws_creds_provider_new(struct event_base *base, struct http_client *http,
    const struct qscale_conf *conf)
{
	struct aws_creds_provider	*p;
	const char			*ep;

	p = xcalloc(1, sizeof(*p));
	p->base = base;
	p->http = http;
	TAILQ_INIT(&p->waiters);
	p->ev_notify = evtimer_new(base, creds_notify_cb, p);
	p->ev_refresh = evtimer_new(base, creds_refresh_cb, p);
	if ((ep = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT")) == NULL ||
	    *ep == '\0')
		ep = IMDS_DEFAULT;
	xasprintf(&p->imds, "%s%s", ep, ep[strlen(ep) - 1] == '/' ? "" : "/");
	creds_resolve(p, &conf->aws);
	if (p->have)
		log_info("AWS credentials from %s (%s)", p->creds.source,
		    p->creds.access_key_id);
	else if (p->kind == CREDS_ROLE)
		log_info("AWS credentials from the instance role, through %s",
		    p->imds);
	else
		log_warnx("%s", p->error);
	return p;
}

void
aws_creds_provider_free(struct aws_creds_provider *p)
{
	struct aws_creds_wait	*w;

	if (p == NULL)
		return;
	while ((w = TAILQ_FIRST(&p->waiters)) != NULL) {
		TAILQ_REMOVE(&p->waiters, w, entry);
		free(w);
	}
	http_call_cancel(p->call);
	event_free(p->ev_notify);
	event_free(p->ev_refresh);
	aws_creds_clear(&p->creds);
	freezero_str(p->token);
	free(p->imds);
	free(p);
}

/*
 * Asks for keys.  fn runs from the loop, once, with NULL when
 * aws_creds_current() has usable keys, or with the reason there are
 * none.  The returned handle can cancel it until then.
 */
struct aws_creds_wait *
aws_creds_get(struct aws_creds_provider *p, aws_creds_fn fn, void *arg)
{
	struct aws_creds_wait	*w;

	w = xcalloc(1, sizeof(*w));
	w->p = p;
	w->fn = fn;
	w->arg = arg;
	TAILQ_INSERT_TAIL(&p->waiters, w, entry);
	if (p->kind == CREDS_ROLE && !p->fetching && (!creds_usable(p) ||
	    now_ms() >= p->stale_ms) && (p->failed_mono == 0 ||
	    mono_ms() - p->failed_mono >= CREDS_FAIL_HOLD_MS || p->have))
		imds_fetch(p);
	timer_add_ms(p->ev_notify, 0);
	return w;
}

void
aws_creds_cancel(struct aws_creds_wait *w)
{
	if (w == NULL)
		return;
	TAILQ_REMOVE(&w->p->waiters, w, entry);
	free(w);
}

const struct aws_creds *
aws_creds_current(const struct aws_creds_provider *p)
{
	return creds_usable(p) ? &p->creds : NULL;
}

/* Where the keys come from ("instance role NAME", ...), or NULL. */
const char *
aws_creds_source(const struct aws_creds_provider *p)
{
	if (p->have)
		return p->creds.source;
	if (p->kind == CREDS_ROLE)
		return "instance role";
	return NULL;
}

/* IMDSv2 */

static void	imds_done(const struct http_resp *, void *);

static void
imds_send(struct aws_creds_provider *p, const char *method, const char *path)
{
	struct http_req	 req;
	char		*url, *hdr = NULL;
	const char	*headers[2] = { NULL, NULL };

	xasprintf(&url, "%s%s", p->imds, path);
	if (p->step == IMDS_TOKEN)
		xasprintf(&hdr, "X-aws-ec2-metadata-token-ttl-seconds: %d",
		    IMDS_TOKEN_TTL);
	else
		xasprintf(&hdr, "X-aws-ec2-metadata-token: %s", p->token);
	headers[0] = hdr;
	memset(&req, 0, sizeof(req));
	req.method = method;
	req.url = url;
	req.headers = headers;
	req.timeout_ms = IMDS_TIMEOUT_MS;
	req.max_body = IMDS_MAX_BODY;
	req.no_proxy = 1;
	p->call = http_request(p->http, &req, imds_done, p);
	freezero_str(hdr);
	free(url);
	if (p->call == NULL) {
		p->fetching = 0;
		snprintf(p->error, sizeof(p->error), "instance role: cannot "
		    "start a request to %s", p->imds);
		timer_add_ms(p->ev_notify, 0);
	}
}

static void
imds_next(struct aws_creds_provider *p)
{
	char	*path;

	switch (p->step) {
	case IMDS_TOKEN:
		imds_send(p, "PUT", "latest/api/token");
		break;
	case IMDS_ROLE:
		imds_send(p, "GET",
		    "latest/meta-data/iam/security-credentials/");
		break;
	case IMDS_CREDS:
		xasprintf(&path, "latest/meta-data/iam/security-credentials/%s",
		    p->role);
		imds_send(p, "GET", path);
		free(path);
		break;
	}
}

static void
imds_fetch(struct aws_creds_provider *p)
{
	p->fetching = 1;
	p->retried = 0;
	p->step = p->token != NULL && mono_ms() < p->token_until ?
	    IMDS_ROLE : IMDS_TOKEN;
	imds_next(p);
}

static void
imds_fail(struct aws_creds_provider *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
imds_fail(struct aws_creds_provider *p, const char *fmt, ...)
{
	char	 why[256];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	p->fetching = 0;
	p->failed_mono = mono_ms();
	snprintf(p->error, sizeof(p->error), "instance role (%s): %s",
	    p->imds, why);
	if (creds_usable(p)) {
		log_warnx("AWS credentials refresh failed, still using the "
		    "current ones: %s", p->error);
		timer_add_ms(p->ev_refresh, QS_MIN(CREDS_RETRY_MS,
		    QS_MAX(0, p->creds.expires_ms - CREDS_USABLE_MARGIN -
		    now_ms())));
	} else
		log_warnx("%s", p->error);
	timer_add_ms(p->ev_notify, 0);
}

/* The failure of one IMDS request, in words. */
static void
imds_resp_error(const struct http_resp *r, char *buf, size_t len)
{
	char	*body;

	if (r->status == 0)
		snprintf(buf, len, "%s", r->error);
	else {
		body = xstrndup(r->body, QS_MIN(r->body_len, 80));
		body[strcspn(body, "\r\n")] = '\0';
		snprintf(buf, len, "HTTP %ld%s%s", r->status,
		    *body != '\0' ? ": " : "", body);
		free(body);
	}
}

static int
imds_role_name(struct aws_creds_provider *p, const char *body)
{
	size_t	 n = strcspn(body, "\r\n"), i;

	while (n > 0 && isspace((unsigned char)body[n - 1]))
		n--;
	if (n == 0 || n >= sizeof(p->role))
		return -1;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)body[i]) &&
		    strchr("+=,.@_-", body[i]) == NULL)
			return -1;
	memcpy(p->role, body, n);
	p->role[n] = '\0';
	return 0;
}

static const char *
jstr(const cJSON *o, const char *key)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) && *v->valuestring != '\0' ?
	    v->valuestring : NULL;
}

static void
imds_creds(struct aws_creds_provider *p, const struct http_resp *r)
{
	cJSON		*o = cJSON_ParseWithLength(r->body, r->body_len);
	const char	*id, *sk, *tok, *exp, *code;
	int64_t		 exp_ms = 0, now = now_ms(), life;
	char		 src[160], when[32];

	id = jstr(o, "AccessKeyId");
	sk = jstr(o, "SecretAccessKey");
	tok = jstr(o, "Token");
	exp = jstr(o, "Expiration");
	code = jstr(o, "Code");
	if (o == NULL || (code != NULL && strcmp(code, "Success") != 0) ||
	    id == NULL || sk == NULL || tok == NULL || exp == NULL ||
	    parse_iso8601(exp, &exp_ms) == -1 || exp_ms <= now) {
		imds_fail(p, "role %s: %s", p->role, o == NULL ? "the "
		    "credentials are not JSON" : code != NULL &&
		    strcmp(code, "Success") != 0 ? code : exp_ms != 0 &&
		    exp_ms <= now ? "the credentials have already expired" :
		    "AccessKeyId, SecretAccessKey, Token or Expiration "
		    "missing or bad");
		cJSON_Delete(o);
		return;
	}
	if (exp_ms - now <= CREDS_USABLE_MARGIN) {
		imds_fail(p, "role %s: the credentials expire in %lld ms",
		    p->role, (long long)(exp_ms - now));
		cJSON_Delete(o);
		return;
	}
	snprintf(src, sizeof(src), "instance role %s", p->role);
	creds_set(&p->creds, id, sk, tok, src);
	cJSON_Delete(o);
	p->creds.expires_ms = exp_ms;
	p->have = 1;
	p->fetching = 0;
	p->failed_mono = 0;
	p->error[0] = '\0';
	life = exp_ms - now;
	p->stale_ms = exp_ms - QS_MIN(CREDS_REFRESH_BEFORE, life / 2);
	/* the same keys again near their end must not refresh in a loop */
	p->stale_ms = QS_MAX(p->stale_ms, now + CREDS_REFRESH_MIN);
	timer_add_ms(p->ev_refresh, p->stale_ms - now);
	fmt_time_ms(exp_ms, when, sizeof(when));
	log_info("AWS credentials from %s (%s), valid until %s", src,
	    p->creds.access_key_id, when);
	timer_add_ms(p->ev_notify, 0);
}

/* A 401 means the token went stale: get a new one, once. */
static int
imds_retry_401(struct aws_creds_provider *p, const struct http_resp *r)
{
	if (r->status != 401 || p->retried)
		return 0;
	p->retried = 1;
	freezero_str(p->token);
	p->token = NULL;
	p->step = IMDS_TOKEN;
	imds_next(p);
	return 1;
}

static void
imds_done(const struct http_resp *r, void *arg)
{
	struct aws_creds_provider	*p = arg;
	char				 why[320];

	p->call = NULL;
	imds_resp_error(r, why, sizeof(why));
	switch (p->step) {
	case IMDS_TOKEN:
		if (r->status != 200 || r->body_len == 0) {
			imds_fail(p, "PUT latest/api/token: %s", why);
			return;
		}
		freezero_str(p->token);
		p->token = xstrndup(r->body, strcspn(r->body, "\r\n"));
		mask_register(p->token);
		p->token_until = mono_ms() + (IMDS_TOKEN_TTL - 60) * 1000LL;
		p->step = IMDS_ROLE;
		imds_next(p);
		break;
	case IMDS_ROLE:
		if (imds_retry_401(p, r))
			return;
		if (r->status == 404)
			imds_fail(p, "no IAM role is attached to this "
			    "instance");
		else if (r->status != 200)
			imds_fail(p, "GET iam/security-credentials/: %s", why);
		else if (imds_role_name(p, r->body) == -1)
			imds_fail(p, "bad role name in the answer");
		else {
			p->step = IMDS_CREDS;
			imds_next(p);
		}
		break;
	case IMDS_CREDS:
		if (imds_retry_401(p, r))
			return;
		if (r->status != 200)
			imds_fail(p, "GET iam/security-credentials/%s: %s",
			    p->role, why);
		else
			imds_creds(p, r);
		break;
	}
}
