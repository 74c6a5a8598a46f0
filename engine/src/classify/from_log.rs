//! A verdict for a failure bpfcompat did not load itself (a
//! `#[kernel_test]` body's own loader): read from what libbpf printed on
//! stderr (its warnings and the verifier log between `BEGIN PROG LOAD LOG`
//! and `END PROG LOAD LOG`) and the errno in the test's error. Only text is
//! known here, not which program or map failed, and the kernel's feature
//! probes were not asked: only rules the words alone decide give a code. A
//! generic refusal gives the verifier's words without one (on 5.10 a
//! program calling bpf_loop is refused with "number of funcs in func_info
//! doesn't match number of subprogs": the words, not a cause).

use std::collections::BTreeMap;

use super::Code;
use super::rules::{Evidence, Step, classify};
use crate::wire::StepFailure;

/// What the log says: the code where the words decide it, the kernel's or
/// libbpf's words, and the fix.
#[derive(Debug, Clone, PartialEq)]
pub struct LogVerdict {
    /// Why, as a code; `None` when the words do not decide one.
    pub code: Option<Code>,
    /// The line that decided, or the verifier's last words.
    pub message: String,
    /// What to do about it, where known.
    pub remediation: Option<String>,
}

/// Codes that need more than the words (the failing program, the kernel's
/// probes, errno of a known step) to be right.
const NOT_FROM_WORDS_ALONE: &[Code] = &[
    Code::Unknown,
    Code::VerifierRejected,
    Code::Permission,
    Code::AttachFailed,
];

/// Classifies a loader's failure from its console lines (libbpf's default
/// print goes to stderr) and its error text; `None` when libbpf said nothing
/// or no rule explains what it said.
pub fn classify_log(
    console: &[String],
    error: &str,
    kernel_btf: Option<bool>,
    release: Option<&str>,
) -> Option<LogVerdict> {
    let libbpf_log: Vec<String> = console
        .iter()
        .filter_map(|l| l.find("libbpf: ").map(|i| l[i..].to_string()))
        .collect();
    if libbpf_log.is_empty() {
        return None;
    }
    let verifier_log = printed_verifier_log(console, None);
    let missing_kfuncs = libbpf_log
        .iter()
        .filter(|l| l.contains("(func ksym)") && l.contains("not found"))
        .filter_map(|l| l.split('\'').nth(1).map(str::to_string))
        .collect();
    let step = if libbpf_log
        .iter()
        .any(|l| l.contains("failed to create map"))
    {
        Step::MapCreate
    } else if libbpf_log.iter().any(|l| {
        l.contains("failed to attach") || l.contains("failed to create") && l.contains("perf event")
    }) {
        Step::Attach
    } else {
        Step::ProgLoad
    };
    let failure = StepFailure {
        errno: os_error(error),
        error: error.to_string(),
        libbpf_log,
        verifier_log,
        missing_kfuncs,
        unsupported_helpers: Vec::new(),
        tracefs: None,
        unprepared: None,
    };
    let config = BTreeMap::new();
    let verdict = classify(&Evidence {
        step,
        failure: &failure,
        program: None,
        map: None,
        object_maps: &[],
        kernel_btf,
        release,
        kernel_config: &config,
    });
    if !NOT_FROM_WORDS_ALONE.contains(&verdict.code) {
        return Some(LogVerdict {
            code: Some(verdict.code),
            message: verdict.message,
            remediation: verdict.remediation,
        });
    }
    super::rules::verifier_reason(&failure).map(|words| LogVerdict {
        code: None,
        message: words,
        remediation: None,
    })
}

/// The verifier log libbpf printed between its markers (the last block),
/// for the program the kernel knows as `program` where one is named (the
/// kernel's name is at most 15 bytes of libbpf's).
pub(crate) fn printed_verifier_log(console: &[String], program: Option<&str>) -> Vec<String> {
    let mut log = Vec::new();
    let mut inside = false;
    for l in console {
        let ours = || match program {
            None => true,
            Some(name) => l
                .split("prog '")
                .nth(1)
                .is_some_and(|rest| !name.is_empty() && rest.starts_with(name)),
        };
        if l.contains("-- BEGIN PROG LOAD LOG --") && ours() {
            inside = true;
            log.clear();
        } else if l.contains("-- END PROG LOAD LOG --") {
            inside = false;
        } else if inside {
            log.push(l.clone());
        }
    }
    log
}

/// The errno of Rust's `… (os error N)`.
fn os_error(error: &str) -> Option<i32> {
    let at = error.rfind("(os error ")? + "(os error ".len();
    error[at..].split(')').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn a_generic_refusal_gives_the_verifiers_words_without_a_code() {
        let console = lines(
            "libbpf: prog 'count_with_loop': BPF program load failed: Invalid argument\n\
             libbpf: prog 'count_with_loop': -- BEGIN PROG LOAD LOG --\n\
             number of funcs in func_info doesn't match number of subprogs\n\
             processed 0 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n\
             libbpf: prog 'count_with_loop': -- END PROG LOAD LOG --",
        );
        let v = classify_log(&console, "Invalid argument (os error 22)", Some(true), None).unwrap();
        assert_eq!(v.code, None, "{v:?}");
        assert_eq!(
            v.message,
            "number of funcs in func_info doesn't match number of subprogs"
        );
    }

    #[test]
    fn a_verifier_refusal_printed_by_libbpf_is_named() {
        let console = lines(
            "[    3.1] random kernel line\n\
             libbpf: prog 'count_with_loop': BPF program load failed: Invalid argument\n\
             libbpf: prog 'count_with_loop': -- BEGIN PROG LOAD LOG --\n\
             0: R1=ctx() R10=fp0\n\
             unknown func bpf_loop#181\n\
             processed 7 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n\
             libbpf: prog 'count_with_loop': -- END PROG LOAD LOG --\n\
             libbpf: failed to load object 'bounded_loop_bpf'",
        );
        let v = classify_log(
            &console,
            "Invalid argument (os error 22)",
            Some(true),
            Some("5.10.0-46"),
        )
        .expect("explained");
        assert_eq!(v.code, Some(Code::UnsupportedHelper), "{v:?}");
        assert!(v.message.contains("bpf_loop"), "{v:?}");
        assert!(v.remediation.unwrap().contains("5.17"));
    }

    #[test]
    fn a_programs_printed_log_is_found_by_the_kernels_name_for_it() {
        let console = lines(
            "libbpf: prog 'count_with_loop': -- BEGIN PROG LOAD LOG --\n\
             first\n\
             libbpf: prog 'count_with_loop': -- END PROG LOAD LOG --\n\
             libbpf: prog 'read_state_guarded': -- BEGIN PROG LOAD LOG --\n\
             second\n\
             libbpf: prog 'read_state_guarded': -- END PROG LOAD LOG --",
        );
        assert_eq!(printed_verifier_log(&console, None), ["second"]);
        assert_eq!(
            printed_verifier_log(&console, Some("count_with_loop")),
            ["first"]
        );
        // The kernel keeps 15 bytes of a name.
        assert_eq!(
            printed_verifier_log(&console, Some("read_state_guar")),
            ["second"]
        );
        assert!(printed_verifier_log(&console, Some("other")).is_empty());
    }

    #[test]
    fn without_libbpf_words_there_is_no_verdict() {
        let console = lines("[    3.1] a kernel line\nthread panicked");
        assert_eq!(
            classify_log(&console, "Permission denied (os error 1)", None, None),
            None
        );
        assert_eq!(os_error("Invalid argument (os error 22)"), Some(22));
        assert_eq!(os_error("no errno"), None);
    }
}
