/* The maps every program shares, pinned by name so that all programs (and the loader
 * after a restart) use the same instances. */
#ifndef WEFT_LIB_MAPS_H
#define WEFT_LIB_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "weft_maps.h"

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct weft_peer_key);
	__type(value, struct weft_peer);
	__uint(max_entries, WEFT_MAX_PEERS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_peers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct weft_tunnel_key);
	__type(value, struct weft_peer_key);
	__uint(max_entries, WEFT_MAX_PEERS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_tunnels SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct weft_endpoint_key);
	__type(value, struct weft_endpoint);
	__uint(max_entries, WEFT_MAX_ENDPOINTS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_endpoints SEC(".maps");

static __always_inline struct weft_peer *lookup_peer(__u32 addr)
{
	struct weft_peer_key key = { .prefixlen = 32, .addr = addr };

	return bpf_map_lookup_elem(&weft_peers, &key);
}

/* The subnet of the VXLAN peer at this underlay IP, or NULL if it is no peer of ours. */
static __always_inline struct weft_peer_key *lookup_tunnel(__u32 underlay_ip)
{
	struct weft_tunnel_key key = { .underlay_ip = underlay_ip };

	return bpf_map_lookup_elem(&weft_tunnels, &key);
}

/* The peer at this underlay IP, if it reaches us the way `mode` says (VXLAN or direct). */
static __always_inline struct weft_peer *peer_at(__u32 underlay_ip, __u8 mode)
{
	struct weft_peer_key *subnet = lookup_tunnel(underlay_ip);
	struct weft_peer *peer = subnet ? lookup_peer(subnet->addr) : NULL;

	return peer && peer->mode == mode && peer->underlay_ip == underlay_ip ? peer : NULL;
}

/* True when the VXLAN peer at this underlay IP may send from this inner source: an address
 * it owns, in its pod subnet (its `<subnet>/32` on the vxlan device among them) or its own
 * underlay IP, which its host answers our pods from (hostNetwork pods, the kubelet). */
static __always_inline int peer_sends_from(__u32 underlay_ip, __u32 source)
{
	struct weft_peer *sender;

	if (source == underlay_ip)
		return 1;
	sender = lookup_peer(source);
	return sender && sender->mode == WEFT_MODE_VXLAN && sender->underlay_ip == underlay_ip;
}

static __always_inline struct weft_endpoint *lookup_endpoint(__u32 addr)
{
	struct weft_endpoint_key key = { .addr = addr };

	return bpf_map_lookup_elem(&weft_endpoints, &key);
}

#endif
