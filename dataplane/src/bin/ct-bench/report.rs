//! From `RESULT` lines to the tables of `docs/BENCHMARKS.md`, the plot (an SVG written here,
//! no plotting library) and the one summary line of `scripts/bench.sh`.
//!
//! Every figure is the median of its runs, with the minimum and maximum beside it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::fastpath::field;
use crate::Args;

/// The values of one figure over its runs.
#[derive(Debug, Clone, Default)]
pub struct Stat(Vec<f64>);

impl Stat {
    fn push(&mut self, v: f64) {
        self.0.push(v);
        self.0.sort_by(f64::total_cmp);
    }
    pub fn median(&self) -> Option<f64> {
        let v = &self.0;
        match v.len() {
            0 => None,
            n if n % 2 == 1 => Some(v[n / 2]),
            n => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
        }
    }
    fn min(&self) -> f64 {
        self.0.first().copied().unwrap_or(f64::NAN)
    }
    fn max(&self) -> f64 {
        self.0.last().copied().unwrap_or(f64::NAN)
    }
    /// `median (min–max)` with `prec` decimals, or `–`.
    fn cell(&self, prec: usize) -> String {
        match self.median() {
            None => "–".into(),
            Some(m) if self.0.len() == 1 => format!("{m:.prec$}"),
            Some(m) => format!("{m:.prec$} ({:.prec$}–{:.prec$})", self.min(), self.max()),
        }
    }
}

/// (impl, kind, flows, size) → metric → values.
type Key = (String, String, u64, u64);

#[derive(Debug, Default)]
pub struct Results {
    map: BTreeMap<Key, BTreeMap<String, Stat>>,
    /// Every `hz=` seen (the TSC rate, for testpmd's cycles per packet).
    hz: Option<f64>,
}

impl Results {
    pub fn parse<'a>(lines: impl Iterator<Item = &'a str>) -> Results {
        let mut r = Results::default();
        for line in lines.filter_map(|l| l.trim().strip_prefix("RESULT ")) {
            let get = |k| field(line, k).unwrap_or("").to_string();
            let num = |k| {
                field(line, k)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            let kind = match get("impl").as_str() {
                "flowtable" => format!("{}-pf{}", get("case"), get("prefetch")),
                _ => get("kind"),
            };
            let key = (get("impl"), kind, num("flows"), num("size"));
            let metrics = r.map.entry(key).or_default();
            for w in line.split_whitespace() {
                if let Some((k, v)) = w.split_once('=') {
                    if let Ok(x) = v.parse::<f64>() {
                        metrics.entry(k.to_string()).or_default().push(x);
                    }
                }
            }
            if let Some(hz) = field(line, "hz").and_then(|v| v.parse().ok()) {
                r.hz = Some(hz);
            }
        }
        r
    }

    pub fn get(&self, imp: &str, kind: &str, flows: u64, size: u64, metric: &str) -> Option<&Stat> {
        self.map
            .get(&(imp.into(), kind.into(), flows, size))
            .and_then(|m| m.get(metric))
    }

    fn median(&self, imp: &str, kind: &str, flows: u64, size: u64, metric: &str) -> Option<f64> {
        self.get(imp, kind, flows, size, metric)?.median()
    }

    /// The (flows, size) pairs of one implementation, in order.
    fn configs(&self, imp: &str) -> Vec<(u64, u64)> {
        let mut v: Vec<(u64, u64)> = self
            .map
            .keys()
            .filter(|k| k.0 == imp)
            .map(|k| (k.2, k.3))
            .collect();
        v.sort_by_key(|&(f, s)| (s, f));
        v.dedup();
        v
    }

    fn ratio(&self, a: (&str, &str), b: (&str, &str), flows: u64, size: u64) -> Option<f64> {
        let x = self.median(a.0, a.1, flows, size, "mpps")?;
        let y = self.median(b.0, b.1, flows, size, "mpps")?;
        (y > 0.0).then_some(x / y)
    }
}

fn flows_label(n: u64) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{}M", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{}k", n >> 10),
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}M (10^6)", n / 1_000_000),
        n => n.to_string(),
    }
}

fn opt(v: Option<f64>, prec: usize) -> String {
    v.map_or("–".into(), |x| format!("{x:.prec$}"))
}

const FASTPATH_KINDS: [(&str, &str, &str); 7] = [
    ("box", "spliced", "box, spliced"),
    ("box", "pass", "box, pass"),
    ("box", "lookup", "box, lookup only"),
    ("box", "io", "box, --forward-mode io"),
    ("testpmd", "io", "testpmd io"),
    ("testpmd", "5tswap", "testpmd 5tswap"),
    ("l3fwd", "em", "l3fwd EM"),
];

/// The implementations the fast-path table and the plot show.
const FASTPATH_IMPLS: [&str; 3] = ["box", "testpmd", "l3fwd"];

/// The box's own cycles per packet, spliced: its cycles per packet less testpmd io's (TSC Hz
/// over its rate), i.e. what the box spends beyond receiving and transmitting.
fn own_cycles(r: &Results, flows: u64, size: u64) -> Option<f64> {
    let io = r.median("testpmd", "io", flows, size, "mpps")?;
    let hz = r.hz?;
    let cpp = r.median("box", "spliced", flows, size, "cpp")?;
    (io > 0.0).then(|| cpp - hz / (io * 1e6))
}

/// The fast-path table: Mpps per implementation, cycles per packet, ratios, drops.
pub fn fastpath_markdown(r: &Results) -> String {
    let mut s = String::new();
    let mut configs: Vec<(u64, u64)> = FASTPATH_IMPLS.iter().flat_map(|i| r.configs(i)).collect();
    configs.sort_by_key(|&(f, sz)| (sz, f));
    configs.dedup();
    if configs.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "| flows | frame | {} | spliced ÷ 5tswap | spliced ÷ testpmd io | spliced ÷ l3fwd EM | box io ÷ testpmd io | cycles/pkt spliced | cycles/pkt 5tswap | own cycles/pkt (spliced − testpmd io) | drops (spliced, pass) |",
        FASTPATH_KINDS.map(|k| format!("{} Mpps", k.2)).join(" | ")
    );
    let _ = writeln!(s, "|{}", "---|".repeat(2 + FASTPATH_KINDS.len() + 8));
    for (flows, size) in configs {
        let mut row = format!("| {} | {size} B |", flows_label(flows));
        for (imp, kind, _) in FASTPATH_KINDS {
            let c = r
                .get(imp, kind, flows, size, "mpps")
                .map_or("–".into(), |st| st.cell(2));
            let _ = write!(row, " {c} |");
        }
        let cpp_tp = r
            .median("testpmd", "5tswap", flows, size, "mpps")
            .zip(r.hz)
            .map(|(m, hz)| hz / (m * 1e6));
        let drops = |k| {
            r.get("box", k, flows, size, "drops")
                .map_or("–".into(), |st| format!("{}", st.max()))
        };
        let spliced_vs = |b: (&str, &str)| opt(r.ratio(("box", "spliced"), b, flows, size), 2);
        let _ = writeln!(
            row,
            " {} | {} | {} | {} | {} | {} | {} | {}, {} |",
            spliced_vs(("testpmd", "5tswap")),
            spliced_vs(("testpmd", "io")),
            spliced_vs(("l3fwd", "em")),
            opt(r.ratio(("box", "io"), ("testpmd", "io"), flows, size), 2),
            opt(r.median("box", "spliced", flows, size, "cpp"), 0),
            opt(cpp_tp, 0),
            opt(own_cycles(r, flows, size), 0),
            drops("spliced"),
            drops("pass"),
        );
        s.push_str(&row);
    }
    s
}

/// The summary printed by `fastpath` after its runs.
pub fn fastpath_table(lines: &[String]) -> String {
    let r = Results::parse(lines.iter().map(String::as_str));
    fastpath_markdown(&r)
}

fn flowtable_markdown(r: &Results) -> String {
    let mut s = String::new();
    let configs = r.configs("flowtable");
    if configs.is_empty() {
        return s;
    }
    s.push_str("| flows | hit | hit, burst prefetch | miss | miss, burst prefetch |\n|---|---|---|---|---|\n");
    for (flows, _) in configs {
        // One RESULT line per case, carrying its own median, min and max.
        let c = |k: &str| match (
            r.median("flowtable", k, flows, 0, "ns"),
            r.median("flowtable", k, flows, 0, "min"),
            r.median("flowtable", k, flows, 0, "max"),
        ) {
            (Some(m), Some(lo), Some(hi)) => format!("{m:.1} ({lo:.1}–{hi:.1})"),
            (m, _, _) => opt(m, 1),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            flows_label(flows),
            c("hit-pf0"),
            c("hit-pf1"),
            c("miss-pf0"),
            c("miss-pf1")
        );
    }
    s
}

fn memory_markdown(r: &Results) -> String {
    let mut s = String::new();
    if r.configs("memory").is_empty() {
        return s;
    }
    s.push_str("| spliced objects | table made for | measured bytes per flow (RSS) | bytes per slot (object + tag) | table slots | table MiB | bytes per flow at the table's max load (computed) |\n|---|---|---|---|---|---|---|\n");
    let mut rows: Vec<&Key> = r.map.keys().filter(|k| k.0 == "memory").collect();
    rows.sort_by_key(|k| (k.2, k.1.clone()));
    for k in rows {
        let (kind, flows) = (k.1.as_str(), k.2);
        let m = |k: &str| r.median("memory", kind, flows, 0, k);
        let _ = writeln!(
            s,
            "| {flows} | {} | {} | {} | {} | {} | {} |",
            opt(m("capacity"), 0),
            r.get("memory", kind, flows, 0, "bytes_per_flow")
                .map_or("–".into(), |st| st.cell(1)),
            // Older results call the slot's bytes (object and tag) `conn_size`.
            opt(m("slot_bytes").or_else(|| m("conn_size")), 0),
            opt(m("slots"), 0),
            opt(m("table_bytes").map(|b| b / f64::from(1 << 20)), 0),
            opt(m("table_bytes").zip(m("max_load")).map(|(b, l)| b / l), 1),
        );
    }
    s
}

/// The hardware events `scripts/bench.sh` counts with `perf stat` on the worker's thread.
const PERF_EVENTS: [(&str, &str); 2] = [
    ("dTLB-loads", "dTLB-load-misses"),
    ("LLC-loads", "LLC-load-misses"),
];

/// `perf stat` on the worker's thread (spliced, with and without hugepages): the events per
/// packet the worker received, and the miss ratios; events perf could not count say so.
fn perfstat_markdown(r: &Results) -> String {
    let mut keys: Vec<&Key> = r.map.keys().filter(|k| k.0 == "perfstat").collect();
    if keys.is_empty() {
        return String::new();
    }
    keys.sort_by_key(|k| (k.3, k.2, k.1.clone()));
    let mut s = String::from(
        "| flows | frame | EAL memory | box spliced Mpps | worker task-clock ms | dTLB loads /pkt | \
         dTLB load misses /pkt | dTLB miss % | LLC loads /pkt | LLC load misses /pkt | LLC miss % |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut counted = false;
    for k in keys {
        let m = |x: &str| r.median("perfstat", &k.1, k.2, k.3, x);
        let rx = m("rx").filter(|&n| n > 0.0);
        let _ = write!(
            s,
            "| {} | {} B | {} | {} | {} |",
            flows_label(k.2),
            k.3,
            k.1,
            r.get("perfstat", &k.1, k.2, k.3, "mpps")
                .map_or("–".into(), |st| st.cell(2)),
            opt(m("task-clock"), 0)
        );
        for (loads, misses) in PERF_EVENTS {
            let per = |e: &str| match (m(e), rx) {
                (Some(v), Some(n)) => format!("{:.3}", v / n),
                (Some(_), None) => "–".into(),
                (None, _) => "not supported".into(),
            };
            counted |= m(loads).is_some() || m(misses).is_some();
            let ratio = match (m(loads), m(misses)) {
                (Some(l), Some(x)) if l > 0.0 => format!("{:.1}", x / l * 100.0),
                _ => "–".into(),
            };
            let _ = write!(s, " {} | {} | {ratio} |", per(loads), per(misses));
        }
        s.push('\n');
    }
    if !counted {
        s.push_str(
            "\nperf could count none of these hardware events on this machine (`<not supported>`): \
             its kernel has no hardware performance-monitoring unit to count with (a virtual \
             machine without a virtual PMU), so only the rates and the task clock are measured.\n",
        );
    }
    s
}

/// The end-to-end paths in the order the table lists them.
const E2E_ORDER: [&str; 6] = [
    "kernel",
    "haproxy",
    "testpmd-io",
    "pass",
    "spliced",
    "full-proxy",
];

fn e2e_markdown(r: &Results) -> String {
    let mut s = String::new();
    let mut keys: Vec<&Key> = r.map.keys().filter(|k| k.0 == "e2e").collect();
    if keys.is_empty() {
        return s;
    }
    keys.sort_by_key(|k| E2E_ORDER.iter().position(|o| *o == k.1).unwrap_or(99));
    s.push_str("| path | iperf3 Gbit/s | CPU s per GB (whole machine) | short connections /s | ms per connection |\n|---|---|---|---|---|\n");
    for k in keys {
        let c = |m: &str, p| {
            r.get("e2e", &k.1, 0, 0, m)
                .map_or("–".into(), |st| st.cell(p))
        };
        // Each of `concurrency` clients runs one connection after another.
        let ms = r
            .median("e2e", &k.1, 0, 0, "concurrency")
            .zip(r.median("e2e", &k.1, 0, 0, "conns_per_s"))
            .filter(|&(_, rate)| rate > 0.0)
            .map(|(c, rate)| c / rate * 1e3);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            k.1,
            c("gbps", 2),
            c("cpu_s_per_gb", 2),
            c("conns_per_s", 0),
            opt(ms, 1)
        );
    }
    if let Some(st) = r.get("splices", "none", 0, 0, "per_s") {
        let _ = writeln!(
            s,
            "\nSplices per second on the one control lcore (port 9000, auth none, splice after-auth, \
             32 concurrent short connections): {}",
            st.cell(0)
        );
    }
    let parked: Vec<u64> = r
        .configs("splices")
        .into_iter()
        .map(|(p, _)| p)
        .filter(|&p| p > 0)
        .collect();
    if !parked.is_empty() {
        let _ = writeln!(
            s,
            "\nThe same while other connections sit in the participating stack (parked at the \
             `line` login prompt on 2323, one client leg each):\n\n\
             | connections parked | held by the box (`in_proxy`) | splices/s |\n|---|---|---|"
        );
        for p in parked {
            let c = |m: &str| {
                r.get("splices", "parked", p, 0, m)
                    .map_or("–".into(), |st| st.cell(0))
            };
            let parked_median = r
                .median("splices", "parked", p, 0, "parked")
                .map_or("–".into(), |m| format!("{m:.0}"));
            let _ = writeln!(s, "| {p} | {parked_median} | {} |", c("per_s"));
        }
    }
    s
}

/// The targets the team set for the fast path against what this run measured.
fn targets_markdown(r: &Results) -> String {
    let m1 = 1 << 20;
    let e2e = |k: &str| r.median("e2e", k, 0, 0, "gbps");
    let div = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let bytes = r
        .configs("memory")
        .iter()
        .filter_map(|&(f, _)| r.median("memory", "capacity", f, 0, "bytes_per_flow"))
        .reduce(f64::max);
    // (what, target, measured, higher is better)
    let rows: [(&str, f64, Option<f64>, bool); 8] = [
        (
            "fast path at 1M flows, 66 B, ÷ l3fwd exact match",
            1.0,
            r.ratio(("box", "spliced"), ("l3fwd", "em"), m1, 66),
            true,
        ),
        (
            "fast path at 1k flows, 66 B, ÷ testpmd 5tswap",
            0.5,
            r.ratio(("box", "spliced"), ("testpmd", "5tswap"), 1 << 10, 66),
            true,
        ),
        (
            "the box's own cycles per packet at 1k flows, 66 B",
            60.0,
            own_cycles(r, 1 << 10, 66),
            false,
        ),
        (
            "fast path at 1M flows, 66 B, ÷ testpmd 5tswap",
            0.8,
            r.ratio(("box", "spliced"), ("testpmd", "5tswap"), m1, 66),
            true,
        ),
        (
            "fast path at 1M flows, 1514 B, ÷ testpmd 5tswap",
            0.8,
            r.ratio(("box", "spliced"), ("testpmd", "5tswap"), m1, 1514),
            true,
        ),
        ("bytes per spliced flow, all in", 56.0, bytes, false),
        (
            "spliced end to end ÷ testpmd io",
            0.95,
            div(e2e("spliced"), e2e("testpmd-io")),
            true,
        ),
        (
            "spliced end to end ÷ full proxy",
            2.0,
            div(e2e("spliced"), e2e("full-proxy")),
            true,
        ),
    ];
    let mut s = String::from("| target | wanted | measured | verdict |\n|---|---|---|---|\n");
    for (what, want, got, higher) in rows {
        let verdict = match got {
            None => "not measured".to_string(),
            Some(g) if (higher && g >= want) || (!higher && g <= want) => "met".to_string(),
            Some(g) if higher => format!("missed: {:.0} % short", (1.0 - g / want) * 100.0),
            Some(g) => format!("missed: {:.0} % over", (g / want - 1.0) * 100.0),
        };
        let _ = writeln!(
            s,
            "| {what} | {} {want} | {} | {verdict} |",
            if higher { "≥" } else { "≤" },
            opt(got, 2)
        );
    }
    s
}

/// The one summary line (`NA` where a figure was not measured).
pub fn summary(r: &Results) -> String {
    let m1 = 1 << 20;
    let fp = r.ratio(("box", "spliced"), ("testpmd", "5tswap"), m1, 66);
    let fp_l3 = r.ratio(("box", "spliced"), ("l3fwd", "em"), m1, 66);
    // The worst of the tables filled to the capacity they were made for.
    let bytes = r
        .configs("memory")
        .iter()
        .filter_map(|&(f, _)| r.median("memory", "capacity", f, 0, "bytes_per_flow"))
        .reduce(f64::max);
    let e2e = |k: &str| r.median("e2e", k, 0, 0, "gbps");
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let splices = r.median("splices", "none", 0, 0, "per_s");
    let na = |v: Option<f64>, p: usize| v.map_or("NA".into(), |x| format!("{x:.p$}"));
    format!(
        "fastpath_vs_5tswap_1M={} fastpath_vs_l3fwd_em_1M={} own_cycles_per_pkt_1k={} \
         own_cycles_per_pkt_1M={} bytes_per_flow={} spliced_vs_testpmd_io={} \
         spliced_vs_full_proxy={} splices_per_s={}",
        na(fp, 2),
        na(fp_l3, 2),
        na(own_cycles(r, 1 << 10, 66), 0),
        na(own_cycles(r, m1, 66), 0),
        na(bytes, 0),
        na(ratio(e2e("spliced"), e2e("testpmd-io")), 2),
        na(ratio(e2e("spliced"), e2e("full-proxy")), 2),
        na(splices, 0),
    )
}

/// Where the plot sits in the picture, and its axes: flows on a log2 scale, Mpps on a log10
/// one.
#[derive(Debug, Clone, Copy)]
struct Frame {
    w: f64,
    h: f64,
    /// The plotting area: its top left corner, width and height.
    left: f64,
    top: f64,
    pw: f64,
    ph: f64,
    /// log2 of the flows at the left and right edges.
    x0: f64,
    x1: f64,
    ymin: f64,
    ymax: f64,
}

impl Frame {
    /// The x of `f` flows.
    fn px(&self, f: u64) -> f64 {
        let lx = |f: u64| (f as f64).log2();
        self.left + (lx(f) - self.x0) / (self.x1 - self.x0) * self.pw
    }

    /// The y of `v` Mpps.
    fn py(&self, v: f64) -> f64 {
        let Frame {
            top,
            ph,
            ymin,
            ymax,
            ..
        } = *self;
        top + ph - (v.max(ymin).log10() - ymin.log10()) / (ymax.log10() - ymin.log10()) * ph
    }
}

/// The plot: fast-path Mpps against the number of flows (log scale), one line per
/// implementation, solid for minimum-size frames and dashed for full-size ones, with min–max
/// bars.
pub fn svg(r: &Results) -> String {
    let (flows, sizes, frame) = svg_frame(r);
    let mut s = String::new();
    svg_axes(&mut s, &frame, &flows);
    svg_series(&mut s, r, &frame, &flows, &sizes);
    s.push_str("</svg>\n");
    s
}

/// The flows and the frame sizes measured (sorted), and the frame that holds every rate.
fn svg_frame(r: &Results) -> (Vec<u64>, Vec<u64>, Frame) {
    let (w, h) = (760.0, 440.0);
    let (left, right, top, bottom) = (70.0, 220.0, 30.0, 60.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
    let mut flows: Vec<u64> = Vec::new();
    let mut sizes: Vec<u64> = Vec::new();
    let (mut ymin, mut ymax) = (f64::INFINITY, 0.0f64);
    for (k, m) in &r.map {
        if FASTPATH_IMPLS.contains(&k.0.as_str()) {
            flows.push(k.2);
            sizes.push(k.3);
            if let Some(st) = m.get("mpps") {
                ymax = ymax.max(st.max());
                ymin = ymin.min(st.min());
            }
        }
    }
    flows.sort_unstable();
    flows.dedup();
    sizes.sort_unstable();
    sizes.dedup();
    // Log scale on both axes: the rates span more than a decade.
    if !(ymin.is_finite() && ymin > 0.0) {
        ymin = 0.1;
    }
    let ymin = 10f64.powf(ymin.log10().floor());
    let ymax = (ymax * 1.3).max(ymin * 10.0);
    let lx = |f: u64| (f as f64).log2();
    let (x0, x1) = match (flows.first(), flows.last()) {
        (Some(&a), Some(&b)) if a != b => (lx(a) - 0.5, lx(b) + 0.5),
        (Some(&a), _) => (lx(a) - 1.0, lx(a) + 1.0),
        _ => (0.0, 1.0),
    };
    let frame = Frame {
        w,
        h,
        left,
        top,
        pw,
        ph,
        x0,
        x1,
        ymin,
        ymax,
    };
    (flows, sizes, frame)
}

/// The header, the title, the grid with its labels (1, 2, 5 per decade of Mpps; one line per
/// number of flows), the plot's border and the axes' titles.
fn svg_axes(s: &mut String, frame: &Frame, flows: &[u64]) {
    let Frame {
        w,
        h,
        left,
        top,
        pw,
        ph,
        ymin,
        ymax,
        ..
    } = *frame;
    let px = |f: u64| frame.px(f);
    let py = |v: f64| frame.py(v);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="18" text-anchor="middle" font-size="14">Fast path, one worker core: Mpps vs flows (net_pcap, both directions)</text>"#,
        left + pw / 2.0
    );
    // Axes and grid: 1, 2, 5 per decade.
    let mut decade = ymin;
    while decade <= ymax {
        for m in [1.0, 2.0, 5.0] {
            let v = decade * m;
            if v < ymin || v > ymax {
                continue;
            }
            let y = py(v);
            let _ = writeln!(
                s,
                r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{v}</text>"##,
                left + pw,
                left - 6.0,
                y + 4.0
            );
        }
        decade *= 10.0;
    }
    for &f in flows {
        let x = px(f);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{:.1}" stroke="#eee"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            top + ph,
            top + ph + 18.0,
            flows_label(f)
        );
    }
    let _ = writeln!(
        s,
        r#"<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">connections in the flow table (log scale)</text>"#,
        left + pw / 2.0,
        h - 18.0
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">Mpps, log scale (median, min–max bars)</text>"#,
        top + ph / 2.0,
        top + ph / 2.0
    );
}

/// One line per implementation and frame size (solid for the first size, dashed for the
/// others) with min–max bars, and the legend.
fn svg_series(s: &mut String, r: &Results, frame: &Frame, flows: &[u64], sizes: &[u64]) {
    let Frame { left, top, pw, .. } = *frame;
    let px = |f: u64| frame.px(f);
    let py = |v: f64| frame.py(v);
    let colours = [
        "#d62728", "#ff7f0e", "#8c564b", "#2ca02c", "#1f77b4", "#9467bd", "#17becf",
    ];
    // Series.
    let mut legend = 0;
    for (si, &size) in sizes.iter().enumerate() {
        let dash = if si == 0 {
            ""
        } else {
            r#" stroke-dasharray="6 4""#
        };
        for (ci, (imp, kind, label)) in FASTPATH_KINDS.iter().enumerate() {
            let pts: Vec<(f64, &Stat)> = flows
                .iter()
                .filter_map(|&f| Some((px(f), r.get(imp, kind, f, size, "mpps")?)))
                .collect();
            if pts.is_empty() {
                continue;
            }
            let c = colours[ci % colours.len()];
            let path: Vec<String> = pts
                .iter()
                .filter_map(|(x, st)| Some(format!("{x:.1},{:.1}", py(st.median()?))))
                .collect();
            let _ = writeln!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2"{dash}/>"#,
                path.join(" ")
            );
            for (x, st) in &pts {
                let Some(m) = st.median() else { continue };
                let _ = writeln!(
                    s,
                    r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{c}"/><circle cx="{x:.1}" cy="{:.1}" r="3" fill="{c}"/>"#,
                    py(st.min()),
                    py(st.max()),
                    py(m)
                );
            }
            let ly = top + 10.0 + 18.0 * f64::from(legend);
            let lx0 = left + pw + 12.0;
            let _ = writeln!(
                s,
                r#"<line x1="{lx0:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{c}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}">{label}, {size} B</text>"#,
                lx0 + 24.0,
                lx0 + 30.0,
                ly + 4.0
            );
            legend += 1;
        }
    }
}

/// The `report` subcommand: markdown sections on stdout, the plot into `--svg`, and the
/// summary line last.
pub fn run(args: &Args) -> Result<(), String> {
    let path = args.req("results")?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let r = Results::parse(text.lines());
    if let Some(p) = args.str("svg") {
        std::fs::write(p, svg(&r)).map_err(|e| format!("{p}: {e}"))?;
    }
    let section = |title: &str, body: String| {
        if body.is_empty() {
            format!("### {title}\n\nNot measured in this run.\n\n")
        } else {
            format!("### {title}\n\n{body}\n")
        }
    };
    print!("{}", section("Targets", targets_markdown(&r)));
    print!(
        "{}",
        section(
            "Fast-path packet rate (Mpps, median (min–max))",
            fastpath_markdown(&r)
        )
    );
    print!(
        "{}",
        section(
            "TLB and last-level cache (perf stat on the worker thread, box spliced)",
            perfstat_markdown(&r)
        )
    );
    print!(
        "{}",
        section("Flow-table lookups (ns per lookup)", flowtable_markdown(&r))
    );
    print!(
        "{}",
        section("Memory per spliced connection", memory_markdown(&r))
    );
    print!(
        "{}",
        section("End to end on the namespace testbed", e2e_markdown(&r))
    );
    println!("SUMMARY {}", summary(&r));
    Ok(())
}

#[cfg(test)]
mod tests;
