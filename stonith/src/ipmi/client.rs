//! A blocking RMCP+ client session: Get Channel Authentication Capabilities, optional
//! Get Channel Cipher Suites, Open Session, RAKP 1-4, Set Session Privilege Level, then
//! chassis commands; Close Session on every path (also from `Drop`). Every wait is
//! bounded: the whole login by `login_timeout`, each later command by `command_timeout`,
//! with retransmission inside those bounds.

use crate::ipmi::crypto::{ct_eq, random16, random_u32, CipherSuite, Rakp, SessionKeys};
use crate::ipmi::packet::{self as p, Datagram};
use std::fmt;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Session privilege levels (IPMI 2.0 table 22-28 / `privlvl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Privilege {
    Callback = 1,
    User = 2,
    Operator = 3,
    Administrator = 4,
}

impl Privilege {
    pub fn parse(s: &str) -> Option<Privilege> {
        match s.to_ascii_lowercase().as_str() {
            "callback" => Some(Privilege::Callback),
            "user" => Some(Privilege::User),
            "operator" => Some(Privilege::Operator),
            "administrator" | "admin" => Some(Privilege::Administrator),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Privilege::Callback => "CALLBACK",
            Privilege::User => "USER",
            Privilege::Operator => "OPERATOR",
            Privilege::Administrator => "ADMINISTRATOR",
        }
    }
}

/// Chassis Control sub-commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChassisControl {
    PowerOff = 0,
    PowerOn = 1,
    PowerCycle = 2,
    HardReset = 3,
    Diag = 4,
    SoftShutdown = 5,
}

/// Which cipher suite to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuiteChoice {
    /// Ask the BMC (Get Channel Cipher Suites); prefer 17, then 3; fall back to 3
    /// when it does not answer.
    Auto,
    Fixed(CipherSuite),
}

/// What a session needs. `Debug` never shows the secrets.
#[derive(Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub username: Vec<u8>,
    pub password: Vec<u8>,
    pub kg: Option<Vec<u8>>,
    pub suite: SuiteChoice,
    pub privilege: Privilege,
    /// Bound for the whole login (including the cipher-suite query).
    pub login_timeout: Duration,
    /// Bound for each command after login.
    pub command_timeout: Duration,
}

impl Drop for Config {
    fn drop(&mut self) {
        for b in self.password.iter_mut().chain(self.kg.iter_mut().flatten()) {
            // volatile so the wipe is not optimised away
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("addr", &self.addr)
            .field("username", &String::from_utf8_lossy(&self.username))
            .field("password", &"[hidden]")
            .field("kg", &self.kg.as_ref().map(|_| "[hidden]"))
            .field("suite", &self.suite)
            .field("privilege", &self.privilege)
            .finish()
    }
}

/// Why an IPMI operation failed. Messages never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum IpmiError {
    #[error("no answer from the BMC at {addr} within {secs:.1} s (request: {what}){hint}")]
    Timeout {
        addr: SocketAddr,
        secs: f64,
        what: &'static str,
        hint: &'static str,
    },
    #[error("authentication failed: {0}")]
    Auth(String),
    #[error("the BMC refused the session: {0}")]
    Session(String),
    #[error("insufficient privilege: {0}")]
    Privilege(String),
    #[error("{what} failed: completion code {cc:#04x} ({text})")]
    Completion {
        what: &'static str,
        cc: u8,
        text: &'static str,
    },
    #[error("network error talking to {addr}: {source}")]
    Io {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("protocol error: {0}")]
    Protocol(String),
}

pub type IpmiResult<T> = Result<T, IpmiError>;

/// The UDP side: one connected socket, retransmission and matching.
struct Link {
    sock: UdpSocket,
    addr: SocketAddr,
    buf: Vec<u8>,
    refused: bool,
}

const FIRST_RETRANSMIT: Duration = Duration::from_millis(250);
const MAX_RETRANSMIT: Duration = Duration::from_secs(1);

impl Link {
    fn new(addr: SocketAddr) -> IpmiResult<Link> {
        let local: SocketAddr = if addr.is_ipv6() {
            "[::]:0".parse().expect("literal")
        } else {
            "0.0.0.0:0".parse().expect("literal")
        };
        let io = |source| IpmiError::Io { addr, source };
        let sock = UdpSocket::bind(local).map_err(io)?;
        sock.connect(addr).map_err(io)?;
        Ok(Link {
            sock,
            addr,
            buf: vec![0u8; 1024],
            refused: false,
        })
    }

    /// Sends what `build` makes (rebuilt on each retransmission) until `accept` returns
    /// `Some` for a received datagram or `deadline` passes.
    fn exchange<T>(
        &mut self,
        what: &'static str,
        deadline: Instant,
        mut build: impl FnMut() -> Vec<u8>,
        mut accept: impl FnMut(&[u8]) -> Option<IpmiResult<T>>,
    ) -> IpmiResult<T> {
        let started = Instant::now();
        let mut interval = FIRST_RETRANSMIT;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(self.timeout(what, started));
            }
            let pkt = build();
            match self.sock.send(&pkt) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => self.refused = true,
                Err(e) => {
                    return Err(IpmiError::Io {
                        addr: self.addr,
                        source: e,
                    })
                }
            }
            let resend_at = (now + interval).min(deadline);
            interval = (interval * 2).min(MAX_RETRANSMIT);
            loop {
                let now = Instant::now();
                if now >= resend_at {
                    break;
                }
                // set_read_timeout rejects zero; the remaining time is > 0 here.
                let _ = self.sock.set_read_timeout(Some(resend_at - now));
                match self.sock.recv(&mut self.buf) {
                    Ok(n) => {
                        let data = self.buf[..n].to_vec();
                        if let Some(r) = accept(&data) {
                            return r;
                        }
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) => {}
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                        // ICMP port unreachable: nothing listens (yet). Keep trying
                        // until the deadline; a BMC may be restarting.
                        self.refused = true;
                        std::thread::sleep(
                            (resend_at - Instant::now().min(resend_at))
                                .min(Duration::from_millis(50)),
                        );
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        return Err(IpmiError::Io {
                            addr: self.addr,
                            source: e,
                        })
                    }
                }
            }
        }
    }

    fn timeout(&self, what: &'static str, started: Instant) -> IpmiError {
        IpmiError::Timeout {
            addr: self.addr,
            secs: started.elapsed().as_secs_f64(),
            what,
            hint: if self.refused {
                " (ICMP port unreachable: nothing listens on that port)"
            } else {
                ""
            },
        }
    }
}

/// Sends one sessionless IPMI request in the given framing and returns the response.
fn sessionless(
    link: &mut Link,
    what: &'static str,
    deadline: Instant,
    v15: bool,
    netfn: u8,
    cmd: u8,
    data: &[u8],
) -> IpmiResult<p::Response> {
    let msg = p::build_request(netfn, cmd, 0, data);
    let pkt = if v15 {
        p::build_v15(&msg)
    } else {
        p::build_v20_plain(p::PAYLOAD_IPMI, 0, &msg)
    };
    link.exchange(
        what,
        deadline,
        || pkt.clone(),
        |d| {
            let m = match p::parse_datagram(d).ok()? {
                Datagram::V15 { msg, .. } => msg,
                Datagram::V20 {
                    payload_type: p::PAYLOAD_IPMI,
                    authenticated: false,
                    encrypted: false,
                    payload,
                    ..
                } => payload,
                _ => return None,
            };
            let r = p::parse_response(m).ok()?;
            (r.netfn == netfn && r.cmd == cmd).then_some(Ok(r))
        },
    )
}

/// An established RMCP+ session. Dropping it closes it on the BMC.
pub struct Session {
    link: Link,
    keys: SessionKeys,
    console_sid: u32,
    bmc_sid: u32,
    seq: u32,
    /// The highest session sequence number received from the BMC (replay check).
    seq_in: u32,
    rq_seq: u8,
    command_timeout: Duration,
    open: bool,
    /// A command timed out: Close Session is then sent once without waiting, so a
    /// dead BMC costs no more than the timeout already spent.
    unresponsive: bool,
    pub privilege: Privilege,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("addr", &self.link.addr)
            .field("suite", &self.keys.suite)
            .field("bmc_sid", &self.bmc_sid)
            .finish_non_exhaustive()
    }
}

/// Asks the BMC which cipher suites it offers (ours among them).
fn query_cipher_suites(link: &mut Link, deadline: Instant) -> IpmiResult<Vec<u8>> {
    let mut records = Vec::new();
    for index in 0u8..0x40 {
        let r = sessionless(
            link,
            "Get Channel Cipher Suites",
            deadline,
            false,
            p::NETFN_APP,
            p::CMD_GET_CHANNEL_CIPHER_SUITES,
            &[0x0e, 0x00, 0x80 | index],
        )?;
        if r.cc != 0 {
            return Err(IpmiError::Completion {
                what: "Get Channel Cipher Suites",
                cc: r.cc,
                text: p::completion_code_text(r.cc),
            });
        }
        // data: channel, then up to 16 bytes of record data.
        let chunk = r.data.get(1..).unwrap_or(&[]);
        records.extend_from_slice(chunk);
        if chunk.len() < 16 {
            break;
        }
    }
    p::parse_cipher_suite_records(&records)
        .map_err(|e| IpmiError::Protocol(format!("cipher suite list: {e}")))
}

/// Picks the suite: 17 if offered, else 3; falls back to 3 if the BMC does not answer
/// within a short slice of the login budget.
fn choose_suite(link: &mut Link, login_deadline: Instant) -> IpmiResult<CipherSuite> {
    let left = login_deadline.saturating_duration_since(Instant::now());
    let probe_deadline = Instant::now() + (left / 3).min(Duration::from_secs(1));
    match query_cipher_suites(link, probe_deadline) {
        Ok(ids) if ids.contains(&17) => Ok(CipherSuite::Suite17),
        Ok(ids) if ids.contains(&3) => Ok(CipherSuite::Suite3),
        Ok(ids) => Err(IpmiError::Session(format!(
            "the BMC offers neither cipher suite 17 nor 3 (it offers {ids:?})"
        ))),
        // No answer or an error: many BMCs (and ipmi_sim) do not implement the query.
        Err(_) => Ok(CipherSuite::Suite3),
    }
}

impl Session {
    /// Logs in and raises the session to the configured privilege.
    pub fn open(cfg: &Config) -> IpmiResult<Session> {
        let started = Instant::now();
        let deadline = started + cfg.login_timeout;
        let mut link = Link::new(cfg.addr)?;
        let priv_byte = cfg.privilege as u8;

        let caps = sessionless(
            &mut link,
            "Get Channel Authentication Capabilities",
            deadline,
            true,
            p::NETFN_APP,
            p::CMD_GET_CHANNEL_AUTH_CAPS,
            &[0x8e, priv_byte],
        )?;
        if caps.cc != 0 {
            return Err(IpmiError::Completion {
                what: "Get Channel Authentication Capabilities",
                cc: caps.cc,
                text: p::completion_code_text(caps.cc),
            });
        }
        let caps = p::parse_auth_caps(&caps.data)
            .map_err(|e| IpmiError::Protocol(format!("authentication capabilities: {e}")))?;
        if !caps.ipmi20 {
            return Err(IpmiError::Session(
                "the BMC does not offer IPMI 2.0 (RMCP+) on this channel".into(),
            ));
        }

        let suite = match cfg.suite {
            SuiteChoice::Fixed(s) => s,
            SuiteChoice::Auto => choose_suite(&mut link, deadline)?,
        };

        let console_sid = random_u32();
        let tag = 0u8;
        let osr = p::OpenSessionRequest {
            tag,
            max_priv: priv_byte,
            console_sid,
            auth: suite.auth_alg(),
            integ: suite.integ_alg(),
            conf: suite.conf_alg(),
        }
        .build();
        let rsp = link.exchange(
            "Open Session Request",
            deadline,
            || p::build_v20_plain(p::PAYLOAD_OPEN_SESSION_REQ, 0, &osr),
            |d| match p::parse_datagram(d).ok()? {
                Datagram::V20 {
                    payload_type: p::PAYLOAD_OPEN_SESSION_RSP,
                    payload,
                    ..
                } => {
                    let r = p::OpenSessionResponse::parse(payload).ok()?;
                    (r.tag == tag).then_some(Ok(r))
                }
                _ => None,
            },
        )?;
        if rsp.status != 0 {
            let hint = if rsp.status == 0x04 && suite == CipherSuite::Suite17 {
                "; the BMC does not support cipher suite 17, try cipher=3"
            } else {
                ""
            };
            return Err(IpmiError::Session(format!(
                "Open Session status {:#04x} ({}) for cipher suite {}{hint}",
                rsp.status,
                p::rmcp_status_text(rsp.status),
                suite.id()
            )));
        }
        if rsp.console_sid != console_sid {
            return Err(IpmiError::Protocol(
                "Open Session Response for another session".into(),
            ));
        }
        if (rsp.auth, rsp.integ, rsp.conf)
            != (suite.auth_alg(), suite.integ_alg(), suite.conf_alg())
        {
            return Err(IpmiError::Session(format!(
                "asked for cipher suite {} but the BMC chose algorithms {}/{}/{}",
                suite.id(),
                rsp.auth,
                rsp.integ,
                rsp.conf
            )));
        }
        let bmc_sid = rsp.bmc_sid;

        let rm = random16();
        let role = priv_byte | 0x10;
        let r1 = p::Rakp1 {
            tag,
            bmc_sid,
            rm,
            role,
            user: cfg.username.clone(),
        }
        .build();
        let r2 = link.exchange(
            "RAKP 1",
            deadline,
            || p::build_v20_plain(p::PAYLOAD_RAKP1, 0, &r1),
            |d| match p::parse_datagram(d).ok()? {
                Datagram::V20 {
                    payload_type: p::PAYLOAD_RAKP2,
                    payload,
                    ..
                } => {
                    let r = p::Rakp2::parse(payload).ok()?;
                    (r.tag == tag).then_some(Ok(r))
                }
                _ => None,
            },
        )?;
        let user_text = String::from_utf8_lossy(&cfg.username).into_owned();
        match r2.status {
            0 => {}
            0x0d => {
                return Err(IpmiError::Auth(format!(
                    "the BMC does not know user '{user_text}' (RAKP 2: unauthorized name)"
                )))
            }
            0x09 | 0x0a => {
                return Err(IpmiError::Privilege(format!(
                    "user '{user_text}' may not log in at privilege {} (RAKP 2: {})",
                    cfg.privilege.name(),
                    p::rmcp_status_text(r2.status)
                )))
            }
            s => {
                return Err(IpmiError::Session(format!(
                    "RAKP 2 status {s:#04x} ({})",
                    p::rmcp_status_text(s)
                )))
            }
        }
        if r2.console_sid != console_sid {
            return Err(IpmiError::Protocol("RAKP 2 for another session".into()));
        }
        let rakp = Rakp {
            suite,
            kuid: &cfg.password,
            kg: cfg.kg.as_deref(),
            console_sid,
            bmc_sid,
            rm,
            rc: r2.rc,
            guid: r2.guid,
            role,
            user: &cfg.username,
        };
        if !ct_eq(&rakp.rakp2_hmac(), &r2.hmac) {
            // Tell the BMC to drop the half-open session; no answer is awaited.
            let nak = p::Rakp3 {
                tag,
                status: 0x0f,
                bmc_sid,
                hmac: Vec::new(),
            }
            .build();
            let _ = link
                .sock
                .send(&p::build_v20_plain(p::PAYLOAD_RAKP3, 0, &nak));
            return Err(IpmiError::Auth(format!(
                "wrong password for user '{user_text}' (the BMC's RAKP 2 HMAC does not match)"
            )));
        }
        let keys = rakp.keys();
        let r3 = p::Rakp3 {
            tag,
            status: 0,
            bmc_sid,
            hmac: rakp.rakp3_hmac(),
        }
        .build();
        let r4 = link.exchange(
            "RAKP 3",
            deadline,
            || p::build_v20_plain(p::PAYLOAD_RAKP3, 0, &r3),
            |d| match p::parse_datagram(d).ok()? {
                Datagram::V20 {
                    payload_type: p::PAYLOAD_RAKP4,
                    payload,
                    ..
                } => {
                    let r = p::Rakp4::parse(payload).ok()?;
                    (r.tag == tag).then_some(Ok(r))
                }
                _ => None,
            },
        )?;
        if r4.status != 0 {
            return Err(if r4.status == 0x0f {
                IpmiError::Auth(format!(
                    "the BMC rejected our RAKP 3 for user '{user_text}' (wrong password or Kg)"
                ))
            } else {
                IpmiError::Session(format!(
                    "RAKP 4 status {:#04x} ({})",
                    r4.status,
                    p::rmcp_status_text(r4.status)
                ))
            });
        }
        if !ct_eq(&rakp.rakp4_icv(&keys), &r4.icv) {
            return Err(IpmiError::Auth(
                "the BMC's RAKP 4 integrity check value does not match (wrong Kg?)".into(),
            ));
        }

        // From here on the session exists on the BMC: Drop closes it on any error.
        let mut s = Session {
            link,
            keys,
            console_sid,
            bmc_sid,
            seq: 0,
            seq_in: 0,
            rq_seq: 0,
            command_timeout: cfg.command_timeout,
            open: true,
            unresponsive: false,
            privilege: cfg.privilege,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let r = s.command_within(
            "Set Session Privilege Level",
            p::NETFN_APP,
            p::CMD_SET_SESSION_PRIV,
            &[priv_byte],
            left.max(Duration::from_millis(1)),
        )?;
        if r.cc != 0 {
            return Err(IpmiError::Privilege(format!(
                "the BMC refused privilege level {} for user '{user_text}': completion code {:#04x} ({})",
                cfg.privilege.name(),
                r.cc,
                p::completion_code_text(r.cc)
            )));
        }
        Ok(s)
    }

    /// The negotiated cipher suite.
    pub fn suite(&self) -> CipherSuite {
        self.keys.suite
    }

    fn command_within(
        &mut self,
        what: &'static str,
        netfn: u8,
        cmd: u8,
        data: &[u8],
        timeout: Duration,
    ) -> IpmiResult<p::Response> {
        self.rq_seq = (self.rq_seq % 0x3f) + 1;
        let rq_seq = self.rq_seq;
        let msg = p::build_request(netfn, cmd, rq_seq, data);
        let (keys, bmc_sid, console_sid) = (self.keys.clone(), self.bmc_sid, self.console_sid);
        let seq = &mut self.seq;
        let seq_in = &mut self.seq_in;
        let deadline = Instant::now() + timeout;
        let r = self.link.exchange(
            what,
            deadline,
            || {
                *seq = seq.wrapping_add(1).max(1);
                p::build_v20_secure(&keys, bmc_sid, *seq, random16(), &msg)
            },
            |d| {
                let dg = p::parse_datagram(d).ok()?;
                let in_seq = match &dg {
                    Datagram::V20 {
                        session_id, seq, ..
                    } if *session_id == console_sid => *seq,
                    _ => return None,
                };
                // Forged or corrupted datagrams fail the AuthCode and are dropped.
                let plain = p::open_secure(&keys, &dg).ok()?;
                // Authenticated but replayed (not newer than the last one): drop.
                if in_seq != 0 && in_seq <= *seq_in {
                    return None;
                }
                let r = p::parse_response(&plain).ok()?;
                if r.rq_seq == rq_seq && r.cmd == cmd && r.netfn == netfn {
                    *seq_in = in_seq.max(*seq_in);
                    Some(Ok(r))
                } else {
                    None
                }
            },
        );
        if matches!(r, Err(IpmiError::Timeout { .. })) {
            self.unresponsive = true;
        }
        r
    }

    /// Sends an IPMI command in the session and returns the response (any completion code).
    pub fn command(
        &mut self,
        what: &'static str,
        netfn: u8,
        cmd: u8,
        data: &[u8],
    ) -> IpmiResult<p::Response> {
        if !self.open {
            return Err(IpmiError::Protocol("the session is closed".into()));
        }
        self.command_within(what, netfn, cmd, data, self.command_timeout)
    }

    /// Get Chassis Status: true when the power is on.
    pub fn power_is_on(&mut self) -> IpmiResult<bool> {
        let r = self.command(
            "Get Chassis Status",
            p::NETFN_CHASSIS,
            p::CMD_GET_CHASSIS_STATUS,
            &[],
        )?;
        if r.cc != 0 {
            return Err(completion("Get Chassis Status", r.cc, self.privilege));
        }
        p::parse_chassis_power(&r.data)
            .map_err(|e| IpmiError::Protocol(format!("chassis status: {e}")))
    }

    /// Chassis Control.
    pub fn chassis_control(&mut self, c: ChassisControl) -> IpmiResult<()> {
        let r = self.command(
            "Chassis Control",
            p::NETFN_CHASSIS,
            p::CMD_CHASSIS_CONTROL,
            &[c as u8],
        )?;
        if r.cc != 0 {
            return Err(completion("Chassis Control", r.cc, self.privilege));
        }
        Ok(())
    }

    /// Closes the session on the BMC (once; later calls do nothing).
    pub fn close(&mut self) -> IpmiResult<()> {
        if !self.open {
            return Ok(());
        }
        let sid = self.bmc_sid.to_le_bytes();
        if self.unresponsive {
            self.open = false;
            self.rq_seq = (self.rq_seq % 0x3f) + 1;
            self.seq = self.seq.wrapping_add(1).max(1);
            let msg = p::build_request(p::NETFN_APP, p::CMD_CLOSE_SESSION, self.rq_seq, &sid);
            let pkt = p::build_v20_secure(&self.keys, self.bmc_sid, self.seq, random16(), &msg);
            let _ = self.link.sock.send(&pkt);
            return Ok(());
        }
        let t = self.command_timeout.min(Duration::from_secs(1));
        let r = self.command_within("Close Session", p::NETFN_APP, p::CMD_CLOSE_SESSION, &sid, t);
        self.open = false;
        let r = r?;
        if r.cc != 0 {
            return Err(IpmiError::Completion {
                what: "Close Session",
                cc: r.cc,
                text: p::completion_code_text(r.cc),
            });
        }
        Ok(())
    }
}

fn completion(what: &'static str, cc: u8, privilege: Privilege) -> IpmiError {
    if cc == 0xd4 {
        IpmiError::Privilege(format!(
            "the BMC refused {what} at session privilege {} (completion code 0xd4); \
             use privlvl=operator or administrator with a user allowed that level",
            privilege.name()
        ))
    } else {
        IpmiError::Completion {
            what,
            cc,
            text: p::completion_code_text(cc),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.close();
    }
}
