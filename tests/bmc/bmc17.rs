//! A small RMCP+ BMC for the tests, speaking cipher suites 17 and 3 on 127.0.0.1
//! (OpenIPMI's ipmi_sim has no SHA-256, hence suite 17 needs this stand-in). Real
//! `ipmitool -I lanplus -C 17` is run against it in tests/ipmi17.rs, which proves it is
//! a faithful peer. It answers Get Channel Authentication Capabilities, Get Channel
//! Cipher Suites, Open Session, RAKP 1/3, Set Session Privilege Level (enforcing each
//! user's maximum, unlike ipmi_sim), Get Device ID, Get Chassis Status, Chassis Control
//! (needs OPERATOR, else completion code D4h) and Close Session; anything else gets C1h.
//! Power changes are recorded, in order, in `events()`.
#![allow(dead_code)]

use bulwark_stonith::ipmi::crypto::{ct_eq, random16, random_u32, CipherSuite, Rakp, SessionKeys};
use bulwark_stonith::ipmi::packet::{self as p, Datagram};
use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub const GUID: [u8; 16] = [
    0xa1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xa1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
];

/// (name, password, maximum privilege)
pub const USERS: &[(&str, &str, u8)] = &[
    ("admin", "fencepass", 4),
    ("operator", "oppass", 3),
    ("viewer", "userpass", 2),
];

#[derive(Default)]
struct State {
    power_on: bool,
    events: Vec<String>,
    sessions_opened: u32,
    sessions_closed: u32,
    dropped: u32,
    /// Ignore chassis commands (a BMC that hangs after login).
    mute_chassis: bool,
}

struct Pending {
    console_sid: u32,
    suite: CipherSuite,
    rm: [u8; 16],
    rc: [u8; 16],
    role: u8,
    user: Vec<u8>,
    password: Vec<u8>,
    max_priv: u8,
    keys: Option<SessionKeys>,
    privilege: u8,
    seq_out: u32,
}

pub struct TestBmc {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TestBmc {
    /// Starts a BMC on an ephemeral UDP port of 127.0.0.1 offering `suites`, powered on.
    pub fn start(suites: &[CipherSuite]) -> TestBmc {
        TestBmc::start_lossy(suites, 0)
    }

    /// Like [`start`](Self::start), but ignores every `drop_every`-th datagram it
    /// receives (0: none), to exercise the client's retransmission.
    pub fn start_lossy(suites: &[CipherSuite], drop_every: u32) -> TestBmc {
        TestBmc::spawn(suites, drop_every, None)
    }

    /// Like [`start`](Self::start) with a BMC key (Kg): the session integrity key is
    /// then keyed by Kg instead of the user's password.
    pub fn start_with_kg(suites: &[CipherSuite], kg: &[u8]) -> TestBmc {
        TestBmc::spawn(suites, 0, Some(kg.to_vec()))
    }

    /// A BMC on IPv6 loopback, or `None` when this host has no `::1`.
    pub fn start_ipv6(suites: &[CipherSuite]) -> Option<TestBmc> {
        UdpSocket::bind("[::1]:0").ok()?;
        Some(TestBmc::spawn_on("[::1]:0", suites, 0, None))
    }

    fn spawn(suites: &[CipherSuite], drop_every: u32, kg: Option<Vec<u8>>) -> TestBmc {
        TestBmc::spawn_on("127.0.0.1:0", suites, drop_every, kg)
    }

    fn spawn_on(
        bind: &str,
        suites: &[CipherSuite],
        drop_every: u32,
        kg: Option<Vec<u8>>,
    ) -> TestBmc {
        let sock = UdpSocket::bind(bind).expect("bind test BMC");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = sock.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            power_on: true,
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp, suites) = (state.clone(), stop.clone(), suites.to_vec());
        let thread = std::thread::spawn(move || serve(sock, st, sp, suites, drop_every, kg));
        TestBmc {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
    pub fn events(&self) -> Vec<String> {
        self.state.lock().unwrap().events.clone()
    }
    pub fn power_on(&self) -> bool {
        self.state.lock().unwrap().power_on
    }
    pub fn set_power(&self, on: bool) {
        self.state.lock().unwrap().power_on = on;
    }
    /// Stop (or resume) answering chassis commands, as a BMC that hangs after login.
    pub fn set_mute_chassis(&self, mute: bool) {
        self.state.lock().unwrap().mute_chassis = mute;
    }
    /// How many datagrams the lossy mode ignored.
    pub fn dropped(&self) -> u32 {
        self.state.lock().unwrap().dropped
    }
    /// (opened, closed) sessions.
    pub fn sessions(&self) -> (u32, u32) {
        let s = self.state.lock().unwrap();
        (s.sessions_opened, s.sessions_closed)
    }
}

impl Drop for TestBmc {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    sock: UdpSocket,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    suites: Vec<CipherSuite>,
    drop_every: u32,
    kg: Option<Vec<u8>>,
) {
    let mut sessions: HashMap<u32, Pending> = HashMap::new();
    let mut buf = [0u8; 1024];
    let mut received = 0u32;
    while !stop.load(Ordering::SeqCst) {
        let (n, peer) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(_) => continue,
        };
        received += 1;
        if drop_every > 0 && received % drop_every == 0 {
            state.lock().unwrap().dropped += 1;
            continue;
        }
        if let Some(reply) = handle(&buf[..n], &mut sessions, &state, &suites, kg.as_deref()) {
            let _ = sock.send_to(&reply, peer);
        }
    }
}

fn handle(
    b: &[u8],
    sessions: &mut HashMap<u32, Pending>,
    state: &Arc<Mutex<State>>,
    suites: &[CipherSuite],
    kg: Option<&[u8]>,
) -> Option<Vec<u8>> {
    match p::parse_datagram(b).ok()? {
        Datagram::V15 { msg, .. } => {
            let req = p::parse_request(msg).ok()?;
            let (cc, data) = sessionless(&req, suites);
            Some(p::build_v15(&p::build_response(&req, cc, &data)))
        }
        Datagram::V20 {
            payload_type: p::PAYLOAD_IPMI,
            authenticated: false,
            payload,
            session_id: 0,
            ..
        } => {
            let req = p::parse_request(payload).ok()?;
            let (cc, data) = sessionless(&req, suites);
            Some(p::build_v20_plain(
                p::PAYLOAD_IPMI,
                0,
                &p::build_response(&req, cc, &data),
            ))
        }
        Datagram::V20 {
            payload_type: p::PAYLOAD_OPEN_SESSION_REQ,
            payload,
            ..
        } => {
            let r = p::OpenSessionRequest::parse(payload).ok()?;
            let suite = CipherSuite::from_algorithms(r.auth, r.integ, r.conf)
                .filter(|s| suites.contains(s));
            let mut rsp = p::OpenSessionResponse {
                tag: r.tag,
                status: 0,
                max_priv: if r.max_priv == 0 { 4 } else { r.max_priv },
                console_sid: r.console_sid,
                bmc_sid: 0,
                auth: r.auth,
                integ: r.integ,
                conf: r.conf,
            };
            match suite {
                None => rsp.status = 0x04,
                Some(suite) => {
                    let bmc_sid = random_u32();
                    rsp.bmc_sid = bmc_sid;
                    sessions.insert(
                        bmc_sid,
                        Pending {
                            console_sid: r.console_sid,
                            suite,
                            rm: [0; 16],
                            rc: random16(),
                            role: 0,
                            user: Vec::new(),
                            password: Vec::new(),
                            max_priv: 0,
                            keys: None,
                            privilege: 2,
                            seq_out: 0,
                        },
                    );
                }
            }
            Some(p::build_v20_plain(
                p::PAYLOAD_OPEN_SESSION_RSP,
                0,
                &rsp.build(),
            ))
        }
        Datagram::V20 {
            payload_type: p::PAYLOAD_RAKP1,
            payload,
            ..
        } => {
            let r = p::Rakp1::parse(payload).ok()?;
            let s = sessions.get_mut(&r.bmc_sid)?;
            let mut rsp = p::Rakp2 {
                tag: r.tag,
                status: 0,
                console_sid: s.console_sid,
                rc: s.rc,
                guid: GUID,
                hmac: Vec::new(),
            };
            match USERS.iter().find(|(n, _, _)| n.as_bytes() == &r.user[..]) {
                None => rsp.status = 0x0d,
                Some((_, pw, max)) if (r.role & 0x0f) <= *max => {
                    s.rm = r.rm;
                    s.role = r.role;
                    s.user = r.user.clone();
                    s.password = pw.as_bytes().to_vec();
                    s.max_priv = *max;
                    rsp.hmac = rakp(s, r.bmc_sid).rakp2_hmac();
                }
                Some(_) => rsp.status = 0x09,
            }
            Some(p::build_v20_plain(p::PAYLOAD_RAKP2, 0, &rsp.build()))
        }
        Datagram::V20 {
            payload_type: p::PAYLOAD_RAKP3,
            payload,
            ..
        } => {
            let r = p::Rakp3::parse(payload).ok()?;
            let s = sessions.get_mut(&r.bmc_sid)?;
            if r.status != 0 {
                sessions.remove(&r.bmc_sid);
                return None;
            }
            let mut k = rakp(s, r.bmc_sid);
            k.kg = kg;
            let mut rsp = p::Rakp4 {
                tag: r.tag,
                status: 0,
                console_sid: s.console_sid,
                icv: Vec::new(),
            };
            if ct_eq(&k.rakp3_hmac(), &r.hmac) {
                let keys = k.keys();
                rsp.icv = k.rakp4_icv(&keys);
                s.keys = Some(keys);
                state.lock().unwrap().sessions_opened += 1;
            } else {
                rsp.status = 0x0f;
            }
            Some(p::build_v20_plain(p::PAYLOAD_RAKP4, 0, &rsp.build()))
        }
        d @ Datagram::V20 {
            payload_type: p::PAYLOAD_IPMI,
            authenticated: true,
            ..
        } => {
            let Datagram::V20 { session_id, .. } = d else {
                return None;
            };
            let s = sessions.get_mut(&session_id)?;
            let keys = s.keys.clone()?;
            let plain = p::open_secure(&keys, &d).ok()?;
            let req = p::parse_request(&plain).ok()?;
            if req.netfn == p::NETFN_CHASSIS && state.lock().unwrap().mute_chassis {
                return None;
            }
            let (cc, data, close) = in_session(&req, s, session_id, state);
            s.seq_out += 1;
            let reply = p::build_v20_secure(
                &keys,
                s.console_sid,
                s.seq_out,
                random16(),
                &p::build_response(&req, cc, &data),
            );
            if close {
                sessions.remove(&session_id);
                state.lock().unwrap().sessions_closed += 1;
            }
            Some(reply)
        }
        _ => None,
    }
}

fn rakp(s: &Pending, bmc_sid: u32) -> Rakp<'_> {
    Rakp {
        suite: s.suite,
        kuid: &s.password,
        kg: None,
        console_sid: s.console_sid,
        bmc_sid,
        rm: s.rm,
        rc: s.rc,
        guid: GUID,
        role: s.role,
        user: &s.user,
    }
}

fn sessionless(req: &p::Request, suites: &[CipherSuite]) -> (u8, Vec<u8>) {
    match (req.netfn, req.cmd) {
        (p::NETFN_APP, p::CMD_GET_CHANNEL_AUTH_CAPS) => {
            // channel 1; IPMI 2.0 extended caps; non-null user names; IPMI 2.0 supported.
            (0, vec![0x01, 0x80, 0x04, 0x02, 0, 0, 0, 0])
        }
        (p::NETFN_APP, p::CMD_GET_CHANNEL_CIPHER_SUITES) => {
            let mut records = Vec::new();
            for s in suites {
                records.extend_from_slice(&[
                    0xc0,
                    s.id(),
                    s.auth_alg(),
                    0x40 | s.integ_alg(),
                    0x80 | s.conf_alg(),
                ]);
            }
            let index = (req.data.get(2).copied().unwrap_or(0) & 0x3f) as usize;
            let chunk: Vec<u8> = records.iter().skip(index * 16).take(16).copied().collect();
            let mut d = vec![0x01];
            d.extend(chunk);
            (0, d)
        }
        _ => (0xc1, Vec::new()),
    }
}

fn in_session(
    req: &p::Request,
    s: &mut Pending,
    bmc_sid: u32,
    state: &Arc<Mutex<State>>,
) -> (u8, Vec<u8>, bool) {
    match (req.netfn, req.cmd) {
        (p::NETFN_APP, p::CMD_SET_SESSION_PRIV) => {
            let want = req.data.first().copied().unwrap_or(0) & 0x0f;
            if want == 0 {
                (0, vec![s.privilege], false)
            } else if want > s.max_priv || want > (s.role & 0x0f) {
                (0x81, Vec::new(), false)
            } else {
                s.privilege = want;
                (0, vec![want], false)
            }
        }
        (p::NETFN_APP, p::CMD_GET_DEVICE_ID) => (
            0,
            vec![
                0x20, 0x01, 0x01, 0x00, 0x02, 0x9f, 0x91, 0x12, 0x00, 0x02, 0x0f,
            ],
            false,
        ),
        (p::NETFN_APP, p::CMD_CLOSE_SESSION) => {
            let sid = req
                .data
                .get(..4)
                .map(|d| u32::from_le_bytes([d[0], d[1], d[2], d[3]]));
            if sid == Some(bmc_sid) {
                (0, Vec::new(), true)
            } else {
                (0x87, Vec::new(), false)
            }
        }
        (p::NETFN_CHASSIS, p::CMD_GET_CHASSIS_STATUS) => {
            let on = state.lock().unwrap().power_on;
            (0, vec![u8::from(on), 0, 0], false)
        }
        (p::NETFN_CHASSIS, p::CMD_CHASSIS_CONTROL) => {
            if s.privilege < 3 {
                return (0xd4, Vec::new(), false);
            }
            let mut st = state.lock().unwrap();
            match req.data.first() {
                Some(0) => {
                    st.power_on = false;
                    st.events.push("power_off".into());
                }
                Some(1) => {
                    st.power_on = true;
                    st.events.push("power_on".into());
                }
                Some(2) if st.power_on => {
                    st.events.push("power_off".into());
                    st.events.push("power_on".into());
                }
                Some(2) => return (0xd5, Vec::new(), false),
                Some(3) => st.events.push("reset".into()),
                _ => return (0xcc, Vec::new(), false),
            }
            (0, Vec::new(), false)
        }
        _ => (0xc1, Vec::new(), false),
    }
}
