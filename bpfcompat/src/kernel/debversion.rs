//! Debian version ordering (`dpkg --compare-versions`), used to pick the
//! newest kernel package of a suite.

use std::cmp::Ordering;

/// Compares two Debian versions `[epoch:]upstream[-revision]` as dpkg
/// does (the `debversion` crate); a version that does not parse sorts
/// before every one that does, so it is never picked as the newest.
pub fn compare(a: &str, b: &str) -> Ordering {
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
            assert_eq!(compare(a, b), o, "{a} vs {b}");
        }
    }
}
