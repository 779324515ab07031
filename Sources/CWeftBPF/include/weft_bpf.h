/* The one adapter over libbpf: everything Swift cannot call directly (opts structs
 * built with LIBBPF_OPTS, BTF walks), each returning 0 or a negative errno. */
#ifndef WEFT_BPF_H
#define WEFT_BPF_H

#include <stddef.h>
#include <linux/types.h>
#include "weft_maps.h"

struct bpf_object;

/* Opens an object file; maps marked LIBBPF_PIN_BY_NAME are pinned (or reused) under pin_root. */
struct bpf_object *weft_object_open(const char *path, const char *pin_root, int *error);

/* Sets a `const volatile` global before load. -ENOENT: no such variable; -EINVAL: wrong size. */
int weft_object_set_global(struct bpf_object *object, const char *name, const void *value, size_t size);
/* The .rodata section's variables: how many, and each one's name and size in bytes. */
int weft_object_global_count(struct bpf_object *object);
const char *weft_object_global(struct bpf_object *object, int index, size_t *size);

/* Attaches a program at the TC ingress (ingress != 0) or egress hook of an interface,
 * creating the clsact qdisc if needed (tolerating one that exists). */
int weft_tc_attach(int ifindex, int ingress, int program_fd, __u32 handle, __u32 priority);

/* Detaches the filter Weft attached at that hook; the qdisc stays for others. */
int weft_tc_detach(int ifindex, int ingress, __u32 handle, __u32 priority);

/* The id of the program attached at that hook and priority, or a negative errno. */
int weft_tc_query(int ifindex, int ingress, __u32 handle, __u32 priority, __u32 *program_id);

/* Pins each map the program with this id uses whose name starts with "weft_", as
 * pin_root/<name>, unless a pin of that name exists: how a node whose pins were deleted
 * gets back the maps its attached programs still hold. Returns how many it pinned, or a
 * negative errno. */
int weft_pin_program_maps(__u32 program_id, const char *pin_root, const char *const *names, size_t count);

/* The name of a counter slot (`enum weft_counter` in weft_maps.h), as the CLI and the
 * metrics print it; NULL for a slot that has none. */
const char *weft_counter_name(__u32 counter);

/* What a counter slot's outcome is. */
enum weft_outcome {
	WEFT_OUTCOME_UNKNOWN = 0,
	WEFT_OUTCOME_FORWARDED = 1, /* the program sent it on itself */
	WEFT_OUTCOME_PASSED = 2,    /* left to the kernel */
	WEFT_OUTCOME_DROPPED = 3,
};

enum weft_outcome weft_counter_outcome(__u32 counter);

/* The name of a hook (`enum weft_hook`), NULL for none; and whether it sees traffic leave
 * (from pods, into the tunnel) rather than arrive. */
const char *weft_hook_name(__u32 hook);
int weft_hook_is_egress(__u32 hook);

/* Runs a TC program once on a packet (BPF_PROG_TEST_RUN). */
int weft_prog_test_run(int program_fd, const void *data, __u32 size, void *out, __u32 *out_size, __u32 *retval,
		       __u32 ingress_ifindex, __u32 gso_size);

/* 1 if path lies on a bpffs, 0 if not, a negative errno if it cannot be examined. */
/* Whether bpf_skb_adjust_room can decapsulate a GRO aggregate of UDP tunnel packets, resetting
 * its tunnel GSO state (BPF_F_ADJ_ROOM_DECAP_L4_UDP): 1, 0, or a negative errno. */
int weft_probe_decap_clears_tunnel_gso(void);
int weft_is_bpffs(const char *path);

#endif
