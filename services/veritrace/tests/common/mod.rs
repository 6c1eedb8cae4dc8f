//! What the end-to-end tests share: starting `veritrace up`, calling its API, registering
//! evidence, waiting for receipts and running `veritrace verify`.
#![allow(dead_code)] // each test binary uses its own subset

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Running {
    pub child: Child,
    pub url: String,
    pub key: Option<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `veritrace up` on a free port and waits for its banner.
pub fn up(data: &Path, env: &[(&str, &str)]) -> Running {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_veritrace"));
    cmd.args(["up", "--data-dir"])
        .arg(data)
        .args(["--bind", "127.0.0.1:0"])
        .env("VERITRACE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start veritrace up");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let (mut url, mut key) = (None, None);
    while let Some(Ok(line)) = lines.next() {
        if let Some(u) = line.trim().strip_prefix("API ")
            && url.is_none()
        {
            url = Some(u.trim().to_string());
        }
        if let Some(k) = line.trim().strip_prefix("admin API key") {
            let k = k.trim();
            if k.starts_with("vt_") {
                key = Some(k.to_string());
            }
        }
        if line.contains("admin API key") {
            break;
        }
    }
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Running {
        child,
        url: url.expect("the banner names the API URL"),
        key,
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

pub fn call(
    method: &str,
    url: &str,
    key: Option<&str>,
    body: Option<&[u8]>,
) -> (u16, String, Value) {
    let a = agent();
    let mut resp = match (method, body) {
        ("GET", _) => {
            let mut r = a.get(url);
            if let Some(k) = key {
                r = r.header("Authorization", &format!("Bearer {k}"));
            }
            r.call().expect("request")
        }
        (_, b) => {
            let mut r = a.post(url).header("Content-Type", "application/json");
            if let Some(k) = key {
                r = r.header("Authorization", &format!("Bearer {k}"));
            }
            r.send(b.unwrap_or(b"")).expect("request")
        }
    };
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        ctype,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

pub fn sha256_hex(data: &[u8]) -> String {
    chain_core::ContentHashAlg::Sha256
        .hash_reader(data)
        .expect("hash")
}

pub fn register(p: &Running, file: &[u8]) -> Value {
    let body = json!({
        "content_hash": {"algorithm": "sha-256", "digest": sha256_hex(file)},
        "title": "Signed delivery contract",
        "case_reference": "2026-CV-0042",
    });
    let (status, _, v) = call(
        "POST",
        &format!("{}/evidence", p.url),
        p.key.as_deref(),
        Some(body.to_string().as_bytes()),
    );
    assert_eq!(status, 201, "{v}");
    v
}

/// Polls the receipt until it is anchored or the deadline passes.
pub fn anchored_receipt(
    p: &Running,
    key: &str,
    event_id: &str,
    within: Duration,
) -> Option<Vec<u8>> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let (status, _, v) = call(
            "GET",
            &format!("{}/receipts/{event_id}", p.url),
            Some(key),
            None,
        );
        if status == 200 && v["status"] == "anchored" {
            return Some(serde_json::to_vec(&v).expect("json"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

pub fn verify_cli(receipt: &Path, genesis: &Path, extra: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_veritrace"))
        .arg("verify")
        .arg(receipt)
        .arg("--genesis")
        .arg(genesis)
        .args(extra)
        .output()
        .expect("run verify");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}
