//! The static description of an agent: the single source for meta-data, man page,
//! parameter parsing and validation.

use crate::param::Param;

/// An advertised action.
#[derive(Debug, Clone, Copy)]
pub struct ActionSpec {
    pub name: &'static str,
    pub timeout: &'static str,
    pub interval: Option<&'static str>,
    pub depth: Option<u32>,
}

impl ActionSpec {
    pub const fn new(name: &'static str, timeout: &'static str) -> ActionSpec {
        ActionSpec {
            name,
            timeout,
            interval: None,
            depth: None,
        }
    }
    pub const fn interval(mut self, interval: &'static str) -> ActionSpec {
        self.interval = Some(interval);
        self
    }
    pub const fn depth(mut self, depth: u32) -> ActionSpec {
        self.depth = Some(depth);
        self
    }
}

/// The action names the resource-agents DTD accepts; anything else breaks ocf-tester.
pub const DTD_ACTIONS: &[&str] = &[
    "start",
    "stop",
    "recover",
    "monitor",
    "restart",
    "migrate_to",
    "migrate_from",
    "promote",
    "demote",
    "notify",
    "status",
    "reload",
    "meta-data",
    "usage",
    "methods",
    "validate-all",
];

/// The standard action set of a bulwark resource agent.
pub const STANDARD_ACTIONS: &[ActionSpec] = &[
    ActionSpec::new("start", "20s"),
    ActionSpec::new("stop", "20s"),
    ActionSpec::new("monitor", "20s").interval("10s").depth(0),
    ActionSpec::new("meta-data", "5s"),
    ActionSpec::new("validate-all", "20s"),
];

/// Everything static about one agent.
#[derive(Debug, Clone, Copy)]
pub struct AgentSpec {
    /// The agent type, e.g. `floating-ip` (`ocf:bulwark:floating-ip`).
    pub name: &'static str,
    /// The agent's own version (the `version` attribute).
    pub version: &'static str,
    pub shortdesc: &'static str,
    pub longdesc: &'static str,
    pub params: &'static [Param],
    pub actions: &'static [ActionSpec],
}

impl AgentSpec {
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }
}

/// The OCF provider name of all bulwark agents.
pub const PROVIDER: &str = "bulwark";
/// The OCF API version bulwark emits in `<version>`.
pub const OCF_VERSION: &str = "1.1";
