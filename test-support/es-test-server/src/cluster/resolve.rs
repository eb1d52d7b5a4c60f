//! Name resolution: what an expression (concrete index, data stream,
//! wildcard, comma list, exclusion, `::failures` selector) means for a read
//! (concrete indices) and for a write (a data stream or an index, created on
//! demand from the matching template).

use chrono::{DateTime, Utc};

use super::data_stream::DataStream;
use super::templates;
use super::write::{OpType, WriteRequest};
use super::{validate_index_name, Cluster};
use crate::error::EsError;
use crate::wildcard;

/// Where a name points for a write.
pub(super) enum Target {
    DataStream(String),
    Index(String),
}

impl Cluster {
    /// Resolves a search/count expression (comma list, `*` wildcards, data
    /// stream names, `::failures` / `::data` selectors, `_all`) to concrete
    /// index names. Wildcards skip hidden (dot) names unless the pattern starts
    /// with a dot; a missing concrete name is `index_not_found_exception`
    /// unless `ignore_unavailable`.
    pub fn resolve_read(
        &self,
        expr: &str,
        ignore_unavailable: bool,
    ) -> Result<Vec<String>, EsError> {
        let mut out: Vec<String> = Vec::new();
        let expr = if expr.is_empty() || expr == "_all" {
            "*"
        } else {
            expr
        };
        for raw in expr.split(',') {
            let raw = raw.trim();
            if raw.is_empty() {
                continue;
            }
            if let Some(excl) = raw.strip_prefix('-') {
                if !out.is_empty() {
                    let excluded = self.resolve_read(excl, true)?;
                    out.retain(|n| !excluded.contains(n));
                    continue;
                }
            }
            let (name, failures) = match raw.split_once("::") {
                Some((n, "failures")) => (n, true),
                Some((n, "data")) => (n, false),
                Some((_, sel)) => {
                    return Err(EsError::illegal_argument(format!(
                        "invalid usage of :: separator, [{sel}] is not a recognized selector"
                    )))
                }
                None => (raw, false),
            };
            let ds_indices = |ds: &DataStream| -> Vec<String> {
                if failures {
                    ds.failure_indices.clone()
                } else {
                    ds.backing.clone()
                }
            };
            if name.contains('*') {
                let show_hidden = name.starts_with('.');
                for ds in self.data_streams.values() {
                    if wildcard::matches(name, &ds.name) && (show_hidden || !ds.hidden) {
                        out.extend(ds_indices(ds));
                    }
                }
                if !failures {
                    for (n, i) in &self.indices {
                        let hidden = n.starts_with('.');
                        if i.data_stream.is_none()
                            && wildcard::matches(name, n)
                            && (show_hidden || !hidden)
                        {
                            out.push(n.clone());
                        }
                        // Backing indices matched by an explicit dot pattern.
                        if i.data_stream.is_some() && show_hidden && wildcard::matches(name, n) {
                            out.push(n.clone());
                        }
                    }
                }
            } else if let Some(ds) = self.data_streams.get(name) {
                out.extend(ds_indices(ds));
            } else if self.indices.contains_key(name) {
                out.push(name.to_string());
            } else if !ignore_unavailable {
                return Err(EsError::index_not_found(name));
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    pub(super) fn resolve_write(
        &mut self,
        req: &WriteRequest<'_>,
        now: DateTime<Utc>,
    ) -> Result<Target, EsError> {
        let name = req.index;
        if req.require_alias {
            // No aliases exist in this server.
            return Err(EsError::index_not_found(name).with_reason(format!(
                "no such index [{name}] and [require_alias] request flag is [true] and [{name}] is not an alias"
            )));
        }
        if self.data_streams.contains_key(name) {
            return Ok(Target::DataStream(name.to_string()));
        }
        if self.indices.contains_key(name) {
            if req.require_data_stream {
                return Err(EsError::illegal_argument(format!(
                    "index [{name}] is not a data stream, but [require_data_stream] request flag is [true]"
                )));
            }
            return Ok(Target::Index(name.to_string()));
        }
        validate_index_name(name)?;
        if req.op == OpType::Delete {
            return Err(EsError::index_not_found(name));
        }
        let template = templates::find_matching(self.index_templates.values(), name).cloned();
        match template {
            Some(t) if t.data_stream.is_some() => {
                self.create_data_stream(name, &t, now)?;
                Ok(Target::DataStream(name.to_string()))
            }
            t => {
                if req.require_data_stream {
                    return Err(EsError::illegal_argument(format!(
                        "cannot create index [{name}] with [require_data_stream] request flag set to [true] since no matching data stream template exists"
                    )));
                }
                self.create_index(name, t.as_ref(), now)?;
                Ok(Target::Index(name.to_string()))
            }
        }
    }
}

impl EsError {
    fn with_reason(mut self, reason: String) -> Self {
        self.reason = reason;
        self
    }
}
