/* Kernel constants newer than the uapi headers Weft builds against (Debian's linux-libc-dev),
 * defined once for the programs and for the loader's probes. */
#ifndef WEFT_KERNEL_H
#define WEFT_KERNEL_H

/* bpf_skb_adjust_room: reset the UDP tunnel GSO state of what it shrinks, as the kernel's
 * tunnel devices do on decapsulation (bpf-next, 2026; in no released kernel yet). */
#ifndef BPF_F_ADJ_ROOM_DECAP_L4_UDP
#define BPF_F_ADJ_ROOM_DECAP_L4_UDP (1ULL << 10)
#endif

#endif
