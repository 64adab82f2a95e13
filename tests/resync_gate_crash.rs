//! Crash during resync: the gate's start is killed (-9) mid-pull 20 times at random
//! points, then started again. Between kills no partial file is ever visible (every
//! file is the old version or the new one; temporary files are recognisable); at the
//! end the trees are identical and nothing is lost.

#[path = "gate_util/mod.rs"]
mod util;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use util::*;

fn write(p: &std::path::Path, data: &[u8]) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

#[test]
fn kill_9_of_the_gate_mid_pull_then_start_again() {
    let lab = Lab::new("crash");
    let (a, b) = ("alpha", "beta");
    let (ma, mb) = (lab.mail(a), lab.mail(b));
    for d in 0..40 {
        for f in 0..50 {
            let body = format!("d{d:02}/f{f:02} ").repeat(100 + (d * 50 + f) % 300);
            write(&ma.join(format!("d{d:02}/f{f:02}")), body.as_bytes());
        }
    }
    assert_eq!(code(&lab.gate(a, "start")), 0);
    let o = lab.mirror(a, "start");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mut n = 0;
    while files(&ma) != files(&mb) {
        assert!(n < 20, "the first copy did not complete");
        lab.flush(a);
        n += 1;
    }
    // alpha's last changes, never mirrored: 10 new files, 10 that beta changes too.
    for i in 0..10 {
        write(
            &ma.join(format!("late/a{i}")),
            format!("late on alpha {i}").as_bytes(),
        );
        write(
            &ma.join(format!("d00/f{i:02}")),
            format!("alpha's edit {i}").as_bytes(),
        );
    }
    std::thread::sleep(Duration::from_millis(100));
    lab.crash(a);
    assert_eq!(code(&lab.gate(b, "start")), 0);
    assert_eq!(code(&lab.mirror(b, "start")), 0);
    for i in 0..150 {
        let (d, f) = (i / 15, i % 15);
        write(
            &mb.join(format!("d{d:02}/f{f:02}")),
            format!("beta's edit {i} ").repeat(50).as_bytes(),
        );
    }
    for i in 0..100 {
        write(
            &mb.join(format!("b{}/n{i}", i % 7)),
            format!("new on beta {i}").as_bytes(),
        );
    }
    for i in 0..50 {
        std::fs::remove_file(mb.join(format!("d{:02}/f{:02}", 20 + i / 10, 40 + i % 10))).unwrap();
    }
    let big: Vec<u8> = (0..(24u32 << 20))
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    write(&mb.join("big/image"), &big);
    std::thread::sleep(Duration::from_millis(200));
    // beta stops while alpha is still down (nothing flushed to alpha), alpha returns.
    assert_eq!(code(&lab.mirror(b, "stop")), 0);
    assert_eq!(code(&lab.gate(b, "stop")), 0);
    lab.back(a);
    let before = files(&ma);
    let theirs = files(&mb);
    let t = Instant::now();
    let mut seed = ((std::process::id() as u64) << 17) | 0x9e37;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let gen_file = lab.state(a).join("generation.json");
    let mut kills = 0;
    while kills < 20 {
        // Both ways of making a small pull durable are interrupted: fsyncs file by
        // file, and syncfs (what a quiet machine uses).
        let way = if kills % 2 == 0 { "fsync" } else { "syncfs" };
        *lab.env.borrow_mut() = vec![("BULWARK_PULL_SYNC".into(), way.into())];
        let mut child = lab.gate_child(a);
        // The pull has begun once the copy is marked partial; kill at a random point
        // of the next 60 ms (an uninterrupted pull of this tree takes longer).
        let t0 = Instant::now();
        loop {
            let g: serde_json::Value = std::fs::read(&gen_file)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            if !g["receiving"].is_null() {
                break;
            }
            if let Ok(Some(st)) = child.try_wait() {
                panic!("the gate ended before its pull began: {st:?}");
            }
            assert!(t0.elapsed() < Duration::from_secs(10));
            std::thread::sleep(Duration::from_micros(200));
        }
        std::thread::sleep(Duration::from_micros(rnd() % 60_000));
        if let Ok(Some(_)) = child.try_wait() {
            panic!(
                "the pull completed before kill {}: too fast for this test",
                kills + 1
            );
        }
        // SAFETY: the gate process this test started.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let _ = child.wait();
        kills += 1;
        eprintln!("kill {kills} ({way})");
        // Every visible file is alpha's version before the pull or beta's; the copy
        // says it is partial.
        for (k, v) in files(&ma) {
            assert!(
                before.get(&k) == Some(&v) || theirs.get(&k) == Some(&v),
                "kill {kills}: {} is neither the old nor the new version",
                k.display()
            );
        }
        let g = lab.gen(a);
        assert!(
            g["consistent"] == false && !g["receiving"].is_null(),
            "kill {kills}: {g}"
        );
    }
    eprintln!("{kills} kills mid-pull in {:?}", t.elapsed());
    *lab.env.borrow_mut() = vec![("HA_debug".into(), "1".into())];
    let o = lab.gate(a, "start");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    eprintln!("{}", stderr(&o));
    // No temporary file is left; beta's changes are all here; alpha's are kept.
    let mut tmp = Vec::new();
    fn walk(p: &std::path::Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(p).unwrap().flatten() {
            if e.file_name().to_string_lossy().starts_with(".bulwark-tmp.") {
                out.push(e.path());
            } else if e.file_type().unwrap().is_dir() {
                walk(&e.path(), out);
            }
        }
    }
    walk(&ma, &mut tmp);
    assert!(tmp.is_empty(), "temporary files left: {tmp:?}");
    // The killed pulls' replaced versions, and this one's, are released.
    let phases = stderr(&o)
        .lines()
        .find(|l| l.contains("pull phases"))
        .unwrap_or_default()
        .to_string();
    assert!(
        !phases.contains(" 0 replaced versions"),
        "versions replaced in place: {phases}"
    );
    lab.assert_trash_released(a);
    let now = files(&ma);
    let mut expect: BTreeMap<PathBuf, _> = theirs.clone();
    for i in 0..10 {
        let k = PathBuf::from(format!("late/a{i}"));
        expect.insert(k.clone(), before[&k].clone());
    }
    assert_eq!(now.len(), expect.len());
    for (k, v) in &expect {
        assert_eq!(now.get(k).map(|x| &x.0), Some(&v.0), "{}", k.display());
    }
    let recs: serde_json::Value = serde_json::from_slice(
        &lab.bulwark(a, &["conflicts", "--set", "crash", "--json"])
            .stdout,
    )
    .unwrap();
    let recs = recs.as_array().unwrap();
    for i in 0..10 {
        let rel = format!("d00/f{i:02}");
        let r = recs
            .iter()
            .find(|r| r["rel"] == rel.as_str() && r["kind"] == "conflict")
            .unwrap_or_else(|| panic!("{rel}: no conflict record"));
        assert_eq!(
            std::fs::read_to_string(r["copy"].as_str().unwrap()).unwrap(),
            format!("alpha's edit {i}")
        );
    }
    assert_eq!(recs.iter().filter(|r| r["kind"] == "conflict").count(), 10);
    // The mirror starts on alpha: both trees end identical.
    let o = lab.mirror(a, "start");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mut n = 0;
    while files(&ma) != files(&mb) {
        assert!(n < 20, "alpha's pass to beta did not complete");
        lab.flush(a);
        n += 1;
    }
    assert_eq!(code(&lab.mirror(a, "stop")), 0);
}
