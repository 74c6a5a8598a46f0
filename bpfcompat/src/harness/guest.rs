//! Inside the guest: run the requested test bodies, report, power off.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use super::{Outcome, registered};
use crate::guest::init::{power_off, start, uptime_ms};
use crate::wire::{JOB_FILE, Job, Record};

/// Runs the test bodies the job names, reports each, powers off.
pub(crate) fn run() -> ! {
    let mut port = start("bpfcompat");
    let job = std::fs::read(JOB_FILE)
        .map_err(|e| e.to_string())
        .and_then(|b| Job::parse(&b));
    let wanted = match job {
        Ok(job) => job.tests,
        Err(message) => {
            let _ = port.send(&Record::AgentError {
                message: format!("cannot read {JOB_FILE}: {message}"),
            });
            power_off();
        }
    };
    let tests = registered();
    for name in &wanted {
        let started = Instant::now();
        let (passed, message) = match tests.iter().find(|t| t.name == name) {
            None => (false, Some(format!("no test `{name}` in this binary"))),
            Some(t) => match catch_unwind(AssertUnwindSafe(t.run)) {
                Ok(Outcome::Pass) => (true, None),
                Ok(Outcome::Fail(e)) => (false, Some(e)),
                Err(panic) => (false, Some(format!("panicked: {}", panic_message(&*panic)))),
            },
        };
        let _ = port.send(&Record::Test {
            name: name.clone(),
            passed,
            message,
            duration_ms: started.elapsed().as_millis() as u64,
        });
    }
    let _ = port.send(&Record::Done {
        uptime_ms: uptime_ms(),
    });
    power_off();
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}
