//! `ocf:bulwark:resync-gate`: first in the service's group. `start` succeeds only when
//! this node holds the newest generation of the set, consistently; when a reachable
//! node holds a newer one, it first pulls every difference back (see [`super::pull`]).

use super::cib;
use super::client::{PullSession, Reach};
use super::pull::{self, PullSpec, Target};
use crate::mirror::agent::{build_config, mirror_bin};
use crate::mirror::config::Config;
use crate::mirror::fsops;
use crate::mirror::gen::{relation, GenState, Generation, Relation, HISTORY_MAX};
use ocf_metadata::{
    log, ActionSpec, AgentSpec, Context, Kind, OcfError, OcfExit, OcfResult, Param, ResourceAgent,
    Unit,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const PARAMS: &[Param] = &[
    Param::new("set", Kind::String, "Name of the mirrored set")
        .required()
        .unique()
        .long("The same set as the file-mirror resource's (e.g. mail): its generations (state dir and CIB attributes bulwark-<set>-gen) decide who holds the newest data."),
    Param::new("paths", Kind::String, "The set's paths")
        .required()
        .long("The same value as the file-mirror's 'paths' (intervals and windows are accepted and ignored here): the directories a pull writes into."),
    Param::new("peers", Kind::String, "Peer nodes")
        .long("Nodes (ssh host names) to ask for their generation and to pull from, separated by spaces or commas. Default: the other cluster nodes (crm_node -l)."),
    Param::new("transport", Kind::Enum(&["ssh", "local"]), "How peers are reached")
        .default("ssh")
        .long("As for file-mirror. ssh: 'bulwark-mirror pull' runs on the peer over ssh. local: the peer is the copy beneath 'target' with its state in 'peer_state_dir' (locally mounted storage, and tests); missing storage counts as an unreachable peer."),
    Param::new("ssh_options", Kind::String, "Extra ssh options")
        .long("Extra arguments for ssh, separated by spaces (no shell is involved). BatchMode=yes is always set."),
    Param::new("target", Kind::String, "Target root on the peer")
        .long("As for file-mirror: the peer's copy of /a/b is <target>/a/b. Required for transport=local; for ssh the default is /."),
    Param::new("receiver_path", Kind::String, "bulwark-mirror on the peer")
        .default("/usr/libexec/bulwark/bulwark-mirror")
        .long("The path of the bulwark-mirror binary on the peers (ssh transport)."),
    Param::new("state_dir", Kind::String, "State directory")
        .long("The set's state dir, shared with file-mirror: generations, change logs and kept conflicts. Default /var/lib/bulwark/mirror/<set>."),
    Param::new("peer_state_dir", Kind::String, "The peer's state directory")
        .long("The set's state dir on the peer. Default: the same as state_dir for ssh; <state_dir>/peer for transport=local."),
    Param::new("exclude", Kind::String, "Exclude patterns")
        .long("The same value as the file-mirror's 'exclude': matching entries are never pulled or removed."),
    Param::new("split_policy", Kind::Enum(&["refuse", "keep-both"]), "What to do after a split brain")
        .default("refuse")
        .long("When this node and a peer both wrote the set since their common generation. refuse: start fails and names both nodes; an admin decides (bulwark resync). keep-both: merge: the peer's changes are applied here, both versions of every conflict are kept (this node's under the conflicts directory) and the result is logged. Nothing is silently discarded."),
    Param::new("pull_timeout", Kind::Duration(Unit::S), "Longest pull")
        .default("10m")
        .long("A pull that takes longer is stopped (the start fails; the next start resumes where it stopped). Keep the start timeout above it."),
];

const ACTIONS: &[ActionSpec] = &[
    ActionSpec::new("start", "15m"),
    ActionSpec::new("stop", "20s"),
    ActionSpec::new("monitor", "20s").interval("30s").depth(0),
    ActionSpec::new("meta-data", "5s"),
    ActionSpec::new("validate-all", "20s"),
];

pub static SPEC: AgentSpec = AgentSpec {
    name: "resync-gate",
    version: "0.1.0",
    shortdesc: "Holds a service back until this node has the newest data of its mirrored set",
    longdesc: "Place it first in the service's group (gate, file-mirror, IP, service). start succeeds only when this node holds the newest generation of the set, consistently. When a reachable node holds a newer one (it took the service over while this node was down), start first pulls back every change made there since the common generation, while the service is stopped everywhere: the peer's change logs make the pull cost what changed, not the size of the tree. A file changed on both sides keeps both versions: the peer's is installed, this node's is kept in the conflicts directory and listed by 'bulwark conflicts'. When the newest generation is on a node that cannot be reached, start fails and names that node; after a split brain it refuses (or merges with split_policy=keep-both). monitor reports 0 while this node holds a consistent copy; stop is cheap and always safe. Admin overrides: 'bulwark resync --set S --from NODE' and 'bulwark resync --set S --accept-data-loss-from NODE'.",
    params: PARAMS,
    actions: ACTIONS,
};

pub struct ResyncGate;

fn set_of(ctx: &Context) -> String {
    ctx.params.str("set").unwrap_or_default().trim().to_string()
}

/// The "started" marker: in the resource-agents runtime dir, so a reboot clears it.
pub fn marker(set: &str) -> PathBuf {
    let dir = std::env::var_os("HA_RSCTMP")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/resource-agents"));
    dir.join(format!("bulwark-resync-gate-{set}.active"))
}

/// The parameters of the last start, for the `bulwark resync` commands.
pub fn saved_params_path(state_dir: &Path) -> PathBuf {
    state_dir.join("gate.json")
}

fn save_params(ctx: &Context, state_dir: &Path) {
    let mut m = BTreeMap::new();
    for p in PARAMS {
        if let Some(v) = ctx.params.str(p.name) {
            m.insert(p.name.to_string(), v.to_string());
        } else if let Some(d) = ctx.params.duration(p.name) {
            m.insert(p.name.to_string(), format!("{}ms", d.as_millis()));
        }
    }
    if let Ok(data) = serde_json::to_vec_pretty(&m) {
        let p = saved_params_path(state_dir);
        if std::fs::read(&p).ok().as_deref() != Some(&data[..]) {
            // A convenience for the admin commands: atomic, but not worth an fsync.
            let _ = super::pull::write_replace(&p, &data);
        }
    }
}

/// A context rebuilt from the saved parameters (admin commands).
pub fn saved_context(state_dir: &Path) -> Result<Context, String> {
    let p = saved_params_path(state_dir);
    let b = std::fs::read(&p).map_err(|e| {
        format!(
            "{}: {e} (the resync gate has not run on this node for this set yet)",
            p.display()
        )
    })?;
    let m: BTreeMap<String, String> =
        serde_json::from_slice(&b).map_err(|e| format!("{}: {e}", p.display()))?;
    let values = ocf_metadata::param::Values::parse(PARAMS, |k| m.get(k).cloned())
        .map_err(|e| e.to_string())?;
    Ok(Context::for_params(ocf_metadata::Action::Start, values))
}

/// The mirror's configuration from the gate's parameters. With transport=local, a
/// single name in `peers` names the local peer (so its CIB attributes match it).
pub fn gate_config(ctx: &Context) -> OcfResult<Config> {
    let mut cfg = build_config(ctx)?;
    if ctx.params.str("transport") == Some("local") {
        if let Some(p) = ctx.params.str("peers") {
            let names = crate::mirror::config::split_list(p);
            if let ([n], Some(peer)) = (names.as_slice(), cfg.peers.first_mut()) {
                peer.name = n.clone();
            }
        }
    }
    Ok(cfg)
}

/// This node's name as the cluster knows it.
pub fn my_name(cfg: &Config) -> String {
    cib::my_node().unwrap_or_else(|| cfg.node.clone())
}

/// Forfeited generations (`bulwark resync --accept-data-loss-from`).
pub fn forfeits_path(state_dir: &Path) -> PathBuf {
    state_dir.join("forfeits.json")
}

pub fn load_forfeits(state_dir: &Path) -> Vec<(String, String)> {
    std::fs::read(forfeits_path(state_dir))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// What is known of one other node.
struct Other {
    name: String,
    gen: Option<Generation>,
    consistent: bool,
    /// Confirmed over the transport (a session is open).
    session: Option<PullSession>,
    why_unreachable: Option<String>,
}

/// The outcome of asking everybody.
pub struct Survey {
    others: Vec<Other>,
    refused: Vec<(String, String)>,
}

fn survey(cfg: &Config, me: &str, deadline: Instant) -> Survey {
    let mut others = Vec::new();
    let mut refused = Vec::new();
    for peer in &cfg.peers {
        match PullSession::connect(cfg, peer, deadline) {
            Reach::Open(s) => others.push(Other {
                name: peer.name.clone(),
                gen: s.state.current.clone(),
                consistent: s.state.consistent && s.state.receiving.is_none(),
                session: Some(*s),
                why_unreachable: None,
            }),
            Reach::Refused(r) => refused.push((peer.name.clone(), r)),
            Reach::Unreachable(e) => {
                log::warn(&format!("peer {} cannot be reached: {e}", peer.name));
                others.push(Other {
                    name: peer.name.clone(),
                    gen: None,
                    consistent: false,
                    session: None,
                    why_unreachable: Some(e),
                })
            }
        }
    }
    // The CIB knows the generations of nodes that are down.
    for n in cib::nodes() {
        if n == me || refused.iter().any(|(r, _)| *r == n) {
            continue;
        }
        let pos = others.iter().position(|o| o.name == n);
        if pos.is_some_and(|i| others[i].session.is_some()) {
            continue; // confirmed over the transport
        }
        if let Some((g, c)) = cib::read_generation(&cfg.set, &n) {
            match pos {
                Some(i) => {
                    others[i].gen = Some(g);
                    others[i].consistent = c;
                }
                None => others.push(Other {
                    name: n.clone(),
                    gen: Some(g),
                    consistent: c,
                    session: None,
                    why_unreachable: Some("not a configured peer, or down".into()),
                }),
            }
        }
    }
    Survey { others, refused }
}

fn merged(a: &Generation, b: &Generation) -> Generation {
    let mut history = vec![a.id.clone(), b.id.clone()];
    for h in a.history.iter().chain(b.history.iter()) {
        if !history.contains(h) {
            history.push(h.clone());
        }
    }
    history.truncate(HISTORY_MAX);
    Generation {
        id: fsops::random_hex(),
        history,
    }
}

fn short(g: &Generation) -> &str {
    &g.id
}

/// Brings this node to the newest generation, or explains why it cannot.
pub fn gate(cfg: &Config, policy: &str, deadline: Instant) -> OcfResult<Option<pull::Report>> {
    let sd = &cfg.state_dir;
    std::fs::create_dir_all(sd)
        .map_err(|e| OcfError::io(format!("creating {}", sd.display()), e))?;
    let me = my_name(cfg);
    let mut mine = GenState::load(sd, &cfg.set)
        .map_err(|e| OcfError::io("reading the generation state", e))?;
    let forfeits = load_forfeits(sd);
    let mut sv = survey(cfg, &me, deadline);
    if let Some((n, why)) = sv.refused.first() {
        return Err(OcfError::generic(format!(
            "set '{}': node {n} refused to be asked: {why}",
            cfg.set
        )));
    }
    sv.others.retain(|o| {
        !o.gen
            .as_ref()
            .is_some_and(|g| forfeits.iter().any(|(n, id)| *n == o.name && *id == g.id))
    });
    let cur = mine.current.clone();
    let mut newer = Vec::new();
    let mut diverged = Vec::new();
    for (i, o) in sv.others.iter().enumerate() {
        let Some(g) = &o.gen else { continue };
        match cur.as_ref().map(|c| relation(g, c)) {
            None | Some(Relation::Newer) => newer.push(i),
            Some(Relation::Diverged) | Some(Relation::Unrelated) => diverged.push(i),
            _ => {}
        }
    }
    let cur_s = cur
        .as_ref()
        .map(|g| g.id.clone())
        .unwrap_or_else(|| "none".into());
    if newer.is_empty() && diverged.is_empty() {
        if let Some(r) = &mine.receiving {
            return Err(OcfError::generic(format!(
                "set '{}': this node's copy is partial (a pull or pass for generation {} did not finish) \
                 and no reachable node holds that generation",
                cfg.set, r.id
            )));
        }
        if cur.is_some() && !mine.consistent {
            return Err(OcfError::generic(format!(
                "set '{}': this node's copy of generation {cur_s} is not consistent",
                cfg.set
            )));
        }
        for o in sv.others.drain(..) {
            if let Some(s) = o.session {
                s.close();
            }
        }
        log::info(&format!(
            "set '{}': this node ({me}) holds the newest generation ({cur_s}), consistently",
            cfg.set
        ));
        cib::publish(&cfg.set, &me, &mine);
        return Ok(None);
    }
    let (idx, target, base) = if !newer.is_empty() {
        // The newest of the newer ones; they must agree with each other.
        let best = newer.iter().copied().find(|&i| {
            let gi = sv.others[i].gen.as_ref().unwrap();
            newer.iter().all(|&j| {
                matches!(
                    relation(gi, sv.others[j].gen.as_ref().unwrap()),
                    Relation::Same | Relation::Newer
                )
            })
        });
        let Some(i) = best else {
            let names: Vec<&str> = newer.iter().map(|&i| sv.others[i].name.as_str()).collect();
            return Err(OcfError::generic(format!(
                "set '{}': nodes {} hold newer generations that diverged from each other: resolve with \
                 'bulwark resync --set {} --from NODE'",
                cfg.set,
                names.join(", "),
                cfg.set
            )));
        };
        let o = &sv.others[i];
        let g = o.gen.clone().unwrap();
        if o.session.is_none() {
            return Err(OcfError::generic(format!(
                "set '{}': the newest generation ({}) is on node {}, which cannot be reached ({}); this node \
                 ({me}) has {cur_s}. Start the service where the data is, bring {} back, or accept the \
                 loss explicitly: bulwark resync --set {} --accept-data-loss-from {}",
                cfg.set,
                short(&g),
                o.name,
                o.why_unreachable.as_deref().unwrap_or("unreachable"),
                o.name,
                cfg.set,
                o.name
            )));
        }
        if !o.consistent {
            return Err(OcfError::generic(format!(
                "set '{}': node {} holds generation {} but its copy is not consistent",
                cfg.set,
                o.name,
                short(&g)
            )));
        }
        (
            i,
            Target::Adopt(g.clone()),
            cur.as_ref().map(|c| c.id.clone()),
        )
    } else {
        let i = diverged[0];
        let o = &sv.others[i];
        let g = o.gen.clone().unwrap();
        let c = cur.clone().unwrap();
        let base = pull::common_base(&c, &g);
        if policy != "keep-both" {
            return Err(OcfError::generic(format!(
                "set '{}': split brain: this node ({me}, generation {cur_s}) and node {} (generation {}) both \
                 wrote since {}; split_policy=refuse. Decide: bulwark resync --set {} --from {} (merges, keeping \
                 both versions of every conflict), or --accept-data-loss-from {}",
                cfg.set,
                o.name,
                short(&g),
                base.as_deref().map(|b| format!("their common generation {b}")).unwrap_or_else(|| "unrelated generations".into()),
                cfg.set,
                o.name,
                o.name
            )));
        }
        if o.session.is_none() {
            return Err(OcfError::generic(format!(
                "set '{}': split brain with node {}, which cannot be reached ({}): nothing to merge with",
                cfg.set,
                o.name,
                o.why_unreachable.as_deref().unwrap_or("unreachable")
            )));
        }
        log::warn(&format!(
            "set '{}': split brain between {me} ({cur_s}) and {} ({}): split_policy=keep-both, merging",
            cfg.set,
            o.name,
            short(&g)
        ));
        (i, Target::Merge(merged(&c, &g)), base)
    };
    let mut sess = sv.others[idx].session.take().unwrap();
    for o in sv.others.drain(..) {
        if let Some(s) = o.session {
            s.close();
        }
    }
    let peer_gen = match &target {
        Target::Adopt(g) => g.clone(),
        Target::Merge(_) => sess.state.current.clone().unwrap(),
    };
    let peer = sess.name.clone();
    let spec = PullSpec {
        cfg,
        me: &me,
        peer: &peer,
        peer_gen: &peer_gen,
        base,
        target,
        deadline,
    };
    let res = pull::pull(&spec, &mut sess, sd, &mut mine);
    sess.close();
    let report =
        res.map_err(|e| OcfError::generic(format!("set '{}': pull from {peer}: {e}", cfg.set)))?;
    cib::publish(&cfg.set, &me, &mine);
    Ok(Some(report))
}

impl ResourceAgent for ResyncGate {
    fn spec(&self) -> &'static AgentSpec {
        &SPEC
    }

    fn validate(&self, ctx: &Context) -> OcfResult<()> {
        let cfg = gate_config(ctx)?;
        if !cfg.mirror_bin.is_file() {
            return Err(OcfError::not_installed(format!(
                "{} is not installed",
                mirror_bin().display()
            )));
        }
        Ok(())
    }

    fn start(&self, ctx: &Context) -> OcfResult<()> {
        let cfg = gate_config(ctx)?;
        std::fs::create_dir_all(&cfg.state_dir)
            .map_err(|e| OcfError::io(format!("creating {}", cfg.state_dir.display()), e))?;
        save_params(ctx, &cfg.state_dir);
        let timeout = ctx
            .params
            .duration("pull_timeout")
            .unwrap_or(Duration::from_secs(600));
        let deadline = (Instant::now() + timeout).min(ctx.deadline(Duration::from_secs(900)));
        let policy = ctx.params.str("split_policy").unwrap_or("refuse");
        gate(&cfg, policy, deadline)?;
        let m = marker(&cfg.set);
        if let Some(d) = m.parent() {
            std::fs::create_dir_all(d)
                .map_err(|e| OcfError::io(format!("creating {}", d.display()), e))?;
        }
        std::fs::write(&m, b"").map_err(|e| OcfError::io(format!("writing {}", m.display()), e))?;
        Ok(())
    }

    fn stop(&self, ctx: &Context) -> OcfResult<()> {
        match std::fs::remove_file(marker(&set_of(ctx))) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(OcfError::io("removing the gate's marker", e))
            }
            _ => Ok(()),
        }
    }

    fn monitor(&self, ctx: &Context) -> OcfResult<OcfExit> {
        let set = set_of(ctx);
        if !marker(&set).exists() {
            return Ok(OcfExit::NotRunning);
        }
        let sd = crate::mirror::agent::state_dir_of(ctx, &set);
        let st = GenState::load(&sd, &set)
            .map_err(|e| OcfError::io("reading the generation state", e))?;
        if let Some(r) = &st.receiving {
            return Err(OcfError::generic(format!(
                "set '{set}': this node is receiving generation {} from another writer: it no longer holds the newest data",
                r.id
            )));
        }
        if st.current.is_some() && !st.consistent {
            return Err(OcfError::generic(format!(
                "set '{set}': this node's copy is no longer consistent"
            )));
        }
        Ok(OcfExit::Success)
    }
}
