//! The OpenAPI 3.1 document, served at `/api-docs/openapi.json` and shown by Swagger UI.
//!
//! Each handler's `#[utoipa::path]` documents what it answers; [`SharedAnswers`] adds,
//! in one place, what every operation shares: the `x-request-id` header both ways, the
//! 405 problem (with `Allow`) for any other method on its path, the 421 problem for a
//! `Host` outside `server.allowed_hosts`, `Retry-After` on every 503 and 429 problem,
//! and access control as [`policy::need`] gives it per path: the bearer scheme and the
//! scope an operation needs, its 401 and 403 (protected mode) answers, its 429 (the
//! key's limits) and the `RateLimit-Policy` / `RateLimit` headers of a rate-limited key.
//!
//! The key is a security scheme, never an `Authorization` header parameter, and every
//! scoped operation lists two alternatives: the bearer key, or none (`{}`). That is what
//! the gateway does: while no key exists it serves loopback clients without one
//! (protected mode; everyone with `protected_mode = false`), and once one exists it
//! answers 401 without a valid key, which each operation documents. OpenAPI cannot say
//! "optional until a key exists", so the scheme's description says it.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::{
    analytics, bulk, changes, delete, export, health, indexes, load, query, read, read_many,
    shards, transaction, write,
};
use crate::access::{policy, Need};
use crate::error::Problem;
use crate::input::body::{FanOutResponse, ListResponse};
use crate::server::headers::{RATELIMIT, RATELIMIT_POLICY, REQUEST_ID};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Shardgate",
        description = "HTTP gateway for sharded PostgreSQL. Every request names its shard key in \
                       `x-shard-key`; the gateway routes it (key → slot → shard), writes to the \
                       shard's primary and reads from its replicas. Errors are \
                       `application/problem+json`.",
    ),
    paths(
        write::write,
        read::read,
        read_many::read_many,
        query::query,
        export::export,
        changes::changes,
        bulk::bulk_write,
        transaction::transaction,
        delete::delete,
        health::health,
        health::live,
        health::ready,
        shards::shards,
        shards::locate,
        load::load,
        indexes::create,
        indexes::list,
        indexes::one,
        indexes::drop,
        analytics::metrics,
        analytics::errors,
        analytics::slowest,
        analytics::prometheus,
    ),
    components(schemas(Problem, ListResponse, FanOutResponse, changes::ChangesPage, ::analytics::cluster::ClusterMetricsReport)),
    modifiers(&SharedAnswers),
    tags(
        (name = "records", description = "Keyed JSON records"),
        (name = "operations", description = "Health and placement"),
        (name = "analytics", description = "Latency, throughput, errors; Prometheus"),
    )
)]
pub struct ApiDoc;

/// What every operation shares, added to each once the handlers' own documentation is in.
pub struct SharedAnswers;

const PROBLEM_JSON: &str = "application/problem+json";

impl Modify for SharedAnswers {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                BEARER,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(
                            "An API key from `shard-admin keys create`, sent as \
                         `Authorization: Bearer <key>`. Needed once any key exists (401 \
                         without a valid one). Until then no key is asked for (each \
                         operation's `security` allows `{}`): the gateway serves loopback \
                         clients only (protected mode; others get 403), or everyone with \
                         `[auth] protected_mode = false`.",
                        ))
                        .build(),
                ),
            );
        for (path, item) in doc.paths.paths.iter_mut() {
            let allowed = methods(item).join(", ");
            let need = policy::need(path);
            for op in operations(item) {
                access(op, need);
                op.parameters.get_or_insert_with(Vec::new).push(
                    ParameterBuilder::new()
                        .name(REQUEST_ID)
                        .parameter_in(ParameterIn::Header)
                        .required(Required::False)
                        .description(Some(
                            "Your id for the request: echoed when 1 to 128 printable ASCII \
                             characters, otherwise a new one is made",
                        ))
                        .schema(Some(text()))
                        .build(),
                );
                op.responses
                    .responses
                    .insert("405".into(), RefOr::T(method_not_allowed(&allowed)));
                op.responses.responses.insert(
                    "421".into(),
                    RefOr::T(problem(
                        "The `Host` header names a host outside `server.allowed_hosts`",
                    )),
                );
                for (status, response) in op.responses.responses.iter_mut() {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    response.headers.insert(
                        REQUEST_ID.into(),
                        header("The request's id: yours when usable, else a new one"),
                    );
                    if (status == "503" || status == "429")
                        && response.content.contains_key(PROBLEM_JSON)
                    {
                        response.headers.insert(
                            "Retry-After".into(),
                            header("Seconds to wait before retrying"),
                        );
                    }
                    // Every answer past the key check, to a key with a rate limit.
                    if matches!(need, Need::Scope(_))
                        && !["401", "403", "421"].contains(&status.as_str())
                    {
                        response.headers.insert(
                            RATELIMIT_POLICY.into(),
                            header("The key's rate policy (IETF ratelimit-headers draft), e.g. `\"default\";q=200;w=2`: only for a key with a rate limit"),
                        );
                        response.headers.insert(
                            RATELIMIT.into(),
                            header("What is left of it, e.g. `\"default\";r=42;t=1`: requests that may be sent at once now, seconds until the whole burst is back"),
                        );
                    }
                }
            }
        }
    }
}

/// The name of the bearer scheme in `components.securitySchemes`.
const BEARER: &str = "api_key";

/// What an operation's [`Need`] adds: for a scope, the security requirement, the
/// scope in its description, 401 and 403; for every operation, 403 in protected mode.
fn access(op: &mut Operation, need: Need) {
    let protected = "Protected mode: no API key exists and the client is not on loopback";
    let Need::Scope(scope) = need else {
        op.responses
            .responses
            .insert("403".into(), RefOr::T(problem(protected)));
        return;
    };
    // The key, or (while no key exists) none: see the module doc.
    op.security = Some(vec![
        SecurityRequirement::new(BEARER, Vec::<String>::new()),
        SecurityRequirement::default(),
    ]);
    let line = format!("Needs an API key with the `{scope}` scope (once any key exists).");
    op.description = Some(match op.description.take() {
        Some(text) => format!("{text}\n\n{line}"),
        None => line,
    });
    let answers = &mut op.responses.responses;
    answers.insert(
        "401".into(),
        RefOr::T(
            problem_response("No API key, a malformed `Authorization`, or a key that is not valid")
                .header("WWW-Authenticate", header("`Bearer realm=\"shardgate\"`"))
                .build(),
        ),
    );
    answers.insert(
        "403".into(),
        RefOr::T(problem(&format!(
            "The key lacks the `{scope}` scope or may not use the table; or: {protected}"
        ))),
    );
    answers
        .entry("429".into())
        .or_insert_with(|| RefOr::T(problem("Over the API key's rate (`rate-limited`)")));
    let unloaded = "The gateway has not read the API keys yet and the client is not on loopback (`keys-unavailable`)";
    match answers.get_mut("503") {
        Some(RefOr::T(r)) => r.description = format!("{}; or: {unloaded}", r.description),
        _ => {
            answers.insert("503".into(), RefOr::T(problem(unloaded)));
        }
    }
}

fn text() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn header(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(text())
        .description(Some(description))
        .build()
}

fn problem_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    )
}

fn problem(description: &str) -> Response {
    problem_response(description).build()
}

fn method_not_allowed(allowed: &str) -> Response {
    problem_response(&format!("Any method but {allowed} on this path"))
        .header("Allow", header(&format!("`{allowed}`")))
        .build()
}

/// The path's documented methods, as `Allow` names them.
fn methods(item: &PathItem) -> Vec<&'static str> {
    [
        ("GET", &item.get),
        ("PUT", &item.put),
        ("POST", &item.post),
        ("DELETE", &item.delete),
        ("PATCH", &item.patch),
    ]
    .into_iter()
    .filter(|(_, op)| op.is_some())
    .map(|(name, _)| name)
    .collect()
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .flatten()
}
