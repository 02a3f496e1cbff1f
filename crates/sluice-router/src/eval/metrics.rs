//! Ranking metrics for router scores: how well a score puts right answers above wrong ones.
//! Pairs of `scores` and `labels` beyond the shorter slice are ignored.

/// Area under the ROC curve of `scores` for `labels` (true = positive), ties counted half
/// (Mann–Whitney with average ranks). NaN when one class is empty.
pub fn auroc(scores: &[f64], labels: &[bool]) -> f64 {
    let mut pairs = paired(scores, labels);
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let positives = pairs.iter().filter(|p| p.1).count();
    let negatives = pairs.len() - positives;
    if positives == 0 || negatives == 0 {
        return f64::NAN;
    }
    // Sum of the (1-based, tie-averaged) ranks of the positives.
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < pairs.len() {
        let end = tie_end(&pairs, start);
        let average_rank = (start + 1 + end) as f64 / 2.0;
        let group_positives = pairs[start..end].iter().filter(|p| p.1).count();
        rank_sum += average_rank * group_positives as f64;
        start = end;
    }
    let (p, n) = (positives as f64, negatives as f64);
    (rank_sum - p * (p + 1.0) / 2.0) / (p * n)
}

/// Average precision (area under the precision–recall curve, step-wise, ties grouped). NaN when
/// there are no positives.
///
/// Sum over distinct score thresholds, highest first, of (gain in recall) × precision at that
/// threshold; tied scores enter together, as with scikit-learn's `average_precision_score`.
pub fn auprc(scores: &[f64], labels: &[bool]) -> f64 {
    let mut pairs = paired(scores, labels);
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let positives = pairs.iter().filter(|p| p.1).count();
    if positives == 0 {
        return f64::NAN;
    }
    let mut area = 0.0;
    let mut true_positives = 0usize;
    let mut previous_recall = 0.0;
    let mut start = 0;
    while start < pairs.len() {
        let end = tie_end(&pairs, start);
        true_positives += pairs[start..end].iter().filter(|p| p.1).count();
        let recall = true_positives as f64 / positives as f64;
        let precision = true_positives as f64 / end as f64;
        area += (recall - previous_recall) * precision;
        previous_recall = recall;
        start = end;
    }
    area
}

/// Mean AUROC within groups (tasks): how well `scores` tell right answers from wrong ones
/// *inside* a task, which pooled AUROC mixes with telling easy tasks from hard ones. Only
/// groups with at least `min_class` positives and as many negatives count (fewer make a
/// group's AUROC noise); `None` when no group has that many.
pub fn within_group_auroc<S: AsRef<str>>(
    scores: &[f64],
    labels: &[bool],
    groups: &[S],
    min_class: usize,
) -> Option<f64> {
    let mut names: Vec<&str> = groups.iter().map(AsRef::as_ref).collect();
    names.sort_unstable();
    names.dedup();
    let per_group: Vec<f64> = names
        .iter()
        .filter_map(|name| {
            let (s, l): (Vec<f64>, Vec<bool>) = groups
                .iter()
                .zip(scores.iter().zip(labels))
                .filter(|(g, _)| g.as_ref() == *name)
                .map(|(_, (s, l))| (*s, *l))
                .unzip();
            let positives = l.iter().filter(|x| **x).count();
            (positives >= min_class && l.len() - positives >= min_class).then(|| auroc(&s, &l))
        })
        .collect();
    (!per_group.is_empty()).then(|| per_group.iter().sum::<f64>() / per_group.len() as f64)
}

fn paired(scores: &[f64], labels: &[bool]) -> Vec<(f64, bool)> {
    scores.iter().copied().zip(labels.iter().copied()).collect()
}

/// One past the last index whose score equals the score at `start` (pairs are sorted).
fn tie_end(pairs: &[(f64, bool)], start: usize) -> usize {
    let score = pairs[start].0;
    let mut end = start + 1;
    while end < pairs.len() && pairs[end].0.total_cmp(&score).is_eq() {
        end += 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn auroc_perfect_reversed_and_tied() {
        let labels = [false, false, true, true];
        assert!(close(auroc(&[0.1, 0.2, 0.8, 0.9], &labels), 1.0));
        assert!(close(auroc(&[0.9, 0.8, 0.2, 0.1], &labels), 0.0));
        assert!(close(auroc(&[0.5; 4], &labels), 0.5));
    }

    #[test]
    fn auroc_hand_computed_with_a_tie() {
        // Positives 0.8, 0.4, 0.3; negatives 0.6, 0.4, 0.1. Of 9 pairs the positive wins
        // 0.8>{all 3}, 0.4>{0.1} and ties 0.4, 0.3>{0.1}: 3 + 1 + 0.5 + 1 = 5.5.
        let scores = [0.8, 0.6, 0.4, 0.4, 0.3, 0.1];
        let labels = [true, false, true, false, true, false];
        assert!(close(auroc(&scores, &labels), 5.5 / 9.0));
    }

    #[test]
    fn auroc_is_nan_with_one_class() {
        assert!(auroc(&[0.1, 0.2], &[true, true]).is_nan());
        assert!(auroc(&[0.1, 0.2], &[false, false]).is_nan());
        assert!(auroc(&[], &[]).is_nan());
    }

    #[test]
    fn within_group_auroc_ignores_the_ranking_of_groups() {
        // Group a is all high scores, group b all low: pooled, the score mostly tells the groups
        // apart (a has more right answers). Within each group it ranks perfectly in a and
        // backwards in b, so the within-group mean is (1 + 0) / 2.
        let scores = [0.9, 0.8, 0.7, 0.6, 0.1, 0.2, 0.3, 0.4];
        let labels = [true, true, true, false, true, false, false, false];
        let groups = ["a", "a", "a", "a", "b", "b", "b", "b"];
        assert!(close(auroc(&scores, &labels), 12.0 / 16.0));
        let w = within_group_auroc(&scores, &labels, &groups, 1).unwrap();
        assert!(close(w, (1.0 + 0.0) / 2.0), "{w}");
        // With at least 2 of each class no group counts (a has one wrong answer, b one right one).
        assert_eq!(within_group_auroc(&scores, &labels, &groups, 2), None);
        // A group with one class only never counts.
        let labels = [true, true, true, true, true, false, false, false];
        let w = within_group_auroc(&scores, &labels, &groups, 1).unwrap();
        assert!(close(w, 0.0), "only group b counts: {w}");
    }

    #[test]
    fn auprc_perfect_ranking_is_one() {
        let labels = [false, true, false, true];
        assert!(close(auprc(&[0.1, 0.9, 0.2, 0.8], &labels), 1.0));
    }

    #[test]
    fn auprc_known_example() {
        // scikit-learn's docstring example: y = [0, 0, 1, 1], scores = [0.1, 0.4, 0.35, 0.8]
        // gives 0.8333…: recall 0.5 at precision 1, then recall 1 at precision 2/3.
        let ap = auprc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]);
        assert!(close(ap, 0.5 + 0.5 * 2.0 / 3.0));
    }

    #[test]
    fn auprc_groups_ties_and_needs_positives() {
        // All tied: one step to recall 1 at the base rate.
        assert!(close(auprc(&[0.5; 4], &[true, false, false, false]), 0.25));
        assert!(auprc(&[0.1, 0.2], &[false, false]).is_nan());
    }
}
