//! fence_bulwark_redfish's fence-agents interface: bad input, documentation actions,
//! metadata accepted by xmllint (fence-agents and pcs RNGs), stonith_admin and pcs, and
//! the password never appearing in any argv in /proc nor in any output.

#[path = "redfish_lab/mod.rs"]
mod lab;

use lab::{cli_run, is_root, stdin_run, LabConfig, Run, SushyLab, AGENT, SYSTEM1};
use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "this is not a certificate\n").unwrap();
    let junk = junk.display();
    // 10.213.0.9 is never contacted: every case fails before any connection.
    let ok = "ip=10.213.0.9\nusername=admin\npassword=Sekr1tPw\n";
    let cases: &[(&str, String, &str)] = &[
        (
            "missing ip",
            "username=a\npassword=b\naction=status\n".into(),
            "required option 'ip' is missing",
        ),
        (
            "missing username",
            "ip=h\npassword=b\naction=status\n".into(),
            "required option 'username' is missing",
        ),
        (
            "missing password",
            "ip=h\nusername=a\naction=status\n".into(),
            "a password is required: set password or password_script",
        ),
        (
            "port 0",
            format!("{ok}ipport=0\naction=status\n"),
            "invalid value for 'ipport' \"0\": must be from 1 to 65535",
        ),
        (
            "port too big",
            format!("{ok}ipport=70000\n"),
            "invalid value for 'ipport'",
        ),
        (
            "port not a number",
            format!("{ok}ipport=https\n"),
            "not an integer",
        ),
        (
            "ip with a blank",
            "ip=bmc one\nusername=a\npassword=b\n".into(),
            "invalid value for 'ip' \"bmc one\"",
        ),
        (
            "ip with a URL",
            "ip=https://bmc/\nusername=a\npassword=b\n".into(),
            "invalid value for 'ip'",
        ),
        (
            "ip:port out of range",
            "ip=bmc:99999\nusername=a\npassword=b\n".into(),
            "the port after ':' must be from 1 to 65535",
        ),
        (
            "unclosed IPv6",
            "ip=[fe80::1\nusername=a\npassword=b\n".into(),
            "missing ']'",
        ),
        (
            "unknown action",
            format!("{ok}action=explode\n"),
            "unknown action \"explode\"",
        ),
        (
            "line without =",
            format!("{ok}just words\n"),
            "stdin line 4 is not a name=value pair",
        ),
        (
            "line without a name",
            format!("{ok}=Sekr1tPw\n"),
            "stdin line 4 does not start with an option name",
        ),
        ("plain HTTP", format!("{ok}ssl=0\n"), "plain HTTP"),
        (
            "ssl_insecure garbage",
            format!("{ok}ssl_insecure=maybe\n"),
            "invalid value for 'ssl_insecure'",
        ),
        (
            "insecure and pinned",
            format!("{ok}ssl_insecure=1\nssl_ca=/etc/ssl/certs/ca-certificates.crt\n"),
            "ssl_insecure and ssl_ca contradict each other",
        ),
        (
            "insecure and secure",
            format!("{ok}ssl_insecure=1\nssl_secure=1\n"),
            "ssl_insecure and ssl_secure contradict each other",
        ),
        (
            "missing CA file",
            format!("{ok}ssl_ca=/nonexistent/ca.pem\n"),
            "cannot read ssl_ca file \"/nonexistent/ca.pem\"",
        ),
        (
            "CA file without a certificate",
            format!("{ok}ssl_ca={junk}\n"),
            "holds no PEM certificate",
        ),
        (
            "relative systems_uri",
            format!("{ok}systems_uri=redfish/v1/Systems/1\n"),
            "invalid value for 'systems_uri'",
        ),
        (
            "systems_uri with ..",
            format!("{ok}systems_uri=/redfish/v1/Systems/../Managers/1\n"),
            "invalid value for 'systems_uri'",
        ),
        (
            "redfish_uri to another host",
            format!("{ok}redfish_uri=//evil.example/redfish/v1\n"),
            "invalid value for 'redfish_uri'",
        ),
        (
            "negative power_timeout",
            format!("{ok}power_timeout=-1\n"),
            "invalid value for 'power_timeout'",
        ),
        (
            "word login_timeout",
            format!("{ok}login_timeout=soon\n"),
            "invalid value for 'login_timeout'",
        ),
        (
            "method",
            format!("{ok}method=kick\n"),
            "invalid value for 'method'",
        ),
        (
            "user with a colon",
            "ip=h\nusername=ad:min\npassword=b\n".into(),
            "no ':'",
        ),
        (
            "missing password script",
            "ip=h\nusername=a\npassword_script=/nonexistent/pw-script\n".into(),
            "cannot run password_script",
        ),
        (
            "negative retry_on",
            format!("{ok}retry_on=-1\n"),
            "invalid value for 'retry_on'",
        ),
    ];
    assert!(cases.len() >= 15);
    for (what, input, needle) in cases {
        let r = stdin_run(input);
        assert_bad(&r, needle, what);
        assert!(
            !r.all().contains("Sekr1tPw"),
            "{what}: secret echoed: {r:?}"
        );
    }
}

#[test]
fn bad_command_line_input_exits_1_with_a_readable_message() {
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "missing ip",
            &["-l", "a", "-p", "Hunter2Hunter2", "-o", "status"],
            "required option 'ip' is missing",
        ),
        (
            "missing value",
            &["-a"],
            "a value is required for '--ip <ip>'",
        ),
        (
            "unknown option",
            &["-a", "h", "-l", "a", "-p", "Hunter2Hunter2", "--bogus"],
            "unexpected argument '--bogus'",
        ),
        (
            "bad port",
            &["-a", "h", "-l", "a", "-p", "Hunter2Hunter2", "-u", "0"],
            "invalid value for 'ipport'",
        ),
        (
            "stray word",
            &[
                "-a",
                "h",
                "-l",
                "a",
                "-p",
                "Hunter2Hunter2",
                "Hunter2Hunter2",
            ],
            "unexpected argument '[hidden]'",
        ),
        (
            "plain HTTP is not a flag value",
            &["-a", "h", "-l", "a", "-p", "Hunter2Hunter2", "--ssl=0"],
            "--ssl",
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
    for o in [
        "--ip <ip>",
        "--ipport <port>",
        "--systems-uri <uri>",
        "--ssl-insecure",
        "--ssl-ca <file>",
    ] {
        assert!(r.stdout.contains(o), "{o}: {r:?}");
    }
    let r = cli_run(&["-V"]);
    assert_eq!(
        (r.code, r.stdout.trim()),
        (
            0,
            concat!("fence_bulwark_redfish ", env!("CARGO_PKG_VERSION"))
        )
    );
    let r = cli_run(&["-o", "manpage"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.starts_with(".TH FENCE_BULWARK_REDFISH 8"), "{r:?}");
    assert!(r.stdout.contains("\\-\\-systems\\-uri=[uri]"), "{r:?}");
    // validate-all: no network; fence_redfish's other stdin names are ignored with a note.
    let r = stdin_run(
        "action=validate-all\nip=10.213.0.9:8443\nlogin=a\npasswd=b\nssl=1\nssl_secure=1\n\
         systems_uri=/redfish/v1/Systems/1\nport=node1\n",
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains("Parse error: Ignoring unknown option 'port'"),
        "{r:?}"
    );
    let r = stdin_run("action=validate-all\nip=10.213.0.9\nusername=a\npassword=b\nssl=0\n");
    assert_eq!(r.code, 1, "{r:?}");
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
fn metadata_validates_and_keeps_fence_redfish_names() {
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
        "ssl",
        "ssl_secure",
        "ssl_insecure",
        "ssl_ca",
        "redfish_uri",
        "systems_uri",
        "method",
        "power_wait",
        "power_timeout",
        "login_timeout",
        "stonith_status_sleep",
        "retry_on",
        "delay",
    ] {
        assert!(
            r.stdout.contains(&format!("<parameter name=\"{p}\" ")),
            "{p}"
        );
    }
    assert!(r
        .stdout
        .contains("<getopt mixed=\"-u, --ipport=[port]\" />\n\t\t<content type=\"integer\" default=\"443\" />"));
    assert!(r.stdout.contains("<getopt mixed=\"-z, --ssl\" />"));
    assert!(!r.stdout.contains("<action name=\"list\""));
}

/// Installs the agent as /usr/sbin/fence_bulwark_redfish for the test (pacemaker-fenced
/// discovers agents only there) and removes exactly that file afterwards.
struct Installed(std::path::PathBuf);
impl Drop for Installed {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn stonith_admin_and_pcs_accept_the_metadata() {
    let dest = std::path::PathBuf::from("/usr/sbin/fence_bulwark_redfish");
    if !is_root() {
        eprintln!("SKIP: installing into /usr/sbin needs root (CI runs as root)");
        return;
    }
    if lab::which("stonith_admin").is_none() || lab::which("pcs").is_none() {
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
        .args(["--metadata", "-a", "fence_bulwark_redfish"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("<resource-agent name=\"fence_bulwark_redfish\""),
        "{out}"
    );
    assert!(out.contains("name=\"systems_uri\""), "{out}");
    let o = Command::new("stonith_admin")
        .arg("--list-installed")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("fence_bulwark_redfish"));
    let o = Command::new("pcs")
        .args(["stonith", "describe", "fence_bulwark_redfish"])
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
    assert!(
        out.contains("systems_uri: Redfish Systems resource URI"),
        "{out}"
    );
    assert!(out.contains("ssl_ca: PEM file"), "{out}");
    assert!(
        out.contains("pcmk_host_list"),
        "pcs added the pcmk_* options: {out}"
    );
}

/// Scans every /proc/<pid>/cmdline until stopped. Returns (argvs containing `needle`,
/// pids whose argv contained `marker`).
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
fn password_never_appears_in_any_argv_nor_output() {
    // A password unique to this run, so other users of the machine cannot interfere.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let pw = format!("Pw{:08x}{:08x}", std::process::id(), nanos);
    let Some(lab) = SushyLab::start_with(&LabConfig {
        password: &pw,
        ..LabConfig::default()
    }) else {
        return;
    };
    let base = format!(
        "ip=127.0.0.1\nipport={}\nusername=admin\nssl_ca={}\nverbose=1\n",
        lab.port,
        lab.ca().display()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let scanner = scan_proc(pw.clone(), AGENT.to_string(), stop.clone());
    let mut runs = Vec::new();
    for _ in 0..3 {
        runs.push(stdin_run(&format!("{base}password={pw}\naction=status\n")));
    }
    // Failing runs must not show it either: a wrong password that contains the right
    // one, and an unknown system.
    runs.push(stdin_run(&format!("{base}password={pw}X\naction=status\n")));
    runs.push(stdin_run(&format!(
        "{base}password={pw}\nsystems_uri=/redfish/v1/Systems/none\naction=off\n"
    )));
    stop.store(true, Ordering::SeqCst);
    let (leaks, seen) = scanner.join().unwrap();
    assert_eq!((runs[0].code, runs[0].stdout.trim()), (0, "Status: ON"));
    assert_eq!(runs[3].code, 1, "{:?}", runs[3]);
    assert!(runs[3].stderr.contains("HTTP 401"), "{:?}", runs[3]);
    assert_eq!(runs[4].code, 1, "{:?}", runs[4]);
    assert!(!seen.is_empty(), "the scanner never saw the agent running");
    assert!(leaks.is_empty(), "password visible in argv: {leaks:?}");
    for r in &runs {
        assert!(!r.all().contains(&pw), "password in output: {r:?}");
    }
    let log = std::fs::read_to_string(lab.path("sushy.log")).unwrap();
    assert!(!log.contains(&pw), "password in the BMC's log");

    // Control: the same scanner does see a password an admin puts on the command line
    // (the agent cannot hide its own argv), so the check above can fail.
    let stop = Arc::new(AtomicBool::new(false));
    let scanner = scan_proc(pw.clone(), AGENT.to_string(), stop.clone());
    let port = lab.port.to_string();
    let ca = lab.ca().display().to_string();
    let mut seen_cli = false;
    for _ in 0..5 {
        let r = cli_run(&[
            "-a",
            "127.0.0.1",
            "-u",
            &port,
            "-l",
            "admin",
            "-p",
            &pw,
            "--ssl-ca",
            &ca,
            "--systems-uri",
            SYSTEM1,
            "-o",
            "status",
        ]);
        assert_eq!(r.code, 0, "{r:?}");
        assert!(!r.all().contains(&pw), "{r:?}");
        seen_cli = true;
    }
    stop.store(true, Ordering::SeqCst);
    let (leaks, _) = scanner.join().unwrap();
    assert!(seen_cli);
    assert!(
        !leaks.is_empty(),
        "the scanner should have seen the -p argument"
    );
}
