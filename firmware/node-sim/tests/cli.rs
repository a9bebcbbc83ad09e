//! The `node-sim` binary's command line: help, refused arguments and an unusable port
//! give the documented exit status and say what is wrong. (Serving a pty is tested in
//! the gateway's integration tests, `tests/it/firmware.rs`, against socat and mbpoll.)
//! Having this test also makes `cargo test`/`nextest` build the binary itself, which
//! those integration tests run.

use std::process::Command;

fn node_sim(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_node-sim"))
        .args(args)
        .output()
        .expect("node-sim runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn help_exits_0_and_lists_the_options() {
    let (code, text) = node_sim(&["--help"]);
    assert_eq!(code, Some(0), "{text}");
    for opt in [
        "--port",
        "--unit",
        "--baud",
        "--settings",
        "--control",
        "--leak",
        "--door",
    ] {
        assert!(text.contains(opt), "{opt} missing from:\n{text}");
    }
}

#[test]
fn bad_arguments_exit_2_naming_the_problem() {
    let (code, text) = node_sim(&["--unit", "3"]);
    assert_eq!(code, Some(2));
    assert!(text.contains("--port PATH is required"), "{text}");
    let (code, text) = node_sim(&["--port", "/dev/null", "--unit", "248"]);
    assert_eq!(code, Some(2));
    assert!(text.contains("unit 1-247"), "{text}");
    let (code, text) = node_sim(&["--port", "/dev/null", "--sensor", "dht22"]);
    assert_eq!(code, Some(2));
    assert!(text.contains("--sensor: \"dht22\""), "{text}");
}

#[test]
fn a_port_that_cannot_be_opened_exits_1() {
    let (code, text) = node_sim(&["--port", "/nonexistent/ttyX"]);
    assert_eq!(code, Some(1));
    assert!(text.contains("cannot open /nonexistent/ttyX"), "{text}");
}
