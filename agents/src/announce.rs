//! Announcing an address on the LAN, shared by every agent that moves or guards an
//! address (floating-ip, arp-refresh):
//! - gratuitous ARP for IPv4, as a request, a reply or both ([`ArpMode`]; some switches
//!   learn only from replies, resource-agents PR #977);
//! - unsolicited Neighbour Advertisements with the Override flag for IPv6, to ff02::1;
//! - **unicast refresh** ([`Refresh::Unicast`]): one ARP request (IPv6: one unicast NA)
//!   to every neighbour the kernel knows on the interface, with the address as sender.
//!   A Linux host updates its entry for the sender of any ARP request addressed to it
//!   (and most routers and appliances do the same), so this reaches hosts that ignore
//!   broadcast gratuitous ARP;
//! - optionally [`flush_local`]: the address's stale entries leave this host's own
//!   neighbour table.
//!
//! Frames are built by hand (a 28-byte ARP payload, a 72-byte IPv6 + NA packet) and sent
//! through an AF_PACKET/SOCK_DGRAM socket, so the kernel only adds the Ethernet header.
//! That keeps one sending path for broadcast, multicast and unicast destinations and
//! needs no dependency. (pnet was considered for the unicast refresh and not taken: its
//! datalink channel opens an AF_PACKET/SOCK_RAW socket bound to one interface that also
//! receives every frame on it, and its packet builders cost more code than the two
//! fixed layouts here; the frames and their checksum are unit-tested below.)
//!
//! Timing. [`Burst::start`] sends the first round synchronously (it is on the wire when
//! the call returns) and hands the remaining rounds, paced by the interval, to a
//! detached child created with `fork()` and no `exec`: the agent returns at once and
//! Pacemaker is not kept waiting. The child has its stdio on /dev/null (so nobody
//! waiting for the agent's output waits for it), leaves the session, and before each
//! round asks whether it should go on (e.g. whether the address is still ours): after
//! `stop` removes the address (or it moved), the child sends nothing more and exits. A
//! thread could not do this: it dies with the agent's process. The child also takes over
//! the packet socket, whose close waits for an RCU grace period (several ms) that the
//! agent need not pay.

use crate::netlink::{self, Neighbour, Netlink, NlResult};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];
/// The Ethernet address of ff02::1 (all nodes).
pub const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

pub const ARP_REQUEST: u16 = 1;
pub const ARP_REPLY: u16 = 2;

/// Neighbour Advertisement flags.
pub const NA_ROUTER: u32 = 0x8000_0000;
pub const NA_SOLICITED: u32 = 0x4000_0000;
pub const NA_OVERRIDE: u32 = 0x2000_0000;

/// One link-layer frame: the payload after the Ethernet header, its EtherType and the
/// destination MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub ethertype: u16,
    pub dest: [u8; 6],
    pub payload: Vec<u8>,
}

/// An ARP packet for Ethernet/IPv4 (28 bytes).
pub fn arp_packet(op: u16, sha: [u8; 6], spa: Ipv4Addr, tha: [u8; 6], tpa: Ipv4Addr) -> Vec<u8> {
    let mut p = Vec::with_capacity(28);
    p.extend_from_slice(&1u16.to_be_bytes()); // htype Ethernet
    p.extend_from_slice(&0x0800u16.to_be_bytes()); // ptype IPv4
    p.push(6);
    p.push(4);
    p.extend_from_slice(&op.to_be_bytes());
    p.extend_from_slice(&sha);
    p.extend_from_slice(&spa.octets());
    p.extend_from_slice(&tha);
    p.extend_from_slice(&tpa.octets());
    p
}

/// A gratuitous ARP for `ip` owned by `mac`, broadcast.
/// - request: sender = target = ip, target MAC zero (RFC 5227 announcement, send_arp's form);
/// - reply: the same with target MAC = sender MAC, which Linux requires to treat a reply
///   as gratuitous (arping -A form, for switches that only learn from replies).
pub fn gratuitous_arp(op: u16, mac: [u8; 6], ip: Ipv4Addr) -> Frame {
    let tha = if op == ARP_REPLY { mac } else { [0; 6] };
    Frame {
        ethertype: ETH_P_ARP,
        dest: BROADCAST_MAC,
        payload: arp_packet(op, mac, ip, tha, ip),
    }
}

/// The Internet checksum of an ICMPv6 message with its pseudo-header.
pub fn icmpv6_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, msg: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            let w = if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], 0])
            };
            sum += w as u32;
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(msg.len() as u32).to_be_bytes());
    add(&[0, 0, 0, 58]);
    add(msg);
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv6 packet carrying a Neighbour Advertisement for `target` with a target
/// link-layer address option, hop limit 255 (RFC 4861 7.1.2), from `src` to `dst`.
pub fn neighbour_advert(
    mac: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    target: Ipv6Addr,
    flags: u32,
) -> Vec<u8> {
    let mut icmp = Vec::with_capacity(32);
    icmp.push(136); // Neighbor Advertisement
    icmp.push(0);
    icmp.extend_from_slice(&[0, 0]); // checksum
    icmp.extend_from_slice(&flags.to_be_bytes());
    icmp.extend_from_slice(&target.octets());
    icmp.push(2); // option: target link-layer address
    icmp.push(1); // length in units of 8 bytes
    icmp.extend_from_slice(&mac);
    let c = icmpv6_checksum(&src, &dst, &icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());

    let mut p = Vec::with_capacity(40 + icmp.len());
    p.extend_from_slice(&[0x60, 0, 0, 0]);
    p.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    p.push(58); // next header ICMPv6
    p.push(255); // hop limit
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&icmp);
    p
}

/// An unsolicited NA for `ip` to all nodes (ff02::1) with only the Override flag, as
/// send_ua sends it.
pub fn unsolicited_na(mac: [u8; 6], ip: Ipv6Addr) -> Frame {
    Frame {
        ethertype: ETH_P_IPV6,
        dest: ALL_NODES_MAC,
        payload: neighbour_advert(mac, ip, ALL_NODES, ip, NA_OVERRIDE),
    }
}

/// Which gratuitous ARP packets to send (`arp_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpMode {
    Request,
    Reply,
    Both,
}

impl ArpMode {
    pub const WORDS: &'static [&'static str] = &["request", "reply", "both"];

    pub fn parse(s: &str) -> Option<ArpMode> {
        match s.trim() {
            "request" => Some(ArpMode::Request),
            "reply" => Some(ArpMode::Reply),
            "both" => Some(ArpMode::Both),
            _ => None,
        }
    }

    fn ops(self) -> &'static [u16] {
        match self {
            ArpMode::Request => &[ARP_REQUEST],
            ArpMode::Reply => &[ARP_REPLY],
            ArpMode::Both => &[ARP_REQUEST, ARP_REPLY],
        }
    }
}

/// How the LAN is told (`refresh`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// Broadcast gratuitous ARP / multicast unsolicited NA.
    Gratuitous,
    /// A directed ARP request / NA to every known neighbour.
    Unicast,
    Both,
}

impl Refresh {
    pub const WORDS: &'static [&'static str] = &["gratuitous", "unicast", "both"];

    pub fn parse(s: &str) -> Option<Refresh> {
        match s.trim() {
            "gratuitous" => Some(Refresh::Gratuitous),
            "unicast" => Some(Refresh::Unicast),
            "both" => Some(Refresh::Both),
            _ => None,
        }
    }
    pub fn gratuitous(self) -> bool {
        self != Refresh::Unicast
    }
    pub fn unicast(self) -> bool {
        self != Refresh::Gratuitous
    }
}

/// The gratuitous announcement of `ip` owned by `mac`: one ARP per `mode` (IPv4) or one
/// unsolicited NA with Override (IPv6; `mode` does not apply).
pub fn gratuitous(mac: [u8; 6], ip: IpAddr, mode: ArpMode) -> Vec<Frame> {
    match ip {
        IpAddr::V4(a) => mode
            .ops()
            .iter()
            .map(|&op| gratuitous_arp(op, mac, a))
            .collect(),
        IpAddr::V6(a) => vec![unsolicited_na(mac, a)],
    }
}

/// A unicast ARP request from `ip`/`mac` to the neighbour `peer`/`peer_mac`: "who has
/// peer? tell ip". The receiver takes the sender's address into its table.
pub fn unicast_arp(mac: [u8; 6], ip: Ipv4Addr, peer_mac: [u8; 6], peer: Ipv4Addr) -> Frame {
    Frame {
        ethertype: ETH_P_ARP,
        dest: peer_mac,
        payload: arp_packet(ARP_REQUEST, mac, ip, [0; 6], peer),
    }
}

/// A unicast unsolicited NA for `ip` with the Override flag, to `peer`/`peer_mac`.
pub fn unicast_na(mac: [u8; 6], ip: Ipv6Addr, peer_mac: [u8; 6], peer: Ipv6Addr) -> Frame {
    Frame {
        ethertype: ETH_P_IPV6,
        dest: peer_mac,
        payload: neighbour_advert(mac, ip, peer, ip, NA_OVERRIDE),
    }
}

/// NUD states (linux/neighbour.h).
pub const NUD_INCOMPLETE: u16 = 0x01;
pub const NUD_FAILED: u16 = 0x20;
pub const NUD_NOARP: u16 = 0x40;

/// True when `n` is a neighbour worth a directed refresh for `ip`: same family, a
/// unicast MAC known, not unresolved/failed/NOARP, and not `ip` itself.
pub fn refreshable(n: &Neighbour, ip: &IpAddr) -> bool {
    let Some(m) = n.mac else { return false };
    if m[0] & 1 != 0 || m == [0; 6] {
        return false;
    }
    if n.state & (NUD_INCOMPLETE | NUD_FAILED | NUD_NOARP) != 0 {
        return false;
    }
    if netlink::family(&n.ip) != netlink::family(ip) || n.ip == *ip {
        return false;
    }
    match n.ip {
        IpAddr::V4(a) => !(a.is_multicast() || a.is_broadcast() || a.is_unspecified()),
        IpAddr::V6(a) => !(a.is_multicast() || a.is_unspecified()),
    }
}

/// The directed refresh of `ip` owned by `mac`: one frame per refreshable neighbour in
/// `neighbours` (deduplicated by address).
pub fn unicast_refresh(mac: [u8; 6], ip: IpAddr, neighbours: &[Neighbour]) -> Vec<Frame> {
    let mut seen: Vec<IpAddr> = Vec::new();
    let mut out = Vec::new();
    for n in neighbours.iter().filter(|n| refreshable(n, &ip)) {
        if seen.contains(&n.ip) {
            continue;
        }
        seen.push(n.ip);
        let peer_mac = n.mac.unwrap_or([0; 6]);
        match (ip, n.ip) {
            (IpAddr::V4(a), IpAddr::V4(p)) => out.push(unicast_arp(mac, a, peer_mac, p)),
            (IpAddr::V6(a), IpAddr::V6(p)) => out.push(unicast_na(mac, a, peer_mac, p)),
            _ => {}
        }
    }
    out
}

/// What to announce on one interface.
#[derive(Debug, Clone)]
pub struct Announcement {
    pub ifindex: u32,
    /// The source MAC (the interface's).
    pub mac: [u8; 6],
    /// Interfaces whose neighbours are refreshed: the interface itself and, for a
    /// macvlan, its parent (the neighbours the host knows on that wire).
    pub neighbour_links: Vec<u32>,
    pub ips: Vec<IpAddr>,
    pub mode: ArpMode,
    pub refresh: Refresh,
}

impl Announcement {
    /// Every frame of one round; for the unicast refresh, one neighbour dump per family.
    pub fn frames(&self, nl: &mut Netlink) -> NlResult<Vec<Frame>> {
        let mut out = Vec::new();
        if self.refresh.gratuitous() {
            for ip in &self.ips {
                out.extend(gratuitous(self.mac, *ip, self.mode));
            }
        }
        if self.refresh.unicast() {
            let mut dumped: Vec<(u8, Vec<Neighbour>)> = Vec::new();
            for ip in &self.ips {
                let fam = netlink::family(ip);
                if !dumped.iter().any(|(f, _)| *f == fam) {
                    let all = nl.neighbours(fam, None)?;
                    let mine = all
                        .into_iter()
                        .filter(|n| self.neighbour_links.contains(&n.index))
                        .collect();
                    dumped.push((fam, mine));
                }
                let known = &dumped.iter().find(|(f, _)| *f == fam).unwrap().1;
                out.extend(unicast_refresh(self.mac, *ip, known));
            }
        }
        Ok(out)
    }
}

/// Deletes the neighbour entries for `ips` from this host's own tables (on `index`
/// only when given; all interfaces otherwise). Returns how many went. Entries that
/// vanish meanwhile are not an error.
pub fn flush_local(nl: &mut Netlink, ips: &[IpAddr], index: Option<u32>) -> NlResult<usize> {
    let mut n = 0;
    for fam in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
        if !ips.iter().any(|ip| netlink::family(ip) == fam) {
            continue;
        }
        for e in nl.neighbours(fam, index)? {
            if ips.contains(&e.ip) {
                match nl.del_neighbour(e.index, &e.ip) {
                    Ok(()) => n += 1,
                    Err(err) if err.errno == libc::ENOENT => {}
                    Err(err) => return Err(err),
                }
            }
        }
    }
    Ok(n)
}

/// An AF_PACKET socket sending frames out of one interface.
pub struct Sender {
    fd: OwnedFd,
    ifindex: u32,
}

impl Sender {
    pub fn open(ifindex: u32) -> io::Result<Sender> {
        // Protocol 0: this socket only sends, so it never queues received frames.
        // SAFETY: plain socket(2); the fd is owned right after.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fresh descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Sender { fd, ifindex })
    }

    /// Sends one frame; when this returns the frame has been handed to the device.
    pub fn send(&self, f: &Frame) -> io::Result<()> {
        // SAFETY: sockaddr_ll is plain data.
        let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sa.sll_family = libc::AF_PACKET as u16;
        sa.sll_protocol = f.ethertype.to_be();
        sa.sll_ifindex = self.ifindex as i32;
        sa.sll_halen = 6;
        sa.sll_addr[..6].copy_from_slice(&f.dest);
        // SAFETY: valid fd, buffer and address.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                f.payload.as_ptr() as *const libc::c_void,
                f.payload.len(),
                0,
                &sa as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

/// A paced series of announcement rounds: `rounds` times, every `interval`, send all
/// `frames`.
#[derive(Debug, Clone)]
pub struct Burst {
    pub ifindex: u32,
    pub frames: Vec<Frame>,
    pub rounds: u32,
    pub interval: Duration,
}

/// What happened to the rounds after the first.
#[derive(Debug, PartialEq, Eq)]
pub enum Rest {
    /// Nothing left to send.
    None,
    /// A detached sender with this PID sends them.
    Background(i32),
}

impl Burst {
    fn send_round(&self, s: &Sender) -> io::Result<()> {
        for f in &self.frames {
            s.send(f)?;
        }
        Ok(())
    }

    /// Sends every round in the calling process (blocks for `(rounds-1) * interval`).
    /// `still_ours` is asked before each later round; `false` ends the burst.
    pub fn run_blocking(&self, still_ours: impl FnMut() -> bool) -> io::Result<u32> {
        let s = Sender::open(self.ifindex)?;
        self.rounds_from(&s, 0, Instant::now(), still_ours)
    }

    /// Sends rounds `first..rounds`, round `i` due at `t0 + i * interval`.
    fn rounds_from(
        &self,
        s: &Sender,
        first: u32,
        t0: Instant,
        mut still_ours: impl FnMut() -> bool,
    ) -> io::Result<u32> {
        let mut sent = 0;
        for i in first..self.rounds {
            if i > 0 {
                let due = t0 + self.interval * i;
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                if !still_ours() {
                    break;
                }
            }
            self.send_round(s)?;
            sent += 1;
        }
        Ok(sent)
    }

    /// Sends the first round now and leaves the rest to a detached background sender
    /// (see the module docs). An error means not even the first round went out.
    ///
    /// The background sender also inherits the packet socket and holds its last
    /// reference: closing an AF_PACKET socket waits for an RCU grace period
    /// (packet_release calls synchronize_net), which costs several milliseconds that
    /// the agent's caller need not wait for. So the child is forked even for one round.
    pub fn start(&self, still_ours: impl FnMut() -> bool) -> io::Result<Rest> {
        let s = Sender::open(self.ifindex)?;
        let t0 = Instant::now();
        self.send_round(&s)?;
        let this = self.clone();
        let Sender { fd, ifindex } = s;
        let child = detach(Some(fd), move |fd| {
            if let Some(fd) = fd {
                let s = Sender { fd, ifindex };
                let _ = this.rounds_from(&s, 1, t0, still_ours);
                // Give the agent time to drop its copy, so the release happens here.
                let hold = Duration::from_millis(50);
                if t0.elapsed() < hold {
                    std::thread::sleep(hold - t0.elapsed());
                }
            }
        });
        match child {
            Ok(pid) => Ok(Rest::Background(pid)),
            // The first round is out; the rest is lost, which is not worth failing for.
            Err(_) => Ok(Rest::None),
        }
    }
}

/// Runs `work` in a detached child process (fork, no exec) and returns its PID.
/// The child leaves the session, puts /dev/null on stdin/stdout/stderr, closes every
/// other inherited descriptor except `keep` (handed to `work` as fd 3), and always ends
/// with `_exit`, even if `work` panics. In the parent, `keep` is closed (the child's copy
/// stays open). Call only from a single-threaded process (the agents are).
pub fn detach(keep: Option<OwnedFd>, work: impl FnOnce(Option<OwnedFd>)) -> io::Result<i32> {
    // Opened before fork so the child needs no allocation to find it.
    let devnull = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    // SAFETY: fork in a single-threaded process; the child only runs `work` and _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid > 0 {
        return Ok(pid);
    }
    // Child. Park `keep` above the standard descriptors first (it may be one of them if
    // the agent was started with one closed), then rebuild 0-2 and move it to 3.
    let kept = keep.map(|k| {
        let raw = k.as_raw_fd();
        std::mem::forget(k); // closed below by close_range, not by Drop
        raw
    });
    // SAFETY: plain syscalls on descriptors this process owns; fd 3 is then owned once.
    let kept = unsafe {
        let parked = kept.map(|raw| libc::fcntl(raw, libc::F_DUPFD, 10));
        libc::setsid();
        let null = devnull.as_raw_fd();
        libc::dup2(null, 0);
        libc::dup2(null, 1);
        libc::dup2(null, 2);
        let kept = match parked {
            Some(p) if p >= 0 && libc::dup2(p, 3) == 3 => Some(OwnedFd::from_raw_fd(3)),
            _ => None,
        };
        let from = if kept.is_some() { 4u32 } else { 3u32 };
        libc::syscall(libc::SYS_close_range, from, u32::MAX, 0u32);
        kept
    };
    std::mem::forget(devnull); // already closed by close_range (or it is 0-2)
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(kept)));
    // SAFETY: ends the child without running the parent's atexit handlers or destructors.
    unsafe { libc::_exit(if r.is_ok() { 0 } else { 1 }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0xd5, 0, 0, 0, 0x11];

    #[test]
    fn gratuitous_request_and_reply() {
        let ip = Ipv4Addr::new(10, 213, 0, 50);
        let f = gratuitous_arp(ARP_REQUEST, MAC, ip);
        assert_eq!(f.ethertype, ETH_P_ARP);
        assert_eq!(f.dest, BROADCAST_MAC);
        let p = &f.payload;
        assert_eq!(p.len(), 28);
        assert_eq!(&p[0..8], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(&p[8..14], &MAC);
        assert_eq!(&p[14..18], &ip.octets());
        assert_eq!(&p[18..24], &[0; 6]);
        assert_eq!(&p[24..28], &ip.octets());
        let r = gratuitous_arp(ARP_REPLY, MAC, ip);
        assert_eq!(&r.payload[6..8], &[0, 2]);
        assert_eq!(&r.payload[18..24], &MAC);
    }

    #[test]
    fn unsolicited_na_layout_and_checksum() {
        let ip: Ipv6Addr = "fd00:213::50".parse().unwrap();
        let f = unsolicited_na(MAC, ip);
        assert_eq!(f.dest, ALL_NODES_MAC);
        let p = &f.payload;
        assert_eq!(p.len(), 72);
        assert_eq!(p[0] >> 4, 6);
        assert_eq!(u16::from_be_bytes([p[4], p[5]]), 32);
        assert_eq!(p[6], 58);
        assert_eq!(p[7], 255);
        assert_eq!(&p[8..24], &ip.octets());
        assert_eq!(&p[24..40], &ALL_NODES.octets());
        let icmp = &p[40..];
        assert_eq!(icmp[0], 136);
        assert_eq!(
            u32::from_be_bytes([icmp[4], icmp[5], icmp[6], icmp[7]]),
            NA_OVERRIDE
        );
        assert_eq!(&icmp[8..24], &ip.octets());
        assert_eq!(&icmp[24..26], &[2, 1]);
        assert_eq!(&icmp[26..32], &MAC);
        // A correct checksum sums (with the pseudo-header) to zero.
        assert_eq!(icmpv6_checksum(&ip, &ALL_NODES, icmp), 0);
    }

    #[test]
    fn arp_modes() {
        let ip: IpAddr = "10.213.0.50".parse().unwrap();
        let ops = |m| -> Vec<u8> {
            gratuitous(MAC, ip, m)
                .iter()
                .map(|f| f.payload[7])
                .collect()
        };
        assert_eq!(ops(ArpMode::Request), vec![1]);
        assert_eq!(ops(ArpMode::Reply), vec![2]);
        assert_eq!(ops(ArpMode::Both), vec![1, 2]);
        let v6: IpAddr = "fd00:213::50".parse().unwrap();
        assert_eq!(gratuitous(MAC, v6, ArpMode::Both).len(), 1);
        for w in ArpMode::WORDS {
            assert!(ArpMode::parse(w).is_some());
        }
        for w in Refresh::WORDS {
            assert!(Refresh::parse(w).is_some());
        }
        assert_eq!(ArpMode::parse("gratuitous"), None);
        assert!(Refresh::Both.gratuitous() && Refresh::Both.unicast());
        assert!(!Refresh::Unicast.gratuitous() && !Refresh::Gratuitous.unicast());
    }

    fn neigh(ip: &str, mac: Option<[u8; 6]>, state: u16) -> Neighbour {
        Neighbour {
            index: 2,
            ip: ip.parse().unwrap(),
            mac,
            state,
        }
    }

    #[test]
    fn unicast_refresh_targets_known_neighbours_only() {
        const PEER: [u8; 6] = [0x02, 0xd5, 0, 0, 0, 0x64];
        const REACHABLE: u16 = 0x02;
        const STALE: u16 = 0x04;
        let vip: IpAddr = "10.213.0.50".parse().unwrap();
        let table = [
            neigh("10.213.0.100", Some(PEER), REACHABLE),
            neigh("10.213.0.100", Some(PEER), STALE), // duplicate address
            neigh("10.213.0.101", None, NUD_INCOMPLETE),
            neigh("10.213.0.102", Some(PEER), NUD_FAILED),
            neigh("10.213.0.50", Some(PEER), STALE), // the VIP itself
            neigh("10.213.0.103", Some([0x01, 0, 0x5e, 0, 0, 1]), STALE), // multicast MAC
            neigh("fd00:213::100", Some(PEER), STALE), // other family
            neigh("10.213.0.104", Some(PEER), STALE),
        ];
        let f = unicast_refresh(MAC, vip, &table);
        assert_eq!(f.len(), 2);
        let p = &f[0].payload;
        assert_eq!(f[0].dest, PEER);
        assert_eq!(f[0].ethertype, ETH_P_ARP);
        assert_eq!(&p[6..8], &[0, 1], "a request");
        assert_eq!(&p[8..14], &MAC, "sender MAC is ours");
        assert_eq!(&p[14..18], &[10, 213, 0, 50], "sender IP is the VIP");
        assert_eq!(&p[18..24], &[0; 6]);
        assert_eq!(&p[24..28], &[10, 213, 0, 100], "target is the neighbour");
        assert_eq!(&f[1].payload[24..28], &[10, 213, 0, 104]);

        let v6: IpAddr = "fd00:213::50".parse().unwrap();
        let f = unicast_refresh(MAC, v6, &table);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].dest, PEER);
        let p = &f[0].payload;
        let peer: Ipv6Addr = "fd00:213::100".parse().unwrap();
        assert_eq!(
            &p[8..24],
            &"fd00:213::50".parse::<Ipv6Addr>().unwrap().octets()
        );
        assert_eq!(
            &p[24..40],
            &peer.octets(),
            "IPv6 destination is the neighbour"
        );
        let icmp = &p[40..];
        assert_eq!(icmp[0], 136);
        assert_eq!(
            u32::from_be_bytes([icmp[4], icmp[5], icmp[6], icmp[7]]),
            NA_OVERRIDE,
            "unsolicited, Override"
        );
        assert_eq!(
            icmpv6_checksum(&"fd00:213::50".parse().unwrap(), &peer, icmp),
            0
        );
    }

    #[test]
    fn checksum_known_value() {
        // RFC 1071 style check: the complement of the folded sum.
        let a = Ipv6Addr::UNSPECIFIED;
        let s = icmpv6_checksum(&a, &a, &[0x00, 0x01]);
        // pseudo: len 2 + next header 58 = 60; data 1 => 61 => !61
        assert_eq!(s, !61u16);
    }
}
