//! Failures by OpenTelemetry's semantic conventions: a statement a shard refuses is a
//! failed database client span with `error.type` and the SQLSTATE as
//! `db.response.status_code`; the answer's server span has `error.type` (its status
//! code) when it is a 5xx, and none when the client's request was at fault (a 4xx).
//! The refusals come from a trigger the test puts on the records table of its own
//! database on one shard's primary.

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use serde_json::json;
use shard_manager::servers::connection_url;
use shard_manager::ShardId;

use super::receiver::Received;
use super::request_path::{by_name, caller, header, keys_on, one};
use super::{client, traced_gateway, Receiver, ARRIVAL};

/// SPAN_KIND_CLIENT in OTLP, and STATUS_CODE_ERROR.
const CLIENT: i32 = 3;
const ERROR: i32 = 2;

/// Refuses a record named `refuse me` as a check of the table would (23514, the
/// client's data), and fails one named `fail me` with a plain `RAISE` (P0001, which the
/// gateway takes for the server's fault).
const REFUSING_TRIGGER: &str = "
CREATE FUNCTION sgtest_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.data->>'name' = 'refuse me' THEN
        RAISE EXCEPTION 'refused by the test' USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.data->>'name' = 'fail me' THEN
        RAISE EXCEPTION 'failed by the test';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER sgtest_refuse BEFORE INSERT OR UPDATE ON records
    FOR EACH ROW EXECUTE FUNCTION sgtest_refuse();";

/// The trace's failed database client span: the only client span of PostgreSQL in it
/// with an error status.
fn failed_trip<'a>(spans: &'a [Received], trace: &str) -> &'a Received {
    let failed: Vec<&Received> = spans
        .iter()
        .filter(|s| s.trace_id() == trace && s.span.kind == CLIENT)
        .filter(|s| s.attribute("db.system.name").as_deref() == Some("postgresql"))
        .filter(|s| s.span.status.as_ref().is_some_and(|st| st.code == ERROR))
        .collect();
    let seen: Vec<_> = spans
        .iter()
        .filter(|s| s.trace_id() == trace)
        .map(|s| {
            (
                &s.span.name,
                s.span.kind,
                s.span.status.as_ref().map(|st| st.code),
            )
        })
        .collect();
    assert_eq!(failed.len(), 1, "one failed trip among {seen:?}");
    failed[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_statement_names_its_sqlstate_and_a_5xx_its_error_type() {
    // Arrange: shard 0 of the test's database refuses two names.
    let receiver = Receiver::start();
    let bench = traced_gateway(&receiver, &[]).await;
    let settings = &bench.settings;
    let primary = &settings.shards[0].primary;
    let mut conn = PgConnection::establish(&connection_url(&settings.database, primary)).unwrap();
    conn.batch_execute(REFUSING_TRIGGER).unwrap();
    let router = settings.validate().unwrap();
    let keys = keys_on(&router, ShardId(0), 700, 2);
    let http = client();
    let write = |n: u32, name: &'static str, parent: (String, String)| {
        let http = http.clone();
        let url = bench.url("/api/write");
        async move {
            let res = http
                .post(url)
                .header("x-shard-key", format!("user_{n}"))
                .header("traceparent", header(&parent))
                .json(&json!({"table": "users", "id": format!("rec_{n}"),
                              "data": {"user_id": format!("user_{n}"), "name": name}}))
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), parent.0)
        }
    };

    // Act: a record the shard refuses as the client's data, one it fails on.
    let (refused, refused_trace) = write(keys[0], "refuse me", caller(701)).await;
    let (failed, failed_trace) = write(keys[1], "fail me", caller(702)).await;

    // Assert: the answers.
    assert_eq!(refused, 422, "a check_violation is the client's data");
    assert_eq!(failed, 500, "an unexpected refusal is the server's fault");
    let spans = receiver
        .until(ARRIVAL, |spans| {
            [&refused_trace, &failed_trace]
                .iter()
                .all(|t| by_name(spans, t).contains_key("POST /api/write"))
        })
        .await;

    // The refused write: its trip failed with the SQLSTATE; its 4xx server span is no
    // error of the server's.
    let trip = failed_trip(&spans, &refused_trace);
    assert_eq!(
        trip.attribute("error.type").as_deref(),
        Some("23514"),
        "{trip:?}"
    );
    assert_eq!(
        trip.attribute("db.response.status_code").as_deref(),
        Some("23514"),
        "{trip:?}"
    );
    let named = by_name(&spans, &refused_trace);
    let server = one(&named, "POST /api/write");
    assert_eq!(
        server.attribute("http.response.status_code").as_deref(),
        Some("422")
    );
    assert_eq!(server.attribute("error.type"), None, "{server:?}");

    // The failed write: its trip's SQLSTATE, and its 5xx server span's error type.
    let trip = failed_trip(&spans, &failed_trace);
    assert_eq!(
        trip.attribute("error.type").as_deref(),
        Some("P0001"),
        "{trip:?}"
    );
    assert_eq!(
        trip.attribute("db.response.status_code").as_deref(),
        Some("P0001"),
        "{trip:?}"
    );
    assert_eq!(
        trip.attribute("db.namespace"),
        Some(format!("{}.public", settings.database.dbname)),
        "{trip:?}"
    );
    let named = by_name(&spans, &failed_trace);
    let server = one(&named, "POST /api/write");
    assert_eq!(
        server.attribute("http.response.status_code").as_deref(),
        Some("500")
    );
    assert_eq!(server.attribute("error.type").as_deref(), Some("500"));
    assert_eq!(server.span.status.as_ref().map(|s| s.code), Some(ERROR));
}
