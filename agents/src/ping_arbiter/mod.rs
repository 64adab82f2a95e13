//! `ocf:bulwark:ping-arbiter`: probes devices on the LAN in parallel (ICMP/ICMPv6 echo,
//! ARP, TCP connect) on raw sockets, publishes `reachable × multiplier` as a node
//! attribute with `attrd_updater`, and with `surrender=standby` puts its own node into
//! standby for good when it has kept seeing fewer devices than the best peer for longer
//! than `dampen`. A drop-in for `ocf:pacemaker:ping` (same parameter names where the
//! meaning is the same).

pub mod cluster;
pub mod hosts;
pub mod probe;

use hosts::{Host, HostSpec, ProbeKind};
use ocf_metadata::log;
use ocf_metadata::{
    ActionSpec, AgentSpec, Context, IoContext, Kind, OcfError, OcfExit, OcfResult, Param,
    ResourceAgent, Unit,
};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const LONGDESC: &str = "\
Probes a list of devices on the LAN (switches, routers, gateways, other servers) and \
publishes how many answered, times 'multiplier', as a node attribute (default 'pingd') \
through attrd_updater, with 'dampen'. Location rules then prefer the node that reaches \
the most devices and ban nodes that reach none. A drop-in replacement for \
ocf:pacemaker:ping with the same parameter names.

All devices are probed at once from one process on raw sockets: no fping or ping is \
started. Probes: 'icmp' (ICMP or ICMPv6 echo; the default), 'arp' (an ARP request on \
the local segment; proves the device is there even when it filters ICMP) and 'tcp:PORT' \
(a TCP connection to PORT that is accepted). IPv4 and IPv6 devices can be mixed in one \
list. Each device gets 'attempts' probes spread evenly over 'timeout' seconds; a reply to \
any of them counts, so a monitor spends at most 'timeout' on probing however many \
devices are dead.

With surrender=standby the agent also enforces the arbitration itself: when this node's \
score has stayed strictly below the best score of another node in its partition for \
longer than 'dampen', it logs which devices it could not reach and puts its own node into \
standby permanently (crm_attribute --node NODE --name standby --update on --lifetime \
forever). Only an admin lifts it: 'pcs node unstandby NODE' or 'crm node online NODE'.

Must run as root (raw sockets).";

const HOST_LIST_DESC: &str = "\
The devices to probe, separated by spaces or commas. Each entry is [PROBE:]HOST. PROBE \
is icmp, arp or tcp:PORT; without it the 'probe' parameter applies. HOST is an IPv4 \
address, an IPv6 address (brackets optional) or a host name, resolved once at start \
(a name that does not resolve then counts as unreachable until the next start). Example: \
'192.0.2.1 2001:db8::1 arp:192.0.2.2 tcp:443:192.0.2.3 tcp:22:[2001:db8::3]'. ARP works \
only for IPv4 devices on a subnet of one of this node's interfaces.";

pub static PARAMS: &[Param] = &[
    Param::new("host_list", Kind::String, "Devices to probe")
        .required()
        .long(HOST_LIST_DESC),
    Param::new("name", Kind::String, "Attribute name")
        .default("pingd")
        .long("The name of the node attribute that holds the score."),
    Param::new(
        "multiplier",
        Kind::Integer {
            min: 1,
            max: 1_000_000,
        },
        "Score per reachable device",
    )
    .default("1")
    .long("The score is the number of reachable devices times this value."),
    Param::new("dampen", Kind::Duration(Unit::S), "Dampening delay")
        .default("5s")
        .long(
            "How long attrd waits for further changes before writing the attribute to the \
             CIB (attrd_updater -d), so nodes that see the same outage change together. \
             With surrender=standby also how long this node must stay below its best peer \
             before it surrenders.",
        ),
    Param::new(
        "attempts",
        Kind::Integer { min: 1, max: 20 },
        "Probes per device",
    )
    .default("3")
    .long("How many probes each device gets within 'timeout' before it counts as unreachable."),
    Param::new(
        "timeout",
        Kind::Duration(Unit::S),
        "Time a device has to answer",
    )
    .default("2")
    .long(
        "How long a device has to answer, in seconds (suffixes ms, s, m also work). \
             The 'attempts' probes are sent timeout/attempts apart within this time, like \
             ocf:pacemaker:ping's fping mode. At most 300 s, and never more than the \
             operation timeout allows.",
    ),
    Param::new(
        "failure_score",
        Kind::Integer {
            min: 0,
            max: i64::MAX,
        },
        "Monitor fails below this score",
    )
    .long("If set, start and monitor fail when the score is below this value."),
    Param::new("probe", Kind::String, "Default probe")
        .default("icmp")
        .long("The probe for entries of host_list without their own: icmp, arp or tcp:PORT."),
    Param::new(
        "surrender",
        Kind::Enum(&["none", "standby"]),
        "Surrender policy",
    )
    .default("none")
    .long(
        "none: only publish the score. standby: when this node's score stays strictly \
         below the best score of another online node of its partition for longer than \
         'dampen', put this node into standby for good; an admin lifts it with \
         'pcs node unstandby NODE' or 'crm node online NODE'.",
    ),
    Param::new("debug", Kind::String, "Debug output")
        .default("false")
        .long(
            "true (or 1): log every unreachable device on each monitor; verbose (or 2): \
             also log every device's answer time. false (or 0): only changes and failures.",
        ),
    Param::new(
        "republish_interval",
        Kind::Duration(Unit::S),
        "Re-publish an unchanged score this often",
    )
    .default("60s")
    .long(
        "A monitor runs attrd_updater only when the score changed, or when the last \
         publication is older than this; so a steady monitor forks nothing. 0 publishes on \
         every monitor, as ocf:pacemaker:ping does.",
    ),
    Param::new("pidfile", Kind::String, "State file").long(
        "Where the agent keeps its started state (the names resolved at start and the \
         surrender timer). Default /run/bulwark/ping-arbiter-INSTANCE.",
    ),
];

pub static ACTIONS: &[ActionSpec] = &[
    ActionSpec::new("start", "60s"),
    ActionSpec::new("stop", "20s"),
    ActionSpec::new("monitor", "60s").interval("10s").depth(0),
    ActionSpec::new("meta-data", "5s"),
    ActionSpec::new("validate-all", "30s"),
];

pub static SPEC: AgentSpec = AgentSpec {
    name: "ping-arbiter",
    version: env!("CARGO_PKG_VERSION"),
    shortdesc: "Probes LAN devices in parallel and publishes the reachable count",
    longdesc: LONGDESC,
    params: PARAMS,
    actions: ACTIONS,
};

/// How much debug output the admin asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Debug {
    Off,
    On,
    Verbose,
}

/// The parsed and checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub hosts: Vec<HostSpec>,
    pub name: String,
    pub multiplier: i64,
    pub dampen: Duration,
    pub attempts: u32,
    pub timeout: Duration,
    pub failure_score: Option<i64>,
    pub surrender: bool,
    pub debug: Debug,
    pub state_file: PathBuf,
    pub republish_interval: Duration,
}

/// The longest `timeout` accepted.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(300);

fn check_attr_name(name: &str) -> OcfResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(OcfError::configured(format!(
            "invalid value for parameter 'name': {:?}: an attribute name starts with a letter \
             or '_' and has only letters, digits, '_', '-' and '.' (names starting with '#' \
             are Pacemaker's own)",
            name.chars().take(64).collect::<String>()
        )))
    }
}

fn parse_debug(s: &str) -> OcfResult<Debug> {
    match s.trim().to_ascii_lowercase().as_str() {
        "verbose" | "2" => Ok(Debug::Verbose),
        other => match ocf_metadata::param::parse_bool(other) {
            Some(true) => Ok(Debug::On),
            Some(false) => Ok(Debug::Off),
            None => Err(OcfError::configured(format!(
                "invalid value for parameter 'debug': {:?}: use true, false or verbose",
                s.chars().take(32).collect::<String>()
            ))),
        },
    }
}

/// The instance name used in the default state file: anonymous clone instances share one.
fn instance_for_files(ctx: &Context) -> String {
    let unique = std::env::var("OCF_RESKEY_CRM_meta_globally_unique")
        .ok()
        .and_then(|v| ocf_metadata::param::parse_bool(&v))
        .unwrap_or(false);
    let mut inst = ctx.instance.clone();
    if !unique {
        if let Some((base, n)) = inst.rsplit_once(':') {
            if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
                inst = base.to_string();
            }
        }
    }
    inst.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Config {
    pub fn from_ctx(ctx: &Context) -> OcfResult<Config> {
        let p = &ctx.params;
        let mut problems = Vec::new();
        let probe = match hosts::parse_probe(p.str("probe").unwrap_or("icmp")) {
            Ok(k) => Some(k),
            Err(e) => {
                problems.push(e.to_string());
                None
            }
        };
        let hosts = match hosts::parse_host_list(
            p.str("host_list").unwrap_or(""),
            probe.unwrap_or(ProbeKind::Icmp),
        ) {
            Ok(h) => h,
            Err(e) => {
                problems.push(e.to_string());
                Vec::new()
            }
        };
        let name = p.str("name").unwrap_or("pingd").trim().to_string();
        if let Err(e) = check_attr_name(&name) {
            problems.push(e.to_string());
        }
        let debug = match parse_debug(p.str("debug").unwrap_or("false")) {
            Ok(d) => d,
            Err(e) => {
                problems.push(e.to_string());
                Debug::Off
            }
        };
        let timeout = p.duration("timeout").unwrap_or(Duration::from_secs(2));
        if timeout < Duration::from_millis(10) || timeout > MAX_TIMEOUT {
            problems.push(format!(
                "invalid value for parameter 'timeout': {} ms: must be between 10 ms and {} s",
                timeout.as_millis(),
                MAX_TIMEOUT.as_secs()
            ));
        }
        let state_file = match p.str("pidfile").map(str::trim) {
            Some(f) => {
                let path = PathBuf::from(f);
                if !path.is_absolute()
                    || path
                        .components()
                        .any(|c| matches!(c, std::path::Component::ParentDir))
                    || f.ends_with('/')
                {
                    problems.push(format!(
                        "invalid value for parameter 'pidfile': {f:?}: must be an absolute file path without '..'"
                    ));
                }
                path
            }
            None => PathBuf::from(format!(
                "/run/bulwark/ping-arbiter-{}",
                instance_for_files(ctx)
            )),
        };
        if !problems.is_empty() {
            return Err(OcfError::configured(problems.join("; ")));
        }
        Ok(Config {
            hosts,
            name,
            multiplier: p.int("multiplier").unwrap_or(1),
            dampen: p.duration("dampen").unwrap_or(Duration::from_secs(5)),
            attempts: p.int("attempts").unwrap_or(3) as u32,
            timeout,
            failure_score: p.int("failure_score"),
            surrender: p.str("surrender") == Some("standby"),
            debug,
            state_file,
            republish_interval: p
                .duration("republish_interval")
                .unwrap_or(Duration::from_secs(60)),
        })
    }
}

/// What survives between invocations: the started marker, the names resolved at start,
/// and the surrender timer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    pub resolved: BTreeMap<String, Option<IpAddr>>,
    /// CLOCK_BOOTTIME ms since this node is below its best peer.
    pub below_since: Option<u64>,
    pub surrendered: bool,
    /// The last score published with attrd_updater and when (CLOCK_BOOTTIME ms).
    pub published: Option<(i64, u64)>,
}

impl State {
    pub fn render(&self) -> String {
        let mut s = String::from("# ocf:bulwark:ping-arbiter state\n");
        for (name, addr) in &self.resolved {
            match addr {
                Some(a) => s.push_str(&format!("resolved {name} {a}\n")),
                None => s.push_str(&format!("resolved {name} -\n")),
            }
        }
        if let Some(t) = self.below_since {
            s.push_str(&format!("below_since {t}\n"));
        }
        if self.surrendered {
            s.push_str("surrendered\n");
        }
        if let Some((score, at)) = self.published {
            s.push_str(&format!("published {score} {at}\n"));
        }
        s
    }

    /// Parses a state file; unknown or damaged lines are skipped (the file is ours, but
    /// a half-written one must not stop a monitor).
    pub fn parse(text: &str) -> State {
        let mut st = State::default();
        for line in text.lines() {
            let w: Vec<&str> = line.split_whitespace().collect();
            match w.as_slice() {
                ["resolved", name, addr] => {
                    st.resolved
                        .insert(name.to_string(), addr.parse::<IpAddr>().ok());
                }
                ["below_since", t] => st.below_since = t.parse().ok(),
                ["surrendered"] => st.surrendered = true,
                ["published", score, at] => {
                    st.published = score.parse().ok().zip(at.parse().ok());
                }
                _ => {}
            }
        }
        st
    }

    fn load(path: &Path) -> OcfResult<Option<State>> {
        match std::fs::read_to_string(path) {
            Ok(t) => Ok(Some(State::parse(&t))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(OcfError::io(format!("reading {}", path.display()), e)),
        }
    }

    /// Writes atomically (temporary file + rename).
    fn save(&self, path: &Path) -> OcfResult<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).ctx(|| format!("creating {}", dir.display()))?;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, self.render()).ctx(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).ctx(|| format!("renaming {}", tmp.display()))
    }
}

/// Whether a monitor must run attrd_updater: the score changed, it was never published
/// by this instance, or the last publication is older than `every` (0 = always).
fn needs_publish(last: Option<(i64, u64)>, score: i64, now_ms: u64, every: Duration) -> bool {
    match last {
        Some((published, at)) if published == score => {
            every.is_zero() || now_ms.saturating_sub(at) >= every.as_millis() as u64
        }
        _ => true,
    }
}

fn boottime_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into ts.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// How an entry is named in logs: bare address for the default ICMP probe.
pub fn label(spec: &HostSpec, addr: Option<IpAddr>) -> String {
    let base = match spec.probe {
        ProbeKind::Icmp => spec.host.to_string(),
        _ => spec.to_string(),
    };
    match (&spec.host, addr) {
        (Host::Name(_), Some(a)) => format!("{base} ({a})"),
        _ => base,
    }
}

/// The outcome of one probe round.
#[derive(Debug, Clone)]
pub struct Round {
    pub score: i64,
    pub reachable: usize,
    pub total: usize,
    /// "label (why)" for every unreachable device.
    pub unreachable: Vec<String>,
}

pub struct PingArbiter;

impl PingArbiter {
    fn resolve_all(cfg: &Config, known: &BTreeMap<String, Option<IpAddr>>) -> State {
        let mut st = State::default();
        for h in &cfg.hosts {
            if let Host::Name(n) = &h.host {
                let addr = match known.get(n) {
                    Some(a) => *a,
                    None => {
                        let a = hosts::resolve(n, h.probe);
                        if a.is_none() {
                            log::warn(&format!(
                                "cannot resolve '{n}'; it counts as unreachable until the next start"
                            ));
                        }
                        a
                    }
                };
                st.resolved.insert(n.clone(), addr);
            }
        }
        st
    }

    /// Probes every device once and returns the score.
    pub fn probe_round(cfg: &Config, ctx: &Context, st: &State) -> OcfResult<Round> {
        let targets: Vec<probe::Target> = cfg
            .hosts
            .iter()
            .map(|h| probe::Target {
                kind: h.probe,
                addr: match &h.host {
                    Host::Ip(a) => Some(*a),
                    Host::Name(n) => st.resolved.get(n).copied().flatten(),
                },
            })
            .collect();
        // Leave room for attrd_updater within the operation's timeout.
        let budget = ctx
            .deadline(Duration::from_secs(60))
            .saturating_duration_since(std::time::Instant::now())
            .saturating_sub(Duration::from_millis(500));
        let window = if cfg.timeout > budget {
            log::warn(&format!(
                "timeout {} ms does not fit the operation timeout; probing for {} ms",
                cfg.timeout.as_millis(),
                budget.as_millis()
            ));
            budget.max(Duration::from_millis(10))
        } else {
            cfg.timeout
        };
        let report = probe::probe_all(&targets, cfg.attempts, window).map_err(|e| {
            if matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) {
                OcfError::perm(format!(
                    "cannot open raw sockets (the agent must run as root): {e}"
                ))
            } else {
                OcfError::io("probing", e)
            }
        })?;
        let mut unreachable = Vec::new();
        for (i, h) in cfg.hosts.iter().enumerate() {
            let l = label(h, targets[i].addr);
            match report.rtt[i] {
                Some(rtt) if cfg.debug == Debug::Verbose => log::info(&format!(
                    "{l}: answered after {:.1} ms",
                    rtt.as_secs_f64() * 1000.0
                )),
                Some(_) => {}
                None => unreachable.push(format!(
                    "{l} ({})",
                    report.notes[i].as_deref().unwrap_or("no reply")
                )),
            }
        }
        let reachable = report.reachable();
        let score = reachable as i64 * cfg.multiplier;
        let msg = format!(
            "{} = {score}: {reachable} of {} devices reachable ({} ms)",
            cfg.name,
            cfg.hosts.len(),
            report.elapsed.as_millis()
        );
        if unreachable.is_empty() || cfg.debug == Debug::Off {
            log::debug(&msg);
        }
        if !unreachable.is_empty() && cfg.debug != Debug::Off {
            log::info(&format!("{msg}; unreachable: {}", unreachable.join(", ")));
        }
        Ok(Round {
            score,
            reachable,
            total: cfg.hosts.len(),
            unreachable,
        })
    }

    /// Probe, publish, apply the surrender policy and failure_score.
    fn update(cfg: &Config, ctx: &Context, st: &mut State) -> OcfResult<()> {
        let round = Self::probe_round(cfg, ctx, st)?;
        let now = boottime_ms();
        if needs_publish(st.published, round.score, now, cfg.republish_interval) {
            cluster::publish(&cfg.name, round.score, cfg.dampen)?;
            st.published = Some((round.score, now));
            st.save(&cfg.state_file)?;
        } else {
            log::debug(&format!(
                "{} = {} unchanged since the last publication: attrd_updater not run",
                cfg.name, round.score
            ));
        }
        if cfg.surrender {
            if let Err(e) = Self::arbitrate(cfg, st, &round) {
                log::warn(&format!("surrender check skipped this time: {e}"));
            }
        }
        if let Some(fs) = cfg.failure_score {
            if round.score < fs {
                return Err(OcfError::generic(format!(
                    "{} = {} is below failure_score {fs}; unreachable: {}",
                    cfg.name,
                    round.score,
                    round.unreachable.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// The seed's policy: stay strictly below the best other node of the partition for
    /// longer than `dampen`, then go into standby for good.
    fn arbitrate(cfg: &Config, st: &mut State, round: &Round) -> OcfResult<()> {
        let me = cluster::local_node()?;
        let members = cluster::partition()?;
        let values = cluster::query_all(&cfg.name)?;
        let best = values
            .iter()
            .filter(|(node, _)| *node != me && members.contains(node))
            .filter_map(|(node, v)| v.map(|v| (node.clone(), v)))
            .max_by_key(|(_, v)| *v);
        log::debug(&format!(
            "arbitration: this node {me}, partition {members:?}, {} values {values:?}, best other {best:?}",
            cfg.name
        ));
        let now = boottime_ms();
        match best {
            Some((peer, best)) if round.score < best => {
                let since = *st.below_since.get_or_insert(now);
                let below_for = Duration::from_millis(now.saturating_sub(since));
                if below_for > cfg.dampen && !st.surrendered {
                    log::error(&format!(
                        "surrendering: node {me} has {} = {} ({} of {} devices) while node {peer} \
                         has {best}, for {:.1} s (longer than dampen {:.1} s); cannot reach: {}. \
                         Putting {me} into standby until an admin runs \
                         'pcs node unstandby {me}' or 'crm node online {me}'",
                        cfg.name,
                        round.score,
                        round.reachable,
                        round.total,
                        below_for.as_secs_f64(),
                        cfg.dampen.as_secs_f64(),
                        round.unreachable.join(", ")
                    ));
                    cluster::standby_forever(&me)?;
                    st.surrendered = true;
                } else if !st.surrendered {
                    log::warn(&format!(
                        "node {me} has {} = {} below node {peer}'s {best} for {:.1} s; \
                         it surrenders after {:.1} s; cannot reach: {}",
                        cfg.name,
                        round.score,
                        below_for.as_secs_f64(),
                        cfg.dampen.as_secs_f64(),
                        round.unreachable.join(", ")
                    ));
                }
                st.save(&cfg.state_file)?;
            }
            _ => {
                if st.below_since.is_some() {
                    log::info(&format!(
                        "node {me} is no longer below its peers ({} = {})",
                        cfg.name, round.score
                    ));
                    st.below_since = None;
                    st.save(&cfg.state_file)?;
                }
            }
        }
        Ok(())
    }
}

impl ResourceAgent for PingArbiter {
    fn spec(&self) -> &'static AgentSpec {
        &SPEC
    }

    fn validate(&self, ctx: &Context) -> OcfResult<()> {
        let cfg = Config::from_ctx(ctx)?;
        cluster::tool("attrd_updater")?;
        if cfg.surrender {
            cluster::tool("crm_attribute")?;
            cluster::tool("crm_node")?;
        }
        for h in &cfg.hosts {
            if let (ProbeKind::Arp, Host::Ip(IpAddr::V4(a))) = (h.probe, &h.host) {
                if probe::arp_interface(*a).is_none() {
                    return Err(OcfError::args(format!(
                        "arp:{a}: no up interface of this node has a subnet containing it; \
                         ARP only reaches the local segment"
                    )));
                }
            }
        }
        Ok(())
    }

    fn start(&self, ctx: &Context) -> OcfResult<()> {
        let cfg = Config::from_ctx(ctx)?;
        // Names are resolved once, here; a restart resolves them again.
        let mut st = Self::resolve_all(&cfg, &BTreeMap::new());
        st.save(&cfg.state_file)?;
        match Self::update(&cfg, ctx, &mut st) {
            Ok(()) => Ok(()),
            Err(e) => {
                // Leave nothing half-done: no marker, no attribute.
                let _ = std::fs::remove_file(&cfg.state_file);
                let _ = cluster::delete(&cfg.name, cfg.dampen);
                Err(e)
            }
        }
    }

    fn stop(&self, ctx: &Context) -> OcfResult<()> {
        let cfg = match Config::from_ctx(ctx) {
            Ok(c) => c,
            Err(e) => {
                log::warn(&format!(
                    "stop with an invalid configuration, nothing can have started: {e}"
                ));
                return Ok(());
            }
        };
        match std::fs::remove_file(&cfg.state_file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(OcfError::io(
                    format!("removing {}", cfg.state_file.display()),
                    e,
                ))
            }
        }
        // Like ocf:pacemaker:ping: stop succeeds even when attrd cannot be reached.
        if let Err(e) = cluster::delete(&cfg.name, cfg.dampen) {
            log::warn(&format!("could not delete attribute {}: {e}", cfg.name));
        }
        Ok(())
    }

    fn monitor(&self, ctx: &Context) -> OcfResult<OcfExit> {
        let cfg = Config::from_ctx(ctx)?;
        let Some(mut st) = State::load(&cfg.state_file)? else {
            return Ok(OcfExit::NotRunning);
        };
        // Names added since start (a changed host_list) are resolved now, once.
        if cfg
            .hosts
            .iter()
            .any(|h| matches!(&h.host, Host::Name(n) if !st.resolved.contains_key(n)))
        {
            let fresh = Self::resolve_all(&cfg, &st.resolved);
            st.resolved = fresh.resolved;
            st.save(&cfg.state_file)?;
        }
        Self::update(&cfg, ctx, &mut st)?;
        Ok(OcfExit::Success)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocf_metadata::{Action, Values};

    fn ctx(pairs: &[(&str, &str)]) -> OcfResult<Context> {
        let v = Values::parse(PARAMS, |n| {
            pairs
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        })?;
        Ok(Context::for_params(Action::Monitor, v))
    }

    #[test]
    fn config_defaults() {
        let c = Config::from_ctx(&ctx(&[("host_list", "10.0.0.1 fd00::1")]).unwrap()).unwrap();
        assert_eq!(c.name, "pingd");
        assert_eq!(c.multiplier, 1);
        assert_eq!(c.attempts, 3);
        assert_eq!(c.timeout, Duration::from_secs(2));
        assert_eq!(c.dampen, Duration::from_secs(5));
        assert!(!c.surrender);
        assert_eq!(c.hosts.len(), 2);
        assert_eq!(
            c.state_file,
            PathBuf::from("/run/bulwark/ping-arbiter-test")
        );
    }

    #[test]
    fn bad_configs_are_6() {
        for pairs in [
            vec![("host_list", "")],
            vec![("host_list", "10.0.0.1"), ("name", "#uname")],
            vec![("host_list", "10.0.0.1"), ("name", "a b")],
            vec![("host_list", "10.0.0.1"), ("debug", "maybe")],
            vec![("host_list", "10.0.0.1"), ("timeout", "0")],
            vec![("host_list", "10.0.0.1"), ("timeout", "301")],
            vec![("host_list", "10.0.0.1"), ("probe", "udp")],
            vec![("host_list", "10.0.0.1"), ("pidfile", "rel/path")],
            vec![("host_list", "10.0.0.1"), ("pidfile", "/run/../etc/x")],
        ] {
            let r = ctx(&pairs).and_then(|c| Config::from_ctx(&c));
            assert_eq!(r.unwrap_err().exit().code(), 6, "{pairs:?}");
        }
    }

    #[test]
    fn publishes_only_on_change_or_when_due() {
        let minute = Duration::from_secs(60);
        assert!(needs_publish(None, 3, 1000, minute), "never published");
        assert!(
            needs_publish(Some((2, 1000)), 3, 1001, minute),
            "score changed"
        );
        assert!(
            !needs_publish(Some((3, 1000)), 3, 50_000, minute),
            "unchanged, not due"
        );
        assert!(
            needs_publish(Some((3, 1000)), 3, 61_000, minute),
            "unchanged, due"
        );
        assert!(
            needs_publish(Some((3, 1000)), 3, 1001, Duration::ZERO),
            "0 = always"
        );
    }

    #[test]
    fn state_round_trips() {
        let mut st = State::default();
        st.resolved
            .insert("gw".into(), Some("10.0.0.1".parse().unwrap()));
        st.resolved.insert("gone".into(), None);
        st.below_since = Some(1234);
        st.surrendered = true;
        st.published = Some((3000, 42));
        assert_eq!(State::parse(&st.render()), st);
        assert_eq!(State::parse("garbage\nbelow_since x\n"), State::default());
    }

    #[test]
    fn clone_instances_share_the_default_state_file() {
        let mut c = ctx(&[("host_list", "10.0.0.1")]).unwrap();
        c.instance = "pingd:1".into();
        assert_eq!(instance_for_files(&c), "pingd");
        c.instance = "a/b".into();
        assert_eq!(instance_for_files(&c), "a_b");
    }
}
