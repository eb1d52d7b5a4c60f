//! The subcommands an operator runs beside (or instead of) the shipping process: check the
//! settings before a deploy ([`validate`]), prove delivery ([`verify`]), read and replay the dead letters
//! ([`dead_letters`]), test the alert channels and silence alerts ([`alert`]).
//!
//! Each reads the same settings as the shipper (environment, file, flags before the
//! subcommand), looks at the data directory without changing what the running shipper
//! owns, and returns its own exit status, listed in its `--help`.

pub mod alert;
pub mod dead_letters;
pub mod validate;
pub mod verify;

mod resend;

/// Exit status of a command whose settings are wrong (the shipper's own at start).
pub const EXIT_SETTINGS: u8 = 2;
/// Exit status of a command that could not get what it needs from Elasticsearch.
pub const EXIT_ELASTICSEARCH: u8 = 3;

/// A current-thread runtime for a command: they make a few requests, one at a time.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))
}
