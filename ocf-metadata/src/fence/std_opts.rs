//! The options every fence agent shares, with fence-agents' names, letters and
//! aliases (lib/fencing.py). Agents list the ones they use in their table and adjust
//! defaults with the builder methods (e.g. `IPPORT.default("623")`).

use super::opts::{FenceOpt, OptKind};

pub const ACTION: FenceOpt = FenceOpt::new(
    "action",
    "action",
    OptKind::String,
    "Fencing action (on, off, reboot, status, list, list-status, monitor, metadata, validate-all, manpage)",
)
.short('o')
.value_name("action")
.obsoletes("option")
.default("reboot");

pub const IP: FenceOpt = FenceOpt::new(
    "ip",
    "ip",
    OptKind::String,
    "IP address or hostname of fencing device",
)
.short('a')
.value_name("ip")
.obsoletes("ipaddr")
.required();

pub const IPPORT: FenceOpt = FenceOpt::new(
    "ipport",
    "ipport",
    OptKind::Integer { min: 1, max: 65535 },
    "TCP/UDP port to use for connection with device",
)
.short('u')
.value_name("port");

pub const USERNAME: FenceOpt = FenceOpt::new("username", "username", OptKind::String, "Login name")
    .short('l')
    .value_name("name")
    .obsoletes("login");

pub const PASSWORD: FenceOpt = FenceOpt::new(
    "password",
    "password",
    OptKind::String,
    "Login password or passphrase",
)
.short('p')
.value_name("password")
.obsoletes("passwd")
.secret();

pub const PASSWORD_SCRIPT: FenceOpt = FenceOpt::new(
    "password_script",
    "password-script",
    OptKind::String,
    "Script to run to retrieve password (run without a shell; its standard output is the password)",
)
.short('S')
.value_name("script")
.obsoletes("passwd_script");

pub const PLUG: FenceOpt = FenceOpt::new(
    "plug",
    "plug",
    OptKind::String,
    "Physical plug number on device, UUID or identification of machine",
)
.short('n')
.value_name("id")
.obsoletes("port");

pub const VERBOSE: FenceOpt = FenceOpt::new(
    "verbose",
    "verbose",
    OptKind::Boolean,
    "Verbose mode: progress on standard error (never secrets)",
)
.short('v');

pub const POWER_WAIT: FenceOpt = FenceOpt::new(
    "power_wait",
    "power-wait",
    OptKind::Second,
    "Wait X seconds after issuing ON/OFF, before polling the status",
)
.value_name("seconds")
.default("0");

pub const POWER_TIMEOUT: FenceOpt = FenceOpt::new(
    "power_timeout",
    "power-timeout",
    OptKind::Second,
    "Test X seconds for status change after ON/OFF",
)
.value_name("seconds")
.default("20");

pub const LOGIN_TIMEOUT: FenceOpt = FenceOpt::new(
    "login_timeout",
    "login-timeout",
    OptKind::Second,
    "Wait X seconds for the device to answer during login (and each command)",
)
.value_name("seconds")
.default("5");

pub const DELAY: FenceOpt = FenceOpt::new(
    "delay",
    "delay",
    OptKind::Second,
    "Wait X seconds before fencing is started (off and reboot)",
)
.value_name("seconds")
.default("0");

pub const RETRY_ON: FenceOpt = FenceOpt::new(
    "retry_on",
    "retry-on",
    OptKind::Integer { min: 0, max: 100 },
    "Count of attempts to retry power on",
)
.value_name("attempts")
.default("1");

pub const METHOD: FenceOpt = FenceOpt::new(
    "method",
    "method",
    OptKind::Select(&["onoff", "cycle"]),
    "Method to fence: onoff (off, verified off, on, verified on) or cycle (one power cycle command)",
)
.short('m')
.value_name("method")
.default("onoff");

pub const STONITH_STATUS_SLEEP: FenceOpt = FenceOpt::new(
    "stonith_status_sleep",
    "stonith-status-sleep",
    OptKind::Second,
    "Sleep X seconds between status calls while waiting for a power change",
)
.value_name("seconds")
.default("0.1");

/// The actions of a power fence agent with one node per device (no list/list-status).
pub const POWER_ACTIONS: &[&str] = &[
    "on",
    "off",
    "reboot",
    "status",
    "monitor",
    "metadata",
    "manpage",
    "validate-all",
];
