//! ISO BMFF (MP4) boxes: a bounds-checked reader over bytes already in memory, and a
//! writer. Nothing here trusts a length: every read is checked against what is there.

use crate::Error;

/// A cursor over the payload of one box.
#[derive(Clone, Copy)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

fn short(what: &str) -> Error {
    Error::Format(format!("{what} is cut short"))
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub fn rest(&self) -> &'a [u8] {
        &self.data[self.pos..]
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.remaining() < n {
            return Err(short("a box"));
        }
        let b = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }

    pub fn skip(&mut self, n: usize) -> Result<(), Error> {
        self.bytes(n).map(|_| ())
    }

    pub fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.bytes(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16, Error> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self) -> Result<u32, Error> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self) -> Result<u64, Error> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// A full box's version and flags.
    pub fn version_flags(&mut self) -> Result<(u8, u32), Error> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00ff_ffff))
    }

    /// The next child box: its type, its whole bytes (header included) and its payload.
    pub fn next_box(&mut self) -> Result<Option<Box<'a>>, Error> {
        if self.remaining() == 0 {
            return Ok(None);
        }
        let start = self.pos;
        let (size, kind, header) = header_of(self.rest())?;
        let size = match size {
            0 => self.remaining() as u64,
            s => s,
        };
        if size < header as u64 || size > self.remaining() as u64 {
            return Err(Error::Format(format!(
                "box {} of {size} bytes does not fit its parent",
                fourcc(&kind)
            )));
        }
        let size = size as usize;
        self.pos += size;
        Ok(Some(Box {
            kind,
            whole: &self.data[start..start + size],
            payload: &self.data[start + header..start + size],
        }))
    }

    /// The first child of type `kind`.
    pub fn find(mut self, kind: &[u8; 4]) -> Result<Option<Box<'a>>, Error> {
        while let Some(b) = self.next_box()? {
            if &b.kind == kind {
                return Ok(Some(b));
            }
        }
        Ok(None)
    }
}

/// One box: its type, its bytes with the header, its payload.
#[derive(Clone, Copy)]
pub struct Box<'a> {
    pub kind: [u8; 4],
    pub whole: &'a [u8],
    pub payload: &'a [u8],
}

impl<'a> Box<'a> {
    pub fn reader(&self) -> Reader<'a> {
        Reader::new(self.payload)
    }

    /// The first child of type `kind`, which must be there.
    pub fn child(&self, kind: &[u8; 4]) -> Result<Box<'a>, Error> {
        self.reader()
            .find(kind)?
            .ok_or_else(|| Error::Format(format!("{} has no {}", fourcc(&self.kind), fourcc(kind))))
    }
}

/// (size from the header, type, header length) of the box at the start of `b`. A size of
/// 0 means "to the end"; 1 is followed by a 64-bit size.
pub fn header_of(b: &[u8]) -> Result<(u64, [u8; 4], usize), Error> {
    if b.len() < 8 {
        return Err(short("a box header"));
    }
    let size = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64;
    let kind = [b[4], b[5], b[6], b[7]];
    if size == 1 {
        if b.len() < 16 {
            return Err(short("a 64-bit box header"));
        }
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[8..16]);
        Ok((u64::from_be_bytes(a), kind, 16))
    } else {
        Ok((size, kind, 8))
    }
}

/// A box type for messages (`moov`, or hex when not printable).
pub fn fourcc(k: &[u8; 4]) -> String {
    if k.iter().all(|c| c.is_ascii_graphic()) {
        String::from_utf8_lossy(k).into_owned()
    } else {
        format!("{:02x}{:02x}{:02x}{:02x}", k[0], k[1], k[2], k[3])
    }
}

/// Writes boxes: `open` a box, write its payload, `close` it (the size is filled in).
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
    open: Vec<usize>,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn open(&mut self, kind: &[u8; 4]) {
        self.open.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0, 0, 0]);
        self.buf.extend_from_slice(kind);
    }

    /// A full box: type, version and flags.
    pub fn open_full(&mut self, kind: &[u8; 4], version: u8, flags: u32) {
        self.open(kind);
        self.u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
    }

    pub fn close(&mut self) {
        let start = self.open.pop().expect("close without open");
        let size = (self.buf.len() - start) as u32;
        self.buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
    }

    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
    pub fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }

    /// The identity matrix of `mvhd` and `tkhd`.
    pub fn matrix(&mut self) {
        for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
            self.u32(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_nest_and_lengths_are_checked() {
        let mut w = Writer::new();
        w.open(b"moov");
        w.open_full(b"mvhd", 0, 0);
        w.u32(7);
        w.close();
        w.close();
        let moov = Reader::new(&w.buf).next_box().unwrap().unwrap();
        assert_eq!(&moov.kind, b"moov");
        let mvhd = moov.child(b"mvhd").unwrap();
        let mut r = mvhd.reader();
        assert_eq!(r.version_flags().unwrap(), (0, 0));
        assert_eq!(r.u32().unwrap(), 7);
        assert!(r.u8().is_err());
        // A child claiming more than its parent holds.
        let mut bad = w.buf.clone();
        bad[11] = 200;
        assert!(Reader::new(&bad)
            .next_box()
            .unwrap()
            .unwrap()
            .child(b"mvhd")
            .is_err());
        assert!(moov.child(b"trak").is_err());
    }
}
