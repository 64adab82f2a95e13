//! Pacemaker's own command-line API: `attrd_updater` publishes and reads node
//! attributes, `crm_attribute` sets standby, `crm_node` names this node and the members
//! of its partition. Arguments are passed as a vector, never through a shell.

use ocf_metadata::{OcfError, OcfResult};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Finds a Pacemaker tool on PATH, then in /usr/sbin and /usr/bin.
pub fn tool(name: &str) -> OcfResult<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into()])
        .map(|d| d.join(name))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
        .ok_or_else(|| {
            OcfError::not_installed(format!(
                "{name} not found (it is part of pacemaker-cli-utils / pacemaker-cli)"
            ))
        })
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(name: &str, args: &[&str]) -> OcfResult<Out> {
    run_env(name, args, &[])
}

/// Runs a tool without the variables in `strip`.
fn run_env(name: &str, args: &[&str], strip: &[&str]) -> OcfResult<Out> {
    let mut cmd = Command::new(tool(name)?);
    cmd.args(args).stdin(Stdio::null());
    for v in strip {
        cmd.env_remove(v);
    }
    let out = cmd
        .output()
        .map_err(|e| OcfError::io(format!("cannot run {name}"), e))?;
    Ok(Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr)
            .trim()
            .replace('\n', " "),
    })
}

fn failed(what: &str, o: &Out) -> OcfError {
    let hint = if o.code == 102 {
        " (not connected to the cluster: is Pacemaker running on this node?)"
    } else {
        ""
    };
    OcfError::generic(format!(
        "{what} failed with exit code {}{hint}{}{}",
        o.code,
        if o.stderr.is_empty() { "" } else { ": " },
        o.stderr
    ))
}

/// attrd_updater's `-d`: milliseconds, which every Pacemaker version parses.
fn delay_arg(dampen: Duration) -> String {
    format!("{}ms", dampen.as_millis())
}

/// Sets the attribute's value and its dampening (`-B`, so a changed `dampen` applies;
/// `-U`/`-v` lose the delay on Pacemaker 2.1.5).
pub fn publish(name: &str, score: i64, dampen: Duration) -> OcfResult<()> {
    let v = score.to_string();
    let d = delay_arg(dampen);
    let o = run("attrd_updater", &["-n", name, "-B", &v, "-d", &d])?;
    if o.code == 0 {
        Ok(())
    } else {
        Err(failed(
            &format!("attrd_updater -n {name} -B {v} -d {d}"),
            &o,
        ))
    }
}

/// Deletes the attribute (`-D`).
pub fn delete(name: &str, dampen: Duration) -> OcfResult<()> {
    let d = delay_arg(dampen);
    let o = run("attrd_updater", &["-D", "-n", name, "-d", &d])?;
    if o.code == 0 {
        Ok(())
    } else {
        Err(failed(&format!("attrd_updater -D -n {name}"), &o))
    }
}

/// Parses `attrd_updater -Q -A` lines: `name="pingd" host="n1" value="3"`.
pub fn parse_query(text: &str) -> Vec<(String, Option<i64>)> {
    fn field(line: &str, key: &str) -> Option<String> {
        let pat = format!("{key}=\"");
        let start = line.find(&pat)? + pat.len();
        let len = line[start..].find('"')?;
        Some(line[start..start + len].to_string())
    }
    text.lines()
        .filter_map(|l| {
            let host = field(l, "host")?;
            let value = field(l, "value").and_then(|v| v.trim().parse().ok());
            Some((host, value))
        })
        .collect()
}

/// Variables through which Pacemaker's tools pick a target node. Under the executor
/// they name this node, and `attrd_updater -Q -A` (2.1.5) then answers for this node
/// only; the query for all nodes runs without them.
const NODE_TARGET_VARS: &[&str] = &[
    "OCF_RESKEY_CRM_meta_on_node",
    "OCF_RESKEY_CRM_meta_on_node_uuid",
    "OCF_RESKEY_CRM_meta_container_attribute_target",
    "OCF_RESKEY_CRM_meta_physical_host",
];

/// Every node's current value of the attribute.
pub fn query_all(name: &str) -> OcfResult<Vec<(String, Option<i64>)>> {
    let o = run_env("attrd_updater", &["-Q", "-A", "-n", name], NODE_TARGET_VARS)?;
    if o.code != 0 {
        return Err(failed(&format!("attrd_updater -Q -A -n {name}"), &o));
    }
    Ok(parse_query(&o.stdout))
}

/// This node's name: Pacemaker passes it; else ask crm_node.
pub fn local_node() -> OcfResult<String> {
    if let Ok(n) = std::env::var("OCF_RESKEY_CRM_meta_on_node") {
        if !n.trim().is_empty() {
            return Ok(n.trim().to_string());
        }
    }
    let o = run("crm_node", &["-n"])?;
    let name = o.stdout.trim();
    if o.code != 0 || name.is_empty() {
        return Err(failed("crm_node -n", &o));
    }
    Ok(name.to_string())
}

/// The members of this node's partition (`crm_node -p`).
pub fn partition() -> OcfResult<Vec<String>> {
    let o = run("crm_node", &["-p"])?;
    if o.code != 0 {
        return Err(failed("crm_node -p", &o));
    }
    Ok(o.stdout.split_whitespace().map(str::to_string).collect())
}

/// Puts `node` into standby for good.
pub fn standby_forever(node: &str) -> OcfResult<()> {
    let args = [
        "--node",
        node,
        "--name",
        "standby",
        "--update",
        "on",
        "--lifetime",
        "forever",
    ];
    let o = run("crm_attribute", &args)?;
    if o.code == 0 {
        Ok(())
    } else {
        Err(failed(&format!("crm_attribute {}", args.join(" ")), &o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_lines() {
        let q = parse_query(
            "name=\"pingd\" host=\"n1\" value=\"3000\"\nname=\"pingd\" host=\"n2\" value=\"\"\ngarbage\n",
        );
        assert_eq!(
            q,
            vec![("n1".to_string(), Some(3000)), ("n2".to_string(), None)]
        );
        assert_eq!(delay_arg(Duration::from_secs(5)), "5000ms");
    }
}
