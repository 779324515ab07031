/* Delivery into a pod on this node, skipping the bridge and the host stack. */
#ifndef WEFT_LIB_DELIVER_H
#define WEFT_LIB_DELIVER_H

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_packet.h>
#include "maps.h"
#include "observe.h"
#include "eth.h"
#include "ipv4.h"

/* Rewrites the MACs as the pod's gateway would, decrements the TTL and hands the packet
 * to the pod's side of its veth pair. The caller has checked ttl > 1. */
static __always_inline int deliver_local(struct __sk_buff *skb, struct ethhdr *eth, struct iphdr *ip,
					 const struct weft_endpoint *endpoint, const struct tunnel_facts *tunnel)
{
	__u32 ifindex = endpoint->ifindex;

	decided(skb, WEFT_CTR_DELIVERED_LOCAL, ip, tunnel);
	rewrite_macs(eth, endpoint->pod_mac, endpoint->host_mac);
	decrement_ttl(ip);
	/* Kernels before 6.15 keep the type the frame arrived with; the pod must see it as its own. */
	bpf_skb_change_type(skb, PACKET_HOST);
	return bpf_redirect_peer(ifindex, 0);
}

#endif
