#include "weft_bpf.h"
#include "weft_kernel.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

/* The kernel's notes on TC operations whose outcome the callers handle themselves: a
 * clsact qdisc that already exists (every attach after the first), and no filter or
 * qdisc where a detach or query looks (the answer they asked for). */
static const char *const expected_tc_notes[] = {
	"Exclusivity flag on",
	"Parent Qdisc doesn't exists",
	"Cannot find specified filter chain",
	"Filter with specified priority/protocol not found",
};

/* libbpf's warnings go to stderr as before, without the expected notes above. */
static int print_libbpf(enum libbpf_print_level level, const char *format, va_list args)
{
	char line[512];

	if (level == LIBBPF_DEBUG)
		return 0;
	vsnprintf(line, sizeof(line), format, args);
	for (size_t i = 0; i < sizeof(expected_tc_notes) / sizeof(expected_tc_notes[0]); i++)
		if (strstr(line, expected_tc_notes[i]))
			return 0;
	return fputs(line, stderr);
}

__attribute__((constructor)) static void install_libbpf_printer(void)
{
	libbpf_set_print(print_libbpf);
}

/* Maps whose contents a node can lose at no cost: counters, monitor state, and the TCP flows
 * waiting on the vxlan device (a lost count lets one segment through early, at worst). */
static const char *const rebuildable_maps[] = { "weft_counters", "weft_events", "weft_monitor", "weft_event_budget",
						"weft_device_flows" };

static int is_rebuildable(const char *name)
{
	for (size_t i = 0; i < sizeof(rebuildable_maps) / sizeof(rebuildable_maps[0]); i++)
		if (strcmp(name, rebuildable_maps[i]) == 0)
			return 1;
	return 0;
}

/* A node upgraded in place finds the pins of the last version's maps. Where a rebuildable
 * map's definition changed (more counter slots, say) its pin goes, so the new programs get
 * a new map instead of failing to reuse the old one; the old programs keep theirs until
 * they are replaced. Other maps hold state and keep libbpf's refusal. */
static void unpin_changed_rebuildable_maps(struct bpf_object *object, const char *pin_root)
{
	struct bpf_map *map;

	bpf_object__for_each_map(map, object) {
		struct bpf_map_info info = {};
		__u32 length = sizeof(info);
		char path[4096];
		int fd;

		if (!is_rebuildable(bpf_map__name(map)))
			continue;
		snprintf(path, sizeof(path), "%s/%s", pin_root, bpf_map__name(map));
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		if (!bpf_obj_get_info_by_fd(fd, &info, &length) &&
		    (info.type != bpf_map__type(map) || info.key_size != bpf_map__key_size(map) ||
		     info.value_size != bpf_map__value_size(map) || info.max_entries != bpf_map__max_entries(map)))
			unlink(path);
		close(fd);
	}
}

struct bpf_object *weft_object_open(const char *path, const char *pin_root, int *error)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_root);
	struct bpf_object *object = bpf_object__open_file(path, &opts);

	*error = object ? 0 : -errno;
	if (object && pin_root)
		unpin_changed_rebuildable_maps(object, pin_root);
	return object;
}

static struct bpf_map *rodata_map(struct bpf_object *object)
{
	struct bpf_map *map;

	bpf_object__for_each_map(map, object) {
		const char *name = bpf_map__name(map);
		size_t length = strlen(name);

		if (bpf_map__is_internal(map) && length >= 7 && strcmp(name + length - 7, ".rodata") == 0)
			return map;
	}
	return NULL;
}

int weft_object_set_global(struct bpf_object *object, const char *name, const void *value, size_t size)
{
	struct btf *btf = bpf_object__btf(object);
	struct bpf_map *map = rodata_map(object);
	const struct btf_var_secinfo *info;
	const struct btf_type *section;
	size_t data_size = 0;
	__u8 *data;
	int id, i;

	if (!btf || !map)
		return -ENOENT;
	id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
	if (id < 0)
		return -ENOENT;
	section = btf__type_by_id(btf, id);
	data = bpf_map__initial_value(map, &data_size);
	if (!data)
		return -ENOENT;
	info = btf_var_secinfos(section);
	for (i = 0; i < btf_vlen(section); i++, info++) {
		const struct btf_type *variable = btf__type_by_id(btf, info->type);

		if (strcmp(btf__name_by_offset(btf, variable->name_off), name) != 0)
			continue;
		if (info->size != size || info->offset + size > data_size)
			return -EINVAL;
		memcpy(data + info->offset, value, size);
		return 0;
	}
	return -ENOENT;
}

int weft_object_global_count(struct bpf_object *object)
{
	struct btf *btf = bpf_object__btf(object);
	int id;

	if (!btf)
		return -ENOENT;
	id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
	if (id < 0)
		return 0;
	return btf_vlen(btf__type_by_id(btf, id));
}

const char *weft_object_global(struct bpf_object *object, int index, size_t *size)
{
	struct btf *btf = bpf_object__btf(object);
	const struct btf_var_secinfo *info;
	const struct btf_type *section;
	int id;

	if (!btf)
		return NULL;
	id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
	if (id < 0)
		return NULL;
	section = btf__type_by_id(btf, id);
	if (index < 0 || index >= btf_vlen(section))
		return NULL;
	info = btf_var_secinfos(section) + index;
	*size = info->size;
	return btf__name_by_offset(btf, btf__type_by_id(btf, info->type)->name_off);
}

int weft_tc_attach(int ifindex, int ingress, int program_fd, __u32 handle, __u32 priority)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
		    .attach_point = ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = handle, .priority = priority,
		    .prog_fd = program_fd, .flags = BPF_TC_F_REPLACE);
	int err = bpf_tc_hook_create(&hook);

	if (err && err != -EEXIST)
		return err;
	return bpf_tc_attach(&hook, &opts);
}

int weft_tc_detach(int ifindex, int ingress, __u32 handle, __u32 priority)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
		    .attach_point = ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = handle, .priority = priority);

	return bpf_tc_detach(&hook, &opts);
}

int weft_tc_query(int ifindex, int ingress, __u32 handle, __u32 priority, __u32 *program_id)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
		    .attach_point = ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = handle, .priority = priority);
	int err = bpf_tc_query(&hook, &opts);

	if (!err)
		*program_id = opts.prog_id;
	return err;
}

/* The map's full name: the kernel keeps BPF_OBJ_NAME_LEN - 1 characters of it
 * (weft_device_flows is weft_device_flo there), so a name cut to that length is looked up
 * among the names the loader knows. */
static const char *full_map_name(const char *kernel_name, const char *const *names, size_t count)
{
	size_t length = strlen(kernel_name);

	for (size_t i = 0; i < count; i++) {
		if (strcmp(names[i], kernel_name) == 0)
			return names[i];
		if (length == BPF_OBJ_NAME_LEN - 1 && strncmp(names[i], kernel_name, length) == 0)
			return names[i];
	}
	return kernel_name;
}

int weft_pin_program_maps(__u32 program_id, const char *pin_root, const char *const *names, size_t count)
{
	__u32 map_ids[64];
	struct bpf_prog_info info;
	__u32 length = sizeof(info);
	int program = bpf_prog_get_fd_by_id(program_id);
	int pinned = 0;

	if (program < 0)
		return -errno;
	memset(&info, 0, sizeof(info));
	info.nr_map_ids = sizeof(map_ids) / sizeof(map_ids[0]);
	info.map_ids = (__u64)(unsigned long)map_ids;
	if (bpf_obj_get_info_by_fd(program, &info, &length)) {
		int err = -errno;
		close(program);
		return err;
	}
	close(program);
	if (info.nr_map_ids > sizeof(map_ids) / sizeof(map_ids[0]))
		info.nr_map_ids = sizeof(map_ids) / sizeof(map_ids[0]);
	for (__u32 i = 0; i < info.nr_map_ids; i++) {
		struct bpf_map_info map_info;
		__u32 map_length = sizeof(map_info);
		char path[4096];
		int map = bpf_map_get_fd_by_id(map_ids[i]);

		if (map < 0)
			return -errno;
		memset(&map_info, 0, sizeof(map_info));
		if (bpf_obj_get_info_by_fd(map, &map_info, &map_length)) {
			int err = -errno;
			close(map);
			return err;
		}
		if (strncmp(map_info.name, "weft_", 5) == 0) {
			snprintf(path, sizeof(path), "%s/%s", pin_root, full_map_name(map_info.name, names, count));
			if (access(path, F_OK) != 0) {
				if (bpf_obj_pin(map, path)) {
					int err = -errno;
					close(map);
					return err;
				}
				pinned++;
			}
		}
		close(map);
	}
	return pinned;
}

const char *weft_counter_name(__u32 counter)
{
	/* No default: the compiler warns (-Wswitch) when weft_maps.h gains a slot this lacks. */
	switch ((enum weft_counter)counter) {
	case WEFT_CTR_ENCAPSULATED: return "encapsulated";
	case WEFT_CTR_ROUTED_DIRECT: return "routed_direct";
	case WEFT_CTR_DELIVERED_LOCAL: return "delivered_local";
	case WEFT_CTR_ENCAPSULATED_FROM_STACK: return "encapsulated_from_stack";
	case WEFT_CTR_PASSED_NOT_IPV4: return "passed_not_ipv4";
	case WEFT_CTR_PASSED_TTL_EXPIRING: return "passed_ttl_expiring";
	case WEFT_CTR_PASSED_NO_ROUTE: return "passed_no_route";
	case WEFT_CTR_PASSED_TOO_BIG: return "passed_too_big";
	case WEFT_CTR_PASSED_SLOW_PATH: return "passed_slow_path";
	case WEFT_CTR_PASSED_HOST: return "passed_host";
	case WEFT_CTR_PASSED_UNVERIFIED_HOP: return "passed_unverified_hop";
	case WEFT_CTR_PASSED_TOO_BIG_DF: return "passed_too_big_df";
	case WEFT_CTR_DROP_BAD_VNI: return "dropped_bad_vni";
	case WEFT_CTR_DROP_UNKNOWN_PEER: return "dropped_unknown_peer";
	case WEFT_CTR_DROP_SPOOFED_SOURCE: return "dropped_spoofed_source";
	case WEFT_CTR_DROP_MALFORMED: return "dropped_malformed";
	case WEFT_CTR_DROP_NO_PEER: return "dropped_no_peer";
	case WEFT_CTR_DROP_POD_SPOOFED: return "dropped_pod_spoofed_source";
	case WEFT_CTR_DROP_UNDERLAY_UNTRUSTED: return "dropped_untrusted_underlay";
	case WEFT_CTR_DROP_UNDERLAY_WRONG_HOP: return "dropped_underlay_wrong_hop";
	case WEFT_CTR_PASSED_VLAN_TAGGED: return "passed_vlan_tagged";
	case WEFT_CTR_DROP_OVERLAY_TRANSIT: return "dropped_overlay_transit";
	case WEFT_CTR_DROP_POD_ARP_SPOOFED: return "dropped_pod_arp_spoofed";
	case WEFT_CTR_DROP_OTHER_HOST: return "dropped_other_host";
	case WEFT_CTR_PASSED_ARP_AS_PROBE: return "passed_arp_as_probe";
	case WEFT_CTR_COUNT: break;
	}
	return NULL;
}

enum weft_outcome weft_counter_outcome(__u32 counter)
{
	switch ((enum weft_counter)counter) {
	case WEFT_CTR_ENCAPSULATED:
	case WEFT_CTR_ROUTED_DIRECT:
	case WEFT_CTR_DELIVERED_LOCAL:
	case WEFT_CTR_ENCAPSULATED_FROM_STACK:
		return WEFT_OUTCOME_FORWARDED;
	case WEFT_CTR_PASSED_NOT_IPV4:
	case WEFT_CTR_PASSED_TTL_EXPIRING:
	case WEFT_CTR_PASSED_NO_ROUTE:
	case WEFT_CTR_PASSED_TOO_BIG:
	case WEFT_CTR_PASSED_SLOW_PATH:
	case WEFT_CTR_PASSED_HOST:
	case WEFT_CTR_PASSED_UNVERIFIED_HOP:
	case WEFT_CTR_PASSED_TOO_BIG_DF:
	case WEFT_CTR_PASSED_VLAN_TAGGED:
	case WEFT_CTR_PASSED_ARP_AS_PROBE:
		return WEFT_OUTCOME_PASSED;
	case WEFT_CTR_DROP_BAD_VNI:
	case WEFT_CTR_DROP_UNKNOWN_PEER:
	case WEFT_CTR_DROP_SPOOFED_SOURCE:
	case WEFT_CTR_DROP_MALFORMED:
	case WEFT_CTR_DROP_NO_PEER:
	case WEFT_CTR_DROP_POD_SPOOFED:
	case WEFT_CTR_DROP_UNDERLAY_UNTRUSTED:
	case WEFT_CTR_DROP_UNDERLAY_WRONG_HOP:
	case WEFT_CTR_DROP_OVERLAY_TRANSIT:
	case WEFT_CTR_DROP_POD_ARP_SPOOFED:
	case WEFT_CTR_DROP_OTHER_HOST:
		return WEFT_OUTCOME_DROPPED;
	case WEFT_CTR_COUNT: break;
	}
	return WEFT_OUTCOME_UNKNOWN;
}

const char *weft_hook_name(__u32 hook)
{
	switch ((enum weft_hook)hook) {
	case WEFT_HOOK_FROM_POD: return "from_pod";
	case WEFT_HOOK_FROM_UNDERLAY: return "from_underlay";
	case WEFT_HOOK_FROM_OVERLAY: return "from_overlay";
	case WEFT_HOOK_TO_OVERLAY: return "to_overlay";
	case WEFT_HOOK_COUNT: break;
	}
	return NULL;
}

int weft_hook_is_egress(__u32 hook)
{
	return hook == WEFT_HOOK_FROM_POD || hook == WEFT_HOOK_TO_OVERLAY;
}

int weft_prog_test_run(int program_fd, const void *data, __u32 size, void *out, __u32 *out_size, __u32 *retval,
		       __u32 ingress_ifindex, __u32 gso_size)
{
	/* The interface the packet came in on, as skb->ingress_ifindex shows it, and a segment
	 * size that makes it a GSO packet, as GRO leaves an aggregate (of no GSO type). */
	struct __sk_buff context = { .ingress_ifindex = ingress_ifindex, .gso_size = gso_size };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data, .data_size_in = size,
		    .data_out = out, .data_size_out = *out_size, .repeat = 1,
		    .ctx_in = &context, .ctx_size_in = sizeof(context));
	int err = bpf_prog_test_run_opts(program_fd, &opts);

	if (err)
		return err;
	*out_size = opts.data_size_out;
	*retval = opts.retval;
	return 0;
}

/* Loads a three-instruction TC program that removes the outer IPv4 and UDP headers of a
 * packet with that flag, and runs it once on such a packet: the kernel refuses flags it
 * does not know (EINVAL), so a return of 0 means it has the flag. Returns 1 when it has,
 * 0 when it has not, or a negative errno when the probe could not run. */
int weft_probe_decap_clears_tunnel_gso(void)
{
	const int shrink = -(20 + 8);
	struct bpf_insn program[] = {
		/* r0 = bpf_skb_adjust_room(ctx, shrink, BPF_ADJ_ROOM_MAC, flag) */
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_2, .imm = shrink },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_3, .imm = BPF_ADJ_ROOM_MAC },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_4, .imm = (__s32)BPF_F_ADJ_ROOM_DECAP_L4_UDP },
		{ .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_skb_adjust_room },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	/* Ethernet, IPv4 (20 bytes, UDP), UDP to 8472, and 64 bytes behind. */
	unsigned char packet[14 + 20 + 8 + 64] = {
		[12] = 0x08, [13] = 0x00,
		[14] = 0x45, [16] = 0, [17] = 20 + 8 + 64, [22] = 64, [23] = 17,
		[26] = 10, [29] = 1, [30] = 10, [33] = 2,
		[36] = 0x21, [37] = 0x18, [38] = 0, [39] = 8 + 64,
	};
	unsigned char out[sizeof(packet) + 64];
	LIBBPF_OPTS(bpf_prog_load_opts, load);
	LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = packet, .data_size_in = sizeof(packet),
		    .data_out = out, .data_size_out = sizeof(out), .repeat = 1);
	int fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "weft_probe", "GPL", program,
			       sizeof(program) / sizeof(program[0]), &load);
	int err;

	if (fd < 0)
		return fd;
	err = bpf_prog_test_run_opts(fd, &run);
	close(fd);
	if (err)
		return err;
	return run.retval == 0;
}

int weft_is_bpffs(const char *path)
{
	struct statfs status;

	if (statfs(path, &status))
		return -errno;
	return status.f_type == 0xcafe4a11; /* BPF_FS_MAGIC */
}
