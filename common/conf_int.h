/*
 * conf_int.h: private to the configuration files (config.c, conf_*.c).
 *
 * Loading happens in two steps.  conf_src.c reads the text (libconfig
 * with its @include lines, or JSON) into a tree of nodes that each know
 * their file and line.  config.c then walks the key tables of
 * conf_keys.c over that tree, layer by layer (built-in default,
 * environment, "defaults", matching "match" blocks, the top level), and
 * every value lands in the plain structs of common.h.  conf_out.c turns
 * the structs back into text: libconfig, JSON, fingerprints.
 */
#ifndef QSCALE_CONF_INT_H
#define QSCALE_CONF_INT_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common.h"

#define CONF_MAX_FILE_SIZE	(4 * 1024 * 1024)
#define CONF_MAX_INCLUDE_DEPTH	10
#define CONF_NAME_MAX		64

/* conf_src.c: the tree of what the files say. */
enum cn_type {
	CN_GROUP,		/* libconfig group, JSON object */
	CN_LIST,		/* libconfig list or array, JSON array */
	CN_STR,
	CN_INT,
	CN_FLOAT,
	CN_BOOL,
	CN_NULL			/* JSON null */
};

struct cnode {
	char		*name;		/* member name; NULL in a list */
	enum cn_type	 type;
	char		*str;
	int64_t		 ival;		/* CN_INT, CN_BOOL */
	double		 fval;
	struct cnode	**kid;
	size_t		 nkid;
	const char	*file;		/* NULL: not from a file */
	int		 line;
};

struct ld_file {
	char		*path;		/* as named: the main file or include */
	mode_t		 mode;
	int		 secrets;	/* sets a secret key */
	const char	*secret_key;	/* the first one, for the message */
};

struct ld_err {
	size_t		 rank;		/* file order, then line */
	int		 line;
	char		*msg;
	char		*blame;		/* the file to leave out to be rid
					   of it (ignore_include_errors) */
};

/* Which node last set each key: checks across keys cite its line. */
struct ld_where {
	char			*key;
	const struct cnode	*node;
	int			 failed;	/* a value was refused */
};

/* The loader's state, for one conf_load(). */
struct conf_ld {
	const char		*path;
	struct ld_file		*files;		/* main first */
	size_t			 nfiles;
	struct ld_err		*errs;
	size_t			 nerrs;
	struct qscale_conf	*conf;		/* being built */
	struct ld_where		*wheres;
	size_t			 nwheres;
	size_t			 wheres_cap;
	struct str_index	 where_index;	/* key -> wheres[] */
	const char		*blame;		/* of the next error, if not
						   its own file */
	char			**skip;		/* included files left out */
	size_t			 nskip;
};

void		 ld_err(struct conf_ld *, const char *, int, const char *,
		    ...) __attribute__((format(printf, 4, 5)));
void		 ld_err_at(struct conf_ld *, const struct cnode *,
		    const char *, ...) __attribute__((format(printf, 3, 4)));
struct ld_file	*ld_file_of(struct conf_ld *, const char *);

struct cnode	*src_read(struct conf_ld *, const char *);
char		*read_text(const char *, size_t *, mode_t *, const char **);
char		*include_path(const char *, const char *);
struct cnode	*cnode_new(enum cn_type, const char *, const char *, int);
void		 cnode_add(struct cnode *, struct cnode *);
void		 cnode_free(struct cnode *);
const struct cnode *cnode_member(const struct cnode *, const char *);
const struct cnode *cnode_lookup(const struct cnode *, const char *);
const char	*cnode_type_name(enum cn_type);
cJSON		*cnode_to_json(const struct cnode *);
int		 json_error_line(const char *, const char *);

/* conf_keys.c: what every key is and where it lands. */
enum ck_type {
	CK_STR,
	CK_BOOL,
	CK_INT,
	CK_DUR,			/* int64_t ms */
	CK_LEVEL,		/* int, log.c's levels */
	CK_ENUM,		/* char *, one of choices */
	CK_STRLIST,		/* char **, size_t at off_n */
	CK_TAGS,		/* struct conf_kv *, size_t at off_n */
	CK_JSON			/* cJSON * object */
};

#define CK_SECRET	0x0001	/* masked, mask_register()ed */
#define CK_REQUIRED	0x0002
#define CK_APPEND	0x0004	/* joined across layers */
#define CK_NAME		0x0008	/* [A-Za-z0-9_.-]+ */
#define CK_URL		0x0010	/* http:// or https:// */
#define CK_ABSPATH	0x0020
#define CK_LISTEN	0x0040	/* host:port, "" disables */
#define CK_TOPONLY	0x0080	/* not in defaults, match, resource = {} */
#define CK_SUPONLY	0x0100	/* supervisor only: not in fingerprints */

struct conf_key {
	const char		*path;	/* "clearml.api_server" */
	enum ck_type		 type;
	const char		*def;	/* as one would write it; NULL: unset */
	int64_t			 min, max;	/* CK_INT, CK_DUR (ms) */
	size_t			 off;
	size_t			 off_n;
	int			 flags;
	const char		*env[2];	/* fallbacks, first set wins */
	const char *const	*choices;	/* CK_ENUM */
};

struct conf_alias {
	const char	*path;		/* "agent.extra_vm_bash_script" */
	const char	*to;		/* "agent.init_script" */
};

extern const struct conf_key	conf_global_keys[];
extern const size_t		conf_nglobal_keys;
extern const struct conf_key	conf_resource_keys[];
extern const size_t		conf_nresource_keys;
extern const struct conf_alias	conf_aliases[];
extern const size_t		conf_naliases;

/* How ck_apply() should record what it did. */
struct ck_where {
	const char	*show;		/* message prefix, "resource \"a\": " */
	const char	*keypfx;	/* of origin keys: "resources.gpu." */
	const char	*origin;	/* NULL: only check, record nothing */
};

const struct conf_key *ck_find(const struct conf_key *, size_t,
		    const char *);
const char	*ck_alias_of(const char *);
int		 ck_is_prefix(const struct conf_key *, size_t, const char *);
void		*ck_field(const struct conf_key *, void *);
int		 ck_apply(struct conf_ld *, const struct conf_key *,
		    const struct cnode *, void *, const struct ck_where *);
void		 ck_free(const struct conf_key *, void *);
void		 ck_free_all(const struct conf_key *, size_t, void *);
int		 ck_is_set(const struct conf_key *, const void *);
const char	*ck_suggest(const struct conf_key *, size_t, const char *,
		    const char *, const char *const *, char *, size_t);
int		 ck_name_ok(const char *);
const char	*ck_listen_check(const char *, int *);
int		 ck_tag_key_ok(const char *);
int		 ck_launch_spec_check(struct conf_ld *, const struct cnode *,
		    const cJSON *, const char *, const char *);

/* vault.c */
struct cnode	*vault_parse(struct conf_ld *, const char *, const char *);
struct cnode	*vault_read(struct conf_ld *, const char *, const char *, int);

/* config.c */
void		 conf_origin_set(struct qscale_conf *, const char *,
		    const char *, int);

/* conf_out.c */

#endif /* QSCALE_CONF_INT_H */
