/* Map keys, values and counter indices shared by the BPF programs and the Swift loader.
 * Plain C with kernel uapi types only, so both sides compile the same layout. */
#ifndef WEFT_MAPS_H
#define WEFT_MAPS_H

#include <linux/types.h>

/* How a peer subnet is reached. */
enum weft_peer_mode {
	/* Encapsulate in VXLAN to the peer's underlay IP (Flannel's vxlan backend). */
	WEFT_MODE_VXLAN = 1,
	/* Route straight to the peer's underlay IP (host-gw, or vxlan DirectRouting on-link). */
	WEFT_MODE_DIRECT = 2,
};

/* LPM trie key: a peer's pod subnet. `prefixlen` first, as the kernel requires. */
struct weft_peer_key {
	__u32 prefixlen;
	__u32 addr; /* network order */
};

struct weft_peer {
	__u32 underlay_ip; /* network order */
	__u8 vtep_mac[6];
	__u8 mode; /* enum weft_peer_mode */
	__u8 reserved;
};

/* Underlay IP of a VXLAN peer -> its subnet: decap checks the outer source against it. */
struct weft_tunnel_key {
	__u32 underlay_ip; /* network order */
};

/* A pod on this node, keyed by its IPv4 address (network order). */
struct weft_endpoint_key {
	__u32 addr;
};

struct weft_endpoint {
	__u32 ifindex;      /* the pod's host-side veth */
	__u8 pod_mac[6];    /* the MAC of the pod's own interface */
	__u8 host_mac[6];   /* the MAC of the host-side veth: the pod's next hop */
	__u32 reserved;
};

/* Per-CPU counters, one slot per outcome. */
enum weft_counter {
	WEFT_CTR_ENCAPSULATED = 0,     /* from a pod into the VXLAN tunnel */
	WEFT_CTR_ROUTED_DIRECT = 1,    /* from a pod straight to a peer over the underlay */
	WEFT_CTR_DELIVERED_LOCAL = 2,  /* into a local pod */
	WEFT_CTR_PASSED_TO_STACK = 3,  /* left to the kernel */
	WEFT_CTR_DROP_BAD_VNI = 4,
	WEFT_CTR_DROP_UNKNOWN_PEER = 5,    /* outer source is no peer of ours */
	WEFT_CTR_DROP_SPOOFED_SOURCE = 6,  /* inner source outside the sending peer's subnet */
	WEFT_CTR_DROP_MALFORMED = 7,
	WEFT_CTR_ENCAPSULATED_FROM_STACK = 8, /* kernel-routed traffic given a tunnel on the vxlan device */
	WEFT_CTR_DROP_NO_PEER = 9,         /* routed into the overlay with no VXLAN peer for it */
	WEFT_CTR_DROP_POD_SPOOFED = 10,    /* a pod sent from an address that is not its own */
	WEFT_CTR_DROP_UNDERLAY_UNTRUSTED = 11, /* plain IP to the cluster network from no direct peer */
	WEFT_CTR_DROP_UNDERLAY_WRONG_HOP = 12, /* a direct peer's traffic from another host's MAC */
	WEFT_CTR_PASSED_UNVERIFIED_HOP = 13,   /* a direct peer's, with no neighbour entry to check the hop against */
	WEFT_CTR_COUNT = 14,
};

struct weft_counter_value {
	__u64 packets;
	__u64 bytes;
};

#define WEFT_MAX_PEERS 65536
#define WEFT_MAX_ENDPOINTS 16384

#endif
