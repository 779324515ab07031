#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>

#include "weft_shell.h"

int weft_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

int weft_spawn_close_from(posix_spawn_file_actions_t *actions, int lowest) {
    return posix_spawn_file_actions_addclosefrom_np(actions, lowest);
}

#include <sys/socket.h>
#include <sys/uio.h>

#define WEFT_BATCH_MAX 64

int weft_send_copies(int fd, const void *payload, size_t size, unsigned count) {
    struct iovec vectors[WEFT_BATCH_MAX];
    struct mmsghdr messages[WEFT_BATCH_MAX] = {0};

    if (count > WEFT_BATCH_MAX)
        count = WEFT_BATCH_MAX;
    for (unsigned i = 0; i < count; i++) {
        vectors[i] = (struct iovec){ .iov_base = (void *)payload, .iov_len = size };
        messages[i].msg_hdr.msg_iov = &vectors[i];
        messages[i].msg_hdr.msg_iovlen = 1;
    }
    return sendmmsg(fd, messages, count, 0);
}

int weft_receive_batch(int fd, void *slots, size_t slot, unsigned count) {
    struct iovec vectors[WEFT_BATCH_MAX];
    struct mmsghdr messages[WEFT_BATCH_MAX] = {0};

    if (count > WEFT_BATCH_MAX)
        count = WEFT_BATCH_MAX;
    for (unsigned i = 0; i < count; i++) {
        vectors[i] = (struct iovec){ .iov_base = (char *)slots + i * slot, .iov_len = slot };
        messages[i].msg_hdr.msg_iov = &vectors[i];
        messages[i].msg_hdr.msg_iovlen = 1;
    }
    return recvmmsg(fd, messages, count, 0, NULL);
}
