//! The workspace's module graph has no loops: in each crate, no two files
//! reach each other through `crate::`, `super::` or `self::` paths (in
//! `use` declarations and inline), directly or round a longer loop, and no
//! two top-level modules do. A module's own children are its business (a
//! folder's `mod.rs` declares them), so those edges are left out.
//!
//! `cargo modules dependencies` (rust-analyzer's resolution, `use` edges
//! only) agrees; this check also reads inline paths and needs nothing
//! installed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

/// Every `.rs` file below `src`, by its module path.
fn modules(src: &Path) -> BTreeMap<Module, PathBuf> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                let rel = path.strip_prefix(src).unwrap().with_extension("");
                let mut m: Module = rel.iter().map(|p| p.to_string_lossy().into()).collect();
                if matches!(m.last().map(String::as_str), Some("mod" | "lib" | "main")) {
                    m.pop();
                }
                out.insert(m, path);
            }
        }
    }
    out
}

/// The code of a file without its trailing test module and its comments.
fn code(text: &str) -> String {
    let text = text
        .split("\n#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or(text);
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The paths a file names: `crate::a::b`, `super::c`, and every path of a
/// `use crate::a::{b, c::{d}}` group.
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let at_start = i == 0 || !ident(bytes[i - 1]) && bytes[i - 1] != ':';
        let rest: String = bytes[i..bytes.len().min(i + 8)].iter().collect();
        if at_start
            && ["crate::", "super::", "self::"]
                .iter()
                .any(|p| rest.starts_with(p))
        {
            let (end, found) = path_at(&bytes, i, Vec::new());
            out.extend(found);
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

/// The path(s) starting at `i`, after `prefix`: one, or a group's.
fn path_at(b: &[char], mut i: usize, mut prefix: Vec<String>) -> (usize, Vec<Vec<String>>) {
    loop {
        let start = i;
        while i < b.len() && ident(b[i]) {
            i += 1;
        }
        if i > start {
            prefix.push(b[start..i].iter().collect());
        }
        if i + 1 < b.len() && b[i] == ':' && b[i + 1] == ':' {
            i += 2;
            if i < b.len() && b[i] == '{' {
                return group(b, i + 1, prefix);
            }
            continue;
        }
        return (i, vec![prefix]);
    }
}

/// The paths of a `{…}` group starting after its brace.
fn group(b: &[char], mut i: usize, prefix: Vec<String>) -> (usize, Vec<Vec<String>>) {
    let mut out = Vec::new();
    loop {
        while i < b.len() && (b[i].is_whitespace() || b[i] == ',') {
            i += 1;
        }
        if i >= b.len() || b[i] == '}' {
            return (i + 1, out);
        }
        let (end, found) = path_at(b, i, prefix.clone());
        out.extend(found);
        i = end;
        // `as name` and anything else up to the next item.
        while i < b.len() && b[i] != ',' && b[i] != '}' {
            i += 1;
        }
    }
}

/// The deepest module a path named in module `m` reaches (`super` of a
/// folder's `mod.rs` is the folder's parent, as for any file of it).
fn reached(m: &Module, path: &[String], all: &BTreeMap<Module, PathBuf>) -> Option<Module> {
    let mut here: Module = match path.first().map(String::as_str) {
        Some("crate") => Vec::new(),
        Some("super") => m[..m.len().saturating_sub(1)].to_vec(),
        Some("self") => m.clone(),
        _ => return None,
    };
    let mut rest = &path[1..];
    while rest.first().is_some_and(|s| s == "super") {
        here.pop();
        rest = &rest[1..];
    }
    here.extend(rest.iter().cloned());
    (0..=here.len())
        .rev()
        .map(|n| here[..n].to_vec())
        .find(|c| all.contains_key(c))
}

/// The file-level edges of a crate: who names whom, own children left out.
fn edges(src: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let all = modules(src);
    let mut out: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (m, file) in &all {
        let text = code(&std::fs::read_to_string(file).unwrap());
        for p in paths(&text) {
            if let Some(t) = reached(m, &p, &all)
                && &t != m
                && !t.starts_with(m)
            {
                out.entry(m.clone()).or_default().insert(t);
            }
        }
    }
    out
}

/// The strongly connected components of more than one node (Tarjan).
fn loops(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct T<'a> {
        e: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<Module, usize>,
        low: BTreeMap<Module, usize>,
        stack: Vec<Module>,
        out: Vec<Vec<Module>>,
    }
    fn visit(t: &mut T, n: &Module) {
        let i = t.index.len();
        t.index.insert(n.clone(), i);
        t.low.insert(n.clone(), i);
        t.stack.push(n.clone());
        for w in t.e.get(n).into_iter().flatten() {
            if !t.index.contains_key(w) {
                visit(t, w);
                let l = t.low[n].min(t.low[w]);
                t.low.insert(n.clone(), l);
            } else if t.stack.contains(w) {
                let l = t.low[n].min(t.index[w]);
                t.low.insert(n.clone(), l);
            }
        }
        if t.low[n] == t.index[n] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                let done = &w == n;
                comp.push(w);
                if done {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        e: edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        out: Vec::new(),
    };
    let nodes: BTreeSet<Module> = edges
        .iter()
        .flat_map(|(a, bs)| std::iter::once(a).chain(bs))
        .cloned()
        .collect();
    for n in &nodes {
        if !t.index.contains_key(n) {
            visit(&mut t, n);
        }
    }
    t.out
}

/// The loops of a crate: between files, and between top-level modules.
fn loops_of(src: &Path) -> Vec<String> {
    let e = edges(src);
    let mut top: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (a, bs) in &e {
        for b in bs {
            if !a.is_empty() && !b.is_empty() && a[0] != b[0] {
                top.entry(a[..1].to_vec())
                    .or_default()
                    .insert(b[..1].to_vec());
            }
        }
    }
    let name = |m: &Module| match m.is_empty() {
        true => "crate".to_string(),
        false => m.join("::"),
    };
    let show = |l: Vec<Module>| l.iter().map(name).collect::<Vec<_>>().join(" <-> ");
    loops(&e)
        .into_iter()
        .map(|l| format!("files: {}", show(l)))
        .chain(
            loops(&top)
                .into_iter()
                .map(|l| format!("modules: {}", show(l))),
        )
        .collect()
}

#[test]
fn no_crate_of_the_workspace_has_an_import_loop() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    for krate in [
        "bpfcompat",
        "bpfcompat-test",
        "engine",
        "validator",
        "cargo-bpfcompat",
    ] {
        let src = root.join(krate).join("src");
        assert!(src.is_dir(), "{}", src.display());
        found.extend(loops_of(&src).into_iter().map(|l| format!("{krate}: {l}")));
    }
    assert!(found.is_empty(), "import loops:\n  {}", found.join("\n  "));
}

#[test]
fn a_loop_through_a_use_group_or_an_inline_path_is_found() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path();
    std::fs::create_dir(src.join("kernel")).unwrap();
    std::fs::write(src.join("lib.rs"), "mod kernel;\nmod matrix;\n").unwrap();
    std::fs::write(src.join("kernel/mod.rs"), "mod apt;\nmod index;\n").unwrap();
    std::fs::write(
        src.join("kernel/apt.rs"),
        "use super::{index::Candidate, x};\n",
    )
    .unwrap();
    std::fs::write(
        src.join("kernel/index.rs"),
        "fn f() { crate::kernel::apt::g(); }\n// crate::matrix::m\n",
    )
    .unwrap();
    std::fs::write(src.join("matrix.rs"), "use crate::kernel::{self, index};\n").unwrap();
    let found = loops_of(src);
    assert_eq!(found, ["files: kernel::apt <-> kernel::index"], "{found:?}");
    // A module naming its own child is no loop; a child naming a sibling
    // module that names it back at the top level is.
    std::fs::write(
        src.join("kernel/index.rs"),
        "fn f() { crate::matrix::m(); }\n",
    )
    .unwrap();
    let found = loops_of(src);
    assert_eq!(
        found,
        [
            "files: kernel::index <-> matrix",
            "modules: kernel <-> matrix"
        ],
        "{found:?}"
    );
}
