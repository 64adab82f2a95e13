//! Crash loop: 50 times, change a good part of the tree, start the sender (the worker),
//! `kill -9` the sender or the receiver at a random moment of its pass, restart, and
//! check: no partial file is ever visible on the receiver (every file carries the
//! BLAKE3 hash of its own body, checked continuously by a watcher thread), and after
//! completion the trees are identical.

#[path = "mirror_util/mod.rs"]
mod util;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use util::*;

const ITERATIONS: usize = 50;
const FILES: usize = 240;
const BIG: usize = 3 << 20;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A self-checking file: 32 bytes of BLAKE3(body), then the body.
fn content(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut body = vec![0u8; len];
    for chunk in body.chunks_mut(8) {
        let v = rng.next().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
    let mut out = blake3::hash(&body).as_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

fn whole(data: &[u8]) -> bool {
    data.len() >= 32 && blake3::hash(&data[32..]).as_bytes()[..] == data[..32]
}

fn file_path(src: &Path, i: usize) -> PathBuf {
    src.join(format!("u{:02}/cur/m{i:04}", i % 12))
}

/// Changes about half the files, deletes and re-creates some, rewrites a block of the big one.
fn mutate(src: &Path, rng: &mut Rng) {
    for i in 0..FILES {
        let p = file_path(src, i);
        match rng.below(10) {
            0..=4 => {
                let len = 1024 + rng.below(60 << 10) as usize;
                std::fs::write(&p, content(rng, len)).unwrap();
            }
            5 => {
                let _ = std::fs::remove_file(&p);
            }
            _ => {
                if !p.exists() {
                    std::fs::write(&p, content(rng, 2048)).unwrap();
                }
            }
        }
    }
    // The big file: one new body (so the header hash changes) with the same bytes except
    // one 64 KiB region: the delta sends two blocks.
    let big = src.join("big.img");
    let mut data = std::fs::read(&big).unwrap();
    let off = 32 + rng.below((BIG - (64 << 10)) as u64) as usize;
    let fresh = content(rng, 64 << 10);
    data[off..off + (64 << 10)].copy_from_slice(&fresh[..64 << 10]);
    let h = *blake3::hash(&data[32..]).as_bytes();
    data[..32].copy_from_slice(&h);
    std::fs::write(&big, data).unwrap();
}

/// Regular files below `root` (relative paths), not following symlinks.
fn files_below(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(root.join(&rel)) else {
            continue;
        };
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(rel.join(e.file_name())),
                Ok(t) if t.is_file() => out.push(rel.join(e.file_name())),
                _ => {}
            }
        }
    }
    out
}

fn children(pid: u32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

fn worker(state: &Path) -> Child {
    Command::new(MIRROR)
        .args(["worker", "--state-dir"])
        .arg(state)
        .env("BULWARK_NO_CLUSTER", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn in_sync(lab: &Lab, pid: u32) -> bool {
    let st = lab.status();
    st["worker_pid"].as_u64() == Some(pid as u64)
        && st["pending"] == 0
        && st["peers"][0]["state"] == "in-sync"
}

#[test]
fn kill_9_sender_or_receiver_mid_pass_50_times() {
    let mut lab = Lab::new("crash");
    let src = lab.src("spool");
    let seed = fsops_seed();
    eprintln!("seed {seed}");
    let mut rng = Rng(seed);
    for u in 0..12 {
        std::fs::create_dir_all(src.join(format!("u{u:02}/cur"))).unwrap();
    }
    for i in 0..FILES {
        std::fs::write(file_path(&src, i), content(&mut rng, 4096)).unwrap();
    }
    std::fs::write(src.join("big.img"), content(&mut rng, BIG)).unwrap();
    lab.param("paths", &format!("{}:change", src.display()));
    // The agent writes the configuration and begins the generation; the test then runs
    // the worker itself so it can kill it.
    assert_eq!(code(&lab.agent("start")), 0);
    assert_eq!(code(&lab.agent("stop")), 0);
    let peer = lab.peer(&src);
    assert!(diff(&src, &peer, true).is_none());

    let stop = Arc::new(AtomicBool::new(false));
    let checked = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (stop, checked, peer) = (stop.clone(), checked.clone(), peer.clone());
        std::thread::spawn(move || -> Result<(), String> {
            while !stop.load(Ordering::Relaxed) {
                for rel in files_below(&peer) {
                    let name = rel.file_name().unwrap().to_string_lossy();
                    if name.starts_with(".bulwark-tmp.") {
                        continue; // temporary files are the only partial ones
                    }
                    // Read through one fd; a file deleted meanwhile is not a partial file.
                    let data = match std::fs::read(peer.join(&rel)) {
                        Ok(d) => d,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(format!("{}: {e}", rel.display())),
                    };
                    if !whole(&data) {
                        return Err(format!(
                            "partial file visible on the receiver: {} ({} bytes)",
                            rel.display(),
                            data.len()
                        ));
                    }
                    checked.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(())
        })
    };

    let mut first_pass = Duration::from_millis(300);
    let (mut killed_sender, mut killed_receiver) = (0, 0);
    for it in 0..ITERATIONS {
        mutate(&src, &mut rng);
        let mut w = worker(&lab.state);
        let t = Instant::now();
        if it == 0 {
            // Calibrate: how long a pass of this size takes here.
            while !in_sync(&lab, w.id()) && t.elapsed() < Duration::from_secs(30) {
                std::thread::sleep(Duration::from_millis(5));
            }
            first_pass = t.elapsed().max(Duration::from_millis(50));
            eprintln!("a pass takes about {first_pass:?}");
            // SAFETY: the worker this test started: a clean stop before changing the
            // source (the source is never written while a sender reads it).
            unsafe { libc::kill(w.id() as i32, libc::SIGTERM) };
            let _ = w.wait();
            mutate(&src, &mut rng);
            w = worker(&lab.state);
        }
        let at = Duration::from_micros(rng.below(first_pass.as_micros() as u64 + 1));
        std::thread::sleep(at);
        let kill_receiver = rng.below(2) == 0;
        let receivers = children(w.id());
        if kill_receiver && !receivers.is_empty() {
            for r in receivers {
                // SAFETY: the receiver child of the worker this test started.
                unsafe { libc::kill(r, libc::SIGKILL) };
            }
            killed_receiver += 1;
            // The worker notices the broken session and reconnects by itself; end it
            // too so every iteration restarts from a crash.
            std::thread::sleep(Duration::from_millis(rng.below(30)));
        } else {
            killed_sender += 1;
        }
        let _ = w.kill();
        let _ = w.wait();
        // Restart and let the pass complete.
        let mut w = worker(&lab.state);
        let t = Instant::now();
        while !in_sync(&lab, w.id()) {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "iteration {it}: no complete pass\n{}",
                lab.status()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // SAFETY: the worker this test started: a clean stop.
        unsafe { libc::kill(w.id() as i32, libc::SIGTERM) };
        let _ = w.wait();
        if let Some(d) = diff(&src, &peer, true) {
            stop.store(true, Ordering::Relaxed);
            panic!("iteration {it}: trees differ after completion: {d}");
        }
        assert!(
            !watcher.is_finished(),
            "the watcher stopped: {:?}",
            watcher.join()
        );
    }
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap().unwrap();
    eprintln!(
        "{ITERATIONS} iterations: killed the sender {killed_sender} times, the receiver {killed_receiver} times; \
         {} whole files checked while passes ran",
        checked.load(Ordering::Relaxed)
    );
    assert!(killed_receiver > 5 && killed_sender > 5);
    let leftovers: Vec<_> = snapshot(&lab.dst, false)
        .into_keys()
        .filter(|k| k.to_string_lossy().contains(".bulwark-tmp."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn fsops_seed() -> u64 {
    std::env::var("MIRROR_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        })
}
