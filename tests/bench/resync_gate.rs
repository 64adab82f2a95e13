//! resync-gate against rsync, side by side in one run: a 100k-file Maildir-like tree
//! (1-4 KiB files, 1,000 directories) where 100 files changed on the takeover node
//! during the outage. A: the returning node's `resync-gate start` (the whole action:
//! asking the peer, reading its change log, pulling the 100 files, applying them
//! durably, adopting the generation). B: one `rsync -a` pass of the same tree to a copy
//! that lacks the same 100 changes. Each sample is a fresh outage (untimed set-up:
//! alpha down, beta writes 100 files under a new generation, beta stops, alpha back).
//! Two comparisons: the gate as it runs by default (on a machine with little dirty data
//! a small pull is made durable by syncfs), and forced to fsync file by file and
//! directory by directory (BULWARK_PULL_SYNC=fsync, what it does when other writers
//! have much dirty data). `sync` runs before every timed part so neither side pays for
//! the other's writeback. With HA_debug=1 the pull's phases are printed too.
//! Never fails on speed.

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

/// One outage and the returning node's gate start (timed), repeatable.
struct Outage {
    cycle: usize,
    rng: Rng,
    reports: Vec<String>,
}

impl Outage {
    /// alpha is down; beta writes 100 files under a new generation, then stops; alpha
    /// returns and its gate pulls them (BULWARK_PULL_SYNC=`way` when given).
    fn run(&mut self, lab: &Lab, way: Option<&str>) -> Duration {
        let (a, b) = ("alpha", "beta");
        let mb = lab.mail(b);
        let rng = &mut self.rng;
        self.cycle += 1;
        let cycle = self.cycle;
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
        *lab.env.borrow_mut() = way
            .map(|w| vec![("BULWARK_PULL_SYNC".to_string(), w.to_string())])
            .unwrap_or_default();
        sync();
        let t = Instant::now();
        let o = lab.gate(a, "start");
        let d = t.elapsed();
        lab.env.borrow_mut().clear();
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        // The pull's summary, and its phases when HA_debug=1 is set.
        for l in stderr(&o)
            .lines()
            .filter(|l| l.contains("pulled from") || l.contains("pull phases"))
        {
            self.reports.push(l.to_string());
        }
        assert_eq!(code(&lab.gate(a, "stop")), 0);
        d
    }
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
    let rsync_a = || {
        let o = Command::new("rsync")
            .arg("-a")
            .arg(format!("{}/", mb.display()))
            .arg(&r)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    };
    rsync_a();
    lab.crash(a);
    assert_eq!(code(&lab.gate(b, "start")), 0);
    let outage = std::cell::RefCell::new(Outage {
        cycle: 0,
        rng: Rng(7),
        reports: Vec::new(),
    });
    let rsync_sync = std::cell::RefCell::new(Vec::<Duration>::new());
    let rsync = || {
        sync();
        let t = Instant::now();
        rsync_a();
        let d = t.elapsed();
        // rsync does not make its copy durable; the gate does. Note what one syncfs
        // after rsync costs.
        let t2 = Instant::now();
        if let Ok(f) = std::fs::File::open(&r) {
            // SAFETY: valid fd.
            unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&f)) };
        }
        rsync_sync.borrow_mut().push(d + t2.elapsed());
        d
    };
    // The gate as installed: a small pull on a machine with little dirty data is made
    // durable by syncfs; then forced to fsync file by file and directory by directory,
    // as it does when other writers have much dirty data (BULWARK_PULL_SYNC=fsync).
    let mut results = Vec::new();
    for (case, way) in [
        ("100 changes in a 100k tree: pull vs rsync -a", None),
        ("the same, the pull forced to fsyncs", Some("fsync")),
    ] {
        results.push(ab(
            case,
            5,
            Contender::new("resync-gate start (pull)", || {
                outage.borrow_mut().run(&lab, way)
            }),
            Contender::new("rsync -a beta/ copy/", rsync),
        ));
    }
    let mut rsync_sync = rsync_sync.into_inner();
    rsync_sync.sort();
    println!(
        "  rsync -a followed by one syncfs of the copy (durable like the gate): median {:.1} ms",
        rsync_sync[rsync_sync.len() / 2].as_secs_f64() * 1000.0
    );
    for l in &outage.into_inner().reports {
        println!(
            "  {}",
            l.trim_start_matches("resync-gate: INFO: ")
                .trim_start_matches("resync-gate: DEBUG: ")
        );
    }
    summary(&results);
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
