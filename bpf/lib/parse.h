/* A parse cursor and one bounds-checked parser per header. */
#ifndef WEFT_LIB_PARSE_H
#define WEFT_LIB_PARSE_H

#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>

struct cursor {
	void *pos;
	void *end;
};

static __always_inline struct cursor cursor_start(struct __sk_buff *skb)
{
	struct cursor cursor = {
		.pos = (void *)(long)skb->data,
		.end = (void *)(long)skb->data_end,
	};
	return cursor;
}

/* The Ethernet header, or NULL if the frame is too short. */
static __always_inline struct ethhdr *parse_eth(struct cursor *cursor)
{
	struct ethhdr *eth = cursor->pos;

	if ((void *)(eth + 1) > cursor->end)
		return NULL;
	cursor->pos = eth + 1;
	return eth;
}

/* The IPv4 header with its options, or NULL if truncated or malformed. */
static __always_inline struct iphdr *parse_ipv4(struct cursor *cursor)
{
	struct iphdr *ip = cursor->pos;

	if ((void *)(ip + 1) > cursor->end)
		return NULL;
	if (ip->version != 4 || ip->ihl < 5)
		return NULL;
	if (cursor->pos + ip->ihl * 4 > cursor->end)
		return NULL;
	cursor->pos += ip->ihl * 4;
	return ip;
}

/* The UDP header, or NULL if truncated. */
static __always_inline struct udphdr *parse_udp(struct cursor *cursor)
{
	struct udphdr *udp = cursor->pos;

	if ((void *)(udp + 1) > cursor->end)
		return NULL;
	cursor->pos = udp + 1;
	return udp;
}

/* ARPHRD_ETHER: <linux/if_arp.h> pulls in libc's socket headers, which a BPF build lacks. */
#define ARP_HARDWARE_ETHERNET 1
/* ARPOP_REQUEST, from the same header. */
#define ARP_REQUEST 1

/* ARP for IPv4 over Ethernet (RFC 826), the only form a pod's neighbours take from it. */
struct arp_ipv4 {
	__be16 hardware;  /* ARP_HARDWARE_ETHERNET */
	__be16 protocol;  /* ETH_P_IP */
	__u8 hardware_length;
	__u8 protocol_length;
	__be16 operation;
	__u8 sender_mac[ETH_ALEN];
	__be32 sender_ip;
	__u8 target_mac[ETH_ALEN];
	__be32 target_ip;
} __attribute__((packed));

/* The ARP message, or NULL if truncated or of another hardware or protocol type. */
static __always_inline struct arp_ipv4 *parse_arp(struct cursor *cursor)
{
	struct arp_ipv4 *arp = cursor->pos;

	if ((void *)(arp + 1) > cursor->end)
		return NULL;
	if (arp->hardware != bpf_htons(ARP_HARDWARE_ETHERNET) || arp->protocol != bpf_htons(ETH_P_IP) ||
	    arp->hardware_length != ETH_ALEN || arp->protocol_length != 4)
		return NULL;
	cursor->pos = arp + 1;
	return arp;
}

/* True when the frame carries an 802.1Q or 802.1ad tag for a VLAN (the kernel has moved the
 * outer tag into the skb before TC ingress). A priority tag, VLAN 0, is untagged to the
 * kernel too. The frame then belongs to a VLAN device, or to no one: never to the
 * interface the program runs on. */
static __always_inline int vlan_tagged(const struct __sk_buff *skb)
{
	return skb->vlan_present && (skb->vlan_tci & 0x0fff);
}

#endif
