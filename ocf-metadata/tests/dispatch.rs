//! The dispatch rules every agent inherits, checked in a real child process with a real
//! environment: the test binary re-runs itself as a tiny agent (`BW_TEST_ACTION` set).

use ocf_metadata::{
    AgentSpec, Context, Kind, OcfError, OcfExit, OcfResult, Param, ResourceAgent, STANDARD_ACTIONS,
};
use std::process::Command;

static PARAMS: &[Param] = &[
    Param::new("ip", Kind::Ip, "address").required().unique(),
    Param::new("count", Kind::Integer { min: 1, max: 5 }, "count").default("2"),
    Param::new("state", Kind::String, "state file"),
    Param::new("fail", Kind::String, "which error start returns"),
];
static SPEC: AgentSpec = AgentSpec {
    name: "dummy",
    version: "0.1.0",
    shortdesc: "test agent",
    longdesc: "test agent",
    params: PARAMS,
    actions: STANDARD_ACTIONS,
};

struct Dummy;
impl Dummy {
    fn state(ctx: &Context) -> std::path::PathBuf {
        ctx.params.str("state").unwrap_or("/nonexistent").into()
    }
}
impl ResourceAgent for Dummy {
    fn spec(&self) -> &'static AgentSpec {
        &SPEC
    }
    fn validate(&self, ctx: &Context) -> OcfResult<()> {
        if ctx.params.str("fail") == Some("host") {
            return Err(OcfError::args("interface eth9 does not exist on this host"));
        }
        Ok(())
    }
    fn start(&self, ctx: &Context) -> OcfResult<()> {
        ocf_metadata::log::info("starting");
        ocf_metadata::log::debug("debug detail");
        std::fs::write(Self::state(ctx), b"up").map_err(|e| OcfError::io("writing state", e))
    }
    fn stop(&self, ctx: &Context) -> OcfResult<()> {
        match std::fs::remove_file(Self::state(ctx)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(OcfError::io("stop", e)),
            _ => Ok(()),
        }
    }
    fn monitor(&self, ctx: &Context) -> OcfResult<OcfExit> {
        if ctx.params.str("fail") == Some("monitor-host") {
            return Err(OcfError::not_installed("kernel lacks the feature"));
        }
        Ok(if Self::state(ctx).exists() {
            OcfExit::Success
        } else {
            OcfExit::NotRunning
        })
    }
}

/// The child side: only active when re-invoked by `agent()`.
#[test]
fn child_entry() {
    if let Ok(action) = std::env::var("BW_TEST_ACTION") {
        let word = (action != "<none>").then_some(action.as_str());
        std::process::exit(ocf_metadata::run::run_with(&Dummy, word).code());
    }
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn agent(action: &str, env: &[(&str, &str)]) -> Out {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env_clear()
        .env("BW_TEST_ACTION", action);
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn reasons(s: &str) -> Vec<&str> {
    s.lines()
        .filter(|l| l.starts_with("ocf-exit-reason:"))
        .collect()
}

#[test]
fn meta_data_needs_no_parameters() {
    let o = agent("meta-data", &[]);
    assert_eq!(o.code, 0);
    assert!(o.stdout.contains("<resource-agent name=\"dummy\""));
}

#[test]
fn unknown_or_missing_action_is_3_with_a_reason() {
    for a in ["frobnicate", "<none>", "promote"] {
        let o = agent(a, &[("OCF_RESKEY_ip", "10.0.0.1")]);
        assert_eq!(o.code, 3, "{a}: {}", o.stderr);
        assert_eq!(reasons(&o.stderr).len(), 1, "{a}: {}", o.stderr);
    }
}

#[test]
fn full_lifecycle_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s");
    let env = [
        ("OCF_RESKEY_ip", "10.0.0.1"),
        ("OCF_RESKEY_state", state.to_str().unwrap()),
    ];
    assert_eq!(agent("monitor", &env).code, 7, "probe before start");
    assert_eq!(agent("stop", &env).code, 0, "stop when stopped");
    assert_eq!(agent("start", &env).code, 0);
    assert_eq!(agent("start", &env).code, 0, "start when started");
    assert_eq!(agent("monitor", &env).code, 0);
    assert_eq!(agent("status", &env).code, 0, "status is monitor");
    assert_eq!(agent("stop", &env).code, 0);
    assert_eq!(agent("stop", &env).code, 0);
    assert_eq!(agent("monitor", &env).code, 7);
}

#[test]
fn invalid_configuration_rules() {
    // Missing required parameter.
    let none: [(&str, &str); 0] = [];
    let o = agent("start", &none);
    assert_eq!(o.code, 6);
    assert_eq!(
        reasons(&o.stderr),
        ["ocf-exit-reason:required parameter 'ip' is not set"]
    );
    assert_eq!(agent("validate-all", &none).code, 6);
    assert_eq!(
        agent("stop", &none).code,
        0,
        "stop with invalid config succeeds"
    );
    assert_eq!(
        agent("monitor", &none).code,
        7,
        "probe with invalid config is 7"
    );
    let recurring = [("OCF_RESKEY_CRM_meta_interval", "10000")];
    assert_eq!(
        agent("monitor", &recurring).code,
        6,
        "recurring monitor fails"
    );
    // Out of range.
    let o = agent(
        "validate-all",
        &[("OCF_RESKEY_ip", "10.0.0.1"), ("OCF_RESKEY_count", "9")],
    );
    assert_eq!(o.code, 6);
    assert!(
        o.stderr.contains("'count'") && o.stderr.contains("between 1 and 5"),
        "{}",
        o.stderr
    );
    // Host-dependent failure: 2 on start and validate-all.
    let host = [("OCF_RESKEY_ip", "10.0.0.1"), ("OCF_RESKEY_fail", "host")];
    assert_eq!(agent("start", &host).code, 2);
    assert_eq!(agent("validate-all", &host).code, 2);
    // A probe that cannot run here is 7; a recurring monitor reports the real code.
    let m = [
        ("OCF_RESKEY_ip", "10.0.0.1"),
        ("OCF_RESKEY_fail", "monitor-host"),
    ];
    assert_eq!(agent("monitor", &m).code, 7);
    let mut rec = m.to_vec();
    rec.push(("OCF_RESKEY_CRM_meta_interval", "10000"));
    assert_eq!(agent("monitor", &rec).code, 5);
}

#[test]
fn exit_reason_prefix_is_honoured() {
    let o = agent("start", &[("OCF_EXIT_REASON_PREFIX", "REASON>")]);
    assert_eq!(o.code, 6);
    assert!(
        o.stderr
            .lines()
            .any(|l| l.starts_with("REASON>required parameter")),
        "{}",
        o.stderr
    );
    assert!(reasons(&o.stderr).is_empty());
}

#[test]
fn logging_goes_to_ha_logfile_and_debuglog_with_the_instance_tag() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ha.log");
    let dbg = dir.path().join("debug.log");
    let state = dir.path().join("s");
    let base = [
        ("OCF_RESKEY_ip", "10.0.0.1"),
        ("OCF_RESKEY_state", state.to_str().unwrap()),
        ("OCF_RESOURCE_INSTANCE", "vip-7"),
        ("HA_LOGFILE", log.to_str().unwrap()),
        ("HA_DEBUGLOG", dbg.to_str().unwrap()),
    ];
    let o = agent("start", &base);
    assert_eq!(o.code, 0);
    assert!(o.stderr.contains("vip-7: INFO: starting"), "{}", o.stderr);
    assert!(
        !o.stderr.contains("debug detail"),
        "debug off without HA_debug"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains(" vip-7:    INFO: starting"), "{text}");
    assert!(!text.contains("debug detail"));
    // With HA_debug=1 the debug line goes to the debug log only.
    let mut env = base.to_vec();
    env.push(("HA_debug", "1"));
    assert_eq!(agent("start", &env).code, 0);
    let d = std::fs::read_to_string(&dbg).unwrap();
    assert!(d.contains("vip-7:    DEBUG: debug detail"), "{d}");
    assert!(!std::fs::read_to_string(&log)
        .unwrap()
        .contains("debug detail"));
}
