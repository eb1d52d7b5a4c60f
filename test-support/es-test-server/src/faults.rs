//! Fault injection, changeable at runtime from Rust ([`Faults`]) or over HTTP
//! (`/_test/faults`, see `control.rs`). Every fault is counted down or
//! sampled under one lock so concurrent requests consume it exactly once.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

/// Which requests a whole-request fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Only `_bulk` requests (the default: template installation still works).
    #[default]
    Bulk,
    /// Every API request (not `/_test`).
    All,
}

/// A per-item fault: the next `count` items, or a `fraction` of items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemFault {
    /// 429 (`es_rejected_execution_exception`), 500, 503, or any status.
    pub status: u16,
    /// Items left to fail; `None` with a fraction means "until cleared".
    #[serde(default)]
    pub count: Option<u64>,
    /// Probability in 0..=1 that an item fails.
    #[serde(default)]
    pub fraction: Option<f64>,
}

/// A whole-request fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestFault {
    /// 429, 500, 502, 503 (or any status).
    pub status: u16,
    /// Requests left to fail.
    pub count: u64,
    #[serde(default)]
    pub scope: Scope,
}

/// What a hostile proxy in front of Elasticsearch does to one `_bulk` answer: the request
/// reaches Elasticsearch and is executed as usual (documents are stored), and its answer is
/// replaced or mangled on the way back. Elasticsearch itself never answers like this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum HostileAnswer {
    /// A 200 with a body of `bytes` bytes: the start of a `_bulk` answer, then whitespace.
    /// Streamed, never held in memory.
    HugeBody { bytes: u64 },
    /// A 200 with `Content-Encoding: gzip` whose body, about 1/200 of `bytes`, decompresses
    /// to `bytes` bytes (the start of a `_bulk` answer, then whitespace).
    GzipBomb { bytes: u64 },
    /// An Elasticsearch-shaped error answer with `status` (429, say) whose reason is
    /// `reason_bytes` long.
    HugeError { status: u16, reason_bytes: u64 },
    /// The real answer with its items in reverse order.
    ReorderedItems,
    /// The real answer without its last item.
    ShortItems,
    /// The real answer with its last item repeated.
    LongItems,
}

/// The full fault state; also the JSON body of `PUT /_test/faults`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultState {
    pub item: Option<ItemFault>,
    pub request: Option<RequestFault>,
    /// Overrides `http.max_content_length` (bytes).
    pub max_content_length: Option<u64>,
    /// Delay before answering each request in `delay_scope`.
    pub delay_ms: Option<u64>,
    pub delay_scope: Scope,
    /// Close the connection without an answer for the next N requests in `drop_scope`.
    pub drop_requests: u64,
    pub drop_scope: Scope,
    /// Execute the next N requests in `lose_scope`, then close the connection without
    /// sending the answer: what a client sees when a node or a proxy dies after the work
    /// was done (documents stored, answer lost).
    pub lose_responses: u64,
    pub lose_scope: Scope,
    /// Field path -> type: documents are checked as if the field had this type.
    pub forced_mappings: HashMap<String, String>,
    /// The next N data-stream items fail mapping (going to the failure store
    /// if the data stream has it on, else answering 400).
    pub mapping_failures: u64,
    /// Answer PUTs of ILM policies, component and index templates with Elasticsearch's
    /// 403, as for a user without the `manage_ilm` and `manage_index_templates` cluster
    /// privileges; reading them stays allowed, as `monitor` and `read_ilm` grant.
    pub refuse_template_writes: bool,
    /// The answers of the next `_bulk` requests, one each in order, as a hostile proxy
    /// rewrites them.
    pub hostile_answers: VecDeque<HostileAnswer>,
}

/// Handle to the shared fault state.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    inner: Arc<Mutex<FaultState>>,
}

impl Faults {
    fn lock(&self) -> MutexGuard<'_, FaultState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of the current state.
    pub fn snapshot(&self) -> FaultState {
        self.lock().clone()
    }

    /// Replaces the whole state.
    pub fn set(&self, state: FaultState) {
        *self.lock() = state;
    }

    /// Removes every fault.
    pub fn clear(&self) {
        self.set(FaultState::default());
    }

    /// The next `count` bulk items answer `status` (429 gives
    /// `es_rejected_execution_exception`).
    pub fn fail_next_items(&self, count: u64, status: u16) {
        self.lock().item = Some(ItemFault {
            status,
            count: Some(count),
            fraction: None,
        });
    }

    /// Each bulk item fails with `status` with probability `fraction`.
    pub fn fail_item_fraction(&self, fraction: f64, status: u16) {
        self.lock().item = Some(ItemFault {
            status,
            count: None,
            fraction: Some(fraction.clamp(0.0, 1.0)),
        });
    }

    /// The next `count` `_bulk` requests answer `status` as a whole.
    pub fn fail_next_requests(&self, count: u64, status: u16) {
        self.lock().request = Some(RequestFault {
            status,
            count,
            scope: Scope::Bulk,
        });
    }

    /// Like [`Faults::fail_next_requests`] for every API request.
    pub fn fail_next_requests_all(&self, count: u64, status: u16) {
        self.lock().request = Some(RequestFault {
            status,
            count,
            scope: Scope::All,
        });
    }

    /// Bodies above `bytes` answer 413 (`None` restores the configured limit).
    pub fn set_max_content_length(&self, bytes: Option<u64>) {
        self.lock().max_content_length = bytes;
    }

    /// Delays every `_bulk` answer (`None` removes the delay).
    pub fn set_delay(&self, delay: Option<Duration>) {
        let mut s = self.lock();
        s.delay_ms = delay.map(|d| d.as_millis() as u64);
        s.delay_scope = Scope::Bulk;
    }

    /// Closes the connection without answering the next `count` `_bulk` requests.
    pub fn drop_next_requests(&self, count: u64) {
        let mut s = self.lock();
        s.drop_requests = count;
        s.drop_scope = Scope::Bulk;
    }

    /// Executes the next `count` `_bulk` requests (documents are stored) and closes the
    /// connection instead of answering.
    pub fn lose_next_responses(&self, count: u64) {
        let mut s = self.lock();
        s.lose_responses = count;
        s.lose_scope = Scope::Bulk;
    }

    /// Checks documents as if `field` were mapped as `ty` (e.g. `message`
    /// as `long`), producing mapping errors for values that do not fit.
    pub fn force_field_type(&self, field: &str, ty: &str) {
        self.lock()
            .forced_mappings
            .insert(field.to_string(), ty.to_string());
    }

    /// The next `count` data-stream items fail mapping: answered 201 with
    /// `"failure_store":"used"` where the failure store is on, else 400.
    /// Refuses (403) or allows template and ILM policy writes from now on.
    pub fn refuse_template_writes(&self, refuse: bool) {
        self.lock().refuse_template_writes = refuse;
    }

    /// Whether template and ILM policy writes are refused.
    pub fn template_writes_refused(&self) -> bool {
        self.lock().refuse_template_writes
    }

    pub fn fail_mapping_next_items(&self, count: u64) {
        self.lock().mapping_failures = count;
    }

    /// The next `_bulk` answers are rewritten as `answers` say, one each, in order (after
    /// those already queued).
    pub fn hostile_next_answers(&self, answers: &[HostileAnswer]) {
        self.lock().hostile_answers.extend(answers.iter().copied());
    }

    /// Hostile answers still queued.
    pub fn hostile_answers_left(&self) -> usize {
        self.lock().hostile_answers.len()
    }

    // ----- consumption (server side) -----

    pub(crate) fn take_hostile_answer(&self, is_bulk: bool) -> Option<HostileAnswer> {
        if !is_bulk {
            return None;
        }
        self.lock().hostile_answers.pop_front()
    }

    pub(crate) fn max_content_length(&self) -> Option<u64> {
        self.lock().max_content_length
    }

    pub(crate) fn take_drop(&self, is_bulk: bool) -> bool {
        let mut s = self.lock();
        if s.drop_requests > 0 && (is_bulk || s.drop_scope == Scope::All) {
            s.drop_requests -= 1;
            return true;
        }
        false
    }

    pub(crate) fn take_lost_response(&self, is_bulk: bool) -> bool {
        let mut s = self.lock();
        if s.lose_responses > 0 && (is_bulk || s.lose_scope == Scope::All) {
            s.lose_responses -= 1;
            return true;
        }
        false
    }

    pub(crate) fn delay(&self, is_bulk: bool) -> Option<Duration> {
        let s = self.lock();
        match s.delay_ms {
            Some(ms) if is_bulk || s.delay_scope == Scope::All => Some(Duration::from_millis(ms)),
            _ => None,
        }
    }

    pub(crate) fn take_request_fault(&self, is_bulk: bool) -> Option<u16> {
        let mut s = self.lock();
        let f = s.request.as_mut()?;
        if !(is_bulk || f.scope == Scope::All) || f.count == 0 {
            return None;
        }
        f.count -= 1;
        let status = f.status;
        if f.count == 0 {
            s.request = None;
        }
        Some(status)
    }

    /// Per-item decisions for one bulk request, taken under one lock.
    pub(crate) fn item_plan(&self, items: usize) -> ItemPlan {
        let mut s = self.lock();
        let mut statuses = vec![None; items];
        if let Some(f) = s.item.clone() {
            let mut rng = rand::rng();
            let mut left = f.count;
            for slot in statuses.iter_mut() {
                let hit = match (left, f.fraction) {
                    (Some(0), _) => false,
                    (_, Some(p)) => rng.random_bool(p),
                    (Some(_), None) => true,
                    (None, None) => false,
                };
                if hit {
                    *slot = Some(f.status);
                    if let Some(l) = left.as_mut() {
                        *l -= 1;
                    }
                }
            }
            if left == Some(0) {
                s.item = None;
            } else if let Some(item) = s.item.as_mut() {
                item.count = left;
            }
        }
        ItemPlan {
            statuses,
            forced: s.forced_mappings.clone(),
            mapping_failures: std::mem::take(&mut s.mapping_failures),
        }
    }

    /// Gives back mapping failures not consumed by data-stream items.
    pub(crate) fn return_mapping_failures(&self, n: u64) {
        if n > 0 {
            self.lock().mapping_failures += n;
        }
    }
}

/// What faults apply to the items of one bulk request.
#[derive(Debug, Default)]
pub(crate) struct ItemPlan {
    pub statuses: Vec<Option<u16>>,
    pub forced: HashMap<String, String>,
    pub mapping_failures: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_item_faults_are_consumed_across_requests() {
        let f = Faults::default();
        f.fail_next_items(3, 429);
        let p = f.item_plan(2);
        assert_eq!(p.statuses, vec![Some(429), Some(429)]);
        let p = f.item_plan(2);
        assert_eq!(p.statuses, vec![Some(429), None]);
        assert_eq!(f.item_plan(1).statuses, vec![None]);
    }

    #[test]
    fn fraction_one_fails_everything_and_zero_nothing() {
        let f = Faults::default();
        f.fail_item_fraction(1.0, 503);
        assert!(f.item_plan(50).statuses.iter().all(|s| *s == Some(503)));
        f.fail_item_fraction(0.0, 503);
        assert!(f.item_plan(50).statuses.iter().all(Option::is_none));
    }

    #[test]
    fn request_faults_respect_scope_and_count() {
        let f = Faults::default();
        f.fail_next_requests(1, 503);
        assert_eq!(f.take_request_fault(false), None);
        assert_eq!(f.take_request_fault(true), Some(503));
        assert_eq!(f.take_request_fault(true), None);
    }

    #[test]
    fn lost_responses_are_counted_down_within_their_scope() {
        let f = Faults::default();
        f.lose_next_responses(2);
        assert!(!f.take_lost_response(false), "bulk scope only");
        assert!(f.take_lost_response(true));
        assert!(f.take_lost_response(true));
        assert!(!f.take_lost_response(true));
        let s: FaultState =
            serde_json::from_str(r#"{"lose_responses":1,"lose_scope":"all"}"#).unwrap();
        assert_eq!((s.lose_responses, s.lose_scope), (1, Scope::All));
    }

    #[test]
    fn hostile_answers_are_taken_in_order_by_bulk_requests_only() {
        let f = Faults::default();
        f.hostile_next_answers(&[
            HostileAnswer::GzipBomb { bytes: 10 },
            HostileAnswer::ReorderedItems,
        ]);
        assert_eq!(f.take_hostile_answer(false), None);
        assert_eq!(
            f.take_hostile_answer(true),
            Some(HostileAnswer::GzipBomb { bytes: 10 })
        );
        assert_eq!(f.hostile_answers_left(), 1);
        assert_eq!(
            f.take_hostile_answer(true),
            Some(HostileAnswer::ReorderedItems)
        );
        assert_eq!(f.take_hostile_answer(true), None);
        let s: FaultState = serde_json::from_str(
            r#"{"hostile_answers":[{"kind":"huge_body","bytes":5},{"kind":"short_items"}]}"#,
        )
        .unwrap();
        assert_eq!(
            Vec::from(s.hostile_answers),
            [
                HostileAnswer::HugeBody { bytes: 5 },
                HostileAnswer::ShortItems
            ]
        );
    }

    #[test]
    fn fault_state_json_refuses_unknown_keys() {
        assert!(serde_json::from_str::<FaultState>(r#"{"dropp": 1}"#).is_err());
        let s: FaultState = serde_json::from_str(r#"{"item":{"status":429,"count":2}}"#).unwrap();
        assert_eq!(s.item.unwrap().count, Some(2));
    }
}
