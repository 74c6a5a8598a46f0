//! The verifier's own figures for one loaded program: how much work it did
//! and how close that came to the kernel's limit.
//!
//! Since 5.2 the verifier writes, at log level 4 (`BPF_LOG_STATS`), only its
//! statistics, the same lines veristat reads:
//!
//! ```text
//! verification time 35 usec
//! stack depth 0+8
//! processed 12 insns (limit 1000000) max_states_per_insn 0 total_states 1 peak_states 1 mark_read 1
//! ```
//!
//! The limit is the one the kernel states, never one assumed from its version.

use serde::{Deserialize, Serialize};

/// The log level that asks the verifier for its statistics only.
pub const LOG_LEVEL_STATS: u32 = 4;

/// What the verifier reported for one program it accepted.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Complexity {
    /// Instructions the verifier processed (every path it walked).
    pub insns_processed: u64,
    /// The kernel's limit on processed instructions, as it stated it.
    pub insns_limit: u64,
    /// Peak of states kept at once.
    pub peak_states: u64,
    /// States created in all.
    pub total_states: u64,
    /// Most states kept for one instruction.
    pub max_states_per_insn: u64,
    /// How long the verifier ran, in microseconds.
    pub verification_time_us: Option<u64>,
    /// The program's instructions as submitted (subprograms included).
    pub insns: Option<u64>,
    /// Size of the JIT image in bytes, where the kernel reports it.
    pub jited_bytes: Option<u64>,
    /// Read from a loaded program's info (a traced loader's), not from a
    /// verifier log: only processed instructions and JIT size are known;
    /// the state counts are not (shown as unknown, never as 0).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_program_info: bool,
}

impl Complexity {
    /// Percentage of the limit still free (negative never happens: the
    /// verifier refuses past its limit).
    pub fn headroom_pct(&self) -> f64 {
        if self.insns_limit == 0 {
            return 0.0;
        }
        100.0 * (1.0 - self.insns_processed as f64 / self.insns_limit as f64)
    }

    /// Parses the statistics of one verifier log; `None` when it holds no
    /// `processed … insns (limit …)` line.
    pub fn from_verifier_log<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<Complexity> {
        let mut c = Complexity::default();
        let mut found = false;
        for line in lines {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("verification time ") {
                c.verification_time_us = rest
                    .strip_suffix(" usec")
                    .and_then(|n| n.trim().parse().ok());
            } else if let Some(rest) = line.strip_prefix("processed ") {
                found |= parse_processed(rest, &mut c);
            }
        }
        found.then_some(c)
    }
}

/// `12 insns (limit 1000000) max_states_per_insn 0 total_states 1 …`:
/// the named counters are read by name, so added or dropped ones
/// (`mark_read` went away in later kernels) do not matter.
fn parse_processed(rest: &str, c: &mut Complexity) -> bool {
    let mut words = rest.split_whitespace();
    let (Some(n), Some("insns"), Some("(limit"), Some(limit)) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return false;
    };
    let (Ok(n), Ok(limit)) = (n.parse(), limit.trim_end_matches([')', ',']).parse()) else {
        return false;
    };
    c.insns_processed = n;
    c.insns_limit = limit;
    let words: Vec<&str> = words.collect();
    for pair in words.windows(2) {
        let Ok(v) = pair[1].parse() else { continue };
        match pair[0] {
            "max_states_per_insn" => c.max_states_per_insn = v,
            "total_states" => c.total_states = v,
            "peak_states" => c.peak_states = v,
            _ => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stats_log_is_read_by_name() {
        let log = [
            "verification time 35 usec",
            "stack depth 0+8",
            "processed 1234 insns (limit 1000000) max_states_per_insn 4 total_states 90 peak_states 70 mark_read 3",
        ];
        let c = Complexity::from_verifier_log(log).unwrap();
        assert_eq!(c.insns_processed, 1234);
        assert_eq!(c.insns_limit, 1_000_000);
        assert_eq!(
            (c.max_states_per_insn, c.total_states, c.peak_states),
            (4, 90, 70)
        );
        assert_eq!(c.verification_time_us, Some(35));
        assert!((c.headroom_pct() - 99.8766).abs() < 1e-3);
    }

    #[test]
    fn counters_may_come_and_go() {
        let c = Complexity::from_verifier_log([
            "processed 10 insns (limit 1000000) peak_states 2 total_states 3 new_counter 9",
        ])
        .unwrap();
        assert_eq!((c.total_states, c.peak_states), (3, 2));
        assert_eq!(c.verification_time_us, None);
    }

    #[test]
    fn a_log_without_the_figures_is_none() {
        assert_eq!(Complexity::from_verifier_log(["0: (b7) r0 = 0"]), None);
        assert_eq!(
            Complexity::from_verifier_log(["processed many insns (limit 5)"]),
            None
        );
    }
}
