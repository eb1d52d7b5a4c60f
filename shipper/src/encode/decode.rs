//! Is a line one JSON object, and what does it already say?
//!
//! The whole line is validated (a document Elasticsearch cannot parse would only come back as
//! an error), but values are skipped, not built: only the top-level keys are looked at, to find
//! the service name and the enrichment fields the line already carries (Elasticsearch rejects a
//! document with the same key twice, so the shipper must not add a key that is there).

use std::borrow::Cow;
use std::fmt;

use schema::{field, ContainerField, Enriched};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

/// Which of the [`Enriched`] fields (and, for a container's line, of the [`ContainerField`]s)
/// a line already has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Present(u32);

/// Bit of the first [`ContainerField`] in a [`Present`] set.
const CONTAINER_BITS: usize = 16;

impl Present {
    pub(crate) fn has(self, field: Enriched) -> bool {
        self.0 & (1 << field.index()) != 0
    }

    pub(crate) fn has_container(self, field: ContainerField) -> bool {
        self.0 & (1 << (CONTAINER_BITS + field.index())) != 0
    }

    /// `container`: the container fields are looked for too (only for a container's line,
    /// so a plain file's keys are compared with the enrichment fields alone, as before).
    fn set(&mut self, key: &str, container: bool) {
        if let Some(field) = Enriched::from_name(key) {
            self.0 |= 1 << field.index();
        } else if container {
            if let Some(field) = ContainerField::from_name(key) {
                self.0 |= 1 << (CONTAINER_BITS + field.index());
            }
        }
    }
}

/// Fields of a line that alert rules look at, captured only when someone listens
/// (see [`super::tap`]): borrowed from the line unless they hold escapes.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Facts<'a> {
    pub(crate) category: Option<Cow<'a, str>>,
    pub(crate) level: Option<Cow<'a, str>>,
    pub(crate) message: Option<Cow<'a, str>>,
    pub(crate) transaction_id: Option<Cow<'a, str>>,
    pub(crate) error_type: Option<Cow<'a, str>>,
    pub(crate) error_message: Option<Cow<'a, str>>,
    pub(crate) timestamp: Option<Cow<'a, str>>,
}

/// What [`inspect`] learnt of a line.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded<'a> {
    /// A JSON object.
    Object {
        /// `service.name`, from a dotted key or a `service` object.
        service_name: Option<Cow<'a, str>>,
        present: Present,
        /// `{}`: nothing to separate the added fields from.
        empty: bool,
        /// Filled only when asked for.
        facts: Facts<'a>,
    },
    /// Valid UTF-8 but not one JSON object; the reason is for people.
    NotJson(String),
    /// Not UTF-8 at all.
    InvalidUtf8,
}

/// `container_keys`: the line comes from a container's log, so the [`ContainerField`]s it
/// already has are noted too.
pub(crate) fn inspect(line: &[u8], capture_facts: bool, container_keys: bool) -> Decoded<'_> {
    let text = match std::str::from_utf8(line) {
        Ok(t) => t,
        Err(_) => return Decoded::InvalidUtf8,
    };
    let first = text.trim_start().as_bytes().first().copied();
    if first != Some(b'{') {
        return Decoded::NotJson(match first {
            None => "empty line".into(),
            Some(_) => "not a JSON object".into(),
        });
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let result = de
        .deserialize_map(TopLevel {
            capture_facts,
            container_keys,
        })
        .and_then(|found| {
            de.end()?;
            Ok(found)
        });
    match result {
        Ok((service_name, present, empty, facts)) => Decoded::Object {
            service_name,
            present,
            empty,
            facts,
        },
        Err(e) => Decoded::NotJson(e.to_string()),
    }
}

type Found<'a> = (Option<Cow<'a, str>>, Present, bool, Facts<'a>);

struct TopLevel {
    capture_facts: bool,
    container_keys: bool,
}

impl<'de> Visitor<'de> for TopLevel {
    type Value = Found<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut service_name = None;
        let mut present = Present::default();
        let mut empty = true;
        let mut facts = Facts::default();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            empty = false;
            if self.capture_facts {
                let slot = match key.as_ref() {
                    field::LOG_CATEGORY => Some(&mut facts.category),
                    field::LOG_LEVEL => Some(&mut facts.level),
                    field::MESSAGE => Some(&mut facts.message),
                    field::TRANSACTION_ID => Some(&mut facts.transaction_id),
                    field::ERROR_TYPE => Some(&mut facts.error_type),
                    field::ERROR_MESSAGE => Some(&mut facts.error_message),
                    _ => None,
                };
                if let Some(slot) = slot {
                    *slot = map.next_value_seed(StringOrNothing)?;
                    continue;
                }
            }
            match key.as_ref() {
                field::SERVICE_NAME => service_name = map.next_value_seed(StringOrNothing)?,
                field::TIMESTAMP if self.capture_facts => {
                    present.set(field::TIMESTAMP, false);
                    facts.timestamp = map.next_value_seed(StringOrNothing)?;
                }
                "service" => {
                    if let Some(name) = map.next_value_seed(NameInObject)? {
                        service_name = Some(name);
                    }
                }
                other => {
                    present.set(other, self.container_keys);
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok((service_name, present, empty, facts))
    }
}

/// A key, borrowed from the line unless it holds escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(CowStr)
    }
}

struct CowStr;

impl<'de> Visitor<'de> for CowStr {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

/// A string value, or `None` for any other JSON value (skipped, not an error).
struct StringOrNothing;

impl<'de> DeserializeSeed<'de> for StringOrNothing {
    type Value = Option<Cow<'de, str>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(AnyString)
    }
}

struct AnyString;

impl<'de> Visitor<'de> for AnyString {
    type Value = Option<Cow<'de, str>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(v.to_owned())))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

/// The `name` string of an object value (`"service": {"name": ...}`), or `None`.
struct NameInObject;

impl<'de> DeserializeSeed<'de> for NameInObject {
    type Value = Option<Cow<'de, str>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(NameVisitor)
    }
}

struct NameVisitor;

impl<'de> Visitor<'de> for NameVisitor {
    type Value = Option<Cow<'de, str>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut name = None;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            if key == "name" {
                name = map.next_value_seed(StringOrNothing)?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(name)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        AnyString.visit_seq(seq)
    }
    fn visit_borrowed_str<E: de::Error>(self, _: &'de str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(line: &str) -> (Option<String>, Present, bool) {
        match inspect(line.as_bytes(), false, false) {
            Decoded::Object {
                service_name,
                present,
                empty,
                ..
            } => (service_name.map(|s| s.into_owned()), present, empty),
            other => panic!("not an object: {other:?}"),
        }
    }

    #[test]
    fn the_service_name_is_found_dotted_or_nested() {
        assert_eq!(
            object(r#"{"service.name":"payment","x":1}"#).0.as_deref(),
            Some("payment")
        );
        assert_eq!(
            object(r#"{"service":{"version":"1","name":"loan-resource"}}"#)
                .0
                .as_deref(),
            Some("loan-resource")
        );
        assert_eq!(
            object(r#"{"service.name":"pa\u0079ment"}"#).0.as_deref(),
            Some("payment")
        );
        assert_eq!(object(r#"{"service.name":7}"#).0, None);
        assert_eq!(object(r#"{"service":"flat"}"#).0, None);
    }

    #[test]
    fn keys_the_shipper_would_add_are_noticed() {
        let (_, present, empty) =
            object(r#"{"@timestamp":"t","host.name":"h","nested":{"log.offset":1}}"#);
        assert!(present.has(Enriched::Timestamp));
        assert!(present.has(Enriched::HostName));
        assert!(
            !present.has(Enriched::LogOffset),
            "only top-level keys count"
        );
        assert!(!empty);
        assert!(object("{}").2);
        assert!(object("  { } ").2);
    }

    #[test]
    fn anything_but_one_json_object_is_not_json() {
        for line in [
            "",
            "plain text",
            "[1,2]",
            "42",
            r#"{"a":1"#,
            r#"{"a":1} trailing"#,
            r#"{"a":tru}"#,
        ] {
            assert!(
                matches!(inspect(line.as_bytes(), false, false), Decoded::NotJson(_)),
                "{line}"
            );
        }
    }

    #[test]
    fn container_keys_are_noticed_only_for_a_container_s_line() {
        let line = br#"{"stream":"mine","kubernetes.namespace":"x","host.name":"h"}"#;
        let Decoded::Object { present, .. } = inspect(line, false, true) else {
            panic!("an object");
        };
        assert!(present.has_container(ContainerField::Stream));
        assert!(present.has_container(ContainerField::KubernetesNamespace));
        assert!(!present.has_container(ContainerField::ContainerId));
        assert!(present.has(Enriched::HostName));
        let Decoded::Object { present, .. } = inspect(line, false, false) else {
            panic!("an object");
        };
        assert!(!present.has_container(ContainerField::Stream));
    }

    #[test]
    fn invalid_utf8_is_told_apart() {
        assert_eq!(
            inspect(b"{\"a\":\"\xff\"}", false, false),
            Decoded::InvalidUtf8
        );
    }

    #[test]
    fn facts_are_captured_only_when_asked() {
        let line = br#"{"@timestamp":"t","log.category":"SystemError","log.level":"ERROR","message":"db\ndown","transaction.id":"tx-1","error.message":"refused","service.name":"payment"}"#;
        let Decoded::Object { facts, present, .. } = inspect(line, true, false) else {
            panic!("an object");
        };
        assert_eq!(facts.category.as_deref(), Some("SystemError"));
        assert_eq!(facts.level.as_deref(), Some("ERROR"));
        assert_eq!(facts.message.as_deref(), Some("db\ndown"));
        assert_eq!(facts.transaction_id.as_deref(), Some("tx-1"));
        assert_eq!(facts.error_message.as_deref(), Some("refused"));
        assert_eq!(facts.timestamp.as_deref(), Some("t"));
        assert!(present.has(Enriched::Timestamp));
        let Decoded::Object { facts, .. } = inspect(line, false, false) else {
            panic!("an object");
        };
        assert_eq!(facts, Facts::default());
    }
}
