/* IPv4 header edits that keep the checksum right. */
#ifndef WEFT_LIB_IPV4_H
#define WEFT_LIB_IPV4_H

#include <linux/ip.h>
#include <bpf/bpf_endian.h>

/* <sys/socket.h>'s, which a BPF program cannot include: the family bpf_redirect_neigh takes. */
#ifndef AF_INET
#define AF_INET 2
#endif

/* The kernel's IP_MF | IP_OFFSET (net/ip.h, not uapi): set on any fragment. */
#define IPV4_FRAGMENT_BITS bpf_htons(0x3fff)
/* The "don't fragment" bit of frag_off, host order. */
#define IPV4_DONT_FRAGMENT 0x4000
/* ECN "congestion experienced" in the TOS byte (RFC 3168). */
#define IPV4_ECN_CE 3

/* Decrements the TTL in place as a router would, patching the header checksum
 * incrementally (RFC 1624, as the kernel's ip_decrease_ttl). The caller has checked ttl > 1. */
static __always_inline void decrement_ttl(struct iphdr *ip)
{
	__u32 check = (__u32)ip->check + bpf_htons(0x0100);

	ip->check = (__u16)(check + (check >= 0xffff));
	ip->ttl--;
}

/* The ones' complement sum of a 20-byte header (no options), folded to 16 bits. */
static __always_inline __u16 ipv4_header_sum(const struct iphdr *ip)
{
	const __u16 *word = (const __u16 *)ip;
	__u32 sum = 0;

	for (int i = 0; i < (int)(sizeof(*ip) / sizeof(__u16)); i++)
		sum += word[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* True when a 20-byte header (no options) sums to all ones, as ip_rcv requires. */
static __always_inline int ipv4_checksum_valid(const struct iphdr *ip)
{
	return ipv4_header_sum(ip) == 0xffff;
}

#endif
