//! The TOML configuration: cameras and their jobs. Errors name the line. Credentials come
//! from the environment or a file, never from the configuration itself (an inline password
//! is refused: configuration files get copied, pasted and committed).

use serde::Deserialize;
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// A configuration error, with the 1-based line it is about when known.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    #[serde(default)]
    pub general: General,
    #[serde(default, rename = "camera")]
    pub cameras: Vec<Camera>,
    pub mqtt: Option<MqttConfig>,
    pub kafka: Option<KafkaConfig>,
    pub smtp: Option<SmtpConfig>,
    #[serde(default)]
    pub insights: Insights,
    #[serde(default, rename = "alert")]
    pub alerts: Vec<AlertRule>,
    pub web: Option<Web>,
    pub rtsp: Option<Rtsp>,
    /// Arlo accounts whose cameras' motion events come from Arlo's cloud.
    #[serde(default, rename = "arlo")]
    pub arlo: Vec<Arlo>,
}

/// An Arlo account (`docs/arlo.md`): its cameras' recordings become homecam events.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Arlo {
    /// Names the account in logs and in the deduplication file.
    #[serde(default = "default_arlo_name")]
    pub name: String,
    pub email: String,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    /// A session token from a login done by hand (two-factor accounts): its first line.
    /// Read again when the API refuses it.
    pub token_file: Option<PathBuf>,
    /// Seconds between polls (2 to 3600; Arlo rate-limits clients that poll more often
    /// than every 30 s or so).
    #[serde(default = "default_arlo_poll")]
    pub poll_interval: u64,
    /// Device names or ids to include; empty: every camera of the account.
    #[serde(default)]
    pub cameras: Vec<String>,
    /// A location per device name (the events' and statuses' `location`).
    #[serde(default)]
    pub locations: std::collections::BTreeMap<String, String>,
    /// The API base.
    #[serde(default = "default_arlo_api")]
    pub api_url: String,
    /// A PEM file of CA certificates to trust besides the system's.
    pub ca_file: Option<PathBuf>,
}

fn default_arlo_name() -> String {
    "arlo".into()
}
fn default_arlo_poll() -> u64 {
    30
}
fn default_arlo_api() -> String {
    "https://myapi.arlo.com/hmsweb".into()
}

impl Arlo {
    /// The account's password (environment or file), when one is configured.
    pub fn password(&self) -> Result<Option<String>, String> {
        secret(
            &format!("arlo {:?}", self.name),
            self.password_env.as_deref(),
            self.password_file.as_deref(),
        )
    }

    fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        let what = format!("arlo {:?}", self.name);
        if !valid_name(&self.name) {
            errors.push(format!("{what}: name: use letters, digits, '-' and '_'"));
        }
        if self.email.is_empty() {
            errors.push(format!("{what}: email is empty"));
        }
        if self.password_env.is_none() && self.password_file.is_none() && self.token_file.is_none()
        {
            errors.push(format!(
                "{what}: needs password-env or password-file (or token-file for a two-factor login)"
            ));
        }
        if !(2..=3600).contains(&self.poll_interval) {
            errors.push(format!("{what}: poll-interval must be 2 to 3600 seconds"));
        }
        if !self.api_url.starts_with("https://") {
            errors.push(format!("{what}: api-url must start with https://"));
        }
        errors
    }
}

/// The RTSP re-stream (`docs/homecam.md`): `rtsp://HOST:PORT/CAMERA` for VLC, Home
/// Assistant, Frigate..., fed from the daemon's one camera connection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Rtsp {
    /// `host:port`; loopback by default (`0.0.0.0:8554` for the network).
    #[serde(default = "default_rtsp_listen")]
    pub listen: Spanned<String>,
    /// `digest` (the default) or `none` (only on a loopback address).
    #[serde(default = "default_rtsp_auth")]
    pub auth: Spanned<String>,
    /// An htdigest file of `user:homecam:HASH` lines (`homecam rtsp-passwd`, or Apache's
    /// `htdigest`). Default DATA-DIR/rtsp-users when it exists.
    pub users_file: Option<PathBuf>,
    /// Users with their password from the environment or a file.
    #[serde(default, rename = "user")]
    pub users: Vec<RtspUser>,
    /// Sessions at most (each client is one); more are refused.
    #[serde(default = "default_rtsp_max_sessions")]
    pub max_sessions: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RtspUser {
    pub name: Spanned<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
}

fn default_rtsp_listen() -> Spanned<String> {
    Spanned::new(0..0, "127.0.0.1:8554".into())
}
fn default_rtsp_auth() -> Spanned<String> {
    Spanned::new(0..0, "digest".into())
}
fn default_rtsp_max_sessions() -> u32 {
    64
}

impl Rtsp {
    pub fn users_file(&self, general: &General) -> PathBuf {
        self.users_file
            .clone()
            .unwrap_or_else(|| general.data_dir.join("rtsp-users"))
    }

    pub fn auth_required(&self) -> bool {
        self.auth.get_ref() != "none"
    }

    /// The configured users with their passwords (read now).
    pub fn user_passwords(&self) -> Result<Vec<(String, String)>, String> {
        self.users
            .iter()
            .map(|u| {
                let name = u.name.get_ref().clone();
                let pw = secret(
                    &format!("rtsp user {name:?}"),
                    u.password_env.as_deref(),
                    u.password_file.as_deref(),
                )?
                .ok_or_else(|| format!("rtsp user {name:?}: no password-env or password-file"))?;
                Ok((name, pw))
            })
            .collect()
    }
}

/// Problems in `[rtsp]`, each with the span it is about.
/// A server section's `listen` (host:port) and `auth` (`login` or `"none"`, which only a
/// loopback address may have): the problems, each with its span.
fn listen_and_auth(
    section: &str,
    listen: &Spanned<String>,
    auth: &Spanned<String>,
    login: &str,
) -> Vec<(std::ops::Range<usize>, String)> {
    let mut errors = Vec::new();
    let addr = listen.get_ref().parse::<std::net::SocketAddr>();
    if addr.is_err() {
        errors.push((
            listen.span(),
            format!(
                "{section}: listen {:?} is not host:port (an IP address and a port)",
                listen.get_ref()
            ),
        ));
    }
    match auth.get_ref().as_str() {
        a if a == login => {}
        "none" => {
            if addr.is_ok_and(|a| !a.ip().is_loopback()) {
                errors.push((
                    auth.span(),
                    format!("{section}: auth = \"none\" is only allowed on a loopback address (127.0.0.1 or ::1): anyone on the network could watch the cameras"),
                ));
            }
        }
        other => errors.push((
            auth.span(),
            format!("{section}: auth {other:?} is not \"{login}\" or \"none\""),
        )),
    }
    errors
}

fn validate_rtsp(r: &Rtsp) -> Vec<(std::ops::Range<usize>, String)> {
    let mut errors = listen_and_auth("rtsp", &r.listen, &r.auth, "digest");
    for u in &r.users {
        let n = u.name.get_ref();
        if n.is_empty() || n.contains(':') || n.chars().any(char::is_control) {
            errors.push((
                u.name.span(),
                format!("rtsp user {n:?}: a name without ':'"),
            ));
        }
        if u.password_env.is_none() && u.password_file.is_none() {
            errors.push((
                u.name.span(),
                format!("rtsp user {n:?}: needs password-env or password-file"),
            ));
        }
    }
    if !(1..=1000).contains(&r.max_sessions) {
        errors.push((0..0, "rtsp: max-sessions is 1-1000".into()));
    }
    errors
}

/// The web app and its HTTP API (`docs/web.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Web {
    /// `host:port`; loopback by default: put a reverse proxy with HTTPS in front to reach
    /// it from elsewhere.
    #[serde(default = "default_web_listen")]
    pub listen: Spanned<String>,
    /// `password` (a login, the default) or `none` (only on a loopback address).
    #[serde(default = "default_web_auth")]
    pub auth: Spanned<String>,
    /// `user:argon2-hash` lines, written by `homecam passwd`. Default DATA-DIR/web-users.
    pub users_file: Option<PathBuf>,
    /// How other machines reach this daemon (`https://nvr.example:8443`): events carry it
    /// so that a dashboard elsewhere can link to their clips. Default: none.
    #[serde(default)]
    pub public_url: String,
    /// How long a login lasts.
    #[serde(default = "default_session")]
    pub session: Spanned<String>,
}

fn default_web_listen() -> Spanned<String> {
    Spanned::new(0..0, "127.0.0.1:8080".into())
}
fn default_web_auth() -> Spanned<String> {
    Spanned::new(0..0, "password".into())
}
fn default_session() -> Spanned<String> {
    Spanned::new(0..0, "7d".into())
}

impl Web {
    pub fn users_file(&self, general: &General) -> PathBuf {
        self.users_file
            .clone()
            .unwrap_or_else(|| general.data_dir.join("web-users"))
    }

    pub fn session_secs(&self) -> u64 {
        gstringrec::store::parse_duration(self.session.get_ref())
            .map(|d| d.as_secs())
            .unwrap_or(7 * 86400)
    }

    pub fn auth_required(&self) -> bool {
        self.auth.get_ref() != "none"
    }
}

/// Hourly activity summaries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Insights {
    /// Seconds per summary (an hour; shorter for tests and demos).
    #[serde(default = "default_period")]
    pub period: u64,
    /// Fewer events than this in a period: `low`.
    #[serde(default = "default_medium")]
    pub medium: u64,
    /// At least this many: `high`; in between: `medium`.
    #[serde(default = "default_high")]
    pub high: u64,
}

impl Default for Insights {
    fn default() -> Self {
        Insights {
            period: default_period(),
            medium: default_medium(),
            high: default_high(),
        }
    }
}

fn default_period() -> u64 {
    3600
}
fn default_medium() -> u64 {
    5
}
fn default_high() -> u64 {
    20
}

/// An alert rule: see `alerts.rs`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AlertRule {
    pub name: String,
    /// Matching events needed within `window` seconds.
    #[serde(default = "one")]
    pub rate: u32,
    #[serde(default = "default_window")]
    pub window: f64,
    /// Local time of day, `HH:MM-HH:MM`.
    pub hours: Option<Spanned<String>>,
    /// Labels or groups (`person`, `animal`, `cat`); empty: any motion event.
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub cameras: Vec<String>,
    /// Seconds between two alerts of the rule, at least.
    #[serde(default = "default_cooldown")]
    pub cooldown: f64,
    #[serde(default)]
    pub email: Vec<String>,
    /// A plain JSON POST of the alert (`http://` or `https://`): the same as a `webhook`
    /// target without a snapshot.
    pub webhook: Option<String>,
    /// Where the rule's alerts go: push services and webhooks (`[[alert.target]]`).
    #[serde(default, rename = "target")]
    pub targets: Vec<Target>,
}

/// One destination of a rule's alerts (`docs/alerts.md`). Secrets (tokens, webhook URLs
/// that embed one) come from `*-env` or `*-file` only.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Target {
    /// `ntfy`, `pushover`, `telegram`, `discord`, `slack` or `webhook`.
    pub kind: Spanned<String>,
    /// For messages and metrics; default: the kind.
    pub name: Option<String>,
    /// ntfy: the topic URL; webhook: the URL (when it holds no secret).
    pub url: Option<Spanned<String>>,
    pub url_env: Option<String>,
    pub url_file: Option<PathBuf>,
    /// ntfy (access token), pushover (application token), telegram (bot token).
    pub token_env: Option<String>,
    pub token_file: Option<PathBuf>,
    /// pushover: the user key.
    pub user_env: Option<String>,
    pub user_file: Option<PathBuf>,
    /// telegram: the chat.
    pub chat_id: Option<String>,
    /// The service's API base, for a self-hosted or test server (pushover, telegram).
    pub api_url: Option<String>,
    /// A PEM file of CA certificates to trust besides the system's (a self-hosted server
    /// with its own CA).
    pub ca_file: Option<PathBuf>,
    /// webhook: `base64` (the JPEG in the JSON), `url` (a link to the web app) or `none`.
    #[serde(default = "default_snapshot_mode")]
    pub snapshot: Spanned<String>,
    /// Local hours when this target stays quiet, `HH:MM-HH:MM`.
    pub quiet_hours: Option<Spanned<String>>,
    /// Only alerts about these labels or groups; empty: all of the rule's.
    #[serde(default)]
    pub labels: Vec<String>,
    /// An alert not delivered within this is dropped (and counted), not sent late.
    #[serde(default = "default_max_delay")]
    pub max_delay: Spanned<String>,
    /// How long one attempt may take, connection included; then it is retried.
    #[serde(default = "default_target_timeout")]
    pub timeout: Spanned<String>,
}

fn default_target_timeout() -> Spanned<String> {
    Spanned::new(0..0, "20s".into())
}

fn default_snapshot_mode() -> Spanned<String> {
    Spanned::new(0..0, "base64".into())
}
fn default_max_delay() -> Spanned<String> {
    Spanned::new(0..0, "10m".into())
}

/// The kinds of targets.
pub const TARGET_KINDS: &[&str] = &[
    "ntfy", "pushover", "telegram", "discord", "slack", "webhook",
];

impl Target {
    pub fn name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| self.kind.get_ref().clone())
    }

    /// The URL: `url`, or from `url-env` / `url-file`.
    pub fn url(&self) -> Result<Option<String>, String> {
        if let Some(u) = &self.url {
            return Ok(Some(u.get_ref().clone()));
        }
        secret(
            &format!("target {:?} url", self.name()),
            self.url_env.as_deref(),
            self.url_file.as_deref(),
        )
    }

    pub fn token(&self) -> Result<Option<String>, String> {
        secret(
            &format!("target {:?} token", self.name()),
            self.token_env.as_deref(),
            self.token_file.as_deref(),
        )
    }

    pub fn user(&self) -> Result<Option<String>, String> {
        secret(
            &format!("target {:?} user", self.name()),
            self.user_env.as_deref(),
            self.user_file.as_deref(),
        )
    }

    pub fn max_delay_secs(&self) -> f64 {
        gstringrec::store::parse_duration(self.max_delay.get_ref())
            .map(|d| d.as_secs_f64())
            .unwrap_or(600.0)
    }

    pub fn timeout(&self) -> std::time::Duration {
        gstringrec::store::parse_duration(self.timeout.get_ref())
            .unwrap_or(std::time::Duration::from_secs(20))
    }

    pub fn quiet_hours(&self) -> Option<(u32, u32)> {
        self.quiet_hours
            .as_ref()
            .and_then(|h| parse_hours(h.get_ref()).ok())
    }

    /// Problems with the target (spans for line numbers).
    fn problems(&self) -> Vec<(std::ops::Range<usize>, String)> {
        let kind = self.kind.get_ref().as_str();
        let name = self.name();
        let mut out = Vec::new();
        let mut need = |ok: bool, what: &str| {
            if !ok {
                out.push((
                    self.kind.span(),
                    format!("target {name:?} ({kind}) needs {what}"),
                ));
            }
        };
        let has_url = self.url.is_some() || self.url_env.is_some() || self.url_file.is_some();
        let has_token = self.token_env.is_some() || self.token_file.is_some();
        match kind {
            "ntfy" => need(has_url, "url (the topic URL), url-env or url-file"),
            "pushover" => {
                need(has_token, "token-env or token-file (the application token)");
                need(
                    self.user_env.is_some() || self.user_file.is_some(),
                    "user-env or user-file (the user key)",
                );
            }
            "telegram" => {
                need(has_token, "token-env or token-file (the bot token)");
                need(self.chat_id.is_some(), "chat-id");
            }
            "discord" | "slack" | "webhook" => {
                need(has_url, "url-env or url-file (the webhook URL)")
            }
            _ => out.push((
                self.kind.span(),
                format!(
                    "target {name:?}: kind {kind:?} is not one of {}",
                    TARGET_KINDS.join(", ")
                ),
            )),
        }
        // A Discord or Slack webhook URL is its own secret: never inline.
        if let (Some(u), "discord" | "slack") = (&self.url, kind) {
            out.push((
                u.span(),
                format!("target {name:?}: a {kind} webhook URL holds its secret: give it with url-env or url-file, not url"),
            ));
        }
        if let Some(u) = &self.url {
            let u = u.get_ref();
            if !(u.starts_with("https://") || u.starts_with("http://")) {
                out.push((
                    self.url.as_ref().unwrap().span(),
                    format!("target {name:?}: url must be http:// or https://"),
                ));
            }
        }
        if let Some(a) = &self.api_url {
            if !(a.starts_with("https://") || a.starts_with("http://")) {
                out.push((
                    self.kind.span(),
                    format!("target {name:?}: api-url must be http:// or https://"),
                ));
            }
        }
        if !matches!(self.snapshot.get_ref().as_str(), "base64" | "url" | "none") {
            out.push((
                self.snapshot.span(),
                format!("target {name:?}: snapshot is base64, url or none"),
            ));
        }
        if let Some(h) = &self.quiet_hours {
            if let Err(e) = parse_hours(h.get_ref()) {
                out.push((h.span(), format!("target {name:?}: quiet-hours: {e}")));
            }
        }
        if let Err(e) = gstringrec::store::parse_duration(self.max_delay.get_ref()) {
            out.push((
                self.max_delay.span(),
                format!("target {name:?}: max-delay: {e}"),
            ));
        }
        match gstringrec::store::parse_duration(self.timeout.get_ref()) {
            Err(e) => out.push((
                self.timeout.span(),
                format!("target {name:?}: timeout: {e}"),
            )),
            Ok(d) if d.is_zero() || d > std::time::Duration::from_secs(300) => out.push((
                self.timeout.span(),
                format!("target {name:?}: timeout must be between 1s and 5m"),
            )),
            Ok(_) => {}
        }
        out
    }
}

impl AlertRule {
    /// The local hours, as minutes since midnight (from, to; `to` before `from` crosses
    /// midnight). Validated with the configuration.
    pub fn hours(&self) -> Option<(u32, u32)> {
        self.hours
            .as_ref()
            .and_then(|h| parse_hours(h.get_ref()).ok())
    }
}

/// `HH:MM-HH:MM` as minutes; the end may be before the start (across midnight).
pub fn parse_hours(s: &str) -> Result<(u32, u32), String> {
    let hm = |p: &str| -> Option<u32> {
        let (h, m) = p.trim().split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * 60 + m)
    };
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("hours {s:?}: use HH:MM-HH:MM"))?;
    match (hm(a), hm(b)) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(format!("hours {s:?}: use HH:MM-HH:MM")),
    }
}

fn one() -> u32 {
    1
}
fn default_window() -> f64 {
    60.0
}
fn default_cooldown() -> f64 {
    600.0
}

/// The mail server alerts go through.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SmtpConfig {
    #[serde(default = "localhost")]
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    pub from: String,
    /// `none`, `starttls` or `tls`.
    #[serde(default = "default_tls")]
    pub tls: String,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
}

fn default_smtp_port() -> u16 {
    25
}
fn default_tls() -> String {
    "starttls".into()
}

impl SmtpConfig {
    pub fn password(&self) -> Result<Option<String>, String> {
        secret(
            "smtp",
            self.password_env.as_deref(),
            self.password_file.as_deref(),
        )
    }
}

/// The MQTT broker (Home Assistant, Frigate users).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MqttConfig {
    #[serde(default = "localhost")]
    pub host: String,
    #[serde(default = "default_mqtt_port")]
    pub port: u16,
    #[serde(default = "default_prefix")]
    pub prefix: String,
    #[serde(default = "default_client_id")]
    pub client_id: String,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    /// Home Assistant MQTT discovery: each camera a device with its entities, no YAML.
    #[serde(default = "yes")]
    pub discovery: bool,
    /// Home Assistant's discovery prefix (its MQTT integration's setting).
    #[serde(default = "default_discovery_prefix")]
    pub discovery_prefix: String,
}

fn default_discovery_prefix() -> String {
    "homeassistant".into()
}

fn localhost() -> String {
    "127.0.0.1".into()
}
fn default_mqtt_port() -> u16 {
    1883
}
fn default_prefix() -> String {
    "homecam".into()
}
fn default_client_id() -> String {
    "homecam".into()
}

impl MqttConfig {
    pub fn password(&self) -> Result<Option<String>, String> {
        secret(
            "mqtt",
            self.password_env.as_deref(),
            self.password_file.as_deref(),
        )
    }
}

/// The Kafka cluster (Apache Kafka, WarpStream, Redpanda, tansu: the plain Kafka protocol).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KafkaConfig {
    /// `host:port[,host:port...]`.
    pub brokers: String,
    #[serde(default = "default_events_topic")]
    pub events_topic: String,
    #[serde(default = "default_status_topic")]
    pub status_topic: String,
    #[serde(default = "default_insights_topic")]
    pub insights_topic: String,
    #[serde(default = "default_client_id")]
    pub client_id: String,
    /// The consumer group `homecam dashboard` reads the topics as.
    #[serde(default = "default_group_id")]
    pub group_id: String,
    /// Create the topics when they are missing.
    #[serde(default = "yes")]
    pub create_topics: bool,
    /// Partitions of the topics it creates.
    #[serde(default = "default_partitions")]
    pub partitions: i32,
    /// Seconds a record may wait in the producer before it is sent again from the spool.
    #[serde(default = "default_delivery_timeout")]
    pub delivery_timeout: f64,
    /// Default: DATA-DIR/kafka-spool.
    pub spool_dir: Option<PathBuf>,
    /// Undelivered records kept on disk at most; beyond it the oldest are dropped (counted).
    #[serde(default = "default_spool_max")]
    pub spool_max_bytes: Spanned<String>,
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl` (WarpStream: `sasl_ssl`).
    #[serde(default = "default_security")]
    pub security_protocol: Spanned<String>,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    #[serde(default = "default_mechanism")]
    pub sasl_mechanism: Spanned<String>,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
}

fn default_events_topic() -> String {
    "security_events".into()
}
fn default_status_topic() -> String {
    "camera_status".into()
}
fn default_insights_topic() -> String {
    "security_insights".into()
}
fn default_group_id() -> String {
    "homecam-dashboard".into()
}
fn default_partitions() -> i32 {
    3
}
fn default_delivery_timeout() -> f64 {
    30.0
}
fn default_spool_max() -> Spanned<String> {
    Spanned::new(0..0, "64MiB".into())
}
fn default_security() -> Spanned<String> {
    Spanned::new(0..0, "plaintext".into())
}
fn default_mechanism() -> Spanned<String> {
    Spanned::new(0..0, "PLAIN".into())
}

impl KafkaConfig {
    pub fn password(&self) -> Result<Option<String>, String> {
        secret(
            "kafka",
            self.password_env.as_deref(),
            self.password_file.as_deref(),
        )
    }

    pub fn spool_max_bytes(&self) -> u64 {
        gstringrec::store::parse_bytes(self.spool_max_bytes.get_ref()).unwrap_or(64 << 20)
    }

    pub fn spool_dir(&self, general: &General) -> PathBuf {
        self.spool_dir
            .clone()
            .unwrap_or_else(|| general.data_dir.join("kafka-spool"))
    }
}

/// A camera's or an Arlo account's name: letters, digits, '-' and '_' (it names files and
/// MQTT topics).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A password from an environment variable or the first line of a file.
fn secret(what: &str, env: Option<&str>, file: Option<&Path>) -> Result<Option<String>, String> {
    if let Some(var) = env {
        return std::env::var(var)
            .map(Some)
            .map_err(|_| format!("{what}: ${var} is not set"));
    }
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("{what}: cannot read {}: {e}", file.display()))?;
        return Ok(Some(text.lines().next().unwrap_or("").to_string()));
    }
    Ok(None)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct General {
    /// Seconds between status lines.
    #[serde(default = "default_status_interval")]
    pub status_interval: u64,
    /// `host:port` for the Prometheus `/metrics` endpoint; empty to turn it off.
    #[serde(default = "default_metrics")]
    pub metrics: String,
    /// Base folder for recordings and clips of cameras that do not set their own, and
    /// for the index (DATA-DIR/index).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Events older than this leave the index (their clips go earlier, by the cameras'
    /// clip retention).
    #[serde(default = "default_events_max_age")]
    pub events_max_age: Spanned<String>,
}

fn default_events_max_age() -> Spanned<String> {
    Spanned::new(0..0, "90d".into())
}

impl General {
    pub fn events_max_age_secs(&self) -> f64 {
        gstringrec::store::parse_duration(self.events_max_age.get_ref())
            .map(|d| d.as_secs_f64())
            .unwrap_or(90.0 * 86400.0)
    }

    pub fn index_dir(&self) -> PathBuf {
        self.data_dir.join("index")
    }
}

impl Default for General {
    fn default() -> Self {
        General {
            status_interval: default_status_interval(),
            metrics: default_metrics(),
            data_dir: default_data_dir(),
            events_max_age: default_events_max_age(),
        }
    }
}

fn default_status_interval() -> u64 {
    30
}
fn default_metrics() -> String {
    "127.0.0.1:9464".into()
}
fn default_data_dir() -> PathBuf {
    "/var/lib/homecam".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Camera {
    pub name: Spanned<String>,
    #[serde(default)]
    pub location: String,
    /// `rtsp://user@host:554/stream1`, `kasa://user@host` or `tutk://user@UID`.
    pub uri: Spanned<String>,
    /// Environment variable holding the password.
    pub password_env: Option<String>,
    /// File holding the password (first line).
    pub password_file: Option<PathBuf>,
    /// Refused with a clear error: see the module documentation.
    pub password: Option<Spanned<String>>,
    pub record: Option<Record>,
    pub mjpeg: Option<Mjpeg>,
    pub motion: Option<Motion>,
    /// camsrc's `latency` (ms): the RTSP jitter buffer. Less for a quicker live view on a
    /// good network, more for a camera on poor Wi-Fi.
    pub latency: Option<Spanned<u32>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Record {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub location: Option<PathBuf>,
    #[serde(default = "default_segment")]
    pub segment: String,
    #[serde(default = "default_max_age")]
    pub max_age: String,
    #[serde(default = "default_max_bytes")]
    pub max_bytes: String,
}

fn yes() -> bool {
    true
}
fn default_segment() -> String {
    "60s".into()
}
fn default_max_age() -> String {
    "7d".into()
}
fn default_max_bytes() -> String {
    "20GB".into()
}

/// The live view's JPEG encoding, and the camera's own MJPEG port when `port` is set.
/// With `[web]` the live view is served by the web app (behind its login), so a port of
/// its own is only for clients that want one (VLC, Home Assistant's MJPEG camera).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Mjpeg {
    #[serde(default = "yes")]
    pub enabled: bool,
    pub port: Option<Spanned<u16>>,
    /// Loopback unless asked otherwise: a camera's picture is not served to the whole
    /// network without a login by default.
    #[serde(default = "default_bind")]
    pub bind: String,
}

fn default_bind() -> String {
    "127.0.0.1".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Motion {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Keep clips (with snapshots) of the events.
    #[serde(default = "yes")]
    pub clips: bool,
    pub location: Option<PathBuf>,
    /// `confirmed` (by a watched object) or `all`.
    #[serde(default = "default_record")]
    pub record: Spanned<String>,
    /// objectdetect `labels`; its default when absent.
    pub labels: Option<Vec<String>>,
    /// objectdetect `threshold`: the score (0.25-1) a watched object needs.
    pub threshold: Option<Spanned<f64>>,
    /// motionclips `pre-roll` and `post-roll` (seconds); its defaults when absent.
    pub pre_roll: Option<Spanned<f64>>,
    pub post_roll: Option<Spanned<f64>>,
    #[serde(default)]
    pub zones: String,
    #[serde(default)]
    pub mask: String,
    /// motiondetect `threshold`: luma difference (1-255) that makes a cell changed.
    pub sensitivity: Option<Spanned<f64>>,
    /// motiondetect `min-area`: fraction of the frame (0-1) that must change.
    pub min_area: Option<Spanned<f64>>,
    /// motiondetect `calm-time`: seconds without motion that end an event.
    pub calm_time: Option<Spanned<f64>>,
    /// objectdetect `max-rate`: inferences per second at most.
    pub max_rate: Option<Spanned<f64>>,
    /// objectdetect `model`: the detector and its input size (one of the property's
    /// values, read from the registered element); its default when absent.
    pub model: Option<Spanned<String>>,
    /// objectdetect `motion-region`: look only around the moving areas.
    pub motion_region: Option<bool>,
    /// Clips and snapshots older than this are deleted.
    #[serde(default = "default_clips_max_age")]
    pub max_age: Spanned<String>,
    /// The camera's clips and snapshots take this much at most; the oldest go first.
    #[serde(default = "default_clips_max_bytes")]
    pub max_bytes: Spanned<String>,
}

fn default_clips_max_age() -> Spanned<String> {
    Spanned::new(0..0, "30d".into())
}
fn default_clips_max_bytes() -> Spanned<String> {
    Spanned::new(0..0, "5GB".into())
}

impl Motion {
    /// (max-age in seconds, max-bytes) of the clips.
    pub fn clip_limits(&self) -> (f64, u64) {
        (
            gstringrec::store::parse_duration(self.max_age.get_ref())
                .map(|d| d.as_secs_f64())
                .unwrap_or(30.0 * 86400.0),
            gstringrec::store::parse_bytes(self.max_bytes.get_ref()).unwrap_or(5_000_000_000),
        )
    }
}

/// One tuning key of `[camera.motion]`: the element property it sets. Its range is the
/// property's own, read from the registered element.
pub struct Tuning<'a> {
    pub key: &'static str,
    pub value: &'a Option<Spanned<f64>>,
    /// The element's name inside the analysis bin (`motion`, `objects`, or `clips` for the
    /// motionclips bin itself).
    pub element: &'static str,
    /// Its factory, for the property's range.
    pub factory: &'static str,
    pub property: &'static str,
}

impl Tuning<'_> {
    /// The property's minimum and maximum.
    pub fn range(&self) -> Option<(f64, f64)> {
        element_range(self.factory, self.property)
    }
}

/// The minimum and maximum of a numeric property of a registered element (ours are
/// registered on first use).
pub fn element_range(factory: &str, property: &str) -> Option<(f64, f64)> {
    use gst::glib;
    use gst::prelude::*;
    crate::daemon::init().ok()?;
    let e = gst::ElementFactory::make(factory).build().ok()?;
    let p = e.find_property(property)?;
    if let Some(f) = p.downcast_ref::<glib::ParamSpecFloat>() {
        return Some((f64::from(f.minimum()), f64::from(f.maximum())));
    }
    if let Some(d) = p.downcast_ref::<glib::ParamSpecDouble>() {
        return Some((d.minimum(), d.maximum()));
    }
    if let Some(u) = p.downcast_ref::<glib::ParamSpecUInt>() {
        return Some((f64::from(u.minimum()), f64::from(u.maximum())));
    }
    None
}

/// The values (nicks) of an enum property of a registered element.
pub fn element_choices(factory: &str, property: &str) -> Option<Vec<String>> {
    use gst::glib;
    use gst::prelude::*;
    crate::daemon::init().ok()?;
    let e = gst::ElementFactory::make(factory).build().ok()?;
    let p = e.find_property(property)?;
    let p = p.downcast_ref::<glib::ParamSpecEnum>()?;
    Some(
        p.enum_class()
            .values()
            .iter()
            .map(|v| v.nick().to_string())
            .collect(),
    )
}

impl Motion {
    /// The tuning keys; validation checks them against the elements' ranges, the daemon
    /// sets them.
    pub fn tuning(&self) -> [Tuning<'_>; 7] {
        let t = |key, value, element, factory, property| Tuning {
            key,
            value,
            element,
            factory,
            property,
        };
        #[rustfmt::skip]
        let all = [
            t("sensitivity", &self.sensitivity, "motion", "motiondetect", "threshold"),
            t("min-area", &self.min_area, "motion", "motiondetect", "min-area"),
            t("calm-time", &self.calm_time, "motion", "motiondetect", "calm-time"),
            t("max-rate", &self.max_rate, "objects", "objectdetect", "max-rate"),
            t("threshold", &self.threshold, "objects", "objectdetect", "threshold"),
            t("pre-roll", &self.pre_roll, "clips", "motionclips", "pre-roll"),
            t("post-roll", &self.post_roll, "clips", "motionclips", "post-roll"),
        ];
        all
    }
}

fn default_record() -> Spanned<String> {
    Spanned::new(0..0, "confirmed".into())
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl Config {
    /// Parses and validates `text`; every problem found, each with its line.
    pub fn parse(text: &str) -> Result<Config, Vec<ConfigError>> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            vec![ConfigError {
                line: e.span().map(|s| line_of(text, s.start)),
                message: e.message().to_string(),
            }]
        })?;
        let mut errors = Vec::new();
        let at = |span: std::ops::Range<usize>| (span.end > 0).then(|| line_of(text, span.start));
        let mut names = HashSet::new();
        let mut ports = HashSet::new();
        for cam in &cfg.cameras {
            let name = cam.name.get_ref();
            if !valid_name(name) {
                errors.push(ConfigError {
                    line: at(cam.name.span()),
                    message: format!(
                        "camera name {name:?}: use letters, digits, '-' and '_' (it names files and MQTT topics)"
                    ),
                });
            }
            if !names.insert(name.clone()) {
                errors.push(ConfigError {
                    line: at(cam.name.span()),
                    message: format!("camera name {name:?} is used twice"),
                });
            }
            // camsrc's own parser: the daemon accepts exactly the URIs camsrc opens.
            match gstcamsrc::uri::parse_supported(cam.uri.get_ref()) {
                Ok(u) if u.password.is_some() => errors.push(ConfigError {
                    line: at(cam.uri.span()),
                    message: format!(
                        "camera {name:?}: the uri holds a password; give the user only and the password with password-env or password-file"
                    ),
                }),
                Ok(_) => {}
                // The uri is not echoed: it may hold a password.
                Err(e) => errors.push(ConfigError {
                    line: at(cam.uri.span()),
                    message: format!("camera {name:?}: uri: {e}"),
                }),
            }
            if let Some(l) = &cam.latency {
                if let Some((lo, hi)) = element_range("camsrc", "latency") {
                    let v = f64::from(*l.get_ref());
                    if v < lo || v > hi {
                        errors.push(ConfigError {
                            line: at(l.span()),
                            message: format!(
                                "camera {name:?}: latency {v} ms is outside camsrc's {lo}..{hi}"
                            ),
                        });
                    }
                }
            }
            if let Some(p) = &cam.password {
                errors.push(ConfigError {
                    line: at(p.span()),
                    message: format!(
                        "camera {name:?}: no inline password; use password-env = \"VAR\" or password-file = \"/path\""
                    ),
                });
            }
            if let Some(port) = cam
                .mjpeg
                .as_ref()
                .filter(|m| m.enabled)
                .and_then(|m| m.port.as_ref())
            {
                if !ports.insert(*port.get_ref()) {
                    errors.push(ConfigError {
                        line: at(port.span()),
                        message: format!("camera {name:?}: port {} is used twice", port.get_ref()),
                    });
                }
            }
            if let Some(m) = &cam.motion {
                if !matches!(m.record.get_ref().as_str(), "confirmed" | "all") {
                    errors.push(ConfigError {
                        line: at(m.record.span()),
                        message: format!(
                            "camera {name:?}: motion record {:?} is not \"confirmed\" or \"all\"",
                            m.record.get_ref()
                        ),
                    });
                }
                if let Some(model) = &m.model {
                    let known = element_choices("objectdetect", "model").unwrap_or_default();
                    if !known.contains(model.get_ref()) {
                        errors.push(ConfigError {
                            line: at(model.span()),
                            message: format!(
                                "camera {name:?}: motion model {:?} is not one of objectdetect's models ({})",
                                model.get_ref(),
                                known.join(", ")
                            ),
                        });
                    }
                }
                for t in m.tuning() {
                    let Some(v) = t.value else { continue };
                    let x = *v.get_ref();
                    match t.range() {
                        Some((min, max)) if !(min..=max).contains(&x) => errors.push(ConfigError {
                            line: at(v.span()),
                            message: format!(
                                "camera {name:?}: motion {} = {x} is outside {min}-{max} ({}'s {})",
                                t.key, t.factory, t.property
                            ),
                        }),
                        Some(_) => {}
                        None => errors.push(ConfigError {
                            line: at(v.span()),
                            message: format!(
                                "camera {name:?}: motion {}: the element {} is missing",
                                t.key, t.factory
                            ),
                        }),
                    }
                }
                for (key, v, ok) in [
                    (
                        "max-age",
                        &m.max_age,
                        gstringrec::store::parse_duration(m.max_age.get_ref()).err(),
                    ),
                    (
                        "max-bytes",
                        &m.max_bytes,
                        gstringrec::store::parse_bytes(m.max_bytes.get_ref()).err(),
                    ),
                ] {
                    if let Some(e) = ok {
                        errors.push(ConfigError {
                            line: at(v.span()),
                            message: format!("camera {name:?}: motion {key}: {e}"),
                        });
                    }
                }
            }
        }
        for rule in &cfg.alerts {
            if let Some(h) = &rule.hours {
                if let Err(e) = parse_hours(h.get_ref()) {
                    errors.push(ConfigError {
                        line: at(h.span()),
                        message: format!("alert {:?}: {e}", rule.name),
                    });
                }
            }
            if !rule.email.is_empty() && cfg.smtp.is_none() {
                errors.push(ConfigError {
                    line: None,
                    message: format!("alert {:?} sends e-mail but there is no [smtp]", rule.name),
                });
            }
            if rule
                .webhook
                .as_ref()
                .is_some_and(|w| !(w.starts_with("http://") || w.starts_with("https://")))
            {
                errors.push(ConfigError {
                    line: None,
                    message: format!(
                        "alert {:?}: webhook must be an http:// or https:// URL",
                        rule.name
                    ),
                });
            }
            let mut names = HashSet::new();
            for t in &rule.targets {
                for (span, message) in t.problems() {
                    errors.push(ConfigError {
                        line: at(span),
                        message: format!("alert {:?}: {message}", rule.name),
                    });
                }
                if !names.insert(t.name()) {
                    errors.push(ConfigError {
                        line: at(t.kind.span()),
                        message: format!(
                            "alert {:?}: two targets are named {:?} (give them names)",
                            rule.name,
                            t.name()
                        ),
                    });
                }
            }
        }
        if let Some(k) = &cfg.kafka {
            if k.brokers.trim().is_empty() {
                errors.push(ConfigError {
                    line: None,
                    message: "kafka: brokers is empty".into(),
                });
            }
            match gstringrec::store::parse_bytes(k.spool_max_bytes.get_ref()) {
                Ok(n) if n >= 4096 => {}
                Ok(_) => errors.push(ConfigError {
                    line: at(k.spool_max_bytes.span()),
                    message: "kafka: spool-max-bytes must be at least 4KiB".into(),
                }),
                Err(e) => errors.push(ConfigError {
                    line: at(k.spool_max_bytes.span()),
                    message: format!("kafka: spool-max-bytes: {e}"),
                }),
            }
            let proto = k.security_protocol.get_ref().to_ascii_lowercase();
            if !matches!(
                proto.as_str(),
                "plaintext" | "ssl" | "sasl_plaintext" | "sasl_ssl"
            ) {
                errors.push(ConfigError {
                    line: at(k.security_protocol.span()),
                    message: format!(
                        "kafka: security-protocol {:?}: plaintext, ssl, sasl_plaintext or sasl_ssl",
                        k.security_protocol.get_ref()
                    ),
                });
            }
            if !matches!(
                k.sasl_mechanism.get_ref().as_str(),
                "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512"
            ) {
                errors.push(ConfigError {
                    line: at(k.sasl_mechanism.span()),
                    message: format!(
                        "kafka: sasl-mechanism {:?}: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
                        k.sasl_mechanism.get_ref()
                    ),
                });
            }
            if proto.starts_with("sasl") && k.username.is_none() {
                errors.push(ConfigError {
                    line: at(k.security_protocol.span()),
                    message: "kafka: sasl needs username and password-env or password-file".into(),
                });
            }
            if !(1..=1000).contains(&k.partitions) || k.delivery_timeout < 1.0 {
                errors.push(ConfigError {
                    line: None,
                    message: "kafka: partitions must be 1-1000 and delivery-timeout at least 1 s"
                        .into(),
                });
            }
        }
        if let Err(e) = gstringrec::store::parse_duration(cfg.general.events_max_age.get_ref()) {
            errors.push(ConfigError {
                line: at(cfg.general.events_max_age.span()),
                message: format!("general: events-max-age: {e}"),
            });
        }
        if let Some(w) = &cfg.web {
            errors.extend(
                validate_web(w)
                    .into_iter()
                    .map(|(span, message)| ConfigError {
                        line: at(span),
                        message,
                    }),
            );
        }
        if let Some(r) = &cfg.rtsp {
            errors.extend(
                validate_rtsp(r)
                    .into_iter()
                    .map(|(span, message)| ConfigError {
                        line: at(span),
                        message,
                    }),
            );
        }
        let mut arlo_names = std::collections::HashSet::new();
        for a in &cfg.arlo {
            for message in a.validate() {
                errors.push(ConfigError {
                    line: None,
                    message,
                });
            }
            if !arlo_names.insert(a.name.clone()) {
                errors.push(ConfigError {
                    line: None,
                    message: format!("arlo {:?}: the name is used twice", a.name),
                });
            }
        }
        if let Some(s) = &cfg.smtp {
            if !matches!(s.tls.as_str(), "none" | "starttls" | "tls") {
                errors.push(ConfigError {
                    line: None,
                    message: format!("smtp tls {:?}: none, starttls or tls", s.tls),
                });
            }
        }
        if errors.is_empty() {
            Ok(cfg)
        } else {
            Err(errors)
        }
    }

    /// The cameras a daemon runs: at least one (an Arlo account brings its own).
    pub fn require_cameras(&self) -> Result<(), String> {
        if self.cameras.is_empty() && self.arlo.is_empty() {
            return Err("the configuration has no [[camera]] and no [[arlo]]".into());
        }
        Ok(())
    }

    pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![ConfigError {
                line: None,
                message: format!("cannot read {}: {e}", path.display()),
            }]
        })?;
        Config::parse(&text)
    }
}

/// Problems in `[web]`, each with the span it is about.
fn validate_web(w: &Web) -> Vec<(std::ops::Range<usize>, String)> {
    let mut errors = listen_and_auth("web", &w.listen, &w.auth, "password");
    if let Err(e) = gstringrec::store::parse_duration(w.session.get_ref()) {
        errors.push((w.session.span(), format!("web: session: {e}")));
    }
    let url = &w.public_url;
    if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
        errors.push((
            0..0,
            "web: public-url must start with http:// or https://".into(),
        ));
    }
    errors
}

impl Camera {
    /// Where the ring recorder writes.
    pub fn ring_dir(&self, general: &General) -> Option<PathBuf> {
        let r = self.record.as_ref().filter(|r| r.enabled)?;
        Some(
            r.location
                .clone()
                .unwrap_or_else(|| general.data_dir.join(self.name()).join("ring")),
        )
    }

    /// Where clips and snapshots go.
    pub fn clips_dir(&self, general: &General) -> Option<PathBuf> {
        let m = self.motion.as_ref().filter(|m| m.enabled && m.clips)?;
        Some(
            m.location
                .clone()
                .unwrap_or_else(|| general.data_dir.join(self.name()).join("clips")),
        )
    }

    /// Whether the camera's pictures are JPEG-encoded for a live view (its own MJPEG port,
    /// or the web app's live wall).
    pub fn live_view(&self, web: bool) -> bool {
        match &self.mjpeg {
            Some(m) => m.enabled && (web || m.port.is_some()),
            None => web,
        }
    }

    pub fn name(&self) -> &str {
        self.name.get_ref()
    }

    pub fn uri(&self) -> &str {
        self.uri.get_ref()
    }

    /// The password from `password-env` or `password-file`, if one is configured.
    pub fn password(&self) -> Result<Option<String>, String> {
        secret(
            &format!("camera {:?}", self.name()),
            self.password_env.as_deref(),
            self.password_file.as_deref(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[general]
status-interval = 10
data-dir = "/tmp/homecam"

[[camera]]
name = "front"
location = "Front door"
uri = "rtsp://admin@192.168.1.20:554/stream2"
password-env = "FRONT_PASSWORD"
record = { max-age = "3d" }
mjpeg = { port = 8081 }
motion = { labels = ["person"], pre-roll = 3, max-rate = 1 }

[[camera]]
name = "garden"
uri = "kasa://admin@192.168.1.21"
password-file = "/etc/homecam/garden.pass"
"#;

    #[test]
    fn a_good_config_parses_with_defaults() {
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(c.general.status_interval, 10);
        assert_eq!(c.cameras.len(), 2);
        let front = &c.cameras[0];
        assert_eq!(front.name(), "front");
        assert_eq!(front.record.as_ref().unwrap().max_age, "3d");
        assert_eq!(front.record.as_ref().unwrap().max_bytes, "20GB");
        let m = front.motion.as_ref().unwrap();
        assert_eq!(m.pre_roll.as_ref().map(|p| *p.get_ref()), Some(3.0));
        assert!(m.post_roll.is_none());
        assert_eq!(m.record.get_ref(), "confirmed");
        assert_eq!(m.max_rate.as_ref().map(|r| *r.get_ref()), Some(1.0));
        assert!(m.sensitivity.is_none());
        assert!(c.cameras[1].motion.is_none());
    }

    /// The ```toml blocks of a markdown text, joined.
    fn toml_blocks(md: &str) -> String {
        let mut out = String::new();
        let mut inside = false;
        for line in md.lines() {
            match (inside, line.trim_start()) {
                (false, "```toml") => inside = true,
                (true, l) if l.starts_with("```") => inside = false,
                (true, _) => {
                    out.push_str(line);
                    out.push('\n');
                }
                _ => {}
            }
        }
        out
    }

    #[test]
    fn the_documented_examples_parse() {
        for (doc, md) in [
            ("docs/homecam.md", include_str!("../../docs/homecam.md")),
            ("README.md", include_str!("../../README.md")),
        ] {
            let text = toml_blocks(md);
            assert!(text.contains("[[camera]]"), "{doc}: no example");
            if let Err(e) = Config::parse(&text) {
                panic!("{doc}: {e:?}\n{text}");
            }
        }
    }

    #[test]
    fn alert_targets_are_checked() {
        let cam = "\n[[camera]]\nname = \"porch\"\nuri = \"rtsp://192.168.1.30/stream1\"\n";
        let docs = toml_blocks(include_str!("../../docs/alerts.md"));
        let c = Config::parse(&format!("{docs}{cam}"))
            .unwrap_or_else(|e| panic!("docs/alerts.md: {e:?}"));
        assert_eq!(c.alerts[0].targets.len(), 6);
        let t = &c.alerts[0].targets[5];
        assert_eq!(
            (t.name(), t.max_delay_secs(), t.timeout().as_secs()),
            ("home-assistant".into(), 600.0, 20)
        );
        assert_eq!(t.quiet_hours(), Some((23 * 60, 7 * 60)));
        let errors = |targets: &str| {
            let text = format!("[[alert]]\nname = \"a\"\n{targets}{cam}");
            Config::parse(&text).err().unwrap_or_default()
        };
        let secret = "https://discord.com/api/webhooks/1/SECRET";
        let e = errors(&format!(
            "[[alert.target]]\nkind = \"discord\"\nurl = \"{secret}\"\n"
        ));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].message.contains("url-env or url-file") && e[0].line == Some(5),
            "{e:?}"
        );
        assert!(!e[0].to_string().contains("SECRET"), "{e:?}");
        let e = errors("[[alert.target]]\nkind = \"signal\"\n");
        assert!(
            e[0].message.contains("is not one of ntfy, pushover"),
            "{e:?}"
        );
        let e = errors("[[alert.target]]\nkind = \"pushover\"\ntoken-env = \"T\"\n");
        assert!(
            e[0].message.contains("needs user-env or user-file"),
            "{e:?}"
        );
        let e = errors("[[alert.target]]\nkind = \"telegram\"\ntoken-env = \"T\"\n");
        assert!(e[0].message.contains("needs chat-id"), "{e:?}");
        let ntfy = "[[alert.target]]\nkind = \"ntfy\"\nurl = \"https://ntfy.sh/t\"\n";
        let e = errors(&format!("{ntfy}{ntfy}"));
        assert!(
            e[0].message.contains("two targets are named \"ntfy\""),
            "{e:?}"
        );
        let e = errors(&format!(
            "{ntfy}timeout = \"0s\"\nquiet-hours = \"7-9\"\nsnapshot = \"gif\"\n"
        ));
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(errors(&format!("{ntfy}token = \"tk_x\"\n"))[0]
            .message
            .contains("unknown field"));
    }

    #[test]
    fn motion_tuning_out_of_range_names_key_and_line() {
        let bad = GOOD.replace("max-rate = 1 }", "max-rate = 1, min-area = 1.5 }");
        let e = Config::parse(&bad).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].line, Some(13), "{e:?}");
        assert!(e[0].message.contains("min-area = 1.5"), "{e:?}");
        let bad = GOOD.replace("max-rate = 1 }", "max-rate = 0, threshold = 0.1 }");
        let e = Config::parse(&bad).unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
        // The ranges are the elements' own.
        for want in [
            "max-rate = 0 is outside 0.01-100 (objectdetect's max-rate)",
            "threshold = 0.1 is outside 0.25-1 (objectdetect's threshold)",
        ] {
            assert!(e.iter().any(|e| e.message.contains(want)), "{want}: {e:?}");
        }
        assert!(e.iter().all(|e| e.line == Some(13)), "{e:?}");
        // The models are objectdetect's own values too.
        let bad = GOOD.replace("max-rate = 1 }", "max-rate = 1, model = \"yolo\" }");
        let e = Config::parse(&bad).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].message.contains("motion model \"yolo\" is not one of objectdetect's models (nanodet-g-416, nanodet-g-320"),
            "{e:?}"
        );
        let good = GOOD.replace(
            "max-rate = 1 }",
            "max-rate = 1, model = \"nanodet-g-256\" }",
        );
        Config::parse(&good).unwrap();
    }

    #[test]
    fn errors_name_their_line() {
        let bad = GOOD.replace("uri = \"kasa://admin@192.168.1.21\"", "uri = \"http://x\"");
        let e = Config::parse(&bad).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].line, Some(17), "{e:?}");
        assert!(
            e[0].message
                .contains("http:// is not a camera URI camsrc opens"),
            "{e:?}"
        );

        let e = Config::parse(&GOOD.replace("status-interval", "status-intervall")).unwrap_err();
        assert_eq!(e[0].line, Some(3), "{e:?}");
        assert!(e[0].message.contains("unknown field"), "{e:?}");

        let e = Config::parse(&GOOD.replace("name = \"garden\"", "name = \"front\"")).unwrap_err();
        assert_eq!(e[0].line, Some(16), "{e:?}");
        assert!(e[0].message.contains("used twice"), "{e:?}");
    }

    #[test]
    fn inline_passwords_are_refused_without_being_echoed() {
        let bad = GOOD.replace(
            "password-env = \"FRONT_PASSWORD\"",
            "password = \"hunter2\"",
        );
        let e = Config::parse(&bad).unwrap_err();
        assert_eq!(e[0].line, Some(10), "{e:?}");
        assert!(!e[0].message.contains("hunter2"));
        let bad = GOOD.replace("rtsp://admin@", "rtsp://admin:hunter2@");
        let e = Config::parse(&bad).unwrap_err();
        assert_eq!(e[0].line, Some(9), "{e:?}");
        assert!(!e[0].to_string().contains("hunter2"), "{e:?}");
    }

    #[test]
    fn passwords_come_from_the_environment_or_a_file() {
        let c = Config::parse(GOOD).unwrap();
        std::env::set_var("FRONT_PASSWORD", "s3cret");
        assert_eq!(c.cameras[0].password().unwrap().as_deref(), Some("s3cret"));
        let e = c.cameras[1].password().unwrap_err();
        assert!(e.contains("/etc/homecam/garden.pass"), "{e}");
    }
}
