//! `cargo bpfcompat kernels list | fetch | update | outdated | prune`.

use bpfcompat_engine::cancel::Cancel;
use bpfcompat_engine::kernel::{Cache, Mirrors, Trust, fetch, resolve};
use bpfcompat_engine::matrix::{Matrix, OwnSource};
use clap::Subcommand;

use crate::args::{MatrixArgs, OutdatedArgs, PruneArgs, UpdateArgs};
use crate::exit::Code;

#[derive(Subcommand)]
pub enum KernelsCommand {
    /// List the profiles, their pinned packages and whether each is cached.
    List(MatrixArgs),
    /// Download the pinned kernels into the cache (runs then need no network).
    Fetch(MatrixArgs),
    /// Re-resolve every profile against the archive indexes and rewrite the lock.
    Update(UpdateArgs),
    /// List the profiles whose archive now has a newer package than the lock.
    /// Exits 2 when any is outdated.
    Outdated(OutdatedArgs),
    /// Remove cached kernels no kept matrix pins any more (after `kernels
    /// update`) and the saved machines of warm guests that boot them, or
    /// that an earlier release saved. Prints what goes and the space freed.
    Prune(PruneArgs),
    /// Boot every kernel with an empty job and tabulate how each booted:
    /// boot time, release, BTF, LSMs, notable BPF build options (Markdown).
    Survey(super::survey::SurveyArgs),
}

type Result<T> = std::result::Result<T, crate::error::Error>;

pub fn run(cmd: KernelsCommand) -> Result<Code> {
    match cmd {
        KernelsCommand::List(a) => list(&a),
        KernelsCommand::Fetch(a) => fetch_all(&a),
        KernelsCommand::Update(a) => update(&a.matrix, a.trust.trust(), a.lock),
        KernelsCommand::Outdated(a) => outdated(&a.matrix, a.trust.trust()),
        KernelsCommand::Prune(a) => prune(&a),
        KernelsCommand::Survey(a) => super::survey::run(&a),
    }
}

fn load(a: &MatrixArgs) -> Result<Matrix> {
    let mut m = Matrix::load(&a.matrix)?;
    m.select(&a.kernels)?;
    Ok(m)
}

fn list(a: &MatrixArgs) -> Result<Code> {
    let m = load(a)?;
    let mirrors = Mirrors::discover();
    let cache = Cache::discover()?;
    let saved = bpfcompat_engine::run::saved_machines(&cache);
    let mut table = crate::render::table(["KERNEL", "REQUIRED", "PACKAGE", "VERSION", "STATE"]);
    for k in &m.kernels {
        let req = if k.required { "yes" } else { "no" };
        // Never claim more than the project ran.
        let unverified = if k.unverified {
            "; not yet booted by the bpfcompat project"
        } else {
            ""
        };
        let Some(pin) = m.lock.get(&k.name) else {
            let state = format!("not pinned (run `kernels update`){unverified}");
            table.add_row([k.name.as_str(), req, "-", "-", state.as_str()]);
            continue;
        };
        let saved: Vec<String> = saved
            .iter()
            .filter(|m| m.profile == k.name)
            .map(|m| {
                format!(
                    "; saved machine ({} {}, {} MB)",
                    m.kind,
                    m.accel,
                    m.bytes / 1_000_000
                )
            })
            .collect();
        let state = match cache.lookup(&pin.entry_key()) {
            Ok(Some(c)) => format!("cached ({}){}", c.release, saved.concat()),
            Err(problem) => format!("cache entry unusable: {problem}"),
            Ok(None) if pin.own.is_some() => "available (not cached)".to_string(),
            Ok(None) => match mirrors.get(&pin.archive) {
                Ok(_) => "available (not cached)".to_string(),
                Err(e) => format!("unavailable: set {}", e.var),
            },
        } + unverified;
        // An own kernel is its file or URL, at its digest.
        let (package, version) = match &pin.own {
            Some(own) => (
                match &own.from {
                    OwnSource::File(path) => path.display().to_string(),
                    OwnSource::Url(url) => url.clone(),
                },
                format!("sha256 {}…", &pin.sha256.as_str()[..12]),
            ),
            None => (pin.package.clone(), pin.version.clone()),
        };
        table.add_row([
            k.name.as_str(),
            req,
            package.as_str(),
            version.as_str(),
            state.as_str(),
        ]);
    }
    crate::stdout::outln!("{}", table.trim_fmt());
    Ok(Code::Pass)
}

/// Profiles whose archive has a newer package than the lock pins.
fn outdated(a: &MatrixArgs, trust: Trust) -> Result<Code> {
    let m = load(a)?;
    let mirrors = Mirrors::discover();
    let mut table = crate::render::table(["KERNEL", "PINNED", "NEWEST", "STATE"]);
    let (mut newer, mut failed) = (0, 0);
    for k in m
        .kernels
        .iter()
        .filter(|k| k.file.is_none() && k.url.is_none())
    {
        let pinned = m.lock.get(&k.name).map(|p| p.version.as_str());
        let (newest, state) = match resolve(k, &mirrors, trust) {
            Ok(pin) => {
                let state = match pinned {
                    Some(v)
                        if bpfcompat_engine::kernel::compare_versions(
                            k.format,
                            &pin.version,
                            v,
                        )
                        .is_gt() =>
                    {
                        newer += 1;
                        "outdated"
                    }
                    Some(_) => "current",
                    None => {
                        newer += 1;
                        "not pinned"
                    }
                };
                (
                    format!("{} {}", pin.package, pin.version),
                    state.to_string(),
                )
            }
            Err(e) => {
                failed += 1;
                (
                    "-".to_string(),
                    format!(
                        "cannot tell: {}",
                        e.to_string().lines().next().unwrap_or_default()
                    ),
                )
            }
        };
        table.add_row([
            k.name.as_str(),
            pinned.unwrap_or("-"),
            newest.as_str(),
            state.as_str(),
        ]);
    }
    crate::stdout::outln!("{}", table.trim_fmt());
    if newer > 0 {
        crate::stdout::outln!("\n{}", behind_hint(newer, m.lock_path.is_some(), &a.matrix));
    }
    Ok(if failed > 0 {
        Code::ToolFailure
    } else if newer > 0 {
        Code::Regression
    } else {
        Code::Pass
    })
}

fn fetch_all(a: &MatrixArgs) -> Result<Code> {
    let m = load(a)?;
    let mirrors = Mirrors::discover();
    let cache = Cache::discover()?;
    let mut failed = 0;
    for k in &m.kernels {
        let Some(pin) = m.lock.get(&k.name) else {
            eprintln!(
                "{}: not pinned in the lock (run `cargo bpfcompat kernels update`)",
                k.name
            );
            failed += 1;
            continue;
        };
        match fetch(pin, &mirrors, &cache, &Cancel::new(), &mut |msg| {
            if msg.is_milestone() {
                eprintln!("{}: {msg}", k.name);
            }
        }) {
            Ok(c) => crate::stdout::outln!("{}: {} at {}", k.name, c.release, c.vmlinuz.display()),
            Err(e) => {
                eprintln!("{}: {e}", k.name);
                failed += 1;
            }
        }
    }
    Ok(if failed == 0 {
        Code::Pass
    } else {
        Code::ToolFailure
    })
}

/// What to do about `newer` profiles behind their archive: re-pin a matrix
/// file's lock; the built-in matrices are pinned by the release itself.
fn behind_hint(newer: usize, own_lock: bool, matrix: &str) -> String {
    let behind = crate::render::count(newer, "profile is", "profiles are");
    match own_lock {
        true => format!(
            "{behind} behind the archive: `cargo bpfcompat kernels update --matrix {matrix}` re-pins {}",
            if newer == 1 { "it" } else { "them" }
        ),
        false => format!(
            "{behind} behind the archive: the built-in `{matrix}` matrix is pinned by this release of bpfcompat (a newer release re-pins it); to pin newer packages now, use a matrix file of your own (`--matrix FILE`), which `cargo bpfcompat kernels update --matrix FILE` re-pins"
        ),
    }
}

fn update(a: &MatrixArgs, trust: Trust, lock: Option<std::path::PathBuf>) -> Result<Code> {
    let m = load(a)?;
    let path = lock.or(m.lock_path.clone()).ok_or(
        "the built-in matrix's lock is compiled in\n  (hint: pass --lock FILE, or --matrix FILE to update the lock beside it)",
    )?;
    let mirrors = Mirrors::discover();
    let mut lock = m.lock.clone();
    // Own kernels are pinned by the matrix itself, never in a lock.
    lock.kernels.retain(|p| p.own.is_none());
    let mut failed = 0;
    for k in &m.kernels {
        if k.file.is_some() || k.url.is_some() {
            crate::stdout::outln!(
                "{}: your own kernel, pinned by its digest (nothing to update)",
                k.name
            );
            continue;
        }
        match resolve(k, &mirrors, trust) {
            Ok(pin) => {
                let was = lock.get(&k.name).map(|p| p.version.clone());
                match was {
                    Some(v) if v == pin.version => {
                        crate::stdout::outln!(
                            "{}: {} {} (unchanged)",
                            k.name,
                            pin.package,
                            pin.version
                        )
                    }
                    Some(v) => crate::stdout::outln!(
                        "{}: {} {} (was {v})",
                        k.name,
                        pin.package,
                        pin.version
                    ),
                    None => {
                        crate::stdout::outln!("{}: {} {} (new)", k.name, pin.package, pin.version)
                    }
                }
                lock.set(pin);
            }
            Err(e) => {
                eprintln!("{}: {e}", k.name);
                failed += 1;
            }
        }
    }
    std::fs::write(&path, lock.to_toml())?;
    crate::stdout::outln!("wrote {}", path.display());
    Ok(if failed == 0 {
        Code::Pass
    } else {
        Code::ToolFailure
    })
}

/// The matrices whose kernels `prune` keeps: those named, else the shipped
/// ones and the project's.
fn kept_matrices(a: &PruneArgs) -> Result<Vec<Matrix>> {
    let mut names = a.keep.clone();
    if names.is_empty() {
        names.extend(
            bpfcompat_engine::matrix::SHIPPED
                .iter()
                .map(|s| s.to_string()),
        );
        let here = std::env::current_dir().map_err(|e| e.to_string())?;
        if let Some(c) = bpfcompat_engine::config::find_config(&here)?
            && let Some(m) = &c.matrix
            && !bpfcompat_engine::matrix::SHIPPED.contains(&m.as_str())
        {
            names.push(
                c.resolve(std::path::Path::new(m), "matrix")?
                    .display()
                    .to_string(),
            );
        }
    }
    names.iter().map(|n| Ok(Matrix::load(n)?)).collect()
}

/// Removes the kernel entries no kept matrix pins and the saved machines of
/// removed (or unknown) entries.
fn prune(a: &PruneArgs) -> Result<Code> {
    let cache = Cache::discover()?;
    let kept: std::collections::BTreeSet<String> = kept_matrices(a)?
        .iter()
        .flat_map(|m| {
            m.lock
                .kernels
                .iter()
                .map(|p| p.entry_key().as_str().to_string())
        })
        .collect();
    let verb = if a.dry_run { "Would remove" } else { "Removed" };
    let mut freed = 0u64;
    for m in bpfcompat_engine::run::saved_machines(&cache) {
        if m.entry.as_ref().is_some_and(|e| kept.contains(e)) {
            continue;
        }
        if !a.dry_run {
            bpfcompat_engine::run::remove_machine(&cache, &m).map_err(|e| e.to_string())?;
        }
        freed += m.bytes;
        crate::stdout::outln!(
            "{verb} the saved machine of {} ({} {}, {} MB)",
            m.profile,
            m.kind,
            m.accel,
            m.bytes / 1_000_000
        );
    }
    for e in cache.entries() {
        if kept.contains(&e.key) {
            continue;
        }
        if !a.dry_run {
            let key = bpfcompat_engine::safe::Sha256Hex::try_from(e.key.clone())?;
            if !cache.remove_entry(&key).map_err(|e| e.to_string())? {
                crate::stdout::outln!(
                    "Kept kernel {} ({}): a running bpfcompat uses it",
                    e.what.as_deref().unwrap_or("of an unreadable entry"),
                    &e.key[..12]
                );
                continue;
            }
        }
        freed += e.bytes;
        crate::stdout::outln!(
            "{verb} kernel {} ({}, {} MB)",
            e.what.as_deref().unwrap_or("of an unreadable entry"),
            &e.key[..12],
            e.bytes / 1_000_000
        );
    }
    if !a.dry_run {
        // Locks of entries and machines removed before locks were removed with them.
        cache.remove_stale_locks();
        for left in cache.sweep() {
            crate::stdout::outln!(
                "Removed {}, left by a bpfcompat that was killed",
                left.display()
            );
        }
    }
    let verb = if a.dry_run { "would free" } else { "freed" };
    crate::stdout::outln!("{verb} {} MB", freed / 1_000_000);
    Ok(Code::Pass)
}

#[cfg(test)]
mod tests {
    use super::behind_hint;

    #[test]
    fn the_hint_for_profiles_behind_works_for_the_matrix_it_is_given_for() {
        assert_eq!(
            behind_hint(1, true, "ci.toml"),
            "1 profile is behind the archive: `cargo bpfcompat kernels update --matrix ci.toml` re-pins it"
        );
        let builtin = behind_hint(2, false, "default");
        assert!(builtin.starts_with("2 profiles are behind the archive: the built-in `default` matrix is pinned by this release"), "{builtin}");
        assert!(!builtin.contains("update` re-pins them"), "{builtin}");
    }
}
