//! resync-gate against rsync, side by side in one run: a 100k-file Maildir-like tree
//! (1-4 KiB files, 1,000 directories) where 100 files changed on the takeover node
//! during the outage. A: the returning node's `resync-gate start` (the whole action:
//! asking the peer, reading its change log, pulling the 100 files, applying them
//! durably, adopting the generation). B: one `rsync -a` pass of the same tree to a copy
//! that lacks the same 100 changes. Each sample is a fresh outage (untimed set-up:
//! alpha down, beta writes 100 files under a new generation, beta stops, alpha back).
//! `sync` runs before every timed part so neither pays for the other's writeback; the
//! gate's syncfs still pays for whatever else is dirty on the file system at that moment
//! (a shared machine makes its times vary). Never fails on speed.

mod common;
#[path = "../gate_util/mod.rs"]
mod util;

use common::{ab, summary, Contender};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use util::*;

const FILES: usize = 100_000;
const DIRS: usize = 1_000;
const CHANGES: usize = 100;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n.div_ceil(8) * 8];
        for c in v.chunks_mut(8) {
            c.copy_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

fn name(i: usize) -> String {
    format!(
        "user{:04}/Maildir/cur/{i}.M{}P{i}.host:2,S",
        i % DIRS,
        1_700_000_000 + i
    )
}

fn sync() {
    // SAFETY: no preconditions.
    unsafe { libc::sync() };
}

fn main() {
    if !Path::new("/usr/bin/rsync").exists() {
        println!("SKIP: rsync is not installed");
        return;
    }
    let lab = Lab::new("bench");
    let (a, b) = ("alpha", "beta");
    let (ma, mb) = (lab.mail(a), lab.mail(b));
    let t = Instant::now();
    let mut rng = Rng(42);
    for i in 0..FILES {
        let p = ma.join(name(i));
        if i < DIRS {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        }
        let len = 1024 + (rng.next() % 3073) as usize;
        std::fs::write(p, rng.bytes(len)).unwrap();
    }
    println!(
        "generated {FILES} files in {DIRS} directories in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // alpha holds the service and mirrors everything to beta.
    let t = Instant::now();
    assert_eq!(code(&lab.gate(a, "start")), 0);
    let o = lab.mirror(a, "start");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let st = || -> serde_json::Value {
        std::fs::read(lab.state(a).join("status.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    };
    wait_for(
        "alpha's first pass to beta",
        Duration::from_secs(600),
        || st()["peers"][0]["state"] == "in-sync",
    );
    println!(
        "alpha's file-mirror copied the tree to beta in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // The rsync contender's copy: the same tree.
    let r = lab.tmp.path().join("rsync-copy");
    let o = Command::new("rsync")
        .arg("-a")
        .arg(format!("{}/", mb.display()))
        .arg(&r)
        .output()
        .unwrap();
    assert!(o.status.success());
    lab.crash(a);
    assert_eq!(code(&lab.gate(b, "start")), 0);
    let mut cycle = 0usize;
    let mut reports = Vec::new();
    let mut rsync_sync: Vec<Duration> = Vec::new();
    let mut rng = Rng(7);
    let res = ab(
        "100 changes in a 100k tree: pull vs rsync -a",
        5,
        Contender::new("resync-gate start (pull)", || {
            // An outage: alpha is down; beta writes under a new generation, then stops.
            cycle += 1;
            if cycle > 1 {
                lab.crash(a);
            }
            let o = lab.mirror(b, "start");
            assert_eq!(code(&o), 0, "{}", stderr(&o));
            for k in 0..CHANGES {
                let p = if k < CHANGES * 4 / 5 {
                    mb.join(name((rng.next() as usize) % FILES))
                } else {
                    mb.join(format!("user{:04}/Maildir/new/c{cycle}-{k}", k * 7 % DIRS))
                };
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                let len = 1024 + (rng.next() % 3073) as usize;
                std::fs::write(p, rng.bytes(len)).unwrap();
            }
            std::thread::sleep(Duration::from_millis(200));
            assert_eq!(code(&lab.mirror(b, "stop")), 0);
            lab.back(a);
            sync();
            let t = Instant::now();
            let o = lab.gate(a, "start");
            let d = t.elapsed();
            assert_eq!(code(&o), 0, "{}", stderr(&o));
            // The pull's summary, and its phases when HA_debug=1 is set.
            for l in stderr(&o)
                .lines()
                .filter(|l| l.contains("pulled from") || l.contains("pull phases"))
            {
                reports.push(l.to_string());
            }
            assert_eq!(code(&lab.gate(a, "stop")), 0);
            d
        }),
        Contender::new("rsync -a beta/ copy/", || {
            sync();
            let t = Instant::now();
            let o = Command::new("rsync")
                .arg("-a")
                .arg(format!("{}/", mb.display()))
                .arg(&r)
                .output()
                .unwrap();
            let d = t.elapsed();
            assert!(o.status.success());
            // rsync does not make its copy durable; the gate does (syncfs before the
            // renames and before adopting). Note what one syncfs after rsync costs.
            let t2 = Instant::now();
            if let Ok(f) = std::fs::File::open(&r) {
                // SAFETY: valid fd.
                unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&f)) };
            }
            rsync_sync.push(d + t2.elapsed());
            d
        }),
    );
    rsync_sync.sort();
    println!(
        "  rsync -a followed by one syncfs of the copy (durable like the gate): median {:.1} ms",
        rsync_sync[rsync_sync.len() / 2].as_secs_f64() * 1000.0
    );
    for l in &reports {
        println!(
            "  {}",
            l.trim_start_matches("resync-gate: INFO: ")
                .trim_start_matches("resync-gate: DEBUG: ")
        );
    }
    summary(&[res]);
    // Both copies ended equal to beta's tree.
    let o = Command::new("diff")
        .args(["-r", "-q"])
        .arg(&ma)
        .arg(&mb)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "alpha differs from beta: {}",
        stdout(&o)
    );
    let o = Command::new("diff")
        .args(["-r", "-q"])
        .arg(&r)
        .arg(&mb)
        .output()
        .unwrap();
    assert!(o.status.success(), "the rsync copy differs: {}", stdout(&o));
    println!("alpha and the rsync copy both equal beta's tree");
}
