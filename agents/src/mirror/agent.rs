//! `ocf:bulwark:file-mirror`: start launches the set's mirror daemon (supervised, with a
//! pidfile) after checking that this node holds the newest consistent generation and
//! beginning a new one; stop flushes and stops it; monitor checks it and reports lag.

use super::cluster;
use super::config::{self, Config, Peer, Transport};
use super::daemon;
use super::gen::{relation, GenState, Relation};
use super::session;
use super::status::{self, Status};
use ocf_metadata::{
    log, ActionSpec, AgentSpec, Context, Kind, OcfError, OcfExit, OcfResult, Param, ResourceAgent,
    Unit,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const PARAMS: &[Param] = &[
    Param::new("set", Kind::String, "Name of the mirrored set")
        .required()
        .unique()
        .long("The set's name (e.g. mail): names its state dir, its CIB attributes (bulwark-<set>-gen) and its generations. Letters, digits, '-', '_' and '.'."),
    Param::new("paths", Kind::String, "Paths and their intervals")
        .required()
        .long("Absolute directories to mirror, separated by spaces or commas, each with its interval: PATH[:INTERVAL][@HH:MM-HH:MM]. INTERVAL is 'change' (the default: as soon as a change settles) or a duration (30s, 1m, 1h); an optional daily window limits a path to low-load hours, e.g. /var/spool/mail:1m /srv/www:1h@01:00-05:00. Symlinks are mirrored as links, never followed."),
    Param::new("peers", Kind::String, "Peer nodes")
        .long("Nodes (ssh host names) to mirror to, separated by spaces or commas; this node is left out, so every node can be given the same list. Default: the other cluster nodes (crm_node -l)."),
    Param::new("transport", Kind::Enum(&["ssh", "local"]), "How peers are reached")
        .default("ssh")
        .long("ssh: the receiver runs on the peer over ssh (one long-lived session per peer; uses the cluster's existing keys). local: the receiver runs here and writes beneath 'target' (mirroring to locally mounted storage, and tests)."),
    Param::new("ssh_options", Kind::String, "Extra ssh options")
        .long("Extra arguments for ssh, separated by spaces (no shell is involved), e.g. '-i /root/.ssh/mirror_ed25519 -p 2222'. BatchMode=yes is always set."),
    Param::new("target", Kind::String, "Target root on the peer")
        .long("The directory the copy is written beneath on the peer: the copy of /a/b is <target>/a/b. Required for transport=local; for ssh the default is / (the same paths as here)."),
    Param::new("receiver_path", Kind::String, "Receiver binary on the peer")
        .default("/usr/libexec/bulwark/bulwark-mirror")
        .long("The path of the bulwark-mirror binary on the peers (ssh transport)."),
    Param::new("state_dir", Kind::String, "State directory")
        .long("Where generations, the pidfile, the status and kept conflicts live. Default /var/lib/bulwark/mirror/<set>."),
    Param::new("peer_state_dir", Kind::String, "The receiver's state directory")
        .long("The receiver's state directory on the peer. Default: the same as state_dir for ssh; <state_dir>/peer for transport=local."),
    Param::new("max_lag", Kind::Duration(Unit::S), "Lag that degrades the monitor")
        .default("5m")
        .long("When a change has waited longer than this beyond its path's schedule, monitor logs it and reports degraded (190)."),
    Param::new("verify_interval", Kind::Duration(Unit::S), "Full verify interval")
        .default("1d")
        .long("How often a complete pass compares the whole tree with each peer (a safety net; changes normally come from the journal)."),
    Param::new("exclude", Kind::String, "Exclude patterns")
        .long("Shell patterns (fnmatch) separated by spaces; matched against the name and the path relative to its mirrored directory, e.g. '*.tmp cache/*'."),
    Param::new("settle", Kind::Duration(Unit::Ms), "Quiet time for 'change' paths")
        .default("10ms")
        .long("A 'change' path is sent once it has been quiet this long (at most 20 times this after the first change)."),
];

const ACTIONS: &[ActionSpec] = &[
    ActionSpec::new("start", "60s"),
    ActionSpec::new("stop", "120s"),
    ActionSpec::new("monitor", "20s").interval("10s").depth(0),
    ActionSpec::new("meta-data", "5s"),
    ActionSpec::new("validate-all", "20s"),
];

pub static SPEC: AgentSpec = AgentSpec {
    name: "file-mirror",
    version: "0.1.0",
    shortdesc: "Mirrors directories to peers, each at its own interval",
    longdesc: "Mirrors chosen directories to the peer nodes, each path at its own interval (on change, every N seconds, or in a daily window). Changes come from an inotify journal, so a pass costs what changed, not the size of the tree. The receiver on each peer applies files atomically and durably, keeps mode, owner, nanosecond mtime and symlinks, rejects path escapes, and refuses a sender whose generation is stale. start refuses unless this node holds the newest consistent generation of the set, then begins a new generation; stop flushes pending changes.",
    params: PARAMS,
    actions: ACTIONS,
};

pub struct FileMirror;

fn bad(msg: impl Into<String>) -> OcfError {
    OcfError::configured(msg)
}

/// The state dir of a set (parameter or default).
pub fn state_dir_of(ctx: &Context, set: &str) -> PathBuf {
    ctx.params
        .str("state_dir")
        .map(PathBuf::from)
        .unwrap_or_else(|| default_state_dir(set))
}

pub fn default_state_dir(set: &str) -> PathBuf {
    Path::new("/var/lib/bulwark/mirror").join(set)
}

/// Where the daemon/receiver binary is: next to this agent, else /usr/libexec/bulwark.
pub fn mirror_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BULWARK_MIRROR_BIN") {
        return PathBuf::from(p);
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            let sib = dir.join("bulwark-mirror");
            if sib.is_file() {
                return sib;
            }
        }
    }
    PathBuf::from("/usr/libexec/bulwark/bulwark-mirror")
}

/// Builds the daemon configuration from the parameters (syntax only).
pub fn build_config(ctx: &Context) -> OcfResult<Config> {
    let p = &ctx.params;
    let set = p.str("set").unwrap_or_default().trim().to_string();
    config::check_set_name(&set).map_err(bad)?;
    let paths = config::parse_paths(p.str("paths").unwrap_or_default()).map_err(bad)?;
    let state_dir = state_dir_of(ctx, &set);
    if !state_dir.is_absolute() {
        return Err(bad("state_dir must be an absolute path"));
    }
    let transport = p.str("transport").unwrap_or("ssh");
    let node = cluster::node_name();
    let target = match (transport, p.str("target")) {
        (_, Some(t)) => PathBuf::from(t.trim()),
        ("local", None) => {
            return Err(bad(
                "transport=local needs 'target' (the directory the copy is written beneath)",
            ))
        }
        _ => PathBuf::from("/"),
    };
    if !target.is_absolute() {
        return Err(bad("target must be an absolute path"));
    }
    let peers = match transport {
        "local" => {
            for ps in &paths {
                let peer_root = target.join(ps.path.strip_prefix("/").unwrap_or(&ps.path));
                if let Some(o) = paths
                    .iter()
                    .find(|o| peer_root.starts_with(&o.path) || o.path.starts_with(&peer_root))
                {
                    return Err(bad(format!(
                        "target {} would put the copy of {} inside or around the mirrored path {}",
                        target.display(),
                        ps.path.display(),
                        o.path.display()
                    )));
                }
            }
            let peer_state = p
                .str("peer_state_dir")
                .map(PathBuf::from)
                .unwrap_or_else(|| state_dir.join("peer"));
            vec![Peer {
                name: "local".into(),
                transport: Transport::Local {
                    target,
                    state_dir: peer_state,
                },
            }]
        }
        _ => {
            // One 'peers' value for every node (e.g. "a b"): this node is never its own peer.
            let names: Vec<String> = match p.str("peers") {
                Some(s) => config::split_list(s),
                None => cluster::other_nodes(),
            }
            .into_iter()
            .filter(|n| *n != node)
            .collect();
            if names.is_empty() {
                return Err(bad(
                    "no peers: set 'peers' (no running cluster to take the other nodes from)",
                ));
            }
            let options = p
                .str("ssh_options")
                .map(config::split_list_ws)
                .unwrap_or_default();
            let peer_state = p
                .str("peer_state_dir")
                .map(PathBuf::from)
                .unwrap_or_else(|| state_dir.clone());
            let receiver_path = p
                .str("receiver_path")
                .unwrap_or("/usr/libexec/bulwark/bulwark-mirror")
                .to_string();
            names
                .into_iter()
                .map(|n| Peer {
                    name: n.clone(),
                    transport: Transport::Ssh {
                        host: n,
                        options: options.clone(),
                        receiver_path: receiver_path.clone(),
                        state_dir: peer_state.clone(),
                        target: target.clone(),
                    },
                })
                .collect()
        }
    };
    let ms = |name: &str| p.duration(name).map(|d| d.as_millis() as u64).unwrap_or(0);
    Ok(Config {
        set,
        node,
        paths,
        peers,
        state_dir,
        max_lag_ms: ms("max_lag"),
        verify_interval_ms: ms("verify_interval").max(1000),
        exclude: p
            .str("exclude")
            .map(config::split_list_ws)
            .unwrap_or_default(),
        settle_ms: ms("settle").max(1),
        mirror_bin: mirror_bin(),
    })
}

/// The pid in the pidfile if that process is a live bulwark-mirror daemon.
pub fn running_pid(state_dir: &Path) -> Option<i32> {
    let s = std::fs::read_to_string(daemon::pidfile(state_dir)).ok()?;
    let pid: i32 = s.trim().parse().ok()?;
    if pid <= 0 {
        return None;
    }
    // SAFETY: signal 0 only checks existence.
    if unsafe { libc::kill(pid, 0) } != 0 {
        return None;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let words: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    // The same directory, also when one of the paths goes through a symlink.
    let want = std::fs::canonicalize(state_dir).ok();
    let is_daemon = words.iter().any(|w| *w == b"daemon")
        && words.iter().any(|w| {
            *w == state_dir.as_os_str().as_encoded_bytes()
                || (want.is_some()
                    && std::fs::canonicalize(std::path::Path::new(
                        <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(w),
                    ))
                    .ok()
                        == want)
        });
    is_daemon.then_some(pid)
}

impl FileMirror {
    /// Guarantee 3: this node must hold the newest known generation, consistently.
    fn check_newest(&self, cfg: &Config, mine: &GenState) -> OcfResult<()> {
        mine.may_write().map_err(OcfError::generic)?;
        let Some(cur) = &mine.current else {
            // A fresh node: refuse only if some peer has data.
            return self.check_peers(cfg, None);
        };
        if cluster::cluster_node().is_some() {
            for n in cluster::other_nodes() {
                if let Some((g, _)) = cluster::read_generation(&cfg.set, &n) {
                    match relation(&g, cur) {
                        Relation::Newer => {
                            return Err(OcfError::generic(format!(
                                "node {n} holds a newer generation ({}) of set '{}' than this node ({}): \
                                 its changes must be resynced first (resync-gate)",
                                g.id, cfg.set, cur.id
                            )))
                        }
                        Relation::Diverged => {
                            return Err(OcfError::generic(format!(
                                "node {n} and this node both wrote set '{}' since their common generation \
                                 (split brain): resolve with the resync gate",
                                cfg.set
                            )))
                        }
                        _ => {}
                    }
                }
            }
        }
        self.check_peers(cfg, Some(cur))
    }

    fn check_peers(&self, cfg: &Config, cur: Option<&super::gen::Generation>) -> OcfResult<()> {
        for peer in &cfg.peers {
            let info = match session::query(cfg, peer) {
                Ok(info) => info,
                Err(e) => {
                    log::warn(&format!(
                        "could not ask {} for its generation: {e}",
                        peer.name
                    ));
                    continue;
                }
            };
            if info.writer_running {
                return Err(OcfError::generic(format!(
                    "peer {} runs the writer of set '{}' right now: refusing a second writer",
                    peer.name, cfg.set
                )));
            }
            let Some(theirs) = info.state.latest() else {
                continue;
            };
            let newer = match cur {
                None => true,
                Some(c) => matches!(
                    relation(theirs, c),
                    Relation::Newer | Relation::Diverged | Relation::Unrelated
                ),
            };
            if newer {
                return Err(OcfError::generic(format!(
                    "peer {} holds generation {} of set '{}', which this node ({}) does not descend from: \
                     refusing to mirror over it (resync first)",
                    peer.name,
                    theirs.id,
                    cfg.set,
                    cur.map(|g| g.id.as_str()).unwrap_or("no data")
                )));
            }
        }
        Ok(())
    }
}

impl ResourceAgent for FileMirror {
    fn spec(&self) -> &'static AgentSpec {
        &SPEC
    }

    fn validate(&self, ctx: &Context) -> OcfResult<()> {
        let cfg = build_config(ctx)?;
        for p in &cfg.paths {
            match std::fs::symlink_metadata(&p.path) {
                Ok(md) if md.is_dir() => {}
                Ok(_) => {
                    return Err(OcfError::args(format!(
                        "{} is not a directory",
                        p.path.display()
                    )))
                }
                Err(e) => return Err(OcfError::args(format!("{}: {e}", p.path.display()))),
            }
        }
        if !cfg.mirror_bin.is_file() {
            return Err(OcfError::not_installed(format!(
                "the mirror daemon {} is not installed",
                cfg.mirror_bin.display()
            )));
        }
        Ok(())
    }

    fn start(&self, ctx: &Context) -> OcfResult<()> {
        let cfg = build_config(ctx)?;
        let sd = cfg.state_dir.clone();
        if let Some(pid) = running_pid(&sd) {
            log::info(&format!(
                "mirror of set '{}' already running (pid {pid})",
                cfg.set
            ));
            return Ok(());
        }
        std::fs::create_dir_all(&sd)
            .map_err(|e| OcfError::io(format!("creating {}", sd.display()), e))?;
        let mut gen = GenState::load(&sd, &cfg.set)
            .map_err(|e| OcfError::io("reading the generation state", e))?;
        self.check_newest(&cfg, &gen)?;
        let g = gen.begin_writer(&cfg.node);
        gen.save(&sd)
            .map_err(|e| OcfError::io("saving the generation state", e))?;
        cluster::publish_generation(&cfg.set, &gen);
        log::info(&format!(
            "set '{}': this node is the writer, new generation {}",
            cfg.set, g.id
        ));
        let data = serde_json::to_vec_pretty(&cfg).map_err(|e| OcfError::generic(e.to_string()))?;
        super::fsops::write_atomic(&Config::path(&sd), &data)
            .map_err(|e| OcfError::io("writing config.json", e))?;
        let _ = std::fs::remove_file(Status::path(&sd));
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(sd.join("daemon.log"))
            .map_err(|e| OcfError::io("opening daemon.log", e))?;
        let mut cmd = std::process::Command::new(&cfg.mirror_bin);
        cmd.arg("daemon")
            .arg("--state-dir")
            .arg(&sd)
            .stdin(std::process::Stdio::null())
            .stdout(
                logf.try_clone()
                    .map_err(|e| OcfError::io("daemon.log", e))?,
            )
            .stderr(logf);
        // SAFETY: setsid in the child before exec detaches it from our session.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| OcfError::io(format!("starting {}", cfg.mirror_bin.display()), e))?;
        let pid = child.id();
        // Wait until its watches are in place (changes from now on are journalled).
        let deadline = ctx.deadline(Duration::from_secs(60));
        loop {
            if let Some(st) = Status::load(&sd) {
                if st.pid == pid {
                    if let Some(f) = st.fatal {
                        let _ = child.wait();
                        return Err(OcfError::generic(f));
                    }
                    if st.watching {
                        // Reap it in the background is not possible; it is detached by setsid
                        // and reparented when we exit.
                        std::mem::forget(child);
                        log::info(&format!("mirror of set '{}' started (pid {pid})", cfg.set));
                        return Ok(());
                    }
                }
            }
            if let Ok(Some(code)) = child.try_wait() {
                let why = Status::load(&sd).and_then(|s| s.fatal).unwrap_or_else(|| {
                    format!(
                        "the mirror daemon exited with {code} (see {})",
                        sd.join("daemon.log").display()
                    )
                });
                return Err(OcfError::generic(why));
            }
            if Instant::now() > deadline {
                // SAFETY: signalling the child we started.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                let _ = child.wait();
                return Err(OcfError::generic(
                    "the mirror daemon did not get ready before the start timeout",
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&self, ctx: &Context) -> OcfResult<()> {
        let set = ctx.params.str("set").unwrap_or_default().trim().to_string();
        let sd = state_dir_of(ctx, &set);
        let Some(pid) = running_pid(&sd) else {
            return Ok(());
        };
        // SAFETY: signalling the daemon found through its pidfile.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = ctx.deadline(Duration::from_secs(120));
        while Instant::now() < deadline {
            if running_pid(&sd).is_none() {
                // The daemon's last status says what its final flush could not send.
                match Status::load(&sd).map(|s| s.pending).unwrap_or(0) {
                    0 => log::info(&format!("mirror of set '{set}' stopped after flushing")),
                    n => log::warn(&format!(
                        "mirror of set '{set}' stopped with {n} changes not mirrored; the next start sends them"
                    )),
                }
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        log::warn(&format!(
            "mirror of set '{set}' did not finish flushing before the stop timeout: killed; \
             the next start sends what is left"
        ));
        let worker = Status::load(&sd).map(|s| s.worker_pid as i32).unwrap_or(0);
        // SAFETY: the daemon and its worker, found through the pidfile and status.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            if worker > 0 {
                libc::kill(worker, libc::SIGKILL);
            }
        }
        for _ in 0..100 {
            if running_pid(&sd).is_none() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(OcfError::generic(format!(
            "could not stop the mirror daemon (pid {pid})"
        )))
    }

    fn monitor(&self, ctx: &Context) -> OcfResult<OcfExit> {
        let set = ctx.params.str("set").unwrap_or_default().trim().to_string();
        let sd = state_dir_of(ctx, &set);
        let Some(pid) = running_pid(&sd) else {
            if let Some(f) = Status::load(&sd).and_then(|s| s.fatal) {
                if !ctx.is_probe() {
                    return Err(OcfError::generic(f));
                }
            }
            return Ok(OcfExit::NotRunning);
        };
        let Some(st) = Status::load(&sd) else {
            return Ok(OcfExit::Success);
        };
        if let Some(f) = &st.fatal {
            return Err(OcfError::generic(format!("mirror daemon (pid {pid}): {f}")));
        }
        if let Some(p) = st.peers.iter().find(|p| p.state == "refused") {
            return Err(OcfError::generic(format!(
                "peer {} refuses this writer: {}",
                p.name,
                p.last_error.as_deref().unwrap_or("")
            )));
        }
        let now = status::now_ms();
        let max_lag = ctx
            .params
            .duration("max_lag")
            .unwrap_or(Duration::from_secs(300))
            .as_millis() as u64;
        let overdue = st.overdue_ms(now);
        if max_lag > 0 && overdue > max_lag {
            log::warn(&format!(
                "mirror of set '{set}' lags: {} changes pending, the oldest {} s old ({} s overdue, max_lag {} s)",
                st.pending,
                st.lag_ms(now) / 1000,
                overdue / 1000,
                max_lag / 1000
            ));
            return Ok(OcfExit::Degraded);
        }
        Ok(OcfExit::Success)
    }
}
