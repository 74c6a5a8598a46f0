//! Alternatives a loader chooses between at run time.
//!
//! Tools ship one hook several ways (fentry and kprobe on one function;
//! tp_btf, raw_tp and tracepoint on one tracepoint) and enable the one the
//! kernel supports. Such programs form a group; per kernel the first of a
//! group that loads and attaches is chosen and the others are not counted.
//! Declared `variants` are the explicit form and win: a program in one is
//! never grouped again. Within an inferred group the newer mechanism is
//! preferred, as loaders do. Two programs attached to one hook the same
//! way are two features, never alternatives.

use std::collections::BTreeMap;

use bpfcompat_engine::wire::{Fixups, Hook, ObjectReport, Outcome, ProgramReport, VariantChoice};

/// The groups the programs form by hook, each in order of preference, for
/// the programs no declared group names.
pub fn inferred(programs: &[ProgramReport], declared: &[Vec<String>]) -> Vec<Vec<String>> {
    let mut by_hook: BTreeMap<String, Vec<(u8, &str)>> = BTreeMap::new();
    for p in programs {
        if declared.iter().flatten().any(|d| d == &p.name) {
            continue;
        }
        if let Some((hook, rank)) = Hook::new(&p.section).alternative() {
            by_hook.entry(hook).or_default().push((rank, &p.name));
        }
    }
    // Only one program per mechanism: two programs that attach to one hook
    // the same way both run there (two features, not two ways), so the
    // failure of either one counts.
    by_hook
        .into_values()
        .filter(|g| g.len() > 1)
        .filter_map(|mut g| {
            g.sort();
            let one_per_mechanism = g.windows(2).all(|w| w[0].0 != w[1].0);
            one_per_mechanism.then(|| g.into_iter().map(|(_, n)| n.to_string()).collect())
        })
        .collect()
}

/// `optional` where `variants` was meant: programs a loader needs at least
/// one of, each declared optional, pass a kernel where none works. Warned
/// when every program the object loads is optional, and when every program
/// on one hook is (whatever the mechanisms).
pub fn optional_traps(programs: &[ProgramReport], fixups: &Fixups) -> Vec<String> {
    let loaded: Vec<&ProgramReport> = programs
        .iter()
        .filter(|p| fixups.programs.get(&p.name).and_then(|f| f.autoload) != Some(false))
        .collect();
    let names = |g: &[&ProgramReport]| {
        g.iter()
            .map(|p| format!("\"{}\"", p.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut warnings = Vec::new();
    if let [only] = loaded.as_slice()
        && only.optional
    {
        warnings.push(format!(
            "the only program, \"{}\", is declared optional: the object passes on every kernel, whatever the kernel says",
            only.name
        ));
        return warnings;
    }
    if loaded.len() > 1 && loaded.iter().all(|p| p.optional) {
        warnings.push(format!(
            "every program is declared optional: a kernel where none of them works passes with nothing running; if the loader needs at least one, declare them `variants = [[{}]]` instead",
            names(&loaded)
        ));
        return warnings;
    }
    let mut by_hook: BTreeMap<String, Vec<&ProgramReport>> = BTreeMap::new();
    for p in &loaded {
        if let Some((hook, _)) = Hook::new(&p.section).alternative() {
            by_hook.entry(hook).or_default().push(p);
        }
    }
    for group in by_hook.values().filter(|g| g.len() > 1) {
        if group.iter().all(|p| p.optional) {
            warnings.push(format!(
                "programs {} attach to one hook and are all declared optional: a kernel where none works passes; if the loader needs one of them, declare `variants = [[{}]]` instead",
                names(group),
                names(group)
            ));
        }
    }
    warnings
}

/// Per group, the first program that loaded and attached is chosen; the
/// others are marked skipped for it (they are not counted). A group where
/// none works keeps every failure.
pub fn choose(report: &mut ObjectReport, groups: &[Vec<String>], inferred: bool) {
    for group in groups {
        let works =
            |p: &ProgramReport| p.load == Outcome::Ok && !matches!(p.attach, Outcome::Failed(_));
        let chosen = group
            .iter()
            .find(|name| report.programs.iter().any(|p| &&p.name == name && works(p)))
            .cloned();
        if let Some(chosen) = &chosen {
            let why = format!("alternative `{chosen}` chosen");
            for p in report
                .programs
                .iter_mut()
                .filter(|p| group.contains(&p.name) && &p.name != chosen)
            {
                p.load = Outcome::Skipped {
                    reason: why.clone(),
                };
                p.attach = Outcome::Skipped {
                    reason: why.clone(),
                };
            }
        }
        report.variants.push(VariantChoice {
            candidates: group.clone(),
            chosen,
            inferred,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(name: &str, section: &str) -> ProgramReport {
        ProgramReport {
            name: name.into(),
            section: section.into(),
            prog_type: String::new(),
            type_supported: None,
            helpers: Vec::new(),
            load: Outcome::Ok,
            attach: Outcome::Ok,
            fire: None,
            optional: false,
            complexity: None,
            insn_count: None,
            stand_in: None,
        }
    }

    #[test]
    fn one_hook_by_several_mechanisms_is_a_group_newest_first() {
        let programs = [
            program("kp", "kprobe/do_unlinkat"),
            program("fe", "fentry/do_unlinkat"),
            program("other", "kprobe/vfs_read"),
            program("tp", "tracepoint/sched/sched_switch"),
            program("btf", "tp_btf/sched_switch"),
            program("raw", "raw_tp/sched_switch"),
            program("ret", "kretprobe/do_unlinkat"),
        ];
        let groups = inferred(&programs, &[]);
        assert_eq!(
            groups,
            [vec!["fe", "kp"], vec!["btf", "raw", "tp"]],
            "entry and exit are different hooks; a lone program is no group"
        );
        // A declared group wins: its programs are not grouped again.
        let declared = [vec!["kp".to_string(), "other".to_string()]];
        assert_eq!(inferred(&programs, &declared), [vec!["btf", "raw", "tp"]]);
    }

    #[test]
    fn optional_where_variants_was_meant_is_warned() {
        let optional = |name: &str, section: &str| ProgramReport {
            optional: true,
            ..program(name, section)
        };
        let none = Fixups::default();
        // Every program optional: a kernel where none works would pass.
        let all = [
            optional("fe", "fentry/do_unlinkat"),
            optional("kp", "kprobe/do_unlinkat"),
        ];
        let w = optional_traps(&all, &none);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("variants = [[\"fe\", \"kp\"]]"), "{w:?}");
        // One hook, all optional, beside a required program.
        let hook = [
            optional("fe", "fentry/do_unlinkat"),
            optional("kp", "kprobe/do_unlinkat"),
            program("main", "tracepoint/sched/sched_switch"),
        ];
        let w = optional_traps(&hook, &none);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("attach to one hook"), "{w:?}");
        // One optional program beside a required one: what optional is for.
        let fine = [
            optional("fe", "fentry/do_unlinkat"),
            program("main", "tracepoint/sched/sched_switch"),
        ];
        assert!(optional_traps(&fine, &none).is_empty());
        // A program the loader never loads does not count: the one left is
        // the only one, and optional.
        let mut off = Fixups::default();
        off.programs.insert(
            "kp".into(),
            bpfcompat_engine::wire::ProgramFixup {
                autoload: Some(false),
                ..Default::default()
            },
        );
        let w = optional_traps(&all, &off);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("the only program, \"fe\""), "{w:?}");
    }

    #[test]
    fn programs_on_one_hook_the_same_way_are_no_group() {
        // Both attach and both run: one failing is a failure, not a choice.
        let programs = [
            program("plain", "tracepoint/syscalls/sys_enter_getpid"),
            program("cookie", "tp/syscalls/sys_enter_getpid"),
            program("fe", "fentry/do_unlinkat"),
            program("kp", "kprobe/do_unlinkat"),
            program("kp2", "kprobe/do_unlinkat"),
        ];
        assert!(inferred(&programs, &[]).is_empty());
    }
}
