//! A traced loader's run, explained by its own calls
//! ([`crate::wire::trace`]): a failed run by the call the kernel refused,
//! classified with object mode's rules; every run by the programs it loaded
//! and attached, with the kernel's figures.
//!
//! Which refusal explains a failed run: the last one that was not a feature
//! probe and that the loader did not get past. libbpf and aya probe the
//! kernel with small calls that may be refused by design (named `libbpf_…`
//! or `aya_…`, or unnamed on kernels that take names), and retry some
//! refused calls in another form (a map without BTF): a later success of
//! the same kind and name means the loader got past it.

use std::collections::BTreeMap;

use super::LogVerdict;
use super::from_log::printed_verifier_log;
use super::rules::{Evidence, Step, Verdict, classify};
use super::{Code, Finding, ProgramState, Stage};
use crate::outcome::KernelRun;
use crate::wire::trace::{
    AttachCall, Call, CallResult, MapCall, PerfCall, ProgCall, Trace, TracedCall, map_type_name,
    prog_type_name, section_of,
};
use crate::wire::{Complexity, MapReport, Outcome, ProgramReport, StepFailure};

/// What is known of the kernel a trace was taken on.
#[derive(Clone, Copy)]
pub struct Kernel<'a> {
    /// Whether it has BTF.
    pub btf: Option<bool>,
    /// Its `uname -r`.
    pub release: Option<&'a str>,
    /// Its BPF-relevant build options (empty when unknown).
    pub config: &'a BTreeMap<String, String>,
}

impl<'a> Kernel<'a> {
    /// As a kernel's run knows it.
    pub(crate) fn of(run: &'a KernelRun) -> Kernel<'a> {
        Kernel {
            btf: run.kernel_btf,
            release: run.release.as_deref(),
            config: &run.kernel_config,
        }
    }
}

/// A failed test's or loader's cause from its trace: the code, the kernel's
/// words and the fix (see [`explain`]).
pub fn explain_trace(trace: &Trace, output: &[String], kernel: Kernel) -> Option<LogVerdict> {
    let f = explain(trace, output, kernel)?;
    let subject = match (&f.program, &f.map) {
        (Some(p), _) => format!("program `{p}`: "),
        (None, Some(_)) => String::new(),
        (None, None) => String::new(),
    };
    Some(LogVerdict {
        code: Some(f.code),
        message: format!("{subject}{}", f.message),
        remediation: f.remediation,
    })
}

/// The refusal that explains a failed run, where one does.
pub(crate) fn decisive(trace: &Trace) -> Option<&TracedCall> {
    let names_taken = trace.names_taken();
    let failed = |c: &&TracedCall| c.result.errno().is_some();
    trace
        .calls
        .iter()
        .enumerate()
        .filter(|(_, c)| failed(c))
        .filter(|(_, c)| !c.call.is_library_probe(names_taken))
        .filter(|(i, c)| {
            !trace.calls[i + 1..]
                .iter()
                .any(|later| later.result.errno().is_none() && same_request(&later.call, &c.call))
        })
        .map(|(_, c)| c)
        .next_back()
}

/// Whether two calls ask for the same thing (a retry).
fn same_request(a: &Call, b: &Call) -> bool {
    match (a, b) {
        (Call::MapCreate(x), Call::MapCreate(y)) => x.name == y.name,
        (Call::ProgLoad(x), Call::ProgLoad(y)) => x.name == y.name,
        (Call::PerfEvent(x), Call::PerfEvent(y)) => x.target == y.target,
        (Call::Attach(x), Call::Attach(y)) => x.program == y.program && x.program.is_some(),
        _ => false,
    }
}

/// The finding for a failed, traced run: the refused call classified as
/// object mode classifies that step. `None` where no call explains it, or
/// the rules find no cause (the output decides then).
pub(crate) fn explain(trace: &Trace, output: &[String], kernel: Kernel) -> Option<Finding> {
    let call = decisive(trace)?;
    let errno = call.result.errno()?;
    let libbpf_log: Vec<String> = output
        .iter()
        .filter_map(|l| l.find("libbpf: ").map(|i| l[i..].to_string()))
        .collect();
    let maps: Vec<MapReport> = trace
        .calls
        .iter()
        .filter_map(|c| match &c.call {
            Call::MapCreate(m) => Some(map_report(m, c.result, StepFailure::default())),
            _ => None,
        })
        .collect();
    let failure = |what: String, verifier_log: Vec<String>, helpers: Vec<u32>| StepFailure {
        errno: Some(errno),
        error: format!(
            "{what}: {} (errno {errno})",
            nix::errno::Errno::from_raw(errno).desc()
        ),
        libbpf_log: libbpf_log.clone(),
        verifier_log,
        unsupported_helpers: helpers,
        ..StepFailure::default()
    };
    let (step, f, program, map) = match &call.call {
        Call::MapCreate(m) => {
            let f = failure(
                format!("the loader's map `{}`", shown_name(&m.name)),
                Vec::new(),
                Vec::new(),
            );
            let report = map_report(m, call.result, f.clone());
            (Step::MapCreate, f, None, Some(report))
        }
        Call::ProgLoad(p) => {
            // The log as libbpf printed it for this program where it did
            // (libbpf rewrites the kernel's: a poisoned CO-RE instruction
            // becomes the relocation that failed), else the log the loader
            // received.
            let printed = printed_verifier_log(output, Some(&p.name));
            let log = match printed.is_empty() {
                true => p.log.clone(),
                false => printed,
            };
            let what = match (&p.replay, log.is_empty()) {
                (Some(why), true) => format!(
                    "the loader's program `{}` (no verifier log: it asked for none, and {why})",
                    shown_name(&p.name)
                ),
                _ => format!("the loader's program `{}`", shown_name(&p.name)),
            };
            let f = failure(what, log, p.unsupported_helpers.clone());
            (Step::ProgLoad, f.clone(), Some(prog_report(p, f)), None)
        }
        Call::Attach(a) => {
            let f = failure(attach_words(a), Vec::new(), Vec::new());
            (Step::Attach, f.clone(), attached_program(trace, a, f), None)
        }
        Call::PerfEvent(p) => {
            let f = failure(
                format!("opening the {} `{}`", p.probe, p.target),
                Vec::new(),
                Vec::new(),
            );
            (Step::Attach, f.clone(), Some(probe_program(p, f)), None)
        }
        Call::BtfLoad { .. } | Call::Pin { .. } => return None,
    };
    let Verdict {
        code,
        message,
        remediation,
    } = classify(&Evidence {
        step,
        failure: &f,
        program: program.as_ref(),
        map: map.as_ref(),
        object_maps: &maps,
        kernel_btf: kernel.btf,
        release: kernel.release,
        kernel_config: kernel.config,
    });
    if code == Code::Unknown {
        return None;
    }
    Some(Finding {
        stage: match step {
            Step::Attach => Stage::Attach,
            _ => Stage::Load,
        },
        code,
        program: program.map(|p| p.name),
        map: map.map(|m| m.name),
        message,
        remediation,
        errno: Some(errno),
        verifier_tail: f.verifier_log,
        libbpf_log: f.libbpf_log,
    })
}

/// The programs a traced loader loaded (the last load of each name) and
/// whether each attached, with the kernel's figures; libbpf's and aya's
/// probes left out.
pub(crate) fn programs(trace: &Trace) -> Vec<ProgramState> {
    let names_taken = trace.names_taken();
    let mut out: Vec<ProgramState> = Vec::new();
    for c in &trace.calls {
        match &c.call {
            Call::ProgLoad(p) if !c.call.is_library_probe(names_taken) => {
                let state = ProgramState {
                    name: p.name.clone(),
                    section: section_of(p.prog_type, p.expected_attach_type).to_string()
                        + p.attach_to.as_deref().unwrap_or(""),
                    load: ok_or_failed(c.result),
                    attach: "skipped".into(),
                    runs: None,
                    optional: false,
                    stand_in: None,
                    complexity: p.loaded.as_ref().and_then(|l| complexity(p, l)),
                };
                match out.iter_mut().find(|s| s.name == p.name) {
                    Some(s) => *s = state,
                    None => out.push(state),
                }
            }
            Call::Attach(AttachCall {
                program: Some(name),
                ..
            }) => {
                if let Some(s) = out.iter_mut().rev().find(|s| &s.name == name)
                    && s.attach != "ok"
                {
                    s.attach = ok_or_failed(c.result);
                }
            }
            _ => {}
        }
    }
    out
}

/// The verifier's figures the kernel keeps for a loaded program: from
/// Linux 5.16 (`verified_insns`), where the limit is one million.
fn complexity(p: &ProgCall, l: &crate::wire::trace::LoadedFacts) -> Option<Complexity> {
    Some(Complexity {
        insns_processed: u64::from(l.verified_insns?),
        insns_limit: 1_000_000,
        insns: Some(u64::from(p.insn_cnt)),
        jited_bytes: (l.jited_len > 0).then_some(u64::from(l.jited_len)),
        from_program_info: true,
        ..Complexity::default()
    })
}

fn ok_or_failed(r: CallResult) -> String {
    match r {
        CallResult::Ok(_) => "ok".into(),
        CallResult::Err(_) => "failed".into(),
        // A netlink request whose answer was never read.
        CallResult::NoAnswer => "unknown".into(),
    }
}

/// How an unnamed map or program (a kernel before 4.15 takes no names) is
/// shown.
const UNNAMED: &str = "(unnamed)";

fn shown_name(name: &str) -> String {
    match name {
        "" => UNNAMED.to_string(),
        n => n.to_string(),
    }
}

fn map_report(m: &MapCall, result: CallResult, failure: StepFailure) -> MapReport {
    MapReport {
        name: shown_name(&m.name),
        map_type: map_type_name(m.map_type),
        type_supported: m.type_supported,
        declared: [m.max_entries, m.key_size, m.value_size],
        flags: m.flags,
        loads_without_link: None,
        mmapable: None,
        create: match result {
            CallResult::Err(_) => Outcome::Failed(failure),
            _ => Outcome::Ok,
        },
    }
}

fn prog_report(p: &ProgCall, failure: StepFailure) -> ProgramReport {
    ProgramReport {
        name: shown_name(&p.name),
        section: section_of(p.prog_type, p.expected_attach_type).to_string()
            + p.attach_to.as_deref().unwrap_or(""),
        prog_type: prog_type_name(p.prog_type),
        type_supported: p.type_supported,
        helpers: p.helpers.clone(),
        load: Outcome::Failed(failure),
        attach: Outcome::Skipped {
            reason: "not loaded".into(),
        },
        fire: None,
        optional: false,
        complexity: None,
        insn_count: None,
        stand_in: None,
    }
}

/// The program an attach was for, as its traced load describes it.
fn attached_program(trace: &Trace, a: &AttachCall, failure: StepFailure) -> Option<ProgramReport> {
    let name = a.program.as_ref()?;
    let load = trace.calls.iter().rev().find_map(|c| match &c.call {
        Call::ProgLoad(p) if &p.name == name => Some(p),
        _ => None,
    })?;
    let mut report = prog_report(load, StepFailure::default());
    report.load = Outcome::Ok;
    if let Some(t) = &a.target {
        report.section.push_str(t);
    }
    report.attach = Outcome::Failed(failure);
    Some(report)
}

/// A probe the loader opened, as a program of that kind would be named.
fn probe_program(p: &PerfCall, failure: StepFailure) -> ProgramReport {
    let (section, prog_type) = match p.probe.as_str() {
        "tracepoint" => ("tracepoint/", "tracepoint"),
        "uprobe" | "uretprobe" => ("uprobe/", "kprobe"),
        _ => ("kprobe/", "kprobe"),
    };
    ProgramReport {
        name: format!("{} {}", p.probe, p.target),
        section: format!("{section}{}", p.target),
        prog_type: prog_type.into(),
        type_supported: None,
        helpers: Vec::new(),
        load: Outcome::Ok,
        attach: Outcome::Failed(failure),
        fire: None,
        optional: false,
        complexity: None,
        insn_count: None,
        stand_in: None,
    }
}

fn attach_words(a: &AttachCall) -> String {
    let what = match &a.program {
        Some(p) => format!("attaching the loader's program `{p}`"),
        None => "attaching a program".into(),
    };
    match &a.target {
        Some(t) => format!("{what} to `{t}` ({})", a.how),
        None => format!("{what} ({})", a.how),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(call: Call, result: CallResult) -> TracedCall {
        TracedCall {
            tid: 1,
            at_ms: 0,
            call,
            result,
        }
    }

    fn prog(name: &str, insns: u32) -> Call {
        Call::ProgLoad(ProgCall {
            name: name.into(),
            prog_type: 5,
            insn_cnt: insns,
            ..ProgCall::default()
        })
    }

    fn map(name: &str, map_type: u32) -> Call {
        Call::MapCreate(MapCall {
            name: name.into(),
            map_type,
            ..MapCall::default()
        })
    }

    const EINVAL: CallResult = CallResult::Err(22);

    #[test]
    fn probes_and_retried_calls_never_explain_a_failure() {
        let t = Trace {
            calls: vec![
                call(prog("", 2), EINVAL),
                call(prog("libbpf_nametest", 2), CallResult::Ok(3)),
                call(map("events", 27), EINVAL),
                // libbpf retries a map without BTF: got past.
                call(map("events", 27), CallResult::Ok(4)),
                call(
                    Call::BtfLoad {
                        size: 9,
                        log: vec![],
                    },
                    EINVAL,
                ),
            ],
            ..Trace::default()
        };
        assert_eq!(decisive(&t), None);
        let mut t = t;
        t.calls.push(call(prog("count_with_loop", 21), EINVAL));
        t.calls.push(call(prog("libbpf_probe", 2), EINVAL));
        let d = decisive(&t).unwrap();
        assert_eq!(d.call.name(), "count_with_loop");
    }

    #[test]
    fn on_a_kernel_without_names_an_unnamed_refusal_explains() {
        // Linux 4.4: libbpf's name probe is refused (E2BIG), so it names
        // nothing after it.
        let t = Trace {
            calls: vec![
                call(prog("libbpf_nametest", 2), CallResult::Err(7)),
                call(map("", 27), EINVAL),
            ],
            ..Trace::default()
        };
        let d = decisive(&t).unwrap();
        assert!(matches!(d.call, Call::MapCreate(_)), "{d:?}");
    }

    #[test]
    fn a_loaders_programs_are_listed_with_their_attach_and_figures() {
        let mut loaded = ProgCall {
            name: "handle".into(),
            prog_type: 26,
            expected_attach_type: 24,
            attach_to: Some("do_unlinkat".into()),
            loaded: Some(crate::wire::trace::LoadedFacts {
                xlated_len: 10,
                jited_len: 64,
                verified_insns: Some(12),
            }),
            ..ProgCall::default()
        };
        loaded.insn_cnt = 10;
        let t = Trace {
            calls: vec![
                call(prog("libbpf_nametest", 2), CallResult::Ok(3)),
                call(Call::ProgLoad(loaded), CallResult::Ok(5)),
                call(
                    Call::Attach(AttachCall {
                        how: "link_create".into(),
                        program: Some("handle".into()),
                        ..AttachCall::default()
                    }),
                    CallResult::Ok(6),
                ),
            ],
            ..Trace::default()
        };
        let p = programs(&t);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].section, "fentry/do_unlinkat");
        assert_eq!((p[0].load.as_str(), p[0].attach.as_str()), ("ok", "ok"));
        let c = p[0].complexity.as_ref().unwrap();
        assert_eq!((c.insns_processed, c.jited_bytes), (12, Some(64)));
    }
}
