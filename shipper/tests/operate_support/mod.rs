//! Running the operator subcommands (`validate`, `verify`, ...) of the real binary with the
//! settings of a test [`Setup`](crate::support::Setup).

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// What a finished command printed, and its exit status.
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs `shipper <args>` with the settings the test shipper of `logs`/`data` gets, plus
/// `env`.
pub fn run(es_url: &str, logs: &Path, data: &Path, env: &[(&str, &str)], args: &[&str]) -> Ran {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shipper"));
    cmd.env_clear()
        .env("ELASTICSEARCH_URL", es_url)
        .env("SHIPPER_PATHS", format!("{}/*.log*", logs.display()))
        .env("SHIPPER_DATA_DIR", data)
        .env("SHIPPER_HOST_NAME", "test-host")
        .env("SHIPPER_REQUEST_TIMEOUT", "5s")
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the shipper binary");
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
