//! The admin side: `bulwark resync --set S --from NODE`, `bulwark resync --set S
//! --accept-data-loss-from NODE` and `bulwark conflicts --set S`. Every decision is
//! logged (syslog and stderr, like the agents).

use super::agent::{forfeits_path, gate_config, load_forfeits, my_name, saved_context};
use super::cib;
use super::client::{PullSession, Reach};
use super::pull::{self, PullSpec, Target};
use super::records;
use crate::mirror::fsops;
use crate::mirror::gen::{relation, GenState, Generation, Relation, HISTORY_MAX};
use ocf_metadata::log;
use std::path::Path;
use std::time::{Duration, Instant};

/// An explicit pull from `node`, whatever the generations say (a split brain is
/// merged keeping both versions of every conflict). Returns what to print.
pub fn resync_from(state_dir: &Path, node: &str) -> Result<String, String> {
    let ctx = saved_context(state_dir)?;
    let cfg = gate_config(&ctx).map_err(|e| e.to_string())?;
    let me = my_name(&cfg);
    let peer = cfg.peers.iter().find(|p| p.name == node).ok_or_else(|| {
        format!(
            "{node} is not a peer of set '{}' (peers: {})",
            cfg.set,
            cfg.peers
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })?;
    log::warn(&format!(
        "set '{}': admin-requested resync of {me} from {node}",
        cfg.set
    ));
    let deadline = Instant::now()
        + ctx
            .params
            .duration("pull_timeout")
            .unwrap_or(Duration::from_secs(600));
    let mut sess = match PullSession::connect(&cfg, peer, deadline) {
        Reach::Open(s) => s,
        Reach::Refused(r) => return Err(format!("{node} refused: {r}")),
        Reach::Unreachable(e) => return Err(format!("{node} cannot be reached: {e}")),
    };
    let mut mine = GenState::load(&cfg.state_dir, &cfg.set).map_err(|e| e.to_string())?;
    let Some(theirs) = sess.state.current.clone() else {
        return Err(format!("{node} holds no data of set '{}'", cfg.set));
    };
    let (target, base) = match mine.current.clone() {
        None => (Target::Adopt(theirs.clone()), None),
        Some(c) => match relation(&theirs, &c) {
            Relation::Same if mine.consistent && mine.receiving.is_none() => {
                sess.close();
                return Ok(format!(
                    "set '{}': {me} and {node} are both at generation {}: nothing to pull\n",
                    cfg.set, c.id
                ));
            }
            Relation::Same | Relation::Newer => (Target::Adopt(theirs.clone()), Some(c.id.clone())),
            Relation::Older => {
                sess.close();
                return Err(format!(
                    "{node}'s generation {} is older than this node's {}: pulling would go back in time",
                    theirs.id, c.id
                ));
            }
            Relation::Diverged | Relation::Unrelated => {
                let mut history = vec![c.id.clone(), theirs.id.clone()];
                for h in c.history.iter().chain(theirs.history.iter()) {
                    if !history.contains(h) {
                        history.push(h.clone());
                    }
                }
                history.truncate(HISTORY_MAX);
                (
                    Target::Merge(Generation {
                        id: fsops::random_hex(),
                        history,
                    }),
                    pull::common_base(&c, &theirs),
                )
            }
        },
    };
    let spec = PullSpec {
        cfg: &cfg,
        me: &me,
        peer: node,
        peer_gen: &theirs,
        base,
        target,
        deadline,
    };
    let res = pull::pull(&spec, &mut sess, &cfg.state_dir, &mut mine);
    sess.close();
    let r = res?;
    cib::publish(&cfg.set, &me, &mine);
    let msg = format!(
        "set '{}': pulled from {node} ({}): {} examined, {} installed, {} deleted, {} conflicts kept, {} kept in place, {} unmirrored here; now at generation {}\n",
        cfg.set,
        r.mode,
        r.examined,
        r.installed,
        r.deleted,
        r.conflicts,
        r.kept_in_place,
        r.unmirrored,
        mine.current.as_ref().map(|g| g.id.as_str()).unwrap_or("-")
    );
    log::warn(msg.trim_end());
    Ok(msg)
}

/// Declares `node`'s newer data forfeited: this node begins a generation that descends
/// from `node`'s, so the gate and the mirror treat this node as the newest. The next
/// mirror pass overwrites `node`'s copy.
pub fn accept_data_loss(state_dir: &Path, set: &str, node: &str) -> Result<String, String> {
    let ctx = saved_context(state_dir).ok();
    let cfg = ctx.as_ref().and_then(|c| gate_config(c).ok());
    let me = cfg
        .as_ref()
        .map(my_name)
        .or_else(cib::my_node)
        .unwrap_or_else(crate::mirror::cluster::hostname);
    // The forfeited generation: from the CIB, else from the node itself.
    let mut theirs = cib::read_generation(set, node).map(|(g, _)| g);
    if theirs.is_none() {
        if let Some(cfg) = &cfg {
            if let Some(peer) = cfg.peers.iter().find(|p| p.name == node) {
                let deadline = Instant::now() + Duration::from_secs(30);
                if let Reach::Open(s) = PullSession::connect(cfg, peer, deadline) {
                    theirs = s.state.current.clone();
                    s.close();
                }
            }
        }
    }
    let Some(theirs) = theirs else {
        return Err(format!(
            "the generation of set '{set}' on {node} is unknown (not in the CIB, node not reachable)"
        ));
    };
    let mut mine = GenState::load(state_dir, set).map_err(|e| e.to_string())?;
    if mine.receiving.is_some() || (mine.current.is_some() && !mine.consistent) {
        return Err(format!(
            "this node's copy of set '{set}' is partial: complete a resync first (bulwark resync --set {set} --from NODE)"
        ));
    }
    if let Some(c) = &mine.current {
        if matches!(relation(c, &theirs), Relation::Newer | Relation::Same) {
            return Ok(format!(
                "set '{set}': this node's generation {} already supersedes {node}'s {}: nothing to forfeit\n",
                c.id, theirs.id
            ));
        }
    }
    let mut history = Vec::new();
    if let Some(c) = &mine.current {
        history.push(c.id.clone());
    }
    history.push(theirs.id.clone());
    for h in mine
        .current
        .iter()
        .flat_map(|c| c.history.iter())
        .chain(theirs.history.iter())
    {
        if !history.contains(h) {
            history.push(h.clone());
        }
    }
    history.truncate(HISTORY_MAX);
    let g = Generation {
        id: fsops::random_hex(),
        history,
    };
    let old = mine
        .current
        .as_ref()
        .map(|c| c.id.clone())
        .unwrap_or_else(|| "none".into());
    mine.current = Some(g.clone());
    mine.consistent = true;
    mine.receiving = None;
    mine.origin = me.clone();
    std::fs::create_dir_all(state_dir).map_err(|e| e.to_string())?;
    let mut f = load_forfeits(state_dir);
    f.push((node.to_string(), theirs.id.clone()));
    let data = serde_json::to_vec_pretty(&f).map_err(|e| e.to_string())?;
    fsops::write_atomic(&forfeits_path(state_dir), &data).map_err(|e| e.to_string())?;
    mine.save(state_dir).map_err(|e| e.to_string())?;
    cib::publish(set, &me, &mine);
    let msg = format!(
        "set '{set}': DATA LOSS ACCEPTED: the changes of {node} in generation {} are forfeited; \
         {me} goes from generation {old} to {}, which supersedes it\n",
        theirs.id, g.id
    );
    log::error(msg.trim_end());
    Ok(msg)
}

/// The table of `bulwark conflicts`.
pub fn render_conflicts(set: &str, recs: &[records::Record]) -> String {
    if recs.is_empty() {
        return format!("set {set}: no conflicts kept\n");
    }
    let mut s = format!("set {set}: {} records\n", recs.len());
    s.push_str(&format!(
        "{:<14} {:<18} {:<40} {}\n",
        "KIND", "GENERATION", "PATH", "KEPT COPY / COUNTERPART"
    ));
    for r in recs {
        let other = match r.kind.as_str() {
            "conflict" => format!(
                "{}  <- counterpart installed from {} (generation {})",
                r.copy.as_deref().unwrap_or("-"),
                r.counterpart_node,
                r.counterpart_generation
            ),
            "kept-in-place" => format!(
                "in place; deleted on {} (generation {})",
                r.counterpart_node, r.counterpart_generation
            ),
            "preserved" => format!(
                "{}  <- never mirrored; kept before {}'s pass (generation {}) replaced it",
                r.copy.as_deref().unwrap_or("-"),
                r.counterpart_node,
                r.counterpart_generation
            ),
            "deleted-here" => format!(
                "deleted here; changed version installed from {} (generation {})",
                r.counterpart_node, r.counterpart_generation
            ),
            _ => format!(
                "in place; never mirrored before {} took over",
                r.counterpart_node
            ),
        };
        s.push_str(&format!(
            "{:<14} {:<18} {:<40} {}\n",
            r.kind, r.generation, r.path, other
        ));
    }
    s
}
