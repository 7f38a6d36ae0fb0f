/*
 * userdata-gen: prints the startup script qscale gives the instances of
 * one resource, for the tests that run it in a sandbox.
 *
 *   userdata-gen -c CONF -r RESOURCE
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "worker.h"

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: userdata-gen -c CONF -r RESOURCE\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct conf_errors		 errs = { NULL, 0 };
	struct qscale_conf		*conf;
	const struct conf_resource	*res;
	const char			*file = NULL, *name = NULL;
	char				 err[1024], *s;
	size_t				 i;
	int				 ch;

	while ((ch = getopt(argc, argv, "c:r:")) != -1) {
		if (ch == 'c')
			file = optarg;
		else if (ch == 'r')
			name = optarg;
		else
			usage();
	}
	if (file == NULL || name == NULL || optind != argc)
		usage();
	if ((conf = conf_load(file, &errs)) == NULL) {
		for (i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msg[i]);
		conf_errors_clear(&errs);
		return 1;
	}
	if ((res = conf_resource_find(conf, name)) == NULL) {
		fprintf(stderr, "%s: no resource '%s'\n", file, name);
		conf_free(conf);
		return 1;
	}
	s = userdata_build(conf, (size_t)(res - conf->resources), err,
	    sizeof(err));
	if (s == NULL) {
		fprintf(stderr, "%s: %s\n", file, err);
		conf_free(conf);
		return 1;
	}
	fputs(s, stdout);
	freezero_str(s);
	conf_free(conf);
	return 0;
}
