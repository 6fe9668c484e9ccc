//! # mc-egress-proxy — the egress proxy every task's traffic goes through
//!
//! An HTTP proxy (RFC 9110 `CONNECT` tunnels for TLS, absolute-form requests for
//! plain HTTP) that enforces the [`mc_egress`] allowlist of the task presenting the
//! credential, in the spirit of Stripe's smokescreen:
//!
//! - **Who**: each task gets its own credential from [`TaskRegistry::register`] and
//!   uses it as the password of its proxy URL (`HTTPS_PROXY=http://task:TOKEN@…`);
//!   a missing, wrong or revoked credential gets `407`.
//! - **Deny by default**: the allowlist is checked on the parsed target *before* any
//!   DNS lookup (a denied name is never resolved, so nothing leaks through DNS); a
//!   denial gets `403` with the reason in `X-MC-Egress-Reason`.
//! - **Addresses**: an allowed name is resolved by the proxy, every address is checked
//!   against the [`AddressPolicy`] (metadata service, loopback, private ranges; if any
//!   address is denied, the call is), and the proxy connects to an address it checked.
//! - **Shadow mode**: with the tenant's flag `egress_policy_enforce` off, allowlist
//!   violations are recorded and let through; the address policy still holds. A
//!   flag store that cannot answer means enforce.
//! - **Records**: every block is an `mc.egress.blocked` event in the tenant's
//!   hash-chained audit log and a count in `mc_egress_block_total{mode, reason}`.
//!
//! The orchestrator must also keep the task from reaching the network other than
//! through this proxy (a network namespace or a Kubernetes NetworkPolicy that allows
//! egress only to the proxy — including no DNS, which the proxy does for the task).
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use std::sync::Arc;
//! use mc_core::{ExecutionId, MemoryFlagStore, MemoryStore, SystemClock, TenantId};
//! use mc_egress::{TaskEgress, TaskId, TaskRef};
//! use mc_egress_proxy::{EgressProxy, SystemResolver, TaskRegistry};
//!
//! let registry = Arc::new(TaskRegistry::new());
//! let proxy = EgressProxy::new(
//!     registry.clone(),
//!     Arc::new(MemoryFlagStore::new()),
//!     Arc::new(MemoryStore::new()),
//!     Arc::new(SystemClock),
//!     Arc::new(SystemResolver),
//! )
//! .bind("127.0.0.1:3128".parse().unwrap())
//! .await?;
//! let token = registry.register(
//!     TaskRef {
//!         tenant: TenantId::new("acme").unwrap(),
//!         execution: ExecutionId::new("exec_1").unwrap(),
//!         task: TaskId::new("fetch").unwrap(),
//!     },
//!     TaskEgress::from_rules([("api.example.com", vec![443])]).unwrap(),
//! )?;
//! // Give the task HTTPS_PROXY = token.proxy_url(proxy.local_addr()) …
//! # let _ = token; Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod conn;
mod registry;
mod resolve;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mc_core::{AuditLog, Clock, FlagStore};
pub use mc_egress::AddressPolicy;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use registry::{Registered, TaskRegistry, TaskToken};
pub use resolve::{Resolve, StaticResolver, SystemResolver};

/// Limits and the address policy.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Which resolved addresses may be reached at all.
    pub addresses: AddressPolicy,
    /// How long a client may take to send its request head.
    pub head_timeout: Duration,
    /// The largest request head accepted (`431` beyond).
    pub max_head_bytes: usize,
    /// How long a DNS lookup may take.
    pub resolve_timeout: Duration,
    /// How long connecting to one upstream address may take.
    pub connect_timeout: Duration,
    /// The relay buffer of an open tunnel, per direction (at least 1 KiB). Memory per
    /// tunnel is twice this. On loopback (benches/proxy.rs) 8 KiB relayed ~0.9 GiB/s,
    /// 64 KiB ~1.0–1.2, 256 KiB ~1.9–2.0; the default, 64 KiB, keeps 1,000 open
    /// tunnels at 128 MiB.
    pub relay_buffer: usize,
    /// An open tunnel or relayed request with no bytes either way for this long is
    /// closed (smokescreen's idle timeout; default 5 minutes).
    pub idle_timeout: Duration,
    /// An open tunnel or relayed request is closed this long after it opened, busy
    /// or not (Envoy's `max_connection_duration`); `None` (the default) sets no
    /// limit. Bounds how long one approved connection can carry data, e.g. to the
    /// length of the longest task. Revoking a task closes its connections
    /// regardless.
    pub max_lifetime: Option<Duration>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            addresses: AddressPolicy::default(),
            head_timeout: Duration::from_secs(10),
            max_head_bytes: 16 * 1024,
            resolve_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            relay_buffer: 64 * 1024,
            idle_timeout: Duration::from_secs(300),
            max_lifetime: None,
        }
    }
}

/// The proxy, before it listens.
pub struct EgressProxy {
    shared: conn::Shared,
}

impl std::fmt::Debug for EgressProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressProxy")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl EgressProxy {
    /// A proxy over these stores with the default [`ProxyConfig`].
    pub fn new(
        registry: Arc<TaskRegistry>,
        flags: Arc<dyn FlagStore>,
        audit: Arc<dyn AuditLog>,
        clock: Arc<dyn Clock>,
        resolver: Arc<dyn Resolve>,
    ) -> Self {
        EgressProxy {
            shared: conn::Shared {
                registry,
                flags,
                audit,
                clock,
                resolver,
                config: ProxyConfig::default(),
            },
        }
    }

    /// Replaces the configuration (builder style).
    #[must_use]
    pub fn with_config(mut self, config: ProxyConfig) -> Self {
        self.shared.config = config;
        self
    }

    /// Listens on `addr` and serves until [`RunningProxy::shutdown`] (or the handle
    /// is dropped).
    ///
    /// # Errors
    /// The address cannot be bound.
    pub async fn bind(self, addr: SocketAddr) -> std::io::Result<RunningProxy> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let shared = Arc::new(self.shared);
        let join = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop_rx.changed() => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, peer)) => {
                            let shared = shared.clone();
                            tokio::spawn(async move { conn::serve(shared, stream, peer).await });
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "egress proxy accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    },
                }
            }
        });
        Ok(RunningProxy {
            local_addr,
            stop: stop_tx,
            join,
        })
    }
}

/// A listening proxy.
#[derive(Debug)]
pub struct RunningProxy {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    join: JoinHandle<()>,
}

impl RunningProxy {
    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting connections (open tunnels run to their end).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let _ = (&mut self.join).await;
    }
}

impl Drop for RunningProxy {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
