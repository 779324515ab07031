// SPDX-License-Identifier: GPL-2.0
/* TC ingress of a pod's host-side veth (or of the cni0 bridge): traffic leaving a pod.
 * A local destination is delivered straight into its pod; a peer subnet is encapsulated
 * to the peer's VTEP or routed to its underlay IP; everything else goes to the kernel. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <linux/socket.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#define WEFT_HOOK WEFT_HOOK_FROM_POD
#include "lib/config.h"
#include "lib/parse.h"
#include "lib/maps.h"
#include "lib/observe.h"
#include "lib/eth.h"
#include "lib/ipv4.h"
#include "lib/deliver.h"
#include "lib/tunnel.h"
#include "lib/encap.h"

/* A GSO packet fits when each of its segments will: the kernel checks them against the
 * vxlan device's MTU. Anything else fits when the frame's IP part does: the length the
 * encapsulation adds its headers to (from_pod has cut any padding off before). */
static __always_inline int fits_tunnel(struct __sk_buff *skb)
{
	__u32 mtu = 0;

	if (skb->gso_size)
		return bpf_check_mtu(skb, weft_vxlan_ifindex, &mtu, 0, 0) == BPF_MTU_CHK_RET_SUCCESS;
	return skb->len - ETH_HLEN <= weft_tunnel_mtu;
}

enum ip_length {
	LENGTH_EXACT,     /* the frame carries the IP packet and nothing else */
	LENGTH_PADDED,    /* bytes follow the IP packet (Ethernet padding, or a pod's junk) */
	LENGTH_TRUNCATED, /* the frame is shorter than the IP packet says */
};

/* The IP length against the frame's, as ip_rcv measures them. A GSO packet's header holds
 * its own rules (BIG TCP sets 0), and the kernel segments it by the frame. */
static __always_inline enum ip_length ip_length_of(struct __sk_buff *skb, struct iphdr *ip)
{
	__u32 declared = bpf_ntohs(ip->tot_len);

	if (skb->gso_size || declared == skb->len - ETH_HLEN)
		return LENGTH_EXACT;
	if (declared < (__u32)ip->ihl * 4 || declared > skb->len - ETH_HLEN)
		return LENGTH_TRUNCATED;
	return LENGTH_PADDED;
}

/* A pod's ARP names its own address and MAC, or no address (a probe, RFC 5227, which
 * teaches no neighbour table anything). A request or an answer naming another address, or
 * another MAC, would move the node's neighbour entry for that address (another pod's, the
 * gateway's) to the sender. An answer like that is dropped. A request is asked as a probe
 * (sender 0.0.0.0): the node still answers it, to the MAC that asked, and learns nothing,
 * so a pod sending from a foreign address meets the source check, not a dead neighbour. */
static __always_inline int arp_from_pod(struct __sk_buff *skb, struct cursor *cursor)
{
	const __be32 anonymous = 0;
	struct arp_ipv4 *arp = parse_arp(cursor);
	struct weft_endpoint *sender;

	if (!weft_check_pod_source || !arp || !arp->sender_ip)
		return pass(skb, WEFT_CTR_PASSED_NOT_IPV4, NULL);
	sender = lookup_endpoint(arp->sender_ip);
	if (sender && sender->ifindex == skb->ingress_ifindex && mac_equal(sender->pod_mac, arp->sender_mac))
		return pass(skb, WEFT_CTR_PASSED_NOT_IPV4, NULL);
	if (arp->operation != bpf_htons(ARP_REQUEST))
		return drop(skb, WEFT_CTR_DROP_POD_ARP_SPOOFED, NULL, NULL);
	if (bpf_skb_store_bytes(skb, (long)&arp->sender_ip - (long)skb->data, &anonymous, sizeof(anonymous), 0))
		return drop(skb, WEFT_CTR_DROP_MALFORMED, NULL, NULL);
	return pass(skb, WEFT_CTR_PASSED_ARP_AS_PROBE, NULL);
}

static __always_inline int encapsulate(struct __sk_buff *skb, struct ethhdr *eth, struct iphdr *ip,
				       const struct weft_peer *peer)
{
	struct tunnel_facts tunnel = { .vni = weft_vni, .peer = peer->underlay_ip };

	struct cursor cursor;

	decided(skb, WEFT_CTR_ENCAPSULATED, ip, &tunnel);
	decrement_ttl(ip);
	if (weft_encapsulate_in_program && fits_outer_header(skb)) {
		switch (vxlan_encapsulate(skb, ip->tos, peer)) {
		case ENCAP_DONE:
			/* The kernel's route and neighbour for the peer's underlay IP write the outer MACs. */
			return bpf_redirect_neigh(weft_underlay_ifindex, NULL, 0, 0);
		case ENCAP_BROKEN:
			return drop(skb, WEFT_CTR_DROP_MALFORMED, NULL, &tunnel);
		case ENCAP_REFUSED:
			break;
		}
		/* The helper call invalidated the packet pointers; the frame itself is unchanged. */
		cursor = cursor_start(skb);
		eth = parse_eth(&cursor);
		if (!eth)
			return drop(skb, WEFT_CTR_DROP_MALFORMED, NULL, &tunnel);
	}
	/* The collect_md device builds the outer headers from the tunnel key. */
	if (set_tunnel(skb, eth, peer))
		return drop(skb, WEFT_CTR_DROP_MALFORMED, NULL, &tunnel);
	return bpf_redirect(weft_vxlan_ifindex, 0);
}

static __always_inline int route_direct(struct __sk_buff *skb, struct iphdr *ip, const struct weft_peer *peer)
{
	struct bpf_redir_neigh nexthop = {
		.nh_family = AF_INET,
		.ipv4_nh = peer->underlay_ip,
	};

	struct tunnel_facts next = { .peer = peer->underlay_ip };

	decided(skb, WEFT_CTR_ROUTED_DIRECT, ip, &next);
	decrement_ttl(ip);
	return bpf_redirect_neigh(weft_underlay_ifindex, &nexthop, sizeof(nexthop), 0);
}

/* A pod sends from its own address, on its own veth: the endpoint registered for the source
 * is the one whose veth the packet came in on. Anything else is a spoofed source. */
static __always_inline int sent_by_its_pod(struct __sk_buff *skb, struct iphdr *ip)
{
	struct weft_endpoint *sender = lookup_endpoint(ip->saddr);

	return sender && sender->ifindex == skb->ingress_ifindex;
}

SEC("tc")
int from_pod(struct __sk_buff *skb)
{
	struct cursor cursor = cursor_start(skb);
	struct ethhdr *eth = parse_eth(&cursor);
	struct weft_endpoint *endpoint;
	struct weft_peer *peer;
	struct iphdr *ip;

	/* Tagged for a VLAN: the host side has no VLAN device, so the kernel drops it rather
	 * than route it; it must not leave tagged on the underlay either. */
	if (vlan_tagged(skb))
		return pass(skb, WEFT_CTR_PASSED_VLAN_TAGGED, NULL);
	if (eth && eth->h_proto == bpf_htons(ETH_P_ARP))
		return arp_from_pod(skb, &cursor);
	/* IPv6 and runts: the kernel answers them as it always has. */
	if (!eth || eth->h_proto != bpf_htons(ETH_P_IP))
		return pass(skb, WEFT_CTR_PASSED_NOT_IPV4, NULL);
	ip = parse_ipv4(&cursor);
	if (!ip)
		return pass(skb, WEFT_CTR_PASSED_NOT_IPV4, NULL);
	switch (ip_length_of(skb, ip)) {
	case LENGTH_EXACT:
		break;
	case LENGTH_TRUNCATED:
		return drop(skb, WEFT_CTR_DROP_MALFORMED, ip, NULL);
	case LENGTH_PADDED:
		/* Cut to the IP packet, as ip_rcv would: every path then measures one length. */
		if (bpf_skb_change_tail(skb, ETH_HLEN + bpf_ntohs(ip->tot_len), 0))
			return drop(skb, WEFT_CTR_DROP_MALFORMED, NULL, NULL);
		cursor = cursor_start(skb);
		eth = parse_eth(&cursor);
		ip = eth ? parse_ipv4(&cursor) : NULL;
		if (!ip)
			return drop(skb, WEFT_CTR_DROP_MALFORMED, NULL, NULL);
		break;
	}
	if (weft_check_pod_source && !sent_by_its_pod(skb, ip))
		return drop(skb, WEFT_CTR_DROP_POD_SPOOFED, ip, NULL);
	/* TTL expiring here: let the kernel send ICMP time exceeded. */
	if (ip->ttl <= 1)
		return pass(skb, WEFT_CTR_PASSED_TTL_EXPIRING, ip);

	endpoint = lookup_endpoint(ip->daddr);
	if (endpoint)
		return deliver_local(skb, eth, ip, endpoint, NULL);

	peer = lookup_peer(ip->daddr);
	if (!peer || (peer->mode != WEFT_MODE_DIRECT && peer->mode != WEFT_MODE_VXLAN))
		return pass(skb, WEFT_CTR_PASSED_NO_ROUTE, ip);
	if (peer->mode == WEFT_MODE_DIRECT)
		return route_direct(skb, ip, peer);
	/* Too big for the tunnel: the kernel fragments it or sends "fragmentation needed". */
	if (!fits_tunnel(skb)) {
		if (!skb->gso_size && (ip->frag_off & bpf_htons(IPV4_DONT_FRAGMENT)))
			return refuse(skb, WEFT_CTR_PASSED_TOO_BIG_DF, ip);
		return pass(skb, WEFT_CTR_PASSED_TOO_BIG, ip);
	}
	return encapsulate(skb, eth, ip, peer);
}

char LICENSE[] SEC("license") = "GPL";
