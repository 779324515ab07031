// SPDX-License-Identifier: GPL-2.0
/* TC ingress of the underlay interface: host-gw (and DirectRouting) traffic from peers
 * to pods on this node goes straight into the pod. Everything else is the host's. */
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
int from_underlay(struct __sk_buff *skb)
{
	struct cursor cursor = cursor_start(skb);
	struct ethhdr *eth = parse_eth(&cursor);
	struct weft_endpoint *endpoint;
	struct iphdr *ip;

	if (!eth || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	ip = parse_ipv4(&cursor);
	if (!ip || ip->ttl <= 1)
		return TC_ACT_OK;
	endpoint = lookup_endpoint(ip->daddr);
	/* Only pod-to-pod traffic from a peer subnet; the host's own traffic is not ours. */
	if (!endpoint || !lookup_peer(ip->saddr))
		return TC_ACT_OK;
	return deliver_local(skb, endpoint, ip->ttl);
}

char LICENSE[] SEC("license") = "GPL";
