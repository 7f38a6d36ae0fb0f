/*
 * fuzz_config.c: any configuration file, in the libconfig and the JSON
 * form: either a configuration or errors that each name FILE:LINE, never
 * a crash.
 */
#include <sys/stat.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char	 dir[64];

static void
load_one(const char *path, const uint8_t *data, size_t len)
{
	struct conf_errors	 errs = { NULL, 0 };
	struct qscale_conf	*conf;
	FILE			*fp;
	size_t			 i;

	if ((fp = fopen(path, "w")) == NULL)
		return;
	fwrite(data, 1, len, fp);
	fclose(fp);
	chmod(path, 0600);
	if ((conf = conf_load(path, &errs)) != NULL) {
		free(conf_print(conf, 0));
		cJSON_Delete(conf_to_json(conf, 1));
		conf_free(conf);
	}
	for (i = 0; i < errs.n; i++)
		if (strncmp(errs.msg[i], dir, strlen(dir)) != 0)
			abort();	/* every error names its file */
	conf_errors_clear(&errs);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	if (dir[0] == '\0') {
		snprintf(dir, sizeof(dir), "/tmp/qscale-fuzz.XXXXXX");
		if (mkdtemp(dir) == NULL)
			abort();
		log_init("fuzz", LOG_LVL_ERROR, 0);
	}
	{
		char a[96], b[96];

		snprintf(a, sizeof(a), "%s/f.conf", dir);
		snprintf(b, sizeof(b), "%s/f.json", dir);
		load_one(a, data, len);
		load_one(b, data, len);
	}
	return 0;
}
