//! `bulwark-mirror pull`: the peer side of a resync-gate pull. Read-only. While the
//! session lasts it holds the set's mirror daemon pidfile lock (so this node is not a
//! writer, and cannot become one) and the receiver lock (so no other writer pushes
//! here). Paths are validated and opened beneath the roots, never through a symlink.

use super::proto::{self, Frame, CHUNK, PULL_VERSION};
use crate::mirror::changelog;
use crate::mirror::fsops::{self, Beneath};
use crate::mirror::gen::GenState;
use crate::mirror::receiver::ReceiverConfig;
use crate::mirror::wire::Kind;
use ocf_metadata::log;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

fn try_lock(p: &Path, tries: u32) -> io::Result<Option<File>> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(p)?;
    for i in 0..tries {
        // SAFETY: valid fd.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(Some(f));
        }
        if i + 1 < tries {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    Ok(None)
}

pub fn serve_stdio(cfg: &ReceiverConfig) -> Result<(), String> {
    serve(cfg, io::stdin().lock(), io::stdout().lock())
}

pub fn serve(cfg: &ReceiverConfig, r: impl Read, w: impl Write) -> Result<(), String> {
    let mut r = BufReader::with_capacity(1 << 16, r);
    let mut w = BufWriter::with_capacity(1 << 18, w);
    let Ok(Some(Frame::Hello { version, set, node })) = proto::recv(&mut r) else {
        return Err("protocol error: expected a pull hello".into());
    };
    let refuse = |w: &mut BufWriter<_>, reason: String| -> Result<(), String> {
        log::warn(&format!(
            "pull of set '{}' by {node} refused: {reason}",
            cfg.set
        ));
        let _ = proto::send(
            w,
            &Frame::Refused {
                reason: reason.clone(),
            },
        );
        let _ = w.flush();
        Err(reason)
    };
    if version != PULL_VERSION {
        return refuse(&mut w, format!("pull protocol {version} not supported"));
    }
    if set != cfg.set {
        return refuse(&mut w, format!("set '{set}' does not match '{}'", cfg.set));
    }
    // A node that never held the set has no state dir: it answers as a fresh node
    // (nothing to pull, not a writer) and creates nothing.
    let fresh = !cfg.state_dir.is_dir();
    let mut _locks = Vec::new();
    if !fresh {
        // Not a writer now, and not one before this session ends.
        match try_lock(&crate::mirror::daemon::pidfile(&cfg.state_dir), 30) {
            Ok(Some(l)) => _locks.push(l),
            Ok(None) => {
                return refuse(
                    &mut w,
                    format!(
                    "this node is the writer of set '{}' right now (its file-mirror runs): stop \
                         the service here before pulling from it",
                    cfg.set
                ),
                )
            }
            Err(e) => return refuse(&mut w, format!("pidfile: {e}")),
        }
        match try_lock(&cfg.state_dir.join("receiver.lock"), 30) {
            Ok(Some(l)) => _locks.push(l),
            Ok(None) => {
                return refuse(
                    &mut w,
                    "another writer is mirroring to this node right now".into(),
                )
            }
            Err(e) => return refuse(&mut w, format!("receiver lock: {e}")),
        }
    }
    let state = if fresh {
        GenState {
            set: cfg.set.clone(),
            ..Default::default()
        }
    } else {
        GenState::load(&cfg.state_dir, &cfg.set).map_err(|e| e.to_string())?
    };
    let json = serde_json::to_string(&state).unwrap_or_default();
    proto::send(&mut w, &Frame::HelloOk { state_json: json })
        .and_then(|_| w.flush())
        .map_err(|e| e.to_string())?;
    log::info(&format!(
        "pull of set '{}' by {node}: session open",
        cfg.set
    ));
    let mut roots: Vec<Option<Beneath>> = cfg.roots.iter().map(|p| Beneath::new(p).ok()).collect();
    loop {
        let f = match proto::recv(&mut r) {
            Ok(None) | Ok(Some(Frame::Bye)) => break,
            Ok(Some(f)) => f,
            Err(e) => return Err(format!("pull session from {node}: {e}")),
        };
        let res = match f {
            Frame::LogReq { gen } => send_log(&mut w, &cfg.state_dir, &gen),
            Frame::ManifestReq => manifest(&mut w, &mut roots),
            Frame::Get { root, path } => get(&mut w, &mut roots, root, &path),
            Frame::Synced { gen } => {
                if !fresh
                    && gen.bytes().all(|b| b.is_ascii_alphanumeric())
                    && changelog::read(&cfg.state_dir, &gen)
                        .ok()
                        .flatten()
                        .is_some()
                {
                    if let Err(e) =
                        changelog::mark_synced(&cfg.state_dir, &gen, cfg.roots.len() as u32)
                    {
                        log::warn(&format!("marking generation {gen} synced: {e}"));
                    }
                }
                proto::send(&mut w, &Frame::End)
            }
            other => Err(io::Error::other(format!("unexpected frame {other:?}"))),
        };
        res.and_then(|_| w.flush())
            .map_err(|e| format!("pull session from {node}: {e}"))?;
    }
    Ok(())
}

fn send_log(w: &mut impl Write, state_dir: &Path, gen: &str) -> io::Result<()> {
    if !gen.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return proto::send(w, &Frame::Log { found: false })
            .and_then(|_| proto::send(w, &Frame::End));
    }
    match changelog::read(state_dir, gen)? {
        None => proto::send(w, &Frame::Log { found: false })?,
        Some(data) => {
            proto::send(w, &Frame::Log { found: true })?;
            for c in data.chunks(CHUNK) {
                proto::send(w, &Frame::Chunk(c.to_vec()))?;
            }
        }
    }
    proto::send(w, &Frame::End)
}

fn manifest(w: &mut impl Write, roots: &mut [Option<Beneath>]) -> io::Result<()> {
    for (i, b) in roots.iter_mut().enumerate() {
        let Some(b) = b else { continue };
        let mut err = Ok(());
        let fd = b.root_fd();
        let mut items = Vec::new();
        fsops::walk_beneath(fd, b"", &|_| false, &mut |rel, m| {
            if let Some(m) = m {
                items.push((rel.to_vec(), m));
            }
        });
        for (rel, meta) in items {
            let target = if meta.kind == Kind::Symlink {
                b.readlink(&rel).unwrap_or_default()
            } else {
                Vec::new()
            };
            if err.is_ok() {
                err = proto::send(
                    w,
                    &Frame::Entry {
                        root: i as u32,
                        path: rel,
                        meta,
                        target,
                    },
                );
            }
        }
        err?;
    }
    proto::send(w, &Frame::End)
}

fn get(w: &mut impl Write, roots: &mut [Option<Beneath>], root: u32, rel: &[u8]) -> io::Result<()> {
    let absent = |w: &mut dyn Write| {
        let f = Frame::Absent {
            root,
            path: rel.to_vec(),
        };
        w.write_all(&f.encode())
    };
    let Some(Some(b)) = roots.get_mut(root as usize) else {
        return absent(w);
    };
    if fsops::check_rel(rel).is_err() {
        log::error(&format!(
            "pull: refused path {:?}",
            String::from_utf8_lossy(rel)
        ));
        return absent(w);
    }
    let Ok(st) = b.lstat(rel) else {
        return absent(w);
    };
    let Some(meta) = fsops::meta_of_stat(&st) else {
        return absent(w);
    };
    match meta.kind {
        Kind::Dir => proto::send(
            w,
            &Frame::Entry {
                root,
                path: rel.to_vec(),
                meta,
                target: Vec::new(),
            },
        ),
        Kind::Symlink => {
            let Ok(t) = b.readlink(rel) else {
                return absent(w);
            };
            proto::send(
                w,
                &Frame::Entry {
                    root,
                    path: rel.to_vec(),
                    meta,
                    target: t,
                },
            )
        }
        Kind::File => {
            let Ok(f) = b.open_file(rel) else {
                return absent(w);
            };
            let st = fsops::fstat(f.as_raw_fd())?;
            let Some(meta) = fsops::meta_of_stat(&st).filter(|m| m.kind == Kind::File) else {
                return absent(w);
            };
            proto::send(
                w,
                &Frame::Entry {
                    root,
                    path: rel.to_vec(),
                    meta: meta.clone(),
                    target: Vec::new(),
                },
            )?;
            let mut off = 0u64;
            let mut buf = vec![0u8; CHUNK.min(meta.size.max(1) as usize)];
            while off < meta.size {
                let want = ((meta.size - off) as usize).min(buf.len());
                let n = f.read_at(&mut buf[..want], off).unwrap_or(0);
                if n == 0 {
                    break; // shrank or failed: the client sees the short size
                }
                proto::send(w, &Frame::Chunk(buf[..n].to_vec()))?;
                off += n as u64;
            }
            proto::send(w, &Frame::End)
        }
    }
}
