/*
 * wasock.c: the glue between the generated bindings and the ws_* API in
 * wasock.h: do-nothing default handlers and hooks (the upgrade hook
 * accepts, restore drops the handles, snapshot is empty), NUL-terminated
 * text for handlers, arguments freed after the call, short names for the
 * host calls, and line-buffered stdout so printf lines reach the server
 * log as written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "wasock.h"

__attribute__((weak)) void ws_on_connected(ws_session session) { ws_drop(session); }
__attribute__((weak)) void ws_handle_text(ws_session_ref s, const char *t, size_t n) { (void)s, (void)t, (void)n; }
__attribute__((weak)) void ws_handle_binary(ws_session_ref s, const uint8_t *d, size_t n) { (void)s, (void)d, (void)n; }
__attribute__((weak)) void ws_on_pong(ws_session_ref s, const uint8_t *d, size_t n) { (void)s, (void)d, (void)n; }
__attribute__((weak)) void ws_on_drain(ws_session_ref s) { (void)s; }
__attribute__((weak)) void ws_on_disconnected(ws_session_ref s) { (void)s; }
__attribute__((weak)) void ws_on_restore(ws_session *sessions, size_t count, const uint8_t *state, size_t len) {
  (void)state, (void)len;
  for (size_t i = 0; i < count; i++) ws_drop(sessions[i]);
}
__attribute__((weak)) void ws_on_upgrade(const ws_request *request, ws_answer *answer) { (void)request, (void)answer; }

/* A heap copy of `text`: what the host gets back is freed after the call. */
static plugin_string_t owned_string(const char *text) {
  size_t len = strlen(text);
  uint8_t *copy = malloc(len > 0 ? len : 1);
  if (copy == NULL) abort();
  memcpy(copy, text, len);
  return (plugin_string_t){ copy, len };
}

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

void exports_wasock_plugin_handler_on_drain(exports_wasock_plugin_handler_borrow_session_t session) {
  ws_on_drain(session);
}

void exports_wasock_plugin_handler_on_disconnected(exports_wasock_plugin_handler_borrow_session_t session) {
  ws_on_disconnected(session);
}

void exports_wasock_plugin_lifecycle_restore(exports_wasock_plugin_lifecycle_list_own_session_t *sessions, plugin_list_u8_t *state) {
  ws_on_restore(sessions->ptr, sessions->len, state ? state->ptr : NULL, state ? state->len : 0);
  free(sessions->ptr); /* the handles are the plugin's now */
  if (state) plugin_list_u8_free(state);
}

void exports_wasock_plugin_lifecycle_snapshot(plugin_list_u8_t *ret) {
  ret->ptr = NULL;
  ret->len = 0;
}

void exports_wasock_plugin_upgrade_on_upgrade(exports_wasock_plugin_upgrade_request_t *request, exports_wasock_plugin_upgrade_decision_t *ret) {
  memset(ret, 0, sizeof *ret);
  ret->tag = EXPORTS_WASOCK_PLUGIN_UPGRADE_DECISION_ACCEPT;
  ws_on_upgrade(request, ret);
  exports_wasock_plugin_upgrade_request_free(request);
}

static bool same(const plugin_string_t *s, const char *text, size_t len) {
  return s->len == len && memcmp(s->ptr, text, len) == 0;
}

bool ws_query_param(const ws_request *request, const char *name, char *out, size_t size) {
  if (!request->query.is_some) return false;
  const char *q = (const char *)request->query.val.ptr, *end = q + request->query.val.len;
  size_t name_len = strlen(name);
  while (q < end) {
    const char *amp = memchr(q, '&', (size_t)(end - q));
    const char *stop = amp ? amp : end;
    const char *eq = memchr(q, '=', (size_t)(stop - q));
    const char *key_end = eq ? eq : stop;
    if ((size_t)(key_end - q) == name_len && memcmp(q, name, name_len) == 0) {
      const char *value = eq ? eq + 1 : stop;
      size_t len = (size_t)(stop - value);
      if (len + 1 > size) return false;
      memcpy(out, value, len);
      out[len] = '\0';
      return true;
    }
    q = stop + 1;
  }
  return false;
}

bool ws_offers(const ws_request *request, const char *protocol) {
  for (size_t i = 0; i < request->protocols.len; i++)
    if (same(&request->protocols.ptr[i], protocol, strlen(protocol))) return true;
  return false;
}

void ws_accept_protocol(ws_answer *answer, const char *protocol) {
  if (answer->tag != EXPORTS_WASOCK_PLUGIN_UPGRADE_DECISION_ACCEPT) return;
  if (answer->val.accept.protocol.is_some) plugin_string_free(&answer->val.accept.protocol.val);
  answer->val.accept.protocol.is_some = true;
  answer->val.accept.protocol.val = owned_string(protocol);
}

void ws_accept_attachment(ws_answer *answer, const uint8_t *data, size_t len) {
  if (answer->tag != EXPORTS_WASOCK_PLUGIN_UPGRADE_DECISION_ACCEPT) return;
  if (answer->val.accept.attachment.is_some) plugin_list_u8_free(&answer->val.accept.attachment.val);
  uint8_t *copy = malloc(len > 0 ? len : 1);
  if (copy == NULL) abort();
  memcpy(copy, data, len);
  answer->val.accept.attachment.is_some = true;
  answer->val.accept.attachment.val = (plugin_list_u8_t){ copy, len };
}

void ws_accept_topic(ws_answer *answer, const char *topic) {
  if (answer->tag != EXPORTS_WASOCK_PLUGIN_UPGRADE_DECISION_ACCEPT) return;
  plugin_list_string_t *topics = &answer->val.accept.topics;
  plugin_string_t *grown = realloc(topics->ptr, (topics->len + 1) * sizeof *grown);
  if (grown == NULL) abort();
  grown[topics->len++] = owned_string(topic);
  topics->ptr = grown;
}

void ws_reject(ws_answer *answer, uint16_t status, const char *body) {
  exports_wasock_plugin_upgrade_decision_free(answer);
  memset(answer, 0, sizeof *answer);
  answer->tag = EXPORTS_WASOCK_PLUGIN_UPGRADE_DECISION_REJECT;
  answer->val.reject.status = status;
  answer->val.reject.body = owned_string(body);
}

ws_session_ref ws_borrow(ws_session session) { return wasock_plugin_types_borrow_session(session); }
void ws_drop(ws_session session) { wasock_plugin_types_session_drop_own(session); }
bool ws_from_id(uint64_t id, ws_session *out) { return wasock_plugin_types_static_session_from_id(id, out); }
uint64_t ws_id(ws_session_ref session) { return wasock_plugin_types_method_session_id(session); }
bool ws_is_open(ws_session_ref session) { return wasock_plugin_types_method_session_is_open(session); }
uint64_t ws_buffered_amount(ws_session_ref session) { return wasock_plugin_types_method_session_buffered_amount(session); }

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

void ws_broadcast_text(const char *text, uint64_t except) {
  plugin_string_t s = { (uint8_t *)text, strlen(text) };
  if (except) wasock_plugin_endpoint_broadcast_text_except(&s, except);
  else wasock_plugin_endpoint_broadcast_text(&s);
}

void ws_broadcast_data(const uint8_t *data, size_t len, uint64_t except) {
  plugin_list_u8_t d = { (uint8_t *)data, len };
  if (except) wasock_plugin_endpoint_broadcast_data_except(&d, except);
  else wasock_plugin_endpoint_broadcast_data(&d);
}

ws_subscribed ws_subscribe(ws_session_ref session, const char *topic) {
  plugin_string_t t = { (uint8_t *)topic, strlen(topic) };
  return wasock_plugin_types_method_session_subscribe(session, &t);
}

bool ws_unsubscribe(ws_session_ref session, const char *topic) {
  plugin_string_t t = { (uint8_t *)topic, strlen(topic) };
  return wasock_plugin_types_method_session_unsubscribe(session, &t);
}

void ws_publish_text(const char *topic, const char *text, uint64_t except) {
  plugin_string_t t = { (uint8_t *)topic, strlen(topic) }, s = { (uint8_t *)text, strlen(text) };
  if (except) wasock_plugin_topics_publish_text_except(&t, &s, except);
  else wasock_plugin_topics_publish_text(&t, &s);
}

uint32_t ws_topic_size(const char *topic) {
  plugin_string_t t = { (uint8_t *)topic, strlen(topic) };
  return wasock_plugin_topics_size(&t);
}
