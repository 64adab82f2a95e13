//! Action dispatch. The action is read by hand from argv[1] (clap would exit 2 on an
//! unknown action; OCF wants 3). The probe and stop rules live here once, for every agent:
//! - a probe (monitor with interval 0) of an agent that cannot run here returns 7;
//! - stop with an invalid configuration returns 0 (nothing can have been started).

use crate::error::{OcfError, OcfResult};
use crate::exit::OcfExit;
use crate::log::{self, LogConfig};
use crate::param::Values;
use crate::spec::AgentSpec;
use crate::{man, xml};
use std::io::Write;
use std::time::{Duration, Instant};

/// The action of one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Start,
    Stop,
    Monitor,
    ValidateAll,
    MetaData,
    /// Any other word; the agent may implement it through [`ResourceAgent::other`].
    Other(String),
}

impl Action {
    pub fn parse(word: &str) -> Action {
        match word {
            "start" => Action::Start,
            "stop" => Action::Stop,
            "monitor" | "status" => Action::Monitor,
            "validate-all" => Action::ValidateAll,
            "meta-data" | "metadata" => Action::MetaData,
            other => Action::Other(other.to_string()),
        }
    }
}

/// What an action sees.
#[derive(Debug, Clone)]
pub struct Context {
    pub action: Action,
    pub params: Values,
    /// `OCF_RESOURCE_INSTANCE`, or the agent name.
    pub instance: String,
    /// `OCF_RESKEY_CRM_meta_interval` in ms (0 = probe or one-shot).
    pub interval_ms: u64,
    /// `OCF_RESKEY_CRM_meta_timeout`, if set.
    pub timeout: Option<Duration>,
    /// `OCF_CHECK_LEVEL` (0 when unset).
    pub check_level: u32,
    /// When the agent was invoked, to derive deadlines from `timeout`.
    pub started: Instant,
}

impl Context {
    /// A monitor with interval 0 (unset counts as 0).
    pub fn is_probe(&self) -> bool {
        self.action == Action::Monitor && self.interval_ms == 0
    }

    /// The deadline for this action: the operation timeout minus a safety margin,
    /// or `fallback` when Pacemaker did not say.
    pub fn deadline(&self, fallback: Duration) -> Instant {
        let total = self.timeout.unwrap_or(fallback);
        let margin = (total / 10).min(Duration::from_secs(2));
        self.started + total.saturating_sub(margin)
    }

    /// A context for tests and tools: no environment involved.
    pub fn for_params(action: Action, params: Values) -> Context {
        Context {
            action,
            params,
            instance: "test".into(),
            interval_ms: 0,
            timeout: None,
            check_level: 0,
            started: Instant::now(),
        }
    }
}

/// An OCF resource agent. Only the logic: parsing, meta-data, logging and exit codes
/// are handled by [`run`].
pub trait ResourceAgent {
    fn spec(&self) -> &'static AgentSpec;

    /// Checks beyond syntax that need the host (interface exists, ...). Called by
    /// `validate-all` and before `start`. The default accepts.
    fn validate(&self, _ctx: &Context) -> OcfResult<()> {
        Ok(())
    }

    fn start(&self, ctx: &Context) -> OcfResult<()>;

    /// Must succeed when already stopped.
    fn stop(&self, ctx: &Context) -> OcfResult<()>;

    /// Returns `Success`, `NotRunning` or `Degraded`; failures as errors.
    fn monitor(&self, ctx: &Context) -> OcfResult<OcfExit>;

    /// Actions beyond the standard five. `None` means "not implemented" (exit 3).
    fn other(&self, _action: &str, _ctx: &Context) -> Option<OcfResult<OcfExit>> {
        None
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn usage(spec: &AgentSpec) -> String {
    let names: Vec<&str> = spec.actions.iter().map(|a| a.name).collect();
    format!("usage: {} {{{}}}", spec.name, names.join("|"))
}

/// Reports an error the OCF way (stderr + one exit-reason line) and gives its code.
pub fn report(err: &OcfError) -> OcfExit {
    log::error(&err.to_string());
    log::exit_reason(&err.to_string());
    err.exit()
}

/// Runs the agent for this process's argv and environment; returns the exit code.
pub fn run(agent: &dyn ResourceAgent) -> i32 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    run_with(agent, args.first().map(String::as_str)).code()
}

/// Like [`run`], with the action word given.
pub fn run_with(agent: &dyn ResourceAgent, action_word: Option<&str>) -> OcfExit {
    let spec = agent.spec();
    let Some(word) = action_word else {
        eprintln!("{}", usage(spec));
        log::exit_reason("no action given");
        return OcfExit::ErrUnimplemented;
    };
    match word {
        "meta-data" | "metadata" => {
            let _ = std::io::stdout().write_all(xml::metadata(spec).as_bytes());
            return OcfExit::Success;
        }
        "usage" | "help" | "--help" | "-h" => {
            println!("{}", usage(spec));
            return OcfExit::Success;
        }
        "manpage" => {
            let _ = std::io::stdout().write_all(man::resource_agent(spec).as_bytes());
            return OcfExit::Success;
        }
        _ => {}
    }
    log::init(LogConfig::from_env(spec.name));
    let action = Action::parse(word);
    if let Action::Other(w) = &action {
        // Only agents that implement it get further; check before parsing parameters.
        if !spec.actions.iter().any(|a| a.name == w) {
            let msg = format!("action '{w}' is not implemented; {}", usage(spec));
            log::error(&msg);
            log::exit_reason(&format!("action '{w}' is not implemented"));
            return OcfExit::ErrUnimplemented;
        }
    }

    let interval_ms = env_u64("OCF_RESKEY_CRM_meta_interval").unwrap_or(0);
    let params = match Values::from_env(spec.params) {
        Ok(p) => p,
        Err(e) => {
            return match action {
                Action::Stop => {
                    log::warn(&format!(
                        "stop with invalid configuration, nothing to do: {e}"
                    ));
                    OcfExit::Success
                }
                Action::Monitor if interval_ms == 0 => {
                    log::info(&format!("probe with invalid configuration: {e}"));
                    OcfExit::NotRunning
                }
                _ => report(&e),
            };
        }
    };
    let ctx = Context {
        action: action.clone(),
        params,
        instance: std::env::var("OCF_RESOURCE_INSTANCE")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| spec.name.to_string()),
        interval_ms,
        timeout: env_u64("OCF_RESKEY_CRM_meta_timeout").map(Duration::from_millis),
        check_level: env_u64("OCF_CHECK_LEVEL").unwrap_or(0) as u32,
        started: Instant::now(),
    };
    let result = match &action {
        Action::Start => agent
            .validate(&ctx)
            .and_then(|()| agent.start(&ctx))
            .map(|()| OcfExit::Success),
        Action::Stop => agent.stop(&ctx).map(|()| OcfExit::Success),
        Action::Monitor => agent.monitor(&ctx),
        Action::ValidateAll => agent.validate(&ctx).map(|()| OcfExit::Success),
        Action::MetaData => unreachable!("handled above"),
        Action::Other(w) => agent.other(w, &ctx).unwrap_or_else(|| {
            Err(OcfError::Unimplemented(format!(
                "action '{w}' is not implemented"
            )))
        }),
    };
    match result {
        Ok(code) => code,
        Err(OcfError::NotRunning(msg)) if action == Action::Monitor => {
            log::info(&msg);
            OcfExit::NotRunning
        }
        Err(e) if ctx.is_probe() && e.is_invalid_env() => {
            log::info(&format!("probe: cannot run here ({e}), so not running"));
            OcfExit::NotRunning
        }
        Err(e) => report(&e),
    }
}
