//! Package version ordering, used to pick the newest kernel package of a
//! suite: dpkg's for `.deb` archives, rpm's for RPM repositories.

use std::cmp::Ordering;

use crate::matrix::Format;

/// Compares two versions of an archive of `format`.
pub fn compare(format: Format, a: &str, b: &str) -> Ordering {
    match format {
        Format::Deb => compare_deb(a, b),
        Format::Rpm => compare_rpm(a, b),
    }
}

/// Compares two RPM versions `[epoch:]version-release` as rpm does
/// (`rpmvercmp`, the `rpm-version` crate).
fn compare_rpm(a: &str, b: &str) -> Ordering {
    rpm_version::Evr::parse(a).cmp(&rpm_version::Evr::parse(b))
}

/// Compares two Debian versions `[epoch:]upstream[-revision]` as dpkg
/// does (the `debversion` crate); a version that does not parse sorts
/// before every one that does, so it is never picked as the newest.
fn compare_deb(a: &str, b: &str) -> Ordering {
    let parse = |v: &str| v.parse::<debversion::Version>().ok();
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (x, y) => x.is_some().cmp(&y.is_some()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn orders_like_dpkg() {
        for (a, b, o) in [
            ("5.10.237-1", "5.10.226-1", Greater),
            ("6.1.0-10", "6.1.0-9", Greater),
            ("1.0~rc1", "1.0", Less),
            ("1:0.1", "2.0", Greater),
            ("4.15.0-213.224~16.04.1", "4.15.0-45.48~16.04.1", Greater),
            ("1.0a", "1.0+", Less),
            ("1.0", "1.0", Equal),
            ("1.0-1", "1.0", Greater),
            ("not a version!", "1.0", Less),
        ] {
            assert_eq!(compare(Format::Deb, a, b), o, "{a} vs {b}");
        }
    }

    #[test]
    fn orders_like_rpm() {
        for (a, b, o) in [
            ("5.14.0-427.13.1.el9_4", "5.14.0-70.el9", Greater),
            ("4.18.0-553.el8_10", "4.18.0-553.5.1.el8_10", Less),
            ("1:1.0-1", "2.0-1", Greater),
            ("6.1.0-1.fc40", "6.1.0-1.fc40", Equal),
            ("1.0~rc1-1", "1.0-1", Less),
            (
                "5.15.0-300.163.18.el9uek",
                "5.15.0-209.161.7.el9uek",
                Greater,
            ),
        ] {
            assert_eq!(compare(Format::Rpm, a, b), o, "{a} vs {b}");
        }
    }
}
