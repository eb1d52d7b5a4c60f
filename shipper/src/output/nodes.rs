//! Choosing the node for the next request.
//!
//! Nodes are used in turn (round robin), which spreads the coordinating work of `_bulk`
//! requests over the cluster. A node that refused a connection is skipped for a backoff period
//! that doubles while it keeps failing, so a dead node costs one failed connect per period, not
//! one per request. When every node is in its backoff period the one that comes back first is
//! tried anyway: the output must keep probing rather than stop.
//!
//! The list starts as the configured nodes and may be replaced by the nodes the cluster
//! names (node discovery, [`super::discovery`]); a node that stays in the list keeps its
//! health, and a [`NodeRef`] handed out before a replacement still marks its own node.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use url::Url;

use super::config::redacted_url;
use super::retry::Backoff;

/// One node and its health.
#[derive(Debug)]
struct Node {
    url: Url,
    shown: String,
    state: Arc<Mutex<NodeState>>,
}

impl Node {
    fn new(url: Url) -> Self {
        Node {
            shown: redacted_url(&url),
            url,
            state: Arc::new(Mutex::new(NodeState::default())),
        }
    }

    fn state(&self) -> NodeState {
        self.state.lock().map(|s| *s).unwrap_or_default()
    }

    fn node_ref(&self) -> NodeRef {
        NodeRef {
            url: self.url.clone(),
            shown: self.shown.clone(),
            state: Arc::clone(&self.state),
        }
    }
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
    nodes: RwLock<Arc<[Node]>>,
    /// The configured nodes, kept for discovery to fall back on when every node of the
    /// current list fails.
    seeds: Vec<Url>,
    next: AtomicUsize,
    backoff: Backoff,
}

/// A chosen node: its URL, its name for logs, and a handle on its health.
#[derive(Debug, Clone)]
pub(crate) struct NodeRef {
    pub(crate) url: Url,
    /// The URL without a password, for logs.
    pub(crate) shown: String,
    state: Arc<Mutex<NodeState>>,
}

impl NodeRef {
    /// A node outside any pool (a configured node asked directly, a test): marks on it
    /// change nothing in the pool.
    pub(crate) fn detached(url: Url) -> Self {
        Node::new(url).node_ref()
    }
}

impl NodePool {
    /// `nodes` must not be empty (checked by `OutputConfig::validate`).
    pub(crate) fn new(nodes: &[Url], backoff: Backoff) -> Self {
        NodePool {
            nodes: RwLock::new(nodes.iter().cloned().map(Node::new).collect()),
            seeds: nodes.to_vec(),
            next: AtomicUsize::new(0),
            backoff,
        }
    }

    fn list(&self) -> Arc<[Node]> {
        match self.nodes.read() {
            Ok(list) => Arc::clone(&list),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.list().len()
    }

    /// The URLs in use now, in order.
    pub(crate) fn urls(&self) -> Vec<Url> {
        self.list().iter().map(|n| n.url.clone()).collect()
    }

    /// The configured nodes.
    pub(crate) fn seeds(&self) -> &[Url] {
        &self.seeds
    }

    /// Uses `urls` from now on (duplicates dropped, order kept); a node already in the list
    /// keeps its health. An empty list changes nothing: the pool is never left without a
    /// node. Returns whether the set of nodes changed.
    pub(crate) fn replace(&self, urls: &[Url]) -> bool {
        let mut unique: Vec<&Url> = Vec::with_capacity(urls.len());
        for url in urls {
            if !unique.contains(&url) {
                unique.push(url);
            }
        }
        if unique.is_empty() {
            return false;
        }
        let current = self.list();
        let same = current.len() == unique.len()
            && unique.iter().all(|u| current.iter().any(|n| &n.url == *u));
        if same {
            return false;
        }
        let list: Arc<[Node]> = unique
            .into_iter()
            .map(|url| match current.iter().find(|n| &n.url == url) {
                Some(kept) => Node {
                    url: kept.url.clone(),
                    shown: kept.shown.clone(),
                    state: Arc::clone(&kept.state),
                },
                None => Node::new(url.clone()),
            })
            .collect();
        match self.nodes.write() {
            Ok(mut nodes) => *nodes = list,
            Err(poisoned) => *poisoned.into_inner() = list,
        }
        true
    }

    /// The next node to use, or `None` when the pool is empty.
    pub(crate) fn pick(&self) -> Option<NodeRef> {
        self.pick_at(Instant::now())
    }

    fn pick_at(&self, now: Instant) -> Option<NodeRef> {
        let list = self.list();
        let n = list.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut soonest: Option<(usize, Instant)> = None;
        for offset in 0..n {
            let index = (start + offset) % n;
            match list[index].state().dead_until {
                Some(until) if until > now => {
                    if soonest.is_none_or(|(_, s)| until < s) {
                        soonest = Some((index, until));
                    }
                }
                _ => return Some(list[index].node_ref()),
            }
        }
        soonest.map(|(index, _)| list[index].node_ref())
    }

    /// The node answered (any HTTP status): use it normally again.
    pub(crate) fn mark_alive(&self, node: &NodeRef) {
        if let Ok(mut s) = node.state.lock() {
            *s = NodeState::default();
        }
    }

    /// The node could not be reached: skip it for a while.
    pub(crate) fn mark_dead(&self, node: &NodeRef) {
        self.mark_dead_at(node, Instant::now());
    }

    fn mark_dead_at(&self, node: &NodeRef, now: Instant) {
        if let Ok(mut s) = node.state.lock() {
            // No jitter here: this is about our own view of one node, not about load.
            let period = self.backoff.ceiling(s.failures);
            s.failures = s.failures.saturating_add(1);
            s.dead_until = Some(now + period);
        }
    }

    /// Time left before a dead node is tried again (zero when it is alive).
    pub(crate) fn dead_for(&self, node: &NodeRef) -> Duration {
        let now = Instant::now();
        node.state
            .lock()
            .map(|s| *s)
            .unwrap_or_default()
            .dead_until
            .map(|u| u.saturating_duration_since(now))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(i: usize) -> Url {
        Url::parse(&format!("http://es{i}:9200")).unwrap()
    }

    fn index_of(p: &NodePool, node: &NodeRef) -> usize {
        p.urls().iter().position(|u| *u == node.url).unwrap()
    }

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
        let picked: Vec<usize> = (0..6).map(|_| index_of(&p, &p.pick().unwrap())).collect();
        assert_eq!(picked, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn a_dead_node_is_skipped_until_its_backoff_ends() {
        let p = pool(3);
        let now = Instant::now();
        let one = p.list()[1].node_ref();
        p.mark_dead_at(&one, now);
        let picked: Vec<usize> = (0..4)
            .map(|_| index_of(&p, &p.pick_at(now).unwrap()))
            .collect();
        assert!(!picked.contains(&1), "{picked:?}");
        let later = now + Duration::from_secs(2);
        let picked: Vec<usize> = (0..3)
            .map(|_| index_of(&p, &p.pick_at(later).unwrap()))
            .collect();
        assert!(picked.contains(&1), "{picked:?}");
    }

    #[test]
    fn when_all_nodes_are_dead_the_soonest_back_is_tried() {
        let p = pool(2);
        let now = Instant::now();
        let list = p.list();
        let (zero, one) = (list[0].node_ref(), list[1].node_ref());
        p.mark_dead_at(&zero, now);
        p.mark_dead_at(&zero, now); // second failure: 2 s
        p.mark_dead_at(&one, now); // first failure: 1 s
        assert_eq!(index_of(&p, &p.pick_at(now).unwrap()), 1);
    }

    #[test]
    fn an_answer_revives_a_node() {
        let p = pool(1);
        let node = p.pick().unwrap();
        p.mark_dead(&node);
        assert!(p.dead_for(&node) > Duration::ZERO);
        p.mark_alive(&node);
        assert_eq!(p.dead_for(&node), Duration::ZERO);
    }

    #[test]
    fn a_replaced_list_keeps_the_health_of_the_nodes_it_keeps() {
        let p = pool(2);
        let list = p.list();
        let (zero, one) = (list[0].node_ref(), list[1].node_ref());
        p.mark_dead(&one);
        assert!(p.replace(&[url(1), url(2), url(1)]));
        assert_eq!(p.urls(), [url(1), url(2)]);
        // es1 is still dead: the picks skip it; es0 left, a mark on it changes nothing.
        let picked: Vec<Url> = (0..4).map(|_| p.pick().unwrap().url).collect();
        assert!(picked.iter().all(|u| *u == url(2)), "{picked:?}");
        p.mark_dead(&zero);
        assert!(!p.replace(&[url(2), url(1)]), "same set, no change");
        assert!(!p.replace(&[]), "never left empty");
        assert_eq!(p.seeds(), [url(0), url(1)]);
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
