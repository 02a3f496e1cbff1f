//! Tests of the spend ledger and its UTC calendar.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use super::civil::days_from_civil;
use super::*;

/// A clock the test moves by hand, in milliseconds since the Unix epoch.
#[derive(Clone)]
struct TestClock(Arc<AtomicI64>);

impl TestClock {
    fn set(&self, millis: i64) {
        self.0.store(millis, Ordering::SeqCst);
    }
}

/// A ledger whose clock starts at `start` (ms since the epoch).
fn ledger_at(start: i64) -> (SpendLedger, TestClock) {
    let clock = TestClock(Arc::new(AtomicI64::new(start)));
    let c = clock.clone();
    let ledger = SpendLedger::with_clock(Arc::new(move || {
        let ms = c.0.load(Ordering::SeqCst);
        let d = Duration::from_millis(ms.unsigned_abs());
        if ms >= 0 {
            UNIX_EPOCH + d
        } else {
            UNIX_EPOCH - d
        }
    }));
    (ledger, clock)
}

/// Milliseconds since the epoch of a UTC date and time.
fn at(y: i64, mo: u32, d: u32, h: i64, mi: i64, s: i64) -> i64 {
    ((days_from_civil(y, mo, d) * 86_400) + h * 3_600 + mi * 60 + s) * 1_000
}

fn caps(daily: Option<f64>, monthly: Option<f64>) -> BudgetCaps {
    BudgetCaps {
        daily_usd: daily,
        monthly_usd: monthly,
    }
}

fn spent(day_usd: f64, month_usd: f64) -> Spent {
    Spent { day_usd, month_usd }
}

// --- the calendar ---

#[test]
fn civil_dates_of_known_days() {
    let date = |days| {
        let c = civil_from_days(days);
        (c.year, c.month, c.day)
    };
    assert_eq!(date(0), (1970, 1, 1));
    assert_eq!(date(-1), (1969, 12, 31));
    assert_eq!(date(11_016), (2000, 2, 29));
    assert_eq!(date(11_017), (2000, 3, 1));
    assert_eq!(date(20_786), (2026, 11, 29));
    assert_eq!(civil_from_days(20_786).day_string(), "2026-11-29");
    assert_eq!(civil_from_days(20_786).month_string(), "2026-11");
}

#[test]
fn civil_round_trips_over_four_thousand_years() {
    for days in -800_000..800_000 {
        let c = civil_from_days(days);
        assert_eq!(days_from_civil(c.year, c.month, c.day), days, "{c:?}");
    }
}

#[test]
fn leap_years_follow_the_gregorian_rules() {
    let feb_length = |y| days_from_civil(y, 3, 1) - days_from_civil(y, 2, 1);
    assert_eq!(feb_length(2028), 29);
    assert_eq!(feb_length(2000), 29);
    assert_eq!(feb_length(2100), 28);
    assert_eq!(feb_length(2027), 28);
}

#[test]
fn days_round_down_before_the_epoch() {
    let t = |secs: i64, nanos: u32| {
        if secs >= 0 {
            UNIX_EPOCH + Duration::new(secs.unsigned_abs(), nanos)
        } else {
            UNIX_EPOCH - Duration::new(secs.unsigned_abs(), nanos)
        }
    };
    assert_eq!(unix_day(t(0, 0)), 0);
    assert_eq!(unix_day(t(86_399, 999_999_999)), 0);
    assert_eq!(unix_day(t(86_400, 0)), 1);
    assert_eq!(unix_day(t(-1, 0)), -1);
    assert_eq!(unix_day(t(0, 1) - Duration::from_nanos(2)), -1);
    assert_eq!(unix_day(t(-86_400, 0)), -1);
    assert_eq!(unix_day(t(-86_400, 1)), -2);
}

// --- rollover ---

#[test]
fn day_rolls_over_at_utc_midnight() {
    let (ledger, clock) = ledger_at(at(2026, 11, 29, 23, 59, 59) + 999);
    ledger.record("acme", 3.0);
    assert_eq!(ledger.spent("acme"), spent(3.0, 3.0));

    clock.set(at(2026, 11, 30, 0, 0, 0));
    assert_eq!(ledger.spent("acme"), spent(0.0, 3.0));
    ledger.record("acme", 1.0);
    assert_eq!(ledger.spent("acme"), spent(1.0, 4.0));
}

#[test]
fn month_rolls_over_on_the_first() {
    let (ledger, clock) = ledger_at(at(2026, 11, 30, 23, 59, 59));
    ledger.record("acme", 2.5);
    clock.set(at(2026, 12, 1, 0, 0, 0));
    assert_eq!(ledger.spent("acme"), spent(0.0, 0.0));
}

#[test]
fn december_rolls_over_into_january() {
    let (ledger, clock) = ledger_at(at(2026, 12, 31, 23, 59, 59));
    ledger.record("acme", 7.0);
    assert_eq!(ledger.spent("acme"), spent(7.0, 7.0));

    clock.set(at(2027, 1, 1, 0, 0, 0));
    assert_eq!(ledger.spent("acme"), spent(0.0, 0.0));
    ledger.record("acme", 1.0);
    let err = ledger
        .check("acme", &caps(None, Some(1.0)))
        .expect_err("monthly cap reached");
    assert_eq!(err.period, "2027-01");
}

#[test]
fn leap_day_is_its_own_day_in_february() {
    let (ledger, clock) = ledger_at(at(2028, 2, 28, 12, 0, 0));
    ledger.record("acme", 1.0);

    clock.set(at(2028, 2, 29, 0, 0, 0));
    assert_eq!(ledger.spent("acme"), spent(0.0, 1.0));
    ledger.record("acme", 2.0);
    let err = ledger
        .check("acme", &caps(Some(2.0), None))
        .expect_err("daily cap reached");
    assert_eq!(err.period, "2028-02-29");

    clock.set(at(2028, 2, 29, 23, 59, 59));
    assert_eq!(ledger.spent("acme"), spent(2.0, 3.0));

    clock.set(at(2028, 3, 1, 0, 0, 0));
    assert_eq!(ledger.spent("acme"), spent(0.0, 0.0));
}

#[test]
fn february_has_no_29th_in_common_years() {
    let (ledger, clock) = ledger_at(at(2027, 2, 28, 23, 59, 59));
    ledger.record("acme", 1.0);
    clock.set(at(2027, 2, 28, 23, 59, 59) + 1_000);
    assert_eq!(ledger.spent("acme"), spent(0.0, 0.0));
}

#[test]
fn a_cap_reached_today_allows_again_tomorrow() {
    let (ledger, clock) = ledger_at(at(2026, 11, 29, 10, 0, 0));
    let c = caps(Some(1.0), Some(10.0));
    ledger.record("acme", 1.0);
    assert!(ledger.check("acme", &c).is_err());
    clock.set(at(2026, 11, 30, 0, 0, 0));
    assert_eq!(ledger.check("acme", &c), Ok(()));
    assert_eq!(ledger.spent("acme"), spent(0.0, 1.0));
}

#[test]
fn past_periods_are_dropped() {
    let (ledger, clock) = ledger_at(at(2026, 11, 1, 0, 0, 0));
    for day in 1..=30 {
        clock.set(at(2026, 11, day, 12, 0, 0));
        ledger.record("acme", 1.0);
        ledger.record("beta", 0.5);
    }
    // One entry per tenant, holding only the current day and month.
    assert_eq!(ledger.lock().len(), 2);
    assert_eq!(ledger.spent("acme"), spent(1.0, 30.0));

    // A tenant with nothing spent this month is forgotten when next looked at.
    clock.set(at(2026, 12, 1, 0, 0, 0));
    assert_eq!(ledger.spent("acme"), spent(0.0, 0.0));
    assert_eq!(ledger.check("beta", &caps(Some(0.5), None)), Ok(()));
    assert_eq!(ledger.lock().len(), 0);
}

// --- caps ---

#[test]
fn daily_cap_is_checked_before_monthly() {
    let (ledger, clock) = ledger_at(at(2026, 11, 28, 9, 0, 0));
    ledger.record("acme", 4.0);
    clock.set(at(2026, 11, 29, 9, 0, 0));
    ledger.record("acme", 5.0);

    // Both reached: daily reported.
    let err = ledger
        .check("acme", &caps(Some(5.0), Some(9.0)))
        .expect_err("both caps reached");
    assert_eq!(err.cap, CapKind::Daily);
    assert_eq!((err.limit_usd, err.spent_usd), (5.0, 5.0));
    assert_eq!(err.period, "2026-11-29");

    // Only monthly reached.
    let err = ledger
        .check("acme", &caps(Some(6.0), Some(9.0)))
        .expect_err("monthly cap reached");
    assert_eq!(err.cap, CapKind::Monthly);
    assert_eq!((err.limit_usd, err.spent_usd), (9.0, 9.0));
    assert_eq!(err.period, "2026-11");
}

#[test]
fn spending_exactly_the_cap_exhausts_it() {
    let (ledger, _clock) = ledger_at(at(2026, 11, 29, 9, 0, 0));
    let c = caps(Some(1.0), None);
    assert_eq!(ledger.check("acme", &c), Ok(()));
    ledger.record("acme", 0.75);
    assert_eq!(ledger.check("acme", &c), Ok(()));
    ledger.record("acme", 0.25);
    let err = ledger.check("acme", &c).expect_err("cap reached exactly");
    assert_eq!(err.spent_usd, 1.0);

    let c = caps(None, Some(1.0));
    assert!(ledger.check("acme", &c).is_err());
}

#[test]
fn no_caps_allow_everything() {
    let (ledger, _clock) = ledger_at(at(2026, 11, 29, 9, 0, 0));
    ledger.record("acme", 1e9);
    assert_eq!(ledger.check("acme", &BudgetCaps::default()), Ok(()));
    assert_eq!(ledger.check("acme", &caps(None, Some(2e9))), Ok(()));
    assert_eq!(ledger.check("acme", &caps(Some(2e9), None)), Ok(()));
    assert_eq!(ledger.check("nobody", &BudgetCaps::default()), Ok(()));
}

#[test]
fn tenants_are_isolated() {
    let (ledger, _clock) = ledger_at(at(2026, 11, 29, 9, 0, 0));
    ledger.record("acme", 5.0);
    ledger.record("beta", 0.25);
    let c = caps(Some(5.0), Some(100.0));
    assert!(ledger.check("acme", &c).is_err());
    assert_eq!(ledger.check("beta", &c), Ok(()));
    assert_eq!(ledger.check("gamma", &c), Ok(()));
    assert_eq!(ledger.spent("beta"), spent(0.25, 0.25));
    assert_eq!(ledger.spent("gamma"), spent(0.0, 0.0));
}

#[test]
fn invalid_amounts_are_ignored() {
    let (ledger, _clock) = ledger_at(at(2026, 11, 29, 9, 0, 0));
    for usd in [-1.0, -0.0, 0.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        ledger.record("acme", usd);
    }
    assert_eq!(ledger.spent("acme"), spent(0.0, 0.0));
    assert_eq!(ledger.lock().len(), 0);
    ledger.record("acme", 0.5);
    ledger.record("acme", f64::NAN);
    ledger.record("acme", -0.5);
    assert_eq!(ledger.spent("acme"), spent(0.5, 0.5));
}

#[test]
fn concurrent_records_sum_exactly() {
    let (ledger, _clock) = ledger_at(at(2026, 11, 29, 9, 0, 0));
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..1000 {
                    ledger.record("acme", 0.25);
                }
            });
        }
    });
    assert_eq!(ledger.spent("acme"), spent(2000.0, 2000.0));
}

#[test]
fn the_system_clock_ledger_records() {
    let ledger = SpendLedger::default();
    ledger.record("acme", 0.5);
    // The two calls could straddle midnight UTC, or the first of the month.
    let s = ledger.spent("acme");
    assert!(
        [spent(0.5, 0.5), spent(0.0, 0.5), spent(0.0, 0.0)].contains(&s),
        "{s:?}"
    );
    assert!(format!("{ledger:?}").starts_with("SpendLedger"));
}

// --- messages ---

#[test]
fn exhausted_displays_the_cap_and_the_spend() {
    let (ledger, _clock) = ledger_at(at(2026, 11, 29, 9, 0, 0));
    ledger.record("acme", 5.0123);
    let err = ledger
        .check("acme", &caps(Some(5.0), None))
        .expect_err("daily cap reached");
    assert_eq!(
        err.to_string(),
        "tenant acme reached its daily escalation budget of $5.00 (spent $5.0123 today, UTC)"
    );

    ledger.record("beta", 100.5);
    let err = ledger
        .check("beta", &caps(Some(500.0), Some(100.0)))
        .expect_err("monthly cap reached");
    assert_eq!(
        err.to_string(),
        "tenant beta reached its monthly escalation budget of $100.00 (spent $100.50 in 2026-11, UTC)"
    );
}

#[test]
fn dollars_show_two_to_four_decimals() {
    assert_eq!(usd(5.0), "5.00");
    assert_eq!(usd(100.5), "100.50");
    assert_eq!(usd(0.125), "0.125");
    assert_eq!(usd(5.0123), "5.0123");
    assert_eq!(usd(5.01234), "5.0123");
    assert_eq!(usd(1234.0), "1234.00");
    // under a cent: four significant digits, at most 8 decimals
    assert_eq!(usd(0.000026), "0.000026");
    assert_eq!(usd(0.00002), "0.00002");
    assert_eq!(usd(0.001234567), "0.001235");
    assert_eq!(usd(0.000000001), "0.00");
    assert_eq!(usd(0.0), "0.00");
}

#[test]
fn cap_kinds_have_names() {
    assert_eq!(CapKind::Daily.as_str(), "daily");
    assert_eq!(CapKind::Monthly.as_str(), "monthly");
}

// --- reservations ---

#[test]
fn a_reservation_counts_until_settled_to_the_real_cost() {
    let (ledger, _) = ledger_at(at(2026, 12, 6, 10, 0, 0));
    let c = caps(Some(1.0), None);
    let period = ledger.reserve("acme", &c, 0.75).unwrap();
    assert_eq!(ledger.spent("acme"), spent(0.75, 0.75));
    // A second escalation still fits under the cap (0.75 < 1.0) and reserves too.
    let second = ledger.reserve("acme", &c, 0.75).unwrap();
    // The cap is now reached by reservations alone: a third is refused before any cost.
    let err = ledger.reserve("acme", &c, 0.75).unwrap_err();
    assert_eq!((err.cap, err.spent_usd), (CapKind::Daily, 1.5));
    // Both settle lower than reserved: what they cost is what stays.
    ledger.adjust("acme", &period, 0.1 - 0.75);
    ledger.adjust("acme", &second, 0.2 - 0.75);
    let s = ledger.spent("acme");
    assert!((s.day_usd - 0.3).abs() < 1e-12, "{s:?}");
    assert!(ledger.reserve("acme", &c, 0.75).is_ok());
}

#[test]
fn concurrent_reservations_overshoot_by_at_most_one() {
    let (ledger, _) = ledger_at(at(2026, 12, 6, 10, 0, 0));
    let ledger = Arc::new(ledger);
    let c = caps(Some(1.0), None);
    let granted = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..50 {
                    if ledger.reserve("acme", &c, 0.03).is_ok() {
                        granted.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    // 0.03 each under a cap of 1.0: 34 fit (33 × 0.03 = 0.99 < 1.0), never more.
    assert_eq!(granted.load(Ordering::SeqCst), 34);
    assert!(ledger.spent("acme").day_usd < 1.0 + 0.03 + 1e-9);
}

#[test]
fn a_settle_after_midnight_leaves_the_new_day_alone() {
    let (ledger, clock) = ledger_at(at(2026, 12, 6, 23, 59, 59));
    let c = caps(Some(10.0), Some(100.0));
    let period = ledger.reserve("acme", &c, 2.0).unwrap();
    clock.set(at(2026, 12, 7, 0, 0, 1));
    ledger.adjust("acme", &period, 1.0);
    // The new day starts from zero; the month (same one) takes the correction.
    assert_eq!(ledger.spent("acme"), spent(0.0, 3.0));
    // Nothing goes below zero, and NaN changes nothing.
    ledger.adjust("acme", &ledger.period(), -50.0);
    ledger.adjust("acme", &ledger.period(), f64::NAN);
    assert_eq!(ledger.spent("acme"), spent(0.0, 0.0));
}

#[test]
fn the_mirror_of_shared_totals_is_set_only_for_the_current_period() {
    let (ledger, clock) = ledger_at(at(2026, 12, 6, 12, 0, 0));
    let today = ledger.period();
    ledger.record("acme", 1.0);
    ledger.mirror("acme", &today, spent(5.0, 7.5));
    assert_eq!(ledger.spent("acme"), spent(5.0, 7.5));
    ledger.mirror("acme", &today, spent(0.5, 3.0));
    assert_eq!(ledger.spent("acme"), spent(0.5, 3.0));
    clock.set(at(2026, 12, 7, 12, 0, 0));
    ledger.mirror("acme", &today, spent(9.0, 9.0));
    assert_eq!(ledger.spent("acme"), spent(0.0, 3.0));
}
