//! Choosing the node for the next request.
//!
//! Nodes are used in turn (round robin), which spreads the coordinating work of `_bulk`
//! requests over the cluster. A node that refused a connection is skipped for a backoff period
//! that doubles while it keeps failing, so a dead node costs one failed connect per period, not
//! one per request. When every node is in its backoff period the one that comes back first is
//! tried anyway: the output must keep probing rather than stop.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use url::Url;

use super::config::redacted_url;
use super::retry::Backoff;

/// One node and its health.
#[derive(Debug)]
struct Node {
    url: Url,
    shown: String,
    state: Mutex<NodeState>,
}

#[derive(Debug, Default, Clone, Copy)]
struct NodeState {
    /// Skip the node until then.
    dead_until: Option<Instant>,
    /// Consecutive connection failures.
    failures: u32,
}

/// The nodes of the cluster, with round-robin selection and dead-node backoff.
#[derive(Debug)]
pub(crate) struct NodePool {
    nodes: Vec<Node>,
    next: AtomicUsize,
    backoff: Backoff,
}

/// A chosen node: its index in the pool, its URL and its name for logs.
#[derive(Debug, Clone)]
pub(crate) struct NodeRef {
    pub(crate) index: usize,
    pub(crate) url: Url,
    /// The URL without a password, for logs.
    pub(crate) shown: String,
}

impl NodePool {
    /// `nodes` must not be empty (checked by `OutputConfig::validate`).
    pub(crate) fn new(nodes: &[Url], backoff: Backoff) -> Self {
        NodePool {
            nodes: nodes
                .iter()
                .map(|url| Node {
                    url: url.clone(),
                    shown: redacted_url(url),
                    state: Mutex::new(NodeState::default()),
                })
                .collect(),
            next: AtomicUsize::new(0),
            backoff,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The next node to use, or `None` when the pool is empty.
    pub(crate) fn pick(&self) -> Option<NodeRef> {
        self.pick_at(Instant::now())
    }

    fn pick_at(&self, now: Instant) -> Option<NodeRef> {
        let n = self.nodes.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut soonest: Option<(usize, Instant)> = None;
        for offset in 0..n {
            let index = (start + offset) % n;
            let state = self.state(index);
            match state.dead_until {
                Some(until) if until > now => {
                    if soonest.is_none_or(|(_, s)| until < s) {
                        soonest = Some((index, until));
                    }
                }
                _ => return Some(self.node_ref(index)),
            }
        }
        soonest.map(|(index, _)| self.node_ref(index))
    }

    /// The node answered (any HTTP status): use it normally again.
    pub(crate) fn mark_alive(&self, index: usize) {
        if let Some(node) = self.nodes.get(index) {
            if let Ok(mut s) = node.state.lock() {
                *s = NodeState::default();
            }
        }
    }

    /// The node could not be reached: skip it for a while.
    pub(crate) fn mark_dead(&self, index: usize) {
        self.mark_dead_at(index, Instant::now());
    }

    fn mark_dead_at(&self, index: usize, now: Instant) {
        if let Some(node) = self.nodes.get(index) {
            if let Ok(mut s) = node.state.lock() {
                // No jitter here: this is about our own view of one node, not about load.
                let period = self.backoff.ceiling(s.failures);
                s.failures = s.failures.saturating_add(1);
                s.dead_until = Some(now + period);
            }
        }
    }

    /// Time left before a dead node is tried again (zero when it is alive).
    pub(crate) fn dead_for(&self, index: usize) -> Duration {
        let now = Instant::now();
        self.state(index)
            .dead_until
            .map(|u| u.saturating_duration_since(now))
            .unwrap_or_default()
    }

    fn state(&self, index: usize) -> NodeState {
        self.nodes[index]
            .state
            .lock()
            .map(|s| *s)
            .unwrap_or_default()
    }

    fn node_ref(&self, index: usize) -> NodeRef {
        let node = &self.nodes[index];
        NodeRef {
            index,
            url: node.url.clone(),
            shown: node.shown.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: usize) -> NodePool {
        let urls: Vec<Url> = (0..n)
            .map(|i| Url::parse(&format!("http://es{i}:9200")).unwrap())
            .collect();
        NodePool::new(
            &urls,
            Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
        )
    }

    #[test]
    fn nodes_are_used_in_turn() {
        let p = pool(3);
        let picked: Vec<usize> = (0..6).map(|_| p.pick().unwrap().index).collect();
        assert_eq!(picked, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn a_dead_node_is_skipped_until_its_backoff_ends() {
        let p = pool(3);
        let now = Instant::now();
        p.mark_dead_at(1, now);
        let picked: Vec<usize> = (0..4).map(|_| p.pick_at(now).unwrap().index).collect();
        assert!(!picked.contains(&1), "{picked:?}");
        let later = now + Duration::from_secs(2);
        let picked: Vec<usize> = (0..3).map(|_| p.pick_at(later).unwrap().index).collect();
        assert!(picked.contains(&1), "{picked:?}");
    }

    #[test]
    fn when_all_nodes_are_dead_the_soonest_back_is_tried() {
        let p = pool(2);
        let now = Instant::now();
        p.mark_dead_at(0, now);
        p.mark_dead_at(0, now); // second failure: 2 s
        p.mark_dead_at(1, now); // first failure: 1 s
        assert_eq!(p.pick_at(now).unwrap().index, 1);
    }

    #[test]
    fn an_answer_revives_a_node() {
        let p = pool(1);
        p.mark_dead(0);
        assert!(p.dead_for(0) > Duration::ZERO);
        p.mark_alive(0);
        assert_eq!(p.dead_for(0), Duration::ZERO);
    }

    #[test]
    fn urls_are_shown_without_passwords() {
        let p = NodePool::new(
            &[Url::parse("https://elastic:s3cret@es01:9200/").unwrap()],
            Backoff::new(Duration::from_secs(1), Duration::from_secs(2)),
        );
        assert!(!p.pick().unwrap().shown.contains("s3cret"));
    }
}
