//! The fence-agents API (ClusterLabs FenceAgentAPI, modelled on fence-agents'
//! lib/fencing.py): one option table per agent drives stdin parsing, the command line
//! (clap), the metadata XML and the man page; one verified action engine runs
//! on/off/reboot/status/monitor/list/validate-all for any [`PowerDevice`]. An agent
//! supplies its table, its extra checks and a way to connect; nothing else.
//!
//! Exit codes: 0 success (status: power on), 2 status: power off, 1 every failure.
//!
//! A complete (if useless) agent:
//!
//! ```no_run
//! use ocf_metadata::fence::{self, std_opts as s, FenceAgent, FenceArgs, FenceError};
//! use ocf_metadata::fence::{FenceOpt, FenceSpec, Power, PowerDevice, Secret};
//!
//! static OPTIONS: &[FenceOpt] = &[
//!     s::ACTION, s::IP, s::IPPORT.default("443"), s::USERNAME, s::PASSWORD,
//!     s::PASSWORD_SCRIPT, s::POWER_WAIT, s::POWER_TIMEOUT, s::LOGIN_TIMEOUT,
//!     s::DELAY, s::RETRY_ON, s::VERBOSE,
//! ];
//! static SPEC: FenceSpec = FenceSpec {
//!     name: "fence_example",
//!     version: "0.1.0",
//!     shortdesc: "Example fence agent",
//!     longdesc: "Powers nothing.",
//!     vendor_url: "",
//!     options: OPTIONS,
//!     actions: &["on", "off", "reboot", "status", "monitor", "metadata", "manpage", "validate-all"],
//! };
//!
//! struct Device;
//! impl PowerDevice for Device {
//!     fn get_power(&mut self) -> Result<Power, FenceError> { Ok(Power::On) }
//!     fn set_power(&mut self, _target: Power) -> Result<(), FenceError> { Ok(()) }
//! }
//!
//! struct Agent;
//! impl FenceAgent for Agent {
//!     fn spec(&self) -> &'static FenceSpec { &SPEC }
//!     fn connect(&self, _args: &FenceArgs, _password: Option<&Secret>)
//!         -> Result<Box<dyn PowerDevice>, FenceError> { Ok(Box::new(Device)) }
//! }
//!
//! fn main() { std::process::exit(fence::main(&Agent)); }
//! ```

pub mod doc;
pub mod opts;
pub mod std_opts;

pub use opts::{
    parse_cli, parse_seconds, parse_stdin, Cli, FenceAction, FenceArgs, FenceOpt, FenceSpec,
    OptKind, Secret,
};

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A fence agent failure. Every variant exits 1; the variant only chooses the wording.
/// Messages never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum FenceError {
    /// Bad options or stdin.
    #[error("{0}")]
    BadInput(String),
    /// The device rejected our credentials or privilege.
    #[error("{0}")]
    Login(String),
    /// The device could not be reached or stopped answering.
    #[error("{0}")]
    Connection(String),
    /// The device answered with an error.
    #[error("{0}")]
    Device(String),
    /// The power state did not change in time.
    #[error("{0}")]
    Timeout(String),
}

impl FenceError {
    /// The process exit status for this failure (always 1, as fence-agents).
    pub fn exit_code(&self) -> i32 {
        1
    }
}

/// Power state of the fenced node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    On,
    Off,
}

impl Power {
    pub fn word(self) -> &'static str {
        match self {
            Power::On => "ON",
            Power::Off => "OFF",
        }
    }
}

/// A connected power device (one node). Dropped after one action.
pub trait PowerDevice {
    fn get_power(&mut self) -> Result<Power, FenceError>;
    fn set_power(&mut self, target: Power) -> Result<(), FenceError>;
    /// One power-cycle command (`method=cycle`).
    fn cycle(&mut self) -> Result<(), FenceError> {
        Err(FenceError::Device(
            "this device does not support method=cycle".into(),
        ))
    }
    /// Ends the connection (log out). Also expected from `Drop`.
    fn close(&mut self) -> Result<(), FenceError> {
        Ok(())
    }
}

/// A fence agent: its static description, its own checks and how to connect.
pub trait FenceAgent {
    fn spec(&self) -> &'static FenceSpec;
    /// Checks beyond the option table, without contacting the device.
    fn validate(&self, _args: &FenceArgs) -> Result<(), FenceError> {
        Ok(())
    }
    /// Connects and logs in. `password` is resolved from `password` or `password_script`.
    fn connect(
        &self,
        args: &FenceArgs,
        password: Option<&Secret>,
    ) -> Result<Box<dyn PowerDevice>, FenceError>;
}

/// How fast the power state is polled after a change, unless `stonith_status_sleep`
/// says otherwise.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How much stdin is read at most.
const STDIN_LIMIT: u64 = 1 << 20;

/// Progress on stderr with `verbose` (never secrets).
pub fn verbose(args: &FenceArgs, msg: &str) {
    if args.flag("verbose") {
        eprintln!("{msg}");
    }
}

/// The process entry point: argv (without the program name) or, without arguments,
/// stdin. Returns the exit status.
pub fn main(agent: &dyn FenceAgent) -> i32 {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut stdin = String::new();
    if argv.is_empty() {
        let mut bytes = Vec::new();
        if let Err(e) = std::io::stdin().take(STDIN_LIMIT).read_to_end(&mut bytes) {
            return fail(&FenceError::BadInput(format!(
                "cannot read standard input: {e}"
            )));
        }
        stdin = String::from_utf8_lossy(&bytes).into_owned();
    }
    run(agent, &argv, &stdin)
}

/// Reports a failure the fence-agents way plus the project's exit-reason line.
fn fail(e: &FenceError) -> i32 {
    eprintln!("Failed: {e}");
    crate::log::exit_reason(&e.to_string());
    if matches!(e, FenceError::BadInput(_)) {
        eprintln!("Please use '-h' for usage");
    }
    e.exit_code()
}

/// Runs one invocation: `argv` if not empty, else the `stdin` text.
pub fn run(agent: &dyn FenceAgent, argv: &[String], stdin: &str) -> i32 {
    let spec = agent.spec();
    let parsed = if argv.is_empty() {
        parse_stdin(spec, stdin)
    } else {
        match parse_cli(spec, argv) {
            Ok(Cli::Run(a)) => Ok(a),
            Ok(Cli::Help(h)) => {
                print!("{h}");
                return 0;
            }
            Ok(Cli::Version(v)) => {
                println!("{v}");
                return 0;
            }
            Err(e) => Err(e),
        }
    };
    let args = match parsed {
        Ok(a) => a,
        Err(e) => return fail(&e),
    };
    for w in &args.warnings {
        eprintln!("{w}");
    }
    match run_action(agent, &args) {
        Ok(code) => code,
        Err(e) => fail(&e),
    }
}

fn out(line: &str) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{line}");
    let _ = o.flush();
}

fn run_action(agent: &dyn FenceAgent, args: &FenceArgs) -> Result<i32, FenceError> {
    let spec = agent.spec();
    match args.action {
        FenceAction::Metadata => {
            print!("{}", doc::metadata(spec));
            return Ok(0);
        }
        FenceAction::Manpage => {
            print!("{}", doc::manpage(spec));
            return Ok(0);
        }
        _ => {}
    }
    agent.validate(args)?;
    let password = resolve_password(args)?;
    match args.action {
        FenceAction::ValidateAll => {
            verbose(args, "options are valid");
            return Ok(0);
        }
        FenceAction::List | FenceAction::ListStatus => {
            out("NOTICE: List option is not working on this device yet");
            return Ok(0);
        }
        FenceAction::Off | FenceAction::Reboot => {
            if let Some(d) = args.seconds("delay").filter(|d| !d.is_zero()) {
                verbose(args, &format!("delay: waiting {:.1} s", d.as_secs_f64()));
                std::thread::sleep(d);
            }
        }
        _ => {}
    }
    let mut dev = agent.connect(args, password.as_ref())?;
    let result = fence_action(dev.as_mut(), args);
    if let Err(e) = dev.close() {
        verbose(args, &format!("closing the connection failed: {e}"));
    }
    result
}

/// Polls until the power is `target`, after `power_wait`, for at most `power_timeout`.
fn wait_for(dev: &mut dyn PowerDevice, args: &FenceArgs, target: Power) -> Result<(), FenceError> {
    if let Some(w) = args.seconds("power_wait").filter(|w| !w.is_zero()) {
        std::thread::sleep(w);
    }
    let timeout = args
        .seconds("power_timeout")
        .unwrap_or(Duration::from_secs(20));
    let interval = args
        .seconds("stonith_status_sleep")
        .unwrap_or(POLL_INTERVAL)
        .max(Duration::from_millis(10));
    let deadline = Instant::now() + timeout;
    loop {
        if dev.get_power()? == target {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(FenceError::Timeout(format!(
                "Timed out waiting to power {} (power_timeout {:.1} s)",
                target.word(),
                timeout.as_secs_f64()
            )));
        }
        std::thread::sleep(interval.min(deadline - now));
    }
}

fn power_off_verified(dev: &mut dyn PowerDevice, args: &FenceArgs) -> Result<(), FenceError> {
    dev.set_power(Power::Off)?;
    verbose(args, "power off requested; polling");
    wait_for(dev, args, Power::Off)
}

fn power_on_verified(dev: &mut dyn PowerDevice, args: &FenceArgs) -> Result<(), FenceError> {
    let attempts = 1 + args.int("retry_on").unwrap_or(1).max(0);
    let mut last = None;
    for i in 0..attempts {
        dev.set_power(Power::On)?;
        verbose(
            args,
            &format!("power on requested (attempt {}); polling", i + 1),
        );
        match wait_for(dev, args, Power::On) {
            Ok(()) => return Ok(()),
            Err(e @ FenceError::Timeout(_)) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| FenceError::Timeout("Timed out waiting to power ON".into())))
}

/// The verified action engine (fencing.py's `fence_action`).
pub fn fence_action(dev: &mut dyn PowerDevice, args: &FenceArgs) -> Result<i32, FenceError> {
    let before = dev.get_power()?;
    verbose(args, &format!("power is {}", before.word()));
    match args.action {
        FenceAction::Status => {
            out(&format!("Status: {}", before.word()));
            Ok(if before == Power::On { 0 } else { 2 })
        }
        FenceAction::Monitor => Ok(0),
        FenceAction::On => {
            if before == Power::On {
                out("Success: Already ON");
            } else {
                power_on_verified(dev, args)?;
                out("Success: Powered ON");
            }
            Ok(0)
        }
        FenceAction::Off => {
            if before == Power::Off {
                out("Success: Already OFF");
            } else {
                power_off_verified(dev, args)?;
                out("Success: Powered OFF");
            }
            Ok(0)
        }
        FenceAction::Reboot if args.get("method") == Some("cycle") => {
            if before == Power::Off {
                // Many BMCs refuse a cycle while off (completion code D5h): power on.
                power_on_verified(dev, args)?;
            } else {
                let attempts = 1 + args.int("retry_on").unwrap_or(1).max(0);
                let mut result = Ok(());
                for _ in 0..attempts {
                    result = dev.cycle();
                    if result.is_ok() {
                        break;
                    }
                }
                result?;
                wait_for(dev, args, Power::On)?;
            }
            out("Success: Rebooted");
            Ok(0)
        }
        FenceAction::Reboot => {
            if before == Power::On {
                power_off_verified(dev, args)?;
            }
            // The node is fenced once it is off; a failed power-on is reported but,
            // as in fence-agents, does not fail the reboot.
            match power_on_verified(dev, args) {
                Ok(()) => out("Success: Rebooted"),
                Err(e) => {
                    eprintln!("Warning: the node is off but did not power on again: {e}");
                    out("Success: Powered OFF");
                }
            }
            Ok(0)
        }
        other => Err(FenceError::BadInput(format!(
            "action '{}' needs no device",
            other.name()
        ))),
    }
}

/// The password: `password`, else the output of `password_script` (run without a
/// shell: the words of the value are the program and its arguments; its standard
/// output minus trailing whitespace is the password), else none.
pub fn resolve_password(args: &FenceArgs) -> Result<Option<Secret>, FenceError> {
    if let Some(p) = args.secret("password") {
        return Ok(Some(p.clone()));
    }
    let Some(script) = args.get("password_script").filter(|s| !s.trim().is_empty()) else {
        return Ok(None);
    };
    let words: Vec<&str> = script.split_whitespace().collect();
    let timeout = args
        .seconds("login_timeout")
        .unwrap_or(Duration::from_secs(5))
        .max(Duration::from_secs(5));
    let mut child = Command::new(words[0])
        .args(&words[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| {
            FenceError::BadInput(format!("cannot run password_script {:?}: {e}", words[0]))
        })?;
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = (&mut stdout).take(64 * 1024).read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(FenceError::BadInput(format!(
                    "password_script {:?} did not finish within {:.0} s",
                    words[0],
                    timeout.as_secs_f64()
                )));
            }
        }
    };
    let bytes = reader.join().unwrap_or_default();
    if !status.success() {
        return Err(FenceError::BadInput(format!(
            "password_script {:?} failed ({status})",
            words[0]
        )));
    }
    let text = String::from_utf8_lossy(&bytes);
    Ok(Some(Secret::new(text.trim_end().to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// A scripted device: records calls; the power follows set_power after `lag` polls.
    struct Fake {
        power: Power,
        pending: Option<(Power, u32)>,
        lag: u32,
        log: Rc<RefCell<Vec<String>>>,
        stuck_on: bool,
    }

    impl PowerDevice for Fake {
        fn get_power(&mut self) -> Result<Power, FenceError> {
            if let Some((p, n)) = self.pending {
                if n == 0 {
                    self.power = p;
                    self.pending = None;
                } else {
                    self.pending = Some((p, n - 1));
                }
            }
            self.log
                .borrow_mut()
                .push(format!("get {}", self.power.word()));
            Ok(self.power)
        }
        fn set_power(&mut self, t: Power) -> Result<(), FenceError> {
            self.log.borrow_mut().push(format!("set {}", t.word()));
            if !(self.stuck_on && t == Power::On) {
                self.pending = Some((t, self.lag));
            }
            Ok(())
        }
        fn cycle(&mut self) -> Result<(), FenceError> {
            self.log.borrow_mut().push("cycle".into());
            Ok(())
        }
    }

    static SPEC: FenceSpec = FenceSpec {
        name: "fence_t",
        version: "0",
        shortdesc: "t",
        longdesc: "t",
        vendor_url: "",
        options: &[
            std_opts::ACTION,
            std_opts::POWER_WAIT,
            std_opts::POWER_TIMEOUT,
            std_opts::RETRY_ON,
            std_opts::METHOD,
        ],
        actions: &["on"],
    };

    fn go(
        stdin: &str,
        start: Power,
        lag: u32,
        stuck_on: bool,
    ) -> (Result<i32, FenceError>, Vec<String>) {
        let log = Rc::new(RefCell::new(Vec::new()));
        let mut f = Fake {
            power: start,
            pending: None,
            lag,
            log: log.clone(),
            stuck_on,
        };
        let args = parse_stdin(&SPEC, stdin).unwrap();
        let r = fence_action(&mut f, &args);
        let l = log.borrow().clone();
        (r, l)
    }

    #[test]
    fn status_exit_codes() {
        assert_eq!(go("action=status", Power::On, 0, false).0.unwrap(), 0);
        assert_eq!(go("action=status", Power::Off, 0, false).0.unwrap(), 2);
        assert_eq!(go("action=monitor", Power::Off, 0, false).0.unwrap(), 0);
    }

    #[test]
    fn already_in_state_does_nothing() {
        let (r, l) = go("action=off", Power::Off, 0, false);
        assert_eq!(r.unwrap(), 0);
        assert_eq!(l, vec!["get OFF"]);
        let (_, l) = go("action=on", Power::On, 0, false);
        assert_eq!(l, vec!["get ON"]);
    }

    #[test]
    fn reboot_is_off_verified_then_on_verified() {
        let (r, l) = go("action=reboot", Power::On, 2, false);
        assert_eq!(r.unwrap(), 0);
        assert_eq!(
            l,
            vec![
                "get ON", "set OFF", "get ON", "get ON", "get OFF", "set ON", "get OFF", "get OFF",
                "get ON"
            ]
        );
    }

    #[test]
    fn reboot_of_an_off_node_only_powers_on() {
        let (_, l) = go("action=reboot", Power::Off, 0, false);
        assert_eq!(l, vec!["get OFF", "set ON", "get ON"]);
    }

    #[test]
    fn off_times_out_within_power_timeout() {
        let t = Instant::now();
        let (r, _) = go("action=off\npower_timeout=0.3", Power::On, 1000, false);
        assert!(matches!(r, Err(FenceError::Timeout(ref m)) if m.contains("power OFF")));
        assert!(t.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn on_is_retried_retry_on_times() {
        let (r, l) = go(
            "action=on\npower_timeout=0.1\nretry_on=2",
            Power::Off,
            0,
            true,
        );
        assert!(r.is_err());
        assert_eq!(l.iter().filter(|x| *x == "set ON").count(), 3);
        // A reboot whose power-on fails still succeeds: the node is off.
        let (r, _) = go(
            "action=reboot\npower_timeout=0.1\nretry_on=0",
            Power::On,
            0,
            true,
        );
        assert_eq!(r.unwrap(), 0);
    }

    #[test]
    fn cycle_method() {
        let (_, l) = go("action=reboot\nmethod=cycle", Power::On, 0, false);
        assert_eq!(l, vec!["get ON", "cycle", "get ON"]);
        let (_, l) = go("action=reboot\nmethod=cycle", Power::Off, 0, false);
        assert_eq!(l, vec!["get OFF", "set ON", "get ON"]);
    }

    #[test]
    fn password_script_without_shell() {
        static S: FenceSpec = FenceSpec {
            name: "fence_t",
            version: "0",
            shortdesc: "t",
            longdesc: "t",
            vendor_url: "",
            options: &[
                std_opts::ACTION,
                std_opts::PASSWORD,
                std_opts::PASSWORD_SCRIPT,
            ],
            actions: &["on"],
        };
        let a = parse_stdin(&S, "passwd_script=/bin/echo hunter2  \n").unwrap();
        assert_eq!(resolve_password(&a).unwrap().unwrap().expose(), "hunter2");
        // A shell construct is just an argument, never interpreted.
        let a = parse_stdin(&S, "password_script=/bin/echo $(id)\n").unwrap();
        assert_eq!(resolve_password(&a).unwrap().unwrap().expose(), "$(id)");
        let a = parse_stdin(&S, "password_script=/bin/false\n").unwrap();
        assert!(resolve_password(&a).is_err());
        let a = parse_stdin(&S, "password=x\npassword_script=/bin/false\n").unwrap();
        assert_eq!(resolve_password(&a).unwrap().unwrap().expose(), "x");
    }
}
