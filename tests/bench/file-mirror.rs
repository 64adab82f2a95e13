//! file-mirror against rsync, side by side in one run, on a 100k-file Maildir-like tree
//! (1-4 KiB files, 1,000 leaf directories, 3,001 directories; baselines.md section 5):
//! - the initial full copy;
//! - one change to the peer: p50 and p99;
//! - 10 changes: against `rsync -a` (full pass) and `rsync -a --files-from`;
//! - 1 MiB changed inside a 1 GiB file: time and bytes sent;
//! - the daemon's idle CPU and memory on the 100k tree.
//!
//! The tree is generated once into $BENCH_DIR (default /var/tmp/bulwark-bench-mirror)
//! and reused. Never fails on speed.

mod common;

use common::{ab, ms, percentile, summary, Contender};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const AGENT: &str = env!("CARGO_BIN_EXE_file-mirror");
const FILES: usize = 100_000;
const USERS: usize = 1_000;

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

/// Removes the files earlier runs added to the tree (named `bench-*`).
fn clean_bench_files(root: &Path) {
    for u in 0..USERS {
        let d = root.join(format!("user{u:04}/Maildir/cur"));
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with("bench-") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

fn gen_tree(root: &Path) {
    let marker = root.join(".complete");
    if marker.exists() {
        return;
    }
    let _ = std::fs::remove_dir_all(root);
    let t = Instant::now();
    let mut rng = Rng(42);
    for i in 0..FILES {
        let d = root.join(format!("user{:04}/Maildir/cur", i % USERS));
        if i < USERS {
            std::fs::create_dir_all(&d).unwrap();
        }
        let len = 1024 + (rng.next() % 3073) as usize;
        std::fs::write(
            d.join(format!("{i}.M{}P{}.host:2,S", 1_700_000_000 + i, i)),
            rng.bytes(len),
        )
        .unwrap();
    }
    std::fs::write(marker, b"").unwrap();
    println!(
        "generated the 100k tree in {:.1} s",
        t.elapsed().as_secs_f64()
    );
}

struct Mirror {
    params: Vec<(String, String)>,
    state: PathBuf,
}

impl Mirror {
    fn new(set: &str, paths: &str, target: &Path, state: &Path) -> Mirror {
        Mirror {
            params: vec![
                ("set".into(), set.into()),
                ("paths".into(), paths.into()),
                ("transport".into(), "local".into()),
                ("target".into(), target.display().to_string()),
                ("state_dir".into(), state.display().to_string()),
            ],
            state: state.to_path_buf(),
        }
    }
    fn agent(&self, action: &str) -> i32 {
        let mut c = Command::new(AGENT);
        c.arg(action)
            .env("BULWARK_NO_CLUSTER", "1")
            .env("OCF_RESKEY_CRM_meta_timeout", "600000");
        for (k, v) in &self.params {
            c.env(format!("OCF_RESKEY_{k}"), v);
        }
        let o = c.output().unwrap();
        if !o.status.success() {
            eprintln!("{action}: {}", String::from_utf8_lossy(&o.stderr));
        }
        o.status.code().unwrap_or(-1)
    }
    fn status(&self) -> serde_json::Value {
        std::fs::read(self.state.join("status.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(serde_json::Value::Null)
    }
    fn passes(&self) -> u64 {
        self.status()["passes"].as_u64().unwrap_or(0)
    }
    /// Waits until a pass after `after` passes completed with nothing pending.
    fn wait_pass(&self, after: u64) {
        let t = Instant::now();
        loop {
            let s = self.status();
            if s["passes"].as_u64().unwrap_or(0) > after
                && s["pending"] == 0
                && s["peers"][0]["state"] == "in-sync"
            {
                return;
            }
            assert!(t.elapsed() < Duration::from_secs(600), "no pass: {s}");
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    fn pids(&self) -> Vec<i32> {
        let s = self.status();
        let mut v = vec![
            s["pid"].as_i64().unwrap_or(0) as i32,
            s["worker_pid"].as_i64().unwrap_or(0) as i32,
        ];
        let w = v[1];
        v.extend(
            std::fs::read_to_string(format!("/proc/{w}/task/{w}/children"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|x| x.parse::<i32>().ok()),
        );
        v.retain(|p| *p > 0);
        v
    }
}

fn peer_of(target: &Path, p: &Path) -> PathBuf {
    target.join(p.strip_prefix("/").unwrap())
}

fn rsync(args: &[&str]) -> Duration {
    let t = Instant::now();
    let st = Command::new("rsync")
        .args(args)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "rsync {args:?}");
    t.elapsed()
}

fn cpu_ticks(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    f.get(11).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0)
}

fn rss_kb(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|x| x.parse().ok()))
        .unwrap_or(0)
}

fn children_cpu() -> Duration {
    // SAFETY: out-pointer to a zeroed rusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    Duration::from_micros((ru.ru_utime.tv_sec * 1_000_000 + ru.ru_utime.tv_usec) as u64)
        + Duration::from_micros((ru.ru_stime.tv_sec * 1_000_000 + ru.ru_stime.tv_usec) as u64)
}

/// Waits until the peer copy has the source's size and nanosecond mtime.
fn wait_file(src: &Path, p: &Path) -> Duration {
    use std::os::unix::fs::MetadataExt;
    let t = Instant::now();
    let want = std::fs::metadata(src).unwrap();
    let want = (want.len(), want.mtime(), want.mtime_nsec());
    loop {
        if std::fs::metadata(p)
            .map(|m| (m.len(), m.mtime(), m.mtime_nsec()) == want)
            .unwrap_or(false)
        {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "{} never arrived",
            p.display()
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn main() {
    if !Path::new("/usr/bin/rsync").exists() {
        println!("SKIP: rsync is not installed");
        return;
    }
    let base = std::env::var_os("BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/bulwark-bench-mirror"));
    std::fs::create_dir_all(&base).unwrap();
    let tree = base.join("spool");
    gen_tree(&tree);
    clean_bench_files(&tree);
    let run = std::process::id();
    let runs = base.join(format!("run-{}", std::process::id()));
    std::fs::create_dir_all(&runs).unwrap();
    let mut results = Vec::new();
    let mut notes: Vec<String> = Vec::new();

    // 1. The initial full copy.
    let mut n_ours = 0;
    let mut n_rs = 0;
    let mut last_ours: Option<(PathBuf, PathBuf)> = None;
    let mut rsync_syncfs: Vec<Duration> = Vec::new();
    let full = ab(
        "initial full copy, 100k files",
        2,
        Contender::new("file-mirror (start..in-sync)", || {
            n_ours += 1;
            let target = runs.join(format!("ours-{n_ours}"));
            let state = runs.join(format!("state-{n_ours}"));
            let m = Mirror::new(
                &format!("full{n_ours}"),
                &tree.display().to_string(),
                &target,
                &state,
            );
            let t = Instant::now();
            assert_eq!(m.agent("start"), 0);
            m.wait_pass(0);
            let d = t.elapsed();
            assert_eq!(m.agent("stop"), 0);
            last_ours = Some((target, state));
            d
        }),
        Contender::new("rsync -a src/ new/", || {
            n_rs += 1;
            let dst = runs.join(format!("rsync-{n_rs}"));
            let d = rsync(&[
                "-a",
                &format!("{}/", tree.display()),
                &format!("{}/", dst.display()),
            ]);
            // rsync does not make its copy durable; file-mirror does (fsync/syncfs before
            // each rename). Note what a syncfs right after rsync costs.
            let t = Instant::now();
            let _ = Command::new("sync").arg("-f").arg(&dst).status();
            rsync_syncfs.push(d + t.elapsed());
            d
        }),
    );
    notes.push(format!(
        "initial copy, rsync -a followed by syncfs of the target (durable like file-mirror's): {:?} ms",
        rsync_syncfs.iter().map(|d| ms(*d).round()).collect::<Vec<_>>()
    ));
    results.push(full);
    let rs_copy = runs.join(format!("rsync-{n_rs}"));
    let (live_target, _) = last_ours.clone().unwrap();

    // The live daemon for the change cases: a `change` path on the 100k tree, its peer
    // copy from the last full copy above (so its start pass only compares).
    let live_state = runs.join("state-live");
    let live = Mirror::new(
        "live",
        &format!("{}:change", tree.display()),
        &live_target,
        &live_state,
    );
    let t = Instant::now();
    assert_eq!(live.agent("start"), 0);
    live.wait_pass(0);
    notes.push(format!(
        "start on an identical 100k copy (manifest compare, nothing sent): {:.0} ms",
        ms(t.elapsed())
    ));
    let peer_tree = peer_of(&live_target, &tree);

    // 2. One change: p50 and p99 until it is on the peer.
    let mut lat = Vec::new();
    let mut rs_lat = Vec::new();
    let mut rng = Rng(7);
    for i in 0..200 {
        let rel = format!(
            "user{:04}/Maildir/cur/bench-{run}-one-{i}",
            (i * 37) % USERS
        );
        let data = rng.bytes(2048 + i % 1024);
        std::fs::write(tree.join(&rel), &data).unwrap();
        lat.push(wait_file(&tree.join(&rel), &peer_tree.join(&rel)));
        // rsync of exactly that file (the best an rsync-based tool can do after detection).
        let t = Instant::now();
        let mut c = Command::new("rsync")
            .args([
                "-a",
                "--files-from=-",
                &format!("{}/", tree.display()),
                &format!("{}/", rs_copy.display()),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        c.stdin
            .take()
            .unwrap()
            .write_all(format!("{rel}\n").as_bytes())
            .unwrap();
        assert!(c.wait().unwrap().success());
        rs_lat.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
    let (p50, p99) = (percentile(&mut lat, 0.5), percentile(&mut lat, 0.99));
    let (r50, r99) = (percentile(&mut rs_lat, 0.5), percentile(&mut rs_lat, 0.99));
    println!("== one change to the peer (n=200) ==");
    println!(
        "  A file-mirror, write..visible on peer   p50 {:>8.3} ms  p99 {:>8.3} ms",
        ms(p50),
        ms(p99)
    );
    println!(
        "  B rsync --files-from (that one file)    p50 {:>8.3} ms  p99 {:>8.3} ms",
        ms(r50),
        ms(r99)
    );
    results.push(common::AbResult {
        case: "one change to the peer, p50".into(),
        ours: "file-mirror".into(),
        reference: "rsync --files-from 1 file".into(),
        ours_median: p50,
        reference_median: r50,
    });

    // 3. Ten changes: 5 appended, 5 added.
    let k = std::cell::Cell::new(0usize);
    let ten = |rng: &mut Rng| -> Vec<String> {
        k.set(k.get() + 1);
        let k = k.get();
        let mut out = Vec::new();
        for j in 0..5 {
            let rel = format!(
                "user{:04}/Maildir/cur/bench-{run}-one-{j}",
                (j * 37) % USERS
            );
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(tree.join(&rel))
                .unwrap();
            f.write_all(&rng.bytes(100)).unwrap();
            out.push(rel.clone());
        }
        for j in 0..5 {
            let rel = format!(
                "user{:04}/Maildir/cur/bench-{run}-ten-{k}-{j}",
                (j * 91 + k) % USERS
            );
            std::fs::write(tree.join(&rel), rng.bytes(3000)).unwrap();
            out.push(rel);
        }
        out
    };
    let list = runs.join("ten.txt");
    let mut cpu_ours_ticks = 0u64;
    let mut cpu_rs = Duration::ZERO;
    let mut samples = 0u64;
    let mut rng2 = Rng(99);
    let mut rng3 = Rng(100);
    let ten_rs = ab(
        "10 changes, vs rsync -a full pass",
        10,
        Contender::new("file-mirror (change..on peer)", || {
            let pids = live.pids();
            let before: u64 = pids.iter().map(|p| cpu_ticks(*p)).sum();
            let changes = ten(&mut rng2);
            let t = Instant::now();
            for rel in &changes {
                wait_file(&tree.join(rel), &peer_tree.join(rel));
            }
            let d = t.elapsed();
            std::thread::sleep(Duration::from_millis(30));
            cpu_ours_ticks += pids.iter().map(|p| cpu_ticks(*p)).sum::<u64>() - before;
            samples += 1;
            d
        }),
        Contender::new("rsync -a src/ dst/", || {
            let changes = ten(&mut rng3);
            let names: String = changes.iter().map(|r| format!("{r}\n")).collect();
            std::fs::write(&list, names).unwrap();
            let c0 = children_cpu();
            let d = rsync(&[
                "-a",
                &format!("{}/", tree.display()),
                &format!("{}/", rs_copy.display()),
            ]);
            cpu_rs += children_cpu() - c0;
            d
        }),
    );
    let ten_ff = ab(
        "10 changes, vs rsync --files-from",
        10,
        Contender::new("file-mirror (change..on peer)", || {
            let changes = ten(&mut rng2);
            let t = Instant::now();
            for rel in &changes {
                wait_file(&tree.join(rel), &peer_tree.join(rel));
            }
            t.elapsed()
        }),
        Contender::new("rsync -a --files-from=list", || {
            let changes = ten(&mut rng3);
            let names: String = changes.iter().map(|r| format!("{r}\n")).collect();
            std::fs::write(&list, names).unwrap();
            rsync(&[
                "-a",
                &format!("--files-from={}", list.display()),
                &format!("{}/", tree.display()),
                &format!("{}/", rs_copy.display()),
            ])
        }),
    );
    let tick_ms = 1000.0 / 100.0;
    notes.push(format!(
        "10-change pass CPU: file-mirror (daemon + receiver) {:.1} ms per pass, rsync -a full pass {:.1} ms",
        cpu_ours_ticks as f64 * tick_ms / samples.max(1) as f64,
        ms(cpu_rs) / 11.0
    ));
    results.push(ten_rs);
    results.push(ten_ff);

    // 4. Idle CPU and memory of the daemon on the 100k tree.
    std::thread::sleep(Duration::from_secs(1));
    let pids = live.pids();
    let before: u64 = pids.iter().map(|p| cpu_ticks(*p)).sum();
    std::thread::sleep(Duration::from_secs(20));
    let used = pids.iter().map(|p| cpu_ticks(*p)).sum::<u64>() - before;
    let rss: Vec<String> = pids.iter().map(|p| format!("{} KiB", rss_kb(*p))).collect();
    let watches = live.status()["watches"].clone();
    notes.push(format!(
        "idle 20 s on the 100k tree: {:.0} ms CPU ({:.3} %); RSS supervisor / worker / receiver: {}; {} inotify watches",
        used as f64 * tick_ms,
        used as f64 * tick_ms / 20_000.0 * 100.0,
        rss.join(" / "),
        watches
    ));
    assert_eq!(live.agent("stop"), 0);

    // 5. 1 MiB changed inside a 1 GiB file.
    let bsrc = base.join("big");
    std::fs::create_dir_all(&bsrc).unwrap();
    let big = bsrc.join("big.img");
    if std::fs::metadata(&big).map(|m| m.len()).unwrap_or(0) != 1 << 30 {
        let mut f = std::fs::File::create(&big).unwrap();
        let mut r = Rng(1);
        for _ in 0..1024 {
            f.write_all(&r.bytes(1 << 20)).unwrap();
        }
    }
    // rsync gets its own copy of the source, so the daemon never syncs rsync's changes
    // (nor competes with rsync's run).
    let rsrc = base.join("big-rsync-src");
    let rbig = rsrc.join("big.img");
    if std::fs::metadata(&rbig).map(|m| m.len()).unwrap_or(0) != 1 << 30 {
        std::fs::create_dir_all(&rsrc).unwrap();
        std::fs::copy(&big, &rbig).unwrap();
    }
    let btarget = runs.join("big-ours");
    let brs = runs.join("big-rsync");
    let bm = Mirror::new(
        "big",
        &format!("{}:change", bsrc.display()),
        &btarget,
        &runs.join("state-big"),
    );
    assert_eq!(bm.agent("start"), 0);
    bm.wait_pass(0);
    rsync(&[
        "-a",
        &format!("{}/", rsrc.display()),
        &format!("{}/", brs.display()),
    ]);
    // Seeds differ per run: the 1 GiB files persist between runs, and rewriting a region
    // with the bytes it already holds changes nothing but the mtime.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut r = Rng(seed);
    let dd = |file: &Path, r: &mut Rng| {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
        let off = (400 + r.next() % 200) << 20;
        f.write_all_at(&r.bytes(1 << 20), off).unwrap();
    };
    let mut ours_bytes = Vec::new();
    let mut rs_bytes = Vec::new();
    let mut r2 = Rng(seed.rotate_left(17) | 1);
    let big_res = ab(
        "1 MiB changed in a 1 GiB file",
        3,
        Contender::new("file-mirror block delta", || {
            let before = bm.status()["bytes_sent"].as_u64().unwrap_or(0);
            let passes = bm.passes();
            // Timed from the write: the daemon sends as soon as the change settles.
            let t = Instant::now();
            dd(&big, &mut r);
            bm.wait_pass(passes);
            ours_bytes.push(bm.status()["bytes_sent"].as_u64().unwrap_or(0) - before);
            t.elapsed()
        }),
        Contender::new("rsync -a --no-whole-file", || {
            dd(&rbig, &mut r2);
            std::thread::sleep(Duration::from_millis(1200)); // a new mtime second for rsync
            let t = Instant::now();
            let o = Command::new("rsync")
                .args([
                    "-a",
                    "--no-whole-file",
                    "--stats",
                    &format!("{}/", rsrc.display()),
                    &format!("{}/", brs.display()),
                ])
                .output()
                .unwrap();
            let d = t.elapsed();
            let text = String::from_utf8_lossy(&o.stdout);
            if let Some(l) = text.lines().find(|l| l.starts_with("Total bytes sent:")) {
                rs_bytes.push(l.split(':').nth(1).unwrap().trim().replace(',', ""));
            }
            d
        }),
    );
    // Correctness of the last copy (cmp of both 1 GiB copies).
    let same = Command::new("cmp")
        .arg(&big)
        .arg(peer_of(&btarget, &big))
        .status()
        .unwrap()
        .success();
    notes.push(format!(
        "1 GiB file: file-mirror sent {:?} bytes per change (peer copy identical: {same}); rsync --no-whole-file sent {:?}",
        ours_bytes, rs_bytes
    ));
    results.push(big_res);
    assert_eq!(bm.agent("stop"), 0);

    clean_bench_files(&tree);
    summary(&results);
    println!("\n== notes ==");
    for n in &notes {
        println!("  {n}");
    }
    println!("  (reference numbers for this machine kind: baselines.md section 5)");
    // The copies are large; remove this run's (the generated tree and big file stay).
    let _ = std::fs::remove_dir_all(&runs);
}
