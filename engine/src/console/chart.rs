//! Charts drawn on the server as inline SVG (no script, no external library): bars for
//! counts, a line for percentages. Each has a title and a text summary for screen readers.

use maud::{html, Markup};

const W: f64 = 640.0;
const H: f64 = 180.0;
const PAD: f64 = 28.0;

/// How many labels fit under the x axis: every n-th point is labelled.
fn label_every(n: usize) -> usize {
    n.div_ceil(8).max(1)
}

/// A bar per point (`label`, value).
pub fn bars(title: &str, points: &[(String, f64)]) -> Markup {
    let max = points.iter().map(|(_, v)| *v).fold(0.0_f64, f64::max).max(1.0);
    let n = points.len().max(1);
    let slot = (W - 2.0 * PAD) / n as f64;
    let every = label_every(n);
    let total: f64 = points.iter().map(|(_, v)| v).sum();
    html! {
        svg.chart role="img" viewBox=(format!("0 0 {W} {H}")) width=(W) height=(H) {
            title { (title) }
            desc { (format!("{} periods, {} in all, at most {} in one", points.len(), total, max)) }
            text x=(PAD) y="14" { (title) " (max " (max) ")" }
            line x1=(PAD) y1=(H - PAD) x2=(W - PAD) y2=(H - PAD) stroke="#8a94a3" {}
            @for (i, (label, v)) in points.iter().enumerate() {
                @let h = (H - 2.0 * PAD - 10.0) * v / max;
                @let x = PAD + i as f64 * slot;
                rect x=(format!("{:.1}", x + slot * 0.15)) y=(format!("{:.1}", H - PAD - h)) width=(format!("{:.1}", slot * 0.7)) height=(format!("{:.1}", h)) fill="#0b5cad" {
                    title { (label) ": " (v) }
                }
                @if i % every == 0 {
                    text x=(format!("{:.1}", x)) y=(H - 8.0) { (label) }
                }
            }
        }
    }
}

/// A line through percentages (0–100); a point without a value leaves a gap.
pub fn percent_line(title: &str, points: &[(String, Option<f64>)]) -> Markup {
    line(title, points, 100.0, "%")
}

/// A line through values from 0 to `top` (at least the largest value) in `unit`; a point
/// without a value leaves a gap.
pub fn line(title: &str, points: &[(String, Option<f64>)], top: f64, unit: &str) -> Markup {
    let top = points.iter().filter_map(|(_, v)| *v).fold(top, f64::max).max(f64::EPSILON);
    let n = points.len().max(1);
    let slot = (W - 2.0 * PAD) / n as f64;
    let every = label_every(n);
    let y = |p: f64| H - PAD - (H - 2.0 * PAD - 10.0) * p.clamp(0.0, top) / top;
    let mut segments: Vec<String> = Vec::new();
    let mut current = String::new();
    for (i, (_, v)) in points.iter().enumerate() {
        let x = PAD + (i as f64 + 0.5) * slot;
        match v {
            Some(p) => {
                current.push_str(&format!("{}{x:.1},{:.1} ", if current.is_empty() { "M" } else { "L" }, y(*p)));
            }
            None if !current.is_empty() => segments.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        segments.push(current);
    }
    let known: Vec<f64> = points.iter().filter_map(|(_, v)| *v).collect();
    let summary = match (known.iter().cloned().reduce(f64::min), known.iter().cloned().reduce(f64::max)) {
        (Some(lo), Some(hi)) => {
            format!("{} periods with a value, between {lo:.1} {unit} and {hi:.1} {unit}", known.len())
        }
        _ => "no period has a value".to_string(),
    };
    html! {
        svg.chart role="img" viewBox=(format!("0 0 {W} {H}")) width=(W) height=(H) {
            title { (title) }
            desc { (summary) }
            text x=(PAD) y="14" { (title) " (0–" (format!("{top:.0}")) " " (unit) ")" }
            line x1=(PAD) y1=(H - PAD) x2=(W - PAD) y2=(H - PAD) stroke="#8a94a3" {}
            line x1=(PAD) y1=(y(top)) x2=(W - PAD) y2=(y(top)) stroke="#d0d5dc" stroke-dasharray="4 4" {}
            @for d in &segments {
                path d=(d) fill="none" stroke="#0a6b2d" stroke-width="2" {}
            }
            @for (i, (label, v)) in points.iter().enumerate() {
                @if let Some(p) = v {
                    circle cx=(format!("{:.1}", PAD + (i as f64 + 0.5) * slot)) cy=(format!("{:.1}", y(*p))) r="2.5" fill="#0a6b2d" {
                        title { (label) ": " (format!("{p:.1} {unit}")) }
                    }
                }
                @if i % every == 0 {
                    text x=(format!("{:.1}", PAD + i as f64 * slot)) y=(H - 8.0) { (label) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_per_point_and_gaps_in_the_line() {
        let bars = bars("Volume", &[("a".into(), 1.0), ("b".into(), 3.0)]).into_string();
        assert_eq!(bars.matches("<rect").count(), 2, "{bars}");
        let line = percent_line("SLA", &[("a".into(), Some(50.0)), ("b".into(), None), ("c".into(), Some(90.0))])
            .into_string();
        assert_eq!(line.matches("<path").count(), 2, "a gap splits the line: {line}");
        assert_eq!(line.matches("<circle").count(), 2);
    }

    #[test]
    fn labels_are_escaped() {
        let bars = bars("<script>", &[("<b>".into(), 1.0)]).into_string();
        assert!(!bars.contains("<script>") && !bars.contains("<b>"), "{bars}");
    }
}
