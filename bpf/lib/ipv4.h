/* IPv4 header edits that keep the checksum right. */
#ifndef WEFT_LIB_IPV4_H
#define WEFT_LIB_IPV4_H

#include <linux/ip.h>
#include <bpf/bpf_endian.h>

/* Decrements the TTL in place as a router would, patching the header checksum
 * incrementally (RFC 1624, as the kernel's ip_decrease_ttl). The caller has checked ttl > 1. */
static __always_inline void decrement_ttl(struct iphdr *ip)
{
	__u32 check = (__u32)ip->check + bpf_htons(0x0100);

	ip->check = (__u16)(check + (check >= 0xffff));
	ip->ttl--;
}

#endif
