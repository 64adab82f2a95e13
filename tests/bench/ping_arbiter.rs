//! ocf:bulwark:ping-arbiter against ocf:pacemaker:ping (fping mode and plain-ping
//! mode), side by side in one run, on the same single-node Pacemaker (real attrd) and
//! the same device namespaces:
//! - 1 host alive (10.213.0.21);
//! - 50 hosts of which 10 are dead (40 addresses on one device, 10 nobody owns),
//!   attempts=3, timeout=2.
//!
//! Each sample is one `monitor` of an already started resource, forked straight into
//! the node's namespaces (setns between fork and exec; no nsenter in between).
//! The plain-ping 50-host case takes about 112 s per run, so it runs exactly once
//! (no warm-up); everything else alternates A B A B after one warm-up each.
//!
//! Run: `cargo bench --bench ping_arbiter` as root. `BULWARK_BENCH_SKIP_SLOW=1` skips
//! the 112 s case.
mod common;
#[path = "../harness/mod.rs"]
mod harness;
#[path = "../pcmk/mod.rs"]
mod pcmk;

use common::{ab, ms, summary, AbResult, Contender};
use std::time::{Duration, Instant};

const OURS: &str = "/usr/lib/ocf/resource.d/bulwark/ping-arbiter";
const PING: &str = "/usr/lib/ocf/resource.d/pacemaker/ping";

/// Runs one action of an agent in the node; panics unless it returns `want`.
fn act(
    node: &pcmk::Node,
    agent: &str,
    action: &str,
    inst: &str,
    params: &[(&str, &str)],
    want: i32,
) -> Duration {
    act_path(node, PATH, agent, action, inst, params, want)
}

const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// Like `act`, with the given PATH (to put a stand-in attrd_updater first).
fn act_path(
    node: &pcmk::Node,
    path: &str,
    agent: &str,
    action: &str,
    inst: &str,
    params: &[(&str, &str)],
    want: i32,
) -> Duration {
    let mut c = node.direct(agent);
    c.env_clear()
        .env("PATH", path)
        .env("OCF_ROOT", "/usr/lib/ocf")
        .env("OCF_RESOURCE_INSTANCE", inst)
        .env("OCF_RESKEY_CRM_meta_timeout", "120000")
        .env("OCF_RESKEY_CRM_meta_interval", "10000");
    for (k, v) in params {
        c.env(format!("OCF_RESKEY_{k}"), v);
    }
    c.arg(action);
    let t = Instant::now();
    let o = c.output().expect("running an agent");
    let took = t.elapsed();
    assert_eq!(
        o.status.code(),
        Some(want),
        "{agent} {action}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    took
}

/// Runs each contender exactly once (for the case too slow to repeat).
fn once(case: &str, mut ours: Contender, mut reference: Contender) -> AbResult {
    let a = (ours.run)();
    let b = (reference.run)();
    println!("== {case} (n=1, run once: too slow to repeat) ==");
    println!("  A {:<28} {:>11.3} ms", ours.name, ms(a));
    println!("  B {:<28} {:>11.3} ms", reference.name, ms(b));
    let r = AbResult {
        case: case.to_string(),
        ours: ours.name.to_string(),
        reference: reference.name.to_string(),
        ours_median: a,
        reference_median: b,
    };
    println!("  ratio B/A = {:.1}x", r.speedup());
    r
}

fn main() {
    if !common::is_root() {
        println!("skipped: the ping-arbiter bench needs root (namespaces, raw sockets)");
        return;
    }
    if !pcmk::available() || !std::path::Path::new(PING).exists() {
        println!("skipped: Pacemaker or ocf:pacemaker:ping is not installed");
        return;
    }
    let mut lab = harness::Lab::new("bench_ping").unwrap();
    let sw = lab.switch();
    let n1 = lab.ns("n1");
    lab.plug(&sw, &n1, "eth0", None);
    lab.addr(&n1, "eth0", "10.213.0.11/24");
    let dev = lab.ns("dev");
    lab.plug(&sw, &dev, "eth0", None);
    lab.addr(&dev, "eth0", "10.213.0.21/24");
    for i in 100..140 {
        lab.addr(&dev, "eth0", &format!("10.213.0.{i}/24"));
    }
    let bin = env!("CARGO_BIN_EXE_ping-arbiter");
    let cluster = pcmk::Cluster::start(&[(&n1, "bench-n1", "10.213.0.11")], &[bin]);
    let node = &cluster.nodes[0];

    // What starting a trivial program in the node costs (in every sample of both sides).
    let mut base: Vec<Duration> = (0..10)
        .map(|_| {
            let t = Instant::now();
            node.direct("/bin/true").status().unwrap();
            t.elapsed()
        })
        .collect();
    println!(
        "fork+setns+exec of /bin/true in the node: median {:.3} ms\n",
        ms(common::median(&mut base))
    );

    // What one attrd_updater call costs (inside every monitor of both sides).
    let mut attrd: Vec<Duration> = (0..10)
        .map(|_| {
            let t = Instant::now();
            node.ok(&[
                "attrd_updater",
                "-n",
                "bench-probe",
                "-B",
                "1",
                "-d",
                "5000ms",
            ]);
            t.elapsed()
        })
        .collect();
    println!(
        "one attrd_updater -B call: median {:.3} ms\n",
        ms(common::median(&mut attrd))
    );

    let mut results = Vec::new();

    // ---- 1 host alive
    let one = [("host_list", "10.213.0.21"), ("dampen", "5s")];
    let ours_one: Vec<(&str, &str)> = [&one[..], &[("name", "b-one")]].concat();
    let fping_one: Vec<(&str, &str)> =
        [&one[..], &[("use_fping", "1"), ("name", "p-one")]].concat();
    let plain_one: Vec<(&str, &str)> =
        [&one[..], &[("use_fping", "0"), ("name", "q-one")]].concat();
    act(node, OURS, "start", "b-one", &ours_one, 0);
    act(node, PING, "start", "p-one", &fping_one, 0);
    act(node, PING, "start", "q-one", &plain_one, 0);
    results.push(ab(
        "1 host alive vs fping mode",
        20,
        Contender::new("ping-arbiter", || {
            act(node, OURS, "monitor", "b-one", &ours_one, 0)
        }),
        Contender::new("ocf:pacemaker:ping (fping)", || {
            act(node, PING, "monitor", "p-one", &fping_one, 0)
        }),
    ));
    results.push(ab(
        "1 host alive vs ping mode",
        3,
        Contender::new("ping-arbiter", || {
            act(node, OURS, "monitor", "b-one", &ours_one, 0)
        }),
        Contender::new("ocf:pacemaker:ping (ping)", || {
            act(node, PING, "monitor", "q-one", &plain_one, 0)
        }),
    ));

    // Same case with a stand-in attrd_updater that only exits 0 (how baselines.md
    // measured ocf:pacemaker:ping: 29 ms median), to compare with that figure.
    let stub = tempfile::Builder::new()
        .prefix("bw-stub-")
        .tempdir()
        .unwrap();
    std::fs::write(stub.path().join("attrd_updater"), "#!/bin/sh\nexit 0\n").unwrap();
    for p in [stub.path(), &stub.path().join("attrd_updater")] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let stub_path = format!("{}:{PATH}", stub.path().display());
    let sp = stub_path.as_str();
    results.push(ab(
        "1 host alive vs fping mode, stand-in attrd",
        20,
        Contender::new("ping-arbiter", || {
            act_path(node, sp, OURS, "monitor", "b-one", &ours_one, 0)
        }),
        Contender::new("ocf:pacemaker:ping (fping)", || {
            act_path(node, sp, PING, "monitor", "p-one", &fping_one, 0)
        }),
    ));

    // ---- 50 hosts, 10 dead, attempts 3, timeout 2
    let mut hosts: Vec<String> = (100..140).map(|i| format!("10.213.0.{i}")).collect();
    hosts.extend((200..210).map(|i| format!("10.213.0.{i}")));
    let list = hosts.join(" ");
    let fifty = [
        ("host_list", list.as_str()),
        ("attempts", "3"),
        ("timeout", "2"),
        ("dampen", "5s"),
    ];
    let ours_50: Vec<(&str, &str)> = [&fifty[..], &[("name", "b-fifty")]].concat();
    let fping_50: Vec<(&str, &str)> =
        [&fifty[..], &[("use_fping", "1"), ("name", "p-fifty")]].concat();
    let plain_50: Vec<(&str, &str)> =
        [&fifty[..], &[("use_fping", "0"), ("name", "q-fifty")]].concat();
    act(node, OURS, "start", "b-fifty", &ours_50, 0);
    act(node, PING, "start", "p-fifty", &fping_50, 0);
    results.push(ab(
        "50 hosts, 10 dead vs fping mode",
        5,
        Contender::new("ping-arbiter", || {
            act(node, OURS, "monitor", "b-fifty", &ours_50, 0)
        }),
        Contender::new("ocf:pacemaker:ping (fping)", || {
            act(node, PING, "monitor", "p-fifty", &fping_50, 0)
        }),
    ));
    for (who, attr) in [
        ("ping-arbiter", "b-fifty"),
        ("ocf:pacemaker:ping (fping)", "p-fifty"),
    ] {
        println!("  score published by {who}: {:?}", node.attr(attr));
    }
    if std::env::var("BULWARK_BENCH_SKIP_SLOW").is_err() {
        act(node, PING, "start", "q-fifty", &plain_50, 0);
        results.push(once(
            "50 hosts, 10 dead vs ping mode",
            Contender::new("ping-arbiter", || {
                act(node, OURS, "monitor", "b-fifty", &ours_50, 0)
            }),
            Contender::new("ocf:pacemaker:ping (ping)", || {
                act(node, PING, "monitor", "q-fifty", &plain_50, 0)
            }),
        ));
    } else {
        println!("skipped the plain-ping 50-host case (BULWARK_BENCH_SKIP_SLOW)");
    }
    summary(&results);
    println!(
        "\ngoals: 1 host >= 10x faster than fping mode; 50 hosts/10 dead <= timeout + 50 ms = 2050 ms"
    );
    drop(cluster);
    drop(lab);
}
