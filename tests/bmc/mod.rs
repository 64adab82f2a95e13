//! Test peers for fence_bulwark_ipmi: OpenIPMI's ipmi_sim (suite 3, with a chassis hook
//! that records power changes) and the in-repo suite-17 BMC, plus helpers to run the
//! agent. Every test starts and stops its own BMC, by PID, on 127.0.0.1.
#![allow(dead_code)]

pub mod bmc17;

use bulwark_stonith::ipmi::packet as p;
use std::io::Write;
use std::net::UdpSocket;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const LAN_CONF: &str = include_str!("lan.conf.in");
const EMU: &str = include_str!("lab.emu");
const HOOK: &str = include_str!("chassis-hook");

pub const AGENT: &str = env!("CARGO_BIN_EXE_fence_bulwark_ipmi");

/// A free UDP port on 127.0.0.1 (the kernel's choice, released for the peer).
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// True when something answers Get Channel Authentication Capabilities on `port`.
pub fn answers(port: u16) -> bool {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let msg = p::build_request(p::NETFN_APP, p::CMD_GET_CHANNEL_AUTH_CAPS, 0, &[0x8e, 0x04]);
    if s.send_to(&p::build_v15(&msg), ("127.0.0.1", port)).is_err() {
        return false;
    }
    let mut b = [0u8; 256];
    s.recv_from(&mut b).is_ok()
}

/// One ipmi_sim on its own port and directory.
pub struct IpmiSim {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl IpmiSim {
    /// Starts ipmi_sim, powered on, and waits until it answers. `None` (with a printed
    /// reason) when ipmi_sim is not installed.
    pub fn start() -> Option<IpmiSim> {
        IpmiSim::start_with_password("fencepass")
    }

    /// Like [`start`](Self::start) with another password for user `admin`.
    pub fn start_with_password(admin_password: &str) -> Option<IpmiSim> {
        if Command::new("ipmi_sim").arg("--version").output().is_err() {
            eprintln!("SKIP: ipmi_sim is not installed (apt-get install openipmi)");
            return None;
        }
        for _attempt in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let run = dir.path();
            let port = free_udp_port();
            std::fs::create_dir_all(run.join("state")).unwrap();
            let hook = run.join("chassis-hook");
            std::fs::write(&hook, HOOK).unwrap();
            std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
            let conf = LAN_CONF
                .replace("@PORT@", &port.to_string())
                .replace("@RUN@", run.to_str().unwrap())
                .replace("@ADMINPW@", admin_password);
            std::fs::write(run.join("lan.conf"), conf).unwrap();
            std::fs::write(run.join("lab.emu"), EMU).unwrap();
            std::fs::write(run.join("power"), "1\n").unwrap();
            let log = std::fs::File::create(run.join("ipmi_sim.log")).unwrap();
            let child = Command::new("ipmi_sim")
                .arg("-c")
                .arg(run.join("lan.conf"))
                .arg("-f")
                .arg(run.join("lab.emu"))
                .arg("-s")
                .arg(run.join("state"))
                .arg("-n")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .process_group(0)
                .spawn()
                .expect("spawn ipmi_sim");
            let mut sim = IpmiSim { port, dir, child };
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(5) {
                if answers(port) {
                    return Some(sim);
                }
                if let Ok(Some(_)) = sim.child.try_wait() {
                    break; // e.g. the port was taken meanwhile: try another
                }
            }
            eprintln!(
                "ipmi_sim on port {port} did not come up: {}",
                std::fs::read_to_string(sim.dir.path().join("ipmi_sim.log")).unwrap_or_default()
            );
        }
        panic!("ipmi_sim did not start");
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The power changes recorded by the chassis hook, in order.
    pub fn events(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("events.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
            .collect()
    }

    pub fn power_on(&self) -> bool {
        std::fs::read_to_string(self.path("power"))
            .unwrap_or_default()
            .trim()
            == "1"
    }

    pub fn set_power(&self, on: bool) {
        std::fs::write(self.path("power"), if on { "1\n" } else { "0\n" }).unwrap();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for IpmiSim {
    fn drop(&mut self) {
        // Only the process we started, by PID.
        let pid = self.child.id() as i32;
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(2) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A finished agent run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    fn from(o: Output, elapsed: Duration) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            elapsed,
        }
    }
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {} after {:?}\nstdout: {}\nstderr: {}",
            self.code, self.elapsed, self.stdout, self.stderr
        )
    }
}

/// Runs the agent the way pacemaker-fenced does: no argv, parameters on stdin.
pub fn stdin_run(lines: &str) -> Run {
    let t = Instant::now();
    let mut c = Command::new(AGENT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(lines.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    Run::from(o, t.elapsed())
}

/// Runs the agent with command-line options.
pub fn cli_run(args: &[&str]) -> Run {
    let t = Instant::now();
    let o = Command::new(AGENT)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run::from(o, t.elapsed())
}

/// stdin for an admin session against `port` plus extra lines.
pub fn stdin_for(port: u16, extra: &str) -> String {
    format!(
        "ip=127.0.0.1\nipport={port}\nusername=admin\npassword=fencepass\nnodename=node1\n{extra}"
    )
}

pub fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

pub fn which(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(cmd))
            .find(|p| Path::new(p).is_file())
    })
}
