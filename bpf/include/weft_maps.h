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

/* Where a program runs. Counters are kept per hook, and events name it. */
enum weft_hook {
	WEFT_HOOK_FROM_POD = 0,      /* TC ingress of a pod's host-side veth: traffic leaving pods (egress) */
	WEFT_HOOK_FROM_UNDERLAY = 1, /* TC ingress of the underlay interface: traffic arriving (ingress) */
	WEFT_HOOK_FROM_OVERLAY = 2,  /* TC ingress of the vxlan device: what the kernel decapsulated (ingress) */
	WEFT_HOOK_TO_OVERLAY = 3,    /* TC egress of the vxlan device: kernel-routed traffic into the tunnel (egress) */
	WEFT_HOOK_COUNT = 4,
};

/* Per-CPU counters, one slot per outcome and hook (key: hook * WEFT_CTR_COUNT + outcome).
 * weft_counter_outcome (CWeftBPF) says which slots forward, pass to the kernel or drop. */
enum weft_counter {
	/* Forwarded by the program. */
	WEFT_CTR_ENCAPSULATED = 0,     /* from a pod into the VXLAN tunnel */
	WEFT_CTR_ROUTED_DIRECT = 1,    /* from a pod straight to a peer over the underlay */
	WEFT_CTR_DELIVERED_LOCAL = 2,  /* into a local pod */
	WEFT_CTR_ENCAPSULATED_FROM_STACK = 3, /* kernel-routed traffic given a tunnel on the vxlan device */
	/* Left to the kernel, by reason. */
	WEFT_CTR_PASSED_NOT_IPV4 = 4,      /* ARP, IPv6, runts: the kernel answers them */
	WEFT_CTR_PASSED_TTL_EXPIRING = 5,  /* the kernel sends ICMP time exceeded */
	WEFT_CTR_PASSED_NO_ROUTE = 6,      /* no local pod and no peer: services, the host, the internet */
	WEFT_CTR_PASSED_TOO_BIG = 7,       /* larger than the tunnel: the kernel fragments or sends "fragmentation needed" */
	WEFT_CTR_PASSED_SLOW_PATH = 8,     /* VXLAN the fast path does not take (TCP, aggregates, options), and what a program cannot handle */
	WEFT_CTR_PASSED_HOST = 9,          /* the host's own traffic on the underlay */
	WEFT_CTR_PASSED_UNVERIFIED_HOP = 10, /* a direct peer's, with no neighbour entry to check the hop against */
	WEFT_CTR_PASSED_TOO_BIG_DF = 11,   /* larger than the tunnel with "don't fragment": the kernel refuses it with
					    * "fragmentation needed", so it is reported as a drop */
	/* Dropped, by reason. */
	WEFT_CTR_DROP_BAD_VNI = 12,
	WEFT_CTR_DROP_UNKNOWN_PEER = 13,    /* outer source is no peer of ours */
	WEFT_CTR_DROP_SPOOFED_SOURCE = 14,  /* inner source outside the sending peer's subnet */
	WEFT_CTR_DROP_MALFORMED = 15,
	WEFT_CTR_DROP_NO_PEER = 16,         /* routed into the overlay with no VXLAN peer for it */
	WEFT_CTR_DROP_POD_SPOOFED = 17,     /* a pod sent from an address that is not its own */
	WEFT_CTR_DROP_UNDERLAY_UNTRUSTED = 18, /* plain IP to the cluster network from no direct peer */
	WEFT_CTR_DROP_UNDERLAY_WRONG_HOP = 19, /* a peer's traffic from another host's MAC */
	/* Added later, numbered after the first ones so a counter keeps its slot across upgrades. */
	WEFT_CTR_PASSED_VLAN_TAGGED = 20,  /* a frame tagged for a VLAN: the kernel's VLAN devices take it or it drops */
	WEFT_CTR_DROP_OVERLAY_TRANSIT = 21, /* from the overlay back into it: no Flannel network routes through a node */
	WEFT_CTR_DROP_POD_ARP_SPOOFED = 22, /* a pod's ARP answer claiming an address or MAC not its own */
	WEFT_CTR_DROP_OTHER_HOST = 23,      /* decapsulated, for another MAC than our VTEP's: the kernel drops it too */
	WEFT_CTR_PASSED_ARP_AS_PROBE = 24,  /* a pod's ARP request from an address not its own, asked as a probe: answered, nothing learnt */
	WEFT_CTR_COUNT = 25,
};

/* What `weft monitor` reads from the weft_events ring buffer: one record per drop (at most
 * WEFT_DROP_EVENTS_PER_SECOND per CPU) and, while weft_monitor's `trace` is set, one per
 * decision. Addresses and ports in network order, 0 where there are none. */
enum weft_event_type {
	WEFT_EVENT_DROP = 1,
	WEFT_EVENT_TRACE = 2,
};

struct weft_event {
	__u64 timestamp_ns; /* bpf_ktime_get_ns */
	__u8 type;          /* enum weft_event_type */
	__u8 hook;          /* enum weft_hook */
	__u8 protocol;      /* IP protocol of the (inner) packet */
	__u8 reserved;
	__u32 reason;       /* enum weft_counter */
	__u32 ifindex;      /* the interface the program runs on */
	__u32 length;       /* bytes */
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u32 vni;
	__u32 peer;         /* the underlay IP of the peer it came from or goes to */
	__u32 reserved2;
};

/* weft_monitor's one entry, written by `weft monitor`. Every decision is reported while a
 * monitor traces and its lease holds: a tracing monitor renews the lease every second, so
 * tracing ends within WEFT_TRACE_LEASE_NS of the last one's end, however it ends (killed,
 * hung up, its pipe closed). */
struct weft_monitor_settings {
	__u32 trace;          /* monitors that said they trace (one killed is never counted off) */
	__u32 reserved;
	__u64 trace_until_ns; /* bpf_ktime_get_ns (CLOCK_MONOTONIC): the lease's end */
};

#define WEFT_TRACE_LEASE_NS 3000000000ULL

/* Per CPU: the drop events sent in the current second, and those the limit held back. */
struct weft_event_budget {
	__u64 window_start_ns;
	__u64 sent;
	__u64 suppressed;
};

#define WEFT_DROP_EVENTS_PER_SECOND 1000
#define WEFT_EVENTS_BYTES (256 * 1024)

struct weft_counter_value {
	__u64 packets;
	__u64 bytes;
};

#define WEFT_MAX_PEERS 65536
#define WEFT_MAX_ENDPOINTS 16384

/* weft_device_flows (lib/flows.h): an inner TCP flow, and how many of its segments wait on
 * the vxlan device's path on one CPU. Ports are 0 where the header has IPv4 options. */
struct weft_flow_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
};

struct weft_device_queue {
	__u32 waiting;    /* segments of the flow between from_underlay and from_overlay */
	__u32 pad;
	__u64 updated_ns; /* when from_underlay last left one to the device */
};

#define WEFT_MAX_DEVICE_FLOWS 16384

#endif
