//! The gate's pull protocol: the same framing as the mirror's (`u32` little-endian
//! length, one tag byte, payload), spoken with `bulwark-mirror pull` on the peer over
//! the mirror's transport (a local child or ssh). Read-only: the peer's tree and state
//! are never changed by a pull.

use crate::mirror::wire::{Kind, Meta};
use std::io::{self, Read, Write};

pub const PULL_VERSION: u32 = 1;
const MAX_FRAME: usize = 8 << 20;
pub const CHUNK: usize = 256 << 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Client: first frame.
    Hello {
        version: u32,
        set: String,
        node: String,
    },
    /// Server: accepted; its generation state (JSON). The peer is not a writer and
    /// stays so until the session ends (it holds the mirror daemon's pidfile lock).
    HelloOk {
        state_json: String,
    },
    Refused {
        reason: String,
    },
    /// Client: the change log of generation `gen`; answered by `Log` + `Chunk`s + `End`.
    LogReq {
        gen: String,
    },
    Log {
        found: bool,
    },
    /// Client: every entry of every root; answered by `Entry`s + `End`.
    ManifestReq,
    /// Client: one entry with its content; answered by `Entry` (+ `Chunk`s + `End` for a
    /// regular file) or `Absent`.
    Get {
        root: u32,
        path: Vec<u8>,
    },
    Entry {
        root: u32,
        path: Vec<u8>,
        meta: Meta,
        target: Vec<u8>,
    },
    Absent {
        root: u32,
        path: Vec<u8>,
    },
    Chunk(Vec<u8>),
    End,
    Bye,
    /// Client, after a complete pull: everything the peer logged in generation `gen` is
    /// here now; the peer marks its log synced (so its receiver does not keep those
    /// changes again when this node's mirror pushes). Answered by `End`.
    Synced {
        gen: String,
    },
}

fn bad(m: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, m.to_string())
}

struct Enc(Vec<u8>);
impl Enc {
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes())
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b)
    }
    fn meta(&mut self, m: &Meta) {
        self.0.push(m.kind as u8);
        self.u32(m.mode);
        self.u32(m.uid);
        self.u32(m.gid);
        self.0.extend_from_slice(&m.size.to_le_bytes());
        self.0.extend_from_slice(&m.mtime_sec.to_le_bytes());
        self.u32(m.mtime_nsec);
    }
}

struct Dec<'a>(&'a [u8]);
impl Dec<'_> {
    fn take(&mut self, n: usize) -> io::Result<&[u8]> {
        if self.0.len() < n {
            return Err(bad("truncated frame"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn bytes(&mut self) -> io::Result<Vec<u8>> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    fn str(&mut self) -> io::Result<String> {
        String::from_utf8(self.bytes()?).map_err(|_| bad("string is not UTF-8"))
    }
    fn meta(&mut self) -> io::Result<Meta> {
        let kind = match self.u8()? {
            1 => Kind::File,
            2 => Kind::Dir,
            3 => Kind::Symlink,
            _ => return Err(bad("unknown entry kind")),
        };
        Ok(Meta {
            kind,
            mode: self.u32()? & 0o7777,
            uid: self.u32()?,
            gid: self.u32()?,
            size: self.u64()?,
            mtime_sec: self.u64()? as i64,
            mtime_nsec: self.u32()?,
            ino: 0,
            ctime_sec: 0,
            ctime_nsec: 0,
        })
    }
}

impl Frame {
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc(vec![0, 0, 0, 0]);
        match self {
            Frame::Hello { version, set, node } => {
                e.0.push(1);
                e.u32(*version);
                e.bytes(set.as_bytes());
                e.bytes(node.as_bytes());
            }
            Frame::HelloOk { state_json } => {
                e.0.push(2);
                e.bytes(state_json.as_bytes());
            }
            Frame::Refused { reason } => {
                e.0.push(3);
                e.bytes(reason.as_bytes());
            }
            Frame::LogReq { gen } => {
                e.0.push(4);
                e.bytes(gen.as_bytes());
            }
            Frame::Log { found } => {
                e.0.push(5);
                e.0.push(*found as u8);
            }
            Frame::ManifestReq => e.0.push(6),
            Frame::Get { root, path } => {
                e.0.push(7);
                e.u32(*root);
                e.bytes(path);
            }
            Frame::Entry {
                root,
                path,
                meta,
                target,
            } => {
                e.0.push(8);
                e.u32(*root);
                e.bytes(path);
                e.meta(meta);
                e.bytes(target);
            }
            Frame::Absent { root, path } => {
                e.0.push(9);
                e.u32(*root);
                e.bytes(path);
            }
            Frame::Chunk(d) => {
                e.0.push(10);
                e.0.extend_from_slice(d);
            }
            Frame::End => e.0.push(11),
            Frame::Bye => e.0.push(12),
            Frame::Synced { gen } => {
                e.0.push(13);
                e.bytes(gen.as_bytes());
            }
        }
        let len = (e.0.len() - 4) as u32;
        e.0[..4].copy_from_slice(&len.to_le_bytes());
        e.0
    }

    pub fn decode(b: &[u8]) -> io::Result<Frame> {
        let mut d = Dec(b);
        Ok(match d.u8()? {
            1 => Frame::Hello {
                version: d.u32()?,
                set: d.str()?,
                node: d.str()?,
            },
            2 => Frame::HelloOk {
                state_json: d.str()?,
            },
            3 => Frame::Refused { reason: d.str()? },
            4 => Frame::LogReq { gen: d.str()? },
            5 => Frame::Log {
                found: d.u8()? != 0,
            },
            6 => Frame::ManifestReq,
            7 => Frame::Get {
                root: d.u32()?,
                path: d.bytes()?,
            },
            8 => Frame::Entry {
                root: d.u32()?,
                path: d.bytes()?,
                meta: d.meta()?,
                target: d.bytes()?,
            },
            9 => Frame::Absent {
                root: d.u32()?,
                path: d.bytes()?,
            },
            10 => Frame::Chunk(d.0.to_vec()),
            11 => Frame::End,
            12 => Frame::Bye,
            13 => Frame::Synced { gen: d.str()? },
            _ => return Err(bad("unknown frame tag")),
        })
    }
}

pub fn send(w: &mut impl Write, f: &Frame) -> io::Result<()> {
    w.write_all(&f.encode())
}

/// One frame; `Ok(None)` at a clean end of stream.
pub fn recv(r: &mut impl Read) -> io::Result<Option<Frame>> {
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
    Frame::decode(&buf).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let meta = Meta {
            kind: Kind::Symlink,
            mode: 0o777,
            uid: 1,
            gid: 2,
            size: 3,
            mtime_sec: -5,
            mtime_nsec: 7,
            ino: 0,
            ctime_sec: 0,
            ctime_nsec: 0,
        };
        let all = vec![
            Frame::Hello {
                version: 1,
                set: "mail".into(),
                node: "a".into(),
            },
            Frame::HelloOk {
                state_json: "{}".into(),
            },
            Frame::Refused { reason: "r".into() },
            Frame::LogReq { gen: "g".into() },
            Frame::Log { found: true },
            Frame::ManifestReq,
            Frame::Get {
                root: 1,
                path: b"a/b".to_vec(),
            },
            Frame::Entry {
                root: 0,
                path: b"l".to_vec(),
                meta,
                target: b"x".to_vec(),
            },
            Frame::Absent {
                root: 0,
                path: b"z".to_vec(),
            },
            Frame::Chunk(vec![1, 2]),
            Frame::End,
            Frame::Bye,
            Frame::Synced { gen: "g".into() },
        ];
        let mut buf = Vec::new();
        for f in &all {
            send(&mut buf, f).unwrap();
        }
        let mut r = &buf[..];
        for f in &all {
            assert_eq!(&recv(&mut r).unwrap().unwrap(), f);
        }
        assert!(recv(&mut r).unwrap().is_none());
        let mut junk = &b"\x02\x00\x00\x00\x63\x00"[..];
        assert!(recv(&mut junk).is_err());
    }
}
