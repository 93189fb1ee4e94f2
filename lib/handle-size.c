/* nbd_get_handle_size: an estimate of the memory a handle holds.
 *
 * Bindings with a garbage collector use it to weigh how much memory an
 * unreachable handle keeps alive, so it counts what the handle allocated
 * and owns, at the sizes requested from malloc: the handle, its strings,
 * buffers, command records and meta contexts.  Buffers owned by the
 * caller, GnuTLS's session state and allocator overhead are left out.
 */
#include <config.h>

#include <netdb.h>
#include <string.h>

#include "internal.h"

static size_t
string_size (const char *s)
{
  return s ? strlen (s) + 1 : 0;
}

static size_t
command_size (const struct command *cmd)
{
  return sizeof *cmd + cmd->payload_len
    + cmd->nr_ranges * sizeof cmd->ranges[0];
}

static size_t
commands_size (struct nbd_handle *h)
{
  const size_t buckets = sizeof h->cmd_table / sizeof h->cmd_table[0];
  size_t n = 0;

  /* Not yet completed: all in the cookie table (the unsent ones are also
   * on the to_send queue, which links the same records).
   */
  for (size_t b = 0; b < buckets; b++)
    for (const struct command *c = h->cmd_table[b]; c; c = c->hnext)
      n += command_size (c);
  /* Completed, waiting to be retired. */
  for (const struct command *c = h->done_head; c; c = c->next)
    n += command_size (c);
  /* Kept for reuse. */
  for (const struct command *c = h->free_cmds; c; c = c->next)
    n += sizeof *c;
  return n;
}

static size_t
meta_contexts_size (struct nbd_handle *h)
{
  size_t n = nbd_internal_string_vector_size (&h->request_meta_contexts);

  n += h->nr_meta_contexts * sizeof h->meta_contexts[0];
  for (size_t i = 0; i < h->nr_meta_contexts; i++)
    n += string_size (h->meta_contexts[i].name);
  return n;
}

static size_t
addresses_size (struct nbd_handle *h)
{
  size_t n = 0;

  for (const struct addrinfo *ai = h->addrs; ai; ai = ai->ai_next)
    n += sizeof *ai + ai->ai_addrlen + string_size (ai->ai_canonname);
  return n;
}

ssize_t
nbd_unlocked_get_handle_size (struct nbd_handle *h)
{
  size_t n = sizeof *h;
  const char *strings[] = {
    h->hname, h->export_name, h->tls_certificates, h->tls_username,
    h->tls_psk_file, h->tls_hostname, h->tls_priority, h->tls_connect_host,
    h->tls_connect_port, h->sact_name, h->uri, h->canonical_name,
    h->description, h->sact_tmpdir, h->sact_sockpath, h->dead_msg,
  };

  for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
    n += string_size (strings[i]);
  n += meta_contexts_size (h);
  n += commands_size (h);
  n += nbd_internal_handshake_size (h);
  n += addresses_size (h);
  n += h->rbuf ? h->rbuf_cap : 0;
  n += h->scratch_ext_cap * sizeof h->scratch_ext[0];
  n += h->scratch_pairs_cap * sizeof h->scratch_pairs[0];
  return (ssize_t) n;
}
