//! The terminal view: a matrix of objects x kernels, then each failure with
//! the kernel's own words.

use std::fmt::Write;

use super::{ExitCode, Report};
use crate::classify::{Cell, Stage, Status};
use crate::outcome::KernelRun;

/// What a cell shows in the matrix.
pub(crate) fn cell_word(c: &Cell) -> String {
    match c.status {
        Status::Pass => "pass".into(),
        Status::Fail => c
            .code
            .map_or("FAIL".into(), |code| code.as_str().to_string()),
        Status::Unavailable => "unavailable".into(),
        Status::InfraError => "no verdict".into(),
        Status::ExpectedFail => format!("expected {}", c.code.map(|c| c.as_str()).unwrap_or("")),
        Status::UnexpectedPass => "UNEXPECTED PASS".into(),
    }
}

/// With `--validator both`: where libbpf's and aya's verdicts on one object
/// and kernel differ (a libbpf pass is not an aya pass).
pub fn disagreements_text(r: &Report) -> String {
    let mut out = String::new();
    for c in r.cells.iter() {
        let Some(base) = c.object.strip_suffix(" (libbpf)") else {
            continue;
        };
        let Some(aya) = r.cell(&format!("{base} (aya)"), &c.kernel) else {
            continue;
        };
        if (c.status, c.code) != (aya.status, aya.code) {
            let _ = writeln!(
                out,
                "DISAGREE {base} on {}: libbpf {}, aya {}",
                c.kernel,
                cell_word(c),
                cell_word(aya)
            );
        }
    }
    out
}

/// What the validator assumed, once per object: `ASSUMED <object>: ...`.
pub fn assumptions_text(r: &Report) -> String {
    r.assumptions()
        .into_iter()
        .map(|(o, a)| format!("ASSUMED {o}: {a}\n"))
        .collect()
}

/// Each failing object's floor, with everything it needs: `FLOOR <object>:
/// Linux 5.8 (ringbuf map `events`); needs ...`.
pub fn floors_text(r: &Report) -> String {
    let mut out = String::new();
    for f in &r.floors {
        let failing = r
            .cells
            .iter()
            .any(|c| c.object == f.object && c.status == Status::Fail);
        let Some(floor) = f.floor.as_deref().filter(|_| failing) else {
            continue;
        };
        let needs: Vec<String> = f
            .needs
            .iter()
            .map(|n| format!("{} {}", n.feature, n.since))
            .collect();
        let _ = writeln!(
            out,
            "FLOOR {}: Linux {floor} ({}); needs {}",
            shown(&f.object),
            shown(&f.at_floor().join(", ")),
            shown(&needs.join(", "))
        );
    }
    out
}

/// The sentence of a failed cell's place against its object's floor.
pub fn floor_sentence(r: &Report, c: &Cell) -> Option<String> {
    let floor = r.floor_of(&c.object)?;
    let at = floor.floor.as_deref()?;
    Some(match c.floor? {
        crate::floor::FloorPlace::Below => format!(
            "this kernel is older than the object's floor, Linux {at} ({}): a failure here is expected",
            floor.at_floor().join(", ")
        ),
        crate::floor::FloorPlace::AtOrAbove => format!(
            "this kernel is at or above the object's floor, Linux {at}: not its release; look for a backport, a build option or a module it lacks"
        ),
    })
}

/// Which alternative each kernel got, for objects with variants.
pub fn variants_text(r: &Report) -> String {
    let mut out = String::new();
    for c in r.cells.iter().filter(|c| !c.variants.is_empty()) {
        for v in &c.variants {
            let chosen = v.chosen.as_deref().unwrap_or("none works");
            let (word, how) = if v.inferred {
                ("alternative", "; the same hook by other mechanisms")
            } else {
                ("variant", "")
            };
            let _ = writeln!(
                out,
                "{word} {} on {}: {chosen} (of {}{how})",
                c.object,
                c.kernel,
                v.candidates.join(", ")
            );
        }
    }
    out
}

/// `--stats`: the verifier's figures per program and kernel, as veristat
/// lays them out, with `*` on the kernel where each program is closest to
/// the limit.
pub fn stats_text(r: &Report) -> String {
    let (kernels, rows) = super::rows(r);
    if rows.is_empty() {
        return "verifier complexity: no program was measured (the kernels refused every program, or their verifiers predate statistics, 5.2)\n".into();
    }
    let mut table = vec![
        [
            "OBJECT",
            "PROGRAM",
            "KERNEL",
            "INSNS",
            "PROCESSED",
            "OF LIMIT ",
            "STATES",
            "PEAK",
            "TIME",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for row in &rows {
        for (i, c) in row.on.iter().enumerate() {
            let Some(c) = c else { continue };
            // A space where there is no mark keeps the figures aligned.
            let mark = if row.is_tightest(i) { "*" } else { " " };
            let opt = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
            table.push(vec![
                row.object.to_string(),
                row.program.to_string(),
                kernels[i].to_string(),
                opt(c.insns),
                c.insns_processed.to_string(),
                format!("{:.1}%{mark}", 100.0 - c.headroom_pct()),
                states(c, c.total_states),
                states(c, c.peak_states),
                c.verification_time_us
                    .map_or("-".into(), |t| format!("{t} us")),
            ]);
        }
    }
    let widths: Vec<usize> = (0..table[0].len())
        .map(|i| {
            table
                .iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::from(
        "verifier complexity (* the kernel where the program is closest to the limit)\n",
    );
    for row in &table {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (v, w))| {
                if i >= 3 {
                    format!("{v:>w$}")
                } else {
                    format!("{v:<w$}")
                }
            })
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

/// Text from objects, kernels and loaders as a terminal may show it: every
/// control character escaped (`\u{1b}`), so none recolours the terminal,
/// sets its title or starts a line of its own.
pub fn shown(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            c if c.is_control() => c.escape_default().to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// Why the run exits as it does, where it does not pass: which required
/// cells fail, or have no verdict and why.
pub fn exit_text(r: &Report) -> Option<String> {
    let required = || r.cells.iter().filter(|c| c.required);
    let count = |s: Status| required().filter(|c| c.status == s).count();
    match r.exit_code {
        ExitCode::Regression => Some(format!(
            "exit 2: {}{}",
            cells(
                count(Status::Fail) + count(Status::UnexpectedPass),
                "fails",
                "fail"
            ),
            match count(Status::UnexpectedPass) {
                0 => String::new(),
                n => format!(" ({n} of them pass though declared to fail)"),
            }
        )),
        ExitCode::ToolFailure => {
            let unavailable = if r.allow_unavailable {
                0
            } else {
                count(Status::Unavailable)
            };
            let infra = count(Status::InfraError);
            let mut why = Vec::new();
            if unavailable > 0 {
                why.push(format!(
                    "{unavailable} on kernels that could not be had (--allow-unavailable runs without them)"
                ));
            }
            if infra > 0 {
                why.push(format!("{infra} where the guest or the tool failed"));
            }
            (!why.is_empty()).then(|| {
                format!(
                    "exit 1: {}: {}",
                    cells(unavailable + infra, "has no verdict", "have no verdict"),
                    why.join("; ")
                )
            })
        }
        _ => None,
    }
}

/// `1 required cell fails`, `2 required cells fail`.
fn cells(n: usize, one: &str, many: &str) -> String {
    match n {
        1 => format!("1 required cell {one}"),
        n => format!("{n} required cells {many}"),
    }
}

/// Every failing or verdict-less cell, with evidence. A kernel whose guest
/// gave no verdict at all is said once, not once per object.
pub fn failures_text(r: &Report) -> String {
    let mut out = String::new();
    let mut whole_kernel = Vec::new();
    // Kernels with no verdict for the same reason are said together (no
    // mirror for an archive: once, with its hint).
    let mut groups: Vec<(Status, String, Vec<&str>)> = Vec::new();
    for k in r.kernels_by_version() {
        let cells: Vec<&Cell> = r.cells.iter().filter(|c| c.kernel == k.kernel).collect();
        let first = cells.first().map(|c| (c.status, c.message.clone()));
        if let Some((status @ (Status::Unavailable | Status::InfraError), message)) = first
            && cells
                .iter()
                .all(|c| c.status == status && c.message == message)
        {
            let message = message.unwrap_or_default();
            match groups
                .iter_mut()
                .find(|(s, m, _)| *s == status && *m == message)
            {
                Some((_, _, kernels)) => kernels.push(&k.kernel),
                None => groups.push((status, message, vec![&k.kernel])),
            }
            whole_kernel.push(k.kernel.clone());
        }
    }
    for (status, message, kernels) in groups {
        let head = if status == Status::Unavailable {
            "UNAVAILABLE"
        } else {
            "NO VERDICT"
        };
        let kernels: Vec<String> = kernels.iter().map(|k| shown(k)).collect();
        let mut lines = message.lines();
        let _ = writeln!(
            out,
            "{head} {}: {}",
            kernels.join(", "),
            shown(lines.next().unwrap_or_default())
        );
        for l in lines {
            let _ = writeln!(out, "{}", shown(l));
        }
    }
    let listed = |c: &&Cell| {
        !matches!(c.status, Status::Pass | Status::ExpectedFail)
            && !whole_kernel.contains(&c.kernel)
    };
    type Key<'a> = (&'static str, &'a str, String);
    let mut groups: Vec<(Key, Vec<String>)> = Vec::new();
    for c in r.cells.iter().filter(listed) {
        if c.status == Status::UnexpectedPass {
            let expected = c.expected.map(|e| e.as_str()).unwrap_or("?");
            let _ = writeln!(
                out,
                "UNEXPECTED PASS {} on {}: declared to fail with {expected}, but it passes\n  fix: remove the expectation (the floor moved, or the program changed)",
                shown(&c.object),
                shown(&c.kernel)
            );
            continue;
        }
        let release = c.kernel_release.as_deref().unwrap_or("?");
        let head = match c.status {
            Status::Fail if c.expected.is_some() => "FAIL (not the expected failure)",
            Status::Fail => "FAIL",
            Status::Unavailable => "UNAVAILABLE",
            _ => "NO VERDICT",
        };
        let mut body = String::new();
        if let (Some(expected), Status::Fail) = (c.expected, c.status) {
            let got = c.code.map(|c| c.as_str()).unwrap_or("?");
            let _ = writeln!(body, "  expected {expected}, got {got}");
        }
        for f in &c.findings {
            let mut what = format!("{} at {:?}", f.code, f.stage).to_lowercase();
            what = what.replacen(&f.code.as_str().to_lowercase(), f.code.as_str(), 1);
            if let Some(p) = &f.program {
                let _ = write!(what, ", program `{}`", shown(p));
            }
            if let Some(m) = &f.map {
                let _ = write!(what, ", map `{}`", shown(m));
            }
            if let Some(e) = f.errno {
                let _ = write!(what, ", errno {e}");
            }
            let _ = writeln!(body, "  {what}");
            let _ = writeln!(body, "    kernel: {}", shown(&f.message));
            if let Some(fix) = &f.remediation {
                let _ = writeln!(body, "    fix:    {}", shown(fix));
            }
            if f.stage == crate::classify::Stage::Guest && !f.libbpf_log.is_empty() {
                let _ = writeln!(body, "    output (end):");
                for l in super::last(&f.libbpf_log, 8) {
                    let _ = writeln!(body, "      {}", shown(l));
                }
            }
            let tail = super::last(&f.verifier_tail, 4);
            if !tail.is_empty() {
                let _ = writeln!(body, "    verifier log (end):");
                for l in tail {
                    let _ = writeln!(body, "      {}", shown(l));
                }
            }
        }
        if let Some(floor) = floor_sentence(r, c) {
            let _ = writeln!(body, "  floor:  {}", shown(&floor));
        }
        // A loader's failure its own call explains: its output still shows.
        let guest_said = c.findings.iter().any(|f| f.stage == Stage::Guest);
        if let Some(cmd) = c.command.as_ref().filter(|_| !guest_said) {
            let lines: Vec<String> = cmd.output.lines().map(str::to_string).collect();
            if !lines.is_empty() {
                let _ = writeln!(body, "  loader output (end):");
                for l in super::last(&lines, 8) {
                    let _ = writeln!(body, "    {}", shown(l));
                }
            }
        }
        let key = (head, c.object.as_str(), body);
        let on = format!("{} ({})", shown(&c.kernel), shown(release));
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, kernels)) => kernels.push(on),
            None => groups.push((key, vec![on])),
        }
    }
    // One cause on several kernels is said once, naming them all.
    for ((head, object, body), kernels) in groups {
        let _ = writeln!(out, "{head} {} on {}", shown(object), kernels.join(", "));
        out.push_str(&body);
    }
    out
}

/// A state count, or `-` where it is not known.
fn states(c: &crate::wire::Complexity, n: u64) -> String {
    match c.from_program_info {
        true => "-".into(),
        false => n.to_string(),
    }
}

/// Short codes for the compact matrix.
fn short_code(code: crate::classify::Code) -> &'static str {
    use crate::classify::Code::*;
    match code {
        MissingBtf => "BTF",
        CoreRelocation => "CORE",
        MissingKfunc => "KFUNC",
        MissingAttachTarget => "TARGET",
        UnsupportedMapType => "MAPTYPE",
        UnsupportedProgType => "PROGTYPE",
        UnsupportedAttachType => "ATTACHTY",
        UnsupportedHelper => "HELPER",
        UnsupportedFeature => "FEATURE",
        KernelConfig => "CONFIG",
        VerifierRejected => "VERIFIER",
        VerifierLimit => "LIMIT",
        GplOnly => "GPL",
        Permission => "PERM",
        MapContract => "CONTRACT",
        AttachFailed => "ATTACH",
        NotFired => "NOTFIRED",
        CommandFailed => "CMD",
        ComplexityRegression => "GROWTH",
        ComplexityHeadroom => "HEADROOM",
        Timeout => "TIMEOUT",
        KernelPanic => "PANIC",
        Infra => "INFRA",
        Interrupted => "STOPPED",
        Unknown => "UNKNOWN",
    }
}

fn compact_word(c: &Cell) -> String {
    match c.status {
        Status::Pass => "ok".into(),
        Status::Fail => c.code.map_or("FAIL".into(), |k| short_code(k).to_string()),
        Status::ExpectedFail => c.code.map_or("xfail", short_code).to_lowercase(),
        Status::UnexpectedPass => "XPASS".into(),
        Status::Unavailable => "n/a".into(),
        Status::InfraError if c.code == Some(crate::classify::Code::Interrupted) => {
            "stopped".into()
        }
        Status::InfraError => "?".into(),
    }
}

/// `ubuntu-20.04-5.4` → `u5.4`, `debian-sid` → `dsid`: kernel labels that
/// keep eight kernels within 100 columns.
fn short_kernel(name: &str) -> String {
    let first = name.chars().next().unwrap_or('k');
    let last = name.rsplit('-').next().unwrap_or(name);
    format!("{first}{last}")
}

/// A cell's word padded to `width`, coloured by status when `color`; the
/// padding stays outside the colour, so both forms align the same.
fn paint(word: &str, c: &Cell, width: usize, color: bool) -> String {
    let pad = " ".repeat(width.saturating_sub(word.chars().count()));
    if !color {
        return format!("{word}{pad}");
    }
    use anstyle::{AnsiColor, Style};
    let color = |c: AnsiColor| Style::new().fg_color(Some(c.into()));
    let style = match c.status {
        Status::Pass => color(AnsiColor::Green),
        Status::Fail | Status::UnexpectedPass => color(AnsiColor::Red).bold(),
        Status::ExpectedFail => color(AnsiColor::Yellow),
        Status::Unavailable | Status::InfraError => color(AnsiColor::BrightBlack),
    };
    format!("{style}{word}{style:#}{pad}")
}

/// How the matrix is drawn: the columns it may use and whether to paint
/// cells by status.
#[derive(Debug, Clone, Copy)]
pub struct Look {
    /// Columns available (the terminal's width; 100 in a log).
    pub width: usize,
    /// ANSI colours by status.
    pub color: bool,
}

impl Look {
    /// No colour, no width limit: the wide table always.
    #[cfg(test)]
    pub(crate) const PLAIN: Look = Look {
        width: usize::MAX,
        color: false,
    };
}

type Label = fn(&str) -> String;
type Word = fn(&Cell) -> String;

/// The matrix as people read it: the wide table when it fits in
/// `look.width` columns, else a compact one with short kernel labels and
/// codes and a legend. Kernels are in version order, as in every view; the
/// spacing is the same with or without colour.
pub fn matrix(r: &Report, look: Look) -> String {
    let kernels = r.kernels_by_version();
    let wide = table(r, &kernels, (|k| k.to_string(), cell_word), false);
    let fits = wide.lines().all(|l| l.chars().count() <= look.width);
    let mut out = match (fits, look.color) {
        (true, false) => wide,
        (true, true) => table(r, &kernels, (|k| k.to_string(), cell_word), true),
        (false, _) => table(r, &kernels, (short_kernel, compact_word), look.color),
    };
    if !fits {
        let width = look.width.max(40);
        let mut line = String::from("kernels:");
        for k in &kernels {
            let entry = format!(" {}={}", short_kernel(&k.kernel), k.kernel);
            if line.len() + entry.len() > width {
                let _ = writeln!(out, "{line}");
                line = String::from("        ");
            }
            line.push_str(&entry);
        }
        let _ = writeln!(out, "{line}");
        out.push_str("ok pass, CODE failure, code (lower case) expected failure,\n");
        out.push_str("XPASS declared to fail but passes, n/a unavailable, ? no verdict\n");
    }
    if kernels.iter().any(|k| !k.required) {
        out.push_str("(* not required: failures there do not fail the run)\n");
    }
    out
}

/// One table: a header of kernel labels (`*` where not required), then a
/// row per object, columns two spaces apart.
fn table(r: &Report, kernels: &[&KernelRun], (label, word): (Label, Word), color: bool) -> String {
    let obj_w = r
        .objects
        .iter()
        .map(|o| shown(o).len())
        .max()
        .unwrap_or(6)
        .max(6);
    let widths: Vec<usize> = kernels
        .iter()
        .map(|k| {
            r.cells
                .iter()
                .filter(|c| c.kernel == k.kernel)
                .map(|c| word(c).len())
                .chain([label(&k.kernel).len() + usize::from(!k.required)])
                .max()
                .unwrap_or(4)
        })
        .collect();
    let mut out = format!("{:<obj_w$}", "OBJECT");
    for (k, w) in kernels.iter().zip(&widths) {
        let name = format!("{}{}", label(&k.kernel), if k.required { "" } else { "*" });
        let _ = write!(out, "  {name:<w$}");
    }
    out.truncate(out.trim_end_matches(' ').len());
    out.push('\n');
    for o in &r.objects {
        let _ = write!(out, "{:<obj_w$}", shown(o));
        for (k, w) in kernels.iter().zip(&widths) {
            let cell = match r.cell(o, &k.kernel) {
                Some(c) => paint(&word(c), c, *w, color),
                None => format!("{:<w$}", ""),
            };
            let _ = write!(out, "  {cell}");
        }
        out.truncate(out.trim_end_matches(' ').len());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cause_on_several_kernels_is_said_once_naming_them_all() {
        use crate::classify::{Code, Finding};
        let mut r = crate::report::test_report(&["a", "b", "c"], &["o"], |_| {});
        for (c, message) in r
            .cells
            .iter_mut()
            .zip(["unknown func", "unknown func", "other"])
        {
            c.status = Status::Fail;
            c.kernel_release = Some("5.10".into());
            c.findings = vec![Finding::plain(
                Stage::Load,
                Code::UnsupportedHelper,
                None,
                message.into(),
                None,
                Vec::new(),
            )];
        }
        let text = failures_text(&r);
        assert_eq!(text.matches("kernel: unknown func").count(), 1, "{text}");
        assert!(text.contains("FAIL o on a (5.10), b (5.10)\n"), "{text}");
        assert!(text.contains("FAIL o on c (5.10)\n"), "{text}");
    }

    #[test]
    fn kernels_without_a_verdict_for_one_reason_are_said_once_and_the_exit_is_explained() {
        let mut r = crate::report::test_report(&["a", "b"], &["o"], |k| {
            k.outcome = crate::outcome::KernelOutcome::Unavailable {
                reason: "no mirror for the `ubuntu` archive\n  (hint: set BPFCOMPAT_MIRROR_UBUNTU)"
                    .into(),
            };
        });
        r.allow_unavailable = false;
        r.recount();
        let text = failures_text(&r);
        assert_eq!(
            text,
            "UNAVAILABLE a, b: no mirror for the `ubuntu` archive\n  (hint: set BPFCOMPAT_MIRROR_UBUNTU)\n"
        );
        assert_eq!(
            exit_text(&r).unwrap(),
            "exit 1: 2 required cells have no verdict: 2 on kernels that could not be had (--allow-unavailable runs without them)"
        );
    }
    use crate::outcome::{KernelOutcome, KernelRun, RunOutput};

    /// A report over the eight kernels of the default matrix, with long codes.
    fn eight_kernel_report() -> Report {
        let names = [
            ("ubuntu-16.04-4.15", "4.15.0-142-generic"),
            ("ubuntu-20.04-5.4", "5.4.0-216-generic"),
            ("ubuntu-22.04-5.15", "5.15.0-203-generic"),
            ("ubuntu-24.04-6.8", "6.8.0-149-generic"),
            ("debian-11-5.10", "5.10.0-46-cloud-amd64"),
            ("debian-12-6.1", "6.1.0-56-cloud-amd64"),
            ("debian-13-6.12", "6.12.117+deb13-cloud-amd64"),
            ("debian-sid", "7.2.13+deb14-cloud-amd64"),
        ];
        let kernels = names
            .iter()
            .map(|(k, rel)| {
                let mut run = KernelRun::on_host(rel.to_string(), true, Vec::new());
                run.kernel = k.to_string();
                run.outcome = KernelOutcome::Unavailable {
                    reason: "test".into(),
                };
                run
            })
            .collect();
        let mut report = Report::new(
            "m",
            vec!["task_state_guarded".into(), "bounded_loop".into()],
            RunOutput {
                kernels,
                notes: Vec::new(),
            },
            true,
            &Default::default(),
        );
        for (i, c) in report.cells.iter_mut().enumerate() {
            c.status = if i % 2 == 0 {
                Status::Fail
            } else {
                Status::ExpectedFail
            };
            c.code = Some(crate::classify::Code::UnsupportedAttachType);
        }
        report
    }

    #[test]
    fn eight_kernels_fit_in_100_columns() {
        let r = eight_kernel_report();
        assert!(
            matrix(&r, Look::PLAIN)
                .lines()
                .any(|l| l.chars().count() > 100),
            "the wide table does not fit"
        );
        let compact = matrix(
            &r,
            Look {
                width: 100,
                color: false,
            },
        );
        for line in compact.lines() {
            assert!(
                line.chars().count() <= 100,
                "{} columns: {line}",
                line.chars().count()
            );
        }
        assert!(
            compact.contains("u4.15")
                && compact.contains("dsid")
                && compact.contains("kernels: u4.15=ubuntu-16.04-4.15")
        );
        assert!(compact.contains("ATTACHTY") && compact.contains(" attachty "));
        assert!(
            !compact.contains('\u{1b}'),
            "no colour codes when colour is off"
        );
        let red = anstyle::Style::new()
            .fg_color(Some(anstyle::AnsiColor::Red.into()))
            .bold()
            .render()
            .to_string();
        let painted = matrix(
            &r,
            Look {
                width: 100,
                color: true,
            },
        );
        assert!(painted.contains(&red), "failures are red when colour is on");
    }

    #[test]
    fn stats_mark_the_kernel_closest_to_the_limit_and_stay_aligned() {
        let mut r = crate::report::test_report(&["k-old", "k-new"], &["o.bpf.o"], |_| {});
        for (cell, n) in r.cells.iter_mut().zip([900_000u64, 1_000]) {
            cell.programs = vec![crate::classify::ProgramState {
                name: "prog".into(),
                section: "xdp".into(),
                load: "ok".into(),
                attach: "skipped".into(),
                runs: None,
                optional: false,
                stand_in: None,
                complexity: Some(crate::wire::Complexity {
                    insns_processed: n,
                    insns_limit: 1_000_000,
                    insns: Some(40),
                    ..Default::default()
                }),
            }];
        }
        let text = stats_text(&r);
        let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("o.bpf.o")).collect();
        assert_eq!(rows.len(), 2, "{text}");
        let old = rows.iter().find(|l| l.contains("k-old")).unwrap();
        let new = rows.iter().find(|l| l.contains("k-new")).unwrap();
        assert!(old.contains("900000") && old.contains("90.0%*"), "{text}");
        assert!(new.contains("0.1% ") || new.ends_with("0.1%"), "{text}");
        assert!(!new.contains('*'), "{text}");
        let col = |l: &str| l.find('%').unwrap();
        assert_eq!(col(old), col(new), "{text}");

        let empty = crate::report::test_report(&["k"], &["o.bpf.o"], |_| {});
        assert!(stats_text(&empty).contains("no program was measured"));
    }

    #[test]
    fn control_characters_from_objects_and_loaders_are_shown_escaped() {
        let name = "evil\u{1b}]0;title\u{7}\nFAIL forged";
        let report = crate::report::test_report(&["k"], &[name], |k| {
            k.outcome = KernelOutcome::Completed;
            k.commands.push(crate::wire::CommandReport {
                name: name.into(),
                exit_code: Some(1),
                output: "\u{1b}[31mred\n".into(),
                ..Default::default()
            });
        });
        let text = failures_text(&report);
        assert!(text.contains("\\u{1b}[31mred"), "{text}");
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text}"
        );
        assert!(
            text.contains("evil\\u{1b}]0;title\\u{7}\\nFAIL forged"),
            "{text}"
        );
        assert!(
            !text.lines().any(|l| l.starts_with("FAIL forged")),
            "{text}"
        );
    }
}
