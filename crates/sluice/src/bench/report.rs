//! Samples, medians and ratios of `sluice bench local`, as a table and as JSON.

use std::fmt::Write;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    Raw,
    Gateway,
    Llama,
}

impl Engine {
    pub const ALL: [Engine; 3] = [Engine::Raw, Engine::Gateway, Engine::Llama];

    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Prompt tokens per second until the first generated token.
    Prefill,
    /// Generated tokens per second after the first.
    Decode,
    /// Tokens the decode run generated.
    DecodeTokens,
    /// Milliseconds to score a short prompt (draft with statistics).
    ScoreMs,
    /// Generated tokens per second over all of n concurrent requests.
    Aggregate(usize),
}

impl Metric {
    fn label(self) -> String {
        match self {
            Metric::Prefill => "prefill tok/s".into(),
            Metric::Decode => "decode tok/s".into(),
            Metric::DecodeTokens => "  tokens generated".into(),
            Metric::ScoreMs => "scoring latency ms".into(),
            Metric::Aggregate(n) => format!("aggregate tok/s, {n} concurrent"),
        }
    }

    /// Whether a ratio of this metric means anything (a count does not).
    fn has_ratio(self) -> bool {
        self != Metric::DecodeTokens
    }
}

/// Every sample by metric (in first-seen order) and engine.
#[derive(Debug, Default, Serialize)]
pub struct Samples(Vec<(Metric, [Vec<f64>; 3])>);

impl Samples {
    pub fn push(&mut self, metric: Metric, engine: Engine, value: f64) {
        let i = match self.0.iter().position(|(m, _)| *m == metric) {
            Some(i) => i,
            None => {
                self.0.push((metric, Default::default()));
                self.0.len() - 1
            }
        };
        self.0[i].1[engine.index()].push(value);
    }

    fn median(&self, metric: Metric, engine: Engine) -> Option<f64> {
        let (_, v) = self.0.iter().find(|(m, _)| *m == metric)?;
        median(&v[engine.index()])
    }
}

/// The middle value; the mean of the two middle ones for an even count.
pub fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    Some(if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    })
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub model: String,
    pub cpus: usize,
    pub threads: usize,
    pub rounds: u32,
    pub prefill_prompt_tokens: u32,
    pub decode_tokens: u32,
    pub score_tokens: u32,
    pub notes: Vec<String>,
    pub samples: Samples,
}

fn cell(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
        None => "-".into(),
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    }
}

impl Report {
    /// Medians per engine; ratios gateway/raw and raw/llama.cpp (for latency, above 1 is
    /// slower; for tok/s, above 1 is faster).
    pub fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "model {}; {} CPUs, llama.cpp {} threads; medians of {} rounds; prefill prompt {} \
             tokens, decode {} tokens, scoring draft {} tokens",
            self.model,
            self.cpus,
            self.threads,
            self.rounds,
            self.prefill_prompt_tokens,
            self.decode_tokens,
            self.score_tokens
        );
        let _ = writeln!(
            t,
            "{:<32} {:>10} {:>10} {:>10} {:>13} {:>15}",
            "", "mistral.rs", "gateway", "llama.cpp", "gateway/raw", "raw/llama.cpp"
        );
        for (metric, _) in &self.samples.0 {
            let [raw, gw, ll] = Engine::ALL.map(|e| self.samples.median(*metric, e));
            let (r1, r2) = if metric.has_ratio() {
                (ratio(gw, raw), ratio(raw, ll))
            } else {
                (String::new(), String::new())
            };
            let _ = writeln!(
                t,
                "{:<32} {:>10} {:>10} {:>10} {:>13} {:>15}",
                metric.label(),
                cell(raw),
                cell(gw),
                cell(ll),
                r1,
                r2
            );
        }
        // How well concurrent requests share the CPU: the largest n against 1.
        let agg: Vec<usize> = self
            .samples
            .0
            .iter()
            .filter_map(|(m, _)| match m {
                Metric::Aggregate(n) => Some(*n),
                _ => None,
            })
            .collect();
        if let (Some(&lo), Some(&hi)) = (agg.iter().min(), agg.iter().max()) {
            if hi > lo {
                for e in [Engine::Raw, Engine::Gateway] {
                    let _ = writeln!(
                        t,
                        "{:?}: {hi} concurrent give {} the aggregate tok/s of {lo}",
                        e,
                        ratio(
                            self.samples.median(Metric::Aggregate(hi), e),
                            self.samples.median(Metric::Aggregate(lo), e)
                        )
                    );
                }
            }
        }
        for n in &self.notes {
            let _ = writeln!(t, "{n}");
        }
        t
    }

    pub fn json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn the_table_shows_medians_and_ratios_per_metric() {
        let mut s = Samples::default();
        for v in [10.0, 30.0, 20.0] {
            s.push(Metric::Decode, Engine::Raw, v);
            s.push(Metric::Decode, Engine::Gateway, v * 0.9);
            s.push(Metric::Decode, Engine::Llama, v * 2.0);
        }
        s.push(Metric::Aggregate(1), Engine::Raw, 20.0);
        s.push(Metric::Aggregate(8), Engine::Raw, 50.0);
        let r = Report {
            model: "m.gguf".into(),
            cpus: 2,
            threads: 2,
            rounds: 3,
            prefill_prompt_tokens: 512,
            decode_tokens: 128,
            score_tokens: 32,
            notes: vec!["a note".into()],
            samples: s,
        };
        let t = r.table();
        let line = t.lines().find(|l| l.starts_with("decode tok/s")).unwrap();
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[2..], ["20.0", "18.0", "40.0", "0.90x", "0.50x"], "{t}");
        assert!(
            t.contains("Raw: 8 concurrent give 2.50x the aggregate tok/s of 1"),
            "{t}"
        );
        assert!(t.contains("a note"));
        let j: serde_json::Value = serde_json::from_str(&r.json().unwrap()).unwrap();
        assert_eq!(j["samples"][0][0], "decode");
        assert_eq!(j["samples"][0][1][1][0], 9.0);
    }
}
