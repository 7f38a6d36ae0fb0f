/*
 * report_props.c: the log level as a user property of the report task,
 * as in ClearML's app ("USER PROPERTIES ... log_level ... DEBUG ... The
 * console's log level will update in the autoscaler's next iteration").
 *
 * Once the task is ready, the levels in force go to the task's user
 * properties (hyper parameters of section "properties"): "log_level",
 * and "log_level.RESOURCE" per resource.  Every reporting interval they
 * are read back: a value changed in the web UI since the last reading is
 * applied (log_level: everywhere; log_level.RESOURCE: that resource);
 * where the levels in force differ from what the task shows and nobody
 * changed the property (qscalectl log-level, a reload), the task is told.
 * One call in flight at most; a failure waits for the next interval.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "clearml.h"
#include "supervisor.h"

#define PROPS_SECTION	"properties"
#define PROPS_KEY	"log_level"

struct report_props {
	const struct report_env	*env;
	struct cml_client	*cml;
	char			 task_id[40];
	cJSON			*seen;		/* name -> value last read */
	int			 busy;
	int			 bad_logged;	/* a bad value, said once */
};

struct report_props *
report_props_new(const struct report_env *env, struct cml_client *cml)
{
	struct report_props	*p = xcalloc(1, sizeof(*p));

	p->env = env;
	p->cml = cml;
	return p;
}

void
report_props_free(struct report_props *p)
{
	if (p == NULL)
		return;
	cJSON_Delete(p->seen);
	free(p);
}

/* "log_level" -> NULL (everywhere); "log_level.gpu" -> "gpu". */
static int
prop_resource(const char *name, const char **res)
{
	size_t	 n = strlen(PROPS_KEY);

	if (strncmp(name, PROPS_KEY, n) != 0)
		return -1;
	if (name[n] == '\0') {
		*res = NULL;
		return 0;
	}
	if (name[n] != '.' || name[n + 1] == '\0')
		return -1;
	*res = name + n + 1;
	return 0;
}

/* The properties the task shows, from get_hyper_params: name -> value. */
static cJSON *
props_read(const cJSON *data, const char *task_id)
{
	const cJSON	*t, *h, *sec, *name, *val, *id;
	cJSON		*out = cJSON_CreateObject();
	const char	*res;

	cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(data,
	    "params")) {
		id = cJSON_GetObjectItemCaseSensitive(t, "task");
		if (!cJSON_IsString(id) || strcmp(id->valuestring, task_id))
			continue;
		cJSON_ArrayForEach(h, cJSON_GetObjectItemCaseSensitive(t,
		    "hyperparams")) {
			sec = cJSON_GetObjectItemCaseSensitive(h, "section");
			name = cJSON_GetObjectItemCaseSensitive(h, "name");
			val = cJSON_GetObjectItemCaseSensitive(h, "value");
			if (!cJSON_IsString(sec) || !cJSON_IsString(name) ||
			    !cJSON_IsString(val) ||
			    strcmp(sec->valuestring, PROPS_SECTION) != 0 ||
			    prop_resource(name->valuestring, &res) == -1)
				continue;
			cJSON_DeleteItemFromObjectCaseSensitive(out,
			    name->valuestring);
			cJSON_AddStringToObject(out, name->valuestring,
			    val->valuestring);
		}
	}
	return out;
}

static const char *
str_of(const cJSON *o, const char *name)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Applies what changed in the web UI since the last reading. */
static void
props_apply(struct report_props *p, const cJSON *now)
{
	const cJSON	*v;
	const char	*res = NULL, *was;
	int		 level;

	cJSON_ArrayForEach(v, now) {
		was = str_of(p->seen, v->string);
		if (was != NULL && strcmp(was, v->valuestring) == 0)
			continue;
		if (p->seen == NULL)
			continue;	/* the first reading: ours, published */
		(void)prop_resource(v->string, &res);
		if ((level = log_level_parse(v->valuestring)) < 0) {
			if (!p->bad_logged)
				log_warnx("ClearML task %s: user property %s "
				    "is \"%s\": not a log level (use error, "
				    "warn, info or debug)", p->task_id,
				    v->string, v->valuestring);
			p->bad_logged = 1;
			continue;
		}
		p->bad_logged = 0;
		if (p->env->set_level(p->env->arg, res, level) == -1)
			log_warnx("ClearML task %s: user property %s: no "
			    "resource named '%s'", p->task_id, v->string, res);
		else
			log_info("log level of %s set to %s by the ClearML "
			    "task's user property %s", res != NULL ? res :
			    "everything", log_level_name(level), v->string);
	}
}

/* "INFO" as the configuration writes it: "info". */
static const char *
lower(const char *s, char *buf, size_t len)
{
	size_t	 i;

	for (i = 0; s[i] != '\0' && i + 1 < len; i++)
		buf[i] = (char)tolower((unsigned char)s[i]);
	buf[i] = '\0';
	return buf;
}

/* The levels in force that the task does not show. */
static cJSON *
props_stale(const cJSON *shown, const cJSON *levels)
{
	cJSON		*edits = cJSON_CreateArray(), *h;
	const cJSON	*v;
	const char	*cur;
	char		 name[128], value[16];

	cJSON_ArrayForEach(v, levels) {
		if (!cJSON_IsString(v))
			continue;
		if (v->string[0] == '\0')
			snprintf(name, sizeof(name), "%s", PROPS_KEY);
		else
			snprintf(name, sizeof(name), "%s.%s", PROPS_KEY,
			    v->string);
		cur = str_of(shown, name);
		if (cur != NULL && log_level_parse(cur) ==
		    log_level_parse(v->valuestring))
			continue;
		h = cJSON_CreateObject();
		cJSON_AddStringToObject(h, "section", PROPS_SECTION);
		cJSON_AddStringToObject(h, "name", name);
		cJSON_AddStringToObject(h, "value", lower(v->valuestring, value,
		    sizeof(value)));
		cJSON_AddStringToObject(h, "type", "str");
		cJSON_AddStringToObject(h, "description", v->string[0] ?
		    "log level of this resource: error, warn, info or debug" :
		    "log level of the autoscaler: error, warn, info or debug");
		cJSON_AddItemToArray(edits, h);
	}
	return edits;
}

static void
edited_cb(const struct cml_error *err, const cJSON *data, void *arg)
{
	struct report_props	*p = arg;

	(void)data;
	p->busy = 0;
	if (err != NULL)
		log_debug("ClearML task %s: user properties not updated: %s",
		    p->task_id, err->message);
}

static void
props_publish(struct report_props *p, cJSON *edits)
{
	cJSON	*req = cJSON_CreateObject();
	cJSON	*h;

	cJSON_AddStringToObject(req, "task", p->task_id);
	cJSON_AddItemToObject(req, "hyperparams", edits);
	cJSON_AddStringToObject(req, "replace_hyperparams", "none");
	cJSON_AddBoolToObject(req, "force", 1);
	/* what we publish is what we will read back: no change to apply */
	cJSON_ArrayForEach(h, edits) {
		cJSON_DeleteItemFromObjectCaseSensitive(p->seen,
		    str_of(h, "name"));
		cJSON_AddStringToObject(p->seen, str_of(h, "name"),
		    str_of(h, "value"));
	}
	p->busy = 1;
	if (cml_call(p->cml, "tasks.edit_hyper_params", req, edited_cb,
	    p) == -1)
		p->busy = 0;
	cJSON_Delete(req);
}

static void
got_cb(const struct cml_error *err, const cJSON *data, void *arg)
{
	struct report_props	*p = arg;
	cJSON			*now, *levels, *edits;

	p->busy = 0;
	if (err != NULL) {
		log_debug("ClearML task %s: user properties not read: %s",
		    p->task_id, err->message);
		return;
	}
	now = props_read(data, p->task_id);
	props_apply(p, now);
	cJSON_Delete(p->seen);
	p->seen = now;
	levels = p->env->levels(p->env->arg);
	edits = props_stale(now, levels);
	cJSON_Delete(levels);
	if (cJSON_GetArraySize(edits) > 0)
		props_publish(p, edits);
	else
		cJSON_Delete(edits);
}

/* Once per reporting interval, with the task ready. */
void
report_props_tick(struct report_props *p, const char *task_id)
{
	cJSON	*req;

	if (p->busy || task_id[0] == '\0')
		return;
	if (strcmp(p->task_id, task_id) != 0) {	/* another task */
		snprintf(p->task_id, sizeof(p->task_id), "%s", task_id);
		cJSON_Delete(p->seen);
		p->seen = NULL;
	}
	req = cJSON_CreateObject();
	cJSON_AddItemToObject(req, "tasks", cJSON_CreateStringArray(
	    (const char *[]){ task_id }, 1));
	p->busy = 1;
	if (cml_call(p->cml, "tasks.get_hyper_params", req, got_cb, p) == -1)
		p->busy = 0;
	cJSON_Delete(req);
}
