//! The change journal of one mirrored root: an inotify instance with one watch per
//! directory (recursive; new directories are watched as they appear). A queue overflow
//! is reported as [`Event::Overflow`] so the daemon rescans this root (and only it).
//! Running out of watches is an error naming `fs.inotify.max_user_watches`: a path is
//! never silently left unwatched.

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

const MASK: u32 = libc::IN_CREATE
    | libc::IN_DELETE
    | libc::IN_MODIFY
    | libc::IN_CLOSE_WRITE
    | libc::IN_ATTRIB
    | libc::IN_MOVED_FROM
    | libc::IN_MOVED_TO
    | libc::IN_DELETE_SELF
    | libc::IN_MOVE_SELF
    | libc::IN_DONT_FOLLOW
    | libc::IN_ONLYDIR
    | libc::IN_EXCL_UNLINK;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Something at this relative path changed (created, written, attributes, moved, deleted).
    Changed(Vec<u8>),
    /// A directory appeared (created or moved in): it is now watched; its contents must
    /// be scanned because they may predate the watch.
    NewDir(Vec<u8>),
    /// The event queue overflowed: events were lost; rescan the root.
    Overflow,
}

#[derive(Debug)]
pub enum WatchError {
    /// Out of inotify watches (ENOSPC) or instances (EMFILE).
    Limit(String),
    Io(String),
}

impl std::fmt::Display for WatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WatchError::Limit(m) | WatchError::Io(m) => write!(f, "{m}"),
        }
    }
}

pub struct Journal {
    fd: OwnedFd,
    root: PathBuf,
    wds: HashMap<i32, Vec<u8>>,
    buf: Vec<u8>,
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        return name.to_vec();
    }
    let mut v = dir.to_vec();
    v.push(b'/');
    v.extend_from_slice(name);
    v
}

pub fn max_user_watches() -> String {
    std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

impl Journal {
    pub fn new(root: &Path) -> Result<Journal, WatchError> {
        // SAFETY: plain syscall; the fd is owned below.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return Err(if e.raw_os_error() == Some(libc::EMFILE) {
                WatchError::Limit(format!(
                    "out of inotify instances ({e}); raise the sysctl fs.inotify.max_user_instances"
                ))
            } else {
                WatchError::Io(format!("inotify_init1: {e}"))
            });
        }
        Ok(Journal {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            root: root.to_path_buf(),
            wds: HashMap::new(),
            buf: vec![0u8; 256 << 10],
        })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn watch_count(&self) -> usize {
        self.wds.len()
    }

    fn abs(&self, rel: &[u8]) -> PathBuf {
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(std::ffi::OsStr::from_bytes(rel))
        }
    }

    /// Watches directory `rel`. Missing or not a directory (raced away): Ok(false).
    pub fn watch(&mut self, rel: &[u8]) -> Result<bool, WatchError> {
        let abs = self.abs(rel);
        let c = CString::new(abs.as_os_str().as_bytes())
            .map_err(|_| WatchError::Io("NUL in path".into()))?;
        // SAFETY: valid fd and C string.
        let wd = unsafe { libc::inotify_add_watch(self.fd.as_raw_fd(), c.as_ptr(), MASK) };
        if wd < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENOSPC) => Err(WatchError::Limit(format!(
                    "out of inotify watches while watching {} ({} directories watched by this set; \
                     fs.inotify.max_user_watches = {}): raise the sysctl fs.inotify.max_user_watches \
                     (e.g. sysctl -w fs.inotify.max_user_watches=1048576)",
                    abs.display(),
                    self.wds.len(),
                    max_user_watches()
                ))),
                Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ELOOP) => Ok(false),
                _ => Err(WatchError::Io(format!("watching {}: {e}", abs.display()))),
            };
        }
        self.wds.insert(wd, rel.to_vec());
        Ok(true)
    }

    /// Watches `rel` and every directory below it (not following symlinks); calls
    /// `seen` for every entry below `rel` with its relative path.
    pub fn watch_tree(
        &mut self,
        rel: &[u8],
        seen: &mut dyn FnMut(&[u8], &std::fs::Metadata),
    ) -> Result<(), WatchError> {
        if !self.watch(rel)? {
            return Ok(());
        }
        let Ok(rd) = std::fs::read_dir(self.abs(rel)) else {
            return Ok(());
        };
        for ent in rd.flatten() {
            let name = ent.file_name();
            let sub = join(rel, name.as_bytes());
            let Ok(md) = ent.metadata() else {
                continue;
            };
            seen(&sub, &md);
            if md.is_dir() {
                self.watch_tree(&sub, seen)?;
            }
        }
        Ok(())
    }

    /// Reads every queued event (non-blocking) into `out`. New directories are watched
    /// here already.
    pub fn read(&mut self, out: &mut Vec<Event>) -> Result<(), WatchError> {
        loop {
            // SAFETY: buffer of the given length.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr() as *mut libc::c_void,
                    self.buf.len(),
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::WouldBlock {
                    return Ok(());
                }
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(WatchError::Io(format!("reading inotify events: {e}")));
            }
            let n = n as usize;
            let mut off = 0;
            let mut new_dirs = Vec::new();
            let hdr = std::mem::size_of::<libc::inotify_event>();
            while off + hdr <= n {
                // SAFETY: the kernel wrote a complete event at `off`.
                let ev: libc::inotify_event =
                    unsafe { std::ptr::read_unaligned(self.buf[off..].as_ptr() as *const _) };
                let name_bytes = &self.buf[off + hdr..off + hdr + ev.len as usize];
                let name_end = name_bytes
                    .iter()
                    .position(|b| *b == 0)
                    .unwrap_or(name_bytes.len());
                let name = &name_bytes[..name_end];
                off += hdr + ev.len as usize;
                if ev.mask & libc::IN_Q_OVERFLOW != 0 {
                    out.push(Event::Overflow);
                    continue;
                }
                if ev.mask & libc::IN_IGNORED != 0 {
                    self.wds.remove(&ev.wd);
                    continue;
                }
                let Some(dir) = self.wds.get(&ev.wd).cloned() else {
                    continue;
                };
                if name.is_empty() {
                    // An event on the watched directory itself.
                    if ev.mask & (libc::IN_DELETE_SELF | libc::IN_MOVE_SELF) != 0 {
                        if ev.mask & libc::IN_MOVE_SELF != 0 {
                            // Its path is stale now; the MOVED_TO of the new name re-adds it.
                            // SAFETY: valid fd.
                            unsafe { libc::inotify_rm_watch(self.fd.as_raw_fd(), ev.wd) };
                            self.wds.remove(&ev.wd);
                        }
                        out.push(Event::Changed(dir));
                    } else if ev.mask & libc::IN_ATTRIB != 0 {
                        out.push(Event::Changed(dir));
                    }
                    continue;
                }
                let path = join(&dir, name);
                if ev.mask
                    & (libc::IN_CREATE | libc::IN_DELETE | libc::IN_MOVED_FROM | libc::IN_MOVED_TO)
                    != 0
                {
                    // The directory's own mtime changed too.
                    out.push(Event::Changed(dir.clone()));
                }
                if ev.mask & libc::IN_ISDIR != 0
                    && ev.mask & (libc::IN_CREATE | libc::IN_MOVED_TO) != 0
                {
                    new_dirs.push(path.clone());
                }
                out.push(Event::Changed(path));
            }
            for d in new_dirs {
                let mut found = Vec::new();
                self.watch_tree(&d, &mut |p, _| found.push(p.to_vec()))?;
                out.push(Event::NewDir(d));
                out.extend(found.into_iter().map(Event::Changed));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_new_directories() {
        let t = tempfile::tempdir().unwrap();
        let mut j = Journal::new(t.path()).unwrap();
        j.watch_tree(b"", &mut |_, _| {}).unwrap();
        std::fs::create_dir(t.path().join("d")).unwrap();
        let mut ev = Vec::new();
        j.read(&mut ev).unwrap();
        assert!(ev.contains(&Event::NewDir(b"d".to_vec())), "{ev:?}");
        std::fs::write(t.path().join("d/f"), b"x").unwrap();
        ev.clear();
        j.read(&mut ev).unwrap();
        assert!(ev.contains(&Event::Changed(b"d/f".to_vec())), "{ev:?}");
        assert_eq!(j.watch_count(), 2);
    }
}
