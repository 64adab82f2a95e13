//! Bad input to ocf:bulwark:ping-arbiter: the right exit code, a readable
//! `ocf-exit-reason:` line, and never a panic. Every case fails while parsing or
//! validating, before any packet is sent; the one case that looks at interfaces runs in
//! a namespace of its own.
mod harness;

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_ping-arbiter");

fn run(action: &str, params: &[(&str, &str)], extra_env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(BIN);
    c.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("OCF_ROOT", "/usr/lib/ocf")
        .env("OCF_RESOURCE_INSTANCE", "bad-input")
        .env("OCF_RESKEY_pidfile", "/nonexistent-bulwark-test/state");
    for (k, v) in params {
        c.env(format!("OCF_RESKEY_{k}"), v);
    }
    for (k, v) in extra_env {
        c.env(k, v);
    }
    c.arg(action).output().expect("running the agent")
}

fn check(case: &str, o: &Output, code: i32, reason: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{case}: panic: {err}");
    assert_eq!(o.status.code(), Some(code), "{case}: {err}");
    if code != 0 && code != 7 {
        let line = err
            .lines()
            .find(|l| l.starts_with("ocf-exit-reason:"))
            .unwrap_or_else(|| panic!("{case}: no ocf-exit-reason line: {err}"));
        assert!(
            line.contains(reason),
            "{case}: reason {line:?} should mention {reason:?}"
        );
        // Readable: one line, no debug formatting of Rust types.
        assert!(
            !line.contains("Err(") && !line.contains("Some("),
            "{case}: {line}"
        );
    }
}

/// (what, parameters, text the exit reason must contain)
type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);

#[test]
fn bad_parameters_exit_6_with_a_reason_and_no_panic() {
    let many: Vec<String> = (0..1001)
        .map(|i| format!("10.213.{}.{}", i / 250, i % 250 + 1))
        .collect();
    let many = many.join(" ");
    let garbage = "x!".repeat(5000);
    let h = |v: &'static str| vec![("host_list", v)];
    let with = |k: &'static str, v: &'static str| vec![("host_list", "10.213.0.1"), (k, v)];
    let cases: Vec<Case> = vec![
        (
            "host_list unset",
            vec![],
            "required parameter 'host_list' is not set",
        ),
        (
            "empty host_list",
            h(""),
            "required parameter 'host_list' is not set",
        ),
        (
            "host_list of separators",
            h(" , ,, "),
            "'host_list' is empty",
        ),
        (
            "unparseable IPv4",
            h("10.213.0.300"),
            "neither an IP address nor a valid host name",
        ),
        (
            "unparseable host",
            h("bad_host!"),
            "neither an IP address nor a valid host name",
        ),
        ("unknown probe", h("foo:10.213.0.1"), "unknown probe 'foo'"),
        ("tcp without port", h("tcp:10.213.0.1"), "tcp:PORT:HOST"),
        ("tcp port 0", h("tcp:0:10.213.0.1"), "1 to 65535"),
        ("tcp port too big", h("tcp:99999:10.213.0.1"), "1 to 65535"),
        ("arp on IPv6", h("arp:fd00:213::1"), "IPv4 only"),
        ("unbalanced bracket", h("[fd00:213::1"), "unbalanced"),
        ("zone index", h("fe80::1%eth0"), "zone"),
        ("duplicate host", h("10.213.0.1 10.213.0.1"), "listed twice"),
        ("multicast", h("224.0.0.1"), "unicast"),
        (
            "bad probe param",
            with("probe", "udp"),
            "use icmp, arp or tcp:PORT",
        ),
        ("bad probe port", with("probe", "tcp:http"), "1 to 65535"),
        (
            "negative multiplier",
            with("multiplier", "-5"),
            "'multiplier'",
        ),
        (
            "zero multiplier",
            with("multiplier", "0"),
            "must be between 1",
        ),
        (
            "non-numeric multiplier",
            with("multiplier", "abc"),
            "not an integer",
        ),
        ("non-numeric dampen", with("dampen", "soon"), "'dampen'"),
        ("negative dampen", with("dampen", "-1"), "not a duration"),
        ("zero attempts", with("attempts", "0"), "'attempts'"),
        (
            "non-numeric attempts",
            with("attempts", "many"),
            "not an integer",
        ),
        ("zero timeout", with("timeout", "0"), "between 10 ms"),
        ("huge timeout", with("timeout", "1h"), "between 10 ms"),
        ("bad timeout unit", with("timeout", "2x"), "'timeout'"),
        ("reserved attribute name", with("name", "#uname"), "'name'"),
        ("attribute name with space", with("name", "a b"), "'name'"),
        (
            "non-numeric failure_score",
            with("failure_score", "lots"),
            "'failure_score'",
        ),
        (
            "unknown surrender policy",
            with("surrender", "reboot"),
            "none, standby",
        ),
        ("bad debug", with("debug", "maybe"), "'debug'"),
        (
            "relative pidfile",
            with("pidfile", "state/file"),
            "'pidfile'",
        ),
        (
            "too many hosts",
            vec![("host_list", many.as_str())],
            "at most 1000",
        ),
        (
            "control characters",
            h("10.213.0.1 \u{1}\u{7}bad"),
            "neither an IP",
        ),
        (
            "10k of garbage",
            vec![("host_list", garbage.as_str())],
            "host_list",
        ),
    ];
    assert!(cases.len() >= 20);
    for (case, params, reason) in &cases {
        for action in ["validate-all", "start"] {
            let o = run(action, params, &[]);
            check(&format!("{case} ({action})"), &o, 6, reason);
        }
    }
    eprintln!("{} bad-parameter cases checked", cases.len());
}

#[test]
fn invalid_configuration_follows_the_ocf_probe_and_stop_rules() {
    let bad = [("host_list", "bad_host!")];
    // stop of something that cannot have started succeeds.
    check("stop", &run("stop", &bad, &[]), 0, "");
    // A probe of it reports "not running".
    check("probe", &run("monitor", &bad, &[]), 7, "");
    // A recurring monitor reports the configuration error.
    let o = run(
        "monitor",
        &bad,
        &[("OCF_RESKEY_CRM_meta_interval", "10000")],
    );
    check("recurring monitor", &o, 6, "neither an IP address");
    // Unknown actions are 3, not 2.
    check(
        "unknown action",
        &run("migrate_sideways", &[("host_list", "10.213.0.1")], &[]),
        3,
        "not implemented",
    );
    // No action at all.
    let o = Command::new(BIN).env_clear().output().unwrap();
    assert_eq!(o.status.code(), Some(3));
    // A stopped, valid resource: probe 7, stop 0 (nothing is sent for either).
    let ok = [("host_list", "10.213.0.1")];
    check("probe of stopped", &run("monitor", &ok, &[]), 7, "");
    check("stop of stopped", &run("stop", &ok, &[]), 0, "");
}

#[test]
fn arp_target_off_every_local_subnet_is_invalid_for_this_host() {
    let Some(mut lab) = harness::Lab::new("pa_input_arp") else {
        return;
    };
    let ns = lab.ns("lonely");
    let mut c = ns.cmd("env");
    c.args([
        "-i",
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
        "OCF_RESKEY_host_list=10.213.0.1 arp:10.213.99.1",
        BIN,
        "validate-all",
    ]);
    let o = c.output().unwrap();
    check("arp off-subnet", &o, 2, "no up interface");
}
