//! Validating one object on the running kernel (what to do with it and
//! where its bytes come from: [`crate::options`]): the choice of the loader
//! that judges it: libbpf ([`crate::validate`]) or aya
//! ([`crate::aya_loader`]), as the project's own loader would load it. What
//! both share after loading (alternatives, optional programs) is applied
//! here, once.

use std::path::Path;
use std::time::Instant;

use bpfcompat_engine::wire::{ObjectReport, Validator};

use crate::alternatives;
use crate::options::{Loader, Options, Source};

/// Validates the object at `path` on the running kernel.
pub fn validate_object(name: &str, path: &Path, opts: &Options) -> ObjectReport {
    validate_source(name, Source::Path(path), opts)
}

/// Validates an object from a file or from memory on the running kernel.
/// Everything it loads and attaches is released before it returns.
pub fn validate_source(name: &str, source: Source, opts: &Options) -> ObjectReport {
    // Unless told, an object is judged the way the loader it was built for
    // loads it (aya for aya's legacy `maps` section or rustc's objects).
    let validator = opts.fixups.validator.unwrap_or_else(|| match source {
        Source::Bytes(b) => bpfcompat_engine::objects::built_for_bytes(b),
        Source::Path(p) => bpfcompat_engine::objects::built_for(p),
    });
    let started = Instant::now();
    let mut report = loader_for(validator).validate(name, source, opts);
    // What the loader chooses between and may go without: the same for
    // both loaders.
    alternatives::choose(&mut report, &opts.fixups.variants, false);
    let inferred = alternatives::inferred(&report.programs, &opts.fixups.variants);
    alternatives::choose(&mut report, &inferred, true);
    for p in &mut report.programs {
        p.optional = opts.fixups.programs.get(&p.name).and_then(|f| f.optional) == Some(true);
    }
    report
        .assumptions
        .extend(alternatives::optional_traps(&report.programs, &opts.fixups));
    if opts.fixups.validator.is_none() && validator == bpfcompat_engine::wire::Validator::Aya {
        report.assumptions.insert(
            0,
            "validated as aya loads it (an aya object: legacy `maps` section or compiled by rustc); `validator = \"libbpf\"` in its table or --validator libbpf for libbpf's verdict".into(),
        );
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    report
}

/// The loader of a kind.
fn loader_for(v: Validator) -> &'static dyn Loader {
    match v {
        Validator::Libbpf => &crate::validate::Libbpf,
        Validator::Aya => &crate::aya_loader::Aya,
    }
}
