/*
 * ec2.h: the EC2 Query API client.  Calls are signed with SigV4, sent on
 * the libevent loop through http.h, parsed with libxml2, and their errors
 * classified once, in one table.  Throttling and transient errors are
 * retried here with capped exponential backoff and full jitter, within
 * a retry budget; everything else goes straight back to the caller.
 */
#ifndef QSCALE_EC2_H
#define QSCALE_EC2_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct event_base;
struct http_client;
struct qscale_conf;

enum ec2_err_class {
	EC2_OK = 0,
	EC2_ERR_CAPACITY,	/* InsufficientInstanceCapacity, ... */
	EC2_ERR_SPOT_CAPACITY,	/* SpotMaxPriceTooLow, MaxSpotInstanceCount... */
	EC2_ERR_QUOTA,		/* InstanceLimitExceeded, VcpuLimitExceeded */
	EC2_ERR_THROTTLE,	/* RequestLimitExceeded, Throttling, 429 */
	EC2_ERR_TRANSIENT,	/* 5xx, network, timeouts, empty body */
	EC2_ERR_AUTH,		/* AuthFailure, UnauthorizedOperation, ... */
	EC2_ERR_INVALID,	/* InvalidParameterValue, Invalid*.Malformed */
	EC2_ERR_NOT_FOUND,	/* Invalid*.NotFound, NoSuchEntity */
	EC2_ERR_UNKNOWN
};

struct ec2_error {
	enum ec2_err_class	 cls;
	int			 http_status;	/* 0: no response */
	char			 code[96];	/* AWS code, or "" */
	char			 message[512];
	char			 request_id[96];
	int			 attempts;	/* calls made, retries included */
};

struct ec2_tag {
	char		*key;
	char		*value;
};

struct ec2_instance {
	char		 id[32];
	char		 state[24];	/* pending, running, terminated, ... */
	int		 state_code;
	char		 type[32];
	char		 az[32];
	char		 subnet[32];
	char		 image[32];
	char		 private_ip[48];
	char		 state_reason[96];	/* stateReason/code */
	char		 client_token[72];
	int		 spot;		/* instanceLifecycle = spot */
	int64_t		 launch_ms;	/* launchTime, epoch ms */
	struct ec2_tag	*tags;
	size_t		 ntags;
};

/* What one RunInstances call asks for. */
struct ec2_launch {
	const char		*image_id;
	const char		*instance_type;
	int			 min_count;
	int			 max_count;
	const char		*subnet_id;		/* or NULL */
	const char		*availability_zone;	/* without subnet */
	const char *const	*security_groups;
	size_t			 nsecurity_groups;
	const char		*key_name;
	const char		*user_data;	/* the script; encoded here */
	const char		*iam_profile_arn;
	const char		*iam_profile_name;
	const char		*ebs_device;
	int			 ebs_size_gb;	/* 0: no BlockDeviceMapping */
	const char		*ebs_type;
	int			 ebs_iops;	/* 0: the type's baseline */
	int			 ebs_throughput;	/* MiB/s; 0: baseline */
	const struct ec2_tag	*tags;		/* ownership and user tags */
	size_t			 ntags;
	int			 spot;
	const char		*client_token;
	int			 dry_run;
	const cJSON		*custom_launch_spec;	/* merged in last */
};

struct ec2_filter {
	const char		*name;		/* "tag:qscale:resource" */
	const char *const	*values;
	size_t			 nvalues;
};

struct ec2_term_result {
	char		 id[32];
	char		 previous_state[24];
	char		 current_state[24];
	int		 not_found;	/* EC2 did not know this id */
};

/* Query parameters, in the order added. */
struct ec2_params {
	char		**key;
	char		**value;
	size_t		  n;
};

/* Counters a worker process reports; one per action. */
struct ec2_call_stats {
	char		 action[32];
	uint64_t	 calls;		/* HTTP requests, retries included */
	uint64_t	 errors;	/* calls that ended in an error */
	uint64_t	 retries;
	uint64_t	 latency_ms_sum;
	uint64_t	 latency_hist[12];	/* see EC2_LATENCY_BOUNDS_MS */
};
#define EC2_LATENCY_BOUNDS_MS	{ 5, 10, 25, 50, 100, 250, 500, 1000, \
				  2500, 5000, 10000 }	/* and +Inf */

typedef void	(*ec2_instances_fn)(const struct ec2_error *,
		    const struct ec2_instance *, size_t, void *);
typedef void	(*ec2_terminate_fn)(const struct ec2_error *,
		    const struct ec2_term_result *, size_t, void *);
typedef void	(*ec2_done_fn)(const struct ec2_error *, void *);
typedef void	(*ec2_console_fn)(const struct ec2_error *, const char *,
		    void *);
typedef void	(*ec2_raw_fn)(const struct ec2_error *, const char *, size_t,
		    void *);

struct ec2_client;
struct aws_creds_provider;

/*
 * ec2.c: the client.  Every call returns at once; its callback runs
 * exactly once, later, from the loop (never from inside the call),
 * unless the client is freed first.  The error is NULL on success
 * (a DryRun that would have succeeded is a success with no instances).
 * The calls return -1 only on arguments no request can be made of.
 */
struct ec2_client *ec2_client_new(struct event_base *, struct http_client *,
		    const struct qscale_conf *, char *, size_t);
void		 ec2_client_free(struct ec2_client *);
const char	*ec2_client_region(const struct ec2_client *);
const char	*ec2_client_endpoint(const struct ec2_client *);
struct aws_creds_provider *ec2_client_creds(struct ec2_client *);
void		 ec2_client_set_page_size(struct ec2_client *, int);
void		 ec2_client_set_retry_budget(struct ec2_client *, int);
void		 ec2_client_set_max_body(struct ec2_client *, size_t);
int		 ec2_client_retry_budget(const struct ec2_client *);
int		 ec2_describe_instances(struct ec2_client *,
		    const struct ec2_filter *, size_t, ec2_instances_fn,
		    void *);
int		 ec2_run_instances(struct ec2_client *,
		    const struct ec2_launch *, ec2_instances_fn, void *);
int		 ec2_terminate_instances(struct ec2_client *,
		    const char *const *, size_t, ec2_terminate_fn, void *);
int		 ec2_create_tags(struct ec2_client *, const char *const *,
		    size_t, const struct ec2_tag *, size_t, ec2_done_fn,
		    void *);
int		 ec2_get_console_output(struct ec2_client *, const char *,
		    ec2_console_fn, void *);
int		 ec2_call(struct ec2_client *, const char *,
		    const struct ec2_params *, int, ec2_raw_fn, void *);
const struct ec2_call_stats *ec2_client_stats(const struct ec2_client *,
		    size_t *);
const char	*ec2_instance_tag(const struct ec2_instance *, const char *);
int64_t		 ec2_retry_delay_ms(int, int64_t, int64_t, uint32_t);

#define EC2_API_VERSION		"2016-11-15"
#define EC2_TERMINATE_BATCH	1000	/* ids per TerminateInstances */
#define EC2_PAGE_SIZE		1000	/* DescribeInstances MaxResults */
#define EC2_RETRY_BUDGET	500	/* tokens */
#define EC2_RETRY_COST		5
#define EC2_RETRY_COST_TIMEOUT	10
#define EC2_DEFAULT_ATTEMPTS	5
#define EC2_DEFAULT_BASE_DELAY	200	/* ms */
#define EC2_DEFAULT_MAX_DELAY	20000	/* ms */

/* ec2_query.c: Query parameters, pure and unit-tested */
void		 ec2_params_add(struct ec2_params *, const char *,
		    const char *);
void		 ec2_params_addf(struct ec2_params *, const char *,
		    const char *, ...)
		    __attribute__((format(printf, 3, 4)));
const char	*ec2_params_get(const struct ec2_params *, const char *);
void		 ec2_params_remove_prefix(struct ec2_params *, const char *);
void		 ec2_params_clear(struct ec2_params *);
char		*ec2_params_encode(const struct ec2_params *);
int		 ec2_build_run_instances(const struct ec2_launch *,
		    struct ec2_params *, char *, size_t);
int		 ec2_flatten_spec(const cJSON *, struct ec2_params *, char *,
		    size_t);
char		*ec2_base64_encode(const void *, size_t);
char		*ec2_base64_decode(const char *, size_t *);

/* ec2_xml.c: responses and errors, pure and unit-tested */
int		 ec2_parse_error(long, const char *, size_t,
		    struct ec2_error *);
int		 ec2_parse_instances(const char *, size_t,
		    struct ec2_instance **, size_t *, char **, char *, size_t);
int		 ec2_parse_terminate(const char *, size_t,
		    struct ec2_term_result **, size_t *, char *, size_t);
int		 ec2_parse_console(const char *, size_t, char **, char *,
		    size_t);
void		 ec2_instances_free(struct ec2_instance *, size_t);
const char	*ec2_err_class_name(enum ec2_err_class);
enum ec2_err_class ec2_classify(const char *, int);
int		 ec2_code_spot_sensitive(const char *);

/*
 * sigv4.c: AWS Signature Version 4.  Signs the content type (when the
 * request has one), host and x-amz-date headers, plus
 * x-amz-security-token with session credentials, and nothing else.
 */
struct aws_creds {
	char		*access_key_id;
	char		*secret_access_key;	/* secret */
	char		*session_token;		/* secret, or NULL */
	int64_t		 expires_ms;		/* 0: does not expire */
	char		 source[96];		/* "config FILE:LINE", ... */
};

struct sigv4_req {
	const char	*method;	/* "POST" */
	const char	*host;		/* the Host header: name[:port] */
	const char	*path;		/* "/" */
	const char	*query;		/* canonical query string, or "" */
	const char	*content_type;	/* NULL: none */
	const char	*amz_date;	/* "20150830T123600Z" */
	const char	*region;
	const char	*service;	/* "ec2" */
	const char	*body;
	size_t		 body_len;
};

struct sigv4_sig {
	char		*canonical_request;
	char		*string_to_sign;
	unsigned char	 signing_key[32];	/* secret */
	char		 signature[65];
	char		*signed_headers;
	char		*authorization;
};

int		 sigv4_sign(const struct aws_creds *, const struct sigv4_req *,
		    struct sigv4_sig *);
void		 sigv4_sig_clear(struct sigv4_sig *);
void		 sigv4_amz_date(int64_t, char *, size_t);
void		 sigv4_hex(const unsigned char *, size_t, char *);

/*
 * creds.c: where the keys come from, in this order: the configuration
 * (which may have taken them from the environment), the shared
 * credentials file, the instance role through IMDSv2.  The role's keys
 * are fetched on the loop and refreshed before they expire.
 */
typedef void	(*aws_creds_fn)(const char *, void *);
struct aws_creds_wait;
struct aws_creds_provider *aws_creds_provider_new(struct event_base *,
		    struct http_client *, const struct qscale_conf *);
void		 aws_creds_provider_free(struct aws_creds_provider *);
struct aws_creds_wait *aws_creds_get(struct aws_creds_provider *,
		    aws_creds_fn, void *);
void		 aws_creds_cancel(struct aws_creds_wait *);
const struct aws_creds *aws_creds_current(
		    const struct aws_creds_provider *);
const char	*aws_creds_source(const struct aws_creds_provider *);
void		 aws_creds_clear(struct aws_creds *);
int		 aws_shared_file_read(const char *, const char *,
		    struct aws_creds *, char *, size_t);

#endif /* QSCALE_EC2_H */
