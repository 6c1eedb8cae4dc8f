//! The QR code of a link, as SVG and as PNG: a product label's GS1 Digital Link, or the
//! verification page an evidence certificate points to.
//!
//! Both images are written by hand: the SVG is one `<path>`, and the PNG is 8-bit greyscale
//! in STORED deflate blocks, so no image or compression crate is needed. A label's code is small
//! (a Digital Link fits in a version of a few dozen modules), so compression would gain little.

use qrcodegen::{QrCode, QrCodeEcc, QrSegment, Version};

/// Light modules around the code, on every side, as ISO/IEC 18004 asks of a reader.
const QUIET_ZONE: usize = 4;

/// Largest pixels per module: a version-40 code at this scale is 5,920 px a side (35 MB of raw
/// pixels); anything larger is clamped so no input can make the image's size overflow.
pub const MAX_SCALE: usize = 32;

/// A QR code of `text` (byte mode, error correction level M, the smallest version that fits),
/// as its module matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelCode {
    size: usize,
    modules: Vec<bool>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LabelError {
    #[error("a text of {len} bytes does not fit in a QR code at error correction level M")]
    TooLong { len: usize },
}

impl LabelCode {
    /// Byte mode so the text is read back exactly as given (UTF-8); level M is not boosted, so
    /// the same text always gives the same code.
    pub fn encode(text: &str) -> Result<LabelCode, LabelError> {
        let segments = [QrSegment::make_bytes(text.as_bytes())];
        let (min, max) = (Version::MIN, Version::MAX);
        let qr =
            QrCode::encode_segments_advanced(&segments, QrCodeEcc::Medium, min, max, None, false)
                .map_err(|_| LabelError::TooLong { len: text.len() })?;
        let size = usize::try_from(qr.size()).unwrap_or(0);
        let side = 0..qr.size();
        let modules = side
            .clone()
            .flat_map(|y| side.clone().map(move |x| (x, y)))
            .map(|(x, y)| qr.get_module(x, y))
            .collect();
        Ok(LabelCode { size, modules })
    }

    /// Modules per side, without the quiet zone.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether the module at column `x`, row `y` is dark; false outside the code.
    pub fn dark(&self, x: usize, y: usize) -> bool {
        x < self.size && y < self.size && self.modules[y * self.size + x]
    }

    /// SVG 1.1, quiet zone of 4 modules, one `<path>` of dark modules (horizontal runs merged,
    /// each `M x y h w v1 h-w z`), viewBox in modules, `width`/`height` in px =
    /// `(size + 8) * scale` (scale clamped to `1..=MAX_SCALE`), `shape-rendering="crispEdges"`,
    /// and a `<title>` with `title` XML-escaped.
    pub fn svg(&self, title: &str, scale: usize) -> String {
        let side = self.size + 2 * QUIET_ZONE;
        let px = side * clamp_scale(scale);
        format!(
            concat!(
                r#"<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{px}" height="{px}" "#,
                r#"viewBox="0 0 {side} {side}" shape-rendering="crispEdges">"#,
                "<title>{title}</title>",
                // A white ground so the quiet zone holds on a coloured or transparent page.
                r##"<rect width="{side}" height="{side}" fill="#fff"/>"##,
                r##"<path fill="#000" d="{path}"/></svg>"##,
            ),
            px = px,
            side = side,
            title = xml_escape(title),
            path = self.svg_path(),
        )
    }

    /// The dark modules as one path: a rectangle per horizontal run, in quiet-zone coordinates.
    fn svg_path(&self) -> String {
        let mut d = String::new();
        for (x, y, w) in self.runs() {
            let (x, y) = (x + QUIET_ZONE, y + QUIET_ZONE);
            d.push_str(&format!("M{x} {y}h{w}v1h-{w}z"));
        }
        d
    }

    /// Maximal horizontal runs of dark modules, as (x, y, width).
    fn runs(&self) -> Vec<(usize, usize, usize)> {
        let mut runs = Vec::new();
        for y in 0..self.size {
            let mut x = 0;
            while x < self.size {
                let start = x;
                while x < self.size && self.dark(x, y) {
                    x += 1;
                }
                if x > start {
                    runs.push((start, y, x - start));
                }
                x += 1;
            }
        }
        runs
    }

    /// PNG, 8-bit greyscale (colour type 0, bit depth 8: dark = 0, light = 255), quiet zone of
    /// 4 modules, `scale` px per module (clamped to `1..=MAX_SCALE`), one IDAT holding a zlib
    /// stream of STORED deflate blocks, filter type 0 on every row.
    pub fn png(&self, scale: usize) -> Vec<u8> {
        let scale = clamp_scale(scale);
        let px = (self.size + 2 * QUIET_ZONE) * scale;
        // Bounded by MAX_SCALE: at most 5,920 px a side, far below u32::MAX.
        let side = px as u32;
        let mut ihdr = Vec::with_capacity(13);
        ihdr.extend_from_slice(&side.to_be_bytes());
        ihdr.extend_from_slice(&side.to_be_bytes());
        // Bit depth 8, colour type 0 (greyscale), deflate, adaptive filtering, no interlace.
        ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png_chunk(&mut png, b"IHDR", &ihdr);
        png_chunk(&mut png, b"IDAT", &zlib_stored(&self.scanlines(scale)));
        png_chunk(&mut png, b"IEND", &[]);
        png
    }

    /// The image's rows, each a filter byte (0, none) and then one byte per pixel.
    fn scanlines(&self, scale: usize) -> Vec<u8> {
        let side = self.size + 2 * QUIET_ZONE;
        let mut raw = Vec::with_capacity(side * scale * (side * scale + 1));
        for my in 0..side {
            let mut row = Vec::with_capacity(side * scale + 1);
            row.push(0);
            for mx in 0..side {
                let dark = self.dark_with_quiet_zone(mx, my);
                row.extend(std::iter::repeat_n(if dark { 0 } else { 255 }, scale));
            }
            // A module row is `scale` identical pixel rows.
            for _ in 0..scale {
                raw.extend_from_slice(&row);
            }
        }
        raw
    }

    /// [`Self::dark`] in coordinates that include the quiet zone.
    fn dark_with_quiet_zone(&self, x: usize, y: usize) -> bool {
        x >= QUIET_ZONE && y >= QUIET_ZONE && self.dark(x - QUIET_ZONE, y - QUIET_ZONE)
    }
}

fn clamp_scale(scale: usize) -> usize {
    scale.clamp(1, MAX_SCALE)
}

/// `text` safe in XML character data and in attribute values alike.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

/// Appends one PNG chunk: length, type, data, and the CRC-32 of type and data.
fn png_chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    // Bounded by MAX_SCALE: an IDAT is at most some 35 MB, below PNG's 2^31 - 1.
    png.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    png.extend_from_slice(kind);
    png.extend_from_slice(data);
    png.extend_from_slice(&crc.finalize().to_be_bytes());
}

/// Largest STORED deflate block: its length is a 16-bit field.
const MAX_STORED: usize = 65_535;

/// A zlib stream (RFC 1950) of `data` in STORED deflate blocks (RFC 1951, BTYPE 00).
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let blocks = data.len().div_ceil(MAX_STORED).max(1);
    let mut out = Vec::with_capacity(data.len() + 5 * blocks + 6);
    // CMF 0x78: deflate, 32 KiB window; FLG 0x01: no dictionary, and (CMF*256 + FLG) % 31 == 0.
    out.extend_from_slice(&[0x78, 0x01]);
    // One empty final block if there is no data at all, so the stream still ends.
    let mut chunks: Vec<&[u8]> = data.chunks(MAX_STORED).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.into_iter().enumerate() {
        // BFINAL in bit 0, BTYPE 00; a stored block's header is then padded to the byte.
        out.push(u8::from(i == last));
        // A chunk is at most MAX_STORED bytes, so its length fits in 16 bits.
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

/// Adler-32 (RFC 1950 §8.2), reducing modulo 65521 every 5552 bytes: the most that cannot
/// overflow a u32 between reductions.
fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    let (mut a, mut b) = (1u32, 0u32);
    for block in data.chunks(5552) {
        for &byte in block {
            a += u32::from(byte);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const LINK: &str = "https://id.gs1.org/01/09506000134352/10/ABC123";

    fn code() -> LabelCode {
        LabelCode::encode(LINK).expect("a Digital Link fits")
    }

    #[test]
    fn a_digital_link_encodes_to_a_small_version() {
        let code = code();
        // 47 bytes in byte mode at level M need version 4: 33 modules.
        assert_eq!(code.size(), 33);
        assert!(code.size() <= 41);
        // The three finder patterns, and the separator inside their corner.
        for (x, y) in [(0, 0), (6, 6), (32, 0), (0, 32)] {
            assert!(code.dark(x, y), "({x}, {y})");
        }
        assert!(!code.dark(7, 7));
    }

    #[test]
    fn outside_the_code_nothing_is_dark() {
        let code = code();
        let n = code.size();
        assert!(!code.dark(n, 0) && !code.dark(0, n) && !code.dark(usize::MAX, usize::MAX));
    }

    #[test]
    fn a_too_long_text_is_an_error() {
        let text = "a".repeat(5_000);
        assert_eq!(
            LabelCode::encode(&text),
            Err(LabelError::TooLong { len: 5_000 })
        );
    }

    #[test]
    fn the_smallest_version_at_level_m_is_chosen() {
        // Version 3 at level M holds 42 bytes, version 40 holds 2,331 (at level L: 2,953).
        let size = |n: usize| LabelCode::encode(&"a".repeat(n)).map(|c| c.size());
        assert_eq!(size(42), Ok(29));
        assert_eq!(size(43), Ok(33));
        assert_eq!(size(2_331), Ok(177));
        assert_eq!(size(2_332), Err(LabelError::TooLong { len: 2_332 }));
    }

    /// The level's two bits of the format information, masked, beside the top-left finder:
    /// (dark, light) for M alone of the four levels.
    fn level_is_m(dark: impl Fn(usize, usize) -> bool) -> bool {
        dark(0, 8) && !dark(1, 8)
    }

    #[test]
    fn the_level_is_m_and_never_boosted() {
        // Boosting would raise a short text to level H; qrcodegen's own H code reads as not M.
        let segments = [QrSegment::make_bytes(b"a")];
        let (min, max) = (Version::MIN, Version::MAX);
        let high =
            QrCode::encode_segments_advanced(&segments, QrCodeEcc::High, min, max, None, false);
        let high = high.expect("one byte fits");
        assert!(!level_is_m(|x, y| high.get_module(x as i32, y as i32)));
        for text in ["a", LINK, &"a".repeat(2_331)] {
            let code = LabelCode::encode(text).expect("fits");
            assert!(level_is_m(|x, y| code.dark(x, y)), "{text}");
        }
    }

    #[test]
    fn the_svg_has_its_frame_and_an_escaped_title() {
        let svg = code().svg(r#"a<b&c"d'e>"#, 4);
        assert!(svg.starts_with("<svg"));
        assert!(svg.ends_with("</svg>"));
        assert!(svg.contains(r#"viewBox="0 0 41 41""#));
        assert!(svg.contains(r#"width="164" height="164""#));
        assert!(svg.contains(r#"shape-rendering="crispEdges""#));
        assert!(svg.contains("<title>a&lt;b&amp;c&quot;d&apos;e&gt;</title>"));
        assert_eq!(svg.matches("<path").count(), 1);
    }

    /// The modules the path's runs cover, each `M x y h w v1 h-w z`, in code coordinates.
    fn covered(path: &str) -> Vec<(usize, usize)> {
        let mut cells = Vec::new();
        for run in path.split('z').filter(|r| !r.is_empty()) {
            let (head, rest) = run[1..].split_once('h').expect("M x y h");
            let (x, y) = head.split_once(' ').expect("x y");
            let (w, back) = rest.split_once("v1h-").expect("v1 h-");
            assert_eq!(w, back, "a run closes on itself");
            let (x, y, w): (usize, usize, usize) =
                (x.parse().unwrap(), y.parse().unwrap(), w.parse().unwrap());
            cells.extend((x..x + w).map(|x| (x - QUIET_ZONE, y - QUIET_ZONE)));
        }
        cells
    }

    #[test]
    fn the_svg_path_covers_exactly_the_dark_modules() {
        let code = code();
        let svg = code.svg("label", 1);
        let d = svg
            .split(r#" d=""#)
            .nth(1)
            .and_then(|s| s.split('"').next());
        let cells = covered(d.expect("a path"));
        let set: HashSet<_> = cells.iter().copied().collect();
        assert_eq!(set.len(), cells.len(), "no module is covered twice");
        let n = code.size();
        let dark: HashSet<_> = (0..n)
            .flat_map(|y| (0..n).map(move |x| (x, y)))
            .filter(|&(x, y)| code.dark(x, y))
            .collect();
        assert_eq!(set, dark);
        // Runs are merged: no two runs touch on one row.
        assert!(
            code.runs()
                .windows(2)
                .all(|w| w[0].1 != w[1].1 || w[0].0 + w[0].2 < w[1].0)
        );
    }

    /// The PNG's chunks, each CRC checked.
    fn chunks(png: &[u8]) -> Vec<([u8; 4], Vec<u8>)> {
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let (mut at, mut out) = (8, Vec::new());
        while at < png.len() {
            let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
            let kind: [u8; 4] = png[at + 4..at + 8].try_into().unwrap();
            let data = png[at + 8..at + 8 + len].to_vec();
            let crc = u32::from_be_bytes(png[at + 8 + len..at + 12 + len].try_into().unwrap());
            assert_eq!(crc, crc32fast::hash(&png[at + 4..at + 8 + len]), "{kind:?}");
            out.push((kind, data));
            at += 12 + len;
        }
        out
    }

    /// A zlib stream of STORED blocks read back by hand, its Adler-32 checked.
    fn inflate_stored(z: &[u8]) -> (Vec<u8>, usize) {
        assert_eq!((u16::from(z[0]) * 256 + u16::from(z[1])) % 31, 0);
        assert_eq!(z[0] & 0x0f, 8, "deflate");
        let (mut at, mut out, mut blocks) = (2, Vec::new(), 0);
        loop {
            let header = z[at];
            assert_eq!(header >> 1, 0, "BTYPE 00, stored");
            let len = u16::from_le_bytes([z[at + 1], z[at + 2]]);
            let nlen = u16::from_le_bytes([z[at + 3], z[at + 4]]);
            assert_eq!(nlen, !len);
            out.extend_from_slice(&z[at + 5..at + 5 + usize::from(len)]);
            at += 5 + usize::from(len);
            blocks += 1;
            if header & 1 == 1 {
                break;
            }
        }
        assert_eq!(z[at..], adler32(&out).to_be_bytes());
        (out, blocks)
    }

    fn check_png(code: &LabelCode, scale: usize) -> usize {
        let png = code.png(scale);
        let chunks = chunks(&png);
        let kinds: Vec<_> = chunks.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, [*b"IHDR", *b"IDAT", *b"IEND"]);
        let px = (code.size() + 8) * scale;
        let ihdr = &chunks[0].1;
        assert_eq!(ihdr[..4], (px as u32).to_be_bytes());
        assert_eq!(ihdr[4..8], (px as u32).to_be_bytes());
        assert_eq!(ihdr[8..], [8, 0, 0, 0, 0]);
        let (raw, blocks) = inflate_stored(&chunks[1].1);
        assert_eq!(raw, expected_pixels(code, scale));
        blocks
    }

    /// The rows `dark()` says the image should hold: filter 0, then 0 for dark, 255 for light.
    fn expected_pixels(code: &LabelCode, scale: usize) -> Vec<u8> {
        let px = (code.size() + 8) * scale;
        let mut raw = Vec::new();
        for y in 0..px {
            raw.push(0);
            for x in 0..px {
                let (mx, my) = ((x / scale).wrapping_sub(4), (y / scale).wrapping_sub(4));
                raw.push(if code.dark(mx, my) { 0 } else { 255 });
            }
        }
        raw
    }

    #[test]
    fn the_png_holds_exactly_the_modules() {
        assert_eq!(check_png(&code(), 1), 1);
        assert_eq!(check_png(&code(), 3), 1);
    }

    #[test]
    fn a_large_png_spans_several_stored_blocks() {
        // 41 modules at 7 px: 287 rows of 288 bytes, 82,656 bytes in two blocks.
        assert_eq!(check_png(&code(), 7), 2);
    }

    #[test]
    fn a_scale_out_of_range_is_clamped() {
        let code = code();
        assert_eq!(code.png(0), code.png(1));
        assert!(code.svg("t", 0).contains(r#"width="41""#));
        assert!(
            code.svg("t", usize::MAX)
                .contains(&format!(r#"width="{}""#, 41 * MAX_SCALE))
        );
    }

    #[test]
    fn adler32_matches_known_values() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        // Long enough to need reductions between bytes of 0xff.
        let ones = vec![0xffu8; 100_000];
        let (mut a, mut b) = (1u64, 0u64);
        for &byte in &ones {
            a = (a + u64::from(byte)) % 65_521;
            b = (b + a) % 65_521;
        }
        assert_eq!(u64::from(adler32(&ones)), (b << 16) | a);
    }
}
