/*
 * The one header bindgen reads: the DPDK public headers the safe wrapper uses, and the
 * declarations of the shim (src/shim.c), which gives the `static inline` fast-path functions
 * of those headers an address Rust can call. Every shim function is named `ct_*`.
 *
 * Compiled with the cflags of pkg-config libdpdk (which force-include rte_config.h).
 */
#ifndef CT_DPDK_SHIM_H
#define CT_DPDK_SHIM_H

#include <stdint.h>
#include <stdbool.h>

#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_malloc.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ethdev.h>
#include <rte_telemetry.h>
#include <rte_pdump.h>

/* rte_errno is a per-lcore (thread-local) variable: read it through a function. */
int ct_errno(void);
void ct_set_errno(int value);

/* ethdev fast path */
uint16_t ct_eth_rx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **rx_pkts,
			 uint16_t nb_pkts);
uint16_t ct_eth_tx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **tx_pkts,
			 uint16_t nb_pkts);

/* RSS hash-function bits (RTE_BIT64 macros bindgen cannot evaluate) */
uint64_t ct_eth_rss_ipv4(void);
uint64_t ct_eth_rss_nonfrag_ipv4_tcp(void);
uint64_t ct_eth_rss_nonfrag_ipv4_udp(void);

/* mbuf allocation */
struct rte_mbuf *ct_pktmbuf_alloc(struct rte_mempool *mp);
int ct_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int count);
void ct_pktmbuf_free(struct rte_mbuf *m);
void ct_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned int count);
uint16_t ct_pktmbuf_data_room_size(struct rte_mempool *mp);

/* mbuf data and lengths (first segment) */
void *ct_pktmbuf_mtod(struct rte_mbuf *m);
uint16_t ct_pktmbuf_data_len(const struct rte_mbuf *m);
uint32_t ct_pktmbuf_pkt_len(const struct rte_mbuf *m);
uint16_t ct_pktmbuf_nb_segs(const struct rte_mbuf *m);
uint16_t ct_pktmbuf_headroom(const struct rte_mbuf *m);
uint16_t ct_pktmbuf_tailroom(const struct rte_mbuf *m);
/* Sets data_len and pkt_len of a one-segment mbuf; fails (-1) past the tailroom. */
int ct_pktmbuf_set_len(struct rte_mbuf *m, uint16_t len);
char *ct_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
char *ct_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
char *ct_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
int ct_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
uint16_t ct_mbuf_refcnt_read(const struct rte_mbuf *m);
uint16_t ct_mbuf_refcnt_update(struct rte_mbuf *m, int16_t value);

/* mbuf metadata */
uint16_t ct_mbuf_port(const struct rte_mbuf *m);
void ct_mbuf_set_port(struct rte_mbuf *m, uint16_t port);
uint64_t ct_mbuf_ol_flags(const struct rte_mbuf *m);
/* True and *hash set when the NIC computed an RSS hash (RTE_MBUF_F_RX_RSS_HASH). */
bool ct_mbuf_rss_hash(const struct rte_mbuf *m, uint32_t *hash);
void ct_mbuf_set_rss_hash(struct rte_mbuf *m, uint32_t hash);

/* lcores and time */
unsigned int ct_lcore_id(void);
uint64_t ct_get_tsc_cycles(void);
uint64_t ct_get_tsc_hz(void);
void ct_prefetch0(const void *p);
void ct_pause(void);

#endif /* CT_DPDK_SHIM_H */
