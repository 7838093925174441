/* SPDX-License-Identifier: MIT */
/*
 * statedir.h - where ckptd keeps its state (SPEC §5), found the same way by
 * ckptd and ckpt (the bash completion asks ckpt): --state-dir, else
 * $CKPT_STATE_DIR, else $XDG_STATE_HOME/ckptfs, else /var/lib/ckptfs for
 * root, else ~/.local/state/ckptfs ($HOME, else the passwd entry's home).
 */
#ifndef CKPTFS_STATEDIR_H
#define CKPTFS_STATEDIR_H

#include <stddef.h>

/* Write the state dir into buf; `opt` is --state-dir's value or NULL. An
 * empty variable counts as unset; an empty --state-dir is -EINVAL (a script's
 * unset "$DIR" must not silently mean the default). Nothing is created.
 * Returns 0, -EINVAL, -ENAMETOOLONG when it does not fit in len, or -ENOENT
 * when no rule applies (not root, no variable set, no home directory). */
int ckpt_state_dir_find(const char *opt, char *buf, size_t len);

#endif /* CKPTFS_STATEDIR_H */
