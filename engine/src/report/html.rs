//! The HTML matrix: one self-contained file (no network, no external assets),
//! kernels in version order, each cell a coloured `<details>` that opens to
//! its evidence, and a section per guest. It reads without JavaScript; a
//! few lines of script add filters.
//!
//! The page is a minijinja template (`templates/report.html`) with HTML
//! auto-escaping: every value from an object, a kernel or a log is escaped
//! by the engine, not by hand.

use std::path::Path;

use minijinja::value::Serde;
use minijinja::{Environment, Value, context};
use serde::Serialize;

use super::Report;
use super::terminal::cell_word;
use crate::classify::{Cell, Status};
use crate::outcome::KernelRun;

const TEMPLATE: &str = include_str!("templates/report.html");

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Pass => "pass",
        Status::Fail => "fail",
        Status::Unavailable => "unavailable",
        Status::InfraError => "infra_error",
        Status::ExpectedFail => "expected_fail",
        Status::UnexpectedPass => "unexpected_pass",
    }
}

/// One `<dt>`/`<dd>` pair: text, a `<pre>` block, or links.
#[derive(Serialize, Default)]
struct Entry {
    term: &'static str,
    value: String,
    pre: bool,
    console: bool,
    links: Vec<Link>,
}

#[derive(Serialize)]
struct Link {
    text: &'static str,
    href: String,
}

fn text(term: &'static str, value: impl Into<String>) -> Entry {
    Entry {
        term,
        value: value.into(),
        ..Entry::default()
    }
}

fn pre(term: &'static str, value: impl Into<String>, console: bool) -> Entry {
    Entry {
        pre: true,
        console,
        ..text(term, value)
    }
}

#[derive(Serialize)]
struct KernelHead<'a> {
    name: &'a str,
    required: bool,
    release: &'a str,
}

#[derive(Serialize)]
struct CellView<'a> {
    /// The anchor of its evidence below the grid.
    id: String,
    object: &'a str,
    kernel: &'a str,
    status: &'static str,
    code: &'static str,
    /// The whole verdict (`expected UNSUPPORTED_HELPER`), on hover.
    word: String,
    /// What the grid shows (`helper`): the grid fits a screen.
    short: String,
    entries: Vec<Entry>,
}

#[derive(Serialize)]
struct Row<'a> {
    object: &'a str,
    cells: Vec<Option<CellView<'a>>>,
}

#[derive(Serialize)]
struct Assumed<'a> {
    object: &'a str,
    text: String,
}

/// The comparison with a baseline: its counts and the cells it lists.
#[derive(Serialize)]
struct Changes<'a> {
    counts: String,
    rows: Vec<ChangeRow<'a>>,
}

#[derive(Serialize)]
struct ChangeRow<'a> {
    label: &'static str,
    object: &'a str,
    kernel: &'a str,
    required: bool,
    before: &'a str,
    after: &'a str,
}

fn changes(r: &Report) -> Option<Changes<'_>> {
    let changes = r.changes.as_ref()?;
    let rows = super::compare::LISTED
        .iter()
        .flat_map(|(kind, label)| {
            changes
                .iter()
                .filter(move |c| c.change == *kind)
                .map(move |c| ChangeRow {
                    label,
                    object: &c.object,
                    kernel: &c.kernel,
                    required: c.required,
                    before: &c.before,
                    after: &c.after,
                })
        })
        .collect();
    Some(Changes {
        counts: super::compare::counts_text(changes),
        rows,
    })
}

#[derive(Serialize)]
struct ComplexityRow<'a> {
    object: &'a str,
    program: &'a str,
    cells: Vec<Option<ComplexityCell>>,
}

#[derive(Serialize)]
struct ComplexityCell {
    figure: String,
    /// `high`, `mid` or `low` headroom.
    band: &'static str,
    tightest: bool,
    title: String,
}

/// The complexity view: a row per program, a cell per kernel.
fn complexity_rows(r: &Report) -> Vec<ComplexityRow<'_>> {
    super::rows(r)
        .1
        .into_iter()
        .map(|row| ComplexityRow {
            object: row.object,
            program: row.program,
            cells: row
                .on
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    c.map(|c| ComplexityCell {
                        figure: super::figure(c),
                        band: match c.headroom_pct() {
                            h if h >= 50.0 => "high",
                            h if h >= 10.0 => "mid",
                            _ => "low",
                        },
                        tightest: row.is_tightest(i),
                        title: format!(
                            "{} instructions, {} states created (peak {}), limit {}{}",
                            c.insns.map_or("?".into(), |n| n.to_string()),
                            known(c, c.total_states),
                            known(c, c.peak_states),
                            c.insns_limit,
                            c.verification_time_us
                                .map_or(String::new(), |t| format!(", verified in {t} us"))
                        ),
                    })
                })
                .collect(),
        })
        .collect()
}

#[derive(Serialize)]
struct Guest<'a> {
    kernel: &'a str,
    entries: Vec<Entry>,
}

/// Renders the report as a self-contained HTML page.
pub fn html(r: &Report) -> String {
    html_in(r, None)
}

/// [`html`] for a page written in `dir`: links to evidence files are
/// relative to it, so they hold where the page and the evidence are
/// uploaded together (a CI artifact).
pub fn html_in(r: &Report, dir: Option<&Path>) -> String {
    let kernels = r.kernels_by_version();
    let rows: Vec<Row> = r
        .objects
        .iter()
        .enumerate()
        .map(|(i, o)| Row {
            object: o,
            cells: kernels
                .iter()
                .enumerate()
                .map(|(j, k)| {
                    r.cell(o, &k.kernel)
                        .map(|c| cell(r, c, k, format!("cell-{i}-{j}")))
                })
                .collect(),
        })
        .collect();
    let mut env = Environment::new();
    env.add_template("report.html", TEMPLATE)
        .expect("the report template parses");
    env.get_template("report.html")
        .and_then(|t| {
            let heads: Vec<KernelHead> = kernels
                .iter()
                .map(|k| KernelHead {
                    name: &k.kernel,
                    required: k.required,
                    release: k.release.as_deref().unwrap_or(""),
                })
                .collect();
            let assumed: Vec<Assumed> = r
                .assumptions()
                .into_iter()
                .map(|(object, text)| Assumed { object, text })
                .collect();
            let guests: Vec<Guest> = kernels.iter().map(|k| guest(k, dir)).collect();
            let complexity = complexity_rows(r);
            let growth = if r.complexity_growth.is_empty() {
                String::new()
            } else {
                super::growth_text(&r.complexity_growth)
            };
            t.render(context! {
                summary => r.summary.sentence(),
                matrix => r.matrix.clone(),
                tool => r.tool.clone(),
                partial => r.partial.clone(),
                artifacts => r.artifacts.iter().map(crate::oci::Artifact::describe).collect::<Vec<_>>(),
                kernels => Value::from(Serde(&heads)),
                rows => Value::from(Serde(&rows)),
                assumptions => Value::from(Serde(&assumed)),
                guests => Value::from(Serde(&guests)),
                complexity => Value::from(Serde(&complexity)),
                growth => growth,
                changes => Value::from(Serde(&changes(r))),
            })
        })
        .expect("the report template renders")
}

/// A cell's evidence: verdict, findings with the kernel's words, programs,
/// timings, and where its guest's evidence is.
fn cell<'a>(r: &Report, c: &'a Cell, k: &'a KernelRun, id: String) -> CellView<'a> {
    let mut entries = vec![text(
        "kernel release",
        c.kernel_release.as_deref().unwrap_or("?"),
    )];
    if let Some(e) = c.expected {
        entries.push(text("expected", e.as_str()));
    }
    for f in &c.findings {
        let program = f
            .program
            .as_ref()
            .map(|p| format!(", program {p}"))
            .unwrap_or_default();
        entries.push(text(
            "finding",
            format!("{} at {}{program}", f.code, f.stage.as_str()),
        ));
        entries.push(text("kernel said", &f.message));
        if let Some(fix) = &f.remediation {
            entries.push(text("fix", fix));
        }
        if !f.verifier_tail.is_empty() {
            entries.push(pre("verifier log (end)", f.verifier_tail.join("\n"), false));
        }
    }
    if let Some(floor) = super::floor_sentence(r, c) {
        entries.push(text("floor", floor));
    }
    if let Some(cmd) = c.command.as_ref().filter(|cmd| !cmd.output.is_empty()) {
        let term = match cmd.output_bytes as usize == cmd.output.len() {
            true => "loader output",
            false => "loader output (its last 64 KiB)",
        };
        entries.push(pre(term, cmd.output.as_str(), false));
    }
    for p in &c.programs {
        let runs = p
            .runs
            .map(|n| format!(", ran {n} times"))
            .unwrap_or_default();
        entries.push(text(
            "program",
            format!(
                "{} ({}): load {}, attach {}{runs}",
                p.name, p.section, p.load, p.attach
            ),
        ));
    }
    let t = &k.timings;
    entries.push(text(
        "timings",
        format!(
            "fetch {} ms, boot {} ms, validate {} ms, shutdown {} ms ({})",
            t.fetch_ms, t.boot_ms, t.validate_ms, t.shutdown_ms, k.accel
        ),
    ));
    if !matches!(c.status, Status::Pass | Status::ExpectedFail) && !k.console_tail.is_empty() {
        entries.push(pre(
            "console (end)",
            super::last(&k.console_tail, 12).join("\n"),
            true,
        ));
    }
    entries.push(Entry {
        links: vec![Link {
            text: "console, QEMU command line and evidence of this guest",
            href: format!("#guest-{}", k.kernel),
        }],
        ..text("guest", "")
    });
    CellView {
        id,
        object: &c.object,
        kernel: &c.kernel,
        status: status_name(c.status),
        code: c.code.map(|c| c.as_str()).unwrap_or(""),
        word: cell_word(c),
        short: short_word(c),
        entries,
    }
}

/// A verdict in a word or two for the grid (`helper` for
/// UNSUPPORTED_HELPER, `no kfunc` for MISSING_KFUNC); the colour says
/// whether it was expected, the title the whole of it.
fn short_word(c: &Cell) -> String {
    let code = |c: &Cell| {
        c.code.map_or("fail".to_string(), |code| {
            let s = code.as_str();
            let s = s.strip_prefix("UNSUPPORTED_").unwrap_or(s);
            match s.strip_prefix("MISSING_") {
                Some(rest) => format!("no {rest}"),
                None => s.to_string(),
            }
            .to_lowercase()
            .replace('_', " ")
        })
    };
    match c.status {
        Status::Pass => "pass".into(),
        Status::Fail | Status::ExpectedFail => code(c),
        Status::Unavailable => "n/a".into(),
        Status::InfraError => "no verdict".into(),
        Status::UnexpectedPass => "passes!".into(),
    }
}

/// `path` relative to `dir`, where both can be made absolute; else `path`.
fn relative(path: &Path, dir: Option<&Path>) -> String {
    let (Some(dir), Ok(path)) = (dir, std::path::absolute(path)) else {
        return path.display().to_string();
    };
    let Ok(dir) = std::path::absolute(dir) else {
        return path.display().to_string();
    };
    let (p, d): (Vec<_>, Vec<_>) = (path.components().collect(), dir.components().collect());
    let common = p.iter().zip(&d).take_while(|(a, b)| a == b).count();
    let mut out = std::path::PathBuf::new();
    for _ in common..d.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c);
    }
    out.display().to_string()
}

/// A kernel's guest: how it went, its console's end, the QEMU command line,
/// and the evidence files when `--evidence` kept them.
fn guest<'a>(k: &'a KernelRun, page_dir: Option<&Path>) -> Guest<'a> {
    let mut entries = vec![text("kernel release", k.release.as_deref().unwrap_or("?"))];
    if let (Some(p), Some(v)) = (&k.package, &k.version) {
        entries.push(text("package", format!("{p} {v}")));
    }
    entries.push(text("accelerator", &k.accel));
    for r in &k.retries {
        entries.push(text("retried", r));
    }
    if !k.qemu_argv.is_empty() {
        entries.push(pre("QEMU command line", k.qemu_argv.join(" "), false));
    }
    if !k.console_tail.is_empty() {
        entries.push(pre("console (end)", k.console_tail.join("\n"), true));
    }
    if let Some(dir) = &k.evidence {
        let links: Vec<Link> = ["console.log", "records.jsonl", "qemu-argv.txt", "config"]
            .into_iter()
            .map(|file| (file, dir.join(file)))
            .filter(|(_, path)| path.exists())
            .map(|(file, path)| Link {
                text: file,
                href: relative(&path, page_dir),
            })
            .collect();
        if !links.is_empty() {
            entries.push(Entry {
                links,
                ..text("evidence", "")
            });
        }
    }
    Guest {
        kernel: &k.kernel,
        entries,
    }
}

/// A state count, or `?` where the figures came from a program's info.
fn known(c: &crate::wire::Complexity, n: u64) -> String {
    match c.from_program_info {
        true => "?".into(),
        false => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_came_from_objects_and_kernels_is_escaped() {
        let report =
            crate::report::test_report(&["debian-12-6.1"], &["<b>\"quoted\"</b>.bpf.o"], |k| {
                k.outcome = crate::outcome::KernelOutcome::Unavailable {
                    reason: "<script>alert(1)</script>".into(),
                };
                k.console_tail = vec!["<img src=x onerror=alert(2)>".into()];
            });
        let page = html(&report);
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(!page.contains("<img src=x"), "{page}");
        assert!(!page.contains("<b>\"quoted"), "{page}");
        assert!(page.contains("&lt;b&gt;"), "{page}");
        assert!(page.contains("id=\"guest-debian-12-6.1\""), "{page}");
        assert!(page.starts_with("<!doctype html>"), "{}", &page[..40]);
    }

    #[test]
    fn the_grid_shows_short_verdicts_and_links_to_evidence_below_it() {
        let mut r = crate::report::test_report(&["k1", "k2"], &["o.bpf.o"], |_| {});
        r.cells[0].status = Status::Fail;
        r.cells[0].code = Some(crate::classify::Code::UnsupportedHelper);
        let page = html(&r);
        assert!(
            page.contains("<a href=\"#cell-0-0\" title=\"UNSUPPORTED_HELPER\">helper</a>"),
            "{page}"
        );
        assert!(page.contains("<a href=\"#cell-0-1\" title=\"unavailable\">n&#x2f;a</a>"));
        assert!(page.contains("<section class=\"cell-detail st-border-fail\" id=\"cell-0-0\">"));
        assert!(!page.contains("<details>"), "no cell opens inside the grid");
    }

    #[test]
    fn links_to_evidence_are_relative_to_the_page() {
        let base = Path::new("/ci/out");
        assert_eq!(
            relative(Path::new("/ci/out/evidence/k/console.log"), Some(base)),
            "evidence/k/console.log"
        );
        assert_eq!(
            relative(Path::new("/ci/evidence/console.log"), Some(base)),
            "../evidence/console.log"
        );
        assert_eq!(
            relative(Path::new("/x/console.log"), None),
            "/x/console.log"
        );
    }
}
