//! Command-line definitions (clap) and dispatch.

use std::path::PathBuf;

use clap::builder::TypedValueParser as _;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::commands;
use crate::exit::Code;

/// Test eBPF objects on real distro kernels, each booted in a throw-away QEMU
/// guest whose own verifier decides.
///
/// Exit codes: 0 every required cell passed, 2 a required cell failed,
/// 1 the tool itself could not do its job (a usage error too), 130 / 143
/// stopped by Ctrl-C / SIGTERM (the reports hold what finished).
#[derive(Parser)]
#[command(name = "cargo-bpfcompat", version, about, long_about, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    display: DisplayArgs,
}

/// How output looks, for every command.
#[derive(Args)]
#[command(next_help_heading = "Display")]
struct DisplayArgs {
    /// Colour: `auto` (on a terminal, unless NO_COLOR is set), `always` or
    /// `never`; the default comes from CARGO_TERM_COLOR.
    #[arg(
        long,
        global = true,
        value_enum,
        env = "CARGO_TERM_COLOR",
        hide_env_values = true,
        default_value_t = ColorChoice::Auto,
        value_name = "WHEN"
    )]
    color: ColorChoice,
    /// Diagnostics on stderr: -v the decisions (mirrors, cache, accelerator,
    /// each guest's QEMU command line and how it ended), -vv every step.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

/// `--color`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

const EXAMPLES: &str = "\
Examples:
  # Build this workspace and validate every BPF object it produces:
  cargo bpfcompat test
  # The objects the build produces, and where from:
  cargo bpfcompat list
  # Given objects, on two kernels, with a JSON report:
  cargo bpfcompat test --object a.bpf.o \\
      --kernel debian-11-5.10 --kernel debian-12-6.1 --json report.json
  # Your own loader in each guest (its bpf() calls traced), and its contract:
  cargo bpfcompat test --bin my-loader --ready-line '^ready$'
  cargo bpfcompat contract --bin my-loader
  # The running kernel, no VM (root):
  cargo bpfcompat check --attach target/bpf/ringbuf.bpf.o
  # The kernels of the matrix; fetch them all now:
  cargo bpfcompat kernels list
  cargo bpfcompat kernels fetch

Mirrors: BPFCOMPAT_MIRROR_DEBIAN, BPFCOMPAT_MIRROR_DEBIAN_SECURITY,
BPFCOMPAT_MIRROR_UBUNTU (base URLs as in an apt source line); otherwise
the host's apt sources are used.
Cache: BPFCOMPAT_CACHE, else $XDG_CACHE_HOME/bpfcompat, else
~/.cache/bpfcompat.";

#[derive(Subcommand)]
enum Command {
    /// Validate BPF objects on every kernel of a matrix: the workspace's (built
    /// and discovered), or the files given with --object.
    Test(Box<commands::test::TestArgs>),
    /// Run your loader (command mode, traced) on every kernel of a matrix and
    /// write what it did where it worked as bpfcompat.toml fix-ups (default
    /// file: bpfcompat.contract.toml): the same as `test --bin NAME --contract FILE`.
    Contract(Box<commands::test::TestArgs>),
    /// Build the workspace and list the BPF objects it produces, and where from.
    List(commands::list::ListArgs),
    /// Validate objects on the running kernel, no VM: a pre-load gate (needs
    /// root, or CAP_BPF and CAP_PERFMON). Nothing stays loaded afterwards.
    Check(commands::check::CheckArgs),
    /// Compare or merge JSON reports (baselines, CI shards).
    #[command(subcommand)]
    Report(commands::report::ReportCommand),
    /// Show, fetch and re-pin the kernels of a matrix.
    #[command(subcommand)]
    Kernels(KernelsCommand),
    /// What a `#[bpfcompat::kernel_test]` binary asks of this CLI (JSON on
    /// stdin and stdout); not for people.
    #[command(subcommand, hide = true)]
    KernelTest(commands::kernel_test::KernelTestCommand),
}

#[derive(Subcommand)]
pub enum KernelsCommand {
    /// List the profiles, their pinned packages and whether each is cached.
    List(MatrixArgs),
    /// Download the pinned kernels into the cache (runs then need no network).
    Fetch(MatrixArgs),
    /// Re-resolve every profile against the archive indexes and rewrite the lock.
    Update(UpdateArgs),
    /// List the profiles whose archive now has a newer package than the lock.
    /// Exits 2 when any is outdated.
    Outdated(OutdatedArgs),
    /// Remove cached kernels no kept matrix pins any more (after `kernels
    /// update`) and the saved machines of warm guests that boot them, or
    /// that an earlier release saved. Prints what goes and the space freed.
    Prune(PruneArgs),
    /// Boot every kernel with an empty job and tabulate how each booted:
    /// boot time, release, BTF, LSMs, notable BPF build options (Markdown).
    Survey(commands::survey::SurveyArgs),
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

/// Parses the command line and runs the command.
pub fn run() -> Result<Code, crate::error::Error> {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // Invoked as `cargo bpfcompat`, cargo passes `bpfcompat` first.
    if args.get(1).is_some_and(|a| a == "bpfcompat") {
        args.remove(1);
    }
    // Usage errors exit 1 like every other failure of the tool: clap's own
    // 2 means "a required cell failed" here.
    // Usage errors are coloured as asked too, so `--color` is known first.
    let command = Cli::command().color(early_color(&args));
    let cli = match command
        .try_get_matches_from(args)
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return Ok(if e.use_stderr() {
                Code::ToolFailure
            } else {
                Code::Pass
            });
        }
    };
    crate::render::set_color(cli.display.color);
    diagnostics(cli.display.verbose);
    match cli.command {
        Command::Test(a) => commands::test::run(*a),
        Command::Contract(mut a) => {
            if a.cmd.bin.is_none() && a.cmd.loader.is_none() {
                return Err("contract reads a loader's own run: give --bin NAME (a binary of the workspace) or --loader PATH".to_string().into());
            }
            a.cmd
                .contract
                .get_or_insert_with(|| "bpfcompat.contract.toml".into());
            commands::test::run(*a)
        }
        Command::List(a) => commands::list::run(a),
        Command::Check(a) => commands::check::run(a),
        Command::Kernels(k) => commands::kernels::run(k),
        Command::Report(r) => commands::report::run(r),
        Command::KernelTest(k) => commands::kernel_test::run(k),
    }
}

/// `-v`: the engine's tracing events on stderr, without timestamps (the
/// status lines carry the times that matter).
fn diagnostics(verbose: u8) {
    let level = match verbose {
        0 => return,
        1 => tracing_subscriber::filter::LevelFilter::DEBUG,
        _ => tracing_subscriber::filter::LevelFilter::TRACE,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(crate::render::stderr_color())
        .without_time()
        .with_target(false)
        .init();
}

/// `--color WHEN` (or `--color=WHEN`, else CARGO_TERM_COLOR) before parsing.
fn early_color(args: &[std::ffi::OsString]) -> clap::ColorChoice {
    let mut given = std::env::var("CARGO_TERM_COLOR").ok();
    let mut words = args.iter().map(|a| a.to_string_lossy());
    while let Some(w) = words.next() {
        if let Some(v) = w.strip_prefix("--color=") {
            given = Some(v.to_string());
        } else if w == "--color" {
            given = words.next().map(|v| v.into_owned());
        }
    }
    match given.as_deref() {
        Some("always") => clap::ColorChoice::Always,
        Some("never") => clap::ColorChoice::Never,
        _ => clap::ColorChoice::Auto,
    }
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

    #[test]
    fn color_is_known_before_parsing() {
        let args = |a: &[&str]| a.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        assert_eq!(
            early_color(&args(&["x", "--color", "never", "test"])),
            clap::ColorChoice::Never
        );
        assert_eq!(
            early_color(&args(&["x", "test", "--color=always"])),
            clap::ColorChoice::Always
        );
    }
}
