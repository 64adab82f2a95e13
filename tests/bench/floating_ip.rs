//! `cargo bench --bench floating-ip`: ocf:bulwark:floating-ip against
//! ocf:heartbeat:IPaddr2 on the same address in the same namespace, alternating A B A B:
//! monitor (address up), monitor (address down), and start+stop. Prints medians and
//! ratios; never fails on speed.
//!
//! The bench process itself enters the node namespace (setns), so neither contender
//! pays for `ip netns exec`; it returns to its own namespace before the lab is torn down.
mod common;
#[path = "../harness/mod.rs"]
mod harness;

use common::*;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const OURS: &str = env!("CARGO_BIN_EXE_floating-ip");
const IPADDR2: &str = "/usr/lib/ocf/resource.d/heartbeat/IPaddr2";
const VIP: &str = "10.213.0.50";

fn setns(f: &File) {
    // SAFETY: setns on a namespace file we hold open; the bench is single-threaded.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

/// Runs `agent action` with the resource's parameters; returns the exit code.
fn run(agent: &str, action: &str) -> i32 {
    Command::new(agent)
        .arg(action)
        .env("OCF_ROOT", "/usr/lib/ocf")
        .env("OCF_RESOURCE_INSTANCE", "vip")
        .env("OCF_RESKEY_ip", VIP)
        .env("OCF_RESKEY_cidr_netmask", "24")
        .env("OCF_RESKEY_nic", "eth0")
        .stdin(Stdio::null())
        // IPaddr2 leaves send_arp running in the background with its stdout: waiting
        // for EOF would measure send_arp's 1 s pacing, not the agent.
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.code().unwrap_or(-1))
        .unwrap_or(-1)
}

/// A contender timing `action`, complaining (once) when the exit code is unexpected.
fn timed<'a>(name: &'a str, agent: &'a str, action: &'a str, want: i32) -> Contender<'a> {
    let mut warned = false;
    Contender::timed(name, move || {
        let rc = run(agent, action);
        if rc != want && !warned {
            eprintln!("warning: {name} {action} returned {rc}, expected {want}");
            warned = true;
        }
    })
}

/// start then stop, both timed.
fn start_stop<'a>(name: &'a str, agent: &'a str) -> Contender<'a> {
    let mut warned = false;
    Contender::new(name, move || {
        let t = Instant::now();
        let a = run(agent, "start");
        let b = run(agent, "stop");
        let d = t.elapsed();
        if (a, b) != (0, 0) && !warned {
            eprintln!("warning: {name} start/stop returned {a}/{b}");
            warned = true;
        }
        d
    })
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if !is_root() {
        println!("floating-ip bench skipped: needs root (network namespaces)");
        return;
    }
    if !std::path::Path::new(IPADDR2).exists() {
        println!("floating-ip bench skipped: {IPADDR2} not installed (resource-agents)");
        return;
    }
    let Some(mut lab) = harness::Lab::new("bench_floating_ip") else {
        return;
    };
    let (_sw, hosts) = lab.star(&[
        ("node", &["10.213.0.1/24"]),
        ("client", &["10.213.0.100/24"]),
    ]);
    let node = hosts[0].clone();
    let home = File::open("/proc/self/ns/net").expect("own netns");
    let there = File::open(format!("/run/netns/{}", node.name)).expect("node netns");
    setns(&there);

    println!(
        "floating-ip vs IPaddr2, ip={VIP} cidr_netmask=24 nic=eth0, node namespace {}",
        node.name
    );
    let mut results = Vec::new();

    assert_eq!(run(OURS, "start"), 0, "floating-ip start");
    results.push(ab(
        "monitor, address up (rc 0)",
        40,
        timed("floating-ip monitor", OURS, "monitor", 0),
        timed("IPaddr2 monitor", IPADDR2, "monitor", 0),
    ));
    assert_eq!(run(OURS, "stop"), 0, "floating-ip stop");
    results.push(ab(
        "monitor, address down (rc 7)",
        40,
        timed("floating-ip monitor", OURS, "monitor", 7),
        timed("IPaddr2 monitor", IPADDR2, "monitor", 7),
    ));
    results.push(ab(
        "start + stop",
        15,
        start_stop("floating-ip start+stop", OURS),
        start_stop("IPaddr2 start+stop", IPADDR2),
    ));
    summary(&results);
    println!("(goal: monitor >= 30x faster than IPaddr2)");

    // Let background announcers finish before the teardown kills what is left.
    std::thread::sleep(Duration::from_millis(300));
    setns(&home);
    drop(lab);
}
