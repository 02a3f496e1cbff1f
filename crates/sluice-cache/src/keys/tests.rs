//! Properties of the cache keys: equal exactly when the canonical requests are equal.

use super::*;
use proptest::prelude::*;
use sluice_policy::{GenParams, Message, Role};

/// An owned request, so strategies can build and mutate it.
#[derive(Debug, Clone)]
struct Req {
    tenant: String,
    policy: String,
    fingerprint: u64,
    model: String,
    hint: String,
    messages: Vec<Message>,
    params: GenParams,
    tags: std::collections::BTreeMap<String, String>,
}

impl Req {
    fn key(&self) -> CacheKey {
        response_key(&ResponseKeyInput {
            tenant: &self.tenant,
            policy: &self.policy,
            policy_fingerprint: self.fingerprint,
            local_model: &self.model,
            hint: &self.hint,
            messages: &self.messages,
            params: &self.params,
            tags: &self.tags,
        })
    }

    fn score_key(&self) -> CacheKey {
        score_key(&ScoreKeyInput {
            tenant: &self.tenant,
            policy: &self.policy,
            policy_fingerprint: self.fingerprint,
            local_model: &self.model,
            messages: &self.messages,
            max_tokens: self.params.max_tokens.unwrap_or(0),
        })
    }
}

/// Written apart from the encoder: what "the same request" means to a user.
fn equivalent(a: &Req, b: &Req) -> bool {
    fn same_f32(a: Option<f32>, b: Option<f32>) -> bool {
        match (a, b) {
            (None, None) => true,
            (Some(x), Some(y)) => x == y || (x.is_nan() && y.is_nan()),
            _ => false,
        }
    }
    let norm = |r: &Req| -> Vec<(Role, String)> {
        r.messages
            .iter()
            .map(|m| (m.role, normalize_text(&m.content)))
            .collect()
    };
    a.tenant == b.tenant
        && a.policy == b.policy
        && a.fingerprint == b.fingerprint
        && a.model == b.model
        && a.hint == b.hint
        && norm(a) == norm(b)
        && a.params.max_tokens == b.params.max_tokens
        && same_f32(a.params.temperature, b.params.temperature)
        && same_f32(a.params.top_p, b.params.top_p)
        && a.params.stop == b.params.stop
        && a.tags == b.tags
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::System), Just(Role::User), Just(Role::Assistant)]
}

/// Small alphabets with whitespace of every kind, so equal and near-equal texts are common.
fn text() -> impl Strategy<Value = String> {
    "[ab \t\r\n\u{a0}é]{0,8}"
}

fn message() -> impl Strategy<Value = Message> {
    (role(), text()).prop_map(|(r, c)| Message::new(r, c))
}

fn opt_f32() -> impl Strategy<Value = Option<f32>> {
    prop_oneof![
        Just(None),
        Just(Some(0.0)),
        Just(Some(-0.0)),
        Just(Some(1.0)),
        any::<f32>().prop_map(Some),
    ]
}

fn params() -> impl Strategy<Value = GenParams> {
    (
        proptest::option::of(0u32..3),
        opt_f32(),
        opt_f32(),
        proptest::collection::vec("[ab ]{0,2}", 0..3),
    )
        .prop_map(|(max_tokens, temperature, top_p, stop)| GenParams {
            max_tokens,
            temperature,
            top_p,
            stop,
        })
}

fn req() -> impl Strategy<Value = Req> {
    (
        ("[ab]{0,2}", "[ab]{0,2}", 0u64..3, "[ab]{0,2}", "[ab]{0,2}"),
        proptest::collection::vec(message(), 0..4),
        params(),
        proptest::collection::btree_map("[ab]{1,2}", "[ab]{0,2}", 0..3),
    )
        .prop_map(
            |((tenant, policy, fingerprint, model, hint), messages, params, tags)| Req {
                tenant,
                policy,
                fingerprint,
                model,
                hint,
                messages,
                params,
                tags,
            },
        )
}

/// One change to one field; some leave the request equivalent (same value, whitespace).
#[derive(Debug, Clone)]
enum Mutation {
    Tenant(String),
    Policy(String),
    Fingerprint(u64),
    Model(String),
    Hint(String),
    Role(usize, Role),
    Content(usize, String),
    Remove(usize),
    Swap(usize, usize),
    Push(Message),
    MaxTokens(Option<u32>),
    Temperature(Option<f32>),
    TopP(Option<f32>),
    Stop(Vec<String>),
    Tag(String, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        "[ab]{0,2}".prop_map(Mutation::Tenant),
        "[ab]{0,2}".prop_map(Mutation::Policy),
        (0u64..3).prop_map(Mutation::Fingerprint),
        "[ab]{0,2}".prop_map(Mutation::Model),
        "[ab]{0,2}".prop_map(Mutation::Hint),
        (any::<usize>(), role()).prop_map(|(i, r)| Mutation::Role(i, r)),
        (any::<usize>(), text()).prop_map(|(i, t)| Mutation::Content(i, t)),
        any::<usize>().prop_map(Mutation::Remove),
        (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Mutation::Swap(i, j)),
        message().prop_map(Mutation::Push),
        proptest::option::of(0u32..3).prop_map(Mutation::MaxTokens),
        opt_f32().prop_map(Mutation::Temperature),
        opt_f32().prop_map(Mutation::TopP),
        proptest::collection::vec("[ab ]{0,2}", 0..3).prop_map(Mutation::Stop),
        ("[ab]{1,2}", "[ab]{0,2}").prop_map(|(k, v)| Mutation::Tag(k, v)),
    ]
}

fn apply(mut r: Req, m: Mutation) -> Req {
    let n = r.messages.len();
    match m {
        Mutation::Tenant(s) => r.tenant = s,
        Mutation::Policy(s) => r.policy = s,
        Mutation::Fingerprint(f) => r.fingerprint = f,
        Mutation::Model(s) => r.model = s,
        Mutation::Hint(s) => r.hint = s,
        Mutation::Role(i, role) if n > 0 => r.messages[i % n].role = role,
        Mutation::Content(i, t) if n > 0 => r.messages[i % n].content = t,
        Mutation::Remove(i) if n > 0 => {
            r.messages.remove(i % n);
        }
        Mutation::Swap(i, j) if n > 0 => r.messages.swap(i % n, j % n),
        Mutation::Push(msg) => r.messages.push(msg),
        Mutation::MaxTokens(v) => r.params.max_tokens = v,
        Mutation::Temperature(v) => r.params.temperature = v,
        Mutation::TopP(v) => r.params.top_p = v,
        Mutation::Stop(v) => r.params.stop = v,
        Mutation::Tag(k, v) => {
            r.tags.insert(k, v);
        }
        _ => {}
    }
    r
}

/// Re-spells a text with other line endings and extra whitespace that normalisation drops.
fn respell(s: &str, eol: &str, lead: &str, line_tail: &str, trail: &str) -> String {
    let unified = s.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<String> = unified
        .split('\n')
        .map(|l| format!("{l}{line_tail}"))
        .collect();
    format!("{lead}{}{trail}", lines.join(eol))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn one_change_changes_the_key_exactly_when_the_request_changes(
        a in req(),
        m in mutation(),
    ) {
        let b = apply(a.clone(), m);
        prop_assert_eq!(a.key() == b.key(), equivalent(&a, &b));
        prop_assert_eq!(a.score_key() == b.score_key(), {
            let mut b2 = b.clone();
            // Score keys ignore the hint and every param but the token budget.
            b2.hint.clone_from(&a.hint);
            b2.tags.clone_from(&a.tags);
            b2.params = GenParams { max_tokens: b.params.max_tokens.or(Some(0)), ..a.params.clone() };
            let mut a2 = a.clone();
            a2.params.max_tokens = a.params.max_tokens.or(Some(0));
            equivalent(&a2, &b2)
        });
    }

    #[test]
    fn unrelated_requests_share_a_key_only_when_equivalent(a in req(), b in req()) {
        prop_assert_eq!(a.key() == b.key(), equivalent(&a, &b));
    }

    #[test]
    fn whitespace_and_line_endings_do_not_change_the_key(
        a in req(),
        eol in prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
        lead in "[ \t\r\n]{0,3}",
        line_tail in "[ \t]{0,2}",
        trail in "[ \t\r\n]{0,3}",
    ) {
        let mut b = a.clone();
        for m in &mut b.messages {
            m.content = respell(&m.content, eol, &lead, &line_tail, &trail);
        }
        prop_assert_eq!(a.key(), b.key());
        prop_assert_eq!(a.score_key(), b.score_key());
    }

    #[test]
    fn moving_a_boundary_between_string_fields_changes_the_key(
        all in "[ab]{0,6}",
        cuts in proptest::collection::vec(0usize..=6, 3),
        other in proptest::collection::vec(0usize..=6, 3),
    ) {
        let split = |cuts: &[usize]| -> Req {
            let mut c: Vec<usize> = cuts.iter().map(|c| c % (all.len() + 1)).collect();
            c.sort_unstable();
            Req {
                tenant: all[..c[0]].to_owned(),
                policy: all[c[0]..c[1]].to_owned(),
                fingerprint: 0,
                model: all[c[1]..c[2]].to_owned(),
                hint: all[c[2]..].to_owned(),
                messages: vec![],
                params: GenParams::default(),
                tags: Default::default(),
            }
        };
        let (a, b) = (split(&cuts), split(&other));
        prop_assert_eq!(a.key() == b.key(), equivalent(&a, &b));
    }

    #[test]
    fn response_and_score_keys_never_coincide(a in req(), b in req()) {
        prop_assert_ne!(a.key(), a.score_key());
        prop_assert_ne!(a.key(), b.score_key());
    }

    #[test]
    fn normalize_text_is_idempotent_and_leaves_no_edge_whitespace(s in "[ab \t\r\n\u{a0}]{0,12}") {
        let n = normalize_text(&s);
        prop_assert_eq!(normalize_text(&n), n.clone());
        prop_assert!(!n.contains('\r'));
        prop_assert_eq!(n.trim(), n.as_str());
        prop_assert!(n.split('\n').all(|l| l.trim_end() == l));
    }
}

fn base() -> Req {
    Req {
        tenant: "acme".into(),
        policy: "default".into(),
        fingerprint: 7,
        model: "qwen".into(),
        hint: "auto".into(),
        messages: vec![Message::new(Role::User, "hi")],
        params: GenParams::default(),
        tags: Default::default(),
    }
}

#[test]
fn tags_are_part_of_the_key_and_their_boundaries_are_kept() {
    let plain = base();
    let mut tagged = base();
    tagged.tags.insert("team".into(), "ml".into());
    assert_ne!(plain.key(), tagged.key());
    let mut other = base();
    other.tags.insert("team".into(), "ops".into());
    assert_ne!(tagged.key(), other.key());
    // "te" = "amml" is not "team" = "ml"
    let mut shifted = base();
    shifted.tags.insert("te".into(), "amml".into());
    assert_ne!(tagged.key(), shifted.key());
}

#[test]
fn absent_temperature_is_not_zero_but_negative_zero_is_zero() {
    let none = base();
    let zero = Req {
        params: GenParams {
            temperature: Some(0.0),
            ..GenParams::default()
        },
        ..base()
    };
    let neg = Req {
        params: GenParams {
            temperature: Some(-0.0),
            ..GenParams::default()
        },
        ..base()
    };
    assert_ne!(none.key(), zero.key());
    assert_eq!(zero.key(), neg.key());
}

#[test]
fn splitting_a_message_or_a_stop_sequence_changes_the_key() {
    let one = Req {
        messages: vec![Message::new(Role::User, "ab")],
        ..base()
    };
    let two = Req {
        messages: vec![Message::new(Role::User, "a"), Message::new(Role::User, "b")],
        ..base()
    };
    assert_ne!(one.key(), two.key());
    let stop = |s: &[&str]| Req {
        params: GenParams {
            stop: s.iter().map(|s| (*s).to_owned()).collect(),
            ..GenParams::default()
        },
        ..base()
    };
    assert_ne!(stop(&["ab"]).key(), stop(&["a", "b"]).key());
    assert_ne!(stop(&["a", "b"]).key(), stop(&["b", "a"]).key());
}

#[test]
fn normalize_keeps_inner_spacing_and_indentation() {
    assert_eq!(
        normalize_text("\r\n  hello  world \r\n\tnext\t\r\n\n"),
        "hello  world\n\tnext"
    );
    assert_eq!(normalize_text("a\rb\r\n\r\nc"), "a\nb\n\nc");
    assert_eq!(normalize_text(" \n\t\r\n "), "");
}

#[test]
fn hex_is_lowercase_and_64_digits() {
    let mut bytes = [0u8; 32];
    bytes[0] = 0xab;
    bytes[31] = 0x0f;
    let hex = CacheKey(bytes).hex();
    assert_eq!(hex.len(), 64);
    assert!(hex.starts_with("ab00"));
    assert!(hex.ends_with("000f"));
}

/// If this fails the encoding changed: bump `VERSION_TAG`, then update the expected value.
/// Checked independently: SHA-256 over lp("sluice-cache-v2") lp("response") lp("acme")
/// lp("default") u64(7) lp("qwen") lp("auto") u64(1) 0x02 lp("hi") 0x00 0x00 0x00 u64(0)
/// u64(0) (no stop sequences, no tags), where lp(s) is s's length as a little-endian u64
/// followed by s.
#[test]
fn the_encoding_is_stable() {
    assert_eq!(
        base().key().hex(),
        "d6c886265509c52a3cb333d25ea01b824906a6a5cf6086011562889206e58720"
    );
}
