//! Wire faults on the testbed without `tc netem`: TEE and NFQUEUE rules plus
//! `scripts/nfq_faults.py` injectors.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use super::*;

/// One namespace's share of [`Faults`]: its device and the box's address on that side.
const FAULT_SIDES: [(&str, &str, &str); 2] = [
    (INSIDE, "ct-in1", BOX_INSIDE_ADDR),
    (OUTSIDE, "ct-out1", BOX_OUTSIDE_ADDR),
];

/// Wire faults without `tc netem` (DESIGN.md §8), for TCP on some ports in both namespaces.
///
/// In each namespace, for TCP to or from `ports` on its veth:
/// - `mangle POSTROUTING`: `TEE --gateway BOX` with probability `dup` (a clone on the wire:
///   duplication), then `NFQUEUE` with probability `sample`;
/// - `mangle PREROUTING`: `NFQUEUE` with probability `sample`.
///
/// So every packet meets the queue twice, once in the sender's namespace before the box and
/// once in the receiver's after it. `scripts/nfq_faults.py` (one per namespace) drops a queued
/// packet with probability `drop` (real loss: the sender counted it as sent, or it already
/// crossed the wire), holds it `hold_ms` with probability `hold` while later packets pass
/// (reordering), and delays the rest by `delay_ms` (delay with jitter). The rules use
/// `--queue-bypass`: if an injector dies, packets pass instead of vanishing.
///
/// On the sender's side the rules see TCP's GSO bursts (the local stack always builds them;
/// with offloads off they are cut to MSS-sized segments only when they reach the veth), so
/// `statistic` samples, and TEE clones, whole bursts; nfnetlink_queue hands each segment of a
/// queued burst to the injector separately, which decides its fate per segment. On the
/// receiver's side (GRO off) every rule sees single wire packets. Per wire packet the rates
/// come out as intended, the sender-side faults somewhat bunched.
#[derive(Debug, Clone, Copy)]
pub struct FaultSpec {
    pub sample: f64,
    pub drop: f64,
    pub hold: f64,
    pub hold_ms: (f64, f64),
    pub delay_ms: (f64, f64),
    pub dup: f64,
}

impl FaultSpec {
    /// About 1% loss, 5% reordering, 1% duplication end to end, plus 0.5-1.5 ms of delay on
    /// the sampled packets that are neither lost nor held back. With two queues on each
    /// path: each samples 6% of the packets and drops 1/12 of those (0.5% per queue, about
    /// 1% per path) and holds 5/12 (2.5% per queue, about 5% per path) 2-6 ms; TEE clones 1%
    /// of each sender's packets.
    pub const LOSSY: FaultSpec = FaultSpec {
        sample: 0.06,
        drop: 1.0 / 12.0,
        hold: 5.0 / 12.0,
        hold_ms: (2.0, 6.0),
        delay_ms: (0.5, 1.5),
        dup: 0.01,
    };

    /// Per path (sender's queue and receiver's queue): loss, reordering and delay rates.
    pub fn per_path(&self) -> (f64, f64, f64) {
        let q = self.sample;
        (
            2.0 * q * self.drop,
            2.0 * q * self.hold,
            2.0 * q * (1.0 - self.drop - self.hold),
        )
    }
}

/// What the injectors and TEE did.
#[derive(Debug, Clone, Default)]
pub struct FaultReport {
    /// Per namespace: the injector's JSON counters (`seen`, `dropped`, `held`, `delayed`, ...).
    pub queues: Vec<(String, serde_json::Value)>,
    /// Per namespace: packets TEE cloned (the rule's packet counter).
    pub duplicated: Vec<(String, u64)>,
}

impl FaultReport {
    fn sum(&self, key: &str) -> u64 {
        self.queues
            .iter()
            .map(|(_, v)| v.get(key).and_then(|x| x.as_u64()).unwrap_or(0))
            .sum()
    }
    pub fn seen(&self) -> u64 {
        self.sum("seen")
    }
    pub fn dropped(&self) -> u64 {
        self.sum("dropped")
    }
    pub fn held(&self) -> u64 {
        self.sum("held")
    }
    pub fn delayed(&self) -> u64 {
        self.sum("delayed")
    }
    pub fn dups(&self) -> u64 {
        self.duplicated.iter().map(|(_, n)| n).sum()
    }
    pub fn summary(&self) -> String {
        format!(
            "queued {} packets: dropped {}, held {}, delayed {}; TEE duplicated {}",
            self.seen(),
            self.dropped(),
            self.held(),
            self.delayed(),
            self.dups()
        )
    }
}

/// [`FaultSpec`] in force on the testbed; [`Faults::stop`] (or drop) removes the rules first,
/// then stops the injectors (which release what they hold).
pub struct Faults {
    injectors: Vec<(String, Background, PathBuf)>,
    _dir: TempDir,
    active: bool,
}

/// The NFQUEUE number the injectors use (per namespace: queues are per network namespace).
const FAULT_QUEUE: &str = "7";

impl Faults {
    /// Starts an injector in each namespace, then installs the rules for TCP `ports`.
    #[track_caller]
    pub fn start(spec: FaultSpec, ports: &[u16]) -> Faults {
        let dir = TempDir::new("faults");
        let mut faults = Faults {
            injectors: Vec::new(),
            _dir: dir,
            active: true,
        };
        for (i, (ns_name, _, _)) in FAULT_SIDES.iter().enumerate() {
            let stats = faults._dir.join(&format!("{ns_name}.json"));
            let seed = (1000 + i).to_string();
            let (drop, hold) = (spec.drop.to_string(), spec.hold.to_string());
            let hold_ms = format!("{}:{}", spec.hold_ms.0, spec.hold_ms.1);
            let delay_ms = format!("{}:{}", spec.delay_ms.0, spec.delay_ms.1);
            let bg = Background::ns(
                ns_name,
                python(),
                &[
                    NFQ_FAULTS,
                    "--queue",
                    FAULT_QUEUE,
                    "--drop",
                    &drop,
                    "--hold",
                    &hold,
                    "--hold-ms",
                    &hold_ms,
                    "--delay-ms",
                    &delay_ms,
                    "--seed",
                    &seed,
                    "--stats",
                    path_str(&stats),
                    "--max-seconds",
                    "1200",
                ],
            );
            faults.injectors.push((ns_name.to_string(), bg, stats));
        }
        for (_, bg, _) in &mut faults.injectors {
            let bound = poll(Duration::from_secs(20), Duration::from_millis(50), || {
                bg.stdout().contains("bound")
            });
            assert!(bound, "the fault injector did not start: {}", bg.describe());
        }
        let list = ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let (sample, dup) = (spec.sample.to_string(), spec.dup.to_string());
        for (ns_name, dev, gw) in FAULT_SIDES {
            let base = |chain: &str, dir: &str| -> Vec<String> {
                [
                    "-t",
                    "mangle",
                    "-A",
                    chain,
                    dir,
                    dev,
                    "-p",
                    "tcp",
                    "-m",
                    "multiport",
                    "--ports",
                    &list,
                    "-m",
                    "statistic",
                    "--mode",
                    "random",
                    "--probability",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect()
            };
            let mut tee = base("POSTROUTING", "-o");
            tee.extend([&dup, "-j", "TEE", "--gateway", gw].map(str::to_string));
            let queue_tail = [
                "-j",
                "NFQUEUE",
                "--queue-num",
                FAULT_QUEUE,
                "--queue-bypass",
            ];
            let mut out_q = base("POSTROUTING", "-o");
            out_q.push(sample.clone());
            out_q.extend(queue_tail.map(str::to_string));
            let mut in_q = base("PREROUTING", "-i");
            in_q.push(sample.clone());
            in_q.extend(queue_tail.map(str::to_string));
            for rule in [tee, out_q, in_q] {
                let args: Vec<&str> = rule.iter().map(String::as_str).collect();
                ns(ns_name, "iptables", &args, Duration::from_secs(10))
                    .expect_success("installing a fault rule");
            }
        }
        faults
    }

    fn remove_rules() {
        for (ns_name, _, _) in FAULT_SIDES {
            let _ = ns(
                ns_name,
                "iptables",
                &["-t", "mangle", "-F"],
                Duration::from_secs(10),
            );
        }
    }

    /// Removes the rules, stops the injectors and returns what they did.
    #[track_caller]
    pub fn stop(mut self) -> FaultReport {
        let mut report = FaultReport::default();
        for (ns_name, _, _) in FAULT_SIDES {
            let out = ns(
                ns_name,
                "iptables",
                &["-t", "mangle", "-L", "POSTROUTING", "-v", "-x", "-n"],
                Duration::from_secs(10),
            );
            let n = out
                .stdout
                .lines()
                .find(|l| l.contains("TEE"))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            report.duplicated.push((ns_name.to_string(), n));
        }
        Self::remove_rules();
        self.active = false;
        for (ns_name, bg, stats) in &mut self.injectors {
            let _ = run(
                "kill",
                &["-TERM", &bg.pid().to_string()],
                Duration::from_secs(5),
            );
            let status = bg.wait(Duration::from_secs(10));
            assert!(
                status.is_some_and(|s| s.success()),
                "the fault injector in {ns_name} failed: {}",
                bg.describe()
            );
            let text = fs::read_to_string(&*stats).unwrap_or_default();
            let v = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
                panic!("the injector's counters {text:?}: {e}: {}", bg.describe())
            });
            report.queues.push((ns_name.clone(), v));
        }
        report
    }
}

impl Drop for Faults {
    fn drop(&mut self) {
        if self.active {
            Self::remove_rules();
        }
        // The injectors (Background) are killed by their own Drop.
    }
}
