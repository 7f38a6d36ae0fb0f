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

/*
 * A worker process's messages waiting for a supervisor that does not
 * read.  What is in flight (the socket and the bufferevent's output) is
 * kept small; the rest waits here, bounded: a new state snapshot
 * replaces the one waiting (only the newest matters), and past max bytes
 * the oldest log lines that may go are dropped, debug ones first.
 * Launch requests, events and log lines about actions are never
 * dropped.  What was dropped is counted until the caller reports it.
 */
enum proto_outq_class {
	OUTQ_KEEP = 0,		/* hello, launch request, event, action */
	OUTQ_SNAPSHOT,		/* state: only the newest is kept */
	OUTQ_LOG,		/* a log line that may go */
	OUTQ_DEBUG		/* a debug line: the first to go */
};

struct proto_outq_msg;

struct proto_outq {
	struct proto_outq_msg	*head, *tail;
	size_t			 n;
	size_t			 bytes;	/* waiting, framed */
	size_t			 max;
	uint64_t		 dropped_snapshots;	/* unreported */
	uint64_t		 dropped_logs;
};

/* proto.c */
const char	*proto_type_name(uint32_t);
void		 proto_outq_init(struct proto_outq *, size_t);
int		 proto_outq_push(struct proto_outq *, uint32_t, uint32_t,
		    enum proto_outq_class, const cJSON *);
size_t		 proto_outq_flush(struct proto_outq *, struct evbuffer *,
		    size_t);
void		 proto_outq_clear(struct proto_outq *);
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
