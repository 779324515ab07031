/* Runtime settings, written by the loader into .rodata before the program loads; the
 * verifier then sees them as constants and prunes the branches they rule out. */
#ifndef WEFT_LIB_CONFIG_H
#define WEFT_LIB_CONFIG_H

#include <linux/types.h>

/* The VXLAN network identifier peers expect (Flannel's VNI, 1 by default). */
const volatile __u32 weft_vni = 1;
/* This node's VTEP MAC: the inner source MAC of what it encapsulates. */
const volatile __u8 weft_vtep_mac[6] = {};
/* The collect_md vxlan device. */
const volatile __u32 weft_vxlan_ifindex = 0;
/* The UDP port VXLAN arrives on (Flannel's 8472 unless Backend.Port says otherwise). */
const volatile __u16 weft_vxlan_port = 8472;
/* This node's public IP (the VTEP's local address), network byte order. */
const volatile __u32 weft_local_ip = 0;
/* Encapsulate VXLAN in from_pod and send it by the underlay (1), or hand it to the collect_md
 * vxlan device with a tunnel key (0). */
const volatile __u8 weft_encapsulate_in_program = 1;
/* The kernel resets the UDP tunnel GSO state of what bpf_skb_adjust_room decapsulates with
 * BPF_F_ADJ_ROOM_DECAP_L4_UDP (the loader probes for it): from_underlay then takes GRO
 * aggregates and TCP too (1), or leaves them to the vxlan device (0). */
const volatile __u8 weft_decap_aggregates = 0;
/* The underlay interface, for direct routes. */
const volatile __u32 weft_underlay_ifindex = 0;
/* The largest IPv4 packet the tunnel carries unfragmented (underlay MTU - 50). */
const volatile __u32 weft_tunnel_mtu = 1450;
/* The cluster network (Network in net-conf.json), network byte order; a mask of 0 knows none. */
const volatile __u32 weft_cluster_network = 0;
const volatile __u32 weft_cluster_mask = 0;
/* Drop what a pod sends from an address that is not its own (1), or let it through (0). */
const volatile __u8 weft_check_pod_source = 1;
/* Drop plain IP to the cluster network from the underlay unless a direct peer sent it (1),
 * or leave it to the kernel (0), for routers outside the cluster that route to pods. */
const volatile __u8 weft_check_underlay_source = 1;

/* This node's VTEP MAC, read through volatile byte by byte: a memcpy that casts volatile
 * away lets the compiler fold in the zero initialiser instead of the loader's value. */
static __always_inline void read_vtep_mac(__u8 *mac)
{
	for (int i = 0; i < 6; i++)
		mac[i] = weft_vtep_mac[i];
}

#endif
