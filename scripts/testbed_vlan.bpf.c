// SPDX-License-Identifier: GPL-2.0
// A VLAN host for kernels built without 802.1Q devices (CONFIG_VLAN_8021Q unset, as in some
// VMs): scripts/testbed.sh attaches these two tc programs to the host's veth end when
// `ip link add ... type vlan` is not available, so that the box's port still carries
// 802.1Q-tagged frames and the host still sees only its own VLAN.
//
//   clang -O2 -target bpf -DVID=100 -c testbed_vlan.bpf.c -o vlan.o
//   tc qdisc add dev DEV clsact
//   tc filter add dev DEV egress bpf da obj vlan.o sec tc/egress
//   tc filter add dev DEV ingress bpf da obj vlan.o sec tc/ingress
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef VID
#define VID 100
#endif

// The tag lands in the skb's metadata; with the device's `txvlan off` the kernel then writes
// it into the frame before the veth hands it over, as it would for a VLAN device.
SEC("tc/egress")
int tag(struct __sk_buff *skb)
{
	return bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), VID) ? TC_ACT_SHOT : TC_ACT_OK;
}

// By the time tc sees a frame the kernel has moved an in-band tag into the metadata. Untagged
// frames and other VLANs are dropped, as a VLAN device on top of DEV would never see them.
SEC("tc/ingress")
int untag(struct __sk_buff *skb)
{
	if (!skb->vlan_present || (skb->vlan_tci & 0x0fff) != VID)
		return TC_ACT_SHOT;
	return bpf_skb_vlan_pop(skb) ? TC_ACT_SHOT : TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
