/*
 * conf_src.c: reads a configuration file into a tree of nodes that know
 * their file and line, and collects the loader's errors.
 *
 * libconfig form: the @include lines are expanded here rather than by
 * libconfig, so that an include is found relative to the file that names
 * it (libconfig 1.5 only knows one include directory), so that every
 * file read is known for the secrecy check, and so that cycles are
 * caught.  The expanded text keeps a map from its lines back to each
 * file's own lines; libconfig parses the text and every setting's line
 * goes through the map.
 *
 * JSON form: cJSON parses it; a small scanner over the same text notes
 * the line of each value in document order, which is the order cJSON
 * keeps, so the two can be walked together.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libconfig.h>

#include "conf_int.h"

/* Errors: "FILE:LINE: message", or "FILE: message" without a line. */

static void
ld_verr(struct conf_ld *ld, const char *file, int line, const char *fmt,
    va_list ap)
{
	struct ld_err	*e;
	char		*text, *msg;
	size_t		 i, rank = 0;

	if (vasprintf(&text, fmt, ap) < 0)
		fatal("vasprintf");
	if (file == NULL)
		file = ld->path;
	if (line > 0)
		xasprintf(&msg, "%s:%d: %s", file, line, text);
	else
		xasprintf(&msg, "%s: %s", file, text);
	free(text);
	for (i = 0; i < ld->nerrs; i++) {
		if (strcmp(ld->errs[i].msg, msg) == 0) {
			/* a defaults block seen once per resource */
			free(msg);
			return;
		}
	}
	for (i = 0; i < ld->nfiles; i++)
		if (strcmp(ld->files[i].path, file) == 0)
			rank = i;
	ld->errs = xreallocarray(ld->errs, ld->nerrs + 1, sizeof(*ld->errs));
	e = &ld->errs[ld->nerrs++];
	e->rank = rank;
	e->line = line;
	e->msg = msg;
	e->blame = xstrdup(ld->blame != NULL ? ld->blame : file);
}

void
ld_err(struct conf_ld *ld, const char *file, int line, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	ld_verr(ld, file, line, fmt, ap);
	va_end(ap);
}

void
ld_err_at(struct conf_ld *ld, const struct cnode *n, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	ld_verr(ld, n != NULL ? n->file : NULL, n != NULL ? n->line : 0, fmt,
	    ap);
	va_end(ap);
}

/* The entry of a file read, added on first sight. */
struct ld_file *
ld_file_of(struct conf_ld *ld, const char *path)
{
	size_t	 i;

	for (i = 0; i < ld->nfiles; i++)
		if (strcmp(ld->files[i].path, path) == 0)
			return &ld->files[i];
	ld->files = xreallocarray(ld->files, ld->nfiles + 1,
	    sizeof(*ld->files));
	memset(&ld->files[ld->nfiles], 0, sizeof(*ld->files));
	ld->files[ld->nfiles].path = xstrdup(path);
	return &ld->files[ld->nfiles++];
}

/* Why a file that is not a regular one cannot be a configuration. */
static const char *
file_kind_why(mode_t mode)
{
	if (S_ISDIR(mode))
		return "is a directory";
	if (S_ISFIFO(mode))
		return "is a FIFO (named pipe), not a regular file";
	if (S_ISSOCK(mode))
		return "is a socket, not a regular file";
	if (S_ISCHR(mode) || S_ISBLK(mode))
		return "is a device, not a regular file";
	return "not a regular file";
}

/*
 * The whole file, NUL-terminated, or NULL with *why set.  Also gives its
 * mode, read from the open descriptor so it is the file that was read.
 */
char *
read_text(const char *path, size_t *lenp, mode_t *modep, const char **why)
{
	struct stat	 st;
	char		*buf;
	size_t		 len = 0;
	ssize_t		 n;
	int		 fd;

	*why = NULL;
	/*
	 * O_NONBLOCK: opening a FIFO for reading would wait for a writer,
	 * and the supervisor with it (a reload, then even SIGTERM).  What
	 * is not a regular file is refused before anything is read.
	 */
	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) == -1) {
		*why = strerror(errno);
		return NULL;
	}
	if (fstat(fd, &st) == -1) {
		*why = strerror(errno);
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > CONF_MAX_FILE_SIZE) {
		*why = S_ISREG(st.st_mode) ? "larger than 4 MiB" :
		    file_kind_why(st.st_mode);
		close(fd);
		return NULL;
	}
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	buf = xmalloc((size_t)st.st_size + 2);
	while (len < (size_t)st.st_size + 1 &&
	    (n = read(fd, buf + len, (size_t)st.st_size + 1 - len)) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			*why = strerror(errno);
			close(fd);
			free(buf);
			return NULL;
		}
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	if (memchr(buf, '\0', len) != NULL) {
		*why = "contains a NUL byte (not a text file)";
		free(buf);
		return NULL;
	}
	*lenp = len;
	*modep = st.st_mode;
	return buf;
}

/* libconfig text with its includes expanded, and where each line was. */
struct expand {
	char		*text;
	size_t		 len, cap;
	const char	**file;		/* per line of text */
	int		*line;
	size_t		 nlines, linecap;
	const char	*stack[CONF_MAX_INCLUDE_DEPTH + 1];
	int		 depth;
};

enum lex_state { LX_CODE, LX_STRING, LX_BLOCK };

static void
expand_line(struct expand *x, const char *s, size_t n, const char *file,
    int line)
{
	if (x->len + n + 2 > x->cap)
		x->text = xrealloc_grow(x->text, &x->cap, x->len + n + 2);
	memcpy(x->text + x->len, s, n);
	x->len += n;
	x->text[x->len++] = '\n';
	x->text[x->len] = '\0';
	if (x->nlines + 1 > x->linecap) {
		x->linecap = x->linecap ? x->linecap * 2 : 256;
		x->file = xreallocarray(x->file, x->linecap, sizeof(*x->file));
		x->line = xreallocarray(x->line, x->linecap, sizeof(*x->line));
	}
	x->file[x->nlines] = file;
	x->line[x->nlines++] = line;
}

/*
 * libconfig 1.5 silently wraps an integer beyond 32 bits (99999999999
 * reads as 1215752191), so such a literal is refused here, where the
 * text is still at hand.  "NNNL" is its way to ask for 64 bits.
 */
static size_t
lex_number(struct conf_ld *ld, const char *s, size_t i, size_t n,
    const char *file, int line)
{
	size_t		 j = i;
	int		 hex = 0, neg = i > 0 && s[i - 1] == '-';
	unsigned long long v = 0;
	int		 big = 0;

	if (s[j] == '0' && j + 1 < n && (s[j + 1] == 'x' || s[j + 1] == 'X')) {
		hex = 1;
		j += 2;
	}
	for (; j < n && (hex ? isxdigit((unsigned char)s[j]) :
	    isdigit((unsigned char)s[j])); j++) {
		if (v > (ULLONG_MAX - 16) / 16)
			big = 1;
		else
			v = v * (hex ? 16 : 10) + (unsigned)(isdigit(
			    (unsigned char)s[j]) ? s[j] - '0' :
			    tolower((unsigned char)s[j]) - 'a' + 10);
	}
	if (!hex && j < n && (s[j] == '.' || s[j] == 'e' || s[j] == 'E')) {
		while (j < n && (isalnum((unsigned char)s[j]) || s[j] == '.' ||
		    ((s[j] == '-' || s[j] == '+') &&
		    (s[j - 1] == 'e' || s[j - 1] == 'E'))))
			j++;
		return j;
	}
	if (j < n && s[j] == 'L')
		return j + 1;
	if (big || v > (neg && !hex ? 2147483648ULL : 2147483647ULL))
		ld_err(ld, file, line, "integer %.*s is too large (the "
		    "largest is 2147483647)", (int)(j - i), s + i);
	return j;
}

/* Whether s[i] is inside a setting name such as "build-2024". */
static int
in_name(const char *s, size_t i)
{
	size_t	 j = i;

	while (j > 0 && (isalnum((unsigned char)s[j - 1]) ||
	    strchr("-_*", s[j - 1]) != NULL))
		j--;
	return j < i && (isalpha((unsigned char)s[j]) || s[j] == '*');
}

/* Follows strings and comments over one line; checks integers. */
static void
lex_line(struct conf_ld *ld, const char *s, size_t n, enum lex_state *st,
    const char *file, int line)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		switch (*st) {
		case LX_STRING:
			if (s[i] == '\\')
				i++;
			else if (s[i] == '"')
				*st = LX_CODE;
			break;
		case LX_BLOCK:
			if (s[i] == '*' && i + 1 < n && s[i + 1] == '/') {
				*st = LX_CODE;
				i++;
			}
			break;
		case LX_CODE:
			if (s[i] == '"')
				*st = LX_STRING;
			else if (s[i] == '#' || (s[i] == '/' && i + 1 < n &&
			    s[i + 1] == '/'))
				return;
			else if (s[i] == '/' && i + 1 < n && s[i + 1] == '*') {
				*st = LX_BLOCK;
				i++;
			} else if (isdigit((unsigned char)s[i]) &&
			    !in_name(s, i) && (i == 0 || s[i - 1] != '.'))
				i = lex_number(ld, s, i, n, file, line) - 1;
			break;
		}
	}
}

/*
 * An "@include" line: returns the file it names (new string), or NULL
 * when the line is not one.  On a malformed one, *bad is set.
 */
static char *
include_name(const char *s, size_t n, int *bad)
{
	size_t	 i = 0, j;
	char	*name;
	size_t	 k = 0;

	*bad = 0;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (n - i < 8 || strncmp(s + i, "@include", 8) != 0)
		return NULL;
	for (i += 8, j = i; j < n && (s[j] == ' ' || s[j] == '\t'); j++)
		;
	if (j == i || j >= n || s[j] != '"') {
		*bad = 1;
		return NULL;
	}
	name = xmalloc(n);
	for (j++; j < n && s[j] != '"'; j++) {
		if (s[j] == '\\' && j + 1 < n)
			j++;
		name[k++] = s[j];
	}
	name[k] = '\0';
	if (j >= n || k == 0) {
		*bad = 1;
		free(name);
		return NULL;
	}
	for (j++; j < n && (s[j] == ' ' || s[j] == '\t' || s[j] == '\r'); j++)
		;
	if (j < n && s[j] != '#' && !(s[j] == '/' && j + 1 < n &&
	    s[j + 1] == '/')) {
		*bad = 1;
		free(name);
		return NULL;
	}
	return name;
}

/* An included file's path: relative names are beside the includer. */
char *
include_path(const char *from, const char *name)
{
	const char	*slash;
	char		*p;

	if (name[0] == '/' || (slash = strrchr(from, '/')) == NULL)
		return xstrdup(name);
	xasprintf(&p, "%.*s/%s", (int)(slash - from), from, name);
	return p;
}

static int	expand_file(struct conf_ld *, struct expand *, const char *,
		    const char *, int);

static int
expand_include(struct conf_ld *ld, struct expand *x, const char *file,
    int line, const char *name)
{
	char	*path = include_path(file, name);
	int	 i, rc;

	for (i = 0; i < x->depth; i++) {
		if (strcmp(x->stack[i], path) == 0) {
			ld_err(ld, file, line, "@include \"%s\": includes "
			    "itself (through %s)", name,
			    x->stack[x->depth - 1]);
			free(path);
			return -1;
		}
	}
	if (x->depth >= CONF_MAX_INCLUDE_DEPTH) {
		ld_err(ld, file, line, "@include \"%s\": includes nested "
		    "deeper than %d", name, CONF_MAX_INCLUDE_DEPTH);
		free(path);
		return -1;
	}
	for (i = 0; i < (int)ld->nskip; i++) {
		if (strcmp(ld->skip[i], path) == 0) {
			free(path);	/* left out: ignore_include_errors */
			return 0;
		}
	}
	rc = expand_file(ld, x, path, file, line);
	free(path);
	return rc;
}

static int
expand_file(struct conf_ld *ld, struct expand *x, const char *path,
    const char *from, int from_line)
{
	struct ld_file	*lf;
	enum lex_state	 st = LX_CODE, was;
	const char	*why, *p, *eol, *fname;
	char		*text, *name;
	size_t		 len;
	mode_t		 mode;
	int		 line = 0, bad, rc = 0, opened = 0;

	if ((text = read_text(path, &len, &mode, &why)) == NULL) {
		if (from != NULL) {
			ld->blame = path;	/* leaving it out mends it */
			ld_err(ld, from, from_line, "@include: cannot read %s: "
			    "%s", path, why);
			ld->blame = NULL;
		} else
			ld_err(ld, path, 0, "cannot read the configuration: "
			    "%s", why);
		return -1;
	}
	lf = ld_file_of(ld, path);
	lf->mode = mode;
	fname = lf->path;
	x->stack[x->depth++] = fname;
	for (p = text; *p != '\0' && rc == 0; p = *eol ? eol + 1 : eol) {
		eol = strchr(p, '\n');
		if (eol == NULL)
			eol = p + strlen(p);
		line++;
		name = NULL;
		bad = 0;
		if (st == LX_CODE)
			name = include_name(p, (size_t)(eol - p), &bad);
		if (name != NULL) {
			rc = expand_include(ld, x, fname, line, name);
			free(name);
			continue;
		}
		if (st == LX_CODE && bad) {
			ld_err(ld, fname, line, "malformed @include: write "
			    "@include \"file\" alone on its line");
			rc = -1;
			break;
		}
		was = st;
		lex_line(ld, p, (size_t)(eol - p), &st, fname, line);
		if (st != LX_CODE && st != was)
			opened = line;
		expand_line(x, p, (size_t)(eol - p), fname, line);
	}
	/* libconfig 1.5 takes a string left open at the end as closed */
	if (rc == 0 && st != LX_CODE) {
		ld_err(ld, fname, opened, "unterminated %s (it starts on this "
		    "line)", st == LX_STRING ? "string" : "comment");
		rc = -1;
	}
	x->depth--;
	free(text);
	return rc;
}

/* Nodes. */

struct cnode *
cnode_new(enum cn_type type, const char *name, const char *file, int line)
{
	struct cnode	*n = xcalloc(1, sizeof(*n));

	n->type = type;
	n->name = name != NULL ? xstrdup(name) : NULL;
	n->file = file;
	n->line = line;
	return n;
}

void
cnode_add(struct cnode *parent, struct cnode *kid)
{
	parent->kid = xreallocarray(parent->kid, parent->nkid + 1,
	    sizeof(*parent->kid));
	parent->kid[parent->nkid++] = kid;
}

void
cnode_free(struct cnode *n)
{
	size_t	 i;

	if (n == NULL)
		return;
	for (i = 0; i < n->nkid; i++)
		cnode_free(n->kid[i]);
	free(n->kid);
	free(n->name);
	freezero_str(n->str);
	free(n);
}

const struct cnode *
cnode_member(const struct cnode *g, const char *name)
{
	size_t	 i;

	if (g == NULL || g->type != CN_GROUP)
		return NULL;
	for (i = 0; i < g->nkid; i++)
		if (g->kid[i]->name != NULL &&
		    strcmp(g->kid[i]->name, name) == 0)
			return g->kid[i];
	return NULL;
}

/* "clearml.api_server" inside a group. */
const struct cnode *
cnode_lookup(const struct cnode *g, const char *path)
{
	const char	*dot;
	char		 part[128];

	while (g != NULL && (dot = strchr(path, '.')) != NULL) {
		if ((size_t)(dot - path) >= sizeof(part))
			return NULL;
		memcpy(part, path, (size_t)(dot - path));
		part[dot - path] = '\0';
		g = cnode_member(g, part);
		path = dot + 1;
	}
	return cnode_member(g, path);
}

const char *
cnode_type_name(enum cn_type t)
{
	switch (t) {
	case CN_GROUP:
		return "a group";
	case CN_LIST:
		return "a list";
	case CN_STR:
		return "a string";
	case CN_INT:
		return "an integer";
	case CN_FLOAT:
		return "a number with a fraction";
	case CN_BOOL:
		return "a boolean";
	case CN_NULL:
		return "null";
	}
	return "?";
}

/* Groups become objects, lists arrays; libconfig or JSON alike. */
cJSON *
cnode_to_json(const struct cnode *n)
{
	cJSON	*j;
	size_t	 i;

	switch (n->type) {
	case CN_GROUP:
		j = cJSON_CreateObject();
		for (i = 0; i < n->nkid; i++)
			cJSON_AddItemToObject(j, n->kid[i]->name,
			    cnode_to_json(n->kid[i]));
		return j;
	case CN_LIST:
		j = cJSON_CreateArray();
		for (i = 0; i < n->nkid; i++)
			cJSON_AddItemToArray(j, cnode_to_json(n->kid[i]));
		return j;
	case CN_STR:
		return cJSON_CreateString(n->str);
	case CN_INT:
		return cJSON_CreateNumber((double)n->ival);
	case CN_FLOAT:
		return cJSON_CreateNumber(n->fval);
	case CN_BOOL:
		return cJSON_CreateBool(n->ival != 0);
	case CN_NULL:
		break;
	}
	return cJSON_CreateNull();
}

/* libconfig's settings, their lines mapped back to their files. */
static struct cnode *
cnode_from_setting(const config_setting_t *s, const struct expand *x)
{
	struct cnode	*n;
	enum cn_type	 t;
	unsigned int	 l = config_setting_source_line(s);
	int		 i, len;

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_GROUP:
		t = CN_GROUP;
		break;
	case CONFIG_TYPE_LIST:
	case CONFIG_TYPE_ARRAY:
		t = CN_LIST;
		break;
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		t = CN_INT;
		break;
	case CONFIG_TYPE_FLOAT:
		t = CN_FLOAT;
		break;
	case CONFIG_TYPE_BOOL:
		t = CN_BOOL;
		break;
	default:
		t = CN_STR;
		break;
	}
	if (l == 0 || l > x->nlines)
		n = cnode_new(t, config_setting_name(s), x->nlines ?
		    x->file[0] : NULL, 1);
	else
		n = cnode_new(t, config_setting_name(s), x->file[l - 1],
		    x->line[l - 1]);
	if (t == CN_STR)
		n->str = xstrdup(config_setting_get_string(s) ?
		    config_setting_get_string(s) : "");
	else if (t == CN_INT)
		n->ival = config_setting_get_int64(s);
	else if (t == CN_FLOAT)
		n->fval = config_setting_get_float(s);
	else if (t == CN_BOOL)
		n->ival = config_setting_get_bool(s);
	len = config_setting_is_aggregate(s) ? config_setting_length(s) : 0;
	for (i = 0; i < len; i++)
		cnode_add(n, cnode_from_setting(config_setting_get_elem(s,
		    (unsigned int)i), x));
	return n;
}

static struct cnode *
read_libconfig(struct conf_ld *ld, const char *path)
{
	struct expand	 x;
	struct cnode	*root = NULL;
	config_t	 cf;
	size_t		 nerrs = ld->nerrs;
	int		 l;

	memset(&x, 0, sizeof(x));
	if (expand_file(ld, &x, path, NULL, 0) == -1 || ld->nerrs > nerrs)
		goto done;
	config_init(&cf);
	if (config_read_string(&cf, x.text != NULL ? x.text : "") ==
	    CONFIG_FALSE) {
		l = config_error_line(&cf);
		if (l >= 1 && (size_t)l <= x.nlines)
			ld_err(ld, x.file[l - 1], x.line[l - 1], "%s",
			    config_error_text(&cf));
		else
			ld_err(ld, path, x.nlines > 0 ? x.line[x.nlines - 1] :
			    1, "%s (at the end of the file)",
			    config_error_text(&cf));
	} else
		root = cnode_from_setting(config_root_setting(&cf), &x);
	config_destroy(&cf);
done:
	if (x.text != NULL)
		explicit_bzero(x.text, x.len);
	free(x.text);
	free(x.file);
	free(x.line);
	return root;
}

/* JSON. */

int
json_error_line(const char *text, const char *at)
{
	int	 line = 1;

	if (at == NULL || at < text)
		return 1;
	for (; text < at && *text != '\0'; text++)
		if (*text == '\n')
			line++;
	return line;
}

struct jlines {
	int		*v;
	size_t		 n, cap, pos;
};

static void
jlines_push(struct jlines *jl, int line)
{
	if (jl->n == jl->cap) {
		jl->cap = jl->cap ? jl->cap * 2 : 64;
		jl->v = xreallocarray(jl->v, jl->cap, sizeof(*jl->v));
	}
	jl->v[jl->n++] = line;
}

static const char *
json_skip_string(const char *p, int *line)
{
	for (p++; *p != '\0' && *p != '"'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '\n')
			(*line)++;
	}
	return *p == '"' ? p + 1 : p;
}

/*
 * The line of every value in document order: a member's is the line of
 * its key.  Runs over text cJSON accepted, so it can be simple.
 */
static void
json_scan_lines(const char *p, struct jlines *jl)
{
	char	*stack = NULL;		/* 'o'/'O' object (O: want key), 'a' */
	size_t	 depth = 0, cap = 0;
	int	 line = 1, key_line = 0, in_obj;

	while (*p != '\0') {
		if (*p == '\n') {
			line++;
			p++;
			continue;
		}
		if (isspace((unsigned char)*p) || *p == ':') {
			p++;
			continue;
		}
		if (*p == ',') {
			if (depth > 0 && stack[depth - 1] == 'o')
				stack[depth - 1] = 'O';
			p++;
			continue;
		}
		if (*p == '}' || *p == ']') {
			if (depth > 0)
				depth--;
			p++;
			continue;
		}
		in_obj = depth > 0 && stack[depth - 1] != 'a';
		if (in_obj && stack[depth - 1] == 'O' && *p == '"') {
			key_line = line;
			stack[depth - 1] = 'o';
			p = json_skip_string(p, &line);
			continue;
		}
		jlines_push(jl, in_obj ? key_line : line);
		if (*p == '{' || *p == '[') {
			if (depth + 1 > cap)
				stack = xrealloc_grow(stack, &cap, depth + 1);
			stack[depth++] = *p == '{' ? 'O' : 'a';
			p++;
		} else if (*p == '"')
			p = json_skip_string(p, &line);
		else
			while (*p != '\0' && strchr(",]}: \t\r\n", *p) == NULL)
				p++;
	}
	free(stack);
}

static struct cnode *
cnode_from_json(const cJSON *j, const char *file, struct jlines *jl)
{
	struct cnode	*n;
	const cJSON	*k;
	enum cn_type	 t;
	int		 line = jl->pos < jl->n ? jl->v[jl->pos++] : 1;
	double		 d;

	if (cJSON_IsObject(j))
		t = CN_GROUP;
	else if (cJSON_IsArray(j))
		t = CN_LIST;
	else if (cJSON_IsString(j))
		t = CN_STR;
	else if (cJSON_IsBool(j))
		t = CN_BOOL;
	else if (cJSON_IsNumber(j)) {
		d = j->valuedouble;
		/* integral and exact in a double: an integer */
		t = isfinite(d) && d == floor(d) &&
		    fabs(d) < 9007199254740992.0 ? CN_INT : CN_FLOAT;
	} else
		t = CN_NULL;
	n = cnode_new(t, j->string, file, line);
	if (t == CN_STR)
		n->str = xstrdup(j->valuestring);
	else if (t == CN_BOOL)
		n->ival = cJSON_IsTrue(j);
	else if (t == CN_INT)
		n->ival = (int64_t)j->valuedouble;
	else if (t == CN_FLOAT)
		n->fval = j->valuedouble;
	cJSON_ArrayForEach(k, j)
		cnode_add(n, cnode_from_json(k, file, jl));
	return n;
}

static struct cnode *
read_json(struct conf_ld *ld, const char *path)
{
	struct ld_file	*lf;
	struct jlines	 jl;
	struct cnode	*root = NULL;
	cJSON		*j;
	const char	*why, *at, *body, *nl;
	char		*text;
	size_t		 len;
	mode_t		 mode;

	if ((text = read_text(path, &len, &mode, &why)) == NULL) {
		ld_err(ld, path, 0, "cannot read the configuration: %s", why);
		return NULL;
	}
	lf = ld_file_of(ld, path);
	lf->mode = mode;
	body = strncmp(text, "\xef\xbb\xbf", 3) == 0 ? text + 3 : text;
	if ((j = cJSON_ParseWithOpts(body, NULL, 1)) == NULL) {
		at = cJSON_GetErrorPtr();
		for (nl = at; nl != NULL && nl > body && nl[-1] != '\n'; nl--)
			;
		ld_err(ld, lf->path, json_error_line(body, at), "JSON syntax "
		    "error (column %d)", at != NULL && nl != NULL ?
		    (int)(at - nl) + 1 : 1);
	} else if (!cJSON_IsObject(j))
		ld_err(ld, lf->path, 1, "a JSON configuration is one object "
		    "{ ... }");
	else {
		memset(&jl, 0, sizeof(jl));
		json_scan_lines(body, &jl);
		root = cnode_from_json(j, lf->path, &jl);
		free(jl.v);
	}
	cJSON_Delete(j);
	explicit_bzero(text, len);
	free(text);
	return root;
}

/* The file as a tree, or NULL with the errors in ld. */
struct cnode *
src_read(struct conf_ld *ld, const char *path)
{
	size_t	 n = strlen(path);

	if (n > 5 && strcmp(path + n - 5, ".json") == 0)
		return read_json(ld, path);
	return read_libconfig(ld, path);
}
