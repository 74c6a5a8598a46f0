//! Cells: the verdict on one object on one kernel.

use serde::{Deserialize, Serialize};

use super::Code;
use super::rules::{Evidence, Step, Verdict, classify};
use crate::outcome::{KernelOutcome, KernelRun};
use crate::releases::features::MODULE_BTF;
use crate::releases::release_older_than;
use crate::wire::{
    CommandReport, CommandRuns, Fault, Fire, MapReport, ObjectReport, Outcome, ProgramReport,
    Ready, StepFailure, Stop,
};

/// A cell's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every program loaded (and attached, when asked).
    Pass,
    /// The kernel refused something, or the guest died on it.
    Fail,
    /// The kernel could not be had: no verdict, with the fix.
    Unavailable,
    /// bpfcompat could not produce a verdict (boot failure, agent crash).
    InfraError,
    /// Failed with exactly the code the configuration expects (a declared floor).
    ExpectedFail,
    /// Expected to fail, but passes: the expectation is out of date.
    UnexpectedPass,
}

/// Where a failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// libbpf could not open the object.
    Open,
    /// Loading (maps, BTF, externs, verifier).
    Load,
    /// Attaching a loaded program.
    Attach,
    /// Running while a trigger ran (fire mode).
    Fire,
    /// The guest or the tool, not the object.
    Guest,
}

impl Stage {
    /// The stage as reports name it (`load`), as the JSON spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Open => "open",
            Stage::Load => "load",
            Stage::Attach => "attach",
            Stage::Fire => "fire",
            Stage::Guest => "guest",
        }
    }
}

/// One failure inside a cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Where.
    pub stage: Stage,
    /// Why, as a code.
    pub code: Code,
    /// The program concerned.
    pub program: Option<String>,
    /// The map concerned.
    pub map: Option<String>,
    /// The kernel's or libbpf's own words (one line).
    pub message: String,
    /// What to do about it, naming the missing feature and its release where known.
    pub remediation: Option<String>,
    /// Positive errno.
    pub errno: Option<i32>,
    /// Tail of the verifier log.
    pub verifier_tail: Vec<String>,
    /// libbpf's warnings.
    pub libbpf_log: Vec<String>,
}

impl Finding {
    /// A finding that is not about one load or attach step (guest, command,
    /// fire): no errno and no verifier log; `evidence` goes in `libbpf_log`.
    pub(crate) fn plain(
        stage: Stage,
        code: Code,
        program: Option<String>,
        message: String,
        remediation: Option<String>,
        evidence: Vec<String>,
    ) -> Finding {
        Finding {
            stage,
            code,
            program,
            map: None,
            message,
            remediation,
            errno: None,
            verifier_tail: Vec::new(),
            libbpf_log: evidence,
        }
    }
}

/// Per-program state, for the detail view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramState {
    /// Program name.
    pub name: String,
    /// ELF section.
    pub section: String,
    /// `ok`, `failed` or `skipped`.
    pub load: String,
    /// `ok`, `failed` or `skipped`.
    pub attach: String,
    /// Fire mode: how often it ran while the trigger ran.
    #[serde(default)]
    pub runs: Option<u64>,
    /// Declared optional: a failure here is shown, not counted.
    #[serde(default)]
    pub optional: bool,
    /// The verifier's statistics where it accepted the program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complexity: Option<crate::wire::Complexity>,
    /// The function it was loaded against in place of its section's
    /// placeholder target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stand_in: Option<String>,
}

/// The verdict on one object on one kernel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Object name.
    pub object: String,
    /// Kernel profile.
    pub kernel: String,
    /// Whether this kernel gates the run.
    pub required: bool,
    /// The verdict.
    pub status: Status,
    /// Stage of the first finding.
    pub stage: Option<Stage>,
    /// Code of the first finding.
    pub code: Option<Code>,
    /// Program of the first finding.
    pub program: Option<String>,
    /// Message of the first finding (or why there is no verdict).
    pub message: Option<String>,
    /// Remediation of the first finding.
    pub remediation: Option<String>,
    /// errno of the first finding.
    pub errno: Option<i32>,
    /// Verifier tail of the first finding.
    pub verifier_tail: Vec<String>,
    /// The guest's `uname -r`.
    pub kernel_release: Option<String>,
    /// The code the configuration expects this cell to fail with.
    pub expected: Option<Code>,
    /// Every failure, programs and maps alike.
    pub findings: Vec<Finding>,
    /// Every program's load and attach state.
    pub programs: Vec<ProgramState>,
    /// Per group of alternative programs, the one chosen on this kernel.
    #[serde(default)]
    pub variants: Vec<crate::wire::VariantChoice>,
    /// What the validator assumed where the object leaves a value to its
    /// loader (an unsized map's size): notes, not failures.
    #[serde(default)]
    pub assumptions: Vec<String>,
    /// Command mode: how the command ended (exit code, signal, time) and
    /// the end of its stdout and stderr, whatever the verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<crate::wire::CommandReport>,
    /// On a failed cell: where its kernel stands against the object's floor
    /// (older: expected; at or above: not the release's doing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor: Option<crate::floor::FloorPlace>,
}

impl Cell {
    fn new(object: &str, run: &KernelRun, status: Status, findings: Vec<Finding>) -> Cell {
        let first = findings.first();
        Cell {
            object: object.to_string(),
            kernel: run.kernel.clone(),
            required: run.required,
            status,
            stage: first.map(|f| f.stage),
            code: first.map(|f| f.code),
            program: first.and_then(|f| f.program.clone()),
            message: first.map(|f| f.message.clone()),
            remediation: first.and_then(|f| f.remediation.clone()),
            errno: first.and_then(|f| f.errno),
            verifier_tail: first.map(|f| f.verifier_tail.clone()).unwrap_or_default(),
            kernel_release: run.release.clone(),
            expected: None,
            findings,
            programs: Vec::new(),
            variants: Vec::new(),
            assumptions: Vec::new(),
            command: None,
            floor: None,
        }
    }

    /// A cell without a verdict (or with one that is the guest's, not the object's).
    fn guest(object: &str, run: &KernelRun, status: Status, code: Code, message: String) -> Cell {
        let remediation = match code {
            Code::KernelPanic => Some("the kernel panicked while this object was validated: see the console in the evidence; a BPF program must never crash a kernel, so report it upstream if it reproduces".to_string()),
            Code::Timeout => Some("validation ran past its limit: raise --object-timeout / --timeout, or look for a hang in the console".to_string()),
            _ => None,
        };
        let console = run.console_tail.clone();
        Cell::one_guest_finding(object, run, status, (code, message, remediation), console)
    }

    /// A cell whose one finding is the guest's: a fault, or a command's exit.
    fn one_guest_finding(
        object: &str,
        run: &KernelRun,
        status: Status,
        (code, message, remediation): (Code, String, Option<String>),
        log: Vec<String>,
    ) -> Cell {
        let finding = Finding::plain(Stage::Guest, code, None, message, remediation, log);
        Cell::new(object, run, status, vec![finding])
    }
}

/// The cells of one kernel, one per object (in `objects` order).
pub fn cells_for_kernel(run: &KernelRun, objects: &[String]) -> Vec<Cell> {
    let mut cells = cells_of(run, objects);
    if let Some(first) = run.foreign_records.first() {
        let note = format!(
            "the result port carried {} line(s) that claimed to be the agent's records but were not signed by it: something else in the guest (such as the loader) wrote them, and they were ignored; the first: {first}",
            run.foreign_record_count
        );
        for c in &mut cells {
            c.assumptions.push(note.clone());
        }
    }
    if !run.modules_not_loaded.is_empty() {
        let modules = run.modules_not_loaded.join(", ");
        for c in &mut cells {
            without_modules(c, &modules);
        }
    }
    if !run.module_targets.is_empty() {
        let modules = match (&run.target_modules_error, run.target_modules.is_empty()) {
            (None, false) => TargetModules::Loaded {
                release: run.release.as_deref(),
            },
            (why, _) => TargetModules::NotLoaded {
                why: why.as_deref().unwrap_or("bpfcompat did not load it"),
            },
        };
        for c in &mut cells {
            targets_in_modules(c, &run.module_targets, &modules);
        }
    }
    if !run.target_modules.is_empty() {
        let note = format!(
            "module(s) {} loaded in this kernel's guest, with what they need: they hold targets of the programs here (a host needs them loaded too)",
            run.target_modules
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for c in &mut cells {
            c.assumptions.push(note.clone());
        }
    }
    cells
}

/// A target missing in the guest that this kernel has in a module the
/// guest could not load (a filesystem's, a driver's function): the guest's
/// lack, not the program's. Such findings have no verdict; the cell keeps
/// the first finding that still is one, or has none.
fn targets_in_modules(
    c: &mut Cell,
    in_modules: &std::collections::BTreeMap<String, String>,
    modules: &TargetModules,
) {
    if c.status != Status::Fail {
        return;
    }
    // The program's section kind and function, where it names one.
    let hook = |program: &Option<String>| {
        let p = c
            .programs
            .iter()
            .find(|p| Some(&p.name) == program.as_ref())?;
        crate::wire::Hook::new(&p.section)
            .function()
            .map(|(kind, target)| (kind.to_string(), target.to_string()))
    };
    let mut changed = false;
    for i in 0..c.findings.len() {
        let f = &c.findings[i];
        if f.code != Code::MissingAttachTarget {
            continue;
        }
        let own = hook(&f.program);
        let named = in_modules.iter().find(|(func, _)| {
            own.as_ref().is_some_and(|(_, t)| t == *func)
                || f.message.contains(&format!("'{func}'"))
                || f.message.contains(&format!("`{func}`"))
        });
        let Some((func, module)) = named else {
            continue;
        };
        let btf_typed = own
            .as_ref()
            .is_some_and(|(kind, _)| crate::wire::Hook::finds_function_in_btf(kind));
        let f = &mut c.findings[i];
        match modules {
            TargetModules::NotLoaded { why } => {
                f.code = Code::Unknown;
                f.message = format!(
                    "not judged: `{func}` is in module `{module}` of this kernel, which the guest could not load ({why}); the kernel said: {}",
                    f.message
                );
                f.remediation = Some(format!(
                    "this kernel has `{func}` once `{module}` is loaded: judge this program where it is (`cargo bpfcompat check` on such a host, or your loader in command mode after `modprobe {module}`), or name a target in the kernel itself (`attach_target = [\"...\"]`)"
                ));
            }
            // Loaded, and still missing for a BTF-typed program: the
            // kernel predates module BTF, which such programs resolve
            // their target in.
            TargetModules::Loaded { release }
                if btf_typed
                    && release.and_then(|r| release_older_than(r, MODULE_BTF)) == Some(true) =>
            {
                f.code = Code::UnsupportedFeature;
                f.message = format!(
                    "`{func}` is in module `{module}`, loaded in the guest, and an fentry-like program finds its target in the module's BTF, which kernels before {MODULE_BTF} do not have; the kernel said: {}",
                    f.message
                );
                f.remediation = Some(format!(
                    "module BTF needs Linux {MODULE_BTF}: attach a kprobe to `{func}` on older kernels (kprobes reach module functions), or require {MODULE_BTF}"
                ));
            }
            TargetModules::Loaded { .. } => continue,
        }
        changed = true;
    }
    if !changed {
        return;
    }
    // The first finding that still is a verdict leads; with none, no verdict.
    c.findings.sort_by_key(|f| f.code == Code::Unknown);
    let first = &c.findings[0];
    if first.code == Code::Unknown {
        c.status = Status::InfraError;
    }
    c.stage = Some(first.stage);
    c.code = Some(first.code);
    c.program = first.program.clone();
    c.message = Some(first.message.clone());
    c.remediation = first.remediation.clone();
    c.errno = first.errno;
    c.verifier_tail = first.verifier_tail.clone();
}

/// Whether the modules that hold the run's targets were loaded in a
/// kernel's guest.
enum TargetModules<'a> {
    Loaded { release: Option<&'a str> },
    NotLoaded { why: &'a str },
}

/// A kernel whose guest could not load some of the modules shipped for it
/// (garbage, or built for another kernel): that is the guest's problem. A
/// failure to attach or to fire may be theirs (tc needs `sch_ingress` and
/// `cls_bpf`, the test devices `veth`): no verdict, never the program's
/// failure. Every cell says so.
fn without_modules(c: &mut Cell, modules: &str) {
    c.assumptions.push(format!(
        "the guest could not load the module(s) {modules} shipped for this kernel (damaged, or built for another kernel): what needs them has no verdict here"
    ));
    let affected = c.status == Status::Fail
        && c.findings
            .iter()
            .any(|f| matches!(f.stage, Stage::Attach | Stage::Fire));
    if affected {
        c.status = Status::InfraError;
        c.code = Some(Code::Unknown);
        c.message = Some(format!(
            "not judged: the guest could not load {modules}, which this may need; the kernel said: {}",
            c.message.as_deref().unwrap_or("")
        ));
        c.remediation = Some(
            "the modules shipped for this kernel did not load in its guest: check the package (or an own kernel's modules_dir) holds this kernel's modules".into(),
        );
    }
}

fn cells_of(run: &KernelRun, objects: &[String]) -> Vec<Cell> {
    let mut missing_seen = false;
    objects
        .iter()
        .map(|name| {
            if let Some(report) = run.objects.iter().find(|o| &o.object == name) {
                return object_cell(run, report);
            }
            if let Some(report) = run.commands.iter().find(|c| &c.name == name) {
                return command_cell(run, report);
            }
            // No report for this object: the kernel's fate decides.
            let first_missing = !std::mem::replace(&mut missing_seen, true);
            match &run.outcome {
                KernelOutcome::Unavailable { reason } => {
                    let mut c =
                        Cell::guest(name, run, Status::Unavailable, Code::Infra, reason.clone());
                    c.code = None;
                    c
                }
                KernelOutcome::Panic { line } if first_missing => {
                    Cell::guest(name, run, Status::Fail, Code::KernelPanic, line.clone())
                }
                KernelOutcome::Timeout { after_secs } if first_missing => Cell::guest(
                    name,
                    run,
                    Status::Fail,
                    Code::Timeout,
                    format!(
                        "the guest ran past its {after_secs}s limit while validating this object"
                    ),
                ),
                KernelOutcome::Panic { .. } | KernelOutcome::Timeout { .. } => Cell::guest(
                    name,
                    run,
                    Status::InfraError,
                    Code::Infra,
                    "not validated: the guest ended on an earlier object".into(),
                ),
                KernelOutcome::Infra { reason } => {
                    Cell::guest(name, run, Status::InfraError, Code::Infra, reason.clone())
                }
                KernelOutcome::Interrupted { signal } => Cell::guest(
                    name,
                    run,
                    Status::InfraError,
                    Code::Interrupted,
                    format!(
                        "not validated: the run was stopped by {}",
                        crate::cancel::signal_name(*signal)
                    ),
                ),
                KernelOutcome::Completed => Cell::guest(
                    name,
                    run,
                    Status::InfraError,
                    Code::Infra,
                    match run.malformed_records.first() {
                        None => "the agent sent no report for this object".into(),
                        Some(m) => format!(
                            "the agent sent no readable report for this object; a record did not parse ({}): {}",
                            m.error,
                            m.line.chars().take(300).collect::<String>()
                        ),
                    },
                ),
            }
        })
        .collect()
}

/// An object libbpf 1.x cannot open for its format, not for the kernel:
/// legacy map definitions in a `maps` section, as aya writes them. No
/// verdict: the kernel was never asked, and aya's own loader may load it.
fn unopenable_cell(run: &KernelRun, r: &ObjectReport) -> Option<Cell> {
    let f = r.object_error.as_ref().filter(|_| r.programs.is_empty())?;
    let line = f
        .libbpf_log
        .iter()
        .find(|l| l.contains("legacy map definitions"))?;
    let message = line.trim_start_matches("libbpf: ").to_string();
    let fix = "libbpf 1.x cannot open objects that declare maps in the legacy `maps` section (aya does): validate it the way aya loads it (`--validator aya`, the default for such objects), or with its own loader in command mode or a `#[bpfcompat::kernel_test]`";
    let finding = Finding::plain(
        Stage::Open,
        Code::Unknown,
        None,
        message,
        Some(fix.into()),
        f.libbpf_log.clone(),
    );
    Some(Cell::new(&r.object, run, Status::InfraError, vec![finding]))
}

/// A global-data map the kernel created without `BPF_F_MMAPABLE` (libbpf
/// drops it where arrays cannot be mmap-ed): a skeleton's pointer to the
/// variables is NULL there after load, so a loader that reads or writes
/// them then crashes (C) or finds `None` (libbpf-cargo). Not for `.rodata`,
/// which loaders set before load, through memory of libbpf's own, nor for
/// `.kconfig`, which user space never touches.
fn skeleton_finding(m: &MapReport) -> Option<Finding> {
    let before_load_only = m.name.contains(".rodata") || m.name.contains(".kconfig");
    (m.mmapable == Some(false) && !before_load_only).then(|| Finding {
        map: Some(m.name.clone()),
        ..Finding::plain(
            Stage::Load,
            Code::UnsupportedFeature,
            None,
            format!(
                "map `{}` (global variables) was created without BPF_F_MMAPABLE: this kernel cannot mmap array maps, so a skeleton cannot reach the variables",
                m.name
            ),
            Some(format!(
                "skeletons (libbpf's, libbpf-cargo's) read global variables through mmap, which needs Linux {}: keep run-time state in an explicit map for older kernels, or set `skeleton = false` for a loader that uses no skeleton",
                crate::releases::features::ARRAY_MMAP
            )),
            Vec::new(),
        )
    })
}

fn object_cell(run: &KernelRun, r: &ObjectReport) -> Cell {
    if let Some(cell) = fault_cell(run, r) {
        return cell;
    }
    if let Some(cell) = unopenable_cell(run, r) {
        return cell;
    }
    let mut findings = step_findings(r, run);
    findings.extend(r.maps.iter().filter_map(skeleton_finding));
    let silent_lsm = |p: &&ProgramReport| inactive_bpf_lsm(p, run.lsm.as_deref()).is_some();
    findings.extend(
        r.programs
            .iter()
            .filter(|p| !p.optional)
            .filter_map(|p| inactive_bpf_lsm(p, run.lsm.as_deref())),
    );
    // An LSM hook that never runs explains a program that did not fire.
    findings.extend(
        r.programs
            .iter()
            .filter(|p| !silent_lsm(p) && !p.optional)
            .filter_map(fire_finding),
    );
    let status = if findings.is_empty() {
        Status::Pass
    } else {
        Status::Fail
    };
    let mut cell = Cell::new(&r.object, run, status, findings);
    cell.variants = r.variants.clone();
    cell.assumptions = r.assumptions.clone();
    cell.programs = r
        .programs
        .iter()
        .map(|p| ProgramState {
            name: p.name.clone(),
            section: p.section.clone(),
            load: outcome_word(&p.load),
            attach: outcome_word(&p.attach),
            optional: p.optional,
            complexity: p.complexity.clone(),
            stand_in: p.stand_in.clone(),
            runs: match p.fire {
                Some(Fire::Fired { runs }) => Some(runs),
                Some(Fire::NotFired { .. }) => Some(0),
                _ => None,
            },
        })
        .collect();
    cell
}

/// The cell of an object whose validator did not finish, or whose
/// configuration did not fit it: no program verdicts then.
fn fault_cell(run: &KernelRun, r: &ObjectReport) -> Option<Cell> {
    let (status, code, message) = match r.fault.as_ref()? {
        Fault::Timeout { after_secs } => (
            Status::Fail,
            Code::Timeout,
            format!("validation did not finish within {after_secs}s"),
        ),
        Fault::Crashed { detail } => (
            Status::InfraError,
            Code::Infra,
            format!("the validator crashed: {detail}"),
        ),
        // A fix-up the object cannot take, or a trigger that cannot run, is
        // the configuration's fault, not the kernel's.
        Fault::Configuration { message } => (
            Status::InfraError,
            Code::Infra,
            format!("bpfcompat configuration: {message}"),
        ),
    };
    Some(Cell::guest(&r.object, run, status, code, message))
}

/// One classified finding per failed step: the object as a whole, map
/// creation, program load, attach (in that order).
fn step_findings(r: &ObjectReport, run: &KernelRun) -> Vec<Finding> {
    let mut steps: Vec<(
        Step,
        &StepFailure,
        Option<&ProgramReport>,
        Option<&MapReport>,
    )> = Vec::new();
    if let Some(f) = &r.object_error {
        let opened = !r.programs.is_empty() || !r.maps.is_empty();
        steps.push((
            if opened { Step::Object } else { Step::Open },
            f,
            None,
            None,
        ));
    }
    for m in &r.maps {
        if let Some(f) = m.create.failure() {
            steps.push((Step::MapCreate, f, None, Some(m)));
        }
    }
    // An optional program's failure is shown (in `programs`), not counted.
    let counted = || r.programs.iter().filter(|p| !p.optional);
    for p in counted() {
        if let Some(f) = p.load.failure() {
            steps.push((Step::ProgLoad, f, Some(p), None));
        }
    }
    for p in counted() {
        if let Some(f) = p.attach.failure() {
            steps.push((Step::Attach, f, Some(p), None));
        }
    }
    steps
        .into_iter()
        .map(|(step, failure, program, map)| {
            let Verdict {
                code,
                message,
                remediation,
            } = classify(&Evidence {
                step,
                failure,
                program,
                map,
                object_maps: &r.maps,
                kernel_btf: run.kernel_btf,
                release: run.release.as_deref(),
                kernel_config: &run.kernel_config,
            });
            Finding {
                stage: match step {
                    Step::Open => Stage::Open,
                    Step::Attach => Stage::Attach,
                    _ => Stage::Load,
                },
                code,
                program: program.map(|p| p.name.clone()),
                map: map.map(|m| m.name.clone()),
                message,
                remediation: remediation
                    .map(|fix| with_configuration_key(fix, code, &r.object, program, map)),
                errno: failure.errno,
                verifier_tail: failure.verifier_log.clone(),
                libbpf_log: failure.libbpf_log.clone(),
            }
        })
        .collect()
}

/// In object mode the project states its loader's choices in bpfcompat.toml:
/// after a fix the loader could make at run time, the key that says it
/// does (a ring buffer's fallback; another target, an optional program, or
/// alternatives for a missing hook).
fn with_configuration_key(
    fix: String,
    code: Code,
    object: &str,
    program: Option<&ProgramReport>,
    map: Option<&MapReport>,
) -> String {
    // The object's table is named by its file's stem (`probe` for
    // `dir/probe.bpf.o`, whatever `(aya)` suffix a side-by-side run adds).
    let file = object.split(" (").next().unwrap_or(object);
    let file = file.rsplit('/').next().unwrap_or(file);
    let table = file.strip_suffix(".o").unwrap_or(file);
    let table = table.strip_suffix(".bpf").unwrap_or(table);
    match (code, program, map) {
        (Code::UnsupportedMapType, _, Some(m)) if m.map_type == "ringbuf" => format!(
            "{fix}; a loader that falls back to a perf buffer there says so in bpfcompat.toml: `fallback_type = \"perf_event_array\"` under [objects.\"{table}\".maps.\"{}\"]",
            m.name
        ),
        (Code::MissingAttachTarget, Some(p), _) => format!(
            "{fix}. In bpfcompat.toml, under [objects.\"{table}\".programs.\"{}\"]: `attach_target = \"...\"` for the loader's target on this kernel (a list, `[\"new\", \"old\"]`, where it tries one then another; per kernel under [[objects.\"{table}\".on]]), or `optional = true`; programs the loader chooses between: `variants = [[...]]` under [objects.\"{table}\"]",
            p.name
        ),
        _ => fix,
    }
}

/// A BPF LSM program that loaded on a kernel whose active LSM list lacks
/// `bpf`: it attaches, but its hook never runs, in any mode. Unknown when
/// the kernel's list could not be read.
fn inactive_bpf_lsm(p: &ProgramReport, lsm: Option<&str>) -> Option<Finding> {
    // cgroup LSM programs run through the same BPF LSM hooks.
    let is_lsm = crate::wire::Hook::new(&p.section).runs_on_bpf_lsm();
    let list = lsm?;
    if !is_lsm || p.load != Outcome::Ok || list.split(',').any(|m| m.trim() == "bpf") {
        return None;
    }
    Some(Finding::plain(
        Stage::Attach,
        Code::KernelConfig,
        Some(p.name.clone()),
        format!("bpf is not an active LSM here (lsm={list}): the hook never runs"),
        Some(format!(
            "BPF LSM programs run only where `bpf` is an active security module: boot with lsm={list},bpf (or build with CONFIG_LSM including bpf)"
        )),
        Vec::new(),
    ))
}

/// Fire mode's finding on a program that attached but did not run.
fn fire_finding(p: &ProgramReport) -> Option<Finding> {
    let (code, message, remediation) = match &p.fire {
        Some(Fire::NotFired { trigger }) => (
            Code::NotFired,
            format!("attached, but ran 0 times while the trigger ran: {trigger}"),
            "the hook was not reached: the function may be inlined or renamed on this kernel, or the trigger does not exercise it (give one with --trigger or `trigger` in the configuration)",
        ),
        Some(Fire::UnknownTrigger { section }) => (
            Code::Unknown,
            format!(
                "fire: unknown trigger for section `{section}`: no built-in workload reaches this kind of hook"
            ),
            "give a trigger that exercises the hook (--trigger 'CMD', or `trigger` in the configuration)",
        ),
        Some(Fire::Unmeasured { reason }) => (
            Code::Unknown,
            format!("fire: its runs could not be counted: {reason}"),
            "fire mode needs a kernel that counts BPF program runs; judge this kernel with --mode attach",
        ),
        _ => return None,
    };
    Some(Finding::plain(
        Stage::Fire,
        code,
        Some(p.name.clone()),
        message,
        Some(remediation.into()),
        Vec::new(),
    ))
}

/// Command mode: how the command ended is the verdict (its exit code, or
/// for one that runs until stopped, readiness and a clean stop).
fn command_cell(run: &KernelRun, r: &CommandReport) -> Cell {
    let expected = run.command_expect.get(&r.name).copied().unwrap_or(0);
    let verdict = command_verdict(r, expected).and_then(|pass| runs_verdict(r, pass));
    let traced = r.trace.as_deref();
    let programs = traced.map(super::from_trace::programs).unwrap_or_default();
    let (code, message) = match verdict {
        Ok(message) => {
            let mut c = Cell::new(&r.name, run, Status::Pass, Vec::new());
            c.message = Some(message);
            c.command = Some(r.clone());
            c.programs = programs;
            return c;
        }
        Err(failure) => failure,
    };
    // A failed run that a call the kernel refused explains: that call,
    // judged as object mode judges the same step.
    if code == Code::CommandFailed
        && let Some(trace) = traced
        && let Some(mut finding) = super::from_trace::explain(
            trace,
            &r.output.lines().map(str::to_string).collect::<Vec<_>>(),
            super::from_trace::Kernel::of(run),
        )
    {
        let how = message.strip_prefix("the command ").unwrap_or(&message);
        finding.message = format!("{}; the loader {how}", finding.message);
        let mut c = Cell::new(&r.name, run, Status::Fail, vec![finding]);
        c.command = Some(r.clone());
        c.programs = programs;
        return c;
    }
    let status = match code {
        Code::Infra | Code::Unknown => Status::InfraError,
        _ => Status::Fail,
    };
    let fix = match (code, &r.ready) {
        (Code::NotFired, _) => {
            "the loader's program never ran while the workload ran: give a --trigger that reaches its hook (it runs once the loader is ready)"
        }
        (Code::Timeout, None) if r.exit_code.is_none() => {
            "a loader that runs until stopped needs a readiness criterion: --ready-line REGEX (a line of its output that means it works) or --ready-after DURATION; else raise --command-timeout"
        }
        _ => "your loader's own output is attached; run it on this kernel to reproduce",
    };
    let (code, message, fix) = match code {
        Code::CommandFailed => loader_words(run, r, message, fix),
        _ => (code, message, fix.to_string()),
    };
    let mut c = Cell::one_guest_finding(
        &r.name,
        run,
        status,
        (code, message, Some(fix)),
        output_lines(r),
    );
    c.command = Some(r.clone());
    c.programs = programs;
    c
}

/// A failed command whose output carries libbpf's or the verifier's words:
/// the code those words decide (as a `#[kernel_test]`'s console is read),
/// else the words themselves before how it ended.
fn loader_words(
    run: &KernelRun,
    r: &CommandReport,
    ended: String,
    fix: &str,
) -> (Code, String, String) {
    let lines: Vec<String> = r.output.lines().map(str::to_string).collect();
    let last = lines.last().cloned().unwrap_or_default();
    let verdict = super::classify_log(&lines, &last, run.kernel_btf, run.release.as_deref());
    match verdict {
        Some(v) => match v.code {
            Some(code) => (
                code,
                format!("{}; {ended}", v.message),
                v.remediation.unwrap_or_else(|| fix.into()),
            ),
            None => (
                Code::CommandFailed,
                format!("{ended}; the verifier said: {}", v.message),
                fix.into(),
            ),
        },
        None => (Code::CommandFailed, ended, fix.into()),
    }
}

/// The last lines of a command's output, for a finding.
fn output_lines(r: &CommandReport) -> Vec<String> {
    crate::wire::tail(r.output.lines().map(str::to_string).collect(), 40)
}

/// A command's verdict: `Ok(message)` for a pass, else its code and message.
fn command_verdict(r: &CommandReport, expected: i32) -> Result<String, (Code, String)> {
    let secs = |ms: u64| format!("{:.1} s", ms as f64 / 1000.0);
    let ended = || match (r.exit_code, r.signal) {
        (_, Some(sig)) => format!("was killed by {}", crate::cancel::signal_name(sig as usize)),
        (Some(code), None) => format!("exited with {code}"),
        (None, None) => "ended".to_string(),
    };
    if let Some(e) = &r.spawn_error {
        return Err((
            Code::Infra,
            format!("the command could not be started: {e}"),
        ));
    }
    let criterion = match &r.readiness {
        Some(Ready::Line(p)) => format!("no line of its output matched `{p}`"),
        Some(Ready::AfterMs(ms)) => format!("it had to run {}", secs(*ms)),
        None => String::new(),
    };
    if r.timed_out {
        return Err((
            Code::Timeout,
            match &r.readiness {
                Some(_) => format!(
                    "the command was never ready within {} ({criterion}) and was killed",
                    secs(r.duration_ms)
                ),
                None => format!(
                    "the command ran past its limit ({}) and was killed",
                    secs(r.duration_ms)
                ),
            },
        ));
    }
    if r.readiness.is_some() && r.ready.is_none() {
        return Err((
            Code::CommandFailed,
            format!("the command {} before it was ready ({criterion})", ended()),
        ));
    }
    let Some(ready) = &r.ready else {
        return match (r.exit_code, r.signal) {
            (Some(code), None) if code == expected => {
                Ok(format!("exited with {expected} in {}", secs(r.duration_ms)))
            }
            _ if r.signal.is_none() => Err((
                Code::CommandFailed,
                format!("{} (expected {expected})", ended()),
            )),
            _ => Err((Code::CommandFailed, format!("the command {}", ended()))),
        };
    };
    let how = match &ready.line {
        Some(line) => format!("ready after {} (`{}`)", secs(ready.after_ms), clip(line)),
        None => format!("still running after {}", secs(ready.after_ms)),
    };
    let sigint = crate::cancel::signal_name(2);
    match r.stop {
        Some(Stop::GraceExpired) => Err((
            Code::CommandFailed,
            format!(
                "{how}, then still running after {sigint} until the grace period ended: killed"
            ),
        )),
        Some(Stop::DefaultAction) => Ok(format!("{how}; ended by {sigint}")),
        Some(Stop::Clean) => match (r.exit_code, r.signal) {
            (Some(code), None) if code == 0 || code == expected => {
                Ok(format!("{how}; exited with {code} on {sigint}"))
            }
            (None, Some(2)) => Ok(format!("{how}; ended by {sigint}")),
            _ => Err((
                Code::CommandFailed,
                format!("{how}, then {} on {sigint}", ended()),
            )),
        },
        // It ended by itself after it was ready (during the workload).
        None => match (r.exit_code, r.signal) {
            (Some(code), None) if code == expected => Ok(format!("{how}; exited with {code}")),
            _ => Err((
                Code::CommandFailed,
                format!("{how}, then {} before it was stopped", ended()),
            )),
        },
    }
}

/// Fire mode: a passing command whose programs did not all run fails
/// NOT_FIRED; where runs cannot be counted there is no verdict.
fn runs_verdict(r: &CommandReport, pass: String) -> Result<String, (Code, String)> {
    match &r.runs {
        None => Ok(pass),
        Some(CommandRuns::Unmeasured { reason }) => Err((
            Code::Unknown,
            format!("{pass}; its programs' runs could not be counted: {reason}"),
        )),
        Some(CommandRuns::Counted { programs }) if programs.is_empty() => Err((
            Code::NotFired,
            format!("{pass}, but it had no BPF program loaded once it was ready"),
        )),
        Some(CommandRuns::Counted { programs }) => {
            let idle: Vec<&str> = programs
                .iter()
                .filter(|p| p.2 == 0)
                .map(|p| p.0.as_str())
                .collect();
            let ran: Vec<String> = programs
                .iter()
                .filter(|p| p.2 > 0)
                .map(|p| format!("{} {}", p.0, p.2))
                .collect();
            match idle.is_empty() {
                true => Ok(format!("{pass}; its programs ran ({})", ran.join(", "))),
                false => Err((
                    Code::NotFired,
                    format!(
                        "{pass}, but its program(s) {} never ran while the workload ran",
                        idle.join(", ")
                    ),
                )),
            }
        }
    }
}

fn clip(line: &str) -> String {
    let mut s: String = line.chars().take(120).collect();
    if s.len() < line.len() {
        s.push('…');
    }
    s
}

fn outcome_word(o: &Outcome) -> String {
    match o {
        Outcome::Ok => "ok".into(),
        Outcome::Failed(_) => "failed".into(),
        Outcome::Skipped { reason } => format!("skipped: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(name: &str, load: Outcome, attach: Outcome) -> ProgramReport {
        ProgramReport {
            name: name.into(),
            section: "tracepoint/syscalls/sys_enter_getpid".into(),
            prog_type: "tracepoint".into(),
            type_supported: Some(true),
            helpers: Vec::new(),
            load,
            attach,
            fire: None,
            optional: false,
            complexity: None,
            insn_count: None,
            stand_in: None,
        }
    }

    fn report(programs: Vec<ProgramReport>) -> ObjectReport {
        ObjectReport {
            object: "o.bpf.o".into(),
            programs,
            ..ObjectReport::default()
        }
    }

    fn kernel(reports: Vec<ObjectReport>, outcome: KernelOutcome) -> KernelRun {
        KernelRun {
            objects: reports,
            outcome,
            release: Some("6.1.0-9-cloud-amd64".into()),
            ..KernelRun::new("debian-12-6.1", true)
        }
    }

    #[test]
    fn a_missing_hook_names_the_configuration_keys_of_the_objects_table() {
        let missing = Outcome::Failed(StepFailure {
            errno: Some(2),
            error: "No such file or directory".into(),
            libbpf_log: vec![
                "libbpf: prog 'p': failed to find kernel BTF type ID of 'f': -ESRCH".into(),
            ],
            ..StepFailure::default()
        });
        let mut r = report(vec![program("p", missing, Outcome::Ok)]);
        r.object = "sub/dir/probe.bpf.o (aya)".into();
        let names = [r.object.clone()];
        let cells = cells_for_kernel(&kernel(vec![r], KernelOutcome::Completed), &names);
        let f = &cells[0].findings[0];
        assert_eq!(f.code, Code::MissingAttachTarget, "{f:?}");
        let fix = f.remediation.as_deref().unwrap();
        assert!(
            fix.contains(r#"under [objects."probe".programs."p"]: `attach_target = "..."`"#)
                && fix.contains("`variants = [[...]]`"),
            "{fix}"
        );
        // Words a command's loader or a kernel test gets stay without them.
        let plain =
            with_configuration_key("fix".into(), Code::VerifierRejected, "o.bpf.o", None, None);
        assert_eq!(plain, "fix");
    }

    #[test]
    fn a_module_the_guest_could_not_load_is_never_the_programs_failure() {
        let refused = || {
            Outcome::Failed(StepFailure {
                errno: Some(2),
                error: "No such file or directory".into(),
                ..StepFailure::default()
            })
        };
        let mut tc = program("tc_ingress", Outcome::Ok, refused());
        tc.section = "tc".into();
        tc.prog_type = "sched_cls".into();
        let attach = report(vec![tc]);
        let mut load = report(vec![program(
            "p",
            refused(),
            Outcome::Skipped { reason: "x".into() },
        )]);
        load.object = "load.bpf.o".into();
        let mut run = kernel(vec![attach, load], KernelOutcome::Completed);
        let names = ["o.bpf.o".to_string(), "load.bpf.o".to_string()];
        // Without module trouble: the attach failure is the program's.
        assert_eq!(cells_for_kernel(&run, &names)[0].status, Status::Fail);
        run.modules_not_loaded = vec!["cls_bpf".into(), "sch_ingress".into()];
        let cells = cells_for_kernel(&run, &names);
        assert_eq!(cells[0].status, Status::InfraError, "{:?}", cells[0]);
        assert!(
            cells[0]
                .message
                .as_deref()
                .unwrap()
                .contains("cls_bpf, sch_ingress")
        );
        // A verifier's refusal does not depend on a module: still a verdict,
        // with the note.
        assert_eq!(cells[1].status, Status::Fail);
        assert!(
            cells[1]
                .assumptions
                .iter()
                .any(|a| a.contains("could not load"))
        );
    }

    #[test]
    fn a_target_the_kernel_has_in_a_module_the_guest_does_not_load_has_no_verdict() {
        let missing = |target: &str| {
            let line =
                format!("libbpf: prog 'p': failed to find kernel BTF type ID of '{target}': -3");
            Outcome::Failed(StepFailure {
                errno: Some(3),
                error: "No such process".into(),
                libbpf_log: vec![line],
                ..StepFailure::default()
            })
        };
        let mut ext4 = program("on_open", missing("ext4_file_open"), Outcome::Ok);
        ext4.section = "fentry/ext4_file_open".into();
        ext4.prog_type = "tracing".into();
        let mut typo = program("on_typo", missing("vfs_reed"), Outcome::Ok);
        typo.section = "fentry/vfs_reed".into();
        typo.prog_type = "tracing".into();
        let only_module = report(vec![ext4.clone()]);
        let mut both = report(vec![ext4, typo]);
        both.object = "both.bpf.o".into();
        let mut run = kernel(vec![only_module, both], KernelOutcome::Completed);
        let names = ["o.bpf.o".to_string(), "both.bpf.o".to_string()];
        let before = cells_for_kernel(&run, &names);
        assert_eq!(
            before[0].code,
            Some(Code::MissingAttachTarget),
            "{:?}",
            before[0]
        );
        run.module_targets = [("ext4_file_open".to_string(), "ext4".to_string())].into();
        run.target_modules_error = Some("not in the kernel's packages".into());
        let cells = cells_for_kernel(&run, &names);
        // Its one failure is the guest's lack of ext4: no verdict.
        assert_eq!(cells[0].status, Status::InfraError, "{:?}", cells[0]);
        assert_eq!(cells[0].code, Some(Code::Unknown));
        let m = cells[0].message.as_deref().unwrap();
        assert!(
            m.contains("module `ext4`") && m.contains("ext4_file_open"),
            "{m}"
        );
        // A target no module has keeps its verdict, and leads.
        assert_eq!(cells[1].status, Status::Fail, "{:?}", cells[1]);
        assert_eq!(cells[1].code, Some(Code::MissingAttachTarget));
        assert_eq!(cells[1].program.as_deref(), Some("on_typo"));
        // Loaded, and still missing for fentry before module BTF (5.11):
        // that kernel's lack, named; from 5.11 on, the kernel's own answer.
        run.target_modules_error = None;
        run.target_modules = vec!["ext4".into()];
        run.release = Some("5.10.0-46-cloud-amd64".into());
        let cells = cells_for_kernel(&run, &names);
        assert_eq!(
            cells[0].code,
            Some(Code::UnsupportedFeature),
            "{:?}",
            cells[0]
        );
        assert!(cells[0].remediation.as_deref().unwrap().contains("5.11"));
        run.release = Some("6.1.0-9-cloud-amd64".into());
        let cells = cells_for_kernel(&run, &names);
        assert_eq!(
            cells[0].code,
            Some(Code::MissingAttachTarget),
            "{:?}",
            cells[0]
        );
        assert_eq!(cells[0].status, Status::Fail);
    }

    #[test]
    fn global_data_a_skeleton_cannot_mmap_fails_naming_5_5() {
        // Linux 5.4: libbpf created `.bss` without BPF_F_MMAPABLE.
        let mut r = report(vec![program("p", Outcome::Ok, Outcome::Ok)]);
        r.maps.push(MapReport {
            name: "o.bss".into(),
            map_type: "array".into(),
            type_supported: None,
            declared: [1, 4, 8],
            flags: crate::wire::BPF_F_MMAPABLE,
            loads_without_link: None,
            mmapable: Some(false),
            create: Outcome::Ok,
        });
        let run = kernel(vec![], KernelOutcome::Completed);
        let c = object_cell(&run, &r);
        assert_eq!(c.status, Status::Fail);
        assert_eq!(c.code, Some(Code::UnsupportedFeature));
        assert!(c.remediation.unwrap().contains("needs Linux 5.5"));
        // Where the map is mmap-able, or the loader uses no skeleton (not
        // recorded), nothing is said.
        for mmapable in [Some(true), None] {
            r.maps[0].mmapable = mmapable;
            assert_eq!(object_cell(&run, &r).status, Status::Pass);
        }
        // Read-only data is set before load and `.kconfig` is the kernel's:
        // no skeleton reads them after load.
        r.maps[0].mmapable = Some(false);
        for name in ["o.rodata", "o.kconfig", ".rodata.config"] {
            r.maps[0].name = name.into();
            assert_eq!(object_cell(&run, &r).status, Status::Pass, "{name}");
        }
    }

    #[test]
    fn a_clean_object_passes_and_lists_its_programs() {
        let r = report(vec![program("p", Outcome::Ok, Outcome::Ok)]);
        let c = object_cell(&kernel(vec![], KernelOutcome::Completed), &r);
        assert_eq!(c.status, Status::Pass);
        assert_eq!(c.programs.len(), 1);
        assert_eq!(c.code, None);
    }

    #[test]
    fn a_rejected_program_is_classified_from_the_verifier_log() {
        let failure = StepFailure {
            errno: Some(13),
            error: "Permission denied".into(),
            verifier_log: vec!["R1 invalid mem access 'map_value_or_null'".into()],
            ..StepFailure::default()
        };
        let r = report(vec![program(
            "p",
            Outcome::Failed(failure),
            Outcome::Skipped {
                reason: "not loaded".into(),
            },
        )]);
        let c = object_cell(&kernel(vec![], KernelOutcome::Completed), &r);
        assert_eq!(c.status, Status::Fail);
        assert_eq!(c.code, Some(Code::VerifierRejected));
        assert_eq!(c.program.as_deref(), Some("p"));
        assert_eq!(c.stage, Some(Stage::Load));
    }

    #[test]
    fn faults_decide_before_any_program() {
        let mut r = report(vec![program("p", Outcome::Ok, Outcome::Ok)]);
        let k = kernel(vec![], KernelOutcome::Completed);
        r.fault = Some(Fault::Timeout { after_secs: 9 });
        assert_eq!(object_cell(&k, &r).code, Some(Code::Timeout));
        r.fault = Some(Fault::Configuration {
            message: "no map `m`".into(),
        });
        let c = object_cell(&k, &r);
        assert_eq!(c.status, Status::InfraError);
        assert!(
            c.message
                .unwrap()
                .contains("bpfcompat configuration: no map")
        );
    }

    #[test]
    fn a_program_that_never_ran_fails_in_fire_mode() {
        let mut p = program("p", Outcome::Ok, Outcome::Ok);
        p.fire = Some(Fire::NotFired {
            trigger: "built-in".into(),
        });
        let c = object_cell(&kernel(vec![], KernelOutcome::Completed), &report(vec![p]));
        assert_eq!(c.code, Some(Code::NotFired));
        assert_eq!(c.programs[0].runs, Some(0));
        // Where runs cannot be counted, zero is no verdict.
        let mut p = program("p", Outcome::Ok, Outcome::Ok);
        p.fire = Some(Fire::Unmeasured {
            reason: "no BPF run statistics".into(),
        });
        let c = object_cell(&kernel(vec![], KernelOutcome::Completed), &report(vec![p]));
        assert_eq!(c.code, Some(Code::Unknown));
        assert_eq!(c.programs[0].runs, None);
    }

    #[test]
    fn objects_without_a_report_take_the_kernels_fate() {
        let names = ["a".to_string(), "b".to_string()];
        let panic = kernel(
            vec![],
            KernelOutcome::Panic {
                line: "Kernel panic - not syncing".into(),
            },
        );
        let cells = cells_for_kernel(&panic, &names);
        assert_eq!(cells[0].code, Some(Code::KernelPanic));
        assert_eq!(cells[1].status, Status::InfraError);
        let stopped = kernel(vec![], KernelOutcome::Interrupted { signal: 2 });
        for c in cells_for_kernel(&stopped, &names) {
            assert_eq!(c.code, Some(Code::Interrupted));
            assert!(c.message.unwrap().contains("SIGINT"));
        }
        let mut garbled = kernel(vec![], KernelOutcome::Completed);
        garbled
            .malformed_records
            .push(crate::wire::MalformedRecord {
                line: "BPFCOMPAT1 {\"record\":".into(),
                error: "EOF".into(),
            });
        let c = &cells_for_kernel(&garbled, &names)[0];
        assert!(
            c.message.as_deref().unwrap().contains("did not parse"),
            "{c:?}"
        );
    }

    #[test]
    fn a_bpf_lsm_program_where_bpf_is_no_active_lsm_is_kernel_config() {
        let mut p = program("on_open", Outcome::Ok, Outcome::Ok);
        p.section = "lsm/file_open".into();
        p.fire = Some(Fire::NotFired {
            trigger: "built-in".into(),
        });
        let r = report(vec![p]);
        let mut k = kernel(vec![], KernelOutcome::Completed);
        k.lsm = Some("lockdown,capability,apparmor".into());
        let c = object_cell(&k, &r);
        assert_eq!(c.code, Some(Code::KernelConfig), "{c:?}");
        assert_eq!(c.findings.len(), 1, "the known cause replaces NOT_FIRED");
        assert!(
            c.message
                .as_deref()
                .unwrap()
                .contains("lsm=lockdown,capability,apparmor")
        );
        k.lsm = Some("lockdown,capability,bpf".into());
        assert_eq!(object_cell(&k, &r).code, Some(Code::NotFired));
        // A cgroup LSM program runs through the same hooks.
        let mut p = program("on_bind", Outcome::Ok, Outcome::Ok);
        p.section = "lsm_cgroup/socket_bind".into();
        k.lsm = Some("lockdown,capability".into());
        assert_eq!(
            object_cell(&k, &report(vec![p])).code,
            Some(Code::KernelConfig)
        );
        k.lsm = None;
        assert_eq!(
            object_cell(&k, &r).code,
            Some(Code::NotFired),
            "unknown list: no claim"
        );
    }

    #[test]
    fn a_command_that_runs_until_stopped_is_judged_by_readiness_and_its_stop() {
        let line = Some(Ready::Line("^ready$".into()));
        let ready = Some(crate::wire::ReadyAt {
            after_ms: 200,
            line: Some("ready".into()),
        });
        let cmd = |ready_at: Option<crate::wire::ReadyAt>, stop, exit: Option<i32>, signal| {
            CommandReport {
                readiness: line.clone(),
                ready: ready_at,
                stop,
                exit_code: exit,
                signal,
                ..CommandReport::default()
            }
        };
        let code = |r: &CommandReport| command_verdict(r, 0).err().map(|(c, _)| c);
        // Ready, then a clean exit on SIGINT (or death by it, or its default action).
        assert_eq!(
            code(&cmd(ready.clone(), Some(Stop::Clean), Some(0), None)),
            None
        );
        assert_eq!(
            code(&cmd(ready.clone(), Some(Stop::Clean), None, Some(2))),
            None
        );
        assert_eq!(
            code(&cmd(
                ready.clone(),
                Some(Stop::DefaultAction),
                None,
                Some(2)
            )),
            None
        );
        // A crash on the way out, or no exit within the grace period, fails.
        let crashed = cmd(ready.clone(), Some(Stop::Clean), None, Some(11));
        assert_eq!(code(&crashed), Some(Code::CommandFailed));
        assert_eq!(
            code(&cmd(ready.clone(), Some(Stop::GraceExpired), None, Some(9))),
            Some(Code::CommandFailed)
        );
        // Dying before ready fails with its exit; never ready is TIMEOUT.
        let died = cmd(None, None, Some(1), None);
        let (c, message) = command_verdict(&died, 0).unwrap_err();
        assert_eq!(c, Code::CommandFailed);
        assert!(
            message.contains("before it was ready") && message.contains("^ready$"),
            "{message}"
        );
        let never = CommandReport {
            timed_out: true,
            ..cmd(None, None, None, Some(9))
        };
        assert_eq!(code(&never), Some(Code::Timeout));
        // Without readiness the exit code decides, as before.
        let plain = CommandReport {
            exit_code: Some(3),
            ..CommandReport::default()
        };
        assert_eq!(command_verdict(&plain, 3).err(), None);
        assert_eq!(
            command_verdict(&plain, 0).err().map(|e| e.0),
            Some(Code::CommandFailed)
        );
    }

    #[test]
    fn fire_mode_in_command_mode_needs_every_loaded_program_to_run() {
        let ready = CommandReport {
            readiness: Some(Ready::AfterMs(100)),
            ready: Some(crate::wire::ReadyAt {
                after_ms: 100,
                line: None,
            }),
            stop: Some(Stop::Clean),
            exit_code: Some(0),
            ..CommandReport::default()
        };
        let with = |runs| CommandReport {
            runs: Some(runs),
            ..ready.clone()
        };
        let counted = |p: &[(&str, u64)]| CommandRuns::Counted {
            programs: p.iter().map(|(n, r)| (n.to_string(), 5, *r)).collect(),
        };
        let verdict = |r: &CommandReport| command_verdict(r, 0).and_then(|p| runs_verdict(r, p));
        let ok = verdict(&with(counted(&[("a", 3), ("b", 1)]))).unwrap();
        assert!(ok.contains("its programs ran (a 3, b 1)"), "{ok}");
        let (code, message) = verdict(&with(counted(&[("a", 3), ("b", 0)]))).unwrap_err();
        assert_eq!(code, Code::NotFired);
        assert!(message.contains("b never ran"), "{message}");
        assert_eq!(verdict(&with(counted(&[]))).unwrap_err().0, Code::NotFired);
        let unmeasured = CommandRuns::Unmeasured {
            reason: "no statistics".into(),
        };
        assert_eq!(verdict(&with(unmeasured)).unwrap_err().0, Code::Unknown);
    }

    #[test]
    fn a_failed_loaders_libbpf_words_decide_its_code_where_they_can() {
        let mut run = KernelRun::new("debian-11-5.10", true);
        run.release = Some("5.10.0-46-cloud-amd64".into());
        run.kernel_btf = Some(true);
        let failed = |output: &str| CommandReport {
            name: "loader".into(),
            exit_code: Some(1),
            output: output.into(),
            ..CommandReport::default()
        };
        let helper = failed(
            "libbpf: prog 'p': BPF program load failed: Invalid argument\nlibbpf: prog 'p': -- BEGIN PROG LOAD LOG --\nunknown func bpf_loop#181\n-- END PROG LOAD LOG --\nlibbpf: prog 'p': failed to load: -22\nError: Invalid argument (os error 22)\n",
        );
        let c = command_cell(&run, &helper);
        assert_eq!(c.code, Some(Code::UnsupportedHelper), "{c:?}");
        let message = c.message.unwrap();
        assert!(message.contains("exited with 1"), "{message}");
        assert!(c.remediation.unwrap().contains("5.17"));
        // Words that decide nothing: still the exit, with the words.
        let vague = failed(
            "libbpf: prog 'p': -- BEGIN PROG LOAD LOG --\nnumber of funcs in func_info doesn't match number of subprogs\n-- END PROG LOAD LOG --\nlibbpf: prog 'p': failed to load: -22\n",
        );
        let c = command_cell(&run, &vague);
        assert_eq!(c.code, Some(Code::CommandFailed));
        assert!(c.message.unwrap().contains("number of funcs"));
        // No libbpf words at all: the exit alone.
        let c = command_cell(&run, &failed("something else went wrong\n"));
        assert_eq!(c.code, Some(Code::CommandFailed));
        assert_eq!(c.message.as_deref(), Some("exited with 1 (expected 0)"));
    }
}
