//! The report as text for people and as an SVG plot.

use std::fmt::Write as _;

use sluice_router::eval::plot::{line_chart_svg, Marker, Series};

use super::report::{Point, Report, QUALITY};

fn pct(v: f64) -> String {
    format!("{:.1}%", 100.0 * v)
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.digits$}"))
}

/// The report as aligned text tables.
pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let right = |acc: f64| (acc * r.items as f64).round() as usize;
    let _ = writeln!(
        o,
        "items {}  local ({}) right {} ({})",
        r.items,
        r.local_model,
        right(r.local_accuracy),
        pct(r.local_accuracy)
    );
    if let Some(l) = &r.large {
        let _ = writeln!(
            o,
            "large (tier {}, {}) right {} ({}), all items escalated cost ${:.6}",
            l.tier,
            l.model,
            right(l.accuracy),
            pct(l.accuracy),
            l.cost_usd
        );
    }
    let _ = writeln!(o, "\n{:<20} {:>9} {:>9}", "task", "local", "large");
    for t in &r.tasks {
        let large = t
            .large_right
            .map_or_else(|| "-".to_owned(), |n| format!("{n}/{}", t.items));
        let _ = writeln!(
            o,
            "{:<20} {:>9} {:>9}",
            t.task,
            format!("{}/{}", t.local_right, t.items),
            large
        );
    }
    let _ = writeln!(
        o,
        "\nhow well each score ranks right local answers first\n{:<40} {:>6} {:>6}",
        "score", "AUROC", "AUPRC"
    );
    for k in &r.ranking {
        let _ = writeln!(o, "{:<40} {:>6.3} {:>6.3}", k.score, k.auroc, k.auprc);
    }
    let mut w = format!("{{ bias: {:.4}", r.fitted.bias);
    for (f, v) in &r.fitted.weights {
        let _ = write!(w, ", {f}: {v:.4}");
    }
    let _ = writeln!(o, "fitted weights (all rows): {w} }}");

    methods(&mut o, r);
    let Some(routing) = &r.routing else {
        let _ = writeln!(
            o,
            "\nno large-model answers: routed accuracy, PGR and cost need --large FILE or --save-large FILE"
        );
        return o;
    };
    let _ = writeln!(
        o,
        "\nrouted accuracy (PGR) by share escalated; cost in USD at the tier's prices"
    );
    let _ = write!(o, "{:<10}", "escalated");
    for rt in &routing.routers {
        let _ = write!(o, " {:>22}", rt.router);
    }
    let _ = writeln!(o, " {:>12}", "policy cost");
    let cell = |p: &Point| format!("{} ({})", pct(p.accuracy), opt(p.pgr, 2));
    for i in 0..routing.routers[0].table.len() {
        let p0 = routing.routers[0].table[i];
        let _ = write!(o, "{:<10}", pct(p0.share_escalated));
        for rt in &routing.routers {
            let _ = write!(o, " {:>22}", cell(&rt.table[i]));
        }
        let _ = writeln!(o, " {:>12.6}", p0.cost_usd);
    }
    let _ = write!(o, "{:<10}", "APGR");
    for rt in &routing.routers {
        let _ = write!(o, " {:>22}", opt(rt.apgr, 3));
    }
    let _ = write!(o, "\n{:<10}", "local@95%");
    for rt in &routing.routers {
        let _ = write!(o, " {:>22}", rt.share_local_at_95.map_or("n/a".into(), pct));
    }
    let t = routing.at_threshold;
    let all = r.large.as_ref().map_or(0.0, |l| l.cost_usd);
    let _ = writeln!(
        o,
        "\n(local@95%: largest share kept local with accuracy ≥ {:.0}% of large-only)\n\
         policy threshold {}: escalates {}, accuracy {} (PGR {}), cost ${:.6} ({} of large-only)",
        100.0 * QUALITY,
        r.threshold,
        pct(t.share_escalated),
        pct(t.accuracy),
        opt(t.pgr, 2),
        t.cost_usd,
        if all > 0.0 {
            pct(t.cost_usd / all)
        } else {
            "n/a".into()
        }
    );
    let k = routing.kept_local_agreement;
    if let Some((estimate, lower, upper)) = k.estimate {
        let _ = writeln!(
            o,
            "policy threshold: of the {} kept local, {} agree with the large answer, {} do not, {} too long to judge: agreement {} (95% interval {} to {}), what shadow sampling estimates live",
            k.kept,
            k.agree,
            k.disagree,
            k.kept as u64 - k.agree - k.disagree,
            pct(estimate),
            pct(lower),
            pct(upper)
        );
    }
    if let Some(ms) = routing.at_threshold_added_ms {
        let _ = writeln!(
            o,
            "policy threshold: an escalated request waits {ms:.0} ms of local work on average before its tier is called"
        );
    }
    o
}

/// The methods table: held-out AUROC both ways, and (with the large side) the routing figures.
fn methods(o: &mut String, r: &Report) {
    let m = &r.methods;
    let _ = writeln!(
        o,
        "\nscoring methods, cross-validated: k-fold ({} folds) and leave-one-task-out (LOTO)\n\
         {:<18} {:>8} {:>8} {:>8} {:>8} {:>7} {:>10} {:>10} {:>10} {:>12}  inputs",
        super::report::FOLDS,
        "method",
        "AUROC",
        "LOTO",
        "in-task",
        "LOTO-in",
        "APGR",
        "local@95%",
        "LOTO@95%",
        "cost@95%",
        "wait/esc ms"
    );
    for x in &m.results {
        let _ = writeln!(
            o,
            "{:<18} {:>8.3} {:>8.3} {:>8} {:>8} {:>7} {:>10} {:>10} {:>10} {:>12}  {}",
            x.method,
            x.kfold_auroc,
            x.loto_auroc,
            opt(x.kfold_within_task_auroc, 3),
            opt(x.loto_within_task_auroc, 3),
            opt(x.kfold_apgr, 3),
            x.kfold_local_at_95.map_or("n/a".into(), pct),
            x.loto_local_at_95.map_or("n/a".into(), pct),
            opt(x.kfold_cost_at_95, 6),
            opt(x.added_ms_per_escalation, 0),
            x.inputs
        );
    }
    if let (Some(s), Some(q)) = (m.cascade_first_stage_share, m.cascade_quality_at_95) {
        let _ = writeln!(
            o,
            "cascade at its k-fold 95% point: {} of requests escalate on the probe alone (no draft); routed accuracy {} of large-only",
            pct(s),
            pct(q)
        );
    }
    for s in &m.skipped {
        let _ = writeln!(o, "skipped {s}");
    }
    let _ = writeln!(
        o,
        "(in-task, LOTO-in: mean AUROC inside each task with at least {} right and {} wrong local answers; \
         task-oracle rows score every item with its task's true rate, the most that telling tasks apart gives;\n \
         wait/esc: mean local time an escalated request waits before its tier is called, at the k-fold 95% point)",
        super::methods::MIN_CLASS,
        super::methods::MIN_CLASS
    );
}

/// Routed accuracy against share escalated for every router, as SVG; None without the large
/// side.
pub fn plot(r: &Report) -> Option<String> {
    let routing = r.routing.as_ref()?;
    let mut series: Vec<Series> = routing
        .routers
        .iter()
        .map(|rt| Series {
            name: rt.router.clone(),
            points: rt.curve.iter().map(|p| (p.share, p.accuracy)).collect(),
            dashed: rt.router == "random",
        })
        .collect();
    // Every scoring method, from its k-fold scores (length-only is already there).
    series.extend(
        r.methods
            .results
            .iter()
            .filter(|m| !m.kfold_curve.is_empty() && m.method != "length-only")
            .map(|m| Series {
                name: match m.method.starts_with("task-oracle") {
                    true => m.method.clone(),
                    false => format!("{} (k-fold)", m.method),
                },
                points: m
                    .kfold_curve
                    .iter()
                    .map(|p| (p.share, p.accuracy))
                    .collect(),
                dashed: false,
            }),
    );
    let large = r.large.as_ref().map_or(0.0, |l| l.accuracy);
    let t = routing.at_threshold;
    let markers = vec![
        Marker {
            name: "local only".into(),
            point: (0.0, r.local_accuracy),
        },
        Marker {
            name: "large only".into(),
            point: (1.0, large),
        },
        Marker {
            name: format!("policy threshold {}", r.threshold),
            point: (t.share_escalated, t.accuracy),
        },
    ];
    Some(line_chart_svg(
        &format!(
            "Routed accuracy, policy {} ({} items, local {})",
            r.policy, r.items, r.local_model
        ),
        "share escalated to the large model",
        "accuracy",
        &series,
        &markers,
    ))
}
