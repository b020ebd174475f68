/*
 * wasock.c: the glue between the generated bindings and the ws_* API in
 * wasock.h: do-nothing default handlers, NUL-terminated text for handlers,
 * arguments freed after the call, short names for the host calls, and
 * line-buffered stdout so printf lines reach the server log as written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "wasock.h"

__attribute__((weak)) void ws_on_connected(ws_session session) { ws_drop(session); }
__attribute__((weak)) void ws_handle_text(ws_session_ref s, const char *t, size_t n) { (void)s, (void)t, (void)n; }
__attribute__((weak)) void ws_handle_binary(ws_session_ref s, const uint8_t *d, size_t n) { (void)s, (void)d, (void)n; }
__attribute__((weak)) void ws_on_pong(ws_session_ref s, const uint8_t *d, size_t n) { (void)s, (void)d, (void)n; }
__attribute__((weak)) void ws_on_disconnected(ws_session_ref s) { (void)s; }

__attribute__((constructor)) static void wasock_init(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
}

void exports_wasock_plugin_handler_on_connected(exports_wasock_plugin_handler_own_session_t session) {
  ws_on_connected(session);
}

void exports_wasock_plugin_handler_handle_text(exports_wasock_plugin_handler_borrow_session_t session, plugin_string_t *text) {
  /* Grown by one byte for the NUL. An empty string's pointer is not an
   * allocation (the canonical ABI passes a dangling one): never realloc it. */
  size_t len = text->len;
  char *s = len > 0 ? realloc(text->ptr, len + 1) : malloc(1);
  if (s == NULL) abort();
  s[len] = '\0';
  ws_handle_text(session, s, len);
  free(s);
}

void exports_wasock_plugin_handler_handle_binary(exports_wasock_plugin_handler_borrow_session_t session, plugin_list_u8_t *data) {
  ws_handle_binary(session, data->ptr, data->len);
  plugin_list_u8_free(data);
}

void exports_wasock_plugin_handler_on_pong(exports_wasock_plugin_handler_borrow_session_t session, plugin_list_u8_t *data) {
  ws_on_pong(session, data->ptr, data->len);
  plugin_list_u8_free(data);
}

void exports_wasock_plugin_handler_on_disconnected(exports_wasock_plugin_handler_borrow_session_t session) {
  ws_on_disconnected(session);
}

ws_session_ref ws_borrow(ws_session session) { return wasock_plugin_types_borrow_session(session); }
void ws_drop(ws_session session) { wasock_plugin_types_session_drop_own(session); }
int ws_open(uint64_t id, ws_session *out) { return wasock_plugin_types_static_session_open(id, out); }
uint64_t ws_id(ws_session_ref session) { return wasock_plugin_types_method_session_id(session); }
int ws_is_open(ws_session_ref session) { return wasock_plugin_types_method_session_is_open(session); }

ws_status ws_write_text_n(ws_session_ref session, const char *text, size_t len) {
  plugin_string_t s = { (uint8_t *)text, len };
  return wasock_plugin_types_method_session_write_text(session, &s);
}

ws_status ws_write_text(ws_session_ref session, const char *text) {
  return ws_write_text_n(session, text, strlen(text));
}

ws_status ws_write_textf(ws_session_ref session, const char *format, ...) {
  va_list args;
  va_start(args, format);
  int len = vsnprintf(NULL, 0, format, args);
  va_end(args);
  if (len < 0) abort();
  char *buf = malloc((size_t)len + 1);
  if (buf == NULL) abort();
  va_start(args, format);
  vsnprintf(buf, (size_t)len + 1, format, args);
  va_end(args);
  ws_status status = ws_write_text_n(session, buf, (size_t)len);
  free(buf);
  return status;
}

ws_status ws_write_data(ws_session_ref session, const uint8_t *data, size_t len) {
  plugin_list_u8_t d = { (uint8_t *)data, len };
  return wasock_plugin_types_method_session_write_data(session, &d);
}

void ws_close(ws_session_ref session) { wasock_plugin_types_method_session_close(session); }

void ws_close_with(ws_session_ref session, uint16_t code, const char *reason) {
  plugin_string_t r = { (uint8_t *)reason, strlen(reason) };
  wasock_plugin_types_method_session_close_with(session, code, &r);
}

uint32_t ws_broadcast_text(const char *text, uint64_t except) {
  plugin_string_t s = { (uint8_t *)text, strlen(text) };
  return wasock_plugin_endpoint_broadcast_text(&s, except ? &except : NULL);
}

uint32_t ws_broadcast_data(const uint8_t *data, size_t len, uint64_t except) {
  plugin_list_u8_t d = { (uint8_t *)data, len };
  return wasock_plugin_endpoint_broadcast_data(&d, except ? &except : NULL);
}
