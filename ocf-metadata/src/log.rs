//! Logging the OCF way: stderr, plus `HA_LOGFILE`/`HA_DEBUGLOG` files, `HA_debug` for
//! debug lines, and syslog when `HA_LOGFACILITY` is set. Every line carries the tag
//! (`OCF_RESOURCE_INSTANCE`, else the agent name). The `PCMK_` twins are honoured too.

use std::ffi::CString;
use std::fs::OpenOptions;
use std::io::Write;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Err,
    Crit,
}

impl Level {
    /// The prefix ocf_log uses.
    pub fn prefix(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARNING",
            Level::Err => "ERROR",
            Level::Crit => "CRIT",
        }
    }
    fn syslog_priority(self) -> libc::c_int {
        match self {
            Level::Debug => libc::LOG_DEBUG,
            Level::Info => libc::LOG_INFO,
            Level::Warn => libc::LOG_WARNING,
            Level::Err => libc::LOG_ERR,
            Level::Crit => libc::LOG_CRIT,
        }
    }
}

/// Where log lines go, read once from the environment.
#[derive(Debug, Clone, Default)]
pub struct LogConfig {
    pub tag: String,
    pub logfile: Option<String>,
    pub debuglog: Option<String>,
    pub debug: bool,
    pub facility: Option<libc::c_int>,
    /// Mirror to stderr (on by default; agents' stderr ends up in Pacemaker's log).
    pub stderr: bool,
}

fn env2(a: &str, b: &str) -> Option<String> {
    std::env::var(a)
        .ok()
        .or_else(|| std::env::var(b).ok())
        .filter(|v| !v.is_empty())
}

fn facility_from_name(name: &str) -> Option<libc::c_int> {
    Some(match name.to_ascii_lowercase().as_str() {
        "none" | "/dev/null" => return None,
        "daemon" => libc::LOG_DAEMON,
        "user" => libc::LOG_USER,
        "auth" => libc::LOG_AUTH,
        "authpriv" => libc::LOG_AUTHPRIV,
        "local0" => libc::LOG_LOCAL0,
        "local1" => libc::LOG_LOCAL1,
        "local2" => libc::LOG_LOCAL2,
        "local3" => libc::LOG_LOCAL3,
        "local4" => libc::LOG_LOCAL4,
        "local5" => libc::LOG_LOCAL5,
        "local6" => libc::LOG_LOCAL6,
        "local7" => libc::LOG_LOCAL7,
        _ => libc::LOG_DAEMON,
    })
}

impl LogConfig {
    pub fn from_env(default_tag: &str) -> LogConfig {
        let tag = std::env::var("OCF_RESOURCE_INSTANCE")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default_tag.to_string());
        let debug = env2("HA_debug", "PCMK_debug")
            .map(|v| v != "0" && v != "no" && v != "false")
            .unwrap_or(false);
        LogConfig {
            tag,
            logfile: env2("HA_LOGFILE", "PCMK_logfile").filter(|v| v != "none"),
            debuglog: env2("HA_DEBUGLOG", "PCMK_debugfile").filter(|v| v != "none"),
            debug,
            facility: env2("HA_LOGFACILITY", "PCMK_logfacility")
                .and_then(|f| facility_from_name(&f)),
            stderr: true,
        }
    }
}

static CONFIG: OnceLock<LogConfig> = OnceLock::new();

/// Sets up logging for this process. Later calls are ignored.
pub fn init(config: LogConfig) {
    if let Some(fac) = config.facility {
        if let Ok(ident) = CString::new(config.tag.replace('\0', "")) {
            // openlog keeps the pointer: leak the ident for the life of the process.
            let ident: &'static CString = Box::leak(Box::new(ident));
            // SAFETY: ident is a valid NUL-terminated string that lives forever.
            unsafe { libc::openlog(ident.as_ptr(), libc::LOG_PID, fac) };
        }
    }
    let _ = CONFIG.set(config);
}

fn config() -> &'static LogConfig {
    CONFIG.get_or_init(|| LogConfig::from_env(""))
}

fn timestamp() -> String {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    // SAFETY: plain libc calls with valid out-pointers.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    unsafe {
        libc::gettimeofday(&mut tv, std::ptr::null_mut());
        libc::localtime_r(&tv.tv_sec, &mut tm);
    }
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        tv.tv_usec
    )
}

fn append(path: &str, line: &str) {
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
        let _ = f.write_all(line.as_bytes());
    }
}

/// Logs one message at `level`. Multi-line messages are folded into one line.
pub fn log(level: Level, msg: &str) {
    let cfg = config();
    if level == Level::Debug && !cfg.debug {
        return;
    }
    let msg = msg.replace('\n', " ");
    if cfg.stderr {
        let _ = writeln!(
            std::io::stderr(),
            "{}: {}: {}",
            cfg.tag,
            level.prefix(),
            msg
        );
    }
    let file_line = || {
        format!(
            "{} {}:    {}: {}\n",
            timestamp(),
            cfg.tag,
            level.prefix(),
            msg
        )
    };
    if level == Level::Debug {
        if let Some(d) = &cfg.debuglog {
            append(d, &file_line());
        }
    } else {
        if let Some(f) = &cfg.logfile {
            append(f, &file_line());
        }
        if let Some(d) = &cfg.debuglog {
            if cfg.logfile.as_deref() != Some(d.as_str()) {
                append(d, &file_line());
            }
        }
    }
    if cfg.facility.is_some() {
        if let Ok(c) = CString::new(format!("{}: {}", level.prefix(), msg).replace('\0', "")) {
            // SAFETY: format string and argument are valid C strings.
            unsafe { libc::syslog(level.syslog_priority(), c"%s".as_ptr(), c.as_ptr()) };
        }
    }
}

/// Prints the one `ocf-exit-reason:` line (prefix from `OCF_EXIT_REASON_PREFIX`).
pub fn exit_reason(msg: &str) {
    let prefix = std::env::var("OCF_EXIT_REASON_PREFIX")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "ocf-exit-reason:".to_string());
    let one_line = msg.replace(['\n', '\r'], " ");
    let _ = writeln!(std::io::stderr(), "{prefix}{one_line}");
}

pub fn debug(msg: &str) {
    log(Level::Debug, msg)
}
pub fn info(msg: &str) {
    log(Level::Info, msg)
}
pub fn warn(msg: &str) {
    log(Level::Warn, msg)
}
pub fn error(msg: &str) {
    log(Level::Err, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facilities() {
        assert_eq!(facility_from_name("none"), None);
        assert_eq!(facility_from_name("local3"), Some(libc::LOG_LOCAL3));
        assert_eq!(facility_from_name("daemon"), Some(libc::LOG_DAEMON));
    }

    #[test]
    fn timestamp_shape() {
        let t = timestamp();
        assert_eq!(t.len(), 26, "{t}");
        assert_eq!(&t[4..5], "-");
        assert_eq!(&t[10..11], "T");
    }
}
