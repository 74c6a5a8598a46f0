//! Saving a booted guest: boot it with a job disk and a QMP monitor until
//! its agent awaits the job, then have QEMU migrate the machine to a file
//! (`migrate` to `exec:cat > FILE`). A later guest restores that file with
//! `-incoming` (see [`super::args`]) and reads its job from the disk.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use super::BootSpec;
use super::process::{Drains, private_empty_file, read_records, spawn};
use crate::cancel::Cancel;
use crate::errors::VmError;
use crate::wire::Record;

/// Why a machine could not be saved (the caller boots cold instead).
#[derive(Debug)]
pub struct NotSaved(pub String);

/// Boots `spec` (which names a job disk and a monitor) until the agent
/// awaits its job, saves the machine to `out` and stops QEMU. Returns the
/// time it took.
pub fn save(
    qemu: &Path,
    spec: &BootSpec,
    out: &Path,
    timeout: Duration,
    cancel: &Cancel,
) -> Result<Duration, NotSaved> {
    let monitor = spec
        .monitor
        .as_deref()
        .ok_or(NotSaved("no monitor".into()))?;
    if out.to_string_lossy().contains('\'') {
        return Err(NotSaved(format!("{} holds a quote", out.display())));
    }
    let fail = |e: VmError| NotSaved(e.to_string());
    private_empty_file(&spec.results)
        .map_err(|e| NotSaved(format!("cannot create {}: {e}", spec.results.display())))?;
    let args = super::qemu_args(spec);
    let started = Instant::now();
    let mut child = spawn(qemu, &args).map_err(fail)?;
    let drains = Drains::start(&mut child.0);
    let result = (|| {
        loop {
            if let Ok(Some(status)) = child.0.try_wait() {
                return Err(NotSaved(format!(
                    "QEMU exited ({status}) before the agent was ready"
                )));
            }
            if let Some(line) = drains.panic_line() {
                return Err(NotSaved(format!("kernel panic: {line}")));
            }
            let (records, _) = read_records(&spec.results);
            if let Some(Record::AgentError { message }) = records
                .iter()
                .find(|r| matches!(r, Record::AgentError { .. }))
            {
                return Err(NotSaved(format!("the agent failed: {message}")));
            }
            if records
                .iter()
                .any(|r| matches!(r, Record::AwaitingJob { .. }))
            {
                break;
            }
            if started.elapsed() > timeout || cancel.signal().is_some() {
                return Err(NotSaved("the agent was not ready in time".into()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut qmp = Qmp::connect(monitor)?;
        let mut uri = String::from("exec:cat > '");
        uri.push_str(&out.to_string_lossy());
        uri.push('\'');
        qmp.execute("migrate", serde_json::json!({ "uri": uri }))?;
        loop {
            let status = qmp.execute("query-migrate", serde_json::json!({}))?;
            match status["status"].as_str() {
                Some("completed") => break,
                Some("failed" | "cancelled") => {
                    return Err(NotSaved(format!("migration ended: {status}")));
                }
                _ if started.elapsed() > timeout => {
                    return Err(NotSaved("the migration did not finish in time".into()));
                }
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        let _ = qmp.execute("quit", serde_json::json!({}));
        Ok(started.elapsed())
    })();
    drop(child);
    let _ = drains.finish(super::Exit::PoweredOff);
    result
}

/// A QMP connection: one command at a time, events skipped.
struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connects (QEMU may still be creating the socket) and leaves the
    /// capabilities negotiation mode.
    fn connect(path: &Path) -> Result<Qmp, NotSaved> {
        let started = Instant::now();
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(_) if started.elapsed() < Duration::from_secs(5) => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(NotSaved(format!("cannot reach QEMU's monitor: {e}"))),
            }
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
        let writer = stream
            .try_clone()
            .map_err(|e| NotSaved(format!("monitor: {e}")))?;
        let mut qmp = Qmp {
            reader: BufReader::new(stream),
            writer,
        };
        qmp.line()?; // the greeting
        qmp.execute("qmp_capabilities", serde_json::json!({}))?;
        Ok(qmp)
    }

    fn line(&mut self) -> Result<serde_json::Value, NotSaved> {
        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .map_err(|e| NotSaved(format!("monitor: {e}")))?;
        serde_json::from_str(&line).map_err(|e| NotSaved(format!("monitor said `{line}`: {e}")))
    }

    /// Runs one command; its `return` value.
    fn execute(
        &mut self,
        command: &str,
        arguments: serde_json::Value,
    ) -> Result<serde_json::Value, NotSaved> {
        let request = serde_json::json!({ "execute": command, "arguments": arguments });
        writeln!(self.writer, "{request}").map_err(|e| NotSaved(format!("monitor: {e}")))?;
        loop {
            let reply = self.line()?;
            if reply.get("event").is_some() {
                continue;
            }
            if let Some(error) = reply.get("error") {
                return Err(NotSaved(format!("{command}: {error}")));
            }
            return Ok(reply.get("return").cloned().unwrap_or_default());
        }
    }
}
