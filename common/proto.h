/*
 * proto.h: the messages between the supervisor and its worker processes,
 * one per resource, over a socketpair.
 *
 * Each message is a fixed header followed by a JSON object of hdr.len
 * bytes.  Receivers check the length against PROTO_MAX_PAYLOAD before
 * reading, the type against the list below, and every field of the
 * payload before using it.  A malformed message from a worker process
 * ends that process, never the supervisor.  Bump PROTO_VERSION whenever
 * a message or a field changes meaning.
 */
#ifndef QSCALE_PROTO_H
#define QSCALE_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define PROTO_VERSION		2
#define PROTO_MAX_PAYLOAD	(4 * 1024 * 1024)

/* A worker process exiting with this code is not respawned before a
 * reload: it has a configuration it cannot run with. */
#define PROTO_EXIT_NORESPAWN	2

struct proto_hdr {
	uint32_t	type;
	uint32_t	len;		/* payload bytes after the header */
	uint32_t	resource;	/* index in the configuration */
	uint32_t	pid;		/* sender */
};

enum proto_type {
	/* worker process -> supervisor */
	MSG_HELLO = 1,		/* {version, resource} */
	MSG_LOG,		/* {level, ts, text} */
	MSG_STATE,		/* snapshot after each poll, see worker.h */
	MSG_EVENT,		/* {event, ...}: launched, terminated, ... */
	MSG_LAUNCH_REQ,		/* {id, want, live} */

	/* supervisor -> worker process */
	MSG_WELCOME = 32,	/* {version} */
	MSG_LAUNCH_GRANT,	/* {id, granted} */
	MSG_BLACKOUT,		/* {active, until, resource, reason} */
	MSG_LOG_LEVEL,		/* {level} */
	MSG_STOP,		/* {} finish the call in flight and exit */
	MSG_DUPLICATE,		/* {task, workers[]} (informational) */
};

struct proto_msg {
	struct proto_hdr	 hdr;
	cJSON			*body;	/* always an object */
};

struct evbuffer;

/* proto.c */
const char	*proto_type_name(uint32_t);
int		 proto_type_valid(uint32_t);
int		 proto_pack(struct evbuffer *, uint32_t, uint32_t, const cJSON *);
int		 proto_unpack(struct evbuffer *, struct proto_msg *, char *,
		    size_t);
void		 proto_msg_clear(struct proto_msg *);
int		 proto_get_int(const cJSON *, const char *, int64_t, int64_t,
		    int64_t *);
const char	*proto_get_str(const cJSON *, const char *);
int		 proto_hello_check(const cJSON *, char *, size_t);

#endif /* QSCALE_PROTO_H */
