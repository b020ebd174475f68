/*
 * wasock.h: write wasock WebSocket plugins in C (contract wasock:plugin@0.2.0).
 *
 * Define the handlers you need (every one has a do-nothing default in
 * wasock.c), call back into the host with the ws_* functions, and build with
 * the bindings `wasock-c bindings` generates (plugin.h, plugin.c,
 * plugin_component_type.o) plus wasock.c; `wasock-c component` turns the
 * core module into the component. See plugins/echo-c for the whole recipe.
 *
 * Handles: on_connected gets an owned session; keep it to write later (for
 * broadcasting) and ws_drop it when done, or ws_drop it at once. Other
 * handlers get a borrowed session that is valid only during the call; the
 * generated code releases it when the handler returns (no manual drop).
 * Strings and byte buffers passed to handlers are freed after the handler
 * returns: copy what you keep. Text is UTF-8 and NUL-terminated.
 *
 * Session ids are never 0, so 0 means "none" wherever an id is optional.
 */
#ifndef WASOCK_H
#define WASOCK_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "plugin.h"

/* An owned handle to a session (from on_connected, ws_from_id or restore). */
typedef wasock_plugin_types_own_session_t ws_session;
/* A borrowed handle: valid until the handler returns. */
typedef wasock_plugin_types_borrow_session_t ws_session_ref;
/* What became of a write: WS_QUEUED, WS_CLOSED or WS_QUEUE_FULL. */
typedef wasock_plugin_types_send_status_t ws_status;
#define WS_QUEUED WASOCK_PLUGIN_TYPES_SEND_STATUS_QUEUED
#define WS_CLOSED WASOCK_PLUGIN_TYPES_SEND_STATUS_CLOSED
#define WS_QUEUE_FULL WASOCK_PLUGIN_TYPES_SEND_STATUS_QUEUE_FULL
/* What became of ws_subscribe. */
typedef wasock_plugin_types_subscribe_status_t ws_subscribed;
#define WS_JOINED WASOCK_PLUGIN_TYPES_SUBSCRIBE_STATUS_JOINED
#define WS_ALREADY_JOINED WASOCK_PLUGIN_TYPES_SUBSCRIBE_STATUS_ALREADY_JOINED

/* Handlers: define the ones you need. */
void ws_on_connected(ws_session session);
void ws_handle_text(ws_session_ref session, const char *text, size_t len);
void ws_handle_binary(ws_session_ref session, const uint8_t *data, size_t len);
void ws_on_pong(ws_session_ref session, const uint8_t *data, size_t len);
/* A write returned WS_QUEUE_FULL and the queue has room again. */
void ws_on_drain(ws_session_ref session);
void ws_on_disconnected(ws_session_ref session);
/* A fresh instance takes over live sessions (owned: keep or ws_drop each;
 * the default drops them). `state` is the old version's snapshot, or NULL. */
void ws_on_restore(ws_session *sessions, size_t count, const uint8_t *state, size_t state_len);

/* The upgrade hook (optional): decide who connects, before the handshake.
 * The answer starts as "accept, nothing else"; change it with the
 * ws_accept_* and ws_reject functions. */
typedef exports_wasock_plugin_upgrade_request_t ws_request;
typedef exports_wasock_plugin_upgrade_decision_t ws_answer;
void ws_on_upgrade(const ws_request *request, ws_answer *answer);
/* The first value of query parameter `name` (not decoded), NUL-terminated
 * into `out`; false if absent or longer than `size - 1`. */
bool ws_query_param(const ws_request *request, const char *name, char *out, size_t size);
/* Whether the client offered subprotocol `protocol`. */
bool ws_offers(const ws_request *request, const char *protocol);
void ws_accept_protocol(ws_answer *answer, const char *protocol);
void ws_accept_attachment(ws_answer *answer, const uint8_t *data, size_t len);
void ws_accept_topic(ws_answer *answer, const char *topic);
void ws_reject(ws_answer *answer, uint16_t status, const char *body);

/* Handles. */
ws_session_ref ws_borrow(ws_session session);
void ws_drop(ws_session session);
/* An owned handle to a live session of this instance; false if none. */
bool ws_from_id(uint64_t id, ws_session *out);
uint64_t ws_id(ws_session_ref session);
bool ws_is_open(ws_session_ref session);
/* Bytes queued for the client and not yet written. */
uint64_t ws_buffered_amount(ws_session_ref session);

/* Writes: queued at once, never block. */
ws_status ws_write_text(ws_session_ref session, const char *text);
ws_status ws_write_text_n(ws_session_ref session, const char *text, size_t len);
ws_status ws_write_textf(ws_session_ref session, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
ws_status ws_write_data(ws_session_ref session, const uint8_t *data, size_t len);
void ws_close(ws_session_ref session);
void ws_close_with(ws_session_ref session, uint16_t code, const char *reason);

/* The whole endpoint, and topics: the host fans out in one call. `except`
 * is a session id, or 0 for none. */
void ws_broadcast_text(const char *text, uint64_t except);
void ws_broadcast_data(const uint8_t *data, size_t len, uint64_t except);
ws_subscribed ws_subscribe(ws_session_ref session, const char *topic);
bool ws_unsubscribe(ws_session_ref session, const char *topic);
void ws_publish_text(const char *topic, const char *text, uint64_t except);
uint32_t ws_topic_size(const char *topic);

#endif
