//! One client connection: read the head, decide, connect, relay.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use base64::Engine as _;
use mc_core::{AuditLog, Clock, Flag, FlagStore};
use mc_egress::{Blocked, DenyReason, Destination, Host, Mode, Verdict, decide};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::ProxyConfig;
use crate::registry::{Registered, TaskRegistry};
use crate::resolve::Resolve;

pub(crate) struct Shared {
    pub(crate) registry: Arc<TaskRegistry>,
    pub(crate) flags: Arc<dyn FlagStore>,
    pub(crate) audit: Arc<dyn AuditLog>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) resolver: Arc<dyn Resolve>,
    pub(crate) config: ProxyConfig,
}

/// A request head, parsed.
struct Head {
    method: String,
    target: String,
    /// Header (name, value) pairs as sent.
    headers: Vec<(String, Vec<u8>)>,
    /// Bytes after the head that were already read (a body's start, or TLS bytes).
    rest: Vec<u8>,
}

enum HeadError {
    /// The client closed or timed out before a whole head.
    Gone,
    /// Longer than allowed.
    TooLarge,
    /// Not HTTP/1.x.
    Malformed,
}

async fn read_head(stream: &mut TcpStream, max: usize) -> Result<Head, HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|_| HeadError::Gone)?;
        if n == 0 {
            return Err(HeadError::Gone);
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let head = Head {
                    method: req.method.unwrap_or("").to_string(),
                    target: req.path.unwrap_or("").to_string(),
                    headers: req
                        .headers
                        .iter()
                        .map(|h| (h.name.to_string(), h.value.to_vec()))
                        .collect(),
                    rest: buf[len..].to_vec(),
                };
                return Ok(head);
            }
            Ok(httparse::Status::Partial) if buf.len() > max => return Err(HeadError::TooLarge),
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
            Err(_) => return Err(HeadError::Malformed),
        }
    }
}

fn header<'a>(head: &'a Head, name: &str) -> Option<&'a [u8]> {
    head.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

/// The token from `Proxy-Authorization: Basic base64(user:token)`.
fn presented_token(head: &Head) -> Option<String> {
    let v = std::str::from_utf8(header(head, "proxy-authorization")?).ok()?;
    let (scheme, b64) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (_, token) = s.split_once(':')?;
    Some(token.to_string())
}

async fn respond(stream: &mut TcpStream, status: &str, extra: &[(&str, &str)], body: &str) {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        out.push_str(k);
        out.push_str(": ");
        out.push_str(v);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.push_str(body);
    let _ = stream.write_all(out.as_bytes()).await;
    let _ = stream.shutdown().await;
    // Read (and drop) what the client still sends for a moment, so that closing with
    // unread bytes does not reset the connection before it reads the response.
    let mut sink = [0u8; 4096];
    let drain = async {
        let mut left = 64 * 1024usize;
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_millis(500), drain).await;
}

pub(crate) async fn serve(shared: Arc<Shared>, mut client: TcpStream, peer: SocketAddr) {
    let head = match tokio::time::timeout(
        shared.config.head_timeout,
        read_head(&mut client, shared.config.max_head_bytes),
    )
    .await
    {
        Ok(Ok(h)) => h,
        Ok(Err(HeadError::TooLarge)) => {
            respond(
                &mut client,
                "431 Request Header Fields Too Large",
                &[],
                "request head too large\n",
            )
            .await;
            return;
        }
        Ok(Err(HeadError::Malformed)) => {
            respond(
                &mut client,
                "400 Bad Request",
                &[],
                "not an HTTP/1.1 proxy request\n",
            )
            .await;
            return;
        }
        Ok(Err(HeadError::Gone)) | Err(_) => return,
    };
    let Some(reg) = presented_token(&head).and_then(|t| shared.registry.lookup(&t)) else {
        tracing::info!(%peer, "egress proxy: request without valid task credentials");
        mc_egress::count_block(Mode::Enforce, &DenyReason::UnknownTask);
        respond(
            &mut client,
            "407 Proxy Authentication Required",
            &[("Proxy-Authenticate", "Basic realm=\"mc-egress\"")],
            "task credentials required\n",
        )
        .await;
        return;
    };
    let mode = match shared
        .flags
        .is_enabled(&reg.who.tenant, Flag::EgressPolicyEnforce)
        .await
    {
        Ok(on) => Mode::from_flag(on),
        Err(e) => {
            // Fail closed: an unreadable flag enforces.
            tracing::warn!(error = %e, tenant = %reg.who.tenant, "egress flag unreadable; enforcing");
            Mode::Enforce
        }
    };
    let connect = head.method == "CONNECT";
    let parsed = if connect {
        Destination::from_authority(&head.target).map(|d| (d, None))
    } else {
        Destination::from_absolute_uri(&head.target).map(|(d, p)| (d, Some(p)))
    };
    let (dest, origin_path) = match parsed {
        Ok(x) => x,
        Err(e) => {
            let verdict = Verdict::Deny(DenyReason::BadTarget(e.to_string()));
            record(&shared, &reg, &head.target, &verdict).await;
            refuse(&mut client, "400 Bad Request", &verdict).await;
            return;
        }
    };
    let target = dest.to_string();
    let verdict = decide(&reg.policy, &dest, mode);
    record(&shared, &reg, &target, &verdict).await;
    if !verdict.proceeds() {
        refuse(&mut client, "403 Forbidden", &verdict).await;
        return;
    }
    // Resolve only now: a denied name was never looked up.
    let addrs = match &dest.host {
        Host::Ip(ip) => vec![*ip],
        Host::Name(name) => {
            match tokio::time::timeout(shared.config.resolve_timeout, shared.resolver.resolve(name))
                .await
            {
                Ok(Ok(a)) if !a.is_empty() => a,
                Ok(Ok(_)) | Ok(Err(_)) | Err(_) => {
                    respond(
                        &mut client,
                        "502 Bad Gateway",
                        &[("X-MC-Egress-Reason", "unresolvable")],
                        "destination did not resolve\n",
                    )
                    .await;
                    return;
                }
            }
        }
    };
    // Every address must pass: a name that also resolves somewhere denied is denied.
    if let Some(reason) = addrs
        .iter()
        .find_map(|ip| shared.config.addresses.check(*ip).err())
    {
        let verdict = Verdict::Deny(reason);
        record(&shared, &reg, &target, &verdict).await;
        refuse(&mut client, "403 Forbidden", &verdict).await;
        return;
    }
    let Some(mut upstream) = connect_any(&shared, &addrs, dest.port).await else {
        respond(
            &mut client,
            "502 Bad Gateway",
            &[],
            "destination unreachable\n",
        )
        .await;
        return;
    };
    tracing::debug!(tenant = %reg.who.tenant, task = %reg.who.task, %target, mode = mode.as_str(), "egress allowed");
    if connect {
        if client
            .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
    } else {
        let path = origin_path.unwrap_or_else(|| "/".into());
        if upstream
            .write_all(&origin_form_head(&head, &dest, &path))
            .await
            .is_err()
        {
            return;
        }
    }
    if !head.rest.is_empty() && upstream.write_all(&head.rest).await.is_err() {
        return;
    }
    let limits = RelayLimits {
        buf: shared.config.relay_buffer.max(1024),
        idle: shared.config.idle_timeout,
        max_lifetime: shared.config.max_lifetime,
    };
    let open = metrics::gauge!(mc_core::telemetry::EGRESS_TUNNELS_OPEN.name);
    open.increment(1.0);
    let closed = relay(client, upstream, limits, reg.revoked()).await;
    open.decrement(1.0);
    metrics::counter!(mc_core::telemetry::EGRESS_TUNNELS_CLOSED.name, "reason" => closed.as_str())
        .increment(1);
    match closed {
        Closed::Done => {}
        Closed::Idle => {
            tracing::debug!(tenant = %reg.who.tenant, task = %reg.who.task, %target, "egress tunnel closed after {:?} idle", limits.idle)
        }
        Closed::Lifetime => {
            tracing::info!(tenant = %reg.who.tenant, task = %reg.who.task, %target, "egress tunnel closed at its maximum lifetime")
        }
        Closed::Revoked => {
            tracing::info!(tenant = %reg.who.tenant, task = %reg.who.task, %target, "egress tunnel closed: the task's credential was revoked")
        }
    }
}

/// How a relay may run.
#[derive(Debug, Clone, Copy)]
struct RelayLimits {
    /// Buffer per direction.
    buf: usize,
    /// Close after this long without a byte either way.
    idle: std::time::Duration,
    /// Close this long after the start, busy or not.
    max_lifetime: Option<std::time::Duration>,
}

impl Closed {
    /// The `reason` label of `mc_egress_tunnels_closed_total`.
    fn as_str(self) -> &'static str {
        match self {
            Closed::Done => "done",
            Closed::Idle => "idle",
            Closed::Lifetime => "lifetime",
            Closed::Revoked => "revoked",
        }
    }
}

/// Why a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closed {
    /// Both sides finished.
    Done,
    /// Nothing moved for the idle timeout.
    Idle,
    /// The maximum lifetime passed.
    Lifetime,
    /// The task was revoked.
    Revoked,
}

/// Copies both ways until both sides have finished (each side's end is passed on as a
/// write shutdown), nothing has moved either way for the idle timeout, the maximum
/// lifetime has passed, or `revoked` resolves.
async fn relay(
    client: TcpStream,
    upstream: TcpStream,
    limits: RelayLimits,
    revoked: impl std::future::Future<Output = ()>,
) -> Closed {
    let RelayLimits {
        buf,
        idle,
        max_lifetime,
    } = limits;
    use std::sync::atomic::{AtomicU64, Ordering};
    let start = tokio::time::Instant::now();
    let last = AtomicU64::new(0);
    let touch = || last.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
    let (cr, cw) = client.into_split();
    let (ur, uw) = upstream.into_split();
    let pump = |mut from: tokio::net::tcp::OwnedReadHalf,
                mut to: tokio::net::tcp::OwnedWriteHalf| {
        let touch = &touch;
        async move {
            let mut b = vec![0u8; buf];
            loop {
                match from.read(&mut b).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if to.write_all(&b[..n]).await.is_err() {
                            break;
                        }
                        touch();
                    }
                }
            }
            let _ = to.shutdown().await;
        }
    };
    let both = async {
        tokio::join!(pump(cr, uw), pump(ur, cw));
    };
    let watchdog = async {
        loop {
            tokio::time::sleep(idle / 4).await;
            // A pump may have stored a later time than this read of the clock.
            let quiet =
                (start.elapsed().as_millis() as u64).saturating_sub(last.load(Ordering::Relaxed));
            if quiet >= idle.as_millis() as u64 {
                break;
            }
        }
    };
    let lifetime = async {
        match max_lifetime {
            Some(d) => tokio::time::sleep_until(start + d).await,
            None => std::future::pending().await,
        }
    };
    // Both pumps (and with them the four halves) are dropped when this returns: the
    // connections close.
    tokio::select! {
        () = both => Closed::Done,
        () = watchdog => Closed::Idle,
        () = lifetime => Closed::Lifetime,
        () = revoked => Closed::Revoked,
    }
}

/// The request head sent upstream for a plain-HTTP request: origin-form target,
/// `Host` set from the checked destination (whatever the client's `Host` said), the
/// proxy's own headers removed, one request per connection.
fn origin_form_head(head: &Head, dest: &Destination, path: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(head.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    let host = dest.host.authority_form();
    out.extend_from_slice(host.as_bytes());
    if dest.port != 80 {
        out.extend_from_slice(format!(":{}", dest.port).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    for (name, value) in &head.headers {
        let skip = [
            "host",
            "proxy-authorization",
            "proxy-connection",
            "connection",
            "keep-alive",
        ]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h));
        if skip {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out
}

async fn connect_any(shared: &Shared, addrs: &[IpAddr], port: u16) -> Option<TcpStream> {
    for ip in addrs {
        let attempt = tokio::time::timeout(
            shared.config.connect_timeout,
            TcpStream::connect(SocketAddr::new(*ip, port)),
        )
        .await;
        if let Ok(Ok(s)) = attempt {
            return Some(s);
        }
    }
    None
}

async fn refuse(client: &mut TcpStream, status: &str, verdict: &Verdict) {
    let reason = verdict.reason();
    let code = reason.map_or("denied", DenyReason::code);
    let body = format!(
        "egress denied: {}\n",
        reason.map_or_else(|| "denied".to_string(), ToString::to_string)
    );
    respond(client, status, &[("X-MC-Egress-Reason", code)], &body).await;
}

/// Audits and counts a blocked (or shadow-blocked) call; nothing for an allowed one.
async fn record(shared: &Shared, reg: &Registered, target: &str, verdict: &Verdict) {
    let Some(blocked) = Blocked::from_verdict(&reg.who, target, verdict, shared.clock.now()) else {
        return;
    };
    blocked.count();
    tracing::warn!(
        tenant = %reg.who.tenant,
        execution = %reg.who.execution,
        task = %reg.who.task,
        target = %blocked.target,
        reason = blocked.reason.code(),
        mode = blocked.mode.as_str(),
        "egress blocked"
    );
    if let Err(e) = shared.audit.append(blocked.to_audit_event()).await {
        tracing::error!(error = %e, tenant = %reg.who.tenant, "egress block could not be audited");
    }
}
