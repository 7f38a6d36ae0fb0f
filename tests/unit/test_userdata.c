/*
 * test_userdata.c: the startup script of an instance.  Every option
 * present or absent as configured, hostile values quoted so that bash
 * reads them back byte for byte, here-document delimiters that never
 * occur in their text, the 16 KB limit, and every script generated
 * passing `bash -n` and `shellcheck -s bash`.
 */
#include <sys/wait.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common.h"
#include "worker.h"

#define HOSTILE "it's \"q\" $(touch /tmp/pwned) `id` \\n \\ $HOME ${x}"

static struct conf_resource	 res[3];
static struct qscale_conf	 conf;

/* Every option set: two resources, the first in CPU mode. */
static void
fill_full(void)
{
	memset(&conf, 0, sizeof(conf));
	memset(res, 0, sizeof(res));
	conf.workers_prefix = "qs";
	conf.clearml.api_server = "https://api.example.com";
	conf.clearml.web_server = "https://app.example.com";
	conf.clearml.files_server = "https://files.example.com";
	conf.clearml.access_key = "SCALERKEY";
	conf.clearml.secret_key = "scaler-SECRET-1";
	conf.git.user = "bot";
	conf.git.password = "git-SECRET-2";
	conf.agent.docker_image = "agent/image:1";
	conf.agent.init_script = "echo init ran\nexport FOO=bar\n";
	conf.agent.extra_clearml_conf = "sdk.development.worker {\n"
	    "  report_period_sec: 3\n}\n";
	conf.agent.agent_version = "1.9.2";
	conf.agent.access_key = "AGENTKEY";
	conf.agent.secret_key = "agent-SECRET-3";
	res[0].name = "cpu";
	res[0].queue = "q-cpu";
	res[0].instance_type = "c5.large";
	res[0].cpu_mode = 1;
	res[0].docker_image = "res/image:2";
	res[1].name = "gpu";
	res[1].queue = "q-gpu";
	res[1].instance_type = "g4dn.xlarge";
	res[2].name = "bare";
	res[2].queue = "q-bare";
	res[2].instance_type = "t3.micro";
	res[2].docker_image = "";
	conf.resources = res;
	conf.nresources = 3;
}

/* Only what is required. */
static void
fill_min(void)
{
	memset(&conf, 0, sizeof(conf));
	memset(res, 0, sizeof(res));
	conf.workers_prefix = "qs";
	conf.clearml.api_server = "http://127.0.0.1:8008";
	conf.clearml.access_key = "SCALERKEY";
	conf.clearml.secret_key = "scaler-SECRET-1";
	res[0].name = "small";
	res[0].queue = "default";
	res[0].instance_type = "t3.small";
	conf.resources = res;
	conf.nresources = 1;
}

/* Runs a shell command line; its exit status, its output in *out. */
static int
run(const char *cmd, char **out)
{
	FILE	*f;
	char	*buf = NULL;
	size_t	 len = 0, cap = 0, n;
	int	 st;

	assert_non_null(f = popen(cmd, "r"));
	do {
		buf = xrealloc_grow(buf, &cap, len + 4096);
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0);
	buf[len] = '\0';
	st = pclose(f);
	*out = buf;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *
write_tmp(const char *text)
{
	char	 path[] = "/tmp/qscale-ud-XXXXXX";
	int	 fd;
	size_t	 len = strlen(text);

	assert_true((fd = mkstemp(path)) != -1);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	return xstrdup(path);
}

/* bash -n and shellcheck find nothing to say about the script. */
static void
assert_shell_clean(const char *script)
{
	char	*path = write_tmp(script), *cmd, *out;
	int	 rc;

	xasprintf(&cmd, "bash -n '%s' 2>&1", path);
	rc = run(cmd, &out);
	if (rc != 0)
		fprintf(stderr, "bash -n: %s\n", out);
	assert_int_equal(rc, 0);
	free(cmd);
	free(out);
	xasprintf(&cmd, "shellcheck -s bash '%s' 2>&1", path);
	rc = run(cmd, &out);
	if (rc != 0 || *out != '\0')
		fprintf(stderr, "shellcheck:\n%s\n", out);
	assert_int_equal(rc, 0);
	assert_string_equal(out, "");
	free(cmd);
	free(out);
	unlink(path);
	free(path);
}

/* The script of resource i, which must build and be clean. */
static char *
build(size_t i)
{
	char	 err[512] = "";
	char	*s = userdata_build(&conf, i, err, sizeof(err));

	if (s == NULL)
		fprintf(stderr, "userdata_build: %s\n", err);
	assert_non_null(s);
	assert_true(strlen(s) <= 16384);
	assert_int_equal(strncmp(s, "#!/bin/bash\n", 12), 0);
	assert_shell_clean(s);
	return s;
}

/* The error building resource i must give, containing want. */
static void
assert_build_fails(size_t i, const char *want)
{
	char	 err[512] = "";

	assert_null(userdata_build(&conf, i, err, sizeof(err)));
	if (strstr(err, want) == NULL)
		fprintf(stderr, "error \"%s\" lacks \"%s\"\n", err, want);
	assert_non_null(strstr(err, want));
}

static int
has_line(const char *s, const char *line)
{
	size_t		 n = strlen(line);
	const char	*p;

	for (p = s; (p = strstr(p, line)) != NULL; p++)
		if ((p == s || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
			return 1;
	return 0;
}

static int
has(const char *s, const char *sub)
{
	return strstr(s, sub) != NULL;
}

/*
 * The body of the here-document that writes to TARGET ("$conf" or
 * "$init"), read the way bash reads it: from the line after the
 * <<'DELIM' to the first line that is exactly DELIM.
 */
static char *
heredoc_body(const char *s, const char *target, char *delim, size_t dlen)
{
	char		 pat[64];
	const char	*p, *q, *end, *body;
	size_t		 n;

	snprintf(pat, sizeof(pat), "cat >%s) <<'", target);
	assert_non_null(p = strstr(s, pat));
	p += strlen(pat);
	assert_non_null(q = strchr(p, '\''));
	n = (size_t)(q - p);
	assert_true(n > 0 && n < dlen);
	memcpy(delim, p, n);
	delim[n] = '\0';
	assert_non_null(body = strchr(q, '\n'));
	body++;
	for (end = body; *end != '\0'; end = strchr(end, '\n') + 1) {
		if (strncmp(end, delim, n) == 0 && end[n] == '\n')
			return xstrndup(body, (size_t)(end - body));
		assert_non_null(strchr(end, '\n'));
	}
	fail_msg("here-document %s never ends", delim);
	return NULL;
}

/* The script with every here-document body left out. */
static char *
without_heredocs(const char *s)
{
	static const char *const targets[] = { "\"$conf\"", "\"$init\"" };
	char	*out = xstrdup(s), delim[64], pat[64], *body, *p;
	size_t	 i, n;

	for (i = 0; i < QS_ARRAYLEN(targets); i++) {
		snprintf(pat, sizeof(pat), "cat >%s) <<'", targets[i]);
		if (strstr(out, pat) == NULL)
			continue;
		body = heredoc_body(out, targets[i], delim, sizeof(delim));
		assert_non_null(p = strstr(out, body));
		n = strlen(body);
		memmove(p, p + n, strlen(p + n) + 1);
		free(body);
	}
	return out;
}

/*
 * What bash makes of the script's value lines: they are run on their
 * own and the variables printed back, one per line.
 */
static char *
shell_values(const char *s, const char *vars)
{
	char		*prog = xstrdup(""), *t, *path, *cmd, *out;
	const char	*p, *e;

	for (p = s; (e = strchr(p, '\n')) != NULL; p = e + 1) {
		if (strncmp(p, "worker_id_prefix=", 17) != 0 &&
		    strncmp(p, "queue=", 6) != 0 &&
		    strncmp(p, "docker_image=", 13) != 0 &&
		    strncmp(p, "agent_pip=", 10) != 0)
			continue;
		xasprintf(&t, "%s%.*s\n", prog, (int)(e - p + 1), p);
		free(prog);
		prog = t;
	}
	xasprintf(&t, "%sprintf '%%s\\n' %s\n", prog, vars);
	free(prog);
	path = write_tmp(t);
	free(t);
	xasprintf(&cmd, "bash -u '%s'", path);
	assert_int_equal(run(cmd, &out), 0);
	unlink(path);
	free(path);
	free(cmd);
	return out;
}

static char *
read_all(const char *path)
{
	char	*cmd, *out;

	xasprintf(&cmd, "cat '%s'", path);
	assert_int_equal(run(cmd, &out), 0);
	free(cmd);
	return out;
}

/*
 * What bash itself writes to $VAR ("conf" or "init") when it runs the
 * script's here-document block for that file on its own.
 */
static char *
bash_writes(const char *s, const char *var)
{
	char		 pat[64], delim[64], *prog, *prog_path, *cmd, *out;
	char		*file = write_tmp("");
	const char	*start, *q, *end;
	size_t		 n;

	snprintf(pat, sizeof(pat), "(umask 077 && cat >\"$%s\") <<'", var);
	assert_non_null(start = strstr(s, pat));
	assert_non_null(q = strchr(start + strlen(pat), '\''));
	n = (size_t)(q - (start + strlen(pat)));
	assert_true(n > 0 && n < sizeof(delim));
	memcpy(delim, start + strlen(pat), n);
	delim[n] = '\0';
	for (end = strchr(start, '\n') + 1;; end = strchr(end, '\n') + 1) {
		assert_non_null(strchr(end, '\n'));
		if (strncmp(end, delim, n) == 0 && end[n] == '\n')
			break;
	}
	end += n + 1;
	xasprintf(&prog, "%s='%s'\nqs_die() { exit 9; }\n%.*s", var, file,
	    (int)(end - start), start);
	prog_path = write_tmp(prog);
	xasprintf(&cmd, "bash '%s' 2>&1", prog_path);
	assert_int_equal(run(cmd, &out), 0);
	assert_string_equal(out, "");
	free(out);
	out = read_all(file);
	unlink(prog_path);
	unlink(file);
	free(prog_path);
	free(file);
	free(cmd);
	freezero_str(prog);
	return out;
}

/* The value of `  KEY: "..."` in a clearml.conf text, unescaped. */
static char *
hocon_value(const char *text, const char *key)
{
	char		 pat[64], *v, *o;
	const char	*p;
	unsigned	 u;

	snprintf(pat, sizeof(pat), " %s: \"", key);
	assert_non_null(p = strstr(text, pat));
	p += strlen(pat);
	v = o = xmalloc(strlen(p) + 1);
	for (; *p != '"'; p++) {
		assert_true(*p != '\0' && *p != '\n');
		if (*p != '\\') {
			*o++ = *p;
			continue;
		}
		switch (*++p) {
		case 'n': *o++ = '\n'; break;
		case 't': *o++ = '\t'; break;
		case 'r': *o++ = '\r'; break;
		case 'u':
			assert_int_equal(sscanf(p + 1, "%4x", &u), 1);
			*o++ = (char)u;
			p += 4;
			break;
		default: *o++ = *p; break;
		}
	}
	*o = '\0';
	return v;
}

static void
test_full(void **state)
{
	char	*s, *rest, delim[64], *body;

	(void)state;
	fill_full();
	s = build(0);
	assert_true(has_line(s, "worker_id_prefix='qs:cpu:c5.large'"));
	assert_true(has_line(s, "queue='q-cpu'"));
	assert_true(has_line(s,
	    "export CLEARML_WORKER_ID=\"${worker_id_prefix}:${instance_id}\""));
	assert_true(has_line(s, "set -u -o pipefail"));
	assert_true(has_line(s, "HOME=${HOME:-/root}"));
	assert_false(has(s, "set -e"));
	assert_false(has(s, "set -x"));
	assert_false(has(s, "set +x"));
	/* the resource's image over the agent's */
	assert_true(has_line(s, "docker_image='res/image:2'"));
	assert_true(has_line(s, "command -v docker >/dev/null ||"));
	assert_false(has(s, "agent/image:1"));
	assert_true(has_line(s, "\"$venv/bin/clearml-agent\" --config-file "
	    "\"$conf\" daemon --queue \"$queue\" --docker \"$docker_image\" "
	    "--cpu-only"));
	assert_true(has_line(s, "export NVIDIA_VISIBLE_DEVICES=none"));
	assert_true(has_line(s, "agent_pip='clearml-agent==1.9.2'"));
	assert_true(has_line(s, "\tsource ~/.bashrc"));
	assert_true(has(s, "http://169.254.169.254/latest/api/token"));
	assert_true(has(s, "X-aws-ec2-metadata-token-ttl-seconds"));
	assert_true(has(s, "meta-data/$1"));
	assert_true(has_line(s, "\tshutdown -h now"));
	/* NVIDIA_VISIBLE_DEVICES is set before the init script runs */
	assert_true(strstr(s, "NVIDIA_VISIBLE_DEVICES=none") <
	    strstr(s, "source \"$init\""));

	body = heredoc_body(s, "\"$conf\"", delim, sizeof(delim));
	assert_string_equal(delim, "QSCALE_EOF");
	assert_true(has_line(body,
	    "  api_server: \"https://api.example.com\""));
	assert_true(has_line(body,
	    "  web_server: \"https://app.example.com\""));
	assert_true(has_line(body,
	    "  files_server: \"https://files.example.com\""));
	assert_true(has_line(body, "    access_key: \"AGENTKEY\""));
	assert_true(has_line(body, "    secret_key: \"agent-SECRET-3\""));
	assert_false(has(s, "SCALERKEY"));
	assert_false(has(s, "scaler-SECRET-1"));
	assert_true(has_line(body, "  git_user: \"bot\""));
	assert_true(has_line(body, "  git_pass: \"git-SECRET-2\""));
	/* the extra configuration verbatim, after qscale's own */
	assert_true(has(body, "sdk.development.worker {\n"
	    "  report_period_sec: 3\n}\n"));
	assert_true(strstr(body, "report_period_sec") >
	    strstr(body, "git_pass"));
	free(body);
	body = heredoc_body(s, "\"$init\"", delim, sizeof(delim));
	assert_string_equal(body, "echo init ran\nexport FOO=bar\n");
	free(body);

	/* secrets only ever in the clearml.conf here-document */
	rest = without_heredocs(s);
	assert_false(has(rest, "agent-SECRET-3"));
	assert_false(has(rest, "git-SECRET-2"));
	assert_false(has(rest, "AGENTKEY"));
	free(rest);
	freezero_str(s);
}

static void
test_minimal(void **state)
{
	char	*s, *body, delim[64];

	(void)state;
	fill_min();
	s = build(0);
	assert_true(has_line(s, "worker_id_prefix='qs:small:t3.small'"));
	assert_true(has_line(s, "queue='default'"));
	assert_true(has_line(s,
	    "\"$venv/bin/clearml-agent\" --config-file \"$conf\" daemon "
	    "--queue \"$queue\""));
	assert_false(has(s, "docker"));
	assert_false(has(s, "--cpu-only"));
	assert_false(has(s, "NVIDIA_VISIBLE_DEVICES"));
	assert_false(has(s, "$init"));
	assert_true(has_line(s, "agent_pip='clearml-agent'"));
	assert_true(has_line(s, "\tsource ~/.bashrc"));
	body = heredoc_body(s, "\"$conf\"", delim, sizeof(delim));
	assert_string_equal(body,
	    "api {\n"
	    "  api_server: \"http://127.0.0.1:8008\"\n"
	    "  credentials {\n"
	    "    access_key: \"SCALERKEY\"\n"
	    "    secret_key: \"scaler-SECRET-1\"\n"
	    "  }\n"
	    "}\n");
	free(body);
	freezero_str(s);
}

static void
test_docker_choice(void **state)
{
	char	*s;

	(void)state;
	fill_full();
	/* the resource has none: the agent's */
	s = build(1);
	assert_true(has_line(s, "docker_image='agent/image:1'"));
	assert_true(has(s, "--docker \"$docker_image\""));
	/* a GPU resource: no CPU-only flags */
	assert_false(has(s, "--cpu-only"));
	assert_false(has(s, "NVIDIA_VISIBLE_DEVICES"));
	freezero_str(s);
	/* an empty image on the resource: no docker even with a default */
	s = build(2);
	assert_false(has(s, "docker"));
	freezero_str(s);
	/* neither */
	conf.agent.docker_image = NULL;
	s = build(1);
	assert_false(has(s, "docker"));
	freezero_str(s);
}

static void
test_options_off(void **state)
{
	char	*s, *body, delim[64];

	(void)state;
	fill_full();
	conf.agent.exclude_bashrc = 1;
	conf.agent.init_script = NULL;
	conf.agent.extra_clearml_conf = "";
	conf.agent.agent_version = NULL;
	conf.git.user = NULL;
	conf.git.password = NULL;
	s = build(0);
	assert_false(has(s, "~/.bashrc"));
	assert_false(has(s, "$init"));
	assert_false(has(s, "echo init ran"));
	/* CPU mode still hides the GPUs without an init script */
	assert_true(has_line(s, "export NVIDIA_VISIBLE_DEVICES=none"));
	assert_true(has_line(s, "agent_pip='clearml-agent'"));
	body = heredoc_body(s, "\"$conf\"", delim, sizeof(delim));
	assert_false(has(body, "agent {"));
	assert_false(has(body, "git_"));
	assert_false(has(body, "extra_clearml_conf"));
	free(body);
	freezero_str(s);
	/* a git user alone, without a password */
	conf.git.user = "bot";
	s = build(0);
	assert_true(has_line(s, "  git_user: \"bot\""));
	assert_false(has(s, "git_pass"));
	freezero_str(s);
}

static void
test_credentials(void **state)
{
	char	*s;

	(void)state;
	fill_full();
	/* the agent's own keys win */
	s = build(1);
	assert_true(has_line(s, "    access_key: \"AGENTKEY\""));
	assert_false(has(s, "scaler-SECRET-1"));
	freezero_str(s);
	/* without them, the autoscaler's */
	conf.agent.access_key = NULL;
	conf.agent.secret_key = "";
	s = build(1);
	assert_true(has_line(s, "    access_key: \"SCALERKEY\""));
	assert_true(has_line(s, "    secret_key: \"scaler-SECRET-1\""));
	freezero_str(s);
	/* half a pair is an error, never a mix of both */
	conf.agent.access_key = "AGENTKEY";
	assert_build_fails(1, "agent.access_key is set without "
	    "agent.secret_key");
	conf.agent.access_key = NULL;
	conf.agent.secret_key = "agent-SECRET-3";
	assert_build_fails(1, "agent.secret_key is set without "
	    "agent.access_key");
	conf.agent.secret_key = NULL;
	conf.clearml.secret_key = NULL;
	assert_build_fails(1, "no ClearML credentials for the agents");
}

static void
test_hostile_values(void **state)
{
	char		*s, *out, *want, *body, delim[64];
	const char	*nasty_conf = "a { b: \"$(id)\" }\n"
	    "`x` 'y' \\ ${HOME}\nEOF\nQSCALE\n";
	const char	*nasty_init = "printf '%s\\n' \"$HOME\" `echo hi`\n"
	    "cat <<'EOF'\n$(x)\nEOF\n";

	(void)state;
	fill_full();
	conf.workers_prefix = "p'$(id)`id`\"\\";
	res[0].name = "r'$x";
	res[0].queue = HOSTILE;
	res[0].docker_image = "img' --x \"$(id)\" `id` \\";
	conf.git.user = "u\"$(id)";
	conf.git.password = "pa'ss \"w\" $(id) `id` \\ ${HOME}\nline2\ttab";
	conf.agent.secret_key = "s\"e\\c\001";
	conf.agent.extra_clearml_conf = (char *)nasty_conf;
	conf.agent.init_script = (char *)nasty_init;
	s = build(0);

	/* bash reads the single-quoted words back byte for byte */
	out = shell_values(s, "\"$worker_id_prefix\" \"$queue\" "
	    "\"$docker_image\"");
	xasprintf(&want, "%s:%s:%s\n%s\n%s\n", conf.workers_prefix,
	    res[0].name, res[0].instance_type, HOSTILE, res[0].docker_image);
	assert_string_equal(out, want);
	free(out);
	free(want);
	assert_true(has_line(s, "queue='it'\\''s \"q\" $(touch /tmp/pwned) "
	    "`id` \\n \\ $HOME ${x}'"));

	/* what bash writes: the init script and the values intact */
	body = bash_writes(s, "init");
	assert_string_equal(body, nasty_init);
	free(body);
	body = bash_writes(s, "conf");
	out = hocon_value(body, "git_pass");
	assert_string_equal(out, conf.git.password);
	free(out);
	out = hocon_value(body, "secret_key");
	assert_string_equal(out, conf.agent.secret_key);
	free(out);
	free(body);

	/* HOCON strings escaped, one line each */
	body = heredoc_body(s, "\"$conf\"", delim, sizeof(delim));
	assert_true(has_line(body, "  git_user: \"u\\\"$(id)\""));
	assert_true(has_line(body, "  git_pass: \"pa'ss \\\"w\\\" $(id) `id` "
	    "\\\\ ${HOME}\\nline2\\ttab\""));
	assert_true(has_line(body, "    secret_key: \"s\\\"e\\\\c\\u0001\""));
	assert_true(has(body, nasty_conf));
	free(body);
	body = heredoc_body(s, "\"$init\"", delim, sizeof(delim));
	assert_string_equal(body, nasty_init);
	free(body);
	freezero_str(s);
}

static void
test_delimiter_in_value(void **state)
{
	char		*s, *body, delim[64];
	const char	*extra = "x: 1\nQSCALE_EOF\ny: 2\nQSCALE_EOF_1\n"
	    "QSCALE_EOF_2 z\n";
	const char	*init = "echo QSCALE_EOF\nQSCALE_EOF\necho after";

	(void)state;
	fill_full();
	conf.agent.extra_clearml_conf = (char *)extra;
	conf.agent.init_script = (char *)init;
	s = build(1);
	body = heredoc_body(s, "\"$conf\"", delim, sizeof(delim));
	assert_string_equal(delim, "QSCALE_EOF_3");
	assert_true(has(body, extra));
	free(body);
	body = heredoc_body(s, "\"$init\"", delim, sizeof(delim));
	assert_string_equal(delim, "QSCALE_EOF_1");
	/* a newline is added so that the delimiter stands on its own line */
	assert_string_equal(body, "echo QSCALE_EOF\nQSCALE_EOF\necho after\n");
	free(body);
	freezero_str(s);
}

/* Appends code point cp to buf as UTF-8; returns the bytes written. */
static size_t
put_utf8(char *buf, uint32_t cp)
{
	if (cp < 0x80) {
		buf[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		buf[0] = (char)(0xc0 | cp >> 6);
		buf[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		buf[0] = (char)(0xe0 | cp >> 12);
		buf[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		buf[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	buf[0] = (char)(0xf0 | cp >> 18);
	buf[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	buf[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	buf[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* A random code point: mostly ASCII, the quoting characters often. */
static uint32_t
rand_cp(int one_line)
{
	static const uint32_t	 hot[] = { '\'', '"', '$', '`', '\\', '(',
	    '{', '!', ' ', 0x2018, 0x2019, 0x201c, 0xa0, 0x1f600 };
	uint32_t		 cp;

	switch (random() % 4) {
	case 0:
		return hot[random() % QS_ARRAYLEN(hot)];
	case 1:
		do
			cp = 0xa0 + (uint32_t)(random() % 0x10ff60);
		while (cp >= 0xd800 && cp <= 0xdfff);
		return cp;
	default:
		return one_line ? 0x20 + (uint32_t)(random() % 0x5f) :
		    1 + (uint32_t)(random() % 0x7f);
	}
}

/*
 * Random UTF-8 text of at most n bytes: any character but NUL, or only
 * printable ones for a value on one line; in texts the here-document
 * delimiter on a line of its own now and then.
 */
static void
rand_text(char *buf, size_t n, int one_line, const char *avoid)
{
	size_t		 i = 0;
	uint32_t	 cp;
	char		 u[4];
	size_t		 k;

	while (i + 12 < n) {
		if (!one_line && random() % 40 == 0) {
			memcpy(buf + i, "\nQSCALE_EOF\n", 12);
			i += 12;
			continue;
		}
		cp = rand_cp(one_line);
		if (cp < 0x80 && avoid != NULL && strchr(avoid, (int)cp))
			continue;
		k = put_utf8(u, cp);
		memcpy(buf + i, u, k);
		i += k;
	}
	buf[i] = '\0';
}

/* What ends a text in a here-document: nothing if a newline does. */
static const char *
ended(const char *t)
{
	size_t	 n = strlen(t);

	return n > 0 && t[n - 1] == '\n' ? "" : "\n";
}

static void
test_random_values(void **state)
{
	char		 prefix[24], queue[40], image[40], pass[60];
	char		 extra[200], init[200], *s, *out, *want, *body;
	unsigned	 seed = (unsigned)time(NULL), round;
	const char	*e = getenv("QSCALE_TEST_SEED");

	(void)state;
	if (e != NULL)
		seed = (unsigned)strtoul(e, NULL, 10);
	printf("# random values, seed %u\n", seed);
	srandom(seed);
	for (round = 0; round < 12; round++) {
		fill_full();
		rand_text(prefix, sizeof(prefix) - 1, 1, ":");
		rand_text(queue, sizeof(queue) - 1, 1, NULL);
		rand_text(image, sizeof(image) - 1, 1, NULL);
		rand_text(pass, sizeof(pass) - 1, 0, NULL);
		rand_text(extra, sizeof(extra) - 1, 0, NULL);
		rand_text(init, sizeof(init) - 1, 0, NULL);
		conf.workers_prefix = prefix;
		res[0].queue = queue;
		res[0].docker_image = image;
		conf.git.password = pass;
		conf.agent.extra_clearml_conf = extra;
		conf.agent.init_script = init;
		s = build(0);
		out = shell_values(s, "\"$worker_id_prefix\" \"$queue\" "
		    "\"$docker_image\"");
		xasprintf(&want, "%s:cpu:c5.large\n%s\n%s\n", prefix, queue,
		    image);
		assert_string_equal(out, want);
		free(out);
		free(want);
		body = bash_writes(s, "conf");
		out = hocon_value(body, "git_pass");
		assert_string_equal(out, pass);
		free(out);
		xasprintf(&want, "# agent.extra_clearml_conf\n%s%s", extra,
		    ended(extra));
		assert_true(strlen(body) >= strlen(want));
		assert_string_equal(body + strlen(body) - strlen(want), want);
		free(want);
		free(body);
		body = bash_writes(s, "init");
		xasprintf(&want, "%s%s", init, ended(init));
		assert_string_equal(body, want);
		free(want);
		free(body);
		freezero_str(s);
	}
}

/* n bytes of comment lines, the last one ended. */
static char *
filler(size_t n)
{
	char	*p = xmalloc(n + 1);
	size_t	 i;

	for (i = 0; i < n; i++)
		p[i] = (i % 64 == 63 || i == n - 1) ? '\n' : '#';
	p[n] = '\0';
	return p;
}

static void
test_size_limit(void **state)
{
	char	 err[512];
	char	*s, *big, *mid;
	size_t	 base, n;

	(void)state;
	fill_full();
	conf.agent.extra_clearml_conf = NULL;
	conf.agent.init_script = "#";
	s = build(0);
	/* the script itself stays well under the limit */
	base = strlen(s) - strlen("#\n");
	assert_true(base < 8192);
	freezero_str(s);

	/* exactly 16384 bytes is fine, one more is not */
	n = 16384 - base;
	big = filler(n);
	conf.agent.init_script = big;
	s = build(0);
	assert_int_equal(strlen(s), 16384);
	freezero_str(s);
	free(big);
	big = filler(n + 1);
	conf.agent.init_script = big;
	assert_null(userdata_build(&conf, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "16385 bytes"));
	free(big);

	/* the error names what made it large, the largest part first */
	big = filler(15000);
	mid = filler(3000);
	conf.agent.init_script = big;
	conf.agent.extra_clearml_conf = mid;
	assert_null(userdata_build(&conf, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "resource 'cpu'"));
	assert_non_null(strstr(err, "16384"));
	assert_non_null(strstr(err, "agent.init_script makes 15000"));
	assert_non_null(strstr(err, "agent.extra_clearml_conf 3000"));
	conf.agent.init_script = mid;
	conf.agent.extra_clearml_conf = big;
	assert_null(userdata_build(&conf, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "agent.extra_clearml_conf makes 15000"));
	free(big);
	free(mid);
}

static void
test_bad_config(void **state)
{
	char	 err[512];

	(void)state;
	fill_full();
	assert_null(userdata_build(&conf, 3, err, sizeof(err)));
	assert_string_equal(err, "no resource #3 (there are 3)");
	res[1].queue = "q\nx";
	assert_build_fails(1, "queue of resource 'gpu' contains a control "
	    "character");
	res[1].queue = "";
	assert_build_fails(1, "queue of resource 'gpu' is not set");
	fill_full();
	res[1].name = "g:pu";
	assert_build_fails(1, "resource name contains ':'");
	fill_full();
	res[1].instance_type = NULL;
	assert_build_fails(1, "instance_type of resource 'gpu' is not set");
	fill_full();
	conf.workers_prefix = NULL;
	assert_build_fails(1, "workers_prefix is not set");
	fill_full();
	res[0].docker_image = "img\n";
	assert_build_fails(0, "docker image of resource 'cpu' contains a "
	    "control character");
	fill_full();
	conf.agent.agent_version = "1.9; rm -rf /";
	assert_build_fails(0, "agent.agent_version is not a version");
	conf.agent.agent_version = "2.0.0rc1";
	freezero_str(build(0));
	conf.clearml.api_server = NULL;
	assert_build_fails(0, "clearml.api_server is not set");
}

/* Text the checker, ClearML and HOCON would read otherwise than bash. */
static void
test_bad_utf8(void **state)
{
	static const char *const bad[] = { "\xc0\xa7", "a\xff", "\xe2\x80",
	    "\xed\xa0\x80", "\xf4\x90\x80\x80", "\x80" };
	size_t	 i;

	(void)state;
	for (i = 0; i < QS_ARRAYLEN(bad); i++) {
		fill_full();
		conf.git.password = (char *)bad[i];
		assert_build_fails(0, "git.password is not valid UTF-8");
		fill_full();
		res[0].queue = (char *)bad[i];
		assert_build_fails(0, "queue of resource 'cpu' is not valid "
		    "UTF-8");
		fill_full();
		conf.agent.init_script = (char *)bad[i];
		assert_build_fails(0, "agent.init_script is not valid UTF-8");
	}
	fill_full();
	conf.agent.extra_clearml_conf = "caf\xc3\xa9 \xe2\x80\x99 "
	    "\xf0\x9f\x98\x80";
	res[0].queue = "caf\xc3\xa9 \xe2\x80\x99";
	freezero_str(build(0));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_docker_choice),
		cmocka_unit_test(test_options_off),
		cmocka_unit_test(test_credentials),
		cmocka_unit_test(test_hostile_values),
		cmocka_unit_test(test_delimiter_in_value),
		cmocka_unit_test(test_random_values),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_bad_utf8),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
