/*
 * fuzz_vault.c: any text as the vault file of a valid configuration
 * (vault_file = "..."): either a configuration or errors that each name
 * FILE:LINE, never a crash, never a leak.
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

static char	 dir[64], main_conf[96], vault[96];

static void
setup(void)
{
	FILE	*fp;

	snprintf(dir, sizeof(dir), "/tmp/qscale-fuzz.XXXXXX");
	if (mkdtemp(dir) == NULL)
		abort();
	log_init("fuzz", LOG_LVL_ERROR, 0);
	snprintf(main_conf, sizeof(main_conf), "%s/main.conf", dir);
	snprintf(vault, sizeof(vault), "%s/vault.hocon", dir);
	if ((fp = fopen(main_conf, "w")) == NULL)
		abort();
	fputs("clearml = { api_server = \"http://127.0.0.1:8008\"; "
	    "access_key = \"AK\"; secret_key = \"SK\"; };\n"
	    "workers_prefix = \"aws_test\";\n"
	    "vault_file = \"vault.hocon\";\n"
	    "resources = ( { name = \"gpu\"; queue = \"gpu\"; "
	    "instance_type = \"t3.micro\"; ami = \"ami-1\"; } );\n", fp);
	fclose(fp);
	chmod(main_conf, 0600);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct conf_errors	 errs = { NULL, 0 };
	struct qscale_conf	*conf;
	FILE			*fp;
	size_t			 i;

	if (dir[0] == '\0')
		setup();
	if ((fp = fopen(vault, "w")) == NULL)
		return 0;
	fwrite(data, 1, len, fp);
	fclose(fp);
	chmod(vault, 0600);
	if ((conf = conf_load(main_conf, &errs)) != NULL) {
		free(conf_print(conf, 0));
		conf_free(conf);
	}
	for (i = 0; i < errs.n; i++)
		if (strncmp(errs.msg[i], dir, strlen(dir)) != 0)
			abort();	/* every error names its file */
	conf_errors_clear(&errs);
	return 0;
}
