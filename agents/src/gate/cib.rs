//! The gate's view of the cluster: this node's name (`OCF_RESKEY_CRM_meta_on_node`, which
//! Pacemaker passes to every action, else `crm_node -n`), the nodes of the CIB
//! (`cibadmin --query --scope nodes`) and their generation attributes
//! (`bulwark-<set>-gen`, `-consistent`, `-history`, the file-mirror's names), read and
//! written with `crm_attribute`. Pacemaker's tools honour `CIB_file`, so the same code
//! runs against a CIB file where no cluster runs (the tests do that).

use crate::mirror::gen::{GenState, Generation};
use ocf_metadata::log;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn tool(prog: &str, args: &[&str], timeout: Duration) -> Option<String> {
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                let out = child.wait_with_output().ok()?;
                return st
                    .success()
                    .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string());
            }
            Ok(None) if start.elapsed() < timeout => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

fn no_cluster() -> bool {
    std::env::var_os("BULWARK_NO_CLUSTER").is_some()
}

/// This node's cluster name, when there is a cluster (or a CIB file).
pub fn my_node() -> Option<String> {
    if let Ok(n) = std::env::var("OCF_RESKEY_CRM_meta_on_node") {
        if !n.trim().is_empty() {
            return Some(n.trim().to_string());
        }
    }
    if no_cluster() {
        return None;
    }
    tool("crm_node", &["-n"], Duration::from_secs(5)).filter(|n| !n.is_empty())
}

/// The node names in the CIB's `<nodes>` section.
pub fn nodes() -> Vec<String> {
    if no_cluster() {
        return Vec::new();
    }
    let Some(xml) = tool(
        "cibadmin",
        &["--query", "--scope", "nodes"],
        Duration::from_secs(10),
    ) else {
        return Vec::new();
    };
    // <node id="1" uname="alpha" .../>: the uname attributes, in order.
    let mut out = Vec::new();
    for part in xml.split("<node ").skip(1) {
        if let Some(i) = part.find("uname=\"") {
            let rest = &part[i + 7..];
            if let Some(j) = rest.find('"') {
                out.push(rest[..j].to_string());
            }
        }
    }
    out
}

fn attr(set: &str, what: &str) -> String {
    format!("bulwark-{set}-{what}")
}

/// A node's published generation and consistency.
pub fn read_generation(set: &str, node: &str) -> Option<(Generation, bool)> {
    if no_cluster() {
        return None;
    }
    let get = |what: &str| {
        tool(
            "crm_attribute",
            &[
                "--type",
                "nodes",
                "--node",
                node,
                "--name",
                &attr(set, what),
                "--query",
                "--quiet",
            ],
            Duration::from_secs(10),
        )
        .filter(|v| !v.is_empty())
    };
    let id = get("gen")?;
    let history = get("history")
        .map(|h| {
            h.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Some((
        Generation { id, history },
        get("consistent").as_deref() == Some("true"),
    ))
}

/// Publishes `state` as `node`'s permanent attributes.
pub fn publish(set: &str, node: &str, state: &GenState) {
    if no_cluster() {
        return;
    }
    let Some(cur) = &state.current else {
        return;
    };
    let history = cur
        .history
        .iter()
        .take(16)
        .cloned()
        .collect::<Vec<_>>()
        .join(",");
    let consistent = if state.consistent && state.receiving.is_none() {
        "true"
    } else {
        "false"
    };
    for (name, value) in [
        (attr(set, "gen"), cur.id.as_str()),
        (attr(set, "consistent"), consistent),
        (attr(set, "history"), history.as_str()),
    ] {
        let ok = tool(
            "crm_attribute",
            &[
                "--type",
                "nodes",
                "--node",
                node,
                "--name",
                &name,
                "--update",
                value,
                "--lifetime",
                "forever",
            ],
            Duration::from_secs(10),
        );
        if ok.is_none() {
            log::warn(&format!(
                "could not publish {name}={value} for node {node} in the CIB"
            ));
        }
    }
}
