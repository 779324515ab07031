// SPDX-License-Identifier: GPL-2.0
/* TC ingress of the underlay interface: traffic from peers to pods on this node goes
 * straight into the pod. host-gw (and DirectRouting) packets are routed pod traffic;
 * single VXLAN packets are decapsulated here, skipping the vxlan device. Everything
 * else, and anything in doubt, goes to the kernel as before. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#define WEFT_HOOK WEFT_HOOK_FROM_UNDERLAY
#include "lib/config.h"
#include "lib/parse.h"
#include "lib/maps.h"
#include "lib/deliver.h"
#include "lib/vxlan.h"
#include "lib/ipv4.h"
#include "lib/eth.h"
#include "lib/flows.h"

static __always_inline __u64 decap_flags(void)
{
	__u64 flags = BPF_F_ADJ_ROOM_NO_CSUM_RESET;

	if (weft_decap_aggregates)
		flags |= BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_DECAP_L4_UDP;
	return flags;
}

/* Leaves a VXLAN packet to the vxlan device, counted for its TCP flow if it has one. */
static __always_inline int to_device(struct __sk_buff *skb, const struct weft_flow_key *flow, int tcp, const struct iphdr *outer)
{
	if (tcp)
		leave_to_device(flow);
	return pass(skb, WEFT_CTR_PASSED_SLOW_PATH, outer);
}

/* Unencapsulated traffic to the cluster network is routed pod traffic only where the cluster
 * routes it so: from a direct peer (host-gw, DirectRouting), for one of its pods or its host.
 * Anything else on the underlay that claims the cluster network, a spoofed peer pod
 * among it, is no peer's, and the kernel would forward it into our pods or the tunnel.
 * Returns the underlay IP of the direct peer the source belongs to, or 0. */
static __always_inline __u32 direct_peer_of(struct iphdr *ip)
{
	struct weft_peer *sender = lookup_peer(ip->saddr);

	if (sender)
		return sender->mode == WEFT_MODE_DIRECT ? sender->underlay_ip : 0;
	return peer_at(ip->saddr, WEFT_MODE_DIRECT) ? ip->saddr : 0;
}

enum hop {
	HOP_PEER,    /* the frame comes from the peer's own interface */
	HOP_OTHER,   /* from another host's: someone speaks for the peer */
	HOP_UNKNOWN, /* this node holds no neighbour entry for the peer */
	HOP_ROUTED,  /* the peer is behind a router, whose MAC its frames carry: nothing to check */
};

/* A peer on this link sends frames with the MAC our neighbour table holds for its underlay
 * IP; the FIB lookup reads that entry as the kernel would to send to it, and says whether
 * the peer is on the link at all (a gateway replaces the destination). (It answers only
 * where the interface forwards, as a node's does.) */
static __always_inline enum hop previous_hop(struct __sk_buff *skb, struct ethhdr *eth, __u32 peer_ip)
{
	struct bpf_fib_lookup fib = {
		.family = AF_INET,
		.ifindex = skb->ingress_ifindex,
		.ipv4_dst = peer_ip,
	};
	int found = bpf_fib_lookup(skb, &fib, sizeof(fib), BPF_FIB_LOOKUP_OUTPUT);

	if (found != BPF_FIB_LKUP_RET_SUCCESS)
		return found == BPF_FIB_LKUP_RET_NO_NEIGH && fib.ipv4_dst != peer_ip ? HOP_ROUTED : HOP_UNKNOWN;
	if (fib.ipv4_dst != peer_ip)
		return HOP_ROUTED;
	if (fib.ifindex != skb->ingress_ifindex || !mac_equal(fib.dmac, eth->h_source))
		return HOP_OTHER;
	return HOP_PEER;
}

static __always_inline int in_cluster(__u32 addr)
{
	return weft_cluster_mask && (addr & weft_cluster_mask) == weft_cluster_network;
}

/* A VXLAN packet from a known peer to a local pod, decapsulated in place and delivered.
 * It takes only what the kernel's receive path (ip_rcv, udp_rcv, the vxlan device) and
 * from_overlay would deliver unchanged, drops what they would drop, and leaves the rest to
 * the device (the kernel path, with its checks and counters):
 * - GRO aggregates, unless the kernel resets their tunnel GSO state as it shrinks them
 *   (weft_decap_aggregates): left behind, that state breaks the aggregate's segmentation
 *   wherever it is forwarded;
 * - a TCP segment whose flow has segments waiting on the device's path, which it must not
 *   overtake (lib/flows.h);
 * - outer options, fragments, a bad or padded outer header, a UDP length that is not the
 *   packet's, a UDP checksum to verify, congestion marks to copy. */
static __always_inline int receive_vxlan(struct __sk_buff *skb, struct ethhdr *outer_eth, struct cursor *cursor,
					 struct iphdr *outer, struct udphdr *udp)
{
	struct tunnel_facts tunnel = { .vni = weft_vni, .peer = outer->saddr };
	struct weft_flow_key flow = {};
	struct weft_endpoint *endpoint;
	struct vxlan_header *vxlan;
	__u8 vtep_mac[ETH_ALEN];
	struct ethhdr *eth;
	struct iphdr *ip;
	int tcp = 0;

	/* VXLAN to another address (another node, a broadcast, a pod) is not ours to take: the
	 * kernel routes it or drops it, as it would any packet. */
	if (outer->daddr != weft_local_ip)
		return pass(skb, WEFT_CTR_PASSED_HOST, outer);
	/* A peer on this link is checked as a direct peer is: by the MAC its frames come from.
	 * Before any path is chosen, since the device path cannot see the outer MACs. */
	if (weft_check_underlay_source && peer_at(outer->saddr, WEFT_MODE_VXLAN) &&
	    previous_hop(skb, outer_eth, outer->saddr) == HOP_OTHER)
		return drop(skb, WEFT_CTR_DROP_UNDERLAY_WRONG_HOP, outer, &tunnel);
	vxlan = parse_vxlan(cursor);
	eth = vxlan ? parse_eth(cursor) : NULL;
	ip = eth && eth->h_proto == bpf_htons(ETH_P_IP) ? parse_ipv4(cursor) : NULL;
	if (!ip)
		return pass(skb, WEFT_CTR_PASSED_SLOW_PATH, outer);
	if (!weft_decap_aggregates)
		tcp = tcp_flow(ip, cursor, &flow);
	if (skb->pkt_type != PACKET_HOST || udp->check)
		return to_device(skb, &flow, tcp, outer);
	if (outer->ihl != 5 || (outer->frag_off & IPV4_FRAGMENT_BITS) || (outer->tos & IPV4_ECN_CE) == IPV4_ECN_CE)
		return to_device(skb, &flow, tcp, outer);
	/* What ip_rcv and udp_rcv would check of the outer headers: the IPv4 checksum, an IP
	 * length that neither truncates nor pads the frame, a UDP length that is the rest. */
	if (!ipv4_checksum_valid(outer) || bpf_ntohs(outer->tot_len) != skb->len - ETH_HLEN ||
	    bpf_ntohs(udp->len) != bpf_ntohs(outer->tot_len) - sizeof(*outer))
		return to_device(skb, &flow, tcp, outer);
	if (vxlan->flags != VXLAN_FLAG_VNI_VALID || vxlan->vni != bpf_htonl(weft_vni << 8) || ip->ttl <= 1)
		return to_device(skb, &flow, tcp, outer);
	if (skb->gso_size && !weft_decap_aggregates)
		return to_device(skb, &flow, tcp, outer);
	if (tcp && waiting_on_device(&flow))
		return to_device(skb, &flow, tcp, outer);
	/* The same checks as from_overlay: a known peer, sending from its own addresses; the
	 * vxlan device and from_overlay count and drop what fails them. */
	if (!peer_at(outer->saddr, WEFT_MODE_VXLAN) || !peer_sends_from(outer->saddr, ip->saddr))
		return to_device(skb, &flow, tcp, outer);
	/* The inner frame is for our VTEP; one for another MAC the device's stack drops. */
	read_vtep_mac(vtep_mac);
	if (!mac_equal(eth->h_dest, vtep_mac))
		return eth->h_dest[0] & 1 ? to_device(skb, &flow, tcp, outer) : drop(skb, WEFT_CTR_DROP_OTHER_HOST, ip, &tunnel);
	endpoint = lookup_endpoint(ip->daddr);
	if (!endpoint) {
		/* Through us back into the tunnel, to a third node: a reflection. */
		if (lookup_peer(ip->daddr))
			return drop(skb, WEFT_CTR_DROP_OVERLAY_TRANSIT, ip, &tunnel);
		return to_device(skb, &flow, tcp, outer);
	}

	/* Removes outer IPv4, UDP, VXLAN and inner Ethernet: the outer Ethernet header,
	 * already IPv4, now carries the inner packet. A checksum the NIC verified loses one
	 * level with the outer UDP header, as the kernel's UDP receive takes it. An aggregate
	 * keeps its segment size (the inner MSS) and becomes a plain TCP aggregate. A kernel
	 * that refuses the flags has changed nothing: the device takes the packet (the packet
	 * pointers are gone, so its trace record has no addresses). */
	if (bpf_skb_adjust_room(skb, -(__s32)VXLAN_OVERHEAD, BPF_ADJ_ROOM_MAC, decap_flags()))
		return to_device(skb, &flow, tcp, NULL);
	bpf_csum_level(skb, BPF_CSUM_LEVEL_DEC);
	*cursor = cursor_start(skb);
	eth = parse_eth(cursor);
	ip = eth ? parse_ipv4(cursor) : NULL;
	if (!ip)
		return drop(skb, WEFT_CTR_DROP_MALFORMED, NULL, &tunnel);
	return deliver_local(skb, eth, ip, endpoint, &tunnel);
}

/* Pod-to-pod traffic from a direct peer goes straight in; its host's, to the kernel. */
static __always_inline int deliver_from_direct_peer(struct __sk_buff *skb, struct ethhdr *eth, struct iphdr *ip)
{
	struct weft_endpoint *endpoint;
	struct weft_peer *sender;

	if (ip->ttl <= 1)
		return pass(skb, WEFT_CTR_PASSED_TTL_EXPIRING, ip);
	endpoint = lookup_endpoint(ip->daddr);
	sender = lookup_peer(ip->saddr);
	if (!endpoint || !sender || sender->mode != WEFT_MODE_DIRECT)
		return pass(skb, endpoint ? WEFT_CTR_PASSED_HOST : WEFT_CTR_PASSED_NO_ROUTE, ip);
	return deliver_local(skb, eth, ip, endpoint, NULL);
}

SEC("tc")
int from_underlay(struct __sk_buff *skb)
{
	struct cursor cursor;
	struct ethhdr *eth;
	struct iphdr *ip;
	__u32 peer_ip;

	/* A VXLAN packet's flow is keyed from its linear part (lib/flows.h). */
	if (weft_vxlan_ifindex && (long)skb->data + WEFT_FLOW_HEADERS > (long)skb->data_end && skb->len >= WEFT_FLOW_HEADERS)
		bpf_skb_pull_data(skb, WEFT_FLOW_HEADERS);
	/* Tagged for a VLAN device's interface: the kernel hands it there. */
	if (vlan_tagged(skb))
		return pass(skb, WEFT_CTR_PASSED_VLAN_TAGGED, NULL);
	cursor = cursor_start(skb);
	eth = parse_eth(&cursor);
	if (!eth || eth->h_proto != bpf_htons(ETH_P_IP))
		return pass(skb, WEFT_CTR_PASSED_NOT_IPV4, NULL);
	ip = parse_ipv4(&cursor);
	if (!ip)
		return pass(skb, WEFT_CTR_PASSED_NOT_IPV4, NULL);
	if (weft_vxlan_ifindex && ip->protocol == IPPROTO_UDP) {
		struct cursor payload = cursor;
		struct udphdr *udp = parse_udp(&payload);

		if (udp && udp->dest == bpf_htons(weft_vxlan_port))
			return receive_vxlan(skb, eth, &payload, ip, udp);
	}
	/* The host's own traffic (NodePorts before DNAT among it) is not ours. */
	if (!in_cluster(ip->daddr))
		return pass(skb, WEFT_CTR_PASSED_HOST, ip);
	if (!weft_check_underlay_source)
		return deliver_from_direct_peer(skb, eth, ip);
	peer_ip = direct_peer_of(ip);
	if (!peer_ip)
		return drop(skb, WEFT_CTR_DROP_UNDERLAY_UNTRUSTED, ip, NULL);
	switch (previous_hop(skb, eth, peer_ip)) {
	case HOP_OTHER: {
		struct tunnel_facts claimed = { .peer = peer_ip };

		return drop(skb, WEFT_CTR_DROP_UNDERLAY_WRONG_HOP, ip, &claimed);
	}
	case HOP_UNKNOWN:
	case HOP_ROUTED: /* a direct peer is on the link: one behind a router is not one */
		/* Nothing to check the hop against: the kernel takes it, as it would without us. */
		return pass(skb, WEFT_CTR_PASSED_UNVERIFIED_HOP, ip);
	case HOP_PEER:
		break;
	}
	return deliver_from_direct_peer(skb, eth, ip);
}

char LICENSE[] SEC("license") = "GPL";
