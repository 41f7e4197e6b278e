//! `setup_logging` with a log file: events of `tracing` and records of the
//! `log` crate land in a rotating file (the oldest files pruned), and the
//! WebSocket library's TRACE frame records never do. One test: the
//! subscriber is the process's.

use std::path::Path;

const FRAME_SECRET: &str = "frame-token-secret-5521";

fn log_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn events_and_log_records_go_to_the_rotating_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("serverConfig")).unwrap();
    std::fs::write(
        dir.path().join("serverConfig/logging.properties"),
        "level=trace\nfile=logs/VantiqConnector.log\nrotation=daily\nmaxFiles=3\nconsole=false\n",
    )
    .unwrap();
    // Files of earlier days: only the newest survive next to today's.
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    for day in 1..=4 {
        std::fs::write(
            logs.join(format!("VantiqConnector.2020-01-0{day}.log")),
            "old\n",
        )
        .unwrap();
    }
    std::fs::write(logs.join("other.txt"), "not a log\n").unwrap();

    vantiq_connector_sdk::logging::setup_logging_from(dir.path()).unwrap();
    tracing::info!(answer = 42, "an event of the connector");
    log::info!(target: "some_library", "a record of the log crate");
    log::debug!(target: "tungstenite::handshake::client", "Client handshake done.");
    log::trace!(target: "tungstenite::protocol::frame", "writing frame payload {FRAME_SECRET}");
    log::trace!(target: "tokio_tungstenite::compat", "{FRAME_SECRET}");

    let files = log_files(&logs);
    let today: Vec<_> = files
        .iter()
        .filter(|f| f.starts_with("VantiqConnector.") && !f.starts_with("VantiqConnector.2020"))
        .collect();
    assert_eq!(today.len(), 1, "{files:?}");
    let kept_old = files
        .iter()
        .filter(|f| f.starts_with("VantiqConnector.2020"))
        .count();
    assert!(kept_old < 4, "old files pruned to maxFiles: {files:?}");
    assert_eq!(kept_old + today.len(), 3, "{files:?}");
    assert!(
        files.contains(&"other.txt".to_string()),
        "other files are left alone"
    );

    // `file` names the current file (a link to it).
    let text = std::fs::read_to_string(logs.join("VantiqConnector.log")).unwrap();
    assert_eq!(text, std::fs::read_to_string(logs.join(today[0])).unwrap());
    assert!(
        text.contains("an event of the connector") && text.contains("answer=42"),
        "{text}"
    );
    assert!(text.contains("a record of the log crate"), "{text}");
    assert!(text.contains("Client handshake done."), "{text}");
    assert!(!text.contains(FRAME_SECRET), "{text}");
    // No colour codes in a file.
    assert!(!text.contains('\u{1b}'), "{text}");
}
