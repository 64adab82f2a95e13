//! Large-file delta: a fixed-block hash delta. The receiver hashes its current version
//! in blocks (BLAKE3, truncated to 128 bits; block size about sqrt(size), 8-128 KiB as
//! rsync chooses); the sender hashes its version with the same blocks and sends only the
//! blocks whose hash differs. The receiver seeds its temporary file from the current
//! version with `copy_file_range` (in-kernel, no user-space copy), writes the blocks,
//! and installs the result atomically like any file.
//!
//! It finds in-place changes (databases, images, logs appended), not insertions that
//! shift the data; rsync's rolling checksum handles those, at the cost of a much more
//! expensive search. Every block hash is compared, so a wrong match needs a 128-bit
//! BLAKE3 collision.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::FileExt;

/// Files at least this large go through the delta when the peer has a version.
pub const DELTA_MIN: u64 = 1 << 20;

/// The block size for a file of `size` bytes: sqrt(size) rounded up to a power of two,
/// within 8 KiB..=128 KiB.
pub fn block_size(size: u64) -> u32 {
    let s = (size as f64).sqrt() as u64;
    s.next_power_of_two().clamp(8 << 10, 128 << 10) as u32
}

pub fn hash_block(data: &[u8]) -> [u8; 16] {
    let h = blake3::hash(data);
    h.as_bytes()[..16].try_into().unwrap()
}

/// Hashes `f` in blocks of `block` bytes; returns its size and the hashes.
pub fn signature(f: &File, block: u32) -> io::Result<(u64, Vec<[u8; 16]>)> {
    let size = f.metadata()?.len();
    let mut hashes = Vec::with_capacity((size / block as u64 + 1) as usize);
    let per_read = (block as usize).max(1 << 20) / block as usize * block as usize;
    let mut buf = vec![0u8; per_read];
    let mut off = 0u64;
    while off < size {
        let want = ((size - off) as usize).min(per_read);
        let n = read_full_at(f, &mut buf[..want], off)?;
        if n == 0 {
            break;
        }
        for c in buf[..n].chunks(block as usize) {
            hashes.push(hash_block(c));
        }
        off += n as u64;
    }
    Ok((size, hashes))
}

fn read_full_at(f: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        let n = f.read_at(&mut buf[got..], off + got as u64)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(got)
}

/// Opens `name` below `dir` for reading if it is a regular file (never a symlink).
pub fn open_regular(dir: RawFd, name: &CStr) -> io::Result<File> {
    // SAFETY: valid fd and C string; the fd is owned by the File.
    let fd = unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let f = unsafe { File::from_raw_fd(fd) };
    if !f.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(f)
}

/// Fills `tmp` with the first `new_size` bytes of the current version of `name` (zero
/// padded), the basis the delta's blocks are written over.
pub fn seed_from_old(dir: RawFd, name: &CStr, tmp: &File, new_size: u64) -> io::Result<()> {
    let old = open_regular(dir, name)?;
    let old_size = old.metadata()?.len();
    let mut left = old_size.min(new_size);
    let mut off_in: i64 = 0;
    let mut off_out: i64 = 0;
    while left > 0 {
        // SAFETY: valid fds and offsets.
        let n = unsafe {
            libc::copy_file_range(
                old.as_raw_fd(),
                &mut off_in,
                tmp.as_raw_fd(),
                &mut off_out,
                left.min(1 << 30) as usize,
                0,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if matches!(
                e.raw_os_error(),
                Some(libc::EXDEV) | Some(libc::ENOSYS) | Some(libc::EINVAL)
            ) {
                return copy_plain(&old, tmp, off_in as u64, left);
            }
            return Err(e);
        }
        if n == 0 {
            break;
        }
        left -= n as u64;
    }
    tmp.set_len(new_size)
}

fn copy_plain(old: &File, tmp: &File, mut off: u64, mut left: u64) -> io::Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let want = (left as usize).min(buf.len());
        let n = read_full_at(old, &mut buf[..want], off)?;
        if n == 0 {
            break;
        }
        tmp.write_all_at(&buf[..n], off)?;
        off += n as u64;
        left -= n as u64;
    }
    Ok(())
}

/// The indexes of the blocks of `f` (of `size` bytes) that differ from `theirs`.
pub fn changed_blocks(f: &File, block: u32, theirs: &[[u8; 16]]) -> io::Result<Vec<u64>> {
    let (_, mine) = signature(f, block)?;
    Ok(mine
        .iter()
        .enumerate()
        .filter(|(i, h)| theirs.get(*i) != Some(h))
        .map(|(i, _)| i as u64)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn block_sizes_follow_sqrt() {
        assert_eq!(block_size(1 << 30), 32 << 10);
        assert_eq!(block_size(1 << 20), 8 << 10);
        assert_eq!(block_size(1 << 40), 128 << 10);
    }

    #[test]
    fn only_changed_blocks_differ() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        let mut data = vec![7u8; 100_000];
        std::fs::File::create(&p).unwrap().write_all(&data).unwrap();
        let f = File::open(&p).unwrap();
        let (size, sig) = signature(&f, 8192).unwrap();
        assert_eq!(size, 100_000);
        assert_eq!(sig.len(), 13);
        data[50_000] = 1;
        std::fs::write(&p, &data).unwrap();
        let f = File::open(&p).unwrap();
        assert_eq!(changed_blocks(&f, 8192, &sig).unwrap(), vec![6]);
    }
}
