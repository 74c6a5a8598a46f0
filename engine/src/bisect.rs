//! Bisecting a kernel series: the point release where a cell's verdict
//! changed, found by validating about log2(N) releases, and what the first
//! changed release's changelog says about BPF since the last unchanged one.
//!
//! The search is over positions in the series (oldest first); what a
//! position's verdict is comes from the caller (a guest per release).

use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::classify::{Code, Status};
use crate::matrix::Format;

/// What a cell said: the part that decides "changed".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Pass, fail, …
    pub status: Status,
    /// The failure's code.
    pub code: Option<Code>,
}

/// One release validated during the search.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Probe {
    /// Its position in the series (0 = oldest).
    pub position: usize,
    /// The package version.
    pub version: String,
    /// The verdict.
    pub verdict: Verdict,
    /// The kernel's words, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// How a search ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Found {
    /// The verdict changes between `last_good` and `first_bad` (positions).
    Boundary {
        /// The last release with the first end's verdict.
        last_good: usize,
        /// The first release with another.
        first_bad: usize,
    },
    /// Both ends say the same: nothing to bisect (a change and its revert
    /// inside the range would not be seen).
    Same,
}

/// Searches `good..=bad` for the first release whose verdict is not
/// `good`'s, validating the ends first; `probe` validates one position.
/// Every tested point is returned, in the order tested. A tested point
/// whose verdict is neither end's makes the series non-monotonic: it is
/// kept among the probes (see [`non_monotonic`]) and searched past as a
/// change.
pub fn search<E>(
    good: usize,
    bad: usize,
    probe: &mut dyn FnMut(usize) -> Result<Probe, E>,
) -> Result<(Found, Vec<Probe>), E> {
    let first = probe(good)?;
    let last = probe(bad)?;
    let (g, b) = (first.verdict.clone(), last.verdict.clone());
    let mut probes = vec![first, last];
    if g == b {
        return Ok((Found::Same, probes));
    }
    let (mut lo, mut hi) = (good, bad);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        let p = probe(mid)?;
        match p.verdict == g {
            true => lo = mid,
            false => hi = mid,
        }
        probes.push(p);
    }
    Ok((
        Found::Boundary {
            last_good: lo,
            first_bad: hi,
        },
        probes,
    ))
}

/// The tested points whose verdict is neither end's, or whose verdict
/// contradicts the order found (a "good" verdict after the boundary, a
/// "bad" one before it): the series is not monotonic there.
pub fn non_monotonic<'p>(found: &Found, probes: &'p [Probe]) -> Vec<&'p Probe> {
    let (Some(first), Some(last)) = (probes.first(), probes.get(1)) else {
        return Vec::new();
    };
    probes
        .iter()
        .filter(|p| {
            let good = p.verdict == first.verdict;
            let bad = p.verdict == last.verdict;
            match found {
                Found::Same => !good,
                Found::Boundary { last_good, .. } => {
                    (!good && !bad)
                        || (good && p.position > *last_good)
                        || (bad && p.position <= *last_good)
                }
            }
        })
        .collect()
}

/// One changelog line that mentions what the verdict may depend on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChangelogLine {
    /// The changelog entry's version.
    pub version: String,
    /// The line, trimmed.
    pub line: String,
}

/// The most of a changelog read once decompressed.
const CHANGELOG_TEXT_LIMIT: u64 = 256 << 20;
/// The most lines reported.
const CHANGELOG_LINES: usize = 200;

/// The lines of the Debian changelog `gz` in entries newer than `after`
/// and up to `upto` that mention BPF, the verifier, BTF or one of `words`
/// (case-insensitive).
pub fn changelog_lines(
    gz: &Path,
    format: Format,
    after: &str,
    upto: &str,
    words: &[String],
) -> std::io::Result<Vec<ChangelogLine>> {
    let file = std::fs::File::open(gz)?;
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(file)
        .take(CHANGELOG_TEXT_LIMIT)
        .read_to_string(&mut text)?;
    Ok(lines_between(&text, format, after, upto, words))
}

fn lines_between(
    text: &str,
    format: Format,
    after: &str,
    upto: &str,
    words: &[String],
) -> Vec<ChangelogLine> {
    use std::cmp::Ordering::Greater;
    let mut needles: Vec<String> = ["bpf", "verifier", "btf"].map(String::from).to_vec();
    needles.extend(words.iter().map(|w| w.to_ascii_lowercase()));
    let mut out = Vec::new();
    let mut version: Option<String> = None;
    for line in text.lines() {
        // An entry begins `package (version) distribution; urgency=…`.
        if !line.starts_with(' ')
            && let Some((_, rest)) = line.split_once(" (")
            && let Some((v, _)) = rest.split_once(')')
        {
            version = Some(v.to_string());
            continue;
        }
        let Some(v) = &version else { continue };
        let inside = crate::kernel::compare_versions(format, v, after) == Greater
            && crate::kernel::compare_versions(format, v, upto) != Greater;
        if !inside {
            // Entries are newest first: past `after` nothing more is inside.
            if crate::kernel::compare_versions(format, v, after) != Greater {
                break;
            }
            continue;
        }
        let lower = line.to_ascii_lowercase();
        if needles.iter().any(|n| lower.contains(n.as_str())) {
            out.push(ChangelogLine {
                version: v.clone(),
                line: line.trim().to_string(),
            });
            if out.len() == CHANGELOG_LINES {
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(pass: bool) -> Verdict {
        Verdict {
            status: if pass { Status::Pass } else { Status::Fail },
            code: (!pass).then_some(Code::UnsupportedHelper),
        }
    }

    /// A series of `n` releases that pass from `from` on.
    fn run(n: usize, from: usize) -> (Found, Vec<Probe>) {
        let mut probe = |i: usize| -> Result<Probe, ()> {
            Ok(Probe {
                position: i,
                version: i.to_string(),
                verdict: verdict(i >= from),
                message: None,
            })
        };
        search(0, n - 1, &mut probe).unwrap()
    }

    #[test]
    fn the_boundary_is_found_in_about_log2_n_boots() {
        for n in 2..40 {
            for from in 1..n {
                let (found, probes) = run(n, from);
                assert_eq!(
                    found,
                    Found::Boundary {
                        last_good: from - 1,
                        first_bad: from
                    }
                );
                let most = 2 + (n as f64 - 1.0).log2().ceil() as usize;
                assert!(probes.len() <= most, "{n} {from}: {}", probes.len());
                assert!(non_monotonic(&found, &probes).is_empty());
            }
        }
        // Nine releases, a change at the sixth: five boots.
        assert_eq!(run(9, 5).1.len(), 5);
        let (found, probes) = run(9, 0);
        assert_eq!(found, Found::Same);
        assert_eq!(probes.len(), 2);
    }

    #[test]
    fn a_change_that_is_reverted_is_reported_not_hidden() {
        // Fails at 0, passes at 4..=6 only, fails at 8: ends agree.
        let mut probe = |i: usize| -> Result<Probe, ()> {
            Ok(Probe {
                position: i,
                version: i.to_string(),
                verdict: verdict((4..=6).contains(&i)),
                message: None,
            })
        };
        let (found, probes) = search(0, 8, &mut probe).unwrap();
        assert_eq!(found, Found::Same);
        assert!(
            non_monotonic(&found, &probes).is_empty(),
            "only the ends were tested"
        );
        // Fails at 0..=2 and at 6..=8, passes at 3..=5; the ends differ when
        // the range is 0..=4: a later point contradicting the order shows.
        let mut probe = |i: usize| -> Result<Probe, ()> {
            Ok(Probe {
                position: i,
                version: i.to_string(),
                verdict: verdict((3..=5).contains(&i)),
                message: None,
            })
        };
        let (found, probes) = search(0, 4, &mut probe).unwrap();
        assert_eq!(
            found,
            Found::Boundary {
                last_good: 2,
                first_bad: 3
            }
        );
        let mut third = probes.clone();
        third.push(Probe {
            position: 1,
            version: "1".into(),
            verdict: Verdict {
                status: Status::InfraError,
                code: None,
            },
            message: None,
        });
        assert_eq!(non_monotonic(&found, &third).len(), 1);
    }

    #[test]
    fn changelog_lines_are_those_between_the_two_releases_that_mention_bpf() {
        let text = "linux (5.15.0-93.103) jammy; urgency=medium\n\n  * bpf: fix a verifier bug\n  * net: something\n\n -- A <a@b>  Mon, 1 Jan 2024 00:00:00 +0000\n\n\
linux (5.15.0-92.102) jammy; urgency=medium\n\n  * Backport bpf_loop helper\n  * drm: other\n  * BTF: dedup fix\n\n -- A <a@b>  Mon, 1 Jan 2024 00:00:00 +0000\n\n\
linux (5.15.0-91.101) jammy; urgency=medium\n\n  * bpf: older change\n";
        let got = lines_between(text, Format::Deb, "5.15.0-91.101", "5.15.0-92.102", &[]);
        assert_eq!(
            got,
            [
                ChangelogLine {
                    version: "5.15.0-92.102".into(),
                    line: "* Backport bpf_loop helper".into()
                },
                ChangelogLine {
                    version: "5.15.0-92.102".into(),
                    line: "* BTF: dedup fix".into()
                },
            ]
        );
        let got = lines_between(
            text,
            Format::Deb,
            "5.15.0-91.101",
            "5.15.0-93.103",
            &["drm".into()],
        );
        assert_eq!(got.len(), 4, "{got:?}");
    }
}
