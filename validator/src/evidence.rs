//! The evidence of a failed step, from libbpf's error and the lines it
//! printed: the errno, libbpf's warnings, the verifier's log for the
//! program, kfuncs no BTF has, and the kernel's probes of refused helpers.
//! Both loaders' failures take this shape.

use bpfcompat_engine::wire::{StepFailure, tail};

use crate::capture::Line;
use crate::sys;

/// Lines of verifier log kept per failure: the end says why it gave up.
const VERIFIER_TAIL: usize = 60;
/// libbpf warning lines kept per failure.
const LIBBPF_TAIL: usize = 30;

/// The helpers among `called` that the kernel says `prog_type` cannot use.
pub(crate) fn unsupported_helpers(prog_type: u32, called: &[u32]) -> Vec<u32> {
    called
        .iter()
        .copied()
        .filter(|&id| sys::probe_helper(prog_type, id) == Some(false))
        .collect()
}

/// Who libbpf blamed for a failed load.
#[derive(Debug, PartialEq)]
pub(crate) enum Culprit {
    Program(String),
    Map(String),
    Unknown,
}

/// The last program or map a libbpf *warning* names as failing.
pub(crate) fn culprit(lines: &[Line]) -> Culprit {
    let mut found = Culprit::Unknown;
    for l in lines.iter().filter(|l| l.warn) {
        let text = l.text.trim_start_matches("libbpf: ");
        if let Some(name) = quoted_after(text, "prog '")
            && (text.contains("failed") || text.contains("BEGIN PROG LOAD LOG"))
        {
            found = Culprit::Program(name);
        } else if let Some(name) = quoted_after(text, "map '")
            && text.contains("failed")
        {
            found = Culprit::Map(name);
        }
    }
    found
}

fn quoted_after(text: &str, prefix: &str) -> Option<String> {
    let rest = &text[text.find(prefix)? + prefix.len()..];
    Some(rest[..rest.find('\'')?].to_string())
}

/// The evidence of a failed step.
pub(crate) fn failure(e: &libbpf_rs::Error, lines: &[Line], prog: Option<&str>) -> StepFailure {
    // With its causes: libbpf-rs puts the OS error under a context
    // ("failed to attach struct_ops") that alone would lose the errno.
    let error = format!("{e:#}");
    StepFailure {
        errno: errno_of(&error).or_else(|| errno_in_log(lines)),
        error,
        libbpf_log: tail(
            lines
                .iter()
                .filter(|l| l.warn)
                .map(|l| l.text.clone())
                .filter(|t| !t.is_empty())
                .collect(),
            LIBBPF_TAIL,
        ),
        verifier_log: tail(verifier_log(lines, prog), VERIFIER_TAIL),
        missing_kfuncs: missing_kfuncs(lines),
        unsupported_helpers: Vec::new(),
        tracefs: None,
        unprepared: None,
    }
}

/// A program whose configured attach target libbpf could not resolve in
/// the kernel's BTF (`bpf_program__set_attach_target`): libbpf's own lines
/// (no BTF: "Error loading vmlinux BTF") and a line of the validator's
/// saying which call answered what, in libbpf's words for a target the
/// kernel's BTF lacks (it prints none itself then).
pub(crate) fn unresolved_target(
    name: &str,
    target: &str,
    e: &libbpf_rs::Error,
    lines: &[Line],
) -> StepFailure {
    let mut f = failure(e, lines, Some(name));
    let said = match f.errno {
        Some(2 | 3) => format!(
            "prog '{name}': set_attach_target: failed to find kernel BTF type ID of '{target}': {}",
            f.error
        ),
        _ => format!("prog '{name}': set_attach_target('{target}'): {}", f.error),
    };
    f.libbpf_log.push(said);
    f
}

/// The errno in libbpf-rs's rendering of an OS error: `… (os error 22)`.
pub(crate) fn errno_of(text: &str) -> Option<i32> {
    let start = text.rfind("(os error ")? + "(os error ".len();
    let end = start + text[start..].find(')')?;
    text[start..end].parse().ok()
}

/// The errno libbpf printed in its last warning that has one (`-ENOENT`,
/// `-22`): some paths (legacy kprobes) return an error without it.
pub(crate) fn errno_in_log(lines: &[Line]) -> Option<i32> {
    const NAMES: &[(&str, i32)] = &[
        ("EPERM", 1),
        ("ENOENT", 2),
        ("ESRCH", 3),
        ("E2BIG", 7),
        ("EBADF", 9),
        ("ENOMEM", 12),
        ("EACCES", 13),
        ("EFAULT", 14),
        ("EBUSY", 16),
        ("EEXIST", 17),
        ("EINVAL", 22),
        ("ENOSPC", 28),
        ("ERANGE", 34),
        ("ENOSYS", 38),
        ("ELOOP", 40),
        ("EOPNOTSUPP", 95),
        ("ENOTSUPP", 524),
    ];
    lines.iter().rev().filter(|l| l.warn).find_map(|l| {
        let last = l.text.trim_end().rsplit(' ').next()?;
        let code = last.strip_prefix('-')?;
        code.parse::<i32>()
            .ok()
            .or_else(|| NAMES.iter().find(|(n, _)| *n == code).map(|(_, v)| *v))
    })
}

/// The verifier log libbpf printed for `prog` (or for any program).
pub(crate) fn verifier_log(lines: &[Line], prog: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for l in lines {
        let t = &l.text;
        if t.contains("-- BEGIN PROG LOAD LOG --") {
            inside = prog.is_none_or(|p| t.contains(&format!("prog '{p}'")));
            out.clear();
            continue;
        }
        if t.contains("-- END PROG LOAD LOG --") {
            if inside {
                // The last line of the log may share its line with the marker.
                let before = t.split("-- END PROG LOAD LOG --").next().unwrap_or("");
                if !before.trim().is_empty() {
                    out.push(before.to_string());
                }
                break;
            }
            continue;
        }
        if inside {
            out.push(t.clone());
        }
    }
    out
}

/// Kernel functions libbpf found in no kernel or module BTF.
pub(crate) fn missing_kfuncs(lines: &[Line]) -> Vec<String> {
    let mut out: Vec<String> = lines
        .iter()
        .filter(|l| l.text.contains("extern (func ksym)") && l.text.contains("not found"))
        .filter_map(|l| quoted_after(&l.text, "extern (func ksym) '"))
        .collect();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warn(lines: &[&str]) -> Vec<Line> {
        lines
            .iter()
            .map(|t| Line {
                warn: true,
                text: t.to_string(),
            })
            .collect()
    }

    #[test]
    fn errno_from_rendered_error() {
        assert_eq!(
            errno_of("failed to load object: Invalid argument (os error 22)"),
            Some(22)
        );
        assert_eq!(errno_of("no errno here"), None);
    }

    #[test]
    fn culprit_is_the_last_failing_program_or_map() {
        let lines = warn(&[
            "libbpf: prog 'good': relo #0: matching candidate",
            "libbpf: prog 'bad': BPF program load failed: Invalid argument",
            "libbpf: prog 'bad': -- BEGIN PROG LOAD LOG --",
            "0: R1=ctx() R10=fp0",
            "invalid func unknown#181",
            "processed 3 insns (limit 1000000)",
            "-- END PROG LOAD LOG --",
            "libbpf: prog 'bad': failed to load: -22",
            "libbpf: failed to load object 'x.bpf.o'",
        ]);
        assert_eq!(culprit(&lines), Culprit::Program("bad".into()));
        let log = verifier_log(&lines, Some("bad"));
        assert_eq!(log[1], "invalid func unknown#181");
        assert_eq!(log.len(), 3);
        let map = warn(&[
            "libbpf: map 'rb': failed to create: Invalid argument(-22)",
            "libbpf: failed to load object 'x'",
        ]);
        assert_eq!(culprit(&map), Culprit::Map("rb".into()));
        assert_eq!(
            culprit(&warn(&["libbpf: failed to find valid kernel BTF"])),
            Culprit::Unknown
        );
    }

    #[test]
    fn errno_from_libbpf_lines() {
        let lines = warn(&[
            "libbpf: failed to add legacy kprobe event for 'do_sys_openat2+0x0': -ENOENT",
            "libbpf: prog 'count_open': failed to create kprobe 'do_sys_openat2+0x0' perf event: -ENOENT",
        ]);
        assert_eq!(errno_in_log(&lines), Some(2));
        assert_eq!(
            errno_in_log(&warn(&["libbpf: prog 'p': failed to load: -22"])),
            Some(22)
        );
        assert_eq!(errno_in_log(&warn(&["libbpf: nothing numeric here"])), None);
    }

    #[test]
    fn missing_kfuncs_are_named() {
        let lines = warn(&[
            "libbpf: extern (func ksym) 'bpf_rcu_read_lock': not found in kernel or module BTFs",
        ]);
        assert_eq!(missing_kfuncs(&lines), ["bpf_rcu_read_lock"]);
    }
}
