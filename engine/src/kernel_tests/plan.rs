//! Which (test × kernel) cells a test binary's tests make: the kernels each
//! test names, else the project's configured ones, else the matrix's; each
//! cell runs, fails at once (an unknown or unpinned kernel, a required one
//! that cannot be had) or is skipped (an unavailable one the project allows).

use std::collections::BTreeMap;

use crate::config::{Config, find_config};
use crate::kernel::{Cache, Mirrors};
use crate::matrix::Matrix;
use crate::wire::kernel_tests::{Plan, PlanCell, PlanRequest};

/// The cells of `req`'s tests.
pub fn plan(req: &PlanRequest) -> Plan {
    if req.version != crate::wire::WIRE_VERSION {
        return Plan {
            config_error: Some(format!(
                "the test binary speaks wire version {}, this cargo-bpfcompat {} (hint: use the cargo-bpfcompat of the same release as the `bpfcompat` your tests depend on)",
                req.version,
                crate::wire::WIRE_VERSION
            )),
            ..Plan::default()
        };
    }
    // The project's configuration (bpfcompat.toml or Cargo metadata), read
    // as strictly as the CLI reads it: a broken file fails every trial
    // with its error instead of being ignored.
    let config = match req.manifest_dir.as_deref().map(find_config).transpose() {
        Ok(c) => c.flatten(),
        Err(e) => {
            return Plan {
                config_error: Some(format!("bpfcompat configuration: {e}")),
                ..Plan::default()
            };
        }
    };
    cells(req, config.as_ref())
}

/// Every (test × kernel) cell; a test whose matrix cannot be loaded makes
/// none, and says why.
fn cells(req: &PlanRequest, config: Option<&Config>) -> Plan {
    let mirrors = Mirrors::discover();
    let cache = Cache::discover();
    let configured_kernels = config.and_then(|c| c.kernels.clone());
    let mut matrices: BTreeMap<String, Result<Matrix, String>> = BTreeMap::new();
    let mut out = Plan::default();
    for t in &req.tests {
        // A configured matrix path that leaves the configuration's
        // directory is refused, for every test that would use it.
        let matrix_name = match crate::config::matrix_name(config, t.matrix.as_deref()) {
            Ok(name) => name,
            Err(e) => {
                out.failed
                    .push((t.name.clone(), format!("{}: {e}", t.name)));
                continue;
            }
        };
        let m = matrices
            .entry(matrix_name.clone())
            .or_insert_with(|| Matrix::load(&matrix_name).map_err(|e| e.to_string()));
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                out.failed
                    .push((t.name.clone(), format!("{}: {e}", t.name)));
                continue;
            }
        };
        let kernels: Vec<String> = match (&t.kernels, &configured_kernels) {
            (Some(k), _) => k.clone(),
            (None, Some(k)) => k.clone(),
            (None, None) => m.kernels.iter().map(|k| k.name.clone()).collect(),
        };
        let allow_unavailable = config.is_some_and(|c| c.allow_unavailable);
        for k in kernels {
            let pin = m.lock.get(&k).cloned();
            let required = match config.and_then(|c| c.required.as_ref()) {
                Some(required) => required.contains(&k),
                None => m.profile(&k).is_some_and(|p| p.required),
            };
            let unavailable = match (&pin, m.profile(&k)) {
                (_, None) => None,
                (None, _) => None,
                // Present is enough here: listing trials must not hash
                // every kernel (the trial's fetch checks the entry).
                (Some(p), _) => match cache.as_ref().map(|c| c.has(&p.entry_key())) {
                    Err(e) => Some(e.to_string()),
                    Ok(true) => None,
                    Ok(_) if p.own.is_some() => None,
                    Ok(_) => mirrors.get(&p.archive).err().map(|e| e.to_string()),
                },
            };
            let known: Vec<&str> = m.kernels.iter().map(|k| k.name.as_str()).collect();
            let (broken, skipped) = match (&pin, m.profile(&k), unavailable) {
                (_, None, _) => (
                    Some(format!(
                        "kernel `{k}` (in the kernels of `{}`) is not in the matrix {}; its kernels: {}",
                        t.name,
                        m.origin,
                        known.join(", ")
                    )),
                    None,
                ),
                (None, _, _) => (
                    Some(format!(
                        "kernel `{k}` is not pinned\n  (hint: run `cargo bpfcompat kernels update`)"
                    )),
                    None,
                ),
                (_, _, Some(why)) if required && !allow_unavailable => (
                    Some(format!(
                        "kernel {k} is required but cannot be had: {why}\n  (or set `allow_unavailable = true` in the project's bpfcompat configuration to skip it)"
                    )),
                    None,
                ),
                (_, _, Some(why)) => (None, Some(why.replace('\n', " "))),
                _ => (None, None),
            };
            out.cells.push(PlanCell {
                test: t.name.clone(),
                kernel: k,
                matrix: matrix_name.clone(),
                broken,
                skipped,
            });
        }
    }
    out
}
