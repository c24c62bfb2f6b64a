//! Ethernet ports (ethdev): lookup, configuration with symmetric RSS, start/stop, statistics;
//! the per-queue handles the workers burst on are in `queue.rs`.
//!
//! DPDK's rule is one thread per queue and no control operation racing another. Here:
//! configuration, start and stop take `&mut Port` and refuse while queue handles exist; the
//! other control calls take `&Port`, and `Port` is not `Sync`, so they come from one thread;
//! each queue has at most one [`RxQueue`] / [`TxQueue`] handle, `Send` to its worker.
use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::marker::PhantomData;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use common::wire::MacAddr;

use super::queue::{assert_unclaimed, claim, rx_into, tx_from};
use super::{DpdkError, Eal, Mbuf, Mempool, RxQueue, TxQueue};
use crate::packet::Burst;

/// The symmetric Toeplitz key: 0x6d5a repeated. Hashing (src, dst) and (dst, src) gives the
/// same value, so both directions of a connection land on the same queue and worker.
pub const SYMMETRIC_RSS_KEY: [u8; 40] = symmetric_key();

const fn symmetric_key<const L: usize>() -> [u8; L] {
    let mut key = [0u8; L];
    let mut i = 0;
    while i < L {
        key[i] = if i % 2 == 0 { 0x6d } else { 0x5a };
        i += 1;
    }
    key
}

/// Ports open in this process, by port id: each may be opened once.
static OPEN: Mutex<[bool; dpdk_sys::RTE_MAX_ETHPORTS as usize]> =
    Mutex::new([false; dpdk_sys::RTE_MAX_ETHPORTS as usize]);

/// Frame overhead over the MTU when the device does not say (Ethernet header + CRC).
const DEFAULT_OVERHEAD: u32 = dpdk_sys::RTE_ETHER_HDR_LEN + dpdk_sys::RTE_ETHER_CRC_LEN;

/// One ethdev port. See the module docs for the threading rules.
pub struct Port {
    inner: Arc<PortInner>,
    _not_sync: PhantomData<Cell<()>>,
}

pub(super) struct PortInner {
    pub(super) id: u16,
    name: String,
    configured: bool,
    started: bool,
    pub(super) rx_claimed: Box<[AtomicBool]>,
    pub(super) tx_claimed: Box<[AtomicBool]>,
    /// The RX pool, kept alive while the PMD may allocate from it. Dropped after the port is
    /// closed (fields drop after `Drop::drop`), and before `eal` (declaration order).
    pool: Option<Mempool>,
    /// Keeps the EAL up while the port exists.
    _eal: Eal,
}

/// What [`Port::info`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortInfo {
    pub driver: String,
    pub max_rx_queues: u16,
    pub max_tx_queues: u16,
    /// The device hashes at least one of IPv4, IPv4/TCP, IPv4/UDP in hardware.
    pub has_rss: bool,
    /// `flow_type_rss_offloads`: the RSS hash functions the device supports.
    pub rss_offloads: u64,
    pub min_mtu: u16,
    pub max_mtu: u16,
    pub max_rx_pktlen: u32,
    /// The kernel interface index (`if_index`), 0 if none.
    pub if_index: u32,
}

/// What [`Port::configure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Configured {
    /// Symmetric RSS is on (more than one RX queue, and the device hashes).
    pub rss: bool,
    /// The RSS hash functions enabled (0 when `rss` is false).
    pub rss_hf: u64,
    /// Entries of the RSS redirection table (0 when `rss` is false). The drivers fill it
    /// round-robin over the RX queues at configuration, which `crate::steer` relies on.
    pub reta_size: u16,
    /// Descriptors per RX / TX queue after the device's limits were applied.
    pub rx_desc: u16,
    pub tx_desc: u16,
    /// The MTU set, or `None` if the device cannot set one (most virtual devices).
    pub mtu: Option<u16>,
}

/// Link state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub up: bool,
    /// Mbit/s; 0 when unknown.
    pub speed_mbps: u32,
    pub full_duplex: bool,
}

/// The basic counters of `rte_eth_stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    pub ipackets: u64,
    pub opackets: u64,
    pub ibytes: u64,
    pub obytes: u64,
    /// Dropped by the device: RX queues full.
    pub imissed: u64,
    pub ierrors: u64,
    pub oerrors: u64,
    /// RX mbuf allocation failures.
    pub rx_nombuf: u64,
}

impl std::fmt::Debug for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Port")
            .field("id", &self.inner.id)
            .field("name", &self.inner.name)
            .field("started", &self.inner.started)
            .finish()
    }
}

impl Port {
    /// Opens the port DPDK knows as `name`: a virtual device given to the EAL as
    /// `--vdev=NAME,...` (the name is the part before the first comma) or a PCI address.
    pub fn by_name(eal: &Eal, name: &str) -> Result<Port, DpdkError> {
        let no_such = |errno: i32| DpdkError::NoSuchPort {
            name: name.to_string(),
            errno,
            text: super::strerror(errno),
        };
        let c_name = CString::new(name).map_err(|_| no_such(dpdk_sys::EINVAL as i32))?;
        let mut id = 0u16;
        // SAFETY: c_name is a valid C string and id a valid out-pointer for the call.
        let rc = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(c_name.as_ptr(), &mut id) };
        if rc != 0 {
            return Err(no_such(-rc));
        }
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        let slot = open
            .get_mut(usize::from(id))
            .ok_or_else(|| no_such(dpdk_sys::ENODEV as i32))?;
        if *slot {
            return Err(DpdkError::PortBusy {
                port: name.to_string(),
                why: "already open in this process",
            });
        }
        *slot = true;
        Ok(Port {
            inner: Arc::new(PortInner {
                id,
                name: name.to_string(),
                configured: false,
                started: false,
                rx_claimed: Box::new([]),
                tx_claimed: Box::new([]),
                pool: None,
                _eal: eal.clone(),
            }),
            _not_sync: PhantomData,
        })
    }

    /// DPDK's port id.
    pub fn id(&self) -> u16 {
        self.inner.id
    }

    /// The name it was opened by.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// RX / TX queues configured (0 before [`Port::configure`]).
    pub fn rx_queues(&self) -> u16 {
        self.inner.rx_claimed.len() as u16
    }

    pub fn tx_queues(&self) -> u16 {
        self.inner.tx_claimed.len() as u16
    }

    pub fn is_started(&self) -> bool {
        self.inner.started
    }

    /// The NUMA socket of the device (`SOCKET_ID_ANY`, -1, if unknown).
    pub fn socket_id(&self) -> i32 {
        // SAFETY: plain getter on a valid port id.
        unsafe { dpdk_sys::rte_eth_dev_socket_id(self.inner.id) }
    }

    fn target(&self) -> String {
        format!("port {} ({})", self.inner.name, self.inner.id)
    }

    fn check(&self, op: &'static str, rc: i32) -> Result<(), DpdkError> {
        if rc < 0 {
            Err(DpdkError::call(op, self.target(), rc))
        } else {
            Ok(())
        }
    }

    fn dev_info(&self) -> Result<dpdk_sys::rte_eth_dev_info, DpdkError> {
        let mut info = dpdk_sys::rte_eth_dev_info::default();
        // SAFETY: info is a valid, writable rte_eth_dev_info.
        let rc = unsafe { dpdk_sys::rte_eth_dev_info_get(self.inner.id, &mut info) };
        self.check("rte_eth_dev_info_get", rc)?;
        Ok(info)
    }

    /// Driver name and capabilities (`rte_eth_dev_info_get`).
    pub fn info(&self) -> Result<PortInfo, DpdkError> {
        let info = self.dev_info()?;
        let driver = if info.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: non-null driver_name points to the driver's static NUL-terminated name.
            unsafe { CStr::from_ptr(info.driver_name) }
                .to_string_lossy()
                .into_owned()
        };
        Ok(PortInfo {
            driver,
            max_rx_queues: info.max_rx_queues,
            max_tx_queues: info.max_tx_queues,
            has_rss: info.flow_type_rss_offloads & wanted_rss_hf() != 0,
            rss_offloads: info.flow_type_rss_offloads,
            min_mtu: info.min_mtu,
            max_mtu: info.max_mtu,
            max_rx_pktlen: info.max_rx_pktlen,
            if_index: info.if_index,
        })
    }

    /// The port's state for reconfiguration: only while no queue handle exists.
    fn exclusive(&mut self) -> Result<&mut PortInner, DpdkError> {
        let port = self.inner.name.clone();
        Arc::get_mut(&mut self.inner).ok_or(DpdkError::PortBusy {
            port,
            why: "queue handles are still alive (drop every RxQueue/TxQueue first)",
        })
    }

    /// Configures `rx_queues` RX and `tx_queues` TX queues with `rx_desc` / `tx_desc`
    /// descriptors each (clamped to the device's limits), RX buffers from `pool`, and `mtu`.
    ///
    /// Symmetric RSS ([`SYMMETRIC_RSS_KEY`] over IPv4, IPv4/TCP and IPv4/UDP, masked by what
    /// the device supports) is enabled when `rx_queues > 1` and the device can hash; the
    /// result says whether it is on. Without it every packet arrives on queue 0: run one
    /// worker, or steer in software. No scatter: a full frame of `mtu` must fit one mbuf of
    /// `pool`. A device that cannot set an MTU (most virtual devices) is accepted with a
    /// warning. The port must be stopped.
    pub fn configure(
        &mut self,
        rx_queues: u16,
        tx_queues: u16,
        rx_desc: u16,
        tx_desc: u16,
        mtu: u16,
        pool: &Mempool,
    ) -> Result<Configured, DpdkError> {
        let target = self.target();
        let invalid = |why: String| DpdkError::InvalidConfig {
            target: target.clone(),
            why,
        };
        if self.inner.started {
            return Err(invalid("stop the port before configuring it".into()));
        }
        let info = self.dev_info()?;
        check_request(&info, rx_queues, tx_queues, mtu, pool).map_err(invalid)?;
        let (conf, rss, rss_hf) = eth_conf(&info, rx_queues);
        let (id, name) = (self.inner.id, self.inner.name.clone());
        let state = self.exclusive()?;
        state.configured = false;
        state.rx_claimed = Box::new([]);
        state.tx_claimed = Box::new([]);
        // Before any queue refers to the pool, so it outlives them even if a step fails. The
        // previous pool, if any, lives until the old queues are replaced (end of function).
        let _previous_pool = state.pool.replace(pool.clone());

        let fail = |op: &'static str, rc: i32| DpdkError::call(op, target.clone(), rc);
        // SAFETY: conf is a valid rte_eth_conf whose rss_key (if set) is leaked, so valid for
        // ever; the port is stopped and we hold it exclusively (no queue handles).
        let rc = unsafe { dpdk_sys::rte_eth_dev_configure(id, rx_queues, tx_queues, &conf) };
        if rc < 0 {
            return Err(fail("rte_eth_dev_configure", rc));
        }
        let (mut nb_rx, mut nb_tx) = (rx_desc, tx_desc);
        // SAFETY: valid out-pointers to two u16.
        let rc = unsafe { dpdk_sys::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut nb_rx, &mut nb_tx) };
        if rc < 0 {
            return Err(fail("rte_eth_dev_adjust_nb_rx_tx_desc", rc));
        }
        // SAFETY: plain call on a configured, stopped port.
        let rc = unsafe { dpdk_sys::rte_eth_dev_set_mtu(id, mtu) };
        let mtu_set = if rc == -(dpdk_sys::ENOTSUP as i32) {
            log::warn!("port {name}: the device cannot set an MTU; keeping its default");
            None
        } else if rc < 0 {
            return Err(fail("rte_eth_dev_set_mtu", rc));
        } else {
            Some(mtu)
        };
        // SAFETY: plain getter. -1 (any socket) becomes SOCKET_ID_ANY again inside DPDK.
        let socket = unsafe { dpdk_sys::rte_eth_dev_socket_id(id) } as u32;
        for q in 0..rx_queues {
            // SAFETY: q < the configured RX queue count; NULL rx_conf means the device's
            // defaults; the pool is alive and kept alive by `state.pool`.
            let rc = unsafe {
                dpdk_sys::rte_eth_rx_queue_setup(
                    id,
                    q,
                    nb_rx,
                    socket,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            };
            if rc < 0 {
                return Err(fail("rte_eth_rx_queue_setup", rc));
            }
        }
        for q in 0..tx_queues {
            // SAFETY: q < the configured TX queue count; NULL tx_conf means the defaults.
            let rc =
                unsafe { dpdk_sys::rte_eth_tx_queue_setup(id, q, nb_tx, socket, std::ptr::null()) };
            if rc < 0 {
                return Err(fail("rte_eth_tx_queue_setup", rc));
            }
        }
        state.rx_claimed = (0..rx_queues).map(|_| AtomicBool::new(false)).collect();
        state.tx_claimed = (0..tx_queues).map(|_| AtomicBool::new(false)).collect();
        state.configured = true;
        Ok(Configured {
            rss,
            rss_hf: if rss { rss_hf } else { 0 },
            reta_size: if rss { info.reta_size } else { 0 },
            rx_desc: nb_rx,
            tx_desc: nb_tx,
            mtu: mtu_set,
        })
    }

    /// Starts the port (`rte_eth_dev_start`). It must be configured; no queue handle may exist.
    pub fn start(&mut self) -> Result<(), DpdkError> {
        let target = self.target();
        let state = self.exclusive()?;
        if !state.configured {
            return Err(DpdkError::InvalidConfig {
                target,
                why: "configure the port before starting it".into(),
            });
        }
        // SAFETY: a configured port, held exclusively.
        let rc = unsafe { dpdk_sys::rte_eth_dev_start(state.id) };
        if rc < 0 {
            return Err(DpdkError::call("rte_eth_dev_start", target, rc));
        }
        state.started = true;
        Ok(())
    }

    /// Stops the port (`rte_eth_dev_stop`). No queue handle may exist.
    pub fn stop(&mut self) -> Result<(), DpdkError> {
        let target = self.target();
        let state = self.exclusive()?;
        if !state.started {
            return Ok(());
        }
        // SAFETY: a started port, held exclusively: no thread is bursting on it.
        let rc = unsafe { dpdk_sys::rte_eth_dev_stop(state.id) };
        if rc < 0 {
            return Err(DpdkError::call("rte_eth_dev_stop", target, rc));
        }
        state.started = false;
        Ok(())
    }

    /// Turns promiscuous mode on or off. Virtual devices may answer ENOTSUP.
    pub fn promiscuous(&self, on: bool) -> Result<(), DpdkError> {
        let id = self.inner.id;
        // SAFETY (both): plain control calls on a valid port; Port is not Sync, so no other
        // control call on it runs at the same time.
        let rc = if on {
            // SAFETY: see above.
            unsafe { dpdk_sys::rte_eth_promiscuous_enable(id) }
        } else {
            // SAFETY: see above.
            unsafe { dpdk_sys::rte_eth_promiscuous_disable(id) }
        };
        self.check("rte_eth_promiscuous_enable/disable", rc)
    }

    /// The port's MAC address.
    pub fn mac_addr(&self) -> Result<MacAddr, DpdkError> {
        let mut addr = dpdk_sys::rte_ether_addr::default();
        // SAFETY: addr is a valid, writable rte_ether_addr.
        let rc = unsafe { dpdk_sys::rte_eth_macaddr_get(self.inner.id, &mut addr) };
        self.check("rte_eth_macaddr_get", rc)?;
        Ok(MacAddr(addr.addr_bytes))
    }

    /// Sets the port's MAC address.
    pub fn set_mac_addr(&self, mac: MacAddr) -> Result<(), DpdkError> {
        let mut addr = dpdk_sys::rte_ether_addr { addr_bytes: mac.0 };
        // SAFETY: addr is a valid rte_ether_addr that DPDK reads (and copies).
        let rc = unsafe { dpdk_sys::rte_eth_dev_default_mac_addr_set(self.inner.id, &mut addr) };
        self.check("rte_eth_dev_default_mac_addr_set", rc)
    }

    /// Link state, without waiting for autonegotiation.
    pub fn link(&self) -> Result<Link, DpdkError> {
        let mut link = dpdk_sys::rte_eth_link::default();
        // SAFETY: link is a valid, writable rte_eth_link.
        let rc = unsafe { dpdk_sys::rte_eth_link_get_nowait(self.inner.id, &mut link) };
        self.check("rte_eth_link_get_nowait", rc)?;
        Ok(Link {
            up: u32::from(link.link_status()) == dpdk_sys::RTE_ETH_LINK_UP,
            speed_mbps: link.link_speed,
            full_duplex: link.link_duplex() == 1,
        })
    }

    /// The basic counters (`rte_eth_stats_get`). Safe to call while workers burst.
    pub fn stats(&self) -> Result<PortStats, DpdkError> {
        let mut s = dpdk_sys::rte_eth_stats::default();
        // SAFETY: s is a valid, writable rte_eth_stats.
        let rc = unsafe { dpdk_sys::rte_eth_stats_get(self.inner.id, &mut s) };
        self.check("rte_eth_stats_get", rc)?;
        Ok(PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }

    /// Zeroes the basic counters.
    pub fn stats_reset(&self) -> Result<(), DpdkError> {
        // SAFETY: plain control call on a valid port.
        let rc = unsafe { dpdk_sys::rte_eth_stats_reset(self.inner.id) };
        self.check("rte_eth_stats_reset", rc)
    }

    /// Every extended counter the driver has, by name. Allocates: not for the hot path.
    pub fn xstats(&self) -> Result<Vec<(String, u64)>, DpdkError> {
        let id = self.inner.id;
        // SAFETY: a NULL array with size 0 asks only for the count.
        let n = unsafe { dpdk_sys::rte_eth_xstats_get_names(id, std::ptr::null_mut(), 0) };
        self.check("rte_eth_xstats_get_names", n)?;
        let cap = n as u32;
        let mut names = vec![dpdk_sys::rte_eth_xstat_name::default(); cap as usize];
        let mut values = vec![dpdk_sys::rte_eth_xstat::default(); cap as usize];
        // SAFETY: both arrays hold `cap` writable entries.
        let got_names = unsafe { dpdk_sys::rte_eth_xstats_get_names(id, names.as_mut_ptr(), cap) };
        self.check("rte_eth_xstats_get_names", got_names)?;
        // SAFETY: as above.
        let got = unsafe { dpdk_sys::rte_eth_xstats_get(id, values.as_mut_ptr(), cap) };
        self.check("rte_eth_xstats_get", got)?;
        if got_names as u32 > cap || got as u32 > cap {
            return Err(DpdkError::call(
                "rte_eth_xstats_get",
                self.target(),
                dpdk_sys::EBUSY as i32,
            ));
        }
        names.truncate(got_names as usize);
        Ok(values[..got as usize]
            .iter()
            .filter_map(|v| {
                let name = names.get(usize::try_from(v.id).ok()?)?;
                // SAFETY: DPDK writes NUL-terminated names into the 64-byte arrays.
                let name = unsafe { CStr::from_ptr(name.name.as_ptr()) };
                Some((name.to_string_lossy().into_owned(), v.value))
            })
            .collect())
    }

    /// Takes the handle for RX queue `queue`, for one worker. Fails if the port is not
    /// started, the queue is not configured, or its handle is already taken. The handle keeps
    /// the port open and started.
    pub fn rx_queue(&self, queue: u16) -> Result<RxQueue, DpdkError> {
        self.check_started()?;
        claim(&self.inner.rx_claimed, queue, &self.inner.name, "RX queue")?;
        Ok(RxQueue {
            port: Arc::clone(&self.inner),
            queue,
            _not_sync: PhantomData,
        })
    }

    /// Takes the handle for TX queue `queue` (see [`Port::rx_queue`]).
    pub fn tx_queue(&self, queue: u16) -> Result<TxQueue, DpdkError> {
        self.check_started()?;
        claim(&self.inner.tx_claimed, queue, &self.inner.name, "TX queue")?;
        Ok(TxQueue {
            port: Arc::clone(&self.inner),
            queue,
            _not_sync: PhantomData,
        })
    }

    fn check_started(&self) -> Result<(), DpdkError> {
        if self.inner.started {
            return Ok(());
        }
        Err(DpdkError::InvalidConfig {
            target: self.target(),
            why: "start the port before taking queue handles".into(),
        })
    }

    /// Receives up to the free room of `burst` from RX queue `queue`; returns how many came
    /// (0 while the port is stopped).
    ///
    /// # Panics
    /// If `queue` is not configured or is held by an [`RxQueue`] handle.
    #[inline]
    pub fn rx_burst<const N: usize>(&mut self, queue: u16, burst: &mut Burst<Mbuf, N>) -> usize {
        assert_unclaimed(&self.inner.rx_claimed, queue, "RX");
        if !self.inner.started {
            return 0;
        }
        // SAFETY: queue is configured and not held by a handle, and no new handle can be taken
        // while we hold &mut self: this thread is its only user.
        unsafe { rx_into(self.inner.id, queue, burst) }
    }

    /// Sends from the front of `burst` on TX queue `queue`; returns how many were sent (0
    /// while the port is stopped). What was not sent stays in `burst`, in order: retry, or
    /// drop it and count the drop.
    ///
    /// # Panics
    /// If `queue` is not configured or is held by a [`TxQueue`] handle.
    #[inline]
    pub fn tx_burst<const N: usize>(&mut self, queue: u16, burst: &mut Burst<Mbuf, N>) -> usize {
        assert_unclaimed(&self.inner.tx_claimed, queue, "TX");
        if !self.inner.started {
            return 0;
        }
        // SAFETY: as in rx_burst.
        unsafe { tx_from(self.inner.id, queue, burst) }
    }
}

impl Drop for PortInner {
    /// Stops and closes a port that was (even partly) configured, so its RX mbufs go back to
    /// the pool; a port that was only looked up is left as it was.
    fn drop(&mut self) {
        if self.pool.is_some() {
            // SAFETY: this is the last reference (no handle, no Port): nobody bursts on it.
            if self.started && unsafe { dpdk_sys::rte_eth_dev_stop(self.id) } < 0 {
                log::warn!("port {}: rte_eth_dev_stop failed", self.name);
            }
            // SAFETY: as above; the port is stopped (or was never started).
            if unsafe { dpdk_sys::rte_eth_dev_close(self.id) } < 0 {
                log::warn!("port {}: rte_eth_dev_close failed", self.name);
            }
        }
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        open[usize::from(self.id)] = false;
    }
}

/// Whether `info`'s device can take the queues asked and frames of `mtu` in one mbuf of
/// `pool` (no scatter); the reason when it cannot.
fn check_request(
    info: &dpdk_sys::rte_eth_dev_info,
    rx_queues: u16,
    tx_queues: u16,
    mtu: u16,
    pool: &Mempool,
) -> Result<(), String> {
    if rx_queues == 0 || rx_queues > info.max_rx_queues {
        let max = info.max_rx_queues;
        return Err(format!("{rx_queues} RX queues asked, 1..={max} possible"));
    }
    if tx_queues == 0 || tx_queues > info.max_tx_queues {
        let max = info.max_tx_queues;
        return Err(format!("{tx_queues} TX queues asked, 1..={max} possible"));
    }
    let overhead = if info.max_mtu != u16::MAX && info.max_rx_pktlen > u32::from(info.max_mtu) {
        info.max_rx_pktlen - u32::from(info.max_mtu)
    } else {
        DEFAULT_OVERHEAD
    };
    let frame = u32::from(mtu) + overhead;
    if frame > u32::from(pool.max_packet_len()) {
        return Err(format!(
            "MTU {mtu} makes {frame}-byte frames; mempool {:?} holds {} bytes per mbuf \
                 and scatter is not used",
            pool.name(),
            pool.max_packet_len()
        ));
    }
    Ok(())
}

/// The port configuration: symmetric RSS over the flow types the device hashes, when there
/// is more than one RX queue to spread over; returns it, whether RSS is on, and its types.
fn eth_conf(
    info: &dpdk_sys::rte_eth_dev_info,
    rx_queues: u16,
) -> (dpdk_sys::rte_eth_conf, bool, u64) {
    let rss_hf = wanted_rss_hf() & info.flow_type_rss_offloads;
    let rss = rx_queues > 1 && rss_hf != 0;
    let mut conf = dpdk_sys::rte_eth_conf::default();
    if rss {
        let key_len = match info.hash_key_size {
            0 => SYMMETRIC_RSS_KEY.len() as u8,
            n => n,
        };
        // The same pattern, long enough for any key size (`hash_key_size` is a u8). DPDK
        // keeps the pointer in the port's configuration and PMDs read it at start, so it
        // must live for ever: one small leak per configure call, in writable memory since
        // the C API takes a `*mut`.
        let key: &'static mut [u8; 256] = Box::leak(Box::new(symmetric_key()));
        conf.rxmode.mq_mode = dpdk_sys::RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf = dpdk_sys::rte_eth_rss_conf {
            rss_key: key.as_mut_ptr(),
            rss_key_len: key_len,
            rss_hf,
        };
    }
    (conf, rss, rss_hf)
}

fn wanted_rss_hf() -> u64 {
    // SAFETY: returns a constant.
    let ipv4 = unsafe { dpdk_sys::ct_eth_rss_ipv4() };
    // SAFETY: returns a constant.
    let tcp = unsafe { dpdk_sys::ct_eth_rss_nonfrag_ipv4_tcp() };
    // SAFETY: returns a constant.
    let udp = unsafe { dpdk_sys::ct_eth_rss_nonfrag_ipv4_udp() };
    ipv4 | tcp | udp
}
