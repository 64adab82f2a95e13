//! The receiver binary spoken to directly over its framed protocol: path attacks
//! (`..`, absolute paths, writes through a planted symlink) are rejected and logged,
//! a stale sender is refused with nothing changed, a second writer is refused.

#[path = "mirror_util/mod.rs"]
mod util;

use bulwark_agents::mirror::wire::{self, GenWire, Kind, Meta, Msg, PROTOCOL_VERSION};
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use util::*;

struct Rx {
    child: Child,
    w: ChildStdin,
    r: BufReader<ChildStdout>,
}

impl Rx {
    fn start(set: &str, state: &Path, roots: &[&Path]) -> Rx {
        let mut c = Command::new(MIRROR);
        c.args(["receive", "--set", set, "--state-dir"]).arg(state);
        for r in roots {
            c.arg("--root").arg(r);
        }
        let mut child = c
            .env("BULWARK_NO_CLUSTER", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let w = child.stdin.take().unwrap();
        let r = BufReader::new(child.stdout.take().unwrap());
        Rx { child, w, r }
    }
    fn send(&mut self, m: Msg) {
        wire::send(&mut self.w, &m).unwrap();
        self.w.flush().unwrap();
    }
    fn recv(&mut self) -> Msg {
        wire::recv(&mut self.r).unwrap().expect("a frame")
    }
    fn hello(&mut self, set: &str, id: &str, history: &[&str]) -> Msg {
        self.send(Msg::Hello {
            version: PROTOCOL_VERSION,
            set: set.into(),
            node: "test".into(),
            query: false,
            gen: GenWire {
                id: id.into(),
                history: history.iter().map(|s| s.to_string()).collect(),
            },
        });
        self.recv()
    }
    fn file(&mut self, root: u32, path: &[u8], data: &[u8]) {
        self.send(Msg::FileBegin {
            root,
            path: path.to_vec(),
            meta: meta(Kind::File, data.len() as u64),
        });
        self.send(Msg::Chunk(data.to_vec()));
        self.send(Msg::FileEnd);
    }
    fn commit(&mut self) -> Vec<(String, String)> {
        self.send(Msg::Commit { seq: 1 });
        match self.recv() {
            Msg::Committed { failures, .. } => failures,
            other => panic!("{other:?}"),
        }
    }
    /// Ends the session; returns the receiver's stderr (its log).
    fn finish(mut self) -> String {
        let _ = wire::send(&mut self.w, &Msg::Bye);
        drop(self.w);
        let out = self.child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

fn meta(kind: Kind, size: u64) -> Meta {
    Meta {
        kind,
        mode: 0o644,
        // SAFETY: no preconditions.
        uid: unsafe { libc::geteuid() },
        gid: unsafe { libc::getegid() },
        size,
        mtime_sec: 1_700_000_000,
        mtime_nsec: 5,
        ino: 0,
        ctime_sec: 0,
        ctime_nsec: 0,
    }
}

struct Scene {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
    state: PathBuf,
}

fn scene() -> Scene {
    let tmp = tempfile::Builder::new()
        .prefix("bulwark-rx.")
        .tempdir()
        .unwrap();
    let root = tmp.path().join("peer/srv/data");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("victim"), b"precious").unwrap();
    Scene {
        state: tmp.path().join("state"),
        root,
        outside,
        _tmp: tmp,
    }
}

fn assert_outside_untouched(s: &Scene) {
    let names: Vec<_> = std::fs::read_dir(&s.outside)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("victim")],
        "something was written outside the root"
    );
    assert_eq!(
        std::fs::read(s.outside.join("victim")).unwrap(),
        b"precious"
    );
}

#[test]
fn dotdot_components_are_rejected_and_logged() {
    let s = scene();
    let mut rx = Rx::start("atk", &s.state, &[&s.root]);
    assert!(matches!(rx.hello("atk", "g1", &[]), Msg::HelloOk { .. }));
    rx.file(0, b"../../../outside/victim", b"owned");
    rx.file(0, b"a/../../../../outside/new", b"owned");
    rx.send(Msg::Delete {
        root: 0,
        path: b"../../../outside/victim".to_vec(),
    });
    rx.send(Msg::Dir {
        root: 0,
        path: b"..".to_vec(),
        meta: meta(Kind::Dir, 0),
    });
    rx.file(0, b"ok", b"fine");
    let failures = rx.commit();
    assert_eq!(failures.len(), 4, "{failures:?}");
    assert!(
        failures
            .iter()
            .all(|(_, why)| why.contains("'..' component")),
        "{failures:?}"
    );
    let log = rx.finish();
    assert!(log.matches("ATTACK? refused path").count() >= 4, "{log}");
    assert_outside_untouched(&s);
    assert_eq!(std::fs::read(s.root.join("ok")).unwrap(), b"fine");
    assert!(
        !s.root.join("a").exists(),
        "the refused path created a directory"
    );
}

#[test]
fn absolute_paths_are_rejected_and_logged() {
    let s = scene();
    let mut rx = Rx::start("atk", &s.state, &[&s.root]);
    assert!(matches!(rx.hello("atk", "g1", &[]), Msg::HelloOk { .. }));
    let victim = s.outside.join("victim");
    rx.file(0, victim.as_os_str().as_encoded_bytes(), b"owned");
    rx.send(Msg::Symlink {
        root: 0,
        path: s
            .outside
            .join("link")
            .as_os_str()
            .as_encoded_bytes()
            .to_vec(),
        meta: meta(Kind::Symlink, 0),
        target: b"/etc/shadow".to_vec(),
    });
    rx.send(Msg::Delete {
        root: 0,
        path: victim.as_os_str().as_encoded_bytes().to_vec(),
    });
    // An unknown root index is refused too.
    rx.file(7, b"x", b"owned");
    let failures = rx.commit();
    assert_eq!(failures.len(), 4, "{failures:?}");
    assert_eq!(
        failures
            .iter()
            .filter(|(_, w)| w.contains("absolute path"))
            .count(),
        3,
        "{failures:?}"
    );
    let log = rx.finish();
    assert!(log.matches("ATTACK? refused path").count() >= 4, "{log}");
    assert_outside_untouched(&s);
}

#[test]
fn writes_through_a_planted_symlink_are_rejected() {
    let s = scene();
    // Planted on the receiver: a link inside the root pointing outside, and one to a
    // directory inside the root (following it is refused as well).
    std::os::unix::fs::symlink(&s.outside, s.root.join("evil")).unwrap();
    std::fs::create_dir(s.root.join("inner")).unwrap();
    std::os::unix::fs::symlink("inner", s.root.join("alias")).unwrap();
    let mut rx = Rx::start("atk", &s.state, &[&s.root]);
    assert!(matches!(rx.hello("atk", "g1", &[]), Msg::HelloOk { .. }));
    rx.file(0, b"evil/victim", b"owned");
    rx.file(0, b"evil/new", b"owned");
    rx.send(Msg::Dir {
        root: 0,
        path: b"evil/dir".to_vec(),
        meta: meta(Kind::Dir, 0),
    });
    rx.send(Msg::Delete {
        root: 0,
        path: b"evil/victim".to_vec(),
    });
    rx.send(Msg::SigReq {
        root: 0,
        path: b"evil/victim".to_vec(),
        block: 8192,
    });
    match rx.recv() {
        Msg::Sig { size, .. } => assert_eq!(size, u64::MAX, "read a file through the symlink"),
        other => panic!("{other:?}"),
    }
    rx.file(0, b"alias/x", b"owned");
    let failures = rx.commit();
    assert_eq!(failures.len(), 5, "{failures:?}");
    assert!(
        failures.iter().all(|(_, w)| w.contains("symlink")),
        "{failures:?}"
    );
    // Replacing the planted link itself is a normal write: the link is replaced, not followed.
    rx.file(0, b"evil", b"a file now");
    assert!(rx.commit().is_empty());
    let log = rx.finish();
    assert!(log.matches("ATTACK? refused path").count() >= 5, "{log}");
    assert_outside_untouched(&s);
    assert!(!s.root.join("inner/x").exists());
    assert_eq!(std::fs::read(s.root.join("evil")).unwrap(), b"a file now");
    assert!(std::fs::symlink_metadata(s.root.join("evil"))
        .unwrap()
        .is_file());
}

#[test]
fn stale_sender_is_refused_and_nothing_changes() {
    let s = scene();
    std::fs::write(s.root.join("mail"), b"delivered on the new writer").unwrap();
    // The receiver first follows generation g2 (child of g1) to completion.
    let mut rx = Rx::start("mail", &s.state, &[&s.root]);
    assert!(matches!(
        rx.hello("mail", "g2", &["g1"]),
        Msg::HelloOk { .. }
    ));
    rx.send(Msg::PassComplete);
    assert!(matches!(rx.recv(), Msg::PassOk { .. }));
    rx.finish();
    let before = snapshot(&s.root, true);
    let gen_before = std::fs::read(s.state.join("generation.json")).unwrap();
    // A sender still on g1 (lsyncd #460: the stale node restarts and pushes).
    let mut rx = Rx::start("mail", &s.state, &[&s.root]);
    match rx.hello("mail", "g1", &[]) {
        Msg::Refused { reason } => assert!(reason.contains("stale sender"), "{reason}"),
        other => panic!("stale sender accepted: {other:?}"),
    }
    // Whatever it sends after the refusal is never applied.
    let _ = wire::send(
        &mut rx.w,
        &Msg::FileBegin {
            root: 0,
            path: b"mail".to_vec(),
            meta: meta(Kind::File, 5),
        },
    );
    let _ = wire::send(&mut rx.w, &Msg::Chunk(b"stale".to_vec()));
    let _ = wire::send(&mut rx.w, &Msg::FileEnd);
    let _ = wire::send(&mut rx.w, &Msg::Commit { seq: 1 });
    let log = rx.finish();
    assert!(log.contains("refused test: stale sender"), "{log}");
    // A diverged sender (g3, also a child of g1) is refused as well.
    let mut rx = Rx::start("mail", &s.state, &[&s.root]);
    match rx.hello("mail", "g3", &["g1"]) {
        Msg::Refused { reason } => assert!(reason.contains("diverged"), "{reason}"),
        other => panic!("diverged sender accepted: {other:?}"),
    }
    rx.finish();
    assert_eq!(
        snapshot(&s.root, true),
        before,
        "the receiver's tree changed"
    );
    assert_eq!(
        std::fs::read(s.state.join("generation.json")).unwrap(),
        gen_before
    );
    // A descendant (g4 after g2) is accepted.
    let mut rx = Rx::start("mail", &s.state, &[&s.root]);
    assert!(matches!(
        rx.hello("mail", "g4", &["g2", "g1"]),
        Msg::HelloOk { .. }
    ));
    rx.finish();
}

#[test]
fn a_second_writer_session_is_refused() {
    let s = scene();
    let mut a = Rx::start("two", &s.state, &[&s.root]);
    assert!(matches!(a.hello("two", "g1", &[]), Msg::HelloOk { .. }));
    let mut b = Rx::start("two", &s.state, &[&s.root]);
    let t = std::time::Instant::now();
    match b.hello("two", "g1", &[]) {
        Msg::Refused { reason } => assert!(reason.contains("two writers"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // It waited for the first session (which might have been a dying one) first.
    assert!(t.elapsed() >= std::time::Duration::from_secs(4));
    b.finish();
    a.file(0, b"f", b"first writer");
    assert!(a.commit().is_empty());
    a.finish();
    assert_eq!(std::fs::read(s.root.join("f")).unwrap(), b"first writer");
}

#[test]
fn metadata_is_kept_and_a_crashed_session_leaves_no_partial_file() {
    let s = scene();
    std::fs::write(s.root.join("f"), b"old version").unwrap();
    let mut rx = Rx::start("meta", &s.state, &[&s.root]);
    assert!(matches!(rx.hello("meta", "g1", &[]), Msg::HelloOk { .. }));
    let mut m = meta(Kind::File, 11);
    m.mode = 0o4751;
    m.mtime_nsec = 987_654_321;
    rx.send(Msg::FileBegin {
        root: 0,
        path: b"d/f".to_vec(),
        meta: m.clone(),
    });
    rx.send(Msg::Chunk(b"new version".to_vec()));
    rx.send(Msg::FileEnd);
    rx.send(Msg::Symlink {
        root: 0,
        path: b"d/l".to_vec(),
        meta: meta(Kind::Symlink, 0),
        target: b"../../nowhere".to_vec(),
    });
    assert!(rx.commit().is_empty());
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::symlink_metadata(s.root.join("d/f")).unwrap();
    assert_eq!(
        (md.mode() & 0o7777, md.mtime(), md.mtime_nsec()),
        (0o4751, 1_700_000_000, 987_654_321)
    );
    assert_eq!(
        std::fs::read_link(s.root.join("d/l")).unwrap(),
        PathBuf::from("../../nowhere")
    );
    // Half a file, then the sender dies: the old version stays, no temporary file stays.
    rx.send(Msg::FileBegin {
        root: 0,
        path: b"f".to_vec(),
        meta: meta(Kind::File, 1000),
    });
    rx.send(Msg::Chunk(vec![b'x'; 500]));
    std::thread::sleep(std::time::Duration::from_millis(100));
    rx.child.kill().unwrap();
    rx.child.wait().unwrap();
    assert_eq!(std::fs::read(s.root.join("f")).unwrap(), b"old version");
    // (The killed receiver may leave its temporary file; the next session removes it.)
    let mut rx = Rx::start("meta", &s.state, &[&s.root]);
    assert!(matches!(rx.hello("meta", "g1", &[]), Msg::HelloOk { .. }));
    rx.send(Msg::ManifestReq { root: u32::MAX });
    let mut paths = Vec::new();
    loop {
        match rx.recv() {
            Msg::ManifestEntry(e) => paths.push(String::from_utf8_lossy(&e.path).into_owned()),
            Msg::ManifestEnd => break,
            other => panic!("{other:?}"),
        }
    }
    rx.finish();
    assert!(
        paths.iter().all(|p| !p.contains(".bulwark-tmp.")),
        "{paths:?}"
    );
    let left: Vec<_> = std::fs::read_dir(&s.root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.iter()
            .all(|n| !n.to_string_lossy().starts_with(".bulwark-tmp.")),
        "{left:?}"
    );
}
