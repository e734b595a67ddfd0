//! Compliance evaluation: one znode's observed state against its spec.
//!
//! Pure functions, no I/O: [`crate::monitor`] reads the znode and builds an
//! [`Observation`]; [`evaluate`] turns it into a [`Compliance`] with a
//! message a human can act on ("2 children is less than minimum 3", the
//! older monitor's wording).

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::config::PathSpec;

/// Compliance state of one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum State {
    /// In spec.
    #[serde(rename = "OK")]
    Ok,
    /// Out of spec.
    Error,
    /// Not known: not read yet, unreadable, disconnected, or nothing to check.
    Unknown,
}

impl State {
    /// The name used in `/status` and in notifications.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "OK",
            State::Error => "Error",
            State::Unknown => "Unknown",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state with the reason for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Compliance {
    /// The state.
    pub state: State,
    /// Why, in words.
    pub message: String,
}

impl Compliance {
    /// A compliance in state `state` with message `message`.
    pub fn new(state: State, message: impl Into<String>) -> Self {
        Compliance {
            state,
            message: message.into(),
        }
    }

    /// The state before the first read.
    pub fn not_read() -> Self {
        Compliance::new(State::Unknown, "Not read from ZooKeeper yet.")
    }
}

/// What was read from ZooKeeper for one path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observation {
    /// Whether the znode exists.
    pub exists: bool,
    /// Number of children, when read.
    pub children: Option<u64>,
    /// The data, when read.
    pub data: Option<Vec<u8>>,
    /// Last modification time (ms since the Unix epoch), when read.
    pub mtime_ms: Option<i64>,
}

/// Evaluates `obs` against `spec` at wall-clock time `now_ms`.
pub fn evaluate(spec: &PathSpec, obs: &Observation, now_ms: i64) -> Compliance {
    if !spec.has_checks() {
        return Compliance::new(State::Unknown, "No checks are configured for this path.");
    }
    let mut errors: Vec<String> = Vec::new();
    if !obs.exists {
        match spec.exists {
            Some(false) => return Compliance::new(State::Ok, "Path does not exist, as required."),
            Some(true) => errors.push("path does not exist".into()),
            None => {}
        }
        if let Some(min) = spec.children.and_then(|c| c.min)
            && min > 0
        {
            errors.push(format!(
                "0 children is less than minimum {min} (path does not exist)"
            ));
        }
        if (spec.data.is_some() || spec.stale_after.is_some()) && spec.exists != Some(true) {
            errors.push("path does not exist, so its data cannot be checked".into());
        }
        return finish(errors);
    }
    if spec.exists == Some(false) {
        errors.push("path exists but must not".into());
    }
    if let (Some(c), Some(n)) = (spec.children, obs.children) {
        if let Some(min) = c.min
            && n < min
        {
            errors.push(format!("{n} children is less than minimum {min}"));
        }
        if let Some(max) = c.max
            && n > max
        {
            errors.push(format!("{n} children is more than maximum {max}"));
        }
    }
    if let (Some(d), Some(data)) = (&spec.data, &obs.data) {
        if let Some(max) = d.max_bytes
            && data.len() as u64 > max
        {
            errors.push(format!(
                "data is {} bytes, more than maximum {max}",
                data.len()
            ));
        }
        if let Some(re) = &d.matches {
            let text = String::from_utf8_lossy(data);
            if !re.is_match(&text) {
                errors.push(format!("data does not match /{}/", re.as_str()));
            }
        }
    }
    if let (Some(stale), Some(mtime)) = (spec.stale_after, obs.mtime_ms) {
        let age = Duration::from_millis(now_ms.saturating_sub(mtime).max(0) as u64);
        if age > stale {
            errors.push(format!(
                "data not modified for {} (more than {})",
                humantime::format_duration(Duration::from_secs(age.as_secs())),
                humantime::format_duration(stale)
            ));
        }
    }
    finish(errors)
}

fn finish(errors: Vec<String>) -> Compliance {
    if errors.is_empty() {
        Compliance::new(State::Ok, "All checks pass.")
    } else {
        Compliance::new(State::Error, errors.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn spec(yaml: &str) -> PathSpec {
        let c = parse(&format!("/p:\n{yaml}"), "t").unwrap();
        c.paths["/p"].clone()
    }

    fn node(children: u64) -> Observation {
        Observation {
            exists: true,
            children: Some(children),
            data: Some(Vec::new()),
            mtime_ms: Some(0),
        }
    }

    #[test]
    fn minimum_children_uses_the_older_wording() {
        let s = spec("  children: 3\n");
        let c = evaluate(&s, &node(2), 0);
        assert_eq!(
            c,
            Compliance::new(State::Error, "2 children is less than minimum 3")
        );
        assert_eq!(evaluate(&s, &node(3), 0).state, State::Ok);
    }

    #[test]
    fn maximum_children() {
        let s = spec("  children: {max: 1}\n");
        assert_eq!(
            evaluate(&s, &node(2), 0).message,
            "2 children is more than maximum 1"
        );
        assert_eq!(evaluate(&s, &node(0), 0).state, State::Ok);
    }

    #[test]
    fn missing_paths() {
        let missing = Observation::default();
        assert_eq!(
            evaluate(&spec("  children: 0\n"), &missing, 0).state,
            State::Ok
        );
        assert_eq!(
            evaluate(&spec("  children: 1\n"), &missing, 0).message,
            "0 children is less than minimum 1 (path does not exist)"
        );
        assert_eq!(
            evaluate(&spec("  exists: true\n"), &missing, 0).state,
            State::Error
        );
        assert_eq!(
            evaluate(&spec("  exists: no\n"), &missing, 0).state,
            State::Ok
        );
        assert_eq!(
            evaluate(&spec("  exists: no\n"), &node(0), 0).state,
            State::Error
        );
        assert_eq!(
            evaluate(&spec("  data: {max_bytes: 1}\n"), &missing, 0).state,
            State::Error
        );
    }

    #[test]
    fn data_checks() {
        let s = spec("  data: {matches: '^up$', max_bytes: 4}\n");
        let mut o = node(0);
        o.data = Some(b"up".to_vec());
        assert_eq!(evaluate(&s, &o, 0).state, State::Ok);
        o.data = Some(b"down!".to_vec());
        let c = evaluate(&s, &o, 0);
        assert_eq!(c.state, State::Error);
        assert!(c.message.contains("5 bytes, more than maximum 4"), "{c:?}");
        assert!(c.message.contains("does not match /^up$/"), "{c:?}");
    }

    #[test]
    fn staleness() {
        let s = spec("  stale_after: 60s\n");
        let mut o = node(0);
        o.mtime_ms = Some(1_000_000);
        assert_eq!(evaluate(&s, &o, 1_000_000 + 59_000).state, State::Ok);
        let c = evaluate(&s, &o, 1_000_000 + 61_000);
        assert_eq!(c.state, State::Error);
        assert!(c.message.contains("1m 1s"), "{c:?}");
    }

    #[test]
    fn no_checks_is_unknown_like_the_older_monitor() {
        assert_eq!(evaluate(&spec(""), &node(0), 0).state, State::Unknown);
    }
}
