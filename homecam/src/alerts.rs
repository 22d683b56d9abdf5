//! Alert rules over the events: a rate over a window (`rate` events in `window` s), a
//! local time-of-day window (`hours = "02:00-06:00"`, across midnight allowed), label and
//! camera filters; one alert per rule per `cooldown`. Delivered by e-mail (SMTP, `lettre`,
//! the event's snapshot inline) on a thread of its own, so a slow mail server never holds
//! the daemon up; push services and webhooks are [`crate::notify`]'s.

use crate::config::{AlertRule, SmtpConfig};
use crate::event::Event;
use serde::{Deserialize, Serialize};
use std::collections::{HashSet, VecDeque};
use std::sync::mpsc;
use std::time::Duration;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Alert {
    pub rule: String,
    pub message: String,
    pub camera: String,
    pub location: String,
    pub label: String,
    /// Matching events in the window when it fired.
    pub count: usize,
    pub window: f64,
    /// Unix seconds.
    pub time: f64,
    pub event_id: String,
}

/// Minutes after local midnight of a Unix time, in this machine's time zone.
pub fn local_minutes(unix: f64) -> u32 {
    let t = unix as libc::time_t;
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: localtime_r writes only into `tm`.
    let r = unsafe { libc::localtime_r(&t, &mut tm) };
    if r.is_null() {
        return 0;
    }
    (tm.tm_hour * 60 + tm.tm_min) as u32
}

pub fn within(minute: u32, (a, b): (u32, u32)) -> bool {
    if a <= b {
        (a..b).contains(&minute)
    } else {
        minute >= a || minute < b
    }
}

struct RuleState {
    rule: AlertRule,
    hours: Option<(u32, u32)>,
    /// Times of the matching events in the window.
    times: VecDeque<f64>,
    counted: HashSet<String>,
    last_fired: Option<f64>,
}

/// Evaluates the rules; [`Alerts::on_event`] returns the alerts that fire.
pub struct Alerts {
    rules: Vec<RuleState>,
}

impl Alerts {
    pub fn new(rules: &[AlertRule]) -> Alerts {
        Alerts {
            rules: rules
                .iter()
                .map(|r| RuleState {
                    rule: r.clone(),
                    hours: r.hours(),
                    times: VecDeque::new(),
                    counted: HashSet::new(),
                    last_fired: None,
                })
                .collect(),
        }
    }

    /// `minute` is the event's local time of day (minutes), given for testability.
    pub fn on_event_at(&mut self, e: &Event, minute: u32) -> Vec<Alert> {
        let mut out = Vec::new();
        for st in &mut self.rules {
            let r = &st.rule;
            if !r.cameras.is_empty() && !r.cameras.contains(&e.camera) {
                continue;
            }
            // With labels: the event counts once an object with one of them is confirmed;
            // without: every motion event counts when it starts.
            let matches = if r.labels.is_empty() {
                e.kind == "new"
            } else {
                e.confirmed && r.labels.iter().any(|l| *l == e.label || *l == e.group)
            };
            if !matches || st.counted.contains(&e.id) {
                continue;
            }
            if st.hours.is_some_and(|h| !within(minute, h)) {
                continue;
            }
            st.counted.insert(e.id.clone());
            if st.counted.len() > 10_000 {
                st.counted.clear();
            }
            let now = e.start_time;
            st.times.push_back(now);
            while st.times.front().is_some_and(|t| now - t > r.window) {
                st.times.pop_front();
            }
            let count = st.times.len();
            if count < r.rate.max(1) as usize {
                continue;
            }
            if st.last_fired.is_some_and(|t| now - t < r.cooldown) {
                continue;
            }
            st.last_fired = Some(now);
            let what = if r.labels.is_empty() {
                "motion events".to_string()
            } else {
                format!("{} events", r.labels.join("/"))
            };
            out.push(Alert {
                rule: r.name.clone(),
                message: format!(
                    "{}: {count} {what} within {:.0} s at {} ({})",
                    r.name, r.window, e.camera, e.location
                ),
                camera: e.camera.clone(),
                location: e.location.clone(),
                label: e.label.clone(),
                count,
                window: r.window,
                time: now,
                event_id: e.id.clone(),
            });
        }
        out
    }

    pub fn on_event(&mut self, e: &Event) -> Vec<Alert> {
        self.on_event_at(e, local_minutes(e.start_time))
    }
}

/// What the mail of an alert carries besides the alert.
#[derive(Debug, Clone, Default)]
pub struct MailExtras {
    /// The event's snapshot (a JPEG), shown inline.
    pub snapshot: Option<std::path::PathBuf>,
    /// A link to the event in the web app.
    pub link: Option<String>,
}

/// Mails alerts on a thread of its own; results come back as log lines.
pub struct Sender {
    tx: mpsc::Sender<(Alert, AlertRule, MailExtras)>,
    pending: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Sender {
    pub fn start(smtp: Option<SmtpConfig>, log: mpsc::Sender<String>) -> Sender {
        let (tx, rx) = mpsc::channel::<(Alert, AlertRule, MailExtras)>();
        let pending = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let p2 = pending.clone();
        std::thread::Builder::new()
            .name("alerts".into())
            .spawn(move || {
                for (alert, rule, extras) in rx {
                    if !rule.email.is_empty() {
                        let r = match &smtp {
                            Some(s) => send_mail(s, &rule.email, &alert, &extras),
                            None => Err("no [smtp] configured".into()),
                        };
                        let _ = log.send(match r {
                            Ok(()) => format!(
                                "alert {:?} mailed to {}",
                                alert.rule,
                                rule.email.join(", ")
                            ),
                            Err(e) => format!("alert {:?}: e-mail failed: {e}", alert.rule),
                        });
                    }
                    p2.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                }
            })
            .expect("alerts thread");
        Sender { tx, pending }
    }

    pub fn send(&self, alert: Alert, rule: AlertRule, extras: MailExtras) {
        if rule.email.is_empty() {
            return;
        }
        self.pending
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if self.tx.send((alert, rule, extras)).is_err() {
            self.pending
                .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Nothing left to deliver.
    pub fn idle(&self) -> bool {
        self.pending.load(std::sync::atomic::Ordering::SeqCst) == 0
    }
}

/// The largest snapshot put in a mail.
const MAX_MAIL_IMAGE: u64 = 4 << 20;

/// A JPEG file's bytes (at most `max`), when it is one.
pub fn read_jpeg(path: &std::path::Path, max: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    f.take(max + 1).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 <= max && bytes.starts_with(&[0xff, 0xd8])).then_some(bytes)
}

fn send_mail(s: &SmtpConfig, to: &[String], a: &Alert, x: &MailExtras) -> Result<(), String> {
    use lettre::message::header::ContentType;
    use lettre::message::{Attachment, MultiPart, SinglePart};
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    use lettre::{Message, SmtpTransport, Transport};
    let mut b = Message::builder()
        .from(
            s.from
                .parse()
                .map_err(|e| format!("from {:?}: {e}", s.from))?,
        )
        .subject(format!("[homecam] {}", a.message));
    for t in to {
        b = b.to(t.parse().map_err(|e| format!("to {t:?}: {e}"))?);
    }
    let mut text = format!(
        "{}\n\nrule: {}\ncamera: {} ({})\nlabel: {}\nevents: {} within {:.0} s\nevent: {}\n",
        a.message, a.rule, a.camera, a.location, a.label, a.count, a.window, a.event_id
    );
    if let Some(l) = &x.link {
        text.push_str(&format!("link: {l}\n"));
    }
    let image = x
        .snapshot
        .as_deref()
        .and_then(|p| read_jpeg(p, MAX_MAIL_IMAGE));
    let msg = match image {
        // text/plain for every reader, and HTML with the picture inline (multipart/related,
        // the image by Content-ID) for the others.
        Some(jpeg) => {
            let esc = |s: &str| {
                s.replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
                    .replace('"', "&quot;")
            };
            let link = x
                .link
                .as_ref()
                .map(|l| format!("<p><a href=\"{}\">Open the event</a></p>", esc(l)))
                .unwrap_or_default();
            let html = format!(
                "<p><b>{}</b></p><p><img src=\"cid:snapshot\" alt=\"snapshot\" style=\"max-width:100%\"></p><pre>{}</pre>{link}",
                esc(&a.message),
                esc(&text)
            );
            let jpeg_type = ContentType::parse("image/jpeg").map_err(|e| e.to_string())?;
            b.multipart(
                MultiPart::alternative()
                    .singlepart(SinglePart::plain(text))
                    .multipart(
                        MultiPart::related()
                            .singlepart(SinglePart::html(html))
                            .singlepart(
                                Attachment::new_inline("snapshot".into()).body(jpeg, jpeg_type),
                            ),
                    ),
            )
        }
        None => b.header(ContentType::TEXT_PLAIN).body(text),
    }
    .map_err(|e| e.to_string())?;
    let tls = |host: &str| TlsParameters::new(host.into()).map_err(|e| e.to_string());
    let mut t = SmtpTransport::builder_dangerous(&s.host)
        .port(s.port)
        .timeout(Some(Duration::from_secs(20)));
    t = match s.tls.as_str() {
        "starttls" => t.tls(Tls::Required(tls(&s.host)?)),
        "tls" => t.tls(Tls::Wrapper(tls(&s.host)?)),
        _ => t.tls(Tls::None),
    };
    if let Some(user) = &s.username {
        t = t.credentials(Credentials::new(
            user.clone(),
            s.password()?.unwrap_or_default(),
        ));
    }
    t.build()
        .send(&msg)
        .map(|_| ())
        .map_err(|e| format!("SMTP {}:{}: {e}", s.host, s.port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(rate: u32, hours: Option<&str>, labels: &[&str]) -> AlertRule {
        AlertRule {
            name: "r".into(),
            rate,
            window: 60.0,
            hours: hours.map(|h| toml::Spanned::new(0..0, h.to_string())),
            labels: labels.iter().map(|s| s.to_string()).collect(),
            cameras: vec![],
            cooldown: 600.0,
            email: vec![],
            webhook: None,
            targets: vec![],
        }
    }

    fn ev(id: &str, t: f64, kind: &'static str, label: &str) -> Event {
        Event {
            kind,
            id: id.into(),
            camera: "front".into(),
            camera_name: "front".into(),
            location: "Door".into(),
            label: label.into(),
            group: String::new(),
            score: 0.8,
            top_score: 0.8,
            bbox: None,
            zones: vec![],
            start_time: t,
            end_time: None,
            has_clip: false,
            has_snapshot: false,
            clip: None,
            snapshot: None,
            event_type: "motion",
            motion_score: 0.1,
            verdict: if label == "motion" {
                "pending"
            } else {
                "confirmed"
            },
            confirmed: label != "motion",
            dismissed: false,
            origin: String::new(),
            source: "",
            media_url: None,
        }
    }

    #[test]
    fn more_than_five_a_minute_fires_once_per_cooldown() {
        let mut a = Alerts::new(&[rule(6, None, &[])]);
        let mut fired = 0;
        for i in 0..20 {
            fired += a
                .on_event_at(
                    &ev(&i.to_string(), 1000.0 + i as f64 * 5.0, "new", "motion"),
                    600,
                )
                .len();
        }
        assert_eq!(fired, 1);
        // Slow events never fire.
        let mut a = Alerts::new(&[rule(6, None, &[])]);
        let slow: usize = (0..20)
            .map(|i| {
                a.on_event_at(
                    &ev(&i.to_string(), 1000.0 + i as f64 * 20.0, "new", "motion"),
                    600,
                )
                .len()
            })
            .sum();
        assert_eq!(slow, 0);
    }

    #[test]
    fn hours_and_labels_filter() {
        let mut a = Alerts::new(&[rule(1, Some("02:00-06:00"), &["person"])]);
        assert!(a
            .on_event_at(&ev("1", 0.0, "update", "person"), 12 * 60)
            .is_empty());
        assert!(a
            .on_event_at(&ev("2", 0.0, "update", "cat"), 3 * 60)
            .is_empty());
        assert_eq!(
            a.on_event_at(&ev("3", 0.0, "update", "person"), 3 * 60)
                .len(),
            1
        );
        let mut b = Alerts::new(&[rule(1, Some("22:00-06:00"), &[])]);
        assert_eq!(
            b.on_event_at(&ev("1", 0.0, "new", "motion"), 23 * 60).len(),
            1
        );
        assert_eq!(crate::config::parse_hours("2:00-06:30"), Ok((120, 390)));
        assert!(crate::config::parse_hours("2-6").is_err());
    }
}
