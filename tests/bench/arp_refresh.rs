//! `cargo bench --bench arp-refresh`: how long a client takes to follow a takeover,
//! measured from the moment `start` is called to the moment the client's kernel changes
//! its neighbour entry for the VIP to the node's MAC. Alternating A B A B:
//! - bulwark floating-ip start vs ocf:heartbeat:IPaddr2 start (arp_bg default);
//! - bulwark arp-refresh start (refresh=both, the address already on the node, as
//!   when it follows IPaddr2 or a VM) vs IPaddr2 start.
//!
//! Prints medians and ratios; never fails on speed.
//!
//! Before each sample the client's entry is set to a stale fake MAC and the address is
//! off the node (neither is timed). The client's table is watched natively: a netlink
//! socket opened inside the client namespace and subscribed to neighbour events, so
//! the kernel's own notification of the change ends the sample (no polling, no `ip`).
//! The bench process sits in the node namespace (setns), so the agents it starts need
//! no `ip netns exec`.
mod common;
#[path = "../harness/mod.rs"]
mod harness;

use common::*;
use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FIP: &str = env!("CARGO_BIN_EXE_floating-ip");
const REFRESH: &str = env!("CARGO_BIN_EXE_arp-refresh");
const IPADDR2: &str = "/usr/lib/ocf/resource.d/heartbeat/IPaddr2";
const VIP: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 50);
const FAKE_MAC: &str = "02:de:ad:be:ef:01";
const RTMGRP_NEIGH: u32 = 0x4;
const RTM_NEWNEIGH: u16 = 28;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;

fn setns(f: &File) {
    // SAFETY: setns on a namespace file we hold open; the bench is single-threaded.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

/// A netlink socket subscribed to neighbour events of the namespace it was opened in.
struct NeighWatch {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl NeighWatch {
    fn open() -> NeighWatch {
        // SAFETY: plain socket/bind calls; the fd is owned right after.
        unsafe {
            let fd = libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            );
            assert!(fd >= 0, "netlink socket");
            let fd = OwnedFd::from_raw_fd(fd);
            let mut sa: libc::sockaddr_nl = std::mem::zeroed();
            sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
            sa.nl_groups = RTMGRP_NEIGH;
            let rc = libc::bind(
                fd.as_raw_fd(),
                &sa as *const libc::sockaddr_nl as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            );
            assert_eq!(rc, 0, "bind: {}", std::io::Error::last_os_error());
            NeighWatch {
                fd,
                buf: vec![0; 64 * 1024],
            }
        }
    }

    fn recv(&mut self, timeout_ms: i32) -> Option<usize> {
        let mut p = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; then a recv into our buffer.
        unsafe {
            if libc::poll(&mut p, 1, timeout_ms) <= 0 {
                return None;
            }
            let n = libc::recv(
                self.fd.as_raw_fd(),
                self.buf.as_mut_ptr() as *mut libc::c_void,
                self.buf.len(),
                libc::MSG_DONTWAIT,
            );
            (n > 0).then_some(n as usize)
        }
    }

    /// Drops every event queued so far.
    fn drain(&mut self) {
        while self.recv(0).is_some() {}
    }

    /// Waits until an event says `ip` now maps to `mac`; the instant it arrived.
    fn wait_for(&mut self, ip: Ipv4Addr, mac: [u8; 6], limit: Duration) -> Option<Instant> {
        let end = Instant::now() + limit;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            let n = self.recv(left.as_millis().max(1) as i32)?;
            let now = Instant::now();
            if events(&self.buf[..n]).any(|(dst, ll)| dst == ip.octets() && ll == mac) {
                return Some(now);
            }
        }
    }
}

/// (destination, link-layer address) of every IPv4 RTM_NEWNEIGH in a netlink datagram.
fn events(data: &[u8]) -> impl Iterator<Item = ([u8; 4], [u8; 6])> + '_ {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        while at + 16 <= data.len() {
            let len = u32::from_ne_bytes(data[at..at + 4].try_into().unwrap()) as usize;
            let kind = u16::from_ne_bytes(data[at + 4..at + 6].try_into().unwrap());
            if len < 16 || at + len > data.len() {
                return None;
            }
            let body = &data[at + 16..at + len];
            at += (len + 3) & !3;
            if kind != RTM_NEWNEIGH || body.len() < 12 || body[0] != libc::AF_INET as u8 {
                continue;
            }
            let (mut dst, mut ll) = (None, None);
            let mut a = 12usize;
            while a + 4 <= body.len() {
                let alen = u16::from_ne_bytes([body[a], body[a + 1]]) as usize;
                let akind = u16::from_ne_bytes([body[a + 2], body[a + 3]]) & 0x3fff;
                if alen < 4 || a + alen > body.len() {
                    break;
                }
                let v = &body[a + 4..a + alen];
                match akind {
                    NDA_DST => dst = <[u8; 4]>::try_from(v).ok(),
                    NDA_LLADDR => ll = <[u8; 6]>::try_from(v).ok(),
                    _ => {}
                }
                a += (alen + 3) & !3;
            }
            if let (Some(d), Some(l)) = (dst, ll) {
                return Some((d, l));
            }
        }
        None
    })
}

fn parse_mac(s: &str) -> [u8; 6] {
    let v: Vec<u8> = s
        .trim()
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();
    v.try_into().unwrap()
}

fn agent(bin: &str, action: &str, extra: &[(&str, &str)]) -> Command {
    let mut c = Command::new(bin);
    c.arg(action)
        .env("OCF_ROOT", "/usr/lib/ocf")
        .env("OCF_RESOURCE_INSTANCE", "bench")
        .env("OCF_RESKEY_ip", VIP.to_string())
        .env("OCF_RESKEY_nic", "eth0")
        .stdin(Stdio::null())
        // IPaddr2's background send_arp keeps its stdout: never wait for EOF.
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in extra {
        c.env(format!("OCF_RESKEY_{k}"), v);
    }
    c
}

fn rc(mut c: Command) -> i32 {
    c.status().map(|s| s.code().unwrap_or(-1)).unwrap_or(-1)
}

/// The lab and the bench process's position in it.
struct Rig {
    client: harness::Ns,
    node: harness::Ns,
    node_mac: [u8; 6],
    watch: NeighWatch,
}

impl Rig {
    /// The client's entry for the VIP points at a MAC that is gone (untimed).
    fn make_stale(&mut self) {
        self.client.ok(&[
            "ip",
            "neigh",
            "replace",
            &VIP.to_string(),
            "lladdr",
            FAKE_MAC,
            "dev",
            "eth0",
            "nud",
            "stale",
        ]);
        self.watch.drain();
    }

    /// One sample: `start` is spawned at t0; the sample ends when the client's kernel
    /// reports the new MAC. `before`/`after` run untimed around it.
    fn sample(
        &mut self,
        name: &str,
        start: impl FnOnce() -> Command,
        after: impl FnOnce(),
    ) -> Duration {
        self.make_stale();
        let t0 = Instant::now();
        let mut child = start().spawn().expect("spawn start");
        let seen = self
            .watch
            .wait_for(VIP, self.node_mac, Duration::from_secs(5));
        let status = child.wait().map(|s| s.code().unwrap_or(-1)).unwrap_or(-1);
        after();
        if status != 0 {
            eprintln!("warning: {name} start returned {status}");
        }
        match seen {
            Some(t) => t - t0,
            None => {
                eprintln!("warning: {name}: the client never changed its entry (5 s)");
                Duration::from_secs(5)
            }
        }
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if !is_root() {
        println!("arp-refresh bench skipped: needs root (network namespaces)");
        return;
    }
    if !std::path::Path::new(IPADDR2).exists() {
        println!("arp-refresh bench skipped: {IPADDR2} not installed (resource-agents)");
        return;
    }
    let Some(mut lab) = harness::Lab::new("bench_arp_refresh") else {
        return;
    };
    let (_sw, hosts) = lab.star(&[
        ("node", &["10.213.0.1/24"]),
        ("client", &["10.213.0.100/24"]),
    ]);
    let (node, client) = (hosts[0].clone(), hosts[1].clone());
    let home = File::open("/proc/self/ns/net").expect("own netns");
    let node_ns = File::open(format!("/run/netns/{}", node.name)).expect("node netns");
    let client_ns = File::open(format!("/run/netns/{}", client.name)).expect("client netns");
    // The watcher belongs to the client's namespace; the bench then lives in the node's.
    setns(&client_ns);
    let watch = NeighWatch::open();
    setns(&node_ns);
    let node_mac = parse_mac(&node.mac("eth0"));
    // The node knows the client, so the unicast refresh has someone to tell.
    assert!(
        node.ping("10.213.0.100", "2"),
        "node cannot reach the client"
    );
    let mut rig = Rig {
        client,
        node: node.clone(),
        node_mac,
        watch,
    };
    println!(
        "start called -> client's neighbour entry for {VIP} changes; node {}, client {}",
        node.name, rig.client.name
    );

    let fip_params: &[(&str, &str)] = &[("cidr_netmask", "24")];
    let refresh_params: &[(&str, &str)] = &[("refresh", "both")];
    let mut results = Vec::new();
    let rig = std::cell::RefCell::new(&mut rig);

    let ipaddr2 = || {
        Contender::new("IPaddr2 start", || {
            rig.borrow_mut().sample(
                "IPaddr2",
                || agent(IPADDR2, "start", fip_params),
                || {
                    rc(agent(IPADDR2, "stop", fip_params));
                },
            )
        })
    };
    results.push(ab(
        "floating-ip start vs IPaddr2 start",
        15,
        Contender::new("floating-ip start", || {
            rig.borrow_mut().sample(
                "floating-ip",
                || agent(FIP, "start", fip_params),
                || {
                    rc(agent(FIP, "stop", fip_params));
                },
            )
        }),
        ipaddr2(),
    ));
    results.push(ab(
        "arp-refresh start vs IPaddr2 start",
        15,
        Contender::new("arp-refresh start (both)", || {
            let node = rig.borrow().node.clone();
            node.ok(&["ip", "addr", "add", "10.213.0.50/24", "dev", "eth0"]);
            rig.borrow_mut().sample(
                "arp-refresh",
                || agent(REFRESH, "start", refresh_params),
                || {
                    rc(agent(REFRESH, "stop", refresh_params));
                    node.ok(&["ip", "addr", "del", "10.213.0.50/24", "dev", "eth0"]);
                },
            )
        }),
        ipaddr2(),
    ));
    summary(&results);
    println!("(goal: >= 20x faster than IPaddr2; IPaddr2 measured 48-67 ms, median 53 ms)");

    // Let background senders finish before the teardown kills what is left.
    std::thread::sleep(Duration::from_millis(300));
    setns(&home);
    drop(lab);
}
