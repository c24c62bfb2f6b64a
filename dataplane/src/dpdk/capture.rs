//! Packet capture: the primary's half of DPDK's pdump framework, so that `dpdk-dumpcap`
//! (a secondary process) can capture any port while the box runs:
//!
//! ```sh
//! dpdk-dumpcap -i 0 -w inside.pcapng      # port 0 = inside, 1 = outside
//! ```
//!
//! `rte_pdump_init` registers the multi-process handler that answers dumpcap's enable and
//! disable requests; dumpcap's ring and mempool live in the EAL's shared hugepage memory,
//! and the primary adds RX/TX callbacks to the queues that copy packets there. A secondary
//! process can only attach to a primary that runs on hugepages: with `--no-huge` (the box's
//! fallback) dumpcap fails with "is primary process running?".
use super::{rte_errno, DpdkError, Eal};

/// The pdump server, running until this is dropped (`rte_pdump_uninit`).
#[derive(Debug)]
pub struct Pdump {
    _eal: Eal,
}

impl Pdump {
    /// Starts the pdump server in this primary process.
    pub fn init(eal: &Eal) -> Result<Pdump, DpdkError> {
        // SAFETY: a plain call on the initialised EAL (an Eal handle exists); it registers
        // an IPC handler and touches no memory of ours.
        let rc = unsafe { dpdk_sys::rte_pdump_init() };
        if rc != 0 {
            return Err(DpdkError::call("rte_pdump_init", "pdump", rte_errno()));
        }
        Ok(Pdump { _eal: eal.clone() })
    }
}

impl Drop for Pdump {
    fn drop(&mut self) {
        // SAFETY: undoes rte_pdump_init on the still-initialised EAL (we hold a handle).
        if unsafe { dpdk_sys::rte_pdump_uninit() } != 0 {
            log::warn!("rte_pdump_uninit failed: {}", super::strerror(rte_errno()));
        }
    }
}
