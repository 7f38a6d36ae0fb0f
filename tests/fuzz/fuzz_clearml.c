/*
 * fuzz_clearml.c: ClearML's answers: the envelope from any bytes and any
 * status, then the data read as a queue, workers and tasks, and any
 * string read as a JWT.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "clearml.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct cml_error	 e;
	struct cml_queue	 q;
	struct cml_worker	*w = NULL;
	struct cml_task		*t = NULL;
	struct cml_jwt		 jwt;
	cJSON			*d = NULL;
	size_t			 n = 0;
	char			 err[256], *s;
	long			 status = len > 0 ? 200 + data[0] % 400 : 200;

	memset(&e, 0, sizeof(e));
	if (cml_parse_envelope(status, (const char *)data, len, "fuzz.test",
	    &d, &e) == 0 && d != NULL) {
		memset(&q, 0, sizeof(q));
		if (cml_parse_queue(d, &q, err, sizeof(err)) == 0)
			cml_queue_clear(&q);
		if (cml_parse_workers(d, &w, &n, err, sizeof(err)) == 0)
			cml_workers_free(w, n);
		n = 0;
		if (cml_parse_tasks(d, &t, &n, err, sizeof(err)) == 0)
			cml_tasks_free(t, n);
		cJSON_Delete(d);
	}
	s = xstrndup((const char *)data, len);
	(void)cml_jwt_parse(s, &jwt, err, sizeof(err));
	free(s);
	return 0;
}
