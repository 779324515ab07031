/* IPv4 header edits that keep the checksum right. */
#ifndef WEFT_LIB_IPV4_H
#define WEFT_LIB_IPV4_H

#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* Decrements the TTL as a router would, patching the header checksum incrementally.
 * The caller has checked ttl > 1. Invalidates packet pointers. */
static __always_inline int decrement_ttl(struct __sk_buff *skb, __u8 ttl)
{
	__u16 old_word = bpf_htons((__u16)ttl << 8);
	__u16 new_word = bpf_htons((__u16)(ttl - 1) << 8);
	__u8 new_ttl = ttl - 1;
	int err;

	err = bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), old_word, new_word, sizeof(__u16));
	if (err)
		return err;
	return bpf_skb_store_bytes(skb, ETH_HLEN + offsetof(struct iphdr, ttl), &new_ttl, sizeof(new_ttl), 0);
}

#endif
