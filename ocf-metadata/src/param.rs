//! One declaration per parameter. It drives `OCF_RESKEY_*` parsing, validation, the
//! meta-data XML and the man page; agents never re-parse a parameter by hand.

use crate::error::{OcfError, OcfResult};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

/// How a parameter's text is parsed and checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// Free text (may still be checked by the agent).
    String,
    /// A whole number within `[min, max]`.
    Integer { min: i64, max: i64 },
    /// A boolean in the forms admins write: yes/no, true/false, on/off, 1/0, ja/nein.
    Boolean,
    /// An IPv4 or IPv6 address.
    Ip,
    /// A CIDR prefix length (0..=128; the agent checks it against the family).
    Prefix,
    /// A Linux interface name (1-15 bytes, no '/', no whitespace, not "." or "..").
    Interface,
    /// A duration. A bare number is in `unit` (e.g. `Unit::Ms` for arp_interval);
    /// suffixes ms, s, m, h, d are accepted.
    Duration(Unit),
    /// One of a fixed list of words.
    Enum(&'static [&'static str]),
    /// A MAC address `xx:xx:xx:xx:xx:xx`.
    Mac,
    /// A prefix length (0..=128) or an IPv4 netmask in dotted-quad form (contiguous, e.g.
    /// 255.255.255.0), as IPaddr2's cidr_netmask takes it. Parsed to
    /// [`Value::Netmask`]; the agent checks the family (a dotted mask fits IPv4 only).
    Netmask,
}

/// The unit of a bare number in a duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Ms,
    S,
}

/// A parameter declaration.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
    pub unique: bool,
    pub default: Option<&'static str>,
    pub shortdesc: &'static str,
    pub longdesc: &'static str,
}

impl Param {
    /// A declaration with the usual defaults (optional, not unique, no default).
    pub const fn new(name: &'static str, kind: Kind, shortdesc: &'static str) -> Param {
        Param {
            name,
            kind,
            required: false,
            unique: false,
            default: None,
            shortdesc,
            longdesc: "",
        }
    }
    pub const fn required(mut self) -> Param {
        self.required = true;
        self
    }
    pub const fn unique(mut self) -> Param {
        self.unique = true;
        self
    }
    pub const fn default(mut self, d: &'static str) -> Param {
        self.default = Some(d);
        self
    }
    pub const fn long(mut self, l: &'static str) -> Param {
        self.longdesc = l;
        self
    }

    /// The meta-data content type: only string, integer and boolean pass every validator.
    pub fn content_type(&self) -> &'static str {
        match self.kind {
            Kind::Integer { .. } => "integer",
            Kind::Boolean => "boolean",
            _ => "string",
        }
    }

    /// A one-line description of the accepted syntax, appended to the long description.
    pub fn syntax_hint(&self) -> Option<String> {
        match self.kind {
            Kind::String => None,
            Kind::Integer { min, max } => Some(match (min, max) {
                (i64::MIN, i64::MAX) => "An integer.".to_string(),
                (min, i64::MAX) => format!("An integer, at least {min}."),
                (min, max) => format!("An integer from {min} to {max}."),
            }),
            Kind::Boolean => Some("A boolean: true/false, yes/no, on/off or 1/0.".into()),
            Kind::Ip => Some("An IPv4 or IPv6 address.".into()),
            Kind::Prefix => Some("A prefix length: 0-32 for IPv4, 0-128 for IPv6.".into()),
            Kind::Interface => Some("A network interface name (at most 15 characters).".into()),
            Kind::Duration(Unit::Ms) => {
                Some("A duration; a bare number is milliseconds; suffixes ms, s, m, h.".into())
            }
            Kind::Duration(Unit::S) => {
                Some("A duration; a bare number is seconds; suffixes ms, s, m, h.".into())
            }
            Kind::Enum(words) => Some(format!("One of: {}.", words.join(", "))),
            Kind::Mac => Some("A MAC address, six hex octets separated by colons.".into()),
            Kind::Netmask => Some(
                "A prefix length (0-32 for IPv4, 0-128 for IPv6) or, for IPv4, a dotted \
                 netmask such as 255.255.255.0."
                    .into(),
            ),
        }
    }

    /// Parses one value. Errors are configuration errors (6) naming the parameter.
    pub fn parse(&self, raw: &str) -> OcfResult<Value> {
        let bad = |why: &str| {
            OcfError::configured(format!(
                "invalid value for parameter '{}': {:?}: {why}",
                self.name,
                printable(raw)
            ))
        };
        let text = raw.trim();
        match self.kind {
            Kind::String => Ok(Value::Str(raw.to_string())),
            Kind::Integer { min, max } => {
                let n: i64 = text.parse().map_err(|_| bad("not an integer"))?;
                if n < min || n > max {
                    return Err(bad(&range_text(min, max)));
                }
                Ok(Value::Int(n))
            }
            Kind::Boolean => parse_bool(text)
                .map(Value::Bool)
                .ok_or_else(|| bad("not a boolean (use true/false, yes/no, on/off, 1/0)")),
            Kind::Ip => text
                .parse::<IpAddr>()
                .map(Value::Ip)
                .map_err(|_| bad("not an IPv4 or IPv6 address")),
            Kind::Prefix => {
                let n: u8 = text
                    .parse()
                    .map_err(|_| bad("not a prefix length (0-128)"))?;
                if n > 128 {
                    return Err(bad("a prefix length is at most 128"));
                }
                Ok(Value::Int(n as i64))
            }
            Kind::Interface => {
                check_ifname(text).map_err(bad)?;
                Ok(Value::Str(text.to_string()))
            }
            Kind::Duration(unit) => parse_duration(text, unit)
                .map(Value::Duration)
                .ok_or_else(|| bad("not a duration (e.g. 200ms, 5s, 1m)")),
            Kind::Enum(words) => {
                if words.contains(&text) {
                    Ok(Value::Str(text.to_string()))
                } else {
                    Err(bad(&format!("must be one of: {}", words.join(", "))))
                }
            }
            Kind::Mac => parse_mac(text)
                .map(Value::Mac)
                .ok_or_else(|| bad("not a MAC address like 02:00:00:00:00:01")),
            Kind::Netmask => parse_netmask(text)
                .map(|(prefix, dotted)| Value::Netmask { prefix, dotted })
                .ok_or_else(|| {
                    bad("not a prefix length (0-128) or a dotted netmask like 255.255.255.0")
                }),
        }
    }
}

fn range_text(min: i64, max: i64) -> String {
    match (min, max) {
        (min, i64::MAX) => format!("must be at least {min}"),
        (min, max) => format!("must be between {min} and {max}"),
    }
}

/// Keeps error messages readable whatever bytes arrive.
fn printable(raw: &str) -> String {
    let mut s: String = raw.chars().take(80).collect();
    if raw.chars().count() > 80 {
        s.push('…');
    }
    s
}

/// Booleans in the forms of resource-agents' `ocf_is_true` plus the usual negatives.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "yes" | "y" | "true" | "on" | "ja" => Some(true),
        "0" | "no" | "n" | "false" | "off" | "nein" => Some(false),
        _ => None,
    }
}

/// A Linux interface name: 1..=15 bytes (IFNAMSIZ-1), no '/', ':' only as label
/// separator is not allowed here, no whitespace, not "." or "..".
pub fn check_ifname(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("empty interface name");
    }
    if s.len() > 15 {
        return Err("interface names are at most 15 characters");
    }
    if s == "." || s == ".." {
        return Err("not an interface name");
    }
    if s.bytes().any(|b| {
        b == b'/' || b == b':' || b.is_ascii_whitespace() || b.is_ascii_control() || b >= 0x80
    }) {
        return Err("interface names contain no '/', ':', whitespace or control characters");
    }
    Ok(())
}

/// Parses `200`, `200ms`, `5s`, `1.5s`, `2m`, `1h`, `1d`. A bare number is in `unit`.
pub fn parse_duration(s: &str, unit: Unit) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.matches('.').count() > 1
    {
        return None;
    }
    let value: f64 = num.parse().ok()?;
    let ms_per = match suffix.trim() {
        "" => match unit {
            Unit::Ms => 1.0,
            Unit::S => 1000.0,
        },
        "ms" | "msec" => 1.0,
        "s" | "sec" => 1000.0,
        "m" | "min" => 60_000.0,
        "h" | "hr" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return None,
    };
    let ms = value * ms_per;
    if !ms.is_finite() || ms > 1e12 {
        return None;
    }
    Some(Duration::from_micros((ms * 1000.0).round() as u64))
}

/// Parses a prefix length (0..=128) or a contiguous dotted IPv4 netmask; returns the
/// prefix length and whether it was dotted.
pub fn parse_netmask(s: &str) -> Option<(u8, bool)> {
    if s.contains('.') {
        let m = u32::from(s.parse::<std::net::Ipv4Addr>().ok()?);
        let ones = m.leading_ones();
        (ones + m.trailing_zeros() >= 32).then_some((ones as u8, true))
    } else {
        let n: u8 = s.parse().ok()?;
        (n <= 128).then_some((n, false))
    }
}

/// Parses `xx:xx:xx:xx:xx:xx` (or with `-`).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        mac[i] = u8::from_str_radix(p, 16).ok()?;
    }
    Some(mac)
}

/// A parsed parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
    Ip(IpAddr),
    Duration(Duration),
    Mac([u8; 6]),
    /// A prefix length, and whether it was written as a dotted IPv4 netmask.
    Netmask {
        prefix: u8,
        dotted: bool,
    },
}

/// The parsed parameters of one invocation: declared names only, defaults applied.
#[derive(Debug, Clone, Default)]
pub struct Values {
    map: BTreeMap<&'static str, Value>,
    /// Names that were given explicitly (not from a default).
    given: Vec<&'static str>,
}

impl Values {
    /// Parses every declared parameter from `lookup` (e.g. the `OCF_RESKEY_*` environment).
    /// An empty value counts as unset, as in the shell agents. Missing required
    /// parameters and unparsable values are configuration errors (6); every problem
    /// is reported, not just the first.
    pub fn parse(params: &[Param], lookup: impl Fn(&str) -> Option<String>) -> OcfResult<Values> {
        let mut values = Values::default();
        let mut problems = Vec::new();
        for p in params {
            let raw = lookup(p.name).filter(|v| !v.trim().is_empty());
            match raw {
                Some(raw) => match p.parse(&raw) {
                    Ok(v) => {
                        values.map.insert(p.name, v);
                        values.given.push(p.name);
                    }
                    Err(e) => problems.push(e.to_string()),
                },
                None if p.required => {
                    problems.push(format!("required parameter '{}' is not set", p.name))
                }
                None => {
                    if let Some(d) = p.default {
                        match p.parse(d) {
                            Ok(v) => {
                                values.map.insert(p.name, v);
                            }
                            Err(e) => problems.push(format!("bad built-in default: {e}")),
                        }
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(values)
        } else {
            Err(OcfError::configured(problems.join("; ")))
        }
    }

    /// Parses from `(name, value)` pairs, as tests and tools pass them.
    pub fn from_pairs(params: &[Param], pairs: &[(&str, &str)]) -> OcfResult<Values> {
        Values::parse(params, |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    /// Parses from the process environment's `OCF_RESKEY_<name>` variables.
    pub fn from_env(params: &[Param]) -> OcfResult<Values> {
        Values::parse(params, |name| {
            std::env::var_os(format!("OCF_RESKEY_{name}")).map(|v| v.to_string_lossy().into_owned())
        })
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.map.get(name)
    }
    /// Whether the admin set this parameter (as opposed to its default).
    pub fn is_given(&self, name: &str) -> bool {
        self.given.contains(&name)
    }
    pub fn str(&self, name: &str) -> Option<&str> {
        match self.map.get(name) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.map.get(name) {
            Some(Value::Int(n)) => Some(*n),
            _ => None,
        }
    }
    pub fn bool(&self, name: &str) -> Option<bool> {
        match self.map.get(name) {
            Some(Value::Bool(b)) => Some(*b),
            _ => None,
        }
    }
    /// A boolean, false when unset.
    pub fn flag(&self, name: &str) -> bool {
        self.bool(name).unwrap_or(false)
    }
    pub fn ip(&self, name: &str) -> Option<IpAddr> {
        match self.map.get(name) {
            Some(Value::Ip(a)) => Some(*a),
            _ => None,
        }
    }
    pub fn duration(&self, name: &str) -> Option<Duration> {
        match self.map.get(name) {
            Some(Value::Duration(d)) => Some(*d),
            _ => None,
        }
    }
    /// A [`Kind::Netmask`] value: (prefix length, written as a dotted netmask).
    pub fn netmask(&self, name: &str) -> Option<(u8, bool)> {
        match self.map.get(name) {
            Some(Value::Netmask { prefix, dotted }) => Some((*prefix, *dotted)),
            _ => None,
        }
    }
    pub fn mac(&self, name: &str) -> Option<[u8; 6]> {
        match self.map.get(name) {
            Some(Value::Mac(m)) => Some(*m),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const P: &[Param] = &[
        Param::new("ip", Kind::Ip, "IP").required(),
        Param::new("count", Kind::Integer { min: 0, max: 10 }, "n").default("5"),
        Param::new("flag", Kind::Boolean, "f").default("false"),
        Param::new("nic", Kind::Interface, "nic"),
        Param::new("wait", Kind::Duration(Unit::Ms), "w").default("200"),
        Param::new("mode", Kind::Enum(&["a", "b"]), "m").default("a"),
        Param::new("mac", Kind::Mac, "mac"),
        Param::new("prefix", Kind::Prefix, "p"),
    ];

    fn parse(pairs: &[(&str, &str)]) -> OcfResult<Values> {
        Values::parse(P, |n| {
            pairs
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn defaults_and_types() {
        let v = parse(&[("ip", "10.0.0.1"), ("flag", "YES"), ("wait", "1.5s")]).unwrap();
        assert_eq!(v.ip("ip"), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(v.int("count"), Some(5));
        assert!(!v.is_given("count"));
        assert!(v.flag("flag"));
        assert_eq!(v.duration("wait"), Some(Duration::from_millis(1500)));
        assert_eq!(v.str("mode"), Some("a"));
    }

    #[test]
    fn missing_required_is_6_and_all_problems_are_listed() {
        let e = parse(&[("count", "11"), ("nic", "a/b")]).unwrap_err();
        assert_eq!(e.exit().code(), 6);
        let msg = e.to_string();
        assert!(msg.contains("'ip' is not set"), "{msg}");
        assert!(msg.contains("'count'"), "{msg}");
        assert!(msg.contains("'nic'"), "{msg}");
    }

    #[test]
    fn booleans_in_admin_forms() {
        for t in ["1", "yes", "Yes", "TRUE", "on", "ja", "y"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["0", "no", "False", "OFF", "nein", "n"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        assert_eq!(parse_bool("maybe"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("200", Unit::Ms),
            Some(Duration::from_millis(200))
        );
        assert_eq!(parse_duration("5", Unit::S), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("5s", Unit::Ms), Some(Duration::from_secs(5)));
        assert_eq!(
            parse_duration("2m", Unit::S),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_duration("1h", Unit::S),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            parse_duration("100ms", Unit::S),
            Some(Duration::from_millis(100))
        );
        for bad in ["", "-1", "s", "1x", "1..2", ".5", "5.", "1e3"] {
            assert_eq!(parse_duration(bad, Unit::S), None, "{bad}");
        }
    }

    #[test]
    fn interface_names() {
        assert!(check_ifname("eth0").is_ok());
        assert!(check_ifname("br-0.100").is_ok());
        assert!(check_ifname("a234567890123456").is_err());
        for bad in ["", ".", "..", "a/b", "a b", "eth0:1"] {
            assert!(check_ifname(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn macs() {
        assert_eq!(
            parse_mac("02:00:5e:00:01:ff"),
            Some([2, 0, 0x5e, 0, 1, 0xff])
        );
        assert_eq!(
            parse_mac("02-00-5e-00-01-ff"),
            Some([2, 0, 0x5e, 0, 1, 0xff])
        );
        assert_eq!(parse_mac("02:00:5e:00:01"), None);
        assert_eq!(parse_mac("02:00:5e:00:01:fff"), None);
        assert_eq!(parse_mac("zz:00:5e:00:01:ff"), None);
    }

    #[test]
    fn netmasks() {
        assert_eq!(parse_netmask("24"), Some((24, false)));
        assert_eq!(parse_netmask("0"), Some((0, false)));
        assert_eq!(parse_netmask("128"), Some((128, false)));
        assert_eq!(parse_netmask("255.255.255.0"), Some((24, true)));
        assert_eq!(parse_netmask("255.255.255.255"), Some((32, true)));
        assert_eq!(parse_netmask("0.0.0.0"), Some((0, true)));
        assert_eq!(parse_netmask("255.255.128.0"), Some((17, true)));
        for bad in [
            "129",
            "-1",
            "",
            "255.0.255.0",
            "255.255.255",
            "24.0",
            "0x18",
        ] {
            assert_eq!(parse_netmask(bad), None, "{bad}");
        }
        let p = Param::new("cidr_netmask", Kind::Netmask, "mask");
        assert_eq!(
            p.parse("255.255.0.0").unwrap(),
            Value::Netmask {
                prefix: 16,
                dotted: true
            }
        );
        assert_eq!(p.parse("255.0.255.0").unwrap_err().exit().code(), 6);
    }

    proptest! {
        #[test]
        fn no_value_panics(vals in proptest::collection::vec(".*", 8)) {
            let names = ["ip", "count", "flag", "nic", "wait", "mode", "mac", "prefix"];
            let _ = Values::parse(P, |n| {
                names.iter().position(|x| *x == n).map(|i| vals[i].clone())
            });
        }

        #[test]
        fn durations_never_panic(s in ".*") {
            let _ = parse_duration(&s, Unit::S);
            let _ = parse_duration(&s, Unit::Ms);
        }
    }
}
