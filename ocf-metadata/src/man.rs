//! Man pages rendered from the same declarations as the meta-data.

use crate::spec::{AgentSpec, PROVIDER};
use std::fmt::Write;

/// Escapes text for troff: backslashes, and a leading '.' or '\'' that would start a request.
pub fn roff(s: &str) -> String {
    let mut out = String::new();
    for (i, line) in s.replace('\\', "\\e").lines().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let line = line.trim();
        if line.starts_with('.') || line.starts_with('\'') {
            out.push_str("\\&");
        }
        out.push_str(&line.replace('-', "\\-"));
    }
    out
}

/// `ocf_bulwark_<agent>(7)`.
pub fn resource_agent(spec: &AgentSpec) -> String {
    let mut m = String::new();
    let title = format!(
        "OCF_{}_{}",
        PROVIDER.to_uppercase(),
        spec.name.to_uppercase()
    );
    let _ = writeln!(
        m,
        ".TH {} 7 \"\" \"bulwark {}\" \"OCF resource agents\"",
        title, spec.version
    );
    let _ = writeln!(m, ".SH NAME");
    let _ = writeln!(
        m,
        "ocf_{}_{} \\- {}",
        PROVIDER,
        roff(spec.name),
        roff(spec.shortdesc)
    );
    let _ = writeln!(m, ".SH SYNOPSIS");
    let actions: Vec<&str> = spec.actions.iter().map(|a| a.name).collect();
    let _ = writeln!(
        m,
        "\\fB{}\\fR [{}]",
        roff(spec.name),
        roff(&actions.join(" | "))
    );
    let _ = writeln!(m, ".SH DESCRIPTION");
    let _ = writeln!(m, "{}", roff(spec.longdesc.trim()));
    let _ = writeln!(m, ".SH SUPPORTED PARAMETERS");
    for p in spec.params {
        let _ = writeln!(m, ".TP");
        let mut head = format!("\\fB{}\\fR", roff(p.name));
        if p.required {
            head.push_str(" (required)");
        }
        if p.unique {
            head.push_str(" (unique)");
        }
        let _ = writeln!(m, "{head}");
        let mut body = if p.longdesc.trim().is_empty() {
            p.shortdesc.to_string()
        } else {
            p.longdesc.trim().to_string()
        };
        if let Some(h) = p.syntax_hint() {
            body.push(' ');
            body.push_str(&h);
        }
        let _ = writeln!(m, "{}", roff(&body));
        let _ = writeln!(m, ".br");
        let _ = writeln!(
            m,
            "Type: {}; default: {}",
            p.content_type(),
            roff(p.default.unwrap_or("(none)"))
        );
    }
    let _ = writeln!(m, ".SH SUPPORTED ACTIONS");
    for a in spec.actions {
        let _ = writeln!(m, ".TP");
        let mut line = format!("\\fB{}\\fR timeout={}", roff(a.name), a.timeout);
        if let Some(i) = a.interval {
            let _ = write!(line, " interval={i}");
        }
        if let Some(d) = a.depth {
            let _ = write!(line, " depth={d}");
        }
        let _ = writeln!(m, "{line}");
    }
    let _ = writeln!(m, ".SH EXAMPLE");
    let required: Vec<String> = spec
        .params
        .iter()
        .filter(|p| p.required)
        .map(|p| format!("{}=...", p.name))
        .collect();
    let _ = writeln!(m, ".nf");
    let _ = writeln!(
        m,
        "pcs resource create {} ocf:{}:{} {}",
        roff(spec.name),
        PROVIDER,
        roff(spec.name),
        roff(&required.join(" "))
    );
    let _ = writeln!(m, ".fi");
    let _ = writeln!(m, ".SH SEE ALSO");
    let _ = writeln!(
        m,
        "\\fBbulwark\\fR(8), \\fBpcs\\fR(8), \\fBcrm\\fR(8), \\fBocf-tester\\fR(8)"
    );
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn escapes_requests_and_dashes() {
        assert_eq!(roff(".x-y"), "\\&.x\\-y");
        assert_eq!(roff("a\\b"), "a\\eb");
    }
}
