//! Metadata removal for captured images: EXIF (with its GPS block), XMP and IPTC leave
//! JPEGs; `eXIf` and text chunks leave PNGs. Pixels are kept byte for byte.

/// JPEG and PNG signatures.
pub(crate) fn is_jpeg(b: &[u8]) -> bool {
    b.starts_with(&[0xFF, 0xD8, 0xFF])
}

pub(crate) fn is_png(b: &[u8]) -> bool {
    b.starts_with(PNG_SIG)
}

const PNG_SIG: &[u8] = b"\x89PNG\r\n\x1a\n";

/// The image without its metadata: JPEG without APP1 (EXIF, GPS, XMP) and APP13 (IPTC)
/// segments and comments; PNG without `eXIf`, `tEXt`, `iTXt`, `zTXt` and `tIME` chunks.
/// `None` for anything else, and for a JPEG or PNG that cannot be walked (the caller
/// then drops the image rather than keep metadata it could not remove).
pub fn strip_image_metadata(bytes: &[u8]) -> Option<Vec<u8>> {
    if is_jpeg(bytes) {
        strip_jpeg(bytes)
    } else if is_png(bytes) {
        strip_png(bytes)
    } else {
        None
    }
}

fn strip_jpeg(b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(&b[..2]);
    let mut i = 2;
    loop {
        if *b.get(i)? != 0xFF {
            return None;
        }
        // Fill bytes.
        let mut m = i + 1;
        while *b.get(m)? == 0xFF {
            m += 1;
        }
        let marker = b[m];
        let seg_start = i;
        i = m + 1;
        match marker {
            // Start of scan: the image data is kept up to its end marker (FF D9 occurs
            // nowhere else: data bytes FF are stuffed as FF 00); whatever follows, such
            // as the extra images of a multi-picture file with EXIF/GPS of their own, is
            // dropped.
            0xDA => {
                let end =
                    memchr::memmem::find(&b[i..], &[0xFF, 0xD9]).map_or(b.len(), |p| i + p + 2);
                out.extend_from_slice(&b[seg_start..end]);
                return Some(out);
            }
            0xD9 => {
                out.extend_from_slice(&b[seg_start..i]);
                return Some(out);
            }
            0x01 | 0xD0..=0xD7 => out.extend_from_slice(&b[seg_start..i]),
            _ => {
                let len = usize::from(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]));
                if len < 2 {
                    return None;
                }
                let end = i.checked_add(len)?;
                if end > b.len() {
                    return None;
                }
                // APP1 (EXIF/XMP), APP13 (IPTC), COM.
                if !matches!(marker, 0xE1 | 0xED | 0xFE) {
                    out.extend_from_slice(&b[seg_start..end]);
                }
                i = end;
            }
        }
    }
}

fn strip_png(b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(b.len());
    out.extend_from_slice(PNG_SIG);
    let mut i = PNG_SIG.len();
    while i < b.len() {
        let len = u32::from_be_bytes(b.get(i..i + 4)?.try_into().ok()?) as usize;
        let kind = b.get(i + 4..i + 8)?;
        let end = i.checked_add(12)?.checked_add(len)?;
        if end > b.len() {
            return None;
        }
        if !matches!(kind, b"eXIf" | b"tEXt" | b"iTXt" | b"zTXt" | b"tIME") {
            out.extend_from_slice(&b[i..end]);
        }
        i = end;
        if kind == b"IEND" {
            return Some(out);
        }
    }
    None
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (k, &x)| acc | (u32::from(x) << (16 - 8 * k)));
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard or URL-safe base64, padding optional (the engine's decoder, shared with the
/// JWT check).
pub(crate) use crate::engine::validators::base64_decode;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A tiny JPEG: SOI, APP0 (JFIF), APP1 (EXIF with a GPS IFD marker), COM, DQT, SOS
    /// with some scan bytes, EOI.
    pub(crate) fn jpeg_with_exif() -> Vec<u8> {
        let mut j = vec![0xFF, 0xD8];
        j.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x07, b'J', b'F', b'I', b'F', 0]);
        let exif = b"Exif\0\0MM\0*GPSLatitude=52.5200N";
        j.extend_from_slice(&[0xFF, 0xE1]);
        j.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
        j.extend_from_slice(exif);
        j.extend_from_slice(&[0xFF, 0xFE, 0x00, 0x07, b'h', b'e', b'l', b'l', b'o']);
        j.extend_from_slice(&[0xFF, 0xDB, 0x00, 0x04, 0x01, 0x02]);
        j.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x03, 0x01, 0x12, 0x34, 0xFF, 0x00, 0x56]);
        j.extend_from_slice(&[0xFF, 0xD9]);
        j
    }

    pub(crate) fn png_with_text() -> Vec<u8> {
        let chunk = |kind: &[u8], data: &[u8]| {
            let mut c = (data.len() as u32).to_be_bytes().to_vec();
            c.extend_from_slice(kind);
            c.extend_from_slice(data);
            c.extend_from_slice(&[0, 0, 0, 0]);
            c
        };
        let mut p = PNG_SIG.to_vec();
        p.extend(chunk(b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]));
        p.extend(chunk(b"tEXt", b"Author\0Jane GPS 52.52"));
        p.extend(chunk(b"eXIf", b"MM\0*GPSLatitude"));
        p.extend(chunk(b"IDAT", &[1, 2, 3]));
        p.extend(chunk(b"IEND", &[]));
        p
    }

    #[test]
    fn jpeg_loses_exif_and_keeps_pixels() {
        let j = jpeg_with_exif();
        let s = strip_image_metadata(&j).unwrap();
        assert!(memchr::memmem::find(&s, b"GPS").is_none());
        assert!(memchr::memmem::find(&s, b"Exif").is_none());
        assert!(memchr::memmem::find(&s, b"hello").is_none());
        assert!(memchr::memmem::find(&s, b"JFIF").is_some());
        assert!(s.ends_with(&[
            0xFF, 0xDA, 0x00, 0x03, 0x01, 0x12, 0x34, 0xFF, 0x00, 0x56, 0xFF, 0xD9
        ]));
        assert_eq!(strip_image_metadata(&s).unwrap(), s, "idempotent");
        assert!(
            strip_image_metadata(&j[..20]).is_none(),
            "truncated: refused"
        );
    }

    #[test]
    fn images_appended_after_the_end_marker_are_dropped() {
        // A multi-picture file: a second JPEG with its own EXIF after the first's EOI.
        let mut j = jpeg_with_exif();
        let first_len = strip_image_metadata(&j).unwrap().len();
        j.extend(jpeg_with_exif());
        let s = strip_image_metadata(&j).unwrap();
        assert_eq!(s.len(), first_len);
        assert!(memchr::memmem::find(&s, b"GPS").is_none());
        assert!(s.ends_with(&[0xFF, 0xD9]));
    }

    #[test]
    fn png_loses_text_and_exif_chunks() {
        let p = png_with_text();
        let s = strip_image_metadata(&p).unwrap();
        assert!(memchr::memmem::find(&s, b"GPS").is_none());
        assert!(memchr::memmem::find(&s, b"IDAT").is_some());
        assert!(s.ends_with(b"IEND\0\0\0\0"));
        assert!(strip_image_metadata(&p[..p.len() - 3]).is_none());
        assert!(strip_image_metadata(b"GIF89a").is_none());
    }

    #[test]
    fn base64_round_trips() {
        for n in 0..40u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            let e = base64_encode(&data);
            assert_eq!(base64_decode(&e).unwrap(), data);
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert!(base64_decode("a b").is_none());
    }
}
