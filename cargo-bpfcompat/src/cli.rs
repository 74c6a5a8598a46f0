//! Command-line definitions (clap) and dispatch.

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::args::ColorChoice;
use crate::commands;
use crate::commands::kernels::KernelsCommand;
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
    /// Find the point release of a kernel series where an object's verdict
    /// changed: about log2(N) releases booted, and the changelog lines about
    /// BPF between the last unchanged and the first changed.
    Bisect(commands::bisect::BisectArgs),
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
        Command::Bisect(a) => commands::bisect::run(&a),
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

#[cfg(test)]
mod tests {
    use super::*;

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
