//! The proxy's tunnel metrics (`mc_egress_tunnels_open`,
//! `mc_egress_tunnels_closed_total{reason}`), read back from a Prometheus exporter
//! installed in this test binary (its own process: no other test shares the
//! recorder).

use std::net::IpAddr;
use std::sync::Arc;

use mc_core::{
    ExecutionId, Flag, FlagStore, MemoryFlagStore, MemoryStore, SystemClock, TaskId, TenantId,
};
use mc_egress::{AddressPolicy, TaskEgress, TaskRef};
use mc_egress_proxy::{EgressProxy, ProxyConfig, StaticResolver, TaskRegistry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The value of the sample `series` (name and labels as exported), 0 if absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn echo() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

async fn tunnel(proxy: std::net::SocketAddr, target: &str, token: &str) -> TcpStream {
    use base64::Engine as _;
    let mut s = TcpStream::connect(proxy).await.unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("task:{token}"));
    s.write_all(
        format!("CONNECT {target} HTTP/1.1\r\nProxy-Authorization: Basic {auth}\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).await.unwrap(), 1, "proxy closed: {head:?}");
        head.push(b[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s.write_all(b"ping").await.unwrap();
    let mut back = [0u8; 4];
    s.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"ping");
    s
}

/// Waits (bounded; the bound only keeps a broken proxy from hanging the test) until
/// the exported text satisfies `done`.
async fn until(
    handle: &metrics_exporter_prometheus::PrometheusHandle,
    done: impl Fn(&str) -> bool,
) -> String {
    for _ in 0..500 {
        let text = handle.render();
        if done(&text) {
            return text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    handle.render()
}

#[tokio::test]
async fn tunnels_are_counted_open_and_closed_by_reason() {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap();
    let upstream = echo().await;
    let local: IpAddr = "127.0.0.1".parse().unwrap();
    let registry = Arc::new(TaskRegistry::new());
    let flags = Arc::new(MemoryFlagStore::new());
    let tenant = TenantId::new("acme").unwrap();
    flags
        .set(&tenant, Flag::EgressPolicyEnforce, true)
        .await
        .unwrap();
    let proxy = EgressProxy::new(
        registry.clone(),
        flags,
        Arc::new(MemoryStore::new()),
        Arc::new(SystemClock),
        Arc::new(StaticResolver::new().with("api.example.com", &[local])),
    )
    .with_config(ProxyConfig {
        addresses: AddressPolicy::new().allow_range("127.0.0.1/32".parse().unwrap()),
        ..ProxyConfig::default()
    })
    .bind("127.0.0.1:0".parse().unwrap())
    .await
    .unwrap();
    let token = registry
        .register(
            TaskRef {
                tenant,
                execution: ExecutionId::new("exec_1").unwrap(),
                task: TaskId::new("fetch").unwrap(),
            },
            TaskEgress::from_rules([("api.example.com", vec![upstream.port()])]).unwrap(),
        )
        .unwrap();
    let target = format!("api.example.com:{}", upstream.port());
    let open = "mc_egress_tunnels_open";
    let closed = |reason: &str| format!("mc_egress_tunnels_closed_total{{reason=\"{reason}\"}}");

    let first = tunnel(proxy.local_addr(), &target, token.expose()).await;
    let second = tunnel(proxy.local_addr(), &target, token.expose()).await;
    let text = until(&handle, |t| sample(t, open) == 2.0).await;
    assert_eq!(sample(&text, open), 2.0, "{text}");

    // The client finishes: the tunnel ends normally.
    drop(first);
    let text = until(&handle, |t| sample(t, &closed("done")) == 1.0).await;
    assert_eq!(sample(&text, &closed("done")), 1.0, "{text}");
    assert_eq!(sample(&text, open), 1.0, "{text}");

    // The task is revoked: the other tunnel is cut.
    registry.revoke(&token);
    let text = until(&handle, |t| sample(t, &closed("revoked")) == 1.0).await;
    assert_eq!(sample(&text, &closed("revoked")), 1.0, "{text}");
    assert_eq!(sample(&text, open), 0.0, "{text}");
    drop(second);
    proxy.shutdown().await;
}
