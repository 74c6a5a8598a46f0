//! `--message-format json`: one JSON record per line on stdout, as cargo's
//! `--message-format json` does, each with a `reason`: `cell` (as soon as
//! its kernel is done), `kernel-finished`, and last `run-finished` with the
//! summary and the process's exit code.

use bpfcompat_engine::classify::Cell;
use bpfcompat_engine::outcome::KernelRun;
use bpfcompat_engine::report::Report;
use serde_json::{Value, json};

use crate::exit::Code;

/// One record, its `reason` first (as cargo's are), then its fields.
fn emit(reason: &str, record: Value) {
    crate::stdout::outln!("{}", line(reason, &record));
}

fn line(reason: &str, record: &Value) -> String {
    let reason = Value::from(reason);
    match record {
        Value::Object(fields) if !fields.is_empty() => {
            let rest = record.to_string();
            format!("{{\"reason\":{reason},{}", &rest[1..])
        }
        _ => format!("{{\"reason\":{reason}}}"),
    }
}

/// A BPF object `list` found.
pub fn object(d: &crate::workspace::Discovered) {
    emit(
        "object",
        json!({
            "name": d.name,
            "package": d.package,
            "sha256": d.sha256,
            "bytes": d.size,
            "path": d.path,
            "found_in": d.found_in,
        }),
    );
}

/// A cell, in the report's cell format plus its `reason`.
pub fn cell(c: &Cell) {
    emit("cell", serde_json::to_value(c).expect("cells serialize"));
}

/// A kernel is done: how its guest went.
pub fn kernel_finished(run: &KernelRun) {
    emit(
        "kernel-finished",
        json!({
            "kernel": run.kernel,
            "release": run.release,
            "outcome": run.outcome,
            "accel": run.accel,
            "timings": run.timings,
        }),
    );
}

/// The last line: the summary and the exit code the process ends with.
pub fn run_finished(report: &Report, code: Code) {
    emit(
        "run-finished",
        json!({
            "summary": report.summary,
            "partial": report.partial,
            "exit_code": code as u8,
            "verdict": code,
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_records_reason_comes_first_and_it_stays_one_json_object() {
        let l = line("cell", &json!({"object": "o", "kernel": "k", "zz": [1]}));
        assert!(l.starts_with("{\"reason\":\"cell\","), "{l}");
        let back: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(back["object"], "o");
        assert_eq!(back["zz"][0], 1);
        assert_eq!(line("x", &json!({})), "{\"reason\":\"x\"}");
    }
}
