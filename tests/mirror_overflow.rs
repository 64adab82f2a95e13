//! The inotify queue overflows (more events than fs.inotify.max_queued_events while the
//! worker is stopped): the daemon rescans the affected path and everything arrives,
//! including directories created while no watch could be placed on them.

#[path = "mirror_util/mod.rs"]
mod util;

use std::time::Duration;
use util::*;

#[test]
fn queue_overflow_triggers_a_rescan_and_everything_arrives() {
    let mut lab = Lab::new("ovf");
    let src = lab.src("spool");
    for i in 0..50 {
        std::fs::write(src.join(format!("old{i}")), format!("old {i}")).unwrap();
    }
    // Watched directories (the events land in their queue), like Maildir new/ dirs.
    for u in 0..20 {
        std::fs::create_dir_all(src.join(format!("user{u:03}/new"))).unwrap();
    }
    lab.param("paths", &format!("{}:change", src.display()));
    let o = lab.agent("start");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    wait_same(&src, &lab.peer(&src), Duration::from_secs(10), true).unwrap();
    let max_queued: usize = std::fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let worker = lab.status()["worker_pid"].as_i64().unwrap() as i32;
    // SAFETY: stopping the worker this test started, so its queue fills up.
    unsafe { libc::kill(worker, libc::SIGSTOP) };
    // Each new file queues at least IN_CREATE + IN_MODIFY + IN_CLOSE_WRITE.
    let files = max_queued / 2 + 1000;
    for i in 0..files {
        let d = src.join(format!("user{:03}/new", i % 20));
        std::fs::write(d.join(format!("m{i}")), format!("message {i}")).unwrap();
    }
    // And directories no watch could be placed on while the worker was stopped.
    for u in 20..25 {
        std::fs::create_dir_all(src.join(format!("user{u:03}/new"))).unwrap();
        std::fs::write(src.join(format!("user{u:03}/new/first")), b"x").unwrap();
    }
    for i in 0..25 {
        std::fs::rename(src.join(format!("old{i}")), src.join(format!("renamed{i}"))).unwrap();
        std::fs::remove_file(src.join(format!("old{}", i + 25))).unwrap();
    }
    // SAFETY: as above.
    unsafe { libc::kill(worker, libc::SIGCONT) };
    wait_same(&src, &lab.peer(&src), Duration::from_secs(60), true)
        .unwrap_or_else(|d| panic!("after the overflow: {d}\n{}", lab.log()));
    let log = lab.log();
    assert!(
        log.contains("inotify queue overflow on"),
        "no overflow was reported: {log}"
    );
    assert!(log.contains("rescan of"), "{log}");
    // The new directories are watched after the rescan: a later change still arrives.
    std::fs::write(src.join("user000/new/after"), b"after the rescan").unwrap();
    wait_same(&src, &lab.peer(&src), Duration::from_secs(5), true).unwrap();
    assert_eq!(code(&lab.agent("monitor")), 0);
}

#[test]
fn running_out_of_watches_fails_start_naming_the_sysctl() {
    // A user namespace has its own inotify watch limit (/proc/sys/user/max_inotify_watches):
    // lower it to 5 there and start the agent on a tree of 12 directories.
    let probe = std::process::Command::new("unshare")
        .args(["-U", "-r", "true"])
        .status();
    if !probe.map(|s| s.success()).unwrap_or(false) {
        eprintln!("SKIP: cannot create a user namespace here (unshare -U -r)");
        return;
    }
    let mut lab = Lab::new("watches");
    let src = lab.src("tree");
    for i in 0..12 {
        std::fs::create_dir_all(src.join(format!("d{i}"))).unwrap();
    }
    lab.param("paths", &format!("{}", src.display()));
    let mut c = std::process::Command::new("unshare");
    c.args([
        "-U",
        "-r",
        "--",
        "sh",
        "-c",
        "echo 5 > /proc/sys/user/max_inotify_watches && exec \"$0\" start",
        AGENT,
    ])
    .env("BULWARK_NO_CLUSTER", "1");
    for (k, v) in &lab.params {
        c.env(format!("OCF_RESKEY_{k}"), v);
    }
    let o = c.output().unwrap();
    let err = stderr(&o);
    assert_eq!(code(&o), 1, "{err}");
    assert!(
        err.contains("ocf-exit-reason:")
            && err.contains("out of inotify watches")
            && err.contains("fs.inotify.max_user_watches"),
        "{err}"
    );
    // Nothing keeps running half-watched.
    assert_eq!(code(&lab.agent("monitor")), 7);
}
