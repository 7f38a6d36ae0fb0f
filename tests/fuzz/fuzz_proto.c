/*
 * fuzz_proto.c: the message framing between processes.  Whatever bytes
 * a worker process sends, the supervisor either takes a well-formed
 * message, waits for more, or refuses the stream: never a crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <event2/buffer.h>

#include "common.h"
#include "proto.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct evbuffer		*buf = evbuffer_new();
	struct proto_msg	 m;
	char			 err[160];
	int64_t			 v;

	evbuffer_add(buf, data, len);
	while (proto_unpack(buf, &m, err, sizeof(err)) == 1) {
		(void)proto_hello_check(m.body, err, sizeof(err));
		(void)proto_get_int(m.body, "id", 0, INT64_MAX, &v);
		(void)proto_get_str(m.body, "text");
		proto_msg_clear(&m);
	}
	evbuffer_free(buf);
	return 0;
}
