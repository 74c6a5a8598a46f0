//! The progress display while guests run (indicatif): one line per kernel,
//! on standard error, hidden when it is not a terminal.

use std::collections::BTreeMap;

use bpfcompat::classify::signal_name;
use bpfcompat::outcome::{KernelOutcome, KernelRun, Note};
use bpfcompat::report::note_text;
use bpfcompat::run::{Event, Plan};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    multi: MultiProgress,
    bars: BTreeMap<String, ProgressBar>,
}

impl Progress {
    /// `hidden`: no display at all (`--quiet`, machine-readable output).
    pub fn new(plan: &Plan, hidden: bool) -> Progress {
        let target = if hidden {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let multi = MultiProgress::with_draw_target(target);
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
        Progress { multi, bars }
    }

    pub fn event(&mut self, e: &Event) {
        let status = |kernel: &str, message: String| {
            if let Some(b) = self.bars.get(kernel) {
                b.set_message(message);
            }
        };
        match e {
            Event::UsingTcg { reason } => self.note(&note_text(&Note::UsingTcg {
                reason: reason.clone(),
            })),
            Event::KvmFallback { exit } => self.note(&note_text(&Note::KvmFallback {
                exit: exit.to_string(),
            })),
            Event::KernelStarted { kernel } => status(kernel, "checking kernel cache".into()),
            Event::Fetch { kernel, event } => status(kernel, event.to_string()),
            Event::BootAttempt { kernel, n: 1 } => status(kernel, "booting".into()),
            Event::BootAttempt { kernel, n } => status(kernel, format!("booting (attempt {n})")),
            Event::EvidenceNotWritten { kernel, error } => status(kernel, error.clone()),
            Event::KernelFinished { run } => {
                if let Some(b) = self.bars.get(&run.kernel) {
                    b.finish_with_message(summary(run));
                }
            }
        }
    }

    fn note(&self, text: &str) {
        let _ = self.multi.println(format!("note: {text}"));
    }

    pub fn finish(self) {
        for b in self.bars.values() {
            b.finish();
        }
    }
}

/// One line per finished kernel: what passed, or what went wrong.
fn summary(r: &KernelRun) -> String {
    let first = |s: &str| s.lines().next().unwrap_or_default().to_string();
    match &r.outcome {
        KernelOutcome::Completed => format!(
            "{} objects validated ({})",
            r.objects.len(),
            r.release.clone().unwrap_or_default()
        ),
        KernelOutcome::Unavailable { reason } => format!("unavailable: {}", first(reason)),
        KernelOutcome::Infra { reason } => format!("infrastructure error: {}", first(reason)),
        KernelOutcome::Panic { line } => format!("kernel panic: {line}"),
        KernelOutcome::Timeout { after_secs } => format!("timed out after {after_secs}s"),
        KernelOutcome::Interrupted { signal } => format!("stopped by {}", signal_name(*signal)),
    }
}
