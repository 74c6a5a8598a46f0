//! `cargo bpfcompat test`: validate objects on every kernel of a matrix.
//!
//! With `--object`, the given files. Without, the workspace: it is built,
//! its BPF objects are discovered and its configuration applies (matrix,
//! required kernels, loader fix-ups, expected failures).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bpfcompat_engine::cancel::Cancel;
use bpfcompat_engine::kernel::{Cache, Mirrors};
use bpfcompat_engine::matrix::Matrix;
use bpfcompat_engine::objects::{check_bpf_object, display_names};
use bpfcompat_engine::partition::Partition;
use bpfcompat_engine::report::{
    Expectations, Judge, Report, Scope, changes_text, growth_text, judge, stats_text,
};
use bpfcompat_engine::run::{CommandInput, Event, KernelTarget, ObjectInput, Plan, Settings};
use bpfcompat_engine::vm::AccelChoice;
use bpfcompat_engine::wire::Validator;
use clap::Args;
use sha2::{Digest, Sha256};

use bpfcompat_engine::wire::Mode;

use crate::args::{Limit, MessageFormat, named};
use crate::exit::Code;
use crate::progress::Progress;
use bpfcompat_engine::config::{Config, find_config, load_config, load_config_file, matrix_name};

use crate::workspace::{BuildOutput, CargoArgs, build_workspace};
use bpfcompat_engine::contract::Declared;

/// `test` arguments.
#[derive(Args)]
pub struct TestArgs {
    /// Only the objects whose name contains FILTER (as `cargo test FILTER`
    /// selects tests): `cargo bpfcompat test ringbuf`.
    #[arg(value_name = "FILTER")]
    pub filter: Option<String>,
    /// A compiled BPF object to validate (repeatable), or an OCI artifact
    /// `oci://REGISTRY/REPO[:TAG|@sha256:DIGEST]` whose eBPF layers are
    /// pulled and validated (credentials from ~/.docker/config.json).
    /// Without it, the workspace is built and every BPF object it produces
    /// is validated.
    #[arg(long = "object", value_name = "FILE")]
    pub objects: Vec<PathBuf>,
    /// bpfcompat's configuration file (fix-ups, expected failures, matrix,
    /// kernels). Default: the workspace's `bpfcompat.toml` or Cargo.toml
    /// metadata; with --object or a loader, the nearest to the current
    /// directory, else a `bpfcompat.toml` beside the first object. (`--config`
    /// is cargo's, passed to the build.)
    #[arg(long = "config-file", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// How far validation goes: `load`, `attach`, or `fire` (attach, run a
    /// trigger, and require every program to run at least once).
    #[arg(long, value_parser = named::<Mode>(), default_value = "attach")]
    pub mode: Mode,
    /// Same as `--mode load`.
    #[arg(long, conflicts_with = "mode")]
    pub no_attach: bool,
    /// Whose loading judges the objects: `auto` (aya for objects with aya's
    /// legacy `maps` section or compiled by rustc, libbpf otherwise; the configuration's
    /// `validator` per object wins), `libbpf` or `aya` for every object, or
    /// `both`: each object twice, `<name> (libbpf)` and `<name> (aya)`.
    #[arg(long, value_enum, default_value_t = ValidatorChoice::Auto)]
    pub validator: ValidatorChoice,
    /// A map the object leaves for its loader to size (max_entries, key or
    /// value size 0) fails as MAP_CONTRACT instead of getting a neutral size
    /// (noted in the report) for the validation.
    #[arg(long)]
    pub strict_maps: bool,
    /// The fire-mode trigger, run in the guest while everything is attached
    /// (default: a built-in workload of syscalls, file, process and network activity).
    #[arg(long, value_name = "CMD")]
    pub trigger: Option<String>,
    /// Compare with an earlier JSON report: exit 2 only when a required cell
    /// newly fails; fixes are reported, not gated.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    #[command(flatten)]
    pub complexity: crate::args::ComplexityArgs,
    #[command(flatten)]
    pub guests: GuestArgs,
    #[command(flatten)]
    pub cmd: CommandModeArgs,
    #[command(flatten)]
    pub cargo: CargoArgs,
    #[command(flatten)]
    pub reports: crate::report_files::ReportFiles,
    /// Keep per-kernel evidence (console, records, QEMU command line, kernel config) here.
    #[arg(help_heading = "Reports", long, value_name = "DIR")]
    pub evidence: Option<PathBuf>,
    /// `human` (default) or `json`: one JSON record per cell on stdout.
    #[arg(help_heading = "Reports", long, value_enum, default_value_t = MessageFormat::Human)]
    pub message_format: MessageFormat,
    /// No progress display; print only failures and the summary.
    #[arg(help_heading = "Display", long, short = 'q')]
    pub quiet: bool,
    /// Print the verifier's figures per program and kernel: instructions,
    /// processed instructions and the share of the limit, states, time.
    #[arg(help_heading = "Display", long)]
    pub stats: bool,
}

/// Which kernels, and how their guests run.
#[derive(Args)]
#[command(next_help_heading = "Kernels")]
pub struct GuestArgs {
    /// The kernel matrix: `default`, `all`, `rpm` (shipped) or a TOML file; overrides the configuration.
    #[arg(long, value_name = "NAME|FILE")]
    pub matrix: Option<String>,
    /// Only these kernels of the matrix (repeatable); overrides the configuration.
    #[arg(long = "kernel", value_name = "NAME")]
    pub kernels: Vec<String>,
    /// Run one slice of the kernels, for N parallel CI jobs: `count:I/N`
    /// (every N-th kernel by matrix position, from the I-th), `hash:I/N` (by
    /// a hash of the kernel's name: a slice keeps its kernels when others are
    /// added), or `I/N` (= count). A slice with no kernels says so and exits
    /// 0. Join the slices' JSON with `cargo bpfcompat report merge`.
    #[arg(long, visible_alias = "shard", value_name = "KIND:I/N")]
    pub partition: Option<Partition>,
    /// Kernels that cannot be had (no mirror, no network) do not fail the run;
    /// they are still listed with the fix.
    #[arg(long)]
    pub allow_unavailable: bool,
    /// Boots retried when a guest dies before the agent starts.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub retries: u32,
    /// Guests at once (default: the number of CPUs).
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub jobs: Option<usize>,
    /// Accelerator: `auto` uses KVM only where a KVM guest really runs,
    /// `kvm` fails where KVM cannot be used, `tcg` is software emulation
    /// (slow, works everywhere).
    #[arg(long, value_parser = named::<AccelChoice>(), default_value = "auto")]
    pub accel: AccelChoice,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 512, value_name = "MIB", value_parser = clap::value_parser!(u32).range(64..))]
    pub memory: u32,
    /// Guest vCPUs (1 is the stable choice under TCG).
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub cpus: u32,
    /// Limit for one guest, boot to power-off (`90s`, `5m`, `1h 30m`; a bare number is seconds).
    #[arg(long, default_value = "300s", value_name = "DURATION", value_parser = positive_limit)]
    pub timeout: Limit,
    /// Limit for one object inside a guest (`90s`, `5m`, `1h 30m`; a bare number is seconds).
    #[arg(long, default_value = "120s", value_name = "DURATION", value_parser = positive_limit)]
    pub object_timeout: Limit,
    /// Boot every guest from scratch. By default the first guest of a kernel
    /// is saved once it is ready for its job, and later guests restore it
    /// (kept in the kernel cache). `#[kernel_test]` trials read the same
    /// variable.
    #[arg(long, env = "BPFCOMPAT_COLD")]
    pub cold: bool,
}

/// Command mode: the user's own loader is the verdict.
#[derive(Args)]
#[command(next_help_heading = "Command mode")]
pub struct CommandModeArgs {
    /// Command mode: build this binary of the workspace and run it in every
    /// guest as root; its exit code is the verdict.
    #[arg(long, value_name = "NAME", conflicts_with = "loader")]
    pub bin: Option<String>,
    /// Command mode with any executable (shipped with its shared libraries).
    #[arg(long, value_name = "PATH")]
    pub loader: Option<PathBuf>,
    /// The command to run in command mode; `$BPFCOMPAT_BIN` is the shipped
    /// binary, `$BPFCOMPAT_ARTIFACT` the --object (when given; one run per
    /// object), `$BPFCOMPAT_KERNEL` the kernel profile.
    #[arg(long, value_name = "CMD", default_value = "$BPFCOMPAT_BIN")]
    pub command: String,
    /// The exit code that means success in command mode.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub expect_exit: i32,
    /// Limit for one run of the command (`90s`, `5m`, `1h 30m`; a bare number is seconds);
    /// with --ready-line or --ready-after, the limit to get ready.
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = positive_limit)]
    pub command_timeout: Limit,
    /// For a loader that runs until stopped (Ctrl-C): it works once a line of its
    /// output (stdout or stderr) matches REGEX, e.g. '^ready$' or 'Attached'. Then
    /// the --trigger runs, SIGINT asks it to stop, and it must exit within --grace
    /// (exit 0, or death by that SIGINT). Dying first fails with its output; never
    /// ready within --command-timeout is TIMEOUT.
    #[arg(long, value_name = "REGEX", conflicts_with = "ready_after")]
    pub ready_line: Option<ReadyLine>,
    /// For a loader that runs until stopped: it works if it is still running after
    /// DURATION (then as --ready-line).
    #[arg(long, value_name = "DURATION", value_parser = positive_limit)]
    pub ready_after: Option<Limit>,
    /// How long a ready loader has to exit after SIGINT [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = positive_limit)]
    pub grace: Option<Limit>,
    /// Do not trace the loader's bpf() calls. By default each guest records
    /// what the loader asked the kernel (maps, programs, attaches, probes) and
    /// the answers, so a failure names the map, program or helper the kernel
    /// refused, as object mode does. Turn it off for a loader that must not
    /// run under ptrace.
    #[arg(long)]
    pub no_trace: bool,
    /// After the run, write the loader's contract to FILE: what it did on each
    /// kernel where it worked (programs it left out, maps it sized or retyped,
    /// attach targets it chose), read from its traced calls, as bpfcompat.toml
    /// fix-ups for the workspace's objects (or the --object files). Merged into
    /// bpfcompat.toml, object mode judges what this loader will load.
    #[arg(long, value_name = "FILE")]
    pub contract: Option<PathBuf>,
}

/// A `--ready-line` pattern, checked when the arguments are parsed.
#[derive(Clone, Debug)]
pub struct ReadyLine(pub String);

impl std::str::FromStr for ReadyLine {
    type Err = String;

    fn from_str(s: &str) -> Result<ReadyLine, String> {
        regex::bytes::Regex::new(s)
            .map(|_| ReadyLine(s.to_string()))
            .map_err(|e| format!("not a regular expression: {e}"))
    }
}

/// A duration above zero.
fn positive_limit(s: &str) -> Result<Limit, String> {
    match s.parse::<Limit>()? {
        Limit(d) if d.is_zero() => Err("must be more than 0 (e.g. 2s)".into()),
        l => Ok(l),
    }
}

impl CommandModeArgs {
    /// What ready means, as the flags say.
    fn ready(&self) -> Option<bpfcompat_engine::wire::Ready> {
        use bpfcompat_engine::wire::Ready;
        match (&self.ready_line, &self.ready_after) {
            (Some(l), _) => Some(Ready::Line(l.0.clone())),
            (None, Some(d)) => Some(Ready::AfterMs(d.0.as_millis() as u64)),
            (None, None) => None,
        }
    }
}

/// What to validate, where, and what is expected.
struct Work {
    objects: Vec<ObjectInput>,
    commands: Vec<CommandInput>,
    matrix: Matrix,
    expectations: Expectations,
    /// The configuration's `allow_unavailable`.
    allow_unavailable: bool,
    /// What was assumed before any guest, for the report's notes.
    notes: Vec<String>,
}

impl Work {
    /// Objects and commands to run on `matrix` with `config`'s expectations.
    fn new(
        objects: Vec<ObjectInput>,
        commands: Vec<CommandInput>,
        matrix: Matrix,
        config: &Config,
    ) -> Work {
        let names: Vec<String> = objects
            .iter()
            .map(|o| o.name.clone())
            .chain(commands.iter().map(|c| c.name.clone()))
            .collect();
        Work {
            expectations: config.expectations_for(&names),
            objects,
            commands,
            matrix,
            allow_unavailable: config.allow_unavailable,
            notes: Vec::new(),
        }
    }
}

/// A run with every input resolved and checked, before any guest boots.
struct Resolved {
    plan: Plan,
    matrix_origin: String,
    /// Objects and commands, in report order.
    names: Vec<String>,
    expectations: Expectations,
    /// `--allow-unavailable` or the configuration's.
    allow_unavailable: bool,
    baseline: Option<Report>,
    /// Which run and slice the report is, for `report merge`.
    scope: Scope,
    /// `--contract`: where to write it, and what each object declares.
    contract: Option<(PathBuf, Vec<(String, Declared)>)>,
    /// What was assumed before any guest (the report's notes).
    notes: Vec<String>,
    /// Catalogue kernels without a function index, where a target could
    /// have been a placeholder (nothing was decided).
    unindexed: Vec<String>,
}

pub fn run(mut a: TestArgs) -> Result<Code, crate::error::Error> {
    let cancel = crate::signals::install()?;
    // Artifacts become files before anything looks at the objects.
    let pulled = crate::artifacts::pull(&mut a.objects)?;
    let resolved = match (resolve(&a), crate::signals::exit_code(&cancel)) {
        (Ok(r), _) => r,
        // The build was stopped by the same signal: nothing ran, nothing to report.
        (Err(_), Some(code)) => return Ok(code),
        (Err(e), None) => return Err(e),
    };
    execute(&a, resolved, &pulled, &cancel)
}

/// Everything that can be checked without a guest is, before the first boot:
/// a report path that cannot be written must not cost a whole matrix run.
fn resolve(a: &TestArgs) -> Result<Resolved, crate::error::Error> {
    a.cargo.check_config_flags()?;
    check_outputs(a)?;
    if a.complexity.max_complexity_growth.is_some() && a.baseline.is_none() {
        return Err("--max-complexity-growth compares with a baseline: add --baseline FILE (a JSON report of an earlier run)".to_string().into());
    }
    let baseline = a.baseline.as_deref().map(read_baseline).transpose()?;
    let contract = match &a.cmd.contract {
        Some(file) => Some((file.clone(), contract_objects(a)?)),
        None => None,
    };
    let Work {
        mut objects,
        commands,
        mut matrix,
        expectations,
        allow_unavailable,
        mut notes,
    } = if a.cmd.bin.is_some() || a.cmd.loader.is_some() {
        command_work(a)?
    } else if a.objects.is_empty() {
        workspace_work(a)?
    } else {
        explicit_work(a)?
    };
    if let Some(f) = &a.filter {
        select(&mut objects, !commands.is_empty(), f)?;
    }
    // Placeholder targets, decided against the whole catalogue's functions.
    let placeholders = match Cache::discover() {
        Ok(cache) => bpfcompat_engine::placeholders::decide(&mut objects, &cache),
        Err(_) => Default::default(),
    };
    for n in &placeholders.notes {
        eprintln!(
            "{} {}",
            crate::render::label("note"),
            bpfcompat_engine::report::shown(n)
        );
    }
    notes.extend(placeholders.notes);
    let run_kernels: Vec<String> = matrix.kernels.iter().map(|k| k.name.clone()).collect();
    if let Some(p) = a.guests.partition {
        let slice: Vec<String> = p
            .select(run_kernels.iter().map(String::as_str))
            .into_iter()
            .map(String::from)
            .collect();
        matrix.kernels.retain(|k| slice.contains(&k.name));
    }
    let kernels = KernelTarget::all_of(&matrix);
    let settings = Settings {
        accel: a.guests.accel,
        jobs: a
            .guests
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        memory_mib: a.guests.memory,
        cpus: a.guests.cpus,
        timeout: a.guests.timeout.0,
        object_timeout: a.guests.object_timeout.0,
        mode: if a.no_attach { Mode::Load } else { a.mode },
        trigger: a
            .trigger
            .as_deref()
            .map(shell_words::split)
            .transpose()
            .map_err(|e| format!("--trigger: {e}"))?,
        strict_maps: a.strict_maps,
        trace_loaders: !a.cmd.no_trace,
        retries: a.guests.retries,
        agent: agent_binary()?,
        evidence: a.evidence.clone(),
        warm: !a.guests.cold,
    };
    let names = objects
        .iter()
        .map(|o| o.name.clone())
        .chain(commands.iter().map(|c| c.name.clone()))
        .collect();
    let scope = Scope {
        partition: a.guests.partition,
        run_kernels,
        digests: digests(&objects, &commands)?,
        settings: format!(
            "mode={} strict_maps={} trigger={}",
            bpfcompat_engine::named::Named::name(settings.mode),
            settings.strict_maps,
            a.trigger.as_deref().unwrap_or("default")
        ),
    };
    Ok(Resolved {
        plan: Plan {
            kernels,
            objects,
            commands,
            settings,
        },
        matrix_origin: matrix.origin,
        names,
        expectations,
        allow_unavailable: allow_unavailable || a.guests.allow_unavailable,
        baseline,
        scope,
        contract,
        notes,
        unindexed: placeholders.unindexed,
    })
}

/// The objects a loader's contract is written for, with what each
/// declares: the --object files, else the workspace's.
fn contract_objects(a: &TestArgs) -> Result<Vec<(String, Declared)>, crate::error::Error> {
    if a.cmd.bin.is_none() && a.cmd.loader.is_none() {
        return Err("--contract is read from a loader's own run: give --bin NAME or --loader PATH (command mode)".to_string().into());
    }
    let objects: Vec<(String, PathBuf)> = match a.objects.is_empty() {
        false => display_names(&a.objects)
            .into_iter()
            .zip(a.objects.iter().cloned())
            .collect(),
        true => crate::workspace::built_objects(&a.cargo)?
            .1
            .into_iter()
            .map(|d| (d.name, d.path))
            .collect(),
    };
    objects
        .into_iter()
        .map(|(name, path)| Ok((name, validator::declared(&path)?)))
        .collect()
}

/// sha256 of every object and command binary (with its artifact), by report
/// name: two slices of one run validated the same builds.
fn digests(
    objects: &[ObjectInput],
    commands: &[CommandInput],
) -> Result<BTreeMap<String, String>, String> {
    let sha = |p: &Path| {
        std::fs::read(p)
            .map(|bytes| hex::encode(Sha256::digest(bytes)))
            .map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let mut out = BTreeMap::new();
    for o in objects {
        out.insert(o.name.clone(), sha(&o.path)?);
    }
    for c in commands {
        let mut d = sha(&c.binary)?;
        if let Some(a) = &c.artifact {
            d = format!("{d}+{}", sha(a)?);
        }
        out.insert(c.name.clone(), d);
    }
    Ok(out)
}

/// Runs the guests, then writes, prints and judges the report.
fn execute(
    a: &TestArgs,
    r: Resolved,
    pulled: &crate::artifacts::Pulled,
    cancel: &Cancel,
) -> Result<Code, crate::error::Error> {
    let json_lines = a.message_format == MessageFormat::Json;
    if let Some(p) = r.scope.partition
        && r.plan.kernels.is_empty()
    {
        eprintln!(
            "note: slice {p} has no kernels (the run has {} for {} slices): nothing to run",
            r.scope.run_kernels.len(),
            p.total
        );
    }
    let mut progress = Progress::new(&r.plan, a.quiet || json_lines);
    let mut judge = Judge::new(&r.matrix_origin, r.names.clone());
    judge.expectations = r.expectations.clone();
    judge.allow_unavailable = r.allow_unavailable;
    judge.baseline = r.baseline.as_ref();
    judge.gate = a.complexity.gate();
    let cache = Cache::discover()?;
    let output =
        bpfcompat_engine::run::run(&r.plan, &Mirrors::discover(), &cache, cancel, &mut |e| {
            // For tools: each cell as soon as its kernel is done, judged as
            // the report will judge it.
            if json_lines && let Event::KernelFinished { run } = &e {
                for c in &judge.kernel(run) {
                    crate::messages::cell(c);
                }
                crate::messages::kernel_finished(run);
            }
            progress.event(&e)
        })?;
    progress.finish();
    let floors = bpfcompat_engine::floor::of_objects(
        r.plan
            .objects
            .iter()
            .map(|o| (o.name.as_str(), o.path.as_path())),
    );
    let mut judged = judge.report(output, Some(floors), |report| {
        report.scope = Some(r.scope);
        report.artifacts = pulled.artifacts.clone();
        report.notes.extend(r.notes);
        let mut placeholders = report.placeholder_notes();
        if !placeholders.is_empty() && !r.unindexed.is_empty() {
            placeholders.push(format!(
                "bpfcompat tells a placeholder from a missing hook itself once every catalogue kernel is fetched and indexed ({} are not, e.g. {}): `cargo bpfcompat kernels fetch --matrix all`",
                r.unindexed.len(),
                r.unindexed.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        for n in &placeholders {
            eprintln!("{} {}", crate::render::label("note"), bpfcompat_engine::report::shown(n));
        }
        report.notes.extend(placeholders);
    });
    // A stopped run's report says so, not what its finished cells imply.
    let stopped = crate::signals::exit_code(cancel);
    if let Some(code) = stopped {
        judged.report.exit_code = code;
    }
    let report = &judged.report;
    // Every report that can be written is, and the matrix is printed, even
    // when one path fails or the run was stopped: nothing finished is lost.
    let write_errors = a.reports.write(report, true);
    if !json_lines {
        crate::stdout::out!("{}", crate::render::human(report, a.quiet));
        if a.stats {
            crate::stdout::out!("\n{}", stats_text(report));
        }
    }
    if let Some(changes) = &judged.changes
        && !json_lines
    {
        crate::stdout::out!("\n{}", changes_text(changes));
        if !report.complexity_growth.is_empty() {
            crate::stdout::out!("\n{}", growth_text(&report.complexity_growth));
        }
    }
    for e in &write_errors {
        eprintln!("{} {e}", crate::render::label("error"));
    }
    let mut write_errors = write_errors;
    if let Some((file, objects)) = &r.contract {
        let loader = report.objects.first().cloned().unwrap_or_default();
        let contract = bpfcompat_engine::contract::derive(objects, &report.cells, a.guests.cpus);
        match std::fs::write(file, contract.to_toml(&loader)) {
            Ok(()) => eprintln!(
                "note: wrote the contract of `{loader}` ({} objects it used, read on {} kernels) to {}",
                contract.objects.len(),
                contract.kernels.len(),
                file.display()
            ),
            Err(e) => {
                let e = format!("cannot write the contract to {}: {e}", file.display());
                eprintln!("{} {e}", crate::render::label("error"));
                write_errors.push(e);
            }
        }
    }
    let code = judge::exit_code(&judged, stopped, !write_errors.is_empty());
    if json_lines {
        crate::messages::run_finished(&judged.report, code);
    }
    Ok(code)
}

/// Keeps the objects whose name contains `filter`; none is an error that
/// lists the names there are.
fn select(objects: &mut Vec<ObjectInput>, commands: bool, filter: &str) -> Result<(), String> {
    if commands {
        return Err(format!(
            "FILTER `{filter}` selects objects by name, and a command run has none: drop it, or run the objects with `cargo bpfcompat test {filter}`"
        ));
    }
    let names: Vec<String> = objects.iter().map(|o| o.name.clone()).collect();
    objects.retain(|o| o.name.contains(filter));
    if objects.is_empty() {
        return Err(format!(
            "no object's name contains `{filter}`\n  (hint: the objects are {})",
            names.join(", ")
        ));
    }
    Ok(())
}

/// Reads and parses `--baseline` before anything runs.
fn read_baseline(p: &Path) -> Result<Report, String> {
    let text = bpfcompat_engine::safe::read_text_input(p, bpfcompat_engine::safe::REPORT_LIMIT)
        .map_err(|e| format!("cannot read the baseline {}: {e}", p.display()))?;
    Report::from_json(&text).map_err(|e| format!("baseline {}: {e}", p.display()))
}

/// Checks that every report path can be written and the evidence directory
/// used, without leaving anything behind where nothing was before.
fn check_outputs(a: &TestArgs) -> Result<(), String> {
    a.reports.check()?;
    if let Some(dir) = &a.evidence {
        std::fs::create_dir_all(dir)
            .and_then(|()| tempfile::tempfile_in(dir).map(drop))
            .map_err(|e| {
                format!(
                    "--evidence {}: cannot write there: {e}\n  (hint: name a directory you can write; it is created when missing)",
                    dir.display()
                )
            })?;
    }
    Ok(())
}

/// Command mode: the user's binary, run once per kernel (or once per
/// `--object` on each kernel, with the object as `$BPFCOMPAT_ARTIFACT`).
fn command_work(a: &TestArgs) -> Result<Work, crate::error::Error> {
    for o in &a.objects {
        check_bpf_object(o)?;
    }
    let binary = match (&a.cmd.loader, &a.cmd.bin) {
        (Some(p), _) if p.is_file() => p.clone(),
        (Some(p), _) => return Err(format!("the loader {} does not exist", p.display()).into()),
        (None, Some(name)) => find_binary(&build_workspace(&a.cargo)?, name)?,
        (None, None) => unreachable!("command mode needs --bin or --loader"),
    };
    let argv = shell_words::split(&a.cmd.command).map_err(|e| format!("--command: {e}"))?;
    if argv.is_empty() {
        return Err("--command is empty".into());
    }
    let base = binary
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let runs: Vec<(String, Option<PathBuf>)> = if a.objects.is_empty() {
        vec![(base.clone(), None)]
    } else {
        let names = display_names(&a.objects);
        a.objects
            .iter()
            .zip(names)
            .map(|(p, n)| (format!("{base} {n}"), Some(p.clone())))
            .collect()
    };
    let config = explicit_config(a)?;
    let commands = runs
        .into_iter()
        .map(|(name, artifact)| {
            let (ready, grace) = readiness(a, &config, &name)?;
            if a.mode == Mode::Fire && !a.no_attach && ready.is_none() {
                return Err(format!(
                    "--mode fire in command mode counts the runs of the programs a running loader loaded, so `{name}` needs a readiness criterion\n  (hint: --ready-line REGEX or --ready-after DURATION; the --trigger, else the built-in workload, runs once it is ready)"
                ));
            }
            Ok(CommandInput {
                name,
                binary: binary.clone(),
                argv: argv.clone(),
                artifact,
                expect_exit: a.cmd.expect_exit,
                timeout: a.cmd.command_timeout.0,
                ready,
                grace,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let matrix = run_matrix(a, &config, None)?;
    // A command's expected failures are declared under its name as reports
    // show it (`[objects."loader obj.bpf.o".expect_fail]`).
    Ok(Work::new(Vec::new(), commands, matrix, &config))
}

/// What ready means for the command `name` and its grace period: the
/// flags, else its table in the configuration (`[objects."NAME"]`'s
/// `ready_line`, `ready_after`, `grace`), checked as the flags are.
fn readiness(
    a: &TestArgs,
    config: &Config,
    name: &str,
) -> Result<(Option<bpfcompat_engine::wire::Ready>, std::time::Duration), String> {
    use bpfcompat_engine::wire::Ready;
    let table = config.objects.get(name);
    let bad = |key: &str, e: String| {
        format!(
            "{}: [objects.\"{name}\"] {key}: {e}",
            config.origin.display()
        )
    };
    let ready = match (a.cmd.ready(), table) {
        (Some(r), _) => Some(r),
        (None, Some(t)) => match (&t.ready_line, &t.ready_after) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "ready_line",
                    "give ready_line or ready_after, not both".into(),
                ));
            }
            (Some(l), None) => Some(Ready::Line(
                l.parse::<ReadyLine>().map_err(|e| bad("ready_line", e))?.0,
            )),
            (None, Some(d)) => Some(Ready::AfterMs(
                positive_limit(d)
                    .map_err(|e| bad("ready_after", e))?
                    .0
                    .as_millis() as u64,
            )),
            (None, None) => None,
        },
        (None, None) => None,
    };
    let grace = match (&a.cmd.grace, table.and_then(|t| t.grace.as_deref())) {
        (Some(flag), _) => flag.0,
        (None, Some(g)) => positive_limit(g).map_err(|e| bad("grace", e))?.0,
        (None, None) => std::time::Duration::from_millis(bpfcompat_engine::wire::DEFAULT_GRACE_MS),
    };
    Ok((ready, grace))
}

/// The executable called `name` among those the build produced.
fn find_binary(build: &BuildOutput, name: &str) -> Result<PathBuf, String> {
    let file = |p: &PathBuf| {
        p.file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    if let Some((_, p)) = build.executables.iter().find(|(_, p)| file(p) == name) {
        return Ok(p.clone());
    }
    let built: Vec<String> = build.executables.iter().map(|(_, p)| file(p)).collect();
    Err(format!(
        "the build has no binary `{name}`\n  (hint: binaries built: {})",
        if built.is_empty() {
            "none".to_string()
        } else {
            built.join(", ")
        }
    ))
}

/// `--object` files, configured as a workspace's objects would be.
fn explicit_work(a: &TestArgs) -> Result<Work, crate::error::Error> {
    for o in &a.objects {
        check_bpf_object(o)?;
    }
    let config = explicit_config(a)?;
    let matrix = run_matrix(a, &config, None)?;
    let named: Vec<(String, PathBuf)> = display_names(&a.objects)
        .into_iter()
        .zip(a.objects.iter().cloned())
        .collect();
    let objects = by_validator(object_inputs(&config, &named, a.validator)?, a.validator);
    let mut work = Work::new(objects, Vec::new(), matrix, &config);
    // A table for no object of the run (a misspelt name) changes nothing:
    // said, not silently ignored.
    let names: Vec<String> = named.iter().map(|(n, _)| n.clone()).collect();
    for t in config.unmatched_tables(&names) {
        let said = format!(
            "{}: [objects.\"{t}\"] names none of this run's objects ({}): its fix-ups and expected failures apply to nothing",
            config.origin.display(),
            names.join(", ")
        );
        eprintln!("{} {said}", crate::render::label("warning"));
        work.notes.push(said);
    }
    Ok(work)
}

/// With `--validator both`, each object twice: once per validator, named
/// `<name> (libbpf)` and `<name> (aya)`, so the matrix shows both verdicts.
fn by_validator(objects: Vec<ObjectInput>, choice: ValidatorChoice) -> Vec<ObjectInput> {
    if choice != ValidatorChoice::Both {
        return objects;
    }
    objects
        .into_iter()
        .flat_map(|o| {
            [(Validator::Libbpf, "libbpf"), (Validator::Aya, "aya")].map(|(v, word)| {
                let mut one = o.clone();
                one.name = format!("{} ({word})", o.name);
                one.fixups.validator = Some(v);
                one
            })
        })
        .collect()
}

/// The configuration of a run that builds no workspace: `--config-file FILE`,
/// else the nearest to the current directory, else a `bpfcompat.toml`
/// beside the first object, else none.
fn explicit_config(a: &TestArgs) -> Result<Config, crate::error::Error> {
    if let Some(p) = &a.config {
        return Ok(load_config_file(p)?);
    }
    let cwd = std::env::current_dir().map_err(|e| format!("the current directory: {e}"))?;
    if let Some(c) = find_config(&cwd)? {
        return Ok(c);
    }
    let beside = a
        .objects
        .first()
        .and_then(|o| o.parent())
        .map(|d| d.join("bpfcompat.toml"))
        .filter(|p| p.is_file());
    Ok(beside.map_or_else(|| Ok(Config::default()), |p| load_config_file(&p))?)
}

/// The run's matrix: the flags first, then the configuration. The
/// configuration's kernel names are checked against the whole matrix, its
/// object tables against `objects` where those are all the run has.
fn run_matrix(
    a: &TestArgs,
    config: &Config,
    objects: Option<&[String]>,
) -> Result<Matrix, crate::error::Error> {
    let matrix_name = matrix_name(Some(config), a.guests.matrix.as_deref())?;
    let mut matrix = Matrix::load(&matrix_name)?;
    let all_kernels: Vec<String> = matrix.kernels.iter().map(|k| k.name.clone()).collect();
    config.validate(&all_kernels, objects)?;
    if let Some(required) = &config.required {
        for k in &mut matrix.kernels {
            k.required = required.contains(&k.name);
        }
    }
    let selection = if a.guests.kernels.is_empty() {
        config.kernels.clone().unwrap_or_default()
    } else {
        a.guests.kernels.clone()
    };
    matrix.select(&selection)?;
    Ok(matrix)
}

/// The objects with their configuration: fix-ups, trigger, BTF files. An
/// object's table is found by its name, or its file name without `.bpf.o`.
fn object_inputs(
    config: &Config,
    named: &[(String, PathBuf)],
    validator: ValidatorChoice,
) -> Result<Vec<ObjectInput>, crate::error::Error> {
    named
        .iter()
        .map(|(name, path)| {
            let oc = config.table_for(name).cloned().unwrap_or_default();
            // A trigger that does not split into words is a configuration
            // error, not a silently absent trigger.
            let trigger = oc
                .trigger
                .as_deref()
                .map(shell_words::split)
                .transpose()
                .map_err(|e| {
                    format!(
                        "{}: [objects.\"{}\"] trigger: {e}",
                        config.origin.display(),
                        bpfcompat_engine::config::table_stem(name)
                    )
                })?;
            let mut fixups = oc.fixups();
            fixups.validator = match validator {
                ValidatorChoice::Libbpf => Some(Validator::Libbpf),
                ValidatorChoice::Aya => Some(Validator::Aya),
                // Left to the validator, which decides by the object's
                // bytes as built_for does, and says so in the report.
                ValidatorChoice::Auto | ValidatorChoice::Both => fixups.validator,
            };
            Ok(ObjectInput {
                name: name.clone(),
                path: path.clone(),
                fixups,
                trigger,
                btf: oc
                    .btf
                    .iter()
                    .map(|(k, p)| Ok((k.clone(), config.resolve(p, "btf")?)))
                    .collect::<Result<_, crate::error::Error>>()?,
            })
        })
        .collect()
}

/// The workspace: build, discover, configure.
fn workspace_work(a: &TestArgs) -> Result<Work, crate::error::Error> {
    let (build, found) = crate::workspace::built_objects(&a.cargo)?;
    let config = match &a.config {
        Some(p) => load_config_file(p)?,
        None => load_config(&build.workspace_root)?.unwrap_or_default(),
    };
    let names: Vec<String> = found.iter().map(|d| d.name.clone()).collect();
    let matrix = run_matrix(a, &config, Some(&names))?;
    let named: Vec<(String, PathBuf)> = found
        .iter()
        .map(|d| (d.name.clone(), d.path.clone()))
        .collect();
    let mut objects = by_validator(object_inputs(&config, &named, a.validator)?, a.validator);
    let notes = skeleton_from_loaders(&mut objects, &found, &build);
    eprintln!(
        "found {} BPF objects: {}{}",
        names.len(),
        names.join(", "),
        if config.origin.as_os_str().is_empty() {
            String::new()
        } else {
            format!(" (configuration: {})", config.origin.display())
        }
    );
    for n in &notes {
        eprintln!("{} {n}", crate::render::label("note"));
    }
    let mut work = Work::new(objects, Vec::new(), matrix, &config);
    work.notes = notes;
    Ok(work)
}

/// The skeleton contract where the loader is the workspace's own: an
/// object whose package's sources never read a skeleton's `.bss`/`.data`
/// after load is loaded with `skeleton = false` (a kernel that cannot mmap
/// arrays does not break that loader), unless its table says otherwise.
/// Returns what was assumed, for the report's notes.
fn skeleton_from_loaders(
    objects: &mut [ObjectInput],
    found: &[crate::workspace::Discovered],
    build: &BuildOutput,
) -> Vec<String> {
    let mut notes = Vec::new();
    // Each package's sources are read once, however many objects it makes.
    let mut reads: std::collections::BTreeMap<&str, Option<bool>> = Default::default();
    for o in objects.iter_mut().filter(|o| o.fixups.skeleton.is_none()) {
        let name = o.name.split(" (").next().unwrap_or(&o.name);
        let Some(package) = found.iter().find(|d| d.name == name).map(|d| &d.package) else {
            continue;
        };
        let Some((_, dir)) = build.package_dirs.iter().find(|(p, _)| p == package) else {
            continue;
        };
        let read = *reads
            .entry(package.as_str())
            .or_insert_with(|| crate::workspace::reads_globals_after_load(dir));
        if read == Some(false) {
            o.fixups.skeleton = Some(false);
            let note = format!(
                "{name}: its loader (package `{package}`) reads no global variable through the skeleton after load (no skeleton .bss/.data accessor in its sources): the skeleton's mmap contract does not apply (`skeleton = true` in the object's table checks it anyway)"
            );
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
    }
    notes
}

/// `--validator`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ValidatorChoice {
    /// By the object: aya's legacy maps section, or rustc as its compiler, means aya.
    Auto,
    /// libbpf for every object.
    Libbpf,
    /// aya for every object.
    Aya,
    /// Each object with each, side by side.
    Both,
}

/// The guest agent: `BPFCOMPAT_AGENT`, else `bpfcompat-agent` beside this binary.
pub(crate) fn agent_binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("BPFCOMPAT_AGENT") {
        return Ok(PathBuf::from(p));
    }
    let me = std::env::current_exe().map_err(|e| format!("cannot locate this executable: {e}"))?;
    let agent = me.with_file_name("bpfcompat-agent");
    if agent.is_file() {
        Ok(agent)
    } else {
        Err(format!(
            "the guest agent {} is missing\n  (hint: install both binaries with `cargo install --path cargo-bpfcompat`, or set BPFCOMPAT_AGENT)",
            agent.display()
        ))
    }
}
