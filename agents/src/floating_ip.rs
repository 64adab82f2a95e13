//! ocf:bulwark:floating-ip, a replacement for ocf:heartbeat:IPaddr2: a virtual IPv4 or
//! IPv6 address that moves between nodes. IPaddr2's parameter names and meanings; all
//! address work over netlink, no child process in start, stop or monitor.
//!
//! - monitor: one netlink address dump (filtered to the interface when `nic` is set),
//!   plus an ioctl for the interface's name/flags. Present -> 0, absent -> 7. Present on
//!   a link that is down -> 1 (the address cannot be served; "if in doubt, 1").
//! - start: idempotent; brings the link up if it is administratively down (as IPaddr2
//!   does), adds the address, waits for IPv6 DAD (a duplicate removes the address and
//!   fails), then announces it (see [`crate::announce`]).
//! - stop: idempotent; removes the address wherever this resource could have put it.
//!
//! Virtual MAC (`mac`, keepalived's use_vmac): the address goes on a macvlan device
//! (`vmac_interface`) on `nic` that carries `mac`, so the MAC moves with the address and
//! clients' caches never go stale; stop removes the device. Only the switch notices:
//! one MAC moving to another port, which it learns from the first frame (the
//! gratuitous ARP start sends from the macvlan). So that the parent does not answer ARP
//! for the address with its own MAC, or ask for clients with the address as sender,
//! the parent gets arp_ignore=1 and arp_announce=2 (keepalived sets arp_ignore too);
//! the old values are kept under /run/bulwark/floating-ip/ and restored when the last
//! bulwark macvlan leaves the parent. See docs/arp-refresh.md.
//!
//! Without `nic`, the interface (and, without `cidr_netmask`, the prefix) comes from the
//! route the kernel would use for `ip` (`ip route get fibmatch`: a directly connected,
//! non-default route), else from an interface address whose network covers `ip`; the
//! latter also works while a link is down and its routes are gone (resource-agents
//! #2188). Interfaces may be named by an altname. Host-specific problems (no such
//! interface, nothing covers `ip`) are exit 2, never 5; probes of them return 7.

use crate::announce::{self, Burst};
use crate::netlink::{self, Addr, Link, Netlink, NewAddr, NlError};
use ocf_metadata::log;
use ocf_metadata::{
    ActionSpec, AgentSpec, Context, Kind, OcfError, OcfExit, OcfResult, Param, ResourceAgent, Unit,
};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Interface alias of the macvlan devices this agent creates (a marker of ownership).
const VMAC_ALIAS: &str = "bulwark floating-ip vmac";
/// Where the parent's ARP settings are kept while bulwark macvlans sit on it.
const VMAC_STATE_DIR: &str = "/run/bulwark/floating-ip";
/// IPv4 settings of the parent changed for a virtual MAC: (name, value).
const PARENT_SYSCTLS: &[(&str, u32)] = &[("arp_ignore", 1), ("arp_announce", 2)];

const PARAMS: &[Param] = &[
    Param::new("ip", Kind::Ip, "IPv4 or IPv6 address")
        .required()
        .unique()
        .long(
            "The virtual IPv4 or IPv6 address to manage, e.g. 192.168.1.10 or 2001:db8::10 \
             (no prefix here: see cidr_netmask).",
        ),
    Param::new("nic", Kind::Interface, "Network interface").long(
        "The interface to put the address on; an altname works too. If unset, the \
         interface whose directly connected route (or address) covers ip is used, as \
         IPaddr2's findif does. Required for IPv6 link-local addresses.",
    ),
    Param::new("cidr_netmask", Kind::Netmask, "CIDR netmask").long(
        "The prefix length of the address, e.g. 24. If unset, it is taken from the route \
         or interface address that covers ip.",
    ),
    Param::new("broadcast", Kind::String, "Broadcast address").long(
        "IPv4 only. The broadcast address; '+' (the default behaviour) computes it from \
         ip and cidr_netmask, '-' sets none.",
    ),
    Param::new("iflabel", Kind::Interface, "Interface label").long(
        "IPv4 only. A label for the address; it is shown as nic:iflabel, which must be at \
         most 15 characters in total.",
    ),
    Param::new("preferred_lft", Kind::String, "Preferred lifetime")
        .default("forever")
        .long(
            "IPv6 only. The preferred lifetime of the address in seconds, or 'forever'. \
             0 keeps the address from being chosen as a source address.",
        ),
    Param::new("noprefixroute", Kind::Boolean, "No prefix route")
        .default("false")
        .long("Do not create a route for the prefix of the address."),
    Param::new("nodad", Kind::Boolean, "No duplicate address detection")
        .default("false")
        .long(
            "IPv6 only. Skip duplicate address detection: start neither waits for it nor \
             fails on a duplicate.",
        ),
    Param::new("mac", Kind::Mac, "Virtual MAC address").long(
        "Put the address on a macvlan device carrying this MAC (keepalived's use_vmac), \
         so the MAC moves with the address and clients' neighbour caches never go stale. \
         It must be a locally administered unicast MAC (second hex digit 2, 6, a or e, \
         e.g. 02:00:5e:10:00:01) used by nothing else on the LAN. The switch sees one MAC \
         move to another port and learns it from the gratuitous ARP start sends; some \
         NICs, hypervisors (MAC spoofing protection) and port-security settings refuse \
         a second MAC. stop removes the device. Set nic (or let it be found) to the \
         parent interface.",
    ),
    Param::new(
        "vmac_interface",
        Kind::Interface,
        "Virtual MAC interface name",
    )
    .long(
        "The name of the macvlan device for mac. Default: 'vmac' followed by the last \
         three octets of mac in hex, e.g. vmac100001.",
    ),
    Param::new(
        "arp_count",
        Kind::Integer { min: 1, max: 1000 },
        "Announcements on start",
    )
    .default("5")
    .long(
        "How many gratuitous ARPs (IPv4) or unsolicited Neighbour Advertisements (IPv6) \
         start sends. start returns once the first is on the wire; the rest follow in the \
         background, arp_interval apart.",
    ),
    Param::new(
        "arp_interval",
        Kind::Duration(Unit::Ms),
        "Interval between announcements",
    )
    .default("200")
    .long("Time between two announcements; a bare number is milliseconds."),
];

const ACTIONS: &[ActionSpec] = &[
    ActionSpec::new("start", "20s"),
    ActionSpec::new("stop", "20s"),
    ActionSpec::new("status", "20s"),
    ActionSpec::new("monitor", "20s").interval("10s").depth(0),
    ActionSpec::new("meta-data", "5s"),
    ActionSpec::new("validate-all", "20s"),
];

pub static SPEC: AgentSpec = AgentSpec {
    name: "floating-ip",
    version: env!("CARGO_PKG_VERSION"),
    shortdesc: "Floating IPv4/IPv6 address (IPaddr2 replacement)",
    longdesc: "Manages a virtual IPv4 or IPv6 address that moves between cluster nodes. \
               It takes IPaddr2's parameters with the same meanings, does all address work \
               over netlink without starting any program, and announces the address on \
               start with gratuitous ARP (IPv4) or unsolicited Neighbour Advertisements \
               (IPv6, after duplicate address detection). With mac set, the address lives \
               on a macvlan device carrying that virtual MAC, so the MAC moves with the \
               address and clients' neighbour caches never go stale; the switch sees the \
               MAC move to another port and learns it from the first announcement.",
    params: PARAMS,
    actions: ACTIONS,
};

/// The agent.
pub struct FloatingIp;

/// Broadcast choice for IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Brd {
    Auto,
    None,
    Addr(Ipv4Addr),
}

/// The configuration after the checks that need no host.
#[derive(Debug, Clone)]
struct Config {
    ip: IpAddr,
    nic: Option<String>,
    prefix: Option<u8>,
    broadcast: Brd,
    iflabel: Option<String>,
    preferred_lft: Option<u32>,
    noprefixroute: bool,
    nodad: bool,
    arp_count: u32,
    arp_interval: Duration,
    /// The virtual MAC and the name of its macvlan device.
    vmac: Option<([u8; 6], String)>,
}

/// Where the address goes on this host.
#[derive(Debug, Clone)]
struct Plan {
    link: Link,
    prefix: u8,
}

fn conf(msg: String) -> OcfError {
    OcfError::configured(msg)
}

fn nl_err(what: &str, e: NlError) -> OcfError {
    OcfError::generic(format!("{what}: {e}"))
}

fn open() -> OcfResult<Netlink> {
    Netlink::open().map_err(|e| OcfError::io("cannot open a netlink socket", e))
}

/// Parses `preferred_lft`: `forever` or a number of seconds (suffixes s, m, h, d).
fn parse_lft(s: &str) -> Option<Option<u32>> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("forever") || t.eq_ignore_ascii_case("infinity") {
        return Some(None);
    }
    let d = ocf_metadata::param::parse_duration(t, Unit::S)?;
    let secs = d.as_secs();
    if d.subsec_nanos() != 0 || secs >= u32::MAX as u64 {
        return None;
    }
    Some(Some(secs as u32))
}

fn mac_text(m: &[u8]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A virtual MAC must be a valid, unicast, locally administered address.
fn check_vmac(m: [u8; 6]) -> OcfResult<()> {
    let t = mac_text(&m);
    if m == [0; 6] {
        return Err(conf(format!("mac {t} is not a valid MAC address")));
    }
    if m[0] & 1 != 0 {
        return Err(conf(format!(
            "mac {t} is a multicast/broadcast MAC; a virtual MAC must be unicast \
             (first octet even, e.g. 02:...)"
        )));
    }
    if m[0] & 2 == 0 {
        return Err(conf(format!(
            "mac {t} is a globally unique (vendor) MAC; a virtual MAC must be locally \
             administered (second hex digit 2, 6, a or e, e.g. 02:...)"
        )));
    }
    Ok(())
}

impl Config {
    /// Every check that needs nothing but the parameters (exit 6 on failure).
    fn from_ctx(ctx: &Context) -> OcfResult<Config> {
        let p = &ctx.params;
        let ip = p
            .ip("ip")
            .ok_or_else(|| conf("required parameter 'ip' is not set".into()))?;
        let v4 = ip.is_ipv4();
        match ip {
            IpAddr::V4(a) => {
                if a.is_unspecified() || a.is_multicast() || a.is_broadcast() {
                    return Err(conf(format!(
                        "ip {a} is not a unicast address that a host can own"
                    )));
                }
            }
            IpAddr::V6(a) => {
                if a.is_unspecified() || a.is_multicast() || a.is_loopback() {
                    return Err(conf(format!(
                        "ip {a} is not a unicast address that a host can own"
                    )));
                }
            }
        }
        let prefix = match p.netmask("cidr_netmask") {
            Some((n, true)) if !v4 => {
                return Err(conf(format!(
                    "cidr_netmask {} is an IPv4 netmask; IPv6 address {ip} needs a prefix \
                     length (0-128)",
                    Ipv4Addr::from(if n == 0 { 0 } else { u32::MAX << (32 - n) })
                )))
            }
            Some((n, _)) => Some(n),
            None => None,
        };
        if let Some(n) = prefix {
            let max = if v4 { 32 } else { 128 };
            if n > max {
                return Err(conf(format!(
                    "cidr_netmask {n} is out of range for {} address {ip} (0-{max})",
                    if v4 { "IPv4" } else { "IPv6" }
                )));
            }
        }
        let nic = p.str("nic").map(str::to_string);
        if let IpAddr::V6(a) = ip {
            if a.segments()[0] & 0xffc0 == 0xfe80 && nic.is_none() {
                return Err(conf(format!(
                    "ip {a} is an IPv6 link-local address: nic must be set"
                )));
            }
        }
        let broadcast = match p.str("broadcast").map(str::trim) {
            None | Some("+") => Brd::Auto,
            Some("-") => Brd::None,
            Some(b) => {
                if !v4 {
                    return Err(conf(format!(
                        "broadcast is for IPv4 only; {ip} is an IPv6 address"
                    )));
                }
                Brd::Addr(b.parse::<Ipv4Addr>().map_err(|_| {
                    conf(format!(
                        "broadcast {b:?} is not an IPv4 address, '+' or '-'"
                    ))
                })?)
            }
        };
        // nic:iflabel is checked against the interface's real name in `label`
        // (nic may be an altname).
        let iflabel = p.str("iflabel").map(str::to_string);
        let lft_raw = p.str("preferred_lft").unwrap_or("forever");
        let preferred_lft = parse_lft(lft_raw).ok_or_else(|| {
            conf(format!(
                "preferred_lft {lft_raw:?} is not 'forever' or a number of seconds"
            ))
        })?;
        let vmac = match (p.mac("mac"), p.str("vmac_interface")) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(conf(
                    "vmac_interface is set but mac is not; set mac for a virtual MAC".into(),
                ))
            }
            (Some(m), name) => {
                check_vmac(m)?;
                let name = name
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("vmac{:02x}{:02x}{:02x}", m[3], m[4], m[5]));
                Some((m, name))
            }
        };
        Ok(Config {
            ip,
            nic,
            prefix,
            broadcast,
            iflabel,
            preferred_lft,
            noprefixroute: p.flag("noprefixroute"),
            nodad: p.flag("nodad"),
            arp_count: p.int("arp_count").unwrap_or(5).clamp(1, 1000) as u32,
            arp_interval: p
                .duration("arp_interval")
                .unwrap_or(Duration::from_millis(200)),
            vmac,
        })
    }

    /// The name of the interface that holds the address: the macvlan device with a
    /// virtual MAC, else `nic` (if set).
    fn holder_name(&self) -> Option<&str> {
        match &self.vmac {
            Some((_, name)) => Some(name),
            None => self.nic.as_deref(),
        }
    }

    fn family(&self) -> u8 {
        netlink::family(&self.ip)
    }

    /// Finds interface and prefix on this host (exit 2 when this host cannot).
    fn plan(&self, nl: &mut Netlink) -> OcfResult<Plan> {
        let link = match &self.nic {
            Some(n) => Some(
                nl.link_by_name(n)
                    .map_err(|e| nl_err(&format!("cannot look up interface {n}"), e))?
                    .ok_or_else(|| OcfError::args(format!("interface {n} does not exist")))?,
            ),
            None => None,
        };
        if let (Some(l), Some(p)) = (&link, self.prefix) {
            return Ok(Plan {
                link: l.clone(),
                prefix: p,
            });
        }
        let (index, prefix) = self.findif(nl, link.as_ref().map(|l| l.index))?;
        let link = match link {
            Some(l) => l,
            None => nl
                .link_by_index(index)
                .map_err(|e| nl_err("cannot look up interface", e))?
                .ok_or_else(|| OcfError::args(format!("interface #{index} vanished")))?,
        };
        Ok(Plan {
            link,
            prefix: self.prefix.unwrap_or(prefix),
        })
    }

    /// Interface index and prefix covering `ip`, like IPaddr2's findif: the kernel's
    /// connected route first, then interface addresses (which survive a down link).
    fn findif(&self, nl: &mut Netlink, only: Option<u32>) -> OcfResult<(u32, u8)> {
        let ip = self.ip;
        if let Some(r) = nl
            .route_covering(&ip)
            .map_err(|e| nl_err("route lookup failed", e))?
        {
            let connected =
                r.kind == netlink::RTN_UNICAST && r.prefix > 0 && !r.gateway && r.oif != 0;
            if connected && only.is_none_or(|i| i == r.oif) {
                return Ok((r.oif, r.prefix));
            }
        }
        let addrs = nl
            .addresses(self.family(), only)
            .map_err(|e| nl_err("address dump failed", e))?;
        let covering = |a: &&Addr| a.prefix > 0 && netlink::in_prefix(&ip, &a.ip, a.prefix);
        let mut candidates: Vec<&Addr> = addrs
            .iter()
            .filter(|a| a.ip != ip)
            .filter(covering)
            .collect();
        if candidates.is_empty() {
            // Only the address itself is there (added by hand, or a repeated start):
            // its own prefix is the answer, as its connected route would be for findif.
            candidates = addrs
                .iter()
                .filter(|a| a.ip == ip)
                .filter(covering)
                .collect();
        }
        let mut best: Option<&Addr> = None;
        let mut ambiguous = false;
        for a in candidates {
            match best {
                Some(b) if a.prefix < b.prefix => {}
                Some(b) if a.prefix == b.prefix && a.index != b.index => ambiguous = true,
                Some(b) if a.prefix == b.prefix => {}
                _ => {
                    ambiguous = false;
                    best = Some(a);
                }
            }
        }
        match best {
            Some(_) if ambiguous => Err(OcfError::args(format!(
                "more than one interface has a network covering {ip}; set nic"
            ))),
            Some(b) => Ok((b.index, b.prefix)),
            None => Err(OcfError::args(match &self.nic {
                Some(n) => format!("no route or address on {n} covers {ip}; set cidr_netmask"),
                None => format!(
                    "no interface has a route or address covering {ip}; set nic (and cidr_netmask)"
                ),
            })),
        }
    }

    /// Host checks for the label (needs the interface's real name).
    fn label(&self, link: &Link) -> OcfResult<Option<String>> {
        let Some(l) = &self.iflabel else {
            return Ok(None);
        };
        if !self.ip.is_ipv4() {
            log::warn("iflabel is ignored for IPv6 addresses");
            return Ok(None);
        }
        let full = format!("{}:{l}", link.name);
        if full.len() > 15 {
            return Err(conf(format!(
                "the label {full} is longer than 15 characters"
            )));
        }
        Ok(Some(full))
    }

    /// Our address as found on the host: entries equal to `ip`, on `index` if given.
    fn find(&self, nl: &mut Netlink, index: Option<u32>) -> OcfResult<Vec<Addr>> {
        Ok(nl
            .addresses(self.family(), index)
            .map_err(|e| nl_err("address dump failed", e))?
            .into_iter()
            .filter(|a| a.ip == self.ip)
            .collect())
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn require_root(what: &str) -> OcfResult<()> {
    if is_root() {
        Ok(())
    } else {
        Err(OcfError::perm(format!("{what} needs root privileges")))
    }
}

/// Waits until IPv6 DAD has finished for the address; removes it and fails on a
/// duplicate or when the deadline passes.
fn wait_dad(nl: &mut Netlink, cfg: &Config, index: u32, deadline: Instant) -> OcfResult<()> {
    loop {
        let found = cfg.find(nl, Some(index))?;
        let Some(a) = found.first() else {
            return Err(OcfError::generic(format!(
                "{} vanished from the interface during duplicate address detection",
                cfg.ip
            )));
        };
        if a.flags & netlink::IFA_F_DADFAILED != 0 {
            let _ = nl.del_address(a);
            return Err(OcfError::generic(format!(
                "duplicate address detected: another host already uses {}; address removed",
                cfg.ip
            )));
        }
        if a.flags & netlink::IFA_F_TENTATIVE == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let _ = nl.del_address(a);
            return Err(OcfError::generic(format!(
                "duplicate address detection for {} did not finish in time (no carrier?); \
                 address removed",
                cfg.ip
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The announcement for the address on `link`.
fn burst(cfg: &Config, link: &Link) -> Option<Burst> {
    let mac = link.mac6().filter(|_| link.announces())?;
    let frame = match cfg.ip {
        IpAddr::V4(a) => announce::gratuitous_arp(announce::ARP_REQUEST, mac, a),
        IpAddr::V6(a) => announce::unsolicited_na(mac, a),
    };
    Some(Burst {
        ifindex: link.index,
        frames: vec![frame],
        rounds: cfg.arp_count,
        interval: cfg.arp_interval,
    })
}

/// The macvlan device for a virtual MAC, as found before start.
enum VmacState {
    /// It exists (ours, on the right parent, with the right MAC).
    Present(Link),
    /// It does not exist yet; it will go on `parent`.
    Absent { parent: Link },
}

/// True when `l` is a macvlan device this agent made for `mac`.
fn is_our_vmac(l: &Link, mac: [u8; 6]) -> bool {
    l.kind_name.as_deref() == Some("macvlan")
        && l.mac6() == Some(mac)
        && l.alias.as_deref() == Some(VMAC_ALIAS)
}

/// Finds the macvlan device `name` for `mac`. `planned` is the interface the plan
/// chose: the parent, or (when the address is already up) the macvlan itself.
fn vmac_lookup(nl: &mut Netlink, planned: &Link, mac: [u8; 6], name: &str) -> OcfResult<VmacState> {
    let parent = if planned.kind_name.as_deref() == Some("macvlan") && planned.mac6() == Some(mac) {
        match planned
            .parent
            .and_then(|p| nl.link_by_index(p).ok().flatten())
        {
            Some(p) => p,
            None => {
                return Err(OcfError::generic(format!(
                    "cannot find the parent of {}",
                    planned.name
                )))
            }
        }
    } else {
        planned.clone()
    };
    if parent.kind_name.as_deref() == Some("macvlan") || !parent.announces() {
        return Err(OcfError::args(format!(
            "interface {} cannot carry a virtual MAC (it is a macvlan, loopback or has no \
             Ethernet address); set nic to the physical interface",
            parent.name
        )));
    }
    match nl
        .link_by_name(name)
        .map_err(|e| nl_err(&format!("cannot look up interface {name}"), e))?
    {
        None => Ok(VmacState::Absent { parent }),
        Some(l) if is_our_vmac(&l, mac) && l.parent == Some(parent.index) => {
            Ok(VmacState::Present(l))
        }
        Some(l) => Err(OcfError::generic(format!(
            "interface {name} already exists and is not the macvlan for {} on {} \
             (kind {}, MAC {}); set vmac_interface to another name",
            mac_text(&mac),
            parent.name,
            l.kind_name.as_deref().unwrap_or("device"),
            mac_text(&l.mac)
        ))),
    }
}

fn sysctl_path(ifname: &str, key: &str) -> PathBuf {
    PathBuf::from(format!("/proc/sys/net/ipv4/conf/{ifname}/{key}"))
}

fn sysctl_get(ifname: &str, key: &str) -> Option<u32> {
    std::fs::read_to_string(sysctl_path(ifname, key))
        .ok()
        .and_then(|v| v.trim().parse().ok())
}

fn sysctl_set(ifname: &str, key: &str, value: u32) -> OcfResult<()> {
    std::fs::write(sysctl_path(ifname, key), format!("{value}\n")).map_err(|e| {
        OcfError::io(
            format!("cannot set net.ipv4.conf.{ifname}.{key}={value}"),
            e,
        )
    })
}

/// The saved ARP settings of parent `ifname` in this network namespace.
fn parent_state_path(ifname: &str) -> PathBuf {
    PathBuf::from(VMAC_STATE_DIR).join(format!("parent-{ifname}@{}", netlink::netns_id()))
}

/// Keeps the parent from answering ARP for addresses it does not hold and from asking
/// with them as sender; saves the old values once (the first bulwark macvlan).
fn parent_arp_settings(parent: &str) -> OcfResult<()> {
    let saved = parent_state_path(parent);
    if !saved.exists() {
        let mut text = String::new();
        for (k, _) in PARENT_SYSCTLS {
            if let Some(v) = sysctl_get(parent, k) {
                text.push_str(&format!("{k}={v}\n"));
            }
        }
        std::fs::create_dir_all(VMAC_STATE_DIR)
            .and_then(|()| std::fs::write(&saved, text))
            .map_err(|e| OcfError::io(format!("cannot write {}", saved.display()), e))?;
    }
    for (k, want) in PARENT_SYSCTLS {
        if sysctl_get(parent, k).is_some_and(|v| v < *want) {
            sysctl_set(parent, k, *want)?;
        }
    }
    Ok(())
}

/// Restores the parent's ARP settings when no bulwark macvlan is left on it.
fn parent_restore(nl: &mut Netlink, parent: &Link) -> OcfResult<()> {
    let links = nl.links().map_err(|e| nl_err("link dump failed", e))?;
    if links
        .iter()
        .any(|l| l.parent == Some(parent.index) && l.alias.as_deref() == Some(VMAC_ALIAS))
    {
        return Ok(());
    }
    let saved = parent_state_path(&parent.name);
    let Ok(text) = std::fs::read_to_string(&saved) else {
        return Ok(());
    };
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=') {
            if let (true, Ok(v)) = (PARENT_SYSCTLS.iter().any(|(n, _)| *n == k), v.parse()) {
                sysctl_set(&parent.name, k, v)?;
            }
        }
    }
    let _ = std::fs::remove_file(&saved);
    log::info(&format!("restored the ARP settings of {}", parent.name));
    Ok(())
}

/// Creates the macvlan device for the virtual MAC on `parent`, up, with the ARP
/// settings the virtual MAC needs.
fn vmac_create(nl: &mut Netlink, cfg: &Config, parent: &Link, instance: &str) -> OcfResult<Link> {
    let Some((mac, name)) = &cfg.vmac else {
        return Err(OcfError::generic("no virtual MAC configured"));
    };
    if !parent.is_up() {
        log::info(&format!("bringing interface {} up", parent.name));
        nl.set_link_up(parent.index)
            .map_err(|e| nl_err(&format!("cannot set {} up", parent.name), e))?;
    }
    parent_arp_settings(&parent.name)?;
    if let Err(e) = nl.add_macvlan(
        parent.index,
        name,
        *mac,
        netlink::MACVLAN_MODE_BRIDGE,
        VMAC_ALIAS,
    ) {
        let _ = parent_restore(nl, parent);
        return Err(nl_err(
            &format!(
                "cannot create macvlan {name} with MAC {} on {} for {instance}",
                mac_text(mac),
                parent.name
            ),
            e,
        ));
    }
    let link = match nl.link_by_name(name) {
        Ok(Some(l)) => l,
        Ok(None) | Err(_) => {
            return Err(OcfError::generic(format!(
                "macvlan {name} vanished right after it was created"
            )))
        }
    };
    let setup = || -> OcfResult<()> {
        // Answer ARP only for addresses on the macvlan; accept what arrives on it
        // although the route back may point at the parent.
        sysctl_set(name, "arp_ignore", 1)?;
        sysctl_set(name, "rp_filter", 0)?;
        Ok(())
    };
    let up = setup().and_then(|()| {
        nl.set_link_up(link.index)
            .map_err(|e| nl_err(&format!("cannot set {name} up"), e))
    });
    if let Err(e) = up {
        let _ = vmac_remove(nl, link.index);
        return Err(e);
    }
    log::info(&format!(
        "created macvlan {name} with MAC {} on {}",
        mac_text(mac),
        parent.name
    ));
    Ok(nl.link_by_index(link.index).ok().flatten().unwrap_or(link))
}

/// Deletes the macvlan device `index` and restores its parent's settings if it was
/// the last one.
fn vmac_remove(nl: &mut Netlink, index: u32) -> OcfResult<()> {
    let link = nl
        .link_by_index(index)
        .map_err(|e| nl_err("cannot look up the macvlan", e))?;
    let Some(link) = link else { return Ok(()) };
    match nl.del_link(index) {
        Ok(()) => log::info(&format!("removed macvlan {}", link.name)),
        Err(e) if e.errno == libc::ENODEV => {}
        Err(e) => return Err(nl_err(&format!("cannot remove {}", link.name), e)),
    }
    if let Some(p) = link.parent.and_then(|p| nl.link_by_index(p).ok().flatten()) {
        parent_restore(nl, &p)?;
    }
    Ok(())
}

impl ResourceAgent for FloatingIp {
    fn spec(&self) -> &'static AgentSpec {
        &SPEC
    }

    fn validate(&self, ctx: &Context) -> OcfResult<()> {
        let cfg = Config::from_ctx(ctx)?;
        let mut nl = open()?;
        let plan = cfg.plan(&mut nl)?;
        cfg.label(&plan.link)?;
        Ok(())
    }

    fn start(&self, ctx: &Context) -> OcfResult<()> {
        require_root("start")?;
        let cfg = Config::from_ctx(ctx)?;
        let mut nl = open()?;
        let plan = cfg.plan(&mut nl)?;
        // With a virtual MAC, the address goes on the macvlan device (found or made
        // below); plan.link is its parent.
        let vm = match &cfg.vmac {
            Some((mac, name)) => Some(vmac_lookup(&mut nl, &plan.link, *mac, name)?),
            None => None,
        };
        let holder_index = match &vm {
            Some(VmacState::Present(l)) => Some(l.index),
            Some(VmacState::Absent { .. }) => None,
            None => Some(plan.link.index),
        };
        let existing = cfg.find(&mut nl, None)?;
        for a in &existing {
            if Some(a.index) != holder_index {
                return Err(OcfError::generic(format!(
                    "{} is already configured on another interface (#{}); not adding it",
                    cfg.ip, a.index
                )));
            }
        }
        let mut created = None;
        let mut link = match vm {
            Some(VmacState::Present(l)) => l,
            Some(VmacState::Absent { parent }) => {
                let l = vmac_create(&mut nl, &cfg, &parent, &ctx.instance)?;
                created = Some(l.index);
                l
            }
            None => plan.link.clone(),
        };
        // Whatever fails from here removes a macvlan this start made.
        let undo = |nl: &mut Netlink, e: OcfError| -> OcfError {
            if let Some(i) = created {
                let _ = vmac_remove(nl, i);
            }
            e
        };
        let label = cfg.label(&link).map_err(|e| undo(&mut nl, e))?;

        for a in &existing {
            if a.index != link.index {
                return Err(OcfError::generic(format!(
                    "{} is already configured on another interface (#{}); not adding it to {}",
                    cfg.ip, a.index, link.name
                )));
            }
            if a.prefix != plan.prefix {
                return Err(OcfError::generic(format!(
                    "{} is already configured on {} as /{}, not /{}",
                    cfg.ip, link.name, a.prefix, plan.prefix
                )));
            }
        }
        let present = !existing.is_empty();

        if !link.is_up() {
            log::info(&format!("bringing interface {} up", link.name));
            nl.set_link_up(link.index)
                .map_err(|e| nl_err(&format!("cannot set {} up", link.name), e))?;
            if let Ok(Some(l)) = nl.link_by_index(link.index) {
                link = l;
            }
        }
        let link = &link;
        let deadline = ctx.deadline(Duration::from_secs(20));
        if present {
            if !cfg.nodad && cfg.ip.is_ipv6() {
                wait_dad(&mut nl, &cfg, link.index, deadline)?;
            }
            log::info(&format!("{} is already on {}", cfg.ip, link.name));
            return Ok(());
        }

        let mut flags = 0;
        if cfg.noprefixroute {
            flags |= netlink::IFA_F_NOPREFIXROUTE;
        }
        if cfg.nodad && cfg.ip.is_ipv6() {
            flags |= netlink::IFA_F_NODAD;
        }
        let broadcast = match (cfg.ip, cfg.broadcast) {
            (IpAddr::V4(a), Brd::Auto) => netlink::broadcast_of(a, plan.prefix),
            (IpAddr::V4(_), Brd::Addr(b)) => Some(b),
            _ => None,
        };
        let add = NewAddr {
            index: link.index,
            ip: cfg.ip,
            prefix: plan.prefix,
            broadcast,
            label,
            flags,
            preferred_lft: if cfg.ip.is_ipv6() {
                cfg.preferred_lft
            } else {
                None
            },
        };
        if let Err(e) = nl.add_address(&add) {
            let err = if cfg.ip.is_ipv6() && e.errno == libc::EACCES {
                OcfError::args(format!(
                    "cannot add {} to {}: IPv6 is disabled on it ({e})",
                    cfg.ip, link.name
                ))
            } else {
                nl_err(
                    &format!("cannot add {}/{} to {}", cfg.ip, plan.prefix, link.name),
                    e,
                )
            };
            return Err(undo(&mut nl, err));
        }
        log::info(&format!(
            "added {}/{} to {}",
            cfg.ip, plan.prefix, link.name
        ));
        if cfg.ip.is_ipv6() && !cfg.nodad {
            wait_dad(&mut nl, &cfg, link.index, deadline).map_err(|e| undo(&mut nl, e))?;
        }
        if !link.has_carrier() {
            log::warn(&format!(
                "interface {} has no carrier; the address is configured but unreachable",
                link.name
            ));
        }
        if let Some(b) = burst(&cfg, link) {
            let (ip, fam, index) = (cfg.ip, cfg.family(), link.index);
            let still_ours = move || {
                Netlink::open()
                    .ok()
                    .and_then(|mut n| n.addresses(fam, Some(index)).ok())
                    .is_some_and(|v| v.iter().any(|a| a.ip == ip))
            };
            match b.start(still_ours) {
                Ok(_) => {}
                // The address is up; failing the start for a lost announcement would
                // be worse than a slower client update.
                Err(e) => log::warn(&format!(
                    "could not announce {} on {}: {e}",
                    cfg.ip, link.name
                )),
            }
        }
        Ok(())
    }

    fn stop(&self, ctx: &Context) -> OcfResult<()> {
        require_root("stop")?;
        let cfg = match Config::from_ctx(ctx) {
            Ok(c) => c,
            Err(e) => {
                log::warn(&format!(
                    "stop with invalid configuration, nothing to do: {e}"
                ));
                return Ok(());
            }
        };
        let mut nl = open()?;
        let index = match cfg.holder_name() {
            Some(n) => match nl.index_of(n) {
                Ok(Some(i)) => Some(i),
                Ok(None) => {
                    log::info(&format!(
                        "interface {n} does not exist, so {} is not on it",
                        cfg.ip
                    ));
                    return Ok(());
                }
                Err(e) => return Err(OcfError::io(format!("cannot look up interface {n}"), e)),
            },
            None => None,
        };
        let found = cfg.find(&mut nl, index)?;
        if found.is_empty() && cfg.vmac.is_none() {
            log::info(&format!("{} is not configured; already stopped", cfg.ip));
            return Ok(());
        }
        for a in &found {
            match nl.del_address(a) {
                Ok(()) => log::info(&format!("removed {}/{}", a.ip, a.prefix)),
                Err(e) if e.errno == libc::EADDRNOTAVAIL || e.errno == libc::ENOENT => {}
                Err(e) => return Err(nl_err(&format!("cannot remove {}", a.ip), e)),
            }
        }
        if let (Some((mac, name)), Some(i)) = (&cfg.vmac, index) {
            match nl.link_by_index(i) {
                Ok(Some(l)) if is_our_vmac(&l, *mac) => vmac_remove(&mut nl, i)?,
                Ok(Some(_)) => log::warn(&format!(
                    "{name} is not a macvlan this agent made for {}; left alone",
                    mac_text(mac)
                )),
                Ok(None) => {}
                Err(e) => return Err(nl_err(&format!("cannot look up {name}"), e)),
            }
        }
        Ok(())
    }

    fn monitor(&self, ctx: &Context) -> OcfResult<OcfExit> {
        let cfg = Config::from_ctx(ctx)?;
        let mut nl = open()?;
        let index = match cfg.holder_name() {
            Some(n) => match nl.index_of(n) {
                Ok(Some(i)) => Some(i),
                Ok(None) => {
                    return Err(OcfError::NotRunning(format!(
                        "interface {n} does not exist"
                    )))
                }
                Err(e) => return Err(OcfError::io(format!("cannot look up interface {n}"), e)),
            },
            None => None,
        };
        let found = cfg.find(&mut nl, index)?;
        let Some(a) = found.first() else {
            return Ok(OcfExit::NotRunning);
        };
        if let Some(p) = cfg.prefix {
            if a.prefix != p {
                return Err(OcfError::generic(format!(
                    "{} is configured as /{}, not /{p}",
                    cfg.ip, a.prefix
                )));
            }
        }
        if a.flags & netlink::IFA_F_DADFAILED != 0 {
            return Err(OcfError::generic(format!(
                "{} failed duplicate address detection",
                cfg.ip
            )));
        }
        match nl.name_and_flags(a.index) {
            Ok(Some((name, flags))) => {
                if flags & netlink::IFF_UP == 0 || flags & netlink::IFF_RUNNING == 0 {
                    return Err(OcfError::generic(format!(
                        "{} is configured, but interface {name} is down",
                        cfg.ip
                    )));
                }
            }
            Ok(None) => return Ok(OcfExit::NotRunning),
            Err(e) => return Err(OcfError::io("cannot read interface flags", e)),
        }
        Ok(OcfExit::Success)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocf_metadata::{Action, Values};

    fn cfg(pairs: &[(&str, &str)]) -> OcfResult<Config> {
        let values = Values::from_pairs(SPEC.params, pairs)?;
        Config::from_ctx(&Context::for_params(Action::ValidateAll, values))
    }

    #[test]
    fn defaults() {
        let c = cfg(&[("ip", "10.213.0.50")]).unwrap();
        assert_eq!(c.arp_count, 5);
        assert_eq!(c.arp_interval, Duration::from_millis(200));
        assert_eq!(c.broadcast, Brd::Auto);
        assert_eq!(c.preferred_lft, None);
        assert!(!c.nodad && !c.noprefixroute);
    }

    #[test]
    fn static_checks_are_configuration_errors() {
        for bad in [
            vec![("ip", "10.213.0.50"), ("cidr_netmask", "33")],
            vec![("ip", "fd00:213::50"), ("cidr_netmask", "255.255.255.0")],
            vec![("ip", "fd00:213::50"), ("cidr_netmask", "129")],
            vec![("ip", "fe80::50")],
            vec![("ip", "224.0.0.5")],
            vec![("ip", "0.0.0.0")],
            vec![("ip", "ff02::1")],
            vec![("ip", "10.213.0.50"), ("broadcast", "10.213.0.256")],
            vec![("ip", "fd00:213::50"), ("broadcast", "10.213.0.255")],
            vec![("ip", "10.213.0.50"), ("preferred_lft", "soon")],
            vec![("ip", "10.213.0.50"), ("mac", "00:16:3e:00:00:01")],
            vec![("ip", "10.213.0.50"), ("mac", "03:00:00:00:00:01")],
            vec![("ip", "10.213.0.50"), ("mac", "ff:ff:ff:ff:ff:ff")],
            vec![("ip", "10.213.0.50"), ("mac", "00:00:00:00:00:00")],
            vec![("ip", "10.213.0.50"), ("mac", "02:00:00:00:01")],
            vec![("ip", "10.213.0.50"), ("vmac_interface", "vm0")],
        ] {
            let e = cfg(&bad).unwrap_err();
            assert_eq!(e.exit(), OcfExit::ErrConfigured, "{bad:?}: {e}");
        }
    }

    #[test]
    fn virtual_mac_and_its_default_interface() {
        let c = cfg(&[("ip", "10.213.0.50"), ("mac", "02:00:5e:10:00:01")]).unwrap();
        let (m, name) = c.vmac.clone().unwrap();
        assert_eq!(m, [2, 0, 0x5e, 0x10, 0, 1]);
        assert_eq!(name, "vmac100001");
        assert_eq!(c.holder_name(), Some("vmac100001"));
        let c = cfg(&[
            ("ip", "10.213.0.50"),
            ("mac", "0a:00:00:00:00:01"),
            ("vmac_interface", "vip0"),
        ])
        .unwrap();
        assert_eq!(c.vmac.unwrap().1, "vip0");
    }

    #[test]
    fn dotted_netmask_for_ipv4_only() {
        let c = cfg(&[("ip", "10.213.0.50"), ("cidr_netmask", "255.255.255.0")]).unwrap();
        assert_eq!(c.prefix, Some(24));
        let e = cfg(&[("ip", "fd00:213::50"), ("cidr_netmask", "255.255.255.0")]).unwrap_err();
        assert!(e.to_string().contains("is an IPv4 netmask"), "{e}");
        let c = cfg(&[("ip", "fd00:213::50"), ("cidr_netmask", "64")]).unwrap();
        assert_eq!(c.prefix, Some(64));
    }

    #[test]
    fn preferred_lifetimes() {
        assert_eq!(parse_lft("forever"), Some(None));
        assert_eq!(parse_lft("0"), Some(Some(0)));
        assert_eq!(parse_lft("300"), Some(Some(300)));
        assert_eq!(parse_lft("5m"), Some(Some(300)));
        assert_eq!(parse_lft("1.5"), None);
        assert_eq!(parse_lft("-1"), None);
    }

    #[test]
    fn spec_is_consistent() {
        SPEC.check().unwrap();
        assert!(SPEC.param("ip").unwrap().required);
    }
}
