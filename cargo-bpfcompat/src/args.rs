//! The argument types commands share (matrix, trust, kernels' subcommands,
//! limits, percentages, complexity gates, `--color`) and the value parser
//! of engine enums chosen by name: clap definitions, no I/O.

use std::path::PathBuf;

use clap::Args;
use clap::builder::TypedValueParser as _;

/// `--message-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MessageFormat {
    /// The matrix, failures and summary for people.
    Human,
    /// One JSON record per line, for tools.
    Json,
}

/// `--color`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Which matrix and kernels.
#[derive(Args, Clone)]
pub struct MatrixArgs {
    /// The kernel matrix: `default`, `all`, `rpm` (shipped) or a TOML file;
    /// its lock is the `NAME.lock` or else `kernels.lock` beside it.
    #[arg(long, default_value = "default", value_name = "NAME|FILE")]
    pub matrix: String,
    /// Only these kernels of the matrix (repeatable).
    #[arg(long = "kernel", value_name = "NAME")]
    pub kernels: Vec<String>,
}

/// How archive indexes are trusted.
#[derive(Args, Clone)]
pub struct TrustArgs {
    /// Accept indexes no trusted key signed (InRelease, Release.gpg,
    /// repomd.xml.asc): for local test repositories only. Digests are still
    /// checked.
    #[arg(long)]
    pub insecure_unsigned: bool,
}

impl TrustArgs {
    /// The engine's policy.
    pub fn trust(&self) -> bpfcompat_engine::kernel::Trust {
        if self.insecure_unsigned {
            bpfcompat_engine::kernel::Trust::InsecureUnsigned
        } else {
            bpfcompat_engine::kernel::Trust::Signed
        }
    }
}

/// `kernels prune`.
#[derive(Args)]
pub struct PruneArgs {
    /// Keep the kernels this matrix pins (repeatable; default: the shipped
    /// matrices `default`, `all` and `rpm`, and the project's configured
    /// matrix when run in a project).
    #[arg(long = "keep", value_name = "NAME|FILE")]
    pub keep: Vec<String>,
    /// Only say what would be removed.
    #[arg(long)]
    pub dry_run: bool,
}

/// `kernels outdated`.
#[derive(Args)]
pub struct OutdatedArgs {
    #[command(flatten)]
    pub matrix: MatrixArgs,
    #[command(flatten)]
    pub trust: TrustArgs,
}

/// `kernels update`.
#[derive(Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub matrix: MatrixArgs,
    #[command(flatten)]
    pub trust: TrustArgs,
    /// Where to write the lock (default: `kernels.lock` beside the matrix file).
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,
}

/// A value parser for an engine enum chosen by name (`--mode`, `--accel`):
/// clap lists the names in help and errors.
pub fn named<T: bpfcompat_engine::named::Named + Send + Sync + Clone>()
-> impl clap::builder::TypedValueParser<Value = T> {
    clap::builder::PossibleValuesParser::new(T::names())
        .map(|s| T::by_name(&s).expect("a listed name"))
}

/// A duration flag, in humantime's syntax (`90s`, `5m`, `1h 30m`), the
/// same as `#[kernel_test(timeout = "…")]`; a bare number is seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit(pub std::time::Duration);

impl std::str::FromStr for Limit {
    type Err = String;

    fn from_str(s: &str) -> Result<Limit, String> {
        if let Ok(secs) = s.parse::<u64>() {
            return Ok(Limit(std::time::Duration::from_secs(secs)));
        }
        humantime::parse_duration(s)
            .map(Limit)
            .map_err(|e| format!("{e} (e.g. 90s, 5m, 1h 30m)"))
    }
}

/// A percentage flag: `20%` or `20`, from 0 to 100.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Percent(pub f64);

impl std::str::FromStr for Percent {
    type Err = String;

    fn from_str(s: &str) -> Result<Percent, String> {
        let n = s.trim().trim_end_matches('%');
        match n.parse::<f64>() {
            Ok(p) if (0.0..=100.0).contains(&p) => Ok(Percent(p)),
            _ => Err(format!(
                "`{s}` is not a percentage from 0 to 100 (e.g. 20%)"
            )),
        }
    }
}

/// The verifier-complexity gate, for `test` and `report diff`.
#[derive(clap::Args, Clone, Copy, Debug)]
#[command(next_help_heading = "Complexity gate")]
pub struct ComplexityArgs {
    /// Fail a cell (COMPLEXITY_REGRESSION, exit 2) where a program's
    /// processed instructions or verifier states grew more than PCT since
    /// the baseline on that kernel, e.g. `20%`.
    #[arg(long, value_name = "PCT")]
    pub max_complexity_growth: Option<Percent>,
    /// Fail a cell (COMPLEXITY_HEADROOM, exit 2) where a program leaves less
    /// than PCT of the verifier's limit free on that kernel, e.g. `10%`.
    #[arg(long, value_name = "PCT")]
    pub min_headroom: Option<Percent>,
}

impl ComplexityArgs {
    /// The gate these flags set.
    pub fn gate(&self) -> bpfcompat_engine::report::Gate {
        bpfcompat_engine::report::Gate {
            max_growth_pct: self.max_complexity_growth.map(|p| p.0),
            min_headroom_pct: self.min_headroom.map(|p| p.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn durations_are_humantime_or_bare_seconds() {
        let limit = |s: &str| s.parse::<Limit>().map(|l| l.0);
        assert_eq!(limit("90"), Ok(Duration::from_secs(90)));
        assert_eq!(limit("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(limit("1h 30m"), Ok(Duration::from_secs(5400)));
        assert!(limit("soon").unwrap_err().contains("e.g. 90s"));
    }

    #[test]
    fn percentages_take_an_optional_sign_and_stay_in_range() {
        assert_eq!("20%".parse::<Percent>(), Ok(Percent(20.0)));
        assert_eq!("7.5".parse::<Percent>(), Ok(Percent(7.5)));
        assert!("150%".parse::<Percent>().unwrap_err().contains("0 to 100"));
        assert!("lots".parse::<Percent>().is_err());
    }
}
