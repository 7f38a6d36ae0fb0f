/*
 * report_logs.c: the log files as artifacts of the report task, as
 * ClearML's app lists its instance's logs in its task's ARTIFACTS tab,
 * each with a download link.
 *
 * A round uploads qscaled.log and each resource's log (the last
 * REPORT_LOG_MAX_BYTES of each, masked once more) to the ClearML files
 * server as the SDK does (a multipart POST whose part is named by the
 * object's path, the API server's token with it), then records them with
 * one tasks.add_or_update_artifacts.  Rounds run every
 * clearml.report_logs_interval and once at a graceful stop, before the
 * task is marked stopped (a stopped task takes no artifacts).  Never
 * blocking: every call is on the loop; reading a few MB of local file is
 * the only wait.  A failed round is logged once and tried again at the
 * next one.
 */
#include <sys/queue.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common.h"
#include "clearml.h"
#include "http.h"
#include "supervisor.h"

#define REPORT_LOG_MAX_BYTES	(4 * 1024 * 1024)
#define REPORT_LOG_TIMEOUT_MS	30000

struct upload;

struct report_logs {
	LIST_HEAD(, upload)	 ups;		/* under way */
	struct http_client	*http;
	struct cml_client	*cml;
	char			*files_server;	/* no trailing '/' */
	char			*log_dir;
	char			**keys;		/* "qscaled.log", "gpu.log" */
	size_t			 nkeys;
	int64_t			 interval_ms;	/* 0: only at stop */
	int64_t			 last_mono;	/* the last round's start */
	char			 task_id[40];
	int			 pending;	/* uploads in flight */
	int			 failed;	/* uploads of this round */
	cJSON			*arts;		/* what this round sent */
	report_logs_done_fn	 done;
	void			*arg;
	char			 err[256];	/* the error last logged */
	int			 said;		/* no files server: said once */
};

struct upload {
	LIST_ENTRY(upload)	 entry;
	struct report_logs	*rl;
	char			*server;	/* for messages */
	char			*key;
	char			*uri;
	size_t			 size;
	char			 hash[65];
};

static void
upload_free(struct upload *u)
{
	LIST_REMOVE(u, entry);
	free(u->server);
	free(u->key);
	free(u->uri);
	free(u);
}

static void
wipe_free(char *s, size_t len)
{
	if (s == NULL)
		return;
	explicit_bzero(s, len);
	free(s);
}

static void
conf_clear(struct report_logs *rl)
{
	size_t	 i;

	for (i = 0; i < rl->nkeys; i++)
		free(rl->keys[i]);
	free(rl->keys);
	free(rl->files_server);
	free(rl->log_dir);
	rl->keys = NULL;
	rl->nkeys = 0;
	rl->files_server = rl->log_dir = NULL;
}

/*
 * What to upload, where and how often, from CONF: at the start and at
 * each reload, a round under way or not (it keeps its own copies).
 */
void
report_logs_conf(struct report_logs *rl, const struct qscale_conf *conf)
{
	const char	*fs = conf->clearml.files_server;
	size_t		 i;

	conf_clear(rl);
	if (fs != NULL && *fs != '\0') {
		rl->files_server = xstrdup(fs);
		for (i = strlen(rl->files_server); i > 0 &&
		    rl->files_server[i - 1] == '/'; i--)
			rl->files_server[i - 1] = '\0';
	}
	rl->log_dir = conf->log_dir != NULL ? xstrdup(conf->log_dir) : NULL;
	rl->interval_ms = conf->clearml.report_logs_interval;
	rl->keys = xcalloc(conf->nresources + 1, sizeof(*rl->keys));
	rl->keys[rl->nkeys++] = xstrdup("qscaled.log");
	for (i = 0; i < conf->nresources; i++)
		xasprintf(&rl->keys[rl->nkeys++], "%s.log",
		    conf->resources[i].name);
}

struct report_logs *
report_logs_new(struct http_client *http, struct cml_client *cml,
    const struct qscale_conf *conf)
{
	struct report_logs	*rl = xcalloc(1, sizeof(*rl));

	LIST_INIT(&rl->ups);
	rl->http = http;
	rl->cml = cml;
	rl->last_mono = mono_ms();
	report_logs_conf(rl, conf);
	return rl;
}

/* After the HTTP and ClearML clients: their calls are gone with them. */
void
report_logs_free(struct report_logs *rl)
{
	if (rl == NULL)
		return;
	while (!LIST_EMPTY(&rl->ups))
		upload_free(LIST_FIRST(&rl->ups));
	conf_clear(rl);
	cJSON_Delete(rl->arts);
	free(rl);
}

int
report_logs_busy(const struct report_logs *rl)
{
	return rl != NULL && (rl->pending > 0 || rl->arts != NULL);
}

/* A path part the files server stores as it is: no '/', no spaces. */
static void
path_part(char *dst, size_t len, const char *s)
{
	size_t	 i;

	for (i = 0; s[i] != '\0' && i + 1 < len; i++)
		dst[i] = isalnum((unsigned char)s[i]) || s[i] == '.' ||
		    s[i] == '_' || s[i] == '-' ? s[i] : '_';
	dst[i] = '\0';
}

/* The last REPORT_LOG_MAX_BYTES of a file, from a line start; NULL if
 * it is missing or empty. */
static char *
read_tail(const char *path, size_t *lenp)
{
	struct stat	 st;
	char		*buf, *nl;
	off_t		 from = 0;
	size_t		 len = 0;
	ssize_t		 n;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
	    O_NONBLOCK)) == -1)
		return NULL;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_size == 0) {
		close(fd);
		return NULL;
	}
	if (st.st_size > REPORT_LOG_MAX_BYTES)
		from = st.st_size - REPORT_LOG_MAX_BYTES;
	buf = xmalloc((size_t)(st.st_size - from) + 1);
	while (len < (size_t)(st.st_size - from) && (n = pread(fd, buf + len,
	    (size_t)(st.st_size - from) - len, from + (off_t)len)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	if (from > 0 && (nl = memchr(buf, '\n', len)) != NULL) {
		len -= (size_t)(nl + 1 - buf);
		memmove(buf, nl + 1, len + 1);
	}
	/* a NUL in the file would cut the masking short: none in logs */
	len = strlen(buf);
	*lenp = len;
	return buf;
}

static void
sha256_of(const char *data, size_t len, char out[65])
{
	unsigned char	 md[EVP_MAX_MD_SIZE];
	unsigned int	 mdlen = 0, i;

	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1)
		mdlen = 0;
	for (i = 0; i < mdlen && i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	out[2 * i] = '\0';
}

static void
round_error(struct report_logs *rl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
round_error(struct report_logs *rl, const char *fmt, ...)
{
	char	 buf[256];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (strcmp(buf, rl->err) != 0)
		log_warnx("ClearML reporting: log files not uploaded: %s", buf);
	snprintf(rl->err, sizeof(rl->err), "%s", buf);
}

static void
round_end(struct report_logs *rl)
{
	report_logs_done_fn	 done = rl->done;
	void			*arg = rl->arg;

	cJSON_Delete(rl->arts);
	rl->arts = NULL;
	rl->done = NULL;
	if (done != NULL)
		done(arg);
}

static void
recorded_cb(const struct cml_error *err, const cJSON *data, void *arg)
{
	struct report_logs	*rl = arg;

	(void)data;
	if (err != NULL)
		round_error(rl, "tasks.add_or_update_artifacts: %s",
		    err->message);
	else if (rl->failed == 0) {
		if (rl->err[0] != '\0')
			log_info("ClearML reporting: log files uploaded again");
		rl->err[0] = '\0';
	}
	round_end(rl);
}

/* Every upload is back: the artifacts that made it, in one call. */
static void
round_record(struct report_logs *rl)
{
	cJSON	*req;

	if (cJSON_GetArraySize(rl->arts) == 0) {
		round_end(rl);
		return;
	}
	req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "task", rl->task_id);
	cJSON_AddItemReferenceToObject(req, "artifacts", rl->arts);
	cJSON_AddBoolToObject(req, "force", 1);
	if (cml_call(rl->cml, "tasks.add_or_update_artifacts", req,
	    recorded_cb, rl) == -1)
		round_end(rl);
	cJSON_Delete(req);
}

static cJSON *
artifact_json(const struct upload *u)
{
	cJSON	*a = cJSON_CreateObject(), *td;

	cJSON_AddStringToObject(a, "key", u->key);
	cJSON_AddStringToObject(a, "type", "custom");
	cJSON_AddStringToObject(a, "mode", "output");
	cJSON_AddStringToObject(a, "uri", u->uri);
	cJSON_AddNumberToObject(a, "content_size", (double)u->size);
	cJSON_AddStringToObject(a, "hash", u->hash);
	cJSON_AddNumberToObject(a, "timestamp", (double)(now_ms() / 1000));
	td = cJSON_AddObjectToObject(a, "type_data");
	cJSON_AddStringToObject(td, "content_type", "text/plain");
	return a;
}

static void
uploaded_cb(const struct http_resp *resp, void *arg)
{
	struct upload		*u = arg;
	struct report_logs	*rl = u->rl;

	if (resp->status == 200)
		cJSON_AddItemToArray(rl->arts, artifact_json(u));
	else {
		rl->failed++;
		if (resp->status == 0)
			round_error(rl, "%s: %s", u->server, resp->error);
		else
			round_error(rl, "%s: HTTP %ld", u->server,
			    resp->status);
	}
	upload_free(u);
	if (--rl->pending == 0)
		round_record(rl);
}

/* One file to the files server; 0 if its upload is under way. */
static int
upload_one(struct report_logs *rl, const char *key, const char *dir,
    int64_t timeout_ms)
{
	struct http_file	 file;
	struct http_req		 req;
	struct upload		*u;
	const char		*hdrs[2] = { NULL, NULL };
	char			*path, *text, *masked, *obj, *url;
	size_t			 len;

	xasprintf(&path, "%s/%s", rl->log_dir, key);
	text = read_tail(path, &len);
	free(path);
	if (text == NULL)
		return -1;
	masked = mask_dup(text);
	wipe_free(text, len);
	xasprintf(&obj, "%s/%s/%s", dir, key, key);
	u = xcalloc(1, sizeof(*u));
	LIST_INSERT_HEAD(&rl->ups, u, entry);
	u->rl = rl;
	u->server = xstrdup(rl->files_server);
	u->key = xstrdup(key);
	xasprintf(&u->uri, "%s/%s", rl->files_server, obj);
	u->size = strlen(masked);
	sha256_of(masked, u->size, u->hash);
	memset(&file, 0, sizeof(file));
	file.field = obj;
	file.filename = key;
	file.type = "text/plain";
	file.data = masked;
	file.len = u->size;
	memset(&req, 0, sizeof(req));
	req.method = "POST";
	xasprintf(&url, "%s/", rl->files_server);
	req.url = url;
	hdrs[0] = cml_auth_header(rl->cml);
	req.headers = hdrs;
	req.file = &file;
	req.timeout_ms = timeout_ms;
	req.max_body = 64 * 1024;
	if (http_request(rl->http, &req, uploaded_cb, u) == NULL) {
		upload_free(u);
		u = NULL;
	}
	free(url);
	free(obj);
	wipe_free(masked, file.len);
	return u != NULL ? 0 : -1;
}

/*
 * A round, if one is due (or AT_STOP): DONE(ARG) runs when it is over,
 * or at once when none starts.  PROJECT and NAME make the files' path,
 * as the SDK lays out a task's artifacts.
 */
void
report_logs_round(struct report_logs *rl, const char *task_id,
    const char *project, const char *name, int at_stop,
    report_logs_done_fn done, void *arg)
{
	char	 p[128], n[128], *dir;
	size_t	 i;

	if (rl == NULL || rl->files_server == NULL || rl->log_dir == NULL ||
	    report_logs_busy(rl) || (!at_stop && (rl->interval_ms == 0 ||
	    mono_ms() - rl->last_mono < rl->interval_ms))) {
		if (rl != NULL && rl->files_server == NULL && !rl->said) {
			log_info("ClearML reporting: clearml.files_server is "
			    "not set: log files are not uploaded");
			rl->said = 1;
		}
		if (done != NULL)
			done(arg);
		return;
	}
	rl->last_mono = mono_ms();
	snprintf(rl->task_id, sizeof(rl->task_id), "%s", task_id);
	path_part(p, sizeof(p), project);
	path_part(n, sizeof(n), name);
	xasprintf(&dir, "%s/%s.%s/artifacts", p, n, task_id);
	rl->arts = cJSON_CreateArray();
	rl->done = done;
	rl->arg = arg;
	rl->failed = 0;
	for (i = 0; i < rl->nkeys; i++)
		if (upload_one(rl, rl->keys[i], dir, at_stop ?
		    REPORT_STOP_UPLOAD_MS : REPORT_LOG_TIMEOUT_MS) == 0)
			rl->pending++;
	free(dir);
	if (rl->pending == 0)
		round_end(rl);
}
