#include <config.h>
#include "internal.h"
unsigned nbd_internal_public_state (struct nbd_handle *h) { (void) h; return PUBLIC_CREATED; }
bool nbd_internal_state_allows (struct nbd_handle *h, unsigned mask, const char *text) { (void)h;(void)mask;(void)text; return true; }
void nbd_internal_close_socket (struct nbd_handle *h) { (void) h; }
void nbd_internal_handshake_free (struct nbd_handle *h) { (void) h; }
void nbd_internal_subprocess_reap (struct nbd_handle *h) { (void) h; }
void nbd_internal_clear_meta_contexts (struct nbd_handle *h) { (void) h; }
void nbd_internal_free_commands (struct nbd_handle *h) { (void) h; }
