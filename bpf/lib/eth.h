/* Ethernet header rewrites. */
#ifndef WEFT_LIB_ETH_H
#define WEFT_LIB_ETH_H

#include <linux/if_ether.h>

/* Sets both MACs of the frame in place. */
static __always_inline void rewrite_macs(struct ethhdr *eth, const __u8 *dst, const __u8 *src)
{
	__builtin_memcpy(eth->h_dest, dst, ETH_ALEN);
	__builtin_memcpy(eth->h_source, src, ETH_ALEN);
}

#endif
