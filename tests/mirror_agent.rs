//! ocf:bulwark:file-mirror with transport=local: ocf-tester, propagation on `change` and
//! `2s` paths, stop flushing, the supervisor, refusals by generation, `bulwark status`.

#[path = "mirror_util/mod.rs"]
mod util;

use std::process::Command;
use std::time::{Duration, Instant};
use util::*;

#[test]
fn ocf_tester_passes_with_transport_local() {
    let lab = Lab::new("oct");
    let src = lab.src("src");
    std::fs::write(src.join("f"), b"x").unwrap();
    let mut c = Command::new("ocf-tester");
    c.args(["-n", "fm"]).env("BULWARK_NO_CLUSTER", "1");
    for (k, v) in &lab.params {
        c.arg("-o").arg(format!("{k}={v}"));
    }
    c.arg("-o").arg(format!("paths={}:change", src.display()));
    let out = match c.arg(AGENT).output() {
        Ok(o) => o,
        Err(e) => panic!("ocf-tester is required (resource-agents package): {e}"),
    };
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(
        out.status.success() && text.contains("passed all tests"),
        "{text}"
    );
}

#[test]
fn propagation_on_change_and_interval_paths() {
    let mut lab = Lab::new("prop");
    let fast = lab.src("fast");
    let slow = lab.src("slow");
    seed(&fast);
    seed(&slow);
    lab.param(
        "paths",
        &format!("{}:change {}:2s", fast.display(), slow.display()),
    );
    let o = lab.agent("start");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // The start's complete pass.
    wait_same(&fast, &lab.peer(&fast), Duration::from_secs(10), true).unwrap();
    wait_same(&slow, &lab.peer(&slow), Duration::from_secs(10), true).unwrap();
    for round in 0..3 {
        churn(&fast, round);
        churn(&slow, round);
        let took = wait_same(&fast, &lab.peer(&fast), Duration::from_secs(3), true)
            .unwrap_or_else(|d| panic!("change path, round {round}: {d}\n{}", lab.log()));
        eprintln!("round {round}: change path matched after {took:?}");
        let took = wait_same(&slow, &lab.peer(&slow), Duration::from_secs(2 + 3), true)
            .unwrap_or_else(|d| panic!("2s path, round {round}: {d}\n{}", lab.log()));
        eprintln!("round {round}: 2s path matched after {took:?}");
    }
    assert_eq!(code(&lab.agent("monitor")), 0);
    // Never a temporary file left behind on the peer.
    assert!(
        !format!("{:?}", snapshot(&lab.dst, false).keys().collect::<Vec<_>>())
            .contains(".bulwark-tmp.")
    );
}

#[test]
fn interval_path_waits_for_its_interval_and_stop_flushes() {
    let mut lab = Lab::new("flush");
    let slow = lab.src("slow");
    lab.param("paths", &format!("{}:1h", slow.display()));
    assert_eq!(code(&lab.agent("start")), 0);
    wait_same(&slow, &lab.peer(&slow), Duration::from_secs(10), true).unwrap();
    std::fs::write(slow.join("late"), b"not yet").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !lab.peer(&slow).join("late").exists(),
        "an 1h path was sent before its interval"
    );
    let st = lab.status();
    assert_eq!(st["pending"], 2, "{st}"); // the file and its directory
                                          // stop flushes what is pending, whatever the schedule.
    let o = lab.agent("stop");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(diff(&slow, &lab.peer(&slow), true).is_none());
    assert_eq!(code(&lab.agent("monitor")), 7);
    assert_eq!(code(&lab.agent("stop")), 0);
}

#[test]
fn supervisor_restarts_a_killed_worker() {
    let mut lab = Lab::new("sup");
    let src = lab.src("src");
    lab.param("paths", &format!("{}", src.display()));
    assert_eq!(code(&lab.agent("start")), 0);
    let w1 = lab.status()["worker_pid"].as_i64().unwrap() as i32;
    // SAFETY: the worker this test started.
    unsafe { libc::kill(w1, libc::SIGKILL) };
    let t = Instant::now();
    loop {
        let w2 = lab.status()["worker_pid"].as_i64().unwrap_or(0) as i32;
        if w2 != 0 && w2 != w1 && lab.status()["watching"] == true {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "worker not restarted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(code(&lab.agent("monitor")), 0);
    std::fs::write(src.join("after-restart"), b"x").unwrap();
    wait_same(&src, &lab.peer(&src), Duration::from_secs(5), true).unwrap();
}

#[test]
fn stale_node_cannot_start_and_receiver_refuses_it() {
    let mut lab = Lab::new("stale");
    let src = lab.src("src");
    std::fs::write(src.join("f"), b"one").unwrap();
    lab.param("paths", &format!("{}", src.display()));
    assert_eq!(code(&lab.agent("start")), 0);
    wait_same(&src, &lab.peer(&src), Duration::from_secs(10), true).unwrap();
    assert_eq!(code(&lab.agent("stop")), 0);
    // Keep this node's state as of generation 1: a node that goes stale.
    let old = std::fs::read(lab.state.join("generation.json")).unwrap();
    assert_eq!(code(&lab.agent("start")), 0); // generation 2, adopted by the peer
    std::fs::write(src.join("f"), b"two").unwrap();
    wait_same(&src, &lab.peer(&src), Duration::from_secs(10), true).unwrap();
    assert_eq!(code(&lab.agent("stop")), 0);
    std::fs::write(lab.state.join("generation.json"), old).unwrap();
    std::fs::write(src.join("f"), b"stale data").unwrap();
    let before = snapshot(&lab.dst, true);
    let o = lab.agent("start");
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("ocf-exit-reason:") && err.contains("peer local holds generation"),
        "{err}"
    );
    assert_eq!(snapshot(&lab.dst, true), before, "the peer changed");
    assert_eq!(code(&lab.agent("monitor")), 7);
}

#[test]
fn bulwark_status_reports_the_set() {
    let mut lab = Lab::new("stat");
    let src = lab.src("src");
    lab.param("paths", &format!("{}:1h", src.display()));
    assert_eq!(code(&lab.agent("start")), 0);
    wait_same(&src, &lab.peer(&src), Duration::from_secs(10), true).unwrap();
    std::fs::write(src.join("pending"), b"x").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let root = lab.state.parent().unwrap();
    let o = Command::new(BULWARK)
        .args(["status", "--json", "--state-root"])
        .arg(root)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let s = &v
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["set"] == "stat")
        .expect("set listed")["nodes"];
    // This node and the local peer.
    assert_eq!(s.as_array().unwrap().len(), 2, "{v}");
    assert_eq!(s[0]["generation"], s[1]["generation"], "{v}");
    assert_eq!(s[0]["consistent"], true);
    let set = v
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["set"] == "stat")
        .unwrap();
    assert_eq!(set["pending"], 2, "{v}");
    assert_eq!(set["running"], true);
    assert_eq!(set["conflicts"], 0);
    let o = Command::new(BULWARK)
        .args(["status", "--state-root"])
        .arg(root)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("set stat ") && table.contains("pending: 2") && table.contains("in-sync"),
        "{table}"
    );
}

#[test]
fn a_small_change_in_a_large_file_sends_about_the_changed_blocks() {
    let mut lab = Lab::new("delta");
    let src = lab.src("img");
    let mut data = vec![0u8; 16 << 20];
    let mut x = 0x9e3779b97f4a7c15u64;
    for c in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c.copy_from_slice(&x.to_le_bytes());
    }
    std::fs::write(src.join("disk.img"), &data).unwrap();
    lab.param("paths", &format!("{}", src.display()));
    assert_eq!(code(&lab.agent("start")), 0);
    wait_same(&src, &lab.peer(&src), Duration::from_secs(20), true).unwrap();
    let before = lab.status()["bytes_sent"].as_u64().unwrap();
    assert!(before > 16 << 20, "the first copy is whole: {before}");
    // 256 KiB rewritten in place in the middle (like dd conv=notrunc).
    for b in &mut data[(8 << 20)..(8 << 20) + (256 << 10)] {
        *b = !*b;
    }
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(src.join("disk.img"))
        .unwrap();
    f.write_all_at(&data[(8 << 20)..(8 << 20) + (256 << 10)], 8 << 20)
        .unwrap();
    drop(f);
    wait_same(&src, &lab.peer(&src), Duration::from_secs(20), true).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let sent = lab.status()["bytes_sent"].as_u64().unwrap() - before;
    eprintln!("16 MiB file, 256 KiB changed: {sent} bytes sent");
    // The changed 8 KiB blocks (32, or 33 when unaligned) plus framing: far below the
    // 16 MiB of the file.
    assert!((256 << 10..512 << 10).contains(&sent), "{sent} bytes sent");
}

#[test]
fn the_sender_never_follows_symlinks_out_of_its_roots() {
    let mut lab = Lab::new("links");
    let src = lab.src("src");
    let outside = lab.src("outside");
    std::fs::write(outside.join("secret"), b"not for the peer").unwrap();
    std::os::unix::fs::symlink(&outside, src.join("to-outside")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), src.join("secret-link")).unwrap();
    lab.param("paths", &format!("{}", src.display()));
    assert_eq!(code(&lab.agent("start")), 0);
    wait_same(&src, &lab.peer(&src), Duration::from_secs(10), true).unwrap();
    // A change "inside" the linked directory is not a change of the mirrored tree.
    std::fs::write(outside.join("new-secret"), b"x").unwrap();
    std::fs::write(src.join("marker"), b"x").unwrap();
    wait_same(&src, &lab.peer(&src), Duration::from_secs(5), true).unwrap();
    let peer = lab.peer(&src);
    assert!(std::fs::symlink_metadata(peer.join("to-outside"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::symlink_metadata(peer.join("secret-link"))
        .unwrap()
        .file_type()
        .is_symlink());
    for (path, node) in snapshot(&lab.dst, false) {
        if let Node::File { data, .. } = node {
            assert!(
                data != b"not for the peer" && data != b"x" || path.ends_with("marker"),
                "{} came from outside the root",
                path.display()
            );
        }
    }
}

#[test]
fn a_node_running_the_writer_refuses_a_second_writer() {
    // Node B runs the writer of the set; node A (whose peer is B: same state dir) must
    // neither start nor push to it.
    let mut b = Lab::new("both");
    let src_b = b.src("src");
    b.param("paths", &format!("{}", src_b.display()));
    assert_eq!(code(&b.agent("start")), 0);
    let mut a = Lab::new("both");
    let src_a = a.src("src");
    std::fs::write(src_a.join("from-a"), b"x").unwrap();
    a.param("paths", &format!("{}", src_a.display()));
    a.param("peer_state_dir", &b.state.display().to_string());
    let before = snapshot(&a.dst, true);
    let o = a.agent("start");
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("runs the writer of set 'both' right now"),
        "{}",
        stderr(&o)
    );
    assert_eq!(snapshot(&a.dst, true), before);
    // The receiver refuses a push session from A too (A's start check skipped).
    let mut rx = Command::new(MIRROR)
        .args(["receive", "--set", "both", "--state-dir"])
        .arg(&b.state)
        .arg("--root")
        .arg(a.peer(&src_a))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use bulwark_agents::mirror::wire::{self, GenWire, Msg};
    let mut w = rx.stdin.take().unwrap();
    wire::send(
        &mut w,
        &Msg::Hello {
            version: wire::PROTOCOL_VERSION,
            set: "both".into(),
            node: "a".into(),
            query: false,
            gen: GenWire {
                id: "new".into(),
                history: vec![],
            },
        },
    )
    .unwrap();
    drop(w);
    let mut out = rx.stdout.take().unwrap();
    match wire::recv(&mut out).unwrap() {
        Some(Msg::Refused { reason }) => assert!(reason.contains("runs the writer"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let _ = rx.wait();
    assert_eq!(code(&b.agent("monitor")), 0);
}

fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

#[test]
fn monitor_reports_degraded_when_lag_exceeds_max_lag() {
    let mut lab = Lab::new("lag");
    let src = lab.src("src");
    lab.param("paths", &format!("{}:change", src.display()));
    lab.param("max_lag", "1s");
    assert_eq!(code(&lab.agent("start")), 0);
    let t = Instant::now();
    while lab.status()["peers"][0]["state"] != "in-sync" {
        assert!(t.elapsed() < Duration::from_secs(10), "{}", lab.status());
        std::thread::sleep(Duration::from_millis(10));
    }
    // A peer that stops answering: the change cannot be committed.
    let worker = lab.status()["worker_pid"].as_i64().unwrap() as i32;
    let receivers = children(worker);
    assert_eq!(receivers.len(), 1, "one session, one receiver");
    // SAFETY: the receiver of the daemon this test started.
    unsafe { libc::kill(receivers[0], libc::SIGSTOP) };
    std::fs::write(src.join("stuck"), b"x").unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let o = lab.agent("monitor");
    let degraded = code(&o);
    // SAFETY: as above.
    unsafe { libc::kill(receivers[0], libc::SIGCONT) };
    assert_eq!(degraded, 190, "{}\n{}", stderr(&o), lab.status());
    assert!(stderr(&o).contains("lags"), "{}", stderr(&o));
    wait_same(&src, &lab.peer(&src), Duration::from_secs(5), true).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(code(&lab.agent("monitor")), 0);
}

#[test]
fn a_path_outside_its_daily_window_waits() {
    let mut lab = Lab::new("window");
    let src = lab.src("www");
    // A one-hour window twelve hours from now.
    let now = {
        // SAFETY: plain libc time calls.
        unsafe {
            let t = libc::time(std::ptr::null_mut());
            let mut tm: libc::tm = std::mem::zeroed();
            libc::localtime_r(&t, &mut tm);
            (tm.tm_hour * 60 + tm.tm_min) as u32
        }
    };
    let start = (now + 12 * 60) % 1440;
    let end = (start + 60) % 1440;
    let hhmm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
    lab.param(
        "paths",
        &format!("{}:1s@{}-{}", src.display(), hhmm(start), hhmm(end)),
    );
    lab.param("max_lag", "1s");
    assert_eq!(code(&lab.agent("start")), 0);
    wait_same(&src, &lab.peer(&src), Duration::from_secs(10), true).unwrap();
    std::fs::write(src.join("index.html"), b"new page").unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    assert!(
        !lab.peer(&src).join("index.html").exists(),
        "sent outside its window"
    );
    // Waiting for the window is not lag.
    assert_eq!(code(&lab.agent("monitor")), 0);
    assert_eq!(code(&lab.agent("stop")), 0);
    assert!(
        diff(&src, &lab.peer(&src), true).is_none(),
        "stop flushes windowed paths too"
    );
}
