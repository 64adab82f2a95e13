//! Kept conflict copies and their records: `<state_dir>/conflicts/<generation>/<root>/<path>`
//! holds this node's version of a path whose counterpart was installed from a peer;
//! `<state_dir>/conflicts/index.json` lists every record (`bulwark conflicts`).

use crate::mirror::fsops;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// `conflict`: this node's version is kept under `copy`, the peer's is installed;
    /// `kept-in-place`: deleted on the peer, changed here: this node's version stays;
    /// `deleted-here`: deleted here, changed on the peer: the peer's version is installed;
    /// `unmirrored`: changed here and never mirrored, untouched by the peer: in place;
    /// `preserved`: changed here and never mirrored, kept under `copy` before a newer
    /// writer's pass replaced this node's tree (see `protect`).
    pub kind: String,
    /// The path in this node's tree.
    pub path: String,
    pub root: u32,
    pub rel: String,
    /// The kept copy of this node's version (conflicts only).
    pub copy: Option<String>,
    /// The generation this node's version belongs to.
    pub generation: String,
    /// Where the counterpart comes from.
    pub counterpart_node: String,
    pub counterpart_generation: String,
    pub at_ms: u64,
}

pub fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("conflicts")
}

pub fn index(state_dir: &Path) -> PathBuf {
    dir(state_dir).join("index.json")
}

pub fn load(state_dir: &Path) -> Vec<Record> {
    std::fs::read(index(state_dir))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Adds records (an identical record is not repeated: a resumed pull adds nothing twice).
pub fn append(state_dir: &Path, new: &[Record]) -> std::io::Result<()> {
    if new.is_empty() {
        return Ok(());
    }
    let mut all = load(state_dir);
    for r in new {
        if !all.iter().any(|a| {
            a.kind == r.kind
                && a.path == r.path
                && a.generation == r.generation
                && a.counterpart_generation == r.counterpart_generation
        }) {
            all.push(r.clone());
        }
    }
    std::fs::create_dir_all(dir(state_dir))?;
    let data = serde_json::to_vec_pretty(&all).map_err(std::io::Error::other)?;
    fsops::write_atomic(&index(state_dir), &data)
}
