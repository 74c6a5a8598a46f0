//! Joining the reports of one run's partitions (`test --partition I/N` in N
//! CI jobs) into the report of the whole run. Each partition's report
//! carries its [`Scope`]; a merge refuses anything that would make the
//! merged verdict wrong: reports of different runs, a slice given twice,
//! cells in two reports, a slice that ran other kernels than its partition
//! says, and (unless the caller allows a partial result) a missing slice.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::Report;
use crate::classify::{Cell, Status};
use crate::partition::Partition;

/// Which run a report belongs to and which slice of it it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    /// The slice, when the run was partitioned.
    pub partition: Option<Partition>,
    /// Every kernel the run selected, in matrix order, before partitioning.
    pub run_kernels: Vec<String>,
    /// sha256 of each object (or command binary) by report name.
    pub digests: BTreeMap<String, String>,
    /// What shapes the verdicts besides objects and kernels (mode, validator,
    /// map sizing), as the run's flags spelled them.
    pub settings: String,
}

impl Scope {
    /// Why two scopes are not of one run, or `None` when they are.
    fn differs_from(&self, other: &Scope) -> Option<String> {
        if self.run_kernels != other.run_kernels {
            return Some(format!(
                "they select different kernels ({} vs {})",
                self.run_kernels.join(", "),
                other.run_kernels.join(", ")
            ));
        }
        let names = |s: &Scope| s.digests.keys().cloned().collect::<BTreeSet<_>>();
        if names(self) != names(other) {
            return Some("they validate different objects".into());
        }
        if let Some(name) = self
            .digests
            .iter()
            .find(|(name, d)| other.digests.get(*name) != Some(d))
            .map(|(name, _)| name)
        {
            return Some(format!("`{name}` is not the same build in both"));
        }
        if self.settings != other.settings {
            return Some(format!(
                "they ran with different settings ({} vs {})",
                self.settings, other.settings
            ));
        }
        let kinds = |s: &Scope| s.partition.map(|p| (p.kind, p.total));
        if kinds(self) != kinds(other) {
            let show = |s: &Scope| s.partition.map_or("no partition".into(), |p| p.to_string());
            return Some(format!(
                "they are partitioned differently ({} vs {})",
                show(self),
                show(other)
            ));
        }
        None
    }
}

/// Merges the reports of one run's slices, each named by `label` (its file)
/// in errors. With `allow_partial`, missing slices are accepted and the
/// result says which kernels were not run; nothing else is ever accepted.
pub fn merge(reports: &[(String, Report)], allow_partial: bool) -> Result<Report, String> {
    let (first_label, first) = reports.first().ok_or("nothing to merge")?;
    let scope_of = |(label, r): &(String, Report)| {
        r.scope.clone().ok_or_else(|| {
            format!(
                "{label} does not say which run it belongs to (written by `test` of an older bpfcompat?): merge needs reports of `cargo bpfcompat test --partition`"
            )
        })
    };
    let base = scope_of(&reports[0])?;
    let mut slices: BTreeMap<usize, &str> = BTreeMap::new();
    let mut cells: BTreeMap<(String, String), &str> = BTreeMap::new();
    for entry in reports {
        let (label, r) = entry;
        if r.tool != first.tool {
            return Err(format!(
                "{first_label} was written by {} and {label} by {}: shards of one run come from one build\n  (hint: run every slice with the same cargo-bpfcompat)",
                first.tool, r.tool
            ));
        }
        consistent(label, r)?;
        let scope = scope_of(entry)?;
        if let Some(why) = base.differs_from(&scope) {
            return Err(format!(
                "{first_label} and {label} are reports of different runs: {why}\n  (hint: merge the reports of one run, from one commit and one set of flags)"
            ));
        }
        let index = scope.partition.map_or(1, |p| p.index);
        if let Some(other) = slices.insert(index, label) {
            let which = scope
                .partition
                .map_or("the whole run".into(), |p| p.to_string());
            return Err(format!("{other} and {label} both hold {which}"));
        }
        let expected: Vec<&str> = match scope.partition {
            Some(p) => p.select(scope.run_kernels.iter().map(String::as_str)),
            None => scope.run_kernels.iter().map(String::as_str).collect(),
        };
        let ran: Vec<&str> = r.kernels.iter().map(|k| k.kernel.as_str()).collect();
        if ran != expected {
            return Err(format!(
                "{label} ran {} but its slice is {}",
                list(&ran),
                list(&expected)
            ));
        }
        for c in &r.cells {
            if let Some(other) = cells.insert((c.object.clone(), c.kernel.clone()), label) {
                return Err(format!(
                    "{other} and {label} both have a cell for {} on {}",
                    c.object, c.kernel
                ));
            }
        }
    }
    let total = base.partition.map_or(1, |p| p.total);
    let missing: Vec<Partition> = base
        .partition
        .iter()
        .flat_map(|p| (1..=total).map(|i| p.slice(i)))
        .filter(|p| !slices.contains_key(&p.index))
        .collect();
    let partial = if missing.is_empty() {
        None
    } else {
        let not_run: Vec<&str> = missing
            .iter()
            .flat_map(|p| p.select(base.run_kernels.iter().map(String::as_str)))
            .collect();
        let what = format!(
            "{} of {total} slices missing ({}): not run on {}",
            missing.len(),
            missing
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            list(&not_run)
        );
        if !allow_partial {
            return Err(format!(
                "{what}\n  (hint: give every slice's report, or --allow-partial to merge what there is and say so)"
            ));
        }
        Some(what)
    };
    Ok(join(reports, first, base, partial))
}

/// A shard whose cells disagree with themselves or with its own summary
/// was changed after it was written: it is refused, never merged into a
/// verdict (the merged summary is counted from the cells again anyway).
fn consistent(label: &str, r: &Report) -> Result<(), String> {
    let edited = |why: String| {
        Err(format!(
            "{label} does not agree with itself: {why}\n  (hint: merge the reports as `test` wrote them)"
        ))
    };
    for c in &r.cells {
        if c.status == Status::Pass && (c.code.is_some() || !c.findings.is_empty()) {
            return edited(format!(
                "{} on {} passes but has findings ({})",
                c.object,
                c.kernel,
                c.code.map_or("?", |c| c.as_str())
            ));
        }
        if matches!(c.status, Status::Fail | Status::InfraError) && c.findings.is_empty() {
            return edited(format!(
                "{} on {} is {:?} without a finding",
                c.object, c.kernel, c.status
            ));
        }
    }
    let mut recounted = r.clone();
    recounted.recount();
    if recounted.summary != r.summary || recounted.exit_code != r.exit_code {
        return edited(format!(
            "its summary says exit {:?}, its cells give {:?}",
            r.exit_code, recounted.exit_code
        ));
    }
    Ok(())
}

fn list(kernels: &[&str]) -> String {
    if kernels.is_empty() {
        "no kernels".into()
    } else {
        kernels.join(", ")
    }
}

/// The checked reports as one: kernels in the run's order, cells
/// kernel-major, notes once each.
fn join(
    reports: &[(String, Report)],
    first: &Report,
    base: Scope,
    partial: Option<String>,
) -> Report {
    let position = |k: &str| base.run_kernels.iter().position(|x| x == k);
    let mut kernels: Vec<_> = reports
        .iter()
        .flat_map(|(_, r)| r.kernels.iter().cloned())
        .collect();
    kernels.sort_by_key(|k| position(&k.kernel));
    let objects = first.objects.clone();
    let object_pos = |o: &str| objects.iter().position(|x| x == o);
    let mut cells: Vec<Cell> = reports
        .iter()
        .flat_map(|(_, r)| r.cells.iter().cloned())
        .collect();
    cells.sort_by_key(|c| (position(&c.kernel), object_pos(&c.object)));
    let mut notes: Vec<String> = Vec::new();
    for n in reports.iter().flat_map(|(_, r)| &r.notes) {
        if !notes.contains(n) {
            notes.push(n.clone());
        }
    }
    let allow = reports.iter().all(|(_, r)| r.allow_unavailable);
    let mut merged = Report::from_parts(&first.matrix, objects, kernels, cells, notes, allow);
    merged.scope = Some(Scope {
        partition: None,
        ..base
    });
    merged.partial = partial;
    // Every shard read the same objects: their floors, once each.
    for f in reports.iter().flat_map(|(_, r)| &r.floors) {
        if !merged.floors.iter().any(|m| m.object == f.object) {
            merged.floors.push(f.clone());
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{KernelOutcome, KernelRun, RunOutput};
    use crate::report::ExitCode;

    const RUN: [&str; 3] = ["k1", "k2", "k3"];

    /// The report of slice `partition` of a run over [`RUN`] with one object.
    fn slice(partition: &str) -> (String, Report) {
        let p: Partition = partition.parse().unwrap();
        let kernels = p
            .select(RUN)
            .into_iter()
            .map(|k| {
                let mut run = KernelRun::on_host("6.1.0".into(), true, Vec::new());
                run.kernel = k.to_string();
                run.outcome = KernelOutcome::Unavailable {
                    reason: "test".into(),
                };
                run
            })
            .collect();
        let output = RunOutput {
            kernels,
            notes: Vec::new(),
        };
        let mut r = Report::new("m", vec!["obj".into()], output, true, &Default::default());
        r.scope = Some(Scope {
            partition: Some(p),
            run_kernels: RUN.map(String::from).to_vec(),
            digests: [("obj".to_string(), "aa".to_string())].into(),
            settings: "mode=attach".into(),
        });
        (format!("{partition}.json"), r)
    }

    #[test]
    fn every_slice_once_merges_into_the_whole_run() {
        let mut all = [slice("count:2/3"), slice("count:1/3"), slice("count:3/3")];
        for (_, r) in &mut all {
            r.floors = vec![crate::floor::ObjectFloor {
                object: "obj".into(),
                floor: Some("5.8".into()),
                needs: Vec::new(),
            }];
        }
        let merged = merge(&all, false).unwrap();
        assert_eq!(merged.floors.len(), 1, "the floors, once each");
        let kernels: Vec<&str> = merged.kernels.iter().map(|k| k.kernel.as_str()).collect();
        assert_eq!(kernels, RUN, "in the run's order");
        assert_eq!(merged.cells.len(), 3);
        assert_eq!(merged.partial, None);
    }

    #[test]
    fn a_missing_slice_is_refused_unless_partial_is_allowed_and_then_said() {
        let two = [slice("hash:1/2")];
        let err = merge(&two, false).unwrap_err();
        assert!(
            err.contains("hash:2/2") && err.contains("--allow-partial"),
            "{err}"
        );
        let merged = merge(&two, true).unwrap();
        let partial = merged.partial.unwrap();
        let missing = "hash:2/2".parse::<Partition>().unwrap().select(RUN);
        assert!(partial.contains(&missing.join(", ")), "{partial}");
    }

    #[test]
    fn a_shard_edited_to_pass_or_from_another_build_is_refused() {
        // A failing cell turned into a pass by hand.
        let mut edited = slice("count:1/2");
        edited.1.cells[0].status = Status::Fail;
        edited.1.recount();
        let mut to_pass = edited.clone();
        to_pass.1.cells[0].status = Status::Pass;
        let err = merge(&[to_pass, slice("count:2/2")], false).unwrap_err();
        assert!(
            err.contains("does not agree with itself") && err.contains("passes but has findings"),
            "{err}"
        );
        // Its summary says pass where its cells say regression.
        let mut summary = edited.clone();
        summary.1.exit_code = ExitCode::Pass;
        let err = merge(&[summary, slice("count:2/2")], false).unwrap_err();
        assert!(err.contains("its summary says"), "{err}");
        // As written, it merges, and the merged summary is its cells'.
        let merged = merge(&[edited, slice("count:2/2")], false).unwrap();
        assert_eq!(merged.exit_code, ExitCode::Regression);
        let mut other = slice("count:2/2");
        other.1.tool = "bpfcompat 0.0.9".into();
        let err = merge(&[slice("count:1/2"), other], false).unwrap_err();
        assert!(err.contains("bpfcompat 0.0.9"), "{err}");
    }

    #[test]
    fn an_empty_slice_counts_as_given() {
        let all: Vec<_> = (1..=4).map(|i| slice(&format!("count:{i}/4"))).collect();
        assert!(all[3].1.kernels.is_empty());
        assert_eq!(merge(&all, false).unwrap().cells.len(), 3);
    }

    #[test]
    fn duplicates_overlaps_other_runs_and_wrong_slices_are_refused_even_when_partial() {
        let dup = [slice("count:1/2"), slice("count:1/2"), slice("count:2/2")];
        let err = merge(&dup, true).unwrap_err();
        assert!(err.contains("both hold count:1/2"), "{err}");

        let mut other = slice("count:2/2");
        other
            .1
            .scope
            .as_mut()
            .unwrap()
            .digests
            .insert("obj".into(), "bb".into());
        let err = merge(&[slice("count:1/2"), other], true).unwrap_err();
        assert!(
            err.contains("different runs") && err.contains("`obj`"),
            "{err}"
        );

        let mut mixed = slice("count:2/3");
        mixed.1.scope.as_mut().unwrap().partition = Some("hash:2/3".parse().unwrap());
        let err = merge(&[slice("count:1/3"), mixed], true).unwrap_err();
        assert!(err.contains("partitioned differently"), "{err}");

        let mut wrong = slice("count:2/2");
        wrong.1.scope.as_mut().unwrap().partition = Some("count:1/2".parse().unwrap());
        wrong.0 = "relabelled.json".into();
        let err = merge(&[wrong], true).unwrap_err();
        assert!(
            err.contains("relabelled.json ran k2 but its slice is k1, k3"),
            "{err}"
        );

        let mut unscoped = slice("count:1/1");
        unscoped.1.scope = None;
        let err = merge(&[unscoped], true).unwrap_err();
        assert!(err.contains("--partition"), "{err}");
    }

    #[test]
    fn two_reports_of_the_whole_run_are_refused() {
        let mut whole = slice("count:1/1");
        whole.1.scope.as_mut().unwrap().partition = None;
        let err = merge(&[whole.clone(), whole], true).unwrap_err();
        assert!(err.contains("both hold the whole run"), "{err}");
    }
}
