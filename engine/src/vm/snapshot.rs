//! Saving a booted guest: boot it with a job disk and a QMP monitor until
//! its agent awaits the job, then have QEMU migrate the machine to a file
//! (`migrate` to `exec:cat > FILE`). A later guest restores that file with
//! `-incoming` (see [`super::args`]) and reads its job from the disk.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use super::BootSpec;
use super::supervisor::{Guest, Seen, block_on, cancelled};
use crate::cancel::Cancel;
use crate::wire::Record;

/// Why a machine could not be saved (the caller boots cold instead).
#[derive(Debug)]
pub(crate) enum NotSaved {
    /// It failed this time, and why.
    Failed(String),
    /// Its kernel can never read a job disk: saving it again is no use.
    NoJobDisk {
        /// The device that never appeared.
        device: String,
    },
}

impl std::fmt::Display for NotSaved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotSaved::Failed(why) => f.write_str(why),
            NotSaved::NoJobDisk { device } => write!(
                f,
                "the agent failed: {}",
                crate::guest::init::no_job_disk_text(device)
            ),
        }
    }
}

/// Boots `spec` (which names a job disk and a monitor) until the agent
/// awaits its job, saves the machine to `out` and stops QEMU. Returns the
/// time it took.
pub(crate) fn save(
    qemu: &Path,
    spec: &BootSpec,
    out: &Path,
    timeout: Duration,
    cancel: &Cancel,
) -> Result<Duration, NotSaved> {
    let monitor = spec
        .monitor
        .as_deref()
        .ok_or(NotSaved::Failed("no monitor".into()))?;
    if out.to_string_lossy().contains('\'') {
        return Err(NotSaved::Failed(format!("{} holds a quote", out.display())));
    }
    let args = super::qemu_args(spec);
    block_on(async {
        let mut guest =
            Guest::spawn(qemu, &args, None).map_err(|e| NotSaved::Failed(e.to_string()))?;
        let saved =
            tokio::time::timeout(timeout, save_when_ready(&mut guest, monitor, out, cancel))
                .await
                .unwrap_or_else(|_| {
                    Err(NotSaved::Failed(format!(
                        "the machine was not saved within {}s",
                        timeout.as_secs()
                    )))
                });
        let took = guest.started.elapsed();
        guest.finish().await;
        saved.map(|()| took)
    })
    .map_err(|e| NotSaved::Failed(e.to_string()))?
}

/// Waits until the agent awaits its job, then migrates the machine to `out`.
async fn save_when_ready(
    guest: &mut Guest,
    monitor: &Path,
    out: &Path,
    cancel: &Cancel,
) -> Result<(), NotSaved> {
    let stop = cancelled(cancel);
    tokio::pin!(stop);
    let (mut exited, events) = guest.channels();
    loop {
        tokio::select! {
            status = exited.wait() => {
                let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
                return Err(NotSaved::Failed(format!("QEMU exited ({status}) before the agent was ready")));
            }
            seen = events.recv() => match seen {
                Some(Seen::Panic(line)) => return Err(NotSaved::Failed(format!("kernel panic: {line}"))),
                Some(Seen::Record(r)) => match *r {
                    Record::NoJobDisk { device } => return Err(NotSaved::NoJobDisk { device }),
                    Record::AgentError { message } => {
                        return Err(NotSaved::Failed(format!("the agent failed: {message}")));
                    }
                    Record::AwaitingJob { .. } => break,
                    _ => {}
                },
                None => return Err(NotSaved::Failed("the guest's streams closed before its agent was ready".into())),
            },
            _ = &mut stop => return Err(NotSaved::Failed("the run was stopped".into())),
        }
    }
    let mut qmp = Qmp::connect(monitor).await?;
    // The saved machine is private whatever the umask.
    let mut uri = String::from("exec:umask 077; cat > '");
    uri.push_str(&out.to_string_lossy());
    uri.push('\'');
    qmp.execute("migrate", serde_json::json!({ "uri": uri }))
        .await?;
    loop {
        let status = qmp.execute("query-migrate", serde_json::json!({})).await?;
        match status["status"].as_str() {
            Some("completed") => break,
            Some("failed" | "cancelled") => {
                return Err(NotSaved::Failed(format!("migration ended: {status}")));
            }
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    let _ = qmp.execute("quit", serde_json::json!({})).await;
    Ok(())
}

/// A QMP connection: one command at a time, events skipped.
struct Qmp {
    reader: tokio::io::Lines<BufReader<OwnedReadHalf>>,
    writer: OwnedWriteHalf,
}

impl Qmp {
    /// Connects (QEMU may still be creating the socket) and leaves the
    /// capabilities negotiation mode.
    async fn connect(path: &Path) -> Result<Qmp, NotSaved> {
        let started = std::time::Instant::now();
        let stream = loop {
            match UnixStream::connect(path).await {
                Ok(s) => break s,
                Err(_) if started.elapsed() < Duration::from_secs(5) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(e) => {
                    return Err(NotSaved::Failed(format!(
                        "cannot reach QEMU's monitor: {e}"
                    )));
                }
            }
        };
        let (read, writer) = stream.into_split();
        let mut qmp = Qmp {
            reader: BufReader::new(read).lines(),
            writer,
        };
        qmp.line().await?; // the greeting
        qmp.execute("qmp_capabilities", serde_json::json!({}))
            .await?;
        Ok(qmp)
    }

    async fn line(&mut self) -> Result<serde_json::Value, NotSaved> {
        let line = self
            .reader
            .next_line()
            .await
            .map_err(|e| NotSaved::Failed(format!("monitor: {e}")))?
            .ok_or_else(|| NotSaved::Failed("the monitor closed".into()))?;
        serde_json::from_str(&line)
            .map_err(|e| NotSaved::Failed(format!("monitor said `{line}`: {e}")))
    }

    /// Runs one command; its `return` value.
    async fn execute(
        &mut self,
        command: &str,
        arguments: serde_json::Value,
    ) -> Result<serde_json::Value, NotSaved> {
        let request = serde_json::json!({ "execute": command, "arguments": arguments });
        self.writer
            .write_all(format!("{request}\n").as_bytes())
            .await
            .map_err(|e| NotSaved::Failed(format!("monitor: {e}")))?;
        loop {
            let reply = self.line().await?;
            if reply.get("event").is_some() {
                continue;
            }
            if let Some(error) = reply.get("error") {
                return Err(NotSaved::Failed(format!("{command}: {error}")));
            }
            return Ok(reply.get("return").cloned().unwrap_or_default());
        }
    }
}
