//! Memory per spliced connection, measured: the process's resident set before a flow table
//! made for N connections exists and after N spliced objects are in it, divided by N. The
//! table is the only per-connection structure of the fast path (the object is its slot), so
//! this is everything a spliced flow costs a worker.

use common::conn::CONN_BYTES;
use dataplane::flow_table::FlowTable;

use crate::traffic::{flow, object};
use crate::Args;

/// Resident bytes of this process (`/proc/self/statm`, field 2, in pages).
fn rss() -> Result<u64, String> {
    let s = std::fs::read_to_string("/proc/self/statm").map_err(|e| format!("statm: {e}"))?;
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .ok_or("statm: no resident field")?;
    Ok(pages * 4096)
}

/// `--flows N`: a table made for N connections, N inserted; with `--fill max`, filled up to
/// what it accepts (its maximum load, 7/8 of its slots: the capacity, give or take
/// rounding) instead.
pub fn run(args: &Args) -> Result<(), String> {
    let capacity = args.count("flows")?;
    let before = rss()?;
    let mut t = FlowTable::new(capacity as usize);
    let n = match args.str("fill") {
        Some("max") => t.max_load() as u32,
        _ => capacity,
    };
    for i in 0..n {
        let f = flow(i, true);
        t.insert(object(&f, true))
            .map_err(|e| format!("insert {i}: {e:?}"))?;
    }
    let after = rss()?;
    let slots = t.slot_count();
    let per_flow = (after - before) as f64 / f64::from(n);
    println!(
        "memory: {n} spliced objects in a table made for {capacity}: RSS {} -> {} MiB, {per_flow:.1} bytes \
         per flow measured; {} bytes per slot (object and tag), {slots} slots ({:.1} bytes per flow at this \
         fill, {:.1} at the table's maximum load of {})",
        before >> 20,
        after >> 20,
        t.bytes_per_slot(),
        t.memory_bytes() as f64 / f64::from(n),
        t.memory_bytes() as f64 / t.max_load() as f64,
        t.max_load()
    );
    println!(
        "RESULT impl=memory kind={} flows={n} capacity={capacity} bytes_per_flow={per_flow:.1} rss_before={before} rss_after={after} \
         conn_bytes={CONN_BYTES} slot_bytes={} slots={slots} table_bytes={} max_load={}",
        if n == capacity { "capacity" } else { "max-load" },
        t.bytes_per_slot(),
        t.memory_bytes(),
        t.max_load()
    );
    std::hint::black_box(&t);
    Ok(())
}
