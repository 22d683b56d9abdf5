//! The Kafka spool: every record is appended here before it is produced, and stays until
//! the broker has acknowledged it, so a broker that is away (or a daemon restart) loses
//! nothing within the bound. Records leave in the order they came.
//!
//! On disk, in the spool folder:
//! - `spool.log`: records, each `A5 topic:u8 key_len:u16le payload_len:u32le crc32:u32le key
//!   payload`, the CRC over topic, lengths, key and payload;
//! - `spool.head`: `base:u64le head:u64le crc32:u32le`. Offsets are logical: byte 0 of
//!   `spool.log` is offset `base`, and compaction moves `base` on, so offsets held by
//!   records in flight stay valid.
//!
//! Above `max_bytes` of undelivered records, the oldest are dropped and counted: the newest
//! records (what is happening now) are the ones worth keeping. A torn record at the end
//! (a crash mid-write) is cut off at the next open. Lengths read from the file are bounded
//! before anything is allocated.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const MAGIC: u8 = 0xA5;
const HEADER: u64 = 12;
/// Keys are camera names.
pub const MAX_KEY: usize = 255;
/// Records are JSON events, statuses and insights: far below this.
pub const MAX_PAYLOAD: usize = 1 << 20;

/// One record read back from the spool.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Logical offset of the record.
    pub offset: u64,
    /// Logical offset just past it.
    pub end: u64,
    pub topic: u8,
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
}

pub struct Spool {
    dir: PathBuf,
    log: File,
    /// Logical offset of byte 0 of the file.
    base: u64,
    /// First undelivered record.
    head: u64,
    /// Logical end of the file.
    end: u64,
    max_bytes: u64,
    /// Records dropped to keep the bound, since the spool was opened.
    pub lost: u64,
    /// Bytes of a torn or corrupt tail cut off at open.
    pub repaired: u64,
}

fn encode(topic: u8, key: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER as usize + key.len() + payload.len());
    v.push(MAGIC);
    v.push(topic);
    v.extend_from_slice(&(key.len() as u16).to_le_bytes());
    v.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    v.extend_from_slice(&[0; 4]);
    v.extend_from_slice(key);
    v.extend_from_slice(payload);
    let crc = crc(&v[1..8], &v[12..]);
    v[8..12].copy_from_slice(&crc.to_le_bytes());
    v
}

fn crc(a: &[u8], b: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(a);
    h.update(b);
    h.finalize()
}

/// Parses one record at the start of `buf`: `Ok(Some((topic, key, payload, len)))`,
/// `Ok(None)` when `buf` is too short to hold it, `Err` when it is not a record.
#[allow(clippy::type_complexity)]
pub fn parse(buf: &[u8]) -> Result<Option<(u8, &[u8], &[u8], usize)>, &'static str> {
    if buf.len() < HEADER as usize {
        return Ok(None);
    }
    if buf[0] != MAGIC {
        return Err("bad magic");
    }
    let (klen, plen) = lengths(buf[..HEADER as usize].try_into().unwrap())?;
    let total = HEADER as usize + klen + plen;
    if buf.len() < total {
        return Ok(None);
    }
    let want = u32::from_le_bytes(buf[8..12].try_into().unwrap());
    if crc(&buf[1..8], &buf[12..total]) != want {
        return Err("bad checksum");
    }
    let key = &buf[12..12 + klen];
    Ok(Some((buf[1], key, &buf[12 + klen..total], total)))
}

fn lengths(h: &[u8; 12]) -> Result<(usize, usize), &'static str> {
    let klen = u16::from_le_bytes([h[2], h[3]]) as usize;
    let plen = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
    if klen > MAX_KEY || plen > MAX_PAYLOAD {
        return Err("length out of bounds");
    }
    Ok((klen, plen))
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, keeping what an earlier run left undelivered.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Spool, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("kafka spool: cannot create {}: {e}", dir.display()))?;
        let path = dir.join("spool.log");
        let log = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| format!("kafka spool: cannot open {}: {e}", path.display()))?;
        let (base, head) = read_head(&dir.join("spool.head")).unwrap_or((0, 0));
        let len = log.metadata().map_err(|e| e.to_string())?.len();
        let mut s = Spool {
            dir: dir.into(),
            log,
            base,
            head: head.clamp(base, base + len),
            end: base + len,
            max_bytes: max_bytes.max(HEADER + 1),
            lost: 0,
            repaired: 0,
        };
        // Walk the undelivered records; cut the file at the first one that is not whole.
        let mut at = s.head;
        while at < s.end {
            match s.read_at(at) {
                Ok(Some(e)) => at = e.end,
                _ => break,
            }
        }
        if at < s.end {
            s.repaired = s.end - at;
            s.log
                .set_len(at - s.base)
                .map_err(|e| format!("kafka spool: cannot repair {}: {e}", path.display()))?;
            s.end = at;
        }
        if s.head == s.end {
            s.reset()?;
        }
        Ok(s)
    }

    /// Undelivered bytes.
    pub fn pending_bytes(&self) -> u64 {
        self.end - self.head
    }

    pub fn is_empty(&self) -> bool {
        self.head == self.end
    }

    pub fn head(&self) -> u64 {
        self.head
    }

    pub fn end(&self) -> u64 {
        self.end
    }

    /// Appends a record, dropping the oldest undelivered ones when the bound needs it.
    /// Returns how many were dropped. A record that alone exceeds the bound is refused.
    pub fn append(&mut self, topic: u8, key: &[u8], payload: &[u8]) -> Result<u64, String> {
        if key.len() > MAX_KEY || payload.len() > MAX_PAYLOAD {
            return Err("kafka spool: record too large".into());
        }
        let rec = encode(topic, key, payload);
        if rec.len() as u64 > self.max_bytes {
            self.lost += 1;
            return Ok(1);
        }
        let mut dropped = 0;
        while self.pending_bytes() + rec.len() as u64 > self.max_bytes {
            match self.read_at(self.head) {
                Ok(Some(e)) => {
                    self.head = e.end;
                    dropped += 1;
                }
                _ => {
                    self.head = self.end;
                }
            }
        }
        self.lost += dropped;
        if dropped > 0 {
            self.save_head()?;
            self.compact()?;
        }
        self.log
            .write_all(&rec)
            .map_err(|e| format!("kafka spool: cannot write: {e}"))?;
        self.end += rec.len() as u64;
        Ok(dropped)
    }

    /// The record at logical offset `at`: `Ok(None)` past the end or before the file.
    pub fn read_at(&mut self, at: u64) -> Result<Option<Entry>, String> {
        if at < self.base || at + HEADER > self.end {
            return Ok(None);
        }
        let mut h = [0u8; 12];
        self.log
            .seek(SeekFrom::Start(at - self.base))
            .and_then(|_| self.log.read_exact(&mut h))
            .map_err(|e| e.to_string())?;
        if h[0] != MAGIC {
            return Err("kafka spool: bad record".into());
        }
        let (klen, plen) = lengths(&h).map_err(|e| format!("kafka spool: {e}"))?;
        let total = HEADER + (klen + plen) as u64;
        if at + total > self.end {
            return Ok(None);
        }
        let mut buf = vec![0u8; total as usize];
        buf[..12].copy_from_slice(&h);
        self.log
            .read_exact(&mut buf[12..])
            .map_err(|e| e.to_string())?;
        match parse(&buf) {
            Ok(Some((topic, key, payload, _))) => Ok(Some(Entry {
                offset: at,
                end: at + total,
                topic,
                key: key.to_vec(),
                payload: payload.to_vec(),
            })),
            Ok(None) => Ok(None),
            Err(e) => Err(format!("kafka spool: {e}")),
        }
    }

    /// Everything before `to` is delivered (or given up). Saves the head; empties the
    /// file when all is delivered.
    pub fn advance(&mut self, to: u64) -> Result<(), String> {
        if to <= self.head {
            return Ok(());
        }
        self.head = to.min(self.end);
        if self.head == self.end {
            self.reset()
        } else {
            self.save_head()?;
            self.compact()
        }
    }

    /// All delivered: start the file again (offsets go on growing).
    fn reset(&mut self) -> Result<(), String> {
        self.log
            .set_len(0)
            .map_err(|e| format!("kafka spool: cannot truncate: {e}"))?;
        self.base = self.end;
        self.head = self.end;
        self.save_head()
    }

    /// Rewrites the file without its delivered prefix once that prefix is large.
    fn compact(&mut self) -> Result<(), String> {
        let dead = self.head - self.base;
        if dead < (1 << 20).max(self.max_bytes / 2) {
            return Ok(());
        }
        let tmp = self.dir.join("spool.log.new");
        let path = self.dir.join("spool.log");
        let mut out = File::create(&tmp).map_err(|e| format!("kafka spool: {e}"))?;
        self.log
            .seek(SeekFrom::Start(dead))
            .map_err(|e| e.to_string())?;
        std::io::copy(&mut (&self.log).take(self.end - self.head), &mut out)
            .map_err(|e| format!("kafka spool: compaction: {e}"))?;
        out.sync_all().map_err(|e| e.to_string())?;
        // The head file first: a crash between the two leaves head == base on the old
        // file, which re-sends the delivered prefix rather than losing anything.
        let old_base = self.base;
        self.base = self.head;
        if let Err(e) = self.save_head() {
            self.base = old_base;
            return Err(e);
        }
        std::fs::rename(&tmp, &path).map_err(|e| format!("kafka spool: {e}"))?;
        self.log = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("kafka spool: {e}"))?;
        Ok(())
    }

    fn save_head(&self) -> Result<(), String> {
        let mut b = Vec::with_capacity(20);
        b.extend_from_slice(&self.base.to_le_bytes());
        b.extend_from_slice(&self.head.to_le_bytes());
        let c = crc(&b, &[]);
        b.extend_from_slice(&c.to_le_bytes());
        let tmp = self.dir.join("spool.head.new");
        std::fs::write(&tmp, &b)
            .and_then(|_| std::fs::rename(&tmp, self.dir.join("spool.head")))
            .map_err(|e| format!("kafka spool: cannot save the head: {e}"))
    }
}

fn read_head(path: &Path) -> Option<(u64, u64)> {
    let b = std::fs::read(path).ok()?;
    if b.len() != 20 || crc(&b[..16], &[]) != u32::from_le_bytes(b[16..20].try_into().ok()?) {
        return None;
    }
    let base = u64::from_le_bytes(b[..8].try_into().ok()?);
    let head = u64::from_le_bytes(b[8..16].try_into().ok()?);
    (head >= base).then_some((base, head))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("homecam-spool-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn drain(s: &mut Spool) -> Vec<String> {
        let mut out = Vec::new();
        let mut at = s.head();
        while let Ok(Some(e)) = s.read_at(at) {
            out.push(String::from_utf8(e.payload).unwrap());
            at = e.end;
        }
        out
    }

    #[test]
    fn in_order_across_reopen_and_delivery() {
        let d = dir("order");
        let mut s = Spool::open(&d, 1 << 20).unwrap();
        for i in 0..10 {
            s.append(i % 3, b"cam", format!("r{i}").as_bytes()).unwrap();
        }
        let first = s.read_at(s.head()).unwrap().unwrap();
        assert_eq!((first.topic, &first.key[..]), (0, &b"cam"[..]));
        let second = s.read_at(first.end).unwrap().unwrap();
        s.advance(second.end).unwrap();
        drop(s);
        let mut s = Spool::open(&d, 1 << 20).unwrap();
        let left = drain(&mut s);
        assert_eq!(left, (2..10).map(|i| format!("r{i}")).collect::<Vec<_>>());
        s.advance(s.end()).unwrap();
        assert!(s.is_empty());
        assert_eq!(std::fs::metadata(d.join("spool.log")).unwrap().len(), 0);
        // Offsets go on growing after the file is emptied.
        let before = s.end();
        s.append(1, b"cam", b"later").unwrap();
        assert_eq!(s.read_at(before).unwrap().unwrap().payload, b"later");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn bound_drops_the_oldest_and_counts_them() {
        let d = dir("bound");
        let rec = encode(0, b"cam", b"0123456789").len() as u64; // 25 bytes
        let mut s = Spool::open(&d, rec * 4).unwrap();
        for i in 0..10 {
            s.append(0, b"cam", format!("{i:010}").as_bytes()).unwrap();
        }
        assert_eq!(s.lost, 6);
        assert_eq!(
            drain(&mut s),
            (6..10).map(|i| format!("{i:010}")).collect::<Vec<_>>()
        );
        assert!(s.pending_bytes() <= rec * 4);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn compaction_keeps_offsets_valid() {
        let d = dir("compact");
        let payload = vec![b'x'; 100_000];
        let mut s = Spool::open(&d, 4 << 20).unwrap();
        let mut offsets = Vec::new();
        for _ in 0..30 {
            offsets.push(s.end());
            s.append(2, b"cam", &payload).unwrap();
        }
        // Deliver 25: the 2.5 MB prefix goes, the file shrinks, offsets still work.
        s.advance(offsets[25]).unwrap();
        assert!(std::fs::metadata(d.join("spool.log")).unwrap().len() < 600_000);
        assert_eq!(s.read_at(offsets[27]).unwrap().unwrap().payload, payload);
        drop(s);
        let mut s = Spool::open(&d, 4 << 20).unwrap();
        assert_eq!(s.head(), offsets[25]);
        assert_eq!(drain(&mut s).len(), 5);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn torn_tail_is_cut_at_open() {
        let d = dir("torn");
        let mut s = Spool::open(&d, 1 << 20).unwrap();
        s.append(0, b"cam", b"whole").unwrap();
        s.append(0, b"cam", b"torn record").unwrap();
        drop(s);
        let path = d.join("spool.log");
        let len = std::fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let mut s = Spool::open(&d, 1 << 20).unwrap();
        assert_eq!(
            s.repaired,
            encode(0, b"cam", b"torn record").len() as u64 - 3
        );
        assert_eq!(drain(&mut s), vec!["whole".to_string()]);
        s.append(0, b"cam", b"next").unwrap();
        assert_eq!(drain(&mut s), vec!["whole".to_string(), "next".into()]);
        let _ = std::fs::remove_dir_all(&d);
    }

    /// 2,000 mutated records: parse never panics, and what it accepts is bounded and
    /// re-encodes to the same bytes (the fuzz target `kafka_spool` runs this longer).
    #[test]
    fn parse_survives_mutations() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let good = encode(1, b"garden", br#"{"type":"new","id":"garden-1"}"#);
        for _ in 0..2000 {
            let mut b = good.clone();
            for _ in 0..1 + rnd() % 4 {
                let i = (rnd() as usize) % b.len();
                b[i] = rnd() as u8;
            }
            if rnd() % 4 == 0 {
                b.truncate((rnd() as usize) % b.len());
            }
            if let Ok(Some((t, k, p, n))) = parse(&b) {
                assert!(k.len() <= MAX_KEY && p.len() <= MAX_PAYLOAD && n <= b.len());
                assert_eq!(encode(t, k, p), b[..n]);
            }
        }
    }
}
