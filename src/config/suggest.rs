//! "Did you mean ...?" for unknown keys and sections: finds the closest known name by edit
//! distance (with transpositions, so "listen_prot" finds "listen_port"). Called by the section
//! reader and by the top-level parser; suggests nothing rather than something far-fetched.

/// The known name closest to `given`, if it is plausibly a typo of it.
pub fn closest<'a>(given: &str, known: &[&'a str]) -> Option<&'a str> {
    let given_lower = given.to_ascii_lowercase();
    let best = known
        .iter()
        .map(|k| (edit_distance(&given_lower, k), *k))
        .min_by_key(|(d, _)| *d)?;
    // Allow about one typo per three characters, but always at least two edits.
    let limit = (given.len() / 3).max(2);
    if best.0 <= limit {
        return Some(best.1);
    }
    // A fragment of a longer name ("pool_size" for "default_pool_size") is still a good hint.
    known
        .iter()
        .find(|k| given_lower.len() >= 4 && (k.contains(&given_lower) || given_lower.contains(*k)))
        .copied()
}

/// The `; did you mean "x"?` suffix for a message, or "" when nothing is close.
pub fn did_you_mean(given: &str, known: &[&str]) -> String {
    match closest(given, known) {
        Some(k) => format!("; did you mean {k:?}?"),
        None => String::new(),
    }
}

/// Optimal string alignment distance: insertions, deletions, substitutions and adjacent
/// transpositions each cost one.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rolling rows: the one two back is needed for transpositions.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            cur[j] = d;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &[&str] = &[
        "listen_addr",
        "listen_port",
        "default_pool_size",
        "min_pool_size",
        "max_client_conn",
        "pool_mode",
    ];

    #[test]
    fn distances() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("", "ab"), 2);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("listen_prot", "listen_port"), 1);
        assert_eq!(edit_distance("port", "port"), 0);
    }

    #[test]
    fn suggests_typos() {
        assert_eq!(closest("listen_prot", KEYS), Some("listen_port"));
        assert_eq!(closest("listen_adr", KEYS), Some("listen_addr"));
        assert_eq!(closest("max_client_con", KEYS), Some("max_client_conn"));
        assert_eq!(closest("Pool_Mode", KEYS), Some("pool_mode"));
        assert_eq!(closest("poolmode", KEYS), Some("pool_mode"));
    }

    #[test]
    fn suggests_longer_name_containing_the_fragment() {
        assert_eq!(closest("default_pool", KEYS), Some("default_pool_size"));
    }

    #[test]
    fn no_far_fetched_suggestions() {
        assert_eq!(closest("logfile", KEYS), None);
        assert_eq!(closest("x", KEYS), None);
        assert_eq!(did_you_mean("logfile", KEYS), "");
        assert_eq!(
            did_you_mean("listen_prot", KEYS),
            "; did you mean \"listen_port\"?"
        );
    }
}
