/*
 * http.h: HTTP on the libevent loop, through curl's multi interface.
 * One http_client per event base; the EC2 and ClearML clients share it,
 * so connections are reused across calls.  Nothing here ever blocks:
 * http_request() returns at once and the callback runs from the loop.
 */
#ifndef QSCALE_HTTP_H
#define QSCALE_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct http_client;
struct http_call;

#define HTTP_DEFAULT_TIMEOUT_MS		30000
#define HTTP_DEFAULT_MAX_BODY		(16 * 1024 * 1024)

/* One file sent as multipart/form-data (a ClearML files server upload). */
struct http_file {
	const char		*field;		/* the form field's name */
	const char		*filename;
	const char		*type;		/* "text/plain" */
	const char		*data;		/* copied by the call */
	size_t			 len;
};

struct http_req {
	const char		*method;	/* "GET", "POST", "PUT" */
	const char		*url;
	const char *const	*headers;	/* "Name: value", NULL-ended */
	const char		*body;		/* may be NULL */
	size_t			 body_len;
	int64_t			 timeout_ms;	/* 0: HTTP_DEFAULT_TIMEOUT_MS */
	size_t			 max_body;	/* 0: HTTP_DEFAULT_MAX_BODY */
	int			 no_proxy;	/* never through a proxy (IMDS) */
	const struct http_file	*file;		/* POST it instead of body */
};

struct http_resp {
	long		 status;	/* HTTP status; 0 when none arrived */
	int		 curl_code;	/* CURLE_OK (0) when the exchange worked */
	char		 error[256];	/* why it failed, when it did */
	char		*body;		/* NUL-terminated, never NULL */
	size_t		 body_len;
	int		 too_large;	/* the body passed max_body: cut off */
	char		**headers;	/* "name: value", name lower-cased */
	size_t		 nheaders;
	int64_t		 elapsed_ms;
};

/* The response is only valid during the callback. */
typedef void	(*http_done_fn)(const struct http_resp *, void *);

/* http.c */
struct http_client *http_client_new(struct event_base *);
void		 http_client_free(struct http_client *);
struct http_call *http_request(struct http_client *, const struct http_req *,
		    http_done_fn, void *);
void		 http_call_cancel(struct http_call *);
size_t		 http_inflight(const struct http_client *);
const char	*http_resp_header(const struct http_resp *, const char *);
int		 http_tls_refused(const struct http_resp *);

#endif /* QSCALE_HTTP_H */
