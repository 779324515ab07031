// SPDX-License-Identifier: GPL-2.0
/* TC ingress of the collect_md vxlan device: traffic a peer encapsulated to us.
 * Unlike Flannel, which accepts anything sent to its port, only known peers may send,
 * and only from inside their own subnets. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "lib/config.h"
#include "lib/parse.h"
#include "lib/maps.h"
#include "lib/deliver.h"

SEC("tc")
int from_overlay(struct __sk_buff *skb)
{
	struct cursor cursor = cursor_start(skb);
	struct bpf_tunnel_key key = {};
	struct weft_endpoint *endpoint;
	struct ethhdr *eth;
	struct iphdr *ip;
	__u32 outer_source;

	if (bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0))
		goto pass;
	if (key.tunnel_id != weft_vni) {
		count(skb, WEFT_CTR_DROP_BAD_VNI);
		return TC_ACT_SHOT;
	}
	outer_source = bpf_htonl(key.remote_ipv4);
	if (!peer_at(outer_source, WEFT_MODE_VXLAN)) {
		count(skb, WEFT_CTR_DROP_UNKNOWN_PEER);
		return TC_ACT_SHOT;
	}

	eth = parse_eth(&cursor);
	if (!eth || eth->h_proto != bpf_htons(ETH_P_IP))
		goto pass;
	ip = parse_ipv4(&cursor);
	if (!ip) {
		count(skb, WEFT_CTR_DROP_MALFORMED);
		return TC_ACT_SHOT;
	}
	/* The inner source must belong to the subnet of the peer that sent it. */
	if (!peer_owns_source(outer_source, ip->saddr)) {
		count(skb, WEFT_CTR_DROP_SPOOFED_SOURCE);
		return TC_ACT_SHOT;
	}
	if (ip->ttl <= 1)
		goto pass;
	endpoint = lookup_endpoint(ip->daddr);
	if (endpoint)
		return deliver_local(skb, eth, ip, endpoint);

pass:
	count(skb, WEFT_CTR_PASSED_TO_STACK);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
