//! Entry points of the binaries: `bulwark-mirror daemon|worker|receive` and the
//! `bulwark status` report.

use super::daemon;
use super::gen::GenState;
use super::receiver::{self, ReceiverConfig};
use super::status::{self, Status};
use ocf_metadata::log::{self, LogConfig};
use serde::Serialize;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

const USAGE: &str = "usage: bulwark-mirror daemon --state-dir DIR\n       \
bulwark-mirror worker --state-dir DIR\n       \
bulwark-mirror receive --set SET --state-dir DIR --root DIR [--root DIR ...]\n       \
bulwark-mirror pull --set SET --state-dir DIR --root DIR [--root DIR ...]\n       \
bulwark-mirror release --state-dir DIR";

/// `bulwark-mirror`: returns the exit code.
pub fn mirror_main(args: Vec<OsString>) -> i32 {
    let mut it = args.into_iter().skip(1);
    let Some(cmd) = it.next() else {
        eprintln!("{USAGE}");
        return 2;
    };
    let mut set = None;
    let mut state_dir = None;
    let mut roots = Vec::new();
    while let Some(a) = it.next() {
        let v = it.next();
        match (a.to_str(), v) {
            (Some("--set"), Some(v)) => set = Some(v.to_string_lossy().into_owned()),
            (Some("--state-dir"), Some(v)) => state_dir = Some(PathBuf::from(v)),
            (Some("--root"), Some(v)) => roots.push(PathBuf::from(v)),
            _ => {
                eprintln!("bulwark-mirror: bad arguments\n{USAGE}");
                return 2;
            }
        }
    }
    let Some(state_dir) = state_dir.filter(|p| p.is_absolute()) else {
        eprintln!("bulwark-mirror: --state-dir with an absolute path is required\n{USAGE}");
        return 2;
    };
    match cmd.to_str() {
        Some("daemon") => {
            log::init(LogConfig::from_env("bulwark-mirror"));
            daemon::run_supervisor(&state_dir)
        }
        Some("release") => {
            // Frees the versions a resync-gate pull replaced (started detached by it).
            log::init(LogConfig::from_env("bulwark-mirror"));
            match crate::gate::pull::release_trash(&state_dir) {
                Ok(_) => 0,
                Err(e) => {
                    log::error(&format!(
                        "releasing {}: {e}",
                        crate::gate::pull::trash_dir(&state_dir).display()
                    ));
                    1
                }
            }
        }
        Some("worker") => {
            log::init(LogConfig::from_env("bulwark-mirror"));
            daemon::run_worker(&state_dir)
        }
        Some(c @ ("receive" | "pull")) => {
            let pull = c == "pull";
            let mut lc = LogConfig::from_env("bulwark-mirror-receiver");
            lc.tag = "bulwark-mirror-receiver".into();
            log::init(lc);
            let Some(set) = set else {
                eprintln!("bulwark-mirror receive: --set is required");
                return 2;
            };
            if let Err(e) = super::config::check_set_name(&set) {
                eprintln!("bulwark-mirror receive: {e}");
                return 2;
            }
            if roots.is_empty() || roots.iter().any(|r| !r.is_absolute()) {
                eprintln!("bulwark-mirror receive: at least one absolute --root is required");
                return 2;
            }
            // SAFETY: ignoring SIGPIPE so a vanished sender is an error, not a kill; and
            // a batch keeps one fd per directory it touches: allow the hard limit.
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_IGN);
                let mut rl: libc::rlimit = std::mem::zeroed();
                if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 && rl.rlim_cur < rl.rlim_max {
                    rl.rlim_cur = rl.rlim_max.min(1 << 16);
                    libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
                }
            }
            let cfg = ReceiverConfig {
                set,
                roots,
                state_dir,
                node: super::cluster::hostname(),
            };
            let served = if pull {
                crate::gate::serve::serve_stdio(&cfg)
            } else {
                receiver::serve_stdio(&cfg)
            };
            match served {
                Ok(()) => 0,
                Err(e) => {
                    log::error(&e);
                    1
                }
            }
        }
        _ => {
            eprintln!("{USAGE}");
            2
        }
    }
}

#[derive(Debug, Serialize)]
pub struct NodeGen {
    pub node: String,
    pub generation: Option<String>,
    pub consistent: bool,
    pub partial_for: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SetReport {
    pub set: String,
    pub state_dir: PathBuf,
    /// This node when it runs the set's writer; otherwise the node that began this
    /// node's current generation (the last writer it knows of).
    pub writer: Option<String>,
    /// The writer daemon runs on this node.
    pub running: bool,
    pub nodes: Vec<NodeGen>,
    pub lag_ms: u64,
    pub pending: usize,
    pub last_pass_ms: u64,
    pub conflicts: usize,
    pub peers: Vec<status::PeerStatus>,
    pub error: Option<String>,
}

fn node_gen(node: &str, g: &GenState) -> NodeGen {
    NodeGen {
        node: node.to_string(),
        generation: g.current.as_ref().map(|c| c.id.clone()),
        consistent: g.consistent,
        partial_for: g.receiving.as_ref().map(|r| r.id.clone()),
    }
}

/// Collects every set found under `root` (default /var/lib/bulwark/mirror).
pub fn collect(root: &Path) -> Vec<SetReport> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(root) else {
        return out;
    };
    let mut dirs: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let me = super::cluster::node_name();
    for sd in dirs {
        let dir_name = sd
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let gen = GenState::load(&sd, &dir_name).unwrap_or_default();
        let running = super::agent::running_pid(&sd).is_some();
        let st = Status::load(&sd);
        if st.is_none() && gen.current.is_none() && gen.receiving.is_none() {
            continue;
        }
        let set = st
            .as_ref()
            .map(|s| s.set.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| {
                if gen.set.is_empty() {
                    dir_name
                } else {
                    gen.set.clone()
                }
            });
        let now = status::now_ms();
        let mut nodes = vec![node_gen(&me, &gen)];
        let mut peers = Vec::new();
        let (mut lag, mut pending, mut last_pass, mut error) = (0, 0, 0, None);
        if let Some(st) = &st {
            if running {
                lag = st.lag_ms(now);
                pending = st.pending;
            }
            last_pass = st.last_pass_ms;
            error = st.fatal.clone();
            // The peers as the running writer sees them. Once it has stopped they are
            // only what was true at its last pass (since then another node may have
            // written, or this one pulled): not shown as current.
            if running {
                peers = st.peers.clone();
                for p in &st.peers {
                    nodes.push(NodeGen {
                        node: p.name.clone(),
                        generation: p.generation.clone(),
                        consistent: p.consistent,
                        partial_for: None,
                    });
                }
            }
        }
        // A local receiver's state (transport=local) lives in <state_dir>/peer.
        if sd.join("peer").join("generation.json").exists()
            && !nodes.iter().any(|n| n.node == "local")
        {
            let pg = GenState::load(&sd.join("peer"), &set).unwrap_or_default();
            nodes.push(node_gen("local", &pg));
        }
        if super::cluster::cluster_node().is_some() {
            for n in super::cluster::other_nodes() {
                if nodes.iter().any(|x| x.node == n) {
                    continue;
                }
                if let Some((g, c)) = super::cluster::read_generation(&set, &n) {
                    nodes.push(NodeGen {
                        node: n,
                        generation: Some(g.id),
                        consistent: c,
                        partial_for: None,
                    });
                }
            }
        }
        out.push(SetReport {
            set,
            writer: if running {
                Some(me.clone())
            } else {
                Some(gen.origin.clone()).filter(|o| !o.is_empty())
            },
            running,
            nodes,
            lag_ms: lag,
            pending,
            last_pass_ms: last_pass,
            conflicts: status::count_conflicts(&sd),
            peers,
            error,
            state_dir: sd,
        });
    }
    out
}

/// Renders the table of `bulwark status`.
pub fn render_table(reports: &[SetReport]) -> String {
    let mut s = String::new();
    if reports.is_empty() {
        s.push_str("no mirrored sets found\n");
        return s;
    }
    for r in reports {
        s.push_str(&format!(
            "set {}  writer: {}  lag: {:.1}s  pending: {}  last pass: {} ms  conflicts: {}\n",
            r.set,
            r.writer.as_deref().unwrap_or("-"),
            r.lag_ms as f64 / 1000.0,
            r.pending,
            r.last_pass_ms,
            r.conflicts
        ));
        s.push_str(&format!(
            "  {:<20} {:<18} {:<11} {}\n",
            "NODE", "GENERATION", "CONSISTENT", "NOTE"
        ));
        for n in &r.nodes {
            let note = match (&n.partial_for, r.peers.iter().find(|p| p.name == n.node)) {
                (Some(p), _) => format!("partial copy of {p}"),
                (None, Some(p)) => format!(
                    "{}{}",
                    p.state,
                    p.last_error
                        .as_ref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                ),
                _ => String::new(),
            };
            s.push_str(&format!(
                "  {:<20} {:<18} {:<11} {}\n",
                n.node,
                n.generation.as_deref().unwrap_or("-"),
                if n.consistent { "yes" } else { "no" },
                note
            ));
        }
        if let Some(e) = &r.error {
            s.push_str(&format!("  error: {e}\n"));
        }
    }
    s
}
