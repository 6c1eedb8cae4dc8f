//! The distributed mode under faults: `veritrace serve` processes on real PostgreSQL and real
//! RabbitMQ (ADR 0002 §2.10). Nothing acknowledged is lost, nothing is anchored twice.
//!
//! Tests run one at a time: they stop and restart the shared servers.

mod common;

use common::deployment::*;
use serde_json::{Value, json};
use std::time::Duration;
use veritrace_kernel::bus::{Bus, Message};

macro_rules! deployment {
    () => {
        match Deployment::new() {
            Some(d) => d,
            None => return,
        }
    };
}

#[test]
fn services_in_separate_processes_anchor_and_serve_verifiable_receipts() {
    let _one = one_deployment_at_a_time();
    let d = deployment!();
    d.start_all();
    let ids = d.register(250, 50, "smoke");
    d.wait_all_anchored(250, Duration::from_secs(60));
    d.assert_exactly_once(&ids);
    d.receipt_verifies(&ids[0]);
    d.receipt_verifies(&ids[249]);
    // Each service answers ready; the identity service owns /organisations, the others not.
    for s in SERVICES {
        let (status, body) = d.readyz(s);
        assert_eq!(status, 200, "{s} /readyz: {body}");
        // The containers' healthcheck agrees.
        assert_eq!(d.probe(s).0, 0, "{s}: {}", d.probe(s).1);
    }
    let (code, why) = probe("http://127.0.0.1:1/readyz");
    assert_eq!(code, 1, "nothing listens there: {why}");
    let (status, _) = get(&agent(), &format!("{}/organisations", d.url("anchor")));
    assert_eq!(status, 404);
    // The anchor reports its bus connections.
    let (_, metrics) = get(&agent(), &format!("{}/metrics", d.url("anchor")));
    let metrics = metrics.as_str().unwrap_or_default();
    assert!(
        metrics.contains("veritrace_bus_connected{connection=\"consumer anchor.events\"} 1"),
        "{metrics}"
    );
}

/// Acceptance 2 (second half): the domain service commits, dies before it could publish, and
/// its outbox delivers after the restart.
#[test]
fn domain_sigkill_between_commit_and_publish() {
    let _one = one_deployment_at_a_time();
    let mut d = deployment!();
    d.start("identity");
    d.start("anchor");
    // The broker is unreachable for this evidence process: every commit stays in the outbox.
    d.env.insert(
        "evidence",
        vec![(
            "VERITRACE_AMQP__URL".into(),
            "amqp://guest:guest@127.0.0.1:1/%2f".into(),
        )],
    );
    d.start("evidence");
    let ids = d.register(1000, 100, "outbox");
    assert_eq!(d.sql_i64("SELECT COUNT(*) FROM evidence.outbox"), 1000);
    assert_eq!(d.sql_i64("SELECT COUNT(*) FROM anchor.leaves"), 0);
    d.kill("evidence");
    d.env.remove("evidence");
    d.start("evidence");
    d.wait_all_anchored(1000, Duration::from_secs(120));
    d.assert_exactly_once(&ids);
    d.receipt_verifies(&ids[500]);
}

/// Acceptance 4: a malformed message lands in the dead-letter queue, and the good events
/// around it are all anchored.
#[test]
fn poison_message_is_dead_lettered() {
    let _one = one_deployment_at_a_time();
    let d = deployment!();
    d.start_all();
    let first = d.register(1000, 100, "before");
    let bus = veritrace_kernel::amqp::AmqpBus::new(&veritrace_kernel::config::AmqpConfig {
        url: Some(veritrace_kernel::testing::amqp_url()),
        namespace: d.namespace.clone(),
        ..Default::default()
    })
    .expect("bus");
    let mut poison = Message::new(
        "evidence.EvidenceRegistered",
        b"{\"events\": not json".to_vec(),
    );
    poison.message_id = Some("poison:1-1".into());
    d.rt.block_on(bus.publish(vec![poison]))
        .expect("the broker confirms the poison message");
    let second = d.register(1000, 100, "after");
    d.wait_all_anchored(2000, Duration::from_secs(120));
    let dlq = bus.dead_letter_queue_name(veritrace_anchor::QUEUE);
    wait_until(
        Duration::from_secs(30),
        "the poison message in the dead-letter queue",
        || (queue_depth(&dlq) == Some(1)).then_some(()),
        || format!("{dlq} holds {:?}", queue_depth(&dlq)),
    );
    assert_eq!(
        d.sql_i64("SELECT COUNT(*) FROM anchor.rejected_events"),
        1,
        "the anchor records what it dead-lettered"
    );
    d.assert_exactly_once(&[first, second].concat());

    // The operator sees it with `veritrace dead-letters list`, left in place...
    let dead_letters = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_veritrace"))
            .arg("dead-letters")
            .args(args)
            .env("VERITRACE_AMQP__URL", veritrace_kernel::testing::amqp_url())
            .env("VERITRACE_AMQP__NAMESPACE", &d.namespace)
            .output()
            .expect("run veritrace dead-letters");
        assert!(
            out.status.success(),
            "dead-letters {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let listed: serde_json::Value =
        serde_json::from_str(&dead_letters(&["list", "--json"])).expect("JSON listing");
    assert_eq!(listed["queue"], dlq.as_str());
    assert_eq!(listed["messages"], 1, "{listed}");
    let letter = &listed["shown"][0];
    assert_eq!(
        letter["routing_key"], "evidence.EvidenceRegistered",
        "{listed}"
    );
    assert_eq!(letter["reason"], "rejected", "{listed}");
    assert_eq!(letter["message_id"], "poison:1-1", "{listed}");
    assert_eq!(queue_depth(&dlq), Some(1), "listing leaves it in place");
    // ...and replays it: the anchor refuses it again, and says so again.
    assert_eq!(
        dead_letters(&["replay"]),
        format!("replayed 1 message from {dlq}\n")
    );
    wait_until(
        Duration::from_secs(30),
        "the replayed poison message rejected a second time",
        || {
            let rows =
                "SELECT COUNT(*) FROM anchor.rejected_events WHERE message_id = 'poison:1-1'";
            (d.sql_i64(rows) == 2).then_some(())
        },
        || format!("{dlq} holds {:?}", queue_depth(&dlq)),
    );
    wait_until(
        Duration::from_secs(30),
        "the poison message back in the dead-letter queue",
        || (queue_depth(&dlq) == Some(1)).then_some(()),
        || format!("{dlq} holds {:?}", queue_depth(&dlq)),
    );
}

/// Acceptance 1: 10,000 events while RabbitMQ is shut down and restarted mid-stream. The first
/// 5,000 are sent while it runs; it is shut down once 3,000 are leaves, whatever the first
/// half's progress, and the other 5,000 are all captured while it is down.
#[test]
fn rabbitmq_restart_mid_stream() {
    let _one = one_deployment_at_a_time();
    let d = deployment!();
    d.start_all();
    let total = 10_000;
    let mut rabbit = ServerGuard::rabbitmq();
    let ids = std::thread::scope(|s| {
        let before = s.spawn(|| d.register(total / 2, 100, "rmq-before"));
        // Stop the broker once anchoring is under way.
        wait_until(
            Duration::from_secs(120),
            "3,000 leaves",
            || (d.progress().1 >= 3000).then_some(()),
            || format!("{:?}", d.progress()),
        );
        rabbit.stop();
        let outbox = d.progress().3.max(0);
        let during = d.register(total / 2, 100, "rmq-during");
        // Nothing can be published while the broker is down: the outbox holds them all.
        let held = d.progress().3 - outbox;
        assert!(
            held >= (total / 2) as i64,
            "{held} events held in the outbox while the broker was down"
        );
        // The anchor cannot consume: not ready, and says why; its healthcheck fails. The
        // domain service is still ready (its outbox takes the writes).
        wait_until(
            Duration::from_secs(60),
            "the anchor's /readyz to say the bus is down",
            || {
                let (status, body) = d.readyz("anchor");
                (status == 503 && body["detail"].as_str()?.contains("bus")).then_some(())
            },
            || format!("{:?}", d.readyz("anchor")),
        );
        assert_eq!(d.readyz("evidence").0, 200);
        let (code, why) = d.probe("anchor");
        assert_eq!(code, 1, "the healthcheck fails too: {why}");
        assert!(why.contains("503"), "{why}");
        rabbit.start();
        let mut ids = before.join().expect("load before the stop");
        ids.extend(during);
        ids
    });
    assert_eq!(ids.len(), total);
    d.wait_all_anchored(total as i64, Duration::from_secs(300));
    assert_eq!(d.readyz("anchor").0, 200, "the anchor reconnected");
    d.assert_exactly_once(&ids);
    d.receipt_verifies(&ids[0]);
    d.receipt_verifies(&ids[total - 1]);
}

/// Acceptance 2 (first half): the anchor service SIGKILLed while leaves wait to be sealed or
/// anchored, and restarted: every event still ends in exactly one anchored batch.
#[test]
fn anchor_sigkill_mid_batch() {
    let _one = one_deployment_at_a_time();
    let d = deployment!();
    d.start_all();
    let total = 10_000;
    let ids = std::thread::scope(|s| {
        let load = s.spawn(|| {
            let mut ids = Vec::new();
            for round in 0..4 {
                ids.extend(d.register(total / 4, 100, &format!("kill-{round}")));
            }
            ids
        });
        // Killed with work in flight: leaves stored but not yet anchored.
        let (_, leaves, anchored, _) = wait_until(
            Duration::from_secs(120),
            "3,000 leaves with some not yet anchored",
            || {
                let p = d.progress();
                (p.1 >= 3000 && p.2 < p.1).then_some(p)
            },
            || format!("{:?}", d.progress()),
        );
        assert!(anchored < leaves);
        d.kill("anchor");
        // Deliveries pile up in the queue while the anchor is down.
        let queue = format!("{}.{}", d.namespace, veritrace_anchor::QUEUE);
        wait_until(
            Duration::from_secs(120),
            "messages waiting in the anchor queue",
            || (queue_depth(&queue).unwrap_or(0) > 0 || load.is_finished()).then_some(()),
            || format!("{queue}: {:?}", queue_depth(&queue)),
        );
        d.start("anchor");
        load.join().expect("load")
    });
    d.wait_all_anchored(total as i64, Duration::from_secs(300));
    d.assert_exactly_once(&ids);
    d.receipt_verifies(&ids[1]);
    d.receipt_verifies(&ids[total - 2]);
}

/// Acceptance 3: PostgreSQL stopped (immediate mode, as a crash) and restarted under load.
/// Writes fail cleanly with 503 problem+json while it is down; nothing acknowledged is lost.
#[test]
fn postgres_restart_under_load() {
    let _one = one_deployment_at_a_time();
    let d = deployment!();
    d.start_all();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let unavailable = std::sync::atomic::AtomicUsize::new(0);
    let mut pg = ServerGuard::postgres();
    let key = d.key();
    let url = format!("{}/evidence/batch", d.url("evidence"));
    let acknowledged: Vec<String> = std::thread::scope(|s| {
        let clients: Vec<_> = (0..4)
            .map(|c| {
                let (stop, unavailable, key, url) = (&stop, &unavailable, &key, &url);
                s.spawn(move || {
                    let agent = agent();
                    let mut ids = Vec::new();
                    let mut n = 0;
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        let items: Vec<serde_json::Value> = (0..20)
                            .map(|j| {
                                serde_json::json!({
                                    "content_hash": {"algorithm": "sha-256", "digest": digest_of(&format!("pg-{c}-{n}"), j)},
                                    "title": "under load",
                                })
                            })
                            .collect();
                        n += 1;
                        let started = std::time::Instant::now();
                        let (status, body) =
                            post(&agent, url, key, &serde_json::json!({ "items": items }));
                        let took = started.elapsed();
                        assert!(took < Duration::from_secs(5), "an answer took {took:?}");
                        match status {
                            201 => ids.extend(body["items"].as_array().expect("items").iter().map(
                                |it| it["event_id"].as_str().expect("event_id").to_string(),
                            )),
                            503 => {
                                assert_eq!(
                                    body["_content_type"], "application/problem+json",
                                    "{body}"
                                );
                                assert!(body["type"].as_str().is_some_and(|t| t.contains("unavailable")), "{body}");
                                unavailable.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            }
                            other => panic!("answer {other} while PostgreSQL restarts: {body}"),
                        }
                    }
                    ids
                })
            })
            .collect();
        wait_until(
            Duration::from_secs(60),
            "1,000 events stored",
            || (d.progress().0 >= 1000).then_some(()),
            || format!("{:?}", d.progress()),
        );
        pg.stop();
        // Down long enough for every client to see it, then 2 s more.
        wait_until(
            Duration::from_secs(60),
            "503 answers while PostgreSQL is down",
            || (unavailable.load(std::sync::atomic::Ordering::SeqCst) >= 4).then_some(()),
            || {
                format!(
                    "{} answers 503",
                    unavailable.load(std::sync::atomic::Ordering::SeqCst)
                )
            },
        );
        let seen = unavailable.load(std::sync::atomic::Ordering::SeqCst);
        wait_until(
            Duration::from_secs(30),
            "2 more seconds of 503s",
            || (unavailable.load(std::sync::atomic::Ordering::SeqCst) > seen).then_some(()),
            || "no further 503".into(),
        );
        std::thread::sleep(Duration::from_secs(2)); // the outage lasts 2 s more, on purpose
        pg.start();
        // Writes succeed again.
        let before = d.progress().0;
        wait_until(
            Duration::from_secs(60),
            "writes to succeed after the restart",
            || (d.progress().0 > before + 200).then_some(()),
            || format!("{:?}", d.progress()),
        );
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        clients
            .into_iter()
            .flat_map(|c| c.join().expect("client"))
            .collect()
    });
    assert!(unavailable.load(std::sync::atomic::Ordering::SeqCst) > 0);
    let stored = d.sql_i64("SELECT COUNT(*) FROM evidence.events");
    d.wait_all_anchored(stored, Duration::from_secs(300));
    // 503 answers may still have committed (the commit outcome was unknown to the client);
    // those events are anchored too. Every 201 is there.
    d.assert_exactly_once(&acknowledged);
    d.receipt_verifies(&acknowledged[acknowledged.len() - 1]);
}

fn audit(d: &Deployment, grace: &str) -> (i32, serde_json::Value, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_veritrace"))
        .args([
            "audit",
            "--json",
            "--grace",
            grace,
            "--chain-node",
            &d.url("anchor"),
        ])
        .arg("--genesis")
        .arg(d.genesis())
        .env("VERITRACE_DATABASE__URL", d.database_url())
        .env("VERITRACE_LOG", "warn")
        .output()
        .expect("run veritrace audit");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), report, stderr)
}

fn kinds(report: &serde_json::Value) -> Vec<(String, String)> {
    let mut k: Vec<(String, String)> = report["findings"]
        .as_array()
        .map(|f| {
            f.iter()
                .map(|x| {
                    (
                        x["kind"].as_str().unwrap_or("").to_string(),
                        x["object"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    k.sort();
    k
}

/// Acceptance 5: the audit reports a clean store as clean, then flags a changed payload, a
/// deleted event and a forged extra row, one finding each.
#[test]
fn audit_flags_tampering() {
    let _one = one_deployment_at_a_time();
    let d = deployment!();
    d.start_all();
    let ids = d.register(1000, 100, "audit");
    d.wait_all_anchored(1000, Duration::from_secs(120));
    let (code, report, stderr) = audit(&d, "0s");
    assert_eq!(code, 0, "a clean store audits clean: {report} {stderr}");
    assert_eq!(report["clean"], true);
    assert_eq!(report["checked"]["events"], 1000);
    assert_eq!(report["checked"]["leaves"], 1000);
    // Provenance never started in this deployment: it has no store to read, and says so.
    assert_eq!(report["absent_stores"], serde_json::json!(["provenance"]));

    // A payload changed in place.
    let changed = d.execute(
        "UPDATE evidence.events SET envelope = replace(envelope, 'document audit-5\"', 'document audit-X\"')
         WHERE envelope LIKE '%document audit-5\"%'",
    );
    assert_eq!(changed, 1);
    // An event deleted (its leaf sits in an anchored batch).
    let deleted =
        d.execute("DELETE FROM evidence.events WHERE envelope LIKE '%document audit-6\"%'");
    assert_eq!(deleted, 1);
    // A forged event with a correct digest, that was never anchored.
    let genesis: chain_core::genesis::Genesis =
        serde_json::from_slice(&std::fs::read(d.genesis()).expect("genesis"))
            .expect("genesis json");
    let forged = veritrace_kernel::EventEnvelope {
        id: uuid::Uuid::now_v7(),
        service: "evidence".into(),
        stream: "evidence-forged".into(),
        stream_version: 1,
        event_type: "EvidenceRegistered".into(),
        type_version: 1,
        occurred_at: "2026-01-01T00:00:00Z".into(),
        recorded_at: "2026-01-01T00:00:00Z".into(),
        organisation: "forger".into(),
        payload: serde_json::json!({"title": "backdated"}),
    }
    .seal(genesis.hash_alg);
    d.execute(&format!(
        "INSERT INTO evidence.events (event_id, stream, stream_version, event_type, envelope, digest, recorded_at)
         VALUES ('{}', 'evidence-forged', 1, 'EvidenceRegistered', '{}', '{}', '2026-01-01T00:00:00Z')",
        forged.envelope.id,
        forged.canonical.replace('\'', "''"),
        forged.digest.to_hex()
    ));

    let (code, report, stderr) = audit(&d, "0s");
    assert_eq!(code, 1, "{report} {stderr}");
    assert_eq!(report["clean"], false);
    assert_eq!(
        kinds(&report),
        vec![
            ("altered".to_string(), "events".to_string()),
            ("extra".to_string(), "events".to_string()),
            ("missing".to_string(), "events".to_string()),
        ],
        "{report}"
    );
    let event_of = |kind: &str| {
        report["findings"]
            .as_array()
            .and_then(|f| f.iter().find(|x| x["kind"] == kind))
            .map(|x| x["event_id"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    assert_eq!(event_of("extra"), forged.envelope.id.to_string());
    assert!(ids.contains(&event_of("altered")));
    assert!(ids.contains(&event_of("missing")));
}

/// Acceptance 6, as a smoke test: the bench runs end to end and reports every rate. (The
/// ratio itself is measured on a quiet machine and recorded in the README; 2-core CI timings
/// vary too much to gate on.)
#[test]
fn bench_distributed_reports_every_rate() {
    let _one = one_deployment_at_a_time();
    if veritrace_kernel::testing::servers_skipped("bench distributed") {
        return;
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_veritrace"))
        .args(["bench", "distributed", "--events", "2000", "--batch", "200"])
        .args([
            "--raw-rows",
            "2000",
            "--raw-clients",
            "4",
            "--copy-rows",
            "5000",
            "--json",
        ])
        .args([
            "--database-url",
            &veritrace_kernel::testing::database_server_url(),
        ])
        .args(["--amqp-url", &veritrace_kernel::testing::amqp_url()])
        .output()
        .expect("run veritrace bench distributed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .expect("the last line is the JSON report");
    for rate in [
        "capture_events_per_sec",
        "end_to_end_events_per_sec",
        "raw_insert_rows_per_sec",
        "raw_copy_rows_per_sec",
        "ratio_to_raw_insert",
    ] {
        assert!(
            report[rate].as_f64().is_some_and(|r| r > 0.0),
            "{rate}: {report}"
        );
    }
    assert_eq!(report["events"], 2000);
    assert!(stdout.contains("end to end / raw INSERT"), "{stdout}");
    // Every sampled event's receipt was found anchored, at or after its 201.
    let anchored = &report["anchored_after_201_ms"];
    let (p50, p99, max) = (
        anchored["p50"].as_f64().unwrap_or(-1.0),
        anchored["p99"].as_f64().unwrap_or(-1.0),
        anchored["max"].as_f64().unwrap_or(-1.0),
    );
    assert!(0.0 <= p50 && p50 <= p99 && p99 <= max, "{report}");

    // Nothing of the run stays on the broker: not the anchor's queue, nor the reaction queue
    // of a domain the bench did not start, which would keep every event it follows.
    let namespace = report["amqp_namespace"].as_str().unwrap_or_default();
    assert!(namespace.starts_with("vt-bench-"), "{report}");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        use lapin::options::{QueueDeclareOptions, QueueDeleteOptions};
        let conn = lapin::Connection::connect(
            &veritrace_kernel::testing::amqp_url(),
            lapin::ConnectionProperties::default(),
        )
        .await
        .expect("connect to RabbitMQ");
        let exists = |name: String| {
            let conn = &conn;
            async move {
                let channel = conn.create_channel().await.expect("a channel");
                let passive = QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                };
                channel
                    .queue_declare(name.as_str().into(), passive, Default::default())
                    .await
                    .is_ok()
            }
        };
        // The check can see a queue: one declared for it is found.
        let control = format!("{namespace}.control");
        let channel = conn.create_channel().await.expect("a channel");
        channel
            .queue_declare(
                control.as_str().into(),
                Default::default(),
                Default::default(),
            )
            .await
            .expect("declare the control queue");
        assert!(exists(control.clone()).await);
        let _ = channel
            .queue_delete(control.as_str().into(), QueueDeleteOptions::default())
            .await;
        for queue in [
            "anchor.events",
            "anchor.events.dlq",
            "cases.exhibits",
            "cases.exhibits.dlq",
        ] {
            assert!(
                !exists(format!("{namespace}.{queue}")).await,
                "{namespace}.{queue} was left on the broker"
            );
        }
    });
}

/// The embedded mode's bounds hold on PostgreSQL: bodies nested 1 to 200 deep are refused or
/// anchored, a NUL gets the same 422 and never a database message, and a poison row in the
/// store is set aside (counted, reported by `/readyz`) while every event behind it anchors.
#[test]
fn hostile_input_and_a_poison_row_do_not_stop_anchoring() {
    let _one = one_deployment_at_a_time();
    let d = deployment!();
    d.start_all();
    let agent = agent();
    let key = d.key();
    let evidence = format!("{}/evidence", d.url("evidence"));
    let (s, first) = post(
        &agent,
        &evidence,
        &key,
        &json!({"content_hash": {"algorithm": "sha-256", "digest": digest_of("first", 0)},
                "title": "the first exhibit"}),
    );
    assert_eq!(s, 201, "{first}");
    let mut accepted = vec![first["event_id"].as_str().expect("event_id").to_string()];
    let withdrawal = format!(
        "{evidence}/{}/withdrawal",
        first["evidence"]["evidence_id"]
            .as_str()
            .expect("evidence_id")
    );
    let organisations = format!("{}/organisations", d.url("identity"));
    let batch = format!("{evidence}/batch");
    // Bodies `depth` levels deep in all, the body itself being level 1; the depths at which
    // each endpoint records something (metadata is an object; the other two take no nesting).
    let nested = |levels: usize| (0..levels).fold(json!(1), |inner, _| json!({ "a": inner }));
    for depth in 1..=200usize {
        let hash = json!({"algorithm": "sha-256", "digest": digest_of("deep", depth)});
        let requests = [
            (
                &evidence,
                json!({"content_hash": hash, "title": "deep", "metadata": nested(depth - 1)}),
                (2..=32).contains(&depth),
            ),
            (
                &batch,
                json!({"items": [{"content_hash": hash, "title": "deep",
                                  "metadata": nested(depth.saturating_sub(3))}]}),
                (4..=32).contains(&depth),
            ),
            (
                &withdrawal,
                json!({"reason": nested(depth - 1), "expected_version": 1}),
                false,
            ),
            (&organisations, json!({"name": nested(depth - 1)}), false),
        ];
        for (url, body, recorded) in requests {
            let (s, v) = post(&agent, url, &key, &body);
            if s == 201 {
                let items = v["items"]
                    .as_array()
                    .cloned()
                    .unwrap_or_else(|| vec![v.clone()]);
                for item in items {
                    accepted.push(item["event_id"].as_str().expect("event_id").to_string());
                }
            } else {
                assert!((400..500).contains(&s), "depth {depth} at {url}: {s} {v}");
                assert_eq!(v["_content_type"], "application/problem+json", "{v}");
            }
            assert_eq!(s == 201, recorded, "depth {depth} at {url}: {s} {v}");
        }
    }
    assert_eq!(accepted.len(), 1 + 31 + 29);
    for (url, body) in [
        (
            format!("{}/organisations", d.url("identity")),
            json!({"name": "Bank\u{0}", "role": "member"}),
        ),
        (
            evidence.clone(),
            json!({"content_hash": {"algorithm": "sha-256", "digest": digest_of("nul", 0)},
                   "title": "a\u{0}b"}),
        ),
    ] {
        let (s, v) = post(&agent, &url, &key, &body);
        assert_eq!(s, 422, "{v}");
        assert!(!v.to_string().contains("byte sequence"), "{v}");
    }

    // A row no reader can parse, committed behind everyone's back.
    d.execute(&format!(
        "WITH e AS (
            INSERT INTO evidence.events (event_id, stream, stream_version, event_type, envelope, digest, recorded_at)
            VALUES ('{}'::UUID, 'poison', 1, 'EvidenceRegistered', '{{\"payload\":{}1{}}}', '{}', '2026-01-01T00:00:00.000Z')
            RETURNING position)
         INSERT INTO evidence.outbox (position) SELECT position FROM e",
        uuid::Uuid::now_v7(),
        "[".repeat(200),
        "]".repeat(200),
        "ab".repeat(32),
    ));
    accepted.extend(d.register(100, 25, "after-poison"));
    // Every event but the poison row becomes a leaf of an anchored batch; the outbox empties.
    let expected = accepted.len() as i64;
    wait_until(
        Duration::from_secs(60),
        "every event but the poison row anchored",
        || {
            let (events, leaves, anchored, outbox) = d.progress();
            (events == expected + 1 && leaves == expected && anchored == expected && outbox == 0)
                .then_some(())
        },
        || format!("(events, leaves, anchored, outbox) = {:?}", d.progress()),
    );
    for id in [&accepted[0], &accepted[30], &accepted[accepted.len() - 1]] {
        d.receipt_verifies(id);
    }
    let (status, ready): (u16, Value) = d.readyz("evidence");
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["set_aside_events"]["relay"], 1, "{ready}");
    assert_eq!(
        ready["set_aside_events"]["projection:evidence_records"], 1,
        "{ready}"
    );
    let (_, metrics) = get(&agent, &format!("{}/metrics", d.url("evidence")));
    let metrics = metrics.as_str().unwrap_or_default();
    assert!(
        metrics.contains("veritrace_events_set_aside_total{consumer=\"relay\"} 1"),
        "{metrics}"
    );
}
