use super::*;

fn item(score: f64, local_right: bool, large_right: bool, large_cost: f64) -> Outcome {
    Outcome {
        score,
        local_right,
        large_right,
        large_cost,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

fn column(curve: &[CurvePoint], field: fn(&CurvePoint) -> f64) -> Vec<f64> {
    curve.iter().map(field).collect()
}

/// Local right on the two highest scores; the large model wrong only at 0.6.
fn four() -> Vec<Outcome> {
    vec![
        item(0.6, true, false, 2.0),
        item(0.1, false, true, 4.0),
        item(0.9, true, true, 1.0),
        item(0.4, false, true, 3.0),
    ]
}

#[test]
fn hand_computed_four_items() {
    let curve = routing_curve(&four());
    assert_eq!(column(&curve, |p| p.accuracy), [0.5, 0.75, 1.0, 0.75, 0.75]);
    assert_eq!(column(&curve, |p| p.cost), [0.0, 4.0, 7.0, 9.0, 10.0]);
    assert_eq!(column(&curve, |p| p.share), [0.0, 0.25, 0.5, 0.75, 1.0]);
    assert_eq!(pgr(&curve, &curve[2]), Some(2.0));
    // PGR 0, 1, 2, 1, 1 at steps of 0.25: 0.25 · (0.5 + 1.5 + 1.5 + 1).
    assert!(close(apgr(&curve).unwrap(), 1.125));
    let needed = [0.95, 0.6, 4.0 / 3.0, 1.5].map(|q| min_escalated_for_quality(&curve, q));
    assert_eq!(needed, [Some(1), Some(0), Some(2), None]);
}

#[test]
fn a_cut_through_ties_counts_the_expected_value_and_nan_is_lowest() {
    let (x, y) = (item(0.5, true, true, 2.0), item(0.5, false, true, 4.0));
    let z = item(0.9, false, true, 1.0);
    // k = 1 takes half of {x, y}: 0.5 · 2 large-right + 0.5 · 1 local-right = 1.5 of 3.
    for items in [[x, y, z], [z, y, x]] {
        let curve = routing_curve(&items);
        assert_eq!(
            column(&curve, |p| p.accuracy),
            [1.0 / 3.0, 0.5, 2.0 / 3.0, 1.0]
        );
        assert_eq!(column(&curve, |p| p.cost), [0.0, 3.0, 6.0, 7.0]);
    }
    let nan_first = routing_curve(&[
        item(0.2, true, false, 1.0),
        item(f64::NAN, false, true, 1.0),
    ]);
    assert_eq!(nan_first[1].accuracy, 1.0);
}

#[test]
fn curve_is_independent_of_input_order() {
    let scores = [0.3, f64::NAN, 0.7, -0.0, 0.0, 0.3, 0.9, 0.3, 0.7];
    let cost = |i: usize| 0.1 * (i % 5) as f64 + 0.3;
    let items: Vec<Outcome> = (0..27)
        .map(|i| item(scores[i % 9], i % 2 == 0, i % 3 != 0, cost(i)))
        .collect();
    let curve = routing_curve(&items);
    assert_eq!(curve.len(), 28);
    let (mut shuffled, mut state) = (items.clone(), 12345u64);
    for round in 0..5 {
        for i in (1..shuffled.len()).rev() {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            shuffled.swap(i, (state >> 33) as usize % (i + 1));
        }
        assert_eq!(routing_curve(&shuffled), curve, "round {round}");
        assert_eq!(random_curve(&shuffled), random_curve(&items));
    }
}

#[test]
fn random_apgr_is_one_half_and_a_perfect_router_beats_it() {
    let items: Vec<Outcome> = (0..10).map(|i| item(0.0, i < 6, i < 9, 1.0)).collect();
    let random = random_curve(&items);
    assert!(close(apgr(&random).unwrap(), 0.5));
    assert!(close(random[5].accuracy, 0.75) && close(random[5].cost, 5.0));
    // All scores tied: the routed curve is the random router's.
    for (tied, baseline) in routing_curve(&items).iter().zip(&random) {
        assert!(close(tied.accuracy, baseline.accuracy) && close(tied.cost, baseline.cost));
    }
    // Escalate "large right, local wrong" first, "local right, large wrong" last.
    let flag = |b: bool| f64::from(u8::from(b));
    let score = |o: &Outcome| 2.0 * flag(o.local_right) - flag(o.large_right);
    let mut perfect = items.clone();
    for o in &mut perfect {
        o.score = score(o);
    }
    let curve = routing_curve(&perfect);
    assert!(apgr(&curve).unwrap() > 0.5);
    assert_eq!(min_escalated_for_quality(&curve, 1.0), Some(3));
}

#[test]
fn pgr_is_none_without_a_gap() {
    let same: Vec<Outcome> = (0..4)
        .map(|i| item(f64::from(i), i % 2 == 0, i % 2 == 0, 1.0))
        .collect();
    let worse = [item(0.1, true, false, 1.0), item(0.2, true, true, 1.0)];
    for items in [&same[..], &worse[..]] {
        let curve = routing_curve(items);
        assert_eq!((pgr(&curve, &curve[1]), apgr(&curve)), (None, None));
    }
}

#[test]
fn empty_input_and_share_lookup() {
    for curve in [routing_curve(&[]), random_curve(&[])] {
        assert_eq!(curve, vec![EMPTY]);
        assert_eq!((pgr(&curve, &curve[0]), apgr(&curve)), (None, None));
    }
    assert_eq!(min_escalated_for_quality(&[], 0.9), None);
    assert_eq!(point_at_share(&[], 0.5), EMPTY);
    let curve = routing_curve(&four());
    let at = [0.5, 0.374, 0.375, -1.0, 2.0, f64::NAN].map(|s| point_at_share(&curve, s).escalated);
    assert_eq!(at, [2, 1, 2, 0, 4, 0]);
}
