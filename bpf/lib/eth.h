/* Ethernet header rewrites. */
#ifndef WEFT_LIB_ETH_H
#define WEFT_LIB_ETH_H

#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>

/* Sets both MACs of the frame. Invalidates packet pointers. */
static __always_inline int rewrite_macs(struct __sk_buff *skb, const __u8 *dst, const __u8 *src)
{
	int err = bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_dest), dst, ETH_ALEN, 0);

	if (err)
		return err;
	return bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_source), src, ETH_ALEN, 0);
}

#endif
