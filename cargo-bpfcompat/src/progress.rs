//! The progress display while guests run (indicatif): one line per kernel,
//! on standard error, hidden when it is not a terminal.

use std::collections::BTreeMap;

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

    pub fn event(&mut self, e: Event) {
        match e {
            Event::Note(n) => {
                let _ = self.multi.println(format!("note: {n}"));
            }
            Event::Progress { kernel, message } => {
                if let Some(b) = self.bars.get(&kernel) {
                    b.set_message(message);
                }
            }
            Event::Finished {
                kernel, summary, ..
            } => {
                if let Some(b) = self.bars.get(&kernel) {
                    b.finish_with_message(summary);
                }
            }
        }
    }

    pub fn finish(self) {
        for b in self.bars.values() {
            b.finish();
        }
    }
}
