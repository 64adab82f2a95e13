//! The probe engine: every host in parallel from one thread, no child processes.
//!
//! - ICMP echo on one raw IPv4 and one raw ICMPv6 socket shared by all hosts. Each run
//!   picks a random identifier and a random 8-byte cookie carried in the payload; the
//!   sequence number encodes (host, attempt). A reply counts only when identifier,
//!   cookie, sequence number and source address all match what was sent.
//! - ARP requests on an AF_PACKET socket per interface; a reply counts when it comes
//!   from the target's address and is addressed to our address on that interface.
//! - TCP: a non-blocking connect per attempt; an accepted connection counts.
//!
//! Attempt `k` (0-based) of every host not yet heard from is sent at
//! `k × window / attempts`; the run ends when every host answered or `window` has
//! passed since the first send, whichever comes first. A run therefore never takes more
//! than `window`, however many hosts are dead.

use super::hosts::ProbeKind;
use socket2::{Domain, Protocol, SockAddr, SockAddrStorage, Socket, Type};
use std::io::{self, Read};
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// One host to probe. `addr` is `None` when its name could not be resolved.
#[derive(Debug, Clone)]
pub struct Target {
    pub kind: ProbeKind,
    pub addr: Option<IpAddr>,
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct Report {
    /// Per target: the time from the first send to the first valid reply.
    pub rtt: Vec<Option<Duration>>,
    /// Per target: why it is counted unreachable (last problem seen), if known.
    pub notes: Vec<Option<String>>,
    pub elapsed: Duration,
}

impl Report {
    pub fn reachable(&self) -> usize {
        self.rtt.iter().filter(|r| r.is_some()).count()
    }
    pub fn is_reachable(&self, i: usize) -> bool {
        self.rtt[i].is_some()
    }
}

/// An IPv4 interface usable for ARP towards a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArpIf {
    pub name: String,
    pub ifindex: i32,
    pub mac: [u8; 6],
    pub ip: Ipv4Addr,
    pub prefix: u32,
}

/// The up, non-loopback interface whose IPv4 subnet contains `target` (longest prefix).
pub fn arp_interface(target: Ipv4Addr) -> Option<ArpIf> {
    let mut v4: Vec<(String, Ipv4Addr, u32, u32)> = Vec::new();
    let mut links: Vec<(String, i32, [u8; 6])> = Vec::new();
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list we walk read-only and free once below.
    if unsafe { libc::getifaddrs(&mut ifap) } != 0 {
        return None;
    }
    let mut cur = ifap;
    while !cur.is_null() {
        // SAFETY: cur is a node of the list returned by getifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: ifa_addr is non-null; its family tells which sockaddr it is.
        let family = unsafe { (*ifa.ifa_addr).sa_family } as i32;
        if family == libc::AF_INET && !ifa.ifa_netmask.is_null() {
            // SAFETY: AF_INET entries carry sockaddr_in address and netmask.
            let (a, m) = unsafe {
                (
                    &*(ifa.ifa_addr as *const libc::sockaddr_in),
                    &*(ifa.ifa_netmask as *const libc::sockaddr_in),
                )
            };
            let addr = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            let mask = u32::from_be(m.sin_addr.s_addr);
            v4.push((name, addr, mask, ifa.ifa_flags));
        } else if family == libc::AF_PACKET {
            // SAFETY: AF_PACKET entries carry a sockaddr_ll.
            let ll = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_ll) };
            if ll.sll_halen == 6 {
                let mut mac = [0u8; 6];
                mac.copy_from_slice(&ll.sll_addr[..6]);
                links.push((name, ll.sll_ifindex, mac));
            }
        }
    }
    // SAFETY: ifap came from getifaddrs and is freed exactly once.
    unsafe { libc::freeifaddrs(ifap) };
    let t = u32::from(target);
    v4.into_iter()
        .filter(|(_, addr, mask, flags)| {
            flags & (libc::IFF_UP as u32) != 0
                && flags & (libc::IFF_LOOPBACK as u32) == 0
                && *mask != 0
                && (u32::from(*addr) & mask) == (t & mask)
                && u32::from(*addr) != t
        })
        .filter_map(|(name, ip, mask, _)| {
            let (_, ifindex, mac) = links.iter().find(|(n, _, _)| {
                // Labels like eth0:1 share the link of eth0.
                *n == name || name.split(':').next() == Some(n.as_str())
            })?;
            Some(ArpIf {
                name,
                ifindex: *ifindex,
                mac: *mac,
                ip,
                prefix: mask.count_ones(),
            })
        })
        .max_by_key(|i| i.prefix)
}

fn random_bytes() -> [u8; 10] {
    let mut b = [0u8; 10];
    // SAFETY: getrandom writes at most b.len() bytes into b.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        // Fall back on time and pid: uniqueness, not secrecy, is what matters here.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let mix = t ^ ((std::process::id() as u128) << 64);
        b.copy_from_slice(&mix.to_le_bytes()[..10]);
    }
    b
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        sum += w as u32;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An echo request: type, code 0, checksum, identifier, sequence, cookie, padding.
fn echo_request(v6: bool, id: u16, seq: u16, cookie: &[u8; 8]) -> Vec<u8> {
    let mut p = vec![0u8; 8 + 24];
    p[0] = if v6 { 128 } else { 8 };
    p[4..6].copy_from_slice(&id.to_be_bytes());
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    p[8..16].copy_from_slice(cookie);
    p[16..32].copy_from_slice(b"bulwark-ping-arb");
    if !v6 {
        // The kernel fills in the ICMPv6 checksum; ICMPv4 is ours to compute.
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// An echo reply as (identifier, sequence, cookie) when `icmp` is one.
fn parse_echo_reply(icmp: &[u8], v6: bool) -> Option<(u16, u16, [u8; 8])> {
    if icmp.len() < 16 || icmp[0] != if v6 { 129 } else { 0 } || icmp[1] != 0 {
        return None;
    }
    let id = u16::from_be_bytes([icmp[4], icmp[5]]);
    let seq = u16::from_be_bytes([icmp[6], icmp[7]]);
    let mut cookie = [0u8; 8];
    cookie.copy_from_slice(&icmp[8..16]);
    Some((id, seq, cookie))
}

/// An ARP request (payload only; the kernel adds the Ethernet header).
fn arp_request(sha: [u8; 6], spa: Ipv4Addr, tpa: Ipv4Addr) -> [u8; 28] {
    let mut p = [0u8; 28];
    p[0..2].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
    p[2..4].copy_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    p[4] = 6;
    p[5] = 4;
    p[6..8].copy_from_slice(&1u16.to_be_bytes()); // request
    p[8..14].copy_from_slice(&sha);
    p[14..18].copy_from_slice(&spa.octets());
    // tha stays zero
    p[24..28].copy_from_slice(&tpa.octets());
    p
}

/// An ARP reply as (sender IP, target IP).
fn parse_arp_reply(p: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr)> {
    if p.len() < 28
        || p[0..2] != [0, 1]
        || p[2..4] != [8, 0]
        || p[4] != 6
        || p[5] != 4
        || p[6..8] != [0, 2]
    {
        return None;
    }
    let spa = Ipv4Addr::new(p[14], p[15], p[16], p[17]);
    let tpa = Ipv4Addr::new(p[24], p[25], p[26], p[27]);
    Some((spa, tpa))
}

fn ll_addr(ifindex: i32, broadcast: bool) -> SockAddr {
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: sockaddr_ll is a sockaddr type of this platform and fits the storage.
    let ll = unsafe { storage.view_as::<libc::sockaddr_ll>() };
    ll.sll_family = libc::AF_PACKET as u16;
    ll.sll_protocol = (libc::ETH_P_ARP as u16).to_be();
    ll.sll_ifindex = ifindex;
    if broadcast {
        ll.sll_halen = 6;
        ll.sll_addr[..6].copy_from_slice(&[0xff; 6]);
    }
    // SAFETY: the family is AF_PACKET and the length is that of sockaddr_ll.
    unsafe { SockAddr::new(storage, std::mem::size_of::<libc::sockaddr_ll>() as u32) }
}

fn recv_from(sock: &Socket, buf: &mut [u8]) -> io::Result<(usize, SockAddr)> {
    // SAFETY: recv only writes initialised bytes into the buffer; viewing initialised
    // memory as MaybeUninit is sound.
    let uninit = unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) };
    sock.recv_from(uninit)
}

fn raw_icmp(v6: bool) -> io::Result<Socket> {
    let s = if v6 {
        Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?
    } else {
        Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?
    };
    s.set_nonblocking(true)?;
    let fd = s.as_raw_fd();
    if v6 {
        // ICMP6_FILTER: block every type but echo reply (129).
        let mut filt = [u32::MAX; 8];
        filt[129 >> 5] &= !(1u32 << (129 & 31));
        // SAFETY: setsockopt with a correctly sized buffer.
        unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_ICMPV6,
                1, /* ICMP6_FILTER */
                filt.as_ptr().cast(),
                std::mem::size_of_val(&filt) as u32,
            )
        };
    } else {
        // ICMP_FILTER on SOL_RAW: a set bit drops that type; keep only echo reply (0).
        let mask: u32 = !1u32;
        // SAFETY: setsockopt with a correctly sized buffer.
        unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_RAW,
                1, /* ICMP_FILTER */
                (&mask as *const u32).cast(),
                4,
            )
        };
    }
    // Many replies may arrive at once; make room for them.
    let _ = s.set_recv_buffer_size(1 << 20);
    Ok(s)
}

fn arp_socket(ifindex: i32) -> io::Result<Socket> {
    let s = Socket::new(
        Domain::PACKET,
        Type::DGRAM,
        Some(Protocol::from((libc::ETH_P_ARP as u16).to_be() as i32)),
    )?;
    s.set_nonblocking(true)?;
    s.bind(&ll_addr(ifindex, false))?;
    Ok(s)
}

struct PendingTcp {
    target: usize,
    sock: Socket,
}

/// Probes every target, `attempts` tries each spread over `window`.
pub fn probe_all(targets: &[Target], attempts: u32, window: Duration) -> io::Result<Report> {
    let attempts = attempts.max(1);
    let n = targets.len();
    let mut rtt: Vec<Option<Duration>> = vec![None; n];
    let mut notes: Vec<Option<String>> = vec![None; n];
    // Targets we can never reach this run (unresolved, no interface) are settled at once.
    let mut hopeless = vec![false; n];
    let rnd = random_bytes();
    let id = u16::from_le_bytes([rnd[0], rnd[1]]);
    let mut cookie = [0u8; 8];
    cookie.copy_from_slice(&rnd[2..10]);

    let wants = |v6: bool| {
        targets
            .iter()
            .any(|t| t.kind == ProbeKind::Icmp && t.addr.is_some_and(|a| a.is_ipv6() == v6))
    };
    let icmp4 = if wants(false) {
        Some(raw_icmp(false)?)
    } else {
        None
    };
    let icmp6 = if wants(true) {
        Some(raw_icmp(true)?)
    } else {
        None
    };

    // ARP: one packet socket per interface in use.
    let mut arp_ifs: Vec<(ArpIf, Socket)> = Vec::new();
    let mut arp_of: Vec<Option<usize>> = vec![None; n];
    for (i, t) in targets.iter().enumerate() {
        if t.kind != ProbeKind::Arp {
            continue;
        }
        match t.addr {
            Some(IpAddr::V4(a)) => match arp_interface(a) {
                Some(ifc) => {
                    let pos = match arp_ifs.iter().position(|(x, _)| x.ifindex == ifc.ifindex) {
                        Some(p) => p,
                        None => {
                            let s = arp_socket(ifc.ifindex)?;
                            arp_ifs.push((ifc, s));
                            arp_ifs.len() - 1
                        }
                    };
                    arp_of[i] = Some(pos);
                }
                None => {
                    hopeless[i] = true;
                    notes[i] = Some("no up interface on its subnet".into());
                }
            },
            _ => {
                hopeless[i] = true;
                notes[i] = Some("no IPv4 address".into());
            }
        }
    }
    for (i, t) in targets.iter().enumerate() {
        if t.addr.is_none() {
            hopeless[i] = true;
            notes[i] = Some("name not resolved at start".into());
        }
    }

    let mut pending: Vec<PendingTcp> = Vec::new();
    let t0 = Instant::now();
    let step = window / attempts;
    let end = t0 + window;
    let mut next_attempt: u32 = 0;
    let mut buf = vec![0u8; 2048];

    loop {
        let now = Instant::now();
        if next_attempt < attempts && now >= t0 + step * next_attempt {
            let k = next_attempt;
            next_attempt += 1;
            for (i, t) in targets.iter().enumerate() {
                if rtt[i].is_some() || hopeless[i] {
                    continue;
                }
                let Some(addr) = t.addr else { continue };
                let seq = (i as u32 * attempts + k) as u16;
                let sent = match (t.kind, addr) {
                    (ProbeKind::Icmp, IpAddr::V4(a)) => icmp4
                        .as_ref()
                        .map(|s| {
                            s.send_to(
                                &echo_request(false, id, seq, &cookie),
                                &SocketAddrV4::new(a, 0).into(),
                            )
                        })
                        .unwrap_or_else(|| Err(io::Error::other("no ICMP socket"))),
                    (ProbeKind::Icmp, IpAddr::V6(a)) => icmp6
                        .as_ref()
                        .map(|s| {
                            s.send_to(
                                &echo_request(true, id, seq, &cookie),
                                &SocketAddrV6::new(a, 0, 0, 0).into(),
                            )
                        })
                        .unwrap_or_else(|| Err(io::Error::other("no ICMPv6 socket"))),
                    (ProbeKind::Arp, IpAddr::V4(a)) => match arp_of[i] {
                        Some(p) => {
                            let (ifc, s) = &arp_ifs[p];
                            s.send_to(
                                &arp_request(ifc.mac, ifc.ip, a),
                                &ll_addr(ifc.ifindex, true),
                            )
                        }
                        None => Err(io::Error::other("no interface")),
                    },
                    (ProbeKind::Arp, IpAddr::V6(_)) => Err(io::Error::other("ARP is IPv4 only")),
                    (ProbeKind::Tcp(port), a) => {
                        tcp_connect(SocketAddr::new(a, port)).map(|sock| match sock {
                            Some(sock) => {
                                pending.push(PendingTcp { target: i, sock });
                                0
                            }
                            None => {
                                rtt[i] = Some(t0.elapsed());
                                0
                            }
                        })
                    }
                };
                if let Err(e) = sent {
                    notes[i] = Some(format!("send failed: {e}"));
                }
            }
            continue;
        }
        let settled = (0..n).all(|i| rtt[i].is_some() || hopeless[i]);
        if settled || now >= end {
            break;
        }
        let wake = if next_attempt < attempts {
            (t0 + step * next_attempt).min(end)
        } else {
            end
        };

        // Wait for replies.
        let mut fds: Vec<libc::pollfd> = Vec::new();
        let pfd = |fd: i32, events: i16| libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        if let Some(s) = &icmp4 {
            fds.push(pfd(s.as_raw_fd(), libc::POLLIN));
        }
        if let Some(s) = &icmp6 {
            fds.push(pfd(s.as_raw_fd(), libc::POLLIN));
        }
        for (_, s) in &arp_ifs {
            fds.push(pfd(s.as_raw_fd(), libc::POLLIN));
        }
        let tcp_base = fds.len();
        for p in &pending {
            fds.push(pfd(p.sock.as_raw_fd(), libc::POLLOUT));
        }
        let wait = wake.saturating_duration_since(Instant::now());
        let ts = libc::timespec {
            tv_sec: wait.as_secs() as libc::time_t,
            tv_nsec: wait.subsec_nanos() as libc::c_long,
        };
        // SAFETY: fds is a valid array of pollfd of the given length.
        let r = unsafe {
            libc::ppoll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                &ts,
                std::ptr::null(),
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if r == 0 {
            continue;
        }
        let elapsed = t0.elapsed();
        let matched = |i: usize, rtt: &mut Vec<Option<Duration>>| {
            if rtt[i].is_none() {
                rtt[i] = Some(elapsed);
            }
        };
        // ICMP replies.
        for (sock, v6) in [(&icmp4, false), (&icmp6, true)] {
            let Some(sock) = sock else { continue };
            while let Ok((len, from)) = recv_from(sock, &mut buf) {
                let data = &buf[..len];
                let icmp = if v6 {
                    data
                } else {
                    let ihl = ((data.first().copied().unwrap_or(0) & 0x0f) as usize) * 4;
                    if ihl < 20 || data.len() < ihl {
                        continue;
                    }
                    &data[ihl..]
                };
                let Some((rid, seq, rcookie)) = parse_echo_reply(icmp, v6) else {
                    continue;
                };
                if rid != id || rcookie != cookie {
                    continue;
                }
                let i = (seq as u32 / attempts) as usize;
                let k = seq as u32 % attempts;
                let src = from.as_socket().map(|s| s.ip());
                if i < n
                    && k < next_attempt
                    && targets[i].kind == ProbeKind::Icmp
                    && targets[i].addr.is_some()
                    && src == targets[i].addr
                {
                    matched(i, &mut rtt);
                }
            }
        }
        // ARP replies.
        for (p, (ifc, sock)) in arp_ifs.iter().enumerate() {
            while let Ok(len) = (&*sock).read(&mut buf) {
                let Some((spa, tpa)) = parse_arp_reply(&buf[..len]) else {
                    continue;
                };
                if tpa != ifc.ip {
                    continue;
                }
                for i in 0..n {
                    if arp_of[i] == Some(p) && targets[i].addr == Some(IpAddr::V4(spa)) {
                        matched(i, &mut rtt);
                    }
                }
            }
        }
        // TCP connections that finished.
        let mut keep = Vec::with_capacity(pending.len());
        for (j, p) in pending.drain(..).enumerate() {
            if fds[tcp_base + j].revents == 0 {
                keep.push(p);
                continue;
            }
            match p.sock.take_error() {
                Ok(None) if p.sock.peer_addr().is_ok() => matched(p.target, &mut rtt),
                Ok(None) => notes[p.target] = Some("connection failed".into()),
                Ok(Some(e)) | Err(e) => notes[p.target] = Some(format!("connect: {e}")),
            }
        }
        pending = keep;
    }
    for (i, r) in rtt.iter().enumerate() {
        if r.is_none() && notes[i].is_none() {
            notes[i] = Some(match targets[i].kind {
                ProbeKind::Tcp(_) => "no connection".into(),
                _ => "no reply".into(),
            });
        }
    }
    Ok(Report {
        rtt,
        notes,
        elapsed: t0.elapsed(),
    })
}

/// Starts a non-blocking connect. `Ok(None)`: connected at once; `Ok(Some)`: in progress.
fn tcp_connect(to: SocketAddr) -> io::Result<Option<Socket>> {
    let s = Socket::new(Domain::for_address(to), Type::STREAM, Some(Protocol::TCP))?;
    s.set_nonblocking(true)?;
    match s.connect(&to.into()) {
        Ok(()) => Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(Some(s)),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icmp_checksum_of_a_request_verifies() {
        let p = echo_request(false, 0x1234, 7, &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(checksum(&p), 0, "a packet with its checksum sums to zero");
        assert_eq!(p[0], 8);
        let mut reply = p.clone();
        reply[0] = 0;
        assert_eq!(
            parse_echo_reply(&reply, false),
            Some((0x1234, 7, [1, 2, 3, 4, 5, 6, 7, 8]))
        );
        assert_eq!(parse_echo_reply(&p, false), None, "a request is no reply");
        let v6 = echo_request(true, 1, 2, &[0; 8]);
        assert_eq!(v6[0], 128);
        let mut r6 = v6.clone();
        r6[0] = 129;
        assert_eq!(parse_echo_reply(&r6, true), Some((1, 2, [0; 8])));
        assert_eq!(parse_echo_reply(&r6[..10], true), None);
    }

    #[test]
    fn arp_frames() {
        let req = arp_request(
            [2, 0, 0, 0, 0, 1],
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
        );
        assert_eq!(parse_arp_reply(&req), None, "a request is no reply");
        let mut rep = req;
        rep[7] = 2;
        rep[14..18].copy_from_slice(&[10, 0, 0, 2]);
        rep[24..28].copy_from_slice(&[10, 0, 0, 1]);
        assert_eq!(
            parse_arp_reply(&rep),
            Some((Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 1)))
        );
        assert_eq!(parse_arp_reply(&rep[..20]), None);
    }

    #[test]
    fn unresolved_targets_settle_at_once() {
        let r = probe_all(
            &[Target {
                kind: ProbeKind::Tcp(1),
                addr: None,
            }],
            3,
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(r.reachable(), 0);
        assert!(r.elapsed < Duration::from_secs(1));
        assert_eq!(r.notes[0].as_deref(), Some("name not resolved at start"));
    }
}
