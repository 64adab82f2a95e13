//! RMCP+ cryptography for cipher suites 3 and 17 (IPMI 2.0 section 13.28-13.29):
//! RAKP HMACs, the session integrity key and K1/K2, integrity AuthCodes and
//! AES-CBC-128 confidentiality with IPMI's own padding. RustCrypto does the primitives.

use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;

/// The cipher suites this client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CipherSuite {
    /// RAKP-HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128.
    Suite3,
    /// RAKP-HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128.
    Suite17,
}

/// Authentication algorithm numbers (Open Session records).
pub const AUTH_RAKP_HMAC_SHA1: u8 = 0x01;
pub const AUTH_RAKP_HMAC_SHA256: u8 = 0x03;
/// Integrity algorithm numbers (a different table from the authentication one).
pub const INTEG_HMAC_SHA1_96: u8 = 0x01;
pub const INTEG_HMAC_SHA256_128: u8 = 0x04;
/// Confidentiality algorithm numbers.
pub const CONF_AES_CBC_128: u8 = 0x01;

impl CipherSuite {
    pub fn id(self) -> u8 {
        match self {
            CipherSuite::Suite3 => 3,
            CipherSuite::Suite17 => 17,
        }
    }

    pub fn from_id(id: u8) -> Option<CipherSuite> {
        match id {
            3 => Some(CipherSuite::Suite3),
            17 => Some(CipherSuite::Suite17),
            _ => None,
        }
    }

    /// The suite whose three algorithms these are, if we speak it.
    pub fn from_algorithms(auth: u8, integ: u8, conf: u8) -> Option<CipherSuite> {
        match (auth, integ, conf) {
            (AUTH_RAKP_HMAC_SHA1, INTEG_HMAC_SHA1_96, CONF_AES_CBC_128) => {
                Some(CipherSuite::Suite3)
            }
            (AUTH_RAKP_HMAC_SHA256, INTEG_HMAC_SHA256_128, CONF_AES_CBC_128) => {
                Some(CipherSuite::Suite17)
            }
            _ => None,
        }
    }

    pub fn auth_alg(self) -> u8 {
        match self {
            CipherSuite::Suite3 => AUTH_RAKP_HMAC_SHA1,
            CipherSuite::Suite17 => AUTH_RAKP_HMAC_SHA256,
        }
    }

    pub fn integ_alg(self) -> u8 {
        match self {
            CipherSuite::Suite3 => INTEG_HMAC_SHA1_96,
            CipherSuite::Suite17 => INTEG_HMAC_SHA256_128,
        }
    }

    pub fn conf_alg(self) -> u8 {
        CONF_AES_CBC_128
    }

    /// Length of a full RAKP HMAC (RAKP2, RAKP3) and of SIK/K1/K2.
    pub fn hmac_len(self) -> usize {
        match self {
            CipherSuite::Suite3 => 20,
            CipherSuite::Suite17 => 32,
        }
    }

    /// Length of the RAKP4 integrity check value.
    pub fn rakp4_len(self) -> usize {
        match self {
            CipherSuite::Suite3 => 12,
            CipherSuite::Suite17 => 16,
        }
    }

    /// Length of a packet AuthCode (integrity trailer).
    pub fn authcode_len(self) -> usize {
        self.rakp4_len()
    }

    /// HMAC with this suite's hash over the concatenation of `parts`.
    pub fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        fn run<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
            // HMAC accepts keys of any length.
            let mut m = <M as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
            for p in parts {
                m.update(p);
            }
            m.finalize().into_bytes().to_vec()
        }
        match self {
            CipherSuite::Suite3 => run::<Hmac<Sha1>>(key, parts),
            CipherSuite::Suite17 => run::<Hmac<Sha256>>(key, parts),
        }
    }
}

/// Compares two byte strings in time independent of where they differ.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Everything the RAKP exchange binds together.
#[derive(Clone)]
pub struct Rakp<'a> {
    pub suite: CipherSuite,
    /// Kuid: the user's password (at most 20 bytes; zero padding is HMAC-neutral).
    pub kuid: &'a [u8],
    /// Kg (BMC key), when configured; otherwise Kuid keys the SIK.
    pub kg: Option<&'a [u8]>,
    /// SIDm: the console's session ID.
    pub console_sid: u32,
    /// SIDc: the BMC's session ID.
    pub bmc_sid: u32,
    /// Rm: the console's random number.
    pub rm: [u8; 16],
    /// Rc: the BMC's random number.
    pub rc: [u8; 16],
    /// GUIDc: the BMC's GUID, as sent in RAKP2.
    pub guid: [u8; 16],
    /// ROLEm: requested privilege | 10h (name-only lookup).
    pub role: u8,
    /// UNAMEm (at most 16 bytes).
    pub user: &'a [u8],
}

impl std::fmt::Debug for Rakp<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the keys.
        f.debug_struct("Rakp")
            .field("suite", &self.suite)
            .field("console_sid", &self.console_sid)
            .field("bmc_sid", &self.bmc_sid)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// The keys of an established session.
#[derive(Clone)]
pub struct SessionKeys {
    pub suite: CipherSuite,
    pub sik: Vec<u8>,
    pub k1: Vec<u8>,
    pub k2: Vec<u8>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl Rakp<'_> {
    fn uname_part(&self) -> [u8; 2] {
        [self.role, self.user.len() as u8]
    }

    /// The HMAC the BMC puts in RAKP2; a mismatch means a wrong password.
    pub fn rakp2_hmac(&self) -> Vec<u8> {
        self.suite.hmac(
            self.kuid,
            &[
                &self.console_sid.to_le_bytes(),
                &self.bmc_sid.to_le_bytes(),
                &self.rm,
                &self.rc,
                &self.guid,
                &self.uname_part(),
                self.user,
            ],
        )
    }

    /// The HMAC the console puts in RAKP3.
    pub fn rakp3_hmac(&self) -> Vec<u8> {
        self.suite.hmac(
            self.kuid,
            &[
                &self.rc,
                &self.console_sid.to_le_bytes(),
                &self.uname_part(),
                self.user,
            ],
        )
    }

    /// SIK, K1 and K2.
    pub fn keys(&self) -> SessionKeys {
        let key = self.kg.unwrap_or(self.kuid);
        let sik = self
            .suite
            .hmac(key, &[&self.rm, &self.rc, &self.uname_part(), self.user]);
        let k1 = self.suite.hmac(&sik, &[&[0x01; 20]]);
        let k2 = self.suite.hmac(&sik, &[&[0x02; 20]]);
        SessionKeys {
            suite: self.suite,
            sik,
            k1,
            k2,
        }
    }

    /// The integrity check value in RAKP4 (truncated), keyed by the SIK.
    pub fn rakp4_icv(&self, keys: &SessionKeys) -> Vec<u8> {
        let mut v = self.suite.hmac(
            &keys.sik,
            &[&self.rm, &self.bmc_sid.to_le_bytes(), &self.guid],
        );
        v.truncate(self.suite.rakp4_len());
        v
    }
}

impl SessionKeys {
    /// The AuthCode of a packet: HMAC(K1, authtype..next_header), truncated.
    pub fn authcode(&self, data: &[u8]) -> Vec<u8> {
        let mut v = self.suite.hmac(&self.k1, &[data]);
        v.truncate(self.suite.authcode_len());
        v
    }

    fn aes_key(&self) -> [u8; 16] {
        let mut k = [0u8; 16];
        k.copy_from_slice(&self.k2[..16]);
        k
    }

    /// `IV || AES-128-CBC(K2[0..16], plaintext || 01 02 .. n || n)`.
    pub fn encrypt(&self, iv: [u8; 16], plaintext: &[u8]) -> Vec<u8> {
        let pad = (16 - (plaintext.len() + 1) % 16) % 16;
        let mut buf = Vec::with_capacity(16 + plaintext.len() + pad + 1);
        buf.extend_from_slice(&iv);
        buf.extend_from_slice(plaintext);
        buf.extend(1..=pad as u8);
        buf.push(pad as u8);
        let mut enc = cbc::Encryptor::<aes::Aes128>::new(&self.aes_key().into(), &iv.into());
        for chunk in buf[16..].chunks_exact_mut(16) {
            let block: &mut [u8; 16] = chunk.try_into().expect("16-byte chunk");
            enc.encrypt_block(block.into());
        }
        buf
    }

    /// Reverses [`encrypt`](Self::encrypt); `None` if the payload is malformed.
    pub fn decrypt(&self, payload: &[u8]) -> Option<Vec<u8>> {
        if payload.len() < 32 || payload.len() % 16 != 0 {
            return None;
        }
        let (iv, ct) = payload.split_at(16);
        let iv: [u8; 16] = iv.try_into().ok()?;
        let mut buf = ct.to_vec();
        let mut dec = cbc::Decryptor::<aes::Aes128>::new(&self.aes_key().into(), &iv.into());
        for chunk in buf.chunks_exact_mut(16) {
            let block: &mut [u8; 16] = chunk.try_into().ok()?;
            dec.decrypt_block(block.into());
        }
        let pad = *buf.last()? as usize;
        if pad > 15 || pad + 1 > buf.len() {
            return None;
        }
        let body = buf.len() - pad - 1;
        buf.truncate(body);
        Some(buf)
    }
}

/// 16 random bytes from the OS.
pub fn random16() -> [u8; 16] {
    let mut b = [0u8; 16];
    fill_random(&mut b);
    b
}

/// A random non-zero u32 (session IDs).
pub fn random_u32() -> u32 {
    loop {
        let mut b = [0u8; 4];
        fill_random(&mut b);
        let v = u32::from_le_bytes(b);
        if v != 0 {
            return v;
        }
    }
}

fn fill_random(b: &mut [u8]) {
    // getrandom only fails when the OS has no entropy source at all; fall back to
    // time-derived bytes rather than panicking (nonces need uniqueness, not secrecy).
    if getrandom::fill(b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            ^ (std::process::id() as u128) << 64;
        for (i, x) in b.iter_mut().enumerate() {
            *x = (t >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(151);
        }
    }
}

/// Parses hex (for `hexadecimal_kg` and tests); whitespace is ignored.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(&s);
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        from_hex(s).unwrap()
    }
    fn a16(s: &str) -> [u8; 16] {
        h(s).try_into().unwrap()
    }

    /// The session from ipmi-cs3-trace.txt (ipmitool 1.8.19 against ipmi_sim, suite 3).
    fn trace() -> Rakp<'static> {
        Rakp {
            suite: CipherSuite::Suite3,
            kuid: b"fencepass",
            kg: None,
            console_sid: 0xa0a2a3a4,
            bmc_sid: 0x00004582,
            rm: a16("f182d9cee0e9d7b5bbbc0955945f1e0c"),
            rc: a16("2991571f1c3599c2b50473ef2a01a8f0"),
            guid: a16("a123456789abcdefa123456789abcdef"),
            role: 0x14,
            user: b"admin",
        }
    }

    #[test]
    fn trace_rakp_hmacs() {
        let r = trace();
        assert_eq!(
            r.rakp2_hmac(),
            h("098514532c53ed306a9edf0211a8dcc9dc1eb78c")
        );
        assert_eq!(
            r.rakp3_hmac(),
            h("460e336161ce6f4c16feb9b11158f414759e511f")
        );
    }

    #[test]
    fn trace_key_derivation() {
        let r = trace();
        let k = r.keys();
        assert_eq!(k.sik, h("47d5cccdc786fe55a5ae111a6463661ed45c89e4"));
        assert_eq!(k.k1, h("6694f29aa1d2f6f87ad7173fad89303263fd02a6"));
        assert_eq!(k.k2, h("b1a6abbd94d495fe88f4dc6c9e681beb7fbe5d90"));
        assert_eq!(r.rakp4_icv(&k), h("a3050d0d425c2629030096b4"));
    }

    #[test]
    fn zero_padded_kuid_is_the_same_key() {
        let mut r = trace();
        let padded = *b"fencepass\0\0\0\0\0\0\0\0\0\0\0";
        r.kuid = &padded;
        assert_eq!(
            r.rakp2_hmac(),
            h("098514532c53ed306a9edf0211a8dcc9dc1eb78c")
        );
    }

    #[test]
    fn wrong_password_changes_rakp2() {
        let mut r = trace();
        r.kuid = b"fencepasz";
        assert_ne!(
            r.rakp2_hmac(),
            h("098514532c53ed306a9edf0211a8dcc9dc1eb78c")
        );
    }

    #[test]
    fn trace_packet_authcodes() {
        let k = trace().keys();
        // Set Session Privilege Level request (console -> BMC, seq 3).
        let req = h("06c0824500000300000020002577e7b55a10d1d39942e13639652423\
                     d91dd6b04b048633bc3a4b0cd76421aeffff0207");
        assert_eq!(k.authcode(&req), h("7a615db8231b191a3b50116f"));
        // Its response (BMC -> console, seq 1).
        let rsp = h("06c0a4a3a2a0010000002000ff401980a322424e85ec962541570b77\
                     740d96ec4af33c0cc11042e9285aa76bffff0207");
        assert_eq!(k.authcode(&rsp), h("542c1a49156af8898e81e908"));
        // Close Session request (seq 9).
        let close = h("06c0824500000900000020005177cbb28e665eb5564906aacd19bb88\
                       1215baadb42d229f32d8693fb4581b5dffff0207");
        assert_eq!(k.authcode(&close), h("033fe775896c789ea80ab889"));
    }

    #[test]
    fn trace_payload_decryption() {
        let k = trace().keys();
        let payload = h("2577e7b55a10d1d39942e13639652423d91dd6b04b048633bc3a4b0cd76421ae");
        assert_eq!(k.decrypt(&payload).unwrap(), h("2018c881043b043c"));
        let rsp = h("ff401980a322424e85ec962541570b77740d96ec4af33c0cc11042e9285aa76b");
        assert_eq!(k.decrypt(&rsp).unwrap(), h("811c6320043b00049d"));
        let status = h("094af5cd60ea4fb8b7d1dd26a5935e5ed75f1d9def640bb453a3f739888b50c5");
        assert_eq!(k.decrypt(&status).unwrap(), h("2000e081180166"));
        let status_rsp = h("4f566d54a36f199748d061a128a2187148a365859a37e209015ed7cb19831bc3");
        assert_eq!(k.decrypt(&status_rsp).unwrap(), h("81047b20180100010000c6"));
    }

    #[test]
    fn encryption_reproduces_the_trace() {
        let k = trace().keys();
        let iv = a16("2577e7b55a10d1d39942e13639652423");
        assert_eq!(
            k.encrypt(iv, &h("2018c881043b043c")),
            h("2577e7b55a10d1d39942e13639652423d91dd6b04b048633bc3a4b0cd76421ae")
        );
    }

    #[test]
    fn aes_round_trip_every_length() {
        let k = trace().keys();
        for n in 0..70 {
            let pt: Vec<u8> = (0..n as u8).collect();
            let ct = k.encrypt(random16(), &pt);
            assert_eq!(ct.len() % 16, 0);
            assert_eq!(k.decrypt(&ct).unwrap(), pt, "length {n}");
        }
    }

    #[test]
    fn suite17_lengths_and_distinct_keys() {
        let mut r = trace();
        r.suite = CipherSuite::Suite17;
        let k = r.keys();
        assert_eq!(k.sik.len(), 32);
        assert_eq!(k.k1.len(), 32);
        assert_eq!(r.rakp2_hmac().len(), 32);
        assert_eq!(r.rakp4_icv(&k).len(), 16);
        assert_eq!(k.authcode(b"x").len(), 16);
        assert_ne!(k.k1, k.k2);
        assert_eq!(
            CipherSuite::from_algorithms(3, 4, 1),
            Some(CipherSuite::Suite17)
        );
        assert_eq!(CipherSuite::from_algorithms(3, 1, 1), None);
    }

    /// Suite 17 vectors for the trace's inputs, computed independently with Python's
    /// `hmac` + `hashlib.sha256` (no packaged simulator speaks suite 17).
    #[test]
    fn suite17_known_answers() {
        let mut r = trace();
        r.suite = CipherSuite::Suite17;
        assert_eq!(
            r.rakp2_hmac(),
            h("a0f22cb2232fbea3b606b5c0a77f363460be1a704fddd98005b17ec2d6a2d603")
        );
        assert_eq!(
            r.rakp3_hmac(),
            h("48139d608c39fbc69a44a7df64bff8b656c29b7919e202da18b1b8dd3094d437")
        );
        let k = r.keys();
        assert_eq!(
            k.sik,
            h("1a2bc16aaf46b06bb941ce06cfc1cfef2c44680cc80df7e193ce0361e2eb73b6")
        );
        assert_eq!(
            k.k1,
            h("a16556e81d58e5f7f867d78320cc0136cb68aa9fd7398d5aac8e388bc1ef6e87")
        );
        assert_eq!(
            k.k2,
            h("17347f01889bb9d493e3f33d50324e09201e12bae8a0aa3558c1cad6433076d7")
        );
        assert_eq!(r.rakp4_icv(&k), h("31306c05ccc0ed9b2d9941d7726fc367"));
    }

    #[test]
    fn constant_time_compare() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
