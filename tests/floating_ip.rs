//! ocf:bulwark:floating-ip against real peers, inside namespaces the tests create:
//! ocf-tester (IPv4 and IPv6), a client namespace that must follow the address, bad
//! input, arbitrary input, and strace proving that no program is started.
mod harness;
use harness::*;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const AGENT: &str = env!("CARGO_BIN_EXE_floating-ip");
const OCF_TESTER: &str = "/usr/sbin/ocf-tester";
const NODE4: &str = "10.213.0.1/24";
const NODE6: &str = "fd00:213::1/64";
const CLIENT4: &str = "10.213.0.100/24";
const CLIENT6: &str = "fd00:213::100/64";
const VIP4: &str = "10.213.0.50";
const VIP6: &str = "fd00:213::50";
const FAKE_MAC: &str = "02:de:ad:be:ef:01";

/// A switch with a node and a client, both dual-stack on eth0.
fn lab(test: &str) -> Option<(Lab, Ns, Ns)> {
    let mut lab = Lab::new(test)?;
    let (_sw, hosts) = lab.star(&[("node", &[NODE4, NODE6]), ("client", &[CLIENT4, CLIENT6])]);
    let (node, client) = (hosts[0].clone(), hosts[1].clone());
    Some((lab, node, client))
}

/// How one invocation is made.
#[derive(Clone, Copy, Default)]
struct Call<'a> {
    /// `OCF_RESKEY_CRM_meta_interval`; `None` leaves it unset (= probe for monitor).
    interval: Option<&'a str>,
    /// Run as nobody.
    nobody: bool,
}

fn agent_cmd(ns: Option<&Ns>, action: &str, params: &[(&str, &str)], call: Call) -> Command {
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    wrapped(
        ns,
        if call.nobody { &nobody } else { &[] },
        action,
        params,
        call,
    )
}

/// `[ip netns exec <ns>] [wrapper...] floating-ip <action>` with the OCF environment.
fn wrapped(
    ns: Option<&Ns>,
    wrapper: &[&str],
    action: &str,
    params: &[(&str, &str)],
    call: Call,
) -> Command {
    let mut argv: Vec<&str> = wrapper.to_vec();
    argv.push(AGENT);
    let mut c = match ns {
        Some(ns) => ns.cmd(argv[0]),
        None => Command::new(argv[0]),
    };
    c.args(&argv[1..]).arg(action);
    for (k, _) in std::env::vars() {
        if k.starts_with("OCF_") || k.starts_with("HA_") {
            c.env_remove(k);
        }
    }
    c.env("OCF_ROOT", "/usr/lib/ocf")
        .env("OCF_RESOURCE_INSTANCE", "vip");
    if let Some(i) = call.interval {
        c.env("OCF_RESKEY_CRM_meta_interval", i);
    }
    for (k, v) in params {
        c.env(format!("OCF_RESKEY_{k}"), v);
    }
    c
}

fn agent(ns: &Ns, action: &str, params: &[(&str, &str)]) -> Output {
    agent_cmd(Some(ns), action, params, Call::default())
        .output()
        .expect("run floating-ip")
}

fn rc(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn expect_rc(o: &Output, want: i32, what: &str) {
    assert_eq!(rc(o), want, "{what}: {}", text(o));
}

/// True when `ip` is configured on eth0 of `ns`.
fn has_addr(ns: &Ns, ip: &str) -> bool {
    let out = ns.ok(&["ip", "-o", "addr", "show", "dev", "eth0"]);
    out.split_whitespace()
        .any(|w| w.split('/').next() == Some(ip))
}

/// Polls until `f` is true or `limit` passes; returns the last value of `f`.
fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    loop {
        if f() {
            return true;
        }
        if t.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn ocf_tester(ip: &str, cidr: &str, extra: &[&str]) {
    let Some((_lab, node, _client)) = lab("ocf_tester") else {
        return;
    };
    let ip_opt = format!("ip={ip}");
    let mask_opt = format!("cidr_netmask={cidr}");
    let mut args = vec![
        OCF_TESTER, "-n", "vip", "-o", &ip_opt, "-o", &mask_opt, "-o", "nic=eth0",
    ];
    for e in extra {
        args.extend(["-o", e]);
    }
    args.push(AGENT);
    let out = node.run(&args);
    let t = text(&out);
    println!("{}", t);
    assert!(out.status.success(), "ocf-tester failed: {t}");
    assert!(t.contains("passed all tests"), "{t}");
    assert!(!has_addr(&node, ip), "address left behind");
}

#[test]
fn ocf_tester_passes_ipv4() {
    ocf_tester(VIP4, "24", &[]);
}

#[test]
fn ocf_tester_passes_ipv6() {
    ocf_tester(VIP6, "64", &[]);
}

#[test]
fn ocf_tester_passes_ipv6_with_nodad() {
    ocf_tester(VIP6, "64", &["nodad=true"]);
}

/// Start on the node: the client's stale entry for the VIP (pointing at a MAC that is
/// gone) now carries the node's MAC and the client reaches the VIP. Stop: gone, 7.
fn client_follows(vip: &str) {
    let Some((_lab, node, client)) = lab("client_follows") else {
        return;
    };
    let params = [
        ("ip", vip),
        ("cidr_netmask", if vip.contains(':') { "64" } else { "24" }),
        ("nic", "eth0"),
    ];
    client.ok(&[
        "ip", "neigh", "replace", vip, "lladdr", FAKE_MAC, "dev", "eth0", "nud", "stale",
    ]);
    assert_eq!(client.neigh_mac("eth0", vip).as_deref(), Some(FAKE_MAC));
    let node_mac = node.mac("eth0");

    expect_rc(&agent(&node, "monitor", &params), 7, "monitor before start");
    expect_rc(&agent(&node, "start", &params), 0, "start");
    // The first announcement is on the wire when start returns; the client's kernel
    // handles it asynchronously, so allow it a moment.
    assert!(
        eventually(Duration::from_secs(1), || client
            .neigh_mac("eth0", vip)
            .as_deref()
            == Some(node_mac.as_str())),
        "client's entry for {vip} is {:?}, not the node's {node_mac}",
        client.neigh_mac("eth0", vip)
    );
    assert!(client.ping(vip, "2"), "client cannot reach {vip}");
    expect_rc(&agent(&node, "monitor", &params), 0, "monitor after start");

    expect_rc(&agent(&node, "stop", &params), 0, "stop");
    assert!(!has_addr(&node, vip), "{vip} still on the node after stop");
    expect_rc(&agent(&node, "monitor", &params), 7, "monitor after stop");
    expect_rc(&agent(&node, "stop", &params), 0, "second stop");
}

#[test]
fn client_follows_start_and_stop_ipv4() {
    client_follows(VIP4);
}

#[test]
fn client_follows_start_and_stop_ipv6() {
    client_follows(VIP6);
}

/// resource-agents #2188: an altname as nic, or a link that is down, must not give a
/// false "not installed" (5): start works and the address serves.
#[test]
fn altname_and_down_link_start_fine() {
    let Some((_lab, node, client)) = lab("altname_down") else {
        return;
    };
    node.ok(&[
        "ip", "link", "property", "add", "dev", "eth0", "altname", "vipnet0",
    ]);
    let p = [("ip", VIP4), ("nic", "vipnet0")];
    expect_rc(
        &agent(&node, "validate-all", &p),
        0,
        "validate-all via altname",
    );
    expect_rc(&agent(&node, "start", &p), 0, "start via altname");
    expect_rc(&agent(&node, "monitor", &p), 0, "monitor via altname");
    assert!(has_addr(&node, VIP4));
    expect_rc(&agent(&node, "stop", &p), 0, "stop via altname");
    assert!(!has_addr(&node, VIP4));

    // Down link: its connected routes are gone; the prefix comes from its address.
    node.ok(&["ip", "link", "set", "eth0", "down"]);
    let p = [("ip", VIP4)];
    expect_rc(
        &agent(&node, "validate-all", &p),
        0,
        "validate-all, link down, no nic",
    );
    expect_rc(
        &agent(&node, "monitor", &[("ip", VIP4), ("nic", "eth0")]),
        7,
        "probe, link down",
    );
    expect_rc(&agent(&node, "start", &p), 0, "start, link down, no nic");
    let shown = node.ok(&["ip", "-o", "addr", "show", "dev", "eth0"]);
    assert!(shown.contains("10.213.0.50/24"), "{shown}");
    assert!(eventually(Duration::from_secs(3), || client.ping(VIP4, "1")));
    expect_rc(&agent(&node, "stop", &p), 0, "stop");
}

/// Without nic and cidr_netmask, the connected route decides (IPaddr2's findif).
#[test]
fn findif_picks_interface_and_prefix_from_the_route() {
    let Some((_lab, node, _client)) = lab("findif") else {
        return;
    };
    for (vip, want) in [(VIP4, "10.213.0.50/24"), (VIP6, "fd00:213::50/64")] {
        let p = [("ip", vip), ("nodad", "1")];
        expect_rc(&agent(&node, "start", &p), 0, "start");
        let shown = node.ok(&["ip", "-o", "addr", "show", "dev", "eth0"]);
        assert!(shown.contains(want), "{shown}");
        expect_rc(&agent(&node, "monitor", &p), 0, "monitor");
        expect_rc(&agent(&node, "stop", &p), 0, "stop");
        assert!(!has_addr(&node, vip));
    }
    // Only the address itself covers it (configured by hand): start finds it and is
    // idempotent rather than failing.
    node.ok(&["ip", "addr", "add", "10.213.9.50/24", "dev", "eth0"]);
    let p = [("ip", "10.213.9.50"), ("nic", "eth0")];
    expect_rc(
        &agent(&node, "start", &p),
        0,
        "start, only the address covers it",
    );
    expect_rc(&agent(&node, "stop", &p), 0, "stop");
    assert!(!has_addr(&node, "10.213.9.50"));
    // Nothing covers this one: 2 on this host, 7 as a probe, 0 for stop.
    let p = [("ip", "192.0.2.77")];
    let o = agent(&node, "start", &p);
    expect_rc(&o, 2, "start, nothing covers ip");
    assert!(text(&o).contains("no interface has a route or address covering"));
}

/// IPv6 DAD finds a duplicate: start fails clearly and leaves nothing behind.
#[test]
fn ipv6_duplicate_fails_start_and_is_removed() {
    let Some((lab, node, client)) = lab("dad") else {
        return;
    };
    lab.addr(&client, "eth0", "fd00:213::77/64");
    let p = [
        ("ip", "fd00:213::77"),
        ("cidr_netmask", "64"),
        ("nic", "eth0"),
    ];
    let o = agent(&node, "start", &p);
    expect_rc(&o, 1, "start on a duplicate");
    let t = text(&o);
    assert!(
        t.contains("ocf-exit-reason:duplicate address detected"),
        "{t}"
    );
    assert!(
        !has_addr(&node, "fd00:213::77"),
        "duplicate left configured"
    );
    expect_rc(
        &agent(&node, "monitor", &p),
        7,
        "monitor after failed start",
    );
    // nodad skips the check, as asked.
    let p = [
        ("ip", "fd00:213::77"),
        ("cidr_netmask", "64"),
        ("nic", "eth0"),
        ("nodad", "yes"),
    ];
    expect_rc(&agent(&node, "start", &p), 0, "start with nodad");
    expect_rc(&agent(&node, "stop", &p), 0, "stop");
}

/// Options reach the kernel: dotted netmask, label, broadcast, noprefixroute,
/// preferred_lft, nodad.
#[test]
fn options_reach_the_kernel() {
    let Some((_lab, node, _client)) = lab("options") else {
        return;
    };
    let p = [
        ("ip", "10.213.0.60"),
        // IPaddr2 takes a dotted netmask too.
        ("cidr_netmask", "255.255.255.0"),
        ("nic", "eth0"),
        ("iflabel", "vip"),
        ("broadcast", "10.213.0.254"),
        ("noprefixroute", "true"),
    ];
    expect_rc(&agent(&node, "start", &p), 0, "start");
    let shown = node.ok(&["ip", "-o", "-4", "addr", "show", "dev", "eth0"]);
    let line = shown
        .lines()
        .find(|l| l.contains("10.213.0.60/24"))
        .unwrap();
    assert!(line.contains("brd 10.213.0.254"), "{line}");
    assert!(line.contains("eth0:vip"), "{line}");
    assert!(line.contains("noprefixroute"), "{line}");
    expect_rc(&agent(&node, "stop", &p), 0, "stop");

    let p = [
        ("ip", VIP6),
        ("cidr_netmask", "64"),
        ("nic", "eth0"),
        ("preferred_lft", "0"),
        ("nodad", "true"),
    ];
    expect_rc(&agent(&node, "start", &p), 0, "start");
    let shown = node.ok(&["ip", "-o", "-6", "addr", "show", "dev", "eth0"]);
    let line = shown
        .lines()
        .find(|l| l.contains("fd00:213::50/64"))
        .unwrap();
    assert!(line.contains("preferred_lft 0sec"), "{line}");
    assert!(line.contains("nodad"), "{line}");
    expect_rc(&agent(&node, "stop", &p), 0, "stop");
}

/// The background announcer sends the rest of the burst and stops when the address
/// is removed: after stop, the node transmits nothing more.
#[test]
fn background_announcements_stop_with_the_address() {
    let Some((_lab, node, _client)) = lab("bg_stop") else {
        return;
    };
    node.ok(&["sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=1"]);
    let tx = || -> u64 {
        node.ok(&["cat", "/sys/class/net/eth0/statistics/tx_packets"])
            .trim()
            .parse()
            .unwrap()
    };
    let p = [
        ("ip", VIP4),
        ("cidr_netmask", "24"),
        ("nic", "eth0"),
        ("arp_count", "1000"),
        ("arp_interval", "10ms"),
    ];
    let before = tx();
    expect_rc(&agent(&node, "start", &p), 0, "start");
    // Still sending after start returned.
    let t1 = tx();
    assert!(t1 > before, "first announcement not sent");
    assert!(
        eventually(Duration::from_secs(2), || tx() > t1 + 3),
        "no background announcements"
    );
    expect_rc(&agent(&node, "stop", &p), 0, "stop");
    std::thread::sleep(Duration::from_millis(100));
    let after_stop = tx();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(tx(), after_stop, "announcements went on after stop");
}

/// strace: monitor, start and stop run no program; monitor and stop do not even fork,
/// start forks only the detached announcer (which never execs).
#[test]
fn strace_shows_no_child_process() {
    let Some((_lab, node, _client)) = lab("strace") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let p = [("ip", VIP4), ("cidr_netmask", "24"), ("nic", "eth0")];
    let trace = |action: &str, params: &[(&str, &str)], want: i32| -> String {
        let log = dir.path().join(format!("{action}.trace"));
        let log_s = log.to_str().unwrap().to_string();
        let wrapper = [
            "strace",
            "-f",
            "-qq",
            "-o",
            &log_s,
            "-e",
            "trace=execve,clone,clone3,fork,vfork",
        ];
        let mut c = wrapped(Some(&node), &wrapper, action, params, Call::default());
        let out = c.output().unwrap();
        expect_rc(&out, want, action);
        std::fs::read_to_string(&log).unwrap()
    };
    let execs = |t: &str| t.lines().filter(|l| l.contains("execve(")).count();
    let forks = |t: &str| {
        t.lines()
            .filter(|l| {
                ["clone(", "clone3(", "fork(", "vfork("]
                    .iter()
                    .any(|s| l.contains(s))
            })
            .count()
    };
    let m = trace("monitor", &p, 7);
    assert_eq!(execs(&m), 1, "monitor (stopped):\n{m}");
    assert_eq!(forks(&m), 0, "monitor (stopped):\n{m}");
    let s = trace("start", &p, 0);
    assert_eq!(execs(&s), 1, "start:\n{s}");
    assert!(s.lines().next().unwrap().contains(AGENT), "{s}");
    assert!(forks(&s) <= 1, "start forks more than the announcer:\n{s}");
    let m = trace("monitor", &p, 0);
    assert_eq!(execs(&m), 1, "monitor (running):\n{m}");
    assert_eq!(forks(&m), 0, "monitor (running):\n{m}");
    let st = trace("stop", &p, 0);
    assert_eq!(execs(&st), 1, "stop:\n{st}");
    assert_eq!(forks(&st), 0, "stop:\n{st}");
    // With a single announcement the child only takes over the socket's slow close.
    let one = [
        ("ip", VIP4),
        ("cidr_netmask", "24"),
        ("nic", "eth0"),
        ("arp_count", "1"),
    ];
    let s1 = trace("start", &one, 0);
    assert_eq!(execs(&s1), 1, "start, arp_count=1:\n{s1}");
    assert!(forks(&s1) <= 1, "start, arp_count=1:\n{s1}");
    trace("stop", &one, 0);
}

struct Case {
    name: &'static str,
    action: &'static str,
    params: &'static [(&'static str, &'static str)],
    call: Call<'static>,
    rc: i32,
    /// Whether an `ocf-exit-reason:` line must be printed (failures) or must not
    /// (a probe's 7 and a stop's 0 are answers, not failures).
    reason: bool,
}

const PROBE: Call = Call {
    interval: Some("0"),
    nobody: false,
};
const RECUR: Call = Call {
    interval: Some("10000"),
    nobody: false,
};
const ONCE: Call = Call {
    interval: None,
    nobody: false,
};
const NOBODY: Call = Call {
    interval: None,
    nobody: true,
};

macro_rules! case {
    ($name:expr, $action:expr, $call:expr, [$(($k:expr, $v:expr)),*], $rc:expr, $reason:expr) => {
        Case { name: $name, action: $action, params: &[$(($k, $v)),*], call: $call, rc: $rc, reason: $reason }
    };
}

const CASES: &[Case] = &[
    case!(
        "missing ip: validate-all",
        "validate-all",
        ONCE,
        [("nic", "eth0")],
        6,
        true
    ),
    case!(
        "missing ip: start",
        "start",
        ONCE,
        [("nic", "eth0")],
        6,
        true
    ),
    case!(
        "missing ip: recurring monitor",
        "monitor",
        RECUR,
        [("nic", "eth0")],
        6,
        true
    ),
    case!(
        "missing ip: probe",
        "monitor",
        PROBE,
        [("nic", "eth0")],
        7,
        false
    ),
    case!(
        "missing ip: stop",
        "stop",
        ONCE,
        [("nic", "eth0")],
        0,
        false
    ),
    case!(
        "malformed ip 10.213.0.300",
        "validate-all",
        ONCE,
        [("ip", "10.213.0.300")],
        6,
        true
    ),
    case!(
        "malformed ip: start",
        "start",
        ONCE,
        [("ip", "vip.example.com")],
        6,
        true
    ),
    case!(
        "malformed ip: probe",
        "monitor",
        PROBE,
        [("ip", "10.213.0.300")],
        7,
        false
    ),
    case!(
        "ip with a prefix",
        "validate-all",
        ONCE,
        [("ip", "10.213.0.50/24")],
        6,
        true
    ),
    case!(
        "multicast ip",
        "validate-all",
        ONCE,
        [("ip", "224.0.0.5")],
        6,
        true
    ),
    case!(
        "unspecified ip",
        "start",
        ONCE,
        [("ip", "0.0.0.0")],
        6,
        true
    ),
    case!(
        "IPv6 link-local without nic",
        "validate-all",
        ONCE,
        [("ip", "fe80::50")],
        6,
        true
    ),
    case!(
        "netmask 33 for IPv4",
        "validate-all",
        ONCE,
        [("ip", "10.213.0.50"), ("cidr_netmask", "33")],
        6,
        true
    ),
    case!(
        "netmask 33 for IPv4: start",
        "start",
        ONCE,
        [("ip", "10.213.0.50"), ("cidr_netmask", "33")],
        6,
        true
    ),
    case!(
        "netmask 33 for IPv4: probe",
        "monitor",
        PROBE,
        [("ip", "10.213.0.50"), ("cidr_netmask", "33")],
        7,
        false
    ),
    case!(
        "netmask 129 for IPv6",
        "validate-all",
        ONCE,
        [("ip", "fd00:213::50"), ("cidr_netmask", "129")],
        6,
        true
    ),
    case!(
        "netmask -1",
        "validate-all",
        ONCE,
        [("ip", "10.213.0.50"), ("cidr_netmask", "-1")],
        6,
        true
    ),
    case!(
        "IPv6 address with an IPv4 mask",
        "validate-all",
        ONCE,
        [("ip", "fd00:213::50"), ("cidr_netmask", "255.255.255.0")],
        6,
        true
    ),
    case!(
        "IPv6 address with an IPv4 mask: probe",
        "monitor",
        PROBE,
        [("ip", "fd00:213::50"), ("cidr_netmask", "255.255.255.0")],
        7,
        false
    ),
    case!(
        "nic does not exist: validate-all",
        "validate-all",
        ONCE,
        [("ip", "10.213.0.50"), ("nic", "nosuch0")],
        2,
        true
    ),
    case!(
        "nic does not exist: start",
        "start",
        ONCE,
        [("ip", "10.213.0.50"), ("nic", "nosuch0")],
        2,
        true
    ),
    case!(
        "nic does not exist: probe",
        "monitor",
        PROBE,
        [("ip", "10.213.0.50"), ("nic", "nosuch0")],
        7,
        false
    ),
    case!(
        "nic does not exist: recurring monitor",
        "monitor",
        RECUR,
        [("ip", "10.213.0.50"), ("nic", "nosuch0")],
        7,
        false
    ),
    case!(
        "nic does not exist: stop",
        "stop",
        ONCE,
        [("ip", "10.213.0.50"), ("nic", "nosuch0")],
        0,
        false
    ),
    case!(
        "nic with a slash",
        "validate-all",
        ONCE,
        [("ip", "10.213.0.50"), ("nic", "eth/0")],
        6,
        true
    ),
    case!(
        "iflabel over 15 characters",
        "validate-all",
        ONCE,
        [("ip", "10.213.0.50"), ("iflabel", "abcdefghijklmnop")],
        6,
        true
    ),
    case!(
        "nic:iflabel over 15 characters",
        "start",
        ONCE,
        [
            ("ip", "10.213.0.50"),
            ("nic", "eth0"),
            ("iflabel", "abcdefghijk")
        ],
        6,
        true
    ),
    case!(
        "iflabel over 15 characters: probe",
        "monitor",
        PROBE,
        [("ip", "10.213.0.50"), ("iflabel", "abcdefghijklmnop")],
        7,
        false
    ),
    case!(
        "negative arp_count",
        "validate-all",
        ONCE,
        [("ip", "10.213.0.50"), ("arp_count", "-1")],
        6,
        true
    ),
    case!(
        "negative arp_count: start",
        "start",
        ONCE,
        [("ip", "10.213.0.50"), ("arp_count", "-1")],
        6,
        true
    ),
    case!(
        "negative arp_count: probe",
        "monitor",
        PROBE,
        [("ip", "10.213.0.50"), ("arp_count", "-1")],
        7,
        false
    ),
    case!(
        "arp_count 0",
        "validate-all",
        ONCE,
        [("ip", "10.213.0.50"), ("arp_count", "0")],
        6,
        true
    ),
    case!(
        "arp_count not a number",
        "validate-all",
        ONCE,
        [("ip", "10.213.0.50"), ("arp_count", "many")],
        6,
        true
    ),
    case!(
        "negative arp_interval",
        "validate-all",
        ONCE,
        [("ip", "10.213.0.50"), ("arp_interval", "-5")],
        6,
        true
    ),
    case!(
        "nodad not a boolean",
        "validate-all",
        ONCE,
        [("ip", "fd00:213::50"), ("nodad", "maybe")],
        6,
        true
    ),
    case!(
        "malformed broadcast",
        "validate-all",
        ONCE,
        [("ip", "10.213.0.50"), ("broadcast", "10.213.0.256")],
        6,
        true
    ),
    case!(
        "broadcast for IPv6",
        "validate-all",
        ONCE,
        [("ip", "fd00:213::50"), ("broadcast", "10.213.0.255")],
        6,
        true
    ),
    case!(
        "bad preferred_lft",
        "validate-all",
        ONCE,
        [("ip", "fd00:213::50"), ("preferred_lft", "soon")],
        6,
        true
    ),
    case!(
        "nothing covers ip: validate-all",
        "validate-all",
        ONCE,
        [("ip", "192.0.2.77")],
        2,
        true
    ),
    case!(
        "nothing covers ip: probe",
        "monitor",
        PROBE,
        [("ip", "192.0.2.77")],
        7,
        false
    ),
    case!(
        "unknown action",
        "frobnicate",
        ONCE,
        [("ip", "10.213.0.50")],
        3,
        true
    ),
    case!(
        "start as non-root",
        "start",
        NOBODY,
        [("ip", "10.213.0.50"), ("nic", "eth0")],
        4,
        true
    ),
    case!(
        "stop as non-root",
        "stop",
        NOBODY,
        [("ip", "10.213.0.50"), ("nic", "eth0")],
        4,
        true
    ),
    case!(
        "probe as non-root",
        "monitor",
        NOBODY,
        [("ip", "10.213.0.50"), ("nic", "eth0")],
        7,
        false
    ),
];

#[test]
fn bad_input_table() {
    assert!(CASES.len() >= 20);
    // A namespace keeps even a wrongly accepted start off the host.
    let Some((_lab, node, _client)) = lab("bad_input") else {
        return;
    };
    let mut failures = Vec::new();
    for c in CASES {
        let out = agent_cmd(Some(&node), c.action, c.params, c.call)
            .output()
            .unwrap();
        let t = text(&out);
        let reasons = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| l.starts_with("ocf-exit-reason:"))
            .count();
        let ok_rc = rc(&out) == c.rc;
        let ok_reason = if c.reason { reasons == 1 } else { reasons == 0 };
        let panicked = t.contains("panicked");
        println!(
            "{:<45} rc {} (want {}), exit-reason lines {}{}",
            c.name,
            rc(&out),
            c.rc,
            reasons,
            if ok_rc && ok_reason && !panicked {
                ""
            } else {
                "  <-- FAIL"
            }
        );
        if !ok_rc || !ok_reason || panicked {
            failures.push(format!("{}: {}", c.name, t));
        }
        if c.action == "start" && rc(&out) == 0 {
            agent_cmd(Some(&node), "stop", c.params, ONCE)
                .output()
                .unwrap();
        }
    }
    assert!(
        failures.is_empty(),
        "failing cases:\n{}",
        failures.join("\n")
    );
    assert!(!has_addr(&node, VIP4));
}

mod arbitrary {
    use super::*;
    use proptest::prelude::*;

    const NAMES: [&str; 10] = [
        "ip",
        "nic",
        "cidr_netmask",
        "broadcast",
        "iflabel",
        "preferred_lft",
        "noprefixroute",
        "nodad",
        "arp_count",
        "arp_interval",
    ];

    fn value() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(prop_oneof![
            "\\PC{0,40}",
            "[0-9a-f:./+-]{0,24}",
            Just("10.213.0.50".to_string()),
            Just("fd00:213::50".to_string()),
            Just("eth0".to_string()),
            "-?[0-9]{1,20}",
            "[0-9]{1,4}(ms|s|m|h|x)?",
        ])
        .prop_map(|v| v.map(|s| s.replace('\0', "")))
    }

    /// No OCF_RESKEY_* values make validate-all or monitor (probe or recurring)
    /// panic or die by a signal; every exit code is an OCF one, and every failure has
    /// its exit reason. Runs in a lab namespace when root (read-only actions anyway).
    #[test]
    fn no_panic_on_arbitrary_values() {
        let lab = if is_root() { lab("proptest") } else { None };
        let ns = lab.as_ref().map(|(_, n, _)| n);
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: 64,
            ..ProptestConfig::default()
        });
        let strategy = (proptest::collection::vec(value(), 10), 0usize..3);
        runner
            .run(&strategy, |(vals, which)| {
                let params: Vec<(&str, String)> = NAMES
                    .iter()
                    .zip(vals.iter())
                    .filter_map(|(n, v)| v.clone().map(|v| (*n, v)))
                    .collect();
                let refs: Vec<(&str, &str)> =
                    params.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let (action, call) = [
                    ("validate-all", ONCE),
                    ("monitor", PROBE),
                    ("monitor", RECUR),
                ][which];
                let out = agent_cmd(ns, action, &refs, call).output().unwrap();
                let t = text(&out);
                prop_assert!(out.status.code().is_some(), "killed by a signal: {}", t);
                prop_assert!(!t.contains("panicked"), "panic: {}", t);
                let code = rc(&out);
                prop_assert!(
                    [0, 1, 2, 3, 4, 5, 6, 7].contains(&code),
                    "exit {}: {}",
                    code,
                    t
                );
                if code != 0 && code != 7 {
                    prop_assert!(t.contains("ocf-exit-reason:"), "no exit reason: {}", t);
                }
                Ok(())
            })
            .unwrap();
    }
}
