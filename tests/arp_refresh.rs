//! ocf:bulwark:arp-refresh and floating-ip's virtual MAC against real peers, inside
//! namespaces the tests create: ocf-tester on both; two nodes and a client on one
//! bridge, where the address moves from node 1 to node 2 and the client's neighbour
//! entry must follow right after start returns (once per refresh mode, and again with
//! the client dropping broadcast ARP, standing in for hosts that ignore gratuitous
//! ARP); the virtual MAC that never changes for the client; bad input; arbitrary input.
mod harness;
use harness::*;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const REFRESH: &str = env!("CARGO_BIN_EXE_arp-refresh");
const FIP: &str = env!("CARGO_BIN_EXE_floating-ip");
const OCF_TESTER: &str = "/usr/sbin/ocf-tester";
const VIP4: &str = "10.213.0.50";
const VIP6: &str = "fd00:213::50";
const CLIENT4: &str = "10.213.0.100";
const CLIENT6: &str = "fd00:213::100";
const VMAC: &str = "02:d5:0b:00:00:50";
const FAKE_MAC: &str = "02:de:ad:be:ef:01";

/// A switch with nodes n1, n2 and a client, all dual-stack on eth0.
fn lab(test: &str) -> Option<(Lab, Ns, Ns, Ns)> {
    let mut lab = Lab::new(test)?;
    let (_sw, h) = lab.star(&[
        ("n1", &["10.213.0.1/24", "fd00:213::1/64"]),
        ("n2", &["10.213.0.2/24", "fd00:213::2/64"]),
        ("client", &["10.213.0.100/24", "fd00:213::100/64"]),
    ]);
    let (n1, n2, client) = (h[0].clone(), h[1].clone(), h[2].clone());
    Some((lab, n1, n2, client))
}

#[derive(Clone, Copy, Default)]
struct Call<'a> {
    /// `OCF_RESKEY_CRM_meta_interval`; `None` leaves it unset (= probe for monitor).
    interval: Option<&'a str>,
    /// Run as nobody.
    nobody: bool,
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

/// `ip netns exec <ns> [setpriv...] <agent> <action>` with a clean OCF environment.
fn cmd(ns: Option<&Ns>, bin: &str, action: &str, params: &[(&str, &str)], call: Call) -> Command {
    let mut argv: Vec<&str> = Vec::new();
    if call.nobody {
        argv.extend([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ]);
    }
    argv.push(bin);
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
        .env("OCF_RESOURCE_INSTANCE", "refresh");
    if let Some(i) = call.interval {
        c.env("OCF_RESKEY_CRM_meta_interval", i);
    }
    for (k, v) in params {
        c.env(format!("OCF_RESKEY_{k}"), v);
    }
    c
}

fn run(ns: &Ns, bin: &str, action: &str, params: &[(&str, &str)], call: Call) -> Output {
    cmd(Some(ns), bin, action, params, call)
        .output()
        .expect("run agent")
}

fn refresh(ns: &Ns, action: &str, params: &[(&str, &str)]) -> Output {
    run(ns, REFRESH, action, params, RECUR)
}

fn fip(ns: &Ns, action: &str, params: &[(&str, &str)]) -> Output {
    run(ns, FIP, action, params, ONCE)
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

fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    loop {
        if f() {
            return true;
        }
        if t.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn has_addr(ns: &Ns, dev: &str, ip: &str) -> bool {
    let out = ns.run(&["ip", "-o", "addr", "show", "dev", dev]);
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .any(|w| w.split('/').next() == Some(ip))
}

fn link_exists(ns: &Ns, dev: &str) -> bool {
    ns.run(&["ip", "link", "show", "dev", dev]).status.success()
}

fn sysctl(ns: &Ns, key: &str) -> String {
    ns.ok(&["sysctl", "-n", key]).trim().to_string()
}

/// The client drops every broadcast ARP it receives (a host that ignores gratuitous
/// ARP); unicast ARP still arrives.
fn drop_broadcast_arp(client: &Ns) {
    client.ok(&["nft", "add", "table", "arp", "bwdrop"]);
    client.ok(&[
        "nft",
        "add",
        "chain",
        "arp",
        "bwdrop",
        "in",
        "{ type filter hook input priority 0; policy accept; }",
    ]);
    client.ok(&[
        "nft",
        "add",
        "rule",
        "arp",
        "bwdrop",
        "in",
        "ether",
        "daddr",
        "ff:ff:ff:ff:ff:ff",
        "counter",
        "drop",
    ]);
}

/// How many broadcast ARPs the client's rule dropped.
fn dropped(client: &Ns) -> u64 {
    let out = client.ok(&["nft", "list", "table", "arp", "bwdrop"]);
    out.split_whitespace()
        .skip_while(|w| *w != "packets")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The client drops multicast Neighbour Advertisements (IPv6's gratuitous form).
fn drop_multicast_na(client: &Ns) {
    client.ok(&["nft", "add", "table", "ip6", "bwdrop6"]);
    client.ok(&[
        "nft",
        "add",
        "chain",
        "ip6",
        "bwdrop6",
        "in",
        "{ type filter hook input priority 0; policy accept; }",
    ]);
    client.ok(&[
        "nft",
        "add",
        "rule",
        "ip6",
        "bwdrop6",
        "in",
        "ip6",
        "daddr",
        "ff02::1",
        "icmpv6",
        "type",
        "nd-neighbor-advert",
        "counter",
        "drop",
    ]);
}

// ---------------------------------------------------------------------------------
// ocf-tester

fn ocf_tester(ns: &Ns, bin: &str, opts: &[&str]) -> String {
    let mut args = vec![OCF_TESTER, "-n", "refresh"];
    for o in opts {
        args.extend(["-o", o]);
    }
    args.push(bin);
    let out = ns.run(&args);
    let t = text(&out);
    println!("{t}");
    assert!(out.status.success(), "ocf-tester failed: {t}");
    assert!(t.contains("passed all tests"), "{t}");
    t
}

#[test]
fn ocf_tester_passes_arp_refresh() {
    let Some((lab, n1, _n2, _client)) = lab("ocft_refresh") else {
        return;
    };
    lab.addr(&n1, "eth0", "10.213.0.50/24");
    lab.addr(&n1, "eth0", "fd00:213::50/64");
    ocf_tester(
        &n1,
        REFRESH,
        &["ip=10.213.0.50,fd00:213::50", "nic=eth0", "refresh=both"],
    );
    // Without nic: each address is announced where it lives.
    ocf_tester(&n1, REFRESH, &["ip=10.213.0.50", "refresh_interval=1"]);
    // ocf-tester ends with stop: nothing is marked started.
    expect_rc(
        &run(&n1, REFRESH, "monitor", &[("ip", VIP4)], PROBE),
        7,
        "probe after ocf-tester",
    );
}

#[test]
fn ocf_tester_passes_floating_ip_with_mac() {
    let Some((_lab, n1, _n2, _client)) = lab("ocft_vmac") else {
        return;
    };
    let before = (
        sysctl(&n1, "net.ipv4.conf.eth0.arp_ignore"),
        sysctl(&n1, "net.ipv4.conf.eth0.arp_announce"),
    );
    for (ip, mask) in [(VIP4, "24"), (VIP6, "64")] {
        let ip_o = format!("ip={ip}");
        let mask_o = format!("cidr_netmask={mask}");
        let mac_o = format!("mac={VMAC}");
        ocf_tester(&n1, FIP, &[&ip_o, &mask_o, "nic=eth0", &mac_o]);
        assert!(!link_exists(&n1, "vmac000050"), "macvlan left behind");
        assert!(!has_addr(&n1, "eth0", ip));
    }
    let after = (
        sysctl(&n1, "net.ipv4.conf.eth0.arp_ignore"),
        sysctl(&n1, "net.ipv4.conf.eth0.arp_announce"),
    );
    assert_eq!(before, after, "parent's ARP settings not restored");
}

// ---------------------------------------------------------------------------------
// The move: node 1 -> node 2, client follows.

/// Outcome of one move.
struct Moved {
    n1_mac: String,
    n2_mac: String,
    /// The client's entry for the VIP right after arp-refresh start returned on n2
    /// (polled for a short window).
    after: Option<String>,
}

/// The VIP lives on n1 (added by hand: an address another agent owns), the client
/// talks to it, n2 has talked to the client. The VIP moves to n2 (again by hand: the
/// kernel announces nothing for it), then `arp-refresh start` on n2 with `mode`.
/// Later rounds are 10 s apart, so whatever the client shows within the window came
/// from the first round, on the wire when start returned.
fn move_vip(test: &str, v6: bool, mode: &str, drop: bool) -> Option<Moved> {
    let (lab, n1, n2, client) = lab(test)?;
    let (vip, cidr, peer) = if v6 {
        (VIP6, "fd00:213::50/64", CLIENT6)
    } else {
        (VIP4, "10.213.0.50/24", CLIENT4)
    };
    lab.addr(&n1, "eth0", cidr);
    assert!(
        eventually(Duration::from_secs(3), || client.ping(vip, "1")),
        "client cannot reach {vip} on n1"
    );
    let n1_mac = n1.mac("eth0");
    let n2_mac = n2.mac("eth0");
    assert_eq!(
        client.neigh_mac("eth0", vip).as_deref(),
        Some(n1_mac.as_str())
    );
    // n2 knows the client (the unicast refresh needs a neighbour to talk to).
    assert!(n2.ping(peer, "2"), "n2 cannot reach the client");
    if drop {
        if v6 {
            drop_multicast_na(&client);
        } else {
            drop_broadcast_arp(&client);
        }
    }
    n1.ok(&["ip", "addr", "del", cidr, "dev", "eth0"]);
    lab.addr(&n2, "eth0", cidr);
    let p = [
        ("ip", vip),
        ("nic", "eth0"),
        ("refresh", mode),
        ("arp_count", "2"),
        ("arp_interval", "10s"),
    ];
    expect_rc(&refresh(&n2, "start", &p), 0, "arp-refresh start on n2");
    let mut after = None;
    eventually(Duration::from_millis(300), || {
        after = client.neigh_mac("eth0", vip);
        after.as_deref() == Some(n2_mac.as_str())
    });
    if drop && !v6 && mode != "unicast" {
        assert!(dropped(&client) > 0, "the client's rule dropped nothing");
    }
    if after.as_deref() == Some(n2_mac.as_str()) {
        assert!(client.ping(vip, "2"), "client cannot reach {vip} on n2");
    }
    expect_rc(&refresh(&n2, "monitor", &p), 0, "monitor after start");
    expect_rc(&refresh(&n2, "stop", &p), 0, "stop");
    expect_rc(&refresh(&n2, "monitor", &p), 7, "monitor after stop");
    Some(Moved {
        n1_mac,
        n2_mac,
        after,
    })
}

fn follows(test: &str, v6: bool, mode: &str, drop: bool) {
    let Some(m) = move_vip(test, v6, mode, drop) else {
        return;
    };
    assert_eq!(
        m.after.as_deref(),
        Some(m.n2_mac.as_str()),
        "refresh={mode}, drop={drop}: client's entry is {:?}, not n2's {} (n1 {})",
        m.after,
        m.n2_mac,
        m.n1_mac
    );
}

fn stays_stale(test: &str, v6: bool, mode: &str) {
    let Some(m) = move_vip(test, v6, mode, true) else {
        return;
    };
    assert_eq!(
        m.after.as_deref(),
        Some(m.n1_mac.as_str()),
        "refresh={mode} with gratuitous ARP dropped: expected the client to stay on n1"
    );
}

#[test]
fn move_gratuitous_updates_the_client() {
    follows("mv_grat", false, "gratuitous", false);
}

#[test]
fn move_unicast_updates_the_client() {
    follows("mv_uni", false, "unicast", false);
}

#[test]
fn move_both_updates_the_client() {
    follows("mv_both", false, "both", false);
}

#[test]
fn client_dropping_broadcast_arp_ignores_gratuitous() {
    stays_stale("mvd_grat", false, "gratuitous");
}

#[test]
fn client_dropping_broadcast_arp_follows_unicast() {
    follows("mvd_uni", false, "unicast", true);
}

#[test]
fn client_dropping_broadcast_arp_follows_both() {
    follows("mvd_both", false, "both", true);
}

#[test]
fn ipv6_move_gratuitous_and_unicast() {
    follows("mv6_grat", true, "gratuitous", false);
    follows("mv6_uni", true, "unicast", false);
}

#[test]
fn ipv6_client_dropping_multicast_na_follows_unicast_only() {
    stays_stale("mv6d_grat", true, "gratuitous");
    follows("mv6d_uni", true, "unicast", true);
}

/// An address this host does not hold (a VM's, here n1's): without `mac`, start refuses
/// and sends nothing (our MAC would steal its traffic); with the owner's `mac`, n2
/// announces it for n1 and the client follows to n1.
#[test]
fn foreign_address_needs_the_owners_mac() {
    let Some((lab, n1, n2, client)) = lab("foreign") else {
        return;
    };
    lab.addr(&n1, "eth0", "10.213.0.50/24");
    let n1_mac = n1.mac("eth0");
    client.ok(&[
        "ip", "neigh", "replace", VIP4, "lladdr", FAKE_MAC, "dev", "eth0", "nud", "stale",
    ]);
    let p = [("ip", VIP4), ("nic", "eth0"), ("refresh", "gratuitous")];
    let o = refresh(&n2, "start", &p);
    expect_rc(&o, 1, "start for a foreign address without mac");
    assert!(
        text(&o).contains("not configured on this host"),
        "{}",
        text(&o)
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(client.neigh_mac("eth0", VIP4).as_deref(), Some(FAKE_MAC));
    expect_rc(&refresh(&n2, "monitor", &p), 7, "not started");

    let p = [
        ("ip", VIP4),
        ("nic", "eth0"),
        ("refresh", "gratuitous"),
        ("mac", n1_mac.as_str()),
    ];
    expect_rc(&refresh(&n2, "start", &p), 0, "start with the owner's mac");
    assert!(
        eventually(Duration::from_millis(300), || client
            .neigh_mac("eth0", VIP4)
            .as_deref()
            == Some(n1_mac.as_str())),
        "client's entry is {:?}, not the owner's {n1_mac}",
        client.neigh_mac("eth0", VIP4)
    );
    assert!(client.ping(VIP4, "2"));
    expect_rc(&refresh(&n2, "stop", &p), 0, "stop");
}

/// floating-ip start on n2 followed by arp-refresh start (the usual pairing): the
/// client that drops broadcast ARP follows thanks to the unicast refresh.
#[test]
fn floating_ip_then_arp_refresh_moves_a_deaf_client() {
    let Some((_lab, n1, n2, client)) = lab("fip_pair") else {
        return;
    };
    let fp = [("ip", VIP4), ("cidr_netmask", "24"), ("nic", "eth0")];
    let rp = [("ip", VIP4), ("refresh", "unicast")];
    expect_rc(&fip(&n1, "start", &fp), 0, "n1 start");
    assert!(eventually(Duration::from_secs(3), || client.ping(VIP4, "1")));
    assert!(n2.ping(CLIENT4, "2"));
    drop_broadcast_arp(&client);
    expect_rc(&fip(&n1, "stop", &fp), 0, "n1 stop");
    expect_rc(&fip(&n2, "start", &fp), 0, "n2 floating-ip start");
    // floating-ip's gratuitous ARP is dropped: still n1.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(client.neigh_mac("eth0", VIP4), Some(n1.mac("eth0")));
    expect_rc(&refresh(&n2, "start", &rp), 0, "n2 arp-refresh start");
    let n2_mac = n2.mac("eth0");
    assert!(
        eventually(Duration::from_millis(300), || client
            .neigh_mac("eth0", VIP4)
            .as_deref()
            == Some(n2_mac.as_str())),
        "client did not follow: {:?}",
        client.neigh_mac("eth0", VIP4)
    );
    assert!(client.ping(VIP4, "2"));
    expect_rc(&refresh(&n2, "stop", &rp), 0, "arp-refresh stop");
    expect_rc(&fip(&n2, "stop", &fp), 0, "n2 stop");
}

// ---------------------------------------------------------------------------------
// Virtual MAC

#[test]
fn virtual_mac_keeps_the_clients_entry_across_the_move() {
    let Some((_lab, n1, n2, client)) = lab("vmac_move") else {
        return;
    };
    let p = [
        ("ip", VIP4),
        ("cidr_netmask", "24"),
        ("nic", "eth0"),
        ("mac", VMAC),
    ];
    let dev = "vmac000050";
    expect_rc(&fip(&n1, "start", &p), 0, "n1 start");
    assert!(has_addr(&n1, dev, VIP4), "VIP not on the macvlan");
    assert_eq!(n1.mac(dev), VMAC);
    assert!(eventually(Duration::from_secs(3), || client.ping(VIP4, "1")));
    assert_eq!(client.neigh_mac("eth0", VIP4).as_deref(), Some(VMAC));

    expect_rc(&fip(&n1, "stop", &p), 0, "n1 stop");
    assert!(!link_exists(&n1, dev), "macvlan left on n1");
    assert_eq!(sysctl(&n1, "net.ipv4.conf.eth0.arp_ignore"), "0");
    expect_rc(&fip(&n2, "start", &p), 0, "n2 start");
    assert_eq!(n2.mac(dev), VMAC);
    expect_rc(&fip(&n2, "monitor", &p), 0, "n2 monitor");
    assert_eq!(client.neigh_mac("eth0", VIP4).as_deref(), Some(VMAC));
    // The switch learnt the MAC's new port from the gratuitous ARP: traffic flows.
    assert!(
        eventually(Duration::from_secs(3), || client.ping(VIP4, "1")),
        "client cannot reach the VIP on n2"
    );
    // n2 answered and asked about the client without teaching it its own eth0 MAC.
    assert_eq!(client.neigh_mac("eth0", VIP4).as_deref(), Some(VMAC));
    let flushed = client.ok(&["ip", "neigh", "flush", "dev", "eth0"]);
    let _ = flushed;
    assert!(client.ping(VIP4, "2"), "client cannot re-resolve the VIP");
    assert_eq!(
        client.neigh_mac("eth0", VIP4).as_deref(),
        Some(VMAC),
        "a fresh ARP resolution must give the virtual MAC, not n2's eth0"
    );
    assert!(client.ping("10.213.0.2", "2"), "n2's own address broke");
    assert_eq!(
        client.neigh_mac("eth0", "10.213.0.2"),
        Some(n2.mac("eth0")),
        "n2's own address must keep n2's MAC"
    );
    expect_rc(&fip(&n2, "stop", &p), 0, "n2 stop");
    expect_rc(&fip(&n2, "stop", &p), 0, "n2 second stop");
    expect_rc(&fip(&n2, "monitor", &p), 7, "n2 monitor after stop");
    assert!(!link_exists(&n2, dev));
    assert_eq!(sysctl(&n2, "net.ipv4.conf.eth0.arp_ignore"), "0");
    assert_eq!(sysctl(&n2, "net.ipv4.conf.eth0.arp_announce"), "0");
}

/// arp-refresh next to a virtual MAC finds the macvlan holding the address, sends from
/// the virtual MAC, and refreshes the neighbours its parent knows.
#[test]
fn arp_refresh_on_a_virtual_mac_uses_it_and_the_parents_neighbours() {
    let Some((_lab, n1, _n2, client)) = lab("vmac_refresh") else {
        return;
    };
    let fp = [
        ("ip", VIP4),
        ("cidr_netmask", "24"),
        ("nic", "eth0"),
        ("mac", VMAC),
    ];
    expect_rc(&fip(&n1, "start", &fp), 0, "floating-ip start");
    assert!(n1.ping(CLIENT4, "2"), "n1 cannot reach the client");
    drop_broadcast_arp(&client);
    client.ok(&[
        "ip", "neigh", "replace", VIP4, "lladdr", FAKE_MAC, "dev", "eth0", "nud", "stale",
    ]);
    let rp = [("ip", VIP4), ("refresh", "unicast")];
    expect_rc(&refresh(&n1, "start", &rp), 0, "arp-refresh start");
    assert!(
        eventually(Duration::from_millis(300), || client
            .neigh_mac("eth0", VIP4)
            .as_deref()
            == Some(VMAC)),
        "client's entry is {:?}, not the virtual MAC",
        client.neigh_mac("eth0", VIP4)
    );
    expect_rc(&refresh(&n1, "stop", &rp), 0, "arp-refresh stop");
    expect_rc(&fip(&n1, "stop", &fp), 0, "floating-ip stop");
}

/// A name taken by another device is not touched, and a failed start leaves nothing.
#[test]
fn virtual_mac_does_not_take_a_foreign_interface() {
    let Some((_lab, n1, _n2, _client)) = lab("vmac_foreign") else {
        return;
    };
    n1.ok(&[
        "ip",
        "link",
        "add",
        "vmac000050",
        "type",
        "veth",
        "peer",
        "name",
        "other0",
    ]);
    let p = [
        ("ip", VIP4),
        ("cidr_netmask", "24"),
        ("nic", "eth0"),
        ("mac", VMAC),
    ];
    let o = fip(&n1, "start", &p);
    expect_rc(&o, 1, "start with the name taken");
    assert!(text(&o).contains("ocf-exit-reason:"), "{}", text(&o));
    assert!(link_exists(&n1, "vmac000050"), "foreign device removed");
    assert!(!has_addr(&n1, "vmac000050", VIP4));
    expect_rc(
        &fip(&n1, "stop", &p),
        0,
        "stop leaves the foreign device alone",
    );
    assert!(
        link_exists(&n1, "vmac000050"),
        "foreign device removed by stop"
    );
    assert_eq!(sysctl(&n1, "net.ipv4.conf.eth0.arp_ignore"), "0");
}

// ---------------------------------------------------------------------------------
// refresh_interval, flush_local, a silent LAN

#[test]
fn monitor_reannounces_when_due_and_only_then() {
    let Some((lab, _n1, n2, client)) = lab("refresh_due") else {
        return;
    };
    lab.addr(&n2, "eth0", "10.213.0.50/24");
    let p = [
        ("ip", VIP4),
        ("nic", "eth0"),
        ("refresh", "gratuitous"),
        ("arp_count", "1"),
        ("refresh_interval", "1s"),
    ];
    let n2_mac = n2.mac("eth0");
    let stale = || {
        client.ok(&[
            "ip", "neigh", "replace", VIP4, "lladdr", FAKE_MAC, "dev", "eth0", "nud", "stale",
        ]);
    };
    expect_rc(&refresh(&n2, "monitor", &p), 7, "monitor before start");
    expect_rc(&refresh(&n2, "start", &p), 0, "start");
    stale();
    // Not due yet: nothing sent, the fake entry stays.
    expect_rc(&refresh(&n2, "monitor", &p), 0, "monitor, not due");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(client.neigh_mac("eth0", VIP4).as_deref(), Some(FAKE_MAC));
    // A probe reports, never sends.
    std::thread::sleep(Duration::from_millis(1000));
    expect_rc(
        &run(&n2, REFRESH, "monitor", &p, PROBE),
        0,
        "probe while started",
    );
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(client.neigh_mac("eth0", VIP4).as_deref(), Some(FAKE_MAC));
    // Due: the recurring monitor announces again.
    expect_rc(&refresh(&n2, "monitor", &p), 0, "monitor, due");
    assert!(
        eventually(Duration::from_millis(500), || client
            .neigh_mac("eth0", VIP4)
            .as_deref()
            == Some(n2_mac.as_str())),
        "due monitor did not re-announce"
    );
    expect_rc(&refresh(&n2, "stop", &p), 0, "stop");
    expect_rc(&refresh(&n2, "stop", &p), 0, "second stop");
    expect_rc(&refresh(&n2, "monitor", &p), 7, "monitor after stop");
}

#[test]
fn silent_lan_and_flush_local() {
    let Some((lab, _n1, n2, _client)) = lab("silent") else {
        return;
    };
    lab.addr(&n2, "eth0", "10.213.0.50/24");
    // No neighbours known at all: unicast refresh has nobody to tell; still 0.
    n2.ok(&["ip", "neigh", "flush", "dev", "eth0"]);
    let p = [("ip", VIP4), ("nic", "eth0"), ("refresh", "unicast")];
    expect_rc(&refresh(&n2, "start", &p), 0, "start on a silent LAN");
    expect_rc(&refresh(&n2, "monitor", &p), 0, "monitor");
    expect_rc(&refresh(&n2, "stop", &p), 0, "stop");
    // A carrier-less link: start still succeeds (nothing to blame on the resource).
    n2.ok(&[
        "ip", "link", "add", "dead0", "type", "veth", "peer", "name", "dead1",
    ]);
    lab.addr(&n2, "dead0", "10.213.7.1/24");
    let p = [("ip", "10.213.7.1"), ("refresh", "both")];
    expect_rc(&refresh(&n2, "start", &p), 0, "start on a down link");
    expect_rc(&refresh(&n2, "stop", &p), 0, "stop");

    // flush_local: n2's own stale entry for the address goes.
    n2.ok(&[
        "ip",
        "neigh",
        "replace",
        "10.213.0.51",
        "lladdr",
        FAKE_MAC,
        "dev",
        "eth0",
    ]);
    lab.addr(&n2, "eth0", "10.213.0.51/24");
    let p = [
        ("ip", "10.213.0.51"),
        ("nic", "eth0"),
        ("flush_local", "true"),
    ];
    assert_eq!(
        n2.neigh_mac("eth0", "10.213.0.51").as_deref(),
        Some(FAKE_MAC)
    );
    expect_rc(&refresh(&n2, "start", &p), 0, "start with flush_local");
    assert_eq!(n2.neigh_mac("eth0", "10.213.0.51"), None, "not flushed");
    expect_rc(&refresh(&n2, "stop", &p), 0, "stop");
}

/// Rounds after the first go on in the background, paced by arp_interval, and end
/// with stop.
#[test]
fn background_rounds_are_paced_and_end_with_stop() {
    let Some((lab, _n1, n2, _client)) = lab("bg_rounds") else {
        return;
    };
    lab.addr(&n2, "eth0", "10.213.0.50/24");
    n2.ok(&["sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=1"]);
    let tx = || -> u64 {
        n2.ok(&["cat", "/sys/class/net/eth0/statistics/tx_packets"])
            .trim()
            .parse()
            .unwrap()
    };
    let p = [
        ("ip", VIP4),
        ("nic", "eth0"),
        ("refresh", "gratuitous"),
        ("arp_mode", "request"),
        ("arp_count", "5"),
        ("arp_interval", "100ms"),
    ];
    let before = tx();
    let t0 = Instant::now();
    expect_rc(&refresh(&n2, "start", &p), 0, "start");
    assert!(
        tx() > before,
        "first round not on the wire when start returned"
    );
    // 5 rounds take 4 intervals (400 ms), not 4 s.
    assert!(
        eventually(Duration::from_secs(2), || tx() >= before + 5),
        "only {} of 5 rounds sent",
        tx() - before
    );
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(350),
        "rounds not paced: {took:?}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(tx(), before + 5, "more than arp_count rounds");
    expect_rc(&refresh(&n2, "stop", &p), 0, "stop");

    let p = [
        ("ip", VIP4),
        ("nic", "eth0"),
        ("refresh", "gratuitous"),
        ("arp_count", "1000"),
        ("arp_interval", "10ms"),
    ];
    expect_rc(&refresh(&n2, "start", &p), 0, "start, long burst");
    let t1 = tx();
    assert!(eventually(Duration::from_secs(2), || tx() > t1 + 3));
    expect_rc(&refresh(&n2, "stop", &p), 0, "stop");
    std::thread::sleep(Duration::from_millis(100));
    let after_stop = tx();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(tx(), after_stop, "announcements went on after stop");
}

/// strace: no action runs a program; monitor and stop do not even fork; start forks
/// only the detached sender of the later rounds (which never execs).
#[test]
fn strace_shows_no_child_process() {
    let Some((lab, n1, _n2, _client)) = lab("strace") else {
        return;
    };
    lab.addr(&n1, "eth0", "10.213.0.50/24");
    let dir = tempfile::tempdir().unwrap();
    let p = [("ip", VIP4), ("nic", "eth0"), ("refresh_interval", "1h")];
    let trace = |action: &str, want: i32| -> String {
        let log = dir.path().join(format!("{action}.trace"));
        let log_s = log.to_str().unwrap().to_string();
        let mut c = n1.cmd("strace");
        c.args([
            "-f",
            "-qq",
            "-o",
            &log_s,
            "-e",
            "trace=execve,clone,clone3,fork,vfork",
            REFRESH,
            action,
        ]);
        for (k, _) in std::env::vars() {
            if k.starts_with("OCF_") || k.starts_with("HA_") {
                c.env_remove(k);
            }
        }
        c.env("OCF_RESOURCE_INSTANCE", "refresh")
            .env("OCF_RESKEY_CRM_meta_interval", "10000");
        for (k, v) in p {
            c.env(format!("OCF_RESKEY_{k}"), v);
        }
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
    let m = trace("monitor", 7);
    assert_eq!((execs(&m), forks(&m)), (1, 0), "monitor (stopped):\n{m}");
    let s = trace("start", 0);
    assert_eq!(execs(&s), 1, "start:\n{s}");
    assert!(forks(&s) <= 1, "start forks more than the sender:\n{s}");
    let m = trace("monitor", 0);
    assert_eq!((execs(&m), forks(&m)), (1, 0), "monitor (not due):\n{m}");
    let st = trace("stop", 0);
    assert_eq!((execs(&st), forks(&st)), (1, 0), "stop:\n{st}");
}

// ---------------------------------------------------------------------------------
// Bad input

struct Case {
    name: &'static str,
    bin: &'static str,
    action: &'static str,
    params: &'static [(&'static str, &'static str)],
    call: Call<'static>,
    rc: i32,
    /// Whether an `ocf-exit-reason:` line must be printed (failures) or must not
    /// (a probe's 7 and a stop's 0 are answers, not failures).
    reason: bool,
}

macro_rules! case {
    ($name:expr, $bin:expr, $action:expr, $call:expr, [$(($k:expr, $v:expr)),*], $rc:expr, $reason:expr) => {
        Case { name: $name, bin: $bin, action: $action, params: &[$(($k, $v)),*], call: $call, rc: $rc, reason: $reason }
    };
}

const R: &str = REFRESH;
const F: &str = FIP;

const CASES: &[Case] = &[
    case!(
        "missing ip",
        R,
        "validate-all",
        ONCE,
        [("nic", "eth0")],
        6,
        true
    ),
    case!(
        "missing ip: start",
        R,
        "start",
        ONCE,
        [("nic", "eth0")],
        6,
        true
    ),
    case!(
        "missing ip: probe",
        R,
        "monitor",
        PROBE,
        [("nic", "eth0")],
        7,
        false
    ),
    case!(
        "missing ip: stop",
        R,
        "stop",
        ONCE,
        [("nic", "eth0")],
        0,
        false
    ),
    case!(
        "malformed ip",
        R,
        "validate-all",
        ONCE,
        [("ip", "10.213.0.300")],
        6,
        true
    ),
    case!(
        "one bad ip in a list",
        R,
        "start",
        ONCE,
        [("ip", "10.213.0.50,vip.example")],
        6,
        true
    ),
    case!(
        "malformed ip: probe",
        R,
        "monitor",
        PROBE,
        [("ip", "10.213.0.300")],
        7,
        false
    ),
    case!(
        "ip with a prefix",
        R,
        "validate-all",
        ONCE,
        [("ip", "10.213.0.50/24")],
        6,
        true
    ),
    case!(
        "only separators",
        R,
        "validate-all",
        ONCE,
        [("ip", " , ,")],
        6,
        true
    ),
    case!(
        "multicast ip",
        R,
        "start",
        ONCE,
        [("ip", "224.0.0.1")],
        6,
        true
    ),
    case!(
        "IPv6 link-local without nic",
        R,
        "validate-all",
        ONCE,
        [("ip", "fe80::50")],
        6,
        true
    ),
    case!(
        "unknown arp_mode",
        R,
        "validate-all",
        ONCE,
        [("ip", "10.213.0.50"), ("arp_mode", "gratuitous")],
        6,
        true
    ),
    case!(
        "unknown refresh",
        R,
        "start",
        ONCE,
        [("ip", "10.213.0.50"), ("refresh", "multicast")],
        6,
        true
    ),
    case!(
        "unknown refresh: probe",
        R,
        "monitor",
        PROBE,
        [("ip", "10.213.0.50"), ("refresh", "multicast")],
        7,
        false
    ),
    case!(
        "unknown refresh: recurring monitor",
        R,
        "monitor",
        RECUR,
        [("ip", "10.213.0.50"), ("refresh", "multicast")],
        6,
        true
    ),
    case!(
        "arp_count 0",
        R,
        "validate-all",
        ONCE,
        [("ip", "10.213.0.50"), ("arp_count", "0")],
        6,
        true
    ),
    case!(
        "negative arp_count",
        R,
        "start",
        ONCE,
        [("ip", "10.213.0.50"), ("arp_count", "-3")],
        6,
        true
    ),
    case!(
        "arp_interval not a duration",
        R,
        "validate-all",
        ONCE,
        [("ip", "10.213.0.50"), ("arp_interval", "fast")],
        6,
        true
    ),
    case!(
        "negative refresh_interval",
        R,
        "validate-all",
        ONCE,
        [("ip", "10.213.0.50"), ("refresh_interval", "-1")],
        6,
        true
    ),
    case!(
        "flush_local not a boolean",
        R,
        "validate-all",
        ONCE,
        [("ip", "10.213.0.50"), ("flush_local", "perhaps")],
        6,
        true
    ),
    case!(
        "nic with a slash",
        R,
        "validate-all",
        ONCE,
        [("ip", "10.213.0.50"), ("nic", "eth/0")],
        6,
        true
    ),
    case!(
        "nic does not exist",
        R,
        "validate-all",
        ONCE,
        [("ip", "10.213.0.50"), ("nic", "nosuch0")],
        2,
        true
    ),
    case!(
        "nic does not exist: start",
        R,
        "start",
        ONCE,
        [("ip", "10.213.0.50"), ("nic", "nosuch0")],
        2,
        true
    ),
    case!(
        "nic does not exist: probe",
        R,
        "monitor",
        PROBE,
        [("ip", "10.213.0.50"), ("nic", "nosuch0")],
        7,
        false
    ),
    case!(
        "nic is loopback",
        R,
        "start",
        ONCE,
        [("ip", "10.213.0.50"), ("nic", "lo")],
        2,
        true
    ),
    case!(
        "nothing covers ip",
        R,
        "validate-all",
        ONCE,
        [("ip", "192.0.2.77")],
        2,
        true
    ),
    case!(
        "nothing covers ip: probe",
        R,
        "monitor",
        PROBE,
        [("ip", "192.0.2.77")],
        7,
        false
    ),
    case!(
        "unknown action",
        R,
        "frobnicate",
        ONCE,
        [("ip", "10.213.0.50")],
        3,
        true
    ),
    case!(
        "address not on this host, no mac: start",
        R,
        "start",
        ONCE,
        [("ip", "10.213.0.77"), ("nic", "eth0")],
        1,
        true
    ),
    case!(
        "address not on this host: validate-all passes",
        R,
        "validate-all",
        ONCE,
        [("ip", "10.213.0.77")],
        0,
        false
    ),
    case!(
        "arp-refresh mac multicast",
        R,
        "validate-all",
        ONCE,
        [("ip", "10.213.0.50"), ("mac", "01:00:5e:00:00:01")],
        6,
        true
    ),
    case!(
        "arp-refresh mac malformed: start",
        R,
        "start",
        ONCE,
        [("ip", "10.213.0.50"), ("mac", "02:00:00:00:00:00:01")],
        6,
        true
    ),
    case!(
        "start as non-root",
        R,
        "start",
        NOBODY,
        [("ip", "10.213.0.50"), ("nic", "eth0")],
        4,
        true
    ),
    case!(
        "stop as non-root",
        R,
        "stop",
        NOBODY,
        [("ip", "10.213.0.50"), ("nic", "eth0")],
        4,
        true
    ),
    case!(
        "probe as non-root",
        R,
        "monitor",
        NOBODY,
        [("ip", "10.213.0.50"), ("nic", "eth0")],
        7,
        false
    ),
    // floating-ip's virtual MAC
    case!(
        "mac not a MAC",
        F,
        "validate-all",
        ONCE,
        [("ip", "10.213.0.50"), ("mac", "02:00:00:00:01")],
        6,
        true
    ),
    case!(
        "mac globally unique (vendor)",
        F,
        "start",
        ONCE,
        [
            ("ip", "10.213.0.50"),
            ("nic", "eth0"),
            ("mac", "00:16:3e:00:00:01")
        ],
        6,
        true
    ),
    case!(
        "mac multicast",
        F,
        "validate-all",
        ONCE,
        [("ip", "10.213.0.50"), ("mac", "03:00:00:00:00:01")],
        6,
        true
    ),
    case!(
        "mac broadcast",
        F,
        "start",
        ONCE,
        [("ip", "10.213.0.50"), ("mac", "ff:ff:ff:ff:ff:ff")],
        6,
        true
    ),
    case!(
        "mac all zero",
        F,
        "validate-all",
        ONCE,
        [("ip", "10.213.0.50"), ("mac", "00:00:00:00:00:00")],
        6,
        true
    ),
    case!(
        "mac vendor: probe",
        F,
        "monitor",
        PROBE,
        [("ip", "10.213.0.50"), ("mac", "00:16:3e:00:00:01")],
        7,
        false
    ),
    case!(
        "mac vendor: stop",
        F,
        "stop",
        ONCE,
        [("ip", "10.213.0.50"), ("mac", "00:16:3e:00:00:01")],
        0,
        false
    ),
    case!(
        "vmac_interface without mac",
        F,
        "validate-all",
        ONCE,
        [("ip", "10.213.0.50"), ("vmac_interface", "vip0")],
        6,
        true
    ),
    case!(
        "vmac_interface too long",
        F,
        "validate-all",
        ONCE,
        [
            ("ip", "10.213.0.50"),
            ("mac", "02:00:00:00:00:01"),
            ("vmac_interface", "abcdefghijklmnop")
        ],
        6,
        true
    ),
    case!(
        "mac on loopback",
        F,
        "start",
        ONCE,
        [
            ("ip", "127.0.0.77"),
            ("cidr_netmask", "8"),
            ("nic", "lo"),
            ("mac", "02:00:00:00:00:01")
        ],
        2,
        true
    ),
];

#[test]
fn bad_input_table() {
    assert!(CASES.len() >= 15);
    let Some((_lab, n1, _n2, _client)) = lab("bad_input") else {
        return;
    };
    let mut failures = Vec::new();
    for c in CASES {
        let out = cmd(Some(&n1), c.bin, c.action, c.params, c.call)
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
            "{:<40} rc {} (want {}), exit-reason lines {}{}",
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
            cmd(Some(&n1), c.bin, "stop", c.params, ONCE)
                .output()
                .unwrap();
        }
    }
    assert!(
        failures.is_empty(),
        "failing cases:\n{}",
        failures.join("\n")
    );
    let links = n1.ok(&["ip", "-o", "link", "show"]);
    assert!(!links.contains("macvlan"), "{links}");
}

mod arbitrary {
    use super::*;
    use proptest::prelude::*;

    const NAMES: [&str; 8] = [
        "ip",
        "nic",
        "arp_mode",
        "arp_count",
        "arp_interval",
        "refresh",
        "refresh_interval",
        "flush_local",
    ];

    fn value() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(prop_oneof![
            "\\PC{0,40}",
            "[0-9a-f:., ]{0,30}",
            Just("10.213.0.50".to_string()),
            Just("10.213.0.50 fd00:213::50".to_string()),
            Just("eth0".to_string()),
            Just("unicast".to_string()),
            "-?[0-9]{1,20}",
            "[0-9]{1,4}(ms|s|m|h|x)?",
        ])
        .prop_map(|v| v.map(|s| s.replace('\0', "")))
    }

    /// No OCF_RESKEY_* values make validate-all or monitor panic or die by a signal;
    /// every exit code is an OCF one and every failure has its exit reason.
    #[test]
    fn no_panic_on_arbitrary_values() {
        let lab = if is_root() { lab("proptest") } else { None };
        let ns = lab.as_ref().map(|(_, n, _, _)| n);
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: 48,
            ..ProptestConfig::default()
        });
        let strategy = (proptest::collection::vec(value(), 8), 0usize..3);
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
                let out = cmd(ns, REFRESH, action, &refs, call).output().unwrap();
                let t = text(&out);
                prop_assert!(out.status.code().is_some(), "killed by a signal: {}", t);
                prop_assert!(!t.contains("panicked"), "panic: {}", t);
                let code = rc(&out);
                prop_assert!((0..=7).contains(&code), "exit {}: {}", code, t);
                if code != 0 && code != 7 {
                    prop_assert!(t.contains("ocf-exit-reason:"), "no exit reason: {}", t);
                }
                Ok(())
            })
            .unwrap();
    }
}
