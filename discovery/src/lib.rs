//! Finding the cameras on the LAN: `cam scan` and `homecam scan`.
//!
//! Three methods run side by side, each with its own deadline:
//! - **Kasa**: TP-Link's UDP 9999 discovery ([`kasa_protocol::discovery`]), sent as a
//!   broadcast and, with a subnet, to every address of it (for networks that drop
//!   broadcasts);
//! - **ONVIF** ([`onvif`]): the WS-Discovery multicast probe, answered by Tapo and most
//!   RTSP cameras;
//! - **TUTK**: the vendor SDK's LAN search, when an SDK can be loaded.
//!
//! A method that cannot send, or finds nothing, says so in a line of its own. What the
//! scan prints never holds a password: `--config` writes `password-env` placeholders.
//! No GStreamer here.

pub mod onvif;

use kasa_protocol::discovery as kasa;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// The most devices one method keeps (a flood of answers costs no more than this).
const MAX_DEVICES: usize = 1024;
/// The most malformed answers described; more are only counted.
const MAX_MALFORMED: usize = 5;

pub const USAGE: &str = "scan [--timeout SECONDS] [--subnet A.B.C.D/N] [--broadcast A.B.C.D] [--only kasa,onvif,tutk] [--json | --config]
  Finds cameras on the local network: Kasa (UDP 9999 discovery), ONVIF/Tapo (WS-Discovery),
  TUTK (the vendor SDK's LAN search, with TUTK_LIBRARY_PATH). --timeout: how long each method
  waits for answers (default 2). --subnet: also probe each address of it (networks that drop
  broadcasts; /16 or smaller). --json: the report as JSON. --config: homecam [[camera]] blocks,
  with password-env placeholders.";

/// What to look for, and how long.
#[derive(Clone, Debug)]
pub struct Options {
    pub timeout: Duration,
    pub subnet: Option<(Ipv4Addr, u8)>,
    pub broadcast: Ipv4Addr,
    pub kasa: bool,
    pub onvif: bool,
    pub tutk: bool,
    /// The TUTK SDK's location (else `TUTK_LIBRARY_PATH`, else the system's).
    pub tutk_library: Option<std::path::PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: Duration::from_secs(2),
            subnet: None,
            broadcast: Ipv4Addr::BROADCAST,
            kasa: true,
            onvif: true,
            tutk: true,
            tutk_library: None,
        }
    }
}

/// How the report is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Config,
}

/// One device found.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Camera {
    /// `kasa`, `onvif` or `tutk`: the method that found it.
    pub kind: &'static str,
    pub ip: String,
    pub model: String,
    pub name: String,
    /// Kasa devices only.
    pub mac: String,
    /// Kasa: the device id; ONVIF: the endpoint (`uuid:...`); TUTK: the UID.
    pub id: String,
    /// A camera this project can stream.
    pub camera: bool,
    /// The `camsrc` URI, without any user or password (`None`: not known).
    pub uri: Option<String>,
    pub note: String,
}

/// How one method went.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Method {
    pub method: &'static str,
    /// `found`, `nothing`, `failed` or `skipped`.
    pub outcome: &'static str,
    pub found: usize,
    /// One line for people.
    pub message: String,
    /// Answers that could not be read (at most a few are described).
    pub malformed: Vec<String>,
}

/// All that a scan found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub cameras: Vec<Camera>,
    pub methods: Vec<Method>,
    /// Devices that claim another one's identity: reported apart, never merged.
    pub conflicts: Vec<String>,
}

/// Parses the scan's arguments (after the word `scan`).
pub fn parse_args(args: &[String]) -> Result<(Options, Format), String> {
    let mut o = Options::default();
    let mut format = Format::Table;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--timeout" | "-t" => {
                let v = val()?;
                let s: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| (0.1..=60.0).contains(s))
                    .ok_or(format!("--timeout {v:?}: seconds between 0.1 and 60"))?;
                o.timeout = Duration::from_secs_f64(s);
            }
            "--subnet" => o.subnet = Some(parse_subnet(val()?)?),
            "--broadcast" => {
                let v = val()?;
                o.broadcast = v
                    .parse()
                    .map_err(|_| format!("--broadcast {v:?}: an IPv4 address"))?;
            }
            "--only" => {
                let v = val()?;
                o.kasa = false;
                o.onvif = false;
                o.tutk = false;
                for m in v.split(',') {
                    match m.trim() {
                        "kasa" => o.kasa = true,
                        "onvif" | "tapo" => o.onvif = true,
                        "tutk" => o.tutk = true,
                        other => {
                            return Err(format!("--only {other:?}: kasa, onvif or tutk"));
                        }
                    }
                }
            }
            "--tutk-library" => o.tutk_library = Some(val()?.into()),
            "--json" => format = Format::Json,
            "--config" => format = Format::Config,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok((o, format))
}

/// `A.B.C.D/N`, N from 16 to 32.
pub fn parse_subnet(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let bad = || format!("--subnet {s:?}: an IPv4 network like 192.168.1.0/24 (/16 to /32)");
    let (ip, len) = s.split_once('/').ok_or_else(bad)?;
    let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    if !(16..=32).contains(&len) {
        return Err(bad());
    }
    let mask = u32::MAX.checked_shl(32 - len as u32).unwrap_or(0);
    Ok((Ipv4Addr::from(u32::from(ip) & mask), len))
}

/// The host addresses of a subnet (without its network and broadcast addresses, unless
/// it is a /31 or /32).
pub fn subnet_hosts((net, len): (Ipv4Addr, u8)) -> impl Iterator<Item = Ipv4Addr> {
    let base = u32::from(net);
    let size = 1u64 << (32 - len as u32);
    let (first, last) = if size <= 2 {
        (0, size - 1)
    } else {
        (1, size - 2)
    };
    (first..=last).map(move |i| Ipv4Addr::from(base.wrapping_add(i as u32)))
}

/// Runs the chosen methods side by side.
pub fn scan(o: &Options) -> Report {
    let (k, v, t) = std::thread::scope(|s| {
        let k = o.kasa.then(|| s.spawn(|| scan_kasa(o)));
        let v = o.onvif.then(|| s.spawn(|| scan_onvif(o)));
        let t = o.tutk.then(|| s.spawn(|| scan_tutk(o)));
        let join = |h: Option<std::thread::ScopedJoinHandle<'_, Found>>| {
            h.map(|h| {
                h.join()
                    .unwrap_or_else(|_| Found::failed("?", "the scan thread panicked".into()))
            })
        };
        (join(k), join(v), join(t))
    });
    let mut r = Report::default();
    for f in [k, v, t].into_iter().flatten() {
        r.cameras.extend(f.cameras);
        r.methods.push(f.method);
        r.conflicts.extend(f.conflicts);
    }
    r
}

struct Found {
    cameras: Vec<Camera>,
    method: Method,
    conflicts: Vec<String>,
}

impl Found {
    fn failed(method: &'static str, message: String) -> Found {
        Found {
            cameras: Vec::new(),
            method: Method {
                method,
                outcome: "failed",
                found: 0,
                message,
                malformed: Vec::new(),
            },
            conflicts: Vec::new(),
        }
    }
}

/// Collects datagrams until `deadline`, handing each to `take`. `take` returns whether
/// the answer was readable; the rest are described (a few) and counted.
fn receive(
    sock: &UdpSocket,
    deadline: Instant,
    malformed: &mut Vec<String>,
    mut take: impl FnMut(&[u8], SocketAddr) -> Result<(), String>,
) -> usize {
    let mut buf = vec![0u8; 65_536];
    let mut bad = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return bad;
        }
        if sock.set_read_timeout(Some(left)).is_err() {
            return bad;
        }
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                if let Err(e) = take(&buf[..n], from) {
                    bad += 1;
                    if malformed.len() < MAX_MALFORMED {
                        malformed.push(format!("{}: {e}", from.ip()));
                    }
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return bad
            }
            // An ICMP "port unreachable" from a per-address probe shows up here: go on.
            Err(_) => continue,
        }
    }
}

/// A method's result: its devices and its line ("N devices (what)", or "nothing
/// answered..."), with the unreadable answers counted and the first ones described.
fn found(
    method: &'static str,
    cameras: Vec<Camera>,
    what: String,
    timeout: Duration,
    (bad, malformed): (usize, Vec<String>),
    conflicts: Vec<String>,
) -> Found {
    let n = cameras.len();
    let mut message = if n > 0 {
        format!("{n} device{} ({what})", if n == 1 { "" } else { "s" })
    } else {
        format!(
            "nothing answered within {:.1} s ({what})",
            timeout.as_secs_f64()
        )
    };
    if bad > 0 {
        message.push_str(&format!(
            "; {bad} malformed answer{} ignored",
            if bad == 1 { "" } else { "s" }
        ));
    }
    Found {
        cameras,
        method: Method {
            method,
            outcome: if n > 0 { "found" } else { "nothing" },
            found: n,
            message,
            malformed,
        },
        conflicts,
    }
}

fn scan_kasa(o: &Options) -> Found {
    const M: &str = "kasa";
    let sock = match UdpSocket::bind("0.0.0.0:0") {
        Ok(s) => s,
        Err(e) => return Found::failed(M, format!("could not open a UDP socket: {e}")),
    };
    let _ = sock.set_broadcast(true);
    let probe = kasa::encrypt(kasa::PROBE);
    let mut sent = Vec::new();
    let mut first_error = None;
    match sock.send_to(&probe, (o.broadcast, kasa::PORT)) {
        Ok(_) => sent.push(format!("UDP {} broadcast to {}", kasa::PORT, o.broadcast)),
        Err(e) => {
            first_error = Some(format!(
                "broadcast to {}:{}: {e} (no interface with a broadcast route? try --subnet)",
                o.broadcast,
                kasa::PORT
            ))
        }
    }
    if let Some(net) = o.subnet {
        let mut n = 0;
        for host in subnet_hosts(net) {
            match sock.send_to(&probe, (host, kasa::PORT)) {
                Ok(_) => n += 1,
                Err(e) => {
                    first_error.get_or_insert(format!("probe to {host}:{}: {e}", kasa::PORT));
                }
            }
        }
        if n > 0 {
            sent.push(format!("{n} addresses in {}/{}", net.0, net.1));
        }
    }
    if sent.is_empty() {
        return Found::failed(
            M,
            format!("could not send: {}", first_error.unwrap_or_default()),
        );
    }
    let mut devices: BTreeMap<Ipv4Addr, kasa::SysInfo> = BTreeMap::new();
    let mut malformed = Vec::new();
    let deadline = Instant::now() + o.timeout;
    let bad = receive(&sock, deadline, &mut malformed, |data, from| {
        let info = kasa::parse_reply(data)?;
        if let std::net::IpAddr::V4(ip) = from.ip() {
            if devices.len() < MAX_DEVICES || devices.contains_key(&ip) {
                devices.insert(ip, info);
            }
        }
        Ok(())
    });
    let mut by_mac: HashMap<&str, Vec<Ipv4Addr>> = HashMap::new();
    for (ip, d) in &devices {
        if !d.mac.is_empty() {
            by_mac.entry(d.mac.as_str()).or_default().push(*ip);
        }
    }
    let mut conflicts: Vec<String> = by_mac
        .iter()
        .filter(|(_, ips)| ips.len() > 1)
        .map(|(mac, ips)| {
            let ips: Vec<String> = ips.iter().map(Ipv4Addr::to_string).collect();
            format!(
                "kasa: MAC {mac} answered from {}: two devices claim one MAC (listed apart, not merged)",
                ips.join(" and ")
            )
        })
        .collect();
    conflicts.sort();
    let cameras: Vec<Camera> = devices
        .iter()
        .map(|(ip, d)| {
            let conflict = by_mac.get(d.mac.as_str()).is_some_and(|v| v.len() > 1);
            let mut note = if d.camera {
                String::new()
            } else {
                format!(
                    "not a camera ({})",
                    if d.device_type.is_empty() {
                        "no device type"
                    } else {
                        &d.device_type
                    }
                )
            };
            if conflict {
                if !note.is_empty() {
                    note.push_str("; ");
                }
                note.push_str("its MAC is claimed by another device too");
            }
            Camera {
                kind: "kasa",
                ip: ip.to_string(),
                model: d.model.clone(),
                name: d.alias.clone(),
                mac: d.mac.clone(),
                id: d.device_id.clone(),
                camera: d.camera,
                uri: d.camera.then(|| format!("kasa://{ip}")),
                note,
            }
        })
        .collect();
    found(
        M,
        cameras,
        sent.join(", and "),
        o.timeout,
        (bad, malformed),
        conflicts,
    )
}

/// A fresh `urn:uuid:` (version 4 layout) from the standard library's per-process random
/// keys and the clock: unique enough to tell our probe's answers from others'.
fn message_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut words = [0u64; 2];
    for (i, w) in words.iter_mut().enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        h.write_usize(i);
        h.write_u32(std::process::id());
        *w = h.finish();
    }
    let b: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
    let hex =
        |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "urn:uuid:{}-{}-4{}-8{}-{}",
        hex(0..4),
        hex(4..6),
        &hex(6..8)[1..],
        &hex(8..10)[1..],
        hex(10..16)
    )
}

fn scan_onvif(o: &Options) -> Found {
    const M: &str = "onvif";
    let sock = match UdpSocket::bind("0.0.0.0:0") {
        Ok(s) => s,
        Err(e) => return Found::failed(M, format!("could not open a UDP socket: {e}")),
    };
    // Discovery stays on the local network.
    let _ = sock.set_multicast_ttl_v4(1);
    let id = message_id();
    if let Err(e) = sock.send_to(
        onvif::probe(&id).as_bytes(),
        (onvif::MULTICAST, onvif::PORT),
    ) {
        return Found::failed(
            M,
            format!(
                "could not send: WS-Discovery probe to {}:{}: {e} (no interface with a multicast route?)",
                onvif::MULTICAST,
                onvif::PORT
            ),
        );
    }
    // By endpoint: a camera answers each probe once per interface it heard it on.
    let mut devices: BTreeMap<String, (Ipv4Addr, onvif::Match)> = BTreeMap::new();
    let mut conflicts = Vec::new();
    let mut malformed = Vec::new();
    let deadline = Instant::now() + o.timeout;
    let bad = receive(&sock, deadline, &mut malformed, |data, from| {
        let matches = onvif::parse_matches(data, Some(&id))?;
        let std::net::IpAddr::V4(ip) = from.ip() else {
            return Ok(());
        };
        for m in matches {
            let key = if m.endpoint.is_empty() {
                format!("{ip}")
            } else {
                m.endpoint.clone()
            };
            match devices.get(&key) {
                Some((seen, _)) if *seen != ip => {
                    let c = format!(
                        "onvif: endpoint {key} answered from {seen} and {ip}: two devices claim one identity (the first is listed)"
                    );
                    if !conflicts.contains(&c) && conflicts.len() < MAX_MALFORMED {
                        conflicts.push(c);
                    }
                }
                Some(_) => {}
                None if devices.len() < MAX_DEVICES => {
                    devices.insert(key, (ip, m));
                }
                None => {}
            }
        }
        Ok(())
    });
    let mut cameras: Vec<Camera> = devices
        .into_values()
        .map(|(ip, m)| {
            let tapo = m.is_tapo();
            let named_host = m.xaddrs.iter().find_map(|a| onvif::xaddr_host(a));
            let mut note = if tapo {
                "Tapo: stream1 is the main stream, stream2 the sub-stream; log in with the camera account made in the Tapo app".to_string()
            } else {
                format!(
                    "RTSP path not known: ask the camera's ONVIF service ({}) or its manual",
                    m.xaddrs.first().map(String::as_str).unwrap_or("no address given")
                )
            };
            if let Some(h) = named_host.filter(|h| *h != ip) {
                note.push_str(&format!("; it names {h} as its address"));
            }
            Camera {
                kind: "onvif",
                ip: ip.to_string(),
                model: m.hardware,
                name: if m.location.is_empty() || m.name != "TP-IPC" {
                    m.name
                } else {
                    m.location
                },
                mac: String::new(),
                id: m.endpoint,
                camera: true,
                uri: tapo.then(|| format!("rtsp://{ip}:554/stream1")),
                note,
            }
        })
        .collect();
    cameras.sort_by(|a, b| a.ip.cmp(&b.ip));
    let what = format!("WS-Discovery probe to {}:{}", onvif::MULTICAST, onvif::PORT);
    found(M, cameras, what, o.timeout, (bad, malformed), conflicts)
}

fn scan_tutk(o: &Options) -> Found {
    const M: &str = "tutk";
    let sdk = match tutk::Sdk::load(o.tutk_library.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            // The library not being there is the usual case (it is not shipped): say so
            // shortly; any other load failure in full.
            let why = match &e {
                tutk::Error::Library(m) if m.contains("not found") => {
                    "no TUTK SDK (the vendor's library is not shipped: set TUTK_LIBRARY_PATH to it)"
                        .to_string()
                }
                e => format!("the TUTK SDK could not be loaded: {e}"),
            };
            let mut f = Found::failed(M, format!("skipped: {why}"));
            f.method.outcome = "skipped";
            return f;
        }
    };
    let key = std::env::var("TUTK_LICENSE_KEY")
        .ok()
        .map(tutk::Secret::new);
    let searched = sdk
        .acquire(key.as_ref())
        .and_then(|b| tutk::Backend::search(&b, o.timeout, 64));
    let devices = match searched {
        Ok(d) => d,
        Err(e) => return Found::failed(M, format!("the SDK's LAN search failed: {e}")),
    };
    let mut seen = std::collections::HashSet::new();
    let cameras: Vec<Camera> = devices
        .into_iter()
        .filter(|d| seen.insert(d.uid.clone()))
        .map(|d| Camera {
            kind: "tutk",
            ip: onvif::clean(&d.ip, 64),
            model: String::new(),
            name: onvif::clean(&d.name, 64),
            mac: String::new(),
            uri: Some(format!("tutk://{}", d.uid)),
            id: d.uid,
            camera: true,
            note: String::new(),
        })
        .collect();
    found(
        M,
        cameras,
        format!("the SDK's LAN search, from {}", sdk.origin),
        o.timeout,
        (0, Vec::new()),
        Vec::new(),
    )
}

/// The report as a table, with a line per method and per conflict.
pub fn table(r: &Report) -> String {
    let mut rows = vec![[
        "KIND".to_string(),
        "IP".into(),
        "MODEL".into(),
        "NAME".into(),
        "MAC / ID".into(),
        "URI".into(),
    ]];
    for c in &r.cameras {
        let mac_id = if c.mac.is_empty() { &c.id } else { &c.mac };
        let uri = match &c.uri {
            Some(u) => u.clone(),
            None if c.camera => "?".into(),
            None => "-".into(),
        };
        rows.push([
            c.kind.to_string(),
            c.ip.clone(),
            or_dash(&c.model),
            or_dash(&c.name),
            or_dash(mac_id),
            uri,
        ]);
    }
    let mut width = [0usize; 6];
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    if !r.cameras.is_empty() {
        for row in &rows {
            let line: Vec<String> = row
                .iter()
                .zip(width)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
        for c in r.cameras.iter().filter(|c| !c.note.is_empty()) {
            out.push_str(&format!("  {} {}: {}\n", c.kind, c.ip, c.note));
        }
    }
    for m in &r.methods {
        out.push_str(&format!("{}: {}\n", m.method, m.message));
        for b in &m.malformed {
            out.push_str(&format!("{}:   malformed answer from {b}\n", m.method));
        }
    }
    for c in &r.conflicts {
        out.push_str(&format!("conflict: {c}\n"));
    }
    out
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}

/// homecam `[[camera]]` blocks for the cameras found, ready to edit: users and
/// passwords are placeholders (`password-env` names a variable to set).
pub fn config(r: &Report) -> String {
    let mut out = String::from(
        "# homecam cameras found by scan: edit the users, set the password variables\n",
    );
    for m in &r.methods {
        out.push_str(&format!("# {}: {}\n", m.method, m.message));
    }
    for c in &r.conflicts {
        out.push_str(&format!("# conflict: {c}\n"));
    }
    let mut names: Vec<String> = Vec::new();
    for c in r.cameras.iter().filter(|c| c.camera) {
        let mut base = camera_name(&c.name, 32);
        if base.is_empty() {
            base = format!("{}-{}", c.kind, c.ip.replace('.', "-"));
        }
        let mut name = base.clone();
        let mut n = 2;
        while names.contains(&name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        names.push(name.clone());
        let var = format!("{}_PASSWORD", name.to_ascii_uppercase().replace('-', "_"));
        out.push_str(&format!(
            "\n# {} {} at {}{}\n",
            c.kind,
            or_dash(&c.model),
            c.ip,
            if c.name.is_empty() {
                String::new()
            } else {
                format!(" ({})", c.name.replace('\n', " "))
            }
        ));
        let uri = match (c.kind, &c.uri) {
            ("kasa", _) => {
                out.push_str("# the user is your Kasa account's e-mail, with its @ written %40\n");
                format!("kasa://you%40example.com@{}", c.ip)
            }
            ("onvif", Some(u)) => {
                out.push_str("# the user is the camera account set in the Tapo app\n");
                u.replacen("rtsp://", "rtsp://camera-user@", 1)
            }
            ("onvif", None) => {
                out.push_str(&format!("# {}\n", c.note));
                format!("rtsp://camera-user@{}:554/PATH", c.ip)
            }
            (_, Some(u)) => u.replacen("tutk://", "tutk://admin@", 1),
            (_, None) => continue,
        };
        out.push_str(&format!(
            "[[camera]]\nname = {}\nuri = {}\npassword-env = {}\n",
            toml_str(&name),
            toml_str(&uri),
            toml_str(&var)
        ));
    }
    out
}

/// Letters and digits of `s`, lower-cased, other runs as one '-', at most `max` long: a
/// camera name homecam accepts (it names files and MQTT topics). Also homecam's name for
/// an Arlo device.
pub fn camera_name(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out
        .trim_end_matches('-')
        .chars()
        .take(max)
        .collect::<String>();
    out.trim_end_matches('-').to_string()
}

fn toml_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if c.is_control() => o.push_str(&format!("\\u{:04X}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// The whole command: parses `args`, scans, prints. Exit code 0 when the scan ran (even
/// if it found nothing), 1 when no method could send, 2 for bad arguments.
pub fn main(prog: &str, args: &[String]) -> i32 {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("usage: {prog} {USAGE}");
        return 0;
    }
    let (opts, format) = match parse_args(args) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{prog} scan: {e}\nusage: {prog} {USAGE}");
            return 2;
        }
    };
    let r = scan(&opts);
    let text = match format {
        Format::Json => serde_json::to_string_pretty(&r).unwrap_or_default() + "\n",
        Format::Table => table(&r),
        Format::Config => config(&r),
    };
    print!("{text}");
    if r.methods
        .iter()
        .all(|m| m.outcome == "failed" || m.outcome == "skipped")
    {
        eprintln!("{prog} scan: no method could search the network");
        return 1;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_are_bounded_and_give_their_hosts() {
        assert_eq!(
            parse_subnet("10.77.0.9/24").unwrap(),
            (Ipv4Addr::new(10, 77, 0, 0), 24)
        );
        assert_eq!(
            subnet_hosts(parse_subnet("10.0.0.0/24").unwrap()).count(),
            254
        );
        assert_eq!(
            subnet_hosts(parse_subnet("10.0.0.5/32").unwrap()).count(),
            1
        );
        assert_eq!(
            subnet_hosts(parse_subnet("10.0.0.4/31").unwrap()).count(),
            2
        );
        assert!(parse_subnet("10.0.0.0/8")
            .unwrap_err()
            .contains("/16 to /32"));
        assert!(parse_subnet("10.0.0/24").is_err());
        assert!(parse_subnet("10.0.0.0").is_err());
    }

    #[test]
    fn arguments_are_checked() {
        let a = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        let (o, f) = parse_args(&a("--timeout 0.5 --only kasa,tapo --json")).unwrap();
        assert_eq!(o.timeout, Duration::from_millis(500));
        assert!(o.kasa && o.onvif && !o.tutk);
        assert_eq!(f, Format::Json);
        assert!(parse_args(&a("--timeout 0"))
            .unwrap_err()
            .contains("0.1 and 60"));
        assert!(parse_args(&a("--only arlo"))
            .unwrap_err()
            .contains("kasa, onvif or tutk"));
        assert!(parse_args(&a("--frobnicate")).is_err());
        assert!(parse_args(&a("--subnet"))
            .unwrap_err()
            .contains("needs a value"));
    }

    fn report() -> Report {
        Report {
            cameras: vec![
                Camera {
                    kind: "kasa",
                    ip: "10.0.0.2".into(),
                    model: "EC60(US)".into(),
                    name: "Front \"door\"".into(),
                    mac: "50:C7:BF:0A:1B:2C".into(),
                    id: "80".into(),
                    camera: true,
                    uri: Some("kasa://10.0.0.2".into()),
                    note: String::new(),
                },
                Camera {
                    kind: "kasa",
                    ip: "10.0.0.3".into(),
                    model: "HS100(UK)".into(),
                    name: "Lamp".into(),
                    mac: "50:C7:BF:01:02:03".into(),
                    id: "81".into(),
                    camera: false,
                    uri: None,
                    note: "not a camera (IOT.SMARTPLUGSWITCH)".into(),
                },
                Camera {
                    kind: "onvif",
                    ip: "10.0.0.4".into(),
                    model: "C200".into(),
                    name: "Front door".into(),
                    mac: String::new(),
                    id: "uuid:1".into(),
                    camera: true,
                    uri: Some("rtsp://10.0.0.4:554/stream1".into()),
                    note: String::new(),
                },
                Camera {
                    kind: "tutk",
                    ip: "10.0.0.5".into(),
                    model: String::new(),
                    name: String::new(),
                    mac: String::new(),
                    id: "HBNASLSCFC1MN4Y9221A".into(),
                    camera: true,
                    uri: Some("tutk://HBNASLSCFC1MN4Y9221A".into()),
                    note: String::new(),
                },
            ],
            methods: vec![],
            conflicts: vec![],
        }
    }

    #[test]
    fn config_blocks_load_in_homecam_shape_with_unique_names_and_no_password() {
        let c = config(&report());
        assert!(c.contains("name = \"front-door\"\nuri = \"kasa://you%40example.com@10.0.0.2\"\npassword-env = \"FRONT_DOOR_PASSWORD\""), "{c}");
        assert!(
            c.contains(
                "name = \"front-door-2\"\nuri = \"rtsp://camera-user@10.0.0.4:554/stream1\""
            ),
            "{c}"
        );
        assert!(
            c.contains("name = \"tutk-10-0-0-5\"\nuri = \"tutk://admin@HBNASLSCFC1MN4Y9221A\""),
            "{c}"
        );
        // The plug is not a camera: no block for it.
        assert!(!c.contains("10.0.0.3"), "{c}");
        assert!(!c.to_lowercase().contains("password ="), "{c}");
    }

    #[test]
    fn the_table_has_a_row_per_device_and_its_notes() {
        let t = table(&report());
        let lines: Vec<&str> = t.lines().collect();
        let words = |l: &str| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
        assert_eq!(words(lines[0]), "KIND IP MODEL", "{t}");
        assert_eq!(words(lines[1]), "kasa 10.0.0.2 EC60(US)", "{t}");
        assert_eq!(words(lines[4]), "tutk 10.0.0.5 -", "{t}");
        assert!(t.contains("kasa 10.0.0.3: not a camera"), "{t}");
    }

    #[test]
    fn the_fuzz_seeds_are_good_answers() {
        let d = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
        let read = |f: &str| std::fs::read(d.join(f)).unwrap();
        let cam = kasa::parse_reply(&read("kasa-camera.bin")).unwrap();
        assert!(cam.camera && cam.alias == "Front door", "{cam:?}");
        let plug = kasa::parse_reply(&read("kasa-plug.bin")).unwrap();
        assert!(!plug.camera && plug.mac == "50:C7:BF:01:02:03", "{plug:?}");
        let m = onvif::parse_matches(&read("tapo-probematches.xml"), None).unwrap();
        assert_eq!(m[0].hardware, "C200");
    }

    #[test]
    fn message_ids_differ() {
        let a = message_id();
        assert_ne!(a, message_id());
        assert!(a.starts_with("urn:uuid:") && a.len() == 45, "{a}");
    }
}
