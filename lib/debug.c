/* Debug messages and the call tracing emitted by the generated entry points. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void
emit (struct nbd_handle *h, const char *msg)
{
  const char *context = nbd_internal_get_error_context ();
  int saved_errno = errno;

  if (h->debug_callback.callback) {
    /* A callback like the others: calls that wait are refused there. */
    h->in_callback++;
    h->debug_callback.callback (h->debug_callback.user_data, context, msg);
    h->in_callback--;
  }
  else
    fprintf (stderr, "libnbd: debug: %s: %s: %s\n",
             h->hname ? h->hname : "nbd", context, msg);
  errno = saved_errno;
}

void
nbd_internal_debug (struct nbd_handle *h, const char *fmt, ...)
{
  char buf[1024];
  va_list ap;

  if (!h->debug)
    return;
  va_start (ap, fmt);
  vsnprintf (buf, sizeof buf, fmt, ap);
  va_end (ap);
  emit (h, buf);
}

void
nbd_internal_debug_string (struct nbd_handle *h, const char *prefix,
                           const char *s)
{
  char *p = nbd_internal_printable_string (s);
  nbd_internal_debug (h, "%s%s", prefix, p ? p : "(null)");
  free (p);
}

void
nbd_internal_trace_start (struct nbd_trace *t)
{
  t->len = 0;
  t->buf[0] = 0;
}

void
nbd_internal_trace_add (struct nbd_trace *t, const char *fmt, ...)
{
  va_list ap;
  int n;

  if (t->len + 2 >= sizeof t->buf)
    return;
  t->buf[t->len++] = ' ';
  va_start (ap, fmt);
  n = vsnprintf (t->buf + t->len, sizeof t->buf - t->len, fmt, ap);
  va_end (ap);
  if (n > 0)
    t->len += (size_t) n;
  if (t->len >= sizeof t->buf)
    t->len = sizeof t->buf - 1;
}

void
nbd_internal_trace_add_string (struct nbd_trace *t, const char *name,
                               const char *s)
{
  char *p = nbd_internal_printable_string (s);
  nbd_internal_trace_add (t, "%s=%s", name, p ? p : "(null)");
  free (p);
}

void
nbd_internal_trace_add_list (struct nbd_trace *t, const char *name,
                             char **list)
{
  nbd_internal_trace_add (t, "%s=[", name);
  for (size_t i = 0; list && list[i]; i++) {
    char *p = nbd_internal_printable_string (list[i]);
    nbd_internal_trace_add (t, "%s", p ? p : "");
    free (p);
  }
  nbd_internal_trace_add (t, "]");
}

void
nbd_internal_trace_finish (struct nbd_handle *h, struct nbd_trace *t,
                           const char *what)
{
  nbd_internal_debug (h, "%s%s", what, t->buf);
}
