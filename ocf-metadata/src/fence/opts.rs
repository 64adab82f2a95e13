//! The option table of a fence agent and the two ways in: `name=value` lines on stdin
//! (Pacemaker) and getopt-style options (admins, via clap). Both feed one table, so a
//! name, an alias, a default or a check is declared once.

use super::FenceError;
use crate::param::parse_bool;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// How an option's text is checked, and its `<content type>` in the metadata.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OptKind {
    /// Free text.
    String,
    /// A flag on the command line; 1/yes/on/true or 0/no/off/false on stdin.
    Boolean,
    /// A whole number within `[min, max]`.
    Integer { min: i64, max: i64 },
    /// Seconds, fractions allowed (`1.5`).
    Second,
    /// One word of a fixed list.
    Select(&'static [&'static str]),
}

/// One option of a fence agent.
#[derive(Debug, Clone, Copy)]
pub struct FenceOpt {
    /// The stdin and metadata name (the long option with `-` turned into `_`).
    pub name: &'static str,
    pub short: Option<char>,
    /// The long option without the leading `--`.
    pub long: &'static str,
    /// The placeholder shown in `<getopt mixed>` and `--help` (none for booleans).
    pub value_name: &'static str,
    /// The old stdin name this option replaces (e.g. `ipaddr` for `ip`).
    pub obsoletes: Option<&'static str>,
    pub kind: OptKind,
    pub required: bool,
    pub default: Option<&'static str>,
    pub shortdesc: &'static str,
    /// Never echoed in a message, a log or `Debug`.
    pub secret: bool,
}

impl FenceOpt {
    pub const fn new(
        name: &'static str,
        long: &'static str,
        kind: OptKind,
        shortdesc: &'static str,
    ) -> FenceOpt {
        FenceOpt {
            name,
            short: None,
            long,
            value_name: "value",
            obsoletes: None,
            kind,
            required: false,
            default: None,
            shortdesc,
            secret: false,
        }
    }
    pub const fn short(mut self, c: char) -> Self {
        self.short = Some(c);
        self
    }
    pub const fn value_name(mut self, v: &'static str) -> Self {
        self.value_name = v;
        self
    }
    pub const fn obsoletes(mut self, old: &'static str) -> Self {
        self.obsoletes = Some(old);
        self
    }
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub const fn optional(mut self) -> Self {
        self.required = false;
        self
    }
    pub const fn default(mut self, d: &'static str) -> Self {
        self.default = Some(d);
        self
    }
    pub const fn desc(mut self, d: &'static str) -> Self {
        self.shortdesc = d;
        self
    }
    pub const fn secret(mut self) -> Self {
        self.secret = true;
        self
    }

    /// `-a, --ip=[ip]` as in fence-agents' `<getopt mixed>`.
    pub fn getopt_mixed(&self) -> String {
        let mut s = String::new();
        if let Some(c) = self.short {
            s.push('-');
            s.push(c);
            s.push_str(", ");
        }
        s.push_str("--");
        s.push_str(self.long);
        if self.kind != OptKind::Boolean {
            s.push_str("=[");
            s.push_str(self.value_name);
            s.push(']');
        }
        s
    }

    /// The metadata content type.
    pub fn content_type(&self) -> &'static str {
        match self.kind {
            OptKind::String => "string",
            OptKind::Boolean => "boolean",
            OptKind::Integer { .. } => "integer",
            OptKind::Second => "second",
            OptKind::Select(_) => "select",
        }
    }

    /// Checks one value; booleans come back as "1" or "0". Messages never contain
    /// the value of a secret option.
    pub fn check(&self, raw: &str) -> Result<String, FenceError> {
        let shown = || {
            if self.secret {
                String::new()
            } else {
                format!(" {:?}", printable(raw))
            }
        };
        let bad = |why: String| {
            FenceError::BadInput(format!(
                "invalid value for '{}'{}: {why}",
                self.name,
                shown()
            ))
        };
        let v = raw.trim();
        match self.kind {
            OptKind::String => Ok(raw.to_string()),
            OptKind::Boolean => match parse_bool(v) {
                Some(b) => Ok(if b { "1" } else { "0" }.to_string()),
                None => Err(bad("expected 1/yes/on/true or 0/no/off/false".into())),
            },
            OptKind::Integer { min, max } => match v.parse::<i64>() {
                Ok(n) if n >= min && n <= max => Ok(n.to_string()),
                Ok(_) => Err(bad(format!("must be from {min} to {max}"))),
                Err(_) => Err(bad(format!("not an integer (from {min} to {max})"))),
            },
            OptKind::Second => match parse_seconds(v) {
                Some(_) => Ok(v.to_string()),
                None => Err(bad("not a number of seconds (e.g. 0, 2, 1.5)".into())),
            },
            OptKind::Select(words) => {
                if words.contains(&v) {
                    Ok(v.to_string())
                } else {
                    Err(bad(format!("must be one of: {}", words.join(", "))))
                }
            }
        }
    }
}

/// Seconds as fence agents write them: a non-negative number, fractions allowed,
/// at most one day.
pub fn parse_seconds(s: &str) -> Option<Duration> {
    let s = s.trim();
    let s = s.strip_suffix('s').unwrap_or(s);
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let f: f64 = s.parse().ok()?;
    (f.is_finite() && (0.0..=86_400.0).contains(&f)).then(|| Duration::from_secs_f64(f))
}

/// Keeps a value readable in a message whatever bytes arrive.
pub fn printable(raw: &str) -> String {
    let mut s: String = raw.chars().filter(|c| !c.is_control()).take(64).collect();
    if raw.chars().count() > 64 {
        s.push('…');
    }
    s
}

/// A secret value (password). `Debug` and `Display` hide it; memory is wiped on drop.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Secret {
        Secret(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[hidden]")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // SAFETY: zero bytes are valid UTF-8.
        for b in unsafe { self.0.as_bytes_mut() } {
            // volatile so the wipe is not optimised away
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

/// The fence-agents actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FenceAction {
    On,
    Off,
    Reboot,
    Status,
    List,
    ListStatus,
    Monitor,
    Metadata,
    ValidateAll,
    Manpage,
}

impl FenceAction {
    pub const NAMES: &'static [&'static str] = &[
        "on",
        "off",
        "reboot",
        "status",
        "list",
        "list-status",
        "monitor",
        "metadata",
        "meta-data",
        "validate-all",
        "manpage",
    ];

    pub fn parse(s: &str) -> Option<FenceAction> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "on" | "enable" => FenceAction::On,
            "off" | "disable" => FenceAction::Off,
            "reboot" => FenceAction::Reboot,
            "status" => FenceAction::Status,
            "list" => FenceAction::List,
            "list-status" => FenceAction::ListStatus,
            "monitor" => FenceAction::Monitor,
            "metadata" | "meta-data" => FenceAction::Metadata,
            "validate-all" => FenceAction::ValidateAll,
            "manpage" => FenceAction::Manpage,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            FenceAction::On => "on",
            FenceAction::Off => "off",
            FenceAction::Reboot => "reboot",
            FenceAction::Status => "status",
            FenceAction::List => "list",
            FenceAction::ListStatus => "list-status",
            FenceAction::Monitor => "monitor",
            FenceAction::Metadata => "metadata",
            FenceAction::ValidateAll => "validate-all",
            FenceAction::Manpage => "manpage",
        }
    }

    /// Actions that only print documentation: no required options are checked.
    pub fn is_doc(self) -> bool {
        matches!(self, FenceAction::Metadata | FenceAction::Manpage)
    }
}

/// Everything static about one fence agent.
#[derive(Debug, Clone, Copy)]
pub struct FenceSpec {
    pub name: &'static str,
    pub version: &'static str,
    pub shortdesc: &'static str,
    pub longdesc: &'static str,
    pub vendor_url: &'static str,
    /// The option table; must contain `action`.
    pub options: &'static [FenceOpt],
    /// Actions advertised in the metadata (Pacemaker derives capabilities from them).
    pub actions: &'static [&'static str],
}

impl FenceSpec {
    pub fn opt(&self, name: &str) -> Option<&'static FenceOpt> {
        self.options.iter().find(|o| o.name == name)
    }

    /// The option a stdin name refers to: its own name, its old name, or the long
    /// option with `-` written as `_`.
    pub fn lookup_stdin(&self, name: &str) -> Option<&'static FenceOpt> {
        self.options.iter().find(|o| {
            o.name == name || o.obsoletes == Some(name) || o.long.replace('-', "_") == name
        })
    }
}

/// The checked options of one invocation.
#[derive(Debug, Clone)]
pub struct FenceArgs {
    pub action: FenceAction,
    values: BTreeMap<&'static str, String>,
    secrets: BTreeMap<&'static str, Secret>,
    given: Vec<&'static str>,
    /// Non-fatal notes from parsing (unknown stdin names), for stderr.
    pub warnings: Vec<String>,
}

impl FenceArgs {
    /// Checks raw `name -> value` pairs (last occurrence already won) against the table,
    /// applies defaults, parses the action and checks required options.
    pub fn from_raw(
        spec: &FenceSpec,
        raw: Vec<(&'static FenceOpt, String)>,
        warnings: Vec<String>,
    ) -> Result<FenceArgs, FenceError> {
        let mut values = BTreeMap::new();
        let mut secrets = BTreeMap::new();
        let mut given = Vec::new();
        let mut problems = Vec::new();
        for (opt, v) in raw {
            match opt.check(&v) {
                Ok(v) => {
                    if opt.secret {
                        secrets.insert(opt.name, Secret::new(v));
                    } else {
                        values.insert(opt.name, v);
                    }
                    if !given.contains(&opt.name) {
                        given.push(opt.name);
                    }
                }
                Err(e) => problems.push(e.to_string()),
            }
        }
        let action_text = values
            .get("action")
            .cloned()
            .or_else(|| {
                spec.opt("action")
                    .and_then(|o| o.default)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "reboot".into());
        let action = match FenceAction::parse(&action_text) {
            Some(a) => a,
            None => {
                problems.insert(
                    0,
                    format!(
                        "unknown action {:?}; use one of: {}",
                        printable(&action_text),
                        FenceAction::NAMES.join(", ")
                    ),
                );
                FenceAction::Status
            }
        };
        for opt in spec.options {
            if values.contains_key(opt.name) || secrets.contains_key(opt.name) {
                continue;
            }
            if let Some(d) = opt.default {
                values.insert(opt.name, d.to_string());
            } else if opt.required && !action.is_doc() {
                let how = match opt.short {
                    Some(c) => format!("-{c}/--{}", opt.long),
                    None => format!("--{}", opt.long),
                };
                problems.push(format!(
                    "required option '{}' is missing (stdin {}=..., command line {how})",
                    opt.name, opt.name
                ));
            }
        }
        if !problems.is_empty() {
            return Err(FenceError::BadInput(problems.join("; ")));
        }
        Ok(FenceArgs {
            action,
            values,
            secrets,
            given,
            warnings,
        })
    }

    /// The text of a non-secret option (default applied).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
    pub fn secret(&self, name: &str) -> Option<&Secret> {
        self.secrets.get(name)
    }
    /// Whether the admin gave this option (as opposed to its default).
    pub fn is_given(&self, name: &str) -> bool {
        self.given.contains(&name)
    }
    pub fn flag(&self, name: &str) -> bool {
        self.get(name) == Some("1")
    }
    pub fn int(&self, name: &str) -> Option<i64> {
        self.get(name).and_then(|v| v.parse().ok())
    }
    pub fn seconds(&self, name: &str) -> Option<Duration> {
        self.get(name).and_then(parse_seconds)
    }
}

/// Parses Pacemaker's stdin: `name=value` lines; blank and `#` lines ignored; lines
/// trimmed; one pair of surrounding double quotes stripped; the last duplicate wins;
/// old names map to new ones; unknown names are ignored with a warning and `nodename`
/// silently. A line that is not `name=value` is an error (its text is not echoed: it
/// might be a password).
pub fn parse_stdin(spec: &FenceSpec, text: &str) -> Result<FenceArgs, FenceError> {
    let mut raw: Vec<(&'static FenceOpt, String)> = Vec::new();
    let mut warnings = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            problems.push(format!("stdin line {} is not a name=value pair", i + 1));
            continue;
        };
        let name = name.trim();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            problems.push(format!(
                "stdin line {} does not start with an option name",
                i + 1
            ));
            continue;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        match spec.lookup_stdin(name) {
            Some(opt) => {
                raw.retain(|(o, _)| o.name != opt.name);
                raw.push((opt, value.to_string()));
            }
            None if name == "nodename" => {}
            None => warnings.push(format!(
                "Parse error: Ignoring unknown option '{}'",
                printable(name)
            )),
        }
    }
    if !problems.is_empty() {
        return Err(FenceError::BadInput(problems.join("; ")));
    }
    FenceArgs::from_raw(spec, raw, warnings)
}

/// What the command line asked for.
#[derive(Debug)]
pub enum Cli {
    Run(FenceArgs),
    Help(String),
    Version(String),
}

fn command(spec: &FenceSpec) -> clap::Command {
    use clap::{Arg, ArgAction};
    let mut cmd = clap::Command::new(spec.name)
        .about(spec.shortdesc)
        .disable_help_flag(true)
        .disable_version_flag(true)
        .args_override_self(true)
        .arg(
            Arg::new("__help")
                .short('h')
                .long("help")
                .action(ArgAction::SetTrue)
                .help("Show this help"),
        )
        .arg(
            Arg::new("__version")
                .short('V')
                .long("version")
                .action(ArgAction::SetTrue)
                .help("Show the version"),
        );
    for o in spec.options {
        let mut a = Arg::new(o.name).long(o.long).help(o.shortdesc);
        if let Some(c) = o.short {
            a = a.short(c);
        }
        a = if o.kind == OptKind::Boolean {
            a.action(ArgAction::SetTrue)
        } else {
            a.action(ArgAction::Set)
                .value_name(o.value_name)
                .allow_hyphen_values(true)
        };
        cmd = cmd.arg(a);
    }
    cmd
}

/// Values of secret options as they appear in argv, to scrub them from clap's messages.
fn secret_values(spec: &FenceSpec, argv: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for o in spec.options.iter().filter(|o| o.secret) {
        let long = format!("--{}", o.long);
        let short = o.short.map(|c| format!("-{c}"));
        for (i, a) in argv.iter().enumerate() {
            if let Some(v) = a.strip_prefix(&format!("{long}=")) {
                out.push(v.to_string());
            } else if *a == long || Some(a) == short.as_ref() {
                if let Some(v) = argv.get(i + 1) {
                    out.push(v.clone());
                }
            } else if let Some(s) = &short {
                if let Some(v) = a.strip_prefix(s.as_str()).filter(|v| !v.is_empty()) {
                    out.push(v.to_string());
                }
            }
        }
    }
    out.retain(|v| !v.is_empty());
    out
}

/// Parses getopt-style options (argv without the program name) with clap.
pub fn parse_cli(spec: &FenceSpec, argv: &[String]) -> Result<Cli, FenceError> {
    let mut cmd = command(spec);
    let m = match cmd
        .clone()
        .try_get_matches_from(std::iter::once(spec.name.to_string()).chain(argv.iter().cloned()))
    {
        Ok(m) => m,
        Err(e) => {
            let mut msg = e
                .to_string()
                .lines()
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ")
                .to_string();
            for s in secret_values(spec, argv) {
                msg = msg.replace(&s, "[hidden]");
            }
            return Err(FenceError::BadInput(msg));
        }
    };
    if m.get_flag("__help") {
        return Ok(Cli::Help(cmd.render_help().to_string()));
    }
    if m.get_flag("__version") {
        return Ok(Cli::Version(format!("{} {}", spec.name, spec.version)));
    }
    let mut raw = Vec::new();
    for o in spec.options {
        if o.kind == OptKind::Boolean {
            if m.get_flag(o.name) {
                raw.push((o, "1".to_string()));
            }
        } else if let Some(v) = m.get_one::<String>(o.name) {
            raw.push((o, v.clone()));
        }
    }
    FenceArgs::from_raw(spec, raw, Vec::new()).map(Cli::Run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fence::std_opts as s;
    use proptest::prelude::*;

    static OPTS: &[FenceOpt] = &[
        s::ACTION,
        s::IP,
        s::IPPORT.default("623"),
        s::USERNAME,
        s::PASSWORD,
        s::PASSWORD_SCRIPT,
        s::PLUG,
        FenceOpt::new("lanplus", "lanplus", OptKind::Boolean, "x")
            .short('P')
            .default("1"),
        FenceOpt::new(
            "cipher",
            "cipher",
            OptKind::Select(&["auto", "3", "17"]),
            "c",
        )
        .short('C')
        .default("auto"),
        s::POWER_WAIT,
        s::VERBOSE,
    ];
    static SPEC: FenceSpec = FenceSpec {
        name: "fence_test",
        version: "0",
        shortdesc: "t",
        longdesc: "t",
        vendor_url: "",
        options: OPTS,
        actions: &["on", "off"],
    };

    fn cli(a: &[&str]) -> Result<Cli, FenceError> {
        parse_cli(&SPEC, &a.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn stdin_aliases_comments_quotes_last_wins() {
        let a = parse_stdin(
            &SPEC,
            "# a comment\n\n  ipaddr=10.0.0.1 \nlogin=admin\npasswd=\"s3 cret\"\nip=10.0.0.2\n\
             port=node1\nnodename=node1\naction=off\ncipher=17\nlanplus=off\npower_wait=1.5\n",
        )
        .unwrap();
        assert_eq!(a.action, FenceAction::Off);
        assert_eq!(a.get("ip"), Some("10.0.0.2"));
        assert_eq!(a.get("username"), Some("admin"));
        assert_eq!(a.secret("password").unwrap().expose(), "s3 cret");
        assert_eq!(a.get("plug"), Some("node1"));
        assert_eq!(a.get("cipher"), Some("17"));
        assert!(!a.flag("lanplus"));
        assert_eq!(a.seconds("power_wait"), Some(Duration::from_millis(1500)));
        assert_eq!(a.get("ipport"), Some("623"));
        assert!(a.warnings.is_empty(), "{:?}", a.warnings);
    }

    #[test]
    fn stdin_long_option_spelling_and_unknown_names() {
        let a = parse_stdin(&SPEC, "ip=h\npassword_script=/bin/x\nfoo=bar\n").unwrap();
        assert_eq!(a.get("password_script"), Some("/bin/x"));
        assert_eq!(a.action, FenceAction::Reboot);
        assert_eq!(
            a.warnings,
            vec!["Parse error: Ignoring unknown option 'foo'"]
        );
    }

    #[test]
    fn malformed_lines_are_errors_without_echo() {
        let e = parse_stdin(&SPEC, "ip=h\nhunter2\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2 is not a name=value pair"), "{e}");
        assert!(!e.contains("hunter2"));
        let e = parse_stdin(&SPEC, "ip=h\n=hunter2\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        assert!(!e.contains("hunter2"));
    }

    #[test]
    fn missing_required_and_unknown_action() {
        let e = parse_stdin(&SPEC, "action=status\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("required option 'ip' is missing"), "{e}");
        let e = parse_stdin(&SPEC, "ip=h\naction=explode\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown action \"explode\""), "{e}");
        // Documentation actions need nothing.
        assert_eq!(
            parse_stdin(&SPEC, "action=metadata\n").unwrap().action,
            FenceAction::Metadata
        );
    }

    #[test]
    fn bad_values() {
        for (input, needle) in [
            ("ip=h\nipport=0\n", "'ipport'"),
            ("ip=h\nipport=abc\n", "not an integer"),
            ("ip=h\ncipher=1\n", "must be one of: auto, 3, 17"),
            ("ip=h\nlanplus=maybe\n", "'lanplus'"),
            ("ip=h\npower_wait=-1\n", "seconds"),
        ] {
            let e = parse_stdin(&SPEC, input).unwrap_err().to_string();
            assert!(e.contains(needle), "{input:?}: {e}");
        }
    }

    #[test]
    fn cli_short_long_and_flags() {
        let Cli::Run(a) = cli(&[
            "-a",
            "10.0.0.1",
            "-l",
            "admin",
            "-p",
            "-dash-pw",
            "-u",
            "9623",
            "-o",
            "status",
            "-C",
            "3",
            "-P",
            "--power-wait=2",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(a.action, FenceAction::Status);
        assert_eq!(a.secret("password").unwrap().expose(), "-dash-pw");
        assert_eq!(a.get("ipport"), Some("9623"));
        assert!(a.flag("lanplus"));
        assert_eq!(a.get("power_wait"), Some("2"));
        // Last occurrence wins on the command line too.
        let Cli::Run(a) = cli(&["--ip=a", "--ip=b"]).unwrap() else {
            panic!()
        };
        assert_eq!(a.get("ip"), Some("b"));
        assert!(matches!(cli(&["-h"]).unwrap(), Cli::Help(h) if h.contains("--ipport")));
    }

    #[test]
    fn cli_errors_scrub_the_password() {
        let e = cli(&["-a", "h", "-p", "hunter2", "--bogus", "hunter2"])
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
        let e = cli(&["-a", "h", "--password=hunter2", "hunter2"])
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.contains("[hidden]"), "{e}");
    }

    #[test]
    fn getopt_mixed_strings() {
        assert_eq!(s::IP.getopt_mixed(), "-a, --ip=[ip]");
        assert_eq!(OPTS[7].getopt_mixed(), "-P, --lanplus");
        assert_eq!(s::POWER_WAIT.getopt_mixed(), "--power-wait=[seconds]");
    }

    #[test]
    fn secret_debug_is_hidden() {
        let a = parse_stdin(&SPEC, "ip=h\npassword=hunter2\n").unwrap();
        assert!(!format!("{a:?}").contains("hunter2"));
    }

    proptest! {
        #[test]
        fn stdin_parser_never_panics(text in "(?s).{0,400}") {
            let _ = parse_stdin(&SPEC, &text);
        }

        #[test]
        fn stdin_parser_on_structured_lines(
            lines in proptest::collection::vec(
                ("(ip|ipaddr|port|plug|cipher|action|ipport|lanplus|power_wait|x)", "[ -~]{0,20}"), 0..10)
        ) {
            let text: String = lines.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
            let _ = parse_stdin(&SPEC, &text);
        }

        #[test]
        fn cli_parser_never_panics(args in proptest::collection::vec("[-a-z0-9=]{0,12}", 0..8)) {
            let _ = parse_cli(&SPEC, &args);
        }
    }
}
