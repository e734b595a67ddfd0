//! Field-level checks of zk-dump's NDJSON contract that apply to every
//! capture of the harness's own workloads.

use crate::jute;
use serde_json::Value;

/// The opcode a request type must carry (None: no opcode, e.g. ConnectRequest).
pub fn opcode_of(ty: &str) -> Option<i32> {
    use jute::op;
    let all = [
        op::CREATE,
        op::DELETE,
        op::EXISTS,
        op::GET_DATA,
        op::SET_DATA,
        op::GET_ACL,
        op::SET_ACL,
        op::GET_CHILDREN,
        op::SYNC,
        op::PING,
        op::GET_CHILDREN2,
        op::CHECK,
        op::MULTI,
        op::CREATE2,
        op::RECONFIG,
        op::CREATE_CONTAINER,
        op::CREATE_TTL,
        op::AUTH,
        op::SET_WATCHES,
        op::CLOSE_SESSION,
    ];
    all.into_iter().find(|o| jute::request_name(*o) == ty)
}

/// Parses a "0x..." session string.
pub fn parse_session(s: &str) -> Option<u64> {
    u64::from_str_radix(s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?, 16).ok()
}

/// Checks that hold for every object of a capture whose server is
/// `server` ("ip:port") and whose replies are all paired (the capture saw
/// every request): the contract's common fields, opcodes matching types,
/// reply headers, latency on paired replies, watch-event fields.
/// Returns the problems found (empty: all good).
pub fn common_field_problems(events: &[Value], server: &str) -> Vec<String> {
    let mut p = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let ty = e.get("type").and_then(Value::as_str).unwrap_or("");
        let kind = e.get("kind").and_then(Value::as_str).unwrap_or("");
        let mut bad = |m: String| p.push(format!("#{i} {ty}: {m} in {e}"));
        if !e.get("ts").is_some_and(Value::is_f64) && !e.get("ts").is_some_and(Value::is_u64) {
            bad("ts is not a number".into());
        }
        if e.get("server").and_then(Value::as_str) != Some(server) {
            bad(format!("server is not {server}"));
        }
        if e.get("client").and_then(Value::as_str).is_none() {
            bad("no client".into());
        }
        match kind {
            "request" => {
                if let Some(op) = opcode_of(ty) {
                    if e.get("opcode").and_then(Value::as_i64) != Some(op as i64) {
                        bad(format!("opcode is not {op}"));
                    }
                    if e.get("xid").and_then(Value::as_i64).is_none() {
                        bad("no xid".into());
                    }
                } else if ty != "ConnectRequest" {
                    bad("unexpected request type".into());
                }
                if ty == "ConnectRequest" && !e.get("reconnect").is_some_and(Value::is_boolean) {
                    bad("ConnectRequest without boolean reconnect".into());
                }
            }
            "reply" => {
                if ty != "ConnectResponse" {
                    if e.get("xid").and_then(Value::as_i64).is_none() {
                        bad("no xid".into());
                    }
                    if e.get("zxid").and_then(Value::as_i64).is_none() {
                        bad("no zxid".into());
                    }
                    if e.get("err").and_then(Value::as_str).is_none() {
                        bad("no err".into());
                    }
                    if e.get("latency_us")
                        .and_then(Value::as_f64)
                        .is_none_or(|l| l < 0.0)
                    {
                        bad("paired reply without latency_us >= 0".into());
                    }
                } else if e
                    .get("session")
                    .and_then(Value::as_str)
                    .and_then(parse_session)
                    .is_none()
                {
                    bad("ConnectResponse without a 0x session".into());
                }
            }
            "event" => {
                if ty != "WatchEvent" {
                    bad("event kind but not WatchEvent".into());
                }
                if e.get("xid").and_then(Value::as_i64) != Some(-1) {
                    bad("watch event xid is not -1".into());
                }
                if e.get("event_type").and_then(Value::as_str).is_none() {
                    bad("no event_type".into());
                }
                if e.get("state").and_then(Value::as_str) != Some("SyncConnected") {
                    bad("state is not SyncConnected".into());
                }
                if e.get("path").and_then(Value::as_str).is_none() {
                    bad("no path".into());
                }
            }
            "4lw" => {
                if !matches!(ty, "FourLetterWord" | "FourLetterReply") {
                    bad("4lw kind with another type".into());
                }
                if ty == "FourLetterWord" && e.get("word").and_then(Value::as_str).is_none() {
                    bad("no word".into());
                }
            }
            other => bad(format!("unknown kind {other:?}")),
        }
    }
    p
}

#[track_caller]
pub fn assert_common_fields(events: &[Value], server: &str) {
    let p = common_field_problems(events, server);
    assert!(
        p.is_empty(),
        "{} NDJSON contract problems:\n  {}",
        p.len(),
        p.iter().take(40).cloned().collect::<Vec<_>>().join("\n  ")
    );
}

/// Number of requests of `ty` on `path` whose `watch` is `watch`.
pub fn count_watch(events: &[Value], ty: &str, path: &str, watch: bool) -> usize {
    events
        .iter()
        .filter(|e| {
            e.get("type").and_then(Value::as_str) == Some(ty)
                && e.get("kind").and_then(Value::as_str) == Some("request")
                && e.get("path").and_then(Value::as_str) == Some(path)
                && e.get("watch").and_then(Value::as_bool) == Some(watch)
        })
        .count()
}
