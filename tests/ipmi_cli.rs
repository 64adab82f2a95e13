//! fence_bulwark_ipmi's fence-agents interface: bad input, metadata accepted by
//! xmllint (fence-agents and pcs RNGs), stonith_admin and pcs, documentation actions,
//! and the password never appearing in any argv in /proc.

#[path = "bmc/mod.rs"]
mod bmc;

use bmc::{cli_run, is_root, stdin_run, IpmiSim, Run, AGENT};
use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn assert_bad(r: &Run, needle: &str, what: &str) {
    assert_eq!(r.code, 1, "{what}: {r:?}");
    assert!(r.stderr.contains("Failed: "), "{what}: {r:?}");
    assert!(r.stderr.contains(needle), "{what}: want {needle:?}: {r:?}");
    assert!(r.stderr.contains("ocf-exit-reason:"), "{what}: {r:?}");
    assert!(r.stdout.is_empty(), "{what}: {r:?}");
    assert!(r.elapsed < Duration::from_secs(3), "{what}: {r:?}");
}

#[test]
fn bad_stdin_input_exits_1_with_a_readable_message() {
    let ok = "ip=127.0.0.1\nusername=admin\npassword=x\n";
    let cases: &[(&str, String, &str)] = &[
        (
            "missing ip",
            "action=status\n".into(),
            "required option 'ip' is missing",
        ),
        (
            "port 0",
            format!("{ok}ipport=0\naction=status\n"),
            "invalid value for 'ipport' \"0\": must be from 1 to 65535",
        ),
        (
            "port too big",
            format!("{ok}ipport=65536\naction=status\n"),
            "invalid value for 'ipport'",
        ),
        (
            "port not a number",
            format!("{ok}ipport=abc\naction=status\n"),
            "not an integer",
        ),
        (
            "unknown action",
            format!("{ok}action=explode\n"),
            "unknown action \"explode\"",
        ),
        (
            "line without =",
            format!("{ok}this is not an option\n"),
            "stdin line 4 is not a name=value pair",
        ),
        (
            "line without a name",
            format!("{ok}=value\n"),
            "stdin line 4 does not start with an option name",
        ),
        (
            "unknown cipher number",
            format!("{ok}cipher=1\n"),
            "invalid value for 'cipher' \"1\": must be one of: auto, 3, 17",
        ),
        (
            "unknown cipher word",
            format!("{ok}cipher=aes\n"),
            "invalid value for 'cipher'",
        ),
        ("lanplus off", format!("{ok}lanplus=0\n"), "IPMI 1.5"),
        (
            "lanplus garbage",
            format!("{ok}lanplus=perhaps\n"),
            "invalid value for 'lanplus'",
        ),
        (
            "privlvl",
            format!("{ok}privlvl=root\n"),
            "invalid value for 'privlvl'",
        ),
        (
            "method",
            format!("{ok}method=kick\n"),
            "invalid value for 'method'",
        ),
        (
            "negative power_timeout",
            format!("{ok}power_timeout=-5\n"),
            "invalid value for 'power_timeout'",
        ),
        (
            "word login_timeout",
            format!("{ok}login_timeout=soon\n"),
            "invalid value for 'login_timeout'",
        ),
        (
            "exponent delay",
            format!("{ok}delay=1e3\n"),
            "invalid value for 'delay'",
        ),
        (
            "negative retry_on",
            format!("{ok}retry_on=-1\n"),
            "invalid value for 'retry_on'",
        ),
        (
            "kg not hex",
            format!("{ok}hexadecimal_kg=xyzzy\n"),
            "hexadecimal_kg is not a hexadecimal string",
        ),
        (
            "user too long",
            "ip=h\nusername=abcdefghijklmnopq\naction=status\n".into(),
            "longer than 16 bytes",
        ),
        (
            "password too long",
            "ip=h\npassword=Sup3rSecretLongPassw0rd\naction=status\n".into(),
            "IPMI 2.0 allows at most 20",
        ),
        ("blank ip", "ip=   \naction=status\n".into(), "'ip'"),
        (
            "missing password script",
            "ip=h\npassword_script=/nonexistent/pw-script\n".into(),
            "cannot run password_script",
        ),
        (
            "failing password script",
            "ip=h\npassword_script=/bin/false\n".into(),
            "password_script \"/bin/false\" failed",
        ),
    ];
    assert!(cases.len() >= 15);
    for (what, input, needle) in cases {
        let r = stdin_run(input);
        assert_bad(&r, needle, what);
        for secret in ["Sup3rSecretLongPassw0rd", "xyzzy"] {
            assert!(!r.all().contains(secret), "{what}: secret echoed: {r:?}");
        }
    }
}

#[test]
fn bad_command_line_input_exits_1_with_a_readable_message() {
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "missing ip",
            &["-o", "status"],
            "required option 'ip' is missing",
        ),
        (
            "missing value",
            &["-a"],
            "a value is required for '--ip <ip>'",
        ),
        (
            "unknown option",
            &["-a", "h", "--bogus"],
            "unexpected argument '--bogus'",
        ),
        (
            "unknown action",
            &["-a", "h", "-o", "explode"],
            "unknown action",
        ),
        (
            "bad port",
            &["-a", "h", "-u", "99999", "-o", "status"],
            "invalid value for 'ipport'",
        ),
        (
            "unknown cipher",
            &["-a", "h", "-C", "5", "-o", "status"],
            "invalid value for 'cipher'",
        ),
        (
            "stray word",
            &["-a", "h", "-p", "Hunter2Hunter2", "Hunter2Hunter2"],
            "unexpected argument '[hidden]'",
        ),
    ];
    for (what, args, needle) in cases {
        let r = cli_run(args);
        assert_bad(&r, needle, what);
        assert!(!r.all().contains("Hunter2Hunter2"), "{what}: {r:?}");
    }
}

#[test]
fn documentation_and_local_actions() {
    let r = cli_run(&["-h"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("--ipport <port>") && r.stdout.contains("-C, --cipher"),
        "{r:?}"
    );
    let r = cli_run(&["-V"]);
    assert_eq!(
        (r.code, r.stdout.trim()),
        (0, concat!("fence_bulwark_ipmi ", env!("CARGO_PKG_VERSION")))
    );
    let r = cli_run(&["-o", "manpage"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.starts_with(".TH FENCE_BULWARK_IPMI 8"), "{r:?}");
    assert!(r.stdout.contains("\\-C, \\-\\-cipher=[cipher]"), "{r:?}");
    // validate-all: no network; unknown stdin names (fence_ipmilan's) are ignored with a note.
    let r = stdin_run("action=validate-all\nip=10.213.0.9\nusername=a\npassword=b\nipmitool_path=/usr/bin/ipmitool\n");
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains("Parse error: Ignoring unknown option 'ipmitool_path'"),
        "{r:?}"
    );
    let r = stdin_run("action=validate-all\nip=10.213.0.9\nlanplus=0\n");
    assert_eq!(r.code, 1, "{r:?}");
    // list: one BMC, one node (fence_ipmilan's answer).
    for a in ["list", "list-status"] {
        let r = stdin_run(&format!("action={a}\nip=10.213.0.9\n"));
        assert_eq!(r.code, 0, "{r:?}");
        assert!(
            r.stdout
                .contains("List option is not working on this device"),
            "{r:?}"
        );
    }
}

fn metadata_validates(xml: &str) {
    for rng in [
        "/usr/share/cluster/relaxng/metadata.rng",
        "/usr/share/pcs/data/ocf-1.0.rng",
    ] {
        if !std::path::Path::new(rng).exists() {
            eprintln!("SKIP {rng}: not installed (fence-agents / pcs)");
            continue;
        }
        let mut c = Command::new("xmllint")
            .args(["--noout", "--relaxng", rng, "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("xmllint (libxml2-utils)");
        c.stdin.take().unwrap().write_all(xml.as_bytes()).unwrap();
        let o = c.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "{rng}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn metadata_validates_against_the_fence_agents_and_pcs_schemas() {
    let r = cli_run(&["-o", "metadata"]);
    assert_eq!(r.code, 0);
    metadata_validates(&r.stdout);
    let s = stdin_run("action=meta-data\n");
    assert_eq!(s.code, 0);
    assert_eq!(s.stdout, r.stdout);
    for p in [
        "ip",
        "ipaddr",
        "ipport",
        "username",
        "login",
        "password",
        "passwd",
        "password_script",
        "passwd_script",
        "lanplus",
        "cipher",
        "privlvl",
        "method",
        "power_wait",
        "power_timeout",
        "login_timeout",
        "retry_on",
        "delay",
        "hexadecimal_kg",
        "plug",
        "port",
    ] {
        assert!(
            r.stdout.contains(&format!("<parameter name=\"{p}\" ")),
            "{p}"
        );
    }
    assert!(r
        .stdout
        .contains("<parameter name=\"ip\" unique=\"0\" required=\"1\" obsoletes=\"ipaddr\">"));
    assert!(r
        .stdout
        .contains("<content type=\"select\" default=\"auto\" >"));
    assert!(
        !r.stdout.contains("<action name=\"list\""),
        "no dynamic list: one BMC, one node"
    );
}

/// Installs the agent as /usr/sbin/fence_bulwark_ipmi for the test (pacemaker-fenced
/// discovers agents only there) and removes exactly that file afterwards. Packaging
/// (the .deb/.rpm) installs it for real.
struct Installed(std::path::PathBuf);
impl Drop for Installed {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn stonith_admin_and_pcs_accept_the_metadata() {
    let dest = std::path::PathBuf::from("/usr/sbin/fence_bulwark_ipmi");
    if !is_root() {
        eprintln!("SKIP: installing into /usr/sbin needs root (CI runs as root)");
        return;
    }
    if bmc::which("stonith_admin").is_none() || bmc::which("pcs").is_none() {
        eprintln!("SKIP: stonith_admin/pcs not installed (pacemaker-cli-utils, pcs)");
        return;
    }
    // Package installs (packaging/install-check.sh) hold this lock: never race them.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/run/lock/bulwark-system-paths.lock")
        .unwrap();
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a file descriptor we own; released when `lock` is dropped.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let _guard = if dest.exists() {
        eprintln!(
            "note: {} already installed (package?); testing that copy",
            dest.display()
        );
        None
    } else {
        std::fs::copy(AGENT, &dest).unwrap();
        Some(Installed(dest.clone()))
    };
    let o = Command::new("stonith_admin")
        .args(["--metadata", "-a", "fence_bulwark_ipmi"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("<resource-agent name=\"fence_bulwark_ipmi\""),
        "{out}"
    );
    assert!(out.contains("name=\"cipher\""), "{out}");
    let o = Command::new("stonith_admin")
        .arg("--list-installed")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("fence_bulwark_ipmi"));
    let o = Command::new("pcs")
        .args(["stonith", "describe", "fence_bulwark_ipmi"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("ip (required): IP address or hostname of the BMC"),
        "{out}"
    );
    assert!(out.contains("cipher: RMCP+ cipher suite"), "{out}");
    assert!(
        out.contains("pcmk_host_list"),
        "pcs added the pcmk_* options: {out}"
    );
}

/// Scans every /proc/<pid>/cmdline until stopped. Returns (pids whose argv contained
/// `needle`, pids whose argv contained `marker`).
fn scan_proc(
    needle: String,
    marker: String,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<(BTreeSet<String>, BTreeSet<u32>)> {
    std::thread::spawn(move || {
        let mut leaks = BTreeSet::new();
        let mut seen = BTreeSet::new();
        while !stop.load(Ordering::SeqCst) {
            let Ok(dir) = std::fs::read_dir("/proc") else {
                break;
            };
            for e in dir.flatten() {
                let name = e.file_name();
                let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
                    continue;
                };
                let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
                    continue;
                };
                let argv = String::from_utf8_lossy(&raw).replace('\0', " ");
                if argv.contains(&needle) {
                    leaks.insert(argv.clone());
                }
                if argv.contains(&marker) {
                    seen.insert(pid);
                }
            }
        }
        (leaks, seen)
    })
}

#[test]
fn password_never_appears_in_any_argv_in_proc() {
    // A password unique to this run, so other users of the machine cannot interfere.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let pw = format!("Pw{:08x}{:08x}", std::process::id(), nanos);
    let Some(sim) = IpmiSim::start_with_password(&pw) else {
        return;
    };
    let stdin = format!(
        "ip=127.0.0.1\nipport={}\nusername=admin\npassword={pw}\ncipher=3\nverbose=1\npower_wait=0.4\naction=reboot\n",
        sim.port
    );

    let stop = Arc::new(AtomicBool::new(false));
    let scanner = scan_proc(pw.clone(), AGENT.to_string(), stop.clone());
    let runs = Mutex::new(Vec::new());
    for _ in 0..2 {
        runs.lock().unwrap().push(stdin_run(&stdin));
    }
    // A failing run (wrong password) must not show the wrong one either.
    let wrong = format!("{pw}X");
    runs.lock().unwrap().push(stdin_run(&format!(
        "ip=127.0.0.1\nipport={}\nusername=admin\npassword={wrong}\ncipher=3\nverbose=1\naction=off\n",
        sim.port
    )));
    stop.store(true, Ordering::SeqCst);
    let (leaks, seen) = scanner.join().unwrap();
    let runs = runs.into_inner().unwrap();
    assert_eq!(runs[0].code, 0, "{:?}", runs[0]);
    assert_eq!(runs[2].code, 1, "{:?}", runs[2]);
    assert!(!seen.is_empty(), "the scanner never saw the agent running");
    assert!(leaks.is_empty(), "password visible in argv: {leaks:?}");
    for r in &runs {
        assert!(!r.all().contains(&pw), "password in output: {r:?}");
    }
    assert_eq!(
        sim.events(),
        ["power_off", "power_on", "power_off", "power_on"]
    );

    // The same scanner catches fence_ipmilan, which passes the password to ipmitool's
    // argv: this shows the check above can fail. ipmitool lives only ~30 ms, so
    // fence_ipmilan is pointed at a wrapper that waits 0.3 s before exec'ing ipmitool
    // (the wrapper receives exactly the argv fence_ipmilan builds).
    let Some(ipmitool) = bmc::which("ipmitool") else {
        eprintln!("SKIP control: ipmitool not installed");
        return;
    };
    if bmc::which("fence_ipmilan").is_none() {
        eprintln!("SKIP control: fence_ipmilan not installed");
        return;
    }
    let wrapper = sim.path("slow-ipmitool");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nsleep 0.3\nexec {} \"$@\"\n", ipmitool.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let scanner = scan_proc(pw.clone(), "slow-ipmitool".into(), stop.clone());
    let mut c = Command::new("fence_ipmilan")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin
        .take()
        .unwrap()
        .write_all(
            format!(
                "ip=127.0.0.1\nipport={}\nusername=admin\npassword={pw}\nlanplus=1\ncipher=3\n\
                 ipmitool_path={}\naction=status\n",
                sim.port,
                wrapper.display()
            )
            .as_bytes(),
        )
        .unwrap();
    let o = c.wait_with_output().unwrap();
    stop.store(true, Ordering::SeqCst);
    let (leaks, seen) = scanner.join().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!seen.is_empty(), "the scanner never saw the wrapper");
    assert!(
        !leaks.is_empty(),
        "the scanner should have seen fence_ipmilan's ipmitool -P"
    );
}
