/*
 * clearml.h: the ClearML REST API client.  JSON over POST on the shared
 * HTTP module, never blocking.  It logs in with the access key and
 * secret (Basic) for a JWT, sends the JWT as a Bearer token after, logs
 * in again when under 12 h of validity remain (half its lifetime, for a
 * token shorter than a day) and once on any 401, and turns the
 * envelope's meta into one classified error.  Transient errors are
 * retried a few times with backoff and jitter on event timers.
 *
 * Every call returns 0 when it was started (its callback then runs
 * exactly once, later, from the loop) or -1 when its arguments are
 * unusable (no callback).  A callback's error is NULL on success; the
 * data it is given lives only during the callback.  Do not free the
 * client from one of its callbacks.
 */
#ifndef QSCALE_CLEARML_H
#define QSCALE_CLEARML_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct event_base;
struct http_client;

enum cml_err_class {
	CML_OK = 0,
	CML_ERR_AUTH,		/* 401, 403 */
	CML_ERR_NOT_FOUND,	/* 404, invalid task/queue id */
	CML_ERR_INVALID,	/* other 400s: validation, bad status change */
	CML_ERR_SERVER,		/* 500, or a body that is not the envelope */
	CML_ERR_TRANSIENT	/* network, timeout, 502/503/504/429 */
};

struct cml_error {
	enum cml_err_class	 cls;
	int			 http_status;	/* 0: no response */
	int			 code;		/* meta.result_code */
	int			 subcode;	/* meta.result_subcode */
	char			 endpoint[64];	/* "queues.get_all" */
	char			 message[512];	/* meta.result_msg or why */
};

struct cml_entry {
	char		 task[40];
	int64_t		 added_ms;
};

struct cml_queue {
	char			 id[40];
	char			*name;
	struct cml_entry	*entries;	/* FIFO: [0] is popped next */
	size_t			 nentries;
};

struct cml_worker {
	char		*id;
	char		*task;		/* NULL: idle */
	char		*task_name;
	int64_t		 register_ms;
	int64_t		 last_activity_ms;
	int64_t		 last_report_ms;	/* 0: never reported */
	char		**queues;	/* queue ids it listens to */
	size_t		 nqueues;
};

/* The claims of a JWT that the client reads (not verified). */
struct cml_jwt {
	int64_t		 exp;		/* epoch seconds */
	int64_t		 iat;		/* epoch seconds; 0: absent */
	char		 api_version[16];	/* "2.31"; "": absent */
	char		 server_version[32];
};

struct cml_task {
	char		 id[40];
	char		*name;
	char		*status;
	char		*status_reason;
	char		*comment;
	char		*last_worker;
	char		 queue[40];	/* execution.queue */
	int64_t		 last_update_ms;
	int64_t		 status_changed_ms;	/* 0: unknown */
};

/*
 * A list call read page by page (the server answers at most 500 items
 * to a call without paging): the items of every page, in order.
 */
#define CML_PAGE_SIZE		500
#define CML_MAX_PAGES		1000

struct cml_pages {
	const char	*key;		/* "tasks", "queues", "projects" */
	cJSON		*items;		/* every page's, an array */
	size_t		 expected;	/* 0: unknown; else at most that */
	int		 page;		/* the next to ask for */
	int		 largest;	/* items of the largest page yet */
	char		 first[64];	/* id of the last page's first item */
};

typedef void	(*cml_done_fn)(const struct cml_error *, void *);
typedef void	(*cml_id_fn)(const struct cml_error *, const char *, void *);
typedef void	(*cml_queue_fn)(const struct cml_error *,
		    const struct cml_queue *, void *);
typedef void	(*cml_workers_fn)(const struct cml_error *,
		    const struct cml_worker *, size_t, void *);
typedef void	(*cml_tasks_fn)(const struct cml_error *,
		    const struct cml_task *, size_t, void *);
typedef void	(*cml_json_fn)(const struct cml_error *, const cJSON *,
		    void *);

/* Counters a worker process reports; one per endpoint. */
struct cml_call_stats {
	char		 endpoint[48];
	uint64_t	 calls;		/* HTTP requests, retries included */
	uint64_t	 errors;	/* requests that ended in an error */
	uint64_t	 retries;	/* transient errors retried */
	uint64_t	 latency_ms_sum;
	uint64_t	 latency_hist[12];	/* EC2_LATENCY_BOUNDS_MS */
};

/* Log in again when less than this much validity remains. */
#define CML_LOGIN_MARGIN_MS	(12LL * 3600 * 1000)
#define CML_DEFAULT_RETRIES	3	/* transient errors, per call */
#define CML_DEFAULT_BACKOFF_MS	500	/* doubled each retry, jittered */
#define CML_MAX_BACKOFF_MS	8000
#define CML_DEFAULT_TIMEOUT_MS	15000	/* one HTTP request */

struct cml_client;

/* clearml.c */
struct cml_client *cml_client_new(struct event_base *, struct http_client *,
		    const char *, const char *, const char *);
void		 cml_client_free(struct cml_client *);
const char	*cml_auth_header(const struct cml_client *);
void		 cml_client_set_retry(struct cml_client *, int, int64_t,
		    int64_t);
int		 cml_login(struct cml_client *, cml_done_fn, void *);
const char	*cml_server_version(const struct cml_client *);
const char	*cml_api_version(const struct cml_client *);
int		 cml_call(struct cml_client *, const char *, const cJSON *,
		    cml_json_fn, void *);
int		 cml_call_lines(struct cml_client *, const char *,
		    const char *, cml_json_fn, void *);
int		 cml_call_pages(struct cml_client *, const char *,
		    const cJSON *, const char *, size_t, cml_json_fn, void *);
int		 cml_tasks_query(struct cml_client *, const cJSON *,
		    cml_tasks_fn, void *);
int		 cml_queue_resolve(struct cml_client *, const char *,
		    cml_id_fn, void *);
int		 cml_queue_get(struct cml_client *, const char *,
		    cml_queue_fn, void *);
int		 cml_workers_get_all(struct cml_client *, const char *, int,
		    cml_workers_fn, void *);
int		 cml_workers_unregister(struct cml_client *, const char *,
		    cml_done_fn, void *);
int		 cml_tasks_get_all(struct cml_client *, const char *const *,
		    size_t, cml_tasks_fn, void *);
int		 cml_task_get(struct cml_client *, const char *,
		    cml_tasks_fn, void *);
int		 cml_task_stopped(struct cml_client *, const char *,
		    const char *, cml_done_fn, void *);
int		 cml_task_enqueue(struct cml_client *, const char *,
		    const char *, const char *, cml_done_fn, void *);
int		 cml_task_requeue(struct cml_client *, const char *,
		    const char *, const char *, cml_done_fn, void *);
const struct cml_call_stats *cml_client_stats(const struct cml_client *,
		    size_t *);
const char	*cml_err_class_name(enum cml_err_class);

/*
 * clearml_parse.c: pure, unit-tested.  The parsers take the envelope's
 * data object, check the type of every field they read (a wrong type is
 * an error naming the field, in err), ignore the fields they do not know
 * and return 0, or -1 on error.
 */
int		 cml_parse_envelope(long, const char *, size_t, const char *,
		    cJSON **, struct cml_error *);
void		 cml_error_set(struct cml_error *, enum cml_err_class,
		    const char *, const char *, ...)
		    __attribute__((format(printf, 4, 5)));
enum cml_err_class cml_classify(int, int);
int		 cml_parse_queue(const cJSON *, struct cml_queue *, char *,
		    size_t);
int		 cml_parse_queue_by_id(const cJSON *, const char *,
		    struct cml_queue *, char *, size_t);
int		 cml_parse_queue_id_by_name(const cJSON *, const char *, char *,
		    size_t, char *, size_t);
void		 cml_queue_clear(struct cml_queue *);
int		 cml_parse_workers(const cJSON *, struct cml_worker **,
		    size_t *, char *, size_t);
void		 cml_workers_filter(struct cml_worker *, size_t *,
		    const char *);
void		 cml_workers_free(struct cml_worker *, size_t);
int		 cml_parse_tasks(const cJSON *, struct cml_task **, size_t *,
		    char *, size_t);
int		 cml_page_take(struct cml_pages *, const cJSON *, char *,
		    size_t);
void		 cml_tasks_free(struct cml_task *, size_t);
int		 cml_jwt_parse(const char *, struct cml_jwt *, char *, size_t);
int		 cml_jwt_claims(const char *, int64_t *, char *, size_t,
		    char *, size_t);
int		 cml_glob_match(const char *, const char *);
char		*cml_regex_escape(const char *);
int		 cml_api_at_least(const char *, int, int);

#endif /* QSCALE_CLEARML_H */
