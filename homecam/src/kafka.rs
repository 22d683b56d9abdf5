//! Kafka: events, camera status and insights, each to its topic, keyed by camera, through an
//! idempotent producer (librdkafka, built from source by `rdkafka`). Every record goes
//! through the disk [`Spool`] first and leaves it only when the broker has acknowledged it:
//! a broker that is away, or slow, or a daemon restart, loses nothing within the spool's
//! bound, and records are delivered in the order they were made.
//!
//! One thread owns the producer and the spool. It keeps up to [`IN_FLIGHT`] records in the
//! producer; when a delivery fails (the broker has been away for `delivery-timeout`), it
//! waits for the rest in flight to settle, then sends again from the oldest unacknowledged
//! record. A record already written whose acknowledgement was lost can so arrive twice
//! (at-least-once): consumers dedupe by `id` and `type`.

use crate::config::KafkaConfig;
use crate::spool::Spool;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::Message;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Records handed to the producer and not yet acknowledged, at most.
pub const IN_FLIGHT: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    Events = 0,
    Status = 1,
    Insights = 2,
}

/// What the Kafka thread has done, for status lines and `/metrics`.
#[derive(Default)]
pub struct KafkaStats {
    pub delivered: AtomicU64,
    /// Dropped to keep the spool's bound (the oldest first).
    pub lost: AtomicU64,
    /// Delivery attempts that failed and were retried from the spool.
    pub retries: AtomicU64,
    pub spool_bytes: AtomicU64,
    pub connected: AtomicBool,
    pub last_error: Mutex<String>,
}

enum Msg {
    Record(Topic, String, Vec<u8>),
    Close(Duration),
}

pub struct Kafka {
    tx: mpsc::Sender<Msg>,
    pub stats: Arc<KafkaStats>,
    thread: Option<JoinHandle<()>>,
}

/// librdkafka's callbacks: deliveries and errors come back to the Kafka thread.
struct Ctx {
    done: Mutex<Vec<(u64, Result<(), String>)>>,
    /// The producer's identity is no longer accepted (fenced, epoch or sequence trouble,
    /// a fatal error): only a new producer (a new producer id) gets on.
    renew: AtomicBool,
    /// A topic is missing (a broker that lost its storage): create the topics again.
    unknown_topic: AtomicBool,
    stats: Arc<KafkaStats>,
    log: mpsc::Sender<String>,
}

impl ClientContext for Ctx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        // Connection trouble repeats every second while the broker is away: errors are
        // kept in the stats and reported once per outage by the Kafka thread.
        if matches!(
            level,
            RDKafkaLogLevel::Emerg
                | RDKafkaLogLevel::Alert
                | RDKafkaLogLevel::Critical
                | RDKafkaLogLevel::Error
                | RDKafkaLogLevel::Warning
        ) {
            *self.stats.last_error.lock().unwrap() = format!("{fac}: {message}");
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.stats.connected.store(false, Ordering::SeqCst);
        }
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) {
            self.renew.store(true, Ordering::SeqCst);
            let _ = self.log.send(format!("kafka: fatal: {reason}"));
        }
        *self.stats.last_error.lock().unwrap() = reason.to_string();
    }
}

impl ProducerContext for Ctx {
    type DeliveryOpaque = Box<u64>;

    fn delivery(&self, result: &DeliveryResult<'_>, offset: Box<u64>) {
        let r = match result {
            Ok(_) => Ok(()),
            Err((e, m)) => {
                if matches!(
                    e.rdkafka_error_code(),
                    Some(
                        RDKafkaErrorCode::ProducerFenced
                            | RDKafkaErrorCode::InvalidProducerEpoch
                            | RDKafkaErrorCode::OutOfOrderSequenceNumber
                            | RDKafkaErrorCode::UnknownProducerId
                            | RDKafkaErrorCode::InvalidProducerIdMapping
                            | RDKafkaErrorCode::Fatal
                    )
                ) {
                    self.renew.store(true, Ordering::SeqCst);
                }
                if matches!(
                    e.rdkafka_error_code(),
                    Some(
                        RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic
                    )
                ) {
                    self.unknown_topic.store(true, Ordering::SeqCst);
                }
                Err(format!("{e} (topic {})", m.topic()))
            }
        };
        self.done.lock().unwrap().push((*offset, r));
    }
}

/// The librdkafka settings shared by the producer and the admin client. The password is
/// only ever in this configuration, never in a message.
pub(crate) fn client_config(cfg: &KafkaConfig) -> Result<ClientConfig, String> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.brokers)
        .set("client.id", &cfg.client_id)
        .set(
            "security.protocol",
            cfg.security_protocol.get_ref().to_ascii_lowercase(),
        )
        // Find a broker that is back within a second or two.
        .set("reconnect.backoff.ms", "100")
        .set("reconnect.backoff.max.ms", "2000")
        .set("socket.connection.setup.timeout.ms", "5000");
    if cfg
        .security_protocol
        .get_ref()
        .to_ascii_lowercase()
        .starts_with("sasl")
    {
        c.set("sasl.mechanism", cfg.sasl_mechanism.get_ref())
            .set("sasl.username", cfg.username.clone().unwrap_or_default())
            .set("sasl.password", cfg.password()?.unwrap_or_default());
    }
    Ok(c)
}

impl Kafka {
    /// Opens the spool (delivering what an earlier run left) and starts the Kafka thread.
    /// `log` receives lines for the daemon's log.
    pub fn start(
        cfg: &KafkaConfig,
        spool_dir: PathBuf,
        log: mpsc::Sender<String>,
    ) -> Result<Kafka, String> {
        let spool = Spool::open(&spool_dir, cfg.spool_max_bytes())?;
        if spool.repaired > 0 {
            let _ = log.send(format!(
                "kafka: spool: cut {} bytes of a record torn by a crash",
                spool.repaired
            ));
        }
        if !spool.is_empty() {
            let _ = log.send(format!(
                "kafka: spool: {} bytes left undelivered by an earlier run, sent first",
                spool.pending_bytes()
            ));
        }
        let stats = Arc::new(KafkaStats::default());
        let producer = new_producer(cfg, &stats, &log)?;
        let admin = if cfg.create_topics {
            Some(
                client_config(cfg)?
                    .create::<AdminClient<_>>()
                    .map_err(|e| format!("kafka: cannot create the admin client: {e}"))?,
            )
        } else {
            None
        };
        let (tx, rx) = mpsc::channel();
        let mut w = Worker {
            producer,
            cfg: cfg.clone(),
            renewals: 0,
            failed_rounds: 0,
            admin,
            spool,
            topics: [
                cfg.events_topic.clone(),
                cfg.status_topic.clone(),
                cfg.insights_topic.clone(),
            ],
            partitions: cfg.partitions,
            brokers: cfg.brokers.clone(),
            stats: stats.clone(),
            log,
            next: 0,
            in_flight: 0,
            acked: BTreeSet::new(),
            failed: false,
            retry_at: Instant::now(),
            topics_ready: !cfg.create_topics,
            down_reported: false,
        };
        w.next = w.spool.head();
        let thread = std::thread::Builder::new()
            .name("kafka".into())
            .spawn(move || w.run(rx))
            .map_err(|e| e.to_string())?;
        Ok(Kafka {
            tx,
            stats,
            thread: Some(thread),
        })
    }

    /// Queues a record; it is on disk within milliseconds and never blocks the caller.
    pub fn send(&self, topic: Topic, key: &str, payload: Vec<u8>) {
        let _ = self.tx.send(Msg::Record(topic, key.into(), payload));
    }

    /// Delivers what it can within `wait`; the rest stays in the spool for the next start.
    pub fn close(mut self, wait: Duration) {
        let _ = self.tx.send(Msg::Close(wait));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An idempotent producer: acks from all replicas, retried by librdkafka for
/// `delivery-timeout`, without duplicates or reordering within that time.
fn new_producer(
    cfg: &KafkaConfig,
    stats: &Arc<KafkaStats>,
    log: &mpsc::Sender<String>,
) -> Result<BaseProducer<Ctx>, String> {
    let ctx = Ctx {
        done: Mutex::new(Vec::new()),
        renew: AtomicBool::new(false),
        unknown_topic: AtomicBool::new(false),
        stats: stats.clone(),
        log: log.clone(),
    };
    client_config(cfg)?
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set(
            "message.timeout.ms",
            ((cfg.delivery_timeout * 1000.0) as u64).to_string(),
        )
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", (IN_FLIGHT * 2).to_string())
        .create_with_context(ctx)
        .map_err(|e| format!("kafka: cannot create the producer: {e}"))
}

struct Worker {
    producer: BaseProducer<Ctx>,
    cfg: KafkaConfig,
    /// Producers replaced because the broker no longer accepted their identity.
    renewals: u64,
    /// Retry rounds in a row that delivered nothing.
    failed_rounds: u32,
    admin: Option<AdminClient<rdkafka::client::DefaultClientContext>>,
    spool: Spool,
    topics: [String; 3],
    partitions: i32,
    brokers: String,
    stats: Arc<KafkaStats>,
    log: mpsc::Sender<String>,
    /// Next spool offset to hand to the producer.
    next: u64,
    in_flight: usize,
    /// Acknowledged records past the head (acknowledgements of different partitions come
    /// in any order; the head moves over a contiguous run).
    acked: BTreeSet<u64>,
    /// A delivery failed: once nothing is in flight, send again from the head.
    failed: bool,
    retry_at: Instant,
    topics_ready: bool,
    down_reported: bool,
}

impl Worker {
    fn run(&mut self, rx: mpsc::Receiver<Msg>) {
        let mut closing: Option<Instant> = None;
        loop {
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(m) => self.take(m, &mut closing),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    closing.get_or_insert_with(Instant::now);
                }
            }
            while let Ok(m) = rx.try_recv() {
                self.take(m, &mut closing);
            }
            self.producer.poll(Duration::ZERO);
            self.settle();
            if !self.topics_ready && Instant::now() >= self.retry_at {
                self.create_topics();
            }
            if self.topics_ready && !self.failed && Instant::now() >= self.retry_at {
                self.produce();
            }
            self.stats
                .spool_bytes
                .store(self.spool.pending_bytes(), Ordering::Relaxed);
            if let Some(deadline) = closing {
                if self.spool.is_empty() || Instant::now() >= deadline {
                    break;
                }
            }
        }
        // What is still in flight is not acknowledged: it stays in the spool.
        self.producer.poll(Duration::from_millis(100));
        self.settle();
        if !self.spool.is_empty() {
            let _ = self.log.send(format!(
                "kafka: {} bytes undelivered, kept in the spool for the next start",
                self.spool.pending_bytes()
            ));
        }
    }

    fn take(&mut self, m: Msg, closing: &mut Option<Instant>) {
        match m {
            Msg::Record(topic, key, payload) => {
                match self.spool.append(topic as u8, key.as_bytes(), &payload) {
                    Ok(0) => {}
                    Ok(n) => {
                        self.stats.lost.fetch_add(n, Ordering::Relaxed);
                        let lost = self.stats.lost.load(Ordering::Relaxed);
                        // Once per power of two, not once per record.
                        if lost.is_power_of_two() || lost == n {
                            let _ = self.log.send(format!(
                                "kafka: spool full: dropped the oldest records ({lost} lost so far)"
                            ));
                        }
                        self.next = self.next.max(self.spool.head());
                    }
                    Err(e) => {
                        self.stats.lost.fetch_add(1, Ordering::Relaxed);
                        let _ = self.log.send(format!("kafka: {e}; record lost"));
                    }
                }
            }
            Msg::Close(wait) => {
                closing.get_or_insert(Instant::now() + wait);
            }
        }
    }

    /// Takes the delivery reports in and moves the head.
    fn settle(&mut self) {
        let done = std::mem::take(&mut *self.producer.context().done.lock().unwrap());
        for (offset, r) in done {
            self.in_flight = self.in_flight.saturating_sub(1);
            match r {
                Ok(()) => {
                    self.failed_rounds = 0;
                    self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                    if offset >= self.spool.head() {
                        self.acked.insert(offset);
                    }
                    if !self.stats.connected.swap(true, Ordering::SeqCst) || self.down_reported {
                        if self.down_reported {
                            let _ = self.log.send(format!(
                                "kafka: {} reachable again; delivering the spool in order",
                                self.brokers
                            ));
                        }
                        self.down_reported = false;
                    }
                }
                Err(e) => {
                    self.failed = true;
                    self.stats.connected.store(false, Ordering::SeqCst);
                    *self.stats.last_error.lock().unwrap() = e.clone();
                    if !self.down_reported {
                        self.down_reported = true;
                        let _ = self.log.send(format!(
                            "kafka: delivery to {} failed: {e}; records wait in the spool",
                            self.brokers
                        ));
                    }
                }
            }
        }
        let mut head = self.spool.head();
        let start = head;
        while self.acked.remove(&head) {
            match self.spool.read_at(head) {
                Ok(Some(e)) => head = e.end,
                _ => break,
            }
        }
        if head != start {
            if let Err(e) = self.spool.advance(head) {
                let _ = self.log.send(e);
            }
            self.acked = self.acked.split_off(&head);
        }
        if self.failed
            && self.admin.is_some()
            && self
                .producer
                .context()
                .unknown_topic
                .swap(false, Ordering::SeqCst)
        {
            self.topics_ready = false;
        }
        if self.failed && self.producer.context().renew.load(Ordering::SeqCst) {
            self.renew();
        }
        if self.failed && self.in_flight == 0 {
            // The broker may have come back without its topics (a restart of a broker with
            // memory storage, a cluster rebuilt): librdkafka only says "timed out" then.
            // Creating them again is cheap and accepts existing ones.
            if self.admin.is_some() {
                self.topics_ready = false;
            }
            // A broker that came back as a new one (restarted with memory storage, or
            // failed over) may never accept this producer's id and sequence numbers
            // again, and librdkafka then only reports timeouts. Two failed rounds in a row
            // and it gets a new producer (a new id).
            self.failed_rounds += 1;
            if self.failed_rounds >= 2 {
                self.failed_rounds = 0;
                self.renew();
            }
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            self.failed = false;
            self.next = self.spool.head();
            self.retry_at = Instant::now() + Duration::from_secs(1);
        }
    }

    /// Replaces the producer: what the old one still holds is purged (it is all in the
    /// spool) and sent again, from the head, by the new one.
    fn renew(&mut self) {
        self.producer
            .purge(rdkafka::producer::PurgeConfig::default().queue().inflight());
        self.producer.poll(Duration::from_millis(100));
        match new_producer(&self.cfg, &self.stats, &self.log) {
            Ok(p) => {
                self.producer = p;
                self.renewals += 1;
                self.in_flight = 0;
                let _ = self.log.send(format!(
                    "kafka: a new producer (#{}) sends again from the spool: the broker no longer took the old one's records",
                    self.renewals
                ));
            }
            Err(e) => {
                let _ = self.log.send(e);
            }
        }
    }

    fn produce(&mut self) {
        self.next = self.next.max(self.spool.head());
        while self.in_flight < crate::kafka::IN_FLIGHT && self.next < self.spool.end() {
            let e = match self.spool.read_at(self.next) {
                Ok(Some(e)) => e,
                Ok(None) => break,
                Err(err) => {
                    // Unreadable from here on: nothing after it can be found again.
                    let n = self.spool.end() - self.next;
                    let _ = self
                        .log
                        .send(format!("kafka: {err}: {n} bytes of the spool skipped"));
                    self.stats.lost.fetch_add(1, Ordering::Relaxed);
                    self.next = self.spool.end();
                    if self.in_flight == 0 {
                        let _ = self.spool.advance(self.next);
                    }
                    break;
                }
            };
            if self.acked.contains(&e.offset) {
                self.next = e.end;
                continue;
            }
            let topic = &self.topics[(e.topic as usize).min(2)];
            let record = BaseRecord::with_opaque_to(topic, Box::new(e.offset))
                .key(&e.key[..])
                .payload(&e.payload[..]);
            match self.producer.send(record) {
                Ok(()) => {
                    self.in_flight += 1;
                    self.next = e.end;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => break,
                Err((err, _)) => {
                    let _ = self.log.send(format!("kafka: cannot produce: {err}"));
                    self.failed = true;
                    break;
                }
            }
        }
    }

    /// Creates the three topics, accepting those that exist. While the broker is away it
    /// is tried again every few seconds; records wait in the spool meanwhile.
    fn create_topics(&mut self) {
        let Some(admin) = &self.admin else {
            self.topics_ready = true;
            return;
        };
        let new: Vec<NewTopic> = self
            .topics
            .iter()
            .map(|t| NewTopic::new(t, self.partitions, TopicReplication::Fixed(-1)))
            .collect();
        let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(5)));
        let result = futures_executor::block_on(admin.create_topics(&new, &opts));
        let problem = match result {
            Ok(rs) => rs
                .into_iter()
                .filter_map(|r| r.err())
                .find(|(_, code)| *code != RDKafkaErrorCode::TopicAlreadyExists)
                .map(|(t, code)| format!("topic {t}: {code}")),
            Err(e) => Some(e.to_string()),
        };
        match problem {
            None => {
                self.topics_ready = true;
                self.stats.connected.store(true, Ordering::SeqCst);
                let _ = self.log.send(format!(
                    "kafka: connected to {}; topics {}",
                    self.brokers,
                    self.topics.join(", ")
                ));
            }
            Some(p) => {
                *self.stats.last_error.lock().unwrap() = p.clone();
                if !self.down_reported {
                    self.down_reported = true;
                    let _ = self.log.send(format!(
                        "kafka: {}: cannot create the topics: {p}; records wait in the spool",
                        self.brokers
                    ));
                }
                self.retry_at = Instant::now() + Duration::from_secs(2);
            }
        }
    }
}

/// Records in `topic` (all partitions) and the newest one as (key, payload), read by a
/// consumer that joins no group and commits nothing.
#[allow(clippy::type_complexity)]
pub fn topic_summary(
    cfg: &KafkaConfig,
    topic: &str,
) -> Result<(i64, Option<(String, String)>), String> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = client_config(cfg)?
        .set("group.id", "homecam-kafka-check")
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| e.to_string())?;
    let t = Duration::from_secs(10);
    let md = c
        .fetch_metadata(Some(topic), t)
        .map_err(|e| format!("metadata: {e}"))?;
    let parts = md
        .topics()
        .first()
        .map(|t| t.partitions().len())
        .unwrap_or(0) as i32;
    if parts == 0 {
        return Err("no such topic".into());
    }
    let mut total = 0;
    let mut newest: Option<(i64, String, String)> = None;
    for p in 0..parts {
        let (low, high) = c
            .fetch_watermarks(topic, p, t)
            .map_err(|e| format!("partition {p}: {e}"))?;
        total += high - low;
        if high > low {
            let mut tpl = rdkafka::TopicPartitionList::new();
            tpl.add_partition_offset(topic, p, rdkafka::Offset::Offset(high - 1))
                .map_err(|e| e.to_string())?;
            c.assign(&tpl).map_err(|e| e.to_string())?;
            let deadline = Instant::now() + t;
            while Instant::now() < deadline {
                if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
                    let ts = m.timestamp().to_millis().unwrap_or(0);
                    if newest.as_ref().is_none_or(|(n, _, _)| ts >= *n) {
                        newest = Some((
                            ts,
                            String::from_utf8_lossy(m.key().unwrap_or(b"")).into_owned(),
                            String::from_utf8_lossy(m.payload().unwrap_or(b"")).into_owned(),
                        ));
                    }
                    break;
                }
            }
        }
    }
    Ok((total, newest.map(|(_, k, v)| (k, v))))
}
