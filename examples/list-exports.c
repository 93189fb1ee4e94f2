/* list-exports: ask a server which exports it has, then the size of
 * each, all on one connection, using "opt mode".
 *
 * Normally nbd_connect_* runs the whole handshake and picks one export.
 * In opt mode the connect call stops once the handshake reaches option
 * negotiation, and the program sends options itself: list the exports
 * (NBD_OPT_LIST), ask about one (NBD_OPT_INFO), and finally either
 * enter transmission with one (nbd_opt_go) or leave (nbd_opt_abort).
 *
 * Usage: list-exports URI
 * Output: one line per export: "NAME SIZE [DESCRIPTION]"
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libnbd.h>

struct export_list {
  size_t count;
  char **names;
  char **descriptions;
};

/* Called once per export during nbd_opt_list.  The strings are only
 * valid during the call, so keep copies.
 */
static int
remember_export (void *user_data, const char *name, const char *description)
{
  struct export_list *list = user_data;
  char **names, **descriptions;

  names = realloc (list->names, (list->count + 1) * sizeof *names);
  if (names == NULL)
    return -1;
  list->names = names;
  descriptions = realloc (list->descriptions,
                          (list->count + 1) * sizeof *descriptions);
  if (descriptions == NULL)
    return -1;
  list->descriptions = descriptions;
  names[list->count] = strdup (name);
  descriptions[list->count] = strdup (description);
  if (names[list->count] == NULL || descriptions[list->count] == NULL) {
    free (names[list->count]);
    free (descriptions[list->count]);
    return -1;                  /* makes nbd_opt_list fail */
  }
  list->count++;
  return 0;
}

int
main (int argc, char *argv[])
{
  struct nbd_handle *h;
  struct export_list list = { 0 };
  int status = EXIT_FAILURE;

  if (argc != 2) {
    fprintf (stderr, "usage: %s URI\n", argv[0]);
    return EXIT_FAILURE;
  }

  h = nbd_create ();
  if (h == NULL)
    goto error;

  /* Opt mode must be chosen before connecting. */
  if (nbd_set_opt_mode (h, true) == -1)
    goto error;
  if (nbd_connect_uri (h, argv[1]) == -1)
    goto error;

  /* Opt mode only stops at negotiation if there is one: an oldstyle
   * server has a single unnamed export, no options, and the handle is
   * already connected to that export.
   */
  if (!nbd_aio_is_negotiating (h)) {
    printf ("oldstyle server: one export, %" PRIi64 " bytes\n",
            nbd_get_size (h));
    nbd_close (h);
    return EXIT_SUCCESS;
  }

  if (nbd_opt_list (h, (nbd_list_callback) { .callback = remember_export,
                                             .user_data = &list }) == -1)
    goto error;

  for (size_t i = 0; i < list.count; i++) {
    /* nbd_opt_info asks about the export named by nbd_set_export_name
     * without selecting it; we stay in negotiation afterwards.
     */
    if (nbd_set_export_name (h, list.names[i]) == -1 ||
        nbd_opt_info (h) == -1)
      goto error;
    printf ("%s %" PRIi64 "%s%s\n", list.names[i], nbd_get_size (h),
            list.descriptions[i][0] ? " " : "", list.descriptions[i]);
  }

  /* Nothing to read: end negotiation politely (NBD_OPT_ABORT). */
  if (nbd_opt_abort (h) == -1)
    goto error;
  status = EXIT_SUCCESS;
  goto out;

 error:
  fprintf (stderr, "%s\n", nbd_get_error ());
 out:
  for (size_t i = 0; i < list.count; i++) {
    free (list.names[i]);
    free (list.descriptions[i]);
  }
  free (list.names);
  free (list.descriptions);
  nbd_close (h);
  return status;
}
