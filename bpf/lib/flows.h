/* TCP flows with segments waiting on the vxlan device's path, so that from_underlay can
 * take a flow's single segments straight to its pod without overtaking its aggregates.
 *
 * GRO aggregates of TCP must take the vxlan device where the kernel cannot reset their
 * tunnel GSO state from BPF, and the device queues them (gro_cells) before from_overlay
 * delivers them. A single segment of the same flow decapsulated in from_underlay would be
 * delivered first. So every TCP segment from_underlay leaves to the device is counted for
 * its flow, from_overlay counts it off as it arrives there, and from_underlay takes a
 * segment itself only while its flow has none waiting. The count is per CPU: the device
 * queues on the CPU that received the packet, and delivers it there. A count left behind
 * by a segment the kernel dropped on the way lapses after WEFT_DEVICE_QUEUE_LAPSE_NS. */
#ifndef WEFT_LIB_FLOWS_H
#define WEFT_LIB_FLOWS_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include "parse.h"
#include "weft_maps.h"

/* Far longer than a segment spends in the device's queue, even deferred to ksoftirqd. */
#define WEFT_DEVICE_QUEUE_LAPSE_NS (100ULL * 1000 * 1000)
/* What from_underlay needs in the linear part to key a flow: outer Ethernet, IPv4, UDP and
 * VXLAN, inner Ethernet, IPv4 and the TCP ports. */
#define WEFT_FLOW_HEADERS (14 + 20 + 8 + 8 + 14 + 20 + 4)

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__type(key, struct weft_flow_key);
	__type(value, struct weft_device_queue);
	__uint(max_entries, WEFT_MAX_DEVICE_FLOWS);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_device_flows SEC(".maps");

/* The TCP flow of an inner IPv4 packet whose header `cursor` has just passed. Returns 0
 * when it is not TCP. */
static __always_inline int tcp_flow(const struct iphdr *ip, const struct cursor *cursor, struct weft_flow_key *key)
{
	__be16 *ports = cursor->pos;

	if (ip->protocol != IPPROTO_TCP)
		return 0;
	key->saddr = ip->saddr;
	key->daddr = ip->daddr;
	key->sport = 0;
	key->dport = 0;
	if (ip->ihl == 5 && (void *)(ports + 2) <= cursor->end) {
		key->sport = ports[0];
		key->dport = ports[1];
	}
	return 1;
}

/* from_underlay: whether segments of this flow wait on the device's path. */
static __always_inline int waiting_on_device(const struct weft_flow_key *key)
{
	struct weft_device_queue *queue = bpf_map_lookup_elem(&weft_device_flows, key);

	return queue && queue->waiting && bpf_ktime_get_ns() - queue->updated_ns < WEFT_DEVICE_QUEUE_LAPSE_NS;
}

/* from_underlay: one more segment of this flow is left to the device. */
static __always_inline void leave_to_device(const struct weft_flow_key *key)
{
	struct weft_device_queue *queue = bpf_map_lookup_elem(&weft_device_flows, key);
	__u64 now = bpf_ktime_get_ns();

	if (queue && now - queue->updated_ns < WEFT_DEVICE_QUEUE_LAPSE_NS) {
		queue->waiting++;
		queue->updated_ns = now;
		return;
	}
	struct weft_device_queue fresh = { .waiting = 1, .updated_ns = now };
	bpf_map_update_elem(&weft_device_flows, key, &fresh, BPF_ANY);
}

/* from_overlay: a segment of this flow has come through the device. */
static __always_inline void arrived_from_device(const struct weft_flow_key *key)
{
	struct weft_device_queue *queue = bpf_map_lookup_elem(&weft_device_flows, key);

	if (queue && queue->waiting)
		queue->waiting--;
}

#endif
