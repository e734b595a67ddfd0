//! The configuration file: which znodes to watch, what "in spec" means for
//! each, and whom to tell when one goes out of spec.
//!
//! The format is a superset of the older Python zk_monitor's YAML, so its
//! files load unchanged:
//!
//! ```yaml
//! /services/foo/min_1:
//!   alerter:
//!     email: you@home.com        # string (comma/space separated) or list
//!   children: 1                  # minimum children
//!   cancel_timeout: 10           # grace seconds before an alert fires
//! ```
//!
//! New keys per path: `children: {min, max}`, `exists`, `data: {matches,
//! max_bytes}`, `stale_after`, `repeat_after`, and the `slack` and `webhook`
//! alerters. One optional top-level `settings` section (every other
//! top-level key is a znode path and starts with `/`) holds SMTP and
//! delivery settings.
//!
//! Python compatibility details: PyYAML reads YAML 1.1, so `yes`/`no`/`on`/
//! `off` are accepted wherever a boolean is expected; a duplicated path key
//! keeps the last value (with a warning); `cancel_timeout` accepts a number,
//! a numeric string, or a duration such as `30s`; an unknown alerter (e.g.
//! `hipchat`) is a warning, not an error.
//!
//! Errors name the file, the line and column, and the key path, e.g.
//! `monitor.yaml:3:13: key /services/foo > children: invalid type: ...`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Names of the alerters this build can deliver to.
pub const KNOWN_ALERTERS: &[&str] = &["email", "slack", "webhook"];

/// A loaded and validated configuration.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// The file it came from (as given on the command line), for messages.
    pub source: String,
    /// Watched znode paths and their specs, sorted by path.
    pub paths: BTreeMap<String, PathSpec>,
    /// The optional top-level `settings` section.
    pub settings: Settings,
    /// Problems that do not stop loading (unknown alerters, duplicate keys).
    pub warnings: Vec<ConfigWarning>,
}

/// What "in spec" means for one znode, and how to alert about it.
#[derive(Clone, Debug, Default)]
pub struct PathSpec {
    /// Bounds on the number of children.
    pub children: Option<ChildrenSpec>,
    /// `true`: the znode must exist; `false`: it must not.
    pub exists: Option<bool>,
    /// Checks on the znode's data.
    pub data: Option<DataSpec>,
    /// The data must have been modified within this long.
    pub stale_after: Option<Duration>,
    /// Grace period: an out-of-spec state must last this long to alert.
    pub cancel_timeout: Duration,
    /// Re-send the alert this often while the path stays out of spec.
    pub repeat_after: Option<Duration>,
    /// Where alerts for this path go.
    pub alerter: Alerters,
}

impl PathSpec {
    /// Whether the spec checks anything at all (a bare path is only shown).
    pub fn has_checks(&self) -> bool {
        self.children.is_some()
            || self.exists.is_some()
            || self.data.is_some()
            || self.stale_after.is_some()
    }
}

/// Bounds on the number of children of a znode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChildrenSpec {
    /// Minimum number of children (`children: N` sets this).
    pub min: Option<u64>,
    /// Maximum number of children.
    pub max: Option<u64>,
}

/// Checks on a znode's data.
#[derive(Clone, Debug, Default)]
pub struct DataSpec {
    /// A regular expression the data (as UTF-8, lossily) must match
    /// somewhere; anchor it with `^...$` to match the whole value.
    pub matches: Option<Regex>,
    /// The largest allowed data size in bytes.
    pub max_bytes: Option<u64>,
}

/// The alerters configured for one path.
#[derive(Clone, Debug, Default)]
pub struct Alerters {
    /// Email recipients.
    pub email: Vec<String>,
    /// A Slack incoming webhook.
    pub slack: Option<SlackSpec>,
    /// Generic webhooks receiving Alertmanager-compatible JSON.
    pub webhooks: Vec<WebhookSpec>,
    /// Free text added to every notification (the Python docs' `body`).
    pub body: Option<String>,
    /// Alerter names that were configured but are not known (ignored).
    pub unknown: Vec<String>,
    /// A Slack section in the old token/channel form (ignored).
    pub legacy_slack: bool,
}

impl Alerters {
    /// Whether any alerter here can actually deliver.
    pub fn is_empty(&self) -> bool {
        self.email.is_empty() && self.slack.is_none() && self.webhooks.is_empty()
    }

    /// The names of the deliverable alerters, e.g. `["email", "webhook"]`.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut kinds = Vec::new();
        if !self.email.is_empty() {
            kinds.push("email");
        }
        if self.slack.is_some() {
            kinds.push("slack");
        }
        if !self.webhooks.is_empty() {
            kinds.push("webhook");
        }
        kinds
    }
}

/// A Slack incoming webhook.
#[derive(Clone, Debug, Default)]
pub struct SlackSpec {
    /// The incoming-webhook URL.
    pub webhook_url: String,
    /// Channel override.
    pub channel: Option<String>,
    /// User name override.
    pub username: Option<String>,
    /// Icon override, e.g. `:zap:`.
    pub icon_emoji: Option<String>,
}

/// A generic webhook, sent an Alertmanager-compatible JSON payload.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    /// Where to POST.
    pub url: String,
    /// Extra HTTP headers (e.g. `Authorization`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Whether to send resolved notices too (default true).
    #[serde(default = "yes")]
    pub send_resolved: bool,
}

fn yes() -> bool {
    true
}

/// The top-level `settings` section.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// How to send email.
    pub smtp: SmtpSettings,
    /// Retries and timeouts for every alerter.
    pub delivery: DeliverySettings,
}

/// How STARTTLS is used on the SMTP connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartTls {
    /// Plain SMTP only.
    Off,
    /// STARTTLS when the server offers it (the default).
    #[default]
    Opportunistic,
    /// STARTTLS or fail.
    Required,
}

/// SMTP settings. Credentials come from the environment
/// (`ZK_MONITOR_SMTP_USERNAME`, `ZK_MONITOR_SMTP_PASSWORD`) or from
/// `password_file`, never from the command line.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpSettings {
    /// SMTP relay host.
    pub host: String,
    /// Port (default 25).
    pub port: u16,
    /// STARTTLS mode.
    pub starttls: StartTls,
    /// The From: address.
    pub from: String,
    /// User name for SMTP AUTH (the environment variable wins).
    pub username: Option<String>,
    /// A file holding the SMTP password (first line).
    pub password_file: Option<PathBuf>,
    /// Extra CA certificate (PEM) to trust for STARTTLS.
    pub ca_file: Option<PathBuf>,
    /// Timeout for one delivery attempt.
    pub timeout: Secs,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        SmtpSettings {
            host: "localhost".into(),
            port: 25,
            starttls: StartTls::Opportunistic,
            from: "zk-monitor@localhost".into(),
            username: None,
            password_file: None,
            ca_file: None,
            timeout: Secs(Duration::from_secs(10)),
        }
    }
}

/// Delivery retries and timeouts, shared by all alerters.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliverySettings {
    /// Retries after the first failed attempt.
    pub retries: u32,
    /// Wait before the first retry; doubles on each further retry.
    pub backoff: Secs,
    /// Cap on the wait between retries.
    pub max_backoff: Secs,
    /// Timeout for one HTTP request.
    pub timeout: Secs,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            retries: 3,
            backoff: Secs(Duration::from_secs(1)),
            max_backoff: Secs(Duration::from_secs(30)),
            timeout: Secs(Duration::from_secs(10)),
        }
    }
}

/// A duration written as seconds (`10`, `2.5`, `"10"`) or with units
/// (`30s`, `5m`, `1h 30m`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Secs(pub Duration);

/// A config error, naming where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// The key path, e.g. `/services/foo > children`.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_located(
            f,
            &self.file,
            self.line,
            self.column,
            self.key.as_deref(),
            &self.message,
        )
    }
}

impl std::error::Error for ConfigError {}

/// A problem that does not stop the config from loading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The file.
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The key path.
    pub key: Option<String>,
    /// What was ignored and why.
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_located(
            f,
            &self.file,
            self.line,
            None,
            self.key.as_deref(),
            &self.message,
        )
    }
}

fn write_located(
    f: &mut fmt::Formatter<'_>,
    file: &str,
    line: Option<usize>,
    column: Option<usize>,
    key: Option<&str>,
    message: &str,
) -> fmt::Result {
    write!(f, "{file}")?;
    if let Some(line) = line {
        write!(f, ":{line}")?;
        if let Some(column) = column {
            write!(f, ":{column}")?;
        }
    }
    if let Some(key) = key {
        write!(f, ": key {key}")?;
    }
    write!(f, ": {message}")
}

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let source = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: source.clone(),
        line: None,
        column: None,
        key: None,
        message: format!("cannot read the file: {e}"),
    })?;
    parse(&text, &source)
}

/// Parses and validates config text; `source` names it in messages.
pub fn parse(text: &str, source: &str) -> Result<Config, ConfigError> {
    let deserializer = serde_norway::Deserializer::from_str(text);
    let root: Option<RawRoot> = match serde_path_to_error::deserialize(deserializer) {
        Ok(root) => root,
        Err(err) => return Err(yaml_error(err, text, source)),
    };
    let root = root.unwrap_or_default();
    let mut config = Config {
        source: source.to_string(),
        paths: BTreeMap::new(),
        settings: root.settings.unwrap_or_default(),
        warnings: Vec::new(),
    };
    let from = &config.settings.smtp.from;
    if lettre::message::Mailbox::from_str(from).is_err() {
        let at = locate(text, &["settings", "smtp", "from"]);
        return Err(ConfigError {
            file: source.into(),
            line: at.map(|a| a.0),
            column: at.map(|a| a.1),
            key: Some("settings > smtp > from".into()),
            message: format!("`{from}` is not an email address"),
        });
    }
    for (path, spec, duplicate) in root.paths {
        if duplicate {
            config.warnings.push(ConfigWarning {
                file: source.into(),
                line: locate(text, &[&path]).map(|a| a.0),
                key: Some(path.clone()),
                message: "the path is listed more than once; the last entry wins".into(),
            });
        }
        if let Err((subkey, message)) = check_spec(&spec) {
            let at = locate(text, &[&path, subkey]).or_else(|| locate(text, &[&path]));
            return Err(ConfigError {
                file: source.into(),
                line: at.map(|a| a.0),
                column: at.map(|a| a.1),
                key: Some(format!("{path} > {subkey}")),
                message,
            });
        }
        for name in &spec.alerter.unknown {
            config.warnings.push(ConfigWarning {
                file: source.into(),
                line: locate(text, &[&path, "alerter", name]).map(|a| a.0),
                key: Some(format!("{path} > alerter > {name}")),
                message: format!(
                    "unknown alerter `{name}` is ignored (known alerters: {})",
                    KNOWN_ALERTERS.join(", ")
                ),
            });
        }
        if spec.alerter.legacy_slack {
            config.warnings.push(ConfigWarning {
                file: source.into(),
                line: locate(text, &[&path, "alerter", "slack"]).map(|a| a.0),
                key: Some(format!("{path} > alerter > slack")),
                message: "the Slack token/channel form is not supported and is ignored; \
                          use `slack: {webhook_url: ...}`"
                    .into(),
            });
        }
        config.paths.insert(path, spec);
    }
    Ok(config)
}

/// Cross-field checks; returns the offending sub-key and a message.
fn check_spec(spec: &PathSpec) -> Result<(), (&'static str, String)> {
    if let Some(ChildrenSpec {
        min: Some(min),
        max: Some(max),
    }) = spec.children
        && min > max
    {
        return Err((
            "children",
            format!("minimum {min} is greater than maximum {max}"),
        ));
    }
    if spec.exists == Some(false) {
        if spec.children.is_some_and(|c| c.min.unwrap_or(0) > 0) {
            return Err((
                "exists",
                "`exists: false` contradicts a minimum number of children".into(),
            ));
        }
        if spec.data.is_some() || spec.stale_after.is_some() {
            return Err((
                "exists",
                "`exists: false` contradicts checks on the data".into(),
            ));
        }
    }
    Ok(())
}

/// Turns a deserialization error into a located [`ConfigError`].
fn yaml_error(
    err: serde_path_to_error::Error<serde_norway::Error>,
    text: &str,
    source: &str,
) -> ConfigError {
    let segments: Vec<String> = err
        .path()
        .iter()
        .filter_map(|s| match s {
            serde_path_to_error::Segment::Map { key } => Some(key.clone()),
            serde_path_to_error::Segment::Seq { index } => Some(format!("[{index}]")),
            _ => None,
        })
        .collect();
    let inner = err.into_inner();
    let location = inner.location();
    let mut message = inner.to_string();
    if let Some(loc) = &location {
        let suffix = format!(" at line {} column {}", loc.line(), loc.column());
        if let Some(stripped) = message.strip_suffix(&suffix) {
            message = stripped.to_string();
        }
    }
    // serde_norway prefixes messages with its own dotted key path; we name
    // the key separately (dots are common in znode names), so strip it.
    for n in (1..=segments.len()).rev() {
        let mut dotted = String::new();
        for seg in &segments[..n] {
            if !dotted.is_empty() && !seg.starts_with('[') {
                dotted.push('.');
            }
            dotted.push_str(seg);
        }
        if let Some(rest) = message.strip_prefix(&format!("{dotted}: ")) {
            message = rest.to_string();
            break;
        }
    }
    let is_syntax = segments.is_empty()
        || message.contains("while parsing")
        || message.contains("while scanning");
    let key = if segments.is_empty() {
        None
    } else {
        Some(
            segments
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(" > "),
        )
    };
    let (line, column) = match location {
        Some(loc) => (Some(loc.line()), Some(loc.column())),
        None => {
            let keys: Vec<&str> = segments.iter().map(String::as_str).collect();
            let at = locate(text, &keys);
            (at.map(|a| a.0), at.map(|a| a.1))
        }
    };
    ConfigError {
        file: source.into(),
        line,
        column,
        key: if is_syntax && message.contains("while") {
            None
        } else {
            key
        },
        message: if is_syntax && message.contains("while") {
            format!("invalid YAML: {message}")
        } else {
            message
        },
    }
}

/// Finds the 1-based (line, column) of a nested block-style key, best effort.
fn locate(text: &str, keys: &[&str]) -> Option<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut start = 0;
    let mut parent_indent: Option<usize> = None;
    let mut found = None;
    for key in keys {
        let mut hit = None;
        for (i, line) in lines.iter().enumerate().skip(start) {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indent = line.len() - trimmed.len();
            if parent_indent.is_some_and(|p| indent <= p) {
                break;
            }
            let quoted = ["", "\"", "'"]
                .iter()
                .any(|q| trimmed.starts_with(&format!("{q}{key}{q}:")));
            if quoted {
                hit = Some((i, indent));
                break;
            }
        }
        let (i, indent) = hit?;
        found = Some((i + 1, indent + 1));
        start = i + 1;
        parent_indent = Some(indent);
    }
    found
}

/// Checks that a znode path is absolute and well formed.
fn validate_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("`{path}` is not a znode path (must start with /)"));
    }
    if path.len() > 1 && path.ends_with('/') {
        return Err(format!("znode path `{path}` must not end with /"));
    }
    if path.contains('\0') {
        return Err(format!("znode path `{path}` contains a NUL character"));
    }
    if path.len() > 1 {
        for part in path[1..].split('/') {
            if part.is_empty() || part == "." || part == ".." {
                return Err(format!(
                    "znode path `{path}` has an empty, `.` or `..` component"
                ));
            }
        }
    }
    Ok(())
}

/// The document as read: paths in file order, with duplicate flags.
#[derive(Default)]
struct RawRoot {
    paths: Vec<(String, PathSpec, bool)>,
    settings: Option<Settings>,
}

impl<'de> Deserialize<'de> for RawRoot {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawRoot;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map from znode paths (starting with /) to specs")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawRoot, A::Error> {
                let mut root = RawRoot::default();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "settings" {
                        root.settings = Some(map.next_value()?);
                        continue;
                    }
                    if !key.starts_with('/') {
                        return Err(de::Error::custom(format!(
                            "unknown top-level key `{key}`: znode paths start with /, \
                             and the only other section is `settings`"
                        )));
                    }
                    validate_path(&key).map_err(de::Error::custom)?;
                    let raw: Option<RawSpec> = map.next_value()?;
                    let spec = raw.map(RawSpec::into_spec).unwrap_or_default();
                    let duplicate = root.paths.iter().any(|(p, _, _)| *p == key);
                    root.paths.retain(|(p, _, _)| *p != key);
                    root.paths.push((key, spec, duplicate));
                }
                Ok(root)
            }
        }
        d.deserialize_map(V)
    }
}

/// One path's spec as written.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a map of checks (children, exists, data, stale_after) and options"
)]
struct RawSpec {
    alerter: Option<Alerters>,
    children: Option<ChildrenSpec>,
    exists: Option<Bool11>,
    data: Option<RawData>,
    stale_after: Option<Secs>,
    cancel_timeout: Option<Secs>,
    repeat_after: Option<Secs>,
}

impl RawSpec {
    fn into_spec(self) -> PathSpec {
        PathSpec {
            children: self.children,
            exists: self.exists.map(|b| b.0),
            data: self.data.map(|d| DataSpec {
                matches: d.matches.map(|p| p.0),
                max_bytes: d.max_bytes,
            }),
            stale_after: self.stale_after.map(|s| s.0),
            cancel_timeout: self.cancel_timeout.map(|s| s.0).unwrap_or_default(),
            repeat_after: self.repeat_after.map(|s| s.0).filter(|d| !d.is_zero()),
            alerter: self.alerter.unwrap_or_default(),
        }
    }
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a map with `matches` and/or `max_bytes`"
)]
struct RawData {
    matches: Option<Pattern>,
    max_bytes: Option<u64>,
}

/// A compiled regular expression.
struct Pattern(Regex);

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Regex::new(&s)
            .map(Pattern)
            .map_err(|e| de::Error::custom(format!("invalid regular expression: {e}")))
    }
}

/// A YAML 1.1 boolean, as PyYAML reads it.
struct Bool11(bool);

impl<'de> Deserialize<'de> for Bool11 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Bool11;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean (true/false, yes/no, on/off)")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Bool11, E> {
                Ok(Bool11(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Bool11, E> {
                match v {
                    "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True" | "TRUE" => {
                        Ok(Bool11(true))
                    }
                    "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False" | "FALSE" => {
                        Ok(Bool11(false))
                    }
                    _ => Err(de::Error::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Secs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Secs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration: seconds (e.g. 10 or 2.5) or with units (30s, 5m, 1h)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Secs, E> {
                Ok(Secs(Duration::from_secs(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Secs, E> {
                u64::try_from(v)
                    .map(|v| Secs(Duration::from_secs(v)))
                    .map_err(|_| de::Error::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Secs, E> {
                Duration::try_from_secs_f64(v)
                    .map(Secs)
                    .map_err(|_| de::Error::invalid_value(de::Unexpected::Float(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Secs, E> {
                let t = v.trim();
                if let Ok(n) = t.parse::<f64>() {
                    return self.visit_f64(n);
                }
                humantime::parse_duration(t)
                    .map(Secs)
                    .map_err(|_| de::Error::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for ChildrenSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ChildrenSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a minimum number of children, or a map with `min` and/or `max`")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ChildrenSpec, E> {
                Ok(ChildrenSpec {
                    min: Some(v),
                    max: None,
                })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ChildrenSpec, E> {
                u64::try_from(v)
                    .map(|v| ChildrenSpec {
                        min: Some(v),
                        max: None,
                    })
                    .map_err(|_| de::Error::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ChildrenSpec, A::Error> {
                let mut spec = ChildrenSpec::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "min" => spec.min = Some(map.next_value::<Count>()?.0),
                        "max" => spec.max = Some(map.next_value::<Count>()?.0),
                        other => return Err(de::Error::unknown_field(other, &["min", "max"])),
                    }
                }
                if spec.min.is_none() && spec.max.is_none() {
                    return Err(de::Error::custom("`children` needs `min` and/or `max`"));
                }
                Ok(spec)
            }
        }
        d.deserialize_any(V)
    }
}

/// A non-negative integer.
struct Count(u64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative integer")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Count, E> {
                Ok(Count(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Count, E> {
                u64::try_from(v)
                    .map(Count)
                    .map_err(|_| de::Error::invalid_value(de::Unexpected::Signed(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Alerters {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Alerters;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of alerters (email, slack, webhook)")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Alerters, E> {
                Ok(Alerters::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Alerters, A::Error> {
                let mut alerters = Alerters::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "email" => alerters.email = map.next_value::<EmailList>()?.0,
                        "webhook" => alerters.webhooks = map.next_value::<Webhooks>()?.0,
                        "slack" => match map.next_value::<SlackValue>()? {
                            SlackValue::Webhook(spec) => alerters.slack = Some(spec),
                            SlackValue::Legacy => alerters.legacy_slack = true,
                        },
                        "body" => alerters.body = Some(map.next_value::<String>()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            alerters.unknown.push(key);
                        }
                    }
                }
                Ok(alerters)
            }
        }
        d.deserialize_any(V)
    }
}

/// Email recipients: one string (comma/space separated) or a list.
struct EmailList(Vec<String>);

fn split_addresses(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in s.split([',', ';']) {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        if part.contains('<') {
            out.push(part.to_string());
        } else {
            out.extend(part.split_whitespace().map(str::to_string));
        }
    }
    out
}

fn check_addresses<E: de::Error>(list: Vec<String>) -> Result<EmailList, E> {
    for addr in &list {
        if lettre::message::Mailbox::from_str(addr).is_err() {
            return Err(E::custom(format!("`{addr}` is not an email address")));
        }
    }
    if list.is_empty() {
        return Err(E::custom("no email address given"));
    }
    Ok(EmailList(list))
}

impl<'de> Deserialize<'de> for EmailList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EmailList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an email address, a comma/space separated list, or a list")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<EmailList, E> {
                check_addresses(split_addresses(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<EmailList, A::Error> {
                let mut list = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    list.extend(split_addresses(&s));
                }
                check_addresses(list)
            }
        }
        d.deserialize_any(V)
    }
}

/// One webhook (a URL or a map) or a list of them.
struct Webhooks(Vec<WebhookSpec>);

fn check_url<E: de::Error>(url: &str) -> Result<(), E> {
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => Ok(()),
        Ok(_) => Err(E::custom(format!("`{url}` is not an http(s) URL"))),
        Err(e) => Err(E::custom(format!("`{url}` is not a URL: {e}"))),
    }
}

/// One element of a webhook list: a URL string or a map.
struct OneWebhook(WebhookSpec);

impl<'de> Deserialize<'de> for OneWebhook {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneWebhook;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a URL or a map with `url`, `headers`, `send_resolved`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneWebhook, E> {
                check_url(v)?;
                Ok(OneWebhook(WebhookSpec {
                    url: v.to_string(),
                    headers: BTreeMap::new(),
                    send_resolved: true,
                }))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<OneWebhook, A::Error> {
                let spec = WebhookSpec::deserialize(de::value::MapAccessDeserializer::new(map))?;
                check_url(&spec.url)?;
                Ok(OneWebhook(spec))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Webhooks {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Webhooks;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a webhook (URL or map with `url`) or a list of them")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Webhooks, E> {
                Ok(Webhooks(vec![
                    OneWebhook::deserialize(de::value::StrDeserializer::<E>::new(v))?.0,
                ]))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Webhooks, A::Error> {
                let spec = WebhookSpec::deserialize(de::value::MapAccessDeserializer::new(map))?;
                check_url(&spec.url)?;
                Ok(Webhooks(vec![spec]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Webhooks, A::Error> {
                let mut list = Vec::new();
                while let Some(one) = seq.next_element::<OneWebhook>()? {
                    list.push(one.0);
                }
                Ok(Webhooks(list))
            }
        }
        d.deserialize_any(V)
    }
}

/// The `slack` alerter: the webhook form, or the old token form (ignored).
enum SlackValue {
    Webhook(SlackSpec),
    Legacy,
}

impl<'de> Deserialize<'de> for SlackValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SlackValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map with `webhook_url` (and optional channel, username, icon_emoji)")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SlackValue, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(SlackValue::Legacy)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SlackValue, A::Error> {
                let mut spec = SlackSpec::default();
                let mut url = None;
                let mut legacy = false;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "webhook_url" => url = Some(map.next_value::<String>()?),
                        "channel" => spec.channel = Some(map.next_value()?),
                        "username" => spec.username = Some(map.next_value()?),
                        "icon_emoji" => spec.icon_emoji = Some(map.next_value()?),
                        "token" | "from" => {
                            map.next_value::<IgnoredAny>()?;
                            legacy = true;
                        }
                        other => {
                            return Err(de::Error::unknown_field(
                                other,
                                &["webhook_url", "channel", "username", "icon_emoji"],
                            ));
                        }
                    }
                }
                match url {
                    Some(url) => {
                        check_url(&url)?;
                        spec.webhook_url = url;
                        Ok(SlackValue::Webhook(spec))
                    }
                    None if legacy => Ok(SlackValue::Legacy),
                    None => Err(de::Error::missing_field("webhook_url")),
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Config {
        parse(text, "t.yaml").unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(text: &str) -> ConfigError {
        match parse(text, "t.yaml") {
            Ok(c) => panic!("expected an error, got {c:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn python_monitor_files_load_unchanged() {
        let c = ok("# Example Service\n\
                    /services/path/to/service:\n  alerter:\n    email:\n     - eng+zkmonitor@nextdoor.com\n    hipchat:\n     room: Engineering\n     token: crazytoken\n  cancel_timeout: 10\n  children: 1\n\
                    /services/foo/min_0:\n  alerter:\n    email: your_buddy@home.com\n  children: 0\n\
                    /services/foo/min_3:\n  children: 3\n");
        let s = &c.paths["/services/path/to/service"];
        assert_eq!(
            s.children,
            Some(ChildrenSpec {
                min: Some(1),
                max: None
            })
        );
        assert_eq!(s.cancel_timeout, Duration::from_secs(10));
        assert_eq!(s.alerter.email, vec!["eng+zkmonitor@nextdoor.com"]);
        assert_eq!(c.paths["/services/foo/min_3"].alerter.kinds().len(), 0);
        assert_eq!(c.warnings.len(), 1);
        let w = c.warnings[0].to_string();
        assert!(w.starts_with("t.yaml:6: key /services/path/to/service > alerter > hipchat: unknown alerter `hipchat`"), "{w}");
    }

    #[test]
    fn new_keys_parse() {
        let c = ok(
            "/a:\n  children: {min: 2, max: 5}\n  exists: yes\n  data: {matches: '^ok', max_bytes: 10}\n  stale_after: 1h\n  repeat_after: 30m\n  cancel_timeout: '2.5'\n  alerter:\n    email: a@x.org, b@x.org c@x.org\n    slack: {webhook_url: 'http://127.0.0.1:1/hook'}\n    webhook:\n      url: http://127.0.0.1:2/alerts\n      headers: {Authorization: Bearer x}\n/b:\n",
        );
        let a = &c.paths["/a"];
        assert_eq!(
            a.children,
            Some(ChildrenSpec {
                min: Some(2),
                max: Some(5)
            })
        );
        assert_eq!(a.exists, Some(true));
        assert_eq!(a.stale_after, Some(Duration::from_secs(3600)));
        assert_eq!(a.repeat_after, Some(Duration::from_secs(1800)));
        assert_eq!(a.cancel_timeout, Duration::from_millis(2500));
        assert_eq!(a.alerter.email.len(), 3);
        assert_eq!(a.alerter.kinds(), vec!["email", "slack", "webhook"]);
        assert_eq!(a.alerter.webhooks[0].headers["Authorization"], "Bearer x");
        assert!(!c.paths["/b"].has_checks());
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn empty_file_is_an_empty_config() {
        assert!(ok("").paths.is_empty());
        assert!(ok("# nothing\n").paths.is_empty());
    }

    #[test]
    fn wrong_type_names_file_line_and_key() {
        let e = err("/a:\n  children: 1\n/b:\n  children: lots\n");
        assert_eq!(e.line, Some(4));
        assert_eq!(e.key.as_deref(), Some("/b > children"));
        let s = e.to_string();
        assert!(
            s.starts_with("t.yaml:4:13: key /b > children: invalid type"),
            "{s}"
        );
    }

    #[test]
    fn unknown_key_is_an_error() {
        let e = err("/a:\n  children: 1\n  chilren: 2\n");
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("unknown field `chilren`"), "{e}");
        assert!(e.key.as_deref().unwrap().starts_with("/a"), "{e}");
    }

    #[test]
    fn broken_yaml_names_the_line() {
        let e = err("/a:\n  children: 1\n   bad: [\n");
        assert!(e.line.is_some(), "{e}");
        assert!(e.to_string().starts_with("t.yaml:"), "{e}");
        let e = err("/a:\n  children: 1\n\t- x\n");
        assert!(e.line.is_some(), "{e}");
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(
            err("/a:\n  children: -1\n")
                .to_string()
                .contains("t.yaml:2")
        );
        assert!(
            err("/a:\n  data: {matches: '('}\n")
                .message
                .contains("regular expression")
        );
        assert!(
            err("/a:\n  cancel_timeout: soon\n")
                .message
                .contains("duration")
        );
        assert!(err("/a:\n  exists: maybe\n").message.contains("boolean"));
        assert!(
            err("/a:\n  alerter: {email: 'not an address'}\n")
                .message
                .contains("email")
        );
        assert!(
            err("/a:\n  alerter: {webhook: {url: 'ftp://x'}}\n")
                .message
                .contains("http")
        );
        assert!(
            err("a:\n  children: 1\n")
                .message
                .contains("top-level key `a`")
        );
        assert!(
            err("/a/:\n  children: 1\n")
                .message
                .contains("must not end")
        );
        let e = err("/a:\n  children: 1\n/b:\n  children: {min: 3, max: 1}\n");
        assert_eq!((e.line, e.key.as_deref()), (Some(4), Some("/b > children")));
        let e = err("/a:\n  exists: false\n  children: 2\n");
        assert_eq!(e.line, Some(2));
        let e = err("settings:\n  smtp:\n    port: http\n");
        assert_eq!(e.key.as_deref(), Some("settings > smtp > port"));
    }

    #[test]
    fn duplicates_keep_the_last_with_a_warning() {
        let c = ok("/a:\n  children: 1\n/a:\n  children: 2\n");
        assert_eq!(c.paths["/a"].children.unwrap().min, Some(2));
        assert_eq!(c.warnings.len(), 1);
    }

    #[test]
    fn legacy_slack_is_a_warning() {
        let c = ok("/a:\n  alerter:\n    slack:\n      - channel: '#oncall'\n      - token: x\n");
        assert!(c.paths["/a"].alerter.is_empty());
        assert!(c.warnings[0].message.contains("Slack"));
    }

    #[test]
    fn settings_parse() {
        let c = ok(
            "settings:\n  smtp: {host: 127.0.0.1, port: 2525, starttls: off, from: mon@example.org}\n  delivery: {retries: 1, backoff: 100ms}\n",
        );
        assert_eq!(c.settings.smtp.port, 2525);
        assert_eq!(c.settings.smtp.starttls, StartTls::Off);
        assert_eq!(c.settings.delivery.backoff.0, Duration::from_millis(100));
    }

    #[test]
    fn locate_finds_nested_keys() {
        let t = "/a:\n  alerter:\n    email: x\n/b:\n  alerter:\n    hipchat: 1\n";
        assert_eq!(locate(t, &["/b", "alerter", "hipchat"]), Some((6, 5)));
        assert_eq!(locate(t, &["/a", "alerter", "hipchat"]), None);
    }
}
