//! DPDK telemetry: commands of our own on the EAL's telemetry socket
//! (`/var/run/dpdk/<prefix>/dpdk_telemetry.v2`), read by `dpdk-telemetry.py` or any client.
//!
//! [`register`] takes a command name (`/cutthrough/stats`) and a Rust closure that turns the
//! command's parameters into a [`TelValue`]. DPDK 22.11's callbacks carry no user pointer, so
//! the closures live in a process-wide registry keyed by command name, and one C trampoline
//! looks the closure up and converts its value into `rte_tel_data`.
//!
//! The closures run on DPDK's telemetry threads (one per connected client), never on an lcore:
//! they may lock and allocate, but must only read snapshots, never the workers' live state.
//!
//! Each reply is first fitted to what DPDK can carry ([`TelValue::prepare`], in
//! [`crate::tel_value`], which needs no DPDK and says what is kept).
use std::collections::HashMap;
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, OnceLock};

use super::{DpdkError, Eal};
use crate::tel_value::cut;
pub use crate::tel_value::TelValue;

/// Longest command name DPDK accepts (`MAX_CMD_LEN` in telemetry.c, less the NUL).
pub const MAX_COMMAND_LEN: usize = 55;

type Handler = dyn Fn(&str) -> TelValue + Send + Sync;

fn registry() -> &'static Mutex<HashMap<String, Arc<Handler>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Arc<Handler>>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Registers `cmd` (e.g. `/cutthrough/stats`: a leading `/`, at most [`MAX_COMMAND_LEN`]
/// bytes of letters, digits, `_` and `/`) with `help`; `handler` gets the text after the
/// command's first comma (empty without one). Registering a command again replaces its
/// handler.
pub fn register<F>(_eal: &Eal, cmd: &str, help: &str, handler: F) -> Result<(), DpdkError>
where
    F: Fn(&str) -> TelValue + Send + Sync + 'static,
{
    let valid = cmd.starts_with('/')
        && cmd.len() <= MAX_COMMAND_LEN
        && cmd
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'/');
    if !valid {
        return Err(DpdkError::InvalidConfig {
            target: format!("telemetry command {cmd:?}"),
            why: format!(
                "want a leading '/', at most {MAX_COMMAND_LEN} letters, digits, '_' or '/'"
            ),
        });
    }
    let mut reg = registry().lock().unwrap_or_else(|p| p.into_inner());
    let known = reg.contains_key(cmd);
    reg.insert(cmd.to_string(), Arc::new(handler));
    if known {
        return Ok(());
    }
    let help = CString::new(cut(help).replace('\0', " ")).unwrap_or_default();
    let c_cmd = CString::new(cmd).unwrap_or_default();
    // DPDK keeps the help pointer for the life of the process (and copies the name).
    let help: &'static CStr = Box::leak(help.into_boxed_c_str());
    // SAFETY: both strings are valid and NUL-terminated; help is leaked, so it outlives the
    // registration; `trampoline` matches telemetry_cb and never unwinds into C.
    let rc = unsafe {
        dpdk_sys::rte_telemetry_register_cmd(c_cmd.as_ptr(), Some(trampoline), help.as_ptr())
    };
    if rc != 0 {
        reg.remove(cmd);
        return Err(DpdkError::call("rte_telemetry_register_cmd", cmd, rc));
    }
    Ok(())
}

/// The one C callback: finds the command's closure, runs it, fills `d`. A panic or an
/// unknown command answers with an error (-EINVAL), never unwinds into C.
unsafe extern "C" fn trampoline(
    cmd: *const c_char,
    params: *const c_char,
    d: *mut dpdk_sys::rte_tel_data,
) -> c_int {
    if cmd.is_null() || d.is_null() {
        return -(dpdk_sys::EINVAL as c_int);
    }
    // SAFETY: DPDK passes the NUL-terminated command it matched; we copy it at once.
    let cmd = unsafe { CStr::from_ptr(cmd) }
        .to_string_lossy()
        .into_owned();
    let params = if params.is_null() {
        String::new()
    } else {
        // SAFETY: non-null, NUL-terminated (DPDK's copy of the request); copied at once.
        unsafe { CStr::from_ptr(params) }
            .to_string_lossy()
            .into_owned()
    };
    let handler = registry()
        .lock()
        .ok()
        .and_then(|reg| reg.get(&cmd).cloned());
    let Some(handler) = handler else {
        return -(dpdk_sys::EINVAL as c_int);
    };
    let value = match catch_unwind(AssertUnwindSafe(|| handler(&params))) {
        Ok(v) => v.prepare(),
        Err(_) => {
            log::error!("telemetry command {cmd} panicked");
            return -(dpdk_sys::EINVAL as c_int);
        }
    };
    // SAFETY: `d` is the empty rte_tel_data DPDK handed us for this reply.
    unsafe { fill_top(d, &value) }
}

fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', " ")).unwrap_or_default()
}

/// Fills the reply `d` with a prepared value.
///
/// # Safety
/// `d` must be a valid, empty `rte_tel_data`.
unsafe fn fill_top(d: *mut dpdk_sys::rte_tel_data, v: &TelValue) -> c_int {
    match v {
        TelValue::Str(s) => {
            let s = cstring(s);
            // SAFETY: d is valid (caller); s is NUL-terminated and copied by DPDK.
            unsafe { dpdk_sys::rte_tel_data_string(d, s.as_ptr()) }
        }
        // SAFETY: d is valid and empty (caller).
        _ => unsafe { fill_container(d, v) },
    }
}

/// Makes a container holding `v` (a dict or an array) and gives it to `add`, which adds it to
/// its parent with keep = 0: DPDK then frees it with the reply. A container `add` did not
/// take (or that could not be filled) is ours to free; without memory for one, nothing is
/// added.
fn add_container(v: &TelValue, add: impl FnOnce(*mut dpdk_sys::rte_tel_data) -> c_int) {
    // SAFETY: a plain allocation; null is handled below.
    let c = unsafe { dpdk_sys::rte_tel_data_alloc() };
    if c.is_null() {
        return;
    }
    // SAFETY: c is a valid, empty rte_tel_data (just allocated).
    if unsafe { fill_container(c, v) } != 0 || add(c) != 0 {
        // SAFETY: c was not taken by a parent, so it is still ours, and it is freed once.
        unsafe { dpdk_sys::rte_tel_data_free(c) };
    }
}

/// Fills `d` (valid, empty) with a dict or an array.
///
/// # Safety
/// `d` must be a valid, empty `rte_tel_data`.
unsafe fn fill_container(d: *mut dpdk_sys::rte_tel_data, v: &TelValue) -> c_int {
    match v {
        TelValue::Dict(entries) => {
            // SAFETY: d is valid and empty (caller).
            let rc = unsafe { dpdk_sys::rte_tel_data_start_dict(d) };
            if rc != 0 {
                return rc;
            }
            // Below, d is a started dict; the strings are NUL-terminated and copied by DPDK.
            // A failed entry (no room) is left out, as DPDK documents.
            for (name, val) in entries {
                let name = cstring(name);
                match val {
                    TelValue::U64(x) => {
                        // SAFETY: d is a started dict; name is NUL-terminated, copied by DPDK.
                        unsafe { dpdk_sys::rte_tel_data_add_dict_u64(d, name.as_ptr(), *x) };
                    }
                    TelValue::Int(x) => {
                        // SAFETY: as for U64.
                        unsafe { dpdk_sys::rte_tel_data_add_dict_int(d, name.as_ptr(), *x) };
                    }
                    TelValue::Str(s) => {
                        let s = cstring(s);
                        // SAFETY: as for U64; s is NUL-terminated and copied by DPDK as well.
                        unsafe {
                            dpdk_sys::rte_tel_data_add_dict_string(d, name.as_ptr(), s.as_ptr())
                        };
                    }
                    TelValue::Dict(_) | TelValue::Array(_) => add_container(val, |c| {
                        // SAFETY: as for U64; c is a filled container (add_container).
                        unsafe { dpdk_sys::rte_tel_data_add_dict_container(d, name.as_ptr(), c, 0) }
                    }),
                }
            }
            0
        }
        TelValue::Array(items) => {
            let ty = match items.first() {
                Some(TelValue::Int(_)) => dpdk_sys::RTE_TEL_INT_VAL,
                Some(TelValue::Str(_)) => dpdk_sys::RTE_TEL_STRING_VAL,
                Some(TelValue::Array(_) | TelValue::Dict(_)) => dpdk_sys::RTE_TEL_CONTAINER,
                _ => dpdk_sys::RTE_TEL_U64_VAL,
            };
            // SAFETY: d is valid and empty (caller).
            let rc = unsafe { dpdk_sys::rte_tel_data_start_array(d, ty) };
            if rc != 0 {
                return rc;
            }
            // Below, d is a started array of `ty`, and prepare() left only items of that type.
            for item in items {
                match item {
                    TelValue::U64(x) => {
                        // SAFETY: d is a started array of u64s.
                        unsafe { dpdk_sys::rte_tel_data_add_array_u64(d, *x) };
                    }
                    TelValue::Int(x) => {
                        // SAFETY: d is a started array of ints.
                        unsafe { dpdk_sys::rte_tel_data_add_array_int(d, *x) };
                    }
                    TelValue::Str(s) => {
                        let s = cstring(s);
                        // SAFETY: d is a started array of strings; s is NUL-terminated and
                        // copied by DPDK.
                        unsafe { dpdk_sys::rte_tel_data_add_array_string(d, s.as_ptr()) };
                    }
                    TelValue::Dict(_) | TelValue::Array(_) => add_container(item, |c| {
                        // SAFETY: d is a started array of containers; c is a filled container
                        // (add_container).
                        unsafe { dpdk_sys::rte_tel_data_add_array_container(d, c, 0) }
                    }),
                }
            }
            0
        }
        // prepare() never leaves a bare scalar where a container is expected.
        _ => -(dpdk_sys::EINVAL as c_int),
    }
}
