//! fence_bulwark_ipmi against fence_ipmilan (--cipher=3) on the same OpenIPMI ipmi_sim
//! on 127.0.0.1, alternating A B A B: status, and a verified reboot (off, poll until
//! off, on, poll until on). Prints medians and ratios; never fails on speed (it does
//! check that every run succeeded). `cargo bench --bench ipmi`

#[path = "../bmc/mod.rs"]
mod bmc;
#[path = "common.rs"]
mod common;

use bmc::{which, IpmiSim, AGENT};
use common::{ab, summary, Contender};
use std::io::Write;
use std::process::{Command, Stdio};

fn ours(port: u16, action: &str) {
    let mut c = Command::new(AGENT)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    c.stdin
        .take()
        .unwrap()
        .write_all(
            format!(
                "ip=127.0.0.1\nipport={port}\nusername=admin\npassword=fencepass\ncipher=3\naction={action}\n"
            )
            .as_bytes(),
        )
        .unwrap();
    let s = c.wait().unwrap();
    assert_eq!(s.code(), Some(0), "fence_bulwark_ipmi {action}");
}

fn reference(port: u16, action: &str, extra: &[&str]) {
    let o = Command::new("fence_ipmilan")
        .args([
            "-a",
            "127.0.0.1",
            &format!("--ipport={port}"),
            "-l",
            "admin",
            "-p",
            "fencepass",
            "-P",
            "--cipher=3",
            "-o",
            action,
        ])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "fence_ipmilan {action}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn main() {
    // libtest-style filters and flags (e.g. --bench) are accepted and ignored.
    if which("fence_ipmilan").is_none() {
        println!("SKIP: fence_ipmilan not installed (apt-get install fence-agents)");
        return;
    }
    let Some(sim) = IpmiSim::start() else { return };
    let port = sim.port;
    println!(
        "ipmi_sim pid {} on 127.0.0.1:{port}/udp; A = fence_bulwark_ipmi (stdin, cipher=3), \
         B = fence_ipmilan --cipher=3 (defaults: power_wait 2)",
        sim.pid()
    );
    let n_status: usize = std::env::var("IPMI_BENCH_STATUS_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let n_reboot: usize = std::env::var("IPMI_BENCH_REBOOT_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut results = Vec::new();
    results.push(ab(
        "status",
        n_status,
        Contender::timed("fence_bulwark_ipmi", || ours(port, "status")),
        Contender::timed("fence_ipmilan", || reference(port, "status", &[])),
    ));
    let before = sim.events().len();
    results.push(ab(
        "reboot (verified off + on)",
        n_reboot,
        Contender::timed("fence_bulwark_ipmi", || ours(port, "reboot")),
        Contender::timed("fence_ipmilan", || reference(port, "reboot", &[])),
    ));
    // For fairness: fence_ipmilan without its default 2 s power_wait sleeps.
    results.push(ab(
        "reboot vs fence_ipmilan --power-wait=0",
        n_reboot,
        Contender::timed("fence_bulwark_ipmi", || ours(port, "reboot")),
        Contender::timed("fence_ipmilan pw0", || {
            reference(port, "reboot", &["--power-wait=0"])
        }),
    ));
    let events = sim.events();
    let reboots = &events[before..];
    assert_eq!(
        reboots.len(),
        2 * 4 * (n_reboot + 1),
        "every reboot was off+on"
    );
    assert!(reboots
        .chunks(2)
        .all(|c| c == ["power_off".to_string(), "power_on".to_string()]));
    summary(&results);
    println!("goals: status >= 10x, verified reboot >= 3x (informational; never a failure)");
}
