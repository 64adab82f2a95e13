//! The framed protocol between the mirror sender and the receiver, over any byte stream
//! (a local child's stdio, or `ssh` to the peer). Each frame is a little-endian `u32`
//! length, a one-byte tag and the payload. Paths travel as (root index, relative path
//! bytes); the receiver validates every one of them (see `fsops::check_rel`).

use std::io::{self, Read, Write};

/// Bumped whenever a frame changes shape.
pub const PROTOCOL_VERSION: u32 = 1;
/// Frames larger than this are refused (a chunk is at most [`CHUNK`]).
pub const MAX_FRAME: usize = 8 << 20;
/// The data chunk size of file transfers.
pub const CHUNK: usize = 256 << 10;

/// What kind of entry a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    File = 1,
    Dir = 2,
    Symlink = 3,
}

impl Kind {
    fn from_u8(b: u8) -> io::Result<Kind> {
        match b {
            1 => Ok(Kind::File),
            2 => Ok(Kind::Dir),
            3 => Ok(Kind::Symlink),
            _ => Err(bad("unknown entry kind")),
        }
    }
}

/// The metadata the mirror keeps. `ino` and `ctime` are local-only (the sender's quick
/// check after an overflow) and are not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub kind: Kind,
    /// Permission bits including setuid/setgid/sticky (`mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime_sec: i64,
    pub mtime_nsec: u32,
    pub ino: u64,
    pub ctime_sec: i64,
    pub ctime_nsec: u32,
}

impl Meta {
    /// Equal as far as the peer can tell (what a manifest compare uses).
    pub fn same_on_peer(&self, other: &Meta) -> bool {
        self.kind == other.kind
            && (self.kind == Kind::Symlink || self.mode == other.mode)
            && self.uid == other.uid
            && self.gid == other.gid
            && (self.kind != Kind::File || self.size == other.size)
            && self.mtime_sec == other.mtime_sec
            && self.mtime_nsec == other.mtime_nsec
    }

    /// The local quick check: also inode and ctime (a rename-over or chmod changes them).
    pub fn same_local(&self, other: &Meta) -> bool {
        self.same_on_peer(other)
            && self.ino == other.ino
            && self.ctime_sec == other.ctime_sec
            && self.ctime_nsec == other.ctime_nsec
    }
}

/// One entry of a receiver manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub root: u32,
    pub path: Vec<u8>,
    pub meta: Meta,
    /// The link target for symlinks.
    pub target: Vec<u8>,
}

/// A generation as it travels: its id and its ancestors, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GenWire {
    pub id: String,
    pub history: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// Sender -> receiver: first frame. `query` asks only for the receiver's state.
    Hello {
        version: u32,
        set: String,
        node: String,
        query: bool,
        gen: GenWire,
    },
    /// Receiver -> sender: accepted; its generation state as JSON.
    HelloOk {
        state_json: String,
    },
    /// Receiver -> sender: refused (stale generation, busy, ...). The session ends.
    Refused {
        reason: String,
    },
    /// Sender -> receiver: walk root `root` (or all roots when `u32::MAX`) and list it.
    ManifestReq {
        root: u32,
    },
    ManifestEntry(Entry),
    ManifestEnd,
    /// Create (if needed) a directory and set its metadata at commit.
    Dir {
        root: u32,
        path: Vec<u8>,
        meta: Meta,
    },
    Symlink {
        root: u32,
        path: Vec<u8>,
        meta: Meta,
        target: Vec<u8>,
    },
    /// A whole file follows as `Chunk` frames (exactly `meta.size` bytes), then `FileEnd`.
    FileBegin {
        root: u32,
        path: Vec<u8>,
        meta: Meta,
    },
    Chunk(Vec<u8>),
    FileEnd,
    /// Ask for the block hashes of the receiver's current version of a file.
    SigReq {
        root: u32,
        path: Vec<u8>,
        block: u32,
    },
    /// `size == u64::MAX` when the receiver has no regular file there.
    Sig {
        size: u64,
        block: u32,
        hashes: Vec<[u8; 16]>,
    },
    /// A file built from the receiver's current version plus the `Block`s that follow.
    DeltaBegin {
        root: u32,
        path: Vec<u8>,
        meta: Meta,
        block: u32,
    },
    Block {
        index: u64,
        data: Vec<u8>,
    },
    DeltaEnd,
    Delete {
        root: u32,
        path: Vec<u8>,
    },
    /// Make everything since the last commit durable and visible; answered by `Committed`.
    Commit {
        seq: u64,
    },
    Committed {
        seq: u64,
        failures: Vec<(String, String)>,
    },
    /// The sender finished a complete pass: the receiver adopts the sender's generation.
    PassComplete,
    PassOk {
        state_json: String,
    },
    Bye,
}

pub(crate) fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Builds one frame: the length (filled in by [`Enc::finish`]), then what the caller
/// puts: its tag byte first, then the payload in little-endian primitives. The gate's
/// pull protocol (`gate::proto`) builds its frames with it too.
pub(crate) struct Enc(Vec<u8>);

impl Enc {
    /// A new frame: room for its length, nothing else yet.
    pub(crate) fn frame() -> Enc {
        let mut e = Enc(Vec::with_capacity(64));
        e.u32(0); // length, patched by finish
        e
    }
    /// The frame, its length filled in.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        let len = (self.0.len() - 4) as u32;
        self.0[..4].copy_from_slice(&len.to_le_bytes());
        self.0
    }
    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v)
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes())
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes())
    }
    pub(crate) fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes())
    }
    /// Bytes with no length before them (a frame's last field: a chunk of data).
    pub(crate) fn raw(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b)
    }
    /// A `u32` length, then the bytes.
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
    pub(crate) fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes())
    }
    /// What the peer keeps of `m`: kind, mode, uid, gid, size, mtime (not ino, ctime).
    pub(crate) fn meta(&mut self, m: &Meta) {
        self.u8(m.kind as u8);
        self.u32(m.mode);
        self.u32(m.uid);
        self.u32(m.gid);
        self.u64(m.size);
        self.i64(m.mtime_sec);
        self.u32(m.mtime_nsec);
    }
}

/// Reads a frame's fields back, as [`Enc`] wrote them; a frame too short for them is an
/// error, never a panic.
pub(crate) struct Dec<'a>(&'a [u8]);

impl<'a> Dec<'a> {
    /// Reads `frame`: what [`read_frame`] returns (tag first).
    pub(crate) fn new(frame: &'a [u8]) -> Dec<'a> {
        Dec(frame)
    }
    fn take(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.0.len() < n {
            return Err(bad("truncated frame"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    pub(crate) fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    pub(crate) fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    pub(crate) fn i64(&mut self) -> io::Result<i64> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    pub(crate) fn bytes(&mut self) -> io::Result<Vec<u8>> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    pub(crate) fn str(&mut self) -> io::Result<String> {
        String::from_utf8(self.bytes()?).map_err(|_| bad("string is not UTF-8"))
    }
    pub(crate) fn meta(&mut self) -> io::Result<Meta> {
        Ok(Meta {
            kind: Kind::from_u8(self.u8()?)?,
            mode: self.u32()? & 0o7777,
            uid: self.u32()?,
            gid: self.u32()?,
            size: self.u64()?,
            mtime_sec: self.i64()?,
            mtime_nsec: self.u32()?,
            ino: 0,
            ctime_sec: 0,
            ctime_nsec: 0,
        })
    }
    pub(crate) fn strings(&mut self) -> io::Result<Vec<String>> {
        let n = self.u32()? as usize;
        if n > 4096 {
            return Err(bad("list too long"));
        }
        (0..n).map(|_| self.str()).collect()
    }
    /// All that is left (a frame's last field: a chunk of data).
    pub(crate) fn rest(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0).to_vec()
    }
}

impl Msg {
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc::frame();
        match self {
            Msg::Hello {
                version,
                set,
                node,
                query,
                gen,
            } => {
                e.u8(1);
                e.u32(*version);
                e.str(set);
                e.str(node);
                e.u8(*query as u8);
                e.str(&gen.id);
                e.u32(gen.history.len() as u32);
                for h in &gen.history {
                    e.str(h);
                }
            }
            Msg::HelloOk { state_json } => {
                e.u8(2);
                e.str(state_json);
            }
            Msg::Refused { reason } => {
                e.u8(3);
                e.str(reason);
            }
            Msg::ManifestReq { root } => {
                e.u8(4);
                e.u32(*root);
            }
            Msg::ManifestEntry(en) => {
                e.u8(5);
                e.u32(en.root);
                e.bytes(&en.path);
                e.meta(&en.meta);
                e.bytes(&en.target);
            }
            Msg::ManifestEnd => e.u8(6),
            Msg::Dir { root, path, meta } => {
                e.u8(7);
                e.u32(*root);
                e.bytes(path);
                e.meta(meta);
            }
            Msg::Symlink {
                root,
                path,
                meta,
                target,
            } => {
                e.u8(8);
                e.u32(*root);
                e.bytes(path);
                e.meta(meta);
                e.bytes(target);
            }
            Msg::FileBegin { root, path, meta } => {
                e.u8(9);
                e.u32(*root);
                e.bytes(path);
                e.meta(meta);
            }
            Msg::Chunk(data) => {
                e.u8(10);
                e.raw(data);
            }
            Msg::FileEnd => e.u8(11),
            Msg::SigReq { root, path, block } => {
                e.u8(12);
                e.u32(*root);
                e.bytes(path);
                e.u32(*block);
            }
            Msg::Sig {
                size,
                block,
                hashes,
            } => {
                e.u8(13);
                e.u64(*size);
                e.u32(*block);
                e.u32(hashes.len() as u32);
                for h in hashes {
                    e.raw(h);
                }
            }
            Msg::DeltaBegin {
                root,
                path,
                meta,
                block,
            } => {
                e.u8(14);
                e.u32(*root);
                e.bytes(path);
                e.meta(meta);
                e.u32(*block);
            }
            Msg::Block { index, data } => {
                e.u8(15);
                e.u64(*index);
                e.raw(data);
            }
            Msg::DeltaEnd => e.u8(16),
            Msg::Delete { root, path } => {
                e.u8(17);
                e.u32(*root);
                e.bytes(path);
            }
            Msg::Commit { seq } => {
                e.u8(18);
                e.u64(*seq);
            }
            Msg::Committed { seq, failures } => {
                e.u8(19);
                e.u64(*seq);
                e.u32(failures.len() as u32);
                for (p, why) in failures {
                    e.str(p);
                    e.str(why);
                }
            }
            Msg::PassComplete => e.u8(20),
            Msg::PassOk { state_json } => {
                e.u8(21);
                e.str(state_json);
            }
            Msg::Bye => e.u8(22),
        }
        e.finish()
    }

    pub fn decode(frame: &[u8]) -> io::Result<Msg> {
        let mut d = Dec::new(frame);
        let tag = d.u8()?;
        let m = match tag {
            1 => {
                let version = d.u32()?;
                let set = d.str()?;
                let node = d.str()?;
                let query = d.u8()? != 0;
                let id = d.str()?;
                let history = d.strings()?;
                Msg::Hello {
                    version,
                    set,
                    node,
                    query,
                    gen: GenWire { id, history },
                }
            }
            2 => Msg::HelloOk {
                state_json: d.str()?,
            },
            3 => Msg::Refused { reason: d.str()? },
            4 => Msg::ManifestReq { root: d.u32()? },
            5 => Msg::ManifestEntry(Entry {
                root: d.u32()?,
                path: d.bytes()?,
                meta: d.meta()?,
                target: d.bytes()?,
            }),
            6 => Msg::ManifestEnd,
            7 => Msg::Dir {
                root: d.u32()?,
                path: d.bytes()?,
                meta: d.meta()?,
            },
            8 => Msg::Symlink {
                root: d.u32()?,
                path: d.bytes()?,
                meta: d.meta()?,
                target: d.bytes()?,
            },
            9 => Msg::FileBegin {
                root: d.u32()?,
                path: d.bytes()?,
                meta: d.meta()?,
            },
            10 => Msg::Chunk(d.rest()),
            11 => Msg::FileEnd,
            12 => Msg::SigReq {
                root: d.u32()?,
                path: d.bytes()?,
                block: d.u32()?,
            },
            13 => {
                let size = d.u64()?;
                let block = d.u32()?;
                let n = d.u32()? as usize;
                let raw = d.take(n.checked_mul(16).ok_or_else(|| bad("too many hashes"))?)?;
                let hashes = raw
                    .chunks_exact(16)
                    .map(|c| c.try_into().unwrap())
                    .collect();
                Msg::Sig {
                    size,
                    block,
                    hashes,
                }
            }
            14 => Msg::DeltaBegin {
                root: d.u32()?,
                path: d.bytes()?,
                meta: d.meta()?,
                block: d.u32()?,
            },
            15 => Msg::Block {
                index: d.u64()?,
                data: d.rest(),
            },
            16 => Msg::DeltaEnd,
            17 => Msg::Delete {
                root: d.u32()?,
                path: d.bytes()?,
            },
            18 => Msg::Commit { seq: d.u64()? },
            19 => {
                let seq = d.u64()?;
                let n = d.u32()? as usize;
                let mut failures = Vec::new();
                for _ in 0..n.min(1 << 20) {
                    failures.push((d.str()?, d.str()?));
                }
                Msg::Committed { seq, failures }
            }
            20 => Msg::PassComplete,
            21 => Msg::PassOk {
                state_json: d.str()?,
            },
            22 => Msg::Bye,
            _ => return Err(bad("unknown frame tag")),
        };
        Ok(m)
    }
}

/// Writes one frame (buffered; call `flush` before waiting for an answer).
pub fn send(w: &mut impl Write, m: &Msg) -> io::Result<()> {
    w.write_all(&m.encode())
}

/// Reads one frame; `Ok(None)` on a clean end of stream between frames.
pub fn recv(r: &mut impl Read) -> io::Result<Option<Msg>> {
    read_frame(r)?.map(|b| Msg::decode(&b)).transpose()
}

/// One frame's bytes after its length (tag and payload); `Ok(None)` on a clean end of
/// stream between frames, an error for a length of 0 or over [`MAX_FRAME`].
pub(crate) fn read_frame(r: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = r.read(&mut len[got..])?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        got += n;
    }
    let len = u32::from_le_bytes(len) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(bad("frame length out of range"));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)?;
    Ok(Some(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            kind: Kind::File,
            mode: 0o640,
            uid: 1,
            gid: 2,
            size: 3,
            mtime_sec: -4,
            mtime_nsec: 999_999_999,
            ino: 0,
            ctime_sec: 0,
            ctime_nsec: 0,
        }
    }

    #[test]
    fn every_frame_round_trips() {
        let msgs = vec![
            Msg::Hello {
                version: 1,
                set: "mail".into(),
                node: "a".into(),
                query: false,
                gen: GenWire {
                    id: "g2".into(),
                    history: vec!["g1".into()],
                },
            },
            Msg::HelloOk {
                state_json: "{}".into(),
            },
            Msg::Refused { reason: "x".into() },
            Msg::ManifestReq { root: u32::MAX },
            Msg::ManifestEntry(Entry {
                root: 1,
                path: b"a/b".to_vec(),
                meta: meta(),
                target: vec![],
            }),
            Msg::ManifestEnd,
            Msg::Dir {
                root: 0,
                path: vec![],
                meta: meta(),
            },
            Msg::Symlink {
                root: 0,
                path: b"l".to_vec(),
                meta: meta(),
                target: b"../x".to_vec(),
            },
            Msg::FileBegin {
                root: 0,
                path: b"f".to_vec(),
                meta: meta(),
            },
            Msg::Chunk(vec![1, 2, 3]),
            Msg::FileEnd,
            Msg::SigReq {
                root: 0,
                path: b"f".to_vec(),
                block: 4096,
            },
            Msg::Sig {
                size: 10,
                block: 4096,
                hashes: vec![[7u8; 16]; 3],
            },
            Msg::DeltaBegin {
                root: 0,
                path: b"f".to_vec(),
                meta: meta(),
                block: 4096,
            },
            Msg::Block {
                index: 9,
                data: vec![0; 10],
            },
            Msg::DeltaEnd,
            Msg::Delete {
                root: 0,
                path: b"d".to_vec(),
            },
            Msg::Commit { seq: 5 },
            Msg::Committed {
                seq: 5,
                failures: vec![("p".into(), "why".into())],
            },
            Msg::PassComplete,
            Msg::PassOk {
                state_json: "{}".into(),
            },
            Msg::Bye,
        ];
        let mut buf = Vec::new();
        for m in &msgs {
            send(&mut buf, m).unwrap();
        }
        let mut r = &buf[..];
        for m in &msgs {
            assert_eq!(&recv(&mut r).unwrap().unwrap(), m);
        }
        assert!(recv(&mut r).unwrap().is_none());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for junk in [
            &b"\x05\x00\x00\x00\x63abcd"[..],
            b"\x01\x00\x00\x00\x05",
            b"\xff\xff\xff\xff",
        ] {
            let mut r = junk;
            let _ = recv(&mut r);
        }
        let mut r = &b"\x02\x00"[..];
        assert!(recv(&mut r).is_err());
    }

    /// The bytes on the wire, field by field: a change here breaks mirroring between
    /// nodes of different builds.
    #[test]
    fn frames_have_their_exact_bytes() {
        let meta = Meta {
            kind: Kind::File,
            mode: 0o104640,
            uid: 1,
            gid: 2,
            size: 3,
            mtime_sec: -4,
            mtime_nsec: 5,
            ino: 9,
            ctime_sec: 9,
            ctime_nsec: 9,
        };
        #[rustfmt::skip]
        let cases: [(Msg, &[u8]); 5] = [
            (
                Msg::Hello {
                    version: 1,
                    set: "s".into(),
                    node: "n".into(),
                    query: true,
                    gen: GenWire { id: "g2".into(), history: vec!["g1".into()] },
                },
                &[
                    0x20, 0, 0, 0, // length
                    1, // tag
                    1, 0, 0, 0, // version
                    1, 0, 0, 0, b's', // set
                    1, 0, 0, 0, b'n', // node
                    1, // query
                    2, 0, 0, 0, b'g', b'2', // generation id
                    1, 0, 0, 0, 2, 0, 0, 0, b'g', b'1', // history: count, ids
                ],
            ),
            (
                Msg::FileBegin { root: 1, path: b"f".to_vec(), meta: meta.clone() },
                &[
                    0x2b, 0, 0, 0, // length
                    9, // tag
                    1, 0, 0, 0, // root
                    1, 0, 0, 0, b'f', // path
                    1, // kind: file
                    0xa0, 0x89, 0, 0, // mode as given (0o104640); the reader keeps 0o7777
                    1, 0, 0, 0, // uid
                    2, 0, 0, 0, // gid
                    3, 0, 0, 0, 0, 0, 0, 0, // size
                    0xfc, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // mtime_sec -4
                    5, 0, 0, 0, // mtime_nsec (no ino, no ctime)
                ],
            ),
            (
                Msg::Sig { size: 10, block: 4096, hashes: vec![[7u8; 16]] },
                &[
                    0x21, 0, 0, 0, // length
                    13, // tag
                    10, 0, 0, 0, 0, 0, 0, 0, // size
                    0, 0x10, 0, 0, // block
                    1, 0, 0, 0, // hash count
                    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
                ],
            ),
            (
                Msg::Block { index: 9, data: vec![0xaa, 0xbb] },
                &[0x0b, 0, 0, 0, 15, 9, 0, 0, 0, 0, 0, 0, 0, 0xaa, 0xbb],
            ),
            (
                Msg::Committed { seq: 5, failures: vec![("p".into(), "w".into())] },
                &[
                    0x17, 0, 0, 0, // length
                    19, // tag
                    5, 0, 0, 0, 0, 0, 0, 0, // seq
                    1, 0, 0, 0, // failure count
                    1, 0, 0, 0, b'p', 1, 0, 0, 0, b'w', // path, why
                ],
            ),
        ];
        for (m, bytes) in cases {
            assert_eq!(m.encode(), bytes, "{m:?}");
            let mut r = bytes;
            let back = recv(&mut r).unwrap().unwrap();
            let want = match m {
                Msg::FileBegin { root, path, meta } => Msg::FileBegin {
                    root,
                    path,
                    meta: Meta {
                        mode: meta.mode & 0o7777,
                        ino: 0,
                        ctime_sec: 0,
                        ctime_nsec: 0,
                        ..meta
                    },
                },
                m => m,
            };
            assert_eq!(back, want);
        }
    }

    /// The primitives both protocols (this one and the gate's pull) build frames from.
    #[test]
    fn primitives_write_little_endian_and_read_back() {
        let mut e = Enc::frame();
        e.u8(0xab);
        e.u32(0x0102_0304);
        e.u64(0x0102_0304_0506_0708);
        e.i64(-2);
        e.bytes(b"xy");
        e.str("é");
        e.raw(b"tail");
        #[rustfmt::skip]
        let want: &[u8] = &[
            37, 0, 0, 0, // length of what follows
            0xab,
            4, 3, 2, 1,
            8, 7, 6, 5, 4, 3, 2, 1,
            0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            2, 0, 0, 0, b'x', b'y',
            2, 0, 0, 0, 0xc3, 0xa9,
            b't', b'a', b'i', b'l',
        ];
        let frame = e.finish();
        assert_eq!(frame, want);
        let mut d = Dec::new(&frame[4..]);
        assert_eq!(d.u8().unwrap(), 0xab);
        assert_eq!(d.u32().unwrap(), 0x0102_0304);
        assert_eq!(d.u64().unwrap(), 0x0102_0304_0506_0708);
        assert_eq!(d.i64().unwrap(), -2);
        assert_eq!(d.bytes().unwrap(), b"xy");
        assert_eq!(d.str().unwrap(), "é");
        assert_eq!(d.rest(), b"tail");
        assert_eq!(d.rest(), b"");
        assert!(d.u8().is_err());

        let mut e = Enc::frame();
        e.u32(2);
        e.str("a");
        e.str("b");
        let frame = e.finish();
        assert_eq!(Dec::new(&frame[4..]).strings().unwrap(), ["a", "b"]);
    }

    #[test]
    fn primitives_refuse_what_does_not_fit() {
        let is_bad = |r: io::Result<()>| {
            let e = r.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        };
        is_bad(Dec::new(&[1, 2, 3]).u32().map(drop));
        is_bad(Dec::new(&[0; 7]).u64().map(drop));
        is_bad(Dec::new(&[0; 7]).i64().map(drop));
        // a length longer than the rest of the frame
        is_bad(Dec::new(&[5, 0, 0, 0, b'a']).bytes().map(drop));
        is_bad(Dec::new(&[1, 0, 0, 0, 0xff]).str().map(drop));
        is_bad(Dec::new(&[0x01, 0x10, 0, 0]).strings().map(drop));
        let mut e = Enc::frame();
        e.meta(&Meta {
            kind: Kind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: 0,
            mtime_sec: 0,
            mtime_nsec: 0,
            ino: 0,
            ctime_sec: 0,
            ctime_nsec: 0,
        });
        let mut frame = e.finish();
        frame[4] = 4; // no such kind
        is_bad(Dec::new(&frame[4..]).meta().map(drop));
    }

    #[test]
    fn read_frame_takes_whole_frames_only() {
        let mut r = &b"\x02\x00\x00\x00ab\x01\x00\x00\x00c"[..];
        assert_eq!(read_frame(&mut r).unwrap().unwrap(), b"ab");
        assert_eq!(read_frame(&mut r).unwrap().unwrap(), b"c");
        assert!(read_frame(&mut r).unwrap().is_none());
        // cut inside the length, inside the frame
        let mut r = &b"\x02\x00"[..];
        let e = read_frame(&mut r).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        let mut r = &b"\x03\x00\x00\x00ab"[..];
        let e = read_frame(&mut r).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        // an empty frame, a frame over the limit
        for len in [0, MAX_FRAME as u32 + 1] {
            let b = len.to_le_bytes();
            let e = read_frame(&mut &b[..]).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        }
    }
}
