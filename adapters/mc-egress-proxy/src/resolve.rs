//! Name resolution, done by the proxy itself so that the addresses it checks are the
//! addresses it connects to.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Resolves a DNS name to addresses.
#[async_trait::async_trait]
pub trait Resolve: Send + Sync {
    /// The addresses of `name` (already checked and lowercase).
    ///
    /// # Errors
    /// The lookup failed.
    async fn resolve(&self, name: &str) -> std::io::Result<Vec<IpAddr>>;
}

/// The operating system's resolver (`getaddrinfo` through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

#[async_trait::async_trait]
impl Resolve for SystemResolver {
    async fn resolve(&self, name: &str) -> std::io::Result<Vec<IpAddr>> {
        let addrs = tokio::net::lookup_host((name, 0)).await?;
        Ok(addrs.map(|a| a.ip()).collect())
    }
}

/// A fixed table of names, for tests and for hosts that pin their upstreams. It
/// remembers every name it was asked for, so a test can prove a denied name was
/// never looked up.
#[derive(Debug, Default)]
pub struct StaticResolver {
    table: HashMap<String, Vec<IpAddr>>,
    asked: Mutex<Vec<String>>,
}

impl StaticResolver {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `name` → `addrs` (builder style).
    #[must_use]
    pub fn with(mut self, name: &str, addrs: &[IpAddr]) -> Self {
        self.table.insert(name.to_ascii_lowercase(), addrs.to_vec());
        self
    }

    /// Every name looked up so far, in order.
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl Resolve for StaticResolver {
    async fn resolve(&self, name: &str) -> std::io::Result<Vec<IpAddr>> {
        if let Ok(mut a) = self.asked.lock() {
            a.push(name.to_string());
        }
        self.table.get(name).cloned().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{name}: no such name"),
            )
        })
    }
}
