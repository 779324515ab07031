/* The kernel's rtnetlink uapi: message types, flags, attribute numbers. Header only. */
#include <sys/socket.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_link.h>
#include <linux/if_addr.h>
#include <linux/if_arp.h>
#include <linux/neighbour.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/sched.h>

/* setns(2) for network namespaces; glibc declares setns only under _GNU_SOURCE. */
static inline int weft_enter_network_namespace(int fd)
{
	return (int)syscall(SYS_setns, fd, CLONE_NEWNET);
}
