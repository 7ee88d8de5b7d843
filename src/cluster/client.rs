//! The rqlite HTTP API as the cluster engine uses it: statements with bound parameters,
//! sent to whichever node answers (any node forwards to the leader), retried on the
//! next node until the timeout when a node is down, has no leader or is mid-election.
//! Credentials go in a header and never into an error message.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::{StoreError, StoreResult};

/// How fresh a read must be (rqlite's read consistency levels). Writes always go
/// through the Raft leader and are acknowledged once a quorum has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Read from whichever node answers: may miss writes made elsewhere moments ago.
    None,
    /// The leader answers, after checking it still leads: fresh but for a leader
    /// change at that very moment. The default.
    Weak,
    /// The leader answers after confirming with a quorum that it leads.
    Linearizable,
    /// The read goes through the Raft log like a write.
    Strong,
}

impl Level {
    pub fn parse(text: &str) -> Option<Level> {
        Some(match text {
            "none" => Level::None,
            "weak" => Level::Weak,
            "linearizable" => Level::Linearizable,
            "strong" => Level::Strong,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::Weak => "weak",
            Level::Linearizable => "linearizable",
            Level::Strong => "strong",
        }
    }
}

/// How to reach a cluster.
#[derive(Clone)]
pub struct ClientOptions {
    /// Base URLs of the nodes (`http://host:port` or `https://...`), without credentials.
    pub nodes: Vec<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub level: Level,
    /// How long one call may take across every retry before it fails.
    pub timeout: Duration,
    /// PEM certificates to trust for `https://` nodes instead of the Mozilla roots
    /// built in (webpki-roots).
    pub ca_pem: Option<String>,
}

/// One SQL statement and its parameters, as rqlite takes it: `["SQL", p1, p2, ...]`.
pub type Statement = Vec<Value>;

/// What one statement gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Rows(Vec<Vec<Value>>),
    Changed(i64),
    Failed(String),
}

pub struct Client {
    nodes: Vec<String>,
    /// The node that answered last: tried first next time.
    preferred: AtomicUsize,
    agent: ureq::Agent,
    authorization: Option<String>,
    level: Level,
    timeout: Duration,
}

/// Pause between two rounds over every node while none answers (an election takes
/// from tens of ms after a clean leader exit to seconds after a crash).
const ROUND_PAUSE: Duration = Duration::from_millis(50);

impl Client {
    pub fn new(options: ClientOptions) -> StoreResult<Client> {
        if options.nodes.is_empty() {
            return Err(invalid("an rqlite cluster needs at least one node address"));
        }
        let mut nodes = Vec::with_capacity(options.nodes.len());
        for node in &options.nodes {
            nodes.push(base_url(node)?);
        }
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(pem) = &options.ca_pem {
            let certs = ureq::tls::parse_pem(pem.as_bytes())
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert),
                    _ => None,
                })
                .collect::<Vec<_>>();
            if certs.is_empty() {
                return Err(invalid("the ca option holds no PEM certificate"));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(options.timeout.min(Duration::from_secs(2))))
            .tls_config(tls.build())
            .build()
            .new_agent();
        let authorization = options.username.as_ref().map(|user| {
            use base64::Engine as _;
            let pair = format!("{user}:{}", options.password.as_deref().unwrap_or(""));
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
        });
        Ok(Client {
            nodes,
            preferred: AtomicUsize::new(0),
            agent,
            authorization,
            level: options.level,
            timeout: options.timeout,
        })
    }

    /// Runs writes; with `transaction`, all or none of them (then the failed one's
    /// reply says why and the ones after it are missing).
    pub fn execute(&self, statements: &[Statement], transaction: bool) -> StoreResult<Vec<Reply>> {
        let path = if transaction { "/db/execute?transaction" } else { "/db/execute" };
        self.send(path, statements)
    }

    /// Runs reads at the configured level.
    pub fn query(&self, statements: &[Statement]) -> StoreResult<Vec<Reply>> {
        let path = format!("/db/query?level={}", self.level.as_str());
        self.send(&path, statements)
    }

    /// Whether some node has a leader now (rqlite's `/readyz`).
    pub fn ready(&self) -> bool {
        let deadline = Instant::now() + self.timeout.min(Duration::from_secs(1));
        self.nodes.iter().enumerate().any(|(i, node)| {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let mut request = self.agent.get(format!("{node}/readyz")).config().timeout_global(Some(left)).build();
            if let Some(auth) = &self.authorization {
                request = request.header("Authorization", auth);
            }
            let ready = request.call().is_ok_and(|response| response.status().as_u16() == 200);
            if ready {
                self.preferred.store(i, Ordering::Relaxed);
            }
            ready
        })
    }

    /// Writes a copy of the cluster's database (rqlite's `/db/backup`, a SQLite file) to
    /// `target`, as a local backup is written (private, complete or not at all).
    /// Returns the bytes written.
    pub fn backup(&self, target: &std::path::Path) -> StoreResult<i64> {
        let deadline = Instant::now() + self.timeout.max(Duration::from_secs(60));
        let mut last_problem = String::from("no node tried");
        for node in &self.nodes {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut request = self.agent.get(format!("{node}/db/backup")).config().timeout_global(Some(left)).build();
            if let Some(auth) = &self.authorization {
                request = request.header("Authorization", auth);
            }
            let mut response = match request.call() {
                Ok(response) if response.status().as_u16() == 200 => response,
                Ok(response) => {
                    last_problem = format!("{}: HTTP {}", host_of(node), response.status().as_u16());
                    continue;
                }
                Err(e) => {
                    last_problem = format!("{}: {}", host_of(node), transport_problem(&e));
                    continue;
                }
            };
            // Private, written beside the target and renamed over it, as a local backup.
            return crate::backup::write_atomically(target, |temporary| {
                let mut file = crate::backup::create_private(temporary)?;
                let bytes = std::io::copy(&mut response.body_mut().as_reader(), &mut file)?;
                file.sync_all()?;
                Ok(i64::try_from(bytes).unwrap_or(i64::MAX))
            });
        }
        Err(self.unavailable(&last_problem))
    }

    fn send(&self, path: &str, statements: &[Statement]) -> StoreResult<Vec<Reply>> {
        if statements.is_empty() {
            return Ok(Vec::new());
        }
        let body = serde_json::to_string(statements)
            .map_err(|e| StoreError::new("ERR_INTERNAL", format!("cannot encode the request: {e}")))?;
        let deadline = Instant::now() + self.timeout;
        let first = self.preferred.load(Ordering::Relaxed);
        let mut last_problem = String::from("no node tried");
        loop {
            let mut untrusted = 0;
            for step in 0..self.nodes.len() {
                let index = (first + step) % self.nodes.len();
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(self.unavailable(&last_problem));
                }
                match self.post(index, path, &body, left) {
                    Attempt::Done(replies) => {
                        self.preferred.store(index, Ordering::Relaxed);
                        return replies;
                    }
                    Attempt::TryElsewhere(problem) => last_problem = problem,
                    // The last attempt is often cut short by the deadline itself: its
                    // "timed out" would hide why the earlier ones failed.
                    Attempt::TimedOut(problem) => {
                        if last_problem == "no node tried" {
                            last_problem = problem;
                        }
                    }
                    Attempt::Untrusted(problem) => {
                        untrusted += 1;
                        last_problem = problem;
                    }
                }
            }
            // A certificate we do not trust stays untrusted: when every node showed one,
            // retrying until the timeout would only delay the same answer.
            if untrusted == self.nodes.len() {
                return Err(self.unavailable(&last_problem));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            std::thread::sleep(ROUND_PAUSE.min(left));
        }
    }

    fn post(&self, index: usize, path: &str, body: &str, left: Duration) -> Attempt {
        let node = &self.nodes[index];
        let mut request = self
            .agent
            .post(format!("{node}{path}"))
            .config()
            .timeout_global(Some(left))
            .build()
            .header("Content-Type", "application/json");
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        let mut response = match request.send(body) {
            Ok(response) => response,
            Err(e) => {
                let problem = format!("{}: {}", host_of(node), transport_problem(&e));
                return match e {
                    ureq::Error::Timeout(_) => Attempt::TimedOut(problem),
                    _ if refused_certificate(&e) => Attempt::Untrusted(problem),
                    _ => Attempt::TryElsewhere(problem),
                };
            }
        };
        let status = response.status().as_u16();
        // ureq reads at most 10 MiB by default; a listing of every session can be more.
        let text = match response.body_mut().with_config().limit(MAX_REPLY_BYTES).read_to_string() {
            Ok(text) => text,
            Err(e) => {
                return Attempt::TryElsewhere(format!(
                    "{}: reading the reply: {}",
                    host_of(node),
                    transport_problem(&e)
                ))
            }
        };
        match status {
            200 => match parse_results(&text) {
                Ok(replies) => Attempt::Done(Ok(replies)),
                Err(problem) => Attempt::TryElsewhere(format!("{}: {problem}", host_of(node))),
            },
            401 | 403 => Attempt::Done(Err(StoreError::new(
                "ERR_CLUSTER_AUTH",
                format!("rqlite refused the credentials (HTTP {status} from {})", host_of(node)),
            ))),
            // No leader (an election, or quorum lost), or a node (or a proxy) that is
            // unwell or restarting: another node, or this one later, may answer.
            502..=504 => Attempt::TryElsewhere(format!("{}: HTTP {status}", host_of(node))),
            // Anything else would be answered the same way by every node.
            _ => Attempt::Done(Err(StoreError::new(
                "ERR_CLUSTER_REQUEST",
                format!("rqlite refused the request (HTTP {status} from {}): {}", host_of(node), first_line(&text)),
            ))),
        }
    }

    fn unavailable(&self, last_problem: &str) -> StoreError {
        let hosts: Vec<&str> = self.nodes.iter().map(|n| host_of(n)).collect();
        StoreError::new(
            "ERR_CLUSTER_UNAVAILABLE",
            format!(
                "no rqlite node with a leader answered within {} ms (nodes {}; last: {last_problem})",
                self.timeout.as_millis(),
                hosts.join(", ")
            ),
        )
    }
}

enum Attempt {
    Done(StoreResult<Vec<Reply>>),
    /// This node cannot answer now; another may, or this one later.
    TryElsewhere(String),
    /// No answer in the time left.
    TimedOut(String),
    /// This node's certificate is not one we trust.
    Untrusted(String),
}

/// The largest reply read: `all()` of a million sessions of 0.5 KB, with room.
const MAX_REPLY_BYTES: u64 = 1 << 30;

/// The start of a refusal's text, for a message (rqlite's own words; short).
fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").chars().take(200).collect()
}

fn invalid(message: &str) -> StoreError {
    StoreError::new("ERR_INVALID_ARG_VALUE", message)
}

/// `http(s)://host:port`, checked: no credentials (they go in their own options, so
/// that no address printed in an error carries them), no path.
fn base_url(node: &str) -> StoreResult<String> {
    let rest = node
        .strip_prefix("http://")
        .or_else(|| node.strip_prefix("https://"))
        .ok_or_else(|| invalid("an rqlite node address must start with http:// or https://"))?;
    let host = rest.trim_end_matches('/');
    if host.is_empty() || host.contains(['@', '/', '?', '#', ' ']) {
        return Err(invalid("an rqlite node address is http(s)://host:port, without credentials or a path"));
    }
    Ok(node.trim_end_matches('/').to_string())
}

fn host_of(node: &str) -> &str {
    node.split_once("://").map_or(node, |(_, host)| host)
}

/// A transport error in words that name no URL with its query (nor anything else sent).
fn transport_problem(error: &ureq::Error) -> String {
    match error {
        ureq::Error::Timeout(_) => "timed out".into(),
        // rustls reports a refused certificate as invalid data, with a message that
        // says why (an unknown issuer, a name mismatch): worth passing on.
        ureq::Error::Io(e) if refused_certificate(error) => format!("TLS: {e}"),
        ureq::Error::Io(e) => e.kind().to_string(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => "TLS handshake failed".into(),
        _ => "request failed".into(),
    }
}

/// Whether the handshake failed on our side's trust (rustls reports a refused
/// certificate as invalid data): a setting to fix, not a node to wait for.
fn refused_certificate(error: &ureq::Error) -> bool {
    match error {
        ureq::Error::Io(e) => e.kind() == std::io::ErrorKind::InvalidData,
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => true,
        _ => false,
    }
}

/// rqlite's `{"results": [...]}`; a top-level error (the node lost leadership while
/// committing, ...) counts as no answer.
fn parse_results(text: &str) -> Result<Vec<Reply>, String> {
    let value: Value = serde_json::from_str(text).map_err(|_| "unreadable reply".to_string())?;
    if let Some(error) = value.get("error").and_then(Value::as_str) {
        return Err(error.to_string());
    }
    let results = value.get("results").and_then(Value::as_array).ok_or("reply without results")?;
    Ok(results
        .iter()
        .map(|result| {
            if let Some(error) = result.get("error").and_then(Value::as_str) {
                Reply::Failed(error.to_string())
            } else if let Some(values) = result.get("values").and_then(Value::as_array) {
                Reply::Rows(values.iter().map(|row| row.as_array().cloned().unwrap_or_default()).collect())
            } else if result.get("columns").is_some() {
                Reply::Rows(Vec::new())
            } else {
                Reply::Changed(result.get("rows_affected").and_then(Value::as_i64).unwrap_or(0))
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_addresses_carry_no_credentials_or_paths() {
        assert_eq!(base_url("http://127.0.0.1:4001/").expect("plain"), "http://127.0.0.1:4001");
        assert!(base_url("https://db.example:4001").is_ok());
        for bad in ["127.0.0.1:4001", "http://user:pw@h:1", "http://h:1/db", "ftp://h:1", "http://"] {
            assert_eq!(base_url(bad).unwrap_err().code, "ERR_INVALID_ARG_VALUE", "{bad}");
        }
    }

    #[test]
    fn replies_are_read_per_statement() {
        let text = r#"{"results":[{"columns":["a"],"types":["text"],"values":[["x"]]},{"columns":["a"],"types":["text"]},{"last_insert_id":1,"rows_affected":2},{"error":"no such table: t"}]}"#;
        assert_eq!(
            parse_results(text).expect("parsed"),
            vec![
                Reply::Rows(vec![vec![Value::from("x")]]),
                Reply::Rows(vec![]),
                Reply::Changed(2),
                Reply::Failed("no such table: t".into())
            ]
        );
        assert!(parse_results(r#"{"error":"leadership lost"}"#).is_err());
        assert!(parse_results("<html>").is_err());
    }
}
