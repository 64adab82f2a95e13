//! The daemon's status file (`<state_dir>/status.json`), read by `monitor` (no fork)
//! and by `bulwark status`.

use super::fsops;
use super::gen::GenState;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PeerStatus {
    pub name: String,
    /// `connecting`, `syncing`, `in-sync`, `refused`, `down`.
    pub state: String,
    pub generation: Option<String>,
    pub consistent: bool,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Status {
    pub set: String,
    pub node: String,
    /// The supervisor's pid (the pidfile's).
    pub pid: u32,
    pub worker_pid: u32,
    pub started_ms: u64,
    pub updated_ms: u64,
    /// Watches are in place: changes from now on are journalled.
    pub watching: bool,
    pub watches: usize,
    pub generation: GenState,
    pub peers: Vec<PeerStatus>,
    pub pending: usize,
    /// When the oldest unmirrored change was seen (epoch ms), 0 when none.
    pub oldest_pending_ms: u64,
    /// When the oldest unmirrored change became due by its path's schedule (epoch ms).
    pub oldest_due_ms: u64,
    pub last_pass_ms: u64,
    pub last_pass_at_ms: u64,
    pub passes: u64,
    pub files_sent: u64,
    pub bytes_sent: u64,
    pub conflicts: usize,
    /// A fatal error (the daemon stopped because of it).
    pub fatal: Option<String>,
}

impl Status {
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("status.json")
    }

    pub fn load(state_dir: &Path) -> Option<Status> {
        let b = std::fs::read(Self::path(state_dir)).ok()?;
        serde_json::from_slice(&b).ok()
    }

    /// Written with rename (atomic for readers); not fsynced: it is rebuilt on restart.
    pub fn save(&self, state_dir: &Path) {
        let Ok(data) = serde_json::to_vec_pretty(self) else {
            return;
        };
        let tmp = state_dir.join(".status.json.tmp");
        if std::fs::write(&tmp, data).is_ok() {
            let _ = std::fs::rename(&tmp, Self::path(state_dir));
        }
    }

    /// The age of the oldest unmirrored change.
    pub fn lag_ms(&self, now_ms: u64) -> u64 {
        if self.oldest_pending_ms == 0 {
            0
        } else {
            now_ms.saturating_sub(self.oldest_pending_ms)
        }
    }

    /// How long the oldest due change has waited past its schedule.
    pub fn overdue_ms(&self, now_ms: u64) -> u64 {
        if self.oldest_due_ms == 0 {
            0
        } else {
            now_ms.saturating_sub(self.oldest_due_ms)
        }
    }
}

/// Number of kept conflict copies (`<state_dir>/conflicts/`, filled by the resync gate).
pub fn count_conflicts(state_dir: &Path) -> usize {
    fn count(p: &Path) -> usize {
        let Ok(rd) = std::fs::read_dir(p) else {
            return 0;
        };
        rd.flatten()
            .map(|e| match e.file_type() {
                Ok(t) if t.is_dir() => count(&e.path()),
                Ok(_) if e.file_name() != "index.json" => 1,
                _ => 0,
            })
            .sum()
    }
    count(&state_dir.join("conflicts"))
}

pub fn now_ms() -> u64 {
    fsops::now_ms()
}
