//! The drop capture (`capture.drops` in the configuration): the dropped packets the workers
//! hand over (`Why::Dropped`, at most the configured rate) written to a ring of pcapng
//! files, each a whole capture on its own (section and interface headers first), for
//! Wireshark or tcpdump later. Each packet's comment names its drop reason and worker.
//!
//! The ring is `PATH`, `PATH.1`, ... `PATH.(files-1)`. A file is closed before a packet would
//! take it past `file_size`, and the next one is truncated and begun: the oldest capture is
//! the one overwritten. The box starts on the file after the most recently written one, so
//! a restart (after a crash, say) does not overwrite what the last run captured.
//!
//! Writes go through a buffer, flushed at every rotation, at least once a second
//! ([`DropCapture::tick`]) and at shutdown, so a reader is at most a second behind. The first
//! I/O error stops the capture, with one warning and a counter: the box goes on without it.

mod pcapng;

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use serde::Serialize;

use common::config::{self, Iface};
use dataplane::verdict::DropReason;

/// How often written packets are flushed to the file (milliseconds of control's clock).
pub const FLUSH_MS: u32 = 1000;
const BUFFER: usize = 64 << 10;

/// What the drop capture did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CaptureCounters {
    /// Packets written.
    pub captured: u64,
    /// Bytes written, headers included.
    pub bytes: u64,
    /// Files begun after the first one.
    pub files_rotated: u64,
    /// I/O errors; the first stops the capture.
    pub errors: u64,
    /// Packets handed over after the capture stopped.
    pub lost: u64,
}

/// A ring of pcapng files being written (see the module docs).
pub struct DropCapture {
    cfg: config::DropCapture,
    /// The file being written; `None` once an error stopped the capture.
    out: Option<BufWriter<File>>,
    index: u32,
    /// Bytes in the current file.
    size: u64,
    /// The section and interface headers every file starts with.
    header: Vec<u8>,
    /// The block being built, and its comment (reused: no allocation per packet).
    block: Vec<u8>,
    comment: String,
    unflushed: bool,
    last_flush_ms: u32,
    pub counters: CaptureCounters,
}

impl DropCapture {
    /// Begins the ring's next file. A failure is logged and counted, and leaves the capture
    /// stopped: the box runs without it.
    /// `interfaces` name the box's interfaces in [`Iface`] order (pcapng's interface ids).
    pub fn open(cfg: &config::DropCapture, interfaces: &[&str]) -> DropCapture {
        let mut header = Vec::new();
        let app = concat!("cutthrough ", env!("CARGO_PKG_VERSION"));
        pcapng::header(&mut header, app, interfaces, cfg.snaplen);
        let mut c = DropCapture {
            cfg: cfg.clone(),
            out: None,
            index: next_index(cfg),
            size: 0,
            header,
            block: Vec::with_capacity(cfg.snaplen as usize + 256),
            comment: String::new(),
            unflushed: false,
            last_flush_ms: 0,
            counters: CaptureCounters::default(),
        };
        if let Some(dir) = cfg.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Err(e) = std::fs::create_dir_all(dir) {
                c.fail(dir, e);
                return c;
            }
        }
        if let Err(e) = c.begin() {
            c.fail(&cfg.file(c.index), e);
        } else {
            log::info!(
                "drop capture: writing {} ({} files of {} bytes at most, {} packets/s, snaplen {})",
                cfg.file(c.index).display(),
                cfg.files,
                cfg.file_size,
                cfg.rate,
                cfg.snaplen
            );
        }
        c
    }

    /// Whether packets are being written (false once an error stopped the capture).
    pub fn is_writing(&self) -> bool {
        self.out.is_some()
    }

    /// The file being written.
    pub fn current_file(&self) -> std::path::PathBuf {
        self.cfg.file(self.index)
    }

    /// Writes one dropped frame: arrived on `iface`, dropped by `worker` for `reason`, at
    /// `ts_us` (microseconds since the epoch).
    pub fn write(
        &mut self,
        iface: Iface,
        worker: u16,
        reason: DropReason,
        frame: &[u8],
        ts_us: u64,
    ) {
        if self.out.is_none() {
            self.counters.lost += 1;
            return;
        }
        self.comment.clear();
        let _ = write!(self.comment, "drop: {}, worker {worker}", reason.name());
        self.block.clear();
        let interface = u32::from(iface.0);
        pcapng::packet(
            &mut self.block,
            interface,
            ts_us,
            frame,
            self.cfg.snaplen,
            &self.comment,
        );
        let len = self.block.len() as u64;
        // A file holding only its headers takes the block whatever its size, so no packet is
        // refused (validation makes every block fit an empty file anyway).
        if self.size + len > self.cfg.file_size && self.size > self.header.len() as u64 {
            if let Err(e) = self.rotate() {
                self.fail(&self.cfg.file(self.index), e);
                self.counters.lost += 1;
                return;
            }
        }
        let Some(out) = self.out.as_mut() else {
            return;
        };
        match out.write_all(&self.block) {
            Ok(()) => {
                self.size += len;
                self.counters.bytes += len;
                self.counters.captured += 1;
                self.unflushed = true;
            }
            Err(e) => {
                self.fail(&self.cfg.file(self.index), e);
                self.counters.lost += 1;
            }
        }
    }

    /// Flushes what was written if [`FLUSH_MS`] have passed since the last flush; control
    /// calls it from its timers.
    pub fn tick(&mut self, now_ms: u32) {
        if self.unflushed && now_ms.wrapping_sub(self.last_flush_ms) >= FLUSH_MS {
            self.flush();
            self.last_flush_ms = now_ms;
        }
    }

    /// Flushes what was written (at shutdown; the file stays a valid capture).
    pub fn flush(&mut self) {
        self.unflushed = false;
        if let Some(Err(e)) = self.out.as_mut().map(|o| o.flush()) {
            self.fail(&self.cfg.file(self.index), e);
        }
    }

    /// Closes the current file and begins the next one of the ring.
    fn rotate(&mut self) -> io::Result<()> {
        if let Some(mut old) = self.out.take() {
            old.flush()?;
        }
        self.index = (self.index + 1) % self.cfg.files;
        self.begin()?;
        self.counters.files_rotated += 1;
        Ok(())
    }

    /// Truncates the current file of the ring and writes its headers.
    fn begin(&mut self) -> io::Result<()> {
        let mut out = BufWriter::with_capacity(BUFFER, File::create(self.cfg.file(self.index))?);
        out.write_all(&self.header)?;
        self.size = self.header.len() as u64;
        self.counters.bytes += self.size;
        self.unflushed = true;
        self.out = Some(out);
        Ok(())
    }

    /// Stops the capture after an I/O error: one warning, then only counters.
    fn fail(&mut self, path: &Path, e: io::Error) {
        self.counters.errors += 1;
        if let Some(out) = self.out.take() {
            // What is buffered may be lost too; the error has been reported.
            let _ = out.into_parts();
        }
        log::warn!(
            "drop capture stopped: {}: {e} (the box goes on without it)",
            path.display()
        );
    }
}

impl Drop for DropCapture {
    fn drop(&mut self) {
        self.flush();
    }
}

/// The file to begin with: the one after the most recently modified file of the ring, or the
/// first one.
fn next_index(cfg: &config::DropCapture) -> u32 {
    (0..cfg.files)
        .filter_map(|i| {
            let t = std::fs::metadata(cfg.file(i)).ok()?.modified().ok()?;
            Some((t, i))
        })
        .max()
        .map_or(0, |(_, i)| (i + 1) % cfg.files)
}

#[cfg(test)]
mod tests;
