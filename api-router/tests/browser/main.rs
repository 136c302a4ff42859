//! Browser tests: the `/dashboard` page in headless Chromium against a real gateway
//! under traffic, and black-box checks that the page and its assets come from the binary.
//!
//! Chromium is Debian's `chromium` (`./setup.sh up` installs it), or whatever
//! `SHARDGATE_CHROMIUM` names; without it these tests fail, they do not skip.
//! `SHARDGATE_SCREENSHOT=1` also saves `docs/dashboard.png` (the README's picture).
//!
//! - [`dashboard`]: every chart draws live data; a gateway restart shows a banner and
//!   polling resumes.
//! - [`keys`]: with API keys, the page asks for one and shows the data with it.
//! - [`assets`]: no asset from another origin; every referenced file is served with
//!   its content type and a validator.
//! - [`chromium`]: Chromium driven through the DevTools protocol over a pipe.
//! - [`failovers`]: a recorded failover shows as an event line, with the map version
//!   and the live gateways in the headline.
//! - [`moves`]: the moves panel shows a recorded move and its progress, a stuck one as
//!   stuck with what to do.
//! - [`swagger`]: Swagger UI renders under the gateway's Content Security Policy.
//! - [`traffic`]: bounded background traffic with some 4xx.

mod assets;
mod chromium;
mod dashboard;
mod failovers;
mod keys;
mod moves;
mod swagger;
mod traffic;
