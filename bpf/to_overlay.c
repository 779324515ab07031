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
#define WEFT_HOOK WEFT_HOOK_TO_OVERLAY
#include "lib/config.h"
#include "lib/parse.h"
#include "lib/maps.h"
#include "lib/observe.h"
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
	/* Without a tunnel key the device could not send it anyway: what has no VXLAN peer is dropped. */
	eth = parse_eth(&cursor);
	if (!eth || eth->h_proto != bpf_htons(ETH_P_IP))
		return drop(skb, WEFT_CTR_DROP_NO_PEER, NULL, NULL);
	ip = parse_ipv4(&cursor);
	if (!ip)
		return drop(skb, WEFT_CTR_DROP_NO_PEER, NULL, NULL);
	peer = lookup_peer(ip->daddr);
	if (!peer || peer->mode != WEFT_MODE_VXLAN)
		return drop(skb, WEFT_CTR_DROP_NO_PEER, ip, NULL);
	struct tunnel_facts tunnel = { .vni = weft_vni, .peer = peer->underlay_ip };

	decided(skb, WEFT_CTR_ENCAPSULATED_FROM_STACK, ip, &tunnel);
	if (set_tunnel(skb, eth, peer))
		return drop(skb, WEFT_CTR_DROP_MALFORMED, NULL, &tunnel);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
