//! The fence agent: fence_redfish's option names, discovery that never guesses, and a
//! [`PowerDevice`] for the shared verified action engine.

use super::client::{read_ca_file, Client, Config, Tls};
use super::resource::{self as res, System, Want};
use super::RedfishError;
use ocf_metadata::fence::opts::printable;
use ocf_metadata::fence::{
    self, std_opts as s, FenceAgent, FenceArgs, FenceError, FenceOpt, FenceSpec, OptKind, Power,
    PowerDevice, Secret,
};
use serde_json::json;
use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub const NAME: &str = "fence_bulwark_redfish";

const LONGDESC: &str = "fence_bulwark_redfish powers a node off and on through its BMC's Redfish \
service over HTTPS (HTTP Basic authentication, as fence_redfish). It accepts fence_redfish's \
parameters. Without systems_uri it follows the service root (redfish_uri) to the Systems \
collection and uses its only member; when the BMC manages several systems it refuses and lists \
them instead of guessing. The power state is read from PowerState (only Off counts as off); power \
changes go to the system's ComputerSystem.Reset action with a ResetType the BMC advertises (On or \
ForceOn, ForceOff, and ForceRestart or PowerCycle for method=cycle; graceful types are never used \
because they need the node's cooperation). Every HTTP status is checked. A reboot is off, verified \
off, on, verified on, polling every stonith_status_sleep (0.2 s). The BMC's certificate is checked \
against the system's trust store, or only against ssl_ca when given; ssl_insecure skips the check. \
Discovery and login together are bounded by login_timeout, every later request too. The password \
never appears in an argv, a log or a message; proxies from the environment are not used.";

pub static OPTIONS: &[FenceOpt] = &[
    s::ACTION,
    s::IP.desc("IP address or hostname of the BMC (host:port and [IPv6]:port are accepted)"),
    s::IPPORT
        .default("443")
        .desc("TCP port of the BMC's HTTPS service"),
    s::USERNAME.required().desc("BMC user name"),
    s::PASSWORD.desc("BMC password (or use password_script)"),
    s::PASSWORD_SCRIPT,
    FenceOpt::new(
        "ssl",
        "ssl",
        OptKind::Boolean,
        "Use HTTPS (always on; 0 is refused: Redfish without TLS is not offered)",
    )
    .short('z')
    .default("1"),
    FenceOpt::new(
        "ssl_secure",
        "ssl-secure",
        OptKind::Boolean,
        "Verify the BMC's certificate (the default unless ssl_insecure is set)",
    ),
    FenceOpt::new(
        "ssl_insecure",
        "ssl-insecure",
        OptKind::Boolean,
        "Do not verify the BMC's certificate",
    ),
    FenceOpt::new(
        "ssl_ca",
        "ssl-ca",
        OptKind::String,
        "PEM file with the CA certificate(s) of the BMC; only these are trusted (pinning)",
    )
    .value_name("file"),
    FenceOpt::new(
        "redfish_uri",
        "redfish-uri",
        OptKind::String,
        "Base or starting Redfish URI",
    )
    .value_name("uri")
    .default("/redfish/v1"),
    FenceOpt::new(
        "systems_uri",
        "systems-uri",
        OptKind::String,
        "Redfish Systems resource URI, i.e. /redfish/v1/Systems/System.Embedded.1 (needed when the BMC manages several systems)",
    )
    .value_name("uri"),
    s::METHOD,
    s::POWER_WAIT,
    s::POWER_TIMEOUT,
    s::STONITH_STATUS_SLEEP.default("0.2"),
    s::LOGIN_TIMEOUT,
    s::DELAY,
    s::RETRY_ON,
    s::VERBOSE,
];

pub static SPEC: FenceSpec = FenceSpec {
    name: NAME,
    version: env!("CARGO_PKG_VERSION"),
    shortdesc: "Fence agent for Redfish",
    longdesc: LONGDESC,
    vendor_url: "http://www.dmtf.org",
    options: OPTIONS,
    actions: s::POWER_ACTIONS,
};

/// `ip` (with an optional `:port`, as fence_redfish accepts) and `ipport` as the host
/// part of a URL and a port.
pub fn parse_host(ip: &str, ipport: u16) -> Result<(String, u16), String> {
    let ip = ip.trim();
    let bad = |why: &str| format!("invalid value for 'ip' {:?}: {why}", printable(ip));
    let port_of = |p: &str| -> Result<u16, String> {
        match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(bad("the port after ':' must be from 1 to 65535")),
        }
    };
    if ip.is_empty() {
        return Err(bad("expected an IP address or a host name"));
    }
    if let Some(rest) = ip.strip_prefix('[') {
        let (addr, after) = rest
            .split_once(']')
            .ok_or_else(|| bad("missing ']' after an IPv6 address"))?;
        let a: Ipv6Addr = addr.parse().map_err(|_| bad("not an IPv6 address"))?;
        let port = match after {
            "" => ipport,
            p => port_of(p.strip_prefix(':').ok_or_else(|| bad("junk after ']'"))?)?,
        };
        return Ok((format!("[{a}]"), port));
    }
    match ip.matches(':').count() {
        0 | 1 => {
            let (host, port) = match ip.split_once(':') {
                Some((h, p)) => (h, port_of(p)?),
                None => (ip, ipport),
            };
            let ok = !host.is_empty()
                && !host.starts_with(['-', '.'])
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
            if !ok {
                return Err(bad("expected an IP address or a host name"));
            }
            Ok((host.to_ascii_lowercase(), port))
        }
        _ => {
            let a: Ipv6Addr = ip
                .parse()
                .map_err(|_| bad("expected an IP address or a host name"))?;
            Ok((format!("[{a}]"), ipport))
        }
    }
}

/// A resource path given by the admin: absolute, printable, no blanks.
fn check_path(name: &str, v: &str) -> Result<(), FenceError> {
    let ok = v.starts_with('/')
        && !v.starts_with("//")
        && v.bytes().all(|b| b.is_ascii_graphic())
        && !v.contains(['?', '#'])
        && !v.split('/').any(|seg| seg == "..");
    if ok {
        Ok(())
    } else {
        Err(FenceError::BadInput(format!(
            "invalid value for '{name}' {:?}: expected a path on the BMC such as /redfish/v1/Systems/1",
            printable(v)
        )))
    }
}

fn tls_of(args: &FenceArgs) -> Tls {
    if args.flag("ssl_insecure") {
        Tls::Insecure
    } else if let Some(ca) = args.get("ssl_ca").filter(|c| !c.trim().is_empty()) {
        Tls::Pinned(PathBuf::from(ca.trim()))
    } else {
        Tls::System
    }
}

/// The Redfish fence agent.
pub struct RedfishAgent;

impl FenceAgent for RedfishAgent {
    fn spec(&self) -> &'static FenceSpec {
        &SPEC
    }

    fn validate(&self, args: &FenceArgs) -> Result<(), FenceError> {
        if !args.flag("ssl") {
            return Err(FenceError::BadInput(
                "ssl=0 asks for plain HTTP, which this agent does not offer; remove it \
                 (HTTPS is always used)"
                    .into(),
            ));
        }
        let ipport = args.int("ipport").unwrap_or(443) as u16;
        parse_host(args.get("ip").unwrap_or(""), ipport).map_err(FenceError::BadInput)?;
        let user = args.get("username").unwrap_or("");
        if user.trim().is_empty() {
            return Err(FenceError::BadInput(
                "invalid value for 'username': it is empty".into(),
            ));
        }
        if user.contains(':') || user.chars().any(char::is_control) {
            return Err(FenceError::BadInput(
                "invalid value for 'username': HTTP Basic authentication allows no ':' or control characters in it"
                    .into(),
            ));
        }
        if args.secret("password").is_none()
            && args
                .get("password_script")
                .is_none_or(|p| p.trim().is_empty())
        {
            return Err(FenceError::BadInput(
                "a password is required: set password or password_script".into(),
            ));
        }
        check_path("redfish_uri", args.get("redfish_uri").unwrap_or(""))?;
        if let Some(p) = args.get("systems_uri") {
            check_path("systems_uri", p)?;
        }
        if args.flag("ssl_insecure") && args.get("ssl_ca").is_some() {
            return Err(FenceError::BadInput(
                "ssl_insecure and ssl_ca contradict each other: pin a CA or skip the check, not both"
                    .into(),
            ));
        }
        if args.flag("ssl_insecure") && args.flag("ssl_secure") {
            return Err(FenceError::BadInput(
                "ssl_insecure and ssl_secure contradict each other".into(),
            ));
        }
        if let Tls::Pinned(path) = tls_of(args) {
            read_ca_file(&path)?;
        }
        Ok(())
    }

    fn connect(
        &self,
        args: &FenceArgs,
        password: Option<&Secret>,
    ) -> Result<Box<dyn PowerDevice>, FenceError> {
        let ipport = args.int("ipport").unwrap_or(443) as u16;
        let (host, port) =
            parse_host(args.get("ip").unwrap_or(""), ipport).map_err(FenceError::BadInput)?;
        let login_timeout = args
            .seconds("login_timeout")
            .unwrap_or(Duration::from_secs(5))
            .max(Duration::from_millis(100));
        let cfg = Config {
            host,
            port,
            username: args.get("username").unwrap_or("").to_string(),
            password: password.cloned().unwrap_or_default(),
            tls: tls_of(args),
            timeout: login_timeout,
        };
        let mut client = Client::new(&cfg)?;
        let verbose = args.flag("verbose");
        // Discovery and the first read of the system share one login_timeout.
        client.set_deadline(Some(Instant::now() + login_timeout));
        let system = match args.get("systems_uri") {
            Some(p) => p.to_string(),
            None => discover(&client, args.get("redfish_uri").unwrap_or("/redfish/v1"))?,
        };
        let first = read_system(&client, &system)?;
        client.set_deadline(None);
        fence::verbose(
            args,
            &format!(
                "connected to {} as '{}': system {system}, PowerState {:?}",
                client.origin(),
                printable(&cfg.username),
                first.power_state.as_deref().unwrap_or("?")
            ),
        );
        Ok(Box::new(RedfishDevice {
            client,
            system,
            latest: first,
            fresh: true,
            action_info_types: None,
            verbose,
        }))
    }
}

/// Service root -> Systems -> the only member.
pub fn discover(client: &Client, root_path: &str) -> Result<String, RedfishError> {
    let root = client.get(root_path)?;
    let systems = res::systems_link(&root, root_path)?;
    let coll = client.get(&systems)?;
    let members = res::members(&coll, &systems)?;
    res::only_member(&members, &systems, res::has_more(&coll))
}

fn read_system(client: &Client, path: &str) -> Result<System, RedfishError> {
    match client.get(path) {
        Ok(v) => Ok(res::parse_system(&v)),
        Err(RedfishError::NotFound(m)) => Err(RedfishError::NotFound(format!(
            "unknown system {}: {m}; check systems_uri",
            printable(path)
        ))),
        Err(e) => Err(e),
    }
}

struct RedfishDevice {
    client: Client,
    system: String,
    /// The last read of the system.
    latest: System,
    /// `latest` was read by connect and not yet reported.
    fresh: bool,
    /// ResetTypes from `@Redfish.ActionInfo`, read once when needed.
    action_info_types: Option<Option<Vec<String>>>,
    verbose: bool,
}

impl RedfishDevice {
    fn note(&self, msg: &str) {
        if self.verbose {
            eprintln!("{msg}");
        }
    }

    fn allowed(&mut self) -> Option<Vec<String>> {
        if let Some(t) = &self.latest.reset_types {
            return Some(t.clone());
        }
        let info = self.latest.action_info.clone()?;
        if self.action_info_types.is_none() {
            let t = match self.client.get(&info) {
                Ok(v) => res::action_info_reset_types(&v),
                Err(e) => {
                    self.note(&format!("cannot read the reset ActionInfo {info}: {e}"));
                    None
                }
            };
            self.action_info_types = Some(t);
        }
        self.action_info_types.clone().flatten()
    }

    fn reset(&mut self, want: Want) -> Result<(), FenceError> {
        let allowed = self.allowed();
        let reset_type = res::choose_reset(allowed.as_deref(), want)?;
        let target = self
            .latest
            .reset_target
            .clone()
            .unwrap_or_else(|| format!("{}/Actions/ComputerSystem.Reset", self.system));
        let status = self
            .client
            .post(&target, &json!({ "ResetType": reset_type }))?;
        self.note(&format!(
            "POST {target} ResetType={reset_type}: HTTP {}",
            status.as_u16()
        ));
        Ok(())
    }
}

impl PowerDevice for RedfishDevice {
    fn get_power(&mut self) -> Result<Power, FenceError> {
        if !std::mem::take(&mut self.fresh) {
            self.latest = read_system(&self.client, &self.system)?;
        }
        let state = self.latest.power_state.as_deref().ok_or_else(|| {
            RedfishError::Protocol(format!(
                "the system {} reports no PowerState",
                printable(&self.system)
            ))
        })?;
        let p = res::power_of(state).ok_or_else(|| {
            RedfishError::Protocol(format!(
                "the system {} reports an unknown PowerState {:?}",
                printable(&self.system),
                printable(state)
            ))
        })?;
        if state != "On" && state != "Off" {
            self.note(&format!("PowerState {state} counts as {}", p.word()));
        }
        Ok(p)
    }

    fn set_power(&mut self, target: Power) -> Result<(), FenceError> {
        self.reset(match target {
            Power::On => Want::On,
            Power::Off => Want::Off,
        })
    }

    fn cycle(&mut self) -> Result<(), FenceError> {
        self.reset(Want::Cycle)
    }
}

/// The binary's entry point.
pub fn main() -> i32 {
    fence::main(&RedfishAgent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_ports() {
        let ok = |ip: &str| parse_host(ip, 443).unwrap();
        assert_eq!(ok("127.0.0.1"), ("127.0.0.1".into(), 443));
        assert_eq!(ok(" bmc-1.example.com "), ("bmc-1.example.com".into(), 443));
        assert_eq!(ok("10.0.0.5:8443"), ("10.0.0.5".into(), 8443));
        assert_eq!(ok("::1"), ("[::1]".into(), 443));
        assert_eq!(ok("[fe80::1]"), ("[fe80::1]".into(), 443));
        assert_eq!(ok("[::1]:9443"), ("[::1]".into(), 9443));
        for bad in [
            "",
            "a b",
            "host/x",
            "user@host",
            "h:0",
            "h:99999",
            "h:",
            "[::1",
            "[zz]",
            "[::1]x",
            "1:2:zz",
            "-h",
            "h?x",
        ] {
            assert!(parse_host(bad, 443).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn resource_paths() {
        assert!(check_path("systems_uri", "/redfish/v1/Systems/1").is_ok());
        for bad in ["redfish/v1", "//h/x", "/a b", "/a/../b", "/a?x", ""] {
            assert!(check_path("systems_uri", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn metadata_has_fence_redfish_names() {
        let x = ocf_metadata::fence::doc::metadata(&SPEC);
        for p in [
            "ip",
            "ipport",
            "username",
            "password",
            "password_script",
            "systems_uri",
            "redfish_uri",
            "ssl_insecure",
            "ssl_ca",
            "power_wait",
            "power_timeout",
            "login_timeout",
        ] {
            assert!(x.contains(&format!("<parameter name=\"{p}\" ")), "{p}");
        }
        assert!(x.contains("<content type=\"integer\" default=\"443\" />"));
    }
}
