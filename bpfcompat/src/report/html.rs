//! The HTML matrix: one self-contained file (no network, no external assets),
//! kernels in version order, each cell a coloured `<details>` that opens to
//! its evidence. It reads without JavaScript; a few lines of script add
//! filters.

use std::fmt::Write;

use super::Report;
use super::terminal::cell_word;
use crate::classify::{Cell, Status};
use crate::outcome::KernelRun;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

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

const STYLE: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table.matrix{border-collapse:collapse}
th,td{border:1px solid #ccc;padding:.3em .5em;vertical-align:top;text-align:left}
thead th{background:#f4f4f4} th small{font-weight:normal;color:#666}
td.cell summary{cursor:pointer;font-weight:600;white-space:nowrap}
.st-pass{background:#d8f5d8}.st-fail,.st-unexpected_pass{background:#f8d0d0}
.st-expected_fail{background:#fbeccc}.st-unavailable{background:#e6e6e6;color:#555}
.st-infra_error{background:#e6dcf5}
dl{margin:.4em 0;max-width:60em}dt{font-weight:600;margin-top:.3em}dd{margin-left:1em}
.scroll{overflow-x:auto;max-width:100%}
table.matrix tbody th,table.matrix thead th:first-child{position:sticky;left:0;background:#fff;z-index:1}
pre{background:#fff;border:1px solid #ddd;padding:.4em;overflow-x:auto;max-width:60em;font-size:12px}
.legend span{display:inline-block;padding:.1em .5em;margin-right:.4em;border:1px solid #ccc}
#filters{margin:.8em 0}
";

const SCRIPT: &str = "
document.getElementById('filters').hidden=false;
document.querySelectorAll('#filters input').forEach(function(box){
  box.addEventListener('change',function(){
    var hide=[].slice.call(document.querySelectorAll('#filters input:checked')).map(function(b){return b.value;});
    document.querySelectorAll('tbody tr').forEach(function(row){
      var cells=[].slice.call(row.querySelectorAll('td.cell'));
      var show=cells.some(function(c){return hide.indexOf(c.dataset.status)<0;});
      row.hidden=!show;
    });
  });
});
";

/// Renders the report as a self-contained HTML page.
pub fn html(r: &Report) -> String {
    let kernels = r.kernels_by_version();
    let s = &r.summary;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>bpfcompat report</title><style>{STYLE}</style></head><body>\
<h1>bpfcompat report</h1><p class=\"summary\">{}. Matrix: {}. {}.</p>",
        esc(&s.sentence()),
        esc(&r.matrix),
        esc(&r.tool)
    );
    if let Some(p) = &r.partial {
        let _ = write!(
            out,
            "<p class=\"partial\"><strong>Partial result:</strong> {}</p>",
            esc(p)
        );
    }
    out.push_str("<p class=\"legend\"><span class=\"st-pass\">pass</span><span class=\"st-expected_fail\">expected failure</span><span class=\"st-fail\">fail</span><span class=\"st-unavailable\">unavailable</span><span class=\"st-infra_error\">no verdict</span></p>\
<form id=\"filters\" hidden>Hide rows where every cell is: <label><input type=\"checkbox\" value=\"pass\"> pass</label> <label><input type=\"checkbox\" value=\"expected_fail\"> expected failure</label> <label><input type=\"checkbox\" value=\"unavailable\"> unavailable</label></form>\
<div class=\"scroll\"><table class=\"matrix\"><thead><tr><th>object</th>");
    for k in &kernels {
        let opt = if k.required { "" } else { " (optional)" };
        let _ = write!(
            out,
            "<th data-kernel=\"{}\">{}{opt}<br><small>{}</small></th>",
            esc(&k.kernel),
            esc(&k.kernel),
            esc(k.release.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</tr></thead><tbody>");
    for o in &r.objects {
        let _ = write!(out, "<tr><th scope=\"row\">{}</th>", esc(o));
        for k in &kernels {
            match r.cell(o, &k.kernel) {
                Some(c) => cell(&mut out, c, k),
                None => out.push_str("<td></td>"),
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    let assumed = r.assumptions();
    if !assumed.is_empty() {
        out.push_str("<h2>Assumptions</h2><ul class=\"assumptions\">");
        for (o, a) in assumed {
            let _ = write!(out, "<li><code>{}</code>: {}</li>", esc(o), esc(&a));
        }
        out.push_str("</ul>");
    }
    guests(&mut out, &kernels);
    let _ = writeln!(out, "<script>{SCRIPT}</script></body></html>");
    out
}

fn cell(out: &mut String, c: &Cell, k: &KernelRun) {
    let st = status_name(c.status);
    let _ = write!(
        out,
        "<td class=\"cell st-{st}\" data-object=\"{}\" data-kernel=\"{}\" data-status=\"{st}\" data-code=\"{}\"><details><summary>{}</summary><dl>",
        esc(&c.object),
        esc(&c.kernel),
        c.code.map(|c| c.as_str()).unwrap_or(""),
        esc(&cell_word(c))
    );
    let dd = |out: &mut String, t: &str, v: &str| {
        let _ = write!(out, "<dt>{t}</dt><dd>{}</dd>", esc(v));
    };
    dd(
        out,
        "kernel release",
        c.kernel_release.as_deref().unwrap_or("?"),
    );
    if let Some(e) = c.expected {
        dd(out, "expected", e.as_str());
    }
    for f in &c.findings {
        let what = format!(
            "{} at {:?}{}",
            f.code,
            f.stage,
            f.program
                .as_ref()
                .map(|p| format!(", program {p}"))
                .unwrap_or_default()
        );
        dd(out, "finding", &what);
        dd(out, "kernel said", &f.message);
        if let Some(fix) = &f.remediation {
            dd(out, "fix", fix);
        }
        if !f.verifier_tail.is_empty() {
            let _ = write!(
                out,
                "<dt>verifier log (end)</dt><dd><pre>{}</pre></dd>",
                esc(&f.verifier_tail.join("\n"))
            );
        }
    }
    for p in &c.programs {
        let runs = p
            .runs
            .map(|n| format!(", ran {n} times"))
            .unwrap_or_default();
        dd(
            out,
            "program",
            &format!(
                "{} ({}): load {}, attach {}{runs}",
                p.name, p.section, p.load, p.attach
            ),
        );
    }
    let t = &k.timings;
    dd(
        out,
        "timings",
        &format!(
            "fetch {} ms, boot {} ms, validate {} ms, shutdown {} ms ({})",
            t.fetch_ms, t.boot_ms, t.validate_ms, t.shutdown_ms, k.accel
        ),
    );
    if !matches!(c.status, Status::Pass | Status::ExpectedFail) && !k.console_tail.is_empty() {
        let _ = write!(
            out,
            "<dt>console (end)</dt><dd><pre class=\"console\">{}</pre></dd>",
            esc(&super::last(&k.console_tail, 12).join("\n"))
        );
    }
    let _ = write!(
        out,
        "<dt>guest</dt><dd><a href=\"#guest-{}\">console, QEMU command line and evidence of {}</a></dd>",
        esc(&k.kernel),
        esc(&k.kernel)
    );
    out.push_str("</dl></details></td>");
}

/// One section per kernel: how its guest went, its console's end, the QEMU
/// command line, and the evidence files when `--evidence` kept them.
fn guests(out: &mut String, kernels: &[&KernelRun]) {
    out.push_str("<h2>Guests</h2>");
    for k in kernels {
        let _ = write!(
            out,
            "<section class=\"guest\" id=\"guest-{}\"><h3>{}</h3><dl>",
            esc(&k.kernel),
            esc(&k.kernel)
        );
        let dd = |out: &mut String, t: &str, v: &str| {
            let _ = write!(out, "<dt>{t}</dt><dd>{}</dd>", esc(v));
        };
        dd(out, "kernel release", k.release.as_deref().unwrap_or("?"));
        if let (Some(p), Some(v)) = (&k.package, &k.version) {
            dd(out, "package", &format!("{p} {v}"));
        }
        dd(out, "accelerator", &k.accel);
        for r in &k.retries {
            dd(out, "retried", r);
        }
        if !k.qemu_argv.is_empty() {
            let _ = write!(
                out,
                "<dt>QEMU command line</dt><dd><pre>{}</pre></dd>",
                esc(&k.qemu_argv.join(" "))
            );
        }
        if !k.console_tail.is_empty() {
            let _ = write!(
                out,
                "<dt>console (end)</dt><dd><pre class=\"console\">{}</pre></dd>",
                esc(&k.console_tail.join("\n"))
            );
        }
        if let Some(dir) = &k.evidence {
            out.push_str("<dt>evidence</dt><dd>");
            for file in ["console.log", "records.jsonl", "qemu-argv.txt", "config"] {
                let path = dir.join(file);
                if path.exists() {
                    let _ = write!(
                        out,
                        "<a href=\"{}\">{file}</a> ",
                        esc(&path.display().to_string())
                    );
                }
            }
            out.push_str("</dd>");
        }
        out.push_str("</dl></section>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<a href=\"x\">&</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;"
        );
    }
}
