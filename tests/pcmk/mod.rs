//! A real Pacemaker + Corosync cluster of one or more nodes inside namespaces the test
//! owns (the project's own minimal bring-up; no systemd needed).
//!
//! Each node runs in a network namespace from the harness plus its own mount, UTS and
//! PID namespaces: `ip netns exec NS unshare --mount --uts --pid --fork --mount-proc`
//! starts a bash that becomes the node's PID 1. It mounts a private /run and /dev/shm,
//! bind-mounts private copies of /etc/corosync, /var/lib/pacemaker, /var/log/pacemaker
//! (and friends) from a temporary directory, installs the bulwark agents under
//! /usr/lib/ocf/resource.d/bulwark (a tmpfs over resource.d that re-binds the stock
//! providers), then starts corosync and pacemakerd. Commands run in a node through
//! `nsenter -t <node init> -a`. Drop kills the node's PID 1, which ends every process
//! of the node; the harness then deletes the network namespaces.
#![allow(dead_code)]

use super::harness::Ns;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

/// Cluster tests are heavy on a 2-core machine: run them one at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// True when the Pacemaker and Corosync daemons are installed.
pub fn available() -> bool {
    [
        "/usr/sbin/pacemakerd",
        "/usr/sbin/corosync",
        "/usr/sbin/cibadmin",
    ]
    .iter()
    .all(|p| Path::new(p).exists())
}

const NODE_SCRIPT: &str = r#"
set -eu
hostname "$NODE"
mount -t tmpfs -o mode=0755,size=64m bw-run /run
mkdir -p /run/lock /run/crm /run/resource-agents /run/bulwark /run/.ra
chmod 1777 /run/lock; chown hacluster:haclient /run/crm; chmod 0750 /run/crm
# The stock resource.d, reachable again after a tmpfs covers it.
mount --bind /usr/lib/ocf/resource.d /run/.ra
mount -t tmpfs -o mode=0755,size=64m bw-ra /usr/lib/ocf/resource.d
for p in /run/.ra/*; do
    b=$(basename "$p")
    # Never re-bind the host's own bulwark provider (an installed package): the agents
    # under test go into a fresh directory of this node's tmpfs, not into the host.
    [ "$b" = bulwark ] && continue
    mkdir -p "/usr/lib/ocf/resource.d/$b"
    mount --bind "$p" "/usr/lib/ocf/resource.d/$b"
done
mkdir -p /usr/lib/ocf/resource.d/bulwark
for a in $AGENTS; do install -m 0755 "$a" /usr/lib/ocf/resource.d/bulwark/; done
mount -t tmpfs -o mode=1777,size=256m bw-shm /dev/shm
for d in /etc/corosync /var/lib/corosync /var/log/corosync /var/lib/pacemaker /var/log/pacemaker; do
    [ -d "$d" ] && mount --bind "$S$d" "$d"
done
mount --bind "$S/hosts" /etc/hosts
corosync -f >"$S/corosync.stdout" 2>&1 &
for i in $(seq 100); do corosync-cfgtool -s >/dev/null 2>&1 && break; sleep 0.1; done
# Executor debug: agents get HA_debug=1 and their stderr lands in the log.
PCMK_debug=pacemaker-execd PCMK_logfacility=none PCMK_logfile=/var/log/pacemaker/pacemaker.log pacemakerd >"$S/pacemakerd.stdout" 2>&1 &
# PID 1 of the node: reap orphans until killed.
while :; do sleep 3600 & wait $! || true; done
"#;

/// One cluster node.
pub struct Node {
    pub name: String,
    pub ns: Ns,
    /// The node's private state directory on the host.
    pub state: PathBuf,
    init: i32,
    child: Child,
}

impl Node {
    /// A command that runs inside the node (all its namespaces).
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.init.to_string(), "-a", "--", program]);
        c
    }

    /// A command that runs `program` directly inside the node: the child joins the
    /// node's network, mount, UTS and PID namespaces between fork and exec, so no
    /// nsenter process sits in between (for timings).
    pub fn direct(&self, program: &str) -> Command {
        use std::os::fd::{AsRawFd, OwnedFd};
        use std::os::unix::process::CommandExt;
        let open = |ns: &str| -> OwnedFd {
            std::fs::File::open(format!("/proc/{}/ns/{ns}", self.init))
                .unwrap_or_else(|e| panic!("namespace {ns} of {}: {e}", self.name))
                .into()
        };
        let fds: Vec<OwnedFd> = ["net", "mnt", "uts", "pid"].into_iter().map(open).collect();
        let mut c = Command::new(program);
        // SAFETY: only async-signal-safe calls (setns) between fork and exec; the fds
        // are owned by the closure and stay open until the Command is dropped.
        unsafe {
            c.pre_exec(move || {
                for fd in &fds {
                    if libc::setns(fd.as_raw_fd(), 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let mut c = self.cmd(args[0]);
        c.args(&args[1..]).stdin(Stdio::null());
        c.output()
            .unwrap_or_else(|e| panic!("cannot run {args:?} in {}: {e}", self.name))
    }

    /// Runs and panics on failure; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} on {} failed ({}): {}{}",
            self.name,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The node's Pacemaker log.
    pub fn pacemaker_log(&self) -> String {
        std::fs::read_to_string(self.state.join("var/log/pacemaker/pacemaker.log"))
            .unwrap_or_default()
    }

    /// The current value of a transient attribute on this node, per attrd.
    pub fn attr(&self, name: &str) -> Option<String> {
        let out = self.run(&["attrd_updater", "-Q", "-n", name]);
        let text = String::from_utf8_lossy(&out.stdout);
        let start = text.find("value=\"")? + 7;
        let len = text[start..].find('"')?;
        let v = &text[start..start + len];
        (!v.is_empty()).then(|| v.to_string())
    }

    /// The permanent standby attribute of `node` (`on`, `off`) or None.
    pub fn standby_of(&self, node: &str) -> Option<String> {
        let out = self.run(&[
            "crm_attribute",
            "--node",
            node,
            "--name",
            "standby",
            "--query",
            "--lifetime",
            "forever",
            "--quiet",
        ]);
        let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (out.status.success() && !v.is_empty()).then_some(v)
    }
}

/// A running cluster; torn down on drop.
pub struct Cluster {
    pub nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

fn host_ok(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Copies the directory skeleton of `from` (owners and modes, no files) to `to`.
fn skeleton(from: &str, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    host_ok(&["chown", "--reference", from, to.to_str().unwrap()]);
    host_ok(&["chmod", "--reference", from, to.to_str().unwrap()]);
    if let Ok(rd) = std::fs::read_dir(from) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                let name = e.file_name();
                skeleton(e.path().to_str().unwrap(), &to.join(name));
            }
        }
    }
}

fn corosync_conf(nodes: &[(&str, &str)]) -> String {
    let mut list = String::new();
    for (i, (name, ip)) in nodes.iter().enumerate() {
        list.push_str(&format!(
            "    node {{\n        ring0_addr: {ip}\n        name: {name}\n        nodeid: {}\n    }}\n",
            i + 1
        ));
    }
    let two = if nodes.len() == 2 {
        "    two_node: 1\n"
    } else {
        ""
    };
    format!(
        "totem {{\n    version: 2\n    cluster_name: bwtest\n    transport: knet\n    crypto_cipher: none\n    crypto_hash: none\n    token: 1000\n    interface {{\n        linknumber: 0\n        knet_transport: udp\n    }}\n}}\n\
nodelist {{\n{list}}}\n\
quorum {{\n    provider: corosync_votequorum\n{two}}}\n\
logging {{\n    to_stderr: no\n    to_syslog: no\n    to_logfile: yes\n    logfile: /var/log/corosync/corosync.log\n    timestamp: hires\n}}\n"
    )
}

impl Cluster {
    /// Starts a cluster with one node per `(netns, node name, ring IP)`, the agents
    /// `agents` (paths of binaries) installed as ocf:bulwark:<file name>, and waits
    /// until every node is online and the cluster is quorate.
    pub fn start(members: &[(&Ns, &str, &str)], agents: &[&str]) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("bw-pcmk-")
            .tempdir()
            .expect("tempdir");
        host_ok(&["chmod", "0755", dir.path().to_str().unwrap()]);
        let ring: Vec<(&str, &str)> = members.iter().map(|(_, n, ip)| (*n, *ip)).collect();
        let conf = corosync_conf(&ring);

        // The seed CIB: no 20 s dc-deadtime wait, no fencing (there is nothing to fence with).
        let seed = dir.path().join("seed-cib.xml");
        let out = Command::new("cibadmin").arg("--empty").output().unwrap();
        std::fs::write(&seed, &out.stdout).unwrap();
        for (n, v) in [("dc-deadtime", "2s"), ("stonith-enabled", "false")] {
            let st = Command::new("crm_attribute")
                .env("CIB_file", &seed)
                .args(["-t", "crm_config", "-n", n, "-v", v])
                .output()
                .unwrap();
            assert!(st.status.success(), "seeding {n}");
        }

        let agent_list = agents.join(" ");
        let mut nodes = Vec::new();
        for (ns, name, _) in members {
            let s = dir.path().join(name);
            skeleton("/var/lib/pacemaker", &s.join("var/lib/pacemaker"));
            skeleton("/var/log/pacemaker", &s.join("var/log/pacemaker"));
            for d in ["var/lib/corosync", "var/log/corosync", "etc/corosync"] {
                std::fs::create_dir_all(s.join(d)).unwrap();
            }
            host_ok(&[
                "cp",
                "-a",
                "/etc/corosync/.",
                s.join("etc/corosync").to_str().unwrap(),
            ]);
            std::fs::write(s.join("etc/corosync/corosync.conf"), &conf).unwrap();
            let mut hosts = String::from("127.0.0.1 localhost\n");
            for (_, n, ip) in members {
                hosts.push_str(&format!("{ip} {n}\n"));
            }
            std::fs::write(s.join("hosts"), hosts).unwrap();
            let cib = s.join("var/lib/pacemaker/cib/cib.xml");
            std::fs::copy(&seed, &cib).unwrap();
            host_ok(&["chown", "hacluster:haclient", cib.to_str().unwrap()]);
            host_ok(&["chmod", "0600", cib.to_str().unwrap()]);

            let child = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &ns.name,
                    "unshare",
                    "--mount",
                    "--uts",
                    "--pid",
                    "--fork",
                    "--mount-proc",
                    "--propagation",
                    "private",
                    "bash",
                    "-c",
                    NODE_SCRIPT,
                ])
                .env("NODE", name)
                .env("S", &s)
                .env("AGENTS", &agent_list)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(
                    std::fs::File::create(dir.path().join(format!("{name}.init.log")))
                        .map(Stdio::from)
                        .unwrap_or(Stdio::null()),
                )
                .spawn()
                .expect("spawning the node");
            let pid = child.id();
            let mut init = 0;
            for _ in 0..100 {
                let kids = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                    .unwrap_or_default();
                if let Some(k) = kids.split_whitespace().next().and_then(|k| k.parse().ok()) {
                    init = k;
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(init > 0, "node {name}: no init process");
            nodes.push(Node {
                name: name.to_string(),
                ns: (*ns).clone(),
                state: s,
                init,
                child,
            });
        }
        let cluster = Cluster { nodes, _dir: dir };
        cluster.wait_formed(Duration::from_secs(90));
        cluster
    }

    fn wait_formed(&self, limit: Duration) {
        let t = Instant::now();
        let want = self.nodes.len();
        loop {
            let out = self.nodes[0].run(&["crm_mon", "-1", "--output-as=xml"]);
            let xml = String::from_utf8_lossy(&out.stdout);
            let online = xml.matches("online=\"true\"").count();
            if xml.contains("with_quorum=\"true\"")
                && online >= want
                && xml.contains("current_dc present=\"true\"")
            {
                return;
            }
            if t.elapsed() > limit {
                let logs: Vec<String> = self.nodes.iter().map(|n| n.pacemaker_log()).collect();
                panic!(
                    "cluster did not form in {limit:?}: {xml}\n{}",
                    logs.join("\n----\n")
                        .lines()
                        .rev()
                        .take(40)
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    pub fn node(&self, name: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            // SAFETY: killing the PID-namespace init we started ends its whole node.
            unsafe { libc::kill(n.init, libc::SIGKILL) };
            let _ = n.child.kill();
            let _ = n.child.wait();
        }
    }
}

/// Polls `f` every 200 ms until it returns Some or `limit` passes.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let t = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if t.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
