//! The location rules in docs/ping-arbiter.md do what the doc says: the pcs and the
//! crmsh forms are applied, word for word, to a file CIB with two online nodes; then
//! Pacemaker's scheduler (crm_simulate) must prefer the node with the higher score and
//! ban a node whose score is 0 or missing. Offline: no cluster, no network.

use std::path::Path;
use std::process::Command;

const DOC: &str = include_str!("../docs/ping-arbiter.md");

/// The rule lines of the doc that start with `prefix` (continuation lines joined).
fn doc_lines(prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for l in DOC.lines() {
        if let Some(c) = cur.as_mut() {
            c.push(' ');
            c.push_str(l.trim().trim_end_matches('\\'));
            if !l.trim_end().ends_with('\\') {
                out.push(cur.take().unwrap());
            }
            continue;
        }
        if l.starts_with(prefix) {
            if l.trim_end().ends_with('\\') {
                cur = Some(l.trim_end().trim_end_matches('\\').to_string());
            } else {
                out.push(l.to_string());
            }
        }
    }
    out
}

/// Splits a doc command line into words (double quotes group, no shell involved).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn run(cib: &Path, args: &[String]) -> String {
    let out = Command::new(&args[0])
        .args(&args[1..])
        .env("CIB_file", cib)
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sv(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// A file CIB with nodes n1, n2 online, a Dummy `vip`, and pingd per node.
fn cib(dir: &Path, name: &str, pingd: [Option<&str>; 2]) -> std::path::PathBuf {
    let path = dir.join(name);
    let empty = Command::new("cibadmin").arg("--empty").output().unwrap();
    std::fs::write(&path, &empty.stdout).unwrap();
    run(
        &path,
        &sv(&[
            "crm_attribute",
            "-t",
            "crm_config",
            "-n",
            "stonith-enabled",
            "-v",
            "false",
        ]),
    );
    for i in 1..=2 {
        run(
            &path,
            &sv(&[
                "cibadmin",
                "-C",
                "-o",
                "nodes",
                "-X",
                &format!("<node id=\"{i}\" uname=\"n{i}\"/>"),
            ]),
        );
        let attr = match pingd[i - 1] {
            Some(v) => format!(
                "<transient_attributes id=\"{i}\"><instance_attributes id=\"status-{i}\">\
                 <nvpair id=\"status-{i}-pingd\" name=\"pingd\" value=\"{v}\"/>\
                 </instance_attributes></transient_attributes>"
            ),
            None => String::new(),
        };
        run(
            &path,
            &sv(&[
                "cibadmin",
                "-C",
                "-o",
                "status",
                "-X",
                &format!(
                    "<node_state id=\"{i}\" uname=\"n{i}\" in_ccm=\"true\" crmd=\"online\" \
                     join=\"member\" expected=\"member\">{attr}</node_state>"
                ),
            ]),
        );
    }
    run(
        &path,
        &sv(&[
            "cibadmin",
            "-C",
            "-o",
            "resources",
            "-X",
            "<primitive id=\"vip\" class=\"ocf\" provider=\"pacemaker\" type=\"Dummy\"/>",
        ]),
    );
    path
}

/// vip's allocation score per node, from crm_simulate.
fn scores(cib: &Path) -> (String, String) {
    let out = Command::new("crm_simulate")
        .args(["-x", cib.to_str().unwrap(), "-s", "-S"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let score = |node: &str| {
        text.lines()
            .rev()
            .find(|l| l.contains("vip allocation score on") && l.contains(&format!("on {node}:")))
            .and_then(|l| l.rsplit(':').next())
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| panic!("no score for {node}: {text}"))
    };
    (score("n1"), score("n2"))
}

fn check(tool: &str, rules: &[String], dir: &Path) {
    assert_eq!(rules.len(), 2, "{tool}: two rules in the doc: {rules:?}");
    let apply = |name: &str, pingd: [Option<&str>; 2]| {
        let c = cib(dir, &format!("{tool}-{name}.xml"), pingd);
        for r in rules {
            let mut w = words(r);
            if tool == "pcs" {
                w.insert(1, "-f".into());
                w.insert(2, c.to_str().unwrap().into());
            }
            run(&c, &w);
        }
        scores(&c)
    };
    let (a, b) = apply("prefer", [Some("2000"), Some("3000")]);
    assert_eq!(
        (a.as_str(), b.as_str()),
        ("2000", "3000"),
        "{tool}: score-attribute rule"
    );
    let (a, b) = apply("zero", [Some("3000"), Some("0")]);
    assert_eq!(
        (a.as_str(), b.as_str()),
        ("3000", "-INFINITY"),
        "{tool}: ban on 0"
    );
    let (a, b) = apply("missing", [Some("1000"), None]);
    assert_eq!(
        (a.as_str(), b.as_str()),
        ("1000", "-INFINITY"),
        "{tool}: ban when undefined"
    );
}

#[test]
fn pcs_rules_in_the_doc_give_the_arbitration() {
    if !Path::new("/usr/sbin/pcs").exists() || !Path::new("/usr/sbin/crm_simulate").exists() {
        eprintln!("skipped: pcs or crm_simulate not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    check("pcs", &doc_lines("pcs constraint location"), dir.path());
}

#[test]
fn crmsh_rules_in_the_doc_give_the_arbitration() {
    if !Path::new("/usr/sbin/crm").exists() || !Path::new("/usr/sbin/crm_simulate").exists() {
        eprintln!("skipped: crmsh or crm_simulate not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    check("crm", &doc_lines("crm configure location"), dir.path());
}
