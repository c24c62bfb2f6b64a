/*
 * Out-of-line copies of DPDK's `static inline` functions (and of the macros and per-lcore
 * variables bindgen cannot see through), so that Rust can call them. Each is a one-line
 * forward to the DPDK function of the same meaning; the names are `ct_` + the DPDK name.
 */
#include "shim.h"

int ct_errno(void) { return rte_errno; }
void ct_set_errno(int value) { rte_errno = value; }

uint16_t ct_eth_rx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **rx_pkts,
			 uint16_t nb_pkts)
{
	return rte_eth_rx_burst(port_id, queue_id, rx_pkts, nb_pkts);
}

uint16_t ct_eth_tx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **tx_pkts,
			 uint16_t nb_pkts)
{
	return rte_eth_tx_burst(port_id, queue_id, tx_pkts, nb_pkts);
}

uint64_t ct_eth_rss_ipv4(void) { return RTE_ETH_RSS_IPV4; }
uint64_t ct_eth_rss_nonfrag_ipv4_tcp(void) { return RTE_ETH_RSS_NONFRAG_IPV4_TCP; }
uint64_t ct_eth_rss_nonfrag_ipv4_udp(void) { return RTE_ETH_RSS_NONFRAG_IPV4_UDP; }

struct rte_mbuf *ct_pktmbuf_alloc(struct rte_mempool *mp) { return rte_pktmbuf_alloc(mp); }

int ct_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int count)
{
	return rte_pktmbuf_alloc_bulk(mp, mbufs, count);
}

void ct_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }

/* Not inline in 22.11; forwarded anyway so Rust uses one naming scheme for the fast path. */
void ct_pktmbuf_free_bulk(struct rte_mbuf **mbufs, unsigned int count)
{
	rte_pktmbuf_free_bulk(mbufs, count);
}

uint16_t ct_pktmbuf_data_room_size(struct rte_mempool *mp)
{
	return rte_pktmbuf_data_room_size(mp);
}

void *ct_pktmbuf_mtod(struct rte_mbuf *m) { return rte_pktmbuf_mtod(m, void *); }
uint16_t ct_pktmbuf_data_len(const struct rte_mbuf *m) { return rte_pktmbuf_data_len(m); }
uint32_t ct_pktmbuf_pkt_len(const struct rte_mbuf *m) { return rte_pktmbuf_pkt_len(m); }
uint16_t ct_pktmbuf_nb_segs(const struct rte_mbuf *m) { return m->nb_segs; }
uint16_t ct_pktmbuf_headroom(const struct rte_mbuf *m) { return rte_pktmbuf_headroom(m); }
uint16_t ct_pktmbuf_tailroom(const struct rte_mbuf *m) { return rte_pktmbuf_tailroom(m); }

int ct_pktmbuf_set_len(struct rte_mbuf *m, uint16_t len)
{
	if (m->nb_segs != 1 || (uint32_t)m->data_off + len > m->buf_len)
		return -1;
	m->data_len = len;
	m->pkt_len = len;
	return 0;
}

char *ct_pktmbuf_append(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_append(m, len); }
char *ct_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_prepend(m, len); }
char *ct_pktmbuf_adj(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_adj(m, len); }
int ct_pktmbuf_trim(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_trim(m, len); }
uint16_t ct_mbuf_refcnt_read(const struct rte_mbuf *m) { return rte_mbuf_refcnt_read(m); }

uint16_t ct_mbuf_refcnt_update(struct rte_mbuf *m, int16_t value)
{
	return rte_mbuf_refcnt_update(m, value);
}

uint16_t ct_mbuf_port(const struct rte_mbuf *m) { return m->port; }
void ct_mbuf_set_port(struct rte_mbuf *m, uint16_t port) { m->port = port; }
uint64_t ct_mbuf_ol_flags(const struct rte_mbuf *m) { return m->ol_flags; }

bool ct_mbuf_rss_hash(const struct rte_mbuf *m, uint32_t *hash)
{
	if (!(m->ol_flags & RTE_MBUF_F_RX_RSS_HASH))
		return false;
	*hash = m->hash.rss;
	return true;
}

void ct_mbuf_set_rss_hash(struct rte_mbuf *m, uint32_t hash)
{
	m->hash.rss = hash;
	m->ol_flags |= RTE_MBUF_F_RX_RSS_HASH;
}

unsigned int ct_lcore_id(void) { return rte_lcore_id(); }
uint64_t ct_get_tsc_cycles(void) { return rte_get_tsc_cycles(); }
uint64_t ct_get_tsc_hz(void) { return rte_get_tsc_hz(); }
void ct_prefetch0(const void *p) { rte_prefetch0(p); }
void ct_pause(void) { rte_pause(); }
