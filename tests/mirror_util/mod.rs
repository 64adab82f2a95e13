//! Helpers shared by the tests/mirror_*.rs integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub const AGENT: &str = env!("CARGO_BIN_EXE_file-mirror");
pub const MIRROR: &str = env!("CARGO_BIN_EXE_bulwark-mirror");
pub const BULWARK: &str = env!("CARGO_BIN_EXE_bulwark");

/// A scratch mirror: sources under `src_root`, copies under `dst`, state in `state`.
pub struct Lab {
    pub tmp: tempfile::TempDir,
    pub dst: PathBuf,
    pub state: PathBuf,
    pub set: String,
    pub params: Vec<(String, String)>,
}

impl Lab {
    pub fn new(set: &str) -> Lab {
        let tmp = tempfile::Builder::new()
            .prefix("bulwark-mirror-test.")
            .tempdir()
            .unwrap();
        let dst = tmp.path().join("dst");
        let state = tmp.path().join("state");
        std::fs::create_dir_all(&dst).unwrap();
        Lab {
            params: vec![
                ("set".into(), set.into()),
                ("transport".into(), "local".into()),
                ("target".into(), dst.display().to_string()),
                ("state_dir".into(), state.display().to_string()),
            ],
            tmp,
            dst,
            state,
            set: set.into(),
        }
    }

    /// A source directory `name` under the scratch dir.
    pub fn src(&self, name: &str) -> PathBuf {
        let p = self.tmp.path().join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// Where the peer copy of source `p` is.
    pub fn peer(&self, p: &Path) -> PathBuf {
        self.dst.join(p.strip_prefix("/").unwrap())
    }

    pub fn param(&mut self, k: &str, v: &str) {
        self.params.retain(|(a, _)| a != k);
        self.params.push((k.into(), v.into()));
    }

    pub fn agent(&self, action: &str) -> Output {
        let mut c = Command::new(AGENT);
        c.arg(action)
            .env("BULWARK_NO_CLUSTER", "1")
            .env("OCF_ROOT", "/usr/lib/ocf");
        for (k, v) in &self.params {
            c.env(format!("OCF_RESKEY_{k}"), v);
        }
        c.output().unwrap()
    }

    pub fn status(&self) -> serde_json::Value {
        let b = std::fs::read(self.state.join("status.json")).unwrap_or_default();
        serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.state.join("daemon.log")).unwrap_or_default()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.agent("stop");
    }
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[derive(Debug, PartialEq)]
pub enum Node {
    File {
        mode: u32,
        uid: u32,
        gid: u32,
        mtime: (i64, i64),
        data: Vec<u8>,
    },
    Dir {
        mode: u32,
        uid: u32,
        gid: u32,
        mtime: (i64, i64),
    },
    Link {
        uid: u32,
        gid: u32,
        mtime: (i64, i64),
        target: PathBuf,
    },
}

/// Everything below `root` (not following symlinks), keyed by relative path.
pub fn snapshot(root: &Path, with_dir_mtime: bool) -> BTreeMap<PathBuf, Node> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, Node>, dm: bool) {
        let abs = root.join(rel);
        let Ok(md) = std::fs::symlink_metadata(&abs) else {
            return;
        };
        let mt = (md.mtime(), md.mtime_nsec());
        let ft = md.file_type();
        if ft.is_symlink() {
            let target = std::fs::read_link(&abs).unwrap_or_default();
            out.insert(
                rel.to_path_buf(),
                Node::Link {
                    uid: md.uid(),
                    gid: md.gid(),
                    mtime: mt,
                    target,
                },
            );
        } else if ft.is_file() {
            let data = std::fs::read(&abs).unwrap_or_default();
            out.insert(
                rel.to_path_buf(),
                Node::File {
                    mode: md.mode() & 0o7777,
                    uid: md.uid(),
                    gid: md.gid(),
                    mtime: mt,
                    data,
                },
            );
        } else if ft.is_dir() {
            let mtime = if dm { mt } else { (0, 0) };
            out.insert(
                rel.to_path_buf(),
                Node::Dir {
                    mode: md.mode() & 0o7777,
                    uid: md.uid(),
                    gid: md.gid(),
                    mtime,
                },
            );
            let mut names: Vec<_> = std::fs::read_dir(&abs)
                .map(|r| r.flatten().map(|e| e.file_name()).collect())
                .unwrap_or_default();
            names.sort();
            for n in names {
                walk(root, &rel.join(n), out, dm);
            }
        }
    }
    walk(root, Path::new(""), &mut out, with_dir_mtime);
    out
}

/// The first difference between two trees, or None.
pub fn diff(a: &Path, b: &Path, with_dir_mtime: bool) -> Option<String> {
    let sa = snapshot(a, with_dir_mtime);
    let sb = snapshot(b, with_dir_mtime);
    for (k, v) in &sa {
        match sb.get(k) {
            None => return Some(format!("{} missing on the peer", k.display())),
            Some(w) if w != v => {
                let short = |n: &Node| match n {
                    Node::File {
                        mode, mtime, data, ..
                    } => format!("file mode {mode:o} mtime {mtime:?} {} bytes", data.len()),
                    other => format!("{other:?}"),
                };
                return Some(format!(
                    "{} differs: source {} / peer {}",
                    k.display(),
                    short(v),
                    short(w)
                ));
            }
            _ => {}
        }
    }
    for k in sb.keys() {
        if !sa.contains_key(k) {
            return Some(format!("{} exists only on the peer", k.display()));
        }
    }
    None
}

/// Waits until `a` and `b` are identical; returns how long it took, or the last difference.
pub fn wait_same(
    a: &Path,
    b: &Path,
    within: Duration,
    with_dir_mtime: bool,
) -> Result<Duration, String> {
    let t = Instant::now();
    loop {
        match diff(a, b, with_dir_mtime) {
            None => return Ok(t.elapsed()),
            Some(d) if t.elapsed() > within => return Err(d),
            Some(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

pub fn is_root() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub fn set_mtime(p: &std::path::Path, sec: i64, nsec: i64) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let ts = [
        libc::timespec {
            tv_sec: sec,
            tv_nsec: nsec,
        },
        libc::timespec {
            tv_sec: sec,
            tv_nsec: nsec,
        },
    ];
    // SAFETY: valid path and times.
    assert_eq!(
        unsafe {
            libc::utimensat(
                libc::AT_FDCWD,
                c.as_ptr(),
                ts.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        },
        0
    );
}

/// Writes, renames, deletes, chmods, symlinks and directory moves under `root`.
pub fn churn(root: &std::path::Path, round: u32) {
    let d = root.join(format!("d{round}"));
    std::fs::create_dir_all(d.join("sub/deeper")).unwrap();
    std::fs::write(d.join("new.txt"), format!("round {round}")).unwrap();
    std::fs::write(d.join("sub/deeper/x"), vec![round as u8; 5000]).unwrap();
    std::fs::write(root.join("keep.txt"), format!("rewritten in round {round}")).unwrap();
    // Same size, same second: rsync's quick check misses this one.
    std::fs::write(root.join("same-size"), format!("v{round:03}")).unwrap();
    std::fs::rename(
        root.join("rename-me"),
        root.join(format!("renamed-{round}")),
    )
    .unwrap();
    std::fs::write(root.join("rename-me"), b"again").unwrap();
    let _ = std::fs::remove_file(root.join("delete-me"));
    std::fs::write(root.join(format!("delete-me-{round}")), b"next").unwrap();
    if round > 0 {
        std::fs::remove_file(root.join(format!("delete-me-{}", round - 1))).unwrap();
        std::fs::write(root.join("delete-me"), b"back").unwrap();
    }
    std::fs::set_permissions(
        root.join("chmod-me"),
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600 + round),
    )
    .unwrap();
    let _ = std::fs::remove_file(root.join("link"));
    std::os::unix::fs::symlink(format!("d{round}/new.txt"), root.join("link")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", d.join("abs-link")).unwrap();
    set_mtime(&root.join("keep.txt"), 1_600_000_000, 123_456_789);
    if round > 0 {
        std::fs::rename(
            root.join(format!("d{}", round - 1)),
            root.join(format!("moved{round}")),
        )
        .unwrap();
        std::fs::remove_dir_all(root.join(format!("moved{round}/sub"))).unwrap();
    }
}

pub fn seed(root: &std::path::Path) {
    for f in [
        "keep.txt",
        "rename-me",
        "delete-me",
        "chmod-me",
        "same-size",
    ] {
        std::fs::write(root.join(f), f).unwrap();
    }
}
