//! The configuration the box runs with, as the control plane owns it: the whole file (users,
//! password hashes, directory secrets, the participating stack's settings) and the
//! [`Context`] made from it for the workers, which see only policy, routes, MACs and
//! timeouts. A reload (SIGHUP, `ops`) makes new settings from the file read again.

use std::sync::Arc;

use common::config::Config;
use common::wire::MacAddr;
use dataplane::context::{Context, ForwardMode};
use dataplane::steer::Steering;

#[derive(Debug)]
pub struct Settings {
    pub config: Config,
    /// What the workers read, made from `config`.
    pub workers: Arc<Context>,
}

impl Settings {
    pub fn new(config: Config, macs: &[MacAddr], mode: ForwardMode) -> Settings {
        let workers = Arc::new(Context::new(&config, macs, mode));
        Settings { config, workers }
    }

    /// These settings for workers that reach their flows by `steering` (the ports decide).
    pub fn steered(self, steering: Steering) -> Settings {
        let mut workers = Context::new(&self.config, &self.workers.macs, self.workers.mode);
        workers.steering = steering;
        workers.generation = self.workers.generation;
        Settings {
            workers: Arc::new(workers),
            ..self
        }
    }

    /// 0 for the configuration the box started with, +1 for each reload.
    pub fn generation(&self) -> u64 {
        self.workers.generation
    }

    /// The settings of a reload: `config`'s policy, users and authentication settings, with
    /// everything that cannot change while the box runs (ports, routes, workers, flow-table
    /// size and timeouts, EAL, captures) kept from these. Returns them and the names of the
    /// sections that differed in `config` but were kept (a restart applies them).
    pub fn reloaded(&self, config: Config) -> (Settings, Vec<&'static str>) {
        let old = &self.config;
        // The capture's files are open and the workers' rate shares set: both are made once.
        let kept = [
            ("eal", config.eal != old.eal),
            ("interfaces", config.interfaces != old.interfaces),
            ("routes", config.routes != old.routes),
            ("workers", config.workers != old.workers),
            ("flow_table", config.flow_table != old.flow_table),
            ("capture", config.capture != old.capture),
        ]
        .into_iter()
        .filter_map(|(name, differs)| differs.then_some(name))
        .collect();
        let merged = Config {
            policy: config.policy,
            users: config.users,
            auth: config.auth,
            ..old.clone()
        };
        let mut workers = Context::new(&merged, &self.workers.macs, self.workers.mode);
        workers.generation = self.workers.generation + 1;
        workers.steering = self.workers.steering;
        let settings = Settings {
            config: merged,
            workers: Arc::new(workers),
        };
        (settings, kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::testbed_config as testbed;
    use common::config::{Action, DropCapture};

    fn settings(config: Config) -> Settings {
        let macs = [MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2])];
        Settings::new(config, &macs, ForwardMode::Full)
    }

    #[test]
    fn a_reload_takes_policy_users_and_auth_and_counts_a_generation() {
        let old = settings(testbed());
        let mut cfg = testbed();
        cfg.policy[0].action = Action::Deny;
        cfg.users.pop();
        cfg.auth.cache_timeout *= 2;
        let (new, kept) = old.reloaded(cfg.clone());
        assert!(kept.is_empty(), "{kept:?}");
        assert_eq!(new.generation(), 1);
        assert_eq!(new.config.policy, cfg.policy);
        assert_eq!(new.workers.policy, cfg.policy, "the workers' copy too");
        assert_eq!(new.config.users, cfg.users);
        assert_eq!(new.config.auth, cfg.auth);
        let (newer, _) = new.reloaded(testbed());
        assert_eq!(newer.generation(), 2);
    }

    #[test]
    fn a_reload_keeps_what_needs_a_restart_and_says_so() {
        let old = settings(testbed());
        let mut cfg = testbed();
        cfg.workers.count += 1;
        cfg.flow_table.capacity *= 2;
        cfg.routes.push(common::config::Route {
            to: "203.0.113.0/24".parse().unwrap(),
            via: common::wire::Ipv4Addr::new(198, 19, 0, 2),
            interface: dataplane::testing::OUTSIDE,
        });
        cfg.capture.drops = Some(DropCapture {
            path: "/nonexistent/drops.pcapng".into(),
            file_size: DropCapture::DEFAULT_FILE_SIZE,
            files: DropCapture::DEFAULT_FILES,
            rate: 5,
            snaplen: DropCapture::DEFAULT_SNAPLEN,
        });
        let (new, kept) = old.reloaded(cfg);
        assert_eq!(kept, vec!["routes", "workers", "flow_table", "capture"]);
        assert_eq!(new.config.workers, old.config.workers);
        assert_eq!(new.config.flow_table, old.config.flow_table);
        assert_eq!(new.config.routes, old.config.routes);
        assert_eq!(new.config.capture, old.config.capture);
        assert_eq!(new.workers.drop_capture_rate, 0, "the capture is made once");
        assert_eq!(new.workers.flows_per_worker, old.workers.flows_per_worker);
    }
}
