//! The README's walk-throughs as a new user meets them: each script under `docs/walkthroughs/`
//! runs with the built `veritrace` first on the `PATH`, on the ports the README names; and every
//! command of each README block marked `<!-- walkthrough: docs/walkthroughs/X.sh -->` is in its
//! script, in the README's order, so the README shows what the test runs.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A command line as written, without its trailing comment; `None` for blank and comment lines.
fn command_line(line: &str) -> Option<String> {
    let line = match line.find(" #") {
        Some(at) => &line[..at],
        None => line,
    }
    .trim();
    (!line.is_empty() && !line.starts_with('#')).then(|| line.to_string())
}

/// Each marked README block: (script path, its command lines).
fn readme_blocks() -> Vec<(String, Vec<String>)> {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let mut blocks = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        let Some(script) = line
            .trim()
            .strip_prefix("<!-- walkthrough: ")
            .and_then(|rest| rest.strip_suffix(" -->"))
        else {
            continue;
        };
        assert_eq!(
            lines.next().map(str::trim),
            Some("```sh"),
            "{script}: a ```sh block follows its marker"
        );
        let commands = lines
            .by_ref()
            .take_while(|l| l.trim() != "```")
            .filter_map(command_line)
            .collect();
        blocks.push((script.to_string(), commands));
    }
    blocks
}

#[test]
fn the_readme_shows_the_commands_its_walkthrough_scripts_run() {
    let blocks = readme_blocks();
    let scripts: Vec<&str> = blocks.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        scripts,
        [
            "docs/walkthroughs/embedded.sh",
            "docs/walkthroughs/provenance.sh",
            "docs/walkthroughs/consortium.sh",
            "docs/walkthroughs/distributed.sh"
        ]
    );
    for (script, commands) in blocks {
        let text = std::fs::read_to_string(root().join(&script)).expect("script");
        let script_lines: Vec<String> = text.lines().filter_map(command_line).collect();
        let mut at = 0;
        for command in &commands {
            match script_lines[at..].iter().position(|l| l == command) {
                Some(i) => at += i + 1,
                None => panic!(
                    "{script} does not run the README's line, in the README's order:\n{command}"
                ),
            }
        }
        assert!(commands.len() >= 5, "{script}: {commands:?}");
    }
}

/// Runs one walk-through script; panics with its output when it fails.
fn walk_through(script: &str) {
    let bin = Path::new(env!("CARGO_BIN_EXE_veritrace"))
        .parent()
        .expect("the binary's directory")
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let log = tempfile::NamedTempFile::new().expect("log file");
    // Output to a file, not a pipe: a process the script left behind must not hold the test.
    // The script and everything it starts form one process group, killed whole if the script
    // outlives its own time limit (a command stuck in the foreground defers its TERM trap).
    let mut child = Command::new("bash")
        .arg(root().join(script))
        .env("PATH", path)
        .env("WALKTHROUGH_TIMEOUT", "180")
        .stdout(log.reopen().expect("log"))
        .stderr(log.reopen().expect("log"))
        .process_group(0)
        .spawn()
        .expect("run bash");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for bash") {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let output = std::fs::read_to_string(log.path()).unwrap_or_default();
    let Some(status) = status else {
        panic!("{script} ran past 240 s and was killed:\n{output}");
    };
    assert!(status.success(), "{script} failed ({status}):\n{output}");
    assert!(output.contains("walk-through passed"), "{output}");
}

/// The walk-throughs one after the other: they use the same ports, as the README does.
#[test]
fn the_walkthroughs_pass_as_written() {
    walk_through("docs/walkthroughs/embedded.sh");
    walk_through("docs/walkthroughs/provenance.sh");
    walk_through("docs/walkthroughs/consortium.sh");
    if std::env::var("VERITRACE_TEST_BACKENDS").as_deref() == Ok("sqlite") {
        eprintln!("SKIPPED the distributed walk-through: VERITRACE_TEST_BACKENDS=sqlite");
        return;
    }
    walk_through("docs/walkthroughs/distributed.sh");
}
