/* VXLAN encapsulation in the program, as Linux's vxlan device (Flannel's flannel.<VNI>)
 * writes it (RFC 7348): outer IPv4 from this node's public IP, no DF, TTL 64, the inner ECN;
 * UDP from a flow-hashed source port in the local port range, no checksum; the VXLAN header
 * with the VNI; the inner Ethernet header a Flannel VTEP accepts. The packet then leaves by
 * the underlay with the kernel's route and neighbour for the peer, with no vxlan device. */
#ifndef WEFT_LIB_ENCAP_H
#define WEFT_LIB_ENCAP_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <linux/in.h>
#include "weft_maps.h"
#include "config.h"
#include "ipv4.h"
#include "vxlan.h"

/* Linux's default local port range, which udp_flow_src_port uses when the vxlan device
 * sets none (Flannel sets none). */
#define VXLAN_SOURCE_PORT_LOW 32768
#define VXLAN_SOURCE_PORT_HIGH 60999

struct vxlan_encap {
	struct iphdr ip;
	struct udphdr udp;
	struct vxlan_header vxlan;
	struct ethhdr inner;
} __attribute__((packed));

/* udp_flow_src_port: the flow's hash folded into the port range, so one flow keeps one
 * port (and one underlay path) and flows spread across them. */
static __always_inline __u16 vxlan_source_port(struct __sk_buff *skb)
{
	__u32 hash = bpf_get_hash_recalc(skb);

	hash ^= hash << 16;
	return (__u16)((((__u64)hash * (VXLAN_SOURCE_PORT_HIGH - VXLAN_SOURCE_PORT_LOW)) >> 32) + VXLAN_SOURCE_PORT_LOW);
}

/* RFC 6040's normal mode, as INET_ECN_encapsulate: the inner ECN field, CE as ECT(0). */
static __always_inline __u8 outer_ecn(__u8 inner_tos)
{
	__u8 ecn = inner_tos & 3;

	return ecn == IPV4_ECN_CE ? 2 : ecn;
}

/* Fills the outer headers for a packet of `inner_length` bytes (its IPv4 packet) to `peer`. */
static __always_inline void vxlan_headers(struct vxlan_encap *encap, __u32 inner_length, __u8 inner_tos, __u16 source_port,
					  const struct weft_peer *peer)
{
	__u32 udp_length = sizeof(struct udphdr) + sizeof(struct vxlan_header) + ETH_HLEN + inner_length;

	struct iphdr ip = {
		.version = 4,
		.ihl = 5,
		.tos = outer_ecn(inner_tos),
		.tot_len = bpf_htons(sizeof(struct iphdr) + udp_length),
		.id = bpf_htons((__u16)bpf_get_prandom_u32()),
		.ttl = 64,
		.protocol = IPPROTO_UDP,
		.saddr = weft_local_ip,
		.daddr = peer->underlay_ip,
	};

	ip.check = (__u16)~ipv4_header_sum(&ip); /* over the header with check 0 */
	__builtin_memset(encap, 0, sizeof(*encap));
	__builtin_memcpy(&encap->ip, &ip, sizeof(ip));
	encap->udp.source = bpf_htons(source_port);
	encap->udp.dest = bpf_htons(weft_vxlan_port);
	encap->udp.len = bpf_htons(udp_length);
	encap->vxlan.flags = VXLAN_FLAG_VNI_VALID;
	encap->vxlan.vni = bpf_htonl(weft_vni << 8);
	__builtin_memcpy(encap->inner.h_dest, peer->vtep_mac, ETH_ALEN);
	read_vtep_mac(encap->inner.h_source);
	encap->inner.h_proto = bpf_htons(ETH_P_IP);
}

/* The room encapsulation needs, with the GSO state that makes the kernel segment the
 * packet as UDP tunnel packets; the pod's MTU already leaves room, so gso_size stays. */
#define VXLAN_ENCAP_FLAGS (BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP | \
			   BPF_F_ADJ_ROOM_ENCAP_L2_ETH | BPF_F_ADJ_ROOM_ENCAP_L2(ETH_HLEN))

enum encap_result {
	ENCAP_DONE,     /* the Ethernet header at the front is now the outer one */
	ENCAP_REFUSED,  /* the kernel would not grow this packet (a GSO type it cannot tunnel): unchanged */
	ENCAP_BROKEN,   /* grown but not written: drop it */
};

/* Encapsulates the frame in place. The outer Ethernet header keeps the pod's; the kernel
 * writes the underlay's on the way out. Packet pointers are invalid afterwards. */
static __always_inline enum encap_result vxlan_encapsulate(struct __sk_buff *skb, __u8 inner_tos, const struct weft_peer *peer)
{
	struct vxlan_encap encap;
	__u16 source_port = vxlan_source_port(skb);

	/* The bytes in the frame, as the vxlan device counts them; for a GSO packet the kernel
	 * rewrites the lengths of each segment. */
	vxlan_headers(&encap, skb->len - ETH_HLEN, inner_tos, source_port, peer);
	if (bpf_skb_adjust_room(skb, sizeof(encap), BPF_ADJ_ROOM_MAC, VXLAN_ENCAP_FLAGS))
		return ENCAP_REFUSED;
	if (bpf_skb_store_bytes(skb, ETH_HLEN, &encap, sizeof(encap), 0))
		return ENCAP_BROKEN;
	return ENCAP_DONE;
}

/* Whether the encapsulated packet's length still fits the outer IPv4 header's 16 bits (a
 * 64 KiB GSO aggregate would not). */
static __always_inline int fits_outer_header(struct __sk_buff *skb)
{
	return skb->len - ETH_HLEN + sizeof(struct vxlan_encap) <= 0xffff;
}

#endif
