/*
 * samples.h: finds and reads the recorded EC2 samples at test time.
 * They live outside the tree, in shared/reference/ec2-samples of a
 * directory above it; QSCALE_EC2_SAMPLES names the directory directly.
 */
#ifndef QSCALE_TEST_SAMPLES_H
#define QSCALE_TEST_SAMPLES_H

#include <sys/stat.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* The samples directory, or NULL (with a message on stderr). */
static __attribute__((unused)) const char *
samples_dir(void)
{
	static char	 dir[PATH_MAX];
	struct stat	 st;
	const char	*env, *top;
	char		 base[PATH_MAX], *slash;
	int		 i;

	if ((env = getenv("QSCALE_EC2_SAMPLES")) != NULL && *env != '\0') {
		snprintf(dir, sizeof(dir), "%s", env);
		return dir;
	}
	if ((top = getenv("QSCALE_TOP")) != NULL && *top != '\0')
		snprintf(base, sizeof(base), "%s", top);
	else if (getcwd(base, sizeof(base)) == NULL)
		return NULL;
	for (i = 0; i < 8; i++) {
		if (snprintf(dir, sizeof(dir), "%s/shared/reference/"
		    "ec2-samples", base) >= (int)sizeof(dir))
			break;
		if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
			return dir;
		if ((slash = strrchr(base, '/')) == NULL || slash == base)
			break;
		*slash = '\0';
	}
	fprintf(stderr, "ec2 samples not found: set QSCALE_EC2_SAMPLES to "
	    "the shared/reference/ec2-samples directory\n");
	return NULL;
}

/* The whole file NAME of the samples directory, NUL-terminated. */
static __attribute__((unused)) char *
sample_read(const char *name, size_t *lenp)
{
	const char	*dir = samples_dir();
	char		 path[PATH_MAX], *buf;
	FILE		*f;
	long		 n;

	if (dir == NULL)
		return NULL;
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    (int)sizeof(path) || (f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "%s: cannot open\n", path);
		return NULL;
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
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

/*
 * The response of a recorded exchange (NAME.http): its status and a
 * pointer to its body inside the file's text, which *whole gets.
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
