//! How an export's bytes are packed: as they are, gzip-compressed (`.csv.gz`,
//! `.json.gz`), or as the one file of a zip archive (the Detailed Billing Report's
//! `.csv.zip`). Readers get a buffered text stream either way.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use flate2::CrcReader;

use crate::error::{Error, Result};
use crate::progress::{Counting, Progress};

/// How a file's bytes wrap the export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    Plain,
    Gzip,
    Zip(ZipMember),
}

/// Where the one export in a zip archive lies, and how to check it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZipMember {
    start: u64,
    size: u64,
    deflated: bool,
    crc: u32,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZIP_MAGIC: [u8; 4] = *b"PK\x03\x04";

/// Recognises the packing from a file's first bytes; a zip archive must hold exactly
/// one file (macOS `__MACOSX/` entries and folders aside), stored or deflated.
pub fn detect(path: &Path, display: &str, head: &[u8]) -> Result<Packing> {
    if head.starts_with(&GZIP_MAGIC) {
        return Ok(Packing::Gzip);
    }
    if !head.starts_with(&ZIP_MAGIC) {
        return Ok(Packing::Plain);
    }
    let bad = |message: String| Error::BadFile {
        path: display.to_string(),
        message,
    };
    let corrupt = |e: zip::result::ZipError| bad(format!("corrupt zip archive: {e}"));
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(corrupt)?;
    let mut members = Vec::new();
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(corrupt)?;
        let name = entry.name().map_err(corrupt)?.to_string();
        if entry.is_dir() || name.starts_with("__MACOSX/") {
            continue;
        }
        let deflated = match entry.compression() {
            zip::CompressionMethod::Stored => false,
            zip::CompressionMethod::Deflated => true,
            other => {
                return Err(bad(format!(
                    "zip member {name} is compressed with {other}; billq reads stored or deflated members"
                )));
            }
        };
        let start = entry
            .data_start()
            .ok_or_else(|| bad(format!("corrupt zip archive: no data offset for {name}")))?;
        members.push((
            name,
            ZipMember {
                start,
                size: entry.compressed_size(),
                deflated,
                crc: entry.crc32(),
            },
        ));
    }
    match members.as_slice() {
        [(_, member)] => Ok(Packing::Zip(*member)),
        [] => Err(bad("zip archive holds no file".into())),
        many => Err(bad(format!(
            "zip archive holds {} files ({}); billq reads archives of one export",
            many.len(),
            many.iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// A buffered text reader over a file, unpacked, counting raw bytes read for
/// `progress`.
pub fn open_text<'p>(
    path: &Path,
    packing: Packing,
    progress: Option<&'p dyn Progress>,
) -> Result<Box<dyn BufRead + Send + 'p>> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    Ok(match packing {
        Packing::Plain => Box::new(BufReader::with_capacity(
            1 << 16,
            Counting::new(file, progress),
        )),
        Packing::Gzip => Box::new(BufReader::with_capacity(
            1 << 16,
            flate2::read::MultiGzDecoder::new(BufReader::new(Counting::new(file, progress))),
        )),
        Packing::Zip(m) => {
            file.seek(SeekFrom::Start(m.start))
                .map_err(|e| Error::io(path, e))?;
            let raw = BufReader::new(Counting::new(file, progress).take(m.size));
            let data: Box<dyn Read + Send + 'p> = if m.deflated {
                Box::new(flate2::bufread::DeflateDecoder::new(raw))
            } else {
                Box::new(raw)
            };
            Box::new(BufReader::with_capacity(
                1 << 16,
                Checked {
                    inner: CrcReader::new(data),
                    crc: m.crc,
                },
            ))
        }
    })
}

/// A zip member's data, checked against its CRC-32 at the end.
struct Checked<R> {
    inner: CrcReader<R>,
    crc: u32,
}

impl<R: Read> Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() && self.inner.crc().sum() != self.crc {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "zip member fails its CRC-32 check (a corrupt or truncated archive)",
            ));
        }
        Ok(n)
    }
}
