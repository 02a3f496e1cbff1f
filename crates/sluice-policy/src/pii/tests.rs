//! Tests of PII and secret detection: what each kind finds and what it must not, the
//! spans it reports, text around findings in other scripts, and large inputs.
//!
//! Every value is documentation-safe: test card numbers, the ISO 13616 and bank example
//! IBANs, AWS's documented example keys, and obviously fake tokens.

use super::*;
use PiiKind::*;

/// A text and the kinds `kinds` must find in it, no more, no fewer.
type Case = (&'static str, &'static [PiiKind]);

/// Checks every case, reporting all failures at once.
fn check<T: AsRef<str>>(cases: &[(T, &[PiiKind])]) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(text, expected)| {
            let text = text.as_ref();
            let expected: BTreeSet<PiiKind> = expected.iter().copied().collect();
            (kinds(text) != expected)
                .then(|| format!("{text:?}: expected {expected:?}, found {:?}", spans(text)))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The findings of `text` with the text they point at.
fn spans(text: &str) -> Vec<(PiiKind, &str)> {
    detect(text)
        .into_iter()
        .map(|f| (f.kind, &text[f.start..f.end]))
        .collect()
}

// Fake tokens: the shapes of real ones, marked FAKE, never issued by anyone.
const SK_PROJ: &str = "sk-proj-FAKEx9Qw2Er7Ty4Ui1Op6As3Df8Gh5Jk0Lz";
const SK_ANT: &str = "sk-ant-api03-FAKEa1B2c3D4e5F6g7H8i9J0kLmN-oPqRsT_uV";
const GHP: &str = "ghp_FAKE0a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P";
const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
                   eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IlRlc3QgVXNlciJ9.\
                   ZmFrZS1zaWduYXR1cmUtZm9yLXRlc3RzLW9ubHk";
/// A random-looking token with no known prefix, for the generic rule.
const RANDOM: &str = "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF3hJ5";

#[test]
fn every_pattern_compiles() {
    for (name, pattern) in patterns() {
        assert!(
            LazyLock::force(pattern).is_some(),
            "pattern {name} does not compile"
        );
    }
}

#[test]
fn jwt_constant_has_no_spaces() {
    // The `\` line continuations above must not leave spaces inside the token.
    assert!(!JWT.contains(' '));
    assert_eq!(JWT.matches('.').count(), 2);
}

const EMAIL_CASES: &[Case] = &[
    // Found.
    ("Write to jane.doe@example.com please", &[Email]),
    (
        "Contact: <john.smith+newsletter@mail.example.co.uk>",
        &[Email],
    ),
    ("[mail me](mailto:info@example.org)", &[Email]),
    ("first_last-99@sub.example.io", &[Email]),
    ("(a.b@example.com)", &[Email]),
    ("JANE@EXAMPLE.COM", &[Email]),
    (
        "profile: https://example.com/u/jane.doe@example.org",
        &[Email],
    ),
    ("écrivez à josé.garcía@example.es", &[Email]),
    ("連絡先はjohn@example.comです", &[Email]),
    ("punycode user@xn--bcher-kva.example", &[Email]),
    ("sentence ends with jane@example.com.", &[Email]),
    ("--jane@example.com", &[Email]),
    // Not found.
    ("a@b", &[]),
    ("a@b and c@d", &[]),
    ("thanks @handle and @john.doe for the review", &[]),
    ("user@localhost", &[]),
    ("root@127.0.0.1", &[]),
    ("https://example.com/user@host", &[]),
    ("git clone git@github.com:org/repo.git", &[]),
    ("ssh://git@github.com/org/repo", &[]),
    ("https://user:pass@example.com/x", &[]),
    ("npm install lodash@4.17.21 react@latest @types/node", &[]),
    (
        "<img src=\"icon@2x.png\" srcset=\"logo@1.5x.webp 1.5x\">",
        &[],
    ),
    ("foo@bar.c", &[]),
    ("docker pull ghcr.io/org/app@sha256:0123", &[]),
    ("matrix product A@B.T in numpy", &[]),
];

#[test]
fn email() {
    check(EMAIL_CASES);
}

const PHONE_CASES: &[Case] = &[
    // Found.
    ("Call +44 20 7946 0958 today", &[Phone]),
    ("+1 (555) 123-4567", &[Phone]),
    ("Office: (555) 123-4567.", &[Phone]),
    ("555-123-4567", &[Phone]),
    ("tel 555.123.4567", &[Phone]),
    ("toll free 1-800-555-0199", &[Phone]),
    ("Ring 020 7946 0958 after lunch", &[Phone]),
    ("Mon numéro : 06 12 34 56 78", &[Phone]),
    ("+33 6 12 34 56 78", &[Phone]),
    ("whatsapp +14155552671", &[Phone]),
    ("(020) 7946 0958", &[Phone]),
    ("Tel.: 030/12345678", &[Phone]),
    ("+44 (0)20 7946 0958", &[Phone]),
    ("(+44) 20 7946 0958", &[Phone]),
    ("+81-3-1234-5678", &[Phone]),
    ("mobile 0612345678", &[Phone]),
    ("<a href=\"tel:+49-30-1234567\">call</a>", &[Phone]),
    ("phone: 07700 900123, 0161 496 0000", &[Phone]),
    ("call +1 650 253 0000 or +1-650-253-0000", &[Phone]),
    ("Call me: +44 20 7946 0958 2024", &[Phone]),
    // Not found.
    ("In 2024 we shipped 3 releases", &[]),
    ("pi is 3.14159", &[]),
    ("418 times 275 is 114950", &[]),
    ("the code is 123456", &[]),
    ("released on 2024-11-28", &[]),
    ("ping 192.168.1.1 and 10.0.0.254", &[]),
    ("version 1.2.3", &[]),
    ("4111 1111 1111 1111", &[Card]),
    ("4111111111111111", &[Card]),
    ("at 10:30 on 28.11.2024", &[]),
    ("08.11.2024 12:30", &[]),
    ("ISBN 978-3-16-148410-0", &[]),
    ("UTC+05:30", &[]),
    ("x = 1e+10", &[]),
    ("z = +1.23456789", &[]),
    ("unix time 1700000000", &[]),
    ("Copyright 1999-2024", &[]),
    ("| 2021 | 2022 | 2023 |", &[]),
    ("Order #0123-4567-8901", &[]),
    ("scores: 12 15 18 21 24 27", &[]),
    ("+1 2 3 4 5 6 7 8", &[]),
    ("placeholder 000-000-0000", &[]),
    ("placeholders 0123456789, 123-456-7890, +12345678", &[]),
    ("SSN-shaped 078-05-1120", &[]),
    ("zip 94103-1234, lat/long 37.7749, -122.4194", &[]),
    (
        "MAC 00:1A:2B:3C:4D:5E, IPv6 2001:0db8:85a3:0000:0000:8a2e:0370:7334",
        &[],
    ),
    ("ten bare digits 5551234567", &[]),
    ("@@ -12,7 +12,8 @@ fn main()", &[]),
    ("IBAN DE89 3704 0044 0532 0130 00", &[Iban]),
    ("rev 020 7946 0958 2024 12", &[]),
];

#[test]
fn phone() {
    check(PHONE_CASES);
}

const CARD_CASES: &[Case] = &[
    // Found.
    ("4111 1111 1111 1111", &[Card]),
    ("4111-1111-1111-1111", &[Card]),
    ("Amex 378282246310005", &[Card]),
    ("5555555555554444", &[Card]),
    ("card: 6011 1111 1111 1117, exp 12/26", &[Card]),
    ("3782 822463 10005", &[Card]),
    ("Visa 4222222222222", &[Card]),
    ("Diners 30569309025904", &[Card]),
    ("Mastercard 2223003122003222", &[Card]),
    ("4111 1111 1111 1111 12/26 123", &[Card]),
    ("JCB 3530-1113-3330-0000", &[Card]),
    ("`4012888888881881`", &[Card]),
    ("no 12 4111 1111 1111 1111", &[Card]),
    // Not found.
    ("4111 1111 1111 1112", &[]),
    ("1234567890123456", &[]),
    ("0.4111111111111111", &[]),
    ("ID4111111111111111x", &[]),
    ("v4111111111111111", &[]),
    ("years 2019 2020 2021 2022 2023", &[]),
    ("epoch ms 1700000000000", &[]),
    ("snowflake 1234567890123456789", &[]),
    ("0000 0000 0000 0000", &[]),
    ("order #4111111111111111", &[]),
    ("DE89 3704 0044 0532 0130 00", &[Iban]),
    // Four-digit groups that go on are a list of numbers, not a card.
    ("4111 1111 1111 1111 2024", &[]),
    ("4111111111111111.5", &[]),
];

#[test]
fn card() {
    check(CARD_CASES);
}

const IBAN_CASES: &[Case] = &[
    // Found.
    ("GB82 WEST 1234 5698 7654 32", &[Iban]),
    ("GB82WEST12345698765432", &[Iban]),
    ("DE89 3704 0044 0532 0130 00", &[Iban]),
    ("Überweisung an DE89370400440532013000.", &[Iban]),
    ("FR14 2004 1010 0505 0001 3M02 606", &[Iban]),
    ("NL91 ABNA 0417 1643 00", &[Iban]),
    ("BE68 5390 0754 7034 and more text", &[Iban]),
    ("CH93 0076 2011 6238 5295 7", &[Iban]),
    ("lowercase gb82 west 1234 5698 7654 32", &[Iban]),
    ("IBAN: NO93 8601 1117 947.", &[Iban]),
    ("MT84 MALT 0110 0001 2345 MTLC AST0 01S", &[Iban]),
    ("(IT60 X054 2811 1010 0000 0123 456)", &[Iban]),
    // Not found.
    ("GB83 WEST 1234 5698 7654 32", &[]),
    ("DE89370400440532013001", &[]),
    ("XX82WEST12345698765432", &[]),
    ("GB82 WEST 1234 5698 7654 3", &[]),
    ("GB82WEST123456987654321", &[]),
    ("xDE89370400440532013000", &[]),
    ("GB00WEST12345698765432", &[]),
    ("md5 ab12cdef34567890ab12cdef34567890", &[]),
    ("ID12 3456 7890 1234", &[]),
    ("route AB12 CD34 EF56", &[]),
];

#[test]
fn iban() {
    check(IBAN_CASES);
}

#[test]
fn digits_inside_an_iban_are_nothing_else() {
    for text in [
        "DE89 3704 0044 0532 0130 00",
        "SA03 8000 0000 6080 1016 7519",
        "PL61 1090 1014 0000 0712 1981 2874",
    ] {
        assert_eq!(spans(text), vec![(Iban, text)], "{text}");
    }
}

#[test]
fn api_key() {
    let sk = format!("OPENAI_API_KEY={SK_PROJ}");
    let ant = format!("export ANTHROPIC_API_KEY=\"{SK_ANT}\"");
    let ghp = format!("token = {GHP}");
    let jwt = format!("cookie: session={JWT}; Path=/");
    let bearer_jwt = format!("curl -H 'Authorization: Bearer {JWT}'");
    let generic = format!("client_secret: {RANDOM}");
    let in_url = format!("https://api.example.com/v1/items?key={RANDOM}&page=2");
    let cases: Vec<(String, &[PiiKind])> = vec![
        // Found.
        (sk, &[ApiKey]),
        (ant, &[ApiKey]),
        ("sk-FAKE1a2B3c4D5e6F7g8H9i0J".into(), &[ApiKey]),
        (ghp, &[ApiKey]),
        ("github_pat_11FAKE0a1B2c3D4e5F6g7H8_i9J0k1L2m3N4o5P6q7R8s9T0u".into(), &[ApiKey]),
        ("SLACK_TOKEN=xoxb-123456789012-123456789012-FAKEfakeFAKEfake".into(), &[ApiKey]),
        ("aws_access_key_id = AKIAIOSFODNN7EXAMPLE".into(), &[ApiKey]),
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(), &[ApiKey]),
        ("key=AIzaSyFAKE-0a1B2c3D4e5F6g7H8i9J0k1L2m3N".into(), &[ApiKey]),
        ("GITLAB_TOKEN: glpat-FAKEa1B2c3D4e5F6g7H8i9".into(), &[ApiKey]),
        ("stripe.api_key = 'sk_test_FAKE0a1B2c3D4e5F6g7H8i9J'".into(), &[ApiKey]),
        ("HF_TOKEN=hf_FAKEa1B2c3D4e5F6g7H8i9J0k1L2m3N4o".into(), &[ApiKey]),
        ("//registry.npmjs.org/:_authToken=npm_FAKE0a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P".into(), &[ApiKey]),
        (jwt, &[ApiKey]),
        (bearer_jwt, &[ApiKey]),
        ("Authorization: Bearer FAKE0a1B2c3D4e5F6g7H8i9J0k1L2m3N".into(), &[ApiKey]),
        ("authorization: bearer 0a1b2c3d4e5f60718293a4b5c6d7e8f901234567".into(), &[ApiKey]),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==".into(), &[ApiKey]),
        (generic, &[ApiKey]),
        (in_url, &[ApiKey]),
        // Base64 of `OPENAI_API_KEY=sk-proj-…`.
        ("T1BFTkFJX0FQSV9LRVk9c2stcHJvai1GQUtFeDlRdzJFcjdUeTRVaTFPcDZBczNEZjhHaDVKazBMeg==".into(), &[ApiKey]),
        // Not found.
        ("use the sk-learn-compatible-estimator-wrapper here".into(), &[]),
        ("see sk-Learn-More-About-Pipelines-2024".into(), &[]),
        ("task-1234567890abcdefghijKLMNOP".into(), &[]),
        ("commit 0123456789abcdef0123456789abcdef01234567".into(), &[]),
        ("sha256 9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08".into(), &[]),
        ("id 123e4567-e89b-12d3-a456-426614174000".into(), &[]),
        ("Pneumonoultramicroscopicsilicovolcanoconiosis".into(), &[]),
        ("class AbstractSingletonProxyFactoryBean2 extends XMLHttpRequestEventTarget2DOMContentLoaded".into(), &[]),
        ("fn test_parse_http2_request_with_large_headers_Ok()".into(), &[]),
        ("kind: k8sClusterNodePoolAutoscalerV2Beta1Config".into(), &[]),
        // Base64 of a sentence, of a URL, of a short word.
        ("dGhlIHF1aWNrIGJyb3duIGZveCBqdW1wcyBvdmVyIHRoZSBsYXp5IGRvZw==".into(), &[]),
        ("aHR0cHM6Ly9leGFtcGxlLmNvbS9wYXRoL3RvL3NvbWUvcmVzb3VyY2U=".into(), &[]),
        ("cGFzc3dvcmQ=".into(), &[]),
        ("\"integrity\": \"sha512-Zx9Qw2Er7Ty4Ui1Op6As3Df8Gh5Jk0LzXc4Vb7Nm2Qw9Er3Ty6Ui0Op5As8Df1Gh4Jk7Lz==\"".into(), &[]),
        ("golang.org/x/text v0.3.7 h1:Zx9Qw2Er7Ty4Ui1Op6As3Df8Gh5Jk0LzXc4Vb7Nm2Q=".into(), &[]),
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFAKEx9Qw2Er7Ty4Ui1Op6As3Df8Gh5Jk0LzXc4Vb7 me@laptop".into(), &[]),
        ("<img src=\"data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk\">".into(), &[]),
        ("curl -H \"Authorization: Bearer $OPENAI_API_KEY\" -H 'Authorization: Bearer <token>'".into(), &[]),
        ("Authorization: Bearer YOUR_ACCESS_TOKEN_GOES_HERE".into(), &[]),
        ("Authorization: Bearer your-token-here-1234567890".into(), &[]),
        ("AKIAEXAMPLE is too short".into(), &[]),
        ("/home/user/Projects/MyApp2/src/components/UserProfile3/index.tsx".into(), &[]),
        ("https://github.com/rust-lang/regex/blob/master/src/lib.rs#L120".into(), &[]),
        ("Basic training is 12 weeks".into(), &[]),
        ("a line of ---------------------------------------- dashes".into(), &[]),
    ];
    check(&cases);
}

const FAKE_BODY: &str = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCFAKEx9Qw2Er7T\n\
                         y4Ui1Op6As3Df8Gh5Jk0LzXc4Vb7Nm2Qw9Er3Ty6Ui0Op5As8Df1Gh4Jk7LzFAKE\n\
                         Zx9Qw2Er7Ty4Ui1Op6As3Df8Gh5Jk0LzXc4Vb7Nm2Qw9Er3Ty6Ui0Op5As8Df1G=\n";

fn pem(label: &str, body: &str, end: bool) -> String {
    let end = if end {
        format!("-----END {label}-----\n")
    } else {
        String::new()
    };
    format!("-----BEGIN {label}-----\n{body}{end}")
}

#[test]
fn private_key() {
    let json_escaped = format!(
        "{{\"type\": \"service_account\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\n{}\\n-----END PRIVATE KEY-----\\n\"}}",
        FAKE_BODY.lines().next().unwrap_or_default()
    );
    let encrypted_pem = format!(
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0123456789ABCDEF0123456789ABCDEF\n\n{FAKE_BODY}-----END RSA PRIVATE KEY-----\n"
    );
    let cases: Vec<(String, &[PiiKind])> = vec![
        // Found.
        (pem("RSA PRIVATE KEY", FAKE_BODY, true), &[PrivateKey]),
        (pem("EC PRIVATE KEY", FAKE_BODY, true), &[PrivateKey]),
        (pem("OPENSSH PRIVATE KEY", FAKE_BODY, true), &[PrivateKey]),
        (pem("ENCRYPTED PRIVATE KEY", FAKE_BODY, true), &[PrivateKey]),
        (pem("PRIVATE KEY", FAKE_BODY, true), &[PrivateKey]),
        (pem("DSA PRIVATE KEY", FAKE_BODY, true), &[PrivateKey]),
        (pem("PGP PRIVATE KEY BLOCK", FAKE_BODY, true), &[PrivateKey]),
        (format!("my key:\n{}", pem("RSA PRIVATE KEY", FAKE_BODY, false)), &[PrivateKey]),
        ("-----BEGIN OPENSSH PRIVATE KEY-----".into(), &[PrivateKey]),
        (json_escaped, &[PrivateKey]),
        (encrypted_pem, &[PrivateKey]),
        ("---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----\nFAKE\n---- END SSH2 ENCRYPTED PRIVATE KEY ----".into(), &[PrivateKey]),
        (format!("...rest of it:\n{FAKE_BODY}-----END PRIVATE KEY-----"), &[PrivateKey]),
        // Not found.
        (pem("PUBLIC KEY", FAKE_BODY, true), &[]),
        (pem("CERTIFICATE", FAKE_BODY, true), &[]),
        (pem("CERTIFICATE", FAKE_BODY, false), &[]),
        (pem("RSA PUBLIC KEY", FAKE_BODY, true), &[]),
        ("the file starts with BEGIN RSA PRIVATE KEY".into(), &[]),
        ("---BEGIN PRIVATE KEY---".into(), &[]),
        ("Never paste your private key into a prompt.".into(), &[]),
        ("-----END PRIVATE KEY-----".into(), &[]),
        ("it ends with\n-----END PRIVATE KEY-----".into(), &[]),
        ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDFAKEx9Qw2Er7Ty4Ui1Op6As3Df8Gh5Jk0Lz user".into(), &[]),
    ];
    check(&cases);
}

#[test]
fn private_key_spans_cover_the_key() {
    let block = pem("RSA PRIVATE KEY", FAKE_BODY, true);
    let text = format!("Here it is:\n{block}Thanks!");
    assert_eq!(spans(&text), vec![(PrivateKey, block.trim_end())]);

    // Without END: the header and the key lines, not the prose after them.
    let truncated = pem("PRIVATE KEY", FAKE_BODY, false);
    let text = format!("{truncated}\nCan you tell me what is wrong with it?");
    assert_eq!(spans(&text), vec![(PrivateKey, truncated.trim_end())]);

    // Two blocks, the first one truncated: each is its own finding.
    let text = format!("{}{}", pem("EC PRIVATE KEY", FAKE_BODY, false), block);
    let found = spans(&text);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].1.starts_with("-----BEGIN EC PRIVATE KEY-----"));
    assert!(found[1].1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
}

#[test]
fn no_false_positives_in_ordinary_text() {
    check(&[
        ("```rust\nfn main() {\n    let x: u64 = 1_000_000;\n    println!(\"{}\", x * 42);\n}\n```", &[]),
        (
            "| version | date | downloads |\n|---|---|---|\n| 1.2.3 | 2024-11-28 | 123456 |\n\
             | 1.10.0 | 2025-01-05 | 2,345,678 |",
            &[],
        ),
        ("See https://docs.rs/regex/1.12.4/regex/ and https://example.com/a/b?page=2#top", &[]),
        ("SELECT id, total FROM orders WHERE created_at > '2024-01-01' AND total > 1000.50 LIMIT 50;", &[]),
        (
            "Traceback (most recent call last):\n  File \"/usr/lib/python3.12/site-packages/foo/bar.py\", \
             line 1234, in handler\n    raise ValueError(\"bad\")",
            &[],
        ),
        ("The meeting is at 10:30, room 4.12; budget $1,234,567.89 (about 1.1M EUR).", &[]),
        ("Coordinates 51.5074, -0.1278; population 8 336 817; 3 × 10^8 m/s", &[]),
        ("# Release notes\n\n- Fixed #1234 and #5678\n- Bumped serde to 1.0.215\n- 42 tests, 0 failures", &[]),
        ("segfault at 0x7ffee3b1a9c8 ip 00007f3a2b1c4d5e sp 00007ffee3b1a9c0 error 4", &[]),
        ("{\"id\": 1234567, \"price\": 19.99, \"ratio\": 0.3333333333333333, \"ts\": 1732800000}", &[]),
        ("git log: 0123456 Merge pull request #42 from org/feature-x", &[]),
        ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.", &[]),
        ("checksum = \"f1292b7759ae1cb9ec195452d1390a074f0cd8541ab7a5a8c31cd6db45d4a6ba\"", &[]),
        ("requests==2.31.0 --hash=sha256:942c5a758f98d790eaed1a29cb6eefc7ffb0d1cf7af05c3d2791656dbd6ad1e1", &[]),
        ("image: nginx@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31", &[]),
        ("arn:aws:iam::123456789012:role/MyRole-2024 and arn:aws:s3:::my-bucket/key", &[]),
        ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-prod-westeurope-001", &[]),
        ("\"resolved\": \"https://registry.npmjs.org/@babel/core/-/core-7.23.2.tgz\"", &[]),
        ("color: #1a2b3c; margin: 0 0 12px 4px; width: calc(100% - 240px)", &[]),
        ("$$\\sum_{i=1}^{n} i = 5050$$, 6.02214076e23 mol, 299 792 458 m/s, 0.5772156649015328606", &[]),
        ("Total: 1,234,567 rows in 12.345 s (100000 rows/s); ids 1001 1002 1003 1004", &[]),
        ("const x=function(e){return e&&e.__esModule?e:{default:e}};var a=Object.defineProperty", &[]),
        ("pytest tests/test_api.py::TestUserEndpoints::test_create_user_returns_201_and_location_header", &[]),
        ("ISBN-13: 978-0-306-40615-7, DOI 10.1000/182, UUID 3F2504E0-4F89-41D3-9A0C-0305E82C3301", &[]),
        ("https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=42s", &[]),
    ]);
}

#[test]
fn spans_point_at_the_matched_text() {
    let text = "Mail jane.doe@example.com or call +44 20 7946 0958; card 4111 1111 1111 1111, \
                IBAN GB82 WEST 1234 5698 7654 32, key AKIAIOSFODNN7EXAMPLE.";
    assert_eq!(
        spans(text),
        vec![
            (Email, "jane.doe@example.com"),
            (Phone, "+44 20 7946 0958"),
            (Card, "4111 1111 1111 1111"),
            (Iban, "GB82 WEST 1234 5698 7654 32"),
            (ApiKey, "AKIAIOSFODNN7EXAMPLE"),
        ]
    );
    let first = detect(text)[0];
    assert_eq!(
        first,
        PiiFinding {
            kind: Email,
            start: 5,
            end: 25
        }
    );

    // A number after an international number is left out of it.
    assert_eq!(
        spans("Call +44 20 7946 0958 2024"),
        vec![(Phone, "+44 20 7946 0958")]
    );
    // So is a parenthesis opened before the `+` and not closed after the country code.
    assert_eq!(
        spans("(+44 20 7946 0958)"),
        vec![(Phone, "+44 20 7946 0958")]
    );
    // Punctuation before an address, and a full stop after a Bearer token.
    assert_eq!(
        spans("--jane@example.com."),
        vec![(Email, "jane@example.com")]
    );
    let text = format!("Authorization: Bearer {RANDOM}.");
    assert_eq!(spans(&text), vec![(ApiKey, RANDOM)]);
}

#[test]
fn spans_around_multibyte_text() {
    let text = format!(
        "Grüße — écrivez à jürgen@example.de ☎ +49 30 1234567 · 電話番号は020 7946 0958です · \
         カード4111111111111111。🔑 {SK_PROJ} 🎉 IBAN：DE89370400440532013000、"
    );
    let found = detect(&text);
    for f in &found {
        assert!(
            text.is_char_boundary(f.start) && text.is_char_boundary(f.end),
            "{f:?}"
        );
    }
    assert_eq!(
        spans(&text),
        vec![
            (Email, "jürgen@example.de"),
            (Phone, "+49 30 1234567"),
            (Phone, "020 7946 0958"),
            (Card, "4111111111111111"),
            (ApiKey, SK_PROJ),
            (Iban, "DE89370400440532013000"),
        ]
    );
}

#[test]
fn overlapping_matches_of_one_kind_are_one_finding() {
    // The JWT rule, the Bearer rule and the generic rule all match this token.
    let text = format!("Authorization: Bearer {JWT}");
    assert_eq!(spans(&text), vec![(ApiKey, JWT)]);
    // A Bearer token with a known prefix.
    let text = format!("Authorization: Bearer {SK_PROJ}.");
    assert_eq!(spans(&text), vec![(ApiKey, SK_PROJ)]);
}

#[test]
fn findings_are_sorted_by_start_then_kind() {
    let text =
        format!("{RANDOM}@example.com then +44 20 7946 0958 then jane@example.com and {GHP}");
    let found = detect(&text);
    assert!(
        found
            .windows(2)
            .all(|w| (w[0].start, w[0].kind) <= (w[1].start, w[1].kind)),
        "{found:?}"
    );
    // The token before `@` is both a key and the local part of an address.
    assert_eq!(found[0].start, 0);
    assert_eq!((found[0].kind, found[1].kind), (Email, ApiKey));
}

#[test]
fn kinds_of_a_mixed_text() {
    let text = format!(
        "Hi, I'm jane@example.com (+1 555-123-4567). Please charge 4111-1111-1111-1111 or \
         wire to GB82 WEST 1234 5698 7654 32. Our key is {GHP} and the deploy key:\n{}",
        pem("OPENSSH PRIVATE KEY", FAKE_BODY, false)
    );
    assert_eq!(
        kinds(&text),
        PiiKind::ALL.into_iter().collect::<BTreeSet<_>>()
    );
    assert_eq!(kinds("nothing to see here, 42 times"), BTreeSet::new());
    assert_eq!(kinds(""), BTreeSet::new());
}

#[test]
fn large_and_adversarial_inputs() {
    let mut prose = String::new();
    while prose.len() < 300_000 {
        prose.push_str(
            "In 2024 the team shipped 1.2.3, fixed #4521 and cut p99 latency from 418 ms to 275 ms \
             (see https://example.com/changelog?page=12). Ratio 3.14159; build a1b2c3d; ",
        );
    }
    assert_eq!(kinds(&prose), BTreeSet::new());
    prose.push_str("contact jane@example.com");
    assert_eq!(kinds(&prose), [Email].into_iter().collect());

    let adversarial = [
        "1 ".repeat(100_000),
        "a@".repeat(100_000),
        "+1".repeat(100_000),
        "+1 ".repeat(100_000),
        "0 ".repeat(100_000),
        "sk-".repeat(60_000),
        "Aa1".repeat(60_000),
        "-----BEGIN PRIVATE KEY-----\n".repeat(5_000),
        "-----END PRIVATE KEY-----\nQUJD\n".repeat(5_000),
        "GB82 ".repeat(40_000),
        "4111 ".repeat(40_000),
        "x.".repeat(100_000) + "@example.com",
    ];
    for text in &adversarial {
        // Completing at all is the point; spot-check that results stay sane.
        let found = detect(text);
        assert!(found.iter().all(|f| f.start < f.end && f.end <= text.len()));
    }
}
