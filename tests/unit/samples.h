/*
 * samples.h: the recorded EC2 exchanges the EC2 unit tests read.
 *
 * Two sets.  The tree's own, always: tests/unit/data/ec2 (index.json
 * describes every response there; record.py wrote them all, and says
 * how to write them again), found under $QSCALE_TOP, which tests/run.sh
 * exports, or else in the source tree the test was built from.  And,
 * when there is one, a reference set kept outside the tree: the
 * shared/reference/ec2-samples directory of a directory above the tree
 * (or $QSCALE_EC2_SAMPLES); the tests check it too when they find it,
 * and say in a TAP comment which sets they checked.
 */
#ifndef QSCALE_TEST_SAMPLES_H
#define QSCALE_TEST_SAMPLES_H

#include <sys/stat.h>

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#define FIXTURE_SUBDIR	"tests/unit/data/ec2"

static __attribute__((unused)) int
is_dir(const char *path)
{
	struct stat	 st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* DIR/FIXTURE_SUBDIR into buf when it holds an index.json. */
static __attribute__((unused)) int
fixture_try(const char *top, char *buf, size_t len)
{
	char	 index[PATH_MAX];
	int	 n;

	n = snprintf(buf, len, "%s/" FIXTURE_SUBDIR, top);
	if (n < 0 || (size_t)n >= len || snprintf(index, sizeof(index),
	    "%s/index.json", buf) >= (int)sizeof(index))
		return -1;
	return access(index, R_OK) == 0 ? 0 : -1;
}

/*
 * The tree's fixture directory, or NULL (and why, on stderr): under
 * $QSCALE_TOP, else beside this header (its path as the compiler saw
 * it), else in a directory above the working directory.
 */
static __attribute__((unused)) const char *
fixture_dir(void)
{
	static char	 dir[PATH_MAX];
	const char	*top;
	char		 base[PATH_MAX], *slash;
	int		 i;

	if ((top = getenv("QSCALE_TOP")) != NULL && *top != '\0' &&
	    fixture_try(top, dir, sizeof(dir)) == 0)
		return dir;
	snprintf(base, sizeof(base), "%s", __FILE__);
	if ((slash = strrchr(base, '/')) != NULL) {
		*slash = '\0';
		if (snprintf(dir, sizeof(dir), "%s/data/ec2/index.json",
		    base) < (int)sizeof(dir) && access(dir, R_OK) == 0) {
			*strrchr(dir, '/') = '\0';
			return dir;
		}
	}
	if (getcwd(base, sizeof(base)) != NULL)
		for (i = 0; i < 8; i++) {
			if (fixture_try(base, dir, sizeof(dir)) == 0)
				return dir;
			if ((slash = strrchr(base, '/')) == NULL ||
			    slash == base)
				break;
			*slash = '\0';
		}
	fprintf(stderr, "the tree's EC2 fixtures (" FIXTURE_SUBDIR
	    "/index.json) not found: run from the tree or set QSCALE_TOP\n");
	return NULL;
}

/*
 * The reference samples directory, or NULL when there is none.  A
 * $QSCALE_EC2_SAMPLES that names no directory is reported: whoever set
 * it meant those samples to be checked.
 */
static __attribute__((unused)) const char *
samples_dir(void)
{
	static char	 dir[PATH_MAX];
	const char	*env, *top;
	char		 base[PATH_MAX], *slash;
	int		 i;

	if ((env = getenv("QSCALE_EC2_SAMPLES")) != NULL && *env != '\0') {
		snprintf(dir, sizeof(dir), "%s", env);
		if (is_dir(dir))
			return dir;
		fprintf(stderr, "QSCALE_EC2_SAMPLES=%s: no such directory\n",
		    env);
		return NULL;
	}
	if ((top = getenv("QSCALE_TOP")) != NULL && *top != '\0')
		snprintf(base, sizeof(base), "%s", top);
	else if (getcwd(base, sizeof(base)) == NULL)
		return NULL;
	for (i = 0; i < 8; i++) {
		if (snprintf(dir, sizeof(dir), "%s/shared/reference/"
		    "ec2-samples", base) >= (int)sizeof(dir))
			break;
		if (is_dir(dir))
			return dir;
		if ((slash = strrchr(base, '/')) == NULL || slash == base)
			break;
		*slash = '\0';
	}
	return NULL;
}

/* The whole file DIR/NAME, NUL-terminated, or NULL (and why, on stderr). */
static __attribute__((unused)) char *
read_whole(const char *dir, const char *name, size_t *lenp)
{
	char	 path[PATH_MAX], *buf;
	FILE	*f;
	long	 n;

	if (dir == NULL)
		return NULL;
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    (int)sizeof(path) || (f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "%s/%s: cannot open\n", dir, name);
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) == -1 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) == -1) {
		fclose(f);
		return NULL;
	}
	buf = malloc((size_t)n + 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "%s: cannot read\n", path);
		free(buf);
		fclose(f);
		return NULL;
	}
	buf[n] = '\0';
	fclose(f);
	if (lenp != NULL)
		*lenp = (size_t)n;
	return buf;
}

/* A file of the tree's fixtures. */
static __attribute__((unused)) char *
fixture_read(const char *name, size_t *lenp)
{
	return read_whole(fixture_dir(), name, lenp);
}

/* A file of the reference samples. */
static __attribute__((unused)) char *
sample_read(const char *name, size_t *lenp)
{
	return read_whole(samples_dir(), name, lenp);
}

/* index.json of the tree's fixtures, parsed; cJSON_Delete() it. */
static __attribute__((unused)) cJSON *
fixture_index(void)
{
	char	*text = fixture_read("index.json", NULL);
	cJSON	*root;

	if (text == NULL)
		return NULL;
	root = cJSON_Parse(text);
	free(text);
	if (root == NULL || !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(
	    root, "responses"))) {
		fprintf(stderr, "index.json: not an index of responses\n");
		cJSON_Delete(root);
		return NULL;
	}
	return root;
}

static __attribute__((unused)) const char *
fx_str(const cJSON *o, const char *key)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static __attribute__((unused)) long
fx_int(const cJSON *o, const char *key)
{
	const cJSON	*v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(v) ? (long)v->valuedouble : -1;
}

/* The index entry of response file NAME, or NULL. */
static __attribute__((unused)) const cJSON *
fixture_entry(const cJSON *index, const char *name)
{
	const cJSON	*e;

	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(index,
	    "responses")) {
		const char *f = fx_str(e, "file");

		if (f != NULL && strcmp(f, name) == 0)
			return e;
	}
	return NULL;
}

/*
 * The value of KEY in a form-encoded body, decoded, or NULL.  Decoding
 * here, apart from the code under test, is the point.
 */
static __attribute__((unused)) char *
form_value(const char *body, const char *key)
{
	size_t		 klen = strlen(key), i = 0;
	const char	*p = body, *v;
	char		*out;
	unsigned int	 x;

	for (;;) {
		if (strncmp(p, key, klen) == 0 && p[klen] == '=')
			break;
		if ((p = strchr(p, '&')) == NULL)
			return NULL;
		p++;
	}
	v = p + klen + 1;
	out = malloc(strcspn(v, "&\r\n") + 1);
	if (out == NULL)
		return NULL;
	for (; *v != '\0' && *v != '&' && *v != '\r' && *v != '\n'; v++) {
		if (*v == '+')
			out[i++] = ' ';
		else if (*v == '%' && isxdigit((unsigned char)v[1]) &&
		    isxdigit((unsigned char)v[2]) &&
		    sscanf(v + 1, "%2x", &x) == 1) {
			out[i++] = (char)x;
			v += 2;
		} else
			out[i++] = *v;
	}
	out[i] = '\0';
	return out;
}

/* Says which sets a test checked: the tree's, and the reference's too? */
static __attribute__((unused)) void
sets_checked(const char *test, int reference)
{
	printf("# %s: checked the tree's fixtures (" FIXTURE_SUBDIR ")%s%s%s\n",
	    test, reference ? " and the reference samples (" : "",
	    reference ? samples_dir() : "", reference ? ")" :
	    "; no reference samples found, those are not checked");
	fflush(stdout);
}

/*
 * The response of a recorded exchange of the reference set (NAME.http):
 * its status and a pointer to its body inside the file's text, which
 * *whole gets.
 */
static __attribute__((unused)) const char *
sample_http_response(const char *name, long *status, char **whole)
{
	char	*text, *resp, *body;
	size_t	 n;

	*whole = NULL;
	if ((text = sample_read(name, NULL)) == NULL)
		return NULL;
	if ((resp = strstr(text, "----- RESPONSE -----")) == NULL ||
	    (resp = strstr(resp, "HTTP/1.")) == NULL ||
	    sscanf(resp, "HTTP/1.%*d %ld", status) != 1 ||
	    (body = strstr(resp, "\r\n\r\n")) == NULL) {
		free(text);
		return NULL;
	}
	body += 4;
	n = strlen(body);
	while (n > 0 && (body[n - 1] == '\n' || body[n - 1] == '\r'))
		body[--n] = '\0';
	*whole = text;
	return body;
}

/* The value of response header NAME (lower case) in a recorded exchange. */
static __attribute__((unused)) int
sample_http_header(const char *text, const char *name, char *out, size_t len)
{
	const char	*resp = strstr(text, "----- RESPONSE -----"), *p;
	size_t		 n = strlen(name), k;

	if (resp == NULL)
		return -1;
	for (p = resp; (p = strchr(p, '\n')) != NULL; ) {
		p++;
		if (*p == '\n' || *p == '\r')
			break;
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			p += n + 1;
			while (*p == ' ')
				p++;
			k = strcspn(p, "\r\n");
			snprintf(out, len, "%.*s", (int)k, p);
			return 0;
		}
	}
	return -1;
}

#endif /* QSCALE_TEST_SAMPLES_H */
