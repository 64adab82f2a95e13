//! fence_bulwark_ipmi: power fencing over IPMI 2.0 RMCP+ with the native client.
//! The option table follows fence_ipmilan where the meaning is the same; the action
//! engine, stdin/command-line parsing and metadata come from `ocf_metadata::fence`.

use crate::ipmi::client::{ChassisControl, Config, IpmiError, Privilege, Session, SuiteChoice};
use crate::ipmi::crypto::{from_hex, CipherSuite};
use ocf_metadata::fence::{
    self, std_opts as s, FenceAgent, FenceArgs, FenceError, FenceOpt, FenceSpec, OptKind, Power,
    PowerDevice, Secret,
};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

pub const NAME: &str = "fence_bulwark_ipmi";

const LONGDESC: &str = "fence_bulwark_ipmi powers a node off and on through its BMC with IPMI 2.0 \
RMCP+ (cipher suites 17 and 3: HMAC-SHA256/HMAC-SHA1 integrity, AES-CBC-128 confidentiality), \
natively: no ipmitool, no child process, so the password never appears in any argv. It accepts \
fence_ipmilan's parameters where the meaning is the same. Differences from fence_ipmilan: lanplus \
is always on (IPMI 1.5 is not offered); cipher defaults to auto (ask the BMC, prefer 17, then 3, \
fall back to 3 quickly when the BMC does not answer the query); the power state is polled every \
100 ms after a change (stonith_status_sleep), so power_wait defaults to 0; every wait is bounded by login_timeout \
(connection, login and each command) and power_timeout (state change).";

pub static OPTIONS: &[FenceOpt] = &[
    s::ACTION,
    s::IP.desc("IP address or hostname of the BMC"),
    s::IPPORT
        .default("623")
        .desc("UDP port of the BMC's RMCP+ service"),
    s::USERNAME.desc("BMC user name (at most 16 bytes)"),
    s::PASSWORD.desc("BMC password (at most 20 bytes)"),
    s::PASSWORD_SCRIPT,
    FenceOpt::new(
        "lanplus",
        "lanplus",
        OptKind::Boolean,
        "Use IPMI 2.0 RMCP+ (always on; 0 is refused: IPMI 1.5 is not offered)",
    )
    .short('P')
    .default("1"),
    FenceOpt::new(
        "cipher",
        "cipher",
        OptKind::Select(&["auto", "3", "17"]),
        "RMCP+ cipher suite: auto (ask the BMC, prefer 17, then 3), 3 or 17",
    )
    .short('C')
    .value_name("cipher")
    .default("auto"),
    FenceOpt::new(
        "privlvl",
        "privlvl",
        OptKind::Select(&["callback", "user", "operator", "administrator"]),
        "Privilege level on the BMC (chassis control needs operator or administrator)",
    )
    .short('L')
    .value_name("level")
    .default("administrator"),
    s::METHOD,
    FenceOpt::new(
        "hexadecimal_kg",
        "hexadecimal-kg",
        OptKind::String,
        "BMC key (Kg) in hexadecimal, at most 20 bytes",
    )
    .value_name("key")
    .secret(),
    s::PLUG.desc("Accepted and ignored: one BMC powers one node"),
    s::POWER_WAIT,
    s::POWER_TIMEOUT,
    s::STONITH_STATUS_SLEEP,
    s::LOGIN_TIMEOUT,
    s::DELAY,
    s::RETRY_ON,
    s::VERBOSE,
];

pub static SPEC: FenceSpec = FenceSpec {
    name: NAME,
    version: env!("CARGO_PKG_VERSION"),
    shortdesc: "Fence agent for IPMI 2.0 (native RMCP+)",
    longdesc: LONGDESC,
    vendor_url: "https://www.intel.com/content/www/us/en/products/docs/servers/ipmi/ipmi-home.html",
    options: OPTIONS,
    actions: s::POWER_ACTIONS,
};

/// The IPMI fence agent.
pub struct IpmiAgent;

fn kg(args: &FenceArgs) -> Result<Option<Vec<u8>>, FenceError> {
    let Some(hex) = args
        .secret("hexadecimal_kg")
        .filter(|k| !k.expose().trim().is_empty())
    else {
        return Ok(None);
    };
    match from_hex(hex.expose()) {
        Some(k) if k.len() <= 20 => Ok(Some(k)),
        Some(_) => Err(FenceError::BadInput(
            "hexadecimal_kg is longer than 20 bytes".into(),
        )),
        None => Err(FenceError::BadInput(
            "hexadecimal_kg is not a hexadecimal string".into(),
        )),
    }
}

fn check_password(p: Option<&Secret>) -> Result<(), FenceError> {
    match p {
        Some(p) if p.expose().len() > 20 => Err(FenceError::BadInput(format!(
            "the password is {} bytes long; IPMI 2.0 allows at most 20",
            p.expose().len()
        ))),
        _ => Ok(()),
    }
}

fn seconds(args: &FenceArgs, name: &str, fallback: u64) -> Duration {
    args.seconds(name)
        .unwrap_or(Duration::from_secs(fallback))
        .max(Duration::from_millis(100))
}

fn login_error(e: IpmiError) -> FenceError {
    match e {
        IpmiError::Timeout { .. } | IpmiError::Io { .. } => FenceError::Connection(e.to_string()),
        IpmiError::Auth(_) | IpmiError::Privilege(_) | IpmiError::Session(_) => {
            FenceError::Login(e.to_string())
        }
        IpmiError::Completion { .. } | IpmiError::Protocol(_) => FenceError::Device(e.to_string()),
    }
}

impl FenceAgent for IpmiAgent {
    fn spec(&self) -> &'static FenceSpec {
        &SPEC
    }

    fn validate(&self, args: &FenceArgs) -> Result<(), FenceError> {
        if !args.flag("lanplus") {
            return Err(FenceError::BadInput(
                "lanplus=0 asks for IPMI 1.5, which this agent does not offer; \
                 remove it (RMCP+ is always used)"
                    .into(),
            ));
        }
        let ip = args.get("ip").unwrap_or("").trim();
        if ip.is_empty() || ip.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(FenceError::BadInput(
                "invalid value for 'ip': expected an IP address or a host name".into(),
            ));
        }
        if args.get("username").is_some_and(|u| u.len() > 16) {
            return Err(FenceError::BadInput(
                "the user name is longer than 16 bytes (the IPMI limit)".into(),
            ));
        }
        check_password(args.secret("password"))?;
        kg(args)?;
        Ok(())
    }

    fn connect(
        &self,
        args: &FenceArgs,
        password: Option<&Secret>,
    ) -> Result<Box<dyn PowerDevice>, FenceError> {
        check_password(password)?;
        let host = args.get("ip").unwrap_or("").trim();
        let port = args.int("ipport").unwrap_or(623) as u16;
        let addr = resolve(host, port)?;
        let suite = match args.get("cipher") {
            Some("3") => SuiteChoice::Fixed(CipherSuite::Suite3),
            Some("17") => SuiteChoice::Fixed(CipherSuite::Suite17),
            _ => SuiteChoice::Auto,
        };
        let login_timeout = seconds(args, "login_timeout", 5);
        let cfg = Config {
            addr,
            username: args.get("username").unwrap_or("").as_bytes().to_vec(),
            password: password
                .map(|p| p.expose().as_bytes().to_vec())
                .unwrap_or_default(),
            kg: kg(args)?,
            suite,
            privilege: args
                .get("privlvl")
                .and_then(Privilege::parse)
                .unwrap_or(Privilege::Administrator),
            login_timeout,
            command_timeout: login_timeout,
        };
        let session = Session::open(&cfg).map_err(login_error)?;
        fence::verbose(
            args,
            &format!(
                "logged in to {addr} with cipher suite {} at privilege {}",
                session.suite().id(),
                session.privilege.name()
            ),
        );
        Ok(Box::new(IpmiDevice { session }))
    }
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, FenceError> {
    // A bracketed IPv6 literal is accepted too.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    (bare, port)
        .to_socket_addrs()
        .map_err(|e| FenceError::Connection(format!("cannot resolve '{host}': {e}")))?
        .next()
        .ok_or_else(|| FenceError::Connection(format!("'{host}' has no address")))
}

struct IpmiDevice {
    session: Session,
}

impl PowerDevice for IpmiDevice {
    fn get_power(&mut self) -> Result<Power, FenceError> {
        match self.session.power_is_on() {
            Ok(true) => Ok(Power::On),
            Ok(false) => Ok(Power::Off),
            Err(e) => Err(device_error(e)),
        }
    }

    fn set_power(&mut self, target: Power) -> Result<(), FenceError> {
        let c = match target {
            Power::On => ChassisControl::PowerOn,
            Power::Off => ChassisControl::PowerOff,
        };
        self.session.chassis_control(c).map_err(device_error)
    }

    fn cycle(&mut self) -> Result<(), FenceError> {
        self.session
            .chassis_control(ChassisControl::PowerCycle)
            .map_err(device_error)
    }

    fn close(&mut self) -> Result<(), FenceError> {
        self.session.close().map_err(device_error)
    }
}

fn device_error(e: IpmiError) -> FenceError {
    match e {
        IpmiError::Privilege(_) => FenceError::Login(e.to_string()),
        IpmiError::Timeout { .. } | IpmiError::Io { .. } => FenceError::Connection(e.to_string()),
        _ => FenceError::Device(e.to_string()),
    }
}

/// The binary's entry point.
pub fn main() -> i32 {
    fence::main(&IpmiAgent)
}
