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

    /// The declarations agree with themselves: every default parses as its kind, no
    /// name is declared twice, and no required parameter has a default (an admin could
    /// not tell which one applies). For each agent's unit tests.
    pub fn check(&self) -> Result<(), String> {
        for (i, p) in self.params.iter().enumerate() {
            if self.params[..i].iter().any(|q| q.name == p.name) {
                return Err(format!(
                    "{}: parameter {} declared twice",
                    self.name, p.name
                ));
            }
            if let Some(d) = p.default {
                if p.required {
                    return Err(format!(
                        "{}: parameter {} is required and has a default",
                        self.name, p.name
                    ));
                }
                p.parse(d).map_err(|e| {
                    format!(
                        "{}: default of {} ({d:?}) does not parse: {e}",
                        self.name, p.name
                    )
                })?;
            }
        }
        Ok(())
    }
}

/// The OCF provider name of all bulwark agents.
pub const PROVIDER: &str = "bulwark";
/// The OCF API version bulwark emits in `<version>`.
pub const OCF_VERSION: &str = "1.1";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::param::{Kind, Param};

    fn spec(params: &'static [Param]) -> AgentSpec {
        AgentSpec {
            name: "t",
            version: "1",
            shortdesc: "",
            longdesc: "",
            params,
            actions: &[],
        }
    }

    #[test]
    fn check_finds_each_inconsistency() {
        static GOOD: [Param; 2] = [
            Param::new("n", Kind::Integer { min: 1, max: 9 }, "").default("3"),
            Param::new("ip", Kind::String, "").required(),
        ];
        assert_eq!(spec(&GOOD).check(), Ok(()));
        static BAD_DEFAULT: [Param; 1] =
            [Param::new("n", Kind::Integer { min: 1, max: 9 }, "").default("10")];
        assert!(spec(&BAD_DEFAULT)
            .check()
            .unwrap_err()
            .contains("default of n"));
        static TWICE: [Param; 2] = [
            Param::new("n", Kind::String, ""),
            Param::new("n", Kind::Boolean, ""),
        ];
        assert!(spec(&TWICE).check().unwrap_err().contains("declared twice"));
        static REQUIRED_DEFAULT: [Param; 1] =
            [Param::new("ip", Kind::String, "").required().default("x")];
        assert!(spec(&REQUIRED_DEFAULT)
            .check()
            .unwrap_err()
            .contains("required and has a default"));
    }
}
