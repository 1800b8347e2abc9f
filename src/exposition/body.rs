//! The `/metrics` body built from parts that change at different rates: the published state
//! (encoded, and deflated, once per state version) and the server's own families (build info,
//! `process_*`, read up to once a second). A new process reading costs the few lines it changes,
//! not a new encoding and compression of every series; the body goes out as a list of shared
//! chunks, never copied into one buffer.
//!
//! The bytes are those of encoding all families sorted by name, as one stable sort of the state's
//! families followed by the server's would give them: a server family goes after the state's
//! families of its name and before the next name.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use super::text::{Format, encode_group};
use crate::state::Family;

/// A response body made of shared chunks, sent one after the other.
#[derive(Clone, Default)]
pub struct Chunks {
    chunks: VecDeque<Bytes>,
    remaining: u64,
}

impl Chunks {
    pub fn new(chunks: impl IntoIterator<Item = Bytes>) -> Self {
        let chunks: VecDeque<Bytes> = chunks.into_iter().filter(|c| !c.is_empty()).collect();
        let remaining = chunks.iter().map(|c| c.len() as u64).sum();
        Self { chunks, remaining }
    }
}

impl From<Bytes> for Chunks {
    fn from(bytes: Bytes) -> Self {
        Self::new([bytes])
    }
}

impl From<String> for Chunks {
    fn from(text: String) -> Self {
        Self::new([Bytes::from(text)])
    }
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = self.chunks.pop_front();
        if let Some(chunk) = &next {
            self.remaining -= chunk.len() as u64;
        }
        Poll::Ready(next.map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Exact, so the answer carries a `Content-Length`.
    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// The state's families in one format: encoded text and where each family name starts.
pub struct Encoded {
    pub version: u64,
    text: Bytes,
    /// Each family name with the offset of its first line, in name order.
    starts: Vec<(String, usize)>,
}

impl Encoded {
    /// Encodes the producers' snapshots, merged by family name (several producers may export
    /// one family: the first producer's help and type, every producer's samples in turn).
    pub fn new(version: u64, snapshots: &[std::sync::Arc<Vec<Family>>], format: Format) -> Self {
        let mut groups: BTreeMap<&str, Vec<&Family>> = BTreeMap::new();
        for snapshot in snapshots {
            for family in snapshot.iter() {
                groups.entry(&family.name).or_default().push(family);
            }
        }
        let size: usize = groups.values().flatten().map(|f| estimated_size(f)).sum();
        let mut text = String::with_capacity(size);
        let mut starts = Vec::with_capacity(groups.len());
        for (name, group) in &groups {
            starts.push((name.to_string(), text.len()));
            encode_group(&mut text, group, format);
        }
        // Kept as long as the state does not change: not a byte more than the text.
        text.shrink_to_fit();
        Self { version, text: Bytes::from(text), starts }
    }

    /// Where each of `names` (sorted) goes: before the first family whose name sorts after it.
    pub fn cuts<'a>(&self, names: impl Iterator<Item = &'a str>) -> Vec<usize> {
        names
            .map(|name| {
                let i = self.starts.partition_point(|(n, _)| n.as_str() <= name);
                self.starts.get(i).map_or(self.text.len(), |(_, at)| *at)
            })
            .collect()
    }

    /// The text between consecutive cuts: one run more than there are cuts.
    fn runs<'a>(&'a self, cuts: &'a [usize]) -> impl Iterator<Item = Bytes> + 'a {
        let ends = cuts.iter().copied().chain([self.text.len()]);
        let mut from = 0;
        ends.map(move |to| {
            let run = self.text.slice(from..to);
            from = to;
            run
        })
    }
}

/// About the length of `family` encoded, so a large body is written into one buffer of about its
/// size instead of one doubled again and again (a body of 29 MB grew into 54 MB of buffers).
fn estimated_size(family: &Family) -> usize {
    let lines = |s: &crate::state::Sample| match &s.value {
        crate::state::SampleValue::Scalar(_) => 1,
        crate::state::SampleValue::Histogram { buckets, .. } => buckets.len() + 3,
    };
    let samples: usize = family
        .samples
        .iter()
        .map(|s| {
            let labels: usize = s.labels.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
            lines(s) * (family.name.len() + labels + 40)
        })
        .sum();
    2 * family.name.len() + family.help.len() + 32 + samples
}

/// The server's own families in one format, sorted, each encoded on its own.
pub struct Extras {
    names: Vec<String>,
    texts: Vec<Bytes>,
}

impl Extras {
    pub fn new(mut families: Vec<Family>, format: Format) -> Self {
        // Stable: of two families of one name, the first given stays first, as in a full sort.
        families.sort_by(|a, b| a.name.cmp(&b.name));
        let texts = families
            .iter()
            .map(|f| {
                let mut out = String::new();
                encode_group(&mut out, &[f], format);
                Bytes::from(out)
            })
            .collect();
        Self { names: families.into_iter().map(|f| f.name).collect(), texts }
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }
}

/// The closing line of the format, if it has one.
fn trailer(format: Format) -> Bytes {
    match format {
        Format::OpenMetrics => Bytes::from_static(b"# EOF\n"),
        Format::Prometheus => Bytes::new(),
    }
}

/// The uncompressed body: state runs with the server's families between them.
pub fn plain(state: &Encoded, cuts: &[usize], extras: &Extras, format: Format) -> Chunks {
    let mut chunks = Vec::with_capacity(2 * cuts.len() + 2);
    let mut texts = extras.texts.iter();
    for run in state.runs(cuts) {
        chunks.push(run);
        chunks.extend(texts.next().cloned());
    }
    chunks.push(trailer(format));
    Chunks::new(chunks)
}

/// A piece of a deflate stream that ends on a byte boundary (a sync flush) and is not final, so
/// pieces compressed apart can follow one another in one stream; with its CRC-32 and length for
/// the gzip trailer.
pub struct Piece {
    data: Bytes,
    crc: crc32fast::Hasher,
    len: u64,
}

impl Piece {
    pub fn new(text: &[u8]) -> std::io::Result<Self> {
        let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(text)?;
        // flush() is a sync flush: the output so far is complete and byte-aligned.
        encoder.flush()?;
        let data = Bytes::from(std::mem::take(encoder.get_mut()));
        let mut crc = crc32fast::Hasher::new();
        crc.update(text);
        Ok(Self { data, crc, len: text.len() as u64 })
    }
}

/// The state runs of one version, format and set of cuts, deflated.
pub struct Deflated {
    pub version: u64,
    runs: Vec<Piece>,
}

impl Deflated {
    pub fn new(state: &Encoded, cuts: Vec<usize>) -> std::io::Result<Self> {
        let runs = state.runs(&cuts).map(|run| Piece::new(&run)).collect::<std::io::Result<_>>()?;
        Ok(Self { version: state.version, runs })
    }
}

/// The gzip body: one gzip member whose deflate stream is the state's pieces with the server's
/// families' pieces between them, closed by an empty final block and the trailer.
pub fn gzip(state: &Deflated, extras: &Extras, format: Format) -> std::io::Result<Chunks> {
    // ID1 ID2, CM deflate, no flags, no mtime, XFL fast, OS unknown: as flate2 writes it.
    const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255];
    // A final block with fixed codes holding only the end-of-block code.
    const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];
    let extra_pieces = extras.texts.iter().map(|t| Piece::new(t)).collect::<std::io::Result<Vec<_>>>()?;
    let closing = Piece::new(&trailer(format))?;
    let mut pieces: Vec<&Piece> = Vec::with_capacity(2 * state.runs.len() + 1);
    let mut between = extra_pieces.iter();
    for run in &state.runs {
        pieces.push(run);
        pieces.extend(between.next());
    }
    pieces.push(&closing);
    let mut crc = crc32fast::Hasher::new();
    let mut len = 0u64;
    let mut chunks = vec![Bytes::from_static(&HEADER)];
    for piece in pieces {
        chunks.push(piece.data.clone());
        crc.combine(&piece.crc);
        len += piece.len;
    }
    chunks.push(Bytes::from_static(&FINAL_BLOCK));
    let mut tail = Vec::with_capacity(8);
    tail.extend_from_slice(&crc.finalize().to_le_bytes());
    // ISIZE is the length modulo 2^32.
    tail.extend_from_slice(&((len & 0xffff_ffff) as u32).to_le_bytes());
    chunks.push(Bytes::from(tail));
    Ok(Chunks::new(chunks))
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::sync::Arc;

    use super::*;
    use crate::exposition::text::encode;
    use crate::spec::MetricType;

    fn gauge(name: &str, value: f64) -> Family {
        Family::new(name, "H.", MetricType::Gauge).with(&[("k", "v\"")], value)
    }

    fn collect(mut chunks: Chunks) -> Vec<u8> {
        let total = chunks.size_hint().exact();
        let mut out = Vec::new();
        while let Some(chunk) = chunks.chunks.pop_front() {
            out.extend_from_slice(&chunk);
        }
        assert_eq!(total, Some(out.len() as u64));
        out
    }

    /// The parts give the bytes of one encoding of everything sorted, gzip included, wherever
    /// the server's families fall: first, between, last, on a name the state has too.
    #[test]
    fn a_body_in_parts_is_the_body_encoded_whole() {
        let producers = vec![
            Arc::new(vec![gauge("b_shared", 1.0), gauge("d", 2.0)]),
            Arc::new(vec![gauge("b_shared", 3.0), Family::new("f_total", "C.", MetricType::Counter).with(&[], 4.0)]),
        ];
        let own = vec![gauge("z_last", 5.0), gauge("a_first", 6.0), gauge("d", 7.0), gauge("c_mid", 8.0)];
        for format in [Format::Prometheus, Format::OpenMetrics] {
            let mut merged: Vec<Family> = Vec::new();
            for family in producers.iter().flat_map(|p| p.iter()) {
                match merged.iter_mut().find(|f| f.name == family.name) {
                    Some(f) => f.samples.extend(family.samples.iter().cloned()),
                    None => merged.push(family.clone()),
                }
            }
            merged.extend(own.iter().cloned());
            merged.sort_by(|a, b| a.name.cmp(&b.name));
            let whole = encode(&merged, format);

            let state = Encoded::new(7, &producers, format);
            let extras = Extras::new(own.clone(), format);
            let cuts = state.cuts(extras.names());
            assert_eq!(String::from_utf8(collect(plain(&state, &cuts, &extras, format))).unwrap(), whole);

            let deflated = Deflated::new(&state, cuts).unwrap();
            let compressed = collect(gzip(&deflated, &extras, format).unwrap());
            let mut unzipped = String::new();
            // One member: a reader that stops after the first member reads it all.
            flate2::read::GzDecoder::new(&compressed[..]).read_to_string(&mut unzipped).unwrap();
            assert_eq!(unzipped, whole);
        }
    }
}
