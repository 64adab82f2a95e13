//! ocf:bulwark:ping-arbiter against device namespaces and a real Pacemaker (attrd).
//!
//! Topology (all inside namespaces this test creates): a switch namespace with a
//! bridge; a Pacemaker node `pa-n1` (10.213.0.11, fd00:213::11); devices that are up
//! (.21 with fd00:213::21, .22), down (.23, link down), dropping ICMP but answering
//! ARP (.24, nftables), dropping ICMP but accepting TCP 8443 (.25, a listener the test
//! opens in that namespace); 40 more live addresses (.100-.139) on one device and 10
//! addresses nobody owns (.200-.209) for the dead-host bound.
mod harness;
mod pcmk;

use harness::{Lab, Ns};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::process::Output;
use std::time::{Duration, Instant};

const AGENT: &str = "/usr/lib/ocf/resource.d/bulwark/ping-arbiter";

/// Opens a listening TCP socket inside `ns` (a thread enters the namespace; the socket
/// stays there). The kernel completes handshakes from the backlog: no accept needed.
fn listen_in(ns: &Ns, addr: SocketAddr) -> TcpListener {
    let path = format!("/run/netns/{}", ns.name);
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path).expect("netns handle");
        // SAFETY: setns on this thread only, with a valid namespace fd.
        let r = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
        TcpListener::bind(addr).expect("bind in namespace")
    })
    .join()
    .expect("listener thread")
}

/// Runs the installed agent inside the node like pacemaker-execd would.
fn agent(node: &pcmk::Node, action: &str, instance: &str, params: &[(&str, &str)]) -> Output {
    let mut c = node.cmd("env");
    c.arg("-i")
        .arg("PATH=/usr/sbin:/usr/bin:/sbin:/bin")
        .arg("OCF_ROOT=/usr/lib/ocf")
        .arg("OCF_RA_VERSION_MAJOR=1")
        .arg("OCF_RA_VERSION_MINOR=1")
        .arg(format!("OCF_RESOURCE_INSTANCE={instance}"))
        .arg("OCF_RESOURCE_TYPE=ping-arbiter")
        .arg("OCF_RESOURCE_PROVIDER=bulwark")
        .arg("OCF_RESKEY_CRM_meta_timeout=60000")
        .arg("OCF_EXIT_REASON_PREFIX=ocf-exit-reason:");
    if action == "monitor" {
        c.arg("OCF_RESKEY_CRM_meta_interval=10000");
    }
    for (k, v) in params {
        c.arg(format!("OCF_RESKEY_{k}={v}"));
    }
    c.arg(AGENT).arg(action);
    c.output().expect("running the agent")
}

fn show(o: &Output) -> String {
    format!(
        "rc={:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

struct Fixture {
    // Field order = drop order: the cluster goes before the namespaces.
    cluster: pcmk::Cluster,
    _listeners: Vec<TcpListener>,
    _lab: Lab,
}

fn fixture(test: &str) -> Option<Fixture> {
    let mut lab = Lab::new(test)?;
    if !pcmk::available() {
        eprintln!("skipped {test}: Pacemaker/Corosync are not installed");
        return None;
    }
    let sw = lab.switch();
    let n1 = lab.ns("n1");
    lab.plug(&sw, &n1, "eth0", None);
    lab.addr(&n1, "eth0", "10.213.0.11/24");
    lab.addr(&n1, "eth0", "fd00:213::11/64");
    let mut dev = |role: &str, addrs: &[&str]| {
        let d = lab.ns(role);
        lab.plug(&sw, &d, "eth0", None);
        for a in addrs {
            lab.addr(&d, "eth0", a);
        }
        d
    };
    let _up = dev("up", &["10.213.0.21/24", "fd00:213::21/64"]);
    let _up2 = dev("up2", &["10.213.0.22/24"]);
    let down = dev("down", &["10.213.0.23/24"]);
    let arp = dev("arponly", &["10.213.0.24/24"]);
    let tcp = dev("tcponly", &["10.213.0.25/24"]);
    let many_addrs: Vec<String> = (100..140).map(|i| format!("10.213.0.{i}/24")).collect();
    let many_refs: Vec<&str> = many_addrs.iter().map(String::as_str).collect();
    let _many = dev("many", &many_refs);
    down.ok(&["ip", "link", "set", "eth0", "down"]);
    for d in [&arp, &tcp] {
        d.ok(&[
            "nft",
            "add table ip bw; add chain ip bw in { type filter hook input priority 0; policy accept; }; add rule ip bw in ip protocol icmp drop",
        ]);
    }
    let listener = listen_in(&tcp, "10.213.0.25:8443".parse().unwrap());
    // Sanity of the set-up itself, with the system's tools.
    assert!(n1.ping("10.213.0.21", "2"), "device .21 must answer ping");
    assert!(!n1.ping("10.213.0.24", "1"), "device .24 must drop ICMP");

    let bin = env!("CARGO_BIN_EXE_ping-arbiter");
    let cluster = pcmk::Cluster::start(&[(&n1, "pa-n1", "10.213.0.11")], &[bin]);
    Some(Fixture {
        cluster,
        _listeners: vec![listener],
        _lab: lab,
    })
}

static SHARED: std::sync::Mutex<Option<Option<Fixture>>> = std::sync::Mutex::new(None);

extern "C" fn teardown_shared() {
    let mut g = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    g.take();
}

/// Runs `f` on the single-node Pacemaker these tests share: built by the first test
/// that needs it, torn down (cluster, then namespaces) when the test process exits.
/// Tests take turns (pcmk::serial).
fn with_node(f: impl FnOnce(&pcmk::Node)) {
    let _serial = pcmk::serial();
    let mut g = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if g.is_none() {
        *g = Some(fixture("pa_shared"));
        // SAFETY: registers a plain extern "C" function; it runs once at exit.
        unsafe { libc::atexit(teardown_shared) };
    }
    if let Some(Some(fx)) = g.as_ref() {
        f(&fx.cluster.nodes[0]);
    }
}

/// start → attribute = expected; monitor → same; stop → attribute gone.
fn check_score(node: &pcmk::Node, attr: &str, hosts: &str, extra: &[(&str, &str)], want: i64) {
    let mut params = vec![
        ("host_list", hosts),
        ("name", attr),
        ("dampen", "0s"),
        ("timeout", "1"),
    ];
    params.extend_from_slice(extra);
    let o = agent(node, "start", attr, &params);
    assert_eq!(o.status.code(), Some(0), "start for {attr}: {}", show(&o));
    assert_eq!(
        node.attr(attr).as_deref(),
        Some(want.to_string().as_str()),
        "{attr} after start (hosts {hosts})"
    );
    let o = agent(node, "monitor", attr, &params);
    assert_eq!(o.status.code(), Some(0), "monitor for {attr}: {}", show(&o));
    assert_eq!(
        node.attr(attr).as_deref(),
        Some(want.to_string().as_str()),
        "{attr} after monitor"
    );
    let o = agent(node, "stop", attr, &params);
    assert_eq!(o.status.code(), Some(0), "stop: {}", show(&o));
    assert_eq!(node.attr(attr), None, "stop deletes {attr}");
    let o = agent(node, "monitor", attr, &params);
    assert_eq!(o.status.code(), Some(7), "monitor after stop: {}", show(&o));
}

#[test]
fn score_is_reachable_times_multiplier_for_every_probe_kind_and_family() {
    with_node(|node| {
        let five = "10.213.0.21 10.213.0.22 10.213.0.23 10.213.0.24 10.213.0.25";

        // ICMP: only the two plain devices answer (.23 is down, .24/.25 drop ICMP).
        check_score(node, "pa-icmp", five, &[("multiplier", "1000")], 2000);
        // ARP: everything with its link up answers, including the ICMP-filtering ones.
        let arp5 =
            "arp:10.213.0.21 arp:10.213.0.22 arp:10.213.0.23 arp:10.213.0.24 arp:10.213.0.25";
        check_score(node, "pa-arp", arp5, &[("multiplier", "10")], 40);
        // TCP as the default probe: only .25 accepts on 8443.
        check_score(
            node,
            "pa-tcp",
            five,
            &[("probe", "tcp:8443"), ("multiplier", "3")],
            3,
        );
        // Per-host probes, IPv4 and IPv6 mixed (ocf:pacemaker:ping exits 6 on this).
        check_score(
            node,
            "pa-mixed",
            "10.213.0.21 fd00:213::21 [fd00:213::99] 10.213.0.23 arp:10.213.0.24 tcp:8443:10.213.0.25 tcp:8443:[fd00:213::21]",
            &[("multiplier", "7")],
            4 * 7,
        );
        // IPv6 only.
        check_score(node, "pa-v6", "fd00:213::21 fd00:213::98", &[], 1);
    });
}

#[test]
fn ten_dead_of_fifty_return_within_attempts_times_timeout_and_nothing_is_forked() {
    with_node(|node| {
        let mut hosts: Vec<String> = (100..140).map(|i| format!("10.213.0.{i}")).collect();
        hosts.extend((200..210).map(|i| format!("10.213.0.{i}")));
        let list = hosts.join(" ");
        let params = [
            ("host_list", list.as_str()),
            ("name", "pa-fifty"),
            ("attempts", "3"),
            ("timeout", "2"),
            ("dampen", "0s"),
            ("debug", "true"),
        ];
        let o = agent(node, "start", "pa-fifty", &params);
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        let t = Instant::now();
        let o = agent(node, "monitor", "pa-fifty", &params);
        let took = t.elapsed();
        eprintln!("monitor of 40 alive + 10 dead (attempts 3, timeout 2) took {took:?}");
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        assert_eq!(node.attr("pa-fifty").as_deref(), Some("40"));
        // The behaviour bound: attempts × timeout plus a small margin (the bench has speed).
        let bound = Duration::from_secs(3 * 2) + Duration::from_millis(1000);
        assert!(took < bound, "monitor took {took:?}, bound {bound:?}");
        // debug=true names every unreachable device.
        let err = String::from_utf8_lossy(&o.stderr);
        for dead in 200..210 {
            assert!(
                err.contains(&format!("10.213.0.{dead} (no reply)")),
                "{err}"
            );
        }

        // No child process per host. A monitor whose score did not change since the last
        // publication runs no program at all (zero-fork); with republish_interval=0 it
        // publishes every time, and then attrd_updater is the only program it runs.
        if std::path::Path::new("/usr/bin/strace").exists() {
            let traced_monitor = |extra: &[(&str, &str)]| -> Vec<String> {
                let trace = tempfile::NamedTempFile::new().unwrap();
                let tpath = trace.path().to_str().unwrap().to_string();
                let mut c = node.cmd("env");
                c.args([
                    "-i",
                    "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                    "OCF_ROOT=/usr/lib/ocf",
                ])
                .arg("OCF_RESOURCE_INSTANCE=pa-fifty")
                .arg("OCF_RESKEY_CRM_meta_interval=10000");
                for (k, v) in params.iter().chain(extra) {
                    c.arg(format!("OCF_RESKEY_{k}={v}"));
                }
                c.args([
                    "strace",
                    "-f",
                    "-qq",
                    "-e",
                    "trace=execve",
                    "-o",
                    &tpath,
                    AGENT,
                    "monitor",
                ]);
                let o = c.output().unwrap();
                assert_eq!(o.status.code(), Some(0), "{}", show(&o));
                let text = std::fs::read_to_string(&tpath).unwrap();
                assert!(
                    !text.contains("ping\"") && !text.contains("fping"),
                    "no ping/fping may run: {text}"
                );
                text.lines()
                    .filter(|l| l.contains("execve(") && l.trim_end().ends_with("= 0"))
                    .map(str::to_string)
                    .collect()
            };
            let steady = traced_monitor(&[]);
            eprintln!("programs executed by a steady monitor: {steady:#?}");
            assert_eq!(steady.len(), 1, "only the agent itself: {steady:#?}");
            let every = traced_monitor(&[("republish_interval", "0")]);
            eprintln!("programs executed with republish_interval=0: {every:#?}");
            assert_eq!(every.len(), 2, "agent + attrd_updater only: {every:#?}");
            assert!(
                every.iter().any(|l| l.contains("attrd_updater")),
                "{every:#?}"
            );
            assert_eq!(node.attr("pa-fifty").as_deref(), Some("40"));
        }
        let o = agent(node, "stop", "pa-fifty", &params);
        assert_eq!(o.status.code(), Some(0));
    });
}

#[test]
fn attribute_shows_in_crm_mon_and_failure_score_fails_the_monitor() {
    with_node(|node| {
        // Through Pacemaker itself, created with pcs as an admin would.
        node.ok(&[
            "pcs",
            "resource",
            "create",
            "pingd",
            "ocf:bulwark:ping-arbiter",
            "host_list=10.213.0.21 10.213.0.22 10.213.0.23 fd00:213::21",
            "multiplier=1000",
            "dampen=1s",
            "timeout=1",
            "op",
            "monitor",
            "interval=2s",
            "clone",
        ]);
        let shown = pcmk::wait_for(Duration::from_secs(30), || {
            let out = node.run(&["crm_mon", "-A1"]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.lines()
                .any(|l| l.contains("pingd") && l.contains("3000"))
                .then_some(text)
        });
        assert!(
            shown.is_some(),
            "pingd=3000 never showed in crm_mon -A1: {}",
            String::from_utf8_lossy(&node.run(&["crm_mon", "-A1"]).stdout)
        );
        assert_eq!(node.attr("pingd").as_deref(), Some("3000"));

        // failure_score: a monitor below it fails with a reason naming what is missing.
        let p = [
            ("host_list", "10.213.0.21 10.213.0.23"),
            ("name", "pa-fs"),
            ("failure_score", "2"),
            ("timeout", "1"),
            ("dampen", "0s"),
        ];
        let o = agent(node, "start", "pa-fs", &p);
        assert_eq!(o.status.code(), Some(1), "{}", show(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("ocf-exit-reason:")
                && err.contains("below failure_score 2")
                && err.contains("10.213.0.23"),
            "{err}"
        );
        // A failed start leaves nothing behind: no attribute, not running.
        assert_eq!(node.attr("pa-fs"), None);
        assert_eq!(agent(node, "monitor", "pa-fs", &p).status.code(), Some(7));

        // Removing the resource stops it everywhere; stop deletes the attribute.
        node.ok(&["pcs", "resource", "delete", "pingd"]);
        let gone = pcmk::wait_for(Duration::from_secs(30), || {
            node.attr("pingd").is_none().then_some(())
        });
        assert!(
            gone.is_some(),
            "pingd still set after the resource was deleted"
        );
    });
}

#[test]
fn ocf_tester_passes_against_a_single_node_pacemaker() {
    with_node(|node| {
        let out = node.run(&[
            "ocf-tester",
            "-n",
            "pa-tester",
            "-o",
            "host_list=10.213.0.21 fd00:213::21 arp:10.213.0.24 tcp:8443:10.213.0.25",
            "-o",
            "multiplier=100",
            "-o",
            "name=pa-tester",
            AGENT,
        ]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("ocf-tester inside the single-node Pacemaker:\n{text}");
        assert!(out.status.success(), "ocf-tester failed:\n{text}");
        assert!(text.contains("passed all tests"), "{text}");
        // ocf-tester ends with a stop: the attribute is gone again.
        assert_eq!(node.attr("pa-tester"), None);
    });
}

/// Values of `name` per node, as attrd on `node` sees them.
fn all_values(node: &pcmk::Node, name: &str) -> Vec<(String, String)> {
    let out = node.run(&["attrd_updater", "-Q", "-A", "-n", name]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let get = |k: &str| {
                let pat = format!("{k}=\"");
                let s = l.find(&pat)? + pat.len();
                let e = l[s..].find('"')?;
                Some(l[s..s + e].to_string())
            };
            Some((get("host")?, get("value")?))
        })
        .collect()
}

#[test]
fn a_node_that_loses_its_devices_surrenders_into_standby_until_an_admin_lifts_it() {
    let _serial = pcmk::serial();
    let Some(mut lab) = Lab::new("pa_surrender") else {
        return;
    };
    if !pcmk::available() {
        eprintln!("skipped: Pacemaker/Corosync are not installed");
        return;
    }
    // The cluster ring and the LAN with the devices are separate segments, so a node
    // can lose the devices and still talk to its peer.
    let ring = lab.switch();
    let lan = lab.ns("lansw");
    lan.ok(&[
        "ip",
        "link",
        "add",
        "br0",
        "type",
        "bridge",
        "stp_state",
        "0",
    ]);
    lan.ok(&["ip", "link", "set", "br0", "up"]);
    lan.ok(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
    let a = lab.ns("a");
    let b = lab.ns("b");
    for (n, i) in [(&a, 11), (&b, 12)] {
        lab.plug(&ring, n, "eth0", None);
        lab.addr(n, "eth0", &format!("10.213.1.{i}/24"));
        lab.plug(&lan, n, "eth1", None);
        lab.addr(n, "eth1", &format!("10.213.0.{i}/24"));
    }
    for i in 21..24 {
        let d = lab.ns(&format!("dev{i}"));
        lab.plug(&lan, &d, "eth0", None);
        lab.addr(&d, "eth0", &format!("10.213.0.{i}/24"));
    }
    let bin = env!("CARGO_BIN_EXE_ping-arbiter");
    let cluster = pcmk::Cluster::start(
        &[(&a, "pa-a", "10.213.1.11"), (&b, "pa-b", "10.213.1.12")],
        &[bin],
    );
    let na = cluster.node("pa-a");
    na.ok(&[
        "pcs",
        "resource",
        "create",
        "pingd",
        "ocf:bulwark:ping-arbiter",
        "host_list=10.213.0.21 10.213.0.22 10.213.0.23",
        "multiplier=1000",
        "dampen=2s",
        "timeout=1",
        "surrender=standby",
        "op",
        "monitor",
        "interval=2s",
        "clone",
    ]);
    let both = |v: &str| {
        let mut got = all_values(na, "pingd");
        got.sort();
        got == vec![
            ("pa-a".to_string(), v.to_string()),
            ("pa-b".to_string(), v.to_string()),
        ]
    };
    assert!(
        pcmk::wait_for(Duration::from_secs(40), || both("3000").then_some(())).is_some(),
        "both nodes should publish 3000: {:?}",
        all_values(na, "pingd")
    );
    // Equal scores: nobody surrenders.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(na.standby_of("pa-a"), None);
    assert_eq!(na.standby_of("pa-b"), None);

    // pa-a loses the LAN; pa-b keeps it.
    a.ok(&["ip", "link", "set", "eth1", "down"]);
    let t = Instant::now();
    let standby = pcmk::wait_for(Duration::from_secs(60), || {
        (na.standby_of("pa-a").as_deref() == Some("on")).then_some(())
    });
    assert!(
        standby.is_some(),
        "pa-a never went into standby: {:?}\n{}",
        all_values(na, "pingd"),
        na.pacemaker_log()
            .lines()
            .filter(|l| l.contains("arbitration") || l.contains("surrender"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!(
        "pa-a surrendered {:?} after losing its devices",
        t.elapsed()
    );
    assert_eq!(
        na.standby_of("pa-b"),
        None,
        "the node that sees the devices stays"
    );
    let log = na.pacemaker_log();
    let line = log
        .lines()
        .find(|l| l.contains("surrendering"))
        .unwrap_or_else(|| panic!("no surrender line in pa-a's log"));
    for dev in ["10.213.0.21", "10.213.0.22", "10.213.0.23"] {
        assert!(line.contains(dev), "the log names {dev}: {line}");
    }
    assert!(line.contains("pcs node unstandby pa-a"), "{line}");

    // The devices come back; the standby stays until an admin lifts it.
    a.ok(&["ip", "link", "set", "eth1", "up"]);
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(
        na.standby_of("pa-a").as_deref(),
        Some("on"),
        "standby is for good"
    );
    na.ok(&["pcs", "node", "unstandby", "pa-a"]);
    assert_ne!(na.standby_of("pa-a").as_deref(), Some("on"));
    assert!(
        pcmk::wait_for(Duration::from_secs(40), || both("3000").then_some(())).is_some(),
        "pa-a should run the clone and publish 3000 again: {:?}",
        all_values(na, "pingd")
    );
    std::thread::sleep(Duration::from_secs(6));
    assert_ne!(
        na.standby_of("pa-a").as_deref(),
        Some("on"),
        "no new surrender with equal scores"
    );
    drop(cluster);
}
