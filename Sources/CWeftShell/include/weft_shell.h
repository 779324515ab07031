#ifndef WEFT_SHELL_H
#define WEFT_SHELL_H

#include <spawn.h>

/* The GNU calls the spawner needs, which Swift's Glibc module leaves out (they need _GNU_SOURCE). */

/* pipe2(fds, O_CLOEXEC): a pipe no other child inherits while we set up ours. */
int weft_pipe_cloexec(int fds[2]);

/* posix_spawn_file_actions_addclosefrom_np: the child closes every descriptor from `lowest` on. */
int weft_spawn_close_from(posix_spawn_file_actions_t *actions, int lowest);

#endif
