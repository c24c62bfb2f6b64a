use super::*;

#[test]
fn medians_ratios_and_summary() {
    let lines = [
        "RESULT impl=box kind=spliced flows=1048576 size=66 mpps=8 cpp=300 hz=2600000000 drops=0",
        "RESULT impl=box kind=spliced flows=1048576 size=66 mpps=10 cpp=260 hz=2600000000 drops=0",
        "RESULT impl=box kind=spliced flows=1048576 size=66 mpps=9 cpp=280 hz=2600000000 drops=0",
        "RESULT impl=testpmd kind=5tswap flows=1048576 size=66 mpps=10",
        "RESULT impl=memory kind=capacity flows=1000000 bytes_per_flow=134.2",
    ];
    let r = Results::parse(lines.into_iter());
    assert_eq!(r.median("box", "spliced", 1 << 20, 66, "mpps"), Some(9.0));
    assert_eq!(
        r.get("box", "spliced", 1 << 20, 66, "mpps")
            .unwrap()
            .cell(1),
        "9.0 (8.0–10.0)"
    );
    assert_eq!(
        summary(&r),
        "fastpath_vs_5tswap_1M=0.90 fastpath_vs_l3fwd_em_1M=NA own_cycles_per_pkt_1k=NA \
         own_cycles_per_pkt_1M=NA bytes_per_flow=134 spliced_vs_testpmd_io=NA \
         spliced_vs_full_proxy=NA splices_per_s=NA"
    );
    assert!(fastpath_markdown(&r).contains("| 1M | 66 B |"));
    assert!(svg(&r).starts_with("<svg"));
}

#[test]
fn l3fwd_and_own_cycles() {
    let lines = [
        "RESULT impl=box kind=spliced flows=1024 size=66 mpps=10 cpp=260 hz=2600000000",
        "RESULT impl=testpmd kind=io flows=1024 size=66 mpps=65",
        "RESULT impl=box kind=spliced flows=1048576 size=66 mpps=5 cpp=520 hz=2600000000",
        "RESULT impl=testpmd kind=io flows=1048576 size=66 mpps=26",
        "RESULT impl=l3fwd kind=em flows=1048576 size=66 mpps=10 rx_mpps=10 mem=huge",
    ];
    let r = Results::parse(lines.into_iter());
    let sum = summary(&r);
    // 2.6 GHz over 65 and 26 Mpps: 40 and 100 cycles of receiving and sending.
    assert!(
        sum.contains(
            "fastpath_vs_l3fwd_em_1M=0.50 own_cycles_per_pkt_1k=220 own_cycles_per_pkt_1M=420"
        ),
        "{sum}"
    );
    let md = fastpath_markdown(&r);
    assert!(md.contains("| 10.00 | – | 0.19 | 0.50 |"), "{md}");
    assert!(svg(&r).contains("l3fwd EM, 66 B"));
}

#[test]
fn perf_stat_counted_or_not() {
    let lines = [
        "RESULT impl=perfstat kind=huge flows=1048576 size=66 mpps=5 rx=10000000 \
         task-clock=2001.5 dTLB-loads=NA dTLB-load-misses=NA LLC-loads=NA LLC-load-misses=NA",
        "RESULT impl=perfstat kind=no-huge flows=1048576 size=66 mpps=4 rx=8000000 \
         task-clock=2000.1 dTLB-loads=NA dTLB-load-misses=NA LLC-loads=NA LLC-load-misses=NA",
    ];
    let md = perfstat_markdown(&Results::parse(lines.into_iter()));
    assert!(
        md.contains("| 1M | 66 B | huge | 5.00 | 2002 | not supported |"),
        "{md}"
    );
    assert!(
        md.contains("no hardware performance-monitoring unit"),
        "{md}"
    );
    let lines = [
        "RESULT impl=perfstat kind=huge flows=1048576 size=66 mpps=5 rx=1000 task-clock=2000 \
         dTLB-loads=4000 dTLB-load-misses=1000 LLC-loads=NA LLC-load-misses=NA",
    ];
    let md = perfstat_markdown(&Results::parse(lines.into_iter()));
    assert!(
        md.contains("| 4.000 | 1.000 | 25.0 | not supported |"),
        "{md}"
    );
    assert!(!md.contains("no hardware"), "{md}");
}

#[test]
fn splices_with_connections_parked() {
    let lines = [
        "RESULT impl=e2e kind=spliced conns_per_s=2400 concurrency=32 run=1",
        "RESULT impl=splices kind=none per_s=2400 spliced=7200 run=1",
        "RESULT impl=splices kind=parked flows=1000 per_s=2300 spliced=6900 parked=1000 run=1",
        "RESULT impl=splices kind=parked flows=1000 per_s=2500 spliced=7500 parked=1000 run=2",
        "RESULT impl=splices kind=parked flows=10000 per_s=2100 spliced=6300 parked=9800 run=1",
    ];
    let r = Results::parse(lines.into_iter());
    let md = e2e_markdown(&r);
    assert!(md.contains("| 1000 | 1000 | 2400 (2300–2500) |"), "{md}");
    assert!(md.contains("| 10000 | 9800 | 2100 |"), "{md}");
    assert!(!md.contains("| 0 |"), "the unparked run is not a row: {md}");
    assert!(summary(&r).ends_with("splices_per_s=2400"));
}
