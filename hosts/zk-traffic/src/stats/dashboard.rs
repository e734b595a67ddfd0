//! The web dashboard zk-stats serves at `/`: a static page, its script
//! and style, compiled into the binary (no CDN: the machine running
//! zk-stats may have no internet). The page polls the JSON endpoints
//! (`/json/history`, `/json/paths`, `/json/ips`, `/json/auths`,
//! `/json/latencies`, `/json/info`) and draws on `<canvas>` itself.

/// `/`.
pub const INDEX_HTML: &str = include_str!("dashboard/index.html");
/// `/dashboard/app.js`.
pub const APP_JS: &str = include_str!("dashboard/app.js");
/// `/dashboard/style.css`.
pub const STYLE_CSS: &str = include_str!("dashboard/style.css");
