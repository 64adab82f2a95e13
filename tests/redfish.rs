//! fence_bulwark_redfish against sushy-tools (fake driver, HTTPS on 127.0.0.1, started
//! by the test). The emulator applies each power change after a random 1-11 s, so the
//! tests keep power transitions few: the stdin form and the option form each run one
//! off, one on and one reboot (4 transitions), in parallel on their own emulators; the
//! error checks share a third emulator, which ends with one method=cycle reboot.

#[path = "redfish_lab/mod.rs"]
mod lab;

use lab::{cli_run, stdin_run, LabConfig, Run, SushyLab, SYSTEM1, SYSTEM2, UUID1, UUID2};
use std::net::TcpListener;
use std::time::Duration;

macro_rules! lab {
    ($cfg:expr) => {
        match SushyLab::start_with(&$cfg) {
            Some(l) => l,
            None => return,
        }
    };
}

fn done(r: &Run, code: i32, stdout: &str) {
    assert_eq!((r.code, r.stdout.trim()), (code, stdout), "{r:?}");
}

#[test]
fn status_off_on_reboot_stdin_form() {
    let lab = lab!(LabConfig::default());
    // Certificate checked against the pinned test CA (no ssl_insecure), discovery of
    // the only system.
    let base = format!(
        "ip=127.0.0.1\nipport={}\nusername=admin\npassword=fencepass\nssl_ca={}\nnodename=node1\n",
        lab.port,
        lab.ca().display()
    );
    done(
        &stdin_run(&format!("{base}action=status\n")),
        0,
        "Status: ON",
    );
    done(
        &stdin_run(&format!("{base}action=off\n")),
        0,
        "Success: Powered OFF",
    );
    assert_eq!(lab.transitions("node1", "On"), ["On", "Off"]);
    done(
        &stdin_run(&format!("{base}action=status\n")),
        2,
        "Status: OFF",
    );
    done(
        &stdin_run(&format!("{base}action=on\n")),
        0,
        "Success: Powered ON",
    );
    // The default action is reboot: off, verified off, on, verified on.
    let r = stdin_run(&base);
    done(&r, 0, "Success: Rebooted");
    assert_eq!(
        lab.transitions("node1", "On"),
        ["On", "Off", "On", "Off", "On"],
        "the BMC saw the transitions in order: {:?}",
        lab.notes()
    );
    assert_eq!(lab.reset_posts(), 4, "one Reset POST per transition");
    done(
        &stdin_run(&format!("{base}action=status\n")),
        0,
        "Status: ON",
    );
}

#[test]
fn status_off_on_reboot_option_form() {
    let lab = lab!(LabConfig::default());
    let port = lab.port.to_string();
    let base = [
        "-a",
        "127.0.0.1",
        "-u",
        &port,
        "-l",
        "admin",
        "-p",
        "fencepass",
        "--ssl-insecure",
    ];
    let run = |action: &str| {
        let mut a = base.to_vec();
        a.extend(["-o", action]);
        cli_run(&a)
    };
    done(&run("status"), 0, "Status: ON");
    done(&run("off"), 0, "Success: Powered OFF");
    done(&run("status"), 2, "Status: OFF");
    done(&run("on"), 0, "Success: Powered ON");
    done(&run("reboot"), 0, "Success: Rebooted");
    // Long options, the system named explicitly, the pinned CA, ip:port.
    let r = cli_run(&[
        &format!("--ip=127.0.0.1:{port}"),
        "--username=admin",
        "--password=fencepass",
        &format!("--ssl-ca={}", lab.ca().display()),
        &format!("--systems-uri={SYSTEM1}"),
        "--action=status",
    ]);
    done(&r, 0, "Status: ON");
    assert_eq!(
        lab.transitions("node1", "On"),
        ["On", "Off", "On", "Off", "On"],
        "{:?}",
        lab.notes()
    );
}

fn assert_fails(r: &Run, needles: &[&str], within: Duration, what: &str) {
    assert_eq!(r.code, 1, "{what}: {r:?}");
    assert!(r.stdout.is_empty(), "{what}: {r:?}");
    assert!(r.stderr.contains("Failed: "), "{what}: {r:?}");
    assert!(r.stderr.contains("ocf-exit-reason:"), "{what}: {r:?}");
    for n in needles {
        assert!(r.stderr.contains(n), "{what}: want {n:?}: {r:?}");
    }
    assert!(r.elapsed < within, "{what}: not bounded: {r:?}");
}

/// Two systems (node1 on, node2 off); no power changes until a final method=cycle.
#[test]
fn errors_are_clear_and_bounded_and_systems_are_never_guessed() {
    let lab = lab!(LabConfig {
        systems: vec![(UUID1, "node1", "On"), (UUID2, "node2", "Off")],
        password: "fencepass",
    });
    let p = lab.port;
    let ca = lab.ca();
    let ca = ca.display();
    let lt = Duration::from_secs(3);
    let creds = format!("ip=127.0.0.1\nipport={p}\nusername=admin\nlogin_timeout=3\n");

    // A certificate the system store does not trust, without ssl_insecure.
    let r = stdin_run(&format!(
        "{creds}password=fencepass\nsystems_uri={SYSTEM1}\naction=status\n"
    ));
    assert_fails(
        &r,
        &[
            "the BMC's certificate is not trusted (unknown issuer)",
            "ssl_ca",
        ],
        lt,
        "untrusted certificate",
    );
    // Pinned to another CA: also refused.
    lab::make_ca(lab.dir.path(), "other", false);
    let r = stdin_run(&format!(
        "{creds}password=fencepass\nssl_ca={}\nsystems_uri={SYSTEM1}\naction=status\n",
        lab.path("other-ca.pem").display()
    ));
    assert_fails(&r, &["not trusted"], lt, "other CA");

    // Wrong password: 401, named, the password never echoed.
    let r = stdin_run(&format!(
        "{creds}password=Wr0ngPassw0rd\nssl_ca={ca}\naction=status\n"
    ));
    assert_fails(
        &r,
        &[
            "authentication failed",
            "HTTP 401 Unauthorized",
            "wrong username or password for user 'admin'",
        ],
        lt,
        "wrong password",
    );
    assert!(!r.all().contains("Wr0ngPassw0rd"), "{r:?}");

    // Several systems and no systems_uri: an error that lists them, never a guess.
    let ok = format!("{creds}password=fencepass\nssl_ca={ca}\n");
    let r = stdin_run(&format!("{ok}action=off\n"));
    assert_fails(
        &r,
        &[
            "the BMC manages 2 systems",
            SYSTEM1,
            SYSTEM2,
            "choose one with systems_uri",
        ],
        lt,
        "two systems",
    );

    // Unknown system: 404, named.
    let r = stdin_run(&format!(
        "{ok}systems_uri=/redfish/v1/Systems/nope\naction=status\n"
    ));
    assert_fails(
        &r,
        &[
            "unknown system /redfish/v1/Systems/nope",
            "HTTP 404",
            "check systems_uri",
        ],
        lt,
        "unknown system",
    );

    // Each system by its path; node2 also by name (the emulator redirects to the UUID).
    let r = stdin_run(&format!("{ok}systems_uri={SYSTEM1}\naction=status\n"));
    done(&r, 0, "Status: ON");
    let r = stdin_run(&format!(
        "{ok}systems_uri=/redfish/v1/Systems/node2\naction=status\n"
    ));
    done(&r, 2, "Status: OFF");
    // Idempotent: off on an off node sends nothing; monitor works.
    let r = stdin_run(&format!("{ok}systems_uri={SYSTEM2}\naction=off\n"));
    done(&r, 0, "Success: Already OFF");
    let r = stdin_run(&format!("{ok}systems_uri={SYSTEM2}\naction=monitor\n"));
    assert_eq!(r.code, 0, "{r:?}");
    // password_script, run without a shell.
    let script = lab.path("pw.sh");
    std::fs::write(&script, "#!/bin/sh\necho fencepass\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    let r = stdin_run(&format!(
        "{creds}passwd_script={}\nssl_ca={ca}\nsystems_uri={SYSTEM1}\naction=status\n",
        script.display()
    ));
    done(&r, 0, "Status: ON");
    assert_eq!(lab.reset_posts(), 0, "no power change was sent");
    assert!(lab.notes().is_empty(), "{:?}", lab.notes());

    // method=cycle: one ForceRestart (advertised by the BMC), then verified on.
    let r = stdin_run(&format!(
        "{ok}systems_uri={SYSTEM1}
method=cycle
verbose=1
action=reboot
"
    ));
    done(&r, 0, "Success: Rebooted");
    assert!(
        r.stderr.contains("ResetType=ForceRestart: HTTP 204"),
        "{r:?}"
    );
    assert_eq!(lab.reset_posts(), 1);
    assert_eq!(
        lab.transitions("node1", "On"),
        ["On", "Off", "On"],
        "{:?}",
        lab.notes()
    );
    assert_eq!(lab.transitions("node2", "Off"), ["Off"]);
}

#[test]
fn unreachable_and_silent_bmcs_fail_within_login_timeout() {
    // A port nobody listens on: refused at once.
    let port = lab::free_tcp_port();
    let base = format!(
        "ip=127.0.0.1\nipport={port}\nusername=admin\npassword=fencepass\nssl_insecure=1\n"
    );
    let r = stdin_run(&format!("{base}login_timeout=2\naction=off\n"));
    assert_fails(
        &r,
        &["connection refused"],
        Duration::from_secs(2),
        "closed port",
    );
    // A BMC that accepts the connection and never answers (the kernel completes the
    // handshake from the listen backlog; nobody accepts): bounded by login_timeout.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let r = stdin_run(&format!(
        "ip=127.0.0.1\nipport={port}\nusername=admin\npassword=fencepass\nssl_insecure=1\n\
         login_timeout=1.5\naction=reboot\n"
    ));
    assert_fails(
        &r,
        &["no answer from the BMC", "within 1.5 s (login_timeout)"],
        Duration::from_millis(2500),
        "silent BMC",
    );
    assert!(
        r.elapsed >= Duration::from_millis(1400),
        "gave up too early: {r:?}"
    );
    drop(silent);
}
