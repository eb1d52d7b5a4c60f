//! The pieces every settings declaration of the shipper shares, free of any one setting:
//! the error that names a setting, "an empty environment variable is unset", the value
//! parsers for the command line and environment (durations, sizes, counts, secrets), and the
//! figment layering of what clap read over the TOML file.
//!
//! It depends on nothing of the shipper, so any other part (alerting next) can declare its
//! settings the same way: a `clap::Args + Serialize + Deserialize` struct whose fields are
//! `Option<T>`, merged by [`layer`] and named in errors by [`label`].

use std::ffi::OsString;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A setting that cannot be used, and why. `setting` names it the way a user sets it: its
/// environment variable and its key in the file, e.g. `SHIPPER_BATCH_MAX_DOCS [batch.max_docs]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting {setting}: {reason}")]
pub struct SettingError {
    pub(crate) setting: String,
    pub(crate) reason: String,
}

impl SettingError {
    pub(crate) fn new(setting: impl Into<String>, reason: impl Into<String>) -> SettingError {
        SettingError {
            setting: setting.into(),
            reason: reason.into(),
        }
    }
}

/// How a setting is shown in errors: `ENV [section.key]`, or `--flag [section.key]` when it
/// has no environment variable. `sections` pairs each file section with the command whose
/// arguments are that section's settings; the argument's id is its key in the section.
pub(crate) fn label(sections: &[(&str, clap::Command)], id: &str) -> String {
    for (section, cmd) in sections {
        if let Some(arg) = cmd.get_arguments().find(|a| a.get_id() == id) {
            let key = format!("[{section}.{id}]");
            return match (arg.get_env(), arg.get_long()) {
                (Some(env), _) => format!("{} {key}", env.to_string_lossy()),
                (None, Some(long)) => format!("--{long} {key}"),
                (None, None) => key,
            };
        }
    }
    id.to_string()
}

/// The environment variables named by `cmd`'s arguments that are set but empty. `docker
/// compose` passes an unset `.env` line as an empty string; such a variable means "not set".
pub(crate) fn empty_env_vars(
    cmd: &clap::Command,
    lookup: impl Fn(&std::ffi::OsStr) -> Option<OsString>,
) -> Vec<OsString> {
    cmd.get_arguments()
        .filter_map(|a| a.get_env())
        .filter(|name| lookup(name).is_some_and(|v| v.is_empty()))
        .map(|name| name.to_os_string())
        .collect()
}

/// Removes the empty variables of [`empty_env_vars`] from this process's environment, so
/// clap sees them as unset. Call it first thing in `main`, while only one thread runs.
pub(crate) fn unset_empty_env(cmd: &clap::Command) {
    for name in empty_env_vars(cmd, |n| std::env::var_os(n)) {
        std::env::remove_var(name);
    }
}

/// A clap error about one argument's value, as the setting it is. `None` for every other
/// kind of error (help, version, an unknown flag), which clap reports itself.
pub(crate) fn from_clap(
    sections: &[(&str, clap::Command)],
    e: &clap::Error,
) -> Option<SettingError> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(
        e.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return None;
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    // `--batch-max-wait <BATCH_MAX_WAIT>`: the flag names the argument.
    let long = arg.split_whitespace().next()?.trim_start_matches('-');
    let id = sections.iter().find_map(|(_, cmd)| {
        cmd.get_arguments()
            .find(|a| a.get_long() == Some(long))
            .map(|a| a.get_id().to_string())
    })?;
    let reason = match (
        std::error::Error::source(e),
        e.get(ContextKind::InvalidValue),
    ) {
        (Some(source), _) => source.to_string(),
        (None, Some(ContextValue::String(v))) => format!("{v:?} is not a possible value"),
        (None, _) => "not a possible value".to_string(),
    };
    Some(SettingError::new(label(sections, &id), reason))
}

/// Merges what clap read (`given`: command line over environment) over the TOML `file`
/// and extracts `T`. `file` is `(name, text)`; errors name the setting through `sections`.
pub(crate) fn layer<T: DeserializeOwned>(
    sections: &[(&str, clap::Command)],
    given: impl Serialize,
    file: Option<(&str, &str)>,
) -> Result<T, SettingError> {
    let mut figment = Figment::new();
    if let Some((_, text)) = file {
        figment = figment.merge(Toml::string(text));
    }
    figment.merge(Given(given)).extract().map_err(|e| {
        let at = file
            .map(|(name, _)| format!(" in {name}"))
            .unwrap_or_default();
        let setting = match e.path.last() {
            Some(id) if e.path.len() > 1 => label(sections, id),
            Some(section) => format!("[{section}]"),
            None => "SHIPPER_CONFIG (--config)".to_string(),
        };
        SettingError::new(setting, format!("{}{at}", e.kind))
    })
}

/// What clap read, as a figment provider: a setting clap did not see (`None`) is left out,
/// so it does not hide the file's value.
struct Given<T>(T);

impl<T: Serialize> Provider for Given<T> {
    fn metadata(&self) -> Metadata {
        Metadata::named("command line or environment")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut data = Serialized::defaults(&self.0).data()?;
        for dict in data.values_mut() {
            prune_empty(dict);
        }
        Ok(data)
    }
}

fn prune_empty(dict: &mut Dict) {
    dict.retain(|_, value| match value {
        Value::Empty(..) => false,
        Value::Dict(_, inner) => {
            prune_empty(inner);
            true
        }
        _ => true,
    });
}

/// Value parser: a duration like `250ms`, `5s`, `1h`.
pub(crate) fn duration(v: &str) -> Result<Duration, String> {
    humantime::parse_duration(v.trim())
        .map_err(|e| format!("{v:?} is not a duration like 250ms, 5s or 1h: {e}"))
}

/// Value parser: a whole number.
pub(crate) fn count<T: FromStr>(v: &str) -> Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("{v:?} is not a whole number"))
}

/// Value parser: a list item, without the blanks around it (`a, b`).
pub(crate) fn item(v: &str) -> Result<String, String> {
    Ok(v.trim().to_string())
}

/// Value parser: a password or key, shown as `[REDACTED]` by `Debug`.
pub(crate) fn secret(v: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(v.to_string()))
}

/// Serializes a secret for [`layer`] only: the merged value is read once and dropped.
pub(crate) fn expose<S: Serializer>(v: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    v.as_ref().map(|x| x.expose_secret()).serialize(s)
}

/// A number of bytes, written like `512KiB`, `8MiB` or a plain number (bytesize's syntax).
/// Carried between the layers as the exact number, never as rounded text.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Size(pub(crate) u64);

impl Size {
    /// The size as `usize`, for in-memory bounds.
    pub(crate) fn bytes(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl fmt::Debug for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", bytesize::ByteSize(self.0))
    }
}

impl FromStr for Size {
    type Err = String;
    fn from_str(v: &str) -> Result<Size, String> {
        v.trim()
            .parse::<bytesize::ByteSize>()
            .map(|b| Size(b.as_u64()))
            .map_err(|e| format!("{v:?} is not a size like 512KiB or 8MiB: {e}"))
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Size, D::Error> {
        bytesize::ByteSize::deserialize(d).map(|b| Size(b.as_u64()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_empty_variables_of_the_arguments_are_unset() {
        let cmd = clap::Command::new("t")
            .arg(clap::Arg::new("a").long("a").env("T_A"))
            .arg(clap::Arg::new("b").long("b").env("T_B"))
            .arg(clap::Arg::new("c").long("c").env("T_C"));
        let env = |name: &std::ffi::OsStr| match name.to_str() {
            Some("T_A") => Some(OsString::new()),
            Some("T_B") => Some(OsString::from("x")),
            Some("OTHER") => Some(OsString::new()),
            _ => None,
        };
        assert_eq!(empty_env_vars(&cmd, env), vec![OsString::from("T_A")]);
    }

    #[test]
    fn sizes_keep_their_exact_number_through_the_layers() {
        let s: Size = "1500000".parse().unwrap();
        let back: Size = serde_json::from_value(serde_json::to_value(s).unwrap()).unwrap();
        assert_eq!(back.0, 1_500_000);
        assert_eq!("8MiB".parse::<Size>().unwrap().0, 8 * 1024 * 1024);
        assert!("eight".parse::<Size>().unwrap_err().contains("not a size"));
    }
}
