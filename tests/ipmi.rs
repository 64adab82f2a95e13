//! fence_bulwark_ipmi against OpenIPMI's ipmi_sim (cipher suite 3) on 127.0.0.1, with a
//! chassis hook that records the real power transitions. Each test starts its own sim.

#[path = "bmc/mod.rs"]
mod bmc;

use bmc::{cli_run, stdin_for, stdin_run, IpmiSim};
use std::time::Duration;

macro_rules! sim {
    () => {
        match IpmiSim::start() {
            Some(s) => s,
            None => return,
        }
    };
}

#[test]
fn status_off_on_reboot_stdin_form() {
    let sim = sim!();
    let base = stdin_for(sim.port, "cipher=3\n");
    let r = stdin_run(&format!("{base}action=status\n"));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.trim(), "Status: ON");

    let r = stdin_run(&format!("{base}action=off\n"));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.trim(), "Success: Powered OFF");
    assert!(!sim.power_on());
    let r = stdin_run(&format!("{base}action=status\n"));
    assert_eq!((r.code, r.stdout.trim()), (2, "Status: OFF"), "{r:?}");

    let r = stdin_run(&format!("{base}action=on\n"));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.trim(), "Success: Powered ON");
    assert!(sim.power_on());

    // Default action is reboot.
    let r = stdin_run(&base);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.stdout.trim(), "Success: Rebooted");
    assert!(sim.power_on());
    assert_eq!(
        sim.events(),
        ["power_off", "power_on", "power_off", "power_on"],
        "the hook saw the transitions in order"
    );
}

#[test]
fn status_off_on_reboot_option_form() {
    let sim = sim!();
    let port = sim.port.to_string();
    let base = [
        "-a",
        "127.0.0.1",
        "-u",
        &port,
        "-l",
        "admin",
        "-p",
        "fencepass",
        "-P",
        "-C",
        "3",
    ];
    let run = |action: &str| {
        let mut a = base.to_vec();
        a.extend(["-o", action]);
        cli_run(&a)
    };
    let r = run("status");
    assert_eq!((r.code, r.stdout.trim()), (0, "Status: ON"), "{r:?}");
    let r = run("off");
    assert_eq!(
        (r.code, r.stdout.trim()),
        (0, "Success: Powered OFF"),
        "{r:?}"
    );
    let r = run("status");
    assert_eq!((r.code, r.stdout.trim()), (2, "Status: OFF"), "{r:?}");
    let r = run("on");
    assert_eq!(
        (r.code, r.stdout.trim()),
        (0, "Success: Powered ON"),
        "{r:?}"
    );
    let r = run("reboot");
    assert_eq!((r.code, r.stdout.trim()), (0, "Success: Rebooted"), "{r:?}");
    // Long options too.
    let r = cli_run(&[
        "--ip=127.0.0.1",
        &format!("--ipport={port}"),
        "--username=admin",
        "--password=fencepass",
        "--cipher=3",
        "--action=status",
    ]);
    assert_eq!((r.code, r.stdout.trim()), (0, "Status: ON"), "{r:?}");
    assert_eq!(
        sim.events(),
        ["power_off", "power_on", "power_off", "power_on"]
    );
}

#[test]
fn actions_are_idempotent_and_old_names_work() {
    let sim = sim!();
    sim.set_power(false);
    let old = format!(
        "ipaddr=127.0.0.1\nipport={}\nlogin=admin\npasswd=fencepass\nlanplus=true\ncipher=3\n",
        sim.port
    );
    let r = stdin_run(&format!("{old}action=off\n"));
    assert_eq!(
        (r.code, r.stdout.trim()),
        (0, "Success: Already OFF"),
        "{r:?}"
    );
    assert!(sim.events().is_empty(), "no power change for an off node");
    // A reboot of an off node powers it on (no needless off).
    let r = stdin_run(&format!("{old}action=reboot\n"));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(sim.events(), ["power_on"]);
    let r = stdin_run(&format!("{old}action=on\n"));
    assert_eq!(
        (r.code, r.stdout.trim()),
        (0, "Success: Already ON"),
        "{r:?}"
    );
    // monitor: the device works.
    let r = stdin_run(&format!("{old}action=monitor\n"));
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn cycle_method() {
    let sim = sim!();
    let r = stdin_run(&stdin_for(
        sim.port,
        "cipher=3\nmethod=cycle\naction=reboot\n",
    ));
    assert_eq!((r.code, r.stdout.trim()), (0, "Success: Rebooted"), "{r:?}");
    // ipmi_sim turns power back on from a 1 s timer after the cycle.
    let t = std::time::Instant::now();
    while sim.events().len() < 2 && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(sim.events(), ["power_off", "power_on"]);
}

#[test]
fn password_script_is_run_without_a_shell() {
    let sim = sim!();
    let script = sim.path("pw.sh");
    std::fs::write(&script, "#!/bin/sh\necho fencepass\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
    let r = stdin_run(&format!(
        "ip=127.0.0.1\nipport={}\nusername=admin\npasswd_script={}\ncipher=3\naction=status\n",
        sim.port,
        script.display()
    ));
    assert_eq!((r.code, r.stdout.trim()), (0, "Status: ON"), "{r:?}");
}

#[test]
fn wrong_password_fails_clearly_within_login_timeout() {
    let sim = sim!();
    let r = stdin_run(&format!(
        "ip=127.0.0.1\nipport={}\nusername=admin\npassword=n0tThePassw0rd\ncipher=3\nlogin_timeout=3\naction=status\n",
        sim.port
    ));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("authentication failed"), "{r:?}");
    assert!(r.stderr.contains("wrong password"), "{r:?}");
    assert!(
        !r.all().contains("n0tThePassw0rd"),
        "password echoed: {r:?}"
    );
    assert!(r.elapsed < Duration::from_secs(3), "{r:?}");
    // Unknown user: also an authentication failure, named.
    let r = stdin_run(&format!(
        "ip=127.0.0.1\nipport={}\nusername=nobody\npassword=x\ncipher=3\naction=status\n",
        sim.port
    ));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("does not know user 'nobody'"), "{r:?}");
}

#[test]
fn unreachable_bmc_fails_within_login_timeout() {
    // A port nobody listens on (the kernel just handed it out and it was released).
    let port = bmc::free_udp_port();
    let r = stdin_run(&stdin_for(
        port,
        "cipher=3\nlogin_timeout=1.5\naction=off\n",
    ));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("no answer from the BMC"), "{r:?}");
    assert!(
        r.elapsed >= Duration::from_millis(1400),
        "gave up too early: {r:?}"
    );
    assert!(
        r.elapsed < Duration::from_millis(2500),
        "not bounded: {r:?}"
    );
    // Another loopback address nothing listens on, with cipher auto (probe + login
    // share the one login_timeout).
    let r = stdin_run(&format!(
        "ip=127.0.0.2\nipport={port}\nusername=admin\npassword=fencepass\ncipher=auto\nlogin_timeout=1\naction=status\n"
    ));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.elapsed < Duration::from_millis(2000),
        "not bounded: {r:?}"
    );
}

#[test]
fn privilege_too_low_for_chassis_control() {
    let sim = sim!();
    // Status works at USER level; power control needs OPERATOR (ipmi_sim: CC D4h).
    let base = stdin_for(sim.port, "cipher=3\nprivlvl=user\n");
    let r = stdin_run(&format!("{base}action=status\n"));
    assert_eq!((r.code, r.stdout.trim()), (0, "Status: ON"), "{r:?}");
    let r = stdin_run(&format!("{base}action=off\n"));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("insufficient privilege"), "{r:?}");
    assert!(r.stderr.contains("privlvl=operator"), "{r:?}");
    assert!(sim.power_on(), "nothing was powered off");
    assert!(sim.events().is_empty());
}

#[test]
fn cipher_auto_falls_back_to_3_within_login_timeout() {
    // ipmi_sim never answers Get Channel Cipher Suites.
    let sim = sim!();
    let r = stdin_run(&stdin_for(
        sim.port,
        "cipher=auto\nlogin_timeout=2\nverbose=1\naction=status\n",
    ));
    assert_eq!((r.code, r.stdout.trim()), (0, "Status: ON"), "{r:?}");
    assert!(r.stderr.contains("cipher suite 3"), "{r:?}");
    assert!(r.elapsed < Duration::from_secs(2), "{r:?}");
    // Explicit suite 17 against a BMC without it: a clear refusal.
    let r = stdin_run(&stdin_for(sim.port, "cipher=17\naction=status\n"));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("does not support cipher suite 17, try cipher=3"),
        "{r:?}"
    );
}
