/*
 * conf_out.c: the configuration written back out, from the same key
 * tables that read it.  conf_print(): libconfig text (what qscaled -nv
 * shows), every key with its effective value and a comment saying where
 * it came from; it loads again as it is.  conf_to_json(): the same keys
 * as one JSON object (qscalectl export-config), which loads as a .json
 * file.  conf_resource_fingerprint(): a digest of everything a worker
 * process reads, so a reload restarts only the workers it changes.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "conf_int.h"

/* Objects merge key by key, recursively; anything else replaces. */
void
conf_json_merge(cJSON *dst, const cJSON *src)
{
	const cJSON	*s;
	cJSON		*d;

	cJSON_ArrayForEach(s, src) {
		d = cJSON_GetObjectItemCaseSensitive(dst, s->string);
		if (d != NULL && cJSON_IsObject(d) && cJSON_IsObject(s))
			conf_json_merge(d, s);
		else if (d != NULL)
			cJSON_ReplaceItemInObjectCaseSensitive(dst, s->string,
			    cJSON_Duplicate(s, 1));
		else
			cJSON_AddItemToObject(dst, s->string,
			    cJSON_Duplicate(s, 1));
	}
}

/* The escapes are mask_escape()'s, so that a secret is masked in them. */
static void
put_quoted(FILE *f, const char *s)
{
	char	*e = mask_escape(s != NULL ? s : "", MASK_FORM_LIBCONFIG);

	fputc('"', f);
	fputs(e, f);
	fputc('"', f);
	freezero_str(e);
}

/* A name libconfig accepts for a setting. */
static int
lc_name_ok(const char *s)
{
	if (!isalpha((unsigned char)*s) && *s != '*')
		return 0;
	for (s++; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr("-_*", *s) == NULL)
			return 0;
	return 1;
}

struct printer {
	FILE				*f;
	const struct qscale_conf	*conf;
	int				 flags;
	int				 indent;
};

static void
pr_indent(const struct printer *p)
{
	int	 i;

	for (i = 0; i < p->indent; i++)
		fputs("  ", p->f);
}

static void
pr_origin(const struct printer *p, const char *keypfx, const char *path,
    const char *sub, int set)
{
	const char	*o;
	char		*key;

	if (p->flags & CONF_PRINT_NO_ORIGINS) {
		fputc('\n', p->f);
		return;
	}
	xasprintf(&key, "%s%s%s%s", keypfx, path, sub ? "." : "",
	    sub ? sub : "");
	o = conf_origin(p->conf, key);
	if (o == NULL || (!set && strcmp(o, "default") == 0))
		fprintf(p->f, "  # %s\n", set ? "default" : "not set");
	else
		fprintf(p->f, "  # %s\n", o);
	free(key);
}

static void
pr_tags(struct printer *p, const struct conf_key *k, const void *base,
    const char *name, const char *keypfx)
{
	const struct conf_kv	*t = *(struct conf_kv *const *)(const void *)
	    ((const char *)base + k->off);
	size_t			 n = *(const size_t *)(const void *)
	    ((const char *)base + k->off_n), i;
	int			 plain = 1;

	for (i = 0; i < n; i++)
		if (!lc_name_ok(t[i].key))
			plain = 0;
	fprintf(p->f, "%s = %s", name, plain ? "{" : "(");
	pr_origin(p, keypfx, k->path, NULL, n > 0);
	p->indent++;
	for (i = 0; i < n; i++) {
		pr_indent(p);
		if (plain)
			fprintf(p->f, "%s = ", t[i].key);
		else {
			fputs("( ", p->f);
			put_quoted(p->f, t[i].key);
			fputs(", ", p->f);
		}
		put_quoted(p->f, t[i].value);
		fputs(plain ? ";" : i + 1 < n ? " )," : " )", p->f);
		pr_origin(p, keypfx, k->path, t[i].key, 1);
	}
	p->indent--;
	pr_indent(p);
	fputs(plain ? "};\n" : ");\n", p->f);
}

static void
pr_value(struct printer *p, const struct conf_key *k, const void *base,
    const char *name, const char *keypfx)
{
	const void	*fp = (const char *)base + k->off;
	char		 buf[32], *s, **list;
	size_t		 i, n;

	pr_indent(p);
	switch (k->type) {
	case CK_STR:
	case CK_ENUM:
		s = *(char *const *)fp;
		fprintf(p->f, "%s = ", name);
		put_quoted(p->f, s != NULL && (k->flags & CK_SECRET) &&
		    !(p->flags & CONF_PRINT_SECRETS) ? MASK_TEXT : s);
		break;
	case CK_BOOL:
		fprintf(p->f, "%s = %s", name, *(const int *)fp ? "true" :
		    "false");
		break;
	case CK_INT:
		fprintf(p->f, "%s = %d", name, *(const int *)fp);
		break;
	case CK_DUR:
		/* < 0: unset, the global value applies */
		if (*(const int64_t *)fp < 0)
			*buf = '\0';
		else
			fmt_duration(*(const int64_t *)fp, buf, sizeof(buf));
		fprintf(p->f, "%s = \"%s\"", name, buf);
		break;
	case CK_LEVEL:
		snprintf(buf, sizeof(buf), "%s", log_level_name(*(const int *)
		    fp));
		for (i = 0; buf[i] != '\0'; i++)
			buf[i] = (char)tolower((unsigned char)buf[i]);
		fprintf(p->f, "%s = \"%s\"", name, buf);
		break;
	case CK_STRLIST:
		list = *(char **const *)fp;
		n = *(const size_t *)(const void *)((const char *)base +
		    k->off_n);
		fprintf(p->f, "%s = [", name);
		for (i = 0; i < n; i++) {
			fputs(i ? ", " : " ", p->f);
			put_quoted(p->f, list[i]);
		}
		fputs(" ]", p->f);
		break;
	case CK_TAGS:
		pr_tags(p, k, base, name, keypfx);
		return;
	case CK_JSON:
		s = *(cJSON *const *)fp != NULL ?
		    cJSON_PrintUnformatted(*(cJSON *const *)fp) : NULL;
		fprintf(p->f, "%s = ", name);
		put_quoted(p->f, s != NULL ? s : "");
		free(s);
		break;
	}
	fputc(';', p->f);
	pr_origin(p, keypfx, k->path, NULL, ck_is_set(k, base));
}

/* One table's keys; groups open and close as the prefix changes. */
static void
pr_keys(struct printer *p, const struct conf_key *tab, size_t n,
    const void *base, const char *keypfx)
{
	char		 group[64] = "";
	const char	*dot;
	size_t		 i, gl;

	for (i = 0; i < n; i++) {
		dot = strchr(tab[i].path, '.');
		gl = dot != NULL ? (size_t)(dot - tab[i].path) : 0;
		if (strlen(group) != gl ||
		    strncmp(group, tab[i].path, gl) != 0) {
			if (*group != '\0') {
				p->indent--;
				pr_indent(p);
				fputs("};\n", p->f);
			}
			snprintf(group, sizeof(group), "%.*s", (int)gl,
			    tab[i].path);
			if (*group != '\0') {
				pr_indent(p);
				fprintf(p->f, "%s = {\n", group);
				p->indent++;
			}
		}
		pr_value(p, &tab[i], base, dot != NULL ? dot + 1 :
		    tab[i].path, keypfx);
	}
	if (*group != '\0') {
		p->indent--;
		pr_indent(p);
		fputs("};\n", p->f);
	}
}

char *
conf_print(const struct qscale_conf *conf, int flags)
{
	struct printer	 p;
	char		*buf = NULL, *pfx, *out;
	size_t		 len = 0, i;

	p.f = open_memstream(&buf, &len);
	if (p.f == NULL)
		fatal("open_memstream");
	p.conf = conf;
	p.flags = flags;
	p.indent = 0;
	fprintf(p.f, "# qscale configuration from %s: every key with its "
	    "effective value\n", conf->file);
	pr_keys(&p, conf_global_keys, conf_nglobal_keys, conf, "");
	fputs("resources = (\n", p.f);
	for (i = 0; i < conf->nresources; i++) {
		fputs("  {\n", p.f);
		p.indent = 2;
		xasprintf(&pfx, "resources.%s.", conf->resources[i].name);
		pr_keys(&p, conf_resource_keys, conf_nresource_keys,
		    &conf->resources[i], pfx);
		free(pfx);
		p.indent = 0;
		fputs(i + 1 < conf->nresources ? "  },\n" : "  }\n", p.f);
	}
	fputs(");\n", p.f);
	if (fclose(p.f) != 0)
		fatal("conf_print");
	if (flags & CONF_PRINT_SECRETS)
		return buf;
	/* a secret that also sits in another value is hidden there too */
	out = mask_dup(buf);
	explicit_bzero(buf, len);
	free(buf);
	return out;
}

/* The object at "clearml" in o, made if missing. */
static cJSON *
json_group(cJSON *o, const char *path, const char **leaf)
{
	const char	*dot = strchr(path, '.');
	char		 g[64];
	cJSON		*sub;

	if (dot == NULL) {
		*leaf = path;
		return o;
	}
	snprintf(g, sizeof(g), "%.*s", (int)(dot - path), path);
	if ((sub = cJSON_GetObjectItemCaseSensitive(o, g)) == NULL)
		sub = cJSON_AddObjectToObject(o, g);
	*leaf = dot + 1;
	return sub;
}

static cJSON *
json_value(const struct conf_key *k, const void *base, int secrets)
{
	const void		*fp = (const char *)base + k->off;
	const struct conf_kv	*t;
	char			 buf[32], *s, **list;
	size_t			 i, n = 0;
	cJSON			*j;

	if (k->off_n != 0)
		n = *(const size_t *)(const void *)((const char *)base +
		    k->off_n);
	switch (k->type) {
	case CK_STR:
	case CK_ENUM:
		if ((s = *(char *const *)fp) == NULL)
			return cJSON_CreateNull();
		return cJSON_CreateString((k->flags & CK_SECRET) && !secrets ?
		    MASK_TEXT : s);
	case CK_BOOL:
		return cJSON_CreateBool(*(const int *)fp);
	case CK_INT:
		return cJSON_CreateNumber(*(const int *)fp);
	case CK_DUR:
		if (*(const int64_t *)fp < 0)
			return cJSON_CreateNull();
		fmt_duration(*(const int64_t *)fp, buf, sizeof(buf));
		return cJSON_CreateString(buf);
	case CK_LEVEL:
		snprintf(buf, sizeof(buf), "%s", log_level_name(*(const int *)
		    fp));
		for (i = 0; buf[i] != '\0'; i++)
			buf[i] = (char)tolower((unsigned char)buf[i]);
		return cJSON_CreateString(buf);
	case CK_STRLIST:
		list = *(char **const *)fp;
		j = cJSON_CreateArray();
		for (i = 0; i < n; i++)
			cJSON_AddItemToArray(j, cJSON_CreateString(list[i]));
		return j;
	case CK_TAGS:
		t = *(struct conf_kv *const *)fp;
		j = cJSON_CreateObject();
		for (i = 0; i < n; i++)
			cJSON_AddStringToObject(j, t[i].key, t[i].value);
		return j;
	case CK_JSON:
		if (*(cJSON *const *)fp == NULL)
			return cJSON_CreateNull();
		return cJSON_Duplicate(*(cJSON *const *)fp, 1);
	}
	return cJSON_CreateNull();
}

static void
json_keys(cJSON *o, const struct conf_key *tab, size_t n, const void *base,
    int secrets, int worker_only)
{
	const char	*leaf;
	cJSON		*g;
	size_t		 i;

	for (i = 0; i < n; i++) {
		if (worker_only && (tab[i].flags & CK_SUPONLY))
			continue;
		g = json_group(o, tab[i].path, &leaf);
		cJSON_AddItemToObject(g, leaf, json_value(&tab[i], base,
		    secrets));
	}
}

/* A secret that also sits in another value is hidden there too. */
static void
json_mask(cJSON *j)
{
	cJSON	*e;
	char	*m;

	if (cJSON_IsString(j) && j->valuestring != NULL) {
		m = mask_dup(j->valuestring);
		if (strcmp(m, j->valuestring) != 0)
			cJSON_SetValuestring(j, m);
		free(m);
		return;
	}
	cJSON_ArrayForEach(e, j)
		json_mask(e);
}

cJSON *
conf_to_json(const struct qscale_conf *conf, int with_secrets)
{
	cJSON	*o = cJSON_CreateObject(), *rs, *r;
	size_t	 i;

	json_keys(o, conf_global_keys, conf_nglobal_keys, conf, with_secrets,
	    0);
	rs = cJSON_AddArrayToObject(o, "resources");
	for (i = 0; i < conf->nresources; i++) {
		r = cJSON_CreateObject();
		json_keys(r, conf_resource_keys, conf_nresource_keys,
		    &conf->resources[i], with_secrets, 0);
		cJSON_AddItemToArray(rs, r);
	}
	if (!with_secrets)
		json_mask(o);
	return o;
}

/*
 * The digest of the resource's block and every global key a worker
 * process reads (secrets included: a new key must reach the worker),
 * not those only the supervisor uses.  Hex SHA-256.
 */
char *
conf_resource_fingerprint(const struct qscale_conf *conf, size_t i)
{
	unsigned char	 md[EVP_MAX_MD_SIZE];
	unsigned int	 mdlen = 0, k;
	cJSON		*o = cJSON_CreateObject(), *r;
	char		*text, *hex;

	json_keys(o, conf_global_keys, conf_nglobal_keys, conf, 1, 1);
	if (i < conf->nresources) {
		r = cJSON_AddObjectToObject(o, "resource");
		json_keys(r, conf_resource_keys, conf_nresource_keys,
		    &conf->resources[i], 1, 0);
	}
	if ((text = cJSON_PrintUnformatted(o)) == NULL)
		fatalx("%s: cJSON_PrintUnformatted failed", __func__);
	cJSON_Delete(o);
	if (EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha256(), NULL) !=
	    1)
		fatalx("%s: EVP_Digest failed", __func__);
	explicit_bzero(text, strlen(text));
	free(text);
	hex = xmalloc(mdlen * 2 + 1);
	for (k = 0; k < mdlen; k++)
		snprintf(hex + k * 2, 3, "%02x", md[k]);
	hex[mdlen * 2] = '\0';
	return hex;
}
