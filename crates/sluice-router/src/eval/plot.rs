//! A hand-written SVG line chart for routing curves: accuracy (y) against the share of requests
//! escalated (x, 0 to 1). Self-contained, deterministic text; no dependencies.

/// One line of the chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend label.
    pub name: String,
    /// `(share escalated, accuracy)` points, joined in order.
    pub points: Vec<(f64, f64)>,
    /// Draw the line dashed (e.g. for a baseline).
    pub dashed: bool,
}

/// A labelled point drawn as a circle (e.g. a chosen operating point).
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    /// Label written beside the circle.
    pub name: String,
    /// `(share escalated, accuracy)`.
    pub point: (f64, f64),
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 480.0;
/// The plot area; the legend sits to its right.
const LEFT: f64 = 70.0;
const RIGHT: f64 = 540.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 410.0;
const LEGEND_X: f64 = 556.0;
/// Line colours, used in series order and reused after the last.
const PALETTE: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];
const GRID: &str = "#e6e6e6";
const INK: &str = "#333333";

/// A self-contained SVG (720 × 480) plotting accuracy (y) against share escalated (x, 0 to 1):
/// axes with ticks and labels every 0.1 on x and at steps of 0.1, 0.2, 0.5, 1, … on y, light
/// grid lines, one polyline per series in a palette colour (dashed when `dashed`), markers as
/// labelled circles, a legend of the series, the title and the axis titles.
///
/// The y axis runs from 0 to the largest finite y among the series and markers rounded up to
/// the next 0.1 (at least 0.1; further up to a whole tick step when a step above 0.1 is
/// needed to keep at most 10 of them). Points with a non-finite coordinate are skipped, the
/// others clamped into the plot area. All text is XML-escaped.
pub fn line_chart_svg(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    markers: &[Marker],
) -> String {
    let data_max = series
        .iter()
        .flat_map(|s| s.points.iter())
        .chain(markers.iter().map(|m| &m.point))
        .filter(|p| finite(**p))
        .fold(0.0, |max: f64, p| max.max(p.1));
    let (y_top, y_step) = y_axis(data_max);
    let x_of = |x: f64| LEFT + x.clamp(0.0, 1.0) * (RIGHT - LEFT);
    let y_of = |y: f64| BOTTOM - y.clamp(0.0, y_top) / y_top * (BOTTOM - TOP);
    let (mid_x, mid_y) = ((LEFT + RIGHT) / 2.0, (TOP + BOTTOM) / 2.0);

    let mut out = vec![
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
             viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">"
        ),
        format!("<rect width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"#ffffff\"/>"),
        format!(
            "<text x=\"{}\" y=\"28\" text-anchor=\"middle\" font-size=\"16\">{}</text>",
            WIDTH / 2.0,
            escape(title)
        ),
    ];
    for i in 0..=10 {
        let x = x_of(f64::from(i) / 10.0);
        out.push(line((x, TOP), (x, BOTTOM), GRID));
        out.push(line((x, BOTTOM), (x, BOTTOM + 5.0), INK));
        out.push(text(
            (x, BOTTOM + 18.0),
            "middle",
            &format!("{:.1}", f64::from(i) / 10.0),
        ));
    }
    let decimals = usize::from(y_step < 1.0);
    let y_ticks = (y_top / y_step).round() as u32;
    for j in 0..=y_ticks {
        let value = f64::from(j) * y_step;
        let y = y_of(value);
        out.push(line((LEFT, y), (RIGHT, y), GRID));
        out.push(line((LEFT - 5.0, y), (LEFT, y), INK));
        out.push(text(
            (LEFT - 8.0, y + 4.0),
            "end",
            &format!("{value:.decimals$}"),
        ));
    }
    out.push(line((LEFT, BOTTOM), (RIGHT, BOTTOM), INK));
    out.push(line((LEFT, TOP), (LEFT, BOTTOM), INK));
    out.push(text((mid_x, BOTTOM + 40.0), "middle", x_label));
    out.push(format!(
        "<text transform=\"translate(22 {mid_y:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        escape(y_label)
    ));

    for (index, s) in series.iter().enumerate() {
        let points: Vec<String> = s
            .points
            .iter()
            .filter(|p| finite(**p))
            .map(|&(x, y)| format!("{:.1},{:.1}", x_of(x), y_of(y)))
            .collect();
        out.push(format!(
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{} points=\"{}\"/>",
            colour(index),
            dash(s.dashed),
            points.join(" ")
        ));
    }
    for m in markers.iter().filter(|m| finite(m.point)) {
        let (x, y) = (x_of(m.point.0), y_of(m.point.1));
        out.push(format!(
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"{INK}\"/>"
        ));
        // Haloed labels right of the point, or left of it in the right half to stay inside.
        let (label_x, anchor) = if x > mid_x {
            (x - 7.0, "end")
        } else {
            (x + 7.0, "start")
        };
        out.push(format!(
            "<text x=\"{label_x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\" stroke=\"#ffffff\" \
             stroke-width=\"3\" paint-order=\"stroke\">{}</text>",
            y - 7.0,
            escape(&m.name)
        ));
    }
    for (index, s) in series.iter().enumerate() {
        let y = TOP + 10.0 + 20.0 * index as f64;
        out.push(format!(
            "<line x1=\"{LEGEND_X:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{}\" \
             stroke-width=\"2\"{}/>",
            LEGEND_X + 24.0,
            colour(index),
            dash(s.dashed)
        ));
        out.push(text((LEGEND_X + 30.0, y + 4.0), "start", &s.name));
    }
    out.push("</svg>\n".to_owned());
    out.join("\n")
}

/// The y axis top and tick step for data up to `max`: `max` rounded up to the next 0.1 (at
/// least 0.1), with the smallest step of 0.1, 0.2, 0.5, 1, 2, 5, … giving at most 10 intervals,
/// the top then rounded up to a whole step.
fn y_axis(max: f64) -> (f64, f64) {
    let tenths = (max * 10.0 - 1e-9).ceil().max(1.0);
    if !tenths.is_finite() {
        return (1.0, 0.1);
    }
    let mut magnitude = 1.0;
    let step = loop {
        if let Some(step) = [1.0, 2.0, 5.0]
            .into_iter()
            .map(|m| m * magnitude)
            .find(|step| tenths / step <= 10.0)
        {
            break step;
        }
        magnitude *= 10.0;
    };
    ((tenths / step).ceil() * step / 10.0, step / 10.0)
}

fn finite(point: (f64, f64)) -> bool {
    point.0.is_finite() && point.1.is_finite()
}

fn colour(index: usize) -> &'static str {
    PALETTE[index % PALETTE.len()]
}

fn dash(dashed: bool) -> &'static str {
    if dashed {
        " stroke-dasharray=\"6 4\""
    } else {
        ""
    }
}

fn line(from: (f64, f64), to: (f64, f64), stroke: &str) -> String {
    format!(
        "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{stroke}\"/>",
        from.0, from.1, to.0, to.1
    )
}

fn text(at: (f64, f64), anchor: &str, content: &str) -> String {
    format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
        at.0,
        at.1,
        escape(content)
    )
}

/// XML-escapes `& < > " '` and drops control characters XML 1.0 does not allow.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
