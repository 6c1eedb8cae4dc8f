//! EPCIS subscriptions by webhook: a partner's named query, its stream subscription, and a
//! callback endpoint that fails for a while and a platform that restarts meanwhile; each
//! matching event reaches the endpoint exactly once, signed, and no other partner's.

mod common;

use common::epcis::{capture, document, member};
use common::{call, up};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request the callback endpoint received.
#[derive(Clone, Debug)]
struct Received {
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
    /// Whether the endpoint acknowledged it (2xx).
    acknowledged: bool,
}

/// A webhook endpoint on a local port: records every request; answers 503 while `failing`.
#[derive(Clone, Default)]
struct Endpoint {
    received: Arc<Mutex<Vec<Received>>>,
    failing: Arc<Mutex<bool>>,
}

impl Endpoint {
    fn start() -> (Endpoint, String) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let endpoint = Endpoint::default();
        let shared = endpoint.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let _ = shared.answer(stream);
            }
        });
        (endpoint, url)
    }

    fn answer(&self, mut stream: std::net::TcpStream) -> std::io::Result<()> {
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut headers = BTreeMap::new();
        let mut line = String::new();
        reader.read_line(&mut line)?; // the request line
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let Some((name, value)) = line.trim_end().split_once(':') else {
                break;
            };
            headers.insert(name.to_ascii_lowercase(), value.trim().to_owned());
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|l| l.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let acknowledged = !*self.failing.lock().unwrap();
        self.received.lock().unwrap().push(Received {
            headers,
            body,
            acknowledged,
        });
        let status = if acknowledged {
            "200 OK"
        } else {
            "503 Service Unavailable"
        };
        write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
    }

    fn fail(&self, failing: bool) {
        *self.failing.lock().unwrap() = failing;
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// How often each eventID arrived in an acknowledged delivery.
    fn acknowledged_events(&self) -> BTreeMap<String, usize> {
        let mut seen = BTreeMap::new();
        for r in self.received().iter().filter(|r| r.acknowledged) {
            for id in event_ids(&r.body) {
                *seen.entry(id).or_insert(0) += 1;
            }
        }
        seen
    }
}

fn event_ids(body: &[u8]) -> Vec<String> {
    let doc: Value = serde_json::from_slice(body).expect("a JSON delivery");
    doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        .as_array()
        .expect("eventList")
        .iter()
        .map(|e| e["eventID"].as_str().expect("eventID").to_owned())
        .collect()
}

/// HMAC-SHA256 (RFC 2104) of `body` under `key`, in hex.
fn hmac_sha256(key: &[u8], body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(body)
        .finalize();
    hex::encode(
        Sha256::new()
            .chain_update(pad(0x5c))
            .chain_update(inner)
            .finalize(),
    )
}

fn event(n: usize, tag: &str, biz_step: &str) -> Value {
    json!({"eventID": format!("urn:uuid:5b0c0000-0000-4000-8000-{:04}{:08}", tag.len(), n),
           "type": "ObjectEvent", "eventTime": "2026-11-20T08:00:00+01:00",
           "eventTimeZoneOffset": "+01:00", "action": "OBSERVE", "bizStep": biz_step,
           "epcList": [format!("urn:epc:id:sgtin:4012345.011111.{tag}{n}")]})
}

/// Captures `events` for `key` and answers their eventIDs.
fn captured(base: &str, key: &str, events: Vec<Value>) -> Vec<String> {
    let ids = events
        .iter()
        .map(|e| e["eventID"].as_str().unwrap().to_owned())
        .collect();
    let (status, _, job) = capture(base, key, &document(events), None);
    assert_eq!((status, &job["success"]), (202, &json!(true)), "{job}");
    ids
}

fn wait_for(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stops the platform as an operator does (SIGTERM), and waits for it to exit.
fn stop_gracefully(p: &mut common::Running) {
    let pid = p.child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = p.child.wait().expect("wait");
    assert!(exit.success(), "veritrace up exited with {exit}");
}

#[test]
fn a_subscription_receives_each_matching_event_once_across_failures_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (endpoint, dest) = Endpoint::start();
    let mut p = up(dir.path(), &[]);
    let admin = p.key.clone().unwrap();
    let grower = member(&p.url, &admin, "Grower");
    let other = member(&p.url, &admin, "Other");

    // A named query: the grower's shipping events.
    let query = json!({"name": "shipments", "query": {"EQ_bizStep": ["shipping"]}}).to_string();
    let (status, _, v) = call(
        "POST",
        &format!("{}/queries", p.url),
        Some(&grower),
        Some(query.as_bytes()),
    );
    assert_eq!(status, 201, "{v}");
    let bad = json!({"name": "bad", "query": {"EQ_action": ["JUMP"]}}).to_string();
    let (status, _, v) = call(
        "POST",
        &format!("{}/queries", p.url),
        Some(&grower),
        Some(bad.as_bytes()),
    );
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["errors"][0]["field"], "query.EQ_action", "{v}");
    let subscribe =
        json!({"dest": dest, "signatureToken": "s3cret-token", "stream": true}).to_string();
    let subscriptions = format!("{}/queries/shipments/subscriptions", p.url);
    let (status, _, sub) = call(
        "POST",
        &subscriptions,
        Some(&grower),
        Some(subscribe.as_bytes()),
    );
    assert_eq!(status, 201, "{sub}");
    assert!(
        sub.get("signatureToken").is_none(),
        "the token is never shown: {sub}"
    );

    // The endpoint fails at first: the deliveries are tried again until it answers.
    endpoint.fail(true);
    let mut expected = captured(
        &p.url,
        &grower,
        (0..4).map(|n| event(n, "A", "shipping")).collect(),
    );
    captured(
        &p.url,
        &grower,
        (4..6).map(|n| event(n, "A", "receiving")).collect(),
    );
    // Another partner's shipping event is not the grower's to receive.
    let others = captured(&p.url, &other, vec![event(0, "OTHER", "shipping")]);
    wait_for(Duration::from_secs(30), "two failed deliveries", || {
        endpoint
            .received()
            .iter()
            .filter(|r| !r.acknowledged)
            .count()
            >= 2
    });
    endpoint.fail(false);
    wait_for(
        Duration::from_secs(30),
        "the first events delivered",
        || endpoint.acknowledged_events().len() >= 4,
    );

    // More events while the endpoint is down again, then the platform restarts.
    endpoint.fail(true);
    expected.extend(captured(
        &p.url,
        &grower,
        (6..9).map(|n| event(n, "B", "shipping")).collect(),
    ));
    stop_gracefully(&mut p);
    endpoint.fail(false);
    let p = up(dir.path(), &[]);
    expected.sort();
    wait_for(
        Duration::from_secs(60),
        "every shipping event delivered",
        || endpoint.acknowledged_events().len() >= expected.len(),
    );

    let seen = endpoint.acknowledged_events();
    assert_eq!(
        seen.keys().cloned().collect::<Vec<_>>(),
        expected,
        "exactly the matching events"
    );
    assert!(
        seen.values().all(|n| *n == 1),
        "each exactly once: {seen:?}"
    );
    assert!(!seen.contains_key(&others[0]));
    for r in endpoint.received() {
        assert_eq!(
            r.headers.get("gs1-signature").map(String::as_str),
            Some(format!("sha256={}", hmac_sha256(b"s3cret-token", &r.body)).as_str()),
            "every delivery signed with the subscriber's token"
        );
        assert!(r.headers.contains_key("veritrace-delivery"));
        let doc: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(doc["epcisBody"]["queryResults"]["queryName"], "shipments");
        assert_eq!(
            doc["epcisBody"]["queryResults"]["subscriptionID"],
            sub["subscriptionID"]
        );
    }
    // The subscription says when it last delivered, and that nothing is failing now.
    let one = format!(
        "{}/queries/shipments/subscriptions/{}",
        p.url,
        sub["subscriptionID"].as_str().unwrap()
    );
    let (status, _, v) = call("GET", &one, Some(&grower), None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["failedAttempts"], 0);
    assert!(v["lastNotifiedAt"].is_string(), "{v}");
    // Another partner sees neither the query nor the subscription.
    assert_eq!(call("GET", &one, Some(&other), None).0, 404);
    assert_eq!(
        call(
            "GET",
            &format!("{}/queries/shipments", p.url),
            Some(&other),
            None
        )
        .0,
        404
    );
}

/// A scheduled subscription with `reportIfEmpty` calls on its schedule even with nothing new,
/// and delivers what matched since.
#[test]
fn a_scheduled_subscription_reports_on_its_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let (endpoint, dest) = Endpoint::start();
    let p = up(dir.path(), &[]);
    let grower = member(&p.url, p.key.as_deref().unwrap(), "Grower");
    let query = json!({"name": "all", "query": {}}).to_string();
    assert_eq!(
        call(
            "POST",
            &format!("{}/queries", p.url),
            Some(&grower),
            Some(query.as_bytes())
        )
        .0,
        201
    );
    let subscribe =
        json!({"dest": dest, "schedule": {"second": "*/1"}, "reportIfEmpty": true}).to_string();
    let url = format!("{}/queries/all/subscriptions", p.url);
    let (status, _, v) = call("POST", &url, Some(&grower), Some(subscribe.as_bytes()));
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["schedule"]["second"], "*/1");
    wait_for(Duration::from_secs(20), "an empty report", || {
        endpoint
            .received()
            .iter()
            .any(|r| event_ids(&r.body).is_empty())
    });
    let ids = captured(&p.url, &grower, vec![event(1, "S", "shipping")]);
    wait_for(Duration::from_secs(20), "the event on the next run", || {
        endpoint.acknowledged_events().contains_key(&ids[0])
    });
    // Both at once is no subscription; nor is neither.
    for body in [
        json!({"dest": dest, "stream": true, "schedule": {"second": "1"}}),
        json!({"dest": dest}),
    ] {
        let (status, _, v) = call(
            "POST",
            &url,
            Some(&grower),
            Some(body.to_string().as_bytes()),
        );
        assert_eq!(status, 422, "{v}");
    }
}
