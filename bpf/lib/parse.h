/* A parse cursor and one bounds-checked parser per header. */
#ifndef WEFT_LIB_PARSE_H
#define WEFT_LIB_PARSE_H

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

#endif
