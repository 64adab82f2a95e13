//! A small blocking Redfish client over HTTPS (reqwest on rustls with the ring
//! provider): HTTP Basic authentication on every request (as fence_redfish), the
//! Redfish headers, a time limit on every request, the HTTP status checked on every
//! answer, and messages that name the cause but never the password.

use super::RedfishError;
use ocf_metadata::fence::opts::printable;
use ocf_metadata::fence::Secret;
use reqwest::blocking::{Client as Http, Response};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;
use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How much of one answer is read at most (a ComputerSystem is a few KiB).
const BODY_LIMIT: u64 = 4 << 20;

/// How the BMC's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// Against the system's trust store (/etc/ssl/certs), host name included.
    System,
    /// Against the CA certificates in this PEM file only, host name included.
    Pinned(PathBuf),
    /// Not at all (`ssl_insecure`).
    Insecure,
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Config {
    /// The host as written in a URL: a name, an IPv4 address or `[IPv6]`.
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: Secret,
    pub tls: Tls,
    /// The limit for each request (connection, TLS, answer).
    pub timeout: Duration,
}

/// A connected Redfish service.
pub struct Client {
    http: Http,
    base: Url,
    username: String,
    password: Secret,
    timeout: Duration,
    /// While set, every request must also finish by then (the login phase).
    deadline: Option<Instant>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Reads the PEM CA file of `ssl_ca`.
pub fn read_ca_file(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, RedfishError> {
    let shown = printable(&path.display().to_string());
    let pem = std::fs::read(path)
        .map_err(|e| RedfishError::Config(format!("cannot read ssl_ca file {shown:?}: {e}")))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|_| {
        RedfishError::Config(format!(
            "ssl_ca file {shown:?} holds no readable PEM certificate"
        ))
    })?;
    if certs.is_empty() {
        return Err(RedfishError::Config(format!(
            "ssl_ca file {shown:?} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        )));
    }
    Ok(certs)
}

impl Client {
    pub fn new(cfg: &Config) -> Result<Client, RedfishError> {
        // One process-wide rustls provider: ring (reqwest is built without its own).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let base = Url::parse(&format!("https://{}:{}/", cfg.host, cfg.port)).map_err(|e| {
            RedfishError::Config(format!(
                "invalid value for 'ip' {:?}: {e}",
                printable(&cfg.host)
            ))
        })?;
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert("OData-Version", HeaderValue::from_static("4.0"));
        let mut b = Http::builder()
            .user_agent(concat!("fence_bulwark_redfish/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .https_only(true)
            // The BMC is on the management network: never through a proxy from the
            // environment.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::limited(5))
            .connect_timeout(cfg.timeout)
            .timeout(cfg.timeout);
        b = match &cfg.tls {
            Tls::System => b,
            Tls::Pinned(path) => b.tls_certs_only(read_ca_file(path)?),
            Tls::Insecure => b.tls_danger_accept_invalid_certs(true),
        };
        let http = b
            .build()
            .map_err(|e| RedfishError::Config(format!("cannot set up HTTPS: {}", chain(&e))))?;
        Ok(Client {
            http,
            base,
            username: cfg.username.clone(),
            password: cfg.password.clone(),
            timeout: cfg.timeout,
            deadline: None,
        })
    }

    /// `https://host:port` for messages.
    pub fn origin(&self) -> String {
        self.base.origin().ascii_serialization()
    }

    /// From now on every request must also finish by `deadline` (None: only the
    /// per-request limit).
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// A reference from the BMC or the admin (an absolute path, or an https URL on the
    /// same host and port) as a URL on this service. Never leaves the BMC.
    pub fn resolve(&self, reference: &str) -> Result<Url, RedfishError> {
        let r = reference.trim();
        let bad = |why: &str| {
            RedfishError::Protocol(format!(
                "refusing the resource path {:?}: {why}",
                printable(r)
            ))
        };
        if r.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("it contains blanks or control characters"));
        }
        if let Some(path) = r.strip_prefix('/') {
            if path.starts_with('/') {
                return Err(bad("it must be a path on the BMC (one leading /)"));
            }
            let mut u = self.base.clone();
            let (p, q) = match r.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (r, None),
            };
            u.set_path(p.split('#').next().unwrap_or(p));
            u.set_query(q);
            return Ok(u);
        }
        let u = Url::parse(r).map_err(|_| bad("not a path or a URL"))?;
        if u.scheme() != "https"
            || u.host_str() != self.base.host_str()
            || u.port_or_known_default() != self.base.port_or_known_default()
        {
            return Err(bad("it points away from the BMC"));
        }
        Ok(u)
    }

    fn limit(&self) -> Result<Duration, RedfishError> {
        match self.deadline {
            None => Ok(self.timeout),
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    Err(RedfishError::Connection(format!(
                        "the BMC at {} did not finish answering within login_timeout ({:.1} s)",
                        self.origin(),
                        self.timeout.as_secs_f64()
                    )))
                } else {
                    Ok(left.min(self.timeout))
                }
            }
        }
    }

    fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Vec<u8>), RedfishError> {
        let url = self.resolve(path)?;
        let what = format!("{method} {}", url.path());
        let mut rq = self
            .http
            .request(method, url)
            .timeout(self.limit()?)
            .basic_auth(&self.username, Some(self.password.expose()));
        if let Some(b) = body {
            rq = rq
                .header(CONTENT_TYPE, "application/json")
                .body(b.to_string());
        }
        let resp = rq.send().map_err(|e| self.transport_error(&what, &e))?;
        let status = resp.status();
        let bytes = read_body(resp).map_err(|e| self.transport_error(&what, &e))?;
        if status.is_success() {
            return Ok((status, bytes));
        }
        Err(self.status_error(&what, status, &bytes))
    }

    /// GET a resource: the status must be 2xx and the body a JSON object.
    pub fn get(&self, path: &str) -> Result<Value, RedfishError> {
        let (_, bytes) = self.send(Method::GET, path, None)?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
            RedfishError::Protocol(format!(
                "GET {path} from {}: the answer is not JSON ({e})",
                self.origin()
            ))
        })?;
        if !v.is_object() {
            return Err(RedfishError::Protocol(format!(
                "GET {path} from {}: the answer is not a JSON object",
                self.origin()
            )));
        }
        Ok(v)
    }

    /// POST a JSON body (an action): the status must be 2xx. Returns the status.
    pub fn post(&self, path: &str, body: &Value) -> Result<StatusCode, RedfishError> {
        self.send(Method::POST, path, Some(body)).map(|(s, _)| s)
    }

    fn transport_error(&self, what: &str, e: &reqwest::Error) -> RedfishError {
        let origin = self.origin();
        if let Some(tls) = find_tls_error(e) {
            let hint = match tls {
                rustls::Error::InvalidCertificate(_) => {
                    "; set ssl_ca to the CA file that signed the BMC's certificate \
                     (or ssl_insecure=1 to skip the check)"
                }
                _ => "",
            };
            return RedfishError::Connection(format!(
                "TLS with {origin} failed: {}{hint}",
                describe_tls(tls)
            ));
        }
        if e.is_timeout() {
            return RedfishError::Connection(format!(
                "no answer from the BMC at {origin} to {what} within {:.1} s (login_timeout)",
                self.timeout.as_secs_f64()
            ));
        }
        if let Some(io) = find_io_error(e) {
            use std::io::ErrorKind as K;
            let why = match io.kind() {
                K::ConnectionRefused => "connection refused (nothing listens on that port?)",
                K::ConnectionReset => "connection reset by the BMC",
                K::TimedOut => "connection timed out",
                K::UnexpectedEof => "the BMC closed the connection",
                _ => "",
            };
            if !why.is_empty() {
                return RedfishError::Connection(format!("{what} to {origin}: {why}"));
            }
        }
        if e.is_redirect() {
            return RedfishError::Protocol(format!("{what} at {origin}: {}", chain(e)));
        }
        RedfishError::Connection(format!("{what} to {origin} failed: {}", chain(e)))
    }

    fn status_error(&self, what: &str, status: StatusCode, body: &[u8]) -> RedfishError {
        let msg = redfish_message(body)
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        let code = format!(
            "HTTP {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        let code = code.trim_end();
        match status {
            StatusCode::UNAUTHORIZED => RedfishError::Auth(format!(
                "authentication failed: {what} at {} answered {code}: \
                 wrong username or password for user '{}'{msg}",
                self.origin(),
                printable(&self.username)
            )),
            StatusCode::FORBIDDEN => RedfishError::Auth(format!(
                "access denied: {what} at {} answered {code}: user '{}' lacks the privilege{msg}",
                self.origin(),
                printable(&self.username)
            )),
            StatusCode::NOT_FOUND => RedfishError::NotFound(format!(
                "{what} at {} answered {code}: no such resource{msg}",
                self.origin()
            )),
            _ => RedfishError::Http(format!("{what} at {} answered {code}{msg}", self.origin())),
        }
    }
}

fn read_body(resp: Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut v = Vec::new();
    let mut r = resp.take(BODY_LIMIT);
    // A read error here is a transport error; reqwest reports it as io::Error.
    match r.read_to_end(&mut v) {
        Ok(_) => Ok(v),
        Err(e) => {
            // Recover the reqwest::Error reqwest wrapped, if any.
            match e
                .into_inner()
                .and_then(|inner| inner.downcast::<reqwest::Error>().ok())
            {
                Some(re) => Err(*re),
                None => Ok(v),
            }
        }
    }
}

/// The `error.message` (and first extended message) of a Redfish error body.
pub fn redfish_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let e = v.get("error")?;
    let mut parts = Vec::new();
    if let Some(m) = e.get("message").and_then(Value::as_str) {
        parts.push(m.to_string());
    }
    if let Some(m) = e
        .get("@Message.ExtendedInfo")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(|x| x.get("Message"))
        .and_then(Value::as_str)
    {
        if !parts.iter().any(|p| p == m) {
            parts.push(m.to_string());
        }
    }
    if parts.is_empty() {
        return None;
    }
    Some(printable(&parts.join("; ")))
}

/// The error and its sources, deduplicated, for the rare cases without a better text.
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(x) = cur {
        let s = x.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = x.source();
    }
    parts.join(": ")
}

/// Every cause of `e`, looking inside `io::Error`s that wrap another error (rustls'
/// errors arrive as io::Error(Other, io::Error(InvalidData, rustls::Error))).
fn causes(e: &reqwest::Error) -> Vec<&(dyn std::error::Error + 'static)> {
    let mut out: Vec<&(dyn std::error::Error + 'static)> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(x) = cur {
        out.push(x);
        let mut inner = x;
        while let Some(i) = inner
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            let i: &(dyn std::error::Error + 'static) = i;
            out.push(i);
            inner = i;
        }
        cur = x.source();
        if out.len() > 32 {
            break;
        }
    }
    out
}

fn find_tls_error(e: &reqwest::Error) -> Option<&rustls::Error> {
    causes(e)
        .into_iter()
        .find_map(|x| x.downcast_ref::<rustls::Error>())
}

fn find_io_error(e: &reqwest::Error) -> Option<&std::io::Error> {
    causes(e)
        .into_iter()
        .find_map(|x| x.downcast_ref::<std::io::Error>())
}

fn describe_tls(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => "the BMC's certificate is not trusted (unknown issuer)".into(),
            C::BadSignature => "the BMC's certificate has a bad signature".into(),
            C::Expired | C::ExpiredContext { .. } => "the BMC's certificate has expired".into(),
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "the BMC's certificate is not valid yet".into()
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "the BMC's certificate does not name this host (check 'ip')".into()
            }
            C::Other(o) => format!("the BMC's certificate was rejected ({o})"),
            other => format!("the BMC's certificate was rejected ({other:?})"),
        },
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        Client::new(&Config {
            host: "127.0.0.1".into(),
            port: 8443,
            username: "admin".into(),
            password: Secret::new("pw".into()),
            tls: Tls::Insecure,
            timeout: Duration::from_secs(1),
        })
        .unwrap()
    }

    #[test]
    fn references_stay_on_the_bmc() {
        let c = client();
        assert_eq!(
            c.resolve("/redfish/v1/Systems/1").unwrap().as_str(),
            "https://127.0.0.1:8443/redfish/v1/Systems/1"
        );
        assert_eq!(
            c.resolve("https://127.0.0.1:8443/redfish/v1")
                .unwrap()
                .path(),
            "/redfish/v1"
        );
        for bad in [
            "//evil.example/x",
            "https://evil.example:8443/redfish/v1",
            "https://127.0.0.1:9443/redfish/v1",
            "http://127.0.0.1:8443/redfish/v1",
            "redfish/v1",
            "/redfish/v1 /x",
            "",
        ] {
            assert!(c.resolve(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redfish_error_messages() {
        let b = br#"{"error":{"code":"Base.1.0.GeneralError","message":"Fake system nope was not found",
            "@Message.ExtendedInfo":[{"MessageId":"x","Message":"The resource was not found."}]}}"#;
        assert_eq!(
            redfish_message(b).unwrap(),
            "Fake system nope was not found; The resource was not found."
        );
        assert_eq!(redfish_message(b"not json"), None);
        assert_eq!(redfish_message(b"{}"), None);
    }

    #[test]
    fn debug_hides_the_password() {
        let c = client();
        assert!(!format!("{c:?}").contains("pw\""));
    }
}
