//! The copy-back: pulls from a peer every difference since the common generation and
//! applies it here atomically (guarantees 2, 4, 5).
//!
//! - **What to pull.** The peer's change logs for every generation it wrote since the
//!   common one list the paths it changed: the pull costs O(changes). When a log is
//!   missing or incomplete (a restart, an overflow, an unclean stop), the peer's
//!   manifest is compared with this tree instead (metadata only; content moves only
//!   for entries that differ). Never a blind copy.
//! - **What changed here.** This node's own log of the common generation lists what it
//!   changed after its last complete mirror pass (`s` marks); a file whose ctime is after
//!   that mark counts as changed too (a log tail lost in a crash).
//! - **Conflicts.** Changed on both sides: the peer's version is installed, this node's
//!   is kept under `conflicts/` with a record. Deleted on one side and changed on the
//!   other: the changed version wins. Nothing is removed that was not removed on the peer.
//! - **Atomic and resumable.** Files are written to temporary names in their directory,
//!   synced, then renamed; conflict copies are hard links (or synced copies) made before
//!   the rename. This node's state says "partial" until the end, so a `kill -9` at any
//!   point leaves old or new files only, and the next start completes the work.
//! - **Durable, cheaply.** A pull of a few logged changes is made durable by one `syncfs`
//!   before the renames and one after when the machine has little dirty data, else by
//!   an fsync per file and per touched directory; larger pulls by `syncfs`. The
//!   versions it replaces or deletes keep a name in `<state_dir>/trash/` and are freed
//!   by a detached `bulwark-mirror release` once the start has returned.

use super::client::{Got, PullSession};
use super::records::{self, Record};
use crate::mirror::changelog;
use crate::mirror::config::{self, Config};
use crate::mirror::fsops::{self, PathError};
use crate::mirror::gen::{GenState, Generation};
use crate::mirror::wire::{Kind, Meta};
use ocf_metadata::log;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::{CStr, CString};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

pub type Key = (u32, Vec<u8>);
pub type RemoteMap = BTreeMap<Key, (Meta, Vec<u8>)>;

const BATCH: usize = 256;
/// In a pull that may sync file by file: above this many files in one batch, one
/// `syncfs` replaces the fsyncs (as in the mirror's receiver).
const SYNCFS_THRESHOLD: usize = 16;
/// A pull from a complete change log listing at most this many entries is made durable
/// file by file: an fsync per file before its rename, one per touched directory before
/// the generation is adopted. `syncfs` also flushes every other writer's dirty data on
/// the file system (a shared disk), so a pull of O(changes) must not pay for it; above
/// this size (or from a manifest) one `syncfs` per batch is cheaper than the fsyncs.
const FSYNC_PULL_MAX: usize = 1024;
/// At most this many directories are kept open to be fsynced at the end of a small
/// pull; beyond it one `syncfs` of the roots' file systems is used instead.
const FSYNC_DIRS_MAX: usize = 2048;
/// A small pull uses `syncfs` instead of per-file and per-directory fsyncs while the
/// machine has at most this much dirty data (KiB, /proc/meminfo): then one `syncfs`
/// writes little besides the pull's own files and costs two journal commits, where the
/// fsyncs cost one device flush each. `BULWARK_PULL_SYNC=fsync|syncfs` forces a way.
const QUIET_DIRTY_KIB: u64 = 2048;
use super::protect::CTIME_SLACK_MS;
/// At most this many open directories are kept for path lookups.
const DIR_CACHE_MAX: usize = 256;

/// What this node changed since the common generation.
#[derive(Debug, Clone)]
pub enum Dirty {
    /// No trustworthy record: every difference counts as a local change.
    Unknown,
    Known {
        paths: BTreeSet<Key>,
        /// Per root, the last mark after which changes were not mirrored (ctime check).
        since_ms: HashMap<u32, u64>,
        /// Whether this node wrote the common generation (the ctime check applies).
        wrote: bool,
    },
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Report {
    pub mode: String,
    pub examined: usize,
    pub installed: usize,
    pub deleted: usize,
    pub conflicts: usize,
    pub kept_in_place: usize,
    pub unmirrored: usize,
}

/// How the pull ends: adopt the peer's generation, or (keep-both) a merged one.
pub enum Target {
    Adopt(Generation),
    Merge(Generation),
}

pub struct PullSpec<'a> {
    pub cfg: &'a Config,
    pub me: &'a str,
    pub peer: &'a str,
    pub peer_gen: &'a Generation,
    /// The newest generation both sides descend from (None: unrelated).
    pub base: Option<String>,
    pub target: Target,
    pub deadline: Instant,
}

/// fsyncs every fd, several at once: the file system's journal commits the concurrent
/// requests together (one commit and one cache flush for many, where one by one each
/// fsync pays its own). The first error is returned after all have been tried.
fn fsync_many(fds: &[std::os::fd::RawFd]) -> std::io::Result<()> {
    const WORKERS: usize = 8;
    if fds.len() <= 2 {
        return fds.iter().try_for_each(|fd| fsops::fsync(*fd));
    }
    let chunk = fds.len().div_ceil(WORKERS);
    std::thread::scope(|sc| {
        let hs: Vec<_> = fds
            .chunks(chunk)
            .map(|c| sc.spawn(move || c.iter().map(|fd| fsops::fsync(*fd)).find(|r| r.is_err())))
            .collect();
        let mut first = Ok(());
        for h in hs {
            if let Ok(Some(Err(e))) = h.join() {
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    })
}

/// Whether a small pull is made durable by `syncfs` (see QUIET_DIRTY_KIB).
fn prefer_syncfs() -> bool {
    match std::env::var("BULWARK_PULL_SYNC").as_deref() {
        Ok("fsync") => false,
        Ok("syncfs") => true,
        _ => fsops::dirty_kib().is_some_and(|k| k <= QUIET_DIRTY_KIB),
    }
}

/// Where the versions a pull replaces or deletes go until they are released:
/// `<state_dir>/trash/`. Releasing a file's last name frees its inode and blocks
/// (about 0.1 ms each on ext4); a pull gives the replaced version a second name here
/// (a hard link) before the rename, so the rename frees nothing, and a detached
/// `bulwark-mirror release` frees them after the gate's start has returned. Only
/// entries on the state dir's file system go here; others are freed in place.
pub fn trash_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("trash")
}

/// Frees everything in the trash (`bulwark-mirror release`): names only, never
/// following a symlink; a directory found there is left alone.
pub fn release_trash(state_dir: &Path) -> std::io::Result<usize> {
    let d = match fsops::open_dir_path(&trash_dir(state_dir)) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut n = 0;
    for name in fsops::list_dir(d.as_raw_fd())? {
        if fsops::unlinkat(d.as_raw_fd(), &name, 0).is_ok() {
            n += 1;
        }
    }
    Ok(n)
}

/// Starts `bulwark-mirror release` detached (own process group, no stdio), so the
/// replaced versions are freed without delaying the action that made them.
fn spawn_release(mirror_bin: &Path, state_dir: &Path) {
    use std::os::unix::process::CommandExt;
    let r = std::process::Command::new(mirror_bin)
        .arg("release")
        .arg("--state-dir")
        .arg(state_dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn();
    if let Err(e) = r {
        // The next pull's release frees them.
        log::warn(&format!("starting {} release: {e}", mirror_bin.display()));
    }
}

/// Replaces `path` atomically (temporary file and rename) without syncing: for hints
/// and for writes a later sync covers.
pub fn write_replace(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_file_name(format!(
        "{}{}.{}",
        fsops::TMP_PREFIX,
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}

/// Names the last generation this node pulled whole (from complete change logs).
pub fn pulled_path(state_dir: &Path) -> PathBuf {
    state_dir.join("gate-pulled")
}

/// The generations from `g` back to `base` (exclusive), or None when `base` is not an
/// ancestor of `g`.
pub fn chain_to(g: &Generation, base: &str) -> Option<Vec<String>> {
    let mut out = vec![g.id.clone()];
    if g.id == base {
        return Some(Vec::new());
    }
    for h in &g.history {
        if h == base {
            return Some(out);
        }
        out.push(h.clone());
    }
    None
}

/// The newest common ancestor of two generations.
pub fn common_base(a: &Generation, b: &Generation) -> Option<String> {
    let bs: BTreeSet<&String> = std::iter::once(&b.id).chain(b.history.iter()).collect();
    std::iter::once(&a.id)
        .chain(a.history.iter())
        .find(|x| bs.contains(x))
        .cloned()
}

/// The peer's changes since `base` from its logs, or None (use the manifest).
fn peer_changes(
    sess: &mut PullSession,
    peer_gen: &Generation,
    base: Option<&str>,
    have_all_of_base: bool,
) -> Result<Option<BTreeSet<Key>>, String> {
    let Some(base) = base else { return Ok(None) };
    let Some(chain) = chain_to(peer_gen, base) else {
        return Ok(None);
    };
    let mut out = BTreeSet::new();
    for g in &chain {
        let Some(data) = sess.log(g)? else {
            log::info(&format!(
                "no change log of generation {g} on {}: comparing manifests",
                sess.name
            ));
            return Ok(None);
        };
        let v = changelog::parse(&data);
        if !v.complete() {
            log::info(&format!(
                "the change log of generation {g} on {} is incomplete (restart, overflow or unclean stop): comparing manifests",
                sess.name
            ));
            return Ok(None);
        }
        out.extend(v.changed);
    }
    // What the peer wrote in the common generation and never mirrored (when it wrote
    // it), unless this node pulled that whole generation from a complete log already.
    if have_all_of_base {
        return Ok(Some(out));
    }
    if let Some(data) = sess.log(base)? {
        let v = changelog::parse(&data);
        if v.gap_unsynced.is_empty() {
            out.extend(v.unsynced);
        } else {
            return Ok(None);
        }
    }
    Ok(Some(out))
}

/// This node's changes since `base`.
pub fn local_dirty(state_dir: &Path, mine: &GenState, base: Option<&str>) -> Dirty {
    let (Some(cur), Some(base)) = (&mine.current, base) else {
        return Dirty::Unknown;
    };
    let Some(chain) = chain_to(cur, base) else {
        return Dirty::Unknown;
    };
    let mut paths = BTreeSet::new();
    for g in &chain {
        match changelog::read(state_dir, g) {
            Ok(Some(d)) => {
                let v = changelog::parse(&d);
                if !v.complete() {
                    return Dirty::Unknown;
                }
                paths.extend(v.changed);
            }
            _ => return Dirty::Unknown,
        }
    }
    let mut since_ms = HashMap::new();
    let mut wrote = false;
    if let Ok(Some(d)) = changelog::read(state_dir, base) {
        let v = changelog::parse(&d);
        wrote = true;
        if !v.gap_unsynced.is_empty() {
            return Dirty::Unknown;
        }
        paths.extend(v.unsynced);
        since_ms = v.last_sync_ms;
    }
    Dirty::Known {
        paths,
        since_ms,
        wrote,
    }
}

struct Staged {
    parent: Rc<OwnedFd>,
    tmp: CString,
    name: CString,
    file: Option<File>,
    meta: Meta,
    written: u64,
    key: Key,
}

/// Where a pull's time went, for the log line (milliseconds).
#[derive(Debug, Default, Clone, Copy)]
struct Phases {
    log: f64,
    mark: f64,
    fetch: f64,
    data_sync: f64,
    install: f64,
    dir_sync: f64,
    adopt: f64,
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

struct Applier<'a> {
    phases: Phases,
    spec: &'a PullSpec<'a>,
    my_gen: String,
    roots: Vec<OwnedFd>,
    root_paths: Vec<PathBuf>,
    conflicts_dir: PathBuf,
    dirty: Dirty,
    excludes: Vec<CString>,
    chown: bool,
    counter: u64,
    report: Report,
    records: Vec<Record>,
    staged: Vec<Staged>,
    deletes: Vec<Key>,
    dir_metas: BTreeMap<Key, Meta>,
    touched_dirs: usize,
    /// The partial mark is written but not yet synced (see `pull`).
    state_unsynced: bool,
    /// A small pull: every file is fsynced before its rename, and every touched
    /// directory (`sync_dirs`) at the end; no `syncfs` unless a limit is passed.
    fsync_each: bool,
    /// The directories whose entries or metadata this pull changed, by (dev, ino).
    sync_dirs: BTreeMap<(u64, u64), Rc<OwnedFd>>,
    /// Open parent directories by (root, relative path), so that a path's directories
    /// are walked once per pull, not once per look (cleared when a directory goes).
    dir_cache: RefCell<HashMap<Key, Rc<OwnedFd>>>,
    /// Too many directories to fsync one by one: the end of the pull uses `syncfs`.
    dirs_overflow: bool,
    /// The trash directory (see `trash_dir`).
    trash: Option<OwnedFd>,
    /// How many replaced or deleted versions went to the trash.
    trashed: usize,
}

fn io_err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn rel_str(rel: &[u8]) -> String {
    String::from_utf8_lossy(rel).into_owned()
}

impl Applier<'_> {
    /// Remembers a directory to fsync before the generation is adopted (small pulls).
    fn touch_dir(&mut self, fd: Rc<OwnedFd>) {
        self.touched_dirs += 1;
        if !self.fsync_each || self.dirs_overflow {
            return;
        }
        let Ok(st) = fsops::fstat(fd.as_raw_fd()) else {
            // Unknown: fall back to syncing the whole file system.
            self.dirs_overflow = true;
            return;
        };
        self.sync_dirs.entry((st.st_dev, st.st_ino)).or_insert(fd);
        if self.sync_dirs.len() > FSYNC_DIRS_MAX {
            self.sync_dirs.clear();
            self.dirs_overflow = true;
        }
    }

    /// Every directory on the way to `key` (the root included) gets an fsync: used when
    /// the way was (possibly) created by this pull, so the new directories' entries
    /// are durable too.
    fn touch_ancestors(&mut self, key: &Key) {
        if !self.fsync_each || self.dirs_overflow {
            return;
        }
        let comps: Vec<&[u8]> = key.1.split(|&c| c == b'/').collect();
        for i in 1..comps.len() {
            let pk: Key = (key.0, comps[..i].join(&b'/'));
            // The parent of each directory on the way, and the directory itself.
            if let Ok((p, Some(n))) = self.parent(&pk, false) {
                if let Ok(d) = fsops::open_subdir(p.as_raw_fd(), &n) {
                    self.touch_dir(Rc::new(d));
                }
                self.touch_dir(p);
            }
        }
    }

    /// `parent(key, true)`, noting the directories it may have created.
    fn parent_creating(&mut self, key: &Key) -> Result<(Rc<OwnedFd>, Option<CString>), String> {
        if let Ok(r) = self.parent(key, false) {
            return Ok(r);
        }
        let r = self.parent(key, true)?;
        self.touch_ancestors(key);
        Ok(r)
    }

    fn abs(&self, key: &Key) -> PathBuf {
        let r = &self.root_paths[key.0 as usize];
        if key.1.is_empty() {
            r.clone()
        } else {
            r.join(std::ffi::OsStr::from_bytes(&key.1))
        }
    }

    /// Forgets the open directories (a directory was removed or replaced).
    fn forget_dirs(&self) {
        self.dir_cache.borrow_mut().clear();
    }

    fn parent(&self, key: &Key, create: bool) -> Result<(Rc<OwnedFd>, Option<CString>), String> {
        let rfd = self
            .roots
            .get(key.0 as usize)
            .ok_or("unknown root")?
            .as_raw_fd();
        let comps = fsops::check_rel(&key.1).map_err(io_err)?;
        let name = comps
            .last()
            .map(|n| fsops::cstr(n))
            .transpose()
            .map_err(io_err)?;
        let dir_key: Key = (key.0, comps[..comps.len().saturating_sub(1)].join(&b'/'));
        if let Some(fd) = self.dir_cache.borrow().get(&dir_key) {
            return Ok((fd.clone(), name));
        }
        let parent = fsops::open_parent(rfd, &comps, create).map_err(|e| match e {
            PathError::ThroughSymlink(c) => {
                format!(
                    "{}: passes through a symlink at {c}: refused",
                    rel_str(&key.1)
                )
            }
            other => other.to_string(),
        })?;
        let parent = Rc::new(parent);
        let mut cache = self.dir_cache.borrow_mut();
        if cache.len() >= DIR_CACHE_MAX {
            cache.clear();
        }
        cache.insert(dir_key, parent.clone());
        Ok((parent, name))
    }

    /// This node's entry at `key` (None: absent, or below a missing directory).
    fn local(&self, key: &Key) -> Option<Meta> {
        if key.1.is_empty() {
            let st = fsops::fstat(self.roots.get(key.0 as usize)?.as_raw_fd()).ok()?;
            return fsops::meta_of_stat(&st);
        }
        let (p, name) = self.parent(key, false).ok()?;
        let st = fsops::lstat_at(p.as_raw_fd(), name.as_ref()?).ok()?;
        fsops::meta_of_stat(&st)
    }

    fn local_target(&self, key: &Key) -> Vec<u8> {
        self.parent(key, false)
            .ok()
            .and_then(|(p, n)| fsops::readlink_at(p.as_raw_fd(), n.as_ref()?).ok())
            .unwrap_or_default()
    }

    fn changed_here(&self, key: &Key, m: &Meta) -> bool {
        match &self.dirty {
            Dirty::Unknown => true,
            Dirty::Known {
                paths,
                since_ms,
                wrote,
            } => {
                if paths.contains(key) {
                    return true;
                }
                if !*wrote {
                    return false;
                }
                let since = since_ms.get(&key.0).copied().unwrap_or(0);
                super::protect::ctime_ms(m) + CTIME_SLACK_MS >= since
            }
        }
    }

    fn record(&mut self, kind: &str, key: &Key, copy: Option<PathBuf>) {
        match kind {
            "conflict" => self.report.conflicts += 1,
            "kept-in-place" => self.report.kept_in_place += 1,
            "unmirrored" => self.report.unmirrored += 1,
            _ => {}
        }
        let peer_gen = match &self.spec.target {
            Target::Adopt(g) | Target::Merge(g) => g.id.clone(),
        };
        self.records.push(Record {
            kind: kind.into(),
            path: self.abs(key).display().to_string(),
            root: key.0,
            rel: rel_str(&key.1),
            copy: copy.map(|p| p.display().to_string()),
            generation: self.my_gen.clone(),
            counterpart_node: self.spec.peer.to_string(),
            counterpart_generation: if matches!(self.spec.target, Target::Merge(_)) {
                self.spec.peer_gen.id.clone()
            } else {
                peer_gen
            },
            at_ms: fsops::now_ms(),
        });
    }

    /// Keeps this node's version of `key` under conflicts/ (a hard link, else a copy).
    fn preserve(&mut self, key: &Key, m: &Meta) -> Result<PathBuf, String> {
        let base = self
            .conflicts_dir
            .join(&self.my_gen)
            .join(key.0.to_string())
            .join(std::ffi::OsStr::from_bytes(&key.1));
        let (p, name) = self.parent(key, false)?;
        let name = name.ok_or("a root cannot conflict")?;
        if m.kind == Kind::Dir {
            // A whole directory: keep every entry below it.
            let sub = fsops::open_subdir(p.as_raw_fd(), &name).map_err(io_err)?;
            let mut items = Vec::new();
            fsops::walk_beneath(sub.as_raw_fd(), b"", &|_| false, &mut |r, mm| {
                if let Some(mm) = mm {
                    if mm.kind != Kind::Dir {
                        items.push((r.to_vec(), mm));
                    }
                }
            });
            for (r, mm) in items {
                let mut k = key.clone();
                k.1.push(b'/');
                k.1.extend_from_slice(&r);
                self.preserve(&k, &mm)?;
            }
            return Ok(base);
        }
        super::protect::keep_copy(
            &self.conflicts_dir,
            &self.my_gen,
            key.0,
            &key.1,
            p.as_raw_fd(),
            &name,
            m,
        )
    }

    /// Gives the entry `name` in `dir` a name in the trash (a hard link, or with
    /// `rename` the entry moves there); false when it cannot (another file system, a
    /// directory, absent), and the caller frees it in place.
    fn trash_entry(&mut self, dir: std::os::fd::RawFd, name: &CStr, rename: bool) -> bool {
        let Some(t) = &self.trash else {
            return false;
        };
        let tname =
            CString::new(format!("{}.{}", std::process::id(), self.counter + 1)).expect("no NUL");
        let r = if rename {
            fsops::rename_between(dir, name, t.as_raw_fd(), &tname)
        } else {
            fsops::link_between(dir, name, t.as_raw_fd(), &tname)
        };
        if r.is_ok() {
            self.counter += 1;
            self.trashed += 1;
        }
        r.is_ok()
    }

    fn new_tmp(&mut self, name: &CString) -> CString {
        self.counter += 1;
        CString::new(fsops::tmp_name(name.as_bytes(), self.counter)).expect("no NUL")
    }

    /// Makes `key` absent here, keeping what changed here (guarantee 4).
    fn remove(&mut self, key: &Key, m: &Meta) -> Result<(), String> {
        if m.kind == Kind::Dir {
            // Entries below, deepest first; a directory goes only when empty.
            let (p, name) = self.parent(key, false)?;
            let name = name.ok_or("the root itself is never removed")?;
            let sub = fsops::open_subdir(p.as_raw_fd(), &name).map_err(io_err)?;
            let mut items = Vec::new();
            fsops::walk_beneath(sub.as_raw_fd(), b"", &|_| false, &mut |r, mm| {
                if !r.is_empty() {
                    if let Some(mm) = mm {
                        items.push((r.to_vec(), mm));
                    }
                }
            });
            drop(sub);
            items.reverse();
            for (r, mm) in items {
                let mut k = key.clone();
                k.1.push(b'/');
                k.1.extend_from_slice(&r);
                self.remove(&k, &mm)?;
            }
            self.deletes.push(key.clone());
            return Ok(());
        }
        if self.changed_here(key, m) {
            if matches!(self.dirty, Dirty::Unknown) {
                let c = self.preserve(key, m)?;
                self.record("conflict", key, Some(c));
                self.deletes.push(key.clone());
            } else {
                self.record("kept-in-place", key, None);
            }
            return Ok(());
        }
        self.deletes.push(key.clone());
        Ok(())
    }

    /// Decides what to do with the peer's entry; returns the staged index for file data.
    fn take(&mut self, key: &Key, theirs: Option<(&Meta, &[u8])>) -> Result<Option<usize>, String> {
        self.report.examined += 1;
        let mine = self.local(key);
        let Some((tm, target)) = theirs else {
            if let Some(m) = mine {
                if key.1.is_empty() {
                    return Ok(None);
                }
                self.remove(key, &m)?;
            }
            return Ok(None);
        };
        if let Some(m) = &mine {
            let same = m.same_on_peer(tm)
                && (tm.kind != Kind::Symlink || self.local_target(key) == target);
            if same || (m.kind == Kind::Dir && tm.kind == Kind::Dir) {
                if tm.kind == Kind::Dir && !m.same_on_peer(tm) {
                    self.dir_metas.insert(key.clone(), tm.clone());
                }
                return Ok(None);
            }
            // Different here: keep ours if it changed since the common generation.
            if self.changed_here(key, m) {
                let c = self.preserve(key, m)?;
                self.record("conflict", key, Some(c));
            }
            if m.kind == Kind::Dir {
                // Peer has a file or link where we have a directory.
                self.remove(key, m)?;
            }
        } else if let Dirty::Known { paths, .. } = &self.dirty {
            if paths.contains(key) && tm.kind != Kind::Dir {
                // Deleted here, changed there: the changed version wins.
                self.record("deleted-here", key, None);
            }
        }
        if key.1.is_empty() {
            self.dir_metas.insert(key.clone(), tm.clone());
            return Ok(None);
        }
        let (parent, name) = self.parent_creating(key)?;
        let name = name.expect("non-root");
        match tm.kind {
            Kind::Dir => {
                if mine.as_ref().is_none_or(|m| m.kind != Kind::Dir) {
                    // The new (or replaced) directory's entry lives in its parent.
                    self.touch_dir(parent.clone());
                    if mine.is_some() {
                        fsops::remove_at(parent.as_raw_fd(), &name).map_err(io_err)?;
                    }
                    // SAFETY: valid fd and C string.
                    if unsafe { libc::mkdirat(parent.as_raw_fd(), name.as_ptr(), 0o700) } < 0 {
                        let e = std::io::Error::last_os_error();
                        if e.raw_os_error() != Some(libc::EEXIST) {
                            return Err(format!("mkdir {}: {e}", rel_str(&key.1)));
                        }
                    }
                }
                self.dir_metas.insert(key.clone(), tm.clone());
                self.report.installed += 1;
                Ok(None)
            }
            Kind::Symlink => {
                let tmp = self.new_tmp(&name);
                let t = fsops::cstr(target).map_err(io_err)?;
                // SAFETY: valid fd and C strings.
                if unsafe { libc::symlinkat(t.as_ptr(), parent.as_raw_fd(), tmp.as_ptr()) } < 0 {
                    return Err(std::io::Error::last_os_error().to_string());
                }
                let _ = fsops::set_meta_at(parent.as_raw_fd(), &tmp, tm, self.chown);
                self.staged.push(Staged {
                    parent,
                    tmp,
                    name,
                    file: None,
                    meta: tm.clone(),
                    written: 0,
                    key: key.clone(),
                });
                Ok(None)
            }
            Kind::File => {
                let tmp = self.new_tmp(&name);
                // SAFETY: valid fd and C string; owned by the File.
                let fd = unsafe {
                    libc::openat(
                        parent.as_raw_fd(),
                        tmp.as_ptr(),
                        libc::O_WRONLY
                            | libc::O_CREAT
                            | libc::O_EXCL
                            | libc::O_NOFOLLOW
                            | libc::O_CLOEXEC,
                        0o600,
                    )
                };
                if fd < 0 {
                    return Err(format!(
                        "{}: {}",
                        rel_str(&key.1),
                        std::io::Error::last_os_error()
                    ));
                }
                self.staged.push(Staged {
                    parent,
                    tmp,
                    name,
                    file: Some(unsafe { File::from_raw_fd(fd) }),
                    meta: tm.clone(),
                    written: 0,
                    key: key.clone(),
                });
                Ok(Some(self.staged.len() - 1))
            }
        }
    }

    fn abort(&mut self) {
        for s in self.staged.drain(..) {
            let _ = fsops::unlinkat(s.parent.as_raw_fd(), &s.tmp, 0);
        }
        self.deletes.clear();
    }

    /// Conflict records, data sync, renames and deletions, directory syncs.
    fn commit(&mut self, state_dir: &Path) -> Result<(), String> {
        records::append(state_dir, &self.records).map_err(|e| format!("conflict records: {e}"))?;
        let staged = std::mem::take(&mut self.staged);
        for s in &staged {
            if let Some(f) = &s.file {
                if s.written != s.meta.size {
                    for s in &staged {
                        let _ = fsops::unlinkat(s.parent.as_raw_fd(), &s.tmp, 0);
                    }
                    return Err(format!(
                        "{}: got {} of {} bytes (changing on the peer?)",
                        rel_str(&s.key.1),
                        s.written,
                        s.meta.size
                    ));
                }
                fsops::set_meta_fd(f.as_raw_fd(), &s.meta, self.chown).map_err(io_err)?;
            }
        }
        let t = Instant::now();
        let many = !self.fsync_each && staged.len() > SYNCFS_THRESHOLD;
        if many || self.state_unsynced {
            self.sync_roots()?;
            self.state_unsynced = false;
        } else {
            let fds: Vec<_> = staged
                .iter()
                .filter_map(|s| s.file.as_ref().map(|f| f.as_raw_fd()))
                .collect();
            fsync_many(&fds).map_err(io_err)?;
        }
        // The conflict copies are durable before anything they protect is replaced
        // (rare: one syncfs of the conflicts directory's file system).
        if !self.records.is_empty() {
            if let Ok(d) = fsops::open_dir_path(&self.conflicts_dir) {
                let _ = fsops::syncfs(d.as_raw_fd());
            }
        }
        self.records.clear();
        self.phases.data_sync += ms_since(t);
        let t = Instant::now();
        let mut dirs: Vec<Rc<OwnedFd>> = Vec::new();
        for s in staged {
            let pfd = s.parent.as_raw_fd();
            // The version replaced keeps a name in the trash: freed later, not here.
            self.trash_entry(pfd, &s.name, false);
            let mut r = fsops::renameat(pfd, &s.tmp, &s.name);
            if r.is_err() {
                // A directory in the way (its kept entries were preserved above).
                self.forget_dirs();
                r = fsops::remove_at(pfd, &s.name)
                    .and_then(|_| fsops::renameat(pfd, &s.tmp, &s.name));
            }
            if let Err(e) = r {
                let _ = fsops::unlinkat(pfd, &s.tmp, 0);
                return Err(format!("installing {}: {e}", rel_str(&s.key.1)));
            }
            self.report.installed += 1;
            dirs.push(s.parent);
        }
        let deletes = std::mem::take(&mut self.deletes);
        let mut del_parents = Vec::new();
        for key in &deletes {
            if let Ok((p, Some(name))) = self.parent(key, false) {
                let is_dir = fsops::lstat_at(p.as_raw_fd(), &name)
                    .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
                    .unwrap_or(false);
                let r = if is_dir {
                    // Only an empty directory: kept entries keep theirs.
                    self.forget_dirs();
                    fsops::unlinkat(p.as_raw_fd(), &name, libc::AT_REMOVEDIR)
                } else if self.trash_entry(p.as_raw_fd(), &name, true) {
                    Ok(())
                } else {
                    fsops::unlinkat(p.as_raw_fd(), &name, 0)
                };
                match r {
                    Ok(()) => self.report.deleted += 1,
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                    Err(e) if is_dir && e.raw_os_error() == Some(libc::ENOTEMPTY) => {}
                    Err(e) => return Err(format!("removing {}: {e}", rel_str(&key.1))),
                }
                del_parents.push(p);
            }
        }
        // Directory entries (renames, removals) are made durable once, at the end of
        // the pull and before the generation is adopted: until then the copy says
        // partial and a crash only means the next start redoes them.
        for d in dirs.into_iter().chain(del_parents) {
            self.touch_dir(d);
        }
        self.phases.install += ms_since(t);
        Ok(())
    }

    fn finish_dirs(&mut self) -> Result<(), String> {
        let metas = std::mem::take(&mut self.dir_metas);
        let mut v: Vec<_> = metas.into_iter().collect();
        v.sort_by_key(|(k, _)| std::cmp::Reverse(k.1.len()));
        for (key, m) in v {
            let r = if key.1.is_empty() {
                self.roots
                    .get(key.0 as usize)
                    .map(|fd| fsops::set_meta_fd(fd.as_raw_fd(), &m, self.chown))
            } else {
                self.parent(&key, false).ok().and_then(|(p, n)| {
                    n.map(|n| fsops::set_meta_at(p.as_raw_fd(), &n, &m, self.chown))
                })
            };
            if let Some(Err(e)) = r {
                log::warn(&format!("directory {}: {e}", rel_str(&key.1)));
            }
            // The directory's own metadata changed: it is synced itself.
            let fd = if key.1.is_empty() {
                self.roots
                    .get(key.0 as usize)
                    .and_then(|fd| fd.try_clone().ok())
            } else {
                self.parent(&key, false)
                    .ok()
                    .and_then(|(p, n)| n.and_then(|n| fsops::open_subdir(p.as_raw_fd(), &n).ok()))
            }
            .map(Rc::new);
            match fd {
                Some(fd) => self.touch_dir(fd),
                None => {
                    self.touched_dirs += 1;
                    self.dirs_overflow = true;
                }
            }
        }
        if self.touched_dirs == 0 {
            return Ok(());
        }
        if self.fsync_each && !self.dirs_overflow {
            // A small pull: each touched directory once (renames, removals, new
            // directories, metadata).
            let dirs = std::mem::take(&mut self.sync_dirs);
            let fds: Vec<_> = dirs.values().map(|fd| fd.as_raw_fd()).collect();
            fsync_many(&fds).map_err(io_err)?;
        } else {
            // One sync of each file system involved makes every rename, removal and
            // directory change durable.
            self.sync_dirs.clear();
            self.sync_roots()?;
        }
        Ok(())
    }

    /// One `syncfs` per file system the roots are on.
    fn sync_roots(&self) -> Result<(), String> {
        let mut seen = Vec::new();
        for fd in &self.roots {
            let dev = fsops::fstat(fd.as_raw_fd())
                .map(|st| st.st_dev)
                .unwrap_or(0);
            if !seen.contains(&dev) {
                seen.push(dev);
                fsops::syncfs(fd.as_raw_fd()).map_err(io_err)?;
            }
        }
        Ok(())
    }
}

/// Runs the pull and, when it completed, adopts the target generation.
pub fn pull(
    spec: &PullSpec,
    sess: &mut PullSession,
    state_dir: &Path,
    mine: &mut GenState,
) -> Result<Report, String> {
    let started = Instant::now();
    let target_gen = match &spec.target {
        Target::Adopt(g) | Target::Merge(g) => g.clone(),
    };
    let mut roots = Vec::new();
    for p in &spec.cfg.paths {
        std::fs::create_dir_all(&p.path).map_err(|e| format!("{}: {e}", p.path.display()))?;
        roots
            .push(fsops::open_dir_path(&p.path).map_err(|e| format!("{}: {e}", p.path.display()))?);
    }
    if mine.receiving.is_some() {
        // An interrupted pull (or pass) may have left temporary files: remove them.
        for fd in &roots {
            sweep_tmp(fd.as_raw_fd());
        }
    }
    let pulled = std::fs::read_to_string(pulled_path(state_dir)).unwrap_or_default();
    let have_all_of_base = spec.base.as_deref().is_some_and(|b| b == pulled.trim());
    let t = Instant::now();
    let changes = peer_changes(sess, spec.peer_gen, spec.base.as_deref(), have_all_of_base)?;
    let dirty = local_dirty(state_dir, mine, spec.base.as_deref());
    let mut phases = Phases {
        log: ms_since(t),
        ..Phases::default()
    };
    let t = Instant::now();
    // A pull of a few logged changes is made durable file by file (see FSYNC_PULL_MAX),
    // unless the machine is quiet enough for `syncfs` (see QUIET_DIRTY_KIB).
    let fsync_each =
        changes.as_ref().is_some_and(|c| c.len() <= FSYNC_PULL_MAX) && !prefer_syncfs();
    // Partial from here on: the mirror refuses to start until the pull completes.
    mine.receiving = Some(target_gen.clone());
    mine.consistent = false;
    // The partial mark must be durable before the first file is replaced. In a large
    // pull on the roots' file system the first batch's syncfs (before any rename)
    // makes it so; otherwise it is synced now (fsync of the file and its directory).
    let state_dev = fsops::open_dir_path(state_dir)
        .and_then(|d| fsops::fstat(d.as_raw_fd()))
        .map(|st| st.st_dev)
        .ok();
    let same_fs = !fsync_each
        && state_dev.is_some()
        && roots
            .iter()
            .all(|r| fsops::fstat(r.as_raw_fd()).map(|st| st.st_dev).ok() == state_dev);
    if same_fs {
        mine.updated_ms = fsops::now_ms();
        let data = serde_json::to_vec_pretty(&*mine).map_err(|e| e.to_string())?;
        write_replace(&GenState::path(state_dir), &data)
            .map_err(|e| format!("saving the generation state: {e}"))?;
    } else {
        mine.save(state_dir)
            .map_err(|e| format!("saving the generation state: {e}"))?;
    }
    phases.mark = ms_since(t);
    let mut a = Applier {
        phases,
        spec,
        my_gen: mine
            .current
            .as_ref()
            .map(|g| g.id.clone())
            .unwrap_or_else(|| "none".into()),
        roots,
        root_paths: spec.cfg.paths.iter().map(|p| p.path.clone()).collect(),
        conflicts_dir: records::dir(state_dir),
        dirty,
        excludes: spec
            .cfg
            .exclude
            .iter()
            .filter_map(|p| CString::new(p.as_bytes()).ok())
            .collect(),
        // SAFETY: no preconditions.
        chown: unsafe { libc::geteuid() } == 0,
        counter: 0,
        report: Report::default(),
        records: Vec::new(),
        staged: Vec::new(),
        deletes: Vec::new(),
        dir_metas: BTreeMap::new(),
        touched_dirs: 0,
        state_unsynced: same_fs,
        fsync_each,
        sync_dirs: BTreeMap::new(),
        dir_cache: RefCell::new(HashMap::new()),
        dirs_overflow: false,
        trash: None,
        trashed: 0,
    };
    // The trash, on the state dir's file system (roots elsewhere free in place).
    let trash = trash_dir(state_dir);
    if let Err(e) = fsops::private_dir(&trash) {
        log::warn(&format!(
            "{}: {e}; replaced versions are freed in place",
            trash.display()
        ));
    } else if let Ok(t) = fsops::open_dir_path(&trash) {
        // Leftovers of an earlier pull are released with this one's.
        a.trashed = fsops::list_dir(t.as_raw_fd()).map(|v| v.len()).unwrap_or(0);
        a.trash = Some(t);
    }
    let res = (|| -> Result<(), String> {
        // The work list: the peer's changed paths, or every entry on either side.
        let (keys, known): (Vec<Key>, Option<RemoteMap>) = match &changes {
            Some(c) => {
                a.report.mode = "change-log".into();
                (c.iter().cloned().collect(), None)
            }
            None => {
                a.report.mode = "manifest".into();
                let m = sess.manifest()?;
                let mut all: BTreeSet<Key> = m.keys().cloned().collect();
                for (i, fd) in a.roots.iter().enumerate() {
                    let ex = &a.excludes;
                    fsops::walk_beneath(
                        fd.as_raw_fd(),
                        b"",
                        &|p| config::excluded(ex, p),
                        &mut |rel, _| {
                            all.insert((i as u32, rel.to_vec()));
                        },
                    );
                }
                (all.into_iter().collect(), Some(m))
            }
        };
        let keys: Vec<Key> = keys
            .into_iter()
            .filter(|(r, p)| (*r as usize) < a.roots.len() && !config::excluded(&a.excludes, p))
            .collect();
        log::info(&format!(
            "pulling set '{}' from {} ({}): {} entries to examine",
            spec.cfg.set,
            spec.peer,
            a.report.mode,
            keys.len()
        ));
        for batch in keys.chunks(BATCH) {
            if Instant::now() > spec.deadline {
                return Err(format!(
                    "pull_timeout reached after {} of {} entries; the next start resumes",
                    a.report.examined,
                    keys.len()
                ));
            }
            match &known {
                Some(m) => {
                    // Only entries that differ need their content.
                    let mut fetch = Vec::new();
                    for key in batch {
                        match m.get(key) {
                            Some((tm, _)) if tm.kind == Kind::File => {
                                let same = a.local(key).is_some_and(|mm| mm.same_on_peer(tm));
                                if same {
                                    a.report.examined += 1;
                                } else {
                                    fetch.push(key.clone());
                                }
                            }
                            Some((tm, t)) => {
                                let (tm, t) = (tm.clone(), t.clone());
                                a.take(key, Some((&tm, &t)))?;
                            }
                            None => {
                                a.take(key, None)?;
                            }
                        }
                    }
                    let t = Instant::now();
                    fetch_batch(&mut a, sess, &fetch)?;
                    a.phases.fetch += ms_since(t);
                }
                None => {
                    let t = Instant::now();
                    fetch_batch(&mut a, sess, batch)?;
                    a.phases.fetch += ms_since(t);
                }
            }
            a.commit(state_dir)?;
        }
        // This node's own unmirrored changes the peer did not touch: in place, listed.
        if let (Some(c), Dirty::Known { paths, .. }) = (&changes, &a.dirty) {
            let mine_only: Vec<Key> = paths.difference(c).cloned().collect();
            for key in mine_only {
                if a.local(&key).is_some_and(|m| m.kind != Kind::Dir) {
                    a.record("unmirrored", &key, None);
                }
            }
        }
        let t = Instant::now();
        a.finish_dirs()?;
        a.phases.dir_sync = ms_since(t);
        records::append(state_dir, &a.records).map_err(|e| format!("conflict records: {e}"))?;
        Ok(())
    })();
    if let Err(e) = res {
        a.abort();
        if a.trashed > 0 {
            spawn_release(&spec.cfg.mirror_bin, state_dir);
        }
        return Err(e);
    }
    let t = Instant::now();
    // The peer's logged changes are all here now (its unmirrored ones included).
    let mut done: Vec<String> = std::iter::once(spec.peer_gen.id.clone())
        .chain(spec.peer_gen.history.iter().cloned())
        .take_while(|g| spec.base.as_deref() != Some(g.as_str()))
        .collect();
    if let Some(b) = &spec.base {
        done.push(b.clone());
    }
    for g in &done {
        if let Err(e) = sess.synced(g) {
            log::warn(&format!(
                "telling {} that generation {g} is here: {e}",
                spec.peer
            ));
        }
    }
    // A generation pulled from a complete log is whole here: the next pull need not
    // look at the peer's unmirrored changes of it again. A hint, written before the
    // generation is adopted (it names the target, which is only a base once adopted;
    // lost in a crash, the next pull only looks at more), made durable by the save.
    let complete = changes.is_some() && matches!(spec.target, Target::Adopt(_));
    let _ = write_replace(
        &pulled_path(state_dir),
        if complete {
            target_gen.id.as_bytes()
        } else {
            b""
        },
    );
    mine.adopt(&target_gen, spec.peer);
    mine.save(state_dir)
        .map_err(|e| format!("saving the generation state: {e}"))?;
    a.phases.adopt = ms_since(t);
    if a.trashed > 0 {
        spawn_release(&spec.cfg.mirror_bin, state_dir);
    }
    let p = a.phases;
    log::debug(&format!(
        "set '{}': pull phases (ms, made durable by {}): change logs {:.1}, partial mark {:.1}, fetch and write {:.1}, file sync {:.1}, install {:.1}, directory sync {:.1}, adopt {:.1}; {} replaced versions to release",
        spec.cfg.set,
        if a.fsync_each { "fsyncs" } else { "syncfs" },
        p.log, p.mark, p.fetch, p.data_sync, p.install, p.dir_sync, p.adopt, a.trashed
    ));
    log::info(&format!(
        "set '{}': pulled from {} in {} ms ({}: {} examined, {} installed, {} deleted, {} conflicts kept, {} kept in place, {} unmirrored here); now at generation {}",
        spec.cfg.set,
        spec.peer,
        started.elapsed().as_millis(),
        a.report.mode,
        a.report.examined,
        a.report.installed,
        a.report.deleted,
        a.report.conflicts,
        a.report.kept_in_place,
        a.report.unmirrored,
        target_gen.id
    ));
    Ok(a.report)
}

/// Removes `.bulwark-tmp.*` entries below `dir` (never following symlinks).
fn sweep_tmp(dir: std::os::fd::RawFd) {
    let Ok(names) = fsops::list_dir(dir) else {
        return;
    };
    for n in names {
        if n.as_bytes().starts_with(fsops::TMP_PREFIX.as_bytes()) {
            let _ = fsops::remove_at(dir, &n);
            continue;
        }
        if let Ok(st) = fsops::lstat_at(dir, &n) {
            if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                if let Ok(sub) = fsops::open_subdir(dir, &n) {
                    sweep_tmp(sub.as_raw_fd());
                }
            }
        }
    }
}

fn fetch_batch(a: &mut Applier, sess: &mut PullSession, keys: &[Key]) -> Result<(), String> {
    if keys.is_empty() {
        return Ok(());
    }
    let slot: std::cell::RefCell<Vec<Option<usize>>> =
        std::cell::RefCell::new(vec![None; keys.len()]);
    let mut err: Option<String> = None;
    let a_cell = std::cell::RefCell::new(a);
    sess.get_batch(
        keys,
        &mut |i, got| {
            let mut a = a_cell.borrow_mut();
            let r = match got {
                Got::Absent => a.take(&keys[i], None),
                Got::Entry { meta, target } => a.take(&keys[i], Some((&meta, &target))),
            };
            match r {
                Ok(s) => slot.borrow_mut()[i] = s,
                Err(e) => {
                    // Logged, and the pull fails at the end of the batch (resumable).
                    log::error(&format!("{}: {e}", rel_str(&keys[i].1)));
                    err.get_or_insert(e);
                }
            }
            Ok(())
        },
        &mut |i, data| {
            let mut a = a_cell.borrow_mut();
            let s = slot.borrow()[i];
            if let Some(s) = s {
                let st = &mut a.staged[s];
                if let Some(f) = &st.file {
                    f.write_all_at(data, st.written).map_err(io_err)?;
                }
                st.written += data.len() as u64;
            }
            Ok(())
        },
    )?;
    match err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_frees_files_and_links_but_follows_nothing() {
        let sd = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let keep = outside.path().join("keep");
        std::fs::write(&keep, b"x").unwrap();
        assert_eq!(release_trash(sd.path()).unwrap(), 0, "no trash yet");
        let t = trash_dir(sd.path());
        fsops::private_dir(&t).unwrap();
        std::fs::write(t.join("1.1"), b"old").unwrap();
        std::os::unix::fs::symlink(&keep, t.join("1.2")).unwrap();
        std::fs::create_dir(t.join("d")).unwrap();
        std::fs::write(t.join("d/inner"), b"y").unwrap();
        assert_eq!(release_trash(sd.path()).unwrap(), 2);
        assert!(!t.join("1.1").exists() && std::fs::symlink_metadata(t.join("1.2")).is_err());
        assert!(t.join("d/inner").exists(), "a directory is left alone");
        assert!(keep.exists(), "the link's target is untouched");
    }

    #[test]
    fn private_dir_closes_an_open_directory() {
        use std::os::unix::fs::PermissionsExt;
        let sd = tempfile::tempdir().unwrap();
        let d = sd.path().join("trash");
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        fsops::private_dir(&d).unwrap();
        let mode = std::fs::metadata(&d).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        std::fs::write(sd.path().join("f"), b"").unwrap();
        assert!(fsops::private_dir(&sd.path().join("f")).is_err());
    }

    #[test]
    fn dirty_data_is_read_from_meminfo() {
        let k = fsops::dirty_kib().expect("Dirty and Writeback in /proc/meminfo");
        // Not more than all of memory.
        let total: u64 = std::fs::read_to_string("/proc/meminfo")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap();
        assert!(k <= total, "{k} > {total}");
    }

    fn g(id: &str, h: &[&str]) -> Generation {
        Generation {
            id: id.into(),
            history: h.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn chains_and_common_bases() {
        let y = g("y2", &["y1", "a", "z"]);
        assert_eq!(chain_to(&y, "a").unwrap(), vec!["y2", "y1"]);
        assert!(chain_to(&y, "q").is_none());
        assert_eq!(chain_to(&y, "y2").unwrap(), Vec::<String>::new());
        assert_eq!(common_base(&g("x1", &["a", "z"]), &y).as_deref(), Some("a"));
        assert_eq!(common_base(&g("x1", &[]), &y), None);
    }
}
