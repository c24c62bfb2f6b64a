//! The hub the telemetry threads read (snapshots behind a mutex: a telemetry request is not
//! the fast path, and the workers never touch it), and the logins' telemetry form.

use super::*;
use std::sync::MutexGuard;

/// JSON (objects, arrays, non-negative integers, strings, booleans) as a telemetry value.
pub fn json_to_tel(v: &serde_json::Value) -> TelValue {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            TelValue::Dict(m.iter().map(|(k, v)| (k.clone(), json_to_tel(v))).collect())
        }
        Value::Array(a) => TelValue::Array(a.iter().map(json_to_tel).collect()),
        Value::Bool(b) => TelValue::U64(u64::from(*b)),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => TelValue::U64(u),
            (_, Some(i)) => TelValue::Int(i.clamp(i32::MIN.into(), i32::MAX.into()) as i32),
            _ => TelValue::Str(n.to_string()),
        },
        Value::String(s) => TelValue::Str(s.clone()),
        Value::Null => TelValue::Str(String::new()),
    }
}

/// What the telemetry callbacks read: snapshots published by control.
#[derive(Default)]
pub struct Hub {
    state: Mutex<HubState>,
    flows_ready: Condvar,
    flows_wanted: AtomicBool,
    /// One flow request at a time.
    flow_requests: Mutex<()>,
    auth_ready: Condvar,
    auth_wanted: AtomicBool,
    /// One login request at a time.
    auth_requests: Mutex<()>,
}

/// What an operator asks of the logins (`/cutthrough/auth`, `/cutthrough/auth_clear`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOp {
    List,
    Clear(crate::auth::Clear),
}

/// Logins one telemetry reply carries at most (as flows: DPDK's reply size).
pub const LOGINS_MAX: usize = FLOWS_MAX;

/// `/cutthrough/auth`'s answer: `total`, `shown`, and the logins keyed by their index
/// (`"0"`, `"1"`, ...): DPDK 22.11's telemetry cannot carry an object inside an array, so
/// the rows are entries of the reply's own object, as flow listings are.
pub fn logins_reply(logins: &[crate::auth::Login]) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert("total".into(), logins.len().into());
    m.insert("shown".into(), logins.len().min(LOGINS_MAX).into());
    for (i, l) in logins.iter().take(LOGINS_MAX).enumerate() {
        m.insert(i.to_string(), serde_json::json!(l));
    }
    serde_json::Value::Object(m)
}

/// The logins of a [`logins_reply`], in order (in the client).
pub fn logins_of(reply: &serde_json::Value) -> Vec<serde_json::Value> {
    let Some(o) = reply.as_object() else {
        return Vec::new();
    };
    let mut rows: Vec<(usize, serde_json::Value)> = o
        .iter()
        .filter_map(|(k, v)| Some((k.parse().ok()?, v.clone())))
        .collect();
    rows.sort_by_key(|(i, _)| *i);
    rows.into_iter().map(|(_, v)| v).collect()
}

impl AuthOp {
    /// The parameters of `/cutthrough/auth_clear`: `all`, `user=NAME` or a client address.
    pub fn parse_clear(params: &str) -> Result<AuthOp, String> {
        use crate::auth::Clear;
        let p = params.trim();
        if p == "all" {
            return Ok(AuthOp::Clear(Clear::All));
        }
        if let Some(user) = p.strip_prefix("user=") {
            if user.is_empty() {
                return Err("user= needs a name".into());
            }
            return Ok(AuthOp::Clear(Clear::User(user.to_string())));
        }
        common::config::parse_ipv4(p)
            .map(|a| AuthOp::Clear(Clear::Client(a)))
            .map_err(|_| format!("`{p}`: expected all, user=NAME or a client's IPv4 address"))
    }
}

#[derive(Default)]
struct HubState {
    report: Option<Report>,
    drops: BTreeMap<String, u64>,
    config: Vec<(String, TelValue)>,
    query: Option<FlowQuery>,
    listing: FlowListing,
    listings: u64,
    auth_op: Option<AuthOp>,
    auth_reply: serde_json::Value,
    auth_answers: u64,
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `/cutthrough/stats`: the last report (an error string before the first one).
    pub fn stats(&self) -> TelValue {
        match &self.lock().report {
            Some(r) => json_to_tel(&serde_json::json!(r)),
            None => TelValue::Str("no statistics yet".into()),
        }
    }

    /// `/cutthrough/drops`: every drop reason, zero or not.
    pub fn drops(&self) -> TelValue {
        TelValue::Dict(
            self.lock()
                .drops
                .iter()
                .map(|(k, v)| (k.clone(), TelValue::U64(*v)))
                .collect(),
        )
    }

    /// `/cutthrough/config`.
    pub fn config(&self) -> TelValue {
        TelValue::Dict(self.lock().config.clone())
    }

    /// `/cutthrough/flows`: asks control for a fresh listing and waits for it (at most
    /// `wait`); on a timeout returns the previous one. Runs on a telemetry thread.
    pub fn flows(&self, query: FlowQuery, wait: Duration) -> FlowListing {
        let _one = self.flow_requests.lock().unwrap_or_else(|p| p.into_inner());
        let mut st = self.lock();
        let before = st.listings;
        st.query = Some(query);
        self.flows_wanted.store(true, Ordering::Release);
        let (st, _) = wait_while(&self.flows_ready, st, wait, |st| st.listings == before);
        st.listing.clone()
    }

    /// `/cutthrough/auth` and `/cutthrough/auth_clear`: asks control (which owns the logins)
    /// and waits for its answer, at most `wait`; `null` on a timeout. Runs on a telemetry
    /// thread.
    pub fn auth(&self, op: AuthOp, wait: Duration) -> serde_json::Value {
        let _one = self.auth_requests.lock().unwrap_or_else(|p| p.into_inner());
        let mut st = self.lock();
        let before = st.auth_answers;
        st.auth_op = Some(op);
        self.auth_wanted.store(true, Ordering::Release);
        let (mut st, answered) =
            wait_while(&self.auth_ready, st, wait, |st| st.auth_answers == before);
        if !answered {
            st.auth_op = None;
            return serde_json::Value::Null;
        }
        st.auth_reply.clone()
    }

    /// Control: the pending login request, if any (one atomic load when there is none).
    pub fn take_auth_op(&self) -> Option<AuthOp> {
        if !self.auth_wanted.swap(false, Ordering::AcqRel) {
            return None;
        }
        self.lock().auth_op.take()
    }

    /// Control: the answer to the waiting login request.
    pub fn publish_auth(&self, reply: serde_json::Value) {
        let mut st = self.lock();
        st.auth_reply = reply;
        st.auth_answers += 1;
        self.auth_ready.notify_all();
    }

    /// Control: the pending flow request, if any (one atomic load when there is none).
    pub fn take_flow_query(&self) -> Option<FlowQuery> {
        if !self.flows_wanted.swap(false, Ordering::AcqRel) {
            return None;
        }
        self.lock().query.take()
    }

    /// Control: a finished listing, for the waiting request.
    pub fn publish_flows(&self, listing: FlowListing) {
        let mut st = self.lock();
        st.listing = listing;
        st.listings += 1;
        self.flows_ready.notify_all();
    }

    pub fn publish_stats(&self, stats: &Stats, report: Report) {
        let mut st = self.lock();
        st.report = Some(report);
        st.drops = stats
            .drops
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
    }

    pub fn publish_config(&self, file: Option<&PathBuf>, settings: &Settings, last_reload: &str) {
        let c = &settings.config;
        let rules: Vec<TelValue> = c
            .policy
            .iter()
            .map(|r| TelValue::Str(rule_summary(r)))
            .collect();
        let d = vec![
            (
                "file".to_string(),
                TelValue::Str(file.map(|f| f.display().to_string()).unwrap_or_default()),
            ),
            (
                "policy_generation".into(),
                TelValue::U64(settings.generation()),
            ),
            ("last_reload".into(), TelValue::Str(last_reload.to_string())),
            ("rules".into(), TelValue::U64(c.policy.len() as u64)),
            ("users".into(), TelValue::U64(c.users.len() as u64)),
            ("workers".into(), TelValue::U64(u64::from(c.workers.count))),
            (
                "flow_table_capacity".into(),
                TelValue::U64(u64::from(c.flow_table.capacity)),
            ),
            (
                "auth_cache_timeout_s".into(),
                TelValue::U64(c.auth.cache_timeout.as_secs()),
            ),
            ("policy".into(), TelValue::Array(rules)),
        ];
        self.lock().config = d;
    }
}

/// Waits on `ready` while `pending` holds, at most `wait` in all (spurious wake-ups
/// included); whether `pending` ended before the time was up.
fn wait_while<'a>(
    ready: &Condvar,
    mut st: MutexGuard<'a, HubState>,
    wait: Duration,
    pending: impl Fn(&HubState) -> bool,
) -> (MutexGuard<'a, HubState>, bool) {
    let deadline = Instant::now() + wait;
    while pending(&st) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (st, false);
        }
        st = ready
            .wait_timeout(st, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
    (st, true)
}
