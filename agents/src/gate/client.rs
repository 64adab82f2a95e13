//! The gate's end of a pull session: starts `bulwark-mirror pull` on the peer through
//! the mirror's transport (a local child, or ssh with the same options), with a
//! watchdog that ends the session at the pull deadline.

use super::proto::{self, Frame, PULL_VERSION};
use crate::mirror::config::{Config, Peer, Transport};
use crate::mirror::gen::GenState;
use crate::mirror::session::{mirror_command, receiver_args};
use crate::mirror::wire::Meta;
use std::io::{BufReader, BufWriter, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// How asking a peer went.
pub enum Reach {
    Open(Box<PullSession>),
    /// The peer answered and refused (it is the writer now, another writer pushes to it).
    Refused(String),
    Unreachable(String),
}

pub fn pull_command(cfg: &Config, peer: &Peer) -> Command {
    let mut args = receiver_args(cfg, peer);
    args[0] = "pull".into();
    mirror_command(cfg, peer, &args)
}

pub struct PullSession {
    pub name: String,
    pub state: GenState,
    child: Child,
    w: BufWriter<ChildStdin>,
    r: BufReader<ChildStdout>,
    done: Arc<AtomicBool>,
}

/// Receives a file's content chunk by chunk (index into the batch, bytes).
pub type DataSink<'a> = dyn FnMut(usize, &[u8]) -> Result<(), String> + 'a;

/// A file's content as it arrives.
pub enum Got {
    Absent,
    Entry { meta: Meta, target: Vec<u8> },
}

impl PullSession {
    pub fn connect(cfg: &Config, peer: &Peer, deadline: Instant) -> Reach {
        if let Transport::Local { state_dir, .. } = &peer.transport {
            // Locally mounted storage that is not there is a peer that is down.
            if !state_dir.is_dir() {
                return Reach::Unreachable(format!("{} does not exist", state_dir.display()));
            }
        }
        let mut cmd = pull_command(cfg, peer);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => return Reach::Unreachable(format!("starting the pull: {e}")),
        };
        let done = Arc::new(AtomicBool::new(false));
        {
            let done = done.clone();
            let pid = child.id() as i32;
            std::thread::spawn(move || {
                while Instant::now() < deadline {
                    if done.load(Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                if !done.load(Ordering::SeqCst) {
                    // SAFETY: our own child, not yet reaped (`done` is set before wait).
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            });
        }
        let w = BufWriter::with_capacity(1 << 16, child.stdin.take().expect("piped"));
        let r = BufReader::with_capacity(1 << 18, child.stdout.take().expect("piped"));
        let mut s = PullSession {
            name: peer.name.clone(),
            state: GenState::default(),
            child,
            w,
            r,
            done,
        };
        let hello = Frame::Hello {
            version: PULL_VERSION,
            set: cfg.set.clone(),
            node: cfg.node.clone(),
        };
        if let Err(e) = proto::send(&mut s.w, &hello).and_then(|_| s.w.flush()) {
            return Reach::Unreachable(e.to_string());
        }
        match proto::recv(&mut s.r) {
            Ok(Some(Frame::HelloOk { state_json })) => match serde_json::from_str(&state_json) {
                Ok(st) => {
                    s.state = st;
                    Reach::Open(Box::new(s))
                }
                Err(e) => Reach::Unreachable(format!("bad state from the peer: {e}")),
            },
            Ok(Some(Frame::Refused { reason })) => Reach::Refused(reason),
            Ok(_) => Reach::Unreachable("the peer closed the session (ssh failed?)".into()),
            Err(e) => Reach::Unreachable(e.to_string()),
        }
    }

    fn recv(&mut self) -> Result<Frame, String> {
        match proto::recv(&mut self.r) {
            Ok(Some(f)) => Ok(f),
            Ok(None) => Err(format!("{} closed the pull session", self.name)),
            Err(e) => Err(format!("reading from {}: {e}", self.name)),
        }
    }

    fn send(&mut self, f: &Frame) -> Result<(), String> {
        proto::send(&mut self.w, f).map_err(|e| format!("writing to {}: {e}", self.name))
    }

    fn flush(&mut self) -> Result<(), String> {
        self.w
            .flush()
            .map_err(|e| format!("writing to {}: {e}", self.name))
    }

    /// The change log of generation `gen` on the peer (None: the peer did not write it).
    pub fn log(&mut self, gen: &str) -> Result<Option<Vec<u8>>, String> {
        self.send(&Frame::LogReq { gen: gen.into() })?;
        self.flush()?;
        let found = match self.recv()? {
            Frame::Log { found } => found,
            other => return Err(format!("protocol error: {other:?}")),
        };
        let mut data = Vec::new();
        loop {
            match self.recv()? {
                Frame::Chunk(c) => data.extend_from_slice(&c),
                Frame::End => return Ok(found.then_some(data)),
                other => return Err(format!("protocol error: {other:?}")),
            }
        }
    }

    /// Every entry of the peer's roots: (root, path) -> (meta, link target).
    pub fn manifest(&mut self) -> Result<super::pull::RemoteMap, String> {
        self.send(&Frame::ManifestReq)?;
        self.flush()?;
        let mut out = super::pull::RemoteMap::new();
        loop {
            match self.recv()? {
                Frame::Entry {
                    root,
                    path,
                    meta,
                    target,
                } => {
                    out.insert((root, path), (meta, target));
                }
                Frame::End => return Ok(out),
                other => return Err(format!("protocol error: {other:?}")),
            }
        }
    }

    /// Asks for `keys` (pipelined), then hands each answer to `each`; a file's content
    /// goes to `data` chunk by chunk.
    pub fn get_batch(
        &mut self,
        keys: &[(u32, Vec<u8>)],
        each: &mut dyn FnMut(usize, Got) -> Result<(), String>,
        data: &mut DataSink,
    ) -> Result<(), String> {
        for (root, path) in keys {
            self.send(&Frame::Get {
                root: *root,
                path: path.clone(),
            })?;
        }
        self.flush()?;
        for (i, (root, path)) in keys.iter().enumerate() {
            match self.recv()? {
                Frame::Absent { root: r, path: p } if r == *root && p == *path => {
                    each(i, Got::Absent)?
                }
                Frame::Entry {
                    root: r,
                    path: p,
                    meta,
                    target,
                } if r == *root && p == *path => {
                    let is_file = meta.kind == crate::mirror::wire::Kind::File;
                    each(i, Got::Entry { meta, target })?;
                    if is_file {
                        loop {
                            match self.recv()? {
                                Frame::Chunk(c) => data(i, &c)?,
                                Frame::End => break,
                                other => return Err(format!("protocol error: {other:?}")),
                            }
                        }
                    }
                }
                other => return Err(format!("protocol error: {other:?}")),
            }
        }
        Ok(())
    }

    /// Tells the peer this node now has everything it logged in `gen`.
    pub fn synced(&mut self, gen: &str) -> Result<(), String> {
        self.send(&Frame::Synced { gen: gen.into() })?;
        self.flush()?;
        match self.recv()? {
            Frame::End => Ok(()),
            other => Err(format!("protocol error: {other:?}")),
        }
    }

    pub fn close(mut self) {
        let _ = proto::send(&mut self.w, &Frame::Bye);
        let _ = self.w.flush();
        self.done.store(true, Ordering::SeqCst);
        let _ = self.child.wait();
    }
}

impl Drop for PullSession {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
