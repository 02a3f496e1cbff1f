use super::*;

/// Rows of (x0 ∈ [-2, 2], x1 ∈ [0, 10], x2 noise ∈ [-1, 1]) with
/// P(y) = sigmoid(1 + 2·x0 − 0.5·x1 + 0·x2).
fn synthetic(rows: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<bool>) {
    let mut rng = XorShift::new(seed);
    let mut xs = Vec::with_capacity(rows);
    let mut ys = Vec::with_capacity(rows);
    for _ in 0..rows {
        let x = vec![
            rng.unit() * 4.0 - 2.0,
            rng.unit() * 10.0,
            rng.unit() * 2.0 - 1.0,
        ];
        let p = sigmoid(1.0 + 2.0 * x[0] - 0.5 * x[1]);
        ys.push(rng.unit() < p);
        xs.push(x);
    }
    (xs, ys)
}

#[test]
fn recovers_sign_and_size_of_weights() {
    let (xs, ys) = synthetic(4000, 7);
    let fit = fit_logistic(&xs, &ys, 1e-3);
    assert!((fit.weights[0] - 2.0).abs() < 0.3, "{fit:?}");
    assert!((fit.weights[1] + 0.5).abs() < 0.1, "{fit:?}");
    assert!(fit.weights[2].abs() < 0.25, "{fit:?}");
    assert!((fit.bias - 1.0).abs() < 0.4, "{fit:?}");
}

#[test]
fn stronger_regularisation_shrinks_weights() {
    let (xs, ys) = synthetic(500, 3);
    let loose = fit_logistic(&xs, &ys, 1e-3);
    let tight = fit_logistic(&xs, &ys, 100.0);
    assert!(tight.weights[0].abs() < loose.weights[0].abs());
    assert!(tight.weights[0] > 0.0);
}

#[test]
fn predictions_are_probabilities() {
    let (xs, ys) = synthetic(300, 11);
    let fit = fit_logistic(&xs, &ys, 1.0);
    for x in &xs {
        let p = fit.predict(x);
        assert!((0.0..=1.0).contains(&p), "{p}");
    }
    assert!(fit.predict(&[1e6, 0.0, 0.0]) <= 1.0);
    assert!(fit.predict(&[-1e6, 0.0, 0.0]) >= 0.0);
}

#[test]
fn separable_data_without_penalty_stays_finite() {
    let xs: Vec<Vec<f64>> = (0..20).map(|i| vec![f64::from(i)]).collect();
    let ys: Vec<bool> = (0..20).map(|i| i >= 10).collect();
    let fit = fit_logistic(&xs, &ys, 0.0);
    assert!(fit.bias.is_finite() && fit.weights[0].is_finite() && fit.weights[0] > 0.0);
    assert!(fit.predict(&[19.0]) > 0.99 && fit.predict(&[0.0]) < 0.01);
}

#[test]
fn constant_column_gets_zero_weight_and_no_nan() {
    let (mut xs, ys) = synthetic(400, 5);
    for x in &mut xs {
        x.push(3.0);
    }
    let fit = fit_logistic(&xs, &ys, 1.0);
    assert_eq!(fit.weights[3], 0.0);
    assert!(fit.bias.is_finite() && fit.weights.iter().all(|w| w.is_finite()));
    assert!(!fit.predict(&xs[0]).is_nan());
}

#[test]
fn degenerate_inputs_give_a_usable_model() {
    let empty = fit_logistic(&[], &[], 1.0);
    assert_eq!(empty.predict(&[]), 0.5);
    let one_class = fit_logistic(&[vec![1.0], vec![2.0]], &[true, true], 1.0);
    assert!(one_class.predict(&[1.5]) > 0.9 && one_class.bias.is_finite());
}

#[test]
fn cross_val_scores_cover_every_row_deterministically() {
    let (xs, ys) = synthetic(203, 9);
    let first = cross_val_scores(&xs, &ys, 5, 1.0, 42);
    let again = cross_val_scores(&xs, &ys, 5, 1.0, 42);
    let other = cross_val_scores(&xs, &ys, 5, 1.0, 43);
    assert_eq!(first.len(), xs.len());
    assert_eq!(first, again);
    assert_ne!(first, other);
    assert!(first.iter().all(|p| (0.0..=1.0).contains(p)));
}

#[test]
fn cross_validated_scores_rank_held_out_rows() {
    let (xs, ys) = synthetic(600, 13);
    let scores = cross_val_scores(&xs, &ys, 5, 1.0, 1);
    let auc = crate::eval::auroc(&scores, &ys);
    assert!(auc > 0.8, "{auc}");
}

#[test]
fn cross_val_handles_tiny_inputs() {
    assert!(cross_val_scores(&[], &[], 5, 1.0, 0).is_empty());
    let one = cross_val_scores(&[vec![1.0]], &[true], 5, 1.0, 0);
    assert_eq!(one, vec![0.5]);
    let xs = vec![vec![0.0], vec![1.0], vec![2.0]];
    assert_eq!(
        cross_val_scores(&xs, &[false, true, true], 10, 1.0, 0).len(),
        3
    );
}

#[test]
fn threshold_escalates_requested_share_of_distinct_scores() {
    let scores: Vec<f64> = (0..100).map(|i| f64::from(i) / 100.0).rev().collect();
    for rate in [0.0, 0.1, 0.25, 0.5, 0.9, 1.0] {
        let t = threshold_for_escalation_rate(&scores, rate);
        let escalated = scores.iter().filter(|&&s| s < t).count();
        assert_eq!(escalated, (rate * 100.0).round() as usize, "rate {rate}");
    }
}

#[test]
fn threshold_with_ties_picks_nearest_achievable_share() {
    // 0.2 ×4, 0.5 ×4, 0.9 ×2: achievable shares are 0, 0.4, 0.8, 1.0.
    let scores = [0.2, 0.2, 0.2, 0.2, 0.5, 0.5, 0.5, 0.5, 0.9, 0.9];
    let share = |rate| {
        let t = threshold_for_escalation_rate(&scores, rate);
        scores.iter().filter(|&&s| s < t).count()
    };
    assert_eq!(share(0.3), 4);
    assert_eq!(share(0.7), 8);
    assert_eq!(share(0.1), 0);
    assert_eq!(share(1.0), 10);
    assert!(threshold_for_escalation_rate(&[], 0.5).is_nan());
}

#[test]
fn the_wide_solver_reaches_newtons_optimum() {
    // 120 rows, 1 + 90 columns (more than WIDE_COLUMNS), some signal in a few of them.
    let mut rng = XorShift::new(11);
    let design: Vec<Vec<f64>> = (0..120)
        .map(|_| {
            std::iter::once(1.0)
                .chain((0..90).map(|_| rng.unit() * 2.0 - 1.0))
                .collect()
        })
        .collect();
    let targets: Vec<f64> = design
        .iter()
        .map(|r| f64::from(u8::from(r[1] - 0.5 * r[2] + 0.3 * (rng.unit() - 0.5) > 0.0)))
        .collect();
    for l2 in [1.0, 10.0, 100.0] {
        let (newton, fast) = super::solvers_for_test(&design, &targets, l2);
        let diff = newton
            .iter()
            .zip(&fast)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(diff < 1e-5, "l2 {l2}: coefficients differ by {diff}");
        // and the fit found the signal
        assert!(newton[1] > 0.0 && newton[2] < 0.0);
    }
}

#[test]
fn wide_fits_go_through_fit_logistic() {
    let mut rng = XorShift::new(5);
    let xs: Vec<Vec<f64>> = (0..80)
        .map(|_| (0..100).map(|_| rng.unit()).collect())
        .collect();
    let ys: Vec<bool> = xs.iter().map(|x| x[0] > 0.5).collect();
    let fit = fit_logistic(&xs, &ys, 10.0);
    assert_eq!(fit.weights.len(), 100);
    assert!(fit.weights[0] > 0.0);
    let right = xs
        .iter()
        .zip(&ys)
        .filter(|(x, y)| (fit.predict(x) > 0.5) == **y)
        .count();
    assert!(right > 60, "{right} of 80");
}
