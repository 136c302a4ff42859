//! Rolling back an import that has not cut over: the source's capture and log are
//! removed, the records written so far deleted, and the shards' cache epochs raised.

use super::runner::open_meta;
use super::shards::Writer;
use super::source::{redact, Source};
use super::spec::quote_ident;
use super::state::{Import, Phase};
use super::{ImportError, Imports};
use crate::jobs::JobError;
use shard_manager::config::ClusterSettings;

/// Rolls back an import that has not cut over: the capture is removed from the source
/// and the records written so far are deleted.
pub async fn abort(
    settings: &ClusterSettings,
    id: i64,
    source_url: &str,
) -> Result<Import, ImportError> {
    let client = open_meta(settings).await?;
    let imports = Imports::new(&client);
    let im = imports.claim(id).await.map_err(|e| match e {
        JobError::Busy { .. } => ImportError::Refused(format!(
            "import {id} is being worked on by another process; stop it first"
        )),
        e => e.into(),
    })?;
    let aborted = abort_claimed(settings, &imports, im, source_url).await;
    // Done with it, whatever the outcome: the next command may claim it at once.
    imports.release(id).await?;
    aborted
}

/// [`abort`] of `im`, claimed by this session.
async fn abort_claimed(
    settings: &ClusterSettings,
    imports: &Imports<'_>,
    im: Import,
    source_url: &str,
) -> Result<Import, ImportError> {
    let id = im.id;
    let d = &im.detail;
    if !im.phase.active() {
        return Err(ImportError::Refused(format!(
            "import {id} is {}: there is nothing to abort",
            im.phase.as_str()
        )));
    }
    let named = redact(source_url)?;
    if named != d.source {
        return Err(ImportError::Refused(format!(
            "import {id} reads {}, not {named}: give its --source",
            d.source
        )));
    }
    let source = Source::connect(source_url).await?;
    let table = match d.source_table.split_once('.') {
        Some((schema, name)) => format!("{}.{}", quote_ident(schema), quote_ident(name)),
        None => quote_ident(&d.source_table),
    };
    let t = source.resolve(&table, &d.key_column, &d.id_column).await?;
    if source.has_trigger(&t, id, "moved").await? {
        return Err(ImportError::Refused(format!(
            "import {id} already froze {} at its cut-over: run the import again to record it as done",
            d.source_table
        )));
    }
    source.release(&t, id).await?;
    let mut writer = Writer::open(settings, &d.into).await?;
    let deleted = writer.delete_all().await?;
    writer.raise_cache_epochs().await?;
    let note = format!("aborted: capture removed, {deleted} records deleted");
    imports
        .set_phase(id, im.phase, Phase::Aborted, &note)
        .await?;
    Ok(imports.get(id).await?)
}
