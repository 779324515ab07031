// SPDX-License-Identifier: GPL-2.0
/* TC ingress of the collect_md vxlan device: traffic a peer encapsulated to us.
 * Unlike Flannel, which accepts anything sent to its port, only known peers may send,
 * and only from inside their own subnets. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#define WEFT_HOOK WEFT_HOOK_FROM_OVERLAY
#include "lib/config.h"
#include "lib/parse.h"
#include "lib/maps.h"
#include "lib/deliver.h"
#include "lib/flows.h"

SEC("tc")
int from_overlay(struct __sk_buff *skb)
{
	struct bpf_tunnel_key key = {};
	struct weft_endpoint *endpoint;
	struct weft_flow_key flow;
	struct tunnel_facts tunnel;
	struct cursor cursor;
	struct ethhdr *eth;
	struct iphdr *ip;

	if (vlan_tagged(skb))
		return pass(skb, WEFT_CTR_PASSED_VLAN_TAGGED, NULL);
	if ((long)skb->data + ETH_HLEN + 20 + 4 > (long)skb->data_end && skb->len >= ETH_HLEN + 20 + 4)
		bpf_skb_pull_data(skb, ETH_HLEN + 20 + 4);
	cursor = cursor_start(skb);
	eth = parse_eth(&cursor);
	ip = eth && eth->h_proto == bpf_htons(ETH_P_IP) ? parse_ipv4(&cursor) : NULL;
	/* Whatever becomes of it, a segment from_underlay left to the device is through. */
	if (ip && !weft_decap_aggregates && tcp_flow(ip, &cursor, &flow))
		arrived_from_device(&flow);
	if (bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0))
		return pass(skb, WEFT_CTR_PASSED_SLOW_PATH, NULL);
	tunnel.vni = key.tunnel_id;
	tunnel.peer = bpf_htonl(key.remote_ipv4);
	if (key.tunnel_id != weft_vni)
		return drop(skb, WEFT_CTR_DROP_BAD_VNI, ip, &tunnel);
	if (!peer_at(tunnel.peer, WEFT_MODE_VXLAN))
		return drop(skb, WEFT_CTR_DROP_UNKNOWN_PEER, ip, &tunnel);
	if (!eth || eth->h_proto != bpf_htons(ETH_P_IP))
		return pass(skb, WEFT_CTR_PASSED_NOT_IPV4, NULL);
	if (!ip)
		return drop(skb, WEFT_CTR_DROP_MALFORMED, NULL, &tunnel);
	/* The inner source must be an address of the peer that sent it. */
	if (!peer_sends_from(tunnel.peer, ip->saddr))
		return drop(skb, WEFT_CTR_DROP_SPOOFED_SOURCE, ip, &tunnel);
	/* The device set the frame's type from its MAC, our VTEP's: a frame for another MAC is
	 * one the kernel would drop, and it must not reach a pod through us. */
	if (skb->pkt_type == PACKET_OTHERHOST)
		return drop(skb, WEFT_CTR_DROP_OTHER_HOST, ip, &tunnel);
	if (ip->ttl <= 1)
		return pass(skb, WEFT_CTR_PASSED_TTL_EXPIRING, ip);
	endpoint = lookup_endpoint(ip->daddr);
	if (endpoint)
		return deliver_local(skb, eth, ip, endpoint, &tunnel);
	/* Back into the tunnel to a third node: a reflection, which no Flannel network routes. */
	if (lookup_peer(ip->daddr))
		return drop(skb, WEFT_CTR_DROP_OVERLAY_TRANSIT, ip, &tunnel);
	return pass(skb, WEFT_CTR_PASSED_NO_ROUTE, ip);
}

char LICENSE[] SEC("license") = "GPL";
