//! Debian version ordering (`dpkg --compare-versions`), used to pick the
//! newest kernel package of a suite.

use std::cmp::Ordering;

/// Compares two Debian versions `[epoch:]upstream[-revision]`.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| compare_part(ua, ub))
        .then_with(|| compare_part(ra, rb))
}

fn split(v: &str) -> (u64, &str, &str) {
    let (epoch, rest) = match v.split_once(':') {
        Some((e, r)) => (e.parse().unwrap_or(0), r),
        None => (0, v),
    };
    match rest.rsplit_once('-') {
        Some((u, r)) => (epoch, u, r),
        None => (epoch, rest, ""),
    }
}

/// dpkg's ordering of characters in non-digit runs: `~` sorts before
/// everything (even the end), letters before non-letters.
fn order(c: Option<char>) -> i32 {
    match c {
        None => 0,
        Some('~') => -1,
        Some(c) if c.is_ascii_alphabetic() => c as i32,
        Some(c) => c as i32 + 256,
    }
}

fn compare_part(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        if a.is_empty() && b.is_empty() {
            return Ordering::Equal;
        }
        // Non-digit run.
        let na = a.find(|c: char| c.is_ascii_digit()).unwrap_or(a.len());
        let nb = b.find(|c: char| c.is_ascii_digit()).unwrap_or(b.len());
        let (mut ca, mut cb) = (a[..na].chars(), b[..nb].chars());
        loop {
            let (x, y) = (ca.next(), cb.next());
            if x.is_none() && y.is_none() {
                break;
            }
            match order(x).cmp(&order(y)) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        a = &a[na..];
        b = &b[nb..];
        // Digit run.
        let da = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
        let db = b.find(|c: char| !c.is_ascii_digit()).unwrap_or(b.len());
        let (xa, xb) = (
            a[..da].trim_start_matches('0'),
            b[..db].trim_start_matches('0'),
        );
        match xa.len().cmp(&xb.len()).then_with(|| xa.cmp(xb)) {
            Ordering::Equal => {}
            o => return o,
        }
        a = &a[da..];
        b = &b[db..];
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
        ] {
            assert_eq!(compare(a, b), o, "{a} vs {b}");
        }
    }
}
