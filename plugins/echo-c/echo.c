/* The seed's writeText example in C: a welcome on connect, and every text
 * message answered with "You said: " and the text. */
#include <stdio.h>
#include "wasock.h"

void ws_on_connected(ws_session session) {
  ws_write_text(ws_borrow(session), "Welcome to the chat room!");
  ws_drop(session);
}

void ws_handle_text(ws_session_ref session, const char *text, size_t len) {
  printf("Client says: %s\n", text);
  ws_write_textf(session, "You said: %.*s", (int)len, text);
}
