//! The benchmarks' baseline: a plain binary COPY between two servers, what an import
//! or a move is measured against.

/// Streams what `copy_out` (a `COPY (...) TO STDOUT (FORMAT binary)`) sends on `source`
/// into `copy_in` (a `COPY ... FROM STDIN (FORMAT binary)`) on `target`; the rows copied.
pub async fn copy_between(
    source: &tokio_postgres::Client,
    copy_out: &str,
    target: &tokio_postgres::Client,
    copy_in: &str,
) -> u64 {
    use futures_util::{SinkExt, StreamExt};
    let sink = target.copy_in(copy_in).await.unwrap();
    let stream = source.copy_out(copy_out).await.unwrap();
    futures_util::pin_mut!(sink);
    futures_util::pin_mut!(stream);
    while let Some(chunk) = stream.next().await {
        sink.send(chunk.unwrap()).await.unwrap();
    }
    sink.as_mut().finish().await.unwrap()
}
