//! zk-top's screen: one function from (view, snapshot) to a frame.
//!
//! ```text
//! header: source, state, packets, drops, rate, capture time, view flags
//! requests/s by type (sparklines)   | latency by request type
//! top paths                         | top clients / top identities
//! replies with errors | watch events | sessions
//! footer: keys (or the filter being typed)
//! ```
//! Below 120 columns the clients and identities go under the paths; every
//! table shows as many rows as its pane has lines.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row, Sparkline, Table};
use zk_wire::client::OpCode;
use zk_wire::stats::Histogram;
use zk_wire::stats::tables::{self, ERROR_SLOTS, EVENT_KINDS, REQUEST_KINDS};

use super::{Input, View};
use crate::stats::history::Second;
use crate::stats::render::totals;
use crate::stats::snapshot::{self, CaptureState, Published};
use crate::stats::top::{TopOpts, TopRow, top};

/// Seconds of history the sparklines show at most.
const SPARK_SECONDS: usize = 300;

fn fmt_n(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.1}k", n as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.2}M", n as f64 / 1e6),
        _ => format!("{:.2}G", n as f64 / 1e9),
    }
}

fn fmt_bytes(n: u64) -> String {
    match n {
        0..=9_999 => format!("{n}B"),
        10_000..=9_999_999 => format!("{:.1}K", n as f64 / 1024.0),
        10_000_000..=9_999_999_999 => format!("{:.1}M", n as f64 / 1048576.0),
        _ => format!("{:.1}G", n as f64 / 1073741824.0),
    }
}

/// A latency in at most 6 characters.
fn fmt_us(us: u64) -> String {
    match us {
        0 => "-".into(),
        1..=999 => format!("{us}us"),
        1_000..=99_999 => format!("{:.1}ms", us as f64 / 1e3),
        100_000..=999_999 => format!("{}ms", us / 1000),
        _ => format!("{:.1}s", us as f64 / 1e6),
    }
}

fn title(t: &str) -> Block<'_> {
    Block::bordered().title(Span::styled(
        format!(" {t} "),
        Style::default().add_modifier(Modifier::BOLD),
    ))
}

fn bold() -> Style {
    Style::default().add_modifier(Modifier::BOLD)
}

/// Draws the whole screen.
pub fn draw(f: &mut Frame<'_>, v: &View, p: &Published) {
    let area = f.area();
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(8),
        Constraint::Length(1),
    ])
    .areas(area);
    let parts = p.parts(snapshot::View::Cumulative);
    let t = totals(&parts);
    let secs: &[Second] = &p.history;

    draw_header(f, header, v, p, secs);

    let small = body.height < 30;
    let [upper, middle, lower] = Layout::vertical([
        Constraint::Length(if small { 6 } else { 10 }),
        Constraint::Min(6),
        Constraint::Length(if small { 5 } else { 8 }),
    ])
    .areas(body);

    let [rates, lat] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(upper);
    draw_rates(f, rates, secs);
    draw_latency(f, lat, &parts);

    // Paths on the left, clients over identities on the right; wide
    // screens get the reads/writes/watches/events columns too.
    let wide = middle.width >= 120;
    let [paths_area, right] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(middle);
    let [clients_area, auths_area] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(right);
    let rows = usize::from(paths_area.height.saturating_sub(3)).max(1);
    let o = TopOpts {
        depth: v.depth,
        prefix: v.prefix.clone(),
        client: v.client,
        sort: v.sort,
        limit: rows,
    };
    let tops = top(&parts, &o);
    let sort_note = format!("top paths by {}", v.sort.name());
    draw_top(f, paths_area, &sort_note, "path", &tops.paths, wide);
    draw_top(
        f,
        clients_area,
        "top clients",
        "client",
        &tops.clients,
        false,
    );
    draw_top(
        f,
        auths_area,
        "top identities",
        "identity",
        &tops.auths,
        false,
    );

    let [errs, events, sessions] = Layout::horizontal([
        Constraint::Percentage(40),
        Constraint::Percentage(30),
        Constraint::Percentage(30),
    ])
    .areas(lower);
    draw_errors(f, errs, &t);
    draw_events(f, events, &t);
    draw_sessions(f, sessions, &t, secs);

    draw_footer(f, footer, v);
    if v.help {
        draw_help(f, area);
    }
}

fn draw_header(f: &mut Frame<'_>, r: Rect, v: &View, p: &Published, secs: &[Second]) {
    let state = match &p.state {
        CaptureState::Running => Span::styled("running", Style::default().fg(Color::Green)),
        CaptureState::Finished => Span::styled("finished", Style::default().fg(Color::Cyan)),
        CaptureState::Failed(m) => {
            Span::styled(format!("failed: {m}"), Style::default().fg(Color::Red))
        }
    };
    let rate = secs.last().map_or(0, Second::total_requests);
    let ts = p.health.last_ts_us;
    let clock = if ts > 0 {
        let s = ts.div_euclid(1_000_000).rem_euclid(86_400);
        format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        "--:--:--".into()
    };
    // What the view is first (it must fit), then the figures, then the
    // source (cut by the terminal's width when long).
    let mut spans = vec![
        Span::styled("zk-top ", bold()),
        state,
        Span::raw(format!(" sort:{} depth:{}", v.sort.name(), v.depth)),
    ];
    if let Some(pre) = &v.prefix {
        spans.push(Span::styled(
            format!(" filter:{pre}"),
            Style::default().fg(Color::Yellow),
        ));
    }
    if let Some(c) = v.client {
        spans.push(Span::styled(
            format!(" client:{c}"),
            Style::default().fg(Color::Yellow),
        ));
    }
    if v.frozen.is_some() {
        spans.push(Span::raw(" "));
        spans.push(Span::styled(
            "PAUSED",
            Style::default()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        ));
    }
    spans.push(Span::raw(format!(
        "  pkts {} drops {} req/s {} {clock}",
        fmt_n(p.health.packets.max(p.health.capture.frames)),
        fmt_n(p.health.capture.kernel_drops),
        fmt_n(rate),
    )));
    if let Some(s) = v.speed {
        spans.push(Span::raw(format!(" x{s}")));
    }
    spans.push(Span::styled(
        format!("  {}", v.source),
        Style::default().fg(Color::DarkGray),
    ));
    f.render_widget(Paragraph::new(Line::from(spans)), r);
}

fn draw_rates(f: &mut Frame<'_>, r: Rect, secs: &[Second]) {
    let block = title("requests/s by type");
    let inner = block.inner(r);
    f.render_widget(block, r);
    if inner.height == 0 || inner.width < 20 {
        return;
    }
    let shown = &secs[secs.len().saturating_sub(SPARK_SECONDS)..];
    // Busiest kinds over the last minute.
    let recent = &shown[shown.len().saturating_sub(60)..];
    let mut kinds: Vec<(usize, u64)> = (0..REQUEST_KINDS)
        .map(|k| (k, recent.iter().map(|s| u64::from(s.requests[k])).sum()))
        .filter(|&(_, n)| n > 0)
        .collect();
    kinds.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let lines = usize::from(inner.height);
    let label_w = 20u16;
    let value_w = 8u16;
    let spark_w = inner.width.saturating_sub(label_w + value_w + 2);
    let mut y = inner.y;
    let mut row = |label: String, data: Vec<u64>, value: String, style: Style| {
        if y >= inner.y + inner.height {
            return;
        }
        let data = &data[data.len().saturating_sub(usize::from(spark_w))..];
        let [l, s, n] = Layout::horizontal([
            Constraint::Length(label_w),
            Constraint::Length(spark_w),
            Constraint::Length(value_w),
        ])
        .spacing(1)
        .areas(Rect::new(inner.x, y, inner.width, 1));
        f.render_widget(Paragraph::new(Span::styled(label, style)), l);
        f.render_widget(Sparkline::default().data(data).style(style), s);
        f.render_widget(Paragraph::new(value).right_aligned(), n);
        y += 1;
    };
    let total: Vec<u64> = shown.iter().map(Second::total_requests).collect();
    let last = total.last().copied().unwrap_or(0);
    row("all requests".into(), total, fmt_n(last), bold());
    let bytes: Vec<u64> = shown
        .iter()
        .map(|s| s.request_bytes + s.reply_bytes)
        .collect();
    let lb = bytes.last().copied().unwrap_or(0);
    row(
        "bytes (in+out)".into(),
        bytes,
        fmt_bytes(lb),
        Style::default().fg(Color::Magenta),
    );
    let palette = [
        Color::Cyan,
        Color::Green,
        Color::Yellow,
        Color::Blue,
        Color::LightRed,
        Color::LightGreen,
    ];
    for (i, (k, _)) in kinds.iter().take(lines.saturating_sub(2)).enumerate() {
        let data: Vec<u64> = shown.iter().map(|s| u64::from(s.requests[*k])).collect();
        let last = data.last().copied().unwrap_or(0);
        let name = tables::request_kind_name(*k).trim_end_matches("Request");
        row(
            name.to_string(),
            data,
            fmt_n(last),
            Style::default().fg(palette[i % palette.len()]),
        );
    }
}

fn draw_latency(f: &mut Frame<'_>, r: Rect, parts: &[std::sync::Arc<snapshot::Snapshot>]) {
    let mut rows: Vec<(OpCode, Histogram)> = OpCode::ALL
        .iter()
        .map(|&op| {
            let mut h = Histogram::new();
            for part in parts {
                h.merge(&part.latency[op.index()]);
            }
            (op, h)
        })
        .filter(|(_, h)| h.count() > 0)
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1.count()));
    let show = usize::from(r.height.saturating_sub(3));
    let narrow = r.width < 46;
    let table_rows = rows.iter().take(show).map(|(op, h)| {
        let mut cells = vec![
            Cell::from(op.request_name().trim_end_matches("Request").to_string()),
            Cell::from(fmt_n(h.count())),
            Cell::from(fmt_us(h.quantile(0.5))),
        ];
        if !narrow {
            cells.push(Cell::from(fmt_us(h.quantile(0.9))));
        }
        cells.push(Cell::from(fmt_us(h.quantile(0.99))));
        cells.push(Cell::from(fmt_us(h.max())));
        Row::new(cells)
    });
    let mut head = vec!["type", "n", "p50"];
    let mut widths = vec![
        Constraint::Min(7),
        Constraint::Length(5),
        Constraint::Length(6),
    ];
    if !narrow {
        head.push("p90");
        widths.push(Constraint::Length(6));
    }
    head.extend(["p99", "max"]);
    widths.extend([Constraint::Length(6), Constraint::Length(6)]);
    let t = Table::new(table_rows, widths)
        .header(Row::new(head).style(bold()))
        .block(title("latency by type"));
    f.render_widget(t, r);
}

fn draw_top(f: &mut Frame<'_>, r: Rect, name: &str, key: &str, rows: &[TopRow], wide: bool) {
    let show = usize::from(r.height.saturating_sub(3));
    let body = rows.iter().take(show).map(|t| {
        let k = if t.key.is_empty() {
            "(no path)".to_string()
        } else {
            t.key.clone()
        };
        let mut cells = vec![Cell::from(k), Cell::from(fmt_n(t.requests))];
        if wide {
            cells.push(Cell::from(fmt_n(t.reads)));
            cells.push(Cell::from(fmt_n(t.writes)));
            cells.push(Cell::from(fmt_n(t.watches)));
        }
        cells.push(Cell::from(fmt_bytes(t.bytes)));
        if wide {
            cells.push(Cell::from(fmt_n(t.events)));
        }
        Row::new(cells)
    });
    let (head, widths): (Vec<&str>, Vec<Constraint>) = if wide {
        (
            vec![key, "req", "reads", "writes", "watch", "bytes", "events"],
            vec![
                Constraint::Min(12),
                Constraint::Length(7),
                Constraint::Length(6),
                Constraint::Length(6),
                Constraint::Length(6),
                Constraint::Length(8),
                Constraint::Length(6),
            ],
        )
    } else {
        (
            vec![key, "req", "bytes"],
            vec![
                Constraint::Min(10),
                Constraint::Length(7),
                Constraint::Length(8),
            ],
        )
    };
    let block = if rows.is_empty() {
        title(name).title_bottom(" nothing yet ")
    } else {
        title(name)
    };
    let t = Table::new(body, widths)
        .header(Row::new(head).style(bold()))
        .block(block);
    f.render_widget(t, r);
}

fn draw_errors(f: &mut Frame<'_>, r: Rect, t: &zk_wire::stats::Totals) {
    let mut rows: Vec<(String, u64)> = Vec::new();
    for op in OpCode::ALL {
        for slot in 1..ERROR_SLOTS {
            let n = t.replies[op.index()][slot];
            if n > 0 {
                rows.push((
                    format!(
                        "{} {}",
                        op.reply_name().trim_end_matches("Reply"),
                        tables::error_slot_name(slot)
                    ),
                    n,
                ));
            }
        }
    }
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    list(f, r, "errors", &rows, Color::Red);
}

fn draw_events(f: &mut Frame<'_>, r: Rect, t: &zk_wire::stats::Totals) {
    let mut rows: Vec<(String, u64)> = (0..EVENT_KINDS)
        .filter(|&k| t.events[k] > 0)
        .map(|k| (tables::event_kind_name(k).to_string(), t.events[k]))
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1));
    list(f, r, "watch events", &rows, Color::Yellow);
}

fn draw_sessions(f: &mut Frame<'_>, r: Rect, t: &zk_wire::stats::Totals, secs: &[Second]) {
    let s = t.sessions;
    let recent = &secs[secs.len().saturating_sub(10)..];
    let opened: u64 = recent.iter().map(|x| u64::from(x.connects)).sum();
    let closed: u64 = recent.iter().map(|x| u64::from(x.closes)).sum();
    let rows = vec![
        ("connects".to_string(), s.connects),
        ("reconnects".to_string(), s.reconnects),
        ("established".to_string(), s.established),
        ("closes".to_string(), s.closes),
        ("expired".to_string(), s.expired),
        ("opened, last 10s".to_string(), opened),
        ("closed, last 10s".to_string(), closed),
    ];
    list(f, r, "sessions", &rows, Color::Cyan);
}

fn list(f: &mut Frame<'_>, r: Rect, name: &str, rows: &[(String, u64)], color: Color) {
    let show = usize::from(r.height.saturating_sub(2));
    let body = rows.iter().take(show).map(|(k, n)| {
        Row::new(vec![
            Cell::from(k.clone()),
            Cell::from(fmt_n(*n)).style(Style::default().fg(color)),
        ])
    });
    let block = if rows.is_empty() {
        title(name).title_bottom(" none ")
    } else {
        title(name)
    };
    let t = Table::new(body, [Constraint::Min(6), Constraint::Length(7)]).block(block);
    f.render_widget(t, r);
}

fn draw_footer(f: &mut Frame<'_>, r: Rect, v: &View) {
    let line = match &v.input {
        Input::Filter(text) => Line::from(vec![
            Span::styled("filter by path prefix: ", bold()),
            Span::raw(format!("{text}_")),
            Span::raw("   Enter apply, Esc cancel, empty to clear"),
        ]),
        Input::None => Line::from(Span::styled(
            "s sort  / filter  c client  d/D depth  p pause  x clear  ? help  q quit",
            Style::default().fg(Color::DarkGray),
        )),
    };
    f.render_widget(Paragraph::new(line), r);
}

fn draw_help(f: &mut Frame<'_>, area: Rect) {
    let text = vec![
        Line::from(Span::styled("zk-top keys", bold())),
        Line::from(""),
        Line::from(
            "s / S    next / previous sort: requests, bytes, writes, reads, watches, events",
        ),
        Line::from("/        filter paths by prefix (Enter applies, empty clears)"),
        Line::from("c        pin the next of the top clients (after the last: none)"),
        Line::from("d / D    path aggregation depth down / up (0: whole paths)"),
        Line::from("p space  pause: freeze the screen (a replay waits too)"),
        Line::from("x        clear filter, client and depth"),
        Line::from("?        this help (any key closes it)"),
        Line::from("q Esc    quit"),
        Line::from(""),
        Line::from("Counts since start; rates per second of capture time."),
    ];
    let w = 84.min(area.width);
    let h = (text.len() as u16 + 2).min(area.height);
    let r = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    f.render_widget(Clear, r);
    f.render_widget(Paragraph::new(text).block(title("help")), r);
}
