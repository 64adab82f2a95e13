//! fence_bulwark_redfish against fence_redfish on the same sushy-tools emulator (fake
//! driver, HTTPS on 127.0.0.1, started here), alternating A B A B: status with discovery
//! (service root -> Systems -> the system) and status with systems_uri (one GET).
//! Both skip certificate checks (ssl_insecure) so they do the same work. Prints medians
//! and ratios; never fails on speed (it does check every run's answer).
//! `cargo bench --bench redfish` (REDFISH_BENCH_N samples each, default 20).
//! Reboot is not compared: the emulator applies each power change after a random
//! 1-11 s, which would be all that is measured.

#[path = "common.rs"]
mod common;
#[path = "../redfish_lab/mod.rs"]
mod lab;

use common::{ab, summary, Contender};
use lab::{which, SushyLab, AGENT, SYSTEM1};
use std::io::Write;
use std::process::{Command, Stdio};

fn ours(port: u16, systems_uri: Option<&str>) {
    let mut c = Command::new(AGENT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let extra = systems_uri
        .map(|s| format!("systems_uri={s}\n"))
        .unwrap_or_default();
    c.stdin
        .take()
        .unwrap()
        .write_all(
            format!(
                "ip=127.0.0.1\nipport={port}\nusername=admin\npassword=fencepass\nssl_insecure=1\n{extra}action=status\n"
            )
            .as_bytes(),
        )
        .unwrap();
    let o = c.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "fence_bulwark_redfish status");
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "Status: ON");
}

fn reference(port: u16, systems_uri: Option<&str>) {
    let mut args = vec![
        "-a".to_string(),
        "127.0.0.1".into(),
        format!("--ipport={port}"),
        "-l".into(),
        "admin".into(),
        "-p".into(),
        "fencepass".into(),
        "--ssl-insecure".into(),
        "-o".into(),
        "status".into(),
    ];
    if let Some(s) = systems_uri {
        args.push(format!("--systems-uri={s}"));
    }
    let o = Command::new("fence_redfish")
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "fence_redfish status: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "Status: ON");
}

fn main() {
    // libtest-style filters and flags (e.g. --bench) are accepted and ignored.
    if which("fence_redfish").is_none() {
        println!("SKIP: fence_redfish not installed (apt-get install fence-agents)");
        return;
    }
    let Some(lab) = SushyLab::start() else { return };
    let port = lab.port;
    let n: usize = std::env::var("REDFISH_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    println!(
        "sushy-emulator {} (fake driver, bcrypt cost 4) pid {} on https://127.0.0.1:{port}; \
         A = fence_bulwark_redfish (stdin), B = fence_redfish (options); both ssl_insecure",
        lab::SUSHY_VERSION,
        lab.pid()
    );
    let results = vec![
        ab(
            "status (discovery: 3 GETs)",
            n,
            Contender::timed("fence_bulwark_redfish", || ours(port, None)),
            Contender::timed("fence_redfish", || reference(port, None)),
        ),
        ab(
            "status --systems-uri (1 GET)",
            n,
            Contender::timed("fence_bulwark_redfish", || ours(port, Some(SYSTEM1))),
            Contender::timed("fence_redfish", || reference(port, Some(SYSTEM1))),
        ),
    ];
    assert!(lab.notes().is_empty(), "status changed no power");
    summary(&results);
}
