//! Command-line definitions (clap) and dispatch.

use std::path::PathBuf;

use clap::builder::TypedValueParser as _;
use clap::{Args, Parser, Subcommand};

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
}

const EXAMPLES: &str = "\
Examples:
  cargo bpfcompat test                      (build this workspace, validate every BPF object it produces)
  cargo bpfcompat list                      (the objects found, and where)
  cargo bpfcompat test --object target/bpf/ringbuf.bpf.o
  cargo bpfcompat test --object a.bpf.o --kernel debian-11-5.10 --kernel debian-12-6.1 --json report.json
  cargo bpfcompat check --attach target/bpf/ringbuf.bpf.o      (the running kernel, no VM)
  cargo bpfcompat kernels list
  cargo bpfcompat kernels fetch

Mirrors: BPFCOMPAT_MIRROR_DEBIAN, BPFCOMPAT_MIRROR_DEBIAN_SECURITY, BPFCOMPAT_MIRROR_UBUNTU
(base URLs as in an apt source line); otherwise the host's apt sources are used.
Cache: BPFCOMPAT_CACHE, else $XDG_CACHE_HOME/bpfcompat, else ~/.cache/bpfcompat.";

#[derive(Subcommand)]
enum Command {
    /// Validate BPF objects on every kernel of a matrix: the workspace's (built
    /// and discovered), or the files given with --object.
    Test(Box<commands::test::TestArgs>),
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
}

#[derive(Subcommand)]
pub enum KernelsCommand {
    /// List the profiles, their pinned packages and whether each is cached.
    List(MatrixArgs),
    /// Download the pinned kernels into the cache (runs then need no network).
    Fetch(MatrixArgs),
    /// Re-resolve every profile against the archive indexes and rewrite the lock.
    Update(UpdateArgs),
}

/// Which matrix and kernels.
#[derive(Args, Clone)]
pub struct MatrixArgs {
    /// The kernel matrix: `default` (shipped) or a TOML file; its lock is the
    /// `kernels.lock` beside it.
    #[arg(long, default_value = "default", value_name = "NAME|FILE")]
    pub matrix: String,
    /// Only these kernels of the matrix (repeatable).
    #[arg(long = "kernel", value_name = "NAME")]
    pub kernels: Vec<String>,
}

/// `kernels update`.
#[derive(Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub matrix: MatrixArgs,
    /// Where to write the lock (default: `kernels.lock` beside the matrix file).
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,
}

/// A value parser for an engine enum chosen by name (`--mode`, `--accel`):
/// clap lists the names in help and errors.
pub fn named<T: bpfcompat::named::Named + Send + Sync + Clone>()
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
    let cli = match Cli::try_parse_from(args) {
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
    match cli.command {
        Command::Test(a) => commands::test::run(*a),
        Command::List(a) => commands::list::run(a),
        Command::Check(a) => commands::check::run(a),
        Command::Kernels(k) => commands::kernels::run(k),
        Command::Report(r) => commands::report::run(r),
    }
}
