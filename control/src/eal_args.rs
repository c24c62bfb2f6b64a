//! The EAL command line of the box: device arguments derived from `interfaces`, lcores from
//! `workers`, then the YAML `eal:` list, then the words after `--` on the command line.
//!
//! A `--vdev=` given on the command line replaces the configuration's virtual device for the
//! same kernel interface (`iface=`) or the same DPDK name — that is how one configuration
//! runs on `net_af_packet` or `net_af_xdp` (`scripts/testbed.sh eal-args`). The port is then
//! found under the new name. Where no hugepages are free the box falls back to `--no-huge`
//! with a warning (DESIGN.md §8).

use common::config::{Config, Device};

/// What EAL is started with and under which name each port will be found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EalPlan {
    pub args: Vec<String>,
    /// The DPDK device name of each port, in the configuration's order.
    pub ports: Vec<String>,
    /// The lcore of each worker, in order; the main lcore runs the control plane.
    pub worker_lcores: Vec<u32>,
    pub no_huge: bool,
}

fn vdev_name(spec: &str) -> &str {
    spec.split(',').next().unwrap_or(spec)
}

fn vdev_iface(spec: &str) -> Option<&str> {
    spec.split(',').find_map(|kv| kv.strip_prefix("iface="))
}

/// Builds the plan. `cpus` is the number of CPUs the machine has (lcores beyond it are
/// mapped onto CPUs round-robin, so a two-core machine can still run a control lcore and a
/// worker); `hugepages_free` says whether EAL can have hugepages.
pub fn plan(cfg: &Config, cli: &[String], cpus: usize, hugepages_free: bool) -> EalPlan {
    let cli_vdevs: Vec<&str> = cli
        .iter()
        .filter_map(|a| {
            a.strip_prefix("--vdev=")
                .or_else(|| a.strip_prefix("--vdev "))
        })
        .collect();
    let mut args = Vec::new();
    let mut ports = vec![String::new(); cfg.interfaces.len()];
    for (i, port) in cfg.interfaces.iter().enumerate() {
        match &port.device {
            Device::Pci(addr) => {
                args.push("-a".to_string());
                args.push(addr.clone());
                ports[i] = addr.clone();
            }
            Device::Vdev(spec) => {
                let replaced = cli_vdevs.iter().find(|c| {
                    vdev_name(c) == vdev_name(spec)
                        || (vdev_iface(c).is_some() && vdev_iface(c) == vdev_iface(spec))
                });
                match replaced {
                    Some(c) => ports[i] = vdev_name(c).to_string(),
                    None => {
                        args.push(format!("--vdev={spec}"));
                        ports[i] = vdev_name(spec).to_string();
                    }
                }
            }
        }
    }
    let workers = usize::from(cfg.workers.count.max(1));
    let has = |flag: &str| {
        cli.iter()
            .chain(cfg.eal.iter())
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    };
    let worker_lcores: Vec<u32> = if cfg.workers.lcores.is_empty() {
        (1..=workers as u32).collect()
    } else {
        cfg.workers.lcores.clone()
    };
    if !has("-l") && !has("--lcores") && !has("-c") {
        // lcore 0 is the control plane; each lcore is pinned to a CPU, round-robin.
        let cpus = cpus.max(1);
        let map: Vec<String> = std::iter::once(0)
            .chain(worker_lcores.iter().copied())
            .map(|l| format!("{l}@{}", l as usize % cpus))
            .collect();
        args.push(format!("--lcores={}", map.join(",")));
    }
    args.extend(cfg.eal.iter().cloned());
    let no_huge = has("--no-huge") || !hugepages_free;
    if no_huge && !has("--no-huge") {
        args.push("--no-huge".to_string());
    }
    if no_huge && !has("-m") && !has("--socket-mem") {
        args.push("-m".to_string());
        args.push("512".to_string());
    }
    args.extend(cli.iter().cloned());
    EalPlan {
        args,
        ports,
        worker_lcores,
        no_huge,
    }
}

/// Whether the system has free 2 MiB (or other) hugepages.
pub fn hugepages_free() -> bool {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("HugePages_Free:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
        .is_some_and(|n| n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::testbed_config as cfg;

    #[test]
    fn vdevs_from_the_config_and_lcores_mapped_round_robin() {
        let p = plan(&cfg(), &[], 2, true);
        assert_eq!(
            p.ports,
            ["net_af_packet0".to_string(), "net_af_packet1".to_string()]
        );
        assert!(p
            .args
            .contains(&"--vdev=net_af_packet0,iface=ct-in0".to_string()));
        assert!(p.args.contains(&"--lcores=0@0,1@1".to_string()));
        assert!(!p.no_huge);
        assert_eq!(p.worker_lcores, vec![1]);
    }

    #[test]
    fn command_line_vdev_replaces_the_one_for_the_same_interface() {
        let cli = vec![
            "--vdev=net_af_xdp0,iface=ct-in0".to_string(),
            "--vdev=net_af_xdp1,iface=ct-out0".to_string(),
        ];
        let p = plan(&cfg(), &cli, 2, true);
        assert_eq!(
            p.ports,
            ["net_af_xdp0".to_string(), "net_af_xdp1".to_string()]
        );
        assert!(!p.args.iter().any(|a| a.contains("af_packet")));
        assert_eq!(
            p.args.iter().filter(|a| a.starts_with("--vdev=")).count(),
            2
        );
    }

    #[test]
    fn no_hugepages_falls_back_to_no_huge() {
        let p = plan(&cfg(), &[], 2, false);
        assert!(p.no_huge);
        assert!(p.args.contains(&"--no-huge".to_string()));
        let p = plan(&cfg(), &["--no-huge".to_string()], 2, true);
        assert_eq!(p.args.iter().filter(|a| *a == "--no-huge").count(), 1);
    }

    #[test]
    fn explicit_lcores_are_kept() {
        let p = plan(&cfg(), &["-l".to_string(), "0-1".to_string()], 2, true);
        assert!(!p.args.iter().any(|a| a.starts_with("--lcores")));
    }
}
