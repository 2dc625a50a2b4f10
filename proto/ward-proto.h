/*
 * ward-proto.h: the numbers and names of ward's control protocol, shared by
 * wardd and its clients. proto/PROTOCOL.md is the specification; this header
 * only spells it for C. Names and codes are append-only: a retired one stays
 * here, commented, so it is never reused with another meaning.
 */
#ifndef WARD_PROTO_H
#define WARD_PROTO_H

/* Bumped when a change is not backwards compatible. */
#define WARD_PROTOCOL_VERSION	1

/* msgpack-RPC message types (first element of every message). */
#define WARD_MSG_REQUEST	0
#define WARD_MSG_RESPONSE	1
#define WARD_MSG_NOTIFY		2

/* Limits wardd enforces on every request. */
#define WARD_MAX_REQUEST	(1024 * 1024)	/* bytes in one message */
#define WARD_MAX_DEPTH		16		/* nesting of arrays and maps */
#define WARD_MAX_ELEMENTS	65536		/* objects in one message */

/* Methods. */
#define WARD_M_HELLO		"ward.hello"
#define WARD_M_STATS		"ward.stats"
#define WARD_M_SHUTDOWN		"ward.shutdown"
#define WARD_M_CREATE		"instance.create"
#define WARD_M_START		"instance.start"
#define WARD_M_RUN		"instance.run"
#define WARD_M_STATUS		"instance.status"
#define WARD_M_LIST		"instance.list"
#define WARD_M_KILL		"instance.kill"
#define WARD_M_STOP		"instance.stop"
#define WARD_M_SUSPEND		"instance.suspend"
#define WARD_M_RESUME		"instance.resume"
#define WARD_M_PAYLOAD		"instance.payload"
#define WARD_M_REMOVE		"instance.remove"
#define WARD_M_HISTORY		"instance.history"
#define WARD_M_SUBSCRIBE	"events.subscribe"
#define WARD_M_UNSUBSCRIBE	"events.unsubscribe"
#define WARD_M_REREAD		"ward.reread"
#define WARD_M_UPDATE		"ward.update"
#define WARD_M_RELOAD		"ward.reload"
#define WARD_M_LOG		"instance.log"
#define WARD_M_LOGROTATE	"ward.logrotate"
#define WARD_M_FDS		"ward.fds"
#define WARD_M_REEXEC		"ward.reexec"
#define WARD_M_PIDFD		"instance.pidfd"
#define WARD_M_METRICS		"ward.metrics"
#define WARD_M_CALL		"instance.call"	/* relayed to the payload */
#define WARD_M_CLEAR_LOG	"instance.clear_log"
#define WARD_M_MAINTAIL		"ward.maintail"

/* Notifications sent by wardd. */
#define WARD_N_EVENT		"ward.event"
#define WARD_N_ERROR		"ward.error"
#define WARD_N_LOG		"ward.log"	/* instance.log follow */

/* Error codes: the `code` of an error map. */
#define WARD_E_NOT_FOUND	"not_found"
#define WARD_E_INVALID_ARGUMENT	"invalid_argument"
#define WARD_E_INVALID_STATE	"invalid_state"
#define WARD_E_EXISTS		"exists"
#define WARD_E_PERMISSION	"permission_denied"
#define WARD_E_TOO_LARGE	"too_large"
#define WARD_E_NO_SUCH_METHOD	"no_such_method"
#define WARD_E_INTERNAL		"internal"
#define WARD_E_SPAWN_FAILED	"spawn_failed"
#define WARD_E_BUSY		"busy"
#define WARD_E_PROTOCOL		"protocol_error"
#define WARD_E_RESOURCE_EXHAUSTED "resource_exhausted"
#define WARD_E_UNSUPPORTED_PROTOCOL "unsupported_protocol"
#define WARD_E_UNSUPPORTED	"unsupported"	/* e.g. a missing cgroup controller */
/* No answer in time (instance.call, a suspend's freeze); instance.call's:
 * no channel to ask, a reply that was no msgpack-RPC response (or too
 * large), the payload's own error. */
#define WARD_E_TIMEOUT		"timeout"
#define WARD_E_UNAVAILABLE	"unavailable"
#define WARD_E_BAD_RESPONSE	"bad_response"
#define WARD_E_CALL_FAILED	"call_failed"

/* Event types: the `type` of an event map. */
#define WARD_EV_CREATED		"created"
#define WARD_EV_STARTED		"started"
#define WARD_EV_PAYLOAD		"payload"
#define WARD_EV_METRICS		"metrics"
#define WARD_EV_DIED		"died"
#define WARD_EV_REMOVED		"removed"
#define WARD_EV_OVERFLOW	"overflow"
#define WARD_EV_RESTARTING	"restarting"
#define WARD_EV_FATAL		"fatal"

/* Environment given to every instance. */
#define WARD_ENV_FAILURE_FD	"WARD_FAILURE_FD"
#define WARD_ENV_NOTIFY_FD	"WARD_NOTIFY_FD"
#define WARD_ENV_RUNTIME_DIR	"WARD_RUNTIME_DIR"
#define WARD_ENV_INSTANCE_ID	"WARD_INSTANCE_ID"
#define WARD_ENV_INSTANCE_NAME	"WARD_INSTANCE_NAME"
#define WARD_ENV_CONTROL_SOCKET	"WARD_CONTROL_SOCKET"	/* control: true */
#define WARD_FAILURE_FD		3
#define WARD_NOTIFY_FD		4

#endif
