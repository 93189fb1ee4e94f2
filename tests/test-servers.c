/* Handshakes with other servers and with servers that fail:
 *  - qemu-nbd (qcow2 image): export name, size, flags, block sizes,
 *    description, meta contexts (base:allocation, qemu:allocation-depth),
 *    nbd_opt_list;
 *  - nbd-server (unix socket from a config file): size, flags, read;
 *  - nbdkit killed with SIGKILL while connected, idle and with a command
 *    in flight: the command fails, nothing hangs, the handle ends dead;
 *  - a fake server in a thread that sends the first N bytes of a valid
 *    handshake and closes: connect fails, the handle is dead.
 * Each part skips itself if its server is missing; the whole test skips
 * (77) if none is installed.
 */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include <libnbd.h>

#include "hs-helpers.h"

static int skipped_parts, run_parts;

static int
ctx_cb (void *opaque, const char *name)
{
  int *n = opaque;
  (void) name;
  (*n)++;
  return 0;
}

static int
list_cb (void *opaque, const char *name, const char *desc)
{
  int *found = opaque;
  (void) desc;
  if (strcmp (name, "NAME") == 0)
    (*found)++;
  return 0;
}

/* ---- qemu-nbd ---- */

static void
test_qemu_nbd (void)
{
  struct server s;
  char dir[] = "/tmp/libnbd-qemu-XXXXXX", img[128], cmd[512];
  const char *argv[] = { "qemu-nbd", "-k", "$SOCK", "-x", "NAME",
    "--persistent", "-D", "qemu desc", "-A", "-f", "qcow2",
    "-t", img, NULL };
  struct nbd_handle *h;
  char *str;
  int n, found;

  if (!have_program ("qemu-nbd") || !have_program ("qemu-img")
      || !have_program ("qemu-io")) {
    fprintf (stderr, "qemu-nbd or qemu-img missing: skipping that part\n");
    skipped_parts++;
    return;
  }
  run_parts++;
  if (!mkdtemp (dir)) { perror ("mkdtemp"); failures++; return; }
  snprintf (img, sizeof img, "%s/disk.qcow2", dir);
  snprintf (cmd, sizeof cmd,
            "qemu-img create -q -f qcow2 '%s' 64M && "
            "qemu-io -f qcow2 -c 'write -P 0x55 0 64k' '%s' >/dev/null",
            img, img);
  if (system (cmd) != 0) {
    fprintf (stderr, "FAIL: %s\n", cmd);
    failures++;
    return;
  }
  /* No --pid-file: qemu-nbd stays in the foreground and server.h kills
   * the child by PID.
   */
  if (server_start (&s, argv) == -1 || server_wait_accepting (&s) == -1) {
    fprintf (stderr, "FAIL: could not start qemu-nbd\n");
    failures++;
    goto out;
  }

  h = new_handle ();
  CHECK_EQ (nbd_set_export_name (h, "NAME"), 0);
  CHECK_EQ (nbd_set_full_info (h, true), 0);
  CHECK_EQ (nbd_add_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 0);
  CHECK_EQ (nbd_add_meta_context (h, "qemu:allocation-depth"), 0);
  CHECK_EQ (nbd_add_meta_context (h, "qemu:dirty-bitmap:nosuch"), 0);
  if (connect_or_fail (h, s.sock, "qemu-nbd") == 0) {
    char buf[4096];
    CHECK_STREQ (nbd_get_protocol (h), "newstyle-fixed");
    CHECK_EQ (nbd_get_size (h), 64 * 1024 * 1024);
    CHECK_EQ (nbd_get_structured_replies_negotiated (h), 1);
    CHECK_EQ (nbd_is_read_only (h), 0);
    CHECK_EQ (nbd_can_flush (h), 1);
    CHECK_EQ (nbd_can_fua (h), 1);
    CHECK_EQ (nbd_can_trim (h), 1);
    CHECK_EQ (nbd_can_zero (h), 1);
    CHECK_EQ (nbd_can_fast_zero (h), 1);
    CHECK_EQ (nbd_can_df (h), 1);
    CHECK_EQ (nbd_can_cache (h), 1);
    CHECK_EQ (nbd_is_rotational (h), 0);
    CHECK_EQ (nbd_can_meta_context (h, LIBNBD_CONTEXT_BASE_ALLOCATION), 1);
    CHECK_EQ (nbd_can_meta_context (h, "qemu:allocation-depth"), 1);
    CHECK_EQ (nbd_can_meta_context (h, "qemu:dirty-bitmap:nosuch"), 0);
    CHECK_EQ (nbd_get_block_size (h, LIBNBD_SIZE_MINIMUM), 1);
    CHECK_EQ (nbd_get_block_size (h, LIBNBD_SIZE_PREFERRED), 4096);
    CHECK_EQ (nbd_get_block_size (h, LIBNBD_SIZE_MAXIMUM), 32 * 1024 * 1024);
    str = nbd_get_export_description (h);
    CHECK_STREQ (str, "qemu desc");
    free (str);
    str = nbd_get_canonical_export_name (h);
    CHECK_STREQ (str, "NAME");
    free (str);
    CHECK_EQ (nbd_pread (h, buf, sizeof buf, 0, 0), 0);
    CHECK (buf[0] == 0x55 && buf[4095] == 0x55, "data: %02x", buf[0]);
    CHECK_EQ (nbd_shutdown (h, 0), 0);
  }
  nbd_close (h);

  /* Opt mode: list shows NAME; list and set meta contexts. */
  h = new_handle ();
  CHECK_EQ (nbd_set_opt_mode (h, true), 0);
  if (connect_or_fail (h, s.sock, "qemu-nbd opt mode") == 0) {
    found = 0;
    CHECK_EQ (nbd_opt_list (h, (nbd_list_callback) { .callback = list_cb,
                                                     .user_data = &found }), 1);
    CHECK_EQ (found, 1);
    CHECK_EQ (nbd_set_export_name (h, "NAME"), 0);
#ifdef LIBNBD_HAVE_NBD_OPT_LIST_META_CONTEXT_QUERIES
    {
      char *q[] = { "qemu:", NULL };
      n = 0;
      /* qemu:allocation-depth (and no bitmaps). */
      CHECK_EQ (nbd_opt_list_meta_context_queries (h, q,
                  (nbd_context_callback) { .callback = ctx_cb,
                                           .user_data = &n }), 1);
      CHECK_EQ (n, 1);
    }
#endif
    n = 0;
    /* Empty list: everything, base:allocation and allocation-depth. */
    CHECK_EQ (nbd_opt_list_meta_context (h, (nbd_context_callback) {
          .callback = ctx_cb, .user_data = &n }), 2);
    CHECK_EQ (n, 2);
    CHECK_EQ (nbd_opt_info (h), 0);
    CHECK_EQ (nbd_get_size (h), 64 * 1024 * 1024);
    CHECK_EQ (nbd_set_export_name (h, "nosuch"), 0);
    CHECK_FAILS (nbd_opt_go (h), ENOENT, "nbd_opt_go", NULL);
    CHECK_EQ (nbd_aio_is_negotiating (h), 1);
    CHECK_EQ (nbd_set_export_name (h, "NAME"), 0);
    CHECK_EQ (nbd_opt_go (h), 0);
    CHECK_EQ (nbd_aio_is_ready (h), 1);
  }
  nbd_close (h);
  server_stop (&s);
 out:
  snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system (cmd) != 0) fprintf (stderr, "could not remove %s\n", dir);
}

/* ---- nbd-server ---- */

static void
test_nbd_server (void)
{
  char dir[] = "/tmp/libnbd-nbdsrv-XXXXXX", conf[128], img[128], cmd[512];
  char sockpath[128];
  char pidfile[128], cmd2[512];
  pid_t pid = 0;
  struct nbd_handle *h;
  FILE *fp;
  int i;

  if (!have_program ("nbd-server")) {
    fprintf (stderr, "nbd-server missing: skipping that part\n");
    skipped_parts++;
    return;
  }
  run_parts++;
  if (!mkdtemp (dir)) { perror ("mkdtemp"); failures++; return; }
  snprintf (conf, sizeof conf, "%s/config", dir);
  snprintf (img, sizeof img, "%s/disk.img", dir);
  snprintf (cmd, sizeof cmd,
            "truncate -s 2M '%s' && printf 'hello nbd-server' | "
            "dd of='%s' bs=1 seek=4096 conv=notrunc 2>/dev/null", img, img);
  if (system (cmd) != 0) { failures++; goto out; }

  /* The config names the socket, so it lives in our own directory and
   * the server is started by hand rather than through server.h.
   */
  snprintf (sockpath, sizeof sockpath, "%s/sock", dir);
  snprintf (pidfile, sizeof pidfile, "%s/pid", dir);
  snprintf (cmd2, sizeof cmd2, "nbd-server -C '%s' -p '%s' 2>/dev/null",
            conf, pidfile);
  fp = fopen (conf, "w");
  if (!fp) { perror (conf); failures++; goto out; }
  fprintf (fp, "[generic]\nunixsock = %s\nallowlist = true\n"
           "[disk]\nexportname = %s\n[ro]\nexportname = %s\nreadonly = true\n",
           sockpath, img, img);
  fclose (fp);

  /* nbd-server daemonizes (with -d it would serve one client only):
   * wait for the socket and the pid file.
   */
  if (system (cmd2) != 0) {
    fprintf (stderr, "FAIL: %s\n", cmd2);
    failures++;
    goto out;
  }
  for (i = 0; i < 500; i++) {
    long p = 0;
    fp = fopen (pidfile, "r");
    if (fp) {
      if (fscanf (fp, "%ld", &p) != 1) p = 0;
      fclose (fp);
    }
    if (p > 0 && access (sockpath, F_OK) == 0) {
      pid = (pid_t) p;
      break;
    }
    usleep (20000);
  }
  if (pid <= 0 || socket_wait_accepting (sockpath) == -1) {
    fprintf (stderr, "FAIL: nbd-server did not start\n");
    failures++;
    goto out;
  }

  h = new_handle ();
  CHECK_EQ (nbd_set_export_name (h, "disk"), 0);
  if (connect_or_fail (h, sockpath, "nbd-server") == 0) {
    char buf[16];
    CHECK_STREQ (nbd_get_protocol (h), "newstyle-fixed");
    CHECK_EQ (nbd_get_size (h), 2 * 1024 * 1024);
    CHECK_EQ (nbd_is_read_only (h), 0);
    CHECK_EQ (nbd_pread (h, buf, sizeof buf, 4096, 0), 0);
    CHECK (memcmp (buf, "hello nbd-server", 16) == 0, "data read back wrong");
    CHECK_EQ (nbd_pwrite (h, "HELLO", 5, 4096, 0), 0);
    CHECK_EQ (nbd_pread (h, buf, 5, 4096, 0), 0);
    CHECK (memcmp (buf, "HELLO", 5) == 0, "write not read back");
    CHECK_EQ (nbd_shutdown (h, 0), 0);
  }
  nbd_close (h);

  h = new_handle ();
  CHECK_EQ (nbd_set_export_name (h, "ro"), 0);
  if (connect_or_fail (h, sockpath, "nbd-server ro") == 0) {
    CHECK_EQ (nbd_is_read_only (h), 1);
    CHECK_FAILS (nbd_pwrite (h, "x", 1, 0, 0), EPERM, "nbd_pwrite", NULL);
  }
  nbd_close (h);

  h = new_handle ();
  CHECK_EQ (nbd_set_export_name (h, "nosuch"), 0);
  CHECK_EQ (nbd_connect_unix (h, sockpath), -1);
  CHECK (nbd_get_errno () != 0, "no errno for an unknown nbd-server export");
  CHECK_EQ (nbd_aio_is_dead (h), 1);
  nbd_close (h);

  kill (pid, SIGTERM);
  for (i = 0; i < 100 && kill (pid, 0) == 0; i++)
    usleep (20000);
 out:
  snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system (cmd) != 0) fprintf (stderr, "could not remove %s\n", dir);
}

/* ---- nbdkit killed ---- */

struct completion_data { int calls, error, frees; };

static int
completion_cb (void *opaque, int *error)
{
  struct completion_data *d = opaque;
  d->calls++;
  d->error = *error;
  return 0;
}

static void
completion_free (void *opaque)
{
  struct completion_data *d = opaque;
  d->frees++;
}

static void
test_server_killed (void)
{
  struct server s;
  struct nbd_handle *h;
  char buf[512];
  int64_t cookie;
  struct completion_data c = { 0 };
  int i, r;

  if (!have_program ("nbdkit")) {
    skipped_parts++;
    return;
  }
  run_parts++;

  /* Idle connection; server killed; the next command fails. */
  if (start_nbdkit (&s, "memory", "1M", NULL) == -1) {
    failures++;
    return;
  }
  h = new_handle ();
  if (connect_or_fail (h, s.sock, "to be killed") == 0) {
    kill (s.pid, SIGKILL);
    waitpid (s.pid, NULL, 0);
    s.pid = 0;
    r = nbd_pread (h, buf, sizeof buf, 0, 0);
    CHECK (r == -1, "pread after SIGKILL returned %d", r);
    CHECK (nbd_get_errno () != 0, "no errno: %s", nbd_get_error ());
    CHECK (nbd_get_error () && strncmp (nbd_get_error (), "nbd_pread: ", 11) == 0,
           "message: %s", nbd_get_error ());
    CHECK (nbd_aio_is_dead (h) || nbd_aio_is_closed (h),
           "state after server death: %s", nbd_connection_state (h));
    CHECK_FAILS (nbd_pread (h, buf, sizeof buf, 0, 0), EINVAL, "nbd_pread",
                 NULL);
  }
  nbd_close (h);
  server_stop (&s);

  /* Command in flight (reads delayed 10s); server killed: the command
   * fails with ENOTCONN and its callbacks run once.
   */
  if (start_nbdkit (&s, "--filter=delay", "memory", "1M", "rdelay=10",
                    NULL) == -1) {
    failures++;
    return;
  }
  h = new_handle ();
  if (connect_or_fail (h, s.sock, "in flight") == 0) {
    cookie = nbd_aio_pread (h, buf, sizeof buf, 0,
                            (nbd_completion_callback) {
                              .callback = completion_cb, .user_data = &c,
                              .free = completion_free }, 0);
    CHECK (cookie > 0, "aio_pread: %s", nbd_get_error ());
    /* Make sure it is sent. */
    for (i = 0; i < 10 && (nbd_aio_get_direction (h) & LIBNBD_AIO_DIRECTION_WRITE); i++)
      nbd_poll (h, 100);
    nbd_poll (h, 200);
    kill (s.pid, SIGKILL);
    waitpid (s.pid, NULL, 0);
    s.pid = 0;
    for (i = 0; i < 100 && nbd_aio_command_completed (h, cookie) == 0
           && !nbd_aio_is_dead (h); i++)
      if (nbd_poll (h, 1000) == -1)
        break;
    CHECK (nbd_aio_is_dead (h) || nbd_aio_is_closed (h),
           "state: %s", nbd_connection_state (h));
    CHECK_EQ (c.calls, 1);
    CHECK_EQ (c.error, ENOTCONN);
    CHECK_EQ (nbd_aio_in_flight (h), 0);
  }
  /* .free runs at retirement: by nbd_aio_command_completed above, or at
   * the latest by nbd_close.
   */
  nbd_close (h);
  CHECK_EQ (c.frees, 1);
  CHECK_EQ (c.frees, 1);
  server_stop (&s);
}

/* ---- Fake server closing during the handshake ---- */

struct fake {
  int fd;
  const char *data;
  size_t len;
  bool abrupt;                  /* close at once, no draining */
};

static void *
fake_server (void *arg)
{
  struct fake *f = arg;
  char buf[4096];
  size_t done = 0;

  while (done < f->len) {
    ssize_t r = write (f->fd, f->data + done, f->len - done);
    if (r <= 0) break;
    done += (size_t) r;
  }
  if (!f->abrupt) {
    shutdown (f->fd, SHUT_WR);
    while (read (f->fd, buf, sizeof buf) > 0)
      ;
  }
  close (f->fd);
  return NULL;
}

static void
put64 (char *p, uint64_t v)
{
  for (int i = 7; i >= 0; i--) { p[i] = (char) (v & 0xff); v >>= 8; }
}
static void
put32 (char *p, uint32_t v)
{
  for (int i = 3; i >= 0; i--) { p[i] = (char) (v & 0xff); v >>= 8; }
}
static void
put16 (char *p, uint16_t v)
{
  p[0] = (char) (v >> 8); p[1] = (char) (v & 0xff);
}

/* Run one fake connection; returns the connect result.  On success,
 * check (if not NULL) runs on the connected handle before it is closed.
 */
static int
run_fake (const char *data, size_t len, bool abrupt, bool newstyle_opts,
          void (*check) (struct nbd_handle *h))
{
  int sv[2], r;
  pthread_t t;
  struct fake f;
  struct nbd_handle *h = new_handle ();

  if (socketpair (AF_UNIX, SOCK_STREAM, 0, sv) == -1) {
    perror ("socketpair");
    exit (EXIT_FAILURE);
  }
  if (newstyle_opts) {
    CHECK_EQ (nbd_set_request_structured_replies (h, false), 0);
#ifdef LIBNBD_HAVE_NBD_SET_REQUEST_EXTENDED_HEADERS
    CHECK_EQ (nbd_set_request_extended_headers (h, false), 0);
#endif
    CHECK_EQ (nbd_set_request_block_size (h, false), 0);
  }
  f.fd = sv[1];
  f.data = data;
  f.len = len;
  f.abrupt = abrupt;
  if (pthread_create (&t, NULL, fake_server, &f) != 0) {
    perror ("pthread_create");
    exit (EXIT_FAILURE);
  }
  r = nbd_connect_socket (h, sv[0]);
  if (r == 0 && check)
    check (h);
  if (r == -1) {
    /* (An end of stream carries no errno, as in libnbd: a message must
     * say what happened.)
     */
    CHECK (nbd_get_error () != NULL, "len %zu: no message", len);
    CHECK (nbd_get_error () != NULL
           && strncmp (nbd_get_error (), "nbd_connect_socket: ", 20) == 0,
           "len %zu: message: %s", len, nbd_get_error ());
    CHECK (nbd_aio_is_dead (h), "len %zu: not dead after a failed connect: %s",
           len, nbd_connection_state (h));
  }
  /* Closing the handle closes sv[0], which ends the fake server. */
  nbd_close (h);
  pthread_join (t, NULL);
  return r;
}

static void
check_fake_newstyle (struct nbd_handle *h)
{
  CHECK_STREQ (nbd_get_protocol (h), "newstyle-fixed");
  CHECK_EQ (nbd_get_size (h), 1048576);
  CHECK_EQ (nbd_can_flush (h), 1);
  CHECK_EQ (nbd_can_trim (h), 0);
}

static void
check_fake_oldstyle (struct nbd_handle *h)
{
  CHECK_STREQ (nbd_get_protocol (h), "oldstyle");
  CHECK_EQ (nbd_get_size (h), 2 * 1048576);
  CHECK_EQ (nbd_can_flush (h), 1);
}

static void
test_fake_server (void)
{
  /* Fixed newstyle, no options but GO: 18 bytes of greeting, then the
   * replies to NBD_OPT_GO: NBD_REP_INFO (NBD_INFO_EXPORT) and NBD_REP_ACK.
   */
  char ns[18 + 20 + 12 + 20];
  char old[152];
  const size_t ns_cuts[] = { 0, 1, 8, 15, 16, 17, 18, 20, 37, 38, 45, 50,
                             51, 60, 69 };
  const size_t old_cuts[] = { 0, 8, 16, 20, 24, 27, 28 };
  size_t i;

  run_parts++;
  memcpy (ns, "NBDMAGIC", 8);
  put64 (ns + 8, 0x49484156454F5054ULL);      /* IHAVEOPT */
  put16 (ns + 16, 1 | 2);                     /* FIXED_NEWSTYLE | NO_ZEROES */
  put64 (ns + 18, 0x3e889045565a9ULL);        /* reply magic */
  put32 (ns + 26, 7);                         /* NBD_OPT_GO */
  put32 (ns + 30, 3);                         /* NBD_REP_INFO */
  put32 (ns + 34, 12);
  put16 (ns + 38, 0);                         /* NBD_INFO_EXPORT */
  put64 (ns + 40, 1048576);
  put16 (ns + 48, 1 | 4);                     /* HAS_FLAGS | SEND_FLUSH */
  put64 (ns + 50, 0x3e889045565a9ULL);
  put32 (ns + 58, 7);
  put32 (ns + 62, 1);                         /* NBD_REP_ACK */
  put32 (ns + 66, 0);

  memset (old, 0, sizeof old);
  memcpy (old, "NBDMAGIC", 8);
  put64 (old + 8, 0x00420281861253ULL);
  put64 (old + 16, 2 * 1048576);
  put32 (old + 24, 1 | 4);

  /* The full conversations work. */
  CHECK (run_fake (ns, sizeof ns, false, true, check_fake_newstyle) == 0,
         "full fake newstyle handshake failed: %s", nbd_get_error ());
  CHECK (run_fake (old, sizeof old, false, false, check_fake_oldstyle) == 0,
         "full fake oldstyle handshake failed: %s", nbd_get_error ());

  /* Every truncation fails, both gracefully and abruptly closed. */
  for (i = 0; i < sizeof ns_cuts / sizeof ns_cuts[0]; i++) {
    CHECK (run_fake (ns, ns_cuts[i], false, true, NULL) == -1,
           "newstyle cut at %zu: connect succeeded", ns_cuts[i]);
    CHECK (run_fake (ns, ns_cuts[i], true, true, NULL) == -1,
           "newstyle cut at %zu (abrupt): connect succeeded", ns_cuts[i]);
  }
  for (i = 0; i < sizeof old_cuts / sizeof old_cuts[0]; i++)
    CHECK (run_fake (old, old_cuts[i], false, false, NULL) == -1,
           "oldstyle cut at %zu: connect succeeded", old_cuts[i]);
  CHECK (run_fake (old, 100, true, false, NULL) == -1,
         "oldstyle cut at 100: connect succeeded");

  /* Garbage instead of the magic: EPROTO-like failure, dead. */
  CHECK (run_fake ("NBDMAGIX\0\0\0\0\0\0\0\0\0\0", 18, false, true, NULL) == -1,
         "bad magic accepted");
  /* Unknown version magic. */
  {
    char bad[18];
    memcpy (bad, ns, 18);
    put64 (bad + 8, 0x1122334455667788ULL);
    CHECK (run_fake (bad, 18, false, true, NULL) == -1,
           "bad version accepted");
  }
  /* Wrong option in the reply. */
  {
    char bad[sizeof ns];
    memcpy (bad, ns, sizeof ns);
    put32 (bad + 26, 1);                      /* reply claims EXPORT_NAME */
    CHECK (run_fake (bad, sizeof bad, false, true, NULL) == -1,
           "reply to the wrong option accepted");
  }
}

int
main (void)
{
  alarm (120);
  test_fake_server ();
  test_server_killed ();
  test_qemu_nbd ();
  test_nbd_server ();
  if (failures) {
    fprintf (stderr, "test-servers: %d failure(s)\n", failures);
    exit (EXIT_FAILURE);
  }
  if (skipped_parts && run_parts <= 1) {
    fprintf (stderr, "test-servers: no server installed, skipping\n");
    exit (77);
  }
  return 0;
}
