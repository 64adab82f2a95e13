//! Generations, modelled on DRBD's generation UUIDs (contract: "Terms"). Each node keeps,
//! per set, in `<state_dir>/generation.json`:
//! - `current`: the generation its data belongs to, `history`: its ancestors (newest first);
//! - `consistent`: true only when the copy is complete for `current`;
//! - `receiving`: a newer generation a pass is under way for (the copy is partial;
//!   a receiver adopts it as `current` only after a complete pass).
//!
//! The resync gate (issue 7) reads the same file and the same CIB attributes
//! (`bulwark-<set>-gen`, `-consistent`, `-history`) and decides direction with
//! [`relation`].

use super::fsops;
use super::wire::GenWire;
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

/// Ancestors kept per node; enough to relate any two nodes of a small cluster.
pub const HISTORY_MAX: usize = 64;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generation {
    pub id: String,
    /// Ancestors, newest first.
    pub history: Vec<String>,
}

impl Generation {
    pub fn wire(&self) -> GenWire {
        GenWire {
            id: self.id.clone(),
            history: self.history.clone(),
        }
    }
    pub fn from_wire(w: &GenWire) -> Generation {
        Generation {
            id: w.id.clone(),
            history: w.history.clone(),
        }
    }
}

/// How generation `a` relates to generation `b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    Same,
    /// `a` descends from `b` (a is newer).
    Newer,
    /// `b` descends from `a` (a is older, stale).
    Older,
    /// Both descend from a common ancestor but neither from the other: split brain.
    Diverged,
    /// No common ancestor known.
    Unrelated,
}

pub fn relation(a: &Generation, b: &Generation) -> Relation {
    if a.id == b.id {
        Relation::Same
    } else if a.history.contains(&b.id) {
        Relation::Newer
    } else if b.history.contains(&a.id) {
        Relation::Older
    } else if a.history.iter().any(|h| b.history.contains(h)) {
        Relation::Diverged
    } else {
        Relation::Unrelated
    }
}

/// What a receiver says about its node in `HelloOk`/`PassOk` (also answers a query):
/// its generation state and whether that node runs the set's writer right now (the
/// resync gate must not pull from a node that is a writer).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    pub node: String,
    pub state: GenState,
    pub writer_running: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenState {
    pub set: String,
    /// `None` on a node that never held data for the set.
    pub current: Option<Generation>,
    pub consistent: bool,
    pub receiving: Option<Generation>,
    /// The node that made `current` (informational).
    #[serde(default)]
    pub origin: String,
    #[serde(default)]
    pub updated_ms: u64,
}

impl GenState {
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("generation.json")
    }

    /// Loads the state; a missing file is a fresh node.
    pub fn load(state_dir: &Path, set: &str) -> io::Result<GenState> {
        match std::fs::read(Self::path(state_dir)) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", Self::path(state_dir).display()),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(GenState {
                set: set.to_string(),
                ..Default::default()
            }),
            Err(e) => Err(e),
        }
    }

    pub fn save(&mut self, state_dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(state_dir)?;
        self.updated_ms = fsops::now_ms();
        let data = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        fsops::write_atomic(&Self::path(state_dir), &data)
    }

    /// The newest generation this node has seen data of (partial or not).
    pub fn latest(&self) -> Option<&Generation> {
        self.receiving.as_ref().or(self.current.as_ref())
    }

    /// Whether a writer may start here: a fresh node, or a complete copy.
    pub fn may_write(&self) -> Result<(), String> {
        if let Some(r) = &self.receiving {
            return Err(format!(
                "this node's copy of set '{}' is partial (a pass for generation {} was interrupted); \
                 it must be completed or resynced before this node may write",
                self.set, r.id
            ));
        }
        if self.current.is_some() && !self.consistent {
            return Err(format!(
                "this node's copy of set '{}' is not consistent for generation {}",
                self.set,
                self.current.as_ref().map(|g| g.id.as_str()).unwrap_or("-")
            ));
        }
        Ok(())
    }

    /// Starts a new generation as writer, child of `current`.
    pub fn begin_writer(&mut self, node: &str) -> Generation {
        let mut history = Vec::new();
        if let Some(c) = &self.current {
            history.push(c.id.clone());
            history.extend(c.history.iter().cloned());
        }
        history.truncate(HISTORY_MAX);
        let g = Generation {
            id: fsops::random_hex(),
            history,
        };
        self.current = Some(g.clone());
        self.consistent = true;
        self.receiving = None;
        self.origin = node.to_string();
        g
    }

    /// The receiver's check of a sender's generation (guarantee 1): accepted when it is
    /// this node's newest seen generation or a descendant of it.
    pub fn accepts(&self, sender: &Generation) -> Result<(), String> {
        let Some(mine) = self.latest() else {
            return Ok(());
        };
        match relation(sender, mine) {
            Relation::Same | Relation::Newer => Ok(()),
            Relation::Older => Err(format!(
                "stale sender: its generation {} is older than this node's {}",
                sender.id, mine.id
            )),
            Relation::Diverged => Err(format!(
                "diverged generations: sender {} and this node {} both descend from a common \
                 ancestor; resolve with the resync gate",
                sender.id, mine.id
            )),
            Relation::Unrelated => Err(format!(
                "unrelated generations: sender {} has no relation to this node's {}",
                sender.id, mine.id
            )),
        }
    }

    /// A push session for `sender` begins: remember it before any data changes, so a
    /// crash leaves the copy marked partial.
    pub fn begin_receiving(&mut self, sender: &Generation) -> bool {
        if self.current.as_ref().map(|c| &c.id) == Some(&sender.id) {
            return false;
        }
        if self.receiving.as_ref() == Some(sender) {
            return false;
        }
        self.receiving = Some(sender.clone());
        self.consistent = false;
        true
    }

    /// A complete pass for `sender` finished: adopt it.
    pub fn adopt(&mut self, sender: &Generation, origin: &str) {
        self.current = Some(sender.clone());
        self.receiving = None;
        self.consistent = true;
        self.origin = origin.to_string();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(id: &str, hist: &[&str]) -> Generation {
        Generation {
            id: id.into(),
            history: hist.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn relations() {
        assert_eq!(relation(&g("b", &["a"]), &g("a", &[])), Relation::Newer);
        assert_eq!(relation(&g("a", &[]), &g("b", &["a"])), Relation::Older);
        assert_eq!(
            relation(&g("b", &["a"]), &g("c", &["a"])),
            Relation::Diverged
        );
        assert_eq!(relation(&g("x", &[]), &g("y", &[])), Relation::Unrelated);
    }

    #[test]
    fn receiver_refuses_stale_and_remembers_partial_passes() {
        let mut r = GenState::default();
        let a1 = g("a1", &[]);
        assert!(r.accepts(&a1).is_ok());
        assert!(r.begin_receiving(&a1));
        assert!(!r.consistent);
        assert!(r.may_write().is_err());
        r.adopt(&a1, "a");
        assert!(r.consistent && r.may_write().is_ok());
        let a2 = g("a2", &["a1"]);
        assert!(r.accepts(&a2).is_ok());
        r.begin_receiving(&a2);
        // A stale sender still on a1 is refused once a2 was seen, even mid-pass.
        assert!(r.accepts(&a1).unwrap_err().contains("stale"));
        r.adopt(&a2, "a");
        let b3 = g("b3", &["a1"]);
        assert!(r.accepts(&b3).unwrap_err().contains("diverged"));
    }

    #[test]
    fn writer_generation_descends_from_current() {
        let mut s = GenState::default();
        let g1 = s.begin_writer("a");
        let g2 = s.begin_writer("a");
        assert_eq!(g2.history, vec![g1.id.clone()]);
        assert_eq!(relation(&g2, &g1), Relation::Newer);
        let t = tempfile::tempdir().unwrap();
        s.save(t.path()).unwrap();
        assert_eq!(GenState::load(t.path(), "x").unwrap().current, Some(g2));
    }
}
