/* Conformance probe: subprocesses (issue 7 items 1, 23, 26).
 *
 * nbd_kill_subprocess only signals; the child is reaped by nbd_close.
 * nbd_connect_command runs a script without "#!" through /bin/sh.
 * Socket activation names and what the server sees in LISTEN_FDNAMES.
 */
#include <config.h>

#include "probe.h"

static char dir[64];

/* Whether a child of ours still exists (running or zombie): the
 * library must have reaped the server by the time nbd_close returns.
 */
static const char *
children_left (void)
{
  pid_t p = waitpid (-1, NULL, WNOHANG);
  if (p == -1 && errno == ECHILD)
    return "none";
  return p == 0 ? "one still running" : "one left unreaped";
}

static void
kill_then_close (int signum, const char *name)
{
  struct nbd_handle *h = new_handle ();
  const char *argv[] = { "nbdkit", "-s", "--exit-with-parent", "memory", "1M",
                         NULL };
  char key[128];
  double t;

  snprintf (key, sizeof key, "%s: connect_command", name);
  step (key);
  say (key, "%s", rv (nbd_connect_command (h, (char **) argv)));

  snprintf (key, sizeof key, "%s: kill_subprocess", name);
  step (key);
  t = now_seconds ();
  say (key, "%s", rv (nbd_kill_subprocess (h, signum)));
  say (key, "returned within 2 s: %s", now_seconds () - t < 2 ? "yes" : "no");

  if (signum == SIGSTOP) {
    /* A stopped nbdkit never notices the socket close: let it go on. */
    snprintf (key, sizeof key, "%s: kill_subprocess SIGCONT", name);
    step (key);
    say (key, "%s", rv (nbd_kill_subprocess (h, SIGCONT)));
    snprintf (key, sizeof key, "%s: pread after SIGCONT", name);
    step (key);
    {
      char buf[512];
      say (key, "%s", rv (nbd_pread (h, buf, sizeof buf, 0, 0)));
    }
    snprintf (key, sizeof key, "%s: kill_subprocess SIGTERM", name);
    step (key);
    say (key, "%s", rv (nbd_kill_subprocess (h, SIGTERM)));
  }

  snprintf (key, sizeof key, "%s: nbd_close", name);
  step (key);
  t = now_seconds ();
  nbd_close (h);
  say (key, "returned within 5 s: %s", now_seconds () - t < 5 ? "yes" : "no");
  snprintf (key, sizeof key, "%s: children after nbd_close", name);
  say (key, "%s", children_left ());
}

static void kill_sigterm (void) { kill_then_close (0, "signal 0"); }
static void kill_sigstop (void) { kill_then_close (SIGSTOP, "SIGSTOP"); }

/* Item 23: an executable shell script without "#!" fails execve with
 * ENOEXEC; execvp (and so upstream) then runs it with /bin/sh.
 */
static void
script_without_shebang (void)
{
  char path[128];
  FILE *fp;
  struct nbd_handle *h = new_handle ();
  const char *argv[2] = { path, NULL };

  snprintf (path, sizeof path, "%s/server-script", dir);
  fp = fopen (path, "w");
  if (!fp)
    probe_fail ("%s: %s", path, strerror (errno));
  fprintf (fp, "exec nbdkit -s --exit-with-parent memory 3M\n");
  fclose (fp);
  chmod (path, 0755);

  step ("no #!: connect_command");
  say ("no #!: connect_command", "%s", rv (nbd_connect_command (h, (char **) argv)));
  say ("no #!: get_size", "%s", rv (nbd_get_size (h)));
  nbd_kill_subprocess (h, 0);
  step ("no #!: nbd_close");
  nbd_close (h);
  say ("no #!: children after nbd_close", "%s", children_left ());
}

/* Item 26, from nbd_set_socket_activation_name(3) (libnbd 1.16): "The
 * parameter socket_name can be a short alphanumeric string.  If it is
 * set to the empty string (also the default when the handle is created)
 * then the name "unknown" will be seen by the server."  The limits are
 * upstream's (lib/handle.c): ASCII alphanumerics only (EINVAL), at most
 * 32 characters (ENAMETOOLONG).
 */
static void
activation_names (void)
{
  int (*set_name) (struct nbd_handle *, const char *) =
    NEWER (nbd_set_socket_activation_name);
  char *(*get_name) (struct nbd_handle *) =
    NEWER (nbd_get_socket_activation_name);
  static const struct { const char *name, *want; } cases[] = {
    { "abc123", "0" },
    { "a+b", "-1 EINVAL" },
    { "a b", "-1 EINVAL" },
    { "caf\xc3\xa9", "-1 EINVAL" },
    { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "0" },        /* 32 */
    { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "-1 ENAMETOOLONG" }, /* 33 */
    { "", "0" },
  };

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct nbd_handle *h = new_handle ();
    char key[128];
    snprintf (key, sizeof key, "set_socket_activation_name \"%s\"", cases[i].name);
    if (!set_name)
      want (key, cases[i].want, "not in this library");
    else
      want (key, cases[i].want, "%s", rv (set_name (h, cases[i].name)));
    nbd_close (h);
  }

  /* Set then cleared with "": reads back empty. */
  {
    struct nbd_handle *h = new_handle ();
    char *s;
    if (!set_name || !get_name)
      want ("name after set \"x\" then \"\"", "\"\"", "not in this library");
    else {
      set_name (h, "x");
      set_name (h, "");
      s = get_name (h);
      want ("name after set \"x\" then \"\"", "\"\"", "\"%s\"", s ? s : "(null)");
      free (s);
    }
    nbd_close (h);
  }

  /* What the server sees, with no name and with a name. */
  for (int named = 0; named <= 1; named++) {
    struct nbd_handle *h = new_handle ();
    char script[512], file[128], seen[64] = "(not set)";
    const char *argv[] = { "/bin/sh", "-c", script, NULL };
    const char *key = named ? "LISTEN_FDNAMES with name \"disk0\""
                            : "LISTEN_FDNAMES with no name";
    FILE *fp;

    snprintf (file, sizeof file, "%s/fdnames%d", dir, named);
    snprintf (script, sizeof script,
              "echo \"${LISTEN_FDNAMES-(not set)}\" > %s; "
              "exec nbdkit --exit-with-parent memory 1M", file);
    if (named && set_name)
      set_name (h, "disk0");
    step (key);
    if (nbd_connect_systemd_socket_activation (h, (char **) argv) == -1)
      snprintf (seen, sizeof seen, "connect failed: %s", rv (-1));
    else if ((fp = fopen (file, "r")) != NULL) {
      if (fgets (seen, sizeof seen, fp))
        seen[strcspn (seen, "\n")] = 0;
      fclose (fp);
    }
    /* 1.14 does not set LISTEN_FDNAMES at all; 1.16 added the name. */
    if (named && !set_name)
      want (key, "disk0", "not in this library");
    else
      want (key, named ? "disk0" : "unknown", "%s", seen);
    nbd_kill_subprocess (h, 0);
    step ("socket activation: nbd_close");
    nbd_close (h);
  }
}

int
main (void)
{
  probe_begin ();
  strcpy (dir, "/tmp/libnbd-conf-XXXXXX");
  if (!mkdtemp (dir))
    probe_fail ("mkdtemp: %s", strerror (errno));

  /* Item 1: "kill_subprocess (0)" means SIGTERM; the call only sends it. */
  section ("kill_subprocess (0)", kill_sigterm);
  section ("kill_subprocess (SIGSTOP)", kill_sigstop);
  section ("script without #!", script_without_shebang);
  section ("socket activation names", activation_names);

  {
    char cmd[128];
    snprintf (cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system (cmd) != 0)
      fprintf (stderr, "could not remove %s\n", dir);
  }
  return 0;
}
