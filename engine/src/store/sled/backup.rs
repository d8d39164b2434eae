//! Online backup and restore of a sled data directory.
//!
//! A backup is every record of every tree, written while the store applies no batch (the
//! lock every write takes to apply): a consistent snapshot at the moment it starts, taken
//! while the server keeps serving — writes wait for the copy (about a second per GiB
//! here), reads go on. The file: a header line, then per tree `T <len> <name>` and per
//! record `R <len> <key> <len> <value>` (lengths as u32 big-endian), then `E`, the record
//! count (u64) and the SHA-256 of everything before it. Restore checks the digest before
//! it writes anything, builds a fresh directory, and moves sled's id generator past every
//! sequence number in it (history and audit keys are numbered by it).

use super::{Key, SledStore};
use crate::store::{Error, Result};
use sha2::{Digest, Sha256};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

const MAGIC: &[u8] = b"SWITCHBOARD-BACKUP 1\n";

/// Hashes what passes through to `inner`.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn framed(out: &mut impl Write, tag: u8, parts: &[&[u8]]) -> std::io::Result<()> {
    out.write_all(&[tag])?;
    for p in parts {
        let len = u32::try_from(p.len()).map_err(|_| std::io::Error::other("a record over 4 GiB"))?;
        out.write_all(&len.to_be_bytes())?;
        out.write_all(p)?;
    }
    Ok(())
}

impl SledStore {
    /// See [`crate::store::Store::backup`].
    pub(super) fn write_backup(&self, out: &mut dyn Write) -> Result<u64> {
        let io = |e: std::io::Error| Error::Backend(format!("writing the backup: {e}"));
        let mut out = Hashing { inner: BufWriter::with_capacity(1 << 20, out), hash: Sha256::new() };
        out.write_all(MAGIC).map_err(io)?;
        let mut records = 0u64;
        {
            // No batch applies while the copy is made: every tree at one moment.
            let _applying = self.applying.lock().unwrap_or_else(|p| p.into_inner());
            for name in self.db.tree_names() {
                let tree = self.db.open_tree(&name).map_err(|e| self.io(e))?;
                framed(&mut out, b'T', &[&name]).map_err(io)?;
                for kv in tree.iter() {
                    let (k, v) = kv.map_err(|e| self.io(e))?;
                    framed(&mut out, b'R', &[&k, &v]).map_err(io)?;
                    records += 1;
                }
            }
        }
        let digest = out.hash.clone().finalize();
        let mut inner = out.inner;
        inner.write_all(b"E").map_err(io)?;
        inner.write_all(&records.to_be_bytes()).map_err(io)?;
        inner.write_all(&digest).map_err(io)?;
        inner.flush().map_err(io)?;
        Ok(records)
    }
}

/// What a restore wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restored {
    /// Records written.
    pub records: u64,
    /// Trees written.
    pub trees: u64,
}

fn bad(file: &Path, detail: impl std::fmt::Display) -> Error {
    Error::Damaged { path: file.display().to_string(), detail: format!("not a usable backup: {detail}") }
}

/// One frame of a backup file.
enum Frame {
    Tree(Vec<u8>),
    Record(Vec<u8>, Vec<u8>),
    End(u64, [u8; 32]),
}

fn read_part(r: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let mut buf = vec![0u8; u32::from_be_bytes(len) as usize];
    r.read_exact(&mut buf)?;
    Ok(buf)
}

/// Bytes of the end frame: `E`, the record count, the SHA-256.
const END: u64 = 1 + 8 + 32;

/// Checks the digest the end frame holds against everything before it, before any frame
/// is parsed: a flipped bit anywhere (a length included) is "damaged", never misread.
fn check_digest(file: &Path) -> Result<()> {
    let mut f = std::fs::File::open(file).map_err(|source| Error::Io { path: file.display().to_string(), source })?;
    let len = f.metadata().map_err(|source| Error::Io { path: file.display().to_string(), source })?.len();
    if len < MAGIC.len() as u64 + END {
        return Err(bad(file, "it is too short to be a backup (incomplete)"));
    }
    let mut hash = Sha256::new();
    std::io::copy(&mut (&mut f).take(len - END), &mut HashSink(&mut hash)).map_err(|e| bad(file, e))?;
    let mut end = [0u8; END as usize];
    f.read_exact(&mut end).map_err(|e| bad(file, e))?;
    if end[0] != b'E' || hash.finalize().as_slice() != &end[9..] {
        return Err(bad(file, "its checksum does not match (damaged or incomplete)"));
    }
    Ok(())
}

/// Feeds what is written into a hash.
struct HashSink<'a>(&'a mut Sha256);

impl Write for HashSink<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads `file` frame by frame, handing each to `each`; checks the count and digest.
fn frames(file: &Path, mut each: impl FnMut(Frame) -> Result<()>) -> Result<()> {
    check_digest(file)?;
    let f = std::fs::File::open(file).map_err(|source| Error::Io { path: file.display().to_string(), source })?;
    let mut r = BufReader::with_capacity(1 << 20, f);
    let mut hash = Sha256::new();
    let mut magic = vec![0u8; MAGIC.len()];
    r.read_exact(&mut magic).map_err(|e| bad(file, e))?;
    if magic != MAGIC {
        return Err(bad(file, "it does not start with the Switchboard backup header"));
    }
    hash.update(&magic);
    let mut records = 0u64;
    loop {
        let mut tag = [0u8; 1];
        r.read_exact(&mut tag).map_err(|e| bad(file, format!("cut short ({e})")))?;
        let frame = match tag[0] {
            b'T' => Frame::Tree(read_part(&mut r).map_err(|e| bad(file, format!("cut short ({e})")))?),
            b'R' => {
                let k = read_part(&mut r).map_err(|e| bad(file, format!("cut short ({e})")))?;
                let v = read_part(&mut r).map_err(|e| bad(file, format!("cut short ({e})")))?;
                Frame::Record(k, v)
            }
            b'E' => {
                let (mut n, mut digest) = ([0u8; 8], [0u8; 32]);
                r.read_exact(&mut n).and_then(|_| r.read_exact(&mut digest)).map_err(|e| bad(file, e))?;
                Frame::End(u64::from_be_bytes(n), digest)
            }
            other => return Err(bad(file, format!("unknown frame {other:#04x} after {records} records"))),
        };
        match &frame {
            Frame::Tree(name) => {
                hash.update([b'T']);
                hash.update((name.len() as u32).to_be_bytes());
                hash.update(name);
            }
            Frame::Record(k, v) => {
                records += 1;
                hash.update([b'R']);
                hash.update((k.len() as u32).to_be_bytes());
                hash.update(k);
                hash.update((v.len() as u32).to_be_bytes());
                hash.update(v);
            }
            Frame::End(n, digest) => {
                if *n != records || hash.clone().finalize().as_slice() != digest {
                    return Err(bad(file, "its checksum does not match (damaged or incomplete)"));
                }
                return each(frame);
            }
        }
        each(frame)?;
    }
}

/// Builds the data directory `dir` (absent or empty) from the backup `file`.
pub fn restore(file: &Path, dir: &Path) -> Result<Restored> {
    if dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        return Err(Error::Damaged {
            path: dir.display().to_string(),
            detail: "restore builds a new data directory; this one is not empty".into(),
        });
    }
    // The whole file is checked before anything is written.
    frames(file, |_| Ok(()))?;
    let backend = |e: ::sled::Error| Error::Backend(format!("{}: {e}", dir.display()));
    let db = ::sled::Config::new().path(dir).open().map_err(backend)?;
    let (mut tree, mut batch, mut in_batch) = (None::<::sled::Tree>, ::sled::Batch::default(), 0);
    let mut out = Restored { records: 0, trees: 0 };
    let mut highest_seq = 0u64;
    frames(file, |frame| {
        match frame {
            Frame::Tree(name) => {
                if let Some(t) = &tree {
                    t.apply_batch(std::mem::take(&mut batch)).map_err(backend)?;
                    in_batch = 0;
                }
                tree = Some(db.open_tree(name).map_err(backend)?);
                out.trees += 1;
            }
            Frame::Record(k, v) => {
                if k.starts_with(&Key::Audits.bytes()) || k.starts_with(b"h/") {
                    highest_seq = highest_seq.max(super::be(&k));
                }
                batch.insert(k, v);
                in_batch += 1;
                out.records += 1;
                if in_batch == 10_000 {
                    if let Some(t) = &tree {
                        t.apply_batch(std::mem::take(&mut batch)).map_err(backend)?;
                    }
                    in_batch = 0;
                }
            }
            Frame::End(..) => {
                if let Some(t) = &tree {
                    t.apply_batch(std::mem::take(&mut batch)).map_err(backend)?;
                }
            }
        }
        Ok(())
    })?;
    // History and audit keys end in a number from sled's id generator, which starts at 0
    // in a new directory: move it past every number restored.
    while db.generate_id().map_err(backend)? <= highest_seq {}
    db.flush().map_err(backend)?;
    Ok(out)
}
