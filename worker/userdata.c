/*
 * userdata.c: the startup script every instance of a resource gets as
 * its EC2 user data (DESIGN 5).  It installs clearml-agent, writes
 * clearml.conf, runs the init script, reads the instance id through
 * IMDSv2, runs the agent in the foreground and powers the machine off
 * when the agent ends (instances terminate on shutdown).
 *
 * Quoting is the point of this file.  A user value reaches the script in
 * one of two forms only: a single-quoted shell word, or a line of a
 * here-document whose delimiter is quoted (so nothing in it is expanded)
 * and occurs nowhere in its text.  Secrets (the agent's ClearML keys,
 * the git password) only ever appear inside the here-document that
 * writes clearml.conf: no variable, argument or export holds one, so
 * `bash -x` on the script traces none of them.
 *
 * The test cloud's simulated agents read the worker id and the queue
 * back from the script: the lines worker_id_prefix='...', queue='...',
 * the export of CLEARML_WORKER_ID and the daemon line keep their form.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "worker.h"

#define UD_MAX_BYTES	16384	/* EC2's limit on raw user data */
#define UD_DELIM	"QSCALE_EOF"

struct ud_buf {
	char	*s;
	size_t	 len;
	size_t	 cap;
};

/* What one script is built from, checked and resolved from the config. */
struct ud_in {
	const struct qscale_conf	*conf;
	const struct conf_resource	*res;
	const char			*docker_image;	/* NULL: none */
	const char			*access_key;
	const char			*secret_key;
};

/*
 * Grows by copying and wiping the old block rather than realloc(), so
 * no stray copy of a secret is left in freed memory.
 */
static void
ud_reserve(struct ud_buf *b, size_t need)
{
	size_t	 cap = b->cap > 0 ? b->cap : 4096;
	char	*s;

	if (need <= b->cap)
		return;
	while (cap < need)
		cap *= 2;
	s = xmalloc(cap);
	if (b->s != NULL) {
		memcpy(s, b->s, b->len + 1);
		explicit_bzero(b->s, b->cap);
		free(b->s);
	}
	b->s = s;
	b->cap = cap;
}

static void
ud_addn(struct ud_buf *b, const char *s, size_t n)
{
	ud_reserve(b, b->len + n + 1);
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void
ud_add(struct ud_buf *b, const char *s)
{
	ud_addn(b, s, strlen(s));
}

static void
ud_clear(struct ud_buf *b)
{
	if (b->s != NULL) {
		explicit_bzero(b->s, b->cap);
		free(b->s);
	}
	memset(b, 0, sizeof(*b));
}

/* A single-quoted shell word: 'it'\''s' for it's. */
static void
ud_add_sq(struct ud_buf *b, const char *v)
{
	char	*e = mask_escape(v, MASK_FORM_SHELL_SQ);

	ud_add(b, "'");
	ud_add(b, e);
	ud_add(b, "'");
	freezero_str(e);
}

/*
 * NAME='VALUE' on a line of its own.  shellcheck takes a $, ` or \, or
 * a Unicode quote, in single quotes for a quoting mistake; here they are
 * meant literally.
 */
static void
ud_add_assign(struct ud_buf *b, const char *name, const char *v)
{
	const unsigned char	*p;
	int			 odd = strpbrk(v, "$`\\") != NULL;

	for (p = (const unsigned char *)v; *p != '\0' && !odd; p++)
		odd = *p >= 0x80;
	if (odd)
		ud_add(b, "# shellcheck disable=SC1003,SC1112,SC2016 # "
		    "literal value\n");
	ud_add(b, name);
	ud_add(b, "=");
	ud_add_sq(b, v);
	ud_add(b, "\n");
}

/*
 * A HOCON quoted string (JSON rules): never more than one line, so it
 * can never end the here-document it sits in.  mask_escape() writes it,
 * so that the masking knows this form of every secret.
 */
static void
ud_add_hocon(struct ud_buf *b, const char *v)
{
	char	*e = mask_escape(v, MASK_FORM_HOCON);

	ud_add(b, "\"");
	ud_add(b, e);
	ud_add(b, "\"");
	freezero_str(e);
}

/* "  key: "value"\n" in clearml.conf. */
static void
ud_add_hocon_kv(struct ud_buf *b, const char *indent, const char *key,
    const char *v)
{
	ud_add(b, indent);
	ud_add(b, key);
	ud_add(b, ": ");
	ud_add_hocon(b, v);
	ud_add(b, "\n");
}

/*
 * PREFIX <<'DELIM'SUFFIX, the body, DELIM: the delimiter is one that
 * occurs nowhere in the body, not even inside a line.
 */
static void
ud_add_heredoc(struct ud_buf *b, const char *prefix, const char *suffix,
    const char *body)
{
	char		 delim[32];
	unsigned	 n = 0;
	size_t		 len = strlen(body);

	snprintf(delim, sizeof(delim), "%s", UD_DELIM);
	while (strstr(body, delim) != NULL)
		snprintf(delim, sizeof(delim), "%s_%u", UD_DELIM, ++n);
	ud_add(b, prefix);
	ud_add(b, " <<'");
	ud_add(b, delim);
	ud_add(b, "'");
	ud_add(b, suffix);
	ud_add(b, "\n");
	ud_add(b, body);
	if (len > 0 && body[len - 1] != '\n')
		ud_add(b, "\n");
	ud_add(b, delim);
	ud_add(b, "\n");
}

static int
ud_isset(const char *s)
{
	return s != NULL && *s != '\0';
}

/*
 * Strict UTF-8: no overlong forms, surrogates or stray bytes.  ClearML
 * and HOCON take text, and a checker reading the script must see the
 * same quotes bash does.
 */
static int
ud_utf8_ok(const char *s)
{
	const unsigned char	*p = (const unsigned char *)s;
	uint32_t		 cp;
	int			 n, i;

	while (*p != '\0') {
		if (*p < 0x80) {
			p++;
			continue;
		}
		if ((*p & 0xe0) == 0xc0)
			n = 1, cp = *p & 0x1f;
		else if ((*p & 0xf0) == 0xe0)
			n = 2, cp = *p & 0x0f;
		else if ((*p & 0xf8) == 0xf0)
			n = 3, cp = *p & 0x07;
		else
			return 0;
		for (i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
		    (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		p += n + 1;
	}
	return 1;
}

/* A text that goes into the script as it is: UTF-8, if set. */
static int
ud_check_text(const char *what, const char *v, char *err, size_t errlen)
{
	if (v != NULL && !ud_utf8_ok(v)) {
		snprintf(err, errlen, "%s is not valid UTF-8", what);
		return -1;
	}
	return 0;
}

/*
 * A value that goes on one line of the script: set, no control
 * character (the simulated agents and ClearML read these as lines), and
 * no ':' in the parts of the worker id, which is split on ':'.
 */
static int
ud_check_word(const char *what, const char *v, int in_worker_id, char *err,
    size_t errlen)
{
	const unsigned char	*p;

	if (!ud_isset(v)) {
		snprintf(err, errlen, "%s is not set", what);
		return -1;
	}
	if (ud_check_text(what, v, err, errlen) == -1)
		return -1;
	for (p = (const unsigned char *)v; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			snprintf(err, errlen,
			    "%s contains a control character", what);
			return -1;
		}
		if (*p == ':' && in_worker_id) {
			snprintf(err, errlen, "%s contains ':', which would "
			    "break the worker id", what);
			return -1;
		}
	}
	return 0;
}

/* A pip version: PEP 440 characters only (1.9.2, 1.9.*, 2.0.0rc1). */
static int
ud_check_version(const char *v, char *err, size_t errlen)
{
	static const char	 ok[] = "0123456789abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ.+!*-_";

	if (v[strspn(v, ok)] != '\0') {
		snprintf(err, errlen, "agent.agent_version is not a version "
		    "pip understands (expected e.g. 1.9.2)");
		return -1;
	}
	return 0;
}

/* The agent's own ClearML credentials, else the autoscaler's. */
static int
ud_pick_creds(struct ud_in *in, char *err, size_t errlen)
{
	const struct conf_agent		*a = &in->conf->agent;
	const struct conf_clearml	*c = &in->conf->clearml;

	int				 ak = ud_isset(a->access_key);

	if (ak || ud_isset(a->secret_key)) {
		if (!ak || !ud_isset(a->secret_key)) {
			snprintf(err, errlen, "agent.%s is set without "
			    "agent.%s", ak ? "access_key" : "secret_key",
			    ak ? "secret_key" : "access_key");
			return -1;
		}
		in->access_key = a->access_key;
		in->secret_key = a->secret_key;
		return 0;
	}
	if (!ud_isset(c->access_key) || !ud_isset(c->secret_key)) {
		snprintf(err, errlen, "no ClearML credentials for the agents: "
		    "set agent.access_key and agent.secret_key, or "
		    "clearml.access_key and clearml.secret_key");
		return -1;
	}
	in->access_key = c->access_key;
	in->secret_key = c->secret_key;
	return 0;
}

/*
 * The resource's docker image over the agent's; an empty one on the
 * resource means "no docker here" even when the agent has a default.
 */
static const char *
ud_pick_docker(const struct qscale_conf *conf,
    const struct conf_resource *res)
{
	if (res->docker_image != NULL)
		return ud_isset(res->docker_image) ? res->docker_image : NULL;
	return ud_isset(conf->agent.docker_image) ? conf->agent.docker_image :
	    NULL;
}

/* Every other value that goes into the script is UTF-8 text. */
static int
ud_check_texts(const struct ud_in *in, char *err, size_t errlen)
{
	const struct qscale_conf	*conf = in->conf;
	const struct {
		const char	*what;
		const char	*v;
	} t[] = {
		{ "clearml.api_server", conf->clearml.api_server },
		{ "clearml.web_server", conf->clearml.web_server },
		{ "clearml.files_server", conf->clearml.files_server },
		{ "the agents' access_key", in->access_key },
		{ "the agents' secret_key", in->secret_key },
		{ "git.user", conf->git.user },
		{ "git.password", conf->git.password },
		{ "agent.extra_clearml_conf", conf->agent.extra_clearml_conf },
		{ "agent.init_script", conf->agent.init_script },
	};
	size_t	 i;

	for (i = 0; i < QS_ARRAYLEN(t); i++)
		if (ud_check_text(t[i].what, t[i].v, err, errlen) == -1)
			return -1;
	return 0;
}

static int
ud_check(struct ud_in *in, char *err, size_t errlen)
{
	const struct qscale_conf	*conf = in->conf;
	const struct conf_resource	*res = in->res;
	char				 what[128];

	if (ud_check_word("workers_prefix", conf->workers_prefix, 1, err,
	    errlen) == -1 ||
	    ud_check_word("resource name", res->name, 1, err, errlen) == -1)
		return -1;
	snprintf(what, sizeof(what), "instance_type of resource '%s'",
	    res->name);
	if (ud_check_word(what, res->instance_type, 1, err, errlen) == -1)
		return -1;
	snprintf(what, sizeof(what), "queue of resource '%s'", res->name);
	if (ud_check_word(what, res->queue, 0, err, errlen) == -1)
		return -1;
	in->docker_image = ud_pick_docker(conf, res);
	snprintf(what, sizeof(what), "docker image of resource '%s'",
	    res->name);
	if (in->docker_image != NULL &&
	    ud_check_word(what, in->docker_image, 0, err, errlen) == -1)
		return -1;
	if (ud_isset(conf->agent.agent_version) &&
	    (ud_check_word("agent.agent_version", conf->agent.agent_version,
	    0, err, errlen) == -1 ||
	    ud_check_version(conf->agent.agent_version, err, errlen) == -1))
		return -1;
	if (!ud_isset(conf->clearml.api_server)) {
		snprintf(err, errlen, "clearml.api_server is not set");
		return -1;
	}
	if (ud_pick_creds(in, err, errlen) == -1)
		return -1;
	return ud_check_texts(in, err, errlen);
}

static const char ud_prologue[] =
    "#!/bin/bash\n"
    "# Startup script of an instance launched by qscale " QSCALE_VERSION
    ": installs\n"
    "# clearml-agent, writes its configuration, runs the init script, "
    "then\n"
    "# the agent, and powers the machine off when the agent ends.  "
    "Secrets\n"
    "# are only in quoted here-documents: no variable, argument or trace\n"
    "# ever holds one.\n"
    "set -u -o pipefail\n"
    "HOME=${HOME:-/root}\n"
    "export HOME\n"
    "export DEBIAN_FRONTEND=noninteractive\n"
    "\n";

static const char ud_paths[] =
    "venv=\"$HOME/clearml-agent-venv\"\n"
    "conf=\"$HOME/clearml.conf\"\n"
    "\n";

static const char ud_helpers[] =
    "qs_log() { printf 'qscale-startup: %s\\n' \"$*\" >&2; }\n"
    "\n"
    "# Whatever ends this script (a step that failed for good, an exit in\n"
    "# .bashrc or the init script, the end of the agent) powers the "
    "machine\n"
    "# off: it terminates on shutdown, so nothing is left idle and billed."
    "\n"
    "qs_shutdown() {\n"
    "\ttrap - EXIT\n"
    "\tqs_log \"shutting down\"\n"
    "\tshutdown -h now\n"
    "}\n"
    "trap qs_shutdown EXIT\n"
    "\n"
    "qs_die() {\n"
    "\tqs_log \"$*\"\n"
    "\texit 1\n"
    "}\n"
    "\n"
    "# qs_retry TRIES COMMAND...: waits a little longer after each "
    "failure.\n"
    "qs_retry() {\n"
    "\tlocal tries=$1 i\n"
    "\tshift\n"
    "\tfor ((i = 1; i <= tries; i++)); do\n"
    "\t\t\"$@\" && return 0\n"
    "\t\tqs_log \"attempt $i of $tries failed: $1\"\n"
    "\t\t((i < tries)) && sleep $((i * 15))\n"
    "\tdone\n"
    "\treturn 1\n"
    "}\n"
    "\n";

static const char ud_install[] =
    "# 1. python3 with venv and pip, and git (the agent clones with it), "
    "from\n"
    "# the distribution when missing; then clearml-agent in a virtualenv."
    "\n"
    "qs_deb_missing() {\n"
    "\tlocal p\n"
    "\tfor p in python3 python3-venv python3-pip git; do\n"
    "\t\t[[ $(dpkg -s \"$p\" 2>/dev/null) == "
    "*'Status: install ok installed'* ]] ||\n"
    "\t\t    printf '%s\\n' \"$p\"\n"
    "\tdone\n"
    "}\n"
    "\n"
    "# apt-get waits up to 10 minutes for the dpkg lock (an apt at boot).\n"
    "qs_apt() {\n"
    "\tapt-get -q -o DPkg::Lock::Timeout=600 update &&\n"
    "\t    apt-get -q -y -o DPkg::Lock::Timeout=600 install \"$@\"\n"
    "}\n"
    "\n"
    "if command -v apt-get >/dev/null; then\n"
    "\tmapfile -t missing < <(qs_deb_missing)\n"
    "\tif ((${#missing[@]} > 0)); then\n"
    "\t\tqs_retry 5 qs_apt \"${missing[@]}\" ||\n"
    "\t\t    qs_die \"cannot install ${missing[*]}\"\n"
    "\tfi\n"
    "elif pm=$(command -v dnf || command -v yum); then\n"
    "\trpm -q python3 python3-pip git >/dev/null ||\n"
    "\t    qs_retry 5 \"$pm\" -q -y install python3 python3-pip git ||\n"
    "\t    qs_die \"cannot install python3, pip and git with $pm\"\n"
    "fi\n"
    "if [ ! -x \"$venv/bin/pip\" ]; then\n"
    "\tpython3 -m venv \"$venv\" || qs_die \"cannot create the virtualenv "
    "$venv\"\n"
    "fi\n"
    "qs_retry 5 \"$venv/bin/pip\" install --upgrade "
    "--disable-pip-version-check \\\n"
    "    \"$agent_pip\" || qs_die \"cannot install $agent_pip\"\n"
    "\n";

static const char ud_bashrc[] =
    "# 3. What the image's .bashrc sets up (PATH, conda, ...); it may use\n"
    "# unset variables.\n"
    "if [ -f ~/.bashrc ]; then\n"
    "\tset +u\n"
    "\t# shellcheck source=/dev/null\n"
    "\tsource ~/.bashrc\n"
    "\tset -u\n"
    "fi\n"
    "\n";

static const char ud_init_run[] =
    "set +u\n"
    "# shellcheck source=/dev/null\n"
    "source \"$init\"\n"
    "rc=$?\n"
    "set -u\n"
    "((rc == 0)) || qs_log \"the init script ended with status $rc\"\n"
    "\n";

static const char ud_imds[] =
    "# 5. The instance id, through IMDSv2.  The session token goes from "
    "one\n"
    "# curl to the other through a pipe, never through a variable or an\n"
    "# argument.\n"
    "qs_imds() {\n"
    "\t{\n"
    "\t\tprintf 'X-aws-ec2-metadata-token: '\n"
    "\t\tcurl -fsS --retry 3 --retry-connrefused --max-time 10 -X PUT \\\n"
    "\t\t    -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' \\\n"
    "\t\t    http://169.254.169.254/latest/api/token\n"
    "\t} | curl -fsS --retry 3 --retry-connrefused --max-time 10 -H @- \\\n"
    "\t    \"http://169.254.169.254/latest/meta-data/$1\"\n"
    "}\n"
    "instance_id=\n"
    "for ((i = 1; i <= 10; i++)); do\n"
    "\tinstance_id=$(qs_imds instance-id) &&\n"
    "\t    [[ $instance_id =~ ^i-[0-9a-f]+$ ]] && break\n"
    "\tqs_log \"no instance id from IMDSv2 (attempt $i of 10)\"\n"
    "\tinstance_id=\n"
    "\tsleep 5\n"
    "done\n"
    "[ -n \"$instance_id\" ] || qs_die \"cannot read the instance id from "
    "IMDSv2\"\n"
    "\n";

/* The values every later step uses, as single-quoted words. */
static void
ud_add_values(struct ud_buf *b, const struct ud_in *in)
{
	const struct qscale_conf	*conf = in->conf;
	const char			*ver = conf->agent.agent_version;
	char				*s;

	xasprintf(&s, "%s:%s:%s", conf->workers_prefix, in->res->name,
	    in->res->instance_type);
	ud_add_assign(b, "worker_id_prefix", s);
	free(s);
	ud_add_assign(b, "queue", in->res->queue);
	if (in->docker_image != NULL)
		ud_add_assign(b, "docker_image", in->docker_image);
	if (ud_isset(ver)) {
		xasprintf(&s, "clearml-agent==%s", ver);
		ud_add_assign(b, "agent_pip", s);
		free(s);
	} else
		ud_add_assign(b, "agent_pip", "clearml-agent");
}

/* The text of clearml.conf; the caller wipes it. */
static void
ud_conf_text(struct ud_buf *t, const struct ud_in *in)
{
	const struct conf_clearml	*c = &in->conf->clearml;
	const struct conf_git		*g = &in->conf->git;
	const char			*extra;

	ud_add(t, "api {\n");
	ud_add_hocon_kv(t, "  ", "api_server", c->api_server);
	if (ud_isset(c->web_server))
		ud_add_hocon_kv(t, "  ", "web_server", c->web_server);
	if (ud_isset(c->files_server))
		ud_add_hocon_kv(t, "  ", "files_server", c->files_server);
	ud_add(t, "  credentials {\n");
	ud_add_hocon_kv(t, "    ", "access_key", in->access_key);
	ud_add_hocon_kv(t, "    ", "secret_key", in->secret_key);
	ud_add(t, "  }\n}\n");
	if (ud_isset(g->user) || ud_isset(g->password)) {
		ud_add(t, "agent {\n");
		if (ud_isset(g->user))
			ud_add_hocon_kv(t, "  ", "git_user", g->user);
		if (ud_isset(g->password))
			ud_add_hocon_kv(t, "  ", "git_pass", g->password);
		ud_add(t, "}\n");
	}
	extra = in->conf->agent.extra_clearml_conf;
	if (ud_isset(extra)) {
		ud_add(t, "# agent.extra_clearml_conf\n");
		ud_add(t, extra);
	}
}

static void
ud_add_conf(struct ud_buf *b, const struct ud_in *in)
{
	struct ud_buf	 t = { NULL, 0, 0 };

	ud_conf_text(&t, in);
	ud_add(b, "# 2. The agent's configuration, readable by root only.\n"
	    "rm -f \"$conf\"\n");
	ud_add_heredoc(b, "(umask 077 && cat >\"$conf\")",
	    " || qs_die \"cannot write $conf\"", t.s);
	ud_add(b, "\n");
	ud_clear(&t);
}

static void
ud_add_init(struct ud_buf *b, const struct ud_in *in)
{
	const char	*init = in->conf->agent.init_script;

	if (in->res->cpu_mode)
		ud_add(b, "# CPU mode: no GPU for the init script, the agent "
		    "or its tasks.\n"
		    "export NVIDIA_VISIBLE_DEVICES=none\n\n");
	if (!ud_isset(init))
		return;
	ud_add(b, "# 4. The init script (agent.init_script) runs in this "
	    "shell, so that\n"
	    "# what it exports reaches the agent.\n"
	    "init=\"$HOME/qscale-init.sh\"\n");
	ud_add_heredoc(b, "(umask 077 && cat >\"$init\")",
	    " || qs_die \"cannot write $init\"", init);
	ud_add(b, ud_init_run);
}

static void
ud_add_agent(struct ud_buf *b, const struct ud_in *in)
{
	ud_add(b, "# 6. The agent, in the foreground, as this instance's "
	    "worker.\n");
	if (in->docker_image != NULL)
		ud_add(b, "command -v docker >/dev/null ||\n"
		    "    qs_log \"warning: no docker here; the agent needs it "
		    "to run tasks in $docker_image\"\n");
	ud_add(b, "export CLEARML_WORKER_ID=\"${worker_id_prefix}:"
	    "${instance_id}\"\n"
	    "qs_log \"starting clearml-agent as $CLEARML_WORKER_ID on queue "
	    "$queue\"\n"
	    "# One line: tools read the queue and the worker id back from "
	    "here.\n"
	    "\"$venv/bin/clearml-agent\" --config-file \"$conf\" daemon "
	    "--queue \"$queue\"");
	if (in->docker_image != NULL)
		ud_add(b, " --docker \"$docker_image\"");
	if (in->res->cpu_mode)
		ud_add(b, " --cpu-only");
	ud_add(b, "\n"
	    "qs_log \"clearml-agent exited with status $?\"\n"
	    "qs_shutdown\n");
}

/* Names what made the script too large, largest part first. */
static void
ud_too_large(const struct ud_in *in, size_t len, char *err, size_t errlen)
{
	const char	*init = in->conf->agent.init_script;
	const char	*extra = in->conf->agent.extra_clearml_conf;
	size_t		 ni = init != NULL ? strlen(init) : 0;
	size_t		 ne = extra != NULL ? strlen(extra) : 0;
	const char	*big = ni >= ne ? "agent.init_script" :
	    "agent.extra_clearml_conf";
	const char	*small = ni >= ne ? "agent.extra_clearml_conf" :
	    "agent.init_script";

	snprintf(err, errlen, "startup script of resource '%s' is %zu "
	    "bytes, over EC2's user data limit of %d: %s makes %zu of them, "
	    "%s %zu, the rest of the script %zu", in->res->name, len,
	    UD_MAX_BYTES, big, QS_MAX(ni, ne), small, QS_MIN(ni, ne),
	    len - ni - ne);
}

char *
userdata_build(const struct qscale_conf *conf, size_t index, char *err,
    size_t errlen)
{
	struct ud_in	 in;
	struct ud_buf	 b = { NULL, 0, 0 };

	if (index >= conf->nresources) {
		snprintf(err, errlen, "no resource #%zu (there are %zu)",
		    index, conf->nresources);
		return NULL;
	}
	memset(&in, 0, sizeof(in));
	in.conf = conf;
	in.res = &conf->resources[index];
	if (ud_check(&in, err, errlen) == -1)
		return NULL;
	ud_add(&b, ud_prologue);
	ud_add_values(&b, &in);
	ud_add(&b, ud_paths);
	ud_add(&b, ud_helpers);
	ud_add(&b, ud_install);
	ud_add_conf(&b, &in);
	if (!conf->agent.exclude_bashrc)
		ud_add(&b, ud_bashrc);
	ud_add_init(&b, &in);
	ud_add(&b, ud_imds);
	ud_add_agent(&b, &in);
	if (b.len > UD_MAX_BYTES) {
		ud_too_large(&in, b.len, err, errlen);
		ud_clear(&b);
		return NULL;
	}
	return b.s;
}
