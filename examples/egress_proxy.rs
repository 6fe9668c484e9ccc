//! A host running the egress proxy for one task on the in-memory defaults: the task's
//! allowed call goes through, an exfiltration attempt is refused and audited, and the
//! execution's disclosure note lists it.
//!
//! `cargo run -p mc-examples --example egress_proxy`

use std::net::IpAddr;
use std::sync::Arc;

use mc_core::*;
use mc_egress::{AddressPolicy, TaskEgress, TaskRef, WorkflowEgress, write_disclosure_note};
use mc_egress_proxy::{EgressProxy, ProxyConfig, StaticResolver, TaskRegistry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // An upstream "api.example.com" on loopback that answers one line.
    let upstream = TcpListener::bind("127.0.0.1:0").await?;
    let port = upstream.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = upstream.accept().await {
            let _ = s.write_all(b"hello from api.example.com\n").await;
        }
    });

    let manifest = WorkflowEgress::from_yaml(&format!(
        "tasks:\n  - id: fetch\n    egress:\n      allow:\n        - host: api.example.com\n          ports: [{port}]\n"
    ))?;
    let tenant = TenantId::new("acme")?;
    let execution = ExecutionId::new("exec_42")?;
    let flags = Arc::new(MemoryFlagStore::new());
    flags.set(&tenant, Flag::EgressPolicyEnforce, true).await?;
    let audit = Arc::new(MemoryStore::new());
    let registry = Arc::new(TaskRegistry::new());
    let local: IpAddr = "127.0.0.1".parse()?;
    let proxy = EgressProxy::new(
        registry.clone(),
        flags,
        audit.clone(),
        Arc::new(SystemClock),
        Arc::new(
            StaticResolver::new()
                .with("api.example.com", &[local])
                .with("attacker.example", &[local]),
        ),
    )
    .with_config(ProxyConfig {
        // The example's upstream is on loopback; open exactly that address.
        addresses: AddressPolicy::new().allow_range("127.0.0.1/32".parse()?),
        ..ProxyConfig::default()
    })
    .bind("127.0.0.1:0".parse()?)
    .await?;
    let token = registry.register(
        TaskRef {
            tenant: tenant.clone(),
            execution: execution.clone(),
            task: mc_egress::TaskId::new("fetch")?,
        },
        manifest
            .task("fetch")
            .cloned()
            .unwrap_or_else(TaskEgress::default),
    )?;
    println!(
        "task proxy: {}",
        token
            .proxy_url(proxy.local_addr())
            .replace(token.expose(), "<token>")
    );

    let auth = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("task:{}", token.expose()))
    };
    for target in [
        format!("api.example.com:{port}"),
        "attacker.example:443".to_string(),
    ] {
        let mut s = TcpStream::connect(proxy.local_addr()).await?;
        s.write_all(
            format!("CONNECT {target} HTTP/1.1\r\nProxy-Authorization: Basic {auth}\r\n\r\n")
                .as_bytes(),
        )
        .await?;
        let mut buf = vec![0u8; 1024];
        let mut got = Vec::new();
        while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
            let n = s.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&got).to_string();
        let (head, mut rest) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
        let status = head.lines().next().unwrap_or("");
        println!("CONNECT {target}: {status}");
        if status.contains(" 200 ") {
            let more;
            if rest.is_empty() {
                let n = s.read(&mut buf).await?;
                more = String::from_utf8_lossy(&buf[..n]).to_string();
                rest = &more;
            }
            print!("  upstream says: {rest}");
        }
    }
    registry.revoke(&token);
    let blobs = MemoryBlobStore::new(Arc::new(SystemClock));
    if let Some((key, note)) = write_disclosure_note(
        audit.as_ref(),
        &blobs,
        &tenant,
        &execution,
        SystemClock.now(),
    )
    .await?
    {
        println!(
            "disclosure note {key}: {} refused, reasons {:?}",
            note.refused, note.by_reason
        );
    }
    proxy.shutdown().await;
    Ok(())
}
