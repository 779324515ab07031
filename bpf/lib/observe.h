/* What the programs decide, counted and reported: per-CPU counters by hook and outcome, and
 * the weft_events ring buffer `weft monitor` reads (every drop, at most
 * WEFT_DROP_EVENTS_PER_SECOND per CPU; every decision while a monitor traces). A program
 * defines WEFT_HOOK (enum weft_hook) before including this. */
#ifndef WEFT_LIB_OBSERVE_H
#define WEFT_LIB_OBSERVE_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "weft_maps.h"

#ifndef WEFT_HOOK
#error "define WEFT_HOOK before including lib/observe.h"
#endif

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct weft_counter_value);
	__uint(max_entries, WEFT_HOOK_COUNT * WEFT_CTR_COUNT);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, WEFT_EVENTS_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct weft_monitor_settings);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_monitor SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct weft_event_budget);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} weft_event_budget SEC(".maps");

/* The tunnel a packet came through or goes into, for its event. */
struct tunnel_facts {
	__u32 vni;
	__u32 peer; /* underlay IP, network order */
};

static __always_inline void count(struct __sk_buff *skb, enum weft_counter counter)
{
	__u32 key = WEFT_HOOK * WEFT_CTR_COUNT + counter;
	struct weft_counter_value *value = bpf_map_lookup_elem(&weft_counters, &key);

	if (value) {
		value->packets++;
		value->bytes += skb->len;
	}
}

/* True while a monitor asks for every decision and its lease holds: one lookup and a branch
 * otherwise. */
static __always_inline int tracing(void)
{
	__u32 key = 0;
	struct weft_monitor_settings *settings = bpf_map_lookup_elem(&weft_monitor, &key);

	return settings && settings->trace && bpf_ktime_get_ns() < settings->trace_until_ns;
}

/* A drop event may go out unless this CPU sent its share this second; a flood of dropped
 * packets costs a counter increment each beyond that. */
static __always_inline int within_budget(void)
{
	__u32 key = 0;
	struct weft_event_budget *budget = bpf_map_lookup_elem(&weft_event_budget, &key);
	__u64 now;

	if (!budget)
		return 0;
	now = bpf_ktime_get_ns();
	if (now - budget->window_start_ns >= 1000000000ULL) {
		budget->window_start_ns = now;
		budget->sent = 0;
	}
	if (budget->sent >= WEFT_DROP_EVENTS_PER_SECOND) {
		budget->suppressed++;
		return 0;
	}
	budget->sent++;
	return 1;
}

/* Sends one event. `ip` (or NULL) must still be a valid packet pointer: call before any
 * helper that moves the packet's data. */
static __always_inline void report(struct __sk_buff *skb, __u8 type, enum weft_counter reason, const struct iphdr *ip,
				   const struct tunnel_facts *tunnel)
{
	void *end = (void *)(long)skb->data_end;
	struct weft_event *event = bpf_ringbuf_reserve(&weft_events, sizeof(*event), 0);

	if (!event)
		return;
	__builtin_memset(event, 0, sizeof(*event));
	event->timestamp_ns = bpf_ktime_get_ns();
	event->type = type;
	event->hook = WEFT_HOOK;
	event->reason = reason;
	event->ifindex = skb->ifindex;
	event->length = skb->len;
	if (tunnel) {
		event->vni = tunnel->vni;
		event->peer = tunnel->peer;
	}
	if (ip && (void *)(ip + 1) <= end) {
		const __u16 *ports = (const void *)ip + ip->ihl * 4;

		event->protocol = ip->protocol;
		event->saddr = ip->saddr;
		event->daddr = ip->daddr;
		if ((ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP) && (void *)(ports + 2) <= end) {
			event->sport = ports[0];
			event->dport = ports[1];
		}
	}
	bpf_ringbuf_submit(event, 0);
}

/* Counts a drop, reports it within the budget, and returns the verdict. */
static __always_inline int drop(struct __sk_buff *skb, enum weft_counter reason, const struct iphdr *ip,
				const struct tunnel_facts *tunnel)
{
	count(skb, reason);
	if (within_budget())
		report(skb, WEFT_EVENT_DROP, reason, ip, tunnel);
	return TC_ACT_SHOT;
}

/* Counts a forwarding decision or a pass to the kernel, reported while a monitor traces. */
static __always_inline void decided(struct __sk_buff *skb, enum weft_counter outcome, const struct iphdr *ip,
				    const struct tunnel_facts *tunnel)
{
	count(skb, outcome);
	if (tracing())
		report(skb, WEFT_EVENT_TRACE, outcome, ip, tunnel);
}

/* Leaves to the kernel a packet it will refuse (too big with "don't fragment"): counted by
 * why, and reported with the drops, since it does not reach its destination. */
static __always_inline int refuse(struct __sk_buff *skb, enum weft_counter reason, const struct iphdr *ip)
{
	count(skb, reason);
	if (within_budget())
		report(skb, WEFT_EVENT_DROP, reason, ip, NULL);
	return TC_ACT_OK;
}

/* Leaves the packet to the kernel, counted by why. */
static __always_inline int pass(struct __sk_buff *skb, enum weft_counter reason, const struct iphdr *ip)
{
	decided(skb, reason, ip, NULL);
	return TC_ACT_OK;
}

#endif
