//! The routing decision: features of a request and its local draft, the policy's logistic
//! model over them, and the route that follows. Also the `LocalModel` trait the in-process
//! model implements, so this logic builds and tests without the model.

pub mod decision;
pub mod eval;
pub mod features;
pub mod local;

pub use decision::{decide, Decision, Reason, RouteChoice};
pub use features::{confidence, draft_features, FeatureValues};
pub use local::{Draft, FinishReason, LocalError, LocalEvent, LocalModel, LocalRequest, TokenStat};
