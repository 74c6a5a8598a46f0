//! Property tests for every parser of untrusted input: whatever the bytes,
//! no parser panics, and whatever a parser accepts is safe to use (values
//! that become paths stay below their directory).
//!
//! CI runs proptest's default 256 cases per property. A long run:
//! `PROPTEST_CASES=100000 cargo test -p bpfcompat --lib proptests`.

use proptest::prelude::*;

use crate::safe::is_safe_name;

/// Strings with the characters hostile input is made of.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        "[a-z0-9./_~+:-]{0,40}",
        Just("../..".to_string()),
        Just("/etc/passwd".to_string()),
        "[a-f0-9]{63,65}",
    ]
}

fn check_bytes(bytes: &[u8]) -> Result<(), crate::errors::ObjectError> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.bpf.o");
    std::fs::write(&p, bytes).unwrap();
    crate::objects::check_bpf_object(&p)
}

proptest! {
    #[test]
    fn object_check_survives_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = check_bytes(&bytes);
    }

    #[test]
    fn object_check_survives_damage_to_a_real_object(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut obj = crate::objects::tiny_object();
        for (at, byte) in flips {
            let i = at.index(obj.len());
            obj[i] = byte;
        }
        let _ = check_bytes(&obj);
        let whole = crate::objects::tiny_object();
        let len = cut.index(whole.len());
        prop_assert!(check_bytes(&whole[..len]).is_err(), "a {len}-byte prefix passed");
    }

    #[test]
    fn embedded_object_scan_survives_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = crate::objects::embedded_objects(&bytes);
    }

    #[test]
    fn guest_records_survive_any_line(line in ".{0,200}", json in "[{}\\[\\]\":,a-z0-9 ]{0,200}") {
        let mut host = crate::wire::channel::Verifier::default();
        let _ = host.accept(&line);
        let _ = host.accept(&format!("BPFCOMPAT2 - {json}"));
        let _ = host.accept(&format!("BPFCOMPAT2 K{json}"));
    }

    #[test]
    fn matrix_parser_survives_any_text(text in ".{0,400}") {
        let _ = crate::matrix::Matrix::parse(&text, "m");
    }

    #[test]
    fn an_accepted_lock_holds_only_safe_values(
        name in hostile(), archive in hostile(), suite in hostile(), package in hostile(),
        version in hostile(), filename in hostile(), sha256 in hostile(),
    ) {
        let q = |s: &str| toml::Value::String(s.to_string()).to_string();
        let text = format!(
            "[[kernel]]\nname = {}\narchive = {}\nsuite = {}\npackage = {}\nversion = {}\nfilename = {}\nsize = 1\nsha256 = {}\n",
            q(&name), q(&archive), q(&suite), q(&package), q(&version), q(&filename), q(&sha256)
        );
        if let Ok(lock) = crate::matrix::parse_lock(&text, "l") {
            let pin = &lock.kernels[0];
            prop_assert!(is_safe_name(&pin.name) && is_safe_name(&pin.suite));
            prop_assert!(!pin.filename.split('/').any(|c| c == ".." || c.is_empty()));
            prop_assert!(!pin.filename.starts_with('/'));
            prop_assert_eq!(pin.sha256.as_str().len(), 64);
        }
        let _ = crate::matrix::parse_lock(&format!("{text}{name}"), "l");
    }

    #[test]
    fn an_index_yields_only_safe_candidates(
        stanzas in proptest::collection::vec((hostile(), hostile(), hostile(), hostile()), 0..6),
        noise in ".{0,100}",
    ) {
        let mut text = noise;
        for (version, filename, size, sha) in stanzas {
            text.push_str(&format!(
                "\n\nPackage: linux-image-1-cloud-amd64\nVersion: {version}\nFilename: {filename}\nSize: {size}\nSHA256: {sha}\n"
            ));
        }
        if let Ok(found) = crate::kernel::apt::matching(&text, "linux-image-*-cloud-amd64") {
            for c in found {
                prop_assert!(crate::safe::check_archive_path(&c.filename).is_ok());
                prop_assert_eq!(c.sha256.as_str().len(), 64);
            }
        }
    }

    #[test]
    fn apt_sources_survive_any_text(list in ".{0,300}", deb822 in ".{0,300}") {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("sources.list.d")).unwrap();
        std::fs::write(dir.path().join("sources.list"), list).unwrap();
        std::fs::write(dir.path().join("sources.list.d/x.sources"), deb822).unwrap();
        let _ = crate::kernel::Mirrors::from_apt_dir(dir.path());
    }

    #[test]
    fn debian_versions_order_consistently(a in "[0-9a-z.+~:-]{0,16}", b in "[0-9a-z.+~:-]{0,16}") {
        let ab = crate::kernel::compare_versions(crate::matrix::Format::Deb, &a, &b);
        prop_assert_eq!(ab, crate::kernel::compare_versions(crate::matrix::Format::Deb, &b, &a).reverse());
        prop_assert_eq!(crate::kernel::compare_versions(crate::matrix::Format::Deb, &a, &a), std::cmp::Ordering::Equal);
    }

    #[test]
    fn deb_extraction_survives_any_bytes_and_writes_only_its_two_files(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        paths in proptest::collection::vec(hostile(), 0..6),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let deb = dir.path().join("x.deb");
        std::fs::write(&deb, &bytes).unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        let _ = crate::kernel::package::extract(&deb, &out);
        // A well-formed package whose tar names hostile paths.
        let mut tar = tar::Builder::new(Vec::new());
        for p in paths.iter().chain(["boot/vmlinuz-1".to_string()].iter()) {
            let mut h = tar::Header::new_gnu();
            h.set_size(1);
            h.set_mode(0o644);
            if h.set_path(p).is_ok() {
                h.set_cksum();
                let _ = tar.append(&h, &b"x"[..]);
            }
        }
        let tar = tar.into_inner().unwrap();
        let mut ar = ar::Builder::new(Vec::new());
        ar.append(&ar::Header::new(b"data.tar".to_vec(), tar.len() as u64), &tar[..]).unwrap();
        std::fs::write(&deb, ar.into_inner().unwrap()).unwrap();
        let _ = crate::kernel::package::extract(&deb, &out);
        let mut written: Vec<String> = std::fs::read_dir(&out).unwrap().flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        written.retain(|n| n != "vmlinuz" && n != "config");
        prop_assert!(written.is_empty(), "{:?}", written);
        let mut around: Vec<String> = std::fs::read_dir(dir.path()).unwrap().flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        around.sort();
        prop_assert_eq!(around, vec!["out".to_string(), "x.deb".to_string()]);
    }

    #[test]
    fn report_reader_survives_any_text(text in ".{0,400}", json in "[{}\\[\\]\":,a-z0-9_ ]{0,400}") {
        let _ = crate::report::Report::from_json(&text);
        let _ = crate::report::Report::from_json(&json);
    }

    #[test]
    fn harness_configuration_survives_any_text(text in ".{0,300}", toml in "[a-z_\\[\\]=\" .\n0-9]{0,300}") {
        for t in [text, toml] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("bpfcompat.toml"), t).unwrap();
            let _ = crate::config::find_config(dir.path());
        }
    }
}
