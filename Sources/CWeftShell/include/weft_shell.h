#ifndef WEFT_SHELL_H
#define WEFT_SHELL_H

#include <spawn.h>

/* The GNU calls the spawner needs, which Swift's Glibc module leaves out (they need _GNU_SOURCE). */

/* pipe2(fds, O_CLOEXEC): a pipe no other child inherits while we set up ours. */
int weft_pipe_cloexec(int fds[2]);

/* posix_spawn_file_actions_addclosefrom_np: the child closes every descriptor from `lowest` on. */
int weft_spawn_close_from(posix_spawn_file_actions_t *actions, int lowest);

#include <stddef.h>

/* sendmmsg: `count` (at most 64) copies of one datagram on a connected socket in one call;
 * the number sent, or -1 with errno. */
int weft_send_copies(int fd, const void *payload, size_t size, unsigned count);

/* recvmmsg: up to `count` (at most 64) datagrams into consecutive slots of `slot` bytes;
 * the number received, or -1 with errno. */
int weft_receive_batch(int fd, void *slots, size_t slot, unsigned count);

#endif
