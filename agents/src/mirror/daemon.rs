//! The mirror daemon of one set. `bulwark-mirror daemon` is the supervisor (it holds the
//! pidfile and restarts a crashed worker); `bulwark-mirror worker` does the work:
//! journal every root with inotify, keep one session per peer, and send each root's
//! changes on its schedule. A start or reconnect does a complete pass against the peer's
//! manifest; a queue overflow rescans only the root it happened on, locally, against
//! what the peer is known to have.

use super::changelog::ChangeLog;
use super::config::{self, Config, Peer};
use super::fsops::{self, Beneath};
use super::gen::{GenState, Generation};
use super::journal::{Event, Journal, WatchError};
use super::session::{Manifest, PeerSession, SessionError};
use super::status::{self, PeerStatus, Status};
use super::wire::{Kind, Meta};
use ocf_metadata::log;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Exit code of a worker that must not be restarted (configuration, watch limits).
pub const EXIT_FATAL: i32 = 6;
/// Ops per commit during large passes.
const BATCH_OPS: usize = 8192;
const BATCH_BYTES: u64 = 256 << 20;

static SIG_PIPE: AtomicI32 = AtomicI32::new(-1);
static LAST_SIG: AtomicU32 = AtomicU32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    LAST_SIG.store(sig as u32, Ordering::SeqCst);
    let fd = SIG_PIPE.load(Ordering::SeqCst);
    if fd >= 0 {
        let b = sig as u8;
        // SAFETY: write(2) is async-signal-safe.
        unsafe { libc::write(fd, &b as *const u8 as *const libc::c_void, 1) };
    }
}

/// Installs the self-pipe signal handlers; returns the read end.
fn setup_signals() -> io::Result<i32> {
    let mut fds = [0i32; 2];
    // SAFETY: valid array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    SIG_PIPE.store(fds[1], Ordering::SeqCst);
    // SAFETY: installing plain handlers.
    unsafe {
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGUSR1] {
            libc::signal(s, on_signal as *const () as libc::sighandler_t);
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    Ok(fds[0])
}

fn drain(fd: i32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut b = [0u8; 64];
    loop {
        // SAFETY: buffer of the given size.
        let n = unsafe { libc::read(fd, b.as_mut_ptr() as *mut libc::c_void, b.len()) };
        if n <= 0 {
            return out;
        }
        out.extend_from_slice(&b[..n as usize]);
    }
}

fn load_config(state_dir: &Path) -> Result<Config, String> {
    let p = Config::path(state_dir);
    let b = std::fs::read(&p).map_err(|e| format!("reading {}: {e}", p.display()))?;
    serde_json::from_slice(&b).map_err(|e| format!("{}: {e}", p.display()))
}

pub fn pidfile(state_dir: &Path) -> PathBuf {
    state_dir.join("daemon.pid")
}

/// The supervisor: holds the pidfile lock, runs the worker, restarts it after a crash,
/// forwards SIGTERM (flush and stop) to it.
pub fn run_supervisor(state_dir: &Path) -> i32 {
    let pf = pidfile(state_dir);
    let f = match std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&pf)
    {
        Ok(f) => f,
        Err(e) => {
            log::error(&format!("opening {}: {e}", pf.display()));
            return 1;
        }
    };
    // SAFETY: valid fd.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        log::error(&format!("another daemon holds {}", pf.display()));
        return 1;
    }
    let _ = f.set_len(0);
    let _ =
        std::os::unix::fs::FileExt::write_at(&f, format!("{}\n", std::process::id()).as_bytes(), 0);
    let sig = match setup_signals() {
        Ok(fd) => fd,
        Err(e) => {
            log::error(&format!("signals: {e}"));
            return 1;
        }
    };
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
    let mut backoff = Duration::from_millis(200);
    let mut stopping = false;
    loop {
        let started = Instant::now();
        let mut child = match std::process::Command::new(&exe)
            .arg("worker")
            .arg("--state-dir")
            .arg(state_dir)
            .env("BULWARK_SUPERVISOR_PID", std::process::id().to_string())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                log::error(&format!("starting the mirror worker: {e}"));
                return 1;
            }
        };
        let code = loop {
            let mut pfd = libc::pollfd {
                fd: sig,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut pfd, 1, 100) };
            for s in drain(sig) {
                let s = s as i32;
                if s == libc::SIGTERM || s == libc::SIGINT {
                    stopping = true;
                }
                // SAFETY: signalling our own child.
                unsafe { libc::kill(child.id() as i32, s) };
            }
            if let Ok(Some(st)) = child.try_wait() {
                use std::os::unix::process::ExitStatusExt;
                break st.code().unwrap_or(128 + st.signal().unwrap_or(0));
            }
        };
        if stopping || code == 0 {
            return code;
        }
        if code == EXIT_FATAL {
            log::error("the mirror worker stopped on a fatal error; not restarting");
            return code;
        }
        if started.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_millis(200);
        }
        log::warn(&format!(
            "the mirror worker exited with {code}; restarting in {} ms",
            backoff.as_millis()
        ));
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(10));
        if !drain(sig).is_empty() && LAST_SIG.load(Ordering::SeqCst) == libc::SIGTERM as u32 {
            return 0;
        }
    }
}

struct Root {
    idx: u32,
    abs: PathBuf,
    sched: config::Schedule,
    journal: Journal,
    /// rel path -> (first seen, first seen epoch ms).
    pending: BTreeMap<Vec<u8>, (Instant, u64)>,
    last_event: Instant,
    last_flush: Instant,
    overflowed: bool,
    /// Set when the last flush left entries to retry.
    backoff_until: Option<Instant>,
    /// The root's st_dev at start (see `open_root`).
    dev: u64,
}

struct Link {
    peer: Peer,
    session: Option<PeerSession>,
    /// What the peer is known to have: local metadata as of the last commit.
    index: HashMap<(u32, Vec<u8>), Meta>,
    state: String,
    last_error: Option<String>,
    retry_at: Instant,
    peer_gen: Option<GenState>,
    /// The peer received data of the current generation.
    got_gen: bool,
}

struct Worker {
    cfg: Config,
    state_dir: PathBuf,
    gen: GenState,
    me: Generation,
    roots: Vec<Root>,
    links: Vec<Link>,
    excludes: Vec<CString>,
    warned: HashSet<PathBuf>,
    status: Status,
    next_verify: Instant,
    dirty_status: bool,
    /// What changed in this generation, for the resync gate.
    changelog: ChangeLog,
}

/// Outcome of sending one root's (or a full pass's) batch to a peer.
type PassResult = Result<(), SessionError>;

fn join(a: &[u8], b: &[u8]) -> Vec<u8> {
    if a.is_empty() {
        return b.to_vec();
    }
    let mut v = a.to_vec();
    v.push(b'/');
    v.extend_from_slice(b);
    v
}

fn parent(rel: &[u8]) -> &[u8] {
    match rel.iter().rposition(|b| *b == b'/') {
        Some(i) => &rel[..i],
        None => b"",
    }
}

fn abs_of(root: &Path, rel: &[u8]) -> PathBuf {
    if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(OsStr::from_bytes(rel))
    }
}

fn minute_of_day() -> u32 {
    // SAFETY: plain libc time calls with valid out-pointers.
    unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&t, &mut tm);
        (tm.tm_hour * 60 + tm.tm_min) as u32
    }
}

/// Walks `rel` below the root of `b` (never following a symlink), calling `f` for each
/// entry including `rel` itself; parents come before children.
fn walk_local(
    b: &mut Beneath,
    rel: &[u8],
    excludes: &[CString],
    f: &mut dyn FnMut(&[u8], Option<Meta>),
) {
    let Ok(dir) = fsops::open_dir_beneath(b, rel) else {
        return;
    };
    fsops::walk_beneath(dir.as_raw_fd(), rel, &|p| config::excluded(excludes, p), f);
}

/// Opens a root for a pass, refusing one whose file system changed since the worker
/// started (an unmounted root looks empty: mirroring it would delete the peer's copy).
fn open_root(root: &Path, dev: u64) -> Result<Beneath, String> {
    let b = Beneath::new(root).map_err(|e| format!("{}: {e}", root.display()))?;
    let st = fsops::fstat(b.root_fd()).map_err(|e| e.to_string())?;
    if st.st_dev != dev {
        return Err(format!(
            "{} is on another file system than when the mirror started (unmounted?): not mirroring it",
            root.display()
        ));
    }
    Ok(b)
}

pub fn run_worker(state_dir: &Path) -> i32 {
    let cfg = match load_config(state_dir) {
        Ok(c) => c,
        Err(e) => {
            log::error(&e);
            return EXIT_FATAL;
        }
    };
    let sig = match setup_signals() {
        Ok(fd) => fd,
        Err(e) => {
            log::error(&format!("signals: {e}"));
            return 1;
        }
    };
    let supervisor: u32 = std::env::var("BULWARK_SUPERVISOR_PID")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(std::process::id());
    let mut status = Status {
        set: cfg.set.clone(),
        node: cfg.node.clone(),
        pid: supervisor,
        worker_pid: std::process::id(),
        started_ms: fsops::now_ms(),
        ..Default::default()
    };
    let fatal = |status: &mut Status, msg: String| {
        log::error(&msg);
        status.fatal = Some(msg);
        status.updated_ms = fsops::now_ms();
        status.save(state_dir);
        EXIT_FATAL
    };
    let gen = match GenState::load(state_dir, &cfg.set) {
        Ok(g) => g,
        Err(e) => return fatal(&mut status, format!("generation state: {e}")),
    };
    let Some(me) = gen.current.clone() else {
        return fatal(
            &mut status,
            "no writer generation in the state dir: start the mirror through the agent".into(),
        );
    };
    let excludes = cfg
        .exclude
        .iter()
        .filter_map(|p| CString::new(p.as_bytes()).ok())
        .collect();
    let mut roots = Vec::new();
    let now = Instant::now();
    for (i, p) in cfg.paths.iter().enumerate() {
        let mut j = match Journal::new(&p.path) {
            Ok(j) => j,
            Err(e) => return fatal(&mut status, e.to_string()),
        };
        if let Err(e) = j.watch_tree(b"", &mut |_, _| {}) {
            return fatal(&mut status, e.to_string());
        }
        let dev = match std::fs::metadata(&p.path) {
            Ok(m) => std::os::unix::fs::MetadataExt::dev(&m),
            Err(e) => return fatal(&mut status, format!("{}: {e}", p.path.display())),
        };
        roots.push(Root {
            dev,
            idx: i as u32,
            abs: p.path.clone(),
            sched: p.schedule.clone(),
            journal: j,
            pending: BTreeMap::new(),
            last_event: now,
            last_flush: now,
            overflowed: false,
            backoff_until: None,
        });
    }
    let links = cfg
        .peers
        .iter()
        .map(|p| Link {
            peer: p.clone(),
            session: None,
            index: HashMap::new(),
            state: "connecting".into(),
            last_error: None,
            retry_at: now,
            peer_gen: None,
            got_gen: false,
        })
        .collect();
    status.watching = true;
    status.watches = roots.iter().map(|r: &Root| r.journal.watch_count()).sum();
    status.generation = gen.clone();
    status.save(state_dir);
    log::info(&format!(
        "mirror of set '{}' watching {} directories in {} paths, generation {}",
        cfg.set,
        status.watches,
        roots.len(),
        me.id
    ));
    let verify = Duration::from_millis(cfg.verify_interval_ms.max(1000));
    let pruned = super::changelog::prune(state_dir, &me);
    if pruned > 0 {
        log::info(&format!(
            "removed {pruned} change logs of generations no longer in this one's history"
        ));
    }
    let changelog = ChangeLog::open(state_dir, &me.id);
    let mut w = Worker {
        changelog,
        state_dir: state_dir.to_path_buf(),
        gen,
        me,
        roots,
        links,
        excludes,
        warned: HashSet::new(),
        status,
        next_verify: now + verify,
        dirty_status: true,
        cfg,
    };
    w.main_loop(sig)
}

impl Worker {
    fn main_loop(&mut self, sig: i32) -> i32 {
        let mut events = Vec::new();
        let mut last_status = Instant::now();
        loop {
            // Connect (and run a complete pass for) peers that are due.
            let now = Instant::now();
            for i in 0..self.links.len() {
                if self.links[i].session.is_none() && self.links[i].retry_at <= now {
                    self.connect(i);
                }
            }
            if Instant::now() >= self.next_verify {
                self.next_verify =
                    Instant::now() + Duration::from_millis(self.cfg.verify_interval_ms.max(1000));
                for i in 0..self.links.len() {
                    if self.links[i].session.is_some() {
                        log::info(&format!("verify pass for peer {}", self.links[i].peer.name));
                        self.full_pass(i);
                    }
                }
            }
            // Flush the roots that are due.
            let minute = minute_of_day();
            let now = Instant::now();
            for r in 0..self.roots.len() {
                if self.due(r, now, minute).is_some_and(|d| d <= now) {
                    self.flush_root(r);
                }
            }
            if self.dirty_status || last_status.elapsed() > Duration::from_secs(5) {
                self.write_status();
                last_status = Instant::now();
            }
            // Sleep until the next deadline or event.
            let now = Instant::now();
            let mut wake = now + Duration::from_secs(5);
            for r in 0..self.roots.len() {
                if let Some(d) = self.due(r, now, minute) {
                    wake = wake.min(d);
                }
                if !self.roots[r].pending.is_empty() && self.roots[r].sched.window.is_some() {
                    wake = wake.min(now + Duration::from_secs(30));
                }
            }
            for l in &self.links {
                if l.session.is_none() {
                    wake = wake.min(l.retry_at);
                }
            }
            wake = wake.min(self.next_verify);
            let timeout = wake.saturating_duration_since(now).as_millis().min(60_000) as i32;
            let mut pfds: Vec<libc::pollfd> = self
                .roots
                .iter()
                .map(|r| libc::pollfd {
                    fd: r.journal.raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            pfds.push(libc::pollfd {
                fd: sig,
                events: libc::POLLIN,
                revents: 0,
            });
            // SAFETY: valid pollfd array.
            unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout) };
            let sigs = drain(sig);
            if sigs
                .iter()
                .any(|s| *s as i32 == libc::SIGTERM || *s as i32 == libc::SIGINT)
            {
                return self.shutdown();
            }
            if sigs.iter().any(|s| *s as i32 == libc::SIGHUP) {
                self.next_verify = Instant::now();
            }
            let force = sigs.iter().any(|s| *s as i32 == libc::SIGUSR1);
            for r in 0..self.roots.len() {
                events.clear();
                if let Err(e) = self.roots[r].journal.read(&mut events) {
                    return self.fatal(e);
                }
                if events.is_empty() {
                    continue;
                }
                let now = Instant::now();
                let now_ms = fsops::now_ms();
                let root = &mut self.roots[r];
                let log = &mut self.changelog;
                root.last_event = now;
                for ev in events.drain(..) {
                    match ev {
                        Event::Changed(p) | Event::NewDir(p) => {
                            if config::excluded(&self.excludes, &p)
                                || p.split(|b| *b == b'/')
                                    .any(|c| c.starts_with(fsops::TMP_PREFIX.as_bytes()))
                            {
                                continue;
                            }
                            if let std::collections::btree_map::Entry::Vacant(v) =
                                root.pending.entry(p)
                            {
                                log.changed(root.idx, v.key());
                                v.insert((now, now_ms));
                            }
                        }
                        Event::Overflow => {
                            log.gap(Some(root.idx));
                            root.overflowed = true
                        }
                    }
                }
                if self.roots[r].overflowed {
                    if let Err(e) = self.rescan_root(r) {
                        return self.fatal(e);
                    }
                }
                self.dirty_status = true;
            }
            if force {
                for r in 0..self.roots.len() {
                    self.flush_root(r);
                }
            }
        }
    }

    /// A peer that had this generation dropped: what follows is not on it. Like DRBD's
    /// new current UUID when a primary loses its peer, a new generation (a child of
    /// this one) begins, so the peer's generation shows it is behind (the resync gate
    /// pulls the rest: this generation's unsynced log records and the new one's).
    fn split_generation(&mut self, peer: &str) {
        let old = self.me.id.clone();
        let g = self.gen.begin_writer(&self.cfg.node);
        if let Err(e) = self.gen.save(&self.state_dir) {
            log::error(&format!("saving the generation state: {e}"));
        }
        super::cluster::publish_generation(&self.cfg.set, &self.gen);
        self.changelog.end();
        self.changelog = ChangeLog::open(&self.state_dir, &g.id);
        self.me = g;
        for l in &mut self.links {
            l.got_gen = false;
        }
        self.status.generation = self.gen.clone();
        self.dirty_status = true;
        log::info(&format!(
            "set '{}': peer {peer} dropped: new generation {} (child of {old})",
            self.cfg.set, self.me.id
        ));
    }

    /// Marks root `r` (or every root) as on every peer in the change log, when every
    /// peer has a session.
    fn mark_synced(&mut self, r: Option<usize>, since_ms: u64) {
        if !self.links.iter().all(|l| l.session.is_some()) {
            return;
        }
        for (i, root) in self.roots.iter().enumerate() {
            if r.is_none_or(|r| r == i) {
                self.changelog.synced(root.idx, since_ms);
            }
        }
    }

    fn fatal(&mut self, e: WatchError) -> i32 {
        let msg = e.to_string();
        log::error(&msg);
        self.status.fatal = Some(msg);
        self.write_status();
        match e {
            WatchError::Limit(_) => EXIT_FATAL,
            WatchError::Io(_) => 1,
        }
    }

    /// When root `r` should be flushed next (None: nothing pending or outside its window).
    fn due(&self, r: usize, _now: Instant, minute: u32) -> Option<Instant> {
        let root = &self.roots[r];
        let oldest = root.pending.values().map(|v| v.0).min()?;
        if !root.sched.in_window(minute) {
            return None;
        }
        // Nobody to send to: the reconnect's complete pass covers these changes.
        if !self.links.iter().any(|l| l.session.is_some()) {
            return None;
        }
        let at = if root.sched.is_change() {
            let settle = Duration::from_millis(self.cfg.settle_ms);
            (root.last_event + settle).min(oldest + settle * 20)
        } else {
            root.last_flush + Duration::from_millis(root.sched.interval_ms)
        };
        // Entries the peer failed to apply are retried, but not in a tight loop.
        Some(match root.backoff_until {
            Some(b) => at.max(b),
            None => at,
        })
    }

    fn connect(&mut self, i: usize) {
        let peer = self.links[i].peer.clone();
        self.links[i].state = "connecting".into();
        match PeerSession::connect(&self.cfg, &peer, &self.me, false) {
            Ok(s) => {
                log::info(&format!(
                    "session to {} open (peer generation {})",
                    peer.name,
                    s.peer_state
                        .latest()
                        .map(|g| g.id.as_str())
                        .unwrap_or("none")
                ));
                self.links[i].peer_gen = Some(s.peer_state.clone());
                self.links[i].session = Some(s);
                self.links[i].got_gen = true;
                self.full_pass(i);
            }
            Err(e) => self.link_failed(i, e),
        }
    }

    fn link_failed(&mut self, i: usize, e: SessionError) {
        if self.links[i].got_gen {
            self.split_generation(&self.links[i].peer.name.clone());
        }
        let l = &mut self.links[i];
        let (state, wait) = match &e {
            SessionError::Refused(r) if r.contains("two writers") => {
                ("busy", Duration::from_secs(1))
            }
            SessionError::Refused(_) => ("refused", Duration::from_secs(30)),
            SessionError::Io(_) => ("down", Duration::from_secs(2)),
        };
        if l.last_error.as_deref() != Some(&e.to_string()) {
            log::error(&format!(
                "mirror of set '{}' to {}: {e}",
                self.cfg.set, l.peer.name
            ));
        }
        l.state = state.into();
        l.last_error = Some(e.to_string());
        l.session = None;
        l.retry_at = Instant::now() + wait;
        self.dirty_status = true;
    }

    /// A complete pass against the peer's manifest; the peer adopts our generation.
    fn full_pass(&mut self, i: usize) {
        let started = Instant::now();
        let started_ms = fsops::now_ms();
        self.links[i].state = "syncing".into();
        self.write_status();
        // Changes journalled from now on are sent after the pass anyway.
        let res = self.full_pass_inner(i);
        match res {
            Ok(()) => {
                // Peer i has everything; the others everything but what is pending.
                for r in 0..self.roots.len() {
                    if self.links.len() == 1 || self.roots[r].pending.is_empty() {
                        self.mark_synced(Some(r), started_ms);
                    }
                }
                let l = &mut self.links[i];
                l.state = "in-sync".into();
                l.last_error = None;
                self.status.last_pass_ms = started.elapsed().as_millis() as u64;
                self.status.last_pass_at_ms = fsops::now_ms();
                self.status.passes += 1;
                log::info(&format!(
                    "complete pass to {} in {} ms",
                    l.peer.name, self.status.last_pass_ms
                ));
            }
            Err(e) => self.link_failed(i, e),
        }
        self.dirty_status = true;
    }

    fn full_pass_inner(&mut self, i: usize) -> PassResult {
        let mut session = self.links[i].session.take().expect("connected");
        let res = (|| -> PassResult {
            let mut manifest: Manifest = session.manifest()?;
            let mut index = HashMap::new();
            let mut batch = Batch::default();
            for r in 0..self.roots.len() {
                let idx = self.roots[r].idx;
                let root_abs = self.roots[r].abs.clone();
                let mut b = open_root(&root_abs, self.roots[r].dev).map_err(SessionError::Io)?;
                let mut local: Vec<(Vec<u8>, Option<Meta>)> = Vec::new();
                walk_local(&mut b, b"", &self.excludes, &mut |rel, m| {
                    local.push((rel.to_vec(), m))
                });
                let mut local_dirs: HashSet<Vec<u8>> = HashSet::new();
                let mut dirs = Vec::new();
                for (rel, meta) in local {
                    let key = (idx, rel.clone());
                    let peer = manifest.remove(&key);
                    let Some(meta) = meta else {
                        self.warn_special(&abs_of(&root_abs, &rel));
                        continue;
                    };
                    if meta.kind == Kind::Dir {
                        local_dirs.insert(rel.clone());
                    }
                    let same = peer.as_ref().is_some_and(|p| {
                        p.meta.same_on_peer(&meta)
                            && (meta.kind != Kind::Symlink
                                || b.readlink(&rel).is_ok_and(|t| t == p.target))
                    });
                    if same {
                        index.insert(key, meta);
                        continue;
                    }
                    let sent = self.send_entry(
                        &mut session,
                        &mut b,
                        idx,
                        &rel,
                        &meta,
                        peer.as_ref().map(|p| &p.meta),
                        &mut batch,
                    )?;
                    if let Some(m) = sent {
                        if m.kind == Kind::Dir {
                            dirs.push((rel.clone(), m.clone()));
                        }
                        batch.sent.push((key, m));
                    }
                    if batch.full() {
                        self.commit(&mut session, &mut batch, &mut index)?;
                    }
                }
                // What the peer has and we do not: delete (the topmost only).
                let mut gone: Vec<Vec<u8>> = manifest
                    .keys()
                    .filter(|(ri, rel)| *ri == idx && !rel.is_empty())
                    .map(|(_, rel)| rel.clone())
                    .filter(|rel| {
                        let p = parent(rel);
                        (p.is_empty() || local_dirs.contains(p))
                            && !config::excluded(&self.excludes, rel)
                    })
                    .collect();
                gone.sort();
                for rel in gone {
                    session.delete(idx, &rel)?;
                    batch.ops += 1;
                }
                manifest.retain(|(ri, _), _| *ri != idx);
                // Directory metadata last, deepest first, so later renames do not touch it.
                dirs.sort_by_key(|d| std::cmp::Reverse(d.0.len()));
                for (rel, m) in dirs {
                    session.dir(idx, &rel, &m)?;
                }
            }
            self.commit(&mut session, &mut batch, &mut index)?;
            let st = session.pass_complete()?;
            self.links[i].peer_gen = Some(st);
            self.links[i].index = index;
            Ok(())
        })();
        if res.is_ok() {
            self.links[i].session = Some(session);
        }
        res
    }

    fn warn_special(&mut self, p: &Path) {
        if self.warned.insert(p.to_path_buf()) {
            log::warn(&format!(
                "{} is not a regular file, directory or symlink (socket, device or fifo): skipped",
                p.display()
            ));
        }
    }

    /// Sends one entry; returns the metadata sent (None: vanished or unreadable here;
    /// its own event follows).
    #[allow(clippy::too_many_arguments)]
    fn send_entry(
        &mut self,
        s: &mut PeerSession,
        b: &mut Beneath,
        idx: u32,
        rel: &[u8],
        meta: &Meta,
        peer_has: Option<&Meta>,
        batch: &mut Batch,
    ) -> Result<Option<Meta>, SessionError> {
        batch.ops += 1;
        let before = s.bytes_sent;
        let local = |e: std::io::Error| {
            log::debug(&format!("{}: {e}", String::from_utf8_lossy(rel)));
        };
        let r = match meta.kind {
            Kind::Dir => {
                s.dir(idx, rel, meta)?;
                Some(meta.clone())
            }
            Kind::Symlink => match b.readlink(rel) {
                Ok(t) => {
                    s.symlink(idx, rel, meta, t)?;
                    Some(meta.clone())
                }
                Err(e) => {
                    local(e);
                    None
                }
            },
            Kind::File => match b.open_file(rel) {
                Ok(f) => s.file(idx, rel, f, peer_has)?,
                Err(e) => {
                    local(e);
                    None
                }
            },
        };
        batch.bytes += s.bytes_sent - before;
        if r.as_ref().is_some_and(|m| m.kind == Kind::File) {
            self.status.files_sent += 1;
        }
        Ok(r)
    }

    fn commit(
        &mut self,
        s: &mut PeerSession,
        batch: &mut Batch,
        index: &mut HashMap<(u32, Vec<u8>), Meta>,
    ) -> Result<Vec<(u32, Vec<u8>)>, SessionError> {
        let failures = s.commit()?;
        let failed: HashSet<String> = failures.iter().map(|(p, _)| p.clone()).collect();
        for (p, why) in failures.iter().take(20) {
            log::warn(&format!("peer {} did not apply {p}: {why}", s.name));
        }
        let mut retry = Vec::new();
        for (key, m) in batch.sent.drain(..) {
            if failed.contains(&*String::from_utf8_lossy(&key.1)) {
                retry.push(key);
            } else {
                index.insert(key, m);
            }
        }
        for key in batch.deleted.drain(..) {
            let prefix = join(&key.1, b"");
            index.remove(&key);
            index.retain(|(ri, rel), _| {
                !(*ri == key.0 && rel.starts_with(&prefix) && rel.get(prefix.len()) == Some(&b'/'))
            });
        }
        self.status.bytes_sent = self
            .links
            .iter()
            .filter_map(|l| l.session.as_ref())
            .map(|s| s.bytes_sent)
            .sum::<u64>()
            + s.bytes_sent;
        batch.ops = 0;
        batch.bytes = 0;
        Ok(retry)
    }

    /// Sends root `r`'s pending changes to every peer in sync.
    fn flush_root(&mut self, r: usize) {
        if self.roots[r].pending.is_empty() {
            return;
        }
        if self.dirty_status {
            // A pass may block on a slow peer: publish the pending changes (and so the
            // lag monitor sees) before it starts.
            self.write_status();
        }
        let started = Instant::now();
        let started_ms = fsops::now_ms();
        let pending = std::mem::take(&mut self.roots[r].pending);
        let mut keep: BTreeMap<Vec<u8>, (Instant, u64)> = BTreeMap::new();
        let mut any = false;
        let mut all_ok = true;
        for i in 0..self.links.len() {
            let Some(mut s) = self.links[i].session.take() else {
                all_ok = false;
                continue;
            };
            any = true;
            let mut index = std::mem::take(&mut self.links[i].index);
            match self.flush_to(&mut s, r, &pending, &mut index) {
                Ok(retry) => {
                    for rel in retry {
                        if let Some(v) = pending.get(&rel) {
                            keep.insert(rel, *v);
                        }
                    }
                    self.links[i].index = index;
                    self.links[i].session = Some(s);
                }
                Err(e) => {
                    all_ok = false;
                    self.links[i].index = index;
                    drop(s);
                    self.link_failed(i, e);
                }
            }
        }
        if all_ok && any && keep.is_empty() {
            self.mark_synced(Some(r), started_ms);
        }
        if !any {
            // No peer in session: keep the changes (a reconnect does a complete pass,
            // but the lag must stay visible until then).
            keep = pending;
        }
        self.roots[r].backoff_until =
            (any && !keep.is_empty()).then(|| Instant::now() + Duration::from_secs(2));
        self.roots[r].pending = keep;
        self.roots[r].last_flush = Instant::now();
        if any {
            self.status.last_pass_ms = started.elapsed().as_millis() as u64;
            self.status.last_pass_at_ms = fsops::now_ms();
            self.status.passes += 1;
        }
        self.dirty_status = true;
    }

    fn flush_to(
        &mut self,
        s: &mut PeerSession,
        r: usize,
        pending: &BTreeMap<Vec<u8>, (Instant, u64)>,
        index: &mut HashMap<(u32, Vec<u8>), Meta>,
    ) -> Result<Vec<Vec<u8>>, SessionError> {
        let idx = self.roots[r].idx;
        let root_abs = self.roots[r].abs.clone();
        let mut b = match open_root(&root_abs, self.roots[r].dev) {
            Ok(b) => b,
            Err(e) => {
                log::error(&e);
                return Ok(pending.keys().cloned().collect());
            }
        };
        let mut batch = Batch::default();
        let mut retry = Vec::new();
        let mut done: HashSet<Vec<u8>> = HashSet::new();
        let mut dirs: Vec<(Vec<u8>, Meta)> = Vec::new();
        let mut work: Vec<Vec<u8>> = pending.keys().cloned().collect();
        work.reverse(); // pop() yields sorted order: parents first
        while let Some(rel) = work.pop() {
            if !done.insert(rel.clone()) {
                continue;
            }
            let key = (idx, rel.clone());
            let local = match b.lstat(&rel) {
                Ok(st) => match fsops::meta_of_stat(&st) {
                    Some(m) => Some(m),
                    None => {
                        self.warn_special(&abs_of(&root_abs, &rel));
                        continue;
                    }
                },
                // Gone, or now below a symlink: either way not ours to send.
                Err(_) => None,
            };
            let known = index.get(&key).cloned();
            match local {
                None => {
                    if known.is_some() && !rel.is_empty() {
                        s.delete(idx, &rel)?;
                        batch.ops += 1;
                        batch.deleted.push(key);
                    }
                }
                Some(meta) => {
                    if known.as_ref().is_some_and(|k| k.same_local(&meta)) {
                        continue;
                    }
                    let was_dir = known.as_ref().is_some_and(|k| k.kind == Kind::Dir);
                    if let Some(m) =
                        self.send_entry(s, &mut b, idx, &rel, &meta, known.as_ref(), &mut batch)?
                    {
                        if m.kind == Kind::Dir {
                            dirs.push((rel.clone(), m.clone()));
                            if !was_dir {
                                // A new directory: everything in it is new to the peer.
                                let mut sub = Vec::new();
                                walk_local(&mut b, &rel, &self.excludes, &mut |p, _| {
                                    if p != rel.as_slice() {
                                        sub.push(p.to_vec())
                                    }
                                });
                                sub.reverse();
                                work.extend(sub);
                            }
                        }
                        batch.sent.push((key, m));
                    }
                }
            }
            if batch.full() {
                retry.extend(self.commit(s, &mut batch, index)?.into_iter().map(|k| k.1));
            }
        }
        dirs.sort_by_key(|d| std::cmp::Reverse(d.0.len()));
        for (rel, m) in dirs {
            s.dir(idx, &rel, &m)?;
        }
        retry.extend(self.commit(s, &mut batch, index)?.into_iter().map(|k| k.1));
        Ok(retry)
    }

    /// After a queue overflow: a fresh journal for this root, and a local rescan of it
    /// against what the peers are known to have (no peer traffic for unchanged entries).
    fn rescan_root(&mut self, r: usize) -> Result<(), WatchError> {
        let started = Instant::now();
        let root_abs = self.roots[r].abs.clone();
        let idx = self.roots[r].idx;
        log::warn(&format!(
            "inotify queue overflow on {}: events were lost; rescanning this path",
            root_abs.display()
        ));
        let mut j = Journal::new(&root_abs)?;
        j.watch_tree(b"", &mut |_, _| {})?;
        self.roots[r].journal = j;
        self.roots[r].overflowed = false;
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        let mut changed: Vec<Vec<u8>> = Vec::new();
        let links = &self.links;
        let mut b = match open_root(&root_abs, self.roots[r].dev) {
            Ok(b) => b,
            Err(e) => {
                log::error(&e);
                return Ok(());
            }
        };
        walk_local(&mut b, b"", &self.excludes, &mut |rel, m| {
            seen.insert(rel.to_vec());
            let key = (idx, rel.to_vec());
            let differs = links.iter().any(|l| match (&m, l.index.get(&key)) {
                (Some(m), Some(k)) => !k.same_local(m),
                (Some(_), None) => true,
                (None, _) => false,
            });
            if differs {
                changed.push(rel.to_vec());
            }
        });
        for l in &self.links {
            for (ri, rel) in l.index.keys() {
                if *ri == idx && !seen.contains(rel) {
                    changed.push(rel.clone());
                }
            }
        }
        let now = Instant::now();
        let now_ms = fsops::now_ms();
        let n = changed.len();
        for c in changed {
            self.roots[r].pending.entry(c).or_insert((now, now_ms));
        }
        log::info(&format!(
            "rescan of {} found {n} changed entries in {} ms",
            root_abs.display(),
            started.elapsed().as_millis()
        ));
        Ok(())
    }

    /// SIGTERM: send everything pending now (ignoring schedules and windows), then exit.
    fn shutdown(&mut self) -> i32 {
        log::info(&format!(
            "mirror of set '{}': stopping, flushing pending changes",
            self.cfg.set
        ));
        for r in 0..self.roots.len() {
            let mut ev = Vec::new();
            let _ = self.roots[r].journal.read(&mut ev);
            let now = Instant::now();
            let now_ms = fsops::now_ms();
            for e in ev {
                match e {
                    Event::Changed(p) | Event::NewDir(p) => {
                        if !self.roots[r].pending.contains_key(&p) {
                            self.changelog.changed(self.roots[r].idx, &p);
                        }
                        self.roots[r].pending.entry(p).or_insert((now, now_ms));
                    }
                    Event::Overflow => self.changelog.gap(Some(self.roots[r].idx)),
                }
            }
        }
        for i in 0..self.links.len() {
            if self.links[i].session.is_none() {
                self.connect(i);
            }
        }
        for r in 0..self.roots.len() {
            self.flush_root(r);
        }
        let left: usize = self.roots.iter().map(|r| r.pending.len()).sum();
        self.changelog.end();
        for l in &mut self.links {
            if let Some(s) = l.session.take() {
                s.close();
            }
            l.state = "stopped".into();
        }
        self.write_status();
        if left > 0 {
            log::warn(&format!("stopped with {left} changes not mirrored (a peer is unreachable); the next start sends them"));
        }
        0
    }

    fn write_status(&mut self) {
        let now_ms = fsops::now_ms();
        let mut pending = 0;
        let mut oldest = 0u64;
        let mut oldest_due = 0u64;
        let minute = minute_of_day();
        for r in &self.roots {
            pending += r.pending.len();
            if let Some(first) = r.pending.values().map(|v| v.1).min() {
                if oldest == 0 || first < oldest {
                    oldest = first;
                }
                let due = if r.sched.in_window(minute) {
                    first + r.sched.interval_ms.max(self.cfg.settle_ms)
                } else {
                    0
                };
                if due != 0 && (oldest_due == 0 || due < oldest_due) {
                    oldest_due = due;
                }
            }
        }
        let st = &mut self.status;
        st.pending = pending;
        st.oldest_pending_ms = oldest;
        st.oldest_due_ms = oldest_due;
        st.updated_ms = now_ms;
        st.generation = self.gen.clone();
        st.watches = self.roots.iter().map(|r| r.journal.watch_count()).sum();
        st.conflicts = status::count_conflicts(&self.state_dir);
        st.peers = self
            .links
            .iter()
            .map(|l| PeerStatus {
                name: l.peer.name.clone(),
                state: l.state.clone(),
                generation: l
                    .peer_gen
                    .as_ref()
                    .and_then(|g| g.latest().map(|x| x.id.clone())),
                consistent: l.peer_gen.as_ref().is_some_and(|g| g.consistent),
                last_error: l.last_error.clone(),
            })
            .collect();
        st.save(&self.state_dir);
        self.dirty_status = false;
    }
}

#[derive(Default)]
struct Batch {
    ops: usize,
    bytes: u64,
    sent: Vec<((u32, Vec<u8>), Meta)>,
    deleted: Vec<(u32, Vec<u8>)>,
}

impl Batch {
    fn full(&self) -> bool {
        self.ops >= BATCH_OPS || self.bytes >= BATCH_BYTES
    }
}
