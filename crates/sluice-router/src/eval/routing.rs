//! Routed accuracy and cost when a router escalates a share of requests to the large model:
//! the curve over every escalation count, the random router's baseline, and the summary numbers
//! read off a curve (PGR, APGR, the escalations a quality target needs).
//!
//! Items tied on score are escalated "in a uniformly random order": a cut through a tie group
//! counts the expected value, so a curve depends only on the multiset of items, not their order.

use std::cmp::Ordering;

/// One labelled item as routing evaluation sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// Router score: higher means "keep local" (a confidence that the local answer is right).
    pub score: f64,
    /// Whether the local model's answer is right.
    pub local_right: bool,
    /// Whether the large model's answer is right.
    pub large_right: bool,
    /// Cost (any currency unit) of sending this item to the large model.
    pub large_cost: f64,
}

/// Routed result when `escalated` of the `n` items (the lowest-scoring ones) go to the large model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurvePoint {
    /// Items sent to the large model.
    pub escalated: usize,
    /// `escalated / n`.
    pub share: f64,
    /// Fraction of all `n` items answered right (expected value within tied scores).
    pub accuracy: f64,
    /// Large-model cost of the escalated items (expected value within tied scores).
    pub cost: f64,
}

/// The only point of the curve of no items: nothing escalated, accuracy and cost 0.
const EMPTY: CurvePoint = CurvePoint {
    escalated: 0,
    share: 0.0,
    accuracy: 0.0,
    cost: 0.0,
};

/// Slack for float error when comparing an accuracy with a quality target.
const QUALITY_SLACK: f64 = 1e-9;

/// `points[k]` = the result of escalating the `k` lowest-scoring items, `k = 0..=n`.
///
/// A NaN score counts as the lowest (escalated first); all NaN scores tie, and so do `-0.0`
/// and `0.0`. When `k` cuts through a group of `g` tied items, `m` of them escalated, the group
/// contributes `(m/g)·Σ large_right + (1 − m/g)·Σ local_right` right answers and
/// `(m/g)·Σ large_cost` cost. No items → the single point `{0, 0.0, 0.0, 0.0}`.
pub fn routing_curve(items: &[Outcome]) -> Vec<CurvePoint> {
    let n = items.len();
    if n == 0 {
        return vec![EMPTY];
    }
    // Costs ordered within a tie group so float sums do not depend on the input order.
    let mut sorted = items.to_vec();
    sorted.sort_by(|a, b| {
        score_order(a.score, b.score).then_with(|| a.large_cost.total_cmp(&b.large_cost))
    });
    let mut points = Vec::with_capacity(n + 1);
    // Right answers from the groups already escalated, and local ones from the groups after.
    let mut escalated_right = 0usize;
    let mut escalated_cost = 0.0;
    let mut kept_right = count(&sorted, |o| o.local_right);
    let mut start = 0;
    while start < n {
        let end = tie_end(&sorted, start);
        let group = &sorted[start..end];
        let group_local = count(group, |o| o.local_right);
        let group_large = count(group, |o| o.large_right);
        let group_cost: f64 = group.iter().map(|o| o.large_cost).sum();
        kept_right -= group_local;
        for m in 0..group.len() {
            let part = m as f64 / group.len() as f64;
            let right = (escalated_right + kept_right) as f64
                + part * group_large as f64
                + (1.0 - part) * group_local as f64;
            points.push(point(
                start + m,
                n,
                right,
                escalated_cost + part * group_cost,
            ));
        }
        escalated_right += group_large;
        escalated_cost += group_cost;
        start = end;
    }
    points.push(point(n, n, escalated_right as f64, escalated_cost));
    points
}

/// The random router's expected curve at `k = 0..=n`: with `s = k/n`, accuracy
/// `(1 − s)·acc_local + s·acc_large` and cost `s·Σ large_cost`. No items → `{0, 0.0, 0.0, 0.0}`.
pub fn random_curve(items: &[Outcome]) -> Vec<CurvePoint> {
    let n = items.len();
    if n == 0 {
        return vec![EMPTY];
    }
    let local = count(items, |o| o.local_right) as f64 / n as f64;
    let large = count(items, |o| o.large_right) as f64 / n as f64;
    let mut costs: Vec<f64> = items.iter().map(|o| o.large_cost).collect();
    costs.sort_by(f64::total_cmp);
    let total_cost: f64 = costs.iter().sum();
    (0..=n)
        .map(|k| {
            let share = k as f64 / n as f64;
            CurvePoint {
                escalated: k,
                share,
                accuracy: (1.0 - share) * local + share * large,
                cost: share * total_cost,
            }
        })
        .collect()
}

/// Performance gap recovered at `point`: `(acc − acc_local) / (acc_large − acc_local)`, where
/// `acc_local` is the curve's first accuracy and `acc_large` its last. None when the curve is
/// empty or `acc_large ≤ acc_local` (nothing to recover).
pub fn pgr(curve: &[CurvePoint], point: &CurvePoint) -> Option<f64> {
    let (first, last) = (curve.first()?, curve.last()?);
    let gap = last.accuracy - first.accuracy;
    (gap > 0.0).then(|| (point.accuracy - first.accuracy) / gap)
}

/// Average PGR over the escalation share (trapezoid rule over the curve's points, divided by
/// the share range the curve spans, `[0, 1]` for a whole curve). None as for [`pgr`].
///
/// A random router's APGR is 0.5; a router that escalates the items the local model gets wrong
/// first scores higher.
pub fn apgr(curve: &[CurvePoint]) -> Option<f64> {
    let (first, last) = (curve.first()?, curve.last()?);
    let span = last.share - first.share;
    if span.is_nan() || span <= 0.0 {
        return None;
    }
    let mut area = 0.0;
    for pair in curve.windows(2) {
        let (left, right) = (pgr(curve, &pair[0])?, pgr(curve, &pair[1])?);
        area += (pair[1].share - pair[0].share) * (left + right) / 2.0;
    }
    pgr(curve, first).map(|_| area / span)
}

/// The smallest number escalated whose accuracy is at least `quality · acc_large` (the last
/// point's accuracy), less 1e-9 for float error; `quality` is a fraction such as 0.95. None for
/// an empty curve, or when no point reaches the target (`quality` above 1 or NaN).
pub fn min_escalated_for_quality(curve: &[CurvePoint], quality: f64) -> Option<usize> {
    let target = quality * curve.last()?.accuracy - QUALITY_SLACK;
    curve
        .iter()
        .find(|p| p.accuracy >= target)
        .map(|p| p.escalated)
}

/// The point escalating `round(share · n)` items of a curve with `n + 1` points (point `k` at
/// index `k`, as built here). `share` is clamped to `[0, 1]`, NaN counts as 0; an empty curve
/// gives `{0, 0.0, 0.0, 0.0}`.
pub fn point_at_share(curve: &[CurvePoint], share: f64) -> CurvePoint {
    let Some(n) = curve.len().checked_sub(1) else {
        return EMPTY;
    };
    let share = if share.is_nan() {
        0.0
    } else {
        share.clamp(0.0, 1.0)
    };
    let k = (share * n as f64).round() as usize;
    curve.get(k.min(n)).copied().unwrap_or(EMPTY)
}

/// Score order with NaN lowest (all NaNs equal) and `-0.0 == 0.0`.
fn score_order(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

/// One past the last index whose score ties the score at `start` (items are sorted).
fn tie_end(sorted: &[Outcome], start: usize) -> usize {
    let score = sorted[start].score;
    let mut end = start + 1;
    while end < sorted.len() && score_order(sorted[end].score, score).is_eq() {
        end += 1;
    }
    end
}

fn count(items: &[Outcome], right: impl Fn(&Outcome) -> bool) -> usize {
    items.iter().filter(|o| right(o)).count()
}

fn point(escalated: usize, n: usize, right: f64, cost: f64) -> CurvePoint {
    CurvePoint {
        escalated,
        share: escalated as f64 / n as f64,
        accuracy: right / n as f64,
        cost,
    }
}

#[cfg(test)]
mod tests;
