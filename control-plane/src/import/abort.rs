//! Rolling back an import that has not cut over: the source's capture and log are
//! removed, the records written so far deleted, and the shards' cache epochs raised.

use super::runner::open_meta;
use super::shards::Writer;
use super::source::{redact, Source};
use super::spec::quote_ident;
use super::state::{Import, Phase};
use super::{store, ImportError};
use shard_manager::config::ClusterSettings;

/// Rolls back an import that has not cut over: the capture is removed from the source
/// and the records written so far are deleted.
pub async fn abort(
    settings: &ClusterSettings,
    id: i64,
    source_url: &str,
) -> Result<Import, ImportError> {
    let client = open_meta(settings).await?;
    let im = store::get(&client, id).await?;
    if !im.phase.active() {
        return Err(ImportError::Refused(format!(
            "import {id} is {}: there is nothing to abort",
            im.phase.as_str()
        )));
    }
    let named = redact(source_url)?;
    if named != im.source {
        return Err(ImportError::Refused(format!(
            "import {id} reads {}, not {named}: give its --source",
            im.source
        )));
    }
    if !store::lock(&client, id).await? {
        return Err(ImportError::Refused(format!(
            "import {id} is being worked on by another process; stop it first"
        )));
    }
    let source = Source::connect(source_url).await?;
    let table = match im.source_table.split_once('.') {
        Some((schema, name)) => format!("{}.{}", quote_ident(schema), quote_ident(name)),
        None => quote_ident(&im.source_table),
    };
    let t = source
        .resolve(&table, &im.key_column, &im.id_column)
        .await?;
    if source.has_trigger(&t, id, "moved").await? {
        return Err(ImportError::Refused(format!(
            "import {id} already froze {} at its cut-over: run the import again to record it as done",
            im.source_table
        )));
    }
    source.release(&t, id).await?;
    let mut writer = Writer::open(settings, &im.into).await?;
    let deleted = writer.delete_all().await?;
    writer.raise_cache_epochs().await?;
    store::set_phase(
        &client,
        id,
        Phase::Aborted,
        &format!("aborted: capture removed, {deleted} records deleted"),
    )
    .await?;
    store::get(&client, id).await
}
