// SPDX-License-Identifier: GPL-2.0
/* TC egress of the collect_md vxlan device: what the kernel itself routes into the
 * overlay (host-originated traffic, fragments, anything from_pod left to the stack).
 * The cluster network's one route points at the device; this program picks the peer,
 * so the kernel path needs no per-peer route, neighbour or FDB entry. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "lib/config.h"
#include "lib/parse.h"
#include "lib/maps.h"
#include "lib/tunnel.h"

SEC("tc")
int to_overlay(struct __sk_buff *skb)
{
	struct cursor cursor = cursor_start(skb);
	struct bpf_tunnel_key existing = {};
	struct weft_peer *peer;
	struct ethhdr *eth;
	struct iphdr *ip;

	/* from_pod already chose the tunnel. */
	if (!bpf_skb_get_tunnel_key(skb, &existing, sizeof(existing), 0))
		return TC_ACT_OK;
	eth = parse_eth(&cursor);
	if (!eth || eth->h_proto != bpf_htons(ETH_P_IP))
		goto drop;
	ip = parse_ipv4(&cursor);
	if (!ip)
		goto drop;
	peer = lookup_peer(ip->daddr);
	if (!peer || peer->mode != WEFT_MODE_VXLAN)
		goto drop;
	if (set_tunnel(skb, eth, peer)) {
		count(skb, WEFT_CTR_DROP_MALFORMED);
		return TC_ACT_SHOT;
	}
	count(skb, WEFT_CTR_ENCAPSULATED_FROM_STACK);
	return TC_ACT_OK;

drop:
	/* Without a tunnel key the device could not send it anyway. */
	count(skb, WEFT_CTR_DROP_NO_PEER);
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
