//! The gate's pull protocol: the same framing as the mirror's (`u32` little-endian
//! length, one tag byte, payload; the mirror's frame size limit), spoken with
//! `bulwark-mirror pull` on the peer over the mirror's transport (a local child or ssh).
//! Its frames are built and read with the mirror's own primitives (`wire::Enc`,
//! `wire::Dec`, `wire::read_frame`). Read-only: the peer's tree and state are never
//! changed by a pull.

use crate::mirror::wire::{bad, read_frame, Dec, Enc, Meta};
use std::io::{self, Read, Write};

pub const PULL_VERSION: u32 = 1;
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

impl Frame {
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc::frame();
        match self {
            Frame::Hello { version, set, node } => {
                e.u8(1);
                e.u32(*version);
                e.bytes(set.as_bytes());
                e.bytes(node.as_bytes());
            }
            Frame::HelloOk { state_json } => {
                e.u8(2);
                e.bytes(state_json.as_bytes());
            }
            Frame::Refused { reason } => {
                e.u8(3);
                e.bytes(reason.as_bytes());
            }
            Frame::LogReq { gen } => {
                e.u8(4);
                e.bytes(gen.as_bytes());
            }
            Frame::Log { found } => {
                e.u8(5);
                e.u8(*found as u8);
            }
            Frame::ManifestReq => e.u8(6),
            Frame::Get { root, path } => {
                e.u8(7);
                e.u32(*root);
                e.bytes(path);
            }
            Frame::Entry {
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
            Frame::Absent { root, path } => {
                e.u8(9);
                e.u32(*root);
                e.bytes(path);
            }
            Frame::Chunk(d) => {
                e.u8(10);
                e.raw(d);
            }
            Frame::End => e.u8(11),
            Frame::Bye => e.u8(12),
            Frame::Synced { gen } => {
                e.u8(13);
                e.bytes(gen.as_bytes());
            }
        }
        e.finish()
    }

    pub fn decode(b: &[u8]) -> io::Result<Frame> {
        let mut d = Dec::new(b);
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
            10 => Frame::Chunk(d.rest()),
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
    read_frame(r)?.map(|b| Frame::decode(&b)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mirror::wire::Kind;

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

    /// The bytes on the wire, field by field: a change here breaks pulls between nodes
    /// of different builds.
    #[test]
    fn frames_have_their_exact_bytes() {
        let meta = Meta {
            kind: Kind::Symlink,
            mode: 0o100777,
            uid: 1,
            gid: 2,
            size: 3,
            mtime_sec: -5,
            mtime_nsec: 7,
            ino: 9,
            ctime_sec: 9,
            ctime_nsec: 9,
        };
        let entry = Frame::Entry {
            root: 2,
            path: b"l".to_vec(),
            meta: meta.clone(),
            target: b"x".to_vec(),
        };
        #[rustfmt::skip]
        let cases: [(Frame, &[u8]); 4] = [
            (
                Frame::Hello { version: 1, set: "mail".into(), node: "a".into() },
                &[
                    0x12, 0, 0, 0, // length
                    1, // tag
                    1, 0, 0, 0, // version
                    4, 0, 0, 0, b'm', b'a', b'i', b'l', // set
                    1, 0, 0, 0, b'a', // node
                ],
            ),
            (Frame::Log { found: true }, &[2, 0, 0, 0, 5, 1]),
            (
                entry,
                &[
                    0x30, 0, 0, 0, // length
                    8, // tag
                    2, 0, 0, 0, // root
                    1, 0, 0, 0, b'l', // path
                    3, // kind: symlink
                    0xff, 0x81, 0, 0, // mode as given (0o100777); the reader keeps 0o7777
                    1, 0, 0, 0, // uid
                    2, 0, 0, 0, // gid
                    3, 0, 0, 0, 0, 0, 0, 0, // size
                    0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // mtime_sec -5
                    7, 0, 0, 0, // mtime_nsec (no ino, no ctime)
                    1, 0, 0, 0, b'x', // target
                ],
            ),
            (Frame::Chunk(vec![1, 2]), &[3, 0, 0, 0, 10, 1, 2]),
        ];
        for (f, bytes) in cases {
            assert_eq!(f.encode(), bytes, "{f:?}");
            let mut r = bytes;
            let back = recv(&mut r).unwrap().unwrap();
            let want = match f {
                Frame::Entry {
                    root,
                    path,
                    meta,
                    target,
                } => Frame::Entry {
                    root,
                    path,
                    meta: Meta {
                        mode: meta.mode & 0o7777,
                        ino: 0,
                        ctime_sec: 0,
                        ctime_nsec: 0,
                        ..meta
                    },
                    target,
                },
                f => f,
            };
            assert_eq!(back, want);
        }
    }
}
