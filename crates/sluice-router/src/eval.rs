//! Offline evaluation of the router: grading a local answer against gold answers (the label
//! "the local answer is right"), ranking metrics over router scores, and the logistic model
//! fitted to those labels. Pure functions, no I/O, deterministic for a given seed.

pub mod agree;
pub mod finetune;
pub mod grade;
pub mod logistic;
pub mod metrics;
pub mod plot;
pub mod probe_fit;
pub mod routing;
pub mod sample;

pub use grade::{grade, normalize, GradeKind};
pub use logistic::{
    cross_val_scores, fit_logistic, group_assignment, kfold_assignment, scores_by_folds,
    threshold_for_escalation_rate, LogisticFit,
};
pub use metrics::{auprc, auroc, within_group_auroc};
pub use plot::{line_chart_svg, Marker, Series};
pub use routing::{
    apgr, min_escalated_for_quality, pgr, point_at_share, random_curve, routing_curve, CurvePoint,
    Outcome,
};
