//! The dashboard on a gateway that has API keys: its data needs a key, so the page
//! shows the key form on the first 401; once a key with `metrics` and `admin` is
//! entered, polling succeeds and every chart fills.

use std::time::Duration;

use control_plane::keys::{store, KeyName, NewKey, Scopes};
use control_plane::map::meta;
use test_app::spawn_app;

use crate::chromium::{self, Browser};
use crate::dashboard::wait_for;

#[tokio::test]
async fn with_keys_the_page_asks_for_one_and_then_shows_the_data() {
    // Arrange: a gateway with one key, and a browser on its dashboard.
    let app = spawn_app().await;
    let mut meta = meta::connect(&app.settings.cluster).await.unwrap();
    let key = NewKey {
        name: KeyName::parse("dashboard").unwrap(),
        scopes: Scopes::parse("metrics,admin").unwrap(),
        tables: None,
        limits: Default::default(),
    };
    let secret = store::create(&mut meta.client, &key, "test").await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .status()
        != 401
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the gateway never took the key"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut browser = Browser::launch(&chromium::binary()).await;

    // Act: the page is refused and asks for a key...
    browser.open(&app.url("/dashboard")).await;
    let refused = wait_for(
        &mut browser,
        "a refused poll",
        Duration::from_secs(15),
        |s| s.last_error.as_deref().is_some_and(|e| e.contains("401")),
    )
    .await;
    let form_shown = browser
        .evaluate(r#"!document.getElementById("key-form").hidden"#)
        .await;
    // ...which is typed in and submitted.
    let submit = format!(
        r#"(() => {{
            document.getElementById("key-input").value = "{}";
            document.getElementById("key-form").requestSubmit();
            return true;
        }})()"#,
        secret.expose()
    );
    browser.evaluate(&submit).await;
    let served = wait_for(
        &mut browser,
        "updates with the key",
        Duration::from_secs(15),
        |s| s.updates >= 2 && s.banner.is_none(),
    )
    .await;
    let form_hidden = browser
        .evaluate(r#"document.getElementById("key-form").hidden"#)
        .await;
    browser.close().await;

    // Assert
    assert_eq!(refused.updates, 0, "nothing shown without the key");
    assert_eq!(form_shown, true, "the key form appears on a 401");
    assert_eq!(form_hidden, true, "and goes away once a key is given");
    assert!(
        served.updates >= 2 && served.banner.is_none(),
        "{served:#?}"
    );
    assert_eq!(
        served.problems,
        Vec::<String>::new(),
        "script errors or CSP violations"
    );
}
