/*
 * test_metrics.c: the Prometheus text built from synthetic snapshots and
 * events (HELP and TYPE lines, one block per family, escaped label
 * values, cumulative histogram buckets ending at +Inf), counters that
 * survive a worker process's restart, and the bounded time series.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common.h"
#include "clearml.h"
#include "supervisor.h"

struct fixture {
	struct sup		 sup;
	struct qscale_conf	 conf;
	struct conf_resource	 res[2];
	struct sup_child	 child[2];
};

static int
setup(void **state)
{
	struct fixture	*fx = calloc(1, sizeof(*fx));
	static const char *const names[2] = { "gpu", "cpu" };
	static const char *const queues[2] = { "q-gpu", "q\"od\\d\nq" };
	int		 i;

	assert_non_null(fx);
	TAILQ_INIT(&fx->sup.children);
	fx->sup.conf = &fx->conf;
	fx->conf.resources = fx->res;
	fx->conf.nresources = 2;
	fx->conf.max_instances_total = 0;
	for (i = 0; i < 2; i++) {
		fx->res[i].name = (char *)names[i];
		fx->res[i].queue = (char *)queues[i];
		fx->res[i].max_instances = 3 + i;
		fx->child[i].sup = &fx->sup;
		fx->child[i].name = (char *)names[i];
		fx->child[i].index = (size_t)i;
		fx->child[i].pid = 100 + i;
		fx->child[i].state = CHILD_RUNNING;
		TAILQ_INSERT_TAIL(&fx->sup.children, &fx->child[i], entry);
	}
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*fx = *state;
	int		 i;

	for (i = 0; i < 2; i++)
		cJSON_Delete(fx->child[i].snapshot);
	metrics_free(&fx->sup);
	orphan_list_clear(&fx->sup.orphans);
	free(fx);
	return 0;
}

/* A snapshot as worker/poll.c sends it, with the numbers given. */
static void
snap(struct sup_child *c, int polls, int pending, int idle, int busy,
    int live, double ec2_calls, const char *instances)
{
	char	*text;
	cJSON	*o;

	if (asprintf(&text,
	    "{\"state\":\"scaling\",\"note\":\"\",\"polls\":%d,"
	    "\"last_poll\":1700000000500,\"poll_ms\":12,\"queue\":\"x\","
	    "\"oldest_wait_s\":7.5,"
	    "\"counts\":{\"pending\":%d,\"live\":%d,\"idle\":%d,\"busy\":%d,"
	    "\"booting\":1,\"demand\":0,\"errors\":0},"
	    "\"instances\":%s,"
	    "\"totals\":{\"instance_seconds\":%d.25},"
	    "\"api\":{\"ec2\":[{\"action\":\"RunInstances\",\"calls\":%g,"
	    "\"errors\":1,\"retries\":2,\"latency_ms_sum\":1234,"
	    "\"latency_hist\":[1,0,2,0,0,0,0,0,0,0,0,%g]}],"
	    "\"clearml\":[{\"endpoint\":\"queues.get_all\",\"calls\":4,"
	    "\"errors\":0,\"latency_ms_sum\":40,"
	    "\"latency_hist\":[4,0,0,0,0,0,0,0,0,0,0,0]}]}}",
	    polls, pending, live, idle, busy, instances, polls * 10,
	    ec2_calls, ec2_calls - 3) == -1)
		fail();
	o = cJSON_Parse(text);
	free(text);
	assert_non_null(o);
	cJSON_Delete(c->snapshot);
	c->snapshot = o;
	metrics_snapshot(c);
}

/* Two instances of a removed resource: one idle, one busy. */
static void
orphans(struct sup *sup)
{
	struct orphan_seen	 seen[2] = {
		{ "i-o1", "old", "t3.micro", "running", 0 },
		{ "i-o2", "old", "t3.micro", "running", 0 },
	};
	struct cml_worker	 w[1];

	memset(w, 0, sizeof(w));
	w[0].id = "p:old:t3.micro:i-o2";
	w[0].task = "t-9";
	assert_int_equal(orphan_update(&sup->orphans, seen, 2, w, 1, 1, "p",
	    60000, 1000), 0);
	sup->orphans.terminated = 3;
}

static void
event(struct sup_child *c, const char *json)
{
	cJSON	*o = cJSON_Parse(json);

	assert_non_null(o);
	metrics_event(c, o);
	cJSON_Delete(o);
}

/* The value of the sample that starts exactly with "name{labels} ". */
static double
value_of(const char *text, const char *sample)
{
	const char	*p = text;
	size_t		 n = strlen(sample);

	while ((p = strstr(p, sample)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p += n;
	}
	print_error("no sample %s\n", sample);
	fail();
	return -1;
}

static int
has_line(const char *text, const char *line)
{
	const char	*p = text;
	size_t		 n = strlen(line);

	while ((p = strstr(p, line)) != NULL) {
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return 1;
		p += n;
	}
	return 0;
}

/*
 * The exposition's shape: each family once, HELP then TYPE then its
 * samples, and no sample outside the family last declared.
 */
static void
check_shape(const char *text, int *families)
{
	char	*copy = strdup(text), *line, *save = NULL;
	char	 family[128] = "", type[32] = "", seen[8192] = " ";
	char	 name[160];
	int	 help = 0;
	size_t	 fl;

	*families = 0;
	for (line = strtok_r(copy, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "# HELP ", 7) == 0) {
			assert_int_equal(sscanf(line + 7, "%127s", family), 1);
			snprintf(name, sizeof(name), " %s ", family);
			assert_null(strstr(seen, name));	/* once only */
			strncat(seen, name + 1, sizeof(seen) - strlen(seen) - 1);
			assert_true(strlen(line) > 8 + strlen(family));
			help = 1;
			(*families)++;
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			assert_true(help);
			assert_int_equal(sscanf(line + 7, "%127s %31s", name,
			    type), 2);
			assert_string_equal(name, family);
			assert_true(strcmp(type, "gauge") == 0 ||
			    strcmp(type, "counter") == 0 ||
			    strcmp(type, "histogram") == 0);
			help = 0;
			continue;
		}
		assert_true(line[0] != '#');
		fl = strcspn(line, "{ ");
		snprintf(name, sizeof(name), "%.*s", (int)fl, line);
		if (strcmp(type, "histogram") == 0)
			assert_true(strncmp(name, family, strlen(family)) == 0);
		else
			assert_string_equal(name, family);
		if (strcmp(type, "counter") == 0)
			assert_non_null(strstr(family, "_total"));
	}
	free(copy);
}

static void
test_exposition(void **state)
{
	struct fixture	*fx = *state;
	struct sup_child *gpu = &fx->child[0], *cpu = &fx->child[1];
	char		*text;
	int		 families;

	snap(gpu, 5, 4, 1, 2, 3, 10, "[{\"id\":\"i-1\",\"state\":\"running\","
	    "\"market\":\"spot\"},{\"id\":\"i-2\",\"state\":\"running\","
	    "\"market\":\"spot\"},{\"id\":\"i-3\",\"state\":\"pending\","
	    "\"market\":\"on-demand\"},{\"id\":\"i-4\",\"state\":"
	    "\"shutting-down\",\"market\":\"on-demand\"}]");
	event(gpu, "{\"event\":\"launched\",\"count\":2,\"market\":\"spot\","
	    "\"result\":\"ok\",\"ids\":[\"i-1\",\"i-2\"]}");
	event(gpu, "{\"event\":\"launch_failed\",\"market\":\"spot\","
	    "\"code\":\"InsufficientInstanceCapacity\",\"class\":\"capacity\"}");
	event(gpu, "{\"event\":\"launched\",\"count\":1,\"market\":"
	    "\"on-demand\",\"result\":\"ok\"}");
	/* spot turned on-demand: 1 by the rollback, 2 by the blackout */
	event(gpu, "{\"event\":\"launched\",\"count\":3,\"market\":"
	    "\"on-demand\",\"result\":\"ok\",\"converted\":{\"rollback\":"
	    "1,\"blackout\":2}}");
	event(gpu, "{\"event\":\"terminated\",\"id\":\"i-9\",\"reason\":"
	    "\"spin-up timeout\"}");
	event(gpu, "{\"event\":\"terminated\",\"id\":\"i-8\",\"reason\":"
	    "\"idle\",\"market\":\"spot\"}");
	event(gpu, "{\"event\":\"requeued\",\"task\":\"t1\",\"instance\":"
	    "\"i-7\"}");
	event(gpu, "{\"event\":\"messages_dropped\",\"snapshots\":7,"
	    "\"logs\":30}");
	event(gpu, "{\"event\":\"messages_dropped\",\"snapshots\":1,"
	    "\"logs\":0}");
	metrics_duplicate_task(&fx->sup);
	fx->sup.blackout.active = 1;
	fx->sup.blackout.until_ms = 1700000600000;
	gpu->restarts = 2;
	cpu->pid = 0;
	cpu->state = CHILD_BACKOFF;

	orphans(&fx->sup);

	assert_non_null(text = metrics_render(&fx->sup));
	check_shape(text, &families);
	assert_int_equal(families, 27);
	assert_int_equal(value_of(text, "qscale_child_messages_dropped_total"
	    "{resource=\"gpu\",kind=\"state\"}"), 8);
	assert_int_equal(value_of(text, "qscale_child_messages_dropped_total"
	    "{resource=\"gpu\",kind=\"log\"}"), 30);
	assert_int_equal(value_of(text, "qscale_child_messages_dropped_total"
	    "{resource=\"cpu\",kind=\"log\"}"), 0);
	assert_int_equal(value_of(text, "qscale_orphan_instances{state="
	    "\"idle\"}"), 1);
	assert_int_equal(value_of(text, "qscale_orphan_instances{state="
	    "\"busy\"}"), 1);
	assert_int_equal(value_of(text, "qscale_orphans_terminated_total"), 3);
	assert_true(has_line(text, "# TYPE qscale_api_latency_seconds "
	    "histogram"));
	assert_true(has_line(text, "# TYPE qscale_launches_total counter"));
	assert_true(has_line(text, "# TYPE qscale_instances gauge"));
	assert_int_equal(value_of(text, "qscale_instances{resource=\"gpu\","
	    "state=\"running\",market=\"spot\"}"), 2);
	assert_int_equal(value_of(text, "qscale_instances{resource=\"gpu\","
	    "state=\"pending\",market=\"on-demand\"}"), 1);
	assert_int_equal(value_of(text, "qscale_instances{resource=\"gpu\","
	    "state=\"running\",market=\"on-demand\"}"), 0);
	assert_int_equal(value_of(text, "qscale_instances{resource=\"gpu\","
	    "state=\"shutting-down\",market=\"on-demand\"}"), 1);
	assert_int_equal(value_of(text, "qscale_queue_pending{resource="
	    "\"gpu\",queue=\"q-gpu\"}"), 4);
	assert_true(value_of(text, "qscale_queue_oldest_wait_seconds{"
	    "resource=\"gpu\",queue=\"q-gpu\"}") == 7.5);
	assert_int_equal(value_of(text, "qscale_workers{resource=\"gpu\","
	    "state=\"idle\"}"), 1);
	assert_int_equal(value_of(text, "qscale_workers{resource=\"gpu\","
	    "state=\"busy\"}"), 2);
	assert_int_equal(value_of(text, "qscale_instances_booting{resource="
	    "\"gpu\"}"), 1);
	assert_int_equal(value_of(text, "qscale_max_instances{resource="
	    "\"cpu\"}"), 4);
	assert_int_equal(value_of(text, "qscale_global_max_instances"), 0);
	assert_int_equal(value_of(text, "qscale_launches_total{resource="
	    "\"gpu\",market=\"spot\",result=\"ok\"}"), 1);
	assert_int_equal(value_of(text, "qscale_launches_total{resource="
	    "\"gpu\",market=\"spot\",result=\"InsufficientInstanceCapacity\"}"),
	    1);
	assert_int_equal(value_of(text, "qscale_launches_total{resource="
	    "\"cpu\",market=\"on-demand\",result=\"ok\"}"), 0);
	assert_int_equal(value_of(text, "qscale_launched_instances_total{"
	    "resource=\"gpu\",market=\"spot\"}"), 2);
	assert_int_equal(value_of(text, "qscale_launched_instances_total{"
	    "resource=\"gpu\",market=\"on-demand\"}"), 4);
	assert_int_equal(value_of(text, "qscale_spot_converted_instances_"
	    "total{resource=\"gpu\",reason=\"rollback\"}"), 1);
	assert_int_equal(value_of(text, "qscale_spot_converted_instances_"
	    "total{resource=\"gpu\",reason=\"blackout\"}"), 2);
	assert_int_equal(value_of(text, "qscale_spot_converted_instances_"
	    "total{resource=\"cpu\",reason=\"blackout\"}"), 0);
	/* the global blackout holds for both, until the same time */
	assert_int_equal(value_of(text, "qscale_spot_blackout_until_seconds{"
	    "resource=\"cpu\"}"), 1700000600);
	assert_int_equal(value_of(text, "qscale_terminations_total{resource="
	    "\"gpu\",reason=\"spin_up_timeout\"}"), 1);
	assert_int_equal(value_of(text, "qscale_terminations_total{resource="
	    "\"gpu\",reason=\"idle\"}"), 1);
	assert_int_equal(value_of(text, "qscale_terminations_total{resource="
	    "\"gpu\",reason=\"vanished_agent\"}"), 0);
	assert_int_equal(value_of(text, "qscale_requeues_total{resource="
	    "\"gpu\"}"), 1);
	assert_int_equal(value_of(text, "qscale_api_calls_total{resource="
	    "\"gpu\",api=\"ec2\",action=\"RunInstances\"}"), 10);
	assert_int_equal(value_of(text, "qscale_api_calls_total{resource="
	    "\"gpu\",api=\"clearml\",action=\"queues.get_all\"}"), 4);
	assert_int_equal(value_of(text, "qscale_api_errors_total{resource="
	    "\"gpu\",api=\"ec2\",action=\"RunInstances\"}"), 1);
	assert_int_equal(value_of(text, "qscale_api_retries_total{resource="
	    "\"gpu\",api=\"ec2\",action=\"RunInstances\"}"), 2);
	assert_int_equal(value_of(text, "qscale_child_restarts_total{"
	    "resource=\"gpu\"}"), 2);
	assert_int_equal(value_of(text, "qscale_child_up{resource=\"gpu\"}"),
	    1);
	assert_int_equal(value_of(text, "qscale_child_up{resource=\"cpu\"}"),
	    0);
	assert_int_equal(value_of(text, "qscale_polls_total{resource="
	    "\"gpu\"}"), 5);
	assert_true(value_of(text, "qscale_last_poll_timestamp_seconds{"
	    "resource=\"gpu\"}") == 1700000000.5);
	assert_true(value_of(text, "qscale_instance_seconds_total{resource="
	    "\"gpu\"}") == 50.25);
	assert_int_equal(value_of(text, "qscale_spot_blackout_active"), 1);
	assert_int_equal(value_of(text, "qscale_duplicate_tasks_total"), 1);
	/* no snapshot, no gauges from one */
	assert_null(strstr(text, "qscale_workers{resource=\"cpu\""));
	free(text);
}

static void
test_histogram(void **state)
{
	struct fixture	*fx = *state;
	static const char *const le[] = { "0.005", "0.01", "0.025", "0.05",
	    "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf" };
	static const int cum[] = { 1, 1, 3, 3, 3, 3, 3, 3, 3, 3, 3, 10 };
	char		*text, want[256];
	size_t		 i;

	snap(&fx->child[0], 1, 0, 0, 0, 0, 10, "[]");
	assert_non_null(text = metrics_render(&fx->sup));
	for (i = 0; i < QS_ARRAYLEN(le); i++) {
		snprintf(want, sizeof(want), "qscale_api_latency_seconds_bucket"
		    "{resource=\"gpu\",api=\"ec2\",action=\"RunInstances\","
		    "le=\"%s\"} %d", le[i], cum[i]);
		assert_true(has_line(text, want));
	}
	assert_true(has_line(text, "qscale_api_latency_seconds_count{resource="
	    "\"gpu\",api=\"ec2\",action=\"RunInstances\"} 10"));
	assert_true(has_line(text, "qscale_api_latency_seconds_sum{resource="
	    "\"gpu\",api=\"ec2\",action=\"RunInstances\"} 1.234"));
	assert_true(has_line(text, "qscale_api_latency_seconds_bucket{resource"
	    "=\"gpu\",api=\"clearml\",action=\"queues.get_all\",le=\"+Inf\"} "
	    "4"));
	free(text);
}

static void
test_escaping(void **state)
{
	struct fixture	*fx = *state;
	char		*text;

	snap(&fx->child[1], 1, 2, 0, 0, 0, 5, "[]");
	event(&fx->child[1], "{\"event\":\"launch_failed\",\"market\":\"spot\","
	    "\"code\":\"Bad\\\"Code\\\\x\\ny\"}");
	assert_non_null(text = metrics_render(&fx->sup));
	assert_true(has_line(text, "qscale_queue_pending{resource=\"cpu\","
	    "queue=\"q\\\"od\\\\d\\nq\"} 2"));
	assert_true(has_line(text, "qscale_launches_total{resource=\"cpu\","
	    "market=\"spot\",result=\"Bad\\\"Code\\\\x\\ny\"} 1"));
	free(text);
}

static void
test_restart_keeps_counters(void **state)
{
	struct fixture	*fx = *state;
	struct sup_child *gpu = &fx->child[0];
	char		*text;

	snap(gpu, 7, 0, 0, 0, 0, 10, "[]");
	event(gpu, "{\"event\":\"launched\",\"count\":3,\"market\":\"spot\"}");
	/* the process dies; the supervisor drops its snapshot */
	cJSON_Delete(gpu->snapshot);
	gpu->snapshot = NULL;
	gpu->pid = 0;
	gpu->state = CHILD_BACKOFF;
	assert_non_null(text = metrics_render(&fx->sup));
	assert_int_equal(value_of(text, "qscale_polls_total{resource="
	    "\"gpu\"}"), 7);
	assert_int_equal(value_of(text, "qscale_api_calls_total{resource="
	    "\"gpu\",api=\"ec2\",action=\"RunInstances\"}"), 10);
	free(text);

	/* a new process counts from zero again */
	gpu->pid = 200;
	gpu->state = CHILD_RUNNING;
	gpu->restarts = 1;
	snap(gpu, 2, 0, 0, 0, 0, 4, "[]");
	event(gpu, "{\"event\":\"launched\",\"count\":1,\"market\":\"spot\"}");
	assert_non_null(text = metrics_render(&fx->sup));
	assert_int_equal(value_of(text, "qscale_polls_total{resource="
	    "\"gpu\"}"), 9);
	assert_int_equal(value_of(text, "qscale_api_calls_total{resource="
	    "\"gpu\",api=\"ec2\",action=\"RunInstances\"}"), 14);
	assert_int_equal(value_of(text, "qscale_api_latency_seconds_count{"
	    "resource=\"gpu\",api=\"ec2\",action=\"RunInstances\"}"), 14);
	assert_true(value_of(text, "qscale_instance_seconds_total{resource="
	    "\"gpu\"}") == 90.5);
	assert_int_equal(value_of(text, "qscale_launched_instances_total{"
	    "resource=\"gpu\",market=\"spot\"}"), 4);
	assert_int_equal(value_of(text, "qscale_child_restarts_total{"
	    "resource=\"gpu\"}"), 1);
	free(text);

	/* later snapshots of the same process replace, never add */
	snap(gpu, 3, 0, 0, 0, 0, 6, "[]");
	assert_non_null(text = metrics_render(&fx->sup));
	assert_int_equal(value_of(text, "qscale_polls_total{resource="
	    "\"gpu\"}"), 10);
	assert_int_equal(value_of(text, "qscale_api_calls_total{resource="
	    "\"gpu\",api=\"ec2\",action=\"RunInstances\"}"), 16);
	free(text);

	/* same pid but fewer polls: another process all the same */
	snap(gpu, 1, 0, 0, 0, 0, 5, "[]");
	assert_non_null(text = metrics_render(&fx->sup));
	assert_int_equal(value_of(text, "qscale_polls_total{resource="
	    "\"gpu\"}"), 11);
	free(text);
}

static void
test_bad_input(void **state)
{
	struct fixture	*fx = *state;
	struct sup_child *gpu = &fx->child[0];
	static const char *const bad[] = {
		"{\"polls\":\"many\",\"counts\":[],\"api\":7}",
		"{\"polls\":-5,\"counts\":{\"pending\":-1,\"idle\":1e300},"
		    "\"instances\":[{\"state\":7},{\"state\":\"running\","
		    "\"market\":\"moon\"},5],\"api\":{\"ec2\":[{\"action\":"
		    "3},{\"action\":\"X\",\"latency_hist\":\"no\"}],"
		    "\"clearml\":{}}}",
		"[]", "{}",
	};
	static const char *const events[] = {
		"{}", "{\"event\":5}", "{\"event\":\"launched\"}",
		"{\"event\":\"launched\",\"market\":\"spot\",\"count\":-4}",
		"{\"event\":\"terminated\",\"reason\":\"bored\"}",
		"{\"event\":\"terminated\"}", "{\"event\":\"mystery\"}",
	};
	char		*text;
	size_t		 i;
	int		 families;

	for (i = 0; i < QS_ARRAYLEN(bad); i++) {
		cJSON_Delete(gpu->snapshot);
		assert_non_null(gpu->snapshot = cJSON_Parse(bad[i]));
		metrics_snapshot(gpu);
		assert_non_null(text = metrics_render(&fx->sup));
		check_shape(text, &families);
		free(text);
	}
	for (i = 0; i < QS_ARRAYLEN(events); i++)
		event(gpu, events[i]);
	assert_non_null(text = metrics_render(&fx->sup));
	assert_int_equal(value_of(text, "qscale_launched_instances_total{"
	    "resource=\"gpu\",market=\"spot\"}"), 0);
	assert_int_equal(value_of(text, "qscale_queue_pending{resource="
	    "\"gpu\",queue=\"q-gpu\"}"), 0);
	free(text);
}

/* Many distinct error codes from a child stay within a bound. */
static void
test_label_bound(void **state)
{
	struct fixture	*fx = *state;
	char		 ev[160], *text, *p;
	int		 i, n = 0;

	for (i = 0; i < 1000; i++) {
		snprintf(ev, sizeof(ev), "{\"event\":\"launch_failed\","
		    "\"market\":\"spot\",\"code\":\"Code%d\"}", i);
		event(&fx->child[0], ev);
	}
	assert_non_null(text = metrics_render(&fx->sup));
	for (p = text; (p = strstr(p, "\nqscale_launches_total{resource="
	    "\"gpu\"")) != NULL; p++)
		n++;
	assert_true(n <= 70);
	assert_true(value_of(text, "qscale_launches_total{resource=\"gpu\","
	    "market=\"spot\",result=\"other\"}") > 900);
	free(text);
}

static int
series_len(cJSON *o, const char *res, const char *field)
{
	cJSON	*e, *s;

	if (res == NULL)
		s = cJSON_GetObjectItem(o, "global");
	else {
		s = NULL;
		cJSON_ArrayForEach(e, cJSON_GetObjectItem(o, "resources"))
			if (strcmp(cJSON_GetObjectItem(e, "name")->valuestring,
			    res) == 0)
				s = e;
	}
	assert_non_null(s);
	return cJSON_GetArraySize(cJSON_GetObjectItem(s, field));
}

/* spot_blackout_scope "resource": each resource's own blackout. */
static void
test_blackout_scope(void **state)
{
	struct fixture	*fx = *state;
	char		*text;
	cJSON		*o;

	fx->conf.spot_blackout_scope = "resource";
	fx->sup.blackout.active = 1;	/* stale: not this scope's */
	fx->child[0].blackout.active = 1;
	fx->child[0].blackout.until_ms = 1700000900000;
	snprintf(fx->child[0].blackout.origin,
	    sizeof(fx->child[0].blackout.origin), "gpu");
	assert_non_null(text = metrics_render(&fx->sup));
	assert_int_equal(value_of(text, "qscale_spot_blackout_until_seconds{"
	    "resource=\"gpu\"}"), 1700000900);
	assert_int_equal(value_of(text, "qscale_spot_blackout_until_seconds{"
	    "resource=\"cpu\"}"), 0);
	free(text);
	o = sup_global_blackout_json(&fx->child[1]);
	assert_false(cJSON_IsTrue(cJSON_GetObjectItem(o, "active")));
	cJSON_Delete(o);
	o = sup_global_blackout_json(&fx->child[0]);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "active")));
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(o,
	    "scope")), "resource");
	cJSON_Delete(o);
}

static void
test_series(void **state)
{
	struct fixture	*fx = *state;
	struct sup_child *gpu = &fx->child[0];
	int64_t		 t0 = 1700000000000, t = t0, prev = 0;
	cJSON		*o, *g, *e, *ts, *idle;
	int		 i, n, seen_null = 0;

	snap(gpu, 1, 3, 0, 0, 2, 0, "[]");
	/* 30 hours of samples, far more than the rings hold */
	for (i = 0; i < 30 * 720; i++) {
		cJSON_SetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(
		    gpu->snapshot, "counts"), "idle"), (i % 7));
		metrics_sample(&fx->sup, t);
		t += METRICS_FINE_STEP_MS;
	}
	t -= METRICS_FINE_STEP_MS;

	o = metrics_series_json(&fx->sup, t, 3600 * 1000);
	n = series_len(o, "gpu", "t");
	assert_int_equal(n, 721);
	assert_int_equal(series_len(o, "gpu", "idle"), n);
	assert_int_equal(series_len(o, "cpu", "idle"), n);
	assert_int_equal(series_len(o, NULL, "in_use"), n);
	g = cJSON_GetObjectItem(o, "global");
	assert_int_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(g, "in_use"),
	    0)->valuedouble, 2);
	/* no cap configured: the sum of max_instances */
	assert_int_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(g, "cap"),
	    0)->valuedouble, 7);
	/* cpu has never sent a snapshot: unknown, not zero */
	e = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "resources"), 1);
	assert_true(cJSON_IsNull(cJSON_GetArrayItem(cJSON_GetObjectItem(e,
	    "pending"), 0)));
	cJSON_Delete(o);

	/* a day: coarse points (maxima of a minute), then the fine ones */
	o = metrics_series_json(&fx->sup, t, 86400 * 1000);
	n = series_len(o, "gpu", "t");
	assert_true(n <= METRICS_FINE_POINTS + METRICS_COARSE_POINTS);
	assert_true(n > METRICS_FINE_POINTS + 1250);
	e = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "resources"), 0);
	ts = cJSON_GetObjectItem(e, "t");
	idle = cJSON_GetObjectItem(e, "idle");
	for (i = 0; i < n; i++) {
		int64_t v = (int64_t)cJSON_GetArrayItem(ts, i)->valuedouble;

		assert_true(v > prev);
		assert_true(v >= t - 86400 * 1000);
		prev = v;
		if (v < t - (METRICS_FINE_POINTS - 1) * METRICS_FINE_STEP_MS) {
			assert_int_equal(v % METRICS_COARSE_STEP_MS, 0);
			assert_int_equal(cJSON_GetArrayItem(idle, i)->valuedouble,
			    6);
		}
		if (cJSON_IsNull(cJSON_GetArrayItem(idle, i)))
			seen_null = 1;
	}
	assert_false(seen_null);
	cJSON_Delete(o);

	/* a resource removed by a reload takes its series along */
	TAILQ_REMOVE(&fx->sup.children, &fx->child[1], entry);
	metrics_sample(&fx->sup, t + METRICS_FINE_STEP_MS);
	o = metrics_series_json(&fx->sup, t, 3600 * 1000);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o,
	    "resources")), 1);
	cJSON_Delete(o);
	TAILQ_INSERT_TAIL(&fx->sup.children, &fx->child[1], entry);
	o = metrics_series_json(&fx->sup, t, 3600 * 1000);
	assert_int_equal(series_len(o, "cpu", "t"), 0);
	cJSON_Delete(o);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_exposition, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_histogram, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_escaping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blackout_scope, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_restart_keeps_counters,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_label_bound, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_series, setup, teardown),
	};

	log_init("test_metrics", LOG_LVL_WARN, 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
