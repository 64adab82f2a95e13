//! File-system primitives shared by the sender and the receiver: `lstat` into [`Meta`],
//! relative-path validation, symlink-refusing directory walks with `openat`, and the
//! temporary-file naming that keeps partial files recognisable.

use super::wire::{Kind, Meta};
use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Every temporary file the receiver creates starts with this; nothing else does.
pub const TMP_PREFIX: &str = ".bulwark-tmp.";

/// Why a received path was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// `..`, `.`, an absolute path, an empty component or a NUL byte.
    Invalid(&'static str),
    /// The path would pass through a symlink (or a non-directory) on the receiver.
    ThroughSymlink(String),
    Io(String),
}

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PathError::Invalid(why) => write!(f, "invalid path: {why}"),
            PathError::ThroughSymlink(c) => {
                write!(f, "path passes through a symlink or non-directory at '{c}'")
            }
            PathError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Checks a relative path received from a sender: no leading '/', no empty, `.` or `..`
/// component, no NUL. The empty path means the root itself.
pub fn check_rel(path: &[u8]) -> Result<Vec<&[u8]>, PathError> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    if path[0] == b'/' {
        return Err(PathError::Invalid("absolute path"));
    }
    if path.contains(&0) {
        return Err(PathError::Invalid("NUL byte in path"));
    }
    let mut out = Vec::new();
    for c in path.split(|b| *b == b'/') {
        match c {
            b"" => return Err(PathError::Invalid("empty path component")),
            b"." => return Err(PathError::Invalid("'.' component")),
            b".." => return Err(PathError::Invalid("'..' component")),
            _ => out.push(c),
        }
    }
    Ok(out)
}

pub fn cstr(b: &[u8]) -> io::Result<CString> {
    CString::new(b).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in name"))
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Opens a directory by path (used for configured roots only: their ancestors may be
/// symlinks an admin set up, like /var/mail -> spool/mail).
pub fn open_dir_path(path: &Path) -> io::Result<OwnedFd> {
    let c = cstr(path.as_os_str().as_bytes())?;
    // SAFETY: valid C string; the fd is owned by the returned OwnedFd.
    let fd = cvt(unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    })?;
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens `name` below `dir` as a directory, never following a symlink.
pub fn open_subdir(dir: RawFd, name: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: valid fd and C string.
    let fd = cvt(unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    })?;
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Walks the parent components of `comps` below `root`, refusing symlinks and
/// non-directories. With `create`, missing directories are made (mode 0700 until
/// their own `Dir` entry sets the real metadata).
pub fn open_parent(root: RawFd, comps: &[&[u8]], create: bool) -> Result<OwnedFd, PathError> {
    // SAFETY: dup of a valid fd.
    let mut cur = unsafe { OwnedFd::from_raw_fd(libc::fcntl(root, libc::F_DUPFD_CLOEXEC, 0)) };
    if comps.len() <= 1 {
        return Ok(cur);
    }
    let mut sofar = Vec::new();
    for c in &comps[..comps.len() - 1] {
        if !sofar.is_empty() {
            sofar.push(b'/');
        }
        sofar.extend_from_slice(c);
        let name = cstr(c).map_err(|e| PathError::Io(e.to_string()))?;
        match open_subdir(cur.as_raw_fd(), &name) {
            Ok(fd) => cur = fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && create => {
                // SAFETY: valid fd and C string.
                let r = unsafe { libc::mkdirat(cur.as_raw_fd(), name.as_ptr(), 0o700) };
                if r < 0 {
                    let e = io::Error::last_os_error();
                    if e.raw_os_error() != Some(libc::EEXIST) {
                        return Err(PathError::Io(format!(
                            "mkdir {}: {e}",
                            String::from_utf8_lossy(&sofar)
                        )));
                    }
                }
                cur = open_subdir(cur.as_raw_fd(), &name).map_err(|e| classify(e, &sofar))?;
            }
            Err(e) => return Err(classify(e, &sofar)),
        }
    }
    Ok(cur)
}

fn classify(e: io::Error, at: &[u8]) -> PathError {
    match e.raw_os_error() {
        Some(libc::ELOOP) | Some(libc::ENOTDIR) => {
            PathError::ThroughSymlink(String::from_utf8_lossy(at).into_owned())
        }
        _ => PathError::Io(format!("{}: {e}", String::from_utf8_lossy(at))),
    }
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`.
pub fn lstat_at(dir: RawFd, name: &CStr) -> io::Result<libc::stat> {
    // SAFETY: out-pointer to a zeroed stat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    cvt(unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(st)
}

pub fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: out-pointer to a zeroed stat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    cvt(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st)
}

/// What a `stat` mode is, for the entries the mirror handles.
pub fn kind_of_mode(mode: u32) -> Option<Kind> {
    match mode & libc::S_IFMT {
        libc::S_IFREG => Some(Kind::File),
        libc::S_IFDIR => Some(Kind::Dir),
        libc::S_IFLNK => Some(Kind::Symlink),
        _ => None,
    }
}

pub fn meta_of_stat(st: &libc::stat) -> Option<Meta> {
    Some(Meta {
        kind: kind_of_mode(st.st_mode)?,
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
        size: st.st_size as u64,
        mtime_sec: st.st_mtime,
        mtime_nsec: st.st_mtime_nsec as u32,
        ino: st.st_ino,
        ctime_sec: st.st_ctime,
        ctime_nsec: st.st_ctime_nsec as u32,
    })
}

/// The metadata of a `std::fs::Metadata` (from `symlink_metadata`); `None` for sockets,
/// devices and fifos.
pub fn meta_of(md: &std::fs::Metadata) -> Option<Meta> {
    Some(Meta {
        kind: kind_of_mode(md.mode())?,
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        size: md.size(),
        mtime_sec: md.mtime(),
        mtime_nsec: md.mtime_nsec() as u32,
        ino: md.ino(),
        ctime_sec: md.ctime(),
        ctime_nsec: md.ctime_nsec() as u32,
    })
}

/// A temporary name next to `name`: `.bulwark-tmp.<name prefix>.<pid>.<n>`.
pub fn tmp_name(name: &[u8], n: u64) -> Vec<u8> {
    let mut out = TMP_PREFIX.as_bytes().to_vec();
    out.extend_from_slice(&name[..name.len().min(120)]);
    out.extend_from_slice(format!(".{}.{n}", std::process::id()).as_bytes());
    out
}

pub fn is_tmp_name(name: &OsStr) -> bool {
    name.as_bytes().starts_with(TMP_PREFIX.as_bytes())
}

/// Sets owner (when allowed), mode (not for symlinks) and nanosecond mtime of
/// `name` below `dir` without following a final symlink.
pub fn set_meta_at(dir: RawFd, name: &CStr, meta: &Meta, chown: bool) -> io::Result<()> {
    // SAFETY: valid fd and C strings throughout.
    unsafe {
        if chown {
            cvt(libc::fchownat(
                dir,
                name.as_ptr(),
                meta.uid,
                meta.gid,
                libc::AT_SYMLINK_NOFOLLOW,
            ))?;
        }
        if meta.kind != Kind::Symlink {
            cvt(libc::fchmodat(dir, name.as_ptr(), meta.mode, 0))?;
        }
        let ts = times(meta);
        cvt(libc::utimensat(
            dir,
            name.as_ptr(),
            ts.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        ))?;
    }
    Ok(())
}

/// The same on an open fd (files and directories).
pub fn set_meta_fd(fd: RawFd, meta: &Meta, chown: bool) -> io::Result<()> {
    // SAFETY: valid fd.
    unsafe {
        if chown {
            cvt(libc::fchown(fd, meta.uid, meta.gid))?;
        }
        cvt(libc::fchmod(fd, meta.mode))?;
        let ts = times(meta);
        cvt(libc::futimens(fd, ts.as_ptr()))?;
    }
    Ok(())
}

fn times(meta: &Meta) -> [libc::timespec; 2] {
    [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: meta.mtime_sec,
            tv_nsec: meta.mtime_nsec as i64,
        },
    ]
}

pub fn fsync(fd: RawFd) -> io::Result<()> {
    // SAFETY: valid fd.
    cvt(unsafe { libc::fsync(fd) }).map(|_| ())
}

pub fn syncfs(fd: RawFd) -> io::Result<()> {
    // SAFETY: valid fd.
    cvt(unsafe { libc::syncfs(fd) }).map(|_| ())
}

pub fn renameat(dir: RawFd, from: &CStr, to: &CStr) -> io::Result<()> {
    // SAFETY: valid fd and C strings.
    cvt(unsafe { libc::renameat(dir, from.as_ptr(), dir, to.as_ptr()) }).map(|_| ())
}

/// Makes `path` a directory only root can enter (0700), creating it if missing: for
/// directories that hold second names of files from a tree (conflict copies, the
/// trash), which must not become readable through a more open parent.
pub fn private_dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let md = std::fs::symlink_metadata(path)?;
            if !md.is_dir() {
                return Err(io::Error::other(format!(
                    "{} is not a directory",
                    path.display()
                )));
            }
            if md.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// `renameat` from one directory to another (same file system).
pub fn rename_between(from_dir: RawFd, from: &CStr, to_dir: RawFd, to: &CStr) -> io::Result<()> {
    // SAFETY: valid fds and C strings.
    cvt(unsafe { libc::renameat(from_dir, from.as_ptr(), to_dir, to.as_ptr()) }).map(|_| ())
}

/// A second name for `name` (never following a symlink): `linkat` without flags.
pub fn link_between(from_dir: RawFd, from: &CStr, to_dir: RawFd, to: &CStr) -> io::Result<()> {
    // SAFETY: valid fds and C strings.
    cvt(unsafe { libc::linkat(from_dir, from.as_ptr(), to_dir, to.as_ptr(), 0) }).map(|_| ())
}

/// The machine's dirty page-cache data not yet on disk (`Dirty` + `Writeback` in
/// /proc/meminfo), in KiB: an upper bound of what a `syncfs` of any one file system
/// has to write besides the caller's own data. None when unknown.
pub fn dirty_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let mut total = 0;
    let mut found = 0;
    for l in s.lines() {
        let mut it = l.split_whitespace();
        if let (Some("Dirty:" | "Writeback:"), Some(v)) = (it.next(), it.next()) {
            total += v.parse::<u64>().ok()?;
            found += 1;
        }
    }
    (found == 2).then_some(total)
}

pub fn unlinkat(dir: RawFd, name: &CStr, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: valid fd and C string.
    cvt(unsafe { libc::unlinkat(dir, name.as_ptr(), flags) }).map(|_| ())
}

/// Removes `name` below `dir` whatever it is; directories recursively, never
/// following a symlink. Missing is fine.
pub fn remove_at(dir: RawFd, name: &CStr) -> io::Result<()> {
    let st = match lstat_at(dir, name) {
        Ok(st) => st,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return match unlinkat(dir, name, 0) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            r => r,
        };
    }
    let sub = open_subdir(dir, name)?;
    let names = list_dir(sub.as_raw_fd())?;
    for n in names {
        remove_at(sub.as_raw_fd(), &n)?;
    }
    match unlinkat(dir, name, libc::AT_REMOVEDIR) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// The names in a directory (without `.` and `..`).
pub fn list_dir(dir: RawFd) -> io::Result<Vec<CString>> {
    // SAFETY: dup the fd so closedir does not close the caller's.
    let dup = cvt(unsafe { libc::fcntl(dir, libc::F_DUPFD_CLOEXEC, 0) })?;
    let dp = unsafe { libc::fdopendir(dup) };
    if dp.is_null() {
        let e = io::Error::last_os_error();
        unsafe { libc::close(dup) };
        return Err(e);
    }
    unsafe { libc::rewinddir(dp) };
    let mut out = Vec::new();
    loop {
        // SAFETY: dp is a valid DIR*.
        let ent = unsafe { libc::readdir64(dp) };
        if ent.is_null() {
            break;
        }
        let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) };
        let b = name.to_bytes();
        if b == b"." || b == b".." {
            continue;
        }
        out.push(name.to_owned());
    }
    unsafe { libc::closedir(dp) };
    Ok(out)
}

/// Reads a symlink's target below `dir`.
pub fn readlink_at(dir: RawFd, name: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    // SAFETY: buffer of the given length.
    let n = unsafe {
        libc::readlinkat(
            dir,
            name.as_ptr(),
            buf.as_mut_ptr() as *mut libc::c_char,
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// A random 64-bit value from the kernel, as 16 hex digits.
pub fn random_hex() -> String {
    let mut b = [0u8; 8];
    // SAFETY: buffer of 8 bytes.
    let n = unsafe { libc::getrandom(b.as_mut_ptr() as *mut libc::c_void, 8, 0) };
    if n != 8 {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        b = (t ^ ((std::process::id() as u64) << 32)).to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Writes `data` to `path` atomically and durably (tmp in the same dir, fsync, rename,
/// fsync of the directory). Used for state files.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().unwrap_or_default().as_bytes();
    let tmp = dir.join(OsStr::from_bytes(&tmp_name(name, 0)));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    let d = open_dir_path(dir)?;
    fsync(d.as_raw_fd())
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// Opens entries beneath a root by relative path, never following a symlink below the
/// root (the sender's side of guarantee 8: nothing outside a root is ever read, even
/// if a directory is swapped for a symlink meanwhile). Reuses the last parent fd.
pub struct Beneath {
    root: OwnedFd,
    last: Option<(Vec<u8>, std::rc::Rc<OwnedFd>)>,
}

impl Beneath {
    pub fn new(root: &Path) -> io::Result<Beneath> {
        Ok(Beneath {
            root: open_dir_path(root)?,
            last: None,
        })
    }

    pub fn root_fd(&self) -> RawFd {
        self.root.as_raw_fd()
    }

    /// The parent directory fd and the last component of `rel` (non-empty).
    pub fn parent(&mut self, rel: &[u8]) -> io::Result<(std::rc::Rc<OwnedFd>, CString)> {
        let comps = check_rel(rel)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let Some(last) = comps.last() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the root has no parent",
            ));
        };
        let name = cstr(last)?;
        let dir = rel[..rel.len() - last.len()].to_vec();
        if let Some((k, fd)) = &self.last {
            if *k == dir {
                return Ok((fd.clone(), name));
            }
        }
        let fd = std::rc::Rc::new(open_parent(self.root.as_raw_fd(), &comps, false).map_err(
            |e| match e {
                PathError::ThroughSymlink(_) => io::Error::from_raw_os_error(libc::ELOOP),
                PathError::Io(m) if m.contains("No such file") => {
                    io::Error::from_raw_os_error(libc::ENOENT)
                }
                other => io::Error::other(other.to_string()),
            },
        )?);
        self.last = Some((dir, fd.clone()));
        Ok((fd, name))
    }

    /// `lstat` of `rel` (the root itself for the empty path).
    pub fn lstat(&mut self, rel: &[u8]) -> io::Result<libc::stat> {
        if rel.is_empty() {
            return fstat(self.root.as_raw_fd());
        }
        let (dir, name) = self.parent(rel)?;
        lstat_at(dir.as_raw_fd(), &name)
    }

    /// Opens a regular file for reading (never through or at a symlink).
    pub fn open_file(&mut self, rel: &[u8]) -> io::Result<std::fs::File> {
        let (dir, name) = self.parent(rel)?;
        // SAFETY: valid fd and C string; the fd is owned by the File.
        let fd = cvt(unsafe {
            libc::openat(
                dir.as_raw_fd(),
                name.as_ptr(),
                libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        })?;
        Ok(unsafe { std::fs::File::from_raw_fd(fd) })
    }

    pub fn readlink(&mut self, rel: &[u8]) -> io::Result<Vec<u8>> {
        let (dir, name) = self.parent(rel)?;
        readlink_at(dir.as_raw_fd(), &name)
    }
}

/// Walks the tree below `root` without following symlinks, parents before children,
/// names sorted; skips temporary names and names matching `skip`. Calls `f` with the
/// relative path and the metadata (`None` for sockets, devices, fifos).
pub fn walk_beneath(
    root: RawFd,
    rel: &[u8],
    skip: &dyn Fn(&[u8]) -> bool,
    f: &mut dyn FnMut(&[u8], Option<Meta>),
) {
    let Ok(st) = fstat(root) else {
        return;
    };
    f(rel, meta_of_stat(&st));
    walk_dir(root, &mut rel.to_vec(), skip, f);
}

fn walk_dir(
    dir: RawFd,
    prefix: &mut Vec<u8>,
    skip: &dyn Fn(&[u8]) -> bool,
    f: &mut dyn FnMut(&[u8], Option<Meta>),
) {
    let Ok(mut names) = list_dir(dir) else {
        return;
    };
    names.sort();
    for name in names {
        let nb = name.as_bytes();
        if nb.starts_with(TMP_PREFIX.as_bytes()) {
            continue;
        }
        let len = prefix.len();
        if !prefix.is_empty() {
            prefix.push(b'/');
        }
        prefix.extend_from_slice(nb);
        if !skip(prefix) {
            if let Ok(st) = lstat_at(dir, &name) {
                let meta = meta_of_stat(&st);
                f(prefix, meta.clone());
                if meta.map(|m| m.kind) == Some(Kind::Dir) {
                    if let Ok(sub) = open_subdir(dir, &name) {
                        walk_dir(sub.as_raw_fd(), prefix, skip, f);
                    }
                }
            }
        }
        prefix.truncate(len);
    }
}

/// Opens directory `rel` below `root` (the root itself for the empty path) without
/// following symlinks.
pub fn open_dir_beneath(b: &mut Beneath, rel: &[u8]) -> io::Result<OwnedFd> {
    if rel.is_empty() {
        // SAFETY: dup of a valid fd.
        let fd = cvt(unsafe { libc::fcntl(b.root_fd(), libc::F_DUPFD_CLOEXEC, 0) })?;
        return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    let (dir, name) = b.parent(rel)?;
    open_subdir(dir.as_raw_fd(), &name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_checked() {
        assert_eq!(check_rel(b"a/b").unwrap(), vec![&b"a"[..], b"b"]);
        assert!(check_rel(b"").unwrap().is_empty());
        for bad in [
            &b"/etc/passwd"[..],
            b"../x",
            b"a/../../x",
            b"a//b",
            b"a/./b",
            b"a/",
            b"a\0b",
            b"..",
        ] {
            assert!(
                check_rel(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn beneath_never_follows_symlinks() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("d")).unwrap();
        std::fs::write(t.path().join("d/f"), b"in").unwrap();
        std::fs::write(t.path().join("secret"), b"out").unwrap();
        std::fs::create_dir(t.path().join("root")).unwrap();
        std::os::unix::fs::symlink(t.path().join("d"), t.path().join("root/via")).unwrap();
        std::os::unix::fs::symlink(t.path().join("secret"), t.path().join("root/s")).unwrap();
        std::fs::create_dir(t.path().join("root/real")).unwrap();
        std::fs::write(t.path().join("root/real/x"), b"x").unwrap();
        let mut b = Beneath::new(&t.path().join("root")).unwrap();
        assert!(b.open_file(b"via/f").is_err());
        assert!(b.open_file(b"s").is_err());
        assert!(b.lstat(b"via/f").is_err());
        assert_eq!(
            b.readlink(b"s").unwrap(),
            t.path().join("secret").as_os_str().as_bytes()
        );
        assert!(b.open_file(b"real/x").is_ok());
        let mut seen = Vec::new();
        walk_beneath(b.root_fd(), b"", &|_| false, &mut |p, m| {
            seen.push((String::from_utf8_lossy(p).into_owned(), m.map(|m| m.kind)))
        });
        let names: Vec<&str> = seen.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(names, vec!["", "real", "real/x", "s", "via"]);
    }

    #[test]
    fn parent_walk_refuses_symlinks() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("real")).unwrap();
        std::os::unix::fs::symlink("/tmp", t.path().join("link")).unwrap();
        let root = open_dir_path(t.path()).unwrap();
        assert!(open_parent(root.as_raw_fd(), &[b"real", b"f"], false).is_ok());
        match open_parent(root.as_raw_fd(), &[b"link", b"f"], true) {
            Err(PathError::ThroughSymlink(c)) => assert_eq!(c, "link"),
            other => panic!("{other:?}"),
        }
        assert!(open_parent(root.as_raw_fd(), &[b"new", b"f"], true).is_ok());
        assert!(t.path().join("new").is_dir());
    }
}
