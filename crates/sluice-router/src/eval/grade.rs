//! Grading a response against gold answers, as `data/README.md` defines it: normalise both
//! sides, then look for a padded answer (`contains`) or for the earliest named option
//! (`choice`).

/// The README's normalisation: lowercase; every char other than a-z, 0-9, '/' and '.' → space;
/// a '.' → space unless between two digits; collapse spaces; trim; pad one space each end.
///
/// The padding is what makes matching whole-word: " 8 " is not found in " 18 ".
pub fn normalize(text: &str) -> String {
    let chars: Vec<char> = text.to_lowercase().chars().collect();
    let mut out = String::with_capacity(chars.len() + 2);
    out.push(' ');
    let mut last_space = true;
    for (i, &c) in chars.iter().enumerate() {
        let keep = match c {
            'a'..='z' | '0'..='9' | '/' => true,
            '.' => {
                let before = i > 0 && chars[i - 1].is_ascii_digit();
                let after = chars.get(i + 1).is_some_and(char::is_ascii_digit);
                before && after
            }
            _ => false,
        };
        if keep {
            out.push(c);
            last_space = false;
        } else if !last_space {
            out.push(' ');
            last_space = true;
        }
    }
    if !last_space {
        out.push(' ');
    }
    if out.len() == 1 {
        // Nothing survived: keep the "one space each end" shape of an empty text.
        out.push(' ');
    }
    out
}

/// How a response is judged against its gold answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GradeKind {
    /// Right when the response contains any of the answers as whole words.
    Contains,
    /// Right when the option the response names first is one of the answers.
    Choice,
}

/// Right or wrong per the README: `Contains` = normalised response contains the normalised form
/// of any answer (padded, so " 8 " does not match "18"); `Choice` = for each choice its first
/// position in the normalised response; the earliest-found choice must be in `answers`
/// (compared normalised); no choice found → wrong. Ties at one position go to the choice listed
/// first. Answers or choices that normalise to nothing are ignored, so an empty gold answer
/// never marks every response right.
pub fn grade(response: &str, kind: GradeKind, answers: &[String], choices: &[String]) -> bool {
    let response = normalize(response);
    let answers: Vec<String> = answers
        .iter()
        .map(|a| normalize(a))
        .filter(|a| !is_blank(a))
        .collect();
    match kind {
        GradeKind::Contains => answers.iter().any(|a| response.contains(a.as_str())),
        GradeKind::Choice => {
            let mut best: Option<(usize, String)> = None;
            for choice in choices.iter().map(|c| normalize(c)) {
                if is_blank(&choice) {
                    continue;
                }
                if let Some(pos) = response.find(choice.as_str()) {
                    if best.as_ref().is_none_or(|(p, _)| pos < *p) {
                        best = Some((pos, choice));
                    }
                }
            }
            best.is_some_and(|(_, choice)| answers.contains(&choice))
        }
    }
}

fn is_blank(normalised: &str) -> bool {
    normalised.trim().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(items: &[&str]) -> Vec<String> {
        items.iter().map(|x| x.to_string()).collect()
    }

    fn contains(response: &str, answers: &[&str]) -> bool {
        grade(response, GradeKind::Contains, &s(answers), &[])
    }

    fn choice(response: &str, answers: &[&str], choices: &[&str]) -> bool {
        grade(response, GradeKind::Choice, &s(answers), &s(choices))
    }

    #[test]
    fn normalises_case_punctuation_and_spaces() {
        assert_eq!(normalize("The Answer is  8!"), " the answer is 8 ");
        assert_eq!(normalize("  Hello,\tWORLD\n"), " hello world ");
        assert_eq!(normalize("a-b_c"), " a b c ");
    }

    #[test]
    fn sentence_final_dot_is_dropped_but_decimal_dot_kept() {
        assert_eq!(normalize("It is 8."), " it is 8 ");
        assert_eq!(normalize("3.5 apples"), " 3.5 apples ");
        assert_eq!(normalize("v.2 and 2.x and .5"), " v 2 and 2 x and 5 ");
        assert_eq!(normalize("1/2"), " 1/2 ");
    }

    #[test]
    fn non_ascii_letters_become_spaces() {
        assert_eq!(normalize("Café Zürich"), " caf z rich ");
        assert_eq!(normalize("ÉCOLE"), " cole ");
        assert_eq!(normalize("8—9"), " 8 9 ");
    }

    #[test]
    fn empty_text_normalises_to_padding_only() {
        assert_eq!(normalize(""), "  ");
        assert_eq!(normalize("?!"), "  ");
    }

    #[test]
    fn contains_matches_whole_answer_only() {
        assert!(contains("the answer is 8.", &["8"]));
        assert!(contains("8", &["8"]));
        assert!(!contains("the answer is 18", &["8"]));
        assert!(!contains("the answer is 8.5", &["8"]));
        assert!(contains("The answer is 8.5", &["8.5"]));
        assert!(contains("Half, i.e. 1/2.", &["1/2"]));
    }

    #[test]
    fn contains_is_case_insensitive_and_accepts_any_answer() {
        assert!(contains("It was PARIS, France", &["paris"]));
        assert!(contains("yes, definitely", &["no", "Yes"]));
        assert!(!contains("maybe", &["no", "yes"]));
        assert!(contains("born in New York City", &["New York"]));
    }

    #[test]
    fn empty_response_or_empty_answer_is_wrong() {
        assert!(!contains("", &["8"]));
        assert!(!contains("", &[""]));
        assert!(!contains("anything", &[]));
        assert!(!choice("", &["yes"], &["yes", "no"]));
    }

    #[test]
    fn implausible_is_not_read_as_plausible() {
        let choices = ["plausible", "implausible"];
        assert!(choice("Implausible.", &["implausible"], &choices));
        assert!(!choice("Implausible.", &["plausible"], &choices));
        assert!(choice("plausible", &["plausible"], &choices));
    }

    #[test]
    fn earliest_choice_wins_when_both_appear() {
        let choices = ["plausible", "implausible"];
        let text = "Implausible: a striker is never plausible as a goalie";
        assert!(choice(text, &["implausible"], &choices));
        assert!(!choice(
            "plausible, not implausible",
            &["implausible"],
            &choices
        ));
        assert!(choice("No, yes.", &["no"], &["yes", "no"]));
    }

    #[test]
    fn no_choice_found_is_wrong() {
        assert!(!choice("I cannot say", &["yes"], &["yes", "no"]));
        assert!(!choice("yesterday", &["yes"], &["yes", "no"]));
    }

    #[test]
    fn choice_compares_answers_normalised() {
        assert!(choice("YES!", &["Yes."], &["Yes.", "No."]));
    }
}
