//! The evidence directory: per kernel the console, the raw result records,
//! the QEMU command line and the kernel config.

use std::path::{Path, PathBuf};

use crate::vm::Boot;

/// Writes one boot's evidence below `root/<kernel>/`. `console.log` is always
/// the latest boot; a retried boot's console is kept as `console.attempt-N.log`. Evidence is best effort: a failure to write it is
/// returned as a note, never a verdict.
pub(crate) fn write(
    root: &Path,
    kernel: &str,
    attempt: u32,
    boot: &Boot,
    config: Option<&Path>,
) -> Result<PathBuf, String> {
    let dir = root.join(kernel);
    let io = |e: std::io::Error| format!("evidence for {kernel}: {e}");
    std::fs::create_dir_all(&dir).map_err(io)?;
    if attempt > 1 {
        let earlier = dir.join(format!("console.attempt-{}.log", attempt - 1));
        std::fs::rename(dir.join("console.log"), earlier).map_err(io)?;
    }
    std::fs::write(dir.join("console.log"), &boot.console).map_err(io)?;
    let records: String = boot.records.iter().map(|r| r.to_line() + "\n").collect();
    std::fs::write(dir.join("records.jsonl"), records).map_err(io)?;
    if !boot.malformed.is_empty() {
        let lines: String = boot
            .malformed
            .iter()
            .map(|m| m.line.clone() + "\n")
            .collect();
        std::fs::write(dir.join("malformed-records.txt"), lines).map_err(io)?;
    }
    std::fs::write(dir.join("qemu-argv.txt"), boot.argv.join(" ") + "\n").map_err(io)?;
    if let Some(c) = config {
        std::fs::copy(c, dir.join("config")).map_err(io)?;
    }
    Ok(dir)
}
