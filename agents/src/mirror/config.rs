//! The daemon's configuration: built by the agent from its parameters, written to
//! `<state_dir>/config.json`, read by the daemon. Also the parsers for `paths`.

use ocf_metadata::param::{parse_duration, Unit};
use serde::{Deserialize, Serialize};
use std::path::{Component, Path, PathBuf};

/// When a path's changes are sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// 0 = `change`: as soon as the change settles.
    pub interval_ms: u64,
    /// A daily window in minutes after local midnight, `[start, end)`; may wrap midnight.
    pub window: Option<(u32, u32)>,
}

impl Schedule {
    pub fn is_change(&self) -> bool {
        self.interval_ms == 0
    }

    /// Whether local time `minute_of_day` is inside the window (always, without one).
    pub fn in_window(&self, minute_of_day: u32) -> bool {
        match self.window {
            None => true,
            Some((s, e)) if s <= e => minute_of_day >= s && minute_of_day < e,
            Some((s, e)) => minute_of_day >= s || minute_of_day < e,
        }
    }

    pub fn describe(&self) -> String {
        let mut s = if self.is_change() {
            "change".to_string()
        } else {
            format!("{}ms", self.interval_ms)
        };
        if let Some((a, b)) = self.window {
            s.push_str(&format!(
                "@{:02}:{:02}-{:02}:{:02}",
                a / 60,
                a % 60,
                b / 60,
                b % 60
            ));
        }
        s
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathSpec {
    pub path: PathBuf,
    pub schedule: Schedule,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Transport {
    /// A local receiver child writing beneath `target` (the peer path of `/a/b` is
    /// `<target>/a/b`), its generation state in `state_dir`.
    Local { target: PathBuf, state_dir: PathBuf },
    /// `ssh [options] host receiver_path receive ...`.
    Ssh {
        host: String,
        options: Vec<String>,
        receiver_path: String,
        state_dir: PathBuf,
        /// The peer path of `/a/b` is `<target>/a/b` (default `/`: the same path).
        target: PathBuf,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    pub name: String,
    pub transport: Transport,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    pub set: String,
    pub node: String,
    pub paths: Vec<PathSpec>,
    pub peers: Vec<Peer>,
    pub state_dir: PathBuf,
    pub max_lag_ms: u64,
    pub verify_interval_ms: u64,
    pub exclude: Vec<String>,
    /// How long a `change` path must be quiet before it is sent.
    pub settle_ms: u64,
    /// The path of the mirror binary (to start local receivers).
    pub mirror_bin: PathBuf,
}

impl Config {
    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("config.json")
    }

    /// The peer-side absolute root for local path `p` (index into `paths`).
    pub fn peer_roots(&self, peer: &Peer) -> Vec<PathBuf> {
        self.paths
            .iter()
            .map(|p| match &peer.transport {
                Transport::Local { target, .. } | Transport::Ssh { target, .. } => {
                    target.join(p.path.strip_prefix("/").unwrap_or(&p.path))
                }
            })
            .collect()
    }
}

/// Set names become file names and attribute names: keep them plain.
pub fn check_set_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 64 {
        return Err("set must be 1-64 characters".into());
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        || s.starts_with('.')
    {
        return Err(format!(
            "set {s:?} may contain only letters, digits, '-', '_' and '.' (not first)"
        ));
    }
    Ok(())
}

fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 24 && m < 60 && h * 60 + m <= 1440).then_some(h * 60 + m)
}

/// Parses one `PATH[:INTERVAL][@HH:MM-HH:MM]` item.
pub fn parse_path_item(item: &str) -> Result<PathSpec, String> {
    let (rest, window) = match item.rsplit_once('@') {
        Some((r, w)) => {
            let (a, b) = w
                .split_once('-')
                .ok_or_else(|| format!("{item:?}: a window is written @HH:MM-HH:MM"))?;
            let (a, b) = (
                parse_hhmm(a).ok_or_else(|| format!("{item:?}: bad window start {a:?}"))?,
                parse_hhmm(b).ok_or_else(|| format!("{item:?}: bad window end {b:?}"))?,
            );
            if a == b {
                return Err(format!("{item:?}: the window is empty"));
            }
            (r, Some((a, b)))
        }
        None => (item, None),
    };
    let (path, interval) = match rest.rsplit_once(':') {
        Some((p, i)) if !i.contains('/') => (p, Some(i)),
        _ => (rest, None),
    };
    let interval_ms = match interval {
        None | Some("change") => 0,
        Some(i) => {
            let d = parse_duration(i, Unit::S).ok_or_else(|| {
                format!("{item:?}: interval {i:?} is not 'change' or a duration like 30s, 1m, 1h")
            })?;
            (d.as_millis() as u64).max(1)
        }
    };
    if window.is_some() && interval_ms == 0 {
        return Err(format!(
            "{item:?}: a daily window needs an interval (e.g. 1h@01:00-05:00)"
        ));
    }
    let path = PathBuf::from(path);
    if !path.is_absolute() {
        return Err(format!("{item:?}: paths must be absolute"));
    }
    let mut norm = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::RootDir => {}
            Component::Normal(n) => norm.push(n),
            Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(format!("{item:?}: '..' is not allowed in paths"))
            }
        }
    }
    if norm == Path::new("/") {
        return Err(format!(
            "{item:?}: mirroring / is not supported; name the directories"
        ));
    }
    Ok(PathSpec {
        path: norm,
        schedule: Schedule {
            interval_ms,
            window,
        },
    })
}

/// Parses the `paths` parameter: items separated by whitespace or commas; no path may
/// contain another.
pub fn parse_paths(s: &str) -> Result<Vec<PathSpec>, String> {
    let mut out: Vec<PathSpec> = Vec::new();
    for item in s
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|i| !i.is_empty())
    {
        let p = parse_path_item(item)?;
        if let Some(o) = out
            .iter()
            .find(|o| o.path.starts_with(&p.path) || p.path.starts_with(&o.path))
        {
            return Err(format!(
                "paths {} and {} overlap; give each directory once",
                o.path.display(),
                p.path.display()
            ));
        }
        out.push(p);
    }
    if out.is_empty() {
        return Err("paths is empty".into());
    }
    Ok(out)
}

/// Splits a list parameter (whitespace or commas).
pub fn split_list(s: &str) -> Vec<String> {
    s.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|i| !i.is_empty())
        .map(str::to_string)
        .collect()
}

/// Splits on whitespace only (ssh options, patterns).
pub fn split_list_ws(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

/// `fnmatch(3)` of an exclude pattern against a relative path and its last component.
pub fn excluded(patterns: &[std::ffi::CString], rel: &[u8]) -> bool {
    if patterns.is_empty() || rel.is_empty() {
        return false;
    }
    let base = rel.rsplit(|b| *b == b'/').next().unwrap_or(rel);
    let (Ok(r), Ok(b)) = (std::ffi::CString::new(rel), std::ffi::CString::new(base)) else {
        return false;
    };
    patterns.iter().any(|p| {
        // SAFETY: valid C strings.
        unsafe {
            libc::fnmatch(p.as_ptr(), r.as_ptr(), libc::FNM_PATHNAME) == 0
                || libc::fnmatch(p.as_ptr(), b.as_ptr(), 0) == 0
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_items() {
        let p = parse_path_item("/var/spool/mail:1m").unwrap();
        assert_eq!(p.path, PathBuf::from("/var/spool/mail"));
        assert_eq!(p.schedule.interval_ms, 60_000);
        let p = parse_path_item("/srv/www:1h@01:00-05:00").unwrap();
        assert_eq!(p.schedule.window, Some((60, 300)));
        assert!(p.schedule.in_window(61) && !p.schedule.in_window(300));
        assert!(parse_path_item("/srv/x").unwrap().schedule.is_change());
        assert!(parse_path_item("/srv/x:change")
            .unwrap()
            .schedule
            .is_change());
        let w = parse_path_item("/a:1h@22:00-02:00").unwrap().schedule;
        assert!(w.in_window(23 * 60) && w.in_window(60) && !w.in_window(12 * 60));
        for bad in [
            "rel/x",
            "/a/../b",
            "/",
            "/a:5q",
            "/a@01:00-01:00",
            "/a:change@01:00-02:00",
            "/a:1h@1-2",
        ] {
            assert!(parse_path_item(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn overlapping_paths_are_refused() {
        assert!(parse_paths("/a:1m /a/b:1h").is_err());
        assert_eq!(parse_paths("/a:1m, /ab:1h").unwrap().len(), 2);
        assert!(parse_paths(" ").is_err());
    }

    #[test]
    fn excludes() {
        let pats = vec![
            std::ffi::CString::new("*.tmp").unwrap(),
            std::ffi::CString::new("cache/*").unwrap(),
        ];
        assert!(excluded(&pats, b"a/b/x.tmp"));
        assert!(excluded(&pats, b"cache/y"));
        assert!(!excluded(&pats, b"a/cache/y"));
        assert!(!excluded(&pats, b"a/x.txt"));
    }

    #[test]
    fn set_names() {
        assert!(check_set_name("mail").is_ok());
        assert!(check_set_name("../x").is_err());
        assert!(check_set_name("").is_err());
    }
}
