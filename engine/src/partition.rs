//! Which slice of a matrix's kernels one CI job runs, in nextest's syntax:
//! `count:I/N` (every N-th kernel by position, from the I-th) or `hash:I/N`
//! (by a hash of the kernel's name, so a slice keeps its kernels when others
//! are added). A bare `I/N` is `count:I/N`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// How kernels are dealt to slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionKind {
    /// By position in the matrix.
    Count,
    /// By a hash of the kernel's name.
    Hash,
}

/// Slice `index` (1-based) of `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Partition {
    /// How kernels are dealt.
    pub kind: PartitionKind,
    /// This slice, 1 ..= total.
    pub index: usize,
    /// How many slices.
    pub total: usize,
}

impl Partition {
    /// Whether the kernel `name` at `position` (0-based, in matrix order)
    /// belongs to this slice.
    pub fn holds(&self, position: usize, name: &str) -> bool {
        let bucket = match self.kind {
            PartitionKind::Count => position,
            PartitionKind::Hash => {
                let digest = Sha256::digest(name.as_bytes());
                let mut first = [0u8; 8];
                first.copy_from_slice(&digest[..8]);
                // The remainder is below `total`, so it fits a usize.
                (u64::from_be_bytes(first) % self.total as u64) as usize
            }
        };
        bucket % self.total == self.index - 1
    }

    /// The names of `kernels` (in matrix order) this slice runs.
    pub fn select<'a>(&self, kernels: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
        kernels
            .into_iter()
            .enumerate()
            .filter(|(i, k)| self.holds(*i, k))
            .map(|(_, k)| k)
            .collect()
    }

    /// The same partition's slice `index`.
    pub fn slice(&self, index: usize) -> Partition {
        Partition { index, ..*self }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            PartitionKind::Count => "count",
            PartitionKind::Hash => "hash",
        };
        write!(f, "{kind}:{}/{}", self.index, self.total)
    }
}

impl FromStr for Partition {
    type Err = String;

    fn from_str(s: &str) -> Result<Partition, String> {
        let (kind, slice) = match s.split_once(':') {
            Some(("count", rest)) => (PartitionKind::Count, rest),
            Some(("hash", rest)) => (PartitionKind::Hash, rest),
            Some((other, _)) => {
                return Err(format!(
                    "{s}: unknown partition kind `{other}` (expected count:I/N or hash:I/N)"
                ));
            }
            None => (PartitionKind::Count, s),
        };
        let (i, n) = slice
            .split_once('/')
            .ok_or_else(|| format!("{s}: expected I/N, e.g. count:2/3"))?;
        let index: usize = i.parse().map_err(|_| format!("{s}: I is not a number"))?;
        let total: usize = n.parse().map_err(|_| format!("{s}: N is not a number"))?;
        if total == 0 || index == 0 || index > total {
            return Err(format!("{s}: need 1 <= I <= N"));
        }
        Ok(Partition { kind, index, total })
    }
}

impl TryFrom<String> for Partition {
    type Error = String;
    fn try_from(s: String) -> Result<Partition, String> {
        s.parse()
    }
}

impl From<Partition> for String {
    fn from(p: Partition) -> String {
        p.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KERNELS: [&str; 5] = ["a", "b", "c", "d", "e"];

    fn all_slices(kind: &str, n: usize) -> Vec<Vec<&'static str>> {
        (1..=n)
            .map(|i| {
                let p: Partition = format!("{kind}:{i}/{n}").parse().unwrap();
                p.select(KERNELS)
            })
            .collect()
    }

    #[test]
    fn every_kernel_is_in_exactly_one_slice() {
        for kind in ["count", "hash"] {
            for n in 1..=6 {
                let mut seen: Vec<&str> = all_slices(kind, n).concat();
                seen.sort_unstable();
                assert_eq!(seen, KERNELS, "{kind} over {n} slices");
            }
        }
    }

    #[test]
    fn count_deals_by_position_and_a_bare_slice_is_count() {
        assert_eq!(
            all_slices("count", 2),
            [vec!["a", "c", "e"], vec!["b", "d"]]
        );
        let bare: Partition = "2/3".parse().unwrap();
        assert_eq!(bare.to_string(), "count:2/3");
        assert_eq!(
            all_slices("count", 6)[5],
            Vec::<&str>::new(),
            "an empty slice"
        );
    }

    #[test]
    fn hash_keeps_a_kernels_slice_when_others_are_added() {
        let p: Partition = "hash:1/3".parse().unwrap();
        let before = p.select(["a", "b", "c"]);
        let after = p.select(["new", "a", "b", "c", "other"]);
        for k in before {
            assert!(after.contains(&k), "{k} moved");
        }
    }

    #[test]
    fn bad_slices_are_refused_with_the_syntax() {
        for bad in ["0/2", "3/2", "x/2", "1/0", "1", "modulo:1/2", "count:"] {
            let err = bad.parse::<Partition>().unwrap_err();
            assert!(err.starts_with(bad), "{bad}: {err}");
        }
    }
}
