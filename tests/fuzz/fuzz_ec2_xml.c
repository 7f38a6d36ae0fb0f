/*
 * fuzz_ec2_xml.c: EC2's responses, of every shape: instances, terminate
 * results, console output and the four error shapes, from any bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common.h"
#include "ec2.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	const char		*body = (const char *)data;
	struct ec2_instance	*inst = NULL;
	struct ec2_term_result	*term = NULL;
	struct ec2_error	 e;
	size_t			 n = 0;
	char			*next = NULL, *text = NULL, err[256];
	long			 status = len > 0 ? 200 + data[0] % 400 : 500;

	(void)ec2_parse_error(status, body, len, &e);
	if (ec2_parse_instances(body, len, &inst, &n, &next, err,
	    sizeof(err)) == 0)
		ec2_instances_free(inst, n);
	free(next);
	n = 0;
	if (ec2_parse_terminate(body, len, &term, &n, err, sizeof(err)) == 0)
		free(term);
	if (ec2_parse_console(body, len, &text, err, sizeof(err)) == 0)
		free(text);
	return 0;
}
