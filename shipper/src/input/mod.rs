//! Input: which files, which file is which, reading them, and where each one is.
//!
//! `paths` finds the files, `fingerprint` tells them apart, `line_reader` reads one,
//! `file_server` runs the loop over all of them, `read_budget` pauses it when the output
//! falls behind, and `acknowledgements` + `checkpoint` record what is safely delivered.

pub mod acknowledgements;
pub mod checkpoint;
pub mod checkpoint_writer;
pub mod file_server;
pub mod fingerprint;
pub mod line_reader;
pub mod paths;
pub mod read_budget;

#[cfg(test)]
mod model_tests;
