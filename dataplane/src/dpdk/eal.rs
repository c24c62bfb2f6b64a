//! The Environment Abstraction Layer: initialisation (once per process), cleanup, lcores and
//! the TSC clock.
//!
//! The thread that calls [`Eal::init`] becomes the main lcore. Only it may launch closures on
//! worker lcores and wait for them: DPDK's launch state machine is not safe to drive from two
//! threads, and checking the caller's lcore id enforces that.
use std::ffi::{c_int, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{rte_errno, DpdkError};

/// Set by the first call of [`Eal::init`], successful or not: DPDK supports one `rte_eal_init`
/// per process, and not even a retry after a failure.
static INIT_CALLED: AtomicBool = AtomicBool::new(false);

/// Program name put in front of the EAL arguments (DPDK's `argv[0]`).
const PROGRAM: &str = "cutthrough";

/// A handle on the initialised EAL. Clones share it; `rte_eal_cleanup` runs when the last one
/// is dropped (see [`Drop`] below for the conditions).
#[derive(Clone)]
pub struct Eal {
    inner: Arc<EalInner>,
}

pub(super) struct EalInner {
    main_lcore: u32,
}

impl std::fmt::Debug for Eal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Eal")
            .field("main_lcore", &self.inner.main_lcore)
            .finish()
    }
}

/// A job launched on a worker lcore: boxed twice so that a thin pointer crosses the FFI.
type Job = Box<dyn FnOnce() -> i32 + Send + 'static>;

impl Eal {
    /// Initialises DPDK with `args` (EAL options only: the program name is put in front).
    ///
    /// Fails with [`DpdkError::AlreadyInitialised`] on every call after the first. The
    /// argument strings are leaked on purpose: the EAL may keep pointers into `argv` for the
    /// life of the process.
    pub fn init<S: AsRef<str>>(args: &[S]) -> Result<Eal, DpdkError> {
        let mut owned = Vec::with_capacity(args.len() + 1);
        for arg in std::iter::once(PROGRAM).chain(args.iter().map(AsRef::as_ref)) {
            let c = CString::new(arg).map_err(|_| DpdkError::BadArgument {
                arg: arg.to_string(),
            })?;
            owned.push(c);
        }
        let argc = c_int::try_from(owned.len()).map_err(|_| DpdkError::BadArgument {
            arg: format!("{} arguments", owned.len()),
        })?;
        if INIT_CALLED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::AlreadyInitialised);
        }
        let argv: &'static mut [*mut std::ffi::c_char] =
            Vec::leak(owned.into_iter().map(CString::into_raw).collect::<Vec<_>>());
        // SAFETY: argv holds argc valid, NUL-terminated, leaked (so 'static) strings; the EAL
        // may reorder the pointer array, which is ours and leaked too. INIT_CALLED guarantees
        // this is the only call in the process.
        let rc = unsafe { dpdk_sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if rc < 0 {
            return Err(DpdkError::call("rte_eal_init", "EAL", rte_errno()));
        }
        // SAFETY: plain getter, valid after a successful rte_eal_init.
        let main_lcore = unsafe { dpdk_sys::rte_get_main_lcore() };
        let eal = Eal {
            inner: Arc::new(EalInner { main_lcore }),
        };
        super::memory::register(&eal);
        Ok(eal)
    }

    /// A handle that does not keep the EAL up.
    pub(super) fn downgrade(&self) -> std::sync::Weak<EalInner> {
        Arc::downgrade(&self.inner)
    }

    /// A handle from one [`Eal::downgrade`] gave back.
    pub(super) fn from_inner(inner: Arc<EalInner>) -> Eal {
        Eal { inner }
    }

    /// The lcore of the thread that called [`Eal::init`].
    pub fn main_lcore(&self) -> u32 {
        self.inner.main_lcore
    }

    /// How many lcores the EAL runs (main included), from its `-l` / `-c` option.
    pub fn lcore_count(&self) -> u32 {
        // SAFETY: plain getter on the initialised EAL.
        unsafe { dpdk_sys::rte_lcore_count() }
    }

    /// The enabled worker lcores (every EAL lcore but the main one), in increasing order: the
    /// equivalent of `RTE_LCORE_FOREACH_WORKER`.
    pub fn worker_lcores(&self) -> WorkerLcores {
        WorkerLcores { last: None }
    }

    /// Runs `job` on worker lcore `lcore` (`rte_eal_remote_launch`). Call it from the main
    /// lcore; the lcore must be an enabled worker that is not busy. The job's return value is
    /// what [`Eal::wait_lcore`] gives back; a panic in it is caught and becomes -1.
    pub fn launch_on_lcore<F>(&self, lcore: u32, job: F) -> Result<(), DpdkError>
    where
        F: FnOnce() -> i32 + Send + 'static,
    {
        self.check_main("rte_eal_remote_launch")?;
        self.check_worker("rte_eal_remote_launch", lcore)?;
        let job: Box<Job> = Box::new(Box::new(job));
        let arg = Box::into_raw(job).cast::<c_void>();
        // SAFETY: `trampoline` matches lcore_function_t; `arg` is a leaked Box<Job> that the
        // trampoline takes back exactly once. `lcore` is an enabled worker (checked above, so
        // inside lcore_config[]), and only the main lcore launches (checked above).
        let rc = unsafe { dpdk_sys::rte_eal_remote_launch(Some(trampoline), arg, lcore) };
        if rc != 0 {
            // SAFETY: the launch failed, so the worker never received `arg`: it is still ours.
            drop(unsafe { Box::from_raw(arg.cast::<Job>()) });
            return Err(DpdkError::call(
                "rte_eal_remote_launch",
                format!("lcore {lcore}"),
                rc,
            ));
        }
        Ok(())
    }

    /// Waits for the job on worker `lcore` to finish and returns its value (0 if none ran).
    pub fn wait_lcore(&self, lcore: u32) -> Result<i32, DpdkError> {
        self.check_main("rte_eal_wait_lcore")?;
        self.check_worker("rte_eal_wait_lcore", lcore)?;
        // SAFETY: `lcore` is an enabled worker and we are the main lcore (checked above).
        Ok(unsafe { dpdk_sys::rte_eal_wait_lcore(lcore) })
    }

    /// Waits for every worker lcore to finish its job (`rte_eal_mp_wait_lcore`).
    pub fn wait_all(&self) -> Result<(), DpdkError> {
        self.check_main("rte_eal_mp_wait_lcore")?;
        // SAFETY: called on the main lcore of an initialised EAL.
        unsafe { dpdk_sys::rte_eal_mp_wait_lcore() };
        Ok(())
    }

    fn check_main(&self, op: &'static str) -> Result<(), DpdkError> {
        let me = current_lcore();
        if me != self.inner.main_lcore {
            return Err(DpdkError::Lcore {
                op,
                lcore: me,
                why: "only the main lcore (the thread that called Eal::init) may do this",
            });
        }
        Ok(())
    }

    fn check_worker(&self, op: &'static str, lcore: u32) -> Result<(), DpdkError> {
        let why = if lcore >= dpdk_sys::RTE_MAX_LCORE {
            "no such lcore (past RTE_MAX_LCORE)"
        } else if lcore == self.inner.main_lcore {
            "that is the main lcore, not a worker"
        // SAFETY: lcore < RTE_MAX_LCORE; a plain read of the EAL's lcore table.
        } else if unsafe { dpdk_sys::rte_lcore_is_enabled(lcore) } == 0 {
            "lcore not enabled in the EAL arguments (-l)"
        } else {
            return Ok(());
        };
        Err(DpdkError::Lcore { op, lcore, why })
    }
}

impl Drop for EalInner {
    /// Cleans up only on the main lcore, after every worker returned; anywhere else (the last
    /// handle dropped inside a worker job) the EAL is left running: waiting there would wait
    /// for ourselves.
    fn drop(&mut self) {
        if current_lcore() != self.main_lcore {
            log::warn!("last EAL handle dropped off the main lcore: rte_eal_cleanup skipped");
            return;
        }
        // SAFETY: we are the main lcore (checked above), the only one that may wait.
        unsafe { dpdk_sys::rte_eal_mp_wait_lcore() };
        // SAFETY: we are the main lcore; no Mempool or Port is left (each holds a handle), so
        // nothing of ours refers to EAL memory once the workers have returned (waited above).
        if unsafe { dpdk_sys::rte_eal_cleanup() } != 0 {
            log::warn!("rte_eal_cleanup failed: {}", super::strerror(rte_errno()));
        }
    }
}

/// Runs a [`Job`] on a worker lcore. Unwinding must not cross into C: a panic becomes -1.
unsafe extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the Box<Job> leaked by launch_on_lcore, passed to us exactly once.
    let job = unsafe { Box::from_raw(arg.cast::<Job>()) };
    match catch_unwind(AssertUnwindSafe(move || (*job)())) {
        Ok(rc) => rc,
        Err(_) => {
            log::error!("job on lcore {} panicked", current_lcore());
            -1
        }
    }
}

/// Iterator over the enabled worker lcores (see [`Eal::worker_lcores`]).
#[derive(Debug, Clone)]
pub struct WorkerLcores {
    last: Option<u32>,
}

impl Iterator for WorkerLcores {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        // rte_get_next_lcore starts after `i`; u32::MAX (i.e. -1) starts at lcore 0.
        let from = self.last.unwrap_or(u32::MAX);
        if from != u32::MAX && from >= dpdk_sys::RTE_MAX_LCORE {
            return None;
        }
        // SAFETY: reads the EAL's lcore table; an Eal handle exists (it created this iterator).
        let next = unsafe { dpdk_sys::rte_get_next_lcore(from, 1, 0) };
        self.last = Some(next);
        (next < dpdk_sys::RTE_MAX_LCORE).then_some(next)
    }
}

fn current_lcore() -> u32 {
    // SAFETY: reads the calling thread's thread-local lcore id (LCORE_ID_ANY if not an EAL
    // thread, or before init).
    unsafe { dpdk_sys::ct_lcore_id() }
}

/// The calling thread's lcore id, or `None` for a thread the EAL does not know.
pub fn lcore_id() -> Option<u32> {
    let id = current_lcore();
    (id != dpdk_sys::LCORE_ID_ANY).then_some(id)
}

/// The time-stamp counter (`rte_get_tsc_cycles`): cheap, monotonic on one core.
#[inline]
pub fn tsc() -> u64 {
    // SAFETY: reads the CPU's TSC; no memory is touched.
    unsafe { dpdk_sys::ct_get_tsc_cycles() }
}

/// TSC ticks per second, as the EAL measured them at init (0 before [`Eal::init`]).
pub fn tsc_hz() -> u64 {
    // SAFETY: reads a global the EAL sets during init (zero before).
    unsafe { dpdk_sys::ct_get_tsc_hz() }
}
