//! A command's output as the agent keeps it: the last [`OUTPUT_KEEP`] bytes
//! of one stream (stdout and stderr share a pipe, so the order is the
//! order written), and its lines, each cut to [`LINE_KEEP`] bytes, for the
//! ready line. Nothing is ever held whole: a line of any length costs at
//! most these bounds.

use std::collections::VecDeque;

use bpfcompat_engine::wire::OUTPUT_KEEP;

/// The most of one line kept for matching.
pub const LINE_KEEP: usize = 4096;

/// What a command wrote so far.
#[derive(Debug, Default)]
pub struct Output {
    tail: VecDeque<u8>,
    total: u64,
    line: Vec<u8>,
}

impl Output {
    /// Takes the next bytes; calls `on_line` with each line they complete
    /// (without its newline, cut to [`LINE_KEEP`] bytes).
    pub fn feed(&mut self, bytes: &[u8], mut on_line: impl FnMut(&[u8])) {
        self.total += bytes.len() as u64;
        let keep = &bytes[bytes.len().saturating_sub(OUTPUT_KEEP)..];
        let overflow = (self.tail.len() + keep.len()).saturating_sub(OUTPUT_KEEP);
        self.tail.drain(..overflow);
        self.tail.extend(keep);
        for part in bytes.split_inclusive(|&b| b == b'\n') {
            let room = LINE_KEEP.saturating_sub(self.line.len());
            let body = part.strip_suffix(b"\n").unwrap_or(part);
            self.line.extend_from_slice(&body[..body.len().min(room)]);
            if part.ends_with(b"\n") {
                on_line(&self.line);
                self.line.clear();
            }
        }
    }

    /// The kept end, lossily decoded.
    pub fn text(&self) -> String {
        let (a, b) = self.tail.as_slices();
        String::from_utf8_lossy(&[a, b].concat()).into_owned()
    }

    /// Every byte written.
    pub fn total(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_reads_are_whole_and_long_ones_cut() {
        let mut out = Output::default();
        let mut lines = Vec::new();
        out.feed(b"one\ntw", |l| lines.push(l.to_vec()));
        out.feed(b"o\n", |l| lines.push(l.to_vec()));
        let long = vec![b'x'; 3 * LINE_KEEP];
        out.feed(&long, |l| lines.push(l.to_vec()));
        out.feed(b"\nready\n", |l| lines.push(l.to_vec()));
        assert_eq!(lines[0], b"one");
        assert_eq!(lines[1], b"two");
        assert_eq!(lines[2].len(), LINE_KEEP);
        assert_eq!(lines[3], b"ready");
        assert_eq!(out.total(), 8 + 3 * LINE_KEEP as u64 + 7);
    }

    #[test]
    fn only_the_last_bytes_are_kept_and_bad_utf8_is_shown_lossily() {
        let mut out = Output::default();
        for _ in 0..100 {
            out.feed(&vec![b'a'; 10_000], |_| {});
        }
        out.feed(b"\xff\xfe end\n", |_| {});
        let text = out.text();
        assert!(text.len() <= OUTPUT_KEEP + 8, "{}", text.len());
        assert!(
            text.ends_with("\u{fffd}\u{fffd} end\n"),
            "{}",
            &text[text.len() - 20..]
        );
        assert_eq!(out.total(), 1_000_000 + 7);
    }
}
