/*
 * vault.c: the configuration vault of ClearML's AWS Autoscaler app, read
 * from a file (vault_file = "..."), so that a team moving over brings
 * its vault text as it is:
 *
 *	auto_scaler.v1.aws {
 *	    aws_region: "us-east-1"
 *	    extra_vm_bash_script: """
 *	        echo hello
 *	    """
 *	    match {
 *	        "^aws_.*$": { extra_clearml_conf: "agent.docker_force_pull: true" }
 *	    }
 *	}
 *
 * The vault is HOCON.  Debian packages no C parser for it, so this file
 * reads the subset a vault holds: objects (with or without the ':' before
 * a '{'), dotted keys, "quoted" and """triple-quoted""" strings, unquoted
 * strings, numbers, booleans, null, arrays, ',' or newlines between
 * members, and # or // comments.  Objects given twice merge, as in HOCON.
 *
 * What lies under auto_scaler.v1.aws becomes two kinds of layer of the
 * configuration (config.c): its keys, mapped to qscale's names, a layer
 * like "defaults"; each entry of its match object, a layer like a match
 * block whose workers_prefix is the entry's name.  Every node keeps its
 * file and line, so every error reads FILE:LINE: message.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_int.h"

#define VAULT_MAX_DEPTH	32

/* The vault's keys, and qscale's key each one sets. */
static const struct {
	const char	*vault;
	const char	*key;
} vault_keys[] = {
	{ "aws_region",			"aws.region" },
	{ "aws_access_key_id",		"aws.access_key_id" },
	{ "aws_credentials_key_id",	"aws.access_key_id" },
	{ "aws_secret_access_key",	"aws.secret_access_key" },
	{ "extra_vm_bash_script",	"agent.init_script" },
	{ "extra_clearml_conf",		"agent.extra_clearml_conf" },
};

/* The vault's keys qscale knows but cannot honour, and why. */
static const struct {
	const char	*vault;
	const char	*why;
} vault_refused[] = {
	{ "files", "writes files in the app's own container; qscale has "
	    "none: put them on the host qscaled runs on" },
	{ "environment", "sets the environment of the app's own container; "
	    "set it in qscaled's service environment instead "
	    "(/etc/default/qscaled or the systemd unit)" },
};

struct vparse {
	struct conf_ld	*ld;
	const char	*file;
	const char	*p;		/* next character */
	int		 line;
	int		 depth;
	int		 failed;
};

static struct cnode	*vp_value(struct vparse *, const char *);

static void
vp_err(struct vparse *v, const char *what)
{
	if (!v->failed)
		ld_err(v->ld, v->file, v->line, "vault: %s", what);
	v->failed = 1;
}

/* Skips blanks and comments; newlines too when NL is set. */
static void
vp_skip(struct vparse *v, int nl)
{
	for (;;) {
		if (*v->p == ' ' || *v->p == '\t' || *v->p == '\r')
			v->p++;
		else if (*v->p == '\n' && nl) {
			v->line++;
			v->p++;
		} else if (*v->p == '#' || (v->p[0] == '/' && v->p[1] == '/')) {
			while (*v->p != '\0' && *v->p != '\n')
				v->p++;
		} else
			return;
	}
}

/* A "quoted" string, escapes as in JSON (\uXXXX below 0x80 only). */
static char *
vp_quoted(struct vparse *v)
{
	const char	*end;
	char		*out, *o;
	unsigned int	 u;
	int		 c;

	for (end = v->p + 1; *end != '"'; end++) {
		if (*end == '\\' && end[1] != '\0' && end[1] != '\n')
			end++;
		else if (*end == '\0' || *end == '\n') {
			vp_err(v, "unterminated string");
			return NULL;
		}
	}
	out = o = xmalloc((size_t)(end - v->p) + 1);
	for (v->p++; v->p < end; v->p++) {
		if (*v->p != '\\') {
			*o++ = *v->p;
			continue;
		}
		switch (*++v->p) {
		case 'n': c = '\n'; break;
		case 't': c = '\t'; break;
		case 'r': c = '\r'; break;
		case 'b': c = '\b'; break;
		case 'f': c = '\f'; break;
		case '"': case '\\': case '/': c = *v->p; break;
		case 'u':
			if (end - v->p < 5 || sscanf(v->p + 1, "%4x", &u) != 1 ||
			    u == 0 || u > 0x7f) {
				vp_err(v, "\\u escape: only \\u0001 to \\u007f "
				    "are supported");
				free(out);
				return NULL;
			}
			c = (int)u;
			v->p += 4;
			break;
		default:
			vp_err(v, "unknown escape in a string");
			free(out);
			return NULL;
		}
		*o++ = (char)c;
	}
	v->p = end + 1;
	*o = '\0';
	return out;
}

/* A """triple-quoted""" string: verbatim, newlines included. */
static char *
vp_triple(struct vparse *v)
{
	const char	*end;
	char		*out;
	int		 start = v->line;

	v->p += 3;
	if ((end = strstr(v->p, "\"\"\"")) == NULL) {
		v->line = start;
		vp_err(v, "unterminated \"\"\" string (it starts on this line)");
		return NULL;
	}
	while (end[3] == '"')		/* """a"""" is a" */
		end++;
	out = xstrndup(v->p, (size_t)(end - v->p));
	for (; v->p < end; v->p++)
		if (*v->p == '\n')
			v->line++;
	v->p = end + 3;
	return out;
}

static int
vp_unquoted_char(const char *p)
{
	return *p != '\0' && strchr("\n{}[]:=,\"#", *p) == NULL &&
	    !(p[0] == '/' && p[1] == '/');
}

/* A value that is no string, object or array: unquoted text. */
static struct cnode *
vp_scalar(struct vparse *v, const char *name)
{
	struct cnode	*n;
	const char	*s = v->p;
	char		*text, *end;
	size_t		 len;

	while (vp_unquoted_char(v->p))
		v->p++;
	len = (size_t)(v->p - s);
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	if (len == 0) {
		vp_err(v, "expected a value");
		return NULL;
	}
	text = xstrndup(s, len);
	if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0) {
		n = cnode_new(CN_BOOL, name, v->file, v->line);
		n->ival = text[0] == 't';
	} else if (strcmp(text, "null") == 0)
		n = cnode_new(CN_NULL, name, v->file, v->line);
	else {
		n = cnode_new(CN_INT, name, v->file, v->line);
		errno = 0;
		n->ival = strtoll(text, &end, 10);
		if (*end != '\0' || errno != 0 || end == text) {
			n->fval = strtod(text, &end);
			n->type = *end == '\0' && end != text &&
			    strchr("+-.0123456789", *text) != NULL ?
			    CN_FLOAT : CN_STR;
		}
		if (n->type == CN_STR) {
			n->str = text;
			return n;
		}
	}
	free(text);
	return n;
}

/* One key of a member: unquoted or "quoted"; a path if dotted. */
static char *
vp_key_part(struct vparse *v)
{
	const char	*s = v->p;

	if (*v->p == '"')
		return vp_quoted(v);
	while (isalnum((unsigned char)*v->p) || *v->p == '_' || *v->p == '-')
		v->p++;
	if (v->p == s) {
		vp_err(v, "expected a key");
		return NULL;
	}
	return xstrndup(s, (size_t)(v->p - s));
}

static struct cnode *
vp_member_of(struct cnode *g, const char *name)
{
	size_t	 i;

	for (i = 0; i < g->nkid; i++)
		if (g->kid[i] != NULL && g->kid[i]->name != NULL &&
		    strcmp(g->kid[i]->name, name) == 0)
			return g->kid[i];
	return NULL;
}

/* Puts KID in G under its name: objects merge, anything else replaces. */
static void
vp_put(struct cnode *g, struct cnode *kid)
{
	struct cnode	*old = vp_member_of(g, kid->name);
	size_t		 i;

	if (old == NULL) {
		cnode_add(g, kid);
		return;
	}
	if (old->type == CN_GROUP && kid->type == CN_GROUP) {
		for (i = 0; i < kid->nkid; i++)
			vp_put(old, kid->kid[i]);
		kid->nkid = 0;
		cnode_free(kid);
		return;
	}
	for (i = 0; i < g->nkid; i++)
		if (g->kid[i] == old)
			g->kid[i] = kid;
	cnode_free(old);
}

static int	vp_members(struct vparse *, struct cnode *, int);

/* key [: | =] value, a dotted key making nested objects. */
static int
vp_member(struct vparse *v, struct cnode *g)
{
	struct cnode	*val, *wrap;
	char		*parts[16];
	size_t		 np = 0;
	int		 line = v->line, rc = -1;

	do {
		if (np > 0)
			v->p++;
		if (np == QS_ARRAYLEN(parts)) {
			vp_err(v, "key with too many dotted parts");
			goto out;
		}
		if ((parts[np] = vp_key_part(v)) == NULL)
			goto out;
		np++;
	} while (*v->p == '.');
	vp_skip(v, 0);
	if (*v->p == ':' || *v->p == '=') {
		v->p++;
		vp_skip(v, 0);
	} else if (*v->p != '{') {
		vp_err(v, "expected ':' or '=' after the key");
		goto out;
	}
	if ((val = vp_value(v, parts[np - 1])) == NULL)
		goto out;
	while (np > 1) {
		wrap = cnode_new(CN_GROUP, parts[np - 2], v->file, line);
		cnode_add(wrap, val);
		val = wrap;
		free(parts[--np]);
	}
	vp_put(g, val);
	rc = 0;
out:
	while (np > 0)
		free(parts[--np]);
	return rc;
}

/* Members up to '}' (CLOSE) or the end of the text. */
static int
vp_members(struct vparse *v, struct cnode *g, int close)
{
	for (;;) {
		vp_skip(v, 1);
		while (*v->p == ',') {
			v->p++;
			vp_skip(v, 1);
		}
		if (*v->p == '\0') {
			if (close)
				vp_err(v, "missing '}' at the end of the file");
			return close ? -1 : 0;
		}
		if (*v->p == '}') {
			if (!close) {
				vp_err(v, "'}' without its '{'");
				return -1;
			}
			v->p++;
			return 0;
		}
		if (vp_member(v, g) == -1)
			return -1;
		vp_skip(v, 0);
		if (*v->p != ',' && *v->p != '\n' && *v->p != '}' &&
		    *v->p != '\0') {
			vp_err(v, "expected a newline or ',' after a value");
			return -1;
		}
	}
}

static struct cnode *
vp_array(struct vparse *v, const char *name)
{
	struct cnode	*a = cnode_new(CN_LIST, name, v->file, v->line), *e;

	v->p++;
	for (;;) {
		vp_skip(v, 1);
		if (*v->p == ']') {
			v->p++;
			return a;
		}
		if ((e = vp_value(v, NULL)) == NULL)
			break;
		cnode_add(a, e);
		vp_skip(v, 1);
		if (*v->p == ',')
			v->p++;
		else if (*v->p != ']') {
			vp_err(v, "expected ',' or ']' in an array");
			break;
		}
	}
	cnode_free(a);
	return NULL;
}

static struct cnode *
vp_value(struct vparse *v, const char *name)
{
	struct cnode	*n;
	char		*s;
	int		 line = v->line;

	if (v->depth >= VAULT_MAX_DEPTH) {
		vp_err(v, "nested deeper than 32");
		return NULL;
	}
	if (*v->p == '{') {
		v->p++;
		n = cnode_new(CN_GROUP, name, v->file, line);
		v->depth++;
		if (vp_members(v, n, 1) == -1) {
			cnode_free(n);
			n = NULL;
		}
		v->depth--;
		return n;
	}
	if (*v->p == '[') {
		v->depth++;
		n = vp_array(v, name);
		v->depth--;
		return n;
	}
	if (*v->p == '"') {
		s = strncmp(v->p, "\"\"\"", 3) == 0 ? vp_triple(v) :
		    vp_quoted(v);
		if (s == NULL)
			return NULL;
		n = cnode_new(CN_STR, name, v->file, line);
		n->str = s;
		return n;
	}
	return vp_scalar(v, name);
}

/* The whole text as one object; NULL (errors said) if it is not one. */
struct cnode *
vault_parse(struct conf_ld *ld, const char *file, const char *text)
{
	struct vparse	 v;
	struct cnode	*root;
	int		 rc;

	memset(&v, 0, sizeof(v));
	v.ld = ld;
	v.file = file;
	v.p = text;
	v.line = 1;
	root = cnode_new(CN_GROUP, NULL, file, 1);
	vp_skip(&v, 1);
	if (*v.p == '{') {		/* braces around the root: optional */
		v.p++;
		rc = vp_members(&v, root, 1);
		if (rc == 0) {
			vp_skip(&v, 1);
			if (*v.p != '\0')
				vp_err(&v, "text after the closing '}'");
		}
	} else
		rc = vp_members(&v, root, 0);
	if (rc == -1 || v.failed) {
		cnode_free(root);
		return NULL;
	}
	return root;
}

/* Puts N under G at qscale's dotted PATH, making the groups between. */
static void
put_path(struct cnode *g, const char *path, struct cnode *n)
{
	struct cnode	*sub;
	const char	*dot;
	char		*part;

	while ((dot = strchr(path, '.')) != NULL) {
		part = xstrndup(path, (size_t)(dot - path));
		if ((sub = vp_member_of(g, part)) == NULL ||
		    sub->type != CN_GROUP) {
			sub = cnode_new(CN_GROUP, part, n->file, n->line);
			vp_put(g, sub);
		}
		free(part);
		g = sub;
		path = dot + 1;
	}
	free(n->name);
	n->name = xstrdup(path);
	vp_put(g, n);
}

/* Moves the vault keys of SRC into the layer group DST, by qscale name. */
static void
map_keys(struct conf_ld *ld, struct cnode *src, struct cnode *dst,
    const char *in)
{
	struct cnode	*n;
	size_t		 i, j;

	for (i = 0; i < src->nkid; i++) {
		n = src->kid[i];
		if (strcmp(n->name, "match") == 0 && in == NULL)
			continue;
		for (j = 0; j < QS_ARRAYLEN(vault_keys); j++)
			if (strcmp(vault_keys[j].vault, n->name) == 0)
				break;
		if (j < QS_ARRAYLEN(vault_keys)) {
			src->kid[i] = NULL;
			put_path(dst, vault_keys[j].key, n);
			continue;
		}
		for (j = 0; j < QS_ARRAYLEN(vault_refused); j++)
			if (strcmp(vault_refused[j].vault, n->name) == 0)
				break;
		if (j < QS_ARRAYLEN(vault_refused))
			ld_err_at(ld, n, "vault: %s%s: not supported: it %s",
			    in ? in : "", n->name, vault_refused[j].why);
		else
			ld_err_at(ld, n, "vault: %sunknown key '%s' (qscale "
			    "reads aws_region, aws_access_key_id, "
			    "aws_secret_access_key, extra_vm_bash_script, "
			    "extra_clearml_conf and match)", in ? in : "",
			    n->name);
	}
}

/* The match object: one group per regex, its workers_prefix set. */
static struct cnode *
map_match(struct conf_ld *ld, struct cnode *m)
{
	struct cnode	*list, *blk, *re;
	char		*in;
	size_t		 i;

	list = cnode_new(CN_LIST, "match", m->file, m->line);
	if (m->type != CN_GROUP) {
		ld_err_at(ld, m, "vault: match must be an object of "
		    "\"REGEX\": { ... } entries, not %s",
		    cnode_type_name(m->type));
		return list;
	}
	for (i = 0; i < m->nkid; i++) {
		if (m->kid[i]->type != CN_GROUP) {
			ld_err_at(ld, m->kid[i], "vault: match \"%s\" must be "
			    "an object { ... }, not %s", m->kid[i]->name,
			    cnode_type_name(m->kid[i]->type));
			continue;
		}
		blk = cnode_new(CN_GROUP, NULL, m->kid[i]->file,
		    m->kid[i]->line);
		re = cnode_new(CN_STR, "workers_prefix", m->kid[i]->file,
		    m->kid[i]->line);
		re->str = xstrdup(m->kid[i]->name);
		cnode_add(blk, re);
		xasprintf(&in, "match \"%s\": ", m->kid[i]->name);
		map_keys(ld, m->kid[i], blk, in);
		free(in);
		cnode_add(list, blk);
	}
	return list;
}

/*
 * The vault file PATH (named at FROM:FROM_LINE) as configuration layers:
 * a group { defaults = { ... }; match = ( { workers_prefix = ...; ... } ) }
 * of qscale's keys, or NULL with the errors said.
 */
struct cnode *
vault_read(struct conf_ld *ld, const char *path, const char *from,
    int from_line)
{
	struct ld_file	*lf;
	struct cnode	*tree, *aws, *out, *defs, *m;
	const char	*why;
	char		*text;
	size_t		 len, i;
	mode_t		 mode;

	for (i = 0; i < ld->nskip; i++)
		if (strcmp(ld->skip[i], path) == 0)
			return NULL;	/* left out: ignore_include_errors */
	if ((text = read_text(path, &len, &mode, &why)) == NULL) {
		ld->blame = path;
		ld_err(ld, from, from_line, "vault_file: cannot read %s: %s",
		    path, why);
		ld->blame = NULL;
		return NULL;
	}
	lf = ld_file_of(ld, path);
	lf->mode = mode;
	tree = vault_parse(ld, lf->path, text);
	explicit_bzero(text, len);	/* it may hold secrets */
	free(text);
	if (tree == NULL)
		return NULL;
	aws = (struct cnode *)cnode_lookup(tree, "auto_scaler.v1.aws");
	if (aws == NULL || aws->type != CN_GROUP) {
		ld_err(ld, lf->path, aws ? aws->line : 0, "vault: no "
		    "auto_scaler.v1.aws { ... } object: that is where the "
		    "AWS Autoscaler's vault settings go");
		cnode_free(tree);
		return NULL;
	}
	out = cnode_new(CN_GROUP, NULL, lf->path, aws->line);
	defs = cnode_new(CN_GROUP, "defaults", lf->path, aws->line);
	map_keys(ld, aws, defs, NULL);
	cnode_add(out, defs);
	if ((m = vp_member_of(aws, "match")) != NULL)
		cnode_add(out, map_match(ld, m));
	/* keys moved out left NULL holes: close them before freeing */
	for (i = 0, len = 0; i < aws->nkid; i++)
		if (aws->kid[i] != NULL)
			aws->kid[len++] = aws->kid[i];
	aws->nkid = len;
	cnode_free(tree);
	return out;
}
