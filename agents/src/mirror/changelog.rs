//! The persistent change log of a writer generation (`<state_dir>/changes/<gen>.log`),
//! modelled on DRBD's dirty bitmap: every path the journal saw change while this node
//! was the writer of `<gen>`, plus marks that let the resync gate (issue 7) pull only
//! what changed (O(changes)) and tell which local changes never reached a peer.
//!
//! One text line per record, written unbuffered (a `kill -9` loses nothing):
//! - `c <root> <hex path>`: the path changed;
//! - `s <root> <epoch ms>`: every change of that root logged before this line is on
//!   every peer (written after a clean flush or complete pass);
//! - `g <root|*>`: changes may be missing (queue overflow, worker restart);
//! - `e`: the writer stopped cleanly; nothing after its last `c` line went unlogged.
//!
//! Bounded: a log stops at `MAX_LOG_BYTES` with a final `g *` (a pull of that
//! generation then compares manifests), and a writer's start removes the logs of
//! generations that are no longer in its generation's history (no pull can ask for
//! them: a common generation is always in both histories).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A log stops growing here (about half a million changes).
pub const MAX_LOG_BYTES: u64 = 64 << 20;

pub fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("changes")
}

pub fn path(state_dir: &Path, gen: &str) -> PathBuf {
    dir(state_dir).join(format!("{gen}.log"))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The writer's side: appends records; a failed write makes the log incomplete (no
/// `e` line is written then), never silently short.
pub struct ChangeLog {
    f: Option<File>,
    broken: bool,
    /// Bytes in the file.
    len: u64,
    max: u64,
}

impl ChangeLog {
    /// Opens the log of generation `gen`. An existing log means a previous worker of
    /// the same generation ended (crash or restart): changes in between may be missing.
    pub fn open(state_dir: &Path, gen: &str) -> ChangeLog {
        Self::open_with_limit(state_dir, gen, MAX_LOG_BYTES)
    }

    /// `open` with another size limit (tests).
    pub fn open_with_limit(state_dir: &Path, gen: &str, max: u64) -> ChangeLog {
        let p = path(state_dir, gen);
        let existed = p.exists();
        let f = std::fs::create_dir_all(dir(state_dir)).and_then(|_| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
        });
        let mut log = match f {
            Ok(f) => ChangeLog {
                len: f.metadata().map(|m| m.len()).unwrap_or(0),
                f: Some(f),
                broken: false,
                max,
            },
            Err(e) => {
                ocf_metadata::log::warn(&format!(
                    "change log {}: {e}; the resync gate will compare manifests instead",
                    p.display()
                ));
                ChangeLog {
                    f: None,
                    broken: true,
                    len: 0,
                    max,
                }
            }
        };
        if existed {
            log.put(b"g *\n");
        }
        log
    }

    fn put(&mut self, line: &[u8]) {
        let Some(f) = &mut self.f else { return };
        if self.len + line.len() as u64 > self.max {
            // Full: a last gap mark, then nothing (no later `s` or `e` may claim that
            // the unlogged changes are known).
            let _ = f.write_all(b"g *\n");
            self.f = None;
            self.broken = true;
            ocf_metadata::log::warn(&format!(
                "a change log reached {} bytes: it stops here; a pull of this generation compares manifests",
                self.max
            ));
            return;
        }
        if f.write_all(line).is_err() {
            self.f = None;
            self.broken = true;
        } else {
            self.len += line.len() as u64;
        }
    }

    pub fn changed(&mut self, root: u32, rel: &[u8]) {
        let line = format!("c {root} {}\n", hex(rel));
        self.put(line.as_bytes());
    }

    /// `since_ms`: when the flush or pass that sent everything logged so far began
    /// (a file whose ctime is later may have missed it).
    pub fn synced(&mut self, root: u32, since_ms: u64) {
        let line = format!("s {root} {since_ms}\n");
        self.put(line.as_bytes());
    }

    pub fn gap(&mut self, root: Option<u32>) {
        let line = match root {
            Some(r) => format!("g {r}\n"),
            None => "g *\n".to_string(),
        };
        self.put(line.as_bytes());
    }

    /// A clean stop: the log is complete.
    pub fn end(&mut self) {
        if self.broken {
            return;
        }
        self.put(b"e\n");
        if let Some(f) = &self.f {
            let _ = f.sync_all();
        }
    }
}

/// Removes the logs of generations that are not `keep` nor in its history (at a
/// writer's start). Returns how many went.
pub fn prune(state_dir: &Path, keep: &super::gen::Generation) -> usize {
    let Ok(rd) = std::fs::read_dir(dir(state_dir)) else {
        return 0;
    };
    let mut n = 0;
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(id) = name.to_str().and_then(|s| s.strip_suffix(".log")) else {
            continue;
        };
        if id == keep.id || keep.history.iter().any(|h| h == id) {
            continue;
        }
        if e.file_type().is_ok_and(|t| t.is_file()) && std::fs::remove_file(e.path()).is_ok() {
            n += 1;
        }
    }
    n
}

/// A parsed log.
#[derive(Debug, Default, Clone)]
pub struct LogView {
    /// Every changed path.
    pub changed: BTreeSet<(u32, Vec<u8>)>,
    /// Paths changed after their root's last `s` mark (not known to be on any peer).
    pub unsynced: BTreeSet<(u32, Vec<u8>)>,
    /// The last `s` mark of each root (epoch ms).
    pub last_sync_ms: HashMap<u32, u64>,
    /// A gap anywhere.
    pub gap: bool,
    /// Roots with a gap after their last `s` mark (`u32::MAX`: all roots).
    pub gap_unsynced: HashSet<u32>,
    /// Ends with a clean stop.
    pub ended: bool,
}

impl LogView {
    /// Complete: every change of the generation is listed.
    pub fn complete(&self) -> bool {
        self.ended && !self.gap
    }

    /// Whether the unsynced list of `root` is trustworthy.
    pub fn unsynced_known(&self, root: u32) -> bool {
        !self.gap_unsynced.contains(&root) && !self.gap_unsynced.contains(&u32::MAX)
    }
}

pub fn parse(data: &[u8]) -> LogView {
    let mut v = LogView::default();
    let mut per_root: HashMap<u32, BTreeSet<Vec<u8>>> = HashMap::new();
    for line in data.split(|b| *b == b'\n') {
        let Ok(line) = std::str::from_utf8(line) else {
            v.gap = true;
            continue;
        };
        let mut w = line.split(' ');
        match (w.next(), w.next(), w.next()) {
            (Some(""), None, None) => {}
            (Some("c"), Some(r), Some(h)) => match (r.parse::<u32>(), unhex(h)) {
                (Ok(r), Some(p)) => {
                    v.ended = false;
                    per_root.entry(r).or_default().insert(p.clone());
                    v.changed.insert((r, p));
                }
                _ => v.gap = true,
            },
            (Some("s"), Some(r), Some(ms)) => match (r.parse::<u32>(), ms.parse::<u64>()) {
                (Ok(r), Ok(ms)) => {
                    per_root.remove(&r);
                    v.last_sync_ms.insert(r, ms);
                    v.gap_unsynced.remove(&r);
                }
                _ => v.gap = true,
            },
            (Some("g"), Some(r), None) => {
                v.gap = true;
                v.ended = false;
                match r.parse::<u32>() {
                    Ok(r) => {
                        v.gap_unsynced.insert(r);
                    }
                    Err(_) => {
                        v.gap_unsynced.insert(u32::MAX);
                    }
                }
            }
            (Some("e"), None, None) => v.ended = true,
            // A torn last line (crash mid-write) or garbage: not trustworthy.
            _ => v.gap = true,
        }
    }
    for (r, paths) in per_root {
        for p in paths {
            v.unsynced.insert((r, p));
        }
    }
    v
}

/// Reads the log of `gen`, if this node wrote that generation.
pub fn read(state_dir: &Path, gen: &str) -> io::Result<Option<Vec<u8>>> {
    match std::fs::read(path(state_dir, gen)) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Appends a synced mark for roots `0..roots` to the log of `gen` (after this node's
/// unmirrored changes were kept elsewhere).
pub fn mark_synced(state_dir: &Path, gen: &str, roots: u32) -> io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path(state_dir, gen))?;
    let now = super::fsops::now_ms();
    let mut s = String::new();
    for r in 0..roots {
        s.push_str(&format!("s {r} {now}\n"));
    }
    f.write_all(s.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_marks_gaps_and_a_clean_end() {
        let t = tempfile::tempdir().unwrap();
        let mut l = ChangeLog::open(t.path(), "g1");
        l.changed(0, b"a");
        l.changed(1, b"x/y");
        l.synced(0, 1);
        l.changed(0, b"b\nc");
        let v = parse(&read(t.path(), "g1").unwrap().unwrap());
        assert!(!v.complete());
        assert_eq!(v.changed.len(), 3);
        assert_eq!(
            v.unsynced,
            [(0, b"b\nc".to_vec()), (1, b"x/y".to_vec())]
                .into_iter()
                .collect()
        );
        l.end();
        assert!(parse(&read(t.path(), "g1").unwrap().unwrap()).complete());
        // A second worker of the same generation: a gap.
        let mut l = ChangeLog::open(t.path(), "g1");
        l.end();
        let v = parse(&read(t.path(), "g1").unwrap().unwrap());
        assert!(!v.complete() && !v.unsynced_known(0));
        assert!(read(t.path(), "nope").unwrap().is_none());
    }

    #[test]
    fn a_full_log_ends_with_a_gap_and_says_nothing_more() {
        let t = tempfile::tempdir().unwrap();
        let mut l = ChangeLog::open_with_limit(t.path(), "g1", 64);
        l.changed(0, b"a");
        l.synced(0, 1);
        for i in 0..10 {
            l.changed(0, format!("file{i}").as_bytes());
        }
        // After the limit: neither a synced mark nor a clean end.
        l.synced(0, 2);
        l.end();
        let data = read(t.path(), "g1").unwrap().unwrap();
        assert!(data.len() <= 64 + 4, "{}", data.len());
        assert!(
            data.ends_with(b"g *\n"),
            "{}",
            String::from_utf8_lossy(&data)
        );
        let v = parse(&data);
        assert!(!v.complete() && v.gap && !v.unsynced_known(0));
        assert!(v.changed.contains(&(0, b"a".to_vec())));
    }

    #[test]
    fn prune_keeps_the_generation_and_its_history() {
        let t = tempfile::tempdir().unwrap();
        for g in ["old", "g1", "g2", "g3"] {
            ChangeLog::open(t.path(), g).end();
        }
        std::fs::write(dir(t.path()).join("notes.txt"), b"x").unwrap();
        let keep = super::super::gen::Generation {
            id: "g3".into(),
            history: vec!["g2".into(), "g1".into()],
        };
        assert_eq!(prune(t.path(), &keep), 1);
        for g in ["g1", "g2", "g3"] {
            assert!(read(t.path(), g).unwrap().is_some(), "{g}");
        }
        assert!(read(t.path(), "old").unwrap().is_none());
        assert!(dir(t.path()).join("notes.txt").exists());
    }
}
