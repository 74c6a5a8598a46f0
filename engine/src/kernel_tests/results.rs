//! One kernel booted for a test binary's tests, and what the boot said of
//! each test: its result, the code and words of the kernel where libbpf's
//! or the verifier's lines on its console name them, why tests without a
//! result have none.

use std::collections::BTreeMap;

use super::boot::boot_kernel;
use crate::classify::{Kernel, classify_log, explain_trace};
use crate::matrix::Matrix;
use crate::vm::{Boot, Exit};
use crate::wire::kernel_tests::{RunRequest, RunResults, TestResult};
use crate::wire::{Record, WIRE_VERSION, tail};

/// The console line the guest prints before each test body.
use bpfcompat::harness::CONSOLE_MARK;

/// Boots `req.kernel` with `req.binary` as `/init` for its tests.
pub fn run(req: &RunRequest) -> Result<RunResults, String> {
    if req.version != WIRE_VERSION {
        return Err(format!(
            "the test binary speaks wire version {}, this cargo-bpfcompat {WIRE_VERSION} (hint: use the cargo-bpfcompat of the same release as the `bpfcompat` your tests depend on)",
            req.version
        ));
    }
    let matrix = Matrix::load(&req.matrix).map_err(|e| e.to_string())?;
    let b = boot_kernel(
        &req.kernel,
        matrix.lock.get(&req.kernel),
        &req.binary,
        &req.tests,
        &req.binaries,
    )?;
    Ok(results(&b.boot, &b.release))
}

/// What one boot said about each test, and why the others have no result.
fn results(b: &Boot, release: &str) -> RunResults {
    let consoles = consoles_by_test(&b.console);
    let mut release = release.to_string();
    let mut kernel_btf = None;
    let mut raw = Vec::new();
    for r in &b.records {
        match r {
            Record::Hello {
                kernel_release,
                kernel_btf: btf,
                ..
            } => {
                release = kernel_release.clone();
                kernel_btf = Some(*btf);
            }
            Record::Test {
                name,
                passed,
                message,
                trace,
                ..
            } => raw.push((name.clone(), *passed, message.clone(), trace.clone())),
            _ => {}
        }
    }
    let config = BTreeMap::new();
    let tests = raw
        .into_iter()
        .map(|(name, passed, message, trace)| {
            let console = consoles.get(&name).map(Vec::as_slice).unwrap_or(&[]);
            let error = message.as_deref().unwrap_or("failed");
            let kernel = Kernel {
                btf: kernel_btf,
                release: Some(&release),
                config: &config,
            };
            // The call the kernel refused the test decides first; else the
            // words libbpf printed.
            let verdict = trace
                .as_deref()
                .filter(|_| !passed)
                .and_then(|t| explain_trace(t, console, kernel))
                .or_else(|| classify_log(console, error, kernel_btf, Some(&release)));
            let result = TestResult {
                passed,
                cause: cause(console, error, verdict.as_ref()),
                kernel_spoke: verdict.is_some(),
                code: verdict.and_then(|v| v.code).map(|c| c.as_str().to_string()),
                message,
            };
            (name, result)
        })
        .collect();
    RunResults {
        release,
        tests,
        ended: ended(b),
    }
}

/// Why a test failed: the classified cause when libbpf's words on the
/// console name one, then the test's own error; the test's console when
/// it timed out or died.
fn cause(console: &[String], error: &str, verdict: Option<&crate::classify::LogVerdict>) -> String {
    let mut out = match verdict {
        Some(v) => {
            let mut s = match v.code {
                Some(code) => format!("{code}: {}", v.message),
                None => format!("the verifier said: {}", v.message),
            };
            if let Some(fix) = &v.remediation {
                s.push_str(&format!("\n  fix: {fix}"));
            }
            s.push_str(&format!("\n  the test said: {error}"));
            s
        }
        None => error.to_string(),
    };
    let died = error.starts_with("timed out") || error.starts_with("the test process");
    if died && !console.is_empty() {
        let end = tail(console.to_vec(), 25).join("\n  ");
        out.push_str(&format!("\n  console during the test (end):\n  {end}"));
    }
    out
}

/// The console cut at the guest's marks: each test's lines, by name.
fn consoles_by_test(console: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in console.lines() {
        if let Some(at) = line.find(CONSOLE_MARK) {
            let name = line[at + CONSOLE_MARK.len()..].trim().to_string();
            out.entry(name.clone()).or_default();
            current = Some(name);
        } else if let Some(name) = &current {
            out.entry(name.clone()).or_default().push(line.to_string());
        }
    }
    out
}

/// Why tests without a result have none, with the console's end.
fn ended(b: &Boot) -> String {
    let console = tail(b.console.lines().map(str::to_string).collect(), 25).join("\n  ");
    match &b.exit {
        Exit::Panic { line } => {
            format!("the kernel panicked ({line})\n  console (end):\n  {console}")
        }
        Exit::Timeout { after } => format!(
            "the guest ran past {}s\n  console (end):\n  {console}",
            after.as_secs()
        ),
        Exit::QemuFailed { status, stderr } => format!("QEMU failed ({status}): {}", stderr.trim()),
        _ if b.agent_started_ms.is_none() => {
            format!("the guest never started the tests\n  console (end):\n  {console}")
        }
        _ => format!("the guest ended early\n  console (end):\n  {console}"),
    }
}
