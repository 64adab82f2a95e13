//! Guarantee 4 on the receiving side: a node that was the writer of its generation and
//! has changes no peer ever got (its change log's unsynced paths) keeps them before a
//! newer writer's pass replaces its tree. That happens when a takeover node flushes to
//! the returning node (its file-mirror stop, or with stickiness keeping the service
//! there). The copies go to the conflicts directory with records, as the gate's do.

use super::records::{self, Record};
use crate::mirror::changelog;
use crate::mirror::fsops;
use crate::mirror::gen::{GenState, Generation};
use crate::mirror::wire::{Kind, Meta};
use ocf_metadata::log;
use std::ffi::CStr;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// File times come from the kernel's coarse clock, a few ms behind the flush's clock.
pub const CTIME_SLACK_MS: u64 = 20;

pub fn ctime_ms(m: &Meta) -> u64 {
    (m.ctime_sec.max(0) as u64) * 1000 + (m.ctime_nsec / 1_000_000) as u64
}

/// Keeps the entry `name` in directory `dir` (a file or symlink) as
/// `<conflicts>/<gen>/<root>/<rel>` (a hard link, else a synced copy). A copy of the
/// same version already there is reused (a resumed pull keeps nothing twice).
pub fn keep_copy(
    conflicts_dir: &Path,
    gen: &str,
    root: u32,
    rel: &[u8],
    dir: RawFd,
    name: &CStr,
    m: &Meta,
) -> Result<PathBuf, String> {
    let base = conflicts_dir
        .join(gen)
        .join(root.to_string())
        .join(std::ffi::OsStr::from_bytes(rel));
    if let Some(sd) = conflicts_dir.parent() {
        std::fs::create_dir_all(sd).map_err(|e| e.to_string())?;
    }
    fsops::private_dir(conflicts_dir).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(base.parent().unwrap()).map_err(|e| e.to_string())?;
    let mut dest = base.clone();
    let mut i = 0;
    while let Ok(md) = std::fs::symlink_metadata(&dest) {
        use std::os::unix::fs::MetadataExt;
        if md.ino() == m.ino
            || (md.size() == m.size
                && md.mtime() == m.mtime_sec
                && md.mtime_nsec() as u32 == m.mtime_nsec)
        {
            return Ok(dest);
        }
        i += 1;
        dest = PathBuf::from(format!("{}.~{i}~", base.display()));
    }
    let d = fsops::cstr(dest.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: valid fds and C strings; without AT_SYMLINK_FOLLOW a symlink is linked itself.
    if unsafe { libc::linkat(dir, name.as_ptr(), libc::AT_FDCWD, d.as_ptr(), 0) } == 0 {
        return Ok(dest);
    }
    // Another file system: a synced copy.
    let tmp = dest.with_file_name(format!(
        "{}{}.{}",
        fsops::TMP_PREFIX,
        dest.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    if m.kind == Kind::Symlink {
        let t = fsops::readlink_at(dir, name).map_err(|e| e.to_string())?;
        std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&t), &tmp)
            .map_err(|e| e.to_string())?;
    } else {
        // SAFETY: valid fd and C string; owned by the File.
        let fd = unsafe {
            libc::openat(
                dir,
                name.as_ptr(),
                libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error().to_string());
        }
        let mut src = unsafe { File::from_raw_fd(fd) };
        let mut out = File::create(&tmp).map_err(|e| e.to_string())?;
        std::io::copy(&mut src, &mut out).map_err(|e| e.to_string())?;
        out.sync_all().map_err(|e| e.to_string())?;
    }
    std::fs::rename(&tmp, &dest).map_err(|e| e.to_string())?;
    Ok(dest)
}

/// Called by the receiver before a pass of `sender` changes anything.
pub fn before_foreign_pass(
    state_dir: &Path,
    roots: &[PathBuf],
    state: &GenState,
    sender: &Generation,
    sender_node: &str,
) -> Result<(), String> {
    let Some(cur) = &state.current else {
        return Ok(());
    };
    if cur.id == sender.id {
        return Ok(());
    }
    let Ok(Some(data)) = changelog::read(state_dir, &cur.id) else {
        return Ok(()); // this node did not write its current generation
    };
    let v = changelog::parse(&data);
    if v.unsynced.is_empty() && v.gap_unsynced.is_empty() {
        return Ok(());
    }
    let mut keys: Vec<(u32, Vec<u8>)> = v.unsynced.iter().cloned().collect();
    // After a gap, what changed since the last mark (a walk, once).
    for (i, root) in roots.iter().enumerate() {
        let i = i as u32;
        if v.unsynced_known(i) {
            continue;
        }
        let since = v.last_sync_ms.get(&i).copied().unwrap_or(0);
        if let Ok(fd) = fsops::open_dir_path(root) {
            fsops::walk_beneath(fd.as_raw_fd(), b"", &|_| false, &mut |rel, m| {
                if let Some(m) = m {
                    if m.kind != Kind::Dir && ctime_ms(&m) + CTIME_SLACK_MS >= since {
                        keys.push((i, rel.to_vec()));
                    }
                }
            });
        }
    }
    let conflicts = records::dir(state_dir);
    let mut recs = Vec::new();
    for (root, rel) in keys {
        let Some(rp) = roots.get(root as usize) else {
            continue;
        };
        let Ok(rfd) = fsops::open_dir_path(rp) else {
            continue;
        };
        let Ok(comps) = fsops::check_rel(&rel) else {
            continue;
        };
        let Some(last) = comps.last() else { continue };
        let Ok(parent) = fsops::open_parent(rfd.as_raw_fd(), &comps, false) else {
            continue; // gone since
        };
        let Ok(name) = fsops::cstr(last) else {
            continue;
        };
        let Ok(st) = fsops::lstat_at(parent.as_raw_fd(), &name) else {
            continue;
        };
        let Some(m) = fsops::meta_of_stat(&st) else {
            continue;
        };
        if m.kind == Kind::Dir {
            continue;
        }
        let copy = keep_copy(
            &conflicts,
            &cur.id,
            root,
            &rel,
            parent.as_raw_fd(),
            &name,
            &m,
        )?;
        recs.push(Record {
            kind: "preserved".into(),
            path: rp
                .join(std::ffi::OsStr::from_bytes(&rel))
                .display()
                .to_string(),
            root,
            rel: String::from_utf8_lossy(&rel).into_owned(),
            copy: Some(copy.display().to_string()),
            generation: cur.id.clone(),
            counterpart_node: sender_node.to_string(),
            counterpart_generation: sender.id.clone(),
            at_ms: fsops::now_ms(),
        });
    }
    if let Ok(d) = fsops::open_dir_path(&conflicts) {
        let _ = fsops::syncfs(d.as_raw_fd());
    }
    records::append(state_dir, &recs).map_err(|e| format!("conflict records: {e}"))?;
    changelog::mark_synced(state_dir, &cur.id, roots.len() as u32)
        .map_err(|e| format!("change log: {e}"))?;
    if !recs.is_empty() {
        log::warn(&format!(
            "{} changes this node made in generation {} were never mirrored: kept under {} before {sender_node}'s pass (bulwark conflicts lists them)",
            recs.len(),
            cur.id,
            conflicts.display()
        ));
    }
    Ok(())
}
