//! The routing decision: features of a request and its local draft, the policy's logistic
//! model over them, and the route that follows. Also the `LocalModel` trait the in-process
//! model implements, so this logic builds and tests without the model, and the policy's rules,
//! which can decide a request before it is scored.

pub mod decision;
pub mod eval;
pub mod features;
pub mod lexical;
pub mod local;
pub mod pipeline;
pub mod probe;
pub mod rules;

pub use decision::{decide, prescreen, Decision, Reason, RouteChoice};
pub use features::{confidence, draft_features, FeatureValues};
pub use lexical::{lexical_features, request_features};
pub use local::{
    Draft, FinishReason, LocalError, LocalEvent, LocalModel, LocalRequest, PromptStats, TokenStat,
};
pub use probe::{all_prefill_features, prefill_features, Prefilled};
pub use rules::{explain as explain_rules, first_match, RuleInput, RuleMatch};
