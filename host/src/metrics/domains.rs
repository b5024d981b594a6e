//! Destination domains as a bounded label: the first [`TOP`] domains the
//! server delivers to get their own series, every later one is counted as
//! `other`. A server's main destinations show up early (they are the ones
//! most mail goes to), and a flood of one-off domains cannot blow up the
//! number of series Prometheus keeps.

use std::collections::HashSet;
use std::sync::RwLock;

/// Domains with their own series.
pub const TOP: usize = 20;

#[derive(Default)]
pub struct Domains {
    named: RwLock<HashSet<String>>,
}

impl Domains {
    /// The label for `domain` (lower-cased), taking a free place if one is left.
    pub fn label(&self, domain: &str) -> String {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        if self.named.read().unwrap_or_else(|e| e.into_inner()).contains(&domain) {
            return domain;
        }
        let mut named = self.named.write().unwrap_or_else(|e| e.into_inner());
        if named.len() < TOP && !domain.is_empty() {
            named.insert(domain.clone());
            return domain;
        }
        if named.contains(&domain) { domain } else { "other".into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_top_domains_are_named_the_rest_are_other() {
        let d = Domains::default();
        for i in 0..TOP {
            assert_eq!(d.label(&format!("D{i}.example.")), format!("d{i}.example"));
        }
        assert_eq!(d.label("late.example"), "other");
        assert_eq!(d.label("d3.EXAMPLE"), "d3.example", "a named domain keeps its series");
    }
}
