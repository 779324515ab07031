/* Sending into the VXLAN tunnel: the tunnel key the collect_md device builds the outer
 * headers from, and the inner Ethernet header a Flannel VTEP accepts. */
#ifndef WEFT_LIB_TUNNEL_H
#define WEFT_LIB_TUNNEL_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "weft_maps.h"
#include "config.h"
#include "eth.h"

/* Points the frame at the peer's VTEP: outer destination its underlay IP, our VNI;
 * inner destination its VTEP MAC (a kernel VTEP drops anything else), inner source ours. */
static __always_inline int set_tunnel(struct __sk_buff *skb, struct ethhdr *eth, const struct weft_peer *peer)
{
	struct bpf_tunnel_key key = {
		.remote_ipv4 = bpf_ntohl(peer->underlay_ip),
		.tunnel_id = weft_vni,
		.tunnel_ttl = 64,
	};
	__u8 our_mac[ETH_ALEN];

	read_vtep_mac(our_mac);
	rewrite_macs(eth, peer->vtep_mac, our_mac);
	return bpf_skb_set_tunnel_key(skb, &key, sizeof(key), BPF_F_ZERO_CSUM_TX);
}

#endif
