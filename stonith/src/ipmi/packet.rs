//! IPMI-over-LAN framing at byte level: RMCP, IPMI 1.5 and RMCP+ session headers,
//! the integrity trailer, IPMI request/response messages, the Open Session and RAKP
//! messages (both directions, so the in-repo test BMC reuses them) and the few
//! command payloads fencing needs. Every parser takes arbitrary bytes and returns an
//! error rather than panicking (proptested below).

use crate::ipmi::crypto::{ct_eq, SessionKeys};

pub const RMCP_HEADER: [u8; 4] = [0x06, 0x00, 0xff, 0x07];
pub const AUTHTYPE_NONE: u8 = 0x00;
pub const AUTHTYPE_RMCPP: u8 = 0x06;

pub const PAYLOAD_IPMI: u8 = 0x00;
pub const PAYLOAD_OPEN_SESSION_REQ: u8 = 0x10;
pub const PAYLOAD_OPEN_SESSION_RSP: u8 = 0x11;
pub const PAYLOAD_RAKP1: u8 = 0x12;
pub const PAYLOAD_RAKP2: u8 = 0x13;
pub const PAYLOAD_RAKP3: u8 = 0x14;
pub const PAYLOAD_RAKP4: u8 = 0x15;
const PAYLOAD_ENCRYPTED: u8 = 0x80;
const PAYLOAD_AUTHENTICATED: u8 = 0x40;

pub const BMC_SA: u8 = 0x20;
pub const CONSOLE_SA: u8 = 0x81;

pub const NETFN_CHASSIS: u8 = 0x00;
pub const NETFN_APP: u8 = 0x06;
pub const CMD_GET_CHASSIS_STATUS: u8 = 0x01;
pub const CMD_CHASSIS_CONTROL: u8 = 0x02;
pub const CMD_GET_DEVICE_ID: u8 = 0x01;
pub const CMD_GET_CHANNEL_AUTH_CAPS: u8 = 0x38;
pub const CMD_SET_SESSION_PRIV: u8 = 0x3b;
pub const CMD_CLOSE_SESSION: u8 = 0x3c;
pub const CMD_GET_CHANNEL_CIPHER_SUITES: u8 = 0x54;

/// Why a datagram or message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    #[error("truncated {0}")]
    Truncated(&'static str),
    #[error("not an RMCP/IPMI datagram")]
    NotIpmi,
    #[error("unsupported session authentication type {0:#04x}")]
    AuthType(u8),
    #[error("bad IPMI message checksum")]
    Checksum,
    #[error("malformed integrity trailer")]
    Trailer,
    #[error("integrity check failed")]
    Integrity,
    #[error("payload cannot be decrypted")]
    Decrypt,
    #[error("unexpected {0}")]
    Unexpected(&'static str),
}

pub type PacketResult<T> = Result<T, PacketError>;

fn take<'a>(b: &'a [u8], at: usize, n: usize, what: &'static str) -> PacketResult<&'a [u8]> {
    b.get(at..at.checked_add(n).ok_or(PacketError::Truncated(what))?)
        .ok_or(PacketError::Truncated(what))
}

fn u32_at(b: &[u8], at: usize, what: &'static str) -> PacketResult<u32> {
    let s = take(b, at, 4, what)?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn arr16(b: &[u8], at: usize, what: &'static str) -> PacketResult<[u8; 16]> {
    let mut a = [0u8; 16];
    a.copy_from_slice(take(b, at, 16, what)?);
    Ok(a)
}

/// A decoded datagram, before any integrity check or decryption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datagram<'a> {
    /// IPMI 1.5 session header with authtype NONE (pre-session commands).
    V15 {
        session_id: u32,
        seq: u32,
        msg: &'a [u8],
    },
    /// RMCP+ (IPMI 2.0) session header.
    V20 {
        /// Payload type without the encrypted/authenticated bits.
        payload_type: u8,
        encrypted: bool,
        authenticated: bool,
        session_id: u32,
        seq: u32,
        payload: &'a [u8],
        /// authtype..next_header, the AuthCode input (authenticated only).
        auth_input: &'a [u8],
        /// The AuthCode (authenticated only).
        authcode: &'a [u8],
    },
}

/// Splits a UDP datagram into its session header fields and payload.
pub fn parse_datagram(b: &[u8]) -> PacketResult<Datagram<'_>> {
    let rmcp = take(b, 0, 4, "RMCP header")?;
    if rmcp[0] != 0x06 || rmcp[3] & 0x1f != 0x07 {
        return Err(PacketError::NotIpmi);
    }
    let s = &b[4..];
    let authtype = *s.first().ok_or(PacketError::Truncated("session header"))?;
    match authtype {
        AUTHTYPE_NONE => {
            let seq = u32_at(s, 1, "session header")?;
            let session_id = u32_at(s, 5, "session header")?;
            let len = *take(s, 9, 1, "session header")?.first().unwrap_or(&0) as usize;
            let msg = take(s, 10, len, "IPMI 1.5 message")?;
            Ok(Datagram::V15 {
                session_id,
                seq,
                msg,
            })
        }
        AUTHTYPE_RMCPP => {
            let pt = take(s, 1, 1, "session header")?[0];
            let session_id = u32_at(s, 2, "session header")?;
            let seq = u32_at(s, 6, "session header")?;
            let l = take(s, 10, 2, "session header")?;
            let len = u16::from_le_bytes([l[0], l[1]]) as usize;
            let payload = take(s, 12, len, "RMCP+ payload")?;
            let authenticated = pt & PAYLOAD_AUTHENTICATED != 0;
            let (auth_input, authcode): (&[u8], &[u8]) = if authenticated {
                let pad = (4 - (12 + len + 2) % 4) % 4;
                let end = 12 + len;
                let trailer = take(s, end, pad + 2, "integrity trailer")?;
                if trailer[pad] as usize != pad || trailer[pad + 1] != 0x07 {
                    return Err(PacketError::Trailer);
                }
                let cut = end + pad + 2;
                let code = &s[cut..];
                if code.is_empty() {
                    return Err(PacketError::Truncated("AuthCode"));
                }
                (&s[..cut], code)
            } else {
                (&[], &[])
            };
            Ok(Datagram::V20 {
                payload_type: pt & 0x3f,
                encrypted: pt & PAYLOAD_ENCRYPTED != 0,
                authenticated,
                session_id,
                seq,
                payload,
                auth_input,
                authcode,
            })
        }
        other => Err(PacketError::AuthType(other)),
    }
}

/// A pre-session IPMI 1.5 datagram (authtype NONE) around an IPMI message.
pub fn build_v15(msg: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(14 + msg.len());
    v.extend_from_slice(&RMCP_HEADER);
    v.push(AUTHTYPE_NONE);
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.push(msg.len() as u8);
    v.extend_from_slice(msg);
    v
}

/// An unauthenticated RMCP+ datagram (Open Session, RAKP, sessionless IPMI).
pub fn build_v20_plain(payload_type: u8, session_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + payload.len());
    v.extend_from_slice(&RMCP_HEADER);
    v.push(AUTHTYPE_RMCPP);
    v.push(payload_type);
    v.extend_from_slice(&session_id.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    v.extend_from_slice(payload);
    v
}

/// An encrypted and authenticated IPMI payload in an established session.
pub fn build_v20_secure(
    keys: &SessionKeys,
    session_id: u32,
    seq: u32,
    iv: [u8; 16],
    plaintext: &[u8],
) -> Vec<u8> {
    let payload = keys.encrypt(iv, plaintext);
    let mut s = Vec::with_capacity(32 + payload.len());
    s.push(AUTHTYPE_RMCPP);
    s.push(PAYLOAD_IPMI | PAYLOAD_ENCRYPTED | PAYLOAD_AUTHENTICATED);
    s.extend_from_slice(&session_id.to_le_bytes());
    s.extend_from_slice(&seq.to_le_bytes());
    s.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    s.extend_from_slice(&payload);
    let pad = (4 - (s.len() + 2) % 4) % 4;
    s.extend(std::iter::repeat_n(0xffu8, pad));
    s.push(pad as u8);
    s.push(0x07);
    let code = keys.authcode(&s);
    let mut v = Vec::with_capacity(4 + s.len() + code.len());
    v.extend_from_slice(&RMCP_HEADER);
    v.extend_from_slice(&s);
    v.extend_from_slice(&code);
    v
}

/// Verifies the AuthCode of an in-session datagram, then decrypts its payload.
/// The AuthCode is checked first, as the specification requires.
pub fn open_secure(keys: &SessionKeys, d: &Datagram<'_>) -> PacketResult<Vec<u8>> {
    match d {
        Datagram::V20 {
            payload_type: PAYLOAD_IPMI,
            encrypted,
            authenticated: true,
            payload,
            auth_input,
            authcode,
            ..
        } => {
            let expect = keys.authcode(auth_input);
            if !ct_eq(&expect, authcode) {
                return Err(PacketError::Integrity);
            }
            if *encrypted {
                keys.decrypt(payload).ok_or(PacketError::Decrypt)
            } else {
                Ok(payload.to_vec())
            }
        }
        _ => Err(PacketError::Unexpected(
            "unauthenticated packet in a session",
        )),
    }
}

fn checksum(b: &[u8]) -> u8 {
    b.iter().fold(0u8, |a, x| a.wrapping_add(*x)).wrapping_neg()
}

/// An IPMI request message to the BMC (rsSA 20h, LUN 0, rqSA 81h).
pub fn build_request(netfn: u8, cmd: u8, rq_seq: u8, data: &[u8]) -> Vec<u8> {
    let mut m = vec![BMC_SA, netfn << 2];
    m.push(checksum(&m));
    let start = m.len();
    m.extend_from_slice(&[CONSOLE_SA, (rq_seq & 0x3f) << 2, cmd]);
    m.extend_from_slice(data);
    let c = checksum(&m[start..]);
    m.push(c);
    m
}

/// A decoded IPMI response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The request's netFn (the response's netFn minus one).
    pub netfn: u8,
    pub cmd: u8,
    pub rq_seq: u8,
    pub cc: u8,
    pub data: Vec<u8>,
}

/// Decodes an IPMI response message and checks both checksums.
pub fn parse_response(m: &[u8]) -> PacketResult<Response> {
    if m.len() < 8 {
        return Err(PacketError::Truncated("IPMI response"));
    }
    if checksum(&m[..2]) != m[2] || checksum(&m[3..m.len() - 1]) != m[m.len() - 1] {
        return Err(PacketError::Checksum);
    }
    let netfn = m[1] >> 2;
    if netfn & 1 == 0 {
        return Err(PacketError::Unexpected(
            "request where a response was expected",
        ));
    }
    Ok(Response {
        netfn: netfn & !1,
        cmd: m[5],
        rq_seq: m[4] >> 2,
        cc: m[6],
        data: m[7..m.len() - 1].to_vec(),
    })
}

/// A decoded IPMI request (the BMC side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub rs_sa: u8,
    pub netfn: u8,
    pub rq_sa: u8,
    pub rq_seq: u8,
    pub cmd: u8,
    pub data: Vec<u8>,
}

/// Decodes an IPMI request message and checks both checksums.
pub fn parse_request(m: &[u8]) -> PacketResult<Request> {
    if m.len() < 7 {
        return Err(PacketError::Truncated("IPMI request"));
    }
    if checksum(&m[..2]) != m[2] || checksum(&m[3..m.len() - 1]) != m[m.len() - 1] {
        return Err(PacketError::Checksum);
    }
    let netfn = m[1] >> 2;
    if netfn & 1 == 1 {
        return Err(PacketError::Unexpected(
            "response where a request was expected",
        ));
    }
    Ok(Request {
        rs_sa: m[0],
        netfn,
        rq_sa: m[3],
        rq_seq: m[4] >> 2,
        cmd: m[5],
        data: m[6..m.len() - 1].to_vec(),
    })
}

/// The response message to `req` (the BMC side).
pub fn build_response(req: &Request, cc: u8, data: &[u8]) -> Vec<u8> {
    let mut m = vec![req.rq_sa, (req.netfn | 1) << 2];
    m.push(checksum(&m));
    let start = m.len();
    m.extend_from_slice(&[req.rs_sa, req.rq_seq << 2, req.cmd, cc]);
    m.extend_from_slice(data);
    let c = checksum(&m[start..]);
    m.push(c);
    m
}

/// The three algorithm records of Open Session request and response.
fn algorithm_records(auth: u8, integ: u8, conf: u8) -> [u8; 24] {
    let mut r = [0u8; 24];
    for (i, alg) in [auth, integ, conf].into_iter().enumerate() {
        r[i * 8..i * 8 + 8].copy_from_slice(&[i as u8, 0, 0, 8, alg, 0, 0, 0]);
    }
    r
}

fn parse_algorithm_records(b: &[u8]) -> PacketResult<(u8, u8, u8)> {
    let mut algs = [0u8; 3];
    for (i, alg) in algs.iter_mut().enumerate() {
        let rec = take(b, i * 8, 8, "algorithm record")?;
        if rec[0] & 0x3f != i as u8 || rec[3] != 8 {
            return Err(PacketError::Unexpected("algorithm record"));
        }
        *alg = rec[4] & 0x3f;
    }
    Ok((algs[0], algs[1], algs[2]))
}

/// RMCP+ Open Session Request (payload 10h).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSessionRequest {
    pub tag: u8,
    pub max_priv: u8,
    pub console_sid: u32,
    pub auth: u8,
    pub integ: u8,
    pub conf: u8,
}

impl OpenSessionRequest {
    pub fn build(&self) -> Vec<u8> {
        let mut v = vec![self.tag, self.max_priv, 0, 0];
        v.extend_from_slice(&self.console_sid.to_le_bytes());
        v.extend_from_slice(&algorithm_records(self.auth, self.integ, self.conf));
        v
    }
    pub fn parse(b: &[u8]) -> PacketResult<Self> {
        let h = take(b, 0, 8, "Open Session Request")?;
        let (auth, integ, conf) = parse_algorithm_records(&b[8..])?;
        Ok(OpenSessionRequest {
            tag: h[0],
            max_priv: h[1] & 0x0f,
            console_sid: u32_at(h, 4, "Open Session Request")?,
            auth,
            integ,
            conf,
        })
    }
}

/// RMCP+ Open Session Response (payload 11h).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSessionResponse {
    pub tag: u8,
    pub status: u8,
    pub max_priv: u8,
    pub console_sid: u32,
    pub bmc_sid: u32,
    pub auth: u8,
    pub integ: u8,
    pub conf: u8,
}

impl OpenSessionResponse {
    pub fn build(&self) -> Vec<u8> {
        let mut v = vec![self.tag, self.status, self.max_priv, 0];
        v.extend_from_slice(&self.console_sid.to_le_bytes());
        if self.status == 0 {
            v.extend_from_slice(&self.bmc_sid.to_le_bytes());
            v.extend_from_slice(&algorithm_records(self.auth, self.integ, self.conf));
        }
        v
    }
    /// An error status may come with the short form (no session ID, no records).
    pub fn parse(b: &[u8]) -> PacketResult<Self> {
        let h = take(b, 0, 2, "Open Session Response")?;
        let (tag, status) = (h[0], h[1]);
        if status != 0 {
            return Ok(OpenSessionResponse {
                tag,
                status,
                max_priv: 0,
                console_sid: u32_at(b, 4, "Open Session Response").unwrap_or(0),
                bmc_sid: 0,
                auth: 0,
                integ: 0,
                conf: 0,
            });
        }
        let h = take(b, 0, 12, "Open Session Response")?;
        let (auth, integ, conf) = parse_algorithm_records(&b[12..])?;
        Ok(OpenSessionResponse {
            tag,
            status,
            max_priv: h[2] & 0x0f,
            console_sid: u32_at(h, 4, "Open Session Response")?,
            bmc_sid: u32_at(h, 8, "Open Session Response")?,
            auth,
            integ,
            conf,
        })
    }
}

/// RAKP Message 1 (payload 12h).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rakp1 {
    pub tag: u8,
    pub bmc_sid: u32,
    pub rm: [u8; 16],
    pub role: u8,
    pub user: Vec<u8>,
}

impl Rakp1 {
    pub fn build(&self) -> Vec<u8> {
        let mut v = vec![self.tag, 0, 0, 0];
        v.extend_from_slice(&self.bmc_sid.to_le_bytes());
        v.extend_from_slice(&self.rm);
        v.extend_from_slice(&[self.role, 0, 0, self.user.len() as u8]);
        v.extend_from_slice(&self.user);
        v
    }
    pub fn parse(b: &[u8]) -> PacketResult<Self> {
        let h = take(b, 0, 28, "RAKP 1")?;
        let ulen = h[27] as usize;
        if ulen > 16 {
            return Err(PacketError::Unexpected("user name longer than 16 bytes"));
        }
        Ok(Rakp1 {
            tag: h[0],
            bmc_sid: u32_at(h, 4, "RAKP 1")?,
            rm: arr16(h, 8, "RAKP 1")?,
            role: h[24],
            user: take(b, 28, ulen, "RAKP 1 user name")?.to_vec(),
        })
    }
}

/// RAKP Message 2 (payload 13h).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rakp2 {
    pub tag: u8,
    pub status: u8,
    pub console_sid: u32,
    pub rc: [u8; 16],
    pub guid: [u8; 16],
    pub hmac: Vec<u8>,
}

impl Rakp2 {
    pub fn build(&self) -> Vec<u8> {
        let mut v = vec![self.tag, self.status, 0, 0];
        v.extend_from_slice(&self.console_sid.to_le_bytes());
        if self.status == 0 {
            v.extend_from_slice(&self.rc);
            v.extend_from_slice(&self.guid);
            v.extend_from_slice(&self.hmac);
        }
        v
    }
    pub fn parse(b: &[u8]) -> PacketResult<Self> {
        let h = take(b, 0, 2, "RAKP 2")?;
        if h[1] != 0 {
            return Ok(Rakp2 {
                tag: h[0],
                status: h[1],
                console_sid: u32_at(b, 4, "RAKP 2").unwrap_or(0),
                rc: [0; 16],
                guid: [0; 16],
                hmac: Vec::new(),
            });
        }
        let h = take(b, 0, 40, "RAKP 2")?;
        Ok(Rakp2 {
            tag: h[0],
            status: h[1],
            console_sid: u32_at(h, 4, "RAKP 2")?,
            rc: arr16(h, 8, "RAKP 2")?,
            guid: arr16(h, 24, "RAKP 2")?,
            hmac: b[40..].to_vec(),
        })
    }
}

/// RAKP Message 3 (payload 14h).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rakp3 {
    pub tag: u8,
    pub status: u8,
    pub bmc_sid: u32,
    pub hmac: Vec<u8>,
}

impl Rakp3 {
    pub fn build(&self) -> Vec<u8> {
        let mut v = vec![self.tag, self.status, 0, 0];
        v.extend_from_slice(&self.bmc_sid.to_le_bytes());
        v.extend_from_slice(&self.hmac);
        v
    }
    pub fn parse(b: &[u8]) -> PacketResult<Self> {
        let h = take(b, 0, 8, "RAKP 3")?;
        Ok(Rakp3 {
            tag: h[0],
            status: h[1],
            bmc_sid: u32_at(h, 4, "RAKP 3")?,
            hmac: b[8..].to_vec(),
        })
    }
}

/// RAKP Message 4 (payload 15h).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rakp4 {
    pub tag: u8,
    pub status: u8,
    pub console_sid: u32,
    pub icv: Vec<u8>,
}

impl Rakp4 {
    pub fn build(&self) -> Vec<u8> {
        let mut v = vec![self.tag, self.status, 0, 0];
        v.extend_from_slice(&self.console_sid.to_le_bytes());
        v.extend_from_slice(&self.icv);
        v
    }
    pub fn parse(b: &[u8]) -> PacketResult<Self> {
        let h = take(b, 0, 2, "RAKP 4")?;
        Ok(Rakp4 {
            tag: h[0],
            status: h[1],
            console_sid: u32_at(b, 4, "RAKP 4").unwrap_or(0),
            icv: b.get(8..).unwrap_or(&[]).to_vec(),
        })
    }
}

/// Get Channel Authentication Capabilities response data (after the completion code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthCaps {
    pub channel: u8,
    /// The BMC says it speaks IPMI 2.0 (RMCP+).
    pub ipmi20: bool,
}

pub fn parse_auth_caps(data: &[u8]) -> PacketResult<AuthCaps> {
    let d = take(data, 0, 8, "channel authentication capabilities")?;
    Ok(AuthCaps {
        channel: d[0],
        ipmi20: d[1] & 0x80 != 0 && d[3] & 0x02 != 0,
    })
}

/// Cipher suite IDs listed in Get Channel Cipher Suites record data
/// (standard records C0h id algs..., OEM records C1h id IANA[3] algs...).
pub fn parse_cipher_suite_records(data: &[u8]) -> PacketResult<Vec<u8>> {
    let mut ids = Vec::new();
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            0xc0 => {
                ids.push(
                    *data
                        .get(i + 1)
                        .ok_or(PacketError::Truncated("cipher suite record"))?,
                );
                i += 2;
            }
            0xc1 => {
                ids.push(
                    *data
                        .get(i + 1)
                        .ok_or(PacketError::Truncated("cipher suite record"))?,
                );
                i += 5;
                if i > data.len() {
                    return Err(PacketError::Truncated("OEM cipher suite record"));
                }
            }
            b if b < 0xc0 => {
                // An algorithm byte of the current record.
                if ids.is_empty() {
                    return Err(PacketError::Unexpected(
                        "algorithm before a cipher suite record",
                    ));
                }
                i += 1;
            }
            _ => return Err(PacketError::Unexpected("cipher suite record tag")),
        }
    }
    Ok(ids)
}

/// The power bit of Get Chassis Status (first data byte, bit 0).
pub fn parse_chassis_power(data: &[u8]) -> PacketResult<bool> {
    let d = take(data, 0, 1, "chassis status")?;
    Ok(d[0] & 0x01 != 0)
}

/// Human text for an RMCP+ status code (Open Session Response, RAKP 2/4).
pub fn rmcp_status_text(code: u8) -> &'static str {
    match code {
        0x00 => "no errors",
        0x01 => "insufficient resources to create a session",
        0x02 => "invalid session ID",
        0x03 => "invalid payload type",
        0x04 => "invalid authentication algorithm",
        0x05 => "invalid integrity algorithm",
        0x06 => "no matching authentication payload",
        0x07 => "no matching integrity payload",
        0x08 => "inactive session ID",
        0x09 => "invalid role",
        0x0a => "unauthorized role or privilege level requested",
        0x0b => "insufficient resources to create a session at the requested role",
        0x0c => "invalid name length",
        0x0d => "unauthorized name",
        0x0e => "unauthorized GUID",
        0x0f => "invalid integrity check value",
        0x10 => "invalid confidentiality algorithm",
        0x11 => "no cipher suite match with proposed security algorithms",
        0x12 => "illegal or unrecognized parameter",
        _ => "unknown status",
    }
}

/// Human text for an IPMI completion code.
pub fn completion_code_text(cc: u8) -> &'static str {
    match cc {
        0x00 => "success",
        0x80 => "requested level not available for this user",
        0x81 => "requested level exceeds channel or user privilege limit",
        0xc0 => "node busy",
        0xc1 => "invalid command",
        0xc2 => "command invalid for given LUN",
        0xc3 => "timeout while processing command",
        0xc4 => "out of space",
        0xc5 => "reservation canceled or invalid",
        0xc6 => "request data truncated",
        0xc7 => "request data length invalid",
        0xc8 => "request data field length limit exceeded",
        0xc9 => "parameter out of range",
        0xcc => "invalid data field in request",
        0xcd => "command illegal for sensor or record type",
        0xce => "command response could not be provided",
        0xcf => "cannot execute duplicated request",
        0xd3 => "destination unavailable",
        0xd4 => "insufficient privilege level",
        0xd5 => "command not supported in present state",
        0xd6 => "command sub-function disabled or unavailable",
        0xff => "unspecified error",
        _ => "unknown completion code",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipmi::crypto::{from_hex, CipherSuite, Rakp};
    use proptest::prelude::*;

    fn h(s: &str) -> Vec<u8> {
        from_hex(s).unwrap()
    }

    fn trace_keys() -> SessionKeys {
        Rakp {
            suite: CipherSuite::Suite3,
            kuid: b"fencepass",
            kg: None,
            console_sid: 0xa0a2a3a4,
            bmc_sid: 0x4582,
            rm: h("f182d9cee0e9d7b5bbbc0955945f1e0c").try_into().unwrap(),
            rc: h("2991571f1c3599c2b50473ef2a01a8f0").try_into().unwrap(),
            guid: h("a123456789abcdefa123456789abcdef").try_into().unwrap(),
            role: 0x14,
            user: b"admin",
        }
        .keys()
    }

    #[test]
    fn trace_set_privilege_request_is_rebuilt_bit_for_bit() {
        let k = trace_keys();
        let iv: [u8; 16] = h("2577e7b55a10d1d39942e13639652423").try_into().unwrap();
        let msg = build_request(NETFN_APP, CMD_SET_SESSION_PRIV, 1, &[0x04]);
        assert_eq!(msg, h("2018c881043b043c"));
        let d = build_v20_secure(&k, 0x4582, 3, iv, &msg);
        let mut expect = RMCP_HEADER.to_vec();
        expect.extend(h(
            "06c0824500000300000020002577e7b55a10d1d39942e13639652423\
                         d91dd6b04b048633bc3a4b0cd76421aeffff0207",
        ));
        expect.extend(h("7a615db8231b191a3b50116f"));
        assert_eq!(d, expect);
    }

    #[test]
    fn trace_bmc_response_verifies_and_decodes() {
        let k = trace_keys();
        let mut d = RMCP_HEADER.to_vec();
        d.extend(h(
            "06c0a4a3a2a0010000002000ff401980a322424e85ec962541570b77\
                    740d96ec4af33c0cc11042e9285aa76bffff0207542c1a49156af8898e81e908",
        ));
        let dg = parse_datagram(&d).unwrap();
        let pt = open_secure(&k, &dg).unwrap();
        let r = parse_response(&pt).unwrap();
        assert_eq!(
            r,
            Response {
                netfn: NETFN_APP,
                cmd: CMD_SET_SESSION_PRIV,
                rq_seq: 1,
                cc: 0,
                data: vec![4]
            }
        );
        // One flipped bit anywhere in the authenticated part fails the check.
        for i in 4..d.len() - 12 {
            let mut bad = d.clone();
            bad[i] ^= 0x01;
            if let Ok(dg) = parse_datagram(&bad) {
                assert!(open_secure(&k, &dg).is_err(), "flip at {i}");
            }
        }
    }

    #[test]
    fn trace_chassis_status_and_close_plaintexts() {
        assert_eq!(
            build_request(NETFN_CHASSIS, CMD_GET_CHASSIS_STATUS, 6, &[]),
            h("2000e081180166")
        );
        let r = parse_response(&h("81047b20180100010000c6")).unwrap();
        assert_eq!(r.cc, 0);
        assert!(parse_chassis_power(&r.data).unwrap());
        assert_eq!(
            build_request(NETFN_APP, CMD_CLOSE_SESSION, 7, &0x4582u32.to_le_bytes()),
            h("2018c8811c3c8245000060")
        );
        let r = parse_response(&h("811c63201c3c0088")).unwrap();
        assert_eq!((r.cmd, r.cc, r.rq_seq), (CMD_CLOSE_SESSION, 0, 7));
    }

    #[test]
    fn request_response_round_trip() {
        let m = build_request(NETFN_CHASSIS, CMD_CHASSIS_CONTROL, 9, &[0x02]);
        let req = parse_request(&m).unwrap();
        assert_eq!(
            (req.netfn, req.cmd, req.rq_seq, req.data.clone()),
            (0, 2, 9, vec![2])
        );
        let rsp = build_response(&req, 0xd4, &[]);
        let r = parse_response(&rsp).unwrap();
        assert_eq!((r.netfn, r.cmd, r.rq_seq, r.cc), (0, 2, 9, 0xd4));
        let mut bad = rsp.clone();
        bad[6] ^= 1;
        assert_eq!(parse_response(&bad), Err(PacketError::Checksum));
    }

    #[test]
    fn session_messages_round_trip() {
        let o = OpenSessionRequest {
            tag: 1,
            max_priv: 4,
            console_sid: 0x11223344,
            auth: 3,
            integ: 4,
            conf: 1,
        };
        assert_eq!(OpenSessionRequest::parse(&o.build()).unwrap(), o);
        let r = OpenSessionResponse {
            tag: 1,
            status: 0,
            max_priv: 4,
            console_sid: 0x11223344,
            bmc_sid: 0x55667788,
            auth: 3,
            integ: 4,
            conf: 1,
        };
        assert_eq!(r.build().len(), 36);
        assert_eq!(OpenSessionResponse::parse(&r.build()).unwrap(), r);
        let r1 = Rakp1 {
            tag: 2,
            bmc_sid: 5,
            rm: [7; 16],
            role: 0x14,
            user: b"admin".to_vec(),
        };
        assert_eq!(Rakp1::parse(&r1.build()).unwrap(), r1);
        let r2 = Rakp2 {
            tag: 2,
            status: 0,
            console_sid: 9,
            rc: [1; 16],
            guid: [2; 16],
            hmac: vec![3; 32],
        };
        assert_eq!(Rakp2::parse(&r2.build()).unwrap(), r2);
        let r3 = Rakp3 {
            tag: 3,
            status: 0,
            bmc_sid: 5,
            hmac: vec![4; 20],
        };
        assert_eq!(Rakp3::parse(&r3.build()).unwrap(), r3);
        let r4 = Rakp4 {
            tag: 3,
            status: 0,
            console_sid: 9,
            icv: vec![5; 16],
        };
        assert_eq!(Rakp4::parse(&r4.build()).unwrap(), r4);
    }

    #[test]
    fn cipher_suite_records() {
        // Standard 3 and 17, and an OEM record whose IANA bytes look like tags.
        let data = [
            0xc0, 0x03, 0x01, 0x41, 0x81, 0xc0, 0x11, 0x03, 0x44, 0x81, 0xc1, 0x80, 0xc0, 0xc0,
            0xc0, 0x01,
        ];
        assert_eq!(
            parse_cipher_suite_records(&data).unwrap(),
            vec![3, 17, 0x80]
        );
        assert!(parse_cipher_suite_records(&[0x01]).is_err());
    }

    #[test]
    fn v15_datagram() {
        let m = build_request(NETFN_APP, CMD_GET_CHANNEL_AUTH_CAPS, 0, &[0x8e, 0x04]);
        let d = build_v15(&m);
        match parse_datagram(&d).unwrap() {
            Datagram::V15 { msg, .. } => assert_eq!(msg, &m[..]),
            other => panic!("{other:?}"),
        }
    }

    proptest! {
        #[test]
        fn parsers_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let k = trace_keys();
            if let Ok(d) = parse_datagram(&b) {
                let _ = open_secure(&k, &d);
            }
            let _ = parse_response(&b);
            let _ = parse_request(&b);
            let _ = OpenSessionRequest::parse(&b);
            let _ = OpenSessionResponse::parse(&b);
            let _ = Rakp1::parse(&b);
            let _ = Rakp2::parse(&b);
            let _ = Rakp3::parse(&b);
            let _ = Rakp4::parse(&b);
            let _ = parse_auth_caps(&b);
            let _ = parse_cipher_suite_records(&b);
            let _ = parse_chassis_power(&b);
            let _ = k.decrypt(&b);
        }

        #[test]
        fn datagram_parser_on_rmcp_prefixed_bytes(
            tail in proptest::collection::vec(any::<u8>(), 0..120),
            authtype in prop_oneof![Just(0u8), Just(6u8)],
            pt in any::<u8>(),
        ) {
            // Steer into the deep branches: a valid RMCP header and a plausible session header.
            let mut b = RMCP_HEADER.to_vec();
            b.push(authtype);
            b.push(pt);
            b.extend(tail);
            let k = trace_keys();
            if let Ok(d) = parse_datagram(&b) {
                let _ = open_secure(&k, &d);
            }
        }

        #[test]
        fn secure_round_trip(msg in proptest::collection::vec(any::<u8>(), 0..100), seq in any::<u32>()) {
            let k = trace_keys();
            let d = build_v20_secure(&k, 0x4582, seq, [9; 16], &msg);
            let dg = parse_datagram(&d).unwrap();
            prop_assert_eq!(open_secure(&k, &dg).unwrap(), msg);
        }
    }
}
