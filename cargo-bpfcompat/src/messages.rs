//! `--message-format json`: one JSON record per line on stdout, as cargo's
//! `--message-format json` does, each with a `reason`: `cell` (as soon as
//! its kernel is done), `kernel-finished`, and last `run-finished` with the
//! summary and the process's exit code.

use bpfcompat_engine::classify::Cell;
use bpfcompat_engine::outcome::KernelRun;
use bpfcompat_engine::report::Report;
use serde_json::{Value, json};

use crate::exit::Code;

fn emit(reason: &str, mut record: Value) {
    if let Value::Object(fields) = &mut record {
        fields.insert("reason".into(), Value::from(reason));
    }
    crate::stdout::outln!("{record}");
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
        }),
    );
}
