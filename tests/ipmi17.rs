//! Cipher suite 17 (RAKP-HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128) against the in-repo
//! test BMC (tests/bmc/bmc17.rs). Real `ipmitool -I lanplus -C 17` must accept that BMC
//! first, which shows it is a faithful peer; then the agent passes the same
//! status/off/on/reboot tests against it as against ipmi_sim.

#[path = "bmc/mod.rs"]
mod bmc;

use bmc::bmc17::TestBmc;
use bmc::{cli_run, stdin_for, stdin_run};
use bulwark_stonith::ipmi::crypto::CipherSuite;
use std::process::Command;

fn ipmitool(
    bmc: &TestBmc,
    suite: &str,
    user: &str,
    pw: &str,
    args: &[&str],
) -> Option<(i32, String)> {
    let port = bmc.port().to_string();
    // ipmitool takes the password from the environment with -E (not from argv).
    let mut cmd = Command::new("ipmitool");
    cmd.args(["-I", "lanplus"]);
    if !suite.is_empty() {
        cmd.args(["-C", suite]);
    }
    let o = cmd
        .args([
            "-H",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            user,
            "-E",
            "-N",
            "1",
            "-R",
            "2",
        ])
        .args(args)
        .env("IPMI_PASSWORD", pw)
        .output();
    match o {
        Ok(o) => Some((
            o.status.code().unwrap_or(-1),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )),
        Err(_) => {
            eprintln!("SKIP: ipmitool is not installed (apt-get install ipmitool)");
            None
        }
    }
}

#[test]
fn real_ipmitool_accepts_the_suite_17_test_bmc() {
    let bmc = TestBmc::start(&[CipherSuite::Suite17]);
    let Some((code, out)) = ipmitool(
        &bmc,
        "17",
        "admin",
        "fencepass",
        &["chassis", "power", "status"],
    ) else {
        return;
    };
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Chassis Power is on"), "{out}");
    let (code, out) = ipmitool(
        &bmc,
        "17",
        "admin",
        "fencepass",
        &["chassis", "power", "off"],
    )
    .unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Down/Off"), "{out}");
    let (code, out) = ipmitool(
        &bmc,
        "17",
        "admin",
        "fencepass",
        &["chassis", "power", "status"],
    )
    .unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Chassis Power is off"), "{out}");
    let (code, out) = ipmitool(
        &bmc,
        "17",
        "admin",
        "fencepass",
        &["chassis", "power", "on"],
    )
    .unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Up/On"), "{out}");
    assert_eq!(bmc.events(), ["power_off", "power_on"]);
    // ipmitool closes its sessions; the BMC saw them all closed.
    let (opened, closed) = bmc.sessions();
    assert_eq!((opened, closed), (4, 4));
}

#[test]
fn real_ipmitool_is_refused_with_a_wrong_password_or_suite() {
    let bmc = TestBmc::start(&[CipherSuite::Suite17]);
    let Some((code, out)) = ipmitool(
        &bmc,
        "17",
        "admin",
        "wrong",
        &["-v", "chassis", "power", "status"],
    ) else {
        return;
    };
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("RAKP 2 HMAC is invalid"), "{out}");
    // Suite 3 is not offered by this BMC instance.
    let (code, out) = ipmitool(
        &bmc,
        "3",
        "admin",
        "fencepass",
        &["chassis", "power", "status"],
    )
    .unwrap();
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("invalid authentication algorithm"), "{out}");
    assert!(bmc.events().is_empty());
    // Without -C, ipmitool asks for the cipher suites and picks 17 from our answer.
    let (code, out) = ipmitool(
        &bmc,
        "",
        "admin",
        "fencepass",
        &["-v", "chassis", "power", "status"],
    )
    .unwrap();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Chassis Power is on"), "{out}");
}

#[test]
fn agent_status_off_on_reboot_stdin_form_suite17() {
    let bmc = TestBmc::start(&[CipherSuite::Suite17]);
    let base = stdin_for(bmc.port(), "cipher=17\n");
    let r = stdin_run(&format!("{base}action=status\n"));
    assert_eq!((r.code, r.stdout.trim()), (0, "Status: ON"), "{r:?}");
    let r = stdin_run(&format!("{base}action=off\n"));
    assert_eq!(
        (r.code, r.stdout.trim()),
        (0, "Success: Powered OFF"),
        "{r:?}"
    );
    let r = stdin_run(&format!("{base}action=status\n"));
    assert_eq!((r.code, r.stdout.trim()), (2, "Status: OFF"), "{r:?}");
    let r = stdin_run(&format!("{base}action=on\n"));
    assert_eq!(
        (r.code, r.stdout.trim()),
        (0, "Success: Powered ON"),
        "{r:?}"
    );
    let r = stdin_run(&format!("{base}action=reboot\n"));
    assert_eq!((r.code, r.stdout.trim()), (0, "Success: Rebooted"), "{r:?}");
    assert_eq!(
        bmc.events(),
        ["power_off", "power_on", "power_off", "power_on"]
    );
    // Every session the agent opened was closed.
    let (opened, closed) = bmc.sessions();
    assert_eq!(opened, 5);
    assert_eq!(closed, 5);
}

#[test]
fn agent_status_off_on_reboot_option_form_suite17() {
    let bmc = TestBmc::start(&[CipherSuite::Suite17]);
    let port = bmc.port().to_string();
    let run = |action: &str| {
        cli_run(&[
            "-a",
            "127.0.0.1",
            "-u",
            &port,
            "-l",
            "admin",
            "-p",
            "fencepass",
            "-C",
            "17",
            "-o",
            action,
        ])
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
    assert_eq!(
        bmc.events(),
        ["power_off", "power_on", "power_off", "power_on"]
    );
}

#[test]
fn cipher_auto_prefers_17_when_offered() {
    let bmc = TestBmc::start(&[CipherSuite::Suite3, CipherSuite::Suite17]);
    let r = stdin_run(&stdin_for(bmc.port(), "verbose=1\naction=status\n"));
    assert_eq!((r.code, r.stdout.trim()), (0, "Status: ON"), "{r:?}");
    assert!(r.stderr.contains("cipher suite 17"), "{r:?}");
    // Only 3 offered: auto picks 3.
    let bmc3 = TestBmc::start(&[CipherSuite::Suite3]);
    let r = stdin_run(&stdin_for(bmc3.port(), "verbose=1\naction=status\n"));
    assert_eq!((r.code, r.stdout.trim()), (0, "Status: ON"), "{r:?}");
    assert!(r.stderr.contains("cipher suite 3"), "{r:?}");
}

#[test]
fn suite17_failures_are_clear() {
    let bmc = TestBmc::start(&[CipherSuite::Suite17]);
    let r = stdin_run(&format!(
        "ip=127.0.0.1\nipport={}\nusername=admin\npassword=Wr0ngPass\ncipher=17\naction=off\n",
        bmc.port()
    ));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("authentication failed"), "{r:?}");
    assert!(!r.all().contains("Wr0ngPass"));
    // This BMC enforces the user's maximum privilege: viewer may not be ADMINISTRATOR.
    let r = stdin_run(&format!(
        "ip=127.0.0.1\nipport={}\nusername=viewer\npassword=userpass\ncipher=17\naction=off\n",
        bmc.port()
    ));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("insufficient privilege"), "{r:?}");
    // viewer at USER level may read the status but not power off.
    let base = format!(
        "ip=127.0.0.1\nipport={}\nusername=viewer\npassword=userpass\ncipher=17\nprivlvl=user\n",
        bmc.port()
    );
    let r = stdin_run(&format!("{base}action=status\n"));
    assert_eq!((r.code, r.stdout.trim()), (0, "Status: ON"), "{r:?}");
    let r = stdin_run(&format!("{base}action=off\n"));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("insufficient privilege"), "{r:?}");
    assert!(bmc.power_on());
    assert!(bmc.events().is_empty());
    // viewer as ADMINISTRATOR was refused in RAKP 2 (no session); the two USER-level
    // sessions, including the one whose power-off was refused (D4h), were both closed.
    let (opened, closed) = bmc.sessions();
    assert_eq!((opened, closed), (2, 2));
}

#[test]
fn retransmission_survives_lost_datagrams() {
    // Every third datagram the BMC receives is lost: login and every command must be
    // retransmitted (with fresh session sequence numbers) and still succeed.
    let bmc = TestBmc::start_lossy(&[CipherSuite::Suite17], 3);
    let r = stdin_run(&stdin_for(
        bmc.port(),
        "cipher=17
login_timeout=5
action=reboot
",
    ));
    assert_eq!((r.code, r.stdout.trim()), (0, "Success: Rebooted"), "{r:?}");
    assert_eq!(bmc.events(), ["power_off", "power_on"]);
    assert!(
        bmc.dropped() >= 2,
        "the BMC dropped {} datagrams",
        bmc.dropped()
    );
}

#[test]
fn bmc_key_kg() {
    let kg = b"0123456789abcdefghij";
    let hex: String = kg.iter().map(|b| format!("{b:02x}")).collect();
    let bmc = TestBmc::start_with_kg(&[CipherSuite::Suite17], kg);
    // ipmitool agrees with the test BMC on Kg (its -y takes the key in hex).
    if let Some((code, out)) = ipmitool(
        &bmc,
        "17",
        "admin",
        "fencepass",
        &["-y", &hex, "chassis", "power", "status"],
    ) {
        assert_eq!(code, 0, "{out}");
    }
    let r = stdin_run(&stdin_for(
        bmc.port(),
        &format!("cipher=17\nhexadecimal_kg={hex}\naction=off\n"),
    ));
    assert_eq!(
        (r.code, r.stdout.trim()),
        (0, "Success: Powered OFF"),
        "{r:?}"
    );
    assert!(!r.all().contains(&hex), "Kg echoed: {r:?}");
    // Without the key the session keys differ: RAKP 4 does not verify.
    let r = stdin_run(&stdin_for(bmc.port(), "cipher=17\naction=on\n"));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("wrong Kg?"), "{r:?}");
    assert_eq!(bmc.events(), ["power_off"]);
}

#[test]
fn ipv6_bmc_address() {
    let Some(bmc) = TestBmc::start_ipv6(&[CipherSuite::Suite17]) else {
        eprintln!("SKIP: no IPv6 loopback on this host");
        return;
    };
    for ip in ["::1", "[::1]"] {
        let r = stdin_run(&format!(
            "ip={ip}\nipport={}\nusername=admin\npassword=fencepass\naction=status\n",
            bmc.port()
        ));
        assert_eq!((r.code, r.stdout.trim()), (0, "Status: ON"), "{ip}: {r:?}");
    }
}

#[test]
fn bmc_hanging_after_login_is_bounded_by_login_timeout() {
    let bmc = TestBmc::start(&[CipherSuite::Suite17]);
    bmc.set_mute_chassis(true);
    let r = stdin_run(&stdin_for(
        bmc.port(),
        "cipher=17\nlogin_timeout=1\naction=status\n",
    ));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("no answer from the BMC") && r.stderr.contains("Get Chassis Status"),
        "{r:?}"
    );
    // login (fast) + one login_timeout for the command; Close Session is sent without
    // waiting for a BMC that already stopped answering.
    assert!(r.elapsed < std::time::Duration::from_millis(1800), "{r:?}");
    // The close still reached the BMC.
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(bmc.sessions(), (1, 1));
}
