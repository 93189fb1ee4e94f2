/* Small helpers with no better home. */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int
nbd_internal_string_vector_append (struct string_vector *v, const char *s)
{
  char *copy;

  if (v->len + 1 >= v->cap) {
    size_t cap = v->cap ? v->cap * 2 : 8;
    char **p = realloc (v->ptr, cap * sizeof *p);
    if (!p)
      return -1;
    v->ptr = p;
    v->cap = cap;
  }
  copy = strdup (s);
  if (!copy)
    return -1;
  v->ptr[v->len++] = copy;
  v->ptr[v->len] = NULL;
  return 0;
}

size_t
nbd_internal_string_vector_size (const struct string_vector *v)
{
  size_t n = v->cap * sizeof v->ptr[0];
  for (size_t i = 0; i < v->len; i++)
    n += strlen (v->ptr[i]) + 1;
  return n;
}

void
nbd_internal_string_vector_clear (struct string_vector *v)
{
  for (size_t i = 0; i < v->len; i++)
    free (v->ptr[i]);
  v->len = 0;
  if (v->ptr)
    v->ptr[0] = NULL;
}

/* Quote a string for debug output, escaping control characters and
 * cutting very long strings short.
 */
char *
nbd_internal_printable_string (const char *s)
{
  size_t n, out = 0, max = 256;
  char *r;

  if (!s)
    return strdup ("(null)");
  n = strlen (s);
  r = malloc ((n < max ? n : max) * 4 + 8);
  if (!r)
    return NULL;
  r[out++] = '"';
  for (size_t i = 0; i < n && i < max; i++) {
    unsigned char c = s[i];
    if (c < 32 || c == 127 || c == '"' || c == '\\')
      out += (size_t) sprintf (r + out, "\\x%02x", c);
    else
      r[out++] = (char) c;
  }
  r[out++] = '"';
  if (n > max) {
    memcpy (r + out, "...", 3);
    out += 3;
  }
  r[out] = 0;
  return r;
}
