/* VXLAN as it arrives on the underlay (RFC 7348): outer IPv4, UDP, the VXLAN header,
 * then the inner Ethernet frame. */
#ifndef WEFT_LIB_VXLAN_H
#define WEFT_LIB_VXLAN_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include "parse.h"
#include "weft_kernel.h"

struct vxlan_header {
	__be32 flags; /* only the I flag: the VNI is valid */
	__be32 vni;   /* the VNI in the top 24 bits */
};

#define VXLAN_FLAG_VNI_VALID bpf_htonl(0x08000000)
/* What decapsulation removes after the outer Ethernet header. */
#define VXLAN_OVERHEAD (sizeof(struct iphdr) + sizeof(struct udphdr) + sizeof(struct vxlan_header) + ETH_HLEN)


static __always_inline struct vxlan_header *parse_vxlan(struct cursor *cursor)
{
	struct vxlan_header *vxlan = cursor->pos;

	if ((void *)(vxlan + 1) > cursor->end)
		return NULL;
	cursor->pos = vxlan + 1;
	return vxlan;
}

#endif
