//! The shipper's own observability: Prometheus `/metrics`, `/health`, `/ready`, and a
//! periodic summary line in its log so `docker compose logs -f shipper` shows progress.

pub(crate) mod file_gauges;
pub(crate) mod http;
pub(crate) mod readiness;
pub(crate) mod summary;
pub mod text_log;
pub mod top;
pub(crate) mod vitals;

/// Describes the input-side metrics (the output describes its own), so `/metrics` carries
/// HELP lines for every series.
pub(crate) fn describe_input_metrics() {
    use metrics::{describe_counter, describe_gauge, Unit};
    describe_counter!("shipper_lines_read_total", "Lines read from the log files.");
    describe_counter!(
        "shipper_bytes_read_total",
        Unit::Bytes,
        "Bytes of lines read from the log files."
    );
    describe_gauge!("shipper_files_open", "Log files open for reading.");
    describe_gauge!(
        "shipper_pending_wakeups",
        "Filesystem wake-ups waiting for the reader: at most one read and one rescan, however many events arrive."
    );
    describe_gauge!(
        "shipper_bytes_behind",
        Unit::Bytes,
        "All files: bytes written but not yet acknowledged."
    );
    describe_counter!(
        "shipper_compressed_files_total",
        "Compressed (.gz) files identified, by verdict: new (read whole), resumed (read from inside), already_read (its head read, nothing more)."
    );
    describe_counter!(
        "shipper_compressed_files_corrupt_total",
        "Compressed (.gz) files that decompress only in part or not at all: what decompresses is shipped."
    );
    describe_gauge!(
        "shipper_deleted_files_open",
        "Deleted files still open because their lines are not all shipped (they hold disk space)."
    );
    describe_gauge!(
        "shipper_read_budget_used_bytes",
        Unit::Bytes,
        "Bytes of lines in memory, waiting for acknowledgement."
    );
    describe_gauge!(
        "shipper_reading_paused",
        "1 while reading waits for the output (backpressure)."
    );
    describe_counter!(
        "shipper_checkpoint_writes_total",
        "Checkpoint files written."
    );
    describe_counter!(
        "shipper_checkpoint_errors_total",
        "Checkpoint writes that failed."
    );
}
