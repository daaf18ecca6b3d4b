//! A small SVG line-chart renderer for the report: a log-2 x axis (client counts), a linear or
//! log-10 y axis with ticks and gridlines, a legend, and a marker with a tooltip per point.
//! Hand-written rather than a plotting crate: the report needs one kind of chart, and this
//! keeps the build light and the output exactly what the tests expect.

use std::fmt::Write as _;

use super::html::escape;

/// Total size of one chart, in SVG user units (pixels at 100% zoom).
const WIDTH: f64 = 700.0;
const HEIGHT: f64 = 300.0;
/// The plot area; the legend sits right of it.
const LEFT: f64 = 72.0;
const RIGHT: f64 = 500.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 250.0;

/// How the y axis maps values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YScale {
    /// From zero, evenly spaced ticks: throughput, where ratios between lines read as heights.
    Linear,
    /// Decades: latencies, which span microseconds to seconds across a sweep.
    Log10,
}

/// What the y values are, for tick labels and tooltips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Operations per second.
    PerSecond,
    /// Microseconds.
    Micros,
}

/// Stroke pattern of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dash {
    /// Unbroken.
    Solid,
    /// Long dashes.
    Dashed,
    /// Dots.
    Dotted,
}

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// CSS color.
    pub color: &'static str,
    /// Stroke pattern.
    pub dash: Dash,
    /// (x, y) in x order; a `None` y breaks the line there (no such operation at that point).
    pub points: Vec<(f64, Option<f64>)>,
    /// x values whose run failed: drawn as a red cross on the x axis.
    pub failed: Vec<f64>,
}

/// One chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Heading inside the image.
    pub title: String,
    /// Names the y values.
    pub y_label: String,
    /// The y mapping.
    pub y_scale: YScale,
    /// The y unit.
    pub unit: Unit,
    /// The x values to put ticks at (the grid's client counts).
    pub x_ticks: Vec<f64>,
    /// The lines.
    pub series: Vec<Series>,
}

/// The mapping from data to plot coordinates of one chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Axes {
    x_min: f64,
    x_max: f64,
    y_min: f64,
    y_max: f64,
    y_scale: YScale,
}

impl Axes {
    /// Axes that fit `x` values and `y` values (non-positive y values are ignored on a log
    /// axis).
    pub fn fit(x: &[f64], y: &[f64], y_scale: YScale) -> Self {
        let positive = |v: &&f64| v.is_finite() && **v > 0.0;
        let x_min = x
            .iter()
            .filter(positive)
            .copied()
            .fold(f64::INFINITY, f64::min);
        let x_max = x.iter().filter(positive).copied().fold(0.0, f64::max);
        let (x_min, x_max) = if x_min.is_finite() {
            (x_min, x_max)
        } else {
            (1.0, 1.0)
        };
        let (y_min, y_max) = match y_scale {
            YScale::Linear => {
                let max = y
                    .iter()
                    .filter(|v| v.is_finite())
                    .copied()
                    .fold(0.0, f64::max);
                if max > 0.0 {
                    let step = nice_step(max / 5.0);
                    (0.0, (max / step).ceil() * step)
                } else {
                    (0.0, 1.0)
                }
            }
            YScale::Log10 => {
                let lo = y
                    .iter()
                    .filter(positive)
                    .copied()
                    .fold(f64::INFINITY, f64::min);
                let hi = y.iter().filter(positive).copied().fold(0.0, f64::max);
                if lo.is_finite() {
                    let lo = 10f64.powf(lo.log10().floor());
                    let hi = 10f64.powf(hi.log10().ceil());
                    (lo, if hi > lo { hi } else { lo * 10.0 })
                } else {
                    (1.0, 10.0)
                }
            }
        };
        Self {
            x_min,
            x_max,
            y_min,
            y_max,
            y_scale,
        }
    }

    /// Horizontal position of `x`: log 2, so 1, 4, 16, 64 clients are evenly spaced.
    pub fn x(&self, x: f64) -> f64 {
        if self.x_max <= self.x_min {
            return (LEFT + RIGHT) / 2.0;
        }
        let span = self.x_max.log2() - self.x_min.log2();
        LEFT + (x.max(self.x_min).log2() - self.x_min.log2()) / span * (RIGHT - LEFT)
    }

    /// Vertical position of `y` (SVG y grows downwards).
    pub fn y(&self, y: f64) -> f64 {
        let fraction = match self.y_scale {
            YScale::Linear => (y - self.y_min) / (self.y_max - self.y_min),
            YScale::Log10 => {
                (y.max(self.y_min).log10() - self.y_min.log10())
                    / (self.y_max.log10() - self.y_min.log10())
            }
        };
        BOTTOM - fraction.clamp(0.0, 1.0) * (BOTTOM - TOP)
    }

    /// Values to put y ticks at, with whether each gets a label.
    pub fn y_ticks(&self) -> Vec<(f64, bool)> {
        match self.y_scale {
            YScale::Linear => {
                let step = nice_step((self.y_max - self.y_min) / 5.0);
                let count = ((self.y_max - self.y_min) / step).round() as usize;
                (0..=count)
                    .map(|i| (self.y_min + i as f64 * step, true))
                    .collect()
            }
            YScale::Log10 => {
                let first = self.y_min.log10().round() as i32;
                let last = self.y_max.log10().round() as i32;
                // With few decades, 2x and 5x get labels too, or the axis says too little.
                let label_minor = last - first <= 2;
                let mut ticks = Vec::new();
                for decade in first..=last {
                    let base = 10f64.powi(decade);
                    ticks.push((base, true));
                    if decade < last {
                        ticks.push((2.0 * base, label_minor));
                        ticks.push((5.0 * base, label_minor));
                    }
                }
                ticks
            }
        }
    }
}

/// 1, 2 or 5 times a power of ten, at least `rough`.
fn nice_step(rough: f64) -> f64 {
    if !(rough.is_finite() && rough > 0.0) {
        return 1.0;
    }
    let power = 10f64.powf(rough.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&step| step >= rough * (1.0 - 1e-9))
        .unwrap_or(10.0 * power)
}

/// `950`, `12k`, `1.5k`, `2.3M`: short enough for an axis.
pub fn format_count(v: f64) -> String {
    let (scaled, suffix) = if v.abs() >= 1e6 {
        (v / 1e6, "M")
    } else if v.abs() >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    if scaled.abs() >= 10.0 || scaled.fract().abs() < 1e-9 {
        format!("{scaled:.0}{suffix}")
    } else {
        format!("{scaled:.1}{suffix}")
    }
}

/// `85 µs`, `1.2 ms`, `3 s`.
pub fn format_micros(us: f64) -> String {
    let (scaled, unit) = if us >= 1e6 {
        (us / 1e6, "s")
    } else if us >= 1e3 {
        (us / 1e3, "ms")
    } else {
        (us, "µs")
    };
    if scaled >= 10.0 || scaled.fract().abs() < 1e-9 {
        format!("{scaled:.0} {unit}")
    } else if scaled >= 1.0 {
        format!("{scaled:.1} {unit}")
    } else {
        // Lease fast-path reads take fractions of a microsecond; keep two figures.
        let text = format!("{scaled:.2}");
        format!("{} {unit}", text.trim_end_matches('0'))
    }
}

impl Unit {
    fn format(self, v: f64) -> String {
        match self {
            Self::PerSecond => format_count(v),
            Self::Micros => format_micros(v),
        }
    }

    fn tooltip(self, v: f64) -> String {
        match self {
            Self::PerSecond => format!("{v:.0} per second"),
            Self::Micros => format_micros(v),
        }
    }
}

impl Dash {
    fn attribute(self) -> &'static str {
        match self {
            Self::Solid => "",
            Self::Dashed => r#" stroke-dasharray="7 4""#,
            Self::Dotted => r#" stroke-dasharray="2 3""#,
        }
    }
}

impl Chart {
    /// The axes this chart's data needs.
    pub fn axes(&self) -> Axes {
        let xs: Vec<f64> = self
            .x_ticks
            .iter()
            .copied()
            .chain(
                self.series
                    .iter()
                    .flat_map(|s| s.points.iter().map(|p| p.0)),
            )
            .collect();
        let ys: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().filter_map(|p| p.1))
            .collect();
        Axes::fit(&xs, &ys, self.y_scale)
    }

    /// The chart as one inline `<svg>` element.
    pub fn svg(&self) -> String {
        let axes = self.axes();
        let mut out = String::new();
        let _ = write!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{}">"#,
            escape(&self.title)
        );
        let _ = write!(
            out,
            r#"<text x="{LEFT}" y="20" class="title">{}</text>"#,
            escape(&self.title)
        );
        // Gridlines and tick labels first, so the lines draw over them.
        for (value, labelled) in axes.y_ticks() {
            let y = axes.y(value);
            let _ = write!(
                out,
                r#"<line x1="{LEFT}" y1="{y:.1}" x2="{RIGHT}" y2="{y:.1}" class="{}"/>"#,
                if labelled { "grid" } else { "grid minor" }
            );
            if labelled {
                let _ = write!(
                    out,
                    r#"<text x="{:.1}" y="{:.1}" class="tick" text-anchor="end">{}</text>"#,
                    LEFT - 6.0,
                    y + 4.0,
                    escape(&self.unit.format(value))
                );
            }
        }
        for &x in &self.x_ticks {
            let px = axes.x(x);
            let _ = write!(
                out,
                r#"<line x1="{px:.1}" y1="{BOTTOM}" x2="{px:.1}" y2="{:.1}" class="axis"/><text x="{px:.1}" y="{:.1}" class="tick" text-anchor="middle">{}</text>"#,
                BOTTOM + 5.0,
                BOTTOM + 18.0,
                format_count(x)
            );
        }
        let _ = write!(
            out,
            r#"<line x1="{LEFT}" y1="{BOTTOM}" x2="{RIGHT}" y2="{BOTTOM}" class="axis"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{BOTTOM}" class="axis"/>"#
        );
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" class="label" text-anchor="middle">clients (log scale)</text>"#,
            (LEFT + RIGHT) / 2.0,
            BOTTOM + 38.0
        );
        let _ = write!(
            out,
            r#"<text transform="translate(16 {:.1}) rotate(-90)" class="label" text-anchor="middle">{}</text>"#,
            (TOP + BOTTOM) / 2.0,
            escape(&self.y_label)
        );
        for series in &self.series {
            self.draw_series(&mut out, &axes, series);
        }
        self.draw_legend(&mut out);
        if self
            .series
            .iter()
            .all(|s| s.points.iter().all(|p| p.1.is_none()))
        {
            let _ = write!(
                out,
                r#"<text x="{:.1}" y="{:.1}" class="label" text-anchor="middle">no data</text>"#,
                (LEFT + RIGHT) / 2.0,
                (TOP + BOTTOM) / 2.0
            );
        }
        out.push_str("</svg>");
        out
    }

    fn draw_series(&self, out: &mut String, axes: &Axes, series: &Series) {
        let mut path = String::new();
        let mut pen_down = false;
        for &(x, y) in &series.points {
            match y {
                Some(y) => {
                    let _ = write!(
                        path,
                        "{}{:.1},{:.1} ",
                        if pen_down { "L" } else { "M" },
                        axes.x(x),
                        axes.y(y)
                    );
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        if !path.is_empty() {
            let _ = write!(
                out,
                r#"<path d="{}" fill="none" stroke="{}" stroke-width="2"{}/>"#,
                path.trim_end(),
                series.color,
                series.dash.attribute()
            );
        }
        for &(x, y) in &series.points {
            if let Some(y) = y {
                let _ = write!(
                    out,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"><title>{}, {} clients: {}</title></circle>"#,
                    axes.x(x),
                    axes.y(y),
                    series.color,
                    escape(&series.label),
                    format_count(x),
                    escape(&self.unit.tooltip(y))
                );
            }
        }
        for &x in &series.failed {
            let (px, py) = (axes.x(x), BOTTOM);
            let _ = write!(
                out,
                r#"<path class="failed-marker" d="M{:.1},{:.1} L{:.1},{:.1} M{:.1},{:.1} L{:.1},{:.1}" stroke="{}" stroke-width="2.5"><title>{}, {} clients: FAILED (see the failed points)</title></path>"#,
                px - 5.0,
                py - 5.0,
                px + 5.0,
                py + 5.0,
                px - 5.0,
                py + 5.0,
                px + 5.0,
                py - 5.0,
                FAILED_COLOR,
                escape(&series.label),
                format_count(x)
            );
        }
    }

    fn draw_legend(&self, out: &mut String) {
        let x = RIGHT + 16.0;
        for (i, series) in self.series.iter().enumerate() {
            let y = TOP + 8.0 + 20.0 * i as f64;
            let _ = write!(
                out,
                r#"<line x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{}" stroke-width="2.5"{}/><text x="{:.1}" y="{:.1}" class="legend">{}</text>"#,
                x + 26.0,
                series.color,
                series.dash.attribute(),
                x + 32.0,
                y + 4.0,
                escape(&series.label)
            );
        }
    }
}

/// Color of the marker of a failed point.
pub const FAILED_COLOR: &str = "#c00000";

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(series: Vec<Series>, y_scale: YScale) -> Chart {
        Chart {
            title: "writes/s <3 nodes>".into(),
            y_label: "writes per second".into(),
            y_scale,
            unit: Unit::PerSecond,
            x_ticks: vec![1.0, 4.0, 16.0],
            series,
        }
    }

    fn line(label: &str, points: Vec<(f64, Option<f64>)>) -> Series {
        Series {
            label: label.into(),
            color: "#123456",
            dash: Dash::Solid,
            points,
            failed: Vec::new(),
        }
    }

    #[test]
    fn x_is_log2_across_the_plot_area() {
        let axes = Axes::fit(&[1.0, 4.0, 16.0], &[10.0], YScale::Linear);
        assert_eq!(axes.x(1.0), LEFT);
        assert_eq!(axes.x(16.0), RIGHT);
        assert!(
            (axes.x(4.0) - (LEFT + RIGHT) / 2.0).abs() < 1e-9,
            "4 is halfway from 1 to 16"
        );
        assert!((axes.x(2.0) - (LEFT + (RIGHT - LEFT) / 4.0)).abs() < 1e-9);
        let single = Axes::fit(&[8.0], &[1.0], YScale::Linear);
        assert_eq!(
            single.x(8.0),
            (LEFT + RIGHT) / 2.0,
            "one client count: centered"
        );
    }

    #[test]
    fn linear_y_starts_at_zero_and_ends_on_a_round_tick() {
        let axes = Axes::fit(&[1.0], &[3_700.0, 12_300.0], YScale::Linear);
        assert_eq!(axes.y(0.0), BOTTOM);
        let ticks: Vec<f64> = axes.y_ticks().into_iter().map(|t| t.0).collect();
        assert_eq!(ticks, vec![0.0, 5_000.0, 10_000.0, 15_000.0]);
        assert_eq!(axes.y(15_000.0), TOP);
        assert!((axes.y(7_500.0) - (TOP + BOTTOM) / 2.0).abs() < 1e-9);
    }

    #[test]
    fn log_y_spans_whole_decades() {
        let axes = Axes::fit(&[1.0], &[150.0, 42_000.0], YScale::Log10);
        assert_eq!(axes.y(100.0), BOTTOM);
        assert_eq!(axes.y(100_000.0), TOP);
        assert!((axes.y(10_000.0) - (BOTTOM - 2.0 * (BOTTOM - TOP) / 3.0)).abs() < 1e-9);
        let labelled: Vec<f64> = axes
            .y_ticks()
            .into_iter()
            .filter(|t| t.1)
            .map(|t| t.0)
            .collect();
        assert_eq!(labelled, vec![100.0, 1_000.0, 10_000.0, 100_000.0]);
        let narrow = Axes::fit(&[1.0], &[300.0, 400.0], YScale::Log10);
        assert_eq!((narrow.y_min, narrow.y_max), (100.0, 1_000.0));
        assert!(
            narrow.y_ticks().iter().all(|t| t.1),
            "one decade: 2x and 5x get labels"
        );
    }

    #[test]
    fn points_land_on_their_coordinates() {
        let c = chart(
            vec![line(
                "openraft",
                vec![(1.0, Some(0.0)), (16.0, Some(10_000.0))],
            )],
            YScale::Linear,
        );
        let svg = c.svg();
        // (1, 0) is the bottom-left corner, (16, 10000) the top-right one.
        let expected = format!("M{LEFT:.1},{BOTTOM:.1} L{RIGHT:.1},{TOP:.1}");
        assert!(svg.contains(&expected), "{svg}");
        assert_eq!(svg.matches("<circle").count(), 2);
    }

    #[test]
    fn a_missing_value_breaks_the_line_and_a_failure_is_marked() {
        let mut s = line(
            "raftrs",
            vec![(1.0, Some(5.0)), (4.0, None), (16.0, Some(7.0))],
        );
        s.failed.push(4.0);
        let svg = chart(vec![s], YScale::Linear).svg();
        let d = svg
            .split(r#"<path d=""#)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap();
        assert_eq!(d.matches('M').count(), 2, "{d}");
        assert!(!d.contains('L'), "{d}");
        assert_eq!(svg.matches("failed-marker").count(), 1);
        assert!(svg.contains(FAILED_COLOR));
    }

    #[test]
    fn text_is_escaped_and_every_series_is_in_the_legend() {
        let svg = chart(
            vec![
                line("open<raft>", vec![(1.0, Some(1.0))]),
                line("raft & rs", vec![(1.0, Some(2.0))]),
            ],
            YScale::Log10,
        )
        .svg();
        assert!(svg.contains("writes/s &lt;3 nodes&gt;"), "{svg}");
        assert!(svg.contains("open&lt;raft&gt;") && svg.contains("raft &amp; rs"));
        assert!(!svg.contains("<raft>") && !svg.contains("<3 nodes>"));
        assert_eq!(svg.matches(r#"class="legend""#).count(), 2);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }

    #[test]
    fn an_empty_chart_still_renders() {
        let svg = chart(vec![line("a", vec![(1.0, None)])], YScale::Log10).svg();
        assert!(svg.contains("no data"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(format_count(950.0), "950");
        assert_eq!(format_count(1_500.0), "1.5k");
        assert_eq!(format_count(12_300.0), "12k");
        assert_eq!(format_count(2_000_000.0), "2M");
        assert_eq!(format_micros(85.0), "85 µs");
        assert_eq!(format_micros(1_200.0), "1.2 ms");
        assert_eq!(format_micros(3_000_000.0), "3 s");
        assert_eq!(format_micros(0.1), "0.1 µs");
        assert_eq!(format_micros(0.01), "0.01 µs");
        assert_eq!(format_micros(0.36), "0.36 µs");
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(1_300.0), 2_000.0);
        assert_eq!(nice_step(2_000.0), 2_000.0);
    }
}
