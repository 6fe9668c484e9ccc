//! Which task a proxy credential belongs to.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use mc_egress::{TaskEgress, TaskRef};
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;

/// A task's proxy credential: 32 random bytes, hex. The orchestrator hands it to the
/// task's sandbox as the password of its proxy URL
/// (`HTTPS_PROXY=http://task:{token}@127.0.0.1:3128`). Its `Debug` and `Display`
/// never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct TaskToken(String);

impl TaskToken {
    /// The secret, to put into the task's proxy URL.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The proxy URL for `proxy` (`http://task:{token}@{proxy}`).
    pub fn proxy_url(&self, proxy: std::net::SocketAddr) -> String {
        format!("http://task:{}@{proxy}", self.0)
    }
}

impl fmt::Debug for TaskToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TaskToken(…)")
    }
}

/// A registered task: who it is and what it may reach.
#[derive(Debug, Clone)]
pub struct Registered {
    /// Who.
    pub who: TaskRef,
    /// Its allowlist.
    pub policy: Arc<TaskEgress>,
    /// Turns `true` when the task is revoked: its open tunnels close.
    revoked: tokio::sync::watch::Receiver<bool>,
}

impl Registered {
    /// Resolves once the task's credential is revoked (at once if it already is).
    pub async fn revoked(&self) {
        let mut rx = self.revoked.clone();
        // A dropped sender (the registry is gone) counts as revoked too.
        let _ = rx.wait_for(|revoked| *revoked).await;
    }
}

struct Entry {
    reg: Registered,
    revoke: tokio::sync::watch::Sender<bool>,
}

/// The tasks the proxy serves, by credential. Only the SHA-256 of each token is
/// kept; a presented token is hashed and its entry compared in constant time.
#[derive(Default)]
pub struct TaskRegistry {
    tasks: RwLock<HashMap<[u8; 32], Entry>>,
}

impl fmt::Debug for TaskRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.tasks.read().map(|t| t.len()).unwrap_or(0);
        write!(f, "TaskRegistry({n} tasks)")
    }
}

fn digest(token: &str) -> [u8; 32] {
    sha2::Sha256::digest(token.as_bytes()).into()
}

impl TaskRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a task about to start and returns its credential.
    ///
    /// # Errors
    /// The operating system's random source failed.
    pub fn register(&self, who: TaskRef, policy: TaskEgress) -> std::io::Result<TaskToken> {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| std::io::Error::other(e.to_string()))?;
        let token = TaskToken(hex::encode(raw));
        let (revoke, revoked) = tokio::sync::watch::channel(false);
        let reg = Registered {
            who,
            policy: Arc::new(policy),
            revoked,
        };
        if let Ok(mut t) = self.tasks.write() {
            t.insert(digest(&token.0), Entry { reg, revoke });
        }
        Ok(token)
    }

    /// Forgets a task (it finished): its credential stops working at once, and every
    /// tunnel or relayed request it still has open is closed — a process the task
    /// left behind keeps no connection out.
    pub fn revoke(&self, token: &TaskToken) {
        let removed = self
            .tasks
            .write()
            .ok()
            .and_then(|mut t| t.remove(&digest(&token.0)));
        if let Some(entry) = removed {
            entry.revoke.send_replace(true);
        }
    }

    /// The task a presented token belongs to.
    pub fn lookup(&self, presented: &str) -> Option<Registered> {
        let d = digest(presented);
        let tasks = self.tasks.read().ok()?;
        let (k, v) = tasks.get_key_value(&d)?;
        bool::from(k.ct_eq(&d)).then(|| v.reg.clone())
    }
}
