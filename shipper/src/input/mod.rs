//! Input: which files, which file is which, reading them, and where each one is.
//!
//! `paths` finds the files; `identity` decides which file is which (the core of exactly
//! once); `line_reader` reads one file (framing container runtimes' records, see
//! `container_log`; `compressed` gives it the
//! decompressed bytes of a `.gz` rotation); `file_server` runs the loop over all of them and hands
//! each line through the `line_sink` seam to the encode stage; `read_budget` pauses reading
//! when the output falls behind; `acknowledgements` + `checkpoint` record what is safely
//! delivered, and `checkpoint_writer` saves it on its own thread.

pub(crate) mod acknowledgements;
pub(crate) mod checkpoint;
pub(crate) mod checkpoint_writer;
pub(crate) mod compressed;
pub mod container_log;
pub(crate) mod file_server;
pub mod identity;
pub mod line_reader;
pub(crate) mod line_sink;
pub(crate) mod open;
pub(crate) mod paths;
pub(crate) mod read_budget;
pub(crate) mod sent_horizon;

#[cfg(test)]
mod model_tests;
