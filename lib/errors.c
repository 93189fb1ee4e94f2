/* Thread-local error state: the last error of each thread survives calls
 * made by other threads on the same handle.
 */
#include <config.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct last_error {
  char *msg;                    /* malloc'd, or `fallback` */
  int errnum;
  const char *context;          /* name of the public call in progress */
  /* Where the message goes when there is no memory to format it: a
   * failed allocation must still be explained, if shortened.
   */
  char fallback[256];
  /* Set by a blocking call that returns with the handle lock already
   * given up (wait.c: its command was completed and retired by another
   * thread); the generated entry point then does not unlock.
   */
  bool lock_released;
};

static void
free_msg (struct last_error *e)
{
  if (e->msg != e->fallback)
    free (e->msg);
  e->msg = NULL;
}

static pthread_key_t error_key;
static pthread_once_t error_once = PTHREAD_ONCE_INIT;

static void
free_last_error (void *p)
{
  struct last_error *e = p;
  if (e) {
    free_msg (e);
    free (e);
  }
}

static void
make_key (void)
{
  pthread_key_create (&error_key, free_last_error);
}

static struct last_error *
get_last_error (void)
{
  struct last_error *e;

  pthread_once (&error_once, make_key);
  e = pthread_getspecific (error_key);
  if (!e) {
    e = calloc (1, sizeof *e);
    if (!e)
      return NULL;
    if (pthread_setspecific (error_key, e) != 0) {
      free (e);
      return NULL;
    }
  }
  return e;
}

/* Unload: destroy the key so a dlclose'd library leaves no destructor. */
__attribute__ ((destructor))
static void
errors_unload (void)
{
  struct last_error *e;

  if (pthread_once (&error_once, make_key) != 0)
    return;
  e = pthread_getspecific (error_key);
  free_last_error (e);
  pthread_setspecific (error_key, NULL);
  pthread_key_delete (error_key);
}

void
nbd_internal_set_error_context (const char *context)
{
  struct last_error *e = get_last_error ();
  if (e)
    e->context = context;
}

/* Public calls can nest (a callback may call the API): each entry point
 * names itself and puts the caller's name back on the way out, so errors
 * set after a nested call still carry the right name.
 */
const char *
nbd_internal_enter_context (const char *context)
{
  struct last_error *e = get_last_error ();
  const char *previous = NULL;

  if (e) {
    previous = e->context;
    e->context = context;
  }
  return previous;
}

void
nbd_internal_leave_context (const char *previous)
{
  struct last_error *e = pthread_getspecific (error_key);
  if (e)
    e->context = previous;
}

const char *
nbd_internal_get_error_context (void)
{
  struct last_error *e = get_last_error ();
  return e && e->context ? e->context : "libnbd";
}

void
nbd_internal_set_error (int errnum, const char *fmt, ...)
{
  struct last_error *e = get_last_error ();
  va_list ap;
  char *body = NULL, *msg = NULL;
  int saved_errno = errno;
  const char *context;

  if (!e)
    return;
  context = e->context ? e->context : "libnbd";
  va_start (ap, fmt);
  if (vasprintf (&body, fmt, ap) == -1)
    body = NULL;
  va_end (ap);
  if (body && asprintf (&msg, "%s: %s", context, body) == -1)
    msg = NULL;
  free (body);
  if (!msg) {
    /* Formatted before the old message goes: it may be an argument. */
    char fallback[sizeof e->fallback];
    int n = snprintf (fallback, sizeof fallback, "%s: ", context);
    va_start (ap, fmt);
    if (n >= 0 && (size_t) n < sizeof fallback)
      vsnprintf (fallback + n, sizeof fallback - (size_t) n, fmt, ap);
    va_end (ap);
    free_msg (e);
    memcpy (e->fallback, fallback, sizeof fallback);
    msg = e->fallback;
  }
  else
    free_msg (e);
  e->msg = msg;
  e->errnum = errnum;
  errno = saved_errno;
}

bool
nbd_internal_note_lock_released (void)
{
  struct last_error *e = get_last_error ();
  if (!e)
    return false;
  e->lock_released = true;
  return true;
}

bool
nbd_internal_take_lock_released (void)
{
  struct last_error *e = get_last_error ();
  if (!e || !e->lock_released)
    return false;
  e->lock_released = false;
  return true;
}

/* The current thread's last message without its "context: " prefix. */
const char *
nbd_internal_get_error_body (void)
{
  struct last_error *e = get_last_error ();
  const char *colon;

  if (!e || !e->msg)
    return NULL;
  colon = strstr (e->msg, ": ");
  return colon ? colon + 2 : e->msg;
}

const char *
nbd_get_error (void)
{
  struct last_error *e = get_last_error ();
  return e ? e->msg : NULL;
}

int
nbd_get_errno (void)
{
  struct last_error *e = get_last_error ();
  return e ? e->errnum : 0;
}
