//! ocf:bulwark:resync-gate with transport=local: ocf-tester, the seed's mail-spool story
//! end to end without Pacemaker (the actions in Pacemaker's order), and the refusals.

#[path = "gate_util/mod.rs"]
mod util;

use std::process::Command;
use std::time::Duration;
use util::*;

#[test]
fn ocf_tester_passes_with_transport_local() {
    let lab = Lab::new("oct");
    std::fs::write(lab.mail("alpha").join("f"), b"x").unwrap();
    let mut c = Command::new("ocf-tester");
    c.args(["-n", "gate"])
        .env("BULWARK_NO_CLUSTER", "1")
        .env("HA_RSCTMP", lab.run("alpha"));
    for (k, v) in lab.params("alpha") {
        c.arg("-o").arg(format!("{k}={v}"));
    }
    let out = c
        .arg(GATE)
        .output()
        .expect("ocf-tester is required (resource-agents package)");
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        out.status.success() && text.contains("passed all tests"),
        "{text}"
    );
}

/// Steps 1-3 of the story: alpha delivers and mirrors, dies with its last minute of
/// mail unmirrored, beta takes over and more mail arrives there.
struct Story {
    lab: Lab,
}

const MIRRORED: usize = 20;

fn uidlist(mail: &std::path::Path) -> std::path::PathBuf {
    mail.join("user").join("dovecot-uidlist")
}

fn steps_1_to_3(lab: Lab) -> Story {
    let (a, b) = ("alpha", "beta");
    // 1. alpha holds the service: gate, then mirror; mail arrives and is mirrored.
    let o = lab.gate(a, "start");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = lab.mirror(a, "start");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mut list = String::new();
    for i in 1..=MIRRORED {
        deliver(
            &lab.mail(a),
            &format!("m{i:03}"),
            &format!("message {i} on alpha"),
        );
        list.push_str(&format!("{i} m{i:03}\n"));
    }
    std::fs::write(uidlist(&lab.mail(a)), &list).unwrap();
    // Forced passes until beta has it all (a pass may start before every event is read).
    let mut n = 0;
    while files(&lab.mail(a)) != files(&lab.mail(b)) {
        assert!(
            n < 20,
            "alpha's mail did not reach beta\nstatus: {}\nlog:\n{}",
            std::fs::read_to_string(lab.state(a).join("status.json")).unwrap_or_default(),
            std::fs::read_to_string(lab.state(a).join("daemon.log")).unwrap_or_default()
        );
        lab.flush(a);
        n += 1;
    }
    // 2. The last minute of mail on alpha is not mirrored (1h path) when alpha dies.
    for i in MIRRORED + 1..=MIRRORED + 5 {
        deliver(
            &lab.mail(a),
            &format!("m{i:03}"),
            &format!("late message {i} on alpha"),
        );
        list.push_str(&format!("{i} m{i:03}\n"));
    }
    std::fs::write(uidlist(&lab.mail(a)), &list).unwrap();
    std::thread::sleep(Duration::from_millis(100)); // journalled
    lab.crash(a);
    // 3. beta takes over: the gate passes (alpha is down and not newer), the mirror
    //    starts a new generation, and mail goes on arriving on beta.
    let o = lab.gate(b, "start");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = lab.mirror(b, "start");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mut list = std::fs::read_to_string(uidlist(&lab.mail(b))).unwrap();
    for i in 1..=10 {
        deliver(
            &lab.mail(b),
            &format!("b{i:03}"),
            &format!("message {i} on beta"),
        );
        list.push_str(&format!("{} b{i:03}\n", 100 + i));
    }
    std::fs::write(uidlist(&lab.mail(b)), &list).unwrap();
    // The user reads m006 (moved to cur/ with its flags) and expunges m005.
    let user = lab.mail(b).join("user");
    std::fs::rename(user.join("new/m006"), user.join("cur/m006:2,S")).unwrap();
    std::fs::remove_file(user.join("new/m005")).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(code(&lab.mirror(b, "monitor")), 0);
    assert_eq!(code(&lab.gate(b, "monitor")), 0);
    Story { lab }
}

fn assert_beta_mail_on_alpha(lab: &Lab) {
    let on_a = messages(&lab.mail("alpha"));
    let on_b = messages(&lab.mail("beta"));
    for (name, copies) in &on_b {
        assert_eq!(
            on_a.get(name),
            Some(copies),
            "{name} delivered or changed on beta is not on alpha as on beta"
        );
    }
    for (name, copies) in &on_a {
        assert_eq!(copies.len(), 1, "{name} is duplicated on alpha: {copies:?}");
    }
    assert!(!on_a.contains_key("m005"), "m005 was expunged on beta");
    assert_eq!(on_a["m006"][0].0, "cur", "m006 was read on beta");
}

/// Pacemaker's automatic failback: alpha is back and reachable while beta's group
/// stops, so beta's mirror flushes to alpha on stop. alpha's receiver first keeps
/// alpha's never-mirrored mail (guarantee 4); the gate then finds alpha newest.
#[test]
fn mail_spool_story_failback_with_beta_flushing_on_stop() {
    let Story { lab } = steps_1_to_3(Lab::new("mail"));
    let (a, b) = ("alpha", "beta");
    // 4. alpha returns; the group moves back: beta stops (mirror flushes), alpha starts.
    lab.back(a);
    let o = lab.mirror(b, "stop");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(code(&lab.gate(b, "stop")), 0);
    let o = lab.gate(a, "start");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // 5. Before alpha's mirror and service start: every message of beta is on alpha.
    assert_beta_mail_on_alpha(&lab);
    assert_eq!(files(&lab.mail(a)), files(&lab.mail(b)));
    assert_eq!(lab.gen(a)["current"], lab.gen(b)["current"]);
    // 6. alpha's unmirrored late mail was kept, and `bulwark conflicts` lists it.
    let o = lab.bulwark(a, &["conflicts", "--set", "mail", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let recs: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for i in MIRRORED + 1..=MIRRORED + 5 {
        let rel = format!("user/new/m{i:03}");
        let r = recs
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["rel"] == rel.as_str())
            .unwrap_or_else(|| panic!("{rel} not listed: {recs}"));
        assert_eq!(r["kind"], "preserved");
        let copy = r["copy"].as_str().unwrap();
        assert_eq!(
            std::fs::read_to_string(copy).unwrap(),
            format!("late message {i} on alpha")
        );
    }
    assert!(recs
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["rel"] == "user/dovecot-uidlist"));
    let table = stdout(&lab.bulwark(a, &["conflicts", "--set", "mail"]));
    assert!(
        table.contains("m021") && table.contains("preserved"),
        "{table}"
    );
    // The mirror and the service start on alpha.
    let o = lab.mirror(a, "start");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(code(&lab.gate(a, "monitor")), 0);
    assert_eq!(code(&lab.mirror(a, "stop")), 0);
    assert_eq!(code(&lab.gate(a, "stop")), 0);
    assert_eq!(code(&lab.gate(a, "monitor")), 7);
}

/// The group moves back after beta's group stopped while alpha was still unreachable
/// (beta's last changes could not be flushed): the gate on alpha pulls them back from
/// beta's change log before the mirror and the service may start.
#[test]
fn mail_spool_story_gate_pulls_back_before_the_service_starts() {
    let Story { lab } = steps_1_to_3(Lab::new("mail"));
    let (a, b) = ("alpha", "beta");
    let o = lab.mirror(b, "stop");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // alpha is down: the stop says what it could not send, not that it flushed.
    assert!(
        stderr(&o).contains("changes not mirrored") && !stderr(&o).contains("after flushing"),
        "{}",
        stderr(&o)
    );
    assert_eq!(code(&lab.gate(b, "stop")), 0);
    let beta_before = files(&lab.mail(b));
    // 4. alpha returns. Guarantee 3: its mirror refuses to start on stale data.
    lab.back(a);
    let o = lab.mirror(a, "start");
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("ocf-exit-reason:"), "{}", stderr(&o));
    *lab.env.borrow_mut() = vec![("HA_debug".into(), "1".into())];
    let o = lab.gate(a, "start");
    lab.env.borrow_mut().clear();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let log = stderr(&o);
    eprintln!("{log}");
    assert!(
        log.contains("change-log"),
        "an O(changes) pull expected: {log}"
    );
    // The uidlist beta replaced and the messages beta moved went to the trash, and
    // the detached release frees them.
    let phases = log
        .lines()
        .find(|l| l.contains("pull phases"))
        .unwrap_or_default();
    assert!(
        phases.contains("replaced versions to release") && !phases.contains("; 0 replaced"),
        "{phases}"
    );
    lab.assert_trash_released(a);
    // 5. Every message delivered on beta is on alpha, none lost or duplicated.
    assert_beta_mail_on_alpha(&lab);
    assert_eq!(files(&lab.mail(b)), beta_before, "the pull changed beta");
    // 6. alpha's late mail is still in place (no conflict), the uidlist changed on both
    //    sides: beta's is installed, alpha's kept; `bulwark conflicts` lists them all.
    let on_a = messages(&lab.mail(a));
    for i in MIRRORED + 1..=MIRRORED + 5 {
        let (dir, body) = &on_a[&format!("m{i:03}")][0];
        assert_eq!(dir, "new");
        assert_eq!(body, format!("late message {i} on alpha").as_bytes());
    }
    assert_eq!(
        std::fs::read(uidlist(&lab.mail(a))).unwrap(),
        std::fs::read(uidlist(&lab.mail(b))).unwrap()
    );
    let o = lab.bulwark(a, &["conflicts", "--set", "mail", "--json"]);
    let recs: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let recs = recs.as_array().unwrap();
    let uid = recs
        .iter()
        .find(|r| r["rel"] == "user/dovecot-uidlist")
        .expect("the uidlist conflict is recorded");
    assert_eq!(uid["kind"], "conflict");
    assert_eq!(uid["counterpart_node"], "beta");
    let kept = std::fs::read_to_string(uid["copy"].as_str().unwrap()).unwrap();
    assert!(kept.contains("25 m025") && !kept.contains("b001"), "{kept}");
    for i in MIRRORED + 1..=MIRRORED + 5 {
        let rel = format!("user/new/m{i:03}");
        assert!(
            recs.iter()
                .any(|r| r["rel"] == rel.as_str() && r["kind"] == "unmirrored"),
            "{rel} not listed: {recs:?}"
        );
    }
    let table = stdout(&lab.bulwark(a, &["conflicts", "--set", "mail"]));
    assert!(
        table.contains("dovecot-uidlist") && table.contains("m025"),
        "{table}"
    );
    // `bulwark status` on alpha shows beta's generation as alpha's, consistent.
    let set = lab.status_report(a);
    let gen_b = lab.gen(b)["current"]["id"].clone();
    // This node comes first (named by its host name here, without a cluster).
    let me = &set["nodes"][0];
    assert_eq!(me["generation"], gen_b, "{set}");
    assert_eq!(me["consistent"], true, "{set}");
    // alpha's mirror is not running: its peers' state of before the crash is not shown.
    assert_eq!(set["running"], false, "{set}");
    assert_eq!(set["peers"].as_array().map(|p| p.len()), Some(0), "{set}");
    // The mirror starts on alpha now, and sends alpha's late mail to beta.
    let o = lab.mirror(a, "start");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    wait_for(
        "alpha's complete pass to beta",
        Duration::from_secs(30),
        || files(&lab.mail(a)) == files(&lab.mail(b)),
    );
    assert!(messages(&lab.mail(b)).contains_key("m025"));
    // beta's outage changes were pulled whole: its receiver keeps no copies of them.
    let o = lab.bulwark(b, &["conflicts", "--set", "mail", "--json"]);
    let recs: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(recs.as_array().map(|r| r.len()), Some(0), "{recs}");
    assert_eq!(code(&lab.mirror(a, "stop")), 0);
}

#[test]
fn refusals_stale_gate_writer_peer_and_two_writers() {
    let Story { lab } = steps_1_to_3(Lab::new("mail").with_cib());
    let (a, b) = ("alpha", "beta");
    lab.publish(b);
    // alpha returns while beta still runs the service (its writer).
    lab.back(a);
    // The gate does not pull from a writer.
    let o = lab.gate(a, "start");
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("ocf-exit-reason:") && e.contains("beta") && e.contains("writer"),
        "{e}"
    );
    // The mirror does not start a second writer.
    let o = lab.mirror(a, "start");
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    // Two writers at once: beta's receiver refuses a push while beta writes.
    {
        use bulwark_agents::mirror::wire::{self, GenWire, Msg};
        use std::io::Write;
        let mut rx = Command::new(MIRROR)
            .args(["receive", "--set", "mail", "--state-dir"])
            .arg(lab.state(b))
            .arg("--root")
            .arg(lab.mail(b))
            .env("BULWARK_NO_CLUSTER", "1")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let g = lab.gen(a)["current"].clone();
        let mut w = rx.stdin.take().unwrap();
        wire::send(
            &mut w,
            &Msg::Hello {
                version: wire::PROTOCOL_VERSION,
                set: "mail".into(),
                node: "alpha".into(),
                query: false,
                gen: GenWire {
                    id: format!("{}x", g["id"].as_str().unwrap()),
                    history: vec![lab.gen(b)["current"]["id"].as_str().unwrap().into()],
                },
            },
        )
        .unwrap();
        w.flush().unwrap();
        let mut r = rx.stdout.take().unwrap();
        match wire::recv(&mut r).unwrap() {
            Some(Msg::Refused { reason }) => {
                assert!(reason.contains("two writers"), "{reason}")
            }
            other => panic!("a second writer was not refused: {other:?}"),
        }
        let _ = rx.wait();
    }
    // alpha goes down again; beta stops cleanly (its flush cannot reach alpha) and then
    // goes down too. alpha returns: its gate knows from the CIB that the newest
    // generation is on beta, which cannot be reached: it refuses, naming beta.
    lab.crash(a);
    deliver(
        &lab.mail(b),
        "b011",
        "mail on beta after alpha's second crash",
    );
    std::thread::sleep(Duration::from_millis(100));
    // beta's flush finds alpha gone (if alpha had caught up meanwhile, a new generation
    // marks what alpha now lacks).
    assert_eq!(code(&lab.mirror(b, "stop")), 0);
    assert_eq!(code(&lab.gate(b, "stop")), 0);
    lab.publish(b);
    lab.crash(b);
    lab.back(a);
    let before = files(&lab.mail(a));
    let o = lab.gate(a, "start");
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("ocf-exit-reason:") && e.contains("node beta, which cannot be reached"),
        "{e}"
    );
    assert_eq!(files(&lab.mail(a)), before, "a refused gate changed data");
    assert_eq!(code(&lab.gate(a, "monitor")), 7);
    // The admin override is explicit and logged; then the gate lets alpha start.
    let o = lab.bulwark(
        a,
        &["resync", "--set", "mail", "--accept-data-loss-from", "beta"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("DATA LOSS ACCEPTED"), "{}", stdout(&o));
    assert!(stderr(&o).contains("forfeited"), "logged: {}", stderr(&o));
    let o = lab.gate(a, "start");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(code(&lab.gate(a, "monitor")), 0);
}

/// Both sides wrote since their common generation; alpha's gate refuses, naming both.
fn split_brain() -> Lab {
    let Story { lab } = steps_1_to_3(Lab::new("mail"));
    let (a, b) = ("alpha", "beta");
    assert_eq!(code(&lab.mirror(b, "stop")), 0);
    assert_eq!(code(&lab.gate(b, "stop")), 0);
    // alpha also wrote on its own while cut off (a split brain): a new generation.
    lab.back(a);
    lab.crash(b);
    assert_eq!(code(&lab.gate(a, "start")), 0);
    assert_eq!(code(&lab.mirror(a, "start")), 0);
    deliver(&lab.mail(a), "s001", "split-brain mail on alpha");
    std::fs::write(uidlist(&lab.mail(a)), "alpha's own list\n").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(code(&lab.mirror(a, "stop")), 0);
    assert_eq!(code(&lab.gate(a, "stop")), 0);
    lab.back(b);
    let o = lab.gate(a, "start");
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("split brain") && e.contains("alpha") && e.contains("node beta"),
        "{e}"
    );
    lab
}

fn assert_merged(lab: &Lab) {
    let (a, b) = ("alpha", "beta");
    // Each side's changes apply; both versions of the conflict are kept.
    let on_a = messages(&lab.mail(a));
    assert!(on_a.contains_key("s001") && on_a.contains_key("b010"));
    let recs: serde_json::Value = serde_json::from_slice(
        &lab.bulwark(a, &["conflicts", "--set", "mail", "--json"])
            .stdout,
    )
    .unwrap();
    let uid = recs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rel"] == "user/dovecot-uidlist" && r["kind"] == "conflict")
        .expect("uidlist conflict");
    assert_eq!(
        std::fs::read_to_string(uid["copy"].as_str().unwrap()).unwrap(),
        "alpha's own list\n"
    );
    // The merged generation descends from both: the mirror may start and push.
    let o = lab.mirror(a, "start");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    wait_for("merged tree on beta", Duration::from_secs(30), || {
        files(&lab.mail(a)) == files(&lab.mail(b))
    });
    assert_eq!(code(&lab.mirror(a, "stop")), 0);
}

#[test]
fn split_brain_is_refused_by_default_and_merged_with_keep_both() {
    let mut lab = split_brain();
    lab.extra.push(("split_policy".into(), "keep-both".into()));
    let o = lab.gate("alpha", "start");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_merged(&lab);
}

#[test]
fn split_brain_resolved_by_an_explicit_logged_resync_from_the_peer() {
    let lab = split_brain();
    let o = lab.bulwark("alpha", &["resync", "--set", "mail", "--from", "beta"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("pulled from beta"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("admin-requested resync of alpha from beta"),
        "logged: {}",
        stderr(&o)
    );
    // alpha now holds a generation descending from both: the gate lets it start.
    let o = lab.gate("alpha", "start");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_merged(&lab);
}
