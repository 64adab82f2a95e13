//! The `host_list` and `probe` syntax.
//!
//! `host_list` is a list of entries separated by spaces or commas. Each entry is
//! `[PROBE:]HOST` where PROBE is `icmp`, `arp` or `tcp:PORT` and HOST an IPv4 address,
//! an IPv6 address (optionally in brackets) or a host name. Without a PROBE the entry
//! uses the `probe` parameter (default `icmp`). Examples:
//! `10.0.0.1 fd00::1 arp:10.0.0.2 tcp:443:10.0.0.3 tcp:22:[fd00::3] icmp:gw.example.com`.

use ocf_metadata::{OcfError, OcfResult};
use std::fmt;
use std::net::{IpAddr, ToSocketAddrs};

/// The most hosts one resource probes (the ICMP sequence space is shared by all).
pub const MAX_HOSTS: usize = 1000;

/// How a host is probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    /// ICMP or ICMPv6 echo on a raw socket.
    Icmp,
    /// An ARP request on the local segment (IPv4 only).
    Arp,
    /// A TCP connection to this port that is accepted.
    Tcp(u16),
}

impl fmt::Display for ProbeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeKind::Icmp => write!(f, "icmp"),
            ProbeKind::Arp => write!(f, "arp"),
            ProbeKind::Tcp(p) => write!(f, "tcp:{p}"),
        }
    }
}

/// The host part of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Ip(IpAddr),
    /// A name, resolved once at start.
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
            Host::Ip(a) => write!(f, "{a}"),
            Host::Name(n) => write!(f, "{n}"),
        }
    }
}

/// One entry of `host_list`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostSpec {
    pub probe: ProbeKind,
    pub host: Host,
}

impl fmt::Display for HostSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.probe, self.host)
    }
}

fn bad(msg: String) -> OcfError {
    OcfError::configured(msg)
}

/// Parses the `probe` parameter: `icmp`, `arp` or `tcp:PORT`.
pub fn parse_probe(text: &str) -> OcfResult<ProbeKind> {
    let t = text.trim();
    match t {
        "icmp" => Ok(ProbeKind::Icmp),
        "arp" => Ok(ProbeKind::Arp),
        _ => match t.strip_prefix("tcp:") {
            Some(port) => Ok(ProbeKind::Tcp(parse_port(port, t)?)),
            None => Err(bad(format!(
                "invalid value for parameter 'probe': {:?}: use icmp, arp or tcp:PORT",
                shorten(t)
            ))),
        },
    }
}

fn parse_port(port: &str, entry: &str) -> OcfResult<u16> {
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(bad(format!(
            "{:?}: the TCP port must be a number from 1 to 65535",
            shorten(entry)
        ))),
    }
}

/// Keeps messages readable whatever arrives.
fn shorten(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().count() > 64 {
        out.push('…');
    }
    out
}

/// A host name as RFC 1123 allows it (letters, digits, '-', labels of 1-63 characters,
/// at most 253 characters, an optional final dot).
fn valid_hostname(name: &str) -> bool {
    let n = name.strip_suffix('.').unwrap_or(name);
    if n.is_empty() || n.len() > 253 {
        return false;
    }
    // All digits and dots: that was meant as an IPv4 address and did not parse.
    if n.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return false;
    }
    n.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

fn parse_host(text: &str, entry: &str) -> OcfResult<Host> {
    let t = match (text.strip_prefix('['), text.strip_suffix(']')) {
        (Some(_), Some(_)) if text.len() >= 2 => &text[1..text.len() - 1],
        (None, None) => text,
        _ => {
            return Err(bad(format!(
                "{:?}: unbalanced brackets around an IPv6 address",
                shorten(entry)
            )))
        }
    };
    if t.is_empty() {
        return Err(bad(format!("{:?}: the host is missing", shorten(entry))));
    }
    if t.contains('%') {
        return Err(bad(format!(
            "{:?}: addresses with a zone (%interface) are not supported; use a global or unique-local address",
            shorten(entry)
        )));
    }
    if let Ok(ip) = t.parse::<IpAddr>() {
        if ip.is_unspecified() || ip.is_multicast() || ip == IpAddr::from([255, 255, 255, 255]) {
            return Err(bad(format!(
                "{:?}: not a unicast address of one device",
                shorten(entry)
            )));
        }
        return Ok(Host::Ip(ip));
    }
    if t.contains(':') {
        return Err(bad(format!(
            "{:?}: not a valid IPv6 address",
            shorten(entry)
        )));
    }
    if !valid_hostname(t) {
        return Err(bad(format!(
            "{:?}: neither an IP address nor a valid host name",
            shorten(entry)
        )));
    }
    Ok(Host::Name(t.to_ascii_lowercase()))
}

/// Parses one `host_list` entry.
pub fn parse_entry(entry: &str, default_probe: ProbeKind) -> OcfResult<HostSpec> {
    let bare = entry.strip_prefix('[').and_then(|e| e.strip_suffix(']'));
    // A bare IPv6 address contains ':' too: try the address first.
    let unzoned = entry.split('%').next().unwrap_or(entry);
    if entry.starts_with('[')
        || unzoned.parse::<IpAddr>().is_ok()
        || bare.is_some_and(|b| b.parse::<IpAddr>().is_ok())
    {
        return Ok(HostSpec {
            probe: default_probe,
            host: parse_host(entry, entry)?,
        });
    }
    let (probe, host_text) = match entry.split_once(':') {
        None => (default_probe, entry),
        Some(("icmp", rest)) => (ProbeKind::Icmp, rest),
        Some(("arp", rest)) => (ProbeKind::Arp, rest),
        Some(("tcp", rest)) => match rest.split_once(':') {
            Some((port, host)) => (ProbeKind::Tcp(parse_port(port, entry)?), host),
            None => {
                return Err(bad(format!(
                    "{:?}: a TCP probe needs a port: tcp:PORT:HOST",
                    shorten(entry)
                )))
            }
        },
        Some((word, _)) if !word.is_empty() && word.bytes().all(|b| b.is_ascii_alphabetic()) => {
            return Err(bad(format!(
                "{:?}: unknown probe '{}' (use icmp:, arp: or tcp:PORT:)",
                shorten(entry),
                shorten(word)
            )))
        }
        Some(_) => {
            return Err(bad(format!(
                "{:?}: neither an IP address nor [probe:]host",
                shorten(entry)
            )))
        }
    };
    let host = parse_host(host_text, entry)?;
    if probe == ProbeKind::Arp {
        if let Host::Ip(IpAddr::V6(_)) = host {
            return Err(bad(format!(
                "{:?}: ARP is IPv4 only; probe IPv6 devices with icmp or tcp:PORT",
                shorten(entry)
            )));
        }
    }
    Ok(HostSpec { probe, host })
}

/// Parses the whole `host_list`. Every problem is reported, not just the first.
pub fn parse_host_list(list: &str, default_probe: ProbeKind) -> OcfResult<Vec<HostSpec>> {
    let entries: Vec<&str> = list
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|e| !e.is_empty())
        .collect();
    if entries.is_empty() {
        return Err(bad(
            "parameter 'host_list' is empty: list at least one device to probe".into(),
        ));
    }
    if entries.len() > MAX_HOSTS {
        return Err(bad(format!(
            "parameter 'host_list' has {} entries; at most {MAX_HOSTS} are supported",
            entries.len()
        )));
    }
    let mut out: Vec<HostSpec> = Vec::with_capacity(entries.len());
    let mut problems = Vec::new();
    for e in entries {
        match parse_entry(e, default_probe) {
            Ok(spec) if out.contains(&spec) => problems.push(format!(
                "{:?} is listed twice (it would count twice)",
                shorten(e)
            )),
            Ok(spec) => out.push(spec),
            Err(err) => problems.push(err.to_string()),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(bad(format!(
            "invalid parameter 'host_list': {}",
            problems.join("; ")
        )))
    }
}

/// Resolves a name once (getaddrinfo: /etc/hosts, then DNS). ARP targets take only an
/// IPv4 address; the others take the first address returned.
pub fn resolve(name: &str, probe: ProbeKind) -> Option<IpAddr> {
    let addrs: Vec<IpAddr> = (name, 0u16)
        .to_socket_addrs()
        .ok()?
        .map(|sa| sa.ip())
        .collect();
    match probe {
        ProbeKind::Arp => addrs.into_iter().find(IpAddr::is_ipv4),
        _ => addrs.into_iter().next(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(e: &str) -> HostSpec {
        parse_entry(e, ProbeKind::Icmp).unwrap_or_else(|err| panic!("{e}: {err}"))
    }
    fn err(e: &str) -> String {
        parse_entry(e, ProbeKind::Icmp)
            .map(|s| panic!("{e} parsed as {s:?}"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn entries() {
        assert_eq!(
            ok("10.0.0.1"),
            HostSpec {
                probe: ProbeKind::Icmp,
                host: Host::Ip("10.0.0.1".parse().unwrap())
            }
        );
        assert_eq!(ok("fd00::1").host, Host::Ip("fd00::1".parse().unwrap()));
        assert_eq!(ok("[fd00::1]").host, Host::Ip("fd00::1".parse().unwrap()));
        assert_eq!(ok("arp:10.0.0.2").probe, ProbeKind::Arp);
        let t = ok("tcp:443:10.0.0.3");
        assert_eq!(t.probe, ProbeKind::Tcp(443));
        assert_eq!(t.host, Host::Ip("10.0.0.3".parse().unwrap()));
        assert_eq!(ok("tcp:22:[fd00::3]").probe, ProbeKind::Tcp(22));
        assert_eq!(
            ok("tcp:22:fd00::3").host,
            Host::Ip("fd00::3".parse().unwrap())
        );
        assert_eq!(
            ok("icmp:GW.example.com").host,
            Host::Name("gw.example.com".into())
        );
        assert_eq!(ok("abc::1").host, Host::Ip("abc::1".parse().unwrap()));
        assert_eq!(
            parse_entry("10.0.0.9", ProbeKind::Tcp(80)).unwrap().probe,
            ProbeKind::Tcp(80)
        );
    }

    #[test]
    fn bad_entries() {
        assert!(err("10.0.0.300").contains("neither an IP address nor a valid host name"));
        assert!(err("foo:10.0.0.1").contains("unknown probe 'foo'"));
        assert!(err("tcp:10.0.0.1").contains("tcp:PORT:HOST"));
        assert!(err("tcp:x:10.0.0.1").contains("1 to 65535"));
        assert!(err("tcp:0:10.0.0.1").contains("1 to 65535"));
        assert!(err("tcp:70000:10.0.0.1").contains("1 to 65535"));
        assert!(err("arp:fd00::1").contains("IPv4 only"));
        assert!(err("[fd00::1").contains("unbalanced"));
        assert!(err("fe80::1%eth0").contains("zone"));
        assert!(err("icmp:").contains("missing"));
        assert!(err("a_b!c").contains("host name"));
        assert!(err("0.0.0.0").contains("unicast"));
        assert!(err("ff02::1").contains("unicast"));
        assert!(err(&"a".repeat(64)).contains("host name"));
    }

    #[test]
    fn lists() {
        let l = parse_host_list(" 10.0.0.1,fd00::1\tarp:10.0.0.2 ", ProbeKind::Icmp).unwrap();
        assert_eq!(l.len(), 3);
        assert!(parse_host_list("  ", ProbeKind::Icmp)
            .unwrap_err()
            .to_string()
            .contains("empty"));
        let e = parse_host_list("10.0.0.1 10.0.0.1 bad!", ProbeKind::Icmp)
            .unwrap_err()
            .to_string();
        assert!(e.contains("listed twice") && e.contains("bad!"), "{e}");
        // The same address with two probe kinds is two devices checks, and allowed.
        assert_eq!(
            parse_host_list("10.0.0.1 arp:10.0.0.1", ProbeKind::Icmp)
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn probes() {
        assert_eq!(parse_probe("icmp").unwrap(), ProbeKind::Icmp);
        assert_eq!(parse_probe("tcp:443").unwrap(), ProbeKind::Tcp(443));
        for b in ["udp", "tcp:", "tcp:x", "tcp:0", "ICMP", ""] {
            assert_eq!(parse_probe(b).unwrap_err().exit().code(), 6, "{b}");
        }
    }

    proptest! {
        #[test]
        fn no_list_panics(s in ".{0,300}") {
            let _ = parse_host_list(&s, ProbeKind::Icmp);
        }
        #[test]
        fn no_entry_panics(s in "[a-z0-9:\\[\\].%-]{0,40}") {
            let _ = parse_entry(&s, ProbeKind::Icmp);
        }
    }
}
