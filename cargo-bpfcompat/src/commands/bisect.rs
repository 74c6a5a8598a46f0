//! `cargo bpfcompat bisect`: the point release of a kernel series where an
//! object's verdict changed. Every release of the series the archive's
//! index lists is a candidate (distro version order); the two ends are
//! validated, then about log2(N) releases between them, each in a guest of
//! its own; the first changed release's changelog is searched for what
//! touched BPF since the last unchanged one.

use std::path::PathBuf;

use bpfcompat_engine::bisect::{self, ChangelogLine, Found, Probe, Verdict};
use bpfcompat_engine::kernel::{Cache, Mirrors};
use bpfcompat_engine::matrix::{Matrix, Pin};
use bpfcompat_engine::objects::{ObjectInput, check_bpf_object, display_names};
use bpfcompat_engine::report::Judge;
use bpfcompat_engine::run::{Event, KernelTarget, Plan};
use clap::Args;
use serde::Serialize;

use crate::exit::Code;
use crate::progress::Progress;

/// `bisect` arguments.
#[derive(Args)]
pub struct BisectArgs {
    /// The series: a profile of the matrix whose package pattern matches
    /// several versions in its archive's index (e.g. ubuntu-22.04-5.15).
    #[arg(long, value_name = "PROFILE")]
    pub series: String,
    /// The compiled BPF object whose verdict is bisected.
    #[arg(long, value_name = "FILE")]
    pub object: PathBuf,
    /// The oldest release to consider (a version of the series); default:
    /// the oldest the index lists.
    #[arg(long, value_name = "VERSION")]
    pub good: Option<String>,
    /// The newest release to consider; default: the newest.
    #[arg(long, value_name = "VERSION")]
    pub bad: Option<String>,
    /// The kernel matrix the series is a profile of: `default`, `all`,
    /// `rpm` or a TOML file.
    #[arg(long, default_value = "all", value_name = "NAME|FILE")]
    pub matrix: String,
    /// Write the result as JSON here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the result as Markdown here.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    #[command(flatten)]
    pub trust: crate::args::TrustArgs,
}

/// What `bisect` found, as `--json` writes it.
#[derive(Serialize)]
struct Bisection {
    series: String,
    object: String,
    /// Every release of the range, oldest first.
    releases: Vec<String>,
    found: Found,
    last_good: Option<String>,
    first_bad: Option<String>,
    /// Each tested release, in the order tested.
    probes: Vec<Probe>,
    /// Tested releases that contradict the order found.
    non_monotonic: Vec<String>,
    /// What the first bad release's changelog says since the last good.
    changelog: Vec<ChangelogLine>,
    /// Why there are no changelog lines, when there are none.
    #[serde(skip_serializing_if = "Option::is_none")]
    changelog_note: Option<String>,
    boots: usize,
}

pub fn run(a: &BisectArgs) -> Result<Code, crate::error::Error> {
    check_bpf_object(&a.object)?;
    let matrix = Matrix::load(&a.matrix)?;
    let profile = matrix
        .kernels
        .iter()
        .find(|k| k.name == a.series)
        .cloned()
        .ok_or_else(|| {
            format!(
                "no profile `{}` in the {} matrix\n  (hint: `cargo bpfcompat kernels list --matrix {}` lists them)",
                a.series, matrix.origin, a.matrix
            )
        })?;
    let mirrors = Mirrors::discover();
    let (series, good, bad) = series_range(a, &profile, &mirrors)?;
    let versions: Vec<String> = series.iter().map(|p| p.version.clone()).collect();
    for p in [&a.json, &a.markdown].into_iter().flatten() {
        writable(p)?;
    }
    let name = display_names(std::slice::from_ref(&a.object)).remove(0);
    eprintln!(
        "{} {}: {} releases from {} to {}, about {} boots",
        crate::render::verb("Bisecting"),
        a.series,
        bad - good + 1,
        versions[good],
        versions[bad],
        2 + ((bad - good) as f64).log2().ceil() as usize
    );
    let cache = Cache::discover()?;
    let cancel = crate::signals::install()?;
    let agent = super::test::agent_binary()?;
    let mut words: Vec<String> = Vec::new();
    let mut tcg_said = false;
    let mut probe = |i: usize| -> Result<Probe, crate::error::Error> {
        let pin = &series[i];
        let guest = Guest {
            profile: profile_at(&profile, pin),
            pin,
            name: &name,
            object: &a.object,
            agent: &agent,
        };
        let cell = validate(&guest, &mirrors, &cache, &cancel, &mut tcg_said)?;
        // Helper and kfunc names the kernel named: what a changelog may say.
        words.extend(cell.1.as_deref().map(bpf_names).unwrap_or_default());
        gave_a_verdict(&cell, &pin.version, &a.series)?;
        Ok(Probe {
            position: i,
            version: pin.version.clone(),
            verdict: cell.0,
            message: cell.1,
        })
    };
    let (found, probes) = bisect::search(good, bad, &mut probe)?;
    words.sort();
    words.dedup();
    let odd = bisect::non_monotonic(&found, &probes);
    let (changelog, changelog_note) = changelog_of(&found, &series, &cache, &words);
    let (last_good, first_bad) = match &found {
        Found::Boundary {
            last_good,
            first_bad,
        } => (
            Some(versions[*last_good].clone()),
            Some(versions[*first_bad].clone()),
        ),
        Found::Same => (None, None),
    };
    let result = Bisection {
        series: a.series.clone(),
        object: name,
        releases: versions[good..=bad].to_vec(),
        found,
        last_good,
        first_bad,
        boots: probes.len(),
        non_monotonic: odd.iter().map(|p| p.version.clone()).collect(),
        probes,
        changelog,
        changelog_note,
    };
    crate::stdout::out!("{}", terminal(&result));
    write(a, &result)?;
    Ok(Code::Pass)
}

/// The series of `a.series` and the positions of the range to search.
fn series_range(
    a: &BisectArgs,
    profile: &bpfcompat_engine::matrix::Profile,
    mirrors: &Mirrors,
) -> Result<(Vec<Pin>, usize, usize), crate::error::Error> {
    let series = bpfcompat_engine::kernel::series(profile, mirrors, a.trust.trust())?;
    let versions: Vec<&str> = series.iter().map(|p| p.version.as_str()).collect();
    if series.len() < 2 {
        return Err(format!(
            "the archive's index keeps one release of `{}` ({}): there is nothing to bisect",
            a.series, versions[0]
        )
        .into());
    }
    let at = |v: &Option<String>, default: usize| -> Result<usize, crate::error::Error> {
        match v {
            None => Ok(default),
            Some(v) => versions.iter().position(|x| x == v).ok_or_else(|| {
                format!(
                    "`{v}` is not a release of `{}`; the index lists {} releases, from {} to {}",
                    a.series,
                    versions.len(),
                    versions[0],
                    versions[versions.len() - 1]
                )
                .into()
            }),
        }
    };
    let (good, bad) = (at(&a.good, 0)?, at(&a.bad, series.len() - 1)?);
    if good >= bad {
        return Err(format!(
            "--good {} is not older than --bad {}",
            versions[good], versions[bad]
        )
        .into());
    }
    Ok((series, good, bad))
}

/// The `bpf_*` names in a kernel's message.
fn bpf_names(message: &str) -> Vec<String> {
    message
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("bpf_") && w.len() > 4)
        .map(String::from)
        .collect()
}

/// A release that gave no verdict (not fetched, not booted) cannot stand
/// on either side of a boundary: the search stops rather than guess.
fn gave_a_verdict(
    cell: &(Verdict, Option<String>),
    version: &str,
    series: &str,
) -> Result<(), crate::error::Error> {
    use bpfcompat_engine::classify::Status;
    match cell.0.status {
        Status::InfraError | Status::Unavailable => Err(format!(
            "release {version} of `{series}` gave no verdict, so the search cannot go on: {}",
            cell.1.as_deref().unwrap_or("no message")
        )
        .into()),
        _ => Ok(()),
    }
}

/// A result file must be writable before a search costs its boots.
fn writable(p: &std::path::Path) -> Result<(), crate::error::Error> {
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    if dir.is_dir() {
        Ok(())
    } else {
        Err(format!(
            "cannot write {}: {} is not a directory",
            p.display(),
            dir.display()
        )
        .into())
    }
}

/// The first changed release's changelog lines since the last unchanged
/// one, or why there are none.
fn changelog_of(
    found: &Found,
    series: &[Pin],
    cache: &Cache,
    words: &[String],
) -> (Vec<ChangelogLine>, Option<String>) {
    let Found::Boundary {
        last_good,
        first_bad,
    } = found
    else {
        return (Vec::new(), None);
    };
    let pin = &series[*first_bad];
    let Some(gz) = cache.changelog(&pin.entry_key()) else {
        return (
            Vec::new(),
            Some(format!(
                "{} {} ships no Debian changelog",
                pin.package, pin.version
            )),
        );
    };
    match bisect::changelog_lines(&gz, pin.format, &series[*last_good].version, &pin.version, words) {
        Ok(lines) if lines.is_empty() => (
            lines,
            Some("the changelog's entries between the two releases mention no BPF, verifier or BTF change".to_string()),
        ),
        Ok(lines) => (lines, None),
        Err(e) => (Vec::new(), Some(format!("the changelog cannot be read: {e}"))),
    }
}

/// Writes `--json` and `--markdown`.
fn write(a: &BisectArgs, result: &Bisection) -> Result<(), crate::error::Error> {
    let cannot =
        |p: &std::path::Path, e: std::io::Error| format!("cannot write {}: {e}", p.display());
    if let Some(p) = &a.json {
        let text = serde_json::to_string_pretty(result).expect("serializes");
        std::fs::write(p, text).map_err(|e| cannot(p, e))?;
    }
    if let Some(p) = &a.markdown {
        std::fs::write(p, markdown(result)).map_err(|e| cannot(p, e))?;
    }
    Ok(())
}

/// The profile renamed for one release of its series (`NAME@VERSION`), so
/// that each release has its own row, cache use and evidence.
fn profile_at(
    profile: &bpfcompat_engine::matrix::Profile,
    pin: &Pin,
) -> bpfcompat_engine::matrix::Profile {
    let mut p = profile.clone();
    p.name = format!("{}@{}", profile.name, pin.version);
    p
}

/// One release's guest.
struct Guest<'a> {
    profile: bpfcompat_engine::matrix::Profile,
    pin: &'a Pin,
    name: &'a str,
    object: &'a std::path::Path,
    agent: &'a std::path::Path,
}

/// Validates the object on one release, cold (each release boots once):
/// its verdict and the kernel's words. The TCG note is said once.
fn validate(
    g: &Guest,
    mirrors: &Mirrors,
    cache: &Cache,
    cancel: &bpfcompat_engine::cancel::Cancel,
    tcg_said: &mut bool,
) -> Result<(Verdict, Option<String>), crate::error::Error> {
    let (profile, name) = (&g.profile, g.name);
    let mut pin = g.pin.clone();
    pin.name = profile.name.clone();
    let plan = Plan {
        kernels: vec![KernelTarget {
            profile: profile.clone(),
            pin: Some(pin),
        }],
        objects: vec![ObjectInput::plain(name, g.object)],
        commands: Vec::new(),
        settings: super::survey::cold_settings(g.agent.to_path_buf(), 1),
    };
    let mut progress = Progress::new(&plan, false);
    let output = bpfcompat_engine::run::run(&plan, mirrors, cache, cancel, &mut |e: Event| {
        if matches!(e, Event::UsingTcg { .. }) {
            if *tcg_said {
                return;
            }
            *tcg_said = true;
        }
        progress.event(&e)
    })?;
    progress.finish();
    if let Some(code) = crate::signals::exit_code(cancel) {
        return Err(format!("stopped ({code:?})").into());
    }
    let judged = Judge::new(&profile.name, vec![name.to_string()]).report(output, None, |_| {});
    let cell = judged
        .report
        .cells
        .into_iter()
        .next()
        .ok_or("the guest gave no cell")?;
    Ok((
        Verdict {
            status: cell.status,
            code: cell.code,
        },
        cell.message,
    ))
}

fn verdict_text(v: &Verdict) -> String {
    // The status as the JSON names it.
    let status = serde_json::to_value(v.status)
        .ok()
        .and_then(|s| s.as_str().map(String::from))
        .unwrap_or_default();
    match &v.code {
        Some(c) => format!("{status} {}", c.as_str()),
        None => status,
    }
}

fn terminal(b: &Bisection) -> String {
    let mut out = String::new();
    let mut tested: Vec<&Probe> = b.probes.iter().collect();
    tested.sort_by_key(|p| p.position);
    out.push_str(&format!(
        "\n{} in {} ({} releases, {} boots):\n",
        b.object,
        b.series,
        b.releases.len(),
        b.boots
    ));
    for p in &tested {
        out.push_str(&format!(
            "  {:<28} {}\n",
            p.version,
            verdict_text(&p.verdict)
        ));
    }
    match (&b.last_good, &b.first_bad) {
        (Some(g), Some(f)) => {
            out.push_str(&format!("\nlast as the oldest: {g}\nfirst changed:      {f}\n"));
        }
        _ => out.push_str("\nthe two ends give the same verdict: no change between them (a change reverted inside the range is not seen; narrow it with --good/--bad)\n"),
    }
    if !b.non_monotonic.is_empty() {
        out.push_str(&format!(
            "NOT MONOTONIC: {} contradict the order found: the verdict changed more than once in this range\n",
            b.non_monotonic.join(", ")
        ));
    }
    if !b.changelog.is_empty() {
        out.push_str("\nchangelog of the first changed release, since the last unchanged:\n");
        for l in &b.changelog {
            out.push_str(&format!("  {}: {}\n", l.version, l.line));
        }
    }
    if let Some(n) = &b.changelog_note {
        out.push_str(&format!("\nnote: {n}\n"));
    }
    out
}

fn markdown(b: &Bisection) -> String {
    let mut out = format!(
        "# bpfcompat bisect\n\n`{}` on `{}`: {} releases, {} boots.\n\n| release | verdict |\n|---|---|\n",
        b.object,
        b.series,
        b.releases.len(),
        b.boots
    );
    let mut tested: Vec<&Probe> = b.probes.iter().collect();
    tested.sort_by_key(|p| p.position);
    for p in tested {
        out.push_str(&format!(
            "| `{}` | {} |\n",
            p.version,
            verdict_text(&p.verdict)
        ));
    }
    if let (Some(g), Some(f)) = (&b.last_good, &b.first_bad) {
        out.push_str(&format!(
            "\nLast as the oldest: `{g}`; first changed: `{f}`.\n"
        ));
    }
    if !b.non_monotonic.is_empty() {
        out.push_str(&format!(
            "\n**Not monotonic:** {}\n",
            b.non_monotonic.join(", ")
        ));
    }
    if !b.changelog.is_empty() {
        out.push_str("\n## Changelog\n\n");
        for l in &b.changelog {
            out.push_str(&format!(
                "- `{}`: {}\n",
                l.version,
                l.line.replace('|', "\\|")
            ));
        }
    }
    out
}
