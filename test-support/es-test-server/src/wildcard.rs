//! Elasticsearch's simple wildcard patterns (`*` only), as used by index
//! patterns, template `index_patterns` and dynamic-template `match`.

/// Does `text` match `pattern`, where `*` matches any run of characters?
pub fn matches(pattern: &str, text: &str) -> bool {
    let p = pattern.as_bytes();
    let t = text.as_bytes();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Can some name match both patterns? Elasticsearch refuses two index
/// templates of equal priority whose patterns overlap this way
/// (MetadataIndexTemplateService#findConflictingV2Templates uses automaton
/// intersection; for `*`-only patterns this dynamic programme is exact).
pub fn patterns_intersect(a: &str, b: &str) -> bool {
    let a = a.as_bytes();
    let b = b.as_bytes();
    // memo[i][j]: Some(result) once computed for suffixes a[i..], b[j..].
    let mut memo = vec![vec![None; b.len() + 1]; a.len() + 1];
    fn go(a: &[u8], b: &[u8], i: usize, j: usize, memo: &mut Vec<Vec<Option<bool>>>) -> bool {
        if let Some(r) = memo[i][j] {
            return r;
        }
        let r = if i == a.len() && j == b.len() {
            true
        } else if i < a.len() && a[i] == b'*' {
            go(a, b, i + 1, j, memo) || (j < b.len() && go(a, b, i, j + 1, memo))
        } else if j < b.len() && b[j] == b'*' {
            go(a, b, i, j + 1, memo) || (i < a.len() && go(a, b, i + 1, j, memo))
        } else if i < a.len() && j < b.len() {
            a[i] == b[j] && go(a, b, i + 1, j + 1, memo)
        } else {
            false
        };
        memo[i][j] = Some(r);
        r
    }
    go(a, b, 0, 0, &mut memo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_matches_any_run_including_empty() {
        assert!(matches("logs-*-*", "logs-app-default"));
        assert!(matches("logs-*-*", "logs--"));
        assert!(!matches("logs-*-*", "logs-app"));
        assert!(matches("*", ""));
        assert!(matches("heartbeat-*", "heartbeat-9.2.1"));
        assert!(!matches("heartbeat-*", "metrics-x"));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(!matches("a*b*c", "aXXbYY"));
    }

    #[test]
    fn overlap_detection_finds_a_common_name_or_proves_none() {
        assert!(patterns_intersect("logs-*-*", "logs-didban.*-*"));
        assert!(patterns_intersect("logs-*", "*-default"));
        assert!(!patterns_intersect("logs-*", "metrics-*"));
        assert!(!patterns_intersect("a*", "b*"));
        assert!(patterns_intersect("*a", "b*"));
        assert!(!patterns_intersect("abc", "abd"));
        assert!(patterns_intersect("abc", "a*c"));
    }
}
