//! The namespace harness: throw-away network namespaces ("nodes", "clients", "devices")
//! joined by veth pairs to a bridge that lives in its own "switch" namespace. Every name
//! is unique per process and test; everything is torn down on drop, also when the test
//! panics. All traffic stays inside namespaces the test created: nothing is attached to
//! the host's interfaces, and there is no route out.
//!
//! Use: `let Some(mut lab) = Lab::new("my_test") else { return };` (skips, with a printed
//! reason, only when not root).
#![allow(dead_code)]

use std::os::unix::fs::MetadataExt;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// True when running as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs a host command (not in a namespace) and panics with its stderr on failure.
pub fn host(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One network namespace of the lab.
#[derive(Debug, Clone)]
pub struct Ns {
    pub name: String,
}

impl Ns {
    /// A `Command` that runs `program` inside this namespace.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `args` inside the namespace and returns its output, whatever the status.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut c = self.cmd(args[0]);
        c.args(&args[1..]);
        c.output()
            .unwrap_or_else(|e| panic!("cannot run {args:?} in {}: {e}", self.name))
    }

    /// Runs `args` inside the namespace, panics on failure, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} in {} failed ({}): {}{}",
            self.name,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `args` in the background inside the namespace. It is killed at teardown
    /// (every process left in a lab namespace is).
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        let mut c = self.cmd(args[0]);
        c.args(&args[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = c
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {args:?} in {}: {e}", self.name));
        // Return only once the child has entered the namespace, so that a teardown
        // right after this call finds it in `ip netns pids`.
        let want = std::fs::metadata(format!("/run/netns/{}", self.name)).map(|m| m.ino());
        for _ in 0..200 {
            let have = std::fs::metadata(format!("/proc/{}/ns/net", child.id())).map(|m| m.ino());
            match (&want, have) {
                (Ok(w), Ok(h)) if *w == h => break,
                (_, Err(_)) => break, // already gone
                _ => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
        child
    }

    /// The MAC address of `ifname` in this namespace, lower case.
    pub fn mac(&self, ifname: &str) -> String {
        let out = self.ok(&["cat", &format!("/sys/class/net/{ifname}/address")]);
        out.trim().to_string()
    }

    /// The neighbour entry (lladdr) for `ip` on `ifname`, if any and not FAILED/INCOMPLETE.
    pub fn neigh_mac(&self, ifname: &str, ip: &str) -> Option<String> {
        let out = self.run(&["ip", "neigh", "show", "to", ip, "dev", ifname]);
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().next()?;
        let mut words = line.split_whitespace();
        while let Some(w) = words.next() {
            if w == "lladdr" {
                return words.next().map(|m| m.to_lowercase());
            }
        }
        None
    }

    /// True when one ping from this namespace to `ip` gets a reply within `wait_s`.
    pub fn ping(&self, ip: &str, wait_s: &str) -> bool {
        let out = self.run(&["ping", "-n", "-q", "-c", "1", "-W", wait_s, ip]);
        out.status.success()
    }
}

/// A lab: a set of namespaces owned by one test.
pub struct Lab {
    tag: String,
    namespaces: Vec<Ns>,
    ports: u32,
}

impl Lab {
    /// A new, empty lab for `test`. `None` (with the reason printed) when not root.
    pub fn new(test: &str) -> Option<Lab> {
        if !is_root() {
            eprintln!("skipped {test}: needs root for network namespaces");
            return None;
        }
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        Some(Lab {
            tag: format!("bw{}x{}", std::process::id(), n),
            namespaces: Vec::new(),
            ports: 0,
        })
    }

    /// The unique prefix of every name this lab creates.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// Creates a namespace named `<tag>-<role>` with `lo` up.
    pub fn ns(&mut self, role: &str) -> Ns {
        let name = format!("{}-{}", self.tag, role);
        host(&["ip", "netns", "add", &name]);
        let ns = Ns { name };
        self.namespaces.push(ns.clone());
        ns.ok(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// Creates a switch: a namespace holding bridge `br0` (STP off), up.
    pub fn switch(&mut self) -> Ns {
        let sw = self.ns("sw");
        sw.ok(&[
            "ip",
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "stp_state",
            "0",
        ]);
        sw.ok(&["ip", "link", "set", "br0", "up"]);
        // The switch itself never speaks IPv6.
        sw.ok(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
        sw
    }

    /// Connects `ns` to `sw`'s bridge by a veth pair: `ifname` inside `ns` (with `mac`
    /// if given), a port in the switch. Both ends up. Returns the port name.
    pub fn plug(&mut self, sw: &Ns, ns: &Ns, ifname: &str, mac: Option<&str>) -> String {
        self.ports += 1;
        let port = format!("p{}", self.ports);
        let mut args = vec!["ip", "link", "add", ifname];
        if let Some(m) = mac {
            args.extend(["address", m]);
        }
        args.extend(["type", "veth", "peer", "name", &port, "netns", &sw.name]);
        ns.ok(&args);
        sw.ok(&["ip", "link", "set", &port, "master", "br0"]);
        sw.ok(&["ip", "link", "set", &port, "up"]);
        ns.ok(&["ip", "link", "set", ifname, "up"]);
        port
    }

    /// Adds `addr` (CIDR) to `ifname` in `ns`; IPv6 addresses skip DAD.
    pub fn addr(&self, ns: &Ns, ifname: &str, cidr: &str) {
        if cidr.contains(':') {
            ns.ok(&["ip", "addr", "add", cidr, "dev", ifname, "nodad"]);
        } else {
            ns.ok(&["ip", "addr", "add", cidr, "dev", ifname]);
        }
    }

    /// Convenience: a switch plus `n` hosts named by `roles`, each with eth0 on the bridge
    /// and the given addresses.
    pub fn star(&mut self, hosts: &[(&str, &[&str])]) -> (Ns, Vec<Ns>) {
        let sw = self.switch();
        let mut out = Vec::new();
        for (role, addrs) in hosts {
            let ns = self.ns(role);
            self.plug(&sw, &ns, "eth0", None);
            for a in addrs.iter() {
                self.addr(&ns, "eth0", a);
            }
            out.push(ns);
        }
        (sw, out)
    }
}

/// Kills every process still inside `name` (they can only be ours), then deletes it.
fn teardown(name: &str) {
    // Repeat until the namespace is empty: a process may be entering it right now.
    for _ in 0..50 {
        let Ok(out) = Command::new("ip").args(["netns", "pids", name]).output() else {
            break;
        };
        let pids: Vec<i32> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            // SAFETY: sending a signal to a PID that lives in our own namespace.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let _ = Command::new("ip")
        .args(["netns", "del", name])
        .stderr(Stdio::null())
        .status();
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            teardown(&ns.name);
        }
    }
}

/// Names of namespaces that still exist with this process's prefix (for teardown tests).
pub fn leftover_namespaces(prefix: &str) -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output();
    let Ok(out) = out else { return Vec::new() };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_string)
        .collect()
}
