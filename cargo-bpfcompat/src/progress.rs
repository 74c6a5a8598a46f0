//! Progress while guests run, on standard error. In a terminal (indicatif):
//! an overall bar (kernels done of all, ETA) above one line per kernel,
//! each timed from its own start. Elsewhere (a CI log): cargo-style status
//! lines, one per step. Notes (TCG, the KVM fallback) are printed always.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Instant;

use bpfcompat_engine::cancel::signal_name;
use bpfcompat_engine::kernel::FetchEvent;
use bpfcompat_engine::outcome::{KernelOutcome, KernelRun, Note};
use bpfcompat_engine::report::note_text;
use bpfcompat_engine::run::{Event, Plan};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::render::count;

pub struct Progress {
    display: Display,
    /// When each kernel's turn began.
    started: BTreeMap<String, Instant>,
}

enum Display {
    /// `--quiet` or machine-readable output: notes only.
    Hidden,
    /// A CI log: status lines.
    Lines,
    /// A terminal: bars.
    Bars {
        multi: MultiProgress,
        overall: ProgressBar,
        bars: BTreeMap<String, ProgressBar>,
    },
}

impl Progress {
    /// `hidden`: no progress at all (`--quiet`, machine-readable output).
    pub fn new(plan: &Plan, hidden: bool) -> Progress {
        let display = if hidden {
            Display::Hidden
        } else if !std::io::stderr().is_terminal() {
            Display::Lines
        } else {
            bars(plan)
        };
        Progress {
            display,
            started: BTreeMap::new(),
        }
    }

    pub fn event(&mut self, e: &Event) {
        match e {
            Event::UsingTcg { reason } => self.note(&note_text(&Note::UsingTcg {
                reason: reason.clone(),
            })),
            Event::KvmFallback { exit } => self.note(&note_text(&Note::KvmFallback {
                exit: exit.to_string(),
            })),
            Event::KernelStarted { kernel } => {
                self.started.insert(kernel.clone(), Instant::now());
                if let Display::Bars { bars, .. } = &self.display
                    && let Some(b) = bars.get(kernel)
                {
                    b.reset_elapsed();
                }
                self.status(kernel, "Checking", "kernel cache".into());
            }
            Event::Fetch { kernel, event } => match event {
                FetchEvent::Downloading { package, bytes, .. } => self.status(
                    kernel,
                    "Fetching",
                    format!("{package} ({:.1} MB)", *bytes as f64 / 1e6),
                ),
                FetchEvent::Received {
                    package,
                    received,
                    total,
                } => {
                    // Bars only: a log gets the one Fetching line.
                    if let Display::Bars { bars, .. } = &self.display
                        && let Some(b) = bars.get(kernel)
                    {
                        b.set_message(format!(
                            "fetching {package} {:.1}/{:.1} MB",
                            *received as f64 / 1e6,
                            *total as f64 / 1e6
                        ));
                    }
                }
                other => self.status(kernel, "Refetching", other.to_string()),
            },
            Event::Saving { kernel } => {
                self.status(kernel, "Saving", "machine (for warm guests)".into());
            }
            Event::Restoring { kernel } => self.status(kernel, "Restoring", String::new()),
            Event::Cold { kernel, reason } => {
                self.status(kernel, "Cold", format!("boot: {reason}"));
            }
            Event::BootAttempt { kernel, n: 1 } => self.status(kernel, "Booting", String::new()),
            Event::BootAttempt { kernel, n } => {
                self.status(kernel, "Booting", format!("(attempt {n})"));
            }
            Event::EvidenceNotWritten { kernel, error } => {
                self.status(kernel, "Warning", error.clone());
            }
            Event::KernelFinished { run } => self.finished(run),
        }
    }

    /// One step of a kernel: a status line, or the kernel's bar message.
    fn status(&self, kernel: &str, verb: &str, detail: String) {
        match &self.display {
            Display::Hidden => {}
            Display::Lines if detail.is_empty() => {
                eprintln!("{} {kernel}", crate::render::verb(verb))
            }
            Display::Lines => eprintln!("{} {kernel} {detail}", crate::render::verb(verb)),
            Display::Bars { bars, .. } => {
                if let Some(b) = bars.get(kernel) {
                    b.set_message(format!("{} {detail}", verb.to_lowercase()));
                }
            }
        }
    }

    fn finished(&mut self, run: &KernelRun) {
        let secs = self
            .started
            .get(&run.kernel)
            .map_or(0.0, |t| t.elapsed().as_secs_f64());
        match &self.display {
            Display::Hidden => {}
            Display::Lines => {
                eprintln!(
                    "{} {}: {} in {secs:.1} s",
                    crate::render::verb("Finished"),
                    run.kernel,
                    summary(run)
                );
            }
            Display::Bars { overall, bars, .. } => {
                if let Some(b) = bars.get(&run.kernel) {
                    b.finish_with_message(summary(run));
                }
                overall.inc(1);
            }
        }
    }

    fn note(&self, text: &str) {
        match &self.display {
            Display::Bars { multi, .. } => {
                let _ = multi.println(format!("note: {text}"));
            }
            _ => eprintln!("{} {text}", crate::render::label("note")),
        }
    }

    pub fn finish(self) {
        if let Display::Bars { overall, .. } = &self.display {
            overall.finish_and_clear();
        }
    }
}

/// The terminal display: the overall bar, then a line per kernel.
fn bars(plan: &Plan) -> Display {
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let overall = multi.add(ProgressBar::new(plan.kernels.len() as u64));
    overall.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} kernels, {elapsed} (ETA {eta})")
            .expect("valid template"),
    );
    let style = ProgressStyle::with_template("{spinner} {prefix:<20} {elapsed:>4} {wide_msg}")
        .expect("valid template");
    let bars = plan
        .kernels
        .iter()
        .map(|k| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(style.clone());
            bar.set_prefix(k.profile.name.clone());
            bar.set_message("queued");
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            (k.profile.name.clone(), bar)
        })
        .collect();
    Display::Bars {
        multi,
        overall,
        bars,
    }
}

/// One line per finished kernel: what passed, or what went wrong.
fn summary(r: &KernelRun) -> String {
    let first = |s: &str| s.lines().next().unwrap_or_default().to_string();
    match &r.outcome {
        KernelOutcome::Completed if !r.commands.is_empty() => format!(
            "{} ({})",
            count(r.commands.len(), "command run", "command runs"),
            r.release.clone().unwrap_or_default()
        ),
        KernelOutcome::Completed => format!(
            "{} validated ({})",
            count(r.objects.len(), "object", "objects"),
            r.release.clone().unwrap_or_default()
        ),
        KernelOutcome::Unavailable { reason } => format!("unavailable: {}", first(reason)),
        KernelOutcome::Infra { reason } => format!("infrastructure error: {}", first(reason)),
        KernelOutcome::Panic { line } => format!("kernel panic: {line}"),
        KernelOutcome::Timeout { after_secs } => format!("timed out after {after_secs}s"),
        KernelOutcome::Interrupted { signal } => format!("stopped by {}", signal_name(*signal)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finished_kernel_counts_its_objects_in_the_right_number() {
        let mut r = KernelRun::new("debian-12-6.1", true);
        r.outcome = KernelOutcome::Completed;
        r.release = Some("6.1.0".into());
        r.objects = vec![Default::default()];
        assert_eq!(summary(&r), "1 object validated (6.1.0)");
        r.objects.push(Default::default());
        assert_eq!(summary(&r), "2 objects validated (6.1.0)");
    }
}
