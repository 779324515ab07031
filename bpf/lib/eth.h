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

/* True when two MACs are equal. */
static __always_inline int mac_equal(const __u8 *a, const __u8 *b)
{
	for (int i = 0; i < ETH_ALEN; i++)
		if (a[i] != b[i])
			return 0;
	return 1;
}

#endif
