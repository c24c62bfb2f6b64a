//! The verifier threads: plain std threads taking jobs from one bounded crossbeam channel and
//! answering on another. Everything about the pool is bounded by `capacity`, the jobs
//! submitted and not yet collected: submitting beyond it is refused at once, so the control
//! loop never blocks and neither channel ever fills (a thread never waits to answer).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{self, Receiver, Sender, TrySendError};

use common::config::Backend;

use crate::auth::{Credentials, Directory, Verdict};

/// A credential check: `(directory, backend, name, password)` → the verdict.
pub type Check = dyn Fn(&Directory, Backend, &[u8], &[u8]) -> Verdict + Send + Sync;
/// A [`Check`] the threads share.
pub type CheckFn = Arc<Check>;

/// Where one attempt is checked.
#[derive(Clone)]
pub struct Against {
    /// The directory in force when the attempt was made (a reload does not change its
    /// answer).
    pub dir: Directory,
    /// The rule's backend.
    pub backend: Backend,
}

struct Job<T> {
    tag: T,
    against: Against,
    credentials: Credentials,
}

/// The request queue had no room: the job was dropped (its password wiped), unverified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// Threads verifying credentials; each verdict comes back with the caller's tag `T`.
pub struct VerifierPool<T> {
    jobs: Option<Sender<Job<T>>>,
    verdicts: Receiver<(T, Verdict)>,
    threads: Vec<JoinHandle<()>>,
    /// Set at shutdown: queued jobs are dropped unverified instead of delaying the exit.
    stop: Arc<AtomicBool>,
    capacity: usize,
    pending: usize,
}

impl<T: Send + 'static> VerifierPool<T> {
    /// `threads` (at least 1) named `ct-verify-N`, `capacity` (at least 1) jobs pending at
    /// most. The threads inherit the caller's CPU set; see `crate::verifier`.
    pub fn start(threads: usize, capacity: usize, check: CheckFn) -> std::io::Result<Self> {
        let capacity = capacity.max(1);
        let (jobs, job_rx) = channel::bounded::<Job<T>>(capacity);
        let (verdict_tx, verdicts) = channel::bounded(capacity);
        let stop = Arc::new(AtomicBool::new(false));
        let mut pool = VerifierPool {
            jobs: Some(jobs),
            verdicts,
            threads: Vec::new(),
            stop: Arc::clone(&stop),
            capacity,
            pending: 0,
        };
        for i in 0..threads.max(1) {
            let (rx, tx) = (job_rx.clone(), verdict_tx.clone());
            let (check, stop) = (Arc::clone(&check), Arc::clone(&stop));
            let t = std::thread::Builder::new()
                .name(format!("ct-verify-{i}"))
                .spawn(move || serve(&rx, &tx, &*check, &stop))?;
            pool.threads.push(t);
        }
        Ok(pool)
    }

    /// Queues a job without blocking.
    pub fn submit(
        &mut self,
        tag: T,
        against: Against,
        credentials: Credentials,
    ) -> Result<(), Full> {
        let Some(jobs) = &self.jobs else {
            return Err(Full);
        };
        if self.pending >= self.capacity {
            return Err(Full);
        }
        let job = Job {
            tag,
            against,
            credentials,
        };
        match jobs.try_send(job) {
            Ok(()) => {
                self.pending += 1;
                Ok(())
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(Full),
        }
    }

    /// A finished verdict, if there is one; never blocks.
    pub fn try_collect(&mut self) -> Option<(T, Verdict)> {
        let v = self.verdicts.try_recv().ok()?;
        self.pending -= 1;
        Some(v)
    }

    /// Jobs submitted and not collected.
    pub fn pending(&self) -> usize {
        self.pending
    }

    pub fn threads(&self) -> usize {
        self.threads.len()
    }

    /// Waits (sleeping) until every pending job's verdict is ready to collect, at most
    /// `timeout`: for tests, which must not depend on how fast a thread runs.
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.verdicts.len() < self.pending {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    /// Stops the threads and waits for them: a verification in progress finishes, queued
    /// ones are dropped. Idempotent.
    pub fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.jobs = None;
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                log::warn!("a verifier thread panicked");
            }
        }
    }
}

impl<T> Drop for VerifierPool<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// One thread's loop: until every sender is gone (or the pool stops).
fn serve<T>(
    jobs: &Receiver<Job<T>>,
    verdicts: &Sender<(T, Verdict)>,
    check: &Check,
    stop: &AtomicBool,
) {
    for job in jobs.iter() {
        if stop.load(Ordering::Relaxed) {
            continue;
        }
        let Job {
            tag,
            against,
            credentials,
        } = job;
        let verdict = check(
            &against.dir,
            against.backend,
            &credentials.name,
            &credentials.password,
        );
        drop(credentials);
        // Only fails once the pool is gone; the pending bound keeps it from ever blocking.
        if verdicts.send((tag, verdict)).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Mutex;

    fn against() -> Against {
        Against {
            dir: Directory::local(&[]),
            backend: Backend::Local,
        }
    }

    fn creds(name: &str) -> Credentials {
        Credentials::new(name.as_bytes().to_vec(), b"pw".to_vec())
    }

    /// A check that accepts every name, but holds names starting with `slow` until `release`
    /// sends them a token; counts its calls.
    fn gated() -> (CheckFn, Sender<()>, Arc<AtomicUsize>) {
        let (release, gate) = channel::unbounded::<()>();
        let gate = Mutex::new(gate);
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&calls);
        let check: CheckFn = Arc::new(move |_, _, name, _| {
            c.fetch_add(1, Ordering::SeqCst);
            if name.starts_with(b"slow") {
                let _ = gate.lock().unwrap().recv_timeout(Duration::from_secs(30));
            }
            Verdict::Accepted(String::from_utf8(name.to_vec()).unwrap())
        });
        (check, release, calls)
    }

    fn collect_one<T: Send + 'static>(p: &mut VerifierPool<T>) -> (T, Verdict) {
        assert!(p.wait_ready(Duration::from_secs(30)), "no verdict");
        p.try_collect().expect("a verdict is ready")
    }

    #[test]
    fn verdicts_come_back_with_their_tags_in_any_order() {
        let (check, release, calls) = gated();
        let mut p = VerifierPool::start(2, 8, check).unwrap();
        p.submit(1u32, against(), creds("slow-one")).unwrap();
        // The slow job is taken before the fast one is queued.
        while calls.load(Ordering::SeqCst) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        p.submit(2u32, against(), creds("fast")).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let first = loop {
            if let Some(v) = p.try_collect() {
                break v;
            }
            assert!(Instant::now() < deadline, "the fast job never finished");
            std::thread::sleep(Duration::from_millis(1));
        };
        assert_eq!(first, (2, Verdict::Accepted("fast".into())));
        assert_eq!(p.pending(), 1);
        assert!(p.try_collect().is_none(), "the slow job is still held");
        release.send(()).unwrap();
        assert_eq!(
            collect_one(&mut p),
            (1, Verdict::Accepted("slow-one".into()))
        );
        assert_eq!(p.pending(), 0);
    }

    #[test]
    fn a_full_queue_refuses_at_once_and_frees_up_when_collected() {
        let (check, release, calls) = gated();
        let mut p = VerifierPool::start(1, 2, check).unwrap();
        p.submit(1u32, against(), creds("slow-1")).unwrap();
        p.submit(2u32, against(), creds("slow-2")).unwrap();
        let t = Instant::now();
        assert_eq!(p.submit(3u32, against(), creds("fast")), Err(Full));
        assert!(t.elapsed() < Duration::from_secs(1), "submit blocked");
        assert_eq!(p.pending(), 2);
        release.send(()).unwrap();
        release.send(()).unwrap();
        let mut tags = vec![collect_one(&mut p).0, collect_one(&mut p).0];
        tags.sort();
        assert_eq!(tags, [1, 2]);
        // Verdicts collected: room again; the refused job was never verified.
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        p.submit(4u32, against(), creds("fast")).unwrap();
        assert_eq!(collect_one(&mut p), (4, Verdict::Accepted("fast".into())));
    }

    #[test]
    fn uncollected_verdicts_count_against_the_capacity() {
        let (check, _release, _) = gated();
        let mut p = VerifierPool::start(1, 1, check).unwrap();
        p.submit(1u32, against(), creds("fast")).unwrap();
        assert!(p.wait_ready(Duration::from_secs(30)));
        // The job is done, but its verdict still waits: the bound holds.
        assert_eq!(p.submit(2u32, against(), creds("fast")), Err(Full));
        assert_eq!(collect_one(&mut p).0, 1);
    }

    #[test]
    fn shutdown_joins_the_threads_and_drops_queued_jobs() {
        let (check, release, calls) = gated();
        let witness = Arc::clone(&calls);
        let mut p = VerifierPool::start(1, 8, check).unwrap();
        p.submit(1u32, against(), creds("slow")).unwrap();
        while calls.load(Ordering::SeqCst) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        for i in 2..6 {
            p.submit(i, against(), creds("fast")).unwrap();
        }
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            release.send(()).unwrap();
        });
        p.shutdown();
        releaser.join().unwrap();
        assert_eq!(p.threads(), 0);
        // The job in progress finished; the four queued ones were never verified.
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // The threads are gone, and with them their clones of the check.
        assert_eq!(
            Arc::strong_count(&witness),
            2,
            "the test's two handles only"
        );
    }

    #[test]
    fn dropping_the_pool_joins_its_threads() {
        let (check, _release, calls) = gated();
        let witness = Arc::clone(&calls);
        let p = VerifierPool::<u32>::start(3, 4, check).unwrap();
        assert_eq!(p.threads(), 3);
        drop(p);
        assert_eq!(Arc::strong_count(&witness), 2);
    }
}
