//! Egress proxy overhead on loopback, against the same work without the proxy,
//! measured in the same run:
//!
//! 1. the allowlist decision alone (a 50-rule policy, mixed allowed and denied
//!    destinations), ns per decision;
//! 2. a call's set-up: connect, `CONNECT` (credential lookup, flag read, allowlist,
//!    resolution, address check, upstream connect) and one request/response
//!    round-trip through the tunnel, against connect + the round-trip directly —
//!    p50/p95/p99 of `MC_BENCH_CALLS` sequential calls (default 2,000);
//! 3. tunnel throughput: `MC_BENCH_MB` MiB (default 1,024) through the tunnel against
//!    directly, and the ratio (`MC_BENCH_RELAY_KB` sets the relay buffer, default 64).
//!
//! `cargo bench -p mc-egress-proxy --bench proxy`

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mc_core::{ExecutionId, Flag, FlagStore, MemoryFlagStore, MemoryStore, SystemClock, TenantId};
use mc_egress::{AddressPolicy, Destination, Mode, TaskEgress, TaskId, TaskRef, decide};
use mc_egress_proxy::{EgressProxy, ProxyConfig, StaticResolver, TaskRegistry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// An upstream that answers each 8-byte request with 8 bytes, or sinks bulk data
/// and answers with the byte count when the client shuts down its side.
async fn upstream() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            s.set_nodelay(true).ok();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 256 * 1024];
                let mut total = 0u64;
                loop {
                    let n = match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    total += n as u64;
                    if buf[..n].starts_with(b"PING") && n == 8 {
                        let _ = s.write_all(b"PONG0000").await;
                        total = 0;
                    }
                }
                let _ = s.write_all(&total.to_le_bytes()).await;
            });
        }
    });
    addr
}

fn decisions() {
    let mut rules: Vec<(String, Vec<u16>)> = (0..48)
        .map(|i| (format!("svc{i}.internal.example.com"), vec![443, 8443]))
        .collect();
    rules.push(("*.storage.example.net".into(), vec![443]));
    rules.push(("api.example.com".into(), vec![443]));
    let policy =
        TaskEgress::from_rules(rules.iter().map(|(h, p)| (h.as_str(), p.clone()))).unwrap();
    let dests: Vec<Destination> = [
        "api.example.com:443",
        "svc17.internal.example.com:8443",
        "bucket.storage.example.net:443",
        "evil.example:443",
        "api.example.com:25",
        "c2VjcmV0.attacker.example:53",
    ]
    .iter()
    .map(|s| Destination::from_authority(s).unwrap())
    .collect();
    let n = 2_000_000usize;
    let mut allowed = 0usize;
    let t = Instant::now();
    for i in 0..n {
        if decide(&policy, &dests[i % dests.len()], Mode::Enforce).proceeds() {
            allowed += 1;
        }
    }
    let per = t.elapsed().as_secs_f64() * 1e9 / n as f64;
    let t = Instant::now();
    for i in 0..n / 10 {
        let _ = Destination::from_authority(if i % 2 == 0 {
            "svc17.internal.example.com:8443"
        } else {
            "c2VjcmV0.attacker.example:53"
        });
    }
    let parse = t.elapsed().as_secs_f64() * 1e9 / (n / 10) as f64;
    println!(
        "decision (50-rule policy, 6 destinations, {allowed} of {n} allowed): {per:.0} ns each; parsing a CONNECT target: {parse:.0} ns"
    );
}

#[tokio::main]
async fn main() {
    decisions();
    let calls = env("MC_BENCH_CALLS", 2000);
    let mb = env("MC_BENCH_MB", 1024);
    let up = upstream().await;
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
        relay_buffer: env("MC_BENCH_RELAY_KB", 64) * 1024,
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
            TaskEgress::from_rules([("api.example.com", vec![up.port()])]).unwrap(),
        )
        .unwrap();
    let auth = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("task:{}", token.expose()))
    };
    let connect_head = format!(
        "CONNECT api.example.com:{} HTTP/1.1\r\nProxy-Authorization: Basic {auth}\r\n\r\n",
        up.port()
    );
    let proxy_addr = proxy.local_addr();

    let via_proxy = || {
        let head = connect_head.clone();
        async move {
            let mut s = TcpStream::connect(proxy_addr).await.unwrap();
            s.set_nodelay(true).unwrap();
            s.write_all(head.as_bytes()).await.unwrap();
            let mut resp = [0u8; 39];
            s.read_exact(&mut resp).await.unwrap();
            assert!(
                resp.starts_with(b"HTTP/1.1 200"),
                "{:?}",
                String::from_utf8_lossy(&resp)
            );
            s
        }
    };
    let direct = || async move {
        let s = TcpStream::connect(up).await.unwrap();
        s.set_nodelay(true).unwrap();
        s
    };

    // 2. Set-up and one round-trip, alternating direct and proxied calls.
    let mut d_times = Vec::with_capacity(calls);
    let mut p_times = Vec::with_capacity(calls);
    for _ in 0..calls {
        for proxied in [false, true] {
            let t = Instant::now();
            let mut s = if proxied {
                via_proxy().await
            } else {
                direct().await
            };
            s.write_all(b"PING0000").await.unwrap();
            let mut r = [0u8; 8];
            s.read_exact(&mut r).await.unwrap();
            assert_eq!(&r, b"PONG0000");
            let e = t.elapsed();
            if proxied {
                p_times.push(e);
            } else {
                d_times.push(e);
            }
        }
    }
    d_times.sort();
    p_times.sort();
    println!(
        "call set-up + one round-trip, {calls} each: direct p50 {:.0} µs p95 {:.0} µs p99 {:.0} µs; through the proxy p50 {:.0} µs p95 {:.0} µs p99 {:.0} µs; added p50 {:.0} µs p95 {:.0} µs",
        us(pct(&d_times, 0.5)),
        us(pct(&d_times, 0.95)),
        us(pct(&d_times, 0.99)),
        us(pct(&p_times, 0.5)),
        us(pct(&p_times, 0.95)),
        us(pct(&p_times, 0.99)),
        us(pct(&p_times, 0.5)) - us(pct(&d_times, 0.5)),
        us(pct(&p_times, 0.95)) - us(pct(&d_times, 0.95)),
    );

    // 3. Throughput.
    let chunk = vec![0x5au8; 256 * 1024];
    let total = (mb * 1024 * 1024) as u64;
    let mut rates = [0f64; 2];
    for round in 0..2 {
        for proxied in [false, true] {
            let mut s = if proxied {
                via_proxy().await
            } else {
                direct().await
            };
            let t = Instant::now();
            let mut sent = 0u64;
            while sent < total {
                s.write_all(&chunk).await.unwrap();
                sent += chunk.len() as u64;
            }
            s.shutdown().await.unwrap();
            let mut n = [0u8; 8];
            s.read_exact(&mut n).await.unwrap();
            assert_eq!(u64::from_le_bytes(n), sent);
            let rate = sent as f64 / 1048576.0 / t.elapsed().as_secs_f64();
            if round == 1 {
                rates[usize::from(proxied)] = rate;
            }
        }
    }
    println!(
        "tunnel throughput, {mb} MiB (second of two rounds): direct {:.0} MiB/s, through the proxy {:.0} MiB/s = {:.2} of direct",
        rates[0],
        rates[1],
        rates[1] / rates[0]
    );
    proxy.shutdown().await;
}
