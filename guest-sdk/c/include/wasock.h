/*
 * wasock.h: write wasock WebSocket plugins in C.
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
 */
#ifndef WASOCK_H
#define WASOCK_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include "plugin.h"

/* An owned handle to a session (from on_connected or ws_open). */
typedef wasock_plugin_types_own_session_t ws_session;
/* A borrowed handle: valid until the handler returns. */
typedef wasock_plugin_types_borrow_session_t ws_session_ref;
/* What became of a write: WS_QUEUED, WS_CLOSED or WS_QUEUE_FULL. */
typedef wasock_plugin_types_send_status_t ws_status;
#define WS_QUEUED WASOCK_PLUGIN_TYPES_SEND_STATUS_QUEUED
#define WS_CLOSED WASOCK_PLUGIN_TYPES_SEND_STATUS_CLOSED
#define WS_QUEUE_FULL WASOCK_PLUGIN_TYPES_SEND_STATUS_QUEUE_FULL

/* Handlers: define the ones you need. */
void ws_on_connected(ws_session session);
void ws_handle_text(ws_session_ref session, const char *text, size_t len);
void ws_handle_binary(ws_session_ref session, const uint8_t *data, size_t len);
void ws_on_pong(ws_session_ref session, const uint8_t *data, size_t len);
void ws_on_disconnected(ws_session_ref session);

/* Handles. */
ws_session_ref ws_borrow(ws_session session);
void ws_drop(ws_session session);
/* Opens an owned handle to a live session of this endpoint; 0 if none. */
int ws_open(uint64_t id, ws_session *out);
uint64_t ws_id(ws_session_ref session);
int ws_is_open(ws_session_ref session);

/* Writes: queued at once, never block. */
ws_status ws_write_text(ws_session_ref session, const char *text);
ws_status ws_write_text_n(ws_session_ref session, const char *text, size_t len);
ws_status ws_write_textf(ws_session_ref session, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
ws_status ws_write_data(ws_session_ref session, const uint8_t *data, size_t len);
void ws_close(ws_session_ref session);
void ws_close_with(ws_session_ref session, uint16_t code, const char *reason);

/* The whole endpoint: the host fans out in one call; returns how many
 * sessions it was queued to. `except` 0 means none. */
uint32_t ws_broadcast_text(const char *text, uint64_t except);
uint32_t ws_broadcast_data(const uint8_t *data, size_t len, uint64_t except);

#endif
