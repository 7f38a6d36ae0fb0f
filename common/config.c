/*
 * config.c: conf_load() and what goes with it.  The file's tree (from
 * conf_src.c) is checked for unknown and misplaced keys, then every key
 * of conf_keys.c's tables gets its value from the layers, lowest first:
 *
 *	built-in default < environment (only if no layer in the file sets
 *	the key) < defaults = { } < each matching match = ( { } ) block, in
 *	file order < the top level (or the resource block itself)
 *
 * A match block applies when its workers_prefix, a POSIX extended
 * regex, matches this configuration's workers_prefix.  Every value
 * remembers where it came from (conf_origin()).  Checks across keys
 * (names, queues, credentials in pairs) and the secrecy of the files
 * come last; every error is collected, none stops the others.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_int.h"

/* One source of values: a "defaults" group, a match block, the top. */
struct layer {
	const struct cnode	*g;	/* its keys */
	const struct cnode	*res;	/* its resource = { } group */
	char			*name;	/* "defaults", "match \"RE\"", NULL */
	int			 applies;
	struct cnode		*own;	/* the vault file's tree, freed with it */
};

/* Where the names of one group are checked against a table. */
struct scope {
	const struct conf_key	*tab;
	size_t			 ntab;
	const char		*in;		/* " in defaults" */
	const char *const	*extra;		/* also allowed at its top */
	const char *const	*refused;	/* known, but not here */
	int			 layer;		/* CK_TOPONLY keys refused */
};

static const char *const top_extra[] = { "resources", "defaults", "match",
    NULL };
static const char *const defaults_extra[] = { "resource", NULL };
static const char *const match_extra[] = { "workers_prefix", "resource",
    NULL };


void
conf_origin_set(struct qscale_conf *conf, const char *key,
    const char *origin, int append)
{
	struct conf_origin	*o;
	char			*joined;
	ssize_t			 i;

	if ((i = str_index_find(&conf->origin_index, key)) != -1) {
		o = &conf->origins[i];
		if (append && strcmp(o->origin, "default") != 0) {
			xasprintf(&joined, "%s, %s", o->origin, origin);
			free(o->origin);
			o->origin = joined;
		} else {
			free(o->origin);
			o->origin = xstrdup(origin);
		}
		return;
	}
	if (conf->norigins == conf->origins_cap) {
		conf->origins_cap = conf->origins_cap > 0 ?
		    2 * conf->origins_cap : 64;
		conf->origins = xreallocarray(conf->origins,
		    conf->origins_cap, sizeof(*conf->origins));
	}
	o = &conf->origins[conf->norigins];
	o->key = xstrdup(key);
	o->origin = xstrdup(origin);
	str_index_add(&conf->origin_index, o->key, conf->norigins++);
}

const char *
conf_origin(const struct qscale_conf *conf, const char *key)
{
	ssize_t	 i = str_index_find(&conf->origin_index, key);

	return i == -1 ? NULL : conf->origins[i].origin;
}

static void
where_set(struct conf_ld *ld, const char *key, const struct cnode *n,
    int failed)
{
	struct ld_where	*w;
	ssize_t		 i;

	if ((i = str_index_find(&ld->where_index, key)) != -1)
		w = &ld->wheres[i];
	else {
		if (ld->nwheres == ld->wheres_cap) {
			ld->wheres_cap = ld->wheres_cap > 0 ?
			    2 * ld->wheres_cap : 64;
			ld->wheres = xreallocarray(ld->wheres,
			    ld->wheres_cap, sizeof(*ld->wheres));
		}
		w = &ld->wheres[ld->nwheres];
		w->key = xstrdup(key);
		w->node = NULL;
		w->failed = 0;
		str_index_add(&ld->where_index, w->key, ld->nwheres++);
	}
	if (failed)
		w->failed = 1;
	else
		w->node = n;
}

/* A key whose value was refused: no "is required" on top of that. */
static int
where_failed(struct conf_ld *ld, const char *key)
{
	ssize_t	 i = str_index_find(&ld->where_index, key);

	return i == -1 ? 0 : ld->wheres[i].failed;
}

static const struct cnode *
where_of(struct conf_ld *ld, const char *key)
{
	ssize_t	 i = str_index_find(&ld->where_index, key);

	return i == -1 ? NULL : ld->wheres[i].node;
}

static void
where_clear(struct conf_ld *ld)
{
	size_t	 i;

	for (i = 0; i < ld->nwheres; i++)
		free(ld->wheres[i].key);
	free(ld->wheres);
	str_index_clear(&ld->where_index);
	ld->wheres = NULL;
	ld->nwheres = 0;
	ld->wheres_cap = 0;
}

static int
where_failed_in(struct conf_ld *ld, const char *pfx,
    const char *path)
{
	char	*key;
	int	 rc;

	xasprintf(&key, "%s%s", pfx, path);
	rc = where_failed(ld, key);
	free(key);
	return rc;
}

static int
in_list(const char *const *list, const char *s)
{
	for (; list != NULL && *list != NULL; list++)
		if (strcmp(*list, s) == 0)
			return 1;
	return 0;
}

static void
unknown_key(struct conf_ld *ld, const struct cnode *kid, const char *prefix,
    const struct scope *sc)
{
	char		 buf[160];
	const char	*s;

	s = ck_suggest(sc->tab, sc->ntab, prefix, kid->name, *prefix ? NULL :
	    sc->extra, buf, sizeof(buf));
	if (s != NULL)
		ld_err_at(ld, kid, "unknown key '%s%s%s'%s (did you mean "
		    "'%s'?)", prefix, *prefix ? "." : "", kid->name, sc->in, s);
	else
		ld_err_at(ld, kid, "unknown key '%s%s%s'%s", prefix,
		    *prefix ? "." : "", kid->name, sc->in);
}

/* Unknown, duplicate and misplaced names, group by group. */
static void
check_members(struct conf_ld *ld, const struct cnode *g, const char *prefix,
    const struct scope *sc)
{
	const struct conf_key	*k;
	const struct cnode	*kid;
	const char		*alias;
	char			*path;
	size_t			 i, j;

	for (i = 0; i < g->nkid; i++) {
		kid = g->kid[i];
		for (j = 0; j < i; j++)
			if (strcmp(g->kid[j]->name, kid->name) == 0)
				break;
		if (j < i) {
			ld_err_at(ld, kid, "duplicate key '%s%s%s' (first at "
			    "line %d)", prefix, *prefix ? "." : "", kid->name,
			    g->kid[j]->line);
			continue;
		}
		if (strchr(kid->name, '.') != NULL) {
			/* a JSON name; lookups split paths at dots */
			ld_err_at(ld, kid, "bad key '%s'%s: write nested keys "
			    "as groups, as in clearml = { api_server = ...; }",
			    kid->name, sc->in);
			continue;
		}
		xasprintf(&path, "%s%s%s", prefix, *prefix ? "." : "",
		    kid->name);
		alias = sc->tab == conf_global_keys ? ck_alias_of(path) : NULL;
		k = ck_find(sc->tab, sc->ntab, alias ? alias : path);
		if (*prefix == '\0' && in_list(sc->extra, kid->name))
			;
		else if (*prefix == '\0' && in_list(sc->refused, kid->name))
			ld_err_at(ld, kid, "'%s' cannot be set%s", path,
			    sc->in);
		else if (k != NULL) {
			if (sc->layer && (k->flags & CK_TOPONLY))
				ld_err_at(ld, kid, "'%s' cannot be set%s, only "
				    "%s", path, sc->in, sc->tab ==
				    conf_global_keys ? "at the top level" :
				    "in each resource");
		} else if (ck_is_prefix(sc->tab, sc->ntab, path)) {
			if (kid->type == CN_GROUP)
				check_members(ld, kid, path, sc);
			else if (kid->type != CN_NULL)
				ld_err_at(ld, kid, "'%s' must be a group "
				    "{ ... }, not %s", path,
				    cnode_type_name(kid->type));
		} else
			unknown_key(ld, kid, prefix, sc);
		free(path);
	}
}

/* The nodes one layer gives a key (its aliases too), in line order. */
static size_t
layer_nodes(const struct cnode *g, const struct conf_key *k,
    const struct cnode **out, size_t max)
{
	const struct cnode	*t;
	size_t			 n = 0, i;

	if (g == NULL)
		return 0;
	if ((out[0] = cnode_lookup(g, k->path)) != NULL)
		n++;
	for (i = 0; i < conf_naliases && n < max; i++)
		if (strcmp(conf_aliases[i].to, k->path) == 0 &&
		    (out[n] = cnode_lookup(g, conf_aliases[i].path)) != NULL)
			n++;
	for (i = 1; i < n; i++) {
		if (out[i]->line < out[i - 1]->line) {
			t = out[i];
			out[i] = out[i - 1];
			out[i - 1] = t;
		}
	}
	return n;
}

static void
apply_node(struct conf_ld *ld, const struct conf_key *k,
    const struct cnode *n, void *base, const struct layer *L,
    const char *show, const char *keypfx)
{
	struct ck_where	 w;
	char		*origin = NULL, *key;
	int		 rc;

	if (L->applies) {
		if (L->name != NULL)
			xasprintf(&origin, "%s %s:%d", L->name, n->file,
			    n->line);
		else
			xasprintf(&origin, "%s:%d", n->file, n->line);
	}
	w.show = show;
	w.keypfx = keypfx;
	w.origin = origin;
	rc = ck_apply(ld, k, n, base, &w);
	if (origin != NULL || rc == -1) {
		xasprintf(&key, "%s%s", keypfx, k->path);
		where_set(ld, key, n, rc == -1);
		free(key);
	}
	free(origin);
}

/* The built-in default: applied as if written, recorded as "default". */
static void
apply_default(struct conf_ld *ld, const struct conf_key *k, void *base,
    const char *keypfx)
{
	struct ck_where	 w = { "", keypfx, "default" };
	struct cnode	*n;
	char		*key;

	if (k->def == NULL) {
		if (k->type == CK_DUR)	/* unset */
			*(int64_t *)ck_field(k, base) = -1;
		xasprintf(&key, "%s%s", keypfx, k->path);
		conf_origin_set(ld->conf, key, "default", 0);
		free(key);
		return;
	}
	if (k->type == CK_BOOL) {
		n = cnode_new(CN_BOOL, NULL, NULL, 0);
		n->ival = strcmp(k->def, "true") == 0;
	} else if (k->type == CK_INT) {
		n = cnode_new(CN_INT, NULL, NULL, 0);
		n->ival = strtoll(k->def, NULL, 10);
	} else {
		n = cnode_new(CN_STR, NULL, NULL, 0);
		n->str = xstrdup(k->def);
	}
	if (ck_apply(ld, k, n, base, &w) == -1)
		fatalx("%s: bad built-in default %s", __func__, k->path);
	cnode_free(n);
}

static int
file_sets(const struct layer *L, size_t nl, const struct conf_key *k)
{
	const struct cnode	*n[4];
	size_t			 i;

	for (i = 0; i < nl; i++)
		if (L[i].applies && layer_nodes(L[i].g, k, n, 4) > 0)
			return 1;
	return 0;
}

static void
apply_env(struct conf_ld *ld, const struct conf_key *k, const char *var)
{
	const char	*v = getenv(var);
	struct cnode	*n;
	struct ck_where	 w;
	char		*show, *origin;

	if (v == NULL || *v == '\0')
		return;
	n = cnode_new(CN_STR, NULL, NULL, 0);
	n->str = xstrdup(v);
	xasprintf(&show, "environment %s: ", var);
	xasprintf(&origin, "environment %s", var);
	w.show = show;
	w.keypfx = "";
	w.origin = origin;
	if (ck_apply(ld, k, n, ld->conf, &w) == -1)
		where_set(ld, k->path, NULL, 1);
	free(show);
	free(origin);
	cnode_free(n);
}

/* AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY count only together. */
static void
apply_env_aws_keys(struct conf_ld *ld, const struct layer *L, size_t nl)
{
	const struct conf_key	*id, *secret, *token;
	const char		*a, *s;

	id = ck_find(conf_global_keys, conf_nglobal_keys, "aws.access_key_id");
	secret = ck_find(conf_global_keys, conf_nglobal_keys,
	    "aws.secret_access_key");
	token = ck_find(conf_global_keys, conf_nglobal_keys,
	    "aws.session_token");
	if (file_sets(L, nl, id) || file_sets(L, nl, secret))
		return;
	a = getenv("AWS_ACCESS_KEY_ID");
	s = getenv("AWS_SECRET_ACCESS_KEY");
	if (a == NULL || *a == '\0' || s == NULL || *s == '\0')
		return;
	apply_env(ld, id, "AWS_ACCESS_KEY_ID");
	apply_env(ld, secret, "AWS_SECRET_ACCESS_KEY");
	if (!file_sets(L, nl, token))
		apply_env(ld, token, "AWS_SESSION_TOKEN");
}

/*
 * The O-th layer to apply for key K.  Values replace each other lowest
 * first, so the top level wins.  Appended text (agent.init_script,
 * agent.extra_clearml_conf) is joined the other way round, as ClearML's
 * app appends its configuration vault after what its form holds: the
 * top level first, then defaults, then each matching block in file
 * order, so that the more specific text comes last and, in clearml.conf,
 * wins.
 */
static size_t
layer_order(const struct conf_key *k, size_t o, size_t nl)
{
	if (!(k->flags & CK_APPEND))
		return o;
	return o == 0 ? nl - 1 : o - 1;
}

static void
apply_globals(struct conf_ld *ld, const struct layer *L, size_t nl,
    struct qscale_conf *scratch)
{
	const struct conf_key	*k;
	const struct cnode	*n[4];
	size_t			 i, j, m, nn, o;

	for (i = 0; i < conf_nglobal_keys; i++) {
		k = &conf_global_keys[i];
		apply_default(ld, k, ld->conf, "");
		for (j = 0; j < QS_ARRAYLEN(k->env) && k->env[j] != NULL; j++) {
			if (file_sets(L, nl, k) || (getenv(k->env[j]) == NULL ||
			    *getenv(k->env[j]) == '\0'))
				continue;
			apply_env(ld, k, k->env[j]);
			break;
		}
		for (o = 0; o < nl; o++) {
			j = layer_order(k, o, nl);
			if ((k->flags & CK_TOPONLY) && L[j].name != NULL)
				continue;
			nn = layer_nodes(L[j].g, k, n, 4);
			for (m = 0; m < nn; m++)
				apply_node(ld, k, n[m], L[j].applies ?
				    (void *)ld->conf : (void *)scratch, &L[j],
				    "", "");
		}
	}
	apply_env_aws_keys(ld, L, nl);
}

static const char *
group_line_of(const struct cnode *root, const char *path, int *line)
{
	char			 grp[64];
	const char		*dot = strchr(path, '.');
	const struct cnode	*g = NULL;

	if (dot != NULL && (size_t)(dot - path) < sizeof(grp)) {
		memcpy(grp, path, (size_t)(dot - path));
		grp[dot - path] = '\0';
		g = cnode_member(root, grp);
	}
	*line = g != NULL ? g->line : 1;
	return g != NULL ? g->file : NULL;
}

static void
check_required(struct conf_ld *ld, const struct cnode *root)
{
	const struct conf_key	*k;
	const char		*file;
	size_t			 i;
	int			 line;

	for (i = 0; i < conf_nglobal_keys; i++) {
		k = &conf_global_keys[i];
		if (!(k->flags & CK_REQUIRED) || ck_is_set(k, ld->conf) ||
		    where_failed(ld, k->path))
			continue;
		file = group_line_of(root, k->path, &line);
		if (k->env[0] != NULL)
			ld_err(ld, file, line, "%s is required: set it here "
			    "or in the environment (%s)", k->path, k->env[0]);
		else
			ld_err(ld, file, line, "%s is required", k->path);
	}
}

/* Applies the layers' resource = { } groups and the block to one. */
static void
apply_resource(struct conf_ld *ld, const struct layer *L, size_t nl,
    const struct cnode *e, size_t idx, struct conf_resource *r)
{
	const struct cnode	*nm = cnode_member(e, "name"), *n;
	const struct conf_key	*k;
	struct scope		 sc;
	char			*show, *pfx, *in;
	size_t			 i, j;

	if (nm != NULL && nm->type == CN_STR && ck_name_ok(nm->str)) {
		xasprintf(&show, "resource \"%s\": ", nm->str);
		xasprintf(&pfx, "resources.%s.", nm->str);
		xasprintf(&in, " in resource \"%s\"", nm->str);
	} else {
		xasprintf(&show, "resource %zu: ", idx + 1);
		xasprintf(&pfx, "resources.%zu.", idx + 1);
		xasprintf(&in, " in resource %zu", idx + 1);
	}
	memset(&sc, 0, sizeof(sc));
	sc.tab = conf_resource_keys;
	sc.ntab = conf_nresource_keys;
	sc.in = in;
	check_members(ld, e, "", &sc);
	r->file = e->file;
	r->line = e->line;
	for (i = 0; i < conf_nresource_keys; i++) {
		k = &conf_resource_keys[i];
		apply_default(ld, k, r, pfx);
		for (j = 0; j < nl; j++) {
			if (!L[j].applies || L[j].res == NULL ||
			    (k->flags & CK_TOPONLY))
				continue;
			if ((n = cnode_lookup(L[j].res, k->path)) != NULL)
				apply_node(ld, k, n, r, &L[j], "", pfx);
		}
		if ((n = cnode_lookup(e, k->path)) != NULL)
			apply_node(ld, k, n, r, &L[nl - 1], show, pfx);
		if ((k->flags & CK_REQUIRED) && !ck_is_set(k, r) &&
		    !where_failed_in(ld, pfx, k->path))
			ld_err_at(ld, e, "%s%s is required", show, k->path);
	}
	free(show);
	free(pfx);
	free(in);
}

/* Through an index of the names and queues seen, not every pair. */
static void
check_resources_unique(struct conf_ld *ld)
{
	struct qscale_conf	*c = ld->conf;
	struct conf_resource	*a, *b;
	struct str_index	 names, queues;
	ssize_t			 i;
	size_t			 j;

	memset(&names, 0, sizeof(names));
	memset(&queues, 0, sizeof(queues));
	for (j = 0; j < c->nresources; j++) {
		b = &c->resources[j];
		if (b->name != NULL &&
		    (i = str_index_find(&names, b->name)) != -1) {
			a = &c->resources[i];
			ld_err(ld, b->file, b->line, "resource name "
			    "\"%s\" is used twice (first at %s:%d)",
			    b->name, a->file, a->line);
		} else if (b->name != NULL)
			str_index_add(&names, b->name, j);
		if (b->queue == NULL)
			continue;
		if ((i = str_index_find(&queues, b->queue)) == -1) {
			str_index_add(&queues, b->queue, j);
			continue;
		}
		a = &c->resources[i];
		if (a->name == NULL || !str_eq(a->name, b->name))
			ld_err(ld, b->file, b->line, "resources \"%s\" "
			    "(%s:%d) and \"%s\" (%s:%d) both use queue "
			    "\"%s\": each resource needs its own queue",
			    a->name, a->file, a->line, b->name,
			    b->file, b->line, b->queue);
	}
	str_index_clear(&names);
	str_index_clear(&queues);
}

static void
load_resources(struct conf_ld *ld, const struct cnode *root,
    const struct layer *L, size_t nl)
{
	const struct cnode	*rs = cnode_member(root, "resources");
	struct qscale_conf	*c = ld->conf;
	size_t			 i;

	if (rs == NULL || (rs->type == CN_LIST && rs->nkid == 0)) {
		ld_err(ld, rs ? rs->file : NULL, rs ? rs->line : 1, "no "
		    "resources: define at least one, as in resources = "
		    "( { name = \"gpu\"; queue = \"gpu\"; instance_type = "
		    "\"g4dn.xlarge\"; ami = \"ami-...\"; } )");
		return;
	}
	if (rs->type != CN_LIST) {
		ld_err_at(ld, rs, "resources must be a list ( { ... }, ... ), "
		    "not %s", cnode_type_name(rs->type));
		return;
	}
	c->resources = xcalloc(rs->nkid, sizeof(*c->resources));
	for (i = 0; i < rs->nkid; i++) {
		if (rs->kid[i]->type != CN_GROUP) {
			ld_err_at(ld, rs->kid[i], "resources: element %zu must "
			    "be a group { ... }, not %s", i + 1,
			    cnode_type_name(rs->kid[i]->type));
			continue;
		}
		apply_resource(ld, L, nl, rs->kid[i], i,
		    &c->resources[c->nresources++]);
	}
	check_resources_unique(ld);
}

/* A layer's own check, and its values tried on a scratch struct. */
static void
check_layer(struct conf_ld *ld, const struct layer *L, const char *in)
{
	struct scope		 sc;
	struct conf_resource	 rs;
	const struct cnode	*n;
	const struct conf_key	*k;
	char			*rin;
	size_t			 i;

	memset(&sc, 0, sizeof(sc));
	sc.tab = conf_global_keys;
	sc.ntab = conf_nglobal_keys;
	sc.in = in;
	sc.extra = L->name[0] == 'm' ? match_extra : defaults_extra;
	sc.refused = top_extra;
	sc.layer = 1;
	check_members(ld, L->g, "", &sc);
	if (L->res != NULL && L->res->type != CN_GROUP) {
		ld_err_at(ld, L->res, "'resource'%s must be a group { ... }, "
		    "not %s", in, cnode_type_name(L->res->type));
		return;
	}
	if (L->res == NULL)
		return;
	xasprintf(&rin, "%s.resource", in);
	sc.tab = conf_resource_keys;
	sc.ntab = conf_nresource_keys;
	sc.in = rin;
	sc.extra = NULL;
	sc.refused = NULL;
	check_members(ld, L->res, "", &sc);
	free(rin);
	/* values of a block that does not apply are checked all the same */
	memset(&rs, 0, sizeof(rs));
	for (i = 0; i < conf_nresource_keys; i++) {
		k = &conf_resource_keys[i];
		if (!(k->flags & CK_TOPONLY) &&
		    (n = cnode_lookup(L->res, k->path)) != NULL) {
			struct ck_where w = { "", "", NULL };

			ck_apply(ld, k, n, &rs, &w);
		}
	}
	ck_free_all(conf_resource_keys, conf_nresource_keys, &rs);
}

static void
free_layers(struct layer *L, size_t nl)
{
	size_t	 i;

	for (i = 0; i < nl; i++) {
		free(L[i].name);
		cnode_free(L[i].own);
	}
	free(L);
}

/* A match block: its regex, whether it applies to this prefix. */
static int
match_layer(struct conf_ld *ld, const struct cnode *m, const char *prefix,
    struct layer *L)
{
	const struct cnode	*re = cnode_member(m, "workers_prefix");
	regex_t			 rx;
	char			 why[256];
	int			 rc;

	if (m->type != CN_GROUP) {
		ld_err_at(ld, m, "match: each element must be a group "
		    "{ workers_prefix = \"REGEX\"; ... }, not %s",
		    cnode_type_name(m->type));
		return -1;
	}
	if (re == NULL || re->type != CN_STR) {
		ld_err_at(ld, re ? re : m, "match: each block needs "
		    "workers_prefix = \"REGEX\" (a POSIX extended regular "
		    "expression)");
		return -1;
	}
	if ((rc = regcomp(&rx, re->str, REG_EXTENDED | REG_NOSUB)) != 0) {
		regerror(rc, &rx, why, sizeof(why));
		ld_err_at(ld, re, "match: bad regular expression \"%s\": %s",
		    re->str, why);
		return -1;
	}
	L->g = m;
	L->res = cnode_member(m, "resource");
	xasprintf(&L->name, "match \"%s\"", re->str);
	L->applies = regexec(&rx, prefix, 0, NULL, 0) == 0;
	regfree(&rx);
	return 0;
}

/*
 * The layers of the vault file (vault_file = "..."), if one is named: its
 * keys as one layer, after defaults; its match entries after the file's
 * match blocks.  L has room for them.
 */
static struct cnode *
vault_layers(struct conf_ld *ld, const struct cnode *root)
{
	const struct cnode	*vf = cnode_member(root, "vault_file");
	struct cnode		*tree;
	char			*path;

	if (vf == NULL || vf->type != CN_STR || *vf->str == '\0')
		return NULL;	/* a wrong type: the key's own check says */
	path = include_path(vf->file != NULL ? vf->file : ld->path, vf->str);
	tree = vault_read(ld, path, vf->file, vf->line);
	free(path);
	return tree;
}

static void
match_layers(struct conf_ld *ld, const struct cnode *m, const char *prefix,
    const char *what, struct layer *L, size_t *nlp)
{
	size_t	 i;
	char	*in;

	for (i = 0; m != NULL && m->type == CN_LIST && i < m->nkid; i++) {
		if (match_layer(ld, m->kid[i], prefix, &L[*nlp]) == -1)
			continue;
		xasprintf(&in, " in %s %zu", what, i + 1);
		check_layer(ld, &L[(*nlp)++], in);
		free(in);
	}
}

/* defaults, the vault, the match blocks, then the top level. */
static struct layer *
build_layers(struct conf_ld *ld, const struct cnode *root, size_t *nlp)
{
	const struct cnode	*d = cnode_member(root, "defaults");
	const struct cnode	*m = cnode_member(root, "match");
	const struct cnode	*wp = cnode_member(root, "workers_prefix");
	const struct cnode	*vm;
	struct cnode		*vault;
	const char		*prefix = "qscale";
	struct layer		*L;
	size_t			 nl = 0;

	if (wp != NULL && wp->type == CN_STR)
		prefix = wp->str;
	vault = vault_layers(ld, root);
	vm = cnode_member(vault, "match");
	L = xcalloc((m ? m->nkid : 0) + (vm ? vm->nkid : 0) + 3, sizeof(*L));
	if (d != NULL && d->type != CN_GROUP)
		ld_err_at(ld, d, "defaults must be a group { ... }, not %s",
		    cnode_type_name(d->type));
	else if (d != NULL) {
		L[nl].g = d;
		L[nl].res = cnode_member(d, "resource");
		L[nl].name = xstrdup("defaults");
		L[nl].applies = 1;
		check_layer(ld, &L[nl++], " in defaults");
	}
	if (vault != NULL) {
		L[nl].g = cnode_member(vault, "defaults");
		L[nl].name = xstrdup("vault");
		L[nl].applies = 1;
		L[nl].own = vault;
		check_layer(ld, &L[nl++], " in the vault");
	}
	if (m != NULL && m->type != CN_LIST)
		ld_err_at(ld, m, "match must be a list ( { workers_prefix = "
		    "\"REGEX\"; ... }, ... ), not %s",
		    cnode_type_name(m->type));
	match_layers(ld, m, prefix, "match", L, &nl);
	match_layers(ld, vm, prefix, "the vault's match", L, &nl);
	L[nl].g = root;
	L[nl].applies = 1;
	*nlp = ++nl;
	return L;
}

static void
check_pairs(struct conf_ld *ld)
{
	struct qscale_conf	*c = ld->conf;
	const struct cnode	*n;

	if (where_failed(ld, "aws.access_key_id") ||
	    where_failed(ld, "aws.secret_access_key") ||
	    where_failed(ld, "aws.session_token"))
		;
	else if ((c->aws.access_key_id == NULL) !=
	    (c->aws.secret_access_key == NULL)) {
		n = where_of(ld, c->aws.access_key_id ? "aws.access_key_id" :
		    "aws.secret_access_key");
		ld_err_at(ld, n, "aws.access_key_id and aws.secret_access_key "
		    "go together: set both or neither");
	} else if (c->aws.session_token != NULL &&
	    c->aws.access_key_id == NULL)
		ld_err_at(ld, where_of(ld, "aws.session_token"),
		    "aws.session_token needs aws.access_key_id and "
		    "aws.secret_access_key");
	if (!where_failed(ld, "agent.secret_key") &&
	    (c->agent.access_key == NULL) != (c->agent.secret_key == NULL)) {
		n = where_of(ld, c->agent.access_key ? "agent.access_key" :
		    "agent.secret_key");
		ld_err_at(ld, n, "agent.access_key and agent.secret_key go "
		    "together: set both or neither (neither: the agents use "
		    "clearml.access_key and clearml.secret_key)");
	}
	if (c->aws.retry_base_delay > c->aws.retry_max_delay)
		ld_err_at(ld, where_of(ld, "aws.retry_base_delay"),
		    "aws.retry_base_delay is longer than aws.retry_max_delay");
}

/* A message that does not stop the load: "FILE:LINE: message". */
static void
ld_warn(struct conf_ld *ld, const struct cnode *n, const char *fmt, ...)
{
	struct conf_errors	*w = &ld->conf->warnings;
	va_list			 ap;
	char			*text;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		fatal("vasprintf");
	va_end(ap);
	w->msg = xreallocarray(w->msg, w->n + 1, sizeof(*w->msg));
	if (n != NULL && n->file != NULL)
		xasprintf(&w->msg[w->n++], "%s:%d: %s", n->file, n->line,
		    text);
	else
		xasprintf(&w->msg[w->n++], "%s: %s", ld->path, text);
	free(text);
}

/* The node that set pfx.path, else the resource's block. */
static const struct cnode *
res_where(struct conf_ld *ld, const char *pfx, const char *path,
    const struct cnode *block)
{
	const struct cnode	*n;
	char			*key;

	xasprintf(&key, "%s%s", pfx, path);
	n = where_of(ld, key);
	free(key);
	return n != NULL ? n : block;
}

/* What the IOPS and throughput of one volume type may be. */
static const struct {
	const char	*type;
	int		 iops_min, iops_max;	/* 0, 0: none */
	int		 iops_needed;
	int		 tput_min, tput_max;	/* 0, 0: none */
	int		 iops_per_gb;		/* at most */
} ebs_limits[] = {
	{ "io1", 100, 64000, 1, 0, 0, 50 },
	{ "io2", 100, 256000, 1, 0, 0, 1000 },
	{ "gp3", 3000, 16000, 0, 125, 1000, 500 },
};

static void
check_ebs_perf(struct conf_ld *ld, const struct conf_resource *r,
    const char *show, const char *pfx, const struct cnode *e)
{
	size_t	 i;

	for (i = 0; i < QS_ARRAYLEN(ebs_limits); i++)
		if (str_eq(r->ebs.type, ebs_limits[i].type))
			break;
	if (i == QS_ARRAYLEN(ebs_limits)) {
		if (r->ebs.iops > 0 || r->ebs.throughput > 0)
			ld_err_at(ld, res_where(ld, pfx, r->ebs.iops > 0 ?
			    "ebs.iops" : "ebs.throughput", e), "%s%s is for "
			    "io1, io2 and gp3 volumes, not %s", show,
			    r->ebs.iops > 0 ? "ebs.iops" : "ebs.throughput",
			    r->ebs.type);
		return;
	}
	if (ebs_limits[i].iops_needed && r->ebs.iops == 0)
		ld_err_at(ld, res_where(ld, pfx, "ebs.type", e), "%sebs.type "
		    "%s needs ebs.iops (%d to %d): EC2 refuses the launch "
		    "without it", show, r->ebs.type, ebs_limits[i].iops_min,
		    ebs_limits[i].iops_max);
	else if (r->ebs.iops != 0 && (r->ebs.iops < ebs_limits[i].iops_min ||
	    r->ebs.iops > ebs_limits[i].iops_max))
		ld_err_at(ld, res_where(ld, pfx, "ebs.iops", e), "%sebs.iops "
		    "must be from %d to %d for %s (not %d)", show,
		    ebs_limits[i].iops_min, ebs_limits[i].iops_max,
		    r->ebs.type, r->ebs.iops);
	if (r->ebs.throughput != 0 && ebs_limits[i].tput_max == 0)
		ld_err_at(ld, res_where(ld, pfx, "ebs.throughput", e),
		    "%sebs.throughput is for gp3 volumes, not %s", show,
		    r->ebs.type);
	else if (r->ebs.throughput != 0 &&
	    r->ebs.throughput < ebs_limits[i].tput_min)
		ld_err_at(ld, res_where(ld, pfx, "ebs.throughput", e),
		    "%sebs.throughput must be from %d to %d MiB/s for %s "
		    "(not %d)", show, ebs_limits[i].tput_min,
		    ebs_limits[i].tput_max, r->ebs.type, r->ebs.throughput);
	else if (r->ebs.throughput * 4 > QS_MAX(r->ebs.iops,
	    ebs_limits[i].iops_min) && ebs_limits[i].tput_max != 0)
		ld_err_at(ld, res_where(ld, pfx, "ebs.throughput", e),
		    "%sebs.throughput %d MiB/s needs ebs.iops of at least %d "
		    "(gp3 gives 0.25 MiB/s per IOPS; its baseline is %d)",
		    show, r->ebs.throughput, r->ebs.throughput * 4,
		    ebs_limits[i].iops_min);
	if (r->ebs.iops > r->ebs.size_gb * ebs_limits[i].iops_per_gb)
		ld_err_at(ld, res_where(ld, pfx, "ebs.iops", e), "%sebs.iops "
		    "%d needs ebs.size_gb of at least %d (%s allows %d IOPS "
		    "per GiB)", show, r->ebs.iops, (r->ebs.iops +
		    ebs_limits[i].iops_per_gb - 1) / ebs_limits[i].iops_per_gb,
		    r->ebs.type, ebs_limits[i].iops_per_gb);
}

/*
 * Settings that load but would do nothing, said rather than ignored;
 * and volume settings EC2 would refuse at every launch, refused here.
 */
static void
check_noops(struct conf_ld *ld, const struct cnode *root)
{
	const struct cnode	*rs = cnode_member(root, "resources"), *e;
	struct conf_resource	*r;
	char			*show, *pfx;
	size_t			 i, j;

	for (i = 0; i < ld->conf->nresources; i++) {
		r = &ld->conf->resources[i];
		if (r->name == NULL)
			continue;
		for (j = 0, e = NULL; rs != NULL && j < rs->nkid; j++)
			if (rs->kid[j]->line == r->line &&
			    str_eq(rs->kid[j]->file, r->file))
				e = rs->kid[j];
		xasprintf(&show, "resource \"%s\": ", r->name);
		xasprintf(&pfx, "resources.%s.", r->name);
		/* "gp3" is the default, as an export writes it */
		if (r->ebs.size_gb == 0 &&
		    ((res_where(ld, pfx, "ebs.type", NULL) != NULL &&
		    !str_eq(r->ebs.type, "gp3")) ||
		    r->ebs.iops > 0 || r->ebs.throughput > 0))
			ld_warn(ld, res_where(ld, pfx, r->ebs.iops > 0 ?
			    "ebs.iops" : r->ebs.throughput > 0 ?
			    "ebs.throughput" : "ebs.type", e), "%sebs settings "
			    "do nothing without ebs.size_gb: the AMI's root "
			    "volume is used as it is (set ebs.size_gb to give "
			    "it a size, a type and its IOPS)", show);
		else if (r->ebs.size_gb > 0)
			check_ebs_perf(ld, r, show, pfx, e);
		if (!r->spot && cJSON_GetObjectItemCaseSensitive(
		    r->eff_launch_spec, "InstanceMarketOptions") != NULL)
			ld_warn(ld, res_where(ld, pfx, "custom_launch_spec",
			    where_of(ld, "custom_launch_spec")), "%s"
			    "custom_launch_spec.InstanceMarketOptions does "
			    "nothing while spot is false: qscale launches "
			    "on-demand without it (set spot = true for spot)",
			    show);
		if (r->availability_zone != NULL && r->nsubnets > 0)
			ld_warn(ld, res_where(ld, pfx, "availability_zone", e),
			    "%savailability_zone \"%s\" is not used: subnets "
			    "are set, and each subnet lies in one zone", show,
			    r->availability_zone);
		free(show);
		free(pfx);
	}
}

/* What follows from the rest: derived defaults, effective values. */
static void
resolve(struct conf_ld *ld)
{
	struct qscale_conf	*c = ld->conf;
	struct conf_resource	*r;
	const char		*o;
	size_t			 i;

	if (c->clearml.report_name == NULL && c->name != NULL)
		xasprintf(&c->clearml.report_name, "qscale %s", c->name);
	if (c->status_listen != NULL)
		ck_listen_check(c->status_listen, &c->status_loopback);
	if (c->aws.access_key_id != NULL &&
	    (o = conf_origin(c, "aws.access_key_id")) != NULL)
		c->aws.access_key_source = xstrdup(o);
	for (i = 0; i < c->nresources; i++) {
		r = &c->resources[i];
		r->eff_docker_image = r->docker_image ? r->docker_image :
		    c->agent.docker_image;
		r->eff_iam_instance_profile = r->iam_instance_profile.arn ||
		    r->iam_instance_profile.name ? &r->iam_instance_profile :
		    &c->iam_instance_profile;
		if (c->custom_launch_spec != NULL) {
			r->eff_launch_spec = cJSON_Duplicate(
			    c->custom_launch_spec, 1);
			if (r->custom_launch_spec != NULL)
				conf_json_merge(r->eff_launch_spec,
				    r->custom_launch_spec);
		} else if (r->custom_launch_spec != NULL)
			r->eff_launch_spec = cJSON_Duplicate(
			    r->custom_launch_spec, 1);
	}
}

static void
load_tree(struct conf_ld *ld, const struct cnode *root)
{
	struct qscale_conf	 scratch;
	struct layer		*L;
	struct scope		 sc;
	size_t			 nl;

	memset(&sc, 0, sizeof(sc));
	sc.tab = conf_global_keys;
	sc.ntab = conf_nglobal_keys;
	sc.in = "";
	sc.extra = top_extra;
	check_members(ld, root, "", &sc);
	L = build_layers(ld, root, &nl);
	memset(&scratch, 0, sizeof(scratch));
	apply_globals(ld, L, nl, &scratch);
	ck_free_all(conf_global_keys, conf_nglobal_keys, &scratch);
	check_required(ld, root);
	load_resources(ld, root, L, nl);
	check_pairs(ld);
	resolve(ld);
	check_noops(ld, root);
	free_layers(L, nl);
}

static void
check_secrecy(struct conf_ld *ld)
{
	size_t	 i;

	for (i = 0; i < ld->nfiles; i++) {
		if (!ld->files[i].secrets ||
		    (ld->files[i].mode & (S_IRGRP | S_IROTH)) == 0)
			continue;
		ld_err(ld, ld->files[i].path, 0, "holds secrets but is "
		    "readable by group or others: run chmod 600 %s",
		    ld->files[i].path);
	}
}

/* Errors in file order, then line order; the order found otherwise. */
static void
sort_errors(struct conf_ld *ld)
{
	struct ld_err	 t;
	size_t		 i, j;

	for (i = 1; i < ld->nerrs; i++) {
		t = ld->errs[i];
		for (j = i; j > 0 && (ld->errs[j - 1].rank > t.rank ||
		    (ld->errs[j - 1].rank == t.rank &&
		    ld->errs[j - 1].line > t.line)); j--)
			ld->errs[j] = ld->errs[j - 1];
		ld->errs[j] = t;
	}
}

static void
errors_add(struct conf_errors *errs, char *msg)
{
	errs->msg = xreallocarray(errs->msg, errs->n + 1, sizeof(*errs->msg));
	errs->msg[errs->n++] = msg;
}

/* Moves ld's errors, sorted, to ERRS (or frees them if it is NULL). */
static void
move_errors(struct conf_ld *ld, struct conf_errors *errs)
{
	size_t	 i;

	sort_errors(ld);
	for (i = 0; i < ld->nerrs; i++) {
		free(ld->errs[i].blame);
		if (errs == NULL)
			free(ld->errs[i].msg);
		else
			errors_add(errs, ld->errs[i].msg);
	}
	free(ld->errs);
	ld->errs = NULL;
	ld->nerrs = 0;
}

/* One try, leaving out the included files SKIP names. */
static struct qscale_conf *
load_once(struct conf_ld *ld, const char *path, char **skip, size_t nskip)
{
	struct qscale_conf	*conf;
	struct cnode		*root;
	size_t			 i;

	memset(ld, 0, sizeof(*ld));
	ld->path = path;
	ld->skip = skip;
	ld->nskip = nskip;
	conf = xcalloc(1, sizeof(*conf));
	conf->file = xstrdup(path);
	ld->conf = conf;
	if ((root = src_read(ld, path)) != NULL) {
		load_tree(ld, root);
		cnode_free(root);
	}
	where_clear(ld);
	check_secrecy(ld);
	conf->srcfiles = xcalloc(ld->nfiles, sizeof(*conf->srcfiles));
	for (i = 0; i < ld->nfiles; i++)
		conf->srcfiles[i] = ld->files[i].path;
	conf->nsrcfiles = ld->nfiles;
	free(ld->files);
	ld->files = NULL;
	if (ld->nerrs > 0) {
		conf_free(conf);
		return NULL;
	}
	return conf;
}

/*
 * Adds to SKIP the included files that ld's errors blame; -1 if one is
 * the main file PATH (nothing can be left out then) or none is new.
 */
static int
blame_includes(const struct conf_ld *ld, const char *path, char ***skip,
    size_t *nskip)
{
	size_t	 i, j, was = *nskip;

	for (i = 0; i < ld->nerrs; i++) {
		if (strcmp(ld->errs[i].blame, path) == 0)
			return -1;
		for (j = 0; j < *nskip; j++)
			if (strcmp((*skip)[j], ld->errs[i].blame) == 0)
				break;
		if (j < *nskip)
			continue;
		*skip = xreallocarray(*skip, *nskip + 1, sizeof(**skip));
		(*skip)[(*nskip)++] = xstrdup(ld->errs[i].blame);
	}
	return *nskip > was ? 0 : -1;
}

#define CONF_MAX_LEFT_OUT	32	/* tries without broken includes */

/*
 * With ignore_include_errors = true (ClearML's "ignore vault parsing
 * errors"), a configuration whose only errors lie in @include'd files
 * loads without those files; their errors become its warnings.  The key
 * counts only as the configuration loaded without them says.
 */
static struct qscale_conf *
load_leaving_out(struct conf_ld *first, const char *path)
{
	struct conf_ld		 ld;
	struct conf_errors	 warn = { NULL, 0 };
	struct qscale_conf	*conf = NULL;
	char			**skip = NULL, *msg;
	size_t			 nskip = 0, tries, i;
	int			 rc;

	for (i = 0; i < first->nerrs; i++)
		errors_add(&warn, xstrdup(first->errs[i].msg));
	if (blame_includes(first, path, &skip, &nskip) == -1)
		goto out;
	for (tries = 0; tries < CONF_MAX_LEFT_OUT; tries++) {
		if ((conf = load_once(&ld, path, skip, nskip)) != NULL)
			break;
		sort_errors(&ld);
		for (i = 0; i < ld.nerrs; i++)
			errors_add(&warn, xstrdup(ld.errs[i].msg));
		rc = blame_includes(&ld, path, &skip, &nskip);
		move_errors(&ld, NULL);
		if (rc == -1)
			break;
	}
	if (conf != NULL && !conf->ignore_include_errors) {
		conf_free(conf);
		conf = NULL;
	}
out:
	if (conf != NULL) {
		for (i = 0; i < nskip; i++) {
			xasprintf(&msg, "%s: left out, with its errors above "
			    "(ignore_include_errors = true)", skip[i]);
			errors_add(&warn, msg);
		}
		/* the left-out files' errors first, then what loaded says */
		for (i = 0; i < conf->warnings.n; i++)
			errors_add(&warn, conf->warnings.msg[i]);
		free(conf->warnings.msg);
		conf->warnings = warn;
	} else
		conf_errors_clear(&warn);
	for (i = 0; i < nskip; i++)
		free(skip[i]);
	free(skip);
	return conf;
}

struct qscale_conf *
conf_load(const char *path, struct conf_errors *errs)
{
	struct conf_ld		 ld;
	struct qscale_conf	*conf;

	if ((conf = load_once(&ld, path, NULL, 0)) != NULL)
		return conf;
	sort_errors(&ld);
	if ((conf = load_leaving_out(&ld, path)) != NULL) {
		move_errors(&ld, NULL);
		return conf;
	}
	move_errors(&ld, errs);
	return NULL;
}

void
conf_free(struct qscale_conf *conf)
{
	size_t	 i;

	if (conf == NULL)
		return;
	ck_free_all(conf_global_keys, conf_nglobal_keys, conf);
	for (i = 0; i < conf->nresources; i++) {
		ck_free_all(conf_resource_keys, conf_nresource_keys,
		    &conf->resources[i]);
		cJSON_Delete(conf->resources[i].eff_launch_spec);
	}
	free(conf->resources);
	for (i = 0; i < conf->norigins; i++) {
		free(conf->origins[i].key);
		free(conf->origins[i].origin);
	}
	free(conf->origins);
	str_index_clear(&conf->origin_index);
	for (i = 0; i < conf->nsrcfiles; i++)
		free(conf->srcfiles[i]);
	free(conf->srcfiles);
	conf_errors_clear(&conf->warnings);
	free(conf->aws.access_key_source);
	free(conf->file);
	free(conf);
}

void
conf_errors_clear(struct conf_errors *errs)
{
	size_t	 i;

	if (errs == NULL)
		return;
	for (i = 0; i < errs->n; i++)
		free(errs->msg[i]);
	free(errs->msg);
	errs->msg = NULL;
	errs->n = 0;
}

/* What loaded but does nothing as written, into the log. */
void
conf_log_warnings(const struct qscale_conf *conf)
{
	size_t	 i;

	for (i = 0; i < conf->warnings.n; i++)
		log_warnx("%s", conf->warnings.msg[i]);
}

void
conf_register_secrets(const struct qscale_conf *conf)
{
	size_t	 i;

	for (i = 0; i < conf_nglobal_keys; i++)
		if (conf_global_keys[i].flags & CK_SECRET)
			mask_register(*(char **)ck_field(&conf_global_keys[i],
			    (void *)conf));
}

/* A layer's control.socket, when it is a usable one. */
static const char *
peek_socket_in(const struct cnode *g)
{
	const struct cnode	*n = cnode_lookup(g, "control.socket");

	if (n == NULL || n->type != CN_STR || n->str[0] != '/')
		return NULL;
	return n->str;
}

/* The same layers as conf_load(): top, matching match blocks, defaults. */
static const char *
peek_socket_tree(const struct cnode *root)
{
	const struct cnode	*m = cnode_member(root, "match");
	const struct cnode	*wp = cnode_member(root, "workers_prefix");
	const struct cnode	*re;
	const char		*s, *found = NULL;
	regex_t			 rx;
	size_t			 i;

	if ((s = peek_socket_in(root)) != NULL)
		return s;
	for (i = 0; m != NULL && m->type == CN_LIST && i < m->nkid; i++) {
		re = cnode_member(m->kid[i], "workers_prefix");
		if (re == NULL || re->type != CN_STR ||
		    (s = peek_socket_in(m->kid[i])) == NULL ||
		    regcomp(&rx, re->str, REG_EXTENDED | REG_NOSUB) != 0)
			continue;
		if (regexec(&rx, wp != NULL && wp->type == CN_STR ? wp->str :
		    "qscale", 0, NULL, 0) == 0)
			found = s;	/* the last that matches wins */
		regfree(&rx);
	}
	if (found != NULL)
		return found;
	return peek_socket_in(cnode_member(root, "defaults"));
}

/* control { socket = "..." } found in the text alone. */
static char *
peek_socket_text(const char *path)
{
	static const char re[] = "control\"?[[:space:]]*[=:][[:space:]]*"
	    "\\{[^}]*socket\"?[[:space:]]*[=:][[:space:]]*\"(/[^\"]+)\"";
	regex_t		 rx;
	regmatch_t	 mt[2];
	char		 buf[65536], *s = NULL;
	size_t		 n;
	FILE		*f;

	if ((f = fopen(path, "re")) == NULL)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if (regcomp(&rx, re, REG_EXTENDED) != 0)
		return NULL;
	if (regexec(&rx, buf, 2, mt, 0) == 0)
		s = xstrndup(buf + mt[1].rm_so,
		    (size_t)(mt[1].rm_eo - mt[1].rm_so));
	regfree(&rx);
	return s;
}

/*
 * The control socket a configuration names, for qscalectl -c: read
 * without checking the rest, so that a file half-way through an edit
 * still leads to the running daemon.  When the file cannot be parsed, a
 * plain scan of its text; when that finds nothing either, the default
 * socket.  *note says why it was not read from the file (or NULL); the
 * caller frees both.
 */
char *
conf_peek_socket(const char *path, char **note)
{
	struct conf_ld	 ld;
	struct cnode	*root;
	const char	*s = NULL;
	char		*out = NULL, *why = NULL;
	size_t		 i;

	*note = NULL;
	memset(&ld, 0, sizeof(ld));
	ld.path = path;
	ld.conf = xcalloc(1, sizeof(*ld.conf));
	if ((root = src_read(&ld, path)) != NULL) {
		if ((s = peek_socket_tree(root)) != NULL)
			out = xstrdup(s);
		cnode_free(root);
	}
	if (root == NULL && ld.nerrs > 0)
		why = xstrdup(ld.errs[0].msg);
	for (i = 0; i < ld.nerrs; i++)
		free(ld.errs[i].msg);
	free(ld.errs);
	for (i = 0; i < ld.nfiles; i++)
		free(ld.files[i].path);
	free(ld.files);
	conf_free(ld.conf);
	if (out != NULL || root != NULL) {
		free(why);
		return out != NULL ? out : xstrdup(QS_DEFAULT_SOCKET);
	}
	if ((out = peek_socket_text(path)) != NULL)
		xasprintf(note, "%s; control.socket %s found in its text",
		    why != NULL ? why : path, out);
	else {
		out = xstrdup(QS_DEFAULT_SOCKET);
		xasprintf(note, "%s; no control.socket found in it: using "
		    "the default %s", why != NULL ? why : path, out);
	}
	free(why);
	return out;
}

const struct conf_resource *
conf_resource_find(const struct qscale_conf *conf, const char *name)
{
	size_t	 i;

	for (i = 0; i < conf->nresources; i++)
		if (str_eq(conf->resources[i].name, name))
			return &conf->resources[i];
	return NULL;
}
