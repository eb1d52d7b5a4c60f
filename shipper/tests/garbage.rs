//! Bad input is shipped or flagged, never dropped and never a crash.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed expectation is the point

mod support;

use std::fs;
use std::io::Write;
use std::time::Duration;

use support::*;

#[test]
fn garbage_lines_are_shipped_as_tagged_messages() {
    let es = es();
    let setup = Setup::new(&es.url()).env("SHIPPER_MAX_LINE_BYTES", "1MiB");
    let path = setup.logs().join("payment.log");
    let mut f = fs::File::create(&path).expect("create");
    f.write_all(b"{\"service.name\":\"payment\",\"message\":\"fine\"}\n")
        .unwrap();
    f.write_all(b"plain text, not JSON\n").unwrap();
    f.write_all(b"caf\xe9 \xff\xfe invalid utf-8\n").unwrap();
    f.write_all(b"\x00\x01\x02\x03 binary \x7f\n").unwrap();
    f.write_all(b"{\"service.name\":\"payment\",\"message\":\"truncated JSON\n")
        .unwrap();
    let mut long = vec![b'x'; 2 * 1024 * 1024];
    long.push(b'\n');
    f.write_all(&long).unwrap();
    f.write_all(b"\n\n").unwrap();
    f.write_all(b"{\"message\":\"last line, no newline\"}")
        .unwrap();
    drop(f);

    let shipper = setup.start();
    wait_until("six documents", Duration::from_secs(60), || {
        es.count("logs-*") >= 6
    });
    std::thread::sleep(Duration::from_millis(500));
    let docs = es.documents("logs-*");
    assert_eq!(
        docs.len(),
        6,
        "the unterminated last line waits for its newline"
    );
    let tags = |needle: &str| -> Vec<String> {
        docs.iter()
            .filter(|d| d.source["message"].as_str().unwrap_or("").contains(needle))
            .map(|d| d.source["tags"].to_string())
            .collect()
    };
    assert_eq!(tags("fine"), vec!["null"]);
    assert_eq!(tags("plain text"), vec![r#"["_jsonparsefailure"]"#]);
    assert_eq!(
        tags("invalid utf-8"),
        vec![r#"["_jsonparsefailure","_invalid_utf8"]"#]
    );
    assert_eq!(tags("binary"), vec![r#"["_jsonparsefailure"]"#]);
    assert_eq!(tags("truncated JSON"), vec![r#"["_jsonparsefailure"]"#]);
    let long_doc = docs
        .iter()
        .find(|d| {
            d.source["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("xxxx")
        })
        .expect("the 2 MiB line");
    assert_eq!(
        long_doc.source["message"].as_str().map(str::len),
        Some(1024 * 1024)
    );
    assert_eq!(long_doc.source["tags"], serde_json::json!(["_truncated"]));
    assert_eq!(
        long_doc.source["log.flags"],
        serde_json::json!(["truncated"])
    );
    assert!(long_doc.source["data_stream.dataset"] == "payment");

    // The file is rotated away: the writer is done, so its last line ships, flagged.
    fs::rename(&path, setup.dir.path().join("payment.log.old")).expect("rotate out of the globs");
    wait_until("the unterminated line", Duration::from_secs(30), || {
        es.count("logs-*") >= 7
    });
    let last = es
        .documents("logs-*")
        .into_iter()
        .find(|d| {
            d.source["message"]
                .as_str()
                .unwrap_or("")
                .contains("no newline")
        })
        .expect("the last line");
    assert_eq!(last.source["tags"], serde_json::json!(["_unterminated"]));
    assert!(
        shipper.get("/health").is_some_and(|r| r.0 == 200),
        "still alive"
    );
}
