//! The receiver: runs on the peer (a local child for `transport=local`, or started over
//! `ssh`), speaks the framed protocol on stdin/stdout, and applies changes atomically and
//! durably beneath its configured roots only (guarantees 1, 6, 7, 8).
//!
//! Files and symlinks are written to `.bulwark-tmp.*` names in their final directory and
//! renamed into place at `Commit`, after their data is on disk (fsync each, or one
//! `syncfs` for a large batch); the directories are then synced the same way. A crash
//! leaves only old versions, new versions and temporary files, which the next session's
//! manifest walk removes (the session lock guarantees no other session owns them).

use super::cluster;
use super::delta;
use super::fsops::{self, PathError};
use super::gen::{GenState, Generation, PeerInfo};
use super::wire::{self, Entry, Kind, Meta, Msg, PROTOCOL_VERSION};
use ocf_metadata::log;
use std::ffi::CString;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::rc::Rc;

/// Above this many files (or directories) per commit, one `syncfs` replaces the fsyncs.
const SYNCFS_THRESHOLD: usize = 16;
/// How long a new session waits for the previous one to end.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    pub set: String,
    /// Absolute directories this receiver may write beneath; index = root number on the wire.
    pub roots: Vec<PathBuf>,
    pub state_dir: PathBuf,
    pub node: String,
}

/// (root index, parent path with its trailing '/').
type DirKey = (u32, Vec<u8>);

struct Staged {
    parent: Rc<OwnedFd>,
    /// A regular file (its fd may be closed early in large batches).
    is_file: bool,
    tmp: CString,
    name: CString,
    file: Option<File>,
    path: String,
}

struct Incoming {
    staged: Option<Staged>,
    meta: Meta,
    written: u64,
    /// For deltas: the block size; blocks are written at index * block.
    block: u32,
    delta: bool,
    failed: Option<String>,
}

struct Session<'a> {
    cfg: &'a ReceiverConfig,
    roots: Vec<OwnedFd>,
    chown: bool,
    staged: Vec<Staged>,
    dir_metas: Vec<(Rc<OwnedFd>, Option<CString>, Meta)>,
    /// The last parent directory opened (root, parent path), reused by the next entry
    /// in the same directory; dropped on every delete or directory entry.
    last_parent: Option<(DirKey, Rc<OwnedFd>)>,
    /// Directories an entry was removed from since the last commit.
    dirty_dirs: Vec<Rc<OwnedFd>>,
    /// Directory mtimes before this batch put temporary files in them, restored after
    /// the renames (the sender's `Dir` entries, applied after that, win).
    dir_times: std::collections::HashMap<(u64, u64), (i64, i64)>,
    failures: Vec<(String, String)>,
    counter: u64,
    incoming: Option<Incoming>,
}

fn display(root: u32, path: &[u8]) -> String {
    format!("[{root}]/{}", String::from_utf8_lossy(path))
}

/// Serves one session on stdin/stdout.
pub fn serve_stdio(cfg: &ReceiverConfig) -> Result<(), String> {
    let stdin = io::stdin().lock();
    let stdout = io::stdout().lock();
    serve(cfg, stdin, stdout)
}

/// Serves one session on the given streams. Returns an error for a refused or broken
/// session (already logged).
pub fn serve(cfg: &ReceiverConfig, r: impl Read, w: impl Write) -> Result<(), String> {
    let mut r = BufReader::with_capacity(1 << 18, r);
    let mut w = BufWriter::with_capacity(1 << 16, w);
    let hello = wire::recv(&mut r).map_err(|e| format!("reading hello: {e}"))?;
    let Some(Msg::Hello {
        version,
        set,
        node,
        query,
        gen,
    }) = hello
    else {
        return Err("protocol error: expected hello".into());
    };
    let refuse = |w: &mut BufWriter<_>, reason: String| -> Result<(), String> {
        log::error(&format!(
            "receiver for set '{}': refused {node}: {reason}",
            cfg.set
        ));
        let _ = wire::send(
            w,
            &Msg::Refused {
                reason: reason.clone(),
            },
        );
        let _ = w.flush();
        Err(reason)
    };
    if version != PROTOCOL_VERSION {
        return refuse(
            &mut w,
            format!("protocol version {version} not supported (this receiver speaks {PROTOCOL_VERSION})"),
        );
    }
    if set != cfg.set {
        return refuse(
            &mut w,
            format!("set '{set}' does not match this receiver's '{}'", cfg.set),
        );
    }
    std::fs::create_dir_all(&cfg.state_dir)
        .map_err(|e| format!("creating {}: {e}", cfg.state_dir.display()))?;
    let mut state = GenState::load(&cfg.state_dir, &cfg.set).map_err(|e| e.to_string())?;
    let writer_running = super::agent::running_pid(&cfg.state_dir).is_some();
    let info = |state: &GenState| {
        serde_json::to_string(&PeerInfo {
            node: cfg.node.clone(),
            state: state.clone(),
            writer_running,
        })
        .unwrap_or_default()
    };
    if query {
        let json = info(&state);
        let _ = wire::send(&mut w, &Msg::HelloOk { state_json: json });
        let _ = w.flush();
        return Ok(());
    }
    if writer_running {
        return refuse(
            &mut w,
            format!(
                "this node runs the writer of set '{}' itself (two writers refused)",
                cfg.set
            ),
        );
    }
    // One writer session at a time (the second line of defence after Pacemaker).
    let _lock = match lock(&cfg.state_dir) {
        Ok(l) => l,
        Err(e) => return refuse(&mut w, e),
    };
    let sender = Generation::from_wire(&gen);
    if let Err(why) = state.accepts(&sender) {
        return refuse(&mut w, why);
    }
    // This node's own unmirrored changes are kept before a newer writer's pass.
    if let Err(e) = crate::gate::protect::before_foreign_pass(
        &cfg.state_dir,
        &cfg.roots,
        &state,
        &sender,
        &node,
    ) {
        return refuse(
            &mut w,
            format!("keeping this node's unmirrored changes: {e}"),
        );
    }
    if state.begin_receiving(&sender) {
        state
            .save(&cfg.state_dir)
            .map_err(|e| format!("saving generation state: {e}"))?;
    }
    let mut roots = Vec::new();
    for root in &cfg.roots {
        if let Err(e) = std::fs::create_dir_all(root) {
            return refuse(
                &mut w,
                format!("cannot create root {}: {e}", root.display()),
            );
        }
        match fsops::open_dir_path(root) {
            Ok(fd) => roots.push(fd),
            Err(e) => return refuse(&mut w, format!("cannot open root {}: {e}", root.display())),
        }
    }
    let json = info(&state);
    wire::send(&mut w, &Msg::HelloOk { state_json: json }).map_err(|e| e.to_string())?;
    w.flush().map_err(|e| e.to_string())?;
    log::info(&format!(
        "receiver for set '{}': session from {node}, generation {}",
        cfg.set, sender.id
    ));

    let mut s = Session {
        cfg,
        roots,
        // SAFETY: geteuid has no preconditions.
        chown: unsafe { libc::geteuid() } == 0,
        staged: Vec::new(),
        dir_metas: Vec::new(),
        dirty_dirs: Vec::new(),
        last_parent: None,
        dir_times: std::collections::HashMap::new(),
        failures: Vec::new(),
        counter: 0,
        incoming: None,
    };
    loop {
        let msg = match wire::recv(&mut r) {
            Ok(Some(m)) => m,
            Ok(None) => break,
            Err(e) => {
                s.abort();
                return Err(format!("session from {node} broken: {e}"));
            }
        };
        match msg {
            Msg::Bye => break,
            Msg::ManifestReq { root } => {
                let res = s.manifest(root, &mut w).and_then(|_| w.flush());
                res.map_err(|e| format!("sending manifest: {e}"))?;
            }
            Msg::Commit { seq } => {
                s.commit();
                let failures = std::mem::take(&mut s.failures);
                wire::send(&mut w, &Msg::Committed { seq, failures })
                    .and_then(|_| w.flush())
                    .map_err(|e| e.to_string())?;
            }
            Msg::PassComplete => {
                s.commit();
                state.adopt(&sender, &node);
                state
                    .save(&cfg.state_dir)
                    .map_err(|e| format!("saving generation state: {e}"))?;
                cluster::publish_generation(&cfg.set, &state);
                log::info(&format!(
                    "receiver for set '{}': complete pass, adopted generation {}",
                    cfg.set, sender.id
                ));
                let json = info(&state);
                wire::send(&mut w, &Msg::PassOk { state_json: json })
                    .and_then(|_| w.flush())
                    .map_err(|e| e.to_string())?;
            }
            Msg::SigReq { root, path, block } => {
                let sig = s.signature(root, &path, block);
                wire::send(&mut w, &sig)
                    .and_then(|_| w.flush())
                    .map_err(|e| e.to_string())?;
            }
            other => s.apply(other),
        }
    }
    s.abort();
    Ok(())
}

fn lock(state_dir: &std::path::Path) -> Result<File, String> {
    let p = state_dir.join("receiver.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .map_err(|e| format!("opening {}: {e}", p.display()))?;
    // A session whose sender just died may still be finishing a commit: wait a little
    // for it, then refuse (a live second writer keeps the lock).
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        // SAFETY: valid fd.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(f);
        }
        if std::time::Instant::now() >= deadline {
            return Err(
                "another writer's session is active on this receiver (two writers refused)".into(),
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

impl Session<'_> {
    fn root_fd(&self, root: u32) -> Result<RawFd, PathError> {
        self.roots
            .get(root as usize)
            .map(|f| f.as_raw_fd())
            .ok_or(PathError::Invalid("unknown root"))
    }

    fn fail(&mut self, root: u32, path: &[u8], e: PathError) {
        let p = display(root, path);
        let rel = String::from_utf8_lossy(path).into_owned();
        match &e {
            PathError::Invalid(_) | PathError::ThroughSymlink(_) => log::error(&format!(
                "receiver for set '{}': ATTACK? refused path {p:?}: {e}",
                self.cfg.set
            )),
            PathError::Io(_) => {
                log::warn(&format!("receiver for set '{}': {p}: {e}", self.cfg.set))
            }
        }
        self.failures.push((rel, e.to_string()));
    }

    /// Validates `path` and opens its parent (creating missing directories when asked).
    fn parent_of(
        &mut self,
        root: u32,
        path: &[u8],
        create: bool,
    ) -> Result<(Rc<OwnedFd>, Option<CString>), PathError> {
        let comps = fsops::check_rel(path)?;
        let rfd = self.root_fd(root)?;
        let dir_key = (
            root,
            path[..path.len() - comps.last().map_or(0, |c| c.len())].to_vec(),
        );
        if let Some((k, fd)) = &self.last_parent {
            if *k == dir_key {
                let name = match comps.last() {
                    Some(n) => Some(fsops::cstr(n).map_err(|e| PathError::Io(e.to_string()))?),
                    None => None,
                };
                let fd = fd.clone();
                if create {
                    self.note_dir_time(&fd);
                }
                return Ok((fd, name));
            }
        }
        let parent = Rc::new(fsops::open_parent(rfd, &comps, create)?);
        self.last_parent = Some((dir_key, parent.clone()));
        if create {
            self.note_dir_time(&parent);
        }
        let name = match comps.last() {
            Some(n) => Some(fsops::cstr(n).map_err(|e| PathError::Io(e.to_string()))?),
            None => None,
        };
        Ok((parent, name))
    }

    fn note_dir_time(&mut self, dir: &OwnedFd) {
        if let Ok(st) = fsops::fstat(dir.as_raw_fd()) {
            self.dir_times
                .entry((st.st_dev, st.st_ino))
                .or_insert((st.st_mtime, st.st_mtime_nsec));
        }
    }

    fn new_tmp(&mut self, name: &CString) -> CString {
        self.counter += 1;
        CString::new(fsops::tmp_name(name.as_bytes(), self.counter)).expect("no NUL")
    }

    fn apply(&mut self, msg: Msg) {
        match msg {
            Msg::Dir { root, path, meta } => {
                if let Err(e) = self.dir(root, &path, meta) {
                    self.fail(root, &path, e);
                }
            }
            Msg::Symlink {
                root,
                path,
                meta,
                target,
            } => {
                if let Err(e) = self.symlink(root, &path, &meta, &target) {
                    self.fail(root, &path, e);
                }
            }
            Msg::FileBegin { root, path, meta } => {
                self.incoming = Some(match self.open_tmp(root, &path, None) {
                    Ok(st) => Incoming {
                        staged: Some(st),
                        meta,
                        written: 0,
                        block: 0,
                        delta: false,
                        failed: None,
                    },
                    Err(e) => {
                        self.fail(root, &path, e);
                        Incoming {
                            staged: None,
                            meta,
                            written: 0,
                            block: 0,
                            delta: false,
                            failed: Some("refused".into()),
                        }
                    }
                });
            }
            Msg::DeltaBegin {
                root,
                path,
                meta,
                block,
            } => {
                let res = self.open_tmp(root, &path, Some(meta.size));
                self.incoming = Some(match res {
                    Ok(st) => Incoming {
                        staged: Some(st),
                        meta,
                        written: 0,
                        block,
                        delta: true,
                        failed: None,
                    },
                    Err(e) => {
                        self.fail(root, &path, e);
                        Incoming {
                            staged: None,
                            meta,
                            written: 0,
                            block,
                            delta: true,
                            failed: Some("refused".into()),
                        }
                    }
                });
            }
            Msg::Chunk(data) => {
                if let Some(inc) = &mut self.incoming {
                    if let (Some(st), None) = (&mut inc.staged, &inc.failed) {
                        let f = st.file.as_ref().expect("file");
                        if let Err(e) = f.write_all_at(&data, inc.written) {
                            inc.failed = Some(e.to_string());
                        }
                    }
                    inc.written += data.len() as u64;
                }
            }
            Msg::Block { index, data } => {
                if let Some(inc) = &mut self.incoming {
                    if let (Some(st), None) = (&mut inc.staged, &inc.failed) {
                        let f = st.file.as_ref().expect("file");
                        let off = index * inc.block as u64;
                        if off + data.len() as u64 > inc.meta.size {
                            inc.failed = Some("delta block beyond the file size".into());
                        } else if let Err(e) = f.write_all_at(&data, off) {
                            inc.failed = Some(e.to_string());
                        }
                    }
                    inc.written += data.len() as u64;
                }
            }
            Msg::FileEnd | Msg::DeltaEnd => {
                if let Some(inc) = self.incoming.take() {
                    self.finish_file(inc);
                }
            }
            Msg::Delete { root, path } => {
                if let Err(e) = self.delete(root, &path) {
                    self.fail(root, &path, e);
                }
            }
            other => {
                log::warn(&format!("receiver: unexpected frame {other:?}"));
                self.failures
                    .push(("-".into(), "protocol error: unexpected frame".into()));
            }
        }
    }

    fn dir(&mut self, root: u32, path: &[u8], meta: Meta) -> Result<(), PathError> {
        self.last_parent = None;
        if meta.kind != Kind::Dir {
            return Err(PathError::Invalid("dir entry of another kind"));
        }
        let (parent, name) = self.parent_of(root, path, true)?;
        let io_err = |e: io::Error| PathError::Io(e.to_string());
        if let Some(name) = &name {
            match fsops::lstat_at(parent.as_raw_fd(), name) {
                Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {}
                Ok(_) => {
                    fsops::remove_at(parent.as_raw_fd(), name).map_err(io_err)?;
                    mkdir(parent.as_raw_fd(), name).map_err(io_err)?;
                }
                Err(_) => mkdir(parent.as_raw_fd(), name).map_err(io_err)?,
            }
        }
        self.dir_metas.push((parent, name, meta));
        Ok(())
    }

    fn symlink(
        &mut self,
        root: u32,
        path: &[u8],
        meta: &Meta,
        target: &[u8],
    ) -> Result<(), PathError> {
        let (parent, name) = self.parent_of(root, path, true)?;
        let name = name.ok_or(PathError::Invalid("the root cannot be a symlink"))?;
        let tmp = self.new_tmp(&name);
        let t = fsops::cstr(target).map_err(|e| PathError::Io(e.to_string()))?;
        // SAFETY: valid fd and C strings.
        if unsafe { libc::symlinkat(t.as_ptr(), parent.as_raw_fd(), tmp.as_ptr()) } < 0 {
            return Err(PathError::Io(io::Error::last_os_error().to_string()));
        }
        if let Err(e) = fsops::set_meta_at(parent.as_raw_fd(), &tmp, meta, self.chown) {
            let _ = fsops::unlinkat(parent.as_raw_fd(), &tmp, 0);
            return Err(PathError::Io(e.to_string()));
        }
        self.staged.push(Staged {
            parent,
            is_file: false,
            tmp,
            name,
            file: None,
            path: String::from_utf8_lossy(path).into_owned(),
        });
        Ok(())
    }

    /// Creates the temporary file; for a delta, seeded with the current version's data.
    fn open_tmp(
        &mut self,
        root: u32,
        path: &[u8],
        delta_size: Option<u64>,
    ) -> Result<Staged, PathError> {
        let (parent, name) = self.parent_of(root, path, true)?;
        let name = name.ok_or(PathError::Invalid("the root cannot be a file"))?;
        let tmp = self.new_tmp(&name);
        let io_err = |e: io::Error| PathError::Io(e.to_string());
        // SAFETY: valid fd and C string; the fd is owned by the File.
        let fd = unsafe {
            libc::openat(
                parent.as_raw_fd(),
                tmp.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o600,
            )
        };
        if fd < 0 {
            return Err(io_err(io::Error::last_os_error()));
        }
        let file = unsafe { File::from_raw_fd(fd) };
        let st = Staged {
            parent,
            is_file: true,
            tmp,
            name,
            file: Some(file),
            path: String::from_utf8_lossy(path).into_owned(),
        };
        if let Some(size) = delta_size {
            let seeded = delta::seed_from_old(
                st.parent.as_raw_fd(),
                &st.name,
                st.file.as_ref().unwrap(),
                size,
            );
            if let Err(e) = seeded {
                let _ = fsops::unlinkat(st.parent.as_raw_fd(), &st.tmp, 0);
                return Err(io_err(e));
            }
        }
        Ok(st)
    }

    fn finish_file(&mut self, inc: Incoming) {
        let Some(st) = inc.staged else {
            return;
        };
        let mut failed = inc.failed;
        if failed.is_none() && !inc.delta && inc.written != inc.meta.size {
            failed = Some(format!(
                "size mismatch: got {} bytes, expected {} (file changed while sent?)",
                inc.written, inc.meta.size
            ));
        }
        if failed.is_none() {
            if let Err(e) =
                fsops::set_meta_fd(st.file.as_ref().unwrap().as_raw_fd(), &inc.meta, self.chown)
            {
                failed = Some(e.to_string());
            }
        }
        if let Some(why) = failed {
            let _ = fsops::unlinkat(st.parent.as_raw_fd(), &st.tmp, 0);
            self.failures.push((st.path, why));
            return;
        }
        let mut st = st;
        if self.staged.iter().filter(|s| s.is_file).count() >= SYNCFS_THRESHOLD {
            // This batch is synced with one syncfs: no need to keep the fd open.
            // (Starting each file's writeback early with sync_file_range was measured
            // slower: per-file writeback instead of one merged flush.)
            st.file = None;
        }
        self.staged.push(st);
    }

    fn delete(&mut self, root: u32, path: &[u8]) -> Result<(), PathError> {
        self.last_parent = None;
        let (parent, name) = match self.parent_of(root, path, false) {
            Ok(p) => p,
            // A missing parent: nothing to delete.
            Err(PathError::Io(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let name = name.ok_or(PathError::Invalid("the root itself cannot be deleted"))?;
        fsops::remove_at(parent.as_raw_fd(), &name).map_err(|e| PathError::Io(e.to_string()))?;
        self.dirty_dirs.push(parent);
        Ok(())
    }

    fn signature(&mut self, root: u32, path: &[u8], block: u32) -> Msg {
        let none = Msg::Sig {
            size: u64::MAX,
            block,
            hashes: Vec::new(),
        };
        let block = block.clamp(4096, 1 << 20);
        let Ok((parent, Some(name))) = self.parent_of(root, path, false) else {
            return none;
        };
        match delta::open_regular(parent.as_raw_fd(), &name) {
            Ok(f) => match delta::signature(&f, block) {
                Ok((size, hashes)) => Msg::Sig {
                    size,
                    block,
                    hashes,
                },
                Err(_) => none,
            },
            Err(_) => none,
        }
    }

    /// Makes the staged files durable, renames them into place and syncs their dirs.
    fn commit(&mut self) {
        let staged = std::mem::take(&mut self.staged);
        let metas = std::mem::take(&mut self.dir_metas);
        let dirty = std::mem::take(&mut self.dirty_dirs);
        if staged.is_empty() && metas.is_empty() && dirty.is_empty() {
            return;
        }
        self.last_parent = None;
        let files: Vec<&Staged> = staged.iter().filter(|s| s.is_file).collect();
        if files.len() > SYNCFS_THRESHOLD {
            if let Some(st) = files.first() {
                if let Err(e) = fsops::syncfs(st.parent.as_raw_fd()) {
                    log::error(&format!("syncfs failed: {e}; not installing this batch"));
                    for st in &staged {
                        let _ = fsops::unlinkat(st.parent.as_raw_fd(), &st.tmp, 0);
                        self.failures
                            .push((st.path.clone(), format!("syncfs: {e}")));
                    }
                    return;
                }
            }
        } else {
            for st in &files {
                let Some(f) = &st.file else { continue };
                if let Err(e) = fsops::fsync(f.as_raw_fd()) {
                    self.failures.push((st.path.clone(), format!("fsync: {e}")));
                }
            }
        }
        let mut dirs: Vec<RawFd> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut seen_fd = std::collections::HashSet::new();
        for st in &staged {
            if self.failures.iter().any(|(p, _)| *p == st.path) {
                let _ = fsops::unlinkat(st.parent.as_raw_fd(), &st.tmp, 0);
                continue;
            }
            let pfd = st.parent.as_raw_fd();
            let mut r = fsops::renameat(pfd, &st.tmp, &st.name);
            if let Err(e) = &r {
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EISDIR) | Some(libc::ENOTEMPTY) | Some(libc::EEXIST)
                ) {
                    // A directory is replaced by a file or link.
                    r = fsops::remove_at(pfd, &st.name)
                        .and_then(|_| fsops::renameat(pfd, &st.tmp, &st.name));
                }
            }
            if let Err(e) = r {
                let _ = fsops::unlinkat(pfd, &st.tmp, 0);
                self.failures
                    .push((st.path.clone(), format!("rename: {e}")));
                continue;
            }
            // Entries of one directory share its fd (see parent_of): dedupe by pointer.
            if seen_fd.insert(Rc::as_ptr(&st.parent)) {
                if let Ok(stt) = fsops::fstat(pfd) {
                    if seen.insert((stt.st_dev, stt.st_ino)) {
                        dirs.push(pfd);
                    }
                }
            }
        }
        let times = std::mem::take(&mut self.dir_times);
        for d in &dirs {
            if let Ok(stt) = fsops::fstat(*d) {
                if let Some((sec, nsec)) = times.get(&(stt.st_dev, stt.st_ino)) {
                    let ts = [
                        libc::timespec {
                            tv_sec: 0,
                            tv_nsec: libc::UTIME_OMIT,
                        },
                        libc::timespec {
                            tv_sec: *sec,
                            tv_nsec: *nsec,
                        },
                    ];
                    // SAFETY: valid fd and timespec array.
                    unsafe { libc::futimens(*d, ts.as_ptr()) };
                }
            }
        }
        for (parent, name, meta) in &metas {
            let r = match name {
                Some(n) => fsops::set_meta_at(parent.as_raw_fd(), n, meta, self.chown),
                None => fsops::set_meta_fd(parent.as_raw_fd(), meta, self.chown),
            };
            if let Err(e) = r {
                self.failures
                    .push(("(dir)".into(), format!("setting directory metadata: {e}")));
            }
            if let Ok(stt) = fsops::fstat(parent.as_raw_fd()) {
                if seen.insert((stt.st_dev, stt.st_ino)) {
                    dirs.push(parent.as_raw_fd());
                }
            }
        }
        for d in &dirty {
            if let Ok(stt) = fsops::fstat(d.as_raw_fd()) {
                if seen.insert((stt.st_dev, stt.st_ino)) {
                    dirs.push(d.as_raw_fd());
                }
            }
        }
        self.sync_dirs(&dirs);
        drop(staged);
        drop(metas);
        drop(dirty);
    }

    fn sync_dirs(&self, dirs: &[RawFd]) {
        if dirs.len() > SYNCFS_THRESHOLD {
            let _ = fsops::syncfs(dirs[0]);
        } else {
            for d in dirs {
                let _ = fsops::fsync(*d);
            }
        }
    }

    /// Drops what was not committed: temporary files are removed, nothing is installed.
    fn abort(&mut self) {
        if let Some(inc) = self.incoming.take() {
            if let Some(st) = inc.staged {
                let _ = fsops::unlinkat(st.parent.as_raw_fd(), &st.tmp, 0);
            }
        }
        for st in self.staged.drain(..) {
            let _ = fsops::unlinkat(st.parent.as_raw_fd(), &st.tmp, 0);
        }
        self.dir_metas.clear();
    }

    /// Lists root `which` (or every root), removing stale temporary files on the way.
    fn manifest(&mut self, which: u32, w: &mut impl Write) -> io::Result<()> {
        for (i, fd) in self.roots.iter().enumerate() {
            if which != u32::MAX && which as usize != i {
                continue;
            }
            let st = fsops::fstat(fd.as_raw_fd())?;
            if let Some(meta) = fsops::meta_of_stat(&st) {
                wire::send(
                    w,
                    &Msg::ManifestEntry(Entry {
                        root: i as u32,
                        path: Vec::new(),
                        meta,
                        target: Vec::new(),
                    }),
                )?;
            }
            walk(i as u32, fd.as_raw_fd(), &mut Vec::new(), w)?;
        }
        wire::send(w, &Msg::ManifestEnd)
    }
}

fn mkdir(dir: RawFd, name: &CString) -> io::Result<()> {
    // SAFETY: valid fd and C string.
    if unsafe { libc::mkdirat(dir, name.as_ptr(), 0o700) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn walk(root: u32, dir: RawFd, prefix: &mut Vec<u8>, w: &mut impl Write) -> io::Result<()> {
    let names = match fsops::list_dir(dir) {
        Ok(n) => n,
        Err(_) => return Ok(()),
    };
    for name in names {
        let nb = name.as_bytes();
        if nb.starts_with(fsops::TMP_PREFIX.as_bytes()) {
            // Left by an interrupted session; this session holds the lock.
            let _ = fsops::remove_at(dir, &name);
            continue;
        }
        let Ok(st) = fsops::lstat_at(dir, &name) else {
            continue;
        };
        let Some(meta) = fsops::meta_of_stat(&st) else {
            continue;
        };
        let len = prefix.len();
        if !prefix.is_empty() {
            prefix.push(b'/');
        }
        prefix.extend_from_slice(nb);
        let target = if meta.kind == Kind::Symlink {
            fsops::readlink_at(dir, &name).unwrap_or_default()
        } else {
            Vec::new()
        };
        wire::send(
            w,
            &Msg::ManifestEntry(Entry {
                root,
                path: prefix.clone(),
                meta: meta.clone(),
                target,
            }),
        )?;
        if meta.kind == Kind::Dir {
            if let Ok(sub) = fsops::open_subdir(dir, &name) {
                walk(root, sub.as_raw_fd(), prefix, w)?;
            }
        }
        prefix.truncate(len);
    }
    Ok(())
}
