//! `Content-Encoding` decoding with a size cap.
//!
//! Every decoder is read through `Read::take(limit + 1)`, so a compression bomb is refused
//! after at most `limit + 1` bytes of output, never expanded in memory. zstd frames are also
//! checked before decoding: a frame whose window (the history the decoder must keep) is
//! larger than `max(limit, 8 MiB)` is refused, since RFC 9659 caps HTTP zstd windows at
//! 8 MiB and a larger window would let a frame buffer that much before yielding output.

use std::fmt;
use std::io::Read;

use flate2::bufread::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};

/// A content coding veilgate can undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    Deflate,
    Br,
    Zstd,
}

/// Why a body could not be decoded.
#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// A coding veilgate does not know (lowercased, printable ASCII, at most 32 chars), for
    /// a 415 answer.
    Unsupported(String),
    /// The decoded body (or an intermediate layer) is over the limit.
    TooLarge,
    /// The data is not valid for its coding.
    Corrupt,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Unsupported(name) => write!(f, "unsupported content-encoding: {name}"),
            DecodeError::TooLarge => f.write_str("the decoded body is over the size limit"),
            DecodeError::Corrupt => f.write_str("the body is not valid for its content-encoding"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// zstd windows up to this size are always accepted (RFC 9659, section 2).
const ZSTD_WINDOW: u64 = 8 << 20;

/// No coding applied: no `Content-Encoding`, or only `identity` (and empty) entries, on
/// every line of it.
pub(crate) fn is_identity(h: &http::HeaderMap) -> bool {
    h.get_all(http::header::CONTENT_ENCODING).iter().all(|v| {
        v.as_bytes().split(|&b| b == b',').all(|n| {
            let n = n.trim_ascii();
            n.is_empty() || n.eq_ignore_ascii_case(b"identity")
        })
    })
}

/// Parses a `Content-Encoding` header: a comma-separated list of codings in the order they
/// were applied. `identity` and empty entries are ignored; names are case-insensitive;
/// `x-gzip` is gzip. An unknown coding is [`DecodeError::Unsupported`].
///
/// A message may carry several `Content-Encoding` lines; they form one list in order, so
/// a caller should parse each and concatenate the results.
pub fn parse_codings(value: Option<&http::HeaderValue>) -> Result<Vec<Coding>, DecodeError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for name in value.as_bytes().split(|&b| b == b',') {
        let name = name.trim_ascii();
        let coding = if name.eq_ignore_ascii_case(b"gzip") || name.eq_ignore_ascii_case(b"x-gzip") {
            Coding::Gzip
        } else if name.eq_ignore_ascii_case(b"deflate") {
            Coding::Deflate
        } else if name.eq_ignore_ascii_case(b"br") {
            Coding::Br
        } else if name.eq_ignore_ascii_case(b"zstd") {
            Coding::Zstd
        } else if name.is_empty() || name.eq_ignore_ascii_case(b"identity") {
            continue;
        } else {
            // The name ends up in an error message: keep it short and printable.
            let shown = name
                .iter()
                .filter(|b| b.is_ascii_graphic())
                .take(32)
                .map(|&b| char::from(b.to_ascii_lowercase()))
                .collect();
            return Err(DecodeError::Unsupported(shown));
        };
        out.push(coding);
    }
    Ok(out)
}

/// Decodes `body` by undoing `codings` in reverse order. Refuses with
/// [`DecodeError::TooLarge`] as soon as any intermediate or the final output would exceed
/// `limit` bytes (with no codings, the body itself is the final output).
///
/// `deflate` accepts both zlib-wrapped data (RFC 1950, what HTTP means) and raw deflate
/// (what some servers send). Multi-member gzip and multi-frame zstd (with skippable frames)
/// are decoded whole. An empty body decodes to an empty body whatever the coding.
pub fn decode(body: &[u8], codings: &[Coding], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let mut iter = codings.iter().rev();
    let Some(&outer) = iter.next() else {
        return if body.len() > limit {
            Err(DecodeError::TooLarge)
        } else {
            Ok(body.to_vec())
        };
    };
    let mut out = decode_one(body, outer, limit)?;
    for &coding in iter {
        out = decode_one(&out, coding, limit)?;
    }
    Ok(out)
}

fn decode_one(input: &[u8], coding: Coding, limit: usize) -> Result<Vec<u8>, DecodeError> {
    if input.is_empty() {
        return Ok(Vec::new());
    }
    match coding {
        Coding::Gzip => read_capped(MultiGzDecoder::new(input), limit),
        Coding::Deflate => {
            if looks_like_zlib(input) {
                match read_capped(ZlibDecoder::new(input), limit) {
                    // Raw deflate can start with two bytes that pass the zlib header check.
                    Err(DecodeError::Corrupt) => {}
                    done => return done,
                }
            }
            read_capped(DeflateDecoder::new(input), limit)
        }
        Coding::Br => read_capped(brotli_decompressor::Decompressor::new(input, 4096), limit),
        Coding::Zstd => zstd(input, limit),
    }
}

fn read_capped(reader: impl Read, limit: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    read_into(reader, limit, &mut out)?;
    Ok(out)
}

/// Appends what `reader` yields to `out`, reading at most one byte past `limit` in all.
fn read_into(reader: impl Read, limit: usize, out: &mut Vec<u8>) -> Result<(), DecodeError> {
    let room = limit.saturating_sub(out.len()) as u64;
    reader
        .take(room.saturating_add(1))
        .read_to_end(out)
        .map_err(|_| DecodeError::Corrupt)?;
    if out.len() > limit {
        return Err(DecodeError::TooLarge);
    }
    Ok(())
}

/// RFC 1950 header check: deflate method, window at most 32 KiB, valid check bits, no
/// preset dictionary.
fn looks_like_zlib(input: &[u8]) -> bool {
    match input {
        [cmf, flg, ..] => {
            cmf & 0x0f == 8
                && cmf >> 4 <= 7
                && flg & 0x20 == 0
                && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0
        }
        _ => false,
    }
}

fn zstd(mut input: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let magic = input
            .first_chunk::<4>()
            .map(|m| u32::from_le_bytes(*m))
            .ok_or(DecodeError::Corrupt)?;
        if (0x184D_2A50..=0x184D_2A5F).contains(&magic) {
            // A skippable frame: 4-byte magic, 4-byte length, payload.
            let len = input
                .get(4..8)
                .and_then(|l| l.try_into().ok())
                .map(u32::from_le_bytes)
                .ok_or(DecodeError::Corrupt)?;
            let end = usize::try_from(len)
                .ok()
                .and_then(|l| l.checked_add(8))
                .ok_or(DecodeError::Corrupt)?;
            input = input.get(end..).ok_or(DecodeError::Corrupt)?;
            continue;
        }
        check_zstd_window(input, limit)?;
        let mut frame = ruzstd::decoding::StreamingDecoder::new(&mut input)
            .map_err(|_| DecodeError::Corrupt)?;
        let declared = frame.decoder.content_size();
        if declared > (limit - out.len()) as u64 {
            return Err(DecodeError::TooLarge);
        }
        read_into(&mut frame, limit, &mut out)?;
        let d = &frame.decoder;
        let checksum_ok = match (d.get_checksum_from_data(), d.get_calculated_checksum()) {
            (Some(sent), Some(computed)) => sent == computed,
            _ => true,
        };
        if !d.is_finished() || !checksum_ok {
            return Err(DecodeError::Corrupt);
        }
    }
    Ok(out)
}

/// Refuses a zstd frame whose window exceeds `max(limit, 8 MiB)`. Single-segment frames
/// have no window descriptor: their window is their declared content size, which is checked
/// against the limit once the header is parsed.
fn check_zstd_window(frame: &[u8], limit: usize) -> Result<(), DecodeError> {
    let descriptor = *frame.get(4).ok_or(DecodeError::Corrupt)?;
    if descriptor & 0x20 != 0 {
        return Ok(());
    }
    let wd = *frame.get(5).ok_or(DecodeError::Corrupt)?;
    let base = 1u64 << (10 + (wd >> 3));
    let window = base + base / 8 * u64::from(wd & 7);
    if window > ZSTD_WINDOW.max(limit as u64) {
        return Err(DecodeError::TooLarge);
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn identity_means_no_coding_on_any_line() {
        let mut h = http::HeaderMap::new();
        assert!(is_identity(&h));
        h.insert("content-encoding", "Identity, ".parse().unwrap());
        assert!(is_identity(&h));
        h.append("content-encoding", "gzip".parse().unwrap());
        assert!(!is_identity(&h));
    }

    use std::io::Write;

    use flate2::Compression;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use ruzstd::encoding::{CompressionLevel, compress_to_vec};

    use super::*;

    const TEXT: &[u8] = br#"{"messages":[{"role":"user","content":"mail me: jane.doe@acme.io"}]}"#;

    /// `TEXT` compressed with brotli: made with Python's `brotli` 1.2.1,
    /// `brotli.compress(TEXT)`.
    const TEXT_BR: &[u8] = &[
        0x1b, 0x43, 0x00, 0xf8, 0x05, 0xfe, 0xdb, 0x66, 0xaa, 0xf2, 0xb2, 0x48, 0xbf, 0x64, 0xe9,
        0x62, 0x10, 0xfd, 0x61, 0x63, 0xee, 0xc0, 0xb1, 0x24, 0xc2, 0x06, 0x9c, 0x88, 0x05, 0x09,
        0x06, 0x42, 0x83, 0xdc, 0x0c, 0xc8, 0x00, 0x8a, 0x36, 0xd8, 0xf4, 0x83, 0x95, 0xcd, 0xf2,
        0x47, 0x18, 0xff, 0xa7, 0x45, 0x44, 0x31, 0xee, 0xe6, 0x94, 0x85, 0xbb, 0xbd, 0x4a, 0xc3,
        0x95, 0x5b, 0x9f, 0xe4, 0x72, 0x4e, 0x3d,
    ];

    /// `TEXT` gzip-compressed, then brotli-compressed (`Content-Encoding: gzip, br`):
    /// `brotli.compress(gzip.compress(TEXT, mtime=0))` with Python's `brotli` 1.2.1.
    const TEXT_GZIP_BR: &[u8] = &[
        0x0b, 0x2b, 0x80, 0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xab, 0x56,
        0xca, 0x4d, 0x2d, 0x2e, 0x4e, 0x4c, 0x4f, 0x2d, 0x56, 0xb2, 0x8a, 0xae, 0x56, 0x2a, 0xca,
        0xcf, 0x49, 0x55, 0xb2, 0x52, 0x2a, 0x2d, 0x4e, 0x2d, 0x52, 0xd2, 0x51, 0x4a, 0xce, 0xcf,
        0x2b, 0x49, 0xcd, 0x2b, 0x01, 0x0a, 0xe4, 0x26, 0x66, 0xe6, 0x28, 0xe4, 0xa6, 0x5a, 0x29,
        0x64, 0x25, 0xe6, 0xa5, 0xea, 0xa5, 0xe4, 0xa7, 0x3a, 0x24, 0x26, 0xe7, 0xa6, 0xea, 0x65,
        0xe6, 0x2b, 0xd5, 0xc6, 0xd6, 0x02, 0x00, 0x86, 0xaa, 0xe7, 0x85, 0x44, 0x00, 0x00, 0x00,
        0x03,
    ];

    /// 10 MiB of zeros, brotli-compressed: `brotli.compress(b"\0" * (10 * 1024 * 1024))`
    /// with Python's `brotli` 1.2.1.
    const ZEROS_10M_BR: &[u8] = &[
        0xcb, 0xff, 0xff, 0x3f, 0xf8, 0x27, 0x00, 0xe2, 0xb1, 0x40, 0x20, 0xf7, 0xfe, 0x2f, 0xff,
        0xff, 0x3f, 0xf0, 0x4f, 0x00, 0xc4, 0x61, 0x11, 0x80, 0xee, 0xfd, 0x07,
    ];

    const MIB: usize = 1 << 20;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn raw_deflate(data: &[u8]) -> Vec<u8> {
        let mut e = DeflateEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zstd(data: &[u8]) -> Vec<u8> {
        compress_to_vec(data, CompressionLevel::Fastest)
    }

    fn header(s: &str) -> Result<Vec<Coding>, DecodeError> {
        parse_codings(Some(&http::HeaderValue::from_str(s).unwrap()))
    }

    #[test]
    fn parses_headers() {
        use Coding::*;
        assert_eq!(parse_codings(None), Ok(vec![]));
        assert_eq!(header(""), Ok(vec![]));
        assert_eq!(header("identity"), Ok(vec![]));
        assert_eq!(header("gzip"), Ok(vec![Gzip]));
        assert_eq!(header("X-GZIP"), Ok(vec![Gzip]));
        assert_eq!(header("Deflate"), Ok(vec![Deflate]));
        assert_eq!(header("br"), Ok(vec![Br]));
        assert_eq!(header("zstd"), Ok(vec![Zstd]));
        assert_eq!(
            header("deflate, gzip,, identity ,\tBR , zstd"),
            Ok(vec![Deflate, Gzip, Br, Zstd])
        );
        assert_eq!(
            header("gzip, compress"),
            Err(DecodeError::Unsupported("compress".into()))
        );
        assert_eq!(
            header("X-Weird"),
            Err(DecodeError::Unsupported("x-weird".into()))
        );
        let long = "a".repeat(100);
        assert_eq!(header(&long), Err(DecodeError::Unsupported("a".repeat(32))));
        let odd = http::HeaderValue::from_bytes(b"gz\xffip").unwrap();
        assert_eq!(
            parse_codings(Some(&odd)),
            Err(DecodeError::Unsupported("gzip".into()))
        );
    }

    #[test]
    fn round_trips() {
        use Coding::*;
        let big: Vec<u8> = TEXT.iter().copied().cycle().take(300_000).collect();
        for data in [TEXT, &big[..]] {
            assert_eq!(decode(&gzip(data), &[Gzip], MIB).unwrap(), data);
            assert_eq!(decode(&zlib(data), &[Deflate], MIB).unwrap(), data);
            assert_eq!(decode(&raw_deflate(data), &[Deflate], MIB).unwrap(), data);
            assert_eq!(decode(&zstd(data), &[Zstd], MIB).unwrap(), data);
            assert_eq!(decode(data, &[], MIB).unwrap(), data);
        }
        assert_eq!(decode(TEXT_BR, &[Br], MIB).unwrap(), TEXT);
        // Exactly at the limit is fine.
        assert_eq!(decode(&gzip(TEXT), &[Gzip], TEXT.len()).unwrap(), TEXT);
        assert_eq!(decode(TEXT_BR, &[Br], TEXT.len()).unwrap(), TEXT);
        assert_eq!(decode(&zstd(TEXT), &[Zstd], TEXT.len()).unwrap(), TEXT);
        assert_eq!(
            decode(&gzip(TEXT), &[Gzip], TEXT.len() - 1),
            Err(DecodeError::TooLarge)
        );
        assert_eq!(
            decode(TEXT, &[], TEXT.len() - 1),
            Err(DecodeError::TooLarge)
        );
        // Empty bodies (a GET with a stray header) decode to nothing.
        for c in [Gzip, Deflate, Br, Zstd] {
            assert_eq!(decode(b"", &[c], MIB).unwrap(), b"");
        }
    }

    #[test]
    fn multi_member_and_multi_frame() {
        let mut two = gzip(b"hello ");
        two.extend(gzip(b"world"));
        assert_eq!(decode(&two, &[Coding::Gzip], MIB).unwrap(), b"hello world");

        let mut frames = zstd(b"hello ");
        // A skippable frame (magic 0x184D2A5?, length 3) between two data frames.
        frames.extend([0x5a, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
        frames.extend(zstd(b"world"));
        assert_eq!(
            decode(&frames, &[Coding::Zstd], MIB).unwrap(),
            b"hello world"
        );
    }

    #[test]
    fn stacked_codings() {
        // `Content-Encoding: deflate, gzip`: deflate applied first, gzip last.
        let codings = header("deflate, gzip").unwrap();
        let body = gzip(&zlib(TEXT));
        assert_eq!(decode(&body, &codings, MIB).unwrap(), TEXT);

        let codings = header("gzip, br").unwrap();
        assert_eq!(decode(TEXT_GZIP_BR, &codings, MIB).unwrap(), TEXT);

        let codings = header("zstd, deflate, gzip").unwrap();
        let body = gzip(&raw_deflate(&zstd(TEXT)));
        assert_eq!(decode(&body, &codings, MIB).unwrap(), TEXT);
    }

    #[test]
    fn intermediate_layers_are_capped() {
        // An inner layer of stored (uncompressed) deflate blocks is a little larger than
        // the text it holds: the final output fits, the intermediate one does not.
        let data: Vec<u8> = TEXT.iter().copied().cycle().take(100_000).collect();
        let mut e = GzEncoder::new(Vec::new(), Compression::none());
        e.write_all(&data).unwrap();
        let stored = e.finish().unwrap();
        assert!(stored.len() > data.len());
        let body = gzip(&stored);
        let codings = [Coding::Gzip, Coding::Gzip];
        assert_eq!(decode(&body, &codings, stored.len()).unwrap(), data);
        assert_eq!(
            decode(&body, &codings, data.len()),
            Err(DecodeError::TooLarge)
        );
    }

    #[test]
    fn bombs_are_refused() {
        let zeros = vec![0u8; 10 * MIB];
        let gz = gzip(&zeros);
        assert!(gz.len() < 64 * 1024);
        assert_eq!(
            decode(&gz, &[Coding::Gzip], MIB),
            Err(DecodeError::TooLarge)
        );
        assert_eq!(
            decode(&raw_deflate(&zeros), &[Coding::Deflate], MIB),
            Err(DecodeError::TooLarge)
        );
        assert_eq!(
            decode(&zlib(&zeros), &[Coding::Deflate], MIB),
            Err(DecodeError::TooLarge)
        );
        assert_eq!(
            decode(ZEROS_10M_BR, &[Coding::Br], MIB),
            Err(DecodeError::TooLarge)
        );
        // The 10 MiB fit a 10 MiB limit.
        assert_eq!(
            decode(ZEROS_10M_BR, &[Coding::Br], 10 * MIB).unwrap(),
            zeros
        );
        // Nested: gzip of gzip of 10 MiB of zeros.
        assert_eq!(
            decode(&gzip(&gz), &[Coding::Gzip, Coding::Gzip], MIB),
            Err(DecodeError::TooLarge)
        );
        // zstd: a declared content size over the limit, and multi-frame growth.
        let frame = zstd(&zeros[..2 * MIB]);
        assert_eq!(
            decode(&frame, &[Coding::Zstd], MIB),
            Err(DecodeError::TooLarge)
        );
        let frames = frame.repeat(8);
        assert_eq!(
            decode(&frames, &[Coding::Zstd], 10 * MIB),
            Err(DecodeError::TooLarge)
        );
        assert_eq!(
            decode(&frames, &[Coding::Zstd], 16 * MIB).unwrap().len(),
            16 * MIB
        );
    }

    #[test]
    fn zstd_windows_are_capped() {
        // Frame header: magic, descriptor 0 (no single segment, no checksum, no content
        // size), window descriptor 0xA0 = 2^30 bytes; then a last RLE block of 4 zeros.
        let huge = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xa0, 0x23, 0x00, 0x00, 0x00];
        assert_eq!(
            decode(&huge, &[Coding::Zstd], MIB),
            Err(DecodeError::TooLarge)
        );
        // The same frame with an 8 MiB window (0x68) is fine.
        let mut ok = huge;
        ok[5] = 0x68;
        assert_eq!(decode(&ok, &[Coding::Zstd], MIB).unwrap(), [0, 0, 0, 0]);
    }

    /// The peak resident set size of this process, in bytes (Linux only).
    fn peak_rss() -> Option<usize> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }

    #[test]
    fn a_gigabyte_bomb_stays_small_in_memory() {
        // 1 GiB of zeros as 1024 gzip members of 1 MiB each: about 1 MiB on the wire.
        let member = gzip(&vec![0u8; MIB]);
        let bomb = member.repeat(1024);
        let before = peak_rss();
        assert_eq!(
            decode(&bomb, &[Coding::Gzip], MIB),
            Err(DecodeError::TooLarge)
        );
        assert_eq!(
            decode(&gzip(&bomb), &[Coding::Gzip, Coding::Gzip], 4 * MIB),
            Err(DecodeError::TooLarge)
        );
        if let (Some(before), Some(after)) = (before, peak_rss()) {
            assert!(
                after < before + 256 * MIB,
                "peak RSS grew from {before} to {after}"
            );
        }
    }

    #[test]
    fn corrupt_input() {
        use Coding::*;
        let garbage = b"this is not compressed at all, not even a little";
        for c in [Gzip, Deflate, Br, Zstd] {
            assert_eq!(
                decode(garbage, &[c], MIB),
                Err(DecodeError::Corrupt),
                "{c:?}"
            );
        }
        let big: Vec<u8> = TEXT.iter().copied().cycle().take(10_000).collect();
        let cut = |v: Vec<u8>| v[..v.len() / 2].to_vec();
        assert_eq!(
            decode(&cut(gzip(&big)), &[Gzip], MIB),
            Err(DecodeError::Corrupt)
        );
        assert_eq!(
            decode(&cut(zlib(&big)), &[Deflate], MIB),
            Err(DecodeError::Corrupt)
        );
        assert_eq!(
            decode(&cut(raw_deflate(&big)), &[Deflate], MIB),
            Err(DecodeError::Corrupt)
        );
        assert_eq!(
            decode(&cut(zstd(&big)), &[Zstd], MIB),
            Err(DecodeError::Corrupt)
        );
        assert_eq!(
            decode(&TEXT_BR[..TEXT_BR.len() / 2], &[Br], MIB),
            Err(DecodeError::Corrupt)
        );
        // A gzip member followed by junk.
        let mut junk = gzip(TEXT);
        junk.extend_from_slice(b"junk after the member");
        assert_eq!(decode(&junk, &[Gzip], MIB), Err(DecodeError::Corrupt));
        // A flipped byte breaks the gzip CRC.
        let mut flipped = gzip(&big);
        let n = flipped.len();
        flipped[n - 9] ^= 0xff;
        assert_eq!(decode(&flipped, &[Gzip], MIB), Err(DecodeError::Corrupt));
    }

    #[test]
    fn errors_display() {
        assert_eq!(
            DecodeError::Unsupported("compress".into()).to_string(),
            "unsupported content-encoding: compress"
        );
    }
}
