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
//! What DPDK 22.11 can carry, and what [`TelValue::prepare`] makes of the rest:
//! - the top level is a dict, an array or a string; a scalar becomes a one-entry dict;
//! - a container may hold scalars and containers of scalars, one level deep: a container
//!   deeper than that is dropped (design the value with one level of nesting);
//! - an array holds values of one type (its first element's): the others are dropped;
//!   arrays of containers hold arrays only, so a dict inside an array is dropped;
//! - at most [`MAX_DICT_ENTRIES`] / [`MAX_ARRAY_ENTRIES`] entries, strings and names of at
//!   most [`MAX_STRING_LEN`] bytes (cut at a character boundary), 32-bit signed integers;
//! - the whole reply is at most 16 KiB of JSON: DPDK leaves out what does not fit.
use std::collections::HashMap;
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, OnceLock};

use super::{DpdkError, Eal};

/// Longest string value or name, in bytes (`RTE_TEL_MAX_STRING_LEN` less the NUL).
pub const MAX_STRING_LEN: usize = dpdk_sys::RTE_TEL_MAX_STRING_LEN as usize - 1;
pub const MAX_DICT_ENTRIES: usize = dpdk_sys::RTE_TEL_MAX_DICT_ENTRIES as usize;
pub const MAX_ARRAY_ENTRIES: usize = dpdk_sys::RTE_TEL_MAX_ARRAY_ENTRIES as usize;
/// Longest command name DPDK accepts (`MAX_CMD_LEN` in telemetry.c, less the NUL).
pub const MAX_COMMAND_LEN: usize = 55;

/// A telemetry reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TelValue {
    U64(u64),
    Int(i32),
    Str(String),
    Dict(Vec<(String, TelValue)>),
    Array(Vec<TelValue>),
}

type Handler = dyn Fn(&str) -> TelValue + Send + Sync;

fn registry() -> &'static Mutex<HashMap<String, Arc<Handler>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Arc<Handler>>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

fn cut(s: &str) -> &str {
    if s.len() <= MAX_STRING_LEN {
        return s;
    }
    let mut end = MAX_STRING_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn is_scalar(v: &TelValue) -> bool {
    matches!(v, TelValue::U64(_) | TelValue::Int(_) | TelValue::Str(_))
}

fn same_kind(a: &TelValue, b: &TelValue) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

impl TelValue {
    /// The value as DPDK will carry it (see the module documentation).
    pub fn prepare(self) -> TelValue {
        match self {
            TelValue::Str(s) => TelValue::Str(cut(&s).to_string()),
            v @ (TelValue::U64(_) | TelValue::Int(_)) => {
                TelValue::Dict(vec![("value".to_string(), v)])
            }
            v => v.prepare_at(0),
        }
    }

    fn prepare_at(self, depth: usize) -> TelValue {
        match self {
            TelValue::Str(s) => TelValue::Str(cut(&s).to_string()),
            TelValue::Dict(entries) => TelValue::Dict(
                entries
                    .into_iter()
                    .filter(|(_, v)| depth == 0 || is_scalar(v))
                    .take(MAX_DICT_ENTRIES)
                    .map(|(k, v)| (cut(&k).to_string(), v.prepare_at(depth + 1)))
                    .collect(),
            ),
            TelValue::Array(items) => {
                let Some(first) = items.first().cloned() else {
                    return TelValue::Array(items);
                };
                let keep = |v: &TelValue| {
                    same_kind(v, &first)
                        && match v {
                            TelValue::Dict(_) => false,
                            TelValue::Array(inner) => depth == 0 && inner.iter().all(is_scalar),
                            _ => true,
                        }
                };
                TelValue::Array(
                    items
                        .into_iter()
                        .filter(keep)
                        .take(MAX_ARRAY_ENTRIES)
                        .map(|v| v.prepare_at(depth + 1))
                        .collect(),
                )
            }
            v => v,
        }
    }
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
            for (name, val) in entries {
                let name = cstring(name);
                // SAFETY: d is a started dict; the strings are NUL-terminated and copied by
                // DPDK. A failed entry (no room) is left out, as DPDK documents.
                unsafe {
                    match val {
                        TelValue::U64(x) => {
                            dpdk_sys::rte_tel_data_add_dict_u64(d, name.as_ptr(), *x);
                        }
                        TelValue::Int(x) => {
                            dpdk_sys::rte_tel_data_add_dict_int(d, name.as_ptr(), *x);
                        }
                        TelValue::Str(s) => {
                            let s = cstring(s);
                            dpdk_sys::rte_tel_data_add_dict_string(d, name.as_ptr(), s.as_ptr());
                        }
                        TelValue::Dict(_) | TelValue::Array(_) => {
                            let c = dpdk_sys::rte_tel_data_alloc();
                            if c.is_null() {
                                continue;
                            }
                            // keep = 0: DPDK frees the container with the reply; if it was
                            // not taken, it is ours to free.
                            if fill_container(c, val) != 0
                                || dpdk_sys::rte_tel_data_add_dict_container(d, name.as_ptr(), c, 0)
                                    != 0
                            {
                                dpdk_sys::rte_tel_data_free(c);
                            }
                        }
                    }
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
            for item in items {
                // SAFETY: d is a started array of `ty`; prepare() left only items of that
                // type; strings are copied by DPDK; containers as for dicts above.
                unsafe {
                    match item {
                        TelValue::U64(x) => {
                            dpdk_sys::rte_tel_data_add_array_u64(d, *x);
                        }
                        TelValue::Int(x) => {
                            dpdk_sys::rte_tel_data_add_array_int(d, *x);
                        }
                        TelValue::Str(s) => {
                            let s = cstring(s);
                            dpdk_sys::rte_tel_data_add_array_string(d, s.as_ptr());
                        }
                        TelValue::Dict(_) | TelValue::Array(_) => {
                            let c = dpdk_sys::rte_tel_data_alloc();
                            if c.is_null() {
                                continue;
                            }
                            if fill_container(c, item) != 0
                                || dpdk_sys::rte_tel_data_add_array_container(d, c, 0) != 0
                            {
                                dpdk_sys::rte_tel_data_free(c);
                            }
                        }
                    }
                }
            }
            0
        }
        // prepare() never leaves a bare scalar where a container is expected.
        _ => -(dpdk_sys::EINVAL as c_int),
    }
}

#[cfg(test)]
mod tests {
    use super::TelValue::*;
    use super::*;

    #[test]
    fn one_level_of_nesting_survives_deeper_is_dropped() {
        let v = Dict(vec![
            ("a".into(), U64(1)),
            (
                "port".into(),
                Dict(vec![
                    ("rx".into(), U64(2)),
                    ("deep".into(), Dict(vec![("x".into(), U64(3))])),
                ]),
            ),
            ("list".into(), Array(vec![Str("x".into()), U64(4)])),
        ]);
        assert_eq!(
            v.prepare(),
            Dict(vec![
                ("a".into(), U64(1)),
                ("port".into(), Dict(vec![("rx".into(), U64(2))])),
                ("list".into(), Array(vec![Str("x".into())])),
            ])
        );
    }

    #[test]
    fn limits_are_applied() {
        let long = "é".repeat(100);
        let Str(s) = Str(long).prepare() else {
            panic!()
        };
        assert!(s.len() <= MAX_STRING_LEN && s.chars().all(|c| c == 'é'));
        let many = Array((0..1000).map(U64).collect()).prepare();
        assert!(matches!(many, Array(v) if v.len() == MAX_ARRAY_ENTRIES));
        assert_eq!(U64(7).prepare(), Dict(vec![("value".into(), U64(7))]));
        // Arrays of dicts cannot be carried by 22.11.
        assert_eq!(Array(vec![Dict(vec![])]).prepare(), Array(vec![]),);
    }
}
