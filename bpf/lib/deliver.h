/* Delivery into a pod on this node, skipping the bridge and the host stack. */
#ifndef WEFT_LIB_DELIVER_H
#define WEFT_LIB_DELIVER_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_packet.h>
#include "maps.h"
#include "eth.h"
#include "ipv4.h"

/* Rewrites the MACs as the pod's gateway would, decrements the TTL and hands the packet
 * to the pod's side of its veth pair. Falls back to the stack on any failure. */
static __always_inline int deliver_local(struct __sk_buff *skb, struct weft_endpoint *endpoint, __u8 ttl)
{
	__u32 ifindex = endpoint->ifindex;
	__u8 pod_mac[ETH_ALEN];
	__u8 host_mac[ETH_ALEN];

	__builtin_memcpy(pod_mac, endpoint->pod_mac, ETH_ALEN);
	__builtin_memcpy(host_mac, endpoint->host_mac, ETH_ALEN);
	if (decrement_ttl(skb, ttl) || rewrite_macs(skb, pod_mac, host_mac)) {
		count(skb, WEFT_CTR_DROP_MALFORMED);
		return TC_ACT_SHOT;
	}
	/* Kernels before 6.15 keep the type the frame arrived with; the pod must see it as its own. */
	bpf_skb_change_type(skb, PACKET_HOST);
	count(skb, WEFT_CTR_DELIVERED_LOCAL);
	return bpf_redirect_peer(ifindex, 0);
}

#endif
