//! The sender's end of one long-lived session per peer: starts the receiver (a local
//! child, or over `ssh`), says hello with the writer's generation, and sends entries.

use super::config::{Config, Peer, Transport};
use super::delta;
use super::gen::{GenState, Generation, PeerInfo};
use super::wire::{self, Kind, Meta, Msg, PROTOCOL_VERSION};
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// How long the sender waits for any answer (a commit of a large batch included).
const REPLY_TIMEOUT_MS: i32 = 300_000;

#[derive(Debug)]
pub enum SessionError {
    /// The receiver refused (stale generation, another writer, ...).
    Refused(String),
    Io(String),
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionError::Refused(r) => write!(f, "refused by the receiver: {r}"),
            SessionError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl From<io::Error> for SessionError {
    fn from(e: io::Error) -> Self {
        SessionError::Io(e.to_string())
    }
}

/// What a receiver manifest says is at a path.
#[derive(Debug, Clone)]
pub struct PeerEntry {
    pub meta: Meta,
    pub target: Vec<u8>,
}

pub type Manifest = HashMap<(u32, Vec<u8>), PeerEntry>;

/// Quotes one word for the remote shell ssh hands its command to.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-=:,+@".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The receiver's argv (after the program) for `peer`.
pub fn receiver_args(cfg: &Config, peer: &Peer) -> Vec<String> {
    let state_dir = match &peer.transport {
        Transport::Local { state_dir, .. } | Transport::Ssh { state_dir, .. } => state_dir,
    };
    let mut a = vec![
        "receive".to_string(),
        "--set".into(),
        cfg.set.clone(),
        "--state-dir".into(),
        state_dir.display().to_string(),
    ];
    for r in cfg.peer_roots(peer) {
        a.push("--root".into());
        a.push(r.display().to_string());
    }
    a
}

/// The command that starts the receiver for `peer`.
pub fn receiver_command(cfg: &Config, peer: &Peer) -> Command {
    mirror_command(cfg, peer, &receiver_args(cfg, peer))
}

/// The command that runs `bulwark-mirror <args>` on `peer`: a local child, or over ssh
/// (no shell locally; over ssh every word is quoted for the remote shell). The resync
/// gate reuses it to run other subcommands on a peer with the mirror's transport.
pub fn mirror_command(cfg: &Config, peer: &Peer, args: &[String]) -> Command {
    match &peer.transport {
        Transport::Local { .. } => {
            let mut c = Command::new(&cfg.mirror_bin);
            c.args(args);
            c
        }
        Transport::Ssh {
            host,
            options,
            receiver_path,
            ..
        } => {
            // ssh keeps the first value of an option: BatchMode is always set, the
            // admin's options come next, and the defaults last (ssh_options may set
            // its own ConnectTimeout or ServerAliveInterval).
            let mut c = Command::new("ssh");
            c.args(["-o", "BatchMode=yes"]);
            c.args(options);
            c.args(["-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=15"]);
            c.arg("--").arg(host);
            let mut remote = shell_quote(receiver_path);
            for a in args {
                remote.push(' ');
                remote.push_str(&shell_quote(a));
            }
            c.arg(remote);
            c
        }
    }
}

pub struct PeerSession {
    pub name: String,
    child: Child,
    w: BufWriter<ChildStdin>,
    r: BufReader<ChildStdout>,
    seq: u64,
    pub peer_state: GenState,
    /// The peer runs the set's writer itself.
    pub peer_writer: bool,
    pub bytes_sent: u64,
}

impl PeerSession {
    /// Starts the receiver and says hello. With `query`, only reads the peer's state.
    pub fn connect(
        cfg: &Config,
        peer: &Peer,
        gen: &Generation,
        query: bool,
    ) -> Result<PeerSession, SessionError> {
        let mut cmd = receiver_command(cfg, peer);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().map_err(|e| {
            SessionError::Io(format!("starting the receiver for {}: {e}", peer.name))
        })?;
        let w = BufWriter::with_capacity(1 << 18, child.stdin.take().expect("piped"));
        let r = BufReader::with_capacity(1 << 16, child.stdout.take().expect("piped"));
        let mut s = PeerSession {
            name: peer.name.clone(),
            child,
            w,
            r,
            seq: 0,
            peer_state: GenState::default(),
            peer_writer: false,
            bytes_sent: 0,
        };
        s.send(&Msg::Hello {
            version: PROTOCOL_VERSION,
            set: cfg.set.clone(),
            node: cfg.node.clone(),
            query,
            gen: gen.wire(),
        })?;
        s.w.flush()?;
        match s.recv()? {
            Msg::HelloOk { state_json } => {
                let info: PeerInfo = serde_json::from_str(&state_json).unwrap_or_default();
                s.peer_state = info.state;
                s.peer_writer = info.writer_running;
                Ok(s)
            }
            Msg::Refused { reason } => {
                s.kill();
                Err(SessionError::Refused(reason))
            }
            other => {
                s.kill();
                Err(SessionError::Io(format!("protocol error: {other:?}")))
            }
        }
    }

    fn send(&mut self, m: &Msg) -> io::Result<()> {
        let b = m.encode();
        self.bytes_sent += b.len() as u64;
        self.w.write_all(&b)
    }

    fn recv(&mut self) -> Result<Msg, SessionError> {
        use std::io::BufRead;
        if self.r.buffer().is_empty() {
            // A peer that stops answering (hung, stopped, half-open link) must not hold
            // the daemon forever: give up on the session, reconnect later.
            let mut pfd = libc::pollfd {
                fd: std::os::fd::AsRawFd::as_raw_fd(self.r.get_ref()),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, REPLY_TIMEOUT_MS) };
            if n == 0 {
                return Err(SessionError::Io(format!(
                    "no answer from {} in {} s",
                    self.name,
                    REPLY_TIMEOUT_MS / 1000
                )));
            }
            let _ = self.r.fill_buf();
        }
        match wire::recv(&mut self.r) {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Err(SessionError::Io(format!(
                "the receiver on {} closed the session",
                self.name
            ))),
            Err(e) => Err(SessionError::Io(format!("reading from {}: {e}", self.name))),
        }
    }

    pub fn manifest(&mut self) -> Result<Manifest, SessionError> {
        self.send(&Msg::ManifestReq { root: u32::MAX })?;
        self.w.flush()?;
        let mut out = HashMap::new();
        loop {
            match self.recv()? {
                Msg::ManifestEntry(e) => {
                    out.insert(
                        (e.root, e.path),
                        PeerEntry {
                            meta: e.meta,
                            target: e.target,
                        },
                    );
                }
                Msg::ManifestEnd => return Ok(out),
                other => return Err(SessionError::Io(format!("protocol error: {other:?}"))),
            }
        }
    }

    pub fn dir(&mut self, root: u32, rel: &[u8], meta: &Meta) -> io::Result<()> {
        self.send(&Msg::Dir {
            root,
            path: rel.to_vec(),
            meta: meta.clone(),
        })
    }

    pub fn delete(&mut self, root: u32, rel: &[u8]) -> io::Result<()> {
        self.send(&Msg::Delete {
            root,
            path: rel.to_vec(),
        })
    }

    pub fn symlink(
        &mut self,
        root: u32,
        rel: &[u8],
        meta: &Meta,
        target: Vec<u8>,
    ) -> io::Result<()> {
        self.send(&Msg::Symlink {
            root,
            path: rel.to_vec(),
            meta: meta.clone(),
            target,
        })
    }

    /// Sends a regular file from an open fd; returns the metadata actually sent (from
    /// its `fstat`), or `None` when it is no longer a regular file or cannot be read
    /// here (nothing was sent then). `peer_has` enables the block delta for large files.
    pub fn file(
        &mut self,
        root: u32,
        rel: &[u8],
        f: File,
        peer_has: Option<&Meta>,
    ) -> Result<Option<Meta>, SessionError> {
        let Ok(st) = super::fsops::fstat(std::os::fd::AsRawFd::as_raw_fd(&f)) else {
            return Ok(None);
        };
        let Some(meta) = super::fsops::meta_of_stat(&st).filter(|m| m.kind == Kind::File) else {
            return Ok(None);
        };
        if meta.size >= delta::DELTA_MIN
            && peer_has.is_some_and(|p| p.kind == Kind::File && p.size > 0)
        {
            if let Some(m) = self.try_delta(root, rel, &f, &meta)? {
                return Ok(Some(m));
            }
        }
        self.send(&Msg::FileBegin {
            root,
            path: rel.to_vec(),
            meta: meta.clone(),
        })?;
        let mut left = meta.size;
        let mut off = 0u64;
        let mut buf = vec![0u8; wire::CHUNK.min(meta.size.max(1) as usize)];
        while left > 0 {
            let want = (left as usize).min(buf.len());
            // A read error here (EIO) ends the file short: the receiver discards it.
            let n = f.read_at(&mut buf[..want], off).unwrap_or(0);
            if n == 0 {
                break; // shrank: the receiver sees the short size and discards it
            }
            self.send(&Msg::Chunk(buf[..n].to_vec()))?;
            off += n as u64;
            left -= n as u64;
        }
        self.send(&Msg::FileEnd)?;
        Ok(Some(meta))
    }

    fn try_delta(
        &mut self,
        root: u32,
        rel: &[u8],
        f: &File,
        meta: &Meta,
    ) -> Result<Option<Meta>, SessionError> {
        let block = delta::block_size(meta.size);
        self.send(&Msg::SigReq {
            root,
            path: rel.to_vec(),
            block,
        })?;
        self.w.flush()?;
        let (size, block, theirs) = match self.recv()? {
            Msg::Sig {
                size,
                block,
                hashes,
            } => (size, block, hashes),
            other => return Err(SessionError::Io(format!("protocol error: {other:?}"))),
        };
        if size == u64::MAX {
            return Ok(None);
        }
        let changed = delta::changed_blocks(f, block, &theirs)?;
        self.send(&Msg::DeltaBegin {
            root,
            path: rel.to_vec(),
            meta: meta.clone(),
            block,
        })?;
        let mut buf = vec![0u8; block as usize];
        for i in changed {
            let off = i * block as u64;
            if off >= meta.size {
                break;
            }
            let want = ((meta.size - off) as usize).min(block as usize);
            let mut got = 0;
            while got < want {
                let n = f.read_at(&mut buf[got..want], off + got as u64)?;
                if n == 0 {
                    break;
                }
                got += n;
            }
            self.send(&Msg::Block {
                index: i,
                data: buf[..got].to_vec(),
            })?;
        }
        self.send(&Msg::DeltaEnd)?;
        Ok(Some(meta.clone()))
    }

    /// Commits everything sent since the last commit; returns the receiver's failures.
    pub fn commit(&mut self) -> Result<Vec<(String, String)>, SessionError> {
        self.seq += 1;
        let seq = self.seq;
        self.send(&Msg::Commit { seq })?;
        self.w.flush()?;
        match self.recv()? {
            Msg::Committed { seq: s, failures } if s == seq => Ok(failures),
            other => Err(SessionError::Io(format!("protocol error: {other:?}"))),
        }
    }

    /// Tells the receiver a complete pass is done so it adopts the generation.
    pub fn pass_complete(&mut self) -> Result<GenState, SessionError> {
        self.send(&Msg::PassComplete)?;
        self.w.flush()?;
        match self.recv()? {
            Msg::PassOk { state_json } => {
                let info: PeerInfo = serde_json::from_str(&state_json).unwrap_or_default();
                self.peer_state = info.state;
                Ok(self.peer_state.clone())
            }
            other => Err(SessionError::Io(format!("protocol error: {other:?}"))),
        }
    }

    /// Ends the session cleanly.
    pub fn close(mut self) {
        let _ = self.send(&Msg::Bye);
        let _ = self.w.flush();

        let _ = self.child.wait();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn child_id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for PeerSession {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Asks `peer` for its generation state and whether it runs the writer, without
/// writing anything (also for the resync gate).
pub fn query(cfg: &Config, peer: &Peer) -> Result<PeerInfo, SessionError> {
    let s = PeerSession::connect(cfg, peer, &Generation::default(), true)?;
    let info = PeerInfo {
        node: peer.name.clone(),
        state: s.peer_state.clone(),
        writer_running: s.peer_writer,
    };
    s.close();
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What ssh itself makes of the command's options (`ssh -G` resolves them and
    /// connects nowhere).
    fn ssh_config(c: &Command) -> Option<String> {
        let args: Vec<_> = c.get_args().collect();
        let until_host = &args[..args.len() - 1]; // without the remote command
        let o = Command::new("ssh")
            .arg("-G")
            .args(until_host)
            .output()
            .ok()?;
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    }

    #[test]
    fn ssh_options_override_the_defaults_but_not_batch_mode() {
        let peer = Peer {
            name: "peer1".into(),
            transport: Transport::Ssh {
                host: "peer1".into(),
                options: ["-o", "ConnectTimeout=2", "-o", "BatchMode=no", "-p", "2222"]
                    .map(String::from)
                    .to_vec(),
                receiver_path: "/usr/libexec/bulwark/bulwark-mirror".into(),
                state_dir: "/var/lib/bulwark/mirror/s".into(),
                target: "/".into(),
            },
        };
        let cfg = Config {
            set: "s".into(),
            node: "n1".into(),
            paths: Vec::new(),
            peers: vec![peer.clone()],
            state_dir: "/var/lib/bulwark/mirror/s".into(),
            max_lag_ms: 0,
            verify_interval_ms: 0,
            exclude: Vec::new(),
            settle_ms: 0,
            mirror_bin: "/usr/libexec/bulwark/bulwark-mirror".into(),
        };
        let c = mirror_command(&cfg, &peer, &["receive".to_string()]);
        let Some(conf) = ssh_config(&c) else {
            eprintln!("SKIP: ssh -G is not available");
            return;
        };
        let has = |l: &str| conf.lines().any(|x| x == l);
        assert!(has("connecttimeout 2"), "{conf}");
        assert!(has("batchmode yes"), "{conf}");
        assert!(has("port 2222"), "{conf}");
        assert!(has("serveraliveinterval 15"), "{conf}");
    }

    #[test]
    fn quoting_for_the_remote_shell() {
        assert_eq!(
            shell_quote("/usr/libexec/bulwark/bulwark-mirror"),
            "/usr/libexec/bulwark/bulwark-mirror"
        );
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("x'; rm -rf /; '"), "'x'\\''; rm -rf /; '\\'''");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$(id)"), "'$(id)'");
    }
}
