//! ocf:bulwark:arp-refresh: tells the LAN where one or more addresses live, for a
//! resource colocated with the address (our floating-ip, IPaddr2, or an address another
//! agent or a VM owns). It sends gratuitous ARP (request, reply or both) or IPv6
//! unsolicited NAs, and/or a **unicast refresh**: a directed ARP request (IPv6: NA) to
//! every neighbour the kernel knows on the interface, which also reaches hosts that
//! ignore broadcast gratuitous ARP (see [`crate::announce`]).
//!
//! - start: optional `flush_local`, announce (first round on the wire when start
//!   returns, the rest paced by `arp_interval` in a detached sender), mark started.
//! - monitor: 7 when not started. Else, when `refresh_interval` is set and that much
//!   time has passed since the last announcement, announce again (like IPaddr2's
//!   `arp_count_refresh`, but timed); 0. A silent LAN (no neighbours known, nobody
//!   answering) is never a failure: announcing is fire and forget.
//! - stop: remove the mark; a background sender sees it gone and ends.
//!
//! The mark is a small state file, `/run/bulwark/arp-refresh/<instance>@<netns>`, with
//! the time of the last announcement. The network namespace (its cookie, see
//! [`netlink::netns_id`]) is part of the name because the resource lives in a namespace:
//! two namespaces on one host (a lab, or containers) are two places it can run.

use crate::announce::{self, Announcement, ArpMode, Burst, Refresh};
use crate::netlink::{self, Link, Netlink, NlError};
use ocf_metadata::log;
use ocf_metadata::{
    ActionSpec, AgentSpec, Context, Kind, OcfError, OcfExit, OcfResult, Param, ResourceAgent, Unit,
};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the marks live.
pub const STATE_DIR: &str = "/run/bulwark/arp-refresh";
/// At most this many addresses per resource.
const MAX_IPS: usize = 256;

const PARAMS: &[Param] = &[
    Param::new("ip", Kind::String, "Addresses to announce")
        .required()
        .unique()
        .long(
            "One or more IPv4 and/or IPv6 addresses to announce, separated by spaces or \
             commas, e.g. '192.168.1.10 2001:db8::10'. The resource does not own them: \
             colocate it with the resource that does (floating-ip, IPaddr2, a VM).",
        ),
    Param::new("nic", Kind::Interface, "Network interface").long(
        "The interface to announce on; an altname works too. If unset, each address is \
         announced on the interface that holds it, else on the interface whose directly \
         connected route covers it.",
    ),
    Param::new(
        "arp_mode",
        Kind::Enum(ArpMode::WORDS),
        "Gratuitous ARP form",
    )
    .default("both")
    .long(
        "IPv4 gratuitous ARP as a broadcast 'request' (RFC 5227 announcement, what \
         send_arp sends), as a 'reply' (arping -A; some switches and firewalls learn only \
         from replies, resource-agents PR #977), or 'both'.",
    ),
    Param::new(
        "arp_count",
        Kind::Integer { min: 1, max: 1000 },
        "Announcement rounds",
    )
    .default("5")
    .long(
        "How many rounds start (and each due refresh) sends. A round is every gratuitous \
         packet and/or every unicast refresh packet. The first round is on the wire when \
         the action returns; the rest follow in the background, arp_interval apart.",
    ),
    Param::new(
        "arp_interval",
        Kind::Duration(Unit::Ms),
        "Interval between rounds",
    )
    .default("200")
    .long("Time between two rounds; a bare number is milliseconds. 5 rounds take 4 intervals."),
    Param::new("refresh", Kind::Enum(Refresh::WORDS), "How the LAN is told")
        .default("both")
        .long(
            "'gratuitous': broadcast gratuitous ARP (IPv6: unsolicited NA to ff02::1 with \
             Override). 'unicast': an ARP request (IPv6: a unicast NA with Override) sent \
             to every neighbour this host's kernel knows on the interface, with the \
             address as sender; hosts that ignore gratuitous ARP still update their entry \
             from a request addressed to them. 'both': both.",
        ),
    Param::new(
        "refresh_interval",
        Kind::Duration(Unit::S),
        "Re-announce interval",
    )
    .default("0")
    .long(
        "When set, a recurring monitor announces again once this much time has passed \
         since the last announcement (like IPaddr2's arp_count_refresh, but timed), for \
         switches and hosts whose caches went stale after a split brain. A bare number \
         is seconds; 0 turns it off.",
    ),
    Param::new("mac", Kind::Mac, "Owner's MAC address").long(
        "The MAC address the announcements carry as the addresses' owner. Default: the \
         MAC of the interface that holds the address. Set it for an address this host \
         does not hold (e.g. a VM's, or a virtual MAC elsewhere); without it such an \
         address is not announced, since announcing it with this host's MAC would take \
         its traffic.",
    ),
    Param::new(
        "flush_local",
        Kind::Boolean,
        "Flush local neighbour entries",
    )
    .default("false")
    .long(
        "Before announcing, delete this host's own neighbour entries for the \
             addresses (stale entries that still point at the previous owner).",
    ),
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
    name: "arp-refresh",
    version: env!("CARGO_PKG_VERSION"),
    shortdesc: "Gratuitous ARP, unsolicited NA and unicast neighbour refresh for addresses",
    longdesc: "Announces one or more addresses on the LAN so that switches, routers and \
               hosts follow a takeover at once: gratuitous ARP as request, reply or both, \
               IPv6 unsolicited Neighbour Advertisements with Override, and a unicast \
               refresh that sends a directed ARP request (IPv6: NA) to every neighbour the \
               kernel knows, which reaches hosts that ignore gratuitous ARP. Colocate it \
               with the address (ocf:bulwark:floating-ip, ocf:heartbeat:IPaddr2, or an \
               address another agent or a VM owns) and order it after it. Optionally \
               re-announces from monitor every refresh_interval. It never fails because \
               the LAN is silent.",
    params: PARAMS,
    actions: ACTIONS,
};

/// The agent.
pub struct ArpRefresh;

/// The configuration after the checks that need no host.
#[derive(Debug, Clone)]
struct Config {
    ips: Vec<IpAddr>,
    nic: Option<String>,
    mode: ArpMode,
    count: u32,
    interval: Duration,
    refresh: Refresh,
    refresh_interval: Duration,
    flush_local: bool,
    /// The sender MAC for every address (the owner's), instead of the interface's.
    mac: Option<[u8; 6]>,
}

fn conf(msg: String) -> OcfError {
    OcfError::configured(msg)
}

fn nl_err(what: &str, e: NlError) -> OcfError {
    OcfError::generic(format!("{what}: {e}"))
}

/// Parses the `ip` list: addresses separated by whitespace or commas.
fn parse_ips(raw: &str) -> OcfResult<Vec<IpAddr>> {
    let mut out: Vec<IpAddr> = Vec::new();
    for word in raw.split(|c: char| c == ',' || c.is_whitespace()) {
        if word.is_empty() {
            continue;
        }
        let ip: IpAddr = word.parse().map_err(|_| {
            let shown: String = word.chars().take(60).collect();
            conf(format!(
                "ip: {shown:?} is not an IPv4 or IPv6 address (no prefix, no name)"
            ))
        })?;
        let ok = match ip {
            IpAddr::V4(a) => !(a.is_unspecified() || a.is_multicast() || a.is_broadcast()),
            IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast() || a.is_loopback()),
        };
        if !ok {
            return Err(conf(format!(
                "ip: {ip} is not a unicast address that a host can own"
            )));
        }
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    if out.is_empty() {
        return Err(conf("ip: no address given".into()));
    }
    if out.len() > MAX_IPS {
        return Err(conf(format!(
            "ip: {} addresses given; at most {MAX_IPS} per resource",
            out.len()
        )));
    }
    Ok(out)
}

impl Config {
    fn from_ctx(ctx: &Context) -> OcfResult<Config> {
        let p = &ctx.params;
        let ips = parse_ips(
            p.str("ip")
                .ok_or_else(|| conf("required parameter 'ip' is not set".into()))?,
        )?;
        let nic = p.str("nic").map(str::to_string);
        for ip in &ips {
            if let IpAddr::V6(a) = ip {
                if a.segments()[0] & 0xffc0 == 0xfe80 && nic.is_none() {
                    return Err(conf(format!(
                        "ip {a} is an IPv6 link-local address: nic must be set"
                    )));
                }
            }
        }
        Ok(Config {
            ips,
            nic,
            mode: p
                .str("arp_mode")
                .and_then(ArpMode::parse)
                .unwrap_or(ArpMode::Both),
            count: p.int("arp_count").unwrap_or(5).clamp(1, 1000) as u32,
            interval: p
                .duration("arp_interval")
                .unwrap_or(Duration::from_millis(200)),
            refresh: p
                .str("refresh")
                .and_then(Refresh::parse)
                .unwrap_or(Refresh::Both),
            refresh_interval: p.duration("refresh_interval").unwrap_or(Duration::ZERO),
            flush_local: p.flag("flush_local"),
            mac: match p.mac("mac") {
                Some(m) if m[0] & 1 != 0 || m == [0; 6] => {
                    return Err(conf(format!(
                        "mac {} is not a unicast MAC address",
                        m.iter()
                            .map(|b| format!("{b:02x}"))
                            .collect::<Vec<_>>()
                            .join(":")
                    )))
                }
                m => m,
            },
        })
    }

    /// Where each address is announced on this host: one [`Announcement`] per
    /// interface and sender MAC (exit 2 when this host has no suitable interface).
    /// An address configured on this host goes out of the interface holding it (when
    /// `nic` is set: if that is `nic` or a macvlan on it) with that interface's MAC;
    /// any other address out of `nic` or the interface whose connected route covers it.
    fn plan(&self, nl: &mut Netlink) -> OcfResult<Plan> {
        let fixed = match &self.nic {
            Some(n) => Some(
                nl.link_by_name(n)
                    .map_err(|e| nl_err(&format!("cannot look up interface {n}"), e))?
                    .ok_or_else(|| OcfError::args(format!("interface {n} does not exist")))?,
            ),
            None => None,
        };
        let mut held = nl
            .addresses(libc::AF_INET as u8, None)
            .map_err(|e| nl_err("address dump failed", e))?;
        held.extend(
            nl.addresses(libc::AF_INET6 as u8, None)
                .map_err(|e| nl_err("address dump failed", e))?,
        );
        let mut plan = Plan::default();
        for ip in &self.ips {
            let holder = match held.iter().find(|a| a.ip == *ip) {
                Some(a) => nl
                    .link_by_index(a.index)
                    .map_err(|e| nl_err("cannot look up interface", e))?,
                None => None,
            };
            let link = match (holder, &fixed) {
                (Some(h), Some(f)) if h.index == f.index || h.parent == Some(f.index) => h,
                (Some(h), None) => h,
                (h, Some(f)) => {
                    if let Some(h) = h {
                        log::warn(&format!(
                            "{ip} is on {}, announcing it on {} as nic says",
                            h.name, f.name
                        ));
                    }
                    f.clone()
                }
                (None, None) => {
                    let index = covering(nl, ip)?;
                    nl.link_by_index(index)
                        .map_err(|e| nl_err("cannot look up interface", e))?
                        .ok_or_else(|| OcfError::args(format!("interface #{index} vanished")))?
                }
            };
            if !held.iter().any(|a| a.ip == *ip) {
                plan.foreign.push(*ip);
            }
            let Some(own_mac) = link.mac6().filter(|_| link.announces()) else {
                return Err(OcfError::args(format!(
                    "interface {} carries no ARP/neighbour discovery (loopback, NOARP or \
                     no Ethernet address); cannot announce {ip} there",
                    link.name
                )));
            };
            let mac = self.mac.unwrap_or(own_mac);
            match plan
                .announcements
                .iter_mut()
                .find(|a| a.ifindex == link.index && a.mac == mac)
            {
                Some(a) => a.ips.push(*ip),
                None => plan.announcements.push(Announcement {
                    ifindex: link.index,
                    mac,
                    neighbour_links: neighbour_links(&link),
                    ips: vec![*ip],
                    mode: self.mode,
                    refresh: self.refresh,
                }),
            }
        }
        Ok(plan)
    }

    /// The plan without the addresses this host does not hold, unless `mac` says whose
    /// they are: announcing someone else's address with our MAC would steal its
    /// traffic. Also returns the addresses left out.
    fn without_foreign(&self, mut plan: Plan) -> (Plan, Vec<IpAddr>) {
        if self.mac.is_some() || plan.foreign.is_empty() {
            return (plan, Vec::new());
        }
        let foreign = std::mem::take(&mut plan.foreign);
        for a in &mut plan.announcements {
            a.ips.retain(|ip| !foreign.contains(ip));
        }
        plan.announcements.retain(|a| !a.ips.is_empty());
        (plan, foreign)
    }
}

/// What to announce where.
#[derive(Debug, Default)]
struct Plan {
    announcements: Vec<Announcement>,
    /// Addresses not configured on this host.
    foreign: Vec<IpAddr>,
}

/// The interfaces whose neighbours a refresh on `link` reaches: itself and, for a
/// macvlan (a virtual MAC), its parent, which knows the hosts on that wire.
fn neighbour_links(link: &Link) -> Vec<u32> {
    let mut v = vec![link.index];
    if link.kind_name.as_deref() == Some("macvlan") {
        if let Some(p) = link.parent.filter(|p| *p != 0) {
            v.push(p);
        }
    }
    v
}

/// The interface of the directly connected route covering `ip`.
fn covering(nl: &mut Netlink, ip: &IpAddr) -> OcfResult<u32> {
    let r = nl
        .route_covering(ip)
        .map_err(|e| nl_err("route lookup failed", e))?;
    match r {
        Some(r) if r.kind == netlink::RTN_UNICAST && !r.gateway && r.oif != 0 => Ok(r.oif),
        _ => Err(OcfError::args(format!(
            "no interface holds {ip} or has a connected route covering it; set nic"
        ))),
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The mark of this resource instance in this network namespace.
fn state_path(instance: &str) -> PathBuf {
    let safe: String = instance
        .chars()
        .take(100)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.:".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    PathBuf::from(STATE_DIR).join(format!("{safe}@{}", netlink::netns_id()))
}

/// The time (ms since the epoch) of the last announcement, if marked started.
fn read_mark(path: &Path) -> OcfResult<Option<u64>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(
            t.lines()
                .find_map(|l| l.strip_prefix("last="))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(OcfError::io(format!("cannot read {}", path.display()), e)),
    }
}

/// Writes the mark atomically (temporary file + rename).
fn write_mark(path: &Path, last: u64) -> OcfResult<()> {
    let dir = path.parent().unwrap_or(Path::new(STATE_DIR));
    std::fs::create_dir_all(dir)
        .map_err(|e| OcfError::io(format!("cannot create {}", dir.display()), e))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, format!("last={last}\n"))
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            OcfError::io(format!("cannot write {}", path.display()), e)
        })
}

/// Sends every announcement: the first round now, the rest in the background while the
/// mark exists. Problems on the wire are warnings: a silent or unreachable LAN is not
/// this resource's failure.
fn announce(cfg: &Config, nl: &mut Netlink, plan: &[Announcement], mark: &Path) {
    if cfg.flush_local {
        match announce::flush_local(nl, &cfg.ips, None) {
            Ok(0) => {}
            Ok(n) => log::info(&format!("flushed {n} local neighbour entries")),
            Err(e) => log::warn(&format!("cannot flush local neighbour entries: {e}")),
        }
    }
    for a in plan {
        let frames = match a.frames(nl) {
            Ok(f) => f,
            Err(e) => {
                log::warn(&format!("cannot read the neighbour table: {e}"));
                announce::Announcement {
                    refresh: Refresh::Gratuitous,
                    ..a.clone()
                }
                .frames(nl)
                .unwrap_or_default()
            }
        };
        if frames.is_empty() {
            log::info(&format!(
                "no known neighbours on interface #{} to refresh; nothing to send",
                a.ifindex
            ));
            continue;
        }
        let n = frames.len();
        let burst = Burst {
            ifindex: a.ifindex,
            frames,
            rounds: cfg.count,
            interval: cfg.interval,
        };
        let mark = mark.to_path_buf();
        match burst.start(move || mark.exists()) {
            Ok(_) => log::info(&format!(
                "announced {} on interface #{}: {n} packets, {} rounds",
                join(&a.ips),
                a.ifindex,
                cfg.count
            )),
            Err(e) => log::warn(&format!(
                "could not announce {} on interface #{}: {e}",
                join(&a.ips),
                a.ifindex
            )),
        }
    }
}

fn join(ips: &[IpAddr]) -> String {
    ips.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

fn open() -> OcfResult<Netlink> {
    Netlink::open().map_err(|e| OcfError::io("cannot open a netlink socket", e))
}

impl ResourceAgent for ArpRefresh {
    fn spec(&self) -> &'static AgentSpec {
        &SPEC
    }

    fn validate(&self, ctx: &Context) -> OcfResult<()> {
        let cfg = Config::from_ctx(ctx)?;
        let mut nl = open()?;
        // Addresses need not be here yet: the resource holding them may start later.
        cfg.plan(&mut nl)?;
        Ok(())
    }

    fn start(&self, ctx: &Context) -> OcfResult<()> {
        if !is_root() {
            return Err(OcfError::perm("start needs root privileges"));
        }
        let cfg = Config::from_ctx(ctx)?;
        let mut nl = open()?;
        let (plan, foreign) = cfg.without_foreign(cfg.plan(&mut nl)?);
        if !foreign.is_empty() {
            return Err(OcfError::generic(format!(
                "{} not configured on this host: start arp-refresh after the resource \
                 that holds it, or set mac to its owner's MAC",
                join(&foreign)
            )));
        }
        let mark = state_path(&ctx.instance);
        // Marked first: the background sender goes on only while the mark exists.
        write_mark(&mark, now_ms())?;
        announce(&cfg, &mut nl, &plan.announcements, &mark);
        Ok(())
    }

    fn stop(&self, ctx: &Context) -> OcfResult<()> {
        if !is_root() {
            return Err(OcfError::perm("stop needs root privileges"));
        }
        let mark = state_path(&ctx.instance);
        match std::fs::remove_file(&mark) {
            Ok(()) => log::info("stopped announcing"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                log::info("not started; already stopped")
            }
            Err(e) => return Err(OcfError::io(format!("cannot remove {}", mark.display()), e)),
        }
        Ok(())
    }

    fn monitor(&self, ctx: &Context) -> OcfResult<OcfExit> {
        let cfg = Config::from_ctx(ctx)?;
        let mark = state_path(&ctx.instance);
        let Some(last) = read_mark(&mark)? else {
            return Ok(OcfExit::NotRunning);
        };
        if ctx.is_probe() || cfg.refresh_interval.is_zero() {
            return Ok(OcfExit::Success);
        }
        let now = now_ms();
        let every = cfg.refresh_interval.as_millis() as u64;
        // A clock that went backwards counts as due.
        let due = now < last || now - last >= every;
        if !due {
            return Ok(OcfExit::Success);
        }
        if !is_root() {
            return Err(OcfError::perm("re-announcing needs root privileges"));
        }
        let mut nl = open()?;
        let (plan, foreign) = cfg.without_foreign(cfg.plan(&mut nl)?);
        if !foreign.is_empty() {
            log::warn(&format!(
                "{} no longer configured on this host; not announcing it",
                join(&foreign)
            ));
        }
        write_mark(&mark, now)?;
        announce(&cfg, &mut nl, &plan.announcements, &mark);
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
    fn defaults_and_lists() {
        let c = cfg(&[("ip", "10.213.0.50, fd00:213::50 10.213.0.50")]).unwrap();
        assert_eq!(c.ips.len(), 2);
        assert_eq!(c.mode, ArpMode::Both);
        assert_eq!(c.refresh, Refresh::Both);
        assert_eq!(c.count, 5);
        assert_eq!(c.interval, Duration::from_millis(200));
        assert_eq!(c.refresh_interval, Duration::ZERO);
        assert!(!c.flush_local);
        let c = cfg(&[
            ("ip", "10.213.0.50"),
            ("arp_mode", "reply"),
            ("refresh", "unicast"),
            ("refresh_interval", "30"),
        ])
        .unwrap();
        assert_eq!(c.mode, ArpMode::Reply);
        assert_eq!(c.refresh, Refresh::Unicast);
        assert_eq!(c.refresh_interval, Duration::from_secs(30));
    }

    #[test]
    fn static_checks_are_configuration_errors() {
        for bad in [
            vec![("ip", "10.213.0.300")],
            vec![("ip", "10.213.0.50/24")],
            vec![("ip", " , ")],
            vec![("ip", "224.0.0.1")],
            vec![("ip", "10.213.0.50 ff02::1")],
            vec![("ip", "fe80::1")],
            vec![("ip", "10.213.0.50"), ("arp_mode", "gratuitous")],
            vec![("ip", "10.213.0.50"), ("refresh", "request")],
            vec![("ip", "10.213.0.50"), ("arp_count", "0")],
            vec![("ip", "10.213.0.50"), ("refresh_interval", "soon")],
            vec![("ip", "10.213.0.50"), ("mac", "01:00:5e:00:00:01")],
            vec![("ip", "10.213.0.50"), ("mac", "00:00:00:00:00:00")],
            vec![("ip", "10.213.0.50"), ("mac", "nonsense")],
        ] {
            let e = cfg(&bad).unwrap_err();
            assert_eq!(e.exit(), OcfExit::ErrConfigured, "{bad:?}: {e}");
        }
        let many: Vec<String> = (0..300)
            .map(|i| format!("10.213.{}.{}", i / 200, i % 200 + 1))
            .collect();
        let e = cfg(&[("ip", &many.join(" "))]).unwrap_err();
        assert_eq!(e.exit(), OcfExit::ErrConfigured);
    }

    #[test]
    fn state_paths_are_one_file_under_the_state_dir() {
        let p = state_path("../../etc/passwd");
        assert_eq!(p.parent().unwrap(), std::path::Path::new(STATE_DIR));
        let name = p.file_name().unwrap().to_str().unwrap();
        assert!(!name.contains('/'), "{name}");
        assert!(state_path("refresh:0")
            .to_str()
            .unwrap()
            .contains("refresh:0@"));
    }

    #[test]
    fn spec_is_consistent() {
        SPEC.check().unwrap();
    }
}
