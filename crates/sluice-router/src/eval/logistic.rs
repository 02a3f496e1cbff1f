//! The router's logistic model fitted to graded data: L2-regularised logistic regression,
//! k-fold cross-validated scores for honest AUROC, and the threshold that escalates a chosen
//! share of requests.

/// A fitted logistic model on the original (unstandardised) feature scale:
/// `p = sigmoid(bias + Σ weights[j]·x[j])`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticFit {
    /// Intercept on the logit scale.
    pub bias: f64,
    /// One weight per feature column; 0 for a column that was constant in training.
    pub weights: Vec<f64>,
}

impl LogisticFit {
    /// Probability that the label is true for the feature row `x` (missing trailing features
    /// count as absent, extra ones are ignored).
    pub fn predict(&self, x: &[f64]) -> f64 {
        let logit = self.bias + self.weights.iter().zip(x).map(|(w, v)| w * v).sum::<f64>();
        sigmoid(logit)
    }
}

/// Newton iterations before giving up on convergence (each one is a full solve).
const MAX_ITERATIONS: usize = 100;
/// Stop once no coefficient moves by more than this in an iteration.
const STEP_TOLERANCE: f64 = 1e-10;
/// Added to the Hessian diagonal so a separable, unregularised fit stays solvable.
const HESSIAN_JITTER: f64 = 1e-9;

/// L2-regularised logistic regression on standardised features (z-scores computed on the
/// training rows; a constant column gets weight 0), fitted by Newton's method (IRLS) with
/// step halving, then mapped back to the original feature scale.
///
/// Minimises `Σ log-loss + l2/2 · ‖w‖²` over the standardised weights `w` (the bias is not
/// penalised), so `l2` is scikit-learn's `1/C`. Rows beyond the shorter of `xs` and `ys` are
/// ignored; the column count is taken from the first row and short rows are padded with 0.
/// With no rows the model is all zeros (every prediction 0.5).
pub fn fit_logistic(xs: &[Vec<f64>], ys: &[bool], l2: f64) -> LogisticFit {
    let rows = xs.len().min(ys.len());
    let columns = xs.first().map_or(0, Vec::len);
    let l2 = if l2.is_finite() && l2 > 0.0 { l2 } else { 0.0 };
    if rows == 0 {
        return LogisticFit {
            bias: 0.0,
            weights: vec![0.0; columns],
        };
    }
    let value = |i: usize, j: usize| xs[i].get(j).copied().unwrap_or(0.0);

    // Standardise: only columns that vary enter the model.
    let mut means = vec![0.0; columns];
    let mut scales = vec![0.0; columns];
    let mut active = Vec::new();
    for j in 0..columns {
        let mean = (0..rows).map(|i| value(i, j)).sum::<f64>() / rows as f64;
        let variance = (0..rows).map(|i| (value(i, j) - mean).powi(2)).sum::<f64>() / rows as f64;
        let scale = variance.sqrt();
        means[j] = mean;
        scales[j] = scale;
        if scale.is_finite() && scale > 1e-12 * mean.abs().max(1.0) {
            active.push(j);
        }
    }
    // Design matrix: a leading 1 for the bias, then the z-scores of the active columns.
    let design: Vec<Vec<f64>> = (0..rows)
        .map(|i| {
            std::iter::once(1.0)
                .chain(active.iter().map(|&j| (value(i, j) - means[j]) / scales[j]))
                .collect()
        })
        .collect();
    let targets: Vec<f64> = ys[..rows].iter().map(|&y| f64::from(u8::from(y))).collect();
    // Newton's Hessian costs columns² per row; past a few dozen columns (hidden states are
    // hundreds wide) accelerated gradient descent reaches the same optimum far sooner.
    let theta = if active.len() > WIDE_COLUMNS && l2 > 0.0 {
        accelerated_gradient(&design, &targets, l2)
    } else {
        newton(&design, &targets, l2)
    };

    let mut weights = vec![0.0; columns];
    let mut bias = theta.first().copied().unwrap_or(0.0);
    for (k, &j) in active.iter().enumerate() {
        let w = theta.get(k + 1).copied().unwrap_or(0.0) / scales[j];
        weights[j] = w;
        bias -= w * means[j];
    }
    LogisticFit { bias, weights }
}

/// Above this many active columns `fit_logistic` uses `accelerated_gradient`.
const WIDE_COLUMNS: usize = 64;
/// Iterations of `accelerated_gradient` before it stops short of its tolerance.
const GRADIENT_ITERATIONS: usize = 5000;
/// `accelerated_gradient` stops when the gradient's norm is below this share of its first one.
const GRADIENT_TOLERANCE: f64 = 1e-7;

/// The penalised log-loss's gradient at `theta`; `design[i][0]` is the unpenalised bias column.
fn gradient(design: &[Vec<f64>], targets: &[f64], theta: &[f64], l2: f64) -> Vec<f64> {
    let mut g: Vec<f64> = theta.iter().map(|t| l2 * t).collect();
    if let Some(first) = g.first_mut() {
        *first = 0.0;
    }
    for (row, &y) in design.iter().zip(targets) {
        let r = sigmoid(dot(row, theta)) - y;
        for (gi, x) in g.iter_mut().zip(row) {
            *gi += r * x;
        }
    }
    g
}

/// Nesterov's accelerated gradient (FISTA with adaptive restart) on the penalised log-loss,
/// with step 1/L for L = λmax(DᵀD)/4 + l2 (λmax by power iteration), a bound on the Hessian.
fn accelerated_gradient(design: &[Vec<f64>], targets: &[f64], l2: f64) -> Vec<f64> {
    let size = design.first().map_or(0, Vec::len);
    // λmax of DᵀD by power iteration, padded by 10% against an under-estimate.
    let mut v = vec![1.0 / (size.max(1) as f64).sqrt(); size];
    let mut lambda = 0.0;
    for _ in 0..50 {
        let mut w = vec![0.0; size];
        for row in design {
            let d = dot(row, &v);
            for (wi, x) in w.iter_mut().zip(row) {
                *wi += d * x;
            }
        }
        let norm = dot(&w, &w).sqrt();
        if norm <= 0.0 || !norm.is_finite() {
            break;
        }
        lambda = norm;
        v = w.into_iter().map(|x| x / norm).collect();
    }
    let lipschitz = 1.1 * lambda / 4.0 + l2;
    let step = 1.0 / lipschitz;
    let mut theta = vec![0.0; size];
    let mut previous = theta.clone();
    let mut momentum = 1.0_f64;
    let first = dot(
        &gradient(design, targets, &theta, l2),
        &gradient(design, targets, &theta, l2),
    )
    .sqrt();
    for _ in 0..GRADIENT_ITERATIONS {
        let next_momentum = (1.0 + (1.0 + 4.0 * momentum * momentum).sqrt()) / 2.0;
        let beta = (momentum - 1.0) / next_momentum;
        let look: Vec<f64> = theta
            .iter()
            .zip(&previous)
            .map(|(t, p)| t + beta * (t - p))
            .collect();
        let g = gradient(design, targets, &look, l2);
        let norm = dot(&g, &g).sqrt();
        let next: Vec<f64> = look.iter().zip(&g).map(|(t, gi)| t - step * gi).collect();
        // Restart the momentum when it points uphill.
        let uphill: f64 = g
            .iter()
            .zip(next.iter().zip(&theta))
            .map(|(gi, (n, t))| gi * (n - t))
            .sum();
        previous = std::mem::replace(&mut theta, next);
        momentum = if uphill > 0.0 { 1.0 } else { next_momentum };
        if norm <= GRADIENT_TOLERANCE * first.max(1e-300) {
            break;
        }
    }
    theta
}

/// Newton's method on the penalised log-loss; `design[i][0]` is the unpenalised bias column.
fn newton(design: &[Vec<f64>], targets: &[f64], l2: f64) -> Vec<f64> {
    let size = design.first().map_or(0, Vec::len);
    let mut theta = vec![0.0; size];
    let mut current = objective(design, targets, &theta, l2);
    for _ in 0..MAX_ITERATIONS {
        let mut gradient = vec![0.0; size];
        let mut hessian = vec![vec![0.0; size]; size];
        for (row, &y) in design.iter().zip(targets) {
            let p = sigmoid(dot(row, &theta));
            let weight = p * (1.0 - p);
            for a in 0..size {
                gradient[a] += (p - y) * row[a];
                for (cell, &other) in hessian[a].iter_mut().zip(row) {
                    *cell += weight * row[a] * other;
                }
            }
        }
        for a in 0..size {
            let penalty = if a == 0 { 0.0 } else { l2 };
            gradient[a] += penalty * theta[a];
            hessian[a][a] += penalty + HESSIAN_JITTER;
        }
        let Some(step) = solve(hessian, gradient) else {
            break;
        };
        // Halve the step until the objective does not rise; give up if it always does.
        let mut scale = 1.0;
        let mut accepted = None;
        for _ in 0..40 {
            let candidate: Vec<f64> = theta
                .iter()
                .zip(&step)
                .map(|(t, s)| t - scale * s)
                .collect();
            let value = objective(design, targets, &candidate, l2);
            if value <= current {
                accepted = Some((candidate, value));
                break;
            }
            scale /= 2.0;
        }
        let Some((next, value)) = accepted else {
            break;
        };
        let moved = step.iter().map(|s| (scale * s).abs()).fold(0.0, f64::max);
        theta = next;
        current = value;
        if moved < STEP_TOLERANCE {
            break;
        }
    }
    theta
}

fn objective(design: &[Vec<f64>], targets: &[f64], theta: &[f64], l2: f64) -> f64 {
    let loss: f64 = design
        .iter()
        .zip(targets)
        .map(|(row, &y)| {
            let logit = dot(row, theta);
            softplus(logit) - y * logit
        })
        .sum();
    let penalty: f64 = theta.iter().skip(1).map(|w| w * w).sum();
    loss + 0.5 * l2 * penalty
}

/// Solves `a · x = b` by Gaussian elimination with partial pivoting; `None` if singular.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n).max_by(|&r, &s| a[r][col].abs().total_cmp(&a[s][col].abs()))?;
        let magnitude = a[pivot][col].abs();
        if magnitude.is_nan() || magnitude <= 1e-300 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let (upper, lower) = a.split_at_mut(col + 1);
        let pivot_row = &upper[col];
        let pivot_rhs = b[col];
        for (row, rhs) in lower.iter_mut().zip(b.iter_mut().skip(col + 1)) {
            let factor = row[col] / pivot_row[col];
            for (x, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= factor * p;
            }
            *rhs -= factor * pivot_rhs;
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let tail: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - tail) / a[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn sigmoid(logit: f64) -> f64 {
    if logit >= 0.0 {
        1.0 / (1.0 + (-logit).exp())
    } else {
        let e = logit.exp();
        e / (1.0 + e)
    }
}

/// `ln(1 + e^x)` without overflow.
fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// k-fold cross-validation (rows assigned to folds by a seeded shuffle): fit on k-1 folds,
/// score the held-out fold; returns the held-out score of every row (in row order) so the
/// caller computes AUROC over all of them.
///
/// `k` is clamped to `2..=rows` (k = rows is leave-one-out); a single row is scored by a model
/// fitted on nothing (0.5).
pub fn cross_val_scores(xs: &[Vec<f64>], ys: &[bool], k: usize, l2: f64, seed: u64) -> Vec<f64> {
    let rows = xs.len().min(ys.len());
    if rows == 0 {
        return Vec::new();
    }
    let fold_of = kfold_assignment(rows, k, seed);
    scores_by_folds(&xs[..rows], &ys[..rows], &fold_of, |x, y| {
        let model = fit_logistic(x, y, l2);
        move |row: &Vec<f64>| model.predict(row)
    })
}

/// The fold of each of `rows` rows for k-fold cross-validation: a seeded shuffle dealt into
/// `k` folds (`k` clamped to `2..=rows`).
pub fn kfold_assignment(rows: usize, k: usize, seed: u64) -> Vec<usize> {
    let folds = k.clamp(2, rows.max(2));
    let mut order: Vec<usize> = (0..rows).collect();
    let mut rng = XorShift::new(seed);
    for i in (1..rows).rev() {
        let j = rng.below(i + 1);
        order.swap(i, j);
    }
    let mut fold_of = vec![0; rows];
    for (position, &row) in order.iter().enumerate() {
        fold_of[row] = position % folds;
    }
    fold_of
}

/// The fold of each row for leave-one-group-out cross-validation (a group is a task): one fold
/// per distinct group, numbered in order of first appearance.
pub fn group_assignment<S: AsRef<str>>(groups: &[S]) -> Vec<usize> {
    let mut seen: Vec<&str> = Vec::new();
    groups
        .iter()
        .map(|g| {
            let g = g.as_ref();
            match seen.iter().position(|s| *s == g) {
                Some(i) => i,
                None => {
                    seen.push(g);
                    seen.len() - 1
                }
            }
        })
        .collect()
}

/// Held-out scores: for each fold, `fit` on the rows of the other folds and score the fold's
/// rows with the result. A fold with no training rows scores 0.5.
pub fn scores_by_folds<X: Clone, F, P>(xs: &[X], ys: &[bool], fold_of: &[usize], fit: F) -> Vec<f64>
where
    F: Fn(&[X], &[bool]) -> P,
    P: Fn(&X) -> f64,
{
    let rows = xs.len().min(ys.len()).min(fold_of.len());
    let folds = fold_of[..rows].iter().copied().max().map_or(0, |m| m + 1);
    let mut scores = vec![0.5; rows];
    for fold in 0..folds {
        let train: Vec<usize> = (0..rows).filter(|&i| fold_of[i] != fold).collect();
        if train.is_empty() {
            continue;
        }
        let train_x: Vec<X> = train.iter().map(|&i| xs[i].clone()).collect();
        let train_y: Vec<bool> = train.iter().map(|&i| ys[i]).collect();
        let model = fit(&train_x, &train_y);
        for i in (0..rows).filter(|&i| fold_of[i] == fold) {
            scores[i] = model(&xs[i]);
        }
    }
    scores
}

/// The threshold that escalates (score < threshold) as close as possible to `rate` of these
/// scores.
///
/// The threshold falls midway between two neighbouring distinct scores, so it escalates the
/// same rows however it is rounded; with ties, the achievable share nearest `rate` wins (the
/// lower one when two are equally near). NaN scores are ignored; with none left the result is
/// NaN, which escalates nothing.
pub fn threshold_for_escalation_rate(scores: &[f64], rate: f64) -> f64 {
    let mut sorted: Vec<f64> = scores.iter().copied().filter(|s| !s.is_nan()).collect();
    sorted.sort_by(f64::total_cmp);
    let Some(&highest) = sorted.last() else {
        return f64::NAN;
    };
    let rate = if rate.is_nan() {
        0.0
    } else {
        rate.clamp(0.0, 1.0)
    };
    let target = rate * sorted.len() as f64;

    // Candidate i: threshold at the i-th distinct value escalates `below` rows.
    let mut best: Option<(f64, f64)> = None; // (distance from target, threshold)
    let mut previous: Option<f64> = None;
    let mut below = 0usize;
    let mut consider = |escalated: usize, threshold: f64| {
        let distance = (escalated as f64 - target).abs();
        if best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, threshold));
        }
    };
    let mut i = 0;
    while i < sorted.len() {
        let value = sorted[i];
        let threshold = match previous {
            Some(low) => midpoint_between(low, value),
            None => value,
        };
        consider(below, threshold);
        while i < sorted.len() && sorted[i].total_cmp(&value).is_eq() {
            i += 1;
        }
        below = i;
        previous = Some(value);
    }
    consider(sorted.len(), highest.next_up());
    best.map_or(f64::NAN, |(_, threshold)| threshold)
}

/// A value in `(low, high]` as central as floating point allows.
fn midpoint_between(low: f64, high: f64) -> f64 {
    let middle = low + (high - low) / 2.0;
    if middle > low && middle <= high {
        middle
    } else {
        high
    }
}

/// Deterministic xorshift64* generator for the fold shuffle (no external RNG dependency).
#[derive(Debug)]
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        // SplitMix64 scramble so nearby seeds (and 0) give unrelated, non-zero states.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Self(if z == 0 { 0x2545_F491_4F6C_DD1D } else { z })
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-enough index in `0..bound` (bound > 0; modulo bias is negligible here).
    fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound as u64) as usize
    }

    /// Uniform in `[0, 1)`.
    #[cfg(test)]
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
pub(crate) fn solvers_for_test(
    design: &[Vec<f64>],
    targets: &[f64],
    l2: f64,
) -> (Vec<f64>, Vec<f64>) {
    (
        newton(design, targets, l2),
        accelerated_gradient(design, targets, l2),
    )
}
